// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
    import Glibc
#endif

/// A host file's bytes, or nil when it cannot be opened.
public func readHostFile(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
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
