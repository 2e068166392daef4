// SPDX-License-Identifier: Apache-2.0
import NommuELF
@testable import NommuMM
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A program header for `ELFFileBuilder`, with 64-bit fields (truncated when written to ELF32).
private struct ELFTestHeader {
    /// `p_type`.
    var type: UInt32
    /// `p_flags`.
    var flags: UInt32 = 0
    /// `p_offset`.
    var offset: UInt64 = 0
    /// `p_vaddr`.
    var vaddr: UInt64 = 0
    /// `p_filesz`.
    var filesz: UInt64 = 0
    /// `p_memsz`.
    var memsz: UInt64 = 0
    /// `p_align`.
    var align: UInt64 = 0

    /// `PT_NULL`.
    static let null: UInt32 = 0
    /// `PT_LOAD`.
    static let load: UInt32 = 1
    /// `PT_INTERP`.
    static let interp: UInt32 = 3
    /// `PT_NOTE`.
    static let note: UInt32 = 4
    /// `PT_PHDR`.
    static let phdr: UInt32 = 6
    /// `PT_GNU_STACK`.
    static let gnuStack: UInt32 = 0x6474_e551
    /// `PF_X`.
    static let x: UInt32 = 1
    /// `PF_W`.
    static let w: UInt32 = 2
    /// `PF_R`.
    static let r: UInt32 = 4
}

/// Writes a synthetic ELF file byte by byte; every header field can be set to a bad value.
private struct ELFFileBuilder {
    /// ELF64, else ELF32.
    var is64: Bool
    /// Little-endian, else big-endian.
    var littleEndian: Bool
    /// The first four bytes.
    var magic: [UInt8] = [0x7f, 0x45, 0x4c, 0x46]
    /// `EI_CLASS`, when not the one `is64` implies.
    var elfClass: UInt8?
    /// `EI_DATA`, when not the one `littleEndian` implies.
    var encoding: UInt8?
    /// `EI_VERSION`.
    var identVersion: UInt8 = 1
    /// `e_version`.
    var version: UInt32 = 1
    /// `e_type`.
    var type: UInt16 = 2
    /// `e_machine`.
    var machine: UInt16 = 0
    /// `e_entry`.
    var entry: UInt64 = 0
    /// Where the program headers are written (default: right after the ELF header).
    var tableOffset: Int?
    /// `e_phoff`, when not `tableOffset`.
    var phoff: UInt64?
    /// `e_phentsize`, when not the class's size.
    var phentsize: UInt16?
    /// `e_phnum`, when not `headers.count`.
    var phnum: UInt16?
    /// The program headers.
    var headers: [ELFTestHeader] = []
    /// The file's length.
    var size = 0x2000
    /// Bytes written over the file last, at their offsets.
    var patches: [(offset: Int, bytes: [UInt8])] = []

    /// Bytes in the ELF header.
    var headerSize: Int { is64 ? 64 : 52 }
    /// Bytes in one program header.
    var entrySize: Int { is64 ? 56 : 32 }
    /// Bytes in an address field.
    var wordSize: Int { is64 ? 8 : 4 }

    /// The file.
    func build() -> [UInt8] {
        var file = [UInt8](repeating: 0, count: size)
        /// Writes `value` in `width` bytes at `offset`, in the file's byte order, if it fits.
        func put(_ value: UInt64, _ width: Int, at offset: Int) {
            guard offset >= 0, offset + width <= file.count else { return }
            for i in 0..<width {
                let shift = 8 * (littleEndian ? i : width - 1 - i)
                file[offset + i] = UInt8(truncatingIfNeeded: value >> UInt64(shift))
            }
        }
        for (i, byte) in magic.enumerated() where i < file.count { file[i] = byte }
        put(UInt64(elfClass ?? (is64 ? 2 : 1)), 1, at: 4)
        put(UInt64(encoding ?? (littleEndian ? 1 : 2)), 1, at: 5)
        put(UInt64(identVersion), 1, at: 6)
        put(UInt64(type), 2, at: 16)
        put(UInt64(machine), 2, at: 18)
        put(UInt64(version), 4, at: 20)
        put(entry, wordSize, at: 24)
        let table = tableOffset ?? headerSize
        put(phoff ?? UInt64(table), wordSize, at: is64 ? 32 : 28)
        put(UInt64(headerSize), 2, at: is64 ? 52 : 40)
        put(UInt64(phentsize ?? UInt16(entrySize)), 2, at: is64 ? 54 : 42)
        put(UInt64(phnum ?? UInt16(headers.count)), 2, at: is64 ? 56 : 44)
        for (index, h) in headers.enumerated() {
            let base = table + index * entrySize
            put(UInt64(h.type), 4, at: base)
            if is64 {
                put(UInt64(h.flags), 4, at: base + 4)
                put(h.offset, 8, at: base + 8)
                put(h.vaddr, 8, at: base + 16)
                put(h.vaddr, 8, at: base + 24)
                put(h.filesz, 8, at: base + 32)
                put(h.memsz, 8, at: base + 40)
                put(h.align, 8, at: base + 48)
            } else {
                put(h.offset, 4, at: base + 4)
                put(h.vaddr, 4, at: base + 8)
                put(h.vaddr, 4, at: base + 12)
                put(h.filesz, 4, at: base + 16)
                put(h.memsz, 4, at: base + 20)
                put(UInt64(h.flags), 4, at: base + 24)
                put(h.align, 4, at: base + 28)
            }
        }
        for patch in patches {
            for (i, byte) in patch.bytes.enumerated() where patch.offset + i < file.count {
                file[patch.offset + i] = byte
            }
        }
        return file
    }

    /// The interpreter path the standard image names.
    static let interpreterPath = "/lib/ld-uClibc.so.0"
    /// Where the standard image keeps the interpreter path.
    static let interpreterOffset = 0x1f00
    /// The standard image's text address.
    static func base(is64: Bool) -> UInt64 { is64 ? 0x5555_0000_0000 : 0x10000 }

    /// A valid executable: PT_PHDR, PT_INTERP, text and data PT_LOADs, PT_GNU_STACK and a PT_NOTE
    /// whose (ignored) fields point far outside the file; indices 0 to 5.
    static func standard(is64: Bool, littleEndian: Bool) -> ELFFileBuilder {
        let base = Self.base(is64: is64)
        var b = ELFFileBuilder(is64: is64, littleEndian: littleEndian)
        b.machine = is64 ? 0xb7 : 0x28
        b.entry = base + 0x74
        let path = Array(interpreterPath.utf8) + [0]
        b.headers = [
            ELFTestHeader(
                type: ELFTestHeader.phdr, flags: ELFTestHeader.r, offset: UInt64(b.headerSize),
                vaddr: base + UInt64(b.headerSize), filesz: UInt64(6 * b.entrySize),
                memsz: UInt64(6 * b.entrySize), align: UInt64(b.wordSize)),
            ELFTestHeader(
                type: ELFTestHeader.interp, flags: ELFTestHeader.r, offset: UInt64(interpreterOffset),
                vaddr: base + UInt64(interpreterOffset), filesz: UInt64(path.count), memsz: UInt64(path.count),
                align: 1),
            ELFTestHeader(
                type: ELFTestHeader.load, flags: ELFTestHeader.r | ELFTestHeader.x, offset: 0, vaddr: base,
                filesz: 0x1000, memsz: 0x1000, align: 0x1000),
            ELFTestHeader(
                type: ELFTestHeader.load, flags: ELFTestHeader.r | ELFTestHeader.w, offset: 0x1000,
                vaddr: base + 0x11000, filesz: 0x800, memsz: 0x1800, align: 0x1000),
            ELFTestHeader(
                type: ELFTestHeader.gnuStack, flags: ELFTestHeader.r | ELFTestHeader.w, memsz: 0x20000, align: 16),
            ELFTestHeader(
                type: ELFTestHeader.note, flags: ELFTestHeader.r, offset: 0xffff_fff0, vaddr: 0xffff_fff0,
                filesz: 0xffff_ffff, memsz: 0xffff_ffff, align: 3),
        ]
        b.patches = [(interpreterOffset, path)]
        return b
    }
}

/// SplitMix64, so the fuzz test is repeatable.
private struct ELFFuzzRandom: RandomNumberGenerator {
    /// The generator's state.
    var state: UInt64

    /// The next 64 random bits.
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Parses `file` from memory, recording an issue if the parser reads past its end.
private func parseELF(_ file: [UInt8]) throws(ELFError) -> ELFImage {
    try ELFImage.parse(fileSize: UInt64(file.count)) { offset, count in
        guard count >= 0, offset <= UInt64(file.count), UInt64(count) <= UInt64(file.count) - offset else {
            Issue.record("read(\(offset), \(count)) past the end of a \(file.count)-byte file")
            return nil
        }
        return Array(file[Int(offset)..<Int(offset) + count])
    }
}

/// Expects `file` to fail with `error`.
private func expectELFError(
    _ error: ELFError, _ file: [UInt8], _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(throws: error, comment, sourceLocation: sourceLocation) { try parseELF(file) }
}

/// Expects `file` to fail with `badSegment` for program header `index`, with `reason` in the reason.
private func expectBadSegment(
    _ file: [UInt8], index: Int, _ reason: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    do {
        let image = try parseELF(file)
        Issue.record("parsed, expected badSegment(\(index)): \(image)", sourceLocation: sourceLocation)
    } catch {
        guard case .badSegment(let i, let why) = error else {
            Issue.record("\(error), expected badSegment(\(index))", sourceLocation: sourceLocation)
            return
        }
        #expect(i == index, sourceLocation: sourceLocation)
        #expect(why.contains(reason), "reason \"\(why)\"", sourceLocation: sourceLocation)
    }
}

/// Every ELF class and byte order, as `(is64, littleEndian)`.
private let elfVariants: [(Bool, Bool)] = [(false, true), (false, false), (true, true), (true, false)]

/// The ELF executable header parser against synthetic and host images.
@Suite("ELF parser")
struct ELFParserTests {
    /// Every field of the standard image, in each class and byte order.
    @Test("parses ELF32 and ELF64, little- and big-endian", arguments: [false, true], [false, true])
    func parsesStandardImage(is64: Bool, littleEndian: Bool) throws {
        let image = try parseELF(ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian).build())
        let base = ELFFileBuilder.base(is64: is64)
        let expected = ELFImage(
            is64Bit: is64, littleEndian: littleEndian, type: 2, machine: is64 ? 0xb7 : 0x28, entry: base + 0x74,
            segments: [
                ELFSegment(
                    virtualAddress: base, offset: 0, fileSize: 0x1000, memorySize: 0x1000, alignment: 0x1000,
                    readable: true, writable: false, executable: true),
                ELFSegment(
                    virtualAddress: base + 0x11000, offset: 0x1000, fileSize: 0x800, memorySize: 0x1800,
                    alignment: 0x1000, readable: true, writable: true, executable: false),
            ],
            stackSize: 0x20000, executableStack: false, interpreter: "/lib/ld-uClibc.so.0")
        #expect(image == expected)
        #expect(image.segments[0].readable && image.segments[1].writable)
    }

    /// Full-width and byte-order-sensitive values survive: a byte-swapped read would change each.
    @Test("reads multi-byte fields in the file's byte order")
    func byteOrder() throws {
        for (is64, littleEndian) in elfVariants {
            var b = ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian)
            b.machine = 0x1234
            b.entry = is64 ? 0x0102_0304_0506_0708 : 0x0102_0304
            b.headers[2].flags = ELFTestHeader.w | 0x0f00_0000
            b.headers[4].memsz = is64 ? 0x0000_0001_0203_0000 : 0x0102_0000
            let image = try parseELF(b.build())
            #expect(image.machine == 0x1234)
            #expect(image.entry == b.entry)
            let text = ELFSegment(
                virtualAddress: b.headers[2].vaddr, offset: 0, fileSize: 0x1000, memorySize: 0x1000,
                alignment: 0x1000, readable: false, writable: true, executable: false)
            #expect(image.segments[0] == text)
            #expect(image.stackSize == b.headers[4].memsz)
        }
    }

    /// ET_DYN with nothing but a PT_LOAD; then PT_GNU_STACK with PF_X and no size.
    @Test("optional headers: none, and an executable stack without a size")
    func optionalHeaders() throws {
        for (is64, littleEndian) in elfVariants {
            var b = ELFFileBuilder(is64: is64, littleEndian: littleEndian)
            b.type = 3
            b.headers = [
                ELFTestHeader(
                    type: ELFTestHeader.load, flags: ELFTestHeader.r | ELFTestHeader.w | ELFTestHeader.x,
                    filesz: 0x2000, memsz: 0x8000)
            ]
            let image = try parseELF(b.build())
            #expect(image.type == 3)
            #expect(image.segments.count == 1)
            #expect(image.segments[0].readable && image.segments[0].writable && image.segments[0].executable)
            #expect(image.stackSize == nil)
            #expect(!image.executableStack)
            #expect(image.interpreter == nil)

            b.headers.append(ELFTestHeader(type: ELFTestHeader.gnuStack, flags: ELFTestHeader.x, memsz: 0))
            let stack = try parseELF(b.build())
            #expect(stack.stackSize == nil)
            #expect(stack.executableStack)
        }
    }

    /// The header, the whole program header table in one call, then the interpreter path.
    @Test("reads the program header table with one call")
    func readPattern() throws {
        for (is64, littleEndian) in elfVariants {
            let b = ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian)
            let file = b.build()
            var calls: [String] = []
            _ = try ELFImage.parse(fileSize: UInt64(file.count)) { offset, count in
                calls.append("\(offset)+\(count)")
                return Array(file[Int(offset)..<Int(offset) + count])
            }
            let path = ELFFileBuilder.interpreterPath.utf8.count + 1
            #expect(
                calls == [
                    "0+64", "\(b.headerSize)+\(6 * b.entrySize)", "\(ELFFileBuilder.interpreterOffset)+\(path)",
                ])
        }
    }

    /// Values exactly at each limit are accepted.
    @Test("accepts values at the limits")
    func limits() throws {
        for (is64, littleEndian) in elfVariants {
            let standard = ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian)
            // A PT_LOAD ending at the end of the file; a program header table ending there too.
            var b = standard
            b.size = 0x3000
            b.headers[3].filesz = 0x2000
            b.headers[3].memsz = 0x2000
            b.tableOffset = b.size - 6 * b.entrySize
            #expect(try parseELF(b.build()).segments[1].fileSize == 0x2000)

            // p_align 0 and 1 impose nothing; adjacent PT_LOADs do not overlap; empty PT_LOADs.
            b = standard
            b.headers[2].align = 0
            b.headers[2].vaddr += 0x123
            b.headers[3].align = 1
            b.headers[3].vaddr = b.headers[2].vaddr + b.headers[2].memsz
            b.headers.append(ELFTestHeader(type: ELFTestHeader.load, vaddr: b.headers[3].vaddr + 0x1800))
            b.headers.append(ELFTestHeader(type: ELFTestHeader.load, vaddr: b.headers[3].vaddr + 0x1800))
            #expect(try parseELF(b.build()).segments.count == 4)

            // A segment ending at the top of the address space.
            b = standard
            b.headers[3].vaddr = (is64 ? UInt64.max : UInt64(UInt32.max)) - 0x1800
            b.headers[3].align = 0
            #expect(try parseELF(b.build()).segments[1].virtualAddress == b.headers[3].vaddr)

            // 4096 program headers, all but one PT_NULL; a file just big enough for them.
            b = standard
            b.headers += Array(repeating: ELFTestHeader(type: ELFTestHeader.null), count: 4096 - 6)
            b.tableOffset = 0x2000
            b.size = 0x2000 + 4096 * b.entrySize
            #expect(try parseELF(b.build()).segments.count == 2)

            // The interpreter path is read up to its first NUL; 4096 bytes is allowed.
            b = standard
            b.patches[0].bytes = Array("/lib/ld.so".utf8) + [0, 0x41, 0]
            b.headers[1].filesz = 13
            #expect(try parseELF(b.build()).interpreter == "/lib/ld.so")
            b.headers[1].offset = 0
            b.headers[1].filesz = 4096
            b.patches.append((4095, [0]))
            #expect(try parseELF(b.build()).interpreter != nil)
        }
    }

    /// Files shorter than the ELF header, and reads that come back empty or short.
    @Test("truncated files and reads")
    func truncated() throws {
        for (is64, littleEndian) in elfVariants {
            let file = ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian).build()
            var lengths = [0, 1, 3, 4, 5, 16, 24, 51]
            if is64 { lengths += [52, 53, 60, 63] }
            for length in lengths {
                expectELFError(.truncated, Array(file.prefix(length)), "length \(length)")
            }
            #expect(throws: ELFError.truncated) {
                try ELFImage.parse(fileSize: UInt64(file.count)) { _, _ in nil }
            }
            // The program header table read fails, then one comes back a byte short.
            for lying in [false, true] {
                var calls = 0
                #expect(throws: ELFError.truncated) {
                    try ELFImage.parse(fileSize: UInt64(file.count)) { offset, count in
                        calls += 1
                        let bytes = Array(file[Int(offset)..<Int(offset) + count])
                        guard calls > 1 else { return bytes }
                        return lying ? bytes.dropLast() : nil
                    }
                }
            }
        }
        // An ELF32 header is 52 bytes; with its program headers elsewhere, the file can be just that.
        var b = ELFFileBuilder(is64: false, littleEndian: true)
        b.size = 52
        b.phoff = 0
        b.phnum = 1
        expectELFError(.noLoadableSegment, b.build())
    }

    /// Any of the four magic bytes wrong.
    @Test("bad magic")
    func badMagic() {
        for (is64, littleEndian) in elfVariants {
            for i in 0..<4 {
                var b = ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian)
                b.magic[i] ^= 0x20
                expectELFError(.badMagic, b.build(), "byte \(i)")
            }
        }
        expectELFError(.badMagic, [UInt8](repeating: 0, count: 64))
    }

    /// EI_CLASS other than 1 and 2.
    @Test("bad class")
    func badClass() {
        for (is64, littleEndian) in elfVariants {
            for value: UInt8 in [0, 3, 0x80, 0xff] {
                var b = ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian)
                b.elfClass = value
                expectELFError(.badClass, b.build(), "EI_CLASS \(value)")
            }
        }
    }

    /// EI_DATA other than 1 and 2.
    @Test("bad encoding")
    func badEncoding() {
        for (is64, littleEndian) in elfVariants {
            for value: UInt8 in [0, 3, 0xff] {
                var b = ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian)
                b.encoding = value
                expectELFError(.badEncoding, b.build(), "EI_DATA \(value)")
            }
        }
    }

    /// EI_VERSION or e_version other than 1 (including 1 in the other byte order).
    @Test("bad version")
    func badVersion() {
        for (is64, littleEndian) in elfVariants {
            for value: UInt8 in [0, 2, 0xff] {
                var b = ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian)
                b.identVersion = value
                expectELFError(.badVersion, b.build(), "EI_VERSION \(value)")
            }
            for value: UInt32 in [0, 2, 0x0100_0000, 0x0000_0101, .max] {
                var b = ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian)
                b.version = value
                expectELFError(.badVersion, b.build(), "e_version \(value)")
            }
        }
    }

    /// e_type other than ET_EXEC and ET_DYN.
    @Test("bad type")
    func badType() {
        for (is64, littleEndian) in elfVariants {
            for value: UInt16 in [0, 1, 4, 0x0200, 0x0300, 0xfe00, 0xffff] {
                var b = ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian)
                b.type = value
                expectELFError(.badType, b.build(), "e_type \(value)")
            }
        }
    }

    /// e_phentsize, e_phnum and e_phoff that do not give a table inside the file.
    @Test("bad program header table")
    func badProgramHeaders() {
        for (is64, littleEndian) in elfVariants {
            let standard = ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian)
            for value: UInt16 in [0, 1, 31, 33, 55, 57, 64, 0xffff, is64 ? 32 : 56] {
                var b = standard
                b.phentsize = value
                expectELFError(.badProgramHeaders, b.build(), "e_phentsize \(value)")
            }
            for value: UInt16 in [0, 4097, 0x8000, 0xffff] {
                var b = standard
                b.phnum = value
                b.size = 0x1000 + Int(value) * b.entrySize
                expectELFError(.badProgramHeaders, b.build(), "e_phnum \(value)")
            }
            let tableSize = UInt64(6 * standard.entrySize)
            let maxOffset: UInt64 = is64 ? .max : UInt64(UInt32.max)
            let size = UInt64(standard.size)
            for value in [size, size - tableSize + 1, size + 1, maxOffset, maxOffset - tableSize + 1, maxOffset - 1] {
                var b = standard
                b.phoff = value
                expectELFError(.badProgramHeaders, b.build(), "e_phoff \(value)")
            }
        }
    }

    /// No PT_LOAD among otherwise valid program headers.
    @Test("no loadable segment")
    func noLoadableSegment() {
        for (is64, littleEndian) in elfVariants {
            var b = ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian)
            b.headers[2].type = ELFTestHeader.null
            b.headers[3].type = 0x6000_0001
            expectELFError(.noLoadableSegment, b.build())
            b.headers = [ELFTestHeader(type: ELFTestHeader.gnuStack)]
            expectELFError(.noLoadableSegment, b.build())
        }
    }

    /// A PT_LOAD with more file bytes than memory bytes.
    @Test("PT_LOAD: p_filesz > p_memsz")
    func loadFileSizeExceedsMemorySize() {
        for (is64, littleEndian) in elfVariants {
            var b = ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian)
            b.headers[3].memsz = b.headers[3].filesz - 1
            expectBadSegment(b.build(), index: 3, "p_filesz")
        }
    }

    /// A PT_LOAD whose file bytes are past the end of the file, or whose offset overflows.
    @Test("PT_LOAD: outside the file, and overflowing offsets")
    func loadOutsideFile() {
        for (is64, littleEndian) in elfVariants {
            let standard = ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian)
            let wordMax: UInt64 = is64 ? .max : UInt64(UInt32.max)
            let cases: [(offset: UInt64, filesz: UInt64)] = [
                (0x1000, UInt64(standard.size) - 0x1000 + 1), (UInt64(standard.size), 1), (wordMax, 1),
                (wordMax, wordMax), (1, wordMax), (0x1000, wordMax - 0xfff),
            ]
            for (offset, filesz) in cases {
                var b = standard
                b.headers[3].offset = offset
                b.headers[3].filesz = filesz
                b.headers[3].memsz = wordMax
                b.headers[3].vaddr = 0
                b.headers[3].align = 0
                b.headers.swapAt(2, 3)
                expectBadSegment(b.build(), index: 2, "end of the file")
            }
        }
    }

    /// A PT_LOAD whose memory range wraps past the top of the (32- or 64-bit) address space.
    @Test("PT_LOAD: p_vaddr + p_memsz overflows")
    func loadAddressOverflow() {
        for (is64, littleEndian) in elfVariants {
            let wordMax: UInt64 = is64 ? .max : UInt64(UInt32.max)
            let cases: [(vaddr: UInt64, memsz: UInt64)] = [
                (wordMax - 0x17ff, 0x1800), (wordMax - 0xfff, 0x2000), (wordMax, 2), (1, wordMax), (wordMax, wordMax),
            ]
            for (vaddr, memsz) in cases {
                var b = ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian)
                b.headers[3].vaddr = vaddr
                b.headers[3].filesz = 0
                b.headers[3].memsz = memsz
                b.headers[3].align = 0
                expectBadSegment(b.build(), index: 3, "overflows")
            }
        }
    }

    /// p_align not a power of two, and p_offset and p_vaddr that disagree modulo p_align.
    @Test("PT_LOAD: bad alignment and misaligned offset or address")
    func loadAlignment() {
        for (is64, littleEndian) in elfVariants {
            let standard = ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian)
            for align: UInt64 in [3, 0x1800, 0x1001, is64 ? .max : UInt64(UInt32.max)] {
                var b = standard
                b.headers[3].align = align
                expectBadSegment(b.build(), index: 3, "power of two")
            }
            var b = standard
            b.headers[3].vaddr += 0x800
            expectBadSegment(b.build(), index: 3, "modulo")
            b = standard
            b.headers[2].offset = 0x10
            b.headers[2].filesz = 0x10
            expectBadSegment(b.build(), index: 2, "modulo")
            b = standard
            b.headers[3].align = 0x10_0000
            expectBadSegment(b.build(), index: 3, "modulo")
        }
    }

    /// PT_LOADs out of address order, or overlapping.
    @Test("PT_LOAD: unsorted and overlapping")
    func loadOrder() {
        for (is64, littleEndian) in elfVariants {
            let standard = ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian)
            var b = standard
            b.headers.swapAt(2, 3)
            expectBadSegment(b.build(), index: 3, "sorted")
            b = standard
            b.headers[2].memsz = 0x2000
            b.headers[3].vaddr = b.headers[2].vaddr + 0x1000
            expectBadSegment(b.build(), index: 3, "overlaps")
            b = standard
            b.headers[3].vaddr = b.headers[2].vaddr
            b.headers[3].offset = 0
            expectBadSegment(b.build(), index: 3, "overlaps")
            b = standard
            b.headers[3].vaddr = b.headers[2].vaddr + 0xfff
            b.headers[3].offset = 0xfff
            b.headers[3].align = 0
            expectBadSegment(b.build(), index: 3, "overlaps")
            // A third PT_LOAD inside the first: checked against the one before it, which it precedes.
            b = standard
            b.headers.append(ELFTestHeader(type: ELFTestHeader.load, vaddr: b.headers[2].vaddr + 0x10, memsz: 1))
            expectBadSegment(b.build(), index: 6, "sorted")
        }
    }

    /// PT_INTERP without its NUL, of a bad size, outside the file, or given twice.
    @Test("PT_INTERP: bad size, no NUL, outside the file, twice")
    func badInterpreter() {
        for (is64, littleEndian) in elfVariants {
            let standard = ELFFileBuilder.standard(is64: is64, littleEndian: littleEndian)
            var b = standard
            b.headers[1].filesz -= 1
            expectBadSegment(b.build(), index: 1, "NUL")
            b = standard
            b.patches[0].bytes[b.patches[0].bytes.count - 1] = 0x41
            expectBadSegment(b.build(), index: 1, "NUL")
            for size: UInt64 in [0, 1, 4097, 0x10000, is64 ? .max : UInt64(UInt32.max)] {
                b = standard
                b.headers[1].filesz = size
                expectBadSegment(b.build(), index: 1, "size")
            }
            let wordMax: UInt64 = is64 ? .max : UInt64(UInt32.max)
            for offset in [UInt64(standard.size) - 10, UInt64(standard.size), wordMax, wordMax - 10] {
                b = standard
                b.headers[1].offset = offset
                expectBadSegment(b.build(), index: 1, "end of the file")
            }
            b = standard
            b.headers.append(b.headers[1])
            expectBadSegment(b.build(), index: 6, "PT_INTERP")
            // A bad PT_INTERP is reported even when there is no PT_LOAD.
            b = standard
            b.headers[1].filesz = 1
            b.headers[2].type = ELFTestHeader.null
            b.headers[3].type = ELFTestHeader.null
            expectBadSegment(b.build(), index: 1, "size")
        }
    }

    /// The host's own executables, when there are any.
    @Test("parses the host's /bin/ls and /bin/sh")
    func hostBinaries() throws {
        #if canImport(Glibc)
            for path in ["/bin/ls", "/bin/sh"] {
                let fd = open(path, O_RDONLY)
                guard fd >= 0 else { continue }
                defer { close(fd) }
                var status = stat()
                try #require(fstat(fd, &status) == 0)
                let image = try ELFImage.parse(fileSize: UInt64(status.st_size)) { offset, count in
                    var buffer = [UInt8](repeating: 0, count: count)
                    var done = 0
                    while done < count {
                        let n = buffer.withUnsafeMutableBytes { raw in
                            pread(fd, raw.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                        }
                        guard n > 0 else { return nil }
                        done += n
                    }
                    return buffer
                }
                #expect(!image.segments.isEmpty, "\(path)")
                #expect(image.segments.contains { $0.writable }, "\(path)")
                #expect(image.segments.contains { $0.executable }, "\(path)")
                #expect(image.is64Bit == (MemoryLayout<Int>.size == 8), "\(path)")
                #if _endian(little)
                    #expect(image.littleEndian, "\(path)")
                #endif
                #if arch(x86_64)
                    #expect(image.machine == 62, "\(path)")
                #elseif arch(arm64)
                    #expect(image.machine == 183, "\(path)")
                #endif
                if let interpreter = image.interpreter { #expect(interpreter.hasPrefix("/"), "\(path)") }
            }
        #endif
    }

    /// Random byte flips and truncations of valid images never trap; what parses is consistent.
    @Test("fuzz: 10,000 corrupted images never trap")
    func fuzz() {
        var random = ELFFuzzRandom(state: 0x454c_4600_5eed)
        let originals = elfVariants.map { ELFFileBuilder.standard(is64: $0.0, littleEndian: $0.1).build() }
        var parsed = 0
        var refused = 0
        for iteration in 0..<10_000 {
            var file = originals[iteration % originals.count]
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let position: Int
                switch Int.random(in: 0..<10, using: &random) {
                case 0..<6: position = Int.random(in: 0..<0x200, using: &random)
                case 6: position = Int.random(in: 0..<32, using: &random) + ELFFileBuilder.interpreterOffset
                default: position = Int.random(in: 0..<file.count, using: &random)
                }
                file[position] ^= UInt8.random(in: 1...0xff, using: &random)
            }
            if Int.random(in: 0..<16, using: &random) == 0 {
                file.removeLast(Int.random(in: 0..<file.count, using: &random))
            }
            do {
                let image = try parseELF(file)
                parsed += 1
                var end: UInt64 = 0
                for segment in image.segments {
                    #expect(segment.fileSize <= segment.memorySize, "iteration \(iteration)")
                    #expect(segment.offset + segment.fileSize <= UInt64(file.count), "iteration \(iteration)")
                    #expect(segment.virtualAddress >= end, "iteration \(iteration)")
                    end = segment.virtualAddress + segment.memorySize
                }
                #expect(!image.segments.isEmpty, "iteration \(iteration)")
            } catch {
                refused += 1
            }
        }
        #expect(parsed > 0)
        #expect(refused > 0)
    }
}
