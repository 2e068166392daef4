// SPDX-License-Identifier: Apache-2.0
//
// # Mallocs over no-MMU mmap
//
// On a no-MMU system the C library's malloc draws its memory through mmap, so the rules
// of the model (contiguous runs, power-of-two blocks, trimming, clearing unless
// MAP_UNINITIALIZED) decide how fast a program allocates and whether it fits. Two shapes of
// uClibc's allocators are modelled, per process:
//
// - `simple` (uClibc's malloc-simple): every allocation is its own mapping, with a header;
//   free unmaps it.
// - `heap` (uClibc's default shape): heap areas mmapped in extend-sized chunks, carved by a
//   boundary-tag allocator with segregated free lists (coalescing, O(1) bin search by
//   bitmap), allocations above a threshold mapped directly, and wholly free areas given
//   back above an unmap threshold.
//
// All metadata of a block lives in the mapped memory itself (as a real malloc's does); a
// heap's own state is a fixed set of bin heads. Small heap chunks are cached per thread
// (ThreadCache.swift): the common pair takes no lock. Everything else takes the pthread
// mutex of one heap: threads are spread over `Configuration.heaps` heaps (HeapArena.swift).
//
// A pointer is validated once, without a lock: it must lie in a page of one of this
// malloc's areas (a byte per arena page names the heap that owns it, the kernel's
// page-owner answer rather than a search), carry the heap's tag and be an in-use chunk; the
// chunk found, and its heap, are what the free path works on.
internal import CShims
public import NommuBase
import NommuHost
public import NommuMM
import PageAllocator

/// A malloc over one process's `mmap`.
public final class Malloc: @unchecked Sendable {
    /// The allocator's shape.
    public enum Policy: String, Sendable, CaseIterable {
        /// uClibc's malloc-simple: one mapping per allocation.
        case simple
        /// uClibc's heap malloc: areas, a free list with coalescing, direct mappings for large blocks.
        case heap
    }

    /// How a malloc is set up.
    public struct Configuration: Sendable, Hashable {
        public var policy: Policy
        /// Pass `MAP_UNINITIALIZED` for `malloc`, `realloc` and `posix_memalign` (never for
        /// `calloc`); it takes effect only where the system allows uninitialised mappings.
        public var uninitialized: Bool
        /// `heap`: bytes mapped at a time for a new area (rounded up to pages).
        public var extendSize: Int
        /// `heap`: requests of this many bytes or more get their own mapping.
        public var mmapThreshold: Int
        /// `heap`: a wholly free area of this many bytes or more is given back (one wholly
        /// free area is kept for reuse).
        public var unmapThreshold: Int
        /// Heaps threads are spread over (glibc's arenas: each has its own lock, bins and
        /// areas). 1 is uClibc's single heap; more lets threads whose caches miss run side by
        /// side, at the cost of an area per heap in use.
        public var heaps: Int

        /// The largest size, threshold or alignment anything is asked for (2^56 bytes: more
        /// than any machine maps; a configuration above it is `EINVAL`, a request `ENOMEM`).
        public static let maxBytes = 1 << 56
        /// The most heaps a malloc has (a page's owner is a byte of the page map).
        public static let maxHeaps = 64
        /// Heaps by default: glibc's arena limit on a 64-bit machine with one CPU.
        public static let defaultHeaps = 8

        public init(
            policy: Policy = .heap, uninitialized: Bool = false, extendSize: Int = 64 << 10,
            mmapThreshold: Int = 128 << 10, unmapThreshold: Int = 64 << 10, heaps: Int = defaultHeaps
        ) {
            self.policy = policy
            self.uninitialized = uninitialized
            self.extendSize = extendSize
            self.mmapThreshold = mmapThreshold
            self.unmapThreshold = unmapThreshold
            self.heaps = heaps
        }
    }

    public let process: Process
    public let configuration: Configuration
    /// The heaps (`heapCount` of them; the simple policy uses theirs only for counting).
    let heaps: UnsafeMutablePointer<HeapArena>
    let heapCount: Int
    /// Guards the thread caches' registry (making, reusing, retiring a cache) and the next
    /// heap to give a thread.
    let cacheLock = HostMutex<Int>(0)
    /// Guards the counts of mappings (`mmaps`, `munmaps`, bytes held and their peak) and of
    /// failures; taken inside a heap's lock, never around one.
    let statsLock = HostMutex<Int>(0)
    private let mapCountStorage: UnsafeMutablePointer<Counters>

    /// This malloc's never-reused id (its thread caches' TLS slots name it).
    let id: UInt64
    /// Whether small chunks are cached per thread (the heap policy).
    let cachesSmallChunks: Bool
    /// The largest request the thread caches serve (0 when they do not).
    let smallLimit: Int
    /// The first of the thread caches made for this malloc (a list through the caches, never
    /// shortened while the malloc lives: a retired cache waits for a new thread; read with
    /// acquire loads, without a lock).
    let cacheHead: UnsafeMutablePointer<Int64>
    /// Bytes live in all the heaps (requested sizes, the thread caches' not included): each
    /// heap adds its changes (relaxed atomic), for the peak checks.
    let liveBytesMirror: UnsafeMutablePointer<Int64>
    /// The arena: first address, bytes, page shift.
    let arenaBase: UInt
    let arenaBytes: UInt
    let pageShift: Int
    /// One byte per arena page: 0, or the heap whose area holds the page, plus one, with
    /// `areaStartBit` on the area's first page. Written under the owning heap's lock (a byte
    /// store: pages of different areas never share one), read by anyone (relaxed).
    let pageMap: UnsafeMutablePointer<UInt8>
    static let areaStartBit: UInt8 = 0x80

    var mapCounts: Counters {
        unsafeAddress { UnsafePointer(mapCountStorage) }
        unsafeMutableAddress { mapCountStorage }
    }

    /// Counters, for reports.
    public struct Counters: Sendable, Hashable {
        /// mmap and munmap calls made.
        public var mmaps = 0
        public var munmaps = 0
        /// Bytes the process has asked for and not freed (requested sizes).
        public var liveBytes = 0
        /// Blocks live.
        public var liveBlocks = 0
        /// Bytes of memory the process's malloc mappings hold (their regions, slack included).
        public var heldBytes = 0
        /// The most `liveBytes` and `heldBytes` have been.
        public var peakLiveBytes = 0
        public var peakHeldBytes = 0
        /// Calls made (malloc, calloc, realloc, free, posix_memalign), failed ones included.
        public var calls = 0
        /// Calls that failed with ENOMEM.
        public var failures = 0
        /// The first call that failed with ENOMEM, nil while none has.
        public var firstFailure: Failure?
    }

    /// The first allocation that did not fit: what the program asked for, what the malloc
    /// asked of `mmap` for it, and the largest free block in the system then.
    public struct Failure: Sendable, Hashable {
        /// The call's number among the malloc's calls (1-based).
        public var call: Int
        /// Bytes the program asked for.
        public var size: Int
        /// Bytes of the `mmap` the malloc asked for to serve it (0 when it asked for none).
        public var mmapBytes: Int
        /// The largest free block in the system when it failed.
        public var largestFreeBlockBytes: Int
    }

    /// A malloc for `process`. - Throws: `EINVAL` for thresholds or an extend size that are
    /// not positive, or a heap count outside 1...`Configuration.maxHeaps`.
    public init(process: Process, _ configuration: Configuration = Configuration()) throws(Errno) {
        for v in [configuration.extendSize, configuration.mmapThreshold, configuration.unmapThreshold] {
            guard v > 0, v <= Configuration.maxBytes else { throw .invalidArgument }
        }
        guard configuration.heaps >= 1, configuration.heaps <= Configuration.maxHeaps else { throw .invalidArgument }
        self.process = process
        self.configuration = configuration
        heapCount = configuration.heaps
        heaps = .allocate(capacity: heapCount)
        for i in 0..<heapCount { (heaps + i).initialize(to: HeapArena.allocate(index: i)) }
        mapCountStorage = .allocate(capacity: 1)
        mapCountStorage.initialize(to: Counters())
        let allocator = process.system.allocator
        arenaBase = UInt(bitPattern: allocator.baseAddress)
        arenaBytes = UInt(allocator.totalPages) << UInt(allocator.pageSize.trailingZeroBitCount)
        pageShift = allocator.pageSize.trailingZeroBitCount
        pageMap = .allocate(capacity: allocator.totalPages)
        pageMap.initialize(repeating: 0, count: allocator.totalPages)
        cacheHead = .allocate(capacity: 1)
        cacheHead.initialize(to: 0)
        liveBytesMirror = .allocate(capacity: 1)
        liveBytesMirror.initialize(to: 0)
        cachesSmallChunks = configuration.policy == .heap
        smallLimit =
            cachesSmallChunks
            ? max(0, min(ThreadCache.largestPayload, configuration.mmapThreshold - 16 - 1)) : 0
        id = MallocRegistry.newID()
        MallocRegistry.register(self, id)
    }

    deinit {
        MallocRegistry.forget(id)
        var next = cshim_load_acquire_i64(cacheHead)
        while next != 0 {
            let c = ThreadCache(UnsafeMutableRawPointer(bitPattern: Int(next))!)
            next = c.load(ThreadCache.nextCacheSlot)
            c.deallocate()
        }
        cacheHead.deallocate()
        liveBytesMirror.deallocate()
        pageMap.deallocate()
        for i in 0..<heapCount { heaps[i].deallocate() }
        heaps.deallocate()
        mapCountStorage.deinitialize(count: 1)
        mapCountStorage.deallocate()
    }

    /// The counters now: the heaps', every thread cache's and the mapping counts. (Exact when
    /// no other thread is in a call; otherwise each heap's figures are of a moment of their own.)
    public var statistics: Counters {
        var c = statsLock.withLock { _ in mapCounts }
        var peak = 0
        for i in 0..<heapCount {
            let a = heaps[i]
            a.withLock {
                c.calls += a.load(HeapArena.callsSlot)
                c.liveBytes += a.load(HeapArena.liveBytesSlot)
                c.liveBlocks += a.load(HeapArena.liveBlocksSlot)
                peak = max(peak, a.load(HeapArena.peakSlot))
            }
        }
        let t = cacheTotals()
        c.calls += t.calls
        c.liveBytes += t.liveBytes
        c.liveBlocks += t.liveBlocks
        c.peakLiveBytes = max(peak, t.peak, c.liveBytes)
        return c
    }

    /// Bytes the malloc's mappings hold now, read without a lock: for a caller that makes
    /// the malloc's calls itself, on one thread (the replay, after every event).
    package var heldBytesNow: Int { mapCounts.heldBytes }

    /// Bytes live now (requested sizes), the thread caches' included.
    package var liveBytesNow: Int {
        var n = 0
        for i in 0..<heapCount { n += heaps[i].withLock { heaps[i].load(HeapArena.liveBytesSlot) } }
        return n + cacheTotals().liveBytes
    }

    /// Called (under the malloc's counting lock, inside the call that mapped) each time the
    /// bytes held reach a new peak; set it before the first call.
    public nonisolated(unsafe) var onNewPeak: (() -> Void)? = nil

    /// Called (under the counting lock, inside the failing call) when the first ENOMEM is
    /// noted in `firstFailure`; set it before the first call. (`nommu run` records the call
    /// stack here: the one of the call that failed first, whatever other threads do.)
    public nonisolated(unsafe) var onFirstFailure: (() -> Void)? = nil

    // MARK: The C contracts

    /// `malloc(size)`: a 16-byte aligned block of at least `size` bytes (`size` 0 gives a
    /// unique minimum block). - Throws: `ENOMEM`.
    public func malloc(_ size: Int) throws(Errno) -> UnsafeMutableRawPointer {
        if UInt(bitPattern: size) <= UInt(bitPattern: smallLimit), let tc = cachedThreadCache(),
            let c = tc.pop(Chunk.size(forPayload: size) &>> 4)
        {
            return handOut(c, size, tc)
        }
        return try allocateSlow(size, zeroed: false)
    }

    /// `calloc(count, size)`: zeroed memory, whatever the uninitialised switch says.
    /// - Throws: `ENOMEM`, also when `count * size` overflows.
    public func calloc(_ count: Int, _ size: Int) throws(Errno) -> UnsafeMutableRawPointer {
        let (total, overflow) = count.multipliedReportingOverflow(by: size)
        guard count >= 0, size >= 0, !overflow else { throw .noMemory }
        if UInt(bitPattern: total) <= UInt(bitPattern: smallLimit), let tc = cachedThreadCache(),
            let c = tc.pop(Chunk.size(forPayload: total) &>> 4)
        {
            let p = handOut(c, total, tc)
            p.initializeMemory(as: UInt8.self, repeating: 0, count: total)
            return p
        }
        return try allocateSlow(total, zeroed: true)
    }

    /// A cached chunk handed to the program: tagged, counted in the thread's cache.
    @inline(__always)
    private func handOut(_ c: Chunk, _ size: Int, _ tc: ThreadCache) -> UnsafeMutableRawPointer {
        let p = c.payload
        // (The chunk is of this size's class, popped from its bin.)
        c.tag(BlockHeader.heapTag, slack: Chunk.size(forPayload: size) &- Chunk.overhead &- size)
        tc.add(ThreadCache.callsSlot, 1)
        tc.add(ThreadCache.liveBlocksSlot, 1)
        let live = tc.load(ThreadCache.liveBytesSlot) &+ Int64(size)
        tc.store(ThreadCache.liveBytesSlot, live)
        let now = cshim_load_relaxed_i64(liveBytesMirror) &+ live
        if now > tc.load(ThreadCache.peakSlot) { tc.store(ThreadCache.peakSlot, now) }
        return p
    }

    /// The heap the calling thread allocates in: its cache's; heap 0 for a thread that has
    /// no cache (one that could not be armed).
    @inline(__always)
    func threadHeap(_ cache: ThreadCache?) -> HeapArena {
        heaps[cache.map { Int($0.load(ThreadCache.heapSlot)) } ?? 0]
    }

    /// `malloc`/`calloc` under the thread's heap's lock (a cache miss, a large request, the
    /// simple policy).
    @inline(never)
    private func allocateSlow(_ size: Int, zeroed: Bool) throws(Errno) -> UnsafeMutableRawPointer {
        // The thread's cache is made on its first call here, so that its frees find it and
        // it has a heap.
        let cache = threadCache()
        let a = threadHeap(cache)
        // A block with a mapping of its own is mapped (and cleared) outside the lock and
        // counted under it; when the mapping fails, the locked path below tries again and
        // records the failure.
        if mapsItsOwn(size, alignment: 16), let (p, held) = try? mapBlockUncounted(size, zeroed: zeroed, heap: a.index)
        {
            countMapped(held: held)
            a.withLock {
                a.add(HeapArena.callsSlot, 1)
                note(a, allocated: size)
            }
            return p
        }
        var failedMap = 0
        do {
            return try a.withLock { () throws(Errno) -> UnsafeMutableRawPointer in
                a.add(HeapArena.callsSlot, 1)
                // A cache miss: one chunk before the block and two after it go into the cache
                // too, carved together, so the block handed out (and most likely freed and
                // taken again) shares no cache line with another thread's chunks.
                let refill =
                    UInt(bitPattern: size) <= UInt(bitPattern: min(smallLimit, ThreadCache.largestSmallPayload))
                    ? cache : nil
                let before = refill.flatMap { refillOne(a, $0, size) }
                let p = try retrying(a, &failedMap) { () throws(Errno) in
                    try allocate(a, size, alignment: 16, zeroed: zeroed)
                }
                if let refill, before != nil {
                    _ = refillOne(a, refill, size)
                    _ = refillOne(a, refill, size)
                }
                note(a, allocated: size)
                return p
            }
        } catch {
            return try elsewhere(error, size, alignment: 16, zeroed: zeroed, besides: a, failedMap: failedMap)
        }
    }

    /// Carves one chunk for a request of `size` from heap `a`'s free chunks (never a new
    /// area) into `cache`; nil when none fits or the bin is full. Lock held.
    private func refillOne(_ a: HeapArena, _ cache: ThreadCache, _ size: Int) -> Chunk? {
        let need = Chunk.size(forPayload: size)
        guard cache.hasRoom(need >> 4), let c = takeFreeChunk(a, need)
        else { return nil }
        trim(a, c, to: need)
        guard c.size == need else {
            // A free chunk just too big to split: not one of this bin's; back it goes.
            freeChunk(a, c, mayUnmap: false)
            return nil
        }
        c.tag(BlockHeader.cachedTag, requested: c.size - Chunk.overhead)
        return cache.push(c, need >> 4) ? c : nil
    }

    /// `realloc(pointer, size)`: nil `pointer` is `malloc`; size 0 frees and returns nil
    /// (glibc's behaviour); otherwise the block grows or shrinks in place when it can, or
    /// moves. - Throws: `ENOMEM` (the old block is untouched); `EINVAL` for a pointer that
    /// is not a live block.
    public func realloc(_ pointer: UnsafeMutableRawPointer?, _ size: Int) throws(Errno) -> UnsafeMutableRawPointer? {
        var old = 0
        return try realloc(pointer, size, oldSize: &old)
    }

    /// `realloc`, setting `oldSize` to the size the old block was asked for when the call
    /// succeeds (0 for a nil `pointer`); on a throw nothing changes, `oldSize` included.
    @inline(__always)
    public func realloc(_ pointer: UnsafeMutableRawPointer?, _ size: Int, oldSize: inout Int) throws(Errno)
        -> UnsafeMutableRawPointer?
    {
        guard let pointer else {
            let q = try malloc(size)
            oldSize = 0
            return q
        }
        if size == 0 {
            oldSize = try freeReturningSize(pointer)
            return nil
        }
        // Small to small on the thread's cache, without a lock: the same chunk size keeps
        // its chunk; another moves to a cached chunk of the new size (when there is one).
        if UInt(bitPattern: size) <= UInt(bitPattern: smallLimit), let tc = cachedThreadCache(),
            let (c, old, chunkSize, _) = ownedHeapChunk(pointer), chunkSize <= ThreadCache.largestChunk
        {
            let need = Chunk.size(forPayload: size)
            if need == chunkSize {
                c.tag(BlockHeader.heapTag, slack: chunkSize &- Chunk.overhead &- size)
                tc.add(ThreadCache.callsSlot, 1)
                tc.add(ThreadCache.liveBytesSlot, Int64(size - old))
                oldSize = old
                return pointer
            }
            if tc.hasRoom(chunkSize >> 4), let n = tc.pop(need >> 4) {
                let q = handOut(n, size, tc)
                q.copyMemory(from: pointer, byteCount: min(size, chunkSize - Chunk.overhead))
                c.tag(BlockHeader.cachedTag, slack: 0)
                _ = tc.push(c, chunkSize >> 4)
                // handOut counted this call and the new block; the old block goes.
                tc.add(ThreadCache.liveBlocksSlot, -1)
                tc.add(ThreadCache.liveBytesSlot, -Int64(old))
                oldSize = old
                return q
            }
        }
        return try reallocSlow(pointer, size, oldSize: &oldSize)
    }

    /// `realloc` in the heap that holds the block (glibc's `_int_realloc` in the chunk's
    /// arena), and when that heap has no room, into another heap's free chunk.
    @inline(never)
    private func reallocSlow(_ pointer: UnsafeMutableRawPointer, _ size: Int, oldSize: inout Int) throws(Errno)
        -> UnsafeMutableRawPointer
    {
        let a = heap(holding: pointer) ?? threadHeap(threadCache())
        // A block that moves to a mapping of its own gets it (cleared) before the lock is
        // taken; when the call does not use it (in place after all, or refused), it goes.
        let fresh = premapped(for: pointer, size, heap: a.index)
        var used = false
        defer { if let fresh, !used { discardUncounted(fresh.block) } }
        var failedMap = 0
        do {
            let (q, old) = try a.withLock { () throws(Errno) -> (UnsafeMutableRawPointer, Int) in
                a.add(HeapArena.callsSlot, 1)
                let h = try header(of: pointer, in: a)
                let old = Int(h.requested)
                let q = try retrying(a, &failedMap) { () throws(Errno) in
                    try reallocate(a, pointer, h, size, fresh: fresh, used: &used)
                }
                addLive(a, size - old, blocks: 0)
                notePeak(a)
                return (q, old)
            }
            oldSize = old
            return q
        } catch {
            guard error == .noMemory, let q = allocateInOtherHeaps(size, alignment: 16, zeroed: false, besides: a)
            else {
                if error == .noMemory { noteFailure(size, mmapBytes: failedMap) }
                throw error
            }
            // The new block is counted in its heap; the old one goes from its own.
            do {
                oldSize = try a.withLock { () throws(Errno) -> Int in
                    let h = try header(of: pointer, in: a)
                    q.copyMemory(from: pointer, byteCount: min(size, h.usable))
                    if h.isMapped { unmapBlock(pointer) } else { heapFree(a, pointer) }
                    addLive(a, -Int(h.requested), blocks: -1)
                    return Int(h.requested)
                }
                return q
            } catch {
                // The block was freed meanwhile by another thread (a program's race).
                try? free(q)
                throw error
            }
        }
    }

    /// A mapping of its own for `realloc(pointer, size)`, made without the lock, when the
    /// block will have to move to one: `size` gets one, and the block is a heap chunk or a
    /// mapped block too small for it (looked at without the lock; the locked call checks).
    private func premapped(for pointer: UnsafeMutableRawPointer, _ size: Int, heap: Int) -> (
        block: UnsafeMutableRawPointer, held: Int
    )? {
        guard mapsItsOwn(size, alignment: 16) else { return nil }
        if ownedHeapChunk(pointer) == nil {
            // A block of its own: its 32-byte header must lie in the arena to be read.
            let a = UInt(bitPattern: pointer)
            guard a & 15 == 0, a &- arenaBase &- UInt(BlockHeader.size) < arenaBytes else { return nil }
            let h = header(pointer)
            guard h.tag == BlockHeader.mappedTag,
                h.mappingStart &+ h.mappingLength < UInt64(a) &+ UInt64(size)
            else { return nil }
        }
        guard let (block, held) = try? mapBlockUncounted(size, zeroed: false, heap: heap) else { return nil }
        return (block, held)
    }

    /// Unmaps a block of its own that was never handed out or counted.
    private func discardUncounted(_ block: UnsafeMutableRawPointer) {
        let h = header(block)
        unmapUncounted(UnsafeMutableRawPointer(bitPattern: UInt(h.mappingStart))!, Int(h.mappingLength))
    }

    /// `free(pointer)`; nil is a no-op. - Throws: `EINVAL` for a pointer that is not a live
    /// block (a double free, or a pointer this malloc did not return).
    public func free(_ pointer: UnsafeMutableRawPointer?) throws(Errno) {
        guard let pointer else { return }
        _ = try freeReturningSize(pointer)
    }

    /// `free(pointer)`, returning the size the block was asked for. - Throws: `EINVAL` for
    /// a pointer that is not a live block.
    @inline(__always)
    public func freeReturningSize(_ pointer: UnsafeMutableRawPointer) throws(Errno) -> Int {
        guard let (c, requested, size, owner) = ownedHeapChunk(pointer) else { return try freeMapped(pointer) }
        if size <= ThreadCache.largestChunk, let tc = cachedThreadCache() {
            c.tag(BlockHeader.cachedTag, slack: 0)
            if tc.push(c, size &>> 4) || (size <= ThreadCache.largestSmallChunk && flushOlder(tc, size &>> 4, then: c))
            {
                tc.add(ThreadCache.callsSlot, 1)
                tc.add(ThreadCache.liveBlocksSlot, -1)
                tc.add(ThreadCache.liveBytesSlot, -Int64(requested))
                return requested
            }
        }
        freeChunkSlow(heaps[owner], c, requested)
        return requested
    }

    /// A free into a full small bin: the bin's older chunks go back to their heaps together,
    /// each heap's lock taken once for a run of its chunks (jemalloc's tcache flushes so),
    /// and `c` goes onto it.
    @inline(never)
    private func flushOlder(_ tc: ThreadCache, _ bin: Int, then c: Chunk) -> Bool {
        guard var older = tc.cutOlder(bin, keep: Int(ThreadCache.perBin) / 2) else { return false }
        var holder = HeapLockHolder()
        while true {
            let next = ThreadCache.next(older)
            let a = heap(of: older)
            holder.hold(a)
            older.untag()
            freeChunk(a, older)
            guard let next else { break }
            older = Chunk(next)
        }
        holder.release()
        return tc.push(c, bin)
    }

    /// A validated heap chunk back to its heap, under that heap's lock.
    @inline(never)
    private func freeChunkSlow(_ a: HeapArena, _ c: Chunk, _ requested: Int) {
        a.withLock {
            a.add(HeapArena.callsSlot, 1)
            c.untag()  // a second free is refused
            freeChunk(a, c)
            addLive(a, -requested, blocks: -1)
        }
    }

    /// `free` of anything that is not a chunk of this heap: a block with its own mapping,
    /// or an invalid pointer (EINVAL, nothing changes).
    @inline(never)
    private func freeMapped(_ pointer: UnsafeMutableRawPointer) throws(Errno) -> Int {
        // Validated and counted under its heap's lock (a second free then finds no tag),
        // unmapped after it.
        let a = heap(holding: pointer) ?? threadHeap(cachedThreadCache())
        let (start, length, requested) = try a.withLock {
            () throws(Errno) -> (UnsafeMutableRawPointer, Int, Int) in
            a.add(HeapArena.callsSlot, 1)
            let h = try header(of: pointer, in: a)
            guard h.isMapped else { throw .invalidArgument }
            let (start, length) = detachBlock(pointer)
            addLive(a, -Int(h.requested), blocks: -1)
            return (start, length, Int(h.requested))
        }
        unmapUncounted(start, length)
        return requested
    }

    /// `posix_memalign(&p, alignment, size)`. - Throws: `EINVAL` for an alignment that is
    /// not a power of two multiple of the pointer size; `ENOMEM`.
    public func posixMemalign(alignment: Int, _ size: Int) throws(Errno) -> UnsafeMutableRawPointer {
        guard alignment >= MemoryLayout<UnsafeRawPointer>.size, alignment & (alignment - 1) == 0 else {
            throw .invalidArgument
        }
        let a = threadHeap(threadCache())
        var failedMap = 0
        do {
            return try a.withLock { () throws(Errno) -> UnsafeMutableRawPointer in
                a.add(HeapArena.callsSlot, 1)
                let p = try retrying(a, &failedMap) { () throws(Errno) in
                    try allocate(a, size, alignment: max(16, alignment), zeroed: false)
                }
                note(a, allocated: size)
                return p
            }
        } catch {
            return try elsewhere(
                error, size, alignment: max(16, alignment), zeroed: false, besides: a, failedMap: failedMap)
        }
    }

    /// `malloc_usable_size(pointer)`: bytes usable in the block (0 for nil).
    /// - Throws: `EINVAL` for a pointer that is not a live block.
    public func usableSize(_ pointer: UnsafeMutableRawPointer?) throws(Errno) -> Int {
        guard let pointer else { return 0 }
        guard let a = heap(holding: pointer) else { throw .invalidArgument }
        return try a.withLock { () throws(Errno) -> Int in try header(of: pointer, in: a).usable }
    }

    // MARK: Failures

    /// Runs an allocation on heap `a` (its lock held). Before it fails with ENOMEM, the
    /// calling thread's cached chunks of this heap go back to it (where they may coalesce
    /// into room) and it is tried once more; `failedMap` gets the bytes of the `mmap` that
    /// failed, if one did.
    @inline(__always)
    private func retrying<T>(_ a: HeapArena, _ failedMap: inout Int, _ body: () throws(Errno) -> T) throws(Errno)
        -> T
    {
        a.store(HeapArena.failedMapSlot, 0)
        do {
            return try body()
        } catch {
            if error == .noMemory, let tc = existingThreadCache(), tc.chunks > 0 {
                flush(tc, only: a, keepAreas: true)
                a.store(HeapArena.failedMapSlot, 0)
                do throws(Errno) { return try body() } catch {}
            }
            failedMap = a.load(HeapArena.failedMapSlot)
            throw error
        }
    }

    /// After an allocation failed in heap `a` (its lock released): an ENOMEM for a heap chunk
    /// is tried on the other heaps' free chunks; when none has room the failure is counted,
    /// and noted when it is the first.
    private func elsewhere(
        _ error: Errno, _ size: Int, alignment: Int, zeroed: Bool, besides a: HeapArena, failedMap: Int
    ) throws(Errno) -> UnsafeMutableRawPointer {
        guard error == .noMemory else { throw error }
        if let p = allocateInOtherHeaps(size, alignment: alignment, zeroed: zeroed, besides: a) { return p }
        noteFailure(size, mmapBytes: failedMap)
        throw error
    }

    /// A heap chunk for `size` from the free chunks of a heap other than `a`, each heap under
    /// its own lock, as glibc's `arena_get_retry` tries another arena: no new area (`a` could
    /// not map one, and a failed call maps nothing). Counted in the heap that serves it.
    private func allocateInOtherHeaps(_ size: Int, alignment: Int, zeroed: Bool, besides a: HeapArena)
        -> UnsafeMutableRawPointer?
    {
        guard heapCount > 1, configuration.policy == .heap, size >= 0, size <= Configuration.maxBytes,
            alignment <= Configuration.maxBytes, !mapsItsOwn(size, alignment: alignment)
        else { return nil }
        for i in 0..<heapCount where i != a.index {
            let b = heaps[i]
            let p = b.withLock { () -> UnsafeMutableRawPointer? in
                guard let p = try? heapAllocate(b, size, alignment: alignment, zeroed: zeroed, grow: false) else {
                    return nil
                }
                note(b, allocated: size)
                return p
            }
            if let p { return p }
        }
        return nil
    }

    /// Counts a call that failed with ENOMEM, and notes it in `firstFailure` when it is the first.
    private func noteFailure(_ size: Int, mmapBytes: Int) {
        statsLock.withLock { _ in
            mapCounts.failures += 1
            guard mapCounts.firstFailure == nil else { return }
            mapCounts.firstFailure = Failure(
                call: callsSoFar(), size: size, mmapBytes: mmapBytes,
                largestFreeBlockBytes: process.system.allocator.statistics().largestFreeBlockBytes)
            onFirstFailure?()
        }
    }

    /// Calls made so far in every heap and thread cache (relaxed reads: exact for the calling
    /// thread's own calls, and for all of them while no other thread is in one).
    private func callsSoFar() -> Int {
        var n = cacheTotals().calls
        for i in 0..<heapCount { n += heaps[i].load(HeapArena.callsSlot) }
        return n
    }

    /// Starts the call counts again (calls, failures, mmaps, munmaps, the first failure),
    /// keeping the blocks and what they hold: for a process forked from this one, whose
    /// counts are its own from the fork on.
    package func restartCallCounts() {
        // The caches' counters fold into their heaps' first (their threads are gone).
        cacheLock.withLock { _ in
            forEachCache { c in
                let a = heaps[Int(c.load(ThreadCache.heapSlot))]
                let t = c.takeCounters()
                a.withLock { addLive(a, t.liveBytes, blocks: t.liveBlocks) }
            }
        }
        var live = 0
        for i in 0..<heapCount {
            let a = heaps[i]
            a.withLock {
                a.store(HeapArena.callsSlot, 0)
                a.store(HeapArena.peakSlot, 0)
                live += a.load(HeapArena.liveBytesSlot)
            }
        }
        heaps[0].withLock { heaps[0].store(HeapArena.peakSlot, live) }
        statsLock.withLock { _ in
            mapCounts.failures = 0
            mapCounts.mmaps = 0
            mapCounts.munmaps = 0
            mapCounts.firstFailure = nil
            mapCounts.peakHeldBytes = mapCounts.heldBytes
        }
    }

    // MARK: Counting

    /// Counts a block allocated in heap `a` (its lock held).
    private func note(_ a: HeapArena, allocated size: Int) {
        addLive(a, size, blocks: 1)
        notePeak(a)
    }

    /// Adds to heap `a`'s live bytes and blocks (its lock held), and to the malloc's sum.
    @inline(__always)
    func addLive(_ a: HeapArena, _ bytes: Int, blocks: Int) {
        a.add(HeapArena.liveBytesSlot, bytes)
        a.add(HeapArena.liveBlocksSlot, blocks)
        cshim_add_relaxed_i64(liveBytesMirror, Int64(bytes))
    }

    /// Takes the peak of everything live (heap `a`'s lock held): every heap's bytes and
    /// every thread cache's.
    private func notePeak(_ a: HeapArena) {
        let caches = cshim_load_relaxed_i64(cacheHead) == 0 ? 0 : cacheTotals().liveBytes
        let all = Int(cshim_load_relaxed_i64(liveBytesMirror)) + caches
        if all > a.load(HeapArena.peakSlot) { a.store(HeapArena.peakSlot, all) }
    }

    // MARK: Dispatch

    func allocate(_ a: HeapArena, _ size: Int, alignment: Int, zeroed: Bool) throws(Errno) -> UnsafeMutableRawPointer {
        // No mapping is this big: and below these bounds the sums of sizes, alignments and
        // headers that follow cannot overflow.
        guard size >= 0, size <= Configuration.maxBytes, alignment <= Configuration.maxBytes else {
            throw .noMemory
        }
        switch configuration.policy {
        case .simple:
            return try mapBlock(a, size, alignment: alignment, zeroed: zeroed)
        case .heap:
            if size + alignment >= configuration.mmapThreshold {
                return try mapBlock(a, size, alignment: alignment, zeroed: zeroed)
            }
            return try heapAllocate(a, size, alignment: alignment, zeroed: zeroed)
        }
    }

    /// Moves or resizes a live block of heap `a` (its lock held). `fresh`, when given, is a
    /// block of its own for `size` mapped beforehand: used (and counted) instead of a new
    /// allocation when the block has to move, and `used` says so.
    func reallocate(
        _ a: HeapArena, _ p: UnsafeMutableRawPointer, _ h: HeaderView, _ size: Int,
        fresh: (block: UnsafeMutableRawPointer, held: Int)? = nil, used: inout Bool
    ) throws(Errno) -> UnsafeMutableRawPointer {
        guard size <= Configuration.maxBytes else { throw .noMemory }
        if !h.isMapped, let q = heapResizeInPlace(a, p, size) { return q }
        if h.isMapped && size <= h.usable && size + 16 > h.usable / 2 {
            header(p).requested = UInt64(size)
            return p
        }
        let q: UnsafeMutableRawPointer
        if let fresh, !used {
            countMapped(held: fresh.held)
            used = true
            q = fresh.block
        } else {
            q = try allocate(a, size, alignment: 16, zeroed: false)
        }
        q.copyMemory(from: p, byteCount: min(size, h.usable))
        if h.isMapped {
            unmapBlock(p)
        } else {
            heapFree(a, p)
        }
        return q
    }

    // MARK: mmap

    /// One anonymous private mapping, uninitialised when asked and allowed (heap `a`'s lock
    /// held: a failure's size is noted there).
    func map(_ a: HeapArena, _ bytes: Int, uninitialized: Bool) throws(Errno) -> UnsafeMutableRawPointer {
        do {
            let (p, held) = try mapUncounted(bytes, uninitialized: uninitialized)
            countMapped(held: held)
            return p
        } catch {
            a.store(HeapArena.failedMapSlot, bytes)
            throw error
        }
    }

    /// One anonymous private mapping and the bytes its region holds, counting nothing: it
    /// needs no lock (mapping a block of its own is the model's work, clearing included,
    /// and runs outside the heaps' locks). - Throws: `ENOMEM`, whatever mmap says (EINVAL
    /// for absurd lengths included), as a malloc does.
    func mapUncounted(_ bytes: Int, uninitialized: Bool) throws(Errno) -> (UnsafeMutableRawPointer, held: Int) {
        var flags: MapFlags = [.private, .anonymous]
        if uninitialized { flags.insert(.uninitialized) }
        guard let a = try? process.mmap(length: UInt(bytes), protection: [.read, .write], flags: flags) else {
            throw .noMemory
        }
        let held = process.regionExtent(ofMappingAt: a.rawValue).map { Int($0.top - $0.start) } ?? 0
        return (a.pointer!, held)
    }

    /// Counts a mapping made.
    func countMapped(held: Int) {
        statsLock.withLock { _ in
            mapCounts.mmaps += 1
            mapCounts.heldBytes += held
            if mapCounts.heldBytes > mapCounts.peakHeldBytes {
                mapCounts.peakHeldBytes = mapCounts.heldBytes
                onNewPeak?()
            }
        }
    }

    func unmap(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        countUnmapped(p)
        unmapUncounted(p, bytes)
    }

    /// Counts a mapping about to go.
    func countUnmapped(_ p: UnsafeMutableRawPointer) {
        let held = process.regionExtent(ofMappingAt: UInt(bitPattern: p)).map { Int($0.top - $0.start) } ?? 0
        statsLock.withLock { _ in
            mapCounts.heldBytes -= held
            mapCounts.munmaps += 1
        }
    }

    func unmapUncounted(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        do {
            try process.munmap(address: UInt(bitPattern: p), length: UInt(bytes))
        } catch {
            preconditionFailure("malloc lost track of its mapping at \(p): \(error)")
        }
    }

    /// Whether a request of `size` bytes aligned to `alignment` gets a mapping of its own.
    @inline(__always)
    func mapsItsOwn(_ size: Int, alignment: Int) -> Bool {
        guard size >= 0, size <= Configuration.maxBytes else { return false }
        return configuration.policy == .simple || size + alignment >= configuration.mmapThreshold
    }

    /// A block with its own mapping, of heap `a` (its lock held):
    /// [mapping start … | header | payload].
    func mapBlock(_ a: HeapArena, _ size: Int, alignment: Int, zeroed: Bool) throws(Errno) -> UnsafeMutableRawPointer {
        do {
            let (p, held) = try mapBlockUncounted(size, alignment: alignment, zeroed: zeroed, heap: a.index)
            countMapped(held: held)
            return p
        } catch {
            a.store(HeapArena.failedMapSlot, size + BlockHeader.size + (alignment > 16 ? alignment : 0))
            throw error
        }
    }

    /// `mapBlock` without a lock: the block (freed under the lock of heap `heap`) and the
    /// bytes its mapping holds, to be counted (`countMapped`).
    func mapBlockUncounted(_ size: Int, alignment: Int = 16, zeroed: Bool, heap: Int) throws(Errno) -> (
        UnsafeMutableRawPointer, held: Int
    ) {
        let length = size + BlockHeader.size + (alignment > 16 ? alignment : 0)
        let (base, held) = try mapUncounted(length, uninitialized: configuration.uninitialized && !zeroed)
        var payload = UInt(bitPattern: base) + UInt(BlockHeader.size)
        if alignment > 16 { payload = (payload + UInt(alignment) - 1) & ~UInt(alignment - 1) }
        let p = UnsafeMutableRawPointer(bitPattern: payload)!
        let h = header(p)
        h.mappingStart = UInt64(UInt(bitPattern: base))
        h.mappingLength = UInt64(length)
        h.heap = UInt64(heap)
        h.requested = UInt64(size)
        h.tag = BlockHeader.mappedTag
        return (p, held)
    }

    func unmapBlock(_ p: UnsafeMutableRawPointer) {
        let (start, length) = detachBlock(p)
        unmapUncounted(start, length)
    }

    /// Takes a block of its own out of the malloc (its heap's lock held): its tag (a second
    /// free is then refused) and its mapping's count. - Returns: the mapping, to be unmapped.
    func detachBlock(_ p: UnsafeMutableRawPointer) -> (UnsafeMutableRawPointer, Int) {
        let h = header(p)
        let start = UnsafeMutableRawPointer(bitPattern: UInt(h.mappingStart))!
        h.tag = 0
        countUnmapped(start)
        return (start, Int(h.mappingLength))
    }

    /// The heap that holds the block at `p`, found without a lock (the caller checks it
    /// again under that heap's lock, `header(of:in:)`): the owner of a heap chunk's page, or
    /// the heap a mapped block's header names; nil for anything else.
    func heap(holding p: UnsafeMutableRawPointer) -> HeapArena? {
        let a = UInt(bitPattern: p)
        let off = a &- arenaBase &- UInt(Chunk.overhead)
        guard a & 15 == 0, off < arenaBytes else { return nil }
        if let h = pageOwner(Int(off &>> UInt(pageShift))) { return heaps[h] }
        guard a &- arenaBase &- UInt(BlockHeader.size) < arenaBytes else { return nil }
        let h = header(p)
        guard h.tag == BlockHeader.mappedTag, h.heap < UInt64(heapCount) else { return nil }
        return heaps[Int(h.heap)]
    }

    /// The heap a cached or in-use chunk's area belongs to.
    @inline(__always)
    func heap(of c: Chunk) -> HeapArena {
        heaps[pageOwner(Int((c.address &- arenaBase) &>> UInt(pageShift))) ?? 0]
    }

    /// The header of a live block of heap `a` (its lock held). - Throws: `EINVAL` when `p`
    /// is not one (a block of another heap included).
    func header(of p: UnsafeMutableRawPointer, in a: HeapArena) throws(Errno) -> HeaderView {
        let h = try header(of: p)
        if h.isMapped {
            guard header(p).heap == UInt64(a.index) else { throw .invalidArgument }
        } else {
            guard heap(of: Chunk(p - Chunk.overhead)).index == a.index else { throw .invalidArgument }
        }
        return h
    }

    /// The header of a live block. - Throws: `EINVAL` when `p` is not one.
    func header(of p: UnsafeMutableRawPointer) throws(Errno) -> HeaderView {
        // Only memory inside the arena is read: a wild pointer is refused, not followed.
        let arena = process.system.allocator
        guard UInt(bitPattern: p) & 15 == 0, UInt(bitPattern: p) > 4096,
            arena.pageFrame(containing: p - Chunk.overhead) != nil
        else { throw .invalidArgument }
        let word = p.load(fromByteOffset: -8, as: UInt64.self)
        switch word >> 56 {
        case BlockHeader.mappedTag:
            guard arena.pageFrame(containing: p - BlockHeader.size) != nil else { throw .invalidArgument }
            let h = header(p)
            let page = UInt(process.system.configuration.pageSize)
            guard h.mappingStart < UInt64(UInt(bitPattern: p)), h.mappingLength > 0,
                let m = process.mapping(containing: UInt(h.mappingStart)), m.start == UInt(h.mappingStart),
                m.end - m.start == (UInt(h.mappingLength) + page - 1) & ~(page - 1)
            else { throw .invalidArgument }
            return HeaderView(
                isMapped: true, usable: Int(h.mappingStart + h.mappingLength) - Int(bitPattern: p),
                requested: h.requested)
        case BlockHeader.heapTag:
            guard let (_, requested, size, _) = ownedHeapChunk(p) else { throw .invalidArgument }
            return HeaderView(isMapped: false, usable: size - Chunk.overhead, requested: UInt64(requested))
        default:
            throw .invalidArgument
        }
    }

    func header(_ p: UnsafeMutableRawPointer) -> BlockHeader { BlockHeader(p - BlockHeader.size) }

    /// The in-use chunk of this malloc's heap whose payload is `p`, and the size asked for
    /// it; nil for anything else (checked without the lock: the page is in one of this
    /// malloc's areas, the tag is the heap's, the chunk and its neighbour's PREV_INUSE agree,
    /// and nothing is read outside the arena).
    @inline(__always)
    func ownedHeapChunk(_ p: UnsafeMutableRawPointer) -> (chunk: Chunk, requested: Int, size: Int, heap: Int)? {
        let a = UInt(bitPattern: p)
        let off = a &- arenaBase &- UInt(Chunk.overhead)
        guard a & 15 == 0, off < arenaBytes, let owner = pageOwner(Int(off &>> UInt(pageShift))) else { return nil }
        let c = Chunk(p - Chunk.overhead)
        let (low, sizeHigh, tagSlack) = c.parts
        guard UInt64(tagSlack &>> 8) == BlockHeader.heapTag else { return nil }
        let size = UInt(low & ~15) | UInt(sizeHigh) &<< 32
        guard low & UInt32(Chunk.inUseBit) != 0, size >= UInt(Chunk.minimum), size < arenaBytes &- off,
            Chunk(c.base + Int(size)).prevInUseByte
        else { return nil }
        return (c, Int(size) &- Chunk.overhead &- Int(tagSlack & 0xFF), Int(size), owner)
    }

    // MARK: The page map

    /// The heap whose area holds arena page `page`, or nil.
    @inline(__always)
    func pageOwner(_ page: Int) -> Int? {
        let b = cshim_load_relaxed_byte(pageMap + page) & ~Malloc.areaStartBit
        return b == 0 ? nil : Int(b &- 1)
    }

    func isAreaStart(_ address: UInt) -> Bool {
        let off = address &- arenaBase
        guard off < arenaBytes, off & ((1 << UInt(pageShift)) - 1) == 0 else { return false }
        return cshim_load_relaxed_byte(pageMap + Int(off >> UInt(pageShift))) & Malloc.areaStartBit != 0
    }

    /// Gives the pages of the area [start, start + bytes) to heap `heap`, or (nil) takes
    /// them back (that heap's lock held).
    func markArea(_ start: UInt, bytes: Int, heap: Int?) {
        let first = Int((start - arenaBase) >> UInt(pageShift))
        let owner = heap.map { UInt8($0 + 1) } ?? 0
        for page in first..<(first + bytes >> pageShift) {
            cshim_store_relaxed_byte(pageMap + page, page == first && heap != nil ? owner | Malloc.areaStartBit : owner)
        }
    }
}

/// What a block's header says.
struct HeaderView {
    var isMapped: Bool
    var usable: Int
    var requested: UInt64
}

/// The header words before a payload. Both kinds keep their kind's tag in the top 8 bits of
/// the word at -8. A heap chunk's is its size word (with the slack that gives the size asked
/// for: see `Chunk`); a mapped block's holds the size asked for in the low 48 bits, after
/// [mapping start] [mapping length] [heap] at -32, -24 and -16.
struct BlockHeader {
    static let size = 32
    static let mappedTag: UInt64 = 0xB1
    static let heapTag: UInt64 = 0xA1
    /// A heap chunk sitting in a thread cache (free to the program, in use to the heap).
    static let cachedTag: UInt64 = 0xCA
    static let sizeMask: UInt64 = (1 << 48) - 1
    let base: UnsafeMutableRawPointer

    init(_ base: UnsafeMutableRawPointer) { self.base = base }

    static func tagWord(_ tag: UInt64, _ requested: Int) -> UInt64 { tag << 56 | (UInt64(requested) & sizeMask) }

    var mappingStart: UInt64 {
        get { base.load(as: UInt64.self) }
        nonmutating set { base.storeBytes(of: newValue, as: UInt64.self) }
    }
    var mappingLength: UInt64 {
        get { base.load(fromByteOffset: 8, as: UInt64.self) }
        nonmutating set { base.storeBytes(of: newValue, toByteOffset: 8, as: UInt64.self) }
    }
    /// The heap whose lock guards the block (the one that mapped it).
    var heap: UInt64 {
        get { base.load(fromByteOffset: 16, as: UInt64.self) }
        nonmutating set { base.storeBytes(of: newValue, toByteOffset: 16, as: UInt64.self) }
    }
    private var word: UInt64 {
        get { base.load(fromByteOffset: 24, as: UInt64.self) }
        nonmutating set { base.storeBytes(of: newValue, toByteOffset: 24, as: UInt64.self) }
    }
    var tag: UInt64 {
        get { word >> 56 }
        nonmutating set { word = newValue << 56 | (word & BlockHeader.sizeMask) }
    }
    var requested: UInt64 {
        get { word & BlockHeader.sizeMask }
        nonmutating set { word = (word & ~BlockHeader.sizeMask) | (newValue & BlockHeader.sizeMask) }
    }
}
