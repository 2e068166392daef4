// SPDX-License-Identifier: Apache-2.0

/// What one `nommu bench` run measures and how long it samples.
public struct BenchConfiguration: Sendable, Hashable {
    /// The default sizes: 4 KiB, 16 KiB, … 64 MiB (powers of four).
    public static let defaultSizes: [Int] = [
        4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20,
    ]
    /// Sizes must be multiples of this (the allocator's page).
    public static let sizeGranule = 4096
    /// The largest size accepted.
    public static let maximumSize = 1 << 30
    /// Page size of every allocator the bench makes.
    public static let allocatorPageSize = 4096
    /// Maximum order of the sized series' allocators for sizes up to 4 MiB: the kernel's
    /// default (MAX_ORDER 10, 4 MiB blocks with 4 KiB pages). A larger size gets the
    /// smallest maximum order that holds it, as a board configured for it would.
    public static let defaultMaxOrder = 10
    /// Upper bound on the (virtual, never touched) arena of one `alloc_zeroed_fresh` sample.
    public static let freshArenaLimit = 2 << 30

    /// Sizes for the sized series, in bytes (ascending, distinct, multiples of 4096).
    public var sizes: [Int]
    /// The series asked for (baselines needed for ratios are added by `resolvedSeries`).
    public var series: [BenchSeries]
    /// A fast smoke run: few samples, small batches.
    public var quick: Bool

    /// A sample times a batch of operations lasting at least about this long.
    public var targetBatchNanoseconds: UInt64
    /// Upper bound on the operations in one batch.
    public var maximumBatch: Int
    /// Warm-up before sampling lasts at least this long (and at least `warmupBatches` batches).
    public var warmupNanoseconds: UInt64
    /// Batches run before sampling, at least.
    public var warmupBatches: Int
    /// Sampling time aimed at for one (series, size); the sample count follows from it.
    public var budgetNanoseconds: UInt64
    /// Fewest samples per (series, size).
    public var minimumSamples: Int
    /// Most samples per (series, size).
    public var maximumSamples: Int

    /// The program and library of the program series (nil: those series are left out).
    public var programs: ProgramSetup?

    public init(
        sizes: [Int] = BenchConfiguration.defaultSizes, series: [BenchSeries] = BenchSeries.allCases,
        quick: Bool = false, programs: ProgramSetup? = nil
    ) {
        self.sizes = Array(Set(sizes)).sorted()
        self.series = series
        self.quick = quick
        self.programs = programs
        if quick {
            targetBatchNanoseconds = 5_000
            maximumBatch = 64
            warmupNanoseconds = 0
            warmupBatches = 1
            budgetNanoseconds = 2_000_000
            minimumSamples = 3
            maximumSamples = 5
        } else {
            targetBatchNanoseconds = 1_000_000
            maximumBatch = 1 << 17
            warmupNanoseconds = 5_000_000
            warmupBatches = 2
            budgetNanoseconds = 1_000_000_000
            minimumSamples = 11
            maximumSamples = 101
        }
    }

    /// The series that will be measured, in output order: those asked for, plus `memset`
    /// when a sized series needs it for its ratio and `glibc_pair_4k` likewise for pairs (and
    /// `program_glibc` for programs). The program series need `programs`; without it they are
    /// left out.
    public var resolvedSeries: [BenchSeries] {
        var wanted = Set(series)
        var pending = series
        while let s = pending.popLast() {
            // Baselines of baselines too (cabi_malloc_pair_64_4t → cabi_malloc_pair_64 → glibc).
            if wanted.insert(s.baseline).inserted { pending.append(s.baseline) }
        }
        return BenchSeries.allCases.filter { wanted.contains($0) && (programs != nil || !$0.isProgram) }
    }

    /// The largest size, rounded up to a power of two (the block that holds it).
    public var largestBlock: Int { roundUpToPowerOfTwo(sizes.max() ?? Self.sizeGranule) }

    /// Maximum order of the allocator that measures `size`: the kernel's default (10), or
    /// the smallest order whose block holds the size.
    public static func maxOrder(forSize size: Int) -> Int {
        max(defaultMaxOrder, (roundUpToPowerOfTwo(size) / allocatorPageSize).trailingZeroBitCount)
    }

    /// Arena of the sized series' allocator with `maxOrder`: two blocks of that order.
    public static func arenaBytes(forMaxOrder maxOrder: Int) -> Int { 2 * (allocatorPageSize << maxOrder) }

    /// The largest maximum order any sized series' allocator of this run uses.
    public var sizedMaxOrder: Int { Self.maxOrder(forSize: largestBlock) }

    /// Arena of the largest sized series' allocator of this run.
    public var sizedArenaBytes: Int { Self.arenaBytes(forMaxOrder: sizedMaxOrder) }
}

/// The smallest power of two ≥ `n` (`n` ≥ 1).
@inline(__always)
func roundUpToPowerOfTwo(_ n: Int) -> Int {
    n <= 1 ? 1 : 1 << (Int.bitWidth - (n - 1).leadingZeroBitCount)
}

// MARK: - Parsing

/// Parses a size list such as `4K,1M,64M`: comma-separated entries, each decimal digits
/// with an optional suffix K, M or G (binary: ×1024, ×1024², ×1024³; `KiB`, `KB` and a
/// trailing `B` are accepted too, in any case). Plain numbers are bytes. Every size must
/// be a positive multiple of 4096 and at most 1 GiB. Returns them ascending, without repeats.
public func parseSizes(_ text: String) throws(BenchError) -> [Int] {
    let entries = text.split(separator: ",", omittingEmptySubsequences: false)
    guard !text.allSatisfy({ $0 == " " || $0 == "\t" }) else { throw .noSizes }
    var sizes: [Int] = []
    for entry in entries {
        sizes.append(try parseSize(String(entry)))
    }
    return Array(Set(sizes)).sorted()
}

/// Parses one size (see `parseSizes`).
public func parseSize(_ entry: String) throws(BenchError) -> Int {
    let trimmed = entry.trimmingBlanks()
    guard !trimmed.isEmpty else { throw .invalidSize(entry, reason: "empty entry") }
    var digits = Substring(trimmed)
    var unit = ""
    while let last = digits.last, !last.isASCII || !last.isNumber {
        unit.insert(last, at: unit.startIndex)
        digits.removeLast()
    }
    unit = unit.trimmingBlanks().uppercased()
    let multiplier: Int
    switch unit {
    case "", "B": multiplier = 1
    case "K", "KB", "KIB": multiplier = 1 << 10
    case "M", "MB", "MIB": multiplier = 1 << 20
    case "G", "GB", "GIB": multiplier = 1 << 30
    default: throw .invalidSize(entry, reason: "unknown unit '\(unit)' (use K, M, G or plain bytes)")
    }
    guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
        throw .invalidSize(entry, reason: "expected a number with an optional K, M or G suffix")
    }
    guard let value = Int(digits) else { throw .invalidSize(entry, reason: "number too large") }
    let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
    guard !overflow, bytes <= BenchConfiguration.maximumSize else {
        throw .invalidSize(entry, reason: "larger than \(formatBytes(BenchConfiguration.maximumSize))")
    }
    guard bytes > 0 else { throw .invalidSize(entry, reason: "must be positive") }
    guard bytes % BenchConfiguration.sizeGranule == 0 else {
        throw .invalidSize(entry, reason: "\(bytes) bytes is not a multiple of \(BenchConfiguration.sizeGranule)")
    }
    return bytes
}

/// Parses a series list such as `memset,order0_pair` (names as printed, comma-separated).
/// Returns them in output order, without repeats.
public func parseSeries(_ text: String) throws(BenchError) -> [BenchSeries] {
    var found = Set<BenchSeries>()
    for entry in text.split(separator: ",", omittingEmptySubsequences: true) {
        let name = String(entry).trimmingBlanks()
        if name.isEmpty { continue }
        guard let s = BenchSeries(rawValue: name) else { throw .unknownSeries(name) }
        found.insert(s)
    }
    guard !found.isEmpty else { throw .noSeries }
    return BenchSeries.allCases.filter { found.contains($0) }
}
