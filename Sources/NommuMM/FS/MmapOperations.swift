// SPDX-License-Identifier: Apache-2.0
//
// The file operations `do_mmap` calls: `f_op->get_unmapped_area` of each filesystem and
// driver (where a direct mapping's memory is), and the read that fills a private copy.
import NommuBase
import NommuHost
import PageAllocator

extension System {
    /// `f_op->get_unmapped_area` of the file's driver or filesystem.
    func getUnmappedArea(_ node: Inode, length: UInt, pgoff: UInt, in s: inout ModelState) -> Result<UInt, Errno> {
        let shift = UInt(pageShift)
        let page = pageSize
        func window(base: UInt, size: Int) -> Result<UInt, Errno> {
            // The range must lie inside the device's memory.
            let size = UInt(size)
            guard pgoff <= size >> shift, length <= size, pgoff << shift <= size - length else {
                return .failure(.invalidArgument)
            }
            return .success(base + (pgoff << shift))
        }
        switch node.mount {
        case .devShm, .tmp, .sysvShm:
            return ramfsGetUnmappedArea(node, length: length, pgoff: pgoff)
        case .rom:
            // romfs_get_unmapped_area: inside the file, then through to the MTD.
            let maxpages = (UInt(node.size) + page - 1) >> shift
            let lpages = (length + page - 1) >> shift
            guard pgoff < maxpages, maxpages - pgoff >= lpages else { return .failure(.invalidArgument) }
            guard s.devices.flashMode == .read else { return .failure(.noFunction) }
            return .success(UInt(bitPattern: flash.baseAddress) + UInt(node.romOffset) + (pgoff << shift))
        case .dev:
            switch node.device! {
            case .mtd0:
                let r = window(base: UInt(bitPattern: flash.baseAddress), size: flash.byteCount)
                if case .success = r, s.devices.flashMode != .read { return .failure(.noFunction) }
                return r
            case .fb0, .ram0:
                guard let (base, size) = deviceMemory(node.device!, in: &s) else {
                    return .failure(.noSuchDeviceOrAddress)
                }
                return window(base: UInt(bitPattern: base), size: size)
            case .zero, .null, .ttyS0:
                return .failure(.noFunction)
            }
        default:
            return .failure(.noFunction)
        }
    }

    /// Reads file data into memory through the read method (a private copy).
    /// - Returns: Bytes read (fewer at end of file). - Throws: the read's errno.
    func readInodeInto(
        _ id: Int, _ dst: UnsafeMutableRawPointer, count: Int, at offset: Int, in s: inout ModelState
    ) throws(Errno) -> Int {
        let node = s.fs.inodes[id]!
        guard offset >= 0 else { throw .invalidArgument }
        switch node.mount {
        case .data:
            return try HostFS.read(node.hostFD, into: dst, count: count, at: offset)
        case .rom:
            guard offset < node.size else { return 0 }
            let n = min(count, node.size - offset)
            copyFlash(at: node.romOffset + offset, count: n, to: dst, in: &s)
            return n
        case .dev where node.device == .zero:
            // Linux 6.1's __kernel_read refuses a file whose operations have both read and
            // read_iter, as /dev/zero's do: the private copy fails.
            guard configuration.reference == .document else { throw .invalidArgument }
            dst.initializeMemory(as: UInt8.self, repeating: 0, count: count)
            return count
        case .dev where node.device == .mtd0:
            guard offset < flash.byteCount else { return 0 }
            let n = min(count, flash.byteCount - offset)
            copyFlash(at: offset, count: n, to: dst, in: &s)
            return n
        default:
            let bytes = try readInode(id, at: offset, count: count, in: &s)
            bytes.withUnsafeBytes { if !$0.isEmpty { dst.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
            return bytes.count
        }
    }
}
