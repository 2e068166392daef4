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
    #if NOMMU_INTERNAL_CHECKS
        /// Calls of `_checkInvariants`, for sampling the O(pages) walk in large arenas.
        var checkCalls = 0
    #endif
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
    /// The zone's counters and the bitmap of non-empty free lists.
    let counters: UnsafeMutablePointer<ZoneState>
    /// One descriptor per arena page (the kernel's `mem_map`).
    let descriptors: UnsafeMutablePointer<PageDescriptor>
    let heads: UnsafeMutablePointer<UInt32>
    let base: UnsafeMutableRawPointer
    let totalPages: Int
    let pageShift: Int
    let maxOrder: Int

    static let none: UInt32 = .max

    // MARK: Per-page state (relaxed atomics; callable without the lock)

    @inline(__always)
    func statePointer(_ pfn: Int) -> UnsafeMutablePointer<UInt8> {
        (UnsafeMutableRawPointer(descriptors + pfn) + PageDescriptor.stateOffset).assumingMemoryBound(to: UInt8.self)
    }

    @inline(__always)
    func state(_ pfn: Int) -> UInt8 { cshim_load_relaxed_u8(statePointer(pfn)) }

    @inline(__always)
    func setState(_ pfn: Int, _ st: PageState) { cshim_store_relaxed_u8(statePointer(pfn), st.rawValue) }

    @inline(__always)
    func address(_ pfn: Int) -> UnsafeMutableRawPointer { base + (pfn &<< pageShift) }

    // MARK: Zero state of buddy-tree nodes
    //
    // A free block's zero state lives in its head descriptor (`headZero`), the line the list
    // operations touch anyway. A `.mixed` node keeps its two halves' states in the
    // descriptor just before its midpoint (`nodeZero`: left in bits 0–1, right in bits 2–3),
    // a slot no other node uses (a node's midpoint fixes its start and its order), written
    // only when a merge produces `.mixed` and read only when a mixed node is split or
    // descended into.

    @inline(__always)
    func headZero(_ pfn: Int) -> ZeroState { ZeroState(unchecked: descriptors[pfn].headZero) }

    @inline(__always)
    func setHeadZero(_ pfn: Int, _ z: ZeroState) { descriptors[pfn].headZero = z.rawValue }

    /// The halves of the mixed node (pfn, order), order ≥ 1.
    @inline(__always)
    func children(_ pfn: Int, _ order: Int) -> (ZeroState, ZeroState) {
        let v = descriptors[pfn &+ (1 &<< (order &- 1)) &- 1].nodeZero
        return (ZeroState(unchecked: v & 3), ZeroState(unchecked: v >> 2))
    }

    @inline(__always)
    func setChildren(_ pfn: Int, _ order: Int, _ l: ZeroState, _ r: ZeroState) {
        descriptors[pfn &+ (1 &<< (order &- 1)) &- 1].nodeZero = l.rawValue | r.rawValue &<< 2
    }

    /// The states of the halves of a node in state `z`.
    @inline(__always)
    func halves(_ pfn: Int, _ order: Int, _ z: ZeroState) -> (ZeroState, ZeroState) {
        z == .mixed ? children(pfn, order) : (z, z)
    }

    // MARK: Free lists (kernel: free_area[order])
    //
    // The kernel also keeps nr_free per order. Here a list's emptiness is its head, and
    // the per-order counts (`/proc/buddyinfo`) are counted by walking the lists when
    // statistics are asked for: that keeps two read-modify-writes per level out of every
    // split and merge, where they cost about a third of the time.

    @inline(__always)
    func listAdd(_ pfn: Int, _ order: Int) {
        listPush(pfn, order)
        counters.pointee.nonEmpty |= 1 &<< UInt64(order)
    }

    /// `listAdd` without the non-empty mask: the caller sets the bit (once per call).
    @inline(__always)
    func listPush(_ pfn: Int, _ order: Int) {
        let h = heads[order]
        descriptors[pfn].next = h
        descriptors[pfn].prev = Zone.none
        descriptors[pfn].order = UInt8(truncatingIfNeeded: order)
        if h != Zone.none { descriptors[Int(h)].prev = UInt32(truncatingIfNeeded: pfn) }
        heads[order] = UInt32(truncatingIfNeeded: pfn)
        setState(pfn, .free)
    }

    /// Unlinks a free block without touching the non-empty mask. Returns the order's bit
    /// if the list is now empty, for the caller to clear (once per call).
    @inline(__always)
    func listUnlink(_ pfn: Int, _ order: Int) -> UInt64 {
        let n = descriptors[pfn].next
        let p = descriptors[pfn].prev
        if n != Zone.none { descriptors[Int(n)].prev = p }
        if p != Zone.none {
            descriptors[Int(p)].next = n
            return 0
        }
        heads[order] = n
        return n == Zone.none ? 1 &<< UInt64(order) : 0
    }

    /// Free blocks on the list for `order` (kernel: `free_area[order].nr_free`). O(length).
    func freeCount(_ order: Int) -> Int {
        var n = 0
        var cur = heads[order]
        while cur != Zone.none {
            n &+= 1
            cur = descriptors[Int(cur)].next
        }
        return n
    }

    /// True when `buddy` is the head of a free block of exactly `order` (kernel: `page_is_buddy`).
    @inline(__always)
    func isFreeBuddy(_ buddy: Int, _ order: Int) -> Bool {
        buddy < totalPages && state(buddy) == PageState.free.rawValue && Int(descriptors[buddy].order) == order
    }

    // MARK: Allocation (kernel: __rmqueue_smallest + expand)

    /// Takes the smallest free block of at least `order` and splits it down to `order`.
    /// The returned block's zero state is valid in its slot. Returns nil when no block fits.
    /// - Complexity: O(splits).
    func takeSmallest(order: Int) -> Int? {
        let mask = counters.pointee.nonEmpty & (~UInt64(0) &<< UInt64(order))
        if mask == 0 { return nil }
        var cur = mask.trailingZeroBitCount
        let top = cur
        let pfn = Int(heads[cur])
        let emptied = listUnlink(pfn, cur)
        var z = headZero(pfn)
        // expand(): hand the upper half back at each step. The lists [order, top) all end
        // up non-empty; the mask is written once, not once per level (a read-modify-write
        // per level is a store-forwarding chain through one word).
        while cur > order {
            let (zl, zr) = halves(pfn, cur, z)
            cur &-= 1
            let right = pfn &+ (1 &<< cur)
            setHeadZero(right, zr)
            listPush(right, cur)
            z = zl
        }
        let filled = ((1 &<< UInt64(top)) &- 1) & (~UInt64(0) &<< UInt64(order))
        counters.pointee.nonEmpty = (counters.pointee.nonEmpty & ~emptied) | filled
        counters.pointee.splits &+= Int64(top &- order)
        setHeadZero(pfn, z)
        let pages = 1 &<< order
        counters.pointee.freePages &-= pages
        counters.pointee.outstandingPages &+= pages
        return pfn
    }

    // MARK: Free (kernel: __free_one_page)

    /// Returns the block at `pfn` of `order`, whose zero state is already set, to the free
    /// lists, merging with free buddies as far as they go.
    /// - Complexity: O(merges).
    func freeBlock(_ pfn: Int, _ order: Int) {
        var p = pfn
        var k = order
        var z = headZero(pfn)
        var emptied: UInt64 = 0
        while k < maxOrder {
            let buddy = p ^ (1 &<< k)
            guard isFreeBuddy(buddy, k) else { break }
            emptied |= listUnlink(buddy, k)
            let zb = headZero(buddy)
            let lo: Int
            let zl: ZeroState
            let zr: ZeroState
            if buddy < p {
                setState(p, .tail)
                lo = buddy
                zl = zb
                zr = z
            } else {
                setState(buddy, .tail)
                lo = p
                zl = z
                zr = zb
            }
            k &+= 1
            if zl == zr && zl != .mixed {
                z = zl
            } else {
                z = .mixed
                setChildren(lo, k, zl, zr)
            }
            p = lo
        }
        setHeadZero(p, z)
        listPush(p, k)
        // One write of the mask for the whole merge (see takeSmallest).
        counters.pointee.nonEmpty = (counters.pointee.nonEmpty & ~emptied) | (1 &<< UInt64(k))
        counters.pointee.merges &+= Int64(k &- order)
        let pages = 1 &<< order
        counters.pointee.freePages &+= pages
        counters.pointee.outstandingPages &-= pages
    }

    /// Frees [pfn, pfn + pages) as the few largest aligned blocks that tile it, each dirty.
    func freeRange(_ pfn: Int, pages: Int, zero: ZeroState) {
        var cur = pfn
        let end = pfn + pages
        while cur < end {
            var k = min(cur == 0 ? maxOrder : cur.trailingZeroBitCount, maxOrder)
            while cur + (1 &<< k) > end { k -= 1 }
            setHeadZero(cur, zero)
            freeBlock(cur, k)
            cur += 1 &<< k
        }
    }

    // MARK: Zeroing

    /// Clears the first `limit` bytes of the block (pfn, order) wherever they are not
    /// known to be zero. Returns (bytes cleared, bytes skipped as known zero).
    /// With `dryRun` it only counts.
    func clear(_ pfn: Int, _ order: Int, limit: Int, dryRun: Bool) -> (zeroed: Int, skipped: Int) {
        clear(pfn, order, headZero(pfn), limit: limit, dryRun: dryRun)
    }

    func clear(_ pfn: Int, _ order: Int, _ z: ZeroState, limit: Int, dryRun: Bool) -> (zeroed: Int, skipped: Int) {
        let blockBytes = 1 &<< (order &+ pageShift)
        let n = min(limit, blockBytes)
        if n <= 0 { return (0, 0) }
        switch z {
        case .zero:
            return (0, n)
        case .dirty:
            if !dryRun { memset(address(pfn), 0, n) }
            return (n, 0)
        case .mixed:
            let half = blockBytes >> 1
            let (zl, zr) = children(pfn, order)
            let l = clear(pfn, order &- 1, zl, limit: n, dryRun: dryRun)
            let r: (zeroed: Int, skipped: Int) =
                n > half ? clear(pfn &+ (1 &<< (order &- 1)), order &- 1, zr, limit: n &- half, dryRun: dryRun) : (0, 0)
            return (l.zeroed &+ r.zeroed, l.skipped &+ r.skipped)
        }
    }

    /// Gives back everything in the freshly taken block (pfn, order) past its first `keep`
    /// pages, as aligned blocks (right siblings along the path to the boundary), with their
    /// zero states. Returns the pages given back. Kernel: the trim loop of do_mmap_private.
    func trim(_ pfn: Int, _ order: Int, keep: Int) -> Int {
        trim(pfn, order, keep: keep) { p, k in freeBlock(p, k) }
    }

    /// `trim`, handing each block that leaves the run (its zero state set) to `release`.
    @inline(__always)
    func trim(_ pfn: Int, _ order: Int, keep: Int, release: (Int, Int) -> Void) -> Int {
        var p = pfn
        var k = order
        var keepIn = keep
        var z = headZero(pfn)
        var given = 0
        while keepIn < (1 &<< k) && keepIn > 0 {
            let c = k &- 1
            let half = 1 &<< c
            let right = p &+ half
            let (zl, zr) = halves(p, k, z)
            if keepIn <= half {
                // The right half is one block leaving the run: it was counted outstanding.
                setHeadZero(right, zr)
                release(right, c)
                given &+= half
                z = zl
            } else {
                keepIn &-= half
                p = right
                z = zr
            }
            k = c
        }
        return given
    }
}
