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
    while !input.exhausted && world.step < World.maxSteps {
        world.step += 1
        world.perform(&input)
        world.check()
    }
    world.finish()
    return 0
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
