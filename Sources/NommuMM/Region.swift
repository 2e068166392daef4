// SPDX-License-Identifier: Apache-2.0
import PageAllocator

/// What a region's memory is.
enum Backing: Hashable {
    /// Anonymous memory (and `MAP_SHARED | MAP_ANONYMOUS`, which no-MMU treats as private).
    case anonymous
}

/// The kernel's `vm_region`: one contiguous run of memory that one or more mappings use.
///
/// A region lives in the system's global tree (ordered by start), is counted by
/// `usage` (the mappings that point at it, in any process), and owns the pages of `run`
/// when it is a private copy or anonymous memory (`VM_MAPPED_COPY`). [start, end) is
/// what was asked for, page-rounded; [end, top) is slack the trim rule left.
///
/// Simplified: no file or inode yet (the next issue adds file backings); no icache flag.
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
}

/// The kernel's `mm_struct`: a process's mappings in address order, with its counters.
/// `vfork` children share their parent's (`users` counts the processes using it).
struct AddressSpace {
    var mappings: [Mapping] = []
    /// `total_vm`: pages of new regions mapped; not decreased by munmap (as the kernel).
    var totalVM = 0
    var startStack: UInt = 0
    var users = 1

    /// `map_count`.
    var mapCount: Int { mappings.count }

    /// Removes and returns the mapping at `i` (`removeLast` when it is the last).
    mutating func remove(at i: Int) -> Mapping {
        i == mappings.count - 1 ? mappings.removeLast() : mappings.remove(at: i)
    }

    /// Index of the first mapping whose end is above `address` (binary search).
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
