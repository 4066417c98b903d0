/*
 * Fast paths for the CPU matmul's inner loops, chosen at run time.
 *
 * The CPU matmul quantizes each activation row once to the weight type's vec_dot_type, then dots
 * every weight row with it. Both steps have a plain C reference in the type table (quant.h);
 * this interface hands out faster versions when the CPU has them (today: x86-64 with
 * AVX2 + FMA + F16C), and the references otherwise, so callers never test CPU features.
 *
 * Results: the fast activation quantizers write the same bytes as the references (Q8_0, Q8_1,
 * Q8_K, F16, BF16, F32; quiet NaNs and infinities included). The fast dot products compute the
 * same integer sums per block as the references and differ only in the order of the float
 * additions that combine blocks (measured below 1e-7 of sum |w_i x_i|). One precondition they
 * share with ggml's: int8 activations lie in -127..127, which every imp and ggml activation
 * quantizer produces; a hand-made activation row holding -128 may give a different (never
 * undefined) sum.
 *
 * Every function here is pure (no state), so any thread may call any of them at any time; the
 * returned functions are likewise thread-safe and may read rows at any address.
 */
#ifndef IMP_QUANT_SIMD_H
#define IMP_QUANT_SIMD_H

#include <stdbool.h>
#include <stdint.h>

#include "quant/quant.h"

/* Activation quantizer: n floats -> one row of type t (n a multiple of t's block size). */
typedef void (*imp_from_float_fn)(const float *x, void *y, int64_t n);

/* Best vec_dot for weight type t on this CPU: the AVX2 version when the CPU has AVX2+FMA+F16C,
 * else the reference from the type table; NULL when t has no vec_dot. */
imp_vec_dot_fn imp_vec_dot_fast(uint32_t t);

/* Best activation quantizer to type t (t is a vec_dot_type: F32, F16, BF16, Q8_0, Q8_1, Q8_K);
 * NULL for other types. */
imp_from_float_fn imp_from_float_fast(uint32_t t);

/* The AVX2 versions themselves (NULL when not built for x86-64 or not provided for t), so tests
 * can compare them with the reference whatever the dispatch picks. Calling one on a CPU where
 * imp_cpu_has_avx2() is false is an illegal instruction. */
imp_vec_dot_fn imp_vec_dot_avx2(uint32_t t);
imp_from_float_fn imp_from_float_avx2(uint32_t t);

/* Four activation rows (y, y + ystride, ... in vec_dot_type) against one weight row x:
 * s[r] is exactly what vec_dot(n, &s[r], x, y + r * ystride) gives, bit for bit; the weight
 * blocks are decoded once for the four (prefill). */
typedef void (*imp_vec_dot4_fn)(int64_t n, float *s, const void *x, const void *y, size_t ystride);

/* The four-row kernel for weight type t when this CPU and build have one (today AVX2 Q4_0,
 * Q5_0, Q8_0 and IQ4_NL: 1.2-1.6x the single-row kernel on prefill), else NULL. Its results
 * equal imp_vec_dot_fast(t)'s bit for bit. */
imp_vec_dot4_fn imp_vec_dot4_fast(uint32_t t);

/* y[i] += a * x[i] for i < n: the attention's weighted sum of value rows. */
typedef void (*imp_axpy_fn)(int64_t n, float a, const float *x, float *y);

/* Best axpy on this CPU (AVX2/FMA or a plain loop). */
imp_axpy_fn imp_axpy_fast(void);

/* AVX2 && FMA && F16C, with the OS saving the YMM registers (what __builtin_cpu_supports
 * reports); false on other architectures. Keeps no state of its own. */
bool imp_cpu_has_avx2(void);

#endif
