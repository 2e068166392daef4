// SPDX-License-Identifier: Apache-2.0
import PageAllocator

/// The devices' state: memory taken from the page allocator (the ramdisk, the frame buffer),
/// the flash window's mode and contents, and what the serial port was sent.
struct DeviceState {
    /// Pages of device memory taken from the page allocator.
    var devicePages = 0
    var ramdisk: PageRun? = nil
    var framebuffer: PageRun? = nil
    /// Bytes of the flash window the romfs image uses.
    var flashUsed = 0
    var flashMode = FlashMode.read
    /// The flash contents while the window shows the status pattern.
    var flashSaved: [UInt8]? = nil
    /// What was written to `/dev/ttyS0`.
    var console: [UInt8] = []

    /// The first broken invariant, or nil: the device pages counted are the ramdisk's and the
    /// frame buffer's; the flash contents are saved exactly while the window is not readable.
    func invariantViolation() -> String? {
        let pages = (ramdisk?.keptPages ?? 0) + (framebuffer?.keptPages ?? 0)
        guard pages == devicePages else { return "device memory \(pages) pages, counted \(devicePages)" }
        guard (flashSaved != nil) == (flashMode != .read) else {
            return "flash contents saved in mode \(flashMode)"
        }
        return nil
    }
}
