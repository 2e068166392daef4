// SPDX-License-Identifier: Apache-2.0
import NommuHost
import NommuBase
import NommuTestSupport
import PageAllocator
import Testing

func makeAllocator(
    pages: Int, maxOrder: Int = 10, trim: Int = 1, perCPU: Bool = true, backing: HostArena.Backing = .mmap
) throws -> PageAllocator {
    try PageAllocator(
        .init(arenaBytes: pages * 4096, maxOrder: maxOrder, backing: backing, nrTrimPages: trim, perCPULists: perCPU))
}

@Suite("Page allocator: examples")
struct ExampleTests {
    @Test func freshArenaIsOneBlockPerAlignedChunk() throws {
        let a = try makeAllocator(pages: 16, maxOrder: 10)
        let s = a.statistics()
        #expect(s.totalPages == 16 && s.freePages == 16 && s.allocatedPages == 0)
        #expect(s.freeBlocks == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
        #expect(
            s.buddyInfo
                == "Node 0, zone   Normal      0      0      0      0      1      0      0      0      0      0      0 \n"
        )
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test("arenas that are not powers of two are carved into the largest aligned blocks")
    func carving() throws {
        #expect(try makeAllocator(pages: 6, maxOrder: 10).statistics().freeBlocks.prefix(4) == [0, 1, 1, 0])
        #expect(try makeAllocator(pages: 13, maxOrder: 10).statistics().freeBlocks.prefix(4) == [1, 0, 1, 1])
        // The maximum order caps the blocks: 20 pages with order 2 blocks = five of them.
        #expect(try makeAllocator(pages: 20, maxOrder: 2).statistics().freeBlocks == [0, 0, 5])
        #expect(try makeAllocator(pages: 1, maxOrder: 0).statistics().freeBlocks == [1])
    }

    @Test("allocation splits the smallest block that fits; freeing merges it all back", arguments: [true, false])
    func splitAndMerge(perCPU: Bool) throws {
        let a = try makeAllocator(pages: 16, maxOrder: 4, perCPU: perCPU)
        let r = try a.allocate(order: Order(0), .uninitialized)
        #expect(r.start.rawValue % 1 == 0 && r.pages == 1 && !r.isExact)
        if !perCPU {
            // 16 → 8 + 4 + 2 + 1 free, one page out.
            #expect(a.statistics().freeBlocks == [1, 1, 1, 1, 0])
            #expect(a.statistics().splits == 4)
        }
        let r2 = try a.allocate(order: Order(2))
        #expect(r2.start.rawValue % 4 == 0)
        try a.free(r)
        try a.free(r2)
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test("blocks are aligned in address space as well as in page numbers")
    func addressAlignment() throws {
        let a = try makeAllocator(pages: 1024, maxOrder: 10)
        let r = try a.allocate(order: Order(6))
        #expect(UInt(bitPattern: a.address(of: r.start)) % UInt(64 * 4096) == 0)
        #expect(a.pageFrame(startingAt: a.address(of: r.start)) == r.start)
        #expect(a.pageFrame(startingAt: a.address(of: r.start) + 1) == nil)
        #expect(a.pageFrame(containing: a.address(of: r.start) + 4097) == PageFrameNumber(r.start.rawValue + 1))
        #expect(a.pageFrame(containing: a.baseAddress - 1) == nil)
        #expect(a.pageFrame(containing: a.baseAddress + 1024 * 4096) == nil)
        #expect(a.bytes(of: r).count == 64 * 4096)
        try a.free(r)
        #expect(allPagesBackViolation(a) == nil)
    }

    // The trim rule of `do_mmap_private`: with vm.nr_trim_pages N > 0, an excess of at least N
    // pages over the request goes back (as `alloc_pages_exact` does); with 0 nothing is trimmed.
    @Test(
        "exact allocation keeps what the trim rule says",
        arguments: [
            // (pages asked, nr_trim_pages, pages kept)
            (1, 0, 1), (1, 1, 1), (1, 2, 1),
            (3, 0, 4), (3, 1, 3), (3, 2, 4),
            (4, 0, 4), (4, 1, 4), (4, 2, 4),
            (5, 0, 8), (5, 1, 5), (5, 2, 5),
            (7, 0, 8), (7, 1, 7), (7, 2, 8),
            (9, 1, 9), (9, 8, 16), (9, 7, 9), (1000, 1, 1000), (1000, 30, 1024),
        ])
    func trimRule(_ pages: Int, _ trim: Int, _ kept: Int) throws {
        let a = try makeAllocator(pages: 1024, maxOrder: 10, trim: trim)
        let r = try a.allocateExact(bytes: pages * 4096 - 100)
        #expect(r.pages == pages && r.keptPages == kept && r.isExact)
        #expect(r.order == Order.covering(pages: pages))
        let s = a.statistics()
        #expect(s.allocatedPages == kept)
        #expect(s.slackPages == kept - pages)
        #expect(s.pagesTrimmed == Int64((1 << r.order.rawValue) - kept))
        // Trimmed pages of a run of order ≤ 3 go onto the per-CPU lists (free, but not MemFree).
        #expect(s.availablePages == 1024 - kept)
        #expect(s.perCPUPages == (r.order.rawValue <= 3 ? (1 << r.order.rawValue) - kept : 0))
        try a.free(r)
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test("trimmed excess goes back as a few aligned blocks, not page by page")
    func trimInBlocks() throws {
        let a = try makeAllocator(pages: 1024, maxOrder: 10, trim: 1)
        // 513 pages from a 1024-page block: excess 511 = 256+128+64+32+16+8+4+2+1.
        let r = try a.allocateExact(bytes: 513 * 4096)
        #expect(a.statistics().freeBlocks == [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0])
        try a.freeExact(r.start, bytes: 513 * 4096 - 5)
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test func nrTrimPagesSysctl() throws {
        let a = try makeAllocator(pages: 64)
        #expect(a.nrTrimPages == 1)
        try a.setNrTrimPages(0)
        #expect(a.nrTrimPages == 0)
        #expect(throws: Errno.invalidArgument) { try a.setNrTrimPages(-1) }
        #expect(a.nrTrimPages == 0)
        let r = try a.allocateExact(bytes: 3 * 4096)
        #expect(r.keptPages == 4)
        let r2 = try a.allocateExact(bytes: 3 * 4096, trimThreshold: 1)
        #expect(r2.keptPages == 3)
        #expect(throws: Errno.invalidArgument) { _ = try a.allocateExact(bytes: 4096, trimThreshold: -1) }
        try a.free(r)
        try a.free(r2)
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test func largeOrdersAndPageSizes() throws {
        let a = try PageAllocator(.init(arenaBytes: 64 << 20, pageSize: 16384, maxOrder: 12))
        #expect(a.pageSize == 16384 && a.totalPages == 4096)
        let r = try a.allocate(order: Order(12), .uninitialized)
        #expect(r.pages == 4096)
        #expect(throws: Errno.noMemory) { _ = try a.allocate(order: Order(0)) }
        try a.free(r)
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test("bad configurations are EINVAL")
    func badConfigurations() {
        for c in [
            PageAllocator.Configuration(arenaBytes: 1 << 20, pageSize: 2048),
            PageAllocator.Configuration(arenaBytes: 1 << 20, pageSize: 12288),
            PageAllocator.Configuration(arenaBytes: 1 << 20, maxOrder: -1),
            PageAllocator.Configuration(arenaBytes: 1 << 20, maxOrder: 31),
            PageAllocator.Configuration(arenaBytes: 4095),
            PageAllocator.Configuration(arenaBytes: 1 << 20, nrTrimPages: -1),
        ] {
            #expect(throws: Errno.invalidArgument) { _ = try PageAllocator(c) }
        }
    }

    @Test func posixMemalignBacking() throws {
        let a = try makeAllocator(pages: 64, backing: .posixMemalign)
        #expect(!a.arenaWasZero)
        let r = try a.allocateExact(bytes: 64 * 4096)
        #expect(Cookie.isZero(UnsafeRawBufferPointer(a.bytes(of: r))))
        #expect(a.statistics().bytesZeroed == 64 * 4096)
        try a.free(r)
        #expect(allPagesBackViolation(a) == nil)
    }
}

@Suite("Page allocator: errors change nothing")
struct ErrorTests {
    func snapshot(_ a: PageAllocator) -> [Int] {
        let s = a.statistics()
        return s.freeBlocks + [s.freePages, s.allocatedPages, s.slackPages, s.perCPUPages]
    }

    @Test("ENOMEM: order above the maximum, or no contiguous run", arguments: [true, false])
    func noMemory(perCPU: Bool) throws {
        let a = try makeAllocator(pages: 16, maxOrder: 3, perCPU: perCPU)
        #expect(throws: Errno.noMemory) { _ = try a.allocate(order: Order(4)) }
        #expect(throws: Errno.noMemory) { _ = try a.allocateExact(bytes: 9 * 4096) }
        #expect(throws: Errno.noMemory) { _ = try a.allocateExact(bytes: Int.max) }
        // Fragment: take all 16 pages as order 0, give back every other page.
        var runs = try (0..<16).map { _ in try a.allocate(order: Order(0)) }
        runs.sort { $0.start < $1.start }
        for (i, r) in runs.enumerated() where i % 2 == 0 { try a.free(r) }
        a.drainLocalPerCPULists()
        let before = snapshot(a)
        #expect(a.statistics().availablePages == 8)
        #expect(throws: Errno.noMemory) { _ = try a.allocate(order: Order(1)) }
        #expect(throws: Errno.noMemory) { _ = try a.allocateExact(bytes: 4097) }
        #expect(snapshot(a) == before)
        #expect(a.statistics().failedAllocations >= 5)
        #expect(a.statistics().fragmentationIndex(order: 1) == 1000 - (1000 + 8 * 1000 / 2) / 8)
        #expect(a.statistics().unusableFreeIndex(order: 1) == 1000)
        #expect(a.statistics().unusableFreeIndex(order: 0) == 0)
        #expect(a.statistics().fragmentationIndex(order: 0) == -1000)
        for (i, r) in runs.enumerated() where i % 2 == 1 { try a.free(r) }
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test("EINVAL: double free, foreign page, wrong order, wrong kind", arguments: [true, false])
    func invalidFrees(perCPU: Bool) throws {
        let a = try makeAllocator(pages: 64, maxOrder: 6, perCPU: perCPU)
        let r = try a.allocate(order: Order(2))
        let e = try a.allocateExact(bytes: 3 * 4096)
        let before = snapshot(a)
        #expect(throws: Errno.invalidArgument) { try a.free(r.start, order: Order(1)) }
        #expect(throws: Errno.invalidArgument) { try a.free(r.start, order: Order(3)) }
        #expect(throws: Errno.invalidArgument) { try a.free(PageFrameNumber(r.start.rawValue + 1), order: Order(0)) }
        #expect(throws: Errno.invalidArgument) { try a.free(PageFrameNumber(-1), order: Order(0)) }
        #expect(throws: Errno.invalidArgument) { try a.free(PageFrameNumber(64), order: Order(0)) }
        #expect(throws: Errno.invalidArgument) { try a.free(r.start, order: Order(-1)) }
        #expect(throws: Errno.invalidArgument) { try a.free(r.start, order: Order(7)) }
        #expect(throws: Errno.invalidArgument) { try a.freeExact(r.start, pages: 4) }
        #expect(throws: Errno.invalidArgument) { try a.free(e.start, order: e.order) }
        #expect(throws: Errno.invalidArgument) { try a.freeExact(e.start, pages: 4) }
        #expect(throws: Errno.invalidArgument) { try a.freeExact(e.start, pages: 0) }
        #expect(throws: Errno.invalidArgument) { try a.freeExact(PageFrameNumber(e.start.rawValue + 1), pages: 2) }
        #expect(throws: Errno.invalidArgument) { try a.freeExact(e.start, bytes: 0) }
        #expect(throws: Errno.invalidArgument) { _ = try a.allocate(order: Order(-1)) }
        #expect(throws: Errno.invalidArgument) { _ = try a.allocateExact(bytes: 0) }
        #expect(throws: Errno.invalidArgument) { _ = try a.allocateExact(bytes: -5) }
        // A free page (never allocated) is refused too.
        let freePage = (0..<64).first { p in
            !(r.start.rawValue..<(r.start.rawValue + 4)).contains(p)
                && !(e.start.rawValue..<(e.start.rawValue + 3)).contains(p)
        }!
        #expect(throws: Errno.invalidArgument) { try a.free(PageFrameNumber(freePage), order: Order(0)) }
        #expect(snapshot(a) == before)
        #expect(a.invariantViolation() == nil)
        try a.free(r)
        try a.free(e)
        #expect(throws: Errno.invalidArgument) { try a.free(r) }
        #expect(throws: Errno.invalidArgument) { try a.free(e) }
        #expect(allPagesBackViolation(a) == nil)
        #expect(throws: Errno.invalidArgument) { try a.free(r) }
        #expect(throws: Errno.invalidArgument) { try a.free(e) }
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test("an out-of-arena page number is a bug and traps")
    func addressOfForeignPageTraps() async {
        await #expect(processExitsWith: .failure) {
            let a = try makeAllocator(pages: 4)
            _ = a.address(of: PageFrameNumber(4))
        }
    }
}

@Suite("Page allocator: statistics")
struct StatisticsTests {
    @Test func indexesMatchTheKernelFormulas() {
        var s = PageAllocator.Statistics(
            pageSize: 4096, totalPages: 64, maxOrder: 3, freePages: 0, perCPUPages: 0, allocatedPages: 0,
            slackPages: 0, freeBlocks: [0, 0, 0, 0], bytesZeroed: 0, bytesKnownZero: 0, bytesUninitialized: 0,
            pagesTrimmed: 0, allocations: 0, frees: 0, splits: 0, merges: 0, failedAllocations: 0)
        #expect(s.unusableFreeIndex(order: 0) == 1000)
        #expect(s.fragmentationIndex(order: 0) == 0)
        #expect(s.largestFreeOrder == nil && s.largestFreeBlockBytes == 0)
        s.freeBlocks = [4, 2, 0, 0]  // 8 free pages
        #expect(s.unusableFreeIndex(order: 0) == 0)
        #expect(s.unusableFreeIndex(order: 1) == 500)  // 4 of 8 pages are single
        #expect(s.unusableFreeIndex(order: 2) == 1000)
        #expect(s.fragmentationIndex(order: 1) == -1000)
        // order 2: requested 4, free 8 pages in 6 blocks: 1000 - (1000 + 2000) / 6 = 500
        #expect(s.fragmentationIndex(order: 2) == 500)
        #expect(s.largestFreeOrder == 1 && s.largestFreeBlockBytes == 8192)
        #expect(PageAllocator.Statistics.formatIndex(-1000) == "-1.000")
        #expect(PageAllocator.Statistics.formatIndex(5) == "0.005")
        #expect(PageAllocator.Statistics.formatIndex(1000) == "1.000")
        #expect(s.extfragReport.contains("unusable_index: Node 0, zone   Normal 0.000 0.500 1.000 1.000"))
        #expect(s.buddyInfo == "Node 0, zone   Normal      4      2      0      0 \n")
    }

    @Test func countersMove() throws {
        let a = try makeAllocator(pages: 64, maxOrder: 6, perCPU: false)
        let r = try a.allocate(order: Order(3), .uninitialized)
        let e = try a.allocateExact(bytes: 5 * 4096)
        let s = a.statistics()
        #expect(s.allocations == 2 && s.frees == 0)
        #expect(s.bytesUninitialized == 8 * 4096)
        #expect(s.bytesKnownZero == 5 * 4096 && s.bytesZeroed == 0)
        #expect(s.pagesTrimmed == 3)
        #expect(s.splits > 0)
        try a.free(r)
        try a.free(e)
        #expect(a.statistics().frees == 2 && a.statistics().merges > 0)
        #expect(allPagesBackViolation(a) == nil)
    }
}
