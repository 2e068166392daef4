// SPDX-License-Identifier: Apache-2.0
//
// nommu-abi-arc: counts what the C ABI's hot paths cost in the Swift runtime. This program
// defines swift_retain, swift_release (and their variants) and malloc itself, so the Swift
// code linked into it calls these, which count and forward to the real ones. It runs each hot
// path a while warm, counting only then, and prints one line per path:
//   <path> retains=<n> releases=<n> mallocs=<n>
// Exit 0 when it ran (whether the counts are 0 is for the caller to judge: a debug build
// retains everywhere; a release build must not).
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "nommu.h"

static volatile int counting;
static long retains, releases, mallocs;

#define FORWARD(ret, name, params, args, counter)                                  \
    ret name params {                                                             \
        static ret(*real) params;                                                 \
        if (real == NULL) real = (ret(*) params)dlsym(RTLD_NEXT, #name);          \
        if (counting) __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);          \
        return real args;                                                         \
    }

FORWARD(void *, swift_retain, (void *o), (o), retains)
FORWARD(void *, swift_retain_n, (void *o, uint32_t n), (o, n), retains)
FORWARD(void *, swift_nonatomic_retain, (void *o), (o), retains)
FORWARD(void *, swift_bridgeObjectRetain, (void *o), (o), retains)
FORWARD(void *, swift_unknownObjectRetain, (void *o), (o), retains)
FORWARD(void, swift_release, (void *o), (o), releases)
FORWARD(void, swift_release_n, (void *o, uint32_t n), (o, n), releases)
FORWARD(void, swift_nonatomic_release, (void *o), (o), releases)
FORWARD(void, swift_bridgeObjectRelease, (void *o), (o), releases)
FORWARD(void, swift_unknownObjectRelease, (void *o), (o), releases)

extern void *__libc_malloc(size_t);
void *malloc(size_t n) {
    if (counting) __atomic_add_fetch(&mallocs, 1, __ATOMIC_RELAXED);
    return __libc_malloc(n);
}

static void report(const char *path) {
    printf("%s retains=%ld releases=%ld mallocs=%ld\n", path, retains, releases, mallocs);
    retains = releases = mallocs = 0;
}

#define ROUNDS 1000

int main(void) {
    struct nommu_config c;
    nommu_config_init(&c);
    c.allow_uninitialized = 1;
    nommu_system *s = nommu_system_create(&c);
    nommu_process *p = s ? nommu_process_create(s) : NULL;
    if (p == NULL) return 2;

    for (int pass = 0; pass < 2; pass++) {  // pass 0 warms (caches made, lists filled)
        counting = pass;
        for (int i = 0; i < ROUNDS; i++) nommu_free(p, nommu_malloc(p, 64));
        if (pass) report("nommu_malloc(64)+nommu_free");
        counting = pass;
        for (int i = 0; i < ROUNDS; i++) nommu_free(p, nommu_malloc(p, 4096));
        if (pass) report("nommu_malloc(4096)+nommu_free");
        counting = pass;
        for (int i = 0; i < ROUNDS; i++) nommu_free_pages(s, nommu_alloc_pages(s, 0, 0), 0);
        if (pass) report("nommu_alloc_pages(0)+nommu_free_pages");
        counting = pass;
        for (int i = 0; i < ROUNDS; i++) nommu_free_pages_exact(s, nommu_alloc_pages_exact(s, 4096, 0), 4096);
        if (pass) report("nommu_alloc_pages_exact(4096)+nommu_free_pages_exact");
        counting = pass;
        for (int i = 0; i < ROUNDS; i++) {
            void *q = nommu_mmap(p, NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_UNINITIALIZED,
                                 -1, 0);
            nommu_munmap(p, q, 4096);
        }
        if (pass) report("nommu_mmap(4096)+nommu_munmap");
    }
    counting = 0;
    nommu_process_exit(p);
    nommu_system_destroy(s);
    return 0;
}
