/*
 * CPU reference kernels for ggml's "legacy" 32-element block formats:
 *
 *   Q4_0  x = d*(q - 8)     q in 0..15      Q4_1  x = d*q + m   q in 0..15
 *   Q5_0  x = d*(q - 16)    q in 0..31      Q5_1  x = d*q + m   q in 0..31
 *   Q8_0  x = d*q           q in -128..127  Q8_1  x = d*q, plus s = d*sum(q) (activations)
 *
 * d, m, s are fp16. The 4-bit codes (and the low 4 bits of the 5-bit ones) use the shared nibble
 * layout (q_common.h); the 5th bits live in a 32-bit mask qh, bit j for element j.
 *
 * One parameterised implementation serves all six types: a format row (leg_fmt) says where the
 * fields are and how codes map to values; the exported per-type functions are one-line wrappers.
 *
 * dequantize  bit-exact with ggml's dequantize_row_*: the float expression is evaluated in the
 *             same order (int code -> float, times d, plus m), with no FMA contraction (below)
 * quantize    imatrix == NULL: ggml's quantize_row_*_ref exactly (same float operations, so the
 *             bytes match gguf-py's numpy port). With an imatrix: a weighted scale search (ggml's
 *             make_qx_quants idea for the symmetric types, make_qkx3_quants's for those with a
 *             min), then the codes are re-rounded against the fp16 values actually stored. Q8_0
 *             and Q8_1 ignore the imatrix (as ggml does; 8 bits leave nothing to gain).
 * vec_dot     integer dot per block, scales applied in float, like ggml's scalar
 *             ggml_vec_dot_q4_0_q8_0 and friends; Q4_1/Q5_1 take Q8_1 activations and add m*s.
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

#define QK 32 /* every legacy format has 32 elements per block */

typedef struct leg_fmt {
    int bits;      /* 4, 5 or 8                                                       */
    int zero;      /* code that means 0 in the symmetric 4/5-bit types (8, 16), else 0 */
    bool has_min;  /* x = d*q + m (Q4_1, Q5_1)                                         */
    size_t size;   /* bytes per block                                                  */
    size_t off_m;  /* fp16 m (Q4_1, Q5_1) or s (Q8_1); 0 when the block has neither    */
    size_t off_qh; /* the 5th-bit mask (5-bit types)                                   */
    size_t off_qs; /* the codes                                                        */
} leg_fmt;

static const leg_fmt k_q4_0 = {
    .bits = 4, .zero = 8, .size = sizeof(imp_block_q4_0), .off_qs = offsetof(imp_block_q4_0, qs)};
static const leg_fmt k_q4_1 = {.bits = 4,
                               .has_min = true,
                               .size = sizeof(imp_block_q4_1),
                               .off_m = offsetof(imp_block_q4_1, m),
                               .off_qs = offsetof(imp_block_q4_1, qs)};
static const leg_fmt k_q5_0 = {.bits = 5,
                               .zero = 16,
                               .size = sizeof(imp_block_q5_0),
                               .off_qh = offsetof(imp_block_q5_0, qh),
                               .off_qs = offsetof(imp_block_q5_0, qs)};
static const leg_fmt k_q5_1 = {.bits = 5,
                               .has_min = true,
                               .size = sizeof(imp_block_q5_1),
                               .off_m = offsetof(imp_block_q5_1, m),
                               .off_qh = offsetof(imp_block_q5_1, qh),
                               .off_qs = offsetof(imp_block_q5_1, qs)};
static const leg_fmt k_q8_0 = {
    .bits = 8, .size = sizeof(imp_block_q8_0), .off_qs = offsetof(imp_block_q8_0, qs)};
static const leg_fmt k_q8_1 = {.bits = 8,
                               .size = sizeof(imp_block_q8_1),
                               .off_m = offsetof(imp_block_q8_1, s),
                               .off_qs = offsetof(imp_block_q8_1, qs)};

/* ---- codes <-> bytes ---------------------------------------------------------------------- */

/* The 32 signed values of a block: q - zero (symmetric), q (with min), or the int8 codes. */
static void leg_values(const leg_fmt *f, const uint8_t *b, int v[QK]) {
    const uint8_t *qs = b + f->off_qs;
    if (f->bits == 8) {
        const int8_t *q = (const int8_t *)qs;
        for (int j = 0; j < QK; j++) v[j] = q[j];
        return;
    }
    uint8_t codes[QK];
    imp_q_unpack_nibbles(qs, codes);
    if (f->bits == 5) {
        uint32_t qh = imp_q_load_u32(b + f->off_qh);
        for (int j = 0; j < QK; j++) codes[j] |= (uint8_t)(((qh >> j) & 1u) << 4);
    }
    for (int j = 0; j < QK; j++) v[j] = (int)codes[j] - f->zero;
}

/* Writes unsigned codes (0..2^bits-1; for 8 bits, the int8 values' bytes) into a block. */
static void leg_pack(const leg_fmt *f, const uint8_t codes[QK], uint8_t *b) {
    uint8_t *qs = b + f->off_qs;
    if (f->bits == 8) {
        memcpy(qs, codes, QK);
        return;
    }
    imp_q_pack_nibbles(codes, qs);
    if (f->bits == 5) {
        uint32_t qh = 0;
        for (int j = 0; j < QK; j++) qh |= (uint32_t)((codes[j] >> 4) & 1u) << j;
        memcpy(b + f->off_qh, &qh, sizeof qh);
    }
}

/* ---- dequantize --------------------------------------------------------------------------- */

static void leg_dequantize(const leg_fmt *f, const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QK; i++, b += f->size, dst += QK) {
        int v[QK];
        leg_values(f, b, v);
        const float d = imp_q_load_fp16(b);
        if (f->has_min) {
            const float m = imp_q_load_fp16(b + f->off_m);
            for (int j = 0; j < QK; j++) dst[j] = (float)v[j] * d + m;
        } else {
            for (int j = 0; j < QK; j++) dst[j] = (float)v[j] * d;
        }
    }
}

/* ---- reference quantizers (ggml's quantize_row_*_ref) -------------------------------------- */

/* Q4_0 / Q5_0: the signed value of largest magnitude (first one on ties) maps to -zero. */
static void leg_quantize_sym_ref(const leg_fmt *f, const float *x, uint8_t *b) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = max / (float)-f->zero;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    imp_q_store_fp16(b, d);
    const float bias = (float)f->zero + 0.5f; /* truncating x*id + zero + 0.5 rounds to nearest */
    const int qmax = (1 << f->bits) - 1;
    uint8_t codes[QK];
    for (int j = 0; j < QK; j++) codes[j] = (uint8_t)imp_q_trunc_clamp(x[j] * id + bias, qmax);
    leg_pack(f, codes, b);
}

/* Q4_1 / Q5_1: [min, max] spread over 0..2^bits-1. */
static void leg_quantize_min_ref(const leg_fmt *f, const float *x, uint8_t *b) {
    float min = x[0], max = x[0];
    for (int j = 1; j < QK; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    const int qmax = (1 << f->bits) - 1;
    const float d = (max - min) / (float)qmax;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    imp_q_store_fp16(b, d);
    imp_q_store_fp16(b + f->off_m, min);
    uint8_t codes[QK];
    for (int j = 0; j < QK; j++)
        codes[j] = (uint8_t)imp_q_trunc_clamp((x[j] - min) * id + 0.5f, qmax);
    leg_pack(f, codes, b);
}

/* Q8_0 / Q8_1: d = amax/127, q = roundf(x/d) (half away from zero, as ggml). */
static void leg_quantize_q8_ref(const leg_fmt *f, const float *x, uint8_t *b) {
    float amax = 0.0f;
    for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    imp_q_store_fp16(b, d);
    uint8_t codes[QK];
    int sum = 0;
    for (int j = 0; j < QK; j++) {
        float v = x[j] * id;
        if (!(v >= -127.0f)) v = v < -127.0f ? -127.0f : 0.0f; /* NaN -> 0 */
        if (v > 127.0f) v = 127.0f;
        const int8_t q = (int8_t)roundf(v);
        memcpy(&codes[j], &q, 1);
        sum += q;
    }
    leg_pack(f, codes, b);
    if (f->off_m) imp_q_store_fp16(b + f->off_m, (float)sum * d); /* Q8_1's s */
}

/* ---- importance-weighted quantizers ------------------------------------------------------- */

/* Symmetric types: try iscale = -(zero + 0.1*k)/max for k = -9..9, fit the least-squares scale for
 * each candidate set of codes (sum w*x*l / sum w*l*l) and keep the one with the smallest weighted
 * error (largest (sum w*x*l)^2 / sum w*l*l). Then store d in fp16 and re-pick every code as the
 * nearest to x/d for the d actually stored: never worse for that d. */
static void leg_quantize_sym_weighted(const leg_fmt *f, const float *x, const float *w,
                                      uint8_t *b) {
    const int nmax = f->zero;
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    uint8_t codes[QK];
    double best = 0.0, scale = 0.0;
    if (amax >= 1e-15f) {
        for (int k = -9; k <= 9; k++) {
            const float iscale = -((float)nmax + 0.1f * (float)k) / max;
            double sumlx = 0.0, suml2 = 0.0;
            for (int j = 0; j < QK; j++) {
                const int l = imp_q_round_clamp(iscale * x[j], -nmax, nmax - 1);
                sumlx += (double)w[j] * x[j] * l;
                suml2 += (double)w[j] * l * l;
            }
            if (suml2 > 0.0 && sumlx * sumlx > best * suml2) {
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        if (scale == 0.0) scale = max / (float)-nmax; /* all weights zero: plain max scaling */
    }
    const float d = imp_q_store_fp16(b, (float)scale);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < QK; j++)
        codes[j] = (uint8_t)(imp_q_round_clamp(x[j] * id, -nmax, nmax - 1) + nmax);
    leg_pack(f, codes, b);
}

/* Weighted least-squares line x ~ d*l + m for fixed codes l; returns the weighted squared error,
 * or INFINITY when the codes do not determine a line (all equal, or no weight). */
static double leg_fit_line(const float *x, const float *w, const int *l, double *d, double *m) {
    double sw = 0.0, sx = 0.0, sl = 0.0, sl2 = 0.0, sxl = 0.0;
    for (int j = 0; j < QK; j++) {
        sw += w[j];
        sx += (double)w[j] * x[j];
        sl += (double)w[j] * l[j];
        sl2 += (double)w[j] * l[j] * l[j];
        sxl += (double)w[j] * l[j] * x[j];
    }
    const double det = sw * sl2 - sl * sl;
    if (!(det > 0.0)) return INFINITY;
    *d = (sw * sxl - sx * sl) / det;
    *m = (sl2 * sx - sl * sxl) / det;
    double err = 0.0;
    for (int j = 0; j < QK; j++) {
        const double e = *d * l[j] + *m - x[j];
        err += w[j] * e * e;
    }
    return err;
}

/* Types with a min (ggml's make_qkx3_quants idea): starting from the plain [min, max] fit, try
 * iscale = (qmax + r)/(max - m), r = -0.9 .. +0.9 in steps of 0.05, where m is the best offset
 * found so far; round the codes, solve the weighted least-squares line x ~ d*l + m for them and
 * keep the best. Then alternate re-rounding and re-fitting while the error drops. Unlike the
 * K-quant helper, m may be positive: Q4_1/Q5_1 store a signed fp16 min. */
static void leg_quantize_min_weighted(const leg_fmt *f, const float *x, const float *w,
                                      uint8_t *b) {
    const int qmax = (1 << f->bits) - 1;
    float min = x[0], max = x[0];
    for (int j = 1; j < QK; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    double best_d = 0.0, best_m = min;
    if (max > min) {
        int l[QK];
        best_d = (max - min) / (float)qmax;
        double best_err = 0.0;
        for (int j = 0; j < QK; j++) {
            l[j] = imp_q_round_clamp((x[j] - min) / (float)best_d, 0, qmax);
            const double e = best_d * l[j] + min - x[j];
            best_err += w[j] * e * e;
        }
        for (int k = 0; k <= 36; k++) {
            const float iscale = ((float)qmax - 0.9f + 0.05f * (float)k) / (max - (float)best_m);
            for (int j = 0; j < QK; j++)
                l[j] = imp_q_round_clamp(iscale * (x[j] - (float)best_m), 0, qmax);
            double dd, mm;
            const double err = leg_fit_line(x, w, l, &dd, &mm);
            if (err < best_err && dd > 0.0) {
                best_err = err;
                best_d = dd;
                best_m = mm;
            }
        }
        for (int it = 0; it < 8; it++) {
            for (int j = 0; j < QK; j++)
                l[j] = imp_q_round_clamp((float)((x[j] - best_m) / best_d), 0, qmax);
            double dd, mm;
            const double err = leg_fit_line(x, w, l, &dd, &mm);
            if (!(err < best_err && dd > 0.0)) break;
            best_err = err;
            best_d = dd;
            best_m = mm;
        }
    }
    const float d = imp_q_store_fp16(b, (float)best_d);
    const float m = imp_q_store_fp16(b + f->off_m, (float)best_m);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint8_t codes[QK];
    for (int j = 0; j < QK; j++) codes[j] = (uint8_t)imp_q_round_clamp((x[j] - m) * id, 0, qmax);
    leg_pack(f, codes, b);
}

static void leg_quantize(const leg_fmt *f, const float *src, void *dst, int64_t n,
                         const float *imatrix) {
    uint8_t *b = dst;
    /* The imatrix path weighs each element by importance * sqrt(sigma^2 + x^2) (ggml's choice):
     * sigma^2, the row's mean square, keeps small elements of important columns from being
     * ignored. */
    float sigma2 = 0.0f;
    if (imatrix && f->bits != 8 && n > 0) {
        double sum_x2 = 0.0;
        for (int64_t i = 0; i < n; i++) sum_x2 += (double)src[i] * src[i];
        sigma2 = (float)(sum_x2 / (double)n);
    }
    for (int64_t i = 0; i < n / QK; i++, b += f->size) {
        const float *x = src + i * QK;
        if (f->bits == 8) {
            leg_quantize_q8_ref(f, x, b);
        } else if (!imatrix) {
            if (f->has_min)
                leg_quantize_min_ref(f, x, b);
            else
                leg_quantize_sym_ref(f, x, b);
        } else {
            float w[QK];
            for (int j = 0; j < QK; j++) w[j] = imatrix[i * QK + j] * sqrtf(sigma2 + x[j] * x[j]);
            if (f->has_min)
                leg_quantize_min_weighted(f, x, w, b);
            else
                leg_quantize_sym_weighted(f, x, w, b);
        }
    }
}

/* ---- dot products ------------------------------------------------------------------------- */

/* x in format fx, y in fy (Q8_0 or Q8_1): per block the integer dot of the values times dx*dy,
 * plus m_x * s_y for the formats with a min (sum_j (d q_j + m) y_j = d sum q_j y_j + m sum y_j). */
static void leg_vec_dot(const leg_fmt *fx, const leg_fmt *fy, int64_t n, float *s, const void *x,
                        const void *y) {
    const uint8_t *xb = x, *yb = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++, xb += fx->size, yb += fy->size) {
        int v[QK];
        leg_values(fx, xb, v);
        const int8_t *yq = (const int8_t *)(yb + fy->off_qs);
        int sumi = 0;
        for (int j = 0; j < QK; j++) sumi += v[j] * yq[j];
        sum += imp_q_load_fp16(xb) * imp_q_load_fp16(yb) * (float)sumi;
        if (fx->has_min) sum += imp_q_load_fp16(xb + fx->off_m) * imp_q_load_fp16(yb + fy->off_m);
    }
    *s = sum;
}

/* ---- the table's entry points ------------------------------------------------------------- */

#define IMP_LEGACY_TYPE_FNS(t, fmt, yfmt)                                                          \
    void imp_dequantize_##t(const void *src, float *dst, int64_t n) {                              \
        leg_dequantize(&fmt, src, dst, n);                                                         \
    }                                                                                              \
    void imp_quantize_##t(const float *src, void *dst, int64_t n, const float *imatrix) {          \
        leg_quantize(&fmt, src, dst, n, imatrix);                                                  \
    }                                                                                              \
    void imp_vec_dot_##t(int64_t n, float *s, const void *x, const void *y) {                      \
        leg_vec_dot(&fmt, &yfmt, n, s, x, y);                                                      \
    }

IMP_LEGACY_TYPE_FNS(q4_0, k_q4_0, k_q8_0)
IMP_LEGACY_TYPE_FNS(q4_1, k_q4_1, k_q8_1)
IMP_LEGACY_TYPE_FNS(q5_0, k_q5_0, k_q8_0)
IMP_LEGACY_TYPE_FNS(q5_1, k_q5_1, k_q8_1)
IMP_LEGACY_TYPE_FNS(q8_0, k_q8_0, k_q8_0)
IMP_LEGACY_TYPE_FNS(q8_1, k_q8_1, k_q8_1)
