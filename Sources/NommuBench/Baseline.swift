// SPDX-License-Identifier: Apache-2.0
//
// A saved run to compare against: `nommu bench --baseline FILE` reads a `bench.json` of an
// earlier run (`--output DIR` or `--format json`) and prints each result's median as a ratio
// to the same series and size there, as package-benchmark's baselines and hyperfine's
// `--export-json` comparisons do.
import Foundation
import NommuBase

/// The medians of a saved run, by series and size.
public struct BenchBaseline: Sendable, Hashable {
    /// Median nanoseconds per operation, by `name` and `bytes`.
    public var medians: [String: [Int: Double]]
    /// The saved run's version and build, for the heading.
    public var version: String?
    public var build: String?

    /// Reads a `bench.json` document.
    /// - Throws: `BenchError.invalidBaseline` naming what is missing.
    public init(json bytes: [UInt8]) throws(BenchError) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw .invalidBaseline("not a JSON object")
        }
        guard let results = object["results"] as? [[String: Any]] else {
            throw .invalidBaseline("no \"results\" array (is it a nommu bench JSON document?)")
        }
        var medians: [String: [Int: Double]] = [:]
        for r in results {
            guard let name = r["name"] as? String, let size = r["bytes"] as? Int,
                let median = (r["median_ns"] as? NSNumber)?.doubleValue
            else { throw .invalidBaseline("a result without name, bytes or median_ns") }
            medians[name, default: [:]][size] = median
        }
        self.medians = medians
        version = object["version"] as? String
        build = (object["machine"] as? [String: Any])?["build"] as? String
    }

    /// This run's result against the saved one: the ratio of the medians, or nil when the
    /// saved run has no such series and size.
    public func ratio(_ r: BenchResult) -> Double? {
        guard let before = medians[r.name]?[r.bytes], before > 0 else { return nil }
        return r.medianNs / before
    }
}

/// The comparison with a saved run: series, size, the saved median, this run's, and the ratio
/// (below 1 is faster now).
public func formatBaselineComparison(_ results: [BenchResult], baseline: BenchBaseline, path: String) -> String {
    var out = "against the baseline \(path)"
    if let v = baseline.version { out += " (nommu \(v)\(baseline.build.map { ", \($0) build" } ?? ""))" }
    out += ": ratio = this run's median / the baseline's; below 1 is faster now\n"
    let header = ["series", "size", "baseline", "now", "ratio"]
    var rows: [[String]] = []
    for r in results {
        let before = baseline.medians[r.name]?[r.bytes]
        rows.append([
            r.name, BenchSeries(rawValue: r.name)?.isProgram == true ? "program" : formatBytes(r.bytes),
            before.map(formatNanoseconds) ?? "-", formatNanoseconds(r.medianNs),
            baseline.ratio(r).map { fixed($0, 2) } ?? "-",
        ])
    }
    return out + alignedTable(header: header, rows: rows)
}
