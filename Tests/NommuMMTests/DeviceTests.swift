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

@Suite("romfs on flash: execute in place, and the flash status window")
struct RomfsFlashTests {
    @Test("XIP: read-only private mappings are the image itself, 16-byte aligned, shared")
    func executeInPlace() throws {
        let s = try makeSystem()
        let a = s.createProcess()
        let b = s.createProcess()
        try s.romfsAdd(path: "/rom/a", pattern(5))  // pushes the next file off a page boundary
        let text = pattern(3 * Int(page) + 100, seed: 5)
        try s.romfsAdd(path: "/rom/bin/prog", text)
        expectErrno(.fileExists, "exists") { try s.romfsAdd(path: "/rom/bin/prog", [1]) }
        expectErrno(.invalidArgument, "not /rom") { try s.romfsAdd(path: "/tmp/x", [1]) }
        let fa = try a.open("/rom/bin/prog")
        let fb = try b.open("/rom/bin/prog")
        expectErrno(.resourceBusy, "opened") { try s.romfsAdd(path: "/rom/bin/prog", [1]) }
        expectErrno(.readOnlyFileSystem, "EROFS") { _ = try a.open("/rom/bin/prog", .readWrite) }
        expectErrno(.isDirectory, "directory") { _ = try a.read(try a.open("/rom/bin"), count: 1) }
        let x = try a.mmap(length: 4 * page, protection: [.read, .exec], flags: .private, fd: fa)
        let y = try b.mmap(length: 4 * page, protection: [.read, .exec], flags: .private, fd: fb)
        #expect(x == y)
        #expect(x.u & 15 == 0 && x.u & (page - 1) != 0, "XIP: 16-byte aligned, not page aligned")
        #expect(bytes(x, text.count) == text)
        #expect(s.mmapPagesAllocated == 0, "no copy")
        let line = try a.readFile("/proc/self/maps").split(separator: "\n").first { $0.hasSuffix("/rom/bin/prog") }
        #expect(line?.split(separator: " ")[1] == "r-xp")
        #expect(line?.split(separator: " ")[3] == "1f:00")
        // A writable private mapping is a copy; a shared writable one is EINVAL (no WRITE cap);
        // past EOF is EINVAL (romfs_get_unmapped_area).
        let w = try a.mmap(length: 4 * page, protection: rw, flags: .private, fd: fa)
        #expect(w.u & (page - 1) == 0 && bytes(w, text.count) == text)
        // (A shared writable mapping needs an fd open for writing, which /rom never gives: 10a.)
        expectErrno(.permissionDenied, "shared write") {
            _ = try a.mmap(length: page, protection: rw, flags: .shared, fd: fa)
        }
        let before = Snapshot(s, [a, b])
        expectErrno(.invalidArgument, "past EOF") {
            _ = try a.mmap(length: page, protection: .read, flags: .shared, fd: fa, offset: Int64(4 * page))
        }
        #expect(Snapshot(s, [a, b]) == before)
        // munmap of an unaligned XIP mapping: its start and the page-rounded length.
        try a.munmap(address: x.u, length: 4 * page)
        #expect(everythingBackViolation(s, [a, b]) == nil)
    }

    @Test("program and erase modes show the status word; private maps then copy real data")
    func statusWindow() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let text = pattern(2 * Int(page), seed: 11)
        // The window's first bytes are another file's: a region at the same address as
        // the XIP one would be two regions with one start (EINVAL in the model; the kernel's
        // `add_nommu_region` would BUG).
        try s.romfsAdd(path: "/rom/pad", [1, 2, 3, 4])
        try s.romfsAdd(path: "/rom/lib", text)
        let f = try p.open("/rom/lib")
        let mtd = try p.open("/dev/mtd0")
        let xip = try p.mmap(length: 2 * page, protection: .read, flags: .private, fd: f)
        let window = try p.mmap(length: page, protection: [.read, .exec], flags: .shared, fd: mtd)
        try s.setFlashMode(device: "/dev/mtd0", .program)
        #expect(s.flashMode == .program)
        let status: [UInt8] = [0x80, 0x00, 0x80, 0x00]
        #expect(bytes(xip, 4) == status, "existing direct mappings see the status pattern")
        #expect(bytes(window, 4) == status)
        // New direct mappings are refused: private ones get a copy through the driver
        // (real data); shared ones fail.
        let before = Snapshot(s, [p])
        expectErrno(.operationNotSupportedByDevice, "shared") {
            _ = try p.mmap(length: page, protection: .read, flags: .shared, fd: mtd, offset: Int64(page))
        }
        #expect(Snapshot(s, [p]) == before)
        try p.munmap(address: xip.u, length: 2 * page)
        let copy = try p.mmap(length: 2 * page, protection: .read, flags: .private, fd: f)
        #expect(bytes(copy, text.count) == text)
        #expect(copy != xip && s.mmapPagesAllocated == 2)
        #expect(try p.pread(f, count: 4, offset: 0) == Array(text[0..<4]), "read() sees the data")
        expectErrno(.resourceBusy, "no image changes while busy") { try s.romfsAdd(path: "/rom/new", [1]) }
        try s.setFlashMode(device: "mtd0", .erase)
        try s.setFlashMode(device: "mtd0", .read)
        #expect(bytes(window, 4) == [1, 2, 3, 4], "the data is back")
        let again = try p.mmap(length: 2 * page, protection: .read, flags: .private, fd: try p.open("/rom/lib"))
        #expect(bytes(again, text.count) == text)
        expectErrno(.noSuchFileOrDirectory, "not flash") { try s.setFlashMode(device: "/dev/fb0", .read) }
        #expect(everythingBackViolation(s, [p]) == nil)
    }
}

@Suite("devices: frame buffer, ramdisk, zero, serial port")
struct DeviceMemoryTests {
    @Test("fb0: direct shared read/write; memory released at the last unmap; futex EPERM")
    func framebuffer() throws {
        let s = try makeSystem()
        let a = s.createProcess()
        let b = s.createProcess()
        let base = s.allocator.statistics().allocatedPages
        let fa = try a.open("/dev/fb0", .readWrite)
        #expect(s.allocator.statistics().allocatedPages == base + 40, "160 KiB of video memory")
        let fb = try b.open("/dev/fb0", .readWrite)
        let x = try a.mmap(length: 4 * page, protection: rw, flags: .shared, fd: fa)
        let y = try b.mmap(length: 2 * page, protection: rw, flags: .shared, fd: fb, offset: Int64(page))
        #expect(y.u == x.u + page, "an inner range shares the region")
        fill(x, 0x11, 8, offset: Int(page))
        #expect(bytes(y, 8) == [UInt8](repeating: 0x11, count: 8))
        #expect(try b.pread(fb, count: 2, offset: Int64(page)) == [0x11, 0x11])
        expectErrno(.notPermitted, "futex on device memory") { _ = try a.futex(x.u, Futex.wake, 1) }
        expectErrno(.invalidArgument, "past the end") {
            _ = try a.mmap(length: 41 * page, protection: .read, flags: .shared, fd: fa)
        }
        try a.close(fa)
        try b.close(fb)
        try a.munmap(address: x.u, length: 4 * page)
        #expect(s.allocator.statistics().allocatedPages == base + 40, "b still maps it")
        try b.munmap(address: y.u, length: 2 * page)
        #expect(s.allocator.statistics().allocatedPages == base, "vm_ops->close: released")
        #expect(everythingBackViolation(s, [a, b]) == nil)
    }

    @Test("ram0: contiguous up front, shared read/write, data kept across opens")
    func ramdisk() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let fd = try p.open("/dev/ram0", .readWrite)
        _ = try p.write(fd, [1, 2, 3])
        try p.close(fd)
        let again = try p.open("/dev/ram0", .readWrite)
        let m = try p.mmap(length: 64 * page, protection: rw, flags: .shared, fd: again)
        #expect(bytes(m, 3) == [1, 2, 3])
        expectErrno(.noSpace, "past the end") { _ = try p.pwrite(again, [1], offset: Int64(64 * page)) }
        expectErrno(.notPermitted, "futex") { _ = try p.futex(m.u, Futex.wake, 1) }
        let copy = try p.mmap(length: page, protection: rw, flags: .private, fd: again)
        #expect(copy != m && bytes(copy, 3) == [1, 2, 3])
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("ttyS0 collects output; /dev entries cannot be created or removed")
    func serial() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let t = try p.open("/dev/ttyS0", .writeOnly)
        #expect(try p.write(t, Array("hi\n".utf8)) == 3)
        #expect(s.consoleOutput == Array("hi\n".utf8))
        expectErrno(.permissionDenied, "create in /dev") { _ = try p.open("/dev/new", [.writeOnly, .create]) }
        expectErrno(.permissionDenied, "unlink in /dev") { try p.unlink("/dev/zero") }
        expectErrno(.readOnlyFileSystem, "mtd0 write") { _ = try p.open("/dev/mtd0", .writeOnly) }
        #expect(everythingBackViolation(s, [p]) == nil)
    }
}

@Suite("descriptors: libc semantics")
struct DescriptorTests {
    @Test("open errors, lowest free descriptor, EMFILE")
    func openErrors() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        expectErrno(.noSuchFileOrDirectory, "missing") { _ = try p.open("/tmp/none") }
        expectErrno(.noSuchFileOrDirectory, "relative") { _ = try p.open("tmp/x", [.create, .writeOnly]) }
        expectErrno(.noSuchFileOrDirectory, "outside the tree") { _ = try p.open("/etc/passwd") }
        expectErrno(.fileNameTooLong, "component") { _ = try p.open("/tmp/" + String(repeating: "a", count: 256)) }
        expectErrno(.fileNameTooLong, "path") { _ = try p.open("/tmp/" + String(repeating: "a/", count: 2100)) }
        expectErrno(.invalidArgument, "mode 3") { _ = try p.open("/tmp", OpenFlags(rawValue: 3)) }
        expectErrno(.isDirectory, "write a directory") { _ = try p.open("/tmp", .writeOnly) }
        expectErrno(.readOnlyFileSystem, "create on /rom") { _ = try p.open("/rom/x", [.create, .writeOnly]) }
        let a = try p.open("/tmp/a", [.create, .readWrite])
        expectErrno(.notDirectory, "file as directory") { _ = try p.open("/tmp/a/b") }
        expectErrno(.fileExists, "O_EXCL") { _ = try p.open("/tmp/a", [.create, .exclusive, .readWrite]) }
        let b = try p.open("/tmp/a")
        try p.close(a)
        #expect(try p.open("/tmp/a") == a, "the lowest free descriptor")
        expectErrno(.badFileDescriptor, "closed") { try p.close(99) }
        expectErrno(.badFileDescriptor, "write a read-only fd") { _ = try p.write(b, [1]) }
        expectErrno(.badFileDescriptor, "foreign descriptor") {
            let q = s.createProcess()
            defer { q.exit() }
            _ = try q.read(b + 50, count: 1)
        }
        var fds: [CInt] = []
        while let fd = try? p.open("/tmp/a") { fds.append(fd) }
        expectErrno(.tooManyOpenFiles, "EMFILE") { _ = try p.open("/tmp/a") }
        #expect(fds.count + 2 == 1024)
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("read, write, pread, pwrite, O_APPEND, O_TRUNC, unlink while open")
    func readWrite() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        for path in ["/tmp/f", "/data/f"] {
            let fd = try p.open(path, [.create, .readWrite])
            #expect(try p.write(fd, Array("hello".utf8)) == 5)
            #expect(try p.pwrite(fd, Array("J".utf8), offset: 0) == 1)
            #expect(try p.pread(fd, count: 10, offset: 0) == Array("Jello".utf8))
            #expect(try p.read(fd, count: 10) == [], "offset at the end")
            let ap = try p.open(path, [.writeOnly, .append])
            _ = try p.write(ap, Array("!".utf8))
            #expect(try p.readFile(path) == "Jello!")
            expectErrno(.invalidArgument, "negative offset") { _ = try p.pread(fd, count: 1, offset: -1) }
            expectErrno(.invalidArgument, "negative length") { try p.ftruncate(fd, length: -1) }
            expectErrno(.invalidArgument, "read-only ftruncate") { try p.ftruncate(try p.open(path), length: 0) }
            _ = try p.open(path, [.writeOnly, .truncate])
            #expect(try p.readFile(path) == "")
            _ = try p.write(fd, Array("xy".utf8))
            try p.unlink(path)
            expectErrno(.noSuchFileOrDirectory, "unlinked") { _ = try p.open(path) }
            #expect(try p.pread(fd, count: 10, offset: 5) == Array("xy".utf8), "open files outlive their names")
        }
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("pipes and FIFOs: data, EOF, EPIPE, ESPIPE, blocking across threads")
    func pipes() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let (r, w) = try p.pipe()
        #expect(try p.write(w, [1, 2, 3]) == 3)
        #expect(try p.read(r, count: 2) == [1, 2])
        expectErrno(.illegalSeek, "pread") { _ = try p.pread(r, count: 1, offset: 0) }
        expectErrno(.badFileDescriptor, "write the read end") { _ = try p.write(r, [1]) }
        // A reader blocked on an empty pipe wakes when another thread writes.
        let child = try p.vfork()
        let got = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        defer { got.deallocate() }
        got.pointee = 0
        _ = try p.read(r, count: 1)
        let gotAddress = Int(bitPattern: got)
        runOnThreads(2) { i in
            if i == 0 {
                UnsafeMutablePointer<Int>(bitPattern: gotAddress)!.pointee = (try? p.read(r, count: 10))?.count ?? -1
            } else {
                usleep(20_000)
                _ = try? child.write(w, [9, 9])
            }
        }
        #expect(got.pointee == 2)
        try p.close(w)
        child.exit()  // shares the table: closing nothing of the parent's
        #expect(try p.read(r, count: 10) == [], "no writer: end of file")
        let (r2, w2) = try p.pipe()
        try p.close(r2)
        expectErrno(.brokenPipe, "EPIPE") { _ = try p.write(w2, [1]) }
        try p.mkfifo("/tmp/q")
        expectErrno(.fileExists, "mkfifo twice") { try p.mkfifo("/tmp/q") }
        expectErrno(.readOnlyFileSystem, "mkfifo /rom") { try p.mkfifo("/rom/q") }
        let qr = try p.open("/tmp/q", [.readOnly, .nonBlocking])
        let qw = try p.open("/tmp/q", .writeOnly)
        _ = try p.write(qw, [5])
        #expect(try p.read(qr, count: 5) == [5])
        expectErrno(.resourceTemporarilyUnavailable, "non-blocking empty") { _ = try p.read(qr, count: 5) }
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("pipes: writes up to PIPE_BUF are atomic (EAGAIN without room); a non-blocking FIFO writer needs a reader")
    func pipeAtomicity() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        try p.mkfifo("/tmp/f")
        expectErrno(.noSuchDeviceOrAddress, "O_WRONLY | O_NONBLOCK, no reader") {
            _ = try p.open("/tmp/f", [.writeOnly, .nonBlocking])
        }
        let r = try p.open("/tmp/f", [.readOnly, .nonBlocking])
        let w = try p.open("/tmp/f", [.writeOnly, .nonBlocking])
        #expect(try p.write(w, [UInt8](repeating: 1, count: 65536 - 100)) == 65436)
        expectErrno(.resourceTemporarilyUnavailable, "200 bytes into 100 of room: all or nothing") {
            _ = try p.write(w, [UInt8](repeating: 2, count: 200))
        }
        #expect(try p.write(w, [UInt8](repeating: 3, count: 5000)) == 100, "above PIPE_BUF: partial")
        try p.close(w)
        try p.close(r)
        // Two writers of 4000-byte records into one pipe: no record is torn.
        let (pr, pw) = try p.pipe()
        let records = 300
        let stream = HostMutex<[UInt8]>([])
        runOnThreads(3) { t in
            if t < 2 {
                for _ in 0..<records { _ = try? p.write(pw, [UInt8](repeating: UInt8(t + 1), count: 4000)) }
            } else {
                while stream.withLock({ $0.count }) < 2 * records * 4000 {
                    let chunk = (try? p.read(pr, count: 6000)) ?? []
                    stream.withLock { $0 += chunk }
                }
            }
        }
        let all = stream.withLock { $0 }
        var torn = 0
        for k in stride(from: 0, to: all.count, by: 4000) where Set(all[k..<k + 4000]).count != 1 { torn += 1 }
        #expect(all.count == 2 * records * 4000 && torn == 0, "\(torn) of \(2 * records) records torn")
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("a vfork child gets a copy of the descriptor table (as Linux 6.1 does); exit closes it")
    func copiedTable() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let mine = try p.open("/tmp/parent", [.create, .readWrite])
        let c = try p.vfork()
        _ = try c.write(mine, [1])  // the child has the parent's open files
        let fd = try c.open("/tmp/child", [.create, .readWrite])
        expectErrno(.badFileDescriptor, "not the parent's") { _ = try p.write(fd, [1]) }
        try c.close(mine)
        _ = try p.write(mine, [2])  // closed in the child only
        try c.close(fd)
        expectErrno(.badFileDescriptor, "closed") { try c.close(fd) }
        try p.close(mine)
        let other = s.createProcess()
        expectErrno(.badFileDescriptor, "not shared with others") { _ = try other.read(0, count: 1) }
        let sock = try p.socket(domain: AF_INET, type: CInt(SOCK_STREAM.rawValue), protocol: CInt(IPPROTO_TCP))
        expectErrno(.socketNotConnected, "read") { _ = try p.read(sock, count: 1) }
        expectErrno(.addressFamilyNotSupported, "family") { _ = try p.socket(domain: 12345, type: 1) }
        expectErrno(.invalidArgument, "type") { _ = try p.socket(domain: AF_UNIX, type: 77) }
        expectErrno(.protocolNotSupported, "protocol") {
            _ = try p.socket(domain: AF_INET, type: CInt(SOCK_STREAM.rawValue), protocol: CInt(IPPROTO_UDP))
        }
        #expect(everythingBackViolation(s, [p, c, other]) == nil)
    }

    @Test("socket(2) checks as __sys_socket and the family's create do; unconnected reads and writes fail as theirs")
    func socketRules() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let stream = CInt(SOCK_STREAM.rawValue)
        let dgram = CInt(SOCK_DGRAM.rawValue)
        let seqpacket = CInt(SOCK_SEQPACKET.rawValue)
        let raw = CInt(SOCK_RAW.rawValue)
        // AF_UNIX: protocol 0 or PF_UNIX; stream, datagram, seqpacket, raw (as datagram).
        let u = try p.socket(domain: AF_UNIX, type: stream)
        expectErrno(.invalidArgument, "unix stream read") { _ = try p.read(u, count: 1) }
        expectErrno(.socketNotConnected, "unix stream write") { _ = try p.write(u, [1]) }
        let q = try p.socket(domain: AF_UNIX, type: seqpacket, protocol: AF_UNIX)
        expectErrno(.socketNotConnected, "seqpacket read") { _ = try p.read(q, count: 1) }
        let r = try p.socket(domain: AF_UNIX, type: raw)
        expectErrno(.socketNotConnected, "raw reads as datagram") { _ = try p.write(r, [1]) }
        expectErrno(.illegalSeek, "pread") { _ = try p.pread(r, count: 1, offset: 0) }
        expectErrno(Errno(rawValue: ESOCKTNOSUPPORT), "packet type") {
            _ = try p.socket(domain: AF_UNIX, type: CInt(SOCK_PACKET.rawValue))
        }
        expectErrno(.invalidArgument, "past SOCK_MAX") { _ = try p.socket(domain: AF_UNIX, type: 11) }
        expectErrno(.protocolNotSupported, "unix, protocol 6") {
            _ = try p.socket(domain: AF_UNIX, type: stream, protocol: 6)
        }
        expectErrno(.addressFamilyNotSupported, "family -1") { _ = try p.socket(domain: -1, type: stream) }
        expectErrno(.addressFamilyNotSupported, "family 45") { _ = try p.socket(domain: 45, type: stream) }
        // Internet: the inetsw table; raw only for root; ping sockets need a group.
        let udp = try p.socket(domain: AF_INET6, type: dgram)
        expectErrno(Errno(rawValue: EDESTADDRREQ), "udp write") { _ = try p.write(udp, [1]) }
        let tcp = try p.socket(domain: AF_INET, type: stream | CInt(SOCK_CLOEXEC.rawValue))
        expectErrno(.brokenPipe, "tcp write") { _ = try p.write(tcp, [1]) }
        expectErrno(.permissionDenied, "ping") {
            _ = try p.socket(domain: AF_INET, type: dgram, protocol: CInt(IPPROTO_ICMP))
        }
        expectErrno(Errno(rawValue: ESOCKTNOSUPPORT), "inet seqpacket") {
            _ = try p.socket(domain: AF_INET, type: seqpacket)
        }
        expectErrno(.invalidArgument, "flag 0x40") { _ = try p.socket(domain: AF_INET, type: stream | 0x40) }
        _ = try p.socket(domain: AF_INET, type: raw, protocol: 255)
        try p.setuid(1000)
        expectErrno(.notPermitted, "raw as uid 1000") { _ = try p.socket(domain: AF_INET, type: raw, protocol: 255) }
        p.exit()
        #expect(everythingBackViolation(s, []) == nil)
    }
}
