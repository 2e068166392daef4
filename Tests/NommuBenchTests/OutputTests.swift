// SPDX-License-Identifier: Apache-2.0
import Foundation
import NommuBench
import Testing
#if canImport(FoundationXML)
    import FoundationXML
#endif

private let sample: [BenchResult] = [
    BenchResult(name: "memset", bytes: 4096, medianNs: 27.5, p10Ns: 27.1, p90Ns: 28.25, iterations: 1000),
    BenchResult(name: "memset", bytes: 1 << 20, medianNs: 6000, p10Ns: 5900, p90Ns: 6100, iterations: 100),
    BenchResult(name: "alloc_zeroed_dirty", bytes: 4096, medianNs: 150, p10Ns: 149, p90Ns: 152, iterations: 1000),
    BenchResult(name: "alloc_zeroed_dirty", bytes: 1 << 20, medianNs: 6100, p10Ns: 6000, p90Ns: 6200, iterations: 100),
    BenchResult(name: "alloc_uninit", bytes: 4096, medianNs: 120, p10Ns: 118, p90Ns: 125, iterations: 1000),
    BenchResult(name: "alloc_uninit", bytes: 1 << 20, medianNs: 75, p10Ns: 74, p90Ns: 76, iterations: 1000),
    BenchResult(name: "host_mmap_touch", bytes: 4096, medianNs: 6400, p10Ns: 6300, p90Ns: 7000, iterations: 10),
    BenchResult(
        name: "host_mmap_touch", bytes: 1 << 20, medianNs: 350_000, p10Ns: 340_000, p90Ns: 380_000, iterations: 10),
    BenchResult(name: "order0_pair", bytes: 4096, medianNs: 6.2, p10Ns: 6.1, p90Ns: 6.3, iterations: 100_000),
    BenchResult(name: "glibc_pair_4k", bytes: 4096, medianNs: 22, p10Ns: 21.5, p90Ns: 22.5, iterations: 100_000),
]

private let machine = MachineInfo(
    hostPageSize: 4096, cpuCount: 2, cpuModel: "Test \"CPU\"", transparentHugePages: "madvise", arenaBacking: "mmap",
    allocatorPageSize: 4096, maxOrder: 14, arenaBytes: 2 << 20, nrTrimPages: 1, build: "release", quick: false)

@Suite("Table, JSON, CSV and SVG")
struct OutputTests {
    @Test func nanosecondsAndSizes() {
        #expect(formatNanoseconds(12.345) == "12.3 ns")
        #expect(formatNanoseconds(5) == "5.00 ns")
        #expect(formatNanoseconds(456) == "456 ns")
        #expect(formatNanoseconds(999.7) == "1.00 µs")
        #expect(formatNanoseconds(45_600) == "45.6 µs")
        #expect(formatNanoseconds(7_890_000) == "7.89 ms")
        #expect(formatNanoseconds(1_234_000_000) == "1.23 s")
        #expect(formatBytes(4096) == "4 KiB")
        #expect(formatBytes(64 << 20) == "64 MiB")
        #expect(formatBytes(1536 << 10) == "1536 KiB")
        #expect(formatBytes(1 << 30) == "1 GiB")
        #expect(shortSizeLabel(4096) == "4K")
        #expect(shortSizeLabel(64 << 20) == "64M")
    }

    @Test func jsonHasExactlyTheResultKeysAndParsesBack() throws {
        let text = formatJSON(sample, machine: machine)
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        let top = try #require(object as? [String: Any])
        let results = try #require(top["results"] as? [[String: Any]])
        #expect(results.count == sample.count)
        let keys: Set<String> = ["name", "bytes", "median_ns", "p10_ns", "p90_ns", "iterations"]
        for (entry, r) in zip(results, sample) {
            #expect(Set(entry.keys) == keys)
            #expect(entry["name"] as? String == r.name)
            #expect((entry["bytes"] as? NSNumber)?.intValue == r.bytes)
            #expect(abs(((entry["median_ns"] as? NSNumber)?.doubleValue ?? -1) - r.medianNs) < 1e-3)
            #expect(abs(((entry["p10_ns"] as? NSNumber)?.doubleValue ?? -1) - r.p10Ns) < 1e-3)
            #expect(abs(((entry["p90_ns"] as? NSNumber)?.doubleValue ?? -1) - r.p90Ns) < 1e-3)
            #expect((entry["iterations"] as? NSNumber)?.intValue == r.iterations)
        }
        let ratios = try #require(top["ratios"] as? [[String: Any]])
        #expect(ratios.count == sample.count)
        for q in ratios {
            #expect(Set(q.keys) == ["name", "bytes", "baseline", "ratio"])
        }
        let m = try #require(top["machine"] as? [String: Any])
        #expect(m["cpu_model"] as? String == "Test \"CPU\"")
        #expect((m["cpu_count"] as? NSNumber)?.intValue == 2)
    }

    @Test func csvHeaderAndRows() {
        let lines = formatCSV(sample).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.first == "name,bytes,median_ns,p10_ns,p90_ns,iterations,ratio")
        #expect(lines.last == "")  // ends with a newline
        let rows = lines.dropFirst().dropLast()
        #expect(rows.count == sample.count)
        for (row, r) in zip(rows, sample) {
            let f = row.split(separator: ",", omittingEmptySubsequences: false)
            #expect(f.count == 7)
            #expect(String(f[0]) == r.name)
            #expect(Int(f[1]) == r.bytes)
            #expect(abs((Double(f[2]) ?? -1) - r.medianNs) < 1e-3)
            #expect(Int(f[5]) == r.iterations)
            #expect(Double(f[6]) != nil)
        }
        #expect(rows.first == "memset,4096,27.500,27.100,28.250,1000,1.000000")
        let pair = rows.first { $0.hasPrefix("order0_pair,") }
        #expect(pair?.hasSuffix(",0.281818") == true)
        let noBaseline = formatCSV([sample[4]]).split(separator: "\n")[1]
        #expect(noBaseline.hasSuffix(","))
    }

    @Test func tableRowsAndHeader() {
        let table = formatTable(sample, machine: machine)
        let lines = table.split(separator: "\n").map(String.init)
        #expect(lines[0].hasPrefix("nommu bench: host page 4096 B; 2 CPUs"))
        #expect(lines[0].contains("arena backing mmap"))
        #expect(lines[1].split(separator: " ") == ["series", "size", "median", "p10", "p90", "ratio"])
        let dirty = lines.first { $0.hasPrefix("alloc_zeroed_dirty") && $0.contains("1 MiB") }
        #expect(dirty?.split(separator: " ").last == "1.02")
        #expect(dirty?.contains("6.10 µs") == true)
        let glibc = lines.first { $0.hasPrefix("glibc_pair_4k") }
        #expect(glibc?.hasSuffix("1.00") == true)
        // Aligned: every row has the header's width.
        let rows = lines.filter { line in sample.contains { line.hasPrefix($0.name + " ") } }
        #expect(rows.count == sample.count)
        #expect(Set(rows.map(\.count)).count == 1)
    }

    @Test func svgIsWellFormedWithOnePolylinePerSizedSeries() throws {
        let svg = renderSVG(sample)
        #expect(svg.hasPrefix("<svg"))
        #expect(svg.hasSuffix("</svg>"))
        let polylines = svg.components(separatedBy: "<polyline").count - 1
        #expect(polylines == 4)  // memset, alloc_zeroed_dirty, alloc_uninit, host_mmap_touch
        for label in ["4K", "1M", "10 ns", "1 µs", "100 µs", "1 ms", "memset", "host_mmap_touch"] {
            #expect(svg.contains(">\(label)<"))
        }
        #expect(!svg.contains("nan") && !svg.contains("inf"))
        // p10–p90 bars: one per plotted point of the sized series (8 points), one per single-size one.
        #expect(svg.components(separatedBy: "<path d=\"M").count - 1 == 8 + 2)
        let parser = XMLParser(data: Data(svg.utf8))
        #expect(parser.parse(), "\(String(describing: parser.parserError))")
    }

    @Test("the single-size series are bars, so a run of only pairs plots something")
    func svgOfPairsOnly() throws {
        let svg = renderSVG([sample[8], sample[9]])  // order0_pair, glibc_pair_4k
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 0)
        #expect(svg.components(separatedBy: "<rect").count - 1 == 1 + 2, "the background and two bars")
        for label in ["order0_pair", "glibc_pair_4k", "6.20 ns", "22.0 ns"] { #expect(svg.contains(">\(label)<")) }
        let parser = XMLParser(data: Data(svg.utf8))
        #expect(parser.parse(), "\(String(describing: parser.parserError))")
    }

    @Test("a series has one colour in every plot, whatever else was measured")
    func colours() {
        let all = renderSVG(sample)
        let some = renderSVG([sample[4], sample[5]])  // alloc_uninit alone
        let colour = "stroke=\"\(seriesColor("alloc_uninit"))\""
        #expect(all.contains(colour) && some.contains(colour))
        #expect(seriesColor("alloc_uninit") != seriesColor("alloc_zeroed_dirty"))
    }

    @Test func svgWithOneSize() {
        let svg = renderSVG([sample[0], sample[2]])
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 2)
        #expect(!svg.contains("nan") && !svg.contains("inf"))
    }

    @Test func writesTheThreeFiles() throws {
        let dir = NSTemporaryDirectory() + "nommu-bench-test-\(UInt32.random(in: 0...UInt32.max))/nested"
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let written = try writeBenchFiles(sample, machine: machine, to: dir)
        #expect(written.map { ($0 as NSString).lastPathComponent } == ["bench.svg", "bench.json", "bench.csv"])
        for path in written {
            #expect(FileManager.default.fileExists(atPath: path))
        }
    }
}

@Suite("Ratio formatting")
struct RatioFormattingTests {
    @Test(
        "small ratios keep two significant digits",
        arguments: [
            (1.0, "1.00"), (2.26, "2.26"), (0.1, "0.10"), (0.0412, "0.041"), (0.0041, "0.0041"), (0.00412, "0.0041"),
            (0.0, "0.00"),
        ])
    func ratio(_ v: Double, _ text: String) {
        #expect(formatRatio(v) == text)
    }
}

@Suite("A saved run as the baseline (--baseline)")
struct BaselineTests {
    @Test("a run's own JSON read back as its baseline gives ratio 1 everywhere; a faster run below 1")
    func roundTrip() throws {
        let saved = try BenchBaseline(json: Array(formatJSON(sample, machine: machine).utf8))
        #expect(saved.version != nil && saved.build == "release")
        for r in sample { #expect(saved.ratio(r) == 1, "\(r.name) \(r.bytes)") }
        var faster = sample[8]  // order0_pair at 6.2 ns
        faster.medianNs = 3.1
        #expect(saved.ratio(faster) == 0.5)
        let other = BenchResult(name: "order0_pair", bytes: 8192, medianNs: 1, p10Ns: 1, p90Ns: 1, iterations: 1)
        #expect(saved.ratio(other) == nil, "no such size in the baseline")
        let table = formatBaselineComparison([faster, other], baseline: saved, path: "b.json")
        #expect(table.contains("against the baseline b.json") && table.contains("0.50"))
    }

    @Test("a file that is not a bench JSON document is refused, saying why")
    func invalid() {
        for (text, why) in [
            ("[1, 2]", "not a JSON object"), ("{\"rows\": []}", "no \"results\""),
            ("{\"results\": [{}]}", "without name"),
        ] {
            do throws(BenchError) {
                _ = try BenchBaseline(json: Array(text.utf8))
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.description.contains(why), "\(error)")
            }
        }
    }
}
