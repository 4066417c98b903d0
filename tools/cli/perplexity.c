/*
 * imp-cli --perplexity FILE [--ctx N]: perplexity the way llama.cpp's llama-perplexity computes
 * it, so the figures compare. The file is tokenized once (with BOS when the model's tokenizer
 * adds one) and cut into non-overlapping windows of N tokens; each window is evaluated from an
 * empty cache (its first token replaced by BOS when the model uses BOS) and only the second
 * half is scored: for positions j in [N/2, N-1) the logits at j predict token j+1. Prints the
 * running estimate per window and the final PPL with its standard error.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "generate.h"
#include "tokenize.h"

/* -log softmax(logits)[target], in double. */
static double nll_of(const float *logits, int32_t n_vocab, int32_t target) {
    float mx = logits[0];
    for (int32_t i = 1; i < n_vocab; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; i++) sum += exp((double)logits[i] - (double)mx);
    return log(sum) - ((double)logits[target] - (double)mx);
}

int imp_cli_perplexity(cli_gen_opts *o) {
    size_t len = 0;
    char *text = imp_cli_read_file(o->perplexity, &len);
    if (!text) return 1;
    ImpModel model = imp_cli_load(o->model, o->quiet);
    if (!model) {
        free(text);
        return 1;
    }
    ImpModelInfo info;
    imp_model_info(model, &info);
    const int32_t N = o->ppl_ctx;
    size_t n_tok = 0;
    int32_t *toks = NULL;
    ImpStatus st = imp_tokenize(model, text, len, true, false, NULL, 0, &n_tok);
    if (st == IMP_OK || st == IMP_ERR_RANGE) {
        toks = malloc((n_tok ? n_tok : 1) * sizeof *toks);
        st = toks ? imp_tokenize(model, text, len, true, false, toks, n_tok, &n_tok) : IMP_ERR_NOMEM;
    }
    free(text);
    int rc = 0;
    ImpContext ctx = NULL;
    if (st != IMP_OK) {
        fprintf(stderr, "imp-cli: cannot tokenize '%s' (%s)\n", o->perplexity, imp_status_str(st));
        rc = 1;
    } else if (n_tok < (size_t)2 * N) {
        fprintf(stderr, "imp-cli: '%s' has %zu tokens; --ctx %d needs at least %d\n", o->perplexity, n_tok, N, 2 * N);
        rc = 1;
    }
    ImpConfig cfg = imp_cli_context_config(o);
    cfg.max_seq_len = N;
    if (rc == 0 && imp_context_create(model, &cfg, &ctx) != IMP_OK) rc = 1;
    const size_t n_chunk = rc == 0 ? n_tok / (size_t)N : 0;
    if (rc == 0 && !o->quiet) {
        fprintf(stderr, "imp-cli: perplexity over %zu tokens: %zu windows of %d, scoring the second half of each\n",
                n_tok, n_chunk, N);
    }
    double nll = 0.0, nll2 = 0.0;
    long count = 0;
    const int32_t first = N / 2;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t c = 0; c < n_chunk && rc == 0; c++) {
        int32_t *w = toks + c * (size_t)N;
        const int32_t saved = w[0];
        if (info.add_bos && info.bos >= 0) w[0] = info.bos;
        imp_context_reset(ctx);
        st = imp_prefill_logits(ctx, w, (size_t)N, (size_t)first);
        w[0] = saved;
        if (st != IMP_OK) {
            fprintf(stderr, "imp-cli: %s\n", imp_context_last_error(ctx));
            rc = 1;
            break;
        }
        for (int32_t j = first; j < N - 1; j++) {
            const double v = nll_of(imp_get_logits_ith(ctx, j), info.n_vocab, w[j + 1]);
            nll += v;
            nll2 += v * v;
            count++;
        }
        printf("[%zu]%.4f,", c + 1, exp(nll / (double)count));
        fflush(stdout);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == 0) {
        const double mean = nll / (double)count, var = nll2 / (double)count - mean * mean;
        const double ppl = exp(mean);
        const double err = count > 1 && var > 0 ? ppl * sqrt(var / (double)(count - 1)) : 0.0;
        const double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", ppl, err);
        if (!o->quiet) {
            fprintf(stderr, "imp-cli: %zu windows x %d tokens in %.2f s (%.1f tok/s)\n", n_chunk, N, secs,
                    (double)n_chunk * N / secs);
        }
    }
    free(toks);
    imp_context_free(ctx);
    imp_model_free(model);
    return rc;
}
