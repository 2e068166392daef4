// SPDX-License-Identifier: Apache-2.0
public import NommuBase
package import NommuHost
import PageAllocator
package import Synchronization

/// A process of a `System`: a handle (pid) through which it makes its memory calls.
///
/// Calls on a process that has exited throw `ESRCH`. A process sees, unmaps and remaps
/// only its own mappings; `vfork` children share their parent's address space, as
/// `clone(CLONE_VM)` does.
public final class Process: Sendable, Hashable, CustomStringConvertible {
    public let system: System
    public let pid: Int32
    /// The process's malloc as the C ABI made it (`nommu_malloc` and friends): the bits of
    /// an `Unmanaged` reference it holds, 0 before the first call. One acquire load finds
    /// it; it is set once by compare-and-exchange and released when the process's handle
    /// goes (`nommu_process_exit`).
    package let mallocSlot = Atomic<UInt>(0)
    /// Mallocs `nommu_malloc_configure` replaced, kept until the handle goes (a thread may
    /// still be inside one).
    package let replacedMallocs = HostMutex<[AnyObject]>([])

    init(system: System, pid: Int32) {
        self.system = system
        self.pid = pid
    }

    public static func == (a: Process, b: Process) -> Bool { a.system === b.system && a.pid == b.pid }
    public func hash(into h: inout Hasher) { h.combine(pid) }
    public var description: String { "process \(pid)" }

    /// Whether the process is still alive.
    public var isAlive: Bool { system.state.withLock { $0.tasks.processes[pid] != nil } }

    // MARK: Life cycle

    /// `vfork()`: a child that shares this process's address space (`clone(CLONE_VM)`) and
    /// has a copy of its descriptor table (`dup_fd`: the same open files, not the same table).
    /// - Throws: `ESRCH` when this process has exited.
    public func vfork() throws(Errno) -> Process {
        let child = try system.state.withLock { (s: inout ModelState) throws(Errno) -> Int32 in
            guard let mm = s.tasks.processes[pid] else { throw .noSuchProcess }
            let c = s.tasks.nextPID
            s.tasks.nextPID += 1
            s.tasks.processes[c] = mm
            s.mm.spaces[mm]!.users += 1
            // vfork is clone(CLONE_VM | CLONE_VFORK) without CLONE_FILES: the memory is shared,
            // the descriptor table copied (dup_fd: the same open files, each held once more).
            s.tasks.tableOf[c] = s.fs.copyTable(s.tasks.tableOf[pid]!)
            s.tasks.uidOf[c] = s.tasks.uidOf[pid]  // the credentials are copied
            return c
        }
        return Process(system: system, pid: child)
    }

    /// `getuid()`: the process's uid (0, root, unless `setuid` changed it).
    /// - Throws: `ESRCH` when the process has exited.
    public func getuid() throws(Errno) -> UInt32 {
        try system.state.withLock { (s: inout ModelState) throws(Errno) -> UInt32 in
            guard let uid = s.tasks.uidOf[pid] else { throw .noSuchProcess }
            return UInt32(uid)
        }
    }

    /// `setuid(uid)`: root (uid 0, `CAP_SETUID`) may become any user, for good; another
    /// user only itself. The uid decides who may read `/proc/<pid>/maps`
    /// (`ptrace_may_access`) and whether a read-only `/proc` file opens for writing
    /// (root's `CAP_DAC_OVERRIDE`).
    /// - Throws: `EINVAL` for -1 (no uid); `EPERM` for a user becoming another; `ESRCH`.
    public func setuid(_ uid: UInt32) throws(Errno) {
        guard uid != UInt32.max else { throw .invalidArgument }
        try system.state.withLock { (s: inout ModelState) throws(Errno) in
            guard let now = s.tasks.uidOf[pid] else { throw .noSuchProcess }
            guard now == 0 || UInt32(now) == uid else { throw .notPermitted }
            s.tasks.uidOf[pid] = Int(uid)
            // commit_creds: a changed uid makes the address space undumpable.
            if UInt32(now) != uid, let mm = s.tasks.processes[pid] { s.mm.spaces.update(mm) { $0.dumpable = false } }
        }
    }

    /// `fork()`: not available without an MMU. Always throws.
    /// - Throws: `EINVAL`, as `sys_fork` returns on !MMU (kernel/fork.c); `ESRCH` when this
    ///   process has exited.
    public func fork() throws(Errno) -> Never {
        try system.ensureAlive(pid)
        throw .invalidArgument
    }

    /// Exits: releases every mapping (when no vfork relative still shares the address
    /// space). Idempotent.
    public func exit() {
        system.exitProcess(pid)
    }

    // MARK: Memory calls

    /// `mmap(addr, len, prot, flags, fd, off)` under no-MMU rules.
    ///
    /// Checks, in the kernel's order (the first failure wins):
    /// - Throws: `EINVAL` for an offset that is not page aligned (checked before the fd);
    ///   `EBADF` for a file mapping whose descriptor is not open; `EINVAL` for `MAP_FIXED`
    ///   or a non-zero address (the nommu-mmap document; see `Configuration.reference`);
    ///   `EINVAL` for a type other than `MAP_PRIVATE` or `MAP_SHARED`; `EINVAL` for a zero
    ///   length; `ENOMEM` when the page-rounded length wraps or exceeds TASK_SIZE;
    ///   `EOVERFLOW` when the page offset plus the pages wraps (a negative page-aligned
    ///   offset does: it becomes pages by an arithmetic shift). Then, for files and devices
    ///   (`validate_mmap_request`): `ENODEV` for a file without an mmap operation or whose
    ///   driver cannot map it as asked (no direct mapping for a shared one, no copy for a
    ///   private one); `EACCES` for a descriptor not open for reading, a shared writable
    ///   mapping of one not open for writing, or a shared mapping of an append-only file
    ///   open for writing; `EINVAL` for a file that is not regular or a device;
    ///   `EINVAL` for a shared mapping its driver maps in place but not with the protection
    ///   asked; `EPERM` for `PROT_EXEC` on a noexec mount. Last: `ENOMEM` when no
    ///   contiguous run fits; `ESRCH` when the process has exited.
    /// - Returns: The mapping's (page-aligned) address.
    ///
    /// Models `ksys_mmap_pgoff` → `do_mmap` → `validate_mmap_request` /
    /// `do_mmap_private` / `do_mmap_shared_file` in mm/nommu.c.
    public func mmap(
        address: UInt = 0, length: UInt, protection: Protection, flags: MapFlags, fd: CInt = -1, offset: Int64 = 0
    ) throws(Errno) -> VirtualAddress {
        try system.mmap(
            pid, address: address, length: length, protection: protection, flags: flags, fd: fd, offset: offset)
    }

    /// `mmap2(addr, len, prot, flags, fd, pgoff)`: as `mmap`, with the offset in pages (so
    /// there is no alignment to check, and on a 64-bit host `pgoff + pages` can wrap:
    /// `EOVERFLOW`, as `do_mmap`'s `pgoff + (len >> PAGE_SHIFT)` check).
    public func mmap2(
        address: UInt = 0, length: UInt, protection: Protection, flags: MapFlags, fd: CInt = -1, pageOffset: UInt
    ) throws(Errno) -> VirtualAddress {
        try system.mmap(
            pid, address: address, length: length, protection: protection, flags: flags, fd: fd, pgoff: pageOffset)
    }

    /// `mprotect`: not available without an MMU. - Throws: `ENOSYS` (or `ESRCH`).
    public func mprotect(address: UInt, length: UInt, protection: Protection) throws(Errno) { try noMMU() }
    /// `msync`: not available without an MMU. - Throws: `ENOSYS` (or `ESRCH`).
    public func msync(address: UInt, length: UInt, flags: CInt) throws(Errno) { try noMMU() }
    /// `mlock`: not available without an MMU. - Throws: `ENOSYS` (or `ESRCH`).
    public func mlock(address: UInt, length: UInt) throws(Errno) { try noMMU() }
    /// `munlock`: not available without an MMU. - Throws: `ENOSYS` (or `ESRCH`).
    public func munlock(address: UInt, length: UInt) throws(Errno) { try noMMU() }
    /// `mincore`: not available without an MMU. - Throws: `ENOSYS` (or `ESRCH`).
    public func mincore(address: UInt, length: UInt) throws(Errno) { try noMMU() }
    /// `madvise`: not available without an MMU. - Throws: `ENOSYS` (or `ESRCH`).
    public func madvise(address: UInt, length: UInt, advice: CInt) throws(Errno) { try noMMU() }

    private func noMMU() throws(Errno) {
        try system.ensureAlive(pid)
        throw .noFunction
    }

    // MARK: Introspection

    /// This process's mappings, in address order, with the region behind each.
    public var mappings: [MappingInfo] {
        system.state.withLock { s in
            guard let mm = s.tasks.processes[pid], let space = s.mm.spaces[mm] else { return [] }
            return space.mappings.map { m in
                let r = s.mm.regions[m.region]!
                var info = MappingInfo(
                    start: VirtualAddress(m.start), end: VirtualAddress(m.end), regionStart: VirtualAddress(r.start),
                    regionEnd: VirtualAddress(r.end), regionTop: VirtualAddress(r.top), regionUsage: r.usage)
                info.ownsPages = r.run != nil
                info.path = r.backing.inode.flatMap { s.fs.inodes[$0]?.path } ?? s.mm.procPath(of: r.backing)
                return info
            }
        }
    }

    /// The mapping of this process that contains `address`: its [start, end), or nil.
    public func mapping(containing address: UInt) -> (start: UInt, end: UInt)? {
        system.state.withLock { s in
            guard let mm = s.tasks.processes[pid], let space = s.mm.spaces[mm], let i = space.index(containing: address)
            else {
                return nil
            }
            return (space.mappings[i].start, space.mappings[i].end)
        }
    }

    /// The region behind the mapping of this process that starts at `address`: its
    /// [start, top), slack included; nil when no mapping starts there.
    public func regionExtent(ofMappingAt address: UInt) -> (start: UInt, top: UInt)? {
        system.state.withLock { s in
            guard let mm = s.tasks.processes[pid], let space = s.mm.spaces[mm],
                let i = space.index(containing: address),
                space.mappings[i].start == address, let r = s.mm.regions[space.mappings[i].region]
            else { return nil }
            return (r.start, r.top)
        }
    }

    /// Sets `mm->start_stack` (exec's job); package-visible for tests.
    package func setStartStack(_ address: UInt) {
        system.state.withLock { s in
            if let mm = s.tasks.processes[pid] { s.mm.spaces[mm]!.startStack = address }
        }
    }

    /// `map_count` and `total_vm` (pages).
    public var counters: (mapCount: Int, totalVM: Int) {
        system.state.withLock { s in
            guard let mm = s.tasks.processes[pid], let space = s.mm.spaces[mm] else { return (0, 0) }
            return (space.mapCount, space.totalVM)
        }
    }
}

/// One mapping as a process sees it, with the region behind it.
public struct MappingInfo: Sendable, Hashable {
    public var start: VirtualAddress
    public var end: VirtualAddress
    public var regionStart: VirtualAddress
    public var regionEnd: VirtualAddress
    public var regionTop: VirtualAddress
    public var regionUsage: Int
    /// The region owns its memory (an anonymous region or a private copy); false for
    /// memory mapped in place (page cache, device memory, execute in place).
    public var ownsPages = true
    /// The mapped file's path, for file and device mappings.
    public var path: String? = nil

    public init(
        start: VirtualAddress, end: VirtualAddress, regionStart: VirtualAddress, regionEnd: VirtualAddress,
        regionTop: VirtualAddress, regionUsage: Int
    ) {
        self.start = start
        self.end = end
        self.regionStart = regionStart
        self.regionEnd = regionEnd
        self.regionTop = regionTop
        self.regionUsage = regionUsage
    }
}
