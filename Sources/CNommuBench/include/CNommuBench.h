/* SPDX-License-Identifier: Apache-2.0
 *
 * The timed loops of `nommu bench`'s C ABI series, written in C against nommu.h as a user's
 * program would be: each call crosses the C boundary (libnommu's exported symbols).
 * Each returns 0, or the errno of the first call that failed.
 */
#ifndef CNOMMU_BENCH_H
#define CNOMMU_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include "nommu.h"

/* count x (nommu_malloc(p, bytes), nommu_free). */
int cnb_malloc_pairs(nommu_process *p, size_t bytes, size_t count);
/* count x (nommu_alloc_pages(s, 0, 0), nommu_free_pages). */
int cnb_alloc_pages_pairs(nommu_system *s, size_t count);
/* count x (nommu_mmap(bytes, MAP_PRIVATE|MAP_ANONYMOUS|MAP_UNINITIALIZED), nommu_munmap). */
int cnb_mmap_pairs(nommu_process *p, size_t bytes, size_t count);
/* count x (glibc malloc(bytes), free). */
int cnb_glibc_malloc_pairs(size_t bytes, size_t count);
/* `threads` threads of one process, each doing count / threads malloc pairs (glibc's when p
 * is NULL), started together; *elapsed_ns gets the time from the start to the last thread's end. */
int cnb_malloc_pairs_threads(nommu_process *p, size_t bytes, size_t count, int threads, uint64_t *elapsed_ns);

/* The baselines measured beside nommu, in the same run: the host kernel's mmap, glibc's
 * allocator and memset. */

/// Host kernel mmap of `bytes`, a write to every host page, munmap. Returns 0 or errno.
int cnb_host_mmap_touch(size_t bytes);
/// glibc posix_memalign(alignment, bytes), memset to zero, free. Returns 0 or errno.
int cnb_glibc_memalign_memset_free(size_t alignment, size_t bytes);
/// glibc posix_memalign(alignment, bytes) then free, `count` times, with a live padding
/// block of `pad_bytes` allocated first (and freed after) to place glibc's top chunk.
/// Returns 0 or errno.
int cnb_glibc_memalign_free_pairs(size_t alignment, size_t bytes, size_t count, size_t pad_bytes);
/// Host kernel anonymous mmap of `bytes` then munmap, untouched, `count` times.
/// Returns 0 or errno.
int cnb_host_mmap_pairs(size_t bytes, size_t count);
/// memset(p, value, bytes) through the C library (never folded away).
void cnb_memset(void *p, int value, size_t bytes);
/* The benchmarks' sink: values from timed loops are added here so that nothing is optimised
 * away. Relaxed atomic load and store (plain moves on x86-64): benchmarks run on several
 * threads at once in the tests, and a plain global would be a data race. */
extern int64_t cnb_bench_sink;
static inline void cnb_black_hole(int64_t v) {
    __atomic_store_n(&cnb_bench_sink, __atomic_load_n(&cnb_bench_sink, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

#endif
