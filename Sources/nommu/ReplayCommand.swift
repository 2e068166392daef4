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

    @Option(name: .customLong("malloc"), help: "simple (a mapping per block) or heap (areas with free lists).")
    var policy: String = "heap"

    @Option(help: "Memory of the machine, e.g. 8M (K/M/G suffixes).")
    var arena: String = "64M"

    @Option(help: "vm.nr_trim_pages.")
    var trim: Int = 1

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

    func run() throws {
        guard let malloc = Malloc.Policy(rawValue: policy) else { throw ValidationError("--malloc is simple or heap") }
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
        }
        let options = ReplayOptions(
            policy: malloc, arenaBytes: arenaBytes, nrTrimPages: trim, uninitialized: uninitialized,
            allowUninitialized: allowUninitialized, touch: touch, extendSize: sizes.extend, mmapThreshold: sizes.mmap,
            unmapThreshold: sizes.unmap)
        let reports: [ReplayReport]
        do { reports = try Replay.run(parsed, options) } catch {
            throw ValidationError("nommu replay: \(error.debugDescription)")
        }
        switch format {
        case .table: print(ReplayFormat.table(reports, pageSize: 4096, arenaBytes: arenaBytes), terminator: "")
        case .json: print(ReplayFormat.json(reports, pageSize: 4096), terminator: "")
        case .csv: print(ReplayFormat.csv(reports, pageSize: 4096), terminator: "")
        }
    }
}
