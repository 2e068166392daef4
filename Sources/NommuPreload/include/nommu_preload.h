/* SPDX-License-Identifier: Apache-2.0
 * What the two LD_PRELOAD libraries (libnommu-record, libnommu-run) share: the exec family,
 * _exit and _Exit wrapped so that a process image's trace or report is written before the
 * image goes, fatal-signal handlers that do the same, and telling a vfork child (which
 * shares its parent's memory) from a process of its own. Each library links its own copy:
 * the helpers are hidden, and the wrappers call the hooks below, which each library defines. */
#ifndef NOMMU_PRELOAD_H
#define NOMMU_PRELOAD_H
#include <sys/types.h>

#define NOMMU_HIDDEN __attribute__((visibility("hidden")))

/* Hooks, defined by the library. `how` says what ends the image: "exec", "_exit" or
 * "signal N". before_exec returns after writing; exec_failed is called when the exec
 * returned (the image lives on). */
NOMMU_HIDDEN void nommu_preload_image_ends(const char *how);
NOMMU_HIDDEN void nommu_preload_exec_failed(void);

/* Called from the library's constructor: finds the real exec functions, notes the pid, and
 * takes SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT, chaining to what they did before (the
 * default, or the program's handler; not the crash handler of the Swift runtime that
 * libnommu-run loads into a program that is not Swift). Only the synchronous and abort
 * signals are taken: a program looks at SIGINT's or SIGTERM's disposition to decide its own
 * (Python installs KeyboardInterrupt only over SIG_DFL), and must find it as it was. */
NOMMU_HIDDEN void nommu_preload_init(void);

/* Called in a forked child (pthread_atfork) to note its pid. */
NOMMU_HIDDEN void nommu_preload_forked(void);

/* The pid noted at start or at the last fork. */
NOMMU_HIDDEN pid_t nommu_preload_pid(void);

/* Whether this is a vfork child (or a raw clone) sharing the memory of the process that
 * noted its pid: its heap is the parent's, and it must not write the parent's trace or
 * report as its own. */
NOMMU_HIDDEN int nommu_preload_in_vfork_child(void);

/* CLOCK_REALTIME and CLOCK_MONOTONIC, in ns. */
NOMMU_HIDDEN unsigned long long nommu_preload_realtime_ns(void);
NOMMU_HIDDEN unsigned long long nommu_preload_monotonic_ns(void);

/* This process's name (/proc/self/comm, without the newline) into buf; its length. */
NOMMU_HIDDEN int nommu_preload_comm(char *buf, int size);
#endif
