// SPDX-License-Identifier: Apache-2.0

/// A page frame number: the index of a page within the arena (the kernel's `pfn`).
///
/// PFN 0 is the arena's first page. Buddy arithmetic happens in PFN space, so a block of
/// order *n* always starts at a PFN that is a multiple of 2^n.
@frozen
public struct PageFrameNumber: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The page index.
    public var rawValue: Int

    @inlinable
    public init(rawValue: Int) { self.rawValue = rawValue }

    @inlinable
    public init(_ value: Int) { self.rawValue = value }

    @inlinable
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { "pfn \(rawValue)" }
}

/// A buddy order: a block of order *n* holds 2^n pages.
@frozen
public struct Order: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The exponent.
    public var rawValue: Int

    @inlinable
    public init(rawValue: Int) { self.rawValue = rawValue }

    @inlinable
    public init(_ value: Int) { self.rawValue = value }

    /// Pages in a block of this order.
    @inlinable
    public var pages: Int { 1 << rawValue }

    /// The smallest order whose block holds `pages` pages (the kernel's `get_order`, in
    /// pages rather than bytes). `pages` must be at least 1.
    @inlinable
    public static func covering(pages: Int) -> Order {
        precondition(pages >= 1, "Order.covering(pages:) needs at least one page, got \(pages)")
        return Order(pages == 1 ? 0 : Int.bitWidth - (pages - 1).leadingZeroBitCount)
    }

    @inlinable
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { "order \(rawValue)" }
}
