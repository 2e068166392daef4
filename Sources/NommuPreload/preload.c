/* SPDX-License-Identifier: Apache-2.0 */
#include "nommu_preload.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execv_fn)(const char *, char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);
static execve_fn real_execve, real_execvpe;
static execv_fn real_execv, real_execvp;
static fexecve_fn real_fexecve;
static volatile pid_t noted_pid;

static void on_fatal_signal(int sig, siginfo_t *info, void *context);
/* What each fatal signal did before this library took it: restored, and the signal
 * delivered again, once the image's data is written. */
static struct sigaction previous[NSIG];

/* Whether the program itself (not a library it loaded) names a library starting with
 * `prefix` among its DT_NEEDED entries. */
static int program_needs_cb(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    const char *prefix = *(const char **)data;
    int *found = (int *)((const char **)data + 1);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type != PT_DYNAMIC) continue;
        const ElfW(Dyn) *dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
        uintptr_t strtab = 0;
        for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++)
            if (d->d_tag == DT_STRTAB) strtab = d->d_un.d_ptr;
        if (!strtab) break;
        if (strtab < info->dlpi_addr) strtab += info->dlpi_addr; /* not relocated in place */
        for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++)
            if (d->d_tag == DT_NEEDED && strncmp((const char *)strtab + d->d_un.d_val, prefix, strlen(prefix)) == 0)
                *found = 1;
    }
    return 1; /* the first object is the program: stop there */
}

static int program_needs(const char *prefix) {
    struct {
        const char *prefix;
        int found;
    } q = {prefix, 0};
    dl_iterate_phdr(program_needs_cb, &q);
    return q.found;
}

/* Whether `handler` is the Swift runtime's crash handler, installed because this library
 * loads the runtime (a program that is itself Swift keeps it). */
static int swift_runtime_handler(void (*handler)(int)) {
    Dl_info d;
    if (!dladdr((void *)handler, &d) || !d.dli_fname) return 0;
    const char *base = strrchr(d.dli_fname, '/');
    base = base ? base + 1 : d.dli_fname;
    return strncmp(base, "libswiftCore", 12) == 0 && !program_needs("libswiftCore");
}

void nommu_preload_init(void) {
    real_execve = (execve_fn)dlsym(RTLD_NEXT, "execve");
    real_execvpe = (execve_fn)dlsym(RTLD_NEXT, "execvpe");
    real_execv = (execv_fn)dlsym(RTLD_NEXT, "execv");
    real_execvp = (execv_fn)dlsym(RTLD_NEXT, "execvp");
    real_fexecve = (fexecve_fn)dlsym(RTLD_NEXT, "fexecve");
    noted_pid = getpid();
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (unsigned i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
        int sig = fatal[i];
        struct sigaction old;
        if (sigaction(sig, NULL, &old) != 0) continue;
        /* The Swift runtime's backtracer, there only because libnommu-run loads the runtime
         * into a program that is not Swift, would print a Swift crash report: the signal's
         * default is what such a program had. */
        void (*h)(int) = (old.sa_flags & SA_SIGINFO) ? (void (*)(int))old.sa_sigaction : old.sa_handler;
        if (h != SIG_DFL && h != SIG_IGN && swift_runtime_handler(h)) {
            memset(&old, 0, sizeof old);
            old.sa_handler = SIG_DFL;
            sigemptyset(&old.sa_mask);
        }
        previous[sig] = old;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fatal_signal;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(sig, &sa, NULL);
    }
}

void nommu_preload_forked(void) { noted_pid = getpid(); }
pid_t nommu_preload_pid(void) { return noted_pid; }
int nommu_preload_in_vfork_child(void) { return getpid() != noted_pid; }

unsigned long long nommu_preload_realtime_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (unsigned long long)t.tv_sec * 1000000000ull + (unsigned long long)t.tv_nsec;
}

unsigned long long nommu_preload_monotonic_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (unsigned long long)t.tv_sec * 1000000000ull + (unsigned long long)t.tv_nsec;
}

int nommu_preload_comm(char *buf, int size) {
    int n = 0;
    int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t r = read(fd, buf, (size_t)size - 1);
        n = r > 0 ? (int)r : 0;
        close(fd);
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == 0)) n--;
    buf[n] = 0;
    return n;
}

/* The handler runs with the signal blocked. The image's data is written, the signal's
 * previous action put back, and the signal delivered to it as if this library were not
 * there: a fault recurs as the instruction is retried (with its own siginfo), a signal that
 * was sent (abort's, kill's) is raised again and delivered on return. */
static void on_fatal_signal(int sig, siginfo_t *info, void *context) {
    (void)context;
    int saved = errno;
    char how[24] = "signal ";
    char digits[8];
    int n = 0, v = sig;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < 7);
    int at = 7;
    while (n) how[at++] = digits[--n];
    how[at] = 0;
    nommu_preload_image_ends(how);
    sigaction(sig, &previous[sig], NULL);
    if (!info || info->si_code <= 0) raise(sig);
    errno = saved;
}

/* The exec family: the image's data is written first; when the exec fails the image goes
 * on and is told so. */
#define AROUND_EXEC(call)                       \
    do {                                        \
        nommu_preload_image_ends("exec");       \
        int result_ = (call);                   \
        int errno_ = errno;                     \
        nommu_preload_exec_failed();            \
        errno = errno_;                         \
        return result_;                         \
    } while (0)

static int call_execve(const char *path, char *const argv[], char *const envp[]) {
    if (real_execve) return real_execve(path, argv, envp);
    return (int)syscall(SYS_execve, path, argv, envp);
}

static int call_execvp(const char *file, char *const argv[]) {
    if (real_execvp) return real_execvp(file, argv);
    errno = ENOSYS;
    return -1;
}

int execve(const char *path, char *const argv[], char *const envp[]) { AROUND_EXEC(call_execve(path, argv, envp)); }

int execv(const char *path, char *const argv[]) {
    AROUND_EXEC(real_execv ? real_execv(path, argv) : call_execve(path, argv, environ));
}

int execvp(const char *file, char *const argv[]) { AROUND_EXEC(call_execvp(file, argv)); }

int execvpe(const char *file, char *const argv[], char *const envp[]) {
    if (!real_execvpe) {
        errno = ENOSYS;
        return -1;
    }
    AROUND_EXEC(real_execvpe(file, argv, envp));
}

int fexecve(int fd, char *const argv[], char *const envp[]) {
    if (!real_fexecve) {
        errno = ENOSYS;
        return -1;
    }
    AROUND_EXEC(real_fexecve(fd, argv, envp));
}

/* execl, execlp and execle: the arguments gathered into an array (glibc does the same). */
#define GATHER(arg, argv, count, ap)                                   \
    size_t count = 1;                                                  \
    va_start(ap, arg);                                                 \
    while (va_arg(ap, const char *)) count++;                          \
    va_end(ap);                                                        \
    const char *argv[count + 1];                                       \
    argv[0] = arg;                                                     \
    va_start(ap, arg);                                                 \
    for (size_t i_ = 1; i_ <= count; i_++) argv[i_] = va_arg(ap, const char *);

int execl(const char *path, const char *arg, ...) {
    va_list ap;
    GATHER(arg, argv, count, ap)
    va_end(ap);
    AROUND_EXEC(call_execve(path, (char *const *)argv, environ));
}

int execlp(const char *file, const char *arg, ...) {
    va_list ap;
    GATHER(arg, argv, count, ap)
    va_end(ap);
    AROUND_EXEC(call_execvp(file, (char *const *)argv));
}

int execle(const char *path, const char *arg, ...) {
    va_list ap;
    GATHER(arg, argv, count, ap)
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    AROUND_EXEC(call_execve(path, (char *const *)argv, envp));
}

/* _exit and _Exit skip atexit handlers and destructors: the image's data is written here.
 * (exit() reaches the kernel through glibc's own _exit, not through these.) */
__attribute__((noreturn)) void _exit(int status) {
    nommu_preload_image_ends("_exit");
    for (;;) syscall(SYS_exit_group, status);
}

__attribute__((noreturn)) void _Exit(int status) {
    nommu_preload_image_ends("_exit");
    for (;;) syscall(SYS_exit_group, status);
}
