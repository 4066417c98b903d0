/*
 * Device-side decoding of the quantized types, one specialization per type (a table row in
 * template form). Every format is read 32 elements at a time ("a unit": unit u of a block
 * holds elements 32u .. 32u+31):
 *
 *   qunit<T>::load(body, head, u, q, sc, mn)
 *     q[8]   the 32 codes as signed int8, element 4k + j in byte j of q[k]
 *     sc[h]  the scale of half h (elements 16h .. 16h+15)
 *     mn[h]  its offset:   value = sc[h] * code + mn[h]
 *
 * which serves both dequantization (get_rows, the F16 copies for cuBLAS) and the int8 dot
 * product with activations quantized like the CPU does it (ACT below): sum over a unit =
 * sum_h sc[h] * d_a * dot(q_h, a_h) + mn[h] * s_h, where s_h = d_a * sum(a_h).
 * The float expressions of value = sc*code + mn are those of the CPU reference dequantizers
 * (mul, then add, no FMA), so embeddings match the CPU exactly.
 *
 * body/head: the block's two parts in the repacked planes (cuda_common.cuh).
 */
#ifndef IMP_CUDA_QUANT_CUH
#define IMP_CUDA_QUANT_CUH

#include "backend/cuda/cuda_common.cuh"

/* How activations are quantized for a weight type: the type's CPU vec_dot_type. */
enum { ACT_Q8_0 = 0, ACT_Q8_1 = 1, ACT_Q8_K = 2 };

static __device__ __forceinline__ float ld_f16(const uint8_t *p) { return __half2float(*(const __half *)p); }

static __device__ __forceinline__ uint32_t ld_u16x2(const uint8_t *p) { /* 4 bytes at a 2-aligned address */
    return (uint32_t)*(const uint16_t *)p | ((uint32_t)*(const uint16_t *)(p + 2) << 16);
}

static __device__ __forceinline__ void ld16(const uint8_t *p, int v[4]) {
    const int4 x = *(const int4 *)p;
    v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w;
}

/* 32 bytes at a 16-aligned address as 8 ints. */
static __device__ __forceinline__ void ld32(const uint8_t *p, int v[8]) {
    ld16(p, v);
    ld16(p + 16, v + 4);
}

/* Spreads bits 0..3 of x to bit 4 of bytes 0..3. */
static __device__ __forceinline__ int bits_to_b4(uint32_t x) {
    return (int)(((x & 1u) << 4) | ((x & 2u) << 11) | ((x & 4u) << 18) | ((x & 8u) << 25));
}

/* The IQ4_NL / IQ4_XS code book applied to four nibbles (one per byte of x, values 0..15). */
static __device__ __forceinline__ int iq4_lookup(int x) {
    const uint32_t t0 = 0xBFAD9881u, t1 = 0xF6EADDCFu, t2 = 0x26190D01u, t3 = 0x71594535u;
    const uint32_t u = (uint32_t)x;
    const uint32_t s = (u & 0x7u) | ((u >> 4) & 0x70u) | ((u >> 8) & 0x700u) | ((u >> 12) & 0x7000u);
    const uint32_t lo = __byte_perm(t0, t1, s), hi = __byte_perm(t2, t3, s);
    const uint32_t m = ((u >> 3) & 0x01010101u) * 0xFFu;
    return (int)((hi & m) | (lo & ~m));
}

/* 32 IQ4 codes from 16 bytes (low nibbles are elements 0..15, high 16..31) through the code book. */
static __device__ __forceinline__ void iq4_unit(const uint8_t *p, int q[8]) {
    int v[4];
    ld16(p, v);
#pragma unroll
    for (int k = 0; k < 4; k++) {
        q[k] = iq4_lookup(v[k] & 0x0F0F0F0F);
        q[k + 4] = iq4_lookup((v[k] >> 4) & 0x0F0F0F0F);
    }
}

template <int T> struct qunit;

/* ---- 32-element block formats ------------------------------------------------------------ */

template <> struct qunit<IMP_TYPE_Q4_0> {
    static constexpr int QK = 32, ACT = ACT_Q8_0;
    static __device__ __forceinline__ void load(const uint8_t *b, const uint8_t *h, int u, int q[8], float sc[2],
                                                float mn[2]) {
        int v[4];
        ld16(b, v);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            q[k] = __vsub4(v[k] & 0x0F0F0F0F, 0x08080808);
            q[k + 4] = __vsub4((v[k] >> 4) & 0x0F0F0F0F, 0x08080808);
        }
        sc[0] = sc[1] = ld_f16(h);
        mn[0] = mn[1] = 0.0f;
    }
};

template <> struct qunit<IMP_TYPE_Q4_1> {
    static constexpr int QK = 32, ACT = ACT_Q8_1;
    static __device__ __forceinline__ void load(const uint8_t *b, const uint8_t *h, int u, int q[8], float sc[2],
                                                float mn[2]) {
        int v[4];
        ld16(b, v);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            q[k] = v[k] & 0x0F0F0F0F;
            q[k + 4] = (v[k] >> 4) & 0x0F0F0F0F;
        }
        sc[0] = sc[1] = ld_f16(h);
        mn[0] = mn[1] = ld_f16(h + 2);
    }
};

template <> struct qunit<IMP_TYPE_Q5_0> {
    static constexpr int QK = 32, ACT = ACT_Q8_0;
    static __device__ __forceinline__ void load(const uint8_t *b, const uint8_t *h, int u, int q[8], float sc[2],
                                                float mn[2]) {
        int v[4];
        ld16(b, v);
        const uint32_t qh = ld_u16x2(h + 2);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            q[k] = __vsub4((v[k] & 0x0F0F0F0F) | bits_to_b4(qh >> (4 * k)), 0x10101010);
            q[k + 4] = __vsub4(((v[k] >> 4) & 0x0F0F0F0F) | bits_to_b4(qh >> (16 + 4 * k)), 0x10101010);
        }
        sc[0] = sc[1] = ld_f16(h);
        mn[0] = mn[1] = 0.0f;
    }
};

template <> struct qunit<IMP_TYPE_Q5_1> {
    static constexpr int QK = 32, ACT = ACT_Q8_1;
    static __device__ __forceinline__ void load(const uint8_t *b, const uint8_t *h, int u, int q[8], float sc[2],
                                                float mn[2]) {
        int v[4];
        ld16(b, v);
        const uint32_t qh = *(const uint32_t *)(h + 4);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            q[k] = (v[k] & 0x0F0F0F0F) | bits_to_b4(qh >> (4 * k));
            q[k + 4] = ((v[k] >> 4) & 0x0F0F0F0F) | bits_to_b4(qh >> (16 + 4 * k));
        }
        sc[0] = sc[1] = ld_f16(h);
        mn[0] = mn[1] = ld_f16(h + 2);
    }
};

template <> struct qunit<IMP_TYPE_Q8_0> {
    static constexpr int QK = 32, ACT = ACT_Q8_0;
    static __device__ __forceinline__ void load(const uint8_t *b, const uint8_t *h, int u, int q[8], float sc[2],
                                                float mn[2]) {
        ld32(b, q);
        sc[0] = sc[1] = ld_f16(h);
        mn[0] = mn[1] = 0.0f;
    }
};

/* Q8_1 as a weight: Q8_0's layout with d, s in the head (s unused), and Q8_1 activations. */
template <> struct qunit<IMP_TYPE_Q8_1> {
    static constexpr int QK = 32, ACT = ACT_Q8_1;
    static __device__ __forceinline__ void load(const uint8_t *b, const uint8_t *h, int u, int q[8], float sc[2],
                                                float mn[2]) {
        qunit<IMP_TYPE_Q8_0>::load(b, h, u, q, sc, mn);
    }
};

template <> struct qunit<IMP_TYPE_IQ4_NL> {
    static constexpr int QK = 32, ACT = ACT_Q8_0;
    static __device__ __forceinline__ void load(const uint8_t *b, const uint8_t *h, int u, int q[8], float sc[2],
                                                float mn[2]) {
        iq4_unit(b, q);
        sc[0] = sc[1] = ld_f16(h);
        mn[0] = mn[1] = 0.0f;
    }
};

/* ---- 256-element super-block formats -------------------------------------------------------- */

/* Q2_K: body qs[64]; head scales[16], d, dmin. Unit u: bytes 32*(u/4).., shifted by 2*(u%4);
 * half h uses scales[2u + h] (low nibble scale, high nibble min). */
template <> struct qunit<IMP_TYPE_Q2_K> {
    static constexpr int QK = 256, ACT = ACT_Q8_K;
    static __device__ __forceinline__ void load(const uint8_t *b, const uint8_t *h, int u, int q[8], float sc[2],
                                                float mn[2]) {
        int v[8];
        ld32(b + 32 * (u >> 2), v);
        const int sh = 2 * (u & 3);
#pragma unroll
        for (int k = 0; k < 8; k++) q[k] = (v[k] >> sh) & 0x03030303;
        const float d = ld_f16(h + 16), dmin = ld_f16(h + 18);
#pragma unroll
        for (int i = 0; i < 2; i++) {
            const int s = h[2 * u + i];
            sc[i] = d * (float)(s & 0xF);
            mn[i] = -(dmin * (float)(s >> 4));
        }
    }
};

/* Q3_K: body hmask[32] + qs[64]; head scales[12] (16 6-bit values), d. Code = 2 low bits from
 * qs (as Q2_K) minus 4 unless bit u of hmask is set; half h uses scale 2u + h, minus 32. */
template <> struct qunit<IMP_TYPE_Q3_K> {
    static constexpr int QK = 256, ACT = ACT_Q8_K;
    static __device__ __forceinline__ int scale(const uint8_t *s, int k) {
        const int lo = k < 8 ? s[k] & 0xF : s[k - 8] >> 4;
        const int hi = (s[8 + (k & 3)] >> (2 * (k >> 2))) & 3;
        return (lo | (hi << 4)) - 32;
    }
    static __device__ __forceinline__ void load(const uint8_t *b, const uint8_t *h, int u, int q[8], float sc[2],
                                                float mn[2]) {
        int v[8], m[8];
        ld32(b + 32 + 32 * (u >> 2), v);
        ld32(b, m);
        const int sh = 2 * (u & 3);
#pragma unroll
        for (int k = 0; k < 8; k++) {
            const int lo = (v[k] >> sh) & 0x03030303;
            const int hb = (m[k] >> u) & 0x01010101;
            q[k] = __vsub4(lo, (hb ^ 0x01010101) << 2);
        }
        const float d = ld_f16(h + 12);
        sc[0] = d * (float)scale(h, 2 * u);
        sc[1] = d * (float)scale(h, 2 * u + 1);
        mn[0] = mn[1] = 0.0f;
    }
};

/* The 6-bit scale and min of unit j of Q4_K / Q5_K (ggml's get_scale_min_k4). */
static __device__ __forceinline__ void k4_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Q4_K: body qs[128]; head d, dmin, scales[12]. Unit u: low (u even) or high nibbles of bytes
 * 32*(u/2)..; one scale/min per unit. */
template <> struct qunit<IMP_TYPE_Q4_K> {
    static constexpr int QK = 256, ACT = ACT_Q8_K;
    static __device__ __forceinline__ void load(const uint8_t *b, const uint8_t *h, int u, int q[8], float sc[2],
                                                float mn[2]) {
        int v[8];
        ld32(b + 32 * (u >> 1), v);
        const int sh = 4 * (u & 1);
#pragma unroll
        for (int k = 0; k < 8; k++) q[k] = (v[k] >> sh) & 0x0F0F0F0F;
        int s, m;
        k4_scale_min(h + 4, u, &s, &m);
        sc[0] = sc[1] = ld_f16(h) * (float)s;
        mn[0] = mn[1] = -(ld_f16(h + 2) * (float)m);
    }
};

/* Q5_K: body qh[32] + qs[128]; as Q4_K plus 16 where bit u of qh[element] is set. */
template <> struct qunit<IMP_TYPE_Q5_K> {
    static constexpr int QK = 256, ACT = ACT_Q8_K;
    static __device__ __forceinline__ void load(const uint8_t *b, const uint8_t *h, int u, int q[8], float sc[2],
                                                float mn[2]) {
        int v[8], m[8];
        ld32(b + 32 + 32 * (u >> 1), v);
        ld32(b, m);
        const int sh = 4 * (u & 1);
#pragma unroll
        for (int k = 0; k < 8; k++) q[k] = ((v[k] >> sh) & 0x0F0F0F0F) | (((m[k] >> u) & 0x01010101) << 4);
        int s, mm;
        k4_scale_min(h + 4, u, &s, &mm);
        sc[0] = sc[1] = ld_f16(h) * (float)s;
        mn[0] = mn[1] = -(ld_f16(h + 2) * (float)mm);
    }
};

/* Q6_K: body ql[128] + qh[64]; head scales[16] (int8), d. Unit u = 4n + k: low (k < 2) or high
 * nibbles of ql[64n + 32(k&1) ..], bits 2k of qh[32n ..] on top, minus 32; half h uses
 * scales[8n + 2k + h]. */
template <> struct qunit<IMP_TYPE_Q6_K> {
    static constexpr int QK = 256, ACT = ACT_Q8_K;
    static __device__ __forceinline__ void load(const uint8_t *b, const uint8_t *h, int u, int q[8], float sc[2],
                                                float mn[2]) {
        const int n = u >> 2, k = u & 3;
        int v[8], m[8];
        ld32(b + 64 * n + 32 * (k & 1), v);
        ld32(b + 128 + 32 * n, m);
        const int sh = 4 * (k >> 1);
#pragma unroll
        for (int i = 0; i < 8; i++) {
            q[i] = __vsub4(((v[i] >> sh) & 0x0F0F0F0F) | (((m[i] >> (2 * k)) & 0x03030303) << 4), 0x20202020);
        }
        const float d = ld_f16(h + 16);
        const int8_t *s = (const int8_t *)h;
        sc[0] = d * (float)s[8 * n + 2 * k];
        sc[1] = d * (float)s[8 * n + 2 * k + 1];
        mn[0] = mn[1] = 0.0f;
    }
};

/* Q8_K as a weight: body qs[256]; head d (f32), bsums. */
template <> struct qunit<IMP_TYPE_Q8_K> {
    static constexpr int QK = 256, ACT = ACT_Q8_K;
    static __device__ __forceinline__ void load(const uint8_t *b, const uint8_t *h, int u, int q[8], float sc[2],
                                                float mn[2]) {
        ld32(b + 32 * u, q);
        sc[0] = sc[1] = *(const float *)h;
        mn[0] = mn[1] = 0.0f;
    }
};

/* IQ4_XS: body qs[128]; head d, scales_h (u16), scales_l[4]. Unit u: bytes 16u.. (low nibbles
 * then high), code book values, scale ((scales_l >> 4(u%2)) & 15 | (scales_h >> 2u & 3) << 4) - 32. */
template <> struct qunit<IMP_TYPE_IQ4_XS> {
    static constexpr int QK = 256, ACT = ACT_Q8_K;
    static __device__ __forceinline__ void load(const uint8_t *b, const uint8_t *h, int u, int q[8], float sc[2],
                                                float mn[2]) {
        iq4_unit(b + 16 * u, q);
        const int sh = *(const uint16_t *)(h + 2);
        const int ls = ((h[4 + u / 2] >> (4 * (u & 1))) & 0xF) | (((sh >> (2 * u)) & 3) << 4);
        sc[0] = sc[1] = ld_f16(h) * (float)(ls - 32);
        mn[0] = mn[1] = 0.0f;
    }
};

/* Element j (0..31) of a unit, dequantized: the CPU's float expression. */
static __device__ __forceinline__ float qunit_value(const int q[8], const float sc[2], const float mn[2], int j) {
    const int code = (int)(int8_t)(q[j >> 2] >> (8 * (j & 3)));
    return __fadd_rn(__fmul_rn(sc[j >> 4], (float)code), mn[j >> 4]);
}

/* Calls F<T>::run(args...) for the quantized weight type t (false if t is not one). */
#define IMP_CUDA_QTYPES(X)                                                                          \
    X(IMP_TYPE_Q4_0) X(IMP_TYPE_Q4_1) X(IMP_TYPE_Q5_0) X(IMP_TYPE_Q5_1) X(IMP_TYPE_Q8_0) X(IMP_TYPE_Q8_1) \
    X(IMP_TYPE_IQ4_NL) X(IMP_TYPE_Q2_K) X(IMP_TYPE_Q3_K) X(IMP_TYPE_Q4_K) X(IMP_TYPE_Q5_K) X(IMP_TYPE_Q6_K) \
    X(IMP_TYPE_Q8_K) X(IMP_TYPE_IQ4_XS)

#endif
