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
        let s = system.allocator.statistics()
        free = s.freeBlocks
        allocated = s.allocatedPages
    }
}

extension VirtualAddress {
    var u: UInt { rawValue }
}
