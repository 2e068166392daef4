// SPDX-License-Identifier: Apache-2.0
internal import CShims
#if canImport(Glibc)
    import Glibc
#endif

/// Memory protection, one-to-one with `PROT_*`.
public struct Protection: OptionSet, Sendable, Hashable {
    public let rawValue: CInt
    public init(rawValue: CInt) { self.rawValue = rawValue }

    /// `PROT_NONE`.
    public static let none: Protection = []
    /// `PROT_READ`.
    public static let read = Protection(rawValue: PROT_READ)
    /// `PROT_WRITE`.
    public static let write = Protection(rawValue: PROT_WRITE)
    /// `PROT_EXEC`.
    public static let exec = Protection(rawValue: PROT_EXEC)
}

/// `mmap` flags, one-to-one with `MAP_*` (Linux values).
public struct MapFlags: OptionSet, Sendable, Hashable {
    public let rawValue: CInt
    public init(rawValue: CInt) { self.rawValue = rawValue }

    /// `MAP_SHARED`.
    public static let shared = MapFlags(rawValue: MAP_SHARED)
    /// `MAP_PRIVATE`.
    public static let `private` = MapFlags(rawValue: MAP_PRIVATE)
    /// `MAP_SHARED_VALIDATE` (type 3; refused with `EINVAL` on no-MMU).
    public static let sharedValidate = MapFlags(rawValue: MAP_SHARED_VALIDATE)
    /// `MAP_FIXED` (always `EINVAL` on no-MMU).
    public static let fixed = MapFlags(rawValue: MAP_FIXED)
    /// `MAP_ANONYMOUS`.
    public static let anonymous = MapFlags(rawValue: MAP_ANONYMOUS)
    /// `MAP_GROWSDOWN` (recorded as `VM_GROWSDOWN`; stacks never grow on no-MMU).
    public static let growsDown = MapFlags(rawValue: MAP_GROWSDOWN)
    /// `MAP_LOCKED` (recorded as `VM_LOCKED`).
    public static let locked = MapFlags(rawValue: MAP_LOCKED)
    /// `MAP_NORESERVE` (ignored).
    public static let noReserve = MapFlags(rawValue: MAP_NORESERVE)
    /// `MAP_POPULATE` (ignored: everything is populated).
    public static let populate = MapFlags(rawValue: MAP_POPULATE)
    /// `MAP_UNINITIALIZED`: skip clearing, honoured only when the system allows
    /// uninitialised mappings (CONFIG_MMAP_ALLOW_UNINITIALIZED); otherwise ignored.
    public static let uninitialized = MapFlags(rawValue: CInt(CSHIM_MAP_UNINITIALIZED))

    /// `MAP_TYPE`: the mask of the mapping type (0x0f).
    public static let typeMask: CInt = 0x0f
}

/// `mremap` flags, one-to-one with `MREMAP_*`.
public struct RemapFlags: OptionSet, Sendable, Hashable {
    public let rawValue: CInt
    public init(rawValue: CInt) { self.rawValue = rawValue }

    /// `MREMAP_MAYMOVE` (accepted; nothing ever moves on no-MMU).
    public static let mayMove = RemapFlags(rawValue: CInt(CSHIM_MREMAP_MAYMOVE))
    /// `MREMAP_FIXED` (`EINVAL` unless the new address is the old one).
    public static let fixed = RemapFlags(rawValue: CInt(CSHIM_MREMAP_FIXED))
    /// `MREMAP_DONTUNMAP` (not checked on no-MMU).
    public static let dontUnmap = RemapFlags(rawValue: CInt(CSHIM_MREMAP_DONTUNMAP))
}

/// The kernel's `vm_flags` bits the model records (values of `include/linux/mm.h`, !MMU).
struct VMFlags: OptionSet, Hashable {
    let rawValue: UInt
    static let read = VMFlags(rawValue: 0x0000_0001)
    static let write = VMFlags(rawValue: 0x0000_0002)
    static let exec = VMFlags(rawValue: 0x0000_0004)
    static let shared = VMFlags(rawValue: 0x0000_0008)
    static let mayRead = VMFlags(rawValue: 0x0000_0010)
    static let mayWrite = VMFlags(rawValue: 0x0000_0020)
    static let mayExec = VMFlags(rawValue: 0x0000_0040)
    static let mayShare = VMFlags(rawValue: 0x0000_0080)
    static let growsDown = VMFlags(rawValue: 0x0000_0100)
    /// VM_MAYOVERLAY: on !MMU it reuses the VM_UFFD_MISSING bit (v6.3+).
    static let mayOverlay = VMFlags(rawValue: 0x0000_0200)
    static let locked = VMFlags(rawValue: 0x0000_2000)
    /// VM_MAPPED_COPY = VM_ARCH_1 on !MMU: the region owns a private copy of its pages.
    static let mappedCopy = VMFlags(rawValue: 0x0100_0000)

    /// `calc_vm_prot_bits`.
    init(_ p: Protection) {
        var f: VMFlags = []
        if p.contains(.read) { f.insert(.read) }
        if p.contains(.write) { f.insert(.write) }
        if p.contains(.exec) { f.insert(.exec) }
        self = f
    }

    init(rawValue: UInt) { self.rawValue = rawValue }

    /// A region or mapping other mappers may reuse (v6.3+: `is_nommu_shared_mapping`).
    var isShareable: Bool { !intersection([.mayShare, .mayOverlay]).isEmpty }
}

/// An address in the simulated machine's (single, flat) address space: a real address in
/// the host arena, since a no-MMU process sees physical memory directly.
@frozen
public struct VirtualAddress: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt
    @inlinable public init(rawValue: UInt) { self.rawValue = rawValue }
    @inlinable public init(_ value: UInt) { self.rawValue = value }

    @inlinable public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    /// The address as a pointer, for reading and writing the mapped memory. Valid while
    /// the mapping lives.
    public var pointer: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: rawValue) }

    public var description: String {
        let hex = String(rawValue, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - hex.count)) + hex
    }
}
