// SPDX-License-Identifier: Apache-2.0
public import CNommu
import NommuBase
import NommuMM
import PageAllocator
#if canImport(Glibc)
    import Glibc
#endif

@c(nommu_mmap)
public func nommu_mmap(
    _ p: OpaquePointer?, _ addr: UnsafeMutableRawPointer?, _ len: Int, _ prot: CInt, _ flags: CInt, _ fd: CInt,
    _ off: off_t
) -> UnsafeMutableRawPointer? {
    guard let p else { return failing(.invalidArgument, mapFailed) }
    return withProcess(p) { p -> UnsafeMutableRawPointer? in
        do throws(Errno) {
            let a = try p.mmap(
                address: address(addr), length: UInt(bitPattern: len), protection: Protection(rawValue: prot),
                flags: MapFlags(rawValue: flags), fd: fd, offset: Int64(off))
            return a.pointer
        } catch {
            return failing(error, mapFailed)
        }
    }
}

@c(nommu_mmap2)
public func nommu_mmap2(
    _ p: OpaquePointer?, _ addr: UnsafeMutableRawPointer?, _ len: Int, _ prot: CInt, _ flags: CInt, _ fd: CInt,
    _ pgoff: UInt
) -> UnsafeMutableRawPointer? {
    guard let p else { return failing(.invalidArgument, mapFailed) }
    return withProcess(p) { p -> UnsafeMutableRawPointer? in
        do throws(Errno) {
            let a = try p.mmap2(
                address: address(addr), length: UInt(bitPattern: len), protection: Protection(rawValue: prot),
                flags: MapFlags(rawValue: flags), fd: fd, pageOffset: pgoff)
            return a.pointer
        } catch {
            return failing(error, mapFailed)
        }
    }
}

@c(nommu_munmap)
public func nommu_munmap(_ p: OpaquePointer?, _ addr: UnsafeMutableRawPointer?, _ len: Int) -> CInt {
    guard let p else { return failing(.invalidArgument, -1) }
    return withProcess(p) { p -> CInt in
        do throws(Errno) {
            try p.munmap(address: address(addr), length: UInt(bitPattern: len))
            return 0
        } catch {
            return failing(error, -1)
        }
    }
}

@c(nommu_mremap_fixed_args)
public func nommu_mremap_fixed_args(
    _ p: OpaquePointer?, _ old: UnsafeMutableRawPointer?, _ oldLen: Int, _ newLen: Int, _ flags: CInt,
    _ newAddress: UnsafeMutableRawPointer?
) -> UnsafeMutableRawPointer? {
    guard let p = process(p) else { return failing(.invalidArgument, mapFailed) }
    do {
        let a = try p.mremap(
            address: address(old), oldLength: UInt(bitPattern: oldLen), newLength: UInt(bitPattern: newLen),
            flags: RemapFlags(rawValue: flags), newAddress: address(newAddress))
        return a.pointer
    } catch {
        return failing(error, mapFailed)
    }
}

@c(nommu_futex)
public func nommu_futex(
    _ p: OpaquePointer?, _ uaddr: UnsafeMutablePointer<UInt32>?, _ op: CInt, _ val: UInt32,
    _ timeout: UnsafePointer<timespec>?
) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    do {
        return CInt(truncatingIfNeeded: try p.futex(address(uaddr), op, val, timeout: timeout?.pointee))
    } catch {
        return failing(error, -1)
    }
}

/// A call a kernel without an MMU does not provide, through its own `Process` method
/// (`ENOSYS`, or `ESRCH` for a process that has exited).
func withoutMMU(_ p: OpaquePointer?, _ call: (Process) throws(Errno) -> Void) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    do { try call(p) } catch { return failing(error, -1) }
    return 0
}

@c(nommu_mprotect)
public func nommu_mprotect(_ p: OpaquePointer?, _ a: UnsafeMutableRawPointer?, _ l: Int, _ prot: CInt) -> CInt {
    withoutMMU(p) { (p) throws(Errno) in
        try p.mprotect(address: address(a), length: UInt(bitPattern: l), protection: Protection(rawValue: prot))
    }
}
@c(nommu_msync)
public func nommu_msync(_ p: OpaquePointer?, _ a: UnsafeMutableRawPointer?, _ l: Int, _ f: CInt) -> CInt {
    withoutMMU(p) { (p) throws(Errno) in try p.msync(address: address(a), length: UInt(bitPattern: l), flags: f) }
}
@c(nommu_mlock)
public func nommu_mlock(_ p: OpaquePointer?, _ a: UnsafeRawPointer?, _ l: Int) -> CInt {
    withoutMMU(p) { (p) throws(Errno) in try p.mlock(address: address(a), length: UInt(bitPattern: l)) }
}
@c(nommu_munlock)
public func nommu_munlock(_ p: OpaquePointer?, _ a: UnsafeRawPointer?, _ l: Int) -> CInt {
    withoutMMU(p) { (p) throws(Errno) in try p.munlock(address: address(a), length: UInt(bitPattern: l)) }
}
@c(nommu_mincore)
public func nommu_mincore(
    _ p: OpaquePointer?, _ a: UnsafeMutableRawPointer?, _ l: Int, _ v: UnsafeMutablePointer<UInt8>?
) -> CInt {
    withoutMMU(p) { (p) throws(Errno) in try p.mincore(address: address(a), length: UInt(bitPattern: l)) }
}
@c(nommu_madvise)
public func nommu_madvise(_ p: OpaquePointer?, _ a: UnsafeMutableRawPointer?, _ l: Int, _ advice: CInt) -> CInt {
    withoutMMU(p) { (p) throws(Errno) in
        try p.madvise(address: address(a), length: UInt(bitPattern: l), advice: advice)
    }
}

// MARK: Page allocator

@c(nommu_alloc_pages)
public func nommu_alloc_pages(_ s: OpaquePointer?, _ order: CUnsignedInt, _ flags: CUnsignedInt)
    -> UnsafeMutableRawPointer?
{
    guard let s else { return failing(.invalidArgument, nil) }
    return withSystem(s) { system -> UnsafeMutableRawPointer? in
        do throws(Errno) {
            return try system.allocatePages(
                order: Order(Int(order)), flags & NOMMU_GFP_ZERO != 0 ? .zeroed : .uninitialized)
        } catch {
            return failing(error, nil)
        }
    }
}

@c(nommu_free_pages)
public func nommu_free_pages(_ s: OpaquePointer?, _ pages: UnsafeMutableRawPointer?, _ order: CUnsignedInt) -> CInt {
    guard let s else { return failing(.invalidArgument, -1) }
    return withSystem(s) { system -> CInt in
        guard let pages else { return failing(.invalidArgument, -1) }
        do throws(Errno) {
            try system.freePages(at: pages, order: Order(Int(order)))
            return 0
        } catch {
            return failing(error, -1)
        }
    }
}

@c(nommu_alloc_pages_exact)
public func nommu_alloc_pages_exact(_ s: OpaquePointer?, _ bytes: Int, _ flags: CUnsignedInt)
    -> UnsafeMutableRawPointer?
{
    guard let s else { return failing(.invalidArgument, nil) }
    // size_t above SSIZE_MAX: no run that large can exist.
    guard bytes >= 0 else { return failing(.noMemory, nil) }
    return withSystem(s) { system -> UnsafeMutableRawPointer? in
        do throws(Errno) {
            return try system.allocatePagesExact(
                bytes: bytes, flags & NOMMU_GFP_ZERO != 0 ? .zeroed : .uninitialized)
        } catch {
            return failing(error, nil)
        }
    }
}

@c(nommu_free_pages_exact)
public func nommu_free_pages_exact(_ s: OpaquePointer?, _ pages: UnsafeMutableRawPointer?, _ bytes: Int) -> CInt {
    guard let s else { return failing(.invalidArgument, -1) }
    return withSystem(s) { system -> CInt in
        guard let pages, bytes > 0 else { return failing(.invalidArgument, -1) }
        do throws(Errno) {
            try system.freePagesExact(at: pages, bytes: bytes)
            return 0
        } catch {
            return failing(error, -1)
        }
    }
}

@c(nommu_get_stats)
public func nommu_get_stats(_ s: OpaquePointer?, _ out: UnsafeMutablePointer<nommu_stats>?) -> CInt {
    guard let h = systemHandle(s), let out else { return failing(.invalidArgument, -1) }
    guard Int(out.pointee.size) >= MemoryLayout<nommu_stats>.size else { return failing(.invalidArgument, -1) }
    let st = h.system.allocator.statistics()
    var r = nommu_stats()
    r.size = UInt32(MemoryLayout<nommu_stats>.size)
    r.version = NOMMU_STATS_VERSION
    r.page_size = UInt32(st.pageSize)
    r.max_order = UInt32(st.maxOrder)
    r.total_pages = UInt64(st.totalPages)
    r.free_pages = UInt64(st.freePages)
    r.percpu_pages = UInt64(st.perCPUPages)
    r.allocated_pages = UInt64(st.allocatedPages)
    r.slack_pages = UInt64(st.slackPages)
    r.mmap_pages_allocated = UInt64(h.system.mmapPagesAllocated)
    withUnsafeMutableBytes(of: &r.free_blocks) { raw in
        let blocks = raw.bindMemory(to: UInt64.self)
        for (o, n) in st.freeBlocks.enumerated() where o < blocks.count { blocks[o] = UInt64(n) }
    }
    r.bytes_zeroed = UInt64(st.bytesZeroed)
    r.bytes_known_zero = UInt64(st.bytesKnownZero)
    r.bytes_uninitialized = UInt64(st.bytesUninitialized)
    r.pages_trimmed = UInt64(st.pagesTrimmed)
    r.allocations = UInt64(st.allocations)
    r.frees = UInt64(st.frees)
    r.failed_allocations = UInt64(st.failedAllocations)
    out.pointee = r
    return 0
}
