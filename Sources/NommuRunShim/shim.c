/* SPDX-License-Identifier: Apache-2.0 */
#include "nommu_run_shim.h"

#include "nommu_preload.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* glibc's allocator under its own names: what the model and the runtime use for themselves. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);
static size_t (*host_usable_size)(void *);

/* Set while this thread is inside the model (or this library's own bookkeeping). */
static __thread int inside __attribute__((tls_model("initial-exec")));

/* 1 once the constructor has started the model. volatile, and set after calls the
 * optimiser cannot see through: LLVM evaluates a simple constructor at compile time and
 * folds its stores into the initial value, which left an earlier flag reading 1 before the
 * constructor had run, so libstdc++'s start-up malloc entered the Swift model before the
 * Swift runtime was ready (every program died with SIGSEGV in release builds). */
static volatile int ready;
static volatile uintptr_t arena_start, arena_end;
#define EARLY (inside || !ready)
#define OURS(p) ((uintptr_t)(p) - arena_start < arena_end - arena_start)

static uint64_t started_monotonic, started_realtime;
static _Atomic int reported;
static _Atomic uint64_t invalid_frees;

uint64_t nommu_run_started_monotonic_ns(void) { return started_monotonic; }
uint64_t nommu_run_started_realtime_ns(void) { return started_realtime; }
uint64_t nommu_run_invalid_frees(void) { return atomic_load_explicit(&invalid_frees, memory_order_relaxed); }

size_t nommu_run_host_malloc_bytes(void) {
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

/* MARK: The fork gate
 * A thread entering the model counts itself in (a counter per stripe of threads, so that
 * threads do not share a cache line); fork's prepare handler closes the gate and waits until
 * every count is zero. The thread's increment and its look at the gate, and the forker's
 * closing and its look at the counts, are sequentially consistent: one of the two sees the
 * other. */
#define STRIPES 32
static struct {
    _Atomic long count;
    _Atomic uint64_t ticks; /* time inside the model, in ticks() */
    char pad[64 - sizeof(long) - sizeof(uint64_t)];
} in_model[STRIPES] __attribute__((aligned(64)));
static _Atomic int forking;
static _Atomic unsigned next_stripe;
static __thread int stripe __attribute__((tls_model("initial-exec"))) = -1;
static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;

/* A cheap clock for the time spent in the model: the time-stamp counter where there is
 * one, scaled to ns at report time against CLOCK_MONOTONIC over the image's life (two vDSO
 * clock_gettime calls a call cost more than the rest of this file). */
static inline uint64_t ticks(void) {
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
    return nommu_preload_monotonic_ns();
#endif
}
static uint64_t started_ticks;

uint64_t nommu_run_model_ns(void) {
    uint64_t t = 0;
    for (int i = 0; i < STRIPES; i++) t += atomic_load_explicit(&in_model[i].ticks, memory_order_relaxed);
    uint64_t ns = nommu_preload_monotonic_ns() - started_monotonic, tk = ticks() - started_ticks;
    return tk ? (uint64_t)((double)t * (double)ns / (double)tk) : 0;
}

static inline uint64_t enter(void) {
    inside = 1;
    if (__builtin_expect(stripe < 0, 0)) stripe = (int)(atomic_fetch_add(&next_stripe, 1) % STRIPES);
    for (;;) {
        atomic_fetch_add(&in_model[stripe].count, 1);
        if (__builtin_expect(!atomic_load(&forking), 1)) return ticks();
        atomic_fetch_sub(&in_model[stripe].count, 1);
        while (atomic_load(&forking)) sched_yield();
    }
}

static inline void leave(uint64_t t0) {
    atomic_fetch_add_explicit(&in_model[stripe].ticks, ticks() - t0, memory_order_relaxed);
    atomic_fetch_sub_explicit(&in_model[stripe].count, 1, memory_order_release);
    inside = 0;
}

static void before_fork(void) {
    if (!ready) return;
    pthread_mutex_lock(&fork_lock);
    atomic_store(&forking, 1);
    long self = (inside && stripe >= 0) ? 1 : 0; /* a fork from inside (a signal handler) */
    for (;;) {
        long n = 0;
        for (int i = 0; i < STRIPES; i++) n += atomic_load(&in_model[i].count);
        if (n <= self) break;
        sched_yield();
    }
}

static void after_fork_parent(void) {
    if (!ready) return;
    atomic_store(&forking, 0);
    pthread_mutex_unlock(&fork_lock);
}

static void after_fork_child(void) {
    if (!ready) return;
    int parent = (int)nommu_preload_pid();
    for (int i = 0; i < STRIPES; i++) {
        atomic_store(&in_model[i].count, 0);
        atomic_store(&in_model[i].ticks, 0);
    }
    if (inside && stripe >= 0) atomic_store(&in_model[stripe].count, 1);
    atomic_store(&forking, 0);
    pthread_mutex_init(&fork_lock, NULL);
    nommu_preload_forked();
    started_monotonic = nommu_preload_monotonic_ns();
    started_realtime = nommu_preload_realtime_ns();
    started_ticks = ticks();
    atomic_store(&reported, 0);
    int was = inside;
    inside = 1;
    nommu_run_forked(parent);
    inside = was;
}

/* MARK: Allocation sites
 * A site is the return address of the call into malloc (calloc, realloc, …). Sites live in
 * a fixed open-addressed table (never removed; past its room, one entry stands for the
 * rest); each live block's site and size sit in a table of blocks keyed by address, in
 * shards with a lock each. Counts per site are relaxed atomics. */
#define SITE_BITS 13
#define SITE_CAP (1u << SITE_BITS)
#define SITE_OTHER SITE_CAP
struct site {
    _Atomic uintptr_t address;
    _Atomic uint64_t calls, bytes;
    _Atomic int64_t live, peak;
};
static struct site *sites;
static volatile int tracking;

struct block {
    uintptr_t key;
    uint32_t site;
    uint64_t size;
};
#define SHARD_BITS 6
struct shard {
    pthread_mutex_t lock;
    struct block *slots;
    size_t mask, count;
} __attribute__((aligned(64)));
static struct shard shards[1 << SHARD_BITS];

int nommu_run_tracking_sites(void) { return tracking; }

static inline uint64_t mix(uintptr_t v) { return (uint64_t)v * 0x9E3779B97F4A7C15ull; }

static void *map_zeroed(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static uint32_t site_of(uintptr_t address) {
    uint32_t i = (uint32_t)(mix(address) >> (64 - SITE_BITS));
    for (uint32_t probes = 0; probes < SITE_CAP / 2; probes++, i = (i + 1) & (SITE_CAP - 1)) {
        uintptr_t a = atomic_load_explicit(&sites[i].address, memory_order_acquire);
        if (a == address) return i;
        if (a == 0) {
            uintptr_t expected = 0;
            if (atomic_compare_exchange_strong(&sites[i].address, &expected, address) || expected == address) return i;
        }
    }
    return SITE_OTHER;
}

static void site_add(uint32_t s, uint64_t size) {
    struct site *t = &sites[s];
    atomic_fetch_add_explicit(&t->calls, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->bytes, size, memory_order_relaxed);
    int64_t live = atomic_fetch_add_explicit(&t->live, (int64_t)size, memory_order_relaxed) + (int64_t)size;
    int64_t peak = atomic_load_explicit(&t->peak, memory_order_relaxed);
    while (live > peak && !atomic_compare_exchange_weak_explicit(&t->peak, &peak, live, memory_order_relaxed,
                                                                 memory_order_relaxed)) {
    }
}

static inline struct shard *shard_of(uintptr_t key) { return &shards[mix(key >> 4) >> (64 - SHARD_BITS)]; }
static inline size_t home(const struct shard *s, uintptr_t key) { return (size_t)(mix(key) >> 20) & s->mask; }

/* Doubles a shard's table (the lock is held); 0 when the host has no memory for it. */
static int grow(struct shard *s) {
    size_t cap = s->slots ? (s->mask + 1) * 2 : 256;
    struct block *old = s->slots;
    size_t old_cap = old ? s->mask + 1 : 0;
    struct block *slots = map_zeroed(cap * sizeof *slots);
    if (!slots) return 0;
    s->slots = slots;
    s->mask = cap - 1;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].key) continue;
        size_t j = home(s, old[i].key);
        while (slots[j].key) j = (j + 1) & s->mask;
        slots[j] = old[i];
    }
    if (old) munmap(old, old_cap * sizeof *old);
    return 1;
}

static void track_alloc(void *p, size_t size, void *caller) {
    uintptr_t key = (uintptr_t)p;
    uint32_t site = site_of((uintptr_t)caller);
    struct shard *s = shard_of(key);
    pthread_mutex_lock(&s->lock);
    if ((s->count + 1) * 2 > (s->slots ? s->mask + 1 : 0) && !grow(s)) {
        pthread_mutex_unlock(&s->lock);
        site = SITE_OTHER; /* counted, but not attributed on free */
        site_add(site, size);
        return;
    }
    size_t i = home(s, key);
    while (s->slots[i].key && s->slots[i].key != key) i = (i + 1) & s->mask;
    if (!s->slots[i].key) s->count++;
    s->slots[i] = (struct block){key, site, size};
    pthread_mutex_unlock(&s->lock);
    site_add(site, size);
}

/* Takes a block out of the table (backward-shift deletion keeps linear probing exact);
 * 0 when it was not there. */
static int untrack(void *p, struct block *out) {
    uintptr_t key = (uintptr_t)p;
    struct shard *s = shard_of(key);
    pthread_mutex_lock(&s->lock);
    if (!s->slots) {
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    size_t i = home(s, key);
    while (s->slots[i].key && s->slots[i].key != key) i = (i + 1) & s->mask;
    if (!s->slots[i].key) {
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    *out = s->slots[i];
    for (size_t j = i;;) {
        j = (j + 1) & s->mask;
        if (!s->slots[j].key) break;
        size_t k = home(s, s->slots[j].key);
        /* The entry at j may move to the hole at i unless its home lies cyclically in (i, j]. */
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            s->slots[i] = s->slots[j];
            i = j;
        }
    }
    s->slots[i].key = 0;
    s->count--;
    pthread_mutex_unlock(&s->lock);
    return 1;
}

static void settle_free(const struct block *b) {
    atomic_fetch_sub_explicit(&sites[b->site].live, (int64_t)b->size, memory_order_relaxed);
}

static void put_back(const struct block *b) {
    struct shard *s = shard_of(b->key);
    pthread_mutex_lock(&s->lock);
    size_t i = home(s, b->key);
    while (s->slots[i].key) i = (i + 1) & s->mask;
    s->slots[i] = *b;
    s->count++;
    pthread_mutex_unlock(&s->lock);
}

int nommu_run_top_sites(struct nommu_run_site *out, int max) {
    if (!tracking || max <= 0) return 0;
    int n = 0;
    for (uint32_t i = 0; i <= SITE_CAP; i++) {
        uintptr_t a = atomic_load(&sites[i].address);
        uint64_t calls = atomic_load(&sites[i].calls);
        if (calls == 0) continue;
        struct nommu_run_site s = {i == SITE_OTHER ? 1 : a, calls, atomic_load(&sites[i].bytes),
                                   atomic_load(&sites[i].peak), atomic_load(&sites[i].live)};
        /* insertion into the sorted prefix (max is small) */
        int at = n < max ? n++ : max;
        if (at == max && s.peak <= out[max - 1].peak) continue;
        if (at == max) at = max - 1;
        while (at > 0 && out[at - 1].peak < s.peak) {
            out[at] = out[at - 1];
            at--;
        }
        out[at] = s;
    }
    return n;
}

/* MARK: The first failure's call stack */
#define FAILURE_FRAMES 32
static uintptr_t failure_frames[FAILURE_FRAMES];
static int failure_count;

void nommu_run_capture_failure_stack(void) {
    void *f[FAILURE_FRAMES + 16];
    int n = backtrace(f, FAILURE_FRAMES + 16);
    Dl_info self, d;
    if (!dladdr((void *)&nommu_run_capture_failure_stack, &self)) self.dli_fbase = NULL;
    /* This library's frames (the shim, the model) come first: the program's begin after the last. */
    int first = 0;
    for (int i = 0; i < n; i++) {
        if (dladdr(f[i], &d) && d.dli_fbase == self.dli_fbase) first = i + 1;
    }
    int k = 0;
    for (int i = first; i < n && k < FAILURE_FRAMES; i++) failure_frames[k++] = (uintptr_t)f[i];
    failure_count = k;
}

int nommu_run_failure_stack(uintptr_t *frames, int max) {
    int n = failure_count < max ? failure_count : max;
    memcpy(frames, failure_frames, (size_t)n * sizeof *frames);
    return n;
}

int nommu_run_describe(uintptr_t address, const char **module, uintptr_t *base, const char **symbol,
                       uintptr_t *symbol_address) {
    Dl_info d;
    struct link_map *map = NULL;
    if (!dladdr1((void *)address, &d, (void **)&map, RTLD_DL_LINKMAP)) return 0;
    /* The program itself has an empty name in the loader's list (dladdr then gives argv[0]):
     * its file is /proc/self/exe. */
    static char exe[4096];
    if (map && map->l_name && !map->l_name[0]) {
        if (!exe[0]) {
            ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
            exe[n > 0 ? n : 0] = 0;
        }
        *module = exe[0] ? exe : d.dli_fname;
    } else {
        *module = d.dli_fname;
    }
    *base = (uintptr_t)d.dli_fbase;
    *symbol = d.dli_sname;
    *symbol_address = (uintptr_t)d.dli_saddr;
    return 1;
}

/* MARK: The allocator */

/* A block from the model, counted to `caller`; NULL when it does not fit. */
static void *model_malloc(size_t size, void *caller) {
    uint64_t t0 = enter();
    void *p = nommu_run_malloc(size);
    if (p && tracking) track_alloc(p, size, caller);
    leave(t0);
    return p;
}

void *malloc(size_t size) {
    if (EARLY) return __libc_malloc(size);
    void *p = model_malloc(size, __builtin_return_address(0));
    if (!p) errno = ENOMEM;
    return p;
}

void *calloc(size_t count, size_t size) {
    if (EARLY) return __libc_calloc(count, size);
    void *caller = __builtin_return_address(0);
    uint64_t t0 = enter();
    void *p = nommu_run_calloc(count, size);
    if (p && tracking) track_alloc(p, count * size, caller);
    leave(t0);
    if (!p) errno = ENOMEM;
    return p;
}

void free(void *p) {
    if (!p) return;
    if (!OURS(p)) {
        __libc_free(p);
        return;
    }
    if (EARLY) return; /* an arena block freed while inside the model: not possible but from a signal handler */
    uint64_t t0 = enter();
    struct block b;
    int had = tracking && untrack(p, &b);
    if (nommu_run_free(p)) {
        if (had) settle_free(&b);
    } else {
        atomic_fetch_add_explicit(&invalid_frees, 1, memory_order_relaxed);
    }
    leave(t0);
}

/* A block glibc holds (allocated before the model was ready) moved into the model. */
static void *adopt(void *p, size_t size, void *caller) {
    size_t had = host_usable_size ? host_usable_size(p) : 0;
    void *q = model_malloc(size, caller);
    if (!q) {
        errno = ENOMEM;
        return NULL;
    }
    memcpy(q, p, had < size ? had : size);
    __libc_free(p);
    return q;
}

/* realloc, with the call site it is counted to. */
static void *resize(void *p, size_t size, void *caller) {
    if (p && !OURS(p)) {
        if (EARLY) return __libc_realloc(p, size);
        if (size == 0) {
            __libc_free(p);
            return NULL;
        }
        return adopt(p, size, caller);
    }
    if (EARLY) {
        if (!p) return __libc_malloc(size);
        errno = ENOMEM; /* an arena block resized while inside the model: not possible */
        return NULL;
    }
    uint64_t t0 = enter();
    struct block b;
    int had = p && tracking && untrack(p, &b);
    void *q = nommu_run_realloc(p, size);
    if (q || size == 0) {
        if (had) settle_free(&b);
        if (q && tracking) track_alloc(q, size, caller);
    } else if (had) {
        put_back(&b); /* ENOMEM: the old block stays as it was */
    }
    leave(t0);
    if (!q && size) errno = ENOMEM;
    return q;
}

void *realloc(void *p, size_t size) { return resize(p, size, __builtin_return_address(0)); }

/* Taken too, so that it reaches the model whichever realloc glibc's own would call. */
void *reallocarray(void *p, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return resize(p, total, __builtin_return_address(0));
}

static void *aligned(size_t alignment, size_t size, void *caller) {
    if (EARLY) return __libc_memalign(alignment, size);
    uint64_t t0 = enter();
    void *p = nommu_run_memalign(alignment, size);
    if (p && tracking) track_alloc(p, size, caller);
    leave(t0);
    return p;
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1))) return EINVAL;
    void *p = aligned(alignment, size, __builtin_return_address(0));
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

static void *aligned_or_errno(size_t alignment, size_t size, void *caller) {
    if (alignment == 0 || (alignment & (alignment - 1))) {
        errno = EINVAL;
        return NULL;
    }
    void *p = aligned(alignment < sizeof(void *) ? sizeof(void *) : alignment, size, caller);
    if (!p) errno = ENOMEM;
    return p;
}

void *aligned_alloc(size_t alignment, size_t size) {
    return aligned_or_errno(alignment, size, __builtin_return_address(0));
}
void *memalign(size_t alignment, size_t size) { return aligned_or_errno(alignment, size, __builtin_return_address(0)); }
void *valloc(size_t size) { return aligned_or_errno(4096, size, __builtin_return_address(0)); }
void *pvalloc(size_t size) {
    if (size > SIZE_MAX - 4095) {
        errno = ENOMEM;
        return NULL;
    }
    return aligned_or_errno(4096, (size + 4095) & ~(size_t)4095, __builtin_return_address(0));
}

size_t malloc_usable_size(void *p) {
    if (!p) return 0;
    if (!OURS(p)) return host_usable_size ? host_usable_size(p) : 0;
    if (EARLY) return 0;
    uint64_t t0 = enter();
    size_t n = nommu_run_usable_size(p);
    leave(t0);
    return n == (size_t)-1 ? 0 : n;
}

/* MARK: C++'s operator new
 * Taken so that a C++ program's sites are the code that says `new`, not libstdc++'s operator
 * new (which calls malloc). A block that does not fit goes to the real operator new, which
 * calls malloc again (and fails again), then runs the new-handler and throws std::bad_alloc
 * as it would; the nothrow forms return null. operator delete is libstdc++'s: it calls free.
 * A program that defines its own operator new keeps it (the program comes first). */
typedef void *(*new_fn)(size_t);
typedef void *(*aligned_new_fn)(size_t, size_t);
static new_fn real_new, real_new_array;
static aligned_new_fn real_aligned_new, real_aligned_new_array;

static void *new_block(size_t size, void *caller) {
    if (size == 0) size = 1;
    return EARLY ? __libc_malloc(size) : model_malloc(size, caller);
}

static void *new_aligned(size_t size, size_t alignment, void *caller) {
    return aligned(alignment < sizeof(void *) ? sizeof(void *) : alignment, size ? size : 1, caller);
}

void *_Znwm(size_t size) {
    void *p = new_block(size, __builtin_return_address(0));
    return p ? p : real_new ? real_new(size) : NULL;
}
void *_Znam(size_t size) {
    void *p = new_block(size, __builtin_return_address(0));
    return p ? p : real_new_array ? real_new_array(size) : NULL;
}
void *_ZnwmRKSt9nothrow_t(size_t size, const void *tag) {
    (void)tag;
    return new_block(size, __builtin_return_address(0));
}
void *_ZnamRKSt9nothrow_t(size_t size, const void *tag) {
    (void)tag;
    return new_block(size, __builtin_return_address(0));
}
void *_ZnwmSt11align_val_t(size_t size, size_t alignment) {
    void *p = new_aligned(size, alignment, __builtin_return_address(0));
    return p ? p : real_aligned_new ? real_aligned_new(size, alignment) : NULL;
}
void *_ZnamSt11align_val_t(size_t size, size_t alignment) {
    void *p = new_aligned(size, alignment, __builtin_return_address(0));
    return p ? p : real_aligned_new_array ? real_aligned_new_array(size, alignment) : NULL;
}
void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t size, size_t alignment, const void *tag) {
    (void)tag;
    return new_aligned(size, alignment, __builtin_return_address(0));
}
void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t size, size_t alignment, const void *tag) {
    (void)tag;
    return new_aligned(size, alignment, __builtin_return_address(0));
}

/* MARK: Start and end */

void nommu_preload_image_ends(const char *how) {
    if (!ready || inside || nommu_preload_in_vfork_child()) return;
    if (atomic_exchange(&reported, 1)) return;
    inside = 1;
    if (strncmp(how, "signal", 6) == 0) alarm(10); /* a report that cannot finish must not hang a dying process */
    nommu_run_report(how);
    inside = 0;
}

void nommu_preload_exec_failed(void) { atomic_store(&reported, 0); }

__attribute__((constructor)) static void nommu_run_init(void) {
    inside = 1;
    started_monotonic = nommu_preload_monotonic_ns();
    started_realtime = nommu_preload_realtime_ns();
    started_ticks = ticks();
    nommu_preload_init();
    host_usable_size = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
    real_new = (new_fn)dlsym(RTLD_NEXT, "_Znwm");
    real_new_array = (new_fn)dlsym(RTLD_NEXT, "_Znam");
    real_aligned_new = (aligned_new_fn)dlsym(RTLD_NEXT, "_ZnwmSt11align_val_t");
    real_aligned_new_array = (aligned_new_fn)dlsym(RTLD_NEXT, "_ZnamSt11align_val_t");
    const char *s = getenv("NOMMU_RUN_SITES");
    if (!(s && strcmp(s, "0") == 0)) {
        sites = map_zeroed((SITE_CAP + 1) * sizeof *sites);
        tracking = sites != NULL;
        for (unsigned i = 0; i < sizeof shards / sizeof shards[0]; i++) pthread_mutex_init(&shards[i].lock, NULL);
    }
    void *warm[1];
    backtrace(warm, 1); /* loads the unwinder now rather than in a failing call */
    char why[256] = "";
    uintptr_t lo = 0, hi = 0;
    int err = nommu_run_start(&lo, &hi, why, sizeof why);
    if (err) {
        char comm[64];
        nommu_preload_comm(comm, sizeof comm);
        dprintf(2, "nommu run: %s (pid %d) cannot start the model: %s\n", comm, (int)getpid(), why);
        for (;;) _exit(125);
    }
    arena_start = lo;
    arena_end = hi;
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
    __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    inside = 0;
}

__attribute__((destructor)) static void nommu_run_fini(void) { nommu_preload_image_ends("exit"); }
