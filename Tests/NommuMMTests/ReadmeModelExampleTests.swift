// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuMM
import NommuReports
import NommuTestSupport
import Testing

@Suite("README example: the address space")
struct ReadmeModelExampleTests {
    @Test func example() throws {
        let system = try System(.init(arenaBytes: 64 << 20, allowUninitialized: true))
        let p = system.createProcess()
        let a = try p.mmap(length: 3 * 4096, protection: [.read, .write], flags: [.private, .anonymous])
        try p.munmap(address: a.rawValue + 4096, length: 4096)  // a middle cut: two mappings now
        let maps = try p.readFile("/proc/self/maps")
        #expect(maps.split(separator: "\n").count == 2)
        #expect(maps.hasSuffix(" rw-p 00000000 00:00 0 \n"))
        p.exit()
        #expect(everythingBackViolation(system, [p]) == nil)
    }
}

@Suite("README example: files and shared memory")
struct ReadmeFilesExampleTests {
    @Test func example() throws {
        let system = try System()
        let (a, b) = (system.createProcess(), system.createProcess())
        let fd = try a.shmOpen("/ring", [.readWrite, .create])  // POSIX shm on /dev/shm
        try a.ftruncate(fd, length: 8192)  // gathers 2 contiguous zeroed pages
        let x = try a.mmap(length: 8192, protection: [.read, .write], flags: .shared, fd: fd)
        let y = try b.mmap(
            length: 8192, protection: [.read, .write], flags: .shared, fd: try b.shmOpen("ring", .readWrite))
        #expect(x == y)
        let id = try a.shmget(key: 0x1234, size: 5000, flags: SharedMemory.create | 0o600)  // SysV: pages now
        let s1 = try a.shmat(id)
        let s2 = try b.shmat(id)
        #expect(s1 == s2)
        #expect(throws: Errno.invalidArgument) { _ = try a.shmat(id, address: s1.rawValue) }
        try a.shmRemove(id)
        try a.shmUnlink("ring")
        #expect(everythingBackViolation(system, [a, b]) == nil)
    }
}

@Suite("nommu maps demo")
struct MapsDemoTests {
    @Test("the session runs, splits, shrinks, and ends with every page back", arguments: [0, 1, 2])
    func session(trim: Int) throws {
        let text = try MapsDemo.run(nrTrimPages: trim)
        #expect(text.contains("vm.nr_trim_pages = \(trim)"))
        #expect(text.contains("-- /proc/3/maps"))
        #expect(text.contains(" 00001000 00:00 0 \n"), "the upper part of the split region, pgoff one page")
        #expect(
            text.hasSuffix(
                "MmapCopy:              0 kB\n-- /proc/buddyinfo: Node 0, zone   Normal"
                    + "      0      0      0      0      0      0      0      0      0      0      2 \n"))
    }
}
