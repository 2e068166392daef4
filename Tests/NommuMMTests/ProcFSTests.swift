// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuMM
import NommuTestSupport
import PageAllocator
import Testing

private func hex8(_ v: UInt) -> String {
    let h = String(v, radix: 16)
    return String(repeating: "0", count: max(0, 8 - h.count)) + h
}

@Suite("/proc, byte for byte (fs/proc/nommu.c, task_nommu.c; rows 68–72, 79)")
struct ProcFSTests {
    @Test("row 68: /proc/maps lists regions; row 70: /proc/<pid>/maps shows the shrunk VMA")
    func maps() throws {
        let s = try makeSystem(trim: 0)
        let p = s.createProcess()
        let q = s.createProcess()
        let a = try p.mmap(length: 3 * page, protection: rw, flags: anon)
        let b = try q.mmap(length: page, protection: [.read, .exec], flags: anon)
        _ = try p.mremap(address: a.u, oldLength: 3 * page, newLength: page)
        let lineA = "\(hex8(a.u))-\(hex8(a.u + 3 * page)) rw-p 00000000 00:00 0 \n"
        let lineB = "\(hex8(b.u))-\(hex8(b.u + page)) r-xp 00000000 00:00 0 \n"
        #expect(try p.readFile("/proc/maps") == (a < b ? lineA + lineB : lineB + lineA))
        #expect(s.procMaps() == (a < b ? lineA + lineB : lineB + lineA))
        #expect(try p.readFile("/proc/self/maps") == "\(hex8(a.u))-\(hex8(a.u + page)) rw-p 00000000 00:00 0 \n")
        #expect(try q.readFile("/proc/\(q.pid)/maps") == lineB)
        // Another user's process's mappings are not for reading (mm_access); a vfork child
        // shares its parent's address space and may (ProcCredentialTests has the rest).
        try q.setuid(1000)
        try p.setuid(1001)
        #expect(throws: Errno.permissionDenied) { _ = try p.readFile("/proc/\(q.pid)/maps") }
        #expect(throws: Errno.permissionDenied) { _ = try p.open("/proc/\(q.pid)/maps") }
        #expect(try p.readFile("/proc/\(q.pid)/status").contains("Mem:"), "status shows sizes only")
        // name_to_int: digits only, no leading zero.
        for name in ["0\(q.pid)", "+\(q.pid)", " \(q.pid)", "\(q.pid) ", "0", "-\(q.pid)", "4294967297"] {
            #expect(throws: Errno.noSuchFileOrDirectory, "/proc/\(name)/status") {
                _ = try p.readFile("/proc/\(name)/status")
            }
        }
        let child = try q.vfork()
        #expect(try child.readFile("/proc/\(q.pid)/maps") == lineB)
        #expect(try q.readFile("/proc/\(child.pid)/maps") == lineB)
        child.exit()
        #expect(try q.readFile("/proc/self/maps") == lineB, "self is the caller")
        #expect(everythingBackViolation(s, [p, q]) == nil)
    }

    @Test("row 71: the anonymous VMA holding start_stack is labelled [stack] at column 73")
    func stackLabel() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let a = try p.mmap(length: 2 * page, protection: rw, flags: anon)
        p.setStartStack(a.u + page)
        let text = try p.readFile("/proc/self/maps")
        let line = try #require(text.split(separator: "\n").first)
        #expect(line.hasSuffix(" [stack]"))
        #expect(line.firstRange(of: "[stack]")!.lowerBound.utf16Offset(in: line) == 73)
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("row 72: MmapCopy in /proc/meminfo is mmap_pages_allocated in kB")
    func meminfo() throws {
        let s = try makeSystem(pages: 1024, trim: 0)
        let p = s.createProcess()
        _ = try p.mmap(length: 3 * page, protection: rw, flags: anon)
        let text = try p.readFile("/proc/meminfo")
        #expect(text.contains("MmapCopy:             16 kB\n"))
        #expect(text.contains("MemTotal:           4096 kB\n"))
        #expect(try p.readFile("/proc/buddyinfo") == s.allocator.statistics().buddyInfo)
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("MemFree counts the buddy lists only: pages on per-CPU lists are free but not NR_FREE_PAGES")
    func memFreeWithoutPerCPUPages() throws {
        let s = try makeSystem(pages: 1024)
        let p = s.createProcess()
        // A 4 KiB mapping comes from, and goes back to, this thread's per-CPU list.
        let a = try p.mmap(length: page, protection: rw, flags: anon)
        try p.munmap(address: a.u, length: page)
        let st = s.allocator.statistics()
        #expect(st.perCPUPages > 0 && st.perCPUPages + st.freePages == 1024)
        let kb = String(st.freePages * 4)
        let line = "MemFree:" + String(repeating: " ", count: 8 + 8 - kb.count) + kb + " kB\n"
        let text = try p.readFile("/proc/meminfo")
        #expect(text.contains(line), "\(text)")
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("/proc/<pid>/status: Mem, Slack (mremap shrinkage), Shared (vfork)")
    func status() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let a = try p.mmap(length: 4 * page, protection: rw, flags: anon)
        _ = try p.mremap(address: a.u, oldLength: 4 * page, newLength: page)
        let text = try p.readFile("/proc/self/status")
        #expect(text.contains("Slack:\t   12288 bytes\n"))
        #expect(text.contains("Shared:\t       0 bytes\n"))
        let mem = 192 + 96 + 4 * 4096 + 1024 + 64 + 704 + 2112 + 16384
        #expect(text.contains("Mem:\t" + String(repeating: " ", count: 8 - String(mem).count) + "\(mem) bytes\n"))
        let child = try p.vfork()
        // Shared by vfork: the region (96 + 4 pages) and the mm (1024) count as shared.
        let shared = 96 + 4 * 4096 + 1024
        #expect(try child.readFile("/proc/self/status").contains("Shared:\t   \(shared) bytes\n"))
        #expect(everythingBackViolation(s, [p, child]) == nil)
    }

    @Test("rows 29, 79: vm.nr_trim_pages read and written through /proc; no max_map_count")
    func sysctl() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        #expect(try p.readFile("/proc/sys/vm/nr_trim_pages") == "1\n")
        let fd = try p.open("/proc/sys/vm/nr_trim_pages", .writeOnly)
        #expect(try p.write(fd, Array("0\n".utf8)) == 2)
        #expect(s.nrTrimPages == 0)
        #expect(throws: Errno.invalidArgument) { _ = try p.pwrite(fd, Array("-1".utf8), offset: 0) }
        #expect(throws: Errno.invalidArgument) { _ = try p.pwrite(fd, Array("abc".utf8), offset: 0) }
        #expect(s.nrTrimPages == 0)
        #expect(throws: Errno.badFileDescriptor) { _ = try p.read(fd, count: 10) }
        try p.close(fd)
        #expect(throws: Errno.noSuchFileOrDirectory) { _ = try p.open("/proc/sys/vm/max_map_count") }
        // pread leaves the offset (fuzz-cabi found it moving: regression-sysctl-pread-offset).
        let rw = try p.open("/proc/sys/vm/nr_trim_pages", .readWrite)
        #expect(try p.pread(rw, count: 10, offset: 0) == Array("0\n".utf8))
        #expect(try p.read(rw, count: 10) == Array("0\n".utf8), "read starts at offset 0 still")
        try p.close(rw)
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("vm.overcommit_*: the kernel's handlers (0...2; ratio and kbytes zero each other), and no mapping minds them")
    func overcommitSysctls() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let vm = "/proc/sys/vm/"
        #expect(try p.readFile(vm + "overcommit_memory") == "0\n")
        #expect(try p.readFile(vm + "overcommit_ratio") == "50\n")
        #expect(try p.readFile(vm + "overcommit_kbytes") == "0\n")
        #expect(throws: Errno.invalidArgument) { try p.writeFile(vm + "overcommit_memory", Array("3".utf8)) }
        #expect(throws: Errno.invalidArgument) { try p.writeFile(vm + "overcommit_kbytes", Array("-4".utf8)) }
        try p.writeFile(vm + "overcommit_ratio", Array("-7".utf8))  // proc_dointvec: any int
        #expect(try p.readFile(vm + "overcommit_ratio") == "-7\n")
        try p.writeFile(vm + "overcommit_kbytes", Array("18446744073709551615".utf8))
        #expect(try p.readFile(vm + "overcommit_kbytes") == "18446744073709551615\n")
        #expect(try p.readFile(vm + "overcommit_ratio") == "0\n", "a kbytes write zeroes the ratio")
        try p.writeFile(vm + "overcommit_ratio", Array("60".utf8))
        #expect(try p.readFile(vm + "overcommit_kbytes") == "0\n", "a ratio write zeroes the kbytes")
        try p.writeFile(vm + "overcommit_kbytes", Array("4".utf8))
        try p.writeFile(vm + "overcommit_memory", Array("2".utf8))
        #expect(try p.readFile(vm + "overcommit_memory") == "2\n")
        // Never overcommit, with a 4 kB limit: without an MMU do_mmap does not ask.
        let a = try p.mmap(length: 1 << 20, protection: [.read, .write], flags: [.private, .anonymous])
        try p.munmap(address: a.u, length: 1 << 20)
        #expect(throws: Errno.noSuchFileOrDirectory) { _ = try p.open(vm + "overcommit_bytes") }
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test(
        "vm.nr_trim_pages parses as proc_dointvec_minmax: blanks, a sign, C's bases, one value, the rest left",
        arguments: [
            ("5\n", 2, 5), ("  7", 3, 7), ("0x10\n", 5, 16), ("010", 3, 8), ("-0", 2, 0), ("4 5", 2, 4),
            ("9\t\n", 3, 9), ("", 0, 1), ("2147483647", 10, 2_147_483_647), ("0x", -1, 1), ("08", -1, 1),
            ("+3", -1, 1), ("-1", -1, 1), ("   ", -1, 1), ("2147483648", -1, 1), ("12a", -1, 1), ("1.5", -1, 1),
            ("000000000000000000001", -1, 1), ("00000000000000000001", 20, 1), ("3\r", -1, 1),
        ] as [(String, Int, Int)])
    func sysctlParsing(text: String, taken: Int, after: Int) throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let fd = try p.open("/proc/sys/vm/nr_trim_pages", .readWrite)
        if taken < 0 {
            #expect(throws: Errno.invalidArgument, "\(text.debugDescription)") { _ = try p.write(fd, Array(text.utf8)) }
        } else {
            #expect(try p.write(fd, Array(text.utf8)) == taken, "\(text.debugDescription)")
        }
        #expect(s.nrTrimPages == after, "\(text.debugDescription)")
        try p.close(fd)
        p.exit()
    }

    @Test("vm.nr_trim_pages: a write at a non-zero position is taken and ignored; a read there is end of file")
    func sysctlPositions() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let fd = try p.open("/proc/sys/vm/nr_trim_pages", .readWrite)
        #expect(try p.write(fd, Array("3".utf8)) == 1)
        #expect(try p.write(fd, Array("9\n".utf8)) == 2, "at offset 1: taken")
        #expect(s.nrTrimPages == 3, "and ignored")
        #expect(try p.pread(fd, count: 10, offset: 1) == [], "a read at a non-zero position is end of file")
        #expect(try p.pread(fd, count: 10, offset: 0) == Array("3\n".utf8))
        try p.close(fd)
        p.exit()
    }

    @Test("open, read, write and close refusals")
    func refusals() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        #expect(throws: Errno.noSuchFileOrDirectory) { _ = try p.open("/proc/nothing") }
        #expect(throws: Errno.noSuchFileOrDirectory) { _ = try p.open("proc/maps") }
        #expect(throws: Errno.noSuchFileOrDirectory) { _ = try p.open("/proc/999/maps") }
        #expect(throws: Errno.noSuchFileOrDirectory) { _ = try p.open("/data/x") }
        #expect(throws: Errno.isDirectory) { _ = try p.open("/proc", .writeOnly) }
        #expect(throws: Errno.invalidArgument) { _ = try p.open("/proc/maps", OpenFlags(rawValue: 3)) }
        #expect(throws: Errno.fileNameTooLong) { _ = try p.open("/proc/" + String(repeating: "x", count: 300)) }
        #expect(throws: Errno.fileNameTooLong) { _ = try p.open("/" + String(repeating: "a/", count: 3000)) }
        let dir = try p.open("/proc")
        #expect(throws: Errno.isDirectory) { _ = try p.read(dir, count: 1) }
        let fd = try p.open("/proc/meminfo")
        #expect(fd == 1, "the lowest free descriptor")
        #expect(throws: Errno.badFileDescriptor) { _ = try p.write(fd, [0x31]) }
        #expect(throws: Errno.badFileDescriptor) { _ = try p.read(42, count: 1) }
        #expect(throws: Errno.badFileDescriptor) { try p.close(42) }
        // mmap: a closed descriptor is EBADF; /proc/meminfo (a proc_create file) is COPY only,
        // so a shared mapping is ENODEV (ProcMmapTests has the private copy).
        #expect(throws: Errno.badFileDescriptor) {
            _ = try p.mmap(length: page, protection: .read, flags: .private, fd: 9)
        }
        #expect(throws: Errno.operationNotSupportedByDevice) {
            _ = try p.mmap(length: page, protection: .read, flags: .shared, fd: fd)
        }
        #expect(throws: Errno.invalidArgument, "validation comes before the missing mmap op") {
            _ = try p.mmap(length: 0, protection: .read, flags: .private, fd: fd)
        }
        try p.close(fd)
        try p.close(dir)
        var fds: [CInt] = []
        while let f = try? p.open("/proc/buddyinfo") { fds.append(f) }
        #expect(fds.count == 1024)
        #expect(throws: Errno.tooManyOpenFiles) { _ = try p.open("/proc/buddyinfo") }
        #expect(everythingBackViolation(s, [p]) == nil)
    }
}

@Suite("Credentials: uids, /proc/<pid>/maps as ptrace_may_access allows it, root's DAC override")
struct ProcCredentialTests {
    @Test("root reads every process's maps; a user its own uid's; setuid: root once, users only themselves")
    func mapsByUid() throws {
        let s = try makeSystem()
        let a = s.createProcess()
        let b = s.createProcess()
        _ = try b.mmap(length: page, protection: rw, flags: anon)
        #expect(try a.getuid() == 0 && b.getuid() == 0, "processes start as root")
        #expect(try a.readFile("/proc/\(b.pid)/maps").contains("rw-p"), "root reads another's maps")
        try b.setuid(1000)
        #expect(try a.readFile("/proc/\(b.pid)/maps").contains("rw-p"), "root reads a user's maps")
        try a.setuid(1000)
        // b changed its uid: its address space is undumpable, and only root reads its maps
        // (ptrace_may_access, as Linux 6.1 answers: the oracle's proc_maps_other_user).
        #expect(throws: Errno.permissionDenied) { _ = try a.readFile("/proc/\(b.pid)/maps") }
        // exec gives it a new, dumpable address space: then the same uid reads it.
        try s.romfsAdd(path: "/rom/prog", syntheticELF())
        _ = try b.exec("/rom/prog")
        #expect(try a.readFile("/proc/\(b.pid)/maps").contains("/rom/prog"), "the same uid reads them")
        #expect(throws: Errno.notPermitted, "a user cannot become another") { try a.setuid(0) }
        try a.setuid(1000)
        let c = s.createProcess()
        try c.setuid(2000)
        #expect(throws: Errno.permissionDenied) { _ = try c.readFile("/proc/\(b.pid)/maps") }
        #expect(throws: Errno.permissionDenied) { _ = try b.readFile("/proc/\(c.pid)/maps") }
        #expect(throws: Errno.invalidArgument) { try b.setuid(UInt32.max) }
        let child = try c.vfork()
        #expect(try child.getuid() == 2000, "vfork copies the uid")
        child.exit()
        for p in [a, b, c] { p.exit() }
        #expect(throws: Errno.noSuchProcess) { _ = try a.getuid() }
        #expect(s.invariantViolation() == nil)
    }

    @Test("root opens a read-only /proc file for writing (the write fails); a user gets EACCES")
    func rootOpensReadOnlyProcFiles() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let fd = try p.open("/proc/self/maps", .writeOnly)
        #expect(throws: Errno.invalidArgument, "a /proc/<pid> file has no write method") { _ = try p.write(fd, [1]) }
        let m = try p.open("/proc/meminfo", .writeOnly)
        #expect(throws: Errno.ioError, "proc_reg_write with no proc_write") { _ = try p.write(m, [1]) }
        try p.close(fd)
        try p.close(m)
        try p.setuid(1000)
        #expect(throws: Errno.permissionDenied) { _ = try p.open("/proc/self/maps", .writeOnly) }
        #expect(throws: Errno.permissionDenied) { _ = try p.open("/proc/meminfo", .readWrite) }
        let trim = try p.open("/proc/sys/vm/nr_trim_pages", .writeOnly)
        try p.close(trim)
        p.exit()
    }
}

@Suite("mmap of /proc files: proc_create files are copies, /proc/<pid> files have no mmap")
struct ProcMmapTests {
    @Test("a private mapping of /proc/meminfo is a copy of its text, zero past the end; shared is ENODEV")
    func meminfoCopy() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let fd = try p.open("/proc/meminfo")
        let text = try p.readFile("/proc/meminfo")
        let before = s.mmapPagesAllocated
        let a = try p.mmap(length: 2 * page, protection: .read, flags: .private, fd: fd)
        let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: a.u), count: Int(2 * page))
        #expect(String(decoding: bytes.prefix(text.utf8.count), as: UTF8.self).hasPrefix("MemTotal:"))
        #expect(bytes.dropFirst(text.utf8.count).allSatisfy { $0 == 0 }, "zero past the text")
        #expect(s.mmapPagesAllocated == before + 2, "a copy (MmapCopy)")
        #expect(throws: Errno.operationNotSupportedByDevice) {
            _ = try p.mmap(length: page, protection: .read, flags: .shared, fd: fd)
        }
        let w = try p.open("/proc/meminfo", .writeOnly)
        #expect(throws: Errno.permissionDenied) {
            _ = try p.mmap(length: page, protection: .read, flags: .private, fd: w)
        }
        let maps = try p.open("/proc/self/maps")
        #expect(throws: Errno.operationNotSupportedByDevice) {
            _ = try p.mmap(length: page, protection: .read, flags: .private, fd: maps)
        }
        #expect(p.mappings.first { $0.start == a }?.path == "/proc/meminfo")
        #expect(try p.readFile("/proc/self/maps").contains("/proc/meminfo"))
        #expect(throws: Errno.invalidArgument, "a file mapping: whole or nothing") {
            try p.munmap(address: a.u + page, length: page)
        }
        #expect(throws: Errno.notPermitted, "read-only private file mapping") {
            _ = try p.mremap(address: a.u, oldLength: 2 * page, newLength: page)
        }
        try p.munmap(address: a.u, length: 2 * page)
        #expect(s.mmapPagesAllocated == before)
        #expect(everythingBackViolation(s, [p]) == nil)
    }
}
