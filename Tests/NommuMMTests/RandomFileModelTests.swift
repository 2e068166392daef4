// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuMM
import NommuTestSupport
import PageAllocator
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The reference for files: every file's bytes, the shared mappings of each tmpfs file
/// (page offset and pages, for the ETXTBSY rule) and what each live mapping must show.
private struct RefFiles {
    struct Mapping {
        var process: Int
        var address: UInt
        var length: UInt
        var file: String?  // nil: anonymous
        var pgoff: Int
        var shared: Bool
        var writable: Bool
        /// What a private copy held when it was made (nil for shared mappings and
        /// read-only tmpfs ones, which may be overlays of the page cache).
        var snapshot: [UInt8]?
        var inPlace = false
        var shm: Int32? = nil
    }
    var files: [String: [UInt8]] = [:]
    var maps: [Mapping] = []
}

@Suite("Files: random sequences against the reference")
struct RandomFileModelTests {
    @Test(
        "write / truncate / mmap / munmap / shm / exit across processes, checked after every step",
        arguments: [UInt64(21), 22, 23])
    func random(seed0: UInt64) throws {
        let seed = SeededRandom.seed(default: seed0)
        var rng = SeededRandom(seed: seed)
        let steps = ProcessEnvironment.int("NOMMU_RANDOM_STEPS", default: 100_000) / 40
        let s = try makeSystem(pages: 1024, maxOrder: 6, trim: 1)
        var procs = (0..<3).map { _ in s.createProcess() }
        var ref = RefFiles()
        let names = ["/tmp/a", "/tmp/b", "/dev/shm/c", "/data/d", "/data/e"]
        func note(_ step: Int, _ what: String) -> Comment { "seed \(seed) step \(step): \(what) (NOMMU_SEED=\(seed))" }
        func expected(_ file: String, _ pgoff: Int, _ length: Int) -> [UInt8] {
            let content = ref.files[file] ?? []
            let from = pgoff * Int(page)
            return (0..<length).map { from + $0 < content.count ? content[from + $0] : 0 }
        }

        for step in 0..<steps {
            let pi = Int.random(in: 0..<procs.count, using: &rng)
            let p = procs[pi]
            let op = Int.random(in: 0..<100, using: &rng)
            let file = names[Int.random(in: 0..<names.count, using: &rng)]
            switch op {
            case 0..<20:
                // write() somewhere in a file (creating it).
                let offset = Int.random(in: 0..<(6 * Int(page)), using: &rng)
                let count = Int.random(in: 1..<(2 * Int(page)), using: &rng)
                let data = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let fd = try p.open(file, [.readWrite, .create])
                do {
                    #expect(try p.pwrite(fd, data, offset: Int64(offset)) == count, note(step, "pwrite"))
                    var content = ref.files[file] ?? []
                    if content.count < offset + count {
                        content += [UInt8](repeating: 0, count: offset + count - content.count)
                    }
                    content.replaceSubrange(offset..<offset + count, with: data)
                    ref.files[file] = content
                } catch {
                    #expect(error == .noMemory, note(step, "pwrite failed \(error)"))
                }
                try p.close(fd)
            case 20..<30:
                // ftruncate, with tmpfs's rules (ETXTBSY under a shared mapping).
                guard ref.files[file] != nil else { continue }
                let old = ref.files[file]!.count
                let new = Int.random(in: 0...(5 * Int(page)), using: &rng)
                let fd = try p.open(file, .readWrite)
                let low = new >> 12
                let high = (old + Int(page) - 1) >> 12
                let busy =
                    file.hasPrefix("/data") || new >= old
                    ? false
                    : ref.maps.contains {
                        $0.file == file && $0.shared && $0.pgoff + Int($0.length / page) - 1 >= low && $0.pgoff <= high
                    }
                do {
                    try p.ftruncate(fd, length: Int64(new))
                    #expect(!busy || new == old, note(step, "ftruncate succeeded under a shared mapping"))
                    var content = ref.files[file]!
                    if new < content.count {
                        content.removeLast(content.count - new)
                    } else {
                        content += [UInt8](repeating: 0, count: new - content.count)
                    }
                    ref.files[file] = content
                } catch {
                    let allowed: [Errno] = busy ? [.textFileBusy] : [.noMemory, .fileTooLarge]
                    #expect(allowed.contains(error), note(step, "ftruncate \(old)→\(new): \(error)"))
                }
                try p.close(fd)
            case 30..<55:
                // mmap a file: private read-only, private writable, or shared.
                guard let content = ref.files[file], !content.isEmpty else { continue }
                let maxPages = (content.count + Int(page) - 1) / Int(page)
                let pgoff = Int.random(in: 0..<maxPages, using: &rng)
                let pages = Int.random(in: 1...max(1, min(3, maxPages - pgoff + 1)), using: &rng)
                let kind = Int.random(in: 0..<3, using: &rng)
                let shared = kind == 2
                let writable = kind != 0
                let fd = try p.open(file, writable ? .readWrite : .readOnly)
                defer { try? p.close(fd) }
                let length = UInt(pages) * page
                let before = Snapshot(s, procs)
                do {
                    let a = try p.mmap(
                        length: length, protection: writable ? rw : .read, flags: shared ? .shared : .private, fd: fd,
                        offset: Int64(pgoff) * Int64(page))
                    guard let info = p.mappings.first(where: { $0.start == a }) else {
                        Issue.record(note(step, "the new mapping is not listed"))
                        return
                    }
                    let inPlace = !info.ownsPages
                    // A region of the same file may be reused (`do_mmap`'s search for a shareable
                    // region): then the mapping shows that region, which may be an older copy.
                    // Otherwise it shows the file: a copy cleared past EOF, the page cache up to EOF.
                    let reused = info.regionUsage > 1
                    if !reused {
                        let want = expected(file, pgoff, Int(length))
                        let eof = max(0, content.count - pgoff * Int(page))
                        let checked = inPlace ? min(Int(length), eof) : Int(length)
                        if bytes(a, checked) != Array(want[0..<checked]) {
                            let got = bytes(a, checked)
                            let d = (0..<checked).first { got[$0] != want[$0] }!
                            Issue.record(
                                note(
                                    step,
                                    "mmap \(file) kind \(kind) pgoff \(pgoff) len \(length) in place \(inPlace) does not show the file: byte \(d) is \(got[d]), want \(want[d]); \(p.mappings.filter { $0.path == file })"
                                ))
                            return
                        }
                    }
                    #expect(!inPlace || !file.hasPrefix("/data"), note(step, "a disk file mapped in place"))
                    ref.maps.append(
                        .init(
                            process: pi, address: a.u, length: length, file: file, pgoff: pgoff, shared: shared,
                            writable: writable, snapshot: inPlace ? nil : bytes(a, Int(length)),
                            inPlace: inPlace && !reused))
                } catch {
                    // Shared needs tmpfs pages that are contiguous and inside the file;
                    // read-only copies may mismatch an existing region (row 38).
                    let allowed: [Errno] = [.operationNotSupportedByDevice, .invalidArgument, .noMemory]
                    #expect(allowed.contains(error), note(step, "mmap \(file) \(kind): \(error)"))
                    #expect(!shared || !file.hasPrefix("/data") || error == .operationNotSupportedByDevice)
                    #expect(Snapshot(s, procs) == before, note(step, "a failed mmap changed something"))
                }
            case 55..<62:
                // Write through a shared mapping: the file shows it.
                guard
                    let i = ref.maps.indices.filter({
                        ref.maps[$0].shared && ref.maps[$0].writable
                            && (ref.maps[$0].inPlace || ref.maps[$0].shm != nil)
                    }).randomElement(using: &rng)
                else { continue }
                let m = ref.maps[i]
                let at = Int.random(in: 0..<Int(m.length), using: &rng)
                let v = UInt8.random(in: 0...255, using: &rng)
                UnsafeMutableRawPointer(bitPattern: m.address + UInt(at))!.storeBytes(of: v, as: UInt8.self)
                if let f = m.file, m.shm == nil {
                    let pos = m.pgoff * Int(page) + at
                    if let count = ref.files[f]?.count, pos < count { ref.files[f]![pos] = v }
                }
            case 62..<80:
                // munmap a whole mapping (of this process, or of another: EINVAL).
                guard let i = ref.maps.indices.randomElement(using: &rng) else { continue }
                let m = ref.maps[i]
                let owner = procs[m.process]
                let end = m.address + m.length
                if m.process != pi
                    && !p.mappings.contains(where: { $0.start.rawValue < end && $0.end.rawValue > m.address })
                {
                    expectErrno(.invalidArgument, "foreign munmap") {
                        try p.munmap(address: m.address, length: m.length)
                    }
                }
                if let id = m.shm {
                    try owner.shmdt(m.address)
                    _ = id
                } else {
                    try owner.munmap(address: m.address, length: m.length)
                }
                // Of identical mappings (one process mapping one shareable range twice), munmap takes
                // the one mapped first.
                let first = ref.maps.firstIndex {
                    $0.process == m.process && $0.address == m.address && $0.length == m.length && $0.shm == m.shm
                }!
                ref.maps.remove(at: first)
            case 80..<86:
                // SysV: create or attach, write through the attach.
                let key = Int32(Int.random(in: 1...3, using: &rng))
                do {
                    let id = try p.shmget(
                        key: key, size: Int(page) * Int.random(in: 1...3, using: &rng), flags: SharedMemory.create)
                    let size = try p.shmStatus(id).size
                    let a = try p.shmat(id)
                    if let other = ref.maps.first(where: { $0.shm == id }) {
                        #expect(other.address == a.u, note(step, "every attacher gets one address"))
                    }
                    ref.maps.append(
                        .init(
                            process: pi, address: a.u, length: (UInt(size) + page - 1) & ~(page - 1), file: nil,
                            pgoff: 0,
                            shared: true, writable: true, snapshot: nil, inPlace: true, shm: id))
                } catch {
                    #expect([Errno.noMemory, .invalidArgument].contains(error), note(step, "shm: \(error)"))
                }
            case 86..<90:
                // IPC_RMID on a segment nobody in the reference uses any more.
                for key in Int32(1)...3 {
                    if let id = try? p.shmget(key: key, size: 1, flags: 0), !ref.maps.contains(where: { $0.shm == id })
                    {
                        try p.shmRemove(id)
                    }
                }
            case 90..<94:
                // unlink: the name goes; mappings keep the data.
                guard ref.files[file] != nil else { continue }
                try p.unlink(file)
                ref.files[file] = nil
                for i in ref.maps.indices where ref.maps[i].file == file { ref.maps[i].file = "(unlinked)" }
            case 94..<97:
                // A process exits; a new one starts.
                p.exit()
                ref.maps.removeAll { $0.process == pi }
                procs[pi] = s.createProcess()
            default:
                // Anonymous memory in between, to move the allocator around.
                if let a = try? p.mmap(length: page * UInt.random(in: 1...4, using: &rng), protection: rw, flags: anon)
                {
                    ref.maps.append(
                        .init(
                            process: pi, address: a.u, length: p.mappings.first { $0.start == a }!.end.rawValue - a.u,
                            file: nil, pgoff: 0, shared: false, writable: true, snapshot: nil))
                }
            }
            // After every step: invariants; private copies unchanged; shared mappings of a
            // file show the file; every file reads back as the reference says.
            if let v = s.invariantViolation() {
                Issue.record(note(step, v))
                return
            }
            for m in ref.maps {
                if let snap = m.snapshot {
                    #expect(bytes(VirtualAddress(m.address), snap.count) == snap, note(step, "a private copy changed"))
                }
                if m.shared, m.inPlace, let f = m.file, m.shm == nil, let content = ref.files[f] {
                    let want = expected(f, m.pgoff, Int(m.length))
                    let visible = min(Int(m.length), max(0, content.count - m.pgoff * Int(page)))
                    #expect(
                        bytes(VirtualAddress(m.address), visible) == Array(want[0..<visible]),
                        note(step, "shared mapping of \(f) differs from the file"))
                }
            }
            if let content = ref.files[file] {
                let fd = try procs[0].open(file)
                let got = try procs[0].pread(fd, count: content.count + 10, offset: 0)
                try procs[0].close(fd)
                if got != content {
                    let i =
                        (0..<min(got.count, content.count)).first { got[$0] != content[$0] }
                        ?? min(got.count, content.count)
                    Issue.record(
                        note(
                            step,
                            "\(file) (op \(op)) reads \(got.count) bytes, want \(content.count); first difference at \(i)"
                        ))
                    return
                }
            }
        }
        #expect(everythingBackViolation(s, procs) == nil, "seed \(seed)")
    }
}
