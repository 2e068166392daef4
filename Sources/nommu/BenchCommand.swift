// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import NommuBench
import NommuHost

/// `nommu bench`: measures the page allocator against memset, the host kernel and glibc.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the page allocator against memset, host mmap and glibc.",
        discussion: """
            Series: \(BenchSeries.allCases.map(\.rawValue).joined(separator: ", ")).
            Times are per operation. Progress goes to stderr; stdout gets only the report.
            Build with -c release before trusting any number.

            Exit status: 0, or 2 when a series cannot run, the output cannot be written or the
            baseline read (both are checked before anything is measured); 64 for a bad option.

            Examples:
              swift run -c release nommu bench
              nommu bench --series nommu_mmap_pair_4k,cabi_mmap_pair_4k --sizes 4K
              nommu bench --quick --format json --output /tmp/bench
              nommu bench --series order0_pair --samples 31 --warmup 4 --baseline /tmp/bench/bench.json
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, json, csv
    }

    @Option(help: "Output format: table, json or csv.")
    var format: Format = .table

    @Option(help: "Sizes for the sized series, e.g. 4K,1M,64M (K/M/G suffixes or plain bytes; multiples of 4096).")
    var sizes: String?

    @Option(help: "Only these series (comma-separated names); baselines needed for ratios are added.")
    var series: String?

    @Option(help: "Also write bench.svg, bench.json and bench.csv into this directory (created if missing).")
    var output: String?

    @Flag(help: "A fast smoke run: few samples, small batches (numbers are rough).")
    var quick = false

    @Option(help: "Samples per series and size (each a timed batch), and timed runs of each program series.")
    var samples: Int?

    @Option(help: "Untimed batches before sampling each series and size.")
    var warmup: Int?

    @Option(help: "A bench.json of an earlier run: print each median as a ratio to its median there.")
    var baseline: String?

    mutating func validate() throws {
        if let samples, !(1...10_000).contains(samples) { throw ValidationError("--samples takes 1 to 10000") }
        if let warmup, !(0...10_000).contains(warmup) { throw ValidationError("--warmup takes 0 to 10000") }
        do {
            if let sizes { _ = try parseSizes(sizes) }
            if let series { _ = try parseSeries(series) }
        } catch {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        do {
            var configuration = BenchConfiguration(quick: quick)
            if let sizes { configuration.sizes = try parseSizes(sizes) }
            if let series { configuration.series = try parseSeries(series) }
            if let samples {
                configuration.minimumSamples = samples
                configuration.maximumSamples = samples
            }
            if let warmup {
                configuration.warmupBatches = warmup
                configuration.warmupNanoseconds = 0
            }
            if configuration.series.contains(where: \.isProgram) {
                configuration.programs = ProgramSetup(
                    workload: try Launcher.built("nommu-workload", product: "nommu-workload"),
                    runLibrary: try Launcher.built("libnommu-run.so", product: "nommu-run"),
                    calls: quick ? 100_000 : 1_000_000, runs: samples ?? (quick ? 2 : 3))
            }
            // The output directory and the baseline are checked before the run, not after it.
            if let output { try prepareOutputDirectory(output) }
            var saved: BenchBaseline? = nil
            if let baseline {
                let bytes: [UInt8]
                do { bytes = try HostFS.contents(of: baseline) } catch {
                    throw BenchError.readFailed(path: baseline, reason: error.description)
                }
                saved = try BenchBaseline(json: bytes)
            }
            let machine = MachineInfo.current(for: configuration)
            if machine.build == "debug" {
                printError("bench: warning: this is a debug build; its numbers mean nothing (use -c release)")
            }
            let results = try runBench(configuration) { line in printError(line) }
            let text: String
            switch format {
            case .table: text = formatTable(results, machine: machine)
            case .json: text = formatJSON(results, machine: machine)
            case .csv: text = formatCSV(results)
            }
            FileHandle.standardOutput.write(Data(text.utf8))
            if let saved, let baseline, format == .table {
                FileHandle.standardOutput.write(
                    Data(("\n" + formatBaselineComparison(results, baseline: saved, path: baseline)).utf8))
            } else if let saved, let baseline {
                // JSON and CSV stay one document: the comparison goes to stderr.
                printError(formatBaselineComparison(results, baseline: saved, path: baseline))
            }
            if let output {
                for path in try writeBenchFiles(results, machine: machine, to: output) {
                    printError("bench: wrote \(path)")
                }
            }
        } catch {
            printError("nommu bench: error: \(error)")
            // 2: a file that cannot be written, or a series that cannot run (usage errors are 64).
            throw ExitCode(2)
        }
    }
}

/// Writes `line` and a newline to stderr.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
