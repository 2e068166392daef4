// SPDX-License-Identifier: Apache-2.0
public import NommuBase

/// Everything `nommu bench` can fail with.
public enum BenchError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A `--sizes` entry that is not a size, with the reason.
    case invalidSize(String, reason: String)
    /// A `--sizes` list with no entries.
    case noSizes
    /// A `--series` entry that names no series.
    case unknownSeries(String)
    /// A `--series` list with no entries.
    case noSeries
    /// The allocator or the host refused something while measuring `series` at `bytes`.
    case operationFailed(series: String, bytes: Int, operation: String, Errno)
    /// Writing an output file failed.
    case writeFailed(path: String, reason: String)
    /// A file could not be read.
    case readFailed(path: String, reason: String)
    /// `--baseline`'s file is not a bench JSON document.
    case invalidBaseline(String)

    public var description: String {
        switch self {
        case .invalidSize(let text, let reason):
            "invalid size '\(text)': \(reason)"
        case .noSizes:
            "no sizes given (expected a list like 4K,1M,64M)"
        case .unknownSeries(let name):
            "unknown series '\(name)' (known: \(BenchSeries.allCases.map(\.rawValue).joined(separator: ", ")))"
        case .noSeries:
            "no series given"
        case .operationFailed(let series, let bytes, let operation, let errno):
            "\(series) at \(formatBytes(bytes)): \(operation) failed: \(errno.debugDescription)"
        case .writeFailed(let path, let reason):
            "cannot write \(path): \(reason)"
        case .readFailed(let path, let reason):
            "cannot read \(path): \(reason)"
        case .invalidBaseline(let why):
            "the baseline is not a nommu bench JSON document: \(why)"
        }
    }
}
