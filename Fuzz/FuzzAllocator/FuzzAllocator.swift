// SPDX-License-Identifier: Apache-2.0
//
// libFuzzer target (a): sequences of page-allocator calls. Each input byte string is a
// program: an operation byte, then its arguments, read from the bytes that follow. After
// every operation the allocator's invariants must hold; at the end every run is freed and
// every page must be back. A broken invariant traps, which libFuzzer reports with the input.
//
// Built with `swift build --sanitize=fuzzer --sanitize=address -Xswiftc -DFUZZING
// --product fuzz-allocator`, libFuzzer supplies `main`; an ordinary build gets the
// corpus-replay `main` below (arguments: files or directories of inputs).
import FuzzSupport
import NommuBase
import PageAllocator

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAllocator(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    var input = FuzzInput(bytes: UnsafeBufferPointer(start: data, count: size))
    let pages = 16 + Int(input.byte() % 241)
    let maxOrder = Int(input.byte() % 7)
    let perCPU = input.byte() & 1 == 1
    guard let a = try? PageAllocator(.init(arenaBytes: pages * 4096, maxOrder: maxOrder, perCPULists: perCPU)) else {
        return 0
    }
    var runs: [PageRun] = []
    var steps = 0
    while !input.exhausted && steps < 4096 {
        steps += 1
        switch input.byte() % 8 {
        case 0, 1:
            if let r = try? a.allocate(
                order: Order(Int(input.byte() % 9)), input.byte() & 1 == 0 ? .zeroed : .uninitialized)
            {
                runs.append(r)
            }
        case 2:
            if let r = try? a.allocateExact(bytes: input.word() * 64 + 1, .zeroed) { runs.append(r) }
        case 3, 4:
            guard !runs.isEmpty else { continue }
            let r = runs.remove(at: input.word() % runs.count)
            do { try a.free(r) } catch { preconditionFailure("freeing a live run failed: \(error)") }
        case 5:
            guard !runs.isEmpty else { continue }
            let i = input.word() % runs.count
            let r = runs[i]
            let offset = input.word() % max(1, r.keptPages)
            let count = 1 + input.word() % max(1, r.keptPages - offset)
            if let (before, after) = try? a.releasePages(of: r, offset: offset, count: count) {
                runs.remove(at: i)
                if let before { runs.append(before) }
                if let after { runs.append(after) }
            }
        case 6:
            guard !runs.isEmpty else { continue }
            let i = input.word() % runs.count
            if let (lower, upper) = try? a.split(runs[i], at: 1 + input.word() % max(1, runs[i].keptPages)) {
                runs[i] = lower
                runs.append(upper)
            }
        default:
            // Bad input must be refused and change nothing: a free of a run that is gone.
            let stale = PageRun(
                start: PageFrameNumber(input.word() % pages), pages: 1, order: Order(0), keptPages: 1, isExact: false)
            if !runs.contains(where: { $0.start == stale.start }) { _ = try? a.free(stale) }
            _ = try? a.setNrTrimPages(Int(input.byte() % 4) - 1)
        }
        if let v = a.invariantViolation() { preconditionFailure("step \(steps): \(v)") }
    }
    for r in runs {
        do { try a.free(r) } catch { preconditionFailure("freeing a live run at the end failed: \(error)") }
    }
    a.drainLocalPerCPULists()
    let st = a.statistics()
    precondition(st.allocatedPages == 0 && st.freePages == st.totalPages, "pages lost: \(st.allocatedPages) out")
    return 0
}

#if !FUZZING
    @main
    struct ReplayCorpus {
        static func main() { replayCorpus(CommandLine.arguments.dropFirst(), fuzzAllocator) }
    }
#endif
