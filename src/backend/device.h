/*
 * Accelerator discovery. Lists the GPUs the CUDA runtime sees (none in a CPU-only build or on a
 * machine without a GPU/driver: that is a count of 0, not an error).
 */
#ifndef IMP_BACKEND_DEVICE_H
#define IMP_BACKEND_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef struct imp_device_info {
    int index;
    char name[128];
    int cc_major, cc_minor;  /* compute capability              */
    uint64_t total_mem;      /* bytes                            */
    int sm_count;
    int mem_bus_width_bits;  /* memory bus width                 */
    int mem_clock_khz;       /* peak memory clock (0 if unknown) */
} imp_device_info;

/* Fills up to max entries; *n_out gets the number of devices (may exceed max). Returns IMP_OK
 * with *n_out = 0 when there is no usable GPU; a reason is logged at INFO level. */
imp_status imp_device_list(imp_device_info *out, int max, int *n_out, imp_error *err);

/* True when this build contains the CUDA backend. */
int imp_device_cuda_built(void);

#endif
