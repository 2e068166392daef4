/* SPDX-License-Identifier: Apache-2.0
 * libnommu-run: the heap of an unmodified program, served by a nommu system (LD_PRELOAD).
 *
 * The C layer exports the allocator symbols. A program's calls go to the model (Swift,
 * NommuRun) once the library's constructor has started it. Everything else goes to glibc's
 * own allocator (__libc_malloc and friends), so it never re-enters the model and is given
 * back when freed: what is allocated before the constructor has run (libstdc++ asks while
 * the loader is still initialising libraries), and what the model and the Swift runtime
 * allocate for themselves while a call is in progress (a thread-local guard says so). A
 * pointer is the model's exactly when it lies in the model's arena.
 *
 * Around fork the library waits until no thread is inside the model, so that a child never
 * inherits a lock held by a thread it does not have. */
#ifndef NOMMU_RUN_SHIM_H
#define NOMMU_RUN_SHIM_H
#include <stddef.h>
#include <stdint.h>

/* Implemented in Swift (NommuRun). They run with the guard set. */

/* Starts the system, process and malloc the environment asks for; fills in the arena's
 * bounds. 0, or an errno, with a one-line reason in `why`. */
int nommu_run_start(uintptr_t *arena_start, uintptr_t *arena_end, char *why, size_t why_size);
void *nommu_run_malloc(size_t size);
void *nommu_run_calloc(size_t count, size_t size);
/* realloc; when it succeeds, *old_size is what the old block had been asked for (0 for a
 * NULL ptr); when it fails, nothing changes. */
void *nommu_run_realloc(void *ptr, size_t size, size_t *old_size);
/* Frees ptr (not NULL): the size it had been asked for, or -1 when it is not a live block of
 * the model (nothing changes). */
long nommu_run_free(void *ptr);
void *nommu_run_memalign(size_t alignment, size_t size);
/* The usable size, or (size_t)-1 when ptr is not a live block of the model. */
size_t nommu_run_usable_size(void *ptr);
/* Writes the report of this process image; `how` says what ended it. */
void nommu_run_report(const char *how);
/* In a forked child: its counts start again (its blocks are kept). */
void nommu_run_forked(int parent);

/* Implemented in C, called by the Swift side. */

/* Records the call stack of the first allocation that did not fit (called once, by the
 * Swift side, from inside the failing call). */
void nommu_run_capture_failure_stack(void);
/* The recorded stack, innermost first, without this library's frames: how many. */
int nommu_run_failure_stack(uintptr_t *frames, int max);

/* An allocation site's counts. */
struct nommu_run_site {
    uintptr_t address; /* the return address of the call into malloc; 1 = sites past the table's room */
    uint64_t calls;
    uint64_t bytes;
    int64_t peak;
    int64_t live;
};
/* The `max` sites with the most bytes at their peak, most first: how many. */
int nommu_run_top_sites(struct nommu_run_site *out, int max);
/* Whether sites are tracked (NOMMU_RUN_SITES is not 0). */
int nommu_run_tracking_sites(void);
/* How many sites the table can tell apart (the most nommu_run_top_sites can return). */
int nommu_run_site_capacity(void);
/* dladdr: the object holding `address` (its file and load address) and the nearest
 * exported symbol before it (NULL and 0 when none); 0 when no object holds it. */
int nommu_run_describe(uintptr_t address, const char **module, uintptr_t *base, const char **symbol,
                       uintptr_t *symbol_address);
/* Bytes glibc's allocator holds in use now (mallinfo2: in-use chunks plus mmapped ones). */
size_t nommu_run_host_malloc_bytes(void);
/* CLOCK_MONOTONIC and CLOCK_REALTIME when this image started (or was forked), in ns. */
uint64_t nommu_run_started_monotonic_ns(void);
uint64_t nommu_run_started_realtime_ns(void);
/* Time the image's threads have spent in the model's calls, summed, in ns. */
uint64_t nommu_run_model_ns(void);
/* Frees of arena pointers that were not live blocks. */
uint64_t nommu_run_invalid_frees(void);
#endif
