/*
 * The sampler chain's arithmetic, defined once for the CPU sampler (engine/sampler.c) and for
 * every backend's sample op (backend.h; CUDA: cuda/cuda_sample.cu), so that both pick the same
 * token from the same logits and the same uniform number r. Compiled as C11 and as CUDA C++
 * (the functions are host+device there).
 *
 * Why not expf and double sums: a GPU's expf differs from the C library's in the last ulp, and
 * a sum of doubles depends on its order, which a parallel reduction does not keep. So:
 *   - exp is imp_sample_exp below: a fixed sequence of IEEE float operations (no fused
 *     multiply-add: the C build has -ffp-contract=off, the device side uses __f*_rn), hence the
 *     same bits on any IEEE machine without excess precision (x86-64, aarch64, NVIDIA GPUs);
 *   - a token's weight ("mass") is that exp as an integer: floor(e^(y - max) * 2^bits) with
 *     bits = imp_sample_mass_bits(V), so that V masses add up exactly in 64 bits in any order;
 *   - top-p and the draw compare integer running sums with integer targets.
 * Resolution: a token whose weight is below 2^-bits of the most probable one's (2^-44 for a
 * 262144-token vocabulary: about 30 nats below the max) has mass 0 and is never drawn.
 *
 * The chain for one row (temperature > 0), every step over the survivors of the previous one,
 * tokens ordered by (logit descending, id ascending) where "order" is said:
 *   candidates: every token whose logit is above -inf (NaN never);
 *   top-k (0 < top_k < V): the first top_k in order;
 *   top-p (top_p < 1): with S the survivors' mass sum (masses of logit - max), the shortest
 *        prefix in order whose mass reaches imp_sample_top_p_target(top_p, S);
 *   min-p: keep logit >= max + min_p_log (float addition);
 *   draw: masses of logit / t - max / t (temperature t, float division), S' their sum; the
 *        survivor at which the running mass first reaches imp_sample_draw_target(r, S'),
 *        walking them in order if top-k or top-p is on, else by id.
 * temperature <= 0 is greedy: the lowest id among the largest logits above -inf.
 */
#ifndef IMP_BACKEND_SAMPLING_H
#define IMP_BACKEND_SAMPLING_H

#include <stdint.h>
#ifndef __cplusplus /* CUDA: cuda_runtime.h declares ceil (this header may sit in extern "C") */
#include <math.h>
#endif

#ifdef __CUDACC__
#define IMP_HD __host__ __device__
#else
#define IMP_HD
#endif

/* One row's sampling parameters (the part of imp_sampler_params a backend can run). */
typedef struct imp_sample_params {
    float temperature; /* <= 0: greedy; the rest is then unused                               */
    int32_t top_k;     /* <= 0 or >= V: off                                                   */
    float top_p;       /* >= 1: off                                                           */
    float min_p_log;   /* logf(min_p) as the host computed it (one value for every backend);
                          -INFINITY: min-p off                                               */
    double r;          /* the uniform number in [0, 1) the draw uses                          */
} imp_sample_params;

/* Float and double operations that are never fused or reassociated. */
#if defined(__CUDA_ARCH__)
#define IMP_SM_FMUL(a, b)  __fmul_rn(a, b)
#define IMP_SM_FADD(a, b)  __fadd_rn(a, b)
#define IMP_SM_FSUB(a, b)  __fsub_rn(a, b)
#define IMP_SM_FDIV(a, b)  __fdiv_rn(a, b)
#define IMP_SM_DMUL(a, b)  __dmul_rn(a, b)
#define IMP_SM_U64_TO_D(u) __ull2double_rn(u)
#else
#define IMP_SM_FMUL(a, b)  ((a) * (b))
#define IMP_SM_FADD(a, b)  ((a) + (b))
#define IMP_SM_FSUB(a, b)  ((a) - (b))
#define IMP_SM_FDIV(a, b)  ((a) / (b))
#define IMP_SM_DMUL(a, b)  ((a) * (b))
#define IMP_SM_U64_TO_D(u) ((double)(int64_t)(u)) /* u < 2^63 here */
#endif

/* 2^k as a float, for k in [-126, 127]. */
IMP_HD static inline float imp_sample_pow2(int k) {
    const uint32_t u = (uint32_t)(k + 127) << 23;
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    union {
        uint32_t u;
        float f;
    } v = {u};
    return v.f;
#endif
}

/* e^x for x <= 0 (x > 0 gives 1; -inf and NaN give 0; below -87, 0: such weights are far under
 * any mass resolution). Range reduction x = k ln2 + f (k = x / ln2 rounded to nearest by adding
 * and subtracting 1.5 * 2^23; ln2 split in two so that k * ln2_hi is exact), then Taylor to f^7
 * on |f| <= 0.35 (truncation error < 1e-8 relative), then 2^k. Within 2 ulp of e^x. */
IMP_HD static inline float imp_sample_exp(float x) {
    if (!(x > -87.0f)) return 0.0f;
    if (x >= 0.0f) return 1.0f;
    const float k = IMP_SM_FSUB(IMP_SM_FADD(IMP_SM_FMUL(x, 1.44269504f), 12582912.0f),
                                12582912.0f);               /* [-126, 0] */
    float f = IMP_SM_FSUB(x, IMP_SM_FMUL(k, 0.693359375f)); /* ln2_hi: 9 bits */
    f = IMP_SM_FSUB(f, IMP_SM_FMUL(k, -2.12194440e-4f));    /* ln2 - ln2_hi   */
    float p = 1.0f / 5040.0f;
    p = IMP_SM_FADD(IMP_SM_FMUL(p, f), 1.0f / 720.0f);
    p = IMP_SM_FADD(IMP_SM_FMUL(p, f), 1.0f / 120.0f);
    p = IMP_SM_FADD(IMP_SM_FMUL(p, f), 1.0f / 24.0f);
    p = IMP_SM_FADD(IMP_SM_FMUL(p, f), 1.0f / 6.0f);
    p = IMP_SM_FADD(IMP_SM_FMUL(p, f), 0.5f);
    p = IMP_SM_FADD(IMP_SM_FMUL(p, f), 1.0f);
    p = IMP_SM_FADD(IMP_SM_FMUL(p, f), 1.0f);
    return IMP_SM_FMUL(p, imp_sample_pow2((int)k));
}

/* Fixed-point bits of a mass for a vocabulary of V (>= 1) tokens: V masses of at most 2^bits
 * each sum below 2^63. */
IMP_HD static inline int imp_sample_mass_bits(int64_t V) {
    int lg = 0;
    while (lg < 62 && ((int64_t)1 << lg) < V) lg++; /* ceil(log2 V) */
    return 62 - lg;
}

/* The mass of a token with logit y when the survivors' largest is my (y <= my): 2^bits for the
 * largest. When my is +inf, the +inf tokens share everything (each 2^bits) and the rest get 0. */
IMP_HD static inline uint64_t imp_sample_mass(float y, float my, int bits) {
    if (my == (float)INFINITY) return y == (float)INFINITY ? (uint64_t)1 << bits : 0;
    const float w = IMP_SM_FMUL(imp_sample_exp(IMP_SM_FSUB(y, my)), imp_sample_pow2(bits));
#if defined(__CUDA_ARCH__)
    return __float2ull_rz(w);
#else
    return (uint64_t)(int64_t)w; /* truncation; w < 2^63 */
#endif
}

/* top-p's target: ceil(top_p * S) for top_p in [0, 1); never above S. */
IMP_HD static inline uint64_t imp_sample_top_p_target(float top_p, uint64_t S) {
    const double t = ceil(IMP_SM_DMUL((double)top_p, IMP_SM_U64_TO_D(S)));
    const uint64_t T = (uint64_t)t;
    return T < S ? T : S;
}

/* The draw's target for r in [0, 1): floor(r * S) + 1, at most S (S >= 1). The token chosen
 * is the one at which the running mass first reaches it (mass 0 tokens are never chosen). */
IMP_HD static inline uint64_t imp_sample_draw_target(double r, uint64_t S) {
    const uint64_t U = (uint64_t)IMP_SM_DMUL(r, IMP_SM_U64_TO_D(S));
    return U < S ? U + 1 : S;
}

#endif
