// SPDX-License-Identifier: Apache-2.0
//
// The drivers of /dev: a frame buffer and a ramdisk whose memory comes from the page
// allocator, a ROM-type flash chip whose window is device memory outside it (holding the
// romfs image of /rom), /dev/zero and a serial port.
public import NommuBase
import PageAllocator

/// The mode of the flash chip (`nommu_flash_set_mode`).
public enum FlashMode: CInt, Sendable, CaseIterable {
    /// Array mode: the window shows the data.
    case read = 0
    /// Programming: the window shows the status register (a NOR chip in CFI program mode).
    case program = 1
    /// Erasing: the window shows the status register.
    case erase = 2
}

extension System {
    /// What every 16-bit word of the flash window reads while the chip is programming or
    /// erasing: a CFI status register (0x0080, "ready", no error bits), little-endian.
    public static let flashStatusWord: UInt16 = 0x0080

    /// The flash chip's mode.
    public var flashMode: FlashMode { state.withLock { $0.devices.flashMode } }

    /// Puts the flash device into read, program or erase mode (`nommu_flash_set_mode`).
    /// Leaving read mode makes the window, and every direct mapping of it (`/dev/mtd0` and
    /// the execute-in-place files of `/rom`), show the status pattern; new direct mappings
    /// are refused until it returns (private ones get a copy of the real data instead).
    /// - Throws: `ENOENT` for a device that is not a flash device (`/dev/mtd0`).
    public func setFlashMode(device: String, _ mode: FlashMode) throws(Errno) {
        guard device == "/dev/mtd0" || device == "mtd0" else { throw .noSuchFileOrDirectory }
        state.withLock { s in
            let window = UnsafeMutableRawBufferPointer(start: flash.baseAddress, count: flash.byteCount)
            switch (s.devices.flashMode, mode) {
            case (.read, .program), (.read, .erase):
                s.devices.flashSaved = Array(window)
                let words = window.bindMemory(to: UInt16.self)
                for i in words.indices { words[i] = System.flashStatusWord.littleEndian }
            case (.program, .read), (.erase, .read):
                s.devices.flashSaved!.withUnsafeBytes { window.copyMemory(from: $0) }
                s.devices.flashSaved = nil
            default:
                break
            }
            s.devices.flashMode = mode
        }
    }

    /// Adds a file to the romfs image of `/rom` (`nommu_romfs_add`): its data goes into
    /// the flash window, 16-byte aligned as romfs aligns file data, so execute-in-place
    /// mappings of it need not be page aligned.
    /// - Throws: `EINVAL` for a path not under `/rom/`; `ENAMETOOLONG`; `EEXIST` for a name
    ///   that exists (or is a directory of others); `EBUSY` once the path has been opened,
    ///   or while the chip is not in read mode; `ENOSPC` when the image is full.
    public func romfsAdd(path: String, _ bytes: UnsafeRawBufferPointer) throws(Errno) {
        try romfsAdd(path: PathBytes(path: path), bytes)
    }

    /// `romfsAdd` of a path given as bytes. - Throws: as `romfsAdd`.
    public func romfsAdd(path: [UInt8], _ bytes: UnsafeRawBufferPointer) throws(Errno) {
        let resolved = try FileState.resolve(PathBytes(path.prefix { $0 != 0 }))
        guard case .mount(.rom, let rel) = resolved.place, !rel.isEmpty else { throw .invalidArgument }
        try state.withLock { (s: inout ModelState) throws(Errno) in
            if let id = s.fs.names[.rom]?[rel] {
                throw s.fs.inodes[id]!.everOpened ? .resourceBusy : .fileExists
            }
            // A name that is a directory of others, or lies under one that is a file.
            let prefix = rel + [FileState.slash]
            let clashes = s.fs.names[.rom]?.keys.contains {
                $0.starts(with: prefix) || prefix.starts(with: $0 + [FileState.slash])
            }
            if clashes == true {
                throw .fileExists
            }
            guard s.devices.flashMode == .read else { throw .resourceBusy }
            let offset = (s.devices.flashUsed + 15) & ~15
            guard offset <= flash.byteCount, bytes.count <= flash.byteCount - offset else { throw .noSpace }
            if bytes.count > 0 {
                (flash.baseAddress + offset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            }
            s.devices.flashUsed = offset + bytes.count
            let id = s.fs.makeInode(.regular, on: .rom, path: "/rom/" + rel.displayed)
            s.fs.inodes.update(id) { node in
                node.size = bytes.count
                node.romOffset = offset
            }
            s.fs.names[.rom, default: [:]][rel] = id
        }
    }

    /// `romfsAdd` for an array.
    public func romfsAdd(path: String, _ bytes: [UInt8]) throws(Errno) {
        var failure: Errno? = nil
        bytes.withUnsafeBytes { b in
            do throws(Errno) { try romfsAdd(path: path, b) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// The flash chip's data (through the driver: the saved contents while the window
    /// shows the status pattern).
    func flashBytes(at offset: Int, count: Int, in s: inout ModelState) -> [UInt8] {
        guard count > 0 else { return [] }
        if let saved = s.devices.flashSaved { return Array(saved[offset..<offset + count]) }
        return Array(UnsafeRawBufferPointer(start: flash.baseAddress + offset, count: count))
    }

    /// Copies flash data into `dst` (through the driver).
    func copyFlash(at offset: Int, count: Int, to dst: UnsafeMutableRawPointer, in s: inout ModelState) {
        guard count > 0 else { return }
        if let saved = s.devices.flashSaved {
            saved.withUnsafeBytes { dst.copyMemory(from: $0.baseAddress! + offset, byteCount: count) }
        } else {
            dst.copyMemory(from: flash.baseAddress + offset, byteCount: count)
        }
    }

    /// Takes the frame buffer's or the ramdisk's memory from the page allocator (zeroed,
    /// contiguous) if it is not held yet. - Throws: `ENOMEM`; `ENXIO` for a zero size.
    func ensureDeviceMemory(_ d: Device, in s: inout ModelState) throws(Errno) {
        func take(_ bytes: Int) throws(Errno) -> PageRun {
            guard bytes > 0 else { throw .noSuchDeviceOrAddress }
            let run = try allocator.allocateExact(bytes: bytes, .zeroed, trimThreshold: 1)
            s.devices.devicePages += run.keptPages
            return run
        }
        switch d {
        case .fb0 where s.devices.framebuffer == nil:
            s.devices.framebuffer = try take(configuration.framebufferBytes)
        case .ram0 where s.devices.ramdisk == nil:
            s.devices.ramdisk = try take(configuration.ramdiskBytes)
            if let id = s.fs.names[.dev]?[PathBytes(path: "ram0")] {
                s.fs.inodes.update(id) { $0.size = configuration.ramdiskBytes }
            }
        default:
            return
        }
    }

    /// The memory of the frame buffer or the ramdisk, when held: (base, bytes).
    func deviceMemory(_ d: Device, in s: inout ModelState) -> (UnsafeMutableRawPointer, Int)? {
        switch d {
        case .fb0: s.devices.framebuffer.map { (allocator.address(of: $0.start), configuration.framebufferBytes) }
        case .ram0: s.devices.ramdisk.map { (allocator.address(of: $0.start), configuration.ramdiskBytes) }
        case .mtd0: (flash.baseAddress, flash.byteCount)
        default: nil
        }
    }

    /// Gives the ramdisk's memory back to the page allocator (a test's teardown: a board
    /// keeps it until power-off). - Throws: `EBUSY` while it is open or mapped.
    package func releaseRamdisk() throws(Errno) {
        try state.withLock { (s: inout ModelState) throws(Errno) in
            guard let run = s.devices.ramdisk else { return }
            if let id = s.fs.names[.dev]?[PathBytes(path: "ram0")],
                s.fs.inodes[id]!.opens > 0 || s.fs.inodes[id]!.regions > 0
            {
                throw .resourceBusy
            }
            s.devices.ramdisk = nil
            s.devices.devicePages -= run.keptPages
            releaseOrTrap(run)
        }
    }
}
