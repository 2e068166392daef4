// SPDX-License-Identifier: Apache-2.0
public import NommuBase

extension PageAllocator {
    /// Allocates the pages that hold `bytes`, the way no-MMU mmap does.
    ///
    /// The run comes from the 2^order block that covers the page-rounded request
    /// (`order = get_order(len)`). If `vm.nr_trim_pages` (or `trimThreshold`) is non-zero
    /// and the excess is at least that many pages, the excess goes back to the free lists
    /// at once, as the few aligned blocks that tile it; otherwise the whole block stays
    /// with the run and the excess is slack. With `.zeroed`, exactly the pages asked for
    /// are cleared, [start, start + PAGE_ALIGN(bytes)), as `do_mmap` clears
    /// [vm_start, vm_end) (skipping pages known to be zero); slack is never cleared. Not
    /// clearing the tail of the last page would leave a previous owner's bytes readable.
    ///
    /// - Parameters:
    ///   - bytes: Bytes asked for, > 0.
    ///   - initialization: `.zeroed` (default) or `.uninitialized`.
    ///   - trimThreshold: Overrides `vm.nr_trim_pages` for this call (≥ 0).
    /// - Returns: The run; `keptPages - pages` is its slack.
    /// - Throws: `EINVAL` for `bytes ≤ 0` or a negative threshold; `ENOMEM` when the
    ///   page-rounded length overflows, its order is above `maxOrder`, or no block fits.
    /// - Complexity: O(maxOrder) plus clearing; never touches pages it does not clear.
    ///
    /// Models the allocation and trim of `do_mmap_private()` in mm/nommu.c (v3.x shape:
    /// `alloc_pages(order)`, excess returned in aligned chunks).
    @inline(__always)
    public func allocateExact(
        bytes: Int, _ initialization: Initialization = .zeroed, trimThreshold: Int? = nil
    ) throws(Errno) -> PageRun {
        // Fast path: a whole block of order ≤ 3 (no excess: nothing to trim or keep as slack)
        // popped from this thread's list, as `allocate(order:)` pops one. Everything else
        // (other sizes, refills, errors) is out of line.
        if perCPU && trimThreshold == nil
            && UInt(bitPattern: bytes &- 1) < UInt(bitPattern: pageSize &<< PerCPUPages.maxOrder)
        {
            let n = (bytes &+ pageSize &- 1) &>> zone.pageShift
            let k = n.trailingZeroBitCount
            if n & (n &- 1) == 0 && k <= maxOrder, let cache = cachedLocalCache(), let pfn = cache.popOwned(k, zone) {
                serializedInCheckedBuilds { _ in
                    zone.descriptors[pfn].order = UInt8(truncatingIfNeeded: k)
                    zone.descriptors[pfn].runPages = UInt32(truncatingIfNeeded: n)
                    zone.setState(pfn, .allocatedExact)
                }
                if initialization == .uninitialized {
                    cache.add(PerCPUPages.exactUninitializedSlot, 1)
                    cache.add(PerCPUPages.exactUninitializedBytesSlot, Int64(n &<< zone.pageShift))
                    poisonUninitialized(pfn, bytes: n &<< zone.pageShift)
                    _checkInvariants()
                } else {
                    clearPerCPU(cache, pfn, order: k)
                }
                return PageRun(_uncheckedStart: pfn, pages: n, order: k, keptPages: n, isExact: true)
            }
        }
        return try allocateExactSlow(bytes: bytes, initialization, trimThreshold: trimThreshold)
    }

    @inline(never)
    func allocateExactSlow(
        bytes: Int, _ initialization: Initialization, trimThreshold: Int?
    ) throws(Errno) -> PageRun {
        guard bytes > 0 else { throw .invalidArgument }
        if let t = trimThreshold, t < 0 { throw .invalidArgument }
        guard bytes <= Int.max - (pageSize - 1) else {
            core.withLock { zone.counters.pointee.failedAllocations += 1 }
            throw .noMemory
        }
        let n = (bytes + pageSize - 1) >> zone.pageShift
        let k = Order.covering(pages: n).rawValue
        guard k <= maxOrder else {
            core.withLock { zone.counters.pointee.failedAllocations += 1 }
            throw .noMemory
        }
        // Orders up to PAGE_ALLOC_COSTLY_ORDER come from the per-CPU lists, as alloc_pages
        // serves them; their trimmed excess goes back onto the lists (as free_page would).
        if perCPU && k <= PerCPUPages.maxOrder, let cache = localCache() {
            return try allocateExactPerCPU(cache, pages: n, order: k, initialization, trimThreshold: trimThreshold)
        }
        let (pfn, kept) = try core.withLock { () throws(Errno) -> (Int, Int) in
            let p = try takeLocked(order: k)
            account(p, order: k, bytes: n << zone.pageShift, initialization)
            let total = 1 &<< k
            let excess = total - n
            let threshold = trimThreshold ?? zone.counters.pointee.nrTrimPages
            let trimmed = threshold != 0 && excess >= threshold
            let kept = trimmed ? n : total
            if trimmed && excess > 0 {
                let given = zone.trim(p, k, keep: n)
                zone.counters.pointee.pagesTrimmed += Int64(given)
            }
            zone.descriptors[p].order = UInt8(truncatingIfNeeded: k)
            zone.descriptors[p].runPages = UInt32(truncatingIfNeeded: n)
            zone.setState(p, kept == n ? .allocatedExact : .allocatedExactSlack)
            zone.counters.pointee.slackPages += kept - n
            zone.counters.pointee.allocations += 1
            return (p, kept)
        }
        finishInitialization(pfn, order: k, bytes: n << zone.pageShift, initialization)
        _checkInvariants()
        return PageRun(_uncheckedStart: pfn, pages: n, order: k, keptPages: kept, isExact: true)
    }

    /// Frees a run made by `allocateExact`: every page it holds, slack included, goes back
    /// as aligned blocks that merge with their buddies.
    ///
    /// - Parameters:
    ///   - start: The run's first page.
    ///   - pages: The page-rounded length it was allocated with.
    /// - Throws: `EINVAL` when `start` is not the first page of an exact run of that many
    ///   pages (double free, page inside a run, wrong length, a block from
    ///   `allocate(order:)`). Nothing changes.
    ///
    /// - Returns: The pages given back (slack included).
    ///
    /// Models `free_pages_exact()` / `free_page_series()`.
    @discardableResult @inline(__always)
    public func freeExact(_ start: PageFrameNumber, pages: Int) throws(Errno) -> Int {
        let p = start.rawValue
        // Fast path: a whole aligned block of order ≤ 3 with no slack goes onto this thread's
        // list as `free(_:order:)` puts one. The caller owns the run, so its descriptor is
        // stable; anything else reads differently and takes the checked path.
        // (A head whose block order is ≤ 3 and whose block is its run: 2^order == pages.)
        if perCPU && UInt(bitPattern: p) < UInt(totalPages)
            && zone.state(p) == PageState.allocatedExact.rawValue && zone.descriptors[p].order <= PerCPUPages.maxOrder
            && 1 &<< Int(zone.descriptors[p].order) == pages && Int(zone.descriptors[p].runPages) == pages
            && p & (pages &- 1) == 0,
            let cache = cachedLocalCache()
        {
            pushPerCPU(cache, p, order: Int(zone.descriptors[p].order))
            return pages
        }
        return try freeExactSlow(p, pages: pages)
    }

    @inline(never)
    func freeExactSlow(_ p: Int, pages: Int) throws(Errno) -> Int {
        guard p >= 0, p < totalPages, pages > 0 else { throw .invalidArgument }
        // A run of order ≤ 3 goes onto this thread's per-CPU lists. The caller owns the
        // run, so its descriptor is stable; anything else takes the locked path, which
        // refuses it before anything is written.
        if perCPU, zone.descriptors[p].order <= PerCPUPages.maxOrder, Int(zone.descriptors[p].runPages) == pages {
            let st = zone.state(p)
            if st == PageState.allocatedExact.rawValue || st == PageState.allocatedExactSlack.rawValue,
                let cache = localCache()
            {
                return freeExactPerCPU(cache, p, pages: pages, slack: st == PageState.allocatedExactSlack.rawValue)
            }
        }
        let released = try core.withLock { () throws(Errno) -> Int in
            let st = zone.state(p)
            guard st == PageState.allocatedExact.rawValue || st == PageState.allocatedExactSlack.rawValue,
                Int(zone.descriptors[p].runPages) == pages
            else { throw .invalidArgument }
            let kept = st == PageState.allocatedExactSlack.rawValue ? 1 &<< Int(zone.descriptors[p].order) : pages
            poisonFreed(p, bytes: kept << zone.pageShift)
            zone.counters.pointee.slackPages -= kept - pages
            zone.counters.pointee.frees += 1
            zone.freeRange(p, pages: kept, zero: .dirty)
            return kept
        }
        _checkInvariants()
        return released
    }

    /// Frees the exact run that starts at `start` and was allocated for `bytes` bytes.
    /// - Throws: `EINVAL` as `freeExact(_:pages:)`, and for `bytes ≤ 0`.
    /// - Returns: The pages given back (slack included).
    @discardableResult
    public func freeExact(_ start: PageFrameNumber, bytes: Int) throws(Errno) -> Int {
        guard bytes > 0, bytes <= Int.max - (pageSize - 1) else { throw .invalidArgument }
        return try freeExact(start, pages: (bytes + pageSize - 1) >> zone.pageShift)
    }
}

extension PageAllocator {
    /// Runs `body` (given whether the zone lock is held). The exact per-CPU paths change
    /// several descriptors and a counter without the lock; checked builds take the lock
    /// around them so that the whole-zone walk of `_checkInvariants` never sees one half done.
    @inline(__always)
    func serializedInCheckedBuilds<R>(_ body: (Bool) -> R) -> R {
        #if NOMMU_INTERNAL_CHECKS
            core.withLock { body(true) }
        #else
            body(false)
        #endif
    }

    /// `allocateExact` of a run whose block order is ≤ 3, from the calling thread's lists.
    @inline(__always)
    func allocateExactPerCPU(
        _ cache: PerCPUPages, pages n: Int, order k: Int, _ initialization: Initialization, trimThreshold: Int?
    ) throws(Errno) -> PageRun {
        let pfn: Int
        if let p = cache.popOwned(k, zone) { pfn = p } else { pfn = try refill(cache, order: k) }
        let total = 1 &<< k
        let excess = total &- n
        let threshold = trimThreshold ?? core.nrTrimPages.load(ordering: .relaxed)
        let trimmed = threshold != 0 && excess >= threshold && excess > 0
        let kept = trimmed ? n : total
        serializedInCheckedBuilds { locked in
            if trimmed {
                // With the zone lock held no drainer can be at this list: no handshake.
                let given: Int
                if locked {
                    given = zone.trim(pfn, k, keep: n) { q, o in enterPerCPU(q, order: o, cache) }
                } else if cache.enter() {
                    given = zone.trim(pfn, k, keep: n) { q, o in enterPerCPU(q, order: o, cache) }
                    cache.leave()
                } else {
                    // Another thread is draining this list: the excess goes to the zone.
                    cache.leave()
                    given = core.withLock { zone.trim(pfn, k, keep: n) }
                }
                cache.add(PerCPUPages.trimmedSlot, Int64(given))
            } else if excess > 0 {
                cache.add(PerCPUPages.slackSlot, Int64(excess))
            }
            zone.descriptors[pfn].order = UInt8(truncatingIfNeeded: k)
            zone.descriptors[pfn].runPages = UInt32(truncatingIfNeeded: n)
            zone.setState(pfn, kept == n ? .allocatedExact : .allocatedExactSlack)
        }
        if trimmed { for o in 0..<k where cache.isOverHigh(o) { drainBatch(cache, order: o) } }
        let bytes = n &<< zone.pageShift
        if initialization == .zeroed {
            let r = zone.clear(pfn, k, limit: bytes, dryRun: false)
            cache.add(PerCPUPages.bytesZeroedSlot, Int64(r.zeroed))
            cache.add(PerCPUPages.bytesKnownZeroSlot, Int64(r.skipped))
            cache.add(PerCPUPages.zeroedAllocationsSlot, 1)
        } else {
            cache.add(PerCPUPages.exactUninitializedSlot, 1)
            cache.add(PerCPUPages.exactUninitializedBytesSlot, Int64(bytes))
            poisonUninitialized(pfn, bytes: bytes)
        }
        _checkInvariants()
        return PageRun(_uncheckedStart: pfn, pages: n, order: k, keptPages: kept, isExact: true)
    }

    /// `freeExact` of a run whose block order is ≤ 3 (checked by the caller): its pages go
    /// onto the calling thread's lists as the aligned blocks that tile it.
    @inline(__always)
    func freeExactPerCPU(_ cache: PerCPUPages, _ p: Int, pages: Int, slack: Bool) -> Int {
        let order = Int(zone.descriptors[p].order)
        let kept = slack ? 1 &<< order : pages
        poisonFreed(p, bytes: kept &<< zone.pageShift)
        if kept == 1 &<< order && p & (kept &- 1) == 0 {
            // One whole aligned block (a power of two, or kept with its slack): one push.
            // (A piece munmap cut from a run may start anywhere: that takes the loop.)
            serializedInCheckedBuilds { locked in
                if slack { cache.add(PerCPUPages.slackSlot, -Int64(kept &- pages)) }
                zone.setHeadZero(p, .dirty)
                if locked || cache.enter() {
                    enterPerCPU(p, order: order, cache)
                    if !locked { cache.leave() }
                } else {
                    cache.leave()
                    zone.setState(p, .perCPU)
                    freeToZone(p, order: order)
                }
            }
            cache.add(PerCPUPages.freesSlot, 1)
            if cache.isOverHigh(order) { drainBatch(cache, order: order) }
            _checkInvariants()
            return kept
        }
        serializedInCheckedBuilds { locked in
            // With the zone lock held no drainer can be at this list: no handshake.
            let owned = locked || cache.enter()
            if !owned { cache.leave() }
            var cur = p
            let end = p &+ kept
            while cur < end {
                // p is aligned to the run's block, so each piece is aligned to its own order.
                var k = min(PerCPUPages.maxOrder, cur.trailingZeroBitCount)
                while cur &+ (1 &<< k) > end { k &-= 1 }
                zone.setHeadZero(cur, .dirty)
                if owned {
                    enterPerCPU(cur, order: k, cache)
                } else {
                    // Another thread is draining this list: the pieces go to the zone.
                    zone.setState(cur, .perCPU)
                    freeToZone(cur, order: k)
                }
                cur &+= 1 &<< k
            }
            if owned && !locked { cache.leave() }
        }
        cache.add(PerCPUPages.freesSlot, 1)
        for o in 0..<order where cache.isOverHigh(o) { drainBatch(cache, order: o) }
        _checkInvariants()
        return kept
    }
}
