/*
 * imp-cli --model M --bench [--bench-pp N] [--max-tokens N] [--bench-reps R] [--bench-depth D]
 *                           [--threads T]
 *
 * One model, one ppN and one tgN test at one depth, through the benchmark imp-bench runs
 * (tools/bench/measure.c: the tests, the timing, the memory-bandwidth ceiling and the report).
 */
#include "generate.h"
#include "measure.h"

int imp_cli_bench(cli_gen_opts *o) {
    const char *models[1] = {o->model};
    const int32_t pp = o->bench_pp, tg = o->gen.max_tokens, depth = o->bench_depth, threads = o->threads;
    imp_bench_spec s = {
        .prog = "imp-cli",
        .models = models,
        .n_models = 1,
        .pp = &pp,
        .n_pp = 1,
        .tg = &tg,
        .n_tg = 1,
        .depth = &depth,
        .n_depth = 1,
        .threads = &threads,
        .n_threads = 1,
        .reps = o->bench_reps,
        .ctx = imp_cli_context_config(o),
        .format = IMP_BENCH_MD,
        .quiet = o->quiet,
        .load = imp_cli_load,
    };
    return imp_bench_run(&s, stdout);
}
