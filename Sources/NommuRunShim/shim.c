/* SPDX-License-Identifier: Apache-2.0 */
#include "nommu_run_shim.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

static __thread int inside __attribute__((tls_model("initial-exec")));

/* Set by this library's constructor, which runs after those of its dependencies (the Swift
 * runtime among them): until then every request is served from the bootstrap area. */
static int ready;
__attribute__((constructor)) static void nommu_run_ready(void) { __atomic_store_n(&ready, 1, __ATOMIC_RELEASE); }
#define EARLY (inside || !__atomic_load_n(&ready, __ATOMIC_ACQUIRE))

/* The bootstrap area: a bump allocator over static memory (zero, and untouched until used).
 * Each block has a 16-byte header holding its size; blocks are never reused. */
static _Alignas(4096) char bootstrap[256u << 20];
static size_t bootstrap_top;
static pthread_mutex_t bootstrap_lock = PTHREAD_MUTEX_INITIALIZER;

size_t nommu_run_bootstrap_used(void) { return __atomic_load_n(&bootstrap_top, __ATOMIC_RELAXED); }

static int in_bootstrap(const void *p) {
    return (const char *)p >= bootstrap && (const char *)p < bootstrap + sizeof bootstrap;
}

static void *bootstrap_alloc(size_t size, size_t alignment) {
    if (alignment < 16) alignment = 16;
    if (size > sizeof bootstrap) return NULL;
    pthread_mutex_lock(&bootstrap_lock);
    size_t at = (bootstrap_top + 16 + alignment - 1) & ~(alignment - 1);
    void *p = NULL;
    if (at + size <= sizeof bootstrap) {
        ((size_t *)(bootstrap + at))[-1] = size;
        bootstrap_top = at + size;
        p = bootstrap + at;
    }
    pthread_mutex_unlock(&bootstrap_lock);
    return p;
}

static size_t bootstrap_size(const void *p) { return ((const size_t *)p)[-1]; }

void *malloc(size_t size) {
    if (EARLY) return bootstrap_alloc(size, 16);
    inside = 1;
    void *p = nommu_run_malloc(size);
    inside = 0;
    if (!p) errno = ENOMEM;
    return p;
}

void *calloc(size_t count, size_t size) {
    if (EARLY) {
        size_t total;
        if (__builtin_mul_overflow(count, size, &total)) return NULL;
        return bootstrap_alloc(total, 16); /* static memory, never reused: zero */
    }
    inside = 1;
    void *p = nommu_run_calloc(count, size);
    inside = 0;
    if (!p) errno = ENOMEM;
    return p;
}

void free(void *p) {
    if (!p || in_bootstrap(p)) return;
    if (EARLY) return; /* the model frees only its own blocks, and never re-entrantly */
    inside = 1;
    (void)nommu_run_free(p);
    inside = 0;
}

void *realloc(void *p, size_t size) {
    if (p && in_bootstrap(p)) {
        void *q = EARLY ? bootstrap_alloc(size, 16) : malloc(size);
        if (q) memcpy(q, p, bootstrap_size(p) < size ? bootstrap_size(p) : size);
        return q;
    }
    if (EARLY) {
        /* The model's own buffers come from the bootstrap area; anything else is not ours. */
        return p ? NULL : bootstrap_alloc(size, 16);
    }
    inside = 1;
    void *q = nommu_run_realloc(p, size);
    inside = 0;
    if (!q && size) errno = ENOMEM;
    return q;
}

static void *aligned(size_t alignment, size_t size) {
    if (EARLY) return bootstrap_alloc(size, alignment);
    inside = 1;
    void *p = nommu_run_memalign(alignment, size);
    inside = 0;
    return p;
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1))) return EINVAL;
    void *p = aligned(alignment, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t alignment, size_t size) {
    if (alignment == 0 || (alignment & (alignment - 1))) {
        errno = EINVAL;
        return NULL;
    }
    void *p = aligned(alignment < sizeof(void *) ? sizeof(void *) : alignment, size);
    if (!p) errno = ENOMEM;
    return p;
}

void *memalign(size_t alignment, size_t size) { return aligned_alloc(alignment, size); }
void *valloc(size_t size) { return aligned_alloc(4096, size); }
void *pvalloc(size_t size) { return aligned_alloc(4096, (size + 4095) & ~(size_t)4095); }

size_t malloc_usable_size(void *p) {
    if (!p) return 0;
    if (in_bootstrap(p)) return bootstrap_size(p);
    if (EARLY) return 0;
    inside = 1;
    size_t n = nommu_run_usable_size(p);
    inside = 0;
    return n == (size_t)-1 ? 0 : n;
}

__attribute__((destructor)) static void nommu_run_at_exit(void) {
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) return;
    inside = 1;
    nommu_run_report();
    inside = 0;
}
