// SPDX-License-Identifier: Apache-2.0
public import NommuBase
public import NommuMM

/// `nommu exec-map`: load real executables N times each into one system and report what
/// memory every process needs, and what sharing read-only copies and executing in place
/// from flash save.
public enum ExecMap {
    /// Where the programs are put before they are loaded.
    public enum Source: String, Sendable, CaseIterable {
        /// The romfs image on flash: text executes in place.
        case rom
        /// The disk filesystem: text is copied once and shared.
        case data
    }

    /// One loaded process.
    public struct Row: Sendable, Hashable {
        public var pid: Int32
        public var program: String
        /// Bytes of memory this process holds alone (its data, bss, brk+stack).
        public var privateBytes: Int
        /// Bytes of copies it shares with other processes (read-only text on /data).
        public var sharedBytes: Int
        /// Bytes mapped in place (text executing from flash): no RAM at all.
        public var inPlaceBytes: Int
    }

    /// The outcome of a run.
    public struct Result: Sendable {
        public var rows: [Row]
        /// RAM in use (`MmapCopy`).
        public var ramBytes: Int
        /// RAM if every process had its own copy of everything.
        public var unsharedBytes: Int
        /// The `/proc/maps` text at the end, and `/proc/<pid>/maps` of each program's first process.
        public var procMaps: String
        public var processMaps: [(program: String, pid: Int32, text: String)]
        /// Programs that could not be put in place or loaded, with why (`ENOEXEC` for a file
        /// that is not an ELF executable, `ENOMEM` when the arena is too small, `ENOSPC` when
        /// the flash is): the others are loaded and reported all the same.
        public var failures: [(program: String, error: Errno)]
        /// The `PT_INTERP` path of each program that names one (the model does not load it).
        public var interpreters: [(program: String, path: String)]
        public var report: String
    }

    /// Loads `files` (name, ELF bytes) `instances` times each from `source`. A program that
    /// cannot be loaded is left out (`Result.failures` says why) and the rest go on.
    /// - Throws: `EINVAL` for no files or no instances; what `System` throws for the arena.
    public static func run(
        files: [(name: String, bytes: [UInt8])], instances: Int, from source: Source, arenaBytes: Int = 64 << 20,
        reference: System.Reference = .document
    ) throws(Errno) -> Result {
        guard instances >= 1, !files.isEmpty else { throw .invalidArgument }
        let flashBytes = max(16 << 20, (files.reduce(0) { $0 + $1.bytes.count + 16 } + 4095) & ~4095)
        let system = try System(.init(arenaBytes: arenaBytes, flashBytes: flashBytes, reference: reference))
        let loader = system.createProcess()
        var placed: [(name: String, path: String)] = []
        var failures: [(program: String, error: Errno)] = []
        for f in files {
            let path = "/\(source.rawValue)/\(f.name)"
            do throws(Errno) {
                switch source {
                case .rom: try system.romfsAdd(path: path, f.bytes)
                case .data: try loader.writeFile(path, f.bytes)
                }
                placed.append((f.name, path))
            } catch {
                failures.append((f.name, error))
            }
        }
        loader.exit()
        var processes: [(String, Process)] = []
        var interpreters: [(program: String, path: String)] = []
        var failed = Set<String>()
        for instance in 0..<instances {
            // Once every program has failed (the arena is full), the rest of the instances would too.
            guard failed.count < placed.count else { break }
            for (name, path) in placed where !failed.contains(name) {
                let p = system.createProcess()
                do throws(Errno) {
                    let image = try p.exec(path)
                    if instance == 0, let interp = image.interpreter { interpreters.append((name, interp)) }
                    processes.append((name, p))
                } catch {
                    p.exit()
                    failed.insert(name)
                    failures.append((name, error))
                }
            }
        }
        var rows: [Row] = []
        var unshared = 0
        let page = system.configuration.pageSize
        for (name, p) in processes {
            var row = Row(pid: p.pid, program: name, privateBytes: 0, sharedBytes: 0, inPlaceBytes: 0)
            for m in p.mappings {
                let size = Int(m.regionTop.rawValue - m.regionStart.rawValue)
                let mapped = (Int(m.end.rawValue - m.start.rawValue) + page - 1) / page * page
                if !m.ownsPages {
                    row.inPlaceBytes += mapped
                    unshared += mapped
                } else if m.regionUsage > 1 {
                    row.sharedBytes += size
                    unshared += size
                } else {
                    row.privateBytes += size
                    unshared += size
                }
            }
            rows.append(row)
        }
        let ram = system.mmapPagesAllocated * page
        var firsts: [(program: String, pid: Int32, text: String)] = []
        for (name, _) in placed {
            if let (_, p) = processes.first(where: { $0.0 == name }) {
                firsts.append((name, p.pid, system.procPIDMaps(p.pid) ?? ""))
            }
        }
        let procMaps = system.procMaps()
        var out = "nommu exec-map: \(files.count) program(s) × \(instances) instance(s) from /\(source.rawValue)"
        out += " (\(arenaBytes >> 20) MiB of memory, \(page / 1024) KiB pages)\n\n"
        out +=
            pad("pid", 5) + "  " + pad("program", 16, left: true) + pad("private kB", 12) + pad("shared kB", 11)
            + pad("in place kB", 13) + "\n"
        for r in rows {
            out +=
                pad(String(r.pid), 5) + "  " + pad(r.program, 16, left: true) + pad(String(r.privateBytes / 1024), 12)
                + pad(String(r.sharedBytes / 1024), 11) + pad(String(r.inPlaceBytes / 1024), 13) + "\n"
        }
        out += "\nRAM in use (MmapCopy): \(ram / 1024) kB\n"
        out += "RAM if every process had its own copies: \(unshared / 1024) kB\n"
        let saved = unshared - ram
        // Integer rounding: the static library then needs nothing from libm.
        let percent = unshared > 0 ? (saved * 100 + unshared / 2) / unshared : 0
        out += "saved by sharing"
        out += source == .rom ? " and executing in place" : " read-only copies"
        out += ": \(saved / 1024) kB (\(percent)%)\n"
        if !interpreters.isEmpty {
            out += "\nprograms naming an interpreter (PT_INTERP; the model loads the program alone, as if static):\n"
            for (program, path) in interpreters { out += "  \(program): \(path)\n" }
        }
        if !failures.isEmpty {
            out += "\nnot loaded:\n"
            for (program, error) in failures { out += "  \(program): \(error.debugDescription)\n" }
        }
        out += "\n== /proc/maps\n" + procMaps
        for (program, pid, text) in firsts { out += "\n== /proc/\(pid)/maps (\(program))\n" + text }
        for (_, p) in processes { p.exit() }
        return Result(
            rows: rows, ramBytes: ram, unsharedBytes: unshared, procMaps: procMaps, processMaps: firsts,
            failures: failures, interpreters: interpreters, report: out)
    }

    private static func pad(_ s: String, _ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return left ? s + fill : fill + s
    }
}
