// SPDX-License-Identifier: Apache-2.0
public import NommuBase
public import PageAllocator

/// A run handed out by `System.allocatePages` or `allocatePagesExact`.
enum DirectRun: Equatable {
    case block(Order)
    case exact(pages: Int)
}

extension System {
    /// Allocates a block straight from the page allocator (`nommu_alloc_pages`), outside
    /// any mapping. The system counts these pages so that its checks can tell them from
    /// the pages its regions hold.
    public func allocatePages(order: Order, _ initialization: PageAllocator.Initialization) throws(Errno)
        -> PageRun
    {
        let run = try allocator.allocate(order: order, initialization)
        state.withLock { s in
            s.directPages += run.keptPages
            s.directRuns[run.start] = .block(order)
        }
        return run
    }

    /// `allocateExact` straight from the page allocator (`nommu_alloc_pages_exact`).
    public func allocatePagesExact(bytes: Int, _ initialization: PageAllocator.Initialization) throws(Errno)
        -> PageRun
    {
        let run = try allocator.allocateExact(bytes: bytes, initialization)
        state.withLock { s in
            s.directPages += run.keptPages
            s.directRuns[run.start] = .exact(pages: pages(bytes))
        }
        return run
    }

    /// Frees a block from `allocatePages`.
    /// - Throws: `EINVAL` unless `start` is a block `allocatePages` handed out with this
    ///   order and not yet freed: pages a mapping, the page cache or a device holds are
    ///   never freed through here (the allocator alone cannot tell them apart).
    public func freePages(_ start: PageFrameNumber, order: Order) throws(Errno) {
        try state.withLock { (s: inout ModelState) throws(Errno) in
            guard s.directRuns[start] == .block(order) else { throw .invalidArgument }
            try allocator.free(start, order: order)
            s.directRuns[start] = nil
            s.directPages -= order.pages
        }
    }

    /// Frees a run from `allocatePagesExact`.
    /// - Throws: `EINVAL` unless `start` and `bytes` are a run `allocatePagesExact` handed
    ///   out and not yet freed.
    public func freePagesExact(_ start: PageFrameNumber, bytes: Int) throws(Errno) {
        try state.withLock { (s: inout ModelState) throws(Errno) in
            guard bytes > 0, s.directRuns[start] == .exact(pages: pages(bytes)) else { throw .invalidArgument }
            let released = try allocator.freeExact(start, bytes: bytes)
            s.directRuns[start] = nil
            s.directPages -= released
        }
    }

    /// Pages in an exact run of `bytes` (rounded up, as `alloc_pages_exact` does).
    private func pages(_ bytes: Int) -> Int { bytes / allocator.pageSize + (bytes % allocator.pageSize == 0 ? 0 : 1) }

    /// Pages handed out through `allocatePages` / `allocatePagesExact` and not freed.
    public var directPages: Int { state.withLock { $0.directPages } }
}
