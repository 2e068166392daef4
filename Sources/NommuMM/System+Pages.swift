// SPDX-License-Identifier: Apache-2.0
public import NommuBase
public import PageAllocator

extension System {
    /// Allocates a block straight from the page allocator (`nommu_alloc_pages`), outside
    /// any mapping. The system counts these pages so that its checks can tell them from
    /// the pages its regions hold.
    public func allocatePages(order: Order, _ initialization: PageAllocator.Initialization) throws(Errno)
        -> PageRun
    {
        let run = try allocator.allocate(order: order, initialization)
        state.withLock { $0.directPages += run.keptPages }
        return run
    }

    /// `allocateExact` straight from the page allocator (`nommu_alloc_pages_exact`).
    public func allocatePagesExact(bytes: Int, _ initialization: PageAllocator.Initialization) throws(Errno)
        -> PageRun
    {
        let run = try allocator.allocateExact(bytes: bytes, initialization)
        state.withLock { $0.directPages += run.keptPages }
        return run
    }

    /// Frees a block from `allocatePages`. - Throws: `EINVAL` as `PageAllocator.free`.
    public func freePages(_ start: PageFrameNumber, order: Order) throws(Errno) {
        try allocator.free(start, order: order)
        state.withLock { $0.directPages -= order.pages }
    }

    /// Frees a run from `allocatePagesExact`. - Throws: `EINVAL` as `PageAllocator.freeExact`.
    public func freePagesExact(_ start: PageFrameNumber, bytes: Int) throws(Errno) {
        let released = try allocator.freeExact(start, bytes: bytes)
        state.withLock { $0.directPages -= released }
    }

    /// Pages handed out through `allocatePages` / `allocatePagesExact` and not freed.
    public var directPages: Int { state.withLock { $0.directPages } }
}
