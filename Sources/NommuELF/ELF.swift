// SPDX-License-Identifier: Apache-2.0

/// Why a file is not a loadable executable (the loader turns every case into ENOEXEC).
package enum ELFError: Error, Equatable, Sendable {
    /// The file is shorter than its ELF header (52 bytes for ELF32, 64 for ELF64), or a read came back short.
    case truncated
    /// The file does not start with 0x7f 'E' 'L' 'F'.
    case badMagic
    /// `EI_CLASS` is neither `ELFCLASS32` (1) nor `ELFCLASS64` (2).
    case badClass
    /// `EI_DATA` is neither `ELFDATA2LSB` (1) nor `ELFDATA2MSB` (2).
    case badEncoding
    /// `EI_VERSION` or `e_version` is not `EV_CURRENT` (1).
    case badVersion
    /// `e_type` is neither `ET_EXEC` (2) nor `ET_DYN` (3).
    case badType
    /// `e_phentsize`, `e_phnum` or `e_phoff` do not describe a program header table inside the file.
    case badProgramHeaders
    /// No program header is `PT_LOAD`.
    case noLoadableSegment
    /// Program header `index` (counting every program header from 0) is malformed; `reason` says how.
    case badSegment(index: Int, reason: String)
}

/// One `PT_LOAD` program header: a run of the file to place in memory.
package struct ELFSegment: Equatable, Sendable {
    /// Where the segment starts in memory (`p_vaddr`).
    package var virtualAddress: UInt64
    /// Where the segment's bytes start in the file (`p_offset`).
    package var offset: UInt64
    /// How many bytes come from the file (`p_filesz`).
    package var fileSize: UInt64
    /// How many bytes the segment takes in memory, the rest zero-filled (`p_memsz`).
    package var memorySize: UInt64
    /// The segment's alignment (`p_align`); 0 and 1 mean none.
    package var alignment: UInt64
    /// The segment is readable (`PF_R`).
    package var readable: Bool
    /// The segment is writable (`PF_W`).
    package var writable: Bool
    /// The segment is executable (`PF_X`).
    package var executable: Bool

    /// A segment with the given fields.
    package init(
        virtualAddress: UInt64, offset: UInt64, fileSize: UInt64, memorySize: UInt64, alignment: UInt64,
        readable: Bool, writable: Bool, executable: Bool
    ) {
        self.virtualAddress = virtualAddress
        self.offset = offset
        self.fileSize = fileSize
        self.memorySize = memorySize
        self.alignment = alignment
        self.readable = readable
        self.writable = writable
        self.executable = executable
    }
}

/// What a loader needs from an ELF executable's headers.
package struct ELFImage: Equatable, Sendable {
    /// The file is ELF64 (`ELFCLASS64`), else ELF32.
    package var is64Bit: Bool
    /// The file is little-endian (`ELFDATA2LSB`), else big-endian.
    package var littleEndian: Bool
    /// `e_type`: `ET_EXEC` (2) or `ET_DYN` (3).
    package var type: UInt16
    /// `e_machine`, not checked.
    package var machine: UInt16
    /// `e_entry`.
    package var entry: UInt64
    /// The `PT_LOAD` program headers, in file order (which is ascending address order).
    package var segments: [ELFSegment]
    /// `PT_GNU_STACK`'s `p_memsz` when non-zero (ELF-FDPIC uses it as the stack size); the last such header wins.
    package var stackSize: UInt64?
    /// `PT_GNU_STACK` has `PF_X` (false without one); the last such header wins.
    package var executableStack: Bool
    /// The `PT_INTERP` path up to its first NUL (as the kernel reads it), if there is one.
    package var interpreter: String?

    /// An image with the given fields.
    package init(
        is64Bit: Bool, littleEndian: Bool, type: UInt16, machine: UInt16, entry: UInt64, segments: [ELFSegment],
        stackSize: UInt64?, executableStack: Bool, interpreter: String?
    ) {
        self.is64Bit = is64Bit
        self.littleEndian = littleEndian
        self.type = type
        self.machine = machine
        self.entry = entry
        self.segments = segments
        self.stackSize = stackSize
        self.executableStack = executableStack
        self.interpreter = interpreter
    }
}

extension ELFImage {
    /// Parses the headers of an ELF file of `fileSize` bytes. `read(offset, count)` returns exactly
    /// `count` bytes at `offset`, or nil if they are not there (the parser never asks past fileSize).
    ///
    /// Reads the ELF header, the program header table (in one call) and the `PT_INTERP` path.
    /// A nil or short read is `truncated`. The first failing check is thrown: the ELF header's in the
    /// order of `ELFError`'s cases, then each program header in file order, then `noLoadableSegment`.
    package static func parse(fileSize: UInt64, read: (UInt64, Int) -> [UInt8]?) throws(ELFError) -> ELFImage {
        guard fileSize >= UInt64(ELFLayout.elf32.headerSize) else { throw .truncated }
        let ident = try fetch(read, at: 0, count: Int(min(fileSize, UInt64(ELFLayout.elf64.headerSize))))
        guard ident[0] == 0x7f, ident[1] == 0x45, ident[2] == 0x4c, ident[3] == 0x46 else { throw .badMagic }
        let layout: ELFLayout
        switch ident[4] {
        case 1: layout = .elf32
        case 2: layout = .elf64
        default: throw .badClass
        }
        guard fileSize >= UInt64(layout.headerSize) else { throw .truncated }
        let littleEndian: Bool
        switch ident[5] {
        case 1: littleEndian = true
        case 2: littleEndian = false
        default: throw .badEncoding
        }
        let header = ELFBytes(bytes: ident, littleEndian: littleEndian)
        guard ident[6] == 1, header.unsigned(at: 20, width: 4) == 1 else { throw .badVersion }
        let type = UInt16(truncatingIfNeeded: header.unsigned(at: 16, width: 2))
        guard type == 2 || type == 3 else { throw .badType }

        let table = try programHeaderTable(header, layout, fileSize: fileSize, read: read)
        var image = ELFImage(
            is64Bit: layout.wordSize == 8, littleEndian: littleEndian, type: type,
            machine: UInt16(truncatingIfNeeded: header.unsigned(at: 18, width: 2)),
            entry: header.unsigned(at: layout.entry, width: layout.wordSize), segments: [], stackSize: nil,
            executableStack: false, interpreter: nil)
        for index in 0..<table.count {
            let ph = ProgramHeader(table.bytes, layout, index: index)
            switch ph.type {
            case ELFConstant.ptLoad:
                try checkLoad(ph, index: index, layout, fileSize: fileSize, previous: image.segments.last)
                image.segments.append(
                    ELFSegment(
                        virtualAddress: ph.vaddr, offset: ph.offset, fileSize: ph.filesz, memorySize: ph.memsz,
                        alignment: ph.align, readable: ph.flags & ELFConstant.pfR != 0,
                        writable: ph.flags & ELFConstant.pfW != 0, executable: ph.flags & ELFConstant.pfX != 0))
            case ELFConstant.ptInterp:
                guard image.interpreter == nil else { throw .badSegment(index: index, reason: "second PT_INTERP") }
                image.interpreter = try interpreterPath(ph, index: index, fileSize: fileSize, read: read)
            case ELFConstant.ptGNUStack:
                image.stackSize = ph.memsz == 0 ? nil : ph.memsz
                image.executableStack = ph.flags & ELFConstant.pfX != 0
            default:
                break
            }
        }
        guard !image.segments.isEmpty else { throw .noLoadableSegment }
        return image
    }

    /// Checks the header's program header fields and reads the table in one call.
    private static func programHeaderTable(
        _ header: ELFBytes, _ layout: ELFLayout, fileSize: UInt64, read: (UInt64, Int) -> [UInt8]?
    ) throws(ELFError) -> (bytes: ELFBytes, count: Int) {
        let entrySize = header.unsigned(at: layout.phentsize, width: 2)
        let count = header.unsigned(at: layout.phnum, width: 2)
        let start = header.unsigned(at: layout.phoff, width: layout.wordSize)
        guard entrySize == UInt64(layout.phdrSize), (1...ELFConstant.maxProgramHeaders).contains(count) else {
            throw .badProgramHeaders
        }
        let (size, sizeOverflow) = count.multipliedReportingOverflow(by: entrySize)
        let (end, endOverflow) = start.addingReportingOverflow(size)
        guard !sizeOverflow, !endOverflow, end <= fileSize else { throw .badProgramHeaders }
        let bytes = try fetch(read, at: start, count: Int(size))
        return (ELFBytes(bytes: bytes, littleEndian: header.littleEndian), Int(count))
    }

    /// Checks one `PT_LOAD` header against the file and the `PT_LOAD` before it.
    private static func checkLoad(
        _ ph: ProgramHeader, index: Int, _ layout: ELFLayout, fileSize: UInt64, previous: ELFSegment?
    ) throws(ELFError) {
        func bad(_ reason: String) -> ELFError { .badSegment(index: index, reason: reason) }
        guard ph.filesz <= ph.memsz else { throw bad("p_filesz exceeds p_memsz") }
        let (fileEnd, fileOverflow) = ph.offset.addingReportingOverflow(ph.filesz)
        guard !fileOverflow, fileEnd <= fileSize else { throw bad("extends past the end of the file") }
        let (memoryEnd, memoryOverflow) = ph.vaddr.addingReportingOverflow(ph.memsz)
        guard !memoryOverflow, memoryEnd <= layout.addressLimit else { throw bad("address range overflows") }
        if ph.align > 1 {
            guard ph.align & (ph.align - 1) == 0 else { throw bad("p_align is not a power of two") }
            guard ph.offset % ph.align == ph.vaddr % ph.align else {
                throw bad("p_offset and p_vaddr disagree modulo p_align")
            }
        }
        if let previous {
            guard ph.vaddr >= previous.virtualAddress else { throw bad("PT_LOAD not sorted by p_vaddr") }
            // No overflow: the previous segment passed the address check above.
            guard ph.vaddr >= previous.virtualAddress + previous.memorySize else {
                throw bad("overlaps the previous PT_LOAD")
            }
        }
    }

    /// Checks a `PT_INTERP` header and reads its path.
    private static func interpreterPath(
        _ ph: ProgramHeader, index: Int, fileSize: UInt64, read: (UInt64, Int) -> [UInt8]?
    ) throws(ELFError) -> String {
        func bad(_ reason: String) -> ELFError { .badSegment(index: index, reason: reason) }
        guard (2...ELFConstant.maxInterpreterSize).contains(ph.filesz) else {
            throw bad("PT_INTERP size out of range")
        }
        let (end, overflow) = ph.offset.addingReportingOverflow(ph.filesz)
        guard !overflow, end <= fileSize else { throw bad("extends past the end of the file") }
        let bytes = try fetch(read, at: ph.offset, count: Int(ph.filesz))
        guard bytes.last == 0 else { throw bad("PT_INTERP not NUL-terminated") }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// Calls `read`, turning a missing or short answer into `truncated`.
    private static func fetch(
        _ read: (UInt64, Int) -> [UInt8]?, at offset: UInt64, count: Int
    ) throws(ELFError) -> [UInt8] {
        guard let bytes = read(offset, count), bytes.count == count else { throw .truncated }
        return bytes
    }
}

/// The numbers of the ELF specification the parser uses.
private enum ELFConstant {
    /// `PT_LOAD`: a loadable segment.
    static let ptLoad: UInt32 = 1
    /// `PT_INTERP`: the program interpreter's path.
    static let ptInterp: UInt32 = 3
    /// `PT_GNU_STACK`: the stack's flags and (for ELF-FDPIC) size.
    static let ptGNUStack: UInt32 = 0x6474_e551
    /// `PF_X`: executable.
    static let pfX: UInt32 = 1
    /// `PF_W`: writable.
    static let pfW: UInt32 = 2
    /// `PF_R`: readable.
    static let pfR: UInt32 = 4
    /// The most program headers accepted (so `PN_XNUM`, 0xffff, is refused).
    static let maxProgramHeaders: UInt64 = 4096
    /// The longest `PT_INTERP` accepted, NUL included (`PATH_MAX`).
    static let maxInterpreterSize: UInt64 = 4096
}

/// Where one ELF class keeps the fields the parser reads.
private struct ELFLayout {
    /// `e_ehsize`: bytes in the ELF header.
    let headerSize: Int
    /// Bytes in an address or offset field: 4 (ELF32) or 8 (ELF64).
    let wordSize: Int
    /// Offset of `e_entry` in the ELF header.
    let entry: Int
    /// Offset of `e_phoff` in the ELF header.
    let phoff: Int
    /// Offset of `e_phentsize` in the ELF header.
    let phentsize: Int
    /// Offset of `e_phnum` in the ELF header.
    let phnum: Int
    /// Bytes in one program header, the only `e_phentsize` accepted.
    let phdrSize: Int
    /// Offset of `p_flags` in a program header.
    let pFlags: Int
    /// Offset of `p_offset` in a program header.
    let pOffset: Int
    /// Offset of `p_vaddr` in a program header.
    let pVaddr: Int
    /// Offset of `p_filesz` in a program header.
    let pFilesz: Int
    /// Offset of `p_memsz` in a program header.
    let pMemsz: Int
    /// Offset of `p_align` in a program header.
    let pAlign: Int

    /// The highest end address a segment may have: the class's largest address, so the end fits in a word.
    var addressLimit: UInt64 { wordSize == 8 ? .max : UInt64(UInt32.max) }

    /// ELF32 (`Elf32_Ehdr`, `Elf32_Phdr`).
    static let elf32 = ELFLayout(
        headerSize: 52, wordSize: 4, entry: 24, phoff: 28, phentsize: 42, phnum: 44, phdrSize: 32,
        pFlags: 24, pOffset: 4, pVaddr: 8, pFilesz: 16, pMemsz: 20, pAlign: 28)
    /// ELF64 (`Elf64_Ehdr`, `Elf64_Phdr`).
    static let elf64 = ELFLayout(
        headerSize: 64, wordSize: 8, entry: 24, phoff: 32, phentsize: 54, phnum: 56, phdrSize: 56,
        pFlags: 4, pOffset: 8, pVaddr: 16, pFilesz: 32, pMemsz: 40, pAlign: 48)
}

/// Bytes read from the file, decoded in the file's byte order.
private struct ELFBytes {
    /// The bytes.
    let bytes: [UInt8]
    /// The file is little-endian.
    let littleEndian: Bool

    /// The unsigned integer of `width` bytes at `offset`; the caller keeps it inside `bytes`.
    func unsigned(at offset: Int, width: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<width {
            value = value << 8 | UInt64(bytes[offset + (littleEndian ? width - 1 - i : i)])
        }
        return value
    }
}

/// One program header's fields, widened to 64 bits.
private struct ProgramHeader {
    /// `p_type`.
    let type: UInt32
    /// `p_flags`.
    let flags: UInt32
    /// `p_offset`.
    let offset: UInt64
    /// `p_vaddr`.
    let vaddr: UInt64
    /// `p_filesz`.
    let filesz: UInt64
    /// `p_memsz`.
    let memsz: UInt64
    /// `p_align`.
    let align: UInt64

    /// Decodes header `index` of a program header table.
    init(_ table: ELFBytes, _ layout: ELFLayout, index: Int) {
        let base = index * layout.phdrSize
        func word(_ field: Int) -> UInt64 { table.unsigned(at: base + field, width: layout.wordSize) }
        type = UInt32(truncatingIfNeeded: table.unsigned(at: base, width: 4))
        flags = UInt32(truncatingIfNeeded: table.unsigned(at: base + layout.pFlags, width: 4))
        offset = word(layout.pOffset)
        vaddr = word(layout.pVaddr)
        filesz = word(layout.pFilesz)
        memsz = word(layout.pMemsz)
        align = word(layout.pAlign)
    }
}
