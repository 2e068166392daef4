// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import NommuBench

#if canImport(Glibc)
    import Glibc
#endif

/// `nommu run`: an unmodified program with its heap on the no-MMU model.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a program with its heap (malloc, free, calloc, realloc, memalign, …) served by a nommu system.",
        discussion: """
            libnommu-run.so is preloaded; every process the program starts gets its own system and
            reports at exit. A program that does not fit gets ENOMEM, as on a no-MMU board.
            Example: nommu run --arena 8M -- sqlite3 :memory: "select 1"
            """
    )

    @Option(name: .customLong("malloc"), help: "simple (a mapping per block) or heap (areas with free lists).")
    var policy: String = "heap"

    @Option(help: "Memory of each process's machine, e.g. 8M.")
    var arena: String = "256M"

    @Option(help: "vm.nr_trim_pages.")
    var trim: Int = 1

    @Flag(help: "The malloc passes MAP_UNINITIALIZED for malloc (never calloc).")
    var uninitialized = false

    @Flag(help: "The system honours MAP_UNINITIALIZED.")
    var allowUninitialized = false

    @Argument(parsing: .captureForPassthrough, help: "The program and its arguments (after --).")
    var command: [String]

    func run() throws {
        let argv = try RecordCommand.program(command)
        guard policy == "heap" || policy == "simple" else { throw ValidationError("--malloc is simple or heap") }
        guard trim >= 0 else { throw ValidationError("--trim must be at least 0") }
        let bytes: Int
        do { bytes = try parseSize(arena) } catch { throw ValidationError("--arena: \(error)") }
        var env = try RecordCommand.environment(preloading: "libnommu-run.so")
        let report = FileManager.default.temporaryDirectory.appendingPathComponent("nommu-run-\(getpid()).txt").path
        env["NOMMU_RUN_ARENA"] = String(bytes)
        env["NOMMU_RUN_MALLOC"] = policy
        env["NOMMU_RUN_TRIM"] = String(trim)
        env["NOMMU_RUN_UNINITIALIZED"] = uninitialized ? "1" : "0"
        env["NOMMU_RUN_ALLOW_UNINITIALIZED"] = allowUninitialized ? "1" : "0"
        env["NOMMU_RUN_REPORT"] = report
        let status = try RecordCommand.spawn(argv, environment: env)
        if let text = try? String(contentsOfFile: report, encoding: .utf8) {
            FileHandle.standardError.write(Data(text.utf8))
            try? FileManager.default.removeItem(atPath: report)
        }
        if status != 0 { throw ExitCode(status) }
    }
}
