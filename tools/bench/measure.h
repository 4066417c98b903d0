/*
 * The benchmark behind both `imp-cli --bench` and `imp-bench`: llama-bench's tests (ppN, tgN,
 * each at a depth), their timing, the memory-bandwidth ceiling measured in the same run, and the
 * report as a markdown table, CSV or JSON. One implementation, so the two tools cannot drift.
 */
#ifndef IMP_TOOLS_BENCH_MEASURE_H
#define IMP_TOOLS_BENCH_MEASURE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <imp/imp.h>

/* The engine's bound on tokens in one sequence: depth + test length must fit in it. */
#define IMP_BENCH_MAX_TOKENS (1 << 24)

typedef enum imp_bench_format { IMP_BENCH_MD = 0, IMP_BENCH_CSV = 1, IMP_BENCH_JSON = 2 } imp_bench_format;

/* "md", "csv" or "json" -> *out. False (and *out unchanged) for anything else. */
bool imp_bench_format_from_name(const char *name, imp_bench_format *out);

/* What to run: every model x every thread count x every test. The tests are, for each depth in
 * order, ppN for each N of pp, then tgN for each N of tg; zeros in pp and tg are skipped. */
typedef struct imp_bench_spec {
    const char *prog;           /* prefixes messages on stderr ("imp-bench")              */
    const char *const *models;  /* GGUF paths [n_models]                                  */
    int32_t n_models;
    const int32_t *pp;          /* prompt lengths [n_pp], 0..65536                        */
    int32_t n_pp;
    const int32_t *tg;          /* generated lengths [n_tg], >= 0                         */
    int32_t n_tg;
    const int32_t *depth;       /* tokens already in the KV cache [n_depth], >= 0         */
    int32_t n_depth;
    const int32_t *threads;     /* CPU threads [n_threads]; 0 = every core                */
    int32_t n_threads;
    int32_t reps;               /* timed repetitions per test (after one warm-up), >= 1   */
    ImpConfig ctx;              /* device, KV type and block size, CUDA graphs, max_batch;
                                   n_threads and max_seq_len are set per run              */
    imp_bench_format format;
    bool quiet;                 /* passed to load                                         */
    /* Loads a model, printing the reason on failure (NULL: imp_model_load_ex, no progress). */
    ImpModel (*load)(const char *path, bool quiet);
} imp_bench_spec;

/* Runs the benchmark and writes the report to out as rows complete (CSV and JSON stay valid
 * documents even when a run fails part-way). Problems go to stderr prefixed with s->prog.
 * Returns a process exit code: 0 done, 1 a model or run failed, 2 a spec out of range (depth +
 * test length over IMP_BENCH_MAX_TOKENS, an empty list, reps < 1). No global state, but two runs
 * at once would skew each other's timings. */
int imp_bench_run(const imp_bench_spec *s, FILE *out);

#endif
