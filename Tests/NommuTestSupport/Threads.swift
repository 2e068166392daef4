// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
    import Glibc
#endif

private final class ThreadBody: @unchecked Sendable {
    let index: Int
    let body: @Sendable (Int) -> Void
    init(index: Int, body: @escaping @Sendable (Int) -> Void) {
        self.index = index
        self.body = body
    }
}

/// Runs `body(i)` on `count` new OS threads (not the cooperative pool, so each thread
/// really exits and its per-CPU lists go back) and joins them all.
public func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    var threads: [pthread_t] = []
    for i in 0..<count {
        let box = Unmanaged.passRetained(ThreadBody(index: i, body: body))
        var t = pthread_t()
        let rc = pthread_create(
            &t, nil,
            { raw in
                let b = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
                b.body(b.index)
                return nil
            }, box.toOpaque())
        precondition(rc == 0, "pthread_create failed: \(rc)")
        threads.append(t)
    }
    for t in threads { pthread_join(t, nil) }
}
