// SPDX-License-Identifier: Apache-2.0
import NommuBase

extension System {
    /// See `Process.mremap`.
    func mremap(
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
            guard let mm = s.processes[pid] else { throw .noSuchProcess }
            // 4. find_vma_exact: a VMA exactly [addr, addr + old_len).
            let (end, past) = addr.addingReportingOverflow(oldLen)
            let i = s.spaces[mm]!.firstIndex(endingAbove: addr)
            guard !past, i < s.spaces[mm]!.mappings.count, s.spaces[mm]!.mappings[i].start == addr,
                s.spaces[mm]!.mappings[i].end == end
            else { throw .invalidArgument }
            let vma = s.spaces[mm]!.mappings[i]
            // 6. Shareable mappings never move or change size.
            guard !vma.flags.isShareable else { throw .notPermitted }
            // 7. Never past the region's original (page-rounded) length; slack is out of reach.
            let r = s.regions[vma.region]!
            guard newLen <= r.end - r.start else { throw .noMemory }
            // 8. Only the VMA's end moves; nothing is allocated or freed.
            s.spaces[mm]!.mappings[i].end = addr + newLen
            return VirtualAddress(addr)
        }
    }

    /// Releases a process's mappings when it was the last user of its address space.
    func exitProcess(_ pid: Int32) {
        state.withLock { s in
            guard let mm = s.processes.removeValue(forKey: pid) else { return }
            s.files[pid] = nil  // exit closes every descriptor
            s.spaces[mm]!.users -= 1
            guard s.spaces[mm]!.users == 0 else { return }
            // exit_mmap: every VMA goes, each region is put.
            while !s.spaces[mm]!.mappings.isEmpty {
                removeMapping(at: s.spaces[mm]!.mappings.count - 1, of: mm, in: &s)
            }
            s.spaces[mm] = nil
        }
        _checkInvariants()
    }
}
