/*
 * Scale searches and scale packing shared by the K-quant formats (see q_kquants_scales.h).
 *
 * The float expressions keep ggml's evaluation order (e.g. w*x*l, not w*(x*l)) on purpose: the
 * searches compare near-equal candidates, and matching ggml's rounding keeps the choices, and so
 * the bytes, the same as llama.cpp's reference quantizer.
 */
#include "quant/q_kquants_scales.h"

#include <math.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF /* a fused multiply-add would change the roundings above */
#endif

static int kq_clamp(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* The element of largest magnitude (the first one on ties), with its sign. */
static float kq_signed_absmax(int n, const float *x, float *amax_out) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    *amax_out = amax;
    return max;
}

/*
 * Coordinate descent on integer levels L in [lo, hi] for x ~= s * L with the least-squares
 * s = sumlx / suml2: the weighted error is minimal where sumlx^2 / suml2 is maximal, so each
 * level in turn moves to its best value given the others, kept only if that ratio grows.
 * Up to 5 sweeps, stopping early when a sweep changes nothing.
 */
static void kq_refine_levels(int n, int lo, int hi, const float *x, const float *w, int *L,
                             float *sumlx_io, float *suml2_io) {
    float sumlx = *sumlx_io, suml2 = *suml2_io;
    for (int sweep = 0; sweep < 5; sweep++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float slx = sumlx - w[i] * x[i] * L[i];
            float sl2 = suml2 - w[i] * L[i] * L[i];
            if (!(slx > 0 && sl2 > 0)) continue;
            int l = kq_clamp(imp_kq_nearest_int(x[i] * sl2 / slx), lo, hi);
            if (l == L[i]) continue;
            slx += w[i] * x[i] * l;
            sl2 += w[i] * l * l;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = l;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    *sumlx_io = sumlx;
    *suml2_io = suml2;
}

/* Levels for x at inverse scale iscale, clamped to [-nmax, nmax-1], and the weighted sums
 * sum w*x*l and sum w*l^2 that give the best scale for them. */
static void kq_symmetric_levels(int n, int nmax, const float *x, const float *w, float iscale,
                                int *l, float *sumlx, float *suml2) {
    float slx = 0, sl2 = 0;
    for (int i = 0; i < n; i++) {
        l[i] = kq_clamp(imp_kq_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        slx += w[i] * x[i] * l[i];
        sl2 += w[i] * l[i] * l[i];
    }
    *sumlx = slx;
    *suml2 = sl2;
}

float imp_kq_search_symmetric(int n, int nmax, const float *x, const float *w, int8_t *L) {
    float amax;
    float max = kq_signed_absmax(n, x, &amax);
    if (amax < IMP_KQ_GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float wx2[IMP_KQ_SEARCH_MAX];
    if (!w) {
        for (int i = 0; i < n; i++) wx2[i] = x[i] * x[i];
        w = wx2;
    }
    /* the start maps the extreme element to -nmax, using the asymmetric range's longer side */
    int best_l[IMP_KQ_SEARCH_MAX], l[IMP_KQ_SEARCH_MAX];
    float sumlx, suml2;
    kq_symmetric_levels(n, nmax, x, w, -nmax / max, best_l, &sumlx, &suml2);
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx; /* = sumlx^2 / suml2, the error reduction to maximize */
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        kq_symmetric_levels(n, nmax, x, w, -(nmax + 0.1f * is) / max, l, &sumlx, &suml2);
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            memcpy(best_l, l, sizeof(int) * (size_t)n);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(best_l[i] + nmax);
    return scale;
}

float imp_kq_search_symmetric_refined(int n, int nmax, const float *x, int8_t *L) {
    float amax;
    float max = kq_signed_absmax(n, x, &amax);
    if (amax < IMP_KQ_GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float w[IMP_KQ_SEARCH_MAX];
    for (int i = 0; i < n; i++) w[i] = x[i] * x[i];
    int l[IMP_KQ_SEARCH_MAX];
    float sumlx, suml2;
    kq_symmetric_levels(n, nmax, x, w, -nmax / max, l, &sumlx, &suml2);
    kq_refine_levels(n, -nmax, nmax - 1, x, w, l, &sumlx, &suml2);
    for (int i = 0; i < n; i++) L[i] = (int8_t)(l[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Weighted error of x against scale * l + min (absolute or squared). */
static float kq_affine_error(int n, const float *x, const float *w, const uint8_t *l, float scale,
                             float min, bool use_mad) {
    float err = 0;
    for (int i = 0; i < n; i++) {
        float diff = scale * l[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        err += w[i] * diff;
    }
    return err;
}

float imp_kq_search_affine(int n, int nmax, const float *x, const float *w, uint8_t *L,
                           float *neg_min, float rmin, float rdelta, int nstep, bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = w[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    /* the format subtracts a non-negative min, so the range always includes 0 */
    if (min > 0) min = 0;
    if (!(max > min)) { /* constant group (or NaN): nothing to scale */
        memset(L, 0, (size_t)n);
        *neg_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    for (int i = 0; i < n; i++)
        L[i] = (uint8_t)kq_clamp(imp_kq_nearest_int(iscale * (x[i] - min)), 0, nmax);
    float best_error = kq_affine_error(n, x, w, L, scale, min, use_mad);

    uint8_t cand[IMP_KQ_SEARCH_MAX];
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = kq_clamp(imp_kq_nearest_int(iscale * (x[i] - min)), 0, nmax);
            cand[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        /* weighted least squares for x ~= scale * l + min over these levels */
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0)) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0) { /* a positive min cannot be stored: refit the scale alone */
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float err = kq_affine_error(n, x, w, cand, this_scale, this_min, use_mad);
        if (err < best_error) {
            memcpy(L, cand, (size_t)n);
            best_error = err;
            scale = this_scale;
            min = this_min;
        }
    }
    *neg_min = -min;
    return scale;
}

float imp_kq_search_positive(int n, int nmax, const float *x, const float *w, uint8_t *L) {
    float max = 0;
    for (int i = 0; i < n; i++) max = x[i] > max ? x[i] : max;
    if (max < IMP_KQ_GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    /* grid over the inverse scale, scored by the error at the plain 1/iscale scale */
    float iscale = nmax / max;
    float best_mse = 0;
    {
        float scale = 1 / iscale;
        for (int i = 0; i < n; i++) {
            float diff = x[i] - scale * kq_clamp(imp_kq_nearest_int(iscale * x[i]), 0, nmax);
            best_mse += w[i] * diff * diff;
        }
    }
    for (int is = -4; is <= 4; is++) {
        if (is == 0) continue;
        float iscale_is = (0.1f * is + nmax) / max;
        float scale_is = 1 / iscale_is;
        float mse = 0;
        for (int i = 0; i < n; i++) {
            int l = kq_clamp(imp_kq_nearest_int(iscale_is * x[i]), 0, nmax);
            float diff = x[i] - scale_is * l;
            mse += w[i] * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    /* then the least-squares scale for the chosen levels, refined level by level */
    int l[IMP_KQ_SEARCH_MAX];
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        l[i] = kq_clamp(imp_kq_nearest_int(iscale * x[i]), 0, nmax);
        sumlx += w[i] * x[i] * l[i];
        suml2 += w[i] * l[i] * l[i];
    }
    kq_refine_levels(n, 0, nmax, x, w, l, &sumlx, &suml2);
    for (int i = 0; i < n; i++) L[i] = (uint8_t)l[i];
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

void imp_kq_pack_scales_k4(const uint8_t sc[8], const uint8_t mn[8], uint8_t packed[12]) {
    for (int j = 0; j < 4; j++) {
        packed[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        packed[j + 4] = (uint8_t)((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
        packed[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
    }
}

void imp_kq_unpack_scales_k4(const uint8_t packed[12], uint8_t sc[8], uint8_t mn[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = packed[j] & 63;
        mn[j] = packed[j + 4] & 63;
        sc[j + 4] = (uint8_t)((packed[j + 8] & 0xF) | ((packed[j] >> 6) << 4));
        mn[j + 4] = (uint8_t)((packed[j + 8] >> 4) | ((packed[j + 4] >> 6) << 4));
    }
}

void imp_kq_pack_scales_q3(const int8_t sc[16], uint8_t packed[12]) {
    memset(packed, 0, 12);
    for (int j = 0; j < 16; j++) {
        unsigned v = (unsigned)(sc[j] + 32) & 63;
        packed[j % 8] |= (uint8_t)((v & 0xF) << (4 * (j / 8)));
        packed[8 + j % 4] |= (uint8_t)((v >> 4) << (2 * (j / 4)));
    }
}

void imp_kq_unpack_scales_q3(const uint8_t packed[12], int8_t sc[16]) {
    for (int j = 0; j < 16; j++) {
        unsigned lo = (packed[j % 8] >> (4 * (j / 8))) & 0xF;
        unsigned hi = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
        sc[j] = (int8_t)((int)(lo | (hi << 4)) - 32);
    }
}
