// SPDX-License-Identifier: Apache-2.0
//
// The `heap` policy: boundary-tag chunks inside mmapped areas.
//
// A chunk at address c (8 past a multiple of 16, so its payload is 16-byte aligned; size a
// multiple of 16, at least 32):
//   c+0         the size word: INUSE (bit 0), PREV_INUSE (bit 1), the size (bits 4-47); in
//               use also the slack (bits 48-55: usable bytes less the bytes asked for) and
//               the tag (bits 56-63: the heap's, or a thread cache's)
//   c+8         in use: payload (to c+size);  free: next chunk in its bin
//   c+16        free: previous chunk in its bin
//   c+size-8    free: the size again (the footer a following chunk coalesces through; in use,
//               the last 8 bytes of the payload)
// So a block costs 8 bytes of header, as glibc's does (its prev_size overlaps the previous
// chunk's payload as this footer does). An area [a, a + n) holds chunks from a + 8 up to an
// 8-byte fence at a + n − 8 that is always in use. Free chunks never touch (they coalesce
// at once). Bins: exact 16-byte classes below 1 KiB, quarter-octaves above; a bitmap of
// non-empty bins finds the first bin that must fit in O(1).
internal import CShims
import NommuBase

#if _endian(big)
    #error("a chunk's tag bytes are written apart from its flag byte, little-endian")
#endif

/// A chunk, seen through its address.
struct Chunk: Equatable {
    /// The header of an in-use chunk: its size word.
    static let overhead = 8
    static let minimum = 32
    /// The fence's size word says 16 (no chunk is that small); the fence is the word alone.
    static let fenceSize = 16
    static let sizeMask: UInt64 = 0x0000_FFFF_FFFF_FFF0
    static let flagMask: UInt64 = 3
    static let inUseBit: UInt64 = 1
    static let prevInUseBit: UInt64 = 2

    let base: UnsafeMutableRawPointer
    init(_ base: UnsafeMutableRawPointer) { self.base = base }

    var address: UInt { UInt(bitPattern: base) }
    /// The size word. Relaxed atomic: a free checks a chunk (and its neighbour's PREV_INUSE)
    /// without the heap lock while a thread holding it may set that bit (plain moves on x86-64).
    var word: UInt64 {
        get { UInt64(bitPattern: cshim_load_relaxed_i64(base.assumingMemoryBound(to: Int64.self))) }
        nonmutating set {
            cshim_store_relaxed_i64(base.assumingMemoryBound(to: Int64.self), Int64(bitPattern: newValue))
        }
    }
    var size: Int { Int(word & Chunk.sizeMask) }
    /// The tag of an in-use chunk (0 for a free one or one being freed).
    var tag: UInt64 { word &>> 56 }
    /// The bytes the program asked for, of a tagged chunk: the usable bytes less the slack.
    var requested: Int { size &- Chunk.overhead &- Int((word &>> 48) & 0xFF) }

    /// Tags an in-use chunk as a block of `requested` bytes: a store to the word's top two
    /// bytes alone (little-endian), so that a neighbour's PREV_INUSE update under the lock is
    /// never lost (see `setPrevInUse`). The slack is below 64 by construction (a chunk is
    /// trimmed to within 31 bytes of its class).
    func tag(_ tag: UInt64, requested: Int) { self.tag(tag, slack: size &- Chunk.overhead &- requested) }

    /// `tag(_:requested:)` for a chunk whose size the caller knows (the lock-free paths: no
    /// load of the word, which may have just been written in part).
    @inline(__always)
    func tag(_ tag: UInt64, slack: Int) {
        assert(slack >= 0 && slack < 256, "slack \(slack)")
        cshim_store_relaxed_half(base + 6, UInt16(truncatingIfNeeded: tag &<< 8 | UInt64(truncatingIfNeeded: slack)))
    }

    /// The word read in the parts a tag store never overlaps (flags and size bits 0-31; size
    /// bits 32-47; tag and slack), for the lock-free paths: a whole-word load just after this
    /// thread's two-byte tag store cannot be served from that store and waits for it (about
    /// 6 ns a malloc/free pair, measured); loads of the same bytes are forwarded.
    @inline(__always)
    var parts: (low: UInt32, sizeHigh: UInt16, tagSlack: UInt16) {
        (cshim_load_relaxed_word32(base), cshim_load_relaxed_half(base + 4), cshim_load_relaxed_half(base + 6))
    }

    /// PREV_INUSE read through the low byte alone (see `parts`).
    @inline(__always)
    var prevInUseByte: Bool { cshim_load_relaxed_byte(base) & UInt8(Chunk.prevInUseBit) != 0 }

    /// Clears the tag (and slack): a second free of the block is then refused.
    func untag() { cshim_store_relaxed_half(base + 6, 0) }
    var inUse: Bool { word & Chunk.inUseBit != 0 }
    var prevInUse: Bool { word & Chunk.prevInUseBit != 0 }
    /// The previous chunk's size, from its footer (valid while that chunk is free).
    var prevSize: Int { Int(base.load(fromByteOffset: -8, as: UInt64.self)) }
    /// Writes the footer of a free chunk.
    func writeFooter() { (base + size - 8).storeBytes(of: UInt64(size), as: UInt64.self) }
    var nextFree: UnsafeMutableRawPointer? {
        get { UnsafeMutableRawPointer(bitPattern: UInt(base.load(fromByteOffset: 8, as: UInt64.self))) }
        nonmutating set { base.storeBytes(of: UInt64(UInt(bitPattern: newValue)), toByteOffset: 8, as: UInt64.self) }
    }
    var prevFree: UnsafeMutableRawPointer? {
        get { UnsafeMutableRawPointer(bitPattern: UInt(base.load(fromByteOffset: 16, as: UInt64.self))) }
        nonmutating set { base.storeBytes(of: UInt64(UInt(bitPattern: newValue)), toByteOffset: 16, as: UInt64.self) }
    }
    var next: Chunk { Chunk(base + size) }
    var payload: UnsafeMutableRawPointer { base + Chunk.overhead }

    func set(size: Int, inUse: Bool, prevInUse: Bool) {
        word = UInt64(size) | (inUse ? Chunk.inUseBit : 0) | (prevInUse ? Chunk.prevInUseBit : 0)
    }

    /// Sets or clears PREV_INUSE (lock held) with a store to the word's low byte alone: the
    /// thread that owns this chunk may be writing its tag bytes at the same time, without the
    /// lock (the two never touch the same byte; a whole-word write would undo the other's).
    func setPrevInUse(_ on: Bool) {
        let old = cshim_load_relaxed_byte(base)
        cshim_store_relaxed_byte(base, on ? old | UInt8(Chunk.prevInUseBit) : old & ~UInt8(Chunk.prevInUseBit))
    }

    /// The chunk size that holds `bytes` of payload.
    static func size(forPayload bytes: Int) -> Int {
        max(minimum, (bytes + overhead + 15) & ~15)
    }
}

/// The heap's bins and areas.
struct HeapState {
    static let binCount = 128
    var bins = [UnsafeMutableRawPointer?](repeating: nil, count: HeapState.binCount)
    var binMap: (UInt64, UInt64) = (0, 0)
    /// Areas by start address: (start, bytes).
    var areas: [(start: UInt, bytes: Int)] = []
    /// Bytes in free chunks.
    var freeBytes = 0
    /// A wholly free area kept for reuse (its start), if any.
    var spare: UInt? = nil

    static func bin(for size: Int) -> Int {
        if size < 1024 { return size >> 4 }
        let lg = Int.bitWidth - 1 - size.leadingZeroBitCount
        let sub = (size >> (lg - 2)) & 3
        return min(binCount - 1, 64 + (lg - 10) * 4 + sub)
    }

    mutating func setBit(_ i: Int, _ on: Bool) {
        if i < 64 {
            binMap.0 = on ? binMap.0 | (1 << UInt64(i)) : binMap.0 & ~(1 << UInt64(i))
        } else {
            binMap.1 = on ? binMap.1 | (1 << UInt64(i - 64)) : binMap.1 & ~(1 << UInt64(i - 64))
        }
    }

    /// The first non-empty bin at or above `i`.
    func firstBin(from i: Int) -> Int? {
        if i < 64 {
            let m = binMap.0 & (~0 << UInt64(i))
            if m != 0 { return m.trailingZeroBitCount }
            return binMap.1 != 0 ? 64 + binMap.1.trailingZeroBitCount : nil
        }
        guard i < HeapState.binCount else { return nil }
        let m = binMap.1 & (~0 << UInt64(i - 64))
        return m != 0 ? 64 + m.trailingZeroBitCount : nil
    }

    mutating func insert(_ c: Chunk) {
        let i = HeapState.bin(for: c.size)
        c.prevFree = nil
        c.nextFree = bins[i]
        if let head = bins[i] { Chunk(head).prevFree = c.base }
        bins[i] = c.base
        setBit(i, true)
        freeBytes += c.size
    }

    mutating func unlink(_ c: Chunk) {
        let i = HeapState.bin(for: c.size)
        if let p = c.prevFree { Chunk(p).nextFree = c.nextFree } else { bins[i] = c.nextFree }
        if let n = c.nextFree { Chunk(n).prevFree = c.prevFree }
        if bins[i] == nil { setBit(i, false) }
        freeBytes -= c.size
    }

    /// The area holding `address`, by bisection.
    func area(containing address: UInt) -> Int? {
        var lo = 0
        var hi = areas.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if areas[mid].start + UInt(areas[mid].bytes) <= address { lo = mid + 1 } else { hi = mid }
        }
        return lo < areas.count && areas[lo].start <= address ? lo : nil
    }
}

extension Malloc {
    func heapAllocate(_ a: HeapArena, _ size: Int, alignment: Int, zeroed: Bool, grow: Bool = true) throws(Errno)
        -> UnsafeMutableRawPointer
    {
        let need = Chunk.size(forPayload: size + (alignment > 16 ? alignment + Chunk.minimum : 0))
        let c = try takeChunk(a, need, grow: grow)
        var chunk = c
        if alignment > 16 {
            chunk = align(a, c, to: alignment)
        }
        trim(a, chunk, to: Chunk.size(forPayload: size))
        let p = chunk.payload
        chunk.tag(BlockHeader.heapTag, requested: size)
        if zeroed { p.initializeMemory(as: UInt8.self, repeating: 0, count: size) }
        return p
    }

    /// A free chunk of at least `need` bytes already in the bins, unlinked and marked in use;
    /// nil when none fits.
    func takeFreeChunk(_ a: HeapArena, _ need: Int) -> Chunk? {
        var i = HeapState.bin(for: need)
        if i >= 64, var p = a.heap.bins[i] {
            var looked = 0
            while looked < 8 {
                let c = Chunk(p)
                if c.size >= need {
                    markTaken(a, c)
                    return c
                }
                guard let n = c.nextFree else { break }
                p = n
                looked += 1
            }
            i += 1
        } else if i < 64, a.heap.bins[i] == nil {
            i += 1
        }
        if let j = a.heap.firstBin(from: i), let p = a.heap.bins[j] {
            let c = Chunk(p)
            if c.size >= need {
                markTaken(a, c)
                return c
            }
        }
        return nil
    }

    /// A free chunk of at least `need` bytes, unlinked and marked in use (a new area when none
    /// fits and `grow` allows; ENOMEM when it does not).
    func takeChunk(_ a: HeapArena, _ need: Int, grow: Bool = true) throws(Errno) -> Chunk {
        if let c = takeFreeChunk(a, need) { return c }
        guard grow else { throw .noMemory }
        let c = try growHeap(a, need)
        markTaken(a, c)
        return c
    }

    private func markTaken(_ a: HeapArena, _ c: Chunk) {
        a.heap.unlink(c)
        c.set(size: c.size, inUse: true, prevInUse: c.prevInUse)
        c.next.setPrevInUse(true)
    }

    /// Maps a new area holding at least `need` bytes; returns its one free chunk (in a bin).
    func growHeap(_ a: HeapArena, _ need: Int) throws(Errno) -> Chunk {
        let page = process.system.configuration.pageSize
        // The first chunk starts 8 bytes in (its payload 16-byte aligned); the fence is the last 8.
        let bytes = (max(configuration.extendSize, need + 2 * Chunk.overhead) + page - 1) / page * page
        let base = try map(a, bytes, uninitialized: configuration.uninitialized)
        let start = UInt(bitPattern: base)
        let i = a.heap.areas.firstIndex { $0.start > start } ?? a.heap.areas.count
        a.heap.areas.insert((start, bytes), at: i)
        markArea(start, bytes: bytes, heap: a.index)
        let fence = Chunk(base + bytes - Chunk.overhead)
        fence.set(size: Chunk.fenceSize, inUse: true, prevInUse: false)
        let c = Chunk(base + Chunk.overhead)
        c.set(size: bytes - 2 * Chunk.overhead, inUse: false, prevInUse: true)
        c.writeFooter()
        a.heap.insert(c)
        return c
    }

    /// Splits off the tail of an in-use chunk beyond `size` as a free chunk when it is big enough.
    func trim(_ a: HeapArena, _ c: Chunk, to size: Int) {
        let excess = c.size - size
        guard excess >= Chunk.minimum else { return }
        c.set(size: size, inUse: true, prevInUse: c.prevInUse)
        let rest = Chunk(c.base + size)
        rest.set(size: excess, inUse: true, prevInUse: true)
        freeChunk(a, rest)
    }

    /// Gives the leading part of `c` back so that the payload is aligned; returns the aligned chunk.
    func align(_ a: HeapArena, _ c: Chunk, to alignment: Int) -> Chunk {
        let step = UInt(alignment)
        var payload = (c.address + UInt(Chunk.overhead) + step - 1) & ~(step - 1)
        if payload - UInt(Chunk.overhead) != c.address
            && payload - UInt(Chunk.overhead) - c.address < UInt(Chunk.minimum)
        {
            payload += step
        }
        let start = payload - UInt(Chunk.overhead)
        guard start != c.address else { return c }
        let lead = Int(start - c.address)
        let aligned = Chunk(UnsafeMutableRawPointer(bitPattern: start)!)
        aligned.set(size: c.size - lead, inUse: true, prevInUse: true)
        c.set(size: lead, inUse: true, prevInUse: c.prevInUse)
        freeChunk(a, c)
        return aligned
    }

    /// Frees an in-use chunk: coalesce, bin, and (unless `mayUnmap` is false) give back a
    /// wholly free area.
    func freeChunk(_ a: HeapArena, _ chunk: Chunk, mayUnmap: Bool = true) {
        var c = chunk
        var size = c.size
        var prevInUse = c.prevInUse
        if !prevInUse {
            let prev = Chunk(c.base - c.prevSize)
            a.heap.unlink(prev)
            size += prev.size
            prevInUse = prev.prevInUse
            c = prev
        }
        let next = Chunk(c.base + size)
        if !next.inUse {
            a.heap.unlink(next)
            size += next.size
        }
        c.set(size: size, inUse: false, prevInUse: prevInUse)
        c.writeFooter()
        c.next.setPrevInUse(false)
        // Wholly free (O(1): the chunk starts an area and the next one is its fence). One
        // such area is kept for reuse; another one at or above the unmap threshold is given back.
        let area = c.address &- UInt(Chunk.overhead)
        if isAreaStart(area), isFence(c.next) {
            let bytes = size + 2 * Chunk.overhead
            if mayUnmap, let spare = a.heap.spare, spare != area, isWhollyFree(spare),
                bytes >= configuration.unmapThreshold,
                let i = a.heap.area(containing: c.address)
            {
                a.heap.areas.remove(at: i)
                markArea(area, bytes: bytes, heap: nil)
                unmap(c.base - Chunk.overhead, bytes)
                return
            }
            a.heap.spare = area
        }
        a.heap.insert(c)
    }

    /// Whether the area starting at `start` is one free chunk.
    func isWhollyFree(_ start: UInt) -> Bool {
        guard isAreaStart(start) else { return false }
        let c = Chunk(UnsafeMutableRawPointer(bitPattern: start + UInt(Chunk.overhead))!)
        return !c.inUse && isFence(c.next)
    }

    /// Whether `c` is an area's fence (the only in-use chunk whose size word says 16).
    func isFence(_ c: Chunk) -> Bool {
        c.word & ~UInt64(Chunk.prevInUseBit) == UInt64(Chunk.fenceSize) | Chunk.inUseBit
    }

    func heapFree(_ a: HeapArena, _ p: UnsafeMutableRawPointer) {
        let c = Chunk(p - Chunk.overhead)
        c.untag()  // a second free is refused
        freeChunk(a, c)
    }

    /// Grows or shrinks a heap block where it is; nil when it must move.
    func heapResizeInPlace(_ a: HeapArena, _ p: UnsafeMutableRawPointer, _ size: Int) -> UnsafeMutableRawPointer? {
        let c = Chunk(p - Chunk.overhead)
        let need = Chunk.size(forPayload: size)
        if need > c.size {
            let n = c.next
            guard !n.inUse, c.size + n.size >= need else { return nil }
            a.heap.unlink(n)
            c.set(size: c.size + n.size, inUse: true, prevInUse: c.prevInUse)
            c.next.setPrevInUse(true)
        }
        trim(a, c, to: need)
        c.tag(BlockHeader.heapTag, requested: size)
        return p
    }
}

extension Malloc {
    /// The first broken heap invariant, or nil, in any of the malloc's heaps: every area is
    /// tiled exactly by chunks ending in its fence, and the page map gives every page of it to
    /// its heap (the first page marked as the area's start); sizes are aligned and at least
    /// the minimum; no two free chunks touch; every free chunk's footer and its neighbour's
    /// PREV_INUSE bit agree; the bins hold exactly the free chunks, each in its own bin, with
    /// the bitmap and the free byte count matching.
    package func heapViolation() -> String? {
        var areaPagesSeen = 0
        for h in 0..<heapCount {
            let a = heaps[h]
            if let v = a.withLock({ heapViolation(a, areaPages: &areaPagesSeen) }) { return "heap \(h): \(v)" }
        }
        var mapped = 0
        for page in 0..<(Int(arenaBytes) >> pageShift) where pageOwner(page) != nil { mapped += 1 }
        guard mapped == areaPagesSeen else {
            return "page map gives \(mapped) pages to heaps, areas hold \(areaPagesSeen)"
        }
        return nil
    }

    private func heapViolation(_ a: HeapArena, areaPages: inout Int) -> String? {
        var freeInAreas: Set<UInt> = []
        var freeBytes = 0
        for (start, bytes) in a.heap.areas {
            let first = Int((start - arenaBase) >> UInt(pageShift))
            guard isAreaStart(start) else { return "area \(start): not marked as an area's start" }
            for page in first..<(first + bytes >> pageShift) where pageOwner(page) != a.index {
                return "area \(start): page \(page) given to heap \(pageOwner(page).map(String.init) ?? "none")"
            }
            areaPages += bytes >> pageShift
            var c = Chunk(UnsafeMutableRawPointer(bitPattern: start + UInt(Chunk.overhead))!)
            var prevFree = false
            let fence = start + UInt(bytes - Chunk.overhead)
            guard c.prevInUse else { return "area \(start): first chunk without PREV_INUSE" }
            while c.address < fence {
                let size = c.size
                guard size >= Chunk.minimum, size & 15 == 0, c.address + UInt(size) <= fence else {
                    return "chunk \(c.address): bad size \(size)"
                }
                guard c.prevInUse == !prevFree else { return "chunk \(c.address): PREV_INUSE disagrees" }
                if !c.inUse {
                    guard !prevFree else { return "chunk \(c.address): two free chunks touch" }
                    guard c.next.prevSize == size else { return "chunk \(c.address): footer \(c.next.prevSize)" }
                    freeInAreas.insert(c.address)
                    freeBytes += size
                }
                prevFree = !c.inUse
                c = c.next
            }
            guard c.address == fence, c.inUse, c.size == Chunk.fenceSize else { return "area \(start): fence" }
            guard c.prevInUse == !prevFree else { return "area \(start): fence PREV_INUSE" }
        }
        var inBins: Set<UInt> = []
        for i in 0..<HeapState.binCount {
            var p = a.heap.bins[i]
            var prev: UnsafeMutableRawPointer? = nil
            let bit = i < 64 ? (a.heap.binMap.0 >> UInt64(i)) & 1 : (a.heap.binMap.1 >> UInt64(i - 64)) & 1
            guard (p != nil) == (bit == 1) else { return "bin \(i): bitmap disagrees" }
            while let q = p {
                let c = Chunk(q)
                guard HeapState.bin(for: c.size) == i else {
                    return "chunk \(c.address) of size \(c.size) in bin \(i)"
                }
                guard c.prevFree == prev else { return "bin \(i): back link of \(c.address)" }
                guard inBins.insert(c.address).inserted else { return "chunk \(c.address) twice in the bins" }
                prev = q
                p = c.nextFree
            }
        }
        guard inBins == freeInAreas else {
            return "bins hold \(inBins.count) chunks, areas \(freeInAreas.count) free"
        }
        guard freeBytes == a.heap.freeBytes else { return "free bytes \(a.heap.freeBytes), counted \(freeBytes)" }
        return nil
    }
}
