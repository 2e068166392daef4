// SPDX-License-Identifier: Apache-2.0
//
// Running `nommu` as its users do: the executables of one build configuration, started as
// processes. NOMMU_BIN_DIR names the directory (CI points it at the release build); without
// it, the directory of this test bundle (the configuration `swift test` built).
import Foundation
import NommuBase
import NommuHost
import NommuMalloc

#if canImport(Glibc)
    import Glibc
#endif

enum Bin {
    static let directory: String = {
        if let d = ProcessInfo.processInfo.environment["NOMMU_BIN_DIR"], !d.isEmpty { return d }
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, 4095)
        let exe = String(decoding: buf[0..<max(0, n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return URL(fileURLWithPath: exe).deletingLastPathComponent().path
    }()
    static var nommu: String { directory + "/nommu" }
    static var workload: String { directory + "/nommu-workload" }

    /// A sanitizer-instrumented library cannot be preloaded into an ordinary program.
    static var sanitized: Bool {
        dlsym(nil, "__tsan_init") != nil || dlsym(nil, "__asan_init") != nil
    }

    /// Whether this build checks the model's invariants after every change (programs run slowly).
    static var checked: Bool {
        ProcessInfo.processInfo.environment["NOMMU_EXPECT_CHECKS"].map { $0 != "none" } ?? false
    }
}

/// How a process ended, and what it printed.
struct Outcome: CustomStringConvertible {
    /// The exit status, or nil when a signal ended it.
    var status: Int32?
    var signal: Int32?
    var stdout: String
    var stderr: String

    var description: String {
        "status \(status.map(String.init) ?? "-") signal \(signal.map(String.init) ?? "-")\n"
            + "stdout: \(stdout.suffix(1500))\nstderr: \(stderr.suffix(3000))"
    }
}

/// A fresh directory for one test, removed by `remove()`.
struct Scratch {
    let path: String

    init(_ name: String) {
        path = NSTemporaryDirectory() + "nommu-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }
}

/// Runs `argv` (PATH searched) in `directory`, killed after `timeout` seconds (coreutils'
/// timeout, which passes on the program's end), with `environment` added to this process's
/// and LD_PRELOAD removed. It starts as from a shell: no signal blocked or ignored (the test
/// runner's threads block some, and a child inherits its parent thread's mask).
func execute(
    _ argv: [String], in directory: String? = nil, environment: [String: String] = [:], timeout: Int = 300
) throws -> Outcome {
    let out = NSTemporaryDirectory() + "nommu-out-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    defer {
        unlink(out + ".1")
        unlink(out + ".2")
    }
    var env = ProcessInfo.processInfo.environment
    env["LD_PRELOAD"] = nil
    for (k, v) in environment { env[k] = v }
    var command = ["/usr/bin/timeout", "-k", "10", String(timeout)] + argv
    if let directory { command = ["/usr/bin/env", "-C", directory] + command }
    let pid = try spawnProgram(
        command, environment: env, stdout: out + ".1", stderr: out + ".2", unblockSignals: true)
    let end = waitForProgram(pid)
    let stdout = String(decoding: FileManager.default.contents(atPath: out + ".1") ?? Data(), as: UTF8.self)
    let stderr = String(decoding: FileManager.default.contents(atPath: out + ".2") ?? Data(), as: UTF8.self)
    switch end {
    case .signaled(let s): return Outcome(status: nil, signal: s, stdout: stdout, stderr: stderr)
    case .exited(let s): return Outcome(status: s, signal: nil, stdout: stdout, stderr: stderr)
    }
}

/// `nommu ARGS…`.
func nommu(_ arguments: [String], in directory: String? = nil, timeout: Int = 300) throws -> Outcome {
    try execute([Bin.nommu] + arguments, in: directory, timeout: timeout)
}

/// The `results` of a `nommu run --report` document.
struct RunDocument: Decodable {
    struct Exit: Decodable {
        var status: Int?
        var signal: Int?
    }
    struct Settings: Decodable {
        var heaps: Int
    }
    var tool: String
    var command: [String]
    var settings: Settings
    var exit: Exit
    var results: [RunReport]
    var total: RunReport?

    static func read(_ path: String) throws -> RunDocument {
        try JSONDecoder().decode(RunDocument.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

/// The traces `nommu record` listed, parsed.
func traces(in directory: String, matching prefix: String) throws -> [(String, Trace)] {
    let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter {
        $0.hasPrefix(prefix) && $0.hasSuffix(".trace")
    }.sorted()
    return try names.map { name in
        let bytes = [UInt8](FileManager.default.contents(atPath: directory + "/" + name) ?? Data())
        return (name, try Trace.parse(name: name, bytes))
    }
}

/// A file of random lines.
func bigFile(in dir: Scratch, megabytes: Int) throws -> String {
    let path = dir.file("big.txt")
    var text = [UInt8]()
    text.reserveCapacity(megabytes << 20 + 200)
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    let hex = Array("0123456789abcdef".utf8)
    while text.count < megabytes << 20 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        for i in 0..<16 { text.append(hex[Int((state >> (4 * UInt64(i))) & 15)]) }
        text.append(UInt8(ascii: " "))
        text += [UInt8](repeating: UInt8(ascii: "x"), count: Int(state % 60))
        text.append(UInt8(ascii: "\n"))
    }
    try Data(text).write(to: URL(fileURLWithPath: path))
    return path
}
