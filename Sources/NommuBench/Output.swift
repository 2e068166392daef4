// SPDX-License-Identifier: Apache-2.0
import Foundation
import NommuHost

/// Makes `directory` (and its parents) if missing and checks it can be written: what
/// `nommu bench --output` does before it measures anything.
/// - Throws: `BenchError.writeFailed` with the host's reason.
public func prepareOutputDirectory(_ directory: String) throws(BenchError) {
    do { try HostFS.makeWritableDirectory(directory) } catch {
        throw .writeFailed(path: directory, reason: error.description)
    }
}

/// Writes `bench.svg`, `bench.json` and `bench.csv` into `directory`, creating it (and its
/// parents) if missing. Returns the paths written.
@discardableResult
public func writeBenchFiles(
    _ results: [BenchResult], machine: MachineInfo, to directory: String
) throws(BenchError) -> [String] {
    try prepareOutputDirectory(directory)
    let files: [(String, String)] = [
        ("bench.svg", renderSVG(results) + "\n"),
        ("bench.json", formatJSON(results, machine: machine)),
        ("bench.csv", formatCSV(results)),
    ]
    var written: [String] = []
    for (name, text) in files {
        let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
        do { try HostFS.writeFile(path, Array(text.utf8)) } catch {
            throw .writeFailed(path: path, reason: error.description)
        }
        written.append(path)
    }
    return written
}
