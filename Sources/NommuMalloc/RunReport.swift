// SPDX-License-Identifier: Apache-2.0
//
// The report of one process run on the model (`nommu run`): what `libnommu-run.so` writes
// when the process ends, as a JSON line for `nommu run` to gather, or as text on stderr when
// the library is preloaded by hand. The keys follow `nommu replay --format json` where the
// two measure the same thing (`events`, `wall_ms`, `ns_per_event`, `peak_live_bytes`,
// `peak_pages_held`, `slack_pages`, `largest_free_block_bytes`, `first_failure`, …) and add
// what only a live process has: its pid and parent, how it ended, the call stack of the
// first allocation that did not fit, the allocation sites that held the most, and the
// memory the model used for itself.
import NommuBase

/// One process's report.
public struct RunReport: Sendable, Hashable, Decodable {
    /// A return address in the process: the object it lies in and where.
    public struct Frame: Sendable, Hashable, Decodable {
        /// The address in the process.
        public var address: UInt64
        /// The file of the object holding it (the program or a shared library), "" if none.
        public var module: String
        /// `address` less the object's load address: what a symboliser is given.
        public var offset: UInt64
        /// The nearest exported symbol before it (dladdr), and how far past it.
        public var symbol: String?
        public var symbolOffset: UInt64?
        /// `function (file:line)` from a symboliser, filled in by `nommu run`.
        public var location: String?

        public init(
            address: UInt64, module: String, offset: UInt64, symbol: String? = nil, symbolOffset: UInt64? = nil,
            location: String? = nil
        ) {
            self.address = address
            self.module = module
            self.offset = offset
            self.symbol = symbol
            self.symbolOffset = symbolOffset
            self.location = location
        }

        enum CodingKeys: String, CodingKey {
            case address, module, offset, symbol, location
            case symbolOffset = "symbol_offset"
        }

        /// `location`, else `symbol+0x…`, else `?`, then `[module+0x…]`.
        public var text: String {
            let name =
                location ?? symbol.map { s in symbolOffset.map { "\(s)+0x\(String($0, radix: 16))" } ?? s } ?? "?"
            let file = module.split(separator: "/").last.map(String.init) ?? "?"
            return "\(name) [\(file)+0x\(String(offset, radix: 16))]"
        }

        func json() -> String {
            var f = "{\"address\": \(address), \"module\": \(jsonString(module)), \"offset\": \(offset)"
            f += ", \"symbol\": " + (symbol.map(jsonString) ?? "null")
            f += ", \"symbol_offset\": " + (symbolOffset.map { String($0) } ?? "null")
            f += ", \"location\": " + (location.map(jsonString) ?? "null")
            return f + "}"
        }
    }

    /// The first allocation that did not fit.
    public struct Failure: Sendable, Hashable, Decodable {
        /// The call's number among the process's malloc calls (1-based).
        public var event: Int
        /// Bytes the program asked for.
        public var size: Int
        /// Bytes of the `mmap` the malloc asked for to serve it (0 when it asked for none).
        public var mmapBytes: Int
        /// The largest free block in the system then.
        public var largestFreeBlockBytes: Int
        /// The call stack of the allocation, innermost first (the library's own frames left out).
        public var stack: [Frame]

        public init(event: Int, size: Int, mmapBytes: Int, largestFreeBlockBytes: Int, stack: [Frame]) {
            self.event = event
            self.size = size
            self.mmapBytes = mmapBytes
            self.largestFreeBlockBytes = largestFreeBlockBytes
            self.stack = stack
        }

        enum CodingKeys: String, CodingKey {
            case event, size, stack
            case mmapBytes = "mmap_bytes"
            case largestFreeBlockBytes = "largest_free_block_bytes"
        }
    }

    /// An allocation site: the code that called malloc (or calloc, realloc, …).
    public struct Site: Sendable, Hashable, Decodable {
        public var frame: Frame
        /// Calls made from it, and the bytes they asked for.
        public var calls: Int
        public var bytes: Int
        /// The most bytes its blocks held at once, and what they held when the report was made.
        public var peakBytes: Int
        public var liveBytes: Int

        public init(frame: Frame, calls: Int, bytes: Int, peakBytes: Int, liveBytes: Int) {
            self.frame = frame
            self.calls = calls
            self.bytes = bytes
            self.peakBytes = peakBytes
            self.liveBytes = liveBytes
        }

        enum CodingKeys: String, CodingKey {
            case frame, calls, bytes
            case peakBytes = "peak_bytes"
            case liveBytes = "live_bytes"
        }
    }

    /// `comm`, and the command line (cut at 256 characters).
    public var program: String
    public var command: String
    public var pid: Int
    public var ppid: Int
    /// The parent's pid when this process was forked and did not exec (its counts start at the fork).
    public var forkedFrom: Int?
    /// How the report came to be written: `exit`, `_exit`, `exec` or `signal N`.
    public var end: String
    /// CLOCK_REALTIME when the process (or its image) started, in ns: with `pid`, a process
    /// image's identity.
    public var startedNs: UInt64
    public var policy: String
    public var arenaBytes: Int
    public var pageSize: Int
    /// Malloc calls (malloc, calloc, realloc, free, posix_memalign and the other aligned ones).
    public var events: Int
    /// The process's lifetime, and the time its threads spent in the model's calls (summed
    /// over threads).
    public var wallMs: Double
    public var modelMs: Double
    /// `modelMs` per call.
    public var nsPerEvent: Double
    public var peakLiveBytes: Int
    /// The most pages the malloc's mappings held at any moment (regions, slack included).
    public var peakPagesHeld: Int
    public var slackPages: Int
    public var trimmedPages: Int
    public var mmapCopyPeakPages: Int
    /// The largest free block and `/proc/buddyinfo` when the pages held peaked.
    public var largestFreeBlockBytes: Int
    public var buddyinfo: String
    public var mmaps: Int
    public var munmaps: Int
    /// Calls that failed with ENOMEM.
    public var failures: Int
    /// Frees of pointers inside the arena that are not live blocks (double frees).
    public var invalidFrees: Int
    public var liveBlocks: Int
    public var liveBytes: Int
    /// Bytes of host memory the model and the Swift runtime held for themselves when the
    /// report was made, with what the program allocated before the model was ready
    /// (glibc's `mallinfo2`: in-use chunks plus its mmapped ones).
    public var hostMallocBytes: Int
    public var firstFailure: Failure?
    /// The allocation sites that held the most at their peak, most first (empty when site
    /// tracking is off).
    public var sites: [Site]

    package init(
        program: String, command: String, pid: Int, ppid: Int, forkedFrom: Int?, end: String, startedNs: UInt64,
        policy: String, arenaBytes: Int, pageSize: Int, events: Int, wallMs: Double, modelMs: Double,
        peakLiveBytes: Int, peakPagesHeld: Int, slackPages: Int, trimmedPages: Int, mmapCopyPeakPages: Int,
        largestFreeBlockBytes: Int, buddyinfo: String, mmaps: Int, munmaps: Int, failures: Int, invalidFrees: Int,
        liveBlocks: Int, liveBytes: Int, hostMallocBytes: Int, firstFailure: Failure?, sites: [Site]
    ) {
        self.program = program
        self.command = command
        self.pid = pid
        self.ppid = ppid
        self.forkedFrom = forkedFrom
        self.end = end
        self.startedNs = startedNs
        self.policy = policy
        self.arenaBytes = arenaBytes
        self.pageSize = pageSize
        self.events = events
        self.wallMs = wallMs
        self.modelMs = modelMs
        nsPerEvent = events > 0 ? modelMs * 1e6 / Double(events) : 0
        self.peakLiveBytes = peakLiveBytes
        self.peakPagesHeld = peakPagesHeld
        self.slackPages = slackPages
        self.trimmedPages = trimmedPages
        self.mmapCopyPeakPages = mmapCopyPeakPages
        self.largestFreeBlockBytes = largestFreeBlockBytes
        self.buddyinfo = buddyinfo
        self.mmaps = mmaps
        self.munmaps = munmaps
        self.failures = failures
        self.invalidFrees = invalidFrees
        self.liveBlocks = liveBlocks
        self.liveBytes = liveBytes
        self.hostMallocBytes = hostMallocBytes
        self.firstFailure = firstFailure
        self.sites = sites
    }

    enum CodingKeys: String, CodingKey {
        case program, command, pid, ppid, end, policy, events, buddyinfo, mmaps, munmaps, failures, sites
        case forkedFrom = "forked_from"
        case startedNs = "started_ns"
        case arenaBytes = "arena_bytes"
        case pageSize = "page_size"
        case wallMs = "wall_ms"
        case modelMs = "model_ms"
        case nsPerEvent = "ns_per_event"
        case peakLiveBytes = "peak_live_bytes"
        case peakPagesHeld = "peak_pages_held"
        case slackPages = "slack_pages"
        case trimmedPages = "trimmed_pages"
        case mmapCopyPeakPages = "mmap_copy_peak_pages"
        case largestFreeBlockBytes = "largest_free_block_bytes"
        case invalidFrees = "invalid_frees"
        case liveBlocks = "live_blocks"
        case liveBytes = "live_bytes"
        case hostMallocBytes = "host_malloc_bytes"
        case firstFailure = "first_failure"
    }

    /// `program (pid N)`.
    public var name: String { "\(program) (pid \(pid))" }

    /// Pages held at the peak ÷ bytes live at the peak.
    public var overhead: Double {
        peakLiveBytes > 0 ? Double(peakPagesHeld * pageSize) / Double(peakLiveBytes) : 0
    }

    /// The report as one JSON object on one line (the keys of `CodingKeys`, and `trace`,
    /// `overhead`, `peak_pages_in_call` and `unknown_frees` as `nommu replay --format json`
    /// has them).
    public func json() -> String {
        var fields: [(String, String)] = [
            ("trace", jsonString(name)), ("program", jsonString(program)), ("command", jsonString(command)),
            ("pid", String(pid)), ("ppid", String(ppid)), ("forked_from", forkedFrom.map { String($0) } ?? "null"),
            ("end", jsonString(end)), ("started_ns", String(startedNs)), ("policy", jsonString(policy)),
            ("arena_bytes", String(arenaBytes)), ("page_size", String(pageSize)), ("events", String(events)),
            ("wall_ms", number(wallMs)), ("model_ms", number(modelMs)), ("ns_per_event", number(nsPerEvent)),
            // A live process has no view between calls: its peak is at any moment, which is what
            // replay calls peak_pages_in_call; both keys carry it.
            ("peak_live_bytes", String(peakLiveBytes)), ("peak_pages_held", String(peakPagesHeld)),
            ("peak_pages_in_call", String(peakPagesHeld)),
            ("overhead", number(overhead)), ("slack_pages", String(slackPages)),
            ("trimmed_pages", String(trimmedPages)), ("mmap_copy_peak_pages", String(mmapCopyPeakPages)),
            ("largest_free_block_bytes", String(largestFreeBlockBytes)), ("buddyinfo", jsonString(buddyinfo)),
            ("mmaps", String(mmaps)), ("munmaps", String(munmaps)), ("failures", String(failures)),
            ("invalid_frees", String(invalidFrees)), ("unknown_frees", String(invalidFrees)),
            ("live_blocks", String(liveBlocks)),
            ("live_bytes", String(liveBytes)), ("host_malloc_bytes", String(hostMallocBytes)),
        ]
        if let f = firstFailure {
            var o = "{\"event\": \(f.event), \"size\": \(f.size), \"mmap_bytes\": \(f.mmapBytes)"
            o += ", \"largest_free_block_bytes\": \(f.largestFreeBlockBytes)"
            o += ", \"stack\": [" + f.stack.map { $0.json() }.joined(separator: ", ") + "]}"
            fields.append(("first_failure", o))
        } else {
            fields.append(("first_failure", "null"))
        }
        let sites = self.sites.map { s in
            "{\"frame\": \(s.frame.json()), \"calls\": \(s.calls), \"bytes\": \(s.bytes), "
                + "\"peak_bytes\": \(s.peakBytes), \"live_bytes\": \(s.liveBytes)}"
        }
        fields.append(("sites", "[" + sites.joined(separator: ", ") + "]"))
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }
}

extension RunReport {
    /// Reports as text: a row per process (at most `rows`: those that held the most, in the
    /// order they started), a total row when `total` is set; then, for each process with a
    /// failed allocation and the `detailed` processes that held the most, the allocator at its
    /// peak, the first failure with its call stack, and its top `sites` allocation sites.
    public static func text(
        _ reports: [RunReport], total: Bool = false, sites: Int = 5, rows: Int = 25, detailed: Int = 3
    ) -> String {
        guard let first = reports.first else { return "" }
        let header = [
            "process", "calls", "wall ms", "in model ms", "ns/call", "peak live", "peak held", "overhead", "mmaps",
            "failed", "host malloc",
        ]
        func row(_ name: String, _ r: RunReport) -> [String] {
            [
                name, String(r.events), number(r.wallMs), number(r.modelMs), number(r.nsPerEvent),
                ReplayFormat.kib(r.peakLiveBytes), ReplayFormat.kib(r.peakPagesHeld * r.pageSize), number(r.overhead),
                String(r.mmaps), String(r.failures), ReplayFormat.kib(r.hostMallocBytes),
            ]
        }
        let byHeld = reports.indices.sorted { reports[$0].peakPagesHeld > reports[$1].peakPagesHeld }
        let shown = Set(byHeld.prefix(rows))
        var lines = reports.indices.filter { shown.contains($0) }.map { row(reports[$0].name, reports[$0]) }
        if total && reports.count > 1 { lines.append(row("total (\(reports.count) processes)", combined(reports))) }
        var out = "nommu run: \(first.policy) malloc, arena \(ReplayFormat.kib(first.arenaBytes)) per process\n"
        out += alignedTable(header: header, rows: lines)
        if reports.count > rows { out += "(\(reports.count - rows) more processes held less; --report has them all)\n" }
        let failed = reports.indices.filter { reports[$0].firstFailure != nil }
        let details = Set(failed + byHeld.prefix(detailed))
        for i in reports.indices where details.contains(i) {
            let r = reports[i]
            out += "\n\(r.name), ended by \(r.end)"
            if let parent = r.forkedFrom { out += " (forked from pid \(parent): counts from the fork)" }
            out += ": at the peak MmapCopy \(r.mmapCopyPeakPages * r.pageSize / 1024) kB, slack \(r.slackPages) pages"
            out += ", largest free block \(ReplayFormat.kib(r.largestFreeBlockBytes)); pages trimmed \(r.trimmedPages)"
            out += "; \(r.liveBlocks) blocks (\(ReplayFormat.kib(r.liveBytes))) live at the end"
            if r.invalidFrees > 0 { out += "; \(r.invalidFrees) frees of pointers that were not live blocks" }
            out += "\n"
            if let f = r.firstFailure {
                out += "  did not fit: call \(f.event) asked for \(f.size) bytes"
                out += f.mmapBytes > 0 ? "; the malloc asked mmap for \(f.mmapBytes) bytes" : ""
                out += "; the largest free block was \(ReplayFormat.kib(f.largestFreeBlockBytes))"
                out += r.failures > 1 ? " (\(r.failures) calls failed in all)\n" : "\n"
                for (i, frame) in f.stack.enumerated() { out += "    #\(i) \(shortened(frame.text))\n" }
            }
            out += siteLines(r.sites.prefix(sites))
        }
        if total && reports.count > 1 {
            out += "\nall processes:\n" + siteLines(combined(reports).sites.prefix(sites))
        }
        return out
    }

    /// The top sites as indented lines.
    static func siteLines(_ sites: ArraySlice<Site>) -> String {
        guard !sites.isEmpty else { return "" }
        let rows = sites.map { s in
            [ReplayFormat.kib(s.peakBytes), ReplayFormat.kib(s.liveBytes), String(s.calls), shortened(s.frame.text)]
        }
        let table = alignedTable(header: ["peak", "at the end", "calls", "allocation site"], rows: rows)
        return "  top allocation sites by peak bytes:\n"
            + table.split(separator: "\n").map { "    " + $0 + "\n" }.joined()
    }

    /// `text` cut to 110 characters in its middle (C++ names run long; the JSON has them whole).
    static func shortened(_ text: String) -> String {
        guard text.count > 110 else { return text }
        return String(text.prefix(70)) + "…" + String(text.suffix(39))
    }

    /// The processes of a tree as one: counts, times and bytes summed (peaks too: each
    /// process has a machine of its own), the first failure of the first process that had
    /// one, and sites merged by object and offset.
    public static func combined(_ reports: [RunReport]) -> RunReport {
        var c = reports[0]
        c.program = "total"
        c.command = ""
        c.forkedFrom = nil
        c.end = "exit"
        for r in reports.dropFirst() {
            c.events += r.events
            c.wallMs = max(c.wallMs, r.wallMs)
            c.modelMs += r.modelMs
            c.peakLiveBytes += r.peakLiveBytes
            c.peakPagesHeld += r.peakPagesHeld
            c.slackPages += r.slackPages
            c.trimmedPages += r.trimmedPages
            c.mmapCopyPeakPages += r.mmapCopyPeakPages
            c.largestFreeBlockBytes = max(c.largestFreeBlockBytes, r.largestFreeBlockBytes)
            c.mmaps += r.mmaps
            c.munmaps += r.munmaps
            c.failures += r.failures
            c.invalidFrees += r.invalidFrees
            c.liveBlocks += r.liveBlocks
            c.liveBytes += r.liveBytes
            c.hostMallocBytes += r.hostMallocBytes
            if c.firstFailure == nil { c.firstFailure = r.firstFailure }
        }
        c.nsPerEvent = c.events > 0 ? c.modelMs * 1e6 / Double(c.events) : 0
        var merged: [String: Site] = [:]
        var order: [String] = []
        for r in reports {
            for s in r.sites {
                let key = "\(s.frame.module)+\(s.frame.offset)"
                if var m = merged[key] {
                    m.calls += s.calls
                    m.bytes += s.bytes
                    m.peakBytes += s.peakBytes
                    m.liveBytes += s.liveBytes
                    merged[key] = m
                } else {
                    merged[key] = s
                    order.append(key)
                }
            }
        }
        c.sites = order.compactMap { merged[$0] }.sorted { $0.peakBytes > $1.peakBytes }
        return c
    }
}
