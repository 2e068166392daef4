// SPDX-License-Identifier: Apache-2.0

/// Which compile-time checking levels this build has (see `Package.swift`).
public enum ConsistencyChecks {
    /// `NOMMU_INTERNAL_CHECKS`: invariants after every mutation, poisoning.
    public static var internalChecksEnabled: Bool {
        #if NOMMU_INTERNAL_CHECKS
            true
        #else
            false
        #endif
    }

    /// `NOMMU_EXPENSIVE_CHECKS`: O(arena) scans on top of the internal checks.
    public static var expensiveChecksEnabled: Bool {
        #if NOMMU_EXPENSIVE_CHECKS
            true
        #else
            false
        #endif
    }

    /// Byte written over runs handed out without zeroing, in checked builds.
    public static let uninitializedPoison: UInt8 = 0xA5
    /// Byte written over runs when they are freed, in checked builds.
    public static let freedPoison: UInt8 = 0xDF
}
