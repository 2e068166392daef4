// SPDX-License-Identifier: Apache-2.0
public import NommuBase
public import NommuMM

/// A short session of a few processes mapping and unmapping, with what `/proc` shows after
/// each step: what `nommu maps` prints, for a newcomer to see the model at work.
public enum MapsDemo {
    /// Runs the session on a fresh system and returns its transcript.
    /// - Parameters:
    ///   - nrTrimPages: `vm.nr_trim_pages` for the session (slack appears with 0 or ≥ 2).
    ///   - arenaBytes: The machine's memory.
    ///   - reference: Whose answers where the document and Linux 6.1 differ.
    public static func run(
        nrTrimPages: Int = 1, arenaBytes: Int = 8 << 20, reference: System.Reference = .document
    ) throws(Errno) -> String {
        let system = try System(.init(arenaBytes: arenaBytes, nrTrimPages: nrTrimPages, reference: reference))
        var out = "nommu maps: a no-MMU machine with \(arenaBytes >> 20) MiB of memory, 4 KiB pages, "
        out += "max order 10, vm.nr_trim_pages = \(nrTrimPages)"
        out += reference == .document ? "\n" : ", reference \(reference.name)\n"
        let page: UInt = 4096
        let rw: Protection = [.read, .write]
        let anon: MapFlags = [.private, .anonymous]

        func show(_ title: String, _ processes: [Process]) throws(Errno) {
            out += "\n== \(title)\n"
            out += "-- /proc/maps (every region, shared or not)\n" + system.procMaps()
            for p in processes where p.isAlive {
                out += "-- /proc/\(p.pid)/maps\n" + (system.procPIDMaps(p.pid) ?? "")
            }
            // Freed runs of order ≤ 3 sit on this thread's per-CPU lists, which buddyinfo does not
            // show; the demo hands them back first so that each step shows the buddy lists merged.
            system.allocator.drainLocalPerCPULists()
            let copy = system.procMeminfo().split(separator: "\n").first { $0.hasPrefix("MmapCopy:") } ?? ""
            out += "-- /proc/meminfo: \(copy)\n-- /proc/buddyinfo: \(system.procBuddyinfo())"
        }
        func call(_ p: Process, _ text: String) { out += "\(p): \(text)\n" }

        let a = system.createProcess()
        let b = system.createProcess()
        let x = try a.mmap(length: 3 * page, protection: rw, flags: anon)
        call(a, "mmap(NULL, 3 pages, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) = \(x)")
        let y = try a.mmap(length: 1, protection: [.read, .exec], flags: anon)
        call(a, "mmap(NULL, 1 byte, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS) = \(y)  (one whole page)")
        let z = try b.mmap(length: 5 * page, protection: rw, flags: [.shared, .anonymous])
        call(b, "mmap(NULL, 5 pages, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS) = \(z)  (private all the same)")
        try show("two processes, three anonymous regions", [a, b])

        let c = try a.vfork()
        call(c, "vfork() of \(a): shares its address space")
        let w = try c.mmap(length: 2 * page, protection: rw, flags: anon)
        call(c, "mmap(NULL, 2 pages, …) = \(w)  (\(a) sees it too)")
        try a.munmap(address: x.rawValue + page, length: page)
        call(a, "munmap(\(VirtualAddress(x.rawValue + page)), 1 page): a hole in the middle splits the mapping")
        _ = try b.mremap(address: z.rawValue, oldLength: 5 * page, newLength: 2 * page)
        call(b, "mremap(\(z), 5 pages, 2 pages): shrinks in place; the region keeps its pages")
        try show("after a vfork, a middle cut and an mremap shrink", [a, b, c])

        for p in [a, b, c] { p.exit() }
        call(a, "exit; \(b): exit; \(c): exit")
        try show("everyone has exited: every page is back", [])
        return out
    }
}
