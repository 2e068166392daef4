// SPDX-License-Identifier: Apache-2.0
import PageAllocator

/// The address spaces and the global regions (mm/nommu.c's `nommu_region_tree` and the
/// `mm_struct`s), with `mmap_pages_allocated`.
struct MemoryState {
    /// The global regions (`vm_region`s), in slots.
    var regions = Slab<Region>()
    /// The address spaces (`mm_struct`s), in slots; `TaskState.processes` names them.
    var spaces = Slab<AddressSpace>()
    /// `mmap_pages_allocated`: pages held by private-copy and anonymous regions.
    var mmapPagesAllocated = 0
    /// vm.overcommit_memory, _ratio and _kbytes (kept, and read by nothing, as without an MMU).
    var overcommit = OvercommitSettings()
    /// The paths of procfs files that private copies were made of (`Backing.procCopy`
    /// numbers them; a path is entered once and kept: there are few of them).
    var procPaths: [String] = []

    /// The kernel's global region tree, as an ordered list of region ids: regions are
    /// kept in slots and sorted by address only when something needs the order
    /// (`/proc/maps`, the checks), so mmap and munmap pay no ordered insert or removal.
    var tree: [Int] {
        regions.live.sorted { $0.1.start < $1.1.start }.map(\.0)
    }

    mutating func addRegion(_ r: Region) -> Int { regions.insert(r) }

    mutating func removeRegion(_ id: Int) {
        regions.free(id)
    }

    /// The number of `path` in `procPaths`, entered when new.
    mutating func procPathNumber(_ path: String) -> Int {
        if let i = procPaths.firstIndex(of: path) { return i }
        procPaths.append(path)
        return procPaths.count - 1
    }

    /// The path `/proc/*/maps` prints for a copy of a procfs file; nil for other backings.
    func procPath(of backing: Backing) -> String? {
        if case .procCopy(let i) = backing { return procPaths[i] }
        return nil
    }

    /// The first broken invariant, or nil. Every address space's mappings are sorted, page
    /// aligned (a direct mapping's start excepted: XIP), non-empty, inside their regions, and
    /// overlap only where the space says so (and never over anonymous memory); every region
    /// is well formed (start ≤ end ≤ top, aligned unless direct), regions that own memory
    /// never overlap, a region's usage equals the mappings that point at it, and a copy's run
    /// holds exactly [start, top); `mmap_pages_allocated` equals the regions' kept pages.
    /// - Parameters:
    ///   - page: The page size. - pageShift: Its log2.
    ///   - address: The address of a run's first page.
    ///   - regionsOf: Set to the number of regions mapping each inode.
    func invariantViolation(
        page: UInt, pageShift: Int, address: (PageRun) -> UInt, regionsOf: inout [Int: Int]
    ) -> String? {
        var uses: [Int: Int] = [:]
        for (mm, space) in spaces.live {
            var last: UInt = 0
            var lastStart: UInt = 0
            for m in space.mappings {
                guard let r = regions[m.region] else {
                    return "mm \(mm): mapping points at missing region \(m.region)"
                }
                let direct = r.backing.inode != nil && !r.flags.contains(.mappedCopy)
                guard m.start < m.end, direct || m.start & (page - 1) == 0, (m.end - m.start) & (page - 1) == 0
                else { return "mm \(mm): mapping \(m.start)-\(m.end) empty or unaligned" }
                guard m.start >= lastStart else { return "mm \(mm): mappings out of order at \(m.start)" }
                guard m.start >= last || space.hasOverlaps else {
                    return "mm \(mm): mappings overlap at \(m.start) without the overlap flag"
                }
                last = max(last, m.end)
                lastStart = m.start
                // A shared region's end may have been clamped by a truncate below a mapping
                // of its pages (`ramfs_nommu_resize`); every other mapping lies inside its region.
                guard m.start >= r.start, m.end <= r.end || r.flags.contains(.shared) else {
                    return "mm \(mm): mapping \(m.start)-\(m.end) outside its region \(r.start)-\(r.end)"
                }
                if !r.backing.isFile && space.hasOverlaps {
                    for o in space.mappings where o.start < m.end && o.end > m.start && o.region != m.region {
                        return "mm \(mm): anonymous mapping \(m.start)-\(m.end) overlaps \(o.start)-\(o.end)"
                    }
                }
                uses[m.region, default: 0] += 1
            }
        }
        var pages = 0
        var prevEnd: UInt = 0
        for id in tree {
            guard let r = regions[id] else { return "tree names missing region \(id)" }
            let direct = r.backing.inode != nil && !r.flags.contains(.mappedCopy)
            guard r.start <= r.end, r.end <= r.top else {
                return "region \(id) \(r.start)-\(r.end)-\(r.top) malformed"
            }
            guard direct || (r.start & (page - 1) == 0 && r.top & (page - 1) == 0) else {
                return "region \(id) \(r.start)-\(r.end)-\(r.top) unaligned"
            }
            if !direct {
                // Memory a region owns is nobody else's: copies and anonymous regions
                // never overlap any region.
                guard r.start >= prevEnd else { return "region \(id) overlaps the one before it" }
                prevEnd = r.top
            }
            guard r.usage == uses[id, default: 0] else {
                return "region \(id) usage \(r.usage), \(uses[id, default: 0]) mappings"
            }
            if let inode = r.backing.inode { regionsOf[inode, default: 0] += 1 }
            if r.flags.contains(.mappedCopy) {
                guard let run = r.run else { return "copy region \(id) without pages" }
                guard address(run) == r.start, UInt(run.keptPages) << UInt(pageShift) == r.top - r.start
                else { return "region \(id) does not match its run \(run)" }
                pages += run.keptPages
            } else if r.run != nil {
                return "direct region \(id) owns pages"
            }
        }
        guard pages == mmapPagesAllocated else {
            return "regions hold \(pages) pages, mmap_pages_allocated \(mmapPagesAllocated)"
        }
        return nil
    }
}
