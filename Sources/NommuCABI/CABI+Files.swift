// SPDX-License-Identifier: Apache-2.0
import CNommu
import NommuBase
import NommuMM
#if canImport(Glibc)
    import Glibc
#endif

@_cdecl("nommu_open_fixed_args")
public func nommu_open_fixed_args(
    _ p: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ flags: CInt, _ mode: CUnsignedInt
) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    guard let path else { return failing(.badAddress, -1) }
    do { return try p.open(String(cString: path), OpenFlags(rawValue: flags)) } catch { return failing(error, -1) }
}

@_cdecl("nommu_close")
public func nommu_close(_ p: OpaquePointer?, _ fd: CInt) -> CInt {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    do {
        try p.close(fd)
        return 0
    } catch {
        return failing(error, -1)
    }
}

@_cdecl("nommu_read")
public func nommu_read(_ p: OpaquePointer?, _ fd: CInt, _ buf: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    guard count >= 0 else { return failing(.invalidArgument, -1) }
    guard buf != nil || count == 0 else { return failing(.badAddress, -1) }
    do {
        let bytes = try p.read(fd, count: count)
        if let buf, !bytes.isEmpty {
            bytes.withUnsafeBytes { buf.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
        return bytes.count
    } catch {
        return failing(error, -1)
    }
}

@_cdecl("nommu_write")
public func nommu_write(_ p: OpaquePointer?, _ fd: CInt, _ buf: UnsafeRawPointer?, _ count: Int) -> Int {
    guard let p = process(p) else { return failing(.invalidArgument, -1) }
    guard count >= 0 else { return failing(.invalidArgument, -1) }
    guard buf != nil || count == 0 else { return failing(.badAddress, -1) }
    let bytes = buf.map { Array(UnsafeRawBufferPointer(start: $0, count: count)) } ?? []
    do { return try p.write(fd, bytes) } catch { return failing(error, -1) }
}
