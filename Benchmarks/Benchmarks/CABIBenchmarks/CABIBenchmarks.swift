// SPDX-License-Identifier: Apache-2.0
//
// The C ABI's hot paths as a C program calls them (the functions of nommu.h), gated on
// `mallocCountTotal`: resolving a handle, the per-CPU page path, the owner-tag check, a
// malloc's thread cache and a nommu mmap never call the system malloc. Their thresholds are
// 0. Wall clock is shown, never gated. (package-benchmark's retain and release counts crash
// with Swift 6.3 on Linux, ordo-one/package-benchmark#349, so they are not collected here.)

import Benchmark
import CNommu

#if canImport(Glibc)
    import Glibc
#endif

/// A system and a process made through the C ABI (defaults, uninitialised mappings allowed).
final class CSystem: @unchecked Sendable {
    let system: OpaquePointer
    let process: OpaquePointer

    init() {
        var c = nommu_config()
        nommu_config_init(&c)
        c.allow_uninitialized = 1
        system = nommu_system_create(&c)!
        process = nommu_process_create(system)!
    }

    deinit {
        nommu_process_exit(process)
        nommu_system_destroy(system)
    }
}

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

    /// `nommu_malloc(p, size)` + `nommu_free`, warmed (the thread cache and the heap made).
    func mallocFree(_ name: String, _ size: Int) {
        Benchmark(
            name,
            closure: { (benchmark: Benchmark, c: CSystem) in
                for _ in benchmark.scaledIterations {
                    let q = nommu_malloc(c.process, size)
                    blackHole(q)
                    nommu_free(c.process, q)
                }
            },
            setup: {
                let c = CSystem()
                for _ in 0..<64 { nommu_free(c.process, nommu_malloc(c.process, size)) }
                return c
            }
        )
    }

    mallocFree("CABI.malloc64.free", 64)
    mallocFree("CABI.malloc4096.free", 4096)

    Benchmark(
        "CABI.allocPagesOrder0.freePages",
        closure: { (benchmark: Benchmark, c: CSystem) in
            for _ in benchmark.scaledIterations {
                let q = nommu_alloc_pages(c.system, 0, 0)
                blackHole(q)
                _ = nommu_free_pages(c.system, q, 0)
            }
        },
        setup: {
            let c = CSystem()
            for _ in 0..<64 { _ = nommu_free_pages(c.system, nommu_alloc_pages(c.system, 0, 0), 0) }
            return c
        }
    )

    Benchmark(
        "CABI.mmap4k.munmap",
        closure: { (benchmark: Benchmark, c: CSystem) in
            for _ in benchmark.scaledIterations {
                let q = nommu_mmap(
                    c.process, nil, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_UNINITIALIZED, -1, 0)
                blackHole(q)
                _ = nommu_munmap(c.process, q, 4096)
            }
        },
        setup: {
            let c = CSystem()
            for _ in 0..<64 {
                let q = nommu_mmap(
                    c.process, nil, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_UNINITIALIZED, -1, 0)
                _ = nommu_munmap(c.process, q, 4096)
            }
            return c
        }
    )
}
