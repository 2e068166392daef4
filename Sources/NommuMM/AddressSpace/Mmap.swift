// SPDX-License-Identifier: Apache-2.0
//
// # do_mmap: one pipeline for every mapping
//
// mm/nommu.c maps anonymous memory, files, devices, procfs text and SysV segments through
// one function, `do_mmap`, in named steps. So does this file, step for step:
//
//   mmap / mmap2 (ksys_mmap_pgoff)  the byte offset becomes pages; the source is named
//   openMmapSource (fget)           the descriptor looked up once, under the model lock
//   checkMmapArguments              what validate_mmap_request asks of every mapping: no
//                                   address, a type, a length, pgoff + pages not wrapping
//   validateMmapRequest             what it asks of a file: the driver's capabilities,
//                                   cut down to what the request allows
//   determineVMFlags                the VMA's flags from the protection and capabilities
//   findShareableRegion             do_mmap's search of the region tree for one to share
//   doMmapDirect / doMmapPrivate    the file's own memory in place (get_unmapped_area), or
//                                   pages from the allocator, cleared or filled by a read
//   addRegionAndMapping             add_nommu_region + add_vma_to_mm: the one insert
//
// Anonymous memory takes its pages before the model lock: clearing them is the longest
// step and needs no lock, and the lock is then held only for the insert. A file mapping
// runs every step under one acquisition of the lock, so the inode its descriptor names
// cannot change under the call and a failure leaves nothing behind.
import NommuBase
import PageAllocator

/// What `do_mmap` maps, as its callers name it.
enum MmapSource {
    /// No file (`MAP_ANONYMOUS`; `MAP_SHARED | MAP_ANONYMOUS` is mapped as private).
    case anonymous
    /// The file open on the calling process's descriptor.
    case descriptor(CInt)
    /// An open file description held outside any table (exec's, while it loads).
    case held(OpenFile)
    /// A SysV segment's inode (`do_shmat`), and the segment's id for the mapping's attach.
    case sysv(inode: Int, id: CInt)
}

/// The file a mapping maps, resolved once: what `validate_mmap_request` reads of its
/// inode and operations.
struct MmapFile {
    /// A VFS inode, or a `proc_create` file's text (read at open, as `seq_file` does).
    enum Object {
        case inode(Int)
        case procText([UInt8], path: String)
    }
    var object: Object
    var readable: Bool
    var writable: Bool

    var inode: Int? {
        if case .inode(let id) = object { return id }
        return nil
    }
}

extension System {
    /// `Process.mmap`'s body (`ksys_mmap`): the offset must be page aligned, checked before
    /// the descriptor. `file`, when given, is exec's held file description, used instead of `fd`.
    func mmap(
        _ pid: Int32, address: UInt, length: UInt, protection: Protection, flags: MapFlags, fd: CInt, offset: Int64,
        file: OpenFile? = nil
    ) throws(Errno) -> VirtualAddress {
        // The offset is an off_t and becomes pages by an arithmetic shift (riscv_sys_mmap,
        // the 64-bit no-MMU entry), so a negative one is a page offset near 2^64 that wraps
        // with the length: EOVERFLOW, as Linux 6.1 answers (the kernel oracle's val_offset case).
        guard UInt64(bitPattern: offset) & UInt64(pageSize - 1) == 0 else { throw .invalidArgument }
        return try mmap(
            pid, address: address, length: length, protection: protection, flags: flags, fd: fd,
            pgoff: UInt(bitPattern: Int(truncatingIfNeeded: offset >> Int64(pageShift))), file: file)
    }

    /// `Process.mmap2`'s body (`ksys_mmap_pgoff`): names the source and calls `doMmap`.
    func mmap(
        _ pid: Int32, address: UInt, length: UInt, protection: Protection, flags: MapFlags, fd: CInt, pgoff: UInt,
        file: OpenFile? = nil
    ) throws(Errno) -> VirtualAddress {
        // An anonymous mapping ignores the descriptor.
        if flags.contains(.anonymous) {
            return try doMmapAnonymous(
                pid, address: address, length: length, protection: protection, flags: flags, pgoff: pgoff)
        }
        let source: MmapSource = if let file { .held(file) } else { .descriptor(fd) }
        return try doMmap(
            pid, source, address: address, length: length, protection: protection, flags: flags, pgoff: pgoff)
    }

    /// `do_mmap`: maps `source` into process `pid`.
    /// - Returns: The mapping's address. - Throws: as `Process.mmap` documents.
    func doMmap(
        _ pid: Int32, _ source: MmapSource, address: UInt, length: UInt, protection: Protection, flags: MapFlags,
        pgoff: UInt
    ) throws(Errno) -> VirtualAddress {
        if case .anonymous = source {
            return try doMmapAnonymous(
                pid, address: address, length: length, protection: protection, flags: flags, pgoff: pgoff)
        }
        let start = try state.withLock { (s: inout ModelState) throws(Errno) -> UInt in
            let file = try openMmapSource(source, pid, protection: protection, in: &s)
            let rounded = try checkMmapArguments(address: address, length: length, flags: flags, pgoff: pgoff)
            guard let mm = s.tasks.processes[pid] else { throw .noSuchProcess }
            return try mmapFile(
                mm, file, rounded: rounded, protection: protection, flags: flags, pgoff: pgoff, shm: source.shmID,
                in: &s)
        }
        _checkInvariants()
        return VirtualAddress(start)
    }

    /// `do_mmap` of anonymous memory.
    func doMmapAnonymous(
        _ pid: Int32, address: UInt, length: UInt, protection: Protection, flags: MapFlags, pgoff: UInt
    ) throws(Errno) -> VirtualAddress {
        // Anonymous: capabilities COPY, no region to share; do_mmap_private's pages are taken
        // (and cleared, unless MAP_UNINITIALIZED is passed and allowed) outside the lock.
        let rounded = try checkMmapArguments(address: address, length: length, flags: flags, pgoff: pgoff)
        let vmFlags = determineVMFlags(protection, flags, capabilities: [.copy], shared: false)
        let skipClear = flags.contains(.uninitialized) && configuration.allowUninitialized
        let run = try allocator.allocateExact(bytes: Int(rounded), skipClear ? .uninitialized : .zeroed)
        let region = privateRegion(run, rounded: rounded, flags: vmFlags, pgoff: pgoff, backing: .anonymous)
        let inserted = state.withLock { s -> Bool in
            guard let mm = s.tasks.processes[pid] else { return false }
            addRegionAndMapping(mm, region, length: rounded, flags: region.flags, pgoff: pgoff, shm: nil, in: &s)
            return true
        }
        guard inserted else {
            // The process exited while its pages were being cleared: nothing stays.
            releaseOrTrap(run)
            throw .noSuchProcess
        }
        _checkInvariants()
        return VirtualAddress(region.start)
    }

    // MARK: The steps

    /// `fget`: the file behind the source. A `proc_create` file (`/proc/meminfo`, `/proc/maps`,
    /// `/proc/buddyinfo`) maps its text as read at open; other procfs files, directories and
    /// `/proc/sys` files have no mmap operation (ENODEV, in `validateMmapRequest`).
    /// - Throws: `ESRCH`; `EBADF` for a descriptor not open; `EINVAL` for a segment gone.
    func openMmapSource(
        _ source: MmapSource, _ pid: Int32, protection: Protection, in s: inout ModelState
    ) throws(Errno) -> MmapFile? {
        let f: OpenFile
        switch source {
        case .anonymous: return nil
        case .descriptor(let fd): f = try descriptor(pid, fd, in: &s)
        case .held(let held): f = held  // its inode's opens count it, so the inode is still this one
        case .sysv(let inode, _):
            guard s.fs.inodes[inode] != nil else { throw .invalidArgument }
            return MmapFile(object: .inode(inode), readable: true, writable: protection.contains(.write))
        }
        switch f.kind {
        case .inode(let id): return MmapFile(object: .inode(id), readable: f.readable, writable: f.writable)
        case .text(let bytes, let path?):
            return MmapFile(object: .procText(bytes, path: path), readable: f.readable, writable: f.writable)
        case .text, .sysctl, .directory: return nil
        }
    }

    /// `validate_mmap_request`'s checks every mapping gets, in the kernel's order.
    /// - Returns: The page-rounded length.
    /// - Throws: `EINVAL` for `MAP_FIXED`, an address hint (the nommu-mmap document; Linux
    ///   6.1's do_mmap ignores a hint), a type other than private or shared, or a zero
    ///   length; `ENOMEM` when the rounded length wraps or exceeds TASK_SIZE; `EOVERFLOW`
    ///   when pgoff + pages wraps (unsigned long arithmetic).
    @inline(__always)
    func checkMmapArguments(address: UInt, length: UInt, flags: MapFlags, pgoff: UInt) throws(Errno) -> UInt {
        guard !flags.contains(.fixed) else { throw .invalidArgument }
        guard address == 0 || configuration.reference == .linux61 else { throw .invalidArgument }
        let type = flags.rawValue & MapFlags.typeMask
        guard type == MapFlags.private.rawValue || type == MapFlags.shared.rawValue else { throw .invalidArgument }
        guard length != 0 else { throw .invalidArgument }
        let (sum, wrapped) = length.addingReportingOverflow(pageSize - 1)
        let rounded = wrapped ? 0 : sum & ~(pageSize - 1)
        guard rounded != 0, rounded <= taskSize else { throw .noMemory }
        guard !pgoff.addingReportingOverflow(rounded >> UInt(pageShift)).overflow else { throw .overflow }
        return rounded
    }

    /// `validate_mmap_request`'s checks of a file: the capabilities its driver or filesystem
    /// gives, cut down to what this request may use.
    /// - Returns: The capabilities (COPY for a private copy, DIRECT for the file's memory in place).
    /// - Throws: `ENODEV` for no mmap operation, or a driver that cannot map it as asked
    ///   (no DIRECT for a shared mapping, no COPY for a private one); `EINVAL` for a file that
    ///   is not regular or a device, or a shared mapping the driver maps in place but not with
    ///   the protection asked; `EACCES` for a descriptor not open for reading, a shared writable
    ///   mapping of one not open for writing, or a shared mapping of an append-only file open
    ///   for writing; `EPERM` for `PROT_EXEC` on a noexec mount.
    func validateMmapRequest(
        _ file: MmapFile, protection prot: Protection, flags: MapFlags, sysv: Bool, in s: inout ModelState
    ) throws(Errno) -> MapCapabilities {
        var caps: MapCapabilities
        var appendOnly = false
        var noExec = false
        switch file.object {
        case .procText:
            // proc_reg_file_ops has mmap and no capabilities: the regular-file default.
            caps = [.copy]
        case .inode(let id):
            let node = s.fs.inodes[id]!
            // No mmap operation: pipes, FIFOs, directories, the serial port.
            guard node.hasMmapOperation else { throw .operationNotSupportedByDevice }
            // The operation's capabilities, else the inode type's default; other types: EINVAL.
            guard let given = node.capabilities,
                node.kind == .regular || node.kind == .characterDevice || node.kind == .blockDevice
            else { throw .invalidArgument }
            caps = given
            // Linux 6.1's shm_file_operations has no mmap_capabilities: a SysV attach gets
            // the regular-file default, COPY only, and a shared mapping needs DIRECT (ENODEV).
            if sysv && configuration.reference == .linux61 { caps = [.copy] }
            // No get_unmapped_area: no DIRECT. (Every file here has a read method.)
            if !node.hasGetUnmappedArea { caps.remove(.direct) }
            appendOnly = node.appendOnly
            noExec = node.mount.isNoExec
        }
        guard file.readable else { throw .permissionDenied }
        if flags.rawValue & MapFlags.typeMask == MapFlags.shared.rawValue {
            // A shared writable mapping needs a writable descriptor; an append-only file open
            // for writing is not shared; sharing needs the memory in place.
            if prot.contains(.write) && !file.writable { throw .permissionDenied }
            if appendOnly && file.writable { throw .permissionDenied }
            guard caps.contains(.direct) else { throw .operationNotSupportedByDevice }
            caps.remove(.copy)
        } else {
            // A private mapping needs a copy to fall back on; a writable one is always a copy.
            guard caps.contains(.copy) else { throw .operationNotSupportedByDevice }
            if prot.contains(.write) { caps.remove(.direct) }
        }
        // Protection the device cannot give in place: a private mapping copies instead.
        if caps.contains(.direct) {
            let missing =
                (prot.contains(.read) && !caps.contains(.read)) || (prot.contains(.write) && !caps.contains(.write))
                || (prot.contains(.exec) && !caps.contains(.exec))
            if missing {
                caps.remove(.direct)
                if flags.rawValue & MapFlags.typeMask == MapFlags.shared.rawValue { throw .invalidArgument }
            }
        }
        // noexec mounts (path_noexec); read+exec without EXEC makes a copy.
        if noExec && prot.contains(.exec) { throw .notPermitted }
        if prot.contains([.read, .exec]) && !caps.contains(.exec) { caps.remove(.direct) }
        return caps
    }

    /// `determine_vm_flags` (v6.3+): the protection, then for a private copy every MAY bit,
    /// for a direct mapping the device's, and for a shared one `VM_SHARED | VM_MAYSHARE`; a
    /// private read-only file mapping may overlay (`VM_MAYOVERLAY`: share a region).
    @inline(__always)
    func determineVMFlags(
        _ prot: Protection, _ flags: MapFlags, capabilities caps: MapCapabilities, shared: Bool, file: Bool = false
    ) -> VMFlags {
        var vmFlags = VMFlags(prot)
        let capFlags = VMFlags(rawValue: caps.intersection(.vmFlags).rawValue)
        if shared {
            vmFlags.formUnion(capFlags.union([.shared, .mayShare]))
        } else {
            vmFlags.formUnion(caps.contains(.direct) ? capFlags : [.mayRead, .mayWrite, .mayExec])
            if file && !prot.contains(.write) { vmFlags.insert(.mayOverlay) }
        }
        if flags.contains(.growsDown) { vmFlags.insert(.growsDown) }
        if flags.contains(.locked) { vmFlags.insert(.locked) }
        return vmFlags
    }

    /// The file part of `do_mmap`, under the model lock, after the arguments' checks.
    func mmapFile(
        _ mm: Int, _ file: MmapFile?, rounded: UInt, protection prot: Protection, flags: MapFlags, pgoff: UInt,
        shm: CInt?, in s: inout ModelState
    ) throws(Errno) -> UInt {
        // procfs files other than proc_create's, /proc/sys and directories have no mmap operation.
        guard let file else { throw .operationNotSupportedByDevice }
        var caps = try validateMmapRequest(file, protection: prot, flags: flags, sysv: shm != nil, in: &s)
        let shared = flags.rawValue & MapFlags.typeMask == MapFlags.shared.rawValue
        let vmFlags = determineVMFlags(prot, flags, capabilities: caps, shared: shared, file: true)

        // A procfs text is never shared: each mapping is a copy of what its descriptor read.
        if vmFlags.isShareable, let id = file.inode {
            if let (rid, start) = try findShareableRegion(
                inode: id, length: rounded, pgoff: pgoff, direct: caps.contains(.direct), in: &s)
            {
                s.mm.regions.update(rid) { $0.usage += 1 }
                var mflags = vmFlags
                if s.mm.regions[rid]!.flags.contains(.mappedCopy) { mflags.insert(.mappedCopy) }
                // A mapping of a region already there: the region's pages are not counted again.
                let m = Mapping(start: start, end: start + rounded, region: rid, flags: mflags, pgoff: pgoff, shm: shm)
                s.mm.spaces.update(mm) { $0.insert(m) }
                return start
            }
        }

        var region: Region? = nil
        if caps.contains(.direct), let id = file.inode {
            region = try doMmapDirect(id, length: rounded, flags: vmFlags, pgoff: pgoff, capabilities: &caps, in: &s)
        }
        if region == nil {
            region = try doMmapPrivate(file, length: rounded, flags: vmFlags, pgoff: pgoff, in: &s)
        }
        addRegionAndMapping(mm, region!, length: rounded, flags: region!.flags, pgoff: pgoff, shm: shm, in: &s)
        return region!.start
    }

    /// do_mmap's search of the region tree: a shareable region of the same inode that holds
    /// the whole of [pgoff, pgoff + pages).
    /// - Returns: The region and the address of the page asked for; nil for none.
    /// - Throws: `EINVAL` when a region overlaps the range in part and the request cannot be
    ///   mapped in place (a copy cannot share part of one).
    func findShareableRegion(
        inode id: Int, length: UInt, pgoff: UInt, direct: Bool, in s: inout ModelState
    ) throws(Errno) -> (region: Int, start: UInt)? {
        let shift = UInt(pageShift)
        let pgend = pgoff + (length >> shift)
        for rid in s.mm.tree {
            let r = s.mm.regions[rid]!
            guard r.flags.isShareable, r.backing.inode == id else { continue }
            let rpgend = r.pgoff + ((r.end - r.start + pageSize - 1) >> shift)
            if pgoff >= rpgend || r.pgoff >= pgend { continue }
            guard pgoff >= r.pgoff && pgend <= rpgend else {
                // Partial overlap: a copy cannot share it; a direct request goes on.
                if !direct { throw .invalidArgument }
                continue
            }
            return (rid, r.start + ((pgoff - r.pgoff) << shift))
        }
        return nil
    }

    /// The direct half of `do_mmap_shared_file` / `do_mmap_private`: the file's memory in place,
    /// where its `get_unmapped_area` says it is. The drivers' mmap operations (ramfs, romfs,
    /// the MTD, the ramdisk, the frame buffer) accept every shareable VMA.
    /// - Returns: The region; nil (DIRECT dropped from `caps`) when the file has no memory to
    ///   give in place (`ENOSYS` from get_unmapped_area) and may be copied instead.
    /// - Throws: get_unmapped_area's errno; `ENODEV` when it has no memory and no copy is allowed;
    ///   `EINVAL` when another region already starts there (add_nommu_region would BUG() on it).
    func doMmapDirect(
        _ id: Int, length: UInt, flags: VMFlags, pgoff: UInt, capabilities caps: inout MapCapabilities,
        in s: inout ModelState
    ) throws(Errno) -> Region? {
        switch getUnmappedArea(s.fs.inodes[id]!, length: length, pgoff: pgoff, in: &s) {
        case .success(let addr):
            if s.mm.regions.live.contains(where: { $0.1.start == addr }) { throw .invalidArgument }
            return Region(
                start: addr, end: addr + length, top: addr + length, pgoff: pgoff, flags: flags, usage: 1,
                backing: .file(id), run: nil)
        case .failure(let e):
            guard e == .noFunction else { throw e }
            guard caps.contains(.copy) else { throw .operationNotSupportedByDevice }
            caps.remove(.direct)
            return nil
        }
    }

    /// `do_mmap_private`'s copy of a file: 2^order pages, trimmed, filled by the file's read
    /// method from `pgoff` and cleared past the end of the file up to the length (not the slack).
    /// - Throws: `ENOMEM`; the read's errno (`EINVAL` for a position past 2^63).
    func doMmapPrivate(
        _ file: MmapFile, length: UInt, flags: VMFlags, pgoff: UInt, in s: inout ModelState
    ) throws(Errno) -> Region {
        let run = try allocator.allocateExact(bytes: Int(length), .uninitialized)
        let base = allocator.address(of: run.start)
        let backing: Backing
        var n = 0
        switch file.object {
        case .inode(let id):
            backing = .file(id)
            do throws(Errno) {
                // `fpos = pgoff << PAGE_SHIFT` in a signed loff_t: a huge pgoff gives a negative
                // position, which kernel_read refuses (rw_verify_area).
                n = try readInodeInto(
                    id, base, count: Int(length), at: Int(bitPattern: pgoff << UInt(pageShift)), in: &s)
            } catch {
                releaseOrTrap(run)
                throw error
            }
        case .procText(let bytes, let path):
            backing = .procCopy(s.mm.procPathNumber(path))
            // The read starts at the page offset; past the text's end the copy stays zero.
            let (from, wrapped) = pgoff.multipliedReportingOverflow(by: pageSize)
            if !wrapped, from < UInt(bytes.count) {
                n = Int(min(UInt(bytes.count) - from, length))
                bytes.withUnsafeBytes { base.copyMemory(from: $0.baseAddress! + Int(from), byteCount: n) }
            }
        }
        if n < Int(length) { (base + n).initializeMemory(as: UInt8.self, repeating: 0, count: Int(length) - n) }
        return privateRegion(run, rounded: length, flags: flags, pgoff: pgoff, backing: backing)
    }

    /// A region owning `run` (anonymous memory or a private copy): `VM_MAPPED_COPY`, with the
    /// slack the trim rule left between `end` and `top`.
    @inline(__always)
    func privateRegion(_ run: PageRun, rounded: UInt, flags: VMFlags, pgoff: UInt, backing: Backing) -> Region {
        let start = UInt(bitPattern: allocator.address(of: run.start))
        return Region(
            start: start, end: start + rounded, top: start + UInt(run.keptPages) << UInt(pageShift), pgoff: pgoff,
            flags: flags.union(.mappedCopy), usage: 1, backing: backing, run: run)
    }

    /// `add_nommu_region` + `add_vma_to_mm`: `region` (new) into the tree, and a mapping of
    /// the whole of it into the address space `mm`, counted in `total_vm`; a region that owns
    /// pages counts them in `mmap_pages_allocated`, a file's in its inode.
    @inline(__always)
    func addRegionAndMapping(
        _ mm: Int, _ region: Region, length: UInt, flags: VMFlags, pgoff: UInt, shm: CInt?, in s: inout ModelState
    ) {
        let id = s.mm.addRegion(region)
        if let run = region.run { s.mm.mmapPagesAllocated += run.keptPages }
        if let inode = region.backing.inode { s.fs.inodes.update(inode) { $0.regions += 1 } }
        let m = Mapping(
            start: region.start, end: region.start + length, region: id, flags: flags, pgoff: pgoff, shm: shm)
        let pages = Int(length >> UInt(pageShift))
        s.mm.spaces.update(mm) { space in
            space.insert(m)
            space.totalVM += pages
        }
    }

    /// Frees a run the model owns; failure would be a model bug.
    func releaseOrTrap(_ run: PageRun) {
        do { try allocator.free(run) } catch { preconditionFailure("model lost track of \(run): \(error)") }
    }
}

extension MmapSource {
    /// The SysV segment a mapping of this source attaches.
    var shmID: CInt? {
        if case .sysv(_, let id) = self { return id }
        return nil
    }
}
