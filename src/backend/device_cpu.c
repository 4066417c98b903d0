/* Accelerator discovery for builds without the CUDA backend: there are no devices. */
#include "backend/device.h"

#ifndef IMP_HAVE_CUDA
imp_status imp_device_list(imp_device_info *out, int max, int *n_out, imp_error *err) {
    (void)out;
    (void)max;
    (void)err;
    *n_out = 0;
    return IMP_OK;
}

int imp_device_cuda_built(void) { return 0; }

imp_status imp_device_mem_info(int device, size_t *free_bytes, size_t *total_bytes, imp_error *err) {
    *free_bytes = *total_bytes = 0;
    return imp_error_set(err, IMP_ERR_UNSUPPORTED, "device %d: this build has no CUDA backend", device);
}

imp_status imp_device_read_bandwidth(int device, double *gbs, imp_error *err) {
    *gbs = 0.0;
    return imp_error_set(err, IMP_ERR_UNSUPPORTED, "device %d: this build has no CUDA backend", device);
}

imp_status imp_backend_cuda_create(const imp_cuda_params *p, imp_backend **out, imp_error *err) {
    *out = NULL;
    return imp_error_set(err, IMP_ERR_UNSUPPORTED, "device %d: this build has no CUDA backend", p ? p->device : 0);
}
#else
/* The CUDA build defines these in backend/cuda/device.cu. ISO C wants a declaration here. */
typedef int imp_device_cpu_unused;
#endif
