/*
 * Scale searches and scale packing shared by the K-quant formats (internal to src/quant/).
 *
 * Every K-quant block is a super-block of 256 weights split into groups of 16 or 32; each group
 * gets a scale (and, for the affine formats, a min) that is itself quantized against one fp16
 * super-scale. The searches below find a group's scale and integer levels; they are the ideas of
 * ggml's reference quantizers (make_qx_quants, make_q3_quants, make_qkx2/3_quants,
 * make_qp_quants) and evaluate their float arithmetic in the same order, so a block quantized
 * here matches one quantized by ggml.
 *
 * Weights: every search minimizes a weighted squared (or absolute) error; callers pass the
 * per-element weights (importance-matrix based or a heuristic of x). All searches handle an
 * all-zero input and never read or write past n; n <= 32 everywhere in this file.
 */
#ifndef IMP_QUANT_Q_KQUANTS_SCALES_H
#define IMP_QUANT_Q_KQUANTS_SCALES_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Groups whose largest magnitude is below this are treated as all zero (ggml's GROUP_MAX_EPS). */
#define IMP_KQ_GROUP_EPS 1e-15f

/* The largest n any search accepts (a group of 32, or the 16 group scales of a super-block). */
#define IMP_KQ_SEARCH_MAX 32

/* Rounds to the nearest integer, ties to even, as ggml's nearest_int: adding 1.5*2^23 lets the
 * float adder do the rounding and leaves round(v) in the low mantissa bits, exact while the sum
 * stays below 2^24, i.e. for |v| < 2^22 - 1 (ggml asserts that range). Outside it this saturates
 * (NaN gives 0) instead of wrapping, so callers' clamps pick the right side, and no float-to-int
 * conversion of an untrusted value is ever undefined. */
#define IMP_KQ_NEAREST_MAX 4194303
static inline int imp_kq_nearest_int(float v) {
    if (!(v > -(float)IMP_KQ_NEAREST_MAX && v < (float)IMP_KQ_NEAREST_MAX))
        return v > 0 ? IMP_KQ_NEAREST_MAX : v < 0 ? -IMP_KQ_NEAREST_MAX : 0;
    float t = v + 12582912.f;
    int32_t bits;
    memcpy(&bits, &t, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

/* Symmetric levels by a grid search over the scale (ggml's make_qx_quants, rmse_type 1): levels
 * l in [-nmax, nmax-1] are written to L as l + nmax; w (n weights) or, when NULL, x^2 weighs
 * the squared error. Returns the scale s, x ~= s * (L - nmax). All-zero x: L = 0, returns 0. */
float imp_kq_search_symmetric(int n, int nmax, const float *x, const float *w, int8_t *L);

/* Symmetric levels by coordinate descent from the max-based start (ggml's make_q3_quants with
 * do_rmse): weights x^2; otherwise as imp_kq_search_symmetric. */
float imp_kq_search_symmetric_refined(int n, int nmax, const float *x, int8_t *L);

/* Affine levels L in [0, nmax] with x ~= scale * L - *neg_min (ggml's make_qkx2/3_quants): tries
 * nstep + 1 inverse scales (rmin + rdelta * i + nmax) / (max - min) and keeps the weighted
 * least-squares fit with the lowest error (absolute when use_mad, else squared). w: n weights,
 * required. *neg_min >= 0 is the amount subtracted; returns the scale (>= 0). */
float imp_kq_search_affine(int n, int nmax, const float *x, const float *w, uint8_t *L,
                           float *neg_min, float rmin, float rdelta, int nstep, bool use_mad);

/* Non-negative levels L in [0, nmax] for non-negative x (group scales or mins against the block
 * super-scale; ggml's make_qp_quants): grid search then coordinate descent, w weighing the
 * squared error. Returns the scale. Max of x below IMP_KQ_GROUP_EPS: L = 0, returns 0. */
float imp_kq_search_positive(int n, int nmax, const float *x, const float *w, uint8_t *L);

/* Q4_K / Q5_K: 8 scales and 8 mins of 6 bits each in 12 bytes (ggml's get_scale_min_k4 order:
 * bytes 0-3 hold scales 0-3, 4-7 mins 0-3, 8-11 the low nibbles of scales and mins 4-7, whose
 * high 2 bits sit in the top bits of bytes 0-7). Inputs must be < 64. */
void imp_kq_pack_scales_k4(const uint8_t sc[8], const uint8_t mn[8], uint8_t packed[12]);
void imp_kq_unpack_scales_k4(const uint8_t packed[12], uint8_t sc[8], uint8_t mn[8]);

/* Q3_K: 16 scales of 6 bits, stored with a +32 offset, in 12 bytes (low nibbles of scales 0-7 in
 * bytes 0-7, of 8-15 in their high nibbles; the high 2 bits of scale j at byte 8 + j%4, bit
 * 2*(j/4)). sc must be in [-32, 31]; unpack returns the signed scales. */
void imp_kq_pack_scales_q3(const int8_t sc[16], uint8_t packed[12]);
void imp_kq_unpack_scales_q3(const uint8_t packed[12], int8_t sc[16]);

#endif
