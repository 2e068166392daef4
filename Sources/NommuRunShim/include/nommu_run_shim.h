/* SPDX-License-Identifier: Apache-2.0
 * libnommu-run: the heap of an unmodified program, served by a nommu system (LD_PRELOAD).
 * The C layer exports the allocator symbols and keeps a re-entrancy guard: calls made while
 * the model is already running on this thread (the Swift runtime's own allocations) are
 * served from a static bootstrap area, so the host's malloc is never called. */
#ifndef NOMMU_RUN_SHIM_H
#define NOMMU_RUN_SHIM_H
#include <stddef.h>

/* Implemented in Swift (NommuRun). They run with the guard set. */
void *nommu_run_malloc(size_t size);
void *nommu_run_calloc(size_t count, size_t size);
void *nommu_run_realloc(void *ptr, size_t size);
/* 1 when ptr was the model's and is now freed, 0 when it is not the model's. */
int nommu_run_free(void *ptr);
void *nommu_run_memalign(size_t alignment, size_t size);
/* The usable size, or (size_t)-1 when ptr is not the model's. */
size_t nommu_run_usable_size(void *ptr);
void nommu_run_report(void);

/* Bootstrap-area bytes handed out (for the report). */
size_t nommu_run_bootstrap_used(void);
#endif
