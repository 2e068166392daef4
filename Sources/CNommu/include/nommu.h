/* SPDX-License-Identifier: Apache-2.0
 *
 * nommu.h: Linux's no-MMU memory mapping, in user space, for C programs.
 *
 * Conventions (those of libc):
 *  - Syscall-shaped functions return -1 (or MAP_FAILED, or NULL) on failure and set the
 *    calling thread's errno to what a Linux no-MMU kernel would return; on failure they
 *    leave every out-parameter untouched and change nothing.
 *  - Flag values are Linux's (<sys/mman.h>, <fcntl.h>, <linux/futex.h>).
 *  - A NULL system or process handle is EINVAL. A handle is valid from its creation until
 *    nommu_system_destroy / nommu_process_exit; using it after that is undefined, as with
 *    a freed pointer.
 *  - Every function is safe to call from several threads at once. One lock guards each
 *    system's address-space model (the kernel's nommu_region_sem); the page allocator has
 *    its own zone lock, and orders 0-3 are served from per-thread lists without locking.
 *  - Addresses returned are real addresses inside the system's arena: read and write them
 *    directly.
 */
#ifndef NOMMU_H
#define NOMMU_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <sys/mman.h>
#include <fcntl.h>

#ifndef MAP_UNINITIALIZED
#define MAP_UNINITIALIZED 0x4000000
#endif
#ifndef MREMAP_MAYMOVE
#define MREMAP_MAYMOVE 1
#endif
#ifndef MREMAP_FIXED
#define MREMAP_FIXED 2
#endif
#ifndef FUTEX_WAIT
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX_WAIT_PRIVATE (FUTEX_WAIT | FUTEX_PRIVATE_FLAG)
#define FUTEX_WAKE_PRIVATE (FUTEX_WAKE | FUTEX_PRIVATE_FLAG)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- System: one simulated no-MMU kernel over one host arena ---- */

typedef struct nommu_system nommu_system;
typedef struct nommu_process nommu_process;

enum nommu_arena_source {
    NOMMU_ARENA_MMAP = 0,           /* mmap(MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE): known zero */
    NOMMU_ARENA_POSIX_MEMALIGN = 1, /* posix_memalign: not known zero */
};

struct nommu_config {
    size_t size;             /* sizeof(struct nommu_config); set by nommu_config_init */
    size_t arena_bytes;      /* physical memory (default 64 MiB) */
    size_t page_size;        /* a power of two >= 4096 (default 4096) */
    unsigned max_order;      /* largest buddy order (default 10: 4 MiB blocks) */
    int allow_uninitialized; /* CONFIG_MMAP_ALLOW_UNINITIALIZED (default 0) */
    int nr_trim_pages;       /* initial vm.nr_trim_pages (default 1) */
    int arena_source;        /* enum nommu_arena_source (default NOMMU_ARENA_MMAP) */
    int huge_pages;          /* ask the host for MADV_HUGEPAGE (default 0) */
    const char *host_dir;    /* backing directory of /data (files arrive later); NULL = temporary */
};

/* Fills the defaults. */
void nommu_config_init(struct nommu_config *config);
/* NULL config = defaults. NULL and errno (EINVAL, ENOMEM, ...) on failure. */
nommu_system *nommu_system_create(const struct nommu_config *config);
/* Releases the system, its processes and its arena. */
void nommu_system_destroy(nommu_system *system);

/* ---- Processes ---- */

nommu_process *nommu_process_create(nommu_system *system);
/* A child sharing the parent's address space (clone(CLONE_VM)). NULL and errno on failure. */
nommu_process *nommu_vfork(nommu_process *parent);
/* Always -1: EINVAL, as sys_fork on a kernel without an MMU. */
int nommu_fork(nommu_process *process);
int nommu_getpid(nommu_process *process);
/* Releases every mapping and descriptor (once no vfork relative shares them) and the handle. */
void nommu_process_exit(nommu_process *process);

/* ---- Memory ---- */

void *nommu_mmap(nommu_process *process, void *addr, size_t len, int prot, int flags, int fd, off_t off);
/* mmap2: the offset in pages (so pgoff + pages can wrap: EOVERFLOW). */
void *nommu_mmap2(nommu_process *process, void *addr, size_t len, int prot, int flags, int fd, unsigned long pgoff);
int nommu_munmap(nommu_process *process, void *addr, size_t len);
/* With MREMAP_FIXED, a fifth argument: void *new_address. */
void *nommu_mremap(nommu_process *process, void *old_address, size_t old_len, size_t new_len, int flags, ...);
int nommu_futex(nommu_process *process, uint32_t *uaddr, int op, uint32_t val, const struct timespec *timeout);
/* Not available without an MMU: -1 and ENOSYS. */
int nommu_mprotect(nommu_process *process, void *addr, size_t len, int prot);
int nommu_msync(nommu_process *process, void *addr, size_t len, int flags);
int nommu_mlock(nommu_process *process, const void *addr, size_t len);
int nommu_munlock(nommu_process *process, const void *addr, size_t len);
int nommu_mincore(nommu_process *process, void *addr, size_t len, unsigned char *vec);
int nommu_madvise(nommu_process *process, void *addr, size_t len, int advice);

/* ---- Files (this version: /proc, read-only, and the writable /proc/sys/vm/nr_trim_pages) ---- */

int nommu_open(nommu_process *process, const char *path, int flags, ...);
int nommu_close(nommu_process *process, int fd);
ssize_t nommu_read(nommu_process *process, int fd, void *buf, size_t count);
ssize_t nommu_write(nommu_process *process, int fd, const void *buf, size_t count);

/* ---- Page allocator, for allocator experiments ---- */

#define NOMMU_GFP_ZERO 0x1u

void *nommu_alloc_pages(nommu_system *system, unsigned order, unsigned flags);
/* -1 and EINVAL, changing nothing, for anything that is not an allocated run of that order. */
int nommu_free_pages(nommu_system *system, void *pages, unsigned order);
/* Trimmed per vm.nr_trim_pages, as no-MMU mmap does. */
void *nommu_alloc_pages_exact(nommu_system *system, size_t bytes, unsigned flags);
int nommu_free_pages_exact(nommu_system *system, void *pages, size_t bytes);

#define NOMMU_STATS_VERSION 1u
#define NOMMU_MAX_ORDERS 31

/* Gauges are "now"; counters are totals since the system was created. */
struct nommu_stats {
    uint32_t size;                    /* in: sizeof(struct nommu_stats) */
    uint32_t version;                 /* out: NOMMU_STATS_VERSION */
    uint32_t page_size;               /* gauge */
    uint32_t max_order;               /* gauge */
    uint64_t total_pages;             /* gauge */
    uint64_t free_pages;              /* gauge: on the buddy free lists */
    uint64_t percpu_pages;            /* gauge: on per-thread lists */
    uint64_t allocated_pages;         /* gauge: in runs handed out (slack included) */
    uint64_t slack_pages;             /* gauge */
    uint64_t mmap_pages_allocated;    /* gauge: MmapCopy, in pages */
    uint64_t free_blocks[NOMMU_MAX_ORDERS]; /* gauge: /proc/buddyinfo, orders 0..max_order */
    uint64_t bytes_zeroed;            /* counter */
    uint64_t bytes_known_zero;        /* counter: clearing skipped, already zero */
    uint64_t bytes_uninitialized;     /* counter */
    uint64_t pages_trimmed;           /* counter */
    uint64_t allocations;             /* counter */
    uint64_t frees;                   /* counter */
    uint64_t failed_allocations;      /* counter */
};

/* stats->size must be at least sizeof(struct nommu_stats) of this version (else EINVAL). */
int nommu_get_stats(nommu_system *system, struct nommu_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* NOMMU_H */
