// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import NommuBase
import NommuBench
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

    @Option(help: "Memory of the machine, e.g. 8M (K/M/G suffixes).")
    var arena: String = "64M"

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

    func run() throws {
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
            arenaBytes = try parseSize(arena)
            sizes = (try parseSize(extendSize), try parseSize(mmapThreshold), try parseSize(unmapThreshold))
        } catch {
            throw ValidationError("\(error)")
        }
        var parsed: [Trace] = []
        for path in traces {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("cannot read \(path)")
            }
            let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            do {
                parsed.append(try Trace.parse(name: name, Array(data)))
            } catch {
                throw ValidationError("\(path): \(error)")
            }
            for w in parsed.last!.warnings { FileHandle.standardError.write(Data("\(path): \(w)\n".utf8)) }
        }
        func options(_ p: Malloc.Policy, _ t: Int) -> ReplayOptions {
            ReplayOptions(
                policy: p, arenaBytes: arenaBytes, nrTrimPages: t, uninitialized: uninitialized,
                allowUninitialized: allowUninitialized, touch: touch, extendSize: sizes.extend,
                mmapThreshold: sizes.mmap, unmapThreshold: sizes.unmap)
        }
        if fit {
            var out = "smallest arena in which \(parsed.map(\.name).joined(separator: " + ")) replays completely:\n"
            for p in policies {
                for t in trims {
                    do {
                        let bytes = try Replay.fit(parsed, options(p, t))
                        out += "  --malloc \(p.rawValue) --trim \(t): \(bytes / 1024) KiB (\(bytes / 4096) pages)\n"
                    } catch {
                        out += "  --malloc \(p.rawValue) --trim \(t): does not fit in 1 GiB\n"
                    }
                }
            }
            print(out, terminator: "")
            return
        }
        let result: (reports: [ReplayReport], samples: [ReplaySample])
        do { result = try Replay.run(parsed, options(policies[0], trims[0]), samples: output == nil ? 0 : 500) } catch {
            throw ValidationError("nommu replay: \(error.debugDescription)")
        }
        let reports = result.reports
        switch format {
        case .table: print(ReplayFormat.table(reports, pageSize: 4096, arenaBytes: arenaBytes), terminator: "")
        case .json: print(ReplayFormat.json(reports, pageSize: 4096), terminator: "")
        case .csv: print(ReplayFormat.csv(reports, pageSize: 4096), terminator: "")
        }
        if let output {
            let dir = URL(fileURLWithPath: output)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let title =
                "\(parsed.map(\.name).joined(separator: " + ")), \(policies[0].rawValue), \(arenaBytes >> 10) KiB"
            try Data(ReplayFormat.json(reports, pageSize: 4096).utf8).write(
                to: dir.appendingPathComponent("replay.json"))
            try Data(ReplayFormat.csv(reports, pageSize: 4096).utf8).write(to: dir.appendingPathComponent("replay.csv"))
            try Data(ReplayPlot.memory(result.samples, title: "memory: " + title).utf8).write(
                to: dir.appendingPathComponent("replay-memory.svg"))
            try Data(ReplayPlot.freeBlocks(result.samples, title: "free blocks per order: " + title).utf8).write(
                to: dir.appendingPathComponent("replay-free-blocks.svg"))
            FileHandle.standardError.write(
                Data("wrote replay.json, replay.csv, replay-memory.svg, replay-free-blocks.svg to \(output)\n".utf8))
        }
    }
}
