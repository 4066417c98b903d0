/*
 * The type table and the CPU reference kernels of every computable type, driven by the table (a
 * type that becomes computable is tested without touching this file). For each such type:
 *
 *   round trip   RMSE of dequantize(quantize(x)) on seeded N(0,1) data, printed for every type and
 *                held under a per-type bound (types without a bound get a loose generic one)
 *   zeros        an all-zero row comes back exactly zero
 *   idempotence  re-quantizing a dequantized row reproduces it exactly for the formats whose
 *                quantizer is a fixed rule (floats, legacy); for the searched formats the second
 *                round trip may move values, but by less than the first one's error
 *   alignment    quantize into and dequantize from a buffer 1 byte off alignment gives the same
 *                bytes and floats (the kernels must not assume aligned blocks; run under UBSAN)
 *   vec_dot      (a) against double-precision dot(dequantize(x), dequantize(yq)) to 1e-5 of the
 *                sum of |products| (see dot_tol): the integer kernel is exact up to float
 *                rounding; on
 *                quantized rows and on random blocks (every code pattern, extreme scales)
 *                (b) against dot(dequantize(x), y) with the float activations, within 2% of
 *                |x||y| (Cauchy-Schwarz bound of the activation quantization error)
 *   imatrix      with a skewed importance vector the importance-weighted error must not be
 *                worse than without it (printed as a ratio)
 *
 * plus the table itself: geometry matches the block structs, names round-trip, retired ids and
 * out-of-range ids return NULL, imp_row_size rejects ragged, negative and overflowing sizes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"
#include "quant/quant_blocks.h"
#include "quant_testdata.h"
#include "testutil.h"

#define N     4096 /* elements per test row: a multiple of every block size */
#define NROWS 8    /* rows per round-trip measurement                       */

/* Upper bounds of the N(0,1) round-trip RMSE, about 10% above the measured figures (printed by
 * the test) so a quality regression fails while float noise does not.
 * dot_tol: the bound of check (a) when 1e-5 does not apply. Q4_1 and Q5_1 dot with Q8_1, whose
 * s = d*sum(q) is stored in fp16: the m*s term carries that rounding (2^-11 relative), which the
 * dequantized activations do not, so the kernel and the dequantized dot differ by more. */
static const struct {
    const char *name;
    double max_rmse;
    bool idempotent; /* quantize(dequantize(q)) == q exactly */
    double dot_tol;  /* 0: DOT_TOL */
} k_expect[] = {
    {"F32", 0.0, true},          {"F16", 2.3e-4, true},       {"BF16", 1.8e-3, true},
    {"Q4_0", 0.094, true},       {"Q4_1", 0.089, true, 2e-4}, {"Q5_0", 0.047, true},
    {"Q5_1", 0.042, true, 2e-4}, {"Q8_0", 0.0059, true},      {"Q8_1", 0.0059, true},
    {"Q2_K", 0.33, false},       {"Q3_K", 0.165, false},      {"Q4_K", 0.078, false},
    {"Q5_K", 0.040, false},      {"Q6_K", 0.0196, false},     {"Q8_K", 0.0077, false},
    {"IQ4_NL", 0.084, false},    {"IQ4_XS", 0.084, false},
};
#define GENERIC_MAX_RMSE 0.5 /* for a newly computable type: catches garbage, not regressions */
#define DOT_TOL          1e-5

static double rmse(const float *a, const float *b, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(s / (double)n);
}

static int expect_index(const char *name) {
    for (size_t i = 0; i < sizeof k_expect / sizeof k_expect[0]; i++)
        if (strcmp(k_expect[i].name, name) == 0) return (int)i;
    return -1;
}

/* ---- the table ---------------------------------------------------------------------------- */

static void test_table(void) {
    static const struct {
        imp_type t;
        size_t size;
        int64_t bs;
    } k_structs[] = {
        {IMP_TYPE_Q4_0, sizeof(imp_block_q4_0), IMP_QK4_0},
        {IMP_TYPE_Q4_1, sizeof(imp_block_q4_1), IMP_QK4_1},
        {IMP_TYPE_Q5_0, sizeof(imp_block_q5_0), IMP_QK5_0},
        {IMP_TYPE_Q5_1, sizeof(imp_block_q5_1), IMP_QK5_1},
        {IMP_TYPE_Q8_0, sizeof(imp_block_q8_0), IMP_QK8_0},
        {IMP_TYPE_Q8_1, sizeof(imp_block_q8_1), IMP_QK8_1},
        {IMP_TYPE_Q2_K, sizeof(imp_block_q2_K), IMP_QK_K},
        {IMP_TYPE_Q3_K, sizeof(imp_block_q3_K), IMP_QK_K},
        {IMP_TYPE_Q4_K, sizeof(imp_block_q4_K), IMP_QK_K},
        {IMP_TYPE_Q5_K, sizeof(imp_block_q5_K), IMP_QK_K},
        {IMP_TYPE_Q6_K, sizeof(imp_block_q6_K), IMP_QK_K},
        {IMP_TYPE_Q8_K, sizeof(imp_block_q8_K), IMP_QK_K},
        {IMP_TYPE_IQ4_NL, sizeof(imp_block_iq4_nl), IMP_QK4_NL},
        {IMP_TYPE_IQ4_XS, sizeof(imp_block_iq4_xs), IMP_QK_K},
        {IMP_TYPE_F32, 4, 1},
        {IMP_TYPE_F16, 2, 1},
        {IMP_TYPE_BF16, 2, 1},
    };
    for (size_t i = 0; i < sizeof k_structs / sizeof k_structs[0]; i++) {
        const imp_type_traits *tr = imp_type_get(k_structs[i].t);
        CHECK(tr != NULL);
        if (!tr) continue;
        CHECKF(tr->type_size == k_structs[i].size && tr->block_size == k_structs[i].bs,
               "%s: table %lld/%zu, struct %lld/%zu", tr->name, (long long)tr->block_size,
               tr->type_size, (long long)k_structs[i].bs, k_structs[i].size);
    }

    static const uint32_t k_retired[] = {4, 5, 31, 32, 33, 36, 37, 38};
    for (size_t i = 0; i < sizeof k_retired / sizeof k_retired[0]; i++) {
        CHECKF(imp_type_get(k_retired[i]) == NULL, "retired id %u", k_retired[i]);
        CHECK(strcmp(imp_type_name(k_retired[i]), "?") == 0);
        CHECK(imp_row_size(k_retired[i], 32) == 0);
        CHECK(!imp_type_is_computable(k_retired[i]));
    }
    CHECK(imp_type_get(IMP_TYPE_COUNT) == NULL);
    CHECK(imp_type_get(UINT32_MAX) == NULL);

    int known = 0;
    for (uint32_t t = 0; t < IMP_TYPE_COUNT; t++) {
        const imp_type_traits *tr = imp_type_get(t);
        if (!tr) continue;
        known++;
        CHECKF(tr->block_size > 0 && tr->type_size > 0, "%s geometry", tr->name);
        imp_type back;
        CHECKF(imp_type_from_name(tr->name, &back) && back == (imp_type)t, "%s name round trip",
               tr->name);
        char lower[32];
        size_t k = 0;
        for (; tr->name[k] && k + 1 < sizeof lower; k++)
            lower[k] =
                (char)(tr->name[k] >= 'A' && tr->name[k] <= 'Z' ? tr->name[k] + 32 : tr->name[k]);
        lower[k] = 0;
        CHECKF(imp_type_from_name(lower, &back) && back == (imp_type)t, "%s lower-case lookup",
               lower);
        CHECK(strcmp(imp_type_name(t), tr->name) == 0);
        CHECK(imp_row_size(t, tr->block_size * 3) == 3 * tr->type_size);
        CHECK(imp_row_size(t, -tr->block_size) == 0);
        if (tr->block_size > 1) CHECK(imp_row_size(t, tr->block_size + 1) == 0);
        {
            const int64_t huge = INT64_MAX - INT64_MAX % tr->block_size;
            size_t bytes;
            const bool overflows =
                __builtin_mul_overflow((size_t)(huge / tr->block_size), tr->type_size, &bytes);
            CHECKF(imp_row_size(t, huge) == (overflows ? 0 : bytes), "%s: row size of %lld",
                   tr->name, (long long)huge);
        }
        if (imp_type_is_computable(t)) {
            /* the activation type must itself be producible, or vec_dot cannot be fed */
            CHECKF(imp_type_get(tr->vec_dot_type) && imp_type_get(tr->vec_dot_type)->quantize,
                   "%s: vec_dot_type %d has no quantize", tr->name, (int)tr->vec_dot_type);
        }
    }
    CHECK(known == 34);
    imp_type t;
    CHECK(imp_type_from_name("q4_k", &t) && t == IMP_TYPE_Q4_K);
    CHECK(imp_type_from_name("Iq4_Xs", &t) && t == IMP_TYPE_IQ4_XS);
    CHECK(!imp_type_from_name("Q4_2", &t));
    CHECK(!imp_type_from_name("", &t));
    CHECK(!imp_type_from_name(NULL, &t));
    CHECK(imp_row_size(IMP_TYPE_Q4_0, 64) == 36);
    CHECK(imp_row_size(IMP_TYPE_Q8_1, 64) == 72);
    CHECK(imp_row_size(IMP_TYPE_Q4_K, 255) == 0);
    CHECK(imp_row_size(IMP_TYPE_F32, INT64_MAX) == 0); /* 4 * (2^63 - 1) overflows size_t */
    CHECK(imp_row_size(IMP_TYPE_Q8_0, 0) == 0);
}

/* ---- per-type checks ---------------------------------------------------------------------- */

typedef struct {
    double rmse, re_rmse, ratio_imatrix, dot_err_q, dot_err_blocks, dot_err_f;
    int64_t re_changed;
} type_report;

/* vec_dot(x, y) against the double-precision dot of both dequantized, relative to sum |x_i y_i|. */
static double dot_error(const imp_type_traits *tr, const imp_type_traits *vt, const void *xq,
                        const void *yq, int64_t n, float *xd, float *yd) {
    float s = 0.0f;
    tr->vec_dot(n, &s, xq, yq);
    tr->dequantize(xq, xd, n);
    vt->dequantize(yq, yd, n);
    double ref = 0.0, mag = 0.0;
    for (int64_t i = 0; i < n; i++) {
        ref += (double)xd[i] * yd[i];
        mag += fabs((double)xd[i] * yd[i]);
    }
    if (!isfinite(s)) return INFINITY;
    return mag > 0.0 ? fabs((double)s - ref) / mag : fabs((double)s - ref);
}

static void test_type(imp_type t, type_report *rep) {
    const imp_type_traits *tr = imp_type_get(t);
    const imp_type_traits *vt = imp_type_get(tr->vec_dot_type);
    const int ei = expect_index(tr->name);
    const size_t rb = imp_row_size(t, N), vrb = imp_row_size(tr->vec_dot_type, N);
    imp_test_rng r = {0xabcdef00ull + (uint64_t)t};

    float *x = malloc(sizeof(float) * N * NROWS), *y = malloc(sizeof(float) * N * NROWS);
    float *y2 = malloc(sizeof(float) * N), *a = malloc(sizeof(float) * N),
          *b = malloc(sizeof(float) * N);
    float *imp = malloc(sizeof(float) * N);
    uint8_t *q = malloc(rb * NROWS), *q2 = malloc(rb + 1), *vq = malloc(vrb);
    if (!x || !y || !y2 || !a || !b || !imp || !q || !q2 || !vq) {
        CHECK(!"out of memory");
        goto done;
    }

    /* round trip on N(0,1) */
    for (int64_t i = 0; i < (int64_t)N * NROWS; i++) x[i] = imp_test_rng_normal(&r);
    for (int row = 0; row < NROWS; row++) {
        tr->quantize(x + row * N, q + row * rb, N, NULL);
        tr->dequantize(q + row * rb, y + row * N, N);
    }
    rep->rmse = rmse(x, y, (int64_t)N * NROWS);
    const double bound = ei >= 0 ? k_expect[ei].max_rmse : GENERIC_MAX_RMSE;
    CHECKF(rep->rmse <= bound, "%s: round-trip rmse %.6g > bound %.6g", tr->name, rep->rmse, bound);

    /* idempotence on the first row */
    tr->quantize(y, q2, N, NULL);
    tr->dequantize(q2, y2, N);
    rep->re_changed = 0;
    for (int64_t i = 0; i < N; i++) rep->re_changed += memcmp(&y[i], &y2[i], sizeof(float)) != 0;
    rep->re_rmse = rmse(y, y2, N);
    if (ei >= 0 && k_expect[ei].idempotent)
        CHECKF(rep->re_changed == 0, "%s: re-quantizing changed %lld values", tr->name,
               (long long)rep->re_changed);
    else
        CHECKF(rep->re_rmse <= rmse(x, y, N),
               "%s: second round trip moved values by %.4g (first: %.4g)", tr->name, rep->re_rmse,
               rmse(x, y, N));

    /* zeros */
    memset(a, 0, sizeof(float) * N);
    tr->quantize(a, q2, N, NULL);
    tr->dequantize(q2, b, N);
    int nonzero = 0;
    for (int64_t i = 0; i < N; i++) nonzero += b[i] != 0.0f;
    CHECKF(nonzero == 0, "%s: zero row came back with %d nonzero values", tr->name, nonzero);

    /* misaligned buffers: same bytes, same floats */
    tr->quantize(x, q2 + 1, N, NULL);
    CHECKF(memcmp(q2 + 1, q, rb) == 0, "%s: quantize into a misaligned buffer differs", tr->name);
    tr->dequantize(q2 + 1, b, N);
    CHECKF(memcmp(b, y, sizeof(float) * N) == 0, "%s: dequantize from a misaligned buffer differs",
           tr->name);

    /* vec_dot: (a) against the dequantized operands, on a quantized row ... */
    for (int64_t i = 0; i < N; i++) a[i] = imp_test_rng_normal(&r);
    vt->quantize(a, vq, N, NULL);
    const double dot_tol = ei >= 0 && k_expect[ei].dot_tol > 0.0 ? k_expect[ei].dot_tol : DOT_TOL;
    rep->dot_err_q = dot_error(tr, vt, q, vq, N, b, y2);
    CHECKF(rep->dot_err_q <= dot_tol, "%s: vec_dot vs dequantized dot: rel err %.3g", tr->name,
           rep->dot_err_q);
    /* (b) ... against the float activations */
    {
        float s = 0.0f;
        tr->vec_dot(N, &s, q, vq);
        double ref = 0.0, nx = 0.0, na = 0.0;
        for (int64_t i = 0; i < N; i++) {
            ref += (double)y[i] * a[i];
            nx += (double)y[i] * y[i];
            na += (double)a[i] * a[i];
        }
        rep->dot_err_f = fabs((double)s - ref) / sqrt(nx * na);
        CHECKF(rep->dot_err_f <= 0.02, "%s: vec_dot vs float dot: %.3g of |x||y|", tr->name,
               rep->dot_err_f);
    }
    /* ... and on random blocks (every code pattern; float types skip this: random bits are NaNs) */
    rep->dot_err_blocks = NAN;
    if (tr->is_quantized) {
        for (int rep_i = 0; rep_i < 4; rep_i++) {
            if (fill_random_blocks(t, q2, N / tr->block_size, &r) < 0) break;
            for (int64_t i = 0; i < N; i++)
                a[i] = imp_test_rng_normal(&r) * (rep_i % 2 ? 100.0f : 1.0f);
            vt->quantize(a, vq, N, NULL);
            const double e = dot_error(tr, vt, q2, vq, N, b, y2);
            if (!(rep->dot_err_blocks >= e)) rep->dot_err_blocks = e;
        }
        CHECKF(rep->dot_err_blocks <= dot_tol, "%s: vec_dot on random blocks: rel err %.3g",
               tr->name, rep->dot_err_blocks);
    }

    /* imatrix: importance-weighted error with a skewed importance vector */
    for (int64_t i = 0; i < N; i++) imp[i] = expf(1.5f * imp_test_rng_normal(&r));
    double err_plain = 0.0, err_imat = 0.0;
    for (int row = 0; row < NROWS; row++) {
        const float *xr = x + row * N;
        tr->quantize(xr, q2, N, NULL);
        tr->dequantize(q2, a, N);
        tr->quantize(xr, q2, N, imp);
        tr->dequantize(q2, b, N);
        for (int64_t i = 0; i < N; i++) {
            err_plain += imp[i] * ((double)xr[i] - a[i]) * ((double)xr[i] - a[i]);
            err_imat += imp[i] * ((double)xr[i] - b[i]) * ((double)xr[i] - b[i]);
        }
    }
    rep->ratio_imatrix = err_plain > 0.0 ? err_imat / err_plain : 1.0;
    CHECKF(rep->ratio_imatrix <= 1.0, "%s: imatrix made the weighted error worse (x%.4f)", tr->name,
           rep->ratio_imatrix);

done:
    free(x);
    free(y);
    free(y2);
    free(a);
    free(b);
    free(imp);
    free(q);
    free(q2);
    free(vq);
}

int main(void) {
    test_table();

    printf("%-8s %-6s %12s %10s %12s %12s %12s %12s %10s\n", "type", "dot", "rmse N(0,1)", "bound",
           "requant chg", "dot err q", "dot err blk", "dot vs f32", "imatrix");
    int computable = 0;
    for (uint32_t t = 0; t < IMP_TYPE_COUNT; t++) {
        if (!imp_type_is_computable(t)) continue;
        computable++;
        type_report rep = {0};
        test_type((imp_type)t, &rep);
        const imp_type_traits *tr = imp_type_get(t);
        const int ei = expect_index(tr->name);
        printf("%-8s %-6s %12.6g %10.4g %12lld %12.3g %12.3g %12.3g %10.4f\n", tr->name,
               imp_type_name(tr->vec_dot_type), rep.rmse,
               ei >= 0 ? k_expect[ei].max_rmse : GENERIC_MAX_RMSE, (long long)rep.re_changed,
               rep.dot_err_q, rep.dot_err_blocks, rep.dot_err_f, rep.ratio_imatrix);
    }
    CHECKF(computable >= 17, "only %d computable types", computable);
    return imp_test_finish("test_quant");
}
