// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuHost
import NommuTestSupport
import PageAllocator
import Testing

@Suite("Page allocator: threads")
struct ConcurrencyTests {
    /// test-stress style: 8 threads allocate, write cookies, check them, free. Knobs:
    /// NOMMU_STRESS_THREADS, NOMMU_STRESS_OPS.
    @Test("8 threads: cookies intact, zeroed runs zero, every page back", arguments: [true, false])
    func stress(perCPU: Bool) throws {
        let threads = ProcessEnvironment.int("NOMMU_STRESS_THREADS", default: 8)
        let ops = ProcessEnvironment.int("NOMMU_STRESS_OPS", default: 20_000)
        let a = try makeAllocator(pages: 2048, maxOrder: 8, perCPU: perCPU)
        let problems = HostMutex<[String]>([])
        runOnThreads(threads) { t in
            var rng = SeededRandom(seed: 1000 + UInt64(t))
            var live: [(PageRun, UInt64)] = []
            var owner = UInt64(t) << 40
            for step in 0..<ops {
                if live.count > 12 || (rng.next() % 2 == 0 && !live.isEmpty) {
                    let (r, o) = live.remove(at: Int(rng.next() % UInt64(live.count)))
                    if !Cookie.check(a.bytes(of: r), owner: o) {
                        problems.withLock { $0.append("thread \(t) step \(step): \(r) overwritten") }
                    }
                    do { try a.free(r) } catch { problems.withLock { $0.append("free \(r): \(error)") } }
                    continue
                }
                let zeroed = rng.next() % 4 == 0
                let r: PageRun
                do throws(Errno) {
                    r =
                        rng.next() % 3 == 0
                        ? try a.allocateExact(
                            bytes: Int(rng.next() % (16 * 4096)) + 1, zeroed ? .zeroed : .uninitialized)
                        : try a.allocate(order: Order(Int(rng.next() % 4)), zeroed ? .zeroed : .uninitialized)
                } catch {
                    if error != .noMemory { problems.withLock { $0.append("allocate: \(error)") } }
                    continue
                }
                if zeroed && !Cookie.isZero(UnsafeRawBufferPointer(a.bytes(of: r))) {
                    problems.withLock { $0.append("thread \(t) step \(step): zeroed \(r) not zero") }
                }
                owner += 1
                Cookie.fill(a.bytes(of: r), owner: owner)
                live.append((r, owner))
            }
            for (r, o) in live {
                if !Cookie.check(a.bytes(of: r), owner: o) {
                    problems.withLock { $0.append("\(r) overwritten at end") }
                }
                try? a.free(r)
            }
        }
        #expect(problems.withLock { $0 } == [])
        // The threads have exited: their per-CPU lists went back with them.
        #expect(a.statistics().perCPUPages == 0)
        #expect(allPagesBackViolation(a) == nil)
        #expect(a.statistics().allocations == a.statistics().frees)
    }

    @Test("a thread's per-CPU lists go back when it exits")
    func exitReturnsLists() throws {
        let a = try makeAllocator(pages: 1024, maxOrder: 10)
        runOnThreads(1) { _ in
            var runs: [PageRun] = []
            for _ in 0..<20 { runs.append(try! a.allocate(order: Order(0))) }
            for r in runs { try! a.free(r) }
            precondition(a.statistics().perCPUPages > 0)
        }
        #expect(a.statistics().perCPUPages == 0)
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test("runs move between threads: allocated on one, freed on another")
    func crossThreadFree() throws {
        let a = try makeAllocator(pages: 256, maxOrder: 8)
        let handoff = HostMutex<[PageRun]>([])
        runOnThreads(1) { _ in
            let runs = (0..<50).map { _ in try! a.allocate(order: Order(Int.random(in: 0...2))) }
            handoff.withLock { $0 = runs }
        }
        runOnThreads(1) { _ in
            for r in handoff.withLock({ $0 }) { try! a.free(r) }
        }
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test("a thread that used more allocators than it has slots hands the oldest lists back")
    func slotEviction() throws {
        let allocators = try (0..<6).map { _ in try makeAllocator(pages: 512, maxOrder: 9) }
        let holding = HostMutex<[Int]>([])
        runOnThreads(1) { _ in
            for a in allocators {
                let r = try! a.allocate(order: Order(0))
                try! a.free(r)
            }
            // Four slots: the first two allocators' lists were handed back on eviction.
            holding.withLock { $0 = allocators.map { $0.statistics().perCPUPages } }
        }
        let h = holding.withLock { $0 }
        #expect(h[0] == 0 && h[1] == 0)
        #expect(h[2...].allSatisfy { $0 > 0 })
        for a in allocators { #expect(allPagesBackViolation(a) == nil) }
    }

    @Test("an allocator released while other threads still hold slots for it")
    func releasedAllocatorWithLiveSlots() throws {
        let ready = HostMutex<Int>(0)
        let proceed = HostMutex<Bool>(false)
        do {
            let a = try makeAllocator(pages: 256, maxOrder: 8)
            let box = HostMutex<PageAllocator?>(a)
            runOnThreads(2) { _ in
                if let a = box.withLock({ $0 }) {
                    let r = try! a.allocate(order: Order(0))
                    try! a.free(r)
                }
                ready.withLock { $0 += 1 }
                // Keep the thread (and its slot) alive until the allocator is gone.
                while ready.withLock({ $0 }) < 2 || !proceed.withLock({ $0 }) {
                    if ready.withLock({ $0 }) == 2 { box.withLock { $0 = nil }; proceed.withLock { $0 = true } }
                }
            }
        }
        // Reaching here without a crash is the test: the exit hooks skipped a dead allocator.
        #expect(ready.withLock { $0 } == 2)
        let b = try makeAllocator(pages: 64, maxOrder: 6)
        #expect(allPagesBackViolation(b) == nil)
    }
}
