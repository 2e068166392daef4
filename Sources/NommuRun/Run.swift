// SPDX-License-Identifier: Apache-2.0
//
// libnommu-run: an unmodified program's heap served by a nommu system, through LD_PRELOAD
// (`nommu run`). The C shim (NommuRunShim) exports malloc and friends and sets a
// thread-local guard around every call into this file; whatever the Swift runtime or the
// model allocates meanwhile comes from the shim's static bootstrap area, so the host's
// malloc is never called. Configuration comes from the environment `nommu run` sets:
// NOMMU_RUN_ARENA (bytes), NOMMU_RUN_MALLOC (simple|heap), NOMMU_RUN_TRIM,
// NOMMU_RUN_UNINITIALIZED, NOMMU_RUN_ALLOW_UNINITIALIZED (1 = on), NOMMU_RUN_REPORT (a file
// the report is appended to; stderr when unset).
internal import CShims
import NommuBase
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
    /// The first call that did not fit: (call number, size, largest free block).
    let firstFailure = HostMutex<(Int, Int, Int)?>(nil)
    /// Nanoseconds spent in the model's malloc calls (relaxed atomic adds).
    let nanoseconds = UnsafeMutablePointer<Int64>.allocate(capacity: 1)
    /// The allocator at the peak of bytes held: (slack, largest free block, buddyinfo, MmapCopy).
    let atPeak = HostMutex<(Int, Int, String, Int)>((0, 0, "", 0))

    init?() {
        func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
        arenaBytes = env("NOMMU_RUN_ARENA").flatMap { Int($0) } ?? (256 << 20)
        let trim = env("NOMMU_RUN_TRIM").flatMap { Int($0) } ?? 1
        let policy = env("NOMMU_RUN_MALLOC").flatMap { Malloc.Policy(rawValue: $0) } ?? .heap
        guard
            let system = try? System(
                .init(
                    arenaBytes: arenaBytes, allowUninitialized: env("NOMMU_RUN_ALLOW_UNINITIALIZED") == "1",
                    nrTrimPages: trim, flashBytes: 4096, framebufferBytes: 0))
        else { return nil }
        self.system = system
        guard
            let m = try? Malloc(
                process: system.createProcess(),
                .init(policy: policy, uninitialized: env("NOMMU_RUN_UNINITIALIZED") == "1"))
        else { return nil }
        malloc = m
        nanoseconds.initialize(to: 0)
        m.onNewPeak = { [unowned self] in
            let st = self.system.allocator.statistics()
            let copy = self.system.mmapPagesAllocated
            self.atPeak.withLock { $0 = (st.slackPages, st.largestFreeBlockBytes, st.buddyInfo, copy) }
        }
    }

    /// Runs a call, adding its time.
    @inline(__always)
    func timed<T>(_ body: () -> T) -> T {
        let t0 = cshim_now_ns()
        let r = body()
        cshim_add_relaxed_i64(nanoseconds, Int64(cshim_now_ns() &- t0))
        return r
    }

    /// Notes an ENOMEM (the first one is reported).
    func failed(size: Int) {
        firstFailure.withLock { f in
            guard f == nil else { return }
            f = (malloc.statistics.calls, size, system.allocator.statistics().largestFreeBlockBytes)
        }
    }
}

/// Made at the first call (a Swift global: initialised once, thread-safely).
let runState: RunState? = RunState()

@_cdecl("nommu_run_malloc")
public func nommu_run_malloc(_ size: Int) -> UnsafeMutableRawPointer? {
    guard let s = runState, size >= 0 else { return nil }
    return s.timed { () -> UnsafeMutableRawPointer? in
        do { return try s.malloc.malloc(size) } catch {
            s.failed(size: size)
            return nil
        }
    }
}

@_cdecl("nommu_run_calloc")
public func nommu_run_calloc(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    guard let s = runState, count >= 0, size >= 0 else { return nil }
    return s.timed { () -> UnsafeMutableRawPointer? in
        do { return try s.malloc.calloc(count, size) } catch {
            s.failed(size: count &* size)
            return nil
        }
    }
}

@_cdecl("nommu_run_realloc")
public func nommu_run_realloc(_ p: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
    guard let s = runState, size >= 0 else { return nil }
    return s.timed { () -> UnsafeMutableRawPointer? in
        do throws(Errno) { return try s.malloc.realloc(p, size) } catch {
            if error == .noMemory { s.failed(size: size) }
            return nil
        }
    }
}

@_cdecl("nommu_run_free")
public func nommu_run_free(_ p: UnsafeMutableRawPointer?) -> CInt {
    guard let s = runState else { return 0 }
    return s.timed { () -> CInt in
        do {
            try s.malloc.free(p)
            return 1
        } catch {
            return 0
        }
    }
}

@_cdecl("nommu_run_memalign")
public func nommu_run_memalign(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    guard let s = runState, size >= 0 else { return nil }
    return s.timed { () -> UnsafeMutableRawPointer? in
        do { return try s.malloc.posixMemalign(alignment: alignment, size) } catch {
            s.failed(size: size)
            return nil
        }
    }
}

@_cdecl("nommu_run_usable_size")
public func nommu_run_usable_size(_ p: UnsafeMutableRawPointer?) -> Int {
    guard let s = runState, let n = try? s.malloc.usableSize(p) else { return -1 }
    return n
}

@_cdecl("nommu_run_report")
public func nommu_run_report() {
    guard let s = runState else { return }
    let c = s.malloc.statistics
    let page = s.system.configuration.pageSize
    var comm = [UInt8](repeating: 0, count: 64)
    let fd0 = open("/proc/self/comm", O_RDONLY | O_CLOEXEC)
    let n = fd0 >= 0 ? comm.withUnsafeMutableBytes { read(fd0, $0.baseAddress!, 63) } : 0
    if fd0 >= 0 { close(fd0) }
    let name = String(decoding: comm[0..<max(0, n)].filter { $0 != 0x0A }, as: UTF8.self)
    let peak = s.atPeak.withLock { $0 }
    let ns = Int(cshim_load_relaxed_i64(s.nanoseconds))
    let report = ReplayReport(
        trace: "\(name) (pid \(getpid()))", policy: s.malloc.configuration.policy, events: c.calls,
        nanoseconds: UInt64(ns), nsPerEvent: c.calls > 0 ? Double(ns) / Double(c.calls) : 0, glibcNsPerEvent: nil,
        peakLiveBytes: c.peakLiveBytes, peakPagesHeld: (c.peakHeldBytes + page - 1) / page,
        peakPagesInCall: (c.peakHeldBytes + page - 1) / page, slackPages: peak.0,
        trimmedPages: Int(s.system.allocator.statistics().pagesTrimmed), mmapCopyPeakPages: peak.3,
        largestFreeBlockBytes: peak.1, buddyinfo: peak.2.trimmingBlanks(),
        firstFailure: s.firstFailure.withLock { $0 }.map {
            .init(event: $0.0, size: $0.1, largestFreeBlockBytes: $0.2)
        },
        mmaps: c.mmaps, munmaps: c.munmaps, unknownFrees: 0)
    var out = "nommu run:\n" + ReplayFormat.table([report], pageSize: page, arenaBytes: s.arenaBytes)
    out += "bootstrap area used: \(nommu_run_bootstrap_used() >> 10) KiB; \(c.liveBlocks) blocks live at exit"
    if c.failures > 0 { out += "; \(c.failures) calls failed with ENOMEM" }
    out += "\n\n"
    let fd: CInt =
        getenv("NOMMU_RUN_REPORT").map { open($0, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644) } ?? 2
    _ = out.utf8CString.withUnsafeBufferPointer { b in write(fd, b.baseAddress!, b.count - 1) }
    if fd != 2 { close(fd) }
}
