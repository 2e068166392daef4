// SPDX-License-Identifier: Apache-2.0
import Foundation

/// Writes `bench.svg`, `bench.json` and `bench.csv` into `directory`, creating it (and its
/// parents) if missing. Returns the paths written.
@discardableResult
public func writeBenchFiles(
    _ results: [BenchResult], machine: MachineInfo, to directory: String
) throws(BenchError) -> [String] {
    do {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
        throw .writeFailed(path: directory, reason: String(describing: error))
    }
    let files: [(String, String)] = [
        ("bench.svg", renderSVG(results) + "\n"),
        ("bench.json", formatJSON(results, machine: machine)),
        ("bench.csv", formatCSV(results)),
    ]
    var written: [String] = []
    for (name, text) in files {
        let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw .writeFailed(path: path, reason: String(describing: error))
        }
        written.append(path)
    }
    return written
}
