// SPDX-License-Identifier: Apache-2.0
internal import CShims
import NommuBase
#if canImport(Glibc)
import Glibc
#endif

/// Counters and gauges of one zone, changed only under the zone lock.
struct ZoneState {
    var nonEmpty: UInt64 = 0
    var freePages: Int = 0
    /// Pages out of the buddy lists: handed to callers or sitting on per-CPU lists.
    var outstandingPages: Int = 0
    var nrTrimPages: Int = 1
    var slackPages: Int = 0
    var bytesZeroed: Int64 = 0
    var bytesKnownZero: Int64 = 0
    var bytesUninitialized: Int64 = 0
    var pagesTrimmed: Int64 = 0
    var allocations: Int64 = 0
    var frees: Int64 = 0
    var splits: Int64 = 0
    var merges: Int64 = 0
    var failedAllocations: Int64 = 0
}

/// The zone: free areas (one doubly linked list per order), the page descriptors and the
/// arena's base. All pointer arithmetic on the arena happens here and in
/// `PerCPUPages`; PFNs are checked against `totalPages` at every public boundary.
///
/// A `Zone` is a bundle of pointers, so copying it is free; the memory it points at is
/// owned by `ZoneCore`. Every method except the per-page state accessors must be called
/// with the zone lock held.
@usableFromInline
struct Zone {
    let s: UnsafeMutablePointer<ZoneState>
    let d: UnsafeMutablePointer<PageDescriptor>
    let heads: UnsafeMutablePointer<UInt32>
    let counts: UnsafeMutablePointer<Int>
    let base: UnsafeMutableRawPointer
    let totalPages: Int
    let pageShift: Int
    let maxOrder: Int

    static let none: UInt32 = .max

    // MARK: Per-page state (relaxed atomics; callable without the lock)

    @inline(__always)
    func statePointer(_ pfn: Int) -> UnsafeMutablePointer<UInt8> {
        (UnsafeMutableRawPointer(d + pfn) + PageDescriptor.stateOffset).assumingMemoryBound(to: UInt8.self)
    }

    @inline(__always)
    func state(_ pfn: Int) -> UInt8 { cshim_load_relaxed_u8(statePointer(pfn)) }

    @inline(__always)
    func setState(_ pfn: Int, _ st: PageState) { cshim_store_relaxed_u8(statePointer(pfn), st.rawValue) }

    @inline(__always)
    func address(_ pfn: Int) -> UnsafeMutableRawPointer { base + (pfn << pageShift) }

    // MARK: Zero state of buddy-tree nodes

    @inline(__always)
    func zeroState(_ pfn: Int, _ order: Int) -> ZeroState {
        let raw = order == 0 ? d[pfn].leafZero : d[pfn + (1 << (order - 1)) - 1].nodeZero
        return ZeroState(rawValue: raw) ?? .dirty
    }

    @inline(__always)
    func setZeroState(_ pfn: Int, _ order: Int, _ z: ZeroState) {
        if order == 0 { d[pfn].leafZero = z.rawValue } else { d[pfn + (1 << (order - 1)) - 1].nodeZero = z.rawValue }
    }

    // MARK: Free lists (kernel: free_area[order])

    @inline(__always)
    func listAdd(_ pfn: Int, _ order: Int) {
        let h = heads[order]
        d[pfn].next = h
        d[pfn].prev = Zone.none
        d[pfn].order = UInt8(truncatingIfNeeded: order)
        if h != Zone.none { d[Int(h)].prev = UInt32(truncatingIfNeeded: pfn) }
        heads[order] = UInt32(truncatingIfNeeded: pfn)
        counts[order] += 1
        s.pointee.nonEmpty |= 1 << UInt64(order)
        setState(pfn, .free)
    }

    @inline(__always)
    func listDel(_ pfn: Int, _ order: Int) {
        let n = d[pfn].next
        let p = d[pfn].prev
        if p != Zone.none { d[Int(p)].next = n } else { heads[order] = n }
        if n != Zone.none { d[Int(n)].prev = p }
        counts[order] -= 1
        if counts[order] == 0 { s.pointee.nonEmpty &= ~(1 << UInt64(order)) }
    }

    /// True when `buddy` is the head of a free block of exactly `order` (kernel: `page_is_buddy`).
    @inline(__always)
    func isFreeBuddy(_ buddy: Int, _ order: Int) -> Bool {
        buddy < totalPages && state(buddy) == PageState.free.rawValue && Int(d[buddy].order) == order
    }

    // MARK: Allocation (kernel: __rmqueue_smallest + expand)

    /// Takes the smallest free block of at least `order` and splits it down to `order`.
    /// The returned block's zero state is valid in its slot. Returns nil when no block fits.
    /// - Complexity: O(splits).
    func takeSmallest(order: Int) -> Int? {
        let mask = s.pointee.nonEmpty & (~UInt64(0) << UInt64(order))
        if mask == 0 { return nil }
        var cur = mask.trailingZeroBitCount
        let pfn = Int(heads[cur])
        listDel(pfn, cur)
        var z = zeroState(pfn, cur)
        // expand(): hand the upper half back at each step.
        while cur > order {
            cur -= 1
            let right = pfn + (1 << cur)
            if z == .mixed {
                listAdd(right, cur)  // its own slot is valid
                z = zeroState(pfn, cur)
            } else {
                setZeroState(right, cur, z)
                listAdd(right, cur)
            }
            s.pointee.splits += 1
        }
        if z != .mixed { setZeroState(pfn, order, z) }
        let pages = 1 << order
        s.pointee.freePages -= pages
        s.pointee.outstandingPages += pages
        return pfn
    }

    // MARK: Free (kernel: __free_one_page)

    /// Returns the block at `pfn` of `order`, whose zero state is already set, to the free
    /// lists, merging with free buddies as far as they go.
    /// - Complexity: O(merges).
    func freeBlock(_ pfn: Int, _ order: Int) {
        var p = pfn
        var k = order
        let pages = 1 << order
        while k < maxOrder {
            let buddy = p ^ (1 << k)
            guard isFreeBuddy(buddy, k) else { break }
            listDel(buddy, k)
            let zl = zeroState(min(p, buddy), k)
            let zr = zeroState(max(p, buddy), k)
            let upper = max(p, buddy)
            setState(upper, .tail)
            p = min(p, buddy)
            k += 1
            setZeroState(p, k, (zl == zr && zl != .mixed) ? zl : .mixed)
            s.pointee.merges += 1
        }
        listAdd(p, k)
        s.pointee.freePages += pages
        s.pointee.outstandingPages -= pages
    }

    /// Frees [pfn, pfn + pages) as the few largest aligned blocks that tile it, each dirty.
    func freeRange(_ pfn: Int, pages: Int, zero: ZeroState) {
        var cur = pfn
        let end = pfn + pages
        while cur < end {
            var k = min(cur == 0 ? maxOrder : cur.trailingZeroBitCount, maxOrder)
            while cur + (1 << k) > end { k -= 1 }
            setZeroState(cur, k, zero)
            freeBlock(cur, k)
            cur += 1 << k
        }
    }

    // MARK: Zeroing

    /// Clears the first `limit` bytes of the block (pfn, order) wherever they are not
    /// known to be zero. Returns (bytes cleared, bytes skipped as known zero).
    /// With `dryRun` it only counts.
    func clear(_ pfn: Int, _ order: Int, limit: Int, dryRun: Bool) -> (zeroed: Int, skipped: Int) {
        let blockBytes = 1 << (order + pageShift)
        let n = min(limit, blockBytes)
        if n <= 0 { return (0, 0) }
        switch zeroState(pfn, order) {
        case .zero:
            return (0, n)
        case .dirty:
            if !dryRun { memset(address(pfn), 0, n) }
            return (n, 0)
        case .mixed:
            let half = blockBytes >> 1
            let l = clear(pfn, order - 1, limit: n, dryRun: dryRun)
            let r: (zeroed: Int, skipped: Int) = n > half ? clear(pfn + (1 << (order - 1)), order - 1, limit: n - half, dryRun: dryRun) : (0, 0)
            return (l.zeroed + r.zeroed, l.skipped + r.skipped)
        }
    }

    /// Gives back everything in the freshly taken block (pfn, order) past its first `keep`
    /// pages, as aligned blocks (right siblings along the path to the boundary), with their
    /// zero states. Returns the pages given back. Kernel: the trim loop of do_mmap_private.
    func trim(_ pfn: Int, _ order: Int, keep: Int) -> Int {
        var p = pfn
        var k = order
        var keepIn = keep
        var z = zeroState(pfn, order)
        var given = 0
        while keepIn < (1 << k) && keepIn > 0 {
            let c = k - 1
            let half = 1 << c
            let right = p + half
            let zl: ZeroState
            let zr: ZeroState
            if z == .mixed {
                zl = zeroState(p, c)
                zr = zeroState(right, c)
            } else {
                zl = z
                zr = z
            }
            if keepIn <= half {
                setZeroState(right, c, zr)
                // The right half is one block leaving the run: it was counted outstanding.
                freeBlock(right, c)
                given += half
                k = c
                z = zl
            } else {
                keepIn -= half
                p = right
                k = c
                z = zr
            }
        }
        return given
    }
}
