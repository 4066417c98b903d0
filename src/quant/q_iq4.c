/*
 * CPU reference kernels for the non-linear 4-bit formats:
 *
 *   IQ4_NL  32 elements: fp16 d, 16 bytes of 4-bit indices;  x = d * V[q]
 *   IQ4_XS  256 elements: fp16 d, 8 sub-blocks of 32 with a 6-bit signed scale ls - 32
 *           (low 4 bits in scales_l nibbles, high 2 bits in scales_h, 2 bits per sub-block);
 *           x = d * (ls - 32) * V[q]
 *
 * V is the 16-entry code book imp_iq4nl_values (a non-uniform grid denser near 0, fitted to the
 * bell-shaped distribution of weights). The indices of each 32-element (sub-)block use the shared
 * nibble layout (q_common.h).
 *
 * dequantize  bit-exact with ggml's dequantize_row_iq4_nl / _iq4_xs (same float expressions)
 * quantize    ggml's quantize_iq4_nl / quantize_iq4_xs method: per 32 elements, try scales that map
 *             the largest element onto grid points around either end of V, give each element
 *             the nearest grid value, fit the weighted least-squares scale for those indices and
 *             keep the best; IQ4_XS then expresses the 8 sub-scales as 6-bit multiples of one
 *             fp16 super-scale. Indices are finally re-picked against the scales actually stored.
 *             Weights: x^2 without an imatrix, imatrix * sqrt(sigma^2 + x^2) with one.
 * vec_dot     IQ4_NL with Q8_0 activations, IQ4_XS with Q8_K: integer sums per 32 elements of
 *             V[q] * y_q, scaled in float.
 */
#include <stdbool.h>
#include <stddef.h>

#include "quant/q_common.h"
#include "quant/quant_blocks.h"
#include "quant/quant_impl.h"

/* Bit-exactness with ggml needs every a*b + c rounded twice, as written. GCC in C11 mode does not
 * contract to FMA (-ffp-contract=off); clang does by default, so tell it not to. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

const int8_t imp_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                     1,    13,   25,  38,  53,  69,  89,  113};

#define SUB     32 /* elements per scale: the IQ4_NL block, an IQ4_XS sub-block */
#define XS_SUBS (IMP_QK_K / SUB)

/* ---- grid lookup ------------------------------------------------------------------------ */

/* Index of the grid value nearest to v (ties go up, as in ggml); any v, NaN -> 0. */
static int iq4_nearest(float v) {
    const int8_t *V = imp_iq4nl_values;
    if (!(v > (float)V[0])) return 0;
    if (v >= (float)V[15]) return 15;
    int lo = 0, hi = 15; /* V[lo] < v < V[hi] */
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (v < (float)V[mid])
            hi = mid;
        else
            lo = mid;
    }
    return v - (float)V[lo] < (float)V[hi] - v ? lo : hi;
}

/* ---- field access (IQ4_XS) ---------------------------------------------------------------- */

static int xs_scale(const uint8_t *b, int ib) {
    const uint16_t h = imp_q_load_u16(b + offsetof(imp_block_iq4_xs, scales_h));
    const uint8_t l = b[offsetof(imp_block_iq4_xs, scales_l) + ib / 2] >> (4 * (ib % 2));
    return ((l & 0x0f) | (((h >> (2 * ib)) & 3) << 4)) - 32;
}

/* ---- dequantize --------------------------------------------------------------------------- */

/* 32 elements from 16 bytes of indices and a float scale: y = dl * V[q]. */
static void iq4_dequantize_sub(const uint8_t *qs, float dl, float *y) {
    uint8_t q[SUB];
    imp_q_unpack_nibbles(qs, q);
    for (int j = 0; j < SUB; j++) y[j] = dl * (float)imp_iq4nl_values[q[j]];
}

void imp_dequantize_iq4_nl(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / SUB; i++, b += sizeof(imp_block_iq4_nl))
        iq4_dequantize_sub(b + offsetof(imp_block_iq4_nl, qs), imp_q_load_fp16(b), dst + i * SUB);
}

void imp_dequantize_iq4_xs(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / IMP_QK_K; i++, b += sizeof(imp_block_iq4_xs)) {
        const float d = imp_q_load_fp16(b);
        for (int ib = 0; ib < XS_SUBS; ib++) {
            const float dl = d * (float)xs_scale(b, ib);
            iq4_dequantize_sub(b + offsetof(imp_block_iq4_xs, qs) + 16 * ib, dl,
                               dst + i * IMP_QK_K + ib * SUB);
        }
    }
}

/* ---- quantize ----------------------------------------------------------------------------- */

/* Best scale for 32 elements on the grid under weights w (0 for an all-zero block). Candidates
 * map the element of largest magnitude, max, to a target value t near an end of the grid: each x
 * gets the nearest grid value to x*t/max, and the scale is the least-squares fit
 * sum w q x / sum w q^2. The best has the largest (sum w q x)^2 / sum w q^2, i.e. the smallest
 * weighted squared error. Targets: -134..-120 and +127, as ggml; with an importance matrix
 * (wide) also +106..+126. Measured on N(0,1), cubed-normal and outlier rows against ggml's
 * quantizer: the wide set lowers the importance-weighted error by ~1.8% (RMSE -0.2%), but with
 * the x^2 weights of the no-imatrix case it trades 0.6% of plain RMSE for the x^2-weighted
 * proxy, so there the candidates stay ggml's. */
static float iq4_best_scale(const float *x, const float *w, bool wide) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < SUB; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    if (amax < 1e-15f) return 0.0f;
    float best_d = max / 127.0f; /* kept if every weight is zero */
    double best = 0.0;
    const int ranges[2][2] = {{-134, -120}, {wide ? 106 : 127, 127}};
    for (int r = 0; r < 2; r++) {
        for (int t = ranges[r][0]; t <= ranges[r][1]; t++) {
            const float id = (float)t / max;
            double sumqx = 0.0, sumq2 = 0.0;
            for (int j = 0; j < SUB; j++) {
                const float q = imp_iq4nl_values[iq4_nearest(id * x[j])];
                sumqx += (double)w[j] * q * x[j];
                sumq2 += (double)w[j] * q * q;
            }
            if (sumq2 > 0.0 && sumqx * sumqx > best * sumq2) {
                best_d = (float)(sumqx / sumq2);
                best = sumqx * sumqx / sumq2;
            }
        }
    }
    return best_d;
}

/* Indices of 32 elements for the stored sub-block scale dl, packed into 16 bytes. */
static void iq4_pack_sub(const float *x, float dl, uint8_t *qs) {
    const float id = dl != 0.0f ? 1.0f / dl : 0.0f;
    uint8_t q[SUB];
    for (int j = 0; j < SUB; j++) q[j] = (uint8_t)iq4_nearest(id * x[j]);
    imp_q_pack_nibbles(q, qs);
}

/* Weights of a super-block of n elements (32 for IQ4_NL, 256 for IQ4_XS). */
static void iq4_weights(const float *x, const float *imatrix, int n, float *w) {
    if (!imatrix) {
        for (int j = 0; j < n; j++) w[j] = x[j] * x[j];
        return;
    }
    float sum_x2 = 0.0f;
    for (int j = 0; j < n; j++) sum_x2 += x[j] * x[j];
    const float sigma2 = 2.0f * sum_x2 / (float)n;
    for (int j = 0; j < n; j++) w[j] = imatrix[j] * sqrtf(sigma2 + x[j] * x[j]);
}

void imp_quantize_iq4_nl(const float *src, void *dst, int64_t n, const float *imatrix) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / SUB; i++, b += sizeof(imp_block_iq4_nl)) {
        const float *x = src + i * SUB;
        float w[SUB];
        iq4_weights(x, imatrix ? imatrix + i * SUB : NULL, SUB, w);
        const float d = imp_q_store_fp16(b, iq4_best_scale(x, w, imatrix != NULL));
        iq4_pack_sub(x, d, b + offsetof(imp_block_iq4_nl, qs));
    }
}

void imp_quantize_iq4_xs(const float *src, void *dst, int64_t n, const float *imatrix) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / IMP_QK_K; i++, b += sizeof(imp_block_iq4_xs)) {
        const float *x = src + i * IMP_QK_K;
        float w[IMP_QK_K], scales[XS_SUBS];
        iq4_weights(x, imatrix ? imatrix + i * IMP_QK_K : NULL, IMP_QK_K, w);
        float max_scale = 0.0f;
        for (int ib = 0; ib < XS_SUBS; ib++) {
            scales[ib] = iq4_best_scale(x + ib * SUB, w + ib * SUB, imatrix != NULL);
            if (fabsf(scales[ib]) > fabsf(max_scale)) max_scale = scales[ib];
        }
        /* The 6-bit sub-scales run -32..31: the largest one maps to -32, the end with room. */
        const float d = imp_q_store_fp16(b, -max_scale / 32.0f);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t scales_h = 0;
        uint8_t *scales_l = b + offsetof(imp_block_iq4_xs, scales_l);
        memset(scales_l, 0, IMP_QK_K / 64);
        for (int ib = 0; ib < XS_SUBS; ib++) {
            const int l = imp_q_round_clamp(id * scales[ib], -32, 31);
            iq4_pack_sub(x + ib * SUB, d * (float)l, b + offsetof(imp_block_iq4_xs, qs) + 16 * ib);
            const unsigned u = (unsigned)(l + 32);
            scales_l[ib / 2] |= (uint8_t)((u & 0x0f) << (4 * (ib % 2)));
            scales_h |= (uint16_t)((u >> 4) << (2 * ib));
        }
        memcpy(b + offsetof(imp_block_iq4_xs, scales_h), &scales_h, sizeof scales_h);
    }
}

/* ---- dot products ------------------------------------------------------------------------- */

/* sum_j V[q_j] * y_j over 32 elements. */
static int iq4_dot_sub(const uint8_t *qs, const int8_t *y) {
    uint8_t q[SUB];
    imp_q_unpack_nibbles(qs, q);
    int sum = 0;
    for (int j = 0; j < SUB; j++) sum += imp_iq4nl_values[q[j]] * y[j];
    return sum;
}

void imp_vec_dot_iq4_nl(int64_t n, float *s, const void *x, const void *y) {
    const uint8_t *xb = x, *yb = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / SUB;
         i++, xb += sizeof(imp_block_iq4_nl), yb += sizeof(imp_block_q8_0)) {
        const int sumi = iq4_dot_sub(xb + offsetof(imp_block_iq4_nl, qs),
                                     (const int8_t *)(yb + offsetof(imp_block_q8_0, qs)));
        sum += imp_q_load_fp16(xb) * imp_q_load_fp16(yb) * (float)sumi;
    }
    *s = sum;
}

void imp_vec_dot_iq4_xs(int64_t n, float *s, const void *x, const void *y) {
    const uint8_t *xb = x, *yb = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / IMP_QK_K;
         i++, xb += sizeof(imp_block_iq4_xs), yb += sizeof(imp_block_q8_K)) {
        const int8_t *yq = (const int8_t *)(yb + offsetof(imp_block_q8_K, qs));
        int sumi = 0; /* |V| <= 127, |y| <= 128, |ls-32| <= 32: < 2^31 over 256 elements */
        for (int ib = 0; ib < XS_SUBS; ib++)
            sumi += xs_scale(xb, ib) *
                    iq4_dot_sub(xb + offsetof(imp_block_iq4_xs, qs) + 16 * ib, yq + ib * SUB);
        sum += imp_q_load_fp16(xb) * imp_q_load_f32(yb + offsetof(imp_block_q8_K, d)) * (float)sumi;
    }
    *s = sum;
}
