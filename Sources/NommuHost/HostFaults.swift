// SPDX-License-Identifier: Apache-2.0
package import NommuBase

/// Every kind of call nommu makes to the host, for fault injection.
package enum HostCall: String, Hashable, Sendable, CaseIterable {
    /// `mmap` or `posix_memalign` of an arena: the physical memory, the flash window.
    case arena
    /// `mkdtemp` of the directory behind `/data`.
    case temporaryDirectory
    /// `stat` of a `/data` path.
    case status
    /// `open(O_CREAT | O_EXCL)` of a new `/data` file.
    case create
    /// `open` of a `/data` file for an inode's lifetime.
    case open
    /// `fstat` for a `/data` file's size.
    case size
    /// `pread` of a `/data` file.
    case read
    /// `pwrite` to a `/data` file.
    case write
    /// `ftruncate` of a `/data` file.
    case truncate
    /// `unlink` of a `/data` file.
    case unlink
}

/// Fault injection into host calls: a plan says which calls fail with which
/// errno, and logs every call made under it.
///
/// A plan is bound to a task (`HostFaultPlan.$current.withValue(plan) { … }`), so tests that
/// run in parallel never see each other's faults; code outside any plan pays one task-local
/// read per host call. The calls are the slow ones (`mmap` of an arena, file I/O), never the
/// allocator's hot paths.
package final class HostFaultPlan: Sendable {
    private struct State {
        var failing: [HostCall: Errno]
        var failNth: Int?
        var nthErrno: Errno
        var log: [HostCall] = []
    }
    private let state: HostMutex<State>

    /// - Parameters:
    ///   - failing: Every call of these kinds fails with the errno given.
    ///   - failCall: The n-th call made under the plan (1-based, any kind) fails with `errno`.
    package init(failing: [HostCall: Errno] = [:], failCall n: Int? = nil, with errno: Errno = .ioError) {
        state = HostMutex(State(failing: failing, failNth: n, nthErrno: errno))
    }

    /// The calls made under the plan so far, in order (failed ones included).
    package var calls: [HostCall] { state.withLock { $0.log } }

    /// Records a call of kind `call`. - Throws: the errno the plan gives it.
    package func check(_ call: HostCall) throws(Errno) {
        let fault: Errno? = state.withLock { s in
            s.log.append(call)
            if s.log.count == s.failNth { return s.nthErrno }
            return s.failing[call]
        }
        if let fault { throw fault }
    }

    /// The plan of the current task, if any.
    @TaskLocal package static var current: HostFaultPlan? = nil

    /// Called before every host call. - Throws: the errno the current plan gives it.
    @inline(__always)
    package static func check(_ call: HostCall) throws(Errno) {
        if let plan = current { try plan.check(call) }
    }
}
