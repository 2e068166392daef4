// SPDX-License-Identifier: Apache-2.0
//
// The descriptor calls on every mount and device, SysV and POSIX shared memory, /proc
// reads and sysctl writes.
import CNommu
import FuzzSupport
import NommuCABI
import NommuMM
#if canImport(Glibc)
    import Glibc
#endif

extension World {
    /// Paths on every mount and device, and some that are not there or not valid.
    static let paths = [
        "/tmp/a", "/tmp/b", "/tmp/c", "/dev/shm/s", "/dev/shm/t", "/data/f", "/data/g", "/rom/a", "/rom/b",
        "/rom/c", "/rom/none", "/dev/zero", "/dev/fb0", "/dev/ram0", "/dev/mtd0", "/dev/ttyS0", "/dev/nope",
        "/proc/maps", "/proc/self/maps", "/proc/meminfo", "/proc/buddyinfo", "/proc/sys/vm/nr_trim_pages",
        "/proc/self/status", "/proc", "/", "/dev", "/tmp", "/rom", "/data", "tmp/a", "/tmp/a/b", "/tmp/../tmp/b",
        "/nowhere", "/data/missing/x", "/tmp/" + String(repeating: "n", count: 300),
    ]

    /// The one FIFO (never read or written).
    static let fifo = "/tmp/fifo"

    func path(_ input: inout FuzzInput) -> String {
        if input.chance(16) { return "/proc/\(somePID(&input))/" + input.pick(["maps", "status", ""]) }
        return input.pick(World.paths)
    }

    /// A pid: the caller's relatives', another process's, an exited one's, or none at all.
    func somePID(_ input: inout FuzzInput) -> CInt {
        switch input.byte() % 4 {
        case 0, 1: return procs[Int(input.byte()) % procs.count].pid
        case 2: return exited.isEmpty ? 9999 : exited[Int(input.byte()) % exited.count]
        default: return input.pick([0, -1, 9999, CInt.max])
        }
    }

    /// `O_*`: an access mode (3 is invalid), then O_CREAT, O_EXCL, O_TRUNC, O_APPEND,
    /// O_NONBLOCK.
    func openFlags(_ input: inout FuzzInput) -> CInt {
        let b = input.byte()
        var f = CInt(b & 3)
        if b & 0x04 != 0 { f |= O_CREAT }
        if b & 0x0C == 0x0C && input.chance(2) { f |= O_EXCL }
        if b & 0x10 != 0 { f |= O_TRUNC }
        if b & 0x20 != 0 { f |= O_APPEND }
        if b & 0x40 != 0 { f |= O_NONBLOCK }
        return f
    }

    /// Enters a descriptor the model handed out, after checking it was the lowest free.
    func opened(_ p: Proc, _ fd: CInt, _ what: Descriptor) {
        if fd < 0 || p.fds[fd] != nil || (0..<fd).contains(where: { p.fds[$0] == nil }) {
            fail("descriptor \(fd) is not the lowest free one (open: \(p.fds.keys.sorted()))")
        }
        p.fds[fd] = what
    }

    func open(_ p: Proc, _ input: inout FuzzInput) {
        let path = path(&input)
        let flags = openFlags(&input)
        let fd = nommu_open_fixed_args(p.handle, path, flags, 0o644)
        if fd >= 0 { opened(p, fd, .file(path)) }
    }

    func close(_ p: Proc, _ input: inout FuzzInput) {
        let (fd, what) = descriptor(p, &input)
        errno = 0
        let rc = nommu_close(p.handle, fd)
        if (rc == 0) != (what != nil) || (rc != 0 && errno != EBADF) {
            fail("close(\(fd)) returned \(rc), errno \(errno); open: \(p.fds.keys.sorted())")
        }
        p.fds[fd] = nil
    }

    /// A buffer for read or write: a writable (for read) or readable (for write) part of
    /// one of the process's mappings, else nil (the caller uses an array).
    func mappedBuffer(_ p: Proc, writable: Bool, count: Int, _ input: inout FuzzInput) -> (
        UnsafeMutableRawPointer, Int
    )? {
        guard input.chance(3) else { return nil }
        let candidates = p.group.records.indices.filter {
            writable ? p.group.records[$0].writable : p.group.records[$0].readable
        }
        guard !candidates.isEmpty else { return nil }
        let i = candidates[input.word() % candidates.count]
        let r = p.group.records[i]
        let at = input.word() % Int(r.end - r.start)
        let n = min(count, Int(r.end - r.start) - at)
        // A read into a SysV attach writes the segment (the caller refreshes anonymous ends).
        if writable, case .shm(let id) = r.kind { segments[id] = false }
        return (UnsafeMutableRawPointer(bitPattern: r.start + UInt(at))!, n)
    }

    /// Refreshes the cookies of every anonymous record [start, start + count) touches.
    func wrote(_ p: Proc, _ start: UnsafeMutableRawPointer, _ count: Int) {
        let (a, b) = (UInt(bitPattern: start), UInt(bitPattern: start) + UInt(count))
        for (i, r) in p.group.records.enumerated() where r.start < b && r.end > a { p.group.records[i] = refreshed(r) }
    }

    func write(_ p: Proc, _ input: inout FuzzInput) {
        let (fd, what) = descriptor(p, &input)
        if case .pipe = what { return }
        let count = input.count(page: Int(page))
        let offset: off_t? = input.chance(2) ? input.fileOffset(page: page) : nil
        if input.chance(16) {
            // A count far past the buffer (up to 2^64 − 1): capped at MAX_RW_COUNT, and only
            // what the buffer supplies is copied; never a trap, never an allocation of it.
            let bytes = input.data(count: 16)
            let huge = Int(truncatingIfNeeded: input.extreme())
            let n = bytes.withUnsafeBytes { b in
                offset.map { nommu_pwrite(p.handle, fd, b.baseAddress, huge, $0) }
                    ?? nommu_write(p.handle, fd, b.baseAddress, huge)
            }
            if n > 0 && huge < 0 { fail("write of a count above SSIZE_MAX returned \(n)") }
            return
        }
        if let (buffer, length) = mappedBuffer(p, writable: false, count: count, &input) {
            let n =
                if let offset {
                    nommu_pwrite(p.handle, fd, buffer, length, offset)
                } else {
                    nommu_write(p.handle, fd, buffer, length)
                }
            if n > length { fail("write of \(length) bytes returned \(n)") }
        } else {
            let bytes = input.data(count: count)
            let n = bytes.withUnsafeBytes { b in
                if let offset {
                    nommu_pwrite(p.handle, fd, b.baseAddress, b.count, offset)
                } else {
                    nommu_write(p.handle, fd, b.baseAddress, b.count)
                }
            }
            if n > count { fail("write of \(count) bytes returned \(n)") }
        }
    }

    func read(_ p: Proc, _ input: inout FuzzInput) {
        let (fd, what) = descriptor(p, &input)
        if case .pipe = what { return }
        let count = input.count(page: Int(page))
        let offset: off_t? = input.chance(2) ? input.fileOffset(page: page) : nil
        if let (buffer, length) = mappedBuffer(p, writable: true, count: count, &input) {
            let n =
                if let offset {
                    nommu_pread(p.handle, fd, buffer, length, offset)
                } else {
                    nommu_read(p.handle, fd, buffer, length)
                }
            if n > length { fail("read of \(length) bytes returned \(n)") }
            if n > 0 { wrote(p, buffer, n) }
        } else {
            var bytes = [UInt8](repeating: 0, count: count)
            let n = bytes.withUnsafeMutableBytes { b in
                if let offset {
                    nommu_pread(p.handle, fd, b.baseAddress, count, offset)
                } else {
                    nommu_read(p.handle, fd, b.baseAddress, count)
                }
            }
            if n > count { fail("read of \(count) bytes returned \(n)") }
        }
    }

    func ftruncate(_ p: Proc, _ input: inout FuzzInput) {
        let (fd, _) = descriptor(p, &input)
        let length: off_t =
            input.chance(2) ? off_t(page) * off_t(input.byte() % 8) : input.fileOffset(page: page)
        _ = nommu_ftruncate(p.handle, fd, length)
    }

    /// unlink, pipe and FIFO (whose descriptors are only closed and mapped: a read or write
    /// could block), socket, chattr +a / -a.
    func unlinkPipeSocket(_ p: Proc, _ input: inout FuzzInput) {
        switch input.byte() % 6 {
        case 0, 1:
            _ = nommu_unlink(p.handle, path(&input))
        case 2:
            var fds: [CInt] = [-1, -1]
            guard nommu_pipe(p.handle, &fds) == 0 else { return }
            opened(p, fds[0], .pipe)
            opened(p, fds[1], .pipe)
        case 3:
            let fd = nommu_socket(p.handle, input.pick([1, 2, 10, 99]), input.pick([1, 2, 5, 0x80001]), 0)
            if fd >= 0 { opened(p, fd, .socket) }
        case 4:
            // The FIFO's name is in no other operation's path list, so it is never opened as a file.
            switch input.byte() % 3 {
            case 0: _ = nommu_mkfifo(p.handle, World.fifo, 0o644)
            case 1: _ = nommu_unlink(p.handle, World.fifo)
            default:
                let fd = nommu_open_fixed_args(p.handle, World.fifo, input.pick([O_RDONLY, O_WRONLY, O_RDWR]), 0)
                if fd >= 0 { opened(p, fd, .pipe) }
            }
        default:
            let (fd, _) = descriptor(p, &input)
            _ = nommu_set_append_only(p.handle, fd, CInt(input.byte() & 1))
        }
    }

    // MARK: Shared memory

    func shmID(_ input: inout FuzzInput) -> CInt {
        if !segments.isEmpty && !input.chance(8) {
            let ids = segments.keys.sorted()
            return ids[Int(input.byte()) % ids.count]
        }
        return input.pick([-1, 0, 1, 99, CInt.max])
    }

    func sysv(_ p: Proc, _ input: inout FuzzInput) {
        switch input.byte() % 6 {
        case 0, 1:
            let key: key_t = input.pick([0, 0, 1, 2, 3, 0x1234, -1])
            let size: Int = input.pick([
                0, 1, Int(page), 3 * Int(page) + 1, 16 * Int(page), Int(input.byte()) * Int(page), 1 << 32, -1,
            ])
            var flags: CInt = input.pick([0, IPC_CREAT, IPC_CREAT, IPC_CREAT | IPC_EXCL]) | 0o600
            if input.chance(16) { flags |= CInt(truncatingIfNeeded: input.u64()) }
            let id = nommu_shmget(p.handle, key, size, flags)
            if id >= 0 && segments[id] == nil { segments[id] = !shared }  // (another lane may write it)
        case 2:
            let id = shmID(&input)
            let flags: CInt = input.pick([0, 0, SHM_RDONLY, SHM_RND, 0o40000, 0o100000, CInt(input.byte()) << 8])
            let address = input.chance(8) ? UnsafeRawPointer(bitPattern: garbageAddress(&input)) : nil
            guard let a = mapped(nommu_shmat(p.handle, id, address, flags)) else { return }
            if address != nil { fail("shmat at \(String(describing: address)) succeeded") }
            var ds = shmid_ds()
            guard nommu_shmctl(p.handle, id, IPC_STAT, &ds) == 0 else {
                fail("IPC_STAT of attached segment \(id): errno \(errno)")
            }
            let n = rounded(UInt(ds.shm_segsz))
            if segments[id] == true { expectZero(a, UInt(ds.shm_segsz), "fresh SysV segment \(id)") }
            let prot = flags & SHM_RDONLY != 0 ? PROT_READ : PROT_READ | PROT_WRITE
            p.group.records.append(Record(start: a, end: a + n, prot: prot, kind: .shm(id)))
        case 3:
            let attaches = p.group.records.filter { if case .shm = $0.kind { true } else { false } }
            let a =
                attaches.isEmpty || input.chance(4)
                ? garbageAddress(&input) : attaches[input.word() % attaches.count].start
            guard nommu_shmdt(p.handle, UnsafeRawPointer(bitPattern: a)) == 0 else { return }
            guard let i = p.group.records.firstIndex(where: { if case .shm = $0.kind { $0.start == a } else { false } })
            else { fail("shmdt(\(hex(a))) succeeded with no attach there") }
            p.group.records.remove(at: i)
        case 4:
            _ = nommu_shmctl(p.handle, shmID(&input), IPC_RMID, nil)
        default:
            var ds = shmid_ds()
            let cmd: CInt = input.pick([IPC_STAT, IPC_STAT, IPC_RMID, 99, -1])
            let rc =
                input.chance(8)
                ? nommu_shmctl(p.handle, shmID(&input), cmd, nil) : nommu_shmctl(p.handle, shmID(&input), cmd, &ds)
            if rc == 0 && cmd == IPC_STAT && ds.shm_segsz == 0 { fail("IPC_STAT reports an empty segment") }
        }
    }

    func posixShm(_ p: Proc, _ input: inout FuzzInput) {
        let name = input.pick(["s", "/s", "//t", "u", "", "a/b", "/", String(repeating: "x", count: 300)])
        if input.chance(3) {
            _ = nommu_shm_unlink(p.handle, name)
            return
        }
        let fd = nommu_shm_open(p.handle, name, openFlags(&input), 0o600)
        if fd >= 0 { opened(p, fd, .file("/dev/shm/" + name)) }
    }

    // MARK: /proc

    /// Opens and reads a /proc file to its end; /proc/<pid>/maps must be readable by the
    /// process's own address space only, and the maps files list what the model holds.
    func procRead(_ p: Proc, _ input: inout FuzzInput) {
        let pid = somePID(&input)
        let path = input.pick([
            "/proc/maps", "/proc/self/maps", "/proc/\(pid)/maps", "/proc/\(pid)/maps", "/proc/meminfo",
            "/proc/buddyinfo", "/proc/\(pid)/status", "/proc/sys/vm/nr_trim_pages", "/proc/self", "/proc/self/none",
        ])
        let size = 1 + Int(input.byte()) * 16
        let mappings = p.process.mappings.count
        let regions = system.regionCount
        errno = 0
        let fd = nommu_open_fixed_args(p.handle, path, O_RDONLY, 0)
        if path == "/proc/\(pid)/maps" && errno != EMFILE {
            let relative = procs.contains { $0.pid == pid && $0.group === p.group }
            let target = procs.first { $0.pid == pid }
            // ptrace_may_access: the same address space, root, or the same uid.
            let uid = nommu_getuid(p.handle)
            let readable =
                relative || uid == 0 || (target.map { nommu_getuid($0.handle) == uid && $0.group.dumpable } ?? false)
            let expected = target == nil ? ENOENT : (readable ? 0 : EACCES)
            if (fd >= 0 ? 0 : errno) != expected {
                fail("pid \(p.pid) opening \(path): fd \(fd), errno \(errno), expected errno \(expected)")
            }
        }
        guard fd >= 0 else { return }
        opened(p, fd, .file(path))
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<(1 << 20) {  // to the end: a maps text can take 100000 one-byte reads
            let n = chunk.withUnsafeMutableBytes { nommu_read(p.handle, fd, $0.baseAddress, min(size, 4096)) }
            if n <= 0 { break }
            text += chunk[0..<n]
        }
        if nommu_close(p.handle, fd) != 0 { fail("close of \(path): errno \(errno)") }
        p.fds[fd] = nil
        let lines = text.filter { $0 == UInt8(ascii: "\n") }.count
        if path == "/proc/self/maps" && lines != mappings {
            fail("/proc/self/maps of pid \(p.pid) has \(lines) lines, \(mappings) mappings")
        }
        if path == "/proc/maps" && lines != regions && !shared {
            fail("/proc/maps has \(lines) lines, \(regions) regions")
        }
    }

    /// Writes text to /proc/sys/vm/nr_trim_pages: a number is taken, a negative or garbage
    /// is EINVAL and changes nothing.
    func sysctl(_ p: Proc, _ input: inout FuzzInput) {
        let mode = input.pick([O_WRONLY, O_WRONLY, O_RDWR, O_RDONLY])
        let n = Int(input.byte() % 8)
        let (text, expected): (String, Int?) =
            switch input.byte() % 10 {
            case 0, 1: ("\(n)", n)
            case 2: ("\(n)\n", n)
            case 3: ("-1", nil)
            case 4: ("abc", nil)
            case 5: ("  \(n) \n", n)
            case 6: ("", nil)
            case 7: ("99999999999999999999", nil)
            case 8: ("+\(n)", nil)
            default: (String(decoding: input.data(count: Int(input.byte() % 12)), as: UTF8.self), nil)
            }
        let fd = nommu_open_fixed_args(p.handle, "/proc/sys/vm/nr_trim_pages", mode, 0)
        guard fd >= 0 else { return }
        opened(p, fd, .file("/proc/sys/vm/nr_trim_pages"))
        let before = system.nrTrimPages
        let bytes = Array(text.utf8)
        errno = 0
        let rc = bytes.withUnsafeBytes { nommu_write(p.handle, fd, $0.baseAddress, $0.count) }
        if mode != O_RDONLY {
            // (In threaded mode another lane may set the value between the write and the look.)
            if let expected, rc != bytes.count || (!shared && system.nrTrimPages != expected) {
                fail("nr_trim_pages \"\(text)\": write returned \(rc), errno \(errno), value \(system.nrTrimPages)")
            }
            if ["-1", "abc"].contains(text)
                && (rc != -1 || errno != EINVAL || (!shared && system.nrTrimPages != before))
            {
                fail("nr_trim_pages \"\(text)\": write returned \(rc), errno \(errno), value \(system.nrTrimPages)")
            }
        }
        if mode == O_RDWR && !shared {
            // pread at 0 reads the value and leaves the offset, so after a failed write (which
            // moves nothing) read reads it from the start too.
            let want = "\(system.nrTrimPages)\n"
            for positioned in rc < 0 ? [true, false] : [true] {
                var back = [UInt8](repeating: 0, count: 32)
                let m = back.withUnsafeMutableBytes {
                    positioned
                        ? nommu_pread(p.handle, fd, $0.baseAddress, 32, 0)
                        : nommu_read(p.handle, fd, $0.baseAddress, 32)
                }
                let got = String(decoding: back[0..<max(0, m)], as: UTF8.self)
                if got != want {
                    fail("nr_trim_pages \(positioned ? "pread" : "read") gives \"\(got)\", want \"\(want)\"")
                }
            }
        }
        if nommu_close(p.handle, fd) != 0 { fail("close of nr_trim_pages: errno \(errno)") }
        p.fds[fd] = nil
    }
}
