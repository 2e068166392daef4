/* SPDX-License-Identifier: Apache-2.0
 *
 * libnommu-record: an LD_PRELOAD library that writes a program's heap calls as nommu-trace
 * v1 files, one per process image. IDs are the block addresses (unique among live blocks);
 * the real allocator is the next one (RTLD_NEXT). Until dlsym has found it (dlsym itself may
 * call calloc), requests are served from a static bootstrap area, which is never given back.
 * Lines are written through a per-process buffer under a mutex; the recorder never calls
 * malloc itself.
 *
 * Where the traces go: NOMMU_TRACE_FILE is a pattern (default nommu.trace) in which %p is
 * the pid, %e the program's name and %% a percent sign. A name already taken (by another
 * process, or by the image this one exec'd from) is never overwritten: .2, .3, … is added
 * (before a .trace ending).
 * An image opens its trace when it starts, so every program has one, if only the header;
 * a forked child (which inherits its parent's blocks) opens one at its first call. When
 * NOMMU_TRACE_INDEX names a file, each trace opened is listed there ("open", pid, ppid,
 * name, path; tab-separated) and each trace that could not be written ("fail", pid, errno,
 * path), so that `nommu record` knows every trace of a process tree.
 *
 * A trace is flushed when its image ends: at exit (atexit and the library's destructor),
 * _exit and _Exit, before an exec, and on SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT (where
 * the program has not taken them). A fork waits for the buffer's lock, and the child starts
 * with an empty buffer of its own (its parent writes what was buffered). */

#include "nommu_preload.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
static volatile int open_failed; /* tried and failed: not tried again by this image */
static volatile int write_failed;
static char out_path[4096];
static char buffer[1 << 16];
static size_t buffered;
static __thread int inside; /* the recorder's own calls are not recorded */

static int in_bootstrap(const void *p) {
    return (const char *)p >= bootstrap && (const char *)p < bootstrap + sizeof bootstrap;
}

static void *bootstrap_alloc(size_t size) {
    size_t at = (bootstrap_used + 15) & ~(size_t)15;
    if (at > sizeof bootstrap || size > sizeof bootstrap - at) return NULL;
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

/* Appends text to a fixed buffer; returns the new end (never past `end`). */
static char *put_text(char *p, char *end, const char *s) {
    while (*s && p < end) *p++ = *s++;
    return p;
}

static void index_line(const char *kind, long a, long b, const char *name);
static char image_name[64]; /* this image's name, as its trace says it */

/* A line on stderr, "nommu record: WHAT PATH: REASON", written without stdio (which may
 * allocate, and would be recorded). */
static void complain(const char *what, const char *path, int error) {
    char line[4096 + 256], *p = line, *end = line + sizeof line - 2;
    p = put_text(p, end, "nommu record: ");
    p = put_text(p, end, what);
    p = put_text(p, end, path);
    p = put_text(p, end, ": ");
    p = put_text(p, end, strerror(error));
    *p++ = '\n';
    ssize_t n = write(2, line, (size_t)(p - line));
    (void)n;
}

/* The trace's file as opened, to tell it from a descriptor the program has since closed
 * and reused (programs close every descriptor before an exec, and daemons at start). */
static dev_t out_dev;
static ino_t out_ino;

/* Moves fd to a high number (away from those a program opens next) and notes its file. */
static int settle(int fd) {
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 700);
    if (high >= 0) {
        close(fd);
        fd = high;
    }
    struct stat st;
    if (fstat(fd, &st) == 0) {
        out_dev = st.st_dev;
        out_ino = st.st_ino;
    }
    return fd;
}

/* out_fd, opened again by name when the program has closed it or put another file there. */
static int trace_fd(void) {
    struct stat st;
    if (out_fd >= 0 && fstat(out_fd, &st) == 0 && st.st_dev == out_dev && st.st_ino == out_ino) return out_fd;
    int fd = open(out_path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) return -1;
    return out_fd = settle(fd);
}

static void write_all(const char *data, size_t size) {
    int fd = trace_fd();
    size_t done = 0;
    while (fd >= 0 && done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += (size_t)n;
    }
    if (done < size && !write_failed) {
        write_failed = errno ? errno : EIO;
        complain("writing ", out_path, write_failed);
        index_line("fail", getpid(), write_failed, image_name);
    }
}

/* Lists an event of this image in the index, when there is one. */
static void index_line(const char *kind, long a, long b, const char *name) {
    const char *index = getenv("NOMMU_TRACE_INDEX");
    if (!index) return;
    char line[4096 + 256], *p = line, *end = line + sizeof line - 1;
    p = put_text(p, end, kind);
    *p++ = '\t';
    p = put_number(p, (uint64_t)a);
    *p++ = '\t';
    p = put_number(p, (uint64_t)b);
    *p++ = '\t';
    p = put_text(p, end - 1, name);
    *p++ = '\t';
    p = put_text(p, end - 1, out_path);
    *p++ = '\n';
    int fd = open(index, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;
    ssize_t n = write(fd, line, (size_t)(p - line));
    (void)n;
    close(fd);
}

static void flush_locked(void) {
    if (out_fd >= 0 && buffered) write_all(buffer, buffered);
    buffered = 0;
}

static void at_exit_flush(void) {
    /* A vfork child shares the parent's buffer (and may have closed its descriptors): the
     * parent writes it. */
    if (nommu_preload_in_vfork_child()) return;
    int was = inside;
    inside = 1;
    pthread_mutex_lock(&lock);
    flush_locked();
    pthread_mutex_unlock(&lock);
    inside = was;
}

/* The pattern with %p, %e and %% replaced. */
static void expand(const char *pattern, const char *name, char *out, size_t size) {
    char *p = out, *end = out + size - 16;
    for (const char *s = pattern; *s && p < end; s++) {
        if (s[0] == '%' && s[1] == 'p') {
            p = put_number(p, (uint64_t)getpid());
            s++;
        } else if (s[0] == '%' && s[1] == 'e') {
            p = put_text(p, end, name);
            s++;
        } else if (s[0] == '%' && s[1] == '%') {
            *p++ = '%';
            s++;
        } else {
            *p++ = *s;
        }
    }
    *p = 0;
}

/* Opens this image's trace (the lock is held), trying name, name.2, name.3, …, and puts
 * the header in the buffer. */
static void open_trace_locked(void) {
    if (out_fd >= 0 || open_failed) return;
    static int registered;
    const char *pattern = getenv("NOMMU_TRACE_FILE");
    char *name = image_name;
    nommu_preload_comm(image_name, sizeof image_name);
    char base[sizeof out_path - 16];
    expand(pattern && *pattern ? pattern : "nommu.trace", name, base, sizeof base);
    int fd = -1;
    /* name, then name.2, name.3, … (before a .trace ending, so the name keeps it) */
    size_t stem = strlen(base);
    if (stem > 6 && strcmp(base + stem - 6, ".trace") == 0) stem -= 6;
    for (unsigned n = 1; n < 10000; n++) {
        if (n == 1) {
            snprintf(out_path, sizeof out_path, "%s", base);
        } else {
            snprintf(out_path, sizeof out_path, "%.*s.%u%s", (int)stem, base, n, base + stem);
        }
        fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST) break;
    }
    if (fd < 0) {
        int e = errno;
        open_failed = 1;
        snprintf(out_path, sizeof out_path, "%s", base);
        complain("cannot write ", base, e);
        index_line("fail", getpid(), e, name);
        return;
    }
    out_fd = settle(fd);
    /* The header goes out at once: a process killed before its first flush still leaves a
     * trace that parses. */
    char header[512];
    char *p = header, *end = header + sizeof header - 1;
    p = put_text(p, end, "# nommu-trace v1\n# pid ");
    p = put_number(p, (uint64_t)getpid());
    p = put_text(p, end, " ppid ");
    p = put_number(p, (uint64_t)getppid());
    p = put_text(p, end, " program ");
    p = put_text(p, end, name);
    *p++ = '\n';
    buffered = 0;
    write_all(header, (size_t)(p - header));
    index_line("open", getpid(), getppid(), name);
    if (!registered) {
        registered = 1;
        atexit(at_exit_flush);
    }
}

/* Appends one event (op, then up to three numbers); the lock is held. */
static void emit_locked(char op, uint64_t a, uint64_t b, uint64_t c, int count) {
    if (out_fd < 0) open_trace_locked();
    if (out_fd < 0) return;
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
    if (!real_calloc) {
        size_t total;
        if (__builtin_mul_overflow(count, size, &total)) return NULL;
        return bootstrap_alloc(total); /* static memory is zero */
    }
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
        size_t room = (size_t)(bootstrap + sizeof bootstrap - (char *)old);
        if (p) memcpy(p, old, size < room ? size : room);
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

void *reallocarray(void *old, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(old, total);
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

void *valloc(size_t size) { return memalign(4096, size); }

void *pvalloc(size_t size) {
    if (size > SIZE_MAX - 4095) {
        errno = ENOMEM;
        return NULL;
    }
    return memalign(4096, (size + 4095) & ~(size_t)4095);
}

/* MARK: Images and processes */

void nommu_preload_image_ends(const char *how) {
    if (inside) return; /* a fault inside the recorder: its buffer may be half written */
    if (nommu_preload_in_vfork_child()) return; /* the parent's buffer: the parent writes it */
    if (strncmp(how, "signal", 6) == 0) {
        if (pthread_mutex_trylock(&lock) != 0) return;
    } else {
        pthread_mutex_lock(&lock);
    }
    inside = 1;
    flush_locked();
    inside = 0;
    pthread_mutex_unlock(&lock);
}

/* A failed exec leaves the image as it was: its trace goes on in the same file. */
void nommu_preload_exec_failed(void) {}

static void before_fork(void) { pthread_mutex_lock(&lock); }
static void after_fork_parent(void) { pthread_mutex_unlock(&lock); }

static void after_fork_child(void) {
    /* What is buffered is the parent's, and the parent writes it; the child's calls go to a
     * trace of its own, opened at its first call. */
    buffered = 0;
    if (out_fd >= 0) close(out_fd);
    out_fd = -1;
    open_failed = 0;
    write_failed = 0;
    nommu_preload_forked();
    pthread_mutex_init(&lock, NULL);
}

__attribute__((constructor)) static void record_start(void) {
    inside = 1;
    resolve();
    nommu_preload_init();
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
    pthread_mutex_lock(&lock);
    open_trace_locked();
    pthread_mutex_unlock(&lock);
    inside = 0;
}

__attribute__((destructor)) static void record_end(void) { at_exit_flush(); }
