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
#else
/* The CUDA build defines these in backend/cuda/device.cu. ISO C wants a declaration here. */
typedef int imp_device_cpu_unused;
#endif
