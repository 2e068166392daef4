#if canImport(Glibc)
    import Glibc
#endif
// SPDX-License-Identifier: Apache-2.0

/// Fills and checks memory with a pattern derived from an owner's id, in the style of
/// mimalloc's test-stress cookies: a run written by one owner and read back unchanged
/// proves nobody else wrote it.
public enum Cookie {
    @inline(__always)
    public static func byte(_ owner: UInt64, _ index: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: owner &* 0x9E37_79B9 &+ UInt64(index >> 6) &* 31 &+ 1) | 1
    }

    /// Writes the owner's pattern over `bytes` (every 64th byte, plus first and last).
    public static func fill(_ bytes: UnsafeMutableRawBufferPointer, owner: UInt64) {
        guard bytes.count > 0 else { return }
        var i = 0
        while i < bytes.count {
            bytes[i] = byte(owner, i)
            i += 64
        }
        bytes[bytes.count - 1] = byte(owner, bytes.count - 1)
    }

    /// Whether the owner's pattern is intact.
    public static func check(_ bytes: UnsafeMutableRawBufferPointer, owner: UInt64) -> Bool {
        guard bytes.count > 0 else { return true }
        var i = 0
        while i < bytes.count {
            if bytes[i] != byte(owner, i) { return false }
            i += 64
        }
        return bytes[bytes.count - 1] == byte(owner, bytes.count - 1)
    }

    nonisolated(unsafe) private static let zeroChunk = UnsafeMutableRawPointer.allocate(byteCount: 65536, alignment: 64)
        .initializeMemory(as: UInt8.self, repeating: 0, count: 65536)

    /// Whether every byte is zero (memcmp against a zero chunk: fast in debug builds too).
    public static func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        isFilled(bytes, with: 0)
    }

    /// Whether every byte equals `value`.
    public static func isFilled(_ bytes: UnsafeRawBufferPointer, with value: UInt8) -> Bool {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return true }
        if value == 0 {
            var off = 0
            while off < bytes.count {
                let n = min(65536, bytes.count - off)
                if memcmp(base + off, UnsafeRawPointer(zeroChunk), n) != 0 { return false }
                off += n
            }
            return true
        }
        // Compare the buffer with itself shifted by one byte after checking the first.
        return base.load(as: UInt8.self) == value && (bytes.count == 1 || memcmp(base, base + 1, bytes.count - 1) == 0)
    }
}
