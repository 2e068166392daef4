// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing

@Suite("The C ABI's hot paths in the Swift runtime")
struct ARCTests {
    /// nommu-abi-arc counts swift_retain / swift_release / malloc calls made during warm hot
    /// paths of the C ABI (it defines those symbols itself and forwards them). A release build
    /// (CI runs this with NOMMU_BIN_DIR at .build/release) must make none; a debug build
    /// retains everywhere, so there only the run itself is checked.
    @Test("malloc, free, alloc_pages, free_pages, alloc_pages_exact, mmap, munmap: no retain, release or malloc")
    func noRuntimeCalls() throws {
        guard !Bin.sanitized else { return }
        let o = try execute([Bin.directory + "/nommu-abi-arc"], timeout: 120)
        #expect(o.status == 0, "\(o)")
        let lines = o.stdout.split(separator: "\n")
        #expect(lines.count == 5, "\(o)")
        guard Bin.directory.contains("/release") else { return }
        for line in lines {
            #expect(line.hasSuffix(" retains=0 releases=0 mallocs=0"), "\(line)")
        }
    }
}
