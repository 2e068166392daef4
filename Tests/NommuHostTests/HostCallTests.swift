// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuHost
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Host calls: errno and EINTR")
struct HostCallTests {
    /// A call that fails with `errors` in turn (setting errno, returning -1), then returns 7.
    final class Script {
        var errors: [Int32]
        var calls = 0
        init(_ errors: [Int32]) { self.errors = errors }
        func call() -> Int {
            calls += 1
            guard !errors.isEmpty else { return 7 }
            errno = errors.removeFirst()
            return -1
        }
    }

    @Test func interruptedCallsAreRetried() {
        let s = Script([EINTR, EINTR])
        #expect(valueOrErrno { s.call() } == .success(7))
        #expect(s.calls == 3)
    }

    @Test func otherFailuresComeBackAsTheirErrno() {
        let s = Script([EINTR, EBADF])
        #expect(valueOrErrno { s.call() } == .failure(.badFileDescriptor))
        #expect(s.calls == 2)
        #expect(throws: Errno.badFileDescriptor) { try retryingInterrupts { Script([EBADF]).call() } }
    }

    @Test func anInterruptIsAnAnswerWhenNotRetried() {
        let s = Script([EINTR])
        #expect(valueOrErrno(retryOnInterrupt: false) { s.call() } == .failure(.interrupted))
        #expect(s.calls == 1)
    }

    @Test func hostFileCallsGiveTheHostsErrno() throws {
        let dir = try HostFS.makeTemporaryDirectory()
        defer { HostFS.removeTree(Array(dir.utf8)) }
        let missing = Array((dir + "/missing").utf8)
        #expect(try HostFS.status(missing) == nil)
        #expect(throws: Errno.noSuchFileOrDirectory) { try HostFS.openFile(missing) }
        #expect(throws: Errno.noSuchFileOrDirectory) { try HostFS.unlink(missing) }
        let file = Array((dir + "/f").utf8)
        try HostFS.create(file)
        #expect(throws: Errno.fileExists) { try HostFS.create(file) }
        let (fd, writable) = try HostFS.openFile(file)
        defer { HostFS.closeFile(fd) }
        #expect(writable)
        #expect(try HostFS.write(fd, [1, 2, 3], at: 4) == 3)
        #expect(try HostFS.size(fd) == 7)
        var buffer = [UInt8](repeating: 9, count: 16)
        let n = try buffer.withUnsafeMutableBytes { b throws(Errno) in
            try HostFS.read(fd, into: b.baseAddress!, count: 16, at: 0)
        }
        #expect(n == 7 && Array(buffer.prefix(7)) == [0, 0, 0, 0, 1, 2, 3])
        #expect(throws: Errno.badFileDescriptor) { try HostFS.size(-1) }
    }
}
