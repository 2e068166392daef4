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
// All metadata of a block lives in the mapped memory itself (as a real malloc's does); the
// heap's own state is a fixed set of bin heads. Small heap chunks are cached per thread
// (ThreadCache.swift): the common pair takes no lock. Everything else takes the heap's
// pthread mutex.
//
// A pointer is validated once, without the lock: it must lie in a page of one of this
// malloc's areas (a bitmap over the arena's pages, the kernel's page-owner answer rather than
// a search), carry the heap's tag and be an in-use chunk; the chunk found is what the free
// path works on.
internal import CShims
public import NommuBase
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

        /// The largest size, threshold or alignment anything is asked for (2^56 bytes: more
        /// than any machine maps; a configuration above it is `EINVAL`, a request `ENOMEM`).
        public static let maxBytes = 1 << 56

        public init(
            policy: Policy = .heap, uninitialized: Bool = false, extendSize: Int = 64 << 10,
            mmapThreshold: Int = 128 << 10, unmapThreshold: Int = 64 << 10
        ) {
            self.policy = policy
            self.uninitialized = uninitialized
            self.extendSize = extendSize
            self.mmapThreshold = mmapThreshold
            self.unmapThreshold = unmapThreshold
        }
    }

    public let process: Process
    public let configuration: Configuration
    // (Not HostMutex<Void>: the thread sanitizer faults on inout access to a zero-sized value.)
    let lock = HostMutex<Int>(0)
    // The mutable state sits behind pointers, reached through addressors: a class's stored
    // `var`s would pay dynamic exclusivity checks on every access.
    private let heapStorage: UnsafeMutablePointer<HeapState>
    private let counterStorage: UnsafeMutablePointer<Counters>
    /// Bytes of the `mmap` that failed in the call in progress (0: none did), for `firstFailure`.
    private let failedMapStorage: UnsafeMutablePointer<Int>

    /// This malloc's never-reused id (its thread caches' TLS slots name it).
    let id: UInt64
    /// Whether small chunks are cached per thread (the heap policy).
    let cachesSmallChunks: Bool
    /// The largest request the thread caches serve (0 when they do not).
    let smallLimit: Int
    /// The thread caches made for this malloc and not yet handed back (under `lock`).
    let threadCaches: UnsafeMutablePointer<CacheList>
    /// `counters.liveBytes`, stored (relaxed) under the lock for the caches' peak checks.
    let liveBytesMirror: UnsafeMutablePointer<Int64>
    /// The arena: first address, bytes, page shift.
    let arenaBase: UInt
    let arenaBytes: UInt
    let pageShift: Int
    /// One bit per arena page: in one of this malloc's heap areas; and: first page of an area.
    /// Written under the lock, read by anyone (relaxed atomic words).
    let areaPages: UnsafeMutablePointer<Int64>
    let areaStarts: UnsafeMutablePointer<Int64>

    var heap: HeapState {
        unsafeAddress { UnsafePointer(heapStorage) }
        unsafeMutableAddress { heapStorage }
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

    var counters: Counters {
        unsafeAddress { UnsafePointer(counterStorage) }
        unsafeMutableAddress { counterStorage }
    }

    /// A malloc for `process`. - Throws: `EINVAL` for thresholds or an extend size that are
    /// not positive.
    public init(process: Process, _ configuration: Configuration = Configuration()) throws(Errno) {
        for v in [configuration.extendSize, configuration.mmapThreshold, configuration.unmapThreshold] {
            guard v > 0, v <= Configuration.maxBytes else { throw .invalidArgument }
        }
        self.process = process
        self.configuration = configuration
        heapStorage = .allocate(capacity: 1)
        heapStorage.initialize(to: HeapState())
        counterStorage = .allocate(capacity: 1)
        counterStorage.initialize(to: Counters())
        failedMapStorage = .allocate(capacity: 1)
        failedMapStorage.initialize(to: 0)
        let allocator = process.system.allocator
        arenaBase = UInt(bitPattern: allocator.baseAddress)
        arenaBytes = UInt(allocator.totalPages) << UInt(allocator.pageSize.trailingZeroBitCount)
        pageShift = allocator.pageSize.trailingZeroBitCount
        let words = (allocator.totalPages + 63) / 64
        areaPages = .allocate(capacity: words)
        areaPages.initialize(repeating: 0, count: words)
        areaStarts = .allocate(capacity: words)
        areaStarts.initialize(repeating: 0, count: words)
        threadCaches = .allocate(capacity: 1)
        threadCaches.initialize(to: CacheList())
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
        for i in 0..<threadCaches.pointee.count { ThreadCache(threadCaches.pointee[i]).deallocate() }
        threadCaches.pointee.deallocate()
        threadCaches.deinitialize(count: 1)
        threadCaches.deallocate()
        liveBytesMirror.deallocate()
        areaPages.deallocate()
        areaStarts.deallocate()
        heapStorage.deinitialize(count: 1)
        heapStorage.deallocate()
        counterStorage.deinitialize(count: 1)
        counterStorage.deallocate()
        failedMapStorage.deallocate()
    }

    /// The counters now (the heap's and every thread cache's).
    public var statistics: Counters {
        lock.withLock { _ in
            var c = counters
            let t = cacheTotalsLocked()
            c.calls += t.calls
            c.liveBytes += t.liveBytes
            c.liveBlocks += t.liveBlocks
            c.peakLiveBytes = max(c.peakLiveBytes, t.peak, c.liveBytes)
            return c
        }
    }

    /// Bytes live now (requested sizes), the thread caches' included.
    package var liveBytesNow: Int { lock.withLock { _ in counters.liveBytes + cacheTotalsLocked().liveBytes } }

    /// Called (under the malloc's lock) each time the bytes held reach a new peak; set it
    /// before the first call.
    public nonisolated(unsafe) var onNewPeak: (() -> Void)? = nil

    /// Called (under the malloc's lock, inside the failing call) when the first ENOMEM is
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

    /// `malloc`/`calloc` under the lock (a cache miss, a large request, the simple policy).
    @inline(never)
    private func allocateSlow(_ size: Int, zeroed: Bool) throws(Errno) -> UnsafeMutableRawPointer {
        // The thread's cache is made on its first small request, so that its frees find it.
        let cache = UInt(bitPattern: size) <= UInt(bitPattern: smallLimit) ? threadCache() : nil
        // A block with a mapping of its own is mapped (and cleared) outside the lock and
        // counted under it; when the mapping fails, the locked path below tries again and
        // records the failure.
        if cache == nil, mapsItsOwn(size, alignment: 16),
            let (p, held) = try? mapBlockUncounted(size, zeroed: zeroed)
        {
            lock.withLock { _ in
                counters.calls += 1
                countMapped(held: held)
                note(allocated: size)
            }
            return p
        }
        return try lock.withLock { (_: inout Int) throws(Errno) -> UnsafeMutableRawPointer in
            counters.calls += 1
            // A cache miss: one chunk before the block and two after it go into the cache too,
            // carved together, so the block handed out (and most likely freed and taken again)
            // shares no cache line with another thread's chunks.
            let before = size <= ThreadCache.largestSmallPayload ? cache.flatMap { refillOne($0, size) } : nil
            let p = try counted(size) { () throws(Errno) in try allocate(size, alignment: 16, zeroed: zeroed) }
            if let cache, before != nil {
                _ = refillOne(cache, size)
                _ = refillOne(cache, size)
            }
            note(allocated: size)
            return p
        }
    }

    /// Carves one chunk for a request of `size` from the heap's free chunks (never a new
    /// area) into `cache`; nil when none fits or the bin is full. Lock held.
    private func refillOne(_ cache: ThreadCache, _ size: Int) -> Chunk? {
        let need = Chunk.size(forPayload: size)
        guard cache.hasRoom(need >> 4), let c = takeFreeChunk(need)
        else { return nil }
        trim(c, to: need)
        guard c.size == need else {
            // A free chunk just too big to split: not one of this bin's; back it goes.
            freeChunk(c, mayUnmap: false)
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
        // Small to small on the thread's cache, without the lock: the same chunk size keeps
        // its chunk; another moves to a cached chunk of the new size (when there is one).
        if UInt(bitPattern: size) <= UInt(bitPattern: smallLimit), let tc = cachedThreadCache(),
            let (c, old, chunkSize) = ownedHeapChunk(pointer), chunkSize <= ThreadCache.largestChunk
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
        // A block that moves to a mapping of its own gets it (cleared) before the lock is
        // taken; when the call does not use it (in place after all, or refused), it goes.
        let fresh = premapped(for: pointer, size)
        var used = false
        defer { if let fresh, !used { discardUncounted(fresh.block) } }
        let (q, old) = try lock.withLock { (_: inout Int) throws(Errno) -> (UnsafeMutableRawPointer, Int) in
            counters.calls += 1
            let h = try header(of: pointer)
            let old = Int(h.requested)
            let q = try counted(size) { () throws(Errno) in
                try reallocate(pointer, h, size, fresh: fresh, used: &used)
            }
            counters.liveBytes += size - old
            notePeak()
            return (q, old)
        }
        oldSize = old
        return q
    }

    /// A mapping of its own for `realloc(pointer, size)`, made without the lock, when the
    /// block will have to move to one: `size` gets one, and the block is a heap chunk or a
    /// mapped block too small for it (looked at without the lock; the locked call checks).
    private func premapped(for pointer: UnsafeMutableRawPointer, _ size: Int) -> (
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
        guard let (block, held) = try? mapBlockUncounted(size, zeroed: false) else { return nil }
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
        guard let (c, requested, size) = ownedHeapChunk(pointer) else { return try freeMapped(pointer) }
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
        freeChunkSlow(c, requested)
        return requested
    }

    /// A free into a full small bin: the bin's older chunks go back to the heap together,
    /// under one taking of the lock (jemalloc's tcache flushes so), and `c` goes onto it.
    @inline(never)
    private func flushOlder(_ tc: ThreadCache, _ bin: Int, then c: Chunk) -> Bool {
        guard var older = tc.cutOlder(bin, keep: Int(ThreadCache.perBin) / 2) else { return false }
        lock.withLock { _ in
            while true {
                let next = ThreadCache.next(older)
                older.untag()
                freeChunk(older)
                guard let next else { break }
                older = Chunk(next)
            }
        }
        return tc.push(c, bin)
    }

    /// A validated heap chunk back to the heap, under the lock.
    @inline(never)
    private func freeChunkSlow(_ c: Chunk, _ requested: Int) {
        lock.withLock { _ in
            counters.calls += 1
            c.untag()  // a second free is refused
            freeChunk(c)
            counters.liveBytes -= requested
            counters.liveBlocks -= 1
            publishLiveBytes()
        }
    }

    /// `free` of anything that is not a chunk of this heap: a block with its own mapping,
    /// or an invalid pointer (EINVAL, nothing changes).
    @inline(never)
    private func freeMapped(_ pointer: UnsafeMutableRawPointer) throws(Errno) -> Int {
        // Validated and counted under the lock (a second free then finds no tag), unmapped
        // after it.
        let (start, length, requested) = try lock.withLock {
            (_: inout Int) throws(Errno) -> (UnsafeMutableRawPointer, Int, Int) in
            counters.calls += 1
            let h = try header(of: pointer)
            guard h.isMapped else { throw .invalidArgument }
            let (start, length) = detachBlock(pointer)
            counters.liveBytes -= Int(h.requested)
            counters.liveBlocks -= 1
            publishLiveBytes()
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
        return try lock.withLock { (_: inout Int) throws(Errno) -> UnsafeMutableRawPointer in
            counters.calls += 1
            let p = try counted(size) { () throws(Errno) in
                try allocate(size, alignment: max(16, alignment), zeroed: false)
            }
            note(allocated: size)
            return p
        }
    }

    /// `malloc_usable_size(pointer)`: bytes usable in the block (0 for nil).
    /// - Throws: `EINVAL` for a pointer that is not a live block.
    public func usableSize(_ pointer: UnsafeMutableRawPointer?) throws(Errno) -> Int {
        guard let pointer else { return 0 }
        return try lock.withLock { (_: inout Int) throws(Errno) -> Int in try usable(pointer) }
    }

    /// Runs an allocation of `size` bytes, counting an ENOMEM and noting the first. Before
    /// failing, the calling thread's cached chunks go back to the heap (where they may
    /// coalesce into room) and the allocation is tried once more. Lock held.
    @inline(__always)
    private func counted<T>(_ size: Int, _ body: () throws(Errno) -> T) throws(Errno) -> T {
        failedMapStorage.pointee = 0
        do {
            return try body()
        } catch {
            if error == .noMemory, let tc = existingThreadCache(), tc.chunks > 0 {
                flushLocked(tc, keepAreas: true)
                failedMapStorage.pointee = 0
                do throws(Errno) { return try body() } catch {}
            }
            if error == .noMemory {
                counters.failures += 1
                if counters.firstFailure == nil {
                    counters.firstFailure = Failure(
                        call: counters.calls + cacheTotalsLocked().calls, size: size,
                        mmapBytes: failedMapStorage.pointee,
                        largestFreeBlockBytes: process.system.allocator.statistics().largestFreeBlockBytes)
                    onFirstFailure?()
                }
            }
            throw error
        }
    }

    /// Starts the call counts again (calls, failures, mmaps, munmaps, the first failure),
    /// keeping the blocks and what they hold: for a process forked from this one, whose
    /// counts are its own from the fork on.
    package func restartCallCounts() {
        lock.withLock { _ in
            // The caches' counters fold into the heap's first (their threads are gone).
            let t = cacheTotalsLocked()
            for i in 0..<threadCaches.pointee.count {
                let c = ThreadCache(threadCaches.pointee[i])
                c.store(ThreadCache.callsSlot, 0)
                c.store(ThreadCache.liveBytesSlot, 0)
                c.store(ThreadCache.liveBlocksSlot, 0)
                c.store(ThreadCache.peakSlot, 0)
            }
            counters.liveBytes += t.liveBytes
            counters.liveBlocks += t.liveBlocks
            publishLiveBytes()
            counters.calls = 0
            counters.failures = 0
            counters.mmaps = 0
            counters.munmaps = 0
            counters.firstFailure = nil
            counters.peakLiveBytes = counters.liveBytes
            counters.peakHeldBytes = counters.heldBytes
        }
    }

    private func note(allocated size: Int) {
        counters.liveBytes += size
        counters.liveBlocks += 1
        notePeak()
    }

    /// Publishes the heap's live bytes and takes the peak of everything live (lock held).
    private func notePeak() {
        publishLiveBytes()
        let all = counters.liveBytes + (threadCaches.pointee.count == 0 ? 0 : cacheTotalsLocked().liveBytes)
        counters.peakLiveBytes = max(counters.peakLiveBytes, all)
    }

    // MARK: Dispatch

    func allocate(_ size: Int, alignment: Int, zeroed: Bool) throws(Errno) -> UnsafeMutableRawPointer {
        // No mapping is this big: and below these bounds the sums of sizes, alignments and
        // headers that follow cannot overflow.
        guard size >= 0, size <= Configuration.maxBytes, alignment <= Configuration.maxBytes else {
            throw .noMemory
        }
        switch configuration.policy {
        case .simple:
            return try mapBlock(size, alignment: alignment, zeroed: zeroed)
        case .heap:
            if size + alignment >= configuration.mmapThreshold {
                return try mapBlock(size, alignment: alignment, zeroed: zeroed)
            }
            return try heapAllocate(size, alignment: alignment, zeroed: zeroed)
        }
    }

    /// Moves or resizes a live block (lock held). `fresh`, when given, is a block of its own
    /// for `size` mapped beforehand: used (and counted) instead of a new allocation when the
    /// block has to move, and `used` says so.
    func reallocate(
        _ p: UnsafeMutableRawPointer, _ h: HeaderView, _ size: Int,
        fresh: (block: UnsafeMutableRawPointer, held: Int)? = nil, used: inout Bool
    ) throws(Errno) -> UnsafeMutableRawPointer {
        guard size <= Configuration.maxBytes else { throw .noMemory }
        if !h.isMapped, let q = heapResizeInPlace(p, size) { return q }
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
            q = try allocate(size, alignment: 16, zeroed: false)
        }
        q.copyMemory(from: p, byteCount: min(size, h.usable))
        if h.isMapped {
            try unmapBlock(p)
        } else {
            try heapFree(p)
        }
        return q
    }

    func requestedSize(of p: UnsafeMutableRawPointer) throws(Errno) -> Int {
        Int(try header(of: p).requested)
    }

    func usable(_ p: UnsafeMutableRawPointer) throws(Errno) -> Int { try header(of: p).usable }

    // MARK: mmap

    /// One anonymous private mapping, uninitialised when asked and allowed (lock held).
    func map(_ bytes: Int, uninitialized: Bool) throws(Errno) -> UnsafeMutableRawPointer {
        do {
            let (p, held) = try mapUncounted(bytes, uninitialized: uninitialized)
            countMapped(held: held)
            return p
        } catch {
            failedMapStorage.pointee = bytes
            throw error
        }
    }

    /// One anonymous private mapping and the bytes its region holds, counting nothing: it
    /// needs no lock (mapping a block of its own is the model's work, clearing included,
    /// and runs outside the heap's lock). - Throws: `ENOMEM`, whatever mmap says (EINVAL for
    /// absurd lengths included), as a malloc does.
    func mapUncounted(_ bytes: Int, uninitialized: Bool) throws(Errno) -> (UnsafeMutableRawPointer, held: Int) {
        var flags: MapFlags = [.private, .anonymous]
        if uninitialized { flags.insert(.uninitialized) }
        guard let a = try? process.mmap(length: UInt(bytes), protection: [.read, .write], flags: flags) else {
            throw .noMemory
        }
        let held = process.regionExtent(ofMappingAt: a.rawValue).map { Int($0.top - $0.start) } ?? 0
        return (a.pointer!, held)
    }

    /// Counts a mapping made (lock held).
    func countMapped(held: Int) {
        counters.mmaps += 1
        counters.heldBytes += held
        if counters.heldBytes > counters.peakHeldBytes {
            counters.peakHeldBytes = counters.heldBytes
            onNewPeak?()
        }
    }

    func unmap(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        countUnmapped(p)
        unmapUncounted(p, bytes)
    }

    /// Counts a mapping about to go (lock held).
    func countUnmapped(_ p: UnsafeMutableRawPointer) {
        counters.heldBytes -= process.regionExtent(ofMappingAt: UInt(bitPattern: p)).map { Int($0.top - $0.start) } ?? 0
        counters.munmaps += 1
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

    /// A block with its own mapping: [mapping start … | header | payload] (lock held).
    func mapBlock(_ size: Int, alignment: Int, zeroed: Bool) throws(Errno) -> UnsafeMutableRawPointer {
        do {
            let (p, held) = try mapBlockUncounted(size, alignment: alignment, zeroed: zeroed)
            countMapped(held: held)
            return p
        } catch {
            failedMapStorage.pointee = size + BlockHeader.size + (alignment > 16 ? alignment : 0)
            throw error
        }
    }

    /// `mapBlock` without the lock: the block and the bytes its mapping holds, to be counted
    /// (`countMapped`) under the lock.
    func mapBlockUncounted(_ size: Int, alignment: Int = 16, zeroed: Bool) throws(Errno) -> (
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
        h.requested = UInt64(size)
        h.tag = BlockHeader.mappedTag
        return (p, held)
    }

    func unmapBlock(_ p: UnsafeMutableRawPointer) throws(Errno) {
        let (start, length) = detachBlock(p)
        unmapUncounted(start, length)
    }

    /// Takes a block of its own out of the malloc (lock held): its tag (a second free is then
    /// refused) and its mapping's count. - Returns: the mapping, to be unmapped.
    func detachBlock(_ p: UnsafeMutableRawPointer) -> (UnsafeMutableRawPointer, Int) {
        let h = header(p)
        let start = UnsafeMutableRawPointer(bitPattern: UInt(h.mappingStart))!
        h.tag = 0
        countUnmapped(start)
        return (start, Int(h.mappingLength))
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
            guard let (_, requested, size) = ownedHeapChunk(p) else { throw .invalidArgument }
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
    func ownedHeapChunk(_ p: UnsafeMutableRawPointer) -> (chunk: Chunk, requested: Int, size: Int)? {
        let a = UInt(bitPattern: p)
        let off = a &- arenaBase &- UInt(Chunk.overhead)
        guard a & 15 == 0, off < arenaBytes, isAreaPage(Int(off &>> UInt(pageShift))) else { return nil }
        let c = Chunk(p - Chunk.overhead)
        let (low, sizeHigh, tagSlack) = c.parts
        guard UInt64(tagSlack &>> 8) == BlockHeader.heapTag else { return nil }
        let size = UInt(low & ~15) | UInt(sizeHigh) &<< 32
        guard low & UInt32(Chunk.inUseBit) != 0, size >= UInt(Chunk.minimum), size < arenaBytes &- off,
            Chunk(c.base + Int(size)).prevInUseByte
        else { return nil }
        return (c, Int(size) &- Chunk.overhead &- Int(tagSlack & 0xFF), Int(size))
    }

    // MARK: Area bitmaps

    @inline(__always)
    func isAreaPage(_ page: Int) -> Bool {
        (cshim_load_relaxed_i64(areaPages + (page &>> 6)) &>> Int64(page & 63)) & 1 != 0
    }

    func isAreaStart(_ address: UInt) -> Bool {
        let off = address &- arenaBase
        guard off < arenaBytes, off & ((1 << UInt(pageShift)) - 1) == 0 else { return false }
        let page = Int(off >> UInt(pageShift))
        return (cshim_load_relaxed_i64(areaStarts + (page >> 6)) >> Int64(page & 63)) & 1 != 0
    }

    /// Marks (or clears) the pages of the area [start, start + bytes) (lock held).
    func markArea(_ start: UInt, bytes: Int, _ on: Bool) {
        let first = Int((start - arenaBase) >> UInt(pageShift))
        let count = bytes >> pageShift
        setBit(areaStarts, first, on)
        for page in first..<(first + count) { setBit(areaPages, page, on) }
    }

    private func setBit(_ words: UnsafeMutablePointer<Int64>, _ page: Int, _ on: Bool) {
        let w = words + (page >> 6)
        let bit = Int64(1) << Int64(page & 63)
        let old = cshim_load_relaxed_i64(w)
        cshim_store_relaxed_i64(w, on ? old | bit : old & ~bit)
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
/// [mapping start] [mapping length] at -32 and -24.
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
