// SPDX-License-Identifier: Apache-2.0
import CShims
import NommuBase
import NommuHost
import NommuMM
import NommuTestSupport
import PageAllocator
import Testing
#if canImport(Glibc)
    import Glibc
#endif

@Suite("Futexes (rows 73–74; the no-MMU address checks, see Oracle/divergences.md)")
struct FutexTests {
    @Test("address checks: misaligned EINVAL, outside EFAULT, unreadable EACCES; unknown op ENOSYS")
    func checks() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let q = s.createProcess()
        let a = try p.mmap(length: page, protection: rw, flags: anon)
        let none = try p.mmap(length: page, protection: .none, flags: anon)
        #expect(throws: Errno.invalidArgument, "73") { _ = try p.futex(a.u + 2, Futex.wake, 1) }
        #expect(throws: Errno.badAddress, "74") { _ = try p.futex(0x1000, Futex.wake, 1) }
        #expect(throws: Errno.badAddress, "another process's mapping is outside this one's") {
            _ = try q.futex(a.u, Futex.wake, 1)
        }
        #expect(throws: Errno.permissionDenied) { _ = try p.futex(none.u, Futex.wake, 1) }
        #expect(throws: Errno.noFunction) { _ = try p.futex(a.u, 9, 1) }
        // do_futex refuses an op it does not know before get_futex_key looks at the address.
        #expect(throws: Errno.noFunction, "the op comes before the address") { _ = try p.futex(1, 9, 1) }
        #expect(throws: Errno.noFunction, "FUTEX_CLOCK_REALTIME only with a wait") {
            _ = try p.futex(a.u, Futex.wake | Futex.clockRealtime, 1)
        }
        #expect(throws: Errno.invalidArgument, "a wait's timeout comes before the address") {
            _ = try p.futex(1, Futex.wait, 0, timeout: timespec(tv_sec: -1, tv_nsec: 0))
        }
        #expect(throws: Errno.invalidArgument) {
            _ = try p.futex(a.u, Futex.wait, 0, timeout: timespec(tv_sec: 0, tv_nsec: 2_000_000_000))
        }
        #expect(everythingBackViolation(s, [p, q]) == nil)
    }

    @Test("FUTEX_WAIT: EAGAIN when the word differs, ETIMEDOUT after the timeout; wake with none is 0")
    func waitOutcomes() throws {
        let s = try makeSystem()
        let p = s.createProcess()
        let a = try p.mmap(length: page, protection: rw, flags: anon)
        a.pointer!.storeBytes(of: UInt32(7), as: UInt32.self)
        #expect(throws: Errno.resourceTemporarilyUnavailable) { _ = try p.futex(a.u, Futex.wait, 8) }
        #expect(throws: Errno.timedOut) {
            _ = try p.futex(a.u, Futex.wait | Futex.privateFlag, 7, timeout: timespec(tv_sec: 0, tv_nsec: 20_000_000))
        }
        #expect(try p.futex(a.u, Futex.wake, 1) == 0)
        #expect(everythingBackViolation(s, [p]) == nil)
    }

    @Test("waiters really block and are woken, in order, across a vfork child and its parent")
    func blockAndWake() throws {
        let s = try makeSystem()
        let parent = s.createProcess()
        let child = try parent.vfork()
        let a = try parent.mmap(length: page, protection: rw, flags: anon)
        let address = a.u
        let results = HostMutex<[Int]>([])
        let started = HostMutex<Int>(0)
        // Three waiters (two in the child, one in the parent); the waker wakes two, then one.
        runOnThreads(4) { i in
            if i < 3 {
                let who = i == 2 ? parent : child
                started.withLock { $0 += 1 }
                let r = (try? who.futex(address, Futex.wait, 0, timeout: timespec(tv_sec: 10, tv_nsec: 0))) ?? -1
                results.withLock { $0.append(r) }
            } else {
                while started.withLock({ $0 }) < 3 { sched_yield() }
                var woken = 0
                let deadline = cshim_now()
                while woken < 3 && cshim_now() - deadline < 10_000_000_000 {
                    woken += (try? parent.futex(address, Futex.wake, 2)) ?? 0
                    sched_yield()
                }
                results.withLock { $0.append(100 + woken) }
            }
        }
        let r = results.withLock { $0 }
        #expect(r.filter { $0 == 0 }.count == 3, "all three waits completed: \(r)")
        #expect(r.contains(103), "the waker woke exactly three: \(r)")
        #expect(everythingBackViolation(s, [parent, child]) == nil)
    }
}

@Suite("Futex: across processes through shared regions")
struct FutexSharedTests {
    @Test("two processes' threads play ping-pong on a word in a /dev/shm mapping and a SysV segment")
    func pingPong() throws {
        let s = try makeSystem()
        let a = s.createProcess()
        let b = s.createProcess()
        // A shared ramfs mapping lands at one address in both (no MMU: the page cache itself).
        let fd = try a.open("/dev/shm/word", [.readWrite, .create])
        try a.ftruncate(fd, length: Int64(page))
        let wa = try a.mmap(length: page, protection: rw, flags: .shared, fd: fd)
        let fdb = try b.open("/dev/shm/word")
        let wb = try b.mmap(length: page, protection: .read, flags: .shared, fd: fdb)
        #expect(wa == wb)
        let id = try a.shmget(key: 9, size: Int(page), flags: SharedMemory.create)
        let sa = try a.shmat(id)
        let sb = try b.shmat(id)
        #expect(sa == sb)
        let rounds = 500
        for word in [wa.u, sa.u] {
            let pointer = UnsafeMutablePointer<UInt32>(bitPattern: word)!
            let stalls = HostMutex(0)
            runOnThreads(2) { t in
                let me = t == 0 ? a : b
                let pointer = UnsafeMutablePointer<UInt32>(bitPattern: word)!
                var done = 0
                while done < rounds {
                    let v = cshim_load_acquire_u32(pointer)
                    guard Int(v % 2) == t else {
                        do {
                            _ = try me.futex(word, Futex.wait, v, timeout: timespec(tv_sec: 0, tv_nsec: 50_000_000))
                        } catch {
                            if error as? Errno == .timedOut { stalls.withLock { $0 += 1 } }
                        }
                        continue
                    }
                    cshim_store_release_u32(pointer, v + 1)
                    _ = try? me.futex(word, Futex.wake, 1)
                    done += 1
                }
            }
            #expect(cshim_load_acquire_u32(pointer) == UInt32(2 * rounds), "every round counted")
            #expect(stalls.withLock { $0 } < 20, "wake-ups are not lost")
        }
        try a.shmdt(sa.u)
        try b.shmdt(sb.u)
        try a.shmRemove(id)
        try a.unlink("/dev/shm/word")
        #expect(everythingBackViolation(s, [a, b]) == nil)
    }
}

private func cshim_now() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}
