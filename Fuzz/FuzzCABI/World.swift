// SPDX-License-Identifier: Apache-2.0
//
// The harness's view of one fuzzed system: its processes, the address spaces and descriptor
// tables they share (vfork shares both), what each was handed (mappings, malloc blocks, page
// runs), and the checks run after every step and at the end.
import CNommu
import FuzzSupport
import NommuBase
import NommuCABI
import NommuMM
import PageAllocator
#if canImport(Glibc)
    import Glibc
#endif

/// What a mapping the harness made maps.
enum Kind: Equatable {
    /// Anonymous memory (or `/dev/zero`'s private copy): the process's own, nobody else's.
    case anonymous
    /// A file or device.
    case file
    /// A SysV attach of segment `id`.
    case shm(CInt)
}

/// One mapping the harness made: [start, end) with end page-rounded, as the model maps it.
struct Record {
    var start: UInt
    var end: UInt
    var prot: CInt
    var kind: Kind
    /// Anonymous memory: the bytes at start and end - 1, which nothing but the harness changes.
    var cookies: (first: UInt8, last: UInt8) = (0, 0)

    var readable: Bool { prot & PROT_READ != 0 }
    var writable: Bool { prot & PROT_WRITE != 0 }
}

/// What a descriptor is (pipes are never read or written: a read or write could block).
enum Descriptor {
    case file(String)
    case pipe
    case socket
}

/// An address space: a process and its vfork relatives.
final class Group {
    var records: [Record] = []
    /// Dumpable: no process of it has changed its uid (then only root reads its maps).
    var dumpable = true
}

/// A malloc block: every byte of it holds `fill`, except where `touch` wrote its interior.
struct Block {
    var pointer: UnsafeMutableRawPointer
    var size: Int
    var fill: UInt8
}

/// A live process.
final class Proc {
    let handle: OpaquePointer
    let process: Process
    let pid: CInt
    let group: Group
    var blocks: [Block] = []
    /// Its descriptors (a vfork child starts with a copy of its parent's).
    var fds: [CInt: Descriptor] = [:]

    init(handle: OpaquePointer, pid: CInt, group: Group) {
        self.handle = handle
        process = nommuProcessForTesting(handle)!
        self.pid = pid
        self.group = group
    }
}

final class World {
    static let maxSteps = 2048
    static let maxProcesses = 8
    /// `FUZZ_CABI_TRACE=1`: one line per step on standard output, for triage.
    static let tracing = getenv("FUZZ_CABI_TRACE") != nil
    /// `FUZZ_CABI_THREADS=n` (2 to 4): n lanes on n threads share one system (threaded mode).
    static let lanes: Int =
        getenv("FUZZ_CABI_THREADS").flatMap { Int(String(cString: $0)) }.map { min(max($0, 1), 4) } ?? 1

    let handle: OpaquePointer
    let system: System
    let page: UInt
    let totalPages: Int
    let arenaBase: UInt
    let allowUninitialized: Bool
    var procs: [Proc] = []
    var exited: [CInt] = []
    /// SysV segments seen, by id: whether still fresh (zeroed at shmget, never written).
    var segments: [CInt: Bool] = [:]
    /// Runs from nommu_alloc_pages (order) and nommu_alloc_pages_exact (bytes).
    var runs: [(pointer: UnsafeMutableRawPointer, order: CUnsignedInt?, bytes: Int)] = []
    var step = 0
    /// Where reads of mapped memory go, so they are not optimised away.
    var sink: UInt64 = 0
    /// Threaded mode (`FUZZ_CABI_THREADS`): this world is one lane of several that share
    /// the system, each on a thread of its own with processes of its own. Checks that read
    /// system-wide state another lane may change at the same moment (nr_trim_pages read
    /// back, /proc/maps against the region count, a SysV segment still fresh, the stats
    /// against a second reading) are left to the single-threaded mode.
    let lane: Int
    let shared: Bool

    /// Makes the system the first input bytes describe, its /rom files and one process;
    /// nil when the system cannot be made.
    init?(_ input: inout FuzzInput) {
        var c = nommu_config()
        nommu_config_init(&c)
        let pageSize = input.chance(8) ? 16384 : 4096
        c.page_size = pageSize
        c.arena_bytes = (256 + input.word() % 769) * pageSize
        c.max_order = CUnsignedInt(input.byte() % 11)
        let uninitialized = input.byte()
        c.allow_uninitialized = CInt(uninitialized & 1)
        c.nr_trim_pages = CInt(input.byte() % 4)
        let source = input.byte()
        c.arena_source = CInt(source & 1)
        c.flash_bytes = pageSize * (1 + Int(input.byte() % 8))
        c.ramdisk_bytes = pageSize * Int(input.byte() % 5)
        c.framebuffer_bytes = pageSize * Int(input.byte() % 5)
        // One time in eight (by bits the bytes above leave unused, so every other input
        // reads as before), first a system whose one config field is an edge value: made
        // and let go, or refused with an errno.
        if source & 0b1110 == 0b1110 {
            World.extremeConfig(field: Int(source >> 4), FuzzInput.extremes[Int(uninitialized >> 1) % 16])
        }
        guard let h = nommu_system_create(&c) else { return nil }
        handle = h
        system = nommuSystemForTesting(h)!
        page = UInt(pageSize)
        let st = system.allocator.statistics()
        totalPages = st.totalPages
        arenaBase = UInt(bitPattern: system.allocator.address(of: PageFrameNumber(0)))
        allowUninitialized = c.allow_uninitialized != 0
        // /rom: a small file, one a few pages long and ragged, an empty one (ENOSPC is fine).
        let sizes = [1 + Int(input.byte()), pageSize * Int(1 + input.byte() % 3) + Int(input.byte()), 0]
        for (name, size) in zip(["/rom/a", "/rom/b", "/rom/c"], sizes) {
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
            _ = bytes.withUnsafeBytes { nommu_romfs_add(h, name, $0.baseAddress, $0.count) }
        }
        guard let first = nommu_process_create(h) else { preconditionFailure("no first process: errno \(errno)") }
        procs.append(Proc(handle: first, pid: nommu_getpid(first), group: Group()))
        lane = 0
        shared = World.lanes > 1
    }

    /// `nommu_system_create` with `nommu_config`'s field number `field` (of 11) set to `v`.
    static func extremeConfig(field: Int, _ v: UInt64) {
        var e = nommu_config()
        nommu_config_init(&e)
        let size = Int(truncatingIfNeeded: v)
        let int = CInt(truncatingIfNeeded: v)
        switch field % 11 {
        case 0: e.arena_bytes = size
        case 1: e.page_size = size
        case 2: e.max_order = CUnsignedInt(truncatingIfNeeded: v)
        case 3: e.nr_trim_pages = int
        case 4: e.arena_source = int
        case 5: e.huge_pages = int
        case 6: e.flash_bytes = size
        case 7: e.ramdisk_bytes = size
        case 8: e.framebuffer_bytes = size
        case 9: e.allow_uninitialized = int
        default: e.size = size
        }
        errno = 0
        if let made = nommu_system_create(&e) {
            nommu_system_destroy(made)
        } else if errno == 0 {
            preconditionFailure("nommu_system_create with config field \(field % 11) = \(v) failed without errno")
        }
    }

    /// Another lane on `base`'s system, with a first process of its own.
    init(lane: Int, on base: World) {
        handle = base.handle
        system = base.system
        page = base.page
        totalPages = base.totalPages
        arenaBase = base.arenaBase
        allowUninitialized = base.allowUninitialized
        self.lane = lane
        shared = true
        guard let first = nommu_process_create(handle) else { preconditionFailure("no first process: errno \(errno)") }
        procs.append(Proc(handle: first, pid: nommu_getpid(first), group: Group()))
    }

    func fail(_ message: String) -> Never {
        preconditionFailure(shared ? "lane \(lane) step \(step): \(message)" : "step \(step): \(message)")
    }

    /// The page-rounded length (0 when it wraps).
    func rounded(_ length: UInt) -> UInt {
        let (sum, wrapped) = length.addingReportingOverflow(page - 1)
        return wrapped ? 0 : sum & ~(page - 1)
    }

    /// The live address spaces, each with one of its processes.
    var groups: [(group: Group, member: Proc)] {
        var out: [(Group, Proc)] = []
        for p in procs where !out.contains(where: { $0.0 === p.group }) { out.append((p.group, p)) }
        return out
    }

    // MARK: Memory the harness reads and writes

    func load(_ address: UInt) -> UInt8 { UnsafePointer<UInt8>(bitPattern: address)!.pointee }

    /// Checks that [start, start + length) reads zero: its first and last 64 bytes and a
    /// few samples in between.
    func expectZero(_ start: UInt, _ length: UInt, _ what: String) {
        guard length > 0 else { return }
        let p = UnsafePointer<UInt8>(bitPattern: start)!
        let n = Int(length)
        var offsets = Array(0..<min(n, 64)) + Array(max(0, n - 64)..<n)
        offsets += [n / 2, n / 3, n / 7 * 5, Int(UInt(step) &* 2_654_435_761 % UInt(n))]
        for i in offsets where p[i] != 0 {
            fail("\(what) at \(hex(start)) (\(n) bytes) reads \(p[i]) at offset \(i), not zero")
        }
    }

    /// Notes the bytes at a record's ends as its cookies (anonymous memory only).
    func refreshed(_ r: Record) -> Record {
        guard r.kind == .anonymous, r.end > r.start else { return r }
        var r = r
        r.cookies = (load(r.start), load(r.end - 1))
        return r
    }

    // MARK: Checks

    /// After every step: the model's invariants; every mapping the harness made is still
    /// inside a mapping of its address space; anonymous memory and malloc blocks keep their
    /// bytes; anonymous memory, malloc blocks and page runs overlap nothing else.
    func check() {
        if let v = system.invariantViolation() { fail(v) }
        checkOverlaps(checkedRanges())
    }

    /// What this world was handed, each range checked (still mapped; anonymous ends and
    /// malloc fills as written), with whether it is exclusive (anonymous memory, malloc
    /// blocks and page runs overlap nothing else).
    func checkedRanges() -> [(start: UInt, end: UInt, exclusive: Bool)] {
        var ranges: [(start: UInt, end: UInt, exclusive: Bool)] = []
        for (g, member) in groups {
            let maps = member.process.mappings.map { ($0.start.rawValue, $0.end.rawValue) }
            for r in g.records {
                guard maps.contains(where: { $0.0 <= r.start && r.end <= $0.1 }) else {
                    fail("pid \(member.pid): \(describe(r)) is no longer mapped (mappings \(maps.map(describe)))")
                }
                if r.kind == .anonymous && (load(r.start) != r.cookies.first || load(r.end - 1) != r.cookies.last) {
                    fail(
                        "pid \(member.pid): anonymous \(describe(r)) changed under it: ends read "
                            + "\(load(r.start)), \(load(r.end - 1)), wrote \(r.cookies)")
                }
                ranges.append((r.start, r.end, r.kind == .anonymous))
            }
        }
        for p in procs {
            for b in p.blocks where b.size > 0 {
                let start = UInt(bitPattern: b.pointer)
                if load(start) != b.fill || load(start + UInt(b.size) - 1) != b.fill {
                    fail("pid \(p.pid): malloc block \(hex(start)) (\(b.size) bytes) lost its fill \(b.fill)")
                }
                ranges.append((start, start + UInt(b.size), true))
            }
        }
        for r in runs {
            let start = UInt(bitPattern: r.pointer)
            ranges.append((start, start + rounded(UInt(r.bytes)), true))
        }
        return ranges
    }

    /// No exclusive range overlaps any other.
    func checkOverlaps(_ ranges: [(start: UInt, end: UInt, exclusive: Bool)]) {
        var ranges = ranges
        // Sorted by start, a range overlaps an earlier one iff it starts below that one's end.
        ranges.sort { $0.start < $1.start }
        var maxEnd: (end: UInt, at: Int) = (0, -1)
        var maxExclusiveEnd: (end: UInt, at: Int) = (0, -1)
        for (i, r) in ranges.enumerated() {
            if r.exclusive && r.start < maxEnd.end { fail(overlap(ranges[i], ranges[maxEnd.at])) }
            if r.start < maxExclusiveEnd.end { fail(overlap(ranges[i], ranges[maxExclusiveEnd.at])) }
            if r.end > maxEnd.end { maxEnd = (r.end, i) }
            if r.exclusive && r.end > maxExclusiveEnd.end { maxExclusiveEnd = (r.end, i) }
        }
    }

    /// At the end: every process exits, every page run goes back, the filesystems are torn
    /// down; then no region, no mmap page, and every page back on the free lists.
    /// Frees a page run with the call that matches how it was taken.
    func freeRun(_ r: (pointer: UnsafeMutableRawPointer, order: CUnsignedInt?, bytes: Int)) -> CInt {
        if let order = r.order { return nommu_free_pages(handle, r.pointer, order) }
        return nommu_free_pages_exact(handle, r.pointer, r.bytes)
    }

    func finish() {
        finishLane()
        finishSystem()
    }

    /// This world's processes exit and its page runs go back.
    func finishLane() {
        for p in procs { nommu_process_exit(p.handle) }
        procs = []
        for r in runs where freeRun(r) != 0 { fail("freeing page run \(r) at the end: errno \(errno)") }
        runs = []
    }

    /// Once every lane has finished: nothing is left, and the system goes.
    func finishSystem() {
        if !system.pids.isEmpty { fail("processes left after every exit: \(system.pids)") }
        do { try system.tearDownFilesystems() } catch { fail("tearing the filesystems down: \(error)") }
        if system.regionCount != 0 { fail("\(system.regionCount) regions left") }
        if system.mmapPagesAllocated != 0 { fail("mmap_pages_allocated \(system.mmapPagesAllocated) at the end") }
        if let v = system.invariantViolation() { fail("at the end: \(v)") }
        system.allocator.drainLocalPerCPULists()
        let st = system.allocator.statistics()
        if st.allocatedPages != 0 || st.perCPUPages != 0 || st.slackPages != 0 || st.freePages != st.totalPages {
            fail(
                "pages not back: \(st.allocatedPages) allocated, \(st.perCPUPages) per-CPU, \(st.slackPages) slack, "
                    + "\(st.freePages) of \(st.totalPages) free")
        }
        nommu_system_destroy(handle)
    }

    // MARK: Messages

    func hex(_ v: UInt) -> String { "0x" + String(v, radix: 16) }

    func describe(_ r: Record) -> String { "\(r.kind) \(hex(r.start))-\(hex(r.end)) prot \(r.prot)" }

    func describe(_ m: (UInt, UInt)) -> String { "\(hex(m.0))-\(hex(m.1))" }

    func overlap(_ a: (start: UInt, end: UInt, exclusive: Bool), _ b: (start: UInt, end: UInt, exclusive: Bool))
        -> String
    {
        "\(hex(a.start))-\(hex(a.end)) (exclusive: \(a.exclusive)) overlaps "
            + "\(hex(b.start))-\(hex(b.end)) (exclusive: \(b.exclusive))"
    }
}
