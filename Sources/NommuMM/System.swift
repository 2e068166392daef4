// SPDX-License-Identifier: Apache-2.0
//
// # The no-MMU address-space model
//
// One `System` is one simulated no-MMU kernel over one host arena. Processes have
// address spaces (`mm_struct`) holding mappings (`vm_area_struct`); every mapping points
// into a region (`vm_region`), and regions are global (the kernel's nommu_region_tree),
// because without an MMU every process sees the same physical addresses: here they sit in
// slots and are sorted by address only when something needs the order. Anonymous memory
// is a private copy region that owns a contiguous run of pages from the buddy allocator;
// file and device regions map memory in place or own a private copy, and are shared.
//
// Locking: one model lock (standing for the kernel's nommu_region_sem and the mm locks)
// guards every region, mapping and counter; the page allocator has its own zone lock and
// is always taken after the model lock, never before.
public import NommuHost
public import NommuBase
public import PageAllocator

/// One simulated no-MMU kernel over one host arena.
public final class System: @unchecked Sendable {
    /// Whose answers the model gives where the kernel document and a real kernel differ.
    public enum Reference: Sendable, Hashable, CaseIterable {
        /// The kernel document (`nommu-mmap.txt`), read with the code of v6.3 and later: the
        /// default.
        case document
        /// Linux 6.1 as the kernel oracle saw it run (`Oracle/divergences.md`), wherever the
        /// two differ for a reason other than a kernel bug: an address hint is ignored, a
        /// private mapping of `/dev/zero` is EINVAL, a SysV attach is ENODEV, a read-only
        /// private file mapping shows `s` in maps, and a futex wake checks no mapping.
        case linux61

        /// The name the CLI and `Oracle/` use: `document` or `linux-6.1`.
        public var name: String {
            switch self {
            case .document: "document"
            case .linux61: "linux-6.1"
            }
        }

        /// The reference called `name`, or nil.
        public init?(name: String) {
            guard let r = Self.allCases.first(where: { $0.name == name }) else { return nil }
            self = r
        }
    }

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
        /// The host directory behind `/data`; nil = a fresh temporary directory, removed
        /// when the system goes.
        public var hostDirectory: String?
        /// Bytes of the flash window (`/dev/mtd0`, holding the `/rom` image): device memory
        /// outside the page allocator, as flash is on a board.
        public var flashBytes: Int
        /// Bytes of `/dev/ram0`, taken contiguously from the page allocator when it is first
        /// opened and kept (a ramdisk's memory) until the system goes.
        public var ramdiskBytes: Int
        /// Bytes of `/dev/fb0`'s video memory, taken from the page allocator on first use
        /// and given back when the last descriptor and mapping go.
        public var framebufferBytes: Int
        /// Whose answers to give where the document and Linux 6.1 differ.
        public var reference: Reference

        public init(
            arenaBytes: Int = 64 << 20, pageSize: Int = 4096, maxOrder: Int = 10,
            backing: HostArena.Backing = .mmap, hugePages: Bool = false, allowUninitialized: Bool = false,
            nrTrimPages: Int = 1, hostDirectory: String? = nil, flashBytes: Int = 16 << 20,
            ramdiskBytes: Int = 256 << 10, framebufferBytes: Int = 160 << 10, reference: Reference = .document
        ) {
            self.reference = reference
            self.hostDirectory = hostDirectory
            self.flashBytes = flashBytes
            self.ramdiskBytes = ramdiskBytes
            self.framebufferBytes = framebufferBytes
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
    let state: ModelLock
    let futexes = FutexTable()
    #if NOMMU_INTERNAL_CHECKS
        /// Calls of `_checkInvariants`, for sampling the walk in large states.
        let checkCalls = HostMutex<Int>(0)
    #endif
    /// The flash window: `/dev/mtd0`'s memory, with the romfs image of `/rom` in it.
    let flash: HostArena
    /// The host directory behind `/data`, and whether the system made it (and removes it).
    let hostRoot: PathBytes
    let ownsHostRoot: Bool

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
        let page = configuration.pageSize
        guard configuration.flashBytes > 0, configuration.flashBytes % page == 0,
            configuration.ramdiskBytes >= 0, configuration.ramdiskBytes % page == 0,
            configuration.framebufferBytes >= 0, configuration.framebufferBytes % page == 0
        else { throw .invalidArgument }
        flash = try HostArena(byteCount: configuration.flashBytes, alignment: max(page, HostArena.hostPageSize))
        if let dir = configuration.hostDirectory {
            guard let st = try HostFS.status(PathBytes(path: dir)), st.isDirectory else { throw .notDirectory }
            hostRoot = PathBytes(path: dir)
            ownsHostRoot = false
        } else {
            hostRoot = PathBytes(path: try HostFS.makeTemporaryDirectory())
            ownsHostRoot = true
        }
        var initial = ModelState()
        initial.fs.createDeviceNodes()
        state = ModelLock(initial)
    }

    deinit {
        if ownsHostRoot { HostFS.removeTree(hostRoot) }
    }

    /// The host directory behind `/data`.
    public var hostDirectory: String { hostRoot.displayed }

    /// The host path of `rel` under `/data`.
    func hostPath(_ rel: PathBytes) -> PathBytes { hostRoot + [FileState.slash] + rel }

    /// CONFIG_MMAP_ALLOW_UNINITIALIZED.
    public var allowUninitialized: Bool { configuration.allowUninitialized }

    /// `vm.nr_trim_pages`.
    public var nrTrimPages: Int { allocator.nrTrimPages }

    /// Writes `vm.nr_trim_pages`. - Throws: `EINVAL` for a negative value (unchanged).
    public func setNrTrimPages(_ value: Int) throws(Errno) { try allocator.setNrTrimPages(value) }

    /// `mmap_pages_allocated`: pages held by private-copy and anonymous regions
    /// (`MmapCopy:` in `/proc/meminfo`, in kB).
    public var mmapPagesAllocated: Int { state.withLock { $0.mm.mmapPagesAllocated } }

    /// Regions in the global tree.
    public var regionCount: Int { state.withLock { $0.mm.regions.count } }

    // MARK: Processes

    /// Starts a process with an empty address space.
    public func createProcess() -> Process {
        let pid = state.withLock { s in
            let pid = s.tasks.nextPID
            s.tasks.nextPID += 1
            s.tasks.processes[pid] = s.mm.spaces.insert(AddressSpace())
            s.tasks.tableOf[pid] = s.fs.tables.insert(FileTable())
            s.tasks.uidOf[pid] = 0  // root, as a kernel's first processes are
            return pid
        }
        return Process(system: self, pid: pid)
    }

    /// The processes alive, by pid.
    public var pids: [Int32] { state.withLock { $0.tasks.processes.keys } }

    /// Exits process `pid` (every mapping and descriptor released). No-op for a dead pid.
    public func exit(pid: Int32) { exitProcess(pid) }

    func ensureAlive(_ pid: Int32) throws(Errno) {
        try state.withLock { (s: inout ModelState) throws(Errno) in
            guard s.tasks.processes[pid] != nil else { throw .noSuchProcess }
        }
    }
}

/// Everything the model lock guards, one part per subsystem. Each part checks its own
/// invariants (`invariantViolation`); `System.invariantViolation` checks what ties them together.
struct ModelState {
    /// Processes: pids and what each names.
    var tasks = TaskState()
    /// Address spaces and the global regions (mm/nommu.c).
    var mm = MemoryState()
    /// The VFS: inodes, names, descriptor tables, the page cache.
    var fs = FileState()
    /// Device memory, the flash window's state, the console.
    var devices = DeviceState()
    /// SysV shared memory.
    var ipc = IPCState()

    /// Sets the offset of descriptor `fd` of process `pid`.
    mutating func setOffset(_ pid: Int32, _ fd: CInt, _ offset: Int) {
        guard let t = tasks.tableOf[pid] else { return }
        fs.tables.update(t) { $0.descriptors[fd]?.offset = offset }
    }
}

/// The processes alive: what each pid names (the kernel's `task_struct` fields the model keeps).
struct TaskState {
    /// pid → address space id (`mm`).
    var processes = PIDTable()
    /// pid → descriptor table id (`files`).
    var tableOf = PIDTable()
    /// pid → uid (real, effective and saved in one: the model's processes never hold two).
    var uidOf = PIDTable()
    /// The next pid: pids are never reused.
    var nextPID: Int32 = 1

    /// The first broken invariant, or nil: every process has an address space, a descriptor
    /// table and a uid, and nothing else has one.
    func invariantViolation(spaces: Slab<AddressSpace>, tables: Slab<FileTable>) -> String? {
        for pid in processes.keys {
            guard let mm = processes[pid], spaces[mm] != nil else { return "pid \(pid): no address space" }
            guard let t = tableOf[pid], tables[t] != nil else { return "pid \(pid): no descriptor table" }
            guard uidOf[pid] != nil else { return "pid \(pid): no uid" }
        }
        guard tableOf.count == processes.count, uidOf.count == processes.count else {
            return "\(processes.count) processes, \(tableOf.count) tables, \(uidOf.count) uids"
        }
        return nil
    }
}

/// The model lock: `ModelState` behind the host's pthread mutex (the kernel's
/// `nommu_region_sem` and every `mmap_lock` in one).
typealias ModelLock = HostMutex<ModelState>
