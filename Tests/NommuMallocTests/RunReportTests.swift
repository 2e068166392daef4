// SPDX-License-Identifier: Apache-2.0
import Foundation
import NommuBase
import NommuMM
import NommuMalloc
import Testing

@Suite("Run reports: the first failure, JSON, text, the process tree")
struct RunReportTests {
    @Test("the first ENOMEM is kept: its call, the size asked for, the mmap asked for, the largest free block")
    func firstFailure() throws {
        for policy in Malloc.Policy.allCases {
            let system = try System(.init(arenaBytes: 256 << 10))
            let m = try Malloc(process: system.createProcess(), .init(policy: policy))
            nonisolated(unsafe) var hooked = 0
            m.onFirstFailure = { hooked += 1 }
            _ = try m.malloc(100)
            #expect(m.statistics.firstFailure == nil)
            #expect(throws: Errno.noMemory) { try m.malloc(300 << 10) }
            #expect(throws: Errno.noMemory) { try m.malloc(200 << 10) }
            let f = try #require(m.statistics.firstFailure)
            #expect(f.call == 2 && f.size == 300 << 10, "\(policy): \(f)")
            #expect(f.mmapBytes >= 300 << 10 && f.mmapBytes < 301 << 10, "\(policy): the block's own mapping")
            #expect(f.largestFreeBlockBytes > 0 && f.largestFreeBlockBytes < f.mmapBytes)
            #expect(m.statistics.failures == 2)
            #expect(hooked == 1, "the hook runs at the first failure only")
            m.restartCallCounts()
            #expect(m.statistics.firstFailure == nil && m.statistics.calls == 0 && m.statistics.liveBlocks == 1)
        }
    }

    func sample(pid: Int, failing: Bool, sites: [(String, UInt64, Int)]) -> RunReport {
        let frame = { (module: String, offset: UInt64) in
            RunReport.Frame(
                address: 0x5555_0000_0000 + offset, module: module, offset: offset, symbol: "f\"\\",
                symbolOffset: 4, location: offset == 0x10 ? "main (t.c:3)" : nil)
        }
        return RunReport(
            program: "prog\n", command: "prog -x \"y\"", pid: pid, ppid: 1, forkedFrom: pid == 2 ? 1 : nil,
            end: "signal 11", startedNs: 1_000 * UInt64(pid), policy: "heap", arenaBytes: 4 << 20, pageSize: 4096,
            events: 100 * pid, wallMs: 1.5, modelMs: 0.25, peakLiveBytes: 10_000, peakPagesHeld: 4, slackPages: 1,
            trimmedPages: 2, mmapCopyPeakPages: 4, largestFreeBlockBytes: 1 << 20, buddyinfo: "Node 0, zone Normal 1",
            mmaps: 3, munmaps: 1, failures: failing ? 2 : 0, invalidFrees: 0, liveBlocks: 5, liveBytes: 500,
            hostMallocBytes: 1 << 20,
            firstFailure: failing
                ? .init(
                    event: 7, size: 1 << 21, mmapBytes: (1 << 21) + 32, largestFreeBlockBytes: 1 << 20,
                    stack: [frame("/bin/prog", 0x10), frame("/lib/libc.so.6", 0x2724a)]) : nil,
            sites: sites.map { .init(frame: frame($0.0, $0.1), calls: 3, bytes: $0.2, peakBytes: $0.2, liveBytes: 0) })
    }

    @Test("json() decodes back to the same report (escapes, nulls, stacks, sites)")
    func jsonRoundTrip() throws {
        for r in [
            sample(pid: 1, failing: true, sites: [("/bin/prog", 0x10, 4096), ("/lib/libc.so.6", 0x99, 64)]),
            sample(pid: 2, failing: false, sites: []),
        ] {
            let back = try JSONDecoder().decode(RunReport.self, from: Data(r.json().utf8))
            #expect(back == r)
            #expect(!r.json().contains("\n"), "one line")
        }
    }

    @Test("text: the failure's stack and the sites, a total row and merged sites on request")
    func text() {
        let a = sample(pid: 1, failing: true, sites: [("/bin/prog", 0x10, 4096)])
        let b = sample(pid: 2, failing: false, sites: [("/bin/prog", 0x10, 1000), ("/bin/prog", 0x20, 8192)])
        let one = RunReport.text([a])
        #expect(one.contains("did not fit: call 7 asked for 2097152 bytes; the malloc asked mmap for 2097184 bytes"))
        #expect(one.contains("#0 main (t.c:3) [prog+0x10]"))
        #expect(one.contains("#1 f\"\\+0x4 [libc.so.6+0x2724a]"))
        #expect(!one.contains("total"))
        let both = RunReport.text([a, b], total: true)
        #expect(both.contains("total (2 processes)"))
        #expect(both.contains("forked from pid 1"))
        let merged = RunReport.combined([a, b])
        #expect(merged.events == 300 && merged.peakPagesHeld == 8 && merged.firstFailure?.event == 7)
        #expect(merged.sites.map(\.peakBytes) == [8192, 5096], "sites merged by object and offset, most first")
    }
}
