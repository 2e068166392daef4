// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuMM
import NommuTestSupport
import PageAllocator

let page: UInt = 4096

func makeSystem(pages: Int = 1024, maxOrder: Int = 10, trim: Int = 1, allowUninitialized: Bool = false) throws
    -> System
{
    try System(
        .init(arenaBytes: pages * 4096, maxOrder: maxOrder, allowUninitialized: allowUninitialized, nrTrimPages: trim))
}

let anon: MapFlags = [.private, .anonymous]
let rw: Protection = [.read, .write]

/// Exits every process, then checks nothing is left: no region, no page, invariants hold.
func everythingBackViolation(_ system: System, _ processes: [Process]) -> String? {
    for p in processes { p.exit() }
    if !system.pids.isEmpty { return "processes left: \(system.pids)" }
    do { try system.tearDownFilesystems() } catch { return "tear-down: \(error)" }
    if system.regionCount != 0 { return "\(system.regionCount) regions left" }
    if system.mmapPagesAllocated != 0 { return "mmap_pages_allocated \(system.mmapPagesAllocated)" }
    if let v = system.invariantViolation() { return v }
    return allPagesBackViolation(system.allocator)
}

/// What a failed call must leave unchanged.
struct Snapshot: Equatable {
    var mappings: [[MappingInfo]]
    var mmapPages: Int
    var free: [Int]
    var allocated: Int
    init(_ system: System, _ processes: [Process]) {
        mappings = processes.map(\.mappings)
        mmapPages = system.mmapPagesAllocated
        // The calling thread's per-CPU blocks go back first: fully merged, the buddy lists
        // then describe the set of free pages exactly, wherever a call left them.
        system.allocator.drainLocalPerCPULists()
        let s = system.allocator.statistics()
        free = s.freeBlocks
        allocated = s.allocatedPages
    }
}

/// Everything a failed call must leave as it was: the address spaces and the allocator
/// (`Snapshot`), the region tree, each process's first 48 descriptor slots, the files' bytes
/// as the model (and, for `/data`, the host disk) holds them, the SysV segments of `shmKeys`,
/// `vm.nr_trim_pages` and the pages handed out directly.
struct ModelDigest: Equatable {
    var snapshot: Snapshot
    var regions: String
    var descriptors: [String]
    var files: [String: [UInt8]?]
    var hostFiles: [String: [UInt8]?]
    var segments: [String]
    var nrTrimPages: Int
    var directPages: Int

    init(_ s: System, _ processes: [Process], files: [String], shmKeys: [Int32] = []) {
        snapshot = Snapshot(s, processes)
        regions = s.procMaps()
        // A zero-byte pread makes no host call and shows each slot: open and readable, or
        // which errno.
        descriptors = processes.flatMap { p in
            (0..<CInt(48)).map { fd in
                do {
                    _ = try p.pread(fd, count: 0, offset: 0)
                    return "\(p.pid):\(fd) readable"
                } catch { return "\(p.pid):\(fd) \(error)" }
            }
        }
        let reader = processes[0]
        self.files = [:]
        hostFiles = [:]
        for path in files {
            self.files[path] = try? {
                let fd = try reader.open(path)
                defer { try? reader.close(fd) }
                return try reader.read(fd, count: 1 << 20)
            }()
            if path.hasPrefix("/data/") {
                hostFiles[path] = readHostFile(s.hostDirectory + "/" + path.dropFirst(6))
            }
        }
        segments = shmKeys.map { key in
            guard let id = try? reader.shmget(key: key, size: 1, flags: 0), let st = try? reader.shmStatus(id) else {
                return "\(key): none"
            }
            return "\(key): \(st)"
        }
        nrTrimPages = s.nrTrimPages
        directPages = s.directPages
    }
}

extension VirtualAddress {
    var u: UInt { rawValue }
}
