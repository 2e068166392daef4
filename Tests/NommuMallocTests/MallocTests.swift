// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuMM
import NommuMalloc
import NommuTestSupport
import PageAllocator
import Testing

private func system(pages: Int = 4096, allowUninitialized: Bool = false) throws -> System {
    try System(.init(arenaBytes: pages * 4096, allowUninitialized: allowUninitialized))
}

/// Every page back: processes gone, nothing mapped, allocator pristine.
private func allBack(_ s: System, _ processes: [Process]) -> String? {
    for p in processes { p.exit() }
    if s.regionCount != 0 { return "\(s.regionCount) regions left" }
    if let v = s.invariantViolation() { return v }
    return allPagesBackViolation(s.allocator)
}

@Suite("Mallocs: the C contracts")
struct MallocContractTests {
    @Test("malloc, calloc, realloc, free, posix_memalign, usable size", arguments: Malloc.Policy.allCases)
    func contracts(policy: Malloc.Policy) throws {
        let s = try system()
        let p = s.createProcess()
        let m = try Malloc(process: p, .init(policy: policy))
        // Dirty memory first, so calloc's zeroing is really tested.
        let dirt = try p.mmap(length: 1 << 20, protection: [.read, .write], flags: [.private, .anonymous])
        dirt.pointer!.initializeMemory(as: UInt8.self, repeating: 0xEE, count: 1 << 20)
        try p.munmap(address: dirt.rawValue, length: 1 << 20)
        let a = try m.malloc(0)
        let b = try m.malloc(0)
        #expect(a != b, "malloc(0) gives unique blocks")
        for size in [1, 15, 16, 17, 100, 4000, 5000, 70_000, 200_000] {
            let q = try m.malloc(size)
            #expect(UInt(bitPattern: q) & 15 == 0)
            #expect(try m.usableSize(q) >= size)
            q.initializeMemory(as: UInt8.self, repeating: 0x5A, count: size)
            let z = try m.calloc(size, 1)
            #expect(UnsafeRawBufferPointer(start: z, count: size).allSatisfy { $0 == 0 }, "calloc(\(size)) is zeroed")
            try m.free(q)
            try m.free(z)
        }
        #expect(throws: Errno.noMemory) { _ = try m.calloc(Int.max / 2, 3) }
        #expect(throws: Errno.noMemory) { _ = try m.malloc(Int.max - 10) }
        // realloc: nil is malloc, 0 frees, growth keeps the bytes.
        var r = try #require(try m.realloc(nil, 10))
        (0..<10).forEach { r.storeBytes(of: UInt8($0), toByteOffset: $0, as: UInt8.self) }
        for size in [20, 5000, 3, 300_000, 40] {
            r = try #require(try m.realloc(r, size))
            #expect(
                UnsafeRawBufferPointer(start: r, count: 3).elementsEqual([0, 1, 2]),
                "realloc to \(size) keeps the bytes")
        }
        #expect(try m.realloc(r, 0) == nil)
        try m.free(nil)
        // posix_memalign.
        for alignment in [8, 16, 32, 64, 4096, 65536] {
            let q = try m.posixMemalign(alignment: alignment, 100)
            #expect(UInt(bitPattern: q) % UInt(alignment) == 0, "aligned to \(alignment)")
            try m.free(q)
        }
        for bad in [0, 3, 4, 24] {
            #expect(throws: Errno.invalidArgument) { _ = try m.posixMemalign(alignment: bad, 8) }
        }
        // Bad frees change nothing.
        let live = try m.malloc(64)
        let before = m.statistics
        try m.free(live)
        #expect(throws: Errno.invalidArgument, "double free") { try m.free(live) }
        var onStack = 0
        #expect(throws: Errno.invalidArgument, "a stack pointer") { try m.free(&onStack) }
        let anonymous = try p.mmap(length: 8192, protection: [.read, .write], flags: [.private, .anonymous])
        #expect(throws: Errno.invalidArgument, "an mmap, not a block") { try m.free(anonymous.pointer! + 4096) }
        #expect(throws: Errno.invalidArgument, "inside a block") { try m.free(a + 16) }
        #expect(m.statistics.liveBlocks == before.liveBlocks - 1)
        try m.free(a)
        try m.free(b)
        #expect(m.statistics.liveBlocks == 0 && m.statistics.liveBytes == 0)
        #expect(allBack(s, [p]) == nil)
    }

    @Test("MAP_UNINITIALIZED for malloc, never for calloc; nothing changes when not allowed")
    func uninitialized() throws {
        for allowed in [false, true] {
            let s = try system(allowUninitialized: allowed)
            let p = s.createProcess()
            let m = try Malloc(process: p, .init(policy: .simple, uninitialized: true))
            let skipped0 = s.allocator.statistics().bytesUninitialized
            let q = try m.malloc(64 << 10)
            let skipped1 = s.allocator.statistics().bytesUninitialized
            #expect((skipped1 > skipped0) == allowed, "malloc skips clearing exactly when allowed")
            let z = try m.calloc(64 << 10, 1)
            #expect(s.allocator.statistics().bytesUninitialized == skipped1, "calloc's pages are cleared")
            #expect(UnsafeRawBufferPointer(start: z, count: 64 << 10).allSatisfy { $0 == 0 })
            try m.free(q)
            try m.free(z)
            #expect(allBack(s, [p]) == nil)
        }
    }

    @Test("heap: a block costs 8 bytes of header, as glibc's (the footer slot is payload while in use)")
    func eightByteHeader() throws {
        let s = try system()
        let p = s.createProcess()
        let m = try Malloc(process: p, .init(policy: .heap))
        // Chunk = max(32, request + 8 rounded up to 16); usable = chunk - 8.
        for (request, usable) in [(1, 24), (24, 24), (25, 40), (40, 40), (56, 56), (100, 104), (4096, 4104)] {
            let b = try m.malloc(request)
            #expect(try m.usableSize(b) == usable, "malloc(\(request))")
            b.initializeMemory(as: UInt8.self, repeating: 0x5A, count: usable)  // all of it is the program's
            try m.free(b)
        }
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<10_000 { blocks.append(try m.malloc(40)) }
        // 48 bytes a block (16-byte headers made it 64: 640,000 bytes), plus one area's rounding.
        #expect(m.statistics.heldBytes <= 10_000 * 48 + (64 << 10), "\(m.statistics)")
        #expect(m.heapViolation() == nil)
        for b in blocks { try m.free(b) }
        #expect(m.heapViolation() == nil)
        #expect(allBack(s, [p]) == nil)
    }

    @Test("heap: small blocks share areas; large ones are mapped; free areas go back")
    func heapShape() throws {
        let s = try system()
        let p = s.createProcess()
        let m = try Malloc(process: p, .init(policy: .heap, extendSize: 64 << 10, mmapThreshold: 128 << 10))
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<1000 { blocks.append(try m.malloc(100)) }
        #expect(m.statistics.mmaps <= 3, "1000 small blocks in a few 64 KiB areas, \(m.statistics.mmaps) mmaps")
        let big = try m.malloc(200 << 10)
        #expect(m.statistics.mmaps <= 4)
        try m.free(big)
        #expect(m.statistics.munmaps == 1, "a direct mapping goes at free")
        for b in blocks { try m.free(b) }
        // The last few frees of each size sit in this thread's cache, holding their area.
        #expect(m.statistics.liveBlocks == 0 && m.statistics.liveBytes == 0)
        m.releaseThreadCache()
        #expect(m.statistics.munmaps >= 2, "wholly free areas go back (one may be kept)")
        #expect(p.mappings.count <= 1)
        #expect(allBack(s, [p]) == nil)
    }

    @Test("realloc into a mapping of its own: mapped before the lock is taken, counted once, moved bytes kept")
    func reallocIntoItsOwnMapping() throws {
        let s = try system()
        let p = s.createProcess()
        let m = try Malloc(process: p)
        var r = try m.malloc(1000)
        r.initializeMemory(as: UInt8.self, repeating: 7, count: 1000)
        let base = m.statistics
        r = try #require(try m.realloc(r, 200_000))  // heap chunk -> mapping
        #expect(UnsafeRawBufferPointer(start: r, count: 1000).allSatisfy { $0 == 7 })
        r = try #require(try m.realloc(r, 400_000))  // mapping -> a bigger one
        #expect(UnsafeRawBufferPointer(start: r, count: 1000).allSatisfy { $0 == 7 })
        let q = try #require(try m.realloc(r, 300_000))  // fits where it is
        #expect(q == r)
        var st = m.statistics
        #expect(st.mmaps == base.mmaps + 2 && st.munmaps == base.munmaps + 1, "\(st)")
        #expect(st.liveBytes == 300_000 && st.liveBlocks == 1, "\(st)")
        // Two mappings of its own now: the area and the block; no premapped one is left over.
        #expect(p.mappings.count == 2, "\(p.mappings)")
        try m.free(q)
        st = m.statistics
        #expect(st.munmaps == base.munmaps + 2 && st.heldBytes == base.heldBytes, "\(st)")
        #expect(allBack(s, [p]) == nil)
    }

    @Test("realloc that grows in place after all gives back the mapping it made beforehand")
    func reallocPremappedButInPlace() throws {
        let s = try system()
        let p = s.createProcess()
        // A 1 MiB area: a chunk at its start can grow past the mmap threshold where it is.
        let m = try Malloc(process: p, .init(extendSize: 1 << 20))
        let r = try m.malloc(1000)
        r.initializeMemory(as: UInt8.self, repeating: 9, count: 1000)
        let base = m.statistics
        // 200,000 bytes get a mapping of their own: one is made before the lock; the block
        // then grows in place into the free rest of its area, and that mapping goes.
        #expect(try m.realloc(r, 200_000) == r)
        #expect(UnsafeRawBufferPointer(start: r, count: 1000).allSatisfy { $0 == 9 })
        let st = m.statistics
        #expect(st.mmaps == base.mmaps && st.munmaps == base.munmaps && st.heldBytes == base.heldBytes, "\(st)")
        #expect(p.mappings.count == 1, "only the area: \(p.mappings)")
        try m.free(r)
        #expect(allBack(s, [p]) == nil)
    }
}

@Suite("Mallocs: random sequences")
struct MallocRandomTests {
    @Test(
        "malloc / calloc / realloc / memalign / free with contents checked, no overlap, all pages back",
        arguments: [(Malloc.Policy.heap, false), (.heap, true), (.simple, false), (.simple, true)])
    func random(policy: Malloc.Policy, uninitialized: Bool) throws {
        let seed = SeededRandom.seed(default: 4242)
        var rng = SeededRandom(seed: seed)
        let steps = ProcessEnvironment.int("NOMMU_RANDOM_STEPS", default: 100_000) / 10
        let s = try system(pages: 8192, allowUninitialized: true)
        let p = s.createProcess()
        let m = try Malloc(process: p, .init(policy: policy, uninitialized: uninitialized, extendSize: 32 << 10))
        var live: [(UnsafeMutableRawPointer, Int, UInt8)] = []
        func check(_ b: (UnsafeMutableRawPointer, Int, UInt8)) -> Bool {
            UnsafeRawBufferPointer(start: b.0, count: b.1).allSatisfy { $0 == b.2 }
        }
        for step in 0..<steps {
            let size = rng.next() % 4 == 0 ? Int(rng.next() % 70_000) : Int(rng.next() % 600)
            let v = UInt8(truncatingIfNeeded: step) | 1
            switch rng.next() % 8 {
            case 0, 1:
                guard let q = try? m.malloc(size) else { continue }
                q.initializeMemory(as: UInt8.self, repeating: v, count: size)
                live.append((q, size, v))
            case 2:
                guard let q = try? m.calloc(size, 1) else { continue }
                #expect(
                    UnsafeRawBufferPointer(start: q, count: size).allSatisfy { $0 == 0 }, "seed \(seed) step \(step)")
                q.initializeMemory(as: UInt8.self, repeating: v, count: size)
                live.append((q, size, v))
            case 3:
                guard !live.isEmpty else { continue }
                let i = Int(rng.next() % UInt64(live.count))
                let b = live[i]
                #expect(check(b), "seed \(seed) step \(step): block changed before realloc")
                let moved: UnsafeMutableRawPointer?
                do {
                    moved = try m.realloc(b.0, size)
                } catch {
                    #expect(
                        error == .noMemory && check(b), "seed \(seed) step \(step): a failed realloc changed the block")
                    continue
                }
                guard let q = moved else {
                    live.remove(at: i)
                    continue
                }
                #expect(UnsafeRawBufferPointer(start: q, count: min(size, b.1)).allSatisfy { $0 == b.2 })
                q.initializeMemory(as: UInt8.self, repeating: v, count: size)
                live[i] = (q, size, v)
            case 4:
                let alignment = 1 << Int(3 + rng.next() % 10)
                guard let q = try? m.posixMemalign(alignment: alignment, size) else { continue }
                #expect(UInt(bitPattern: q) % UInt(alignment) == 0)
                q.initializeMemory(as: UInt8.self, repeating: v, count: size)
                live.append((q, size, v))
            default:
                guard !live.isEmpty else { continue }
                let b = live.remove(at: Int(rng.next() % UInt64(live.count)))
                #expect(check(b), "seed \(seed) step \(step): a block changed")
                try m.free(b.0)
            }
            if step % 97 == 0 {
                // No two live blocks overlap.
                let sorted = live.sorted { UInt(bitPattern: $0.0) < UInt(bitPattern: $1.0) }
                for (x, y) in zip(sorted, sorted.dropFirst()) {
                    #expect(UInt(bitPattern: x.0) + UInt(max(x.1, 1)) <= UInt(bitPattern: y.0), "seed \(seed): overlap")
                }
                #expect(m.statistics.liveBlocks == live.count)
                #expect(m.statistics.liveBytes == live.reduce(0) { $0 + $1.1 })
                if let v = s.invariantViolation() ?? m.heapViolation() {
                    Issue.record("seed \(seed) step \(step): \(v)")
                }
            }
        }
        for b in live {
            #expect(check(b))
            try m.free(b.0)
        }
        #expect(allBack(s, [p]) == nil)
    }
}

@Suite("Mallocs: the arena exhausted before every call")
struct MallocExhaustionTests {
    @Test(
        "a call refused for want of pages changes nothing (blocks, counters, mappings); the retry works",
        arguments: Malloc.Policy.allCases)
    func exhaustedEveryCall(policy: Malloc.Policy) throws {
        let seed = SeededRandom.seed(default: 777)
        var rng = SeededRandom(seed: seed)
        let steps = ProcessEnvironment.int("NOMMU_FAULT_STEPS", default: 480)
        let s = try system(pages: 2048)
        let p = s.createProcess()
        let m = try Malloc(process: p, .init(policy: policy, extendSize: 16 << 10))
        var live: [(UnsafeMutableRawPointer, Int, UInt8)] = []
        var refused = 0
        var retryFailures = 0
        func intact(_ b: (UnsafeMutableRawPointer, Int, UInt8)) -> Bool {
            UnsafeRawBufferPointer(start: b.0, count: b.1).allSatisfy { $0 == b.2 }
        }
        for step in 0..<steps {
            let size = rng.next() % 5 == 0 ? Int(rng.next() % 200_000) : Int(1 + rng.next() % 900)
            let v = UInt8(truncatingIfNeeded: step) | 1
            // Keep the live set small enough that the retry fits.
            let op = live.isEmpty ? 0 : live.count > 24 ? 4 : Int(rng.next() % 5)
            let i = live.isEmpty ? 0 : Int(rng.next() % UInt64(live.count))
            // Each call twice: first with every free page taken, then (if refused) as usual.
            for exhausted in [true, false] {
                var hog: [UnsafeMutableRawPointer] = []
                if exhausted {
                    while let pages = try? s.allocatePages(order: Order(0), .uninitialized) { hog.append(pages) }
                }
                let before = (m.statistics, p.mappings, s.allocator.statistics().freePages)
                var result: UnsafeMutableRawPointer? = nil
                var error: Errno? = nil
                do {
                    switch op {
                    case 0: result = try m.malloc(size)
                    case 1: result = try m.calloc(size, 1)
                    case 2: result = try m.posixMemalign(alignment: 64, size)
                    case 3: result = try m.realloc(live[i].0, size)
                    default: try m.free(live[i].0)
                    }
                } catch let e {
                    error = e
                }
                let freeAfter = s.allocator.statistics().freePages
                for pages in hog { try s.freePages(at: pages, order: Order(0)) }
                if let error {
                    #expect(error == .noMemory, "step \(step): \(error)")
                    if !exhausted { retryFailures += 1 }
                    var after = m.statistics
                    after.calls = before.0.calls
                    after.failures = before.0.failures
                    after.firstFailure = before.0.firstFailure
                    #expect(after == before.0, "step \(step): a refused call changed the counters")
                    #expect(p.mappings == before.1 && freeAfter == before.2, "step \(step): pages or mappings moved")
                    #expect(live.allSatisfy(intact), "step \(step): a refused call changed a block")
                    refused += 1
                    continue
                }
                switch op {
                case 0, 1, 2:
                    let q = result!
                    if op == 1 { #expect(UnsafeRawBufferPointer(start: q, count: size).allSatisfy { $0 == 0 }) }
                    q.initializeMemory(as: UInt8.self, repeating: v, count: size)
                    live.append((q, size, v))
                case 3:
                    let q = result!
                    #expect(
                        UnsafeRawBufferPointer(start: q, count: min(size, live[i].1)).allSatisfy { $0 == live[i].2 })
                    q.initializeMemory(as: UInt8.self, repeating: v, count: size)
                    live[i] = (q, size, v)
                default:
                    live.remove(at: i)
                }
                break
            }
            if let violation = s.invariantViolation() ?? m.heapViolation() {
                Issue.record("step \(step): \(violation)")
                break
            }
        }
        #expect(refused > 20, "\(refused) calls were refused")
        // With the checked-in seed every refused call works once its pages are back (another
        // seed may fill the arena for real, so there the retries are only reported).
        if seed == 777 { #expect(retryFailures == 0, "\(retryFailures) retries were refused") }
        print(
            "malloc exhaustion (\(policy)): \(refused) of \(steps) calls refused with ENOMEM, none changed state; retries refused: \(retryFailures)"
        )
        for b in live {
            #expect(intact(b))
            try m.free(b.0)
        }
        #expect(allBack(s, [p]) == nil)
    }
}
