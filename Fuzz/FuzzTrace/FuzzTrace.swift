// SPDX-License-Identifier: Apache-2.0
//
// libFuzzer target (c): trace lines for the replay parser. Any input must parse or be
// refused with a line number, never trap; what parses is replayed (up to 2000 events) in
// a 2 MiB machine with both mallocs, and every page must be back afterwards.
import FuzzSupport
import NommuBase
import NommuMM
import NommuMalloc
import PageAllocator

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTrace(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let trace: Trace
    do throws(Trace.ParseError) {
        trace = try Trace.parse(name: "fuzz", bytes)
    } catch {
        precondition(error.line >= 1, "a parse error without a line")
        return 0
    }
    guard trace.count <= 2000 else { return 0 }
    for policy in Malloc.Policy.allCases {
        let options = ReplayOptions(policy: policy, arenaBytes: 2 << 20, maxOrder: 8, compareWithGlibc: false)
        guard let reports = try? Replay.run([trace], options) else { continue }
        precondition(reports.count == 1 && reports[0].events <= trace.count)
    }
    return 0
}

#if !FUZZING
    @main
    struct ReplayCorpus {
        static func main() { replayCorpus(CommandLine.arguments.dropFirst(), fuzzTrace) }
    }
#endif
