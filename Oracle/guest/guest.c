/* SPDX-License-Identifier: Apache-2.0
 *
 * Backend A: the cases on a real no-MMU Linux (riscv64, 6.1), as raw system calls. This is
 * the initramfs's /init, a bFLT v4 program (flat.py packs it). Run by the kernel as
 * `/init CASE` (the word after `--` on the command line), it mounts /proc, /dev, /tmp and
 * /dev/shm as the model has them, runs the case in a vfork'd child that execs `/init run
 * CASE` (a fresh process, as the hosted backend makes one) and prints the end marker after
 * it, waits for it, and powers the machine off. Freestanding: no libc, no absolute relocations. */
#include "../cases/oracle.h"

/* <asm-generic/unistd.h> */
enum {
    NR_unlinkat = 35, NR_mkdirat = 34, NR_mknodat = 33, NR_mount = 40, NR_ftruncate = 46, NR_openat = 56,
    NR_close = 57, NR_pipe2 = 59, NR_read = 63, NR_write = 64, NR_pread64 = 67, NR_pwrite64 = 68, NR_exit = 93,
    NR_futex = 98, NR_reboot = 142, NR_setuid = 146, NR_getpid = 172, NR_shmget = 194, NR_shmctl = 195,
    NR_shmat = 196, NR_shmdt = 197, NR_socket = 198, NR_brk = 214, NR_munmap = 215, NR_mremap = 216,
    NR_rt_sigaction = 134, NR_sched_yield = 124, NR_clone = 220, NR_execve = 221, NR_mmap = 222, NR_mprotect = 226, NR_msync = 227, NR_mlock = 228,
    NR_mincore = 232, NR_madvise = 233, NR_wait4 = 260,
};
#define AT_FDCWD -100
#define MS_NOSUID 2
#define MS_NODEV 4
#define MS_NOEXEC 8

static long sys6(long n, long a, long b, long c, long d, long e, long f) {
    register long a0 __asm__("a0") = a;
    register long a1 __asm__("a1") = b;
    register long a2 __asm__("a2") = c;
    register long a3 __asm__("a3") = d;
    register long a4 __asm__("a4") = e;
    register long a5 __asm__("a5") = f;
    register long a7 __asm__("a7") = n;
    __asm__ volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a3), "r"(a4), "r"(a5), "r"(a7) : "memory");
    return a0;
}
#define S(n, a, b, c, d, e, f) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

long o_mmap(void *addr, o_size len, int prot, int flags, int fd, long off) {
    return S(NR_mmap, addr, len, prot, flags, fd, off);
}
long o_munmap(void *addr, o_size len) { return S(NR_munmap, addr, len, 0, 0, 0, 0); }
long o_mremap(void *old, o_size old_len, o_size new_len, int flags) {
    return S(NR_mremap, old, old_len, new_len, flags, 0, 0);
}
long o_open(const char *path, int flags, int mode) { return S(NR_openat, AT_FDCWD, path, flags, mode, 0, 0); }
long o_close(int fd) { return S(NR_close, fd, 0, 0, 0, 0, 0); }
long o_read(int fd, void *buf, o_size count) { return S(NR_read, fd, buf, count, 0, 0, 0); }
long o_write(int fd, const void *buf, o_size count) { return S(NR_write, fd, buf, count, 0, 0, 0); }
long o_pread(int fd, void *buf, o_size count, long offset) { return S(NR_pread64, fd, buf, count, offset, 0, 0); }
long o_pwrite(int fd, const void *buf, o_size count, long offset) {
    return S(NR_pwrite64, fd, buf, count, offset, 0, 0);
}
long o_ftruncate(int fd, long length) { return S(NR_ftruncate, fd, length, 0, 0, 0, 0); }
long o_unlink(const char *path) { return S(NR_unlinkat, AT_FDCWD, path, 0, 0, 0, 0); }
long o_pipe(int fds[2]) { return S(NR_pipe2, fds, 0, 0, 0, 0, 0); }
long o_mkfifo(const char *path, int mode) { return S(NR_mknodat, AT_FDCWD, path, 0010000 | mode, 0, 0, 0); }
long o_socket(int domain, int type, int protocol) { return S(NR_socket, domain, type, protocol, 0, 0, 0); }
long o_shmget(long key, o_size size, int flags) { return S(NR_shmget, key, size, flags, 0, 0, 0); }
long o_shmat(int id, const void *addr, int flags) { return S(NR_shmat, id, addr, flags, 0, 0, 0); }
long o_shmdt(const void *addr) { return S(NR_shmdt, addr, 0, 0, 0, 0, 0); }
long o_shmctl(int id, int cmd, void *buf) { return S(NR_shmctl, id, cmd, buf, 0, 0, 0); }
long o_futex(o_u32 *word, int op, o_u32 value, const long timeout[2]) {
    return S(NR_futex, word, op, value, timeout, 0, 0);
}
long o_brk(void *addr) { return S(NR_brk, addr, 0, 0, 0, 0, 0); }
long o_mprotect(void *addr, o_size len, int prot) { return S(NR_mprotect, addr, len, prot, 0, 0, 0); }
long o_madvise(void *addr, o_size len, int advice) { return S(NR_madvise, addr, len, advice, 0, 0, 0); }
long o_mlock(void *addr, o_size len) { return S(NR_mlock, addr, len, 0, 0, 0, 0); }
long o_msync(void *addr, o_size len, int flags) { return S(NR_msync, addr, len, flags, 0, 0, 0); }
long o_mincore(void *addr, o_size len, unsigned char *vec) { return S(NR_mincore, addr, len, vec, 0, 0, 0); }
long o_getpid(void) { return S(NR_getpid, 0, 0, 0, 0, 0, 0); }
long o_setuid(unsigned int uid) { return S(NR_setuid, uid, 0, 0, 0, 0, 0); }

void o_emit(const char *text, o_size length) {
    while (length > 0) {
        long n = S(NR_write, 1, text, length, 0, 0, 0);
        if (n <= 0) return;
        text += n;
        length -= (o_size)n;
    }
}

/* The program's own allocation (text, data, bss and stack share one with FLAT_FLAG_RAM). */
int o_own_mapping(unsigned long start, unsigned long end) {
    unsigned long here = (unsigned long)&o_base;
    return start <= here && here < end;
}

#define CLONE_VM 0x100
#define CLONE_VFORK 0x4000
#define SIGCHLD 17

/* vfork: the child shares the stack, so it must not return from here; it calls `child`
 * and exits in the same frame. */
long o_vfork_run(void (*child)(void)) {
    long pid = S(NR_clone, CLONE_VM | CLONE_VFORK | SIGCHLD, 0, 0, 0, 0, 0);
    if (pid == 0) {
        child();
        S(NR_exit, 0, 0, 0, 0, 0, 0);
    }
    if (pid > 0) {
        int status;
        S(NR_wait4, pid, &status, 0, 0, 0, 0);
    }
    return pid;
}

long o_spawn_start(const char *helper, const char *arg) {
    char *argv[] = {"/init", "helper", (char *)helper, (char *)arg, 0};
    static char *const env[] = {0};
    long pid = S(NR_clone, CLONE_VM | CLONE_VFORK | SIGCHLD, 0, 0, 0, 0, 0);
    if (pid == 0) {
        S(NR_execve, "/init", argv, env, 0, 0, 0);
        S(NR_exit, 127, 0, 0, 0, 0, 0);
    }
    return pid; /* (vfork: the child has exec'd or exited by now) */
}

long o_spawn_wait(long pid) {
    int status = 0;
    long r = S(NR_wait4, pid, &status, 0, 0, 0, 0);
    return r < 0 ? r : 0;
}

long o_spawn(const char *helper, const char *arg) {
    long pid = o_spawn_start(helper, arg);
    return pid < 0 ? pid : o_spawn_wait(pid);
}

long o_yield(void) { return S(NR_sched_yield, 0, 0, 0, 0, 0, 0); }

static void run_case(const char *name) {
    if (!o_run_case(name)) o_str("unknown case", name);
}

static char *const no_env[] = {0};

/* The first code of the program: sp points at argc, argv[], NULL, envp[], NULL. */
__attribute__((used)) static void start_c(long *sp) {
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    if (argc >= 4 && o_same(argv[1], "helper")) {
        long ignore[3] = {1 /* SIG_IGN */, 0, 0};
        S(NR_rt_sigaction, 13 /* SIGPIPE */, ignore, 0, 8, 0, 0);
        o_arg = argv[3];
        if (!o_run_helper(argv[2])) o_str("unknown helper", argv[2]);
        S(NR_exit, 0, 0, 0, 0, 0, 0);
    }
    if (argc >= 3 && o_same(argv[1], "run")) {
        /* The model has no signals: a write to a pipe with no reader is EPIPE there, so the
         * case ignores SIGPIPE (which would end it) and sees the same. */
        long ignore[3] = {1 /* SIG_IGN */, 0, 0};
        S(NR_rt_sigaction, 13 /* SIGPIPE */, ignore, 0, 8, 0, 0);
        run_case(argv[2]);
        /* The case's end is the end of what it printed: a kernel bug that strikes at the
         * exit after (6.1 drops a file reference too many when a region is shared, and now
         * and then crashes in the exit's fput) must not make the golden file vary. */
        o_emit("@@ end\n", 7);
        S(NR_exit, 0, 0, 0, 0, 0, 0);
    }
    /* As /init: mount what the model has, run the case in a fresh process, power off. */
    S(NR_mkdirat, AT_FDCWD, "/proc", 0755, 0, 0, 0);
    S(NR_mkdirat, AT_FDCWD, "/dev", 0755, 0, 0, 0);
    S(NR_mkdirat, AT_FDCWD, "/tmp", 01777, 0, 0, 0);
    S(NR_mount, "proc", "/proc", "proc", 0, 0, 0);
    S(NR_mount, "devtmpfs", "/dev", "devtmpfs", 0, 0, 0);
    S(NR_mount, "tmpfs", "/tmp", "tmpfs", 0, 0, 0); /* ramfs without an MMU */
    S(NR_mkdirat, AT_FDCWD, "/dev/shm", 01777, 0, 0, 0);
    S(NR_mount, "tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0, 0); /* as distributions mount it */
    const char *name = argc >= 2 ? argv[1] : "";
    o_emit("@@ case ", 8);
    o_emit(name, o_strlen(name));
    o_emit("\n", 1);
    char *child_argv[] = {"/init", "run", (char *)name, 0};
    long pid = S(NR_clone, CLONE_VM | CLONE_VFORK | SIGCHLD, 0, 0, 0, 0, 0);
    if (pid == 0) {
        S(NR_execve, "/init", child_argv, no_env, 0, 0, 0);
        S(NR_exit, 127, 0, 0, 0, 0, 0);
    }
    int status = 0;
    if (pid > 0) S(NR_wait4, pid, &status, 0, 0, 0, 0);
    /* LINUX_REBOOT_MAGIC1, MAGIC2, LINUX_REBOOT_CMD_POWER_OFF */
    S(NR_reboot, 0xfee1dead, 672274793, 0x4321fedc, 0, 0, 0);
    for (;;) {
    }
}

__asm__(".section .text.start\n"
        ".globl _start\n"
        "_start:\n"
        "  mv a0, sp\n"
        "  call start_c\n"
        "1: j 1b\n");
