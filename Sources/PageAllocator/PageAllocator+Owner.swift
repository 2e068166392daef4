// SPDX-License-Identifier: Apache-2.0
internal import CShims
public import NommuBase

extension PageAllocator {
    /// The owner tag of the run whose first page is `start` (0: none).
    ///
    /// Every page has a 32-bit word beside its descriptor that the layers above the
    /// allocator use to mark the runs they hand out themselves, as the kernel marks a
    /// `struct page` (its page type and `private` word): the address-space model tags the
    /// runs of `nommu_alloc_pages(_exact)`, so that only those can be freed through those
    /// calls, with one load instead of a table lookup. The allocator never reads the tags;
    /// a run's tag belongs to whoever holds the run, who clears it before freeing it.
    /// Reads and writes are relaxed atomics: a tag read by a thread that does not hold the
    /// run (a foreign or double free) is a value, never a data race.
    @inline(__always)
    public func ownerTag(of start: PageFrameNumber) -> UInt32? {
        let p = start.rawValue
        guard UInt(bitPattern: p) < UInt(totalPages) else { return nil }
        return cshim_load_relaxed_u32(core.ownerTags + p)
    }
}

extension PageAllocator {
    /// Pages held by the allocated run whose first page is `start` (its slack included), or
    /// nil when no allocated run starts there. For checks: read without the zone lock, it
    /// is exact only while nobody frees that run.
    public func keptPages(ofRunAt start: PageFrameNumber) -> Int? {
        let p = start.rawValue
        guard UInt(bitPattern: p) < UInt(totalPages) else { return nil }
        switch zone.state(p) {
        case PageState.allocated.rawValue, PageState.allocatedExactSlack.rawValue:
            return 1 << Int(zone.descriptors[p].order)
        case PageState.allocatedExact.rawValue: return Int(zone.descriptors[p].runPages)
        default: return nil
        }
    }
}

extension PageAllocator {
    /// `allocate(order:)`, the run's first page tagged `tag`: the whole of
    /// `nommu_alloc_pages` in one call. Returns the run's address.
    /// - Throws: as `allocate(order:)`; nothing is tagged on failure.
    public func allocateTagged(order: Order, _ initialization: Initialization, tag: UInt32) throws(Errno)
        -> UnsafeMutableRawPointer
    {
        tagged(try allocate(order: order, initialization), tag)
    }

    /// `allocateExact(bytes:)`, the run's first page tagged `tag`. Returns its address.
    public func allocateExactTagged(bytes: Int, _ initialization: Initialization, tag: UInt32) throws(Errno)
        -> UnsafeMutableRawPointer
    {
        tagged(try allocateExact(bytes: bytes, initialization), tag)
    }

    /// Tags the first page of a run just made and returns its address.
    @inline(__always)
    private func tagged(_ run: PageRun, _ tag: UInt32) -> UnsafeMutableRawPointer {
        let p = run.start.rawValue
        cshim_store_relaxed_u32(core.ownerTags + p, tag)
        return zone.address(p)
    }

    /// Frees the block of 2^order pages at `address` if its first page is tagged `tag`,
    /// clearing the tag (before the pages go: once freed they may be another thread's).
    /// - Throws: `EINVAL` for an address that is not the first byte of a page of the arena,
    ///   a tag that differs, or a block `free(_:order:)` refuses. Nothing changes on failure.
    public func freeTagged(at address: UnsafeRawPointer, order: Order, tag: UInt32) throws(Errno) {
        try untagging(address, tag) { (start: PageFrameNumber) throws(Errno) in
            try freeBlock(start.rawValue, order: order.rawValue)
        }
    }

    /// Frees the exact run of `bytes` at `address` if its first page is tagged `tag`.
    /// - Throws: as `freeTagged(at:order:tag:)`, with `freeExact`'s checks.
    public func freeExactTagged(at address: UnsafeRawPointer, bytes: Int, tag: UInt32) throws(Errno) {
        guard bytes > 0 else { throw .invalidArgument }
        try untagging(address, tag) { (start: PageFrameNumber) throws(Errno) in
            _ = try freeExact(start, bytes: bytes)
        }
    }

    /// Runs `free` on the run at `address` with its tag cleared, if the tag is `tag`; puts
    /// the tag back when `free` refuses.
    @inline(__always)
    private func untagging(
        _ address: UnsafeRawPointer, _ tag: UInt32, _ free: (PageFrameNumber) throws(Errno) -> Void
    ) throws(Errno) {
        guard let start = pageFrame(startingAt: address) else { throw .invalidArgument }
        let t = core.ownerTags + start.rawValue
        guard cshim_load_relaxed_u32(t) == tag else { throw .invalidArgument }
        cshim_store_relaxed_u32(t, 0)
        do throws(Errno) {
            try free(start)
        } catch {
            cshim_store_relaxed_u32(t, tag)
            throw error
        }
    }
}
