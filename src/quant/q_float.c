/*
 * CPU reference kernels for the float types: F32, F16, BF16.
 *
 * dequantize  widen to fp32 (exact for every input, NaN payloads kept)
 * quantize    narrow from fp32 with round-to-nearest-even (base/fp16.h: fp16 like ggml's scalar
 *             conversion, bf16 like ggml/gguf with NaNs quieted); the importance matrix is
 *             meaningless for a per-element conversion and is ignored
 * vec_dot     x and y are both in the row's own type (vec_dot_type = itself); accumulates in
 *             double so the reference is not the least accurate thing in a comparison
 *
 * Rows of F16/BF16 may sit at any 2-byte offset and F32 at any offset in a mapped file, so all
 * element loads go through memcpy (no unaligned-access UB; compilers fold it into a plain load).
 */
#include <string.h>

#include "base/fp16.h"
#include "quant/q_common.h"
#include "quant/quant_impl.h"

void imp_dequantize_f32(const void *src, float *dst, int64_t n) {
    if (n > 0) memmove(dst, src, (size_t)n * sizeof(float));
}

void imp_quantize_f32(const float *src, void *dst, int64_t n, const float *imatrix) {
    (void)imatrix;
    if (n > 0) memmove(dst, src, (size_t)n * sizeof(float));
}

void imp_vec_dot_f32(int64_t n, float *s, const void *x, const void *y) {
    const uint8_t *xb = x, *yb = y;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)imp_q_load_f32(xb + 4 * i) * imp_q_load_f32(yb + 4 * i);
    *s = (float)sum;
}

/* F16 and BF16 differ only in the two conversion functions, so one body serves both. */
#define IMP_HALF_TYPE_FNS(t, to_f32, from_f32)                                                     \
    void imp_dequantize_##t(const void *src, float *dst, int64_t n) {                              \
        const uint8_t *p = src;                                                                    \
        for (int64_t i = 0; i < n; i++) dst[i] = to_f32(imp_q_load_u16(p + 2 * i));                  \
    }                                                                                              \
    void imp_quantize_##t(const float *src, void *dst, int64_t n, const float *imatrix) {          \
        (void)imatrix;                                                                             \
        uint8_t *p = dst;                                                                          \
        for (int64_t i = 0; i < n; i++) {                                                          \
            uint16_t h = from_f32(src[i]);                                                         \
            memcpy(p + 2 * i, &h, sizeof h);                                                       \
        }                                                                                          \
    }                                                                                              \
    void imp_vec_dot_##t(int64_t n, float *s, const void *x, const void *y) {                      \
        const uint8_t *xb = x, *yb = y;                                                            \
        double sum = 0.0;                                                                          \
        for (int64_t i = 0; i < n; i++)                                                            \
            sum += (double)to_f32(imp_q_load_u16(xb + 2 * i)) * to_f32(imp_q_load_u16(yb + 2 * i));    \
        *s = (float)sum;                                                                           \
    }

IMP_HALF_TYPE_FNS(f16, imp_fp16_to_f32, imp_f32_to_fp16)
IMP_HALF_TYPE_FNS(bf16, imp_bf16_to_f32, imp_f32_to_bf16)
