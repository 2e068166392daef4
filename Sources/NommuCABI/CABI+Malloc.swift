// SPDX-License-Identifier: Apache-2.0
public import CNommu
import NommuBase
import NommuMM
import NommuMalloc
import PageAllocator
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// Runs `body` on the process's malloc (made at its first call), without retaining it:
/// one acquire load on the process, no lock and no table. `failed` is returned (errno set)
/// for a NULL handle or when the malloc cannot be made.
@inline(__always)
func withMalloc<R>(_ handle: OpaquePointer?, _ failed: R, _ body: (Malloc) -> R) -> R {
    guard let handle else { return failing(.invalidArgument, failed) }
    let bits = Unmanaged<Process>.fromOpaque(UnsafeRawPointer(handle))._withUnsafeGuaranteedRef {
        $0.mallocSlot.load(ordering: .acquiring)
    }
    guard let raw = UnsafeRawPointer(bitPattern: bits) else { return firstMalloc(handle, failed, body) }
    return Unmanaged<Malloc>.fromOpaque(raw)._withUnsafeGuaranteedRef(body)
}

/// The first call of a process: makes its malloc and publishes it (another thread may win).
@inline(never)
func firstMalloc<R>(_ handle: OpaquePointer, _ failed: R, _ body: (Malloc) -> R) -> R {
    let p = Unmanaged<Process>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
    guard let m = try? Malloc(process: p) else { return failing(.noMemory, failed) }
    let mine = UInt(bitPattern: Unmanaged.passRetained(m).toOpaque())
    let (won, current) = p.mallocSlot.compareExchange(expected: 0, desired: mine, ordering: .acquiringAndReleasing)
    if !won {
        Unmanaged<Malloc>.fromOpaque(UnsafeRawPointer(bitPattern: mine)!).release()
        return Unmanaged<Malloc>.fromOpaque(UnsafeRawPointer(bitPattern: current)!)._withUnsafeGuaranteedRef(body)
    }
    return body(m)
}

/// Drops a process's malloc (at `nommu_process_exit`: its mappings go with the process).
func forgetMalloc(_ p: Process) {
    let bits = p.mallocSlot.exchange(0, ordering: .acquiringAndReleasing)
    if let raw = UnsafeRawPointer(bitPattern: bits) { Unmanaged<Malloc>.fromOpaque(raw).release() }
    p.replacedMallocs.withLock { $0.removeAll() }
}

@c(nommu_malloc_config_init)
public func nommu_malloc_config_init(_ config: UnsafeMutablePointer<nommu_malloc_config>?) {
    guard let config else { return }
    let d = Malloc.Configuration()
    config.pointee = nommu_malloc_config(
        size: MemoryLayout<nommu_malloc_config>.size, policy: CInt(NOMMU_MALLOC_HEAP.rawValue), uninitialized: 0,
        extend_size: d.extendSize, mmap_threshold: d.mmapThreshold, unmap_threshold: d.unmapThreshold,
        heaps: d.heaps)
}

@c(nommu_malloc_configure)
public func nommu_malloc_configure(_ handle: OpaquePointer?, _ config: UnsafePointer<nommu_malloc_config>?) -> CInt {
    guard let p = process(handle), let config else { return failing(.invalidArgument, -1) }
    // A config of the size before `heaps` was added is read as far as it goes (no further:
    // the caller's struct ends there), the rest taken from the defaults.
    let withoutHeaps = MemoryLayout<nommu_malloc_config>.offset(of: \nommu_malloc_config.heaps)!
    let given = config.withMemoryRebound(to: Int.self, capacity: 1) { $0.pointee }
    guard given >= withoutHeaps else { return failing(.invalidArgument, -1) }
    var c = nommu_malloc_config()
    nommu_malloc_config_init(&c)
    withUnsafeMutableBytes(of: &c) {
        $0.copyMemory(from: UnsafeRawBufferPointer(start: config, count: min(given, $0.count)))
    }
    guard
        c.policy == CInt(NOMMU_MALLOC_HEAP.rawValue) || c.policy == CInt(NOMMU_MALLOC_SIMPLE.rawValue),
        c.extend_size <= UInt(Int.max), c.mmap_threshold <= UInt(Int.max), c.unmap_threshold <= UInt(Int.max),
        c.heaps <= Malloc.Configuration.maxHeaps
    else { return failing(.invalidArgument, -1) }
    let configuration = Malloc.Configuration(
        policy: c.policy == CInt(NOMMU_MALLOC_SIMPLE.rawValue) ? .simple : .heap, uninitialized: c.uninitialized != 0,
        extendSize: Int(c.extend_size), mmapThreshold: Int(c.mmap_threshold), unmapThreshold: Int(c.unmap_threshold),
        heaps: Int(c.heaps))
    let m: Malloc
    do throws(Errno) { m = try Malloc(process: p, configuration) } catch { return failing(error, -1) }
    let mine = UInt(bitPattern: Unmanaged.passRetained(m).toOpaque())
    // Replace the malloc only while it has mapped nothing (EBUSY after).
    var current = p.mallocSlot.load(ordering: .acquiring)
    while true {
        if let raw = UnsafeRawPointer(bitPattern: current),
            Unmanaged<Malloc>.fromOpaque(raw)._withUnsafeGuaranteedRef({ $0.statistics.mmaps > 0 })
        {
            Unmanaged<Malloc>.fromOpaque(UnsafeRawPointer(bitPattern: mine)!).release()
            return failing(.resourceBusy, -1)
        }
        let (won, now) = p.mallocSlot.compareExchange(
            expected: current, desired: mine, ordering: .acquiringAndReleasing)
        if won { break }
        current = now
    }
    if let raw = UnsafeRawPointer(bitPattern: current) {
        let old = Unmanaged<Malloc>.fromOpaque(raw).takeRetainedValue()
        p.replacedMallocs.withLock { $0.append(old) }
    }
    return 0
}

@c(nommu_malloc)
public func nommu_malloc(_ handle: OpaquePointer?, _ size: Int) -> UnsafeMutableRawPointer? {
    withMalloc(handle, nil) { m in
        guard size >= 0 else { return failing(.noMemory, nil) }
        do throws(Errno) { return try m.malloc(size) } catch { return failing(error, nil) }
    }
}

@c(nommu_calloc)
public func nommu_calloc(_ handle: OpaquePointer?, _ count: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    withMalloc(handle, nil) { m in
        // size_t arguments arrive as Int bit patterns: reject what is above Int.max as too big.
        guard count >= 0, size >= 0 else { return failing(.noMemory, nil) }
        do throws(Errno) { return try m.calloc(count, size) } catch { return failing(error, nil) }
    }
}

@c(nommu_realloc)
public func nommu_realloc(
    _ handle: OpaquePointer?, _ ptr: UnsafeMutableRawPointer?, _ size: Int
) -> UnsafeMutableRawPointer? {
    withMalloc(handle, nil) { m in
        guard size >= 0 else { return failing(.noMemory, nil) }
        do throws(Errno) { return try m.realloc(ptr, size) } catch { return failing(error, nil) }
    }
}

@c(nommu_free)
public func nommu_free(_ handle: OpaquePointer?, _ ptr: UnsafeMutableRawPointer?) {
    guard let ptr else { return }
    withMalloc(handle, ()) { m in
        do throws(Errno) { try m.free(ptr) } catch { errno = error.rawValue }
    }
}

@c(nommu_posix_memalign)
public func nommu_posix_memalign(
    _ handle: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ alignment: Int, _ size: Int
) -> CInt {
    guard handle != nil, let out else { return EINVAL }
    return withMalloc(handle, ENOMEM) { m in
        // size_t values: an alignment of 2^63 is a power of two (ENOMEM, as glibc), not negative.
        let a = UInt(bitPattern: alignment)
        guard a >= UInt(MemoryLayout<UnsafeRawPointer>.size), a & (a &- 1) == 0 else { return EINVAL }
        guard size >= 0, a <= UInt(Malloc.Configuration.maxBytes) else { return ENOMEM }
        do throws(Errno) {
            out.pointee = try m.posixMemalign(alignment: alignment, size)
            return 0
        } catch {
            return error.rawValue
        }
    }
}

@c(nommu_malloc_usable_size)
public func nommu_malloc_usable_size(_ handle: OpaquePointer?, _ ptr: UnsafeMutableRawPointer?) -> Int {
    guard handle != nil else { return 0 }
    return withMalloc(handle, 0) { m in (try? m.usableSize(ptr)) ?? 0 }
}
