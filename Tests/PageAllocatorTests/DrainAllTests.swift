// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuHost
import NommuTestSupport
import PageAllocator
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Runs `idle` threads that each leave pages on their per-CPU lists and then wait, and
/// `body` on one more thread while they wait; returns what `body` returns.
private func withIdleThreadsHoldingPages<R: Sendable>(
    _ a: PageAllocator, idle: Int, order: Int, _ body: @escaping @Sendable () -> R
) -> R {
    let ready = Atomic<Int>(0)
    let done = Atomic<Bool>(false)
    let result = HostMutex<R?>(nil)
    runOnThreads(idle + 1) { t in
        if t == 0 {
            while ready.load(ordering: .acquiring) < idle { usleep(100) }
            result.withLock { $0 = body() }
            done.store(true, ordering: .releasing)
            return
        }
        // Blocks freed by this thread stay on its lists (under the high mark) while it sleeps.
        // order -1: a 3-page exact run (order 2), its trimmed page and then its own pages.
        if order < 0 {
            let r = try! a.allocateExact(bytes: 3 * 4096, .uninitialized)
            try! a.free(r)
        } else {
            let runs = (0..<3).map { _ in try! a.allocate(order: Order(order), .uninitialized) }
            for r in runs { try! a.free(r) }
        }
        ready.add(1, ordering: .releasing)
        while !done.load(ordering: .acquiring) { usleep(100) }
    }
    return result.withLock { $0! }
}

@Suite("Page allocator: every thread's per-CPU lists before ENOMEM")
struct DrainAllTests {
    @Test(
        "a 4 MiB run fits in a 4 MiB arena whose free pages sit on idle threads' lists",
        arguments: [0, 2, -1])
    func idleListsAreDrained(order: Int) throws {
        let a = try makeAllocator(pages: 1024, maxOrder: 10)
        let (before, got, after) = withIdleThreadsHoldingPages(a, idle: 3, order: order) {
            let before = a.statistics()
            let run = try? a.allocateExact(bytes: 4 << 20, .uninitialized)
            let after = a.statistics()
            if let run { try! a.free(run) }
            return (before, run?.pages, after)
        }
        // The idle threads held pages, and MemFree (freePages) did not count them.
        #expect(before.perCPUPages >= 3)
        #expect(before.freePages == 1024 - before.perCPUPages)
        #expect(before.availablePages == 1024)
        #expect(got == 1024)
        #expect(after.perCPUPages == 0)
        #expect(after.failedAllocations == before.failedAllocations)
        #expect(allPagesBackViolation(a) == nil)
    }

    @Test("ENOMEM exactly when no run fits anywhere: one page really held, idle lists drained for nothing")
    func enomemWhenNothingFits() throws {
        let a = try makeAllocator(pages: 1024, maxOrder: 10)
        let held = try a.allocate(order: Order(0), .uninitialized)
        let (error, before, after) = withIdleThreadsHoldingPages(a, idle: 2, order: 0) {
            let before = a.statistics()
            var error: Errno? = nil
            do throws(Errno) { _ = try a.allocate(order: Order(10), .uninitialized) } catch let e { error = e }
            // Order 9 fits (the half without the held page) once the lists are drained.
            let half = try? a.allocate(order: Order(9), .uninitialized)
            if let half { try! a.free(half) }
            return (error, before, a.statistics())
        }
        #expect(error == .noMemory)
        #expect(before.availablePages == 1023)
        #expect(after.availablePages == 1023)
        #expect(after.allocatedPages == 1)
        try a.free(held)
        #expect(allPagesBackViolation(a) == nil)
    }
}
