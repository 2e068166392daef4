// SPDX-License-Identifier: Apache-2.0
import NommuBase
import PageAllocator

extension System {
    /// See `Process.mmap`.
    func mmap(
        _ pid: Int32, address: UInt, length: UInt, protection: Protection, flags: MapFlags, fd: CInt, offset: Int64,
        file: OpenFile? = nil
    ) throws(Errno) -> VirtualAddress {
        // Byte-offset entry points (ksys_mmap) check the offset first, before the fd. The offset
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
        // ksys_mmap_pgoff: a file mapping looks its descriptor up; anonymous ones ignore the fd.
        let isFile = !flags.contains(.anonymous)
        // (A proc_create file's text is kept from this lookup: its mapping is a copy of it.)
        var procText: ProcText? = nil
        if isFile && file == nil {
            let f = try state.withLock { (s: inout ModelState) throws(Errno) in try descriptor(pid, fd, in: &s) }
            if case .text(let bytes, let path?) = f.kind {
                procText = ProcText(bytes: bytes, path: path, readable: f.readable, writable: f.writable)
            }
        }
        // validate_mmap_request, in order.
        // 1. MAP_FIXED, and (the nommu-mmap document) any address hint; Linux 6.1's
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
        if let text = procText {
            return try mmapProcCopy(pid, text, rounded: rounded, protection: protection, flags: flags, pgoff: pgoff)
        }
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
        return try insertPrivateRegion(pid, run, rounded: rounded, flags: vmFlags, pgoff: pgoff)
    }

    /// Puts a run the process now owns into the region tree and its address space, as one
    /// region (anonymous, or the copy of the procfs file at `procPath`) and one mapping.
    /// - Throws: `ESRCH` when the process exited meanwhile (the run goes back: nothing stays).
    func insertPrivateRegion(
        _ pid: Int32, _ run: PageRun, rounded: UInt, flags vmFlags: VMFlags, pgoff: UInt, procPath: String? = nil
    ) throws(Errno) -> VirtualAddress {
        let start = UInt(bitPattern: allocator.address(of: run.start))
        var region = Region(
            start: start, end: start + rounded, top: start + UInt(run.keptPages) << UInt(pageShift), pgoff: pgoff,
            flags: vmFlags, usage: 1, backing: .anonymous, run: run)
        let inserted = state.withLock { s -> Bool in
            guard let mm = s.processes[pid] else { return false }
            if let procPath { region.backing = .procCopy(s.procPathNumber(procPath)) }
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

    /// A `proc_create` file (`/proc/meminfo`, `/proc/maps`, `/proc/buddyinfo`) open for a
    /// mapping: the text read at open, its path and the descriptor's modes.
    struct ProcText {
        var bytes: [UInt8]
        var path: String
        var readable: Bool
        var writable: Bool
    }

    /// mmap of a `proc_create` file: `proc_reg_file_ops` has `mmap` and no capabilities, so
    /// validate_mmap_request gives it the regular-file default, COPY only: a shared mapping
    /// is ENODEV, and a private one is a copy of the text read through its read method (the
    /// snapshot taken at open), zero past its end. It is a file mapping (munmap takes it
    /// whole; read-only, mremap refuses it) whose region names the file's path.
    /// - Throws: `EACCES` for a descriptor not open for reading (or a shared writable
    ///   mapping of one not open for writing); `ENODEV` for a shared mapping; `ENOMEM`.
    func mmapProcCopy(
        _ pid: Int32, _ text: ProcText, rounded: UInt,
        protection: Protection, flags: MapFlags, pgoff: UInt
    ) throws(Errno) -> VirtualAddress {
        guard text.readable else { throw .permissionDenied }
        if flags.rawValue & MapFlags.typeMask == MapFlags.shared.rawValue {
            if protection.contains(.write) && !text.writable { throw .permissionDenied }
            throw .operationNotSupportedByDevice
        }
        var vmFlags = VMFlags(protection).union([.mayRead, .mayWrite, .mayExec, .mappedCopy])
        if !protection.contains(.write) { vmFlags.insert(.mayOverlay) }  // as any private file mapping
        let run = try allocator.allocateExact(bytes: Int(rounded), .zeroed)
        let start = UInt(bitPattern: allocator.address(of: run.start))
        // The read starts at the page offset; past the text's end the copy stays zero.
        let (from, wrapped) = pgoff.multipliedReportingOverflow(by: pageSize)
        if !wrapped, from < UInt(text.bytes.count) {
            let n = min(UInt(text.bytes.count) - from, rounded)
            text.bytes.withUnsafeBytes { b in
                let to = UnsafeMutableRawPointer(bitPattern: start)!
                to.copyMemory(from: b.baseAddress! + Int(from), byteCount: Int(n))
            }
        }
        return try insertPrivateRegion(
            pid, run, rounded: rounded, flags: vmFlags, pgoff: pgoff, procPath: text.path)
    }

    /// Frees a run the model owns; failure would be a model bug.
    func releaseOrTrap(_ run: PageRun) {
        do { try allocator.free(run) } catch { preconditionFailure("model lost track of \(run): \(error)") }
    }
}
