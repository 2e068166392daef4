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

    /// Whether every byte is zero.
    public static func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        // Word-at-a-time: these buffers can be megabytes in debug builds.
        let words = bytes.count / 8
        if words > 0 {
            let w = bytes.baseAddress!.assumingMemoryBound(to: UInt64.self)
            for i in 0..<words where w[i] != 0 { return false }
        }
        for i in (words * 8)..<bytes.count where bytes[i] != 0 { return false }
        return true
    }
}
