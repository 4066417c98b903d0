/*
 * The benchmark shared by imp-cli --bench and imp-bench (see measure.h).
 *
 * A test is ppN (N prompt tokens in one prefill call) or tgN (N single-token steps), at a depth
 * D: D tokens are put in the KV cache first, not timed (tg at depth 0 gets one token, so its
 * first step has a token to follow). Each test runs once as a warm-up and then R times, each
 * from a reset context with the depth prefilled again -- the public API cannot cut a cache back
 * to D tokens, and a prefill is the honest way to get a cache that looks like a real one. A row
 * gives the mean and sample standard deviation of tokens per second. Token ids are fixed
 * pseudo-random ids (speed does not depend on them); nothing is sampled.
 *
 * In the same run it measures the ceiling decode is bound by -- the memory read bandwidth of the
 * device the model runs on (the GPU's HBM through imp_device_read_bandwidth, or the host with the
 * run's thread count) -- and reports decode's effective bandwidth (weight bytes read per token x
 * tokens/s) as a fraction of it. KV-cache reads are not counted, so at a depth the fraction
 * understates what decode reads.
 */
#define _POSIX_C_SOURCE 200809L
#include "measure.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/device.h"
#include "base/threads.h"
#include "base/utf8.h"

bool imp_bench_format_from_name(const char *name, imp_bench_format *out) {
    static const char *const names[] = {"md", "csv", "json"};
    for (int i = 0; i < 3; i++) {
        if (name && !strcmp(name, names[i])) {
            *out = (imp_bench_format)i;
            return true;
        }
    }
    return false;
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
static double host_read_bandwidth(int threads) {
    const size_t bytes = (size_t)512 << 20, n = bytes / 8;
    uint64_t *buf = malloc(bytes);
    if (!buf) return 0.0;
    for (size_t i = 0; i < n; i++) buf[i] = i;
    if (threads < 1) threads = 1;
    if (threads > 256) threads = 256;
    bw_job j = {.p = buf};
    double best = 0.0;
    for (int pass = 0; pass < 5; pass++) {
        const double t0 = imp_time_s();
        imp_parallel_for(threads, (int64_t)(n / 4), bw_read, &j); /* items: groups of 4 words */
        const double dt = imp_time_s() - t0;
        const double gbs = dt > 0 ? (double)bytes / dt / 1e9 : 0.0;
        if (gbs > best) best = gbs;
    }
    uint64_t sink = 0;
    for (int t = 0; t < 256; t++) sink += j.sums[t];
    free(buf);
    if (sink == 42) fputc(' ', stderr); /* keep the reads */
    return best;
}

/* ---- tests ---------------------------------------------------------------------------------- */

typedef struct bench_test {
    int32_t n_prompt; /* > 0: a ppN test                */
    int32_t n_gen;    /* > 0 (and n_prompt 0): tgN test */
    int32_t n_depth;
} bench_test;

/* "pp512", "tg128 @ d4096" (llama-bench's labels). */
static void test_label(const bench_test *t, char *buf, size_t cap) {
    const int w = t->n_prompt > 0 ? snprintf(buf, cap, "pp%d", (int)t->n_prompt)
                                  : snprintf(buf, cap, "tg%d", (int)t->n_gen);
    if (t->n_depth > 0 && w >= 0 && (size_t)w < cap) snprintf(buf + w, cap - (size_t)w, " @ d%d", (int)t->n_depth);
}

/* Tokens put in the cache before the timed part. */
static int32_t test_pre(const bench_test *t) {
    if (t->n_prompt > 0 || t->n_depth > 0) return t->n_depth;
    return 1;
}

/* Tokens in the cache at the end of the test (what max_seq_len must hold). */
static int64_t test_need(const bench_test *t) {
    return (int64_t)test_pre(t) + (t->n_prompt > 0 ? t->n_prompt : t->n_gen);
}

/* Tokens per second of one run of t; negative on failure (the message is the context's). */
static double run_once(ImpContext ctx, const int32_t *toks, const bench_test *t) {
    imp_context_reset(ctx);
    const int32_t pre = test_pre(t);
    if (pre > 0 && imp_prefill(ctx, toks, (size_t)pre) != IMP_OK) return -1.0;
    const double t0 = imp_time_s();
    int32_t n;
    if (t->n_prompt > 0) {
        n = t->n_prompt;
        if (imp_prefill(ctx, toks + pre, (size_t)n) != IMP_OK) return -1.0;
    } else {
        n = t->n_gen;
        for (int32_t i = 0; i < n; i++) {
            if (imp_prefill(ctx, &toks[pre + i], 1) != IMP_OK) return -1.0;
        }
    }
    const double dt = imp_time_s() - t0;
    return n / (dt > 1e-9 ? dt : 1e-9);
}

static void stats(const double *v, int n, double *mean, double *sd) {
    double s = 0.0, s2 = 0.0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) s2 += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(s2 / (n - 1)) : 0.0;
}

/* ---- the report ----------------------------------------------------------------------------- */

typedef struct bench_row {
    char *model;         /* the model's name (malloc'd)              */
    char *file;          /* its path (malloc'd)                      */
    uint64_t size_bytes; /* weight bytes                             */
    uint64_t n_params;
    char backend[32];    /* "cpu", "cuda:0"                          */
    int32_t threads;
    bench_test t;
    int32_t reps;
    double mean, sd;     /* tokens per second                        */
    double bw;           /* the device's read bandwidth, GB/s; 0 unknown */
} bench_row;

typedef struct bench_ceiling {
    int32_t device, threads; /* threads: host measurements only */
    double gbs;              /* 0: could not be measured        */
} bench_ceiling;

typedef struct bench_report {
    const imp_bench_spec *s;
    const char *prog; /* s->prog, or "imp-bench" */
    FILE *out;
    bench_row *rows;
    int32_t n_rows, cap_rows;
    bench_ceiling ceilings[64]; /* measured so far, by device (and threads on the host) */
    int32_t n_ceilings;
    bool begun; /* the header is out */
} bench_report;

/* A markdown cell: '|' escaped, line breaks as spaces. */
static void put_md(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else if (*s == '\n' || *s == '\r') fputc(' ', f);
        else fputc(*s, f);
    }
}

/* A CSV field, always quoted (RFC 4180: quotes doubled). */
static void put_csv(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* A JSON string: control characters escaped, invalid UTF-8 (a model's name is file data)
 * replaced by U+FFFD so the document always parses. */
static void put_json_str(FILE *f, const char *s) {
    fputc('"', f);
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n > 0) {
        size_t len = 1;
        if (*p >= 0x80) {
            const imp_utf8_result res = imp_utf8_check(p, n, &len);
            if (res == IMP_UTF8_OK) {
                fwrite(p, 1, len, f);
            } else {
                if (res == IMP_UTF8_PARTIAL) len = n; /* a sequence cut off by the end */
                fputs("\\ufffd", f);
            }
        } else if (*p == '"' || *p == '\\') {
            fputc('\\', f);
            fputc(*p, f);
        } else if (*p < 0x20) {
            fprintf(f, "\\u%04x", *p);
        } else {
            fputc(*p, f);
        }
        p += len;
        n -= len;
    }
    fputc('"', f);
}

static void put_json_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.6g", v);
    else fputs("null", f);
}

static double row_decode_gbs(const bench_row *r) { return (double)r->size_bytes * r->mean / 1e9; }

static const char k_csv_header[] = "model,file,size_bytes,n_params,backend,threads,n_prompt,n_gen,n_depth,test,reps,"
                                   "avg_ts,stddev_ts,mem_read_gbs,decode_gbs,decode_frac\n";

/* The header, before the first row (so a run that fails before any row prints no empty
 * markdown table; CSV and JSON get theirs in any case: an empty document is still one). */
static void report_begin(bench_report *r) {
    FILE *f = r->out;
    if (r->begun) return;
    r->begun = true;
    switch (r->s->format) {
    case IMP_BENCH_MD:
        fputs("| model | size | params | backend | threads | test | t/s |\n", f);
        fputs("| --- | ---: | ---: | --- | ---: | --- | ---: |\n", f);
        break;
    case IMP_BENCH_CSV: fputs(k_csv_header, f); break;
    case IMP_BENCH_JSON: fputs("[", f); break;
    }
    fflush(f);
}

static void report_row(bench_report *r, const bench_row *w, const double *samples) {
    FILE *f = r->out;
    report_begin(r);
    char label[64];
    test_label(&w->t, label, sizeof label);
    const bool tg = w->t.n_prompt == 0;
    const double dec = row_decode_gbs(w);
    switch (r->s->format) {
    case IMP_BENCH_MD:
        fputs("| ", f);
        put_md(f, w->model);
        fprintf(f, " | %.2f MiB | %.2f M | %s | %d | %s | %.2f ± %.2f |\n", (double)w->size_bytes / (1024.0 * 1024.0),
                (double)w->n_params / 1e6, w->backend, (int)w->threads, label, w->mean, w->sd);
        break;
    case IMP_BENCH_CSV:
        put_csv(f, w->model);
        fputc(',', f);
        put_csv(f, w->file);
        fprintf(f, ",%llu,%llu,%s,%d,%d,%d,%d,%s,%d,%.4f,%.4f,", (unsigned long long)w->size_bytes,
                (unsigned long long)w->n_params, w->backend, (int)w->threads, (int)w->t.n_prompt, (int)w->t.n_gen,
                (int)w->t.n_depth, label, (int)w->reps, w->mean, w->sd);
        if (w->bw > 0) fprintf(f, "%.4f", w->bw);
        fputc(',', f);
        if (tg) fprintf(f, "%.4f", dec);
        fputc(',', f);
        if (tg && w->bw > 0) fprintf(f, "%.4f", dec / w->bw);
        fputc('\n', f);
        break;
    case IMP_BENCH_JSON:
        fputs(r->n_rows > 1 ? ",\n  {" : "\n  {", f);
        fputs("\"model\": ", f);
        put_json_str(f, w->model);
        fputs(", \"file\": ", f);
        put_json_str(f, w->file);
        fprintf(f, ", \"size_bytes\": %llu, \"n_params\": %llu, \"backend\": \"%s\", \"threads\": %d, "
                   "\"n_prompt\": %d, \"n_gen\": %d, \"n_depth\": %d, \"test\": \"%s\", \"reps\": %d, \"avg_ts\": ",
                (unsigned long long)w->size_bytes, (unsigned long long)w->n_params, w->backend, (int)w->threads,
                (int)w->t.n_prompt, (int)w->t.n_gen, (int)w->t.n_depth, label, (int)w->reps);
        put_json_num(f, w->mean);
        fputs(", \"stddev_ts\": ", f);
        put_json_num(f, w->sd);
        fputs(", \"samples_ts\": [", f);
        for (int32_t i = 0; i < w->reps; i++) {
            if (i) fputs(", ", f);
            put_json_num(f, samples[i]);
        }
        fputs("], \"mem_read_gbs\": ", f);
        put_json_num(f, w->bw > 0 ? w->bw : NAN);
        fputs(", \"decode_gbs\": ", f);
        put_json_num(f, tg ? dec : NAN);
        fputs(", \"decode_frac\": ", f);
        put_json_num(f, tg && w->bw > 0 ? dec / w->bw : NAN);
        fputs("}", f);
        break;
    }
    fflush(f);
}

/* The end: JSON's closing bracket; for markdown, decode's effective bandwidth against the
 * ceiling, one row per tg test. */
static void report_end(bench_report *r) {
    FILE *f = r->out;
    if (r->s->format != IMP_BENCH_MD) report_begin(r);
    if (r->s->format == IMP_BENCH_JSON) fputs(r->n_rows ? "\n]\n" : "]\n", f);
    if (r->s->format != IMP_BENCH_MD) {
        fflush(f);
        return;
    }
    bool any = false;
    for (int32_t i = 0; i < r->n_rows; i++) any = any || r->rows[i].t.n_prompt == 0;
    if (!any) return;
    fputs("\ndecode reads every weight once per token: effective GB/s = weight bytes x t/s, against the memory "
          "read bandwidth measured in this run (GPU: HBM; cpu: the host with the row's threads)\n",
          f);
    fputs("| model | backend | threads | test | decode GB/s | memory read GB/s | fraction |\n", f);
    fputs("| --- | --- | ---: | --- | ---: | ---: | ---: |\n", f);
    for (int32_t i = 0; i < r->n_rows; i++) {
        const bench_row *w = &r->rows[i];
        if (w->t.n_prompt > 0) continue;
        char label[64];
        test_label(&w->t, label, sizeof label);
        const double dec = row_decode_gbs(w);
        fputs("| ", f);
        put_md(f, w->model);
        fprintf(f, " | %s | %d | %s | %.2f | ", w->backend, (int)w->threads, label, dec);
        if (w->bw > 0) fprintf(f, "%.1f | %.0f%% |\n", w->bw, 100.0 * dec / w->bw);
        else fputs("n/a | n/a |\n", f);
    }
    fflush(f);
}

/* The read bandwidth of device (or the host with threads), measured once per run. */
static double ceiling(bench_report *r, int32_t device, int32_t threads) {
    const int32_t key_threads = device >= 0 ? 0 : threads;
    for (int32_t i = 0; i < r->n_ceilings; i++) {
        if (r->ceilings[i].device == device && r->ceilings[i].threads == key_threads) return r->ceilings[i].gbs;
    }
    double gbs = 0.0;
    if (device >= 0) {
        imp_error err;
        imp_error_clear(&err);
        if (imp_device_read_bandwidth(device, &gbs, &err) != IMP_OK) {
            fprintf(stderr, "%s: GPU %d read bandwidth: %s\n", r->prog, (int)device, err.msg);
            gbs = 0.0;
        }
    } else {
        gbs = host_read_bandwidth(threads);
        if (gbs <= 0) fprintf(stderr, "%s: could not measure the host's read bandwidth (no 512 MiB buffer)\n", r->prog);
    }
    if (r->n_ceilings < (int32_t)(sizeof r->ceilings / sizeof r->ceilings[0])) {
        r->ceilings[r->n_ceilings++] = (bench_ceiling){device, key_threads, gbs};
    }
    return gbs;
}

static bool report_add(bench_report *r, const bench_row *w) {
    if (r->n_rows == r->cap_rows) {
        const int32_t cap = r->cap_rows ? r->cap_rows * 2 : 16;
        bench_row *rows = realloc(r->rows, (size_t)cap * sizeof *rows);
        if (!rows) return false;
        r->rows = rows;
        r->cap_rows = cap;
    }
    r->rows[r->n_rows++] = *w;
    return true;
}

static void report_free(bench_report *r) {
    for (int32_t i = 0; i < r->n_rows; i++) {
        free(r->rows[i].model);
        free(r->rows[i].file);
    }
    free(r->rows);
}

/* ---- runs ----------------------------------------------------------------------------------- */

/* Every test of one model at one thread count, on one context sized for the longest. */
static int run_model_threads(bench_report *r, ImpModel model, const char *path, const bench_test *tests,
                             int32_t n_tests, int64_t need, int32_t threads_req) {
    const imp_bench_spec *s = r->s;
    const char *prog = r->prog;
    ImpModelInfo info;
    if (imp_model_info(model, &info) != IMP_OK || info.n_vocab < 1) {
        fprintf(stderr, "%s: %s: no model information\n", prog, path);
        return 1;
    }
    ImpConfig cfg = s->ctx;
    cfg.n_threads = threads_req;
    cfg.max_seq_len = (int32_t)need;
    for (int32_t i = 0; i < n_tests; i++) {
        if (tests[i].n_prompt > cfg.max_batch) cfg.max_batch = tests[i].n_prompt; /* ppN is one step */
    }
    ImpContext ctx;
    const ImpStatus cst = imp_context_create(model, &cfg, &ctx);
    if (cst != IMP_OK) {
        fprintf(stderr, "%s: %s: cannot create a context for %lld tokens (%s; the reason is above)\n", prog, path,
                (long long)need, imp_status_str(cst));
        return 1;
    }
    const int32_t threads = threads_req > 0 ? threads_req : imp_cpu_count();
    const int32_t dev = imp_context_device(ctx);
    bench_row base = {.size_bytes = info.weight_bytes, .n_params = info.n_params, .threads = threads, .reps = s->reps};
    if (dev >= 0) snprintf(base.backend, sizeof base.backend, "cuda:%d", (int)dev);
    else snprintf(base.backend, sizeof base.backend, "cpu");
    base.bw = ceiling(r, dev, threads);

    int32_t *toks = malloc((size_t)need * sizeof *toks);
    double *v = malloc((size_t)(s->reps + 1) * sizeof *v);
    int rc = toks && v ? 0 : 1;
    if (rc) fprintf(stderr, "%s: out of memory for %lld tokens\n", prog, (long long)need);
    uint64_t x = 12345;
    for (int64_t i = 0; i < need && toks; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (int32_t)((x >> 33) % (uint64_t)info.n_vocab);
    }
    for (int32_t k = 0; k < n_tests && rc == 0; k++) {
        for (int32_t i = 0; i <= s->reps; i++) { /* i == 0: warm-up */
            v[i] = run_once(ctx, toks, &tests[k]);
            if (v[i] < 0) {
                char label[64];
                test_label(&tests[k], label, sizeof label);
                fprintf(stderr, "%s: %s: %s: %s\n", prog, path, label, imp_context_last_error(ctx));
                rc = 1;
                break;
            }
        }
        if (rc) break;
        bench_row w = base;
        w.t = tests[k];
        stats(v + 1, s->reps, &w.mean, &w.sd);
        w.model = strdup(info.name ? info.name : path);
        w.file = strdup(path);
        if (!w.model || !w.file || !report_add(r, &w)) {
            free(w.model);
            free(w.file);
            fprintf(stderr, "%s: out of memory\n", prog);
            rc = 1;
            break;
        }
        report_row(r, &w, v + 1);
    }
    free(toks);
    free(v);
    imp_context_free(ctx);
    return rc;
}

static ImpModel load_plain(const char *prog, const char *path) {
    ImpModel m = NULL;
    char err[512] = "";
    if (imp_model_load_ex(path, IMP_FORMAT_GGUF, NULL, NULL, &m, err, sizeof err) != IMP_OK) {
        fprintf(stderr, "%s: %s\n", prog, err[0] ? err : path);
        return NULL;
    }
    return m;
}

int imp_bench_run(const imp_bench_spec *s, FILE *out) {
    const char *prog = s->prog ? s->prog : "imp-bench";
    if (s->n_models < 1 || s->n_threads < 1 || s->n_depth < 1 || s->n_pp < 0 || s->n_tg < 0 || s->reps < 1) {
        fprintf(stderr, "%s: nothing to measure: give a model, a thread count, a depth and reps >= 1\n", prog);
        return 2;
    }
    /* the tests, and the longest sequence they make */
    const int64_t n_max = (int64_t)s->n_depth * (s->n_pp + s->n_tg);
    bench_test *tests = malloc((size_t)(n_max > 0 ? n_max : 1) * sizeof *tests);
    if (!tests) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return 1;
    }
    int32_t n_tests = 0;
    int64_t need = 1;
    for (int32_t d = 0; d < s->n_depth; d++) {
        for (int32_t k = 0; k < s->n_pp + s->n_tg; k++) {
            const bool pp = k < s->n_pp;
            const int32_t n = pp ? s->pp[k] : s->tg[k - s->n_pp];
            if (n == 0) continue;
            bench_test t = {.n_prompt = pp ? n : 0, .n_gen = pp ? 0 : n, .n_depth = s->depth[d]};
            char label[64];
            test_label(&t, label, sizeof label);
            const char *why = NULL;
            if (n < 0 || t.n_depth < 0) why = "a negative length";
            else if (t.n_prompt > 65536) why = "more than 65536 prompt tokens in one step";
            else if (test_need(&t) > IMP_BENCH_MAX_TOKENS) why = "more tokens in the cache than the engine holds";
            if (why) {
                fprintf(stderr, "%s: %s: %s (needs %lld tokens; at most %d)\n", prog, label, why,
                        (long long)test_need(&t), IMP_BENCH_MAX_TOKENS);
                free(tests);
                return 2;
            }
            if (test_need(&t) > need) need = test_need(&t);
            tests[n_tests++] = t;
        }
    }
    bench_report r = {.s = s, .prog = prog, .out = out};
    int rc = 0;
    for (int32_t m = 0; m < s->n_models && rc == 0 && n_tests > 0; m++) {
        const char *path = s->models[m];
        ImpModel model = s->load ? s->load(path, s->quiet) : load_plain(prog, path);
        if (!model) {
            rc = 1;
            break;
        }
        for (int32_t t = 0; t < s->n_threads && rc == 0; t++) {
            rc = run_model_threads(&r, model, path, tests, n_tests, need, s->threads[t]);
        }
        imp_model_free(model);
    }
    report_end(&r);
    report_free(&r);
    free(tests);
    return rc;
}
