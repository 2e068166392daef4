/* SPDX-License-Identifier: Apache-2.0
 * The variadic entry points, which Swift cannot define: they read their optional argument
 * and call the fixed-argument implementations in NommuCABI. */
#include "nommu.h"

#include <stdarg.h>

void *nommu_mremap_fixed_args(nommu_process *process, void *old_address, size_t old_len, size_t new_len, int flags,
                              void *new_address);
int nommu_open_fixed_args(nommu_process *process, const char *path, int flags, unsigned mode);

void *nommu_mremap(nommu_process *process, void *old_address, size_t old_len, size_t new_len, int flags, ...) {
    void *new_address = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        new_address = va_arg(ap, void *);
        va_end(ap);
    }
    return nommu_mremap_fixed_args(process, old_address, old_len, new_len, flags, new_address);
}

int nommu_open(nommu_process *process, const char *path, int flags, ...) {
    unsigned mode = 0;
    if (flags & O_CREAT) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, unsigned);
        va_end(ap);
    }
    return nommu_open_fixed_args(process, path, flags, mode);
}
