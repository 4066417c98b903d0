/*
 * CPU reference kernels of the type table (internal). One file per format family:
 *   q_float.c   F32, F16, BF16
 *   q_legacy.c  Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1
 *   q_kquants.c Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K
 *   q_iq4.c     IQ4_NL, IQ4_XS
 * Signatures match imp_dequantize_fn / imp_quantize_fn / imp_vec_dot_fn in quant.h.
 */
#ifndef IMP_QUANT_IMPL_H
#define IMP_QUANT_IMPL_H

#include "quant/quant.h"

#define IMP_DECLARE_TYPE_FNS(t)                                                                  \
    void imp_dequantize_##t(const void *src, float *dst, int64_t n);                             \
    void imp_quantize_##t(const float *src, void *dst, int64_t n, const float *imatrix);         \
    void imp_vec_dot_##t(int64_t n, float *s, const void *x, const void *y);

IMP_DECLARE_TYPE_FNS(f32)
IMP_DECLARE_TYPE_FNS(f16)
IMP_DECLARE_TYPE_FNS(bf16)
IMP_DECLARE_TYPE_FNS(q4_0)
IMP_DECLARE_TYPE_FNS(q4_1)
IMP_DECLARE_TYPE_FNS(q5_0)
IMP_DECLARE_TYPE_FNS(q5_1)
IMP_DECLARE_TYPE_FNS(q8_0)
IMP_DECLARE_TYPE_FNS(q8_1)
IMP_DECLARE_TYPE_FNS(q2_K)
IMP_DECLARE_TYPE_FNS(q3_K)
IMP_DECLARE_TYPE_FNS(q4_K)
IMP_DECLARE_TYPE_FNS(q5_K)
IMP_DECLARE_TYPE_FNS(q6_K)
IMP_DECLARE_TYPE_FNS(q8_K)
IMP_DECLARE_TYPE_FNS(iq4_nl)
IMP_DECLARE_TYPE_FNS(iq4_xs)

#endif
