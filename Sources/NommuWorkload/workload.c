/* SPDX-License-Identifier: Apache-2.0
 *
 * nommu-workload: fixed C programs for `nommu run`, used by `nommu bench` (its wall time
 * under `nommu run` against plain glibc) and by the tests. Plain C and libc only, so that
 * the same program runs on either allocator.
 *
 *   nommu-workload mixed [OPS [THREADS [SEED]]]
 *       OPS (default 10^6) malloc/realloc/free calls of mixed sizes (most small, some of
 *       pages, a few above 128 KiB) over a few live sets per thread; each block's first and
 *       last byte written and checked. Prints a checksum that does not depend on the allocator.
 *   nommu-workload pairs N SIZE
 *       N malloc/free pairs of SIZE bytes; prints the bytes glibc's allocator holds (mallinfo2)
 *       after a tenth of them and at the end: under `nommu run`, the model's own memory.
 *   nommu-workload threads THREADS N
 *       THREADS threads of N calls each, every block filled with its thread's pattern and
 *       checked before it is freed or after it is moved; exit 1 on a mismatch.
 *   nommu-workload fork THREADS CHILDREN
 *       THREADS threads allocate without pause while the main thread forks CHILDREN children,
 *       one after another; each child allocates and exits. A child that hangs is killed by
 *       an alarm; exit 1 unless every child exited 0.
 *   nommu-workload exhaust
 *       Keeps ever larger blocks until malloc fails; prints the size that failed, exit 1.
 *   nommu-workload end N HOW
 *       N malloc calls (blocks kept), then the process ends by HOW: exit, _exit, segv (a write
 *       through a null pointer) or abort.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Where blocks escape to, so that the compiler keeps every malloc and free (clang removes a
 * malloc/free pair whose block is never seen). */
static void *volatile kept;

static uint64_t next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static size_t mixed_size(uint64_t *s) {
    uint64_t r = next(s) % 1000;
    if (r < 700) return 16 + next(s) % 240;          /* small: 16-255 B */
    if (r < 950) return 256 + next(s) % 3840;        /* up to a page */
    if (r < 995) return 4096 + next(s) % 61440;      /* pages: 4-64 KiB */
    return (128 << 10) + next(s) % (128 << 10);      /* mapped on their own: 128-256 KiB */
}

/* MARK: mixed */

#define SETS 4
#define SLOTS 256
struct mixed_args {
    long ops;
    uint64_t seed;
    uint64_t checksum;
    int failed;
};

static void *mixed_thread(void *arg) {
    struct mixed_args *a = arg;
    static __thread unsigned char *block[SETS][SLOTS];
    static __thread size_t size[SETS][SLOTS];
    uint64_t s = a->seed | 1, sum = 0;
    for (long i = 0; i < a->ops; i++) {
        int set = (int)(next(&s) % SETS), slot = (int)(next(&s) % SLOTS);
        unsigned char **b = &block[set][slot];
        size_t *n = &size[set][slot];
        if (!*b) {
            size_t want = mixed_size(&s);
            *b = malloc(want);
            if (!*b) {
                a->failed = 1;
                break;
            }
            *n = want;
            (*b)[0] = (unsigned char)i;
            (*b)[want - 1] = (unsigned char)(i >> 8);
            continue;
        }
        sum += (*b)[0] + (*b)[*n - 1];
        uint64_t what = next(&s) % 10;
        if (what < 5) {
            free(*b);
            *b = NULL;
        } else if (what < 8) {
            size_t want = mixed_size(&s);
            unsigned char keep = (*b)[0];
            unsigned char *q = realloc(*b, want);
            if (!q) {
                a->failed = 1;
                break;
            }
            if (q[0] != keep) a->failed = 1;
            *b = q;
            *n = want;
            q[want - 1] = (unsigned char)i;
        } else {
            free(*b);
            *b = malloc(*n);
            if (!*b) {
                a->failed = 1;
                break;
            }
            (*b)[0] = (unsigned char)i;
            (*b)[*n - 1] = (unsigned char)i;
        }
    }
    for (int set = 0; set < SETS; set++)
        for (int slot = 0; slot < SLOTS; slot++) {
            free(block[set][slot]);
            block[set][slot] = NULL;
        }
    a->checksum = sum;
    return NULL;
}

static int mixed(long ops, int threads, uint64_t seed) {
    if (threads < 1 || threads > 64) threads = 1;
    pthread_t t[64];
    struct mixed_args a[64];
    for (int i = 0; i < threads; i++) {
        a[i] = (struct mixed_args){ops / threads, seed * 7919 + (uint64_t)i * 104729 + 1, 0, 0};
        if (threads == 1) {
            mixed_thread(&a[i]);
        } else if (pthread_create(&t[i], NULL, mixed_thread, &a[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 2;
        }
    }
    uint64_t sum = 0;
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        if (threads > 1) pthread_join(t[i], NULL);
        sum += a[i].checksum;
        failed |= a[i].failed;
    }
    printf("mixed: %ld calls in %d threads, checksum %llu\n", ops, threads, (unsigned long long)sum);
    if (failed) fprintf(stderr, "mixed: an allocation failed or a block changed\n");
    return failed;
}

/* MARK: pairs */

static size_t host_bytes(void) {
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

static int pairs(long n, size_t size) {
    size_t early = 0;
    for (long i = 0; i < n; i++) {
        char *p = malloc(size);
        if (!p) {
            fprintf(stderr, "pairs: malloc(%zu) failed at pair %ld\n", size, i);
            return 1;
        }
        p[0] = (char)i;
        kept = p;
        free(p);
        if (i + 1 == n / 10) early = host_bytes();
    }
    printf("pairs: %ld of %zu bytes; host malloc bytes after %ld: %zu, after %ld: %zu\n", n, size, n / 10, early, n,
           host_bytes());
    return 0;
}

/* MARK: threads */

struct thread_args {
    int index;
    long calls;
    int bad;
};

static void *checked_thread(void *arg) {
    struct thread_args *a = arg;
    unsigned char pattern = (unsigned char)(0x11 * (a->index + 1));
    unsigned char *live[64] = {0};
    size_t sizes[64] = {0};
    uint64_t s = (uint64_t)a->index * 2654435761u + 17;
    for (long i = 0; i < a->calls; i++) {
        int k = (int)(next(&s) % 64);
        if (live[k]) {
            for (size_t j = 0; j < sizes[k]; j++)
                if (live[k][j] != pattern) a->bad = 1;
            if (next(&s) % 4 == 0) {
                size_t want = 16 + next(&s) % 8192;
                unsigned char *q = realloc(live[k], want);
                if (!q) {
                    a->bad = 1;
                    break;
                }
                size_t common = sizes[k] < want ? sizes[k] : want;
                for (size_t j = 0; j < common; j++)
                    if (q[j] != pattern) a->bad = 1;
                memset(q, pattern, want);
                live[k] = q;
                sizes[k] = want;
                continue;
            }
            free(live[k]);
            live[k] = NULL;
        } else {
            size_t want = 16 + next(&s) % 8192;
            live[k] = next(&s) % 8 == 0 ? calloc(1, want) : malloc(want);
            if (!live[k]) {
                a->bad = 1;
                break;
            }
            memset(live[k], pattern, want);
            sizes[k] = want;
        }
    }
    for (int k = 0; k < 64; k++) free(live[k]);
    return NULL;
}

static int threads(int count, long calls) {
    if (count < 1 || count > 64) count = 8;
    pthread_t t[64];
    struct thread_args a[64];
    for (int i = 0; i < count; i++) {
        a[i] = (struct thread_args){i, calls, 0};
        pthread_create(&t[i], NULL, checked_thread, &a[i]);
    }
    int bad = 0;
    for (int i = 0; i < count; i++) {
        pthread_join(t[i], NULL);
        bad |= a[i].bad;
    }
    printf("threads: %d threads of %ld calls: %s\n", count, calls, bad ? "a block changed" : "every block intact");
    return bad;
}

/* MARK: fork */

static volatile int stop;

static void *busy_thread(void *arg) {
    uint64_t s = (uintptr_t)arg * 31 + 7;
    while (!stop) {
        void *p = malloc(mixed_size(&s) % 4096 + 16);
        kept = p;
        free(p);
    }
    return NULL;
}

static int forks(int count, int children) {
    if (count < 1 || count > 64) count = 4;
    pthread_t t[64];
    for (int i = 0; i < count; i++) pthread_create(&t[i], NULL, busy_thread, (void *)(uintptr_t)(i + 1));
    int ok = 0;
    for (int c = 0; c < children; c++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(20); /* a child that deadlocks dies of SIGALRM */
            for (int i = 0; i < 100; i++) {
                void *p = malloc(64 + (size_t)i);
                kept = p;
                free(p);
            }
            exit(0);
        }
        if (pid < 0) {
            perror("fork");
            break;
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            ok++;
        } else if (WIFSIGNALED(status)) {
            fprintf(stderr, "fork: child %d killed by signal %d\n", c, WTERMSIG(status));
        }
    }
    stop = 1;
    for (int i = 0; i < count; i++) pthread_join(t[i], NULL);
    printf("fork: %d of %d children exited 0 while %d threads allocated\n", ok, children, count);
    return ok == children ? 0 : 1;
}

/* MARK: exhaust */

__attribute__((noinline)) static size_t grow_until_it_fails(void) {
    for (size_t size = 64 << 10;; size += size / 2) {
        void **p = malloc(size);
        if (!p) return size;
        p[0] = kept;
        kept = p;
    }
}

static int end(long n, const char *how) {
    for (long i = 0; i < n; i++) {
        void **p = malloc(32 + (size_t)(i % 100));
        if (!p) return 1;
        p[0] = kept;
        kept = p;
    }
    if (strcmp(how, "_exit") == 0) _exit(0);
    if (strcmp(how, "segv") == 0) *(volatile int *)(uintptr_t)(n > 0 ? 0 : 8) = 1;
    if (strcmp(how, "abort") == 0) abort();
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "mixed";
    if (strcmp(mode, "mixed") == 0) {
        return mixed(argc > 2 ? atol(argv[2]) : 1000000, argc > 3 ? atoi(argv[3]) : 1,
                     argc > 4 ? strtoull(argv[4], NULL, 10) : 42);
    }
    if (strcmp(mode, "pairs") == 0 && argc > 3) return pairs(atol(argv[2]), (size_t)atol(argv[3]));
    if (strcmp(mode, "threads") == 0 && argc > 3) return threads(atoi(argv[2]), atol(argv[3]));
    if (strcmp(mode, "fork") == 0 && argc > 3) {
        alarm(120);
        return forks(atoi(argv[2]), atoi(argv[3]));
    }
    if (strcmp(mode, "exhaust") == 0) {
        size_t size = grow_until_it_fails();
        printf("exhaust: malloc(%zu) failed: %s\n", size, strerror(errno));
        return 1;
    }
    if (strcmp(mode, "end") == 0 && argc > 3) return end(atol(argv[2]), argv[3]);
    fprintf(stderr, "usage: nommu-workload mixed [OPS [THREADS [SEED]]] | pairs N SIZE | threads T N | "
                    "fork T CHILDREN | exhaust | end N exit|_exit|segv|abort\n");
    return 2;
}
