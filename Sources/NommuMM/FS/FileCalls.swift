// SPDX-License-Identifier: Apache-2.0
public import NommuBase
import NommuHost
import PageAllocator
#if canImport(Glibc)
    import Glibc
#endif

extension Process {
    /// `open(path, flags)` on the model's tree (ABI.md): `/dev/shm` and `/tmp` (tmpfs),
    /// `/rom` (romfs), `/data` (the host directory), `/dev` (devices), `/proc`.
    /// - Throws: `EMFILE` past 1024 descriptors; `ENAMETOOLONG` for a path over PATH_MAX or
    ///   a component over NAME_MAX; `ENOENT` for a path that does not exist (relative
    ///   paths included: there is no working directory) and without `O_CREAT`;
    ///   `ENOTDIR` for a file used as a directory; `EEXIST` for `O_CREAT | O_EXCL` on an
    ///   existing name; `EISDIR` for writing a directory; `EROFS` for writing `/rom`;
    ///   `EACCES` for writing a read-only procfs file or creating in `/dev`; `EPERM` for
    ///   writing an append-only file without `O_APPEND`; `ETXTBSY` for `O_TRUNC` of a
    ///   tmpfs file under a shared mapping; `EINVAL` for an access mode of 3; the host's
    ///   errno for `/data`; `ESRCH` when the process has exited.
    /// - Returns: The lowest free descriptor.
    public func open(_ path: String, _ flags: OpenFlags = .readOnly) throws(Errno) -> CInt {
        try system.open(pid, PathBytes(path: path), flags)
    }

    /// `open` of a path given as bytes (what a C caller passes: no decoding, so a name
    /// need not be UTF-8). - Throws: as `open`.
    public func open(bytes path: [UInt8], _ flags: OpenFlags = .readOnly) throws(Errno) -> CInt {
        try system.open(pid, PathBytes(path.prefix { $0 != 0 }), flags)
    }

    /// `read(fd, buf, count)`: up to `count` bytes from the file's offset (a pipe waits
    /// for data unless opened `O_NONBLOCK`).
    /// - Throws: `EBADF` for a descriptor not open for reading; `EISDIR` for a directory;
    ///   a never-connected socket's error (`System.socketError`); `EAGAIN` for an empty
    ///   non-blocking pipe; `EINVAL` for a negative count.
    public func read(_ fd: CInt, count: Int) throws(Errno) -> [UInt8] {
        try system.read(pid, fd, count: count, at: nil)
    }

    /// `pread(fd, buf, count, offset)`: as `read` at `offset`, leaving the file offset.
    /// - Throws: as `read`; `ESPIPE` for a pipe, FIFO or socket; `EINVAL` for a negative offset.
    public func pread(_ fd: CInt, count: Int, offset: Int64) throws(Errno) -> [UInt8] {
        guard offset >= 0 else { throw .invalidArgument }
        return try system.read(pid, fd, count: count, at: Int(offset))
    }

    /// `write(fd, buf)` at the file's offset (at the end with `O_APPEND`).
    /// - Throws: `EBADF` for a descriptor not open for writing; `EPIPE` for a pipe with no
    ///   reader; a never-connected socket's error (`System.socketError`); `ENOSPC` past the
    ///   end of a device; `EFBIG` past the largest file offset; `ENOMEM` when no page is free
    ///   for tmpfs data; `EINVAL` for a bad sysctl value (nothing changes); the host's errno
    ///   for `/data`.
    /// - Returns: Bytes written.
    public func write(_ fd: CInt, _ bytes: [UInt8]) throws(Errno) -> Int {
        try system.write(pid, fd, bytes, at: nil)
    }

    /// `pwrite(fd, buf, offset)`: as `write` at `offset`, leaving the file offset (with
    /// `O_APPEND` Linux appends anyway, and so does the model).
    /// - Throws: as `write`; `ESPIPE` for a pipe, FIFO or socket; `EINVAL` for a negative offset.
    public func pwrite(_ fd: CInt, _ bytes: [UInt8], offset: Int64) throws(Errno) -> Int {
        guard offset >= 0 else { throw .invalidArgument }
        return try system.write(pid, fd, bytes, at: Int(offset))
    }

    /// `close(fd)`. - Throws: `EBADF` for a descriptor that is not open.
    public func close(_ fd: CInt) throws(Errno) {
        try system.close(pid, fd)
    }

    /// `ftruncate(fd, length)`. On tmpfs, growing an empty file gathers contiguous zeroed
    /// pages for a later shared mapping (`ramfs_nommu_expand_for_mapping`).
    /// - Throws: `EINVAL` for a negative length, or a descriptor that is not a regular file
    ///   open for writing; `EBADF` for a descriptor that is not open; `EPERM` for an
    ///   append-only file; tmpfs: `EFBIG` for 4 GiB or more (or above the largest block)
    ///   from empty, `ENOMEM` when no contiguous run fits, `ETXTBSY` for shrinking under
    ///   a shared mapping; the host's errno for `/data`.
    public func ftruncate(_ fd: CInt, length: Int64) throws(Errno) {
        try system.ftruncate(pid, fd, length: length)
    }

    /// `unlink(path)`: the name goes; the file lives while it is open or mapped.
    /// - Throws: `ENOENT`; `ENOTDIR` for a trailing slash on a file (or a file walked
    ///   through); `EISDIR` for a directory; `EROFS` for anything under `/rom` (read-only:
    ///   refused before the lookup); `EACCES` for what exists in `/dev` and `/proc`;
    ///   `ENAMETOOLONG`; the host's errno for `/data`.
    public func unlink(_ path: String) throws(Errno) {
        try system.unlink(pid, PathBytes(path: path))
    }

    /// `unlink` of a path given as bytes. - Throws: as `unlink`.
    public func unlink(bytes path: [UInt8]) throws(Errno) {
        try system.unlink(pid, PathBytes(path.prefix { $0 != 0 }))
    }

    /// `pipe()`: a read end and a write end. - Throws: `EMFILE` without two free descriptors.
    public func pipe() throws(Errno) -> (read: CInt, write: CInt) {
        try system.pipe(pid)
    }

    /// `mkfifo(path, mode)` on tmpfs (`/tmp`, `/dev/shm`).
    /// - Throws: `EEXIST`; `ENOENT` for a missing directory or a path outside the tree;
    ///   `EROFS` on `/rom`; `EPERM` on `/data` (the model's disk holds no FIFOs);
    ///   `EACCES` in `/dev` and `/proc`; `ENAMETOOLONG`.
    public func mkfifo(_ path: String, mode: CInt = 0o644) throws(Errno) {
        try system.mkfifo(pid, PathBytes(path: path))
    }

    /// `mkfifo` of a path given as bytes. - Throws: as `mkfifo`.
    public func mkfifo(bytes path: [UInt8], mode: CInt = 0o644) throws(Errno) {
        try system.mkfifo(pid, PathBytes(path.prefix { $0 != 0 }))
    }

    /// `socket(domain, type, protocol)`: an unconnected socket (`AF_UNIX`, `AF_INET`,
    /// `AF_INET6`), for what mmap does with one (`EINVAL`) and what reads and writes of one
    /// answer. The arguments are checked as the kernel's `__sys_socket` and the family's
    /// `create` check them (`System.checkSocket`).
    /// - Throws: `EINVAL` for unknown type flags or a type past `SOCK_MAX`; `EAFNOSUPPORT`;
    ///   `EPROTONOSUPPORT`; `ESOCKTNOSUPPORT`; `EACCES` for an ICMP echo socket; `EPERM` for
    ///   a raw Internet socket of a process that is not root; `EMFILE`.
    public func socket(domain: CInt, type: CInt, protocol: CInt = 0) throws(Errno) -> CInt {
        try system.socket(pid, domain: domain, type: type, protocol: `protocol`)
    }

    /// Marks a file append-only (`chattr +a`, the `S_APPEND` inode flag) or clears it.
    /// - Throws: `EBADF`; `ENOTTY` for a file that is not on tmpfs or `/data`.
    public func setAppendOnly(_ fd: CInt, _ on: Bool = true) throws(Errno) {
        try system.setAppendOnly(pid, fd, on)
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

    /// Creates (or truncates) a file and writes `bytes` into it: open, write, close.
    public func writeFile(_ path: String, _ bytes: [UInt8]) throws(Errno) {
        let fd = try open(path, [.writeOnly, .create, .truncate])
        defer { try? close(fd) }
        var done = 0
        while done < bytes.count { done += try write(fd, Array(bytes[done...])) }
    }
}

extension System {
    /// What `/dev/ttyS0` has been sent.
    public var consoleOutput: [UInt8] { state.withLock { $0.devices.console } }

    func open(_ pid: Int32, _ path: PathBytes, _ flags: OpenFlags) throws(Errno) -> CInt {
        try open(pid, path, flags, install: true).fd
    }

    /// `open` that either installs the new open file description at the lowest free
    /// descriptor (`install`), or hands it back without one: what exec holds while it loads
    /// (the kernel's `struct file`, in no descriptor table, so exec needs no free descriptor
    /// and no other thread can close or replace it). Give it back with `release(_:)`.
    func open(_ pid: Int32, _ path: PathBytes, _ flags: OpenFlags, install: Bool) throws(Errno) -> (
        fd: CInt, file: OpenFile
    ) {
        let mode = flags.rawValue & OpenFlags.accessModeMask
        guard mode != 3 else { throw .invalidArgument }
        let wantRead = mode == O_RDONLY || mode == O_RDWR
        let wantWrite = mode == O_WRONLY || mode == O_RDWR
        let resolved = try FileState.resolve(path)
        try checkWalk(resolved, pid)
        // open_last_lookups: O_CREAT with a trailing slash is EISDIR, before any lookup.
        if resolved.mustBeDirectory && flags.contains(.create) { throw .isDirectory }
        // A trailing slash or O_DIRECTORY: what the path names must be a directory.
        let wantDirectory = resolved.mustBeDirectory || flags.contains(.directory)
        // Procfs texts are generated outside the model lock (they take it themselves).
        var procKind: OpenFile.Kind? = nil
        var procWritable = false
        if case .proc(let parts) = resolved.place {
            (procKind, procWritable) = try openProc(pid, parts)
            if case .directory = procKind!, wantWrite { throw .isDirectory }
            // Read-only files (0444) open for writing only with CAP_DAC_OVERRIDE: root's.
            guard !wantWrite || procWritable || isRoot(pid) else { throw .permissionDenied }
        }
        return try state.withLock { (s: inout ModelState) throws(Errno) -> (fd: CInt, file: OpenFile) in
            guard let table = s.tasks.tableOf[pid] else { throw .noSuchProcess }
            let fd = install ? s.fs.tables[table]!.lowestFree() : -1
            guard fd < maxOpenFiles else { throw .tooManyOpenFiles }
            var file: OpenFile
            switch resolved.place {
            case .proc:
                file = OpenFile(kind: procKind!, readable: wantRead, writable: wantWrite)
            case .directory:
                if flags.contains(.create) && flags.contains(.exclusive) { throw .fileExists }
                if wantWrite { throw .isDirectory }
                file = OpenFile(kind: .directory, readable: wantRead, writable: false)
            case .mount(let m, let rel):
                // (A path that must name a directory is looked up first: ENOTDIR comes before
                // the write checks, and nothing is truncated.)
                let kind = try openInMount(
                    m, rel, wantDirectory ? flags.subtracting(.truncate) : flags, write: wantWrite && !wantDirectory,
                    in: &s)
                // fifo_open: O_WRONLY | O_NONBLOCK with no reader is ENXIO.
                if case .inode(let id) = kind, let pipe = s.fs.inodes[id]!.pipe, s.fs.inodes[id]!.kind == .fifo,
                    wantWrite, !wantRead, flags.contains(.nonBlocking), !pipe.hasReader
                {
                    throw .noSuchDeviceOrAddress
                }
                file = OpenFile(kind: kind, readable: wantRead, writable: wantWrite)
                file.append = flags.contains(.append)
                file.nonBlocking = flags.contains(.nonBlocking)
                if let id = file.inode {
                    s.fs.inodes.update(id) { node in
                        node.opens += 1
                        node.everOpened = true
                        node.pipe?.open(reader: wantRead, writer: wantWrite)
                    }
                }
            }
            let isDirectory: Bool
            switch file.kind {
            case .directory: isDirectory = true
            case .inode(let id): isDirectory = s.fs.inodes[id]?.kind == .directory
            default: isDirectory = false
            }
            if wantDirectory && (!isDirectory || wantWrite) {
                // (Opened above to find out: what the lookup took goes back.)
                if let (p, r, w) = releaseDescription(file, in: &s) { p.close(reader: r, writer: w) }
                throw isDirectory ? .isDirectory : .notDirectory
            }
            if install {
                s.fs.tables[table]!.descriptors[fd] = file
            } else if let id = file.inode {
                s.fs.heldOpens[id, default: 0] += 1
            }
            return (fd, file)
        }
    }

    /// Reads `count` bytes at `offset` of a regular file through an open file description
    /// held outside any table (exec's). - Throws: the read's errno.
    func read(_ file: OpenFile, count: Int, at offset: Int) throws(Errno) -> [UInt8] {
        try state.withLock { (s: inout ModelState) throws(Errno) -> [UInt8] in
            guard file.readable, let id = file.inode, s.fs.inodes[id] != nil else { throw .badFileDescriptor }
            return try readInode(id, at: offset, count: count, in: &s)
        }
    }

    /// Gives back an open file description held outside any table.
    func release(_ file: OpenFile) {
        let pipeEnd = state.withLock { s -> (PipeBuffer, Bool, Bool)? in
            if let id = file.inode {
                s.fs.heldOpens[id, default: 1] -= 1
                if s.fs.heldOpens[id] == 0 { s.fs.heldOpens[id] = nil }
            }
            return releaseDescription(file, in: &s)
        }
        if let (p, r, w) = pipeEnd { p.close(reader: r, writer: w) }
    }

    /// Finds or creates the file `rel` under mount `m` and returns what the descriptor holds.
    private func openInMount(
        _ m: MountPoint, _ rel: PathBytes, _ flags: OpenFlags, write: Bool, in s: inout ModelState
    ) throws(Errno) -> OpenFile.Kind {
        let create = flags.contains(.create)
        let exclusive = create && flags.contains(.exclusive)
        if rel.isEmpty {
            if exclusive { throw .fileExists }
            if write { throw .isDirectory }
            return .directory
        }
        switch m {
        case .devShm, .tmp:
            if let id = s.fs.names[m]?[rel] {
                if exclusive { throw .fileExists }
                try checkWritable(id, flags, write: write, in: &s)
                // O_TRUNC truncates whatever the access mode (it asks for write permission,
                // which the model's files always give), so O_RDONLY | O_TRUNC does too.
                if flags.contains(.truncate) && s.fs.inodes[id]!.kind == .regular {
                    try ramfsResize(id, to: 0, in: &s)
                }
                return .inode(id)
            }
            if let slash = rel.firstIndex(of: FileState.slash) {
                throw s.fs.names[m]?[PathBytes(rel[..<slash])] != nil ? .notDirectory : .noSuchFileOrDirectory
            }
            guard create else { throw .noSuchFileOrDirectory }
            let id = s.fs.makeInode(.regular, on: m, path: m.path + "/" + rel.displayed)
            s.fs.names[m, default: [:]][rel] = id
            return .inode(id)
        case .rom:
            if let id = s.fs.names[.rom]?[rel] {
                if exclusive { throw .fileExists }
                if write || flags.contains(.truncate) { throw .readOnlyFileSystem }
                return .inode(id)
            }
            if s.fs.isRomDirectory(rel) {
                if exclusive { throw .fileExists }
                if write { throw .isDirectory }
                return .directory
            }
            if create { throw .readOnlyFileSystem }
            throw .noSuchFileOrDirectory
        case .data:
            let host = hostPath(rel)
            // A failed open changes nothing: a file it created goes again.
            var created = false
            var opened = false
            defer { if created && !opened { try? HostFS.unlink(host) } }
            var st = try HostFS.status(host)
            if st == nil {
                guard create else { throw .noSuchFileOrDirectory }
                try HostFS.create(host)
                created = true
                st = try HostFS.status(host)
                guard st != nil else { throw .noSuchFileOrDirectory }
            } else if exclusive {
                throw .fileExists
            }
            let status = st!
            if status.isDirectory {
                if write { throw .isDirectory }
                return .directory
            }
            guard status.isRegular else { throw .permissionDenied }
            let id: Int
            if let known = s.fs.hostInodes[status.inode] {
                id = known
            } else {
                let (hostFD, writable) = try HostFS.openFile(host)
                id = s.fs.inodes.insert(
                    Inode(kind: .regular, mount: .data, number: UInt(status.inode), path: "/data/" + rel.displayed))
                s.fs.inodes.update(id) { node in
                    node.linked = false  // the host holds the name; the inode lives while used
                    node.hostFD = hostFD
                    node.hostWritable = writable
                }
                s.fs.hostInodes[status.inode] = id
            }
            s.fs.inodes.update(id) { $0.size = status.size }
            do throws(Errno) {
                if write && !s.fs.inodes[id]!.hostWritable { throw .permissionDenied }
                try checkWritable(id, flags, write: write, in: &s)
                if flags.contains(.truncate) {
                    guard s.fs.inodes[id]!.hostWritable else { throw .permissionDenied }
                    let hfd = s.fs.inodes[id]!.hostFD
                    try HostFS.truncate(hfd, to: 0)
                    s.fs.inodes.update(id) { $0.size = 0 }
                }
            } catch {
                releaseIfUnused(id, in: &s)
                throw error
            }
            opened = true
            return .inode(id)
        case .dev:
            guard let id = s.fs.names[.dev]?[rel] else {
                if create { throw .permissionDenied }
                throw .noSuchFileOrDirectory
            }
            if exclusive { throw .fileExists }
            if write && s.fs.inodes[id]!.device == .mtd0 { throw .readOnlyFileSystem }
            if let d = s.fs.inodes[id]!.device, d == .fb0 || d == .ram0 { try ensureDeviceMemory(d, in: &s) }
            return .inode(id)
        case .sysvShm, .pipefs, .sockfs:
            throw .noSuchFileOrDirectory
        }
    }

    /// `may_open` on an append-only inode: writing needs `O_APPEND`, and `O_TRUNC` is refused.
    private func checkWritable(_ id: Int, _ flags: OpenFlags, write: Bool, in s: inout ModelState) throws(Errno) {
        guard s.fs.inodes[id]!.appendOnly else { return }
        if write && !flags.contains(.append) { throw .notPermitted }
        if flags.contains(.truncate) { throw .notPermitted }
    }

    /// A `/proc` entry's name as a pid, as `name_to_int` reads it: decimal digits only, no
    /// leading zero (`01` and `+1` are no pid: ENOENT), and no more than fits.
    static func procPID(_ name: String) -> Int32? {
        let digits = Array(name.utf8)
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        guard digits.count == 1 || digits[0] != 48 else { return nil }
        return Int32(name)
    }

    /// What a `/proc` path names: the one list of the model's procfs entries, for open and
    /// for the path walk. Names only; whether a process is alive is the caller's check.
    enum ProcEntry: Equatable {
        case directory  // /proc, /proc/sys, /proc/sys/vm
        case processDirectory(Int32), processMaps(Int32), processStatus(Int32)
        case maps, meminfo, buddyinfo
        case sysctl(Sysctl)

        var isDirectory: Bool {
            switch self {
            case .directory, .processDirectory: return true
            default: return false
            }
        }

        /// The process a `/proc/<pid>` entry is about.
        var subject: Int32? {
            switch self {
            case .processDirectory(let p), .processMaps(let p), .processStatus(let p): return p
            default: return nil
            }
        }
    }

    /// The entry `parts` (below `/proc`) names for `caller` (`self` is the caller), or nil.
    static func procEntry(_ parts: [String], caller: Int32) -> ProcEntry? {
        if let first = parts.first, let who = first == "self" ? caller : procPID(first) {
            switch parts.dropFirst() {
            case []: return .processDirectory(who)
            case ["maps"]: return .processMaps(who)
            case ["status"]: return .processStatus(who)
            default: return nil
            }
        }
        switch parts {
        case [], ["sys"], ["sys", "vm"]: return .directory
        case ["maps"]: return .maps
        case ["meminfo"]: return .meminfo
        case ["buddyinfo"]: return .buddyinfo
        default:
            guard parts.count == 3, parts[0] == "sys", parts[1] == "vm",
                let which = Sysctl.allCases.first(where: { $0.name == parts[2] })
            else { return nil }
            return .sysctl(which)
        }
    }

    /// The procfs part of open: what the descriptor holds and whether it may be written.
    private func openProc(_ pid: Int32, _ parts: [String]) throws(Errno) -> (OpenFile.Kind, Bool) {
        try ensureAlive(pid)
        guard let entry = System.procEntry(parts, caller: pid) else { throw .noSuchFileOrDirectory }
        if let who = entry.subject, !processAlive(who) { throw .noSuchFileOrDirectory }
        switch entry {
        case .directory, .processDirectory: return (.directory, false)
        case .processMaps(let who):
            // `proc_maps_open` → `mm_access(PTRACE_MODE_READ_FSCREDS)`: the address
            // space's own users (a vfork child and its parent), root, or a process of the
            // same uid (`ptrace_may_access`); else EACCES. (Maps show where memory is,
            // never what it holds.)
            guard mayReadMaps(pid, of: who) else { throw .permissionDenied }
            guard let text = procPIDMaps(who) else { throw .noSuchFileOrDirectory }
            return (.text(Array(text.utf8), registered: nil), false)
        case .processStatus(let who):
            guard let text = procPIDStatus(who) else { throw .noSuchFileOrDirectory }
            return (.text(Array(text.utf8), registered: nil), false)
        case .maps: return (.text(Array(procMaps().utf8), registered: "/proc/maps"), false)
        case .meminfo: return (.text(Array(procMeminfo().utf8), registered: "/proc/meminfo"), false)
        case .buddyinfo: return (.text(Array(procBuddyinfo().utf8), registered: "/proc/buddyinfo"), false)
        case .sysctl(let which): return (.sysctl(which), true)
        }
    }

    /// `path_lookupat`'s walk through the components a `..` steps back over (the lexical
    /// result skips them): each must exist and be a directory.
    /// - Throws: `ENOENT` at the first that is missing, `ENOTDIR` at the first that is
    ///   not a directory; the host's errno under `/data`.
    func checkWalk(_ r: ResolvedPath, _ pid: Int32) throws(Errno) {
        guard !r.walkedThrough.isEmpty else { return }
        try state.withLock { (s: inout ModelState) throws(Errno) in
            for parts in r.walkedThrough {
                for n in 1...parts.count {
                    switch try walkKind(Array(parts[..<n]), pid, in: &s) {
                    case .directory: continue
                    case .file: throw .notDirectory
                    case .missing: throw .noSuchFileOrDirectory
                    }
                }
            }
        }
    }

    enum WalkKind { case directory, file, missing }

    /// What the components (from the root) name, for the walk.
    func walkKind(_ parts: [PathBytes], _ pid: Int32, in s: inout ModelState) throws(Errno) -> WalkKind {
        let r: ResolvedPath
        do { r = try FileState.place(of: parts) } catch { return .missing }
        switch r.place {
        case .directory:
            return .directory
        case .proc(let rest):
            guard let entry = System.procEntry(rest, caller: pid) else { return .missing }
            if let who = entry.subject, s.tasks.processes[who] == nil { return .missing }
            return entry.isDirectory ? .directory : .file
        case .mount(let m, let rel):
            if rel.isEmpty { return .directory }
            switch m {
            case .tmp, .devShm, .dev:
                return s.fs.names[m]?[rel] != nil ? .file : .missing
            case .rom:
                return s.fs.names[.rom]?[rel] != nil ? .file : s.fs.isRomDirectory(rel) ? .directory : .missing
            case .data:
                guard let st = try HostFS.status(hostPath(rel)) else { return .missing }
                return st.isDirectory ? .directory : .file
            case .sysvShm, .pipefs, .sockfs:
                return .missing
            }
        }
    }

    func processAlive(_ pid: Int32) -> Bool { state.withLock { $0.tasks.processes[pid] != nil } }

    /// `ptrace_may_access(PTRACE_MODE_READ_FSCREDS)` for `/proc/<pid>/maps`: `reader` shares
    /// `target`'s address space, is root (`CAP_SYS_PTRACE`), or has its uid while the target's
    /// address space is dumpable (one that changed its uid is not).
    func mayReadMaps(_ reader: Int32, of target: Int32) -> Bool {
        state.withLock { s in
            guard let mine = s.tasks.processes[reader], let uid = s.tasks.uidOf[reader],
                let theirs = s.tasks.processes[target]
            else {
                return false
            }
            return mine == theirs || uid == 0 || (uid == s.tasks.uidOf[target] && s.mm.spaces[theirs]!.dumpable)
        }
    }

    /// Whether the process acts as root (`CAP_DAC_OVERRIDE`).
    fileprivate func isRoot(_ pid: Int32) -> Bool { state.withLock { $0.tasks.uidOf[pid] == 0 } }

    /// The open file behind `fd` in `pid`. - Throws: `ESRCH`; `EBADF`.
    func descriptor(_ pid: Int32, _ fd: CInt, in s: inout ModelState) throws(Errno) -> OpenFile {
        guard let table = s.tasks.tableOf[pid] else { throw .noSuchProcess }
        guard let f = s.fs.tables[table]!.descriptors[fd] else { throw .badFileDescriptor }
        return f
    }

    /// `read` (offset nil) and `pread`.
    fileprivate func read(_ pid: Int32, _ fd: CInt, count: Int, at position: Int?) throws(Errno) -> [UInt8] {
        guard count >= 0 else { throw .invalidArgument }
        let count = min(count, 1 << 30)
        enum Plan {
            case done([UInt8])
            case pipe(PipeBuffer, Bool)
        }
        let plan = try state.withLock { (s: inout ModelState) throws(Errno) -> Plan in
            let f = try descriptor(pid, fd, in: &s)
            guard f.readable else { throw .badFileDescriptor }
            switch f.kind {
            case .directory: throw .isDirectory
            case .text(let b, _):
                let start = min(position ?? f.offset, b.count)
                let chunk = Array(b[start..<min(b.count, start + count)])
                if position == nil { s.setOffset(pid, fd, start + chunk.count) }
                return .done(chunk)
            case .sysctl(let which):
                // Under the lock, so the offset goes to this open file (after the lock is
                // dropped the descriptor could name another one). Model lock, then the
                // allocator's: the order mmap of a file takes them in.
                // __do_proc_dointvec: a read at a non-zero position is end of file.
                let value: String
                switch which {
                case .nrTrimPages: value = "\(allocator.nrTrimPages)"
                case .overcommitMemory: value = "\(s.mm.overcommit.policy)"
                case .overcommitRatio: value = "\(s.mm.overcommit.ratio)"
                case .overcommitKbytes: value = "\(s.mm.overcommit.kbytes)"
                }
                let b = Array("\(value)\n".utf8)
                let start = position ?? f.offset
                let chunk = start == 0 ? Array(b.prefix(count)) : []
                // pread leaves the file offset, as it does for every other file.
                if position == nil { s.setOffset(pid, fd, start + chunk.count) }
                return .done(chunk)
            case .inode(let id):
                if let pipe = try streamOf(id, position: position, write: false, in: &s) {
                    return .pipe(pipe, f.nonBlocking)
                }
                do {
                    let at = position ?? f.offset
                    let bytes = try readInode(id, at: at, count: count, in: &s)
                    if position == nil { s.setOffset(pid, fd, at + bytes.count) }
                    return .done(bytes)
                }
            }
        }
        switch plan {
        case .done(let b): return b
        case .pipe(let p, let nonBlocking): return try p.read(count: count, nonBlocking: nonBlocking)
        }
    }

    /// `write` (offset nil) and `pwrite`.
    fileprivate func write(_ pid: Int32, _ fd: CInt, _ bytes: [UInt8], at position: Int?) throws(Errno) -> Int {
        enum Plan {
            case done(Int)
            case pipe(PipeBuffer, Bool)
        }
        let plan = try state.withLock { (s: inout ModelState) throws(Errno) -> Plan in
            let f = try descriptor(pid, fd, in: &s)
            guard f.writable else { throw .badFileDescriptor }
            switch f.kind {
            case .directory: throw .badFileDescriptor
            case .text(_, let registered):
                // (Open for writing only by root.) proc_reg_write has no proc_write to call:
                // EIO; a /proc/<pid> file has no write method at all: EINVAL (vfs_write).
                throw registered != nil ? .ioError : .invalidArgument
            case .sysctl(let which):
                // The handler, under the lock that looked the descriptor up (the offset it
                // moves is this open file's). Model lock, then the allocator's.
                let at = position ?? f.offset
                let n: Int
                switch which {
                case .nrTrimPages:  // proc_dointvec_minmax, at least 0
                    n = try System.writeProcInt(bytes, at: at, minimum: 0) { v throws(Errno) in
                        try allocator.setNrTrimPages(v)
                    }
                case .overcommitMemory:  // overcommit_policy_handler: proc_dointvec_minmax, 0...2
                    var policy: Int? = nil
                    n = try System.writeProcInt(bytes, at: at, minimum: 0, maximum: 2) { policy = $0 }
                    if let policy { s.mm.overcommit.policy = policy }
                case .overcommitRatio:  // overcommit_ratio_handler: proc_dointvec, then kbytes 0
                    n = try System.writeProcInt(bytes, at: at, minimum: Int(Int32.min)) { s.mm.overcommit.ratio = $0 }
                    s.mm.overcommit.kbytes = 0
                case .overcommitKbytes:  // overcommit_kbytes_handler: proc_doulongvec_minmax, then ratio 0
                    n = try System.writeProcULong(bytes, at: at) { s.mm.overcommit.kbytes = $0 }
                    s.mm.overcommit.ratio = 0
                }
                if position == nil { s.setOffset(pid, fd, at + n) }
                return .done(n)
            case .inode(let id):
                if let pipe = try streamOf(id, position: position, write: true, in: &s) {
                    return .pipe(pipe, f.nonBlocking)
                }
                let node = s.fs.inodes[id]!
                do {
                    let append = f.append && node.kind == .regular
                    if append && node.mount == .data {
                        let size = try HostFS.size(node.hostFD)
                        s.fs.inodes.update(id) { $0.size = size }
                    }
                    let at = append ? s.fs.inodes[id]!.size : (position ?? f.offset)
                    let n = try writeInode(id, bytes, at: at, in: &s)
                    if position == nil { s.setOffset(pid, fd, at + n) }
                    return .done(n)
                }
            }
        }
        switch plan {
        case .done(let n): return n
        case .pipe(let p, let nonBlocking): return try p.write(bytes, nonBlocking: nonBlocking)
        }
    }

    /// A write to a one-int sysctl, as `__do_proc_dointvec` with `proc_dointvec_minmax`'s
    /// range takes it (strict mode): nothing for an empty write; at a non-zero position the
    /// whole write is taken and ignored; else, within the first PAGE_SIZE − 1 bytes, blanks,
    /// an optional `-`, a number in C's bases (`0x` hex, a leading `0` octal) of at most 20
    /// characters, then a blank, tab or newline or the end; the value must fit an int and be
    /// at least `minimum` (EINVAL, nothing set). The bytes taken are the number and the blanks
    /// after it: the rest is left for another write. - Returns: the bytes taken.
    static func writeProcInt(
        _ bytes: [UInt8], at position: Int, minimum: Int, maximum: Int = Int(Int32.max),
        set: (Int) throws(Errno) -> Void
    ) throws(Errno) -> Int {
        guard let (negative, value, taken) = try parseProcNumber(bytes, at: position) else {
            return position != 0 ? bytes.count : 0
        }
        // do_proc_dointvec_conv, then the range.
        let n: Int
        if negative {
            guard value <= UInt64(Int32.max) + 1 else { throw .invalidArgument }
            n = -Int(value)
        } else {
            guard value <= UInt64(Int32.max) else { throw .invalidArgument }
            n = Int(value)
        }
        guard n >= minimum, n <= maximum else { throw .invalidArgument }
        try set(n)
        return taken
    }

    /// A write to a one-unsigned-long sysctl (`__do_proc_doulongvec_minmax`): as
    /// `writeProcInt`, but any value that fits 64 bits, and a negative one is EINVAL.
    static func writeProcULong(
        _ bytes: [UInt8], at position: Int, set: (UInt64) throws(Errno) -> Void
    ) throws(Errno) -> Int {
        guard let (negative, value, taken) = try parseProcNumber(bytes, at: position) else {
            return position != 0 ? bytes.count : 0
        }
        guard !negative else { throw .invalidArgument }
        try set(value)
        return taken
    }

    /// `proc_get_long`'s reading of a sysctl write: nil for an empty write or one at a
    /// non-zero position (taken whole and ignored); else the sign, the magnitude and the
    /// bytes taken. - Throws: `EINVAL` where the kernel's parse fails.
    static func parseProcNumber(
        _ bytes: [UInt8], at position: Int
    ) throws(Errno) -> (negative: Bool, magnitude: UInt64, taken: Int)? {
        if bytes.isEmpty || position != 0 { return nil }
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || (0x09...0x0D).contains($0) || $0 == 0xA0 }
        let limit = min(bytes.count, 4095)
        var i = 0
        while i < limit && isSpace(bytes[i]) { i += 1 }
        guard i < limit else { throw .invalidArgument }
        // proc_get_long: at most 21 characters are looked at.
        let window = Array(bytes[i..<min(limit, i + 21)])
        var k = 0
        let negative = window[0] == UInt8(ascii: "-") && limit - i > 1
        if negative { k = 1 }
        guard k < window.count, (48...57).contains(window[k]) else { throw .invalidArgument }
        var base: UInt64 = 10
        if window[k] == 48 {
            let x = k + 1 < window.count && (window[k + 1] | 0x20) == UInt8(ascii: "x")
            let hexAfter = k + 2 < window.count && Self.digit(window[k + 2], base: 16) != nil
            if x && hexAfter {
                base = 16
                k += 2
            } else {
                base = 8
            }
        }
        var value: UInt64 = 0
        while k < window.count, let d = Self.digit(window[k], base: base) {
            let (m, o1) = value.multipliedReportingOverflow(by: base)
            let (v, o2) = m.addingReportingOverflow(UInt64(d))
            guard !o1 && !o2 else { throw .invalidArgument }
            value = v
            k += 1
        }
        guard k < 21 else { throw .invalidArgument }  // too long to tell where it ends
        let end = i + k
        if end < limit {
            let t = bytes[end]
            guard t == 0x20 || t == 0x09 || t == 0x0A else { throw .invalidArgument }
        }
        var taken = end
        while taken < limit && isSpace(bytes[taken]) { taken += 1 }
        return (negative, value, taken)
    }

    private static func digit(_ c: UInt8, base: UInt64) -> UInt64? {
        let d: UInt64
        switch c {
        case 48...57: d = UInt64(c - 48)
        case 97...102: d = UInt64(c - 87)
        case 65...70: d = UInt64(c - 55)
        default: return nil
        }
        return d < base ? d : nil
    }

    /// The pipe behind a FIFO or pipe inode (nil for files and devices, which read and
    /// write at an offset). - Throws: `ESPIPE` for an offset on a pipe or socket; a
    /// socket's error (`socketError`); `EISDIR` for a directory.
    private func streamOf(
        _ id: Int, position: Int?, write: Bool, in s: inout ModelState
    ) throws(Errno) -> PipeBuffer? {
        let node = s.fs.inodes[id]!
        switch node.kind {
        case .fifo:
            if position != nil { throw .illegalSeek }
            return node.pipe!
        case .socket:
            if position != nil { throw .illegalSeek }
            throw System.socketError(node.socket!, write: write)
        case .directory: throw .isDirectory
        case .regular, .characterDevice, .blockDevice: return nil
        }
    }

    /// What a read or write of one of the model's sockets answers: they are never connected
    /// (the model has no peers). AF_UNIX: a stream read is EINVAL (`unix_stream_read_generic`
    /// checks `TCP_ESTABLISHED`), anything else ENOTCONN (`unix_*_sendmsg` with no peer,
    /// `unix_seqpacket_recvmsg`). Internet: a TCP read is ENOTCONN, a write EPIPE
    /// (`sk_stream_error`); a UDP write EDESTADDRREQ. A datagram read waits for a datagram in
    /// the kernel; here none can ever come, and it is ENOTCONN rather than a wait forever.
    static func socketError(_ socket: (family: CInt, type: CInt), write: Bool) -> Errno {
        let stream = socket.type == CInt(SOCK_STREAM.rawValue)
        let dgram = socket.type == CInt(SOCK_DGRAM.rawValue)
        if socket.family == AF_UNIX {
            return !write && stream ? .invalidArgument : .socketNotConnected
        }
        guard write else { return .socketNotConnected }
        return stream ? .brokenPipe : dgram ? Errno(rawValue: EDESTADDRREQ) : .socketNotConnected
    }

    fileprivate func close(_ pid: Int32, _ fd: CInt) throws(Errno) {
        let pipeEnd = try state.withLock { (s: inout ModelState) throws(Errno) -> (PipeBuffer, Bool, Bool)? in
            guard let table = s.tasks.tableOf[pid] else { throw .noSuchProcess }
            guard let f = s.fs.tables[table]!.descriptors.removeValue(forKey: fd) else { throw .badFileDescriptor }
            return releaseDescription(f, in: &s)
        }
        if let (p, r, w) = pipeEnd { p.close(reader: r, writer: w) }
        _checkInvariants()
    }

    /// Drops an open file description's hold on its inode; returns the pipe end to close
    /// (outside the model lock).
    func releaseDescription(_ f: OpenFile, in s: inout ModelState) -> (PipeBuffer, Bool, Bool)? {
        guard let id = f.inode else { return nil }
        let pipe = s.fs.inodes.update(id) { node -> PipeBuffer? in
            node.opens -= 1
            return node.pipe
        }
        releaseIfUnused(id, in: &s)
        return pipe.map { ($0, f.readable, f.writable) }
    }

    fileprivate func ftruncate(_ pid: Int32, _ fd: CInt, length: Int64) throws(Errno) {
        guard length >= 0 else { throw .invalidArgument }
        try state.withLock { (s: inout ModelState) throws(Errno) in
            let f = try descriptor(pid, fd, in: &s)
            guard let id = f.inode, s.fs.inodes[id]!.kind == .regular, f.writable else { throw .invalidArgument }
            let node = s.fs.inodes[id]!
            if node.appendOnly { throw .notPermitted }
            switch node.mount {
            case .devShm, .tmp, .sysvShm:
                try ramfsResize(id, to: Int(length), in: &s)
            case .data:
                try HostFS.truncate(node.hostFD, to: Int(length))
                s.fs.inodes.update(id) { $0.size = Int(length) }
            default:
                throw .invalidArgument
            }
        }
        _checkInvariants()
    }

    func unlink(_ pid: Int32, _ path: PathBytes) throws(Errno) {
        let resolved = try FileState.resolve(path)
        try checkWalk(resolved, pid)
        try state.withLock { (s: inout ModelState) throws(Errno) in
            guard s.tasks.processes[pid] != nil else { throw .noSuchProcess }
            switch resolved.place {
            case .proc(let parts):
                // do_unlinkat: the lookup (ENOENT; a trailing slash on a file, ENOTDIR), then
                // may_delete refuses (procfs directories are not writable: EACCES).
                let kind = try walkKind([PathBytes(path: "proc")] + parts.map { PathBytes(path: $0) }, pid, in: &s)
                if kind == .missing { throw .noSuchFileOrDirectory }
                if kind == .file && resolved.mustBeDirectory { throw .notDirectory }
                throw .permissionDenied
            case .directory: throw .isDirectory
            case .mount(let m, let rel):
                // romfs is read-only: mnt_want_write refuses before the lookup.
                if m == .rom { throw .readOnlyFileSystem }
                if rel.isEmpty { throw .isDirectory }
                switch m {
                case .devShm, .tmp:
                    // do_unlinkat's "slashes": a trailing slash on a name that is not a
                    // directory (tmpfs here holds no directories) is ENOTDIR.
                    if resolved.mustBeDirectory {
                        throw s.fs.names[m]?[rel] != nil ? .notDirectory : .noSuchFileOrDirectory
                    }
                    guard let id = s.fs.names[m]?.removeValue(forKey: rel) else { throw .noSuchFileOrDirectory }
                    s.fs.inodes.update(id) { node in
                        node.linked = false
                        node.path += " (deleted)"
                    }
                    releaseIfUnused(id, in: &s)
                case .rom:
                    throw .readOnlyFileSystem
                case .data:
                    let host = hostPath(rel)
                    guard let st = try HostFS.status(host) else { throw .noSuchFileOrDirectory }
                    if st.isDirectory { throw .isDirectory }
                    if resolved.mustBeDirectory { throw .notDirectory }
                    try HostFS.unlink(host)
                    if let id = s.fs.hostInodes[st.inode] {
                        s.fs.inodes.update(id) { $0.path += " (deleted)" }
                    }
                case .dev:
                    guard s.fs.names[.dev]?[rel] != nil else { throw .noSuchFileOrDirectory }
                    if resolved.mustBeDirectory { throw .notDirectory }
                    throw .permissionDenied
                case .sysvShm, .pipefs, .sockfs:
                    throw .noSuchFileOrDirectory
                }
            }
        }
        _checkInvariants()
    }

    fileprivate func pipe(_ pid: Int32) throws(Errno) -> (read: CInt, write: CInt) {
        try state.withLock { (s: inout ModelState) throws(Errno) -> (CInt, CInt) in
            guard let table = s.tasks.tableOf[pid] else { throw .noSuchProcess }
            let r = s.fs.tables[table]!.lowestFree()
            guard r < maxOpenFiles else { throw .tooManyOpenFiles }
            s.fs.tables[table]!.descriptors[r] = OpenFile(kind: .directory, readable: false, writable: false)
            let w = s.fs.tables[table]!.lowestFree()
            s.fs.tables[table]!.descriptors[r] = nil
            guard w < maxOpenFiles else { throw .tooManyOpenFiles }
            let id = s.fs.makeInode(.fifo, on: .pipefs, path: "pipe:")
            let buffer = PipeBuffer()
            buffer.open(reader: true, writer: true)
            s.fs.inodes.update(id) { node in
                node.linked = false
                node.pipe = buffer
                node.opens = 2
                node.path = "pipe:[\(node.number)]"
            }
            s.fs.tables[table]!.descriptors[r] = OpenFile(kind: .inode(id), readable: true, writable: false)
            s.fs.tables[table]!.descriptors[w] = OpenFile(kind: .inode(id), readable: false, writable: true)
            return (r, w)
        }
    }

    fileprivate func mkfifo(_ pid: Int32, _ path: PathBytes) throws(Errno) {
        let resolved = try FileState.resolve(path)
        try checkWalk(resolved, pid)
        try state.withLock { (s: inout ModelState) throws(Errno) in
            guard s.tasks.processes[pid] != nil else { throw .noSuchProcess }
            switch resolved.place {
            case .proc: throw .permissionDenied
            case .directory: throw .fileExists
            case .mount(let m, let rel):
                if rel.isEmpty { throw .fileExists }
                switch m {
                case .devShm, .tmp:
                    if s.fs.names[m]?[rel] != nil { throw .fileExists }
                    if let slash = rel.firstIndex(of: FileState.slash) {
                        throw s.fs.names[m]?[PathBytes(rel[..<slash])] != nil ? .notDirectory : .noSuchFileOrDirectory
                    }
                    let id = s.fs.makeInode(.fifo, on: m, path: m.path + "/" + rel.displayed)
                    s.fs.inodes.update(id) { $0.pipe = PipeBuffer() }
                    s.fs.names[m, default: [:]][rel] = id
                case .rom: throw .readOnlyFileSystem
                case .data: throw .notPermitted
                case .dev:
                    if s.fs.names[.dev]?[rel] != nil { throw .fileExists }
                    throw .permissionDenied
                case .sysvShm, .pipefs, .sockfs: throw .noSuchFileOrDirectory
                }
            }
        }
    }

    /// Checks `socket(2)`'s arguments in the kernel's order: `__sys_socket` (flags beside the
    /// type), `__sock_create` (family and type ranges; a family this system has), then the
    /// family's `create`: `unix_create` (protocol 0 or `PF_UNIX`; stream, datagram and
    /// seqpacket, raw read as datagram) or `inet_create`/`inet6_create` (the `inetsw` table:
    /// TCP for stream, UDP or ICMP echo for datagram, raw for root only).
    fileprivate func checkSocket(_ pid: Int32, domain: CInt, type: CInt, protocol proto: CInt) throws(Errno) {
        let typeMask: CInt = 0xf  // SOCK_TYPE_MASK
        let typeFlags = CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
        guard (type & ~typeMask) & ~typeFlags == 0 else { throw .invalidArgument }
        let base = type & typeMask
        guard domain >= 0, domain < 46 else { throw .addressFamilyNotSupported }  // NPROTO
        guard base < 11 else { throw .invalidArgument }  // SOCK_MAX
        let stream = CInt(SOCK_STREAM.rawValue)
        let dgram = CInt(SOCK_DGRAM.rawValue)
        let raw = CInt(SOCK_RAW.rawValue)
        switch domain {
        case AF_UNIX:
            guard proto == 0 || proto == AF_UNIX else { throw .protocolNotSupported }
            guard base == stream || base == dgram || base == raw || base == CInt(SOCK_SEQPACKET.rawValue) else {
                throw Errno(rawValue: ESOCKTNOSUPPORT)
            }
        case AF_INET, AF_INET6:
            if base == CInt(SOCK_PACKET.rawValue) && domain == AF_INET { throw .addressFamilyNotSupported }
            guard proto >= 0, proto < 263 else { throw .invalidArgument }  // IPPROTO_MAX
            let echo = domain == AF_INET ? CInt(IPPROTO_ICMP) : CInt(IPPROTO_ICMPV6)
            switch base {
            case stream:
                guard proto == 0 || proto == CInt(IPPROTO_TCP) else { throw .protocolNotSupported }
            case dgram:
                // An ICMP echo ("ping") socket needs a group in net.ipv4.ping_group_range,
                // which is empty by default.
                if proto == echo { throw .permissionDenied }
                guard proto == 0 || proto == CInt(IPPROTO_UDP) else { throw .protocolNotSupported }
            case raw:
                guard isRoot(pid) else { throw .notPermitted }
            default: throw Errno(rawValue: ESOCKTNOSUPPORT)
            }
        default: throw .addressFamilyNotSupported
        }
    }

    fileprivate func socket(_ pid: Int32, domain: CInt, type: CInt, protocol proto: CInt) throws(Errno) -> CInt {
        try checkSocket(pid, domain: domain, type: type, protocol: proto)
        return try state.withLock { (s: inout ModelState) throws(Errno) -> CInt in
            guard let table = s.tasks.tableOf[pid] else { throw .noSuchProcess }
            let fd = s.fs.tables[table]!.lowestFree()
            guard fd < maxOpenFiles else { throw .tooManyOpenFiles }
            let id = s.fs.makeInode(.socket, on: .sockfs, path: "socket:")
            let raw = CInt(SOCK_RAW.rawValue)
            let base = type & 0xf
            s.fs.inodes.update(id) { node in
                node.linked = false
                node.opens = 1
                node.path = "socket:[\(node.number)]"
                node.socket = (domain, domain == AF_UNIX && base == raw ? CInt(SOCK_DGRAM.rawValue) : base)
            }
            s.fs.tables[table]!.descriptors[fd] = OpenFile(kind: .inode(id), readable: true, writable: true)
            return fd
        }
    }

    fileprivate func setAppendOnly(_ pid: Int32, _ fd: CInt, _ on: Bool) throws(Errno) {
        try state.withLock { (s: inout ModelState) throws(Errno) in
            let f = try descriptor(pid, fd, in: &s)
            guard let id = f.inode, s.fs.inodes[id]!.kind == .regular,
                [.devShm, .tmp, .data].contains(s.fs.inodes[id]!.mount)
            else { throw Errno(rawValue: ENOTTY) }
            s.fs.inodes.update(id) { $0.appendOnly = on }
        }
    }

    // MARK: Inode data

    /// Reads through the file's read method (never the flash status pattern: the driver
    /// reads the chip's data).
    func readInode(_ id: Int, at offset: Int, count: Int, in s: inout ModelState) throws(Errno) -> [UInt8] {
        let node = s.fs.inodes[id]!
        switch node.mount {
        case .devShm, .tmp, .sysvShm:
            return ramfsRead(node, at: offset, count: count)
        case .rom:
            guard offset < node.size else { return [] }
            let n = min(count, node.size - offset)
            return flashBytes(at: node.romOffset + offset, count: n, in: &s)
        case .data:
            guard count > 0 else { return [] }
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 16)
            defer { buffer.deallocate() }
            let n = try HostFS.read(node.hostFD, into: buffer, count: count, at: offset)
            return Array(UnsafeRawBufferPointer(start: buffer, count: n))
        case .dev:
            switch node.device! {
            case .zero: return [UInt8](repeating: 0, count: count)
            case .null, .ttyS0: return []
            case .mtd0:
                guard offset < flash.byteCount else { return [] }
                return flashBytes(at: offset, count: min(count, flash.byteCount - offset), in: &s)
            case .fb0, .ram0:
                guard let (base, size) = deviceMemory(node.device!, in: &s), offset < size else { return [] }
                let n = min(count, size - offset)
                return Array(UnsafeRawBufferPointer(start: base + offset, count: n))
            }
        case .pipefs, .sockfs:
            return []
        }
    }

    /// Writes through the file's write method.
    func writeInode(_ id: Int, _ bytes: [UInt8], at offset: Int, in s: inout ModelState) throws(Errno) -> Int {
        let node = s.fs.inodes[id]!
        guard !bytes.isEmpty else { return 0 }
        guard offset <= Int(Int64.max) - bytes.count else { throw .fileTooLarge }
        switch node.mount {
        case .devShm, .tmp, .sysvShm:
            return try ramfsWrite(id, bytes, at: offset, in: &s)
        case .rom:
            throw .badFileDescriptor
        case .data:
            let n = try HostFS.write(node.hostFD, bytes, at: offset)
            s.fs.inodes.update(id) { $0.size = max($0.size, offset + n) }
            return n
        case .dev:
            switch node.device! {
            case .zero, .null: return bytes.count
            case .ttyS0:
                s.devices.console += bytes
                return bytes.count
            case .mtd0: throw .readOnlyFileSystem
            case .fb0, .ram0:
                guard let (base, size) = deviceMemory(node.device!, in: &s), offset < size else { throw .noSpace }
                let n = min(bytes.count, size - offset)
                bytes.withUnsafeBytes { (base + offset).copyMemory(from: $0.baseAddress!, byteCount: n) }
                return n
            }
        case .pipefs, .sockfs:
            throw .badFileDescriptor
        }
    }

    /// Frees an inode nothing holds any more (its page cache with it), and the frame
    /// buffer when its last descriptor and mapping are gone (`vm_ops->close`).
    func releaseIfUnused(_ id: Int, in s: inout ModelState) {
        guard let node = s.fs.inodes[id] else { return }
        if node.device == .fb0 && node.opens == 0 && node.regions == 0, let run = s.devices.framebuffer {
            s.devices.framebuffer = nil
            s.devices.devicePages -= run.keptPages
            releaseOrTrap(run)
        }
        guard node.isUnused else { return }
        var freed = 0
        for run in node.pages.values { releaseOrTrap(run); freed += 1 }
        for run in node.orphans { releaseOrTrap(run); freed += 1 }
        s.fs.pageCachePages -= freed
        if node.mount == .data {
            s.fs.hostInodes[UInt64(node.number)] = nil
            HostFS.closeFile(node.hostFD)
        }
        s.fs.inodes[id] = nil
    }
}

extension FileTable {
    /// The lowest descriptor not in use.
    func lowestFree() -> Int32 {
        var fd: Int32 = 0
        while descriptors[fd] != nil { fd += 1 }
        return fd
    }
}

extension FileState {
    /// The device nodes of `/dev`.
    mutating func createDeviceNodes() {
        for d in Device.allCases {
            let id = makeInode(d.isBlock ? .blockDevice : .characterDevice, on: .dev, path: "/dev/" + d.name)
            inodes.update(id) { $0.device = d }
            names[.dev, default: [:]][PathBytes(path: d.name)] = id
        }
    }
}

extension FileState {
    /// Whether `rel` is a romfs directory: what the names of the files under it start with.
    func isRomDirectory(_ rel: PathBytes) -> Bool {
        let prefix = rel + [FileState.slash]
        return names[.rom]?.keys.contains { $0.starts(with: prefix) } == true
    }
}

extension FileState {
    /// A copy of descriptor table `t` (`dup_fd`): the same open files, each held once more.
    /// - Returns: The new table's id.
    mutating func copyTable(_ t: Int) -> Int {
        var copy = tables[t]!
        copy.users = 1
        for f in copy.descriptors.values {
            if let i = f.inode {
                inodes.update(i) { node in
                    node.opens += 1
                    node.pipe?.open(reader: f.readable, writer: f.writable)
                }
            }
        }
        return tables.insert(copy)
    }
}
