/*
 * CPU ops other than matmul: RMSNorm, residual add, scale, gated activations, soft-capping,
 * RoPE + KV store and attention over the paged KV pool. Row-parallel on the backend's pool;
 * tiny tensors (decode of a small model) run on the caller's thread, where a pool wake-up
 * would cost more than the op.
 */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu.h"

#define CPU_SERIAL_ELEMS 16384

#define ROW(t, r) ((float *)((char *)(t)->data + (size_t)(r) * (t)->nb1))
#define CROW(t, r) ((const float *)((const char *)(t)->data + (size_t)(r) * (t)->nb1))

static void cpu_run(imp_cpu_backend *c, int64_t elems, imp_pool_fn fn, void *ctx) {
    if (elems < CPU_SERIAL_ELEMS || c->n_threads == 1) {
        fn(ctx, 0, 1);
    } else {
        imp_pool_run(c->pool, fn, ctx);
    }
}

static bool same_shape(const imp_tensor *a, const imp_tensor *b) {
    return a->type == IMP_TYPE_F32 && b->type == IMP_TYPE_F32 && a->ne0 == b->ne0 && a->ne1 == b->ne1;
}

/* ---- RMSNorm ---------------------------------------------------------------------------- */

typedef struct {
    const imp_tensor *x, *w;
    imp_tensor *y;
    float eps;
    bool one_plus_w;
} norm_job;

/* Items: (row, segment) pairs, segments of C = w's length. */
static void norm_run(void *ctx, int ith, int nth) {
    norm_job *j = ctx;
    const int64_t C = j->w->ne0, segs = j->x->ne0 / C;
    const float *w = j->w->data;
    int64_t b, e;
    imp_pool_split(j->x->ne1 * segs, ith, nth, &b, &e);
    for (int64_t r = b; r < e; r++) {
        const float *x = CROW(j->x, r / segs) + (r % segs) * C;
        float *y = ROW(j->y, r / segs) + (r % segs) * C;
        double ss = 0.0;
        for (int64_t i = 0; i < C; i++) ss += (double)(x[i] * x[i]);
        const float s = 1.0f / sqrtf((float)(ss / (double)C) + j->eps);
        if (j->one_plus_w) {
            for (int64_t i = 0; i < C; i++) y[i] = x[i] * s * (1.0f + w[i]);
        } else {
            for (int64_t i = 0; i < C; i++) y[i] = x[i] * s * w[i];
        }
    }
}

imp_status imp_cpu_rms_norm(imp_backend *be, const imp_tensor *x, const imp_tensor *w, float eps,
                            bool one_plus_w, imp_tensor *y) {
    if (!same_shape(x, y) || w->type != IMP_TYPE_F32 || w->ne0 < 1 || x->ne0 % w->ne0) return IMP_ERR_INTERNAL;
    norm_job j = {x, w, y, eps, one_plus_w};
    cpu_run((imp_cpu_backend *)be, x->ne0 * x->ne1, norm_run, &j);
    return IMP_OK;
}

/* ---- elementwise -------------------------------------------------------------------------- */

typedef struct {
    const imp_tensor *a, *b;
    imp_tensor *y;
    float s;
    imp_act act;
} ew_job;

static void add_run(void *ctx, int ith, int nth) {
    ew_job *j = ctx;
    int64_t b0, e0;
    imp_pool_split(j->a->ne1, ith, nth, &b0, &e0);
    for (int64_t r = b0; r < e0; r++) {
        const float *a = CROW(j->a, r), *b = CROW(j->b, j->b->ne1 == 1 ? 0 : r);
        float *y = ROW(j->y, r);
        for (int64_t i = 0; i < j->a->ne0; i++) y[i] = a[i] + b[i];
    }
}

imp_status imp_cpu_add(imp_backend *be, const imp_tensor *a, const imp_tensor *b, imp_tensor *y) {
    if (!same_shape(a, y) || b->type != IMP_TYPE_F32 || b->ne0 != a->ne0 || (b->ne1 != a->ne1 && b->ne1 != 1)) {
        return IMP_ERR_INTERNAL;
    }
    ew_job j = {.a = a, .b = b, .y = y};
    cpu_run((imp_cpu_backend *)be, a->ne0 * a->ne1, add_run, &j);
    return IMP_OK;
}

static void scale_run(void *ctx, int ith, int nth) {
    ew_job *j = ctx;
    int64_t b, e;
    imp_pool_split(j->a->ne1, ith, nth, &b, &e);
    for (int64_t r = b; r < e; r++) {
        const float *a = CROW(j->a, r);
        float *y = ROW(j->y, r);
        for (int64_t i = 0; i < j->a->ne0; i++) y[i] = a[i] * j->s;
    }
}

imp_status imp_cpu_scale(imp_backend *be, const imp_tensor *x, float s, imp_tensor *y) {
    if (!same_shape(x, y)) return IMP_ERR_INTERNAL;
    ew_job j = {.a = x, .y = y, .s = s};
    cpu_run((imp_cpu_backend *)be, x->ne0 * x->ne1, scale_run, &j);
    return IMP_OK;
}

static void softcap_run(void *ctx, int ith, int nth) {
    ew_job *j = ctx;
    int64_t b, e;
    imp_pool_split(j->y->ne1, ith, nth, &b, &e);
    for (int64_t r = b; r < e; r++) {
        float *y = ROW(j->y, r);
        for (int64_t i = 0; i < j->y->ne0; i++) y[i] = j->s * tanhf(y[i] / j->s);
    }
}

imp_status imp_cpu_softcap(imp_backend *be, imp_tensor *x, float cap) {
    if (x->type != IMP_TYPE_F32 || !(cap > 0.0f)) return IMP_ERR_INTERNAL;
    ew_job j = {.y = x, .s = cap};
    cpu_run((imp_cpu_backend *)be, x->ne0 * x->ne1, softcap_run, &j);
    return IMP_OK;
}

static inline float act_silu(float x) { return x / (1.0f + expf(-x)); }

static inline float act_gelu_tanh(float x) {
    const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

static void glu_run(void *ctx, int ith, int nth) {
    ew_job *j = ctx;
    int64_t b, e;
    imp_pool_split(j->a->ne1, ith, nth, &b, &e);
    for (int64_t r = b; r < e; r++) {
        const float *g = CROW(j->a, r), *u = CROW(j->b, r);
        float *y = ROW(j->y, r);
        if (j->act == IMP_ACT_SILU) {
            for (int64_t i = 0; i < j->a->ne0; i++) y[i] = act_silu(g[i]) * u[i];
        } else {
            for (int64_t i = 0; i < j->a->ne0; i++) y[i] = act_gelu_tanh(g[i]) * u[i];
        }
    }
}

imp_status imp_cpu_glu(imp_backend *be, const imp_tensor *gate, const imp_tensor *up, imp_act act, imp_tensor *y) {
    if (!same_shape(gate, up) || !same_shape(gate, y) || (act != IMP_ACT_SILU && act != IMP_ACT_GELU_TANH)) {
        return IMP_ERR_INTERNAL;
    }
    ew_job j = {.a = gate, .b = up, .y = y, .act = act};
    cpu_run((imp_cpu_backend *)be, gate->ne0 * gate->ne1, glu_run, &j);
    return IMP_OK;
}

/* ---- RoPE + KV store ---------------------------------------------------------------------- */

static void rope_head(float *x, const float *cs, int n_dims, imp_rope_style style) {
    const int half = n_dims / 2;
    for (int i = 0; i < half; i++) {
        const int a = style == IMP_ROPE_NEOX ? i : 2 * i;
        const int b = style == IMP_ROPE_NEOX ? i + half : 2 * i + 1;
        const float x0 = x[a], x1 = x[b], c = cs[2 * i], s = cs[2 * i + 1];
        x[a] = x0 * c - x1 * s;
        x[b] = x0 * s + x1 * c;
    }
}

#define ROPE_MAX_DIMS 1024

typedef struct {
    const imp_rope *rope;
    const imp_attn_params *ap;
    imp_tensor *q, *k;
    const imp_tensor *v;
    const imp_batch *batch;
    imp_kv_store *kv;
    int layer;
} rope_job;

static void rope_run(void *ctx, int ith, int nth) {
    rope_job *j = ctx;
    const int D = j->ap->head_dim;
    const imp_tensor *kc = &j->kv->k[j->layer], *vc = &j->kv->v[j->layer];
    const float *ff = j->rope->freq_factors ? j->rope->freq_factors->data : NULL;
    float cs[ROPE_MAX_DIMS];
    int64_t b, e;
    imp_pool_split(j->batch->n_tokens, ith, nth, &b, &e);
    for (int64_t t = b; t < e; t++) {
        imp_rope_cos_sin(j->rope, ff, j->batch->pos[t], cs);
        float *q = ROW(j->q, t), *k = ROW(j->k, t);
        for (int h = 0; h < j->ap->n_head; h++) rope_head(q + (size_t)h * D, cs, j->rope->n_dims, j->rope->style);
        for (int h = 0; h < j->ap->n_head_kv; h++) rope_head(k + (size_t)h * D, cs, j->rope->n_dims, j->rope->style);
        const size_t bytes = (size_t)j->kv->n_embd_kv * sizeof(float);
        memcpy(ROW(kc, j->batch->slot[t]), k, bytes);
        memcpy(ROW(vc, j->batch->slot[t]), CROW(j->v, t), bytes);
    }
}

imp_status imp_cpu_rope_kv_store(imp_backend *be, const imp_rope *rope, const imp_attn_params *ap,
                                 const imp_qk_norm *norm, imp_tensor *q, imp_tensor *k, const imp_tensor *v,
                                 const imp_batch *batch, imp_kv_store *kv, int layer) {
    const int64_t S = (int64_t)kv->n_blocks * kv->block_size;
    if (rope->n_dims < 2 || rope->n_dims > ROPE_MAX_DIMS || rope->n_dims > ap->head_dim || rope->n_dims % 2 ||
        kv->type != IMP_TYPE_F32 || layer < 0 || layer >= kv->n_layer ||
        q->ne0 != (int64_t)ap->n_head * ap->head_dim || k->ne0 != kv->n_embd_kv || v->ne0 != kv->n_embd_kv ||
        q->ne1 != batch->n_tokens || k->ne1 != batch->n_tokens || v->ne1 != batch->n_tokens) {
        return IMP_ERR_INTERNAL;
    }
    for (int32_t t = 0; t < batch->n_tokens; t++) {
        if (batch->slot[t] < 0 || batch->slot[t] >= S) return IMP_ERR_INTERNAL;
    }
    if (norm) {
        if (!norm->q || !norm->k || norm->q->ne0 != ap->head_dim || norm->k->ne0 != ap->head_dim) {
            return IMP_ERR_INTERNAL;
        }
        imp_status st = imp_cpu_rms_norm(be, q, norm->q, norm->eps, norm->one_plus_w, q);
        if (st == IMP_OK) st = imp_cpu_rms_norm(be, k, norm->k, norm->eps, norm->one_plus_w, k);
        if (st != IMP_OK) return st;
    }
    rope_job j = {rope, ap, q, k, v, batch, kv, layer};
    cpu_run((imp_cpu_backend *)be, (int64_t)batch->n_tokens * 4096, rope_run, &j);
    return IMP_OK;
}

/* ---- attention ---------------------------------------------------------------------------- */

typedef struct {
    imp_cpu_backend *c;
    const imp_tensor *q;
    const imp_kv_store *kv;
    int layer;
    const imp_batch *batch;
    const imp_attn_params *ap;
    imp_tensor *out;
} attn_job;

static void attn_run(void *ctx, int ith, int nth) {
    attn_job *j = ctx;
    const imp_attn_params *ap = j->ap;
    const int D = ap->head_dim, H = ap->n_head, group = ap->n_head / ap->n_head_kv;
    const int bs = j->kv->block_size;
    const imp_tensor *kc = &j->kv->k[j->layer], *vc = &j->kv->v[j->layer];
    float *sc = j->c->att + (size_t)ith * j->c->att_per_thread;
    /* Items (token, head) are dealt round-robin: causal rows grow with the position, so
     * contiguous ranges would give the last thread most of the work. */
    const int64_t n_items = (int64_t)j->batch->n_tokens * H;
    for (int64_t it = ith; it < n_items; it += nth) {
        const int32_t t = (int32_t)(it / H);
        const int h = (int)(it % H), g = h / group;
        const imp_batch_seq *sq = &j->batch->seqs[j->batch->seq[t]];
        const int32_t pos = j->batch->pos[t];
        const int32_t p0 = ap->window > 0 && pos - ap->window + 1 > 0 ? pos - ap->window + 1 : 0;
        const float *qh = CROW(j->q, t) + (size_t)h * D;
        float mx = -INFINITY;
        for (int32_t p = p0; p <= pos; p++) {
            const int32_t slot = sq->blocks[p / bs] * bs + p % bs;
            float s;
            j->c->dot_f32(D, &s, qh, CROW(kc, slot) + (size_t)g * D);
            s *= ap->scale;
            if (ap->softcap > 0.0f) s = ap->softcap * tanhf(s / ap->softcap);
            sc[p - p0] = s;
            if (s > mx) mx = s;
        }
        double sum = 0.0;
        for (int32_t p = p0; p <= pos; p++) {
            const float w = expf(sc[p - p0] - mx);
            sc[p - p0] = w;
            sum += (double)w;
        }
        float *o = ROW(j->out, t) + (size_t)h * D;
        memset(o, 0, (size_t)D * sizeof *o);
        for (int32_t p = p0; p <= pos; p++) {
            const int32_t slot = sq->blocks[p / bs] * bs + p % bs;
            j->c->axpy_f32(D, sc[p - p0], CROW(vc, slot) + (size_t)g * D, o);
        }
        const float inv = (float)(1.0 / sum);
        for (int d = 0; d < D; d++) o[d] *= inv;
    }
}

imp_status imp_cpu_attention(imp_backend *be, const imp_tensor *q, const imp_kv_store *kv, int layer,
                             const imp_batch *batch, const imp_attn_params *ap, imp_tensor *out) {
    imp_cpu_backend *c = (imp_cpu_backend *)be;
    if (ap->n_head_kv <= 0 || ap->n_head % ap->n_head_kv || layer < 0 || layer >= kv->n_layer ||
        kv->type != IMP_TYPE_F32 || (int64_t)ap->n_head_kv * ap->head_dim != kv->n_embd_kv ||
        q->ne0 != (int64_t)ap->n_head * ap->head_dim || out->ne0 != q->ne0 || q->ne1 != batch->n_tokens ||
        out->ne1 != batch->n_tokens) {
        return IMP_ERR_INTERNAL;
    }
    int32_t most = 1;
    for (int32_t t = 0; t < batch->n_tokens; t++) {
        const int32_t s = batch->seq[t], pos = batch->pos[t];
        if (s < 0 || s >= batch->n_seqs || pos < 0 || pos / kv->block_size >= batch->seqs[s].n_blocks) {
            return IMP_ERR_INTERNAL;
        }
        const int32_t n = ap->window > 0 && pos + 1 > ap->window ? ap->window : pos + 1;
        if (n > most) most = n;
    }
    if ((size_t)most > c->att_per_thread) {
        void *buf = c->att;
        size_t size = c->att_per_thread * (size_t)c->n_threads * sizeof(float);
        if (!imp_cpu_scratch(&buf, &size, (size_t)most * (size_t)c->n_threads * sizeof(float))) return IMP_ERR_NOMEM;
        c->att = buf;
        c->att_per_thread = size / sizeof(float) / (size_t)c->n_threads;
    }
    attn_job j = {c, q, kv, layer, batch, ap, out};
    cpu_run(c, (int64_t)batch->n_tokens * ap->n_head * 4096, attn_run, &j);
    return IMP_OK;
}
