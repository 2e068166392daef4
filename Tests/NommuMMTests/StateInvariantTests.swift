// SPDX-License-Identifier: Apache-2.0
//
// Each part of the model's state checks its own invariants: break one field of each part
// on a live system and the walk names it; put it back and the walk is clean again.
import NommuBase
import Testing

@testable import NommuMM

@Suite("The model's state: each part checks its own invariants")
struct StateInvariantTests {
    /// A system with a process, an anonymous mapping, a tmpfs file and a SysV segment.
    func populated() throws -> (System, Process) {
        let sys = try makeSystem()
        let p = sys.createProcess()
        _ = try p.mmap(length: 8192, protection: [.read, .write], flags: [.private, .anonymous])
        let fd = try p.open("/tmp/f", [.readWrite, .create])
        _ = try p.write(fd, [1, 2, 3])
        _ = try p.shmget(key: 7, size: 4096, flags: SharedMemory.create | 0o600)
        #expect(sys.invariantViolation() == nil)
        return (sys, p)
    }

    /// Breaks the state with `breakIt`, expects a violation containing `words`, and undoes it.
    func expectCaught(
        _ words: String, _ breakIt: (inout ModelState) -> Void, undo: (inout ModelState) -> Void
    ) throws {
        let (sys, p) = try populated()
        sys.state.withLock { breakIt(&$0) }
        let v = sys.invariantViolation()
        #expect(v?.contains(words) == true, "got \(v ?? "nil")")
        sys.state.withLock { undo(&$0) }
        #expect(sys.invariantViolation() == nil)
        p.exit()
    }

    @Test func tasks() throws {
        var saved = 0
        try expectCaught(
            "no uid",
            {
                saved = $0.tasks.uidOf[1]!; $0.tasks.uidOf[1] = nil
            }, undo: { $0.tasks.uidOf[1] = saved })
    }

    @Test func memory() throws {
        try expectCaught(
            "mmap_pages_allocated", { $0.mm.mmapPagesAllocated += 1 }, undo: { $0.mm.mmapPagesAllocated -= 1 })
    }

    @Test func files() throws {
        try expectCaught("page cache", { $0.fs.pageCachePages += 1 }, undo: { $0.fs.pageCachePages -= 1 })
    }

    @Test func devices() throws {
        try expectCaught("device memory", { $0.devices.devicePages += 1 }, undo: { $0.devices.devicePages -= 1 })
        try expectCaught("flash", { $0.devices.flashSaved = [] }, undo: { $0.devices.flashSaved = nil })
    }

    @Test func ipc() throws {
        try expectCaught("key 99", { $0.ipc.sysvKeys[99] = 12345 }, undo: { $0.ipc.sysvKeys[99] = nil })
    }
}
