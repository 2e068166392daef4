// SPDX-License-Identifier: Apache-2.0
import NommuMM
import NommuTestSupport
import Testing

@Suite("README example: the address space")
struct ReadmeModelExampleTests {
    @Test func example() throws {
        let system = try System(.init(arenaBytes: 64 << 20, allowUninitialized: true))
        let p = system.createProcess()
        let a = try p.mmap(length: 3 * 4096, protection: [.read, .write], flags: [.private, .anonymous])
        try p.munmap(address: a.rawValue + 4096, length: 4096)  // a middle cut: two mappings now
        let maps = try p.readFile("/proc/self/maps")
        #expect(maps.split(separator: "\n").count == 2)
        #expect(maps.hasSuffix(" rw-p 00000000 00:00 0 \n"))
        p.exit()
        #expect(everythingBackViolation(system, [p]) == nil)
    }
}
