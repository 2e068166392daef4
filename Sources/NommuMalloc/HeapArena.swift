// SPDX-License-Identifier: Apache-2.0
//
// A malloc's heaps (glibc's arenas): threads spread over several heaps, each with its own
// bins, areas and lock, so that threads whose thread caches miss do not queue on one lock.
//
// A thread is given a heap when its thread cache is made (round robin, the first thread heap
// 0) and allocates there; a block is freed or resized in the heap that holds it, found
// without a lock: a heap chunk through the malloc's page map (one byte per arena page, the
// heap that owns the page's area), a block mapped on its own through its header. An
// allocation its heap cannot serve tries the other heaps' free chunks before it fails, as
// glibc's `arena_get_retry` does, so that a program does not fail while another heap has
// room. With one heap the malloc is uClibc's: one heap, one lock.
internal import CShims
import NommuBase

import NommuHost

/// One heap of a malloc: plain memory owned by the malloc, on cache lines of its own:
/// [pthread mutex | counter words | `HeapState`]. The counters are written under the lock
/// with relaxed stores and read by anyone with relaxed loads (the statistics and the first
/// failure's call number add them up without taking every lock).
struct HeapArena {
    static let lockBytes = 64
    static let counterBytes = 64
    /// Counter words: calls served, bytes and blocks live (this heap's frees of blocks another
    /// heap counted make it negative; only the sum over heaps means anything), the most bytes
    /// live in the whole malloc seen by a call here, and the bytes of the `mmap` that failed
    /// in the call in progress (0: none did).
    static let callsSlot = 0
    static let liveBytesSlot = 1
    static let liveBlocksSlot = 2
    static let peakSlot = 3
    static let failedMapSlot = 4

    let raw: UnsafeMutableRawPointer
    let index: Int

    static func allocate(index: Int) -> HeapArena {
        let bytes = lockBytes + counterBytes + (MemoryLayout<HeapState>.stride + 63) & ~63
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: lockBytes + counterBytes)
        precondition(HostLock.byteCount <= lockBytes)
        _ = HostLock(at: raw)
        (raw + lockBytes + counterBytes).bindMemory(to: HeapState.self, capacity: 1).initialize(to: HeapState())
        return HeapArena(raw: raw, index: index)
    }

    func deallocate() {
        mutex.deinitialize()
        state.deinitialize(count: 1)
        raw.deallocate()
    }

    /// The heap's lock, at the start of its memory (a handle: no allocation).
    private var mutex: HostLock { HostLock(existingAt: raw) }
    private var counters: UnsafeMutablePointer<Int64> {
        (raw + HeapArena.lockBytes).assumingMemoryBound(to: Int64.self)
    }
    private var state: UnsafeMutablePointer<HeapState> {
        (raw + HeapArena.lockBytes + HeapArena.counterBytes).assumingMemoryBound(to: HeapState.self)
    }

    /// The bins and areas (lock held).
    var heap: HeapState {
        unsafeAddress { UnsafePointer(state) }
        nonmutating unsafeMutableAddress { state }
    }

    @inline(__always)
    func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        mutex.lock()
        defer { mutex.unlock() }
        return try body()
    }

    func lock() { mutex.lock() }
    func unlock() { mutex.unlock() }

    @inline(__always) func load(_ slot: Int) -> Int { Int(cshim_load_relaxed_i64(counters + slot)) }
    @inline(__always) func store(_ slot: Int, _ v: Int) { cshim_store_relaxed_i64(counters + slot, Int64(v)) }
    /// Adds to a counter (lock held: one writer at a time).
    @inline(__always) func add(_ slot: Int, _ v: Int) { store(slot, load(slot) &+ v) }
}

/// Takes heap locks one at a time for a run of chunks that may belong to several heaps
/// (a thread cache's chunks going back): a chunk of the heap already held needs no new lock.
/// Never holds two heaps' locks at once.
struct HeapLockHolder {
    private(set) var held: HeapArena? = nil

    mutating func hold(_ a: HeapArena) {
        if let h = held {
            if h.index == a.index { return }
            h.unlock()
        }
        a.lock()
        held = a
    }

    mutating func release() {
        held?.unlock()
        held = nil
    }
}
