// SPDX-License-Identifier: Apache-2.0
internal import CShims
public import NommuBase

/// One large run of real memory taken from the host, the "physical memory" of a
/// simulated no-MMU machine.
///
/// `HostArena` is the single owner of that memory: it is `~Copyable`, and its `deinit`
/// gives the memory back (`munmap` or `free`). Everything above it (the page allocator,
/// the address-space model) borrows addresses inside it and never outlives it.
///
/// The arena reports whether its fresh memory is known to be zero: anonymous `mmap`
/// memory is (the host kernel hands out zero pages lazily), `posix_memalign` memory is
/// not (the C library may recycle freed memory). The page allocator uses this to skip
/// clearing pages nobody has written yet.
public struct HostArena: ~Copyable, @unchecked Sendable {
    /// Where the memory comes from.
    public enum Backing: String, Sendable, CaseIterable, CustomStringConvertible {
        /// `mmap(MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)`; known zero.
        case mmap
        /// `posix_memalign`; not known zero.
        case posixMemalign = "posix_memalign"

        public var description: String { rawValue }
    }

    /// First byte of the arena; aligned as asked.
    public let baseAddress: UnsafeMutableRawPointer
    /// Size of the arena in bytes.
    public let byteCount: Int
    /// The backing it came from.
    public let backing: Backing
    /// Whether every byte was known to be zero when the arena was taken.
    public let isFreshMemoryZero: Bool
    /// Whether `MADV_HUGEPAGE` was asked for and accepted.
    public let usesHugePages: Bool

    private var raw: cshim_arena

    /// The host's page size in bytes.
    public static var hostPageSize: Int { Syscalls.hostPageSize }

    /// Takes `byteCount` bytes from the host.
    ///
    /// - Parameters:
    ///   - byteCount: Bytes to take; a positive multiple of the host page size.
    ///   - alignment: Alignment of the first byte; a power of two, at least the host page size.
    ///   - backing: `.mmap` (default) or `.posixMemalign`.
    ///   - hugePages: With `.mmap`, ask for transparent huge pages (`MADV_HUGEPAGE`).
    /// - Throws: `EINVAL` for a size or alignment outside those rules; `ENOMEM` (or
    ///   whatever the host reported) when the host refuses. Nothing is held on failure.
    public init(
        byteCount: Int, alignment: Int = HostArena.hostPageSize, backing: Backing = .mmap, hugePages: Bool = false
    ) throws(Errno) {
        let page = Self.hostPageSize
        guard byteCount > 0, byteCount % page == 0, alignment >= page, alignment & (alignment - 1) == 0 else {
            throw .invalidArgument
        }
        try HostFaultPlan.check(.arena)
        switch Syscalls.acquire(bytes: byteCount, alignment: alignment, source: backing, hugePages: hugePages) {
        case .failure(let e):
            throw e
        case .success(let a):
            guard let base = a.base else { preconditionFailure("cshim_arena_acquire succeeded without a base") }
            raw = a
            baseAddress = base
            self.byteCount = byteCount
            self.backing = backing
            isFreshMemoryZero = a.is_zero != 0
            usesHugePages = a.huge_pages != 0
        }
    }

    /// The whole arena as bytes. Valid while the arena lives.
    public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: baseAddress, count: byteCount)
    }

    deinit {
        // munmap of a range we mapped cannot fail short of a bug (EINVAL would mean the
        // bookkeeping is wrong): treat it as one.
        var owned = raw
        if let e = Syscalls.release(&owned) {
            preconditionFailure("releasing the host arena failed: \(e.debugDescription)")
        }
    }
}
