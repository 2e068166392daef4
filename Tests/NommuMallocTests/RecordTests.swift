// SPDX-License-Identifier: Apache-2.0
import NommuMalloc
import NommuTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Runs argv with extra environment; returns the exit status.
private func run(_ argv: [String], environment extra: [String] = []) -> Int32 {
    var env: [String] = []
    var e = environ
    while let p = e.pointee {
        env.append(String(cString: p))
        e += 1
    }
    env += extra
    let cArgs = argv.map { strdup($0) } + [nil]
    let cEnv = env.map { strdup($0) } + [nil]
    defer {
        for p in cArgs { free(p) }
        for p in cEnv { free(p) }
    }
    var pid = pid_t()
    guard posix_spawnp(&pid, argv[0], nil, nil, cArgs, cEnv) == 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (status >> 8) & 0xff
}

private func readAll(_ path: String) -> [UInt8] {
    guard let f = fopen(path, "rb") else { return [] }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buf.withUnsafeMutableBytes { fread($0.baseAddress!, 1, 1 << 16, f) }
        if n == 0 { break }
        out += buf[0..<n]
    }
    return out
}

@Suite("nommu record: the LD_PRELOAD recorder")
struct RecordTests {
    @Test("records real programs (one threaded) as traces that parse and replay")
    func record() throws {
        let dir = "/tmp/nommu-record-test-\(getpid())"
        mkdir(dir, 0o755)
        defer { _ = run(["rm", "-rf", dir]) }
        // Built here with the system compiler: the test process itself must not preload it.
        let so = dir + "/libnommu-record.so"
        #expect(
            run(["cc", "-shared", "-fPIC", "-O2", "-o", so, "Sources/NommuRecord/record.c", "-ldl", "-lpthread"]) == 0)
        let programs: [(String, [String])] = [
            ("ls", ["ls", "-l", "/usr/bin"]),
            (
                "threads",
                [
                    "python3", "-c",
                    "import threading\ndef w():\n    x = [bytearray(300) for _ in range(3000)]\n"
                        + "ts = [threading.Thread(target=w) for _ in range(8)]\n[t.start() for t in ts]\n[t.join() for t in ts]\n",
                ]
            ),
        ]
        var traces: [Trace] = []
        for (name, argv) in programs {
            let path = "\(dir)/\(name).trace"
            let status = run(argv, environment: ["LD_PRELOAD=\(so)", "NOMMU_TRACE_FILE=\(path)"])
            #expect(status == 0, "\(name) runs with the recorder")
            let t = try Trace.parse(name: name, readAll(path))
            #expect(t.count > 100, "\(name): \(t.count) events")
            #expect(t.unknownFrees == 0)
            traces.append(t)
        }
        let reports = try Replay.run(traces, .init(compareWithGlibc: false))
        #expect(reports.allSatisfy { $0.firstFailure == nil })
    }
}
