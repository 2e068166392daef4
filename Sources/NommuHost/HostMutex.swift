// SPDX-License-Identifier: Apache-2.0

/// A value behind a `HostLock` (a pthread mutex: see HostLocks.swift for why).
public final class HostMutex<Value>: @unchecked Sendable {
    @usableFromInline let lock = HostLock()
    // Behind a pointer rather than a stored `var`: the mutex orders every access, and a
    // class `var` would add dynamic exclusivity checks (and, for `Void`, a zero-sized
    // access the thread sanitizer reports against the object's header).
    @usableFromInline let value: UnsafeMutablePointer<Value>

    public init(_ value: Value) {
        self.value = UnsafeMutablePointer<Value>.allocate(capacity: 1)
        self.value.initialize(to: value)
    }

    deinit {
        lock.destroy()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Runs `body` on the value with the mutex held.
    @inlinable @inline(__always)
    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value.pointee)
    }
}
