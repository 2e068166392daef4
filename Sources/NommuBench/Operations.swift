// SPDX-License-Identifier: Apache-2.0
//
// The measured operations. Each `run(_:)` is the whole timed loop.
internal import CShims
internal import CNommu
internal import CNommuBench
import NommuBase
import PageAllocator
import NommuMM

/// `memset(base, 0, bytes)` through the C library.
struct MemsetOperation: TimedOperation {
    let base: UnsafeMutableRawPointer
    let bytes: Int

    mutating func run(_ count: Int) throws(Errno) {
        let p = base
        let n = bytes
        for _ in 0..<count {
            cnb_memset(p, 0, n)
        }
    }
}

/// `allocateExact(bytes:, initialization)` then `free`.
struct ExactPairOperation: TimedOperation {
    let allocator: PageAllocator
    let bytes: Int
    let initialization: PageAllocator.Initialization

    mutating func run(_ count: Int) throws(Errno) {
        let a = allocator
        let n = bytes
        let i = initialization
        for _ in 0..<count {
            let run = try a.allocateExact(bytes: n, i)
            blackHole(run.start.rawValue)
            try a.free(run)
        }
    }
}

/// `allocate(order: 0, .uninitialized)` then `free`.
struct Order0PairOperation: TimedOperation {
    let allocator: PageAllocator

    mutating func run(_ count: Int) throws(Errno) {
        let a = allocator
        let order = Order(0)
        for _ in 0..<count {
            let run = try a.allocate(order: order, .uninitialized)
            blackHole(run.start.rawValue)
            try a.free(run)
        }
    }
}

/// Host `mmap`, touch every host page, `munmap`.
/// Anonymous `mmap(MAP_UNINITIALIZED)` + `munmap` of `bytes` through the model.
struct ModelMmapPairOperation: TimedOperation {
    let process: Process
    let bytes: UInt

    mutating func run(_ count: Int) throws(Errno) {
        let p = process
        let n = bytes
        for _ in 0..<count {
            let a = try p.mmap(length: n, protection: [.read, .write], flags: [.private, .anonymous, .uninitialized])
            blackHole(Int(bitPattern: a.rawValue))
            try p.munmap(address: a.rawValue, length: n)
        }
    }
}

/// The host kernel's anonymous mmap + munmap, untouched.
struct HostMmapPairOperation: TimedOperation {
    let bytes: Int

    mutating func run(_ count: Int) throws(Errno) {
        let rc = cnb_host_mmap_pairs(bytes, count)
        if rc != 0 { throw Errno(rawValue: rc) }
    }
}

struct HostMmapTouchOperation: TimedOperation {
    let bytes: Int

    mutating func run(_ count: Int) throws(Errno) {
        let n = bytes
        for _ in 0..<count {
            let rc = cnb_host_mmap_touch(n)
            if rc != 0 { throw Errno(rawValue: rc) }
        }
    }
}

/// glibc `posix_memalign(4096, bytes)`, `memset`, `free`.
struct GlibcMemalignMemsetOperation: TimedOperation {
    let bytes: Int

    mutating func run(_ count: Int) throws(Errno) {
        let n = bytes
        for _ in 0..<count {
            let rc = cnb_glibc_memalign_memset_free(4096, n)
            if rc != 0 { throw Errno(rawValue: rc) }
        }
    }
}

/// glibc `posix_memalign(4096, 4096)` + `free`, the loop itself in C.
/// posix_memalign(4096, 4096) + free, the way glibc does it in a spread of heap states.
///
/// glibc's cost for this pair depends on where its top chunk sits relative to the 4 KiB
/// alignment and on whether the top gets trimmed and regrown: in one process it was seen
/// anywhere from ~17 to ~72 ns depending on what ran before. So each batch first places
/// the top chunk with a live padding block of a different size (24 sizes, 176 bytes
/// apart), and the series' median is taken over those states: a baseline that is
/// reproducible from run to run and close to glibc's common fast path.
struct GlibcPairsOperation: TimedOperation {
    var phase = 0

    mutating func run(_ count: Int) throws(Errno) {
        let pad = 200 + (phase % 24) * 176
        phase &+= 1
        let rc = cnb_glibc_memalign_free_pairs(4096, 4096, count, pad)
        if rc != 0 { throw Errno(rawValue: rc) }
    }
}

// MARK: Through the C ABI (the loops are C: Sources/CNommuBench)

/// `nommu_malloc(p, bytes)` + `nommu_free`, or glibc's `malloc` + `free` when `process` is nil.
struct CMallocPairOperation: TimedOperation {
    let process: OpaquePointer?
    let bytes: Int

    mutating func run(_ count: Int) throws(Errno) {
        let rc = process.map { cnb_malloc_pairs($0, bytes, count) } ?? cnb_glibc_malloc_pairs(bytes, count)
        if rc != 0 { throw Errno(rawValue: rc) }
    }
}

/// `nommu_malloc` pairs from `threads` threads of one process; the time is taken by the
/// operation itself (from the threads' start to the last one's end), per pair.
struct CMallocThreadsOperation: TimedOperation {
    /// nil: glibc's malloc.
    let process: OpaquePointer?
    let bytes: Int
    let threads: Int

    mutating func run(_ count: Int) throws(Errno) { _ = try timedRun(count) }

    mutating func timedRun(_ count: Int) throws(Errno) -> UInt64 {
        var ns: UInt64 = 0
        let rc = cnb_malloc_pairs_threads(process, bytes, count, CInt(threads), &ns)
        if rc != 0 { throw Errno(rawValue: rc) }
        return ns
    }
}

/// `nommu_alloc_pages(s, 0, 0)` + `nommu_free_pages`.
struct CAllocPagesPairOperation: TimedOperation {
    let system: OpaquePointer

    mutating func run(_ count: Int) throws(Errno) {
        let rc = cnb_alloc_pages_pairs(system, count)
        if rc != 0 { throw Errno(rawValue: rc) }
    }
}

/// `nommu_mmap(MAP_UNINITIALIZED)` + `nommu_munmap` of `bytes`.
struct CMmapPairOperation: TimedOperation {
    let process: OpaquePointer
    let bytes: Int

    mutating func run(_ count: Int) throws(Errno) {
        let rc = cnb_mmap_pairs(process, bytes, count)
        if rc != 0 { throw Errno(rawValue: rc) }
    }
}
