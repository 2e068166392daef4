// SPDX-License-Identifier: Apache-2.0
public import CNommu
import NommuBase
import NommuMM
import NommuMalloc
import PageAllocator
#if canImport(Glibc)
    import Glibc
#endif

/// Each process's malloc, made at its first allocation (or by `nommu_malloc_configure`).
let mallocs = HostMutex<[ObjectIdentifier: Malloc]>([:])

func malloc(of handle: OpaquePointer?) -> Malloc? {
    guard let p = process(handle) else { return nil }
    return mallocs.withLock { table in
        if let m = table[ObjectIdentifier(p)] { return m }
        guard let m = try? Malloc(process: p) else { return nil }
        table[ObjectIdentifier(p)] = m
        return m
    }
}

/// Drops a process's malloc (at `nommu_process_exit`: its mappings go with the process).
func forgetMalloc(_ p: Process) {
    _ = mallocs.withLock { $0.removeValue(forKey: ObjectIdentifier(p)) }
}

@_cdecl("nommu_malloc_config_init")
public func nommu_malloc_config_init(_ config: UnsafeMutablePointer<nommu_malloc_config>?) {
    guard let config else { return }
    let d = Malloc.Configuration()
    config.pointee = nommu_malloc_config(
        size: MemoryLayout<nommu_malloc_config>.size, policy: CInt(NOMMU_MALLOC_HEAP.rawValue), uninitialized: 0,
        extend_size: d.extendSize, mmap_threshold: d.mmapThreshold, unmap_threshold: d.unmapThreshold)
}

@_cdecl("nommu_malloc_configure")
public func nommu_malloc_configure(_ handle: OpaquePointer?, _ config: UnsafePointer<nommu_malloc_config>?) -> CInt {
    guard let p = process(handle), let config else { return failing(.invalidArgument, -1) }
    let c = config.pointee
    guard c.size >= MemoryLayout<nommu_malloc_config>.size,
        c.policy == CInt(NOMMU_MALLOC_HEAP.rawValue) || c.policy == CInt(NOMMU_MALLOC_SIMPLE.rawValue),
        c.extend_size <= UInt(Int.max), c.mmap_threshold <= UInt(Int.max), c.unmap_threshold <= UInt(Int.max)
    else { return failing(.invalidArgument, -1) }
    let configuration = Malloc.Configuration(
        policy: c.policy == CInt(NOMMU_MALLOC_SIMPLE.rawValue) ? .simple : .heap, uninitialized: c.uninitialized != 0,
        extendSize: Int(c.extend_size), mmapThreshold: Int(c.mmap_threshold), unmapThreshold: Int(c.unmap_threshold))
    return mallocs.withLock { table -> CInt in
        if let m = table[ObjectIdentifier(p)], m.statistics.mmaps > 0 { return failing(.resourceBusy, -1) }
        do throws(Errno) {
            table[ObjectIdentifier(p)] = try Malloc(process: p, configuration)
            return 0
        } catch {
            return failing(error, -1)
        }
    }
}

@_cdecl("nommu_malloc")
public func nommu_malloc(_ handle: OpaquePointer?, _ size: Int) -> UnsafeMutableRawPointer? {
    guard let m = malloc(of: handle) else { return failing(.invalidArgument, nil) }
    guard size >= 0 else { return failing(.noMemory, nil) }
    do { return try m.malloc(size) } catch { return failing(error, nil) }
}

@_cdecl("nommu_calloc")
public func nommu_calloc(_ handle: OpaquePointer?, _ count: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    guard let m = malloc(of: handle) else { return failing(.invalidArgument, nil) }
    // size_t arguments arrive as Int bit patterns: reject what is above Int.max as too big.
    guard count >= 0, size >= 0 else { return failing(.noMemory, nil) }
    do { return try m.calloc(count, size) } catch { return failing(error, nil) }
}

@_cdecl("nommu_realloc")
public func nommu_realloc(
    _ handle: OpaquePointer?, _ ptr: UnsafeMutableRawPointer?, _ size: Int
) -> UnsafeMutableRawPointer? {
    guard let m = malloc(of: handle) else { return failing(.invalidArgument, nil) }
    guard size >= 0 else { return failing(.noMemory, nil) }
    do { return try m.realloc(ptr, size) } catch { return failing(error, nil) }
}

@_cdecl("nommu_free")
public func nommu_free(_ handle: OpaquePointer?, _ ptr: UnsafeMutableRawPointer?) {
    guard let ptr else { return }
    guard let m = malloc(of: handle) else {
        errno = EINVAL
        return
    }
    do { try m.free(ptr) } catch { errno = error.rawValue }
}

@_cdecl("nommu_posix_memalign")
public func nommu_posix_memalign(
    _ handle: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ alignment: Int, _ size: Int
) -> CInt {
    guard let m = malloc(of: handle), let out else { return EINVAL }
    guard alignment > 0 else { return EINVAL }
    guard size >= 0 else { return ENOMEM }
    do {
        out.pointee = try m.posixMemalign(alignment: alignment, size)
        return 0
    } catch {
        return error.rawValue
    }
}

@_cdecl("nommu_malloc_usable_size")
public func nommu_malloc_usable_size(_ handle: OpaquePointer?, _ ptr: UnsafeMutableRawPointer?) -> Int {
    guard let m = malloc(of: handle) else { return 0 }
    return (try? m.usableSize(ptr)) ?? 0
}
