/*
 * AVX2/FMA/F16C fast paths of the CPU matmul's inner loops (simd.h): the dot product of every
 * computable weight type with its activation type, and the activation quantizers. CMake compiles
 * files named *_avx2.c with -mavx2 -mfma -mf16c; simd.c reaches the kernels only through the two
 * tables at the bottom, after imp_cpu_has_avx2() said yes. Built without AVX2 (another
 * architecture), the body compiles away and the tables are all NULL.
 *
 * Conventions: blocks sit at any address (GGUF rows of 18- or 34-byte blocks), so every load is
 * unaligned (loadu, or memcpy for scalars). Integer dots keep exact int32 lane sums per block;
 * one float FMA per block (or super-block) scales them into an 8-lane float accumulator, summed
 * across lanes once per row, so the fast dots differ from the references only in the order of
 * the float additions. Kernels are written once as always-inline drivers taking constant
 * parameters (a decoder, a block size); each kernel instantiates one and the compiler folds the
 * constants.
 *
 * Float dots multiply in fp32 (exact for F16 and BF16 inputs, whose products fit in 24 bits)
 * and sum in four 8-lane FMA accumulators; the references sum in double.
 *
 * The quantizers write exactly the reference's bytes (q_legacy.c, q_kquants.c, base/fp16.h):
 * the same float operations in the same order per element (x * id, iscale * x), the same
 * rounding rule (Q8_0/Q8_1 round half away from zero like roundf, Q8_K ties to even), and the
 * same answers for NaN, infinities and all-zero blocks. Maxima are found with max_ps(|x|, acc),
 * which keeps acc when |x| is NaN, as the references' fmaxf and "if (|x| > amax)" do for quiet
 * NaNs (glibc's fmaxf returns NaN for a signaling NaN, which no arithmetic produces).
 */
#include "quant/simd.h"

/* Indexed by type id; NULL where no AVX2 kernel exists. Read by simd.c, which declares them
 * the same way. */
extern const imp_vec_dot_fn imp_avx2_vec_dot_table[IMP_TYPE_COUNT];
extern const imp_from_float_fn imp_avx2_from_float_table[IMP_TYPE_COUNT];
extern const imp_axpy_fn imp_avx2_axpy;
extern const imp_vec_dot4_fn imp_avx2_vec_dot4_table[IMP_TYPE_COUNT];

#if defined(__x86_64__) && defined(__AVX2__)

#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "base/fp16.h"
#include "quant/quant_blocks.h"

/* ---- helpers ------------------------------------------------------------------------------ */

#define AVX2_INLINE static inline __attribute__((always_inline))

/* Fully unrolls a short constant-trip loop: block offsets and shuffle masks then become
 * constants (GCC -O2 otherwise keeps e.g. Q6_K's segment loop and builds masks at run time). */
#if defined(__clang__)
#define AVX2_UNROLL _Pragma("unroll")
#else
#define AVX2_UNROLL _Pragma("GCC unroll 8")
#endif

AVX2_INLINE float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_INLINE float load_fp16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

AVX2_INLINE float load_f32(const uint8_t *p) {
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

AVX2_INLINE __m256i load32(const uint8_t *p) {
    return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

AVX2_INLINE __m128i load16(const uint8_t *p) {
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}

/* The 32 codes of the shared nibble layout (q_common.h): byte j of qs holds element j (low
 * nibble) and element j+16 (high nibble), so lane 0 gets the low nibbles, lane 1 the high. */
AVX2_INLINE __m256i nibbles32(const uint8_t *qs) {
    const __m128i b = load16(qs);
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
}

/* Pairwise products of signed int8 x and y, as maddubs (unsigned x signed) needs them: |x|
 * as the unsigned operand and y with x's sign moved onto it. Exact while y != -128 (its negation
 * wraps), which holds for activations (simd.h). */
AVX2_INLINE __m256i sign_pairs(__m256i x, __m256i y) {
    return _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}
AVX2_INLINE __m256i dot_s8s8(__m256i x, __m256i y) {
    return _mm256_madd_epi16(sign_pairs(x, y), _mm256_set1_epi16(1));
}

/* ---- float dot products ------------------------------------------------------------------- */

typedef __m256 (*load8_fn)(const uint8_t *p);
typedef float (*load1_fn)(const uint8_t *p);

AVX2_INLINE __m256 load8_f32(const uint8_t *p) {
    return _mm256_loadu_ps((const float *)(const void *)p);
}
AVX2_INLINE __m256 load8_f16(const uint8_t *p) {
    return _mm256_cvtph_ps(load16(p));
}
AVX2_INLINE __m256 load8_bf16(const uint8_t *p) {
    const __m256i w = _mm256_cvtepu16_epi32(load16(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)); /* bf16 is the top half of an f32 */
}
AVX2_INLINE float load1_f32(const uint8_t *p) {
    return load_f32(p);
}
AVX2_INLINE float load1_f16(const uint8_t *p) {
    return load_fp16(p);
}
AVX2_INLINE float load1_bf16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return imp_bf16_to_f32(h);
}

/* es: bytes per element. Four accumulators hide the FMA latency; the tail (n % 8 elements, as
 * float rows have any length) is scalar. */
AVX2_INLINE float float_dot(int64_t n, const uint8_t *x, const uint8_t *y, size_t es,
                            load8_fn load8, load1_fn load1) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const size_t o = (size_t)i * es;
        acc0 = _mm256_fmadd_ps(load8(x + o), load8(y + o), acc0);
        acc1 = _mm256_fmadd_ps(load8(x + o + 8 * es), load8(y + o + 8 * es), acc1);
        acc2 = _mm256_fmadd_ps(load8(x + o + 16 * es), load8(y + o + 16 * es), acc2);
        acc3 = _mm256_fmadd_ps(load8(x + o + 24 * es), load8(y + o + 24 * es), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(load8(x + i * es), load8(y + i * es), acc0);
    float tail = 0.0f;
    for (; i < n; i++) tail += load1(x + i * es) * load1(y + i * es);
    return hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3))) + tail;
}

static void vec_dot_f32(int64_t n, float *s, const void *x, const void *y) {
    *s = float_dot(n, x, y, 4, load8_f32, load1_f32);
}
static void axpy_f32(int64_t n, float a, const float *x, float *y) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) y[i] += a * x[i];
}

static void vec_dot_f16(int64_t n, float *s, const void *x, const void *y) {
    *s = float_dot(n, x, y, 2, load8_f16, load1_f16);
}
/* BF16 takes 16 elements per load: a bf16 is the top half of an f32, so shifting each 32-bit
 * lane left by 16 gives the even elements as floats and masking off the low half the odd ones.
 * x and y split the same way, so pairing even with even and odd with odd is still the dot
 * product; it avoids the lane-crossing widening of load8_bf16 (measured ~1.35x faster). */
static void vec_dot_bf16(int64_t n, float *s, const void *vx, const void *vy) {
    const uint8_t *x = vx, *y = vy;
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i x0 = load32(x + 2 * i), y0 = load32(y + 2 * i);
        const __m256i x1 = load32(x + 2 * i + 32), y1 = load32(y + 2 * i + 32);
        acc0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(x0, 16)),
                               _mm256_castsi256_ps(_mm256_slli_epi32(y0, 16)), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(x0, hi)),
                               _mm256_castsi256_ps(_mm256_and_si256(y0, hi)), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(x1, 16)),
                               _mm256_castsi256_ps(_mm256_slli_epi32(y1, 16)), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(x1, hi)),
                               _mm256_castsi256_ps(_mm256_and_si256(y1, hi)), acc3);
    }
    /* the rest (< 32 elements) by the generic loop, which handles any tail */
    const float rest =
        i < n ? float_dot(n - i, x + 2 * i, y + 2 * i, 2, load8_bf16, load1_bf16) : 0.0f;
    *s = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3))) + rest;
}

/* ---- float activation rows ---------------------------------------------------------------- */

static void from_float_f32(const float *x, void *y, int64_t n) {
    if (n > 0) memcpy(y, x, (size_t)n * sizeof(float));
}

/* F16C rounds to nearest even and handles subnormals and overflow exactly like
 * imp_f32_to_fp16; only NaN payloads differ (it keeps the top mantissa bits, the reference
 * writes a canonical quiet NaN), so NaN lanes, rare, are redone in scalar. */
static void from_float_f16(const float *x, void *vy, int64_t n) {
    uint8_t *y = vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        _mm_storeu_si128((__m128i *)(void *)(y + 2 * i),
                         _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
        const int nan = _mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        for (int j = 0; nan && j < 8; j++) {
            if (!((nan >> j) & 1)) continue;
            const imp_fp16 h = imp_f32_to_fp16(x[i + j]);
            memcpy(y + 2 * (i + j), &h, sizeof h);
        }
    }
    for (; i < n; i++) {
        const imp_fp16 h = imp_f32_to_fp16(x[i]);
        memcpy(y + 2 * i, &h, sizeof h);
    }
}

/* imp_f32_to_bf16 on 8 lanes, in integer arithmetic: add 0x7fff plus the lowest kept bit (ties
 * to even) and keep the top half; NaNs (|bits| above infinity's) keep their top half with the
 * quiet bit set. */
AVX2_INLINE __m128i bf16_from_f32x8(__m256 v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i bias = _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff));
    const __m256i rne = _mm256_srli_epi32(_mm256_add_epi32(u, bias), 16);
    const __m256i absu = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    const __m256i is_nan = _mm256_cmpgt_epi32(absu, _mm256_set1_epi32(0x7f800000));
    const __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
    const __m256i r = _mm256_blendv_epi8(rne, qnan, is_nan);
    return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}

static void from_float_bf16(const float *x, void *vy, int64_t n) {
    uint8_t *y = vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(y + 2 * i), bf16_from_f32x8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) {
        const imp_bf16 h = imp_f32_to_bf16(x[i]);
        memcpy(y + 2 * i, &h, sizeof h);
    }
}

/* ---- int8 activation rows ----------------------------------------------------------------- */

AVX2_INLINE __m256 abs_ps(__m256 v) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}

/* Largest lane; acc never holds NaN (see the top of the file). */
AVX2_INLINE float hmax_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

AVX2_INLINE int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

/* NaN lanes -> 0, the rest clamped to [lo, hi]: the references' treatment before rounding. */
AVX2_INLINE __m256 clamp_nan0(__m256 v, float lo, float hi) {
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    return _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(lo)), _mm256_set1_ps(hi));
}

/* roundf: half away from zero. v - trunc(v) is exact for every float, so comparing its
 * magnitude with 0.5 decides the rounding without a second rounding error. */
AVX2_INLINE __m256 round_half_away(__m256 v) {
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 up = _mm256_cmp_ps(abs_ps(_mm256_sub_ps(v, t)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 one = _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_and_ps(up, one));
}

/* Four vectors of 8 int32 (elements 0-31 in order) -> 32 int8 in order. The packs work within
 * 128-bit lanes, leaving 4-byte groups in the order 0,2,4,6,1,3,5,7; the permute undoes that. */
AVX2_INLINE __m256i pack_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i abcd = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* imp_f32_to_fp16(v): F16C's round-to-nearest-even conversion agrees with it except for NaN
 * payloads, so NaN (here only inf * 0 in Q8_1's s) takes the scalar path. */
AVX2_INLINE imp_fp16 fp16_of(float v) {
    return v == v ? (imp_fp16)_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT) : imp_f32_to_fp16(v);
}

/* One Q8_0 / Q8_1 block (q_legacy.c's leg_quantize_q8_ref): d = amax/127, q = roundf(x * id)
 * clamped to +-127. Stores d (fp16) and the codes; returns sum(q) for Q8_1's s, and d (before
 * its fp16 rounding, as the reference multiplies that one). */
AVX2_INLINE int q8_0_block(const float *x, uint8_t *d_out, uint8_t *qs, float *d_ret) {
    __m256 v[4], amax = _mm256_setzero_ps();
    AVX2_UNROLL
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        amax = _mm256_max_ps(abs_ps(v[k]), amax);
    }
    const float d = hmax_ps(amax) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const imp_fp16 dh = fp16_of(d);
    memcpy(d_out, &dh, sizeof dh);
    __m256i q[4];
    AVX2_UNROLL
    for (int k = 0; k < 4; k++) {
        const __m256 w = clamp_nan0(_mm256_mul_ps(v[k], _mm256_set1_ps(id)), -127.0f, 127.0f);
        q[k] = _mm256_cvttps_epi32(round_half_away(w));
    }
    _mm256_storeu_si256((__m256i *)(void *)qs, pack_i8(q[0], q[1], q[2], q[3]));
    *d_ret = d;
    return hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
}

static void from_float_q8_0(const float *x, void *vy, int64_t n) {
    uint8_t *b = vy;
    for (int64_t i = 0; i < n / IMP_QK8_0; i++, b += sizeof(imp_block_q8_0)) {
        float d;
        (void)q8_0_block(x + i * IMP_QK8_0, b + offsetof(imp_block_q8_0, d),
                         b + offsetof(imp_block_q8_0, qs), &d);
    }
}

static void from_float_q8_1(const float *x, void *vy, int64_t n) {
    uint8_t *b = vy;
    for (int64_t i = 0; i < n / IMP_QK8_1; i++, b += sizeof(imp_block_q8_1)) {
        float d;
        const int sum = q8_0_block(x + i * IMP_QK8_1, b + offsetof(imp_block_q8_1, d),
                                   b + offsetof(imp_block_q8_1, qs), &d);
        const imp_fp16 s = fp16_of((float)sum * d);
        memcpy(b + offsetof(imp_block_q8_1, s), &s, sizeof s);
    }
}

/* The 16 sums of 16 int8 of a Q8_K block, from s4[c]: for 32-element chunk c, 8 int32 sums of 4
 * consecutive codes. Two hadds give, per 4 chunks, [lo(c0..c3) | hi(c0..c3)] (lo, hi: the
 * chunk's first and second 16); the permute interleaves them into element order. */
AVX2_INLINE __m256i q8_K_sums16(const __m256i s4[4]) {
    const __m256i h =
        _mm256_hadd_epi32(_mm256_hadd_epi32(s4[0], s4[1]), _mm256_hadd_epi32(s4[2], s4[3]));
    return _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* Q8_K (q_kquants.c's kq_quantize_q8_K_row): iscale = -127/max, with max the first element of
 * largest magnitude; q = nearest-even(iscale * x) clamped to int8; d = 1/iscale. */
static void from_float_q8_K(const float *src, void *vy, int64_t n) {
    uint8_t *b = vy;
    for (int64_t ib = 0; ib < n / IMP_QK_K; ib++, b += sizeof(imp_block_q8_K)) {
        const float *x = src + ib * IMP_QK_K;
        __m256 amax_v = _mm256_setzero_ps();
        for (int k = 0; k < IMP_QK_K / 8; k++)
            amax_v = _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + 8 * k)), amax_v);
        const float amax = hmax_ps(amax_v);
        if (!(amax > 0.0f)) {
            memset(b, 0, sizeof(imp_block_q8_K));
            continue;
        }
        /* the sign matters, so find the first element that reaches amax */
        float max = amax;
        for (int k = 0; k < IMP_QK_K / 8; k++) {
            const __m256 hit =
                _mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + 8 * k)), _mm256_set1_ps(amax), _CMP_EQ_OQ);
            const int m = _mm256_movemask_ps(hit);
            if (m) {
                max = x[8 * k + __builtin_ctz((unsigned)m)];
                break;
            }
        }
        const float iscale = -127.f / max;
        const __m256 is = _mm256_set1_ps(iscale);
        uint8_t *qs = b + offsetof(imp_block_q8_K, qs);
        __m256i s4[8];
        AVX2_UNROLL
        for (int c = 0; c < IMP_QK_K / 32; c++) {
            __m256i q[4];
            AVX2_UNROLL
            for (int k = 0; k < 4; k++) {
                const __m256 w = clamp_nan0(_mm256_mul_ps(is, _mm256_loadu_ps(x + 32 * c + 8 * k)),
                                            -128.f, 127.f);
                q[k] = _mm256_cvtps_epi32(
                    _mm256_round_ps(w, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            }
            const __m256i q8 = pack_i8(q[0], q[1], q[2], q[3]);
            _mm256_storeu_si256((__m256i *)(void *)(qs + 32 * c), q8);
            s4[c] = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q8),
                                      _mm256_set1_epi16(1));
        }
        /* |sum of 16| <= 2048: packing to int16 is exact; packs interleave 128-bit lanes */
        const __m256i sums = _mm256_packs_epi32(q8_K_sums16(s4), q8_K_sums16(s4 + 4));
        _mm256_storeu_si256((__m256i *)(void *)(b + offsetof(imp_block_q8_K, bsums)),
                            _mm256_permute4x64_epi64(sums, 0xd8));
        const float d = 1 / iscale;
        memcpy(b + offsetof(imp_block_q8_K, d), &d, sizeof d);
    }
}

/* ---- legacy formats ------------------------------------------------------------------------
 *
 * Dot products of the 32-element block formats with int8 activations: Q4_0, Q5_0, Q8_0 and
 * IQ4_NL (with Q8_0), Q4_1 and Q5_1 (with Q8_1), Q8_1 (with itself). The references are
 * q_legacy.c's leg_vec_dot and q_iq4.c's imp_vec_dot_iq4_nl.
 *
 * Each format only differs in how a block decodes to 32 int8 weight codes, so a decoder per
 * format feeds one driver:
 *   - unsigned codes (the 4- and 5-bit formats) go straight into maddubs against y; the
 *     symmetric ones (Q4_0: value q-8, Q5_0: q-16) subtract zero * (y pair sums), a second
 *     maddubs, in int16 (no saturation: 31*128*2 + 16*128*2 < 32768). Measured, that is ~15%
 *     faster than making the values signed and using the sign trick;
 *   - signed values (Q8_0, Q8_1, IQ4_NL's code book) dot through the sign trick (|x| times y
 *     with x's sign, see the helpers);
 *   - the int32 lane sums of a block are scaled by dx*dy with one FMA into an 8-lane float
 *     accumulator; two accumulators (even and odd blocks) hide the FMA latency.
 * The min of Q4_1 / Q5_1 contributes m_x * s_y per block, s_y = d_y * sum(y) stored by Q8_1.
 */
#define QK 32

typedef __m256i (*leg_decode_fn)(const uint8_t *block);

/* The 32 bits of Q5's qh as 32 bytes, 0xff where the bit is set: byte j copies byte j/8 of qh
 * (a shuffle within each 128-bit lane, which both hold all 4 bytes), then tests bit j%8. */
AVX2_INLINE __m256i bits_to_bytes(const uint8_t *qh) {
    uint32_t bits;
    memcpy(&bits, qh, sizeof bits);
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int)bits),
        _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL, 0x0101010101010101LL, 0));
    const __m256i select = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select);
}

AVX2_INLINE __m256i dec_q4_0(const uint8_t *b) {
    return nibbles32(b + offsetof(imp_block_q4_0, qs));
}
AVX2_INLINE __m256i dec_q4_1(const uint8_t *b) {
    return nibbles32(b + offsetof(imp_block_q4_1, qs));
}
/* The 5-bit codes: the nibbles plus 16 where qh has the element's bit. */
AVX2_INLINE __m256i codes5(const uint8_t *qs, const uint8_t *qh) {
    return _mm256_or_si256(nibbles32(qs),
                           _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(16)));
}
AVX2_INLINE __m256i dec_q5_0(const uint8_t *b) {
    return codes5(b + offsetof(imp_block_q5_0, qs), b + offsetof(imp_block_q5_0, qh));
}
AVX2_INLINE __m256i dec_q5_1(const uint8_t *b) {
    return codes5(b + offsetof(imp_block_q5_1, qs), b + offsetof(imp_block_q5_1, qh));
}
AVX2_INLINE __m256i dec_q8_0(const uint8_t *b) {
    return load32(b + offsetof(imp_block_q8_0, qs));
}
AVX2_INLINE __m256i dec_q8_1(const uint8_t *b) {
    return load32(b + offsetof(imp_block_q8_1, qs));
}
/* The 16-entry code book looked up by pshufb, which indexes within each 128-bit lane. */
AVX2_INLINE __m256i dec_iq4_nl(const uint8_t *b) {
    const __m256i book = _mm256_broadcastsi128_si256(load16((const uint8_t *)imp_iq4nl_values));
    return _mm256_shuffle_epi8(book, nibbles32(b + offsetof(imp_block_iq4_nl, qs)));
}

/* The block's scales in one conversion: the first 4 bytes of x (fp16 d, then m for the formats
 * with a min, else two code bytes) and of y (fp16 d, then Q8_1's s or two codes) as
 * [dx, mx, dy, sy] floats, multiplied by [dy, sy, ...]: lane 0 = dx*dy, lane 1 = mx*sy (junk
 * for the formats without a min, never read), lanes 2-3 junk. */
AVX2_INLINE __m128 leg_scales(const uint8_t *x, const uint8_t *y) {
    uint32_t xs, ys;
    memcpy(&xs, x, sizeof xs);
    memcpy(&ys, y, sizeof ys);
    const __m128 f = _mm_cvtph_ps(_mm_insert_epi32(_mm_cvtsi32_si128((int)xs), (int)ys, 1));
    return _mm_mul_ps(f, _mm_movehl_ps(f, f));
}

/* The codes a decoder returns: signed values, or unsigned codes whose value is code - zero. */
typedef struct leg_codes {
    bool is_signed;
    int zero; /* 8 (Q4_0), 16 (Q5_0), else 0 */
} leg_codes;

/* acc + dx*dy * (8 int32 partial sums of one block's integer dot); *ms += mx*sy in lane 1. */
/* One block with its codes v already decoded from x (x still supplies the scales). */
AVX2_INLINE __m256 leg_block_v(__m256i v, const uint8_t *x, const uint8_t *y, leg_codes c, size_t y_qs, __m256 acc,
                               __m128 *ms) {
    const __m256i yq = load32(y + y_qs);
    __m256i sumi;
    if (c.is_signed) {
        sumi = dot_s8s8(v, yq);
    } else {
        __m256i pairs = _mm256_maddubs_epi16(v, yq);
        if (c.zero)
            pairs =
                _mm256_sub_epi16(pairs, _mm256_maddubs_epi16(_mm256_set1_epi8((char)c.zero), yq));
        sumi = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
    }
    const __m128 sc = leg_scales(x, y);
    *ms = _mm_add_ps(*ms, sc);
    return _mm256_fmadd_ps(_mm256_broadcastss_ps(sc), _mm256_cvtepi32_ps(sumi), acc);
}

AVX2_INLINE __m256 leg_block(const uint8_t *x, const uint8_t *y, leg_decode_fn dec, leg_codes c,
                             size_t y_qs, __m256 acc, __m128 *ms) {
    return leg_block_v(dec(x), x, y, c, y_qs, acc, ms);
}

/* has_min: x has its fp16 m at offset 2 and y (Q8_1) its fp16 s at offset 2, the layout
 * leg_scales reads. */
AVX2_INLINE float leg_dot(int64_t n, const uint8_t *x, const uint8_t *y, leg_decode_fn dec,
                          leg_codes c, bool has_min, size_t xsize, size_t ysize, size_t y_qs) {
    const int64_t nb = n / QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    __m128 ms0 = _mm_setzero_ps(), ms1 = ms0;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2, x += 2 * xsize, y += 2 * ysize) {
        acc0 = leg_block(x, y, dec, c, y_qs, acc0, &ms0);
        acc1 = leg_block(x + xsize, y + ysize, dec, c, y_qs, acc1, &ms1);
    }
    if (i < nb) acc0 = leg_block(x, y, dec, c, y_qs, acc0, &ms0);
    float sum = hsum_ps(_mm256_add_ps(acc0, acc1));
    if (has_min) sum += _mm_cvtss_f32(_mm_movehdup_ps(_mm_add_ps(ms0, ms1)));
    return sum;
}

/* Four activation rows against one weight row: each weight block is decoded once and used for
 * all four. Row r's arithmetic is leg_dot's exactly (same blocks into the same accumulators in
 * the same order, same final sums), so the four results are bit-identical to four leg_dot
 * calls; only the decoding is shared. */
AVX2_INLINE void leg_dot4(int64_t n, float *s, const uint8_t *x, const uint8_t *y, size_t ystride,
                          leg_decode_fn dec, leg_codes c, bool has_min, size_t xsize, size_t ysize,
                          size_t y_qs) {
    const int64_t nb = n / QK;
    __m256 acc0[4], acc1[4];
    __m128 ms0[4], ms1[4];
    for (int r = 0; r < 4; r++) {
        acc0[r] = acc1[r] = _mm256_setzero_ps();
        ms0[r] = ms1[r] = _mm_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2, x += 2 * xsize, y += 2 * ysize) {
        const __m256i v0 = dec(x), v1 = dec(x + xsize);
        for (int r = 0; r < 4; r++) {
            const uint8_t *yr = y + (size_t)r * ystride;
            acc0[r] = leg_block_v(v0, x, yr, c, y_qs, acc0[r], &ms0[r]);
            acc1[r] = leg_block_v(v1, x + xsize, yr + ysize, c, y_qs, acc1[r], &ms1[r]);
        }
    }
    if (i < nb) {
        const __m256i v0 = dec(x);
        for (int r = 0; r < 4; r++) acc0[r] = leg_block_v(v0, x, y + (size_t)r * ystride, c, y_qs, acc0[r], &ms0[r]);
    }
    for (int r = 0; r < 4; r++) {
        float sum = hsum_ps(_mm256_add_ps(acc0[r], acc1[r]));
        if (has_min) sum += _mm_cvtss_f32(_mm_movehdup_ps(_mm_add_ps(ms0[r], ms1[r])));
        s[r] = sum;
    }
}

#define Y0 sizeof(imp_block_q8_0), offsetof(imp_block_q8_0, qs) /* Q8_0 activations */
#define Y1 sizeof(imp_block_q8_1), offsetof(imp_block_q8_1, qs) /* Q8_1 activations */

static const leg_codes k_signed = {true, 0}, k_unsigned = {false, 0};
static const leg_codes k_zero8 = {false, 8}, k_zero16 = {false, 16};

static void vec_dot_q4_0(int64_t n, float *s, const void *x, const void *y) {
    *s = leg_dot(n, x, y, dec_q4_0, k_zero8, false, sizeof(imp_block_q4_0), Y0);
}
static void vec_dot_q4_1(int64_t n, float *s, const void *x, const void *y) {
    *s = leg_dot(n, x, y, dec_q4_1, k_unsigned, true, sizeof(imp_block_q4_1), Y1);
}
static void vec_dot_q5_0(int64_t n, float *s, const void *x, const void *y) {
    *s = leg_dot(n, x, y, dec_q5_0, k_zero16, false, sizeof(imp_block_q5_0), Y0);
}
static void vec_dot_q5_1(int64_t n, float *s, const void *x, const void *y) {
    *s = leg_dot(n, x, y, dec_q5_1, k_unsigned, true, sizeof(imp_block_q5_1), Y1);
}
static void vec_dot_q8_0(int64_t n, float *s, const void *x, const void *y) {
    *s = leg_dot(n, x, y, dec_q8_0, k_signed, false, sizeof(imp_block_q8_0), Y0);
}
static void vec_dot_q8_1(int64_t n, float *s, const void *x, const void *y) {
    *s = leg_dot(n, x, y, dec_q8_1, k_signed, false, sizeof(imp_block_q8_1), Y1);
}
static void vec_dot_iq4_nl(int64_t n, float *s, const void *x, const void *y) {
    *s = leg_dot(n, x, y, dec_iq4_nl, k_signed, false, sizeof(imp_block_iq4_nl), Y0);
}

#define DOT4(name, dec, codes, min, blk, Y)                                                       \
    static void vec_dot4_##name(int64_t n, float *s, const void *x, const void *y, size_t ys) { \
        leg_dot4(n, s, x, y, ys, dec, codes, min, sizeof(blk), Y);                              \
    }
DOT4(q4_0, dec_q4_0, k_zero8, false, imp_block_q4_0, Y0)
DOT4(q5_0, dec_q5_0, k_zero16, false, imp_block_q5_0, Y0)
DOT4(q8_0, dec_q8_0, k_signed, false, imp_block_q8_0, Y0)
DOT4(iq4_nl, dec_iq4_nl, k_signed, false, imp_block_iq4_nl, Y0)
#undef DOT4

/* ---- K-quants -----------------------------------------------------------------------------
 *
 * Dot products of the 256-element super-block formats with Q8_K activations: Q2_K, Q3_K,
 * Q4_K, Q5_K, Q6_K, Q8_K and IQ4_XS. The references are q_kquants.c's kq_vec_dot_row and
 * q_iq4.c's imp_vec_dot_iq4_xs; layouts are described there and in quant_blocks.h.
 *
 * Per super-block everything is integer and exact until one float FMA:
 *   - weight codes are unpacked as unsigned bytes (Q2_K 0..3, Q3_K 0..7, Q4_K 0..15, Q5_K 0..31,
 *     Q6_K 0..63) and multiplied with the int8 activations by maddubs into int16 pairs, which
 *     cannot saturate (63 * 128 * 2 < 32768);
 *   - madd with the group scales (broadcast as int16) widens to int32 lane sums;
 *   - the symmetric formats store value = code - offset (Q3_K 4, Q6_K 32); the offset's share,
 *     offset * sum_g scale[g] * sum(y in g), comes from Q8_K's per-16 sums (bsums), as do the
 *     mins of the affine formats (min[g] * sum(y in g)), so no activation is read twice;
 *   - the int32 lanes are scaled by d * d_y (and the mins by dmin * d_y) into 8-lane float
 *     accumulators, summed across lanes once per row.
 * Bounds: per super-block |sum| <= 256 * 127 * 63 * 128 < 2^31 (q_kquants.c), so int32 lanes
 * never overflow.
 */
#define Y_QS    offsetof(imp_block_q8_K, qs)
#define Y_BSUMS offsetof(imp_block_q8_K, bsums)

/* Word j of each 128-bit lane of v, in all 8 words of that lane. */
AVX2_INLINE __m256i bcast_word(__m256i v, int j) {
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)(0x0100 + 0x0202 * j)));
}

/* For the formats with 16 groups of 16: the int16 multipliers of 32-element segment t, i.e.
 * scale[2t] in the low lane (its first 16 elements) and scale[2t+1] in the high lane. sc8: the
 * 16 scales as int8. */
AVX2_INLINE __m256i scale_pair(__m128i sc8, int t) {
    const long long one = 0x0101010101010101LL;
    const __m128i pick = _mm_set_epi64x(one * (2 * t + 1), one * (2 * t));
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, pick));
}

/* codes (32 bytes, unsigned) . y, weighted per 16 by the segment's scale pair: 8 int32. */
AVX2_INLINE __m256i seg_dot(__m256i codes, const uint8_t *y, __m256i scales) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(codes, load32(y)), scales);
}

/* sum_j bsums[j] * w16[j] over the 16 groups of 16, as 8 int32 lanes. */
AVX2_INLINE __m256i bsums_dot(const uint8_t *yb, __m256i w16) {
    return _mm256_madd_epi16(load32(yb + Y_BSUMS), w16);
}

AVX2_INLINE __m256i mask8(int v) {
    return _mm256_set1_epi8((char)v);
}

/* ---- Q2_K: codes 0..3, 4-bit scale and min per 16 ----------------------------------------- */

static void vec_dot_q2_K(int64_t n, float *s, const void *vx, const void *vy) {
    const uint8_t *x = vx, *y = vy;
    __m256 acc = _mm256_setzero_ps(), accm = acc;
    for (int64_t ib = 0; ib < n / IMP_QK_K;
         ib++, x += sizeof(imp_block_q2_K), y += sizeof(imp_block_q8_K)) {
        const float dy = load_f32(y);
        const float d = load_fp16(x + offsetof(imp_block_q2_K, d)) * dy;
        const float dmin = load_fp16(x + offsetof(imp_block_q2_K, dmin)) * dy;
        const __m128i raw = load16(x + offsetof(imp_block_q2_K, scales));
        const __m128i sc8 = _mm_and_si128(raw, _mm_set1_epi8(0x0f));
        const __m128i mn8 = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0f));
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin),
                               _mm256_cvtepi32_ps(bsums_dot(y, _mm256_cvtepu8_epi16(mn8))), accm);
        __m256i sumi = _mm256_setzero_si256();
        AVX2_UNROLL
        for (int h = 0; h < 2; h++) {
            /* weight 128h + 32s + l: bits 2s..2s+1 of qs[32h + l] */
            __m256i q = load32(x + offsetof(imp_block_q2_K, qs) + 32 * h);
            AVX2_UNROLL
            for (int sg = 0; sg < 4; sg++, q = _mm256_srli_epi16(q, 2)) {
                const int t = 4 * h + sg;
                sumi = _mm256_add_epi32(sumi, seg_dot(_mm256_and_si256(q, mask8(3)),
                                                      y + Y_QS + 32 * t, scale_pair(sc8, t)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(_mm256_sub_ps(acc, accm));
}

/* ---- Q3_K: codes 0..7 = 2 low bits + hmask bit, value code - 4, signed 6-bit scales -------- */

/* The 16 scales, unpacked 4 at a time from the three words of the 12-byte field (layout:
 * q_kquants_scales.h): low nibbles from a (scales 0-3, 8-11) and b (4-7, 12-15), the high 2
 * bits from c, 2 bits per scale, moved to bits 4-5 of each byte. */
AVX2_INLINE __m128i q3_scales(const uint8_t *p) {
    uint32_t a, b, c;
    memcpy(&a, p, 4);
    memcpy(&b, p + 4, 4);
    memcpy(&c, p + 8, 4);
    const uint32_t lo4 = 0x0f0f0f0f, hi2 = 0x30303030;
    const uint32_t w[4] = {(a & lo4) | ((c << 4) & hi2), (b & lo4) | ((c << 2) & hi2),
                           ((a >> 4) & lo4) | (c & hi2), ((b >> 4) & lo4) | ((c >> 2) & hi2)};
    return _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(const void *)w), _mm_set1_epi8(32));
}

static void vec_dot_q3_K(int64_t n, float *s, const void *vx, const void *vy) {
    const uint8_t *x = vx, *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / IMP_QK_K;
         ib++, x += sizeof(imp_block_q3_K), y += sizeof(imp_block_q8_K)) {
        const float d = load_fp16(x + offsetof(imp_block_q3_K, d)) * load_f32(y);
        const __m128i sc8 = q3_scales(x + offsetof(imp_block_q3_K, scales));
        /* weight 128h + 32s + l: 2 bits at 2s of qs[32h + l], 3rd bit at 4h+s of hmask[l] */
        __m256i hb = load32(x + offsetof(imp_block_q3_K, hmask));
        __m256i sumi = _mm256_setzero_si256();
        AVX2_UNROLL
        for (int h = 0; h < 2; h++) {
            __m256i q = load32(x + offsetof(imp_block_q3_K, qs) + 32 * h);
            AVX2_UNROLL
            for (int sg = 0; sg < 4; sg++) {
                const int t = 4 * h + sg;
                const __m256i codes =
                    _mm256_or_si256(_mm256_and_si256(q, mask8(3)),
                                    _mm256_slli_epi16(_mm256_and_si256(hb, mask8(1)), 2));
                sumi =
                    _mm256_add_epi32(sumi, seg_dot(codes, y + Y_QS + 32 * t, scale_pair(sc8, t)));
                q = _mm256_srli_epi16(q, 2);
                hb = _mm256_srli_epi16(hb, 1);
            }
        }
        const __m256i off = bsums_dot(y, _mm256_cvtepi8_epi16(sc8)); /* times 4 below */
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(off, 2));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

/* ---- Q4_K and Q5_K: 4 (+1) bit codes, 6-bit scale and min per 32 -------------------------- */

/* Q4_K and Q5_K share the header (d, dmin, 12 bytes of scales and mins) and the nibble layout;
 * Q5_K adds a bit plane qh. off_qh: 0 for Q4_K. */
AVX2_INLINE float k4_dot(int64_t n, const uint8_t *x, const uint8_t *y, size_t xsize, size_t off_qh,
                         size_t off_qs) {
    __m256 acc = _mm256_setzero_ps(), accm = acc;
    for (int64_t ib = 0; ib < n / IMP_QK_K; ib++, x += xsize, y += sizeof(imp_block_q8_K)) {
        const float dy = load_f32(y);
        const float d = load_fp16(x) * dy, dmin = load_fp16(x + 2) * dy;
        /* 8 scales then 8 mins as bytes (the k4 layout of q_kquants_scales.h, 4 at a time):
         * scales 0-3 / mins 0-3 are the low 6 bits of words a / b; 4-7 take their low nibble
         * from word c and their top 2 bits from the top of a / b. */
        uint32_t a, b, c;
        memcpy(&a, x + 4, 4);
        memcpy(&b, x + 8, 4);
        memcpy(&c, x + 12, 4);
        const uint32_t w[4] = {a & 0x3f3f3f3f, (c & 0x0f0f0f0f) | ((a >> 2) & 0x30303030),
                               b & 0x3f3f3f3f, ((c >> 4) & 0x0f0f0f0f) | ((b >> 2) & 0x30303030)};
        const __m128i scmn = _mm_loadu_si128((const __m128i *)(const void *)w);
        /* each min covers two 16-sums */
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(scmn, scmn));
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(bsums_dot(y, mins)), accm);
        const __m256i sc16 = _mm256_cvtepu8_epi16(scmn); /* low lane: the 8 scales */
        const __m256i scales = _mm256_permute2x128_si256(sc16, sc16, 0x00);
        __m256i hb = off_qh ? load32(x + off_qh) : _mm256_setzero_si256();
        __m256i sumi = _mm256_setzero_si256();
        AVX2_UNROLL
        for (int k = 0; k < 4; k++) {
            /* weights 64k + l and 64k + 32 + l: low and high nibble of qs[32k + l]; Q5_K's fifth
             * bits: bits 2k and 2k+1 of qh[l] */
            const __m256i q = load32(x + off_qs + 32 * k);
            __m256i lo = _mm256_and_si256(q, mask8(0x0f));
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), mask8(0x0f));
            if (off_qh) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, mask8(1)), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(hb, mask8(2)), 3));
                hb = _mm256_srli_epi16(hb, 2);
            }
            const __m256i p0 = seg_dot(lo, y + Y_QS + 64 * k, bcast_word(scales, 2 * k));
            const __m256i p1 = seg_dot(hi, y + Y_QS + 64 * k + 32, bcast_word(scales, 2 * k + 1));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum_ps(_mm256_sub_ps(acc, accm));
}

static void vec_dot_q4_K(int64_t n, float *s, const void *x, const void *y) {
    *s = k4_dot(n, x, y, sizeof(imp_block_q4_K), 0, offsetof(imp_block_q4_K, qs));
}
static void vec_dot_q5_K(int64_t n, float *s, const void *x, const void *y) {
    *s = k4_dot(n, x, y, sizeof(imp_block_q5_K), offsetof(imp_block_q5_K, qh),
                offsetof(imp_block_q5_K, qs));
}

/* ---- Q6_K: codes 0..63 = 4 low + 2 high bits, value code - 32, int8 scale per 16 ----------- */

static void vec_dot_q6_K(int64_t n, float *s, const void *vx, const void *vy) {
    const uint8_t *x = vx, *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / IMP_QK_K;
         ib++, x += sizeof(imp_block_q6_K), y += sizeof(imp_block_q8_K)) {
        const float d = load_fp16(x + offsetof(imp_block_q6_K, d)) * load_f32(y);
        const __m128i sc8 = load16(x + offsetof(imp_block_q6_K, scales));
        __m256i sumi = _mm256_setzero_si256();
        AVX2_UNROLL
        for (int h = 0; h < 2; h++) {
            /* weight 128h + 32s + l: low nibble in ql[64h + 32(s%2) + l] (high nibble for
             * s >= 2), top 2 bits at 2s of qh[32h + l] */
            const uint8_t *ql = x + offsetof(imp_block_q6_K, ql) + 64 * h;
            const __m256i l0 = load32(ql), l1 = load32(ql + 32);
            const __m256i qh = load32(x + offsetof(imp_block_q6_K, qh) + 32 * h);
            const __m256i nib = mask8(0x0f), top = mask8(0x30);
            __m256i codes[4];
            codes[0] = _mm256_or_si256(_mm256_and_si256(l0, nib),
                                       _mm256_slli_epi16(_mm256_and_si256(qh, mask8(0x03)), 4));
            codes[1] = _mm256_or_si256(_mm256_and_si256(l1, nib),
                                       _mm256_slli_epi16(_mm256_and_si256(qh, mask8(0x0c)), 2));
            codes[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), nib),
                                       _mm256_and_si256(qh, top));
            codes[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), nib),
                                       _mm256_and_si256(_mm256_srli_epi16(qh, 2), top));
            AVX2_UNROLL
            for (int sg = 0; sg < 4; sg++) {
                const int t = 4 * h + sg;
                sumi = _mm256_add_epi32(sumi,
                                        seg_dot(codes[sg], y + Y_QS + 32 * t, scale_pair(sc8, t)));
            }
        }
        const __m256i off = bsums_dot(y, _mm256_cvtepi8_epi16(sc8)); /* times 32 below */
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(off, 5));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

/* ---- Q8_K with itself -------------------------------------------------------------------- */

static void vec_dot_q8_K(int64_t n, float *s, const void *vx, const void *vy) {
    const uint8_t *x = vx, *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / IMP_QK_K;
         ib++, x += sizeof(imp_block_q8_K), y += sizeof(imp_block_q8_K)) {
        __m256i sumi = _mm256_setzero_si256();
        AVX2_UNROLL
        for (int k = 0; k < IMP_QK_K / 32; k++)
            sumi = _mm256_add_epi32(sumi,
                                    dot_s8s8(load32(x + Y_QS + 32 * k), load32(y + Y_QS + 32 * k)));
        const float d = load_f32(x) * load_f32(y);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

/* ---- IQ4_XS: code-book values, signed 6-bit scale per 32 ---------------------------------- */

static void vec_dot_iq4_xs(int64_t n, float *s, const void *vx, const void *vy) {
    const uint8_t *x = vx, *y = vy;
    const __m256i book = _mm256_broadcastsi128_si256(load16((const uint8_t *)imp_iq4nl_values));
    __m256 acc = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / IMP_QK_K;
         ib++, x += sizeof(imp_block_iq4_xs), y += sizeof(imp_block_q8_K)) {
        const float d = load_fp16(x) * load_f32(y);
        uint16_t sh;
        uint32_t sl;
        memcpy(&sh, x + offsetof(imp_block_iq4_xs, scales_h), sizeof sh);
        memcpy(&sl, x + offsetof(imp_block_iq4_xs, scales_l), sizeof sl);
        __m256i sumi = _mm256_setzero_si256();
        AVX2_UNROLL
        for (int j = 0; j < IMP_QK_K / 32; j++) {
            /* sub-block j's scale: nibble j of scales_l, bits 2j..2j+1 of scales_h, minus 32 */
            const int ls = (int)(((sl >> (4 * j)) & 0x0f) | (((sh >> (2 * j)) & 3u) << 4)) - 32;
            const __m256i v =
                _mm256_shuffle_epi8(book, nibbles32(x + offsetof(imp_block_iq4_xs, qs) + 16 * j));
            const __m256i pairs = sign_pairs(v, load32(y + Y_QS + 32 * j));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pairs, _mm256_set1_epi16((short)ls)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

#endif /* __x86_64__ && __AVX2__ */

/* ---- the tables (read by simd.c) ---------------------------------------------------------- */

const imp_vec_dot_fn imp_avx2_vec_dot_table[IMP_TYPE_COUNT] = {
#if defined(__x86_64__) && defined(__AVX2__)
    [IMP_TYPE_F32] = vec_dot_f32,       [IMP_TYPE_F16] = vec_dot_f16,
    [IMP_TYPE_BF16] = vec_dot_bf16,     [IMP_TYPE_Q4_0] = vec_dot_q4_0,
    [IMP_TYPE_Q4_1] = vec_dot_q4_1,     [IMP_TYPE_Q5_0] = vec_dot_q5_0,
    [IMP_TYPE_Q5_1] = vec_dot_q5_1,     [IMP_TYPE_Q8_0] = vec_dot_q8_0,
    [IMP_TYPE_Q8_1] = vec_dot_q8_1,     [IMP_TYPE_Q2_K] = vec_dot_q2_K,
    [IMP_TYPE_Q3_K] = vec_dot_q3_K,     [IMP_TYPE_Q4_K] = vec_dot_q4_K,
    [IMP_TYPE_Q5_K] = vec_dot_q5_K,     [IMP_TYPE_Q6_K] = vec_dot_q6_K,
    [IMP_TYPE_Q8_K] = vec_dot_q8_K,     [IMP_TYPE_IQ4_NL] = vec_dot_iq4_nl,
    [IMP_TYPE_IQ4_XS] = vec_dot_iq4_xs,
#else
    [IMP_TYPE_F32] = NULL,
#endif
};

const imp_from_float_fn imp_avx2_from_float_table[IMP_TYPE_COUNT] = {
#if defined(__x86_64__) && defined(__AVX2__)
    [IMP_TYPE_F32] = from_float_f32,   [IMP_TYPE_F16] = from_float_f16,
    [IMP_TYPE_BF16] = from_float_bf16, [IMP_TYPE_Q8_0] = from_float_q8_0,
    [IMP_TYPE_Q8_1] = from_float_q8_1, [IMP_TYPE_Q8_K] = from_float_q8_K,
#else
    [IMP_TYPE_F32] = NULL,
#endif
};

#if defined(__x86_64__) && defined(__AVX2__)
const imp_axpy_fn imp_avx2_axpy = axpy_f32;
#else
const imp_axpy_fn imp_avx2_axpy = NULL;
#endif

const imp_vec_dot4_fn imp_avx2_vec_dot4_table[IMP_TYPE_COUNT] = {
#if defined(__x86_64__) && defined(__AVX2__)
    /* Q4_1 and Q5_1 keep the single-row kernel: with their min sums the four rows' state
     * spills out of the 16 registers and the shared decoding no longer pays (0.9x measured) */
    [IMP_TYPE_Q4_0] = vec_dot4_q4_0, [IMP_TYPE_Q5_0] = vec_dot4_q5_0, [IMP_TYPE_Q8_0] = vec_dot4_q8_0,
    [IMP_TYPE_IQ4_NL] = vec_dot4_iq4_nl,
#else
    [IMP_TYPE_F32] = NULL,
#endif
};
