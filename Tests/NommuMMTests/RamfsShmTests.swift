// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuMM
import NommuTestSupport
import PageAllocator
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("tmpfs / ramfs under no-MMU (fs/ramfs/file-nommu.c; rows 41–48)")
struct RamfsTests {
    @Test("row 41: truncate-then-mmap gives the contiguous page cache to every mapper; data is shared")
    func truncateThenMap() throws {
        let s = try makeSystem()
        let a = s.createProcess()
        let b = s.createProcess()
        let c = s.createProcess()
        let allocated = s.allocator.statistics().allocatedPages
        let fa = try a.shmOpen("/ring", [.readWrite, .create])
        try a.ftruncate(fa, length: Int64(3 * page))
        #expect(s.allocator.statistics().allocatedPages == allocated + 3, "3 contiguous pages gathered")
        let fb = try b.shmOpen("ring", .readWrite)
        let fc = try c.open("/dev/shm/ring")
        let x = try a.mmap(length: 3 * page, protection: rw, flags: .shared, fd: fa)
        let y = try b.mmap(length: 3 * page, protection: rw, flags: .shared, fd: fb)
        let z = try c.mmap(length: 3 * page, protection: .read, flags: .shared, fd: fc)
        #expect(x == y && y == z)
        #expect(s.mmapPagesAllocated == 0, "page cache is not MmapCopy")
        #expect(bytes(x, 3 * Int(page)).allSatisfy { $0 == 0 })
        fill(x, 0x5A, 10, offset: Int(page))
        #expect(bytes(z, 10, offset: Int(page)) == [UInt8](repeating: 0x5A, count: 10))
        #expect(try c.pread(fc, count: 2, offset: Int64(page)) == [0x5A, 0x5A])
        // The same file through write() lands in the mapping too (it is the page cache).
        _ = try b.pwrite(fb, [1, 2, 3], offset: 0)
        #expect(bytes(y, 3) == [1, 2, 3])
        // /proc/maps: one region, S, with the path at column 73.
        let maps = try a.readFile("/proc/maps")
        let line = try #require(maps.split(separator: "\n").first { $0.hasSuffix("/dev/shm/ring") })
        let fields = line.split(separator: " ")
        #expect(fields[1] == "rw-S" && fields[2] == "00000000" && fields[3] == "00:17")
        #expect(line.firstRange(of: "/dev/shm/ring")!.lowerBound.utf16Offset(in: line) == 73)
        try a.shmUnlink("/ring")
        #expect(try b.readFile("/proc/self/maps").contains("/dev/shm/ring (deleted)"))
        #expect(everythingBackViolation(s, [a, b, c]) == nil)
    }

    @Test("rows 42–44: empty or past EOF, write()-filled pages, private overlays")
    func sharedNeedsContiguity() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let e = try p.open("/tmp/empty", [.readWrite, .create])
        let before = Snapshot(s, [p])
        expectErrno(.operationNotSupportedByDevice, "row 42 empty") {
            _ = try p.mmap(length: page, protection: .read, flags: .shared, fd: e)
        }
        try p.ftruncate(e, length: Int64(page))
        expectErrno(.operationNotSupportedByDevice, "row 42 past EOF") {
            _ = try p.mmap(length: 2 * page, protection: .read, flags: .shared, fd: e)
        }
        try p.ftruncate(e, length: 0)
        #expect(Snapshot(s, [p]) == before)
        // Row 43: two files written page by page in turn: neither is contiguous in order.
        let f = try p.open("/tmp/f", [.readWrite, .create])
        let g = try p.open("/tmp/g", [.readWrite, .create])
        for i in 0..<4 {
            _ = try p.write(f, pattern(Int(page), seed: i))
            _ = try p.write(g, pattern(Int(page), seed: 9))
        }
        expectErrno(.operationNotSupportedByDevice, "row 43 shared") {
            _ = try p.mmap(length: 4 * page, protection: .read, flags: .shared, fd: f)
        }
        let copy = try p.mmap(length: 4 * page, protection: .read, flags: .private, fd: f)
        #expect(s.mmapPagesAllocated == 4, "a private copy")
        #expect(bytes(copy, Int(page), offset: 2 * Int(page)) == pattern(Int(page), seed: 2))
        // Row 44: a contiguous file, private read-only: mapped in place, no copy.
        let h = try p.open("/tmp/h", [.readWrite, .create])
        try p.ftruncate(h, length: Int64(2 * page))
        _ = try p.pwrite(h, [7, 7, 7], offset: 0)
        let shared = try p.mmap(length: 2 * page, protection: rw, flags: .shared, fd: h)
        let overlay = try p.mmap(length: 2 * page, protection: .read, flags: .private, fd: h)
        #expect(overlay == shared)
        #expect(s.mmapPagesAllocated == 4)
        #expect(bytes(overlay, 3) == [7, 7, 7])
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("rows 45–48: EFBIG, ETXTBSY, clamping, growth without allocation")
    func truncateRules() throws {
        let s = try makeSystem(maxOrder: 4)
        let p = s.createProcess()
        let f = try p.open("/tmp/f", [.readWrite, .create])
        let before = Snapshot(s, [p])
        expectErrno(.fileTooLarge, "row 45") { try p.ftruncate(f, length: 1 << 32) }
        expectErrno(.fileTooLarge, "above the largest block") { try p.ftruncate(f, length: Int64(17 * page)) }
        #expect(Snapshot(s, [p]) == before)
        #expect(try p.pread(f, count: 1, offset: 0) == [], "size unchanged")
        try p.ftruncate(f, length: Int64(4 * page))
        let m = try p.mmap(length: 2 * page, protection: rw, flags: .shared, fd: f, offset: Int64(2 * page))
        // Row 46: the shared mapping covers pages 2–3: cutting them is ETXTBSY.
        let held = s.allocator.statistics().allocatedPages
        expectErrno(.textFileBusy, "row 46") { try p.ftruncate(f, length: Int64(3 * page)) }
        expectErrno(.textFileBusy, "O_TRUNC") { _ = try p.open("/tmp/f", [.readWrite, .truncate]) }
        #expect(s.allocator.statistics().allocatedPages == held)
        try p.munmap(address: m.u, length: 2 * page)
        // Row 47: with the shared mapping below the cut, shrinking works.
        let low = try p.mmap(length: page, protection: rw, flags: .shared, fd: f)
        try p.ftruncate(f, length: Int64(2 * page))
        #expect(s.allocator.statistics().allocatedPages == held - 2)
        // Row 48: growing a non-empty file allocates nothing; its new tail cannot be shared.
        try p.ftruncate(f, length: Int64(6 * page))
        #expect(s.allocator.statistics().allocatedPages == held - 2)
        expectErrno(.operationNotSupportedByDevice, "row 48") {
            _ = try p.mmap(length: page, protection: .read, flags: .shared, fd: f, offset: Int64(4 * page))
        }
        #expect(try p.pread(f, count: 3, offset: Int64(5 * page)) == [0, 0, 0], "holes read as zeros")
        try p.munmap(address: low.u, length: page)
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("truncating under a private overlay is not prevented; the overlay keeps its pages until the file goes")
    func overlayTruncate() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let f = try p.open("/tmp/f", [.readWrite, .create])
        try p.ftruncate(f, length: Int64(2 * page))
        _ = try p.pwrite(f, [9], offset: Int64(page))
        let o = try p.mmap(length: 2 * page, protection: .read, flags: .private, fd: f)
        try p.ftruncate(f, length: 0)  // not prevented, as in the kernel
        #expect(bytes(o, 1, offset: Int(page)) == [9], "the overlay's pages were not handed to anyone")
        #expect(s.invariantViolation() == nil)
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("a private overlay sharing a shared mapping's region keeps its page through truncate to 0")
    func overlayInsideSharedRegion() throws {
        // fuzz-cabi's regression-truncate-under-private-overlay, as a test: the overlay of page
        // 0 shares the region of a 2-page shared mapping; once the shared one is gone, the
        // truncate clamped the region first and then freed the overlay's page by it.
        let s = try makeSystem()
        let p = s.createProcess()
        let fd = try p.shmOpen("x", [.readWrite, .create])
        try p.ftruncate(fd, length: Int64(2 * page))
        _ = try p.pwrite(fd, [7], offset: 0)
        let shared = try p.mmap(length: 2 * page, protection: rw, flags: .shared, fd: fd)
        let overlay = try p.mmap(length: page, protection: .read, flags: .private, fd: fd)
        #expect(overlay == shared, "the overlay is the page cache, inside the shared region")
        try p.munmap(address: shared.u, length: 2 * page)
        try p.ftruncate(fd, length: 0)
        #expect(s.invariantViolation() == nil)
        let fresh = try p.mmap(length: page, protection: rw, flags: anon)
        #expect(fresh != overlay, "the overlay's page was not handed out again")
        #expect(bytes(overlay, 1) == [7])
        try p.munmap(address: fresh.u, length: page)
        try p.munmap(address: overlay.u, length: page)
        try p.close(fd)
        try p.shmUnlink("x")
        #expect(everythingBackViolation(s, [p]) == nil)
    }
}

@Suite("SysV and POSIX shared memory (rows 75–77; SysV shmat works: see Oracle/divergences.md)")
struct SharedMemoryTests {
    @Test("shmget allocates contiguous zeroed pages; three processes attach at one address")
    func threeProcesses() throws {
        let s = try makeSystem()
        let a = s.createProcess()
        let b = s.createProcess()
        let c = s.createProcess()
        try dirtyArena(s, a)
        let held = s.allocator.statistics().allocatedPages
        let id = try a.shmget(key: 0x1234, size: 5000, flags: SharedMemory.create | 0o600)
        #expect(s.allocator.statistics().allocatedPages == held + 2, "row 77: pages at creation")
        #expect(try b.shmget(key: 0x1234, size: 0, flags: 0) == id)
        expectErrno(.fileExists, "IPC_EXCL") {
            _ = try b.shmget(key: 0x1234, size: 10, flags: SharedMemory.create | SharedMemory.exclusive)
        }
        expectErrno(.invalidArgument, "bigger than the segment") { _ = try b.shmget(key: 0x1234, size: 9000, flags: 0) }
        expectErrno(.noSuchFileOrDirectory, "no such key") { _ = try b.shmget(key: 0x999, size: 10, flags: 0) }
        let x = try a.shmat(id)
        let y = try b.shmat(id)
        let z = try c.shmat(id, flags: SharedMemory.readOnly)
        #expect(x == y && y == z)
        #expect(bytes(x, 8192).allSatisfy { $0 == 0 }, "zeroed")
        fill(x, 0x42, 100)
        #expect(bytes(z, 100) == [UInt8](repeating: 0x42, count: 100))
        #expect(try a.shmStatus(id).attaches == 3)
        #expect(try c.readFile("/proc/self/maps").contains("r--S 00000000 00:01 "))
        #expect(try c.readFile("/proc/self/maps").contains("/SYSV00001234 (deleted)"))
        // Row 75: an address is refused; row 76: shmdt needs an attach's exact start.
        let before = Snapshot(s, [a, b, c])
        expectErrno(.invalidArgument, "row 75") { _ = try a.shmat(id, address: x.u) }
        expectErrno(.invalidArgument, "row 76 unaligned") { try a.shmdt(x.u + 1) }
        expectErrno(.invalidArgument, "row 76 inside") { try a.shmdt(x.u + page) }
        let anonymous = try a.mmap(length: page, protection: rw, flags: anon)
        expectErrno(.invalidArgument, "row 76 not shm") { try a.shmdt(anonymous.u) }
        try a.munmap(address: anonymous.u, length: page)
        expectErrno(.invalidArgument, "unknown id") { _ = try a.shmat(id + 100) }
        #expect(Snapshot(s, [a, b, c]) == before)
        // IPC_RMID: the key goes at once, the segment at the last detach.
        try a.shmRemove(id)
        #expect(try a.shmStatus(id).mode & SharedMemory.destroyBit != 0)
        expectErrno(.noSuchFileOrDirectory, "key released") { _ = try b.shmget(key: 0x1234, size: 10, flags: 0) }
        try a.shmdt(x.u)
        try b.shmdt(y.u)
        #expect(s.allocator.statistics().allocatedPages == held + 2)
        c.exit()  // exit detaches too
        #expect(s.allocator.statistics().allocatedPages == held)
        expectErrno(.invalidArgument, "gone") { _ = try a.shmStatus(id) }
        #expect(everythingBackViolation(s, [a, b, c]) == nil)
    }

    @Test("row 77: shmget fails with EFBIG and ENOMEM, changing nothing")
    func shmgetFailures() throws {
        let s = try makeSystem(pages: 64, maxOrder: 6)
        let p = s.createProcess()
        let before = Snapshot(s, [p])
        expectErrno(.fileTooLarge, "4 GiB") { _ = try p.shmget(key: 0, size: 1 << 32, flags: SharedMemory.create) }
        expectErrno(.fileTooLarge, "above the largest block") {
            _ = try p.shmget(key: 0, size: 65 * Int(page), flags: SharedMemory.create)
        }
        let hog = try p.mmap(length: 33 * page, protection: rw, flags: anon)
        let before2 = Snapshot(s, [p])
        expectErrno(.noMemory, "no contiguous run") {
            _ = try p.shmget(key: 7, size: 32 * Int(page), flags: SharedMemory.create)
        }
        expectErrno(.invalidArgument, "size 0") { _ = try p.shmget(key: 7, size: 0, flags: SharedMemory.create) }
        #expect(Snapshot(s, [p]) == before2)
        try p.munmap(address: hog.u, length: 33 * page)
        #expect(Snapshot(s, [p]) == before)
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("POSIX names: leading slashes, EINVAL, ENAMETOOLONG")
    func posixNames() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let fd = try p.shmOpen("//seg", [.readWrite, .create, .exclusive])
        try p.close(fd)
        expectErrno(.fileExists, "O_EXCL") { _ = try p.shmOpen("seg", [.readWrite, .create, .exclusive]) }
        expectErrno(.invalidArgument, "empty") { _ = try p.shmOpen("/", .readWrite) }
        expectErrno(.invalidArgument, "slash") { _ = try p.shmOpen("/a/b", .readWrite) }
        expectErrno(.fileNameTooLong, "long") { _ = try p.shmOpen(String(repeating: "n", count: 256), .readWrite) }
        try p.shmUnlink("seg")
        expectErrno(.noSuchFileOrDirectory, "unlinked") { try p.shmUnlink("seg") }
        #expect(everythingBackViolation(s, [p]) == nil)
    }
}

@Suite("Paths as path_lookupat walks them: a trailing slash and O_DIRECTORY want a directory")
struct PathWalkTests {
    @Test("a trailing slash on a file is ENOTDIR, with O_CREAT EISDIR; O_DIRECTORY on a file ENOTDIR")
    func trailingSlash() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        try p.writeFile("/tmp/f", [1, 2, 3])
        try p.mkfifo("/tmp/q")
        let before = Snapshot(s, [p])
        for path in ["/tmp/f/", "/tmp/f/.", "/tmp/q/", "/proc/self/maps/", "/dev/zero/"] {
            #expect(throws: Errno.notDirectory, "\(path)") { _ = try p.open(path) }
        }
        #expect(throws: Errno.notDirectory, "O_TRUNC truncates nothing") {
            _ = try p.open("/tmp/f/", [.writeOnly, .truncate])
        }
        #expect(throws: Errno.isDirectory, "O_CREAT with a trailing slash") {
            _ = try p.open("/tmp/new/", [.writeOnly, .create])
        }
        #expect(throws: Errno.notDirectory) { _ = try p.open("/tmp/f", .directory) }
        #expect(throws: Errno.notDirectory) { try p.unlink("/tmp/f/") }
        #expect(throws: Errno.noSuchFileOrDirectory) { try p.unlink("/tmp/missing/") }
        #expect(throws: Errno.noSuchFileOrDirectory) { _ = try p.open("/tmp/missing/") }
        #expect(Snapshot(s, [p]) == before, "nothing changed, /tmp/new not made, /tmp/f whole")
        #expect(try p.readFile("/tmp/f").utf8.count == 3)
        // Directories pass.
        try p.close(try p.open("/tmp/"))
        try p.close(try p.open("/tmp", .directory))
        try p.close(try p.open("/proc/self/", .directory))
        #expect(throws: Errno.isDirectory) { _ = try p.open("/tmp/", .writeOnly) }
        p.exit()
        #expect(s.invariantViolation() == nil)
    }

    @Test("`..` steps back over a component the walk went through: missing is ENOENT, a file ENOTDIR")
    func dotDot() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        try p.writeFile("/tmp/f", [1, 2, 3])
        try s.romfsAdd(path: "/rom/dir/a", [4])
        let before = Snapshot(s, [p])
        let refused: [(String, Errno)] = [
            ("/tmp/missing/../f", .noSuchFileOrDirectory), ("/tmp/f/../f", .notDirectory),
            ("/tmp/missing/more/../../f", .noSuchFileOrDirectory), ("/proc/99999/../meminfo", .noSuchFileOrDirectory),
            ("/proc/meminfo/../maps", .notDirectory), ("/proc/self/maps/../status", .notDirectory),
            ("/rom/nodir/../dir/a", .noSuchFileOrDirectory), ("/rom/dir/a/../a", .notDirectory),
            ("/dev/zero/../null", .notDirectory), ("/nowhere/../tmp/f", .noSuchFileOrDirectory),
            ("/data/nodir/../x", .noSuchFileOrDirectory),
        ]
        for (path, errno) in refused {
            #expect(throws: errno, "\(path)") { _ = try p.open(path, [.readWrite, .create]) }
        }
        #expect(throws: Errno.noSuchFileOrDirectory) { try p.unlink("/tmp/missing/../f") }
        // unlink outside tmpfs: the lookup's answers first, then the mount's.
        try p.close(try p.open("/data/d", [.writeOnly, .create]))
        let unlinks: [(String, Errno)] = [
            ("/data/d/", .notDirectory), ("/dev/zero/", .notDirectory), ("/dev/none", .noSuchFileOrDirectory),
            ("/proc/meminfo/", .notDirectory), ("/proc/none", .noSuchFileOrDirectory),
            ("/proc/meminfo", .permissionDenied),
            ("/rom/dir/a", .readOnlyFileSystem), ("/rom/none", .readOnlyFileSystem), ("/rom/dir", .readOnlyFileSystem),
            ("/rom/none/../dir/a", .noSuchFileOrDirectory),
        ]
        for (path, errno) in unlinks {
            #expect(throws: errno, "unlink \(path)") { try p.unlink(path) }
        }
        try p.close(try p.open("/data/d"))
        try p.unlink("/data/d")
        #expect(throws: Errno.notDirectory) { try p.mkfifo("/tmp/f/../g") }
        #expect(throws: Errno.notDirectory) { try p.mkfifo("/tmp/f/g") }
        #expect(throws: Errno.noSuchFileOrDirectory) { _ = try p.exec("/tmp/missing/../f") }
        #expect(Snapshot(s, [p]) == before)
        #expect(try p.readFile("/tmp/f").utf8.count == 3, "/tmp/f still there")
        #expect(throws: Errno.noSuchFileOrDirectory, "/data/x was not made") { _ = try p.open("/data/x") }
        // Through directories that exist, `..` is what it says (and / is its own parent).
        for path in ["/tmp/../tmp/f", "/../../tmp/f", "/proc/self/../../tmp/f", "/rom/dir/../dir/../../tmp/f"] {
            try p.close(try p.open(path))
        }
        try p.close(try p.open("/proc/self/../meminfo"))
        try p.close(try p.open("/rom/dir/../dir/a"))
        #expect(s.invariantViolation() == nil)
    }

    @Test("names are bytes: no decoding, no Unicode equivalence; NAME_MAX counts bytes")
    func byteNames() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let fe = Array("/tmp/".utf8) + [0xFE]
        let ff = Array("/tmp/".utf8) + [0xFF]
        try p.close(try p.open(bytes: fe, [.writeOnly, .create]))
        #expect(throws: Errno.noSuchFileOrDirectory, "\\xff is not \\xfe") { _ = try p.open(bytes: ff) }
        try p.close(try p.open(bytes: fe))
        // Composed and decomposed é: equal as Swift strings, two names on Linux.
        try p.writeFile("/tmp/\u{E9}", [1])
        #expect(throws: Errno.noSuchFileOrDirectory) { _ = try p.open("/tmp/e\u{301}") }
        try p.writeFile("/tmp/e\u{301}", [2, 2])
        #expect(try p.readFile("/tmp/\u{E9}").utf8.count == 1)
        // NAME_MAX is 255 bytes, whatever they are.
        let long = Array("/tmp/".utf8) + [UInt8](repeating: 0xFF, count: 255)
        try p.close(try p.open(bytes: long, [.writeOnly, .create]))
        #expect(throws: Errno.fileNameTooLong) { _ = try p.open(bytes: long + [0xFF], [.writeOnly, .create]) }
        try p.unlink(bytes: long)
        // A NUL ends a path, as in C.
        try p.close(try p.open(bytes: fe + [0, 0x41]))
        // /data hands the host the same bytes, and the system's own directory goes whole.
        let name: [UInt8] = [0x78, 0xFF, 0x80]
        let dataPath = Array("/data/".utf8) + name
        try p.close(try p.open(bytes: dataPath, [.writeOnly, .create]))
        let host = Array(s.hostDirectory.utf8) + [0x2F] + name + [0]
        var st = stat()
        #expect(host.withUnsafeBytes { stat($0.baseAddress!.assumingMemoryBound(to: CChar.self), &st) } == 0)
        #expect(throws: Errno.noSuchFileOrDirectory) { _ = try p.open(bytes: Array("/data/x".utf8) + [0xFF, 0x81]) }
        try p.unlink(bytes: dataPath)
        #expect(host.withUnsafeBytes { stat($0.baseAddress!.assumingMemoryBound(to: CChar.self), &st) } != 0)
        // shm_open names are bytes too.
        let shm = try p.shmOpen(bytes: [0x73, 0xFF], [.readWrite, .create])
        try p.close(shm)
        #expect(throws: Errno.noSuchFileOrDirectory) { _ = try p.shmOpen(bytes: [0x73, 0xFE], .readOnly) }
        try p.shmUnlink(bytes: [0x73, 0xFF])
        p.exit()
        #expect(s.invariantViolation() == nil)
    }

    @Test("the system's temporary /data directory goes at the end, names that are not UTF-8 too")
    func dataDirectoryRemovedWhole() throws {
        var dir = ""
        do {
            let s = try makeSystem()
            let p = s.createProcess()
            dir = s.hostDirectory
            try p.close(try p.open(bytes: Array("/data/".utf8) + [0xFF], [.writeOnly, .create]))
            p.exit()
        }
        #expect(!dir.isEmpty)
        #expect(access(dir, F_OK) != 0, "\(dir) removed")
    }
}
