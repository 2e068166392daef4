// SPDX-License-Identifier: Apache-2.0
//
// The malloc lab's hot paths, gated on `mallocCountTotal`: `nommu run` serves a program's
// heap from these paths inside the program, so they must not call the host's malloc (the
// Swift runtime's allocations would land in the preload library's bootstrap area). Their
// thresholds are 0. Wall clock is shown, never gated. Warm-up calls make the heap's first
// area, the process's mapping list and the allocator's lists before anything is measured.

import Benchmark
import NommuBase
import NommuMM
import NommuMalloc

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 2,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 5_000,
        thresholds: [.mallocCountTotal: .strict, .wallClock: .none]
    )

    /// A malloc on a fresh system, warmed: one block of `size` made and freed first.
    func warmed(_ policy: Malloc.Policy, _ size: Int) throws -> Malloc {
        let system = try System(.init(arenaBytes: 64 << 20))
        let m = try Malloc(process: system.createProcess(), .init(policy: policy))
        for _ in 0..<64 { try m.free(try m.malloc(size)) }
        return m
    }

    /// One malloc of `size` bytes and its free per iteration, on a warmed malloc.
    func mallocFree(_ name: String, _ policy: Malloc.Policy, _ size: Int) {
        Benchmark(
            name,
            closure: { benchmark, m in
                for _ in benchmark.scaledIterations {
                    let p = try m.malloc(size)
                    blackHole(p)
                    try m.free(p)
                }
            },
            setup: { try warmed(policy, size) }
        )
    }

    // heap: a 64-byte block from the bins and back (the common case of a program's malloc).
    mallocFree("Malloc.heap.mallocFree64", .heap, 64)
    // heap: a block above the mmap threshold: its own nommu mmap and munmap each time.
    mallocFree("Malloc.heap.mallocFree256KiB.mapped", .heap, 256 << 10)
    // simple: every block is a nommu mmap + munmap.
    mallocFree("Malloc.simple.mallocFree64", .simple, 64)
}
