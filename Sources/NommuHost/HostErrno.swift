// SPDX-License-Identifier: Apache-2.0
//
// The one place that reads the C library's `errno`: every host call in this module goes
// through `valueOrErrno` (or reads `Errno.current` right after a call that reports failure
// another way), and the layers above only ever see `Errno` values thrown or returned.
package import NommuBase

#if canImport(Glibc)
    import Glibc
#endif

extension Errno {
    /// The calling thread's `errno`, read right after a host call that failed.
    package static var current: Errno { Errno(rawValue: errno) }
}

/// Runs a host call that returns -1 and sets `errno` when it fails (as swift-system's
/// `valueOrErrno(retryOnInterrupt:)`): again while it fails with `EINTR` (when asked), and
/// otherwise its value, or the errno it set.
@inline(__always)
package func valueOrErrno<I: FixedWidthInteger>(
    retryOnInterrupt: Bool = true, _ call: () -> I
) -> Result<I, Errno> {
    while true {
        let value = call()
        if value != -1 { return .success(value) }
        let e = Errno.current
        if retryOnInterrupt && e == .interrupted { continue }
        return .failure(e)
    }
}

/// `valueOrErrno`, throwing the errno.
@inline(__always)
package func retryingInterrupts<I: FixedWidthInteger>(_ call: () -> I) throws(Errno) -> I {
    try valueOrErrno(call).get()
}
