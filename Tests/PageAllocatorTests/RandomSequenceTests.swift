// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuTestSupport
import PageAllocator
import Testing

/// Seeded random operation sequences checked against the naive reference after every step.
@Suite("Page allocator: random sequences against the reference")
struct RandomSequenceTests {
    struct Live {
        let run: PageRun
        let owner: UInt64
    }

    static let cases: [(seed: UInt64, pages: Int, maxOrder: Int, perCPU: Bool)] = [
        (0x5EED_0001, 64, 5, true),
        (0x5EED_0002, 64, 5, false),
        (0x5EED_0003, 200, 7, true),
    ]

    @Test("10^5 operations, invariants after each", arguments: 0..<cases.count)
    func randomOperations(_ index: Int) throws {
        let c = Self.cases[index]
        let seed = SeededRandom.seed(default: c.seed)
        let steps = ProcessEnvironment.int("NOMMU_RANDOM_STEPS", default: 100_000)
        var rng = SeededRandom(seed: seed)
        let a = try makeAllocator(pages: c.pages, maxOrder: c.maxOrder, trim: 1, perCPU: c.perCPU)
        var ref = ReferenceBuddy(totalPages: c.pages, maxOrder: c.maxOrder)
        var live: [Live] = []
        var freed: [PageRun] = []
        var owner: UInt64 = 1
        var trim = 1
        func fail(_ step: Int, _ what: String) -> Comment {
            "seed \(seed) step \(step): \(what) (replay with NOMMU_SEED=\(seed))"
        }
        for step in 0..<steps {
            let op = rng.next() % 100
            if op < 35 {
                // allocate(order:)
                let order = Int(rng.next() % UInt64(c.maxOrder + 2)) >> (rng.next() % 2 == 0 ? 1 : 0)
                let zeroed = rng.next() % 2 == 0
                let expected = ref.canAllocate(order: order)
                do {
                    let r = try a.allocate(order: Order(order), zeroed ? .zeroed : .uninitialized)
                    guard expected else {
                        Issue.record(fail(step, "order \(order) succeeded, reference said no")); return
                    }
                    guard r.start.rawValue % (1 << order) == 0, ref.isFree(r.start.rawValue, pages: r.pages) else {
                        Issue.record(fail(step, "\(r) is misaligned or overlaps a live run")); return
                    }
                    if zeroed && !Cookie.isZero(UnsafeRawBufferPointer(a.bytes(of: r))) {
                        Issue.record(fail(step, "\(r) handed out zeroed is not zero")); return
                    }
                    ref.take(r.start.rawValue, pages: r.keptPages)
                    Cookie.fill(a.bytes(of: r), owner: owner)
                    live.append(Live(run: r, owner: owner))
                    owner += 1
                } catch {
                    guard error == .noMemory, !expected else {
                        Issue.record(fail(step, "order \(order) failed with \(error), reference said \(expected)"));
                        return
                    }
                }
            } else if op < 60 {
                // allocateExact
                let bytes = Int(rng.next() % UInt64((1 << c.maxOrder) * 4096 + 4096)) + 1
                let n = (bytes + 4095) / 4096
                let order = Order.covering(pages: n).rawValue
                let expected = ref.canAllocate(order: order)
                let zeroed = rng.next() % 2 == 0
                do {
                    let r = try a.allocateExact(bytes: bytes, zeroed ? .zeroed : .uninitialized)
                    guard expected else {
                        Issue.record(fail(step, "exact \(bytes) succeeded, reference said no")); return
                    }
                    let excess = (1 << order) - n
                    let kept = trim != 0 && excess >= trim ? n : 1 << order
                    guard r.pages == n, r.keptPages == kept, r.start.rawValue % (1 << order) == 0,
                        ref.isFree(r.start.rawValue, pages: kept)
                    else { Issue.record(fail(step, "exact \(bytes): got \(r), expected \(kept) kept")); return }
                    if zeroed {
                        guard Cookie.isZero(UnsafeRawBufferPointer(a.bytes(of: r))) else {
                            Issue.record(fail(step, "exact \(r) handed out zeroed is not zero")); return
                        }
                    }
                    ref.take(r.start.rawValue, pages: kept)
                    Cookie.fill(a.bytes(of: r), owner: owner)
                    live.append(Live(run: r, owner: owner))
                    owner += 1
                } catch {
                    guard error == .noMemory, !expected else {
                        Issue.record(fail(step, "exact \(bytes) failed with \(error), reference said \(expected)"));
                        return
                    }
                }
            } else if op < 92 {
                guard !live.isEmpty else { continue }
                let i = Int(rng.next() % UInt64(live.count))
                live.swapAt(i, live.count - 1)
                let l = live.removeLast()
                guard Cookie.check(a.bytes(of: l.run), owner: l.owner) else {
                    Issue.record(fail(step, "\(l.run) was written by someone else")); return
                }
                try a.free(l.run)
                ref.give(l.run.start.rawValue, pages: l.run.keptPages)
                freed.append(l.run)
                if freed.count > 8 { freed.removeFirst() }
            } else if op < 97 {
                // A double free, or a free of something that is not a run head: refused.
                guard let r = freed.randomElement(using: &rng) else { continue }
                let reused = live.contains {
                    $0.run.start == r.start && $0.run.isExact == r.isExact
                        && $0.run.pages == r.pages && $0.run.order == r.order
                }
                guard !reused else { continue }
                let before = a.statistics()
                do {
                    try a.free(r)
                    Issue.record(fail(step, "double free of \(r) accepted")); return
                } catch {
                    #expect(error == .invalidArgument)
                }
                let after = a.statistics()
                guard before.freeBlocks == after.freeBlocks, before.allocatedPages == after.allocatedPages,
                    before.perCPUPages == after.perCPUPages
                else { Issue.record(fail(step, "a refused free changed the allocator")); return }
            } else {
                trim = Int(rng.next() % 4)
                try a.setNrTrimPages(trim)
            }
            if let v = a.invariantViolation() { Issue.record(fail(step, v)); return }
            let s = a.statistics()
            guard s.allocatedPages == ref.usedCount else {
                Issue.record(
                    fail(step, "allocator says \(s.allocatedPages) pages allocated, reference \(ref.usedCount)"));
                return
            }
        }
        for l in live {
            #expect(Cookie.check(a.bytes(of: l.run), owner: l.owner))
            try a.free(l.run)
        }
        #expect(allPagesBackViolation(a) == nil, "seed \(seed)")
    }
}
