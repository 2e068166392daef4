// SPDX-License-Identifier: Apache-2.0
#include "CShims.h"

#include <pthread.h>

__thread struct cshim_tls_block cshim_tls __attribute__((tls_model("initial-exec")));
__thread struct cshim_tls_block cshim_malloc_tls __attribute__((tls_model("initial-exec")));

/// One kind of thread-local slots (the page allocators', the mallocs'): the pthread key whose
/// destructor runs the kind's exit hook on the exiting thread's block.
struct tls_kind {
    pthread_key_t key;
    pthread_once_t once;
    int key_error;
    cshim_tls_exit_hook hook;
};

static struct tls_kind pages_kind = {.once = PTHREAD_ONCE_INIT};
static struct tls_kind malloc_kind = {.once = PTHREAD_ONCE_INIT};

static void run_hook(struct tls_kind *kind, struct cshim_tls_block *block) {
    cshim_tls_exit_hook hook = __atomic_load_n(&kind->hook, __ATOMIC_ACQUIRE);
    if (hook != NULL) hook(block->slots, CSHIM_TLS_SLOTS);
    block->armed = 0;
}

static void on_pages_thread_exit(void *value) {
    (void)value;
    run_hook(&pages_kind, &cshim_tls);
}

static void on_malloc_thread_exit(void *value) {
    (void)value;
    run_hook(&malloc_kind, &cshim_malloc_tls);
}

static void make_pages_key(void) { pages_kind.key_error = pthread_key_create(&pages_kind.key, on_pages_thread_exit); }
static void make_malloc_key(void) {
    malloc_kind.key_error = pthread_key_create(&malloc_kind.key, on_malloc_thread_exit);
}

/// Installs the kind's hook (first call wins) and arms the calling thread's block.
static int arm(struct tls_kind *kind, void (*make_key)(void), struct cshim_tls_block *block,
               cshim_tls_exit_hook hook) {
    pthread_once(&kind->once, make_key);
    if (kind->key_error != 0) return kind->key_error;
    cshim_tls_exit_hook expected = NULL;
    __atomic_compare_exchange_n(&kind->hook, &expected, hook, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    if (!block->armed) {
        int rc = pthread_setspecific(kind->key, (void *)1);
        if (rc != 0) return rc;
        block->armed = 1;
    }
    return 0;
}

int cshim_tls_arm(cshim_tls_exit_hook hook) { return arm(&pages_kind, make_pages_key, &cshim_tls, hook); }

int cshim_malloc_tls_arm(cshim_tls_exit_hook hook) {
    return arm(&malloc_kind, make_malloc_key, &cshim_malloc_tls, hook);
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

void *cshim_tls_promote(struct cshim_tls_slot *slots, uint64_t owner) {
    for (int i = 0; i < CSHIM_TLS_SLOTS; i++) {
        if (slots[i].owner != owner) continue;
        struct cshim_tls_slot found = slots[i];
        for (int j = i; j > 0; j--) slots[j] = slots[j - 1];
        slots[0] = found;
        return found.cache;
    }
    return NULL;
}

struct cshim_tls_slot cshim_tls_push_front(struct cshim_tls_slot *slots, uint64_t owner, void *cache) {
    struct cshim_tls_slot evicted = slots[CSHIM_TLS_SLOTS - 1];
    for (int j = CSHIM_TLS_SLOTS - 1; j > 0; j--) slots[j] = slots[j - 1];
    slots[0] = (struct cshim_tls_slot){.owner = owner, .cache = cache};
    return evicted;
}

void cshim_tls_retire_all(struct cshim_tls_slot *slots, int count, void (*retire)(uint64_t owner, void *cache)) {
    for (int i = 0; i < count; i++) {
        uint64_t owner = slots[i].owner;
        void *cache = slots[i].cache;
        slots[i].owner = 0;
        slots[i].cache = NULL;
        if (owner != 0 && cache != NULL) retire(owner, cache);
    }
}
