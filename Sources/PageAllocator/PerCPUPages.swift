// SPDX-License-Identifier: Apache-2.0
internal import CShims
#if canImport(Glibc)
    import Glibc
#endif

/// One thread's page lists for one allocator (the kernel's `per_cpu_pages`).
///
/// Orders 0 through `PerCPUPages.maxOrder` are cached. A thread allocates from and frees to
/// its own lists without taking the zone lock or doing any atomic read-modify-write; the
/// lists are refilled from, and drained to, the buddy lists in batches under the lock.
///
/// Layout: `slotCount` (32) `Int64` slots in plain memory owned by `ZoneCore`. Heads and list links are
/// touched only by the owning thread (or by the zone while the owner is known to be
/// gone). Counters are written by the owner with relaxed stores and read by anyone with
/// relaxed loads, so statistics never race. The hot path updates as few of them as it
/// can: an uninitialised allocation bumps one per-order counter, from which both the
/// allocation count and the uninitialised bytes are derived.
struct PerCPUPages {
    static let maxOrder = 3
    static let slotCount = 32

    // Slot indices.
    static let headBase = 0  // 0...3: list heads (PFN, or -1)
    static let countBase = 4  // 4...7: blocks per list
    static let highBase = 8  // 8...11: blocks a list holds before a batch goes back
    static let uninitializedBase = 12  // 12...15: uninitialised allocations per order
    static let zeroedAllocationsSlot = 16
    static let bytesZeroedSlot = 17
    static let bytesKnownZeroSlot = 18
    static let freesSlot = 19
    /// Exact runs (`allocateExact` of order ≤ 3) served from the lists: uninitialised ones
    /// and their bytes (zeroed ones count in `zeroedAllocationsSlot`), the slack pages they
    /// keep (a gauge: freeing one subtracts), the pages their trims gave back.
    static let exactUninitializedSlot = 20
    static let exactUninitializedBytesSlot = 21
    static let slackSlot = 22
    static let trimmedSlot = 23
    /// The drain handshake (`enter`/`leave`, `ZoneCore.drainOthersLocked`): 1 while the
    /// owner works on its lists without the zone lock; 1 while another thread asks to drain them.
    static let busySlot = 24
    static let stealSlot = 25

    let raw: UnsafeMutablePointer<Int64>

    init(_ raw: UnsafeMutableRawPointer) { self.raw = raw.assumingMemoryBound(to: Int64.self) }

    static func allocate(high: (Int) -> Int) -> PerCPUPages {
        let p = UnsafeMutablePointer<Int64>.allocate(capacity: slotCount)
        p.initialize(repeating: 0, count: slotCount)
        for o in 0...maxOrder {
            p[headBase + o] = -1
            p[highBase + o] = Int64(high(o))
        }
        return PerCPUPages(UnsafeMutableRawPointer(p))
    }

    /// Counters as totals.
    func totals(pageShift: Int) -> PerCPUTotals {
        var allocs = load(PerCPUPages.zeroedAllocationsSlot) + load(PerCPUPages.exactUninitializedSlot)
        var uninit = load(PerCPUPages.exactUninitializedBytesSlot)
        for o in 0...PerCPUPages.maxOrder {
            let n = load(PerCPUPages.uninitializedBase + o)
            allocs += n
            uninit += n << Int64(o + pageShift)
        }
        return PerCPUTotals(
            allocs: allocs, uninit: uninit, zeroed: load(PerCPUPages.bytesZeroedSlot),
            knownZero: load(PerCPUPages.bytesKnownZeroSlot), frees: load(PerCPUPages.freesSlot),
            slack: load(PerCPUPages.slackSlot), trimmed: load(PerCPUPages.trimmedSlot))
    }

    func deallocate() { raw.deallocate() }

    /// Marks the start of an owner's lock-free work on its lists. False when another thread
    /// is draining them (the owner must `leave` and wait for the zone lock).
    ///
    /// The handshake is an asymmetric Dekker: the owner stores busy then loads steal with
    /// only a compiler barrier between; the drainer stores steal, runs `cshim_membarrier`
    /// (a full barrier on every running thread), then loads busy. So either the owner sees
    /// steal and backs off, or the drainer sees busy and waits; the owner's path pays no
    /// fence (the kernel's per-CPU lists get the same from disabling preemption).
    @inline(__always)
    func enter() -> Bool {
        cshim_store_relaxed_i64(raw + PerCPUPages.busySlot, 1)
        cshim_signal_fence()
        return cshim_load_acquire_i64(raw + PerCPUPages.stealSlot) == 0
    }

    /// Marks the end of the owner's lock-free work (publishing it to a drainer).
    @inline(__always)
    func leave() { cshim_store_release_i64(raw + PerCPUPages.busySlot, 0) }

    /// Pops a block for the owner inside the handshake: nil when the list is empty or
    /// another thread is draining it.
    @inline(__always)
    func popOwned(_ order: Int, _ zone: Zone) -> Int? {
        guard enter() else {
            leave()
            return nil
        }
        let pfn = pop(order, zone)
        leave()
        return pfn
    }

    /// Drainer side: asks the owner to keep off the lists (zone lock held).
    func requestSteal() { cshim_store_relaxed_i64(raw + PerCPUPages.stealSlot, 1) }
    /// Drainer side: whether the owner is inside `enter`/`leave` (acquire: its work is visible once 0).
    var isBusy: Bool { cshim_load_acquire_i64(raw + PerCPUPages.busySlot) != 0 }
    /// Drainer side: lets the owner back onto its lists (release: the drained lists are visible).
    func endSteal() { cshim_store_release_i64(raw + PerCPUPages.stealSlot, 0) }

    var rawPointer: UnsafeMutableRawPointer { UnsafeMutableRawPointer(raw) }

    @inline(__always) func head(_ order: Int) -> Int64 { raw[PerCPUPages.headBase + order] }
    @inline(__always) func setHead(_ order: Int, _ v: Int64) { raw[PerCPUPages.headBase + order] = v }

    /// Relaxed read of a counter slot (any thread).
    @inline(__always) func load(_ slot: Int) -> Int64 { cshim_load_relaxed_i64(raw + slot) }
    /// Owner-only increment, published with a relaxed store.
    @inline(__always) func add(_ slot: Int, _ v: Int64) {
        cshim_store_relaxed_i64(raw + slot, cshim_load_relaxed_i64(raw + slot) &+ v)
    }

    @inline(__always) func count(_ order: Int) -> Int64 { load(PerCPUPages.countBase + order) }

    /// Whether the list for `order` holds more than its high mark.
    @inline(__always) func isOverHigh(_ order: Int) -> Bool {
        count(order) > raw[PerCPUPages.highBase + order]
    }

    /// Pages held on all lists.
    var pages: Int {
        var n = 0
        for o in 0...PerCPUPages.maxOrder { n += Int(count(o)) << o }
        return n
    }

    /// Pops the most recently freed block of `order`, or nil. Owner only.
    @inline(__always)
    func pop(_ order: Int, _ zone: Zone) -> Int? {
        let h = head(order)
        if h < 0 { return nil }
        let pfn = Int(truncatingIfNeeded: h)
        let n = zone.descriptors[pfn].next
        setHead(order, n == Zone.none ? -1 : Int64(n))
        add(PerCPUPages.countBase + order, -1)
        return pfn
    }

    /// Pushes a block of `order`. Owner only.
    @inline(__always)
    func push(_ pfn: Int, _ order: Int, _ zone: Zone) {
        let h = head(order)
        zone.descriptors[pfn].next = h < 0 ? Zone.none : UInt32(truncatingIfNeeded: h)
        setHead(order, Int64(pfn))
        add(PerCPUPages.countBase + order, 1)
    }
}

/// What a per-CPU list's counters add to the zone's.
struct PerCPUTotals {
    var allocs: Int64 = 0
    var uninit: Int64 = 0
    var zeroed: Int64 = 0
    var knownZero: Int64 = 0
    var frees: Int64 = 0
    var slack: Int64 = 0
    var trimmed: Int64 = 0

    static func += (a: inout PerCPUTotals, b: PerCPUTotals) {
        a.allocs += b.allocs
        a.uninit += b.uninit
        a.zeroed += b.zeroed
        a.knownZero += b.knownZero
        a.frees += b.frees
        a.slack += b.slack
        a.trimmed += b.trimmed
    }
}
