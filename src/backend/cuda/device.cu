/*
 * CUDA device discovery (imp_device_list). A missing driver or no GPU is not an error: the
 * engine runs on the CPU and says why.
 */
#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

extern "C" {
#include "backend/device.h"
#include "base/log.h"
}

extern "C" int imp_device_cuda_built(void) { return 1; }

extern "C" imp_status imp_device_list(imp_device_info *out, int max, int *n_out, imp_error *err) {
    *n_out = 0;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        IMP_LOG_I("no CUDA device: %s", cudaGetErrorString(e));
        cudaGetLastError(); /* clear the sticky error for later calls */
        return IMP_OK;
    }
    for (int i = 0; i < n && i < max; i++) {
        cudaDeviceProp p;
        e = cudaGetDeviceProperties(&p, i);
        if (e != cudaSuccess) {
            return imp_error_set(err, IMP_ERR_DEVICE, "cudaGetDeviceProperties(%d): %s", i,
                                 cudaGetErrorString(e));
        }
        imp_device_info *d = &out[i];
        memset(d, 0, sizeof *d);
        d->index = i;
        size_t len = strnlen(p.name, sizeof d->name - 1); /* p.name is 256 bytes; keep 127 */
        memcpy(d->name, p.name, len);
        d->name[len] = '\0';
        d->cc_major = p.major;
        d->cc_minor = p.minor;
        d->total_mem = (uint64_t)p.totalGlobalMem;
        d->sm_count = p.multiProcessorCount;
        d->mem_bus_width_bits = p.memoryBusWidth;
        int clk = 0;
        if (cudaDeviceGetAttribute(&clk, cudaDevAttrMemoryClockRate, i) == cudaSuccess) {
            d->mem_clock_khz = clk;
        }
    }
    *n_out = n;
    return IMP_OK;
}
