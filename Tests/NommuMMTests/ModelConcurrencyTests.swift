// SPDX-License-Identifier: Apache-2.0
import NommuBase
import NommuHost
import NommuMM
import NommuTestSupport
import PageAllocator
import Testing

@Suite("Address space: threads")
struct ModelConcurrencyTests {
    @Test("8 threads, each a process (some vfork pairs), mapping, cutting, remapping, reading /proc")
    func stress() throws {
        let threads = ProcessEnvironment.int("NOMMU_STRESS_THREADS", default: 8)
        let ops = ProcessEnvironment.int("NOMMU_STRESS_OPS", default: 20_000) / 4
        let s = try makeSystem(pages: 4096, trim: 1)
        let problems = HostMutex<[String]>([])
        runOnThreads(threads) { t in
            var rng = SeededRandom(seed: 77 + UInt64(t))
            let p = s.createProcess()
            var mine: [(VirtualAddress, UInt, UInt8)] = []
            for step in 0..<ops {
                switch rng.next() % 8 {
                case 0, 1, 2:
                    let len = (UInt(rng.next() % 8) + 1) * page
                    guard let a = try? p.mmap(length: len, protection: rw, flags: anon) else { continue }
                    let cookie = UInt8(truncatingIfNeeded: t * 31 + step) | 1
                    a.pointer!.initializeMemory(as: UInt8.self, repeating: cookie, count: Int(len))
                    mine.append((a, len, cookie))
                case 3, 4, 5:
                    guard !mine.isEmpty else { continue }
                    let (a, len, cookie) = mine.remove(at: Int(rng.next() % UInt64(mine.count)))
                    let bytes = UnsafeRawBufferPointer(start: a.pointer, count: Int(len))
                    if !Cookie.isFilled(bytes, with: cookie) {
                        problems.withLock { $0.append("thread \(t): \(a) overwritten") }
                    }
                    if len > page && rng.next() % 2 == 0 {
                        // Cut the last page, then unmap the rest.
                        do {
                            try p.munmap(address: a.u + len - page, length: page)
                            try p.munmap(address: a.u, length: len - page)
                        } catch { problems.withLock { $0.append("thread \(t): cut \(error)") } }
                    } else {
                        do { try p.munmap(address: a.u, length: len) } catch {
                            problems.withLock { $0.append("thread \(t): munmap \(error)") }
                        }
                    }
                case 6:
                    guard let (a, len, cookie) = mine.last, len > page else { continue }
                    do {
                        _ = try p.mremap(address: a.u, oldLength: len, newLength: page)
                        mine[mine.count - 1] = (a, page, cookie)
                    } catch { problems.withLock { $0.append("thread \(t): mremap \(error)") } }
                default:
                    if (try? p.readFile("/proc/self/maps"))?.split(separator: "\n").count != mine.count {
                        problems.withLock { $0.append("thread \(t): /proc/self/maps does not list its mappings") }
                    }
                    _ = try? p.readFile("/proc/maps")
                }
            }
            p.exit()
        }
        #expect(problems.withLock { $0 } == [])
        #expect(everythingBackViolation(s, []) == nil)
    }
}
