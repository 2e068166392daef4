// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuTestSupport
import PageAllocator
import Testing

/// Every arena of 1…16 pages, every maximum order 0…4, every requested order, with and
/// without per-CPU lists.
@Suite("Page allocator: every small world")
struct SmallWorldTests {
    static let worlds: [(Int, Int)] = (1...16).flatMap { pages in (0...4).map { (pages, $0) } }

    @Test(
        "fill with one order until ENOMEM, exactly when the reference says, then free in three orders",
        arguments: [false, true])
    func fillAndDrain(perCPU: Bool) throws {
        for (pages, maxOrder) in Self.worlds {
            let a = try makeAllocator(pages: pages, maxOrder: maxOrder, perCPU: perCPU)
            for order in 0...(maxOrder + 1) {
                for freeOrder in 0..<3 {
                    var ref = ReferenceBuddy(totalPages: pages, maxOrder: maxOrder)
                    var runs: [PageRun] = []
                    while true {
                        let expected = ref.canAllocate(order: order)
                        do {
                            let r = try a.allocate(order: Order(order), .uninitialized)
                            #expect(
                                expected, "world \(pages)p/max \(maxOrder): order \(order) succeeded, reference said no"
                            )
                            #expect(r.start.rawValue % (1 << order) == 0)
                            #expect(ref.isFree(r.start.rawValue, pages: 1 << order))
                            ref.take(r.start.rawValue, pages: 1 << order)
                            runs.append(r)
                        } catch {
                            #expect(error == .noMemory)
                            #expect(
                                !expected, "world \(pages)p/max \(maxOrder): order \(order) failed, reference said yes")
                            break
                        }
                        #expect(a.invariantViolation() == nil)
                    }
                    switch freeOrder {
                    case 0: break
                    case 1: runs.reverse()
                    default: runs.sort { ($0.start.rawValue * 7919) % 17 < ($1.start.rawValue * 7919) % 17 }
                    }
                    for r in runs {
                        try a.free(r)
                        #expect(a.invariantViolation() == nil)
                    }
                    let v = allPagesBackViolation(a)
                    #expect(v == nil, "world \(pages)p/max \(maxOrder) order \(order): \(v ?? "")")
                }
            }
        }
    }

    @Test("every sequence of three orders, freed in every permutation", arguments: [false, true])
    func threeAllocationsEveryPermutation(perCPU: Bool) throws {
        let perms = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]
        for (pages, maxOrder) in Self.worlds where pages % 3 != 2 {
            let a = try makeAllocator(pages: pages, maxOrder: maxOrder, perCPU: perCPU)
            let orders = 0...min(maxOrder + 1, 3)
            for o1 in orders {
                for o2 in orders {
                    for o3 in orders {
                        for perm in perms {
                            var ref = ReferenceBuddy(totalPages: pages, maxOrder: maxOrder)
                            var runs: [PageRun?] = []
                            for o in [o1, o2, o3] {
                                let expected = ref.canAllocate(order: o)
                                let r = try? a.allocate(order: Order(o), .uninitialized)
                                #expect(
                                    (r != nil) == expected, "world \(pages)p/max \(maxOrder) orders \(o1),\(o2),\(o3)")
                                if let r { ref.take(r.start.rawValue, pages: r.pages) }
                                runs.append(r)
                            }
                            for i in perm { if let r = runs[i] { try a.free(r) } }
                            let v = allPagesBackViolation(a)
                            #expect(
                                v == nil,
                                "world \(pages)p/max \(maxOrder) orders \(o1),\(o2),\(o3) perm \(perm): \(v ?? "")")
                        }
                    }
                }
            }
        }
    }

    @Test("every exact length in every world, with every trim setting")
    func exactEverywhere() throws {
        for (pages, maxOrder) in Self.worlds {
            let a = try makeAllocator(pages: pages, maxOrder: maxOrder, perCPU: false)
            for trim in 0...3 {
                try a.setNrTrimPages(trim)
                for n in 1...17 {
                    let order = Order.covering(pages: n).rawValue
                    let ref = ReferenceBuddy(totalPages: pages, maxOrder: maxOrder)
                    let expected = ref.canAllocate(order: order)
                    do {
                        let r = try a.allocateExact(bytes: n * 4096)
                        #expect(expected)
                        let excess = (1 << order) - n
                        let kept = trim != 0 && excess >= trim ? n : 1 << order
                        #expect(r.keptPages == kept && r.pages == n)
                        #expect(a.statistics().allocatedPages == kept)
                        #expect(a.invariantViolation() == nil)
                        try a.free(r)
                    } catch {
                        #expect(error == .noMemory && !expected, "world \(pages)p/max \(maxOrder) n \(n)")
                    }
                    #expect(allPagesBackViolation(a) == nil)
                }
            }
        }
    }
}
