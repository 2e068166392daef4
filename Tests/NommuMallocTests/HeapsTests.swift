// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuHost
import NommuMM
import NommuMalloc
import NommuTestSupport
import PageAllocator
import Testing

@Suite("Mallocs: threads spread over heaps")
struct HeapsTests {
    /// Runs `body` on a thread of its own and returns what it returns.
    private func onAThread<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        let out = HostMutex<T?>(nil)
        runOnThreads(1) { _ in
            let v = body()
            out.withLock { $0 = v }
        }
        return out.withLock { $0! }
    }

    @Test("each thread allocates in a heap of its own (two areas for two threads); one heap is shared")
    func threadsGetHeapsOfTheirOwn() throws {
        for heaps in [1, 2] {
            let s = try System(.init(arenaBytes: 16 << 20))
            let p = s.createProcess()
            let m = try Malloc(process: p, .init(policy: .heap, heaps: heaps))
            // 8000 bytes: above what the thread caches take, so every call goes to a heap.
            let blocks = HostMutex<[UInt]>([])
            runOnThreads(2) { _ in
                let b = try! m.malloc(8000)
                blocks.withLock { $0.append(UInt(bitPattern: b)) }
            }
            #expect(m.statistics.mmaps == heaps, "\(heaps) heaps: \(m.statistics)")
            // Freed by another thread, each into the heap that holds it.
            for b in blocks.withLock({ $0 }) { try m.free(UnsafeMutableRawPointer(bitPattern: b)) }
            let st = m.statistics
            #expect(st.liveBlocks == 0 && st.liveBytes == 0 && st.calls == 4, "\(st)")
            #expect(m.heapViolation() == nil)
            p.exit()
            #expect(s.invariantViolation() == nil)
            #expect(allPagesBackViolation(s.allocator) == nil)
        }
    }

    @Test("an allocation its thread's heap cannot serve takes another heap's free chunk before ENOMEM")
    func anotherHeapsFreeChunkBeforeENOMEM() throws {
        let s = try System(.init(arenaBytes: 1 << 20))
        let p = s.createProcess()
        let m = try Malloc(process: p, .init(policy: .heap, heaps: 2))
        // The first thread (heap 0) leaves a wholly free 64 KiB area behind (one is kept).
        onAThread {
            let b = try! m.malloc(20000)
            try! m.free(b)
        }
        #expect(m.statistics.mmaps == 1)
        // The rest of the machine goes to the process's own mappings, a page at a time.
        var pages = 0
        while (try? p.mmap(length: 4096, protection: [.read, .write], flags: [.private, .anonymous])) != nil {
            pages += 1
        }
        #expect(pages > 100)
        // The second thread's heap (1) cannot map an area of its own: heap 0's free chunk serves it.
        let got = onAThread { (try? m.malloc(20000)).map { UInt(bitPattern: $0) } ?? 0 }
        #expect(got != 0)
        var st = m.statistics
        #expect(st.failures == 0 && st.mmaps == 1 && st.liveBytes == 20000, "\(st)")
        // What no heap has room for still fails, once, and changes nothing.
        let refused = onAThread { (try? m.malloc(50000)) == nil }
        #expect(refused)
        st = m.statistics
        #expect(st.failures == 1 && st.firstFailure?.size == 50000 && st.mmaps == 1 && st.liveBytes == 20000, "\(st)")
        #expect(m.heapViolation() == nil)
        try m.free(UnsafeMutableRawPointer(bitPattern: got))
        #expect(m.statistics.liveBlocks == 0)
        #expect(m.heapViolation() == nil)
        p.exit()
        #expect(s.invariantViolation() == nil)
    }

    @Test("a realloc its block's heap cannot serve moves into another heap's free chunk before ENOMEM")
    func reallocIntoAnotherHeap() throws {
        let s = try System(.init(arenaBytes: 1 << 20))
        let p = s.createProcess()
        let m = try Malloc(process: p, .init(policy: .heap, heaps: 2))
        // Heap 0 keeps a wholly free area of 100 KiB (a 100,000-byte block's, freed).
        onAThread {
            let b = try! m.malloc(100_000)
            try! m.free(b)
        }
        // Heap 1 holds a 60,000-byte block in a 64 KiB area: no room there to grow to 70,000.
        let block = onAThread { () -> UInt in
            let b = try! m.malloc(60_000)
            for i in 0..<60_000 { b.storeBytes(of: UInt8(truncatingIfNeeded: i), toByteOffset: i, as: UInt8.self) }
            return UInt(bitPattern: b)
        }
        while (try? p.mmap(length: 4096, protection: [.read, .write], flags: [.private, .anonymous])) != nil {}
        let moved = onAThread { () -> UInt in
            let b = UnsafeMutableRawPointer(bitPattern: block)!
            return (try? m.realloc(b, 70_000)).flatMap { $0 }.map { UInt(bitPattern: $0) } ?? 0
        }
        #expect(moved != 0 && moved != block)
        let q = try #require(UnsafeMutableRawPointer(bitPattern: moved))
        #expect((0..<60_000).allSatisfy { q.load(fromByteOffset: $0, as: UInt8.self) == UInt8(truncatingIfNeeded: $0) })
        var st = m.statistics
        #expect(st.failures == 0 && st.liveBlocks == 1 && st.liveBytes == 70_000 && st.mmaps == 2, "\(st)")
        #expect(throws: Errno.invalidArgument, "the old block is gone") {
            try m.free(UnsafeMutableRawPointer(bitPattern: block))
        }
        #expect(m.heapViolation() == nil)
        try m.free(q)
        st = m.statistics
        #expect(st.liveBlocks == 0 && st.liveBytes == 0, "\(st)")
        p.exit()
        #expect(s.invariantViolation() == nil)
    }

    @Test("realloc works in the heap that holds the block, whichever thread calls it")
    func reallocInTheBlocksHeap() throws {
        let s = try System(.init(arenaBytes: 16 << 20))
        let p = s.createProcess()
        let m = try Malloc(process: p, .init(policy: .heap, heaps: 4))
        let a = try m.malloc(6000)
        for i in 0..<6000 { a.storeBytes(of: UInt8(truncatingIfNeeded: i), toByteOffset: i, as: UInt8.self) }
        let address = UInt(bitPattern: a)
        // Another thread (another heap) grows it in place, moves it, and maps it on its own.
        let moved = onAThread { () -> [UInt] in
            let p = UnsafeMutableRawPointer(bitPattern: address)!
            let q = try! m.realloc(p, 7000)!
            let r = try! m.realloc(q, 60000)!
            let t = try! m.realloc(r, 200_000)!
            return [q, r, t].map { UInt(bitPattern: $0) }
        }
        let last = UnsafeMutableRawPointer(bitPattern: moved[2])!
        #expect(
            (0..<6000).allSatisfy { last.load(fromByteOffset: $0, as: UInt8.self) == UInt8(truncatingIfNeeded: $0) })
        #expect(m.heapViolation() == nil)
        try m.free(last)
        let st = m.statistics
        #expect(st.liveBlocks == 0 && st.liveBytes == 0 && st.calls == 5 && st.peakLiveBytes == 200_000, "\(st)")
        p.exit()
        #expect(s.invariantViolation() == nil)
    }

    @Test("heaps are 1 to 64", arguments: [0, -1, 65, Int.max])
    func heapCountBounds(_ heaps: Int) throws {
        let s = try System(.init(arenaBytes: 1 << 20))
        #expect(throws: Errno.invalidArgument) { _ = try Malloc(process: s.createProcess(), .init(heaps: heaps)) }
    }
}
