/* SPDX-License-Identifier: Apache-2.0
 * nommu-abi-check: the C ABI against SPEC §12, as a C program sees it: return values, the
 * exact errno, and out-parameters left untouched on failure. Prints one line per failed
 * check and a closing "N passed, M failed"; exits 1 if anything failed. */
#include "nommu.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond, what)                                                                                              \
    do {                                                                                                               \
        if (cond) {                                                                                                    \
            passed++;                                                                                                  \
        } else {                                                                                                       \
            failed++;                                                                                                  \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, what);                                                      \
        }                                                                                                              \
    } while (0)

/* A call that must fail with `err`; errno is cleared first so a stale value cannot pass. */
#define EXPECT_ERRNO(call, failure, err, what)                                                                         \
    do {                                                                                                               \
        errno = 0;                                                                                                     \
        int ok_ = ((call) == (failure)) && errno == (err);                                                             \
        if (!ok_) printf("  (errno %d: %s)\n", errno, strerror(errno));                                                \
        CHECK(ok_, what);                                                                                              \
    } while (0)

#define PAGE 4096

int main(void) {
    struct nommu_config config;
    nommu_config_init(&config);
    CHECK(config.size == sizeof config && config.page_size == 4096 && config.max_order == 10, "config defaults");
    config.arena_bytes = 16u << 20;
    nommu_system *sys = nommu_system_create(&config);
    CHECK(sys != NULL, "system created");
    nommu_process *p = nommu_process_create(sys);
    CHECK(p != NULL && nommu_getpid(p) > 0, "process created");
    const int anon = MAP_PRIVATE | MAP_ANONYMOUS;
    const int rw = PROT_READ | PROT_WRITE;

    /* mmap validation, rows 1-11. */
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, rw, anon | MAP_FIXED, -1, 0), MAP_FAILED, EINVAL, "row 1 MAP_FIXED");
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, rw, MAP_ANONYMOUS, -1, 0), MAP_FAILED, EINVAL, "row 2 type 0");
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, rw, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1, 0), MAP_FAILED, EINVAL,
                 "row 3 MAP_SHARED_VALIDATE");
    EXPECT_ERRNO(nommu_mmap(p, NULL, 0, rw, anon, -1, 0), MAP_FAILED, EINVAL, "row 4 len 0");
    EXPECT_ERRNO(nommu_mmap(p, NULL, (size_t)-1, rw, anon, -1, 0), MAP_FAILED, ENOMEM, "row 5 len ULONG_MAX");
    EXPECT_ERRNO(nommu_mmap(p, NULL, (size_t)1 << 48, rw, anon, -1, 0), MAP_FAILED, ENOMEM, "row 6 > TASK_SIZE");
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_PRIVATE, 99, 100), MAP_FAILED, EINVAL,
                 "row 8 unaligned offset before the fd");
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_PRIVATE, 99, 0), MAP_FAILED, EBADF, "row 9 bad fd");
    void *a = nommu_mmap(p, NULL, PAGE, rw, anon, 12345, 0);
    CHECK(a != MAP_FAILED, "row 10 anonymous ignores the fd");
    CHECK(nommu_munmap(p, a, PAGE) == 0, "munmap");
    EXPECT_ERRNO(nommu_mmap(p, (void *)0x10000, PAGE, rw, anon, -1, 0), MAP_FAILED, EINVAL, "row 11 address hint");

    /* Anonymous memory, rows 24, 30-32, 78. */
    unsigned char *one = nommu_mmap(p, NULL, 1, rw, anon, -1, 0);
    CHECK(one != MAP_FAILED && ((uintptr_t)one % PAGE) == 0, "row 24 one byte, page aligned");
    int zero = 1;
    for (int i = 0; i < PAGE; i++) zero &= one[i] == 0;
    CHECK(zero, "row 24 zeroed");
    memset(one, 0xEE, PAGE);
    CHECK(nommu_munmap(p, one, 1) == 0, "row 51 unrounded length");
    unsigned char *again = nommu_mmap(p, NULL, PAGE, rw, anon | MAP_UNINITIALIZED, -1, 0);
    zero = 1;
    for (int i = 0; i < PAGE; i++) zero &= again[i] == 0;
    CHECK(again == one && zero, "row 31 MAP_UNINITIALIZED not allowed: cleared anyway");
    CHECK(nommu_munmap(p, again, PAGE) == 0, "munmap");
    EXPECT_ERRNO(nommu_mmap(p, NULL, (size_t)8 << 20, rw, anon, -1, 0), MAP_FAILED, ENOMEM, "row 30 above max order");
    EXPECT_ERRNO(nommu_mprotect(p, NULL, PAGE, PROT_READ), -1, ENOSYS, "row 78 mprotect");
    EXPECT_ERRNO(nommu_madvise(p, NULL, PAGE, 0), -1, ENOSYS, "row 78 madvise");
    EXPECT_ERRNO(nommu_mlock(p, NULL, PAGE), -1, ENOSYS, "row 78 mlock");
    EXPECT_ERRNO(nommu_munlock(p, NULL, PAGE), -1, ENOSYS, "row 78 munlock");
    EXPECT_ERRNO(nommu_msync(p, NULL, PAGE, 0), -1, ENOSYS, "row 78 msync");
    EXPECT_ERRNO(nommu_mincore(p, NULL, PAGE, NULL), -1, ENOSYS, "row 78 mincore");
    EXPECT_ERRNO(nommu_fork(p), -1, EINVAL, "fork without an MMU");

    /* munmap, rows 49-57. */
    char *m = nommu_mmap(p, NULL, 3 * PAGE, rw, anon, -1, 0);
    EXPECT_ERRNO(nommu_munmap(p, m, 0), -1, EINVAL, "row 49 len 0");
    EXPECT_ERRNO(nommu_munmap(p, (void *)0x1000, PAGE), -1, EINVAL, "row 50 no mapping");
    EXPECT_ERRNO(nommu_munmap(p, m, 4 * PAGE), -1, EINVAL, "row 56 past the end");
    EXPECT_ERRNO(nommu_munmap(p, m + 100, PAGE), -1, EINVAL, "row 57 unaligned");
    CHECK(nommu_munmap(p, m + PAGE, PAGE) == 0, "row 54 middle cut");
    CHECK(nommu_munmap(p, m, PAGE) == 0 && nommu_munmap(p, m + 2 * PAGE, PAGE) == 0, "the pieces unmap");

    /* mremap, rows 60-67. */
    char *r = nommu_mmap(p, NULL, 3 * PAGE, rw, anon, -1, 0);
    EXPECT_ERRNO(nommu_mremap(p, r, 0, PAGE, 0), MAP_FAILED, EINVAL, "row 60 old_len 0");
    EXPECT_ERRNO(nommu_mremap(p, r + 1, 3 * PAGE, PAGE, 0), MAP_FAILED, EINVAL, "row 61 unaligned");
    EXPECT_ERRNO(nommu_mremap(p, r, 3 * PAGE, PAGE, MREMAP_FIXED | MREMAP_MAYMOVE, r + PAGE), MAP_FAILED, EINVAL,
                 "row 62 MREMAP_FIXED elsewhere");
    CHECK(nommu_mremap(p, r, 3 * PAGE, 2 * PAGE, MREMAP_FIXED | MREMAP_MAYMOVE, r) == r, "row 62 same address");
    EXPECT_ERRNO(nommu_mremap(p, r, 3 * PAGE, PAGE, 0), MAP_FAILED, EINVAL, "row 63 wrong old size");
    EXPECT_ERRNO(nommu_mremap(p, r, 2 * PAGE, 4 * PAGE, MREMAP_MAYMOVE), MAP_FAILED, ENOMEM, "row 65 past the length");
    CHECK(nommu_mremap(p, r, 2 * PAGE, 3 * PAGE, 0) == r, "row 67 grow back");
    CHECK(nommu_munmap(p, r, 3 * PAGE) == 0, "munmap");

    /* Futex address checks, rows 73-74. */
    uint32_t *f = nommu_mmap(p, NULL, PAGE, rw, anon, -1, 0);
    *f = 5;
    EXPECT_ERRNO(nommu_futex(p, (uint32_t *)((char *)f + 2), FUTEX_WAKE, 1, NULL), -1, EINVAL, "row 73 misaligned");
    EXPECT_ERRNO(nommu_futex(p, (uint32_t *)0x1000, FUTEX_WAKE, 1, NULL), -1, EFAULT, "row 74 outside");
    EXPECT_ERRNO(nommu_futex(p, f, FUTEX_WAIT_PRIVATE, 6, NULL), -1, EAGAIN, "FUTEX_WAIT value differs");
    struct timespec t = {0, 1000000};
    EXPECT_ERRNO(nommu_futex(p, f, FUTEX_WAIT, 5, &t), -1, ETIMEDOUT, "FUTEX_WAIT times out");
    CHECK(nommu_futex(p, f, FUTEX_WAKE, 1, NULL) == 0, "FUTEX_WAKE with no waiter");
    CHECK(nommu_munmap(p, f, PAGE) == 0, "munmap");

    /* /proc through open/read, rows 29, 72, 79; out-parameters untouched on failure. */
    char buf[256];
    memset(buf, 'x', sizeof buf);
    int fd = nommu_open(p, "/proc/sys/vm/nr_trim_pages", O_RDWR);
    CHECK(fd >= 0, "open nr_trim_pages");
    EXPECT_ERRNO(nommu_write(p, fd, "-1", 2), -1, EINVAL, "row 29 negative nr_trim_pages");
    CHECK(nommu_read(p, fd, buf, sizeof buf) == 2 && memcmp(buf, "1\n", 2) == 0, "row 29 value unchanged");
    CHECK(nommu_close(p, fd) == 0, "close");
    memset(buf, 'x', sizeof buf);
    EXPECT_ERRNO(nommu_read(p, fd, buf, sizeof buf), -1, EBADF, "read of a closed fd");
    CHECK(buf[0] == 'x' && buf[255] == 'x', "read leaves the buffer untouched on failure");
    EXPECT_ERRNO(nommu_open(p, "/proc/sys/vm/max_map_count", O_RDONLY), -1, ENOENT, "row 79 no max_map_count");
    EXPECT_ERRNO(nommu_open(p, "/proc/meminfo", O_WRONLY), -1, EACCES, "meminfo is read-only");
    EXPECT_ERRNO(nommu_open(p, NULL, O_RDONLY), -1, EFAULT, "NULL path");
    char *k = nommu_mmap(p, NULL, 3 * PAGE, rw, anon, -1, 0);
    fd = nommu_open(p, "/proc/meminfo", O_RDONLY);
    ssize_t n = nommu_read(p, fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    CHECK(strstr(buf, "MmapCopy:") != NULL, "row 72 MmapCopy in /proc/meminfo");
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0), MAP_FAILED, ENODEV, "procfs has no mmap");
    nommu_close(p, fd);
    nommu_munmap(p, k, 3 * PAGE);

    /* Page allocator and statistics. */
    struct nommu_stats st;
    memset(&st, 0xAB, sizeof st);
    st.size = 8;
    EXPECT_ERRNO(nommu_get_stats(sys, &st), -1, EINVAL, "stats size too small");
    CHECK(st.version == 0xABABABABu, "stats untouched on failure");
    void *pg = nommu_alloc_pages(sys, 0, NOMMU_GFP_ZERO);
    CHECK(pg != NULL, "alloc_pages");
    EXPECT_ERRNO(nommu_free_pages(sys, pg, 1), -1, EINVAL, "free_pages wrong order");
    EXPECT_ERRNO(nommu_free_pages(sys, (char *)pg + 1, 0), -1, EINVAL, "free_pages not a page start");
    EXPECT_ERRNO(nommu_free_pages(sys, buf, 0), -1, EINVAL, "free_pages foreign pointer");
    CHECK(nommu_free_pages(sys, pg, 0) == 0, "free_pages");
    EXPECT_ERRNO(nommu_free_pages(sys, pg, 0), -1, EINVAL, "double free");
    EXPECT_ERRNO(nommu_alloc_pages(sys, 11, 0), NULL, ENOMEM, "order above the maximum");
    void *ex = nommu_alloc_pages_exact(sys, 3 * PAGE, 0);
    CHECK(ex != NULL, "alloc_pages_exact");
    EXPECT_ERRNO(nommu_free_pages_exact(sys, ex, 4 * PAGE), -1, EINVAL, "free_pages_exact wrong size");
    CHECK(nommu_free_pages_exact(sys, ex, 3 * PAGE - 5) == 0, "free_pages_exact");
    st.size = sizeof st;
    CHECK(nommu_get_stats(sys, &st) == 0 && st.version == NOMMU_STATS_VERSION, "get_stats");
    CHECK(st.allocated_pages == 0 && st.mmap_pages_allocated == 0 && st.total_pages == 4096, "every page back");
    CHECK(st.pages_trimmed >= 1 && st.bytes_zeroed > 0, "counters moved");

    /* NULL handles. */
    EXPECT_ERRNO(nommu_mmap(NULL, NULL, PAGE, rw, anon, -1, 0), MAP_FAILED, EINVAL, "NULL process");
    EXPECT_ERRNO(nommu_process_create(NULL), NULL, EINVAL, "NULL system");
    EXPECT_ERRNO(nommu_get_stats(NULL, &st), -1, EINVAL, "NULL system stats");

    /* vfork shares; exit releases. */
    nommu_process *c = nommu_vfork(p);
    CHECK(c != NULL && nommu_getpid(c) != nommu_getpid(p), "vfork");
    void *shared = nommu_mmap(c, NULL, PAGE, rw, anon, -1, 0);
    CHECK(nommu_munmap(p, shared, PAGE) == 0, "the parent unmaps the child's mapping (one address space)");
    nommu_process_exit(c);
    nommu_process_exit(p);
    nommu_system_destroy(sys);

    printf("abi-check: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
