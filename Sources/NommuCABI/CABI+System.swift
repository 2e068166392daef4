// SPDX-License-Identifier: Apache-2.0
public import CNommu
import NommuHost
import NommuBase
import NommuMM
#if canImport(Glibc)
    import Glibc
#endif

@c(nommu_config_init)
public func nommu_config_init(_ config: UnsafeMutablePointer<nommu_config>?) {
    guard let config else { return }
    var c = nommu_config()
    c.size = MemoryLayout<nommu_config>.size
    c.arena_bytes = 64 << 20
    c.page_size = 4096
    c.max_order = 10
    c.allow_uninitialized = 0
    c.nr_trim_pages = 1
    c.arena_source = CInt(NOMMU_ARENA_MMAP.rawValue)
    c.huge_pages = 0
    c.host_dir = nil
    c.flash_bytes = 16 << 20
    c.ramdisk_bytes = 256 << 10
    c.reference = CInt(NOMMU_REFERENCE_DOCUMENT.rawValue)
    c.framebuffer_bytes = 160 << 10
    config.pointee = c
}

@c(nommu_system_create)
public func nommu_system_create(_ config: UnsafePointer<nommu_config>?) -> OpaquePointer? {
    var c = nommu_config()
    nommu_config_init(&c)
    if let config {
        // A caller compiled against the first version (80 bytes, without `reference`) gets
        // the default for what it does not know of.
        let firstVersion = MemoryLayout<nommu_config>.offset(of: \nommu_config.reference)!
        let size = config.pointee.size
        guard size >= firstVersion else { return failing(.invalidArgument, nil) }
        withUnsafeMutableBytes(of: &c) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: config, count: min(size, dst.count)))
        }
        c.size = MemoryLayout<nommu_config>.size
    }
    let references = [NOMMU_REFERENCE_DOCUMENT, NOMMU_REFERENCE_LINUX_6_1].map { CInt($0.rawValue) }
    guard references.contains(c.reference) else { return failing(.invalidArgument, nil) }
    guard c.arena_bytes <= UInt(Int.max), c.page_size <= UInt(Int.max), c.max_order <= 30,
        c.arena_source == CInt(NOMMU_ARENA_MMAP.rawValue) || c.arena_source == CInt(NOMMU_ARENA_POSIX_MEMALIGN.rawValue)
    else { return failing(.invalidArgument, nil) }
    do {
        let system = try System(
            .init(
                arenaBytes: Int(c.arena_bytes), pageSize: Int(c.page_size), maxOrder: Int(c.max_order),
                backing: c.arena_source == CInt(NOMMU_ARENA_MMAP.rawValue) ? .mmap : .posixMemalign,
                hugePages: c.huge_pages != 0, allowUninitialized: c.allow_uninitialized != 0,
                nrTrimPages: Int(c.nr_trim_pages), hostDirectory: c.host_dir.map { String(cString: $0) },
                flashBytes: Int(clamping: c.flash_bytes), ramdiskBytes: Int(clamping: c.ramdisk_bytes),
                framebufferBytes: Int(clamping: c.framebuffer_bytes),
                reference: c.reference == CInt(NOMMU_REFERENCE_LINUX_6_1.rawValue) ? .linux61 : .document))
        return OpaquePointer(Unmanaged.passRetained(SystemHandle(system)).toOpaque())
    } catch {
        return failing(error, nil)
    }
}

@c(nommu_system_destroy)
public func nommu_system_destroy(_ system: OpaquePointer?) {
    guard let system else { return }
    let h = Unmanaged<SystemHandle>.fromOpaque(UnsafeRawPointer(system)).takeRetainedValue()
    // Its process handles become invalid: each ends and lets go of its process (and so of
    // the system); with the handle, the last reference goes, and the arena with it.
    let handles = processHandles.withLock { $0.removeValue(forKey: ObjectIdentifier(h.system)) } ?? []
    for raw in handles {
        let process = Unmanaged<Process>.fromOpaque(raw).takeRetainedValue()
        forgetMalloc(process)
        process.exit()
    }
    for pid in h.system.pids { h.system.exit(pid: pid) }
}

@c(nommu_process_create)
public func nommu_process_create(_ system: OpaquePointer?) -> OpaquePointer? {
    guard let h = systemHandle(system) else { return failing(.invalidArgument, nil) }
    return handle(h.system.createProcess())
}

@c(nommu_vfork)
public func nommu_vfork(_ parent: OpaquePointer?) -> OpaquePointer? {
    guard let p = process(parent) else { return failing(.invalidArgument, nil) }
    do { return handle(try p.vfork()) } catch { return failing(error, nil) }
}

@c(nommu_fork)
public func nommu_fork(_ p: OpaquePointer?) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    do { try p.fork() } catch { return failing(error, -1) }
}

@c(nommu_getpid)
public func nommu_getpid(_ p: OpaquePointer?) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    return p.isAlive ? p.pid : failing(.noSuchProcess, -1)
}

@c(nommu_getuid)
public func nommu_getuid(_ p: OpaquePointer?) -> uid_t {
    guard let p = process(p) else { return failing(.invalidArgument, uid_t.max) }
    do { return try p.getuid() } catch { return failing(error, uid_t.max) }
}

@c(nommu_setuid)
public func nommu_setuid(_ p: OpaquePointer?, _ uid: uid_t) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    do {
        try p.setuid(uid)
        return 0
    } catch {
        return failing(error, -1)
    }
}

@c(nommu_process_exit)
public func nommu_process_exit(_ p: OpaquePointer?) {
    guard let p else { return }
    let raw = UnsafeMutableRawPointer(p)
    let process = Unmanaged<Process>.fromOpaque(raw).takeUnretainedValue()
    _ = forgetHandle(raw, of: process.system)
    Unmanaged<Process>.fromOpaque(raw).release()
    forgetMalloc(process)
    process.exit()
}
