/* SPDX-License-Identifier: Apache-2.0
 *
 * libnommu-record: an LD_PRELOAD library that writes a program's heap calls as a
 * nommu-trace v1 file (NOMMU_TRACE_FILE, default nommu.trace). IDs are the block addresses
 * (unique among live blocks); the real allocator is the next one (RTLD_NEXT). Until dlsym
 * has found it (dlsym itself may call calloc), requests are served from a static bootstrap
 * area, which is never given back. Lines are written through a per-process buffer under a
 * mutex; the recorder never calls malloc itself. */

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *(*real_malloc)(size_t);
static void (*real_free)(void *);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);

static _Alignas(16) char bootstrap[64 << 10];
static size_t bootstrap_used;
static int resolving;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int out_fd = -1;
static char buffer[1 << 16];
static size_t buffered;
static __thread int inside; /* the recorder's own calls are not recorded */

static int in_bootstrap(const void *p) {
    return (const char *)p >= bootstrap && (const char *)p < bootstrap + sizeof bootstrap;
}

static void *bootstrap_alloc(size_t size) {
    size_t at = (bootstrap_used + 15) & ~(size_t)15;
    if (at + size > sizeof bootstrap) return NULL;
    bootstrap_used = at + size;
    return bootstrap + at;
}

static void resolve(void) {
    if (real_malloc || resolving) return;
    resolving = 1;
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_free = dlsym(RTLD_NEXT, "free");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
    resolving = 0;
}

static void flush_locked(void) {
    size_t done = 0;
    while (done < buffered) {
        ssize_t n = write(out_fd, buffer + done, buffered - done);
        if (n <= 0) break;
        done += (size_t)n;
    }
    buffered = 0;
}

static void at_exit_flush(void) {
    pthread_mutex_lock(&lock);
    if (out_fd >= 0) flush_locked();
    pthread_mutex_unlock(&lock);
}

static char *put_number(char *p, uint64_t v) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = digits[--n];
    return p;
}

/* Appends one event (op, then up to three numbers); the lock is held. */
static void emit_locked(char op, uint64_t a, uint64_t b, uint64_t c, int count) {
    if (out_fd < 0) {
        const char *path = getenv("NOMMU_TRACE_FILE");
        out_fd = open(path ? path : "nommu.trace", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out_fd >= 0) {
            static const char header[] = "# nommu-trace v1\n";
            memcpy(buffer, header, sizeof header - 1);
            buffered = sizeof header - 1;
            atexit(at_exit_flush);
        }
    }
    if (out_fd >= 0) {
        if (buffered + 80 > sizeof buffer) flush_locked();
        char *p = buffer + buffered;
        *p++ = op;
        uint64_t v[3] = {a, b, c};
        for (int i = 0; i < count; i++) {
            *p++ = ' ';
            p = put_number(p, v[i]);
        }
        *p++ = '\n';
        buffered = (size_t)(p - buffer);
    }
}

static void emit(char op, uint64_t a, uint64_t b, uint64_t c, int count) {
    if (inside) return;
    inside = 1;
    pthread_mutex_lock(&lock);
    emit_locked(op, a, b, c, count);
    pthread_mutex_unlock(&lock);
    inside = 0;
}

#define ID(p) ((uint64_t)(uintptr_t)(p))

void *malloc(size_t size) {
    resolve();
    if (!real_malloc) return bootstrap_alloc(size);
    void *p = real_malloc(size);
    if (p) emit('m', ID(p), size, 0, 2);
    return p;
}

void *calloc(size_t count, size_t size) {
    resolve();
    if (!real_calloc) return bootstrap_alloc(count * size); /* static memory is zero */
    void *p = real_calloc(count, size);
    if (p) emit('c', ID(p), count * size, 0, 2);
    return p;
}

void free(void *p) {
    if (!p || in_bootstrap(p)) return;
    resolve();
    emit('f', ID(p), 0, 0, 1);
    real_free(p);
}

void *realloc(void *old, size_t size) {
    resolve();
    if (old && in_bootstrap(old)) {
        void *p = malloc(size);
        if (p) memcpy(p, old, size);
        return p;
    }
    if (!real_realloc) return bootstrap_alloc(size);
    if (inside) return real_realloc(old, size);
    /* Under the lock, so that no other thread records a malloc of the old address (which
     * realloc may free) before this realloc's line. */
    inside = 1;
    pthread_mutex_lock(&lock);
    void *p = real_realloc(old, size);
    if (old && size == 0 && !p) {
        emit_locked('f', ID(old), 0, 0, 1);
    } else if (p) {
        emit_locked('r', ID(old), ID(p), size, 3);
    }
    pthread_mutex_unlock(&lock);
    inside = 0;
    return p;
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    resolve();
    int rc = real_posix_memalign(out, alignment, size);
    if (rc == 0) emit('p', ID(*out), alignment, size, 3);
    return rc;
}

void *aligned_alloc(size_t alignment, size_t size) {
    resolve();
    void *p = real_aligned_alloc(alignment, size);
    if (p) emit('p', ID(p), alignment, size, 3);
    return p;
}

void *memalign(size_t alignment, size_t size) {
    resolve();
    void *p = real_memalign(alignment, size);
    if (p) emit('p', ID(p), alignment, size, 3);
    return p;
}
