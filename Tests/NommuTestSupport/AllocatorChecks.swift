// SPDX-License-Identifier: Apache-2.0
public import PageAllocator

/// What is wrong with an allocator that should have every page back, or nil.
///
/// Hands the calling thread's per-CPU lists back first (other threads' lists go back when
/// those threads exit), then checks: no page allocated, none on per-CPU lists, every page
/// on the free lists, the free lists exactly the fresh arena's blocks, invariants hold.
public func allPagesBackViolation(_ allocator: PageAllocator) -> String? {
    allocator.drainLocalPerCPULists()
    let s = allocator.statistics()
    if s.allocatedPages != 0 { return "\(s.allocatedPages) pages still allocated" }
    if s.perCPUPages != 0 { return "\(s.perCPUPages) pages still on per-CPU lists" }
    if s.freePages != s.totalPages { return "free \(s.freePages) of \(s.totalPages)" }
    if s.slackPages != 0 { return "\(s.slackPages) slack pages" }
    let pristine = pristineFreeBlocks(totalPages: s.totalPages, maxOrder: s.maxOrder)
    if s.freeBlocks != pristine { return "free blocks \(s.freeBlocks), fresh arena has \(pristine)" }
    return allocator.invariantViolation()
}
