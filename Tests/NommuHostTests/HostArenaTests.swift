// SPDX-License-Identifier: Apache-2.0
import NommuHost
import NommuBase
import Testing

@Suite("Host arena")
struct HostArenaTests {
    @Test func hostPageSizeIsAPowerOfTwo() {
        let p = HostArena.hostPageSize
        #expect(p >= 4096 && p & (p - 1) == 0)
    }

    @Test("mmap memory is known zero, writable, aligned", arguments: [false, true])
    func mmapArena(hugePages: Bool) throws {
        let arena = try HostArena(byteCount: 4 << 20, alignment: 2 << 20, backing: .mmap, hugePages: hugePages)
        let isZero = arena.isFreshMemoryZero
        let count = arena.byteCount
        let base = arena.baseAddress
        let huge = arena.usesHugePages
        #expect(isZero)
        #expect(count == 4 << 20)
        #expect(UInt(bitPattern: base) % (2 << 20) == 0)
        let b = arena.bytes
        #expect(b.allSatisfy { $0 == 0 })
        b[0] = 1
        b[b.count - 1] = 2
        #expect(b[0] == 1 && b[b.count - 1] == 2)
        if !hugePages { #expect(!huge) }
    }

    @Test func posixMemalignIsNotKnownZero() throws {
        let arena = try HostArena(byteCount: 1 << 20, alignment: 65536, backing: .posixMemalign)
        let isZero = arena.isFreshMemoryZero
        let base = arena.baseAddress
        #expect(!isZero)
        #expect(UInt(bitPattern: base) % 65536 == 0)
        let b = arena.bytes
        b[123] = 7
        #expect(b[123] == 7)
    }

    @Test(
        "bad sizes and alignments are EINVAL",
        arguments: [(0, 4096), (-4096, 4096), (4097, 4096), (4096, 3000), (4096, 2048), (4096, 12288)])
    func badArguments(_ bytes: Int, _ alignment: Int) {
        #expect(throws: Errno.invalidArgument) { _ = try HostArena(byteCount: bytes, alignment: alignment) }
    }

    @Test("a refused arena is a clear ENOMEM", arguments: HostArena.Backing.allCases)
    func hostRefuses(_ backing: HostArena.Backing) {
        // 2^62 bytes: no host grants that; the errno comes back as a value, nothing leaks.
        #expect(throws: Errno.noMemory) { _ = try HostArena(byteCount: 1 << 62, backing: backing) }
    }

    @Test func manyArenasComeAndGo() throws {
        for _ in 0..<200 {
            let a = try HostArena(byteCount: 1 << 20)
            a.bytes[0] = 1
        }
    }
}
