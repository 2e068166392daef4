// SPDX-License-Identifier: Apache-2.0
import PageAllocator

extension System {
    #if NOMMU_INTERNAL_CHECKS
        @inline(never)
        func _checkInvariants() {
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
                for m in space.mappings {
                    guard m.start < m.end, m.start & (page - 1) == 0, m.end & (page - 1) == 0 else {
                        return "mm \(mm): mapping \(m.start)-\(m.end) empty or unaligned"
                    }
                    guard m.start >= last else { return "mm \(mm): mappings out of order or overlapping at \(m.start)" }
                    last = m.end
                    guard let r = s.regions[m.region] else {
                        return "mm \(mm): mapping points at missing region \(m.region)"
                    }
                    guard m.start >= r.start, m.end <= r.end else {
                        return "mm \(mm): mapping \(m.start)-\(m.end) outside its region \(r.start)-\(r.end)"
                    }
                    uses[m.region, default: 0] += 1
                }
            }
            var pages = 0
            var prevEnd: UInt = 0
            for id in s.tree {
                guard let r = s.regions[id] else { return "tree names missing region \(id)" }
                guard r.start <= r.end, r.end <= r.top, r.start & (page - 1) == 0, r.top & (page - 1) == 0 else {
                    return "region \(id) \(r.start)-\(r.end)-\(r.top) malformed"
                }
                guard r.start >= prevEnd else { return "region \(id) overlaps the one before it" }
                prevEnd = r.top
                guard r.usage == uses[id, default: 0] else {
                    return "region \(id) usage \(r.usage), \(uses[id, default: 0]) mappings"
                }
                if r.flags.contains(.mappedCopy) {
                    guard let run = r.run else { return "copy region \(id) without pages" }
                    guard UInt(bitPattern: allocator.address(of: run.start)) == r.start,
                        UInt(run.keptPages) << UInt(pageShift) == r.top - r.start
                    else { return "region \(id) does not match its run \(run)" }
                    pages += run.keptPages
                }
            }
            guard pages == s.mmapPagesAllocated else {
                return "regions hold \(pages) pages, mmap_pages_allocated \(s.mmapPagesAllocated)"
            }
            return nil
        }
        if let v { return v }
        let expected = mmapPagesAllocated + directPages
        if quiescent && allocator.statistics().allocatedPages != expected {
            return "allocator has \(allocator.statistics().allocatedPages) pages out, model \(expected)"
        }
        return allocator.invariantViolation()
    }
}
