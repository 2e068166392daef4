// SPDX-License-Identifier: Apache-2.0

/// SysV shared memory: the segments by id and the ids by key (`ipc/shm.c`'s `shm_ids`).
struct IPCState {
    var sysv: [CInt: ShmSegment] = [:]
    var sysvKeys: [Int32: CInt] = [:]
    var nextShmID: CInt = 0

    /// The first broken invariant, or nil: every key names a live segment that has that key
    /// and is not removed; no count is negative; a removed segment still has attaches (the
    /// last detach destroys it); every segment's inode is alive.
    func invariantViolation(inodes: Slab<Inode>) -> String? {
        for (key, id) in sysvKeys {
            guard let seg = sysv[id], seg.key == key, !seg.removed else { return "key \(key) names segment \(id)" }
        }
        for (id, seg) in sysv {
            guard seg.attaches >= 0 else { return "segment \(id): \(seg.attaches) attaches" }
            guard !seg.removed || seg.attaches > 0 else { return "segment \(id) removed, unattached, alive" }
            guard inodes[seg.inode] != nil else { return "segment \(id): inode \(seg.inode) gone" }
        }
        return nil
    }
}
