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

@Suite("Files: threads")
struct FileConcurrencyTests {
    @Test("8 threads, each a process: files, shared mappings, SysV, pipes, /proc at once")
    func stress() throws {
        let threads = ProcessEnvironment.int("NOMMU_STRESS_THREADS", default: 8)
        let ops = ProcessEnvironment.int("NOMMU_STRESS_OPS", default: 20_000) / 10
        let s = try makeSystem(pages: 4096, trim: 1)
        let problems = HostMutex<[String]>([])
        runOnThreads(threads) { t in
            var rng = SeededRandom(seed: 91 + UInt64(t))
            let p = s.createProcess()
            let own = "/tmp/t\(t)"
            let common = "/dev/shm/common\(t % 2)"
            var maps: [(VirtualAddress, UInt, UInt8?)] = []  // cookie: private data to check
            for _ in 0..<ops {
                do {
                    switch rng.next() % 10 {
                    case 0, 1:
                        // Our own file: write, map privately, the copy must keep its bytes.
                        let fd = try p.open(own, [.readWrite, .create])
                        let cookie = UInt8(truncatingIfNeeded: rng.next()) | 1
                        _ = try p.pwrite(fd, [UInt8](repeating: cookie, count: 3000), offset: 0)
                        let a = try p.mmap(length: page, protection: rw, flags: .private, fd: fd)
                        try p.close(fd)
                        maps.append((a, page, cookie))
                    case 2, 3:
                        // A file other threads share: truncate it into being, map it shared.
                        let fd = try p.open(common, [.readWrite, .create])
                        try? p.ftruncate(fd, length: Int64(2 * page))
                        if let a = try? p.mmap(length: 2 * page, protection: rw, flags: .shared, fd: fd) {
                            a.pointer!.storeBytes(of: UInt8(t), toByteOffset: t, as: UInt8.self)
                            maps.append((a, 2 * page, nil))
                        }
                        try p.close(fd)
                    case 4:
                        let id = try p.shmget(key: 77, size: 3 * Int(page), flags: SharedMemory.create)
                        let a = try p.shmat(id)
                        a.pointer!.storeBytes(of: UInt8(t), toByteOffset: 100 + t, as: UInt8.self)
                        try p.shmdt(a.u)
                    case 5, 6:
                        guard !maps.isEmpty else { continue }
                        let (a, len, cookie) = maps.remove(at: Int(rng.next() % UInt64(maps.count)))
                        if let cookie,
                            !Cookie.isFilled(UnsafeRawBufferPointer(start: a.pointer, count: 3000), with: cookie)
                        {
                            problems.withLock { $0.append("thread \(t): a private copy changed") }
                        }
                        try p.munmap(address: a.u, length: len)
                    case 7:
                        let (r, w) = try p.pipe()
                        _ = try p.write(w, [UInt8(t)])
                        if try p.read(r, count: 1) != [UInt8(t)] { problems.withLock { $0.append("pipe") } }
                        try p.close(r)
                        try p.close(w)
                    case 8:
                        _ = try p.readFile("/proc/maps")
                        _ = try p.readFile("/proc/self/maps")
                    default:
                        try? p.unlink(own)
                    }
                } catch {
                    problems.withLock { $0.append("thread \(t): \(error)") }
                }
            }
            p.exit()
        }
        #expect(problems.withLock { $0 } == [])
        #expect(s.invariantViolation() == nil)
        #expect(everythingBackViolation(s, []) == nil)
    }
}

@Suite("Files: bad input changes nothing")
struct FileBadInputTests {
    @Test("closed, foreign and negative descriptors; huge offsets and sizes; bad paths")
    func badInput() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let q = s.createProcess()
        let f = try p.open("/tmp/f", [.readWrite, .create])
        _ = try p.write(f, pattern(100))
        let d = try p.open("/data/d", [.readWrite, .create])
        _ = try p.write(d, pattern(100))
        try p.close(try p.open("/tmp/closed", [.readWrite, .create]))
        let before = Snapshot(s, [p, q])
        for fd: CInt in [-1, 99, 1 << 30] {
            expectErrno(.badFileDescriptor, "read \(fd)") { _ = try p.read(fd, count: 1) }
            expectErrno(.badFileDescriptor, "write \(fd)") { _ = try p.write(fd, [1]) }
            expectErrno(.badFileDescriptor, "close \(fd)") { try p.close(fd) }
            expectErrno(.badFileDescriptor, "ftruncate \(fd)") { try p.ftruncate(fd, length: 0) }
            expectErrno(.badFileDescriptor, "mmap \(fd)") {
                _ = try p.mmap(length: page, protection: .read, flags: .private, fd: fd)
            }
        }
        expectErrno(.badFileDescriptor, "foreign") { _ = try q.read(f, count: 1) }
        expectErrno(.badFileDescriptor, "foreign mmap") {
            _ = try q.mmap(length: page, protection: .read, flags: .shared, fd: f)
        }
        // Huge offsets and sizes.
        expectErrno(.overflow, "pgoff + pages wraps") {
            _ = try p.mmap2(length: 2 * page, protection: .read, flags: .private, fd: f, pageOffset: UInt.max)
        }
        expectErrno(.invalidArgument, "unaligned offset") {
            _ = try p.mmap(length: page, protection: .read, flags: .private, fd: f, offset: 5)
        }
        expectErrno(.operationNotSupportedByDevice, "shared past EOF") {
            _ = try p.mmap(length: page, protection: .read, flags: .shared, fd: f, offset: Int64(1) << 40)
        }
        #expect(try p.pread(f, count: 10, offset: Int64.max - 5) == [], "reads past EOF are empty")
        expectErrno(.fileTooLarge, "pwrite past the largest offset") {
            _ = try p.pwrite(f, [1, 2, 3], offset: Int64.max - 1)
        }
        expectErrno(.invalidArgument, "negative offset") { _ = try p.pwrite(f, [1], offset: -1) }
        expectErrno(.invalidArgument, "negative count") { _ = try p.read(f, count: -1) }
        expectErrno(Errno(rawValue: EINVAL), "host truncate to a negative size") { try p.ftruncate(d, length: -5) }
        // Paths.
        expectErrno(.noSuchFileOrDirectory, "empty path") { _ = try p.open("") }
        expectErrno(.noSuchFileOrDirectory, "outside the tree") { _ = try p.open("/usr/bin/ls") }
        expectErrno(.noSuchFileOrDirectory, "escaping with ..") { _ = try p.open("/tmp/../etc/passwd") }
        expectErrno(.fileNameTooLong, "long name") { _ = try p.open("/tmp/" + String(repeating: "x", count: 300)) }
        expectErrno(.fileNameTooLong, "long path") { try p.unlink("/tmp/" + String(repeating: "x/", count: 2100)) }
        expectErrno(.noSuchFileOrDirectory, "unlink outside") { try p.unlink("/etc/passwd") }
        expectErrno(.fileExists, "mkfifo over a file") { try p.mkfifo("/tmp/f") }
        expectErrno(.invalidArgument, "romfs outside /rom") { try s.romfsAdd(path: "/data/x", [1]) }
        #expect(Snapshot(s, [p, q]) == before)
        #expect(try p.pread(f, count: 200, offset: 0) == pattern(100), "the file is unchanged")
        #expect(everythingBackViolation(s, [p, q]) == nil)
    }
}
