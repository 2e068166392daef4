// SPDX-License-Identifier: Apache-2.0
import Foundation
import NommuMalloc
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Skips a test where programs cannot run on the model (sanitizer builds).
let programsRun = !Bin.sanitized

/// 10^6 malloc/free pairs (fewer in checked builds, which walk the heap after every change).
let pairs = Bin.checked ? 20_000 : 1_000_000

/// Checked builds walk the whole arena after every change: the long runs get a 16 MiB one
/// there (the default 256 MiB made a 20,000-pair run take 200 s, near the timeout).
let checkedArena = Bin.checked ? ["--arena", "16M"] : []

@Suite("nommu run: real programs on the model, through the command line", .enabled(if: programsRun))
struct RunProgramTests {
    /// `nommu run --report R ARGS -- argv`, with the report read back.
    func run(_ argv: [String], _ options: [String] = [], in dir: Scratch, timeout: Int = 300) throws -> (
        Outcome, RunDocument?
    ) {
        let report = dir.file("report-\(UInt32.random(in: 0...UInt32.max)).json")
        let o = try nommu(["run", "--report", report] + options + ["--"] + argv, in: dir.path, timeout: timeout)
        return (o, try? RunDocument.read(report))
    }

    @Test("python3 (8 threads, a subprocess), sqlite3, gcc -c, git and sort of 50 MB run to completion")
    func realPrograms() throws {
        let dir = Scratch("run-programs")
        defer { dir.remove() }
        let source = dir.file("t.c")
        try "int main(void) { return 0; }\n".write(toFile: source, atomically: true, encoding: .utf8)
        let python = """
            import threading, subprocess, sys
            ts = [threading.Thread(target=lambda: [bytearray(500) for _ in range(2000)]) for _ in range(8)]
            [t.start() for t in ts]; [t.join() for t in ts]
            r = subprocess.run([sys.executable, '-c', 'print(sum(range(10)))'], capture_output=True, text=True)
            print('child said', r.stdout.strip())
            """
        let cases: [(argv: [String], program: String, stdout: String?)] = [
            (["python3", "-c", python], "python3", "child said 45"),
            (
                ["sqlite3", ":memory:", "create table t(a); insert into t values (1), (2); select sum(a) from t;"],
                "sqlite3", "3"
            ),
            (["gcc", "-c", source, "-o", dir.file("t.o")], "cc1", nil),
            (["git", "init", "-q", dir.file("repo")], "git", nil),
        ]
        for c in cases {
            let (o, doc) = try run(c.argv, in: dir)
            #expect(o.status == 0, "\(c.argv[0]): \(o)")
            if let want = c.stdout { #expect(o.stdout.contains(want), "\(c.argv[0]): \(o)") }
            let d = try #require(doc, "\(c.argv[0]) wrote a report: \(o)")
            #expect(d.exit.status == 0)
            #expect(d.results.contains { $0.program == c.program && $0.events > 0 }, "\(c.program) reported")
            #expect(d.results.allSatisfy { $0.failures == 0 }, "\(c.argv[0]) fits in 256 MiB")
            #expect(o.stderr.contains("nommu run: heap malloc"), "the table is printed")
        }
        // sort asks for a buffer of a fraction of the host's memory, gets ENOMEM and asks for less.
        let input = try bigFile(in: dir, megabytes: 50)
        let (o, doc) = try run(["sort", input, "-o", dir.file("sorted")], in: dir)
        #expect(o.status == 0, "sort: \(o)")
        let expected = try execute(["sort", input, "-o", dir.file("expected")])
        #expect(expected.status == 0)
        #expect(FileManager.default.contentsEqual(atPath: dir.file("sorted"), andPath: dir.file("expected")))
        #expect(try #require(doc).results.contains { $0.program == "sort" && $0.peakLiveBytes > 1 << 20 })
    }

    @Test("10^6 malloc/free pairs keep the model's own memory flat", arguments: ["heap", "simple"])
    func pairsStayFlat(policy: String) throws {
        let dir = Scratch("run-pairs")
        defer { dir.remove() }
        var cases = [(pairs, 64)]
        if policy == "heap" { cases.append((pairs * 3 / 10, 200_000)) }  // mapped on their own
        for (count, size) in cases {
            let (o, doc) = try run(
                [Bin.workload, "pairs", String(count), String(size)], ["--malloc", policy] + checkedArena, in: dir)
            #expect(o.status == 0, "\(o)")
            // "host malloc bytes after N/10: X, after N: Y"
            let numbers = o.stdout.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            try #require(numbers.count >= 3, "\(o)")
            let (early, late) = (numbers[numbers.count - 3], numbers[numbers.count - 1])
            #expect(late - early <= 64 << 10, "\(policy) \(size) B: the model's own memory went \(early) → \(late)")
            let r = try #require(doc?.results.first)
            #expect(r.events >= 2 * count && r.liveBlocks < 64)
        }
    }

    @Test("8 threads check every block they hold", arguments: ["heap", "simple"])
    func threads(policy: String) throws {
        let dir = Scratch("run-threads")
        defer { dir.remove() }
        let (o, doc) = try run(
            [Bin.workload, "threads", "8", Bin.checked ? "2000" : "20000"], ["--malloc", policy], in: dir)
        #expect(o.status == 0 && o.stdout.contains("every block intact"), "\(o)")
        #expect(try #require(doc).results.first?.invalidFrees == 0)
    }

    @Test("a threaded parent forks 40 children: none hangs", arguments: ["heap", "simple"])
    func forkFromThreads(policy: String) throws {
        let dir = Scratch("run-fork")
        defer { dir.remove() }
        let (o, doc) = try run(
            [Bin.workload, "fork", "4", "40"], ["--malloc", policy] + checkedArena, in: dir, timeout: 180)
        #expect(o.status == 0 && o.stdout.contains("40 of 40 children exited 0"), "\(o)")
        let d = try #require(doc)
        #expect(d.results.count == 41, "the parent and 40 children report")
        #expect(d.results.filter { $0.forkedFrom != nil }.count == 40)
    }

    @Test("a program that runs out: the report names the size, the mmap, the largest block and the call stack")
    func outOfMemory() throws {
        let dir = Scratch("run-oom")
        defer { dir.remove() }
        let (o, doc) = try run([Bin.workload, "exhaust"], ["--arena", "4M"], in: dir)
        #expect(o.status == 1, "\(o)")
        // "exhaust: malloc(N) failed"
        let size = try #require(
            o.stdout.split(separator: "(").dropFirst().first?.split(separator: ")").first.flatMap {
                Int($0)
            })
        let f = try #require(doc?.results.first?.firstFailure, "\(o)")
        #expect(f.size == size)
        #expect(f.mmapBytes >= size && f.largestFreeBlockBytes < f.mmapBytes)
        #expect(f.stack.contains { ($0.location ?? $0.symbol ?? "").contains("grow_until_it_fails") }, "\(f.stack)")
        #expect(o.stderr.contains("did not fit: call \(f.event) asked for \(size) bytes"), "\(o)")
        #expect(o.stderr.contains("grow_until_it_fails"))
        #expect(o.stderr.contains("after 1 allocation did not fit"))
        #expect(
            doc?.results.first?.sites.first.map { ($0.frame.location ?? "").contains("grow_until_it_fails") } == true)

        // python3 in 1 MiB: a MemoryError, and the process says it ran out.
        let (p, pdoc) = try run(["python3", "-c", "x = bytearray(3000000)"], ["--arena", "1M"], in: dir)
        #expect(p.status != 0 && p.stderr.contains("MemoryError"), "\(p)")
        #expect(try #require(pdoc).results.contains { $0.program == "python3" && $0.firstFailure != nil })
    }

    @Test("C++: sites are the code that says new (not operator new); a new that does not fit throws bad_alloc")
    func cplusplus() throws {
        let dir = Scratch("run-cxx")
        defer { dir.remove() }
        let source = dir.file("cxx.cpp")
        try """
        #include <cstdio>
        #include <new>
        #include <vector>
        static std::vector<char *> kept;
        __attribute__((noinline)) void fill_the_heap() {
            for (int i = 0; i < 1000; i++) kept.push_back(new char[1000]);
        }
        int main() {
            fill_the_heap();
            try {
                kept.push_back(new char[size_t(1) << 40]);
            } catch (std::bad_alloc &) {
                std::puts("bad_alloc");
                return 3;
            }
        }
        """.write(toFile: source, atomically: true, encoding: .utf8)
        let build = try execute(["g++", "-g", "-O1", source, "-o", dir.file("cxx")])
        try #require(build.status == 0, "\(build)")
        let (o, doc) = try run([dir.file("cxx")], in: dir)
        #expect(o.status == 3 && o.stdout.contains("bad_alloc"), "\(o)")
        let r = try #require(doc?.results.first)
        let top = try #require(r.sites.first)
        #expect(top.frame.location?.contains("fill_the_heap") == true, "\(r.sites.map(\.frame))")
        #expect(top.calls == 1000 && top.liveBytes == 1_000_000)
        #expect(r.firstFailure?.size == 1 << 40)
        #expect(r.firstFailure?.stack.first?.location?.contains("main") == true)
    }

    @Test("how a process ends is reported: exit, _exit, a signal (passed on to the caller)")
    func endings() throws {
        let dir = Scratch("run-endings")
        defer { dir.remove() }
        for (how, signal) in [("_exit", nil), ("segv", SIGSEGV), ("abort", SIGABRT)] as [(String, Int32?)] {
            let (o, doc) = try run([Bin.workload, "end", "1000", how], in: dir)
            if let signal {
                #expect(o.signal == signal || o.status == 128 + signal, "\(how): \(o)")
                #expect(o.stderr.contains("was killed by SIG"), "\(o)")
                #expect(doc?.exit.signal == Int(signal))
            } else {
                #expect(o.status == 0, "\(o)")
            }
            let r = try #require(doc?.results.first, "\(how): \(o)")
            #expect(r.end == (signal.map { "signal \($0)" } ?? how))
            #expect(r.events >= 1000)
        }
    }

    @Test("--heaps: threads spread over that many heaps, 1 is one shared heap; outside 1...64 is refused")
    func heapsOption() throws {
        let dir = Scratch("run-heaps")
        defer { dir.remove() }
        var mmaps: [Int: Int] = [:]
        for heaps in [1, 8] {
            let (o, doc) = try run([Bin.workload, "threads", "4", "2000"], ["--heaps", String(heaps)], in: dir)
            #expect(o.status == 0, "\(o)")
            let r = try #require(doc?.results.first, "\(o)")
            #expect(r.failures == 0)
            mmaps[heaps] = r.mmaps
            #expect(doc?.settings.heaps == heaps, "the report's settings name the heaps")
        }
        // Four threads in four heaps map an area each at least; in one heap they share.
        #expect(mmaps[8]! > mmaps[1]!, "\(mmaps)")
        for bad in ["0", "65"] {
            let o = try nommu(["run", "--heaps", bad, "--", "/bin/true"], in: dir.path)
            #expect(o.status == 64 && o.stderr.contains("--heaps must be from 1 to 64"), "\(o)")
        }
    }

    @Test("sites hold what their blocks hold: kept blocks count at the end, freed ones do not")
    func siteAccounting() throws {
        let dir = Scratch("run-sites")
        defer { dir.remove() }
        let (o, doc) = try run([Bin.workload, "end", "1000", "exit"], in: dir)
        #expect(o.status == 0, "\(o)")
        let r = try #require(doc?.results.first, "\(o)")
        let kept = try #require(r.sites.first { $0.frame.location?.contains("workload.c") == true }, "\(r.sites)")
        // malloc(32 + i % 100) for i < 1000, none freed.
        #expect(kept.calls == 1000 && kept.liveBytes == 81_500 && kept.peakBytes == 81_500, "\(kept)")

        let (m, mixed) = try run([Bin.workload, "mixed", "100000", "4"], in: dir)
        #expect(m.status == 0, "\(m)")
        let mr = try #require(mixed?.results.first, "\(m)")
        let ours = mr.sites.filter { $0.frame.location?.contains("workload.c") == true }
        #expect(ours.count == 3, "malloc, realloc and the malloc after a free: \(mr.sites)")
        #expect(ours.allSatisfy { $0.liveBytes == 0 && $0.peakBytes > 0 }, "every block was freed: \(ours)")
        // Time in the model: each thread's share lies within the process's wall time (an
        // estimate from one call in eight broke this under lock contention).
        #expect(mr.modelMs > 0 && mr.modelMs <= mr.wallMs * 4, "\(mr.modelMs) ms in the model, \(mr.wallMs) ms wall")
    }
}
