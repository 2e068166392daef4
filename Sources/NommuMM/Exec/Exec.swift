// SPDX-License-Identifier: Apache-2.0
//
// Program loading the way ELF-FDPIC does it on a no-MMU system (fs/binfmt_elf_fdpic.c,
// elf_fdpic_map_file_by_direct_mmap): every PT_LOAD segment is mmapped from the file on
// its own, text read-only and private (so it is shared between processes, and executes in
// place when the file is on /rom), data as a private copy with its bss cleared, then one
// anonymous region for brk and stack, mapped with MAP_UNINITIALIZED.
public import NommuBase
import NommuELF

/// Where `exec` put a program (`struct nommu_image`).
public struct ExecutableImage: Sendable, Hashable {
    /// One loaded segment.
    public struct Segment: Sendable, Hashable {
        /// Where the segment's first byte (its `p_vaddr`) landed.
        public var address: VirtualAddress
        /// `p_memsz`.
        public var memorySize: Int
        /// `p_filesz`.
        public var fileSize: Int
        public var protection: Protection
        /// Mapped in place (execute in place, or a direct overlay) rather than copied.
        public var inPlace: Bool
    }

    public var segments: [Segment]
    /// The entry point, relocated into the segment that holds it.
    public var entry: VirtualAddress
    /// The brk range: brk starts at `startBrk` and may move up to `endBrk`.
    public var startBrk: VirtualAddress
    public var endBrk: VirtualAddress
    /// `start_stack`: the top of the brk+stack region (stacks grow down and never grow).
    public var startStack: VirtualAddress
    /// Bytes of the brk+stack region (PT_GNU_STACK's size, else 128 KiB).
    public var stackSize: Int
    /// PT_INTERP, when the program names one (the model does not load interpreters).
    public var interpreter: String?
}

extension Process {
    /// `execve` of an ELF executable under ELF-FDPIC rules: a fresh address space (a vfork
    /// child leaves its parent's alone), each PT_LOAD segment mapped from the file, then
    /// the brk+stack region; `start_stack` is set so `/proc/<pid>/maps` labels `[stack]`.
    /// - Throws: `ENOENT`, `ENAMETOOLONG` for the path; `EACCES` for a file that is not
    ///   regular or is on a noexec mount; `ENOEXEC` for a malformed or non-ELF file;
    ///   `ENOMEM` (and any mmap error) when a segment cannot be mapped. On failure nothing
    ///   is mapped and the old address space stays.
    public func exec(_ path: String) throws(Errno) -> ExecutableImage {
        try system.exec(pid, PathBytes(path: path))
    }

    /// `exec` of a path given as bytes. - Throws: as `exec`.
    public func exec(bytes path: [UInt8]) throws(Errno) -> ExecutableImage {
        try system.exec(pid, PathBytes(path.prefix { $0 != 0 }))
    }

    /// `brk(addr)`: moves the break within [start_brk, end_brk] and returns it; any other
    /// address (0 included) leaves it and returns the current break (mm/nommu.c's `brk`).
    public func brk(_ address: UInt) throws(Errno) -> VirtualAddress {
        try system.brk(pid, address)
    }
}

extension System {
    /// FDPIC's stack size when PT_GNU_STACK gives none.
    static let defaultStackSize = 131_072

    fileprivate func exec(_ pid: Int32, _ path: PathBytes) throws(Errno) -> ExecutableImage {
        // The file is held as the kernel's exec holds its `struct file`: in no descriptor table
        // (exec needs no free descriptor, and no other thread can close or replace it).
        let file = try open(pid, path, .readOnly, install: false).file
        defer { release(file) }
        // do_open_execat: the lookup's errors first, then a noexec mount is EACCES.
        if case .mount(let m, _) = try FileState.resolve(path).place, m.isNoExec { throw .permissionDenied }
        let (isRegular, size) = state.withLock { s -> (Bool, Int) in
            guard let id = file.inode, let node = s.fs.inodes[id] else { return (false, 0) }
            return (node.kind == .regular, node.size)
        }
        guard isRegular else { throw .permissionDenied }
        let elf: ELFImage
        do {
            elf = try ELFImage.parse(fileSize: UInt64(size)) { offset, count in
                guard offset <= UInt64(Int.max), let bytes = try? read(file, count: count, at: Int(offset)),
                    bytes.count == count
                else { return nil }
                return bytes
            }
        } catch {
            throw .execFormatError
        }
        let page = UInt64(pageSize)
        for seg in elf.segments {
            // Each segment is mapped at a page offset: its offset and address must agree
            // within a page, and its sizes must fit the machine.
            guard (seg.offset & (page - 1)) == (seg.virtualAddress & (page - 1)),
                seg.memorySize <= UInt64(taskSize), seg.offset <= UInt64(Int.max)
            else { throw .execFormatError }
        }

        // A fresh address space; the old one stays until the new one is complete.
        let (oldMM, newMM) = try state.withLock { (s: inout ModelState) throws(Errno) -> (Int, Int) in
            guard let old = s.tasks.processes[pid] else { throw .noSuchProcess }
            let new = s.mm.spaces.insert(AddressSpace())
            s.tasks.processes[pid] = new
            return (old, new)
        }
        // The new space is only ever named through `s.tasks.processes[pid]` (pids are never
        // reused): a process that exited meanwhile has had it released, and its slot may
        // already be another process's.
        func rollBack() {
            state.withLock { s in
                if s.tasks.processes[pid] == newMM {
                    s.tasks.processes[pid] = oldMM
                    s.mm.spaces[newMM]!.users = 1
                    releaseAddressSpace(newMM, in: &s)
                } else {
                    releaseAddressSpace(oldMM, in: &s)  // exited: exec held the old space's use
                }
            }
        }
        var segments: [ExecutableImage.Segment] = []
        var entry: UInt = 0
        do throws(Errno) {
            for seg in elf.segments {
                let disp = UInt(seg.virtualAddress & (page - 1))
                var prot: Protection = []
                if seg.readable { prot.insert(.read) }
                if seg.writable { prot.insert(.write) }
                if seg.executable { prot.insert(.exec) }
                let base: VirtualAddress
                if seg.fileSize == 0 {
                    // Pure bss: anonymous, cleared.
                    base = try mmap(
                        pid, address: 0, length: UInt(seg.memorySize) + disp, protection: prot.union(.read),
                        flags: [.private, .anonymous], fd: -1, offset: 0)
                } else {
                    let length = (seg.writable ? UInt(seg.memorySize) : UInt(seg.fileSize)) + disp
                    base = try mmap(
                        pid, address: 0, length: length, protection: prot, flags: .private, fd: -1,
                        offset: Int64(seg.offset) - Int64(disp), file: file)
                    if seg.writable && seg.memorySize > seg.fileSize {
                        // The copy read whatever follows the segment in the file: clear the bss.
                        let from = base.rawValue + disp + UInt(seg.fileSize)
                        UnsafeMutableRawPointer(bitPattern: from)!.initializeMemory(
                            as: UInt8.self, repeating: 0, count: Int(seg.memorySize - seg.fileSize))
                    }
                }
                let address = VirtualAddress(base.rawValue + disp)
                let inPlace = state.withLock { s in
                    guard let mm = s.tasks.processes[pid],
                        let m = s.mm.spaces[mm]!.mappings.first(where: { $0.start == base.rawValue })
                    else { return false }
                    return !s.mm.regions[m.region]!.flags.contains(.mappedCopy)
                        && s.mm.regions[m.region]!.backing.inode != nil
                }
                segments.append(
                    .init(
                        address: address, memorySize: Int(seg.memorySize), fileSize: Int(seg.fileSize),
                        protection: prot, inPlace: inPlace))
                if elf.entry >= seg.virtualAddress && elf.entry - seg.virtualAddress < max(seg.memorySize, 1) {
                    entry = address.rawValue + UInt(elf.entry - seg.virtualAddress)
                }
            }
            // The brk+stack region: MAP_UNINITIALIZED, so it is cleared only when the system
            // does not allow uninitialised mappings.
            // PT_GNU_STACK's p_memsz is the ELF's to say: more than TASK_SIZE can never be
            // mapped (ENOMEM, as the mmap below says for anything too big to fit).
            let asked = elf.stackSize ?? 0
            guard asked <= UInt64(taskSize) else { throw .noMemory }
            var stackSize = Int(asked)
            if stackSize == 0 { stackSize = System.defaultStackSize }
            stackSize = max((stackSize + Int(pageSize) - 1) & ~(Int(pageSize) - 1), 2 * Int(pageSize))
            var stackProt: Protection = [.read, .write]
            if elf.executableStack { stackProt.insert(.exec) }
            let region = try mmap(
                pid, address: 0, length: UInt(stackSize), protection: stackProt,
                flags: [.private, .anonymous, .uninitialized, .growsDown], fd: -1, offset: 0)
            // load_elf_fdpic_binary (!MMU): brk = end_brk = start_brk, so the break never
            // grows (a C library mallocs through mmap here); only the stack uses the region.
            let startBrk = region.rawValue
            let endBrk = startBrk
            let startStack = startBrk + UInt(stackSize)
            try state.withLock { (s: inout ModelState) throws(Errno) in
                guard s.tasks.processes[pid] == newMM else { throw .noSuchProcess }
                s.mm.spaces.update(newMM) { space in
                    space.startBrk = startBrk
                    space.brk = startBrk
                    space.endBrk = endBrk
                    space.startStack = startStack
                }
            }
            // Done: the old address space goes (a vfork parent keeps it). (The descriptor
            // table is the process's own: vfork copied it.)
            state.withLock { s in releaseAddressSpace(oldMM, in: &s) }
            _checkInvariants()
            return ExecutableImage(
                segments: segments, entry: VirtualAddress(entry), startBrk: VirtualAddress(startBrk),
                endBrk: VirtualAddress(endBrk), startStack: VirtualAddress(startStack), stackSize: stackSize,
                interpreter: elf.interpreter)
        } catch {
            rollBack()
            throw error
        }
    }

    fileprivate func brk(_ pid: Int32, _ address: UInt) throws(Errno) -> VirtualAddress {
        try state.withLock { (s: inout ModelState) throws(Errno) -> VirtualAddress in
            guard let mm = s.tasks.processes[pid] else { throw .noSuchProcess }
            let space = s.mm.spaces[mm]!
            if space.startBrk != 0 && address >= space.startBrk && address <= space.endBrk {
                s.mm.spaces.update(mm) { $0.brk = address }
                return VirtualAddress(address)
            }
            return VirtualAddress(space.brk)
        }
    }
}
