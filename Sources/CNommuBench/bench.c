// SPDX-License-Identifier: Apache-2.0
#include "CNommuBench.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

// Keeps the compiler from dropping a pointer it can see is never used, without a store: a
// shared global written on every pair (as this was) bounces one cache line between the
// CPUs of the threaded series, and timed that instead of the allocator.
static inline void cnb_escape(void *q) { __asm__ volatile("" : : "r"(q) : "memory"); }

int cnb_malloc_pairs(nommu_process *p, size_t bytes, size_t count) {
    for (size_t i = 0; i < count; i++) {
        void *q = nommu_malloc(p, bytes);
        if (q == NULL) return errno ? errno : ENOMEM;
        cnb_escape(q);
        nommu_free(p, q);
    }
    return 0;
}

int cnb_alloc_pages_pairs(nommu_system *s, size_t count) {
    for (size_t i = 0; i < count; i++) {
        void *q = nommu_alloc_pages(s, 0, 0);
        if (q == NULL) return errno ? errno : ENOMEM;
        cnb_escape(q);
        if (nommu_free_pages(s, q, 0) != 0) return errno;
    }
    return 0;
}

int cnb_mmap_pairs(nommu_process *p, size_t bytes, size_t count) {
    for (size_t i = 0; i < count; i++) {
        void *q = nommu_mmap(p, NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_UNINITIALIZED,
                             -1, 0);
        if (q == MAP_FAILED) return errno;
        cnb_escape(q);
        if (nommu_munmap(p, q, bytes) != 0) return errno;
    }
    return 0;
}

int cnb_glibc_malloc_pairs(size_t bytes, size_t count) {
    for (size_t i = 0; i < count; i++) {
        void *q = malloc(bytes);
        if (q == NULL) return ENOMEM;
        cnb_escape(q);
        free(q);
    }
    return 0;
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

struct worker {
    nommu_process *p;
    size_t bytes, count;
    int *go;  // 0: wait, 1: start, -1: give up
    uint64_t start, end;
    int rc;
};

static void *work(void *arg) {
    struct worker *w = arg;
    int go;
    while ((go = __atomic_load_n(w->go, __ATOMIC_ACQUIRE)) == 0) sched_yield();
    if (go < 0) return NULL;
    w->start = now_ns();
    w->rc = w->p ? cnb_malloc_pairs(w->p, w->bytes, w->count) : cnb_glibc_malloc_pairs(w->bytes, w->count);
    w->end = now_ns();
    return NULL;
}

int cnb_malloc_pairs_threads(nommu_process *p, size_t bytes, size_t count, int threads, uint64_t *elapsed_ns) {
    if (threads < 1 || threads > 64 || elapsed_ns == NULL) return EINVAL;
    struct worker w[64];
    pthread_t t[64];
    int go = 0, made = 0, rc = 0;
    for (; made < threads; made++) {
        w[made] = (struct worker){.p = p, .bytes = bytes, .count = count / (size_t)threads, .go = &go};
        if (pthread_create(&t[made], NULL, work, &w[made]) != 0) break;
    }
    __atomic_store_n(&go, made == threads ? 1 : -1, __ATOMIC_RELEASE);
    uint64_t first = UINT64_MAX, last = 0;
    for (int i = 0; i < made; i++) {
        pthread_join(t[i], NULL);
        if (made < threads) continue;
        if (w[i].rc != 0 && rc == 0) rc = w[i].rc;
        if (w[i].start < first) first = w[i].start;
        if (w[i].end > last) last = w[i].end;
    }
    if (made < threads) return EAGAIN;
    *elapsed_ns = last - first;
    return rc;
}

// MARK: Baselines

int64_t cnb_bench_sink;

int cnb_host_mmap_touch(size_t bytes) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if ((void *)p == MAP_FAILED) return errno;
    for (size_t off = 0; off < bytes; off += page) p[off] = 1;
    if (munmap((void *)p, bytes) != 0) return errno;
    return 0;
}

int cnb_glibc_memalign_memset_free(size_t alignment, size_t bytes) {
    void *p = NULL;
    int rc = posix_memalign(&p, alignment, bytes);
    if (rc != 0) return rc;
    memset(p, 0, bytes);
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
    return 0;
}

int cnb_glibc_memalign_free_pairs(size_t alignment, size_t bytes, size_t count, size_t pad_bytes) {
    void *pad = pad_bytes ? malloc(pad_bytes) : NULL;
    if (pad_bytes && pad == NULL) return ENOMEM;
    __asm__ volatile("" : : "r"(pad) : "memory");
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        void *p = NULL;
        rc = posix_memalign(&p, alignment, bytes);
        if (rc != 0) break;
        __asm__ volatile("" : : "r"(p) : "memory");
        free(p);
    }
    free(pad);
    return rc;
}

int cnb_host_mmap_pairs(size_t bytes, size_t count) {
    for (size_t i = 0; i < count; i++) {
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return errno;
        __asm__ volatile("" : : "r"(p) : "memory");
        if (munmap(p, bytes) != 0) return errno;
    }
    return 0;
}

void cnb_memset(void *p, int value, size_t bytes) {
    memset(p, value, bytes);
    __asm__ volatile("" : : "r"(p) : "memory");
}

