// SPDX-License-Identifier: Apache-2.0
public import NommuBase

/// A contiguous run of pages handed out by a `PageAllocator`.
///
/// `allocate(order:)` runs are whole buddy blocks (`pages == keptPages == 2^order`).
/// `allocateExact` runs hold the pages asked for, plus any slack the trim rule left them
/// (`keptPages - pages`). A run is freed as a whole, with the call that matches how it
/// was made (`free(_:)` picks it).
///
/// Stored in three machine words (page counts fit 32 bits: an arena has fewer than 2^32
/// pages), so a run comes back from `allocate` in registers.
@frozen
public struct PageRun: Hashable, Sendable, CustomStringConvertible {
    @usableFromInline let _start: Int
    @usableFromInline let _pages: UInt32
    @usableFromInline let _kept: UInt32
    @usableFromInline let _order: UInt8
    @usableFromInline let _exact: Bool

    @inlinable
    public init(start: PageFrameNumber, pages: Int, order: Order, keptPages: Int, isExact: Bool) {
        precondition(
            pages >= 0 && pages <= Int(UInt32.max) && keptPages >= pages && keptPages <= Int(UInt32.max)
                && order.rawValue >= 0 && order.rawValue <= 63, "PageRun out of range")
        _start = start.rawValue
        _pages = UInt32(truncatingIfNeeded: pages)
        _kept = UInt32(truncatingIfNeeded: keptPages)
        _order = UInt8(truncatingIfNeeded: order.rawValue)
        _exact = isExact
    }

    /// The allocator's own constructor: the caller guarantees the ranges the public
    /// initializer checks (they hold for every run a `PageAllocator` can make).
    @inline(__always)
    init(_uncheckedStart start: Int, pages: Int, order: Int, keptPages: Int, isExact: Bool) {
        _start = start
        _pages = UInt32(truncatingIfNeeded: pages)
        _kept = UInt32(truncatingIfNeeded: keptPages)
        _order = UInt8(truncatingIfNeeded: order)
        _exact = isExact
    }

    /// First page.
    @inlinable public var start: PageFrameNumber { PageFrameNumber(_start) }
    /// Pages asked for (page-rounded).
    @inlinable public var pages: Int { Int(_pages) }
    /// Order of the buddy block the run came from.
    @inlinable public var order: Order { Order(Int(_order)) }
    /// Pages the run holds, slack included.
    @inlinable public var keptPages: Int { Int(_kept) }
    /// Whether it came from `allocateExact`.
    @inlinable public var isExact: Bool { _exact }

    /// Pages past `pages` that the run keeps (the trim rule's slack).
    @inlinable
    public var slackPages: Int { keptPages - pages }

    public var description: String {
        isExact
            ? "run(\(start), \(pages) pages of \(order), kept \(keptPages))"
            : "run(\(start), \(order))"
    }
}
