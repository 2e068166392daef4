// SPDX-License-Identifier: Apache-2.0

/// A deliberately naive model of a buddy allocator: one `Bool` per page.
///
/// It knows nothing of lists, splitting or merging. It answers the questions a buddy
/// allocator with eager coalescing must agree with: a block of order k can be allocated
/// exactly when some 2^k-aligned run of free pages lies inside the arena (and k is at
/// most the maximum order); a run handed out must be aligned and wholly free; after a
/// free, its pages are free again.
public struct ReferenceBuddy {
    public let totalPages: Int
    public let maxOrder: Int
    public private(set) var used: [Bool]
    public private(set) var usedCount = 0

    public init(totalPages: Int, maxOrder: Int) {
        self.totalPages = totalPages
        self.maxOrder = maxOrder
        self.used = Array(repeating: false, count: totalPages)
    }

    /// Whether an aligned free run of 2^order pages exists.
    public func canAllocate(order: Int) -> Bool {
        guard order >= 0, order <= maxOrder else { return false }
        let size = 1 << order
        var start = 0
        while start + size <= totalPages {
            if !used[start..<(start + size)].contains(true) { return true }
            start += size
        }
        return false
    }

    /// Whether every page of [start, start + pages) is free.
    public func isFree(_ start: Int, pages: Int) -> Bool {
        start >= 0 && start + pages <= totalPages && !used[start..<(start + pages)].contains(true)
    }

    public mutating func take(_ start: Int, pages: Int) {
        for i in start..<(start + pages) {
            precondition(!used[i], "reference: page \(i) taken twice")
            used[i] = true
        }
        usedCount += pages
    }

    public mutating func give(_ start: Int, pages: Int) {
        for i in start..<(start + pages) {
            precondition(used[i], "reference: page \(i) given back twice")
            used[i] = false
        }
        usedCount -= pages
    }
}

/// The blocks a fresh arena of `totalPages` is carved into with `maxOrder`: the
/// `/proc/buddyinfo` counts every test expects to see again once all pages are back.
public func pristineFreeBlocks(totalPages: Int, maxOrder: Int) -> [Int] {
    var counts = Array(repeating: 0, count: maxOrder + 1)
    var p = 0
    while p < totalPages {
        var k = min(p == 0 ? maxOrder : p.trailingZeroBitCount, maxOrder)
        while p + (1 << k) > totalPages { k -= 1 }
        counts[k] += 1
        p += 1 << k
    }
    return counts
}
