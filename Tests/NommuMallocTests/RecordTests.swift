// SPDX-License-Identifier: Apache-2.0
import NommuMalloc
import NommuTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Runs argv with extra environment; returns the exit status.
func run(_ argv: [String], environment extra: [String] = []) -> Int32 {
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
            let t = try Trace.parse(name: name, readHostFile(path) ?? [])
            #expect(t.count > 100, "\(name): \(t.count) events")
            #expect(t.unknownFrees == 0)
            traces.append(t)
        }
        let reports = try Replay.run(traces, .init(compareWithGlibc: false))
        #expect(reports.allSatisfy { $0.firstFailure == nil })
    }
}

@Suite("nommu run: programs on the model")
struct RunTests {
    /// libnommu-run.so, built by `swift build --build-tests` next to the test bundle.
    static var library: String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, 4095)
        guard n > 0 else { return nil }
        var path = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        while !path.hasSuffix("/") && !path.isEmpty { path.removeLast() }
        var st = stat()
        return stat(path + "libnommu-run.so", &st) == 0 ? path + "libnommu-run.so" : nil
    }

    /// A sanitizer-instrumented library cannot be preloaded into an ordinary program.
    static var sanitized: Bool {
        // RTLD_DEFAULT (a null handle): the sanitizer runtimes' entry points, if linked in.
        dlsym(nil, "__tsan_init") != nil || dlsym(nil, "__asan_init") != nil
    }

    @Test(
        "python3, sqlite3, gcc -c and git run to completion with their heaps on the model; ENOMEM when they do not fit")
    func programs() throws {
        guard !Self.sanitized else { return }  // (the sanitizer runs cover the model in-process)
        let so = try #require(Self.library, "libnommu-run.so next to the test bundle")
        let dir = "/tmp/nommu-run-test-\(getpid())"
        mkdir(dir, 0o755)
        defer { _ = run(["rm", "-rf", dir]) }
        let source = dir + "/t.c"
        let f = fopen(source, "w")
        fputs("int main(void) { return 0; }\n", f)
        fclose(f)
        let programs: [[String]] = [
            ["python3", "-c", "import json; print(len(json.dumps(list(range(20000)))))"],
            ["sqlite3", ":memory:", "create table t(a); insert into t values (1), (2); select sum(a) from t;"],
            ["gcc", "-c", source, "-o", dir + "/t.o"],
            ["git", "--version"],
            [
                "python3", "-c",
                "import threading\nts = [threading.Thread(target=lambda: [bytearray(500) for _ in range(2000)]) for _ in range(8)]\n[t.start() for t in ts]\n[t.join() for t in ts]\n",
            ],
        ]
        for argv in programs {
            let report = dir + "/report"
            unlink(report)
            let status = run(
                argv, environment: ["LD_PRELOAD=\(so)", "NOMMU_RUN_REPORT=\(report)", "NOMMU_RUN_ARENA=\(64 << 20)"])
            #expect(status == 0, "\(argv[0]) runs on the model")
            let text = String(decoding: readHostFile(report) ?? [], as: UTF8.self)
            let name = argv[0] == "gcc" ? "cc1" : argv[0]
            #expect(text.contains("\n\(name) (pid "), "\(argv[0]) reported: \(text.prefix(300))")
            #expect(!text.contains("did not fit"))
        }
        // 1 MiB is too little for python: it gets ENOMEM (a MemoryError) and says so.
        let report = dir + "/small"
        let status = run(
            ["python3", "-c", "x = bytearray(3000000)"],
            environment: ["LD_PRELOAD=\(so)", "NOMMU_RUN_REPORT=\(report)", "NOMMU_RUN_ARENA=\(1 << 20)"])
        #expect(status != 0)
        #expect(String(decoding: readHostFile(report) ?? [], as: UTF8.self).contains("did not fit: event"))
    }
}
