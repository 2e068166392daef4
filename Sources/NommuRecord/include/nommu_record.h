/* SPDX-License-Identifier: Apache-2.0
 * libnommu-record is used through LD_PRELOAD (see `nommu record`); it has no API of its own. */
#ifndef NOMMU_RECORD_H
#define NOMMU_RECORD_H
#endif
