// SPDX-License-Identifier: Apache-2.0
import PageAllocator

extension System {
    #if NOMMU_INTERNAL_CHECKS
        /// A full walk costs O(regions + mappings): past 256 regions, one call in
        /// regions / 64 walks, so a test with 65530 mappings stays near O(n) overall.
        @inline(never)
        func _checkInvariants() {
            let size = state.withLock { $0.mm.regions.count }
            let n = checkCalls.withLock { c -> Int in
                c += 1
                return c
            }
            if size > 256 && n % (size / 64) != 0 { return }
            // Other threads may be between allocating a run and entering it in the model, so the
            // allocator cross-count is left to the quiescent checks.
            if let v = invariantViolation(quiescent: false) {
                preconditionFailure("address-space invariant broken: \(v)")
            }
        }
    #else
        @inline(__always)
        func _checkInvariants() {}
    #endif

    /// The first broken invariant, or nil: each part of the model's state checks its own
    /// (`TaskState`, `MemoryState`, `FileState`, `DeviceState`, `IPCState`), handing on what
    /// ties them together (the regions that map each inode); then the allocator's own. When
    /// `quiescent` (no call in flight on any thread), also: the pages the allocator has handed
    /// out are exactly the model's (an `mmap` allocates and clears its run before it takes the
    /// model lock to enter it).
    package func invariantViolation(quiescent: Bool = true) -> String? {
        let v: String? = state.withLock { s in
            if let v = s.tasks.invariantViolation(spaces: s.mm.spaces, tables: s.fs.tables) { return v }
            var regionsOf: [Int: Int] = [:]
            let address = { (run: PageRun) in UInt(bitPattern: self.allocator.address(of: run.start)) }
            if let v = s.mm.invariantViolation(
                page: pageSize, pageShift: pageShift, address: address, regionsOf: &regionsOf)
            {
                return v
            }
            return s.fs.invariantViolation(regionsOf: regionsOf) ?? s.devices.invariantViolation()
                ?? s.ipc.invariantViolation(inodes: s.fs.inodes)
        }
        if let v { return v }
        let expected =
            directPages
            + state.withLock { $0.mm.mmapPagesAllocated + $0.fs.pageCachePages + $0.devices.devicePages }
        if quiescent && allocator.statistics().allocatedPages != expected {
            return "allocator has \(allocator.statistics().allocatedPages) pages out, model \(expected)"
        }
        return allocator.invariantViolation()
    }
}
