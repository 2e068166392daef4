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
#include <sys/ipc.h>
#include <sys/shm.h>

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
    const char *host_dir;    /* backing directory of /data; NULL = a fresh temporary one, removed at destroy */
    size_t flash_bytes;      /* the flash window: /dev/mtd0, holding the /rom image (default 16 MiB) */
    size_t ramdisk_bytes;    /* /dev/ram0, contiguous, from the arena at first open (default 256 KiB) */
    size_t framebuffer_bytes; /* /dev/fb0, from the arena while open or mapped (default 160 KiB) */
    int reference;           /* enum nommu_reference (default NOMMU_REFERENCE_DOCUMENT); a caller
                                compiled before it (a smaller size) gets the default */
};

/* Whose answers the model gives where the kernel document and a real kernel differ
 * (Oracle/divergences.md). */
enum nommu_reference {
    NOMMU_REFERENCE_DOCUMENT = 0,  /* the document, read with v6.3+'s code */
    NOMMU_REFERENCE_LINUX_6_1 = 1, /* Linux 6.1 as the kernel oracle ran it: address hints ignored,
                                      private /dev/zero EINVAL, SysV shmat ENODEV, `s` in maps for
                                      read-only private file mappings, futex wakes unchecked */
};

/* Fills the defaults. */
void nommu_config_init(struct nommu_config *config);
/* NULL config = defaults. NULL and errno (EINVAL, ENOMEM, ...) on failure. */
nommu_system *nommu_system_create(const struct nommu_config *config);
/* Releases the system, its processes (their handles become invalid, whether or not
 * nommu_process_exit was called) and its arena, /data directory included. */
void nommu_system_destroy(nommu_system *system);

/* ---- Processes ---- */

nommu_process *nommu_process_create(nommu_system *system);
/* A child sharing the parent's address space (clone(CLONE_VM)). NULL and errno on failure. */
nommu_process *nommu_vfork(nommu_process *parent);
/* Always -1: EINVAL, as sys_fork on a kernel without an MMU. */
int nommu_fork(nommu_process *process);
int nommu_getpid(nommu_process *process);
/* The process's uid: 0 (root) at creation, inherited by vfork. setuid: root may become any
 * user, for good; another user only itself (EPERM); -1 is EINVAL. The uid decides who may
 * read /proc/<pid>/maps (the same address space, root, or the same uid while the target has
 * not changed its uid since its last exec; else EACCES) and
 * whether a read-only /proc file opens for writing (root only). */
uid_t nommu_getuid(nommu_process *process);
int nommu_setuid(nommu_process *process, uid_t uid);
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

/* ---- Files: a per-process descriptor table over the default tree (see the README) ----
 *  /dev/shm, /tmp  tmpfs (ramfs): truncate-then-mmap gives contiguous pages for MAP_SHARED
 *  /rom            romfs on the flash (XIP: read-only private mappings may be unaligned)
 *  /data           a disk filesystem over host_dir: private copies only
 *  /dev            fb0, mtd0, ram0, zero, ttyS0
 *  /proc           maps, self/maps, <pid>/maps, <pid>/status, meminfo, buddyinfo, sys/vm/nr_trim_pages
 * vfork children share the table; exit closes it. */

/* With O_CREAT, a third argument: mode_t mode (permissions are not modelled). */
int nommu_open(nommu_process *process, const char *path, int flags, ...);
int nommu_close(nommu_process *process, int fd);
ssize_t nommu_read(nommu_process *process, int fd, void *buf, size_t count);
ssize_t nommu_write(nommu_process *process, int fd, const void *buf, size_t count);
ssize_t nommu_pread(nommu_process *process, int fd, void *buf, size_t count, off_t offset);
ssize_t nommu_pwrite(nommu_process *process, int fd, const void *buf, size_t count, off_t offset);
int nommu_ftruncate(nommu_process *process, int fd, off_t length);
int nommu_unlink(nommu_process *process, const char *path);
int nommu_pipe(nommu_process *process, int fds[2]);
int nommu_mkfifo(nommu_process *process, const char *path, mode_t mode);
int nommu_socket(nommu_process *process, int domain, int type, int protocol);
/* chattr +a / -a (the S_APPEND inode flag) on a tmpfs or /data file. */
int nommu_set_append_only(nommu_process *process, int fd, int on);

/* Puts a file into the romfs image of /rom (only before its first nommu_open): -1 and
 * EEXIST, EBUSY (opened, or the flash is busy), ENOSPC (image full), EINVAL (not /rom). */
int nommu_romfs_add(nommu_system *system, const char *path, const void *data, size_t len);

enum nommu_flash_mode {
    NOMMU_FLASH_READ = 0,    /* the window shows the data */
    NOMMU_FLASH_PROGRAM = 1, /* the window shows the status word 0x0080 */
    NOMMU_FLASH_ERASE = 2,
};
/* device: "/dev/mtd0". While not in read mode, direct mappings see the status pattern,
 * new direct mappings are refused (private ones get a copy of the real data). */
int nommu_flash_set_mode(nommu_system *system, const char *device, int mode);

/* ---- Shared memory ---- */

/* SysV: pages are allocated at shmget; every attacher gets the same address;
 * a non-zero shmaddr is EINVAL; shmdt needs an attach's exact start. */
int nommu_shmget(nommu_process *process, key_t key, size_t size, int shmflg);
void *nommu_shmat(nommu_process *process, int shmid, const void *shmaddr, int shmflg);
int nommu_shmdt(nommu_process *process, const void *shmaddr);
/* IPC_RMID and IPC_STAT. */
int nommu_shmctl(nommu_process *process, int shmid, int cmd, struct shmid_ds *buf);
/* POSIX, on /dev/shm. */
int nommu_shm_open(nommu_process *process, const char *name, int oflag, mode_t mode);
int nommu_shm_unlink(nommu_process *process, const char *name);

/* ---- Programs ---- */

#define NOMMU_IMAGE_MAX_SEGMENTS 16

/* One loaded PT_LOAD segment. */
struct nommu_image_segment {
    void *address; /* where its p_vaddr landed */
    size_t memsz;
    size_t filesz;
    int prot;      /* PROT_* */
    int in_place;  /* mapped in place rather than copied */
};

/* Where nommu_exec_elf put a program. */
struct nommu_image {
    size_t size;          /* in: sizeof(struct nommu_image) */
    void *entry;          /* the entry point, relocated */
    void *text;           /* the first executable segment (its p_vaddr's byte) */
    size_t text_len;      /* its p_memsz */
    int text_in_place;    /* 1: executes in place (romfs) or overlays the page cache; 0: a copy */
    void *data;           /* the first writable segment */
    size_t data_len;      /* its p_filesz */
    void *bss;            /* data + p_filesz: cleared */
    size_t bss_len;       /* p_memsz - p_filesz */
    void *start_brk;      /* the brk+stack region (mapped MAP_UNINITIALIZED) */
    void *end_brk;        /* brk may move within [start_brk, end_brk] */
    void *start_stack;    /* the top of the region; /proc/<pid>/maps labels it [stack] */
    size_t stack_size;    /* PT_GNU_STACK's size, else 128 KiB */
    unsigned nsegments;   /* PT_LOAD segments (the first NOMMU_IMAGE_MAX_SEGMENTS are listed) */
    struct nommu_image_segment segments[NOMMU_IMAGE_MAX_SEGMENTS];
};

/* execve under ELF-FDPIC rules: a fresh address space (a vfork child leaves its parent's),
 * each PT_LOAD segment mmapped from the file, then the brk+stack region. out may be NULL;
 * when not, out->size must be at least sizeof(struct nommu_image) (else EINVAL). ENOEXEC for
 * a malformed file, EACCES for a non-regular file or a noexec mount; nothing changes on failure. */
int nommu_exec_elf(nommu_process *process, const char *path, struct nommu_image *out);
/* Moves the break within [start_brk, end_brk]; any other address (NULL included) leaves it.
 * Returns the break, as the brk system call does. */
void *nommu_brk(nommu_process *process, void *new_brk);

/* ---- Malloc layer: uClibc-shaped mallocs over the process's nommu_mmap ---- */

enum nommu_malloc_policy {
    NOMMU_MALLOC_HEAP = 0,   /* areas of extend_size, free lists with coalescing (default) */
    NOMMU_MALLOC_SIMPLE = 1, /* malloc-simple: one mapping per block */
};

struct nommu_malloc_config {
    size_t size;            /* sizeof(struct nommu_malloc_config); set by nommu_malloc_config_init */
    int policy;             /* enum nommu_malloc_policy */
    int uninitialized;      /* pass MAP_UNINITIALIZED for malloc/realloc/posix_memalign (never calloc) */
    size_t extend_size;     /* heap: bytes mapped per new area (default 64 KiB) */
    size_t mmap_threshold;  /* heap: blocks this big get their own mapping (default 128 KiB) */
    size_t unmap_threshold; /* heap: wholly free areas this big go back, one kept (default 64 KiB) */
    size_t heaps;           /* heaps threads are spread over, 1..64 (default 8, glibc's arenas; 1: one
                             * heap and one lock, uClibc's). A config without this field (an older
                             * size) gets the default. */
};

void nommu_malloc_config_init(struct nommu_malloc_config *config);
/* Chooses the process's malloc before its first allocation (EBUSY after; EINVAL for bad values). */
int nommu_malloc_configure(nommu_process *process, const struct nommu_malloc_config *config);
/* The usual contracts: 16-byte alignment, malloc(0) unique, free(NULL) a no-op, realloc(NULL, n)
 * = malloc, realloc(p, 0) frees and returns NULL, calloc overflow -> ENOMEM, ENOMEM when it
 * does not fit. free of a pointer that is not a live block is ignored with errno EINVAL. */
void *nommu_malloc(nommu_process *process, size_t size);
void *nommu_calloc(nommu_process *process, size_t count, size_t size);
void *nommu_realloc(nommu_process *process, void *ptr, size_t size);
void nommu_free(nommu_process *process, void *ptr);
/* 0, or EINVAL (alignment) / ENOMEM, as posix_memalign returns them; *out untouched on failure. */
int nommu_posix_memalign(nommu_process *process, void **out, size_t alignment, size_t size);
size_t nommu_malloc_usable_size(nommu_process *process, void *ptr);

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
