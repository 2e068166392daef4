// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing

/// The edges of a number, as a user can type them: where arithmetic on a caller's value
/// overflows.
let edgeValues = [
    "0", "1", "4095", "2147483647", "2147483648", "4294967295", "4294967296", "4294967297",
    "4611686018427387903", "4611686018427387904", "9223372036854775807", "9223372036854775808",
    "18446744073709551615", "-1", "-9223372036854775808", "16E", "8191P",
]

@Suite("The CLI: no value of any numeric option or trace field traps", .enabled(if: programsRun))
struct EdgeValueTests {
    /// Ended by a signal (a Swift trap is SIGILL or SIGTRAP, a fatal error SIGABRT)?
    func trapped(_ o: Outcome) -> Bool {
        o.signal != nil || [128 + SIGILL, 128 + SIGTRAP, 128 + SIGABRT, 128 + SIGSEGV].contains(o.status ?? 0)
    }

    @Test("nommu maps, replay, run and bench with every edge value in every numeric option")
    func options() throws {
        let dir = Scratch("edge-options")
        defer { dir.remove() }
        let trace = dir.file("t.trace")
        try "# nommu-trace v1\nm 1 100\np 2 64 5000\nr 1 3 300000\nf 2\nf 3\n".write(
            toFile: trace, atomically: true, encoding: .utf8)
        var ran = 0
        for v in edgeValues {
            var commands: [[String]] = [
                ["maps", "--trim", v],
                ["run", "--arena", v, "--", "/bin/true"],
                ["run", "--trim", v, "--", "/bin/true"],
                ["run", "--sites", v, "-q", "--", "/bin/true"],
                ["run", "--heaps", v, "-q", "--", "/bin/true"],
                ["run", "--max-order", v, "-q", "--", "/bin/true"],
                ["bench", "--quick", "--series", "alloc_uninit", "--sizes", v],
                ["exec-map", "--instances", v, "--arena", "16M", "/bin/true"],
                ["exec-map", "--arena", v, "/bin/true"],
            ]
            for option in [
                "--arena", "--trim", "--max-order", "--extend-size", "--mmap-threshold", "--unmap-threshold",
            ] {
                commands.append(["replay", trace, option, v])
            }
            for c in commands {
                let o = try nommu(c, in: dir.path, timeout: 120)
                ran += 1
                #expect(!trapped(o), "nommu \(c.joined(separator: " ")): \(o)")
            }
        }
        #expect(ran == edgeValues.count * 15)
    }

    @Test("nommu replay with every edge value in every field of every event kind")
    func traceFields() throws {
        let dir = Scratch("edge-trace")
        defer { dir.remove() }
        let shapes = [
            "m 1 V", "c 1 V 3", "c 1 3 V", "p 1 V 64", "p 1 64 V", "p 1 V V", "m 1 8\nr 1 2 V",
            "m V 8\nf V", "m 1 8\nr V 2 8", "f V",
        ]
        for v in edgeValues {
            for shape in shapes {
                let trace = dir.file("t.trace")
                try ("# nommu-trace v1\n" + shape.replacingOccurrences(of: "V", with: v) + "\n").write(
                    toFile: trace, atomically: true, encoding: .utf8)
                let o = try nommu(["replay", trace], in: dir.path, timeout: 60)
                #expect(!trapped(o), "\(shape) with \(v): \(o)")
            }
        }
    }
}
