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

#endif
