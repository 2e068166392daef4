// SPDX-License-Identifier: Apache-2.0
//
// SysV shared memory (ipc/shm.c: a segment is a ramfs file whose pages are gathered at
// shmget) and POSIX shared memory on /dev/shm (a ramfs file, `shm_open` as glibc does it).
// A SysV segment is an unlinked ramfs file whose contiguous zeroed pages are gathered when
// it is created; every attach maps it MAP_SHARED, so every attacher gets the same address.
public import NommuBase
#if canImport(Glibc)
    import Glibc
#endif

/// A SysV shared-memory segment.
struct ShmSegment {
    var key: Int32
    var inode: Int
    var size: Int
    var attaches = 0
    var creator: Int32
    var lastPID: Int32 = 0
    var mode: CInt
    /// `SHM_DEST`: removed with IPC_RMID, destroyed at the last detach.
    var removed = false
    var attachTime = 0
    var detachTime = 0
    var changeTime = 0
}

/// What `shmctl(IPC_STAT)` reports.
public struct SharedMemoryStatus: Sendable, Hashable {
    public var key: Int32
    public var size: Int
    public var attaches: Int
    public var creatorPID: Int32
    public var lastPID: Int32
    /// Permission bits, with `SHM_DEST` (0o1000) once removed.
    public var mode: CInt
    public var attachTime: Int
    public var detachTime: Int
    public var changeTime: Int
}

/// SysV IPC constants, one-to-one with `<sys/ipc.h>` and `<sys/shm.h>`.
public enum SharedMemory {
    /// `IPC_PRIVATE`.
    public static let privateKey: Int32 = 0
    /// `IPC_CREAT`.
    public static let create = CInt(IPC_CREAT)
    /// `IPC_EXCL`.
    public static let exclusive = CInt(IPC_EXCL)
    /// `IPC_RMID`.
    public static let remove = CInt(IPC_RMID)
    /// `IPC_STAT`.
    public static let stat = CInt(IPC_STAT)
    /// `SHM_RDONLY`.
    public static let readOnly = CInt(SHM_RDONLY)
    /// `SHM_RND`.
    public static let round = CInt(SHM_RND)
    /// `SHM_REMAP`.
    public static let remap: CInt = 0o40000
    /// `SHM_EXEC`.
    public static let exec: CInt = 0o100000
    /// `SHM_DEST`: the mode bit of a removed segment.
    public static let destroyBit: CInt = 0o1000
}

extension Process {
    /// `shmget(key, size, shmflg)`: a segment's contiguous zeroed pages are allocated when it
    /// is created (`newseg` → `shmem_kernel_file_setup` → `__shmem_file_setup`, which without an MMU calls
    /// `ramfs_nommu_expand_for_mapping` for the whole size).
    /// - Throws: `EINVAL` for a size of 0, or larger than an existing segment of `key`;
    ///   `ENOENT` for a missing key without `IPC_CREAT`; `EEXIST` for `IPC_CREAT | IPC_EXCL`
    ///   on an existing key; `EFBIG` for 4 GiB or more, or above the largest block;
    ///   `ENOMEM` when no contiguous run fits; `ESRCH`.
    /// - Returns: The segment id.
    public func shmget(key: Int32, size: Int, flags: CInt) throws(Errno) -> CInt {
        try system.shmget(pid, key: key, size: size, flags: flags)
    }

    /// `shmat(shmid, shmaddr, shmflg)`: maps the segment `MAP_SHARED` (read-only with
    /// `SHM_RDONLY`); every attacher gets the same address.
    /// - Throws: `EINVAL` for a non-zero address (a fixed address no-MMU cannot honour), `SHM_REMAP` without one, or
    ///   an unknown id; `ESRCH`.
    public func shmat(_ shmid: CInt, address: UInt = 0, flags: CInt = 0) throws(Errno) -> VirtualAddress {
        try system.shmat(pid, shmid, address: address, flags: flags)
    }

    /// `shmdt(shmaddr)`: unmaps the attach that starts exactly at `address`.
    /// - Throws: `EINVAL` for an unaligned address or one that starts no attach; `ESRCH`.
    public func shmdt(_ address: UInt) throws(Errno) {
        try system.shmdt(pid, address)
    }

    /// `shmctl(shmid, IPC_RMID)`: the segment goes at its last detach (at once when none).
    /// - Throws: `EINVAL` for an unknown id; `ESRCH`.
    public func shmRemove(_ shmid: CInt) throws(Errno) {
        try system.shmRemove(pid, shmid)
    }

    /// `shmctl(shmid, IPC_STAT)`. - Throws: `EINVAL` for an unknown id; `ESRCH`.
    public func shmStatus(_ shmid: CInt) throws(Errno) -> SharedMemoryStatus {
        try system.shmStatus(pid, shmid)
    }

    /// `shm_open(name, oflag, mode)`: `open` of `/dev/shm/<name>`.
    /// - Throws: `EINVAL` for an empty name or one with a `/` after the leading ones;
    ///   `ENAMETOOLONG`; then as `open`.
    public func shmOpen(_ name: String, _ flags: OpenFlags, mode: CInt = 0o600) throws(Errno) -> CInt {
        try shmOpen(bytes: Array(name.utf8), flags, mode: mode)
    }

    /// `shm_open` of a name given as bytes. - Throws: as `shmOpen`.
    public func shmOpen(bytes name: [UInt8], _ flags: OpenFlags, mode: CInt = 0o600) throws(Errno) -> CInt {
        try system.open(pid, PathBytes(path: "/dev/shm/") + Self.posixShmName(name), flags)
    }

    /// `shm_unlink(name)`: `unlink` of `/dev/shm/<name>`. - Throws: as `shmOpen`, then `unlink`.
    public func shmUnlink(_ name: String) throws(Errno) {
        try shmUnlink(bytes: Array(name.utf8))
    }

    /// `shm_unlink` of a name given as bytes. - Throws: as `shmUnlink`.
    public func shmUnlink(bytes name: [UInt8]) throws(Errno) {
        try system.unlink(pid, PathBytes(path: "/dev/shm/") + Self.posixShmName(name))
    }

    /// glibc's name rule: leading slashes are dropped; what is left must be non-empty,
    /// slash-free and at most NAME_MAX bytes (a NUL ends it, as it ends a C string).
    static func posixShmName(_ name: [UInt8]) throws(Errno) -> PathBytes {
        let trimmed = PathBytes(name.prefix { $0 != 0 }.drop { $0 == FileState.slash })
        guard !trimmed.isEmpty, !trimmed.contains(FileState.slash) else { throw .invalidArgument }
        guard trimmed.count <= Int(NAME_MAX) else { throw .fileNameTooLong }
        return trimmed
    }
}

extension System {
    private func now() -> Int { Int(time(nil)) }

    fileprivate func shmget(_ pid: Int32, key: Int32, size: Int, flags: CInt) throws(Errno) -> CInt {
        try state.withLock { (s: inout ModelState) throws(Errno) -> CInt in
            guard s.tasks.processes[pid] != nil else { throw .noSuchProcess }
            if key != SharedMemory.privateKey, let id = s.ipc.sysvKeys[key] {
                if flags & SharedMemory.create != 0 && flags & SharedMemory.exclusive != 0 { throw .fileExists }
                guard size <= s.ipc.sysv[id]!.size else { throw .invalidArgument }
                return id
            }
            if key != SharedMemory.privateKey && flags & SharedMemory.create == 0 { throw .noSuchFileOrDirectory }
            // newseg: SHMMIN is 1.
            guard size >= 1 else { throw .invalidArgument }
            let hex = String(UInt32(bitPattern: key), radix: 16)
            let name = "/SYSV" + String(repeating: "0", count: max(0, 8 - hex.count)) + hex
            let inode = s.fs.makeInode(.regular, on: .sysvShm, path: name + " (deleted)")
            s.fs.inodes.update(inode) { node in
                node.linked = false
                node.pins = 1
            }
            do throws(Errno) {
                try ramfsResize(inode, to: size, in: &s)
            } catch {
                s.fs.inodes.update(inode) { $0.pins = 0 }
                releaseIfUnused(inode, in: &s)
                throw error
            }
            let id = s.ipc.nextShmID
            s.ipc.nextShmID += 1
            s.ipc.sysv[id] = ShmSegment(
                key: key, inode: inode, size: size, creator: pid, mode: flags & 0o777, changeTime: now())
            if key != SharedMemory.privateKey { s.ipc.sysvKeys[key] = id }
            return id
        }
    }

    fileprivate func shmat(_ pid: Int32, _ shmid: CInt, address: UInt, flags: CInt) throws(Errno) -> VirtualAddress {
        // do_shmat: a non-zero address means MAP_FIXED, which no-MMU refuses.
        guard shmid >= 0 else { throw .invalidArgument }
        guard address == 0 else { throw .invalidArgument }
        guard flags & SharedMemory.remap == 0 else { throw .invalidArgument }
        // The segment is pinned before the lock is dropped (do_shmat's shm_nattch++): an
        // IPC_RMID meanwhile only marks it, so its id and inode cannot go to a new segment
        // before the mapping names them. The pin becomes the mapping's attach, or goes.
        let (inode, size) = try state.withLock { (s: inout ModelState) throws(Errno) -> (Int, Int) in
            guard s.tasks.processes[pid] != nil else { throw .noSuchProcess }
            guard let seg = s.ipc.sysv[shmid] else { throw .invalidArgument }
            s.ipc.sysv[shmid]!.attaches += 1
            return (seg.inode, seg.size)
        }
        var prot: Protection = flags & SharedMemory.readOnly != 0 ? [.read] : [.read, .write]
        if flags & SharedMemory.exec != 0 { prot.insert(.exec) }
        let rounded = (UInt(size) + pageSize - 1) & ~(pageSize - 1)
        let addr: VirtualAddress
        do {
            addr = try doMmap(
                pid, .sysv(inode: inode, id: shmid), address: 0, length: rounded, protection: prot, flags: .shared,
                pgoff: 0)
        } catch {
            state.withLock { s in
                guard var seg = s.ipc.sysv[shmid] else { return }
                seg.attaches -= 1
                s.ipc.sysv[shmid] = seg
                if seg.removed && seg.attaches == 0 { destroySegment(shmid, in: &s) }
            }
            _checkInvariants()
            throw error
        }
        state.withLock { s in
            s.ipc.sysv[shmid]?.lastPID = pid
            s.ipc.sysv[shmid]?.attachTime = now()
        }
        return addr
    }

    fileprivate func shmdt(_ pid: Int32, _ address: UInt) throws(Errno) {
        guard address & (pageSize - 1) == 0 else { throw .invalidArgument }
        try state.withLock { (s: inout ModelState) throws(Errno) in
            guard let mm = s.tasks.processes[pid] else { throw .noSuchProcess }
            guard
                let i = s.mm.spaces[mm]!.mappings.firstIndex(where: { $0.start == address && $0.shm != nil })
            else { throw .invalidArgument }
            s.ipc.sysv[s.mm.spaces[mm]!.mappings[i].shm!]?.lastPID = pid
            removeMapping(at: i, of: mm, in: &s)
        }
        _checkInvariants()
    }

    /// `shm_close`: one attach fewer; a removed segment goes with its last.
    func sysvDetached(_ shmid: CInt, in s: inout ModelState) {
        guard var seg = s.ipc.sysv[shmid] else { return }
        seg.attaches -= 1
        seg.detachTime = now()
        s.ipc.sysv[shmid] = seg
        if seg.removed && seg.attaches == 0 { destroySegment(shmid, in: &s) }
    }

    func destroySegment(_ shmid: CInt, in s: inout ModelState) {
        guard let seg = s.ipc.sysv.removeValue(forKey: shmid) else { return }
        if s.ipc.sysvKeys[seg.key] == shmid { s.ipc.sysvKeys[seg.key] = nil }
        s.fs.inodes.update(seg.inode) { $0.pins -= 1 }
        releaseIfUnused(seg.inode, in: &s)
    }

    fileprivate func shmRemove(_ pid: Int32, _ shmid: CInt) throws(Errno) {
        try state.withLock { (s: inout ModelState) throws(Errno) in
            guard s.tasks.processes[pid] != nil else { throw .noSuchProcess }
            guard var seg = s.ipc.sysv[shmid] else { throw .invalidArgument }
            // The key is released at once; the segment lives until its last detach.
            if s.ipc.sysvKeys[seg.key] == shmid { s.ipc.sysvKeys[seg.key] = nil }
            seg.removed = true
            seg.changeTime = now()
            s.ipc.sysv[shmid] = seg
            if seg.attaches == 0 { destroySegment(shmid, in: &s) }
        }
        _checkInvariants()
    }

    fileprivate func shmStatus(_ pid: Int32, _ shmid: CInt) throws(Errno) -> SharedMemoryStatus {
        try state.withLock { (s: inout ModelState) throws(Errno) -> SharedMemoryStatus in
            guard s.tasks.processes[pid] != nil else { throw .noSuchProcess }
            guard let seg = s.ipc.sysv[shmid] else { throw .invalidArgument }
            return SharedMemoryStatus(
                key: seg.removed ? SharedMemory.privateKey : seg.key, size: seg.size, attaches: seg.attaches,
                creatorPID: seg.creator, lastPID: seg.lastPID,
                mode: seg.mode | (seg.removed ? SharedMemory.destroyBit : 0), attachTime: seg.attachTime,
                detachTime: seg.detachTime, changeTime: seg.changeTime)
        }
    }
}

extension System {
    /// Empties the memory filesystems and the IPC namespace, and gives the ramdisk back:
    /// what a power-off does, so a test can check that every page comes back. Processes
    /// must have exited. - Throws: `EBUSY` while a process is alive.
    package func tearDownFilesystems() throws(Errno) {
        try state.withLock { (s: inout ModelState) throws(Errno) in
            guard s.tasks.processes.count == 0 else { throw .resourceBusy }
            for id in Array(s.ipc.sysv.keys) where s.ipc.sysv[id]!.attaches == 0 { destroySegment(id, in: &s) }
            for m in [MountPoint.devShm, .tmp] {
                for (_, id) in s.fs.names[m] ?? [:] {
                    s.fs.inodes.update(id) { $0.linked = false }
                    releaseIfUnused(id, in: &s)
                }
                s.fs.names[m] = [:]
            }
        }
        try releaseRamdisk()
    }
}
