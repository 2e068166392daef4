// SPDX-License-Identifier: Apache-2.0
//
// The host's locks, condition variables and clock, for every layer above: pthread
// mutexes rather than `Synchronization.Mutex`, for two measured reasons: an uncontended
// lock + unlock costs ~3–5 ns here against ~40 ns, and the thread sanitizer sees pthread
// mutexes (it intercepts them) but not the standard library's uninstrumented futex lock.
#if canImport(Glibc)
    public import Glibc
#endif

/// A pthread mutex at a fixed address: a handle (copies name the same mutex). Made with
/// `init()` (memory of its own, given back by `destroy()`) or in memory the caller owns
/// (`init(at:)`, ended with `deinitialize()`).
public struct HostLock: @unchecked Sendable {
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>

    /// The bytes a mutex takes in memory the caller owns (`init(at:)`).
    package static var byteCount: Int { MemoryLayout<pthread_mutex_t>.stride }

    /// A new mutex in memory of its own, where malloc puts it (glibc aligns it to 16 bytes, so
    /// its lock word never straddles a line). Given a cache line of its own (64-byte aligned),
    /// the zone path's worst pair measured 79–80 ns against 71–77 ns.
    package init() {
        self.init(at: UnsafeMutableRawPointer(UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)))
    }

    /// A new mutex at `memory` (`byteCount` bytes, aligned for it).
    package init(at memory: UnsafeMutableRawPointer) {
        mutex = memory.bindMemory(to: pthread_mutex_t.self, capacity: 1)
        let rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "pthread_mutex_init failed: \(rc)")
    }

    /// The mutex `init(at:)` made at `memory` (no call: a handle to it).
    @inlinable @inline(__always)
    public init(existingAt memory: UnsafeMutableRawPointer) {
        mutex = memory.assumingMemoryBound(to: pthread_mutex_t.self)
    }

    /// Ends a mutex made by `init(at:)`; the memory stays the caller's.
    package func deinitialize() { pthread_mutex_destroy(mutex) }

    /// Ends a mutex made by `init()` and frees its memory.
    package func destroy() {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inlinable @inline(__always)
    public func lock() { pthread_mutex_lock(mutex) }

    @inlinable @inline(__always)
    public func unlock() { pthread_mutex_unlock(mutex) }
}

/// A pthread condition variable, waited on with a `HostLock` held; with `monotonic`, timed
/// waits measure `CLOCK_MONOTONIC` (a futex's timeout), else the realtime clock.
package struct HostCondition: @unchecked Sendable {
    private let cond: UnsafeMutablePointer<pthread_cond_t>

    package init(monotonic: Bool = false) {
        cond = .allocate(capacity: 1)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        if monotonic { pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) }
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    /// Ends the condition variable and frees its memory.
    package func destroy() {
        pthread_cond_destroy(cond)
        cond.deallocate()
    }

    /// Waits for a signal (or a spurious wake-up) with `lock` held.
    package func wait(_ lock: HostLock) { pthread_cond_wait(cond, lock.mutex) }

    /// Waits as `wait`, until `deadline` on the condition's clock.
    /// - Returns: false when the deadline passed.
    package func wait(_ lock: HostLock, until deadline: timespec) -> Bool {
        var d = deadline
        return pthread_cond_timedwait(cond, lock.mutex, &d) != ETIMEDOUT
    }

    package func signal() { pthread_cond_signal(cond) }
    package func broadcast() { pthread_cond_broadcast(cond) }
}

/// The host's monotonic clock.
package enum HostClock {
    /// `clock_gettime(CLOCK_MONOTONIC)`.
    package static var monotonic: timespec {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return now
    }
}
