// SPDX-License-Identifier: Apache-2.0
import NommuBench
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("The measurement engine")
struct EngineTests {
    /// nommu-workload and libnommu-run.so, built beside the test bundle; nil under the
    /// sanitizers (an instrumented library cannot be preloaded into a plain program).
    static var programs: ProgramSetup? {
        guard dlsym(nil, "__tsan_init") == nil && dlsym(nil, "__asan_init") == nil else { return nil }
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, 4095)
        var dir = String(decoding: buf[0..<max(0, n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        while !dir.hasSuffix("/") && !dir.isEmpty { dir.removeLast() }
        return ProgramSetup(
            workload: dir + "nommu-workload", runLibrary: dir + "libnommu-run.so", calls: 20_000, runs: 1)
    }

    @Test func quickRunMeasuresEverySeries() throws {
        let programs = Self.programs
        let configuration = BenchConfiguration(sizes: [4096, 65536], quick: true, programs: programs)
        var lines: [String] = []
        let results = try runBench(configuration) { lines.append($0) }
        let expected = BenchSeries.allCases.filter { programs != nil || !$0.isProgram }
        #expect(Set(results.map(\.name)) == Set(expected.map(\.rawValue)))
        for s in expected {
            let mine = results.filter { $0.name == s.rawValue }
            #expect(mine.map(\.bytes) == (s.isProgram ? [0] : s.isSized ? [4096, 65536] : [s.reportedBytes]), "\(s)")
        }
        for r in results {
            #expect(r.medianNs > 0, "\(r.name) \(r.bytes)")
            #expect(r.p10Ns <= r.medianNs && r.medianNs <= r.p90Ns, "\(r.name) \(r.bytes)")
            #expect(r.iterations > 0, "\(r.name) \(r.bytes)")
        }
        #expect(lines.count >= results.count)
        #expect(!lines.contains { $0.contains("warning") }, "\(lines.filter { $0.contains("warning") })")
        #expect(computeRatios(results).count == results.count)
    }

    @Test func onlySomeSeriesPlusBaselines() throws {
        let configuration = BenchConfiguration(sizes: [8192], series: [.order0PairWorst, .allocUninit], quick: true)
        let results = try runBench(configuration)
        #expect(results.map(\.name) == ["memset", "alloc_uninit", "order0_pair_worst", "glibc_pair_4k"])
    }
}
