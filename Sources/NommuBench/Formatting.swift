// SPDX-License-Identifier: Apache-2.0
//
// Text outputs: the aligned table, JSON and CSV. All numbers are formatted here by hand
// (fixed decimals, '.' separator) so that outputs do not depend on the locale.
import NommuBase

// MARK: - Numbers and sizes

/// `x` with exactly `decimals` digits after the point (no exponent, no locale).
func fixed(_ x: Double, _ decimals: Int) -> String {
    guard x.isFinite else { return x.isNaN ? "nan" : (x < 0 ? "-inf" : "inf") }
    var scale: UInt64 = 1
    for _ in 0..<decimals { scale *= 10 }
    let scaled = (abs(x) * Double(scale)).rounded()
    guard scaled < 9.0e18 else { return String(x) }
    let n = UInt64(scaled)
    var s = (x < 0 && n != 0 ? "-" : "") + String(n / scale)
    if decimals > 0 {
        let f = String(n % scale)
        s += "." + String(repeating: "0", count: decimals - f.count) + f
    }
    return s
}

/// A duration with three significant digits and a unit: `12.3 ns`, `45.6 µs`, `7.89 ms`, `1.23 s`.
public func formatNanoseconds(_ ns: Double) -> String {
    guard ns.isFinite else { return fixed(ns, 0) + " ns" }
    let units: [(String, Double)] = [("ns", 1), ("µs", 1e3), ("ms", 1e6), ("s", 1e9)]
    var i = 0
    while i < units.count - 1 && abs(ns) >= units[i + 1].1 * 0.9995 { i += 1 }
    let v = ns / units[i].1
    let a = abs(v)
    let decimals = a < 9.995 ? 2 : a < 99.95 ? 1 : 0
    return fixed(v, decimals) + " " + units[i].0
}

/// A size in binary units: `4 KiB`, `1 MiB`, `1536 KiB`, `100 B`.
public func formatBytes(_ bytes: Int) -> String {
    if bytes > 0 && bytes % (1 << 30) == 0 { return "\(bytes >> 30) GiB" }
    if bytes > 0 && bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
    if bytes > 0 && bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
    return "\(bytes) B"
}

/// A short size label for plot axes: `4K`, `64M`, `1G`.
public func shortSizeLabel(_ bytes: Int) -> String {
    if bytes > 0 && bytes % (1 << 30) == 0 { return "\(bytes >> 30)G" }
    if bytes > 0 && bytes % (1 << 20) == 0 { return "\(bytes >> 20)M" }
    if bytes > 0 && bytes % (1 << 10) == 0 { return "\(bytes >> 10)K" }
    return "\(bytes)"
}

// MARK: - Table

/// The aligned text table: a header line with the machine facts, then one row per
/// (series, size) with median, p10, p90 and the ratio to the baseline, then a legend line.
public func formatTable(_ results: [BenchResult], machine: MachineInfo) -> String {
    let ratios = computeRatios(results)
    let header = ["series", "size", "median", "p10", "p90", "ratio"]
    var rows: [[String]] = []
    var groupStarts: Set<Int> = []
    var last: String?
    for r in results {
        if let l = last, l != r.name { groupStarts.insert(rows.count) }
        last = r.name
        let q = ratio(for: r, in: ratios).map(formatRatio) ?? "-"
        rows.append([
            r.name, BenchSeries(rawValue: r.name)?.isProgram == true ? "program" : formatBytes(r.bytes),
            formatNanoseconds(r.medianNs), formatNanoseconds(r.p10Ns),
            formatNanoseconds(r.p90Ns), q,
        ])
    }
    var widths = header.map(\.count)
    for row in rows {
        for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
    }
    func line(_ cells: [String]) -> String {
        var parts: [String] = []
        for (i, cell) in cells.enumerated() {
            let pad = String(repeating: " ", count: widths[i] - cell.count)
            parts.append(i == 0 ? cell + pad : pad + cell)
        }
        return parts.joined(separator: "  ")
    }
    var out = "nommu bench: " + machine.summary + "\n"
    out += line(header) + "\n"
    for (i, row) in rows.enumerated() {
        if groupStarts.contains(i) { out += "\n" }
        out += line(row) + "\n"
    }
    out += "\ntimes are per operation (median and 10th/90th percentiles of the samples); "
    out += "ratio = median / memset median at the same size (sized series), "
    out += "/ host_mmap_pair_4k median (nommu_mmap_pair_4k, cabi_mmap_pair_4k), "
    out += "/ glibc_malloc_pair_64 median (cabi_malloc_pair_64, glibc_malloc_pair_64_4t), / cabi_malloc_pair_64 median "
    out += "(cabi_malloc_pair_64_4t: below 1 is more throughput from 4 threads), / order0_pair median "
    out += "(cabi_alloc_pages_pair), / glibc_pair_4k median (other pair series), "
    out += "/ program_glibc(_4t) median (program series: nommu-workload's wall time per call)\n"
    return out
}

// MARK: - JSON

/// JSON: `{"results":[{"name","bytes","median_ns","p10_ns","p90_ns","iterations"}…],
/// "ratios":[{"name","bytes","baseline","ratio"}…], "machine":{…}, "unit":"…"}`.
public func formatJSON(_ results: [BenchResult], machine: MachineInfo) -> String {
    var series: [String] = []
    for r in results where !series.contains(r.name) { series.append(r.name) }
    let sizes = Array(Set(results.map(\.bytes))).sorted()
    var out = "{\n  \"tool\": \"nommu bench\",\n  \"version\": \(jsonString(NommuVersion.string)),\n"
    out += "  \"settings\": {\"series\": [" + series.map(jsonString).joined(separator: ", ") + "], "
    out += "\"sizes\": [" + sizes.map(String.init).joined(separator: ", ") + "], "
    out += "\"quick\": \(machine.quick)},\n"
    out += "  \"results\": [\n"
    out += results.map { r in
        "    {\"name\": \(jsonString(r.name)), \"bytes\": \(r.bytes), \"median_ns\": \(fixed(r.medianNs, 3)), "
            + "\"p10_ns\": \(fixed(r.p10Ns, 3)), \"p90_ns\": \(fixed(r.p90Ns, 3)), \"iterations\": \(r.iterations)}"
    }.joined(separator: ",\n")
    out += "\n  ],\n  \"ratios\": [\n"
    out += computeRatios(results).map { q in
        "    {\"name\": \(jsonString(q.name)), \"bytes\": \(q.bytes), \"baseline\": \(jsonString(q.baseline)), "
            + "\"ratio\": \(fixed(q.ratio, 6))}"
    }.joined(separator: ",\n")
    out += "\n  ],\n  \"machine\": {\n"
    let fields: [(String, String)] = [
        ("host_page_size", String(machine.hostPageSize)),
        ("cpu_count", String(machine.cpuCount)),
        ("cpu_model", machine.cpuModel.map(jsonString) ?? "null"),
        ("transparent_hugepages", machine.transparentHugePages.map(jsonString) ?? "null"),
        ("arena_backing", jsonString(machine.arenaBacking)),
        ("allocator_page_size", String(machine.allocatorPageSize)),
        ("max_order", String(machine.maxOrder)),
        ("arena_bytes", String(machine.arenaBytes)),
        ("nr_trim_pages", String(machine.nrTrimPages)),
        ("build", jsonString(machine.build)),
        ("quick", machine.quick ? "true" : "false"),
    ]
    out += fields.map { "    \(jsonString($0.0)): \($0.1)" }.joined(separator: ",\n")
    out += "\n  },\n  \"unit\": \"nanoseconds per operation\"\n}\n"
    return out
}

// MARK: - CSV

/// The host part of `MachineInfo` as a JSON object (the keys of `formatJSON`'s `machine`), for
/// the documents of `nommu replay` and `nommu run`, whose allocator settings are their own.
public func hostJSON(_ machine: MachineInfo) -> String {
    let fields: [(String, String)] = [
        ("host_page_size", String(machine.hostPageSize)), ("cpu_count", String(machine.cpuCount)),
        ("cpu_model", machine.cpuModel.map(jsonString) ?? "null"),
        ("transparent_hugepages", machine.transparentHugePages.map(jsonString) ?? "null"),
        ("build", jsonString(machine.build)),
    ]
    return "{" + fields.map { "\(jsonString($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
}

/// CSV: header `name,bytes,median_ns,p10_ns,p90_ns,iterations,ratio`, one line per result
/// (ratio empty when the result has no baseline).
public func formatCSV(_ results: [BenchResult]) -> String {
    let ratios = computeRatios(results)
    var out = "name,bytes,median_ns,p10_ns,p90_ns,iterations,ratio\n"
    for r in results {
        let q = ratio(for: r, in: ratios).map { fixed($0, 6) } ?? ""
        out += "\(csvField(r.name)),\(r.bytes),\(fixed(r.medianNs, 3)),\(fixed(r.p10Ns, 3)),"
        out += "\(fixed(r.p90Ns, 3)),\(r.iterations),\(q)\n"
    }
    return out
}

private func csvField(_ s: String) -> String {
    guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return s }
    return "\"" + s.replacingAll("\"", with: "\"\"") + "\""
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}

/// A ratio for the table: two decimals from 0.1 up, otherwise two significant digits
/// (`0.0041`), so a small ratio still shows its figure.
package func formatRatio(_ v: Double) -> String {
    if v >= 0.1 || v == 0 { return fixed(v, 2) }
    var digits = 2
    var x = v
    while x < 0.1 && digits < 8 {
        x *= 10
        digits += 1
    }
    return fixed(v, digits)
}
