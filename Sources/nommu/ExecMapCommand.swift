// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import NommuBase
import NommuBench
import NommuHost
import NommuMM
import NommuReports

/// `nommu exec-map`: real executables loaded N times into one no-MMU system.
struct ExecMapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec-map",
        abstract:
            "Load real ELF executables N times each and show what every process needs and what XIP sharing saves.",
        discussion: """
            Directories among the files are skipped. A file that cannot be read or loaded is named on
            stderr with the reason, and the others are loaded and reported all the same.

            Exit status: 0 when every file loaded, 1 when one did not fit in the arena (ENOMEM) or the
            flash (ENOSPC), 2 when one could not be read or is not a loadable ELF executable, 64 for a
            bad option.

            Examples:
              nommu exec-map /bin/busybox --instances 4
              nommu exec-map /usr/bin/* --from data --arena 256M
            """
    )

    @Argument(help: "Host paths of ELF executables, for example /bin/busybox or /usr/bin/*.")
    var files: [String]

    @Option(help: "Processes per program.")
    var instances: Int = 2

    @Option(help: "Load from rom (romfs on flash: text executes in place) or data (disk: text copied once, shared).")
    var from: String = "rom"

    @Option(help: "Memory of the machine, e.g. 64M (K/M/G suffixes; at most 1G).")
    var arena: String = defaultArena

    @Option(help: "Whose answers where the kernel document and Linux 6.1 differ: document or linux-6.1.")
    var reference: String = "document"

    func validate() throws {
        do { _ = try parseSize(arena) } catch { throw ValidationError("--arena: \(error)") }
    }

    func run() throws {
        try reporting("exec-map") { try load() }
    }

    func load() throws {
        let arenaBytes = try parseSize(arena)
        guard let source = ExecMap.Source(rawValue: from) else {
            throw ValidationError("--from must be rom or data")
        }
        guard instances >= 1 else { throw ValidationError("--instances must be at least 1") }
        let reference = try parseReference(reference)
        var loaded: [(name: String, bytes: [UInt8])] = []
        var names = Set<String>()
        var status: Int32 = 0
        var pathOf: [String: String] = [:]
        for path in files {
            let bytes: [UInt8]
            do { bytes = try HostFS.contents(of: path) } catch {
                if error == .isDirectory {
                    printError("nommu exec-map: \(path): a directory, skipped")
                } else {
                    printError("nommu exec-map: cannot read \(path): \(error.description)")
                    status = 2
                }
                continue
            }
            var name = String(path.split(separator: "/").last ?? "a.out")
            var n = 2
            while names.contains(name) {
                name = "\(path.split(separator: "/").last ?? "a.out")-\(n)"
                n += 1
            }
            names.insert(name)
            pathOf[name] = path
            loaded.append((name, bytes))
        }
        guard !loaded.isEmpty else { throw CommandFailure(text: "no file to load", status: 2) }
        let result: ExecMap.Result
        do {
            result = try ExecMap.run(
                files: loaded, instances: instances, from: source, arenaBytes: arenaBytes, reference: reference)
        } catch {
            throw CommandFailure(text: "cannot make the system: \(error.debugDescription)", status: 2)
        }
        print(result.report, terminator: "")
        for (program, error) in result.failures {
            printError("nommu exec-map: \(pathOf[program] ?? program): not loaded: \(error.debugDescription)")
            status = max(status, error == .noMemory || error == .noSpace ? 1 : 2)
        }
        if status != 0 { throw ExitCode(status) }
    }
}
