// SPDX-License-Identifier: Apache-2.0
//
// The bad-input table, the Swift half (the C half is abi-check's null_and_bad_rows):
// every Swift entry point of the model with zero and huge sizes, lengths that overflow when
// rounded, misaligned addresses, offsets that overflow, closed, foreign and negative
// descriptors, unknown flag bits, and paths too long, missing or outside the tree. Each row
// must throw the kernel's errno and change nothing: no mapping, region, page, file byte,
// descriptor or counter moves, and every page is back at the end.
import NommuBase
import NommuMM
import NommuTestSupport
import PageAllocator
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// One row: what is called, and the errno it must throw.
private struct BadCall {
    var what: String
    var errno: Errno
    var call: () throws -> Void
}

@Suite("Bad input, systematically: the Swift entry points")
struct BadInputTableTests {
    @Test("every row throws the kernel's errno and changes nothing")
    func table() throws {
        let s = try makeSystem(pages: 1024, trim: 1)
        let p = s.createProcess()
        let q = s.createProcess()
        // Two users (root reads every process's maps).
        try p.setuid(1000)
        try q.setuid(1001)
        // Something of everything for the calls to aim at.
        let a = try p.mmap(length: 3 * page, protection: rw, flags: anon)
        let foreign = try q.mmap(length: 2 * page, protection: rw, flags: anon)
        let f = try p.open("/tmp/f", [.readWrite, .create])
        _ = try p.write(f, pattern(5000))
        let ro = try p.open("/tmp/f")
        let wo = try p.open("/tmp/f", .writeOnly)
        let empty = try p.open("/tmp/empty", [.readWrite, .create])
        let shared = try p.open("/dev/shm/seg", [.readWrite, .create])
        try p.ftruncate(shared, length: Int64(2 * page))
        let sm = try p.mmap(length: 2 * page, protection: rw, flags: .shared, fd: shared)
        let d = try p.open("/data/d", [.readWrite, .create])
        _ = try p.write(d, pattern(300))
        // The pipe first: a closed descriptor's number is the next one handed out.
        let (pr, pw) = try p.pipe()
        let closed = try p.open("/tmp/closed", [.readWrite, .create])
        try p.close(closed)
        let id = try p.shmget(key: 42, size: 3 * Int(page), flags: SharedMemory.create)
        let at = try p.shmat(id)
        try s.romfsAdd(path: "/rom/prog", pattern(64))
        try s.romfsAdd(path: "/rom/unopened", pattern(8))
        let run = try s.allocatePages(order: Order(1), .zeroed)

        let huge = UInt.max - 100  // rounds up past the top: wraps to 0
        let long = "/tmp/" + String(repeating: "x", count: 300)
        let deep = "/tmp/" + String(repeating: "d/", count: 2100)
        let unknownMapBits = MapFlags(rawValue: MapFlags.private.rawValue | MapFlags.anonymous.rawValue | 0x4000_0000)
        let rows: [BadCall] = [
            // mmap (`do_mmap` / `validate_mmap_request`, in the kernel's order)
            .init(what: "mmap length 0", errno: .invalidArgument) {
                _ = try p.mmap(length: 0, protection: rw, flags: anon)
            },
            .init(what: "mmap length that wraps when rounded", errno: .noMemory) {
                _ = try p.mmap(length: huge, protection: rw, flags: anon)
            },
            .init(what: "mmap length UInt.max", errno: .noMemory) {
                _ = try p.mmap(length: .max, protection: rw, flags: anon)
            },
            .init(what: "mmap length past TASK_SIZE", errno: .noMemory) {
                _ = try p.mmap(length: 1 << 48, protection: rw, flags: anon)
            },
            .init(what: "mmap map type 0", errno: .invalidArgument) {
                _ = try p.mmap(length: page, protection: rw, flags: .anonymous)
            },
            .init(what: "mmap map type 0xf", errno: .invalidArgument) {
                _ = try p.mmap(
                    length: page, protection: rw, flags: MapFlags(rawValue: 0x0f | MapFlags.anonymous.rawValue))
            },
            .init(what: "mmap MAP_SHARED_VALIDATE", errno: .invalidArgument) {
                _ = try p.mmap(length: page, protection: rw, flags: [.sharedValidate, .anonymous])
            },
            .init(what: "mmap MAP_FIXED at a misaligned address", errno: .invalidArgument) {
                _ = try p.mmap(address: a.u + 1, length: page, protection: rw, flags: [.private, .anonymous, .fixed])
            },
            .init(what: "mmap address hint (EINVAL, as the document says)", errno: .invalidArgument) {
                _ = try p.mmap(address: 0x1000_0000, length: page, protection: rw, flags: anon)
            },
            .init(what: "mmap byte offset not page aligned (before the fd)", errno: .invalidArgument) {
                _ = try p.mmap(length: page, protection: .read, flags: .private, fd: -7, offset: 1)
            },
            .init(what: "mmap negative offset (an arithmetic shift: the page offset wraps)", errno: .overflow) {
                _ = try p.mmap(length: page, protection: .read, flags: .private, fd: f, offset: -Int64(page))
            },
            .init(what: "mmap2 pgoff + pages wraps (anonymous too)", errno: .overflow) {
                _ = try p.mmap2(length: 2 * page, protection: rw, flags: anon, pageOffset: .max)
            },
            .init(what: "mmap2 pgoff + pages wraps on a file", errno: .overflow) {
                _ = try p.mmap2(length: page, protection: .read, flags: .private, fd: f, pageOffset: .max)
            },
            .init(what: "mmap negative descriptor", errno: .badFileDescriptor) {
                _ = try p.mmap(length: page, protection: .read, flags: .private, fd: -1)
            },
            .init(what: "mmap closed descriptor", errno: .badFileDescriptor) {
                _ = try p.mmap(length: page, protection: .read, flags: .private, fd: closed)
            },
            .init(what: "mmap another process's descriptor", errno: .badFileDescriptor) {
                _ = try q.mmap(length: page, protection: .read, flags: .private, fd: f)
            },
            .init(what: "mmap huge descriptor", errno: .badFileDescriptor) {
                _ = try p.mmap(length: page, protection: .read, flags: .private, fd: .max)
            },
            .init(what: "mmap of a pipe", errno: .operationNotSupportedByDevice) {
                _ = try p.mmap(length: page, protection: .read, flags: .private, fd: pr)
            },
            .init(what: "mmap of an O_WRONLY file", errno: .permissionDenied) {
                _ = try p.mmap(length: page, protection: .read, flags: .private, fd: wo)
            },
            .init(what: "mmap MAP_SHARED PROT_WRITE on O_RDONLY", errno: .permissionDenied) {
                _ = try p.mmap(length: page, protection: rw, flags: .shared, fd: ro)
            },
            .init(what: "mmap shared past EOF", errno: .operationNotSupportedByDevice) {
                _ = try p.mmap(length: page, protection: .read, flags: .shared, fd: shared, offset: 1 << 40)
            },
            .init(what: "mmap shared of a /data file (copy only)", errno: .operationNotSupportedByDevice) {
                _ = try p.mmap(length: page, protection: .read, flags: .shared, fd: d)
            },
            .init(what: "mmap larger than the largest block", errno: .noMemory) {
                _ = try p.mmap(length: 2048 * page, protection: rw, flags: unknownMapBits)
            },
            // munmap (`do_munmap`)
            .init(what: "munmap length 0", errno: .invalidArgument) { try p.munmap(address: a.u, length: 0) },
            .init(what: "munmap length that wraps", errno: .invalidArgument) {
                try p.munmap(address: a.u, length: huge)
            },
            .init(what: "munmap misaligned start", errno: .invalidArgument) {
                try p.munmap(address: a.u + 1, length: page)
            },
            .init(what: "munmap past the mapping", errno: .invalidArgument) {
                try p.munmap(address: a.u, length: 5 * page)
            },
            .init(what: "munmap of nothing", errno: .invalidArgument) { try p.munmap(address: 0x1000, length: page) },
            .init(what: "munmap of address 0", errno: .invalidArgument) { try p.munmap(address: 0, length: page) },
            .init(what: "munmap at the top of the address space", errno: .invalidArgument) {
                try p.munmap(address: .max & ~(page - 1), length: page)
            },
            .init(what: "munmap another process's mapping", errno: .invalidArgument) {
                try p.munmap(address: foreign.u, length: 2 * page)
            },
            .init(what: "munmap part of a file mapping", errno: .invalidArgument) {
                try p.munmap(address: sm.u, length: page)
            },
            // mremap (`do_mremap`)
            .init(what: "mremap old length 0", errno: .invalidArgument) {
                _ = try p.mremap(address: a.u, oldLength: 0, newLength: page)
            },
            .init(what: "mremap new length 0", errno: .invalidArgument) {
                _ = try p.mremap(address: a.u, oldLength: 3 * page, newLength: 0)
            },
            .init(what: "mremap new length that wraps", errno: .invalidArgument) {
                _ = try p.mremap(address: a.u, oldLength: 3 * page, newLength: huge)
            },
            .init(what: "mremap misaligned address", errno: .invalidArgument) {
                _ = try p.mremap(address: a.u + 8, oldLength: 3 * page, newLength: page)
            },
            .init(what: "mremap MREMAP_FIXED elsewhere", errno: .invalidArgument) {
                _ = try p.mremap(
                    address: a.u, oldLength: 3 * page, newLength: page, flags: .fixed, newAddress: a.u + page)
            },
            .init(what: "mremap wrong old length", errno: .invalidArgument) {
                _ = try p.mremap(address: a.u, oldLength: 2 * page, newLength: page)
            },
            .init(what: "mremap another process's mapping", errno: .invalidArgument) {
                _ = try p.mremap(address: foreign.u, oldLength: 2 * page, newLength: page)
            },
            .init(what: "mremap growth, unknown flag bits (never checked)", errno: .noMemory) {
                _ = try p.mremap(
                    address: a.u, oldLength: 3 * page, newLength: 64 * page, flags: RemapFlags(rawValue: 0x7ff8))
            },
            .init(what: "mremap a shared file mapping", errno: .notPermitted) {
                _ = try p.mremap(address: sm.u, oldLength: 2 * page, newLength: page)
            },
            // The calls an MMU needs
            .init(what: "mprotect", errno: .noFunction) {
                try p.mprotect(address: a.u, length: page, protection: .read)
            },
            .init(what: "msync", errno: .noFunction) { try p.msync(address: a.u, length: page, flags: -1) },
            .init(what: "mlock", errno: .noFunction) { try p.mlock(address: 1, length: .max) },
            .init(what: "munlock", errno: .noFunction) { try p.munlock(address: 1, length: .max) },
            .init(what: "mincore", errno: .noFunction) { try p.mincore(address: a.u, length: 0) },
            .init(what: "madvise", errno: .noFunction) { try p.madvise(address: a.u, length: page, advice: 999) },
            // futex (the no-MMU address checks, see Oracle/divergences.md)
            .init(what: "futex misaligned", errno: .invalidArgument) { _ = try p.futex(a.u + 2, Futex.wake, 1) },
            .init(what: "futex outside every mapping", errno: .badAddress) { _ = try p.futex(0x1000, Futex.wake, 1) },
            .init(what: "futex in another process's mapping", errno: .badAddress) {
                _ = try p.futex(foreign.u, Futex.wake, 1)
            },
            .init(what: "futex unknown operation", errno: .noFunction) { _ = try p.futex(a.u, 77, 1) },
            .init(what: "futex negative timeout", errno: .invalidArgument) {
                _ = try p.futex(a.u, Futex.wait, 0, timeout: timespec(tv_sec: -1, tv_nsec: 0))
            },
            .init(what: "futex timeout nanoseconds ≥ 10⁹", errno: .invalidArgument) {
                _ = try p.futex(a.u, Futex.wait, 0, timeout: timespec(tv_sec: 0, tv_nsec: 1_000_000_000))
            },
            .init(what: "futex wait on a word that differs", errno: .resourceTemporarilyUnavailable) {
                _ = try p.futex(a.u, Futex.wait, 1)
            },
            // Descriptors
            .init(what: "read negative descriptor", errno: .badFileDescriptor) { _ = try p.read(-1, count: 1) },
            .init(what: "read closed descriptor", errno: .badFileDescriptor) { _ = try p.read(closed, count: 1) },
            .init(what: "read another process's descriptor", errno: .badFileDescriptor) { _ = try q.read(f, count: 1) },
            .init(what: "read huge count on O_WRONLY", errno: .badFileDescriptor) { _ = try p.read(wo, count: .max) },
            .init(what: "read negative count", errno: .invalidArgument) { _ = try p.read(f, count: -1) },
            .init(what: "pread negative offset", errno: .invalidArgument) { _ = try p.pread(f, count: 1, offset: -1) },
            .init(what: "pread on a pipe", errno: .illegalSeek) { _ = try p.pread(pr, count: 1, offset: 0) },
            .init(what: "write on O_RDONLY", errno: .badFileDescriptor) { _ = try p.write(ro, [1]) },
            .init(what: "write to a closed descriptor", errno: .badFileDescriptor) { _ = try p.write(closed, [1]) },
            .init(what: "pwrite past the largest offset", errno: .fileTooLarge) {
                _ = try p.pwrite(f, [1, 2], offset: .max - 1)
            },
            .init(what: "pwrite negative offset", errno: .invalidArgument) { _ = try p.pwrite(f, [1], offset: .min) },
            .init(what: "ftruncate negative length", errno: .invalidArgument) { try p.ftruncate(f, length: -1) },
            .init(what: "ftruncate O_RDONLY", errno: .invalidArgument) { try p.ftruncate(ro, length: 0) },
            .init(what: "ftruncate a pipe", errno: .invalidArgument) { try p.ftruncate(pw, length: 0) },
            .init(what: "ftruncate a mapped ramfs file shorter", errno: .textFileBusy) {
                try p.ftruncate(shared, length: 0)
            },
            .init(what: "ftruncate an empty ramfs file to 4 GiB (row 45)", errno: .fileTooLarge) {
                try p.ftruncate(empty, length: 1 << 32)
            },
            .init(what: "ftruncate an empty ramfs file past the largest block", errno: .fileTooLarge) {
                try p.ftruncate(empty, length: 2048 * Int64(page))
            },
            .init(what: "close negative descriptor", errno: .badFileDescriptor) { try p.close(-5) },
            .init(what: "close closed descriptor", errno: .badFileDescriptor) { try p.close(closed) },
            .init(what: "close another process's descriptor", errno: .badFileDescriptor) { try q.close(f) },
            .init(what: "setAppendOnly closed descriptor", errno: .badFileDescriptor) { try p.setAppendOnly(closed) },
            // Paths
            .init(what: "open empty path", errno: .noSuchFileOrDirectory) { _ = try p.open("") },
            .init(what: "open relative path", errno: .noSuchFileOrDirectory) { _ = try p.open("tmp/f") },
            .init(what: "open missing file", errno: .noSuchFileOrDirectory) { _ = try p.open("/tmp/missing") },
            .init(what: "open outside the tree", errno: .noSuchFileOrDirectory) { _ = try p.open("/etc/passwd") },
            .init(what: "open escaping with ..", errno: .noSuchFileOrDirectory) { _ = try p.open("/data/../../etc") },
            .init(what: "open a name too long", errno: .fileNameTooLong) {
                _ = try p.open(long, [.readWrite, .create])
            },
            .init(what: "open a path too long", errno: .fileNameTooLong) { _ = try p.open(deep) },
            .init(what: "open O_CREAT|O_EXCL of an existing file", errno: .fileExists) {
                _ = try p.open("/tmp/f", [.readWrite, .create, .exclusive])
            },
            .init(what: "open O_CREAT on /rom", errno: .readOnlyFileSystem) {
                _ = try p.open("/rom/new", [.readWrite, .create])
            },
            .init(what: "open /proc of another process's maps", errno: .permissionDenied) {
                _ = try p.open("/proc/\(q.pid)/maps")
            },
            .init(what: "open /proc of no process", errno: .noSuchFileOrDirectory) {
                _ = try p.open("/proc/9999/maps")
            },
            .init(what: "unlink missing", errno: .noSuchFileOrDirectory) { try p.unlink("/tmp/missing") },
            .init(what: "unlink too long", errno: .fileNameTooLong) { try p.unlink(long) },
            .init(what: "unlink outside the tree", errno: .noSuchFileOrDirectory) { try p.unlink("/usr/bin/env") },
            .init(what: "mkfifo over a file", errno: .fileExists) { try p.mkfifo("/tmp/f") },
            .init(what: "mkfifo too long", errno: .fileNameTooLong) { try p.mkfifo(long) },
            .init(what: "socket unknown family", errno: .addressFamilyNotSupported) {
                _ = try p.socket(domain: 12345, type: 1)
            },
            .init(what: "exec missing", errno: .noSuchFileOrDirectory) { _ = try p.exec("/rom/missing") },
            .init(what: "exec too long", errno: .fileNameTooLong) { _ = try p.exec(long) },
            .init(what: "exec not ELF", errno: .execFormatError) { _ = try p.exec("/rom/prog") },
            .init(what: "exec a directory", errno: .permissionDenied) { _ = try p.exec("/tmp") },
            .init(what: "writeFile sysctl -1 (row 29)", errno: .invalidArgument) {
                try p.writeFile("/proc/sys/vm/nr_trim_pages", Array("-1\n".utf8))
            },
            .init(what: "writeFile sysctl garbage", errno: .invalidArgument) {
                try p.writeFile("/proc/sys/vm/nr_trim_pages", Array("lots".utf8))
            },
            // Shared memory
            .init(what: "shmget size 0", errno: .invalidArgument) {
                _ = try p.shmget(key: 7, size: 0, flags: SharedMemory.create)
            },
            // newseg passes shm_ctlmax (ULONG_MAX - 2^24); the ramfs expansion is EFBIG.
            .init(what: "shmget huge size", errno: .fileTooLarge) {
                _ = try p.shmget(key: 7, size: .max, flags: SharedMemory.create)
            },
            .init(what: "shmget larger than the existing segment", errno: .invalidArgument) {
                _ = try p.shmget(key: 42, size: 4 * Int(page), flags: 0)
            },
            .init(what: "shmget missing key", errno: .noSuchFileOrDirectory) {
                _ = try p.shmget(key: 8, size: 1, flags: 0)
            },
            .init(what: "shmat unknown id", errno: .invalidArgument) { _ = try p.shmat(999) },
            .init(what: "shmat negative id", errno: .invalidArgument) { _ = try p.shmat(-1) },
            .init(what: "shmat at an address (EINVAL, as mmap refuses a hint)", errno: .invalidArgument) {
                _ = try p.shmat(id, address: a.u)
            },
            .init(what: "shmdt misaligned", errno: .invalidArgument) { try p.shmdt(at.u + 1) },
            .init(what: "shmdt inside the attach", errno: .invalidArgument) { try p.shmdt(at.u + page) },
            .init(what: "shmdt another process's attach", errno: .invalidArgument) { try q.shmdt(at.u) },
            .init(what: "shmctl IPC_RMID unknown id", errno: .invalidArgument) { try p.shmRemove(12345) },
            .init(what: "shmctl IPC_STAT unknown id", errno: .invalidArgument) { _ = try p.shmStatus(-3) },
            .init(what: "shm_open empty name", errno: .invalidArgument) { _ = try p.shmOpen("", .readOnly) },
            .init(what: "shm_open with a slash", errno: .invalidArgument) { _ = try p.shmOpen("/a/b", .readOnly) },
            .init(what: "shm_open too long", errno: .fileNameTooLong) {
                _ = try p.shmOpen(String(repeating: "n", count: 300), [.readWrite, .create])
            },
            .init(what: "shm_unlink missing", errno: .noSuchFileOrDirectory) { try p.shmUnlink("missing") },
            // brk and the system-wide calls
            // alloc_pages past MAX_PAGE_ORDER warns and returns NULL.
            .init(what: "allocatePages order past the maximum", errno: .noMemory) {
                _ = try s.allocatePages(order: Order(11), .zeroed)
            },
            .init(what: "allocatePages negative order", errno: .invalidArgument) {
                _ = try s.allocatePages(order: Order(-1), .zeroed)
            },
            .init(what: "allocatePagesExact 0 bytes", errno: .invalidArgument) {
                _ = try s.allocatePagesExact(bytes: 0, .zeroed)
            },
            .init(what: "allocatePagesExact huge", errno: .noMemory) {
                _ = try s.allocatePagesExact(bytes: .max, .zeroed)
            },
            .init(what: "freePages with the wrong order", errno: .invalidArgument) {
                try s.freePages(at: run, order: Order(0))
            },
            .init(what: "freePages of a free page", errno: .invalidArgument) {
                try s.freePages(at: s.allocator.baseAddress + 1000 * Int(page), order: Order(0))
            },
            .init(what: "freePages outside the arena", errno: .invalidArgument) {
                try s.freePages(at: s.allocator.baseAddress + (1 << 20) * Int(page), order: Order(0))
            },
            .init(what: "freePages of a mapping's page", errno: .invalidArgument) {
                try s.freePages(at: a.pointer!, order: Order(0))
            },
            // The allocator alone would take these back (the order or length matches): the
            // system refuses every run it did not hand out through these calls.
            .init(what: "freePages of a page-cache page", errno: .invalidArgument) {
                try s.freePages(at: sm.pointer!, order: Order(0))
            },
            .init(what: "freePagesExact of a page-cache run", errno: .invalidArgument) {
                try s.freePagesExact(at: sm.pointer!, bytes: 2 * Int(page))
            },
            .init(what: "freePagesExact of a SysV segment", errno: .invalidArgument) {
                try s.freePagesExact(at: at.pointer!, bytes: 3 * Int(page))
            },
            .init(what: "freePagesExact of an anonymous mapping's run", errno: .invalidArgument) {
                try s.freePagesExact(at: a.pointer!, bytes: 3 * Int(page))
            },
            .init(what: "freePagesExact of a direct block (wrong call)", errno: .invalidArgument) {
                try s.freePagesExact(at: run, bytes: 2 * Int(page))
            },
            .init(what: "freePagesExact of nothing", errno: .invalidArgument) {
                try s.freePagesExact(at: s.allocator.baseAddress + 1000 * Int(page), bytes: 3 * Int(page))
            },
            .init(what: "setNrTrimPages negative", errno: .invalidArgument) { try s.setNrTrimPages(-1) },
            .init(what: "romfsAdd outside /rom", errno: .invalidArgument) { try s.romfsAdd(path: "/tmp/x", [1]) },
            .init(what: "romfsAdd over an existing file", errno: .fileExists) {
                try s.romfsAdd(path: "/rom/unopened", [1])
            },
            .init(what: "romfsAdd over a file once opened (exec opened it)", errno: .resourceBusy) {
                try s.romfsAdd(path: "/rom/prog", [1])
            },
            .init(what: "romfsAdd larger than the flash", errno: .noSpace) {
                try s.romfsAdd(path: "/rom/big", [UInt8](repeating: 1, count: 17 << 20))
            },
            .init(what: "vfork of an exited process", errno: .noSuchProcess) {
                let gone = s.createProcess()
                gone.exit()
                _ = try gone.vfork()
            },
        ]

        let files = ["/tmp/f", "/dev/shm/seg", "/data/d"]
        let before = ModelDigest(s, [p, q], files: files, shmKeys: [42])
        var wrong: [String] = []
        for row in rows {
            do {
                try row.call()
                wrong.append("\(row.what): succeeded, expected \(row.errno)")
            } catch {
                if error as? Errno != row.errno { wrong.append("\(row.what): \(error), expected \(row.errno)") }
            }
            if let v = s.invariantViolation() { wrong.append("\(row.what): \(v)") }
            if ModelDigest(s, [p, q], files: files, shmKeys: [42]) != before {
                wrong.append("\(row.what): changed state")
            }
        }
        #expect(wrong == [], "\(wrong.joined(separator: "\n"))")
        #expect(rows.count >= 125, "the table has \(rows.count) rows")
        print("bad input: \(rows.count) rows, each its errno, nothing changed: \(wrong.isEmpty)")
        // brk never fails: outside [start_brk, end_brk] it returns the break unchanged.
        #expect(try p.brk(0x1000).u == 0)
        #expect(ModelDigest(s, [p, q], files: files, shmKeys: [42]) == before)
        try s.freePages(at: run, order: Order(1))
        #expect(everythingBackViolation(s, [p, q]) == nil)
    }
}
