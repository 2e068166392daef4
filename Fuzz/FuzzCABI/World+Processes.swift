// SPDX-License-Identifier: Apache-2.0
//
// Processes (create, vfork, exit, fork), the malloc family, the flash and romfs calls,
// and the calls a kernel without an MMU refuses.
import CNommu
import FuzzSupport
import NommuCABI
import NommuMM
#if canImport(Glibc)
    import Glibc
#endif

extension World {
    // MARK: Processes

    func lifeCycle(_ p: Proc, _ input: inout FuzzInput) {
        switch input.byte() % 6 {
        case 0:
            guard procs.count < World.maxProcesses else { return }
            guard let h = nommu_process_create(handle) else { fail("nommu_process_create: errno \(errno)") }
            procs.append(Proc(handle: h, pid: nommu_getpid(h), group: Group()))
        case 1, 2:
            guard procs.count < World.maxProcesses else { return }
            guard let h = nommu_vfork(p.handle) else { fail("nommu_vfork: errno \(errno)") }
            let child = Proc(handle: h, pid: nommu_getpid(h), group: p.group)
            child.fds = p.fds  // a copy of the table, as clone without CLONE_FILES gives
            procs.append(child)
        case 3, 4:
            // Any process may exit, a vfork parent before its child included; one stays.
            guard procs.count > 1 else { return }
            let (own, other) = (input.byte() % 2 == 0, Int(input.byte()))
            let i = own ? procs.firstIndex { $0 === p }! : other % procs.count
            let q = procs.remove(at: i)
            nommu_process_exit(q.handle)
            exited.append(q.pid)
            if q.process.isAlive { fail("pid \(q.pid) still alive after nommu_process_exit") }
            if system.pids.contains(q.pid) { fail("pid \(q.pid) still listed after nommu_process_exit") }
        default:
            // setuid: root becomes anyone, a user only itself.
            let now = nommu_getuid(p.handle)
            let uid: uid_t = input.pick([0, 1000, 1001, now])
            errno = 0
            let rc = nommu_setuid(p.handle, uid)
            if (rc == 0) != (now == 0 || uid == now) || (rc != 0 && errno != EPERM) {
                fail("setuid(\(uid)) as \(now): \(rc), errno \(errno)")
            }
            if rc == 0 && uid != now { p.group.dumpable = false }
            errno = 0
            if nommu_fork(p.handle) != -1 || errno != EINVAL { fail("nommu_fork: errno \(errno), not EINVAL") }
            if nommu_getpid(p.handle) != p.pid { fail("nommu_getpid gives \(nommu_getpid(p.handle)), not \(p.pid)") }
        }
    }

    // MARK: malloc

    func mallocSize(_ input: inout FuzzInput) -> Int {
        switch input.byte() % 8 {
        case 0: return 0
        case 1, 2: return 1 + Int(input.byte())
        case 3: return input.word()
        case 4: return 100_000 + input.word() * 4
        case 5: return Int(page) * Int(1 + input.byte() % 8)
        case 6: return input.pick([Int.max, -1, Int.max / 2 + 1, 1 << 40])
        default: return Int(truncatingIfNeeded: input.extreme())
        }
    }

    /// Fills a block with a byte no header word can be made of, and tracks it.
    func allocated(_ p: Proc, _ pointer: UnsafeMutableRawPointer, _ size: Int) {
        if UInt(bitPattern: pointer) & 15 != 0 { fail("malloc returned unaligned \(pointer)") }
        let fill = UInt8(truncatingIfNeeded: step % 200) + 0x21
        pointer.initializeMemory(as: UInt8.self, repeating: fill, count: size)
        p.blocks.append(Block(pointer: pointer, size: size, fill: fill))
    }

    func mallocCall(_ p: Proc, _ input: inout FuzzInput) {
        switch input.byte() % 8 {
        case 0, 1:
            let size = mallocSize(&input)
            if let r = nommu_malloc(p.handle, size) { allocated(p, r, size) }
        case 2:
            let count = input.pick([0, 1, 3, 100, Int(input.byte()), Int.max / 2, -1])
            let size = mallocSize(&input)
            guard let r = nommu_calloc(p.handle, count, size) else { return }
            let total = count.multipliedReportingOverflow(by: size)
            if total.overflow || total.partialValue < 0 { fail("calloc(\(count), \(size)) succeeded") }
            expectZero(UInt(bitPattern: r), UInt(total.partialValue), "calloc")
            allocated(p, r, total.partialValue)
        case 3, 4:
            let size = mallocSize(&input)
            guard !p.blocks.isEmpty, !input.chance(8) else {
                if let r = nommu_realloc(p.handle, nil, size) { allocated(p, r, size) }
                return
            }
            let i = input.word() % p.blocks.count
            let b = p.blocks[i]
            let r = nommu_realloc(p.handle, b.pointer, size)
            if size == 0 {
                if r != nil { fail("realloc(p, 0) returned \(String(describing: r))") }
                p.blocks.remove(at: i)
                return
            }
            guard let r else { return }  // ENOMEM: the old block stays
            let kept = min(b.size, size)
            if kept > 0
                && (r.load(as: UInt8.self) != b.fill || r.load(fromByteOffset: kept - 1, as: UInt8.self) != b.fill)
            {
                fail("realloc of \(b.size) to \(size) bytes lost the contents")
            }
            p.blocks.remove(at: i)
            allocated(p, r, size)
        case 5:
            guard !p.blocks.isEmpty else { return }
            let b = p.blocks.remove(at: input.word() % p.blocks.count)
            nommu_free(p.handle, b.pointer)
            if input.chance(2) {
                // At once, before anything can reuse it: a double free is refused.
                errno = 0
                nommu_free(p.handle, b.pointer)
                if errno != EINVAL { fail("double free of \(b.pointer): errno \(errno)") }
            }
        case 6:
            let alignment =
                input.chance(4)
                ? Int(truncatingIfNeeded: input.extreme()) : input.pick([0, 8, 16, 24, 64, 4096, 1 << 20, -1])
            let size = mallocSize(&input)
            var out: UnsafeMutableRawPointer? = UnsafeMutableRawPointer(bitPattern: 0x5a5a_5a50)
            let rc = nommu_posix_memalign(p.handle, &out, alignment, size)
            if rc != 0 {
                if out != UnsafeMutableRawPointer(bitPattern: 0x5a5a_5a50) {
                    fail("posix_memalign wrote *out on \(rc)")
                }
                return
            }
            guard let r = out, alignment > 0, UInt(bitPattern: r) % UInt(bitPattern: alignment) == 0 else {
                fail("posix_memalign(\(alignment), \(size)) gave \(String(describing: out))")
            }
            allocated(p, r, size)
        default:
            var c = nommu_malloc_config()
            nommu_malloc_config_init(&c)
            c.policy = CInt(input.byte() % 3)
            c.uninitialized = CInt(input.byte() & 1)
            if input.chance(4) { c.extend_size = Int(input.word()) * 16 }
            if input.chance(4) { c.mmap_threshold = Int(input.word()) * 16 }
            // The edges: sizes no mapping can have are EINVAL, never a trap later.
            if input.chance(8) { c.extend_size = Int(truncatingIfNeeded: input.extreme()) }
            if input.chance(8) { c.mmap_threshold = Int(truncatingIfNeeded: input.extreme()) }
            if input.chance(8) { c.unmap_threshold = Int(truncatingIfNeeded: input.extreme()) }
            if input.chance(8) { c.size = 8 }
            if nommu_malloc_configure(p.handle, &c) == 0 && !p.blocks.isEmpty {
                fail("nommu_malloc_configure succeeded with \(p.blocks.count) blocks live")
            }
        }
    }

    /// Frees of what malloc did not hand out: refused with EINVAL, nothing changes. The
    /// pointers never point where a header could have been forged: outside the arena, off
    /// the 16-byte grid, or 16 bytes into a block (whose bytes are its fill).
    func badFree(_ p: Proc, _ input: inout FuzzInput) {
        var pointer = UnsafeMutableRawPointer(
            bitPattern: input.pick([1, 16, 4096, 0xdead_beef_0000, UInt.max & ~15, arenaBase + 8, arenaBase - 16]))
        let (inside, offset) = (input.chance(2), input.pick([1, 8, 16]))
        if inside, let b = p.blocks.first(where: { $0.size >= 32 }) { pointer = b.pointer + offset }
        errno = 0
        if input.chance(2) {
            nommu_free(p.handle, pointer)
            if errno != EINVAL { fail("free of \(String(describing: pointer)): errno \(errno)") }
        } else {
            if nommu_realloc(p.handle, pointer, 64) != nil || errno != EINVAL {
                fail("realloc of \(String(describing: pointer)): errno \(errno)")
            }
        }
        if nommu_malloc_usable_size(p.handle, pointer) != 0 { fail("malloc_usable_size of a non-block is not 0") }
        if let b = p.blocks.first, nommu_malloc_usable_size(p.handle, b.pointer) < b.size {
            fail("malloc_usable_size of a \(b.size)-byte block is \(nommu_malloc_usable_size(p.handle, b.pointer))")
        }
    }

    // MARK: Flash and romfs

    func flashOrRomfs(_ input: inout FuzzInput) {
        switch input.byte() % 3 {
        case 0:
            let device: String? = input.pick(["/dev/mtd0", "/dev/mtd0", "mtd0", "/dev/fb0", nil])
            _ = nommu_flash_set_mode(handle, device, CInt(input.byte() % 4))
        case 1:
            let path = input.pick(["/rom/a", "/rom/d", "/rom/e/f", "/rom/" + String(step), "/tmp/x", "/rom", "/rom/"])
            let bytes = input.data(count: input.count(page: Int(page)))
            _ = bytes.withUnsafeBytes { nommu_romfs_add(handle, path, $0.baseAddress, $0.count) }
        default:
            hostileELF(&input)
        }
    }

    /// An ELF64 image whose header and three program headers come from the input (each
    /// field now and then an edge value: offsets, addresses, sizes, alignments, the stack's
    /// p_memsz, the counts), put in /rom (executed in place) or /tmp (copied) and exec'd by a
    /// process made for it, which then exits. A failure must come with an errno.
    func hostileELF(_ input: inout FuzzInput) {
        let ehdr = 64
        let phdr = 56
        let body = Int(input.byte()) * 16
        var image = [UInt8](repeating: 0, count: ehdr + 3 * phdr + body)
        func put(_ v: UInt64, _ at: Int, _ width: Int) {
            for i in 0..<width where at + i < image.count { image[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
        }
        // A usual value, or (one time in five) an edge value or input bytes.
        func field(_ usual: UInt64, _ input: inout FuzzInput) -> UInt64 {
            switch input.byte() % 10 {
            case 0: input.extreme()
            case 1: input.u64()
            default: usual
            }
        }
        let size = UInt64(image.count)
        image.replaceSubrange(0..<8, with: [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0])
        if input.chance(16) { image[4] = input.pick([0, 1, 3]) }  // ELFCLASS32 and nonsense
        put(field(input.pick([2, 3]), &input), 16, 2)  // e_type
        put(62, 18, 2)  // e_machine
        put(field(1, &input), 20, 4)  // e_version
        put(field(0x1000 + UInt64(input.byte()), &input), 24, 8)  // e_entry
        put(field(UInt64(ehdr), &input), 32, 8)  // e_phoff
        put(UInt64(ehdr), 52, 2)  // e_ehsize
        put(field(UInt64(phdr), &input), 54, 2)  // e_phentsize
        put(field(3, &input), 56, 2)  // e_phnum
        let pt: [UInt64] = [1, 1, 0x6474_E551, 3, 4, 0x7000_0000]  // LOAD, GNU_STACK, INTERP, NOTE, processor
        for i in 0..<3 {
            let at = ehdr + i * phdr
            let type: UInt64 = i < 2 ? (input.chance(4) ? input.pick(pt) : 1) : (input.chance(3) ? 1 : 0x6474_E551)
            put(type, at, 4)
            put(field(i == 0 ? 5 : 6, &input), at + 4, 4)  // p_flags: R|X, then R|W
            let offset = i == 0 ? 0 : min(size, UInt64(ehdr + 3 * phdr))
            put(field(offset, &input), at + 8, 8)
            let vaddr = UInt64(i) * 0x10000 + offset % 4096
            put(field(vaddr, &input), at + 16, 8)
            let filesz = i < 2 ? size - offset : 0
            put(field(filesz, &input), at + 32, 8)
            let memsz = i < 2 ? filesz + UInt64(input.byte()) * 64 : UInt64(input.byte()) << 12
            put(field(memsz, &input), at + 40, 8)
            put(field(i < 2 ? 4096 : 16, &input), at + 48, 8)
        }
        let onRom = input.chance(2)
        let path = (onRom ? "/rom/elf-" : "/tmp/elf-") + "\(lane)-\(step)"
        guard let q = nommu_process_create(handle) else { fail("nommu_process_create: errno \(errno)") }
        defer { nommu_process_exit(q) }
        if onRom {
            guard image.withUnsafeBytes({ nommu_romfs_add(handle, path, $0.baseAddress, $0.count) }) == 0 else {
                return
            }
        } else {
            let fd = nommu_open_fixed_args(q, path, O_WRONLY | O_CREAT | O_TRUNC, 0o755)
            guard fd >= 0 else { return }
            let n = image.withUnsafeBytes { nommu_write(q, fd, $0.baseAddress, $0.count) }
            _ = nommu_close(q, fd)
            guard n == image.count else {
                _ = nommu_unlink(q, path)
                return
            }
        }
        var out = nommu_image()
        out.size = MemoryLayout<nommu_image>.size
        errno = 0
        let rc = nommu_exec_elf(q, path, &out)
        if rc != 0 && errno == 0 { fail("exec of a hostile ELF (\(path)) failed without errno") }
        if rc != 0 && rc != -1 { fail("exec of a hostile ELF returned \(rc)") }
        if !onRom { _ = nommu_unlink(q, path) }
    }

    // MARK: The rest

    /// The calls no-MMU refuses (ENOSYS), stats, brk.
    func misc(_ p: Proc, _ input: inout FuzzInput) {
        let a = UnsafeMutableRawPointer(bitPattern: garbageAddress(&input))
        let n = Int(input.byte())
        errno = 0
        let rc: CInt
        switch input.byte() % 8 {
        case 0: rc = nommu_mprotect(p.handle, a, n, PROT_READ)
        case 1: rc = nommu_msync(p.handle, a, n, 0)
        case 2: rc = nommu_mlock(p.handle, a, n)
        case 3: rc = nommu_munlock(p.handle, a, n)
        case 4:
            var vec = [UInt8](repeating: 0, count: 8)
            rc = nommu_mincore(p.handle, a, n, &vec)
        case 5: rc = nommu_madvise(p.handle, a, n, 0)
        case 6:
            var st = nommu_stats()
            st.size = UInt32(MemoryLayout<nommu_stats>.size)
            guard nommu_get_stats(handle, &st) == 0 else { fail("nommu_get_stats: errno \(errno)") }
            if st.free_pages + st.percpu_pages + st.allocated_pages != st.total_pages
                || (st.mmap_pages_allocated != UInt64(system.mmapPagesAllocated) && !shared)
            {
                fail("stats do not add up: \(st)")
            }
            return
        default:
            _ = nommu_brk(p.handle, input.chance(2) ? nil : a)
            return
        }
        if rc != -1 || errno != ENOSYS { fail("a call no-MMU lacks returned \(rc), errno \(errno)") }
    }
}
