// SPDX-License-Identifier: Apache-2.0
internal import CShims
import NommuHost
import NommuBase
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// Owns everything one allocator holds: the host arena, the descriptors, the free areas,
/// the zone lock and every per-CPU list made for it.
///
/// It is separate from `PageAllocator` so that a thread that is exiting can keep it alive
/// while it hands its per-CPU lists back, even if the allocator itself is being released
/// at that moment (see `PerCPURegistry`).
final class ZoneCore: @unchecked Sendable {
    let arena: HostArena
    let zone: Zone
    /// The zone lock (kernel: zone->lock), a host pthread mutex.
    let lock = HostLock()
    /// One owner tag per page (see `PageAllocator.ownerTag(of:)`), relaxed-atomic words.
    let ownerTags: UnsafeMutablePointer<UInt32>
    /// Per-CPU lists made for this zone and not yet handed back (guarded by `lock`).
    nonisolated(unsafe) var caches: Set<UnsafeMutableRawPointer> = []

    init(arena: consuming HostArena, zone: Zone) {
        self.arena = arena
        self.zone = zone
        ownerTags = .allocate(capacity: zone.totalPages)
        ownerTags.initialize(repeating: 0, count: zone.totalPages)
    }

    /// Runs `body` with the zone lock held.
    @inline(__always)
    func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Returns every block on `cache` to the buddy lists. Lock held.
    func drainLocked(_ cache: PerCPUPages) {
        for o in 0...PerCPUPages.maxOrder {
            while let pfn = cache.pop(o, zone) {
                zone.freeBlock(pfn, o)
            }
        }
    }

    /// Returns every block on every other thread's lists to the buddy lists (the kernel's
    /// `drain_all_pages`, which the allocator runs before it gives up). Lock held. Each
    /// owner is kept off its lists by the `PerCPUPages.enter` handshake while they are
    /// drained; an owner that is busy is waited for (it holds no lock while busy). Returns
    /// whether any block was handed back; false too when the host has no membarrier (the
    /// lists then stay where they are, as before).
    func drainOthersLocked(except own: UnsafeMutableRawPointer?) -> Bool {
        var victims: [PerCPUPages] = []
        for raw in caches where raw != own {
            let c = PerCPUPages(raw)
            if c.pages > 0 { victims.append(c) }
        }
        guard !victims.isEmpty else { return false }
        for c in victims { c.requestSteal() }
        guard cshim_membarrier() == 0 else {
            for c in victims { c.endSteal() }
            return false
        }
        for c in victims {
            while c.isBusy { sched_yield() }
            drainLocked(c)
            c.endSteal()
        }
        return true
    }

    /// Hands back and forgets a per-CPU list whose thread is exiting or evicting it.
    func retire(_ raw: UnsafeMutableRawPointer) {
        withLock {
            guard caches.remove(raw) != nil else { return }
            let cache = PerCPUPages(raw)
            drainLocked(cache)
            foldCounters(of: cache)
            cache.deallocate()
        }
    }

    /// Counters of retired lists, kept so totals never go backwards. Guarded by `lock`.
    nonisolated(unsafe) var retired = PerCPUTotals()

    func foldCounters(of cache: PerCPUPages) {
        retired += cache.totals(pageShift: zone.pageShift)
    }

    /// The counters of every list, retired ones included. Lock held.
    func perCPUTotalsLocked() -> (totals: PerCPUTotals, pages: Int) {
        var t = retired
        var pages = 0
        for raw in caches {
            let c = PerCPUPages(raw)
            pages += c.pages
            t += c.totals(pageShift: zone.pageShift)
        }
        return (t, pages)
    }

    /// `vm.nr_trim_pages`, mirrored for the per-CPU path (which takes no lock); written
    /// with the zone's under the lock.
    let nrTrimPages = Atomic<Int>(1)

    deinit {
        for raw in caches { PerCPUPages(raw).deallocate() }
        lock.destroy()
        zone.counters.deinitialize(count: 1)
        zone.counters.deallocate()
        zone.descriptors.deallocate()
        zone.heads.deallocate()
        ownerTags.deallocate()
    }
}

/// Which allocators are alive, by their never-reused id, so that a thread's exit hook
/// follows a per-CPU slot only while its allocator's memory still exists.
enum PerCPURegistry {
    static let live = HostMutex<[UInt64: ZoneCore]>([:])
    static let nextID = Atomic<UInt64>(1)

    /// Runs on every armed thread as it exits: hands each of its lists back.
    static let exitHook: cshim_tls_exit_hook = { slots, count in
        cshim_tls_retire_all(slots, count) { owner, cache in
            if let cache { PerCPURegistry.retire(owner: owner, cache: cache) }
        }
    }

    static func retire(owner: UInt64, cache: UnsafeMutableRawPointer) {
        // The strong reference keeps the core's memory alive while we drain into it.
        guard let core = live.withLock({ $0[owner] }) else { return }
        core.retire(cache)
    }
}
