// SPDX-License-Identifier: Apache-2.0
internal import CShims
public import NommuBase
#if canImport(Glibc)
    import Glibc
#endif

extension PageAllocator {
    /// Allocates one block of 2^order pages.
    ///
    /// Orders 0–3 come from the calling thread's per-CPU lists when they are enabled: no
    /// lock, no atomic read-modify-write; the lists refill from the buddy lists in
    /// batches. Larger orders take the smallest free block that fits and split it.
    ///
    /// - Parameters:
    ///   - order: Block order, 0…`maxOrder`.
    ///   - initialization: `.zeroed` clears the pages not known to be zero;
    ///     `.uninitialized` leaves them as they are.
    /// - Returns: The run (`pages == 2^order`).
    /// - Throws: `EINVAL` for a negative order; `ENOMEM` for an order above `maxOrder`
    ///   or when no free block of that order or larger exists (after handing the calling
    ///   thread's per-CPU lists back). Nothing changes on failure.
    /// - Complexity: O(1) from a per-CPU list; O(maxOrder) otherwise, plus clearing.
    ///
    /// Models `alloc_pages()` (`rmqueue_pcplist` / `__rmqueue_smallest`) in mm/page_alloc.c.
    @inline(__always)
    public func allocate(order: Order, _ initialization: Initialization = .zeroed) throws(Errno) -> PageRun {
        let k = order.rawValue
        // Fast path: a block on this thread's per-CPU list. Everything else (refills, the
        // buddy lists, errors) is out of line, so this stays a small leaf.
        if perCPU && UInt(bitPattern: k) <= UInt(PerCPUPages.maxOrder) && k <= maxOrder,
            let cache = cachedLocalCache(), let pfn = cache.popOwned(k, zone)
        {
            zone.setState(pfn, .allocated)
            if initialization == .uninitialized {
                cache.add(PerCPUPages.uninitializedBase &+ k, 1)
                poisonUninitialized(pfn, bytes: 1 &<< (k &+ zone.pageShift))
                _checkInvariants()
            } else {
                clearPerCPU(cache, pfn, order: k)
            }
            return PageRun(_uncheckedStart: pfn, pages: 1 &<< k, order: k, keptPages: 1 &<< k, isExact: false)
        }
        return try allocateSlow(order: k, initialization)
    }

    @inline(never)
    func clearPerCPU(_ cache: PerCPUPages, _ pfn: Int, order k: Int) {
        let r = zone.clear(pfn, k, limit: 1 &<< (k &+ zone.pageShift), dryRun: false)
        cache.add(PerCPUPages.bytesZeroedSlot, Int64(r.zeroed))
        cache.add(PerCPUPages.bytesKnownZeroSlot, Int64(r.skipped))
        cache.add(PerCPUPages.zeroedAllocationsSlot, 1)
        _checkInvariants()
    }

    @inline(never)
    func allocateSlow(order k: Int, _ initialization: Initialization) throws(Errno) -> PageRun {
        guard k >= 0 else { throw .invalidArgument }
        guard k <= maxOrder else {
            core.withLock { zone.counters.pointee.failedAllocations += 1 }
            throw .noMemory
        }
        let bytes = 1 &<< (k &+ zone.pageShift)
        if perCPU && k <= PerCPUPages.maxOrder, let cache = localCache() {
            let pfn: Int
            if let p = cache.popOwned(k, zone) { pfn = p } else { pfn = try refill(cache, order: k) }
            zone.setState(pfn, .allocated)
            if initialization == .zeroed {
                clearPerCPU(cache, pfn, order: k)
            } else {
                cache.add(PerCPUPages.uninitializedBase &+ k, 1)
                poisonUninitialized(pfn, bytes: bytes)
                _checkInvariants()
            }
            return PageRun(_uncheckedStart: pfn, pages: 1 &<< k, order: k, keptPages: 1 &<< k, isExact: false)
        }
        let pfn = try core.withLock { () throws(Errno) -> Int in
            let p = try takeLocked(order: k)
            zone.descriptors[p].order = UInt8(truncatingIfNeeded: k)
            zone.descriptors[p].runPages = UInt32(truncatingIfNeeded: 1 &<< k)
            zone.setState(p, .allocated)
            account(p, order: k, bytes: bytes, initialization)
            zone.counters.pointee.allocations += 1
            return p
        }
        finishInitialization(pfn, order: k, bytes: bytes, initialization)
        _checkInvariants()
        return PageRun(_uncheckedStart: pfn, pages: 1 &<< k, order: k, keptPages: 1 &<< k, isExact: false)
    }

    /// Frees a run made by `allocate(order:)` or `allocateExact`, whichever made it.
    /// - Throws: `EINVAL` when it is not an allocated run of that shape; nothing changes.
    public func free(_ run: PageRun) throws(Errno) {
        if run.isExact {
            try freeExact(run.start, pages: run.pages)
        } else {
            try freeBlock(run.start.rawValue, order: run.order.rawValue)
        }
    }

    /// Frees the block of 2^order pages at `start`, merging it with free buddies.
    ///
    /// - Throws: `EINVAL` when `start` is not the first page of a block allocated with
    ///   `allocate(order:)` of exactly this order: a double free, a page inside a run, a
    ///   run from `allocateExact`, a page outside the arena, a wrong order. Nothing changes.
    /// - Complexity: O(1) onto a per-CPU list; O(maxOrder) otherwise.
    ///
    /// Models `__free_pages()` → `free_unref_page` / `__free_one_page` in mm/page_alloc.c.
    public func free(_ start: PageFrameNumber, order: Order) throws(Errno) {
        try freeBlock(start.rawValue, order: order.rawValue)
    }

    @inline(__always)
    func freeBlock(_ p: Int, order k: Int) throws(Errno) {
        // Fast path: onto this thread's per-CPU list. The caller owns an allocated run, so
        // its descriptor is stable; anything else reads as another state and goes to the
        // slow path, which refuses it before anything is written.
        if perCPU && UInt(bitPattern: k) <= UInt(PerCPUPages.maxOrder) && UInt(bitPattern: p) < UInt(totalPages)
            && zone.state(p) == PageState.allocated.rawValue && Int(zone.descriptors[p].order) == k,
            let cache = cachedLocalCache()
        {
            pushPerCPU(cache, p, order: k)
            return
        }
        try freeSlow(p, order: k)
    }

    @inline(__always)
    func pushPerCPU(_ cache: PerCPUPages, _ p: Int, order k: Int) {
        poisonFreed(p, bytes: 1 &<< (k &+ zone.pageShift))
        zone.setHeadZero(p, .dirty)
        zone.setState(p, .perCPU)
        cache.add(PerCPUPages.freesSlot, 1)
        if cache.enter() {
            cache.push(p, k, zone)
            cache.leave()
            if cache.isOverHigh(k) { drainBatch(cache, order: k) }
        } else {
            // Another thread is draining this list: the block goes straight to the zone.
            cache.leave()
            freeToZone(p, order: k)
        }
        _checkInvariants()
    }

    /// Puts one block (state `.perCPU` or allocated) on the buddy lists.
    @inline(never)
    func freeToZone(_ p: Int, order k: Int) {
        core.withLock { zone.freeBlock(p, k) }
    }

    @inline(never)
    func freeSlow(_ p: Int, order k: Int) throws(Errno) {
        guard p >= 0, p < totalPages, k >= 0, k <= maxOrder else { throw .invalidArgument }
        // Without per-CPU lists for this thread (off, or its exit hook could not be armed)
        // the block goes straight back to the zone, as allocateSlow took it from there.
        if perCPU && k <= PerCPUPages.maxOrder, zone.state(p) == PageState.allocated.rawValue,
            Int(zone.descriptors[p].order) == k, let cache = localCache()
        {
            pushPerCPU(cache, p, order: k)
            return
        }
        try core.withLock { () throws(Errno) in
            guard zone.state(p) == PageState.allocated.rawValue, Int(zone.descriptors[p].order) == k else {
                throw .invalidArgument
            }
            poisonFreed(p, bytes: 1 << (k + zone.pageShift))
            zone.setHeadZero(p, .dirty)
            zone.counters.pointee.frees += 1
            zone.freeBlock(p, k)
        }
        _checkInvariants()
    }

    // MARK: Per-CPU lists

    /// Blocks taken from the buddy lists per refill, for `order`.
    @inline(__always)
    func batch(order: Int) -> Int { max(1, batch0 >> order) }

    /// Blocks a per-CPU list holds before a batch goes back to the buddy lists.
    @inline(__always)
    func high(order: Int) -> Int { 4 * batch(order: order) }

    /// The calling thread's lists for this allocator, made on first use.
    @inline(__always)
    func localCache() -> PerCPUPages? {
        cachedLocalCache() ?? localCacheSlow()
    }

    /// The calling thread's lists if they are in its first slot (one TLS load, no call).
    @inline(__always)
    func cachedLocalCache() -> PerCPUPages? {
        let slots = cshim_tls_slots().unsafelyUnwrapped
        guard slots[0].owner == id, let c = slots[0].cache else { return nil }
        return PerCPUPages(c)
    }

    /// The calling thread's lists if it has any (never makes them).
    func existingLocalCache() -> PerCPUPages? {
        guard perCPU else { return nil }
        let slots = cshim_tls_slots()!
        for i in 0..<Int(CSHIM_TLS_SLOTS) where slots[i].owner == id {
            if let c = slots[i].cache { return PerCPUPages(c) }
        }
        return nil
    }

    @inline(never)
    func localCacheSlow() -> PerCPUPages? {
        let slots = cshim_tls_slots()!
        if let c = cshim_tls_promote(slots, id) { return PerCPUPages(c) }
        // Without the exit hook the lists would outlive the thread: use the zone instead.
        guard cshim_tls_arm(PerCPURegistry.exitHook) == 0 else { return nil }
        let cache = PerCPUPages.allocate(high: { high(order: $0) })
        core.withLock { _ = core.caches.insert(cache.rawPointer) }
        let evicted = cshim_tls_push_front(slots, id, cache.rawPointer)
        if evicted.owner != 0, let c = evicted.cache { PerCPURegistry.retire(owner: evicted.owner, cache: c) }
        return cache
    }

    /// Refills the list for `order` and pops one block. Kernel: `rmqueue_bulk`.
    @inline(never)
    func refill(_ cache: PerCPUPages, order k: Int) throws(Errno) -> Int {
        try core.withLock { () throws(Errno) -> Int in
            var got = 0
            for _ in 0..<batch(order: k) {
                guard let p = zone.takeSmallest(order: k) else { break }
                enterPerCPU(p, order: k, cache)
                got += 1
            }
            if got == 0 {
                // Hand our own cached blocks back so they can merge, then every other
                // thread's (drain_all_pages), trying again after each.
                core.drainLocked(cache)
                var p = zone.takeSmallest(order: k)
                if p == nil && core.drainOthersLocked(except: cache.rawPointer) { p = zone.takeSmallest(order: k) }
                guard let p else {
                    zone.counters.pointee.failedAllocations += 1
                    throw .noMemory
                }
                enterPerCPU(p, order: k, cache)
            }
            return cache.pop(k, zone)!
        }
    }

    @inline(__always)
    func enterPerCPU(_ p: Int, order k: Int, _ cache: PerCPUPages) {
        zone.descriptors[p].order = UInt8(truncatingIfNeeded: k)
        zone.descriptors[p].runPages = UInt32(truncatingIfNeeded: 1 &<< k)
        zone.setState(p, .perCPU)
        cache.push(p, k, zone)
    }

    /// Sends `batch` blocks of `order` back to the buddy lists. Kernel: `free_pcppages_bulk`.
    @inline(never)
    func drainBatch(_ cache: PerCPUPages, order k: Int) {
        core.withLock {
            for _ in 0..<batch(order: k) {
                guard let p = cache.pop(k, zone) else { break }
                zone.freeBlock(p, k)
            }
        }
    }

    /// Hands every block on the calling thread's per-CPU lists back to the buddy lists
    /// (the kernel's `drain_local_pages`). Other threads' lists go back when they exit.
    public func drainLocalPerCPULists() {
        guard let cache = existingLocalCache() else { return }
        core.withLock { core.drainLocked(cache) }
        _checkInvariants()
    }

    // MARK: Locked helpers

    /// Takes a block of `order` from the buddy lists; if nothing fits, hands the calling
    /// thread's per-CPU blocks back, then every other thread's, trying again after each.
    /// Lock held.
    func takeLocked(order k: Int) throws(Errno) -> Int {
        if let p = zone.takeSmallest(order: k) { return p }
        let own = existingLocalCache()
        if let own, own.pages > 0 {
            core.drainLocked(own)
            if let p = zone.takeSmallest(order: k) { return p }
        }
        if core.drainOthersLocked(except: own?.rawPointer), let p = zone.takeSmallest(order: k) { return p }
        zone.counters.pointee.failedAllocations += 1
        throw .noMemory
    }

    /// Records what initialising the first `bytes` of block (pfn, order) will cost. Lock held.
    func account(_ pfn: Int, order k: Int, bytes: Int, _ initialization: Initialization) {
        if initialization == .zeroed {
            let r = zone.clear(pfn, k, limit: bytes, dryRun: true)
            zone.counters.pointee.bytesZeroed += Int64(r.zeroed)
            zone.counters.pointee.bytesKnownZero += Int64(r.skipped)
        } else {
            zone.counters.pointee.bytesUninitialized += Int64(bytes)
        }
    }

    /// Clears (or, in checked builds, poisons) a block the caller now owns. No lock: the
    /// block's zero-state slots are inside it and nobody else writes them.
    func finishInitialization(_ pfn: Int, order k: Int, bytes: Int, _ initialization: Initialization) {
        if initialization == .zeroed {
            _ = zone.clear(pfn, k, limit: bytes, dryRun: false)
        } else {
            poisonUninitialized(pfn, bytes: bytes)
        }
    }

    @inline(__always)
    func poisonUninitialized(_ pfn: Int, bytes: Int) {
        #if NOMMU_INTERNAL_CHECKS
            memset(zone.address(pfn), Int32(ConsistencyChecks.uninitializedPoison), bytes)
        #endif
    }

    @inline(__always)
    func poisonFreed(_ pfn: Int, bytes: Int) {
        #if NOMMU_INTERNAL_CHECKS
            memset(zone.address(pfn), Int32(ConsistencyChecks.freedPoison), bytes)
        #endif
    }
}
