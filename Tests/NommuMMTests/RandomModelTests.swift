// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuMM
import NommuTestSupport
import PageAllocator
import Testing

/// The reference: per process, a sorted list of intervals, each remembering its region's
/// [start, end, top); and one page-owner map for the whole arena. It applies the trim rule,
/// `do_munmap`'s cuts and `do_mremap`'s in-place resize directly to those lists.
private struct RefSpace {
    struct M: Equatable {
        var start: UInt, end: UInt, rStart: UInt, rEnd: UInt, rTop: UInt
    }
    var maps: [M] = []
}

@Suite("Address space: random sequences against the reference")
struct RandomModelTests {
    @Test("mmap / munmap / mremap across processes, invariants after every step", arguments: [UInt64(11), 12, 13])
    func random(seed0: UInt64) throws {
        let seed = SeededRandom.seed(default: seed0)
        var rng = SeededRandom(seed: seed)
        let steps = ProcessEnvironment.int("NOMMU_RANDOM_STEPS", default: 100_000) / 10
        let s = try makeSystem(pages: 512, maxOrder: 6, trim: 1)
        var procs = (0..<3).map { _ in s.createProcess() }
        var ref = procs.map { _ in RefSpace() }
        func fail(_ step: Int, _ what: String) -> Comment { "seed \(seed) step \(step): \(what) (NOMMU_SEED=\(seed))" }

        for step in 0..<steps {
            let pi = Int(rng.next() % UInt64(procs.count))
            let p = procs[pi]
            let op = rng.next() % 10
            if op < 4 {
                // mmap
                let len = UInt(rng.next() % UInt64(20 * page)) + 1
                if rng.next() % 8 == 0 { try s.setNrTrimPages(Int(rng.next() % 4)) }
                let trim = s.nrTrimPages
                do {
                    let a = try p.mmap(length: len, protection: rw, flags: anon)
                    let pages = (len + page - 1) / page
                    let order = Order.covering(pages: Int(pages)).rawValue
                    let excess = (1 << order) - Int(pages)
                    let kept = UInt(trim != 0 && excess >= trim ? Int(pages) : 1 << order)
                    let new = RefSpace.M(
                        start: a.u, end: a.u + pages * page, rStart: a.u, rEnd: a.u + pages * page,
                        rTop: a.u + kept * page)
                    // No overlap with any region of any process.
                    for r in ref {
                        for m in r.maps where m.rStart < new.rTop && new.rStart < m.rTop {
                            Issue.record(fail(step, "new mapping \(new) overlaps \(m)")); return
                        }
                    }
                    ref[pi].maps.append(new)
                    ref[pi].maps.sort { $0.start < $1.start }
                } catch {
                    let order = Order.covering(pages: Int((len + page - 1) / page)).rawValue
                    guard error == .noMemory, (s.allocator.statistics().largestFreeOrder ?? -1) < order else {
                        Issue.record(fail(step, "mmap \(len) failed with \(error)")); return
                    }
                }
            } else if op < 8 {
                // munmap: a whole mapping, a front/back/middle cut, or a bad range.
                guard let m = ref[pi].maps.randomElement(using: &rng) else { continue }
                let npages = (m.end - m.start) / page
                let from = UInt(rng.next() % UInt64(npages))
                let count = UInt(rng.next() % UInt64(npages - from + 1)) + (rng.next() % 5 == 0 ? 1 : 0)
                let start = m.start + from * page
                let len = count * page
                let expectOK = len != 0 && start + len <= m.end
                do {
                    try p.munmap(address: start, length: len)
                    guard expectOK else { Issue.record(fail(step, "munmap \(start)+\(len) accepted")); return }
                    let i = ref[pi].maps.firstIndex(of: m)!
                    let end = start + len
                    if start == m.start && end == m.end {
                        ref[pi].maps.remove(at: i)
                    } else if start == m.start {
                        ref[pi].maps[i].start = end
                        ref[pi].maps[i].rStart = end
                    } else if end == m.end {
                        ref[pi].maps[i].end = start
                        ref[pi].maps[i].rEnd = start
                        ref[pi].maps[i].rTop = start
                    } else {
                        let lower = RefSpace.M(start: m.start, end: start, rStart: m.rStart, rEnd: start, rTop: start)
                        ref[pi].maps[i].start = end
                        ref[pi].maps[i].rStart = end
                        ref[pi].maps.insert(lower, at: i)
                    }
                } catch {
                    guard !expectOK, error == .invalidArgument else {
                        Issue.record(fail(step, "munmap \(start)+\(len) of \(m) failed with \(error)")); return
                    }
                }
            } else if op < 9 {
                // mremap: shrink or grow within [rStart, rEnd).
                guard let m = ref[pi].maps.randomElement(using: &rng) else { continue }
                let newLen = UInt(rng.next() % UInt64((m.rEnd - m.start) / page + 2)) * page
                // Anonymous regions start where their mapping does; the limit is the region's length.
                let expectOK = newLen != 0 && newLen <= m.rEnd - m.rStart
                do {
                    let a = try p.mremap(address: m.start, oldLength: m.end - m.start, newLength: newLen)
                    guard a.u == m.start, expectOK else {
                        Issue.record(fail(step, "mremap to \(newLen) of \(m) accepted")); return
                    }
                    let i = ref[pi].maps.firstIndex(of: m)!
                    ref[pi].maps[i].end = m.start + newLen
                } catch {
                    guard newLen == 0 && error == .invalidArgument || newLen > m.rEnd - m.rStart && error == .noMemory
                    else {
                        Issue.record(
                            fail(step, "mremap to \(newLen) of \(m) failed with \(error) (expected ok: \(expectOK))"))
                        return
                    }
                }
            } else {
                // A process exits and a new one starts.
                p.exit()
                procs[pi] = s.createProcess()
                ref[pi] = RefSpace()
            }
            // Compare every process with the reference, then the invariants.
            for (i, q) in procs.enumerated() {
                let got = q.mappings.map {
                    RefSpace.M(
                        start: $0.start.u, end: $0.end.u, rStart: $0.regionStart.u, rEnd: $0.regionEnd.u,
                        rTop: $0.regionTop.u)
                }
                if got != ref[i].maps {
                    Issue.record(fail(step, "process \(i): \(got) vs reference \(ref[i].maps)")); return
                }
            }
            if let v = s.invariantViolation() { Issue.record(fail(step, v)); return }
            let pages = ref.flatMap(\.maps).reduce(0) { $0 + Int(($1.rTop - $1.rStart) / page) }
            if s.mmapPagesAllocated != pages {
                Issue.record(fail(step, "mmap_pages_allocated \(s.mmapPagesAllocated), reference \(pages)")); return
            }
        }
        #expect(everythingBackViolation(s, procs) == nil)
    }
}
