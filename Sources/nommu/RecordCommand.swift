// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `nommu record`: a trace of a real program's heap calls.
struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Run a program with libnommu-record preloaded and write its heap calls as a nommu-trace v1 file.",
        discussion: "Example: nommu record --output ls.trace -- ls -l /usr/bin"
    )

    @Option(help: "The trace file to write.")
    var output: String = "nommu.trace"

    @Argument(parsing: .captureForPassthrough, help: "The program and its arguments (after --).")
    var command: [String]

    func run() throws {
        let argv = try Self.program(command)
        var env = try Self.environment(preloading: "libnommu-record.so")
        env["NOMMU_TRACE_FILE"] = URL(fileURLWithPath: output).path
        let status = try Self.spawn(argv, environment: env)
        let lines = (try? String(contentsOfFile: output, encoding: .utf8))?.split(separator: "\n").count ?? 0
        FileHandle.standardError.write(
            Data("nommu record: \(argv[0]) exited with \(status); \(lines - 1) events in \(output)\n".utf8))
        if status != 0 { throw ExitCode(status) }
    }

    /// The program and its arguments, from what follows `--`.
    static func program(_ command: [String]) throws -> [String] {
        let argv = command.first == "--" ? Array(command.dropFirst()) : command
        guard !argv.isEmpty else { throw ValidationError("give the program to run after --") }
        return argv
    }

    /// This process's environment with the library `name` (built next to this executable)
    /// first in `LD_PRELOAD`.
    static func environment(preloading name: String) throws -> [String: String] {
        let library = try library(name)
        var env = ProcessInfo.processInfo.environment
        env["LD_PRELOAD"] = library + (env["LD_PRELOAD"].map { ":" + $0 } ?? "")
        return env
    }

    /// A library built next to this executable.
    static func library(_ name: String) throws -> String {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let here = exe.deletingLastPathComponent().appendingPathComponent(name).path
        if FileManager.default.fileExists(atPath: here) { return here }
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        for config in ["release", "debug"] {
            let p = cwd.appendingPathComponent(".build/\(config)/\(name)").path
            if FileManager.default.fileExists(atPath: p) { return p }
        }
        throw ValidationError("\(name) not found next to \(exe.path); build it with swift build --product nommu-record")
    }

    /// Runs `argv` with `environment` (PATH is searched) and returns its exit status.
    static func spawn(_ argv: [String], environment: [String: String]) throws -> Int32 {
        var pid = pid_t()
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in cArgs { free(p) }
            for p in cEnv { free(p) }
        }
        let rc = posix_spawnp(&pid, argv[0], nil, nil, cArgs, cEnv)
        guard rc == 0 else { throw ValidationError("cannot run \(argv[0]): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if status & 0x7f != 0 { return 128 + (status & 0x7f) }
        return (status >> 8) & 0xff
    }
}
