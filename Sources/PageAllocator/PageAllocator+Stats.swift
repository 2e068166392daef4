// SPDX-License-Identifier: Apache-2.0
import NommuBase

extension PageAllocator {
    /// A snapshot of the allocator's gauges and counters.
    ///
    /// Gauges (now): `freePages`, `perCPUPages`, `allocatedPages`, `slackPages`,
    /// `freeBlocks`. Counters (since creation): the rest. Per-CPU counters are read with
    /// relaxed loads, so a snapshot taken while other threads work is approximate; taken
    /// when they are quiet it is exact.
    public struct Statistics: Sendable, Hashable {
        public var pageSize: Int
        public var totalPages: Int
        public var maxOrder: Int
        /// Pages on the buddy free lists.
        public var freePages: Int
        /// Pages on per-CPU lists (free, but only to the thread that holds them).
        public var perCPUPages: Int
        /// Pages in runs handed to callers (slack included).
        public var allocatedPages: Int
        /// Pages that live exact runs keep past what they asked for.
        public var slackPages: Int
        /// Free blocks per order, 0…maxOrder (the `/proc/buddyinfo` columns).
        public var freeBlocks: [Int]
        /// Bytes cleared by the allocator.
        public var bytesZeroed: Int64
        /// Bytes that were asked to be zero and were skipped because they were known zero.
        public var bytesKnownZero: Int64
        /// Bytes handed out without clearing.
        public var bytesUninitialized: Int64
        /// Pages given back by the trim rule.
        public var pagesTrimmed: Int64
        public var allocations: Int64
        public var frees: Int64
        public var splits: Int64
        public var merges: Int64
        public var failedAllocations: Int64

        public init(
            pageSize: Int, totalPages: Int, maxOrder: Int, freePages: Int, perCPUPages: Int, allocatedPages: Int,
            slackPages: Int, freeBlocks: [Int], bytesZeroed: Int64, bytesKnownZero: Int64, bytesUninitialized: Int64,
            pagesTrimmed: Int64, allocations: Int64, frees: Int64, splits: Int64, merges: Int64,
            failedAllocations: Int64
        ) {
            self.pageSize = pageSize
            self.totalPages = totalPages
            self.maxOrder = maxOrder
            self.freePages = freePages
            self.perCPUPages = perCPUPages
            self.allocatedPages = allocatedPages
            self.slackPages = slackPages
            self.freeBlocks = freeBlocks
            self.bytesZeroed = bytesZeroed
            self.bytesKnownZero = bytesKnownZero
            self.bytesUninitialized = bytesUninitialized
            self.pagesTrimmed = pagesTrimmed
            self.allocations = allocations
            self.frees = frees
            self.splits = splits
            self.merges = merges
            self.failedAllocations = failedAllocations
        }

        /// Pages free to anyone (buddy lists plus per-CPU lists).
        public var availablePages: Int { freePages + perCPUPages }

        /// The largest order with a free block, or nil when the lists are empty.
        public var largestFreeOrder: Int? { freeBlocks.lastIndex(where: { $0 > 0 }) }

        /// Bytes in the largest free block.
        public var largestFreeBlockBytes: Int { largestFreeOrder.map { pageSize << $0 } ?? 0 }

        /// The free lists as `/proc/buddyinfo` prints them:
        /// `Node 0, zone   Normal      1      0 …` (a `%6lu ` column per order).
        public var buddyInfo: String {
            var line = "Node 0, zone " + String(repeating: " ", count: max(0, 8 - "Normal".count)) + "Normal "
            for n in freeBlocks {
                let v = String(n)
                line += String(repeating: " ", count: max(0, 6 - v.count)) + v + " "
            }
            return line + "\n"
        }

        private func contig(_ order: Int) -> (total: Int, pages: Int, suitable: Int) {
            var total = 0
            var pages = 0
            var suitable = 0
            for (o, n) in freeBlocks.enumerated() {
                total += n
                pages += n << o
                if o >= order { suitable += n << (o - order) }
            }
            return (total, pages, suitable)
        }

        /// The kernel's unusable free space index for `order`, in thousandths (0…1000):
        /// the share of free pages that cannot serve a request of that order. 1000 when
        /// nothing is free. Models `unusable_free_index()` in mm/vmstat.c.
        public func unusableFreeIndex(order: Int) -> Int {
            let c = contig(order)
            if c.pages == 0 { return 1000 }
            return (c.pages - (c.suitable << order)) * 1000 / c.pages
        }

        /// The kernel's external fragmentation index for `order`, in thousandths: −1000
        /// when a block of that order is free (the request would succeed), 0 when nothing
        /// is free, otherwise towards 0 when a failure would be for lack of memory and
        /// towards 1000 when it would be for fragmentation. Models `__fragmentation_index()`.
        public func fragmentationIndex(order: Int) -> Int {
            let c = contig(order)
            if c.total == 0 { return 0 }
            if c.suitable > 0 { return -1000 }
            let requested = 1 << order
            return 1000 - (1000 + c.pages * 1000 / requested) / c.total
        }

        /// Formats a thousandths index as the kernel does (`%d.%03d`).
        public static func formatIndex(_ v: Int) -> String {
            let sign = v < 0 ? "-" : ""
            let a = abs(v)
            let frac = String(a % 1000)
            return sign + String(a / 1000) + "." + String(repeating: "0", count: 3 - frac.count) + frac
        }

        /// Both indexes for every order, as debugfs `extfrag/unusable_index` and
        /// `extfrag/extfrag_index` print them.
        public var extfragReport: String {
            let orders = 0..<freeBlocks.count
            let u = orders.map { Self.formatIndex(unusableFreeIndex(order: $0)) }.joined(separator: " ")
            let f = orders.map { Self.formatIndex(fragmentationIndex(order: $0)) }.joined(separator: " ")
            return "unusable_index: Node 0, zone   Normal \(u)\nextfrag_index:  Node 0, zone   Normal \(f)\n"
        }
    }

    /// A snapshot of the allocator's state.
    public func statistics() -> Statistics {
        core.withLock {
            let s = zone.counters.pointee
            let (t, pcpPages) = core.perCPUTotalsLocked()
            return Statistics(
                pageSize: pageSize, totalPages: totalPages, maxOrder: maxOrder,
                freePages: s.freePages, perCPUPages: pcpPages,
                allocatedPages: s.outstandingPages - pcpPages, slackPages: s.slackPages + Int(t.slack),
                freeBlocks: (0...maxOrder).map { zone.freeCount($0) },
                bytesZeroed: s.bytesZeroed + t.zeroed, bytesKnownZero: s.bytesKnownZero + t.knownZero,
                bytesUninitialized: s.bytesUninitialized + t.uninit, pagesTrimmed: s.pagesTrimmed + t.trimmed,
                allocations: s.allocations + t.allocs, frees: s.frees + t.frees, splits: s.splits,
                merges: s.merges, failedAllocations: s.failedAllocations)
        }
    }

    /// `/proc/buddyinfo` for this zone.
    public var buddyInfo: String { statistics().buddyInfo }
}
