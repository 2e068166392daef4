// SPDX-License-Identifier: Apache-2.0
import NommuBase

/// Model sizes of the kernel objects `/proc/<pid>/status` counts with `kobjsize()`.
///
/// The kernel's figures are slab object sizes and vary with configuration; these are the
/// model's fixed, documented stand-ins (64-bit, slab sizes rounded as SLUB does), so the
/// `Mem:` line is reproducible. The mapped memory, which dominates, is exact.
enum KernelObjectSize {
    static let vma: UInt = 192  // vm_area_struct
    static let region: UInt = 96  // vm_region
    static let mm: UInt = 1024  // mm_struct
    static let fs: UInt = 64  // fs_struct
    static let files: UInt = 704  // files_struct
    static let sighand: UInt = 2112  // sighand_struct
    static let task: UInt = 16384  // task_struct and kernel stack
}

extension System {
    /// `/proc/maps`: every region in the global tree, one line each (`nommu_region_show`).
    public func procMaps() -> String {
        state.withLock { s in
            var out = ""
            for id in s.mm.tree {
                let r = s.mm.regions[id]!
                let file = r.backing.inode.flatMap { s.fs.inodes[$0] }
                out += mapsLine(
                    start: r.start, end: r.end, flags: r.flags, offset: r.pgoff << UInt(pageShift), file: file,
                    name: file?.path ?? s.mm.procPath(of: r.backing))
            }
            return out
        }
    }

    /// `/proc/<pid>/maps`: the process's mappings (`nommu_vma_show`); nil for no such pid.
    public func procPIDMaps(_ pid: Int32) -> String? {
        state.withLock { s in
            guard let mm = s.tasks.processes[pid], let space = s.mm.spaces[mm] else { return nil }
            var out = ""
            for m in space.mappings {
                let backing = s.mm.regions[m.region]!.backing
                let file = backing.inode.flatMap { s.fs.inodes[$0] }
                if let file {
                    out += mapsLine(
                        start: m.start, end: m.end, flags: m.flags, offset: m.pgoff << UInt(pageShift), file: file,
                        name: file.path)
                } else if let path = s.mm.procPath(of: backing) {
                    out += mapsLine(
                        start: m.start, end: m.end, flags: m.flags, offset: m.pgoff << UInt(pageShift), file: nil,
                        name: path)
                } else {
                    // The offset is printed for file mappings only; anonymous ones show 0.
                    let stack = space.startStack != 0 && m.start <= space.startStack && space.startStack <= m.end
                    out += mapsLine(
                        start: m.start, end: m.end, flags: m.flags, offset: 0, file: nil, name: stack ? "[stack]" : nil)
                }
            }
            return out
        }
    }

    /// `/proc/<pid>/status` memory lines (`task_mem`, fs/proc/task_nommu.c); nil for no such pid.
    public func procPIDStatus(_ pid: Int32) -> String? {
        state.withLock { s in
            guard let mm = s.tasks.processes[pid], let space = s.mm.spaces[mm] else { return nil }
            var bytes: UInt = 0
            var sbytes: UInt = 0
            var slack: UInt = 0
            let shared = space.users > 1
            for m in space.mappings {
                bytes += KernelObjectSize.vma
                let r = s.mm.regions[m.region]!
                let size = KernelObjectSize.region + (r.end - r.start)
                if shared || m.flags.isShareable {
                    sbytes += size
                } else {
                    bytes += size
                    // Assigned, not summed: the last private VMA's shrinkage (as the kernel).
                    slack = r.end - m.end
                }
            }
            if shared { sbytes += KernelObjectSize.mm } else { bytes += KernelObjectSize.mm }
            bytes += KernelObjectSize.fs + KernelObjectSize.files + KernelObjectSize.sighand + KernelObjectSize.task
            return "Name:\tnommu\nPid:\t\(pid)\n" + "Mem:\t" + pad(bytes, 8) + " bytes\n" + "Slack:\t" + pad(slack, 8)
                + " bytes\n" + "Shared:\t" + pad(sbytes, 8) + " bytes\n"
        }
    }

    /// `/proc/meminfo` (the lines a no-MMU kernel's fs/proc/meminfo.c prints that the model
    /// knows): MemTotal, MemFree, MmapCopy (`mmap_pages_allocated`). MemFree is the buddy
    /// lists' pages, without those on per-CPU lists (the kernel's NR_FREE_PAGES does not
    /// count them either).
    public func procMeminfo() -> String {
        let st = allocator.statistics()
        let kb = configuration.pageSize / 1024
        return meminfoLine("MemTotal:", st.totalPages * kb) + meminfoLine("MemFree:", st.freePages * kb)
            + meminfoLine("MmapCopy:", mmapPagesAllocated * kb)
    }

    /// `/proc/buddyinfo`.
    public func procBuddyinfo() -> String { allocator.statistics().buddyInfo }

    // MARK: Formatting

    private func mapsLine(start: UInt, end: UInt, flags: VMFlags, offset: UInt, file: Inode?, name: String?) -> String {
        var line = hex8(start) + "-" + hex8(end) + " "
        line += flags.contains(.read) ? "r" : "-"
        line += flags.contains(.write) ? "w" : "-"
        line += flags.contains(.exec) ? "x" : "-"
        // Linux 6.1's determine_vm_flags gave a read-only private file mapping VM_MAYSHARE
        // (`s`); v6.3 made it private (`p`, VM_MAYOVERLAY).
        let mayShare =
            flags.contains(.mayShare) || (configuration.reference == .linux61 && flags.contains(.mayOverlay))
        line += mayShare ? (flags.contains(.shared) ? "S" : "s") : "p"
        // offset, the superblock's device major:minor and the inode (00:00 0 without a
        // file), one trailing space.
        let dev = file?.mount.device ?? DeviceNumber(major: 0, minor: 0)
        line +=
            " " + hex8(offset) + " " + hex2(dev.major) + ":" + hex2(dev.minor) + " " + String(file?.number ?? 0) + " "
        if let name {
            // seq_setwidth(25 + 6 * sizeof(void *) - 1) then seq_pad(' '): the name starts
            // at column 73 on 64-bit, after at least one space.
            let width = 25 + 6 * MemoryLayout<UnsafeRawPointer>.size - 1
            if line.count < width { line += String(repeating: " ", count: width - line.count) }
            line += " " + name
        }
        return line + "\n"
    }

    private func hex2(_ v: UInt32) -> String {
        let h = String(v, radix: 16)
        return h.count >= 2 ? h : "0" + h
    }

    private func hex8(_ v: UInt) -> String {
        let h = String(v, radix: 16)
        return h.count >= 8 ? h : String(repeating: "0", count: 8 - h.count) + h
    }

    private func pad(_ v: UInt, _ width: Int) -> String {
        let d = String(v)
        return d.count >= width ? d : String(repeating: " ", count: width - d.count) + d
    }

    private func meminfoLine(_ label: String, _ kb: Int) -> String {
        // show_val_kb: the label padded to 16 columns, the value right-aligned in 8, " kB".
        label + String(repeating: " ", count: max(0, 16 - label.count)) + pad(UInt(kb), 8) + " kB\n"
    }
}
