// SPDX-License-Identifier: Apache-2.0

/// Values in reusable numbered slots: O(1) insert, lookup and removal without hashing, and
/// in-place mutation through the subscript (no copy of a value's arrays). The kernel's
/// kmem caches of `vm_region` and `mm_struct`, in shape.
struct Slab<Value> {
    private var items: [Value?] = []
    private var freeSlots: [Int] = []
    /// Live values.
    private(set) var count = 0

    /// Stores `value` in a free slot and returns the slot.
    mutating func insert(_ value: Value) -> Int {
        count += 1
        if let slot = freeSlots.popLast() {
            items[slot] = value
            return slot
        }
        items.append(value)
        return items.count - 1
    }

    /// The value in `slot`, or nil. Setting nil frees the slot.
    subscript(slot: Int) -> Value? {
        get { slot >= 0 && slot < items.count ? items[slot] : nil }
        _modify {
            precondition(slot >= 0 && slot < items.count, "slab slot \(slot) out of range")
            let wasLive = items[slot] != nil
            yield &items[slot]
            let isLive = items[slot] != nil
            if wasLive && !isLive {
                count -= 1
                freeSlots.append(slot)
            } else if !wasLive && isLive {
                preconditionFailure("slab slot \(slot) filled through the subscript")
            }
        }
    }

    /// Frees the live value's slot (as setting nil through the subscript does, without its
    /// generic before-and-after checks and without copying the value out).
    @inline(__always)
    mutating func free(_ slot: Int) {
        precondition(slot >= 0 && slot < items.count && items[slot] != nil, "slab slot \(slot) is empty")
        items[slot] = nil
        count -= 1
        freeSlots.append(slot)
    }

    /// Runs `body` on the live value in `slot`, in place.
    @inline(__always)
    mutating func update<R>(_ slot: Int, _ body: (inout Value) -> R) -> R {
        precondition(slot >= 0 && slot < items.count && items[slot] != nil, "slab slot \(slot) is empty")
        return body(&items[slot]!)
    }

    /// Every live (slot, value).
    var live: [(Int, Value)] {
        items.enumerated().compactMap { slot, v in v.map { (slot, $0) } }
    }
}

/// pid → address-space slot. Pids are handed out in order and never reused, so an array
/// indexed by pid replaces hashing (one slot per process ever started).
struct PIDTable {
    private var slots: [Int] = [-1]
    /// Live processes.
    private(set) var count = 0

    subscript(pid: Int32) -> Int? {
        @inline(__always) get {
            let i = Int(pid)
            return i > 0 && i < slots.count && slots[i] >= 0 ? slots[i] : nil
        }
        set {
            let i = Int(pid)
            precondition(i > 0, "pid \(pid)")
            while slots.count <= i { slots.append(-1) }
            let was = slots[i] >= 0
            slots[i] = newValue ?? -1
            count += (newValue != nil ? 1 : 0) - (was ? 1 : 0)
        }
    }

    mutating func removeValue(forKey pid: Int32) -> Int? {
        let old = self[pid]
        if old != nil { self[pid] = nil }
        return old
    }

    /// Live pids, ascending.
    var keys: [Int32] { slots.indices.filter { slots[$0] >= 0 }.map { Int32($0) } }
}
