// SPDX-License-Identifier: Apache-2.0
import NommuBench
import Testing

@Suite("Parsing --sizes and --series")
struct ParsingTests {
    @Test func defaultList() throws {
        let sizes = try parseSizes("4K,16K,64K,256K,1M,4M,16M,64M")
        #expect(sizes == BenchConfiguration.defaultSizes)
    }

    @Test func suffixesAndPlainBytes() throws {
        #expect(try parseSizes("4K,1M,64M") == [4096, 1 << 20, 64 << 20])
        #expect(try parseSizes("4096") == [4096])
        #expect(try parseSizes("8192B") == [8192])
        #expect(try parseSizes("4k, 8KiB ,12KB") == [4096, 8192, 12288])
        #expect(try parseSizes("1G") == [1 << 30])
        #expect(try parseSizes("2m,1mib") == [1 << 20, 2 << 20])
    }

    @Test func sortedAndDeduplicated() throws {
        #expect(try parseSizes("1M,4K,1M,4096") == [4096, 1 << 20])
    }

    @Test(arguments: [
        "", " ", "4X", "K", "1.5M", "-4K", "0", "0K", "5000", "4K,,8K", "4K,", "2G", "99999999999999999999K", "4 K B",
    ])
    func invalid(_ text: String) {
        #expect(throws: BenchError.self) { try parseSizes(text) }
    }

    @Test func invalidMessagesSayWhy() {
        do {
            _ = try parseSizes("4K,5000")
            Issue.record("5000 was accepted")
        } catch {
            #expect(error == .invalidSize("5000", reason: "5000 bytes is not a multiple of 4096"))
            #expect(error.description.contains("multiple of 4096"))
        }
    }

    @Test func series() throws {
        #expect(try parseSeries("order0_pair,memset") == [.memset, .order0Pair])
        #expect(throws: BenchError.unknownSeries("nope")) { try parseSeries("memset,nope") }
        #expect(throws: BenchError.noSeries) { try parseSeries(" , ") }
    }

    @Test func baselinesAreAdded() {
        var c = BenchConfiguration(sizes: [4096], series: [.allocUninit, .order0Pair], quick: true)
        #expect(c.resolvedSeries == [.memset, .allocUninit, .order0Pair, .glibcPair4k])
        c.series = [.glibcPosixMemalign]
        #expect(c.resolvedSeries == [.memset, .glibcPosixMemalign])
        c.series = [.order0PairWorst]
        #expect(c.resolvedSeries == [.order0PairWorst, .glibcPair4k])
    }

    @Test func sizedAllocatorShape() {
        let c = BenchConfiguration()
        #expect(c.sizedMaxOrder == 14)
        #expect(c.sizedArenaBytes == 128 << 20)
        #expect(BenchConfiguration.maxOrder(forSize: 4096) == 10)
        #expect(BenchConfiguration.maxOrder(forSize: 4 << 20) == 10)
        #expect(BenchConfiguration.maxOrder(forSize: 16 << 20) == 12)
        #expect(BenchConfiguration.maxOrder(forSize: (16 << 20) + 4096) == 13)
        #expect(BenchConfiguration.arenaBytes(forMaxOrder: 10) == 8 << 20)
        #expect(BenchConfiguration(sizes: [4096, 1 << 20], quick: true).sizedMaxOrder == 10)
        let big = BenchConfiguration(sizes: [256 << 20], quick: true)
        #expect(big.sizedMaxOrder == 16)
        let odd = BenchConfiguration(sizes: [12288], quick: true)
        #expect(odd.largestBlock == 16384)
    }
}
