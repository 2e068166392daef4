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
/// Layout: 16 `Int64` slots in plain memory owned by `ZoneCore`. Heads and list links are
/// touched only by the owning thread (or by the zone while the owner is known to be
/// gone). Counters are written by the owner with relaxed stores and read by anyone with
/// relaxed loads, so statistics never race.
struct PerCPUPages {
    static let maxOrder = 3
    static let slotCount = 16

    // Slot indices.
    static let headBase = 0  // 0...3: list heads (PFN, or -1)
    static let countBase = 4  // 4...7: blocks per list
    static let bytesZeroedSlot = 8
    static let bytesKnownZeroSlot = 9
    static let bytesUninitializedSlot = 10
    static let allocationsSlot = 11
    static let freesSlot = 12

    let raw: UnsafeMutablePointer<Int64>

    init(_ raw: UnsafeMutableRawPointer) { self.raw = raw.assumingMemoryBound(to: Int64.self) }

    static func allocate() -> PerCPUPages {
        let p = UnsafeMutablePointer<Int64>.allocate(capacity: slotCount)
        p.initialize(repeating: 0, count: slotCount)
        for o in 0...maxOrder { p[headBase + o] = -1 }
        return PerCPUPages(UnsafeMutableRawPointer(p))
    }

    func deallocate() { raw.deallocate() }

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
        let n = zone.d[pfn].next
        setHead(order, n == Zone.none ? -1 : Int64(n))
        add(PerCPUPages.countBase + order, -1)
        return pfn
    }

    /// Pushes a block of `order`. Owner only.
    @inline(__always)
    func push(_ pfn: Int, _ order: Int, _ zone: Zone) {
        let h = head(order)
        zone.d[pfn].next = h < 0 ? Zone.none : UInt32(truncatingIfNeeded: h)
        setHead(order, Int64(pfn))
        add(PerCPUPages.countBase + order, 1)
    }
}
