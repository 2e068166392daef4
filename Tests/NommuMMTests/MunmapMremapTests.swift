// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuMM
import NommuTestSupport
import PageAllocator
import Testing

@Suite("munmap and mremap: do_munmap, do_mremap (rows 49–67)")
struct MunmapMremapTests {
    @Test("rows 49, 50, 56, 57: refusals change nothing")
    func refusals() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let a = try p.mmap(length: 3 * page, protection: rw, flags: anon)
        let b = try p.mmap(length: 2 * page, protection: rw, flags: anon)
        let (lo, hi) = a < b ? (a, b) : (b, a)
        let before = Snapshot(s, [p])
        #expect(throws: Errno.invalidArgument, "49: len 0") { try p.munmap(address: a.u, length: 0) }
        #expect(throws: Errno.invalidArgument, "49: len wraps") { try p.munmap(address: a.u, length: UInt.max) }
        #expect(throws: Errno.invalidArgument, "50: in no mapping") { try p.munmap(address: 0x1000, length: page) }
        #expect(throws: Errno.invalidArgument, "56: past the end") { try p.munmap(address: a.u, length: 4 * page) }
        #expect(throws: Errno.invalidArgument, "56: spanning two") {
            try p.munmap(address: lo.u, length: hi.u + page - lo.u)
        }
        #expect(throws: Errno.invalidArgument, "57: unaligned start") { try p.munmap(address: a.u + 100, length: page) }
        #expect(throws: Errno.invalidArgument, "before the start") {
            try p.munmap(address: a.u - page, length: 2 * page)
        }
        #expect(Snapshot(s, [p]) == before)
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("row 51: a whole mapping (unrounded length) frees every page, slack included")
    func whole() throws {
        let s = try makeSystem(trim: 0)
        let p = s.createProcess()
        let a = try p.mmap(length: 3 * page, protection: rw, flags: anon)
        #expect(s.mmapPagesAllocated == 4)
        try p.munmap(address: a.u, length: 3 * page - 123)
        #expect(s.mmapPagesAllocated == 0 && s.regionCount == 0)
        #expect(p.counters.mapCount == 0 && p.counters.totalVM == 3, "total_vm is not decreased by munmap")
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("row 52: the first page of three")
    func front() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let a = try p.mmap(length: 3 * page, protection: rw, flags: anon)
        try p.munmap(address: a.u, length: page)
        let m = try #require(p.mappings.first)
        #expect(m.start.u == a.u + page && m.end.u == a.u + 3 * page && m.regionStart.u == a.u + page)
        #expect(s.mmapPagesAllocated == 2)
        #expect(s.invariantViolation() == nil)
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("row 53: the last page of three with nr_trim_pages 0 frees it and the slack")
    func back() throws {
        let s = try makeSystem(trim: 0)
        let p = s.createProcess()
        let a = try p.mmap(length: 3 * page, protection: rw, flags: anon)
        #expect(s.mmapPagesAllocated == 4)
        try p.munmap(address: a.u + 2 * page, length: page)
        let m = try #require(p.mappings.first)
        #expect(m.end.u == a.u + 2 * page && m.regionTop.u == a.u + 2 * page)
        #expect(s.mmapPagesAllocated == 2, "2 pages freed: the last one and the slack")
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("row 54: the middle page: two mappings, one page freed")
    func middle() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let a = try p.mmap(length: 3 * page, protection: rw, flags: anon)
        a.pointer!.storeBytes(of: 0xAB, toByteOffset: 0, as: UInt8.self)
        a.pointer!.storeBytes(of: 0xCD, toByteOffset: Int(2 * page), as: UInt8.self)
        try p.munmap(address: a.u + page, length: page)
        let ms = p.mappings
        #expect(ms.count == 2 && p.counters.mapCount == 2)
        #expect(ms[0].start == a && ms[0].end.u == a.u + page && ms[0].regionTop.u == a.u + page)
        #expect(ms[1].start.u == a.u + 2 * page && ms[1].end.u == a.u + 3 * page)
        #expect(s.mmapPagesAllocated == 2 && s.regionCount == 2)
        // The data stays where it was.
        #expect(a.pointer!.load(as: UInt8.self) == 0xAB)
        #expect(a.pointer!.load(fromByteOffset: Int(2 * page), as: UInt8.self) == 0xCD)
        // Each piece unmaps on its own.
        try p.munmap(address: a.u, length: page)
        try p.munmap(address: a.u + 2 * page, length: page)
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    // 65530 mappings with the invariants walked after each is quadratic: this one runs in
    // the plain and sanitizer builds, not the checked ones.
    @Test(
        "row 55: a middle cut with 65530 mappings is ENOMEM",
        .disabled(if: ConsistencyChecks.internalChecksEnabled, "quadratic under per-mutation invariant walks"))
    func splitLimit() throws {
        let s = try makeSystem(pages: 65536 + 64, maxOrder: 10)
        let p = s.createProcess()
        let big = try p.mmap(length: 3 * page, protection: rw, flags: anon)
        for _ in 1..<System.maxMapCount { _ = try p.mmap(length: page, protection: rw, flags: anon) }
        #expect(p.counters.mapCount == System.maxMapCount)
        let before = s.mmapPagesAllocated
        #expect(throws: Errno.noMemory) { try p.munmap(address: big.u + page, length: page) }
        #expect(s.mmapPagesAllocated == before && p.counters.mapCount == System.maxMapCount)
        // Front and back cuts need no split.
        try p.munmap(address: big.u, length: page)
        #expect(p.counters.mapCount == System.maxMapCount)
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("rows 60–63: mremap refusals")
    func mremapRefusals() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let a = try p.mmap(length: 3 * page, protection: rw, flags: anon)
        let before = Snapshot(s, [p])
        #expect(throws: Errno.invalidArgument, "60") { _ = try p.mremap(address: a.u, oldLength: 0, newLength: page) }
        #expect(throws: Errno.invalidArgument, "60") {
            _ = try p.mremap(address: a.u, oldLength: 3 * page, newLength: 0)
        }
        #expect(throws: Errno.invalidArgument, "61") {
            _ = try p.mremap(address: a.u + 1, oldLength: 3 * page, newLength: page)
        }
        #expect(throws: Errno.invalidArgument, "62") {
            _ = try p.mremap(address: a.u, oldLength: 3 * page, newLength: page, flags: .fixed, newAddress: a.u + page)
        }
        #expect(throws: Errno.invalidArgument, "63: wrong size") {
            _ = try p.mremap(address: a.u, oldLength: 2 * page, newLength: page)
        }
        #expect(throws: Errno.invalidArgument, "63: not a start") {
            _ = try p.mremap(address: a.u + page, oldLength: 2 * page, newLength: page)
        }
        #expect(Snapshot(s, [p]) == before)
        // MREMAP_FIXED to the same address is accepted; unknown flags are not checked.
        #expect(
            try p.mremap(
                address: a.u, oldLength: 3 * page, newLength: 2 * page, flags: [.fixed, .mayMove], newAddress: a.u) == a
        )
        #expect(
            try p.mremap(address: a.u, oldLength: 2 * page, newLength: 3 * page, flags: RemapFlags(rawValue: 0x40)) == a
        )
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("rows 65–67: never moves; growth only up to the original length; slack out of reach")
    func mremapSizes() throws {
        let s = try makeSystem(trim: 0)
        let p = s.createProcess()
        let a = try p.mmap(length: 3 * page, protection: rw, flags: anon)
        #expect(throws: Errno.noMemory, "65/66") {
            _ = try p.mremap(address: a.u, oldLength: 3 * page, newLength: 4 * page)
        }
        #expect(throws: Errno.noMemory, "65 with MAYMOVE") {
            _ = try p.mremap(address: a.u, oldLength: 3 * page, newLength: 4 * page, flags: .mayMove)
        }
        let pages = s.allocator.statistics().allocatedPages
        #expect(try p.mremap(address: a.u, oldLength: 3 * page, newLength: page) == a)
        #expect(p.mappings.first?.end.u == a.u + page)
        #expect(s.allocator.statistics().allocatedPages == pages, "nothing freed")
        #expect(try p.mremap(address: a.u, oldLength: page, newLength: 3 * page) == a)
        #expect(s.allocator.statistics().allocatedPages == pages, "nothing allocated")
        // After a shrink, munmap with the new length is exact and frees the whole region.
        _ = try p.mremap(address: a.u, oldLength: 3 * page, newLength: 2 * page)
        #expect(throws: Errno.invalidArgument) { try p.munmap(address: a.u, length: 3 * page) }
        try p.munmap(address: a.u, length: 2 * page)
        #expect(s.mmapPagesAllocated == 0)
        #expect(everythingBackViolation(s, [p]) == nil)
    }
}

@Suite("Processes")
struct ProcessTests {
    @Test func forkFailsAsWithoutAnMMU() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        #expect(throws: Errno.invalidArgument) { try p.fork() }
        p.exit()
        #expect(throws: Errno.noSuchProcess) { try p.fork() }
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("vfork shares the address space; the last user's exit releases it")
    func vforkSharesTheAddressSpace() throws {
        let s = try makeSystem()
        let parent = s.createProcess()
        let a = try parent.mmap(length: 2 * page, protection: rw, flags: anon)
        let child = try parent.vfork()
        #expect(child.pid != parent.pid)
        #expect(child.mappings == parent.mappings)
        let b = try child.mmap(length: page, protection: rw, flags: anon)
        #expect(parent.mappings.count == 2, "the parent sees the child's mapping")
        parent.exit()
        #expect(!parent.isAlive && child.isAlive)
        #expect(s.mmapPagesAllocated == 3, "the child still uses every mapping")
        try child.munmap(address: a.u, length: 2 * page)
        try child.munmap(address: b.u, length: page)
        child.exit()
        #expect(everythingBackViolation(s, [parent, child]) == nil)
    }

    @Test("exit releases every mapping; calls after exit are ESRCH")
    func exitReleases() throws {
        let s = try makeSystem(trim: 0)
        let p = s.createProcess()
        for n in 1...20 { _ = try p.mmap(length: UInt(n) * page, protection: rw, flags: anon) }
        p.exit()
        p.exit()
        #expect(s.mmapPagesAllocated == 0 && s.regionCount == 0)
        #expect(throws: Errno.noSuchProcess) { _ = try p.mmap(length: page, protection: rw, flags: anon) }
        #expect(throws: Errno.noSuchProcess) { try p.munmap(address: 0, length: page) }
        #expect(throws: Errno.noSuchProcess) { _ = try p.mremap(address: 0, oldLength: page, newLength: page) }
        #expect(throws: Errno.noSuchProcess) { _ = try p.vfork() }
        #expect(throws: Errno.noSuchProcess) { try p.madvise(address: 0, length: page, advice: 0) }
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("a process cannot unmap or remap another's mapping")
    func isolation() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let q = s.createProcess()
        let a = try p.mmap(length: 2 * page, protection: rw, flags: anon)
        let before = Snapshot(s, [p, q])
        #expect(throws: Errno.invalidArgument) { try q.munmap(address: a.u, length: 2 * page) }
        #expect(throws: Errno.invalidArgument) { try q.munmap(address: a.u, length: page) }
        #expect(throws: Errno.invalidArgument) { _ = try q.mremap(address: a.u, oldLength: 2 * page, newLength: page) }
        #expect(Snapshot(s, [p, q]) == before)
        #expect(q.mappings.isEmpty)
        #expect(everythingBackViolation(s, [p, q]) == nil)
    }
}
