/* SPDX-License-Identifier: Apache-2.0 */
#include "nommu_run_shim.h"

#include "nommu_preload.h"

#include "CShims.h"

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
 * A thread entering the model says so in a slot of its own; fork's prepare handler closes
 * the gate and waits until no slot says so. The two sides use an asymmetric handshake (as
 * the page allocator's drain of other threads' lists does): the thread stores "busy" and then
 * loads the gate with only a compiler barrier between, and the forker stores the gate, runs
 * membarrier() (a full barrier on every running thread of the process) and then loads the
 * slots, so one of the two sees the other. A thread's way in costs two plain stores and a
 * load on its own cache line. Without membarrier, or past the slots' room, a thread counts
 * itself in a shared counter with sequentially consistent read-modify-writes instead. */
#define GATE_SLOTS 4096
struct gate_slot {
    _Atomic long busy;     /* 1 while the thread is in the model (the shared slot: a count) */
    _Atomic uint64_t ticks; /* time inside the model, in ticks() */
    _Atomic int taken;     /* a live thread owns it */
    char pad[64 - sizeof(long) - sizeof(uint64_t) - sizeof(int)];
};
static struct gate_slot *gate;            /* GATE_SLOTS slots (mapped at start) */
static struct gate_slot shared_slot __attribute__((aligned(64)));
static _Atomic unsigned gate_used;        /* slots [0, gate_used) have been handed out */
static volatile int gate_fenced;          /* membarrier works here */
static _Atomic int forking;
static __thread struct gate_slot *my_slot __attribute__((tls_model("initial-exec")));
static __thread int my_slot_shared __attribute__((tls_model("initial-exec")));
static pthread_key_t gate_key;
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

/* Every call is timed. (Timing one call in eight, each standing for the untimed ones after it,
 * saved the ~20 ns the two counter reads cost a call here, but under lock contention a timed
 * call that waited weighed eight times: a 4-thread run reported more time in the model than
 * its threads had lived. The time is reported exactly instead.) */
/* What a timed interval costs with nothing in it (the counter's own read), taken off each. */
static uint64_t empty_interval;

static void measure_empty_interval(void) {
    uint64_t least = UINT64_MAX;
    for (int i = 0; i < 256; i++) {
        uint64_t t0 = ticks(), t1 = ticks();
        if (t1 - t0 < least) least = t1 - t0;
    }
    empty_interval = least == UINT64_MAX ? 0 : least;
}

static unsigned gate_slots_used(void) {
    unsigned n = atomic_load(&gate_used);
    return n < GATE_SLOTS ? n : GATE_SLOTS;
}

uint64_t nommu_run_model_ns(void) {
    uint64_t t = atomic_load_explicit(&shared_slot.ticks, memory_order_relaxed);
    for (unsigned i = 0, n = gate ? gate_slots_used() : 0; i < n; i++)
        t += atomic_load_explicit(&gate[i].ticks, memory_order_relaxed);
    uint64_t ns = nommu_preload_monotonic_ns() - started_monotonic, tk = ticks() - started_ticks;
    return tk ? (uint64_t)((double)t * (double)ns / (double)tk) : 0;
}

/* The calling thread's slot, taken on its first call (a slot given back by a thread that
 * ended first, or a new one); the shared slot when there is no room or no membarrier. */
static struct gate_slot *take_slot(void) {
    struct gate_slot *g = NULL;
    if (gate_fenced && !my_slot_shared) {
        for (unsigned i = 0, n = gate_slots_used(); i < n && !g; i++) {
            int free_slot = 0;
            if (atomic_compare_exchange_strong(&gate[i].taken, &free_slot, 1)) g = &gate[i];
        }
        if (!g) {
            unsigned i = atomic_fetch_add(&gate_used, 1);
            if (i < GATE_SLOTS) {
                g = &gate[i];
                atomic_store(&g->taken, 1);
            }
        }
        /* The key's destructor gives the slot back when the thread ends. */
        if (g && pthread_setspecific(gate_key, g) != 0) {
            atomic_store(&g->taken, 0);
            g = NULL;
        }
    }
    if (!g) {
        g = &shared_slot;
        my_slot_shared = 1;
    }
    my_slot = g;
    return g;
}

/* A thread ends: its slot goes back (its ticks stay counted). Whatever it frees later in
 * its exit goes through the shared slot. */
static void pending_fold_slot(unsigned slot);

static void give_back_slot(void *slot) {
    struct gate_slot *g = slot;
    pending_fold_slot((unsigned)(g - gate));
    my_slot = &shared_slot;
    my_slot_shared = 1;
    atomic_store(&g->taken, 0);
}

static inline uint64_t enter(void) {
    inside = 1;
    struct gate_slot *g = my_slot;
    if (__builtin_expect(!g, 0)) g = take_slot();
    for (;;) {
        if (__builtin_expect(my_slot_shared, 0)) {
            atomic_fetch_add(&g->busy, 1);
            if (!atomic_load(&forking)) return ticks();
            atomic_fetch_sub(&g->busy, 1);
        } else {
            atomic_store_explicit(&g->busy, 1, memory_order_relaxed);
            atomic_signal_fence(memory_order_seq_cst);
            if (__builtin_expect(!atomic_load_explicit(&forking, memory_order_relaxed), 1)) return ticks();
            atomic_store_explicit(&g->busy, 0, memory_order_release);
        }
        while (atomic_load(&forking)) sched_yield();
    }
}

static inline void leave(uint64_t t0) {
    struct gate_slot *g = my_slot;
    uint64_t t = ticks() - t0, dt = t > empty_interval ? t - empty_interval : 0;
    if (__builtin_expect(my_slot_shared, 0)) {
        atomic_fetch_add_explicit(&g->ticks, dt, memory_order_relaxed);
        atomic_fetch_sub_explicit(&g->busy, 1, memory_order_release);
    } else {
        atomic_store_explicit(&g->ticks, atomic_load_explicit(&g->ticks, memory_order_relaxed) + dt,
                              memory_order_relaxed);
        atomic_store_explicit(&g->busy, 0, memory_order_release);
    }
    inside = 0;
}

static void before_fork(void) {
    if (!ready) return;
    pthread_mutex_lock(&fork_lock);
    atomic_store(&forking, 1);
    if (gate_fenced) cshim_membarrier();
    long self = (inside && my_slot) ? 1 : 0; /* a fork from inside (a signal handler) */
    for (;;) {
        long n = atomic_load(&shared_slot.busy);
        for (unsigned i = 0, used = gate_slots_used(); i < used; i++) n += atomic_load(&gate[i].busy);
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
    /* Only this thread goes on: every other slot is free again, and what the threads that
     * stayed behind had pending (their blocks are in this copy too) goes into the counts. */
    for (unsigned i = 0, used = gate_slots_used(); i < used; i++) pending_fold_slot(i);
    atomic_store(&shared_slot.busy, 0);
    atomic_store(&shared_slot.ticks, 0);
    for (unsigned i = 0, used = gate_slots_used(); i < used; i++) {
        struct gate_slot *g = &gate[i];
        atomic_store(&g->busy, 0);
        atomic_store(&g->ticks, 0);
        if (g != my_slot) atomic_store(&g->taken, 0);
    }
    if (inside && my_slot) atomic_store(&my_slot->busy, 1);
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
 * rest). A live block's site sits beside the arena, as the kernel keeps a page's owner
 * beside its descriptor: one 16-bit word per 16 bytes of arena (blocks are 16-byte aligned),
 * the site's index + 1 for the block that starts there, 0 for none. It is written by the
 * thread that gets the block and read by the one that frees it, which the program's own
 * hand-over orders; the block's size comes back from the model when it is freed.
 *
 * Counts per site are kept the way the kernel keeps vm_stat: per thread first, folded into
 * the shared counts when they grow past a threshold (as a per-CPU vm_stat_diff folds into the
 * zone's counter past stat_threshold). Each thread with a gate slot has a small table of
 * pending counts beside the slot (PENDING entries, indexed by the site's low bits): calls,
 * bytes, and the change of live bytes, which folds into the site's shared counts when it
 * reaches PENDING_LIVE bytes either way, when another site takes the entry, and when the
 * thread ends; the report adds what is still pending. A site's peak is checked at every
 * allocation as its shared live bytes plus the thread's pending change: exact while one thread
 * allocates, and with several low by at most PENDING_LIVE bytes for each other thread. (Shared
 * atomic counts for every call, three adds to the site's line, cost 41 ms of 10^6 calls of
 * nommu-workload mixed with one thread and 34 ms with four; pending counts 9 and 5 ms.) A
 * thread without a slot of its own adds to the shared counts directly. */
#define SITE_BITS 13
#define SITE_CAP (1u << SITE_BITS)
#define SITE_OTHER SITE_CAP
struct site {
    _Atomic uintptr_t address;
    _Atomic uint64_t calls, bytes;
    _Atomic int64_t live, peak;
};
static struct site *sites;
static _Atomic uint16_t *block_sites;
static volatile int tracking;

#define PENDING 64
#define PENDING_LIVE (16 << 10)
struct pending {
    _Atomic uint32_t site; /* the site's index + 1; 0: empty */
    _Atomic uint32_t calls;
    _Atomic uint64_t bytes;
    _Atomic int64_t live;
    uint64_t pad;
};
static struct pending *pending; /* GATE_SLOTS tables of PENDING entries (mapped at start) */

int nommu_run_tracking_sites(void) { return tracking; }
int nommu_run_site_capacity(void) { return (int)SITE_CAP + 1; }

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

static inline void raise_peak(struct site *t, int64_t live) {
    int64_t peak = atomic_load_explicit(&t->peak, memory_order_relaxed);
    while (live > peak && !atomic_compare_exchange_weak_explicit(&t->peak, &peak, live, memory_order_relaxed,
                                                                 memory_order_relaxed)) {
    }
}

/* Adds to a site's shared counts. */
static void site_fold(uint32_t s, uint64_t calls, uint64_t bytes, int64_t live) {
    struct site *t = &sites[s];
    if (calls) atomic_fetch_add_explicit(&t->calls, calls, memory_order_relaxed);
    if (bytes) atomic_fetch_add_explicit(&t->bytes, bytes, memory_order_relaxed);
    if (live) {
        int64_t now = atomic_fetch_add_explicit(&t->live, live, memory_order_relaxed) + live;
        raise_peak(t, now);
    }
}

/* Folds a pending entry into its site's shared counts and empties it (its thread, or a
 * forked child for the threads that did not come along). */
static void pending_fold(struct pending *e) {
    uint32_t s = atomic_load_explicit(&e->site, memory_order_relaxed);
    if (!s) return;
    site_fold(s - 1, atomic_load_explicit(&e->calls, memory_order_relaxed),
              atomic_load_explicit(&e->bytes, memory_order_relaxed), atomic_load_explicit(&e->live, memory_order_relaxed));
    atomic_store_explicit(&e->calls, 0, memory_order_relaxed);
    atomic_store_explicit(&e->bytes, 0, memory_order_relaxed);
    atomic_store_explicit(&e->live, 0, memory_order_relaxed);
    atomic_store_explicit(&e->site, 0, memory_order_relaxed);
}

static void pending_fold_slot(unsigned slot) {
    if (!pending) return;
    for (unsigned i = 0; i < PENDING; i++) pending_fold(&pending[(size_t)slot * PENDING + i]);
}

/* A call's change to site s: `calls` and `bytes` allocated, `live` bytes live more or less. */
static void site_count(uint32_t s, uint32_t calls, uint64_t bytes, int64_t live) {
    struct gate_slot *g = my_slot;
    if (__builtin_expect(!pending || !g || my_slot_shared, 0)) {
        site_fold(s, calls, bytes, live);
        return;
    }
    struct pending *e = &pending[(size_t)(g - gate) * PENDING + (s & (PENDING - 1))];
    if (atomic_load_explicit(&e->site, memory_order_relaxed) != s + 1) {
        pending_fold(e);
        atomic_store_explicit(&e->site, s + 1, memory_order_relaxed);
    }
    atomic_store_explicit(&e->calls, atomic_load_explicit(&e->calls, memory_order_relaxed) + calls, memory_order_relaxed);
    atomic_store_explicit(&e->bytes, atomic_load_explicit(&e->bytes, memory_order_relaxed) + bytes, memory_order_relaxed);
    int64_t d = atomic_load_explicit(&e->live, memory_order_relaxed) + live;
    if (d >= PENDING_LIVE || d <= -PENDING_LIVE) {
        atomic_store_explicit(&e->live, 0, memory_order_relaxed);
        site_fold(s, 0, 0, d);
        return;
    }
    atomic_store_explicit(&e->live, d, memory_order_relaxed);
    if (live > 0) {
        struct site *t = &sites[s];
        int64_t seen = atomic_load_explicit(&t->live, memory_order_relaxed) + d;
        if (seen > atomic_load_explicit(&t->peak, memory_order_relaxed)) raise_peak(t, seen);
    }
}

/* The word of the block at p (16-byte aligned, in the arena); NULL for any other pointer. */
static inline _Atomic uint16_t *site_word(void *p) {
    uintptr_t a = (uintptr_t)p;
    if ((a & 15) || !OURS(p)) return NULL;
    return &block_sites[(a - arena_start) >> 4];
}

static void track_alloc(void *p, size_t size, void *caller) {
    uint32_t site = site_of((uintptr_t)caller);
    _Atomic uint16_t *w = site_word(p);
    if (w) atomic_store_explicit(w, (uint16_t)(site + 1), memory_order_relaxed);
    site_count(site, 1, size, (int64_t)size);
}

/* Takes the site of the block at p off its word (before the model frees it, so that a
 * thread given the same address next writes its own): the site + 1, or 0 when none. */
static inline uint16_t untrack(void *p) {
    _Atomic uint16_t *w = site_word(p);
    if (!w) return 0;
    uint16_t s = atomic_load_explicit(w, memory_order_relaxed);
    if (s) atomic_store_explicit(w, 0, memory_order_relaxed);
    return s;
}

/* Puts it back: the model refused the call and the block stays as it was. */
static inline void put_back(void *p, uint16_t s) {
    if (s) atomic_store_explicit(site_word(p), s, memory_order_relaxed);
}

static void settle_free(uint16_t s, size_t size) {
    if (s) site_count(s - 1, 0, 0, -(int64_t)size);
}

/* What the threads have pending, per site (the report's; filled by nommu_run_top_sites). */
static int64_t pending_live[SITE_CAP + 1];
static uint64_t pending_calls[SITE_CAP + 1], pending_bytes[SITE_CAP + 1];

int nommu_run_top_sites(struct nommu_run_site *out, int max) {
    if (!tracking || max <= 0) return 0;
    memset(pending_live, 0, sizeof pending_live);
    memset(pending_calls, 0, sizeof pending_calls);
    memset(pending_bytes, 0, sizeof pending_bytes);
    for (size_t i = 0, n = pending ? (size_t)gate_slots_used() * PENDING : 0; i < n; i++) {
        uint32_t s = atomic_load_explicit(&pending[i].site, memory_order_relaxed);
        if (!s) continue;
        pending_live[s - 1] += atomic_load_explicit(&pending[i].live, memory_order_relaxed);
        pending_calls[s - 1] += atomic_load_explicit(&pending[i].calls, memory_order_relaxed);
        pending_bytes[s - 1] += atomic_load_explicit(&pending[i].bytes, memory_order_relaxed);
    }
    int n = 0;
    for (uint32_t i = 0; i <= SITE_CAP; i++) {
        uintptr_t a = atomic_load(&sites[i].address);
        uint64_t calls = atomic_load(&sites[i].calls) + pending_calls[i];
        if (calls == 0) continue;
        int64_t live = atomic_load(&sites[i].live) + pending_live[i], peak = atomic_load(&sites[i].peak);
        struct nommu_run_site s = {i == SITE_OTHER ? 1 : a, calls, atomic_load(&sites[i].bytes) + pending_bytes[i],
                                   peak > live ? peak : live, live};
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
    uint16_t s = tracking ? untrack(p) : 0;
    long size = nommu_run_free(p);
    if (size >= 0) {
        settle_free(s, (size_t)size);
    } else {
        put_back(p, s);
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
    uint16_t s = p && tracking ? untrack(p) : 0;
    size_t old = (size_t)-1;
    void *q = nommu_run_realloc(p, size, &old);
    if (old != (size_t)-1) {
        settle_free(s, old);
        if (q && tracking) track_alloc(q, size, caller);
    } else if (p) {
        put_back(p, s); /* refused (ENOMEM, or not a live block): the old block stays as it was */
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
    measure_empty_interval();
    nommu_preload_init();
    host_usable_size = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
    real_new = (new_fn)dlsym(RTLD_NEXT, "_Znwm");
    real_new_array = (new_fn)dlsym(RTLD_NEXT, "_Znam");
    real_aligned_new = (aligned_new_fn)dlsym(RTLD_NEXT, "_ZnwmSt11align_val_t");
    real_aligned_new_array = (aligned_new_fn)dlsym(RTLD_NEXT, "_ZnamSt11align_val_t");
    gate = map_zeroed(GATE_SLOTS * sizeof *gate);
    gate_fenced = gate && pthread_key_create(&gate_key, give_back_slot) == 0 && cshim_membarrier() == 0;
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
    const char *s = getenv("NOMMU_RUN_SITES");
    if (!(s && strcmp(s, "0") == 0)) {
        sites = map_zeroed((SITE_CAP + 1) * sizeof *sites);
        block_sites = map_zeroed(((hi - lo) >> 4) * sizeof *block_sites);
        if (gate_fenced) pending = map_zeroed((size_t)GATE_SLOTS * PENDING * sizeof *pending);
        tracking = sites && block_sites;
    }
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
    __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    inside = 0;
}

__attribute__((destructor)) static void nommu_run_fini(void) { nommu_preload_image_ends("exit"); }
