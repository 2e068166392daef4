// SPDX-License-Identifier: Apache-2.0
internal import CShims
internal import CNommu
internal import CNommuBench
import NommuHost
import NommuBase
import PageAllocator
import NommuMM
#if canImport(Glibc)
    import Glibc
#endif

/// Runs every series of `configuration` (plus the baselines their ratios need) and returns
/// one result per (series, size), in output order: series as `BenchSeries.allCases`, sizes
/// ascending; pair series once, with `bytes == 4096`.
///
/// `progress` receives one line per finished measurement (and warnings about anything
/// that makes a number suspect); it is meant for stderr.
///
/// - Throws: `BenchError.invalidSize` / `.noSizes` for sizes the bench cannot use;
///   `BenchError.operationFailed` when the allocator or the host refuses something.
public func runBench(
    _ configuration: BenchConfiguration, progress: (String) -> Void = { _ in }
) throws(BenchError) -> [BenchResult] {
    var configuration = configuration
    configuration.sizes = Array(Set(configuration.sizes)).sorted()
    let series = configuration.resolvedSeries
    guard !series.isEmpty else { throw .noSeries }
    if series.contains(where: \.isSized) {
        guard !configuration.sizes.isEmpty else { throw .noSizes }
        for size in configuration.sizes {
            _ = try parseSize(String(size))
        }
    }
    let plan = SamplingPlan(configuration)
    var results: [BenchResult] = []

    // One allocator per maximum order the sizes need, made on first use.
    var sizedAllocators: [Int: PageAllocator] = [:]
    func sized(_ size: Int) throws(BenchError) -> PageAllocator {
        let order = BenchConfiguration.maxOrder(forSize: size)
        if let a = sizedAllocators[order] { return a }
        let a = try makeSizedAllocator(maxOrder: order)
        sizedAllocators[order] = a
        return a
    }

    // The pair series run first: glibc's posix_memalign(4096, 4096) + free costs anything
    // from ~17 to ~48 ns depending on the heap state that the large glibc series leave
    // behind (dynamic mmap and trim thresholds), so its baseline is taken in the state the
    // process starts with, where it is reproducible. Output keeps `BenchSeries` order.
    // The programs run last, round by round (Programs.swift).
    let measurementOrder = series.filter { !$0.isSized && !$0.isProgram } + series.filter(\.isSized)
    for s in measurementOrder {
        switch s {
        case .memset:
            results += try measureMemset(configuration, plan, progress)
        case .allocZeroedDirty:
            for size in configuration.sizes {
                results.append(try measureDirty(try sized(size), bytes: size, plan, progress))
            }
        case .allocZeroedFresh:
            for size in configuration.sizes {
                results.append(try measureFresh(configuration, bytes: size, plan, progress))
            }
        case .allocUninit:
            for size in configuration.sizes {
                var op = ExactPairOperation(allocator: try sized(size), bytes: size, initialization: .uninitialized)
                results.append(try run(&op, s, size, "allocateExact(.uninitialized) + free", plan, progress))
            }
        case .hostMmapTouch:
            for size in configuration.sizes {
                var op = HostMmapTouchOperation(bytes: size)
                results.append(try run(&op, s, size, "cnb_host_mmap_touch", plan, progress))
            }
        case .glibcPosixMemalign:
            for size in configuration.sizes {
                var op = GlibcMemalignMemsetOperation(bytes: size)
                results.append(try run(&op, s, size, "cnb_glibc_memalign_memset_free", plan, progress))
            }
        case .order0Pair:
            results.append(try measureOrder0(perCPU: true, s, plan, progress))
        case .order0PairWorst:
            results.append(try measureOrder0(perCPU: false, s, plan, progress))
        case .glibcPair4k:
            var op = GlibcPairsOperation()
            results.append(
                try run(&op, s, BenchSeries.pairBytes, "cnb_glibc_memalign_free_pairs", plan, progress))
        case .nommuMmapUninit:
            for size in configuration.sizes {
                let process = try modelProcess(s, maxOrder: BenchConfiguration.maxOrder(forSize: size))
                var op = ModelMmapPairOperation(process: process, bytes: UInt(size))
                results.append(try run(&op, s, size, "mmap(MAP_UNINITIALIZED) + munmap", plan, progress))
                process.exit()
            }
        case .nommuMmapPair4k:
            let process = try modelProcess(s, maxOrder: BenchConfiguration.defaultMaxOrder)
            var op = ModelMmapPairOperation(process: process, bytes: UInt(BenchSeries.pairBytes))
            results.append(try run(&op, s, BenchSeries.pairBytes, "mmap + munmap (model)", plan, progress))
            process.exit()
        case .hostMmapPair4k:
            var op = HostMmapPairOperation(bytes: BenchSeries.pairBytes)
            results.append(try run(&op, s, BenchSeries.pairBytes, "cnb_host_mmap_pairs", plan, progress))
        case .glibcMallocPair64:
            var op = CMallocPairOperation(process: nil, bytes: s.reportedBytes)
            results.append(try run(&op, s, s.reportedBytes, "cnb_glibc_malloc_pairs", plan, progress))
        case .cabiMallocPair64, .cabiMallocPair4k:
            let c = try CSystem(s)
            var op = CMallocPairOperation(process: c.process, bytes: s.reportedBytes)
            results.append(try run(&op, s, s.reportedBytes, "nommu_malloc + nommu_free", plan, progress))
        case .cabiMallocPair64x4:
            let c = try CSystem(s)
            var op = CMallocThreadsOperation(process: c.process, bytes: s.reportedBytes, threads: 4)
            results.append(
                try run(&op, s, s.reportedBytes, "nommu_malloc + nommu_free, 4 threads", plan.forThreads(), progress))
        case .glibcMallocPair64x4:
            var op = CMallocThreadsOperation(process: nil, bytes: s.reportedBytes, threads: 4)
            results.append(
                try run(&op, s, s.reportedBytes, "malloc + free (glibc), 4 threads", plan.forThreads(), progress))
        case .cabiAllocPagesPair:
            let c = try CSystem(s)
            var op = CAllocPagesPairOperation(system: c.system)
            results.append(try run(&op, s, s.reportedBytes, "nommu_alloc_pages + nommu_free_pages", plan, progress))
        case .cabiMmapPair4k:
            let c = try CSystem(s)
            var op = CMmapPairOperation(process: c.process, bytes: s.reportedBytes)
            results.append(try run(&op, s, s.reportedBytes, "nommu_mmap + nommu_munmap", plan, progress))
        case .programGlibc, .programRunHeap, .programRunSimple, .programGlibc4t, .programRunHeap4t,
            .programRunSimple4t:
            break
        }
    }
    if let programs = configuration.programs, series.contains(where: \.isProgram) {
        results += try measurePrograms(series.filter(\.isProgram), programs, progress)
    }
    let rank = Dictionary(uniqueKeysWithValues: BenchSeries.allCases.enumerated().map { ($1.rawValue, $0) })
    return results.enumerated().sorted { a, b in
        let ra = rank[a.element.name] ?? 0
        let rb = rank[b.element.name] ?? 0
        return ra != rb ? ra < rb : a.offset < b.offset
    }.map(\.element)
}

// MARK: - Helpers

/// A system and one process made through the C ABI, as a C program makes them: the
/// defaults (64 MiB, order 10) with uninitialised mappings allowed. Destroyed with the value.
private final class CSystem {
    let system: OpaquePointer
    let process: OpaquePointer

    init(_ series: BenchSeries) throws(BenchError) {
        var c = nommu_config()
        nommu_config_init(&c)
        c.allow_uninitialized = 1
        guard let s = nommu_system_create(&c) else {
            throw .operationFailed(
                series: series.rawValue, bytes: series.reportedBytes, operation: "nommu_system_create",
                Errno(rawValue: errno))
        }
        guard let p = nommu_process_create(s) else {
            let e = errno
            nommu_system_destroy(s)
            throw .operationFailed(
                series: series.rawValue, bytes: series.reportedBytes, operation: "nommu_process_create",
                Errno(rawValue: e))
        }
        system = s
        process = p
    }

    deinit {
        nommu_process_exit(process)
        nommu_system_destroy(system)
    }
}

/// A process of a new system that allows uninitialised mappings: 4 KiB pages, the given
/// maximum order, an arena of two max-order blocks.
private func modelProcess(_ series: BenchSeries, maxOrder: Int) throws(BenchError) -> Process {
    let arenaBytes = BenchConfiguration.arenaBytes(forMaxOrder: maxOrder)
    let system = try attempt(series, arenaBytes, "System") { () throws(Errno) -> System in
        try System(
            .init(
                arenaBytes: arenaBytes, pageSize: BenchConfiguration.allocatorPageSize, maxOrder: maxOrder,
                allowUninitialized: true))
    }
    return system.createProcess()
}

/// Measures `op` and reports the line; Errno becomes `BenchError.operationFailed`.
private func run<Op: TimedOperation>(
    _ op: inout Op, _ series: BenchSeries, _ bytes: Int, _ what: String, _ plan: SamplingPlan,
    _ progress: (String) -> Void
) throws(BenchError) -> BenchResult {
    let m: Measurement
    do {
        m = try measure(&op, plan)
    } catch {
        throw .operationFailed(series: series.rawValue, bytes: bytes, operation: what, error)
    }
    let r = m.result(series, bytes: bytes)
    progress(progressLine(r, samples: m.samples.count, batch: m.batch))
    return r
}

func progressLine(_ r: BenchResult, samples: Int, batch: Int) -> String {
    let size = BenchSeries(rawValue: r.name)?.isSized == false ? "pair" : formatBytes(r.bytes)
    return "bench: \(r.name) \(size): median \(formatNanoseconds(r.medianNs)) "
        + "(p10 \(formatNanoseconds(r.p10Ns)), p90 \(formatNanoseconds(r.p90Ns))), "
        + "\(samples) samples × \(batch) ops"
}

/// Runs `body`, turning its Errno into `BenchError.operationFailed`.
private func attempt<T>(
    _ series: BenchSeries, _ bytes: Int, _ what: String, _ body: () throws(Errno) -> T
) throws(BenchError) -> T {
    do {
        return try body()
    } catch {
        throw .operationFailed(series: series.rawValue, bytes: bytes, operation: what, error)
    }
}

// MARK: - memset

private func measureMemset(
    _ c: BenchConfiguration, _ plan: SamplingPlan, _ progress: (String) -> Void
) throws(BenchError) -> [BenchResult] {
    let bytes = c.largestBlock
    let arena: HostArena
    do {
        arena = try HostArena(byteCount: bytes, alignment: min(bytes, 1 << 30), backing: .mmap)
    } catch {
        throw .operationFailed(series: BenchSeries.memset.rawValue, bytes: bytes, operation: "HostArena", error)
    }
    // Pre-touch: every page is written (dirty) before anything is timed.
    cnb_memset(arena.baseAddress, 0xA5, bytes)
    var out: [BenchResult] = []
    for size in c.sizes {
        var op = MemsetOperation(base: arena.baseAddress, bytes: size)
        out.append(try run(&op, .memset, size, "memset", plan, progress))
    }
    return out
}

// MARK: - Sized allocator

/// An allocator of `alloc_zeroed_dirty` and `alloc_uninit`: 4 KiB pages, the given
/// maximum order (the kernel's 10, or what a larger size needs), an arena of two
/// max-order blocks, mmap backing, default trim (1). Every page of it is written once
/// here, so that no page is ever known to be zero afterwards.
private func makeSizedAllocator(maxOrder: Int) throws(BenchError) -> PageAllocator {
    let series = BenchSeries.allocZeroedDirty
    let block = BenchConfiguration.allocatorPageSize << maxOrder
    let arenaBytes = BenchConfiguration.arenaBytes(forMaxOrder: maxOrder)
    let allocator = try attempt(series, block, "PageAllocator(arena \(formatBytes(arenaBytes)))") {
        () throws(Errno) -> PageAllocator in
        try PageAllocator(
            .init(
                arenaBytes: arenaBytes, pageSize: BenchConfiguration.allocatorPageSize,
                maxOrder: maxOrder, backing: .mmap))
    }
    try attempt(series, block, "dirtying the arena") { () throws(Errno) in
        let a = try allocator.allocateExact(bytes: block, .uninitialized)
        let b = try allocator.allocateExact(bytes: block, .uninitialized)
        for r in [a, b] {
            let buf = allocator.bytes(of: r)
            cnb_memset(buf.baseAddress!, 0x5A, buf.count)
        }
        try allocator.free(a)
        try allocator.free(b)
    }
    return allocator
}

private func measureDirty(
    _ a: PageAllocator, bytes: Int, _ plan: SamplingPlan, _ progress: (String) -> Void
) throws(BenchError) -> BenchResult {
    let series = BenchSeries.allocZeroedDirty
    // Setup: allocate uninitialised, write every byte, free. Freed pages are dirty, and
    // each zeroed alloc + free below leaves them dirty again.
    try attempt(series, bytes, "dirtying allocateExact(.uninitialized)") { () throws(Errno) in
        let r = try a.allocateExact(bytes: bytes, .uninitialized)
        let buf = a.bytes(of: r)
        cnb_memset(buf.baseAddress!, 0x5A, buf.count)
        try a.free(r)
    }
    let before = a.statistics()
    var op = ExactPairOperation(allocator: a, bytes: bytes, initialization: .zeroed)
    let r = try run(&op, series, bytes, "allocateExact(.zeroed) + free", plan, progress)
    let after = a.statistics()
    if after.bytesKnownZero != before.bytesKnownZero {
        progress(
            "bench: warning: \(series) \(formatBytes(bytes)): \(after.bytesKnownZero - before.bytesKnownZero) "
                + "bytes were skipped as known zero; the pages were not all dirty")
    }
    if after.allocatedPages != before.allocatedPages {
        progress("bench: warning: \(series) \(formatBytes(bytes)): allocated pages changed across the run")
    }
    return r
}

// MARK: - alloc_zeroed_fresh

/// Allocates `count` runs of `bytes` (zeroed) into `runs`, timed. No free in between, so
/// every run comes from pages the allocator knows to be zero.
@inline(never)
private func timeFreshAllocations(
    _ a: PageAllocator, bytes: Int, count: Int, into runs: UnsafeMutablePointer<PageRun>
) throws(Errno) -> UInt64 {
    let t0 = cshim_now_ns()
    for i in 0..<count {
        (runs + i).initialize(to: try a.allocateExact(bytes: bytes, .zeroed))
    }
    let t1 = cshim_now_ns()
    return t1 &- t0
}

private func measureFresh(
    _ c: BenchConfiguration, bytes: Int, _ plan: SamplingPlan, _ progress: (String) -> Void
) throws(BenchError) -> BenchResult {
    let series = BenchSeries.allocZeroedFresh
    let block = roundUpToPowerOfTwo(bytes)
    let maxN = max(1, min(plan.maximumBatch, BenchConfiguration.freshArenaLimit / block))
    let runs = UnsafeMutablePointer<PageRun>.allocate(capacity: maxN)
    defer { runs.deallocate() }
    var knownZeroMisses: Int64 = 0

    // One sample: a fresh allocator for n blocks (untimed), n timed allocations, then the
    // frees and the release (untimed). Returns (timed ns, whole cycle ns).
    func cycle(_ n: Int) throws(BenchError) -> (UInt64, UInt64) {
        let start = cshim_now_ns()
        let a = try attempt(series, bytes, "PageAllocator(arena \(formatBytes(n * block)))") {
            () throws(Errno) -> PageAllocator in
            try PageAllocator(
                .init(
                    arenaBytes: n * block, pageSize: BenchConfiguration.allocatorPageSize,
                    maxOrder: BenchConfiguration.maxOrder(forSize: bytes), backing: .mmap))
        }
        let ns = try attempt(series, bytes, "allocateExact(.zeroed)") { () throws(Errno) -> UInt64 in
            try timeFreshAllocations(a, bytes: bytes, count: n, into: runs)
        }
        knownZeroMisses += a.statistics().bytesZeroed
        try attempt(series, bytes, "free") { () throws(Errno) in
            for i in 0..<n { try a.free(runs[i]) }
        }
        return (ns, cshim_now_ns() &- start)
    }

    var n = min(maxN, 8)
    var (ns, whole) = try cycle(n)
    while ns < plan.targetBatchNs && n < maxN {
        n = min(maxN, plan.nextBatch(after: n, took: ns))
        (ns, whole) = try cycle(n)
    }
    let warmStart = cshim_now_ns()
    var warmed = 0
    while warmed < plan.warmupBatches || cshim_now_ns() &- warmStart < plan.warmupNs {
        (ns, whole) = try cycle(n)
        warmed += 1
    }
    let count = plan.samples(cycleNs: whole)
    var samples = [Double](repeating: 0, count: count)
    for i in 0..<count {
        let (t, _) = try cycle(n)
        samples[i] = Double(t) / Double(n)
    }
    if knownZeroMisses != 0 {
        progress(
            "bench: warning: \(series) \(formatBytes(bytes)): the allocator cleared \(knownZeroMisses) bytes "
                + "of fresh memory it should have known to be zero")
    }
    let r = BenchResult(name: series.rawValue, bytes: bytes, samples: samples, iterations: count * n)
    progress(progressLine(r, samples: count, batch: n) + " (\(formatBytes(n * block)) arenas)")
    return r
}

// MARK: - order-0 pairs

private func measureOrder0(
    perCPU: Bool, _ series: BenchSeries, _ plan: SamplingPlan, _ progress: (String) -> Void
) throws(BenchError) -> BenchResult {
    let bytes = BenchSeries.pairBytes
    // Per-CPU: the default allocator (64 MiB, order 10). Worst case: one order-10 block, so
    // every order-0 allocation splits 10 times and every free merges 10 times.
    let configuration: PageAllocator.Configuration =
        perCPU
        ? .init()
        : .init(arenaBytes: 4 << 20, pageSize: 4096, maxOrder: 10, backing: .mmap, perCPULists: false)
    let a = try attempt(series, bytes, "PageAllocator") { () throws(Errno) -> PageAllocator in
        try PageAllocator(configuration)
    }
    // A block ready: the first pair fills the thread's per-CPU list.
    try attempt(series, bytes, "allocate(order: 0) + free") { () throws(Errno) in
        let r = try a.allocate(order: Order(0), .uninitialized)
        try a.free(r)
    }
    let before = a.statistics()
    var op = Order0PairOperation(allocator: a)
    let r = try run(&op, series, bytes, "allocate(order: 0, .uninitialized) + free", plan, progress)
    let after = a.statistics()
    if !perCPU {
        let allocs = after.allocations - before.allocations
        let splits = after.splits - before.splits
        let merges = after.merges - before.merges
        if allocs > 0 && (splits != 10 * allocs || merges != 10 * allocs) {
            progress(
                "bench: warning: \(series): expected 10 splits and 10 merges per pair, saw "
                    + "\(Double(splits) / Double(allocs)) and \(Double(merges) / Double(allocs))")
        }
    }
    return r
}
