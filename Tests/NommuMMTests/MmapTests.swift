// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuMM
import NommuTestSupport
import PageAllocator
import Testing

/// The validation and anonymous-memory rows; row numbers are shared with the other suites and `abi-check`.
@Suite("mmap: validation and anonymous memory (do_mmap, validate_mmap_request)")
struct MmapTests {
    @Test("rows 1–11: validation, in the kernel's order")
    func validation() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let before = Snapshot(s, [p])
        func expectErrno(_ e: Errno, _ row: Int, _ call: () throws -> VirtualAddress) {
            #expect(throws: e, "row \(row)") { _ = try call() }
        }
        expectErrno(.invalidArgument, 1) { try p.mmap(length: page, protection: rw, flags: anon.union(.fixed)) }
        expectErrno(.invalidArgument, 2) { try p.mmap(length: page, protection: rw, flags: [.anonymous]) }
        expectErrno(.invalidArgument, 3) {
            try p.mmap(length: page, protection: rw, flags: [.sharedValidate, .anonymous])
        }
        expectErrno(.invalidArgument, 4) { try p.mmap(length: 0, protection: rw, flags: anon) }
        expectErrno(.noMemory, 5) { try p.mmap(length: UInt.max, protection: rw, flags: anon) }
        expectErrno(.noMemory, 6) { try p.mmap(length: 1 << 48, protection: rw, flags: anon) }
        expectErrno(.overflow, 7) { try p.mmap2(length: 2 * page, protection: rw, flags: anon, pageOffset: UInt.max) }
        // Row 8: an unaligned byte offset is EINVAL, checked before the (bad) fd.
        expectErrno(.invalidArgument, 8) {
            try p.mmap(length: page, protection: .read, flags: [.private], fd: 99, offset: 100)
        }
        expectErrno(.badFileDescriptor, 9) { try p.mmap(length: page, protection: .read, flags: [.private], fd: 99) }
        expectErrno(.badFileDescriptor, 9) { try p.mmap(length: page, protection: .read, flags: [.private], fd: -1) }
        // Row 11: any address hint is refused, as the kernel's nommu-mmap document says (Oracle/divergences.md).
        expectErrno(.invalidArgument, 11) { try p.mmap(address: 0x10000, length: page, protection: rw, flags: anon) }
        // The first failure wins: MAP_FIXED with a zero length is the MAP_FIXED error.
        expectErrno(.invalidArgument, 1) { try p.mmap(length: 0, protection: rw, flags: [.fixed, .anonymous]) }
        // The fd is looked up before validate_mmap_request: a file MAP_FIXED is EBADF.
        expectErrno(.badFileDescriptor, 9) { try p.mmap(length: 0, protection: rw, flags: [.fixed], fd: 3) }
        // Type is checked before the length: type 0 with length 0 → EINVAL either way,
        // but type 0 with ULONG_MAX is EINVAL (type), not ENOMEM (length).
        expectErrno(.invalidArgument, 2) { try p.mmap(length: UInt.max, protection: rw, flags: [.anonymous]) }
        #expect(Snapshot(s, [p]) == before, "a failed mmap changes nothing")
        // Row 10: MAP_ANONYMOUS ignores the fd.
        for fd: CInt in [-1, 0, 7, 12345] {
            let a = try p.mmap(length: page, protection: rw, flags: anon, fd: fd)
            try p.munmap(address: a.u, length: page)
        }
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("row 24: one byte is one page, page aligned, zeroed; MmapCopy +1 page")
    func oneByte() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        // Dirty the arena first, so zeroing is really tested.
        let d = try p.mmap(length: 1024 * page, protection: rw, flags: anon)
        d.pointer!.initializeMemory(as: UInt8.self, repeating: 0xEE, count: Int(1024 * page))
        try p.munmap(address: d.u, length: 1024 * page)
        let a = try p.mmap(length: 1, protection: rw, flags: anon)
        #expect(a.u % page == 0)
        #expect(Cookie.isZero(UnsafeRawBufferPointer(start: a.pointer, count: Int(page))))
        #expect(s.mmapPagesAllocated == 1)
        #expect(
            p.mappings == [
                MappingInfo(
                    start: a, end: VirtualAddress(a.u + page), regionStart: a, regionEnd: VirtualAddress(a.u + page),
                    regionTop: VirtualAddress(a.u + page), regionUsage: 1)
            ])
        #expect(p.counters.mapCount == 1)
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test(
        "rows 25–28: the trim rule and the slack",
        arguments: [(3, 1, 3), (3, 0, 4), (3, 2, 4), (5, 2, 5), (4, 0, 4), (4, 1, 4), (4, 2, 4), (7, 2, 8)])
    func trimming(_ pages: Int, _ trim: Int, _ kept: Int) throws {
        let s = try makeSystem(trim: trim)
        let p = s.createProcess()
        let a = try p.mmap(length: UInt(pages) * page, protection: rw, flags: anon)
        let m = try #require(p.mappings.first)
        #expect(m.end.u == a.u + UInt(pages) * page)
        #expect(m.regionTop.u == a.u + UInt(kept) * page)
        #expect(s.mmapPagesAllocated == kept)
        #expect(s.allocator.statistics().allocatedPages == kept)
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("row 26: slack is not cleared; row 29: a negative nr_trim_pages is EINVAL")
    func slackNotCleared() throws {
        let s = try makeSystem(trim: 0)
        let p = s.createProcess()
        let d = try p.mmap(length: 4 * page, protection: rw, flags: anon)
        d.pointer!.initializeMemory(as: UInt8.self, repeating: 0x5C, count: Int(4 * page))
        try p.munmap(address: d.u, length: 4 * page)
        let a = try p.mmap(length: 3 * page, protection: rw, flags: anon)
        #expect(a == d, "the same block comes back")
        #expect(Cookie.isZero(UnsafeRawBufferPointer(start: a.pointer, count: Int(3 * page))))
        let stale: UInt8 = ConsistencyChecks.internalChecksEnabled ? ConsistencyChecks.freedPoison : 0x5C
        #expect(
            Cookie.isFilled(UnsafeRawBufferPointer(start: a.pointer! + Int(3 * page), count: Int(page)), with: stale))
        #expect(throws: Errno.invalidArgument) { try s.setNrTrimPages(-1) }
        #expect(s.nrTrimPages == 0)
        try s.setNrTrimPages(5)
        #expect(s.nrTrimPages == 5)
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("row 30: larger than the largest block, or no contiguous run: ENOMEM, nothing changes")
    func noMemory() throws {
        let s = try makeSystem(pages: 64, maxOrder: 4)
        let p = s.createProcess()
        let before = Snapshot(s, [p])
        #expect(throws: Errno.noMemory) { _ = try p.mmap(length: 17 * page, protection: rw, flags: anon) }
        #expect(Snapshot(s, [p]) == before)
        var all: [VirtualAddress] = []
        while let a = try? p.mmap(length: 16 * page, protection: rw, flags: anon) { all.append(a) }
        #expect(all.count == 4)
        #expect(throws: Errno.noMemory) { _ = try p.mmap(length: 1, protection: rw, flags: anon) }
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("rows 31–32: MAP_UNINITIALIZED clears unless allowed", arguments: [false, true])
    func uninitialized(allowed: Bool) throws {
        let s = try makeSystem(allowUninitialized: allowed)
        let p = s.createProcess()
        let d = try p.mmap(length: 8 * page, protection: rw, flags: anon)
        d.pointer!.initializeMemory(as: UInt8.self, repeating: 0x77, count: Int(8 * page))
        try p.munmap(address: d.u, length: 8 * page)
        let a = try p.mmap(length: 8 * page, protection: rw, flags: anon.union(.uninitialized))
        let bytes = UnsafeRawBufferPointer(start: a.pointer, count: Int(8 * page))
        if allowed {
            let expected: UInt8 = ConsistencyChecks.internalChecksEnabled ? ConsistencyChecks.uninitializedPoison : 0x77
            #expect(Cookie.isFilled(bytes, with: expected), "not cleared")
        } else {
            #expect(Cookie.isZero(bytes), "the flag is ignored: cleared")
        }
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("row 33: MAP_SHARED | MAP_ANONYMOUS behaves as private")
    func sharedAnonymousIsPrivate() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let q = s.createProcess()
        let a = try p.mmap(length: 3 * page, protection: rw, flags: [.shared, .anonymous])
        let b = try q.mmap(length: 3 * page, protection: rw, flags: [.shared, .anonymous])
        #expect(a != b, "never shared")
        #expect(s.regionCount == 2)
        try p.munmap(address: a.u + page, length: page)  // may split
        #expect(p.mappings.count == 2)
        #expect(try q.mremap(address: b.u, oldLength: 3 * page, newLength: page) == b)  // mremap allowed
        #expect(everythingBackViolation(s, [p, q]) == nil)
    }

    @Test("row 78: mprotect, msync, mlock, munlock, mincore, madvise are ENOSYS")
    func noMMUCalls() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let a = try p.mmap(length: page, protection: rw, flags: anon)
        #expect(throws: Errno.noFunction) { try p.mprotect(address: a.u, length: page, protection: .read) }
        #expect(throws: Errno.noFunction) { try p.msync(address: a.u, length: page, flags: 0) }
        #expect(throws: Errno.noFunction) { try p.mlock(address: a.u, length: page) }
        #expect(throws: Errno.noFunction) { try p.munlock(address: a.u, length: page) }
        #expect(throws: Errno.noFunction) { try p.mincore(address: a.u, length: page) }
        #expect(throws: Errno.noFunction) { try p.madvise(address: a.u, length: page, advice: 0) }
        #expect(everythingBackViolation(s, [p]) == nil)
    }
}
