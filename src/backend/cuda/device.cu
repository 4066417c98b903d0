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

/* Reads n 16-byte words, four independent loads in flight per thread; the xor keeps the loads
 * (it is written only if it hits a value no input makes). */
__global__ void bw_read_k(const int4 *p, size_t n, int *sink) {
    int4 a = make_int4(0, 0, 0, 0);
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (; i + 3 * stride < n; i += 4 * stride) {
        const int4 v0 = p[i], v1 = p[i + stride], v2 = p[i + 2 * stride], v3 = p[i + 3 * stride];
        a.x ^= v0.x ^ v1.y ^ v2.z ^ v3.w;
        a.y ^= v0.y ^ v1.z ^ v2.w ^ v3.x;
        a.z ^= v0.z ^ v1.w ^ v2.x ^ v3.y;
        a.w ^= v0.w ^ v1.x ^ v2.y ^ v3.z;
    }
    for (; i < n; i += stride) a.x ^= p[i].x;
    if ((a.x ^ a.y ^ a.z ^ a.w) == 0x7fedcba9) *sink = 1;
}

extern "C" imp_status imp_device_read_bandwidth(int device, double *gbs, imp_error *err) {
    *gbs = 0.0;
    const size_t bytes = (size_t)2 << 30;
    void *p = NULL;
    int *sink = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    cudaDeviceProp prop;
    cudaError_t e = cudaSetDevice(device);
    if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, device);
    if (e == cudaSuccess) e = cudaMalloc(&p, bytes);
    if (e == cudaSuccess) e = cudaMalloc((void **)&sink, sizeof(int));
    if (e == cudaSuccess) e = cudaMemset(p, 0x5a, bytes);
    if (e == cudaSuccess) e = cudaEventCreate(&e0);
    if (e == cudaSuccess) e = cudaEventCreate(&e1);
    float best_ms = 0.0f;
    for (int pass = 0; pass < 12 && e == cudaSuccess; pass++) { /* pass 0 warms up */
        cudaEventRecord(e0);
        bw_read_k<<<prop.multiProcessorCount * 8, 256>>>((const int4 *)p, bytes / 16, sink);
        cudaEventRecord(e1);
        e = cudaEventSynchronize(e1);
        float ms = 0.0f;
        if (e == cudaSuccess) e = cudaEventElapsedTime(&ms, e0, e1);
        if (e == cudaSuccess && pass > 0 && (best_ms == 0.0f || ms < best_ms)) best_ms = ms;
    }
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (p) cudaFree(p);
    if (sink) cudaFree(sink);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return imp_error_set(err, IMP_ERR_DEVICE, "GPU %d: bandwidth probe: %s", device, cudaGetErrorString(e));
    }
    *gbs = best_ms > 0.0f ? (double)bytes / (best_ms * 1e-3) / 1e9 : 0.0;
    return IMP_OK;
}

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
