// SPDX-License-Identifier: Apache-2.0
import NommuBench
import Testing

@Suite("The measurement engine")
struct EngineTests {
    @Test func quickRunMeasuresEverySeries() throws {
        let configuration = BenchConfiguration(sizes: [4096, 65536], quick: true)
        var lines: [String] = []
        let results = try runBench(configuration) { lines.append($0) }
        #expect(Set(results.map(\.name)) == Set(BenchSeries.allCases.map(\.rawValue)))
        for s in BenchSeries.allCases {
            let mine = results.filter { $0.name == s.rawValue }
            #expect(mine.map(\.bytes) == (s.isSized ? [4096, 65536] : [4096]), "\(s)")
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
