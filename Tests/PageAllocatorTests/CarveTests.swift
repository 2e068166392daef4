// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuTestSupport
import PageAllocator
import Testing

@Suite("Page allocator: releasing and splitting parts of exact runs")
struct CarveTests {
    @Test("front, back and middle cuts give back exactly those pages", arguments: [0, 1])
    func cuts(trim: Int) throws {
        let a = try makeAllocator(pages: 64, maxOrder: 6, trim: trim, perCPU: false)
        // 5 pages: kept 5 (trim 1) or 8 with 3 slack (trim 0).
        let r = try a.allocateExact(bytes: 5 * 4096)
        let kept = r.keptPages
        // Front: give back page 0.
        let (b0, a0) = try a.releasePages(of: r, offset: 0, count: 1)
        #expect(b0 == nil)
        let rest = try #require(a0)
        #expect(rest.start.rawValue == r.start.rawValue + 1 && rest.keptPages == kept - 1 && rest.slackPages == 0)
        #expect(a.statistics().allocatedPages == kept - 1)
        #expect(a.statistics().slackPages == 0)
        // The old run is gone: using it again is refused.
        #expect(throws: Errno.invalidArgument) { try a.free(r) }
        // Back: give back everything from page 2 of the rest (slack included).
        let (b1, a1) = try a.releasePages(of: rest, offset: 2, count: rest.keptPages - 2)
        #expect(a1 == nil)
        let two = try #require(b1)
        #expect(two.keptPages == 2 && a.statistics().allocatedPages == 2)
        try a.free(two)
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test func middleCutIsASplitThenAFrontCut() throws {
        let a = try makeAllocator(pages: 64, maxOrder: 6, perCPU: false)
        let r = try a.allocateExact(bytes: 7 * 4096)
        let (lower, upper) = try a.split(r, at: 3)
        #expect(lower.keptPages == 3 && upper.keptPages == 4 && upper.start.rawValue == r.start.rawValue + 3)
        #expect(a.statistics().allocatedPages == 7)
        let (_, rest) = try a.releasePages(of: upper, offset: 0, count: 1)
        #expect(a.statistics().allocatedPages == 6)
        try a.free(lower)
        try a.free(try #require(rest))
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test func releasingAllOfARunFreesIt() throws {
        let a = try makeAllocator(pages: 16, maxOrder: 4, perCPU: false)
        let r = try a.allocateExact(bytes: 3 * 4096)
        let (b, af) = try a.releasePages(of: r, offset: 0, count: r.keptPages)
        #expect(b == nil && af == nil)
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test("bad ranges and stale runs are EINVAL and change nothing")
    func refusals() throws {
        let a = try makeAllocator(pages: 16, maxOrder: 4, perCPU: false)
        let r = try a.allocateExact(bytes: 3 * 4096)
        let block = try a.allocate(order: Order(0))
        let before = a.statistics()
        #expect(throws: Errno.invalidArgument) { _ = try a.releasePages(of: r, offset: -1, count: 1) }
        #expect(throws: Errno.invalidArgument) { _ = try a.releasePages(of: r, offset: 0, count: 0) }
        #expect(throws: Errno.invalidArgument) { _ = try a.releasePages(of: r, offset: 2, count: 2) }
        #expect(throws: Errno.invalidArgument) { _ = try a.releasePages(of: block, offset: 0, count: 1) }
        #expect(throws: Errno.invalidArgument) { _ = try a.split(r, at: 0) }
        #expect(throws: Errno.invalidArgument) { _ = try a.split(r, at: 3) }
        #expect(throws: Errno.invalidArgument) { _ = try a.split(block, at: 1) }
        let fake = PageRun(start: r.start, pages: 2, order: Order(1), keptPages: 2, isExact: true)
        #expect(throws: Errno.invalidArgument) { _ = try a.split(fake, at: 1) }
        #expect(a.statistics() == before)
        try a.free(r)
        try a.free(block)
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test("random cuts against the reference", arguments: [UInt64(7), 8, 9])
    func randomCuts(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let a = try makeAllocator(pages: 256, maxOrder: 8, trim: 0, perCPU: false)
        var ref = ReferenceBuddy(totalPages: 256, maxOrder: 8)
        var live: [PageRun] = []
        for step in 0..<3000 {
            let op = rng.next() % 4
            if op == 0 || live.isEmpty {
                if let r = try? a.allocateExact(bytes: Int(rng.next() % (20 * 4096)) + 1) {
                    #expect(ref.isFree(r.start.rawValue, pages: r.keptPages), "seed \(seed) step \(step)")
                    ref.take(r.start.rawValue, pages: r.keptPages)
                    live.append(r)
                }
            } else {
                let i = Int(rng.next() % UInt64(live.count))
                let r = live.remove(at: i)
                if op == 1 && r.keptPages > 1 {
                    let (l, u) = try a.split(r, at: 1 + Int(rng.next() % UInt64(r.keptPages - 1)))
                    live += [l, u]
                } else {
                    let off = Int(rng.next() % UInt64(r.keptPages))
                    let count = 1 + Int(rng.next() % UInt64(r.keptPages - off))
                    let (b, af) = try a.releasePages(of: r, offset: off, count: count)
                    ref.give(r.start.rawValue + off, pages: count)
                    live += [b, af].compactMap { $0 }
                }
            }
            let v = a.invariantViolation()
            #expect(v == nil, "seed \(seed) step \(step): \(v ?? "")")
            if v != nil { return }
            #expect(a.statistics().allocatedPages == ref.usedCount)
        }
        for r in live { try a.free(r) }
        #expect(allPagesBackViolation(a) == nil)
    }
}
