// SPDX-License-Identifier: Apache-2.0
//
// ramfs on !MMU (fs/ramfs/file-nommu.c), which is what tmpfs, /dev/shm and SysV segments
// are: a page cache of single pages from the buddy allocator. Truncating an empty file
// gathers one contiguous zeroed run so a shared mapping can be granted; pages written by
// write() are taken one at a time and are contiguous only by chance.
import NommuBase
import PageAllocator

extension System {
    /// The address of a page-cache page.
    func pageAddress(_ run: PageRun) -> UInt { UInt(bitPattern: allocator.address(of: run.start)) }

    /// Reads [offset, offset + count) ∩ [0, size); holes read as zeros.
    func ramfsRead(_ node: Inode, at offset: Int, count: Int) -> [UInt8] {
        guard offset < node.size, count > 0 else { return [] }
        let n = min(count, node.size - offset)
        let page = Int(pageSize)
        var out = [UInt8](repeating: 0, count: n)
        out.withUnsafeMutableBytes { dst in
            var done = 0
            while done < n {
                let pos = offset + done
                let index = pos >> pageShift
                let within = pos & (page - 1)
                let chunk = min(page - within, n - done)
                if let run = node.pages[index] {
                    let src = UnsafeRawPointer(bitPattern: pageAddress(run))! + within
                    (dst.baseAddress! + done).copyMemory(from: src, byteCount: chunk)
                }
                done += chunk
            }
        }
        return out
    }

    /// Writes into the page cache, taking a zeroed page for every hole written.
    /// - Throws: `ENOMEM` when a page cannot be had (nothing is written then).
    func ramfsWrite(_ id: Int, _ bytes: [UInt8], at offset: Int, in s: inout ModelState) throws(Errno) -> Int {
        let page = Int(pageSize)
        let first = offset >> pageShift
        let last = (offset + bytes.count - 1) >> pageShift
        var fresh: [Int: PageRun] = [:]
        let existing = s.fs.inodes[id]!.pages
        for index in first...last where existing[index] == nil {
            do {
                fresh[index] = try allocator.allocate(order: Order(0), .zeroed)
            } catch {
                for run in fresh.values { releaseOrTrap(run) }
                throw error
            }
        }
        s.fs.pageCachePages += fresh.count
        if offset > s.fs.inodes[id]!.size { zeroTail(id, from: s.fs.inodes[id]!.size, in: &s) }
        s.fs.inodes.update(id) { node in
            for (i, run) in fresh { node.pages[i] = run }
            bytes.withUnsafeBytes { src in
                var done = 0
                while done < bytes.count {
                    let pos = offset + done
                    let within = pos & (page - 1)
                    let chunk = min(page - within, bytes.count - done)
                    let dst = UnsafeMutableRawPointer(bitPattern: pageAddress(node.pages[pos >> pageShift]!))! + within
                    dst.copyMemory(from: src.baseAddress! + done, byteCount: chunk)
                    done += chunk
                }
            }
            node.size = max(node.size, offset + bytes.count)
        }
        return bytes.count
    }

    /// `ramfs_nommu_resize` in fs/ramfs/file-nommu.c.
    /// - Throws: from empty: `EFBIG` at 4 GiB or above the largest block, `ENOMEM` when no
    ///   contiguous run fits (the size is then unchanged); shrinking: `ETXTBSY` when a
    ///   shared mapping covers the pages cut off.
    func ramfsResize(_ id: Int, to newSize: Int, in s: inout ModelState) throws(Errno) {
        let node = s.fs.inodes[id]!
        let old = node.size
        guard newSize != old else { return }
        let page = Int(pageSize)
        let shift = UInt(pageShift)
        if old == 0 {
            // ramfs_nommu_expand_for_mapping: one contiguous zeroed run, excess given back.
            guard newSize >> 32 == 0 else { throw .fileTooLarge }
            let npages = (newSize + page - 1) >> pageShift
            guard Order.covering(pages: npages).rawValue <= configuration.maxOrder else { throw .fileTooLarge }
            // Pages left past EOF by an earlier shrink to zero go first (there are none:
            // a shrink to zero frees them all), so the run is the file's whole page cache.
            var run = try allocator.allocateExact(bytes: newSize, .zeroed, trimThreshold: 1)
            var pages: [Int: PageRun] = [:]
            for i in 0..<npages - 1 {
                do {
                    let (lower, upper) = try allocator.split(run, at: 1)
                    pages[i] = lower
                    run = upper
                } catch {
                    preconditionFailure("splitting a fresh run failed: \(error)")
                }
            }
            pages[npages - 1] = run
            s.fs.pageCachePages += npages
            s.fs.inodes.update(id) { node in
                node.pages = pages
                node.size = newSize
            }
            return
        }
        if newSize > old {
            // Growing a non-empty file allocates nothing. Bytes a shared mapping wrote past
            // the old end (in its last page) are not file data: they read as zeros.
            zeroTail(id, from: old, in: &s)
            s.fs.inodes.update(id) { $0.size = newSize }
            return
        }
        // nommu_shrink_inode_mappings: a shared mapping over [low, high] refuses the cut.
        let low = UInt(newSize) >> shift
        let high = (UInt(old) + UInt(page) - 1) >> shift
        var sharedRegions = Set<Int>()
        for (_, space) in s.mm.spaces.live {
            for m in space.mappings where m.flags.contains(.shared) {
                guard case .file(let inode) = s.mm.regions[m.region]!.backing, inode == id else { continue }
                let firstPage = m.pgoff
                let lastPage = m.pgoff + ((m.end - m.start + UInt(page) - 1) >> shift) - 1
                if lastPage >= low && firstPage <= high { throw .textFileBusy }
                sharedRegions.insert(m.region)
            }
        }
        // The regions of VM_SHARED mappings that reach past the new end are clamped to it (a
        // region only private overlays still use keeps its extent, as in the kernel).
        for rid in sharedRegions {
            let r = s.mm.regions[rid]!
            // A copy's region keeps its extent: its pages are its own, and clamping it mid-page
            // (as the kernel does to every VM_SHARED region) would leave its VMA past its end.
            if r.flags.contains(.mappedCopy) { continue }
            let rTop = (r.pgoff << shift) + (r.top - r.start)
            if rTop > UInt(newSize) {
                s.mm.regions.update(rid) { r in
                    r.top -= rTop - UInt(newSize)
                    if r.end > r.top { r.end = r.top }
                }
            }
        }
        // truncate_setsize: pages past the new end go, and the tail of the last page is
        // zeroed. A page a private overlay (a private mapping of the file's pages in place, VM_MAYOVERLAY) still covers is kept until the inode
        // goes, so the overlay never shows memory someone else has been given. What is
        // covered comes from the mappings, not the regions: an overlay may share a region
        // the loop above has just clamped below it.
        let keep = (newSize + page - 1) >> pageShift
        var covered: [(UInt, UInt)] = []
        for (_, space) in s.mm.spaces.live {
            for m in space.mappings {
                let r = s.mm.regions[m.region]!
                guard case .file(let inode) = r.backing, inode == id, !r.flags.contains(.mappedCopy) else { continue }
                covered.append((m.pgoff, m.pgoff + ((m.end - m.start + UInt(page) - 1) >> shift)))
            }
        }
        var freed = 0
        s.fs.inodes.update(id) { node in
            for index in node.pages.keys where index >= keep {
                let run = node.pages.removeValue(forKey: index)!
                if covered.contains(where: { UInt(index) >= $0.0 && UInt(index) < $0.1 }) {
                    node.orphans.append(run)
                } else {
                    releaseOrTrap(run)
                    freed += 1
                }
            }
            let within = newSize & (page - 1)
            if within != 0, let run = node.pages[newSize >> pageShift] {
                let p = UnsafeMutableRawPointer(bitPattern: pageAddress(run))! + within
                p.initializeMemory(as: UInt8.self, repeating: 0, count: page - within)
            }
            node.size = newSize
        }
        s.fs.pageCachePages -= freed
    }

    /// Zeroes [from, end of its page) in the page cache: past-EOF bytes of the last page.
    func zeroTail(_ id: Int, from: Int, in s: inout ModelState) {
        let page = Int(pageSize)
        let within = from & (page - 1)
        guard within != 0, let run = s.fs.inodes[id]!.pages[from >> pageShift] else { return }
        let p = UnsafeMutableRawPointer(bitPattern: pageAddress(run))! + within
        p.initializeMemory(as: UInt8.self, repeating: 0, count: page - within)
    }

    /// `ramfs_nommu_get_unmapped_area`: the page-cache address when [pgoff, pgoff + len)
    /// lies inside the file and its pages are physically contiguous and in order; else
    /// `ENOSYS` (so do_mmap falls back to a copy, or refuses a shared mapping).
    func ramfsGetUnmappedArea(_ node: Inode, length: UInt, pgoff: UInt) -> Result<UInt, Errno> {
        let page = pageSize
        let lpages = (length + page - 1) >> UInt(pageShift)
        let maxpages = (UInt(node.size) + page - 1) >> UInt(pageShift)
        guard pgoff < maxpages, maxpages - pgoff >= lpages else { return .failure(.noFunction) }
        guard let first = node.pages[Int(pgoff)] else { return .failure(.noFunction) }
        let base = pageAddress(first)
        for i in 1..<max(1, lpages) {
            guard let run = node.pages[Int(pgoff + i)], pageAddress(run) == base + i * page else {
                return .failure(.noFunction)
            }
        }
        return .success(base)
    }
}
