/* SPDX-License-Identifier: Apache-2.0
 *
 * The kernel oracle's cases see the kernel through this syscall-shaped interface, written
 * once and run by two backends:
 *   - guest/: freestanding riscv64 code making the raw system calls of a real no-MMU Linux
 *     (a bFLT program that QEMU boots as /init, one boot per case);
 *   - host/:  the same calls through nommu.h, one fresh nommu system and process per case.
 * Every call returns what the kernel's system call returns: a value, or -errno. The cases
 * print normalised lines (errno names, booleans, sizes, addresses relative to the first one
 * the case was given), so the two backends' outputs compare line by line.
 *
 * No libc here: the guest has none. Flag values are Linux's generic ones (asm-generic), the
 * same on riscv64 and x86-64. */
#ifndef NOMMU_ORACLE_H
#define NOMMU_ORACLE_H

typedef unsigned long o_size;
typedef unsigned int o_u32;

/* <asm-generic/mman-common.h>, <asm-generic/mman.h> */
#define O_PROT_NONE 0x0
#define O_PROT_READ 0x1
#define O_PROT_WRITE 0x2
#define O_PROT_EXEC 0x4
#define O_PROT_SEM 0x8
#define O_MAP_SHARED 0x01
#define O_MAP_PRIVATE 0x02
#define O_MAP_SHARED_VALIDATE 0x03
#define O_MAP_FIXED 0x10
#define O_MAP_ANONYMOUS 0x20
#define O_MAP_GROWSDOWN 0x0100
#define O_MAP_DENYWRITE 0x0800
#define O_MAP_EXECUTABLE 0x1000
#define O_MAP_LOCKED 0x2000
#define O_MAP_NORESERVE 0x4000
#define O_MAP_POPULATE 0x8000
#define O_MAP_NONBLOCK 0x10000
#define O_MAP_STACK 0x20000
#define O_MAP_HUGETLB 0x40000
#define O_MAP_SYNC 0x80000
#define O_MAP_FIXED_NOREPLACE 0x100000
#define O_MAP_UNINITIALIZED 0x4000000
#define O_MREMAP_MAYMOVE 1
#define O_MREMAP_FIXED 2
#define O_MREMAP_DONTUNMAP 4

/* <asm-generic/fcntl.h> */
#define O_RDONLY_ 00
#define O_WRONLY_ 01
#define O_RDWR_ 02
#define O_CREAT_ 0100
#define O_EXCL_ 0200
#define O_TRUNC_ 01000
#define O_APPEND_ 02000
#define O_NONBLOCK_ 04000
#define O_DIRECTORY_ 0200000

/* <asm-generic/ipcbuf.h>, <linux/ipc.h>, <linux/shm.h> */
#define O_IPC_PRIVATE 0
#define O_IPC_CREAT 01000
#define O_IPC_EXCL 02000
#define O_IPC_RMID 0
#define O_IPC_STAT 2
#define O_SHM_RDONLY 010000
#define O_SHM_RND 020000

/* <linux/futex.h> */
#define O_FUTEX_WAIT 0
#define O_FUTEX_WAKE 1
#define O_FUTEX_PRIVATE_FLAG 128

/* Sockets (linux/socket.h, linux/net.h). */
#define O_AF_UNIX 1
#define O_AF_INET 2
#define O_SOCK_STREAM 1
#define O_SOCK_DGRAM 2
#define O_SOCK_RAW 3
#define O_SOCK_SEQPACKET 5
#define O_SOCK_PACKET 10

/* The errno values the cases name (asm-generic/errno-base.h, errno.h). */
#define O_EPERM 1
#define O_ENOENT 2
#define O_EBADF 9
#define O_EAGAIN 11
#define O_ENOMEM 12
#define O_EACCES 13
#define O_EFAULT 14
#define O_EBUSY 16
#define O_EEXIST 17
#define O_ENODEV 19
#define O_ENOTDIR 20
#define O_EISDIR 21
#define O_EINVAL 22
#define O_ETXTBSY 26
#define O_ENOSPC 28
#define O_ESPIPE 29
#define O_EPIPE 32
#define O_ENOSYS 38

/* ---- The calls (each backend implements them) ---- */
long o_mmap(void *addr, o_size len, int prot, int flags, int fd, long off);
long o_munmap(void *addr, o_size len);
long o_mremap(void *old, o_size old_len, o_size new_len, int flags);
long o_open(const char *path, int flags, int mode);
long o_close(int fd);
long o_read(int fd, void *buf, o_size count);
long o_write(int fd, const void *buf, o_size count);
long o_pread(int fd, void *buf, o_size count, long offset);
long o_pwrite(int fd, const void *buf, o_size count, long offset);
long o_ftruncate(int fd, long length);
long o_unlink(const char *path);
long o_pipe(int fds[2]);
long o_mkfifo(const char *path, int mode);
long o_socket(int domain, int type, int protocol);
long o_shmget(long key, o_size size, int flags);
long o_shmat(int id, const void *addr, int flags);
long o_shmdt(const void *addr);
long o_shmctl(int id, int cmd, void *buf);
long o_futex(o_u32 *word, int op, o_u32 value, const long timeout[2]);
long o_brk(void *addr);
long o_mprotect(void *addr, o_size len, int prot);
long o_madvise(void *addr, o_size len, int advice);
long o_mlock(void *addr, o_size len);
long o_msync(void *addr, o_size len, int flags);
long o_mincore(void *addr, o_size len, unsigned char *vec);
/* Runs `child` in a vfork child (sharing the caller's memory) until it returns, when the
 * child exits; returns the child's pid (> 0) or -errno. */
long o_vfork_run(void (*child)(void));
/* Runs the helper case `helper` (O_HELPER_LIST in cases.c) in a new process with an address
 * space of its own (the guest: vfork + execve of /init; the model: a new process), with
 * `arg` as o_arg, and waits until it exits; 0 or -errno. */
long o_spawn(const char *helper, const char *arg);
/* Starts a helper as o_spawn does but does not wait: it runs beside the caller (the guest:
 * the vfork'd child has exec'd when this returns; the model: the helper's process runs on a
 * thread of its own). A helper started so prints nothing. A handle (> 0) or -errno. */
long o_spawn_start(const char *helper, const char *arg);
/* Waits until the helper o_spawn_start started has exited; 0 or -errno. */
long o_spawn_wait(long handle);
/* Gives up the processor (sched_yield). */
long o_yield(void);
/* Per thread on the model, where a helper started by o_spawn_start runs on another thread
 * (the guest has no threads, and no thread-local storage). */
#ifndef O_THREAD_LOCAL
#define O_THREAD_LOCAL
#endif
/* A helper's argument (o_spawn's `arg`). */
extern O_THREAD_LOCAL const char *o_arg;
/* Runs the helper called `name`; 0 if there is none. */
int o_run_helper(const char *name);
/* `what: NAME`/hex helpers for passing an address to a helper. */
void o_hex(char *out, unsigned long v);
unsigned long o_unhex(const char *s);
/* `v` in decimal at `out`, terminated; the end (for building paths such as /proc/PID/maps). */
char *o_dec(char *out, unsigned long v);
/* Copies `s` (terminated) to `out`; the end, where the next part goes. */
char *o_cat(char *out, const char *s);
long o_getpid(void);
long o_setuid(unsigned int uid);

/* ---- Output (common.c) ---- */
/* Writes raw text (the backend's console). */
void o_emit(const char *text, o_size length);
/* `what: NAME` for a -errno, else `what: ok`. */
void o_ok(const char *what, long result);
/* `what: NAME` for a -errno, else `what: <decimal>`. */
void o_val(const char *what, long result);
/* `what: NAME` for a -errno, else `what: @+0x...` relative to the case's first address. */
void o_addr(const char *what, long result);
/* `what: yes` or `what: no`. */
void o_bool(const char *what, int value);
/* `what: <text>` (text up to the first NUL). */
void o_str(const char *what, const char *text);
/* Reads a whole file (e.g. /proc/self/maps) and prints it normalised: addresses relative to
 * the case's first one, device and inode numbers as `D` and `I`. */
void o_maps(const char *what, const char *path);
/* `/proc/meminfo`'s `MmapCopy` in kB. */
long o_mmap_copy_kb(void);
/* A /proc file's bytes into buf (NUL-terminated); the length or -errno. */
long o_read_file(const char *path, char *buf, o_size size);

/* ---- Helpers ---- */
void o_memset(void *p, int c, o_size n);
int o_all(const void *p, int c, o_size n);
o_size o_strlen(const char *s);
int o_is_error(long r);

/* The first address the case was given (0 until then); o_addr prints relative to it. */
extern O_THREAD_LOCAL unsigned long o_base;

/* ---- The cases (cases.c) ----
 * Found by name through code, not a table of pointers: the guest program carries no
 * absolute relocations. */
/* Runs the case called `name`; 0 if there is none. */
int o_run_case(const char *name);
/* The i-th case's name, or 0 past the last. */
const char *o_case_name(int i);
int o_same(const char *a, const char *b);

#endif
