// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing

/// Runs the C programs built from `Tests/CPrograms/` (SwiftPM builds them with the tests)
/// and checks they pass: the exact errno of each numbered row (numbered as in `NommuMMTests`),
/// out-parameters untouched on failure, through `nommu.h` as a C program calls it.
@Suite("C ABI: C programs against nommu.h")
struct CProgramTests {
    /// Where the programs are: `NOMMU_BIN_DIR` when set (CI points it at the release build,
    /// what users link against), else the build folder the test bundle runs from.
    static var binDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment["NOMMU_BIN_DIR"], !dir.isEmpty {
            return URL(fileURLWithPath: dir)
        }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }

    @Test(
        "abi-check: every row through nommu.h; abi-stress: 8 threads, 4 processes, futex ping-pong",
        arguments: ["nommu-abi-check", "nommu-abi-stress"])
    func run(program: String) throws {
        let (status, text) = try Self.run(program)
        #expect(status == 0, "\(text)")
        #expect(text.contains(" passed, 0 failed"), "\(text)")
    }

    /// Runs one of the built programs; its exit status and standard output.
    static func run(_ program: String, _ arguments: [String] = []) throws -> (status: Int32, output: String) {
        let exe = binDirectory.appendingPathComponent(program)
        try #require(
            FileManager.default.isExecutableFile(atPath: exe.path), "build it: swift build --product \(program)")
        let proc = Foundation.Process()
        proc.executableURL = exe
        proc.arguments = arguments
        let out = Pipe()
        proc.standardOutput = out
        try proc.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        proc.waitUntilExit()
        return (proc.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
