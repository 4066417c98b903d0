/*
 * CPU reference kernels of the K-quant formats: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and Q8_K (the
 * activation format the others' dot products take). Layouts: quant_blocks.h.
 *
 * Every K-quant block holds 256 weights in groups of 16 or 32; weight i of group g decodes as
 *     d * scale[g] * q[i]  (- dmin * min[g] for the affine formats Q2_K, Q4_K, Q5_K)
 * with integer levels q, integer group scales/mins, and fp16 (Q8_K: fp32) super-scales d, dmin.
 * The formats differ only in how those integers are packed into bytes, so each format is a row
 * (kq_format): an unpack (block -> kq_levels), a pack (kq_levels -> block) and, for quantizing,
 * the parameters of its scale search. Dequantize, dot product and quantize are written once
 * against kq_levels:
 *
 *   dequantize  unpack, then the formula above in ggml's float order (bit-exact with
 *               dequantize_row_q*_K: (d * scale) * q - (dmin * min))
 *   vec_dot     unpack, integer dot per group against Q8_K's int8 activations, scaled once per
 *               block; the min term uses Q8_K's per-16 sums (bsums) instead of the activations
 *   quantize    ggml's reference searches (q_kquants_scales.c): per group a scale (and min),
 *               then the group scales quantized against the super-scale, then every weight
 *               re-rounded against the scales actually stored. With an importance matrix the
 *               searches weigh each column's error by it, as ggml's quantize_q*_K do.
 *
 * Blocks are copied in and out with memcpy: a GGUF row may sit at any address (its alignment is
 * the file's say), and reading an imp_block_* through a misaligned pointer would be UB.
 */
#include <math.h>
#include <string.h>

#include "quant/q_kquants_scales.h"
#include "quant/quant_blocks.h"
#include "quant/quant_impl.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF /* dequantize must round d*scale*q - dmin*min exactly as ggml does */
#endif

#define KQ_MAX_GROUPS (IMP_QK_K / 16)

/* A block with its integers unpacked. Levels q are unsigned (0..nmax) for the affine formats,
 * signed for the symmetric ones. */
typedef struct kq_levels {
    float d, dmin;                /* super-scales (fp16 values, Q8_K fp32); dmin 0 without mins */
    int16_t scale[KQ_MAX_GROUPS]; /* group scales: Q3_K -32..31, Q6_K int8, others 0..63 */
    uint8_t min[KQ_MAX_GROUPS];   /* group mins (affine formats), 0..63 */
    int8_t q[IMP_QK_K];           /* per-weight levels */
} kq_levels;

/* Reference and importance-weighted searches of an affine format (levels 0..nmax, a min). */
typedef struct kq_affine_search {
    int nmax;      /* levels 0..nmax */
    int scale_max; /* group scales and mins stored as 0..scale_max (4 or 6 bits) */
    bool ref_rms;  /* reference weights: rms(group) + |x| (Q4_K, Q5_K); else |x| (Q2_K) */
    float ref_rmin, ref_rdelta; /* reference grid of inverse scales (make_qkx2_quants) */
    int ref_nstep;
    bool ref_mad;     /* reference grid minimizes absolute instead of squared error */
    float sigma2_mul; /* importance weights qw * sqrt(sigma2_mul * mean(x^2) + x^2) */
} kq_affine_search;

/* Searches of a symmetric format (levels -nmax..nmax-1, no min). */
typedef struct kq_symmetric_search {
    int nmax;           /* levels -nmax..nmax-1 */
    int scale_half;     /* group scales stored as -scale_half..scale_half-1 */
    bool ref_refined;   /* reference group search by coordinate descent (Q3_K), else grid */
    bool imatrix_sigma; /* with importance: weights qw*sqrt(2*mean(x^2)+x^2) and group scales
                           searched against the super-scale (Q3_K); else the raw importance
                           and the max-based super-scale (Q6_K) */
} kq_symmetric_search;

typedef struct kq_format {
    size_t block_bytes;
    int group; /* weights per group scale: 16, 32 (Q4_K, Q5_K) or 256 (Q8_K) */
    bool has_min;
    void (*unpack)(const void *block, kq_levels *lv);
    void (*pack)(const kq_levels *lv, void *block);
    const kq_affine_search *affine; /* one of these two for the weight formats */
    const kq_symmetric_search *symmetric;
} kq_format;

static int kq_clamp(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* The value the block will store for d: the search's scale rounded through fp16. */
static float kq_fp16_round(float v) {
    return imp_fp16_to_f32(imp_f32_to_fp16(v));
}

/* ---- packing: Q2_K and Q3_K store 2-bit levels of weights 128h + 32s + l at qs[32h + l], bits
 * 2s..2s+1; Q3_K's third bit of weight i is bit i/32 of hmask[i%32]. -------------------------- */

static void kq_pack_2bit(const uint8_t *u, uint8_t qs[IMP_QK_K / 4]) {
    for (int i = 0; i < IMP_QK_K / 4; i++) qs[i] = 0;
    for (int i = 0; i < IMP_QK_K; i++)
        qs[32 * (i / 128) + i % 32] |= (uint8_t)((u[i] & 3) << (2 * (i / 32 % 4)));
}

static int kq_get_2bit(const uint8_t qs[IMP_QK_K / 4], int i) {
    return (qs[32 * (i / 128) + i % 32] >> (2 * (i / 32 % 4))) & 3;
}

static void kq_unpack_q2_K(const void *block, kq_levels *lv) {
    imp_block_q2_K blk;
    memcpy(&blk, block, sizeof blk);
    const imp_block_q2_K *b = &blk;
    lv->d = imp_fp16_to_f32(b->d);
    lv->dmin = imp_fp16_to_f32(b->dmin);
    for (int g = 0; g < 16; g++) {
        lv->scale[g] = b->scales[g] & 0xF;
        lv->min[g] = b->scales[g] >> 4;
    }
    for (int i = 0; i < IMP_QK_K; i++) lv->q[i] = (int8_t)kq_get_2bit(b->qs, i);
}

static void kq_pack_q2_K(const kq_levels *lv, void *block) {
    imp_block_q2_K blk, *b = &blk;
    uint8_t u[IMP_QK_K];
    for (int g = 0; g < 16; g++) b->scales[g] = (uint8_t)((lv->scale[g] & 0xF) | (lv->min[g] << 4));
    for (int i = 0; i < IMP_QK_K; i++) u[i] = (uint8_t)lv->q[i];
    kq_pack_2bit(u, b->qs);
    b->d = imp_f32_to_fp16(lv->d);
    b->dmin = imp_f32_to_fp16(lv->dmin);
    memcpy(block, &blk, sizeof blk);
}

static void kq_unpack_q3_K(const void *block, kq_levels *lv) {
    imp_block_q3_K blk;
    memcpy(&blk, block, sizeof blk);
    const imp_block_q3_K *b = &blk;
    int8_t sc[16];
    imp_kq_unpack_scales_q3(b->scales, sc);
    lv->d = imp_fp16_to_f32(b->d);
    lv->dmin = 0;
    for (int g = 0; g < 16; g++) lv->scale[g] = sc[g];
    for (int i = 0; i < IMP_QK_K; i++) {
        int high = (b->hmask[i % 32] >> (i / 32)) & 1;
        lv->q[i] = (int8_t)(kq_get_2bit(b->qs, i) - (high ? 0 : 4)); /* 3-bit code - 4 */
    }
}

static void kq_pack_q3_K(const kq_levels *lv, void *block) {
    imp_block_q3_K blk, *b = &blk;
    uint8_t u[IMP_QK_K];
    int8_t sc[16];
    memset(b->hmask, 0, sizeof b->hmask);
    for (int i = 0; i < IMP_QK_K; i++) {
        u[i] = (uint8_t)(lv->q[i] + 4);
        b->hmask[i % 32] |= (uint8_t)((u[i] >> 2) << (i / 32));
    }
    kq_pack_2bit(u, b->qs);
    for (int g = 0; g < 16; g++) sc[g] = (int8_t)lv->scale[g];
    imp_kq_pack_scales_q3(sc, b->scales);
    b->d = imp_f32_to_fp16(lv->d);
    memcpy(block, &blk, sizeof blk);
}

/* Q4_K / Q5_K: the low 4 bits of weights 64k + l and 64k + 32 + l (l < 32) share qs[32k + l],
 * low and high nibble; Q5_K's fifth bit of those is bit 2k resp. 2k+1 of qh[l]. */
static void kq_unpack_k4_header(imp_fp16 d, imp_fp16 dmin, const uint8_t scales[12],
                                kq_levels *lv) {
    uint8_t sc[8], mn[8];
    imp_kq_unpack_scales_k4(scales, sc, mn);
    lv->d = imp_fp16_to_f32(d);
    lv->dmin = imp_fp16_to_f32(dmin);
    for (int g = 0; g < 8; g++) {
        lv->scale[g] = sc[g];
        lv->min[g] = mn[g];
    }
}

static void kq_pack_k4_header(const kq_levels *lv, imp_fp16 *d, imp_fp16 *dmin,
                              uint8_t scales[12]) {
    uint8_t sc[8], mn[8];
    for (int g = 0; g < 8; g++) {
        sc[g] = (uint8_t)lv->scale[g];
        mn[g] = lv->min[g];
    }
    imp_kq_pack_scales_k4(sc, mn, scales);
    *d = imp_f32_to_fp16(lv->d);
    *dmin = imp_f32_to_fp16(lv->dmin);
}

static int kq_nibble_index(int i) {
    return 32 * (i / 64) + i % 32;
}
static int kq_nibble_shift(int i) {
    return 4 * (i / 32 % 2);
}

static void kq_unpack_q4_K(const void *block, kq_levels *lv) {
    imp_block_q4_K blk;
    memcpy(&blk, block, sizeof blk);
    const imp_block_q4_K *b = &blk;
    kq_unpack_k4_header(b->d, b->dmin, b->scales, lv);
    for (int i = 0; i < IMP_QK_K; i++)
        lv->q[i] = (int8_t)((b->qs[kq_nibble_index(i)] >> kq_nibble_shift(i)) & 0xF);
}

static void kq_pack_q4_K(const kq_levels *lv, void *block) {
    imp_block_q4_K blk, *b = &blk;
    kq_pack_k4_header(lv, &b->d, &b->dmin, b->scales);
    memset(b->qs, 0, sizeof b->qs);
    for (int i = 0; i < IMP_QK_K; i++)
        b->qs[kq_nibble_index(i)] |= (uint8_t)((lv->q[i] & 0xF) << kq_nibble_shift(i));
    memcpy(block, &blk, sizeof blk);
}

static void kq_unpack_q5_K(const void *block, kq_levels *lv) {
    imp_block_q5_K blk;
    memcpy(&blk, block, sizeof blk);
    const imp_block_q5_K *b = &blk;
    kq_unpack_k4_header(b->d, b->dmin, b->scales, lv);
    for (int i = 0; i < IMP_QK_K; i++) {
        int low = (b->qs[kq_nibble_index(i)] >> kq_nibble_shift(i)) & 0xF;
        int high = (b->qh[i % 32] >> (i / 32)) & 1;
        lv->q[i] = (int8_t)(low | (high << 4));
    }
}

static void kq_pack_q5_K(const kq_levels *lv, void *block) {
    imp_block_q5_K blk, *b = &blk;
    kq_pack_k4_header(lv, &b->d, &b->dmin, b->scales);
    memset(b->qs, 0, sizeof b->qs);
    memset(b->qh, 0, sizeof b->qh);
    for (int i = 0; i < IMP_QK_K; i++) {
        b->qs[kq_nibble_index(i)] |= (uint8_t)((lv->q[i] & 0xF) << kq_nibble_shift(i));
        b->qh[i % 32] |= (uint8_t)(((lv->q[i] >> 4) & 1) << (i / 32));
    }
    memcpy(block, &blk, sizeof blk);
}

/* Q6_K: 6-bit codes (level + 32). In each half h (128 weights), weight 128h + 32s + l keeps its
 * low nibble in ql[64h + l + 32*(s%2)] (low nibble for s < 2, high for s >= 2) and its top 2
 * bits in qh[32h + l], bits 2s..2s+1. */
static int kq_q6_low_index(int i) {
    return 64 * (i / 128) + i % 32 + 32 * (i / 32 % 2);
}
static int kq_q6_low_shift(int i) {
    return 4 * (i / 64 % 2);
}
static int kq_q6_high_index(int i) {
    return 32 * (i / 128) + i % 32;
}
static int kq_q6_high_shift(int i) {
    return 2 * (i / 32 % 4);
}

static void kq_unpack_q6_K(const void *block, kq_levels *lv) {
    imp_block_q6_K blk;
    memcpy(&blk, block, sizeof blk);
    const imp_block_q6_K *b = &blk;
    lv->d = imp_fp16_to_f32(b->d);
    lv->dmin = 0;
    for (int g = 0; g < 16; g++) lv->scale[g] = b->scales[g];
    for (int i = 0; i < IMP_QK_K; i++) {
        int low = (b->ql[kq_q6_low_index(i)] >> kq_q6_low_shift(i)) & 0xF;
        int high = (b->qh[kq_q6_high_index(i)] >> kq_q6_high_shift(i)) & 3;
        lv->q[i] = (int8_t)((low | (high << 4)) - 32);
    }
}

static void kq_pack_q6_K(const kq_levels *lv, void *block) {
    imp_block_q6_K blk, *b = &blk;
    memset(b->ql, 0, sizeof b->ql);
    memset(b->qh, 0, sizeof b->qh);
    for (int i = 0; i < IMP_QK_K; i++) {
        int u = lv->q[i] + 32;
        b->ql[kq_q6_low_index(i)] |= (uint8_t)((u & 0xF) << kq_q6_low_shift(i));
        b->qh[kq_q6_high_index(i)] |= (uint8_t)((u >> 4) << kq_q6_high_shift(i));
    }
    for (int g = 0; g < 16; g++) b->scales[g] = (int8_t)lv->scale[g];
    b->d = imp_f32_to_fp16(lv->d);
    memcpy(block, &blk, sizeof blk);
}

/* Q8_K: one group of 256 with scale 1; the block also stores the sums of each 16 levels. */
static void kq_unpack_q8_K(const void *block, kq_levels *lv) {
    imp_block_q8_K blk;
    memcpy(&blk, block, sizeof blk);
    const imp_block_q8_K *b = &blk;
    lv->d = b->d;
    lv->dmin = 0;
    lv->scale[0] = 1;
    memcpy(lv->q, b->qs, IMP_QK_K);
}

static void kq_pack_q8_K(const kq_levels *lv, void *block) {
    imp_block_q8_K blk, *b = &blk;
    b->d = lv->d;
    memcpy(b->qs, lv->q, IMP_QK_K);
    for (int j = 0; j < IMP_QK_K / 16; j++) {
        int sum = 0;
        for (int i = 0; i < 16; i++) sum += b->qs[16 * j + i];
        b->bsums[j] = (int16_t)sum;
    }
    memcpy(block, &blk, sizeof blk);
}

/* ---- the format rows ---------------------------------------------------------------------- */

/* Search parameters are ggml's: reference grids from quantize_row_q*_K_ref, importance-weighted
 * grids (-0.9, 0.05, 36 steps) from quantize_q*_K. */
/* clang-format off */
/*                                           nmax scale_max ref_rms ref_rmin rdelta nstep ref_mad sigma2_mul */
static const kq_affine_search k_q2_search = {3,   15,       false,  -0.5f,   0.1f,  15,   true,   1.0f};
static const kq_affine_search k_q4_search = {15,  63,       true,   -1.0f,   0.1f,  20,   false,  2.0f};
static const kq_affine_search k_q5_search = {31,  63,       true,   -0.5f,   0.1f,  15,   false,  2.0f};
/*                                              nmax scale_half ref_refined imatrix_sigma */
static const kq_symmetric_search k_q3_search = {4,   32,        true,       true};
static const kq_symmetric_search k_q6_search = {32,  128,       false,      false};

#define KQ_FORMAT(t, group, has_min, affine, symmetric) \
    {sizeof(imp_block_##t), group, has_min, kq_unpack_##t, kq_pack_##t, affine, symmetric}
static const kq_format k_q2_K = KQ_FORMAT(q2_K, 16,  true,  &k_q2_search, NULL);
static const kq_format k_q3_K = KQ_FORMAT(q3_K, 16,  false, NULL,         &k_q3_search);
static const kq_format k_q4_K = KQ_FORMAT(q4_K, 32,  true,  &k_q4_search, NULL);
static const kq_format k_q5_K = KQ_FORMAT(q5_K, 32,  true,  &k_q5_search, NULL);
static const kq_format k_q6_K = KQ_FORMAT(q6_K, 16,  false, NULL,         &k_q6_search);
static const kq_format k_q8_K = KQ_FORMAT(q8_K, 256, false, NULL,         NULL);
/* clang-format on */

/* ---- dequantize and dot, once for all formats --------------------------------------------- */

static void kq_dequantize_row(const kq_format *f, const void *src, float *dst, int64_t n) {
    const uint8_t *block = src;
    kq_levels lv;
    for (int64_t ib = 0; ib < n / IMP_QK_K; ib++, block += f->block_bytes, dst += IMP_QK_K) {
        f->unpack(block, &lv);
        for (int g = 0; g < IMP_QK_K / f->group; g++) {
            const float dl = lv.d * lv.scale[g];
            const int8_t *q = lv.q + g * f->group;
            float *y = dst + g * f->group;
            if (f->has_min) {
                const float ml = lv.dmin * lv.min[g];
                for (int i = 0; i < f->group; i++) y[i] = dl * q[i] - ml;
            } else {
                for (int i = 0; i < f->group; i++) y[i] = dl * q[i];
            }
        }
    }
}

static void kq_vec_dot_row(const kq_format *f, int64_t n, float *s, const void *x, const void *vy) {
    const uint8_t *block = x, *yblock = vy;
    kq_levels lv;
    imp_block_q8_K ycopy, *y = &ycopy; /* rows may sit at any address: see kq_unpack_* */
    float sum = 0;
    for (int64_t ib = 0; ib < n / IMP_QK_K; ib++, block += f->block_bytes, yblock += sizeof ycopy) {
        f->unpack(block, &lv);
        memcpy(&ycopy, yblock, sizeof ycopy);
        /* |sum| <= 256 * 127 * 32 * 128 < 2^31 for every format: int32 is exact */
        int32_t sumi = 0;
        for (int g = 0; g < IMP_QK_K / f->group; g++) {
            int32_t dot = 0;
            for (int i = g * f->group; i < (g + 1) * f->group; i++) dot += lv.q[i] * y->qs[i];
            sumi += lv.scale[g] * dot;
        }
        sum += lv.d * y->d * (float)sumi;
        if (f->has_min) { /* sum_i min[g] * y_i = min[g] * (sum of the group's bsums) */
            int32_t summ = 0;
            for (int j = 0; j < IMP_QK_K / 16; j++) summ += lv.min[j * 16 / f->group] * y->bsums[j];
            sum -= lv.dmin * y->d * (float)summ;
        }
    }
    *s = sum;
}

/* ---- quantize ----------------------------------------------------------------------------- */

/* Quantizes non-negative group scales (or mins) against their maximum: ls = round(v * qmax /
 * max), returns the super-scale max / qmax (ggml's reference K-quants). */
static float kq_quantize_by_max(int n, const float *v, int qmax, uint8_t *l) {
    float max = 0;
    for (int i = 0; i < n; i++) max = v[i] > max ? v[i] : max;
    float iscale = max > 0 ? qmax / max : 0.f;
    for (int i = 0; i < n; i++)
        l[i] = (uint8_t)kq_clamp(imp_kq_nearest_int(iscale * v[i]), 0, qmax);
    return max / qmax;
}

static float kq_sum_squares(int n, const float *x) {
    float s = 0;
    for (int i = 0; i < n; i++) s += x[i] * x[i];
    return s;
}

/* Affine formats (Q2_K, Q4_K, Q5_K): one block of 256 weights -> levels. qw: the block's 256
 * importance weights, or NULL for ggml's reference quantizer. */
static void kq_quantize_affine(const kq_format *f, const float *x, const float *qw, kq_levels *lv) {
    const kq_affine_search *p = f->affine;
    const int gs = f->group, ng = IMP_QK_K / gs;
    uint8_t L[IMP_QK_K], ls[KQ_MAX_GROUPS], lm[KQ_MAX_GROUPS];
    float scales[KQ_MAX_GROUPS], mins[KQ_MAX_GROUPS], sw[KQ_MAX_GROUPS], w[32];
    float d, dmin;
    if (!qw) {
        for (int g = 0; g < ng; g++) {
            const float *xg = x + g * gs;
            /* weigh larger weights more, and with Q4_K/Q5_K every weight at least the rms */
            float av = p->ref_rms ? sqrtf(kq_sum_squares(gs, xg) / gs) : 0.f;
            for (int i = 0; i < gs; i++) w[i] = p->ref_rms ? av + fabsf(xg[i]) : fabsf(xg[i]);
            scales[g] = imp_kq_search_affine(gs, p->nmax, xg, w, L + g * gs, &mins[g], p->ref_rmin,
                                             p->ref_rdelta, p->ref_nstep, p->ref_mad);
        }
        d = kq_quantize_by_max(ng, scales, p->scale_max, ls);
        dmin = kq_quantize_by_max(ng, mins, p->scale_max, lm);
    } else {
        const float sigma2 = p->sigma2_mul * kq_sum_squares(IMP_QK_K, x) / IMP_QK_K;
        for (int g = 0; g < ng; g++) {
            const float *xg = x + g * gs;
            float sum = 0;
            for (int i = 0; i < gs; i++) {
                w[i] = qw[g * gs + i] * sqrtf(sigma2 + xg[i] * xg[i]);
                sum += w[i];
            }
            sw[g] = sum;
            scales[g] = imp_kq_search_affine(gs, p->nmax, xg, w, L + g * gs, &mins[g], -0.9f, 0.05f,
                                             36, false);
        }
        /* the group scales and mins, weighted by their groups' total importance */
        d = imp_kq_search_positive(ng, p->scale_max, scales, sw, ls);
        dmin = imp_kq_search_positive(ng, p->scale_max, mins, sw, lm);
    }
    lv->d = kq_fp16_round(d);
    lv->dmin = kq_fp16_round(dmin);
    for (int g = 0; g < ng; g++) {
        lv->scale[g] = ls[g];
        lv->min[g] = lm[g];
        /* re-round every weight against the scale and min the block really stores */
        const float dl = lv->d * ls[g];
        if (!dl) continue;
        const float ml = lv->dmin * lm[g];
        for (int i = g * gs; i < (g + 1) * gs; i++)
            L[i] = (uint8_t)kq_clamp(imp_kq_nearest_int((x[i] + ml) / dl), 0, p->nmax);
    }
    for (int i = 0; i < IMP_QK_K; i++) lv->q[i] = (int8_t)L[i];
}

/* Symmetric formats (Q3_K, Q6_K): one block -> levels. Returns false for a block whose group
 * scales are all (near) zero; the caller stores it as all-zero bytes, which decode to zeros. */
static bool kq_quantize_symmetric(const kq_format *f, const float *x, const float *qw,
                                  kq_levels *lv) {
    const kq_symmetric_search *p = f->symmetric;
    const int gs = f->group, ng = IMP_QK_K / gs;
    int8_t L[IMP_QK_K];
    float scales[KQ_MAX_GROUPS], sw[KQ_MAX_GROUPS], w[32];
    const bool sigma_weights = qw && p->imatrix_sigma;
    const float sigma2 = sigma_weights ? 2 * kq_sum_squares(IMP_QK_K, x) / IMP_QK_K : 0.f;
    float max_scale = 0, amax = 0;
    for (int g = 0; g < ng; g++) {
        const float *xg = x + g * gs;
        int8_t *Lg = L + g * gs;
        if (!qw) {
            scales[g] = p->ref_refined ? imp_kq_search_symmetric_refined(gs, p->nmax, xg, Lg)
                                       : imp_kq_search_symmetric(gs, p->nmax, xg, NULL, Lg);
        } else if (sigma_weights) {
            float sum = 0;
            for (int i = 0; i < gs; i++) {
                w[i] = qw[g * gs + i] * sqrtf(sigma2 + xg[i] * xg[i]);
                sum += w[i];
            }
            sw[g] = sum;
            scales[g] = imp_kq_search_symmetric(gs, p->nmax, xg, w, Lg);
        } else {
            scales[g] = imp_kq_search_symmetric(gs, p->nmax, xg, qw + g * gs, Lg);
        }
        if (fabsf(scales[g]) > amax) {
            amax = fabsf(scales[g]);
            max_scale = scales[g];
        }
    }
    if (!(amax >= IMP_KQ_GROUP_EPS)) return false;

    float d;
    if (sigma_weights) {
        int8_t Ls[KQ_MAX_GROUPS];
        d = imp_kq_search_symmetric(ng, p->scale_half, scales, sw, Ls);
        for (int g = 0; g < ng; g++) lv->scale[g] = (int16_t)(Ls[g] - p->scale_half);
    } else {
        /* the largest scale maps to -scale_half: the stored range's longer side */
        float iscale = -(float)p->scale_half / max_scale;
        d = 1 / iscale;
        for (int g = 0; g < ng; g++)
            lv->scale[g] = (int16_t)kq_clamp(imp_kq_nearest_int(iscale * scales[g]), -p->scale_half,
                                             p->scale_half - 1);
    }
    lv->d = kq_fp16_round(d);
    lv->dmin = 0;
    for (int g = 0; g < ng; g++) {
        const float dl = lv->d * lv->scale[g];
        if (!dl) continue;
        for (int i = g * gs; i < (g + 1) * gs; i++)
            L[i] =
                (int8_t)(kq_clamp(imp_kq_nearest_int(x[i] / dl), -p->nmax, p->nmax - 1) + p->nmax);
    }
    for (int i = 0; i < IMP_QK_K; i++) lv->q[i] = (int8_t)(L[i] - p->nmax);
    return true;
}

static void kq_quantize_row(const kq_format *f, const float *src, void *dst, int64_t n,
                            const float *imatrix) {
    uint8_t *block = dst;
    kq_levels lv;
    for (int64_t ib = 0; ib < n / IMP_QK_K; ib++, block += f->block_bytes) {
        const float *x = src + ib * IMP_QK_K;
        const float *qw = imatrix ? imatrix + ib * IMP_QK_K : NULL;
        if (f->affine) {
            kq_quantize_affine(f, x, qw, &lv);
        } else if (!kq_quantize_symmetric(f, x, qw, &lv)) {
            memset(block, 0, f->block_bytes);
            continue;
        }
        f->pack(&lv, block);
    }
}

/* Q8_K (activations): d = max/-127 with the sign of the largest-magnitude value, levels rounded
 * to int8 (ggml's quantize_row_q8_K_ref); importance does not apply. */
static void kq_quantize_q8_K_row(const float *src, void *dst, int64_t n) {
    uint8_t *block = dst;
    kq_levels lv;
    for (int64_t ib = 0; ib < n / IMP_QK_K; ib++, block += sizeof(imp_block_q8_K)) {
        const float *x = src + ib * IMP_QK_K;
        float max = 0, amax = 0;
        for (int i = 0; i < IMP_QK_K; i++) {
            if (fabsf(x[i]) > amax) {
                amax = fabsf(x[i]);
                max = x[i];
            }
        }
        if (!amax) {
            memset(&lv, 0, sizeof lv);
        } else {
            const float iscale = -127.f / max;
            for (int i = 0; i < IMP_QK_K; i++)
                lv.q[i] = (int8_t)kq_clamp(imp_kq_nearest_int(iscale * x[i]), -128, 127);
            lv.d = 1 / iscale;
        }
        kq_pack_q8_K(&lv, block);
    }
}

/* ---- the table's entry points ------------------------------------------------------------- */

#define KQ_DEFINE_TYPE(t)                                                                          \
    void imp_dequantize_##t(const void *src, float *dst, int64_t n) {                              \
        kq_dequantize_row(&k_##t, src, dst, n);                                                    \
    }                                                                                              \
    void imp_vec_dot_##t(int64_t n, float *s, const void *x, const void *y) {                      \
        kq_vec_dot_row(&k_##t, n, s, x, y);                                                        \
    }

KQ_DEFINE_TYPE(q2_K)
KQ_DEFINE_TYPE(q3_K)
KQ_DEFINE_TYPE(q4_K)
KQ_DEFINE_TYPE(q5_K)
KQ_DEFINE_TYPE(q6_K)
KQ_DEFINE_TYPE(q8_K)

void imp_quantize_q2_K(const float *src, void *dst, int64_t n, const float *imatrix) {
    kq_quantize_row(&k_q2_K, src, dst, n, imatrix);
}
void imp_quantize_q3_K(const float *src, void *dst, int64_t n, const float *imatrix) {
    kq_quantize_row(&k_q3_K, src, dst, n, imatrix);
}
void imp_quantize_q4_K(const float *src, void *dst, int64_t n, const float *imatrix) {
    kq_quantize_row(&k_q4_K, src, dst, n, imatrix);
}
void imp_quantize_q5_K(const float *src, void *dst, int64_t n, const float *imatrix) {
    kq_quantize_row(&k_q5_K, src, dst, n, imatrix);
}
void imp_quantize_q6_K(const float *src, void *dst, int64_t n, const float *imatrix) {
    kq_quantize_row(&k_q6_K, src, dst, n, imatrix);
}
void imp_quantize_q8_K(const float *src, void *dst, int64_t n, const float *imatrix) {
    (void)imatrix;
    kq_quantize_q8_K_row(src, dst, n);
}
