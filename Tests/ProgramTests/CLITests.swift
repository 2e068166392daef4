// SPDX-License-Identifier: Apache-2.0
//
// The command line's contract with scripts: exit 0 when everything fit or ran, 1 when a replay
// did not fit, 2 when a file cannot be read or written or a trace does not parse, 64 for a bad
// option; errors name the file and the reason, and a runtime error prints no usage text.
import Foundation
import Testing

@Suite("The CLI: exit status and error messages, as scripts see them")
struct CLITests {
    /// A trace with one 12,000,000-byte block: more than one run of max order 10 (4 MiB) holds.
    func bigTrace(_ dir: Scratch) throws -> String {
        let path = dir.file("big12.trace")
        try "# nommu-trace v1\nm 1 12000000\nf 1\n".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("a trace that cannot be read: 2, the path and the reason, no usage text")
    func unreadable() throws {
        let dir = Scratch("cli-unreadable")
        defer { dir.remove() }
        for (path, reason) in [(dir.file("missing.trace"), "No such file or directory"), (dir.path, "Is a directory")] {
            let o = try nommu(["replay", path])
            #expect(o.status == 2, "\(o)")
            #expect(o.stderr.contains("cannot read \(path): \(reason)"), "\(o)")
            #expect(!o.stderr.contains("Usage"), "\(o)")
        }
    }

    @Test("a malformed trace: 2, with the file and the line")
    func malformed() throws {
        let dir = Scratch("cli-malformed")
        defer { dir.remove() }
        let path = dir.file("bad.trace")
        try "# nommu-trace v1\nm 1 100\nx 2\n".write(toFile: path, atomically: true, encoding: .utf8)
        let o = try nommu(["replay", path])
        #expect(o.status == 2 && o.stderr.contains("\(path): line 3: unknown event 'x'"), "\(o)")
        #expect(!o.stderr.contains("Usage"), "\(o)")
    }

    @Test("a CR LF trace replays")
    func crlf() throws {
        let dir = Scratch("cli-crlf")
        defer { dir.remove() }
        let path = dir.file("crlf.trace")
        try "# nommu-trace v1\r\nm 1 16\r\nc 2 100\r\nf 1\r\nf 2\r\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        let o = try nommu(["replay", path])
        #expect(o.status == 0, "\(o)")
    }

    @Test("a replay that runs out of memory: 1, and says which trace")
    func didNotFit() throws {
        let dir = Scratch("cli-no-fit")
        defer { dir.remove() }
        let o = try nommu(["replay", try bigTrace(dir), "--arena", "4M"])
        #expect(o.status == 1, "\(o)")
        #expect(o.stderr.contains("big12 did not fit"), "\(o)")
    }

    @Test("--fit: 1 with the reason when no arena can fit, 0 with the size when one can; probes on stderr")
    func fit() throws {
        let dir = Scratch("cli-fit")
        defer { dir.remove() }
        let trace = try bigTrace(dir)
        let none = try nommu(["replay", trace, "--fit"])
        #expect(none.status == 1, "\(none)")
        #expect(none.stdout.contains("fits in no arena") && none.stdout.contains("--max-order 12"), "\(none)")
        let some = try nommu(["replay", trace, "--fit", "--max-order", "12"])
        #expect(some.status == 0, "\(some)")
        #expect(some.stdout.contains("--malloc heap --trim 1: 16384 KiB (4096 pages)"), "\(some)")
        #expect(some.stderr.contains("KiB: fits"), "\(some)")
    }

    @Test("--fit --format json: a row per configuration, with the arena or the reason; 1 when one does not fit")
    func fitJSON() throws {
        let dir = Scratch("cli-fit-json")
        defer { dir.remove() }
        let o = try nommu(["replay", try bigTrace(dir), "--fit", "--format", "json", "--trim", "0,1"])
        #expect(o.status == 1, "\(o)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(o.stdout.utf8)) as? [String: Any])
        #expect(
            doc["tool"] as? String == "nommu replay" && (doc["settings"] as? [String: Any])?["fit"] as? Bool == true)
        let rows = try #require(doc["results"] as? [[String: Any]])
        #expect(rows.count == 2 && rows.allSatisfy { $0["fits"] as? Bool == false })
        #expect((rows[0]["reason"] as? String)?.contains("--max-order 12") == true)
        let fits = try nommu(["replay", try bigTrace(dir), "--fit", "--format", "json", "--max-order", "12"])
        let one = try JSONSerialization.jsonObject(with: Data(fits.stdout.utf8)) as? [String: Any]
        let row = try #require((one?["results"] as? [[String: Any]])?.first)
        #expect(fits.status == 0 && row["arena_bytes"] as? Int == 16 << 20, "\(fits)")
    }

    @Test(
        "--fit refuses the options it would ignore: 64 (a usage error)",
        arguments: [
            ["--arena", "8M"], ["--output", "/tmp/x"], ["--format", "csv"],
        ])
    func fitRefuses(options: [String]) throws {
        let dir = Scratch("cli-fit-refuses")
        defer { dir.remove() }
        let o = try nommu(["replay", try bigTrace(dir), "--fit"] + options)
        #expect(o.status == 64 && o.stderr.contains("--fit"), "\(o)")
    }

    @Test("an output directory that cannot be written: 2 before anything runs", arguments: ["replay", "bench"])
    func unwritableOutput(command: String) throws {
        let dir = Scratch("cli-output")
        defer { dir.remove() }
        let file = dir.file("a-file")
        try "".write(toFile: file, atomically: true, encoding: .utf8)
        let args =
            command == "replay"
            ? ["replay", try bigTrace(dir), "--output", file + "/out"]
            : ["bench", "--quick", "--series", "alloc_uninit", "--sizes", "4K", "--output", file + "/out"]
        let o = try nommu(args)
        #expect(o.status == 2, "\(o)")
        #expect(o.stderr.contains("cannot write") && o.stderr.contains("Not a directory"), "\(o)")
        #expect(o.stdout.isEmpty, "nothing was measured or replayed: \(o)")
    }

    @Test("nommu maps --trim -1: a usage error naming the option, not a bare EINVAL")
    func mapsTrim() throws {
        let o = try nommu(["maps", "--trim=-1"])
        #expect(o.status == 64 && o.stderr.contains("--trim is vm.nr_trim_pages"), "\(o)")
        #expect(try nommu(["maps", "--trim", "0"]).status == 0)
    }

    @Test("every JSON document has one shape: tool, version, settings, machine, then results")
    func jsonShape() throws {
        let dir = Scratch("cli-json")
        defer { dir.remove() }
        let trace = dir.file("t.trace")
        try "# nommu-trace v1\nm 1 100\nc 2 5000\nf 1\nf 2\n".write(toFile: trace, atomically: true, encoding: .utf8)
        let report = dir.file("run.json")
        let outputs = [
            ("nommu replay", try nommu(["replay", trace, trace, "--format", "json"]).stdout),
            (
                "nommu bench",
                try nommu(["bench", "--quick", "--series", "alloc_uninit", "--sizes", "4K", "--format", "json"]).stdout
            ),
            (
                "nommu run",
                try { () throws -> String in
                    _ = try nommu(["run", "-q", "--report", report, "--", "/bin/true"])
                    return (try? String(contentsOfFile: report, encoding: .utf8)) ?? ""
                }()
            ),
        ]
        for (tool, text) in outputs {
            let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
            let doc = try #require(object, "\(tool): \(text.prefix(200))")
            #expect(doc["tool"] as? String == tool)
            #expect(doc["version"] as? String != nil && doc["settings"] is [String: Any], "\(tool)")
            #expect((doc["machine"] as? [String: Any])?["cpu_count"] is Int, "\(tool)")
            #expect(doc["results"] is [Any], "\(tool)")
        }
        let replay = try JSONSerialization.jsonObject(with: Data(outputs[0].1.utf8)) as? [String: Any]
        #expect((replay?["results"] as? [Any])?.count == 2, "two traces, two rows; the total apart")
        #expect((replay?["total"] as? [String: Any])?["trace"] as? String == "total")
    }

    @Test("bench --baseline: a saved run compared series by series; a missing one is 2 before any run")
    func benchBaseline() throws {
        let dir = Scratch("cli-baseline")
        defer { dir.remove() }
        let quick = ["bench", "--quick", "--series", "alloc_uninit", "--sizes", "4K"]
        #expect(try nommu(quick + ["--output", dir.path]).status == 0)
        let o = try nommu(quick + ["--samples", "3", "--warmup", "0", "--baseline", dir.file("bench.json")])
        #expect(o.status == 0 && o.stdout.contains("against the baseline") && o.stdout.contains("alloc_uninit"), "\(o)")
        let missing = try nommu(quick + ["--baseline", dir.file("none.json")])
        #expect(missing.status == 2 && missing.stderr.contains("cannot read") && missing.stdout.isEmpty, "\(missing)")
        #expect(try nommu(quick + ["--samples", "0"]).status == 64)
    }

    @Test(
        "nommu run --max-order: a 12 MB block needs a run of order 12; the default 10 gives 4 MiB at most",
        .enabled(if: programsRun))
    func runMaxOrder() throws {
        let dir = Scratch("cli-run-max-order")
        defer { dir.remove() }
        let program = ["python3", "-c", "b = bytearray(12_000_000); print(len(b))"]
        let small = try nommu(["run", "-q", "--arena", "64M", "--"] + program, in: dir.path)
        #expect(small.status != 0 && small.stderr.contains("MemoryError"), "\(small)")
        let big = try nommu(["run", "-q", "--arena", "64M", "--max-order", "12", "--"] + program, in: dir.path)
        #expect(big.status == 0 && big.stdout.contains("12000000"), "\(big)")
        #expect(try nommu(["run", "--max-order", "31", "--", "/bin/true"]).status == 64)
    }

    @Test("--version")
    func version() throws {
        let o = try nommu(["--version"])
        #expect(o.status == 0 && !o.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(o)")
    }
}

@Suite("The CLI: nommu exec-map goes on past files it cannot load")
struct ExecMapCLITests {
    @Test("directories skipped, unreadable and non-ELF files named with the reason, the rest loaded; 2")
    func mixed() throws {
        let dir = Scratch("cli-exec-map")
        defer { dir.remove() }
        let text = dir.file("notes.txt")
        try "not an executable\n".write(toFile: text, atomically: true, encoding: .utf8)
        let missing = dir.file("missing")
        let o = try nommu(["exec-map", "/bin/true", dir.path, missing, text, "--arena", "16M"])
        #expect(o.status == 2, "\(o)")
        #expect(o.stdout.contains("  true "), "true was loaded: \(o)")
        #expect(o.stderr.contains("\(dir.path): a directory, skipped"), "\(o)")
        #expect(o.stderr.contains("cannot read \(missing): No such file or directory"), "\(o)")
        #expect(o.stderr.contains("\(text): not loaded: ENOEXEC"), "\(o)")
        #expect(!o.stderr.contains("Usage"), "\(o)")
    }

    @Test("a program that names an interpreter is reported with it")
    func interpreter() throws {
        let o = try nommu(["exec-map", "/bin/true"])
        #expect(o.status == 0, "\(o)")
        // Debian's /bin/true is dynamically linked: its PT_INTERP is the dynamic loader.
        #expect(o.stdout.contains("programs naming an interpreter") && o.stdout.contains("ld-linux"), "\(o)")
    }

    @Test("--arena takes a size as elsewhere, at most 1 GiB")
    func arena() throws {
        #expect(try nommu(["exec-map", "/bin/true", "--arena", "8M"]).status == 0)
        let big = try nommu(["exec-map", "/bin/true", "--arena", "100000M"])
        #expect(big.status == 64 && big.stderr.contains("larger than 1 GiB"), "\(big)")
    }
}
