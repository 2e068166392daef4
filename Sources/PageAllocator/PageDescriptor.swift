// SPDX-License-Identifier: Apache-2.0
internal import CShims

/// Our `struct page`: 16 bytes of metadata per page, kept outside the arena.
///
/// Which fields mean what depends on `state`:
/// - `.free` (head of a block on buddy list `order`): `next`/`prev` link the list.
/// - `.perCPU` (head of a block on a per-CPU list): `next` links that list; `order` and
///   `runPages` are set when the block enters the list and never change while it is there.
/// - `.allocated` (head of a run from `allocate(order:)`): `order`, `runPages = 2^order`.
/// - `.allocatedExact` / `.allocatedExactSlack` (head of a run from `allocateExact`):
///   `order` is the buddy block it came from, `runPages` the pages asked for; with slack
///   the whole 2^order block is kept, otherwise exactly `runPages`.
/// - `.tail`: any page that is not the head of a block or run.
///
/// `headZero` and `nodeZero` record what is known to be zero (see `ZeroState`).
/// `state` is the one byte that threads other than the page's owner read (the buddy check
/// of a neighbouring free): it is accessed with relaxed atomics.
@usableFromInline
struct PageDescriptor {
    var next: UInt32 = .max
    var prev: UInt32 = .max
    var runPages: UInt32 = 0
    var order: UInt8 = 0
    var state: UInt8 = PageState.tail.rawValue
    /// Zero state of the block this page heads (free, per-CPU or just taken).
    var headZero: UInt8 = ZeroState.dirty.rawValue
    /// Halves of the mixed node whose midpoint is the next page (left: bits 0–1, right: 2–3).
    var nodeZero: UInt8 = 0

    /// Byte offset of `state` (checked once, in `PageAllocator.init`).
    static let stateOffset = 13
}

/// What a page descriptor's head state says.
enum PageState: UInt8 {
    case tail = 0
    case free = 1
    case allocated = 2
    case allocatedExact = 3
    case allocatedExactSlack = 4
    case perCPU = 5
}

/// What is known about the bytes of a free (or just-allocated) block.
///
/// Zero-ness is a property of buddy-tree nodes. A free block keeps its state in its head
/// descriptor. `.mixed` means "look at the two halves", whose states the node then keeps
/// in the descriptor just before its midpoint (a slot no other node uses). Splitting a
/// `.zero` or `.dirty` node copies the state to its halves; merging two halves gives
/// `.mixed` unless they agree; freeing a used run writes `.dirty` at its head. Every step
/// is O(1), so allocating without zeroing never touches per-page metadata, and a page
/// that the host gave as zero is never cleared twice.
enum ZeroState: UInt8 {
    case dirty = 0
    case zero = 1
    case mixed = 2

    /// From a descriptor byte the allocator wrote itself (0, 1 or 2).
    @inline(__always)
    init(unchecked raw: UInt8) {
        assert(raw <= 2, "zero-state byte \(raw)")
        self = unsafeBitCast(raw, to: ZeroState.self)
    }
}
