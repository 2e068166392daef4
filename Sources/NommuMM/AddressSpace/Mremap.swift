// SPDX-License-Identifier: Apache-2.0
public import NommuBase

extension System {
    /// `Process.mremap`'s body.
    fileprivate func mremap(
        _ pid: Int32, address addr: UInt, oldLength: UInt, newLength: UInt, flags: RemapFlags, newAddress: UInt
    ) throws(Errno) -> VirtualAddress {
        let page = pageSize
        func align(_ v: UInt) -> UInt {
            let (sum, wrapped) = v.addingReportingOverflow(page - 1)
            return wrapped ? 0 : sum & ~(page - 1)
        }
        // 1. Both lengths page-rounded; either zero → EINVAL.
        let oldLen = align(oldLength)
        let newLen = align(newLength)
        guard oldLen != 0, newLen != 0 else { throw .invalidArgument }
        // 2. Unaligned address.
        guard addr & (page - 1) == 0 else { throw .invalidArgument }
        // 3. MREMAP_FIXED to another address.
        guard !flags.contains(.fixed) || newAddress == addr else { throw .invalidArgument }
        return try state.withLock { (s: inout ModelState) throws(Errno) -> VirtualAddress in
            guard let mm = s.tasks.processes[pid] else { throw .noSuchProcess }
            // 4. find_vma_exact: a VMA exactly [addr, addr + old_len).
            let (end, past) = addr.addingReportingOverflow(oldLen)
            guard !past,
                let i = s.mm.spaces[mm]!.indices(intersecting: addr, end).first(where: {
                    s.mm.spaces[mm]!.mappings[$0].start == addr && s.mm.spaces[mm]!.mappings[$0].end == end
                })
            else { throw .invalidArgument }
            let vma = s.mm.spaces[mm]!.mappings[i]
            // 6. Shareable mappings never move or change size.
            guard !vma.flags.isShareable else { throw .notPermitted }
            // 7. Never past the region's original (page-rounded) length; slack is out of reach.
            let r = s.mm.regions[vma.region]!
            guard newLen <= r.end - r.start else { throw .noMemory }
            // 8. Only the VMA's end moves; nothing is allocated or freed.
            s.mm.spaces[mm]!.mappings[i].end = addr + newLen
            return VirtualAddress(addr)
        }
    }

    /// Releases a process's mappings when it was the last user of its address space.
    func exitProcess(_ pid: Int32) {
        let pipeEnds = state.withLock { s -> [(PipeBuffer, Bool, Bool)] in
            guard let mm = s.tasks.processes.removeValue(forKey: pid) else { return [] }
            _ = s.tasks.uidOf.removeValue(forKey: pid)
            var ends: [(PipeBuffer, Bool, Bool)] = []
            // exit_files: the last user of a descriptor table closes every descriptor.
            if let t = s.tasks.tableOf.removeValue(forKey: pid) {
                s.fs.tables.update(t) { $0.users -= 1 }
                if s.fs.tables[t]!.users == 0 {
                    let files = s.fs.tables[t]!.descriptors.values
                    s.fs.tables[t] = nil
                    for f in files { if let e = releaseDescription(f, in: &s) { ends.append(e) } }
                }
            }
            releaseAddressSpace(mm, in: &s)
            return ends
        }
        for (p, r, w) in pipeEnds { p.close(reader: r, writer: w) }
        _checkInvariants()
    }

    /// Drops one user of an address space; the last one's mappings all go (`exit_mmap`).
    func releaseAddressSpace(_ mm: Int, in s: inout ModelState) {
        s.mm.spaces[mm]!.users -= 1
        guard s.mm.spaces[mm]!.users == 0 else { return }
        while !s.mm.spaces[mm]!.mappings.isEmpty {
            removeMapping(at: s.mm.spaces[mm]!.mappings.count - 1, of: mm, in: &s)
        }
        s.mm.spaces[mm] = nil
    }
}

extension Process {
    /// `mremap(addr, old_len, new_len, flags, new_addr)` under no-MMU rules: the mapping
    /// never moves; it may shrink, and grow back up to its region's original length.
    /// - Throws: `EINVAL` for a zero length, an unaligned address, `MREMAP_FIXED` with
    ///   another address, or no mapping exactly [addr, addr + old_len); `EPERM` for a
    ///   shareable mapping; `ENOMEM` for growth past the region's length; `ESRCH`.
    /// - Returns: The same address.
    ///
    /// Models `do_mremap` in mm/nommu.c.
    public func mremap(
        address: UInt, oldLength: UInt, newLength: UInt, flags: RemapFlags = [], newAddress: UInt = 0
    ) throws(Errno) -> VirtualAddress {
        try system.mremap(
            pid, address: address, oldLength: oldLength, newLength: newLength, flags: flags, newAddress: newAddress)
    }
}
