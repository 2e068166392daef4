// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuMM
import NommuReports
import NommuTestSupport
import PageAllocator
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A small ELF64 executable: text (R-X, 200 bytes at file offset 0x1000, vaddr 0x401000),
/// data (RW-, 64 bytes at 0x2010, vaddr 0x403010, memsz 0x1800: the rest is bss), and
/// PT_GNU_STACK asking for 64 KiB. The file bytes after the data are 0xCC, so a bss that is
/// not cleared shows.
func syntheticELF() -> [UInt8] {
    var f = [UInt8](repeating: 0xCC, count: 0x3000)
    func put(_ v: UInt64, _ at: Int, _ size: Int) {
        for i in 0..<size { f[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }
    for i in 0..<64 { f[i] = 0 }
    f[0] = 0x7f
    f[1] = 0x45
    f[2] = 0x4c
    f[3] = 0x46
    f[4] = 2  // ELFCLASS64
    f[5] = 1  // little-endian
    f[6] = 1
    put(2, 16, 2)  // ET_EXEC
    put(62, 18, 2)  // x86-64
    put(1, 20, 4)
    put(0x401010, 24, 8)  // entry
    put(64, 32, 8)  // phoff
    put(64, 52, 2)  // ehsize
    put(56, 54, 2)  // phentsize
    put(3, 56, 2)  // phnum
    func phdr(_ i: Int, type: UInt64, flags: UInt64, offset: UInt64, vaddr: UInt64, filesz: UInt64, memsz: UInt64) {
        let at = 64 + i * 56
        put(type, at, 4)
        put(flags, at + 4, 4)
        put(offset, at + 8, 8)
        put(vaddr, at + 16, 8)
        put(vaddr, at + 24, 8)
        put(filesz, at + 32, 8)
        put(memsz, at + 40, 8)
        put(0x1000, at + 48, 8)
    }
    phdr(0, type: 1, flags: 5, offset: 0x1000, vaddr: 0x401000, filesz: 200, memsz: 200)
    phdr(1, type: 1, flags: 6, offset: 0x2010, vaddr: 0x403010, filesz: 64, memsz: 0x1800)
    phdr(2, type: 0x6474_e551, flags: 6, offset: 0, vaddr: 0, filesz: 0, memsz: 0x10000)
    for i in 0..<200 { f[0x1000 + i] = UInt8(i) }
    for i in 0..<64 { f[0x2010 + i] = 0xD0 }
    return f
}

@Suite("exec: ELF-FDPIC loading (load_elf_fdpic_binary)")
struct ExecTests {
    @Test("a synthetic ELF: text in place from /rom, data copied with its bss cleared, brk and [stack]")
    func synthetic() throws {
        let s = try makeSystem()
        let a = s.createProcess()
        let b = s.createProcess()
        try dirtyArena(s, a)
        try s.romfsAdd(path: "/rom/bin/prog", syntheticELF())
        let ia = try a.exec("/rom/bin/prog")
        let ib = try b.exec("/rom/bin/prog")
        #expect(ia.segments.count == 2)
        let (text, data) = (ia.segments[0], ia.segments[1])
        #expect(text.inPlace && text.address == ib.segments[0].address, "XIP text, shared")
        #expect(bytes(text.address, 200) == (0..<200).map { UInt8($0) })
        #expect(!data.inPlace && data.address != ib.segments[1].address, "each process its own data")
        #expect(data.address.rawValue & 0xfff == 0x010, "the data keeps its offset within the page")
        #expect(bytes(data.address, 64).allSatisfy { $0 == 0xD0 })
        #expect(bytes(data.address, 0x1800 - 64, offset: 64).allSatisfy { $0 == 0 }, "bss cleared")
        #expect(ia.entry.rawValue == text.address.rawValue + 0x10)
        #expect(ia.stackSize == 0x10000)
        #expect(bytes(ia.startBrk, ia.stackSize).allSatisfy { $0 == 0 }, "cleared: uninitialised not allowed")
        let maps = try a.readFile("/proc/self/maps")
        #expect(maps.contains("[stack]") && maps.contains("/rom/bin/prog"))
        // brk: ELF-FDPIC leaves no room (end_brk = start_brk), so it never moves.
        #expect(ia.endBrk == ia.startBrk)
        #expect(try a.brk(0) == ia.startBrk)
        #expect(try a.brk(ia.startBrk.rawValue + 5000) == ia.startBrk, "row 80: beyond end_brk, the old break")
        #expect(try a.brk(ia.startBrk.rawValue) == ia.startBrk)
        // exec again replaces the address space.
        let count = a.mappings.count
        _ = try a.exec("/rom/bin/prog")
        #expect(a.mappings.count == count)
        #expect(everythingBackViolation(s, [a, b]) == nil)
    }

    @Test("malformed or non-ELF files are ENOEXEC and change nothing; non-files are EACCES")
    func refused() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let keep = try p.mmap(length: page, protection: rw, flags: anon)
        try p.writeFile("/tmp/script", Array("#!/bin/sh\n".utf8))
        var truncated = syntheticELF()
        truncated.removeLast(0x3000 - 0x1100)  // the data segment's bytes are missing
        try p.writeFile("/tmp/trunc", truncated)
        try p.writeFile("/dev/shm/prog", syntheticELF())
        let before = Snapshot(s, [p])
        expectErrno(.execFormatError, "script") { _ = try p.exec("/tmp/script") }
        expectErrno(.execFormatError, "truncated") { _ = try p.exec("/tmp/trunc") }
        expectErrno(.permissionDenied, "noexec /dev/shm") { _ = try p.exec("/dev/shm/prog") }
        expectErrno(.permissionDenied, "device") { _ = try p.exec("/dev/zero") }
        expectErrno(.noSuchFileOrDirectory, "missing") { _ = try p.exec("/tmp/none") }
        #expect(Snapshot(s, [p]) == before)
        try p.munmap(address: keep.u, length: page)
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("a vfork child's exec leaves the parent's address space; ENOMEM rolls back")
    func vforkExec() throws {
        let s = try makeSystem(pages: 64)
        let p = s.createProcess()
        let m = try p.mmap(length: page, protection: rw, flags: anon)
        let c = try p.vfork()
        try s.romfsAdd(path: "/rom/prog", syntheticELF())
        _ = try c.exec("/rom/prog")
        #expect(p.mappings.map(\.start) == [m], "the parent keeps its mapping")
        #expect(c.mappings.count == 3)
        // Not enough memory for the 64 KiB stack: nothing changes.
        let d = s.createProcess()
        var hogs: [VirtualAddress] = []
        while let x = try? d.mmap(length: 16 * page, protection: rw, flags: anon) { hogs.append(x) }
        let before = Snapshot(s, [p, c, d])
        expectErrno(.noMemory, "no room for the stack") { _ = try d.exec("/rom/prog") }
        #expect(Snapshot(s, [p, c, d]) == before)
        for x in hogs { try d.munmap(address: x.u, length: 16 * page) }
        #expect(everythingBackViolation(s, [p, c, d]) == nil)
    }

    @Test("exec holds its file outside the descriptor table: it works with every descriptor taken, and leaves none")
    func execNeedsNoDescriptor() throws {
        let ls = try #require(readHostFile("/bin/ls"), "the host has /bin/ls")
        let s = try makeSystem(pages: 8192)
        let p = s.createProcess()
        try s.romfsAdd(path: "/rom/ls", ls)
        try p.writeFile("/tmp/f", [1])
        var fds: [CInt] = []
        while let fd = try? p.open("/tmp/f", .readOnly) { fds.append(fd) }
        #expect(fds.count == 1024, "every descriptor taken")
        let image = try p.exec("/rom/ls")
        #expect(image.segments.count >= 2)
        expectErrno(.tooManyOpenFiles, "still every descriptor taken: exec left none open") {
            _ = try p.open("/tmp/f", .readOnly)
        }
        for fd in fds { try p.close(fd) }
        p.exit()
        #expect(s.invariantViolation() == nil)
    }

    @Test("a real host binary loads from /rom and /data; XIP saves the text")
    func hostBinary() throws {
        let ls = try #require(readHostFile("/bin/ls"), "the host has /bin/ls")
        let s = try makeSystem(pages: 8192)
        let procs = (0..<3).map { _ in s.createProcess() }
        try s.romfsAdd(path: "/rom/ls", ls)
        try procs[0].writeFile("/data/ls", ls)
        let x1 = try procs[0].exec("/rom/ls")
        let x2 = try procs[1].exec("/rom/ls")
        #expect(x1.segments.filter(\.inPlace).count >= 1)
        #expect(x1.interpreter != nil, "a dynamic executable names its interpreter")
        let text1 = try #require(x1.segments.first { $0.protection.contains(.exec) })
        let text2 = try #require(x2.segments.first { $0.protection.contains(.exec) })
        #expect(text1.address == text2.address)
        let d = try procs[2].exec("/data/ls")
        let dtext = try #require(d.segments.first { $0.protection.contains(.exec) })
        #expect(!dtext.inPlace, "a disk file is copied")
        #expect(try procs[2].readFile("/proc/self/maps").contains("/data/ls"))
        #expect(everythingBackViolation(s, procs) == nil)
    }
}

@Suite("nommu exec-map")
struct ExecMapTests {
    @Test("from /rom text is in place; from /data it is one shared copy; the figures add up")
    func report() throws {
        let ls = try #require(readHostFile("/bin/ls"), "the host has /bin/ls")
        let rom = try ExecMap.run(files: [("ls", ls)], instances: 3, from: .rom)
        #expect(rom.rows.count == 3)
        #expect(rom.rows.allSatisfy { $0.inPlaceBytes > 0 && $0.sharedBytes == 0 })
        #expect(rom.ramBytes == rom.rows.reduce(0) { $0 + $1.privateBytes })
        #expect(rom.unsharedBytes == rom.rows.reduce(0) { $0 + $1.privateBytes + $1.inPlaceBytes })
        let data = try ExecMap.run(files: [("ls", ls)], instances: 3, from: .data)
        #expect(data.rows.allSatisfy { $0.inPlaceBytes == 0 && $0.sharedBytes > 0 })
        #expect(data.ramBytes == data.rows[0].sharedBytes + data.rows.reduce(0) { $0 + $1.privateBytes })
        #expect(data.report.contains("/proc/maps") && data.report.contains("[stack]"))
        #expect(rom.ramBytes < data.ramBytes, "XIP needs no RAM for text")
        // A file that is not an ELF executable is left out, with why; the others still load.
        let mixed = try ExecMap.run(files: [("x", [1, 2, 3]), ("ls", ls)], instances: 2, from: .rom)
        #expect(mixed.failures.map(\.program) == ["x"] && mixed.failures.map(\.error) == [.execFormatError])
        #expect(mixed.rows.map(\.program) == ["ls", "ls"])
        #expect(mixed.report.contains("not loaded:\n  x: ENOEXEC"))
        #expect(rom.interpreters.map(\.program) == ["ls"], "a dynamic ls names its interpreter once")
    }
}
