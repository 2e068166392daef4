// SPDX-License-Identifier: Apache-2.0
//
// The measured operations. Each `run(_:)` is the whole timed loop.
internal import CShims
import NommuBase
import PageAllocator

/// `memset(base, 0, bytes)` through the C library.
struct MemsetOperation: TimedOperation {
    let base: UnsafeMutableRawPointer
    let bytes: Int

    mutating func run(_ count: Int) throws(Errno) {
        let p = base
        let n = bytes
        for _ in 0..<count {
            cshim_memset(p, 0, n)
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
struct HostMmapTouchOperation: TimedOperation {
    let bytes: Int

    mutating func run(_ count: Int) throws(Errno) {
        let n = bytes
        for _ in 0..<count {
            let rc = cshim_host_mmap_touch(n)
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
            let rc = cshim_glibc_memalign_memset_free(4096, n)
            if rc != 0 { throw Errno(rawValue: rc) }
        }
    }
}

/// glibc `posix_memalign(4096, 4096)` + `free`, the loop itself in C.
struct GlibcPairsOperation: TimedOperation {
    // Not zero-sized on purpose: the thread sanitizer's Swift access hook faults on the
    // placeholder address of an empty `inout` value.
    let alignment = 4096

    mutating func run(_ count: Int) throws(Errno) {
        let rc = cshim_glibc_memalign_free_pairs(alignment, 4096, count)
        if rc != 0 { throw Errno(rawValue: rc) }
    }
}
