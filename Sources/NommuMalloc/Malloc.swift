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
// heap's own state is a fixed set of bin heads. Calls take the heap's pthread mutex.
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
        guard configuration.extendSize > 0, configuration.mmapThreshold > 0, configuration.unmapThreshold > 0 else {
            throw .invalidArgument
        }
        self.process = process
        self.configuration = configuration
        heapStorage = .allocate(capacity: 1)
        heapStorage.initialize(to: HeapState())
        counterStorage = .allocate(capacity: 1)
        counterStorage.initialize(to: Counters())
        failedMapStorage = .allocate(capacity: 1)
        failedMapStorage.initialize(to: 0)
    }

    deinit {
        heapStorage.deinitialize(count: 1)
        heapStorage.deallocate()
        counterStorage.deinitialize(count: 1)
        counterStorage.deallocate()
        failedMapStorage.deallocate()
    }

    /// The counters now.
    public var statistics: Counters { lock.withLock { _ in counters } }

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
        try lock.withLock { (_: inout Int) throws(Errno) -> UnsafeMutableRawPointer in
            counters.calls += 1
            let p = try counted(size) { () throws(Errno) in try allocate(size, alignment: 16, zeroed: false) }
            note(allocated: size)
            return p
        }
    }

    /// `calloc(count, size)`: zeroed memory, whatever the uninitialised switch says.
    /// - Throws: `ENOMEM`, also when `count * size` overflows.
    public func calloc(_ count: Int, _ size: Int) throws(Errno) -> UnsafeMutableRawPointer {
        let (total, overflow) = count.multipliedReportingOverflow(by: size)
        guard count >= 0, size >= 0, !overflow else { throw .noMemory }
        return try lock.withLock { (_: inout Int) throws(Errno) -> UnsafeMutableRawPointer in
            counters.calls += 1
            let p = try counted(total) { () throws(Errno) in try allocate(total, alignment: 16, zeroed: true) }
            note(allocated: total)
            return p
        }
    }

    /// `realloc(pointer, size)`: nil `pointer` is `malloc`; size 0 frees and returns nil
    /// (glibc's behaviour); otherwise the block grows or shrinks in place when it can, or
    /// moves. - Throws: `ENOMEM` (the old block is untouched); `EINVAL` for a pointer that
    /// is not a live block.
    public func realloc(_ pointer: UnsafeMutableRawPointer?, _ size: Int) throws(Errno) -> UnsafeMutableRawPointer? {
        guard let pointer else { return try malloc(size) }
        if size == 0 {
            try free(pointer)
            return nil
        }
        return try lock.withLock { (_: inout Int) throws(Errno) -> UnsafeMutableRawPointer in
            counters.calls += 1
            let old = try requestedSize(of: pointer)
            let q = try counted(size) { () throws(Errno) in try reallocate(pointer, size) }
            counters.liveBytes += size - old
            counters.peakLiveBytes = max(counters.peakLiveBytes, counters.liveBytes)
            return q
        }
    }

    /// `free(pointer)`; nil is a no-op. - Throws: `EINVAL` for a pointer that is not a live
    /// block (a double free, or a pointer this malloc did not return).
    public func free(_ pointer: UnsafeMutableRawPointer?) throws(Errno) {
        guard let pointer else { return }
        try lock.withLock { (_: inout Int) throws(Errno) in
            counters.calls += 1
            let size = try requestedSize(of: pointer)
            try release(pointer)
            counters.liveBytes -= size
            counters.liveBlocks -= 1
        }
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

    /// Runs an allocation of `size` bytes, counting an ENOMEM and noting the first.
    private func counted<T>(_ size: Int, _ body: () throws(Errno) -> T) throws(Errno) -> T {
        failedMapStorage.pointee = 0
        do {
            return try body()
        } catch {
            if error == .noMemory {
                counters.failures += 1
                if counters.firstFailure == nil {
                    counters.firstFailure = Failure(
                        call: counters.calls, size: size, mmapBytes: failedMapStorage.pointee,
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
        counters.peakLiveBytes = max(counters.peakLiveBytes, counters.liveBytes)
    }

    // MARK: Dispatch

    func allocate(_ size: Int, alignment: Int, zeroed: Bool) throws(Errno) -> UnsafeMutableRawPointer {
        guard size >= 0, size <= Int.max / 2 else { throw .noMemory }
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

    func release(_ p: UnsafeMutableRawPointer) throws(Errno) {
        let h = try header(of: p)
        if h.isMapped { return try unmapBlock(p) }
        try heapFree(p)
    }

    func reallocate(_ p: UnsafeMutableRawPointer, _ size: Int) throws(Errno) -> UnsafeMutableRawPointer {
        guard size <= Int.max / 2 else { throw .noMemory }
        let h = try header(of: p)
        if !h.isMapped, let q = heapResizeInPlace(p, size) { return q }
        if h.isMapped && size <= h.usable && size + 16 > h.usable / 2 {
            header(p).requested = UInt64(size)
            return p
        }
        let q = try allocate(size, alignment: 16, zeroed: false)
        q.copyMemory(from: p, byteCount: min(size, h.usable))
        try release(p)
        return q
    }

    func requestedSize(of p: UnsafeMutableRawPointer) throws(Errno) -> Int {
        Int(try header(of: p).requested)
    }

    func usable(_ p: UnsafeMutableRawPointer) throws(Errno) -> Int { try header(of: p).usable }

    // MARK: mmap

    /// One anonymous private mapping, uninitialised when asked and allowed.
    func map(_ bytes: Int, uninitialized: Bool) throws(Errno) -> UnsafeMutableRawPointer {
        var flags: MapFlags = [.private, .anonymous]
        if uninitialized { flags.insert(.uninitialized) }
        do {
            let a = try process.mmap(length: UInt(bytes), protection: [.read, .write], flags: flags)
            counters.mmaps += 1
            if let r = process.regionExtent(ofMappingAt: a.rawValue) {
                counters.heldBytes += Int(r.top - r.start)
                if counters.heldBytes > counters.peakHeldBytes {
                    counters.peakHeldBytes = counters.heldBytes
                    onNewPeak?()
                }
            }
            return a.pointer!
        } catch {
            // Whatever mmap says (EINVAL for absurd lengths included), malloc says ENOMEM.
            failedMapStorage.pointee = bytes
            throw .noMemory
        }
    }

    func unmap(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        if let r = process.regionExtent(ofMappingAt: UInt(bitPattern: p)) { counters.heldBytes -= Int(r.top - r.start) }
        do {
            try process.munmap(address: UInt(bitPattern: p), length: UInt(bytes))
            counters.munmaps += 1
        } catch {
            preconditionFailure("malloc lost track of its mapping at \(p): \(error)")
        }
    }

    /// A block with its own mapping: [mapping start … | header | payload].
    func mapBlock(_ size: Int, alignment: Int, zeroed: Bool) throws(Errno) -> UnsafeMutableRawPointer {
        let length = size + BlockHeader.size + (alignment > 16 ? alignment : 0)
        let base = try map(length, uninitialized: configuration.uninitialized && !zeroed)
        var payload = UInt(bitPattern: base) + UInt(BlockHeader.size)
        if alignment > 16 { payload = (payload + UInt(alignment) - 1) & ~UInt(alignment - 1) }
        let p = UnsafeMutableRawPointer(bitPattern: payload)!
        let h = header(p)
        h.mappingStart = UInt64(UInt(bitPattern: base))
        h.mappingLength = UInt64(length)
        h.requested = UInt64(size)
        h.tag = BlockHeader.mappedTag
        return p
    }

    func unmapBlock(_ p: UnsafeMutableRawPointer) throws(Errno) {
        let h = header(p)
        let start = UnsafeMutableRawPointer(bitPattern: UInt(h.mappingStart))!
        let length = Int(h.mappingLength)
        h.tag = 0
        unmap(start, length)
    }

    /// The header of a live block. - Throws: `EINVAL` when `p` is not one.
    func header(of p: UnsafeMutableRawPointer) throws(Errno) -> HeaderView {
        // Only memory inside the arena is read: a wild pointer is refused, not followed.
        let arena = process.system.allocator
        guard UInt(bitPattern: p) & 15 == 0, UInt(bitPattern: p) > 4096,
            arena.pageFrame(containing: p - Chunk.overhead) != nil
        else { throw .invalidArgument }
        let word = p.load(fromByteOffset: -8, as: UInt64.self)
        switch word >> 48 {
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
            let c = Chunk(p - Chunk.overhead)
            guard c.inUse, try heapOwns(c), c.next.prevInUse else { throw .invalidArgument }
            return HeaderView(
                isMapped: false, usable: c.size - Chunk.overhead, requested: word & BlockHeader.sizeMask)
        default:
            throw .invalidArgument
        }
    }

    func header(_ p: UnsafeMutableRawPointer) -> BlockHeader { BlockHeader(p - BlockHeader.size) }
}

/// What a block's header says.
struct HeaderView {
    var isMapped: Bool
    var usable: Int
    var requested: UInt64
}

/// The header words before a payload. Both kinds keep a tag word at -8: the kind's tag in
/// the top 16 bits, the requested size in the low 48. Mapped blocks add [mapping start]
/// [mapping length] at -32 and -24; heap chunks keep their size word at -16 (see `Chunk`).
struct BlockHeader {
    static let size = 32
    static let mappedTag: UInt64 = 0xB10C
    static let heapTag: UInt64 = 0xA11C
    static let sizeMask: UInt64 = (1 << 48) - 1
    let base: UnsafeMutableRawPointer

    init(_ base: UnsafeMutableRawPointer) { self.base = base }

    static func tagWord(_ tag: UInt64, _ requested: Int) -> UInt64 { tag << 48 | (UInt64(requested) & sizeMask) }

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
        get { word >> 48 }
        nonmutating set { word = newValue << 48 | (word & BlockHeader.sizeMask) }
    }
    var requested: UInt64 {
        get { word & BlockHeader.sizeMask }
        nonmutating set { word = (word & ~BlockHeader.sizeMask) | (newValue & BlockHeader.sizeMask) }
    }
}
