/* SPDX-License-Identifier: Apache-2.0
 * Pins the ABI: layouts and constant values C programs compile against. */
#include "nommu.h"

#include <linux/futex.h>
#include <linux/mman.h>
#include <stddef.h>

_Static_assert(MAP_UNINITIALIZED == 0x4000000, "MAP_UNINITIALIZED");
_Static_assert(FUTEX_WAIT == 0 && FUTEX_WAKE == 1 && FUTEX_PRIVATE_FLAG == 128, "futex ops");
_Static_assert(offsetof(struct nommu_stats, size) == 0, "stats begin with size");
_Static_assert(offsetof(struct nommu_stats, version) == 4, "then version");
_Static_assert(sizeof(struct nommu_stats) == 16 + 8 * (6 + NOMMU_MAX_ORDERS + 7), "stats layout");
_Static_assert(offsetof(struct nommu_config, size) == 0, "config begins with size");
_Static_assert(offsetof(struct nommu_config, reference) == 80 && sizeof(struct nommu_config) == 88, "reference follows the first version's 80 bytes");
