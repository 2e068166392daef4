// SPDX-License-Identifier: Apache-2.0
//
// mmap of files and devices: validate_mmap_request's file steps (6–13 below),
// determine_vm_flags (v6.3+), do_mmap's search of the region tree for a region to share,
// get_unmapped_area, and do_mmap_shared_file / do_mmap_private with its direct attempt and
// its copy.
import NommuBase
import PageAllocator

extension System {
    /// The file part of `do_mmap`, after steps 1–5. `rounded` is the page-rounded length.
    func mmapFile(
        _ pid: Int32, rounded: UInt, protection prot: Protection, flags: MapFlags, fd: CInt, pgoff: UInt,
        sysv: (inode: Int, id: CInt)? = nil, file: OpenFile? = nil
    ) throws(Errno) -> VirtualAddress {
        let shift = UInt(pageShift)
        let result = try state.withLock { (s: inout ModelState) throws(Errno) -> UInt in
            guard let mm = s.processes[pid] else { throw .noSuchProcess }
            let f: OpenFile
            if let seg = sysv {
                guard s.inodes[seg.inode] != nil else { throw .invalidArgument }
                f = OpenFile(kind: .inode(seg.inode), readable: true, writable: prot.contains(.write))
            } else if let file {
                f = file  // held (its inode's opens count it), so the inode is still this one
            } else {
                f = try descriptor(pid, fd, in: &s)
            }
            // 6. No mmap operation: procfs, pipes, FIFOs, directories, the serial port.
            guard let id = f.inode, s.inodes[id]!.hasMmapOperation else { throw .operationNotSupportedByDevice }
            let node = s.inodes[id]!
            // 7. Capabilities: the op's, else the inode type's default; other types → EINVAL.
            guard var caps = node.capabilities,
                node.kind == .regular || node.kind == .characterDevice || node.kind == .blockDevice
            else { throw .invalidArgument }
            // Linux 6.1's shm_file_operations has no mmap_capabilities: a SysV attach gets
            // the regular-file default, COPY only, and a shared mapping needs DIRECT (ENODEV).
            if sysv != nil && configuration.reference == .linux61 { caps = [.copy] }
            // 8. No get_unmapped_area → no DIRECT. (Every file here has a read method.)
            if !node.hasGetUnmappedArea { caps.remove(.direct) }
            // 9. Not open for reading.
            guard f.readable else { throw .permissionDenied }
            let shared = flags.rawValue & MapFlags.typeMask == MapFlags.shared.rawValue
            if shared {
                // 10a–e.
                if prot.contains(.write) && !f.writable { throw .permissionDenied }
                if node.appendOnly && f.writable { throw .permissionDenied }
                guard caps.contains(.direct) else { throw .operationNotSupportedByDevice }
                caps.remove(.copy)
            } else {
                // 11a–b.
                guard caps.contains(.copy) else { throw .operationNotSupportedByDevice }
                if prot.contains(.write) { caps.remove(.direct) }
            }
            // 12. Protection the device cannot give in place.
            if caps.contains(.direct) {
                let missing =
                    (prot.contains(.read) && !caps.contains(.read)) || (prot.contains(.write) && !caps.contains(.write))
                    || (prot.contains(.exec) && !caps.contains(.exec))
                if missing {
                    caps.remove(.direct)
                    if shared { throw .invalidArgument }
                }
            }
            // 13. noexec mounts (path_noexec); read+exec without EXEC makes a copy.
            if node.mount.isNoExec && prot.contains(.exec) { throw .notPermitted }
            if prot.contains([.read, .exec]) && !caps.contains(.exec) { caps.remove(.direct) }

            // determine_vm_flags (v6.3+).
            var vmFlags = VMFlags(prot)
            let capFlags = VMFlags(rawValue: caps.intersection(.vmFlags).rawValue)
            if shared {
                vmFlags.formUnion(capFlags.union([.shared, .mayShare]))
            } else {
                vmFlags.formUnion(caps.contains(.direct) ? capFlags : [.mayRead, .mayWrite, .mayExec])
                if !prot.contains(.write) { vmFlags.insert(.mayOverlay) }
            }
            if flags.contains(.growsDown) { vmFlags.insert(.growsDown) }
            if flags.contains(.locked) { vmFlags.insert(.locked) }

            // do_mmap: a shareable request looks for a region of the same inode to reuse.
            let pglen = rounded >> shift
            if vmFlags.isShareable {
                for rid in s.tree {
                    let r = s.regions[rid]!
                    guard r.flags.isShareable, r.backing.inode == id else { continue }
                    let rpglen = (r.end - r.start + pageSize - 1) >> shift
                    let rpgend = r.pgoff + rpglen
                    let pgend = pgoff + pglen
                    if pgoff >= rpgend || r.pgoff >= pgend { continue }
                    let inside = pgoff >= r.pgoff && pgend <= rpgend
                    if !inside {
                        // Partial overlap: a copy cannot share it; a direct request goes on.
                        if !caps.contains(.direct) { throw .invalidArgument }
                        continue
                    }
                    let start = r.start + ((pgoff - r.pgoff) << shift)
                    s.regions.update(rid) { $0.usage += 1 }
                    var mflags = vmFlags
                    if r.flags.contains(.mappedCopy) { mflags.insert(.mappedCopy) }
                    let m = Mapping(
                        start: start, end: start + rounded, region: rid, flags: mflags, pgoff: pgoff, shm: sysv?.id)
                    s.spaces.update(mm) { $0.insert(m) }
                    return start
                }
            }

            // get_unmapped_area for a direct mapping.
            var start: UInt? = nil
            if caps.contains(.direct) {
                switch getUnmappedArea(node, length: rounded, pgoff: pgoff, in: &s) {
                case .success(let addr):
                    // Another region already starts here: add_nommu_region would BUG() on it.
                    if s.regions.live.contains(where: { $0.1.start == addr }) { throw .invalidArgument }
                    start = addr
                case .failure(let e):
                    guard e == .noFunction else { throw e }
                    guard caps.contains(.copy) else { throw .operationNotSupportedByDevice }
                    caps.remove(.direct)
                }
            }

            // Set up: direct (shared, or private read-only in place) or a private copy.
            var region: Region
            if let addr = start {
                // The drivers' mmap ops (ramfs, romfs, the MTD, the ramdisk, the frame
                // buffer) accept every shareable VMA, and only shareable ones get here.
                region = Region(
                    start: addr, end: addr + rounded, top: addr + rounded, pgoff: pgoff, flags: vmFlags, usage: 1,
                    backing: .file(id), run: nil)
            } else {
                let run = try allocator.allocateExact(bytes: Int(rounded), .uninitialized)
                let base = allocator.address(of: run.start)
                do throws(Errno) {
                    // `fpos = pgoff << PAGE_SHIFT` in a signed loff_t: a huge pgoff gives a
                    // negative position, which kernel_read refuses (rw_verify_area).
                    let n = try readInodeInto(
                        id, base, count: Int(rounded), at: Int(bitPattern: pgoff << shift), in: &s)
                    // Bytes past EOF are cleared, up to the rounded length (not the slack).
                    if n < Int(rounded) {
                        (base + n).initializeMemory(as: UInt8.self, repeating: 0, count: Int(rounded) - n)
                    }
                } catch {
                    releaseOrTrap(run)
                    throw error
                }
                let addr = UInt(bitPattern: base)
                vmFlags.insert(.mappedCopy)
                region = Region(
                    start: addr, end: addr + rounded, top: addr + UInt(run.keptPages) << shift, pgoff: pgoff,
                    flags: vmFlags, usage: 1, backing: .file(id), run: run)
                s.mmapPagesAllocated += run.keptPages
            }
            let rid = s.addRegion(region)
            s.inodes.update(id) { $0.regions += 1 }
            let m = Mapping(
                start: region.start, end: region.start + rounded, region: rid, flags: vmFlags, pgoff: pgoff,
                shm: sysv?.id)
            s.spaces.update(mm) { space in
                space.insert(m)
                space.totalVM += Int(pglen)
            }
            return region.start
        }
        _checkInvariants()
        return VirtualAddress(result)
    }

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
            guard s.flashMode == .read else { return .failure(.noFunction) }
            return .success(UInt(bitPattern: flash.baseAddress) + UInt(node.romOffset) + (pgoff << shift))
        case .dev:
            switch node.device! {
            case .mtd0:
                let r = window(base: UInt(bitPattern: flash.baseAddress), size: flash.byteCount)
                if case .success = r, s.flashMode != .read { return .failure(.noFunction) }
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
        let node = s.inodes[id]!
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
