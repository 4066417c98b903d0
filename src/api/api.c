/*
 * The public API (include/imp/imp.h) over model + engine + sampler. A context is one
 * conversation: an engine with one KV sequence, the token history that sequence holds, a
 * sampler, and the logits of the last computed token.
 *
 * Sampling runs on the backend (backend.h's sample op) when it has one and the sampler's
 * configuration is all that op runs (imp_sampler_prepare): the logits then stay on the device
 * and are downloaded only if imp_get_logits asks for them. Otherwise the host sampler reads
 * the downloaded logits. Both pick the same token for the same logits and seed. A decode step
 * feeds its token without waiting for the forward to finish (engine.h: imp_engine_sync); the
 * next sample waits for it, so a token costs one host synchronization. imp_prefill* and the
 * prompt of imp_generate wait, so their timings hold the whole computation.
 */
#define _POSIX_C_SOURCE 200809L
#include <imp/imp.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/threads.h"
#include "chat/chat.h"
#include "engine/engine.h"
#include "engine/sampler.h"
#include "engine/stop.h"
#include "tokenizer/tokenizer.h"

struct ImpModel_ {
    imp_model *m;
};

struct ImpContext_ {
    ImpModel model;
    imp_engine *e;
    imp_kv_seq seq;
    imp_tokens hist;          /* tokens whose K/V are in seq, in order      */
    imp_sampler *smp;         /* for imp_decode_step                         */
    int32_t logits_row;       /* the engine's row of hist's last token's logits, or -1 */
    int32_t ith_first, ith_n; /* imp_get_logits_ith: tokens [first, n) of the last prefill */
    ImpStats stats;
    imp_error err;
};

/* ---- models ------------------------------------------------------------------------------ */

typedef struct {
    ImpProgressFn fn;
    void *user;
} progress_fw;

static void progress_tramp(void *user, uint64_t done, uint64_t total) {
    progress_fw *p = user;
    p->fn(done, total, p->user);
}

ImpStatus imp_model_load_ex(const char *path, ImpFormat format, ImpProgressFn progress, void *user, ImpModel *out,
                            char *errbuf, size_t err_cap) {
    imp_error err = {0};
    imp_status st = IMP_OK;
    if (out) *out = NULL;
    if (!path || !out) {
        st = imp_error_set(&err, IMP_ERR_INVALID_ARG, "imp_model_load: NULL path or out");
    } else if (format != IMP_FORMAT_GGUF) {
        st = imp_error_set(&err, IMP_ERR_UNSUPPORTED, "imp_model_load: format %d is not supported (GGUF only)", (int)format);
    }
    ImpModel model = NULL;
    if (st == IMP_OK) {
        model = imp_calloc(1, sizeof *model);
        if (!model) st = imp_error_set(&err, IMP_ERR_NOMEM, "out of memory");
    }
    if (st == IMP_OK) {
        progress_fw fw = {progress, user};
        st = imp_model_open(path, progress ? progress_tramp : NULL, &fw, &model->m, &err);
    }
    if (st != IMP_OK) {
        free(model);
        IMP_LOG_E("%s", err.msg);
        if (errbuf && err_cap) snprintf(errbuf, err_cap, "%s", err.msg);
        return st;
    }
    if (errbuf && err_cap) errbuf[0] = 0;
    *out = model;
    return IMP_OK;
}

ImpStatus imp_model_load(const char *path, ImpFormat format, ImpModel *out) {
    return imp_model_load_ex(path, format, NULL, NULL, out, NULL, 0);
}

void imp_model_free(ImpModel model) {
    if (!model) return;
    imp_model_close(model->m);
    free(model);
}

ImpStatus imp_model_info(ImpModel model, ImpModelInfo *info) {
    if (!model || !info) return IMP_ERR_INVALID_ARG;
    const imp_model *m = model->m;
    *info = (ImpModelInfo){.name = m->name, .architecture = m->arch->name, .n_vocab = m->hp.n_vocab,
                           .n_ctx_train = m->hp.n_ctx_train, .n_layer = m->hp.n_layer, .n_embd = m->hp.n_embd,
                           .n_head = m->hp.n_head, .n_head_kv = m->hp.n_head_kv, .n_params = m->n_params,
                           .weight_bytes = m->weight_bytes, .bos = m->vocab->bos, .eos = m->vocab->eos,
                           .add_bos = m->vocab->add_bos, .has_chat_template = m->vocab->chat_template != NULL};
    return IMP_OK;
}

/* ---- tokens ------------------------------------------------------------------------------ */

static unsigned tok_flags(const imp_vocab *v, bool add_special, bool parse_special) {
    unsigned f = imp_tokenize_default_flags(v, parse_special);
    if (!add_special) f &= ~(unsigned)(IMP_TOK_ADD_BOS | IMP_TOK_ADD_EOS);
    return f;
}

ImpStatus imp_tokenize(ImpModel model, const char *text, size_t len, bool add_special, bool parse_special,
                       int32_t *tokens, size_t cap, size_t *n_tokens) {
    if (!model || (!text && len) || !n_tokens || (!tokens && cap)) return IMP_ERR_INVALID_ARG;
    imp_error err = {0};
    imp_tokens t = {0};
    imp_status st = imp_vocab_tokenize(model->m->vocab, text ? text : "", len,
                                 tok_flags(model->m->vocab, add_special, parse_special), &t, &err);
    if (st != IMP_OK) {
        IMP_LOG_E("imp_tokenize: %s", err.msg);
        return st;
    }
    *n_tokens = t.n;
    if (t.n > cap) {
        imp_tokens_free(&t);
        return IMP_ERR_RANGE;
    }
    if (t.n) memcpy(tokens, t.ids, t.n * sizeof *tokens);
    imp_tokens_free(&t);
    return IMP_OK;
}

ImpStatus imp_detokenize(ImpModel model, const int32_t *tokens, size_t n, bool special, char *out, size_t cap,
                         size_t *len) {
    if (!model || (!tokens && n) || !len || (!out && cap)) return IMP_ERR_INVALID_ARG;
    imp_error err = {0};
    imp_bytes b = {0};
    imp_status st = imp_vocab_detokenize(model->m->vocab, tokens, n, special ? IMP_DETOK_SPECIAL : 0, &b, &err);
    if (st != IMP_OK) {
        IMP_LOG_E("imp_detokenize: %s", err.msg);
        free(b.p);
        return st;
    }
    *len = b.n;
    if (cap) {
        const size_t k = b.n < cap - 1 ? b.n : cap - 1;
        if (k) memcpy(out, b.p, k);
        out[k] = 0;
    }
    free(b.p);
    return b.n < cap ? IMP_OK : IMP_ERR_RANGE;
}

/* ---- contexts ---------------------------------------------------------------------------- */

ImpConfig imp_config_default(void) {
    return (ImpConfig){.n_threads = 0, .max_seq_len = 0, .max_batch = 512, .kv_block_size = 16,
                       .device = IMP_DEVICE_AUTO, .kv_type = IMP_KV_F16, .cuda_graphs = 1,
                       .gpu_layers = IMP_GPU_LAYERS_ALL};
}

static ImpStatus ctx_fail(ImpContext ctx, imp_status st) {
    IMP_LOG_E("%s", ctx->err.msg);
    return st;
}

ImpGenerateParams imp_generate_params_default(void) {
    imp_sampler_params s = imp_sampler_params_default();
    return (ImpGenerateParams){
        .max_tokens = 256, .temperature = s.temperature, .top_k = s.top_k, .top_p = s.top_p, .min_p = s.min_p,
        .typical_p = s.typical_p, .repeat_penalty = s.repeat_penalty, .repeat_last_n = s.repeat_last_n,
        .frequency_penalty = s.frequency_penalty, .presence_penalty = s.presence_penalty,
        .dry_multiplier = s.dry_multiplier, .dry_base = s.dry_base, .dry_allowed_length = s.dry_allowed_length,
        .dry_penalty_last_n = s.dry_penalty_last_n, .mirostat = s.mirostat, .mirostat_tau = s.mirostat_tau,
        .mirostat_eta = s.mirostat_eta, .seed = s.seed, .parse_special = true, .add_special = true};
}

/* A sampler for g; with_history: the context's tokens so far count for the penalties. */
static imp_status make_sampler(ImpContext ctx, const ImpGenerateParams *g, bool with_history, imp_sampler **out) {
    imp_sampler_params s = imp_sampler_params_default();
    s.temperature = g->temperature;
    s.top_k = g->top_k;
    s.top_p = g->top_p;
    s.min_p = g->min_p;
    s.typical_p = g->typical_p;
    s.repeat_penalty = g->repeat_penalty;
    s.repeat_last_n = g->repeat_last_n;
    s.frequency_penalty = g->frequency_penalty;
    s.presence_penalty = g->presence_penalty;
    s.dry_multiplier = g->dry_multiplier;
    s.dry_base = g->dry_base;
    s.dry_allowed_length = g->dry_allowed_length;
    s.dry_penalty_last_n = g->dry_penalty_last_n;
    if (g->dry_breakers) {
        s.dry_breakers = g->dry_breakers;
        s.n_dry_breakers = g->n_dry_breakers;
    }
    s.mirostat = g->mirostat;
    s.mirostat_tau = g->mirostat_tau;
    s.mirostat_eta = g->mirostat_eta;
    s.seed = g->seed;
    /* ImpLogitBias and imp_logit_bias have the same layout (checked below). */
    s.logit_bias = (const imp_logit_bias *)g->logit_bias;
    s.n_logit_bias = g->n_logit_bias;
    const imp_model *m = ctx->model->m;
    imp_status st = imp_sampler_create(&s, m->hp.n_vocab, m->vocab, out, &ctx->err);
    if (st != IMP_OK) return st;
    for (size_t i = 0; with_history && i < ctx->hist.n; i++) imp_sampler_accept(*out, ctx->hist.ids[i]);
    return IMP_OK;
}

_Static_assert(sizeof(ImpLogitBias) == sizeof(imp_logit_bias), "logit bias layouts differ");

ImpStatus imp_context_create(ImpModel model, const ImpConfig *cfg, ImpContext *out) {
    if (!out) return IMP_ERR_INVALID_ARG;
    *out = NULL;
    if (!model) return IMP_ERR_INVALID_ARG;
    ImpConfig d = imp_config_default();
    if (!cfg) cfg = &d;
    ImpContext ctx = imp_calloc(1, sizeof *ctx);
    if (!ctx) return IMP_ERR_NOMEM;
    ctx->model = model;
    ctx->logits_row = -1;
    imp_engine_params ep = imp_engine_params_default();
    ep.n_threads = cfg->n_threads;
    ep.max_seq_len = cfg->max_seq_len;
    ep.max_batch = cfg->max_batch > 0 ? cfg->max_batch : 512;
    ep.block_size = cfg->kv_block_size > 0 ? cfg->kv_block_size : 16;
    ep.device = cfg->device;
    ep.cuda_graphs = cfg->cuda_graphs != 0;
    ep.gpu_layers = cfg->gpu_layers; /* checked by the engine */
    if (cfg->kv_type != IMP_KV_F16 && cfg->kv_type != IMP_KV_F32) {
        imp_context_free(ctx);
        return IMP_ERR_INVALID_ARG;
    }
    ep.kv_type = cfg->kv_type == IMP_KV_F32 ? IMP_TYPE_F32 : IMP_TYPE_F16;
    imp_status st = imp_engine_create(model->m, &ep, &ctx->e, &ctx->err);
    if (st == IMP_OK) {
        ImpGenerateParams g = imp_generate_params_default();
        st = make_sampler(ctx, &g, false, &ctx->smp);
    }
    if (st != IMP_OK) {
        ctx_fail(ctx, st);
        imp_context_free(ctx);
        return st;
    }
    *out = ctx;
    return IMP_OK;
}

void imp_context_free(ImpContext ctx) {
    if (!ctx) return;
    if (ctx->e) imp_engine_seq_release(ctx->e, &ctx->seq);
    imp_engine_free(ctx->e);
    imp_sampler_free(ctx->smp);
    imp_tokens_free(&ctx->hist);
    free(ctx);
}

const char *imp_context_last_error(ImpContext ctx) { return ctx ? ctx->err.msg : ""; }

void imp_context_reset(ImpContext ctx) {
    if (!ctx) return;
    imp_engine_seq_truncate(ctx->e, &ctx->seq, 0);
    ctx->hist.n = 0;
    ctx->logits_row = -1;
    ctx->ith_first = ctx->ith_n = 0;
    memset(&ctx->stats, 0, sizeof ctx->stats);
    imp_sampler_reset(ctx->smp);
}

int32_t imp_context_n_past(ImpContext ctx) { return ctx ? (int32_t)ctx->hist.n : 0; }

int32_t imp_context_device(ImpContext ctx) { return ctx ? imp_engine_device(ctx->e) : IMP_DEVICE_CPU; }

ImpStatus imp_context_stats(ImpContext ctx, ImpStats *stats) {
    if (!ctx || !stats) return IMP_ERR_INVALID_ARG;
    *stats = ctx->stats;
    return IMP_OK;
}

const float *imp_get_logits(ImpContext ctx, int32_t *n_vocab) {
    if (!ctx) return NULL;
    if (n_vocab) *n_vocab = ctx->model->m->hp.n_vocab;
    return ctx->logits_row >= 0 ? imp_engine_logits(ctx->e, ctx->logits_row) : NULL;
}

/* Appends tokens to the history and computes them, keeping the logits of tokens [first, n); the
 * last one's become current. */
static imp_status ctx_feed_from(ImpContext ctx, const int32_t *tokens, size_t n, size_t first) {
    if (n == 0) return IMP_OK;
    ctx->logits_row = -1;
    ctx->ith_first = ctx->ith_n = 0;
    if (n > (size_t)INT32_MAX) return imp_error_set(&ctx->err, IMP_ERR_RANGE, "too many tokens");
    imp_engine_input in = {.seq = &ctx->seq, .tokens = tokens, .n_tokens = (int32_t)n, .first_logit = (int32_t)first};
    const int32_t before = ctx->seq.n_pos;
    imp_status st = imp_engine_forward(ctx->e, &in, 1, &ctx->err);
    /* keep the history equal to what the cache holds, even after a partial failure */
    for (int32_t i = 0; i < ctx->seq.n_pos - before; i++) {
        imp_status s2 = imp_tokens_push(&ctx->hist, tokens[i], &ctx->err);
        if (s2 != IMP_OK) {
            imp_engine_seq_truncate(ctx->e, &ctx->seq, before + i);
            return s2;
        }
    }
    if (st == IMP_OK) {
        ctx->logits_row = (int32_t)(n - first) - 1;
        ctx->ith_first = (int32_t)first;
        ctx->ith_n = (int32_t)n;
    }
    return st;
}

static imp_status ctx_feed(ImpContext ctx, const int32_t *tokens, size_t n) {
    return ctx_feed_from(ctx, tokens, n, n ? n - 1 : 0);
}

ImpStatus imp_prefill_logits(ImpContext ctx, const int32_t *tokens, size_t n, size_t first) {
    if (!ctx || (!tokens && n) || (n && first >= n)) return IMP_ERR_INVALID_ARG;
    imp_error_clear(&ctx->err);
    const double t0 = imp_time_s();
    imp_status st = ctx_feed_from(ctx, tokens, n, first);
    if (st == IMP_OK) st = imp_engine_sync(ctx->e, &ctx->err); /* done when it returns (timings) */
    ctx->stats.n_prompt += (int32_t)n;
    ctx->stats.prompt_s += imp_time_s() - t0;
    if (st == IMP_OK) {
        for (size_t i = 0; i < n; i++) imp_sampler_accept(ctx->smp, tokens[i]);
    }
    return st == IMP_OK ? IMP_OK : ctx_fail(ctx, st);
}

const float *imp_get_logits_ith(ImpContext ctx, int32_t i) {
    if (!ctx || i < ctx->ith_first || i >= ctx->ith_n) return NULL;
    return imp_engine_logits(ctx->e, i - ctx->ith_first);
}

ImpStatus imp_prefill(ImpContext ctx, const int32_t *tokens, size_t n) {
    return imp_prefill_logits(ctx, tokens, n, n ? n - 1 : 0);
}

ImpStatus imp_set_sampling(ImpContext ctx, const ImpGenerateParams *params) {
    if (!ctx || !params) return IMP_ERR_INVALID_ARG;
    imp_error_clear(&ctx->err);
    imp_sampler *s = NULL;
    imp_status st = make_sampler(ctx, params, true, &s);
    if (st != IMP_OK) return ctx_fail(ctx, st);
    imp_sampler_free(ctx->smp);
    ctx->smp = s;
    return IMP_OK;
}

/* Samples from the current logits with smp: on the backend when it can run smp's
 * configuration (the logits stay there), else on the host. */
static imp_status ctx_sample(ImpContext ctx, imp_sampler *smp, int32_t *token) {
    if (ctx->logits_row < 0) {
        return imp_error_set(&ctx->err, IMP_ERR_INVALID_ARG, "no logits to sample from: prefill a prompt first");
    }
    imp_sample_params sp;
    if (imp_engine_can_sample(ctx->e) && imp_sampler_prepare(smp, &sp)) {
        int32_t t = -1;
        imp_status st = imp_engine_sample(ctx->e, ctx->logits_row, 1, &sp, &t, &ctx->err);
        if (st == IMP_OK && t < 0) {
            st = imp_error_set(&ctx->err, IMP_ERR_INVALID_ARG,
                               "sampler: no token has a logit above -inf (all banned or NaN)");
        }
        if (st == IMP_OK) *token = t;
        return st;
    }
    const float *logits = imp_engine_logits(ctx->e, ctx->logits_row);
    if (!logits)
        return imp_error_set(&ctx->err, IMP_ERR_DEVICE,
                             "the logits could not be read from the device");
    return imp_sampler_sample(smp, logits, token, &ctx->err);
}

ImpStatus imp_decode_step(ImpContext ctx, int32_t *token, bool *is_eog) {
    if (!ctx || !token) return IMP_ERR_INVALID_ARG;
    imp_error_clear(&ctx->err);
    const double t0 = imp_time_s();
    int32_t t;
    imp_status st = ctx_sample(ctx, ctx->smp, &t);
    if (st != IMP_OK) return ctx_fail(ctx, st);
    *token = t;
    const bool eog = imp_vocab_is_eog(ctx->model->m->vocab, t);
    if (is_eog) *is_eog = eog;
    imp_sampler_accept(ctx->smp, t);
    if (!eog) {
        if (ctx->hist.n + 1 > (size_t)imp_engine_max_seq_len(ctx->e)) {
            imp_error_set(&ctx->err, IMP_ERR_RANGE, "context full (%d tokens)", imp_engine_max_seq_len(ctx->e));
            return ctx_fail(ctx, IMP_ERR_RANGE);
        }
        st = ctx_feed(ctx, &t, 1);
        if (st != IMP_OK) return ctx_fail(ctx, st);
    }
    ctx->stats.n_generated++;
    ctx->stats.generate_s += imp_time_s() - t0;
    return IMP_OK;
}

/* ---- generate ---------------------------------------------------------------------------- */

typedef struct {
    ImpContext ctx;
    const ImpGenerateParams *p;
    char *out;
    size_t cap, len;
    bool full;
} gen_out;

/* Shows text: the caller's buffer (while it has room) and the streaming callback. Returns
 * false when generation should stop. */
static bool gen_emit(gen_out *g, const char *s, size_t n) {
    if (n == 0) return true;
    if (g->cap) {
        size_t room = g->cap - 1 - g->len, k = n < room ? n : room;
        memcpy(g->out + g->len, s, k);
        g->len += k;
        g->out[g->len] = 0;
        if (k < n) g->full = true;
    }
    if (g->p->on_text && !g->p->on_text(s, n, g->p->user)) return false;
    return !g->full;
}

static bool is_stop_token(const ImpGenerateParams *p, int32_t t) {
    for (int32_t i = 0; i < p->n_stop_tokens; i++) {
        if (p->stop_tokens[i] == t) return true;
    }
    return false;
}

static imp_status gen_run(ImpContext ctx, const char *prompt, const ImpGenerateParams *p, gen_out *go,
                          imp_sampler *smp, imp_stop *stop) {
    const imp_model *m = ctx->model->m;
    imp_error *err = &ctx->err;
    imp_tokens pt = {0};
    imp_bytes piece = {0}, shown = {0};
    imp_status st = imp_vocab_tokenize(m->vocab, prompt, strlen(prompt), tok_flags(m->vocab, p->add_special, p->parse_special),
                                 &pt, err);
    if (st == IMP_OK && pt.n == 0) st = imp_error_set(err, IMP_ERR_INVALID_ARG, "the prompt has no tokens");
    if (st == IMP_OK && pt.n >= (size_t)imp_engine_max_seq_len(ctx->e)) {
        st = imp_error_set(err, IMP_ERR_RANGE, "the prompt has %zu tokens; the context holds %d", pt.n,
                           imp_engine_max_seq_len(ctx->e));
    }
    if (st != IMP_OK) goto done;

    /* Reuse the history's common prefix; at least the last prompt token is computed again so
     * its logits are current. */
    size_t keep = 0;
    while (keep < ctx->hist.n && keep < pt.n && ctx->hist.ids[keep] == pt.ids[keep]) keep++;
    if (keep == pt.n) keep--;
    imp_engine_seq_truncate(ctx->e, &ctx->seq, (int32_t)keep);
    ctx->hist.n = keep;
    ctx->logits_row = -1;
    memset(&ctx->stats, 0, sizeof ctx->stats);
    ctx->stats.n_reused = (int32_t)keep;
    ctx->stats.n_prompt = (int32_t)(pt.n - keep);
    double t0 = imp_time_s();
    st = ctx_feed(ctx, pt.ids + keep, pt.n - keep);
    if (st == IMP_OK) st = imp_engine_sync(ctx->e, err); /* prompt_s counts the whole prompt */
    ctx->stats.prompt_s = imp_time_s() - t0;
    if (st != IMP_OK) goto done;
    for (size_t i = 0; i < pt.n; i++) imp_sampler_accept(smp, pt.ids[i]);

    imp_detok_stream ds;
    imp_detok_stream_init(&ds, m->vocab, IMP_DETOK_NO_STRIP);
    t0 = imp_time_s();
    ImpStopReason why = IMP_STOP_MAX_TOKENS;
    for (int32_t i = 0; i < p->max_tokens; i++) {
        int32_t t;
        st = ctx_sample(ctx, smp, &t);
        if (st != IMP_OK) goto done;
        if (imp_vocab_is_eog(m->vocab, t)) {
            why = IMP_STOP_EOG;
            break;
        }
        if (is_stop_token(p, t)) {
            why = IMP_STOP_TOKEN;
            break;
        }
        imp_sampler_accept(smp, t);
        ctx->stats.n_generated++;
        piece.n = shown.n = 0;
        bool stopped = false;
        st = imp_detok_stream_push(&ds, t, &piece, err);
        if (st == IMP_OK) st = imp_stop_push(stop, piece.p ? piece.p : "", piece.n, &shown, &stopped, err);
        if (st != IMP_OK) goto done;
        if (!gen_emit(go, shown.p, shown.n)) {
            why = go->full ? IMP_STOP_BUFFER_FULL : IMP_STOP_CALLBACK;
            break;
        }
        if (stopped) {
            why = IMP_STOP_STRING;
            break;
        }
        if (i + 1 == p->max_tokens) break; /* the last token is not computed: nothing would use it */
        if (ctx->hist.n + 1 > (size_t)imp_engine_max_seq_len(ctx->e)) {
            why = IMP_STOP_CONTEXT_FULL;
            break;
        }
        st = ctx_feed(ctx, &t, 1);
        if (st != IMP_OK) goto done;
    }
    if (why != IMP_STOP_STRING && why != IMP_STOP_BUFFER_FULL && why != IMP_STOP_CALLBACK) {
        piece.n = shown.n = 0;
        st = imp_detok_stream_finish(&ds, &piece, err);
        if (st == IMP_OK) {
            bool stopped = false;
            st = imp_stop_push(stop, piece.p ? piece.p : "", piece.n, &shown, &stopped, err);
            if (st == IMP_OK && !stopped) st = imp_stop_flush(stop, &shown, err);
        }
        if (st == IMP_OK) gen_emit(go, shown.p, shown.n);
    }
    ctx->stats.generate_s = imp_time_s() - t0;
    ctx->stats.stop = why;
done:
    imp_tokens_free(&pt);
    free(piece.p);
    free(shown.p);
    return st;
}

ImpStatus imp_generate(ImpContext ctx, const char *prompt, const ImpGenerateParams *params, char *out, size_t cap,
                       size_t *out_len) {
    if (!ctx) return IMP_ERR_INVALID_ARG;
    imp_error_clear(&ctx->err);
    if (!prompt || (!out && cap)) {
        imp_error_set(&ctx->err, IMP_ERR_INVALID_ARG, "imp_generate: NULL prompt or output buffer");
        return ctx_fail(ctx, IMP_ERR_INVALID_ARG);
    }
    ImpGenerateParams d = imp_generate_params_default();
    const ImpGenerateParams *p = params ? params : &d;
    if (p->max_tokens < 0 || p->n_stop < 0 || p->n_stop_tokens < 0 || (p->n_stop_tokens && !p->stop_tokens)) {
        imp_error_set(&ctx->err, IMP_ERR_INVALID_ARG, "imp_generate: negative max_tokens or bad stop lists");
        return ctx_fail(ctx, IMP_ERR_INVALID_ARG);
    }
    if (cap) out[0] = 0;
    if (out_len) *out_len = 0;
    imp_sampler *smp = NULL;
    imp_stop *stop = NULL;
    /* no history: gen_run accepts the whole prompt once the reusable prefix is known */
    imp_status st = make_sampler(ctx, p, false, &smp);
    if (st == IMP_OK) st = imp_stop_create(p->stop, p->n_stop, &stop, &ctx->err);
    gen_out go = {.ctx = ctx, .p = p, .out = out, .cap = cap};
    if (st == IMP_OK) st = gen_run(ctx, prompt, p, &go, smp, stop);
    imp_sampler_free(smp);
    imp_stop_free(stop);
    if (out_len) *out_len = go.len;
    return st == IMP_OK ? IMP_OK : ctx_fail(ctx, st);
}

/* ---- chat templates ---------------------------------------------------------------------- */

static bool chat_resolve(ImpModel model, const char *tmpl, imp_chat_family *fam, char *why, size_t why_cap) {
    if (!model) return false;
    if (!tmpl || !strcmp(tmpl, "auto")) {
        const char *t = model->m->vocab->chat_template;
        if (!t || !*t) {
            *fam = IMP_CHAT_NONE;
            if (why && why_cap) snprintf(why, why_cap, "the model has no chat template: plain completion");
            return true;
        }
        imp_chat_detection d = imp_chat_detect(t, strlen(t));
        *fam = d.family;
        if (why && why_cap) imp_chat_detection_describe(&d, why, why_cap);
        return true;
    }
    imp_error err = {0};
    if (imp_chat_family_from_name(tmpl, fam, &err) != IMP_OK || *fam == IMP_CHAT_AUTO) {
        if (why && why_cap) snprintf(why, why_cap, "%s", err.msg);
        return false;
    }
    if (why && why_cap) snprintf(why, why_cap, "%s (asked for)", imp_chat_family_name(*fam));
    return true;
}

const char *imp_chat_format(ImpModel model, const char *tmpl, char *why, size_t why_cap) {
    imp_chat_family fam;
    if (!chat_resolve(model, tmpl, &fam, why, why_cap)) return NULL;
    return imp_chat_family_name(fam);
}

ImpStatus imp_chat_apply(ImpModel model, const char *tmpl, const ImpChatMessage *msgs, size_t n, bool add_assistant,
                         char *out, size_t cap, size_t *len) {
    if (!model || !len || (!out && cap) || (!msgs && n)) return IMP_ERR_INVALID_ARG;
    imp_chat_family fam;
    char why[256];
    if (!chat_resolve(model, tmpl, &fam, why, sizeof why)) {
        IMP_LOG_E("imp_chat_apply: %s", why);
        return IMP_ERR_INVALID_ARG;
    }
    imp_chat_msg *cm = imp_calloc(n ? n : 1, sizeof *cm);
    if (!cm) return IMP_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        cm[i].role = msgs[i].role;
        cm[i].content = msgs[i].content;
    }
    char *text = NULL;
    size_t tlen = 0;
    imp_error err = {0};
    imp_status st = imp_chat_render(fam, cm, n, add_assistant, &text, &tlen, &err);
    free(cm);
    if (st != IMP_OK) {
        IMP_LOG_E("imp_chat_apply: %s", err.msg);
        return st;
    }
    *len = tlen;
    if (cap) {
        const size_t k = tlen < cap - 1 ? tlen : cap - 1;
        memcpy(out, text, k);
        out[k] = 0;
    }
    imp_chat_free(text);
    return tlen < cap ? IMP_OK : IMP_ERR_RANGE;
}
