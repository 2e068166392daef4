// SPDX-License-Identifier: Apache-2.0
public import NommuBase

extension PageAllocator {
    /// Gives back pages [offset, offset + count) of an exact run and returns what remains:
    /// the pages before and the pages after, each now an exact run of its own (with no
    /// slack: the pieces hold exactly their pages).
    ///
    /// This is what no-MMU `munmap` does to anonymous memory: a front cut frees the head of
    /// the region, a back cut frees the tail and the slack with it, a middle cut first
    /// splits the region (`split(_:at:)`) and then cuts the front of the upper part.
    ///
    /// - Parameters:
    ///   - run: A live run from `allocateExact` (or a piece of one).
    ///   - offset: First page to give back, counted from the run's start.
    ///   - count: Pages to give back, ≥ 1; `offset + count ≤ run.keptPages`.
    /// - Returns: The remaining pieces; both nil when the whole run was given back.
    /// - Throws: `EINVAL` when `run` is not a live exact run of that shape or the range is
    ///   outside it. Nothing changes.
    ///
    /// Models `free_page_series()` as `shrink_vma()` uses it in mm/nommu.c.
    public func releasePages(of run: PageRun, offset: Int, count: Int) throws(Errno) -> (
        before: PageRun?, after: PageRun?
    ) {
        let p = run.start.rawValue
        guard offset >= 0, count >= 1, offset <= run.keptPages - count else { throw .invalidArgument }
        let pieces = try core.withLock { () throws(Errno) -> (PageRun?, PageRun?) in
            let kept = try keptPagesLocked(of: run)
            let end = offset + count
            zone.counters.pointee.slackPages -= kept - run.pages
            let before = offset > 0 ? makePieceLocked(p, pages: offset) : nil
            let after = end < kept ? makePieceLocked(p + end, pages: kept - end) : nil
            poisonFreed(p + offset, bytes: count << zone.pageShift)
            zone.freeRange(p + offset, pages: count, zero: .dirty)
            if before == nil && after == nil { zone.counters.pointee.frees += 1 }
            return (before, after)
        }
        _checkInvariants()
        return (pieces.0, pieces.1)
    }

    /// Splits an exact run in two at `offset` pages; nothing is freed. The pieces hold
    /// exactly their pages (the run's slack, if any, stays with the upper piece as pages).
    ///
    /// - Throws: `EINVAL` when `run` is not a live exact run, or `offset` is not inside it
    ///   (1 ≤ offset < keptPages). Nothing changes.
    ///
    /// Models the page side of `split_vma()` in mm/nommu.c.
    public func split(_ run: PageRun, at offset: Int) throws(Errno) -> (lower: PageRun, upper: PageRun) {
        let p = run.start.rawValue
        guard offset >= 1, offset < run.keptPages else { throw .invalidArgument }
        let pieces = try core.withLock { () throws(Errno) -> (PageRun, PageRun) in
            let kept = try keptPagesLocked(of: run)
            zone.counters.pointee.slackPages -= kept - run.pages
            zone.counters.pointee.allocations += 1
            return (makePieceLocked(p, pages: offset), makePieceLocked(p + offset, pages: kept - offset))
        }
        _checkInvariants()
        return pieces
    }

    /// The pages `run` holds, after checking it is a live exact run of that shape. Lock held.
    private func keptPagesLocked(of run: PageRun) throws(Errno) -> Int {
        let p = run.start.rawValue
        guard run.isExact, p >= 0, p < totalPages else { throw .invalidArgument }
        let st = zone.state(p)
        guard st == PageState.allocatedExact.rawValue || st == PageState.allocatedExactSlack.rawValue,
            Int(zone.descriptors[p].runPages) == run.pages
        else { throw .invalidArgument }
        let kept = st == PageState.allocatedExactSlack.rawValue ? 1 << Int(zone.descriptors[p].order) : run.pages
        guard kept == run.keptPages else { throw .invalidArgument }
        return kept
    }

    /// Marks [pfn, pfn + pages) as an exact run of its own, without slack. Lock held.
    private func makePieceLocked(_ pfn: Int, pages: Int) -> PageRun {
        let order = Order.covering(pages: pages).rawValue
        zone.descriptors[pfn].order = UInt8(truncatingIfNeeded: order)
        zone.descriptors[pfn].runPages = UInt32(truncatingIfNeeded: pages)
        zone.setState(pfn, .allocatedExact)
        return PageRun(_uncheckedStart: pfn, pages: pages, order: order, keptPages: pages, isExact: true)
    }
}
