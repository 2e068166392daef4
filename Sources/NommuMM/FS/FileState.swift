// SPDX-License-Identifier: Apache-2.0

/// The VFS's state: every inode alive, the names of the memory filesystems, the descriptor
/// tables, and the page cache's count.
struct FileState {
    /// Every inode alive.
    var inodes = Slab<Inode>()
    /// Names: tmpfs, romfs and /dev directories, path under the mount → inode.
    var names: [MountPoint: [PathBytes: Int]] = [:]
    /// Descriptor tables (each process its own: vfork copies its parent's).
    var tables = Slab<FileTable>()
    /// `/data` inodes alive (open or mapped), by host inode number.
    var hostInodes: [UInt64: Int] = [:]
    var nextInodeNumber: [MountPoint: UInt] = [:]
    /// ramfs page-cache pages (not in `mmap_pages_allocated`, as in the kernel).
    var pageCachePages = 0
    /// Open file descriptions held in no descriptor table (exec's while it loads), by inode:
    /// they count in the inode's `opens` as descriptors do.
    var heldOpens: [Int: Int] = [:]

    /// The first broken invariant, or nil: each inode counts the regions that map it
    /// (`regionsOf`, from `MemoryState`) and the descriptors and held files that have it open;
    /// an inode nothing holds is gone (device nodes excepted); the page cache's pages are counted.
    func invariantViolation(regionsOf: [Int: Int]) -> String? {
        for (inode, _) in regionsOf where inodes[inode] == nil { return "a region maps missing inode \(inode)" }
        var cache = 0
        for (id, node) in inodes.live {
            guard node.regions == regionsOf[id, default: 0] else {
                return "inode \(node.path) counts \(node.regions) regions, \(regionsOf[id, default: 0]) map it"
            }
            guard !node.isUnused || node.device != nil else { return "inode \(node.path) unused but alive" }
            cache += node.pages.count + node.orphans.count
        }
        guard cache == pageCachePages else {
            return "page cache holds \(cache) pages, counted \(pageCachePages)"
        }
        // Descriptors, and the open files held in no table (exec's while it loads).
        var opens: [Int: Int] = heldOpens
        for (_, table) in tables.live {
            for f in table.descriptors.values { if let i = f.inode { opens[i, default: 0] += 1 } }
        }
        for (id, node) in inodes.live where node.opens != opens[id, default: 0] {
            return "inode \(node.path) counts \(node.opens) opens, \(opens[id, default: 0]) descriptors"
        }
        return nil
    }
}
