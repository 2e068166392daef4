// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension Errno: CustomStringConvertible, CustomDebugStringConvertible {
    /// The C library's message for this value, e.g. "Cannot allocate memory".
    public var description: String {
        guard let cString = strerror(rawValue) else { return "errno \(rawValue)" }
        return String(cString: cString)
    }

    /// The C macro name and the message, e.g. `ENOMEM (Cannot allocate memory)`.
    public var debugDescription: String {
        "\(symbol) (\(description))"
    }

    /// The C macro name (`"ENOMEM"`), or `"errno N"` for values the model never produces.
    public var symbol: String {
        switch self {
        case .notPermitted: "EPERM"
        case .noSuchFileOrDirectory: "ENOENT"
        case .noSuchProcess: "ESRCH"
        case .interrupted: "EINTR"
        case .ioError: "EIO"
        case .execFormatError: "ENOEXEC"
        case .badFileDescriptor: "EBADF"
        case .resourceTemporarilyUnavailable: "EAGAIN"
        case .noMemory: "ENOMEM"
        case .permissionDenied: "EACCES"
        case .badAddress: "EFAULT"
        case .resourceBusy: "EBUSY"
        case .fileExists: "EEXIST"
        case .operationNotSupportedByDevice: "ENODEV"
        case .notDirectory: "ENOTDIR"
        case .isDirectory: "EISDIR"
        case .invalidArgument: "EINVAL"
        case .tooManyOpenFiles: "EMFILE"
        case .textFileBusy: "ETXTBSY"
        case .fileTooLarge: "EFBIG"
        case .noSpace: "ENOSPC"
        case .illegalSeek: "ESPIPE"
        case .readOnlyFileSystem: "EROFS"
        case .fileNameTooLong: "ENAMETOOLONG"
        case .noFunction: "ENOSYS"
        case .timedOut: "ETIMEDOUT"
        case .overflow: "EOVERFLOW"
        case .notSocket: "ENOTSOCK"
        case .brokenPipe: "EPIPE"
        case .noSuchDeviceOrAddress: "ENXIO"
        case .socketNotConnected: "ENOTCONN"
        case .addressFamilyNotSupported: "EAFNOSUPPORT"
        case .protocolNotSupported: "EPROTONOSUPPORT"
        case .identifierRemoved: "EIDRM"
        case .directoryNotEmpty: "ENOTEMPTY"
        default: "errno \(rawValue)"
        }
    }
}
