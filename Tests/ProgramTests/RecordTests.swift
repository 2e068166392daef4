// SPDX-License-Identifier: Apache-2.0
import Foundation
import NommuMalloc
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("nommu record: a trace per process, through the command line", .enabled(if: programsRun))
struct RecordProgramTests {
    /// Replays a trace on its own in a 256 MiB machine: every event fits but a block larger
    /// than a maximum-order run (sort asks glibc for gigabytes and takes what it gets).
    func replays(_ t: Trace) throws -> Bool {
        let r = try Replay.run([t], .init(arenaBytes: 256 << 20, compareWithGlibc: false))
        return r.allSatisfy { $0.events > 0 && ($0.firstFailure.map { $0.size > 4 << 20 } ?? true) }
    }

    @Test(
        "python3 (threads, a subprocess, a fork), sqlite3, gcc -c (cc1 too), git, sort: every trace parses and replays")
    func realPrograms() throws {
        let dir = Scratch("record-programs")
        defer { dir.remove() }
        let source = dir.file("t.c")
        try "int main(void) { return 0; }\n".write(toFile: source, atomically: true, encoding: .utf8)
        let big = try bigFile(in: dir, megabytes: 50)
        let python = """
            import threading, subprocess, sys, os
            ts = [threading.Thread(target=lambda: [bytearray(300) for _ in range(3000)]) for _ in range(8)]
            [t.start() for t in ts]; [t.join() for t in ts]
            subprocess.run([sys.executable, '-c', 'print(len([bytearray(100) for _ in range(1000)]))'])
            if os.fork() == 0:
                x = [bytearray(100) for _ in range(100)]
                os._exit(0)
            os.wait()
            """
        let cases: [(String, [String], [String])] = [
            // name, argv, programs whose traces must appear
            ("py", ["python3", "-c", python], ["python3"]),
            (
                "sqlite", ["sqlite3", ":memory:", "create table t(a); insert into t values (1); select * from t;"],
                ["sqlite3"]
            ),
            ("gcc", ["gcc", "-c", source, "-o", dir.file("t.o")], ["gcc", "cc1", "as"]),
            ("git", ["git", "init", "-q", dir.file("repo")], ["git"]),
            ("sort", ["sort", big, "-o", dir.file("sorted")], ["sort"]),
        ]
        for (name, argv, programs) in cases {
            let o = try nommu(["record", "-o", "\(name).trace", "--"] + argv, in: dir.path)
            #expect(o.status == 0, "\(name): \(o)")
            #expect(o.stderr.contains("nommu record: \(argv[0]) exited with 0"), "\(o)")
            let all = try traces(in: dir.path, matching: name + ".")
            #expect(all.contains { $0.0 == "\(name).trace" }, "the program's own trace keeps the name asked for")
            for p in programs {
                let t = all.filter { String(decoding: header($0.0, in: dir), as: UTF8.self).contains("program \(p)\n") }
                #expect(t.contains { $0.1.count > 100 }, "\(name): a trace of \(p) with its events: \(all.map(\.0))")
            }
            for (file, t) in all { #expect(try replays(t), "\(file) replays") }
        }
        // cc1's trace is the compiler's own work: thousands of events.
        let cc1 = try traces(in: dir.path, matching: "gcc.cc1.")
        #expect(cc1.count == 1 && cc1[0].1.count > 2000, "\(cc1.map { ($0.0, $0.1.count) })")
        // Python's two children (the subprocess it execs, the child it forks): a trace each,
        // naming the program's own process as their parent.
        let py = try traces(in: dir.path, matching: "py.")
        let pids = py.map { idLine($0.0, in: dir) }
        let root = try #require(pids.first { $0.file == "py.trace" })
        let children = pids.filter { $0.ppid == root.pid && $0.program == "python3" }
        #expect(children.count == 2, "\(pids)")
    }

    /// A trace's `# pid N ppid M program NAME` line.
    func idLine(_ name: String, in dir: Scratch) -> (file: String, pid: Int, ppid: Int, program: String) {
        let text = String(decoding: header(name, in: dir), as: UTF8.self)
        let words = text.split(separator: "\n").dropFirst().first?.split(separator: " ").map(String.init) ?? []
        guard words.count >= 7 else { return (name, 0, 0, "") }
        return (name, Int(words[2]) ?? 0, Int(words[4]) ?? 0, words[6])
    }

    @Test("an 8-thread program and a threaded parent that forks 40 children: consistent traces, no hang")
    func threadsAndForks() throws {
        let dir = Scratch("record-threads")
        defer { dir.remove() }
        let o = try nommu(["record", "-o", "threads.trace", "--", Bin.workload, "threads", "8", "20000"], in: dir.path)
        #expect(o.status == 0, "\(o)")
        let t = try #require(try traces(in: dir.path, matching: "threads.").first)
        #expect(t.1.count >= 8 * 20000 && t.1.unknownFrees == 0)
        #expect(try replays(t.1))

        let f = try nommu(["record", "-o", "fork/", "--", Bin.workload, "fork", "4", "40"], in: dir.path, timeout: 180)
        #expect(f.status == 0 && f.stdout.contains("40 of 40 children exited 0"), "\(f)")
        let forked = try traces(in: dir.file("fork"), matching: "")
        #expect(forked.count == 41, "the parent and each child: \(forked.count)")
        for (file, t) in forked { #expect(try replays(t), "\(file) replays") }
    }

    @Test("a trace survives _exit, SIGSEGV and abort, and exec keeps the image before it")
    func endings() throws {
        let dir = Scratch("record-endings")
        defer { dir.remove() }
        for (how, signal) in [("_exit", nil), ("segv", SIGSEGV), ("abort", SIGABRT)] as [(String, Int32?)] {
            let o = try nommu(["record", "-o", "\(how).trace", "--", Bin.workload, "end", "5000", how], in: dir.path)
            if let signal {
                #expect(o.signal == signal || o.status == 128 + signal, "\(how): \(o)")
            } else {
                #expect(o.status == 0, "\(o)")
            }
            let t = try #require(try traces(in: dir.path, matching: "\(how).").first, "\(how): \(o)")
            #expect(t.1.count >= 5000, "\(how): \(t.1.count) events")
        }
        // A program that makes no call of its own still leaves a trace that parses.
        let none = try nommu(["record", "-o", "none.trace", "--", Bin.workload, "end", "0", "exit"], in: dir.path)
        #expect(none.status == 0, "\(none)")
        #expect(try traces(in: dir.path, matching: "none.").count == 1)
        // sh execs the program in place of itself: two images of one process, two traces.
        let o = try nommu(
            [
                "record", "-o", "exec.trace", "--", "sh", "-c",
                "\(Bin.workload) end 3000 exit; exec \(Bin.workload) end 2000 exit",
            ],
            in: dir.path)
        #expect(o.status == 0, "\(o)")
        let all = try traces(in: dir.path, matching: "exec.")
        #expect(
            all.first { $0.0 == "exec.trace" }.map { $0.1.count >= 2000 } == true, "the last image is the program's")
        #expect(all.filter { $0.1.count >= 2000 }.count == 2, "\(all.map { ($0.0, $0.1.count) })")
    }

    /// The first lines of a file.
    func header(_ name: String, in dir: Scratch) -> [UInt8] {
        let data = FileManager.default.contents(atPath: dir.file(name)) ?? Data()
        return [UInt8](data.prefix(200))
    }
}

@Suite("nommu run and nommu record: options and bad input", .enabled(if: programsRun))
struct LauncherTests {
    @Test("--help and -h on both; unknown options refused; -- separates the program")
    func options() throws {
        let dir = Scratch("options")
        defer { dir.remove() }
        for (sub, flag) in [("run", "--help"), ("run", "-h"), ("record", "--help"), ("record", "-h")] {
            let o = try nommu([sub, flag])
            #expect(o.status == 0 && o.stdout.contains("USAGE: nommu \(sub)"), "\(sub) \(flag): \(o)")
        }
        for sub in ["run", "record"] {
            let o = try nommu([sub, "--bogus", "--", "true"])
            #expect(o.status != 0 && o.stderr.contains("unknown option '--bogus'"), "\(o)")
            let none = try nommu([sub])
            #expect(none.status != 0 && none.stderr.contains("give the program to run"), "\(none)")
            let dashed = try nommu([sub, "--", "sh", "-c", "echo $0 $1", "--help", "-x"], in: dir.path)
            #expect(
                dashed.status == 0 && dashed.stdout.contains("--help -x"),
                "options after -- are the program's: \(dashed)")
        }
    }

    @Test(
        "missing, not executable, killed by a signal, too small an arena, an unwritable report: one line, the right status"
    )
    func badInput() throws {
        let dir = Scratch("launcher")
        defer { dir.remove() }
        let plain = dir.file("plain")
        _ = FileManager.default.createFile(atPath: plain, contents: Data("x".utf8))
        let mark = dir.file("mark")
        for sub in ["run", "record"] {
            let missing = try nommu([sub, "--", dir.file("nosuch")], in: dir.path)
            #expect(missing.status == 127 && missing.stderr.contains("cannot run"), "\(missing)")
            let notExec = try nommu([sub, "--", plain], in: dir.path)
            #expect(notExec.status == 126 && notExec.stderr.contains("Permission denied"), "\(notExec)")
            let killed = try nommu([sub, "--", "sh", "-c", "kill -TERM $$"], in: dir.path)
            #expect(killed.signal == SIGTERM || killed.status == 128 + SIGTERM, "\(killed)")
            #expect(killed.stderr.contains("was killed by SIGTERM"), "\(killed)")
            // A static program: LD_PRELOAD cannot reach it, and nommu says so.
            let unreached = try nommu([sub, "--", "/sbin/ldconfig", "--version"], in: dir.path)
            #expect(unreached.stderr.contains("static or setuid"), "\(unreached)")
        }
        let small = try nommu(["run", "--arena", "16K", "--", "touch", mark], in: dir.path)
        #expect(small.status == 2 && small.stderr.contains("too small to start"), "\(small)")
        let report = try nommu(["run", "--report", "/proc/nope/r.json", "--", "touch", mark], in: dir.path)
        #expect(report.status == 2 && report.stderr.contains("cannot write the report /proc/nope/r.json"), "\(report)")
        let trace = try nommu(["record", "-o", "/proc/nope/t.trace", "--", "touch", mark], in: dir.path)
        #expect(trace.status == 2 && trace.stderr.contains("cannot write the trace"), "\(trace)")
        #expect(!FileManager.default.fileExists(atPath: mark), "the program never ran")
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        // Nothing left behind: the plain file, and the trace of the one program that ran (sh).
        #expect(left == ["nommu.trace", "plain"], "\(left)")
    }

    @Test("a nommu binary without its libraries beside it names the one command that builds them")
    func librariesNotBeside() throws {
        let dir = Scratch("lonely")
        defer { dir.remove() }
        let copy = dir.file("nommu")
        try FileManager.default.copyItem(atPath: Bin.nommu, toPath: copy)
        chmod(copy, 0o755)
        // (A thread of the test runner forking meanwhile may hold the new file open for a
        // moment: its exec then fails with ETXTBSY.)
        var o = try execute([copy, "run", "--", "true"])
        for _ in 0..<20 where o.status == 126 {
            usleep(100_000)
            o = try execute([copy, "run", "--", "true"])
        }
        #expect(o.status == 125, "\(o)")
        #expect(o.stderr.contains("libnommu-run.so is not beside") && o.stderr.contains("--product nommu-run"), "\(o)")
    }
}
