// SPDX-License-Identifier: Apache-2.0
//
// The corpus-replay `main` of the fuzz targets' ordinary builds: every file named, and every
// file in every directory named, is fed to the target once.
#if canImport(Glibc)
    import Glibc
#endif

/// Feeds each input file under `paths` to `body`; prints how many ran.
public func replayCorpus(
    _ paths: some Sequence<String>, _ body: (UnsafePointer<UInt8>?, Int) -> CInt
) {
    var files: [String] = []
    for path in paths {
        if let dir = opendir(path) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if !name.hasPrefix(".") { files.append(path + "/" + name) }
            }
            closedir(dir)
        } else {
            files.append(path)
        }
    }
    for file in files.sorted() {
        guard let f = fopen(file, "rb") else {
            print("cannot read \(file)")
            exit(1)
        }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { fread($0.baseAddress!, 1, 1 << 16, f) }
            if n == 0 { break }
            bytes += buf[0..<n]
        }
        fclose(f)
        _ = bytes.withUnsafeBufferPointer { body($0.baseAddress, $0.count) }
    }
    print("replayed \(files.count) inputs")
}
