// SPDX-License-Identifier: Apache-2.0
//
// Benchmarks of the buddy page allocator's hot paths, each beside the host operation it
// stands in for (glibc `posix_memalign`, a plain `memset`).
//
// What is gated: `mallocCountTotal`, which is deterministic. The allocator's hot paths
// must not call the system malloc at all, so their checked-in threshold is 0; the glibc
// baseline's is exactly one malloc per operation. Wall clock is reported, never gated
// (this machine is shared and noisy). See ../../README.md.
//
// Names use no spaces or slashes: package-benchmark 1.38.1 writes threshold files with
// those replaced by `_` but looks them up by the raw name (ordo-one/benchmark#301, #373).
//
// Set-up (making an allocator, warming its lists, faulting pages in) is done in each
// benchmark's `setup` closure or before `startMeasurement()`, never inside the measured
// region. Every result goes to `blackHole`.

import Benchmark
import Glibc
import NommuHost
import NommuBase
import PageAllocator

let benchmarks: @Sendable () -> Void = {
    // Time is shown but not gated anywhere (`.none`); malloc counts are gated exactly.
    let thresholds: [BenchmarkMetric: BenchmarkThresholds] = [
        .mallocCountTotal: .strict,
        .wallClock: .none,
    ]

    // No `.instructions` by default: it needs perf_event_open hardware counters, which
    // this project's machines lack (package-benchmark then records no samples and drops
    // the row), and asking for it makes package-benchmark read OS statistics inside the
    // measured region, which adds 16-18 mallocs per sample to `mallocCountTotal`. Where
    // counters exist, add it for one run with `--metric wallClock --metric instructions`.
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 2,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 5_000,
        thresholds: thresholds
    )

    /// One operation per sample: for the 1 MiB clears, and where each sample needs its own
    /// set-up before `startMeasurement()`.
    let perOperation = Benchmark.Configuration(
        scalingFactor: .one,
        maxIterations: 5_000
    )

    let oneMiB = 1 << 20

    // MARK: Order-0 pairs

    // allocate(order: 0) + free, served from the calling thread's per-CPU list (no lock,
    // no atomic read-modify-write). The warm-up iterations create this thread's lists and
    // fill them from the buddy lists; after that every pair stays on the list.
    Benchmark(
        "PageAllocator.order0.allocFree.perCPULists",
        closure: order0Pairs,
        setup: {
            try PageAllocator(.init(arenaBytes: 64 << 20, maxOrder: 10, perCPULists: true))
        }
    )

    // The worst case of the zone path: the arena is exactly one order-10 block (4 MiB of
    // 4 KiB pages) and per-CPU lists are off, so every allocation splits 10 times and
    // every free merges 10 times under the zone lock.
    Benchmark(
        "PageAllocator.order0.allocFree.splitMerge10Levels",
        closure: order0Pairs,
        setup: {
            let allocator = try PageAllocator(
                .init(arenaBytes: 4 << 20, pageSize: 4096, maxOrder: 10, perCPULists: false))
            precondition(allocator.statistics().freeBlocks == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
            return allocator
        }
    )

    // Baseline: one page from glibc, page-aligned, and back.
    Benchmark("Baseline.glibc.posixMemalign4096.free") { benchmark in
        for _ in benchmark.scaledIterations {
            var p: UnsafeMutableRawPointer?
            let rc = posix_memalign(&p, 4096, 4096)
            precondition(rc == 0)
            blackHole(p)
            Glibc.free(p)
        }
    }

    // MARK: 1 MiB exact runs (maxOrder 10, 8 MiB arena)

    /// The configuration shared by the 1 MiB benchmarks.
    let exactArena = PageAllocator.Configuration(arenaBytes: 8 << 20, pageSize: 4096, maxOrder: 10)

    // allocateExact of 256 pages (an order-8 block, nothing to trim) without clearing,
    // then free: the cost of the bookkeeping alone.
    Benchmark(
        "PageAllocator.allocateExact1MiB.uninitialized.free",
        closure: { (benchmark: Benchmark, allocator: PageAllocator) in
            for _ in benchmark.scaledIterations {
                let run = try allocator.allocateExact(bytes: oneMiB, .uninitialized)
                blackHole(run)
                try allocator.free(run)
            }
        },
        setup: {
            try PageAllocator(exactArena)
        }
    )

    // allocateExact zeroed on pages that are dirty (a previous owner wrote them): the
    // allocator must clear all 1 MiB. Set-up writes the block once, so the pages are
    // resident and marked dirty; each sample then gets the same block back, dirty again.
    Benchmark(
        "PageAllocator.allocateExact1MiB.zeroedDirty.free",
        configuration: perOperation,
        closure: { (benchmark: Benchmark, allocator: PageAllocator) in
            for _ in benchmark.scaledIterations {
                let run = try allocator.allocateExact(bytes: oneMiB, .zeroed)
                blackHole(allocator.bytes(of: run).baseAddress)
                try allocator.free(run)
            }
        },
        setup: {
            let allocator = try PageAllocator(exactArena)
            let run = try allocator.allocateExact(bytes: oneMiB, .uninitialized)
            let bytes = allocator.bytes(of: run)
            memset(bytes.baseAddress!, 0xAB, bytes.count)
            try allocator.free(run)
            return allocator
        }
    )

    // Baseline: what the dirty case must do anyway, a 1 MiB memset on a buffer that was
    // already written (resident, in the same state as the allocator's block above).
    Benchmark(
        "Baseline.memset1MiB.dirty",
        configuration: perOperation,
        closure: { (benchmark: Benchmark, buffer: DirtyBuffer) in
            for _ in benchmark.scaledIterations {
                memset(buffer.pointer, 0, buffer.count)
                blackHole(buffer.pointer)
            }
        },
        setup: {
            DirtyBuffer(count: oneMiB)
        }
    )

    // allocateExact zeroed from a fresh arena: the host gave it as zero (anonymous mmap)
    // and no page has been handed out yet, so the allocator knows the run is zero and
    // clears nothing. Each sample makes its own allocator outside the measured region,
    // measures the one allocation, then frees it and drops the allocator unmeasured.
    Benchmark(
        "PageAllocator.allocateExact1MiB.zeroedFresh",
        configuration: perOperation
    ) { benchmark in
        let allocator: PageAllocator
        do {
            allocator = try PageAllocator(exactArena)
        } catch {
            benchmark.error("PageAllocator(\(exactArena)) failed: \(error)")
            return
        }
        precondition(allocator.arenaWasZero, "mmap backing should give known-zero memory")
        withExtendedLifetime(allocator) {
            benchmark.startMeasurement()
            let run = try? allocator.allocateExact(bytes: oneMiB, .zeroed)
            benchmark.stopMeasurement()
            blackHole(run)
            guard let run else {
                benchmark.error("allocateExact(1 MiB, .zeroed) failed on a fresh allocator")
                return
            }
            do {
                try allocator.free(run)
            } catch {
                benchmark.error("free failed: \(error)")
            }
        }
    }

    // The floor of a one-operation sample: an explicit startMeasurement() and
    // stopMeasurement() around nothing (two clock reads plus the malloc counter reads).
    // Subtract it from `zeroedFresh` to compare that with the per-operation figures of
    // the benchmarks above, which amortise this over 1000 operations.
    Benchmark(
        "Baseline.measurementOverhead.oneOperationPerSample",
        configuration: perOperation
    ) { benchmark in
        benchmark.startMeasurement()
        benchmark.stopMeasurement()
    }
}

/// A page-aligned buffer written once at creation, so that its pages are resident and
/// dirty before any measurement.
final class DirtyBuffer: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let count: Int

    init(count: Int) {
        var p: UnsafeMutableRawPointer?
        let rc = posix_memalign(&p, 4096, count)
        precondition(rc == 0 && p != nil, "posix_memalign(4096, \(count)) failed: \(rc)")
        memset(p!, 0xAB, count)
        self.pointer = p!
        self.count = count
    }

    deinit {
        Glibc.free(pointer)
    }
}

/// `allocate(order: 0, .uninitialized)` + `free`, `scaledIterations` times.
@Sendable
private func order0Pairs(_ benchmark: Benchmark, _ allocator: PageAllocator) throws {
    for _ in benchmark.scaledIterations {
        let run = try allocator.allocate(order: Order(0), .uninitialized)
        blackHole(run)
        try allocator.free(run)
    }
}
