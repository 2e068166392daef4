// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// An error number, one-to-one with the C library's `errno` values.
///
/// nommu's single error type. The raw value is the C constant (taken from the C library's
/// headers, never a literal), so a value crosses the C ABI unchanged. The named members
/// are the errors the model can produce, spelled as swift-system spells them; each says
/// which no-MMU condition raises it. Any other value can still be carried (host failures
/// pass through as they came).
@frozen
public struct Errno: RawRepresentable, Error, Hashable, Sendable {
    /// The C `errno` value.
    public let rawValue: CInt

    /// Wraps a C `errno` value.
    @inlinable
    public init(rawValue: CInt) { self.rawValue = rawValue }

    /// `EPERM`: operation not permitted (mremap of a shareable mapping, `PROT_EXEC` on a
    /// noexec mount, a futex on device memory).
    public static var notPermitted: Errno { Errno(rawValue: EPERM) }
    /// `ENOENT`: no such file or directory.
    public static var noSuchFileOrDirectory: Errno { Errno(rawValue: ENOENT) }
    /// `ESRCH`: no such process.
    public static var noSuchProcess: Errno { Errno(rawValue: ESRCH) }
    /// `EINTR`: interrupted (a futex wait woken by a signal-equivalent).
    public static var interrupted: Errno { Errno(rawValue: EINTR) }
    /// `EIO`: input/output error from a host file.
    public static var ioError: Errno { Errno(rawValue: EIO) }
    /// `ENOEXEC`: not an executable the loader accepts.
    public static var execFormatError: Errno { Errno(rawValue: ENOEXEC) }
    /// `EBADF`: not an open descriptor.
    public static var badFileDescriptor: Errno { Errno(rawValue: EBADF) }
    /// `EAGAIN`: try again (a futex value that did not match).
    public static var resourceTemporarilyUnavailable: Errno { Errno(rawValue: EAGAIN) }
    /// `ENOMEM`: no contiguous run of pages large enough, an order above the allocator's
    /// maximum, or a host allocation that failed.
    public static var noMemory: Errno { Errno(rawValue: ENOMEM) }
    /// `EACCES`: permission denied (a mapping the descriptor's open mode does not allow).
    public static var permissionDenied: Errno { Errno(rawValue: EACCES) }
    /// `EFAULT`: bad address (a futex outside every mapping of the process).
    public static var badAddress: Errno { Errno(rawValue: EFAULT) }
    /// `EBUSY`: resource busy.
    public static var resourceBusy: Errno { Errno(rawValue: EBUSY) }
    /// `EEXIST`: file exists.
    public static var fileExists: Errno { Errno(rawValue: EEXIST) }
    /// `ENODEV`: the backing cannot be mapped this way.
    public static var operationNotSupportedByDevice: Errno { Errno(rawValue: ENODEV) }
    /// `ENOTDIR`: not a directory.
    public static var notDirectory: Errno { Errno(rawValue: ENOTDIR) }
    /// `EISDIR`: is a directory.
    public static var isDirectory: Errno { Errno(rawValue: EISDIR) }
    /// `EINVAL`: invalid argument (a bad length, flags, an address that is not the start of
    /// an allocated run, a double free, a negative sysctl).
    public static var invalidArgument: Errno { Errno(rawValue: EINVAL) }
    /// `EMFILE`: too many open files in the process.
    public static var tooManyOpenFiles: Errno { Errno(rawValue: EMFILE) }
    /// `ETXTBSY`: text file busy (shrinking a ramfs file under a shared mapping).
    public static var textFileBusy: Errno { Errno(rawValue: ETXTBSY) }
    /// `EFBIG`: file too large.
    public static var fileTooLarge: Errno { Errno(rawValue: EFBIG) }
    /// `ENOSPC`: no space left on device.
    public static var noSpace: Errno { Errno(rawValue: ENOSPC) }
    /// `ESPIPE`: illegal seek.
    public static var illegalSeek: Errno { Errno(rawValue: ESPIPE) }
    /// `EROFS`: read-only file system.
    public static var readOnlyFileSystem: Errno { Errno(rawValue: EROFS) }
    /// `ENAMETOOLONG`: file name too long.
    public static var fileNameTooLong: Errno { Errno(rawValue: ENAMETOOLONG) }
    /// `ENOSYS`: function not implemented (mprotect, msync, mlock, madvise… under no-MMU).
    public static var noFunction: Errno { Errno(rawValue: ENOSYS) }
    /// `ETIMEDOUT`: a futex wait that timed out.
    public static var timedOut: Errno { Errno(rawValue: ETIMEDOUT) }
    /// `EOVERFLOW`: value too large (page offset plus length wraps).
    public static var overflow: Errno { Errno(rawValue: EOVERFLOW) }
    /// `ENOTSOCK`: not a socket.
    public static var notSocket: Errno { Errno(rawValue: ENOTSOCK) }

    /// `EPIPE`: a write to a pipe or FIFO with no reader left.
    public static var brokenPipe: Errno { Errno(rawValue: EPIPE) }
    /// `ENXIO`: no such device or address.
    public static var noSuchDeviceOrAddress: Errno { Errno(rawValue: ENXIO) }
    /// `ENOTCONN`: a read or write on a socket that is not connected.
    public static var socketNotConnected: Errno { Errno(rawValue: ENOTCONN) }
    /// `EAFNOSUPPORT`: `socket` with an address family the model does not have.
    public static var addressFamilyNotSupported: Errno { Errno(rawValue: EAFNOSUPPORT) }
    /// `EPROTONOSUPPORT`: `socket` with a protocol that does not fit the family and type.
    public static var protocolNotSupported: Errno { Errno(rawValue: EPROTONOSUPPORT) }
    /// `EIDRM`: a SysV shared-memory segment that has been removed.
    public static var identifierRemoved: Errno { Errno(rawValue: EIDRM) }
    /// `ENOTEMPTY`: a directory that is not empty.
    public static var directoryNotEmpty: Errno { Errno(rawValue: ENOTEMPTY) }
}
