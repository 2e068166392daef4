// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import NommuBase
import NommuMM
import NommuReports

/// `nommu exec-map`: real executables loaded N times into one no-MMU system.
struct ExecMapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec-map",
        abstract: "Load real ELF executables N times each and show what every process needs and what XIP sharing saves."
    )

    @Argument(help: "Host paths of ELF executables, for example /bin/busybox or /usr/bin/*.")
    var files: [String]

    @Option(help: "Processes per program.")
    var instances: Int = 2

    @Option(help: "Load from rom (romfs on flash: text executes in place) or data (disk: text copied once, shared).")
    var from: String = "rom"

    @Option(help: "Memory of the machine, in MiB.")
    var arenaMiB: Int = 64

    @Option(help: "Whose answers where the kernel document and Linux 6.1 differ: document or linux-6.1.")
    var reference: String = "document"

    func run() throws {
        guard let source = ExecMap.Source(rawValue: from) else {
            throw ValidationError("--from must be rom or data")
        }
        guard instances >= 1 else { throw ValidationError("--instances must be at least 1") }
        let reference = try parseReference(reference)
        var loaded: [(name: String, bytes: [UInt8])] = []
        var names = Set<String>()
        for path in files {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("cannot read \(path)")
            }
            let bytes = [UInt8](data)
            var name = String(path.split(separator: "/").last ?? "a.out")
            var n = 2
            while names.contains(name) {
                name = "\(path.split(separator: "/").last ?? "a.out")-\(n)"
                n += 1
            }
            names.insert(name)
            loaded.append((name, bytes))
        }
        do {
            let result = try ExecMap.run(
                files: loaded, instances: instances, from: source, arenaBytes: arenaMiB << 20, reference: reference)
            print(result.report, terminator: "")
        } catch {
            throw ValidationError("nommu exec-map: \(error.debugDescription)")
        }
    }
}
