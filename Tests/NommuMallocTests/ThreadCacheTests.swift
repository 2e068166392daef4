// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuHost
import NommuMM
import NommuMalloc
import NommuTestSupport
import PageAllocator
import Testing

@Suite("Mallocs: per-thread caches of small chunks")
struct ThreadCacheTests {
    private func heap() throws -> (System, Process, Malloc) {
        let s = try System(.init(arenaBytes: 16 << 20))
        let p = s.createProcess()
        return (s, p, try Malloc(process: p, .init(policy: .heap)))
    }

    @Test("a cached chunk is free to the program: a second free is refused, and it is handed out once")
    func doubleFreeOfCachedChunk() throws {
        let (s, p, m) = try heap()
        let a = try m.malloc(64)
        try m.free(a)
        #expect(throws: Errno.invalidArgument) { try m.free(a) }
        #expect(throws: Errno.invalidArgument) { _ = try m.usableSize(a) }
        let b = try m.malloc(64)
        let c = try m.malloc(64)
        #expect(b == a, "the cached chunk comes back first (LIFO)")
        #expect(c != b)
        try m.free(b)
        try m.free(c)
        let st = m.statistics
        #expect(st.calls == 7 && st.liveBlocks == 0 && st.liveBytes == 0, "\(st)")
        p.exit()
        #expect(s.invariantViolation() == nil)
    }

    @Test("counters and the peak of live bytes are exact for one thread, cache hits included")
    func exactCounters() throws {
        let (_, p, m) = try heap()
        var live: [(UnsafeMutableRawPointer, Int)] = []
        var peak = 0
        var bytes = 0
        for round in 0..<50 {
            for i in 0..<10 {
                live.append((try m.malloc(16 + i * 8), 16 + i * 8))
                bytes += 16 + i * 8
                peak = max(peak, bytes)
            }
            while live.count > round % 7 {
                let (q, n) = live.removeLast()
                try m.free(q)
                bytes -= n
            }
        }
        let st = m.statistics
        #expect(st.liveBlocks == live.count)
        #expect(st.liveBytes == bytes)
        #expect(st.peakLiveBytes == peak)
        for (q, _) in live { try m.free(q) }
        #expect(m.statistics.liveBytes == 0)
        p.exit()
    }

    @Test("a thread's cache goes back to the heap when the thread exits; frees may cross threads")
    func cachesGoBackAtThreadExit() throws {
        let (s, p, m) = try heap()
        let handoff = HostMutex<[UInt]>([])
        runOnThreads(4) { t in
            var mine: [UnsafeMutableRawPointer] = []
            for i in 0..<2000 {
                mine.append(try! m.malloc(8 + (i % 60) * 16))
                if mine.count > 20 { try! m.free(mine.removeFirst()) }
            }
            // Half of what is left is freed by another thread.
            let keep = mine.count / 2
            handoff.withLock { $0 += mine[keep...].map { UInt(bitPattern: $0) } }
            for q in mine[..<keep] { try! m.free(q) }
        }
        runOnThreads(1) { _ in
            for a in handoff.withLock({ $0 }) { try! m.free(UnsafeMutableRawPointer(bitPattern: a)!) }
        }
        let st = m.statistics
        #expect(st.liveBlocks == 0 && st.liveBytes == 0)
        #expect(st.calls == 4 * 2000 + 4 * 2000)
        #expect(m.heapViolation() == nil)
        // Every chunk is back in the heap (no thread holds a cache): all areas are free.
        p.exit()
        #expect(s.invariantViolation() == nil)
        #expect(allPagesBackViolation(s.allocator) == nil)
    }

    @Test("realloc between small sizes: the same chunk size stays put, another moves to a cached chunk")
    func reallocThroughTheCache() throws {
        let (_, p, m) = try heap()
        let a = try m.malloc(100)
        for i in 0..<100 { a.storeBytes(of: UInt8(i), toByteOffset: i, as: UInt8.self) }
        #expect(try m.realloc(a, 110) == a, "112 and 128 bytes of chunk: the same chunk")
        let b = try m.malloc(40)
        try m.free(b)
        let c = try m.realloc(a, 40)
        #expect(c == b, "the cached chunk of the new size")
        #expect((0..<40).allSatisfy { c?.load(fromByteOffset: $0, as: UInt8.self) == UInt8($0) })
        #expect(throws: Errno.invalidArgument, "the old block is gone (cached)") { try m.free(a) }
        let st = m.statistics
        // malloc, realloc (in place), malloc, free, realloc (moved), the refused free: 6 calls.
        #expect(st.calls == 6, "\(st)")
        #expect(st.liveBlocks == 1 && st.liveBytes == 40 && st.peakLiveBytes == 150, "\(st)")
        try m.free(c)
        #expect(m.heapViolation() == nil)
        p.exit()
    }

    @Test("chunks up to a page are cached under a byte budget: four 4 KiB chunks, the rest to the heap")
    func pageSizedChunksUnderABudget() throws {
        let (s, p, m) = try heap()
        let blocks = try (0..<10).map { _ in try m.malloc(4096) }
        for b in blocks { try m.free(b) }
        // The first four frees fill the budget (4 x 4112 bytes); the other six coalesce in
        // the heap. The cache is LIFO: the fourth comes back first, then the third.
        #expect(try m.malloc(4096) == blocks[3])
        #expect(try m.malloc(4096) == blocks[2])
        let a = try m.malloc(2000)
        try m.free(a)
        #expect(throws: Errno.invalidArgument, "a cached chunk is refused a second free") { try m.free(a) }
        #expect(try m.malloc(2000) == a, "a 2 KiB chunk fits in what the budget has left")
        let st = m.statistics
        #expect(st.calls == 10 + 10 + 2 + 4 && st.liveBlocks == 3, "\(st)")
        #expect(m.heapViolation() == nil)
        p.exit()
        #expect(s.invariantViolation() == nil)
    }

    @Test("a free into a full bin sends the bin's four oldest chunks to the heap under one lock, and stays cached")
    func fullBinFlushesItsOlderHalf() throws {
        let (s, p, m) = try heap()
        let blocks = try (0..<8).map { _ in try m.malloc(64) }
        for b in blocks { try m.free(b) }
        // Seven fill the bin; the eighth goes onto it after b3…b0 went back to the heap.
        let again = try (0..<4).map { _ in try m.malloc(64) }
        #expect(again == [blocks[7], blocks[6], blocks[5], blocks[4]])
        let st = m.statistics
        #expect(st.calls == 20 && st.liveBlocks == 4 && st.liveBytes == 256, "\(st)")
        #expect(m.heapViolation() == nil)
        for q in again { try m.free(q) }
        p.exit()
        #expect(s.invariantViolation() == nil)
    }
}
