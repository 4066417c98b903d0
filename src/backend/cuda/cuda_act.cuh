/*
 * Activations prepared for a matmul (cuda_matmul.cu): the F32 rows quantized the way the CPU
 * quantizes them for the weight type (its vec_dot_type), or converted to F16. The emitters
 * below are the one definition of that arithmetic; the matmul's own preparation kernels and
 * the ops whose output feeds a matmul (RMSNorm, GLU: they prepare it as they write it, saving
 * a pass) all use them, so a prepared copy is the same bits whoever made it.
 *
 * Layout in imp_cuda.act for x [M, K] (imp_cuda_act_claim): codes int8 [M][K], then at the
 * next 256-byte boundary meta float4 [M][K / 32], per unit of 32 elements:
 *   Q8_0  {d, 0, 0, 0}                 d = fp16(amax / 127), code = round(v / d')
 *   Q8_1  {d, fp16(d * sum q), 0, 0}   as Q8_0
 *   Q8_K  {d, d * sum q[0..16), d * sum q[16..32), 0}, d of the unit's 256-element block
 *         (iscale = -127 / the first element of largest magnitude; d = 1 / iscale)
 * or F16 [M][K] (ACT_F16), or with DQ the dequantized values d * q as F16 [M][K] (the GEMM
 * path multiplies those, so it sees the numbers the integer kernels see).
 */
#ifndef IMP_CUDA_ACT_CUH
#define IMP_CUDA_ACT_CUH

#include "backend/cuda/cuda_quant.cuh"

/* What c->act holds ("what" of imp_cuda_act_claim): ACT_Q8_0/1/K (cuda_quant.cuh), | ACT_DQ
 * for the dequantized F16 form, or a float conversion. ACT_NONE: nothing to prepare. */
enum { ACT_DQ = 4, ACT_F16 = 8, ACT_BF16 = 9, ACT_NONE = -1 };

#define IMP_CUDA_MMV_MAX_M 32  /* rows up to which quantized matmuls take the integer kernels */
#define IMP_CUDA_MMV_F_MAX_M 8 /* and float ones the matrix-vector kernels (they read F32 x)    */

static __device__ __forceinline__ float act_warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* One unit of 32 (Q8_0, Q8_1 with SUM) by a warp: lane j holds element j. q: the unit's 32
 * codes (or 32 F16 values with DQ); mt: its meta. */
template <bool SUM, bool DQ>
static __device__ __forceinline__ void act_emit32(float v, int lane, int8_t *q, float4 *mt) {
    const float amax = act_warp_max(fabsf(v));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    float t = v * id;
    if (!(t >= -127.0f)) t = t < -127.0f ? -127.0f : 0.0f; /* NaN -> 0 */
    if (t > 127.0f) t = 127.0f;
    const int c = (int)roundf(t);
    if (DQ) {
        ((__half *)q)[lane] = __float2half_rn(__half2float(__float2half_rn(d)) * (float)c);
        return;
    }
    q[lane] = (int8_t)c;
    int sum = 0;
    if (SUM) {
        sum = c;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    }
    if (lane == 0) {
        const float dh = __half2float(__float2half_rn(d));
        const float s = SUM ? __half2float(__float2half_rn((float)sum * d)) : 0.0f;
        *mt = make_float4(dh, s, 0.0f, 0.0f);
    }
}

/* One Q8_K block of 256 by a warp: lane j holds elements 8j .. 8j+7 in v. q: the block's 256
 * codes (or F16 values with DQ); mt: the meta of its 8 units. */
template <bool DQ>
static __device__ __forceinline__ void act_emit256(const float v[8], int lane, int8_t *q, float4 *mt) {
    float a = -1.0f; /* the first element of largest magnitude; NaN never wins (the CPU's strict >) */
    int idx = 0;
#pragma unroll
    for (int e = 0; e < 8; e++) {
        const float ae = fabsf(v[e]);
        if (ae > a) a = ae, idx = e;
    }
    float mx = v[idx];
    idx += 8 * lane;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float a2 = __shfl_xor_sync(0xffffffffu, a, o), m2 = __shfl_xor_sync(0xffffffffu, mx, o);
        const int i2 = __shfl_xor_sync(0xffffffffu, idx, o);
        if (a2 > a || (a2 == a && i2 < idx)) a = a2, idx = i2, mx = m2;
    }
    float d = 0.0f, iscale = 0.0f;
    if (a > 0.0f) {
        iscale = -127.0f / mx;
        d = 1.0f / iscale;
    }
    int c[8], s = 0;
#pragma unroll
    for (int e = 0; e < 8; e++) {
        int k = 0;
        if (a > 0.0f) {
            k = __float2int_rn(iscale * v[e]);
            k = k < -128 ? -128 : (k > 127 ? 127 : k);
        }
        c[e] = k;
        s += k;
    }
    if (DQ) {
        __half h[8];
#pragma unroll
        for (int e = 0; e < 8; e++) h[e] = __float2half_rn(d * (float)c[e]);
        *(int4 *)((__half *)q + 8 * lane) = *(const int4 *)h;
        return;
    }
    uint32_t w0 = 0, w1 = 0;
#pragma unroll
    for (int e = 0; e < 4; e++) {
        w0 |= (uint32_t)(uint8_t)c[e] << (8 * e);
        w1 |= (uint32_t)(uint8_t)c[e + 4] << (8 * e);
    }
    *(uint2 *)(q + 8 * lane) = make_uint2(w0, w1);
    /* 16-code sums: lanes 2i, 2i+1; a unit of 32 is lanes 4u .. 4u+3 */
    s += __shfl_xor_sync(0xffffffffu, s, 1);
    const int s_hi = __shfl_down_sync(0xffffffffu, s, 2);
    if ((lane & 3) == 0) mt[lane >> 2] = make_float4(d, d * (float)s, d * (float)s_hi, 0.0f);
}

/* Reserves c->act for x [M, K] prepared as `what` and records that it holds x so prepared
 * (the matmul that follows finds it: imp_cuda_act_cached). *q, *meta: where it goes. */
imp_status imp_cuda_act_claim(imp_cuda *c, const imp_tensor *x, int what, int8_t **q, float4 **meta);

/* The preparation a C-wide activation feeding a matmul most likely needs (the one of the
 * weights with K = C that have the most rows), ACT_NONE if none is known. */
int imp_cuda_act_hint(const imp_cuda *c, int64_t C);

#endif
