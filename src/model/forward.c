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

imp_status imp_forward(imp_backend *be, const imp_model *m, const imp_weights *w, imp_kv_store *kv,
                       const imp_batch *b, const int32_t *out_rows, int32_t n_out, imp_forward_ws *ws,
                       imp_error *err) {
    const imp_backend_ops *op = be->ops;
    const imp_hparams *hp = &m->hp;
    const imp_arch *a = m->arch;
    const int64_t T = b->n_tokens, E = hp->n_embd, F = hp->n_ff, D = hp->head_dim,
                  QD = (int64_t)hp->n_head * D, KD = (int64_t)hp->n_head_kv * D;
    int layer = -1;
    if (T < 1 || T > ws->max_tokens || n_out < 0 || n_out > ws->max_out) {
        return imp_error_set(err, IMP_ERR_INTERNAL, "forward: %lld tokens / %d outputs exceed the workspace",
                             (long long)T, n_out);
    }
    imp_tensor x = imp_tensor_rows(&ws->x, 0, T), xn = imp_tensor_rows(&ws->xn, 0, T);
    imp_tensor o = imp_tensor_rows(&ws->o, 0, T), att = imp_tensor_rows(&ws->att, 0, T);
    imp_tensor h = imp_tensor_rows(&ws->h, 0, T);
    imp_tensor qkv = imp_tensor_rows(&ws->qkv, 0, T);
    imp_tensor gu = imp_tensor_rows(&ws->gu, 0, T);

    const int32_t *token_ids, *out_ids;
    OP(op->begin_step(be, b, out_rows, n_out, &token_ids, &out_ids, err));
    OP(op->get_rows(be, &w->tok_embd, token_ids, (int)T, &x));
    if (a->embd_scale) OP(op->scale(be, &x, sqrtf((float)E), &x));

    for (layer = 0; layer < hp->n_layer; layer++) {
        const imp_layer_weights *L = &w->layers[layer];
        OP(op->rms_norm(be, &x, &L->attn_norm, hp->rms_eps, a->norm_one_plus_w, &xn));

        /* q, k, v: contiguous tensors when separate, column views of one output when fused */
        imp_tensor q, k, v;
        if (L->wqkv.data) {
            OP(op->matmul(be, &xn, &L->wqkv, &qkv));
            if (L->bqkv.data) OP(op->add(be, &qkv, &L->bqkv, &qkv));
            q = imp_tensor_cols(&qkv, 0, QD);
            k = imp_tensor_cols(&qkv, QD, KD);
            v = imp_tensor_cols(&qkv, QD + KD, KD);
        } else {
            q = imp_tensor_make(IMP_TYPE_F32, QD, T, qkv.data);
            k = imp_tensor_make(IMP_TYPE_F32, KD, T, (float *)qkv.data + T * QD);
            v = imp_tensor_make(IMP_TYPE_F32, KD, T, (float *)qkv.data + T * (QD + KD));
            OP(op->matmul(be, &xn, &L->wq, &q));
            OP(op->matmul(be, &xn, &L->wk, &k));
            OP(op->matmul(be, &xn, &L->wv, &v));
            if (L->bq.data) OP(op->add(be, &q, &L->bq, &q));
            if (L->bk.data) OP(op->add(be, &k, &L->bk, &k));
            if (L->bv.data) OP(op->add(be, &v, &L->bv, &v));
        }
        if (L->q_norm.data) { /* per head: the norm weights are [D] */
            OP(op->rms_norm(be, &q, &L->q_norm, hp->rms_eps, a->norm_one_plus_w, &q));
            OP(op->rms_norm(be, &k, &L->k_norm, hp->rms_eps, a->norm_one_plus_w, &k));
        }
        const imp_rope rope = layer_rope(a, hp, w, L->swa);
        const imp_attn_params ap = {.n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim,
                                    .scale = hp->attn_scale, .window = L->swa ? hp->sliding_window : 0,
                                    .softcap = hp->attn_softcap};
        OP(op->rope_kv_store(be, &rope, &ap, &q, &k, &v, b, kv, layer));
        OP(op->attention(be, &q, kv, layer, b, &ap, &att));
        OP(op->matmul(be, &att, &L->wo, &o));
        if (L->bo.data) OP(op->add(be, &o, &L->bo, &o));
        if (L->post_attn_norm.data) OP(op->rms_norm(be, &o, &L->post_attn_norm, hp->rms_eps, a->norm_one_plus_w, &o));
        OP(op->add(be, &x, &o, &x));

        OP(op->rms_norm(be, &x, &L->ffn_norm, hp->rms_eps, a->norm_one_plus_w, &xn));
        imp_tensor g = imp_tensor_cols(&gu, 0, F), u = imp_tensor_cols(&gu, F, F);
        if (L->gate.data) {
            OP(op->matmul(be, &xn, &L->gate, &g));
            OP(op->matmul(be, &xn, &L->up, &u));
        } else {
            OP(op->matmul(be, &xn, &L->up, &gu));
        }
        OP(op->glu(be, &g, &u, a->act, &h));
        OP(op->matmul(be, &h, &L->down, &o));
        if (L->post_ffw_norm.data) OP(op->rms_norm(be, &o, &L->post_ffw_norm, hp->rms_eps, a->norm_one_plus_w, &o));
        OP(op->add(be, &x, &o, &x));
    }
    if (n_out == 0) return IMP_OK;
    layer = -1;
    imp_tensor xo = imp_tensor_rows(&ws->xo, 0, n_out), logits = imp_tensor_rows(&ws->logits, 0, n_out);
    OP(op->get_rows(be, &x, out_ids, n_out, &xo));
    OP(op->rms_norm(be, &xo, &w->output_norm, hp->rms_eps, a->norm_one_plus_w, &xo));
    OP(op->matmul(be, &xo, &w->output, &logits));
    if (hp->final_softcap > 0.0f) OP(op->softcap(be, &logits, hp->final_softcap));
    return IMP_OK;
}
