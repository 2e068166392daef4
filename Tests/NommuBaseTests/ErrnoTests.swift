// SPDX-License-Identifier: Apache-2.0
import NommuBase
import Testing
#if canImport(Glibc)
    import Glibc
#endif

@Suite("Errno")
struct ErrnoTests {
    static let table: [(Errno, CInt, String)] = [
        (.notPermitted, EPERM, "EPERM"), (.noSuchFileOrDirectory, ENOENT, "ENOENT"),
        (.noSuchProcess, ESRCH, "ESRCH"), (.interrupted, EINTR, "EINTR"), (.ioError, EIO, "EIO"),
        (.execFormatError, ENOEXEC, "ENOEXEC"), (.badFileDescriptor, EBADF, "EBADF"),
        (.resourceTemporarilyUnavailable, EAGAIN, "EAGAIN"), (.noMemory, ENOMEM, "ENOMEM"),
        (.permissionDenied, EACCES, "EACCES"), (.badAddress, EFAULT, "EFAULT"),
        (.resourceBusy, EBUSY, "EBUSY"), (.fileExists, EEXIST, "EEXIST"),
        (.operationNotSupportedByDevice, ENODEV, "ENODEV"), (.notDirectory, ENOTDIR, "ENOTDIR"),
        (.isDirectory, EISDIR, "EISDIR"), (.invalidArgument, EINVAL, "EINVAL"),
        (.tooManyOpenFiles, EMFILE, "EMFILE"), (.textFileBusy, ETXTBSY, "ETXTBSY"),
        (.fileTooLarge, EFBIG, "EFBIG"), (.noSpace, ENOSPC, "ENOSPC"), (.illegalSeek, ESPIPE, "ESPIPE"),
        (.readOnlyFileSystem, EROFS, "EROFS"), (.fileNameTooLong, ENAMETOOLONG, "ENAMETOOLONG"),
        (.noFunction, ENOSYS, "ENOSYS"), (.timedOut, ETIMEDOUT, "ETIMEDOUT"),
        (.overflow, EOVERFLOW, "EOVERFLOW"), (.notSocket, ENOTSOCK, "ENOTSOCK"),
        (.brokenPipe, EPIPE, "EPIPE"), (.noSuchDeviceOrAddress, ENXIO, "ENXIO"),
        (.socketNotConnected, ENOTCONN, "ENOTCONN"), (.addressFamilyNotSupported, EAFNOSUPPORT, "EAFNOSUPPORT"),
        (.protocolNotSupported, EPROTONOSUPPORT, "EPROTONOSUPPORT"), (.identifierRemoved, EIDRM, "EIDRM"),
        (.directoryNotEmpty, ENOTEMPTY, "ENOTEMPTY"),
    ]

    @Test("each member equals the C library's macro and names it", arguments: 0..<table.count)
    func member(_ i: Int) {
        let (e, raw, symbol) = Self.table[i]
        #expect(e.rawValue == raw)
        #expect(e.symbol == symbol)
        #expect(Errno(rawValue: raw) == e)
        #expect(e.debugDescription.hasPrefix(symbol + " ("))
    }

    @Test func membersAreDistinct() {
        #expect(Set(Self.table.map(\.0)).count == Self.table.count)
    }

    @Test func unknownValuesRoundTrip() {
        let e = Errno(rawValue: 4242)
        #expect(e.rawValue == 4242)
        #expect(e.symbol == "errno 4242")
    }

    @Test func descriptionIsTheCLibraryMessage() {
        #expect(Errno.noMemory.description == String(cString: strerror(ENOMEM)))
    }
}

@Suite("Order and PageFrameNumber")
struct OrderTests {
    @Test(
        "get_order in pages",
        arguments: [(1, 0), (2, 1), (3, 2), (4, 2), (5, 3), (7, 3), (8, 3), (9, 4), (1024, 10), (1025, 11)])
    func covering(_ pages: Int, _ order: Int) {
        #expect(Order.covering(pages: pages) == Order(order))
        #expect(Order(order).pages >= pages)
        if order > 0 { #expect(Order(order - 1).pages < pages) }
    }

    @Test func comparisons() {
        #expect(Order(1) < Order(2))
        #expect(PageFrameNumber(3) < PageFrameNumber(4))
        #expect(Order(10).pages == 1024)
        #expect("\(PageFrameNumber(7))" == "pfn 7")
    }

    /// CI sets NOMMU_EXPECT_CHECKS (`none`, `internal`, `expensive`) so that a "checked" run
    /// that silently built without the defines fails instead of passing unchecked.
    @Test func checkLevelIsWhatCIAskedFor() {
        guard let raw = getenv("NOMMU_EXPECT_CHECKS") else { return }
        let expected = String(cString: raw)
        #expect(ConsistencyChecks.internalChecksEnabled == (expected == "internal" || expected == "expensive"))
        #expect(ConsistencyChecks.expensiveChecksEnabled == (expected == "expensive"))
    }

    @Test func checkLevelsAreReported() {
        #expect(ConsistencyChecks.uninitializedPoison != ConsistencyChecks.freedPoison)
        #expect(ConsistencyChecks.uninitializedPoison != 0 && ConsistencyChecks.freedPoison != 0)
        if ConsistencyChecks.expensiveChecksEnabled { #expect(ConsistencyChecks.internalChecksEnabled) }
    }
}
