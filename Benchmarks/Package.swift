// swift-tools-version:6.1
// SPDX-License-Identifier: Apache-2.0
//
// Benchmarks for nommu, kept in a package of their own so that `swift build` and
// `swift test` at the repository root never build package-benchmark or its
// dependencies. Run from this folder:
//
//   swift package benchmark                      # run everything (release build)
//   swift package benchmark thresholds check     # gate malloc counts (see README.md)
//
// The `MallocInterposer` trait gives package-benchmark its malloc counters on
// Swift 6.3+ without jemalloc (no system package needed).
import PackageDescription

let package = Package(
    name: "nommu-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "nommu", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "PageAllocatorBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Nommu", package: "nommu"),
            ],
            path: "Benchmarks/PageAllocatorBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
        .executableTarget(
            name: "MallocBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Nommu", package: "nommu"),
            ],
            path: "Benchmarks/MallocBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
        .executableTarget(
            name: "CABIBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "nommu-c-static", package: "nommu"),
            ],
            path: "Benchmarks/CABIBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
    ]
)
