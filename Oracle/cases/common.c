/* SPDX-License-Identifier: Apache-2.0
 *
 * The cases' output, the same for both backends: every line is `@ what: value`, values
 * normalised so that a real kernel and the model print the same thing for the same
 * behaviour (errno names, not numbers; addresses relative to the case's first address;
 * /proc maps lines without addresses, device or inode numbers, sorted). */
#include "oracle.h"

O_THREAD_LOCAL unsigned long o_base;
O_THREAD_LOCAL const char *o_arg; /* (no initialiser: a pointer in data would need a relocation) */

/* `v` in `base` (10 or 16, lower case) at `out`, not terminated; the number of digits. */
static int format_unsigned(char *out, unsigned long v, int base) {
    char digits[24];
    int n = 0;
    do {
        unsigned long d = v % (unsigned long)base;
        digits[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= (unsigned long)base;
    } while (v);
    for (int i = 0; i < n; i++) out[i] = digits[n - 1 - i];
    return n;
}

void o_hex(char *out, unsigned long v) { out[format_unsigned(out, v, 16)] = 0; }

char *o_dec(char *out, unsigned long v) {
    char *end = out + format_unsigned(out, v, 10);
    *end = 0;
    return end;
}

char *o_cat(char *out, const char *s) {
    while ((*out = *s++)) out++;
    return out;
}

unsigned long o_unhex(const char *s) {
    unsigned long v = 0;
    for (; *s; s++) v = v * 16 + (unsigned long)(*s >= 'a' ? *s - 'a' + 10 : *s - '0');
    return v;
}

/* Whether a maps line's mapping is the harness's own (the guest program's image). */
int o_own_mapping(unsigned long start, unsigned long end);

int o_same(const char *a, const char *b) {
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}

o_size o_strlen(const char *s) {
    o_size n = 0;
    while (s[n]) n++;
    return n;
}

void o_memset(void *p, int c, o_size n) {
    volatile unsigned char *b = p;
    for (o_size i = 0; i < n; i++) b[i] = (unsigned char)c;
}

int o_all(const void *p, int c, o_size n) {
    const volatile unsigned char *b = p;
    for (o_size i = 0; i < n; i++)
        if (b[i] != (unsigned char)c) return 0;
    return 1;
}

int o_is_error(long r) { return r < 0 && r >= -4095; }

static void put(const char *s) { o_emit(s, o_strlen(s)); }

static const char *errno_name(long e) {
    switch (e) {
    case O_EPERM: return "EPERM";
    case O_ENOENT: return "ENOENT";
    case 3: return "ESRCH";
    case 4: return "EINTR";
    case 5: return "EIO";
    case 6: return "ENXIO";
    case 7: return "E2BIG";
    case 8: return "ENOEXEC";
    case O_EBADF: return "EBADF";
    case 10: return "ECHILD";
    case O_EAGAIN: return "EAGAIN";
    case O_ENOMEM: return "ENOMEM";
    case O_EACCES: return "EACCES";
    case O_EFAULT: return "EFAULT";
    case O_EBUSY: return "EBUSY";
    case O_EEXIST: return "EEXIST";
    case 18: return "EXDEV";
    case O_ENODEV: return "ENODEV";
    case O_ENOTDIR: return "ENOTDIR";
    case O_EISDIR: return "EISDIR";
    case O_EINVAL: return "EINVAL";
    case 23: return "ENFILE";
    case 24: return "EMFILE";
    case 25: return "ENOTTY";
    case O_ETXTBSY: return "ETXTBSY";
    case 27: return "EFBIG";
    case O_ENOSPC: return "ENOSPC";
    case O_ESPIPE: return "ESPIPE";
    case 30: return "EROFS";
    case O_EPIPE: return "EPIPE";
    case 34: return "ERANGE";
    case 36: return "ENAMETOOLONG";
    case O_ENOSYS: return "ENOSYS";
    case 43: return "EIDRM";
    case 93: return "EPROTONOSUPPORT";
    case 94: return "ESOCKTNOSUPPORT";
    case 95: return "EOPNOTSUPP";
    case 97: return "EAFNOSUPPORT";
    case 107: return "ENOTCONN";
    case 110: return "ETIMEDOUT";
    default: return 0;
    }
}

static void put_unsigned(unsigned long v, int base) {
    char out[24];
    o_emit(out, (o_size)format_unsigned(out, v, base));
}

static void put_errno(long r) {
    const char *name = errno_name(-r);
    if (name) {
        put(name);
    } else {
        put("errno ");
        put_unsigned((unsigned long)-r, 10);
    }
}

static void head(const char *what) {
    put("@ ");
    put(what);
    put(": ");
}

void o_ok(const char *what, long r) {
    head(what);
    if (o_is_error(r)) put_errno(r);
    else put("ok");
    put("\n");
}

void o_val(const char *what, long r) {
    head(what);
    if (o_is_error(r)) {
        put_errno(r);
    } else if (r < 0) {
        put("-");
        put_unsigned((unsigned long)-r, 10);
    } else {
        put_unsigned((unsigned long)r, 10);
    }
    put("\n");
}

void o_addr(const char *what, long r) {
    head(what);
    if (o_is_error(r)) {
        put_errno(r);
    } else {
        unsigned long a = (unsigned long)r;
        if (!o_base) o_base = a;
        put("@");
        if (a >= o_base) {
            put("+0x");
            put_unsigned(a - o_base, 16);
        } else {
            put("-0x");
            put_unsigned(o_base - a, 16);
        }
    }
    put("\n");
}

void o_bool(const char *what, int value) {
    head(what);
    put(value ? "yes\n" : "no\n");
}

void o_str(const char *what, const char *text) {
    head(what);
    for (const char *c = text; *c; c++) {
        if (*c == '\n') put("\\n");
        else o_emit(c, 1);
    }
    put("\n");
}

long o_read_file(const char *path, char *buf, o_size size) {
    long fd = o_open(path, O_RDONLY_, 0);
    if (o_is_error(fd)) return fd;
    o_size total = 0;
    while (total + 1 < size) {
        long n = o_read((int)fd, buf + total, size - 1 - total);
        if (o_is_error(n)) {
            o_close((int)fd);
            return n;
        }
        if (n == 0) break;
        total += (o_size)n;
    }
    buf[total] = 0;
    o_close((int)fd);
    return (long)total;
}

long o_mmap_copy_kb(void) {
    static char text[4096];
    long n = o_read_file("/proc/meminfo", text, sizeof text);
    if (o_is_error(n)) return n;
    const char *key = "MmapCopy:";
    for (long i = 0; i < n; i++) {
        int match = 1;
        for (int k = 0; key[k]; k++)
            if (i + k >= n || text[i + k] != key[k]) {
                match = 0;
                break;
            }
        if (!match) continue;
        long j = i + 9, v = 0;
        while (j < n && text[j] == ' ') j++;
        while (j < n && text[j] >= '0' && text[j] <= '9') v = v * 10 + (text[j++] - '0');
        return v;
    }
    return -O_ENOENT;
}

static unsigned long hex_at(const char *s, long *i, long n) {
    unsigned long v = 0;
    for (; *i < n; (*i)++) {
        char c = s[*i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) break;
        v = v * 16 + (unsigned long)d;
    }
    return v;
}

/* One maps line, normalised: `size flags offset dev inode path` with the size in hex, the
 * device `00:00` or `D`, the inode `0` or `I`, blanks collapsed. */
static long normalise(const char *line, long n, char *out) {
    long i = 0, o = 0;
    unsigned long start = hex_at(line, &i, n);
    i++; /* '-' */
    unsigned long end = hex_at(line, &i, n);
    if (o_own_mapping(start, end)) return 0;
    out[o++] = '0';
    out[o++] = 'x';
    o += format_unsigned(out + o, end - start, 16);
    /* fields: flags, offset, dev, inode, path */
    int field = 0;
    while (i < n) {
        while (i < n && line[i] == ' ') i++;
        if (i >= n) break;
        long s = i;
        if (field == 4) {
            i = n; /* the path: the rest of the line, as it is */
        } else {
            while (i < n && line[i] != ' ') i++;
        }
        out[o++] = ' ';
        if (field == 2) {
            int zero = 1;
            for (long j = s; j < i; j++)
                if (line[j] != '0' && line[j] != ':') zero = 0;
            out[o++] = zero ? '0' : 'D';
        } else if (field == 3) {
            int zero = i - s == 1 && line[s] == '0';
            out[o++] = zero ? '0' : 'I';
        } else {
            for (long j = s; j < i; j++) out[o++] = line[j];
        }
        field++;
    }
    out[o++] = '\n';
    return o;
}

void o_maps(const char *what, const char *path) {
    static char text[16384], lines[64][256];
    long n = o_read_file(path, text, sizeof text);
    head(what);
    if (o_is_error(n)) {
        put_errno(n);
        put("\n");
        return;
    }
    int count = 0;
    long at = 0;
    while (at < n && count < 64) {
        long e = at;
        while (e < n && text[e] != '\n') e++;
        long len = e - at < 200 ? e - at : 200;
        long m = normalise(text + at, len, lines[count]);
        if (m > 0) lines[count++][m] = 0;
        at = e + 1;
    }
    /* Sorted (placement differs between kernels and boots; what is mapped does not). */
    for (int a = 1; a < count; a++)
        for (int b = a; b > 0; b--) {
            const char *x = lines[b - 1], *y = lines[b];
            int j = 0;
            while (x[j] && x[j] == y[j]) j++;
            if ((unsigned char)x[j] <= (unsigned char)y[j]) break;
            char t[256];
            for (int c = 0; c < 256; c++) t[c] = lines[b][c];
            for (int c = 0; c < 256; c++) lines[b][c] = lines[b - 1][c];
            for (int c = 0; c < 256; c++) lines[b - 1][c] = t[c];
        }
    put_unsigned((unsigned long)count, 10);
    put(" lines\n");
    for (int a = 0; a < count; a++) {
        put("@   ");
        put(lines[a]);
    }
}
