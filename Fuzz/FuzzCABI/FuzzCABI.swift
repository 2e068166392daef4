// SPDX-License-Identifier: Apache-2.0
//
// libFuzzer target (d): programs of C-ABI calls (nommu.h) across several processes of one
// small system. The first bytes choose the system (arena and page size, max order,
// allow_uninitialized, nr_trim_pages, arena source, flash / ramdisk / frame-buffer sizes,
// the /rom files); then each step is an operation byte, a process byte and the operation's
// arguments: mmap / mmap2 / munmap / mremap, files on every mount and device, SysV and POSIX
// shared memory, /proc reads and sysctl writes, futex wakes and bounded waits, brk, the
// malloc family (bogus frees included), the page allocator's entry points, process create /
// vfork / exit, and reads and writes of mapped memory.
//
// After every step (`World.check`): the model's invariants, and the harness's own view of
// what it was handed — every mapping is still a mapping of its address space, anonymous
// memory, malloc blocks and page runs overlap nothing else and keep the bytes last written
// to them, fresh anonymous memory reads zero. At the end every process exits, the
// filesystems are torn down and every page must be back. A broken check traps with the
// step number, which libFuzzer reports with the input.
//
// `FUZZ_CABI_THREADS=n` (2 to 4) runs the input as n lanes on n threads sharing the system
// (`Lanes` below): checks between rounds, with every thread stopped.
//
// The harness never blocks (pipes are never read or written; futex waits always carry a
// timeout of under a microsecond) and touches memory only inside what the model handed out.
// It never unmaps or remaps a range that holds a mapping it did not make itself (a
// process's malloc areas), as a C program that did would corrupt its own heap.
//
// Built with `swift build --sanitize=fuzzer --sanitize=address -Xswiftc -DFUZZING
// --product fuzz-cabi`, libFuzzer supplies `main`; an ordinary build gets the corpus-replay
// `main` below (arguments: files or directories of inputs).
import CNommu
import FuzzSupport
import NommuCABI
import NommuMM
#if canImport(Glibc)
    import Glibc
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCABI(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    var input = FuzzInput(bytes: UnsafeBufferPointer(start: data, count: size))
    guard let world = World(&input) else { return 0 }
    if World.lanes > 1 {
        Lanes(world, input).run()
        return 0
    }
    while !input.exhausted && world.step < World.maxSteps {
        world.step += 1
        world.perform(&input)
        world.check()
    }
    world.finish()
    return 0
}

/// Threaded mode (`FUZZ_CABI_THREADS=n`): the input left after the system's bytes is cut
/// into n parts, one a lane; each lane is a world of its own (its processes, what they were
/// handed) on the one system, and runs on a thread of its own. The lanes go in rounds of up
/// to `roundSteps` steps each, checking their own ranges after every step; between rounds,
/// with every thread stopped, come the model's invariants and the overlap check over every
/// lane's ranges together (a process never sees another's private memory). At the end every
/// lane's processes exit and runs go back, and the whole system must be back.
final class Lanes: @unchecked Sendable {
    static let roundSteps = 8

    /// One lane: touched only by its thread while a round runs, by the main thread between.
    final class Lane {
        let world: World
        var input: FuzzInput
        /// Set once the lanes are made (what the lane's thread is started with).
        weak var lanes: Lanes?
        init(_ world: World, _ input: FuzzInput) {
            self.world = world
            self.input = input
        }
    }

    let lanes: [Lane]
    let start = UnsafeMutablePointer<pthread_barrier_t>.allocate(capacity: 1)
    let done = UnsafeMutablePointer<pthread_barrier_t>.allocate(capacity: 1)
    /// Set by the main thread before the start barrier; read by the lanes after it.
    var stop = false

    init(_ first: World, _ input: FuzzInput) {
        let n = World.lanes
        let rest = UnsafeBufferPointer(rebasing: input.bytes[min(input.at, input.bytes.count)...])
        let part = (rest.count + n - 1) / n
        lanes = (0..<n).map { i in
            let world = i == 0 ? first : World(lane: i, on: first)
            let slice = rest[min(i * part, rest.count)..<min((i + 1) * part, rest.count)]
            return Lane(world, FuzzInput(bytes: UnsafeBufferPointer(rebasing: slice)))
        }
        pthread_barrier_init(start, nil, UInt32(n + 1))
        pthread_barrier_init(done, nil, UInt32(n + 1))
        for lane in lanes { lane.lanes = self }
    }

    deinit {
        pthread_barrier_destroy(start)
        pthread_barrier_destroy(done)
        start.deallocate()
        done.deallocate()
    }

    /// A lane's thread: rounds until told to stop.
    func runLane(_ lane: Lane) {
        while true {
            pthread_barrier_wait(start)
            if stop { return }
            let w = lane.world
            for _ in 0..<Lanes.roundSteps where !lane.input.exhausted && w.step < World.maxSteps {
                w.step += 1
                w.perform(&lane.input)
                _ = w.checkedRanges()
            }
            pthread_barrier_wait(done)
        }
    }

    func run() {
        var threads: [pthread_t] = []
        for lane in lanes {
            let context = Unmanaged.passRetained(lane).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(
                &thread, nil,
                { raw in
                    let lane = Unmanaged<Lane>.fromOpaque(raw!).takeRetainedValue()
                    lane.lanes!.runLane(lane)
                    return nil
                }, context)
            precondition(rc == 0, "pthread_create: \(rc)")
            threads.append(thread)
        }
        let first = lanes[0].world
        while true {
            stop = lanes.allSatisfy { $0.input.exhausted || $0.world.step >= World.maxSteps }
            pthread_barrier_wait(start)
            if stop { break }
            pthread_barrier_wait(done)
            if let v = first.system.invariantViolation() { first.fail("between rounds: \(v)") }
            first.checkOverlaps(lanes.flatMap { $0.world.checkedRanges() })
        }
        for t in threads { pthread_join(t, nil) }
        for lane in lanes { lane.world.finishLane() }
        first.finishSystem()
    }
}

extension World {
    /// One step: an operation byte, a process byte, then the operation's own bytes.
    func perform(_ input: inout FuzzInput) {
        let op = input.byte() % 32
        let p = procs[Int(input.byte()) % procs.count]
        defer { if World.tracing { trace(op, p, input.at) } }
        switch op {
        case 0...4: mmapAnonymous(p, &input)
        case 5, 6: mmapFile(p, &input)
        case 7, 8: munmap(p, &input)
        case 9, 10: mremap(p, &input)
        case 11, 12: open(p, &input)
        case 13: close(p, &input)
        case 14: write(p, &input)
        case 15: read(p, &input)
        case 16: ftruncate(p, &input)
        case 17: unlinkPipeSocket(p, &input)
        case 18: sysv(p, &input)
        case 19: posixShm(p, &input)
        case 20: procRead(p, &input)
        case 21: sysctl(p, &input)
        case 22: futex(p, &input)
        case 23, 24: mallocCall(p, &input)
        case 25: badFree(p, &input)
        case 26: lifeCycle(p, &input)
        case 27, 28: touch(p, &input)
        case 29: flashOrRomfs(&input)
        case 30: pages(&input)
        default: misc(p, &input)
        }
    }
}

extension World {
    /// One line for the step, then the acting process's mappings (`FUZZ_CABI_TRACE`).
    func trace(_ op: UInt8, _ p: Proc, _ at: Int) {
        print(
            "step \(step): op \(op), pid \(p.pid), input at \(at), errno \(errno), records \(groups.map { $0.group.records.count })"
        )
        for m in p.process.mappings {
            print(
                "    \(hex(m.start.rawValue))-\(hex(m.end.rawValue)) region \(hex(m.regionStart.rawValue))-"
                    + "\(hex(m.regionTop.rawValue)) usage \(m.regionUsage) \(m.path ?? (m.ownsPages ? "anonymous" : "?"))"
            )
        }
        fflush(nil)
    }
}

#if !FUZZING
    @main
    struct ReplayCorpus {
        static func main() { replayCorpus(CommandLine.arguments.dropFirst(), fuzzCABI) }
    }
#endif
