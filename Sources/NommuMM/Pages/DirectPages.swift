// SPDX-License-Identifier: Apache-2.0
public import NommuBase
public import PageAllocator

/// The owner tags (`PageAllocator.ownerTag(of:)`) of the runs handed out by
/// `System.allocatePages` (the order in the low bits) and `allocatePagesExact`.
@usableFromInline
enum DirectTag {
    @usableFromInline static let block: UInt32 = 0xD1B1_0000
    @usableFromInline static let exact: UInt32 = 0xD1E1_0000

    @inlinable
    static func block(_ order: Order) -> UInt32 { block | UInt32(truncatingIfNeeded: order.rawValue) }

    /// Whether `tag` marks a run of either call.
    static func isDirect(_ tag: UInt32) -> Bool { tag & 0xFFFF_0000 == block || tag == exact }
}

extension System {
    /// Allocates a block straight from the page allocator (`nommu_alloc_pages`), outside
    /// any mapping, and tags its first page as such: only runs tagged so can be freed
    /// through `freePages`, and the system's checks tell these pages from those its
    /// regions hold. Returns the block's address.
    /// - Complexity: the allocator's (O(1) from a per-CPU list); no lock of the model.
    @inlinable
    public func allocatePages(order: Order, _ initialization: PageAllocator.Initialization) throws(Errno)
        -> UnsafeMutableRawPointer
    {
        try allocator.allocateTagged(order: order, initialization, tag: DirectTag.block(order))
    }

    /// `allocateExact` straight from the page allocator (`nommu_alloc_pages_exact`).
    @inlinable
    public func allocatePagesExact(bytes: Int, _ initialization: PageAllocator.Initialization) throws(Errno)
        -> UnsafeMutableRawPointer
    {
        try allocator.allocateExactTagged(bytes: bytes, initialization, tag: DirectTag.exact)
    }

    /// Frees a block from `allocatePages`.
    /// - Throws: `EINVAL` unless `address` is a block `allocatePages` handed out with this
    ///   order and not yet freed: pages a mapping, the page cache or a device holds are
    ///   never freed through here (the allocator alone cannot tell them apart). Nothing
    ///   changes on failure.
    /// - Complexity: one tag load, then the allocator's free. Two threads freeing the same
    ///   block at the same instant is a race in the caller (as in the allocator).
    @inlinable
    public func freePages(at address: UnsafeRawPointer, order: Order) throws(Errno) {
        try allocator.freeTagged(at: address, order: order, tag: DirectTag.block(order))
    }

    /// Frees a run from `allocatePagesExact`.
    /// - Throws: `EINVAL` unless `address` and `bytes` are a run `allocatePagesExact` handed
    ///   out and not yet freed. Nothing changes on failure.
    @inlinable
    public func freePagesExact(at address: UnsafeRawPointer, bytes: Int) throws(Errno) {
        try allocator.freeExactTagged(at: address, bytes: bytes, tag: DirectTag.exact)
    }

    /// Pages handed out through `allocatePages` / `allocatePagesExact` and not freed (their
    /// slack included), counted from the owner tags: O(arena), for checks and reports.
    public var directPages: Int {
        var n = 0
        for p in 0..<allocator.totalPages {
            let pfn = PageFrameNumber(p)
            guard let tag = allocator.ownerTag(of: pfn), DirectTag.isDirect(tag) else { continue }
            n += allocator.keptPages(ofRunAt: pfn) ?? 0
        }
        return n
    }
}
