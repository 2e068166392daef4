// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import NommuBase
import NommuMM

#if canImport(Glibc)
    import Glibc
#endif

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

    func run() throws {
        guard let source = ExecMap.Source(rawValue: from) else {
            throw ValidationError("--from must be rom or data")
        }
        guard instances >= 1 else { throw ValidationError("--instances must be at least 1") }
        var loaded: [(name: String, bytes: [UInt8])] = []
        var names = Set<String>()
        for path in files {
            guard let bytes = readHostFile(path) else { throw ValidationError("cannot read \(path)") }
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
            let result = try ExecMap.run(files: loaded, instances: instances, from: source, arenaBytes: arenaMiB << 20)
            print(result.report, terminator: "")
        } catch {
            throw ValidationError("nommu exec-map: \(error.debugDescription)")
        }
    }

    private func readHostFile(_ path: String) -> [UInt8]? {
        let fd = Glibc.open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, 1 << 16) }
            if n < 0 { return nil }
            if n == 0 { break }
            out += buf[0..<n]
        }
        return out
    }
}
