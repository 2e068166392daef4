// SPDX-License-Identifier: Apache-2.0

/// The outcome of one (series, size): time per operation over the samples.
public struct BenchResult: Sendable, Hashable {
    /// Series name (`BenchSeries.rawValue`).
    public var name: String
    /// Bytes per operation (4096 for the pair series).
    public var bytes: Int
    /// Median of the per-operation sample values, in nanoseconds.
    public var medianNs: Double
    /// 10th percentile of the per-operation sample values, in nanoseconds.
    public var p10Ns: Double
    /// 90th percentile of the per-operation sample values, in nanoseconds.
    public var p90Ns: Double
    /// Operations timed in total (samples × batch).
    public var iterations: Int

    public init(name: String, bytes: Int, medianNs: Double, p10Ns: Double, p90Ns: Double, iterations: Int) {
        self.name = name
        self.bytes = bytes
        self.medianNs = medianNs
        self.p10Ns = p10Ns
        self.p90Ns = p90Ns
        self.iterations = iterations
    }

    /// Summarises per-operation sample values (nanoseconds).
    public init(name: String, bytes: Int, samples: [Double], iterations: Int) {
        let sorted = samples.sorted()
        self.init(
            name: name, bytes: bytes, medianNs: percentile(sorted: sorted, 0.5),
            p10Ns: percentile(sorted: sorted, 0.1), p90Ns: percentile(sorted: sorted, 0.9),
            iterations: iterations)
    }
}

/// A result's median divided by its baseline's median at the same size.
public struct BenchRatio: Sendable, Hashable {
    public var name: String
    public var bytes: Int
    /// The baseline series (`memset` for sized series, `glibc_pair_4k` for pair series).
    public var baseline: String
    public var ratio: Double

    public init(name: String, bytes: Int, baseline: String, ratio: Double) {
        self.name = name
        self.bytes = bytes
        self.baseline = baseline
        self.ratio = ratio
    }
}

// MARK: - Percentiles

/// The `fraction` percentile (0…1) of `values`, interpolating linearly between the two
/// nearest ranks (the "type 7" definition of R and NumPy's default). Needs a value.
public func percentile(_ values: [Double], _ fraction: Double) -> Double {
    percentile(sorted: values.sorted(), fraction)
}

/// `percentile(_:_:)` of values already sorted ascending.
public func percentile(sorted values: [Double], _ fraction: Double) -> Double {
    precondition(!values.isEmpty, "percentile of no values")
    precondition(fraction >= 0 && fraction <= 1, "percentile fraction \(fraction) outside 0…1")
    let h = Double(values.count - 1) * fraction
    let lo = Int(h.rounded(.down))
    let hi = min(lo + 1, values.count - 1)
    return values[lo] + (h - Double(lo)) * (values[hi] - values[lo])
}

// MARK: - Ratios

/// For each result whose series has a baseline measured at the same size (for pair series:
/// at `BenchSeries.pairBytes`), its median ÷ the baseline's median. Baselines get 1.
/// Results of unknown series, or without a (positive) baseline, get no entry.
public func computeRatios(_ results: [BenchResult]) -> [BenchRatio] {
    var medians: [String: Double] = [:]
    for r in results { medians[key(r.name, r.bytes)] = r.medianNs }
    var out: [BenchRatio] = []
    for r in results {
        guard let series = BenchSeries(rawValue: r.name) else { continue }
        let base = series.baseline
        guard let b = medians[key(base.rawValue, r.bytes)], b > 0, b.isFinite else { continue }
        out.append(BenchRatio(name: r.name, bytes: r.bytes, baseline: base.rawValue, ratio: r.medianNs / b))
    }
    return out
}

/// The ratio for `result` among `ratios`, if any.
func ratio(for result: BenchResult, in ratios: [BenchRatio]) -> Double? {
    ratios.first { $0.name == result.name && $0.bytes == result.bytes }?.ratio
}

private func key(_ name: String, _ bytes: Int) -> String { name + "@" + String(bytes) }
