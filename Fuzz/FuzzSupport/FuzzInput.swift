// SPDX-License-Identifier: Apache-2.0

/// A fuzz input read as a program: a byte or a little-endian word at a time, zeros once it
/// runs out (so every input is a complete program). Each target adds its own readers.
public struct FuzzInput {
    public let bytes: UnsafeBufferPointer<UInt8>
    public var at = 0

    public init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    public var exhausted: Bool { at >= bytes.count }

    public mutating func byte() -> UInt8 {
        defer { at += 1 }
        return at < bytes.count ? bytes[at] : 0
    }

    public mutating func word() -> Int { Int(byte()) | Int(byte()) << 8 }
}
