// SPDX-License-Identifier: Apache-2.0
import PageAllocator

/// What a region's memory is.
enum Backing: Hashable {
    /// Anonymous memory (and `MAP_SHARED | MAP_ANONYMOUS`, which no-MMU treats as private).
    case anonymous
    /// A file or device (the inode's slot): a private copy when the region has
    /// `VM_MAPPED_COPY`, else the backing memory mapped in place.
    case file(Int)
    /// A private copy of a procfs file's text (`/proc/meminfo` and the other `proc_create`
    /// files), by its path's number in `ModelState.procPaths`: a file mapping to munmap and
    /// mremap, with no inode in the model. (A number, not the path: a region holds no
    /// reference, so storing and dropping one on every mmap and munmap is a plain copy.)
    case procCopy(Int)

    var inode: Int? {
        if case .file(let i) = self { return i }
        return nil
    }

    /// Whether a file is behind it (munmap takes such a mapping only whole).
    var isFile: Bool { self != .anonymous }
}

/// The kernel's `vm_region`: one contiguous run of memory that one or more mappings use.
///
/// A region is global (`ModelState.regions`: the kernel's tree, kept in slots and sorted by
/// start when asked, `ModelState.tree`), is counted by
/// `usage` (the mappings that point at it, in any process), and owns the pages of `run`
/// when it is a private copy or anonymous memory (`VM_MAPPED_COPY`). [start, end) is
/// what was asked for, page-rounded; [end, top) is slack the trim rule left.
///
/// A direct region (no `VM_MAPPED_COPY`) maps memory it does not own: page cache, device
/// memory or the flash window; its start need not be page aligned (XIP), and direct
/// regions of one device may overlap. Simplified: no icache flag.
struct Region {
    var start: UInt
    var end: UInt
    var top: UInt
    var pgoff: UInt
    var flags: VMFlags
    var usage: Int
    var backing: Backing
    /// The allocator run holding [start, top), for regions that own their pages.
    var run: PageRun?
}

/// The kernel's `vm_area_struct` (a VMA): one process's use of [start, end) of a region.
struct Mapping {
    var start: UInt
    var end: UInt
    var region: Int
    var flags: VMFlags
    var pgoff: UInt
    /// The SysV segment attached here (its `vm_ops` count attaches), if any.
    var shm: CInt? = nil
}

/// The kernel's `mm_struct`: a process's mappings in address order, with its counters.
/// `vfork` children share their parent's (`users` counts the processes using it).
struct AddressSpace {
    var mappings: [Mapping] = []
    /// `total_vm`: pages of new regions mapped; not decreased by munmap (as the kernel).
    var totalVM = 0
    var startStack: UInt = 0
    var users = 1
    /// `get_dumpable(mm) == SUID_DUMP_USER`: cleared when a process of it changes its uid
    /// (commit_creds, with fs.suid_dumpable 0); a new one from exec starts set. Another
    /// process of the same uid may read its maps only while it is set.
    var dumpable = true
    /// Set once two mappings overlap (a device or shareable file mapped twice: the same region in one process twice):
    /// lookups then scan instead of bisecting.
    var hasOverlaps = false
    /// The brk range ELF-FDPIC sets up: [startBrk, endBrk], brk within it.
    var startBrk: UInt = 0
    var brk: UInt = 0
    var endBrk: UInt = 0

    /// `map_count`.
    var mapCount: Int { mappings.count }

    /// Removes and returns the mapping at `i` (`removeLast` when it is the last).
    mutating func remove(at i: Int) -> Mapping {
        i == mappings.count - 1 ? mappings.removeLast() : mappings.remove(at: i)
    }

    /// Indices of the mappings that intersect [start, end), in address order.
    func indices(intersecting start: UInt, _ end: UInt) -> [Int] {
        if hasOverlaps {
            return mappings.indices.filter { mappings[$0].start < end && mappings[$0].end > start }
        }
        var out: [Int] = []
        var i = firstIndex(endingAbove: start)
        while i < mappings.count && mappings[i].start < end {
            out.append(i)
            i += 1
        }
        return out
    }

    /// Index of a mapping containing `address`, if any (allocates nothing: malloc paths use it).
    func index(containing address: UInt) -> Int? {
        if hasOverlaps {
            return mappings.firstIndex { $0.start <= address && address < $0.end }
        }
        let i = firstIndex(endingAbove: address)
        return i < mappings.count && mappings[i].start <= address ? i : nil
    }

    /// Index of the first mapping whose end is above `address` (binary search; valid while
    /// no two mappings overlap).
    func firstIndex(endingAbove address: UInt) -> Int {
        var lo = 0
        var hi = mappings.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if mappings[mid].end > address { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }

    /// Inserts `m` keeping address order (appending when it goes last, the common case:
    /// `Array.insert` takes a slower generic path).
    mutating func insert(_ m: Mapping) {
        if !hasOverlaps {
            let i = firstIndex(endingAbove: m.start)
            if i < mappings.count && mappings[i].start < m.end { hasOverlaps = true }
        }
        let goesLast = mappings.last.map { $0.start < m.start || ($0.start == m.start && $0.end <= m.end) } ?? true
        if goesLast {
            mappings.append(m)
            return
        }
        var lo = 0
        var hi = mappings.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if mappings[mid].start < m.start || (mappings[mid].start == m.start && mappings[mid].end <= m.end) {
                lo = mid + 1
            } else {
                hi = mid
            }
        }
        mappings.insert(m, at: lo)
    }
}
