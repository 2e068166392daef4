// SPDX-License-Identifier: Apache-2.0
//
// What `libnommu-run.so` is told through the environment, in one place for the library
// (which reads it), `nommu run` and `nommu bench` (which set it).
public import NommuBase
public import NommuMM

#if canImport(Glibc)
    import Glibc
#endif

/// The machine and malloc each process of `nommu run` gets.
public struct RunSettings: Sendable, Hashable {
    /// NOMMU_RUN_ARENA: bytes of each process's machine.
    public var arenaBytes = 256 << 20
    /// NOMMU_RUN_MAX_ORDER: the buddy allocator's largest order (runs of up to 2^N pages).
    public var maxOrder = 10
    /// The largest `maxOrder` accepted (2^30 pages: more than any arena holds).
    public static let maxMaxOrder = 30
    /// NOMMU_RUN_MALLOC: simple or heap.
    public var policy = Malloc.Policy.heap
    /// NOMMU_RUN_TRIM: vm.nr_trim_pages.
    public var trim = 1
    /// NOMMU_RUN_UNINITIALIZED: the malloc passes MAP_UNINITIALIZED (1 = on).
    public var uninitialized = false
    /// NOMMU_RUN_ALLOW_UNINITIALIZED: the system honours it (1 = on).
    public var allowUninitialized = false
    /// NOMMU_RUN_SITES: allocation sites reported per process; 0 turns site tracking off.
    public var sites = 10
    /// NOMMU_RUN_HEAPS: heaps the malloc spreads threads over (1: uClibc's one heap).
    public var heaps = Malloc.Configuration.defaultHeaps
    /// The host directory behind /data (never used by a heap; no process makes one of its own).
    public var hostDirectory = "/tmp"

    public init() {}

    /// A value of the environment that is not understood.
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    /// The settings `environment` gives (a lookup of a variable's value). - Throws:
    /// `Invalid`, saying which value is wrong.
    public static func parse(_ environment: (String) -> String?) throws(Invalid) -> RunSettings {
        var s = RunSettings()
        func count(_ name: String, minimum: Int) throws(Invalid) -> Int? {
            guard let v = environment(name) else { return nil }
            guard let n = Int(v), n >= minimum else { throw Invalid(description: "\(name)=\(v) is not a count") }
            return n
        }
        if let n = try count("NOMMU_RUN_ARENA", minimum: 1) { s.arenaBytes = n }
        if let v = environment("NOMMU_RUN_MALLOC") {
            guard let p = Malloc.Policy(rawValue: v) else {
                throw Invalid(description: "NOMMU_RUN_MALLOC=\(v) is neither simple nor heap")
            }
            s.policy = p
        }
        if let n = try count("NOMMU_RUN_TRIM", minimum: 0) { s.trim = n }
        if let n = try count("NOMMU_RUN_MAX_ORDER", minimum: 0) {
            guard n <= maxMaxOrder else {
                throw Invalid(description: "NOMMU_RUN_MAX_ORDER=\(n) is more than \(maxMaxOrder)")
            }
            s.maxOrder = n
        }
        if let n = try count("NOMMU_RUN_SITES", minimum: 0) { s.sites = n }
        if let n = try count("NOMMU_RUN_HEAPS", minimum: 1) {
            guard n <= Malloc.Configuration.maxHeaps else {
                throw Invalid(description: "NOMMU_RUN_HEAPS=\(n) is more than \(Malloc.Configuration.maxHeaps)")
            }
            s.heaps = n
        }
        s.uninitialized = environment("NOMMU_RUN_UNINITIALIZED") == "1"
        s.allowUninitialized = environment("NOMMU_RUN_ALLOW_UNINITIALIZED") == "1"
        s.hostDirectory = environment("TMPDIR") ?? "/tmp"
        return s
    }

    /// The settings of this process's environment.
    public static func fromProcessEnvironment() throws(Invalid) -> RunSettings {
        try parse { name in getenv(name).map { String(cString: $0) } }
    }

    /// The variables that give these settings.
    public var environment: [String: String] {
        [
            "NOMMU_RUN_ARENA": String(arenaBytes), "NOMMU_RUN_MALLOC": policy.rawValue, "NOMMU_RUN_TRIM": String(trim),
            "NOMMU_RUN_UNINITIALIZED": uninitialized ? "1" : "0",
            "NOMMU_RUN_ALLOW_UNINITIALIZED": allowUninitialized ? "1" : "0", "NOMMU_RUN_SITES": String(sites),
            "NOMMU_RUN_HEAPS": String(heaps), "NOMMU_RUN_MAX_ORDER": String(maxOrder),
        ]
    }

    /// The settings as a JSON object (the `settings` of `nommu run --report`).
    public var json: String {
        "{\"malloc\": \(jsonString(policy.rawValue)), \"arena_bytes\": \(arenaBytes), \"max_order\": \(maxOrder), "
            + "\"trim\": \(trim), "
            + "\"uninitialized\": \(uninitialized), \"allow_uninitialized\": \(allowUninitialized), "
            + "\"sites\": \(sites), \"heaps\": \(heaps)}"
    }

    /// `base` with `library` (libnommu-run.so) first in LD_PRELOAD, these settings, and the
    /// Swift runtime's crash backtracer off unless SWIFT_BACKTRACE says otherwise: the library
    /// loads the runtime into every program, whose crashes must look as they would without it
    /// (and reach the library's own handler, which writes the report).
    public func environment(preloading library: String, into base: [String: String]) -> [String: String] {
        var env = base.merging(environment) { $1 }
        env["LD_PRELOAD"] = library + (base["LD_PRELOAD"].map { ":" + $0 } ?? "")
        if env["SWIFT_BACKTRACE"] == nil { env["SWIFT_BACKTRACE"] = "enable=no" }
        return env
    }

    /// Each process's machine: the arena, no frame buffer, a one-page flash window.
    public var system: System.Configuration {
        .init(
            arenaBytes: arenaBytes, maxOrder: maxOrder, allowUninitialized: allowUninitialized, nrTrimPages: trim,
            hostDirectory: hostDirectory, flashBytes: 4096, framebufferBytes: 0)
    }

    public var malloc: Malloc.Configuration { .init(policy: policy, uninitialized: uninitialized, heaps: heaps) }

    /// The least arena in which the malloc's first mapping fits: heap maps an area at a
    /// time, simple a page at least.
    public var smallestArena: Int { policy == .heap ? malloc.extendSize : 4096 }

    /// A process with these settings, as the library makes it. - Throws: the model's errno.
    public func start() throws(Errno) -> Malloc {
        let s = try System(system)
        return try Malloc(process: s.createProcess(), malloc)
    }
}
