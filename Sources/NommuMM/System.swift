// SPDX-License-Identifier: Apache-2.0
//
// # The no-MMU address-space model
//
// One `System` is one simulated no-MMU kernel over one host arena. Processes have
// address spaces (`mm_struct`) holding mappings (`vm_area_struct`); every mapping points
// into a region (`vm_region`), and regions live in one global tree ordered by address,
// because without an MMU every process sees the same physical addresses. Anonymous
// memory is a private copy region that owns a contiguous run of pages from the buddy
// allocator; the next issue adds file and device regions that processes share.
//
// Locking: one model lock (standing for the kernel's nommu_region_sem and the mm locks)
// guards every region, mapping and counter; the page allocator has its own zone lock and
// is always taken after the model lock, never before.
public import HostArena
public import NommuBase
public import PageAllocator

/// One simulated no-MMU kernel over one host arena.
public final class System: @unchecked Sendable {
    /// How a system is made.
    public struct Configuration: Sendable, Hashable {
        /// Bytes of physical memory (the host arena).
        public var arenaBytes: Int
        /// Page size: a power of two ≥ 4096.
        public var pageSize: Int
        /// Largest buddy order (the kernel's default is 10).
        public var maxOrder: Int
        /// Where the arena comes from.
        public var backing: HostArena.Backing
        /// Ask the host for transparent huge pages.
        public var hugePages: Bool
        /// CONFIG_MMAP_ALLOW_UNINITIALIZED: whether `MAP_UNINITIALIZED` is honoured.
        public var allowUninitialized: Bool
        /// Initial `vm.nr_trim_pages`.
        public var nrTrimPages: Int

        public init(
            arenaBytes: Int = 64 << 20, pageSize: Int = 4096, maxOrder: Int = 10,
            backing: HostArena.Backing = .mmap, hugePages: Bool = false, allowUninitialized: Bool = false,
            nrTrimPages: Int = 1
        ) {
            self.arenaBytes = arenaBytes
            self.pageSize = pageSize
            self.maxOrder = maxOrder
            self.backing = backing
            self.hugePages = hugePages
            self.allowUninitialized = allowUninitialized
            self.nrTrimPages = nrTrimPages
        }
    }

    /// The split limit (`sysctl_max_map_count` = USHRT_MAX − 5); on no-MMU it is fixed and
    /// checked only when munmap splits a mapping.
    public static let maxMapCount = 65530

    public let configuration: Configuration
    /// The page allocator under the model.
    public let allocator: PageAllocator
    /// The largest user address (the model's TASK_SIZE: 2^47 − one page, as x86-64).
    public let taskSize: UInt

    let pageSize: UInt
    let pageShift: Int
    let state: HostMutex<ModelState>
    let futexes = FutexTable()

    /// Makes a system: takes the arena from the host.
    /// - Throws: `EINVAL` for a bad page size, order or trim setting; `ENOMEM` (or the
    ///   host's errno) when the host refuses the arena.
    public init(_ configuration: Configuration = Configuration()) throws(Errno) {
        self.configuration = configuration
        allocator = try PageAllocator(
            .init(
                arenaBytes: configuration.arenaBytes, pageSize: configuration.pageSize,
                maxOrder: configuration.maxOrder, backing: configuration.backing,
                hugePages: configuration.hugePages, nrTrimPages: configuration.nrTrimPages))
        pageSize = UInt(configuration.pageSize)
        pageShift = configuration.pageSize.trailingZeroBitCount
        taskSize = (UInt(1) << 47) - UInt(configuration.pageSize)
        state = HostMutex(ModelState())
    }

    /// CONFIG_MMAP_ALLOW_UNINITIALIZED.
    public var allowUninitialized: Bool { configuration.allowUninitialized }

    /// `vm.nr_trim_pages`.
    public var nrTrimPages: Int { allocator.nrTrimPages }

    /// Writes `vm.nr_trim_pages`. - Throws: `EINVAL` for a negative value (unchanged).
    public func setNrTrimPages(_ value: Int) throws(Errno) { try allocator.setNrTrimPages(value) }

    /// `mmap_pages_allocated`: pages held by private-copy and anonymous regions
    /// (`MmapCopy:` in `/proc/meminfo`, in kB).
    public var mmapPagesAllocated: Int { state.withLock { $0.mmapPagesAllocated } }

    /// Regions in the global tree.
    public var regionCount: Int { state.withLock { $0.regions.count } }

    // MARK: Processes

    /// Starts a process with an empty address space.
    public func createProcess() -> Process {
        let pid = state.withLock { s in
            let pid = s.nextPID
            s.nextPID += 1
            s.processes[pid] = s.spaces.insert(AddressSpace())
            return pid
        }
        return Process(system: self, pid: pid)
    }

    /// The processes alive, by pid.
    public var pids: [Int32] { state.withLock { $0.processes.keys } }

    /// Exits process `pid` (every mapping and descriptor released). No-op for a dead pid.
    public func exit(pid: Int32) { exitProcess(pid) }

    func ensureAlive(_ pid: Int32) throws(Errno) {
        try state.withLock { (s: inout ModelState) throws(Errno) in
            guard s.processes[pid] != nil else { throw .noSuchProcess }
        }
    }
}

/// Everything the model lock guards.
struct ModelState {
    var regions = Slab<Region>()
    var spaces = Slab<AddressSpace>()
    /// pid → address space id.
    var processes = PIDTable()
    /// pid → descriptor table.
    var files: [Int32: [Int32: OpenFile]] = [:]
    var nextPID: Int32 = 1
    /// `mmap_pages_allocated`.
    var mmapPagesAllocated = 0
    /// Pages handed out by the page-allocator entry points (not in any region).
    var directPages = 0

    /// The kernel's global region tree, as an ordered list of region ids: regions are
    /// kept in slots and sorted by address only when something needs the order
    /// (`/proc/maps`, the checks), so mmap and munmap pay no ordered insert or removal.
    var tree: [Int] {
        regions.live.sorted { $0.1.start < $1.1.start }.map(\.0)
    }

    mutating func addRegion(_ r: Region) -> Int { regions.insert(r) }

    mutating func removeRegion(_ id: Int) {
        regions[id] = nil
    }
}
