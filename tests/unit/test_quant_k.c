/*
 * K-quants (src/quant/q_kquants.c, q_kquants_scales.c). Dequantization's bit-exactness with
 * ggml is checked for every type by py_quant_ref.py against PyPI gguf; this test covers what
 * gguf cannot (it has no K-quant quantizers):
 * 1. Quantization error: relative RMSE per type on seeded rows (N(0,1), N(0,0.02), N(0,1) with
 *    1% of values 12x larger), without and with an importance matrix, bounded 5% above the
 *    table below. The table is what ggml's quantize_row_q*_K_ref / quantize_q*_K give on these
 *    same rows (checked with a throwaway build of ggml-quants.c; imp matched to all 6 digits).
 * 2. Importance: the importance-weighted error is lower with the imatrix than without it.
 * 3. vec_dot(x, q8_K(y)) equals dequantize(x) . dequantize(q8_K(y)) up to float rounding (both
 *    are sums of the same products).
 * 4. Scale packing: the 6-bit packings round-trip exhaustively; on Gaussian rows Q4_K
 *    re-quantizes its own output to the same bytes, Q6_K to the same values.
 * 5. Q8_K's conventions: d = max / -127 (sign of the largest magnitude), bsums = sums of 16.
 * 6. Degenerate rows: zeros give all-zero bytes; NaN/Inf blocks do not disturb other blocks
 *    (and run clean under ASAN/UBSAN); rows at odd addresses (a GGUF's alignment is the file's
 *    choice) give the same bytes, values and dot products.
 * 7. Same bytes as llama.cpp: the RMSE bounds cannot see the searches' finer steps (each moves
 *    the error by < 3%), so rows built from exactly representable floats (integer RNG, no libm,
 *    hence the same on every IEEE platform) are quantized and the bytes' FNV-1a hash compared
 *    with the hash of ggml's own output for the same rows (quantize_row_q*_K_ref, and
 *    quantize_q*_K with the imatrix; ggml-org/ggml d99724f, built once outside this repo).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/q_kquants_scales.h"
#include "quant/quant_blocks.h"
#include "quant/quant_impl.h"
#include "testutil.h"

#define NCOL  4096 /* one row: 16 blocks */
#define NROW  16
#define NELEM (NCOL * NROW)

typedef struct kq_type {
    const char *name;
    size_t block_bytes;
    imp_quantize_fn quantize;
    imp_dequantize_fn dequantize;
    imp_vec_dot_fn vec_dot;
} kq_type;

static const kq_type k_types[] = {
    {"Q2_K", sizeof(imp_block_q2_K), imp_quantize_q2_K, imp_dequantize_q2_K, imp_vec_dot_q2_K},
    {"Q3_K", sizeof(imp_block_q3_K), imp_quantize_q3_K, imp_dequantize_q3_K, imp_vec_dot_q3_K},
    {"Q4_K", sizeof(imp_block_q4_K), imp_quantize_q4_K, imp_dequantize_q4_K, imp_vec_dot_q4_K},
    {"Q5_K", sizeof(imp_block_q5_K), imp_quantize_q5_K, imp_dequantize_q5_K, imp_vec_dot_q5_K},
    {"Q6_K", sizeof(imp_block_q6_K), imp_quantize_q6_K, imp_dequantize_q6_K, imp_vec_dot_q6_K},
    {"Q8_K", sizeof(imp_block_q8_K), imp_quantize_q8_K, imp_dequantize_q8_K, imp_vec_dot_q8_K},
};
#define N_TYPES        ((int)(sizeof k_types / sizeof k_types[0]))
#define N_WEIGHT_TYPES 5 /* Q2_K..Q6_K take an importance matrix; Q8_K ignores it */

enum { SET_N1, SET_N002, SET_OUTLIERS, N_SETS };
static const char *const k_set_names[N_SETS] = {"N(0,1)", "N(0,0.02)", "N(0,1)+outliers"};
static const float k_set_sigma[N_SETS] = {1.0f, 0.02f, 1.0f};

/* Relative RMSE (rmse / sigma) of ggml's reference quantizers (and of imp's) on the rows below;
 * [type][set] without and with the importance matrix (weighted RMSE). Bounds are 5% above. */
static const double k_rel_rmse[N_TYPES][N_SETS] = {
    /*         N(0,1)    N(0,0.02) outliers */
    /* Q2_K */ {0.296378, 0.297402, 0.494114},
    /* Q3_K */ {0.150399, 0.150831, 0.287156},
    /* Q4_K */ {0.071526, 0.071235, 0.149954},
    /* Q5_K */ {0.036255, 0.036030, 0.075208},
    /* Q6_K */ {0.017716, 0.017855, 0.045171},
    /* Q8_K */ {0.006988, 0.006985, 0.035798},
};
static const double k_rel_rmse_imatrix[N_WEIGHT_TYPES][N_SETS] = {
    /* Q2_K */ {0.200683, 0.200970, 0.364682},
    /* Q3_K */ {0.121607, 0.120283, 0.254712},
    /* Q4_K */ {0.057036, 0.056762, 0.125304},
    /* Q5_K */ {0.029618, 0.029400, 0.065099},
    /* Q6_K */ {0.014635, 0.014806, 0.041528},
};

static void make_rows(int set, float *x) {
    imp_test_rng rng = {1000u + (uint64_t)set};
    for (int i = 0; i < NELEM; i++) {
        float v = imp_test_rng_normal(&rng) * k_set_sigma[set];
        if (set == SET_OUTLIERS && imp_test_rng_uniform(&rng) < 0.01f) v *= 12.f;
        x[i] = v;
    }
}

/* Per-column importance like real squared-activation means: log-normal, over 2+ decades. */
static void make_imatrix(float *qw) {
    imp_test_rng rng = {77};
    for (int j = 0; j < NCOL; j++) qw[j] = expf(1.5f * imp_test_rng_normal(&rng));
}

/* sqrt(sum w (a-b)^2 / sum w), w per column (NULL: 1) */
static double weighted_rmse(const float *a, const float *b, const float *qw) {
    double s = 0, sw = 0;
    for (int i = 0; i < NELEM; i++) {
        double w = qw ? qw[i % NCOL] : 1.0, d = (double)a[i] - b[i];
        s += w * d * d;
        sw += w;
    }
    return sqrt(s / sw);
}

/* Quantizes x row by row (the imatrix is per row) and dequantizes into y. */
static void round_trip(const kq_type *t, const float *x, const float *qw, uint8_t *q, float *y) {
    const size_t row_bytes = NCOL / IMP_QK_K * t->block_bytes;
    for (int r = 0; r < NROW; r++) t->quantize(x + (size_t)r * NCOL, q + r * row_bytes, NCOL, qw);
    t->dequantize(q, y, NELEM);
}

static void test_rmse(float *x, float *y, uint8_t *q, const float *qw) {
    printf("relative RMSE (rmse/sigma); imatrix columns: importance-weighted RMSE\n");
    printf("%-6s %-16s %10s %10s %12s %10s %12s\n", "type", "data", "plain", "bound", "w/o imatrix",
           "imatrix", "bound");
    for (int set = 0; set < N_SETS; set++) {
        make_rows(set, x);
        const double sigma = k_set_sigma[set];
        for (int ti = 0; ti < N_TYPES; ti++) {
            const kq_type *t = &k_types[ti];
            round_trip(t, x, NULL, q, y);
            double plain = weighted_rmse(x, y, NULL) / sigma;
            double plain_w = weighted_rmse(x, y, qw) / sigma;
            double bound = 1.05 * k_rel_rmse[ti][set];
            CHECKF(plain <= bound, "%s %s: relative RMSE %.6f > bound %.6f", t->name,
                   k_set_names[set], plain, bound);
            if (ti >= N_WEIGHT_TYPES) {
                printf("%-6s %-16s %10.6f %10.6f\n", t->name, k_set_names[set], plain, bound);
                continue;
            }
            round_trip(t, x, qw, q, y);
            double weighted = weighted_rmse(x, y, qw) / sigma;
            double wbound = 1.05 * k_rel_rmse_imatrix[ti][set];
            printf("%-6s %-16s %10.6f %10.6f %12.6f %10.6f %12.6f\n", t->name, k_set_names[set],
                   plain, bound, plain_w, weighted, wbound);
            CHECKF(weighted <= wbound, "%s %s: weighted RMSE with imatrix %.6f > bound %.6f",
                   t->name, k_set_names[set], weighted, wbound);
            /* the importance matrix must buy lower error where it says error matters */
            CHECKF(weighted < 0.97 * plain_w,
                   "%s %s: imatrix did not lower the weighted error (%.6f vs %.6f)", t->name,
                   k_set_names[set], weighted, plain_w);
        }
    }
}

/* vec_dot against the float dot of the dequantized operands (in double). Both are the same sum
 * of products d_x*sc*q_x * d_y*q_y, so they agree to float rounding of the per-block terms. */
static void test_vec_dot(float *x, float *y, uint8_t *q, const float *qw) {
    float *act = malloc(sizeof(float) * NCOL), *act_dq = malloc(sizeof(float) * NCOL);
    imp_block_q8_K *act_q = malloc(sizeof(imp_block_q8_K) * (NCOL / IMP_QK_K));
    imp_test_rng rng = {4242};
    make_rows(SET_OUTLIERS, x);
    for (int ti = 0; ti < N_TYPES; ti++) {
        const kq_type *t = &k_types[ti];
        const size_t row_bytes = NCOL / IMP_QK_K * t->block_bytes;
        double worst = 0;
        for (int pass = 0; pass < 2; pass++) {
            round_trip(t, x, pass ? qw : NULL, q, y);
            for (int r = 0; r < NROW; r++) {
                for (int j = 0; j < NCOL; j++)
                    act[j] = imp_test_rng_normal(&rng) * (r % 2 ? 0.05f : 3.0f);
                imp_quantize_q8_K(act, act_q, NCOL, NULL);
                imp_dequantize_q8_K(act_q, act_dq, NCOL);
                float got = 0;
                t->vec_dot(NCOL, &got, q + r * row_bytes, act_q);
                double ref = 0, mag = 0;
                for (int j = 0; j < NCOL; j++) {
                    double p = (double)y[(size_t)r * NCOL + j] * act_dq[j];
                    ref += p;
                    mag += fabs(p);
                }
                double rel = fabs(got - ref) / mag;
                if (rel > worst) worst = rel;
            }
        }
        printf("vec_dot %s: max |dot - ref| / sum|x*y| = %.3g\n", t->name, worst);
        CHECKF(worst < 1e-6, "%s vec_dot differs from the dequantized dot: %.3g", t->name, worst);
    }
    free(act);
    free(act_dq);
    free(act_q);
}

static void test_scale_packing(void) {
    /* Q4_K/Q5_K: every value in every slot, the other slots holding distinct values */
    int bad = 0;
    for (int slot = 0; slot < 16; slot++) {
        for (int v = 0; v < 64; v++) {
            uint8_t sc[8], mn[8], packed[12], sc2[8], mn2[8];
            for (int j = 0; j < 8; j++) {
                sc[j] = (uint8_t)((j * 7 + 3) & 63);
                mn[j] = (uint8_t)((j * 13 + 50) & 63);
            }
            (slot < 8 ? sc : mn)[slot % 8] = (uint8_t)v;
            imp_kq_pack_scales_k4(sc, mn, packed);
            imp_kq_unpack_scales_k4(packed, sc2, mn2);
            bad += memcmp(sc, sc2, 8) != 0 || memcmp(mn, mn2, 8) != 0;
        }
    }
    CHECKF(bad == 0, "Q4_K scale packing: %d round-trip failures", bad);
    /* Q3_K: every signed value in every slot */
    bad = 0;
    for (int slot = 0; slot < 16; slot++) {
        for (int v = -32; v < 32; v++) {
            int8_t sc[16], sc2[16];
            uint8_t packed[12];
            for (int j = 0; j < 16; j++) sc[j] = (int8_t)(((j * 11 + 5) & 63) - 32);
            sc[slot] = (int8_t)v;
            imp_kq_pack_scales_q3(sc, packed);
            imp_kq_unpack_scales_q3(packed, sc2);
            bad += memcmp(sc, sc2, 16) != 0;
        }
    }
    CHECKF(bad == 0, "Q3_K scale packing: %d round-trip failures", bad);
}

/* quantize -> dequantize -> quantize: Q4_K gives the same bytes, Q6_K the same values (a
 * mismatch between packing and unpacking would break that). Only on the Gaussian rows: with
 * outliers the searches may pick other scales for already-quantized data (ggml does the same),
 * so it is not an invariant there. */
static void test_requantize(float *x, float *y, uint8_t *q) {
    float *y2 = malloc(sizeof(float) * NELEM);
    uint8_t *q2 = malloc(sizeof(imp_block_q8_K) * (NELEM / IMP_QK_K));
    for (int set = SET_N1; set <= SET_N002; set++) {
        make_rows(set, x);
        round_trip(&k_types[2], x, NULL, q, y);
        round_trip(&k_types[2], y, NULL, q2, y2);
        CHECKF(memcmp(q, q2, NELEM / IMP_QK_K * sizeof(imp_block_q4_K)) == 0,
               "Q4_K %s: re-quantizing its own output changed bytes", k_set_names[set]);
        round_trip(&k_types[4], x, NULL, q, y);
        round_trip(&k_types[4], y, NULL, q2, y2);
        int diff = 0;
        for (int i = 0; i < NELEM; i++) diff += y[i] != y2[i];
        CHECKF(diff == 0, "Q6_K %s: re-quantizing its own output changed %d values",
               k_set_names[set], diff);
    }
    free(y2);
    free(q2);
}

static void test_q8_K(void) {
    float x[2 * IMP_QK_K];
    imp_block_q8_K b[2];
    imp_test_rng rng = {9};
    for (int i = 0; i < 2 * IMP_QK_K; i++) x[i] = imp_test_rng_normal(&rng);
    x[17] = -9.0f; /* block 0: the largest magnitude is negative */
    x[IMP_QK_K + 200] = 7.5f;
    imp_quantize_q8_K(x, b, 2 * IMP_QK_K, NULL);
    CHECKF(b[0].d == 1 / (-127.f / -9.0f) && b[0].qs[17] == -127, "Q8_K block 0: d %g qs %d",
           b[0].d, b[0].qs[17]);
    CHECKF(b[1].d == 1 / (-127.f / 7.5f) && b[1].qs[200] == -127, "Q8_K block 1: d %g qs %d",
           b[1].d, b[1].qs[200]);
    int bad = 0;
    for (int k = 0; k < 2; k++) {
        for (int j = 0; j < IMP_QK_K / 16; j++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += b[k].qs[16 * j + i];
            bad += s != b[k].bsums[j];
        }
    }
    CHECKF(bad == 0, "Q8_K bsums: %d wrong", bad);
}

static void test_degenerate(void) {
    float x[4 * IMP_QK_K], y[4 * IMP_QK_K];
    uint8_t q[4 * sizeof(imp_block_q8_K)], ref[sizeof(imp_block_q8_K)];
    imp_test_rng rng = {31};
    for (int ti = 0; ti < N_TYPES; ti++) {
        const kq_type *t = &k_types[ti];
        /* zeros: all-zero bytes, zero values */
        memset(x, 0, sizeof x);
        memset(q, 0xAB, sizeof q);
        t->quantize(x, q, IMP_QK_K, NULL);
        int nonzero = 0;
        for (size_t i = 0; i < t->block_bytes; i++) nonzero += q[i] != 0;
        CHECKF(nonzero == 0, "%s: zero block has %d nonzero bytes", t->name, nonzero);
        /* a constant block decodes close to the constant */
        for (int i = 0; i < IMP_QK_K; i++) x[i] = 0.37f;
        t->quantize(x, q, IMP_QK_K, NULL);
        t->dequantize(q, y, IMP_QK_K);
        float worst = 0;
        for (int i = 0; i < IMP_QK_K; i++) worst = fmaxf(worst, fabsf(y[i] - 0.37f));
        CHECKF(worst < 0.37f * 0.02f, "%s: constant block off by %g", t->name, worst);
        /* NaN/Inf in blocks 1 and 2 must not change blocks 0 and 3 */
        for (int i = 0; i < 4 * IMP_QK_K; i++) x[i] = imp_test_rng_normal(&rng);
        t->quantize(x + 3 * IMP_QK_K, ref, IMP_QK_K, NULL);
        x[IMP_QK_K + 5] = NAN;
        x[2 * IMP_QK_K + 9] = INFINITY;
        x[2 * IMP_QK_K + 10] = -INFINITY;
        for (int with_imatrix = 0; with_imatrix < 2; with_imatrix++) {
            float qw[4 * IMP_QK_K];
            for (int i = 0; i < 4 * IMP_QK_K; i++) qw[i] = 1.0f + (float)(i % 7);
            t->quantize(x, q, 4 * IMP_QK_K, with_imatrix ? qw : NULL);
            t->dequantize(q, y, 4 * IMP_QK_K);
        }
        t->quantize(x, q, 4 * IMP_QK_K, NULL);
        CHECKF(memcmp(q + 3 * t->block_bytes, ref, t->block_bytes) == 0,
               "%s: NaN in a block changed another block", t->name);
    }
}

static void test_unaligned(void) {
    enum { N = 2 * IMP_QK_K };
    float x[N], y[N], y_odd[N], act[N];
    uint8_t aligned[2 * sizeof(imp_block_q8_K)], act_q[2 * sizeof(imp_block_q8_K)];
    uint8_t odd_buf[2 * sizeof(imp_block_q8_K) + 1], act_odd[2 * sizeof(imp_block_q8_K) + 1];
    imp_test_rng rng = {55};
    for (int i = 0; i < N; i++) {
        x[i] = imp_test_rng_normal(&rng);
        act[i] = imp_test_rng_normal(&rng);
    }
    imp_quantize_q8_K(act, act_q, N, NULL);
    imp_quantize_q8_K(act, act_odd + 1, N, NULL);
    CHECK(memcmp(act_q, act_odd + 1, sizeof act_q) == 0);
    for (int ti = 0; ti < N_TYPES; ti++) {
        const kq_type *t = &k_types[ti];
        t->quantize(x, aligned, N, NULL);
        t->quantize(x, odd_buf + 1, N, NULL);
        t->dequantize(aligned, y, N);
        t->dequantize(odd_buf + 1, y_odd, N);
        float d0 = 0, d1 = 0;
        t->vec_dot(N, &d0, aligned, act_q);
        t->vec_dot(N, &d1, odd_buf + 1, act_odd + 1);
        CHECKF(memcmp(aligned, odd_buf + 1, 2 * t->block_bytes) == 0 &&
                   memcmp(y, y_odd, sizeof y) == 0 && d0 == d1,
               "%s: results differ at an odd address", t->name);
    }
}

/* ---- 7: byte identity with ggml's reference quantizers ----------------------------------------
 */

#define EXACT_COLS 4096
#define EXACT_ROWS 3

static uint64_t exact_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform on a 2^-22 grid in [-1, 1): exact in float, no rounding anywhere */
static float exact_unit(uint64_t *s) {
    return (float)((int32_t)(exact_next(s) >> 41) - (1 << 22)) * (1.0f / (1 << 22));
}

/* row 0: sums of 4 uniforms (bell-shaped, sigma ~1.15); row 1: the same / 64; row 2: with 1% x8
 * outliers. Sums of 4 grid values stay exact or round identically on any IEEE machine. */
static void exact_rows(float *x) {
    uint64_t s = 2024;
    for (int r = 0; r < EXACT_ROWS; r++) {
        for (int i = 0; i < EXACT_COLS; i++) {
            float v = exact_unit(&s) + exact_unit(&s) + exact_unit(&s) + exact_unit(&s);
            if (r == 1) v *= 1.0f / 64;
            if (r == 2 && exact_next(&s) % 100 == 0) v *= 8;
            x[r * EXACT_COLS + i] = v;
        }
    }
}

static void exact_imatrix(float *qw) { /* 1/16 .. 255/16 */
    uint64_t s = 77;
    for (int i = 0; i < EXACT_COLS; i++) qw[i] = (float)(1 + exact_next(&s) % 255) * (1.0f / 16);
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void test_ggml_bytes(void) {
    /* FNV-1a of ggml's quantized rows: [type][0 plain, 1 imatrix]; Q8_K takes no imatrix */
    static const uint64_t k_ggml_hash[N_TYPES][2] = {
        {0x524e4807bce66a72ull, 0xa029f2c3ce42d6d1ull}, /* Q2_K */
        {0xabbe801591b45ad8ull, 0x79ca12106ad7897cull}, /* Q3_K */
        {0x30de133f61f96f4cull, 0x3d4d29461cdf0635ull}, /* Q4_K */
        {0xf2bfb8a103e618a4ull, 0x6202eda4e2e16565ull}, /* Q5_K */
        {0x04912eef7f60a50eull, 0xe48596aae727ecbaull}, /* Q6_K */
        {0x5a033ebaa039e6bfull, 0},                     /* Q8_K */
    };
    float *x = malloc(sizeof(float) * EXACT_ROWS * EXACT_COLS), qw[EXACT_COLS];
    uint8_t *q = malloc(sizeof(imp_block_q8_K) * (EXACT_ROWS * EXACT_COLS / IMP_QK_K));
    exact_rows(x);
    exact_imatrix(qw);
    for (int ti = 0; ti < N_TYPES; ti++) {
        const kq_type *t = &k_types[ti];
        const size_t row_bytes = EXACT_COLS / IMP_QK_K * t->block_bytes;
        for (int imx = 0; imx < (ti < N_WEIGHT_TYPES ? 2 : 1); imx++) {
            for (int r = 0; r < EXACT_ROWS; r++)
                t->quantize(x + r * EXACT_COLS, q + r * row_bytes, EXACT_COLS, imx ? qw : NULL);
            uint64_t h = fnv1a(q, row_bytes * EXACT_ROWS);
            CHECKF(h == k_ggml_hash[ti][imx],
                   "%s%s: quantized bytes differ from llama.cpp's (hash 0x%016llx, ggml "
                   "0x%016llx); if the "
                   "change is a deliberate improvement, re-derive the RMSE bounds and this hash",
                   t->name, imx ? " with imatrix" : "", (unsigned long long)h,
                   (unsigned long long)k_ggml_hash[ti][imx]);
        }
    }
    free(x);
    free(q);
}

int main(void) {
    float *x = malloc(sizeof(float) * NELEM), *y = malloc(sizeof(float) * NELEM), qw[NCOL];
    uint8_t *q = malloc(sizeof(imp_block_q8_K) * (NELEM / IMP_QK_K));
    if (!x || !y || !q) imp_test_skip("out of memory");
    make_imatrix(qw);
    test_rmse(x, y, q, qw);
    test_vec_dot(x, y, q, qw);
    test_scale_packing();
    test_requantize(x, y, q);
    test_q8_K();
    test_degenerate();
    test_unaligned();
    test_ggml_bytes();
    free(x);
    free(y);
    free(q);
    return imp_test_finish("test_quant_k");
}
