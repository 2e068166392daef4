// SPDX-License-Identifier: Apache-2.0
import Foundation
import NommuHost
#if canImport(Glibc)
    import Glibc
#endif

/// Facts about the machine and the set-up, printed above the table and put in the JSON.
public struct MachineInfo: Sendable, Hashable {
    /// The host's page size (sysconf).
    public var hostPageSize: Int
    /// Online CPUs (sysconf(_SC_NPROCESSORS_ONLN)).
    public var cpuCount: Int
    /// The CPU's model name, when the host says.
    public var cpuModel: String?
    /// The host's transparent huge page mode (`always`, `madvise`, `never`), when it says.
    public var transparentHugePages: String?
    /// Where the allocator arenas (and the memset buffer) come from.
    public var arenaBacking: String
    /// Page size of the bench's allocators.
    public var allocatorPageSize: Int
    /// Largest maximum order of the sized series' allocators.
    public var maxOrder: Int
    /// Arena of the largest sized series' allocator.
    public var arenaBytes: Int
    /// `vm.nr_trim_pages` of the bench's allocators.
    public var nrTrimPages: Int
    /// `release` or `debug`.
    public var build: String
    /// Whether this was a `--quick` run.
    public var quick: Bool

    public init(
        hostPageSize: Int, cpuCount: Int, cpuModel: String?, transparentHugePages: String?, arenaBacking: String,
        allocatorPageSize: Int, maxOrder: Int, arenaBytes: Int, nrTrimPages: Int, build: String, quick: Bool
    ) {
        self.hostPageSize = hostPageSize
        self.cpuCount = cpuCount
        self.cpuModel = cpuModel
        self.transparentHugePages = transparentHugePages
        self.arenaBacking = arenaBacking
        self.allocatorPageSize = allocatorPageSize
        self.maxOrder = maxOrder
        self.arenaBytes = arenaBytes
        self.nrTrimPages = nrTrimPages
        self.build = build
        self.quick = quick
    }

    /// The facts of this machine, for a run of `configuration`.
    public static func current(for configuration: BenchConfiguration) -> MachineInfo {
        #if DEBUG
            let build = "debug"
        #else
            let build = "release"
        #endif
        return MachineInfo(
            hostPageSize: HostArena.hostPageSize, cpuCount: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
            cpuModel: readCPUModel(), transparentHugePages: readTHPMode(),
            arenaBacking: HostArena.Backing.mmap.rawValue, allocatorPageSize: BenchConfiguration.allocatorPageSize,
            maxOrder: configuration.sizedMaxOrder, arenaBytes: configuration.sizedArenaBytes,
            nrTrimPages: 1, build: build, quick: configuration.quick)
    }

    /// One line: host page, CPUs, CPU model, arena backing and allocator set-up, build.
    public var summary: String {
        var parts = ["host page \(hostPageSize) B", "\(cpuCount) CPUs (sysconf)"]
        if let m = cpuModel { parts.append(m) }
        var arena = "arena backing \(arenaBacking)"
        if let t = transparentHugePages { arena += " (THP \(t))" }
        parts.append(arena)
        let orders =
            maxOrder > BenchConfiguration.defaultMaxOrder
            ? "max order \(BenchConfiguration.defaultMaxOrder) (raised up to \(maxOrder) for sizes above "
                + "\(formatBytes(allocatorPageSize << BenchConfiguration.defaultMaxOrder)))"
            : "max order \(maxOrder)"
        parts.append(
            "allocator \(formatBytes(allocatorPageSize)) pages, \(orders), arenas of two max-order blocks, "
                + "nr_trim_pages \(nrTrimPages)")
        parts.append(build + " build" + (quick ? ", quick" : ""))
        return parts.joined(separator: "; ")
    }
}

private func readCPUModel() -> String? {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("model name") {
        if let colon = line.firstIndex(of: ":") {
            let name = line[line.index(after: colon)...].trimmingBlanks()
            return name.isEmpty ? nil : name
        }
    }
    return nil
}

private func readTHPMode() -> String? {
    guard let text = try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8),
        let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]")
    else { return nil }
    return String(text[text.index(after: open)..<close])
}
