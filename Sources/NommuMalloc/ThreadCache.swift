// SPDX-License-Identifier: Apache-2.0
//
// Per-thread caches of small heap chunks (glibc's tcache shape), so that the common
// malloc/free pair takes no lock and scales with threads.
//
// A thread's cache for one malloc holds, per chunk size from 32 bytes to a page and its
// header (16-byte steps), up to `ThreadCache.perBin` free chunks in a LIFO list threaded
// through their payloads. Chunks above 1 KiB (glibc's tcache stops there) are cached under a
// byte budget, `ThreadCache.largeBudget` per thread, so that a thread's cache never holds
// more than a few pages of them. To the heap a cached chunk is in use: it does not coalesce, and its tag word
// says "cached" (`BlockHeader.cachedTag`) so a second free of it is refused. `free` of a
// small chunk of this malloc pushes it onto the calling thread's cache when there is room;
// `malloc` of a small size pops from it; everything else takes the lock of a heap (the
// thread's, or the one holding the block). A cache also names the heap its thread allocates
// in. A thread's cache goes back to the heaps when the thread exits, when the thread's slots
// evict it, and (its chunks of the failing heap) when an allocation of that thread is about to
// fail with ENOMEM. (Other threads' cached chunks are not reclaimed for a failing call, as in
// glibc.) The malloc keeps its caches in a list read without a lock: a cache is never freed
// while the malloc lives, and a retired one waits for the next new thread.
//
// Counters: each cache counts the calls it served and the live bytes and blocks they
// moved; `Malloc.statistics` adds them up. The peak of live bytes is exact while one thread
// allocates (its cache compares the heaps' live bytes plus its own with its peak on every
// allocation) and, with several threads, exact at every locked call and a lower bound between.
internal import CShims
import NommuBase
import NommuHost
import PageAllocator

/// One thread's cache for one malloc: plain memory (`ThreadCache.words` Int64 words) owned
/// by the malloc. Only its thread touches the lists; counters are written by that thread
/// with relaxed stores and read by anyone with relaxed loads.
struct ThreadCache {
    /// The largest chunk cached (a page of payload), and the largest payload whose chunk it is.
    static let largestChunk = (4096 + Chunk.overhead + 15) & ~15
    static let largestPayload = largestChunk - Chunk.overhead
    /// Bins: chunk size / 16, for sizes 32…`largestChunk`.
    static let binCount = largestChunk / 16 + 1
    /// Chunks a bin holds (glibc's default tcache_count).
    static let perBin: Int64 = 7
    /// The largest small chunk: bins up to it hold `perBin` chunks each, and a miss carves
    /// a few more; bins above it share `largeBudget`.
    static let largestSmallChunk = 1024
    static let largestSmallPayload = largestSmallChunk - Chunk.overhead
    static let largestSmallBin = largestSmallChunk / 16
    /// Bytes of chunks above `largestSmallChunk` a thread's cache holds at most: four of the
    /// largest.
    static let largeBudget: Int64 = 4 * Int64(largestChunk)

    static let countBase = binCount
    static let callsSlot = 2 * binCount
    static let liveBytesSlot = callsSlot + 1
    static let liveBlocksSlot = callsSlot + 2
    static let peakSlot = callsSlot + 3
    static let largeBytesSlot = callsSlot + 4
    /// The heap the cache's thread allocates in; the next cache of the malloc's registry
    /// (set before the cache is published, never changed); 1 while a thread uses the cache.
    static let heapSlot = callsSlot + 5
    static let nextCacheSlot = callsSlot + 6
    static let inUseSlot = callsSlot + 7
    static let words = callsSlot + 8

    let raw: UnsafeMutablePointer<Int64>

    init(_ raw: UnsafeMutableRawPointer) { self.raw = raw.assumingMemoryBound(to: Int64.self) }

    /// A cache on cache lines of its own (another thread's cache next to it would share one).
    static func allocate() -> ThreadCache {
        let bytes = (words * 8 + 63) & ~63
        let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        p.initializeMemory(as: Int64.self, repeating: 0, count: bytes / 8)
        return ThreadCache(p)
    }

    func deallocate() { UnsafeMutableRawPointer(raw).deallocate() }
    var rawPointer: UnsafeMutableRawPointer { UnsafeMutableRawPointer(raw) }

    @inline(__always) func load(_ slot: Int) -> Int64 { cshim_load_relaxed_i64(raw + slot) }
    @inline(__always) func store(_ slot: Int, _ v: Int64) { cshim_store_relaxed_i64(raw + slot, v) }
    @inline(__always) func add(_ slot: Int, _ v: Int64) { store(slot, load(slot) &+ v) }

    /// Pops a cached chunk of bin `i`, or nil. Owner only.
    @inline(__always)
    func pop(_ i: Int) -> Chunk? {
        let head = raw[i]
        guard head != 0 else { return nil }
        let c = Chunk(UnsafeMutableRawPointer(bitPattern: Int(truncatingIfNeeded: head)).unsafelyUnwrapped)
        raw[i] = c.payload.load(as: Int64.self)
        store(ThreadCache.countBase &+ i, load(ThreadCache.countBase &+ i) &- 1)
        if i > ThreadCache.largestSmallBin { add(ThreadCache.largeBytesSlot, -Int64(i &<< 4)) }
        return c
    }

    /// Whether bin `i` takes one more chunk: below `perBin`, and within the budget for a
    /// large one. Owner only.
    @inline(__always)
    func hasRoom(_ i: Int) -> Bool {
        guard load(ThreadCache.countBase &+ i) < ThreadCache.perBin else { return false }
        return i <= ThreadCache.largestSmallBin
            || load(ThreadCache.largeBytesSlot) &+ Int64(i &<< 4) <= ThreadCache.largeBudget
    }

    /// Pushes `c` (in use, tagged cached) onto bin `i` if it has room. Owner only.
    @inline(__always)
    func push(_ c: Chunk, _ i: Int) -> Bool {
        guard hasRoom(i) else { return false }
        c.payload.storeBytes(of: raw[i], as: Int64.self)
        raw[i] = Int64(Int(bitPattern: c.address))
        store(ThreadCache.countBase &+ i, load(ThreadCache.countBase &+ i) &+ 1)
        if i > ThreadCache.largestSmallBin { add(ThreadCache.largeBytesSlot, Int64(i &<< 4)) }
        return true
    }

    /// Takes the chunks of small bin `i` below its `keep` most recent off the list (owner
    /// only): the first of them (the rest follow through their payloads, nil-terminated).
    func cutOlder(_ i: Int, keep: Int) -> Chunk? {
        guard load(ThreadCache.countBase &+ i) > keep, keep > 0 else { return nil }
        var last = Chunk(UnsafeMutableRawPointer(bitPattern: Int(truncatingIfNeeded: raw[i])).unsafelyUnwrapped)
        for _ in 1..<keep { last = Chunk(ThreadCache.next(last).unsafelyUnwrapped) }
        let older = ThreadCache.next(last)
        last.payload.storeBytes(of: 0, as: Int64.self)
        store(ThreadCache.countBase &+ i, Int64(keep))
        return older.map(Chunk.init)
    }

    /// The chunk after `c` in its bin's list.
    @inline(__always)
    static func next(_ c: Chunk) -> UnsafeMutableRawPointer? {
        UnsafeMutableRawPointer(bitPattern: Int(truncatingIfNeeded: c.payload.load(as: Int64.self)))
    }

    /// The cache's counters, zeroed as they are read (its thread is gone, or handing it back):
    /// zeroed before the caller adds them to a heap's, so that a peak check in between sees
    /// too little for a moment, never the same bytes twice.
    func takeCounters() -> (calls: Int, liveBytes: Int, liveBlocks: Int, peak: Int) {
        let t = (
            calls: Int(load(ThreadCache.callsSlot)), liveBytes: Int(load(ThreadCache.liveBytesSlot)),
            liveBlocks: Int(load(ThreadCache.liveBlocksSlot)), peak: Int(load(ThreadCache.peakSlot))
        )
        store(ThreadCache.callsSlot, 0)
        store(ThreadCache.liveBytesSlot, 0)
        store(ThreadCache.liveBlocksSlot, 0)
        store(ThreadCache.peakSlot, 0)
        return t
    }

    /// Chunks cached.
    var chunks: Int {
        var n: Int64 = 0
        for i in 0..<ThreadCache.binCount { n += load(ThreadCache.countBase + i) }
        return Int(n)
    }
}

/// Which mallocs are alive, by id, so that a thread's exit hook hands its caches back only
/// to mallocs that still exist. The registry holds no reference (a weak one would give every
/// malloc a side table, and every retain of it the slow path): a malloc leaves it first thing
/// in its deinit, under the registry's lock, and a retire runs under that lock too, so it
/// never sees a malloc whose memory is going.
enum MallocRegistry {
    static let live = HostMutex<[UInt64: UnsafeRawPointer]>([:])
    static let nextID = HostMutex<UInt64>(1)

    static func newID() -> UInt64 {
        nextID.withLock { (n: inout UInt64) -> UInt64 in
            defer { n += 1 }
            return n
        }
    }

    static func register(_ m: Malloc, _ id: UInt64) {
        let raw = UnsafeRawPointer(Unmanaged.passUnretained(m).toOpaque())
        live.withLock { $0[id] = raw }
    }

    static func forget(_ id: UInt64) { _ = live.withLock { $0.removeValue(forKey: id) } }

    /// Runs on every armed thread as it exits: hands each of its caches back.
    static let exitHook: cshim_tls_exit_hook = { slots, count in
        cshim_tls_retire_all(slots, count) { owner, cache in
            if let cache { MallocRegistry.retire(owner: owner, cache: cache) }
        }
    }

    static func retire(owner: UInt64, cache: UnsafeMutableRawPointer) {
        live.withLock { table in
            guard let raw = table[owner] else { return }
            Unmanaged<Malloc>.fromOpaque(raw)._withUnsafeGuaranteedRef { $0.retire(ThreadCache(cache)) }
        }
    }
}

extension Malloc {
    /// The calling thread's cache if it is in its first slot (one TLS load, no call).
    @inline(__always)
    func cachedThreadCache() -> ThreadCache? {
        let slots = cshim_malloc_tls_slots().unsafelyUnwrapped
        guard slots[0].owner == id, let c = slots[0].cache else { return nil }
        return ThreadCache(c)
    }

    /// The calling thread's cache, made on first use; nil when the thread cannot be armed
    /// (its cache would outlive it) or caching is off.
    @inline(__always)
    func threadCache() -> ThreadCache? {
        cachedThreadCache() ?? threadCacheSlow()
    }

    @inline(never)
    func threadCacheSlow() -> ThreadCache? {
        let slots = cshim_malloc_tls_slots()!
        if let c = cshim_tls_promote(slots, id) { return ThreadCache(c) }
        guard cshim_malloc_tls_arm(MallocRegistry.exitHook) == 0 else { return nil }
        // A retired cache is taken again (the registry never shrinks while the malloc lives,
        // so that it is read without a lock); heaps go round, the first thread's heap 0.
        let cache = cacheLock.withLock { (nextHeap: inout Int) -> ThreadCache in
            var found: ThreadCache? = nil
            forEachCache { c in if found == nil, c.load(ThreadCache.inUseSlot) == 0 { found = c } }
            let c = found ?? newCache()
            c.store(ThreadCache.heapSlot, Int64(nextHeap % heapCount))
            c.store(ThreadCache.inUseSlot, 1)
            nextHeap &+= 1
            return c
        }
        let evicted = cshim_tls_push_front(slots, id, cache.rawPointer)
        if evicted.owner != 0, let c = evicted.cache { MallocRegistry.retire(owner: evicted.owner, cache: c) }
        return cache
    }

    /// A new cache at the head of the registry (`cacheLock` held).
    private func newCache() -> ThreadCache {
        let c = ThreadCache.allocate()
        c.store(ThreadCache.nextCacheSlot, cshim_load_relaxed_i64(cacheHead))
        cshim_store_release_i64(cacheHead, Int64(Int(bitPattern: c.rawPointer)))
        return c
    }

    /// Calls `body` on every cache of the registry, retired ones included (no lock needed).
    @inline(__always)
    func forEachCache(_ body: (ThreadCache) -> Void) {
        var next = cshim_load_acquire_i64(cacheHead)
        while next != 0 {
            let c = ThreadCache(UnsafeMutableRawPointer(bitPattern: Int(next)).unsafelyUnwrapped)
            body(c)
            next = c.load(ThreadCache.nextCacheSlot)
        }
    }

    /// Hands a cache back (its thread is exiting or evicting it): its chunks go to their
    /// heaps, its counters into its heap's, and the cache waits for a new thread. No area is
    /// unmapped here: a thread's exit hook runs outside any call into the model (under
    /// `nommu run`, a munmap's own allocations would come back into this malloc, whose lock
    /// is held); the next free in an area that is wholly free gives it back.
    func retire(_ cache: ThreadCache) {
        cacheLock.withLock { _ in
            guard cache.load(ThreadCache.inUseSlot) == 1 else { return }
            flush(cache, keepAreas: true)
            let a = heaps[Int(cache.load(ThreadCache.heapSlot))]
            let t = cache.takeCounters()
            a.withLock {
                a.add(HeapArena.callsSlot, t.calls)
                addLive(a, t.liveBytes, blocks: t.liveBlocks)
                a.store(HeapArena.peakSlot, max(a.load(HeapArena.peakSlot), t.peak))
            }
            cache.store(ThreadCache.inUseSlot, 0)
        }
    }

    /// Gives `cache`'s chunks back to their heaps (called by its owner, or for a thread that
    /// is gone), each heap's lock taken for a run of its chunks; with `only` (whose lock the
    /// caller holds), only that heap's chunks, the others staying cached. With `keepAreas`
    /// no area is unmapped (a call about to fail flushes its cache to find room, and a
    /// failed call changes no mapping).
    func flush(_ cache: ThreadCache, only: HeapArena? = nil, keepAreas: Bool = false) {
        var holder = HeapLockHolder()
        for i in 0..<ThreadCache.binCount {
            var kept: UnsafeMutableRawPointer? = nil
            while let c = cache.pop(i) {
                let a = heap(of: c)
                if let only {
                    guard a.index == only.index else {
                        c.payload.storeBytes(of: Int64(Int(bitPattern: kept)), as: Int64.self)
                        kept = c.base
                        continue
                    }
                } else {
                    holder.hold(a)
                }
                c.untag()
                freeChunk(a, c, mayUnmap: !keepAreas)
            }
            while let k = kept {
                let c = Chunk(k)
                kept = ThreadCache.next(c)
                _ = cache.push(c, i)
            }
        }
        holder.release()
    }

    /// Hands the calling thread's cached chunks back to their heaps, where they coalesce and
    /// wholly free areas are given back (as when the thread exits). Cached chunks are free
    /// to the program but in use to the heap: up to `ThreadCache.perBin` of each size per
    /// thread, they keep their areas mapped until then.
    public func releaseThreadCache() {
        guard let cache = cachedThreadCache() ?? existingThreadCache() else { return }
        flush(cache)
    }

    /// The calling thread's cache if it has one (never makes it).
    func existingThreadCache() -> ThreadCache? {
        let slots = cshim_malloc_tls_slots()!
        for i in 0..<Int(CSHIM_TLS_SLOTS) where slots[i].owner == id {
            if let c = slots[i].cache { return ThreadCache(c) }
        }
        return nil
    }

    /// Sums of every cache's counters (no lock: relaxed reads of counters their threads
    /// write as they go).
    func cacheTotals() -> (calls: Int, liveBytes: Int, liveBlocks: Int, peak: Int) {
        var t = (calls: 0, liveBytes: 0, liveBlocks: 0, peak: 0)
        forEachCache { c in
            t.calls += Int(c.load(ThreadCache.callsSlot))
            t.liveBytes += Int(c.load(ThreadCache.liveBytesSlot))
            t.liveBlocks += Int(c.load(ThreadCache.liveBlocksSlot))
            t.peak = max(t.peak, Int(c.load(ThreadCache.peakSlot)))
        }
        return t
    }
}
