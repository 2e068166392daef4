/* SPDX-License-Identifier: Apache-2.0
 * nommu-abi-stress: a concurrency stress through the C ABI. Eight threads over four
 * processes (two of them a vfork parent and child sharing one address space) hammer mmap,
 * munmap, mremap, the mallocs, files on tmpfs and /dev/shm, SysV shared memory, /proc and the
 * nr_trim_pages sysctl at once, each checking its own cookies and that new memory is zero.
 * Beside them, two threads in two different processes play futex ping-pong through a SysV
 * segment both have attached, and a third process's threads wake each other through a
 * shared mapping. alarm() bounds the whole run, so a deadlock fails instead of hanging. At
 * the end every process exits and every page must be back.
 *
 * NOMMU_STRESS_OPS (default 20000) sets the operations per thread, divided by 4. Prints one
 * line per failed check and a closing "N passed, M failed"; exits 1 if anything failed. */
#include "nommu.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 4096u
#define HAMMERS 8
#define PROCESSES 4
#define MAX_KEPT 16

static int passed, failed;
static pthread_mutex_t report = PTHREAD_MUTEX_INITIALIZER;

static void check(int ok, const char *what, int thread) {
    pthread_mutex_lock(&report);
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL thread %d: %s (errno %d: %s)\n", thread, what, errno, strerror(errno));
    }
    pthread_mutex_unlock(&report);
}

static nommu_system *sys;
static nommu_process *procs[PROCESSES];
static int ops = 5000;
static int shm_common; /* SysV segment every process may attach */

static int all_bytes(const unsigned char *p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != v) return 0;
    return 1;
}

struct kept {
    unsigned char *at;
    size_t len;
    unsigned char cookie;
    int heap; /* 1: from nommu_malloc */
};

static void *hammer(void *arg) {
    int t = (int)(intptr_t)arg;
    nommu_process *p = procs[t % PROCESSES];
    unsigned seed = 1234u + (unsigned)t;
    struct kept kept[MAX_KEPT];
    int n = 0;
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/tmp/stress%d", t);
    int bad = 0;
    for (int i = 0; i < ops && !bad; i++) {
        int op = rand_r(&seed) % 10;
        if (op <= 1 && n < MAX_KEPT) {
            /* Anonymous memory, sometimes asking for MAP_UNINITIALIZED (not allowed here). */
            size_t len = (1 + rand_r(&seed) % 12) * PAGE;
            int flags = MAP_PRIVATE | MAP_ANONYMOUS | (rand_r(&seed) % 2 ? MAP_UNINITIALIZED : 0);
            unsigned char *a = nommu_mmap(p, NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
            if (a == MAP_FAILED) {
                if (errno != ENOMEM) check(0, "mmap failed other than ENOMEM", t), bad = 1;
                continue;
            }
            if (!all_bytes(a, len, 0)) check(0, "new anonymous memory is not zero", t), bad = 1;
            unsigned char c = (unsigned char)(1 + rand_r(&seed) % 250);
            memset(a, c, len);
            kept[n++] = (struct kept){a, len, c, 0};
        } else if (op == 2 && n < MAX_KEPT) {
            /* The malloc of the process (shared by its threads): calloc is zero. */
            size_t len = 1 + (size_t)(rand_r(&seed) % 20000);
            unsigned char *a = rand_r(&seed) % 2 ? nommu_calloc(p, 1, len) : nommu_malloc(p, len);
            if (a == NULL) continue;
            if (rand_r(&seed) % 2 == 0) {
                unsigned char *z = nommu_calloc(p, len, 1);
                if (z != NULL) {
                    if (!all_bytes(z, len, 0)) check(0, "calloc memory is not zero", t), bad = 1;
                    nommu_free(p, z);
                }
            }
            unsigned char c = (unsigned char)(1 + rand_r(&seed) % 250);
            memset(a, c, len);
            kept[n++] = (struct kept){a, len, c, 1};
        } else if (op <= 4 && n > 0) {
            /* Free one: the cookie must have survived everybody else's traffic. */
            int k = rand_r(&seed) % n;
            struct kept m = kept[k];
            if (!all_bytes(m.at, m.len, m.cookie)) check(0, "a cookie changed", t), bad = 1;
            if (m.heap && rand_r(&seed) % 2) {
                unsigned char *r = nommu_realloc(p, m.at, m.len * 2);
                if (r != NULL) {
                    if (!all_bytes(r, m.len, m.cookie)) check(0, "realloc lost bytes", t), bad = 1;
                    nommu_free(p, r);
                } else {
                    nommu_free(p, m.at);
                }
            } else if (m.heap) {
                nommu_free(p, m.at);
            } else if (m.len > PAGE && rand_r(&seed) % 2) {
                /* Shrink in place (mremap) or cut the tail (munmap), keep the rest. */
                if (rand_r(&seed) % 2) {
                    if (nommu_mremap(p, m.at, m.len, m.len - PAGE, 0) != m.at) check(0, "mremap shrink", t), bad = 1;
                } else if (nommu_munmap(p, m.at + m.len - PAGE, PAGE) != 0) {
                    check(0, "munmap tail", t), bad = 1;
                }
                kept[k].len -= PAGE;
                continue;
            } else if (nommu_munmap(p, m.at, m.len) != 0) {
                check(0, "munmap", t), bad = 1;
            }
            kept[k] = kept[--n];
        } else if (op == 5) {
            /* Our own tmpfs file: write, map a private copy, it holds what was written. */
            int fd = nommu_open(p, path, O_RDWR | O_CREAT | O_TRUNC, 0600);
            if (fd < 0) continue;
            unsigned char c = (unsigned char)(1 + rand_r(&seed) % 250);
            memset(buf, c, sizeof buf);
            if (nommu_write(p, fd, buf, 6000) == 6000) {
                unsigned char *m = nommu_mmap(p, NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
                if (m != MAP_FAILED) {
                    if (!all_bytes(m, 6000, c) || !all_bytes(m + 6000, 2 * PAGE - 6000, 0))
                        check(0, "private file copy", t), bad = 1;
                    nommu_munmap(p, m, 2 * PAGE);
                }
            }
            nommu_close(p, fd);
        } else if (op == 6) {
            /* A /dev/shm file every thread shares, mapped shared when it is contiguous. */
            int fd = nommu_open(p, "/dev/shm/common", O_RDWR | O_CREAT, 0600);
            if (fd < 0) continue;
            nommu_ftruncate(p, fd, 2 * PAGE);
            unsigned char *m = nommu_mmap(p, NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (m != MAP_FAILED) {
                __atomic_store_n(&m[t], (unsigned char)t, __ATOMIC_RELAXED);
                nommu_munmap(p, m, 2 * PAGE);
            }
            nommu_close(p, fd);
        } else if (op == 7) {
            int fd = nommu_open(p, rand_r(&seed) % 2 ? "/proc/self/maps" : "/proc/meminfo", O_RDONLY);
            if (fd >= 0) {
                while (nommu_read(p, fd, buf, sizeof buf) > 0) {
                }
                nommu_close(p, fd);
            }
            if (rand_r(&seed) % 50 == 0) {
                fd = nommu_open(p, "/proc/sys/vm/nr_trim_pages", O_WRONLY);
                if (fd >= 0) {
                    nommu_write(p, fd, rand_r(&seed) % 2 ? "0\n" : "1\n", 2);
                    nommu_close(p, fd);
                }
            }
        } else if (op == 8) {
            unsigned char *s = nommu_shmat(p, shm_common, NULL, 0);
            if (s == (void *)-1) {
                check(0, "shmat", t), bad = 1;
                continue;
            }
            __atomic_fetch_add((uint32_t *)(s + 64 + 4 * (t % 8)), 1, __ATOMIC_RELAXED);
            if (nommu_shmdt(p, s) != 0) check(0, "shmdt", t), bad = 1;
        }
    }
    for (int k = 0; k < n; k++) {
        if (!all_bytes(kept[k].at, kept[k].len, kept[k].cookie)) check(0, "a cookie changed (end)", t);
        if (kept[k].heap)
            nommu_free(p, kept[k].at);
        else
            nommu_munmap(p, kept[k].at, kept[k].len);
    }
    nommu_unlink(p, path);
    check(!bad, "hammer thread finished clean", t);
    return NULL;
}

/* Futex ping-pong between two processes through one SysV segment: each waits for its turn
 * (the word's parity), bumps the word and wakes the other. */
struct pingpong {
    nommu_process *p;
    int parity;
    int rounds;
    int shmid;
};

static void *player(void *arg) {
    struct pingpong *pp = arg;
    uint32_t *word = nommu_shmat(pp->p, pp->shmid, NULL, 0);
    if (word == (void *)-1) {
        check(0, "ping-pong shmat", pp->parity);
        return NULL;
    }
    struct timespec tick = {0, 50 * 1000 * 1000};
    int stuck = 0;
    for (int i = 0; i < pp->rounds && stuck < 200;) {
        uint32_t v = __atomic_load_n(word, __ATOMIC_ACQUIRE);
        if ((int)(v % 2) != pp->parity) {
            /* Not our turn: sleep on the word (EAGAIN if it already moved, ETIMEDOUT bounded). */
            if (nommu_futex(pp->p, word, FUTEX_WAIT, v, &tick) == 0) {
                stuck = 0;
            } else if (errno == ETIMEDOUT) {
                stuck++;
            } else if (errno != EAGAIN) {
                check(0, "futex wait", pp->parity);
                break;
            }
            continue;
        }
        __atomic_store_n(word, v + 1, __ATOMIC_RELEASE);
        if (nommu_futex(pp->p, word, FUTEX_WAKE, 1, NULL) < 0) check(0, "futex wake", pp->parity);
        stuck = 0;
        i++;
    }
    check(stuck < 200, "ping-pong kept moving (no lost wake-up stalls it for 10 s)", pp->parity);
    nommu_shmdt(pp->p, word);
    return NULL;
}

int main(void) {
    const char *env = getenv("NOMMU_STRESS_OPS");
    if (env) ops = atoi(env) / 4;
    if (ops < 1) ops = 1;
    alarm(600); /* a deadlock kills the run: the test sees a signal, not a hang */

    struct nommu_config config;
    nommu_config_init(&config);
    config.arena_bytes = 16u << 20;
    sys = nommu_system_create(&config);
    check(sys != NULL, "system", -1);
    procs[0] = nommu_process_create(sys);
    procs[1] = nommu_vfork(procs[0]); /* shares procs[0]'s address space */
    procs[2] = nommu_process_create(sys);
    procs[3] = nommu_process_create(sys);
    check(procs[0] && procs[1] && procs[2] && procs[3], "processes", -1);
    shm_common = nommu_shmget(procs[0], 77, 2 * PAGE, IPC_CREAT | 0600);
    int ping = nommu_shmget(procs[2], 78, PAGE, IPC_CREAT | 0600);
    check(shm_common >= 0 && ping >= 0, "shmget", -1);

    pthread_t threads[HAMMERS + 2];
    for (int t = 0; t < HAMMERS; t++) pthread_create(&threads[t], NULL, hammer, (void *)(intptr_t)t);
    int rounds = ops < 2000 ? ops : 2000;
    struct pingpong a = {procs[2], 0, rounds, ping}, b = {procs[3], 1, rounds, ping};
    pthread_create(&threads[HAMMERS], NULL, player, &a);
    pthread_create(&threads[HAMMERS + 1], NULL, player, &b);
    for (int t = 0; t < HAMMERS + 2; t++) pthread_join(threads[t], NULL);

    /* The ping-pong word counted every round of both players. */
    uint32_t *word = nommu_shmat(procs[0], ping, NULL, 0);
    check(word != (void *)-1 && *word == (uint32_t)(2 * rounds), "ping-pong: every round counted", -1);
    nommu_shmdt(procs[0], word);

    /* Every page back once everything is gone. */
    check(nommu_shmctl(procs[0], shm_common, IPC_RMID, NULL) == 0, "IPC_RMID", -1);
    check(nommu_shmctl(procs[0], ping, IPC_RMID, NULL) == 0, "IPC_RMID", -1);
    nommu_unlink(procs[0], "/dev/shm/common");
    for (int i = PROCESSES - 1; i >= 0; i--) nommu_process_exit(procs[i]);
    struct nommu_stats st = {.size = sizeof st};
    check(nommu_get_stats(sys, &st) == 0, "stats", -1);
    check(st.allocated_pages == 0 && st.mmap_pages_allocated == 0, "every page is back", -1);
    if (st.allocated_pages != 0)
        printf("  %llu pages still allocated\n", (unsigned long long)st.allocated_pages);
    nommu_system_destroy(sys);
    printf("abi-stress: %d threads, %d ops each, %d ping-pong rounds\n", HAMMERS, ops, rounds);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
