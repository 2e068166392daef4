// SPDX-License-Identifier: Apache-2.0
//
// The fuzz input read as arguments: bytes, words, and the lengths, offsets, protections
// and flags of the calls, each drawn from a small table of interesting values.
import CNommu
import FuzzSupport
#if canImport(Glibc)
    import Glibc
#endif

/// The calls' arguments, drawn from the input.
extension FuzzInput {
    mutating func u64() -> UInt64 {
        var v: UInt64 = 0
        for _ in 0..<8 { v = v << 8 | UInt64(byte()) }
        return v
    }

    /// A value from the edges, where arithmetic on a caller's number overflows: 0, 1, a page
    /// less one, 2^31 ± 1, 2^32 ± 1, 2^62 (and one less), 2^63 − 1, 2^63, 2^64 − 1, and small
    /// negatives (as the word's bit pattern).
    mutating func extreme() -> UInt64 { pick(FuzzInput.extremes) }

    static let extremes: [UInt64] = [
        0, 1, 4095, 0x7fff_ffff, 0x8000_0000, 0x8000_0001, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0001,
        0x3fff_ffff_ffff_ffff, 0x4000_0000_0000_0000, 0x7fff_ffff_ffff_ffff, 0x8000_0000_0000_0000,
        0xffff_ffff_ffff_ffff, 0xffff_ffff_ffff_f000, 0xffff_ffff_ffff_fffe,
    ]

    /// True once in `n` (by the next byte).
    mutating func chance(_ n: UInt8) -> Bool { byte() % n == 0 }

    /// One of `choices` (not empty).
    mutating func pick<T>(_ choices: [T]) -> T { choices[Int(byte()) % choices.count] }

    /// A length for mmap, munmap, mremap or shmget: zero, under a page, a few pages, many
    /// pages and ragged, or huge (wrapping when page-rounded, or past TASK_SIZE).
    mutating func length(page: UInt) -> UInt {
        switch byte() % 10 {
        case 0: return 0
        case 1, 2: return UInt(1 + Int(byte()))
        case 3, 4: return page * UInt(1 + byte() % 4)
        case 5: return page * UInt(1 + byte() % 64) + UInt(byte())
        case 6: return UInt(word()) * 16
        case 7: return UInt.max - UInt(byte())
        case 8: return pick([UInt(Int.max), 1 << 47, (1 << 47) - page, UInt.max / 2 + 1, 1 << 32])
        default: return page
        }
    }

    /// A byte offset for mmap: mostly 0, else page multiples, unaligned, negative, huge.
    mutating func mapOffset(page: UInt) -> off_t {
        switch byte() % 8 {
        case 0...3: return 0
        case 4: return off_t(page) * off_t(byte() % 8)
        case 5: return off_t(byte())
        case 6: return -off_t(page)
        default: return pick([off_t.max & ~off_t(page - 1), 1 << 40, -1, off_t.min])
        }
    }

    /// A page offset for mmap2 (pgoff + pages may wrap: EOVERFLOW).
    mutating func pageOffset() -> UInt {
        switch byte() % 6 {
        case 0...2: return 0
        case 3: return UInt(byte() % 8)
        case 4: return UInt.max - UInt(byte() % 4)
        default: return pick([1 << 52, UInt(Int.max), 1 << 40])
        }
    }

    /// A file offset for pread, pwrite and ftruncate.
    mutating func fileOffset(page: UInt) -> off_t {
        switch byte() % 8 {
        case 0...2: return 0
        case 3: return off_t(byte())
        case 4: return off_t(page) * off_t(byte() % 8) + off_t(byte() % 3)
        case 5: return off_t(word()) * 16
        case 6: return -1 - off_t(byte())
        default: return pick([1 << 32, 1 << 40, off_t.max, off_t.max - 1, (1 << 31) - 1])
        }
    }

    /// `PROT_*`: read / write / exec combinations, now and then unknown bits.
    mutating func protection() -> CInt {
        let b = byte()
        if b & 0xF0 == 0xF0 { return CInt(truncatingIfNeeded: u64()) }
        return CInt(b & 7)
    }

    /// `MAP_*`: a type (private, shared, neither, shared-validate), then MAP_UNINITIALIZED,
    /// MAP_FIXED, the flags no-MMU ignores, and now and then random unknown bits.
    mutating func mapFlags() -> CInt {
        var f: CInt = pick([MAP_PRIVATE, MAP_PRIVATE, MAP_PRIVATE, MAP_SHARED, MAP_SHARED, 0, 3, MAP_PRIVATE])
        let e = byte()
        if e & 0x01 != 0 { f |= CInt(MAP_UNINITIALIZED) }
        if e & 0x82 == 0x82 { f |= MAP_FIXED }
        if e & 0x04 != 0 { f |= MAP_NORESERVE }
        if e & 0x08 != 0 { f |= MAP_POPULATE }
        if e & 0x30 == 0x10 { f |= MAP_GROWSDOWN }
        if e & 0x30 == 0x20 { f |= MAP_LOCKED }
        if e & 0xC0 == 0xC0 { f |= CInt(truncatingIfNeeded: u64()) & ~3 }
        return f
    }

    /// Bytes to write: a run of `count` bytes following a pattern seeded by the input.
    mutating func data(count: Int) -> [UInt8] {
        let seed = byte()
        return (0..<count).map { UInt8(truncatingIfNeeded: Int(seed) &+ $0 &* 7) }
    }

    /// A count for read and write: zero, small, a page and a bit, up to 64 KiB.
    mutating func count(page: Int) -> Int {
        switch byte() % 6 {
        case 0: return 0
        case 1, 2: return 1 + Int(byte())
        case 3: return page + Int(byte())
        case 4: return page * Int(1 + byte() % 3) - 1
        default: return word()
        }
    }
}
