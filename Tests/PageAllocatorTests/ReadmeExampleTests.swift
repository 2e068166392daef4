// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuTestSupport
import PageAllocator
import Testing

/// The README's Swift example, kept compiling and true.
@Suite("README example")
struct ReadmeExampleTests {
    @Test func example() throws {
        // A 64 MiB arena of 4 KiB pages, maximum order 10 (4 MiB blocks), vm.nr_trim_pages = 1.
        let allocator = try PageAllocator(.init(arenaBytes: 64 << 20))

        // 5 pages, as no-MMU mmap asks: an order-3 block (8 pages) is taken and the
        // 3-page excess trimmed back at once. The 5 pages come back cleared.
        let run = try allocator.allocateExact(bytes: 5 * 4096)
        let bytes = allocator.bytes(of: run)
        bytes[0] = 42
        #expect(run.order == Order(3) && run.keptPages == 5 && run.slackPages == 0)

        // MAP_UNINITIALIZED: nothing is cleared.
        let scratch = try allocator.allocate(order: Order(0), .uninitialized)

        let stats = allocator.statistics()
        #expect(stats.pagesTrimmed == 3 && stats.allocatedPages == 6)
        #expect(stats.buddyInfo.hasPrefix("Node 0, zone   Normal "))

        try allocator.free(run)
        try allocator.free(scratch)
        do {
            try allocator.free(run)  // a double free
            Issue.record("the double free was taken")
        } catch {
            #expect(error == .invalidArgument && "\(error)" == "Invalid argument")
        }
        #expect(allPagesBackViolation(allocator) == nil)
    }
}
