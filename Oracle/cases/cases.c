/* SPDX-License-Identifier: Apache-2.0
 *
 * The oracle's cases: each a behaviour of no-MMU mmap and its neighbours that a kernel can
 * show, printed as normalised lines. Names start with the area (val_, anon_, trim_, file_,
 * ramfs_, dev_, munmap_, mremap_, maps_, futex_, shm_, proc_, mmu_, brk_, vfork_). A case
 * runs in a fresh process of a freshly booted kernel (or a fresh nommu system), with
 * /proc, /dev, /tmp and /dev/shm mounted and nr_trim_pages at its default of 1. */
#include "oracle.h"

#define PAGE 4096UL
#define RW (O_PROT_READ | O_PROT_WRITE)
#define ANON (O_MAP_PRIVATE | O_MAP_ANONYMOUS)

static long anon(o_size len) { return o_mmap(0, len, RW, ANON, -1, 0); }

/* Writes `text` to the file at `path` (a sysctl); the write's result. */
static long write_text(const char *path, const char *text) {
    long fd = o_open(path, O_WRONLY_, 0);
    if (o_is_error(fd)) return fd;
    long n = o_write((int)fd, text, o_strlen(text));
    o_close((int)fd);
    return n;
}

/* Writes `text` to /proc/sys/vm/nr_trim_pages; the write's result. */
static long set_trim(const char *text) { return write_text("/proc/sys/vm/nr_trim_pages", text); }

/* A tmpfs file of `size` bytes written with write() (byte i = i * 7 + 1), open O_RDWR. Its
 * pages are written a page at a time between pages of a spacer file, so they are not
 * contiguous (where a kernel's page allocator puts pages written in a row is chance). */
static long written_file(const char *path, o_size size) {
    static unsigned char chunk[4096];
    long fd = o_open(path, O_RDWR_ | O_CREAT_ | O_TRUNC_, 0600);
    long spacer = o_open("/tmp/spacer", O_RDWR_ | O_CREAT_ | O_APPEND_, 0600);
    if (o_is_error(fd)) return fd;
    for (o_size at = 0; at < size;) {
        o_size n = size - at < sizeof chunk ? size - at : sizeof chunk;
        for (o_size i = 0; i < n; i++) chunk[i] = (unsigned char)((at + i) * 7 + 1);
        long w = o_write((int)fd, chunk, n);
        if (o_is_error(w) || w == 0) return o_is_error(w) ? w : -O_ENOSPC;
        o_write((int)spacer, chunk, sizeof chunk);
        at += (o_size)w;
    }
    o_close((int)spacer);
    return fd;
}

/* Whether [p, p + n) holds the pattern of written_file from byte `from`. */
static int holds_pattern(const void *p, o_size from, o_size n) {
    const volatile unsigned char *b = p;
    for (o_size i = 0; i < n; i++)
        if (b[i] != (unsigned char)((from + i) * 7 + 1)) return 0;
    return 1;
}

/* ---- mmap's validation (validate_mmap_request and the syscall entry) ---- */

static void case_val_fixed(void) {
    o_ok("MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED at 0", o_mmap(0, PAGE, RW, ANON | O_MAP_FIXED, -1, 0));
    o_ok("MAP_FIXED at 1 MiB", o_mmap((void *)0x100000, PAGE, RW, ANON | O_MAP_FIXED, -1, 0));
}

static void case_val_type(void) {
    o_ok("map type 0", o_mmap(0, PAGE, RW, O_MAP_ANONYMOUS, -1, 0));
    o_ok("MAP_SHARED_VALIDATE", o_mmap(0, PAGE, RW, O_MAP_SHARED_VALIDATE | O_MAP_ANONYMOUS, -1, 0));
    o_ok("type 0x0f", o_mmap(0, PAGE, RW, 0x0f | O_MAP_ANONYMOUS, -1, 0));
}

static void case_val_length(void) {
    o_ok("len 0", anon(0));
    o_ok("len ULONG_MAX", anon(~0UL));
    o_ok("len 2^48", anon(1UL << 48));
    o_ok("len 2^63", anon(1UL << 63));
    o_ok("len 8 MiB (above the largest block)", anon(8UL << 20));
}

static void case_val_offset(void) {
    long fd = written_file("/tmp/f", 2 * PAGE);
    o_ok("private read, offset 1 (not page aligned)", o_mmap(0, PAGE, O_PROT_READ, O_MAP_PRIVATE, (int)fd, 1));
    o_ok("offset 1 with a bad descriptor", o_mmap(0, PAGE, O_PROT_READ, O_MAP_PRIVATE, 99, 1));
    o_ok("offset -4096", o_mmap(0, PAGE, O_PROT_READ, O_MAP_PRIVATE, (int)fd, -4096));
    o_ok("offset 2^62 (far past the end)", o_mmap(0, PAGE, O_PROT_READ, O_MAP_PRIVATE, (int)fd, 1L << 62));
}

static void case_val_descriptor(void) {
    o_ok("file mapping, descriptor 99 (closed)", o_mmap(0, PAGE, O_PROT_READ, O_MAP_PRIVATE, 99, 0));
    o_ok("file mapping, descriptor -1", o_mmap(0, PAGE, O_PROT_READ, O_MAP_PRIVATE, -1, 0));
    long a = o_mmap(0, PAGE, RW, ANON, 77, 0);
    o_addr("anonymous, descriptor 77 (ignored)", a);
    long b = o_mmap(0, PAGE, RW, ANON, -1, 0);
    o_bool("anonymous, descriptor -1", !o_is_error(b));
}

static void case_val_hint(void) {
    long a = anon(PAGE);
    o_addr("first", a);
    long b = o_mmap((void *)(a + 16 * PAGE), PAGE, RW, ANON, -1, 0);
    o_ok("address hint without MAP_FIXED", b);
}

static void case_val_unknown_flags(void) {
    o_ok("MAP_GROWSDOWN|MAP_LOCKED|MAP_NORESERVE|MAP_POPULATE", o_mmap(0, PAGE, RW,
                                                                     ANON | O_MAP_GROWSDOWN | O_MAP_LOCKED |
                                                                         O_MAP_NORESERVE | O_MAP_POPULATE,
                                                                     -1, 0));
    o_ok("MAP_STACK|MAP_NONBLOCK", o_mmap(0, PAGE, RW, ANON | O_MAP_STACK | O_MAP_NONBLOCK, -1, 0));
    o_ok("PROT_SEM", o_mmap(0, PAGE, RW | O_PROT_SEM, ANON, -1, 0));
    o_ok("PROT_NONE", o_mmap(0, PAGE, O_PROT_NONE, ANON, -1, 0));
    o_ok("PROT_EXEC", o_mmap(0, PAGE, RW | O_PROT_EXEC, ANON, -1, 0));
}

/* ---- anonymous memory: sizes, zeroing, trimming ---- */

static void case_anon_one_byte(void) {
    long before = o_mmap_copy_kb();
    long a = anon(1);
    o_addr("anon 1 byte", a);
    o_bool("page aligned", !o_is_error(a) && (a & 4095) == 0);
    o_bool("page reads zero", !o_is_error(a) && o_all((void *)a, 0, PAGE));
    o_val("MmapCopy delta kB", o_mmap_copy_kb() - before);
}

static void trim_case(const char *trim, o_size pages) {
    if (trim) o_val("nr_trim_pages write", set_trim(trim));
    long before = o_mmap_copy_kb();
    long a = anon(pages * PAGE);
    o_addr("anon", a);
    o_val("MmapCopy delta kB", o_mmap_copy_kb() - before);
    o_bool("zeroed", !o_is_error(a) && o_all((void *)a, 0, pages * PAGE));
    if (!o_is_error(a)) {
        o_memset((void *)a, 0x5a, pages * PAGE);
        o_ok("munmap", o_munmap((void *)a, pages * PAGE));
    }
    o_val("MmapCopy after munmap delta kB", o_mmap_copy_kb() - before);
    if (trim) set_trim("1");
}

static void case_trim_1_three_pages(void) { trim_case(0, 3); }
static void case_trim_0_three_pages(void) { trim_case("0", 3); }
static void case_trim_2_three_pages(void) { trim_case("2", 3); }
static void case_trim_2_five_pages(void) { trim_case("2", 5); }
static void case_trim_0_four_pages(void) { trim_case("0", 4); }
static void case_trim_1_seven_pages(void) { trim_case(0, 7); }
static void case_trim_1_nine_pages(void) { trim_case(0, 9); }
static void case_trim_0_five_pages(void) { trim_case("0", 5); }

static void case_trim_0_slack_not_cleared(void) {
    /* With nr_trim_pages 0 a 3-page mapping keeps its 4-page block; only the 3 pages are
     * cleared, and mremap cannot grow into the fourth (it lies past vm_end). */
    set_trim("0");
    long a = anon(4 * PAGE);
    if (!o_is_error(a)) o_memset((void *)a, 0x77, 4 * PAGE);
    o_munmap((void *)a, 4 * PAGE);
    long b = anon(3 * PAGE);
    o_bool("3 pages zeroed", !o_is_error(b) && o_all((void *)b, 0, 3 * PAGE));
    o_ok("mremap into the slack (3 -> 4 pages)", o_mremap((void *)b, 3 * PAGE, 4 * PAGE, 0));
    set_trim("1");
}

static void case_trim_sysctl(void) {
    static char text[64];
    o_read_file("/proc/sys/vm/nr_trim_pages", text, sizeof text);
    o_str("nr_trim_pages reads", text[0] ? text : "(empty)");
    o_val("write -1", set_trim("-1"));
    o_val("write abc", set_trim("abc"));
    o_val("write 0x10", set_trim("0x10"));
    o_read_file("/proc/sys/vm/nr_trim_pages", text, sizeof text);
    o_str("then reads", text);
    o_val("write 3 blanks", set_trim("  3"));
    o_val("write +4", set_trim("+4"));
    o_val("write 5 then text", set_trim("5 7"));
    o_read_file("/proc/sys/vm/nr_trim_pages", text, sizeof text);
    o_str("then reads", text);
    set_trim("1");
}

/* Prints the text of the sysctl /proc/sys/vm/NAME as `what`. */
static void show_vm(const char *what, const char *name) {
    static char path[64], text[64];
    o_cat(o_cat(path, "/proc/sys/vm/"), name);
    text[0] = 0;
    o_read_file(path, text, sizeof text);
    o_str(what, text);
}

/* vm.overcommit_*: the handlers' rules; without an MMU no mapping consults them. */
static void case_overcommit_sysctls(void) {
    show_vm("overcommit_memory reads", "overcommit_memory");
    show_vm("overcommit_ratio reads", "overcommit_ratio");
    show_vm("overcommit_kbytes reads", "overcommit_kbytes");
    o_val("overcommit_memory write 3", write_text("/proc/sys/vm/overcommit_memory", "3"));
    o_val("overcommit_memory write -1", write_text("/proc/sys/vm/overcommit_memory", "-1"));
    o_val("overcommit_kbytes write 4", write_text("/proc/sys/vm/overcommit_kbytes", "4"));
    show_vm("then overcommit_ratio reads", "overcommit_ratio");
    o_val("overcommit_kbytes write -4", write_text("/proc/sys/vm/overcommit_kbytes", "-4"));
    o_val("overcommit_ratio write -7", write_text("/proc/sys/vm/overcommit_ratio", "-7"));
    show_vm("then overcommit_kbytes reads", "overcommit_kbytes");
    o_val("overcommit_kbytes write 18446744073709551615",
          write_text("/proc/sys/vm/overcommit_kbytes", "18446744073709551615"));
    show_vm("then overcommit_kbytes reads", "overcommit_kbytes");
    o_val("overcommit_kbytes write 4", write_text("/proc/sys/vm/overcommit_kbytes", "4"));
    o_val("overcommit_memory write 2 (never)", write_text("/proc/sys/vm/overcommit_memory", "2"));
    show_vm("then overcommit_memory reads", "overcommit_memory");
    long a = anon(1UL << 20);
    o_addr("1 MiB anon under a 4 kB commit limit", a);
    o_bool("zeroed", !o_is_error(a) && o_all((void *)a, 0, 1UL << 20));
}

static void case_anon_too_big(void) {
    long before = o_mmap_copy_kb();
    o_ok("anon 4 MiB + 1 page", anon((4UL << 20) + PAGE));
    o_ok("anon 64 MiB", anon(64UL << 20));
    o_val("MmapCopy delta kB", o_mmap_copy_kb() - before);
}

static void case_anon_four_mib(void) {
    long a = anon(4UL << 20);
    o_ok("anon 4 MiB (the largest block)", a);
    o_bool("mapped and zeroed", !o_is_error(a) && o_all((void *)a, 0, 4UL << 20));
}

static void case_anon_uninitialized(void) {
    long before = o_mmap_copy_kb();
    long a = o_mmap(0, 3 * PAGE, RW, ANON | O_MAP_UNINITIALIZED, -1, 0);
    o_addr("MAP_UNINITIALIZED (allowed by the config)", a);
    o_val("MmapCopy delta kB", o_mmap_copy_kb() - before);
}

static void case_anon_shared(void) {
    long before = o_mmap_copy_kb();
    long a = o_mmap(0, 2 * PAGE, RW, O_MAP_SHARED | O_MAP_ANONYMOUS, -1, 0);
    o_addr("MAP_SHARED|MAP_ANONYMOUS", a);
    o_bool("zeroed", !o_is_error(a) && o_all((void *)a, 0, 2 * PAGE));
    o_val("MmapCopy delta kB", o_mmap_copy_kb() - before);
    o_maps("maps", "/proc/self/maps");
    o_ok("munmap its second page", o_munmap((void *)(a + PAGE), PAGE));
    o_ok("mremap it (1 page, to the same)", o_mremap((void *)a, PAGE, PAGE, 0));
}

/* ---- files ---- */

static void case_file_private_copy(void) {
    long fd = written_file("/tmp/f", 6000);
    long before = o_mmap_copy_kb();
    long a = o_mmap(0, 8192, O_PROT_READ, O_MAP_PRIVATE, (int)fd, 0);
    o_addr("private read of a 6000-byte written file, 8192 bytes", a);
    o_bool("bytes 0..5999 are the file", !o_is_error(a) && holds_pattern((void *)a, 0, 6000));
    o_bool("bytes 6000..8191 are zero", !o_is_error(a) && o_all((void *)(a + 6000), 0, 8192 - 6000));
    o_val("MmapCopy delta kB", o_mmap_copy_kb() - before);
    long c = o_mmap(0, 8192, RW, O_MAP_PRIVATE, (int)fd, 0);
    o_bool("writable private: another address", !o_is_error(c) && c != a);
    o_val("MmapCopy delta kB after both", o_mmap_copy_kb() - before);
    o_maps("maps", "/proc/self/maps");
}

/* Two read-only private mappings of one file range in one process share the region: the
 * same address, one copy. (6.1 then keeps one VMA over the other in the process's tree.) */
static void case_region_shared_in_one_process(void) {
    long fd = written_file("/tmp/f", 6000);
    long before = o_mmap_copy_kb();
    long a = o_mmap(0, 8192, O_PROT_READ, O_MAP_PRIVATE, (int)fd, 0);
    o_addr("private read", a);
    o_addr("the same again", o_mmap(0, 8192, O_PROT_READ, O_MAP_PRIVATE, (int)fd, 0));
    o_val("MmapCopy delta kB", o_mmap_copy_kb() - before);
    o_maps("maps", "/proc/self/maps");
}

static void case_file_private_inside(void) {
    long fd = written_file("/tmp/f", 4 * PAGE + 100);
    long a = o_mmap(0, 4 * PAGE, O_PROT_READ, O_MAP_PRIVATE, (int)fd, 0);
    o_addr("private read of pages 0-3 (written, so a copy)", a);
    o_addr("pages 1-2 (inside)", o_mmap(0, 2 * PAGE, O_PROT_READ, O_MAP_PRIVATE, (int)fd, PAGE));
    /* (Pages 3-4, overlapping past the region's end, are left out: 6.1 maps them, and then
     * drops a file reference too many, and the case does not always finish: divergences.md.) */
}

static void case_file_wronly(void) {
    written_file("/tmp/f", PAGE);
    long fd = o_open("/tmp/f", O_WRONLY_, 0);
    o_ok("private read of an O_WRONLY descriptor", o_mmap(0, PAGE, O_PROT_READ, O_MAP_PRIVATE, (int)fd, 0));
    o_ok("shared read of an O_WRONLY descriptor", o_mmap(0, PAGE, O_PROT_READ, O_MAP_SHARED, (int)fd, 0));
    long ro = o_open("/tmp/f", O_RDONLY_, 0);
    o_ok("shared write of an O_RDONLY descriptor", o_mmap(0, PAGE, RW, O_MAP_SHARED, (int)ro, 0));
}

static void case_file_pipe_fifo(void) {
    int fds[2] = {-1, -1};
    o_ok("pipe", o_pipe(fds));
    o_ok("private map of a pipe", o_mmap(0, PAGE, O_PROT_READ, O_MAP_PRIVATE, fds[0], 0));
    o_ok("shared map of a pipe", o_mmap(0, PAGE, O_PROT_READ, O_MAP_SHARED, fds[0], 0));
    o_ok("mkfifo /tmp/q", o_mkfifo("/tmp/q", 0600));
    long q = o_open("/tmp/q", O_RDWR_, 0);
    o_ok("open it O_RDWR", q);
    o_ok("private map of the FIFO", o_mmap(0, PAGE, O_PROT_READ, O_MAP_PRIVATE, (int)q, 0));
}

static void case_file_directory(void) {
    long d = o_open("/tmp", O_RDONLY_, 0);
    o_ok("open /tmp", d);
    o_ok("private map of a directory", o_mmap(0, PAGE, O_PROT_READ, O_MAP_PRIVATE, (int)d, 0));
    o_ok("read of a directory", o_read((int)d, &d, 1));
}

static void case_file_socket(void) {
    /* A socket has f_op->mmap (sock_mmap) but no mmap_capabilities, and S_IFSOCK is none of
     * the modes validate_mmap_request gives defaults to. */
    long s = o_socket(O_AF_UNIX, O_SOCK_STREAM, 0);
    o_ok("AF_UNIX stream socket", s);
    o_ok("private map of a socket", o_mmap(0, PAGE, O_PROT_READ, O_MAP_PRIVATE, (int)s, 0));
    o_ok("shared map of a socket", o_mmap(0, PAGE, RW, O_MAP_SHARED, (int)s, 0));
    o_ok("read of an unconnected stream socket", o_read((int)s, &s, 1));
    o_ok("write to it", o_write((int)s, "x", 1));
    long d = o_socket(O_AF_UNIX, O_SOCK_DGRAM, 0);
    o_ok("AF_UNIX datagram socket", d);
    o_ok("write to it", o_write((int)d, "x", 1));
    o_ok("private map of it", o_mmap(0, PAGE, O_PROT_READ, O_MAP_PRIVATE, (int)d, 0));
    long q = o_socket(O_AF_UNIX, O_SOCK_SEQPACKET, 0);
    o_ok("AF_UNIX seqpacket socket", q);
    o_ok("read of it", o_read((int)q, &s, 1));
    o_ok("write to it", o_write((int)q, "x", 1));
    o_ok("pread of it", o_pread((int)q, &s, 1, 0));
    o_ok("AF_UNIX raw socket", o_socket(O_AF_UNIX, O_SOCK_RAW, 0));
    o_ok("AF_UNIX packet-type socket", o_socket(O_AF_UNIX, O_SOCK_PACKET, 0));
    o_ok("type 11", o_socket(O_AF_UNIX, 11, 0));
    o_ok("AF_UNIX with protocol 6", o_socket(O_AF_UNIX, O_SOCK_STREAM, 6));
    o_ok("family 45", o_socket(45, O_SOCK_STREAM, 0));
    o_ok("family -1", o_socket(-1, O_SOCK_STREAM, 0));
}

/* ---- ramfs (tmpfs without an MMU) ---- */

static void case_ramfs_truncate_shared(void) {
    long fd = o_open("/dev/shm/ring", O_RDWR_ | O_CREAT_, 0600);
    o_ok("ftruncate 0 -> 3 pages", o_ftruncate((int)fd, 3 * PAGE));
    long before = o_mmap_copy_kb();
    long a = o_mmap(0, 3 * PAGE, RW, O_MAP_SHARED, (int)fd, 0);
    o_addr("shared 3 pages", a);
    o_bool("zero", !o_is_error(a) && o_all((void *)a, 0, 3 * PAGE));
    if (!o_is_error(a)) o_memset((void *)a, 0x42, 10);
    static char buf[16];
    o_val("pread sees the mapping's writes", o_pread((int)fd, buf, 10, 0));
    o_bool("they are the bytes written", o_all(buf, 0x42, 10));
    o_val("MmapCopy delta kB", o_mmap_copy_kb() - before);
    o_maps("maps", "/proc/self/maps");
    o_ok("shrink to 1 page under the shared mapping", o_ftruncate((int)fd, PAGE));
    o_ok("ftruncate to 3 pages (the size it has)", o_ftruncate((int)fd, 3 * PAGE));
}

/* A read-only private mapping of a contiguous ramfs file is the page cache itself. */
static void case_ramfs_private_overlay(void) {
    long fd = o_open("/tmp/c", O_RDWR_ | O_CREAT_, 0600);
    o_ok("ftruncate 0 -> 2 pages", o_ftruncate((int)fd, 2 * PAGE));
    o_val("pwrite 5 bytes", o_pwrite((int)fd, "hello", 5, 100));
    long before = o_mmap_copy_kb();
    long a = o_mmap(0, 2 * PAGE, O_PROT_READ, O_MAP_PRIVATE, (int)fd, 0);
    o_addr("private read", a);
    o_bool("it shows the bytes written", !o_is_error(a) && ((const char *)a)[100] == 'h');
    o_val("MmapCopy delta kB (no copy)", o_mmap_copy_kb() - before);
    o_val("pwrite after the mapping", o_pwrite((int)fd, "J", 1, 100));
    o_bool("the mapping shows it (the page cache itself)", !o_is_error(a) && ((const char *)a)[100] == 'J');
    o_maps("maps", "/proc/self/maps");
}

static void case_ramfs_empty_and_past_end(void) {
    long fd = o_open("/tmp/e", O_RDWR_ | O_CREAT_, 0600);
    o_ok("shared map of an empty file", o_mmap(0, PAGE, RW, O_MAP_SHARED, (int)fd, 0));
    o_ok("ftruncate 0 -> 1 page", o_ftruncate((int)fd, PAGE));
    o_ok("shared map of 2 pages (past the end)", o_mmap(0, 2 * PAGE, RW, O_MAP_SHARED, (int)fd, 0));
    o_ok("shared map at page 1 (past the end)", o_mmap(0, PAGE, RW, O_MAP_SHARED, (int)fd, PAGE));
    o_ok("shared map of the 1 page", o_mmap(0, PAGE, RW, O_MAP_SHARED, (int)fd, 0));
}

static void case_ramfs_written_not_contiguous(void) {
    /* Pages written one at a time between another file's pages are not contiguous. */
    long f = o_open("/tmp/f", O_RDWR_ | O_CREAT_, 0600), g = o_open("/tmp/g", O_RDWR_ | O_CREAT_, 0600);
    static unsigned char page[4096];
    for (int i = 0; i < 3; i++) {
        o_memset(page, 'a' + i, sizeof page);
        o_write((int)f, page, sizeof page);
        o_write((int)g, page, sizeof page);
    }
    o_ok("shared map of a written 3-page file", o_mmap(0, 3 * PAGE, RW, O_MAP_SHARED, (int)f, 0));
    long before = o_mmap_copy_kb();
    long a = o_mmap(0, 3 * PAGE, O_PROT_READ, O_MAP_PRIVATE, (int)f, 0);
    o_addr("private read of it (a copy)", a);
    o_bool("the copy holds the data", !o_is_error(a) && o_all((void *)a, 'a', PAGE) &&
                                           o_all((void *)(a + 2 * PAGE), 'c', PAGE));
    o_val("MmapCopy delta kB", o_mmap_copy_kb() - before);
}

static void case_ramfs_efbig(void) {
    long fd = o_open("/tmp/big", O_RDWR_ | O_CREAT_, 0600);
    o_ok("ftruncate 0 -> 4 GiB", o_ftruncate((int)fd, 1L << 32));
    o_ok("ftruncate 0 -> 64 MiB (no contiguous run)", o_ftruncate((int)fd, 64L << 20));
    o_ok("ftruncate 0 -> 1 page", o_ftruncate((int)fd, PAGE));
    o_ok("ftruncate 1 page -> 3 pages (grow a non-empty file)", o_ftruncate((int)fd, 3 * PAGE));
    o_ok("shared map of the 3 pages", o_mmap(0, 3 * PAGE, RW, O_MAP_SHARED, (int)fd, 0));
    o_ok("ftruncate -1", o_ftruncate((int)fd, -1));
}

static void case_ramfs_shrink_below_mappings(void) {
    long fd = o_open("/tmp/s", O_RDWR_ | O_CREAT_, 0600);
    o_ftruncate((int)fd, 4 * PAGE);
    long a = o_mmap(0, PAGE, RW, O_MAP_SHARED, (int)fd, 0);
    o_addr("shared map of page 0", a);
    o_ok("shrink to 2 pages (the mapping lies below)", o_ftruncate((int)fd, 2 * PAGE));
    o_ok("shrink to 0 (the mapping is cut off)", o_ftruncate((int)fd, 0));
}

/* ---- devices ---- */

static void case_dev_zero(void) {
    long fd = o_open("/dev/zero", O_RDWR_, 0);
    o_ok("open /dev/zero", fd);
    o_ok("shared map of /dev/zero", o_mmap(0, PAGE, RW, O_MAP_SHARED, (int)fd, 0));
    long a = o_mmap(0, PAGE, RW, O_MAP_PRIVATE, (int)fd, 0);
    o_ok("private map of /dev/zero", a);
    o_bool("mapped and zero", !o_is_error(a) && o_all((void *)a, 0, PAGE));
}

static void case_dev_null(void) {
    long fd = o_open("/dev/null", O_RDWR_, 0);
    o_ok("open /dev/null", fd);
    o_ok("private map of /dev/null", o_mmap(0, PAGE, O_PROT_READ, O_MAP_PRIVATE, (int)fd, 0));
    o_ok("shared map of /dev/null", o_mmap(0, PAGE, O_PROT_READ, O_MAP_SHARED, (int)fd, 0));
    o_val("write 5 bytes", o_write((int)fd, "hello", 5));
    char c;
    o_val("read", o_read((int)fd, &c, 1));
}

/* ---- munmap ---- */

static void case_munmap_rules(void) {
    long a = anon(3 * PAGE);
    o_addr("anon 3 pages", a);
    o_ok("munmap len 0", o_munmap((void *)a, 0));
    o_ok("munmap unmapped address", o_munmap((void *)(a + 64 * PAGE), PAGE));
    o_ok("munmap unaligned start inside", o_munmap((void *)(a + 100), PAGE));
    o_ok("munmap past the end", o_munmap((void *)a, 4 * PAGE));
    o_ok("munmap the middle page", o_munmap((void *)(a + PAGE), PAGE));
    o_maps("maps after", "/proc/self/maps");
    o_ok("munmap the first page", o_munmap((void *)a, PAGE));
    o_ok("munmap the last page, unrounded length", o_munmap((void *)(a + 2 * PAGE), 100));
    o_maps("maps at the end", "/proc/self/maps");
}

static void case_munmap_spanning(void) {
    long a = anon(PAGE);
    o_addr("anon 1 page", a);
    o_ok("munmap 2 pages from it", o_munmap((void *)a, 2 * PAGE));
    o_ok("munmap it", o_munmap((void *)a, PAGE));
}

static void case_munmap_file_partial(void) {
    long fd = written_file("/tmp/f", 3 * PAGE);
    long a = o_mmap(0, 3 * PAGE, O_PROT_READ, O_MAP_PRIVATE, (int)fd, 0);
    o_addr("private file mapping, 3 pages", a);
    o_ok("munmap its first page", o_munmap((void *)a, PAGE));
    o_ok("munmap its last page", o_munmap((void *)(a + 2 * PAGE), PAGE));
    o_ok("munmap its middle page", o_munmap((void *)(a + PAGE), PAGE));
    o_ok("munmap it whole", o_munmap((void *)a, 3 * PAGE));
}

static void case_munmap_whole_accounting(void) {
    long before = o_mmap_copy_kb();
    long a = anon(5 * PAGE);
    o_val("MmapCopy delta kB", o_mmap_copy_kb() - before);
    o_ok("munmap whole (unrounded length)", o_munmap((void *)a, 5 * PAGE - 10));
    o_val("MmapCopy delta kB after", o_mmap_copy_kb() - before);
}

/* ---- mremap ---- */

static void case_mremap_rules(void) {
    long a = anon(3 * PAGE);
    o_addr("anon 3 pages", a);
    o_ok("old_len 0", o_mremap((void *)a, 0, PAGE, 0));
    o_ok("new_len 0", o_mremap((void *)a, 3 * PAGE, 0, 0));
    o_ok("unaligned address", o_mremap((void *)(a + 1), 3 * PAGE, 3 * PAGE, 0));
    o_ok("old_len not the mapping's", o_mremap((void *)a, 2 * PAGE, 2 * PAGE, 0));
    o_ok("not the mapping's start", o_mremap((void *)(a + PAGE), 2 * PAGE, 2 * PAGE, 0));
    o_ok("grow 3 -> 4 pages", o_mremap((void *)a, 3 * PAGE, 4 * PAGE, 0));
    o_ok("grow 3 -> 8 pages, MREMAP_MAYMOVE", o_mremap((void *)a, 3 * PAGE, 8 * PAGE, O_MREMAP_MAYMOVE));
    o_addr("same size", o_mremap((void *)a, 3 * PAGE, 3 * PAGE, 0));
    o_ok("unknown flag 8", o_mremap((void *)a, 3 * PAGE, 3 * PAGE, 8));
}

static void case_mremap_file(void) {
    long fd = o_open("/tmp/s", O_RDWR_ | O_CREAT_, 0600);
    o_ftruncate((int)fd, 2 * PAGE);
    long s = o_mmap(0, 2 * PAGE, RW, O_MAP_SHARED, (int)fd, 0);
    o_addr("shared ramfs mapping", s);
    o_ok("mremap it", o_mremap((void *)s, 2 * PAGE, 2 * PAGE, 0));
    long w = written_file("/tmp/f", 2 * PAGE);
    long r = o_mmap(0, 2 * PAGE, O_PROT_READ, O_MAP_PRIVATE, (int)w, 0);
    o_ok("read-only private file mapping", r);
    o_ok("mremap it", o_mremap((void *)r, 2 * PAGE, 2 * PAGE, 0));
    long c = o_mmap(0, 2 * PAGE, RW, O_MAP_PRIVATE, (int)w, 0);
    o_ok("writable private file mapping", c);
    o_ok("mremap it (same size)", o_mremap((void *)c, 2 * PAGE, 2 * PAGE, 0));
}

/* ---- /proc ---- */

static void case_maps_anon_and_shared(void) {
    anon(PAGE);
    anon(3 * PAGE);
    long fd = o_open("/dev/shm/m", O_RDWR_ | O_CREAT_, 0600), ro = o_open("/dev/shm/n", O_RDWR_ | O_CREAT_, 0600);
    o_ftruncate((int)fd, 2 * PAGE);
    o_ftruncate((int)ro, PAGE);
    o_mmap(0, 2 * PAGE, RW, O_MAP_SHARED, (int)fd, 0);
    o_mmap(0, PAGE, O_PROT_READ, O_MAP_SHARED, (int)ro, 0);
    o_maps("self maps", "/proc/self/maps");
}

static void case_maps_private_file(void) {
    long fd = written_file("/tmp/f", 2 * PAGE);
    o_mmap(0, 2 * PAGE, O_PROT_READ, O_MAP_PRIVATE, (int)fd, 0);
    o_mmap(0, PAGE, RW, O_MAP_PRIVATE, (int)fd, 0);
    o_maps("self maps", "/proc/self/maps");
}

static void case_proc_meminfo_mapping(void) {
    long fd = o_open("/proc/meminfo", O_RDONLY_, 0);
    o_ok("open /proc/meminfo", fd);
    long a = o_mmap(0, PAGE, O_PROT_READ, O_MAP_PRIVATE, (int)fd, 0);
    o_ok("private map of /proc/meminfo", a);
    const char *t = (const char *)a;
    o_bool("mapped, and it starts MemTotal", !o_is_error(a) && t[0] == 'M' && t[1] == 'e' && t[2] == 'm' && t[3] == 'T');
    o_ok("shared map of /proc/meminfo", o_mmap(0, PAGE, O_PROT_READ, O_MAP_SHARED, (int)fd, 0));
}

static void case_proc_files(void) {
    static char text[256];
    o_ok("/proc/sys/vm/max_map_count", o_read_file("/proc/sys/vm/max_map_count", text, sizeof text));
    o_ok("/proc/sys/vm/overcommit_memory", o_read_file("/proc/sys/vm/overcommit_memory", text, sizeof text));
    o_ok("/proc/01/status", o_read_file("/proc/01/status", text, sizeof text));
    o_ok("/proc/+1/status", o_read_file("/proc/+1/status", text, sizeof text));
    o_ok("/proc/self/status", o_read_file("/proc/self/status", text, sizeof text));
    long fd = o_open("/proc/self/maps", O_RDONLY_, 0);
    o_ok("write /proc/self/maps", o_open("/proc/self/maps", O_WRONLY_, 0));
    o_ok("private map of /proc/self/maps", o_mmap(0, PAGE, O_PROT_READ, O_MAP_PRIVATE, (int)fd, 0));
}

/* /proc/<pid>/maps as ptrace_may_access(PTRACE_MODE_READ_FSCREDS) allows it, and setuid. */
static void case_proc_maps_credentials(void) {
    static char text[4096];
    o_ok("root reads /proc/1/maps (init's)", o_read_file("/proc/1/maps", text, sizeof text));
    o_ok("setuid 1000", o_setuid(1000));
    o_ok("then /proc/1/maps", o_read_file("/proc/1/maps", text, sizeof text));
    o_ok("its own maps", o_read_file("/proc/self/maps", text, sizeof text));
    o_ok("open its maps for writing", o_open("/proc/self/maps", O_WRONLY_, 0));
    o_ok("open /proc/meminfo for writing", o_open("/proc/meminfo", O_WRONLY_, 0));
    o_ok("setuid 0 again", o_setuid(0));
    o_ok("setuid 1000 (itself)", o_setuid(1000));
    o_ok("setuid 1001", o_setuid(1001));
}

static void case_proc_root_writes(void) {
    long fd = o_open("/proc/meminfo", O_WRONLY_, 0);
    o_ok("root opens /proc/meminfo for writing", fd);
    o_ok("a write to it", o_write((int)fd, "1", 1));
    long m = o_open("/proc/self/maps", O_WRONLY_, 0);
    o_ok("root opens /proc/self/maps for writing", m);
    o_ok("a write to it", o_write((int)m, "1", 1));
}

/* ---- futex ---- */

static void case_futex_addresses(void) {
    long a = anon(PAGE);
    o_u32 *w = (o_u32 *)a;
    long zero[2] = {0, 0};
    o_ok("WAKE on a mapped word", o_futex(w, O_FUTEX_WAKE, 1, 0));
    o_ok("WAKE unaligned", o_futex((o_u32 *)(a + 2), O_FUTEX_WAKE, 1, 0));
    o_ok("WAIT, value differs", o_futex(w, O_FUTEX_WAIT, 1, zero));
    o_ok("WAIT, value equal, zero timeout", o_futex(w, O_FUTEX_WAIT, 0, zero));
    o_ok("WAKE at an unmapped address", o_futex((o_u32 *)(a + 64 * PAGE), O_FUTEX_WAKE, 1, 0));
    o_ok("unknown op 99", o_futex(w, 99, 0, 0));
    long bad[2] = {0, 1000000000};
    o_ok("WAIT, tv_nsec 1e9", o_futex(w, O_FUTEX_WAIT, 0, bad));
}

/* ---- SysV and POSIX shared memory ---- */

static void case_shm_sysv(void) {
    long id = o_shmget(O_IPC_PRIVATE, 2 * PAGE, O_IPC_CREAT | 0600);
    o_ok("shmget 2 pages", id);
    o_ok("shmat at an address", o_shmat((int)id, (void *)0x100000, 0));
    long a = o_shmat((int)id, 0, 0);
    o_ok("shmat", a);
    o_bool("attached and zero", !o_is_error(a) && o_all((void *)a, 0, 2 * PAGE));
    o_ok("shmdt of no attach", o_shmdt((void *)0x1000));
    o_ok("shmctl IPC_STAT of a bad id, NULL", o_shmctl(12345, O_IPC_STAT, 0));
    o_ok("IPC_RMID", o_shmctl((int)id, O_IPC_RMID, 0));
    o_ok("shmget with IPC_EXCL of a private key", o_shmget(O_IPC_PRIVATE, PAGE, O_IPC_CREAT | O_IPC_EXCL | 0600));
    o_ok("shmget of 0 bytes", o_shmget(O_IPC_PRIVATE, 0, O_IPC_CREAT | 0600));
}

static void case_shm_posix(void) {
    long fd = o_open("/dev/shm/p", O_RDWR_ | O_CREAT_ | O_EXCL_, 0600);
    o_ok("open /dev/shm/p", fd);
    o_ok("again, O_EXCL", o_open("/dev/shm/p", O_RDWR_ | O_CREAT_ | O_EXCL_, 0600));
    o_ok("ftruncate 2 pages", o_ftruncate((int)fd, 2 * PAGE));
    long a = o_mmap(0, 2 * PAGE, RW, O_MAP_SHARED, (int)fd, 0);
    o_addr("shared map", a);
    o_ok("PROT_EXEC shared map (/dev/shm is noexec)", o_mmap(0, 2 * PAGE, RW | O_PROT_EXEC, O_MAP_SHARED,
                                                                      (int)fd, 0));
    o_ok("unlink", o_unlink("/dev/shm/p"));
    o_bool("the mapping still works", !o_is_error(a) && (*(volatile char *)a = 1) == 1);
}

/* ---- the calls a kernel without an MMU lacks ---- */

static void case_mmu_calls(void) {
    long a = anon(PAGE);
    unsigned char vec[4];
    o_ok("mprotect", o_mprotect((void *)a, PAGE, O_PROT_READ));
    o_ok("madvise", o_madvise((void *)a, PAGE, 0));
    o_ok("mlock", o_mlock((void *)a, PAGE));
    o_ok("msync", o_msync((void *)a, PAGE, 0));
    o_ok("mincore", o_mincore((void *)a, PAGE, vec));
}

/* ---- brk ---- */

static void case_brk(void) {
    long b = o_brk(0);
    long grown = o_brk((void *)(b + 64 * PAGE));
    o_bool("brk beyond the end returns the old break", grown == b);
    o_bool("brk(0) twice agrees", o_brk(0) == b);
}

/* ---- vfork ---- */

static long child_mapping;
static void child_maps(void) { child_mapping = anon(2 * PAGE); }

static void case_vfork_shares(void) {
    long pid = o_vfork_run(child_maps);
    o_bool("vfork", pid > 0);
    o_addr("the child's mapping", child_mapping);
    o_ok("the parent unmaps it (one address space)", o_munmap((void *)child_mapping, 2 * PAGE));
}

/* vfork is clone(CLONE_VM | CLONE_VFORK): the memory is shared, the descriptor table copied. */
static long child_fd = -1;
static void child_opens(void) { child_fd = o_open("/tmp/child", O_RDWR_ | O_CREAT_, 0600); }

static void case_vfork_descriptors(void) {
    long mine = o_open("/tmp/parent", O_RDWR_ | O_CREAT_, 0600);
    o_ok("the parent opens a file", mine);
    o_bool("vfork", o_vfork_run(child_opens) > 0);
    o_ok("the child opened one", child_fd);
    o_ok("the parent writes to the child's descriptor", o_write((int)child_fd, "x", 1));
    o_ok("the parent closes the child's descriptor", o_close((int)child_fd));
    o_ok("the parent's own descriptor still works", o_write((int)mine, "y", 1));
}

static void case_ramfs_otrunc_under_shared(void) {
    long fd = o_open("/tmp/t", O_RDWR_ | O_CREAT_, 0600);
    o_ftruncate((int)fd, 2 * PAGE);
    long a = o_mmap(0, 2 * PAGE, RW, O_MAP_SHARED, (int)fd, 0);
    o_addr("shared map of 2 pages", a);
    o_ok("open O_TRUNC under the shared mapping", o_open("/tmp/t", O_RDWR_ | O_TRUNC_, 0));
    o_ok("open O_TRUNC O_RDONLY (no truncation without write)", o_open("/tmp/t", O_RDONLY_ | O_TRUNC_, 0));
    o_ok("ftruncate to the same size", o_ftruncate((int)fd, 2 * PAGE));
    o_ok("munmap", o_munmap((void *)a, 2 * PAGE));
    o_ok("then O_TRUNC", o_open("/tmp/t", O_RDWR_ | O_TRUNC_, 0));
}

static void case_dev_zero_rw(void) {
    long fd = o_open("/dev/zero", O_RDWR_, 0);
    static unsigned char buf[100];
    o_memset(buf, 7, sizeof buf);
    o_val("read 100 bytes", o_read((int)fd, buf, sizeof buf));
    o_bool("they are zero", o_all(buf, 0, sizeof buf));
    o_val("write 100 bytes", o_write((int)fd, buf, sizeof buf));
    o_val("pread at 12345", o_pread((int)fd, buf, 10, 12345));
}

static void case_fifo_nonblock(void) {
    o_ok("mkfifo", o_mkfifo("/tmp/q", 0600));
    o_ok("O_WRONLY|O_NONBLOCK with no reader", o_open("/tmp/q", O_WRONLY_ | O_NONBLOCK_, 0));
    long r = o_open("/tmp/q", O_RDONLY_ | O_NONBLOCK_, 0);
    o_ok("O_RDONLY|O_NONBLOCK", r);
    long w = o_open("/tmp/q", O_WRONLY_ | O_NONBLOCK_, 0);
    o_ok("then O_WRONLY|O_NONBLOCK", w);
    static char buf[4096];
    o_val("read of the empty FIFO", o_read((int)r, buf, 10));
    long total = 0;
    for (int i = 0; i < 15; i++) total += o_write((int)w, buf, sizeof buf);
    o_val("fifteen 4096-byte writes", total);
    o_val("4096 more (a page of room left)", o_write((int)w, buf, sizeof buf));
    o_val("100 more (none left)", o_write((int)w, buf, 100));
    o_val("read 10", o_read((int)r, buf, 10));
    o_val("100 more (4086 free, but no whole page)", o_write((int)w, buf, 100));
    o_ok("close the reader", o_close((int)r));
    o_ok("write with no reader", o_write((int)w, buf, 1));
}

static void case_file_descriptor_rules(void) {
    long fd = written_file("/tmp/f", 100);
    o_ok("close", o_close((int)fd));
    o_ok("close again", o_close((int)fd));
    o_ok("read a closed descriptor", o_read((int)fd, &fd, 1));
    o_ok("open a missing file", o_open("/tmp/none", O_RDONLY_, 0));
    o_ok("open a file with a trailing slash", o_open("/tmp/f/", O_RDONLY_, 0));
    o_ok("O_CREAT with a trailing slash", o_open("/tmp/new/", O_RDWR_ | O_CREAT_, 0600));
    o_ok("O_DIRECTORY on a file", o_open("/tmp/f", O_RDONLY_ | O_DIRECTORY_, 0));
    o_ok(".. through a missing component", o_open("/tmp/none/../f", O_RDONLY_, 0));
    o_ok(".. through a file", o_open("/tmp/f/../f", O_RDONLY_, 0));
    long d = o_open("/tmp/../tmp/f", O_RDONLY_, 0);
    o_ok(".. through a directory", d);
    o_ok("unlink with a trailing slash", o_unlink("/tmp/f/"));
    o_ok("pread at offset -1", o_pread((int)d, &fd, 1, -1));
    int fds[2];
    o_pipe(fds);
    o_ok("pread of a pipe", o_pread(fds[0], &fd, 1, 0));
    o_ok("write to a read end", o_write(fds[0], "x", 1));
}

/* ---- Two processes, two address spaces (o_spawn) ---- */

/* A read-only private mapping of a file range another process holds shares its region:
 * the same address, one copy (MmapCopy unchanged). */
static void case_region_shared_two_processes(void) {
    long fd = written_file("/tmp/f", 6000);
    long before = o_mmap_copy_kb();
    long a = o_mmap(0, 8192, O_PROT_READ, O_MAP_PRIVATE, (int)fd, 0);
    o_addr("private read", a);
    o_val("MmapCopy delta kB", o_mmap_copy_kb() - before);
    char hex[24];
    o_hex(hex, (unsigned long)a);
    o_ok("another process maps it", o_spawn("map_same_file", hex));
    o_val("MmapCopy delta kB after it exited", o_mmap_copy_kb() - before);
}

static void helper_map_same_file(void) {
    long before = o_mmap_copy_kb();
    long fd = o_open("/tmp/f", O_RDONLY_, 0);
    long a = o_mmap(0, 8192, O_PROT_READ, O_MAP_PRIVATE, (int)fd, 0);
    o_ok("(other) the process's private read", a);
    o_bool("(other) at the same address", (unsigned long)a == o_unhex(o_arg));
    o_val("(other) its MmapCopy delta kB (no new copy)", o_mmap_copy_kb() - before);
    long w = o_mmap(0, 8192, RW, O_MAP_PRIVATE, (int)fd, 0);
    o_bool("(other) a writable private mapping: another address", !o_is_error(w) && (unsigned long)w != o_unhex(o_arg));
    o_maps("(other) its maps", "/proc/self/maps");
}

/* A shared ramfs mapping is the page cache: every process maps the same pages. */
static void case_ramfs_shared_two_processes(void) {
    long fd = o_open("/dev/shm/both", O_RDWR_ | O_CREAT_, 0600);
    o_ok("ftruncate 2 pages", o_ftruncate((int)fd, 2 * PAGE));
    long a = o_mmap(0, 2 * PAGE, RW, O_MAP_SHARED, (int)fd, 0);
    o_addr("shared map", a);
    if (!o_is_error(a)) o_memset((void *)(a + 100), 'Q', 3);
    char hex[24];
    o_hex(hex, (unsigned long)a);
    o_ok("another process maps it", o_spawn("map_same_shm", hex));
    o_bool("the other process's write shows here", !o_is_error(a) && ((const char *)a)[200] == 'R');
}

static void helper_map_same_shm(void) {
    long fd = o_open("/dev/shm/both", O_RDWR_, 0);
    long a = o_mmap(0, 2 * PAGE, RW, O_MAP_SHARED, (int)fd, 0);
    o_ok("(other) the process's shared map", a);
    o_bool("(other) at the same address", (unsigned long)a == o_unhex(o_arg));
    o_bool("(other) it sees the first's bytes", !o_is_error(a) && o_all((const void *)(a + 100), 'Q', 3));
    if (!o_is_error(a)) ((char *)a)[200] = 'R';
    o_ok("(other) munmap", o_munmap((void *)a, 2 * PAGE));
}

/* A futex between two processes: without an MMU the key is the address alone
 * (get_futex_key leaves key.private.mm NULL), so a wake at an address wakes a waiter of
 * another process at it, FUTEX_PRIVATE_FLAG or not. The waiter maps the same ramfs page (same
 * address), marks that it is about to wait, waits, and leaves its outcome in the page. */
static unsigned long shared_futex_page;

static void futex_between_processes(const char *helper, int flag) {
    o_u32 *w = (o_u32 *)shared_futex_page;
    w[0] = 0, w[1] = 0, w[2] = 0;
    char hex[24];
    o_hex(hex, shared_futex_page);
    long h = o_spawn_start(helper, hex);
    o_ok("the waiter started", h);
    long woke = 0;
    for (int i = 0; i < 200000 && !o_is_error(h) && woke == 0; i++) {
        woke = o_futex(w, O_FUTEX_WAKE | flag, 1, 0);
        if (woke == 0) o_yield();
    }
    o_val("a wake at the address woke", woke);
    if (!o_is_error(h)) o_ok("the waiter exited", o_spawn_wait(h));
    o_val("the waiter saw its page", w[1]);
    o_ok("its FUTEX_WAIT", w[2] == 1 ? 0 : -(long)(w[2] - 100));
}

static void case_futex_two_processes(void) {
    long fd = o_open("/dev/shm/fx", O_RDWR_ | O_CREAT_, 0600);
    o_ok("ftruncate 1 page", o_ftruncate((int)fd, PAGE));
    long a = o_mmap(0, PAGE, RW, O_MAP_SHARED, (int)fd, 0);
    o_addr("shared ramfs page", a);
    if (o_is_error(a)) return;
    shared_futex_page = (unsigned long)a;
    futex_between_processes("futex_waiter", 0);
    futex_between_processes("futex_waiter_private", O_FUTEX_PRIVATE_FLAG);
}

static void futex_waiter(int flag) {
    long fd = o_open("/dev/shm/fx", O_RDWR_, 0);
    long a = o_mmap(0, PAGE, RW, O_MAP_SHARED, (int)fd, 0);
    if (o_is_error(a) || (unsigned long)a != o_unhex(o_arg)) return;
    o_u32 *w = (o_u32 *)a;
    w[1] = 1;
    long r = o_futex(w, O_FUTEX_WAIT | flag, 0, 0);
    w[2] = r == 0 ? 1 : (o_u32)(100 - r);
    o_munmap((void *)a, PAGE);
    o_close((int)fd);
}

static void helper_futex_waiter(void) { futex_waiter(0); }
static void helper_futex_waiter_private(void) { futex_waiter(O_FUTEX_PRIVATE_FLAG); }

/* /proc/<pid>/maps of another process, by uid (a spawned process keeps its parent's uid,
 * as exec does). */
static void case_proc_maps_other_user(void) {
    char pid[24];
    o_hex(pid, (unsigned long)o_getpid());
    o_ok("a process that becomes uid 1001 reads root's maps", o_spawn("read_maps_as_1001", pid));
    o_ok("setuid 1000", o_setuid(1000));
    o_ok("then one of uid 1000 (the same) reads them", o_spawn("read_maps_as_1000", pid));
}

static void read_parent_maps(unsigned int uid) {
    static char path[48], text[4096];
    o_cat(o_dec(o_cat(path, "/proc/"), o_unhex(o_arg)), "/maps");
    o_ok("(other) setuid", o_setuid(uid));
    o_ok("(other) read the first's maps", o_read_file(path, text, sizeof text));
}

static void helper_read_maps_as_1001(void) { read_parent_maps(1001); }
static void helper_read_maps_as_1000(void) { read_parent_maps(1000); }

/* The cases, by name (code, not a table of pointers: see oracle.h). */
#define O_CASE_LIST(X)                                                                                                 \
    X(val_fixed)                                                                                                       \
    X(val_type)                                                                                                        \
    X(val_length)                                                                                                      \
    X(val_offset)                                                                                                      \
    X(val_descriptor)                                                                                                  \
    X(val_hint)                                                                                                        \
    X(val_unknown_flags)                                                                                               \
    X(anon_one_byte)                                                                                                   \
    X(trim_1_three_pages)                                                                                              \
    X(trim_0_three_pages)                                                                                              \
    X(trim_2_three_pages)                                                                                              \
    X(trim_2_five_pages)                                                                                               \
    X(trim_0_four_pages)                                                                                               \
    X(trim_1_seven_pages)                                                                                              \
    X(trim_1_nine_pages)                                                                                               \
    X(trim_0_five_pages)                                                                                               \
    X(trim_0_slack_not_cleared)                                                                                        \
    X(trim_sysctl)                                                                                                     \
    X(overcommit_sysctls)                                                                                              \
    X(anon_too_big)                                                                                                    \
    X(anon_four_mib)                                                                                                   \
    X(anon_uninitialized)                                                                                              \
    X(anon_shared)                                                                                                     \
    X(file_private_copy)                                                                                               \
    X(file_private_inside)                                                                                             \
    X(region_shared_in_one_process)                                                                                    \
    X(file_wronly)                                                                                                     \
    X(file_pipe_fifo)                                                                                                  \
    X(file_directory)                                                                                                  \
    X(file_socket)                                                                                                     \
    X(file_descriptor_rules)                                                                                           \
    X(vfork_descriptors)                                                                                               \
    X(ramfs_otrunc_under_shared)                                                                                       \
    X(dev_zero_rw)                                                                                                     \
    X(fifo_nonblock)                                                                                           \
    X(ramfs_truncate_shared)                                                                                           \
    X(ramfs_private_overlay)                                                                                           \
    X(ramfs_empty_and_past_end)                                                                                        \
    X(ramfs_written_not_contiguous)                                                                                    \
    X(ramfs_efbig)                                                                                                     \
    X(ramfs_shrink_below_mappings)                                                                                     \
    X(dev_zero)                                                                                                        \
    X(dev_null)                                                                                                        \
    X(munmap_rules)                                                                                                    \
    X(munmap_spanning)                                                                                                 \
    X(munmap_file_partial)                                                                                             \
    X(munmap_whole_accounting)                                                                                         \
    X(mremap_rules)                                                                                                    \
    X(mremap_file)                                                                                                     \
    X(maps_anon_and_shared)                                                                                            \
    X(maps_private_file)                                                                                               \
    X(proc_meminfo_mapping)                                                                                            \
    X(proc_files)                                                                                                      \
    X(proc_maps_credentials)                                                                                           \
    X(proc_root_writes)                                                                                                      \
    X(futex_addresses)                                                                                                 \
    X(shm_sysv)                                                                                                        \
    X(shm_posix)                                                                                                       \
    X(mmu_calls)                                                                                                       \
    X(brk)                                                                                                             \
    X(vfork_shares)                                                                                                    \
    X(region_shared_two_processes)                                                                                     \
    X(ramfs_shared_two_processes)                                                                                      \
    X(futex_two_processes)                                                                                             \
    X(proc_maps_other_user)

/* The helpers o_spawn runs in a process of their own (not cases themselves). */
#define O_HELPER_LIST(X)                                                                                               \
    X(map_same_file)                                                                                                   \
    X(map_same_shm)                                                                                                    \
    X(read_maps_as_1001)                                                                                               \
    X(read_maps_as_1000)                                                                                               \
    X(futex_waiter)                                                                                                    \
    X(futex_waiter_private)

int o_run_helper(const char *name) {
#define RUN_HELPER(n)                                                                                                  \
    if (o_same(name, #n)) {                                                                                            \
        helper_##n();                                                                                                  \
        return 1;                                                                                                      \
    }
    O_HELPER_LIST(RUN_HELPER)
#undef RUN_HELPER
    return 0;
}

int o_run_case(const char *name) {
#define RUN(n)                                                                                                         \
    if (o_same(name, #n)) {                                                                                            \
        case_##n();                                                                                                    \
        return 1;                                                                                                      \
    }
    O_CASE_LIST(RUN)
#undef RUN
    return 0;
}

const char *o_case_name(int i) {
    int k = 0;
#define NAME(n)                                                                                                        \
    if (k++ == i) return #n;
    O_CASE_LIST(NAME)
#undef NAME
    return 0;
}
