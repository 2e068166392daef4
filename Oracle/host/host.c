/* SPDX-License-Identifier: Apache-2.0
 *
 * Backend B: the oracle's cases through nommu.h. Each case gets a fresh system (configured as
 * the oracle's kernel is: 128 MiB, 4 KiB pages, blocks up to 4 MiB, nr_trim_pages 1,
 * MAP_UNINITIALIZED allowed) and a fresh process in it, and prints what the guest prints.
 *
 * usage: nommu-oracle-host [--reference document|linux-6.1] [--list] [CASE...]
 *        (no case: every case, in order; the reference is the system's, nommu_config.reference) */
#include "../cases/oracle.h"
#include "nommu.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static O_THREAD_LOCAL nommu_process *current;

/* A nommu.h result as the kernel's system call gives it: the value, or -errno. */
static long sys(long result, int failed) { return failed ? -(long)errno : result; }
static long sys_int(int r) { return sys(r, r == -1); }
static long sys_ssize(ssize_t r) { return sys((long)r, r == -1); }
static long sys_pointer(void *p) { return sys((long)p, p == MAP_FAILED); }

long o_mmap(void *addr, o_size len, int prot, int flags, int fd, long off) {
    errno = 0;
    return sys_pointer(nommu_mmap(current, addr, len, prot, flags, fd, (off_t)off));
}
long o_munmap(void *addr, o_size len) { return sys_int(nommu_munmap(current, addr, len)); }
long o_mremap(void *old, o_size old_len, o_size new_len, int flags) {
    return sys_pointer(nommu_mremap(current, old, old_len, new_len, flags));
}
long o_open(const char *path, int flags, int mode) { return sys_int(nommu_open(current, path, flags, mode)); }
long o_close(int fd) { return sys_int(nommu_close(current, fd)); }
long o_read(int fd, void *buf, o_size count) { return sys_ssize(nommu_read(current, fd, buf, count)); }
long o_write(int fd, const void *buf, o_size count) { return sys_ssize(nommu_write(current, fd, buf, count)); }
long o_pread(int fd, void *buf, o_size count, long offset) {
    return sys_ssize(nommu_pread(current, fd, buf, count, (off_t)offset));
}
long o_pwrite(int fd, const void *buf, o_size count, long offset) {
    return sys_ssize(nommu_pwrite(current, fd, buf, count, (off_t)offset));
}
long o_ftruncate(int fd, long length) { return sys_int(nommu_ftruncate(current, fd, (off_t)length)); }
long o_unlink(const char *path) { return sys_int(nommu_unlink(current, path)); }
long o_pipe(int fds[2]) { return sys_int(nommu_pipe(current, fds)); }
long o_mkfifo(const char *path, int mode) { return sys_int(nommu_mkfifo(current, path, (mode_t)mode)); }
long o_socket(int domain, int type, int protocol) { return sys_int(nommu_socket(current, domain, type, protocol)); }
long o_shmget(long key, o_size size, int flags) { return sys_int(nommu_shmget(current, (key_t)key, size, flags)); }
long o_shmat(int id, const void *addr, int flags) {
    void *p = nommu_shmat(current, id, addr, flags);
    return sys((long)p, p == (void *)-1);
}
long o_shmdt(const void *addr) { return sys_int(nommu_shmdt(current, addr)); }
long o_shmctl(int id, int cmd, void *buf) { return sys_int(nommu_shmctl(current, id, cmd, buf)); }
long o_futex(o_u32 *word, int op, o_u32 value, const long timeout[2]) {
    struct timespec t;
    if (timeout) {
        t.tv_sec = timeout[0];
        t.tv_nsec = timeout[1];
    }
    return sys_int(nommu_futex(current, word, op, value, timeout ? &t : NULL));
}
/* brk(2) answers with the break, not an error. */
long o_brk(void *addr) { return (long)nommu_brk(current, addr); }
long o_mprotect(void *addr, o_size len, int prot) { return sys_int(nommu_mprotect(current, addr, len, prot)); }
long o_madvise(void *addr, o_size len, int advice) { return sys_int(nommu_madvise(current, addr, len, advice)); }
long o_mlock(void *addr, o_size len) { return sys_int(nommu_mlock(current, addr, len)); }
long o_msync(void *addr, o_size len, int flags) { return sys_int(nommu_msync(current, addr, len, flags)); }
long o_mincore(void *addr, o_size len, unsigned char *vec) {
    return sys_int(nommu_mincore(current, addr, len, vec));
}
long o_getpid(void) { return nommu_getpid(current); }
long o_setuid(unsigned int uid) { return sys_int(nommu_setuid(current, (uid_t)uid)); }

long o_vfork_run(void (*child)(void)) {
    nommu_process *parent = current, *c = nommu_vfork(parent);
    if (!c) return -(long)errno;
    long pid = nommu_getpid(c);
    current = c;
    child();
    nommu_process_exit(c);
    current = parent;
    return pid;
}

static nommu_system *system_now;

long o_spawn(const char *helper, const char *arg) {
    nommu_process *parent = current, *c = nommu_process_create(system_now);
    if (!c) return -(long)errno;
    nommu_setuid(c, nommu_getuid(parent)); /* exec keeps the credentials */
    const char *saved_arg = o_arg;
    unsigned long saved_base = o_base;
    current = c;
    o_arg = arg;
    o_base = 0;
    if (!o_run_helper(helper)) o_str("unknown helper", helper);
    nommu_process_exit(c);
    current = parent;
    o_arg = saved_arg;
    o_base = saved_base;
    return 0;
}

/* o_spawn_start: the helper's process runs on a thread of its own (one at a time). */
struct started {
    pthread_t thread;
    nommu_process *process;
    const char *helper, *arg;
};
static struct started started;

static void *run_started(void *unused) {
    (void)unused;
    current = started.process;
    o_arg = started.arg;
    o_base = 0;
    o_run_helper(started.helper);
    return 0;
}

long o_spawn_start(const char *helper, const char *arg) {
    nommu_process *c = nommu_process_create(system_now);
    if (!c) return -(long)errno;
    nommu_setuid(c, nommu_getuid(current));
    started = (struct started){.process = c, .helper = helper, .arg = arg};
    int e = pthread_create(&started.thread, 0, run_started, 0);
    if (e) {
        nommu_process_exit(c);
        return -(long)e;
    }
    return 1;
}

long o_spawn_wait(long handle) {
    if (handle != 1 || !started.process) return -ECHILD;
    pthread_join(started.thread, 0);
    nommu_process_exit(started.process);
    started.process = 0;
    return 0;
}

long o_yield(void) { return sched_yield(); }

void o_emit(const char *text, o_size length) { fwrite(text, 1, length, stdout); }

int o_own_mapping(unsigned long start, unsigned long end) {
    (void)start;
    (void)end;
    return 0; /* the model's process has no program image of its own */
}

static int reference = NOMMU_REFERENCE_DOCUMENT;

static int run(const char *name) {
    struct nommu_config config;
    nommu_config_init(&config);
    config.arena_bytes = 128u << 20;
    config.allow_uninitialized = 1;
    config.reference = reference;
    nommu_system *sys = nommu_system_create(&config);
    system_now = sys;
    if (!sys) {
        fprintf(stderr, "nommu_system_create: %s\n", strerror(errno));
        return 0;
    }
    /* pid 1 stands for the guest's /init (root, the case's parent); the case gets pid 2. */
    nommu_process *init = nommu_process_create(sys);
    current = nommu_process_create(sys);
    o_base = 0;
    printf("@@ case %s\n", name);
    int found = o_run_case(name);
    if (!found) o_str("unknown case", name);
    printf("@@ end\n");
    fflush(stdout);
    nommu_process_exit(current);
    nommu_process_exit(init);
    nommu_system_destroy(sys);
    return found;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "--reference") == 0) {
        if (strcmp(argv[2], "linux-6.1") == 0) {
            reference = NOMMU_REFERENCE_LINUX_6_1;
        } else if (strcmp(argv[2], "document") != 0) {
            fprintf(stderr, "--reference: document or linux-6.1\n");
            return 2;
        }
        argc -= 2;
        argv += 2;
    }
    if (argc >= 2 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; o_case_name(i); i++) printf("%s\n", o_case_name(i));
        return 0;
    }
    int ok = 1;
    if (argc < 2) {
        for (int i = 0; o_case_name(i); i++) ok &= run(o_case_name(i));
    } else {
        for (int i = 1; i < argc; i++) ok &= run(argv[i]);
    }
    return ok ? 0 : 1;
}
