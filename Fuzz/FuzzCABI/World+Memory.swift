// SPDX-License-Identifier: Apache-2.0
//
// The memory calls: mmap / mmap2 / munmap / mremap, futex, the page allocator's entry
// points, and reads and writes of mapped memory.
import CNommu
import FuzzSupport
import NommuCABI
import NommuMM
#if canImport(Glibc)
    import Glibc
#endif

extension World {
    // MARK: Addresses

    /// An address inside the arena or outside it, aligned or not, that no call handed out.
    func garbageAddress(_ input: inout FuzzInput) -> UInt {
        switch input.byte() % 8 {
        case 0: return 0
        case 1: return UInt(input.byte())
        case 2: return page
        case 3: return arenaBase + page * UInt(input.word() % totalPages)
        case 4: return arenaBase + UInt(input.word())
        case 5: return UInt.max & ~(page - 1)
        case 6: return UInt(input.u64())
        default: return arenaBase &- page  // below the arena; arenaBase is far above one page
        }
    }

    /// A record of `g`, or nil when it has none.
    func pickRecord(_ g: Group, _ input: inout FuzzInput) -> Record? {
        let i = input.word()
        return g.records.isEmpty ? nil : g.records[i % g.records.count]
    }

    /// A record of another address space than `p`'s (to exercise isolation), or nil.
    func foreignRecord(_ p: Proc, _ input: inout FuzzInput) -> Record? {
        let others = groups.filter { $0.group !== p.group && !$0.group.records.isEmpty }
        let i = Int(input.byte())
        return others.isEmpty ? nil : pickRecord(others[i % others.count].group, &input)
    }

    /// A range for munmap or mremap: one of the process's own mappings (whole, its front,
    /// its back, a page in its middle, an unaligned start), another process's, or garbage.
    func range(_ p: Proc, _ input: inout FuzzInput) -> (start: UInt, length: UInt) {
        let sel = input.byte() % 10
        if sel < 7, let r = pickRecord(p.group, &input) {
            let n = r.end - r.start
            let k = page * UInt(1 + input.byte() % 4)
            switch sel {
            case 0, 1, 2: return (r.start, n)
            case 3: return (r.start, k)
            case 4: return n > k ? (r.end - k, k) : (r.start, n)
            case 5: return n > 2 * page ? (r.start + page, page) : (r.start, n + page)  // records are small
            default: return (r.start + UInt(1 + input.byte() % 16), n - 1)
            }
        }
        if sel < 9, let r = foreignRecord(p, &input) { return (r.start, r.end - r.start) }
        return (garbageAddress(&input), input.length(page: page))
    }

    /// Whether every mapping of `p`'s address space that [start, start + length) touches
    /// is one the harness made: never unmap or remap a malloc area from under the malloc.
    func onlyMine(_ p: Proc, _ start: UInt, _ length: UInt) -> Bool {
        let n = rounded(length)
        let (sum, wrapped) = start.addingReportingOverflow(n)
        let end = wrapped ? UInt.max : sum
        for m in p.process.mappings where m.start.rawValue < end && m.end.rawValue > start {
            let mine = p.group.records.contains { $0.start < m.end.rawValue && $0.end > m.start.rawValue }
            if !mine { return false }
        }
        return true
    }

    // MARK: mmap

    /// nil for MAP_FAILED.
    func mapped(_ r: UnsafeMutableRawPointer?) -> UInt? {
        let a = UInt(bitPattern: r)
        if a == 0 { fail("mmap returned NULL rather than MAP_FAILED") }
        return a == UInt.max ? nil : a
    }

    /// Enters a mapping the model handed out, after checking what it must be.
    func accept(
        _ p: Proc, _ a: UInt, length: UInt, prot: CInt, flags: CInt, hint: UnsafeMutableRawPointer?, kind: Kind,
        zero: Bool
    ) {
        if hint != nil || flags & MAP_FIXED != 0 {
            fail(
                "mmap with address \(hex(UInt(bitPattern: hint))), flags \(hex(UInt(UInt32(bitPattern: flags)))) succeeded"
            )
        }
        let n = rounded(length)
        if n == 0 { fail("mmap of length \(length) succeeded") }
        if kind == .anonymous && a & (page - 1) != 0 { fail("anonymous memory at unaligned \(hex(a))") }
        if zero { expectZero(a, n, "fresh mapping") }
        if kind == .anonymous && prot & PROT_WRITE != 0 {
            let tag = UInt8(truncatingIfNeeded: step) | 1
            UnsafeMutablePointer<UInt8>(bitPattern: a)!.pointee = tag
            UnsafeMutablePointer<UInt8>(bitPattern: a + n - 1)!.pointee = tag &+ 1
        }
        p.group.records.append(refreshed(Record(start: a, end: a + n, prot: prot, kind: kind)))
    }

    func hint(_ p: Proc, _ input: inout FuzzInput) -> UnsafeMutableRawPointer? {
        guard input.chance(8) else { return nil }
        let a = input.chance(2) ? (pickRecord(p.group, &input)?.start ?? page) : garbageAddress(&input)
        return UnsafeMutableRawPointer(bitPattern: a)
    }

    func mmapAnonymous(_ p: Proc, _ input: inout FuzzInput) {
        let length = input.length(page: page)
        let prot = input.protection()
        let flags = input.mapFlags() | MAP_ANONYMOUS
        let hint = hint(p, &input)
        let fd: CInt = input.chance(4) ? CInt(Int8(bitPattern: input.byte())) : -1
        let offset: off_t = input.chance(4) ? input.mapOffset(page: page) : 0
        guard let a = mapped(nommu_mmap(p.handle, hint, Int(bitPattern: length), prot, flags, fd, offset)) else {
            return
        }
        let uninitialized = flags & CInt(MAP_UNINITIALIZED) != 0 && allowUninitialized
        accept(p, a, length: length, prot: prot, flags: flags, hint: hint, kind: .anonymous, zero: !uninitialized)
    }

    /// A descriptor of `p`'s table (with what it is), or a number that may not be open.
    func descriptor(_ p: Proc, _ input: inout FuzzInput) -> (fd: CInt, what: Descriptor?) {
        let fds = p.fds
        if !input.chance(8) && !fds.isEmpty {
            let keys = fds.keys.sorted()
            let fd = keys[Int(input.byte()) % keys.count]
            return (fd, fds[fd])
        }
        let fd = input.pick([-1, 0, 1, 2, 3, 7, 1023, 1024, CInt.max, CInt.min])
        return (fd, fds[fd])
    }

    func mmapFile(_ p: Proc, _ input: inout FuzzInput) {
        let (fd, what) = descriptor(p, &input)
        let length = input.length(page: page)
        let prot = input.protection()
        var flags = input.mapFlags()
        if input.chance(16) { flags |= MAP_ANONYMOUS }
        let hint = hint(p, &input)
        let result =
            if input.chance(4) {
                nommu_mmap2(p.handle, hint, Int(bitPattern: length), prot, flags, fd, input.pageOffset())
            } else {
                nommu_mmap(p.handle, hint, Int(bitPattern: length), prot, flags, fd, input.mapOffset(page: page))
            }
        guard let a = mapped(result) else { return }
        if flags & MAP_ANONYMOUS != 0 {
            let uninitialized = flags & CInt(MAP_UNINITIALIZED) != 0 && allowUninitialized
            accept(p, a, length: length, prot: prot, flags: flags, hint: hint, kind: .anonymous, zero: !uninitialized)
            return
        }
        switch what {
        case .file(let path):
            accept(p, a, length: length, prot: prot, flags: flags, hint: hint, kind: .file, zero: path == "/dev/zero")
        case .pipe, .socket, nil:
            fail("mmap of descriptor \(fd) (\(String(describing: what))) succeeded")
        }
    }

    // MARK: munmap, mremap

    func munmap(_ p: Proc, _ input: inout FuzzInput) {
        let (start, length) = range(p, &input)
        guard onlyMine(p, start, length) else { return }
        errno = 0
        let rc = nommu_munmap(p.handle, UnsafeMutableRawPointer(bitPattern: start), Int(bitPattern: length))
        if rc != 0 {
            if rounded(length) == 0 && errno != EINVAL { fail("munmap of length \(length): errno \(errno)") }
            return
        }
        // What the model removes (AddressSpace/Munmap.swift): a cut of one anonymous mapping, or one
        // whole file mapping that starts at or above `start` and ends at `end`.
        let end = start + rounded(length)
        var kept: [Record] = []
        for r in p.group.records {
            guard r.start < end && r.end > start else {
                kept.append(r)
                continue
            }
            if r.kind == .anonymous {
                if r.start < start {
                    kept.append(refreshed(Record(start: r.start, end: start, prot: r.prot, kind: r.kind)))
                }
                if r.end > end { kept.append(refreshed(Record(start: end, end: r.end, prot: r.prot, kind: r.kind))) }
            } else if !(r.start >= start && r.end == end) {
                kept.append(r)
            }
        }
        p.group.records = kept
    }

    func mremap(_ p: Proc, _ input: inout FuzzInput) {
        let (start, oldLength) = range(p, &input)
        let n = rounded(oldLength)
        let newLength: UInt
        // Growth wraps for garbage lengths near UInt.max: the wrapped value is as good an argument.
        switch input.byte() % 8 {
        case 0: newLength = oldLength
        case 1, 2:
            let cut = page * UInt(1 + input.byte() % 2)
            newLength = n > cut ? n - cut : page
        case 3: newLength = n &+ page
        case 4: newLength = UInt(input.byte()) + 1
        case 5: newLength = 0
        case 6: newLength = input.length(page: page)
        default: newLength = n &+ page * UInt(input.byte() % 8)
        }
        let flags: CInt = input.pick([0, 0, 1, 1, 2, 3, CInt(input.byte())])  // MREMAP_MAYMOVE 1, MREMAP_FIXED 2
        let newAddress: UInt? = flags & 2 == 0 ? nil : (input.chance(2) ? start : garbageAddress(&input))
        guard onlyMine(p, start, oldLength) else { return }
        let result = nommu_mremap_fixed_args(
            p.handle, UnsafeMutableRawPointer(bitPattern: start), Int(bitPattern: oldLength),
            Int(bitPattern: newLength), flags, newAddress.flatMap { UnsafeMutableRawPointer(bitPattern: $0) })
        guard let a = mapped(result) else { return }
        if a != start { fail("mremap moved \(hex(start)) to \(hex(a)) (no-MMU mappings never move)") }
        let m = rounded(newLength)
        if m == 0 { fail("mremap to length \(newLength) succeeded") }
        if let i = p.group.records.firstIndex(where: { $0.start == start && $0.end == start + n }) {
            p.group.records[i].end = start + m
            p.group.records[i] = refreshed(p.group.records[i])
        }
    }

    // MARK: Memory

    /// Writes into one of the process's writable mappings (or a malloc block's interior),
    /// or reads a readable one.
    func touch(_ p: Proc, _ input: inout FuzzInput) {
        if input.chance(4) && !p.blocks.isEmpty {
            let b = p.blocks[input.word() % p.blocks.count]
            // Never its first 16 bytes (a free of block + 16 reads bytes 8..15 as a header
            // word, which must stay fill) nor its last byte. It writes the block's own fill:
            // a realloc that shrinks the block checks its new last byte, which may lie here
            // (writing another byte made random inputs report a lost realloc falsely).
            guard b.size > 17 else { return }
            let at = 16 + input.word() % (b.size - 17)
            let n = min(1 + Int(input.byte()), b.size - 1 - at)
            _ = input.byte()
            (b.pointer + at).initializeMemory(as: UInt8.self, repeating: b.fill, count: n)
            return
        }
        let (i, at, count, write, fill) = (input.word(), input.word(), Int(input.byte()), input.chance(2), input.byte())
        guard !p.group.records.isEmpty else { return }
        let r = p.group.records[i % p.group.records.count]
        let size = Int(r.end - r.start)
        let n = min(1 + count * 4, size - at % size)
        let base = UnsafeMutableRawPointer(bitPattern: r.start + UInt(at % size))!
        if r.writable && write {
            base.initializeMemory(as: UInt8.self, repeating: fill, count: n)
            p.group.records[i % p.group.records.count] = refreshed(r)
            if case .shm(let id) = r.kind { segments[id] = false }
        } else if r.readable {
            let bytes = UnsafeRawBufferPointer(start: base, count: n)
            sink &+= bytes.reduce(0) { $0 &+ UInt64($1) }
        }
    }

    /// FUTEX_WAKE, or FUTEX_WAIT with a timeout under a microsecond (never without), at an
    /// address in a mapping, a malloc block, another process's mapping, or garbage.
    func futex(_ p: Proc, _ input: inout FuzzInput) {
        var address: UInt
        switch input.byte() % 6 {
        case 0, 1, 2:
            guard let r = pickRecord(p.group, &input) else { return }
            address = r.start + UInt(input.word()) % (r.end - r.start) & ~3
            if input.chance(8) { address += 1 }
        case 3:
            guard !p.blocks.isEmpty else { return }
            address = UInt(bitPattern: p.blocks[input.word() % p.blocks.count].pointer)
        case 4:
            guard let r = foreignRecord(p, &input) else { return }
            address = r.start
        default:
            address = garbageAddress(&input)
        }
        let op: CInt = input.pick([
            FUTEX_WAKE, FUTEX_WAKE | 128, FUTEX_WAIT, FUTEX_WAIT | 128, FUTEX_WAIT | 256, 3, 9,
            CInt(input.byte()),
        ])
        var value = UInt32(truncatingIfNeeded: input.word())
        let current = input.chance(2)
        let readable = p.group.records.contains {
            $0.readable && $0.start <= address && address < $0.end && $0.end - address >= 4
        }
        if readable && address & 3 == 0 && current {
            value = UnsafePointer<UInt32>(bitPattern: address)!.pointee
        }
        var timeout = timespec(tv_sec: 0, tv_nsec: Int(input.byte()) * 3)
        switch input.byte() % 8 {
        case 0: timeout.tv_nsec = 1_000_000_000
        case 1: timeout.tv_sec = -1
        case 2:
            // The edges of a timespec (LONG_MAX seconds and the like): only where the word
            // differs, so that a wait that is accepted returns EAGAIN instead of blocking.
            timeout.tv_sec = Int(truncatingIfNeeded: input.extreme())
            timeout.tv_nsec = input.pick([0, 999_999_999, -1, Int(truncatingIfNeeded: input.extreme())])
            if readable && address & 3 == 0 {
                value = UnsafePointer<UInt32>(bitPattern: address)!.pointee ^ 1
            } else if timeout.tv_sec > 0 || timeout.tv_nsec > 1_000 {
                timeout = timespec(tv_sec: 0, tv_nsec: 0)  // never a long wait on a word it cannot see
            }
        default: break
        }
        // Every call carries the timeout: an unknown op with the wait bits clear is a wait.
        _ = nommu_futex(p.handle, UnsafeMutablePointer<UInt32>(bitPattern: address), op, value, &timeout)
    }

    // MARK: The page allocator's entry points

    /// nommu_alloc_pages / _exact, their frees, and frees of what they never handed out.
    func pages(_ input: inout FuzzInput) {
        switch input.byte() % 5 {
        case 0:
            let order = CUnsignedInt(input.byte() % 12)
            let zero = input.chance(2)
            guard let r = nommu_alloc_pages(handle, order, zero ? NOMMU_GFP_ZERO : 0) else { return }
            let bytes = Int(page) << order
            if zero { expectZero(UInt(bitPattern: r), UInt(bytes), "nommu_alloc_pages(GFP_ZERO)") }
            runs.append((r, order, bytes))
        case 1:
            let bytes = input.pick([0, 1, Int(page), 3 * Int(page) + 1, input.word() * 16, -1, Int.max])
            let zero = input.chance(2)
            guard let r = nommu_alloc_pages_exact(handle, bytes, zero ? NOMMU_GFP_ZERO : 0) else { return }
            if zero { expectZero(UInt(bitPattern: r), UInt(bytes), "nommu_alloc_pages_exact(GFP_ZERO)") }
            runs.append((r, nil, bytes))
        case 2, 3:
            guard !runs.isEmpty else { return }
            let i = input.word() % runs.count
            let r = runs[i]
            if freeRun(r) != 0 { fail("freeing page run \(r): errno \(errno)") }
            runs.remove(at: i)
        default:
            // Not a run of that order: a live run's pointer with a larger order, a page
            // inside a run, a page a mapping (or the page cache, or a segment) holds, an
            // address off the page grid or outside the arena. EINVAL, and nothing changes.
            var pointer: UInt
            var order = CUnsignedInt(input.byte() % 12)
            switch input.byte() % 4 {
            case 3:
                // Any process's mapping, at any page of it, with a small order: the allocator
                // alone would take it back; the system must refuse.
                guard let q = procs.isEmpty ? nil : procs[Int(input.byte()) % procs.count],
                    let m = q.process.mappings.isEmpty
                        ? nil : q.process.mappings[Int(input.byte()) % q.process.mappings.count]
                else { return }
                let pages = max(1, (m.end.rawValue - m.start.rawValue) / page)
                pointer = m.start.rawValue + page * (UInt(input.byte()) % pages)
                order = CUnsignedInt(input.byte() % 3)
            case 0:
                guard let r = runs.first(where: { $0.order != nil }) else { return }
                pointer = UInt(bitPattern: r.pointer)
                order = r.order! + 1 + CUnsignedInt(input.byte() % 2)
            case 1:
                guard let r = runs.first(where: { $0.bytes > Int(page) }) else { return }
                pointer = UInt(bitPattern: r.pointer) + page
            default:
                pointer = input.pick([
                    0, 1, 0xdead_0000_0000, arenaBase + 1, arenaBase + page * UInt(totalPages),
                    UInt.max & ~(page - 1), arenaBase + UInt(input.word()) | 1,
                ])
            }
            errno = 0
            if nommu_free_pages(handle, UnsafeMutableRawPointer(bitPattern: pointer), order) == 0 || errno != EINVAL {
                fail("nommu_free_pages(\(hex(pointer)), \(order)) of no such run: errno \(errno)")
            }
        }
    }
}
