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
    public func allocateExact(
        bytes: Int, _ initialization: Initialization = .zeroed, trimThreshold: Int? = nil
    ) throws(Errno) -> PageRun {
        guard bytes > 0 else { throw .invalidArgument }
        if let t = trimThreshold, t < 0 { throw .invalidArgument }
        guard bytes <= Int.max - (pageSize - 1) else {
            core.withLock { zone.s.pointee.failedAllocations += 1 }
            throw .noMemory
        }
        let n = (bytes + pageSize - 1) >> zone.pageShift
        let k = Order.covering(pages: n).rawValue
        guard k <= maxOrder else {
            core.withLock { zone.s.pointee.failedAllocations += 1 }
            throw .noMemory
        }
        let (pfn, kept) = try core.withLock { () throws(Errno) -> (Int, Int) in
            let p = try takeLocked(order: k)
            account(p, order: k, bytes: n << zone.pageShift, initialization)
            let total = 1 &<< k
            let excess = total - n
            let threshold = trimThreshold ?? zone.s.pointee.nrTrimPages
            let trimmed = threshold != 0 && excess >= threshold
            let kept = trimmed ? n : total
            if trimmed && excess > 0 {
                let given = zone.trim(p, k, keep: n)
                zone.s.pointee.pagesTrimmed += Int64(given)
            }
            zone.d[p].order = UInt8(truncatingIfNeeded: k)
            zone.d[p].runPages = UInt32(truncatingIfNeeded: n)
            zone.setState(p, kept == n ? .allocatedExact : .allocatedExactSlack)
            zone.s.pointee.slackPages += kept - n
            zone.s.pointee.allocations += 1
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
    @discardableResult
    public func freeExact(_ start: PageFrameNumber, pages: Int) throws(Errno) -> Int {
        let p = start.rawValue
        guard p >= 0, p < totalPages, pages > 0 else { throw .invalidArgument }
        let released = try core.withLock { () throws(Errno) -> Int in
            let st = zone.state(p)
            guard st == PageState.allocatedExact.rawValue || st == PageState.allocatedExactSlack.rawValue,
                Int(zone.d[p].runPages) == pages
            else { throw .invalidArgument }
            let kept = st == PageState.allocatedExactSlack.rawValue ? 1 &<< Int(zone.d[p].order) : pages
            poisonFreed(p, bytes: kept << zone.pageShift)
            zone.s.pointee.slackPages -= kept - pages
            zone.s.pointee.frees += 1
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
