// SPDX-License-Identifier: Apache-2.0
//
// Trace replay: several traces as several processes of one system, interleaved one event
// each in turn, so they fragment each other as programs on one board do. Every block is
// written (its first and last byte, or every page with `touch`) so the memory is used.
// The same traces also run through the host's glibc malloc in the same run, for the ratio.
internal import CShims
public import NommuBase
import NommuMM
import PageAllocator

#if canImport(Glibc)
    import Glibc
#endif

/// How a replay is run.
public struct ReplayOptions: Sendable, Hashable {
    public var policy: Malloc.Policy
    public var arenaBytes: Int
    public var maxOrder: Int
    /// `vm.nr_trim_pages`.
    public var nrTrimPages: Int
    /// The mallocs pass `MAP_UNINITIALIZED` for malloc.
    public var uninitialized: Bool
    /// The system honours it (CONFIG_MMAP_ALLOW_UNINITIALIZED).
    public var allowUninitialized: Bool
    /// Write every page of each block, not just its first and last byte.
    public var touch: Bool
    /// Also replay through glibc for the ratio.
    public var compareWithGlibc: Bool
    public var extendSize: Int
    public var mmapThreshold: Int
    public var unmapThreshold: Int

    public init(
        policy: Malloc.Policy = .heap, arenaBytes: Int = 64 << 20, maxOrder: Int = 10, nrTrimPages: Int = 1,
        uninitialized: Bool = false, allowUninitialized: Bool = false, touch: Bool = false,
        compareWithGlibc: Bool = true, extendSize: Int = 64 << 10, mmapThreshold: Int = 128 << 10,
        unmapThreshold: Int = 64 << 10
    ) {
        self.policy = policy
        self.arenaBytes = arenaBytes
        self.maxOrder = maxOrder
        self.nrTrimPages = nrTrimPages
        self.uninitialized = uninitialized
        self.allowUninitialized = allowUninitialized
        self.touch = touch
        self.compareWithGlibc = compareWithGlibc
        self.extendSize = extendSize
        self.mmapThreshold = mmapThreshold
        self.unmapThreshold = unmapThreshold
    }
}

/// What a replay found, for one trace (or, as "total", for all of them).
public struct ReplayReport: Sendable, Hashable {
    /// The first allocation that did not fit.
    public struct Failure: Sendable, Hashable {
        package init(event: Int, size: Int, mmapBytes: Int = 0, largestFreeBlockBytes: Int) {
            self.event = event
            self.size = size
            self.mmapBytes = mmapBytes
            self.largestFreeBlockBytes = largestFreeBlockBytes
        }

        /// The event's number among all the traces' events, in the order they were replayed
        /// (what the samples count), when it was replayed with others; else `event`.
        public var step = 0

        /// The event's number (1-based, among the trace's events).
        public var event: Int
        public var size: Int
        /// Bytes of the `mmap` the malloc asked for to serve it (0 when it asked for none).
        public var mmapBytes: Int
        /// The largest free block in the system then.
        public var largestFreeBlockBytes: Int
    }

    public var trace: String
    public var policy: Malloc.Policy
    /// Events replayed (up to the first failure).
    public var events: Int
    public var nanoseconds: UInt64
    public var nsPerEvent: Double
    /// The same events through glibc, nil when not compared.
    public var glibcNsPerEvent: Double?
    public var peakLiveBytes: Int
    /// The most pages the trace's malloc mappings held between two events (regions, slack
    /// included): what the program holds as it runs.
    public var peakPagesHeld: Int
    /// The most pages held at any moment, inside calls too: a realloc that moves a block
    /// holds the old and the new mapping while it copies, and a board needs room for both.
    public var peakPagesInCall: Int
    /// Slack pages (kept past the request by the trim rule), system-wide at the peak.
    public var slackPages: Int
    /// Pages the trim rule gave back during the replay, system-wide.
    public var trimmedPages: Int
    /// `MmapCopy` at its peak, in pages, system-wide.
    public var mmapCopyPeakPages: Int
    /// The largest free block and `/proc/buddyinfo` at the system's peak.
    public var largestFreeBlockBytes: Int
    public var buddyinfo: String
    public var firstFailure: Failure?
    public var mmaps: Int
    public var munmaps: Int
    public var unknownFrees: Int
    /// Whether other traces ran in the same system: then the system-wide figures (slack,
    /// trimmed pages, `MmapCopy`, the largest free block, buddyinfo: all at the system's peak)
    /// belong to the total, and this row's output leaves them out.
    public var sharedSystem = false

    package init(
        trace: String, policy: Malloc.Policy, events: Int, nanoseconds: UInt64, nsPerEvent: Double,
        glibcNsPerEvent: Double?, peakLiveBytes: Int, peakPagesHeld: Int, peakPagesInCall: Int, slackPages: Int,
        trimmedPages: Int, mmapCopyPeakPages: Int, largestFreeBlockBytes: Int, buddyinfo: String,
        firstFailure: Failure?, mmaps: Int, munmaps: Int, unknownFrees: Int
    ) {
        self.trace = trace
        self.policy = policy
        self.events = events
        self.nanoseconds = nanoseconds
        self.nsPerEvent = nsPerEvent
        self.glibcNsPerEvent = glibcNsPerEvent
        self.peakLiveBytes = peakLiveBytes
        self.peakPagesHeld = peakPagesHeld
        self.peakPagesInCall = peakPagesInCall
        self.slackPages = slackPages
        self.trimmedPages = trimmedPages
        self.mmapCopyPeakPages = mmapCopyPeakPages
        self.largestFreeBlockBytes = largestFreeBlockBytes
        self.buddyinfo = buddyinfo
        self.firstFailure = firstFailure
        self.mmaps = mmaps
        self.munmaps = munmaps
        self.unknownFrees = unknownFrees
    }

    /// Peak pages held ÷ peak live bytes.
    public func overhead(pageSize: Int) -> Double {
        peakLiveBytes > 0 ? Double(peakPagesHeld * pageSize) / Double(peakLiveBytes) : 0
    }
}

/// One moment of a replay, for the plots.
public struct ReplaySample: Sendable, Hashable {
    /// Events replayed so far (all traces).
    public var event: Int
    /// Bytes the programs had asked for and not freed.
    public var liveBytes: Int
    /// Bytes their malloc mappings held.
    public var heldBytes: Int
    /// Free blocks per order (`/proc/buddyinfo`).
    public var freeBlocks: [Int]
}

/// Replays traces.
public enum Replay {
    /// Replays `traces` together. - Returns: one report per trace, then the total.
    /// - Throws: `EINVAL`/`ENOMEM` when the system cannot be made.
    public static func run(_ traces: [Trace], _ options: ReplayOptions) throws(Errno) -> [ReplayReport] {
        try run(traces, options, samples: 0).reports
    }

    /// The smallest arena, to the page, in which the traces replay without a failure (a
    /// bisection between the peak live bytes and the first size that fits, doubling up
    /// from there). Buddy layouts are not strictly monotonic in the arena size, so this is
    /// the bisection's answer: it fits, and one page less did not at that point.
    /// - Throws: `ENOMEM` when even `limit` bytes do not fit.
    public static func fit(
        _ traces: [Trace], _ options: ReplayOptions, limit: Int = 1 << 30,
        progress: ((_ arenaBytes: Int, _ fits: Bool) -> Void)? = nil
    ) throws(Errno) -> Int {
        let page = 4096
        var o = options
        o.compareWithGlibc = false
        func fits(_ pages: Int) throws(Errno) -> Bool {
            o.arenaBytes = pages * page
            let ok = try run(traces, o, samples: 0).reports.allSatisfy { $0.firstFailure == nil }
            progress?(pages * page, ok)
            return ok
        }
        let live = traces.reduce(0) { $0 + peakLive($1) }
        var lo = max(1, live / page)  // below this nothing fits
        var hi = lo
        while try !fits(hi) {
            lo = hi
            hi *= 2
            guard hi * page <= limit else { throw .noMemory }
        }
        while lo + 1 < hi {
            let mid = (lo + hi) / 2
            if try fits(mid) { hi = mid } else { lo = mid }
        }
        return hi * page
    }

    /// The largest single request of the traces, with its alignment: what one contiguous run
    /// must hold at least once, whatever the arena.
    public static func largestRequest(_ traces: [Trace]) -> (size: Int, alignment: Int) {
        var best = (size: 0, alignment: 0)
        for t in traces {
            for e in 0..<t.count where t.operations[e] != .free {
                let (sum, o) = t.sizes[e].addingReportingOverflow(t.alignments[e])
                if o || sum > best.size + best.alignment { best = (t.sizes[e], t.alignments[e]) }
            }
        }
        return best
    }

    /// The most bytes a trace has live at once (from the trace alone).
    static func peakLive(_ t: Trace) -> Int {
        var sizes = [Int](repeating: 0, count: t.slotCount)
        var live = 0
        var peak = 0
        for e in 0..<t.count {
            let slot = Int(t.slots[e])
            switch t.operations[e] {
            case .free:
                live -= sizes[slot]
                sizes[slot] = 0
            case .realloc:
                let old = t.oldSlots[e]
                if old >= 0 {
                    live -= sizes[Int(old)]
                    sizes[Int(old)] = 0
                }
                fallthrough
            default:
                sizes[slot] = t.sizes[e]
                live += t.sizes[e]
            }
            peak = max(peak, live)
        }
        return peak
    }

    /// Replays, taking about `samples` samples along the way for the plots.
    public static func run(
        _ traces: [Trace], _ options: ReplayOptions, samples: Int
    ) throws(Errno) -> (reports: [ReplayReport], samples: [ReplaySample]) {
        let system = try System(
            .init(
                arenaBytes: options.arenaBytes, maxOrder: options.maxOrder,
                allowUninitialized: options.allowUninitialized, nrTrimPages: options.nrTrimPages))
        let page = system.configuration.pageSize
        var runs: [Run] = []
        for t in traces {
            let p = system.createProcess()
            let m = try Malloc(
                process: p,
                .init(
                    policy: options.policy, uninitialized: options.uninitialized, extendSize: options.extendSize,
                    mmapThreshold: options.mmapThreshold, unmapThreshold: options.unmapThreshold))
            runs.append(Run(trace: t, malloc: m))
        }
        let trimmed0 = system.allocator.statistics().pagesTrimmed
        var peakHeld = 0
        var snapshot = Snapshot(system.allocator.statistics(), mmapCopy: 0)
        var taken: [ReplaySample] = []
        let every = samples > 0 ? max(1, traces.reduce(0) { $0 + $1.count } / samples) : Int.max
        var stepped = 0
        let timer = timerCost()
        let t0 = cshim_now_ns()
        var active = runs.indices.filter { runs[$0].trace.count > 0 }
        while !active.isEmpty {
            var k = 0
            while k < active.count {
                let r = active[k]
                // One event in `sampleEvery` of each trace is timed on its own: the traces' shares
                // of the elapsed time (an event's cost differs from trace to trace).
                let more: Bool
                if runs[r].tick == 0 {
                    let a = cshim_now_ns()
                    more = runs[r].step(touch: options.touch, pageSize: page)
                    let b = cshim_now_ns()
                    runs[r].sampledNs += b - a > timer ? b - a - timer : 0
                    runs[r].samples += 1
                } else {
                    more = runs[r].step(touch: options.touch, pageSize: page)
                }
                runs[r].tick = runs[r].tick == Replay.sampleEvery - 1 ? 0 : runs[r].tick + 1
                runs[r].peakHeld = max(runs[r].peakHeld, runs[r].malloc.heldBytesNow)
                // Peak bookkeeping: integer compares; a snapshot only when the held total grows.
                let held = runs.reduce(0) { $0 + $1.malloc.heldBytesNow }
                stepped += 1
                if stepped % every == 0 {
                    taken.append(
                        ReplaySample(
                            event: stepped, liveBytes: runs.reduce(0) { $0 + $1.malloc.liveBytesNow },
                            heldBytes: held, freeBlocks: system.allocator.statistics().freeBlocks))
                }
                if held > peakHeld {
                    peakHeld = held
                    snapshot = Snapshot(system.allocator.statistics(), mmapCopy: system.mmapPagesAllocated)
                }
                if runs[r].failure == nil && !more {
                    active.remove(at: k)
                } else if let f = runs[r].failure, f.largestFreeBlockBytes < 0 {
                    runs[r].failure!.largestFreeBlockBytes =
                        Snapshot(system.allocator.statistics(), mmapCopy: 0)
                        .largestFreeBlockBytes
                    runs[r].failure!.step = stepped
                    active.remove(at: k)
                } else {
                    k += 1
                }
            }
        }
        let elapsed = cshim_now_ns() - t0
        let trimmed = Int(system.allocator.statistics().pagesTrimmed - trimmed0)
        var reports: [ReplayReport] = []
        let shares = split(
            elapsed, done: runs.map(\.done), sampledNs: runs.map(\.sampledNs), samples: runs.map(\.samples))
        let allDone = runs.reduce(0) { $0 + $1.done }
        for (i, run) in runs.enumerated() {
            let c = run.malloc.statistics
            reports.append(
                ReplayReport(
                    trace: run.trace.name, policy: options.policy, events: run.done,
                    nanoseconds: shares[i],
                    nsPerEvent: run.done > 0 ? Double(shares[i]) / Double(run.done) : 0,
                    glibcNsPerEvent: nil, peakLiveBytes: c.peakLiveBytes,
                    peakPagesHeld: (run.peakHeld + page - 1) / page,
                    peakPagesInCall: (c.peakHeldBytes + page - 1) / page, slackPages: snapshot.slackPages,
                    trimmedPages: trimmed, mmapCopyPeakPages: snapshot.mmapCopy,
                    largestFreeBlockBytes: snapshot.largestFreeBlockBytes, buddyinfo: snapshot.buddyinfo,
                    firstFailure: run.failure, mmaps: c.mmaps, munmaps: c.munmaps,
                    unknownFrees: run.trace.unknownFrees))
            reports[reports.count - 1].sharedSystem = runs.count > 1
        }
        for run in runs { run.release() }
        for run in runs { run.malloc.process.exit() }
        var glibcTotal: Double? = nil
        if options.compareWithGlibc {
            let glibc = glibcReplay(traces, events: runs.map(\.done), touch: options.touch, pageSize: page)
            for i in reports.indices { reports[i].glibcNsPerEvent = glibc.perTrace[i] }
            glibcTotal = glibc.all
        }
        let total = ReplayReport(
            trace: "total", policy: options.policy, events: reports.reduce(0) { $0 + $1.events },
            nanoseconds: elapsed, nsPerEvent: allDone > 0 ? Double(elapsed) / Double(allDone) : 0,
            glibcNsPerEvent: glibcTotal, peakLiveBytes: reports.reduce(0) { $0 + $1.peakLiveBytes },
            peakPagesHeld: (peakHeld + page - 1) / page,
            peakPagesInCall: reports.reduce(0) { $0 + $1.peakPagesInCall }, slackPages: snapshot.slackPages,
            trimmedPages: trimmed,
            mmapCopyPeakPages: snapshot.mmapCopy, largestFreeBlockBytes: snapshot.largestFreeBlockBytes,
            buddyinfo: snapshot.buddyinfo, firstFailure: reports.compactMap(\.firstFailure).first,
            mmaps: reports.reduce(0) { $0 + $1.mmaps }, munmaps: reports.reduce(0) { $0 + $1.munmaps },
            unknownFrees: reports.reduce(0) { $0 + $1.unknownFrees })
        return (reports + (reports.count > 1 ? [total] : []), taken)
    }

    /// The same events through the host's malloc, interleaved the same way: ns per event, per
    /// trace (sampled as the model's replay is) and over all.
    static func glibcReplay(
        _ traces: [Trace], events: [Int], touch: Bool, pageSize: Int
    ) -> (perTrace: [Double], all: Double) {
        var tick = [Int](repeating: 0, count: traces.count)
        var sampledNs = [UInt64](repeating: 0, count: traces.count)
        var samples = [Int](repeating: 0, count: traces.count)
        let timer = timerCost()
        var tables = traces.map { [UnsafeMutableRawPointer?](repeating: nil, count: $0.slotCount) }
        var next = [Int](repeating: 0, count: traces.count)
        let total = events.reduce(0, +)
        let t0 = cshim_now_ns()
        var remaining = total
        while remaining > 0 {
            for i in traces.indices where next[i] < events[i] {
                let t = traces[i]
                let e = next[i]
                next[i] += 1
                remaining -= 1
                let timed = tick[i] == 0
                tick[i] = tick[i] == sampleEvery - 1 ? 0 : tick[i] + 1
                let a = timed ? cshim_now_ns() : 0
                defer {
                    if timed {
                        let b = cshim_now_ns()
                        sampledNs[i] += b - a > timer ? b - a - timer : 0
                        samples[i] += 1
                    }
                }
                let slot = Int(t.slots[e])
                let size = t.sizes[e]
                var p: UnsafeMutableRawPointer? = nil
                switch t.operations[e] {
                case .malloc: p = Glibc.malloc(max(size, 1))
                case .calloc: p = Glibc.calloc(1, max(size, 1))
                case .memalign:
                    var q: UnsafeMutableRawPointer? = nil
                    _ = Glibc.posix_memalign(
                        &q, max(t.alignments[e], MemoryLayout<UnsafeRawPointer>.size), max(size, 1))
                    p = q
                case .realloc:
                    let old = t.oldSlots[e]
                    p = Glibc.realloc(old >= 0 ? tables[i][Int(old)] : nil, max(size, 1))
                    if old >= 0 { tables[i][Int(old)] = nil }
                case .free:
                    Glibc.free(tables[i][slot])
                    tables[i][slot] = nil
                    continue
                }
                tables[i][slot] = p
                if let p { write(p, size, touch: touch, pageSize: pageSize) }
            }
        }
        let elapsed = cshim_now_ns() - t0
        for table in tables { for p in table { Glibc.free(p) } }
        let shares = split(elapsed, done: events, sampledNs: sampledNs, samples: samples)
        let perTrace = traces.indices.map { events[$0] > 0 ? Double(shares[$0]) / Double(events[$0]) : 0 }
        return (perTrace, total > 0 ? Double(elapsed) / Double(total) : 0)
    }

    /// One event in this many of each trace is timed on its own.
    static let sampleEvery = 64

    /// The cost of reading the clock twice, taken off every timed event (the least of 64 tries).
    static func timerCost() -> UInt64 {
        var least = UInt64.max
        for _ in 0..<64 {
            let a = cshim_now_ns()
            let b = cshim_now_ns()
            least = min(least, b - a)
        }
        return least
    }

    /// Splits `elapsed` between traces that ran interleaved, in proportion to each one's events
    /// times its sampled cost per event (a trace without samples counts at the mean cost).
    package static func split(_ elapsed: UInt64, done: [Int], sampledNs: [UInt64], samples: [Int]) -> [UInt64] {
        guard done.count > 1 else { return [elapsed] }
        let sampledAll = sampledNs.reduce(0, +)
        let samplesAll = samples.reduce(0, +)
        let mean = samplesAll > 0 ? Double(sampledAll) / Double(samplesAll) : 1
        let weights = done.indices.map { i in
            Double(done[i]) * (samples[i] > 0 ? max(Double(sampledNs[i]) / Double(samples[i]), 1e-3) : mean)
        }
        let sum = weights.reduce(0, +)
        guard sum > 0 else { return done.map { _ in 0 } }
        var shares = weights.dropLast().map { min(elapsed, UInt64((Double(elapsed) * $0 / sum).rounded())) }
        let given = shares.reduce(0, +)
        shares.append(elapsed > given ? elapsed - given : 0)  // the rest, so the shares add up exactly
        return shares
    }

    /// Writes a block: first and last byte, or every page.
    @inline(__always)
    static func write(_ p: UnsafeMutableRawPointer, _ size: Int, touch: Bool, pageSize: Int) {
        guard size > 0 else { return }
        if touch {
            var o = 0
            while o < size {
                p.storeBytes(of: 0xA5, toByteOffset: o, as: UInt8.self)
                o += pageSize
            }
        }
        p.storeBytes(of: 0x5A, as: UInt8.self)
        p.storeBytes(of: 0x5A, toByteOffset: size - 1, as: UInt8.self)
    }
}

/// The allocator's state at a moment.
struct Snapshot {
    var slackPages: Int
    var largestFreeBlockBytes: Int
    var buddyinfo: String
    var mmapCopy: Int

    init(_ st: PageAllocator.Statistics, mmapCopy: Int) {
        slackPages = st.slackPages
        largestFreeBlockBytes = st.largestFreeBlockBytes
        buddyinfo = st.buddyInfo.trimmingBlanks()
        self.mmapCopy = mmapCopy
    }
}

/// One trace being replayed by one process.
final class Run {
    let trace: Trace
    let malloc: Malloc
    var table: [UnsafeMutableRawPointer?]
    var done = 0
    var failure: ReplayReport.Failure?
    /// The most bytes the malloc's mappings held between events.
    var peakHeld = 0
    /// Timed events (one in `Replay.sampleEvery`): their nanoseconds and count.
    var sampledNs: UInt64 = 0
    var samples = 0
    var tick = 0

    init(trace: Trace, malloc: Malloc) {
        self.trace = trace
        self.malloc = malloc
        table = [UnsafeMutableRawPointer?](repeating: nil, count: trace.slotCount)
        #if NOMMU_INTERNAL_CHECKS
            blockSizes = [Int](repeating: 0, count: trace.slotCount)
            patterns = [UInt8](repeating: 0, count: trace.slotCount)
        #endif
    }

    #if NOMMU_INTERNAL_CHECKS
        // Checked builds fill every block with a pattern of its own and check all of it when
        // it is freed or moved: a block that overlaps another, or memory the malloc hands
        // out twice, shows as a changed byte. Every 1024 events the heap's invariants are walked.
        var blockSizes: [Int] = []
        var patterns: [UInt8] = []

        func fill(_ slot: Int, _ p: UnsafeMutableRawPointer, _ size: Int, event: Int) {
            let v = UInt8(truncatingIfNeeded: slot &* 31 &+ event) | 1
            p.initializeMemory(as: UInt8.self, repeating: v, count: size)
            blockSizes[slot] = size
            patterns[slot] = v
        }

        func verify(_ slot: Int, _ p: UnsafeMutableRawPointer?, count: Int? = nil) {
            guard let p else { return }
            let n = count ?? blockSizes[slot]
            let v = patterns[slot]
            let bytes = UnsafeRawBufferPointer(start: p, count: n)
            if let i = bytes.firstIndex(where: { $0 != v }) {
                preconditionFailure("\(trace.name): block in slot \(slot) changed at byte \(i) of \(n)")
            }
        }
    #endif

    /// Replays the next event. - Returns: whether events remain (false at the end, or at
    /// the first allocation that does not fit, which sets `failure`).
    func step(touch: Bool, pageSize: Int) -> Bool {
        let e = done
        guard e < trace.count else { return false }
        let slot = Int(trace.slots[e])
        let size = trace.sizes[e]
        var p: UnsafeMutableRawPointer? = nil
        do {
            switch trace.operations[e] {
            case .malloc: p = try malloc.malloc(size)
            case .calloc: p = try malloc.calloc(size, 1)
            case .memalign: p = try malloc.posixMemalign(alignment: max(trace.alignments[e], 8), size)
            case .realloc:
                let old = trace.oldSlots[e]
                #if NOMMU_INTERNAL_CHECKS
                    if old >= 0 { verify(Int(old), table[Int(old)]) }
                #endif
                p = try malloc.realloc(old >= 0 ? table[Int(old)] : nil, max(size, 1))
                #if NOMMU_INTERNAL_CHECKS
                    if old >= 0 {
                        patterns[slot] = patterns[Int(old)]
                        verify(slot, p, count: min(blockSizes[Int(old)], size))
                    }
                #endif
                if old >= 0 { table[Int(old)] = nil }
            case .free:
                #if NOMMU_INTERNAL_CHECKS
                    verify(slot, table[slot])
                #endif
                try malloc.free(table[slot])
                table[slot] = nil
                done += 1
                return done < trace.count
            }
        } catch {
            failure = .init(
                event: e + 1, size: size, mmapBytes: malloc.statistics.firstFailure?.mmapBytes ?? 0,
                largestFreeBlockBytes: -1)
            return false
        }
        table[slot] = p
        if let p { Replay.write(p, size, touch: touch, pageSize: pageSize) }
        #if NOMMU_INTERNAL_CHECKS
            if let p { fill(slot, p, size, event: e) }
            if e % 1024 == 0, let v = malloc.heapViolation() { preconditionFailure("\(trace.name): \(v)") }
        #endif
        done += 1
        return done < trace.count
    }

    /// This run's share of the interleaved wall time (by events).

    /// Frees what is still live.
    func release() {
        for p in table where p != nil { try? malloc.free(p) }
        table = []
    }
}
