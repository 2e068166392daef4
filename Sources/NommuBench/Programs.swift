// SPDX-License-Identifier: Apache-2.0
//
// The program series: a fixed allocation-heavy C program (`nommu-workload mixed`) timed from
// start to exit on glibc and under `nommu run` (libnommu-run.so preloaded, as `nommu run`
// sets it up), in one run, the runs of the series interleaved round by round so that a
// slower stretch of the machine touches all of them alike.
internal import CShims
import Foundation
import NommuBase
import NommuHost
import NommuMalloc

/// Where the program series find their program and library.
public struct ProgramSetup: Sendable, Hashable {
    /// `nommu-workload`.
    public var workload: String
    /// `libnommu-run.so`.
    public var runLibrary: String
    /// Calls of one run (`nommu-workload mixed CALLS THREADS`).
    public var calls: Int
    /// Timed runs of each series (one more, untimed, warms the page cache and the loader).
    public var runs: Int

    public init(workload: String, runLibrary: String, calls: Int = 1_000_000, runs: Int = 5) {
        self.workload = workload
        self.runLibrary = runLibrary
        self.calls = calls
        self.runs = runs
    }
}

/// Measures the program series in `series`; a result per series, bytes 0, times per call.
func measurePrograms(
    _ series: [BenchSeries], _ setup: ProgramSetup, _ progress: (String) -> Void
) throws(BenchError) -> [BenchResult] {
    var samples: [BenchSeries: [Double]] = [:]
    var wall: [BenchSeries: [Double]] = [:]
    let base = ProcessInfo.processInfo.environment
    for round in 0...setup.runs {
        for s in series {
            let argv = [setup.workload, "mixed", String(setup.calls), String(s.programThreads)]
            var env = base
            if let policy = s.programPolicy {
                var settings = RunSettings()
                settings.policy = Malloc.Policy(rawValue: policy) ?? .heap
                env = settings.environment(preloading: setup.runLibrary, into: base)
                env["NOMMU_RUN_REPORT"] = "/dev/null"
            }
            let what = "nommu-workload mixed (\(s.programPolicy.map { "nommu run --malloc \($0)" } ?? "glibc"))"
            let t0 = cshim_now_ns()
            let end: ProgramEnd
            do {
                end = waitForProgram(try spawnProgram(argv, environment: env, stdout: "/dev/null", stderr: "/dev/null"))
            } catch {
                throw .operationFailed(series: s.rawValue, bytes: 0, operation: what, error)
            }
            let ns = Double(cshim_now_ns() &- t0)
            guard end == .exited(0) else {
                throw .operationFailed(series: s.rawValue, bytes: 0, operation: "\(what) ended by \(end)", .ioError)
            }
            if round > 0 {
                samples[s, default: []].append(ns / Double(setup.calls))
                wall[s, default: []].append(ns / 1e6)
            }
        }
    }
    return series.map { s in
        let r = BenchResult(name: s.rawValue, bytes: 0, samples: samples[s] ?? [], iterations: setup.runs * setup.calls)
        let ms = (wall[s] ?? []).sorted()
        progress(
            "bench: \(s.rawValue): median \(formatNanoseconds(r.medianNs)) a call "
                + "(\(Int(ms[ms.count / 2].rounded())) ms a run of \(setup.calls) calls, \(s.programThreads) "
                + "thread\(s.programThreads == 1 ? "" : "s")), \(setup.runs) runs")
        return r
    }
}
