/*
 * Sampler (src/engine/sampler.c). Every expectation is computed here independently, in double:
 * 1. Truncations: the survivors and probabilities of top-k (heap and quickselect paths, ties by
 *    id), top-p (small vector; a 3000-token vector for the partial-sort path), min-p, typical,
 *    and the chain's order (top-k before top-p, temperature after the truncations), checked by
 *    drawing and comparing the counts with a chi-square bound.
 * 2. Adjustments, measured exactly with greedy probes (bisection on a competitor's logit):
 *    logit bias, repeat penalty on positive and negative logits, frequency (count-weighted) and
 *    presence (once) penalties, their window, DRY's multiplier * base^(len - allowed) on the
 *    token that would extend a repeat, breakers limiting the repeat and exempting themselves
 *    (token texts from a small vocabulary written here).
 * 3. Greedy = argmax (ties: lowest id; NaN ignored), also on random vectors with ties, NaN and
 *    -inf next to top-k's survivors; all banned -> an error; seeds reproduce
 *    1000 draws and differ across seeds; reset reproduces; temperature sampling vs softmax(l/T)
 *    over 200k draws.
 * 4. Mirostat v2: tokens with surprise > mu never drawn, mu -= eta * (surprise - tau) after each
 *    draw, the most probable kept when nothing else is; Mirostat (v1): draws within the k the
 *    Zipf estimate gives, same mu update.
 * 5. Invalid parameters: IMP_ERR_INVALID_ARG with the parameter named.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sampler.h"
#include "gguf/gguf.h"
#include "testutil.h"
#include "tokenizer/tokenizer.h"

/* Params with every truncation and penalty off, temperature 1. */
static imp_sampler_params plain(void) {
    imp_sampler_params p = imp_sampler_params_default();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.typical_p = 1.0f;
    p.seed = 12345;
    return p;
}

static imp_sampler *make(const imp_sampler_params *p, int32_t n_vocab, const imp_vocab *v) {
    imp_sampler *s = NULL;
    imp_error err;
    imp_error_clear(&err);
    imp_status st = imp_sampler_create(p, n_vocab, v, &s, &err);
    CHECKF(st == IMP_OK && s, "create: %s", err.msg);
    return s;
}

/* Draws n_draw tokens into counts[n_vocab] (zeroed here). */
static void draw(imp_sampler *s, const float *logits, int32_t n_vocab, int n_draw, long *counts) {
    memset(counts, 0, (size_t)n_vocab * sizeof *counts);
    for (int i = 0; i < n_draw; i++) {
        int32_t t = -1;
        imp_error err;
        imp_status st = imp_sampler_sample(s, logits, &t, &err);
        if (st != IMP_OK || t < 0 || t >= n_vocab) {
            CHECKF(0, "sample failed: %s", err.msg);
            return;
        }
        counts[t]++;
    }
}

/* counts against expected probabilities want[n] (0: must never be drawn). A category with
 * E >= 5 must not exceed a loose chi-square bound (df + 6 sqrt(2 df) + 10: p < 1e-6). */
static void expect_dist(const long *counts, const double *want, int32_t n, const char *what) {
    long total = 0;
    for (int32_t i = 0; i < n; i++) total += counts[i];
    double x2 = 0;
    int df = -1;
    for (int32_t i = 0; i < n; i++) {
        if (want[i] <= 0) {
            CHECKF(counts[i] == 0, "%s: token %d drawn %ld times, expected never", what, i,
                   counts[i]);
            continue;
        }
        double e = want[i] * (double)total;
        x2 += ((double)counts[i] - e) * ((double)counts[i] - e) / e;
        df++;
    }
    double bound = df + 6 * sqrt(2.0 * (df > 0 ? df : 1)) + 10;
    CHECKF(x2 <= bound, "%s: chi-square %.1f > %.1f (df %d)", what, x2, bound, df);
}

/* want = softmax(l / t) over the tokens with keep[i], 0 elsewhere. */
static void softmax_subset(const double *l, const int *keep, int32_t n, double t, double *want) {
    double mx = -INFINITY, sum = 0;
    for (int32_t i = 0; i < n; i++)
        if (keep[i] && l[i] > mx) mx = l[i];
    for (int32_t i = 0; i < n; i++) {
        want[i] = keep[i] ? exp((l[i] - mx) / t) : 0;
        sum += want[i];
    }
    for (int32_t i = 0; i < n; i++) want[i] /= sum;
}

static void to_float(const double *l, float *f, int32_t n) {
    for (int32_t i = 0; i < n; i++) f[i] = (float)l[i];
}

/* ---- truncations -------------------------------------------------------------------------- */

static void test_top_k(void) {
    /* heap path: k = 3 of 10; ties broken by id (two 1.0s: ids 2 and 7 -> 2 stays) */
    const double l[10] = {0.5, -1.0, 1.0, 2.0, -3.0, 0.0, 1.5, 1.0, -0.5, 0.2};
    const int keep[10] = {0, 0, 1, 1, 0, 0, 1, 0, 0, 0};
    float f[10];
    double want[10];
    long counts[10];
    to_float(l, f, 10);
    imp_sampler_params p = plain();
    p.top_k = 3;
    imp_sampler *s = make(&p, 10, NULL);
    draw(s, f, 10, 100000, counts);
    softmax_subset(l, keep, 10, 1.0, want);
    expect_dist(counts, want, 10, "top-k 3 of 10");
    imp_sampler_free(s);

    /* all equal: top-k keeps the lowest ids */
    float eq[10] = {0};
    int keep4[10] = {1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    double l0[10] = {0};
    p.top_k = 4;
    s = make(&p, 10, NULL);
    draw(s, eq, 10, 40000, counts);
    softmax_subset(l0, keep4, 10, 1.0, want);
    expect_dist(counts, want, 10, "top-k ties");
    imp_sampler_free(s);

    /* Large k: the heap (k <= 1024) and the quickselect path (k > 1024) keep exactly the top k.
     * A huge temperature makes the draw almost uniform over the survivors (about 18 draws
     * each): nothing ranked k or later may show up, and the 20 ranked just inside must. */
    enum { N = 2000 };
    float *x = malloc(N * sizeof *x);
    long *cnt = malloc(N * sizeof *cnt);
    int *rank = malloc(N * sizeof *rank);
    imp_test_rng rng = {7};
    for (int i = 0; i < N; i++) x[i] = imp_test_rng_normal(&rng);
    x[100] = x[200];              /* a tie */
    for (int i = 0; i < N; i++) { /* rank by (logit desc, id asc), O(n^2) on purpose */
        int r = 0;
        for (int j = 0; j < N; j++) r += x[j] > x[i] || (x[j] == x[i] && j < i);
        rank[i] = r;
    }
    const int ks[2] = {600, 1100};
    for (int t = 0; t < 2; t++) {
        p = plain();
        p.top_k = ks[t];
        p.temperature = 1e6f;
        s = make(&p, N, NULL);
        draw(s, x, N, 18 * ks[t], cnt);
        int bad = 0, missing = 0;
        for (int i = 0; i < N; i++) {
            if (rank[i] >= ks[t] - 20 && rank[i] < ks[t]) missing += cnt[i] == 0;
            if (rank[i] >= ks[t]) bad += cnt[i] != 0;
        }
        CHECKF(bad == 0 && missing == 0, "top-k %d of %d: %d outside drawn, %d at the edge missed",
               ks[t], N, bad, missing);
        imp_sampler_free(s);
    }
    free(x);
    free(cnt);
    free(rank);
}

static void test_top_p(void) {
    /* p = .5 .2 .15 .1 .05; top_p .8: cumulative .5 .7 .85 -> three stay, renormalized */
    const double pr[5] = {0.2, 0.5, 0.05, 0.15, 0.1};
    double l[5], want[5];
    float f[5];
    long counts[5];
    for (int i = 0; i < 5; i++) l[i] = log(pr[i]);
    to_float(l, f, 5);
    const int keep[5] = {1, 1, 0, 1, 0};
    imp_sampler_params p = plain();
    p.top_p = 0.8f;
    imp_sampler *s = make(&p, 5, NULL);
    draw(s, f, 5, 100000, counts);
    softmax_subset(l, keep, 5, 1.0, want);
    expect_dist(counts, want, 5, "top-p .8");
    imp_sampler_free(s);

    /* top_p 0: only the most probable */
    p.top_p = 0.0f;
    s = make(&p, 5, NULL);
    draw(s, f, 5, 1000, counts);
    CHECKF(counts[1] == 1000, "top-p 0: the top token %ld of 1000", counts[1]);
    imp_sampler_free(s);

    /* 3000 tokens, no top-k: the partial sort grows past its first 256; survivors computed
     * here by a full sort. Huge temperature: every survivor appears, nothing else. */
    enum { N = 3000 };
    float *x = malloc(N * sizeof *x);
    double *px = malloc(N * sizeof *px);
    int *order = malloc(N * sizeof *order);
    long *cnt = malloc(N * sizeof *cnt);
    imp_test_rng rng = {11};
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < N; i++) {
        x[i] = 1.5f * imp_test_rng_normal(&rng);
        if (x[i] > mx) mx = x[i];
    }
    for (int i = 0; i < N; i++) sum += px[i] = exp(x[i] - mx);
    for (int i = 0; i < N; i++) {
        px[i] /= sum;
        order[i] = i;
    }
    for (int i = 1; i < N; i++) { /* insertion sort by probability, descending */
        int v = order[i], j = i;
        while (j > 0 && px[order[j - 1]] < px[v]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    const double top_p = 0.7;
    double cum = 0;
    int kept = 0;
    while (cum < top_p) cum += px[order[kept++]];
    CHECKF(kept > 256 && fabs(cum - top_p) > 1e-5 && fabs(cum - px[order[kept - 1]] - top_p) > 1e-5,
           "top-p test data: %d kept, cum %.7f (want > 256 and away from the cut)", kept, cum);
    p = plain();
    p.top_p = (float)top_p;
    p.temperature = 1e6f;
    s = make(&p, N, NULL);
    draw(s, x, N, 40 * kept, cnt);
    int bad = 0, missing = 0;
    for (int r = 0; r < N; r++) {
        if (r < kept)
            missing += cnt[order[r]] == 0;
        else
            bad += cnt[order[r]] != 0;
    }
    CHECKF(bad == 0 && missing == 0, "top-p .7 of %d: %d kept, %d outside drawn, %d missed", N,
           kept, bad, missing);
    imp_sampler_free(s);
    free(x);
    free(px);
    free(order);
    free(cnt);
}

static void test_min_p(void) {
    /* p = .5 .3 .1 .06 .04, min_p .1: keep p >= .05 -> the .04 goes */
    const double pr[5] = {0.04, 0.3, 0.5, 0.06, 0.1};
    const int keep[5] = {0, 1, 1, 1, 1};
    double l[5], want[5];
    float f[5];
    long counts[5];
    for (int i = 0; i < 5; i++) l[i] = log(pr[i]);
    to_float(l, f, 5);
    imp_sampler_params p = plain();
    p.min_p = 0.1f;
    imp_sampler *s = make(&p, 5, NULL);
    draw(s, f, 5, 100000, counts);
    softmax_subset(l, keep, 5, 1.0, want);
    expect_dist(counts, want, 5, "min-p .1");
    imp_sampler_free(s);

    /* the same through the top-k heap path (top_k 4 of 5 removes nothing min-p keeps) */
    p.top_k = 4;
    s = make(&p, 5, NULL);
    draw(s, f, 5, 100000, counts);
    expect_dist(counts, want, 5, "top-k 4 + min-p .1");
    imp_sampler_free(s);
}

/* Typical sampling's survivors computed from the definition. */
static void typical_expect(const double *pr, int32_t n, double typ, int *keep) {
    double h = 0, key[16];
    int idx[16];
    for (int32_t i = 0; i < n; i++) h -= pr[i] * log(pr[i]);
    for (int32_t i = 0; i < n; i++) {
        key[i] = fabs(-log(pr[i]) - h);
        idx[i] = i;
        keep[i] = 0;
    }
    for (int32_t i = 1; i < n; i++) {
        int v = idx[i], j = i;
        while (j > 0 && key[idx[j - 1]] > key[v]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
    double cum = 0;
    for (int32_t i = 0; i < n; i++) {
        keep[idx[i]] = 1;
        cum += pr[idx[i]];
        if (cum > typ) break;
    }
}

static void test_typical(void) {
    /* p = .4 .3 .2 .1: H = 1.2799; |-ln p - H| = .364 .076 .329 1.023; typical .45 keeps .3
     * and .2 (mass .5): the most probable token goes */
    const double pr[4] = {0.4, 0.3, 0.2, 0.1};
    double l[4], want[4];
    float f[4];
    long counts[4];
    int keep[4];
    for (int i = 0; i < 4; i++) l[i] = log(pr[i]);
    to_float(l, f, 4);
    typical_expect(pr, 4, 0.45, keep);
    CHECK(!keep[0] && keep[1] && keep[2] && !keep[3]);
    imp_sampler_params p = plain();
    p.typical_p = 0.45f;
    imp_sampler *s = make(&p, 4, NULL);
    draw(s, f, 4, 100000, counts);
    softmax_subset(l, keep, 4, 1.0, want);
    expect_dist(counts, want, 4, "typical .45");
    imp_sampler_free(s);

    /* a larger one: 12 random logits, typical .8 */
    const int n = 12;
    double pr2[12], l2[12], want2[12], sum = 0;
    float f2[12];
    long c2[12];
    int keep2[12];
    imp_test_rng rng = {3};
    for (int i = 0; i < n; i++) l2[i] = (double)(float)(1.2 * imp_test_rng_normal(&rng));
    for (int i = 0; i < n; i++) sum += pr2[i] = exp(l2[i]);
    for (int i = 0; i < n; i++) pr2[i] /= sum;
    typical_expect(pr2, n, 0.8, keep2);
    to_float(l2, f2, n);
    p.typical_p = 0.8f;
    s = make(&p, n, NULL);
    draw(s, f2, n, 100000, c2);
    softmax_subset(l2, keep2, n, 1.0, want2);
    expect_dist(c2, want2, n, "typical .8 of 12");
    imp_sampler_free(s);
}

static void test_chain_order(void) {
    /* p = .4 .3 .2 .1. top-k 3 renormalizes to .444 .333 .222; top-p .75 on those keeps two
     * (on the full distribution it would keep three). Temperature 2 comes after: the two are
     * drawn in proportion sqrt(.4) : sqrt(.3) (tempering first would have kept three). */
    const double pr[4] = {0.4, 0.3, 0.2, 0.1};
    const int keep[4] = {1, 1, 0, 0};
    double l[4], want[4];
    float f[4];
    long counts[4];
    for (int i = 0; i < 4; i++) l[i] = log(pr[i]);
    to_float(l, f, 4);
    imp_sampler_params p = plain();
    p.top_k = 3;
    p.top_p = 0.75f;
    p.temperature = 2.0f;
    imp_sampler *s = make(&p, 4, NULL);
    draw(s, f, 4, 100000, counts);
    softmax_subset(l, keep, 4, 2.0, want);
    expect_dist(counts, want, 4, "top-k 3 -> top-p .75 -> temperature 2");
    imp_sampler_free(s);

    /* the defaults on a small vector: top-k 40 (all 6), top-p .95, min-p .05, T .8 */
    const double pr6[6] = {0.45, 0.25, 0.15, 0.1, 0.035, 0.015};
    double l6[6], want6[6];
    float f6[6];
    long c6[6];
    for (int i = 0; i < 6; i++) l6[i] = log(pr6[i]);
    to_float(l6, f6, 6);
    /* top-p .93: cumulative .45 .7 .85 .95 -> 4 stay; min-p .05: p >= .0225 keeps those 4 */
    const int keep6[6] = {1, 1, 1, 1, 0, 0};
    p = imp_sampler_params_default();
    p.top_p = 0.93f;
    s = make(&p, 6, NULL);
    draw(s, f6, 6, 100000, c6);
    softmax_subset(l6, keep6, 6, 0.8, want6);
    expect_dist(c6, want6, 6, "defaults (top-p .93)");
    imp_sampler_free(s);
}

static void test_temperature(void) {
    const double l[8] = {1.0, 0.5, -0.25, 2.0, 0.0, -1.5, 1.25, 0.75};
    const int keep[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    double want[8];
    float f[8];
    long counts[8];
    to_float(l, f, 8);
    const double ts[3] = {0.7, 1.0, 1.8};
    for (int t = 0; t < 3; t++) {
        imp_sampler_params p = plain();
        p.temperature = (float)ts[t];
        p.seed = 99 + (uint64_t)t;
        imp_sampler *s = make(&p, 8, NULL);
        draw(s, f, 8, 200000, counts);
        softmax_subset(l, keep, 8, ts[t], want);
        char what[64];
        snprintf(what, sizeof what, "temperature %.1f", ts[t]);
        expect_dist(counts, want, 8, what);
        imp_sampler_free(s);
    }
}

/* ---- greedy, seeds ------------------------------------------------------------------------ */

static int32_t sample1(imp_sampler *s, const float *l, imp_status *st_out) {
    int32_t t = -1;
    imp_error err;
    imp_error_clear(&err);
    imp_status st = imp_sampler_sample(s, l, &t, &err);
    if (st_out)
        *st_out = st;
    else
        CHECKF(st == IMP_OK, "sample: %s", err.msg);
    return t;
}

static void test_greedy(void) {
    imp_sampler_params p = plain();
    p.temperature = 0.0f;
    imp_sampler *s = make(&p, 5, NULL);
    const float a[5] = {1, 3, 3, 2, -1};
    CHECK(sample1(s, a, NULL) == 1); /* tie: lowest id */
    const float b[5] = {NAN, 1, 0, NAN, 0.5f};
    CHECK(sample1(s, b, NULL) == 1);
    const float c[5] = {-INFINITY, -INFINITY, NAN, -INFINITY, -INFINITY};
    imp_status st;
    sample1(s, c, &st);
    CHECK(st == IMP_ERR_INVALID_ARG);
    imp_sampler_free(s);

    /* negative temperature is greedy too, and does not use the generator */
    p.temperature = -1.0f;
    s = make(&p, 5, NULL);
    const float d[5] = {0, 0, 0, 0.25f, 0.2f};
    for (int i = 0; i < 10; i++) CHECK(sample1(s, d, NULL) == 3);
    imp_sampler_free(s);

    /* all banned in sampling mode: an error, not a token */
    p = plain();
    imp_logit_bias ban[2] = {{0, -INFINITY}, {1, -INFINITY}};
    p.logit_bias = ban;
    p.n_logit_bias = 2;
    s = make(&p, 2, NULL);
    const float e[2] = {1, 2};
    sample1(s, e, &st);
    CHECK(st == IMP_ERR_INVALID_ARG);
    imp_sampler_free(s);
}

/* Random vectors with ties, NaN and -inf, sizes around the 32-wide blocks: greedy and top-k
 * (heap path; survivors seen through a near-uniform draw) against a reference ranking. */
static void test_random_select(void) {
    imp_test_rng rng = {77};
    const float vals[6] = {-2.0f, -0.5f, 0.0f, 0.25f, 1.0f, 1.5f};
    int bad_greedy = 0, bad_topk = 0;
    for (int trial = 0; trial < 60; trial++) {
        int32_t n = 6 + (int32_t)(imp_test_rng_u64(&rng) % 300);
        float *x = malloc((size_t)n * sizeof *x);
        int *rank = malloc((size_t)n * sizeof *rank);
        long *cnt = malloc((size_t)n * sizeof *cnt);
        int n_valid = 0;
        for (int32_t i = 0; i < n; i++) {
            uint64_t r = imp_test_rng_u64(&rng) % 10;
            x[i] = r == 0 ? NAN : r == 1 ? -INFINITY : vals[imp_test_rng_u64(&rng) % 6];
            n_valid += r > 1;
        }
        int32_t want = -1;
        for (int32_t i = 0; i < n; i++) {
            bool ok = !isnan(x[i]) && x[i] > -INFINITY;
            rank[i] = -1;
            if (!ok) continue;
            if (want < 0 || x[i] > x[want]) want = i;
            int r = 0;
            for (int32_t j = 0; j < n; j++)
                r += !isnan(x[j]) && x[j] > -INFINITY && (x[j] > x[i] || (x[j] == x[i] && j < i));
            rank[i] = r;
        }
        imp_sampler_params p = plain();
        p.temperature = 0;
        imp_sampler *s = make(&p, n, NULL);
        imp_status st;
        int32_t got = sample1(s, x, &st);
        bad_greedy += want < 0 ? st != IMP_ERR_INVALID_ARG : got != want;
        imp_sampler_free(s);
        if (n_valid >= 5) {
            p = plain();
            p.top_k = 5;
            p.temperature = 1e6f;
            s = make(&p, n, NULL);
            draw(s, x, n, 2000, cnt);
            for (int32_t i = 0; i < n; i++) {
                bool in = rank[i] >= 0 && rank[i] < 5;
                bad_topk += in ? cnt[i] == 0 : cnt[i] != 0;
            }
            imp_sampler_free(s);
        }
        free(x);
        free(rank);
        free(cnt);
    }
    CHECKF(bad_greedy == 0 && bad_topk == 0, "random vectors: %d greedy, %d top-k mismatches",
           bad_greedy, bad_topk);
}

static void test_seeds(void) {
    enum { N = 64, D = 1000 };
    float l[N];
    imp_test_rng rng = {5};
    for (int i = 0; i < N; i++) l[i] = imp_test_rng_normal(&rng);
    int32_t a[D], b[D], c[D], r[D];
    imp_sampler_params p = imp_sampler_params_default();
    p.seed = 42;
    imp_sampler *s1 = make(&p, N, NULL), *s2 = make(&p, N, NULL);
    p.seed = 43;
    imp_sampler *s3 = make(&p, N, NULL);
    for (int i = 0; i < D; i++) {
        a[i] = sample1(s1, l, NULL);
        b[i] = sample1(s2, l, NULL);
        c[i] = sample1(s3, l, NULL);
    }
    CHECK(!memcmp(a, b, sizeof a));
    int diff = 0;
    for (int i = 0; i < D; i++) diff += a[i] != c[i];
    CHECKF(diff > D / 10, "seed 42 vs 43: only %d of %d draws differ", diff, D);
    imp_sampler_reset(s1);
    for (int i = 0; i < D; i++) r[i] = sample1(s1, l, NULL);
    CHECK(!memcmp(a, r, sizeof a));
    imp_sampler_free(s1);
    imp_sampler_free(s2);
    imp_sampler_free(s3);
}

/* ---- exact adjustments via greedy probes --------------------------------------------------- */

typedef struct probe_case {
    imp_sampler_params p;
    const imp_vocab *vocab;
    int32_t n_vocab;
    const int32_t *hist;
    int n_hist;
} probe_case;

/* The logit `target` has after bias, penalties and DRY when its raw logit is `raw` and every
 * token but `rival` (raw logit v, searched) is -inf: greedy picks target iff its adjusted logit
 * is > v (or == v with target < rival). rival must not be adjusted itself. */
static double probe(const probe_case *pc, int32_t target, float raw, int32_t rival) {
    imp_sampler_params p = pc->p;
    p.temperature = 0;
    imp_sampler *s = make(&p, pc->n_vocab, pc->vocab);
    float *l = malloc((size_t)pc->n_vocab * sizeof *l);
    if (!s || !l) return NAN;
    for (int i = 0; i < pc->n_hist; i++) imp_sampler_accept(s, pc->hist[i]);
    double lo = -1000, hi = 1000; /* target wins at v = lo, loses at v = hi */
    for (int it = 0; it < 60; it++) {
        double v = 0.5 * (lo + hi);
        for (int32_t i = 0; i < pc->n_vocab; i++) l[i] = -INFINITY;
        l[target] = raw;
        l[rival] = (float)v;
        if (sample1(s, l, NULL) == target)
            lo = v;
        else
            hi = v;
    }
    free(l);
    imp_sampler_free(s);
    return 0.5 * (lo + hi);
}

#define CHECK_NEAR(got, want, what)                                                                \
    CHECKF(fabs((got) - (want)) <= 1e-4 * (1 + fabs(want)), "%s: got %.6f want %.6f", what,        \
           (double)(got), (double)(want))

static void test_bias_penalties(void) {
    probe_case pc = {plain(), NULL, 10, NULL, 0};
    imp_logit_bias bias[3] = {{2, 1.5f}, {3, -0.75f}, {2, 0.25f}}; /* two on token 2: summed */
    pc.p.logit_bias = bias;
    pc.p.n_logit_bias = 3;
    CHECK_NEAR(probe(&pc, 2, 1.0f, 9), 2.75, "bias +1.5 +.25");
    CHECK_NEAR(probe(&pc, 3, 1.0f, 9), 0.25, "bias -.75");
    CHECK_NEAR(probe(&pc, 4, 1.0f, 9), 1.0, "no bias");

    /* the ban, sampling: token 0 (the likeliest) never drawn */
    imp_sampler_params p = plain();
    imp_logit_bias ban = {0, -INFINITY};
    p.logit_bias = &ban;
    p.n_logit_bias = 1;
    imp_sampler *s = make(&p, 4, NULL);
    const float l[4] = {5, 1, 0.5f, 0};
    long counts[4];
    draw(s, l, 4, 20000, counts);
    CHECK(counts[0] == 0 && counts[1] > 0 && counts[2] > 0 && counts[3] > 0);
    imp_sampler_free(s);

    /* repeat penalty: divides positive logits, multiplies negative ones; once per token */
    const int32_t hist[8] = {4, 1, 2, 2, 5, 2, 3, 1};
    pc.p = plain();
    pc.hist = hist;
    pc.n_hist = 8;
    pc.p.repeat_penalty = 1.5f;
    pc.p.repeat_last_n = -1;
    CHECK_NEAR(probe(&pc, 2, 2.0f, 9), 2.0 / 1.5, "repeat on +2");
    CHECK_NEAR(probe(&pc, 2, -1.0f, 9), -1.5, "repeat on -1");
    CHECK_NEAR(probe(&pc, 6, 2.0f, 9), 2.0, "repeat: token not in history");

    /* frequency (count-weighted) and presence (once), after the repeat penalty */
    pc.p.repeat_penalty = 2.0f;
    pc.p.frequency_penalty = 0.5f;
    pc.p.presence_penalty = 0.25f;
    CHECK_NEAR(probe(&pc, 2, 3.0f, 9), 3.0 / 2 - 3 * 0.5 - 0.25, "repeat+freq+presence, 3x");
    CHECK_NEAR(probe(&pc, 1, 3.0f, 9), 3.0 / 2 - 2 * 0.5 - 0.25, "repeat+freq+presence, 2x");
    CHECK_NEAR(probe(&pc, 4, -0.5f, 9), -0.5 * 2 - 0.5 - 0.25, "repeat+freq+presence, 1x neg");

    /* the window: last 4 = {5, 2, 3, 1}: token 2 counts once, token 4 not at all */
    pc.p.repeat_last_n = 4;
    CHECK_NEAR(probe(&pc, 2, 3.0f, 9), 3.0 / 2 - 0.5 - 0.25, "window 4: token 2 once");
    CHECK_NEAR(probe(&pc, 4, 3.0f, 9), 3.0, "window 4: token 4 outside");
    pc.p.repeat_last_n = 0;
    CHECK_NEAR(probe(&pc, 2, 3.0f, 9), 3.0, "window 0: off");

    /* a window longer than the buffer's first allocation, and history past it */
    pc.p = plain();
    pc.p.presence_penalty = 1.0f;
    pc.p.repeat_last_n = 3000;
    int32_t *h = malloc(5000 * sizeof *h);
    for (int i = 0; i < 5000; i++) h[i] = 7;
    h[1999] = 3; /* 3001st from the end: outside */
    h[2000] = 4; /* 3000th from the end: inside */
    pc.hist = h;
    pc.n_hist = 5000;
    CHECK_NEAR(probe(&pc, 4, 1.0f, 9), 0.0, "window 3000: inside");
    CHECK_NEAR(probe(&pc, 3, 1.0f, 9), 1.0, "window 3000: outside");
    pc.p.repeat_last_n = 64;
    for (int i = 0; i < 5000; i++) h[i] = i % 50 + 10; /* ids 10..59 */
    h[4935] = 5;                                       /* 65th from the end */
    h[4936] = 6;                                       /* 64th */
    pc.n_vocab = 64;
    CHECK_NEAR(probe(&pc, 5, 1.0f, 63), 1.0, "window 64 after compaction: outside");
    CHECK_NEAR(probe(&pc, 6, 1.0f, 63), 0.0, "window 64 after compaction: inside");
    free(h);
}

/* ---- DRY ------------------------------------------------------------------------------------ */

/* Writes and loads an SPM vocabulary of the given token texts. */
static imp_vocab *small_vocab(const char *const *toks, int n) {
    const char *path = "test_sampler_vocab.gguf";
    imp_gguf_writer *w = imp_gguf_writer_new();
    imp_error err;
    imp_error_clear(&err);
    imp_vocab *v = NULL;
    if (!w) return NULL;
    imp_gguf_writer_set_str(w, "general.architecture", "llama");
    imp_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    imp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)n);
    imp_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false);
    imp_status st = imp_gguf_writer_write(w, path, NULL, NULL, &err);
    imp_gguf_writer_free(w);
    if (st == IMP_OK) st = imp_vocab_load_file(path, &v, &err);
    CHECKF(st == IMP_OK, "small vocab: %s", err.msg);
    remove(path);
    return v;
}

static void test_dry(void) {
    /* ids:                0      1    2    3    4    5    6    7      8      9    10 */
    const char *toks[] = {"<unk>", "a", "b", "c", "d", "e", "f", ":", "x*y", "g", "h"};
    imp_vocab *v = small_vocab(toks, 11);
    if (!v) return;
    const float mult = 0.8f, base = 1.75f;
    probe_case pc = {plain(), NULL, 11, NULL, 0};
    pc.p.dry_multiplier = mult;
    pc.p.dry_base = base;
    pc.p.dry_allowed_length = 2;

    /* a b c d e g a b c d: the tail "a b c d" occurred before, followed by e: length 4 */
    const int32_t h1[10] = {1, 2, 3, 4, 5, 9, 1, 2, 3, 4};
    pc.hist = h1;
    pc.n_hist = 10;
    CHECK_NEAR(probe(&pc, 5, 0.0f, 10), -mult * pow(base, 4 - 2), "DRY: e extends 4");
    CHECK_NEAR(probe(&pc, 9, 0.0f, 10), 0.0, "DRY: g extends nothing");
    CHECK_NEAR(probe(&pc, 1, 0.0f, 10), 0.0, "DRY: a extends nothing");
    pc.p.dry_allowed_length = 4;
    CHECK_NEAR(probe(&pc, 5, 0.0f, 10), -mult, "DRY: allowed 4, length 4 -> base^0");
    pc.p.dry_allowed_length = 5;
    CHECK_NEAR(probe(&pc, 5, 0.0f, 10), 0.0, "DRY: allowed 5, length 4 -> free");
    pc.p.dry_allowed_length = 2;
    pc.p.dry_penalty_last_n = 7; /* d e g a b c d: only "d" repeats (1 < allowed) */
    CHECK_NEAR(probe(&pc, 5, 0.0f, 10), 0.0, "DRY: window 7 sees a repeat of 1");
    pc.p.dry_penalty_last_n = 8; /* c d e g a b c d: "c d" repeats: length 2 */
    CHECK_NEAR(probe(&pc, 5, 0.0f, 10), -mult, "DRY: window 8 sees a repeat of 2");
    pc.p.dry_penalty_last_n = -1;

    /* self-overlapping: f f f f: the tail "f f f" also ends one earlier, so f extends 3 */
    const int32_t h2[4] = {6, 6, 6, 6};
    pc.hist = h2;
    pc.n_hist = 4;
    CHECK_NEAR(probe(&pc, 6, 0.0f, 10), -mult * pow(base, 3 - 2), "DRY: f f f f");

    /* two earlier occurrences: the longest wins (b c d -> e: 3; c d -> f: 2) */
    const int32_t h3[12] = {2, 3, 4, 5, 9, 3, 4, 6, 10, 2, 3, 4};
    pc.hist = h3;
    pc.n_hist = 12;
    CHECK_NEAR(probe(&pc, 5, 0.0f, 1), -mult * pow(base, 3 - 2), "DRY: b c d -> e");
    CHECK_NEAR(probe(&pc, 6, 0.0f, 1), -mult * pow(base, 2 - 2), "DRY: c d -> f");

    /* breakers (need the vocab): a b : c d g a b : c d. The repeat cannot reach back past the
     * newest ":" (id 7): limited to "c d" = 2 -> base^0; without the vocab it is 5 -> base^3 */
    const int32_t h4[11] = {1, 2, 7, 3, 4, 9, 1, 2, 7, 3, 4};
    pc.hist = h4;
    pc.n_hist = 11;
    CHECK_NEAR(probe(&pc, 9, 0.0f, 10), -mult * pow(base, 5 - 2), "DRY without breakers");
    pc.vocab = v;
    CHECK_NEAR(probe(&pc, 9, 0.0f, 10), -mult, "DRY: ':' limits the repeat to 2");
    /* a token whose text contains a breaker ("x*y" holds "*") is one too */
    const int32_t h5[11] = {1, 2, 8, 3, 4, 9, 1, 2, 8, 3, 4};
    pc.hist = h5;
    CHECK_NEAR(probe(&pc, 9, 0.0f, 10), -mult, "DRY: 'x*y' contains a breaker");
    /* no breakers configured: the full length again */
    pc.p.n_dry_breakers = 0;
    CHECK_NEAR(probe(&pc, 9, 0.0f, 10), -mult * pow(base, 5 - 2), "DRY: breakers off");
    pc.p = plain();
    pc.p.dry_multiplier = mult;
    pc.p.dry_base = base;
    pc.p.dry_allowed_length = 2;
    /* a breaker that would extend a repeat is not penalized: a b : g a b -> ":" extends 2 */
    const int32_t h6[6] = {1, 2, 7, 9, 1, 2};
    pc.hist = h6;
    pc.n_hist = 6;
    CHECK_NEAR(probe(&pc, 7, 0.0f, 10), 0.0, "DRY: the breaker itself is exempt");
    pc.vocab = NULL;
    CHECK_NEAR(probe(&pc, 7, 0.0f, 10), -mult, "DRY: ':' penalized without a vocab");
    /* custom breakers: "g" breaks; the tail after the newest g is "a b" */
    const char *custom[1] = {"g"};
    pc.vocab = v;
    pc.p.dry_breakers = custom;
    pc.p.n_dry_breakers = 1;
    pc.hist = h1; /* a b c d e g a b c d: after the newest g: a b c d (4) -> still 4 */
    pc.n_hist = 10;
    CHECK_NEAR(probe(&pc, 5, 0.0f, 10), -mult * pow(base, 2), "DRY: custom breaker behind");
    /* a b g c d e a b g c d: with "g" a breaker the repeat is "c d" (2), not 5 */
    const int32_t h7[11] = {1, 2, 9, 3, 4, 5, 1, 2, 9, 3, 4};
    pc.hist = h7;
    pc.n_hist = 11;
    CHECK_NEAR(probe(&pc, 5, 0.0f, 10), -mult, "DRY: custom breaker cuts");
    pc.p.dry_breakers = NULL;
    pc.p.n_dry_breakers = 0;
    CHECK_NEAR(probe(&pc, 5, 0.0f, 10), -mult * pow(base, 3), "DRY: ... and without it");

    /* the exponent is clamped (at log(FLT_MAX) / log(base) = 12 for base 1000) so the penalty
     * stays finite: 1 2 1 2 ... (200 tokens), allowed 0: token 1 would extend a repeat of 198,
     * penalized by 1000^12 = 1e36, not infinity */
    imp_sampler_params q = plain();
    q.temperature = 0;
    q.dry_multiplier = 1.0f;
    q.dry_base = 1000.0f;
    q.dry_allowed_length = 0;
    imp_sampler *s = make(&q, 11, NULL);
    for (int i = 0; i < 200; i++) imp_sampler_accept(s, 1 + i % 2);
    float l[11];
    for (int i = 0; i < 11; i++) l[i] = -INFINITY;
    l[1] = 0;
    l[10] = -2e36f;
    CHECK(sample1(s, l, NULL) == 1); /* 0 - 1e36 > -2e36 */
    l[10] = -0.5e36f;
    CHECK(sample1(s, l, NULL) == 10); /* 0 - 1e36 < -0.5e36 */
    imp_sampler_free(s);
    imp_vocab_free(v);
}

/* ---- the chain's definition (backend/sampling.h), shared with backends' sample ops ----------- */

/* The exp every side uses: within 2 ulp of exp, 1 at 0, 0 for -inf / NaN / far below. */
static void test_sample_exp(void) {
    double worst = 0;
    for (float x = -80.0f; x <= 0.0f; x += 0.0009765625f * 7.3f) {
        const double want = exp((double)x), got = imp_sample_exp(x);
        if (fabs(got - want) / want > worst) worst = fabs(got - want) / want;
    }
    CHECKF(worst < 2.5e-7, "imp_sample_exp: relative error %.3g", worst);
    CHECK(imp_sample_exp(0.0f) == 1.0f && imp_sample_exp(-0.0f) == 1.0f);
    CHECK(imp_sample_exp(-INFINITY) == 0.0f && imp_sample_exp(NAN) == 0.0f);
    CHECK(imp_sample_exp(-100.0f) == 0.0f);
    /* V masses of at most 2^bits fit below 2^63, and bits is the largest that does */
    const int64_t vs[6] = {1, 2, 7, 32000, 262144, INT32_MAX};
    for (int i = 0; i < 6; i++) {
        const int b = imp_sample_mass_bits(vs[i]);
        const double cap = ldexp((double)vs[i], b), cap2 = ldexp((double)vs[i], b + 1);
        CHECKF(cap <= 0x1p62 && cap2 > 0x1p62, "mass bits for V=%lld: %d", (long long)vs[i], b);
    }
    CHECK(imp_sample_mass(1.5f, 1.5f, 40) == (uint64_t)1 << 40);
    CHECK(imp_sample_mass(INFINITY, INFINITY, 40) == (uint64_t)1 << 40);
    CHECK(imp_sample_mass(3.0f, INFINITY, 40) == 0);
    CHECK(imp_sample_mass(-INFINITY, 0.0f, 40) == 0);
    CHECK(imp_sample_top_p_target(0.0f, 100) == 0 && imp_sample_top_p_target(0.5f, 101) == 51);
    CHECK(imp_sample_top_p_target(0.99999994f, (uint64_t)1 << 62) <= (uint64_t)1 << 62);
    CHECK(imp_sample_draw_target(0.0, 10) == 1 && imp_sample_draw_target(0.55, 10) == 6);
    CHECK(imp_sample_draw_target(0x1.fffffffffffffp-1, 10) == 10);
    CHECK(imp_sample_draw_target(0x1.fffffffffffffp-1, (uint64_t)1 << 62) ==
          ((uint64_t)1 << 62) - 511);
}

static const float *g_ref_x; /* qsort's comparators read the logits through it */
static int ref_before(const void *a, const void *b) {
    const int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (g_ref_x[i] != g_ref_x[j]) return g_ref_x[i] > g_ref_x[j] ? -1 : 1;
    return i < j ? -1 : 1;
}
static int ref_by_id(const void *a, const void *b) {
    const int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    return i < j ? -1 : i > j;
}

/* The chain exactly as backend/sampling.h states it: a full sort, then each step in turn.
 * ord: scratch [V]. -1 when no logit is above -inf. */
static int32_t chain_ref(const float *x, int32_t V, const imp_sample_params *p, int32_t *ord) {
    int32_t n = 0;
    for (int32_t i = 0; i < V; i++)
        if (x[i] > -INFINITY) ord[n++] = i;
    if (n == 0) return -1;
    g_ref_x = x;
    qsort(ord, (size_t)n, sizeof *ord, ref_before);
    if (!(p->temperature > 0)) return ord[0];
    const bool topk = p->top_k > 0 && p->top_k < V;
    if (topk && p->top_k < n) n = p->top_k;
    const float mx = x[ord[0]];
    const int bits = imp_sample_mass_bits(V);
    if (p->top_p < 1) {
        uint64_t S = 0, cum = 0;
        for (int32_t i = 0; i < n; i++) S += imp_sample_mass(x[ord[i]], mx, bits);
        const uint64_t T = imp_sample_top_p_target(p->top_p, S);
        for (int32_t i = 0; i < n; i++) {
            cum += imp_sample_mass(x[ord[i]], mx, bits);
            if (cum >= T) {
                n = i + 1;
                break;
            }
        }
    }
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++)
        if (p->min_p_log == -INFINITY || x[ord[i]] >= mx + p->min_p_log) ord[m++] = ord[i];
    if (!topk && !(p->top_p < 1)) qsort(ord, (size_t)m, sizeof *ord, ref_by_id);
    const float t = p->temperature, mxt = mx / t;
    uint64_t S = 0, cum = 0;
    for (int32_t i = 0; i < m; i++) S += imp_sample_mass(x[ord[i]] / t, mxt, bits);
    const uint64_t T = imp_sample_draw_target(p->r, S);
    for (int32_t i = 0; i < m; i++) {
        cum += imp_sample_mass(x[ord[i]] / t, mxt, bits);
        if (cum >= T) return ord[i];
    }
    return -2; /* not reached */
}

/* Random logits of one of several kinds: normal, flat, with exact ties, many -inf and some NaN,
 * a few finite among -inf, two +inf, all -inf. */
static void chain_logits(imp_test_rng *rng, float *x, int32_t V, int kind) {
    for (int32_t i = 0; i < V; i++) {
        const float v = imp_test_rng_normal(rng);
        const uint64_t u = imp_test_rng_u64(rng) % 100;
        switch (kind) {
        case 0:
            x[i] = 2.5f * v;
            break;
        case 1:
            x[i] = 0.3f * v;
            break;
        case 2:
            x[i] = roundf(4 * v) / 4;
            break;
        case 3:
            x[i] = u < 45 ? -INFINITY : u < 50 ? NAN : 2 * v;
            break;
        case 4:
            x[i] = -INFINITY;
            break;
        case 5:
            x[i] = 2 * v;
            break;
        default:
            x[i] = u < 90 ? -INFINITY : NAN;
            break;
        }
    }
    if (kind == 4)
        for (int j = 0; j < 12; j++)
            x[imp_test_rng_u64(rng) % (uint64_t)V] = roundf(imp_test_rng_normal(rng));
    if (kind == 5)
        for (int j = 0; j < 2; j++) x[imp_test_rng_u64(rng) % (uint64_t)V] = INFINITY;
}

/* imp_sampler_sample_r (heap top-k, quickselect top-k, the top-p histogram and partial-sort
 * paths, min-p, temperature, the draw) picks exactly chain_ref's token, and
 * imp_sampler_prepare hands out the parameters the chain reads. */
static void test_chain_definition(void) {
    const int32_t vs[7] = {1, 2, 7, 40, 300, 1500, 3000};
    const float temps[4] = {0.0f, 0.7f, 1.5f, 1e-30f};
    const float tps[4] = {0.0f, 0.5f, 0.95f, 1.0f};
    const float mps[3] = {0.0f, 0.05f, 1.0f};
    imp_test_rng rng = {2024};
    int cases = 0, bad = 0;
    for (int vi = 0; vi < 7; vi++) {
        const int32_t V = vs[vi];
        const int32_t ks[6] = {0, 1, 5, V > 1 ? V - 1 : 1, V, 1100};
        float *x = malloc((size_t)V * sizeof *x);
        int32_t *ord = malloc((size_t)V * sizeof *ord);
        for (int kind = 0; kind < 7; kind++) {
            chain_logits(&rng, x, V, kind);
            for (int ti = 0; ti < 4; ti++)
                for (int ki = 0; ki < 6; ki++)
                    for (int pi = 0; pi < 4; pi++)
                        for (int mi = 0; mi < 3; mi++) {
                            if (ti == 0 && (ki || pi || mi)) continue;
                            imp_sampler_params sp = plain();
                            sp.temperature = temps[ti];
                            sp.top_k = ks[ki];
                            sp.top_p = tps[pi];
                            sp.min_p = mps[mi];
                            imp_sampler *s = make(&sp, V, NULL);
                            imp_sample_params p;
                            CHECK(s && imp_sampler_prepare(s, &p));
                            if (!s) continue;
                            CHECK(p.temperature == sp.temperature && p.top_k == sp.top_k &&
                                  p.top_p == sp.top_p);
                            CHECK(mps[mi] > 0 ? p.min_p_log == logf(mps[mi])
                                              : p.min_p_log == -INFINITY);
                            for (int ri = 0; ri < 4; ri++) {
                                p.r = ri == 0   ? 0.0
                                      : ri == 1 ? 0x1.fffffffffffffp-1
                                                : imp_test_rng_u64(&rng) * 0x1p-64;
                                int32_t got = -1;
                                imp_error err;
                                const imp_status st = imp_sampler_sample_r(s, x, p.r, &got, &err);
                                const int32_t want = chain_ref(x, V, &p, ord);
                                cases++;
                                if ((st == IMP_OK ? got : -1) != want) {
                                    if (bad++ < 10)
                                        fprintf(stderr,
                                                "  chain V=%d kind %d T=%g k=%d top_p=%g min_p=%g "
                                                "r=%.17g: sampler %d, definition %d\n",
                                                V, kind, (double)sp.temperature, sp.top_k,
                                                (double)sp.top_p, (double)sp.min_p, p.r,
                                                st == IMP_OK ? got : -1, want);
                                }
                            }
                            imp_sampler_free(s);
                        }
        }
        free(x);
        free(ord);
    }
    CHECKF(bad == 0, "the sampler left the chain's definition in %d of %d cases", bad, cases);
}

/* prepare + sample_r replays imp_sampler_sample's choices (the same generator draws); prepare
 * refuses what only the host sampler runs; sample_r checks r. */
static void test_prepare(void) {
    enum { N = 500, D = 300 };
    float *l = malloc(N * sizeof *l);
    imp_test_rng rng = {31};
    for (int i = 0; i < N; i++) l[i] = 2 * imp_test_rng_normal(&rng);
    imp_sampler_params cfg[3] = {imp_sampler_params_default(), plain(), plain()};
    cfg[1].top_p = 0.9f;
    cfg[2].temperature = 0; /* greedy: no draws */
    for (int c = 0; c < 3; c++) {
        cfg[c].seed = 77;
        imp_sampler *a = make(&cfg[c], N, NULL), *b = make(&cfg[c], N, NULL);
        int same = 0;
        for (int i = 0; i < D; i++) {
            imp_sample_params p;
            int32_t ta = -1, tb = -2;
            imp_error err;
            if (imp_sampler_sample(a, l, &ta, &err) == IMP_OK && imp_sampler_prepare(b, &p) &&
                imp_sampler_sample_r(b, l, p.r, &tb, &err) == IMP_OK)
                same += ta == tb;
            if (c == 2) CHECK(p.r == 0.0);
        }
        CHECKF(same == D, "config %d: prepare + sample_r matched %d of %d draws", c, same, D);
        imp_sampler_free(a);
        imp_sampler_free(b);
    }
    /* refused: bias, penalties, DRY, typical, Mirostat; greedy with Mirostat set is fine */
    imp_logit_bias bias = {3, 1.0f};
    imp_sampler_params r[5];
    for (int i = 0; i < 5; i++) r[i] = plain();
    r[0].logit_bias = &bias;
    r[0].n_logit_bias = 1;
    r[1].repeat_penalty = 1.1f;
    r[2].dry_multiplier = 0.8f;
    r[3].typical_p = 0.9f;
    r[4].mirostat = 2;
    for (int i = 0; i < 5; i++) {
        imp_sampler *s = make(&r[i], N, NULL);
        imp_sample_params p;
        memset(&p, 0x5a, sizeof p);
        const imp_sample_params before = p;
        CHECKF(!imp_sampler_prepare(s, &p) && !memcmp(&p, &before, sizeof p), "config %d accepted",
               i);
        imp_sampler_free(s);
    }
    r[4].temperature = 0;
    imp_sampler *s = make(&r[4], N, NULL);
    imp_sample_params p;
    CHECK(imp_sampler_prepare(s, &p) && p.temperature == 0);
    int32_t t;
    imp_error err;
    CHECK(imp_sampler_sample_r(s, l, 1.0, &t, &err) == IMP_ERR_INVALID_ARG);
    CHECK(imp_sampler_sample_r(s, l, -0.5, &t, &err) == IMP_ERR_INVALID_ARG);
    CHECK(imp_sampler_sample_r(s, l, NAN, &t, &err) == IMP_ERR_INVALID_ARG);
    imp_sampler_free(s);
    free(l);
}

/* ---- Mirostat ------------------------------------------------------------------------------ */

static void test_mirostat2(void) {
    /* p = .5 .25 .125 .0625 .0625: surprises 1 2 3 4 4 bits */
    const double pr[5] = {0.5, 0.25, 0.125, 0.0625, 0.0625};
    double l[5];
    float f[5];
    long counts[5];
    for (int i = 0; i < 5; i++) l[i] = log(pr[i]);
    to_float(l, f, 5);

    /* eta 0: mu stays 2 tau = 3.5: the two 4-bit tokens never come */
    imp_sampler_params p = plain();
    p.mirostat = 2;
    p.mirostat_tau = 1.75f;
    p.mirostat_eta = 0.0f;
    imp_sampler *s = make(&p, 5, NULL);
    CHECK(fabsf(imp_sampler_mirostat_mu(s) - 3.5f) < 1e-6f);
    draw(s, f, 5, 100000, counts);
    const int keep[5] = {1, 1, 1, 0, 0};
    double want[5];
    softmax_subset(l, keep, 5, 1.0, want);
    expect_dist(counts, want, 5, "mirostat v2, mu 3.5");
    imp_sampler_free(s);

    /* tau 0: mu 0 keeps nothing but the most probable */
    p.mirostat_tau = 0.0f;
    s = make(&p, 5, NULL);
    draw(s, f, 5, 1000, counts);
    CHECK(counts[0] == 1000);
    imp_sampler_free(s);

    /* eta .1: after each draw mu' = mu - eta * (-log2 p'(t) - tau), p' renormalized over the
     * tokens with surprise <= mu (steps with mu within 1e-4 of a cut are not judged) */
    p.mirostat_tau = 1.75f;
    p.mirostat_eta = 0.1f;
    p.temperature = 1.0f;
    s = make(&p, 5, NULL);
    int judged = 0, ok_tok = 0, ok_mu = 0;
    for (int step = 0; step < 500; step++) {
        double mu = imp_sampler_mirostat_mu(s);
        int32_t t = sample1(s, f, NULL);
        double mu2 = imp_sampler_mirostat_mu(s);
        double surprise[5], mass = 0;
        int near = 0;
        for (int i = 0; i < 5; i++) {
            surprise[i] = -log2(pr[i]);
            near |= fabs(surprise[i] - mu) < 1e-4;
            if (surprise[i] <= mu || i == 0) mass += pr[i];
        }
        if (near) continue;
        judged++;
        bool allowed = t == 0 || surprise[t] <= mu;
        ok_tok += allowed;
        double want_mu = mu - 0.1 * (-log2(pr[t] / mass) - 1.75);
        ok_mu += fabs(mu2 - want_mu) < 1e-4;
        if (!allowed || fabs(mu2 - want_mu) >= 1e-4)
            fprintf(stderr, "  step %d: mu %.6f token %d mu' %.6f want %.6f\n", step, mu, t, mu2,
                    want_mu);
    }
    CHECKF(judged > 400 && ok_tok == judged && ok_mu == judged,
           "mirostat v2 updates: %d judged, %d tokens ok, %d mu ok", judged, ok_tok, ok_mu);
    imp_sampler_reset(s);
    CHECK(fabsf(imp_sampler_mirostat_mu(s) - 3.5f) < 1e-6f);
    imp_sampler_free(s);
}

static void test_mirostat1(void) {
    /* Zipf p_i ~ (i + 1)^-1.2 over 1000 tokens: the estimate s = 1.2 exactly, so
     * k = (e 2^mu / (1 - N^-e))^(1/s) with e = .2, N = 1000 */
    enum { N = 1000 };
    float *f = malloc(N * sizeof *f);
    double *pr = malloc(N * sizeof *pr), sum = 0;
    for (int i = 0; i < N; i++) {
        f[i] = (float)(-1.2 * log(i + 1.0));
        sum += pr[i] = exp((double)f[i]);
    }
    for (int i = 0; i < N; i++) pr[i] /= sum;
    imp_sampler_params p = plain();
    p.mirostat = 1;
    p.mirostat_tau = 3.0f;
    p.mirostat_eta = 0.1f;
    imp_sampler *s = make(&p, N, NULL);
    int judged = 0, ok = 0;
    for (int step = 0; step < 300; step++) {
        double mu = imp_sampler_mirostat_mu(s);
        double kf = pow(0.2 * pow(2, mu) / (1 - pow(N, -0.2)), 1 / 1.2);
        int32_t t = sample1(s, f, NULL);
        double mu2 = imp_sampler_mirostat_mu(s);
        if (fabs(kf - floor(kf + 0.5)) < 1e-3 || kf < 1.5) continue;
        int k = kf >= N ? N : (int)kf;
        double mass = 0;
        for (int i = 0; i < k; i++) mass += pr[i];
        judged++;
        double want_mu = mu - 0.1 * (-log2(pr[t] / mass) - 3.0);
        bool good = t < k && fabs(mu2 - want_mu) < 1e-3;
        ok += good;
        if (!good)
            fprintf(stderr, "  v1 step %d: mu %.5f k %d token %d mu' %.5f want %.5f\n", step, mu, k,
                    t, mu2, want_mu);
    }
    CHECKF(judged > 100 && ok == judged, "mirostat v1: %d judged, %d ok", judged, ok);
    imp_sampler_free(s);
    free(f);
    free(pr);
}

/* ---- parameters ----------------------------------------------------------------------------- */

static void expect_bad(const imp_sampler_params *p, int32_t n_vocab, const char *name) {
    imp_sampler *s = (imp_sampler *)1;
    imp_error err;
    imp_error_clear(&err);
    imp_status st = imp_sampler_create(p, n_vocab, NULL, &s, &err);
    CHECKF(st == IMP_ERR_INVALID_ARG && s == NULL && strstr(err.msg, name),
           "%s: status %d, message '%s'", name, st, err.msg);
}

static void test_params(void) {
    imp_sampler_params d = imp_sampler_params_default();
    CHECK(d.temperature == 0.8f && d.top_k == 40 && d.top_p == 0.95f && d.min_p == 0.05f);
    CHECK(d.typical_p == 1.0f && d.repeat_penalty == 1.0f && d.repeat_last_n == 64);
    CHECK(d.dry_multiplier == 0 && d.dry_base == 1.75f && d.dry_allowed_length == 2);
    CHECK(d.dry_penalty_last_n == -1 && d.mirostat == 0 && d.mirostat_tau == 5.0f);
    CHECK(d.mirostat_eta == 0.1f && d.n_dry_breakers == 4 && !strcmp(d.dry_breakers[0], "\n"));
    imp_sampler *s = NULL;
    imp_error err;
    CHECK(imp_sampler_create(NULL, 100, NULL, &s, &err) == IMP_OK && s);
    imp_sampler_free(s);

    imp_sampler_params p;
#define BAD_CASE(field, value, name)                                                               \
    do {                                                                                           \
        p = imp_sampler_params_default();                                                          \
        p.field = value;                                                                           \
        expect_bad(&p, 100, name);                                                                 \
    } while (0)
    BAD_CASE(temperature, NAN, "temperature");
    BAD_CASE(temperature, INFINITY, "temperature");
    BAD_CASE(top_p, -0.1f, "top_p");
    BAD_CASE(top_p, NAN, "top_p");
    BAD_CASE(min_p, 1.5f, "min_p");
    BAD_CASE(min_p, NAN, "min_p");
    BAD_CASE(typical_p, -1.0f, "typical_p");
    BAD_CASE(repeat_penalty, 0.0f, "repeat_penalty");
    BAD_CASE(repeat_penalty, NAN, "repeat_penalty");
    BAD_CASE(repeat_last_n, -2, "repeat_last_n");
    BAD_CASE(frequency_penalty, NAN, "frequency_penalty");
    BAD_CASE(presence_penalty, INFINITY, "presence_penalty");
    BAD_CASE(dry_multiplier, -1.0f, "dry_multiplier");
    BAD_CASE(dry_allowed_length, -1, "dry_allowed_length");
    BAD_CASE(dry_penalty_last_n, -5, "dry_penalty_last_n");
    BAD_CASE(mirostat, 3, "mirostat");
    BAD_CASE(n_logit_bias, -1, "n_logit_bias");
    BAD_CASE(n_logit_bias, 2, "n_logit_bias"); /* with logit_bias NULL */
    BAD_CASE(n_dry_breakers, -1, "n_dry_breakers");
    p = imp_sampler_params_default();
    p.dry_multiplier = 1.0f;
    p.dry_base = 0.5f;
    expect_bad(&p, 100, "dry_base");
    p = imp_sampler_params_default();
    p.mirostat = 2;
    p.mirostat_tau = NAN;
    expect_bad(&p, 100, "mirostat_tau");
    p.mirostat_tau = 5;
    p.mirostat_eta = -1;
    expect_bad(&p, 100, "mirostat_eta");
    imp_logit_bias b = {100, 1.0f};
    p = imp_sampler_params_default();
    p.logit_bias = &b;
    p.n_logit_bias = 1;
    expect_bad(&p, 100, "logit_bias[0].token");
    b.token = -1;
    expect_bad(&p, 100, "logit_bias[0].token");
    b.token = 5;
    b.bias = NAN;
    expect_bad(&p, 100, "logit_bias[0].bias");
    b.bias = INFINITY;
    expect_bad(&p, 100, "logit_bias[0].bias");
    const char *br[2] = {"x", ""};
    p = imp_sampler_params_default();
    p.dry_breakers = br;
    p.n_dry_breakers = 2;
    expect_bad(&p, 100, "dry_breakers[1]");
    br[1] = NULL;
    expect_bad(&p, 100, "dry_breakers[1]");
    p = imp_sampler_params_default();
    expect_bad(&p, 0, "n_vocab");
    CHECK(imp_sampler_create(&p, 10, NULL, NULL, &err) == IMP_ERR_INVALID_ARG);
    s = make(&p, 10, NULL);
    int32_t t;
    float l[10] = {0};
    CHECK(imp_sampler_sample(s, NULL, &t, &err) == IMP_ERR_INVALID_ARG);
    CHECK(imp_sampler_sample(s, l, NULL, &err) == IMP_ERR_INVALID_ARG);
    imp_sampler_free(s);
    imp_sampler_free(NULL);
#undef BAD_CASE
}

int main(void) {
    test_params();
    test_top_k();
    test_top_p();
    test_min_p();
    test_typical();
    test_chain_order();
    test_temperature();
    test_greedy();
    test_random_select();
    test_seeds();
    test_bias_penalties();
    test_dry();
    test_sample_exp();
    test_chain_definition();
    test_prepare();
    test_mirostat2();
    test_mirostat1();
    return imp_test_finish("test_sampler");
}
