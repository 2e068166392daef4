// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import NommuBase
import NommuBench
import NommuHost
import NommuMalloc

/// `nommu replay`: real programs' allocation traces through the no-MMU mallocs.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay allocation traces (nommu-trace v1) through a uClibc-style malloc on the no-MMU model.",
        discussion: """
            Several traces run as several processes of one system, interleaved one event each in turn.
            Traces are parsed first (not timed); the same events then run through glibc for the ratio.
            Build with -c release before trusting any time.

            Exit status: 0 when every trace replayed completely (with --fit: when every
            configuration fits somewhere), 1 when one did not, 2 for a file that cannot be read or
            written or a trace that does not parse, 64 for a bad option.

            Examples:
              nommu replay traces/cc1.trace
              nommu replay traces/cc1.trace traces/sqlite3.trace --arena 8M --format json
              nommu replay traces/sqlite3.trace --fit --malloc simple,heap --trim 0,1
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, json, csv
    }

    @Argument(help: "Trace files.")
    var traces: [String]

    @Option(
        name: .customLong("malloc"),
        help: "simple (a mapping per block) or heap (areas with free lists); with --fit, a comma-separated list.")
    var policy: String = "heap"

    @Option(help: "Memory of the machine, e.g. 8M (K/M/G suffixes; default 256M, as run and exec-map). Not with --fit.")
    var arena: String?

    @Option(help: "The buddy allocator's largest order: runs of up to 2^N pages (the kernel's default, 10, is 4 MiB).")
    var maxOrder: Int = 10

    @Option(help: "vm.nr_trim_pages; with --fit, a comma-separated list.")
    var trim: String = "1"

    @Flag(help: "The mallocs pass MAP_UNINITIALIZED for malloc (never calloc).")
    var uninitialized = false

    @Flag(help: "The system honours MAP_UNINITIALIZED (CONFIG_MMAP_ALLOW_UNINITIALIZED).")
    var allowUninitialized = false

    @Flag(help: "Write every page of each block (default: its first and last byte).")
    var touch = false

    @Option(help: "heap: bytes mapped per new area (K/M suffixes).")
    var extendSize: String = "64K"

    @Option(help: "heap: blocks this big get their own mapping.")
    var mmapThreshold: String = "128K"

    @Option(help: "heap: wholly free areas this big are given back (one is kept).")
    var unmapThreshold: String = "64K"

    @Option(help: "Output: table, json or csv.")
    var format: Format = .table

    @Option(help: "Also write replay.json, replay.csv and SVG plots (memory and free blocks over the trace) here.")
    var output: String?

    @Flag(
        help:
            "Instead of replaying once: the smallest arena, to the page, in which the traces fit, per policy and trim.")
    var fit = false

    func validate() throws {
        if fit {
            if arena != nil { throw ValidationError("--fit finds the arena; leave out --arena") }
            if output != nil { throw ValidationError("--fit writes no files; leave out --output") }
            if format == .csv { throw ValidationError("--fit prints a table or json, not csv") }
        }
    }

    func run() throws {
        try reporting("replay") { try replay() }
    }

    func replay() throws {
        let policies = try policy.split(separator: ",").map { name -> Malloc.Policy in
            guard let p = Malloc.Policy(rawValue: String(name)) else {
                throw ValidationError("--malloc is simple or heap")
            }
            return p
        }
        let trims = try trim.split(separator: ",").map { v -> Int in
            guard let t = Int(v), t >= 0 else { throw ValidationError("--trim takes non-negative integers") }
            return t
        }
        guard !policies.isEmpty, !trims.isEmpty else { throw ValidationError("--malloc and --trim need values") }
        guard fit || (policies.count == 1 && trims.count == 1) else {
            throw ValidationError("lists of policies or trims are for --fit")
        }
        let arenaBytes: Int
        let sizes: (extend: Int, mmap: Int, unmap: Int)
        do {
            arenaBytes = try parseSize(arena ?? defaultArena)
            sizes = (try parseSize(extendSize), try parseSize(mmapThreshold), try parseSize(unmapThreshold))
        } catch {
            throw ValidationError("\(error)")
        }
        // Output first: a directory that cannot be written is said before the replay, not after it.
        if let output {
            do { try HostFS.makeWritableDirectory(output) } catch {
                throw CommandFailure(text: "cannot write to \(output): \(error.description)", status: 2)
            }
        }
        var parsed: [Trace] = []
        for path in traces {
            let bytes: [UInt8]
            do { bytes = try HostFS.contents(of: path) } catch {
                throw CommandFailure(text: "cannot read \(path): \(error.description)", status: 2)
            }
            let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            do {
                parsed.append(try Trace.parse(name: name, bytes))
            } catch {
                throw CommandFailure(text: "\(path): \(error)", status: 2)
            }
            for w in parsed.last!.warnings { FileHandle.standardError.write(Data("\(path): \(w)\n".utf8)) }
        }
        func options(_ p: Malloc.Policy, _ t: Int) -> ReplayOptions {
            ReplayOptions(
                policy: p, arenaBytes: arenaBytes, maxOrder: maxOrder, nrTrimPages: t, uninitialized: uninitialized,
                allowUninitialized: allowUninitialized, touch: touch, extendSize: sizes.extend,
                mmapThreshold: sizes.mmap, unmapThreshold: sizes.unmap)
        }
        if fit {
            try fitArena(parsed, policies: policies, trims: trims, sizes: sizes, options: options)
            return
        }
        let result: (reports: [ReplayReport], samples: [ReplaySample])
        do { result = try Replay.run(parsed, options(policies[0], trims[0]), samples: output == nil ? 0 : 500) } catch {
            throw CommandFailure(text: "cannot make the system: \(error.debugDescription)", status: 2)
        }
        let reports = result.reports
        switch format {
        case .table: print(ReplayFormat.table(reports, pageSize: 4096, arenaBytes: arenaBytes), terminator: "")
        case .json: print(document(reports, arenaBytes: arenaBytes, sizes: sizes), terminator: "")
        case .csv: print(ReplayFormat.csv(reports, pageSize: 4096), terminator: "")
        }
        if let output {
            // The first allocation that did not fit, as the samples count events.
            let failure = reports.compactMap(\.firstFailure).map(\.step).min()
            let title =
                "\(parsed.map(\.name).joined(separator: " + ")), \(policies[0].rawValue), \(arenaBytes >> 10) KiB"
            let files = [
                ("replay.json", document(reports, arenaBytes: arenaBytes, sizes: sizes)),
                ("replay.csv", ReplayFormat.csv(reports, pageSize: 4096)),
                ("replay-memory.svg", ReplayPlot.memory(result.samples, title: "memory: " + title, failure: failure)),
                (
                    "replay-free-blocks.svg",
                    ReplayPlot.freeBlocks(result.samples, title: "free memory by order: " + title, failure: failure)
                ),
            ]
            for (name, text) in files {
                let path = output.hasSuffix("/") ? output + name : output + "/" + name
                do { try HostFS.writeFile(path, Array(text.utf8)) } catch {
                    throw CommandFailure(text: "cannot write \(path): \(error.description)", status: 2)
                }
            }
            FileHandle.standardError.write(
                Data("wrote replay.json, replay.csv, replay-memory.svg, replay-free-blocks.svg to \(output)\n".utf8))
        }
        let failed = reports.filter { $0.firstFailure != nil }
        guard failed.isEmpty else {
            for r in failed {
                let f = r.firstFailure!
                FileHandle.standardError.write(
                    Data(
                        ("nommu replay: \(r.trace) did not fit: event \(f.event) asked for \(f.size) bytes "
                            + "with \(f.largestFreeBlockBytes) bytes the largest free run\n").utf8))
            }
            throw ExitCode(1)
        }
    }

    /// `--fit`: the smallest arena, to the page, per policy and trim, with each probe on stderr.
    /// - Throws: `ExitCode(1)` when a configuration fits in no arena.
    func fitArena(
        _ parsed: [Trace], policies: [Malloc.Policy], trims: [Int], sizes: (extend: Int, mmap: Int, unmap: Int),
        options: (Malloc.Policy, Int) -> ReplayOptions
    ) throws {
        let names = parsed.map(\.name).joined(separator: " + ")
        var out = "smallest arena in which \(names) replays completely (max order \(maxOrder)):\n"
        var allFit = true
        var rows: [String] = []  // JSON results
        func row(_ p: Malloc.Policy, _ t: Int, bytes: Int?, reason: String?) -> String {
            "    {\"malloc\": \(jsonString(p.rawValue)), \"trim\": \(t), \"fits\": \(bytes != nil), "
                + "\"arena_bytes\": \(bytes.map(String.init) ?? "null"), \"reason\": \(reason.map(jsonString) ?? "null")}"
        }
        // One contiguous run must hold the largest request (and its alignment): past the largest
        // run the allocator has, no arena is big enough.
        let largest = Replay.largestRequest(parsed)
        let (need, overflow) = largest.size.addingReportingOverflow(largest.alignment + 4096)
        let largestRun = 4096 << min(max(maxOrder, 0), 40)
        for p in policies {
            for t in trims {
                let label = "--malloc \(p.rawValue) --trim \(t)"
                if overflow || need > largestRun {
                    var order = maxOrder
                    while !overflow && order < 40 && 4096 << order < need { order += 1 }
                    let hint = overflow || order >= 40 ? "no order is enough" : "with --max-order \(order) it can"
                    let reason =
                        "fits in no arena: a request of \(largest.size) bytes needs one run, and the "
                        + "largest is \(largestRun >> 10) KiB (order \(maxOrder)); \(hint)"
                    out += "  \(label): \(reason)\n"
                    rows.append(row(p, t, bytes: nil, reason: reason))
                    allFit = false
                    continue
                }
                FileHandle.standardError.write(Data("nommu replay --fit: \(label):\n".utf8))
                do {
                    let bytes = try Replay.fit(parsed, options(p, t)) { arena, fits in
                        FileHandle.standardError.write(
                            Data("  \(arena >> 10) KiB: \(fits ? "fits" : "does not fit")\n".utf8))
                    }
                    out += "  \(label): \(bytes / 1024) KiB (\(bytes / 4096) pages)\n"
                    rows.append(row(p, t, bytes: bytes, reason: nil))
                } catch {
                    out += "  \(label): does not fit in 1 GiB\n"
                    rows.append(row(p, t, bytes: nil, reason: "does not fit in 1 GiB"))
                    allFit = false
                }
            }
        }
        if format == .json {
            var doc = documentHead(
                tool: "nommu replay",
                settings: settingsJSON(arenaBytes: nil, policies: policies, trims: trims, sizes: sizes))
            doc += "  \"results\": [\n" + rows.joined(separator: ",\n") + "\n  ]\n}\n"
            print(doc, terminator: "")
        } else {
            print(out, terminator: "")
        }
        if !allFit { throw ExitCode(1) }
    }

    /// The settings of a replay (or, with `--fit`, of the search: lists of policies and trims,
    /// no arena) as a JSON object.
    func settingsJSON(
        arenaBytes: Int?, policies: [Malloc.Policy], trims: [Int], sizes: (extend: Int, mmap: Int, unmap: Int)
    ) -> String {
        func value<T>(_ xs: [T], _ f: (T) -> String) -> String {
            fit ? "[" + xs.map(f).joined(separator: ", ") + "]" : f(xs[0])
        }
        var fields: [(String, String)] = [("traces", "[" + traces.map(jsonString).joined(separator: ", ") + "]")]
        if fit { fields.append(("fit", "true")) }
        fields.append(("malloc", value(policies) { jsonString($0.rawValue) }))
        if let arenaBytes { fields.append(("arena_bytes", String(arenaBytes))) }
        fields += [
            ("max_order", String(maxOrder)), ("nr_trim_pages", value(trims) { String($0) }),
            ("uninitialized", String(uninitialized)), ("allow_uninitialized", String(allowUninitialized)),
            ("touch", String(touch)), ("extend_size", String(sizes.extend)), ("mmap_threshold", String(sizes.mmap)),
            ("unmap_threshold", String(sizes.unmap)),
        ]
        return "{" + fields.map { "\(jsonString($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }

    /// The JSON document of a replay, in the shape of every nommu tool's: the tool, the version,
    /// the settings, the machine, a result per trace, and (with several traces) the total.
    func document(_ reports: [ReplayReport], arenaBytes: Int, sizes: (extend: Int, mmap: Int, unmap: Int)) -> String {
        let rows = reports.filter { $0.trace != "total" || reports.count == 1 }
        let total = reports.count > 1 ? reports.last : nil
        let policy = Malloc.Policy(rawValue: policy) ?? .heap
        let trim = Int(trim) ?? 0
        var out = documentHead(
            tool: "nommu replay",
            settings: settingsJSON(arenaBytes: arenaBytes, policies: [policy], trims: [trim], sizes: sizes))
        out +=
            "  \"results\": [\n" + rows.map { "    " + $0.json(pageSize: 4096) }.joined(separator: ",\n") + "\n  ],\n"
        out += "  \"total\": " + (total.map { $0.json(pageSize: 4096) } ?? "null") + "\n}\n"
        return out
    }
}
