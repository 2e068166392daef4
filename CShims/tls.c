// SPDX-License-Identifier: Apache-2.0
#include "CShims.h"

#include <pthread.h>

__thread struct cshim_tls_block cshim_tls __attribute__((tls_model("initial-exec")));

static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static int exit_key_error;
static cshim_tls_exit_hook exit_hook;

static void on_thread_exit(void *value) {
    (void)value;
    cshim_tls_exit_hook hook = __atomic_load_n(&exit_hook, __ATOMIC_ACQUIRE);
    if (hook != NULL) hook(cshim_tls.slots, CSHIM_TLS_SLOTS);
    cshim_tls.armed = 0;
}

static void make_key(void) { exit_key_error = pthread_key_create(&exit_key, on_thread_exit); }

int cshim_tls_arm(cshim_tls_exit_hook hook) {
    pthread_once(&exit_once, make_key);
    if (exit_key_error != 0) return exit_key_error;
    cshim_tls_exit_hook expected = NULL;
    __atomic_compare_exchange_n(&exit_hook, &expected, hook, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    if (!cshim_tls.armed) {
        int rc = pthread_setspecific(exit_key, (void *)1);
        if (rc != 0) return rc;
        cshim_tls.armed = 1;
    }
    return 0;
}

__thread struct cshim_tls_block cshim_malloc_tls __attribute__((tls_model("initial-exec")));

static pthread_key_t malloc_exit_key;
static pthread_once_t malloc_exit_once = PTHREAD_ONCE_INIT;
static int malloc_exit_key_error;
static cshim_tls_exit_hook malloc_exit_hook;

static void on_malloc_thread_exit(void *value) {
    (void)value;
    cshim_tls_exit_hook hook = __atomic_load_n(&malloc_exit_hook, __ATOMIC_ACQUIRE);
    if (hook != NULL) hook(cshim_malloc_tls.slots, CSHIM_TLS_SLOTS);
    cshim_malloc_tls.armed = 0;
}

static void make_malloc_key(void) { malloc_exit_key_error = pthread_key_create(&malloc_exit_key, on_malloc_thread_exit); }

int cshim_malloc_tls_arm(cshim_tls_exit_hook hook) {
    pthread_once(&malloc_exit_once, make_malloc_key);
    if (malloc_exit_key_error != 0) return malloc_exit_key_error;
    cshim_tls_exit_hook expected = NULL;
    __atomic_compare_exchange_n(&malloc_exit_hook, &expected, hook, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    if (!cshim_malloc_tls.armed) {
        int rc = pthread_setspecific(malloc_exit_key, (void *)1);
        if (rc != 0) return rc;
        cshim_malloc_tls.armed = 1;
    }
    return 0;
}

#include <errno.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

int cshim_membarrier(void) {
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) return 0;
    if (errno == EPERM && syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
        return 0;
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0) return 0;
    return -1;
}
