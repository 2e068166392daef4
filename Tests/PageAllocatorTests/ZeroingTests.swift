// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuTestSupport
import PageAllocator
import Testing

@Suite("Page allocator: zeroing")
struct ZeroingTests {
    /// Dirties the whole arena: every page handed out uninitialised, written, freed.
    func dirtyEverything(_ a: PageAllocator, pattern: UInt8 = 0xCC) throws {
        let r = try a.allocateExact(bytes: a.totalPages * a.pageSize, .uninitialized)
        a.bytes(of: r).initializeMemory(as: UInt8.self, repeating: pattern)
        try a.free(r)
    }

    @Test("fresh host pages are never cleared; dirty ones are, once per allocation")
    func knownZeroIsSkipped() throws {
        let a = try makeAllocator(pages: 256, maxOrder: 8)
        let r = try a.allocateExact(bytes: 1 << 20)
        #expect(a.statistics().bytesZeroed == 0)
        #expect(a.statistics().bytesKnownZero == 1 << 20)
        #expect(Cookie.isZero(UnsafeRawBufferPointer(a.bytes(of: r))))
        a.bytes(of: r)[77] = 1
        try a.free(r)
        #expect(a.knownZeroFreePages() == 0)
        let r2 = try a.allocateExact(bytes: 1 << 20)
        #expect(a.statistics().bytesZeroed == 1 << 20)
        #expect(Cookie.isZero(UnsafeRawBufferPointer(a.bytes(of: r2))))
        try a.free(r2)
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test("merging a dirty page with clean buddies keeps the clean pages known zero", arguments: [false, true])
    func mixedBlocks(perCPU: Bool) throws {
        let a = try makeAllocator(pages: 16, maxOrder: 4, perCPU: perCPU)
        let one = try a.allocate(order: Order(0), .uninitialized)
        a.bytes(of: one)[0] = 0xEE
        try a.free(one)
        a.drainLocalPerCPULists()
        #expect(a.statistics().freeBlocks == [0, 0, 0, 0, 1])
        #expect(a.knownZeroFreePages() == 15)
        let all = try a.allocate(order: Order(4))
        #expect(a.statistics().bytesZeroed == 4096, "only the one dirty page is cleared")
        #expect(a.statistics().bytesKnownZero == 15 * 4096)
        #expect(Cookie.isZero(UnsafeRawBufferPointer(a.bytes(of: all))))
        try a.free(all)
        #expect(a.knownZeroFreePages() == 0)
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test("zeroing clears exactly the pages asked for; slack is never cleared")
    func exactPagesOnly() throws {
        let a = try makeAllocator(pages: 16, maxOrder: 4, trim: 0, perCPU: false)
        try dirtyEverything(a)
        let r = try a.allocateExact(bytes: 5000)  // 2 pages, no excess
        let b = UnsafeRawBufferPointer(a.bytes(of: r))
        #expect(b.count == 8192)
        #expect(Cookie.isZero(b), "the tail of the last page is cleared too: no stale bytes")
        let next = UnsafeRawBufferPointer(start: a.address(of: PageFrameNumber(r.start.rawValue + 2)), count: 4096)
        // What a freed page holds: the last owner's bytes, or the freed-run poison in
        // checked builds.
        let stale: UInt8 = ConsistencyChecks.internalChecksEnabled ? ConsistencyChecks.freedPoison : 0xCC
        #expect(Cookie.isFilled(next, with: stale), "the page after the run is left alone")
        #expect(a.statistics().bytesZeroed == 8192)
        let r3 = try a.allocateExact(bytes: 3 * 4096)  // 3 pages + 1 slack (nr_trim_pages = 0)
        #expect(r3.keptPages == 4)
        let slack = UnsafeRawBufferPointer(start: a.address(of: PageFrameNumber(r3.start.rawValue + 3)), count: 4096)
        #expect(Cookie.isFilled(slack, with: stale), "the slack page is not cleared")
        #expect(a.statistics().bytesZeroed == 8192 + 3 * 4096)
        #expect(a.statistics().slackPages == 1)
        try a.free(r)
        try a.free(r3)
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test("uninitialised memory is not cleared (and is poisoned in checked builds)")
    func uninitializedIsLeftAlone() throws {
        let a = try makeAllocator(pages: 16, maxOrder: 4, perCPU: false)
        try dirtyEverything(a, pattern: 0x3C)
        let r = try a.allocateExact(bytes: 8 * 4096, .uninitialized)
        let expected: UInt8 = ConsistencyChecks.internalChecksEnabled ? ConsistencyChecks.uninitializedPoison : 0x3C
        #expect(Cookie.isFilled(UnsafeRawBufferPointer(a.bytes(of: r)), with: expected))
        #expect(a.statistics().bytesUninitialized == Int64(16 * 4096 + 8 * 4096))
        #expect(a.statistics().bytesZeroed == 0)
        let start = r.start
        try a.free(r)
        if ConsistencyChecks.internalChecksEnabled {
            let freed = UnsafeRawBufferPointer(start: a.address(of: start), count: 8 * 4096)
            #expect(Cookie.isFilled(freed, with: ConsistencyChecks.freedPoison))
        }
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test("no byte written by a previous owner is visible in memory handed out zeroed", arguments: [false, true])
    func previousOwnersNeverShow(perCPU: Bool) throws {
        var rng = SeededRandom(seed: SeededRandom.seed(default: 0xC0FFEE))
        let a = try makeAllocator(pages: 128, maxOrder: 7, perCPU: perCPU)
        var live: [PageRun] = []
        for step in 0..<4000 {
            if live.count > 6 || (rng.next() % 3 == 0 && !live.isEmpty) {
                let r = live.remove(at: Int(rng.next() % UInt64(live.count)))
                try a.free(r)
                continue
            }
            let zeroed = rng.next() % 2 == 0
            let r: PageRun
            do {
                r =
                    rng.next() % 2 == 0
                    ? try a.allocate(order: Order(Int(rng.next() % 5)), zeroed ? .zeroed : .uninitialized)
                    : try a.allocateExact(bytes: Int(rng.next() % (40 * 4096)) + 1, zeroed ? .zeroed : .uninitialized)
            } catch {
                continue
            }
            let b = a.bytes(of: r)
            if zeroed {
                #expect(Cookie.isZero(UnsafeRawBufferPointer(b)), "step \(step): \(r) not zero")
            }
            b.initializeMemory(as: UInt8.self, repeating: 0xAB)  // the owner's secret
            live.append(r)
        }
        for r in live { try a.free(r) }
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test("with posix_memalign nothing is assumed zero")
    func notKnownZeroBacking() throws {
        let a = try makeAllocator(pages: 32, maxOrder: 5, backing: .posixMemalign)
        #expect(a.knownZeroFreePages() == 0)
        let r = try a.allocate(order: Order(5))
        #expect(Cookie.isZero(UnsafeRawBufferPointer(a.bytes(of: r))))
        #expect(a.statistics().bytesZeroed == 32 * 4096)
        try a.free(r)
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test("pages recorded zero really are zero after a mixed workload")
    func recordedZeroIsTrue() throws {
        let a = try makeAllocator(pages: 1024, maxOrder: 10)
        var rng = SeededRandom(seed: 42)
        var live: [PageRun] = []
        for _ in 0..<1000 {
            if live.count > 24 || (rng.next() % 2 == 0 && !live.isEmpty) {
                try a.free(live.remove(at: Int(rng.next() % UInt64(live.count))))
            } else if let r = try? a.allocateExact(bytes: Int(rng.next() % (8 * 4096)) + 1, .uninitialized) {
                a.bytes(of: r)[0] = 9
                live.append(r)
            }
        }
        #expect(a.knownZeroViolation() == nil)
        #expect(a.knownZeroFreePages() > 0)
        for r in live { try a.free(r) }
        #expect(a.knownZeroViolation() == nil)
        #expect(allPagesBackViolation(a) == nil)
    }
}
