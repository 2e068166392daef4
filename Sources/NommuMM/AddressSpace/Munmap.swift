// SPDX-License-Identifier: Apache-2.0
public import NommuBase
import PageAllocator

extension System {
    /// `Process.munmap`'s body.
    fileprivate func munmap(_ pid: Int32, address start: UInt, length: UInt) throws(Errno) {
        let page = pageSize
        // 1. len = PAGE_ALIGN(len); zero (or wrapped to zero) is EINVAL.
        let (sum, wrapped) = length.addingReportingOverflow(page - 1)
        let len = wrapped ? 0 : sum & ~(page - 1)
        guard len != 0 else { throw .invalidArgument }
        // end = start + len wrapping finds no VMA in the kernel: EINVAL.
        let (end, past) = start.addingReportingOverflow(len)
        guard !past else { throw .invalidArgument }
        try state.withLock { (s: inout ModelState) throws(Errno) in
            guard let mm = s.tasks.processes[pid] else { throw .noSuchProcess }
            // 2. The first VMA that intersects [start, end) (v6.1+ vma_find).
            // (Without overlapping mappings, a bisection; no array is built on this path, and
            // the address space is read in place, not copied out of its slot.)
            let found = s.mm.spaces.update(mm) { space -> (index: Int, vma: Mapping)? in
                if space.hasOverlaps {
                    guard let k = space.indices(intersecting: start, end).first else { return nil }
                    return (k, space.mappings[k])
                }
                let k = space.firstIndex(endingAbove: start)
                guard k < space.mappings.count, space.mappings[k].start < end else { return nil }
                return (k, space.mappings[k])
            }
            guard let (i, vma) = found else { throw .invalidArgument }
            // 3. File mappings are never split: only a VMA starting at or after `start` and
            // ending exactly at `end` goes, whole.
            if s.mm.regions.update(vma.region, { $0.backing.isFile }) {
                // (Where mappings overlap, which only device and shareable file mappings do,
                // one that starts below `start` is passed over rather than refused.)
                let overlapping = s.mm.spaces[mm]!.hasOverlaps
                for c in s.mm.spaces[mm]!.indices(intersecting: start, end) {
                    let m = s.mm.spaces[mm]!.mappings[c]
                    if start > m.start {
                        if overlapping { continue }
                        throw .invalidArgument
                    }
                    if end == m.end {
                        removeMapping(at: c, of: mm, in: &s)
                        return
                    }
                }
                throw .invalidArgument
            }
            // 4. Anonymous memory: whole, or a cut at the front, the back or the middle.
            if start == vma.start && end == vma.end {
                removeMapping(at: i, of: mm, in: &s)
                return
            }
            guard start >= vma.start, end <= vma.end else { throw .invalidArgument }
            guard start & (page - 1) == 0 else { throw .invalidArgument }
            guard end == vma.end || end & (page - 1) == 0 else { throw .invalidArgument }
            var index = i
            if start != vma.start && end != vma.end {
                // A hole in the middle: split_vma(below) first; map_count limit → ENOMEM.
                guard s.mm.spaces[mm]!.mapCount < System.maxMapCount else { throw .noMemory }
                splitBelow(at: start, mappingAt: i, of: mm, in: &s)
                index = i + 1  // the upper part, now starting at `start`
            }
            shrink(mappingAt: index, of: mm, cutting: start, end, in: &s)
        }
        _checkInvariants()
    }

    /// Removes a whole mapping and puts its region (kernel: `delete_vma` + `__put_nommu_region`).
    func removeMapping(at i: Int, of mm: Int, in s: inout ModelState) {
        let m = s.mm.spaces.update(mm) { $0.remove(at: i) }
        // vm_ops->close: a SysV attach counts down its segment's attaches.
        if let seg = m.shm { sysvDetached(seg, in: &s) }
        putRegion(m.region, in: &s)
    }

    /// Drops one use of a region; the last use frees a private copy's pages.
    func putRegion(_ id: Int, in s: inout ModelState) {
        // (What the last use needs is read in the slot: the region is not copied out.)
        let (last, run, inode) = s.mm.regions.update(id) { r in
            r.usage -= 1
            return (r.usage == 0, r.flags.contains(.mappedCopy) ? r.run : nil, r.backing.inode)
        }
        guard last else { return }
        s.mm.removeRegion(id)
        if let run {
            s.mm.mmapPagesAllocated -= run.keptPages
            releaseOrTrap(run)
        }
        if let inode {
            s.fs.inodes.update(inode) { $0.regions -= 1 }
            releaseIfUnused(inode, in: &s)
        }
    }

    /// `split_vma(vma, addr, new_below = 1)`: [vma.start, addr) becomes a mapping of a new
    /// region without slack; the original keeps [addr, end) and its region's top, and its
    /// page offset moves up by the pages split off.
    func splitBelow(at addr: UInt, mappingAt i: Int, of mm: Int, in s: inout ModelState) {
        let vma = s.mm.spaces[mm]!.mappings[i]
        var upperRegion = s.mm.regions[vma.region]!
        let npages = (addr - vma.start) >> UInt(pageShift)
        guard let run = upperRegion.run else { preconditionFailure("splitting a region without pages") }
        let pieces: (lower: PageRun, upper: PageRun)
        do {
            pieces = try allocator.split(run, at: Int((addr - upperRegion.start) >> UInt(pageShift)))
        } catch {
            preconditionFailure("model lost track of \(run): \(error)")
        }
        var lowerRegion = upperRegion
        lowerRegion.start = vma.start
        lowerRegion.end = addr
        lowerRegion.top = addr
        lowerRegion.usage = 1
        lowerRegion.run = pieces.lower
        upperRegion.start = addr
        upperRegion.pgoff += npages
        upperRegion.run = pieces.upper
        s.mm.regions[vma.region] = upperRegion
        let lowerID = s.mm.addRegion(lowerRegion)
        var lower = vma
        lower.end = addr
        lower.region = lowerID
        s.mm.spaces[mm]!.mappings[i].start = addr
        s.mm.spaces[mm]!.mappings[i].pgoff += npages
        s.mm.spaces[mm]!.mappings.insert(lower, at: i)
    }

    /// `vmi_shrink_vma`: cuts [from, to) off the front or the back of an anonymous mapping
    /// and its region, freeing those pages; a back cut frees the slack with them.
    func shrink(mappingAt i: Int, of mm: Int, cutting from: UInt, _ to: UInt, in s: inout ModelState) {
        let vma = s.mm.spaces[mm]!.mappings[i]
        var r = s.mm.regions[vma.region]!
        precondition(r.usage == 1, "shrinking a shared region")
        guard let run = r.run else { preconditionFailure("shrinking a region without pages") }
        let shift = UInt(pageShift)
        let freedFrom: UInt
        let freedTo: UInt
        if from > vma.start {
            s.mm.spaces[mm]!.mappings[i].end = from
            freedFrom = from
            freedTo = r.top
            r.top = from
            r.end = from
        } else {
            s.mm.spaces[mm]!.mappings[i].start = to
            freedFrom = r.start
            freedTo = to
            r.start = to
        }
        let count = Int((freedTo - freedFrom) >> shift)
        let runStart = UInt(bitPattern: allocator.address(of: run.start))
        do {
            let (before, after) = try allocator.releasePages(
                of: run, offset: Int((freedFrom - runStart) >> shift), count: count)
            r.run = before ?? after
        } catch {
            preconditionFailure("model lost track of \(run): \(error)")
        }
        s.mm.mmapPagesAllocated -= count
        s.mm.regions[vma.region] = r
    }
}

extension Process {
    /// `munmap(addr, len)` under no-MMU rules: whole mappings, and for anonymous memory a
    /// cut at the front, the back or (splitting it) the middle.
    /// - Throws: `EINVAL` for a zero (or wrapping) length, a range in no mapping, a range
    ///   past the mapping or spanning two, a start not page aligned; `ENOMEM` when a middle
    ///   cut would need a split with 65530 mappings already; `ESRCH` when exited.
    ///
    /// Models `do_munmap` / `split_vma` / `vmi_shrink_vma` in mm/nommu.c (v6.1+).
    public func munmap(address: UInt, length: UInt) throws(Errno) {
        try system.munmap(pid, address: address, length: length)
    }
}
