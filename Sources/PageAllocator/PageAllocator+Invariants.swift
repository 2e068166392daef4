// SPDX-License-Identifier: Apache-2.0
import NommuBase
#if canImport(Glibc)
    import Glibc
#endif

extension PageAllocator {
    /// Checks every invariant (in checked builds only; an empty inlined body otherwise) and
    /// traps with the offending values if one fails. Called at the end of every mutating
    /// public operation. The walk is O(pages): in arenas above 2048 pages it runs on one
    /// call in pages / 1024, so the 65530-mapping tests stay tractable; small arenas (every
    /// exhaustive and random allocator test) are walked after every call.
    #if NOMMU_INTERNAL_CHECKS
        @inline(never)
        func _checkInvariants() {
            let skip = core.withLock { () -> Bool in
                zone.counters.pointee.checkCalls += 1
                return zone.counters.pointee.checkCalls % max(1, zone.totalPages / 1024) != 0
            }
            if skip { return }
            if let failure = invariantViolation() {
                preconditionFailure("PageAllocator invariant broken: \(failure)")
            }
        }
    #else
        @inline(__always)
        func _checkInvariants() {}
    #endif

    /// Walks the whole zone under the lock and returns the first broken invariant, or nil.
    ///
    /// Checked: every listed free block is aligned to its order, inside the arena, marked
    /// free with that order, on exactly one list (its own), with consistent back links;
    /// per-order counts equal list lengths and the non-empty mask matches; no two free
    /// buddies of equal order coexist; the arena is tiled exactly by heads (free blocks,
    /// allocated runs, per-CPU blocks) with every other page a tail; free + outstanding =
    /// total; free pages and slack match their counters. With `NOMMU_EXPENSIVE_CHECKS`,
    /// every byte of every page recorded as zero is read back.
    /// - Complexity: O(pages).
    package func invariantViolation() -> String? {
        core.withLock { invariantViolationLocked() }
    }

    func invariantViolationLocked() -> String? {
        let z = zone
        let s = z.counters.pointee
        var listedFree = 0
        var listedBlocks = 0
        for o in 0...maxOrder {
            var n = 0
            var prev = Zone.none
            var cur = z.heads[o]
            while cur != Zone.none {
                let p = Int(cur)
                guard p < totalPages else { return "order \(o) list holds pfn \(p) outside \(totalPages) pages" }
                guard p & ((1 << o) - 1) == 0 else { return "free block pfn \(p) not aligned to order \(o)" }
                guard p + (1 << o) <= totalPages else { return "free block pfn \(p) order \(o) runs past the arena" }
                guard z.state(p) == PageState.free.rawValue else {
                    return "pfn \(p) on order \(o) list has state \(z.state(p))"
                }
                guard Int(z.descriptors[p].order) == o else {
                    return "pfn \(p) on order \(o) list says order \(z.descriptors[p].order)"
                }
                guard z.descriptors[p].prev == prev else {
                    return "pfn \(p) on order \(o) list: prev \(z.descriptors[p].prev), expected \(prev)"
                }
                let buddy = p ^ (1 << o)
                if o < maxOrder && z.isFreeBuddy(buddy, o) {
                    return "free buddies pfn \(p) and \(buddy) of order \(o) did not merge"
                }
                n += 1
                guard n <= totalPages else { return "order \(o) list is cyclic" }
                prev = cur
                cur = z.descriptors[p].next
            }
            guard (s.nonEmpty >> UInt64(o)) & 1 == (n > 0 ? 1 : 0) else {
                return "order \(o): non-empty bit wrong (\(n) blocks)"
            }
            listedFree += n << o
            listedBlocks += n
        }
        guard s.nonEmpty >> UInt64(maxOrder + 1) == 0 else { return "non-empty mask has bits above maxOrder" }
        guard listedFree == s.freePages else {
            return "free lists hold \(listedFree) pages, counter says \(s.freePages)"
        }
        guard s.freePages + s.outstandingPages == totalPages else {
            return "free \(s.freePages) + outstanding \(s.outstandingPages) != total \(totalPages)"
        }
        // Tile the arena by heads.
        var p = 0
        var walkedFreeBlocks = 0
        var outstanding = 0
        var slack = 0
        while p < totalPages {
            let st = PageState(rawValue: z.state(p))
            let o = Int(z.descriptors[p].order)
            let extent: Int
            switch st {
            case .free:
                extent = 1 << o
                walkedFreeBlocks += 1
            case .allocated, .perCPU:
                extent = 1 << o
                guard Int(z.descriptors[p].runPages) == extent else {
                    return "block pfn \(p) order \(o) says \(z.descriptors[p].runPages) pages"
                }
                outstanding += extent
            case .allocatedExact:
                extent = Int(z.descriptors[p].runPages)
                guard extent >= 1, extent <= 1 << o else {
                    return "exact run pfn \(p) of \(extent) pages from order \(o)"
                }
                outstanding += extent
            case .allocatedExactSlack:
                extent = 1 << o
                guard Int(z.descriptors[p].runPages) <= extent else {
                    return "exact run pfn \(p) asks \(z.descriptors[p].runPages) of order \(o)"
                }
                slack += extent - Int(z.descriptors[p].runPages)
                outstanding += extent
            case .tail, .none:
                return "pfn \(p) starts no block (state \(z.state(p)))"
            }
            guard p & ((1 << o) - 1) == 0 || st == .allocatedExact else {
                return "block pfn \(p) not aligned to order \(o)"
            }
            guard p + extent <= totalPages else { return "block pfn \(p) of \(extent) pages runs past the arena" }
            for t in (p + 1)..<(p + extent) where z.state(t) != PageState.tail.rawValue {
                return "pfn \(t) inside the block at pfn \(p) is not a tail (state \(z.state(t)))"
            }
            p += extent
        }
        guard walkedFreeBlocks == listedBlocks else {
            return "\(walkedFreeBlocks) free heads in the arena, \(listedBlocks) on lists"
        }
        guard outstanding == s.outstandingPages else {
            return "runs hold \(outstanding) pages, counter says \(s.outstandingPages)"
        }
        let counted = s.slackPages + Int(core.perCPUTotalsLocked().totals.slack)
        guard slack == counted else { return "runs keep \(slack) slack pages, counters say \(counted)" }
        #if NOMMU_EXPENSIVE_CHECKS
            if let bad = knownZeroViolationLocked() { return bad }
        #endif
        return nil
    }

    /// Reads back every page recorded as zero in a free block. Lock held. O(arena bytes).
    package func knownZeroViolationLocked() -> String? {
        let z = zone
        func check(_ p: Int, _ o: Int, _ s: ZeroState) -> String? {
            switch s {
            case .dirty: return nil
            case .zero:
                let n = 1 << (o + z.pageShift)
                let base = UnsafeRawPointer(z.address(p))
                // All bytes equal the first, and the first is zero: memcmp of the run against
                // itself shifted by one byte (memory speed, even in debug builds).
                if base.load(as: UInt8.self) == 0 && memcmp(base, base + 1, n - 1) == 0 { return nil }
                let bytes = UnsafeRawBufferPointer(start: base, count: n)
                let i = bytes.firstIndex(where: { $0 != 0 }) ?? 0
                return "pfn \(p) order \(o) is recorded zero but byte \(i) is \(bytes[i])"
            case .mixed:
                guard o > 0 else { return "order-0 block pfn \(p) recorded mixed" }
                let (l, r) = z.children(p, o)
                return check(p, o - 1, l) ?? check(p + (1 << (o - 1)), o - 1, r)
            }
        }
        for o in 0...maxOrder {
            var cur = z.heads[o]
            while cur != Zone.none {
                if let bad = check(Int(cur), o, z.headZero(Int(cur))) { return bad }
                cur = z.descriptors[Int(cur)].next
            }
        }
        return nil
    }

    /// Reads back every free page recorded as zero; nil when all are. O(arena bytes).
    package func knownZeroViolation() -> String? {
        core.withLock { knownZeroViolationLocked() }
    }

    /// Pages known to be zero on the buddy free lists (for tests and reports).
    package func knownZeroFreePages() -> Int {
        core.withLock {
            let z = zone
            func count(_ p: Int, _ o: Int, _ s: ZeroState) -> Int {
                switch s {
                case .dirty: return 0
                case .zero: return 1 << o
                case .mixed:
                    let (l, r) = z.children(p, o)
                    return count(p, o - 1, l) + count(p + (1 << (o - 1)), o - 1, r)
                }
            }
            var n = 0
            for o in 0...maxOrder {
                var cur = z.heads[o]
                while cur != Zone.none {
                    n += count(Int(cur), o, z.headZero(Int(cur)))
                    cur = z.descriptors[Int(cur)].next
                }
            }
            return n
        }
    }
}
