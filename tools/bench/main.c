/*
 * imp-bench: llama-bench's command line over the benchmark imp-cli --bench runs (measure.c).
 * Thin: parses flags into an imp_bench_spec. Lists are comma-separated ("-p 512,1024"); a list
 * flag given again adds to its list; every combination of model, threads and test is run.
 * Defaults come from imp.conf ([bench] and [runtime], docs/config.md), else the key table's.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <imp/imp.h>

#include "config/config.h"
#include "measure.h"

#define MAX_LIST 64

static void usage(FILE *f) {
    fprintf(f,
            "usage: imp-bench -m MODEL [-m MODEL ...] [options]\n"
            "  llama-bench-style rows (ppN: N prompt tokens in one step; tgN: N single-token steps),\n"
            "  t/s mean ± stddev, and decode's effective GB/s against the memory read bandwidth\n"
            "  measured in the same run. Every combination of the lists runs.\n"
            "  -m, --model FILE          GGUF model (repeatable)\n"
            "  -p, --n-prompt N[,N...]   prompt lengths (default bench.pp = 512; 0 skips)\n"
            "  -n, --n-gen N[,N...]      generation lengths (default bench.tg = 128; 0 skips)\n"
            "  -d, --n-depth N[,N...]    tokens already in the KV cache, prefilled before each\n"
            "                            repetition and not timed (default bench.depth = 0)\n"
            "  -r, --repetitions N       timed runs per test after one warm-up (default bench.reps = 5)\n"
            "  -t, --threads N[,N...]    CPU threads (default runtime.threads; 0 = every core)\n"
            "  --device N|cpu|auto       where the model runs (default runtime.device = auto)\n"
            "  --no-cuda-graphs          decode without recorded CUDA graphs\n"
            "  -o, --output md|csv|json  report format (default md)\n"
            "  --config PATH             imp.conf to take the defaults from\n"
            "  -h, --help\n"
            "Exit status: 0 ok, 1 a model or run failed, 2 bad usage.\n");
}

typedef struct int_list {
    int32_t v[MAX_LIST];
    int32_t n;
    bool from_flag; /* a flag replaced the default: later flags add to it */
} int_list;

static int bad(const char *flag, const char *v, const char *want) {
    fprintf(stderr, "imp-bench: %s: expected %s, got '%s'\n", flag, want, v);
    return 2;
}

/* "512,1024" -> the list (replacing the default the first time a flag names it). */
static int parse_list(const char *flag, const char *text, long lo, long hi, int_list *l) {
    char want[96];
    snprintf(want, sizeof want, "integers in %ld..%ld separated by commas", lo, hi);
    if (!l->from_flag) l->n = 0;
    l->from_flag = true;
    const char *p = text;
    for (;;) {
        char *end;
        errno = 0;
        const long x = strtol(p, &end, 10);
        if (errno || end == p || (*end != ',' && *end) || x < lo || x > hi || p[0] == ' ' || p[0] == '+') {
            return bad(flag, text, want);
        }
        if (l->n >= MAX_LIST) {
            snprintf(want, sizeof want, "at most %d values", MAX_LIST);
            return bad(flag, text, want);
        }
        l->v[l->n++] = (int32_t)x;
        if (!*end) return 0;
        p = end + 1;
    }
}

static int parse_device(const char *flag, const char *v, int32_t *out) {
    if (!strcmp(v, "auto")) {
        *out = IMP_DEVICE_AUTO;
    } else if (!strcmp(v, "cpu")) {
        *out = IMP_DEVICE_CPU;
    } else {
        char *end;
        errno = 0;
        const long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < 0 || x > 1023 || v[0] == '+' || v[0] == ' ') {
            return bad(flag, v, "auto, cpu or a GPU index (0, 1, ...)");
        }
        *out = (int32_t)x;
    }
    return 0;
}

static bool is(const char *a, const char *short_name, const char *long_name) {
    return (short_name && !strcmp(a, short_name)) || !strcmp(a, long_name);
}

int main(int argc, char **argv) {
    /* the configuration file first: flags override what it says */
    const char *config_path = NULL;
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--config")) config_path = argv[i + 1];
    }
    imp_config cfg;
    imp_config_init(&cfg);
    imp_error err;
    imp_error_clear(&err);
    if (imp_config_load(&cfg, config_path, &err) != IMP_OK) {
        fprintf(stderr, "imp-bench: %s\n", err.msg);
        return 1;
    }
    const imp_runtime_config *c = &cfg.v;
    int_list pp = {.v = {c->bench.pp}, .n = 1}, tg = {.v = {c->bench.tg}, .n = 1};
    int_list depth = {.v = {c->bench.depth}, .n = 1}, threads = {.v = {c->runtime.threads}, .n = 1};
    int32_t reps = c->bench.reps;
    const char *models[MAX_LIST];
    int32_t n_models = 0;
    imp_bench_spec s = {.prog = "imp-bench", .format = IMP_BENCH_MD, .ctx = imp_config_default()};
    s.ctx.max_batch = c->runtime.max_batch;
    s.ctx.kv_block_size = c->kv_cache.block_size;
    s.ctx.kv_type = !strcmp(c->kv_cache.type, "f32") ? IMP_KV_F32 : IMP_KV_F16;
    s.ctx.cuda_graphs = c->runtime.cuda_graphs ? 1 : 0;
    if (parse_device("runtime.device", c->runtime.device, &s.ctx.device)) return 2;
    const char *lv = c->diagnostics.log_level;
    imp_log_set(NULL, NULL, !strcmp(lv, "debug") ? IMP_LOG_DEBUG : !strcmp(lv, "info") ? IMP_LOG_INFO
                              : !strcmp(lv, "error") ? IMP_LOG_ERROR : IMP_LOG_WARN);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is(a, "-h", "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--no-cuda-graphs")) {
            s.ctx.cuda_graphs = 0;
            continue;
        }
        const bool takes_value = is(a, "-m", "--model") || is(a, "-p", "--n-prompt") || is(a, "-n", "--n-gen") ||
                                 is(a, "-d", "--n-depth") || is(a, "-r", "--repetitions") ||
                                 is(a, "-t", "--threads") || is(a, NULL, "--device") || is(a, "-o", "--output") ||
                                 is(a, NULL, "--config");
        if (!takes_value) {
            fprintf(stderr, "imp-bench: unknown option '%s' (imp-bench --help lists them)\n", a);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "imp-bench: %s needs a value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        int rc = 0;
        if (is(a, "-m", "--model")) {
            if (n_models >= MAX_LIST) return bad(a, v, "at most 64 models");
            if (!*v) return bad(a, v, "a file name");
            models[n_models++] = v;
        } else if (is(a, "-p", "--n-prompt")) {
            rc = parse_list(a, v, 0, 65536, &pp);
        } else if (is(a, "-n", "--n-gen")) {
            rc = parse_list(a, v, 0, IMP_BENCH_MAX_TOKENS - 1, &tg);
        } else if (is(a, "-d", "--n-depth")) {
            rc = parse_list(a, v, 0, IMP_BENCH_MAX_TOKENS - 1, &depth);
        } else if (is(a, "-r", "--repetitions")) {
            char *end;
            errno = 0;
            const long x = strtol(v, &end, 10);
            if (errno || end == v || *end || x < 1 || x > 1000 || v[0] == ' ' || v[0] == '+') {
                rc = bad(a, v, "an integer in 1..1000");
            }
            reps = (int32_t)x;
        } else if (is(a, "-t", "--threads")) {
            rc = parse_list(a, v, 0, 512, &threads);
        } else if (is(a, NULL, "--device")) {
            rc = parse_device(a, v, &s.ctx.device);
        } else if (is(a, "-o", "--output")) {
            if (!imp_bench_format_from_name(v, &s.format)) rc = bad(a, v, "md, csv or json");
        } /* --config: read above */
        if (rc) return rc;
    }
    if (n_models == 0) {
        fprintf(stderr, "imp-bench: give a model: -m FILE (imp-bench --help)\n");
        return 2;
    }
    bool any = false;
    for (int32_t k = 0; k < pp.n; k++) any = any || pp.v[k] > 0;
    for (int32_t k = 0; k < tg.n; k++) any = any || tg.v[k] > 0;
    if (!any) {
        fprintf(stderr, "imp-bench: nothing to run: every -p and -n value is 0\n");
        return 2;
    }
    s.models = models;
    s.n_models = n_models;
    s.pp = pp.v;
    s.n_pp = pp.n;
    s.tg = tg.v;
    s.n_tg = tg.n;
    s.depth = depth.v;
    s.n_depth = depth.n;
    s.threads = threads.v;
    s.n_threads = threads.n;
    s.reps = reps;
    return imp_bench_run(&s, stdout);
}
