// SPDX-License-Identifier: Apache-2.0
//
// # Files: a small VFS
//
// The default tree of ABI.md: mounts with their filesystems (each with the kernel's
// mapping capabilities), inodes, and the open-file descriptions that descriptor tables
// hold. Everything here is guarded by the model lock (it lives in `ModelState`); pipes
// block on their own lock (Pipe.swift) and host I/O for `/data` goes through `HostFS`.
import NommuBase
import NommuHost
import PageAllocator
#if canImport(Glibc)
    import Glibc
#endif

/// The kernel's NOMMU_MAP_* capabilities (include/linux/fs.h, v4.0+).
struct MapCapabilities: OptionSet, Hashable {
    let rawValue: UInt
    /// NOMMU_MAP_COPY: a private copy may be read into fresh memory.
    static let copy = MapCapabilities(rawValue: 0x01)
    /// NOMMU_MAP_DIRECT: the backing memory can be mapped in place.
    static let direct = MapCapabilities(rawValue: 0x08)
    /// NOMMU_MAP_READ (= VM_MAYREAD).
    static let read = MapCapabilities(rawValue: 0x10)
    /// NOMMU_MAP_WRITE (= VM_MAYWRITE).
    static let write = MapCapabilities(rawValue: 0x20)
    /// NOMMU_MAP_EXEC (= VM_MAYEXEC).
    static let exec = MapCapabilities(rawValue: 0x40)
    /// NOMMU_VMFLAGS: the bits copied into a direct mapping's vm_flags.
    static let vmFlags: MapCapabilities = [.read, .write, .exec]
}

/// A device number as `/proc/maps` prints it (`%02x:%02x`).
struct DeviceNumber: Hashable {
    var major: UInt32
    var minor: UInt32
}

/// The filesystems of the default tree, and the kernel-internal ones behind SysV segments,
/// pipes and sockets.
enum MountPoint: CaseIterable, Hashable {
    case devShm, tmp, rom, data, dev, sysvShm, pipefs, sockfs

    /// Where it is mounted ("" for the internal ones).
    var path: String {
        switch self {
        case .devShm: "/dev/shm"
        case .tmp: "/tmp"
        case .rom: "/rom"
        case .data: "/data"
        case .dev: "/dev"
        case .sysvShm, .pipefs, .sockfs: ""
        }
    }

    /// The superblock's device (`s_dev`), printed in `/proc/maps`: anonymous devices for
    /// memory filesystems, 1f:00 (mtdblock0) under romfs, 08:01 (sda1) under the disk.
    var device: DeviceNumber {
        switch self {
        case .devShm: DeviceNumber(major: 0, minor: 0x17)
        case .tmp: DeviceNumber(major: 0, minor: 0x18)
        case .rom: DeviceNumber(major: 31, minor: 0)
        case .data: DeviceNumber(major: 8, minor: 1)
        case .dev: DeviceNumber(major: 0, minor: 5)
        case .sysvShm: DeviceNumber(major: 0, minor: 1)
        case .pipefs: DeviceNumber(major: 0, minor: 0x0c)
        case .sockfs: DeviceNumber(major: 0, minor: 0x08)
        }
    }

    /// Memory-backed (ramfs, which is what tmpfs is on !MMU).
    var isRamfs: Bool { self == .devShm || self == .tmp || self == .sysvShm }

    /// `MNT_NOEXEC` (`/dev/shm` is mounted noexec, as distributions mount it).
    var isNoExec: Bool { self == .devShm }
}

/// The character and block devices of `/dev`.
enum Device: CaseIterable, Hashable {
    case fb0, mtd0, ram0, zero, null, ttyS0

    var name: String {
        switch self {
        case .fb0: "fb0"
        case .mtd0: "mtd0"
        case .ram0: "ram0"
        case .zero: "zero"
        case .null: "null"
        case .ttyS0: "ttyS0"
        }
    }

    /// Whether the node is a block device (else a character device).
    var isBlock: Bool { self == .ram0 }

    /// Whether the driver has an mmap operation (`f_op->mmap`).
    var hasMmap: Bool { self != .ttyS0 && self != .null }

    /// `f_op->mmap_capabilities`, or nil when the driver has none (the inode-type defaults
    /// of `validate_mmap_request` apply: char → DIRECT|READ|WRITE, block → COPY).
    var capabilities: MapCapabilities? {
        switch self {
        case .fb0: nil  // a frame buffer: the char default, direct read/write only
        case .mtd0: [.copy, .direct, .read, .exec]  // a ROM-type MTD (`mtdchar_mmap_capabilities`)
        case .ram0: [.copy, .direct, .read, .write, .exec]  // memory, allocated up front
        case .zero: [.copy]
        case .null, .ttyS0: nil
        }
    }
}

/// The kernel's inode, for every kind of file the model has.
struct Inode {
    enum Kind: Equatable { case regular, directory, characterDevice, blockDevice, fifo, socket }

    var kind: Kind
    var mount: MountPoint
    /// `i_ino`.
    var number: UInt
    /// The path `/proc/maps` prints.
    var path: String
    /// `i_size`.
    var size = 0
    /// Whether a name refers to it (false after unlink, and for pipes, sockets, SysV segments).
    var linked = true
    /// Open file descriptions, regions and kernel references (SysV ids) holding it.
    var opens = 0
    var regions = 0
    var pins = 0
    /// Whether it has been opened (romfs files can be added only before).
    var everOpened = false
    /// `S_APPEND` (chattr +a).
    var appendOnly = false
    /// ramfs page cache: one single-page run per file page index (absent = a hole that
    /// reads as zeros).
    var pages: [Int: PageRun] = [:]
    /// Truncated page-cache pages a private overlay still covered: kept until the inode goes.
    var orphans: [PageRun] = []
    /// romfs: the data's offset in the flash image.
    var romOffset = 0
    /// `/data`: the host descriptor held while the inode lives, and whether it is writable.
    var hostFD: CInt = -1
    var hostWritable = false
    /// Device nodes.
    var device: Device? = nil
    /// Sockets: the family and the type (`SOCK_STREAM`…, raw AF_UNIX read as datagram).
    var socket: (family: CInt, type: CInt)? = nil
    /// Pipes and FIFOs.
    var pipe: PipeBuffer? = nil

    init(kind: Kind, mount: MountPoint, number: UInt, path: String) {
        self.kind = kind
        self.mount = mount
        self.number = number
        self.path = path
    }

    /// No name, descriptor, region or kernel reference holds it.
    var isUnused: Bool { !linked && opens == 0 && regions == 0 && pins == 0 }

    /// The capabilities `validate_mmap_request` works out (steps 7–8), or nil for an inode
    /// type that has no default (step 7: EINVAL).
    var capabilities: MapCapabilities? {
        switch mount {
        case .devShm, .tmp, .sysvShm:
            return [.direct, .copy, .read, .write, .exec]  // ramfs_mmap_capabilities
        case .rom:
            return [.copy, .direct, .read, .exec]  // romfs on a ROM MTD: the MTD's
        case .data:
            return [.copy]  // a disk filesystem without the op: the regular-file default
        case .dev:
            if let d = device, let caps = d.capabilities { return caps }
            switch kind {
            case .characterDevice: return [.direct, .read, .write]
            case .blockDevice, .regular: return [.copy]
            default: return nil
            }
        case .pipefs, .sockfs:
            return nil
        }
    }

    /// Whether the file has `f_op->mmap` (pipes and FIFOs do not; sockets do).
    var hasMmapOperation: Bool {
        switch kind {
        case .fifo, .directory: false
        case .socket, .regular: true
        case .characterDevice, .blockDevice: device?.hasMmap ?? false
        }
    }

    /// Whether the file has `f_op->get_unmapped_area` (without it DIRECT is dropped).
    var hasGetUnmappedArea: Bool {
        switch mount {
        case .devShm, .tmp, .sysvShm, .rom: true
        case .dev: device == .fb0 || device == .mtd0 || device == .ram0 || device == .zero
        default: false
        }
    }
}

/// The `vm.*` sysctls the model has (kernel/sysctl.c's `vm_table`).
enum Sysctl: CaseIterable {
    /// `nr_trim_pages` (mm/nommu.c): the trimming watermark, `proc_dointvec_minmax`, ≥ 0.
    case nrTrimPages
    /// `overcommit_memory` (0 guess, 1 always, 2 never), `overcommit_ratio` (percent, any int)
    /// and `overcommit_kbytes` (an unsigned long): mm/util.c's handlers. A write of the ratio
    /// zeroes the kbytes and a write of the kbytes zeroes the ratio. Without an MMU nothing
    /// reads them: mm/nommu.c's do_mmap makes no `security_vm_enough_memory_mm` call (only
    /// shmem, swapon and an MMU fork's dup_mmap do), so they change no mapping's outcome.
    case overcommitMemory, overcommitRatio, overcommitKbytes

    var name: String {
        switch self {
        case .nrTrimPages: return "nr_trim_pages"
        case .overcommitMemory: return "overcommit_memory"
        case .overcommitRatio: return "overcommit_ratio"
        case .overcommitKbytes: return "overcommit_kbytes"
        }
    }
}

/// The overcommit sysctls' values (see `Sysctl`), under the model lock.
struct OvercommitSettings {
    var policy = 0
    var ratio = 50
    var kbytes: UInt64 = 0
}

/// An open file description.
struct OpenFile {
    enum Kind {
        /// A procfs text file; its bytes are taken when it is opened (as seq_file does).
        /// `registered`: the path of a file made with `proc_create` (`/proc/maps`, `meminfo`,
        /// `buddyinfo`), whose operations are `proc_reg_file_ops`; nil for a `/proc/<pid>`
        /// file, which has its own.
        case text([UInt8], registered: String?)
        /// A `/proc/sys/vm` file: reads the current value, writes set it.
        case sysctl(Sysctl)
        /// A directory (procfs or a mount point): opens for reading, reads fail.
        case directory
        /// A file of the VFS.
        case inode(Int)
    }

    var kind: Kind
    var offset = 0
    var readable: Bool
    var writable: Bool
    var append = false
    var nonBlocking = false

    /// The inode, for VFS files.
    var inode: Int? {
        if case .inode(let i) = kind { return i }
        return nil
    }
}

/// A descriptor table (`files_struct`); a vfork child gets a copy of its parent's.
struct FileTable {
    var descriptors: [Int32: OpenFile] = [:]
    var users = 1
}

/// Open flags, one-to-one with `O_*` (the ones the model honours; others are ignored as
/// the kernel ignores unknown bits).
public struct OpenFlags: OptionSet, Sendable, Hashable {
    public let rawValue: CInt
    public init(rawValue: CInt) { self.rawValue = rawValue }
    /// `O_RDONLY` (0).
    public static let readOnly: OpenFlags = []
    /// `O_WRONLY`.
    public static let writeOnly = OpenFlags(rawValue: O_WRONLY)
    /// `O_RDWR`.
    public static let readWrite = OpenFlags(rawValue: O_RDWR)
    /// `O_CREAT`.
    public static let create = OpenFlags(rawValue: O_CREAT)
    /// `O_EXCL`.
    public static let exclusive = OpenFlags(rawValue: O_EXCL)
    /// `O_TRUNC`.
    public static let truncate = OpenFlags(rawValue: O_TRUNC)
    /// `O_APPEND`.
    public static let append = OpenFlags(rawValue: O_APPEND)
    /// `O_NONBLOCK` (pipes and FIFOs: no waiting).
    public static let nonBlocking = OpenFlags(rawValue: O_NONBLOCK)
    /// `O_DIRECTORY`: fail with `ENOTDIR` unless the path names a directory.
    public static let directory = OpenFlags(rawValue: CInt(0o200000))
    /// `O_ACCMODE`.
    public static let accessModeMask: CInt = O_ACCMODE
}

/// Descriptors a process may hold open (RLIMIT_NOFILE's usual soft limit).
let maxOpenFiles: Int32 = 1024

/// A path as the kernel takes one: its bytes up to the first NUL, compared byte for byte.
/// Nothing is decoded or normalised, so `/tmp/\xfe` and `/tmp/\xff` are two names, and so
/// are `é` composed and `e` + U+0301 (a Swift `String` would call those equal).
typealias PathBytes = [UInt8]

extension PathBytes {
    /// A Swift path's UTF-8 bytes, up to a NUL as a C string would end there.
    init(path: String) {
        self = Array(path.utf8.prefix { $0 != 0 })
    }

    /// A C string's bytes.
    init(cString p: UnsafePointer<CChar>) {
        self = Array(UnsafeRawBufferPointer(start: p, count: strlen(p)))
    }

    /// For what the model prints (`/proc/maps`): bytes that are not UTF-8 show as U+FFFD.
    var displayed: String { String(decoding: self, as: UTF8.self) }
}

/// A path split into its mount and the rest.
struct ResolvedPath {
    enum Place {
        /// The components under `/proc` (ASCII; a name that is not has no match there).
        case proc([String])
        case mount(MountPoint, PathBytes)
        /// "/" or "/dev" (directories that are not themselves filesystems the model writes).
        case directory
    }
    var place: Place
    /// The path ends in `/` (or `/.`) after a name: what it names must be a directory.
    var mustBeDirectory = false
    /// The components before each `..` (after the ones before it were applied): the walk
    /// goes through each of them, so each must exist and be a directory (`path_lookupat`
    /// fails at the first that is missing, ENOENT, or is not a directory, ENOTDIR; the
    /// lexical result alone would skip them).
    var walkedThrough: [[PathBytes]] = []
}

extension FileState {
    static let slash = UInt8(ascii: "/")

    /// Splits an absolute path into its mount and the name under it.
    /// - Throws: `ENAMETOOLONG` (PATH_MAX, NAME_MAX, in bytes); `ENOENT` for relative
    ///   paths and paths outside the tree.
    static func resolve(_ path: PathBytes) throws(Errno) -> ResolvedPath {
        guard path.count < Int(PATH_MAX) else { throw .fileNameTooLong }
        guard !path.isEmpty else { throw .noSuchFileOrDirectory }
        var parts: [PathBytes] = []
        var walked: [[PathBytes]] = []
        for c in path.split(separator: slash, omittingEmptySubsequences: true) {
            guard c.count <= Int(NAME_MAX) else { throw .fileNameTooLong }
            if c.elementsEqual(".".utf8) { continue }
            if c.elementsEqual("..".utf8) {
                if !parts.isEmpty {
                    walked.append(parts)
                    parts.removeLast()
                }
                continue
            }
            parts.append(PathBytes(c))
        }
        guard path.first == slash else { throw .noSuchFileOrDirectory }
        var r = try place(of: parts)
        // path_lookupat keeps LOOKUP_DIRECTORY for a trailing slash (or a trailing "/."),
        // so the last component must turn out to be a directory.
        r.mustBeDirectory = path.last == slash || path.suffix(2).elementsEqual("/.".utf8)
        r.walkedThrough = walked
        return r
    }

    /// Where a list of components (from the root) lies.
    static func place(of parts: [PathBytes]) throws(Errno) -> ResolvedPath {
        guard let first = parts.first else { return ResolvedPath(place: .directory) }
        let rest = PathBytes(parts.dropFirst().joined(separator: [slash]))
        switch first {
        case Array("proc".utf8):
            let names = parts.dropFirst().map { p in p.allSatisfy { $0 < 0x80 } ? p.displayed : "\u{FFFD}" }
            return ResolvedPath(place: .proc(names))
        case Array("tmp".utf8): return ResolvedPath(place: .mount(.tmp, rest))
        case Array("rom".utf8): return ResolvedPath(place: .mount(.rom, rest))
        case Array("data".utf8): return ResolvedPath(place: .mount(.data, rest))
        case Array("dev".utf8):
            if parts.count >= 2 && parts[1] == Array("shm".utf8) {
                return ResolvedPath(place: .mount(.devShm, PathBytes(parts.dropFirst(2).joined(separator: [slash]))))
            }
            return parts.count == 1 ? ResolvedPath(place: .directory) : ResolvedPath(place: .mount(.dev, rest))
        default: throw .noSuchFileOrDirectory
        }
    }

    /// Allocates an inode number on `mount` and stores the inode.
    mutating func makeInode(_ kind: Inode.Kind, on mount: MountPoint, path: String) -> Int {
        let n = nextInodeNumber[mount, default: 2]
        nextInodeNumber[mount] = n + 1
        return inodes.insert(Inode(kind: kind, mount: mount, number: n, path: path))
    }
}
