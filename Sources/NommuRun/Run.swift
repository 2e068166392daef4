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
    }

    /// Notes an ENOMEM (the first one is reported).
    func failed(size: Int) {
        firstFailure.withLock { f in
            guard f == nil else { return }
            let st = system.allocator.statistics()
            let top = st.freeBlocks.lastIndex { $0 > 0 }
            f = (malloc.statistics.calls, size, top.map { (1 << $0) * st.pageSize } ?? 0)
        }
    }
}

/// Made at the first call (a Swift global: initialised once, thread-safely).
let runState: RunState? = RunState()

@_cdecl("nommu_run_malloc")
public func nommu_run_malloc(_ size: Int) -> UnsafeMutableRawPointer? {
    guard let s = runState, size >= 0 else { return nil }
    do { return try s.malloc.malloc(size) } catch {
        s.failed(size: size)
        return nil
    }
}

@_cdecl("nommu_run_calloc")
public func nommu_run_calloc(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    guard let s = runState, count >= 0, size >= 0 else { return nil }
    do { return try s.malloc.calloc(count, size) } catch {
        s.failed(size: count &* size)
        return nil
    }
}

@_cdecl("nommu_run_realloc")
public func nommu_run_realloc(_ p: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
    guard let s = runState, size >= 0 else { return nil }
    do { return try s.malloc.realloc(p, size) } catch {
        if error == .noMemory { s.failed(size: size) }
        return nil
    }
}

@_cdecl("nommu_run_free")
public func nommu_run_free(_ p: UnsafeMutableRawPointer?) -> CInt {
    guard let s = runState else { return 0 }
    do {
        try s.malloc.free(p)
        return 1
    } catch {
        return 0
    }
}

@_cdecl("nommu_run_memalign")
public func nommu_run_memalign(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    guard let s = runState, size >= 0 else { return nil }
    do { return try s.malloc.posixMemalign(alignment: alignment, size) } catch {
        s.failed(size: size)
        return nil
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
    var out = "nommu run: \(name) (pid \(getpid())): \(s.malloc.configuration.policy.rawValue) malloc in "
    out += "\(s.arenaBytes >> 10) KiB; \(c.calls) calls; peak live \(c.peakLiveBytes >> 10) KiB, "
    out += "peak held \(c.peakHeldBytes >> 10) KiB"
    if c.peakLiveBytes > 0 {
        out += " (\(Double(c.peakHeldBytes * 100 / c.peakLiveBytes) / 100)×)"
    }
    out += "; \(c.mmaps) mmaps, \(c.munmaps) munmaps; \(c.liveBlocks) blocks live at exit"
    out += "; bootstrap \(nommu_run_bootstrap_used() >> 10) KiB"
    if let (call, size, largest) = s.firstFailure.withLock({ $0 }) {
        out += "; ENOMEM first at call \(call), \(size) bytes asked, largest free block \(largest / page) pages"
        out += " (\(c.failures) failed calls)"
    }
    out += "\n"
    let fd: CInt =
        getenv("NOMMU_RUN_REPORT").map { open($0, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644) } ?? 2
    _ = out.utf8CString.withUnsafeBufferPointer { b in write(fd, b.baseAddress!, b.count - 1) }
    if fd != 2 { close(fd) }
}
