// SPDX-License-Identifier: Apache-2.0
public import NommuBase
#if canImport(Glibc)
    import Glibc
#endif

/// An open file description. This issue has a read-only procfs and one writable sysctl;
/// files and devices (with their mapping capabilities) join in the next issue.
struct OpenFile {
    enum Kind {
        /// A generated text file; its bytes are taken when it is opened (as seq_file does on
        /// the first read).
        case text([UInt8])
        /// `/proc/sys/vm/nr_trim_pages`: reads the current value, writes set it.
        case nrTrimPages
        /// A procfs directory: open for reading, not readable as a file.
        case directory
    }

    var kind: Kind
    var offset = 0
    var readable: Bool
    var writable: Bool
}

/// Open flags, one-to-one with `O_*` (the subset the model honours).
public struct OpenFlags: OptionSet, Sendable, Hashable {
    public let rawValue: CInt
    public init(rawValue: CInt) { self.rawValue = rawValue }
    /// `O_RDONLY` (0).
    public static let readOnly: OpenFlags = []
    /// `O_WRONLY`.
    public static let writeOnly = OpenFlags(rawValue: O_WRONLY)
    /// `O_RDWR`.
    public static let readWrite = OpenFlags(rawValue: O_RDWR)
    /// `O_ACCMODE`.
    public static let accessModeMask: CInt = O_ACCMODE
}

/// Descriptors a process may hold open (RLIMIT_NOFILE's usual soft limit).
let maxOpenFiles: Int32 = 1024

extension Process {
    /// `open(path, flags)` on the model's file tree (this issue: `/proc`).
    /// - Throws: `ENAMETOOLONG` for a path over PATH_MAX or a component over NAME_MAX;
    ///   `ENOENT` for a path that does not exist (relative paths included: there is no
    ///   working directory), `/proc/<pid>` of no process, and `vm.max_map_count` (which no
    ///   no-MMU kernel has); `EACCES` for writing a read-only file; `EISDIR` for writing a
    ///   directory; `EINVAL` for an access mode of 3; `EMFILE` past 1024 descriptors;
    ///   `ESRCH` when the process has exited.
    /// - Returns: The lowest free descriptor.
    public func open(_ path: String, _ flags: OpenFlags = .readOnly) throws(Errno) -> CInt {
        try system.open(pid, path, flags)
    }

    /// `read(fd, buf, count)`: up to `count` bytes from the file's offset.
    /// - Throws: `EBADF` for a descriptor not open for reading; `EISDIR` for a directory.
    public func read(_ fd: CInt, count: Int) throws(Errno) -> [UInt8] {
        try system.read(pid, fd, count: count)
    }

    /// `write(fd, buf)`: this only writable file is `/proc/sys/vm/nr_trim_pages`.
    /// - Throws: `EBADF` for a descriptor not open for writing; `EINVAL` for a value that
    ///   is not a non-negative integer (nothing changes).
    /// - Returns: Bytes written.
    public func write(_ fd: CInt, _ bytes: [UInt8]) throws(Errno) -> Int {
        try system.write(pid, fd, bytes)
    }

    /// `close(fd)`. - Throws: `EBADF` for a descriptor that is not open.
    public func close(_ fd: CInt) throws(Errno) {
        try system.close(pid, fd)
    }

    /// Reads a whole file: open, read to the end, close.
    public func readFile(_ path: String) throws(Errno) -> String {
        let fd = try open(path)
        defer { try? close(fd) }
        var out: [UInt8] = []
        while true {
            let chunk = try read(fd, count: 4096)
            if chunk.isEmpty { break }
            out += chunk
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension System {
    func open(_ pid: Int32, _ path: String, _ flags: OpenFlags) throws(Errno) -> CInt {
        let mode = flags.rawValue & OpenFlags.accessModeMask
        guard mode != 3 else { throw .invalidArgument }
        let wantRead = mode == O_RDONLY || mode == O_RDWR
        let wantWrite = mode == O_WRONLY || mode == O_RDWR
        guard path.utf8.count < Int(PATH_MAX) else { throw .fileNameTooLong }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard !parts.contains(where: { $0.utf8.count > Int(NAME_MAX) }) else { throw .fileNameTooLong }
        try ensureAlive(pid)
        guard path.hasPrefix("/"), parts.first == "proc" else { throw .noSuchFileOrDirectory }
        // Resolve /proc/self and /proc/<pid>.
        var rest = parts.dropFirst().map(String.init)
        var subject: Int32? = nil
        if let first = rest.first, first == "self" || Int32(first) != nil {
            subject = first == "self" ? pid : Int32(first)!
            rest.removeFirst()
        }
        let kind: OpenFile.Kind
        var writable = false
        if let who = subject {
            switch rest {
            case []:
                guard processAlive(who) else { throw .noSuchFileOrDirectory }
                kind = .directory
            case ["maps"]:
                guard let text = procPIDMaps(who) else { throw .noSuchFileOrDirectory }
                kind = .text(Array(text.utf8))
            case ["status"]:
                guard let text = procPIDStatus(who) else { throw .noSuchFileOrDirectory }
                kind = .text(Array(text.utf8))
            default:
                throw .noSuchFileOrDirectory
            }
        } else {
            switch rest {
            case [], ["sys"], ["sys", "vm"]: kind = .directory
            case ["maps"]: kind = .text(Array(procMaps().utf8))
            case ["meminfo"]: kind = .text(Array(procMeminfo().utf8))
            case ["buddyinfo"]: kind = .text(Array(procBuddyinfo().utf8))
            case ["sys", "vm", "nr_trim_pages"]:
                kind = .nrTrimPages
                writable = true
            default: throw .noSuchFileOrDirectory
            }
        }
        if case .directory = kind, wantWrite { throw .isDirectory }
        guard !wantWrite || writable else { throw .permissionDenied }
        let file = OpenFile(kind: kind, readable: wantRead, writable: wantWrite)
        return try state.withLock { (s: inout ModelState) throws(Errno) -> CInt in
            guard s.processes[pid] != nil else { throw .noSuchProcess }
            var table = s.files[pid, default: [:]]
            var fd: Int32 = 0
            while table[fd] != nil { fd += 1 }
            guard fd < maxOpenFiles else { throw .tooManyOpenFiles }
            table[fd] = file
            s.files[pid] = table
            return fd
        }
    }

    func processAlive(_ pid: Int32) -> Bool { state.withLock { $0.processes[pid] != nil } }

    func read(_ pid: Int32, _ fd: CInt, count: Int) throws(Errno) -> [UInt8] {
        guard count >= 0 else { throw .invalidArgument }
        let (kind, offset) = try state.withLock { (s: inout ModelState) throws(Errno) -> (OpenFile.Kind, Int) in
            guard s.processes[pid] != nil else { throw .noSuchProcess }
            guard let f = s.files[pid]?[fd], f.readable else { throw .badFileDescriptor }
            return (f.kind, f.offset)
        }
        let bytes: [UInt8]
        switch kind {
        case .directory: throw .isDirectory
        case .text(let b): bytes = b
        case .nrTrimPages: bytes = Array("\(nrTrimPages)\n".utf8)
        }
        let start = min(offset, bytes.count)
        let chunk = Array(bytes[start..<min(bytes.count, start + count)])
        state.withLock { s in s.files[pid]?[fd]?.offset = start + chunk.count }
        return chunk
    }

    func write(_ pid: Int32, _ fd: CInt, _ bytes: [UInt8]) throws(Errno) -> Int {
        let kind = try state.withLock { (s: inout ModelState) throws(Errno) -> OpenFile.Kind in
            guard s.processes[pid] != nil else { throw .noSuchProcess }
            guard let f = s.files[pid]?[fd], f.writable else { throw .badFileDescriptor }
            return f.kind
        }
        guard case .nrTrimPages = kind else { throw .badFileDescriptor }
        // proc_dointvec_minmax: optional blanks, an optional sign, digits, optional blanks
        // or a newline; below the minimum (0) is EINVAL and changes nothing.
        let text = String(decoding: bytes, as: UTF8.self).trimmingBlanks()
        guard let value = Int(text), value >= 0, value <= Int(Int32.max) else { throw .invalidArgument }
        try setNrTrimPages(value)
        return bytes.count
    }

    func close(_ pid: Int32, _ fd: CInt) throws(Errno) {
        try state.withLock { (s: inout ModelState) throws(Errno) in
            guard s.processes[pid] != nil else { throw .noSuchProcess }
            guard s.files[pid]?.removeValue(forKey: fd) != nil else { throw .badFileDescriptor }
        }
    }

    /// Whether `fd` is open in `pid` (for mmap's descriptor lookup).
    func isOpen(_ pid: Int32, _ fd: CInt) -> Bool { state.withLock { $0.files[pid]?[fd] != nil } }
}

extension String {
    fileprivate func trimmingBlanks() -> String {
        let blanks: Set<Character> = [" ", "\t", "\n"]
        var s = Substring(self)
        while let c = s.first, blanks.contains(c) { s.removeFirst() }
        while let c = s.last, blanks.contains(c) { s.removeLast() }
        return String(s)
    }
}
