// SPDX-License-Identifier: Apache-2.0

/// SplitMix64: a small, fast, seedable generator so every random test can print the seed
/// that reproduces it.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64
    public let seed: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        self.state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A seed from the environment (`NOMMU_SEED`) or the given default, so a failing run
    /// can be replayed exactly.
    public static func seed(default value: UInt64) -> UInt64 {
        if let s = ProcessEnvironment.value("NOMMU_SEED"), let v = UInt64(s) { return v }
        return value
    }
}

/// Reads an environment variable without Foundation.
public enum ProcessEnvironment {
    public static func value(_ name: String) -> String? {
        guard let p = getenv(name) else { return nil }
        return String(cString: p)
    }

    /// An integer knob from the environment, or the default.
    public static func int(_ name: String, default fallback: Int) -> Int {
        Self.value(name).flatMap { Int($0) } ?? fallback
    }
}

#if canImport(Glibc)
    import Glibc
#endif
