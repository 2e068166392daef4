// SPDX-License-Identifier: Apache-2.0
import NommuBench
import Testing

private func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) < 1e-9 }

@Suite("Percentiles and ratios")
struct StatisticsTests {
    @Test func percentilesOfOneToTen() {
        let v = (1...10).map(Double.init)
        #expect(close(percentile(v, 0.5), 5.5))
        #expect(close(percentile(v, 0.1), 1.9))
        #expect(close(percentile(v, 0.9), 9.1))
        #expect(close(percentile(v, 0), 1))
        #expect(close(percentile(v, 1), 10))
    }

    @Test func percentilesSortFirst() {
        let v: [Double] = [5, 1, 3]
        #expect(close(percentile(v, 0.5), 3))
        #expect(close(percentile(v, 0.1), 1.4))
        #expect(close(percentile(v, 0.9), 4.6))
    }

    @Test func oddCountMedianIsTheMiddle() {
        let v: [Double] = [9, 2, 7, 4, 100]
        #expect(close(percentile(v, 0.5), 7))
    }

    @Test func singleValue() {
        #expect(close(percentile([42], 0.1), 42))
        #expect(close(percentile([42], 0.5), 42))
        #expect(close(percentile([42], 0.9), 42))
    }

    @Test func resultFromSamples() {
        let r = BenchResult(name: "memset", bytes: 4096, samples: (1...10).reversed().map(Double.init), iterations: 100)
        #expect(close(r.medianNs, 5.5))
        #expect(close(r.p10Ns, 1.9))
        #expect(close(r.p90Ns, 9.1))
        #expect(r.iterations == 100)
    }

    @Test func ratios() {
        let results = [
            BenchResult(name: "memset", bytes: 4096, medianNs: 100, p10Ns: 90, p90Ns: 110, iterations: 1),
            BenchResult(name: "memset", bytes: 65536, medianNs: 1000, p10Ns: 900, p90Ns: 1100, iterations: 1),
            BenchResult(name: "alloc_zeroed_dirty", bytes: 4096, medianNs: 150, p10Ns: 1, p90Ns: 1, iterations: 1),
            BenchResult(name: "alloc_uninit", bytes: 65536, medianNs: 50, p10Ns: 1, p90Ns: 1, iterations: 1),
            BenchResult(name: "alloc_zeroed_fresh", bytes: 16384, medianNs: 30, p10Ns: 1, p90Ns: 1, iterations: 1),
            BenchResult(name: "order0_pair", bytes: 4096, medianNs: 5, p10Ns: 1, p90Ns: 1, iterations: 1),
            BenchResult(name: "glibc_pair_4k", bytes: 4096, medianNs: 20, p10Ns: 1, p90Ns: 1, iterations: 1),
            BenchResult(name: "mystery", bytes: 4096, medianNs: 20, p10Ns: 1, p90Ns: 1, iterations: 1),
        ]
        let q = computeRatios(results)
        func ratio(_ name: String, _ bytes: Int) -> Double? {
            q.first { $0.name == name && $0.bytes == bytes }?.ratio
        }
        #expect(ratio("memset", 4096) == 1)
        #expect(ratio("memset", 65536) == 1)
        #expect(close(ratio("alloc_zeroed_dirty", 4096) ?? .nan, 1.5))
        #expect(close(ratio("alloc_uninit", 65536) ?? .nan, 0.05))
        #expect(ratio("alloc_zeroed_fresh", 16384) == nil)  // no memset at 16 KiB
        #expect(close(ratio("order0_pair", 4096) ?? .nan, 0.25))
        #expect(ratio("glibc_pair_4k", 4096) == 1)
        #expect(ratio("mystery", 4096) == nil)
        #expect(q.first { $0.name == "order0_pair" }?.baseline == "glibc_pair_4k")
        #expect(q.first { $0.name == "alloc_uninit" }?.baseline == "memset")
        #expect(q.count == 6)
    }
}
