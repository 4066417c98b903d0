/*
 * A GPU engine against the CPU reference on one model file (run by tests/tools/cuda_e2e.sh on
 * tiny synthetic models of every architecture row and weight type):
 *
 *   helper_backend_compare MODEL.gguf [--device N] [--kv f16|f32] [--tokens 64] [--seqs 4]
 *                          [--max-kl 1e-3] [--allow-ties] [--gpu-layers N]
 *
 * --gpu-layers N splits the GPU engine: layers [0, N) on the GPU, the rest with the embedding
 * and the output layer on the CPU (-1, the default: all on the GPU; 0: the CPU alone). Every
 * check below then holds the split model to the same bounds.
 *
 *   1. greedy: a fixed ~20-token prompt, then --tokens greedy steps on the CPU and on the GPU;
 *      the token lists must be identical.
 *   2. teacher-forced: the CPU's prompt + generated tokens prefilled on both engines with every
 *      position's logits; KL(p_cpu || p_gpu) per position must stay <= --max-kl.
 *   3. GPU alone: chunked prefill (chunks of 7) against one-shot prefill, by the same KL bound
 *      (the shapes take different kernels: integer matrix-vector products for up to 32 rows,
 *      tensor-core GEMMs above, whose roundings differ and are amplified where activations
 *      are re-quantized to int8), and --seqs sequences run in one forward call per step give
 *      each sequence the tokens it gets when run alone.
 *
 *   4. graphs: the GPU's greedy run again with CUDA graphs off gives bit-identical logits (a
 *      replayed step is the same kernels on the same data).
 *   5. sampling on the GPU: --seqs sequences decoded together, each step's tokens picked by the
 *      backend's sample op (imp_engine_sample) with seeded samplers (defaults; top-k off with
 *      top-p .9; greedy) must equal the host sampler's on the same logits, downloaded after.
 *      With layers on the CPU (--gpu-layers < n_layer) the logits come from the CPU part:
 *      the engine must refuse to sample them (IMP_ERR_UNSUPPORTED; the host samples).
 *
 * Token comparisons: argmax with ties to the lowest id. Two backends that round differently
 * cannot agree on a step whose top-2 gap is within their logits' difference, so a mismatch is
 * accepted as a tie only where the reference's top-2 gap (over its logit range) is at most
 * twice the noise measured in this same run: the teacher-forced max |dlogit| / range. Any
 * other mismatch fails; --allow-ties accepts every near-tie (gap < 1e-3 of the range).
 *
 * Exit: 0 all passed, 1 a comparison failed (or an engine error), 2 bad usage, 77 the GPU engine
 * cannot be made (no CUDA in this build, or no device) with the reason printed.
 *
 * Hidden: --device cpu makes the "GPU" engine a second CPU engine with another thread count
 * (with --gpu-layers, split over two CPU backends at that layer). The CPU is bit-exact across
 * thread counts, so every number must then be 0 (--max-kl 0 demands it): that checks the
 * comparison logic and the split's bookkeeping on a machine without a GPU.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/sampler.h"
#include "testutil.h"

#define PROMPT_LEN  20
#define CHUNK       7
#define BATCH_STEPS 16
#define NEAR_TIE    1e-3 /* top-2 gap / logit range below which a mismatch is a near-tie */

typedef struct {
    const char *model;
    bool fake_gpu; /* --device cpu */
    int device;
    imp_type kv;
    int n_gen;
    int n_seqs;
    double max_kl;
    bool allow_ties;
    int gpu_layers;
} opts;

static int32_t V;
static double g_noise; /* teacher-forced max |dlogit| / range, measured by part_forced */

/* A mismatch at a step whose reference top-2 gap is gap_rel: a tie the measured noise explains,
 * or (with --allow-ties) any near-tie. */
static bool is_tie(const opts *o, double gap_rel) {
    return gap_rel <= 2.0 * g_noise || (o->allow_ties && gap_rel < NEAR_TIE);
}

/* Deterministic pseudo-random ids in [0, V); the first is BOS when the model has one, so the
 * prompt starts the way real prompts do (some architectures treat position 0 specially). */
static void prompt_make(const imp_model *m, int32_t *ids, int n, uint64_t seed) {
    uint64_t s = seed;
    for (int i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((s >> 33) % (uint64_t)V);
    }
    const int32_t bos = m->vocab ? m->vocab->bos : -1;
    ids[0] = bos >= 0 && bos < V ? bos : (V > 1 ? 1 : 0);
}

/* Lowest id among the largest logits. */
static int32_t argmax(const float *l) {
    int32_t best = 0;
    for (int32_t i = 1; i < V; i++) {
        if (l[i] > l[best]) best = i;
    }
    return best;
}

/* (top1 - top2) / (max - min): how close this step was to a tie, independent of logit scale. */
static double top2_gap_rel(const float *l) {
    const int32_t a = argmax(l);
    double second = -INFINITY, lo = INFINITY;
    for (int32_t i = 0; i < V; i++) {
        if (i != a && l[i] > second) second = l[i];
        if (l[i] < lo) lo = l[i];
    }
    const double range = (double)l[a] - lo;
    return range > 0 ? ((double)l[a] - second) / range : 0.0;
}

static bool row_finite(const float *l) {
    for (int32_t i = 0; i < V; i++) {
        if (!isfinite(l[i])) return false;
    }
    return true;
}

static bool forward(imp_engine *e, imp_engine_input *in, int n_in, const char *what) {
    imp_error err = {0};
    if (imp_engine_forward(e, in, n_in, &err) == IMP_OK) return true;
    fprintf(stderr, "%s (%s): forward: %s\n", what, imp_engine_backend_name(e), err.msg);
    CHECK(0);
    return false;
}

/* S sequences started from their prompts together, then n greedy tokens each, one forward call
 * per step carrying all S. toks [S, n]; optional gaps [S, n] (top2_gap_rel of each step) and
 * logits [S, n, V]. */
static bool greedy(imp_engine *e, int32_t *const *prompts, const int *lens, int S, int n,
                   int32_t *toks, double *gaps, float *logits) {
    imp_kv_seq *seqs = calloc((size_t)S, sizeof *seqs);
    imp_engine_input *in = calloc((size_t)S, sizeof *in);
    bool ok = seqs && in;
    for (int s = 0; ok && s < S; s++) {
        in[s] = (imp_engine_input){
            .seq = &seqs[s], .tokens = prompts[s], .n_tokens = lens[s], .first_logit = lens[s] - 1};
    }
    for (int i = 0; ok && i < n; i++) {
        if (!(ok = forward(e, in, S, "greedy"))) break;
        for (int s = 0; s < S; s++) {
            const float *l = imp_engine_logits(e, s);
            if (!row_finite(l)) {
                fprintf(stderr, "greedy (%s): non-finite logit, sequence %d step %d\n",
                        imp_engine_backend_name(e), s, i);
                CHECK(0);
                ok = false;
                break;
            }
            toks[(size_t)s * n + i] = argmax(l);
            if (gaps) gaps[(size_t)s * n + i] = top2_gap_rel(l);
            if (logits) memcpy(logits + ((size_t)s * n + i) * V, l, (size_t)V * sizeof(float));
            in[s] = (imp_engine_input){.seq = &seqs[s],
                                       .tokens = &toks[(size_t)s * n + i],
                                       .n_tokens = 1,
                                       .first_logit = 0};
        }
    }
    for (int s = 0; seqs && s < S; s++) imp_engine_seq_release(e, &seqs[s]);
    free(seqs);
    free(in);
    return ok;
}

/* Every position's logits [n, V] of ids prefilled on a fresh sequence in chunks of `chunk`
 * tokens (chunk >= n: one call; the engine still cuts it into steps as it likes). NULL on
 * error or a non-finite logit. */
static float *prefill_rows(imp_engine *e, const int32_t *ids, int n, int chunk) {
    float *r = malloc((size_t)n * (size_t)V * sizeof(float));
    imp_kv_seq s = {0};
    bool ok = r != NULL;
    for (int done = 0; ok && done < n;) {
        const int k = chunk < n - done ? chunk : n - done;
        imp_engine_input in = {.seq = &s, .tokens = ids + done, .n_tokens = k, .first_logit = 0};
        if (!(ok = forward(e, &in, 1, "prefill"))) break;
        for (int t = 0; t < k; t++) {
            const float *l = imp_engine_logits(e, t);
            if (!row_finite(l)) {
                fprintf(stderr, "prefill (%s): non-finite logit at position %d\n",
                        imp_engine_backend_name(e), done + t);
                CHECK(0);
                ok = false;
                break;
            }
            memcpy(r + (size_t)(done + t) * V, l, (size_t)V * sizeof(float));
        }
        done += k;
    }
    imp_engine_seq_release(e, &s);
    if (!ok) free(r);
    return ok ? r : NULL;
}

/* max |a - b| / max |a| over n rows. */
static double rel_diff(const float *a, const float *b, int n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < (size_t)n * (size_t)V; i++) {
        num = fmax(num, fabs((double)a[i] - (double)b[i]));
        den = fmax(den, fabs((double)a[i]));
    }
    return den > 0 ? num / den : num;
}

static void log_softmax(const float *l, double *out);

/* max over n rows of KL(softmax(a) || softmax(b)); lp, lq: V doubles of scratch. */
static double max_kl(const float *a, const float *b, int n, double *lp, double *lq) {
    double worst = 0.0;
    for (int t = 0; t < n; t++) {
        log_softmax(a + (size_t)t * V, lp);
        log_softmax(b + (size_t)t * V, lq);
        double kl = 0.0;
        for (int32_t i = 0; i < V; i++) kl += exp(lp[i]) * (lp[i] - lq[i]);
        worst = fmax(worst, kl);
    }
    return worst;
}

/* log softmax in double: the KL of nearly equal distributions is a difference of small numbers,
 * and logs avoid 0 * log(0/0) where float probabilities underflow. */
static void log_softmax(const float *l, double *out) {
    double mx = -INFINITY, sum = 0.0;
    for (int32_t i = 0; i < V; i++) mx = fmax(mx, l[i]);
    for (int32_t i = 0; i < V; i++) sum += exp((double)l[i] - mx);
    const double lse = mx + log(sum);
    for (int32_t i = 0; i < V; i++) out[i] = (double)l[i] - lse;
}

/* 1. Greedy tokens, CPU vs GPU: part_greedy runs both (the CPU's prompt + generated ids go to
 * *full, the GPU's logits to *gpu_logits [n, V]); greedy_verdict compares them once the noise
 * is known. */
typedef struct {
    int32_t *tc, *tg;
    double *gap;
    float *gpu_logits;
} greedy_run;

static bool part_greedy(const opts *o, const imp_model *m, imp_engine *cpu, imp_engine *gpu,
                        int32_t *full, greedy_run *r) {
    int32_t *prompt = full;
    prompt_make(m, prompt, PROMPT_LEN, 7);
    const int n = o->n_gen, np = PROMPT_LEN;
    r->tc = malloc((size_t)n * sizeof *r->tc);
    r->tg = malloc((size_t)n * sizeof *r->tg);
    r->gap = malloc((size_t)n * sizeof *r->gap);
    r->gpu_logits = malloc((size_t)n * (size_t)V * sizeof(float));
    bool ok = r->tc && r->tg && r->gap && r->gpu_logits && greedy(cpu, &prompt, &np, 1, n, r->tc, r->gap, NULL) &&
              greedy(gpu, &prompt, &np, 1, n, r->tg, NULL, r->gpu_logits);
    if (ok) memcpy(full + np, r->tc, (size_t)n * sizeof *r->tc);
    return ok;
}

static void greedy_verdict(const opts *o, const greedy_run *r) {
    const int n = o->n_gen;
    const int32_t *tc = r->tc, *tg = r->tg;
    const double *gap = r->gap;
    {
        int i = 0;
        while (i < n && tc[i] == tg[i]) i++;
        /* the closest call before the first mismatch: how near this model came to a near-tie */
        int close = 0;
        for (int k = 1; k < i && k < n; k++) {
            if (gap[k] < gap[close]) close = k;
        }
        if (i == n) {
            printf("greedy: tokens identical (%d); closest cpu top-2 gap %.3g of the logit range "
                   "(step %d)\n",
                   n, gap[close], close);
        } else {
            const bool tie = is_tie(o, gap[i]);
            printf("greedy: identical for %d of %d tokens, then cpu %d, gpu %d; cpu top-2 gap %.3g of the "
                   "logit range%s (measured noise %.3g)\n",
                   i, n, tc[i], tg[i], gap[i], tie ? ": a tie within the noise" : "", g_noise);
            CHECKF(tie, "greedy tokens differ at step %d beyond the noise", i);
        }
    }
}

/* 4. The GPU's greedy run with CUDA graphs off: bit-identical logits. */
static bool part_graphs(const opts *o, const imp_model *m, imp_engine_params p, const int32_t *prompt,
                        const greedy_run *r) {
    if (o->fake_gpu) return true;
    p.cuda_graphs = false;
    imp_engine *e = NULL;
    imp_error err = {0};
    if (imp_engine_create(m, &p, &e, &err) != IMP_OK) {
        fprintf(stderr, "gpu engine without graphs: %s\n", err.msg);
        CHECK(0);
        return false;
    }
    const int n = o->n_gen, np = PROMPT_LEN;
    int32_t *t = malloc((size_t)n * sizeof *t);
    float *l = malloc((size_t)n * (size_t)V * sizeof *l);
    bool ok = t && l && greedy(e, (int32_t *const *)&prompt, &np, 1, n, t, NULL, l);
    if (ok) {
        const bool same = !memcmp(l, r->gpu_logits, (size_t)n * (size_t)V * sizeof *l);
        printf("cuda graphs on vs off (%d decode steps): logits %s\n", n, same ? "bit-identical" : "DIFFER");
        CHECKF(same, "decode logits with CUDA graphs differ from without (max rel %.3g)", rel_diff(l, r->gpu_logits, n));
    }
    free(t);
    free(l);
    imp_engine_free(e);
    return ok;
}

/* 2. Teacher-forced KL on the CPU's sequence, and 3a. chunked vs one-shot on the GPU. */
static bool part_forced(const opts *o, imp_engine *cpu, imp_engine *gpu, const int32_t *full,
                        int n) {
    float *rc = prefill_rows(cpu, full, n, n), *rg = prefill_rows(gpu, full, n, n);
    double *lp = malloc((size_t)V * sizeof *lp), *lq = malloc((size_t)V * sizeof *lq);
    bool ok = rc && rg && lp && lq;
    if (ok) {
        double kl_max = 0.0, kl_sum = 0.0, d_max = 0.0;
        int kl_at = 0, d_at = 0;
        for (int t = 0; t < n; t++) {
            const float *a = rc + (size_t)t * V, *b = rg + (size_t)t * V;
            log_softmax(a, lp);
            log_softmax(b, lq);
            double kl = 0.0, lo = INFINITY, hi = -INFINITY, d = 0.0;
            for (int32_t i = 0; i < V; i++) {
                kl += exp(lp[i]) * (lp[i] - lq[i]);
                lo = fmin(lo, a[i]);
                hi = fmax(hi, a[i]);
                d = fmax(d, fabs((double)a[i] - (double)b[i]));
            }
            kl = fmax(kl, 0.0); /* rounding can leave a tiny negative for identical rows */
            d = hi > lo ? d / (hi - lo) : d;
            kl_sum += kl;
            if (kl > kl_max) {
                kl_max = kl;
                kl_at = t;
            }
            if (d > d_max) {
                d_max = d;
                d_at = t;
            }
        }
        printf("teacher-forced (%d positions): max KL %.3g (position %d), mean KL %.3g, "
               "max |dlogit|/range %.3g (position %d)\n",
               n, kl_max, kl_at, kl_sum / n, d_max, d_at);
        CHECKF(kl_max <= o->max_kl, "max KL %.3g at position %d exceeds %.3g", kl_max, kl_at,
               o->max_kl);
        g_noise = d_max;
    }

    /* 3a: the one-shot reference for the last logits is one call asking only for them, so it runs
     * as a single step; the every-position comparison is against the teacher-forced rows. */
    float *ch = ok ? prefill_rows(gpu, full, n, CHUNK) : NULL;
    float *last = ok ? malloc((size_t)V * sizeof *last) : NULL;
    ok = ok && ch && last;
    if (ok) {
        imp_kv_seq s = {0};
        imp_engine_input in = {.seq = &s, .tokens = full, .n_tokens = n, .first_logit = n - 1};
        ok = forward(gpu, &in, 1, "one-shot prefill");
        if (ok) memcpy(last, imp_engine_logits(gpu, 0), (size_t)V * sizeof(float));
        imp_engine_seq_release(gpu, &s);
    }
    if (ok) {
        const double d_last = rel_diff(last, ch + (size_t)(n - 1) * V, 1),
                     d_all = rel_diff(rg, ch, n);
        const double kl_last = max_kl(last, ch + (size_t)(n - 1) * V, 1, lp, lq), kl_all = max_kl(rg, ch, n, lp, lq);
        printf("chunked prefill (%d) vs one-shot on the gpu: max KL last %.3g, every position %.3g; "
               "max |dlogit| / max |logit| %.3g, %.3g\n",
               CHUNK, kl_last, kl_all, d_last, d_all);
        CHECKF(kl_last <= o->max_kl, "chunked prefill's last logits differ from one-shot: KL %.3g", kl_last);
        CHECKF(kl_all <= o->max_kl, "chunked prefill differs from one-shot prefill: KL %.3g", kl_all);
    }
    free(rc);
    free(rg);
    free(lp);
    free(lq);
    free(ch);
    free(last);
    return ok;
}

/* 3b. --seqs sequences with prompts of different lengths in one call per step vs each alone. */
static bool part_batch(const opts *o, const imp_model *m, imp_engine *gpu) {
    const int S = o->n_seqs, n = BATCH_STEPS;
    int32_t **prompts = calloc((size_t)S, sizeof *prompts);
    int *lens = calloc((size_t)S, sizeof *lens);
    int32_t *solo = malloc((size_t)S * n * sizeof *solo),
            *bat = malloc((size_t)S * n * sizeof *bat);
    double *gap = malloc((size_t)S * n * sizeof *gap);
    float *ls = malloc((size_t)S * n * (size_t)V * sizeof *ls),
          *lb = malloc((size_t)S * n * (size_t)V * sizeof *lb);
    bool ok = prompts && lens && solo && bat && gap && ls && lb;
    for (int s = 0; ok && s < S; s++) {
        lens[s] = PROMPT_LEN + 5 * s; /* different lengths: the batch mixes positions and blocks */
        ok = (prompts[s] = malloc((size_t)lens[s] * sizeof(int32_t))) != NULL;
        if (ok) prompt_make(m, prompts[s], lens[s], 100 + (uint64_t)s);
    }
    for (int s = 0; ok && s < S; s++) {
        ok = greedy(gpu, &prompts[s], &lens[s], 1, n, solo + (size_t)s * n, gap + (size_t)s * n,
                    ls + (size_t)s * n * V);
    }
    ok = ok && greedy(gpu, prompts, lens, S, n, bat, NULL, lb);
    if (ok) {
        int bad = 0;
        double worst = 0.0;
        for (int s = 0; s < S; s++) {
            int i = 0;
            while (i < n && solo[(size_t)s * n + i] == bat[(size_t)s * n + i]) i++;
            /* logits are comparable only while both runs fed the same tokens: up to step i */
            const int same = i < n ? i + 1 : n;
            worst = fmax(worst, rel_diff(ls + (size_t)s * n * V, lb + (size_t)s * n * V, same));
            if (i == n) continue;
            const double g = gap[(size_t)s * n + i];
            const bool tie = is_tie(o, g);
            printf("batch: sequence %d first mismatch at %d: alone %d, batched %d; top-2 gap %.3g "
                   "of the logit range%s\n",
                   s, i, solo[(size_t)s * n + i], bat[(size_t)s * n + i], g,
                   tie ? ": a tie within the noise" : "");
            CHECKF(tie, "batched sequence %d differs from running alone at step %d beyond the noise", s, i);
            bad++;
        }
        printf("batch of %d vs alone on the gpu (%d steps): %s; logits max rel diff %.3g\n", S, n,
               bad ? "tokens DIFFER" : "tokens identical", worst);
    }
    for (int s = 0; prompts && s < S; s++) free(prompts[s]);
    free(prompts);
    free(lens);
    free(solo);
    free(bat);
    free(gap);
    free(ls);
    free(lb);
    return ok;
}

/* 5. Device sampling against the host sampler on the same logits (see the top). */
static bool part_sample(const opts *o, const imp_model *m, imp_engine *gpu) {
    if (o->fake_gpu) return true;
    const int S = o->n_seqs, n = BATCH_STEPS;
    imp_sampler_params cfg[3] = {imp_sampler_params_default(), imp_sampler_params_default(),
                                 imp_sampler_params_default()};
    cfg[1].top_k = 0;
    cfg[1].top_p = 0.9f;
    cfg[1].min_p = 0.0f;
    cfg[1].temperature = 1.0f;
    cfg[2].temperature = 0.0f;
    /* with layers on the cpu, the output head runs there and the host samples */
    const bool split = imp_engine_gpu_layers(gpu) < m->hp.n_layer;
    bool ok = true;
    int draws = 0, bad = 0;
    for (int k = 0; ok && k < (split ? 1 : 3); k++) {
        imp_kv_seq *seqs = calloc((size_t)S, sizeof *seqs);
        imp_engine_input *in = calloc((size_t)S, sizeof *in);
        imp_sampler **dev = calloc((size_t)S, sizeof *dev),
                    **host = calloc((size_t)S, sizeof *host);
        int32_t *prompt = malloc(PROMPT_LEN * sizeof *prompt),
                *tok = calloc((size_t)S, sizeof *tok);
        imp_sample_params *sp = calloc((size_t)S, sizeof *sp);
        ok = seqs && in && dev && host && prompt && tok && sp;
        for (int s = 0; ok && s < S; s++) {
            imp_error err = {0};
            cfg[k].seed = 1000 + (uint64_t)s;
            ok = imp_sampler_create(&cfg[k], V, m->vocab, &dev[s], &err) == IMP_OK &&
                 imp_sampler_create(&cfg[k], V, m->vocab, &host[s], &err) == IMP_OK;
        }
        if (ok) prompt_make(m, prompt, PROMPT_LEN, 300 + (uint64_t)k);
        for (int s = 0; s < S; s++)
            in[s] = (imp_engine_input){.seq = &seqs[s],
                                       .tokens = prompt,
                                       .n_tokens = PROMPT_LEN,
                                       .first_logit = PROMPT_LEN - 1};
        for (int i = 0; ok && i < n; i++) {
            if (!(ok = forward(gpu, in, S, "sample"))) break;
            if (split) { /* the logits come from the cpu part: it must refuse, cleanly */
                imp_error err = {0};
                const imp_status st = imp_engine_sample(gpu, 0, S, sp, tok, &err);
                printf("sample: the logits are on the host (%d of %d layers on the gpu); the "
                       "engine's sample %s (%s)\n",
                       imp_engine_gpu_layers(gpu), m->hp.n_layer,
                       st == IMP_ERR_UNSUPPORTED ? "is refused" : "was NOT refused", err.msg);
                CHECK(!imp_engine_can_sample(gpu) && st == IMP_ERR_UNSUPPORTED);
                break;
            }
            if (!imp_engine_can_sample(gpu)) {
                fprintf(stderr, "sample: the %s engine cannot sample its logits\n",
                        imp_engine_backend_name(gpu));
                CHECK(0);
                ok = false;
                break;
            }
            for (int s = 0; ok && s < S; s++) ok = imp_sampler_prepare(dev[s], &sp[s]);
            imp_error err = {0};
            if (ok && imp_engine_sample(gpu, 0, S, sp, tok, &err) != IMP_OK) {
                fprintf(stderr, "sample: %s\n", err.msg);
                ok = false;
            }
            for (int s = 0; ok && s < S; s++) {
                const float *l = imp_engine_logits(gpu, s);
                int32_t want = -1;
                ok = l && imp_sampler_sample_r(host[s], l, sp[s].r, &want, &err) == IMP_OK;
                draws++;
                if (ok && want != tok[s] && bad++ < 5)
                    fprintf(stderr,
                            "sample config %d step %d sequence %d r=%.17g: gpu %d, host %d\n", k, i,
                            s, sp[s].r, tok[s], want);
                in[s] = (imp_engine_input){
                    .seq = &seqs[s], .tokens = &tok[s], .n_tokens = 1, .first_logit = 0};
            }
        }
        for (int s = 0; s < S; s++) {
            if (seqs) imp_engine_seq_release(gpu, &seqs[s]);
            if (dev) imp_sampler_free(dev[s]);
            if (host) imp_sampler_free(host[s]);
        }
        free(seqs);
        free(in);
        free(dev);
        free(host);
        free(prompt);
        free(tok);
        free(sp);
    }
    if (ok && !split)
        printf("sampling on the gpu vs the host sampler on its logits: %d of %d tokens differ\n",
               bad, draws);
    CHECKF(bad == 0,
           "the gpu's sample op picked other tokens than the host sampler in %d of %d draws", bad,
           draws);
    return ok;
}

static int usage(void) {
    fprintf(stderr, "usage: helper_backend_compare MODEL.gguf [--device N] [--kv f16|f32] "
                    "[--tokens 64] [--seqs 4]\n"
                    "                              [--max-kl 1e-3] [--allow-ties] [--gpu-layers N]\n");
    return 2;
}

static bool parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

static bool parse_args(int argc, char **argv, opts *o) {
    *o = (opts){
        .model = NULL, .device = 0, .kv = IMP_TYPE_F16, .n_gen = 64, .n_seqs = 4, .max_kl = 1e-3,
        .gpu_layers = IMP_GPU_LAYERS_ALL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--allow-ties")) {
            o->allow_ties = true;
        } else if (a[0] != '-') {
            if (o->model) return false;
            o->model = a;
        } else if (!v) {
            return false;
        } else if (i++, !strcmp(a, "--device")) {
            o->fake_gpu = !strcmp(v, "cpu");
            if (!o->fake_gpu && !parse_int(v, 0, 1023, &o->device)) return false;
        } else if (!strcmp(a, "--kv")) {
            if (strcmp(v, "f16") && strcmp(v, "f32")) return false;
            o->kv = strcmp(v, "f16") ? IMP_TYPE_F32 : IMP_TYPE_F16;
        } else if (!strcmp(a, "--tokens")) {
            if (!parse_int(v, 1, 4096, &o->n_gen)) return false;
        } else if (!strcmp(a, "--gpu-layers")) {
            if (!parse_int(v, -1, 100000, &o->gpu_layers)) return false;
        } else if (!strcmp(a, "--seqs")) {
            if (!parse_int(v, 1, 256, &o->n_seqs)) return false;
        } else if (!strcmp(a, "--max-kl")) {
            char *end;
            o->max_kl = strtod(v, &end);
            if (end == v || *end || !(o->max_kl >= 0)) return false;
        } else {
            return false;
        }
    }
    return o->model != NULL;
}

int main(int argc, char **argv) {
    opts o;
    if (!parse_args(argc, argv, &o)) return usage();
    imp_model *m = NULL;
    imp_error err = {0};
    if (imp_model_open(o.model, NULL, NULL, &m, &err) != IMP_OK) {
        fprintf(stderr, "%s: %s\n", o.model, err.msg);
        return 1;
    }
    V = m->hp.n_vocab;
    const int n_full = PROMPT_LEN + o.n_gen,
              longest = PROMPT_LEN + 5 * (o.n_seqs - 1) + BATCH_STEPS;
    int max_seq = n_full > longest ? n_full : longest;
    if (max_seq < 512) max_seq = 512;

    imp_engine_params p = imp_engine_params_default();
    p.device = IMP_DEVICE_CPU;
    p.n_threads = 0;
    p.max_seq_len = max_seq;
    p.n_seq_max = 1;
    imp_engine *cpu = NULL, *gpu = NULL;
    if (imp_engine_create(m, &p, &cpu, &err) != IMP_OK) {
        fprintf(stderr, "cpu engine: %s\n", err.msg);
        imp_model_close(m);
        return 1;
    }
    /* the batch holds --seqs sequences at once; everything else one at a time */
    p.n_seq_max = o.n_seqs;
    p.kv_type = o.kv;
    p.gpu_layers = o.gpu_layers;
    if (o.fake_gpu) {
        const int t = imp_engine_threads(cpu);
        p.n_threads = t > 1 ? t / 2 : 2;
        p.split_on_cpu = true;
    } else {
        p.device = o.device;
    }
    imp_status st = imp_engine_create(m, &p, &gpu, &err);
    if (st == IMP_ERR_UNSUPPORTED || st == IMP_ERR_DEVICE) {
        printf("SKIPPED: gpu engine: %s\n", err.msg);
        imp_engine_free(cpu);
        imp_model_close(m);
        return 77;
    }
    if (st != IMP_OK) {
        fprintf(stderr, "gpu engine: %s\n", err.msg);
        imp_engine_free(cpu);
        imp_model_close(m);
        return 1;
    }
    printf(
        "model %s (%s), vocab %d; reference %s (%d threads) vs %s device %d (%d threads, %d of %d "
        "layers on the gpu), kv %s\n",
        m->name, m->arch->name, V, imp_engine_backend_name(cpu), imp_engine_threads(cpu),
        imp_engine_backend_name(gpu), imp_engine_device(gpu), imp_engine_threads(gpu),
        imp_engine_gpu_layers(gpu), m->hp.n_layer, o.fake_gpu ? "f32" : imp_type_name(o.kv));

    int32_t *full = malloc((size_t)n_full * sizeof *full);
    greedy_run gr = {0};
    bool ok = full && part_greedy(&o, m, cpu, gpu, full, &gr);
    ok = ok && part_forced(&o, cpu, gpu, full, n_full);
    if (ok) greedy_verdict(&o, &gr);
    ok = ok && part_batch(&o, m, gpu);
    ok = ok && part_graphs(&o, m, p, full, &gr);
    ok = ok && part_sample(&o, m, gpu);
    CHECKF(ok, "a comparison could not run to the end (see above)");
    free(gr.tc);
    free(gr.tg);
    free(gr.gap);
    free(gr.gpu_logits);
    free(full);
    imp_engine_free(gpu);
    imp_engine_free(cpu);
    imp_model_close(m);
    return imp_test_finish("helper_backend_compare");
}
