// SPDX-License-Identifier: Apache-2.0
//
// The C ABI of nommu.h. Every function here is a boundary: it converts C arguments, calls
// the Swift model, and turns a thrown Errno into the libc convention (-1 / MAP_FAILED /
// NULL and errno). Nothing here throws, and out-parameters are written only on success.
import CNommu
import NommuBase
import NommuHost
import PageAllocator
package import NommuMM
#if canImport(Glibc)
    import Glibc
#endif

/// Sets the calling thread's errno and returns `value` (the C ABI's failure return).
@inline(__always)
func failing<T>(_ e: Errno, _ value: T) -> T {
    errno = e.rawValue
    return value
}

/// The object behind a `nommu_system *`: the system, retained until destroy.
final class SystemHandle {
    let system: System
    init(_ system: System) { self.system = system }
}

func systemHandle(_ p: OpaquePointer?) -> SystemHandle? {
    p.map { Unmanaged<SystemHandle>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
}

/// The system behind a `nommu_system *` (nil for NULL): for the fuzz target's invariant checks.
package func nommuSystemForTesting(_ handle: OpaquePointer?) -> System? { systemHandle(handle)?.system }

/// The process behind a `nommu_process *` (nil for NULL): for the fuzz target's mapping checks.
package func nommuProcessForTesting(_ handle: OpaquePointer?) -> Process? { process(handle) }

/// Runs `body` on the system behind a non-NULL handle without retaining it (the handle
/// holds it until `nommu_system_destroy`).
@inline(__always)
func withSystem<R>(_ p: OpaquePointer, _ body: (System) -> R) -> R {
    Unmanaged<SystemHandle>.fromOpaque(UnsafeRawPointer(p))._withUnsafeGuaranteedRef { body($0.system) }
}

/// Runs `body` on the process behind a non-NULL handle without retaining it.
@inline(__always)
func withProcess<R>(_ p: OpaquePointer, _ body: (Process) -> R) -> R {
    Unmanaged<Process>.fromOpaque(UnsafeRawPointer(p))._withUnsafeGuaranteedRef(body)
}

func process(_ p: OpaquePointer?) -> Process? {
    p.map { Unmanaged<Process>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
}

func handle(_ p: Process) -> OpaquePointer {
    let raw = Unmanaged.passRetained(p).toOpaque()
    let key = ObjectIdentifier(p.system)
    processHandles.withLock { $0[key, default: []].append(raw) }
    return OpaquePointer(raw)
}

/// The process handles given out and not yet passed to `nommu_process_exit`, by system:
/// `nommu_system_destroy` ends and releases them (each holds its process, which holds the
/// system and its arena). Touched when a process is created or ends, never on a call.
let processHandles = HostMutex<[ObjectIdentifier: [UnsafeMutableRawPointer]]>([:])

/// Takes `raw` off its system's list: false when it is not there (already ended).
func forgetHandle(_ raw: UnsafeMutableRawPointer, of system: System) -> Bool {
    processHandles.withLock { table in
        let key = ObjectIdentifier(system)
        guard var list = table[key], let i = list.firstIndex(of: raw) else { return false }
        list.swapAt(i, list.count - 1)
        list.removeLast()
        table[key] = list.isEmpty ? nil : list
        return true
    }
}

/// `MAP_FAILED`.
var mapFailed: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: -1)! }

func address(_ p: UnsafeRawPointer?) -> UInt { UInt(bitPattern: p) }
