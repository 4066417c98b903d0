/*
 * Run-time choice between the SIMD kernels and the references (simd.h). Plain baseline C: this
 * file runs on every CPU, so it must not contain AVX2 code. The AVX2 kernels live in
 * dot_avx2.c (compiled with -mavx2 -mfma -mf16c) and are reached only through the two tables it
 * defines, which are data, so looking a kernel up executes no AVX2 instruction; only calling one
 * does, after imp_cpu_has_avx2() said yes.
 */
#include "quant/simd.h"

#include <stddef.h>

#include "quant/quant_impl.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* Defined in dot_avx2.c, indexed by type id; NULL where it has no kernel (all NULL when built
 * without AVX2). */
extern const imp_vec_dot_fn imp_avx2_vec_dot_table[IMP_TYPE_COUNT];
extern const imp_from_float_fn imp_avx2_from_float_table[IMP_TYPE_COUNT];
extern const imp_axpy_fn imp_avx2_axpy;
extern const imp_vec_dot4_fn imp_avx2_vec_dot4_table[IMP_TYPE_COUNT];

bool imp_cpu_has_avx2(void) {
#if defined(__x86_64__) || defined(__i386__)
    /* libgcc / compiler-rt fill the feature bits in a constructor and check that the OS saves
     * the YMM state before reporting AVX2. */
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return false;
#if defined(__clang__)
    /* clang (up to at least 14) has no "f16c" feature name: ask CPUID leaf 1 directly. */
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    return (c & bit_F16C) != 0;
#else
    return __builtin_cpu_supports("f16c");
#endif
#else
    return false;
#endif
}

imp_vec_dot_fn imp_vec_dot_avx2(uint32_t t) {
    return t < IMP_TYPE_COUNT ? imp_avx2_vec_dot_table[t] : NULL;
}

imp_from_float_fn imp_from_float_avx2(uint32_t t) {
    return t < IMP_TYPE_COUNT ? imp_avx2_from_float_table[t] : NULL;
}

imp_vec_dot_fn imp_vec_dot_fast(uint32_t t) {
    const imp_type_traits *tr = imp_type_get(t);
    if (!tr || !tr->vec_dot) return NULL;
    if (imp_cpu_has_avx2()) {
        imp_vec_dot_fn f = imp_vec_dot_avx2(t);
        if (f) return f;
    }
    return tr->vec_dot;
}

/* The references take an importance matrix, which activations never have: adapt the signature. */
#define REF_FROM_FLOAT(t)                                                                          \
    static void ref_from_float_##t(const float *x, void *y, int64_t n) {                           \
        imp_quantize_##t(x, y, n, NULL);                                                           \
    }
REF_FROM_FLOAT(f32)
REF_FROM_FLOAT(f16)
REF_FROM_FLOAT(bf16)
REF_FROM_FLOAT(q8_0)
REF_FROM_FLOAT(q8_1)
REF_FROM_FLOAT(q8_K)

static imp_from_float_fn ref_from_float(uint32_t t) {
    switch (t) {
    case IMP_TYPE_F32:
        return ref_from_float_f32;
    case IMP_TYPE_F16:
        return ref_from_float_f16;
    case IMP_TYPE_BF16:
        return ref_from_float_bf16;
    case IMP_TYPE_Q8_0:
        return ref_from_float_q8_0;
    case IMP_TYPE_Q8_1:
        return ref_from_float_q8_1;
    case IMP_TYPE_Q8_K:
        return ref_from_float_q8_K;
    default:
        return NULL;
    }
}

imp_from_float_fn imp_from_float_fast(uint32_t t) {
    imp_from_float_fn ref = ref_from_float(t);
    if (!ref) return NULL;
    if (imp_cpu_has_avx2()) {
        imp_from_float_fn f = imp_from_float_avx2(t);
        if (f) return f;
    }
    return ref;
}

static void ref_axpy(int64_t n, float a, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

imp_axpy_fn imp_axpy_fast(void) {
    return imp_cpu_has_avx2() && imp_avx2_axpy ? imp_avx2_axpy : ref_axpy;
}

imp_vec_dot4_fn imp_vec_dot4_fast(uint32_t t) {
    return t < IMP_TYPE_COUNT && imp_cpu_has_avx2() ? imp_avx2_vec_dot4_table[t] : NULL;
}
