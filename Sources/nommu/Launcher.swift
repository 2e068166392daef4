// SPDX-License-Identifier: Apache-2.0
//
// What `nommu record` and `nommu run` share: the program after `--`, the preload libraries
// (found beside this executable, in the same build configuration, and built there when they
// are missing), starting the program and passing its end through.
import ArgumentParser
import Foundation
import NommuBase
import NommuBench
import NommuHost

#if canImport(Glibc)
    import Glibc
#endif

/// A one-line failure of a command: printed as `nommu NAME: text`, and the exit status.
/// The memory of the machine when a command is not told (`--arena`): the same for `nommu run`,
/// `nommu replay` and `nommu exec-map`, large enough for real programs (the library's own
/// default, `System.Configuration()`, is 64 MiB).
let defaultArena = "256M"

/// The start every nommu JSON document shares: `{`, then `tool`, `version`, `settings` (a JSON
/// object) and `machine` (the host's facts), each on a line of its own ending in a comma.
func documentHead(tool: String, settings: String) -> String {
    "{\n  \"tool\": \(jsonString(tool)),\n  \"version\": \(jsonString(NommuVersion.string)),\n"
        + "  \"settings\": \(settings),\n"
        + "  \"machine\": \(hostJSON(MachineInfo.current(for: BenchConfiguration()))),\n"
}

struct CommandFailure: Error, CustomStringConvertible {
    var text: String
    var status: Int32
    var description: String { text }
}

extension ProgramEnd {
    /// "exited with 0", "was killed by SIGSEGV (Segmentation fault)".
    var phrase: String {
        switch self {
        case .exited(let s): return "exited with \(s)"
        case .signaled(let s):
            return "was killed by \(Launcher.signalName(s)) (\(String(cString: strsignal(s))))"
        }
    }
}

extension ParsableCommand {
    /// Runs `body`, turning a `CommandFailure` into its line on stderr and its exit status.
    func reporting(_ name: String, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let f as CommandFailure {
            FileHandle.standardError.write(Data("nommu \(name): \(f.text)\n".utf8))
            throw ExitCode(f.status)
        }
    }
}

enum Launcher {
    /// Exit statuses of the launcher itself, as env(1) and the shells use them.
    static let cannotLaunch: Int32 = 125
    static let notExecutable: Int32 = 126
    static let notFound: Int32 = 127

    /// The program and its arguments from what the parser captured: `--` is dropped, `-h` and
    /// `--help` ask for `command`'s help, and any other option before the program is refused.
    static func program<C: ParsableCommand>(_ captured: [String], of command: C) throws -> [String] {
        if let first = captured.first, first != "--", first.hasPrefix("-") {
            if first == "-h" || first == "--help" { throw CleanExit.helpRequest(command) }
            throw ValidationError("unknown option '\(first)' (the program to run goes after --)")
        }
        let argv = captured.first == "--" ? Array(captured.dropFirst()) : captured
        guard !argv.isEmpty else { throw ValidationError("give the program to run after --") }
        return argv
    }

    /// This executable's directory, its build configuration (`debug` or `release`) and, when
    /// it lies in a SwiftPM build directory of this package, the package and scratch paths.
    struct BuildPlace {
        var directory: URL
        var configuration: String?
        var package: URL?
        var scratch: URL?

        static var current: BuildPlace {
            var buf = [CChar](repeating: 0, count: 4096)
            let n = readlink("/proc/self/exe", &buf, 4095)
            let exe =
                n > 0
                ? URL(fileURLWithPath: String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self))
                : URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            let dir = exe.deletingLastPathComponent()
            var place = BuildPlace(directory: dir)
            let config = dir.lastPathComponent
            guard config == "debug" || config == "release" else { return place }
            place.configuration = config
            // <package>/<scratch>/<triple>/<configuration>/nommu
            let scratch = dir.deletingLastPathComponent().deletingLastPathComponent()
            let package = scratch.deletingLastPathComponent()
            let manifest = package.appendingPathComponent("Package.swift").path
            if let text = try? String(contentsOfFile: manifest, encoding: .utf8), text.contains("name: \"nommu\"") {
                place.package = package
                place.scratch = scratch
            }
            return place
        }

        /// The command that builds `product` here.
        func buildCommand(_ product: String) -> [String] {
            var argv = ["swift", "build", "-c", configuration ?? "release", "--product", product]
            if let package, let scratch {
                argv += ["--package-path", package.path]
                if scratch.lastPathComponent != ".build" || scratch.deletingLastPathComponent() != package {
                    argv += ["--scratch-path", scratch.path]
                }
            }
            return argv
        }
    }

    /// A file of this package built beside this executable (a preload library or a helper
    /// program): when it is missing and this executable is a package build, it is built in the
    /// same configuration; otherwise the one command that builds it is named.
    static func built(_ file: String, product: String) throws -> String {
        let place = BuildPlace.current
        let path = place.directory.appendingPathComponent(file).path
        if FileManager.default.fileExists(atPath: path) { return path }
        let command = place.buildCommand(product)
        guard place.package != nil else {
            throw CommandFailure(
                text: "\(file) is not beside \(place.directory.path)/nommu; build it with: "
                    + command.joined(separator: " "),
                status: cannotLaunch)
        }
        FileHandle.standardError.write(Data("nommu: building \(file): \(command.joined(separator: " "))\n".utf8))
        let status: ProgramEnd
        do {
            status = waitForProgram(
                try spawnProgram(
                    ["/usr/bin/env"] + command, environment: ProcessInfo.processInfo.environment,
                    stdoutToStderr: true))
        } catch {
            throw CommandFailure(text: "cannot run swift build: \(error.description)", status: cannotLaunch)
        }
        guard status == .exited(0), FileManager.default.fileExists(atPath: path) else {
            throw CommandFailure(
                text: "could not build \(file) (\(command.joined(separator: " ")) ended with \(status))",
                status: cannotLaunch)
        }
        return path
    }

    /// This process's environment with `library` first in `LD_PRELOAD`.
    static func environment(preloading library: String) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["LD_PRELOAD"] = library + (env["LD_PRELOAD"].map { ":" + $0 } ?? "")
        return env
    }

    /// How a program ended.
    typealias Termination = ProgramEnd

    /// SIGSEGV, SIGINT, …: the usual name of a signal.
    static func signalName(_ s: Int32) -> String {
        let names: [Int32: String] = [
            SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP",
            SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGUSR1: "SIGUSR1",
            SIGSEGV: "SIGSEGV", SIGUSR2: "SIGUSR2", SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGTERM: "SIGTERM",
            SIGXCPU: "SIGXCPU", SIGXFSZ: "SIGXFSZ",
        ]
        return names[s] ?? "signal \(s)"
    }

    /// The child being waited for, so that SIGTERM and SIGHUP sent to nommu reach it.
    nonisolated(unsafe) static var child: pid_t = 0

    /// Runs `argv` (PATH is searched) with `environment` and waits for it. While it runs,
    /// SIGINT and SIGQUIT are ignored here (the terminal sends them to the program too) and
    /// SIGTERM and SIGHUP are passed on to it. - Throws: `CommandFailure` with 127 when the
    /// program is not found, 126 when it cannot be executed, 125 for any other failure.
    static func spawnAndWait(_ argv: [String], environment: [String: String]) throws -> Termination {
        let ignoredInt = signal(SIGINT, SIG_IGN)
        let ignoredQuit = signal(SIGQUIT, SIG_IGN)
        let passOn: @convention(c) (Int32) -> Void = { sig in if Launcher.child > 0 { kill(Launcher.child, sig) } }
        let oldTerm = signal(SIGTERM, passOn)
        let oldHup = signal(SIGHUP, passOn)
        defer {
            signal(SIGINT, ignoredInt)
            signal(SIGQUIT, ignoredQuit)
            signal(SIGTERM, oldTerm)
            signal(SIGHUP, oldHup)
            child = 0
        }
        do {
            child = try spawnProgram(argv, environment: environment)
        } catch {
            let text = "cannot run \(argv[0]): \(String(cString: strerror(error.rawValue)))"
            switch error {
            case .noSuchFileOrDirectory: throw CommandFailure(text: text, status: notFound)
            case .permissionDenied, .execFormatError, .isDirectory, .notPermitted:
                throw CommandFailure(text: text, status: notExecutable)
            default: throw CommandFailure(text: text, status: cannotLaunch)
            }
        }
        return waitForProgram(child)
    }

    /// Ends nommu as the program ended: with its exit status, or by its signal (without a
    /// core dump of nommu's own).
    static func passThrough(_ end: Termination) throws -> Never {
        switch end {
        case .exited(let s):
            throw ExitCode(s)
        case .signaled(let sig):
            var none = rlimit(rlim_cur: 0, rlim_max: 0)
            setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &none)
            signal(sig, SIG_DFL)
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, sig)
            sigprocmask(SIG_UNBLOCK, &set, nil)
            raise(sig)
            throw ExitCode(128 + sig)
        }
    }

    /// A fresh directory beside `path` (for files renamed into place). - Throws: a
    /// `CommandFailure` (2) saying why the directory cannot be written.
    static func scratchDirectory(beside path: String, what: String) throws -> String {
        let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var template = Array((parent + "/.nommu-XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw CommandFailure(text: "cannot write \(what) \(path): \(Errno.current.description)", status: 2)
        }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
