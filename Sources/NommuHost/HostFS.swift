// SPDX-License-Identifier: Apache-2.0
package import NommuBase

#if canImport(Glibc)
    import Glibc
#endif

/// The host calls behind `/data`, the model's disk filesystem over a real host directory.
/// An inode holds one host descriptor while it lives (so open files outlive their names,
/// as on a disk); failures come back as the host's errno. Each call asks the task's
/// `HostFaultPlan` first, so tests can make any of them fail. Paths are bytes, given to the
/// host exactly as the caller gave them (no decoding).
package enum HostFS {
    /// What is at a host path.
    package struct Status {
        package var isRegular: Bool
        package var isDirectory: Bool
        package var size: Int
        package var inode: UInt64
    }

    /// Runs `body` with the path's bytes as a C string.
    static func withCPath<R>(_ path: [UInt8], _ body: (UnsafePointer<CChar>) -> R) -> R {
        (path + [0]).withUnsafeBytes { body($0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
    }

    /// `stat`, or nil when nothing is there. - Throws: the host's errno for other failures.
    package static func status(_ path: [UInt8]) throws(Errno) -> Status? {
        try HostFaultPlan.check(.status)
        var st = stat()
        switch valueOrErrno({ withCPath(path) { stat($0, &st) } }) {
        case .success: break
        case .failure(let e) where e == .noSuchFileOrDirectory: return nil
        case .failure(let e): throw e
        }
        let type = st.st_mode & S_IFMT
        return Status(
            isRegular: type == S_IFREG, isDirectory: type == S_IFDIR, size: Int(st.st_size), inode: UInt64(st.st_ino))
    }

    /// Creates an empty regular file (O_CREAT | O_EXCL). - Throws: the host's errno.
    package static func create(_ path: [UInt8]) throws(Errno) {
        try HostFaultPlan.check(.create)
        let fd = try retryingInterrupts { withCPath(path) { open($0, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644) } }
        close(fd)
    }

    /// Opens a regular file for the inode's lifetime (read-write, else read-only).
    /// - Throws: the host's errno.
    package static func openFile(_ path: [UInt8]) throws(Errno) -> (CInt, writable: Bool) {
        try HostFaultPlan.check(.open)
        switch valueOrErrno({ withCPath(path) { open($0, O_RDWR | O_CLOEXEC) } }) {
        case .success(let fd): return (fd, true)
        case .failure(let e) where e == .permissionDenied || e == .readOnlyFileSystem:
            return (try retryingInterrupts { withCPath(path) { open($0, O_RDONLY | O_CLOEXEC) } }, false)
        case .failure(let e): throw e
        }
    }

    /// Closes a descriptor from `openFile`.
    package static func closeFile(_ fd: CInt) { close(fd) }

    /// The file's size now.
    package static func size(_ fd: CInt) throws(Errno) -> Int {
        try HostFaultPlan.check(.size)
        var st = stat()
        _ = try retryingInterrupts { fstat(fd, &st) }
        return Int(st.st_size)
    }

    /// Reads up to `count` bytes at `offset` into `buffer`; fewer at end of file.
    /// - Throws: the host's errno.
    package static func read(_ fd: CInt, into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int)
        throws(Errno) -> Int
    {
        try HostFaultPlan.check(.read)
        var done = 0
        while done < count {
            let n = try retryingInterrupts { pread(fd, buffer + done, count - done, off_t(offset + done)) }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Writes `bytes` at `offset`. - Throws: the host's errno (when nothing was written).
    package static func write(_ fd: CInt, _ bytes: [UInt8], at offset: Int) throws(Errno) -> Int {
        try HostFaultPlan.check(.write)
        var done = 0
        while done < bytes.count {
            let result = valueOrErrno {
                bytes.withUnsafeBytes { b in pwrite(fd, b.baseAddress! + done, b.count - done, off_t(offset + done)) }
            }
            switch result {
            case .success(let n): done += n
            case .failure(let e):
                if done > 0 { return done }
                throw e
            }
        }
        return done
    }

    /// `ftruncate`. - Throws: the host's errno.
    package static func truncate(_ fd: CInt, to size: Int) throws(Errno) {
        try HostFaultPlan.check(.truncate)
        _ = try retryingInterrupts { ftruncate(fd, off_t(size)) }
    }

    /// `unlink`. - Throws: the host's errno.
    package static func unlink(_ path: [UInt8]) throws(Errno) {
        try HostFaultPlan.check(.unlink)
        _ = try valueOrErrno(retryOnInterrupt: false, { withCPath(path) { Glibc.unlink($0) } }).get()
    }

    /// Makes a fresh private directory under `$TMPDIR` (or /tmp). - Throws: the host's errno.
    package static func makeTemporaryDirectory() throws(Errno) -> String {
        try HostFaultPlan.check(.temporaryDirectory)
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((base + "/nommu-data-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else { throw Errno.current }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Removes a directory tree (best effort: it is the model's own temporary directory).
    /// Names are bytes: a child named with bytes that are not UTF-8 goes too.
    package static func removeTree(_ path: [UInt8]) {
        guard let dir = withCPath(path, { opendir($0) }) else {
            _ = withCPath(path) { Glibc.unlink($0) }
            return
        }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in [UInt8](raw.prefix { $0 != 0 }) }
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            let child = path + [0x2F] + name
            var st = stat()
            if withCPath(child, { lstat($0, &st) }) == 0 && st.st_mode & S_IFMT == S_IFDIR {
                removeTree(child)
            } else {
                _ = withCPath(child) { Glibc.unlink($0) }
            }
        }
        closedir(dir)
        _ = withCPath(path) { rmdir($0) }
    }

    // MARK: Files the tools read and write (traces, reports, bench output)

    /// The whole of the file at `path`. - Throws: the host's errno (`ENOENT`, `EACCES`,
    /// `EISDIR` for a directory, …).
    package static func contents(of path: String) throws(Errno) -> [UInt8] {
        let fd = try retryingInterrupts { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        var st = stat()
        _ = try retryingInterrupts { fstat(fd, &st) }
        guard st.st_mode & S_IFMT != S_IFDIR else { throw .isDirectory }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(max(0, st.st_size)))
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = try retryingInterrupts {
                chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            }
            if n == 0 { return bytes }
            bytes += chunk[0..<n]
        }
    }

    /// Makes `path` a directory this process can write into: its missing components are
    /// created (`mkdir -p`), and an existing one must be a writable directory.
    /// - Throws: the host's errno (`ENOTDIR` when a component is a file, `EACCES`, `EROFS`, …).
    package static func makeWritableDirectory(_ path: String) throws(Errno) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            prefix += part
            if case .failure(let e) = valueOrErrno({ mkdir(prefix, 0o755) }), e != .fileExists { throw e }
            prefix += "/"
        }
        var st = stat()
        _ = try retryingInterrupts { stat(path, &st) }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw .notDirectory }
        _ = try valueOrErrno(retryOnInterrupt: false, { access(path, W_OK) }).get()
    }

    /// Writes `bytes` to `path` whole or not at all: into a new file beside it, renamed over it.
    /// - Throws: the host's errno.
    package static func writeFile(_ path: String, _ bytes: [UInt8]) throws(Errno) {
        let temporary = path + ".tmp-\(getpid())"
        let fd = try retryingInterrupts { open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        var done = 0
        while done < bytes.count {
            switch valueOrErrno({ bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) } })
            {
            case .success(let n): done += n
            case .failure(let e):
                close(fd)
                _ = Glibc.unlink(temporary)
                throw e
            }
        }
        guard close(fd) == 0 else {
            let e = Errno.current
            _ = Glibc.unlink(temporary)
            throw e
        }
        if case .failure(let e) = valueOrErrno(retryOnInterrupt: false, { rename(temporary, path) }) {
            _ = Glibc.unlink(temporary)
            throw e
        }
    }
}
