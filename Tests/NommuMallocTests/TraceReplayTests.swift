// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuMM
import NommuMalloc
import NommuTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

private func trace(_ text: String, name: String = "t") throws -> Trace {
    try Trace.parse(name: name, Array(text.utf8))
}

@Suite("Traces: parsing")
struct TraceParsingTests {
    @Test("events become dense slots; unknown frees are reported and skipped")
    func parse() throws {
        let t = try trace("# nommu-trace v1\nm 10 48\nc 20 100\np 30 64 200\nr 10 11 96\nf 99\nf 20\nm 20 5\n\nf 11\n")
        #expect(t.operations == [.malloc, .calloc, .memalign, .realloc, .free, .malloc, .free])
        #expect(t.unknownFrees == 1)
        #expect(t.warnings == ["line 6: free of unknown ID 99: skipped"])
        #expect(t.slotCount == 3, "the realloc hands 10's slot on to 11")
        #expect(t.alignments[2] == 64 && t.sizes[2] == 200)
        #expect(t.oldSlots[3] == t.slots[0], "the realloc frees 10's slot")
    }

    @Test("CR LF line ends parse as LF ones (a trace that went through Windows)")
    func crlf() throws {
        let text = "# nommu-trace v1\nm 10 48\nc 20 100\n# a comment\n\nr 10 11 96\nf 20\nf 11\n"
        let lf = try trace(text)
        let crlf = try trace(text.replacingOccurrences(of: "\n", with: "\r\n"))
        #expect(crlf.operations == lf.operations && crlf.sizes == lf.sizes && crlf.slots == lf.slots)
        #expect(crlf.operations == [.malloc, .calloc, .realloc, .free, .free])
    }

    @Test(
        "malformed lines are reported with their number",
        arguments: [
            ("m 1 48\n", 1, "header"),
            ("# nommu-trace v1\nm 1\n", 2, "takes 2 fields"),
            ("# nommu-trace v1\nm 1 48\nx 2 3\n", 3, "unknown event"),
            ("# nommu-trace v1\nm 1 48\nm 1 16\n", 3, "already live"),
            ("# nommu-trace v1\np 1 24 16\n", 2, "power of two"),
            ("# nommu-trace v1\nm 1 -5\n", 2, "expected a number"),
            ("", 1, "header"),
        ])
    func malformed(text: String, line: Int, message: String) {
        do throws(Trace.ParseError) {
            _ = try Trace.parse(name: "t", Array(text.utf8))
            Issue.record("parsed: \(text)")
        } catch {
            #expect(error.line == line)
            #expect(error.message.contains(message), "\(error)")
        }
    }
}

@Suite("Traces: replay")
struct ReplayTests {
    static let sample = """
        # nommu-trace v1
        m 1 100
        c 2 5000
        p 3 4096 300
        r 1 4 200000
        f 2
        m 5 0
        f 4
        f 3
        f 5
        """

    @Test(
        "a small trace through both policies; peaks, counters and the report formats", arguments: Malloc.Policy.allCases
    )
    func replay(policy: Malloc.Policy) throws {
        let t = try trace(Self.sample, name: "sample")
        let reports = try Replay.run([t], .init(policy: policy, arenaBytes: 8 << 20))
        let r = try #require(reports.first)
        #expect(reports.count == 1)
        #expect(r.events == 9 && r.firstFailure == nil)
        #expect(r.peakLiveBytes == 5000 + 300 + 200_000)
        #expect(r.peakPagesHeld * 4096 >= r.peakLiveBytes)
        #expect(r.peakPagesInCall >= r.peakPagesHeld)
        #expect(r.glibcNsPerEvent != nil)
        let json = ReplayFormat.json(reports, pageSize: 4096)
        for key in [
            "\"trace\": \"sample\"", "\"policy\"", "\"events\": 9", "\"ns_per_event\"", "\"glibc_ns_per_event\"",
            "\"peak_live_bytes\"", "\"peak_pages_held\"", "\"slack_pages\"", "\"largest_free_block_bytes\"",
            "\"first_failure\": null",
        ] {
            #expect(json.contains(key), "json has \(key)")
        }
        #expect(ReplayFormat.csv(reports, pageSize: 4096).split(separator: "\n").count == 2)
        #expect(ReplayFormat.table(reports, pageSize: 4096, arenaBytes: 8 << 20).contains("/proc/buddyinfo"))
    }

    @Test("several traces: each row has its own share of the time, the system's figures are the total's")
    func perTrace() throws {
        let a = try trace(Self.sample, name: "a")
        let b = try trace(Self.sample, name: "b")
        let reports = try Replay.run([a, b], .init(policy: .heap, arenaBytes: 8 << 20))
        #expect(reports.map(\.trace) == ["a", "b", "total"])
        #expect(reports[0].nanoseconds + reports[1].nanoseconds == reports[2].nanoseconds, "the shares add up")
        for r in reports.prefix(2) {
            #expect(r.sharedSystem && r.nsPerEvent == Double(r.nanoseconds) / Double(r.events))
            let json = r.json(pageSize: 4096)
            #expect(json.contains("\"trimmed_pages\": null") && json.contains("\"buddyinfo\": null"), "\(json)")
        }
        #expect(!reports[2].sharedSystem && reports[2].json(pageSize: 4096).contains("\"trimmed_pages\": "))
        let csv = ReplayFormat.csv(reports, pageSize: 4096).split(separator: "\n")
        #expect(csv[1].contains(",,,,"), "a trace's row leaves the system's four columns empty: \(csv[1])")
        // The split follows each trace's sampled cost per event, not its event count alone.
        #expect(Replay.split(1000, done: [10, 10], sampledNs: [30, 10], samples: [1, 1]) == [750, 250])
        #expect(Replay.split(1000, done: [30, 10], sampledNs: [10, 10], samples: [1, 1]) == [750, 250])
        #expect(Replay.split(1000, done: [10, 10], sampledNs: [10, 0], samples: [1, 0]) == [500, 500])
        #expect(Replay.split(777, done: [5], sampledNs: [0], samples: [0]) == [777])
    }

    @Test("two traces interleave as two processes; a trace that does not fit reports its first failure")
    func failure() throws {
        let big = try trace("# nommu-trace v1\nm 1 1000000\nm 2 1000000\nm 3 1000000\nf 1\nf 2\nf 3\n", name: "big")
        let small = try trace(Self.sample, name: "sample")
        let reports = try Replay.run([big, small], .init(policy: .heap, arenaBytes: 2 << 20, maxOrder: 8))
        #expect(reports.map(\.trace) == ["big", "sample", "total"])
        let f = try #require(reports[0].firstFailure)
        #expect(f.event == 2 && f.size == 1_000_000, "the second megabyte does not fit in 2 MiB")
        #expect(f.largestFreeBlockBytes < 1_000_000)
        #expect(reports[0].events == 1)
        #expect(reports[2].firstFailure == f)
        #expect(ReplayFormat.json(reports, pageSize: 4096).contains("\"first_failure\": {\"event\": 2"))
    }

    @Test("the shared traces replay completely with the heap; pages held stay near the live bytes")
    func sharedTraces() throws {
        for name in ["cc1", "sqlite3"] {
            // The sample traces in traces/ (cc1 and sqlite3, recorded from the real programs).
            let path = "traces/\(name).trace"
            let bytes = readHostFile(path) ?? []
            guard !bytes.isEmpty else {
                Issue.record("missing \(path)")
                continue
            }
            let t = try Trace.parse(name: name, bytes)
            let r = try #require(try Replay.run([t], .init(arenaBytes: 64 << 20, compareWithGlibc: false)).first)
            #expect(r.firstFailure == nil && r.events == t.count)
            #expect(
                r.overhead(pageSize: 4096) <= 1.25,
                "\(name): peak pages held \(r.peakPagesHeld), live \(r.peakLiveBytes)")
        }
    }
}

@Suite("Traces: fit and plots")
struct FitAndPlotTests {
    @Test("--fit: the smallest arena fits, one page less does not")
    func fit() throws {
        let t = try Trace.parse(
            name: "t", Array("# nommu-trace v1\nm 1 300000\nm 2 5000\nm 3 70000\nf 2\nm 4 9000\nf 1\nf 3\nf 4\n".utf8))
        for policy in Malloc.Policy.allCases {
            let options = ReplayOptions(policy: policy, compareWithGlibc: false)
            let bytes = try Replay.fit([t], options)
            #expect(bytes >= 300_000 + 70_000 + 9000)
            var o = options
            o.arenaBytes = bytes
            #expect(try Replay.run([t], o).allSatisfy { $0.firstFailure == nil }, "\(policy) fits in \(bytes)")
            o.arenaBytes = bytes - 4096
            #expect(try Replay.run([t], o).contains { $0.firstFailure != nil }, "\(policy): one page less fails")
        }
    }

    @Test("samples and SVG plots")
    func plots() throws {
        let t = try Trace.parse(name: "t", Array(ReplayTests.sample.utf8))
        let result = try Replay.run([t], .init(compareWithGlibc: false), samples: 100)
        #expect(result.samples.count == t.count, "fewer events than samples: one sample an event")
        #expect(result.samples.map(\.event) == Array(1...t.count))
        #expect(result.samples.allSatisfy { $0.freeBlocks.count == 11 })
        let memory = ReplayPlot.memory(result.samples, title: "m <&>")
        #expect(memory.hasPrefix("<svg") && memory.contains("<polyline") && memory.contains("m &lt;&amp;&gt;"))
        let free = ReplayPlot.freeBlocks(result.samples, title: "f")
        let lines = free.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("<path d=\"M") }.count == 11, "an area per order")
        #expect(lines.filter { $0.hasPrefix("<polyline") }.count == 1, "the largest free block")
        #expect(!free.contains("first failure"))
        // The arena is 64 MiB, nearly all free: ticks of 20 MiB (round in MiB, not 19.1).
        #expect(free.contains(">20 MiB<") && free.contains(">60 MiB<"), "round byte ticks")
        let failed = ReplayPlot.freeBlocks(result.samples, title: "f", failure: 3)
        #expect(failed.contains("first failure"))
        #expect(ReplayPlot.niceTicks(9.3).ticks == [0, 2, 4, 6, 8, 10])
        #expect(ReplayPlot.niceTicks(525_000).ticks == [0, 200_000, 400_000, 600_000])
    }
}

@Suite("Traces: fuzzing regressions")
struct TraceFuzzRegressionTests {
    @Test("a line of blanks is skipped (fuzz-trace found it trapping)")
    func blankLine() throws {
        let t = try Trace.parse(
            name: "t", Array("# nommu-trace v1\nm 1 8\n   \n\t\nf 1\n".utf8.map { $0 == 9 ? 32 : $0 }))
        #expect(t.count == 2)
    }

    @Test(
        "an alignment of 2^62 with a size just below it does not fit (it trapped)",
        arguments: Malloc.Policy.allCases)
    func hugeAlignment(policy: Malloc.Policy) throws {
        let t = try Trace.parse(
            name: "t", Array("# nommu-trace v1\np 1 4611686018427387904 4611686018427387903\nm 2 8\n".utf8))
        let r = try Replay.run([t], ReplayOptions(policy: policy, compareWithGlibc: false))
        #expect(r.first?.firstFailure?.event == 1, "\(r)")
    }

    @Test("a line of a million fields is refused with a short quote of it")
    func hugeLine() throws {
        let text = "# nommu-trace v1\nm " + String(repeating: "1 ", count: 1_000_000) + "\n"
        #expect {
            _ = try Trace.parse(name: "t", Array(text.utf8))
        } throws: { error in
            guard let e = error as? Trace.ParseError else { return false }
            return e.line == 2 && e.message.count < 120 && e.message.hasSuffix("…'")
        }
    }
}
