// SPDX-License-Identifier: Apache-2.0
//
// libnommu-run: an unmodified program's heap served by a nommu system, through LD_PRELOAD
// (`nommu run`). The C shim (NommuRunShim) exports malloc and friends, starts the model from
// its constructor and sets a thread-local guard around every call into this file; whatever
// the Swift runtime or the model allocates meanwhile goes to glibc's own allocator. The
// configuration comes from the environment `nommu run` sets: NOMMU_RUN_ARENA (bytes),
// NOMMU_RUN_MALLOC (simple|heap), NOMMU_RUN_TRIM, NOMMU_RUN_UNINITIALIZED,
// NOMMU_RUN_ALLOW_UNINITIALIZED (1 = on), NOMMU_RUN_SITES (how many allocation sites to
// report; 0 = do not track them), NOMMU_RUN_REPORT (a file each process appends its report
// to as a JSON line; without it the report goes to stderr as text).
internal import CShims
import NommuBase
import NommuHost
import NommuMM
import NommuMalloc
import NommuRunShim
import PageAllocator

#if canImport(Glibc)
    import Glibc
#endif

/// The system, process and malloc of this program.
final class RunState: @unchecked Sendable {
    let system: System
    let malloc: Malloc
    let arenaBytes: Int
    let sitesShown: Int
    /// The allocator when the pages held peaked: (slack, largest free block, buddyinfo, MmapCopy).
    let atPeak = HostMutex<(Int, Int, String, Int)>((0, 0, "", 0))
    /// The pid this process was forked from, when it was forked and did not exec.
    var forkedFrom: Int? = nil

    init(_ settings: RunSettings) throws(Errno) {
        arenaBytes = settings.arenaBytes
        sitesShown = settings.sites
        malloc = try settings.start()
        system = malloc.process.system
        malloc.onNewPeak = { [unowned self] in
            let st = self.system.allocator.statistics()
            let copy = self.system.mmapPagesAllocated
            self.atPeak.withLock { $0 = (st.slackPages, st.largestFreeBlockBytes, st.buddyInfo, copy) }
        }
        malloc.onFirstFailure = { nommu_run_capture_failure_stack() }
    }

}

/// Made by the shim's constructor, before the program's first call reaches the model.
nonisolated(unsafe) var runState: RunState? = nil

/// The program's malloc, unretained (runState holds it for the life of the process): the
/// heap calls reach it with one load, no retain or release.
nonisolated(unsafe) var runMalloc: Unmanaged<Malloc>? = nil

@inline(__always)
func withRunMalloc<R>(_ failed: R, _ body: (Malloc) -> R) -> R {
    guard let m = runMalloc else { return failed }
    return m._withUnsafeGuaranteedRef(body)
}

@c(nommu_run_start)
public func nommu_run_start(
    _ start: UnsafeMutablePointer<UInt>, _ end: UnsafeMutablePointer<UInt>, _ why: UnsafeMutablePointer<CChar>,
    _ whySize: Int
) -> CInt {
    func fail(_ text: String, _ e: Errno) -> CInt {
        let bytes = Array(text.utf8.prefix(max(0, whySize - 1)))
        for (i, b) in bytes.enumerated() { why[i] = CChar(bitPattern: b) }
        why[bytes.count] = 0
        return e.rawValue
    }
    let settings: RunSettings
    do { settings = try RunSettings.fromProcessEnvironment() } catch {
        return fail(error.description, .invalidArgument)
    }
    do {
        let s = try RunState(settings)
        let a = s.system.allocator
        start.pointee = UInt(bitPattern: a.baseAddress)
        end.pointee = UInt(bitPattern: a.baseAddress) + UInt(a.totalPages * a.pageSize)
        runState = s
        runMalloc = Unmanaged.passUnretained(s.malloc)
        return 0
    } catch {
        return fail(
            "a \(settings.arenaBytes)-byte arena with the \(settings.policy.rawValue) malloc: \(error.description)",
            error)
    }
}

@c(nommu_run_malloc)
public func nommu_run_malloc(_ size: Int) -> UnsafeMutableRawPointer? {
    guard size >= 0 else { return nil }
    return withRunMalloc(nil) { m in try? m.malloc(size) }
}

@c(nommu_run_calloc)
public func nommu_run_calloc(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    guard count >= 0, size >= 0 else { return nil }
    return withRunMalloc(nil) { m in try? m.calloc(count, size) }
}

@c(nommu_run_realloc)
public func nommu_run_realloc(
    _ p: UnsafeMutableRawPointer?, _ size: Int, _ oldSize: UnsafeMutablePointer<Int>
) -> UnsafeMutableRawPointer? {
    guard size >= 0 else { return nil }
    return withRunMalloc(nil) { m in (try? m.realloc(p, size, oldSize: &oldSize.pointee)) ?? nil }
}

@c(nommu_run_free)
public func nommu_run_free(_ p: UnsafeMutableRawPointer) -> Int {
    withRunMalloc(-1) { m in (try? m.freeReturningSize(p)) ?? -1 }
}

@c(nommu_run_memalign)
public func nommu_run_memalign(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    guard size >= 0 else { return nil }
    return withRunMalloc(nil) { m in try? m.posixMemalign(alignment: alignment, size) }
}

@c(nommu_run_usable_size)
public func nommu_run_usable_size(_ p: UnsafeMutableRawPointer?) -> Int {
    withRunMalloc(-1) { m in (try? m.usableSize(p)) ?? -1 }
}

@c(nommu_run_forked)
public func nommu_run_forked(_ parent: CInt) {
    guard let s = runState else { return }
    s.malloc.restartCallCounts()
    s.forkedFrom = Int(parent)
}

@c(nommu_run_report)
public func nommu_run_report(_ how: UnsafePointer<CChar>) {
    guard let s = runState else { return }
    let report = makeReport(s, end: String(cString: how))
    if let path = getenv("NOMMU_RUN_REPORT") {
        switch valueOrErrno({ open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644) }) {
        case .success(let fd):
            writeAll(fd, report.json() + "\n")
            close(fd)
            return
        case .failure(let e):
            writeAll(2, "nommu run: cannot append to \(String(cString: path)): \(e.description)\n")
        }
    }
    writeAll(2, RunReport.text([report], sites: s.sitesShown))
}

/// The report of this process image now.
func makeReport(_ s: RunState, end: String) -> RunReport {
    let c = s.malloc.statistics
    let page = s.system.configuration.pageSize
    let peak = s.atPeak.withLock { $0 }
    let ns = Double(nommu_run_model_ns())
    let failure = c.firstFailure.map { f in
        var frames = [UInt](repeating: 0, count: 32)
        let n = Int(nommu_run_failure_stack(&frames, 32))
        return RunReport.Failure(
            event: f.call, size: f.size, mmapBytes: f.mmapBytes, largestFreeBlockBytes: f.largestFreeBlockBytes,
            stack: frames.prefix(n).map(frame))
    }
    var sites: [RunReport.Site] = []
    if nommu_run_tracking_sites() != 0 && s.sitesShown > 0 {
        // No more than the table holds (NOMMU_RUN_SITES may say 2^63).
        let shown = min(s.sitesShown, Int(nommu_run_site_capacity()))
        var raw = [nommu_run_site](repeating: nommu_run_site(), count: shown)
        let n = Int(nommu_run_top_sites(&raw, CInt(shown)))
        sites = raw.prefix(n).map { r in
            RunReport.Site(
                frame: r.address == 1
                    ? RunReport.Frame(address: 0, module: "", offset: 0, symbol: "(other sites)")
                    : frame(r.address),
                calls: Int(r.calls), bytes: Int(r.bytes), peakBytes: Int(r.peak), liveBytes: Int(r.live))
        }
    }
    let wall = Double(UInt64(cshim_now_ns()) &- nommu_run_started_monotonic_ns()) / 1e6
    return RunReport(
        program: readProcText("/proc/self/comm", limit: 64).trimmingBlanks(),
        command: String(readProcText("/proc/self/cmdline", limit: 256).map { $0 == "\0" ? " " : $0 }).trimmingBlanks(),
        pid: Int(getpid()), ppid: Int(getppid()), forkedFrom: s.forkedFrom, end: end,
        startedNs: nommu_run_started_realtime_ns(), policy: s.malloc.configuration.policy.rawValue,
        arenaBytes: s.arenaBytes, pageSize: page, events: c.calls, wallMs: wall, modelMs: ns / 1e6,
        peakLiveBytes: c.peakLiveBytes, peakPagesHeld: (c.peakHeldBytes + page - 1) / page, slackPages: peak.0,
        trimmedPages: Int(s.system.allocator.statistics().pagesTrimmed), mmapCopyPeakPages: peak.3,
        largestFreeBlockBytes: peak.1, buddyinfo: peak.2.trimmingBlanks(), mmaps: c.mmaps, munmaps: c.munmaps,
        failures: c.failures, invalidFrees: Int(nommu_run_invalid_frees()), liveBlocks: c.liveBlocks,
        liveBytes: c.liveBytes, hostMallocBytes: nommu_run_host_malloc_bytes(), firstFailure: failure, sites: sites)
}

/// What dladdr knows of an address.
func frame(_ address: UInt) -> RunReport.Frame {
    var module: UnsafePointer<CChar>? = nil
    var symbol: UnsafePointer<CChar>? = nil
    var base: UInt = 0
    var symbolAt: UInt = 0
    guard nommu_run_describe(address, &module, &base, &symbol, &symbolAt) != 0 else {
        return RunReport.Frame(address: UInt64(address), module: "", offset: UInt64(address))
    }
    return RunReport.Frame(
        address: UInt64(address), module: module.map { String(cString: $0) } ?? "",
        offset: UInt64(address &- base), symbol: symbol.map { String(cString: $0) },
        symbolOffset: symbol != nil && symbolAt != 0 ? UInt64(address &- symbolAt) : nil)
}

/// Up to `limit` bytes of a /proc file ("" when it cannot be read).
func readProcText(_ path: String, limit: Int) -> String {
    var bytes = [UInt8](repeating: 0, count: limit)
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress!, limit) }
    return String(decoding: bytes.prefix(max(0, n)), as: UTF8.self)
}

/// Writes all of `text` to `fd` (best effort).
func writeAll(_ fd: CInt, _ text: String) {
    let bytes = Array(text.utf8)
    let count = bytes.count
    var done = 0
    while done < count {
        let result = valueOrErrno { bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, count - done) } }
        guard case .success(let n) = result, n > 0 else { return }
        done += n
    }
}
