/*
 * imp-cli --model M --bench [--bench-pp N] [--max-tokens N] [--bench-reps R] [--threads T]
 *
 * llama-bench-style rows: ppN (prompt processing: N tokens from an empty cache in one call) and
 * tgN (generation: N single-token steps after one token), each as mean ± standard deviation of
 * tokens per second over R repetitions, after one warm-up. Tokens are fixed pseudo-random ids
 * (speed does not depend on them); no sampling is timed. In the same run it measures the
 * ceiling decode is bound by -- the memory read bandwidth of the device the model runs on (the
 * GPU's HBM, or the host with the same thread count) -- and reports decode's effective
 * bandwidth (weight bytes read per token x tokens/s) as a fraction of it.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/device.h"
#include "base/threads.h"
#include "generate.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- memory read bandwidth ------------------------------------------------------------------ */

typedef struct {
    const uint64_t *p;
    uint64_t sums[256]; /* one per range, so the reads cannot be optimized away */
} bw_job;

static void bw_read(void *ctx, int64_t b, int64_t e, int ith) {
    bw_job *j = ctx;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t i = b * 4; i + 4 <= e * 4; i += 4) {
        s0 += j->p[i];
        s1 += j->p[i + 1];
        s2 += j->p[i + 2];
        s3 += j->p[i + 3];
    }
    j->sums[ith & 255] += s0 + s1 + s2 + s3;
}

/* Best of 5 passes over a 512 MiB buffer split across threads, in GB/s (0 if it cannot run). */
static double read_bandwidth(int threads) {
    const size_t bytes = (size_t)512 << 20, n = bytes / 8;
    uint64_t *buf = malloc(bytes);
    if (!buf) return 0.0;
    for (size_t i = 0; i < n; i++) buf[i] = i;
    if (threads < 1) threads = 1;
    if (threads > 256) threads = 256;
    bw_job j = {.p = buf};
    double best = 0.0;
    for (int pass = 0; pass < 5; pass++) {
        const double t0 = now_s();
        imp_parallel_for(threads, (int64_t)(n / 4), bw_read, &j); /* items: groups of 4 words */
        const double gbs = (double)bytes / (now_s() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    uint64_t sink = 0;
    for (int t = 0; t < 256; t++) sink += j.sums[t];
    free(buf);
    if (sink == 42) fputc(' ', stderr); /* keep the reads */
    return best;
}

/* ---- runs ------------------------------------------------------------------------------------ */

static void stats(const double *v, int n, double *mean, double *sd) {
    double s = 0.0, s2 = 0.0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) s2 += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(s2 / (n - 1)) : 0.0;
}

/* Tokens per second of one ppN or tgN run; negative on failure. */
static double run_once(ImpContext ctx, const int32_t *toks, int n, bool tg) {
    imp_context_reset(ctx);
    double t0 = now_s();
    if (!tg) {
        if (imp_prefill(ctx, toks, (size_t)n) != IMP_OK) return -1.0;
        return n / (now_s() - t0);
    }
    if (imp_prefill(ctx, toks, 1) != IMP_OK) return -1.0;
    t0 = now_s();
    for (int i = 1; i <= n; i++) {
        if (imp_prefill(ctx, &toks[i], 1) != IMP_OK) return -1.0;
    }
    return n / (now_s() - t0);
}

int imp_cli_bench(cli_gen_opts *o) {
    ImpModel model = imp_cli_load(o->model, o->quiet);
    if (!model) return 1;
    ImpModelInfo info;
    imp_model_info(model, &info);
    const int pp = o->bench_pp, tg = o->gen.max_tokens, reps = o->bench_reps;
    ImpConfig cfg = imp_cli_context_config(o);
    cfg.max_seq_len = (pp > tg + 1 ? pp : tg + 1) + 16;
    if (pp > cfg.max_batch) cfg.max_batch = pp;
    ImpContext ctx;
    if (imp_context_create(model, &cfg, &ctx) != IMP_OK) {
        imp_model_free(model);
        return 1;
    }
    const int n_tok = (pp > tg + 1 ? pp : tg + 1);
    int32_t *toks = malloc((size_t)n_tok * sizeof *toks);
    double *v = malloc((size_t)(reps + 1) * sizeof *v);
    int rc = toks && v ? 0 : 1;
    uint64_t s = 12345;
    for (int i = 0; i < n_tok && toks; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (int32_t)((s >> 33) % (uint64_t)info.n_vocab);
    }
    const int threads = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    const int32_t dev = imp_context_device(ctx);
    char backend[32];
    if (dev >= 0) {
        snprintf(backend, sizeof backend, "cuda:%d", (int)dev);
    } else {
        snprintf(backend, sizeof backend, "cpu");
    }
    printf("| model | size | params | backend | threads | test | t/s |\n");
    printf("| --- | ---: | ---: | --- | ---: | --- | ---: |\n");
    double tg_mean = 0.0;
    for (int which = 0; which < 2 && rc == 0; which++) {
        const bool is_tg = which == 1;
        const int n = is_tg ? tg : pp;
        if (n <= 0) continue;
        for (int r = 0; r <= reps && rc == 0; r++) { /* r == 0: warm-up */
            v[r] = run_once(ctx, toks, n, is_tg);
            if (v[r] < 0) {
                fprintf(stderr, "imp-cli: %s\n", imp_context_last_error(ctx));
                rc = 1;
            }
        }
        if (rc) break;
        double mean, sd;
        stats(v + 1, reps, &mean, &sd);
        if (is_tg) tg_mean = mean;
        printf("| %s | %.2f MiB | %.2f M | %s | %d | %s%d | %.2f ± %.2f |\n", info.name,
               (double)info.weight_bytes / (1024.0 * 1024.0), (double)info.n_params / 1e6, backend, threads,
               is_tg ? "tg" : "pp", n, mean, sd);
        fflush(stdout);
    }
    if (rc == 0 && tg_mean > 0) {
        double bw = 0.0;
        char what[64];
        if (dev >= 0) {
            imp_error err;
            if (imp_device_read_bandwidth(dev, &bw, &err) != IMP_OK) fprintf(stderr, "imp-cli: %s\n", err.msg);
            snprintf(what, sizeof what, "GPU %d HBM", (int)dev);
        } else {
            bw = read_bandwidth(threads);
            snprintf(what, sizeof what, "host, %d threads", threads);
        }
        const double eff = (double)info.weight_bytes * tg_mean / 1e9;
        printf("\nmemory read bandwidth (%s, measured now): %.1f GB/s; decode reads the weights once per "
               "token: %.2f GB/s effective = %.0f%% of it\n", what, bw, eff, bw > 0 ? 100.0 * eff / bw : 0.0);
    }
    free(toks);
    free(v);
    imp_context_free(ctx);
    imp_model_free(model);
    return rc;
}
