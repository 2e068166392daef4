// SPDX-License-Identifier: Apache-2.0
//
// # The buddy allocator
//
// A no-MMU machine has no page tables to make scattered pages look contiguous, so every
// mapping is one physically contiguous run. The kernel gets those runs from the buddy
// allocator (mm/page_alloc.c), and this file models it over one host arena.
//
// Memory is cut into pages, and pages are grouped into blocks of 2^order pages, each
// starting at a page number that is a multiple of its size. Every free block sits on the
// list for its order (`free_area[order]`). To allocate order n, take the smallest
// non-empty list at or above n (a bitmask makes that one instruction) and split the
// block in halves until it is order n, putting each upper half on the list below
// (`expand`). To free, look at the block's buddy, the other half of the block of the next
// order, found by flipping one bit of the page number (`pfn ^ (1 << order)`). If it is
// free and of the same order, the two merge and the test repeats one order up
// (`__free_one_page`). So two free buddies of equal order never coexist, and freeing
// everything always restores the arena's initial blocks.
//
// An arena that is not a power of two is carved into the largest aligned blocks that fit,
// capped at the maximum order.
//
// No-MMU mmap asks for exact sizes. `allocateExact` takes the 2^order block that covers
// the request and, as `do_mmap_private` does, gives the excess back when
// `vm.nr_trim_pages` says so: in a few aligned blocks, not page by page. Otherwise the
// excess stays with the run as slack and comes back when the run is freed.
//
// Clearing is the expensive part of a no-MMU allocation. The allocator clears exactly
// the bytes asked for, skips clearing when uninitialised memory is asked for
// (MAP_UNINITIALIZED), and never clears a page it knows to be zero: pages that have not
// been handed out since the host gave them as zero. That knowledge lives in the buddy
// tree (see `ZeroState`), so it costs O(1) per split or merge.
//
// Threads: a zone lock (the kernel's zone->lock) guards the free lists. Orders 0–3 are
// also served from per-thread lists (the kernel's per-CPU pagesets): no lock and no
// atomic read-modify-write on that path, refilled and drained in batches.
public import NommuHost
public import NommuBase
internal import CShims
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// A buddy page allocator over one host arena, modelling a no-MMU kernel's zone.
///
/// Life cycle: `init` takes the arena from the host and puts every page on the free
/// lists; the allocator hands out `PageRun`s; releasing the allocator gives the arena back
/// (runs still allocated are simply forgotten with it).
///
/// Every method is safe to call from several threads. Errors are user errors and are
/// thrown as `Errno` with nothing changed: `ENOMEM` when no contiguous run fits or the
/// order is above the maximum, `EINVAL` for a free of anything that is not an allocated
/// run of that shape (double free, foreign address, wrong order or size).
///
/// What is simplified: one zone, one node; no watermarks, reclaim or migrate types.
/// Freeing the same run from two threads at the same instant is a race in the caller that
/// the per-CPU path, like the kernel's, does not detect (a double free made one after the
/// other is always refused).
public final class PageAllocator: @unchecked Sendable {
    /// How an allocator is made.
    public struct Configuration: Sendable, Hashable {
        /// Bytes of arena; rounded down to whole pages. Must hold at least one page.
        public var arenaBytes: Int
        /// Page size in bytes: a power of two, at least 4096 and at least the host page.
        public var pageSize: Int
        /// Largest block order (the kernel's default is 10: 4 MiB with 4 KiB pages).
        public var maxOrder: Int
        /// Where the arena comes from.
        public var backing: HostArena.Backing
        /// Ask the host for transparent huge pages (mmap backing only).
        public var hugePages: Bool
        /// Initial `vm.nr_trim_pages` (0 = never trim).
        public var nrTrimPages: Int
        /// Serve orders 0–3 from per-thread lists (the kernel's per-CPU pagesets).
        public var perCPULists: Bool

        public init(
            arenaBytes: Int = 64 << 20, pageSize: Int = 4096, maxOrder: Int = 10,
            backing: HostArena.Backing = .mmap, hugePages: Bool = false, nrTrimPages: Int = 1,
            perCPULists: Bool = true
        ) {
            self.arenaBytes = arenaBytes
            self.pageSize = pageSize
            self.maxOrder = maxOrder
            self.backing = backing
            self.hugePages = hugePages
            self.nrTrimPages = nrTrimPages
            self.perCPULists = perCPULists
        }
    }

    /// Whether a run is cleared before it is handed out.
    public enum Initialization: Sendable, Hashable {
        /// Clear the bytes asked for (those not already known to be zero). The default.
        case zeroed
        /// Leave the bytes as they are (`MAP_UNINITIALIZED`, `GFP` without `__GFP_ZERO`).
        case uninitialized
    }

    /// The largest maximum order accepted (2^30 pages per block).
    public static let maximumSupportedOrder = 30

    public let configuration: Configuration
    /// Page size in bytes.
    public let pageSize: Int
    /// Pages in the arena.
    public let totalPages: Int
    /// Largest block order.
    public let maxOrder: Int
    /// Whether the arena's fresh memory was known to be zero.
    public let arenaWasZero: Bool

    let core: ZoneCore
    let zone: Zone
    let id: UInt64
    let perCPU: Bool
    let batch0: Int

    /// Takes an arena from the host and puts all of it on the free lists.
    ///
    /// - Throws: `EINVAL` for a page size that is not a power of two ≥ 4096 (and ≥ the
    ///   host page), a maximum order outside 0…30, an arena smaller than one page, a
    ///   negative trim setting, or an arena of more than 2^32 − 1 pages; `ENOMEM` (or the
    ///   host's errno) when the host refuses the arena.
    public init(_ configuration: Configuration = Configuration()) throws(Errno) {
        precondition(MemoryLayout<PageDescriptor>.size == 16, "PageDescriptor must stay 16 bytes")
        precondition(MemoryLayout<PageDescriptor>.offset(of: \PageDescriptor.state) == PageDescriptor.stateOffset)
        let ps = configuration.pageSize
        guard ps >= 4096, ps & (ps - 1) == 0, ps >= HostArena.hostPageSize,
            (0...Self.maximumSupportedOrder).contains(configuration.maxOrder),
            configuration.nrTrimPages >= 0
        else { throw .invalidArgument }
        let pages = configuration.arenaBytes / ps
        guard pages >= 1, pages < Int(UInt32.max) else { throw .invalidArgument }
        let shift = ps.trailingZeroBitCount
        // Align the arena so that blocks are aligned in address space too, as physical
        // blocks are (capped at 1 GiB; more costs address space only).
        var alignment = ps << min(configuration.maxOrder, 30 - shift)
        while alignment > ps && alignment > pages * ps { alignment >>= 1 }
        let arena = try HostArena(
            byteCount: pages * ps, alignment: alignment, backing: configuration.backing,
            hugePages: configuration.hugePages)

        let counters = UnsafeMutablePointer<ZoneState>.allocate(capacity: 1)
        counters.initialize(to: ZoneState())
        counters.pointee.nrTrimPages = configuration.nrTrimPages
        let descriptors = UnsafeMutablePointer<PageDescriptor>.allocate(capacity: pages)
        descriptors.initialize(repeating: PageDescriptor(), count: pages)
        let heads = UnsafeMutablePointer<UInt32>.allocate(capacity: configuration.maxOrder + 1)
        heads.initialize(repeating: Zone.none, count: configuration.maxOrder + 1)
        let zone = Zone(
            counters: counters, descriptors: descriptors, heads: heads, base: arena.baseAddress, totalPages: pages,
            pageShift: shift, maxOrder: configuration.maxOrder)
        let fresh: ZeroState = arena.isFreshMemoryZero ? .zero : .dirty
        arenaWasZero = arena.isFreshMemoryZero

        // Carve: largest aligned blocks that fit, pushed high to low so the lowest block is
        // at the head of its list.
        var blocks: [(Int, Int)] = []
        var p = 0
        while p < pages {
            var k = min(p == 0 ? configuration.maxOrder : p.trailingZeroBitCount, configuration.maxOrder)
            while p + (1 << k) > pages { k -= 1 }
            blocks.append((p, k))
            p += 1 << k
        }
        for (pfn, k) in blocks.reversed() {
            zone.setHeadZero(pfn, fresh)
            zone.listAdd(pfn, k)
        }
        counters.pointee.freePages = pages

        self.configuration = configuration
        self.pageSize = ps
        self.totalPages = pages
        self.maxOrder = configuration.maxOrder
        self.zone = zone
        self.core = ZoneCore(arena: arena, zone: zone)
        core.nrTrimPages.store(configuration.nrTrimPages, ordering: .relaxed)
        self.id = PerCPURegistry.nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        self.perCPU = configuration.perCPULists
        self.batch0 = max(1, min(16, pages >> 10))
        if perCPU {
            let core = self.core
            PerCPURegistry.live.withLock { $0[id] = core }
        }
        _checkInvariants()
    }

    deinit {
        if perCPU {
            let id = self.id
            _ = PerCPURegistry.live.withLock { $0.removeValue(forKey: id) }
        }
    }

    // MARK: Addresses

    /// First byte of the arena.
    public var baseAddress: UnsafeMutableRawPointer { zone.base }

    /// The address of page `pfn`. Valid while the allocator lives.
    public func address(of pfn: PageFrameNumber) -> UnsafeMutableRawPointer {
        precondition(pfn.rawValue >= 0 && pfn.rawValue < totalPages, "\(pfn) outside an arena of \(totalPages) pages")
        return zone.address(pfn.rawValue)
    }

    /// The page that starts at `address`, or nil if it is outside the arena or not the
    /// first byte of a page.
    @inline(__always)
    public func pageFrame(startingAt address: UnsafeRawPointer) -> PageFrameNumber? {
        let off = UInt(bitPattern: address - UnsafeRawPointer(zone.base))
        guard off < UInt(totalPages) << UInt(zone.pageShift), off & UInt(pageSize - 1) == 0 else { return nil }
        return PageFrameNumber(Int(off >> UInt(zone.pageShift)))
    }

    /// The page containing `address`, or nil if it is outside the arena.
    public func pageFrame(containing address: UnsafeRawPointer) -> PageFrameNumber? {
        let off = UInt(bitPattern: address - UnsafeRawPointer(zone.base))
        guard off < UInt(totalPages) << UInt(zone.pageShift) else { return nil }
        return PageFrameNumber(Int(off >> UInt(zone.pageShift)))
    }

    /// The bytes of `run` (the pages asked for, without slack). Valid until the run is
    /// freed or the allocator is released.
    public func bytes(of run: PageRun) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: address(of: run.start), count: run.pages << zone.pageShift)
    }

    // MARK: Sysctl

    /// `vm.nr_trim_pages`: 0 never trims; N trims when the excess is at least N pages.
    public var nrTrimPages: Int {
        core.withLock { zone.counters.pointee.nrTrimPages }
    }

    /// Sets `vm.nr_trim_pages`. - Throws: `EINVAL` for a negative value (nothing changes).
    public func setNrTrimPages(_ value: Int) throws(Errno) {
        guard value >= 0 else { throw .invalidArgument }
        core.withLock {
            zone.counters.pointee.nrTrimPages = value
            core.nrTrimPages.store(value, ordering: .relaxed)
        }
    }
}
