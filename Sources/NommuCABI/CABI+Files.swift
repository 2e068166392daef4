// SPDX-License-Identifier: Apache-2.0
public import CNommu
internal import CShims
import NommuBase
import NommuMM
#if canImport(Glibc)
    import Glibc
#endif

@c(nommu_open_fixed_args)
public func nommu_open_fixed_args(
    _ p: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ flags: CInt, _ mode: CUnsignedInt
) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    guard let bytes = NommuCABI.path(path) else { return failing(.badAddress, -1) }
    do { return try p.open(bytes: bytes, OpenFlags(rawValue: flags)) } catch { return failing(error, -1) }
}

@c(nommu_close)
public func nommu_close(_ p: OpaquePointer?, _ fd: CInt) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    do {
        try p.close(fd)
        return 0
    } catch {
        return failing(error, -1)
    }
}

@c(nommu_read)
public func nommu_read(_ p: OpaquePointer?, _ fd: CInt, _ buf: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    readInto(p, buf, count) { (p, n) throws(Errno) in try p.read(fd, count: n) }
}

/// The common part of `read` and `pread`: argument checks, the call, the copy out.
func readInto(
    _ handle: OpaquePointer?, _ buf: UnsafeMutableRawPointer?, _ count: Int,
    _ call: (Process, Int) throws(Errno) -> [UInt8]
) -> Int {
    guard let p = process(handle) else { return failing(.invalidArgument, -1) }
    guard count >= 0 else { return failing(.invalidArgument, -1) }
    guard buf != nil || count == 0 else { return failing(.badAddress, -1) }
    do {
        let bytes = try call(p, min(count, maxRWCount))
        if let buf, !bytes.isEmpty {
            bytes.withUnsafeBytes { buf.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
        return bytes.count
    } catch {
        return failing(error, -1)
    }
}

/// The common part of `write` and `pwrite`: argument checks, the copy in, the call.
func writeFrom(
    _ handle: OpaquePointer?, _ buf: UnsafeRawPointer?, _ count: Int, _ call: (Process, [UInt8]) throws(Errno) -> Int
) -> Int {
    guard let p = process(handle) else { return failing(.invalidArgument, -1) }
    guard count >= 0 else { return failing(.invalidArgument, -1) }
    guard buf != nil || count == 0 else { return failing(.badAddress, -1) }
    // rw_verify_area caps the count at MAX_RW_COUNT; then what the buffer supplies is copied,
    // up to the first page that cannot be read (EFAULT when none can).
    let n = min(count, maxRWCount)
    var bytes: [UInt8] = []
    if let buf, n > 0 {
        // In steps, so that memory is taken for what was read, not for what was asked.
        let step = 64 << 10
        while bytes.count < n {
            let at = bytes.count
            let want = min(step, n - at)
            var got = 0
            let chunk = [UInt8](unsafeUninitializedCapacity: want) { out, initialized in
                got = cshim_copy_readable(out.baseAddress!, buf + at, want)
                initialized = got
            }
            bytes.append(contentsOf: chunk)
            if got < want { break }
        }
        guard !bytes.isEmpty else { return failing(.badAddress, -1) }
    }
    do { return try call(p, bytes) } catch { return failing(error, -1) }
}

/// rw_verify_area: a position whose end (pos + count) is past the largest loff_t is EINVAL.
func endsPastLargestOffset(_ offset: off_t, _ count: Int) -> Bool {
    count >= 0 && Int64(offset).addingReportingOverflow(Int64(count)).overflow
}

/// `MAX_RW_COUNT`: INT_MAX rounded down to a page, the most one read or write moves.
let maxRWCount = Int(Int32.max) & ~4095

@c(nommu_write)
public func nommu_write(_ p: OpaquePointer?, _ fd: CInt, _ buf: UnsafeRawPointer?, _ count: Int) -> Int {
    writeFrom(p, buf, count) { (p, bytes) throws(Errno) in try p.write(fd, bytes) }
}

/// A C path's bytes, as the kernel takes them (no decoding: a name need not be UTF-8);
/// nil for NULL.
func path(_ p: UnsafePointer<CChar>?) -> [UInt8]? {
    p.map { Array(UnsafeRawBufferPointer(start: $0, count: strlen($0))) }
}

/// Runs a call that returns nothing: 0, or -1 and errno.
func status(_ body: () throws(Errno) -> Void) -> CInt {
    do {
        try body()
        return 0
    } catch {
        return failing(error, -1)
    }
}

@c(nommu_pread)
public func nommu_pread(
    _ p: OpaquePointer?, _ fd: CInt, _ buf: UnsafeMutableRawPointer?, _ count: Int, _ offset: off_t
) -> Int {
    guard !endsPastLargestOffset(offset, count) else { return failing(.invalidArgument, -1) }
    return readInto(p, buf, count) { (p, n) throws(Errno) in try p.pread(fd, count: n, offset: Int64(offset)) }
}

@c(nommu_pwrite)
public func nommu_pwrite(
    _ p: OpaquePointer?, _ fd: CInt, _ buf: UnsafeRawPointer?, _ count: Int, _ offset: off_t
) -> Int {
    guard !endsPastLargestOffset(offset, count) else { return failing(.invalidArgument, -1) }
    return writeFrom(p, buf, count) { (p, bytes) throws(Errno) in try p.pwrite(fd, bytes, offset: Int64(offset)) }
}

@c(nommu_ftruncate)
public func nommu_ftruncate(_ p: OpaquePointer?, _ fd: CInt, _ length: off_t) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    return status { () throws(Errno) in try p.ftruncate(fd, length: Int64(length)) }
}

@c(nommu_unlink)
public func nommu_unlink(_ p: OpaquePointer?, _ pathname: UnsafePointer<CChar>?) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    guard let s = path(pathname) else { return failing(.badAddress, -1) }
    return status { () throws(Errno) in try p.unlink(bytes: s) }
}

@c(nommu_pipe)
public func nommu_pipe(_ p: OpaquePointer?, _ fds: UnsafeMutablePointer<CInt>?) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    guard let fds else { return failing(.badAddress, -1) }
    do {
        let (r, w) = try p.pipe()
        fds[0] = r
        fds[1] = w
        return 0
    } catch {
        return failing(error, -1)
    }
}

@c(nommu_mkfifo)
public func nommu_mkfifo(_ p: OpaquePointer?, _ pathname: UnsafePointer<CChar>?, _ mode: mode_t) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    guard let s = path(pathname) else { return failing(.badAddress, -1) }
    return status { () throws(Errno) in try p.mkfifo(bytes: s, mode: CInt(bitPattern: mode)) }
}

@c(nommu_socket)
public func nommu_socket(_ p: OpaquePointer?, _ domain: CInt, _ type: CInt, _ proto: CInt) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    do { return try p.socket(domain: domain, type: type, protocol: proto) } catch { return failing(error, -1) }
}

@c(nommu_set_append_only)
public func nommu_set_append_only(_ p: OpaquePointer?, _ fd: CInt, _ on: CInt) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    return status { () throws(Errno) in try p.setAppendOnly(fd, on != 0) }
}

@c(nommu_romfs_add)
public func nommu_romfs_add(
    _ system: OpaquePointer?, _ pathname: UnsafePointer<CChar>?, _ data: UnsafeRawPointer?, _ len: Int
) -> CInt {
    guard let h = systemHandle(system) else { return failing(.invalidArgument, -1) }
    guard let s = path(pathname), data != nil || len == 0, len >= 0 else { return failing(.badAddress, -1) }
    return status { () throws(Errno) in try h.system.romfsAdd(path: s, UnsafeRawBufferPointer(start: data, count: len))
    }
}

@c(nommu_flash_set_mode)
public func nommu_flash_set_mode(_ system: OpaquePointer?, _ device: UnsafePointer<CChar>?, _ mode: CInt) -> CInt {
    guard let h = systemHandle(system) else { return failing(.invalidArgument, -1) }
    guard let d = path(device).map({ String(decoding: $0, as: UTF8.self) }) else { return failing(.badAddress, -1) }
    guard let m = FlashMode(rawValue: mode) else { return failing(.invalidArgument, -1) }
    return status { () throws(Errno) in try h.system.setFlashMode(device: d, m) }
}

@c(nommu_shmget)
public func nommu_shmget(_ p: OpaquePointer?, _ key: key_t, _ size: Int, _ flags: CInt) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    guard size >= 0 else { return failing(.invalidArgument, -1) }
    do { return try p.shmget(key: key, size: size, flags: flags) } catch { return failing(error, -1) }
}

@c(nommu_shmat)
public func nommu_shmat(
    _ p: OpaquePointer?, _ shmid: CInt, _ addr: UnsafeRawPointer?, _ flags: CInt
) -> UnsafeMutableRawPointer? {
    guard let p = process(p) else { return failing(.invalidArgument, mapFailed) }
    do { return try p.shmat(shmid, address: address(addr), flags: flags).pointer } catch {
        return failing(error, mapFailed)
    }
}

@c(nommu_shmdt)
public func nommu_shmdt(_ p: OpaquePointer?, _ addr: UnsafeRawPointer?) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    return status { () throws(Errno) in try p.shmdt(address(addr)) }
}

@c(nommu_shmctl)
public func nommu_shmctl(
    _ p: OpaquePointer?, _ shmid: CInt, _ cmd: CInt, _ buf: UnsafeMutablePointer<shmid_ds>?
) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    switch cmd {
    case SharedMemory.remove:
        return status { () throws(Errno) in try p.shmRemove(shmid) }
    case SharedMemory.stat:
        do {
            // The segment first (EINVAL for a bad id), then the copy out (EFAULT).
            let st = try p.shmStatus(shmid)
            guard let buf else { return failing(.badAddress, -1) }
            var ds = shmid_ds()
            ds.shm_perm.__key = st.key
            ds.shm_perm.mode = UInt32(st.mode)
            ds.shm_segsz = st.size
            ds.shm_nattch = shmatt_t(st.attaches)
            ds.shm_cpid = st.creatorPID
            ds.shm_lpid = st.lastPID
            ds.shm_atime = time_t(st.attachTime)
            ds.shm_dtime = time_t(st.detachTime)
            ds.shm_ctime = time_t(st.changeTime)
            buf.pointee = ds
            return 0
        } catch {
            return failing(error, -1)
        }
    default:
        return failing(.invalidArgument, -1)
    }
}

@c(nommu_shm_open)
public func nommu_shm_open(_ p: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ oflag: CInt, _ mode: mode_t) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    guard let n = path(name) else { return failing(.badAddress, -1) }
    do { return try p.shmOpen(bytes: n, OpenFlags(rawValue: oflag)) } catch { return failing(error, -1) }
}

@c(nommu_shm_unlink)
public func nommu_shm_unlink(_ p: OpaquePointer?, _ name: UnsafePointer<CChar>?) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    guard let n = path(name) else { return failing(.badAddress, -1) }
    return status { () throws(Errno) in try p.shmUnlink(bytes: n) }
}

@c(nommu_exec_elf)
public func nommu_exec_elf(
    _ p: OpaquePointer?, _ pathname: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<nommu_image>?
) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    guard let s = path(pathname) else { return failing(.badAddress, -1) }
    if let out, out.pointee.size < MemoryLayout<nommu_image>.size { return failing(.invalidArgument, -1) }
    do {
        let image = try p.exec(bytes: s)
        guard let out else { return 0 }
        var c = nommu_image()
        c.size = MemoryLayout<nommu_image>.size
        c.entry = image.entry.pointer
        if let text = image.segments.first(where: { $0.protection.contains(.exec) }) {
            c.text = text.address.pointer
            c.text_len = text.memorySize
            c.text_in_place = text.inPlace ? 1 : 0
        }
        if let data = image.segments.first(where: { $0.protection.contains(.write) }) {
            c.data = data.address.pointer
            c.data_len = data.fileSize
            c.bss = data.address.pointer.map { $0 + data.fileSize }
            c.bss_len = data.memorySize - data.fileSize
        }
        c.start_brk = image.startBrk.pointer
        c.end_brk = image.endBrk.pointer
        c.start_stack = image.startStack.pointer
        c.stack_size = image.stackSize
        c.nsegments = CUnsignedInt(image.segments.count)
        withUnsafeMutableBytes(of: &c.segments) { raw in
            let slots = raw.bindMemory(to: nommu_image_segment.self)
            for (i, seg) in image.segments.prefix(slots.count).enumerated() {
                slots[i] = nommu_image_segment(
                    address: seg.address.pointer, memsz: seg.memorySize, filesz: seg.fileSize,
                    prot: seg.protection.rawValue, in_place: seg.inPlace ? 1 : 0)
            }
        }
        out.pointee = c
        return 0
    } catch {
        return failing(error, -1)
    }
}

@c(nommu_brk)
public func nommu_brk(_ p: OpaquePointer?, _ newBrk: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    guard let p = process(p) else { return failing(.invalidArgument, nil) }
    do { return try p.brk(UInt(bitPattern: newBrk)).pointer } catch { return failing(error, nil) }
}
