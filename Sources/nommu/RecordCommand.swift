// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import NommuBase
import NommuHost
import NommuMalloc

#if canImport(Glibc)
    import Glibc
#endif

/// `nommu record`: traces of a real program's heap calls, one per process.
struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Run a program with libnommu-record preloaded and write its heap calls as nommu-trace v1 files.",
        discussion: """
            Every process image the program starts gets a trace of its own. With --output FILE the program's
            own process writes FILE and each other one FILE's stem.NAME.PID.trace (gcc.trace, gcc.cc1.4242.trace,
            …); with --output DIR/ each writes DIR/NAME.PID.trace; %p (pid) and %e (name) in --output make the
            names yourself. A trace is written at exit, _exit, exec and SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGABRT;
            each is checked to parse. Exit status: the program's, or 2 when a trace could not be written.
            Example: nommu record --output gcc.trace -- gcc -c hello.c
            """
    )

    @Option(name: [.short, .long], help: "The trace file (or DIR/, or a name with %p and %e).")
    var output: String = "nommu.trace"

    @Flag(name: [.short, .long], help: "Print nothing but errors.")
    var quiet = false

    @Argument(parsing: .captureForPassthrough, help: "The program and its arguments (after --).")
    var command: [String] = []

    func validate() throws { _ = try Launcher.program(command, of: self) }

    func run() throws {
        let argv = try Launcher.program(command, of: self)
        var end = Launcher.Termination.exited(0)
        try reporting("record") { end = try record(argv) }
        try Launcher.passThrough(end)
    }

    /// Where the traces go.
    enum Layout {
        /// The program's own process writes this file; the others write beside it.
        case file(String)
        /// Every process writes a name made from this pattern.
        case pattern(String)
    }

    /// One trace written.
    struct Written {
        var pid: Int
        var ppid: Int
        var name: String
        var path: String
    }

    /// Records; returns how the program ended. - Throws: `ExitCode(2)` when a trace is missing
    /// or broken, a `CommandFailure` when the program cannot be run or the traces written.
    func record(_ argv: [String]) throws -> Launcher.Termination {
        let library = try Launcher.built("libnommu-record.so", product: "nommu-record")
        let layout: Layout
        var scratch: String? = nil
        var isDirectory: ObjCBool = false
        if output.hasSuffix("/")
            || (FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory) && isDirectory.boolValue)
        {
            do {
                try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            } catch {
                throw CommandFailure(
                    text: "cannot make the directory \(output): \(error.localizedDescription)", status: 2)
            }
            layout = .pattern(URL(fileURLWithPath: output).appendingPathComponent("%e.%p.trace").path)
        } else if output.contains("%p") || output.contains("%e") {
            layout = .pattern(URL(fileURLWithPath: output).path)
        } else {
            layout = .file(URL(fileURLWithPath: output).path)
        }
        let pattern: String
        switch layout {
        case .file(let path):
            let dir = try Launcher.scratchDirectory(beside: path, what: "the trace")
            scratch = dir
            pattern = dir + "/%e.%p.trace"
        case .pattern(let p):
            pattern = p
            let dir = URL(fileURLWithPath: p).deletingLastPathComponent().path
            guard access(dir, W_OK) == 0 else {
                throw CommandFailure(
                    text: "cannot write traces in \(dir): \(Errno.current.description)", status: 2)
            }
        }
        let index = try temporaryFile("nommu-record-index")
        defer {
            unlink(index)
            if let scratch { try? FileManager.default.removeItem(atPath: scratch) }
        }
        var env = Launcher.environment(preloading: library)
        env["NOMMU_TRACE_FILE"] = pattern
        env["NOMMU_TRACE_INDEX"] = index
        let end = try Launcher.spawnAndWait(argv, environment: env)

        // What the index says: traces opened, traces that could not be written.
        var written: [Written] = []
        var failures: [String] = []
        let text = (try? String(contentsOfFile: index, encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "\t", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
            guard f.count == 5, let a = Int(f[1]), let b = Int(f[2]) else { continue }
            if f[0] == "open" {
                written.append(Written(pid: a, ppid: b, name: f[3], path: f[4]))
            } else if f[0] == "fail" {
                failures.append("\(f[3]) (pid \(a)) could not write \(f[4]): \(String(cString: strerror(Int32(b))))")
            }
        }
        if case .file(let path) = layout {
            written = place(written, at: path)
            if let i = written.firstIndex(where: { $0.path == path }) { written.insert(written.remove(at: i), at: 0) }
        }
        var lines: [[String]] = []
        for w in written {
            let name = "\(w.name) (pid \(w.pid))"
            guard let bytes = FileManager.default.contents(atPath: w.path) else {
                failures.append("\(name): \(w.path) is missing")
                continue
            }
            do {
                let t = try Trace.parse(name: w.path, [UInt8](bytes))
                var note = ""
                if t.unknownFrees > 0 { note = "\(t.unknownFrees) frees of blocks from before (a forked child)" }
                lines.append([displayPath(w.path), name, "\(t.count) events", note])
            } catch {
                failures.append("\(name): \(w.path) does not parse: \(error)")
            }
        }
        let program = URL(fileURLWithPath: argv[0]).lastPathComponent
        if written.isEmpty && failures.isEmpty {
            failures.append(
                "no process wrote a trace: \(program) does not load the recorder (a static or setuid program, "
                    + "or one that clears LD_PRELOAD)")
        }
        if !quiet || !failures.isEmpty {
            var out = "nommu record: \(program) \(end.phrase); \(lines.count) trace\(lines.count == 1 ? "" : "s")\n"
            if !lines.isEmpty {
                // The program's own trace first, then the others by events (at most 20 in all).
                let shown =
                    lines.count <= 20
                    ? lines : [lines[0]] + lines.dropFirst().sorted { events($0) > events($1) }.prefix(19)
                let rows = shown.map { [$0[0], $0[1], $0[2]] + ($0[3].isEmpty ? [] : [$0[3]]) }
                out += alignedTable(rows: rows, allLeft: true).split(separator: "\n").map { "  " + $0 + "\n" }.joined()
                if shown.count < lines.count { out += "  (\(lines.count - shown.count) more, with fewer events)\n" }
            }
            for f in failures { out += "nommu record: \(f)\n" }
            FileHandle.standardError.write(Data(out.utf8))
        }
        if !failures.isEmpty { throw ExitCode(2) }
        return end
    }

    /// The traces moved from the scratch directory into place: the program's own process
    /// (the one started here) in its last image (a wrapper such as `env` or a shell's `exec`
    /// hands the process on) to `path`, every other image beside it as STEM.NAME.PID.trace.
    func place(_ written: [Written], at path: String) -> [Written] {
        let stem = path.hasSuffix(".trace") ? String(path.dropLast(6)) : path
        let rootPid = written.first { $0.ppid == Int(getpid()) }?.pid
        let root = written.lastIndex { $0.pid == rootPid }
        return written.indices.map { i in
            var w = written[i]
            let target = i == root ? path : stem + "." + URL(fileURLWithPath: w.path).lastPathComponent
            if rename(w.path, target) == 0 { w.path = target }
            return w
        }
    }

    /// The event count of a summary line.
    func events(_ line: [String]) -> Int { Int(line[2].split(separator: " ")[0]) ?? 0 }

    /// A path as the user gave it: relative to the working directory when it lies below it.
    func displayPath(_ path: String) -> String {
        let cwd = FileManager.default.currentDirectoryPath + "/"
        return path.hasPrefix(cwd) ? String(path.dropFirst(cwd.count)) : path
    }
}

/// A new empty file in the temporary directory. - Throws: a `CommandFailure` (2).
func temporaryFile(_ prefix: String) throws -> String {
    let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
    var template = Array((base + "/\(prefix)-XXXXXX").utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard fd >= 0 else {
        throw CommandFailure(text: "cannot make a file in \(base): \(Errno.current.description)", status: 2)
    }
    close(fd)
    return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
