/*
 * Model loading: architecture row, hyper-parameters and weights from a GGUF file, all checked
 * before anything runs. Names follow llama.cpp's GGUF conventions (blk.N.attn_q.weight, ...).
 */
#define _POSIX_C_SOURCE 200809L
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"

/* ---- hyper-parameters --------------------------------------------------------------------- */

typedef struct {
    const imp_gguf *g;
    const imp_arch *arch;
    imp_error *err;
    char key[160];
} hp_reader;

static const char *hp_key(hp_reader *r, const char *suffix) {
    snprintf(r->key, sizeof r->key, "%s.%s", r->arch->name, suffix);
    return r->key;
}

/* An integer key that may also be an array with one value per layer (all equal here). */
static imp_status hp_int(hp_reader *r, const char *suffix, bool required, int def, int lo, int hi, int *out) {
    const char *key = hp_key(r, suffix);
    int64_t idx = imp_gguf_find_key(r->g, key);
    if (idx < 0) {
        if (required) return imp_error_set(r->err, IMP_ERR_NOT_FOUND, "missing key %s", key);
        *out = def;
        return IMP_OK;
    }
    const imp_gguf_value *v = imp_gguf_kv_value(r->g, idx);
    int64_t x;
    if (v->type == IMP_GGUF_ARRAY) {
        if (v->arr.n == 0 || !imp_gguf_arr_i64(v, 0, &x)) {
            return imp_error_set(r->err, IMP_ERR_TYPE, "key %s: expected an integer or an array of integers", key);
        }
        for (uint64_t i = 1; i < v->arr.n; i++) {
            int64_t y;
            if (!imp_gguf_arr_i64(v, i, &y) || y != x) {
                return imp_error_set(r->err, IMP_ERR_UNSUPPORTED, "key %s: per-layer values that differ are not supported", key);
            }
        }
    } else {
        imp_status st = imp_gguf_get_i64(r->g, key, &x, r->err);
        if (st != IMP_OK) return st;
    }
    if (x < lo || x > hi) {
        return imp_error_set(r->err, IMP_ERR_RANGE, "key %s = %lld is outside %d..%d", key, (long long)x, lo, hi);
    }
    *out = (int)x;
    return IMP_OK;
}

static imp_status hp_float(hp_reader *r, const char *suffix, bool required, float def, float lo, float hi, float *out) {
    const char *key = hp_key(r, suffix);
    if (imp_gguf_find_key(r->g, key) < 0) {
        if (required) return imp_error_set(r->err, IMP_ERR_NOT_FOUND, "missing key %s", key);
        *out = def;
        return IMP_OK;
    }
    float x;
    imp_status st = imp_gguf_get_f32(r->g, key, &x, r->err);
    if (st != IMP_OK) return st;
    if (!(x >= lo && x <= hi)) {
        return imp_error_set(r->err, IMP_ERR_RANGE, "key %s = %g is outside %g..%g", key, (double)x, (double)lo, (double)hi);
    }
    *out = x;
    return IMP_OK;
}

#define HP(call)                           \
    do {                                   \
        imp_status st_ = (call);           \
        if (st_ != IMP_OK) return st_;     \
    } while (0)

imp_status imp_hparams_load(const imp_gguf *g, const imp_arch *arch, imp_hparams *hp, imp_error *err) {
    hp_reader r = {.g = g, .arch = arch, .err = err};
    memset(hp, 0, sizeof *hp);
    HP(hp_int(&r, "block_count", true, 0, 1, IMP_MAX_LAYERS, &hp->n_layer));
    HP(hp_int(&r, "embedding_length", true, 0, 1, 1 << 16, &hp->n_embd));
    HP(hp_int(&r, "feed_forward_length", true, 0, 1, 1 << 20, &hp->n_ff));
    HP(hp_int(&r, "attention.head_count", true, 0, 1, 1024, &hp->n_head));
    HP(hp_int(&r, "attention.head_count_kv", false, hp->n_head, 1, 1024, &hp->n_head_kv));
    if (hp->n_head % hp->n_head_kv != 0) {
        return imp_error_set(err, IMP_ERR_FORMAT, "%s.attention.head_count (%d) is not a multiple of head_count_kv (%d)",
                             arch->name, hp->n_head, hp->n_head_kv);
    }
    const int def_dim = hp->n_embd / hp->n_head;
    int vdim;
    HP(hp_int(&r, "attention.key_length", false, def_dim, 1, 1024, &hp->head_dim));
    HP(hp_int(&r, "attention.value_length", false, hp->head_dim, 1, 1024, &vdim));
    if (vdim != hp->head_dim) {
        return imp_error_set(err, IMP_ERR_UNSUPPORTED, "%s: value_length %d differs from key_length %d",
                             arch->name, vdim, hp->head_dim);
    }
    if (hp->head_dim % 2) return imp_error_set(err, IMP_ERR_FORMAT, "%s: odd head dim %d", arch->name, hp->head_dim);
    HP(hp_int(&r, "context_length", false, 4096, 1, 1 << 24, &hp->n_ctx_train));
    HP(hp_float(&r, "attention.layer_norm_rms_epsilon", true, 0, 1e-12f, 1e-1f, &hp->rms_eps));
    HP(hp_int(&r, "rope.dimension_count", false, hp->head_dim, 2, hp->head_dim, &hp->rope_dims));
    if (hp->rope_dims % 2) return imp_error_set(err, IMP_ERR_FORMAT, "%s: odd rope.dimension_count %d", arch->name, hp->rope_dims);
    HP(hp_float(&r, "rope.freq_base", false, 10000.0f, 1.0f, 1e12f, &hp->rope_base));
    HP(hp_float(&r, "rope.freq_base_swa", false, arch->swa_rope_base > 0 ? arch->swa_rope_base : hp->rope_base,
                1.0f, 1e12f, &hp->rope_base_swa));

    /* RoPE scaling: rope.scaling.type (none / linear / yarn) with rope.scaling.factor; the older
     * rope.scale_linear key means linear. */
    hp->rope_scaling = IMP_ROPE_SCALING_NONE;
    hp->rope_factor = 1.0f;
    imp_gguf_str st;
    const char *tkey = hp_key(&r, "rope.scaling.type");
    if (imp_gguf_find_key(g, tkey) >= 0) {
        HP(imp_gguf_get_str(g, tkey, &st, err));
        if (st.len == 4 && memcmp(st.ptr, "none", 4) == 0) {
            hp->rope_scaling = IMP_ROPE_SCALING_NONE;
        } else if (st.len == 6 && memcmp(st.ptr, "linear", 6) == 0) {
            hp->rope_scaling = IMP_ROPE_SCALING_LINEAR;
        } else if (st.len == 4 && memcmp(st.ptr, "yarn", 4) == 0) {
            hp->rope_scaling = IMP_ROPE_SCALING_YARN;
        } else {
            return imp_error_set(err, IMP_ERR_UNSUPPORTED, "%s = \"%.*s\" is not supported (none, linear, yarn)", tkey,
                                 (int)(st.len > 32 ? 32 : st.len), st.ptr);
        }
    }
    if (hp->rope_scaling != IMP_ROPE_SCALING_NONE) {
        HP(hp_float(&r, "rope.scaling.factor", false, 1.0f, 1e-3f, 1e4f, &hp->rope_factor));
    } else if (imp_gguf_find_key(g, hp_key(&r, "rope.scale_linear")) >= 0) {
        HP(hp_float(&r, "rope.scale_linear", false, 1.0f, 1e-3f, 1e4f, &hp->rope_factor));
        if (hp->rope_factor != 1.0f) hp->rope_scaling = IMP_ROPE_SCALING_LINEAR;
    }
    HP(hp_int(&r, "rope.scaling.original_context_length", false, hp->n_ctx_train, 1, 1 << 24, &hp->rope_ctx_orig));
    HP(hp_float(&r, "rope.scaling.yarn_ext_factor", false, hp->rope_scaling == IMP_ROPE_SCALING_YARN ? 1.0f : 0.0f,
                0.0f, 100.0f, &hp->yarn_ext_factor));
    HP(hp_float(&r, "rope.scaling.yarn_attn_factor", false, 1.0f, 0.0f, 100.0f, &hp->yarn_attn_factor));
    HP(hp_float(&r, "rope.scaling.yarn_beta_fast", false, 32.0f, 0.0f, 1e4f, &hp->yarn_beta_fast));
    HP(hp_float(&r, "rope.scaling.yarn_beta_slow", false, 1.0f, 0.0f, 1e4f, &hp->yarn_beta_slow));

    HP(hp_int(&r, "attention.sliding_window", false, 0, 0, 1 << 24, &hp->sliding_window));
    if (arch->ignore_swa) hp->sliding_window = 0;
    HP(hp_float(&r, "attn_logit_softcapping", false, 0.0f, 0.0f, 1e6f, &hp->attn_softcap));
    HP(hp_float(&r, "final_logit_softcapping", false, 0.0f, 0.0f, 1e6f, &hp->final_softcap));
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    /* Gemma 3 27B (62 layers) scales queries by 1/sqrt(E/H) instead (query_pre_attn_scalar). */
    if (strcmp(arch->name, "gemma3") == 0 && hp->n_layer == 62) {
        hp->attn_scale = 1.0f / sqrtf((float)hp->n_embd / (float)hp->n_head);
    }
    return IMP_OK;
}

/* ---- weights ------------------------------------------------------------------------------ */

typedef struct {
    imp_model *m;
    imp_error *err;
} binder;

/* Binds tensor `name` (formatted with layer) as [rows, cols]; rows == 0 means a vector of cols.
 * Absent and !required: dst stays zeroed (absent). mat: a weight matrix that needs a computable
 * type; otherwise an F32 vector. */
static imp_status bind(binder *b, imp_tensor *dst, bool required, bool mat, int64_t rows, int64_t cols,
                       const char *fmt, int layer) {
    char name[96];
    snprintf(name, sizeof name, fmt, layer);
    memset(dst, 0, sizeof *dst);
    int64_t idx = imp_gguf_find_tensor(b->m->gguf, name);
    if (idx < 0) {
        return required ? imp_error_set(b->err, IMP_ERR_NOT_FOUND, "missing tensor %s", name) : IMP_OK;
    }
    const imp_gguf_tensor *t = imp_gguf_tensor_at(b->m->gguf, idx);
    const int64_t want1 = rows ? rows : 1;
    if (t->ne[0] != cols || t->ne[1] != want1 || t->ne[2] != 1 || t->ne[3] != 1) {
        return imp_error_set(b->err, IMP_ERR_FORMAT,
                             "tensor %s has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]", name,
                             (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                             (long long)cols, (long long)want1);
    }
    if (mat) {
        if (!imp_type_is_computable(t->type)) {
            return imp_error_set(b->err, IMP_ERR_UNSUPPORTED, "tensor %s has type %s, which imp cannot compute with yet",
                                 name, imp_type_name(t->type));
        }
    } else if (t->type != IMP_TYPE_F32) {
        return imp_error_set(b->err, IMP_ERR_UNSUPPORTED, "tensor %s has type %s, expected F32", name,
                             imp_type_name(t->type));
    }
    *dst = imp_tensor_make((imp_type)t->type, cols, want1, (void *)t->data);
    if (dst->nb1 * (size_t)want1 != t->size) {
        return imp_error_set(b->err, IMP_ERR_FORMAT, "tensor %s: size %llu does not match its shape", name,
                             (unsigned long long)t->size);
    }
    b->m->n_params += (uint64_t)cols * (uint64_t)want1;
    b->m->weight_bytes += t->size;
    return IMP_OK;
}

static imp_status bind_layer(binder *b, int l) {
    const imp_hparams *hp = &b->m->hp;
    const int64_t E = hp->n_embd, F = hp->n_ff, QD = (int64_t)hp->n_head * hp->head_dim,
                  KD = (int64_t)hp->n_head_kv * hp->head_dim;
    imp_layer_weights *L = &b->m->w.layers[l];
    const imp_arch *a = b->m->arch;
    HP(bind(b, &L->attn_norm, true, false, 0, E, "blk.%d.attn_norm.weight", l));
    HP(bind(b, &L->wqkv, false, true, QD + 2 * KD, E, "blk.%d.attn_qkv.weight", l));
    if (!L->wqkv.data) {
        HP(bind(b, &L->wq, true, true, QD, E, "blk.%d.attn_q.weight", l));
        HP(bind(b, &L->wk, true, true, KD, E, "blk.%d.attn_k.weight", l));
        HP(bind(b, &L->wv, true, true, KD, E, "blk.%d.attn_v.weight", l));
        HP(bind(b, &L->bq, false, false, 0, QD, "blk.%d.attn_q.bias", l));
        HP(bind(b, &L->bk, false, false, 0, KD, "blk.%d.attn_k.bias", l));
        HP(bind(b, &L->bv, false, false, 0, KD, "blk.%d.attn_v.bias", l));
    }
    HP(bind(b, &L->wo, true, true, E, QD, "blk.%d.attn_output.weight", l));
    HP(bind(b, &L->bo, false, false, 0, E, "blk.%d.attn_output.bias", l));
    HP(bind(b, &L->q_norm, a->qk_norm, false, 0, hp->head_dim, "blk.%d.attn_q_norm.weight", l));
    HP(bind(b, &L->k_norm, a->qk_norm, false, 0, hp->head_dim, "blk.%d.attn_k_norm.weight", l));
    HP(bind(b, &L->post_attn_norm, a->post_norms, false, 0, E, "blk.%d.post_attention_norm.weight", l));
    HP(bind(b, &L->ffn_norm, true, false, 0, E, "blk.%d.ffn_norm.weight", l));
    HP(bind(b, &L->gate, false, true, F, E, "blk.%d.ffn_gate.weight", l));
    HP(bind(b, &L->up, true, true, L->gate.data ? F : 2 * F, E, "blk.%d.ffn_up.weight", l));
    HP(bind(b, &L->down, true, true, E, F, "blk.%d.ffn_down.weight", l));
    HP(bind(b, &L->post_ffw_norm, a->post_norms, false, 0, E, "blk.%d.post_ffw_norm.weight", l));
    if (hp->sliding_window > 0) L->swa = a->swa_pattern > 0 ? (l + 1) % a->swa_pattern != 0 : true;
    return IMP_OK;
}

static imp_status bind_all(imp_model *m, imp_error *err) {
    binder b = {m, err};
    const imp_hparams *hp = &m->hp;
    int64_t idx = imp_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (idx < 0) return imp_error_set(err, IMP_ERR_NOT_FOUND, "missing tensor token_embd.weight");
    const int64_t V = imp_gguf_tensor_at(m->gguf, idx)->ne[1];
    if (V < 1 || V > (1 << 24)) return imp_error_set(err, IMP_ERR_FORMAT, "token_embd.weight: bad vocabulary size %lld", (long long)V);
    m->hp.n_vocab = (int)V;
    HP(bind(&b, &m->w.tok_embd, true, true, V, hp->n_embd, "token_embd.weight", 0));
    HP(bind(&b, &m->w.output_norm, true, false, 0, hp->n_embd, "output_norm.weight", 0));
    HP(bind(&b, &m->w.output, false, true, V, hp->n_embd, "output.weight", 0));
    if (!m->w.output.data) {
        m->w.output = m->w.tok_embd;
        m->w.tied = true;
    }
    HP(bind(&b, &m->w.rope_freqs, false, false, 0, hp->rope_dims / 2, "rope_freqs.weight", 0));
    if (imp_gguf_find_tensor(m->gguf, "rope_factors_long.weight") >= 0 ||
        imp_gguf_find_tensor(m->gguf, "rope_factors_short.weight") >= 0) {
        /* Phi-3 128k / Phi-3.5 LongRoPE: per-dimension factors that depend on the context
         * length; running without them would give wrong answers, so refuse */
        return imp_error_set(err, IMP_ERR_UNSUPPORTED, "LongRoPE (rope_factors_long/short tensors) is not supported yet");
    }
    m->w.n_layer = hp->n_layer;
    m->w.layers = imp_calloc((size_t)hp->n_layer, sizeof *m->w.layers);
    if (!m->w.layers) return imp_error_set(err, IMP_ERR_NOMEM, "out of memory");
    for (int l = 0; l < hp->n_layer; l++) HP(bind_layer(&b, l));
    if (m->vocab->n_tokens > V) {
        return imp_error_set(err, IMP_ERR_FORMAT, "the vocabulary has %d tokens but token_embd.weight only %lld rows",
                             (int)m->vocab->n_tokens, (long long)V);
    }
    return IMP_OK;
}

/* Reads one byte per page of every tensor so the file is resident before the first token. */
static uint64_t touch_pages(const imp_model *m, imp_load_progress_fn progress, void *user) {
    uint64_t total = 0, done = 0, sum = 0;
    const int64_t n = imp_gguf_n_tensors(m->gguf);
    for (int64_t i = 0; i < n; i++) total += imp_gguf_tensor_at(m->gguf, i)->size;
    uint64_t next = 0;
    for (int64_t i = 0; i < n; i++) {
        const imp_gguf_tensor *t = imp_gguf_tensor_at(m->gguf, i);
        const volatile unsigned char *p = t->data;
        for (uint64_t o = 0; o < t->size; o += 4096) sum += p[o];
        done += t->size;
        if (progress && (done >= next || done == total)) {
            progress(user, done, total);
            next = done + total / 64;
        }
    }
    return sum;
}

imp_status imp_model_open(const char *path, imp_load_progress_fn progress, void *user, imp_model **out, imp_error *err) {
    *out = NULL;
    imp_model *m = imp_calloc(1, sizeof *m);
    if (!m) return imp_error_set(err, IMP_ERR_NOMEM, "out of memory");
    imp_status st = imp_gguf_open(path, &m->gguf, err);
    imp_gguf_str s;
    if (st == IMP_OK) st = imp_gguf_get_str(m->gguf, "general.architecture", &s, err);
    if (st == IMP_OK) {
        m->arch = imp_arch_find(s.ptr, (size_t)s.len);
        if (!m->arch) {
            st = imp_error_set(err, IMP_ERR_UNSUPPORTED, "architecture \"%.*s\" is not supported (supported: %s)",
                               (int)(s.len > 64 ? 64 : s.len), s.ptr, imp_arch_names());
        }
    }
    if (st == IMP_OK) st = imp_hparams_load(m->gguf, m->arch, &m->hp, err);
    if (st == IMP_OK) st = imp_vocab_load(m->gguf, &m->vocab, err);
    if (st == IMP_OK) st = bind_all(m, err);
    if (st != IMP_OK) {
        imp_error_prefix(err, "%s", path);
        imp_model_close(m);
        return st;
    }
    if (imp_gguf_find_key(m->gguf, "general.name") >= 0 && imp_gguf_get_str(m->gguf, "general.name", &s, NULL) == IMP_OK) {
        snprintf(m->name, sizeof m->name, "%.*s", (int)(s.len > 120 ? 120 : s.len), s.ptr);
    } else {
        const char *base = strrchr(path, '/');
        snprintf(m->name, sizeof m->name, "%s", base ? base + 1 : path);
    }
    (void)touch_pages(m, progress, user);
    *out = m;
    return IMP_OK;
}

void imp_model_close(imp_model *m) {
    if (!m) return;
    free(m->w.layers);
    imp_vocab_free(m->vocab);
    imp_gguf_close(m->gguf);
    free(m);
}

/* ---- upload ------------------------------------------------------------------------------- */

#define LAYER_TENSORS(X)                                                                                    \
    X(attn_norm) X(wq) X(wk) X(wv) X(wqkv) X(bq) X(bk) X(bv) X(bqkv) X(bo) X(q_norm) X(k_norm) X(wo) X(post_attn_norm) \
        X(ffn_norm) X(gate) X(up) X(down) X(post_ffw_norm)

static imp_status up1(imp_backend *be, const imp_tensor *src, imp_tensor *dst, imp_error *err) {
    memset(dst, 0, sizeof *dst);
    if (!src->data) return IMP_OK;
    return be->ops->upload_weight(be, src, dst, err);
}

static size_t tensor_bytes(const imp_tensor *t) { return t->data ? (size_t)t->ne1 * t->nb1 : 0; }

size_t imp_weights_bytes(const imp_weights *w) { return imp_weights_bytes_range(w, 0, w->n_layer, true); }

size_t imp_weights_bytes_range(const imp_weights *w, int l0, int l1, bool io) {
    size_t n = tensor_bytes(&w->rope_freqs);
    if (io) n += tensor_bytes(&w->tok_embd) + tensor_bytes(&w->output_norm);
    if (io && !w->tied) n += tensor_bytes(&w->output);
    if (l0 < 0) l0 = 0;
    if (l1 > w->n_layer) l1 = w->n_layer;
    for (int l = l0; l < l1; l++) {
        const imp_layer_weights *s = &w->layers[l];
#define SZ(f) n += tensor_bytes(&s->f);
        LAYER_TENSORS(SZ)
#undef SZ
    }
    return n;
}

/* The rows of ts[0..n) (one type and row length) uploaded as one weight; vectors (ne1 == 1,
 * biases) are joined end to end instead. The join is staged in host memory. */
static imp_status up_cat(imp_backend *be, const imp_tensor *const *ts, int n, imp_tensor *dst, imp_error *err) {
    memset(dst, 0, sizeof *dst);
    const bool vec = ts[0]->ne1 == 1;
    imp_tensor cat = {.type = ts[0]->type, .ne0 = vec ? 0 : ts[0]->ne0, .ne1 = vec ? 1 : 0};
    size_t bytes = 0;
    for (int i = 0; i < n; i++) {
        const size_t row = imp_row_size(ts[i]->type, ts[i]->ne0);
        bytes += row * (size_t)ts[i]->ne1;
        if (vec) cat.ne0 += ts[i]->ne0;
        else cat.ne1 += ts[i]->ne1;
    }
    cat.nb1 = imp_row_size(cat.type, cat.ne0);
    uint8_t *buf = malloc(bytes ? bytes : 1);
    if (!buf) return imp_error_set(err, IMP_ERR_NOMEM, "out of memory joining weights (%zu bytes)", bytes);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        const size_t row = imp_row_size(ts[i]->type, ts[i]->ne0);
        for (int64_t r = 0; r < ts[i]->ne1; r++, at += row) {
            memcpy(buf + at, (const uint8_t *)ts[i]->data + (size_t)r * ts[i]->nb1, row);
        }
    }
    cat.data = buf;
    imp_status st = be->ops->upload_weight(be, &cat, dst, err);
    free(buf);
    return st;
}

static bool joinable(const imp_tensor *a, const imp_tensor *b) {
    return a->data && b->data && a->type == b->type && (a->ne1 == 1) == (b->ne1 == 1) && (a->ne1 == 1 || a->ne0 == b->ne0);
}

imp_status imp_weights_upload(imp_backend *be, const imp_weights *src, imp_weights *dst, imp_error *err) {
    return imp_weights_upload_range(be, src, 0, src->n_layer, true, dst, err);
}

imp_status imp_weights_upload_range(imp_backend *be, const imp_weights *src, int l0, int l1, bool io,
                                    imp_weights *dst, imp_error *err) {
    memset(dst, 0, sizeof *dst);
    if (l0 < 0 || l1 < l0 || l1 > src->n_layer) {
        return imp_error_set(err, IMP_ERR_INTERNAL, "weights upload: layers [%d, %d) of %d", l0, l1, src->n_layer);
    }
    dst->n_layer = src->n_layer;
    dst->tied = src->tied;
    dst->layers = imp_calloc((size_t)src->n_layer, sizeof *dst->layers);
    if (!dst->layers) return imp_error_set(err, IMP_ERR_NOMEM, "out of memory");
    imp_status st = IMP_OK;
    if (io) {
        st = up1(be, &src->tok_embd, &dst->tok_embd, err);
        if (st == IMP_OK) st = up1(be, &src->output_norm, &dst->output_norm, err);
        if (st == IMP_OK && !src->tied) st = up1(be, &src->output, &dst->output, err);
        if (st == IMP_OK && src->tied) dst->output = dst->tok_embd;
    }
    if (st == IMP_OK) st = up1(be, &src->rope_freqs, &dst->rope_freqs, err);
    for (int l = l0; l < l1 && st == IMP_OK; l++) {
        imp_layer_weights s = src->layers[l];
        imp_layer_weights *d = &dst->layers[l];
        d->swa = s.swa;
        /* A backend that asks for it gets q|k|v (and their biases) and gate|up as one weight
         * each: one matmul reads them all (the forward takes the fused forms as phi3's). */
        const imp_tensor wq = s.wq, wk = s.wk, wv = s.wv, bq = s.bq, bk = s.bk, bv = s.bv, gate = s.gate, up = s.up;
        const bool qkv = be->join_weights && joinable(&wq, &wk) && joinable(&wq, &wv);
        const bool qkv_b = qkv && bq.data && joinable(&bq, &bk) && joinable(&bq, &bv);
        const bool gu = be->join_weights && joinable(&gate, &up);
        if (qkv) memset(&s.wq, 0, sizeof s.wq), memset(&s.wk, 0, sizeof s.wk), memset(&s.wv, 0, sizeof s.wv);
        if (qkv_b) memset(&s.bq, 0, sizeof s.bq), memset(&s.bk, 0, sizeof s.bk), memset(&s.bv, 0, sizeof s.bv);
        if (gu) memset(&s.gate, 0, sizeof s.gate), memset(&s.up, 0, sizeof s.up);
#define UP(f) \
    if (st == IMP_OK) st = up1(be, &s.f, &d->f, err);
        LAYER_TENSORS(UP)
#undef UP
        if (st == IMP_OK && qkv) st = up_cat(be, (const imp_tensor *[]){&wq, &wk, &wv}, 3, &d->wqkv, err);
        if (st == IMP_OK && qkv_b) st = up_cat(be, (const imp_tensor *[]){&bq, &bk, &bv}, 3, &d->bqkv, err);
        if (st == IMP_OK && gu) st = up_cat(be, (const imp_tensor *[]){&gate, &up}, 2, &d->up, err);
    }
    if (st != IMP_OK) imp_weights_free(be, dst);
    return st;
}

static void free1(imp_backend *be, imp_tensor *t) {
    if (t->data) be->ops->free_weight(be, t);
}

void imp_weights_free(imp_backend *be, imp_weights *w) {
    if (!w->layers && !w->tok_embd.data) return;
    for (int l = 0; w->layers && l < w->n_layer; l++) {
        imp_layer_weights *d = &w->layers[l];
#define FR(f) free1(be, &d->f);
        LAYER_TENSORS(FR)
#undef FR
    }
    free(w->layers);
    if (!w->tied) free1(be, &w->output);
    free1(be, &w->tok_embd);
    free1(be, &w->output_norm);
    free1(be, &w->rope_freqs);
    memset(w, 0, sizeof *w);
}
