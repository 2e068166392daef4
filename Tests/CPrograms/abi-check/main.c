/* SPDX-License-Identifier: Apache-2.0
 * nommu-abi-check: the C ABI, row by row (rows numbered as in Tests/NommuMMTests), as a C
 * program sees it: return values, the exact errno, and out-parameters left untouched on
 * failure. Prints one line per failed check and a closing "N passed, M failed"; exits 1 if
 * anything failed. */
#include "nommu.h"

#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static int passed, failed;

#define CHECK(cond, what)                                                                                              \
    do {                                                                                                               \
        if (cond) {                                                                                                    \
            passed++;                                                                                                  \
        } else {                                                                                                       \
            failed++;                                                                                                  \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, what);                                                      \
        }                                                                                                              \
    } while (0)

/* A call that must fail with `err`; errno is cleared first so a stale value cannot pass. */
#define EXPECT_ERRNO(call, failure, err, what)                                                                         \
    do {                                                                                                               \
        errno = 0;                                                                                                     \
        int ok_ = ((call) == (failure)) && errno == (err);                                                             \
        if (!ok_) printf("  (errno %d: %s)\n", errno, strerror(errno));                                                \
        CHECK(ok_, what);                                                                                              \
    } while (0)

#define PAGE 4096

/* Writes vm.nr_trim_pages through /proc, as sysctl(8) does. */
static int set_trim(nommu_process *p, const char *value) {
    int fd = nommu_open(p, "/proc/sys/vm/nr_trim_pages", O_WRONLY);
    if (fd < 0) return -1;
    ssize_t n = nommu_write(p, fd, value, strlen(value));
    nommu_close(p, fd);
    return n < 0 ? -1 : 0;
}

static uint64_t mmap_pages(nommu_system *sys) {
    struct nommu_stats st;
    st.size = sizeof st;
    return nommu_get_stats(sys, &st) == 0 ? st.mmap_pages_allocated : (uint64_t)-1;
}

/* Reads a whole /proc file into buf. */
static void read_proc(nommu_process *p, const char *path, char *buf, size_t size) {
    int fd = nommu_open(p, path, O_RDONLY);
    size_t total = 0;
    ssize_t n;
    while (fd >= 0 && total + 1 < size && (n = nommu_read(p, fd, buf + total, size - 1 - total)) > 0) total += (size_t)n;
    buf[total] = 0;
    if (fd >= 0) nommu_close(p, fd);
}

/* Trim rule, slack, uninitialised and shared-anonymous rows, /proc text rows, split limit. */
static void more_rows(void) {
    struct nommu_config config;
    nommu_config_init(&config);
    config.arena_bytes = 300u << 20; /* room for 65530 one-page mappings */
    config.allow_uninitialized = 1;
    nommu_system *sys = nommu_system_create(&config);
    nommu_process *p = nommu_process_create(sys);
    nommu_process *q = nommu_process_create(sys);
    const int anon = MAP_PRIVATE | MAP_ANONYMOUS, rw = PROT_READ | PROT_WRITE;
    char expect[256], text[8192];

    /* Rows 25-28: 3 pages keep 3 (trim 1), 4 (trim 0), 4 (trim 2); 5 pages with trim 2 keep 5. */
    static const struct {
        const char *trim;
        size_t pages;
        uint64_t kept;
    } rows[] = {{"1", 3, 3}, {"0", 3, 4}, {"2", 3, 4}, {"2", 5, 5}, {"0", 4, 4}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CHECK(set_trim(p, rows[i].trim) == 0, "write nr_trim_pages");
        void *a = nommu_mmap(p, NULL, rows[i].pages * PAGE, rw, anon, -1, 0);
        CHECK(a != MAP_FAILED && mmap_pages(sys) == rows[i].kept, "rows 25-28 trim rule");
        nommu_munmap(p, a, rows[i].pages * PAGE);
    }
    /* Row 26: the slack page is not cleared; row 53: a tail cut frees the last page and the slack. */
    set_trim(p, "0");
    unsigned char *d = nommu_mmap(p, NULL, 4 * PAGE, rw, anon, -1, 0);
    memset(d, 0x5C, 4 * PAGE);
    nommu_munmap(p, d, 4 * PAGE);
    unsigned char *s3 = nommu_mmap(p, NULL, 3 * PAGE, rw, anon, -1, 0);
    CHECK(s3 == d && s3[0] == 0 && (s3[3 * PAGE] == 0x5C || s3[3 * PAGE] == 0xDF), "row 26 the slack is not cleared");
    CHECK(nommu_munmap(p, s3 + 2 * PAGE, PAGE) == 0 && mmap_pages(sys) == 2, "row 53 tail cut frees the slack");
    /* Row 66: growing into the slack is ENOMEM. */
    unsigned char *g = nommu_mmap(p, NULL, 3 * PAGE, rw, anon, -1, 0);
    EXPECT_ERRNO(nommu_mremap(p, g, 3 * PAGE, 4 * PAGE, 0), MAP_FAILED, ENOMEM, "row 66 into the slack");
    nommu_munmap(p, g, 3 * PAGE);
    nommu_munmap(p, s3, 2 * PAGE);
    set_trim(p, "1");
    /* Row 52: a front cut. */
    char *f = nommu_mmap(p, NULL, 3 * PAGE, rw, anon, -1, 0);
    CHECK(nommu_munmap(p, f, PAGE) == 0 && mmap_pages(sys) == 2, "row 52 front cut");
    EXPECT_ERRNO(nommu_munmap(p, f, 3 * PAGE), -1, EINVAL, "row 56 the old range is gone");
    nommu_munmap(p, f + PAGE, 2 * PAGE);
    /* Row 32: MAP_UNINITIALIZED allowed leaves the previous bytes (or the checked-build poison). */
    unsigned char *u = nommu_mmap(p, NULL, PAGE, rw, anon, -1, 0);
    memset(u, 0x77, PAGE);
    nommu_munmap(p, u, PAGE);
    unsigned char *u2 = nommu_mmap(p, NULL, PAGE, rw, anon | MAP_UNINITIALIZED, -1, 0);
    CHECK(u2 == u && (u2[0] == 0x77 || u2[0] == 0xA5), "row 32 not cleared when allowed");
    nommu_munmap(p, u2, PAGE);
    /* Row 33: MAP_SHARED|MAP_ANONYMOUS is private: another process gets other memory. */
    char *sa = nommu_mmap(p, NULL, 2 * PAGE, rw, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char *sb = nommu_mmap(q, NULL, 2 * PAGE, rw, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sa != MAP_FAILED && sb != MAP_FAILED && sa != sb, "row 33 shared anonymous is private");
    CHECK(nommu_munmap(p, sa + PAGE, PAGE) == 0, "row 33 may be cut");
    /* Rows 68-70: /proc/maps lists regions, /proc/<pid>/maps the VMA after an mremap shrink. */
    CHECK(nommu_mremap(q, sb, 2 * PAGE, PAGE, 0) == sb, "mremap shrink");
    snprintf(expect, sizeof expect, "%08lx-%08lx rw-p 00000000 00:00 0 \n", (unsigned long)sb,
             (unsigned long)(sb + 2 * PAGE));
    read_proc(p, "/proc/maps", text, sizeof text);
    CHECK(strstr(text, expect) != NULL, "rows 68/70 /proc/maps shows the whole region");
    snprintf(expect, sizeof expect, "%08lx-%08lx rw-p 00000000 00:00 0 \n", (unsigned long)sb,
             (unsigned long)(sb + PAGE));
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", nommu_getpid(q));
    read_proc(q, path, text, sizeof text);
    CHECK(strcmp(text, expect) == 0, "row 70 /proc/<pid>/maps shows the shrunk VMA");
    int rootfd = nommu_open(p, path, O_RDONLY);
    CHECK(rootfd >= 0 && nommu_close(p, rootfd) == 0, "root reads another process's maps");
    CHECK(nommu_getuid(p) == 0 && nommu_setuid(q, 1000) == 0 && nommu_setuid(p, 1001) == 0, "setuid");
    EXPECT_ERRNO(nommu_open(p, path, O_RDONLY), -1, EACCES, "another user's process's maps are not readable");
    EXPECT_ERRNO(nommu_setuid(p, 0), -1, EPERM, "a user cannot become root");
    read_proc(q, "/proc/self/status", text, sizeof text);
    CHECK(strstr(text, "Slack:\t    4096 bytes\n") != NULL, "/proc/<pid>/status Slack");
    nommu_munmap(p, sa, PAGE);
    nommu_munmap(q, sb, PAGE);
    /* Row 55: a middle cut with 65530 mappings is ENOMEM; a front cut still works. */
    char *big = nommu_mmap(p, NULL, 3 * PAGE, rw, anon, -1, 0);
    int made = 1;
    while (made < 65530 && nommu_mmap(p, NULL, PAGE, rw, anon, -1, 0) != MAP_FAILED) made++;
    CHECK(made == 65530, "65530 mappings");
    EXPECT_ERRNO(nommu_munmap(p, big + PAGE, PAGE), -1, ENOMEM, "row 55 the split limit");
    CHECK(nommu_munmap(p, big, PAGE) == 0, "row 55 a front cut needs no split");
    nommu_process_exit(p);
    nommu_process_exit(q);
    CHECK(mmap_pages(sys) == 0, "exit releases 65530 mappings");
    nommu_system_destroy(sys);
}

/* Files, devices and shared memory: rows 12-23, 34-39, 41-48, 58, 64, 69, 74-77. */
static void file_rows(void) {
    nommu_system *sys = nommu_system_create(NULL);
    nommu_process *p = nommu_process_create(sys);
    nommu_process *q = nommu_process_create(sys);
    const int rw = PROT_READ | PROT_WRITE;
    char text[8192];
    unsigned char data[6000];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 7 + 1);

    /* Rows 12-13: pipes and FIFOs have no mmap (ENODEV); sockets are EINVAL. */
    int fds[2] = {-7, -7};
    CHECK(nommu_pipe(p, fds) == 0 && fds[0] >= 0 && fds[1] >= 0, "pipe");
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_PRIVATE, fds[0], 0), MAP_FAILED, ENODEV, "row 12 pipe");
    CHECK(nommu_mkfifo(p, "/tmp/fifo", 0600) == 0, "mkfifo");
    EXPECT_ERRNO(nommu_mkfifo(p, "/tmp/fifo", 0600), -1, EEXIST, "mkfifo twice");
    int fifo = nommu_open(p, "/tmp/fifo", O_RDWR);
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_SHARED, fifo, 0), MAP_FAILED, ENODEV, "row 12 FIFO");
    int sock = nommu_socket(p, AF_UNIX, SOCK_STREAM, 0);
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_SHARED, sock, 0), MAP_FAILED, EINVAL, "row 13 socket");
    CHECK(nommu_write(p, fds[1], "ab", 2) == 2 && nommu_read(p, fds[0], text, 8) == 2 && text[1] == 'b', "pipe data");

    /* Rows 14-17, 22. */
    /* /tmp/f is written a page at a time, between pages of /tmp/g: not contiguous in order. */
    int f = nommu_open(p, "/tmp/f", O_RDWR | O_CREAT | O_EXCL, 0600);
    int g = nommu_open(p, "/tmp/g", O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(f >= 0 && nommu_write(p, f, data, PAGE) == PAGE && nommu_write(p, g, data, PAGE) == PAGE &&
              nommu_write(p, f, data + PAGE, sizeof data - PAGE) == (ssize_t)(sizeof data - PAGE),
          "tmpfs write");
    EXPECT_ERRNO(nommu_open(p, "/tmp/f", O_RDWR | O_CREAT | O_EXCL, 0600), -1, EEXIST, "O_EXCL");
    int wo = nommu_open(p, "/tmp/f", O_WRONLY);
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_PRIVATE, wo, 0), MAP_FAILED, EACCES, "row 14 private");
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_SHARED, wo, 0), MAP_FAILED, EACCES, "row 14 shared");
    int ro = nommu_open(p, "/tmp/f", O_RDONLY);
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, rw, MAP_SHARED, ro, 0), MAP_FAILED, EACCES, "row 15");
    int shm = nommu_shm_open(p, "/seg", O_RDWR | O_CREAT, 0600);
    CHECK(shm >= 0 && nommu_ftruncate(p, shm, 2 * PAGE) == 0, "shm_open + ftruncate");
    int app = nommu_open(p, "/dev/shm/seg", O_RDWR | O_APPEND);
    CHECK(nommu_set_append_only(p, app, 1) == 0, "chattr +a");
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_SHARED, app, 0), MAP_FAILED, EACCES, "row 16");
    EXPECT_ERRNO(nommu_ftruncate(p, app, 0), -1, EPERM, "ftruncate append-only");
    CHECK(nommu_set_append_only(p, app, 0) == 0, "chattr -a");
    int d = nommu_open(p, "/data/six", O_RDWR | O_CREAT, 0644);
    CHECK(d >= 0 && nommu_write(p, d, data, sizeof data) == (ssize_t)sizeof data, "disk write");
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_SHARED, d, 0), MAP_FAILED, ENODEV, "row 17");
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ | PROT_EXEC, MAP_SHARED, shm, 0), MAP_FAILED, EPERM, "row 22");

    /* Rows 18-20, 23: devices. */
    int fb = nommu_open(p, "/dev/fb0", O_RDWR);
    int zero = nommu_open(p, "/dev/zero", O_RDWR);
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_SHARED, zero, 0), MAP_FAILED, ENODEV, "rows 18/23");
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ | PROT_EXEC, MAP_SHARED, fb, 0), MAP_FAILED, EINVAL, "row 19");
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_PRIVATE, fb, 0), MAP_FAILED, ENODEV, "row 20");
    unsigned char *z = nommu_mmap(p, NULL, PAGE, rw, MAP_PRIVATE, zero, 0);
    CHECK(z != MAP_FAILED && z[0] == 0 && z[PAGE - 1] == 0, "row 23 private /dev/zero");
    unsigned char *video = nommu_mmap(p, NULL, 2 * PAGE, rw, MAP_SHARED, fb, 0);
    CHECK(video != MAP_FAILED, "fb0 shared");
    EXPECT_ERRNO(nommu_futex(p, (uint32_t *)video, FUTEX_WAKE, 1, NULL), -1, EPERM, "row 74 device memory");
    int tty = nommu_open(p, "/dev/ttyS0", O_RDWR);
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_SHARED, tty, 0), MAP_FAILED, ENODEV, "ttyS0");

    /* Rows 34, 36-39: private copies of a disk file, shared when read-only. */
    uint64_t before = mmap_pages(sys);
    int dq = nommu_open(q, "/data/six", O_RDONLY);
    unsigned char *c1 = nommu_mmap(p, NULL, 8192, PROT_READ, MAP_PRIVATE, d, 0);
    unsigned char *c2 = nommu_mmap(q, NULL, 8192, PROT_READ, MAP_PRIVATE, dq, 0);
    CHECK(c1 != MAP_FAILED && memcmp(c1, data, sizeof data) == 0 && c1[6000] == 0 && c1[8191] == 0, "row 34");
    CHECK(c2 == c1 && mmap_pages(sys) == before + 2, "row 36 one copy, two processes");
    unsigned char *inner = nommu_mmap(q, NULL, PAGE, PROT_READ, MAP_PRIVATE, dq, PAGE);
    CHECK(inner == c1 + PAGE, "row 37 inner range");
    unsigned char *own = nommu_mmap(p, NULL, 8192, rw, MAP_PRIVATE, d, 0);
    CHECK(own != MAP_FAILED && own != c1 && mmap_pages(sys) == before + 4, "row 39 writable: own copy");
    CHECK(nommu_pwrite(p, d, "X", 1, 0) == 1 && c1[0] == data[0], "later writes not in the copy");
    int other = nommu_open(p, "/data/other", O_RDWR | O_CREAT, 0644);
    CHECK(nommu_ftruncate(p, other, 4 * PAGE) == 0, "disk ftruncate");
    void *o2 = nommu_mmap(p, NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, other, 0);
    EXPECT_ERRNO(nommu_mmap(p, NULL, 4 * PAGE, PROT_READ, MAP_PRIVATE, other, 0), MAP_FAILED, EINVAL, "row 38");
    EXPECT_ERRNO(nommu_munmap(p, c1, PAGE), -1, EINVAL, "row 58 front");
    EXPECT_ERRNO(nommu_munmap(p, c1 + PAGE, PAGE), -1, EINVAL, "row 58 back");
    EXPECT_ERRNO(nommu_mremap(p, c1, 8192, PAGE, 0), MAP_FAILED, EPERM, "row 64");
    CHECK(nommu_munmap(p, c1, 8192) == 0 && nommu_munmap(p, o2, 2 * PAGE) == 0, "whole file unmaps");

    /* Rows 41-48: tmpfs. */
    unsigned char *s1 = nommu_mmap(p, NULL, 2 * PAGE, rw, MAP_SHARED, shm, 0);
    int shmq = nommu_shm_open(q, "seg", O_RDWR, 0);
    unsigned char *s2 = nommu_mmap(q, NULL, 2 * PAGE, rw, MAP_SHARED, shmq, 0);
    CHECK(s1 != MAP_FAILED && s1 == s2, "row 41 same address");
    s1[100] = 42;
    CHECK(s2[100] == 42, "row 41 data shared");
    EXPECT_ERRNO(nommu_mmap(p, NULL, 3 * PAGE, PROT_READ, MAP_SHARED, shm, 0), MAP_FAILED, ENODEV, "row 42 past EOF");
    EXPECT_ERRNO(nommu_mmap(p, NULL, 2 * PAGE, PROT_READ, MAP_SHARED, f, 0), MAP_FAILED, ENODEV,
                 "row 43 write()-filled pages");
    unsigned char *ov = nommu_mmap(q, NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, shmq, 0);
    CHECK(ov == s1, "row 44 private overlay in place");
    int big = nommu_open(p, "/tmp/big", O_RDWR | O_CREAT, 0600);
    EXPECT_ERRNO(nommu_ftruncate(p, big, (off_t)1 << 32), -1, EFBIG, "row 45");
    EXPECT_ERRNO(nommu_ftruncate(p, shm, PAGE), -1, ETXTBSY, "row 46");
    CHECK(nommu_ftruncate(p, big, PAGE) == 0 && nommu_ftruncate(p, big, 3 * PAGE) == 0, "row 48 grow");
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_SHARED, big, 2 * PAGE), MAP_FAILED, ENODEV, "row 48 tail");

    /* Row 69: /proc/maps format for a shared tmpfs region. */
    read_proc(p, "/proc/maps", text, sizeof text);
    char *line = strstr(text, "/dev/shm/seg");
    char *bol = line;
    while (bol && bol > text && bol[-1] != '\n') bol--;
    CHECK(line && line - bol == 73 && strstr(bol, " rw-S 00000000 00:17 ") && strstr(bol, " rw-S ") < line,
          "row 69 S, device, path at column 73");

    /* Rows 75-77: SysV. */
    int id = nommu_shmget(p, 0x4242, 5000, IPC_CREAT | 0600);
    CHECK(id >= 0, "row 77 shmget");
    void *a1 = nommu_shmat(p, id, NULL, 0);
    void *a2 = nommu_shmat(q, id, NULL, SHM_RDONLY);
    CHECK(a1 != MAP_FAILED && a1 == a2 && ((unsigned char *)a2)[4999] == 0, "shmat: one address, zeroed");
    EXPECT_ERRNO(nommu_shmat(p, id, a1, 0), MAP_FAILED, EINVAL, "row 75");
    EXPECT_ERRNO(nommu_shmdt(p, (char *)a1 + PAGE), -1, EINVAL, "row 76");
    struct shmid_ds ds;
    memset(&ds, 0xAB, sizeof ds);
    EXPECT_ERRNO(nommu_shmctl(p, id + 99, IPC_STAT, &ds), -1, EINVAL, "IPC_STAT unknown id");
    CHECK(ds.shm_segsz == (size_t)0xABABABABABABABABull, "shmid_ds untouched on failure");
    CHECK(nommu_shmctl(p, id, IPC_STAT, &ds) == 0 && ds.shm_nattch == 2 && ds.shm_segsz == 5000, "IPC_STAT");
    CHECK(nommu_shmctl(p, id, IPC_RMID, NULL) == 0 && nommu_shmdt(p, a1) == 0, "IPC_RMID, shmdt");
    EXPECT_ERRNO(nommu_shmget(q, 0x4242, 0, 0), -1, ENOENT, "key gone");

    /* romfs and the flash window. */
    static const char rom[] = "#!/bin/sh\necho rom\n";
    CHECK(nommu_romfs_add(sys, "/rom/bin/hello", rom, sizeof rom) == 0, "romfs_add");
    EXPECT_ERRNO(nommu_romfs_add(sys, "/rom/bin/hello", rom, sizeof rom), -1, EEXIST, "romfs_add twice");
    int r = nommu_open(p, "/rom/bin/hello", O_RDONLY);
    EXPECT_ERRNO(nommu_romfs_add(sys, "/rom/bin/hello", rom, 1), -1, EBUSY, "romfs_add after open");
    const char *x1 = nommu_mmap(p, NULL, sizeof rom, PROT_READ | PROT_EXEC, MAP_PRIVATE, r, 0);
    CHECK(x1 != MAP_FAILED && memcmp(x1, rom, sizeof rom) == 0 && mmap_pages(sys) == before + 4,
          "XIP: no copy (MmapCopy counts the two /data copies only)");
    CHECK(nommu_flash_set_mode(sys, "/dev/mtd0", NOMMU_FLASH_PROGRAM) == 0 && (unsigned char)x1[0] == 0x80 &&
              x1[1] == 0,
          "program mode: the status word");
    EXPECT_ERRNO(nommu_flash_set_mode(sys, "/dev/mtd0", 7), -1, EINVAL, "bad mode");
    CHECK(nommu_flash_set_mode(sys, "/dev/mtd0", NOMMU_FLASH_READ) == 0 && x1[0] == '#', "read mode: the data");

    /* Descriptor errors, out-parameters untouched. */
    EXPECT_ERRNO(nommu_open(p, "/nowhere", O_RDONLY), -1, ENOENT, "outside the tree");
    EXPECT_ERRNO(nommu_open(p, "/rom/x", O_WRONLY | O_CREAT, 0600), -1, EROFS, "EROFS");
    EXPECT_ERRNO(nommu_pread(p, fds[0], text, 1, 0), -1, ESPIPE, "pread on a pipe");
    EXPECT_ERRNO(nommu_unlink(p, "/tmp/none"), -1, ENOENT, "unlink missing");
    EXPECT_ERRNO(nommu_close(q, f), -1, EBADF, "another process's descriptor");
    EXPECT_ERRNO(nommu_open(p, NULL, O_RDONLY), -1, EFAULT, "NULL path");
    int out[2] = {-7, -7};
    EXPECT_ERRNO(nommu_pipe(NULL, out), -1, EINVAL, "NULL process");
    CHECK(out[0] == -7 && out[1] == -7, "pipe fds untouched on failure");

    nommu_process_exit(q);
    nommu_process_exit(p);
    nommu_system_destroy(sys);
}

/* Program loading: nommu_exec_elf and nommu_brk, with a real binary from the host. */
static void exec_rows(void) {
    FILE *host = fopen("/bin/ls", "rb");
    if (!host) return;
    static unsigned char image[4 << 20];
    size_t len = fread(image, 1, sizeof image, host);
    fclose(host);
    nommu_system *sys = nommu_system_create(NULL);
    nommu_process *a = nommu_process_create(sys);
    nommu_process *b = nommu_process_create(sys);
    CHECK(nommu_romfs_add(sys, "/rom/bin/ls", image, len) == 0, "romfs_add /bin/ls");
    struct nommu_image ia, ib, untouched;
    memset(&ia, 0, sizeof ia);
    ia.size = ib.size = sizeof ia;
    CHECK(nommu_exec_elf(a, "/rom/bin/ls", &ia) == 0 && nommu_exec_elf(b, "/rom/bin/ls", &ib) == 0, "exec twice");
    CHECK(ia.text == ib.text && ia.text_in_place && ia.data != ib.data, "XIP text shared, data private");
    CHECK(ia.nsegments >= 2 && ia.segments[0].address != NULL, "segments listed");
    CHECK(ia.stack_size == 131072 && (char *)ia.start_stack == (char *)ia.start_brk + ia.stack_size, "stack");
    char text[8192];
    read_proc(a, "/proc/self/maps", text, sizeof text);
    CHECK(strstr(text, "[stack]") && strstr(text, "/rom/bin/ls"), "maps: [stack] and the program");
    CHECK(nommu_brk(a, NULL) == ia.start_brk, "brk(NULL) is the current break");
    CHECK(ia.end_brk == ia.start_brk, "ELF-FDPIC leaves brk no room (end_brk = start_brk)");
    CHECK(nommu_brk(a, (char *)ia.start_brk + 100) == ia.start_brk, "row 80: brk beyond end_brk: unchanged");
    int fd = nommu_open(a, "/tmp/script", O_WRONLY | O_CREAT, 0755);
    nommu_write(a, fd, "#!/bin/sh\n", 10);
    nommu_close(a, fd);
    memset(&untouched, 0xAB, sizeof untouched);
    untouched.size = sizeof untouched;
    struct nommu_image copy = untouched;
    EXPECT_ERRNO(nommu_exec_elf(a, "/tmp/script", &untouched), -1, ENOEXEC, "ENOEXEC");
    CHECK(memcmp(&copy, &untouched, sizeof copy) == 0, "image untouched on failure");
    EXPECT_ERRNO(nommu_exec_elf(a, "/dev/zero", NULL), -1, EACCES, "not a regular file");
    ib.size = 8;
    EXPECT_ERRNO(nommu_exec_elf(b, "/rom/bin/ls", &ib), -1, EINVAL, "image size too small");
    nommu_process_exit(a);
    nommu_process_exit(b);
    nommu_system_destroy(sys);
}

/* The malloc layer's C contracts. */
static void malloc_rows(void) {
    nommu_system *sys = nommu_system_create(NULL);
    for (int policy = NOMMU_MALLOC_HEAP; policy <= NOMMU_MALLOC_SIMPLE; policy++) {
        nommu_process *p = nommu_process_create(sys);
        struct nommu_malloc_config mc;
        nommu_malloc_config_init(&mc);
        mc.policy = policy;
        CHECK(nommu_malloc_configure(p, &mc) == 0, "configure");
        char *a = nommu_malloc(p, 100);
        CHECK(a && ((uintptr_t)a & 15) == 0 && nommu_malloc_usable_size(p, a) >= 100, "malloc");
        EXPECT_ERRNO(nommu_malloc_configure(p, &mc), -1, EBUSY, "configure after the first allocation");
        char *z0 = nommu_malloc(p, 0), *z1 = nommu_malloc(p, 0);
        CHECK(z0 && z1 && z0 != z1, "malloc(0) unique");
        memset(a, 7, 100);
        a = nommu_realloc(p, a, 100000);
        CHECK(a && a[99] == 7, "realloc grows and keeps");
        CHECK(nommu_realloc(p, a, 0) == NULL, "realloc(p, 0) frees");
        unsigned char *c = nommu_calloc(p, 1000, 10);
        int zero = c != NULL;
        for (int i = 0; c && i < 10000; i++) zero &= c[i] == 0;
        CHECK(zero, "calloc zeroed");
        EXPECT_ERRNO(nommu_calloc(p, SIZE_MAX / 2, 3), NULL, ENOMEM, "calloc overflow");
        EXPECT_ERRNO(nommu_malloc(p, SIZE_MAX - 8), NULL, ENOMEM, "malloc too big");
        void *out = (void *)0x1234;
        CHECK(nommu_posix_memalign(p, &out, 24, 10) == EINVAL && out == (void *)0x1234, "memalign EINVAL, untouched");
        CHECK(nommu_posix_memalign(p, &out, 4096, 10) == 0 && ((uintptr_t)out & 4095) == 0, "memalign 4096");
        nommu_free(p, out);
        nommu_free(p, c);
        errno = 0;
        nommu_free(p, c);
        CHECK(errno == EINVAL, "double free refused");
        nommu_free(p, NULL);
        nommu_free(p, z0);
        nommu_free(p, z1);
        nommu_process_exit(p);
    }
    struct nommu_stats st;
    st.size = sizeof st;
    CHECK(nommu_get_stats(sys, &st) == 0 && st.allocated_pages == 0, "malloc: every page back");
    nommu_system_destroy(sys);
}

/* The bad-input table (its Swift half is BadInputTableTests), through every public function:
 * null handles and pointers, closed, foreign and negative descriptors. Each call fails with
 * the libc errno and changes nothing (the stats are compared at the end). */
static void null_and_bad_rows(void) {
    nommu_system *sys = nommu_system_create(NULL);
    nommu_process *p = nommu_process_create(sys);
    nommu_process *q = nommu_process_create(sys);
    struct nommu_stats before, after;
    before.size = after.size = sizeof before;
    nommu_get_stats(sys, &before);
    char buf[16];
    int fds[2] = {-7, -7};
    void *out = (void *)0x1234;
    struct shmid_ds ds;
    struct nommu_image img;
    img.size = sizeof img;
    nommu_process *n = NULL;
    nommu_system *ns = NULL;
    /* Null handles: EINVAL everywhere. */
    EXPECT_ERRNO(nommu_vfork(n), NULL, EINVAL, "vfork(NULL)");
    EXPECT_ERRNO(nommu_fork(n), -1, EINVAL, "fork(NULL)");
    EXPECT_ERRNO(nommu_getpid(n), -1, EINVAL, "getpid(NULL)");
    EXPECT_ERRNO(nommu_mmap2(n, NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), MAP_FAILED, EINVAL, "mmap2(NULL)");
    EXPECT_ERRNO(nommu_munmap(n, buf, 4096), -1, EINVAL, "munmap(NULL)");
    EXPECT_ERRNO(nommu_mremap(n, buf, 4096, 4096, 0), MAP_FAILED, EINVAL, "mremap(NULL)");
    EXPECT_ERRNO(nommu_futex(n, (uint32_t *)buf, FUTEX_WAKE, 1, NULL), -1, EINVAL, "futex(NULL)");
    EXPECT_ERRNO(nommu_mprotect(n, buf, 4096, PROT_READ), -1, EINVAL, "mprotect(NULL)");
    EXPECT_ERRNO(nommu_madvise(n, buf, 4096, 0), -1, EINVAL, "madvise(NULL)");
    EXPECT_ERRNO(nommu_open(n, "/tmp/x", O_RDONLY), -1, EINVAL, "open(NULL)");
    EXPECT_ERRNO(nommu_close(n, 0), -1, EINVAL, "close(NULL)");
    EXPECT_ERRNO(nommu_read(n, 0, buf, 1), -1, EINVAL, "read(NULL)");
    EXPECT_ERRNO(nommu_write(n, 0, buf, 1), -1, EINVAL, "write(NULL)");
    EXPECT_ERRNO(nommu_pread(n, 0, buf, 1, 0), -1, EINVAL, "pread(NULL)");
    EXPECT_ERRNO(nommu_pwrite(n, 0, buf, 1, 0), -1, EINVAL, "pwrite(NULL)");
    EXPECT_ERRNO(nommu_ftruncate(n, 0, 0), -1, EINVAL, "ftruncate(NULL)");
    EXPECT_ERRNO(nommu_unlink(n, "/tmp/x"), -1, EINVAL, "unlink(NULL)");
    EXPECT_ERRNO(nommu_pipe(n, fds), -1, EINVAL, "pipe(NULL)");
    EXPECT_ERRNO(nommu_mkfifo(n, "/tmp/f", 0600), -1, EINVAL, "mkfifo(NULL)");
    EXPECT_ERRNO(nommu_socket(n, AF_UNIX, SOCK_STREAM, 0), -1, EINVAL, "socket(NULL)");
    EXPECT_ERRNO(nommu_set_append_only(n, 0, 1), -1, EINVAL, "set_append_only(NULL)");
    EXPECT_ERRNO(nommu_romfs_add(ns, "/rom/x", buf, 1), -1, EINVAL, "romfs_add(NULL)");
    EXPECT_ERRNO(nommu_flash_set_mode(ns, "/dev/mtd0", 0), -1, EINVAL, "flash_set_mode(NULL)");
    EXPECT_ERRNO(nommu_shmget(n, 0, 4096, IPC_CREAT), -1, EINVAL, "shmget(NULL)");
    EXPECT_ERRNO(nommu_shmat(n, 0, NULL, 0), MAP_FAILED, EINVAL, "shmat(NULL)");
    EXPECT_ERRNO(nommu_shmdt(n, buf), -1, EINVAL, "shmdt(NULL)");
    EXPECT_ERRNO(nommu_shmctl(n, 0, IPC_STAT, &ds), -1, EINVAL, "shmctl(NULL)");
    EXPECT_ERRNO(nommu_shm_open(n, "/x", O_RDWR, 0), -1, EINVAL, "shm_open(NULL)");
    EXPECT_ERRNO(nommu_shm_unlink(n, "/x"), -1, EINVAL, "shm_unlink(NULL)");
    EXPECT_ERRNO(nommu_exec_elf(n, "/rom/x", &img), -1, EINVAL, "exec_elf(NULL)");
    EXPECT_ERRNO(nommu_brk(n, NULL), NULL, EINVAL, "brk(NULL)");
    EXPECT_ERRNO(nommu_malloc(n, 8), NULL, EINVAL, "malloc(NULL)");
    EXPECT_ERRNO(nommu_calloc(n, 1, 8), NULL, EINVAL, "calloc(NULL)");
    EXPECT_ERRNO(nommu_realloc(n, NULL, 8), NULL, EINVAL, "realloc(NULL)");
    CHECK(nommu_posix_memalign(n, &out, 16, 8) == EINVAL && out == (void *)0x1234, "posix_memalign(NULL)");
    CHECK(nommu_malloc_usable_size(n, buf) == 0, "malloc_usable_size(NULL)");
    EXPECT_ERRNO(nommu_alloc_pages(ns, 0, 0), NULL, EINVAL, "alloc_pages(NULL)");
    EXPECT_ERRNO(nommu_free_pages(ns, buf, 0), -1, EINVAL, "free_pages(NULL)");
    EXPECT_ERRNO(nommu_alloc_pages_exact(ns, 4096, 0), NULL, EINVAL, "alloc_pages_exact(NULL)");
    EXPECT_ERRNO(nommu_free_pages_exact(ns, buf, 4096), -1, EINVAL, "free_pages_exact(NULL)");
    nommu_process_exit(n);
    nommu_system_destroy(ns);
    /* Null pointers: EFAULT (or EINVAL where the kernel would say so). */
    EXPECT_ERRNO(nommu_open(p, NULL, O_RDONLY), -1, EFAULT, "open(path NULL)");
    EXPECT_ERRNO(nommu_unlink(p, NULL), -1, EFAULT, "unlink(path NULL)");
    EXPECT_ERRNO(nommu_mkfifo(p, NULL, 0600), -1, EFAULT, "mkfifo(path NULL)");
    EXPECT_ERRNO(nommu_pipe(p, NULL), -1, EFAULT, "pipe(fds NULL)");
    EXPECT_ERRNO(nommu_exec_elf(p, NULL, &img), -1, EFAULT, "exec_elf(path NULL)");
    EXPECT_ERRNO(nommu_shm_open(p, NULL, O_RDWR, 0), -1, EFAULT, "shm_open(name NULL)");
    /* (shmid 0 names no segment here: EINVAL comes first; extreme_rows has a live one.) */
    EXPECT_ERRNO(nommu_shmctl(p, 0, IPC_STAT, NULL), -1, EINVAL, "shmctl(no such id, buf NULL)");
    EXPECT_ERRNO(nommu_get_stats(sys, NULL), -1, EINVAL, "get_stats(NULL)");
    /* Closed, negative, huge and foreign descriptors: EBADF. */
    int mine = nommu_open(p, "/tmp/mine", O_RDWR | O_CREAT, 0600);
    int fdset[] = {-1, -1000, 1000, 1 << 30};
    for (size_t i = 0; i < sizeof fdset / sizeof fdset[0]; i++) {
        EXPECT_ERRNO(nommu_read(p, fdset[i], buf, 1), -1, EBADF, "read(bad fd)");
        EXPECT_ERRNO(nommu_write(p, fdset[i], buf, 1), -1, EBADF, "write(bad fd)");
        EXPECT_ERRNO(nommu_close(p, fdset[i]), -1, EBADF, "close(bad fd)");
        EXPECT_ERRNO(nommu_ftruncate(p, fdset[i], 0), -1, EBADF, "ftruncate(bad fd)");
        EXPECT_ERRNO(nommu_mmap(p, NULL, 4096, PROT_READ, MAP_PRIVATE, fdset[i], 0), MAP_FAILED, EBADF, "mmap(bad fd)");
    }
    EXPECT_ERRNO(nommu_read(q, mine, buf, 1), -1, EBADF, "read(foreign fd)");
    EXPECT_ERRNO(nommu_close(q, mine), -1, EBADF, "close(foreign fd)");
    EXPECT_ERRNO(nommu_pwrite(p, mine, buf, 1, -1), -1, EINVAL, "pwrite(negative offset)");
    EXPECT_ERRNO(nommu_ftruncate(p, mine, -1), -1, EINVAL, "ftruncate(negative length)");
    /* A page-aligned negative offset passes the alignment check and becomes pages by an
     * arithmetic shift (riscv_sys_mmap): a page offset that wraps with the length, EOVERFLOW,
     * as Linux 6.1 answers (it crashed the model once, in the private copy's read). */
    CHECK(nommu_pwrite(p, mine, "data", 4, 0) == 4, "write some data");
    EXPECT_ERRNO(nommu_mmap(p, NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, mine, -4096), MAP_FAILED, EOVERFLOW,
                 "mmap(negative offset)");
    EXPECT_ERRNO(nommu_read(p, mine, NULL, 5), -1, EFAULT, "read(buf NULL)");
    CHECK(nommu_close(p, mine) == 0 && nommu_unlink(p, "/tmp/mine") == 0, "clean up");
    nommu_get_stats(sys, &after);
    CHECK(after.allocated_pages == before.allocated_pages && after.mmap_pages_allocated == before.mmap_pages_allocated,
          "bad input changed nothing");
    nommu_process_exit(q);
    nommu_process_exit(p);
    nommu_system_destroy(sys);
}

/* Extreme values a C program can pass: each answers with the kernel's errno; none traps (a
 * trap would end this program, and the test with it). */
static void extreme_rows(void) {
    nommu_system *sys = nommu_system_create(NULL);
    nommu_process *p = nommu_process_create(sys);
    /* futex: a LONG_MAX-second timeout is accepted (the word differs: EAGAIN). */
    uint32_t *word = nommu_mmap(p, NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct timespec forever = {LONG_MAX, 0}, almost = {LONG_MAX, 999999999};
    EXPECT_ERRNO(nommu_futex(p, word, 0 /* FUTEX_WAIT */, 1, &forever), -1, EAGAIN, "futex WAIT {LONG_MAX, 0}");
    EXPECT_ERRNO(nommu_futex(p, word, 0, 1, &almost), -1, EAGAIN, "futex WAIT {LONG_MAX, 999999999}");
    /* posix_memalign: an alignment of 2^62 with a size just below it is ENOMEM, *out untouched. */
    void *out = (void *)0x1234;
    CHECK(nommu_posix_memalign(p, &out, (size_t)1 << 62, ((size_t)1 << 62) - 1) == ENOMEM && out == (void *)0x1234,
          "posix_memalign(2^62, 2^62 - 1)");
    CHECK(nommu_posix_memalign(p, &out, (size_t)1 << 63, 1) == ENOMEM && out == (void *)0x1234,
          "posix_memalign(2^63, 1)");
    /* nommu_malloc_configure: sizes no mapping could have are EINVAL; the defaults still work. */
    nommu_process *q = nommu_process_create(sys);
    struct nommu_malloc_config mc;
    size_t huge[] = {SIZE_MAX / 2, SIZE_MAX, (size_t)1 << 62};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        nommu_malloc_config_init(&mc);
        mc.extend_size = huge[i];
        EXPECT_ERRNO(nommu_malloc_configure(q, &mc), -1, EINVAL, "malloc_configure(extend_size huge)");
        nommu_malloc_config_init(&mc);
        mc.mmap_threshold = huge[i];
        EXPECT_ERRNO(nommu_malloc_configure(q, &mc), -1, EINVAL, "malloc_configure(mmap_threshold huge)");
        nommu_malloc_config_init(&mc);
        mc.unmap_threshold = huge[i];
        EXPECT_ERRNO(nommu_malloc_configure(q, &mc), -1, EINVAL, "malloc_configure(unmap_threshold huge)");
    }
    /* heaps: 1..64; a config of the size before the field was added gets the default. */
    size_t bad_heaps[] = {0, 65, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad_heaps / sizeof bad_heaps[0]; i++) {
        nommu_malloc_config_init(&mc);
        mc.heaps = bad_heaps[i];
        EXPECT_ERRNO(nommu_malloc_configure(q, &mc), -1, EINVAL, "malloc_configure(heaps out of 1..64)");
    }
    nommu_malloc_config_init(&mc);
    CHECK(mc.heaps == 8, "malloc_config_init: 8 heaps");
    mc.size = offsetof(struct nommu_malloc_config, heaps) - 1;
    EXPECT_ERRNO(nommu_malloc_configure(q, &mc), -1, EINVAL, "malloc_configure(a size cut inside the old fields)");
    mc.size = offsetof(struct nommu_malloc_config, heaps);
    mc.heaps = 0; /* not read: past the size */
    CHECK(nommu_malloc_configure(q, &mc) == 0, "malloc_configure(the size before heaps)");
    nommu_malloc_config_init(&mc);
    mc.heaps = 1;
    CHECK(nommu_malloc_configure(q, &mc) == 0, "malloc_configure(one heap)");
    nommu_malloc_config_init(&mc);
    CHECK(nommu_malloc_configure(q, &mc) == 0, "malloc_configure(defaults) after the refusals");
    void *m = nommu_malloc(q, 1);
    CHECK(m != NULL, "malloc(1)");
    nommu_free(q, m);
    EXPECT_ERRNO(nommu_malloc(q, SIZE_MAX / 2), NULL, ENOMEM, "malloc(SIZE_MAX / 2)");
    CHECK(nommu_posix_memalign(q, &out, (size_t)1 << 40, SIZE_MAX / 4) == ENOMEM, "posix_memalign(2^40, SIZE_MAX/4)");
    nommu_process_exit(q);
    /* write: the count is capped (MAX_RW_COUNT) and what the buffer supplies is copied, up to
     * the first address that cannot be read (16 bytes here); none readable is EFAULT. */
    unsigned char *two = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(two != MAP_FAILED && munmap(two + PAGE, PAGE) == 0, "a host page with nothing after it");
    memset(two, 'x', PAGE);
    int fd = nommu_open(p, "/tmp/big", O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(nommu_write(p, fd, two + PAGE - 16, (size_t)1 << 40) == 16, "write(16 readable bytes, count 2^40)");
    EXPECT_ERRNO(nommu_write(p, fd, two + PAGE, (size_t)1 << 40), -1, EFAULT, "write(nothing readable, count 2^40)");
    EXPECT_ERRNO(nommu_write(p, fd, two, (size_t)SSIZE_MAX + 1), -1, EINVAL, "write(count above SSIZE_MAX)");
    munmap(two, PAGE);
    nommu_close(p, fd);
    /* pread/pwrite: a position whose end is past the largest loff_t is EINVAL (rw_verify_area). */
    fd = nommu_open(p, "/tmp/pos", O_RDWR | O_CREAT, 0600);
    char small[16];
    EXPECT_ERRNO(nommu_pread(p, fd, small, 16, LLONG_MAX), -1, EINVAL, "pread at LLONG_MAX for 16 bytes");
    EXPECT_ERRNO(nommu_pwrite(p, fd, "ab", 2, LLONG_MAX - 1), -1, EINVAL, "pwrite ending past LLONG_MAX");
    CHECK(nommu_pread(p, fd, small, 16, LLONG_MAX - 16) == 0, "pread ending at LLONG_MAX: end of file");
    nommu_close(p, fd);
    /* shmctl(IPC_STAT): the id first (EINVAL), then the buffer (EFAULT). */
    EXPECT_ERRNO(nommu_shmctl(p, 999999, IPC_STAT, NULL), -1, EINVAL, "shmctl(bad id, IPC_STAT, NULL)");
    int seg = nommu_shmget(p, 0, PAGE, IPC_CREAT | 0600);
    EXPECT_ERRNO(nommu_shmctl(p, seg, IPC_STAT, NULL), -1, EFAULT, "shmctl(id, IPC_STAT, NULL)");
    nommu_shmctl(p, seg, IPC_RMID, NULL);
    /* futex: the timeout of a wait, then the op, then the address (sys_futex, do_futex). */
    struct timespec bad = {0, -1};
    EXPECT_ERRNO(nommu_futex(p, (uint32_t *)2, 99, 0, NULL), -1, ENOSYS, "futex: unknown op before the address");
    EXPECT_ERRNO(nommu_futex(p, (uint32_t *)2, 1 | 256 /* WAKE | CLOCK_REALTIME */, 1, NULL), -1, ENOSYS,
                 "futex: FUTEX_CLOCK_REALTIME with FUTEX_WAKE");
    EXPECT_ERRNO(nommu_futex(p, (uint32_t *)8, 0, 0, &bad), -1, EINVAL, "futex: a wait's bad timeout before the address");
    EXPECT_ERRNO(nommu_futex(p, (uint32_t *)8, 0 | 256, 0, NULL), -1, EFAULT, "futex: WAIT | CLOCK_REALTIME is a wait");
    /* exec: a PT_GNU_STACK asking for more than any machine has is ENOMEM, at every size. */
    FILE *host = fopen("/bin/ls", "rb");
    if (host) {
        static unsigned char image[4 << 20];
        size_t len = fread(image, 1, sizeof image, host);
        fclose(host);
        Elf64_Ehdr *eh = (Elf64_Ehdr *)image;
        uint64_t sizes[] = {(uint64_t)1 << 44, ((uint64_t)1 << 63) - 4095, (uint64_t)1 << 63, UINT64_MAX};
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            int patched = 0;
            for (int i = 0; i < eh->e_phnum; i++) {
                Elf64_Phdr *ph = (Elf64_Phdr *)(image + eh->e_phoff + (size_t)i * eh->e_phentsize);
                if (ph->p_type == PT_GNU_STACK) {
                    ph->p_memsz = sizes[k];
                    patched = 1;
                }
            }
            CHECK(patched, "/bin/ls has PT_GNU_STACK");
            char name[64];
            snprintf(name, sizeof name, "/rom/stack%zu", k);
            CHECK(nommu_romfs_add(sys, name, image, len) == 0, "romfs_add");
            nommu_process *e = nommu_process_create(sys);
            struct nommu_image img;
            memset(&img, 0, sizeof img);
            img.size = sizeof img;
            EXPECT_ERRNO(nommu_exec_elf(e, name, &img), -1, ENOMEM, "exec with a PT_GNU_STACK beyond any machine");
            nommu_process_exit(e);
        }
    }
    nommu_process_exit(p);
    nommu_system_destroy(sys);
}

/* The property: no value of any integer argument traps. Every call below takes each edge value
 * (0, 1, a page less one, 2^31 ± 1, 2^32 ± 1, 2^62, 2^63 − 1, 2^63, 2^64 − 1, negatives) in each
 * integer position, with the other arguments valid; a failure sets errno; what succeeds is
 * undone; at the end every page is back. A trap would end the program. */
static const uint64_t edges[] = {
    0, 1, 4095, 4096, 0x7fffffffu, 0x80000000u, 0x80000001u, 0xffffffffu, 0x100000000ull, 0x100000001ull,
    0x3fffffffffffffffull, 0x4000000000000000ull, 0x7fffffffffffffffull, 0x8000000000000000ull,
    0xffffffffffffffffull, 0xfffffffffffff000ull, 0xfffffffffffffffeull,
};
#define NEDGES (sizeof edges / sizeof edges[0])
static int sweep_calls, sweep_bad_errno;

/* A failed call must say why. */
#define FAILED_WITH_ERRNO(failed)                                                                                      \
    do {                                                                                                               \
        sweep_calls++;                                                                                                 \
        if ((failed) && errno == 0) {                                                                                  \
            sweep_bad_errno++;                                                                                         \
            printf("  (line %d: failed without errno)\n", __LINE__);                                                   \
        }                                                                                                              \
    } while (0)

static void edge_sweep(void) {
    nommu_system *sys = nommu_system_create(NULL);
    nommu_process *p = nommu_process_create(sys);
    struct nommu_stats before, after;
    before.size = after.size = sizeof before;
    const int anon = MAP_PRIVATE | MAP_ANONYMOUS, rw = PROT_READ | PROT_WRITE;
    unsigned char *page = nommu_mmap(p, NULL, 2 * PAGE, rw, anon, -1, 0);
    int fd = nommu_open(p, "/tmp/sweep", O_RDWR | O_CREAT, 0600);
    char buf[64] = {0};
    for (size_t i = 0; i < NEDGES; i++) {
        uint64_t v = edges[i];
        void *r;
        errno = 0;
        r = nommu_mmap(p, NULL, (size_t)v, rw, anon, -1, 0);
        FAILED_WITH_ERRNO(r == MAP_FAILED);
        if (r != MAP_FAILED) nommu_munmap(p, r, (size_t)v);
        errno = 0;
        r = nommu_mmap(p, NULL, PAGE, (int)v, anon, -1, 0);
        FAILED_WITH_ERRNO(r == MAP_FAILED);
        if (r != MAP_FAILED) nommu_munmap(p, r, PAGE);
        errno = 0;
        r = nommu_mmap(p, NULL, PAGE, rw, (int)v, -1, 0);
        FAILED_WITH_ERRNO(r == MAP_FAILED);
        if (r != MAP_FAILED) nommu_munmap(p, r, PAGE);
        errno = 0;
        r = nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_PRIVATE, (int)v, 0);
        FAILED_WITH_ERRNO(r == MAP_FAILED);
        if (r != MAP_FAILED) nommu_munmap(p, r, PAGE);
        errno = 0;
        r = nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, (off_t)v);
        FAILED_WITH_ERRNO(r == MAP_FAILED);
        if (r != MAP_FAILED) nommu_munmap(p, r, PAGE);
        errno = 0;
        r = nommu_mmap2(p, NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, (unsigned long)v);
        FAILED_WITH_ERRNO(r == MAP_FAILED);
        if (r != MAP_FAILED) nommu_munmap(p, r, PAGE);
        errno = 0;
        FAILED_WITH_ERRNO(nommu_munmap(p, (void *)(uintptr_t)v, PAGE) != 0);
        errno = 0;
        FAILED_WITH_ERRNO(nommu_munmap(p, page + 2 * PAGE, (size_t)v) != 0); /* past the mapping */
        errno = 0;
        r = nommu_mremap(p, page, 2 * PAGE, (size_t)v, 0);
        FAILED_WITH_ERRNO(r == MAP_FAILED);
        if (r != MAP_FAILED) nommu_mremap(p, page, (size_t)v, 2 * PAGE, 0);
        errno = 0;
        FAILED_WITH_ERRNO(nommu_mremap(p, page, (size_t)v, PAGE, 0) == MAP_FAILED);
        errno = 0;
        FAILED_WITH_ERRNO(nommu_mremap(p, page, 2 * PAGE, 2 * PAGE, (int)v) == MAP_FAILED);
        errno = 0;
        FAILED_WITH_ERRNO(nommu_read(p, fd, buf, (size_t)v) < 0);
        errno = 0;
        FAILED_WITH_ERRNO(nommu_pread(p, fd, buf, sizeof buf, (off_t)v) < 0);
        errno = 0;
        FAILED_WITH_ERRNO(nommu_pwrite(p, fd, buf, 8, (off_t)v) < 0);
        errno = 0;
        FAILED_WITH_ERRNO(nommu_write(p, fd, buf, (size_t)v) < 0);
        nommu_ftruncate(p, fd, 0);
        errno = 0;
        FAILED_WITH_ERRNO(nommu_ftruncate(p, fd, (off_t)v) != 0);
        nommu_ftruncate(p, fd, 0);
        errno = 0;
        int id = nommu_shmget(p, 0, (size_t)v, IPC_CREAT | 0600);
        FAILED_WITH_ERRNO(id < 0);
        if (id >= 0) nommu_shmctl(p, id, IPC_RMID, NULL);
        errno = 0;
        FAILED_WITH_ERRNO(nommu_shmat(p, (int)v, NULL, 0) == MAP_FAILED);
        struct timespec t = {(time_t)v, 0}, n = {0, (long)v};
        uint32_t *word = (uint32_t *)page;
        errno = 0;
        FAILED_WITH_ERRNO(nommu_futex(p, word, 0, 1, &t) != 0); /* the word is 0: EAGAIN */
        errno = 0;
        FAILED_WITH_ERRNO(nommu_futex(p, word, 0, 1, &n) != 0);
        errno = 0;
        FAILED_WITH_ERRNO(nommu_futex(p, word, (int)v, 1, &n) < 0);
        errno = 0;
        FAILED_WITH_ERRNO(nommu_futex(p, word, 1 /* FUTEX_WAKE */, (uint32_t)v, NULL) < 0);
        (void)nommu_brk(p, (void *)(uintptr_t)v); /* brk answers with the break, never errno */
        sweep_calls++;
        errno = 0;
        r = nommu_malloc(p, (size_t)v);
        FAILED_WITH_ERRNO(r == NULL);
        nommu_free(p, r);
        errno = 0;
        r = nommu_calloc(p, (size_t)v, 3);
        FAILED_WITH_ERRNO(r == NULL && v != 0);
        nommu_free(p, r);
        void *blk = nommu_malloc(p, 32);
        errno = 0;
        r = nommu_realloc(p, blk, (size_t)v);
        FAILED_WITH_ERRNO(r == NULL && v != 0);
        nommu_free(p, r ? r : (v == 0 ? NULL : blk));
        void *out = NULL;
        if (nommu_posix_memalign(p, &out, (size_t)v, 64) == 0) nommu_free(p, out);
        if (nommu_posix_memalign(p, &out, 64, (size_t)v) == 0) nommu_free(p, out);
        sweep_calls += 2;
        errno = 0;
        r = nommu_alloc_pages(sys, (unsigned)v, 0);
        FAILED_WITH_ERRNO(r == NULL);
        if (r) nommu_free_pages(sys, r, (unsigned)v);
        errno = 0;
        r = nommu_alloc_pages_exact(sys, (size_t)v, 0);
        FAILED_WITH_ERRNO(r == NULL);
        if (r) nommu_free_pages_exact(sys, r, (size_t)v);
        errno = 0;
        FAILED_WITH_ERRNO(nommu_free_pages(sys, page, (unsigned)v) != 0);
        errno = 0;
        FAILED_WITH_ERRNO(nommu_free_pages_exact(sys, page, (size_t)v) != 0);
        /* The malloc's first area stays mapped (one wholly free area is kept): count from here. */
        if (i == 0) nommu_get_stats(sys, &before);
    }
    nommu_get_stats(sys, &after);
    /* nommu_config: every field at every edge value, one at a time: a system, or NULL and errno. */
    for (size_t i = 0; i < NEDGES; i++) {
        uint64_t v = edges[i];
        for (int field = 0; field < 11; field++) {
            struct nommu_config c;
            nommu_config_init(&c);
            switch (field) {
            case 0: c.arena_bytes = (size_t)v; break;
            case 1: c.page_size = (size_t)v; break;
            case 2: c.max_order = (unsigned)v; break;
            case 3: c.nr_trim_pages = (int)v; break;
            case 4: c.arena_source = (int)v; break;
            case 5: c.huge_pages = (int)v; break;
            case 6: c.flash_bytes = (size_t)v; break;
            case 7: c.ramdisk_bytes = (size_t)v; break;
            case 8: c.framebuffer_bytes = (size_t)v; break;
            case 9: c.allow_uninitialized = (int)v; break;
            default: c.size = (size_t)v; break;
            }
            errno = 0;
            nommu_system *made = nommu_system_create(&c);
            FAILED_WITH_ERRNO(made == NULL);
            if (made) nommu_system_destroy(made);
        }
    }
    printf("edge sweep: %d calls with %zu edge values, %d failures without errno\n", sweep_calls, NEDGES,
           sweep_bad_errno);
    CHECK(sweep_bad_errno == 0, "edge sweep: every failure sets errno");
    if (after.allocated_pages != before.allocated_pages)
        printf("  (allocated pages %llu -> %llu)\n", (unsigned long long)before.allocated_pages,
               (unsigned long long)after.allocated_pages);
    CHECK(after.allocated_pages == before.allocated_pages, "edge sweep: every page back after undoing what succeeded");
    nommu_close(p, fd);
    nommu_process_exit(p);
    nommu_system_destroy(sys);
}

/* A line of /proc/self/status, in kB. */
static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, n) == 0 && line[n] == ':') v = atol(line + n + 1);
    }
    if (f) fclose(f);
    return v;
}

/* Entries of a directory (without . and ..). */
static int entries(const char *path) {
    DIR *d = opendir(path);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d) closedir(d);
    return n;
}

/* nommu_system_destroy releases the system, its processes (their handles become invalid)
 * and its arena: 200 create/destroy cycles, half of them with process handles still live,
 * leave the address space, the resident memory, the descriptors and $TMPDIR as they were. */
static void lifecycle_rows(void) {
    char tmp[] = "/tmp/abi-lifecycle-XXXXXX";
    CHECK(mkdtemp(tmp) != NULL, "a private TMPDIR");
    const char *old = getenv("TMPDIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("TMPDIR", tmp, 1);
    long vm0 = 0, rss0 = 0;
    int fds0 = 0;
    for (int cycle = 0; cycle < 220; cycle++) {
        if (cycle == 20) { /* after warming up: the runtime's own first allocations are not a leak */
            vm0 = status_kb("VmSize");
            rss0 = status_kb("VmRSS");
            fds0 = entries("/proc/self/fd");
        }
        nommu_system *sys = nommu_system_create(NULL);
        nommu_process *a = nommu_process_create(sys), *b = nommu_process_create(sys);
        void *m = nommu_malloc(a, 100000);
        void *map = nommu_mmap(b, NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        int fd = nommu_open(b, "/data/f", O_RDWR | O_CREAT, 0600);
        CHECK(m && map != MAP_FAILED && fd >= 0 && nommu_write(b, fd, "x", 1) == 1, "a system in use");
        if (cycle % 2) nommu_process_exit(a); /* the other half: destroy ends it */
        nommu_system_destroy(sys);
    }
    long vm1 = status_kb("VmSize"), rss1 = status_kb("VmRSS");
    int fds1 = entries("/proc/self/fd");
    printf("lifecycle: 200 cycles: VmSize %ld -> %ld kB, VmRSS %ld -> %ld kB, descriptors %d -> %d\n", vm0, vm1,
           rss0, rss1, fds0, fds1);
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define NOMMU_SANITIZED 1
#endif
#endif
#ifndef NOMMU_SANITIZED
    /* (Not under a sanitizer: its allocator quarantines what is freed, and RSS grows anyway.) */
    CHECK(vm1 - vm0 <= 16384, "200 create/destroy cycles: VmSize flat (within 16 MiB)");
    CHECK(rss1 - rss0 <= 16384, "200 create/destroy cycles: VmRSS flat (within 16 MiB)");
#endif
    CHECK(fds1 == fds0, "200 create/destroy cycles: no descriptor left open");
    CHECK(entries(tmp) == 0, "200 create/destroy cycles: every /data directory removed");
    if (saved) {
        setenv("TMPDIR", saved, 1);
        free(saved);
    } else {
        unsetenv("TMPDIR");
    }
    rmdir(tmp);
}

/* POSIX edges as Linux answers them, through the release library: vm.nr_trim_pages parsed as
 * proc_dointvec_minmax, pipes' PIPE_BUF rule, FIFO opens, and path_lookupat's rules (trailing
 * slashes, `..` per component, names as bytes, NAME_MAX in bytes, /proc pids as name_to_int). */
static void posix_rows(void) {
    char host[] = "/tmp/abi-paths-XXXXXX";
    CHECK(mkdtemp(host) != NULL, "a host directory for /data");
    struct nommu_config config;
    nommu_config_init(&config);
    config.host_dir = host;
    nommu_system *sys = nommu_system_create(&config);
    nommu_process *p = nommu_process_create(sys);
    char text[64];

    /* nr_trim_pages: C's bases and leading blanks, one value then the rest left, '+' refused. */
    static const struct {
        const char *write;
        ssize_t taken; /* -1: EINVAL */
        const char *after;
    } trims[] = {{"0x10\n", 5, "16\n"}, {"  010", 5, "8\n"}, {"4 5", 2, "4\n"}, {"+3", -1, "4\n"},
                 {"", 0, "4\n"},      {"12a", -1, "4\n"}, {"-1", -1, "4\n"}};
    for (size_t i = 0; i < sizeof trims / sizeof trims[0]; i++) {
        int fd = nommu_open(p, "/proc/sys/vm/nr_trim_pages", O_RDWR);
        errno = 0;
        ssize_t n = nommu_write(p, fd, trims[i].write, strlen(trims[i].write));
        CHECK(trims[i].taken < 0 ? n == -1 && errno == EINVAL : n == trims[i].taken, trims[i].write);
        nommu_close(p, fd);
        read_proc(p, "/proc/sys/vm/nr_trim_pages", text, sizeof text);
        CHECK(strcmp(text, trims[i].after) == 0, "nr_trim_pages after the write");
    }
    int trim = nommu_open(p, "/proc/sys/vm/nr_trim_pages", O_RDWR);
    CHECK(nommu_pwrite(p, trim, "9", 1, 1) == 1, "a write at position 1 is taken");
    CHECK(nommu_pread(p, trim, text, sizeof text, 1) == 0, "a read at position 1 is end of file");
    CHECK(nommu_pread(p, trim, text, sizeof text, 0) == 2 && text[0] == '4', "and the write was ignored");
    nommu_close(p, trim);
    set_trim(p, "1");

    /* Pipes: up to PIPE_BUF all or nothing (EAGAIN), above it partial; FIFO writer needs a reader. */
    CHECK(nommu_mkfifo(p, "/tmp/fifo", 0600) == 0, "mkfifo");
    EXPECT_ERRNO(nommu_open(p, "/tmp/fifo", O_WRONLY | O_NONBLOCK), -1, ENXIO, "FIFO O_WRONLY|O_NONBLOCK, no reader");
    int r = nommu_open(p, "/tmp/fifo", O_RDONLY | O_NONBLOCK), w = nommu_open(p, "/tmp/fifo", O_WRONLY | O_NONBLOCK);
    static char fill[65536];
    CHECK(r >= 0 && w >= 0 && nommu_write(p, w, fill, 65536 - 100) == 65536 - 100, "fill the FIFO but 100 bytes");
    EXPECT_ERRNO(nommu_write(p, w, fill, 200), -1, EAGAIN, "200 bytes (<= PIPE_BUF) into 100 of room: EAGAIN");
    CHECK(nommu_write(p, w, fill, 5000) == 100, "5000 bytes (> PIPE_BUF): partial");
    nommu_close(p, w);
    nommu_close(p, r);

    /* Paths. */
    int f = nommu_open(p, "/tmp/f", O_RDWR | O_CREAT, 0600);
    CHECK(f >= 0 && nommu_write(p, f, "abc", 3) == 3, "/tmp/f");
    nommu_close(p, f);
    EXPECT_ERRNO(nommu_open(p, "/tmp/f/", O_RDONLY), -1, ENOTDIR, "trailing slash on a file");
    EXPECT_ERRNO(nommu_open(p, "/tmp/new/", O_RDWR | O_CREAT, 0600), -1, EISDIR, "O_CREAT with a trailing slash");
    EXPECT_ERRNO(nommu_open(p, "/tmp/f", O_RDONLY | O_DIRECTORY), -1, ENOTDIR, "O_DIRECTORY on a file");
    EXPECT_ERRNO(nommu_open(p, "/tmp/missing/../f", O_RDONLY), -1, ENOENT, ".. through a missing component");
    EXPECT_ERRNO(nommu_open(p, "/tmp/f/../f", O_RDONLY), -1, ENOTDIR, ".. through a file");
    EXPECT_ERRNO(nommu_unlink(p, "/tmp/f/"), -1, ENOTDIR, "unlink with a trailing slash");
    EXPECT_ERRNO(nommu_unlink(p, "/rom/none"), -1, EROFS, "unlink on romfs: EROFS before the lookup");
    EXPECT_ERRNO(nommu_open(p, "/proc/01/status", O_RDONLY), -1, ENOENT, "/proc/01");
    EXPECT_ERRNO(nommu_open(p, "/proc/+1/status", O_RDONLY), -1, ENOENT, "/proc/+1");
    f = nommu_open(p, "/tmp/../tmp/f", O_RDONLY);
    CHECK(f >= 0 && nommu_close(p, f) == 0, ".. through a directory");
    f = nommu_open(p, "/tmp/\xfe", O_WRONLY | O_CREAT, 0600);
    CHECK(f >= 0 && nommu_close(p, f) == 0, "/tmp/\\xfe");
    EXPECT_ERRNO(nommu_open(p, "/tmp/\xff", O_RDONLY), -1, ENOENT, "/tmp/\\xff is not /tmp/\\xfe");
    EXPECT_ERRNO(nommu_open(p, "/tmp/\xef\xbf\xbd", O_RDONLY), -1, ENOENT, "nor U+FFFD");
    char name[5 + 257] = "/tmp/";
    memset(name + 5, 0xff, 255);
    name[5 + 255] = 0;
    f = nommu_open(p, name, O_WRONLY | O_CREAT, 0600);
    CHECK(f >= 0 && nommu_close(p, f) == 0, "a 255-byte name of \\xff: NAME_MAX counts bytes");
    name[5 + 255] = (char)0xff;
    name[5 + 256] = 0;
    EXPECT_ERRNO(nommu_open(p, name, O_WRONLY | O_CREAT, 0600), -1, ENAMETOOLONG, "256 bytes");
    f = nommu_open(p, "/data/x\xff", O_WRONLY | O_CREAT, 0600);
    CHECK(f >= 0 && nommu_close(p, f) == 0, "/data/x\\xff");
    char on_host[sizeof host + 8];
    snprintf(on_host, sizeof on_host, "%s/x\xff", host);
    CHECK(access(on_host, F_OK) == 0, "the host has the byte name x\\xff");
    CHECK(nommu_unlink(p, "/data/x\xff") == 0 && access(on_host, F_OK) != 0, "and unlink takes it");

    nommu_process_exit(p);
    nommu_system_destroy(sys);
    rmdir(host);
}

/* nommu_config.reference: the document (default) or Linux 6.1's answers where they differ;
 * a caller built before the field (size 80) gets the default. */
static void reference_rows(void) {
    struct nommu_config config;
    nommu_config_init(&config);
    CHECK(config.reference == NOMMU_REFERENCE_DOCUMENT, "reference defaults to the document");
    config.reference = 2;
    EXPECT_ERRNO(nommu_system_create(&config), NULL, EINVAL, "reference 2");
    nommu_config_init(&config);
    config.size = 80;
    config.reference = NOMMU_REFERENCE_LINUX_6_1; /* past the size it claims: not read */
    nommu_system *old = nommu_system_create(&config);
    nommu_process *o = old ? nommu_process_create(old) : NULL;
    CHECK(o != NULL, "a first-version config (80 bytes)");
    EXPECT_ERRNO(nommu_mmap(o, (void *)0x10000000, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                 MAP_FAILED, EINVAL, "first-version config: the document's answer to an address hint");
    nommu_process_exit(o);
    nommu_system_destroy(old);

    nommu_config_init(&config);
    config.reference = NOMMU_REFERENCE_LINUX_6_1;
    nommu_system *sys = nommu_system_create(&config);
    nommu_process *p = nommu_process_create(sys);
    void *m = nommu_mmap(p, (void *)0x10000000, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "linux-6.1: an address hint is ignored");
    EXPECT_ERRNO(nommu_mmap(p, m, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), MAP_FAILED, EINVAL,
                 "linux-6.1: MAP_FIXED is still EINVAL");
    int zero = nommu_open(p, "/dev/zero", O_RDWR);
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_PRIVATE, zero, 0), MAP_FAILED, EINVAL,
                 "linux-6.1: a private /dev/zero mapping (__kernel_read refuses it)");
    CHECK(nommu_futex(p, (uint32_t *)0x1000, FUTEX_WAKE, 1, NULL) == 0, "linux-6.1: a wake needs no mapping");
    EXPECT_ERRNO(nommu_futex(p, (uint32_t *)0x1000, FUTEX_WAIT, 0, NULL), -1, EFAULT,
                 "linux-6.1: a wait outside every mapping still cannot read its word");
    int id = nommu_shmget(p, IPC_PRIVATE, PAGE, IPC_CREAT | 0600);
    EXPECT_ERRNO(nommu_shmat(p, id, NULL, 0), (void *)-1, ENODEV, "linux-6.1: SysV shmat is ENODEV");
    CHECK(nommu_shmctl(p, id, IPC_RMID, NULL) == 0, "the segment goes (its attach count went back)");
    nommu_close(p, zero);
    nommu_munmap(p, m, PAGE);
    nommu_process_exit(p);
    struct nommu_stats st = {.size = sizeof st};
    CHECK(nommu_get_stats(sys, &st) == 0 && st.allocated_pages == 0, "linux-6.1: every page back");
    nommu_system_destroy(sys);
}

int main(void) {
    struct nommu_config config;
    nommu_config_init(&config);
    CHECK(config.size == sizeof config && config.page_size == 4096 && config.max_order == 10, "config defaults");
    config.arena_bytes = 16u << 20;
    nommu_system *sys = nommu_system_create(&config);
    CHECK(sys != NULL, "system created");
    nommu_process *p = nommu_process_create(sys);
    CHECK(p != NULL && nommu_getpid(p) > 0, "process created");
    const int anon = MAP_PRIVATE | MAP_ANONYMOUS;
    const int rw = PROT_READ | PROT_WRITE;

    /* mmap validation, rows 1-11. */
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, rw, anon | MAP_FIXED, -1, 0), MAP_FAILED, EINVAL, "row 1 MAP_FIXED");
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, rw, MAP_ANONYMOUS, -1, 0), MAP_FAILED, EINVAL, "row 2 type 0");
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, rw, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1, 0), MAP_FAILED, EINVAL,
                 "row 3 MAP_SHARED_VALIDATE");
    EXPECT_ERRNO(nommu_mmap(p, NULL, 0, rw, anon, -1, 0), MAP_FAILED, EINVAL, "row 4 len 0");
    EXPECT_ERRNO(nommu_mmap(p, NULL, (size_t)-1, rw, anon, -1, 0), MAP_FAILED, ENOMEM, "row 5 len ULONG_MAX");
    EXPECT_ERRNO(nommu_mmap(p, NULL, (size_t)1 << 48, rw, anon, -1, 0), MAP_FAILED, ENOMEM, "row 6 > TASK_SIZE");
    EXPECT_ERRNO(nommu_mmap2(p, NULL, 2 * PAGE, rw, anon, -1, (unsigned long)-1), MAP_FAILED, EOVERFLOW,
                 "row 7 pgoff + pages wraps");
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_PRIVATE, 99, 100), MAP_FAILED, EINVAL,
                 "row 8 unaligned offset before the fd");
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_PRIVATE, 99, 0), MAP_FAILED, EBADF, "row 9 bad fd");
    void *a = nommu_mmap(p, NULL, PAGE, rw, anon, 12345, 0);
    CHECK(a != MAP_FAILED, "row 10 anonymous ignores the fd");
    CHECK(nommu_munmap(p, a, PAGE) == 0, "munmap");
    EXPECT_ERRNO(nommu_mmap(p, (void *)0x10000, PAGE, rw, anon, -1, 0), MAP_FAILED, EINVAL, "row 11 address hint");

    /* Anonymous memory, rows 24, 30-32, 78. */
    unsigned char *one = nommu_mmap(p, NULL, 1, rw, anon, -1, 0);
    CHECK(one != MAP_FAILED && ((uintptr_t)one % PAGE) == 0, "row 24 one byte, page aligned");
    int zero = 1;
    for (int i = 0; i < PAGE; i++) zero &= one[i] == 0;
    CHECK(zero, "row 24 zeroed");
    memset(one, 0xEE, PAGE);
    CHECK(nommu_munmap(p, one, 1) == 0, "row 51 unrounded length");
    unsigned char *again = nommu_mmap(p, NULL, PAGE, rw, anon | MAP_UNINITIALIZED, -1, 0);
    zero = 1;
    for (int i = 0; i < PAGE; i++) zero &= again[i] == 0;
    CHECK(again == one && zero, "row 31 MAP_UNINITIALIZED not allowed: cleared anyway");
    CHECK(nommu_munmap(p, again, PAGE) == 0, "munmap");
    EXPECT_ERRNO(nommu_mmap(p, NULL, (size_t)8 << 20, rw, anon, -1, 0), MAP_FAILED, ENOMEM, "row 30 above max order");
    EXPECT_ERRNO(nommu_mprotect(p, NULL, PAGE, PROT_READ), -1, ENOSYS, "row 78 mprotect");
    EXPECT_ERRNO(nommu_madvise(p, NULL, PAGE, 0), -1, ENOSYS, "row 78 madvise");
    EXPECT_ERRNO(nommu_mlock(p, NULL, PAGE), -1, ENOSYS, "row 78 mlock");
    EXPECT_ERRNO(nommu_munlock(p, NULL, PAGE), -1, ENOSYS, "row 78 munlock");
    EXPECT_ERRNO(nommu_msync(p, NULL, PAGE, 0), -1, ENOSYS, "row 78 msync");
    EXPECT_ERRNO(nommu_mincore(p, NULL, PAGE, NULL), -1, ENOSYS, "row 78 mincore");
    EXPECT_ERRNO(nommu_fork(p), -1, EINVAL, "fork without an MMU");

    /* munmap, rows 49-57. */
    char *m = nommu_mmap(p, NULL, 3 * PAGE, rw, anon, -1, 0);
    EXPECT_ERRNO(nommu_munmap(p, m, 0), -1, EINVAL, "row 49 len 0");
    EXPECT_ERRNO(nommu_munmap(p, (void *)0x1000, PAGE), -1, EINVAL, "row 50 no mapping");
    EXPECT_ERRNO(nommu_munmap(p, m, 4 * PAGE), -1, EINVAL, "row 56 past the end");
    EXPECT_ERRNO(nommu_munmap(p, m + 100, PAGE), -1, EINVAL, "row 57 unaligned");
    CHECK(nommu_munmap(p, m + PAGE, PAGE) == 0, "row 54 middle cut");
    CHECK(nommu_munmap(p, m, PAGE) == 0 && nommu_munmap(p, m + 2 * PAGE, PAGE) == 0, "the pieces unmap");

    /* mremap, rows 60-67. */
    char *r = nommu_mmap(p, NULL, 3 * PAGE, rw, anon, -1, 0);
    EXPECT_ERRNO(nommu_mremap(p, r, 0, PAGE, 0), MAP_FAILED, EINVAL, "row 60 old_len 0");
    EXPECT_ERRNO(nommu_mremap(p, r + 1, 3 * PAGE, PAGE, 0), MAP_FAILED, EINVAL, "row 61 unaligned");
    EXPECT_ERRNO(nommu_mremap(p, r, 3 * PAGE, PAGE, MREMAP_FIXED | MREMAP_MAYMOVE, r + PAGE), MAP_FAILED, EINVAL,
                 "row 62 MREMAP_FIXED elsewhere");
    CHECK(nommu_mremap(p, r, 3 * PAGE, 2 * PAGE, MREMAP_FIXED | MREMAP_MAYMOVE, r) == r, "row 62 same address");
    EXPECT_ERRNO(nommu_mremap(p, r, 3 * PAGE, PAGE, 0), MAP_FAILED, EINVAL, "row 63 wrong old size");
    EXPECT_ERRNO(nommu_mremap(p, r, 2 * PAGE, 4 * PAGE, MREMAP_MAYMOVE), MAP_FAILED, ENOMEM, "row 65 past the length");
    CHECK(nommu_mremap(p, r, 2 * PAGE, 3 * PAGE, 0) == r, "row 67 grow back");
    CHECK(nommu_munmap(p, r, 3 * PAGE) == 0, "munmap");

    /* Futex address checks, rows 73-74. */
    uint32_t *f = nommu_mmap(p, NULL, PAGE, rw, anon, -1, 0);
    *f = 5;
    EXPECT_ERRNO(nommu_futex(p, (uint32_t *)((char *)f + 2), FUTEX_WAKE, 1, NULL), -1, EINVAL, "row 73 misaligned");
    EXPECT_ERRNO(nommu_futex(p, (uint32_t *)0x1000, FUTEX_WAKE, 1, NULL), -1, EFAULT, "row 74 outside");
    EXPECT_ERRNO(nommu_futex(p, f, FUTEX_WAIT_PRIVATE, 6, NULL), -1, EAGAIN, "FUTEX_WAIT value differs");
    struct timespec t = {0, 1000000};
    EXPECT_ERRNO(nommu_futex(p, f, FUTEX_WAIT, 5, &t), -1, ETIMEDOUT, "FUTEX_WAIT times out");
    CHECK(nommu_futex(p, f, FUTEX_WAKE, 1, NULL) == 0, "FUTEX_WAKE with no waiter");
    CHECK(nommu_munmap(p, f, PAGE) == 0, "munmap");

    /* /proc through open/read, rows 29, 72, 79; out-parameters untouched on failure. */
    char buf[256];
    memset(buf, 'x', sizeof buf);
    int fd = nommu_open(p, "/proc/sys/vm/nr_trim_pages", O_RDWR);
    CHECK(fd >= 0, "open nr_trim_pages");
    EXPECT_ERRNO(nommu_write(p, fd, "-1", 2), -1, EINVAL, "row 29 negative nr_trim_pages");
    CHECK(nommu_read(p, fd, buf, sizeof buf) == 2 && memcmp(buf, "1\n", 2) == 0, "row 29 value unchanged");
    CHECK(nommu_close(p, fd) == 0, "close");
    memset(buf, 'x', sizeof buf);
    EXPECT_ERRNO(nommu_read(p, fd, buf, sizeof buf), -1, EBADF, "read of a closed fd");
    CHECK(buf[0] == 'x' && buf[255] == 'x', "read leaves the buffer untouched on failure");
    EXPECT_ERRNO(nommu_open(p, "/proc/sys/vm/max_map_count", O_RDONLY), -1, ENOENT, "row 79 no max_map_count");
    int w = nommu_open(p, "/proc/meminfo", O_WRONLY);
    CHECK(w >= 0, "root opens read-only meminfo for writing (CAP_DAC_OVERRIDE)");
    EXPECT_ERRNO(nommu_write(p, w, "1", 1), -1, EIO, "and the write fails (no proc_write)");
    nommu_close(p, w);
    EXPECT_ERRNO(nommu_open(p, NULL, O_RDONLY), -1, EFAULT, "NULL path");
    char *k = nommu_mmap(p, NULL, 3 * PAGE, rw, anon, -1, 0);
    fd = nommu_open(p, "/proc/meminfo", O_RDONLY);
    ssize_t n = nommu_read(p, fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    CHECK(strstr(buf, "MmapCopy:") != NULL, "row 72 MmapCopy in /proc/meminfo");
    /* /proc/meminfo (proc_reg_file_ops: mmap, no capabilities): COPY only. */
    char *copy = nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(copy != MAP_FAILED && memcmp(copy, "MemTotal:", 9) == 0, "a private /proc/meminfo mapping is a copy");
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0), MAP_FAILED, ENODEV, "shared: ENODEV");
    if (copy != MAP_FAILED) nommu_munmap(p, copy, PAGE);
    nommu_close(p, fd);
    fd = nommu_open(p, "/proc/self/maps", O_RDONLY);
    EXPECT_ERRNO(nommu_mmap(p, NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0), MAP_FAILED, ENODEV,
                 "a /proc/<pid> file has no mmap");
    nommu_close(p, fd);
    nommu_munmap(p, k, 3 * PAGE);

    /* Page allocator and statistics. */
    struct nommu_stats st;
    memset(&st, 0xAB, sizeof st);
    st.size = 8;
    EXPECT_ERRNO(nommu_get_stats(sys, &st), -1, EINVAL, "stats size too small");
    CHECK(st.version == 0xABABABABu, "stats untouched on failure");
    void *pg = nommu_alloc_pages(sys, 0, NOMMU_GFP_ZERO);
    CHECK(pg != NULL, "alloc_pages");
    EXPECT_ERRNO(nommu_free_pages(sys, pg, 1), -1, EINVAL, "free_pages wrong order");
    EXPECT_ERRNO(nommu_free_pages(sys, (char *)pg + 1, 0), -1, EINVAL, "free_pages not a page start");
    EXPECT_ERRNO(nommu_free_pages(sys, buf, 0), -1, EINVAL, "free_pages foreign pointer");
    CHECK(nommu_free_pages(sys, pg, 0) == 0, "free_pages");
    EXPECT_ERRNO(nommu_free_pages(sys, pg, 0), -1, EINVAL, "double free");
    EXPECT_ERRNO(nommu_alloc_pages(sys, 11, 0), NULL, ENOMEM, "order above the maximum");
    void *ex = nommu_alloc_pages_exact(sys, 3 * PAGE, 0);
    CHECK(ex != NULL, "alloc_pages_exact");
    EXPECT_ERRNO(nommu_free_pages_exact(sys, ex, 4 * PAGE), -1, EINVAL, "free_pages_exact wrong size");
    CHECK(nommu_free_pages_exact(sys, ex, 3 * PAGE - 5) == 0, "free_pages_exact");
    /* Pages a mapping holds are not these calls' to take back, though the order fits. */
    nommu_process *owner = nommu_process_create(sys);
    char *held = nommu_mmap(owner, NULL, PAGE, rw, anon, -1, 0);
    CHECK(held != MAP_FAILED, "a one-page mapping");
    EXPECT_ERRNO(nommu_free_pages(sys, held, 0), -1, EINVAL, "free_pages of a mapping's page");
    EXPECT_ERRNO(nommu_free_pages_exact(sys, held, PAGE), -1, EINVAL, "free_pages_exact of a mapping's page");
    CHECK(nommu_munmap(owner, held, PAGE) == 0, "the mapping is still whole");
    nommu_process_exit(owner);
    st.size = sizeof st;
    CHECK(nommu_get_stats(sys, &st) == 0 && st.version == NOMMU_STATS_VERSION, "get_stats");
    CHECK(st.allocated_pages == 0 && st.mmap_pages_allocated == 0 && st.total_pages == 4096, "every page back");
    CHECK(st.pages_trimmed >= 1 && st.bytes_zeroed > 0, "counters moved");

    /* NULL handles. */
    EXPECT_ERRNO(nommu_mmap(NULL, NULL, PAGE, rw, anon, -1, 0), MAP_FAILED, EINVAL, "NULL process");
    EXPECT_ERRNO(nommu_process_create(NULL), NULL, EINVAL, "NULL system");
    EXPECT_ERRNO(nommu_get_stats(NULL, &st), -1, EINVAL, "NULL system stats");

    /* vfork shares; exit releases. */
    nommu_process *c = nommu_vfork(p);
    CHECK(c != NULL && nommu_getpid(c) != nommu_getpid(p), "vfork");
    void *shared = nommu_mmap(c, NULL, PAGE, rw, anon, -1, 0);
    CHECK(nommu_munmap(p, shared, PAGE) == 0, "the parent unmaps the child's mapping (one address space)");
    nommu_process_exit(c);
    nommu_process_exit(p);
    nommu_system_destroy(sys);

    more_rows();
    file_rows();
    exec_rows();
    malloc_rows();
    null_and_bad_rows();
    extreme_rows();
    lifecycle_rows();
    edge_sweep();
    posix_rows();
    reference_rows();

    printf("abi-check: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
