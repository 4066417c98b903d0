/*
 * The forward pass over the backend ops (see forward.h). Per layer:
 *
 *   xn = norm(x)                       attn_norm
 *   q, k, v = xn Wq, xn Wk, xn Wv       (+ biases; one joined matrix for phi3, and on
 *                                        backends that join them on upload)
 *   q, k = norm per head               qk_norm rows (qwen3, gemma3)
 *   rope(q, k); store k, v in the pool
 *   att = attention(q, pool)           causal, GQA, sliding window on swa layers
 *   o = att Wo (+ bias); o = norm(o)   post_attention_norm (gemma3)
 *   x = x + o
 *   xn = norm(x)                       ffn_norm
 *   h = act(xn Wgate) * (xn Wup)       SiLU or GELU-tanh; phi3's up holds gate | up (and
 *                                        every model's on backends that join them)
 *   o = h Wdown; o = norm(o)           post_ffw_norm (gemma3)
 *   x = x + o
 *
 * then logits = norm(x[out rows]) Wout for the rows that need them.
 *
 * A model split by layers over backends (imp_forward_part) runs each part's layers on its
 * backend and hands the residual stream x to the next part at the boundary; the embedding and
 * the logits belong to the last part.
 */
#include "model/forward.h"

#include <math.h>
#include <string.h>

#define OP(call)                                                                                   \
    do {                                                                                           \
        imp_status st_ = (call);                                                                   \
        if (st_ != IMP_OK) {                                                                       \
            return imp_error_set(err, st_, "forward: %s failed in layer %d (%s)", #call, layer,    \
                                 imp_status_str(st_));                                             \
        }                                                                                          \
    } while (0)

static imp_status ws_tensor(imp_backend *be, imp_tensor *t, int64_t cols, int64_t rows, imp_error *err) {
    size_t bytes = (size_t)cols * (size_t)rows * sizeof(float);
    if (bytes == 0) { /* a part without logits (max_out 0) */
        *t = imp_tensor_make(IMP_TYPE_F32, cols, rows, NULL);
        return IMP_OK;
    }
    void *p = be->ops->alloc(be, bytes, err);
    if (!p) return err ? err->status : IMP_ERR_NOMEM;
    *t = imp_tensor_make(IMP_TYPE_F32, cols, rows, p);
    return IMP_OK;
}

void imp_forward_ws_free(imp_backend *be, imp_forward_ws *ws) {
    imp_tensor *all[] = {&ws->x, &ws->xn, &ws->qkv, &ws->att, &ws->o, &ws->gu, &ws->h, &ws->xo, &ws->logits};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (all[i]->data) be->ops->dealloc(be, all[i]->data);
    }
    memset(ws, 0, sizeof *ws);
}

imp_status imp_forward_ws_alloc(imp_backend *be, const imp_hparams *hp, int32_t max_tokens, int32_t max_out,
                                imp_forward_ws *ws, imp_error *err) {
    memset(ws, 0, sizeof *ws);
    const int64_t T = max_tokens, E = hp->n_embd, F = hp->n_ff, QD = (int64_t)hp->n_head * hp->head_dim,
                  KD = (int64_t)hp->n_head_kv * hp->head_dim;
    imp_status st = ws_tensor(be, &ws->x, E, T, err);
    if (st == IMP_OK) st = ws_tensor(be, &ws->xn, E, T, err);
    if (st == IMP_OK) st = ws_tensor(be, &ws->qkv, QD + 2 * KD, T, err);
    if (st == IMP_OK) st = ws_tensor(be, &ws->att, QD, T, err);
    if (st == IMP_OK) st = ws_tensor(be, &ws->o, E, T, err);
    if (st == IMP_OK) st = ws_tensor(be, &ws->gu, 2 * F, T, err);
    if (st == IMP_OK) st = ws_tensor(be, &ws->h, F, T, err);
    if (st == IMP_OK) st = ws_tensor(be, &ws->xo, E, max_out, err);
    if (st == IMP_OK) st = ws_tensor(be, &ws->logits, hp->n_vocab, max_out, err);
    if (st != IMP_OK) {
        imp_forward_ws_free(be, ws);
        return st;
    }
    ws->max_tokens = max_tokens;
    ws->max_out = max_out;
    return IMP_OK;
}

/* The RoPE of a layer: sliding-window layers of gemma3 use their own base and no scaling. */
static imp_rope layer_rope(const imp_arch *a, const imp_hparams *hp, const imp_weights *w, bool swa) {
    imp_rope r = {.style = a->rope, .n_dims = hp->rope_dims, .freq_base = hp->rope_base, .freq_scale = 1.0f,
                  .attn_factor = 1.0f, .beta_fast = hp->yarn_beta_fast, .beta_slow = hp->yarn_beta_slow,
                  .n_ctx_orig = hp->rope_ctx_orig};
    if (swa) {
        r.freq_base = hp->rope_base_swa;
        return r;
    }
    if (hp->rope_scaling != IMP_ROPE_SCALING_NONE) r.freq_scale = 1.0f / hp->rope_factor;
    if (hp->rope_scaling == IMP_ROPE_SCALING_YARN) {
        r.ext_factor = hp->yarn_ext_factor;
        r.attn_factor = hp->yarn_attn_factor;
    }
    r.freq_factors = w->rope_freqs.data ? &w->rope_freqs : NULL;
    return r;
}

/* Layers [P->l0, P->l1) on P's backend, over the T rows of P's residual stream x. */
static imp_status run_layers(const imp_model *m, const imp_forward_part *P, const imp_batch *b, imp_error *err) {
    imp_backend *be = P->be;
    const imp_backend_ops *op = be->ops;
    const imp_hparams *hp = &m->hp;
    const imp_arch *a = m->arch;
    const imp_weights *w = P->w;
    imp_kv_store *kv = P->kv;
    imp_forward_ws *ws = P->ws;
    const int64_t T = b->n_tokens, F = hp->n_ff, D = hp->head_dim, QD = (int64_t)hp->n_head * D,
                  KD = (int64_t)hp->n_head_kv * D;
    imp_tensor x = imp_tensor_rows(&ws->x, 0, T), xn = imp_tensor_rows(&ws->xn, 0, T);
    imp_tensor o = imp_tensor_rows(&ws->o, 0, T), att = imp_tensor_rows(&ws->att, 0, T);
    imp_tensor h = imp_tensor_rows(&ws->h, 0, T);
    imp_tensor qkv = imp_tensor_rows(&ws->qkv, 0, T);
    imp_tensor gu = imp_tensor_rows(&ws->gu, 0, T);

    for (int layer = P->l0; layer < P->l1; layer++) {
        const imp_layer_weights *L = &w->layers[layer];
        if (!L->attn_norm.data || !kv->k[layer].data) {
            return imp_error_set(err, IMP_ERR_INTERNAL, "forward: layer %d is not on the %s backend", layer,
                                 op->name);
        }
        OP(op->rms_norm(be, &x, &L->attn_norm, hp->rms_eps, a->norm_one_plus_w, &xn));

        /* q, k, v: contiguous tensors when separate, column views of one output when fused */
        imp_tensor q, k, v;
        if (L->wqkv.data) {
            OP(op->matmul(be, &xn, &L->wqkv, L->bqkv.data ? &L->bqkv : NULL, &qkv));
            q = imp_tensor_cols(&qkv, 0, QD);
            k = imp_tensor_cols(&qkv, QD, KD);
            v = imp_tensor_cols(&qkv, QD + KD, KD);
        } else {
            q = imp_tensor_make(IMP_TYPE_F32, QD, T, qkv.data);
            k = imp_tensor_make(IMP_TYPE_F32, KD, T, (float *)qkv.data + T * QD);
            v = imp_tensor_make(IMP_TYPE_F32, KD, T, (float *)qkv.data + T * (QD + KD));
            OP(op->matmul(be, &xn, &L->wq, L->bq.data ? &L->bq : NULL, &q));
            OP(op->matmul(be, &xn, &L->wk, L->bk.data ? &L->bk : NULL, &k));
            OP(op->matmul(be, &xn, &L->wv, L->bv.data ? &L->bv : NULL, &v));
        }
        /* per-head q/k norms (weights [D]) are applied by rope_kv_store */
        const imp_qk_norm qkn = {.q = &L->q_norm, .k = &L->k_norm, .eps = hp->rms_eps,
                                 .one_plus_w = a->norm_one_plus_w};
        const imp_rope rope = layer_rope(a, hp, w, L->swa);
        const imp_attn_params ap = {.n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim,
                                    .scale = hp->attn_scale, .window = L->swa ? hp->sliding_window : 0,
                                    .softcap = hp->attn_softcap};
        OP(op->rope_kv_store(be, &rope, &ap, L->q_norm.data ? &qkn : NULL, &q, &k, &v, b, kv, layer));
        OP(op->attention(be, &q, kv, layer, b, &ap, &att));
        if (L->bo.data || L->post_attn_norm.data) {
            OP(op->matmul(be, &att, &L->wo, L->bo.data ? &L->bo : NULL, &o));
            if (L->post_attn_norm.data) OP(op->rms_norm(be, &o, &L->post_attn_norm, hp->rms_eps, a->norm_one_plus_w, &o));
            OP(op->add(be, &x, &o, &x));
        } else {
            OP(op->matmul(be, &att, &L->wo, &x, &x)); /* the residual added by the matmul */
        }

        OP(op->rms_norm(be, &x, &L->ffn_norm, hp->rms_eps, a->norm_one_plus_w, &xn));
        imp_tensor g = imp_tensor_cols(&gu, 0, F), u = imp_tensor_cols(&gu, F, F);
        if (L->gate.data) {
            OP(op->matmul(be, &xn, &L->gate, NULL, &g));
            OP(op->matmul(be, &xn, &L->up, NULL, &u));
        } else {
            OP(op->matmul(be, &xn, &L->up, NULL, &gu));
        }
        OP(op->glu(be, &g, &u, a->act, &h));
        if (L->post_ffw_norm.data) {
            OP(op->matmul(be, &h, &L->down, NULL, &o));
            OP(op->rms_norm(be, &o, &L->post_ffw_norm, hp->rms_eps, a->norm_one_plus_w, &o));
            OP(op->add(be, &x, &o, &x));
        } else {
            OP(op->matmul(be, &h, &L->down, &x, &x));
        }
    }
    return IMP_OK;
}

/* Copies the residual stream's T rows from one part's workspace to another's, after the
 * source's queued work is done. */
static imp_status move_x(const imp_forward_part *from, const imp_forward_part *to, int64_t T, int64_t E,
                         imp_error *err) {
    const size_t bytes = (size_t)T * (size_t)E * sizeof(float);
    imp_status st = from->be->ops->sync(from->be, err);
    if (st != IMP_OK) return st;
    if (to->be->host_memory) return from->be->ops->download(from->be, to->ws->x.data, from->ws->x.data, bytes, err);
    if (from->be->host_memory) return to->be->ops->upload(to->be, to->ws->x.data, from->ws->x.data, bytes, err);
    return imp_error_set(err, IMP_ERR_UNSUPPORTED, "forward: the %s and %s backends cannot pass activations (no host memory)",
                         from->be->ops->name, to->be->ops->name);
}

/* The parts tile [0, n_layer) in order, each has the workspace for this step, and the last
 * one has the embedding and the output layer. */
static bool parts_valid(const imp_model *m, const imp_forward_part *parts, int n_parts, int64_t T, int32_t n_out) {
    if (n_parts < 1 || parts[0].l0 != 0 || parts[n_parts - 1].l1 != m->hp.n_layer) return false;
    const imp_weights *io = parts[n_parts - 1].w;
    if (!io->tok_embd.data || !io->output_norm.data || !io->output.data) return false;
    for (int i = 0; i < n_parts; i++) {
        const imp_forward_part *P = &parts[i];
        if (P->l1 < P->l0 || (i > 0 && P->l0 != parts[i - 1].l1) || T > P->ws->max_tokens) return false;
    }
    return n_out <= parts[n_parts - 1].ws->max_out;
}

imp_status imp_forward(const imp_model *m, const imp_forward_part *parts, int n_parts, const imp_batch *b,
                       const int32_t *out_rows, int32_t n_out, imp_error *err) {
    const imp_hparams *hp = &m->hp;
    const imp_arch *a = m->arch;
    const int64_t T = b->n_tokens, E = hp->n_embd;
    int layer = -1;
    if (T < 1 || n_out < 0 || !parts_valid(m, parts, n_parts, T, n_out)) {
        return imp_error_set(err, IMP_ERR_INTERNAL,
                             "forward: %lld tokens / %d outputs exceed the workspace, or the %d parts do not cover "
                             "the layers",
                             (long long)T, n_out, n_parts);
    }
    /* every backend sees the step; the embedding and the logits are the last part's */
    const int32_t *token_ids = NULL, *out_ids = NULL;
    for (int i = 0; i < n_parts; i++) {
        imp_backend *be = parts[i].be;
        OP(be->ops->begin_step(be, b, out_rows, n_out, &token_ids, &out_ids, err));
    }
    const imp_forward_part *io = &parts[n_parts - 1];
    imp_backend *be = io->be;
    const imp_backend_ops *op = be->ops;
    imp_tensor x = imp_tensor_rows(&io->ws->x, 0, T);
    OP(op->get_rows(be, &io->w->tok_embd, token_ids, (int)T, &x));
    if (a->embd_scale) OP(op->scale(be, &x, sqrtf((float)E), &x));

    int at = n_parts - 1; /* the part whose workspace holds x */
    imp_status st;
    for (int i = 0; i < n_parts; i++) {
        if (parts[i].l0 == parts[i].l1) continue;
        if (at != i && (st = move_x(&parts[at], &parts[i], T, E, err)) != IMP_OK) {
            imp_error_prefix(err, "forward: activations to layer %d", parts[i].l0);
            return st;
        }
        at = i;
        if ((st = run_layers(m, &parts[i], b, err)) != IMP_OK) return st;
    }
    if (n_out == 0) return IMP_OK;
    if (at != n_parts - 1 && (st = move_x(&parts[at], io, T, E, err)) != IMP_OK) {
        imp_error_prefix(err, "forward: activations to the output layer");
        return st;
    }
    imp_forward_ws *ws = io->ws;
    const imp_weights *w = io->w;
    imp_tensor xo = imp_tensor_rows(&ws->xo, 0, n_out), logits = imp_tensor_rows(&ws->logits, 0, n_out);
    OP(op->get_rows(be, &x, out_ids, n_out, &xo));
    OP(op->rms_norm(be, &xo, &w->output_norm, hp->rms_eps, a->norm_one_plus_w, &xo));
    OP(op->matmul(be, &xo, &w->output, NULL, &logits));
    if (hp->final_softcap > 0.0f) OP(op->softcap(be, &logits, hp->final_softcap));
    return IMP_OK;
}
