// SPDX-License-Identifier: Apache-2.0
//
// The sampling engine. A sample times one batch of K operations with two clock reads and
// records elapsed / K. The operations run inside `TimedOperation.run(_:)`, a concrete
// method on a concrete type reached through a generic that is specialised: no existential,
// no closure and no allocation sits between the two clock reads.
internal import CShims
internal import CNommuBench
import NommuBase

/// Consumes `value`: adds it to a sink the optimiser cannot see the end of
/// (`cnb_black_hole`: relaxed atomic load and store, race-free across threads).
@inline(__always)
func blackHole(_ value: Int) {
    cnb_black_hole(Int64(truncatingIfNeeded: value))
}

/// Something measured by running it `count` times in a row.
protocol TimedOperation {
    /// Runs the operation `count` times. Must not allocate or take closures.
    mutating func run(_ count: Int) throws(Errno)
    /// Nanoseconds that `count` operations take; by default the clock around `run`. An
    /// operation that starts threads times itself (from their start to the last one's end).
    mutating func timedRun(_ count: Int) throws(Errno) -> UInt64
}

extension TimedOperation {
    @inline(__always)
    mutating func timedRun(_ count: Int) throws(Errno) -> UInt64 {
        let t0 = cshim_now_ns()
        try run(count)
        let t1 = cshim_now_ns()
        return t1 &- t0
    }
}

/// How one (series, size) is sampled; derived from a `BenchConfiguration`.
struct SamplingPlan {
    var targetBatchNs: UInt64
    var maximumBatch: Int
    var warmupNs: UInt64
    var warmupBatches: Int
    var budgetNs: UInt64
    var minimumSamples: Int
    var maximumSamples: Int

    init(_ c: BenchConfiguration) {
        targetBatchNs = c.targetBatchNanoseconds
        maximumBatch = max(1, c.maximumBatch)
        warmupNs = c.warmupNanoseconds
        warmupBatches = max(0, c.warmupBatches)
        budgetNs = c.budgetNanoseconds
        minimumSamples = max(1, c.minimumSamples)
        maximumSamples = max(max(1, c.minimumSamples), c.maximumSamples)
    }

    /// The plan for series whose threads start together (`_4t`): batches 20 times as long
    /// (20 ms in a full run). With the 1 ms batches of the other series each of 4 threads ran
    /// a quarter of a millisecond, less than a scheduler's time slice, and on a machine with
    /// fewer CPUs than threads the threads' staggered start was a visible part of a sample
    /// (glibc's 4-thread pair: 0.73 of one thread's time, 10th-90th percentile 4.5-7.1 ns;
    /// with these batches 0.62, 5.0-5.8 ns).
    func forThreads() -> SamplingPlan {
        var p = self
        p.targetBatchNs = targetBatchNs &* 20
        p.maximumBatch = maximumBatch &* 64
        return p
    }

    /// Samples to take when one sample (batch plus any untimed setup) costs `cycleNs`.
    func samples(cycleNs: UInt64) -> Int {
        let fit = budgetNs / max(cycleNs, 1)
        return Int(min(UInt64(maximumSamples), max(UInt64(minimumSamples), fit)))
    }

    /// The next batch size after a batch of `k` took `ns`: aims at the target with a
    /// 25 % margin, at most ×64 per step (a cold first batch overestimates the cost).
    func nextBatch(after k: Int, took ns: UInt64) -> Int {
        let perOp = Double(max(ns, 1)) / Double(k)
        let want = Int((Double(targetBatchNs) * 1.25 / perOp).rounded(.up))
        return min(maximumBatch, max(k * 2, min(want, k * 64)))
    }
}

/// Per-operation sample values and the operations they timed.
struct Measurement {
    var samples: [Double]
    var batch: Int
    var iterations: Int

    func result(_ series: BenchSeries, bytes: Int) -> BenchResult {
        BenchResult(name: series.rawValue, bytes: bytes, samples: samples, iterations: iterations)
    }
}

/// Nanoseconds that `count` operations take.
@inline(__always)
func timeBatch<Op: TimedOperation>(_ op: inout Op, _ count: Int) throws(Errno) -> UInt64 {
    try op.timedRun(count)
}

/// Calibrates the batch, warms up, then samples.
func measure<Op: TimedOperation>(_ op: inout Op, _ plan: SamplingPlan) throws(Errno) -> Measurement {
    // Calibrate (this is also the first warm-up).
    var k = 1
    var ns = try timeBatch(&op, k)
    while ns < plan.targetBatchNs && k < plan.maximumBatch {
        k = plan.nextBatch(after: k, took: ns)
        ns = try timeBatch(&op, k)
    }
    // Warm up at the chosen batch.
    let warmStart = cshim_now_ns()
    var warmed = 0
    while warmed < plan.warmupBatches || cshim_now_ns() &- warmStart < plan.warmupNs {
        ns = try timeBatch(&op, k)
        warmed += 1
    }
    let n = plan.samples(cycleNs: ns)
    var samples = [Double](repeating: 0, count: n)
    for i in 0..<n {
        let t = try timeBatch(&op, k)
        samples[i] = Double(t) / Double(k)
    }
    return Measurement(samples: samples, batch: k, iterations: n * k)
}
