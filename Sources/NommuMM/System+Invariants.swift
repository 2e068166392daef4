// SPDX-License-Identifier: Apache-2.0
import PageAllocator

extension System {
    #if NOMMU_INTERNAL_CHECKS
        /// A full walk costs O(regions + mappings): past 256 regions, one call in
        /// regions / 64 walks, so a test with 65530 mappings stays near O(n) overall.
        @inline(never)
        func _checkInvariants() {
            let size = state.withLock { $0.regions.count }
            let n = checkCalls.withLock { c -> Int in
                c += 1
                return c
            }
            if size > 256 && n % (size / 64) != 0 { return }
            // Other threads may be between allocating a run and entering it in the model, so the
            // allocator cross-count is left to the quiescent checks.
            if let v = invariantViolation(quiescent: false) {
                preconditionFailure("address-space invariant broken: \(v)")
            }
        }
    #else
        @inline(__always)
        func _checkInvariants() {}
    #endif

    /// The first broken invariant, or nil. Checked: every address space's mappings are
    /// sorted, page aligned, non-empty, non-overlapping, inside their regions, and counted;
    /// every region is aligned (start ≤ end ≤ top), in the tree in address order without
    /// overlap, its usage equals the mappings that point at it, and its run holds exactly
    /// [start, top); `mmap_pages_allocated` equals the regions' pages; the allocator's own
    /// invariants hold. When `quiescent` (no call in flight on any thread), also: the pages
    /// the allocator has handed out are exactly the model's (an `mmap` allocates and clears
    /// its run before it takes the model lock to enter it).
    package func invariantViolation(quiescent: Bool = true) -> String? {
        let v: String? = state.withLock { s in
            let page = pageSize
            var uses: [Int: Int] = [:]
            for (mm, space) in s.spaces.live {
                var last: UInt = 0
                var lastStart: UInt = 0
                for m in space.mappings {
                    guard let r = s.regions[m.region] else {
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
            var regionsOf: [Int: Int] = [:]
            for id in s.tree {
                guard let r = s.regions[id] else { return "tree names missing region \(id)" }
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
                if let inode = r.backing.inode {
                    guard s.inodes[inode] != nil else { return "region \(id) maps missing inode \(inode)" }
                    regionsOf[inode, default: 0] += 1
                }
                if r.flags.contains(.mappedCopy) {
                    guard let run = r.run else { return "copy region \(id) without pages" }
                    guard UInt(bitPattern: allocator.address(of: run.start)) == r.start,
                        UInt(run.keptPages) << UInt(pageShift) == r.top - r.start
                    else { return "region \(id) does not match its run \(run)" }
                    pages += run.keptPages
                } else if r.run != nil {
                    return "direct region \(id) owns pages"
                }
            }
            guard pages == s.mmapPagesAllocated else {
                return "regions hold \(pages) pages, mmap_pages_allocated \(s.mmapPagesAllocated)"
            }
            var cache = 0
            for (id, node) in s.inodes.live {
                guard node.regions == regionsOf[id, default: 0] else {
                    return "inode \(node.path) counts \(node.regions) regions, \(regionsOf[id, default: 0]) map it"
                }
                guard !node.isUnused || node.device != nil else { return "inode \(node.path) unused but alive" }
                cache += node.pages.count + node.orphans.count
            }
            guard cache == s.pageCachePages else {
                return "page cache holds \(cache) pages, counted \(s.pageCachePages)"
            }
            // Descriptors, and the open files held in no table (exec's while it loads).
            var opens: [Int: Int] = s.heldOpens
            for (_, table) in s.tables.live {
                for f in table.descriptors.values { if let i = f.inode { opens[i, default: 0] += 1 } }
            }
            for (id, node) in s.inodes.live where node.opens != opens[id, default: 0] {
                return "inode \(node.path) counts \(node.opens) opens, \(opens[id, default: 0]) descriptors"
            }
            let device = (s.ramdisk?.keptPages ?? 0) + (s.framebuffer?.keptPages ?? 0)
            guard device == s.devicePages else { return "device memory \(device) pages, counted \(s.devicePages)" }
            return nil
        }
        if let v { return v }
        let expected = directPages + state.withLock { $0.mmapPagesAllocated + $0.pageCachePages + $0.devicePages }
        if quiescent && allocator.statistics().allocatedPages != expected {
            return "allocator has \(allocator.statistics().allocatedPages) pages out, model \(expected)"
        }
        return allocator.invariantViolation()
    }
}
