// SPDX-License-Identifier: Apache-2.0
public import NommuBase

/// A contiguous run of pages handed out by a `PageAllocator`.
///
/// `allocate(order:)` runs are whole buddy blocks (`pages == keptPages == 2^order`).
/// `allocateExact` runs hold the pages asked for, plus any slack the trim rule left them
/// (`keptPages - pages`). A run is freed as a whole, with the call that matches how it
/// was made (`free(_:)` picks it).
@frozen
public struct PageRun: Hashable, Sendable, CustomStringConvertible {
    /// First page.
    public let start: PageFrameNumber
    /// Pages asked for (page-rounded).
    public let pages: Int
    /// Order of the buddy block the run came from.
    public let order: Order
    /// Pages the run holds, slack included.
    public let keptPages: Int
    /// Whether it came from `allocateExact`.
    public let isExact: Bool

    @inlinable
    public init(start: PageFrameNumber, pages: Int, order: Order, keptPages: Int, isExact: Bool) {
        self.start = start
        self.pages = pages
        self.order = order
        self.keptPages = keptPages
        self.isExact = isExact
    }

    /// Pages past `pages` that the run keeps (the trim rule's slack).
    @inlinable
    public var slackPages: Int { keptPages - pages }

    public var description: String {
        isExact
            ? "run(\(start), \(pages) pages of \(order), kept \(keptPages))"
            : "run(\(start), \(order))"
    }
}
