// SPDX-License-Identifier: Apache-2.0
//
// Function names and source lines for the frames of `nommu run`'s reports, as heaptrack and
// valgrind give them: the frames of each object go to llvm-symbolizer (or addr2line) in one
// call. Where neither is installed, or the object has no symbols, a frame keeps what dladdr
// said (an exported symbol, or none) and its object and offset.
import Foundation
import NommuMalloc

#if canImport(Glibc)
    import Glibc
#endif

enum Symbolizer {
    /// Fills in `location` for every frame the tools can place.
    static func fill(_ reports: inout [RunReport]) {
        guard let tool = findTool() else { return }
        var wanted: [String: Set<UInt64>] = [:]
        for r in reports {
            for f in r.firstFailure?.stack ?? [] { if let a = query(f) { wanted[f.module, default: []].insert(a) } }
            for s in r.sites { if let a = query(s.frame) { wanted[s.frame.module, default: []].insert(a) } }
        }
        var found: [String: [UInt64: String]] = [:]
        for (module, addresses) in wanted {
            found[module] = symbolize(module, Array(addresses).sorted(), with: tool)
        }
        func located(_ f: RunReport.Frame) -> RunReport.Frame {
            var f = f
            if let a = query(f), let text = found[f.module]?[a] { f.location = text }
            return f
        }
        for i in reports.indices {
            if var failure = reports[i].firstFailure {
                failure.stack = failure.stack.map(located)
                reports[i].firstFailure = failure
            }
            reports[i].sites = reports[i].sites.map { s in
                var s = s
                s.frame = located(s.frame)
                return s
            }
        }
    }

    /// The address a symboliser is asked about: the call instruction before the return
    /// address, relative to the object unless the object is a fixed-address executable.
    static func query(_ f: RunReport.Frame) -> UInt64? {
        guard !f.module.isEmpty, f.address > 0 else { return nil }
        return (isFixedAddress(f.module) ? f.address : f.offset) &- 1
    }

    /// Whether the ELF file at `path` is ET_EXEC (linked at fixed addresses).
    static func isFixedAddress(_ path: String) -> Bool {
        guard let h = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? h.close() }
        guard let d = try? h.read(upToCount: 18), d.count == 18, d.prefix(4) == Data([0x7f, 0x45, 0x4c, 0x46]) else {
            return false
        }
        return d[16] == 2 && d[17] == 0
    }

    enum Tool {
        case llvm(String)
        case addr2line(String)
    }

    static func findTool() -> Tool? {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for name in ["llvm-symbolizer", "addr2line"] {
            for dir in paths {
                let p = "\(dir)/\(name)"
                if access(p, X_OK) == 0 { return name == "addr2line" ? .addr2line(p) : .llvm(p) }
            }
        }
        return nil
    }

    /// `function (file:line)` for each address the tool places.
    static func symbolize(_ module: String, _ addresses: [UInt64], with tool: Tool) -> [UInt64: String] {
        let hex = addresses.map { "0x" + String($0, radix: 16) }
        let argv: [String]
        switch tool {
        case .llvm(let p): argv = [p, "--obj=" + module, "--no-inlines", "--demangle"] + hex
        case .addr2line(let p): argv = [p, "-f", "-C", "-e", module] + hex
        }
        guard let text = capture(argv) else { return [:] }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        // llvm-symbolizer: pairs (function, file:line:column); addr2line: pairs (function, file:line).
        var out: [UInt64: String] = [:]
        for a in addresses {
            guard lines.count >= 2 else { break }
            let function = lines.removeFirst()
            var place = lines.removeFirst()
            if case .llvm = tool, let colon = place.lastIndex(of: ":") { place = String(place[..<colon]) }
            let knownFunction = function != "??" && !function.isEmpty
            let knownPlace = !place.hasPrefix("??") && !place.hasSuffix(":0")
            if knownFunction && knownPlace {
                out[a] = "\(function) (\(URL(fileURLWithPath: place).lastPathComponent))"
            } else if knownFunction {
                out[a] = function
            }
        }
        return out
    }

    /// A program's standard output, nil when it cannot be run or fails.
    static func capture(_ argv: [String]) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
