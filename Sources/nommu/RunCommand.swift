// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import NommuBase
import NommuHost
import NommuBench
import NommuMM
import NommuMalloc

#if canImport(Glibc)
    import Glibc
#endif

/// `nommu run`: an unmodified program with its heap on the no-MMU model.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a program with its heap (malloc, free, calloc, realloc, memalign, …) served by a nommu system.",
        discussion: """
            libnommu-run.so is preloaded; every process the program starts gets a machine of its own (the
            arena) and reports when it ends: calls, time in the model, peaks, the allocator at the peak, the
            first allocation that did not fit with its call stack, and the allocation sites that held the
            most. A program that does not fit gets ENOMEM, as on a no-MMU board. The reports go to stderr
            after the program ends; --report writes them as JSON. Exit status: the program's (a program
            killed by a signal is passed on as that signal); 125 when nommu cannot start it, 126 when it
            cannot be executed, 127 when it is not found, 2 when the report cannot be written.
            Example: nommu run --arena 8M -- sqlite3 :memory: "select 6*7"
            """
    )

    @Option(name: .customLong("malloc"), help: "simple (a mapping per block) or heap (areas with free lists).")
    var policy: String = "heap"

    @Option(help: "Memory of each process's machine, e.g. 8M (K/M/G suffixes).")
    var arena: String = defaultArena

    @Option(help: "The buddy allocator's largest order: runs of up to 2^N pages (the kernel's default, 10, is 4 MiB).")
    var maxOrder: Int = 10

    @Option(help: "vm.nr_trim_pages.")
    var trim: Int = 1

    @Flag(help: "The malloc passes MAP_UNINITIALIZED for malloc (never calloc).")
    var uninitialized = false

    @Flag(help: "The system honours MAP_UNINITIALIZED.")
    var allowUninitialized = false

    @Option(help: "Allocation sites shown per process (0: sites are not tracked, which saves time).")
    var sites: Int = 10

    @Option(
        help: """
            heap: heaps the malloc spreads threads over, each with its own lock (glibc's arenas; \
            1 is uClibc's one heap, whose free memory every thread shares).
            """)
    var heaps: Int = Malloc.Configuration.defaultHeaps

    @Option(help: "Also write the reports, with the settings, as JSON to this file.")
    var report: String?

    @Flag(help: "One report for the whole process tree too: a total row and the sites of all processes merged.")
    var combine = false

    @Flag(name: [.short, .long], help: "Print no report (--report still writes one).")
    var quiet = false

    @Argument(parsing: .captureForPassthrough, help: "The program and its arguments (after --).")
    var command: [String] = []

    func validate() throws {
        _ = try Launcher.program(command, of: self)
        guard Malloc.Policy(rawValue: policy) != nil else { throw ValidationError("--malloc is simple or heap") }
        guard trim >= 0 else { throw ValidationError("--trim must be at least 0") }
        guard sites >= 0 else { throw ValidationError("--sites must be at least 0") }
        guard maxOrder >= 0, maxOrder <= RunSettings.maxMaxOrder else {
            throw ValidationError("--max-order must be from 0 to \(RunSettings.maxMaxOrder)")
        }
        guard heaps >= 1, heaps <= Malloc.Configuration.maxHeaps else {
            throw ValidationError("--heaps must be from 1 to \(Malloc.Configuration.maxHeaps)")
        }
        do { _ = try parseSize(arena) } catch { throw ValidationError("--arena: \(error)") }
    }

    func run() throws {
        let argv = try Launcher.program(command, of: self)
        let bytes = (try? parseSize(arena)) ?? 0
        var end = Launcher.Termination.exited(0)
        try reporting("run") {
            end = try run(argv, arenaBytes: bytes)
        }
        try Launcher.passThrough(end)
    }

    /// The settings of this command.
    func settings(arenaBytes: Int) -> RunSettings {
        var s = RunSettings()
        s.arenaBytes = arenaBytes
        s.policy = Malloc.Policy(rawValue: policy) ?? .heap
        s.trim = trim
        s.maxOrder = maxOrder
        s.uninitialized = uninitialized
        s.allowUninitialized = allowUninitialized
        s.sites = sites
        s.heaps = heaps
        s.hostDirectory = NSTemporaryDirectory()
        return s
    }

    /// Runs the program and reports; returns how it ended.
    func run(_ argv: [String], arenaBytes: Int) throws -> Launcher.Termination {
        // The machine each process gets, made here first: one that cannot start is said now.
        let settings = settings(arenaBytes: arenaBytes)
        guard arenaBytes >= settings.smallestArena else {
            let first = settings.smallestArena >> 10
            throw CommandFailure(
                text: "--arena \(arena) is too small to start: the \(policy) malloc's first mapping is "
                    + "\(first) KiB (give at least --arena \(first)K)",
                status: 2)
        }
        do { _ = try settings.start() } catch {
            throw CommandFailure(text: "--arena \(arena): the model cannot start: \(error.description)", status: 2)
        }
        if let report { try checkWritable(report) }
        let library = try Launcher.built("libnommu-run.so", product: "nommu-run")
        let gathered = try temporaryFile("nommu-run-report")
        defer { unlink(gathered) }
        var env = settings.environment(preloading: library, into: ProcessInfo.processInfo.environment)
        env["NOMMU_RUN_REPORT"] = gathered
        let t0 = DispatchTime.now().uptimeNanoseconds
        let end = try Launcher.spawnAndWait(argv, environment: env)
        let wallMs = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6

        var (reports, malformed) = Self.read(gathered)
        // Names for the sites and the failure's frames only where something prints them (the
        // symbolizer is a process per module: 0.1 s each here).
        if !quiet || report != nil { Symbolizer.fill(&reports) }
        let program = URL(fileURLWithPath: argv[0]).lastPathComponent
        var out = ""
        if !quiet && !reports.isEmpty { out += RunReport.text(reports, total: combine, sites: sites) + "\n" }
        if reports.isEmpty {
            out += "nommu run: no process reported: \(program) does not load libnommu-run.so (a static or setuid "
            out += "program, or one that clears LD_PRELOAD)\n"
        }
        if malformed > 0 { out += "nommu run: \(malformed) reports were cut short and left out\n" }
        let failed = reports.reduce(0) { $0 + $1.failures }
        if case .exited(0) = end {
        } else {
            out += "nommu run: \(program) \(end.phrase)"
            if failed > 0 { out += " after \(failed) allocation\(failed == 1 ? "" : "s") did not fit (see above)" }
            out += "\n"
        }
        FileHandle.standardError.write(Data(out.utf8))
        if let report {
            let doc = document(argv, reports: reports, end: end, wallMs: wallMs, arenaBytes: arenaBytes)
            guard FileManager.default.createFile(atPath: report, contents: Data(doc.utf8)) else {
                throw CommandFailure(
                    text: "cannot write the report \(report): \(Errno.current.description)", status: 2)
            }
        }
        return end
    }

    /// The reports gathered (the last of each process image, in the order they started), and
    /// how many lines did not decode.
    static func read(_ path: String) -> ([RunReport], Int) {
        guard let data = FileManager.default.contents(atPath: path) else { return ([], 0) }
        var byImage: [String: RunReport] = [:]
        var malformed = 0
        let decoder = JSONDecoder()
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            guard let r = try? decoder.decode(RunReport.self, from: Data(line)) else {
                malformed += 1
                continue
            }
            byImage["\(r.pid)/\(r.startedNs)"] = r
        }
        return (byImage.values.sorted { ($0.startedNs, $0.pid) < ($1.startedNs, $1.pid) }, malformed)
    }

    /// The JSON document of `--report`: the tool, the settings, the machine, the command, how
    /// the program ended, a result per process image, and the total when asked for.
    func document(_ argv: [String], reports: [RunReport], end: Launcher.Termination, wallMs: Double, arenaBytes: Int)
        -> String
    {
        var exit = "{\"status\": null, \"signal\": null}"
        switch end {
        case .exited(let s): exit = "{\"status\": \(s), \"signal\": null}"
        case .signaled(let s): exit = "{\"status\": null, \"signal\": \(s)}"
        }
        var out = documentHead(tool: "nommu run", settings: settings(arenaBytes: arenaBytes).json)
        out += "  \"command\": [" + argv.map(jsonString).joined(separator: ", ") + "],\n"
        out += "  \"exit\": \(exit),\n  \"wall_ms\": \(String(format: "%.2f", wallMs)),\n"
        out += "  \"results\": [\n" + reports.map { "    " + $0.json() }.joined(separator: ",\n") + "\n  ]"
        if combine && !reports.isEmpty { out += ",\n  \"total\": " + RunReport.combined(reports).json() }
        return out + "\n}\n"
    }

    /// Refuses a report path that cannot be written, before the program runs: the file is
    /// opened for writing (and removed again when this made it), so nothing is left behind.
    func checkWritable(_ path: String) throws {
        var fd = open(path, O_WRONLY | O_CLOEXEC)
        var made = false
        if fd < 0 && Errno.current == .noSuchFileOrDirectory {
            fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            made = fd >= 0
        }
        guard fd >= 0 else {
            throw CommandFailure(
                text: "cannot write the report \(path): \(Errno.current.description)", status: 2)
        }
        close(fd)
        if made { unlink(path) }
    }
}
