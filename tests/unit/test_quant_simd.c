/*
 * The SIMD fast paths (quant/simd.h) against the reference kernels of the type table, for every
 * computable type (the table drives the loop, so a type that becomes computable is covered):
 *
 *   dispatch     imp_vec_dot_fast / imp_from_float_fast return the AVX2 kernel when the CPU has
 *                AVX2+FMA+F16C, else the reference; NULL exactly where the table has no vec_dot
 *                or the type is no activation type; an x86-64 build provides an AVX2 kernel for
 *                every computable type and every activation type
 *   from_float   the fast activation quantizers (F32, F16, BF16, Q8_0, Q8_1, Q8_K) write the
 *                reference's bytes exactly: on N(0,1) rows of every test length, on the awkward
 *                rows of quant_testdata.h (rounding ties, duplicates of opposite sign, zeros,
 *                subnormal scales), on rows of random float bits (NaN payloads, infinities,
 *                subnormals) and on hand-made special values; also into a misaligned buffer
 *   vec_dot      weight rows quantized by the reference from N(0,1) data (and, for quantized
 *                types, random blocks: every code pattern, scales from 2^-20 to 2^4), dotted with
 *                the same reference-quantized activations, for lengths of 1, 2, 3, 7, 16 blocks
 *                and 2048, 5632 elements (plus odd lengths for the float types, whose kernels
 *                have a tail): (a) fast vs reference within 1e-5 of sum |w_i x_i| (dequantized
 *                values), the integer sums being exact and only the float order different;
 *                (b) fast vs the double dot of the dequantized rows within the same bound
 *                (plus, for Q4_1 / Q5_1, the fp16 rounding of Q8_1's s = d*sum(q), which the
 *                kernels use and the dequantized activations do not: see min_allowance);
 *                (c) the same result, bit for bit, from rows at odd addresses
 *
 * Without AVX2 on this CPU the test says so and checks that dispatch returns the references (the
 * comparisons then run reference against reference, which still checks the harness).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"
#include "quant/quant_blocks.h"
#include "quant/simd.h"
#include "quant_testdata.h"
#include "testutil.h"

#define DOT_TOL 1e-5
#define MAX_N   5632

/* The row lengths tested for block size bs: 1, 2, 3, 7, 16 blocks; 2048 and 5632 elements (a
 * K-quant row and an FFN width); for the float types also 37 and 4099, whose kernels have a
 * main loop and a tail. Returns the count written to len (at most 9). */
static int test_lengths(int64_t bs, int64_t len[9]) {
    static const int64_t k_blocks[] = {1, 2, 3, 7, 16};
    int n = 0;
    for (size_t k = 0; k < sizeof k_blocks / sizeof k_blocks[0]; k++) len[n++] = k_blocks[k] * bs;
    len[n++] = 2048;
    len[n++] = 5632;
    if (bs == 1) {
        len[n++] = 37;
        len[n++] = 4099;
    }
    return n;
}

static bool is_activation_type(uint32_t t) {
    return t == IMP_TYPE_F32 || t == IMP_TYPE_F16 || t == IMP_TYPE_BF16 || t == IMP_TYPE_Q8_0 ||
           t == IMP_TYPE_Q8_1 || t == IMP_TYPE_Q8_K;
}

/* The kernels under test: the AVX2 ones when this CPU runs them, else what dispatch picks. */
static imp_vec_dot_fn fast_dot(uint32_t t, bool avx2) {
    imp_vec_dot_fn f = avx2 ? imp_vec_dot_avx2(t) : NULL;
    return f ? f : imp_vec_dot_fast(t);
}
static imp_from_float_fn fast_from_float(uint32_t t, bool avx2) {
    imp_from_float_fn f = avx2 ? imp_from_float_avx2(t) : NULL;
    return f ? f : imp_from_float_fast(t);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

static void test_dispatch(bool avx2) {
    for (uint32_t t = 0; t < IMP_TYPE_COUNT + 2; t++) {
        const imp_type_traits *tr = imp_type_get(t);
        const imp_vec_dot_fn avx_dot = imp_vec_dot_avx2(t);
        imp_vec_dot_fn want = NULL;
        if (tr && tr->vec_dot) want = avx2 && avx_dot ? avx_dot : tr->vec_dot;
        CHECKF(imp_vec_dot_fast(t) == want, "type %u (%s): vec_dot dispatch", t, imp_type_name(t));
        if (!tr || !tr->vec_dot)
            CHECKF(avx_dot == NULL, "type %u: AVX2 dot without a reference", t);

        const imp_from_float_fn ff = imp_from_float_fast(t), avx_ff = imp_from_float_avx2(t);
        CHECKF((ff != NULL) == is_activation_type(t), "type %u (%s): from_float dispatch", t,
               imp_type_name(t));
        if (!is_activation_type(t)) CHECKF(avx_ff == NULL, "type %u: AVX2 from_float", t);
        if (ff && avx_ff)
            CHECKF((ff == avx_ff) == avx2, "type %u: from_float picks AVX2 iff CPU", t);
#if defined(__x86_64__)
        /* CMake compiles the *_avx2.c files for AVX2 on x86-64: every kernel must be there */
        if (imp_type_is_computable(t)) CHECKF(avx_dot != NULL, "no AVX2 vec_dot for %s", tr->name);
        if (is_activation_type(t)) CHECKF(avx_ff != NULL, "no AVX2 from_float for %s", tr->name);
#endif
    }
    CHECK(imp_vec_dot_fast(UINT32_MAX) == NULL && imp_vec_dot_avx2(UINT32_MAX) == NULL);
    CHECK(imp_from_float_fast(UINT32_MAX) == NULL && imp_from_float_avx2(UINT32_MAX) == NULL);
}

/* ---- from_float --------------------------------------------------------------------------- */

/* Quantizes x (n elements) to activation type vt with the reference and the fast quantizer,
 * the latter also into a buffer one byte off alignment; every byte must match. */
static void check_from_float(uint32_t vt, const float *x, int64_t n, bool avx2, const char *what,
                             uint8_t *ref, uint8_t *fast) {
    const imp_type_traits *tr = imp_type_get(vt);
    const size_t bytes = imp_row_size(vt, n);
    tr->quantize(x, ref, n, NULL);
    memset(fast, 0xa5, bytes + 1);
    fast_from_float(vt, avx2)(x, fast, n);
    size_t diff = 0, first = 0;
    for (size_t i = 0; i < bytes; i++) {
        if (ref[i] != fast[i] && diff++ == 0) first = i;
    }
    CHECKF(diff == 0,
           "%s from_float (%s, n=%lld): %zu bytes differ, first at %zu (block %zu): "
           "ref %02x fast %02x",
           tr->name, what, (long long)n, diff, first, first / tr->type_size, ref[first],
           fast[first]);
    fast_from_float(vt, avx2)(x, fast + 1, n);
    CHECKF(memcmp(ref, fast + 1, bytes) == 0, "%s from_float (%s, n=%lld): misaligned output",
           tr->name, what, (long long)n);
}

/* Values at every edge the quantizers treat specially; each run of `group` elements (32: a
 * Q8_0 block, 256: a Q8_K block) is of one kind: zeros, a NaN, infinities, rounding ties of
 * both rules (d = 1 so x * id lands on .5), scales whose inverse overflows, huge values, signed
 * zeros, the largest magnitude twice with opposite signs, NaN among zeros (amax 0), fp16 and
 * bf16 edges (overflow, subnormals, mantissa ties). */
static void make_specials(float *x, int64_t n, int64_t group, imp_test_rng *r) {
    static const float k_edge[] = {65504.0f,      65519.99f,      65520.0f,       -65520.0f,
                                   5.9604645e-8f, 2.9802322e-8f,  2.98e-8f,       1e-40f,
                                   -1e-45f,       1.00048828125f, 1.00146484375f, 1.00390625f,
                                   1.01171875f,   3.0e38f,        -3.4e38f,       -0.0f};
    for (int64_t i = 0; i < n; i++) {
        const int64_t kind = i / group % 12, j = i % group, jj = j % 32;
        const float g = imp_test_rng_normal(r);
        float v;
        switch (kind) {
        case 0:
            v = 0.0f;
            break;
        case 1:
            v = j == 7 ? NAN : g;
            break;
        case 2:
            v = j == 3 ? INFINITY : g;
            break;
        case 3:
            v = j == 0 ? -INFINITY : j == 9 ? -NAN : g;
            break;
        case 4:
            v = jj == 0 ? 127.0f : (float)(jj - 16) + 0.5f;
            break; /* Q8_0 ties away */
        case 5:
            v = g * 1e-40f;
            break; /* 1/d overflows */
        case 6:
            v = g * 1e37f;
            break;
        case 7:
            v = j % 2 ? -0.0f : 0.0f;
            break;
        case 8:
            v = j == 4 ? -3.0f : j == 20 ? 3.0f : 0.5f * g;
            break; /* first amax: -3 */
        case 9:
            v = j == 0 ? NAN : 0.0f;
            break;
        case 10:
            v = k_edge[j % (int64_t)(sizeof k_edge / sizeof k_edge[0])];
            break;
        default:
            v = jj == 0 ? -127.0f : (float)(16 - jj) + 0.5f;
            break; /* Q8_K ties even */
        }
        x[i] = v;
    }
}

static void test_from_float(bool avx2, imp_test_rng *r) {
    enum { ROWS = 16, COLS = 1024 };
    float *x = malloc(MAX_N * sizeof(float)), *rows = malloc(ROWS * COLS * sizeof(float));
    uint8_t *ref = malloc(MAX_N * 4 + 64), *fast = malloc(MAX_N * 4 + 64);
    if (!x || !rows || !ref || !fast) {
        CHECK(!"allocation");
        goto done;
    }
    make_inputs(rows, ROWS, COLS, r);
    for (uint32_t vt = 0; vt < IMP_TYPE_COUNT; vt++) {
        if (!is_activation_type(vt)) continue;
        const int64_t bs = imp_type_get(vt)->block_size;
        /* N(0,1) at every test length */
        int64_t len[9];
        const int nlen = test_lengths(bs, len);
        for (int k = 0; k < nlen; k++) {
            const int64_t n = len[k];
            for (int64_t i = 0; i < n; i++) x[i] = imp_test_rng_normal(r);
            check_from_float(vt, x, n, avx2, "N(0,1)", ref, fast);
        }
        /* the quantizer test rows: ties, duplicates, zeros, tiny and huge scales */
        for (int row = 0; row < ROWS; row++)
            check_from_float(vt, rows + row * COLS, COLS, avx2, "make_inputs", ref, fast);
        /* random bits: NaN payloads, infinities, subnormals. Q8_0/Q8_1 get their signaling NaNs
         * quieted: the reference finds amax with fmaxf, which glibc makes return NaN for a
         * signaling NaN (IEEE 754-2008), restarting the maximum, while other C libraries and
         * the SIMD max ignore it. Arithmetic never produces a signaling NaN. */
        const bool quiet = vt == IMP_TYPE_Q8_0 || vt == IMP_TYPE_Q8_1;
        for (int64_t i = 0; i < 4096; i++) {
            uint32_t u = (uint32_t)imp_test_rng_u64(r);
            if (quiet && (u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) u |= 0x400000u;
            memcpy(&x[i], &u, sizeof u);
        }
        check_from_float(vt, x, 4096, avx2, "random bits", ref, fast);
        make_specials(x, 12 * 256, 32, r);
        check_from_float(vt, x, 12 * 256, avx2, "special values per 32", ref, fast);
        make_specials(x, 12 * 256, 256, r);
        check_from_float(vt, x, 12 * 256, avx2, "special values per 256", ref, fast);
    }
done:
    free(x);
    free(rows);
    free(ref);
    free(fast);
}

/* ---- vec_dot ------------------------------------------------------------------------------ */

typedef struct {
    float *w, *x, *wd, *xd; /* [MAX_N] weights, activations, both dequantized */
    uint8_t *wq, *xq;       /* [MAX_N * 4 + 64] quantized rows                */
    uint8_t *wq2, *xq2;     /* the same one and three bytes off alignment     */
} dot_bufs;

typedef struct {
    double err_ref, err_deq; /* largest errors seen, relative to sum |w_i x_i|     */
    double deq_use;          /* largest |fast - dequantized dot| / its allowed error */
} dot_report;

/* Q4_1 / Q5_1 dot with Q8_1 as d_x d_y sum(q_x q_y) + m_x s_y per block, where
 * s_y = fp16(d * sum(q_y)) with d before its own fp16 rounding; the dequantized activations sum
 * to fp16(d) * sum(q_y) instead. The two differ by at most two fp16 roundings, 2^-10 of |s|, or
 * fp16's smallest step 2^-24 near zero: the allowed extra error is the sum over blocks of |m|
 * times that. 0 for the other types. */
static double min_allowance(uint32_t t, int64_t n, const uint8_t *wq, const uint8_t *xq) {
    const size_t off_m = t == IMP_TYPE_Q4_1   ? offsetof(imp_block_q4_1, m)
                         : t == IMP_TYPE_Q5_1 ? offsetof(imp_block_q5_1, m)
                                              : 0;
    if (!off_m) return 0.0;
    const size_t wsize = imp_type_get(t)->type_size;
    double allow = 0.0;
    for (int64_t i = 0; i < n / IMP_QK8_1; i++) {
        imp_fp16 m, s;
        memcpy(&m, wq + (size_t)i * wsize + off_m, sizeof m);
        memcpy(&s, xq + (size_t)i * sizeof(imp_block_q8_1) + offsetof(imp_block_q8_1, s), sizeof s);
        allow += fabs((double)imp_fp16_to_f32(m)) *
                 (fabs((double)imp_fp16_to_f32(s)) * 0x1p-10 + 0x1p-24);
    }
    return allow;
}

/* Dots the quantized rows in b (n elements) with the reference and the fast kernel and checks
 * (a), (b), (c) of the file comment. */
static void check_dot(uint32_t t, int64_t n, bool avx2, const char *what, dot_bufs *b,
                      dot_report *rep) {
    const imp_type_traits *tr = imp_type_get(t), *vt = imp_type_get(tr->vec_dot_type);
    tr->dequantize(b->wq, b->wd, n);
    vt->dequantize(b->xq, b->xd, n);
    double exact = 0.0, sum_abs = 0.0;
    for (int64_t i = 0; i < n; i++) {
        exact += (double)b->wd[i] * b->xd[i];
        sum_abs += fabs((double)b->wd[i] * b->xd[i]);
    }
    const double allow = DOT_TOL * sum_abs + min_allowance(t, n, b->wq, b->xq);
    float ref = NAN, fast = NAN, fast2 = NAN;
    tr->vec_dot(n, &ref, b->wq, b->xq);
    fast_dot(t, avx2)(n, &fast, b->wq, b->xq);
    const double denom = sum_abs > 0.0 ? sum_abs : 1e-30;
    const double err_ref = fabs((double)fast - ref) / denom;
    const double err_deq = fabs((double)fast - exact) / denom;
    CHECKF(err_ref <= DOT_TOL, "%s (%s, n=%lld): fast %.9g ref %.9g: %.3g of sum|wx|", tr->name,
           what, (long long)n, fast, ref, err_ref);
    CHECKF(fabs((double)fast - exact) <= allow,
           "%s (%s, n=%lld): fast %.9g dequantized %.9g: %.3g of sum|wx|", tr->name, what,
           (long long)n, fast, exact, err_deq);
    if (!(rep->err_ref >= err_ref)) rep->err_ref = err_ref;
    if (!(rep->err_deq >= err_deq)) rep->err_deq = err_deq;
    const double use = fabs((double)fast - exact) / (allow > 0.0 ? allow : 1e-30);
    if (!(rep->deq_use >= use)) rep->deq_use = use;

    const size_t wbytes = imp_row_size(t, n), xbytes = imp_row_size(tr->vec_dot_type, n);
    memcpy(b->wq2 + 1, b->wq, wbytes);
    memcpy(b->xq2 + 3, b->xq, xbytes);
    fast_dot(t, avx2)(n, &fast2, b->wq2 + 1, b->xq2 + 3);
    CHECKF(memcmp(&fast, &fast2, sizeof fast) == 0, "%s (%s, n=%lld): misaligned rows give %.9g",
           tr->name, what, (long long)n, fast2);
}

static void test_type(uint32_t t, bool avx2, dot_bufs *b, imp_test_rng *r) {
    const imp_type_traits *tr = imp_type_get(t), *vt = imp_type_get(tr->vec_dot_type);
    dot_report rep = {0.0, 0.0, 0.0};
    int cases = 0;
    int64_t len[9];
    const int nlen = test_lengths(tr->block_size, len);
    for (int k = 0; k < nlen; k++) {
        const int64_t n = len[k];
        if (n % vt->block_size != 0) continue; /* (never: weights and activations share blocks) */
        for (int64_t i = 0; i < n; i++) {
            b->w[i] = imp_test_rng_normal(r);
            b->x[i] = imp_test_rng_normal(r);
        }
        tr->quantize(b->w, b->wq, n, NULL);
        vt->quantize(b->x, b->xq, n, NULL);
        check_dot(t, n, avx2, "N(0,1)", b, &rep);
        cases++;
        if (tr->is_quantized) {
            /* random blocks with random codes and scales, activations scaled by 1 or 100 */
            for (int rep_i = 0; rep_i < 2; rep_i++) {
                if (fill_random_blocks((imp_type)t, b->wq, n / tr->block_size, r) < 0) break;
                for (int64_t i = 0; i < n; i++)
                    b->x[i] = imp_test_rng_normal(r) * (rep_i ? 100.0f : 1.0f);
                vt->quantize(b->x, b->xq, n, NULL);
                check_dot(t, n, avx2, "random blocks", b, &rep);
                cases++;
            }
        }
    }
    printf("  %-7s x %-5s %2d rows: |fast-ref| %.1e, |fast-deq| %.1e of sum|wx| (%.2f of "
           "its bound)\n",
           tr->name, vt->name, cases, rep.err_ref, rep.err_deq, rep.deq_use);
}

/* The four-row kernels give the single-row kernel's results bit for bit (the CPU matmul relies
 * on it: outputs must not depend on how many activation rows a call carries). */
static void test_dot4(imp_test_rng *r) {
    int n_kernels = 0;
    for (uint32_t t = 0; t < IMP_TYPE_COUNT; t++) {
        imp_vec_dot4_fn d4 = imp_vec_dot4_fast(t);
        if (!d4) continue;
        n_kernels++;
        const imp_type_traits *tr = imp_type_get(t), *vt = imp_type_get(tr->vec_dot_type);
        const int64_t lens[] = {tr->block_size, 3 * tr->block_size, 18 * tr->block_size, 4096};
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            const int64_t n = lens[li];
            const size_t ws = imp_row_size(t, n), xs = imp_row_size(tr->vec_dot_type, n) + 3; /* odd stride */
            float *f = malloc((size_t)n * sizeof *f);
            uint8_t *w = malloc(ws + 1), *x = malloc(4 * xs + 1);
            if (!f || !w || !x) {
                CHECK(!"allocation");
                free(f), free(w), free(x);
                return;
            }
            for (int64_t i = 0; i < n; i++) f[i] = imp_test_rng_normal(r);
            tr->quantize(f, w + 1, n, NULL);
            for (int row = 0; row < 4; row++) {
                for (int64_t i = 0; i < n; i++) f[i] = imp_test_rng_normal(r) * (float)(row + 1);
                vt->quantize(f, x + 1 + (size_t)row * xs, n, NULL);
            }
            float s4[4];
            d4(n, s4, w + 1, x + 1, xs);
            for (int row = 0; row < 4; row++) {
                float s1;
                imp_vec_dot_fast(t)(n, &s1, w + 1, x + 1 + (size_t)row * xs);
                CHECKF(memcmp(&s1, &s4[row], sizeof s1) == 0, "%s n=%lld row %d: dot4 %.9g, dot %.9g", tr->name,
                       (long long)n, row, (double)s4[row], (double)s1);
            }
            free(f);
            free(w);
            free(x);
        }
    }
    printf("four-row kernels: %d types, bit-identical to the single-row kernels\n", n_kernels);
    if (imp_cpu_has_avx2()) CHECK(n_kernels >= 4);
}

int main(void) {
    const bool avx2 = imp_cpu_has_avx2();
    printf("CPU: %s\n", avx2 ? "AVX2+FMA+F16C, testing the AVX2 kernels"
                             : "no AVX2+FMA+F16C: dispatch must return the references");
    imp_test_rng r = {0x5eed5eedu};
    test_dispatch(avx2);
    test_from_float(avx2, &r);
    test_dot4(&r);

    dot_bufs b = {0};
    b.w = malloc(MAX_N * sizeof(float));
    b.x = malloc(MAX_N * sizeof(float));
    b.wd = malloc(MAX_N * sizeof(float));
    b.xd = malloc(MAX_N * sizeof(float));
    b.wq = malloc(MAX_N * 4 + 64);
    b.xq = malloc(MAX_N * 4 + 64);
    b.wq2 = malloc(MAX_N * 4 + 64);
    b.xq2 = malloc(MAX_N * 4 + 64);
    if (b.w && b.x && b.wd && b.xd && b.wq && b.xq && b.wq2 && b.xq2) {
        for (uint32_t t = 0; t < IMP_TYPE_COUNT; t++)
            if (imp_type_is_computable(t)) test_type(t, avx2, &b, &r);
    } else {
        CHECK(!"allocation");
    }
    free(b.w);
    free(b.x);
    free(b.wd);
    free(b.xd);
    free(b.wq);
    free(b.xq);
    free(b.wq2);
    free(b.xq2);
    return imp_test_finish("test_quant_simd");
}
