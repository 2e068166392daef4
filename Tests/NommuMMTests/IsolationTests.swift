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

/// A process's secret: a byte pattern that zeroed memory never shows.
private let secret: UInt8 = 0xC3

/// Whether `count` bytes at `a` contain the secret byte anywhere.
private func showsSecret(_ a: VirtualAddress, _ count: Int) -> Bool {
    UnsafeRawBufferPointer(start: a.pointer, count: count).contains(secret)
}

@Suite("Isolation: a freed secret never reaches another process")
struct IsolationTests {
    /// Fills every free page of the machine with the secret through one process, then frees it all.
    private func spill(_ s: System) throws {
        let p = s.createProcess()
        var held: [VirtualAddress] = []
        while let a = try? p.mmap(length: 16 * page, protection: rw, flags: anon) {
            a.pointer!.initializeMemory(as: UInt8.self, repeating: secret, count: Int(16 * page))
            held.append(a)
        }
        while let a = try? p.mmap(length: page, protection: rw, flags: anon) {
            a.pointer!.initializeMemory(as: UInt8.self, repeating: secret, count: Int(page))
            held.append(a)
        }
        p.exit()
    }

    @Test("every path that hands out memory without MAP_UNINITIALIZED clears it", arguments: [false, true])
    func everyPath(allowUninitialized: Bool) throws {
        let s = try makeSystem(pages: 1024, allowUninitialized: allowUninitialized)
        try spill(s)
        let q = s.createProcess()
        // Anonymous memory (MAP_UNINITIALIZED only where asked and allowed).
        let a = try q.mmap(length: 5 * page, protection: rw, flags: anon)
        #expect(!showsSecret(a, Int(5 * page)), "anonymous")
        // MAP_SHARED | MAP_ANONYMOUS is private memory too.
        let sa = try q.mmap(length: 2 * page, protection: rw, flags: [.shared, .anonymous])
        #expect(!showsSecret(sa, Int(2 * page)), "shared anonymous")
        // A private copy of a short file: the tail past EOF is cleared.
        try q.writeFile("/data/short", [1, 2, 3])
        let c = try q.mmap(length: 3 * page, protection: rw, flags: .private, fd: try q.open("/data/short"))
        #expect(!showsSecret(c, Int(3 * page)), "private copy")
        // ramfs truncate-for-mapping: zeroed pages.
        let fd = try q.open("/dev/shm/z", [.readWrite, .create])
        try q.ftruncate(fd, length: Int64(4 * page))
        let z = try q.mmap(length: 4 * page, protection: rw, flags: .shared, fd: fd)
        #expect(!showsSecret(z, Int(4 * page)), "ramfs truncate")
        // Pages ramfs takes for write(): zeroed around the data.
        let w = try q.open("/tmp/w", [.readWrite, .create])
        _ = try q.pwrite(w, [7], offset: Int64(page) + 100)
        #expect(try q.pread(w, count: Int(2 * page), offset: 0).allSatisfy { $0 != secret }, "ramfs write")
        // SysV shm.
        let id = try q.shmget(key: 0, size: 3 * Int(page), flags: SharedMemory.create)
        let m = try q.shmat(id)
        #expect(!showsSecret(m, Int(3 * page)), "SysV shm")
        // The ramdisk, allocated at first open.
        let rd = try q.open("/dev/ram0", .readWrite)
        #expect(try q.pread(rd, count: 64 * Int(page), offset: 0).allSatisfy { $0 != secret }, "ramdisk")
        // The frame buffer.
        let fbfd = try q.open("/dev/fb0", .readWrite)
        let fb = try q.mmap(length: 8 * page, protection: rw, flags: .shared, fd: fbfd)
        #expect(!showsSecret(fb, Int(8 * page)), "frame buffer")
        // /dev/zero private: a zero-filled copy even with MAP_UNINITIALIZED.
        let zd = try q.mmap(
            length: 2 * page, protection: rw, flags: [.private, .uninitialized], fd: try q.open("/dev/zero"))
        #expect(!showsSecret(zd, Int(2 * page)), "/dev/zero")
        // exec: the bss is cleared; the brk+stack region is cleared unless uninitialised
        // mappings are allowed (MAP_UNINITIALIZED, as ELF-FDPIC maps it).
        try s.romfsAdd(path: "/rom/prog", syntheticELF())
        let child = try q.vfork()
        let image = try child.exec("/rom/prog")
        let data = image.segments[1]
        #expect(!showsSecret(data.address + UInt(data.fileSize), data.memorySize - data.fileSize), "exec bss")
        if !allowUninitialized {
            #expect(!showsSecret(image.startBrk, image.stackSize), "brk and stack")
        }
        #expect(everythingBackViolation(s, [q, child]) == nil)
    }

    @Test("a process cannot unmap, remap, detach or futex another's private mappings")
    func noReach() throws {
        let s = try makeSystem()
        let a = s.createProcess()
        let b = s.createProcess()
        let m = try a.mmap(length: 2 * page, protection: rw, flags: anon)
        let id = try a.shmget(key: 0, size: Int(page), flags: SharedMemory.create)
        let at = try a.shmat(id)
        let before = Snapshot(s, [a, b])
        expectErrno(.invalidArgument, "munmap") { try b.munmap(address: m.u, length: 2 * page) }
        expectErrno(.invalidArgument, "mremap") { _ = try b.mremap(address: m.u, oldLength: 2 * page, newLength: page) }
        expectErrno(.invalidArgument, "shmdt") { try b.shmdt(at.u) }
        expectErrno(.badAddress, "futex") { _ = try b.futex(m.u, Futex.wake, 1) }
        #expect(Snapshot(s, [a, b]) == before)
        let theirs = try b.readFile("/proc/self/maps")
        #expect(!theirs.contains(String(m.u, radix: 16)), "b's maps do not list a's mapping")
        #expect(everythingBackViolation(s, [a, b]) == nil)
    }
}

extension VirtualAddress {
    fileprivate static func + (a: VirtualAddress, b: UInt) -> VirtualAddress { VirtualAddress(a.rawValue + b) }
}

@Suite("Isolation: no race hands a process another object")
struct RaceIsolationTests {
    @Test("shmat racing IPC_RMID and a new segment maps the segment asked for or fails, never the new one")
    func shmatRacingRemoval() throws {
        let s = try System(.init(arenaBytes: 16 << 20))
        let p = s.createProcess()
        let q = s.createProcess()
        let wrong = HostMutex<[String]>([])
        let rounds = ProcessEnvironment.int("NOMMU_RACE_ROUNDS", default: 20000)
        for round in 0..<rounds {
            // S1 is one page; S2, made while P attaches S1, two.
            let s1 = try q.shmget(key: SharedMemory.privateKey, size: 4096, flags: SharedMemory.create | 0o600)
            let attached = HostMutex<UInt?>(nil)
            runOnThreads(2) { t in
                if t == 0 {
                    if let a = try? p.shmat(s1) { attached.withLock { $0 = a.rawValue } }
                } else {
                    try? q.shmRemove(s1)
                    let s2 = try? q.shmget(key: 0x5eed, size: 8192, flags: SharedMemory.create | 0o600)
                    if let s2 { try? q.shmRemove(s2) }
                }
            }
            if let a = attached.withLock({ $0 }) {
                let m = p.mappings.first { $0.start.rawValue == a }
                // S1's inode is named for the private key; S2's for 0x5eed.
                if m?.path?.hasPrefix("/SYSV00000000") != true {
                    wrong.withLock { $0.append("round \(round): \(m.map { "\($0)" } ?? "no mapping")") }
                }
                try p.shmdt(a)
            }
        }
        let found = wrong.withLock { $0 }
        #expect(found.isEmpty, "\(found.count) of \(rounds) rounds mapped another segment: \(found.prefix(3))")
        p.exit()
        q.exit()
        #expect(s.invariantViolation() == nil)
    }
}

extension RaceIsolationTests {
    @Test("exec racing the process's exit: the exec fails or completes, nothing of another process is touched")
    func execRacingExit() throws {
        let ls = try #require(readHostFile("/bin/ls"), "the host has /bin/ls")
        let s = try System(.init(arenaBytes: 32 << 20))
        try s.romfsAdd(path: "/rom/ls", ls)
        let bystander = s.createProcess()
        let mine = try bystander.mmap(length: 4096, protection: [.read, .write], flags: [.private, .anonymous])
        let before = bystander.mappings
        for _ in 0..<ProcessEnvironment.int("NOMMU_RACE_ROUNDS", default: 20000) / 5 {
            let p = s.createProcess()
            runOnThreads(2) { t in
                if t == 0 { _ = try? p.exec("/rom/ls") } else { p.exit() }
            }
            p.exit()
            // A process made now may reuse the slot of an address space the exec let go of.
            let q = s.createProcess()
            _ = try? q.mmap(length: 8192, protection: [.read], flags: [.private, .anonymous])
            q.exit()
        }
        #expect(bystander.mappings == before, "the bystander's mappings did not change")
        try bystander.munmap(address: mine.rawValue, length: 4096)
        bystander.exit()
        #expect(s.invariantViolation() == nil)
        #expect(s.regionCount == 0, "every region went with its process")
    }
}
