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
        initial.createDeviceNodes()
        state = ModelLock(initial)
    }

    deinit {
        if ownsHostRoot { HostFS.removeTree(hostRoot) }
    }

    /// The host directory behind `/data`.
    public var hostDirectory: String { hostRoot.displayed }

    /// The host path of `rel` under `/data`.
    func hostPath(_ rel: PathBytes) -> PathBytes { hostRoot + [ModelState.slash] + rel }

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
            s.tableOf[pid] = s.tables.insert(FileTable())
            s.uidOf[pid] = 0  // root, as a kernel's first processes are
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
    /// vm.overcommit_memory, _ratio and _kbytes (kept, and read by nothing, as without an MMU).
    var overcommit = OvercommitSettings()
    var regions = Slab<Region>()
    var spaces = Slab<AddressSpace>()
    /// pid → address space id.
    var processes = PIDTable()
    /// pid → descriptor table id.
    var tableOf = PIDTable()
    /// pid → uid (real, effective and saved in one: the model's processes never hold two).
    var uidOf = PIDTable()
    /// Descriptor tables (each process its own: vfork copies its parent's).
    var tables = Slab<FileTable>()
    /// Every inode alive.
    var inodes = Slab<Inode>()
    /// Names: tmpfs, romfs and /dev directories, path under the mount → inode.
    var names: [MountPoint: [PathBytes: Int]] = [:]
    /// `/data` inodes alive (open or mapped), by host inode number.
    var hostInodes: [UInt64: Int] = [:]
    var nextInodeNumber: [MountPoint: UInt] = [:]
    /// ramfs page-cache pages (not in `mmap_pages_allocated`, as in the kernel).
    var pageCachePages = 0
    /// Open file descriptions held in no descriptor table (exec's while it loads), by inode:
    /// they count in the inode's `opens` as descriptors do.
    var heldOpens: [Int: Int] = [:]
    /// Device memory taken from the page allocator: the ramdisk and the frame buffer.
    var devicePages = 0
    var ramdisk: PageRun? = nil
    var framebuffer: PageRun? = nil
    /// Bytes of the flash window the romfs image uses.
    var flashUsed = 0
    var flashMode = FlashMode.read
    /// The flash contents while the window shows the status pattern.
    var flashSaved: [UInt8]? = nil
    /// What was written to `/dev/ttyS0`.
    var console: [UInt8] = []
    /// SysV shared-memory segments by id, and the ids by key.
    var sysv: [CInt: ShmSegment] = [:]
    var sysvKeys: [Int32: CInt] = [:]
    var nextShmID: CInt = 0
    var nextPID: Int32 = 1
    /// `mmap_pages_allocated`.
    var mmapPagesAllocated = 0

    /// The kernel's global region tree, as an ordered list of region ids: regions are
    /// kept in slots and sorted by address only when something needs the order
    /// (`/proc/maps`, the checks), so mmap and munmap pay no ordered insert or removal.
    var tree: [Int] {
        regions.live.sorted { $0.1.start < $1.1.start }.map(\.0)
    }

    mutating func addRegion(_ r: Region) -> Int { regions.insert(r) }

    /// The paths of procfs files that private copies were made of (`Backing.procCopy`
    /// numbers them; a path is entered once and kept: there are few of them).
    var procPaths: [String] = []

    /// The number of `path` in `procPaths`, entered when new.
    mutating func procPathNumber(_ path: String) -> Int {
        if let i = procPaths.firstIndex(of: path) { return i }
        procPaths.append(path)
        return procPaths.count - 1
    }

    /// The path `/proc/*/maps` prints for a copy of a procfs file; nil for other backings.
    func procPath(of backing: Backing) -> String? {
        if case .procCopy(let i) = backing { return procPaths[i] }
        return nil
    }

    mutating func removeRegion(_ id: Int) {
        regions.free(id)
    }
}

/// The model lock: `ModelState` behind the host's pthread mutex (the kernel's
/// `nommu_region_sem` and every `mmap_lock` in one).
typealias ModelLock = HostMutex<ModelState>
