// swift-tools-version:6.1
// SPDX-License-Identifier: Apache-2.0
//
// nommu: Linux's no-MMU memory mapping, in user space.
//
// Layers (each a target; a layer sees only the ones below it):
//   CShims (C: the arena calls, thread-local slots, relaxed atomics, the clock)
//     -> NommuBase (Errno, PageFrameNumber, Order, check flags)
//     -> NommuHost (every host call: the arena, the flash window, /data file I/O, temporary
//        directories, locks and condition variables, program spawning; the one reader of
//        errno, and the fault injection at that boundary)
//     -> PageAllocator (the buddy allocator)
//     -> NommuELF (the stateless ELF parser)
//     -> NommuMM (the no-MMU model: processes, regions, mappings, files, devices, IPC, exec)
//     -> NommuMalloc (the mallocs over the model's mmap; trace replay)
//   and above them, side by side:
//     NommuCABI (+ CNommu, nommu.h): the C ABI, libnommu-c
//     NommuRun (+ NommuRunShim, NommuPreload): libnommu-run.so, what `nommu run` preloads
//     NommuRecord (+ NommuPreload): libnommu-record.so, what `nommu record` preloads
//     NommuBench (+ CNommuBench: its C loops and baselines): the measurement engine, over NommuMalloc and
//       NommuCABI (the C ABI's series)
//     NommuReports: reports over the model (nommu maps' session, nommu exec-map)
//     nommu: the CLI, over NommuBench, NommuReports, NommuMalloc and NommuMM
//   nommu-workload (plain C) is the program the program series and tests run.
//
// Checking levels (compile-time, off by default, never in benchmarks):
//   NOMMU_INTERNAL_CHECKS   every mutating allocator operation ends with a full
//                           `_checkInvariants()` walk (O(free blocks)), and freed /
//                           uninitialised runs are poisoned with distinct patterns.
//                           Voids every complexity claim in the docs.
//   NOMMU_EXPENSIVE_CHECKS  adds O(arena) scans: every page the allocator believes
//                           to be zero is read back and must be zero.
// Turn them on with `swift test -Xswiftc -DNOMMU_INTERNAL_CHECKS -Xcc -DNOMMU_INTERNAL_CHECKS`
// (and the same for NOMMU_EXPENSIVE_CHECKS); `.ci/run` does both.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "nommu",
    platforms: [.macOS(.v15)],
    products: [
        .library(
            name: "Nommu",
            targets: ["NommuBase", "NommuHost", "PageAllocator", "NommuELF", "NommuMM", "NommuMalloc", "NommuReports"]
        ),
        .executable(name: "nommu", targets: ["nommu"]),
        // The C ABI of nommu.h: libnommu-c.so and libnommu-c-static.a (see the README for the
        // compile and link lines, and scripts/install-c-library for libnommu + nommu.pc).
        .library(name: "nommu-c", type: .dynamic, targets: ["NommuCABI", "CNommu"]),
        .library(name: "nommu-c-static", type: .static, targets: ["NommuCABI", "CNommu"]),
        // LD_PRELOAD library of `nommu record`: writes a program's heap calls as a trace.
        .library(name: "nommu-record", type: .dynamic, targets: ["NommuRecord"]),
        // LD_PRELOAD library of `nommu run`: a program's heap served by a nommu system.
        .library(name: "nommu-run", type: .dynamic, targets: ["NommuRunShim", "NommuRun"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
    ],
    targets: [
        .target(
            name: "CShims",
            path: "CShims",
            cSettings: [.define("_GNU_SOURCE")]
        ),
        .target(name: "NommuBase", swiftSettings: swiftSettings),
        .target(name: "NommuHost", dependencies: ["CShims", "NommuBase"], swiftSettings: swiftSettings),
        .target(
            name: "PageAllocator",
            dependencies: ["CShims", "NommuBase", "NommuHost"],
            swiftSettings: swiftSettings
        ),
        // The ELF parser exec uses: stateless, bytes in, program headers out (or why not).
        .target(name: "NommuELF", swiftSettings: swiftSettings),
        .target(
            name: "NommuMM",
            dependencies: ["CShims", "NommuBase", "NommuHost", "PageAllocator", "NommuELF"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "NommuMalloc",
            dependencies: ["CShims", "NommuBase", "NommuHost", "PageAllocator", "NommuMM"],
            swiftSettings: swiftSettings
        ),
        // Reports over the model that are not part of it: nommu maps' session, nommu exec-map.
        .target(
            name: "NommuReports", dependencies: ["NommuBase", "NommuMM"], swiftSettings: swiftSettings
        ),
        .target(name: "CNommu", cSettings: [.define("_GNU_SOURCE")]),
        // The C loops of `nommu bench`'s C ABI series (against nommu.h, as a user's program).
        .target(
            name: "CNommuBench", dependencies: ["CNommu"], cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("pthread")]),
        // What the two LD_PRELOAD libraries share (exec, _exit and fatal signals); hidden in each.
        .target(name: "NommuPreload", cSettings: [.define("_GNU_SOURCE")], linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "NommuRunShim", dependencies: ["NommuPreload", "CShims"], cSettings: [.define("_GNU_SOURCE")]),
        .target(
            name: "NommuRun",
            dependencies: [
                "NommuRunShim", "CShims", "NommuBase", "NommuHost", "PageAllocator", "NommuMM", "NommuMalloc",
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "NommuRecord", dependencies: ["NommuPreload"], cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("dl")]),
        // Fixed C programs for `nommu run`: the bench's workload and the tests' programs.
        .executableTarget(
            name: "nommu-workload", path: "Sources/NommuWorkload", cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("pthread")]),
        .target(
            name: "NommuCABI",
            dependencies: ["CNommu", "CShims", "NommuBase", "NommuHost", "PageAllocator", "NommuMM", "NommuMalloc"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "NommuBench",
            dependencies: [
                "CShims", "NommuBase", "NommuHost", "PageAllocator", "NommuMM", "NommuMalloc", "CNommu", "CNommuBench",
                "NommuCABI",
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "nommu",
            dependencies: [
                "NommuBase", "NommuHost", "PageAllocator", "NommuMM", "NommuBench", "NommuMalloc", "NommuReports",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "NommuTestSupport",
            dependencies: ["NommuBase", "PageAllocator"],
            path: "Tests/NommuTestSupport",
            swiftSettings: swiftSettings
        ),
        // libFuzzer targets (Fuzz/README.md): with `--sanitize=fuzzer -Xswiftc -DFUZZING`
        // libFuzzer supplies main; ordinary builds replay a corpus.
        .target(name: "FuzzSupport", path: "Fuzz/FuzzSupport", swiftSettings: swiftSettings),
        .executableTarget(
            name: "fuzz-allocator",
            dependencies: ["FuzzSupport", "NommuBase", "PageAllocator"],
            path: "Fuzz/FuzzAllocator",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "fuzz-trace",
            dependencies: ["FuzzSupport", "NommuBase", "NommuMM", "NommuMalloc", "PageAllocator"],
            path: "Fuzz/FuzzTrace",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "fuzz-cabi",
            dependencies: ["FuzzSupport", "CNommu", "NommuBase", "NommuCABI", "NommuMM", "PageAllocator"],
            path: "Fuzz/FuzzCABI",
            swiftSettings: swiftSettings
        ),
        // C programs against nommu.h; CABITests runs them.
        .executableTarget(
            name: "nommu-abi-check",
            dependencies: ["CNommu", "NommuCABI"],
            path: "Tests/CPrograms/abi-check"
        ),
        .executableTarget(
            name: "nommu-abi-arc",
            dependencies: ["CNommu", "NommuCABI"],
            path: "Tests/CPrograms/abi-arc",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("dl")]
        ),
        .executableTarget(
            name: "nommu-abi-stress",
            dependencies: ["CNommu", "NommuCABI"],
            path: "Tests/CPrograms/abi-stress"
        ),
        // The kernel oracle's hosted backend: the cases through nommu.h (Oracle/README.md).
        .executableTarget(
            name: "nommu-oracle-host",
            dependencies: ["CNommu", "NommuCABI"],
            path: "Oracle",
            exclude: ["guest", "golden", "kernel.config", "README.md", "divergences.md"],
            sources: ["cases", "host"],
            // A helper started beside a case runs on a thread of its own (o_spawn_start).
            cSettings: [.define("O_THREAD_LOCAL", to: "_Thread_local")]
        ),
        .testTarget(
            name: "CABITests", dependencies: ["nommu-abi-check", "nommu-abi-stress", "nommu-oracle-host"],
            swiftSettings: swiftSettings),
        // nommu run and nommu record as users run them: the CLI and the preload libraries of one
        // build (NOMMU_BIN_DIR, or the one beside the tests), on real programs.
        .testTarget(
            name: "ProgramTests", dependencies: ["NommuBase", "NommuHost", "NommuMalloc"],
            swiftSettings: swiftSettings),
        .testTarget(name: "NommuBaseTests", dependencies: ["NommuBase"], swiftSettings: swiftSettings),
        .testTarget(name: "NommuHostTests", dependencies: ["NommuHost", "NommuBase"], swiftSettings: swiftSettings),
        .testTarget(
            name: "PageAllocatorTests",
            dependencies: ["PageAllocator", "NommuBase", "NommuHost", "NommuTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "NommuMMTests",
            dependencies: [
                "CShims", "NommuHost", "NommuMM", "PageAllocator", "NommuBase", "NommuTestSupport", "NommuReports",
                "NommuELF",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "NommuMallocTests",
            dependencies: ["NommuMalloc", "NommuHost", "NommuMM", "PageAllocator", "NommuBase", "NommuTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "NommuBenchTests",
            dependencies: ["NommuBench", "NommuBase"],
            swiftSettings: swiftSettings
        ),
    ]
)
