// SPDX-License-Identifier: Apache-2.0
import NommuBase
#if canImport(Glibc)
    import Glibc
#endif

/// The host calls behind `/data`, the disk filesystem over a real host directory. An
/// inode holds one host descriptor while it lives (so open files outlive their names, as
/// on a disk); failures come back as the host's errno. Each call asks the task's
/// `HostFaultPlan` first, so tests can make any of them fail.
enum HostFS {
    /// What is at a host path.
    struct Status {
        var isRegular: Bool
        var isDirectory: Bool
        var size: Int
        var inode: UInt64
    }

    static var lastErrno: Errno { Errno(rawValue: errno) }

    /// Runs `body` with the path's bytes as a C string (no decoding: the host sees the
    /// exact bytes the caller gave).
    static func withCPath<R>(_ path: PathBytes, _ body: (UnsafePointer<CChar>) -> R) -> R {
        (path + [0]).withUnsafeBytes { body($0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
    }

    /// `stat`, or nil when nothing is there. - Throws: the host's errno for other failures.
    static func status(_ path: PathBytes) throws(Errno) -> Status? {
        try HostFaultPlan.check(.status)
        var st = stat()
        if withCPath(path, { stat($0, &st) }) != 0 {
            if errno == ENOENT { return nil }
            throw lastErrno
        }
        let type = st.st_mode & S_IFMT
        return Status(
            isRegular: type == S_IFREG, isDirectory: type == S_IFDIR, size: Int(st.st_size), inode: UInt64(st.st_ino))
    }

    /// Creates an empty regular file (O_CREAT | O_EXCL). - Throws: the host's errno.
    static func create(_ path: PathBytes) throws(Errno) {
        try HostFaultPlan.check(.create)
        let fd = withCPath(path) { Glibc.open($0, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644) }
        guard fd >= 0 else { throw lastErrno }
        Glibc.close(fd)
    }

    /// Opens a regular file for the inode's lifetime (read-write, else read-only).
    /// - Throws: the host's errno.
    static func openFile(_ path: PathBytes) throws(Errno) -> (CInt, writable: Bool) {
        try HostFaultPlan.check(.open)
        let fd = withCPath(path) { Glibc.open($0, O_RDWR | O_CLOEXEC) }
        if fd >= 0 { return (fd, true) }
        guard errno == EACCES || errno == EROFS else { throw lastErrno }
        let ro = withCPath(path) { Glibc.open($0, O_RDONLY | O_CLOEXEC) }
        guard ro >= 0 else { throw lastErrno }
        return (ro, false)
    }

    /// Closes a descriptor from `openFile`.
    static func closeFile(_ fd: CInt) { Glibc.close(fd) }

    /// The file's size now.
    static func size(_ fd: CInt) throws(Errno) -> Int {
        try HostFaultPlan.check(.size)
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw lastErrno }
        return Int(st.st_size)
    }

    /// Reads up to `count` bytes at `offset` into `buffer`; fewer at end of file.
    /// - Throws: the host's errno.
    static func read(_ fd: CInt, into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int) throws(Errno)
        -> Int
    {
        try HostFaultPlan.check(.read)
        var done = 0
        while done < count {
            let n = pread(fd, buffer + done, count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw lastErrno
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Writes `bytes` at `offset`. - Throws: the host's errno (when nothing was written).
    static func write(_ fd: CInt, _ bytes: [UInt8], at offset: Int) throws(Errno) -> Int {
        try HostFaultPlan.check(.write)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { b in pwrite(fd, b.baseAddress! + done, b.count - done, off_t(offset + done))
            }
            if n < 0 {
                if errno == EINTR { continue }
                if done > 0 { return done }
                throw lastErrno
            }
            done += n
        }
        return done
    }

    /// `ftruncate`. - Throws: the host's errno.
    static func truncate(_ fd: CInt, to size: Int) throws(Errno) {
        try HostFaultPlan.check(.truncate)
        guard Glibc.ftruncate(fd, off_t(size)) == 0 else { throw lastErrno }
    }

    /// `unlink`. - Throws: the host's errno.
    static func unlink(_ path: PathBytes) throws(Errno) {
        try HostFaultPlan.check(.unlink)
        guard withCPath(path, { Glibc.unlink($0) }) == 0 else { throw lastErrno }
    }

    /// Makes a fresh private directory under `$TMPDIR` (or /tmp). - Throws: the host's errno.
    static func makeTemporaryDirectory() throws(Errno) -> String {
        try HostFaultPlan.check(.temporaryDirectory)
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((base + "/nommu-data-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else { throw lastErrno }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Removes a directory tree (best effort: it is the model's own temporary directory).
    /// Names are bytes: a child named with bytes that are not UTF-8 goes too.
    static func removeTree(_ path: PathBytes) {
        guard let dir = withCPath(path, { opendir($0) }) else {
            _ = withCPath(path) { Glibc.unlink($0) }
            return
        }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in PathBytes(raw.prefix { $0 != 0 }) }
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
}
