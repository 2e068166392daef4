// SPDX-License-Identifier: Apache-2.0
internal import CShims
public import NommuBase
import NommuHost
#if canImport(Glibc)
    public import Glibc  // timespec, in the API
#endif

/// Futex operation codes, one-to-one with `<linux/futex.h>`.
public enum Futex {
    /// `FUTEX_WAIT`.
    public static let wait = CInt(CSHIM_FUTEX_WAIT)
    /// `FUTEX_WAKE`.
    public static let wake = CInt(CSHIM_FUTEX_WAKE)
    /// `FUTEX_PRIVATE_FLAG`: accepted; on no-MMU every futex is keyed by address alone.
    public static let privateFlag = CInt(CSHIM_FUTEX_PRIVATE_FLAG)
    /// `FUTEX_CLOCK_REALTIME`: accepted (only meaningful for absolute timeouts).
    public static let clockRealtime = CInt(CSHIM_FUTEX_CLOCK_REALTIME)
    /// `KTIME_SEC_MAX`: the seconds a `ktime_t` holds; a longer timeout never expires.
    static let ktimeSecMax = Int(Int64.max / 1_000_000_000)
}

/// One blocked `FUTEX_WAIT`.
final class FutexWaiter: @unchecked Sendable {
    let address: UInt
    var woken = false  // guarded by the futex table's mutex
    /// Waited on with a deadline on the monotonic clock.
    let cond = HostCondition(monotonic: true)

    init(address: UInt) { self.address = address }

    deinit { cond.destroy() }
}

/// The futex hash table: waiters by address (the key is the address alone, as
/// `get_futex_key` makes it without an MMU since the v6.7 fix), under one mutex that plays the hash-bucket locks.
final class FutexTable: @unchecked Sendable {
    let mutex = HostLock()
    var waiters: [UInt: [FutexWaiter]] = [:]  // guarded by mutex, in arrival order

    deinit { mutex.destroy() }
}

extension Process {
    /// `futex(uaddr, op, val, timeout)` with `FUTEX_WAIT` and `FUTEX_WAKE` (and their
    /// `_PRIVATE` forms).
    ///
    /// `FUTEX_WAIT` blocks while the word at `address` equals `value`, until a
    /// `FUTEX_WAKE` on the same address (from any thread of any process) or the relative
    /// `timeout`. `FUTEX_WAKE` wakes up to `value` waiters, in arrival order (at least one
    /// when any wait, as the kernel's loop does for `value` ≤ 0).
    ///
    /// - Throws, in this order (sys_futex, then do_futex): `EINVAL` for a wait's malformed
    ///   timeout; `ENOSYS` for `FUTEX_CLOCK_REALTIME` with anything but a wait, and for
    ///   other operations; `EINVAL` for an address not 4-byte aligned; `EFAULT` for an
    ///   address outside every mapping of this process; `EPERM` inside a direct mapping of
    ///   device memory (`/dev/fb0`, `/dev/mtd0`, `/dev/ram0`); `EACCES` inside a mapping
    ///   without `PROT_READ` (the nommu-mmap document's futex rules); `EAGAIN` when the word differs from `value`;
    ///   `ETIMEDOUT`; `ESRCH` when the process has exited.
    /// - Returns: 0 for a completed wait; the number woken for a wake.
    public func futex(_ address: UInt, _ op: CInt, _ value: UInt32, timeout: timespec? = nil) throws(Errno) -> Int {
        try system.futex(pid, address, op, value, timeout: timeout)
    }
}

extension System {
    fileprivate func futex(_ pid: Int32, _ address: UInt, _ op: CInt, _ value: UInt32, timeout: timespec?) throws(Errno)
        -> Int
    {
        let cmd = op & ~(Futex.privateFlag | Futex.clockRealtime)
        // sys_futex checks a waiting op's timeout first (futex_init_timeout); do_futex then
        // refuses FUTEX_CLOCK_REALTIME on anything but a wait, and an op it does not know;
        // only then does the op look at the address.
        if cmd == Futex.wait, let t = timeout {
            guard t.tv_sec >= 0, t.tv_nsec >= 0, t.tv_nsec < 1_000_000_000 else { throw .invalidArgument }
        }
        if op & Futex.clockRealtime != 0 && cmd != Futex.wait { throw .noFunction }
        guard cmd == Futex.wait || cmd == Futex.wake else { throw .noFunction }
        // The address checks of the nommu-mmap document (v2.6.24's get_futex_key).
        guard address & 3 == 0 else { throw .invalidArgument }
        // Linux 6.1 checks nothing more (every futex is private without an MMU, and
        // access_ok always holds): a wake needs no mapping. A wait must still read the word,
        // which the model does only inside a mapping.
        let checked = configuration.reference == .document || cmd == Futex.wait
        if checked {
            try checkFutexAddress(pid, address, device: configuration.reference == .document)
        } else {
            guard processAlive(pid) else { throw .noSuchProcess }
        }

        let table = futexes
        switch cmd {
        case Futex.wait:
            var deadline: timespec? = nil
            if let t = timeout {
                let now = HostClock.monotonic
                // A timeout of KTIME_SEC_MAX seconds or more is no deadline: the kernel's
                // timespec64_to_ktime saturates it at KTIME_MAX, which never expires.
                if t.tv_sec < Futex.ktimeSecMax {
                    var d = timespec(tv_sec: now.tv_sec + t.tv_sec, tv_nsec: now.tv_nsec + t.tv_nsec)
                    if d.tv_nsec >= 1_000_000_000 {
                        d.tv_sec += 1
                        d.tv_nsec -= 1_000_000_000
                    }
                    deadline = d
                }
            }
            table.mutex.lock()
            defer { table.mutex.unlock() }
            // Compare and queue under the bucket lock: a wake after this point finds us.
            // (Inside a mapping: checked above.)
            guard let word = UnsafePointer<UInt32>(bitPattern: address) else { throw .badAddress }
            guard cshim_load_relaxed_u32(word) == value else { throw .resourceTemporarilyUnavailable }
            let w = FutexWaiter(address: address)
            table.waiters[address, default: []].append(w)
            while !w.woken {
                if let d = deadline {
                    if !w.cond.wait(table.mutex, until: d) && !w.woken {
                        table.waiters[address]?.removeAll { $0 === w }
                        if table.waiters[address]?.isEmpty == true { table.waiters[address] = nil }
                        throw .timedOut
                    }
                } else {
                    w.cond.wait(table.mutex)
                }
            }
            return 0
        case Futex.wake:
            table.mutex.lock()
            defer { table.mutex.unlock() }
            guard var queue = table.waiters[address], !queue.isEmpty else { return 0 }
            let n = min(queue.count, max(1, Int(Int32(bitPattern: value))))
            for w in queue.prefix(n) {
                w.woken = true
                w.cond.signal()
            }
            queue.removeFirst(n)
            table.waiters[address] = queue.isEmpty ? nil : queue
            return n
        default:
            throw .noFunction
        }
    }
}

extension System {
    /// The document's futex address rules: inside a mapping of the process (EFAULT), not a
    /// direct mapping of device memory (EPERM, when `device`), readable (EACCES, likewise).
    fileprivate func checkFutexAddress(_ pid: Int32, _ address: UInt, device: Bool) throws(Errno) {
        try state.withLock { (s: inout ModelState) throws(Errno) in
            guard let mm = s.tasks.processes[pid] else { throw .noSuchProcess }
            let space = s.mm.spaces[mm]!
            guard let i = space.index(containing: address) else { throw .badAddress }
            guard device else { return }
            // A direct mapping of device memory (an I/O mapping) does not support futexes.
            let r = s.mm.regions[space.mappings[i].region]!
            if let inode = r.backing.inode, !r.flags.contains(.mappedCopy), s.fs.inodes[inode]!.device != nil {
                throw .notPermitted
            }
            guard space.mappings[i].flags.contains(.read) else { throw .permissionDenied }
        }
    }
}
