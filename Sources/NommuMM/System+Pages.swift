// SPDX-License-Identifier: Apache-2.0
public import NommuBase
public import PageAllocator

/// The owner tags (`PageAllocator.ownerTag(of:)`) of the runs handed out by
/// `System.allocatePages` (the order in the low bits) and `allocatePagesExact`.
enum DirectTag {
    static let block: UInt32 = 0xD1B1_0000
    static let exact: UInt32 = 0xD1E1_0000

    static func block(_ order: Order) -> UInt32 { block | UInt32(truncatingIfNeeded: order.rawValue) }
}

extension System {
    /// Allocates a block straight from the page allocator (`nommu_alloc_pages`), outside
    /// any mapping, and tags its first page as such: only runs tagged so can be freed
    /// through `freePages`, and the system's checks tell these pages from those its
    /// regions hold.
    /// - Complexity: the allocator's (O(1) from a per-CPU list); no lock of the model.
    @inline(__always)
    public func allocatePages(order: Order, _ initialization: PageAllocator.Initialization) throws(Errno)
        -> PageRun
    {
        let run = try allocator.allocate(order: order, initialization)
        allocator.setOwnerTag(run.start, DirectTag.block(order))
        return run
    }

    /// `allocateExact` straight from the page allocator (`nommu_alloc_pages_exact`).
    public func allocatePagesExact(bytes: Int, _ initialization: PageAllocator.Initialization) throws(Errno)
        -> PageRun
    {
        let run = try allocator.allocateExact(bytes: bytes, initialization)
        allocator.setOwnerTag(run.start, DirectTag.exact)
        return run
    }

    /// Frees a block from `allocatePages`.
    /// - Throws: `EINVAL` unless `start` is a block `allocatePages` handed out with this
    ///   order and not yet freed: pages a mapping, the page cache or a device holds are
    ///   never freed through here (the allocator alone cannot tell them apart). Nothing
    ///   changes on failure.
    /// - Complexity: one tag load, then the allocator's free. Two threads freeing the same
    ///   block at the same instant is a race in the caller (as in the allocator).
    @inline(__always)
    public func freePages(_ start: PageFrameNumber, order: Order) throws(Errno) {
        let tag = DirectTag.block(order)
        guard allocator.ownerTag(of: start) == tag else { throw .invalidArgument }
        // Untag first: once freed, the pages may be another thread's (and tagged by it).
        allocator.setOwnerTag(start, 0)
        do throws(Errno) {
            try allocator.free(start, order: order)
        } catch {
            allocator.setOwnerTag(start, tag)
            throw error
        }
    }

    /// Frees a run from `allocatePagesExact`.
    /// - Throws: `EINVAL` unless `start` and `bytes` are a run `allocatePagesExact` handed
    ///   out and not yet freed. Nothing changes on failure.
    public func freePagesExact(_ start: PageFrameNumber, bytes: Int) throws(Errno) {
        guard bytes > 0, allocator.ownerTag(of: start) == DirectTag.exact else { throw .invalidArgument }
        allocator.setOwnerTag(start, 0)
        do throws(Errno) {
            _ = try allocator.freeExact(start, bytes: bytes)
        } catch {
            allocator.setOwnerTag(start, DirectTag.exact)
            throw error
        }
    }

    /// Pages handed out through `allocatePages` / `allocatePagesExact` and not freed (their
    /// slack included), counted from the owner tags: O(arena), for checks and reports.
    public var directPages: Int {
        var n = 0
        for p in 0..<allocator.totalPages {
            let pfn = PageFrameNumber(p)
            guard let tag = allocator.ownerTag(of: pfn), tag & 0xFFFF_0000 == DirectTag.block || tag == DirectTag.exact
            else { continue }
            n += allocator.keptPages(ofRunAt: pfn) ?? 0
        }
        return n
    }
}
