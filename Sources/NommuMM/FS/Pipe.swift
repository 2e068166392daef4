// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuHost

/// The buffer of a pipe or FIFO, with the blocking of `pipe_read` / `pipe_write`: a read
/// waits while the pipe is empty and a writer exists (end of file when none does); a write
/// waits while the pipe is full and fails with `EPIPE` when no reader is left. Its own
/// pthread mutex and condition variable, so a blocked call never holds the model lock.
final class PipeBuffer: @unchecked Sendable {
    /// `PIPE_DEF_BUFFERS` × page: the default capacity.
    static let capacity = 65536
    /// `PIPE_BUF`: writes of this many bytes or fewer are atomic.
    static let atomicBytes = 4096

    private let mutex = HostLock()
    private let cond = HostCondition()
    // Guarded by mutex.
    private var bytes: [UInt8] = []
    private var head = 0
    private var readers = 0
    private var writers = 0

    deinit {
        cond.destroy()
        mutex.destroy()
    }

    private func locked<R>(_ body: () throws(Errno) -> R) throws(Errno) -> R {
        mutex.lock()
        defer { mutex.unlock() }
        return try body()
    }

    /// Bytes waiting to be read.
    var available: Int { (try? locked { bytes.count - head }) ?? 0 }

    /// An end was opened.
    func open(reader: Bool, writer: Bool) {
        try? locked {
            if reader { readers += 1 }
            if writer { writers += 1 }
        }
    }

    /// Whether a reader has it open (fifo_open: a non-blocking open for writing needs one).
    var hasReader: Bool { (try? locked { readers > 0 }) ?? false }

    /// An end was closed: waiting calls re-check (a reader may now see end of file, a
    /// writer `EPIPE`).
    func close(reader: Bool, writer: Bool) {
        try? locked {
            if reader { readers -= 1 }
            if writer { writers -= 1 }
            cond.broadcast()
        }
    }

    /// `read`: up to `count` bytes; [] at end of file.
    /// - Throws: `EAGAIN` when empty with a writer and `nonBlocking`.
    func read(count: Int, nonBlocking: Bool) throws(Errno) -> [UInt8] {
        guard count > 0 else { return [] }
        return try locked { () throws(Errno) -> [UInt8] in
            while bytes.count == head {
                if writers == 0 { return [] }
                if nonBlocking { throw .resourceTemporarilyUnavailable }
                cond.wait(mutex)
            }
            let n = min(count, bytes.count - head)
            let out = Array(bytes[head..<head + n])
            head += n
            if head == bytes.count {
                bytes.removeAll(keepingCapacity: true)
                head = 0
            }
            cond.broadcast()
            return out
        }
    }

    /// `write`: all of `data`, waiting for room unless `nonBlocking`.
    /// - Throws: `EPIPE` when no reader is left (before anything was written);
    ///   `EAGAIN` when full and `nonBlocking` (before anything was written).
    /// - Returns: Bytes written.
    func write(_ data: [UInt8], nonBlocking: Bool) throws(Errno) -> Int {
        try locked { () throws(Errno) -> Int in
            var written = 0
            while written < data.count {
                if readers == 0 {
                    if written == 0 { throw .brokenPipe }
                    return written
                }
                let room = PipeBuffer.capacity - (bytes.count - head)
                // A write of PIPE_BUF bytes or fewer is atomic: it waits (or, non-blocking,
                // is EAGAIN) until all of it fits, and goes in at once (pipe_write).
                if room == 0 || (data.count <= PipeBuffer.atomicBytes && room < data.count) {
                    if nonBlocking {
                        if written == 0 { throw .resourceTemporarilyUnavailable }
                        return written
                    }
                    cond.wait(mutex)
                    continue
                }
                let n = min(room, data.count - written)
                bytes += data[written..<written + n]
                written += n
                cond.broadcast()
            }
            return written
        }
    }
}
