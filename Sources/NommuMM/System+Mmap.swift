// SPDX-License-Identifier: Apache-2.0
import NommuBase
import PageAllocator

extension System {
    /// See `Process.mmap`.
    func mmap(
        _ pid: Int32, address: UInt, length: UInt, protection: Protection, flags: MapFlags, fd: CInt, offset: Int64,
        file: OpenFile? = nil
    ) throws(Errno) -> VirtualAddress {
        // §1.1.1: byte-offset entry points check the offset first, before the fd. The offset
        // is an off_t and becomes pages by an arithmetic shift (riscv_sys_mmap, the 64-bit
        // no-MMU entry), so a negative one is a page offset near 2^64 that wraps with the
        // length: EOVERFLOW, as Linux 6.1 answers (the kernel oracle's val_offset case).
        guard UInt64(bitPattern: offset) & UInt64(pageSize - 1) == 0 else { throw .invalidArgument }
        return try mmap(
            pid, address: address, length: length, protection: protection, flags: flags, fd: fd,
            pgoff: UInt(bitPattern: Int(truncatingIfNeeded: offset >> Int64(pageShift))), file: file)
    }

    /// The page-offset entry (`ksys_mmap_pgoff`), shared by `mmap` and `mmap2`. `file`, when
    /// given, is an open file description held outside any table (exec's), used instead of `fd`.
    func mmap(
        _ pid: Int32, address: UInt, length: UInt, protection: Protection, flags: MapFlags, fd: CInt, pgoff: UInt,
        file: OpenFile? = nil
    ) throws(Errno) -> VirtualAddress {
        let page = pageSize
        // §1.1.2: a file mapping looks its descriptor up; anonymous ones ignore the fd.
        let isFile = !flags.contains(.anonymous)
        if isFile && file == nil {
            try state.withLock { (s: inout ModelState) throws(Errno) in _ = try descriptor(pid, fd, in: &s) }
        }
        // §1.2 validate_mmap_request, in order.
        // 1. MAP_FIXED, and (Part A.1, the seed document) any address hint; Linux 6.1's
        // do_mmap ignores a hint ("we ignore the address hint").
        guard !flags.contains(.fixed) else { throw .invalidArgument }
        guard address == 0 || configuration.reference == .linux61 else { throw .invalidArgument }
        // 2. The type must be MAP_PRIVATE or MAP_SHARED.
        let type = flags.rawValue & MapFlags.typeMask
        guard type == MapFlags.private.rawValue || type == MapFlags.shared.rawValue else { throw .invalidArgument }
        // 3. Zero length.
        guard length != 0 else { throw .invalidArgument }
        // 4. The page-rounded length wraps to 0 or exceeds TASK_SIZE.
        let (sum, wrapped) = length.addingReportingOverflow(page - 1)
        let rounded = wrapped ? 0 : sum & ~(page - 1)
        guard rounded != 0, rounded <= taskSize else { throw .noMemory }
        // 5. pgoff + pages wraps (unsigned long arithmetic).
        guard !pgoff.addingReportingOverflow(rounded >> UInt(pageShift)).overflow else { throw .overflow }

        // 6–13 and the rest of do_mmap for files and devices.
        if isFile {
            return try mmapFile(
                pid, rounded: rounded, protection: protection, flags: flags, fd: fd, pgoff: pgoff, file: file)
        }

        // Anonymous (MAP_SHARED | MAP_ANONYMOUS is handled as private): capabilities COPY,
        // vm_flags prot | MAYREAD | MAYWRITE | MAYEXEC (determine_vm_flags, v6.3+).
        var vmFlags = VMFlags(protection).union([.mayRead, .mayWrite, .mayExec, .mappedCopy])
        if flags.contains(.growsDown) { vmFlags.insert(.growsDown) }
        if flags.contains(.locked) { vmFlags.insert(.locked) }

        // do_mmap_private: 2^order pages, trimmed per vm.nr_trim_pages; the anonymous
        // region is cleared over [start, end) unless MAP_UNINITIALIZED is passed and allowed.
        let skipClear = flags.contains(.uninitialized) && configuration.allowUninitialized
        let run = try allocator.allocateExact(bytes: Int(rounded), skipClear ? .uninitialized : .zeroed)
        let start = UInt(bitPattern: allocator.address(of: run.start))
        let region = Region(
            start: start, end: start + rounded, top: start + UInt(run.keptPages) << UInt(pageShift), pgoff: pgoff,
            flags: vmFlags, usage: 1, backing: .anonymous, run: run)
        let inserted = state.withLock { s -> Bool in
            guard let mm = s.processes[pid] else { return false }
            let id = s.addRegion(region)
            let m = Mapping(start: start, end: start + rounded, region: id, flags: vmFlags, pgoff: pgoff)
            s.spaces.update(mm) { space in
                space.insert(m)
                space.totalVM += Int(rounded >> UInt(pageShift))
            }
            s.mmapPagesAllocated += run.keptPages
            return true
        }
        guard inserted else {
            // The process exited while its pages were being cleared: nothing stays.
            releaseOrTrap(run)
            throw .noSuchProcess
        }
        _checkInvariants()
        return VirtualAddress(start)
    }

    /// Frees a run the model owns; failure would be a model bug.
    func releaseOrTrap(_ run: PageRun) {
        do { try allocator.free(run) } catch { preconditionFailure("model lost track of \(run): \(error)") }
    }
}
