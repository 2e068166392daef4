// SPDX-License-Identifier: Apache-2.0
#include "CShims.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <linux/mman.h>
#include <linux/futex.h>

_Static_assert(CSHIM_MREMAP_MAYMOVE == MREMAP_MAYMOVE, "MREMAP_MAYMOVE");
_Static_assert(CSHIM_MREMAP_FIXED == MREMAP_FIXED, "MREMAP_FIXED");
_Static_assert(CSHIM_MREMAP_DONTUNMAP == MREMAP_DONTUNMAP, "MREMAP_DONTUNMAP");
_Static_assert(CSHIM_MAP_UNINITIALIZED == MAP_UNINITIALIZED, "MAP_UNINITIALIZED");
_Static_assert(CSHIM_FUTEX_WAIT == FUTEX_WAIT, "FUTEX_WAIT");
_Static_assert(CSHIM_FUTEX_WAKE == FUTEX_WAKE, "FUTEX_WAKE");
_Static_assert(CSHIM_FUTEX_PRIVATE_FLAG == FUTEX_PRIVATE_FLAG, "FUTEX_PRIVATE_FLAG");
_Static_assert(CSHIM_FUTEX_CLOCK_REALTIME == FUTEX_CLOCK_REALTIME, "FUTEX_CLOCK_REALTIME");

size_t cshim_host_page_size(void) {
    long v = sysconf(_SC_PAGESIZE);
    return v > 0 ? (size_t)v : 4096;
}

static int is_pow2(size_t v) { return v != 0 && (v & (v - 1)) == 0; }

int cshim_arena_acquire(size_t bytes, size_t alignment, int source, int huge_pages,
                        struct cshim_arena *out) {
    size_t page = cshim_host_page_size();
    if (out == NULL || bytes == 0 || !is_pow2(alignment) || alignment % page != 0 ||
        bytes % page != 0) {
        return EINVAL;
    }
    struct cshim_arena a;
    memset(&a, 0, sizeof a);
    a.bytes = bytes;
    a.source = source;
    if (source == CSHIM_ARENA_MMAP) {
        // Reserve enough to align, then give back the ends (the usual trick).
        if (bytes > SIZE_MAX - alignment) return ENOMEM;
        size_t reserve = bytes + (alignment > page ? alignment - page : 0);
        void *p = mmap(NULL, reserve, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) return errno;
        uintptr_t start = (uintptr_t)p;
        uintptr_t aligned = (start + alignment - 1) & ~(uintptr_t)(alignment - 1);
        size_t head = aligned - start;
        size_t tail = reserve - head - bytes;
        if (head != 0 && munmap(p, head) != 0) {
            int e = errno;
            munmap(p, reserve);
            return e;
        }
        if (tail != 0 && munmap((void *)(aligned + bytes), tail) != 0) {
            int e = errno;
            munmap((void *)aligned, bytes + tail);
            return e;
        }
        a.base = (void *)aligned;
        a.reservation = (void *)aligned;
        a.reserved = bytes;
        a.is_zero = 1;
#ifdef MADV_HUGEPAGE
        if (huge_pages) a.huge_pages = madvise(a.base, bytes, MADV_HUGEPAGE) == 0;
#endif
    } else if (source == CSHIM_ARENA_POSIX_MEMALIGN) {
        void *p = NULL;
        int rc = posix_memalign(&p, alignment, bytes);
        if (rc != 0) return rc;
        a.base = p;
        a.reservation = p;
        a.reserved = 0;
        a.is_zero = 0;
    } else {
        return EINVAL;
    }
    *out = a;
    return 0;
}

int cshim_arena_release(struct cshim_arena *arena) {
    if (arena == NULL || arena->reservation == NULL) return EINVAL;
    int rc = 0;
    if (arena->source == CSHIM_ARENA_MMAP) {
        if (munmap(arena->reservation, arena->reserved) != 0) rc = errno;
    } else {
        free(arena->reservation);
    }
    arena->reservation = NULL;
    arena->base = NULL;
    return rc;
}

uint64_t cshim_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* MARK: Copying from a caller's buffer */

static volatile int vm_readv_refused;

size_t cshim_copy_readable(void *dst, const void *src, size_t bytes) {
    if (vm_readv_refused) {
        memcpy(dst, src, bytes);
        return bytes;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE), done = 0;
    pid_t self = getpid();
    while (done < bytes) {
        /* One element per source page: a transfer stops whole elements short of a fault. */
        struct iovec remote[64], local;
        int k = 0;
        size_t batch = 0;
        while (k < 64 && done + batch < bytes) {
            uintptr_t at = (uintptr_t)src + done + batch;
            size_t len = page - (at & (page - 1));
            if (len > bytes - done - batch) len = bytes - done - batch;
            remote[k].iov_base = (void *)at;
            remote[k].iov_len = len;
            k++;
            batch += len;
        }
        local.iov_base = (char *)dst + done;
        local.iov_len = batch;
        ssize_t n = process_vm_readv(self, &local, 1, remote, (unsigned long)k, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (done == 0 && (errno == ENOSYS || errno == EPERM)) {
                vm_readv_refused = 1;
                memcpy(dst, src, bytes);
                return bytes;
            }
            break;
        }
        done += (size_t)n;
        if ((size_t)n < batch) break;
    }
    return done;
}
