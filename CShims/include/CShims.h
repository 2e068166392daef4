// SPDX-License-Identifier: Apache-2.0
//
// CShims: the only C in nommu's core. It talks to the host and nothing else.
//
// Contract (mimalloc's "prim" contract):
//  - Every function that can fail returns 0 on success or an errno value. It never
//    leaves the answer in the global `errno` for Swift to read later.
//  - Out-parameters are written only on success.
//  - Sizes passed in are non-zero; alignments are powers of two that are multiples of
//    the host page size (the Swift layer checks this before calling).
//  - Memory from cshim_arena_acquire is reported as known-zero (`*is_zero = 1`) only when
//    the host guarantees it: fresh anonymous mmap does, posix_memalign does not.
//
// Besides the arena this header offers two things Swift lacks: relaxed atomic loads and
// stores on plain memory (for allocator metadata that several threads read), and a small
// block of thread-local slots with an exit hook (the per-CPU page lists live there).
#ifndef CSHIMS_H
#define CSHIMS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Host arena

/// Where the arena comes from.
enum cshim_arena_source {
    /// mmap(MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE): lazily backed, known zero.
    CSHIM_ARENA_MMAP = 0,
    /// posix_memalign: touched by the C library's allocator, not known to be zero.
    CSHIM_ARENA_POSIX_MEMALIGN = 1,
};

/// What the host handed back.
struct cshim_arena {
    void *base;          ///< first byte of the usable, aligned arena
    size_t bytes;        ///< usable bytes (as asked)
    void *reservation;   ///< what to give back (mmap start or malloc pointer)
    size_t reserved;     ///< bytes reserved (mmap only)
    int source;          ///< enum cshim_arena_source
    int is_zero;         ///< 1 when every byte is known to be zero
    int huge_pages;      ///< 1 when MADV_HUGEPAGE was asked for and accepted
};

/// The host's page size (sysconf(_SC_PAGESIZE)).
size_t cshim_host_page_size(void);

/// Takes `bytes` from the host, aligned to `alignment`. Returns 0 or an errno
/// (ENOMEM, EINVAL for bad sizes, or whatever mmap / posix_memalign reported).
int cshim_arena_acquire(size_t bytes, size_t alignment, int source, int huge_pages,
                        struct cshim_arena *out);

/// Gives an arena back. Returns 0 or the errno munmap reported.
int cshim_arena_release(struct cshim_arena *arena);

/// Monotonic clock in nanoseconds.
uint64_t cshim_now_ns(void);
/// Copies up to `bytes` from `src` to `dst`, stopping at the first page of `src` this process
/// cannot read (as the kernel's copy_from_user stops at a fault): the bytes copied. Reads go
/// through process_vm_readv, so an unmapped source is an answer, not a crash; where that call
/// is not allowed (seccomp), a plain memcpy.
size_t cshim_copy_readable(void *dst, const void *src, size_t bytes);

// MARK: - Linux constants Swift's Glibc module does not show
//
// mremap's flags need _GNU_SOURCE, and glibc has no MAP_UNINITIALIZED (it lives in the
// kernel's uapi headers). arena.c pins each value against the real headers with
// _Static_assert, so these can never drift.
enum {
    CSHIM_MREMAP_MAYMOVE = 1,
    CSHIM_MREMAP_FIXED = 2,
    CSHIM_MREMAP_DONTUNMAP = 4,
    CSHIM_MAP_UNINITIALIZED = 0x4000000,
    CSHIM_FUTEX_WAIT = 0,
    CSHIM_FUTEX_WAKE = 1,
    CSHIM_FUTEX_PRIVATE_FLAG = 128,
    CSHIM_FUTEX_CLOCK_REALTIME = 256,
};

// MARK: - Relaxed atomics on plain memory
//
// Page descriptors are plain memory; one byte of each is read by threads that do not own
// the page. Relaxed atomic access compiles to plain loads and stores on x86-64 and
// AArch64 and keeps the thread sanitizer's model exact.

static inline uint8_t cshim_load_relaxed_u8(const uint8_t *p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void cshim_store_relaxed_u8(uint8_t *p, uint8_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
static inline uint32_t cshim_load_relaxed_u32(const uint32_t *p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void cshim_store_relaxed_u32(uint32_t *p, uint32_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
/* Acquire and release on a futex word shared between threads (the tests' ping-pong). */
static inline uint32_t cshim_load_acquire_u32(const uint32_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void cshim_store_release_u32(uint32_t *p, uint32_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline int64_t cshim_load_relaxed_i64(const int64_t *p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void cshim_store_relaxed_i64(int64_t *p, int64_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* Parts of a 64-bit word that two threads write apart (the malloc's chunk word: one writes
 * its flag byte, another its tag bytes): a byte and a half-word, relaxed, through types that
 * may alias the word's (so the compiler never reorders them past the word's own accesses). */
typedef uint8_t __attribute__((may_alias)) cshim_alias_u8;
typedef uint16_t __attribute__((may_alias)) cshim_alias_u16;
typedef uint32_t __attribute__((may_alias)) cshim_alias_u32;
static inline uint8_t cshim_load_relaxed_byte(const void *p) {
    return __atomic_load_n((const cshim_alias_u8 *)p, __ATOMIC_RELAXED);
}
static inline void cshim_store_relaxed_byte(void *p, uint8_t v) {
    __atomic_store_n((cshim_alias_u8 *)p, v, __ATOMIC_RELAXED);
}
static inline void cshim_store_relaxed_half(void *p, uint16_t v) {
    __atomic_store_n((cshim_alias_u16 *)p, v, __ATOMIC_RELAXED);
}
static inline uint16_t cshim_load_relaxed_half(const void *p) {
    return __atomic_load_n((const cshim_alias_u16 *)p, __ATOMIC_RELAXED);
}
static inline uint32_t cshim_load_relaxed_word32(const void *p) {
    return __atomic_load_n((const cshim_alias_u32 *)p, __ATOMIC_RELAXED);
}

static inline int64_t cshim_load_acquire_i64(const int64_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void cshim_store_release_i64(int64_t *p, int64_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
/* Orders the calling thread's accesses against a signal handler or, together with
 * cshim_membarrier on another thread, against that thread: a compiler barrier only. */
static inline void cshim_signal_fence(void) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

/* A full memory barrier on every thread of the process that is running now (Linux
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), registered on first use; the global
 * command where that is refused). The slow side of an asymmetric fence: a thread that
 * only stores a flag and then loads another needs no fence of its own. Returns 0, or -1
 * when the host has no membarrier. */
int cshim_membarrier(void);

static inline void cshim_add_relaxed_i64(int64_t *p, int64_t v) { __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }

// MARK: - Thread-local slots (per-CPU page lists)

/// One thread's entry for one allocator: the allocator's never-reused id and that
/// allocator's per-thread cache. A slot whose owner is no longer alive is never followed.
struct cshim_tls_slot {
    uint64_t owner;
    void *cache;
};

#define CSHIM_TLS_SLOTS 4

struct cshim_tls_block {
    struct cshim_tls_slot slots[CSHIM_TLS_SLOTS];
    int armed;
};

extern __thread struct cshim_tls_block cshim_tls __attribute__((tls_model("initial-exec")));

/// The calling thread's slots (initial-exec TLS: one instruction, no call).
static inline struct cshim_tls_slot *cshim_tls_slots(void) {
    return cshim_tls.slots;
}

/// Called once per thread, at its exit, with its slot array, when the thread was armed.
typedef void (*cshim_tls_exit_hook)(struct cshim_tls_slot *slots, int count);

/// Installs the process-wide exit hook (first call wins) and arms the calling thread so
/// that the hook runs when it exits. Returns 0 or an errno from pthread_key_create.
int cshim_tls_arm(cshim_tls_exit_hook hook);

/// The cache of `owner` among `slots` (CSHIM_TLS_SLOTS of them), moved to the front so the
/// next lookup finds it in the first slot; NULL when the thread has none.
void *cshim_tls_promote(struct cshim_tls_slot *slots, uint64_t owner);

/// Puts (owner, cache) in the first slot, moving the others down one; returns the slot that
/// fell off the end (owner 0 when it was empty), whose cache the caller hands back.
struct cshim_tls_slot cshim_tls_push_front(struct cshim_tls_slot *slots, uint64_t owner, void *cache);

/// An exit hook's loop: empties every slot and calls `retire(owner, cache)` for each one used.
void cshim_tls_retire_all(struct cshim_tls_slot *slots, int count, void (*retire)(uint64_t owner, void *cache));

// MARK: - Thread-local slots (malloc thread caches)

/// The same shape for the mallocs' thread caches (NommuMalloc), with a hook of their own.
extern __thread struct cshim_tls_block cshim_malloc_tls __attribute__((tls_model("initial-exec")));

static inline struct cshim_tls_slot *cshim_malloc_tls_slots(void) {
    return cshim_malloc_tls.slots;
}

int cshim_malloc_tls_arm(cshim_tls_exit_hook hook);

#ifdef __cplusplus
}
#endif

#endif
