/*
 * Accelerator discovery. Lists the GPUs the CUDA runtime sees (none in a CPU-only build or on a
 * machine without a GPU/driver: that is a count of 0, not an error).
 */
#ifndef IMP_BACKEND_DEVICE_H
#define IMP_BACKEND_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
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

/* Free and total bytes of device memory on GPU `device` (cudaMemGetInfo). */
imp_status imp_device_mem_info(int device, size_t *free_bytes, size_t *total_bytes, imp_error *err);

/* The device's memory read bandwidth in GB/s, measured now: the best of several passes of a
 * read-only kernel over a buffer far larger than the L2 cache (the ceiling decode is bound by). */
imp_status imp_device_read_bandwidth(int device, double *gbs, imp_error *err);

typedef struct imp_cuda_params {
    int device;          /* CUDA device index                                               */
    imp_type kv_type;    /* KV pool storage: IMP_TYPE_F16 (default) or IMP_TYPE_F32          */
} imp_cuda_params;

/* The CUDA backend on one GPU: memory is device memory, ops are queued on the backend's
 * stream and complete by sync(); weights are repacked on upload (see cuda/cuda_common.cuh).
 * IMP_ERR_UNSUPPORTED in a build without CUDA, IMP_ERR_DEVICE when the device is absent or
 * its runtime fails, with the reason in err. */
imp_status imp_backend_cuda_create(const imp_cuda_params *p, imp_backend **out, imp_error *err);

#endif
