// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuHost
import NommuMM
import NommuTestSupport
import PageAllocator
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Bytes at an address.
func bytes(_ a: VirtualAddress, _ count: Int, offset: Int = 0) -> [UInt8] {
    Array(UnsafeRawBufferPointer(start: a.pointer! + offset, count: count))
}

/// Fills `count` bytes at an address.
func fill(_ a: VirtualAddress, _ value: UInt8, _ count: Int, offset: Int = 0) {
    (a.pointer! + offset).initializeMemory(as: UInt8.self, repeating: value, count: count)
}

/// A recognisable pattern: byte i of a file is `(i * 7 + seed) & 0xff`.
func pattern(_ count: Int, seed: Int = 1) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 * 7 + seed) } }

func expectErrno(_ e: Errno, _ label: String, _ call: () throws -> Void) {
    #expect(throws: e, "\(label)") { try call() }
}

/// Dirties every free page, so that zeroing is really tested.
func dirtyArena(_ s: System, _ p: Process) throws {
    var held: [VirtualAddress] = []
    while let a = try? p.mmap(length: 64 * page, protection: rw, flags: anon) {
        fill(a, 0xEE, Int(64 * page))
        held.append(a)
    }
    for a in held { try p.munmap(address: a.u, length: 64 * page) }
}

@Suite("mmap of files and devices: validate_mmap_request (rows 12–23)")
struct FileValidationTests {
    @Test("rows 12–13: pipes, FIFOs and /proc/<pid> files have no mmap; sockets are EINVAL")
    func noMmap() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let before = Snapshot(s, [p])
        let (r, w) = try p.pipe()
        try p.mkfifo("/tmp/fifo")
        let fifo = try p.open("/tmp/fifo", .readWrite)
        let proc = try p.open("/proc/self/maps")  // (/proc/meminfo's private copy: ProcMmapTests)
        let sock = try p.socket(domain: AF_UNIX, type: CInt(SOCK_STREAM.rawValue))
        for fd in [r, w, fifo, proc] {
            expectErrno(.operationNotSupportedByDevice, "row 12 fd \(fd)") {
                _ = try p.mmap(length: page, protection: .read, flags: .private, fd: fd)
            }
        }
        expectErrno(.invalidArgument, "row 13") {
            _ = try p.mmap(length: page, protection: .read, flags: .shared, fd: sock)
        }
        let tty = try p.open("/dev/ttyS0", .readWrite)
        expectErrno(.operationNotSupportedByDevice, "ttyS0") {
            _ = try p.mmap(length: page, protection: .read, flags: .shared, fd: tty)
        }
        #expect(Snapshot(s, [p]) == before)
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("rows 14–17, 22: access modes, append-only, disk files, noexec")
    func accessModes() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        try p.writeFile("/tmp/f", pattern(3 * Int(page)))
        try p.writeFile("/dev/shm/x", [])
        let wo = try p.open("/tmp/f", .writeOnly)
        let ro = try p.open("/tmp/f")
        let shm = try p.open("/dev/shm/x", .readWrite)
        try p.ftruncate(shm, length: Int64(page))
        let fb = try p.open("/dev/fb0")
        let before = Snapshot(s, [p])
        for flags: MapFlags in [.private, .shared] {
            expectErrno(.permissionDenied, "row 14 \(flags)") {
                _ = try p.mmap(length: page, protection: .read, flags: flags, fd: wo)
            }
        }
        expectErrno(.permissionDenied, "row 15") {
            _ = try p.mmap(length: page, protection: rw, flags: .shared, fd: ro)
        }
        expectErrno(.permissionDenied, "row 15 chardev") {
            _ = try p.mmap(length: page, protection: rw, flags: .shared, fd: fb)
        }
        // Row 16: append-only, open O_RDWR (|O_APPEND), shared read-only.
        let app = try p.open("/dev/shm/x", [.readWrite, .append])
        try p.setAppendOnly(app)
        expectErrno(.permissionDenied, "row 16") {
            _ = try p.mmap(length: page, protection: .read, flags: .shared, fd: app)
        }
        expectErrno(.notPermitted, "append-only without O_APPEND") { _ = try p.open("/dev/shm/x", .readWrite) }
        try p.setAppendOnly(app, false)
        // Row 17: a disk file is COPY-only.
        let d = try p.open("/data/disk", [.readWrite, .create])
        _ = try p.write(d, pattern(100))
        expectErrno(.operationNotSupportedByDevice, "row 17") {
            _ = try p.mmap(length: page, protection: .read, flags: .shared, fd: d)
        }
        // Row 22: PROT_EXEC on the noexec /dev/shm, private or shared.
        for flags: MapFlags in [.private, .shared] {
            expectErrno(.notPermitted, "row 22 \(flags)") {
                _ = try p.mmap(length: page, protection: [.read, .exec], flags: flags, fd: shm)
            }
        }
        #expect(Snapshot(s, [p]) == before)
        // /tmp is not noexec: a private read+exec mapping of it works.
        let x = try p.mmap(length: page, protection: [.read, .exec], flags: .private, fd: ro)
        #expect(bytes(x, 16) == Array(pattern(16)))
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("rows 18–20, 23: character devices and /dev/zero")
    func devices() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        try dirtyArena(s, p)
        let fb = try p.open("/dev/fb0", .readWrite)
        let zero = try p.open("/dev/zero", .readWrite)
        let before = Snapshot(s, [p])
        // Row 18: /dev/zero has no DIRECT (no get_unmapped_area worth the name): shared → ENODEV.
        expectErrno(.operationNotSupportedByDevice, "rows 18/23") {
            _ = try p.mmap(length: page, protection: .read, flags: .shared, fd: zero)
        }
        expectErrno(.invalidArgument, "row 19") {
            _ = try p.mmap(length: page, protection: [.read, .exec], flags: .shared, fd: fb)
        }
        expectErrno(.operationNotSupportedByDevice, "row 20") {
            _ = try p.mmap(length: page, protection: .read, flags: .private, fd: fb)
        }
        #expect(Snapshot(s, [p]) == before)
        // Row 23: a private /dev/zero mapping is a zero-filled copy.
        let z = try p.mmap(length: 3 * page, protection: rw, flags: [.private, .uninitialized], fd: zero)
        #expect(bytes(z, 3 * Int(page)).allSatisfy { $0 == 0 })
        #expect(s.mmapPagesAllocated == 3)
        #expect(try p.readFile("/proc/self/maps").contains("/dev/zero"))
        #expect(everythingBackViolation(s, [p]) == nil)
    }
}

@Suite("mmap of files: private copies and sharing (do_mmap, do_mmap_private; rows 34–40)")
struct PrivateCopyTests {
    @Test("row 34: a 6000-byte file mapped 8192: the file, then zeros; later writes are not seen")
    func copyWithTail() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        try dirtyArena(s, p)
        let data = pattern(6000)
        try p.writeFile("/data/six", data)
        let fd = try p.open("/data/six", .readWrite)
        let a = try p.mmap(length: 8192, protection: .read, flags: .private, fd: fd)
        #expect(a.u & (page - 1) == 0)
        #expect(bytes(a, 6000) == data)
        #expect(bytes(a, 8192 - 6000, offset: 6000).allSatisfy { $0 == 0 })
        #expect(s.mmapPagesAllocated == 2)
        // Writes to the file after the copy are not reflected (doc: "Writes to the file do
        // not affect the mapping").
        _ = try p.pwrite(fd, [UInt8](repeating: 0xAB, count: 100), offset: 0)
        #expect(bytes(a, 100) == Array(data[0..<100]))
        #expect(try p.pread(fd, count: 4, offset: 0) == [0xAB, 0xAB, 0xAB, 0xAB])
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("row 35: a read error while copying → that errno; nothing mapped or counted")
    func readError() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        try p.writeFile("/data/gone", pattern(100))
        let fd = try p.open("/data/gone")
        // The disk fails the read (an injected host EIO).
        let before = Snapshot(s, [p])
        let plan = HostFaultPlan(failing: [.read: .ioError])
        HostFaultPlan.$current.withValue(plan) {
            expectErrno(.ioError, "row 35") {
                _ = try p.mmap(length: page, protection: .read, flags: .private, fd: fd)
            }
        }
        #expect(plan.calls == [.read])
        #expect(Snapshot(s, [p]) == before)
        #expect(s.regionCount == 0)
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("rows 36–39: read-only private copies are shared, inner ranges too; mismatches are EINVAL")
    func sharing() throws {
        let s = try makeSystem()
        let a = s.createProcess()
        let b = s.createProcess()
        let c = s.createProcess()
        try a.writeFile("/data/lib", pattern(4 * Int(page)))
        let fa = try a.open("/data/lib")
        let fb = try b.open("/data/lib")
        let fc = try c.open("/data/lib", .readWrite)
        // Row 36: same offset and length, two processes: one copy, usage 2, counted once.
        let x = try a.mmap(length: 4 * page, protection: .read, flags: .private, fd: fa)
        let y = try b.mmap(length: 4 * page, protection: .read, flags: .private, fd: fb)
        #expect(x == y)
        #expect(s.mmapPagesAllocated == 4)
        #expect(a.mappings[0].regionUsage == 2)
        // Row 37: pages 1–2 inside the 0–3 copy: shared, at start + 1 page.
        let z = try c.mmap(length: 2 * page, protection: .read, flags: .private, fd: fc, offset: Int64(page))
        #expect(z.u == x.u + page)
        #expect(s.mmapPagesAllocated == 4)
        #expect(a.mappings[0].regionUsage == 3)
        // Row 39: read-write private: its own copy, never shared.
        let w = try c.mmap(length: 4 * page, protection: rw, flags: .private, fd: fc)
        #expect(w != x)
        #expect(s.mmapPagesAllocated == 8)
        #expect(bytes(w, 4 * Int(page)) == pattern(4 * Int(page)))
        // Row 38: 0–1 of another file exists; asking 0–3 of it overlaps partly → EINVAL.
        try a.writeFile("/data/other", pattern(4 * Int(page), seed: 3))
        let fo = try a.open("/data/other")
        _ = try a.mmap(length: 2 * page, protection: .read, flags: .private, fd: fo)
        let before = Snapshot(s, [a, b, c])
        expectErrno(.invalidArgument, "row 38") {
            _ = try a.mmap(length: 4 * page, protection: .read, flags: .private, fd: fo)
        }
        #expect(Snapshot(s, [a, b, c]) == before)
        try b.munmap(address: y.u, length: 4 * page)
        // Row 59: the region lives until its last user unmaps.
        try a.munmap(address: x.u, length: 4 * page)
        #expect(s.mmapPagesAllocated == 4 + 4 + 2)
        try c.munmap(address: z.u, length: 2 * page)
        #expect(s.mmapPagesAllocated == 4 + 2)
        #expect(everythingBackViolation(s, [a, b, c]) == nil)
    }

    @Test("rows 58, 64: file mappings are unmapped only whole and never remapped when shareable")
    func wholeOnly() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        try p.writeFile("/data/f", pattern(3 * Int(page)))
        let fd = try p.open("/data/f")
        let a = try p.mmap(length: 3 * page, protection: .read, flags: .private, fd: fd)
        let before = Snapshot(s, [p])
        expectErrno(.invalidArgument, "row 58 front") { try p.munmap(address: a.u, length: page) }
        expectErrno(.invalidArgument, "row 58 back") { try p.munmap(address: a.u + 2 * page, length: page) }
        expectErrno(.invalidArgument, "row 58 middle") { try p.munmap(address: a.u + page, length: page) }
        expectErrno(.notPermitted, "row 64 RO private") {
            _ = try p.mremap(address: a.u, oldLength: 3 * page, newLength: page)
        }
        try p.writeFile("/tmp/t", [])
        let t = try p.open("/tmp/t", .readWrite)
        try p.ftruncate(t, length: Int64(page))
        let sh = try p.mmap(length: page, protection: rw, flags: .shared, fd: t)
        let before2 = Snapshot(s, [p])
        expectErrno(.notPermitted, "row 64 shared") {
            _ = try p.mremap(address: sh.u, oldLength: page, newLength: page)
        }
        #expect(Snapshot(s, [p]) == before2)
        try p.munmap(address: sh.u, length: page)
        try p.close(t)
        try p.unlink("/tmp/t")
        #expect(Snapshot(s, [p]) == before)
        // A writable private copy may shrink and grow back (it is not shareable).
        let w = try p.mmap(length: 3 * page, protection: rw, flags: .private, fd: fd)
        #expect(try p.mremap(address: w.u, oldLength: 3 * page, newLength: page) == w)
        #expect(try p.mremap(address: w.u, oldLength: page, newLength: 3 * page) == w)
        try p.munmap(address: a.u, length: 3 * page - 100)  // whole (the length is page-rounded)
        #expect(everythingBackViolation(s, [p]) == nil)
    }
}

@Suite("/data over a host directory")
struct HostDirectoryTests {
    @Test("a given host directory: its files appear, writes reach it, and it outlives the system")
    func givenDirectory() throws {
        var template = Array("/tmp/nommu-hostdir-XXXXXX".utf8CString)
        let dir = try #require(
            template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        defer {
            _ = Glibc.unlink(dir + "/seed")
            _ = Glibc.unlink(dir + "/made")
            _ = Glibc.rmdir(dir)
        }
        let fd = Glibc.open(dir + "/seed", O_CREAT | O_WRONLY, 0o644)
        _ = Glibc.write(fd, "from the host", 13)
        Glibc.close(fd)
        do {
            let s = try System(.init(arenaBytes: 4 << 20, hostDirectory: dir))
            let p = s.createProcess()
            #expect(try p.readFile("/data/seed") == "from the host")
            try p.writeFile("/data/made", Array("from the model".utf8))
            let m = try p.mmap(length: 13, protection: .read, flags: .private, fd: try p.open("/data/seed"))
            #expect(bytes(m, 13) == Array("from the host".utf8))
            #expect(everythingBackViolation(s, [p]) == nil)
        }
        var st = stat()
        #expect(stat(dir + "/made", &st) == 0 && st.st_size == 14, "written through to the host, and kept")
        #expect(throws: Errno.notDirectory) { _ = try System(.init(arenaBytes: 4 << 20, hostDirectory: dir + "/seed")) }
    }

    @Test("no host directory given: a fresh temporary one, removed with the system")
    func temporaryDirectory() throws {
        var dir = ""
        do {
            let s = try System(.init(arenaBytes: 4 << 20))
            dir = s.hostDirectory
            let p = s.createProcess()
            try p.writeFile("/data/x", [1, 2, 3])
            var st = stat()
            #expect(stat(dir + "/x", &st) == 0)
            p.exit()
        }
        var st = stat()
        #expect(stat(dir, &st) != 0, "removed at destroy")
    }
}
