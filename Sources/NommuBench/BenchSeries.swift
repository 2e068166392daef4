// SPDX-License-Identifier: Apache-2.0

/// One thing `nommu bench` measures. The raw value is the series name used in every output.
public enum BenchSeries: String, Sendable, CaseIterable, Hashable, CustomStringConvertible {
    /// `memset` of an already written buffer from a `HostArena`: the baseline of the sized series.
    case memset
    /// `allocateExact(bytes:, .zeroed)` + `free` of pages that were written before.
    case allocZeroedDirty = "alloc_zeroed_dirty"
    /// `allocateExact(bytes:, .zeroed)` of pages known to be zero (fresh arena), no free in between.
    case allocZeroedFresh = "alloc_zeroed_fresh"
    /// `allocateExact(bytes:, .uninitialized)` + `free`.
    case allocUninit = "alloc_uninit"
    /// Anonymous `mmap(MAP_UNINITIALIZED)` (allowed) + `munmap` through the address-space
    /// model: the page allocator's cost plus the model's bookkeeping.
    case nommuMmapUninit = "nommu_mmap_uninit"
    /// Host kernel `mmap`, a write to every host page, `munmap`.
    case hostMmapTouch = "host_mmap_touch"
    /// glibc `posix_memalign(4096, size)`, `memset`, `free`.
    case glibcPosixMemalign = "glibc_posix_memalign"
    /// `allocate(order: 0, .uninitialized)` + `free` through the per-CPU lists.
    case order0Pair = "order0_pair"
    /// `allocate(order: 0, .uninitialized)` + `free` splitting and merging a whole order-10 block.
    case order0PairWorst = "order0_pair_worst"
    /// glibc `posix_memalign(4096, 4096)` + `free`: the baseline of the allocator pairs.
    case glibcPair4k = "glibc_pair_4k"
    /// Anonymous 4 KiB `mmap` + `munmap` through the model, uninitialised.
    case nommuMmapPair4k = "nommu_mmap_pair_4k"
    /// The host kernel's 4 KiB anonymous `mmap` + `munmap`, untouched: the baseline of
    /// `nommu_mmap_pair_4k`.
    case hostMmapPair4k = "host_mmap_pair_4k"
    /// glibc `malloc(64)` + `free`, the loop in C: the baseline of `cabi_malloc_pair_64`.
    case glibcMallocPair64 = "glibc_malloc_pair_64"
    /// `nommu_malloc(p, 64)` + `nommu_free` through the C ABI (the `heap` malloc), the loop in C.
    case cabiMallocPair64 = "cabi_malloc_pair_64"
    /// `cabi_malloc_pair_64` from 4 threads of one process at once: wall time per pair (the
    /// baseline is the one-thread series, so a ratio of 0.5 is twice the throughput).
    case cabiMallocPair64x4 = "cabi_malloc_pair_64_4t"
    /// glibc's `malloc(64)` + `free` from 4 threads at once: how the host's malloc scales on
    /// this machine (baseline: glibc from one thread), beside `cabi_malloc_pair_64_4t`.
    case glibcMallocPair64x4 = "glibc_malloc_pair_64_4t"
    /// `nommu_malloc(p, 4096)` + `nommu_free` through the C ABI, the loop in C.
    case cabiMallocPair4k = "cabi_malloc_pair_4k"
    /// `nommu_alloc_pages(s, 0, 0)` + `nommu_free_pages` through the C ABI, the loop in C: the
    /// baseline is `order0_pair`, the same allocator call made from Swift.
    case cabiAllocPagesPair = "cabi_alloc_pages_pair"
    /// `nommu_mmap` of 4 KiB (`MAP_UNINITIALIZED`, allowed) + `nommu_munmap` through the C ABI.
    case cabiMmapPair4k = "cabi_mmap_pair_4k"
    /// The fixed C program `nommu-workload mixed` (malloc/realloc/free calls of mixed sizes
    /// over a few live sets), one thread, on glibc: the baseline of the program series.
    /// Times are the program's wall time per call (start to exit).
    case programGlibc = "program_glibc"
    /// The same program under `nommu run --malloc heap` (libnommu-run.so preloaded).
    case programRunHeap = "program_run_heap"
    /// The same program under `nommu run --malloc simple`.
    case programRunSimple = "program_run_simple"
    /// The program with 4 threads, on glibc: the baseline of the 4-thread program series.
    case programGlibc4t = "program_glibc_4t"
    /// With 4 threads under `nommu run --malloc heap`.
    case programRunHeap4t = "program_run_heap_4t"
    /// With 4 threads under `nommu run --malloc simple`.
    case programRunSimple4t = "program_run_simple_4t"

    public var description: String { rawValue }

    /// Whether the series times a whole program (`nommu-workload`), reported with `bytes == 0`.
    public var isProgram: Bool {
        switch self {
        case .programGlibc, .programRunHeap, .programRunSimple, .programGlibc4t, .programRunHeap4t,
            .programRunSimple4t:
            true
        default: false
        }
    }

    /// The program series' threads.
    public var programThreads: Int {
        switch self {
        case .programGlibc4t, .programRunHeap4t, .programRunSimple4t: 4
        default: 1
        }
    }

    /// The malloc of a program series under `nommu run` (nil: glibc, without the model).
    public var programPolicy: String? {
        switch self {
        case .programRunHeap, .programRunHeap4t: "heap"
        case .programRunSimple, .programRunSimple4t: "simple"
        default: nil
        }
    }

    /// Whether the series is measured at every size (otherwise it is a size-independent
    /// pair series, reported with `bytes == BenchSeries.pairBytes`).
    public var isSized: Bool {
        switch self {
        case .memset, .allocZeroedDirty, .allocZeroedFresh, .allocUninit, .nommuMmapUninit, .hostMmapTouch,
            .glibcPosixMemalign:
            true
        case .order0Pair, .order0PairWorst, .glibcPair4k, .nommuMmapPair4k, .hostMmapPair4k, .glibcMallocPair64,
            .cabiMallocPair64, .cabiMallocPair64x4, .glibcMallocPair64x4, .cabiMallocPair4k, .cabiAllocPagesPair,
            .cabiMmapPair4k,
            .programGlibc, .programRunHeap, .programRunSimple, .programGlibc4t, .programRunHeap4t,
            .programRunSimple4t:
            false
        }
    }

    /// The series whose median at the same size is the denominator of this series' ratio.
    public var baseline: BenchSeries {
        switch self {
        case .nommuMmapPair4k, .hostMmapPair4k, .cabiMmapPair4k: .hostMmapPair4k
        case .glibcMallocPair64, .cabiMallocPair64, .glibcMallocPair64x4: .glibcMallocPair64
        case .cabiMallocPair64x4: .cabiMallocPair64
        case .cabiAllocPagesPair: .order0Pair
        case .programGlibc, .programRunHeap, .programRunSimple: .programGlibc
        case .programGlibc4t, .programRunHeap4t, .programRunSimple4t: .programGlibc4t
        default: isSized ? .memset : .glibcPair4k
        }
    }

    /// The bytes reported for most pair series.
    public static let pairBytes = 4096

    /// The bytes a pair series reports (and its ratio's baseline is taken at): 64 for the
    /// 64-byte malloc pairs, `pairBytes` for the others; 0 for programs.
    public var reportedBytes: Int {
        switch self {
        case .glibcMallocPair64, .cabiMallocPair64, .cabiMallocPair64x4, .glibcMallocPair64x4: 64
        default: isProgram ? 0 : BenchSeries.pairBytes
        }
    }

    /// The sized series, in output order.
    public static var sizedSeries: [BenchSeries] { allCases.filter(\.isSized) }

    /// The pair series, in output order.
    public static var pairSeries: [BenchSeries] { allCases.filter { !$0.isSized && !$0.isProgram } }

    /// The program series, in output order.
    public static var programSeries: [BenchSeries] { allCases.filter(\.isProgram) }
}
