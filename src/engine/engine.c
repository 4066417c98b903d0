/*
 * The engine (see engine.h): owns the backend, uploaded weights, the KV pool and workspace, and
 * cuts a forward call's inputs into steps of at most max_batch tokens (and at most max_out
 * logit rows), each a batch of one or more sequences for imp_forward.
 */
#define _POSIX_C_SOURCE 200809L
#include "engine/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/threads.h"
#include "backend/device.h"

#define LOGITS_WS_BYTES (64u << 20) /* logits rows per step are capped to stay under this */
#define LOGITS_WS_ROWS 64          /* ... and to this many rows (generation needs one per sequence) */

struct imp_engine {
    const imp_model *m;
    imp_backend *be;
    imp_weights w;
    imp_kv_pool pool;
    imp_kv_store kv;
    imp_forward_ws ws;
    int max_seq_len, max_batch, n_threads, device;
    bool graphs;
    /* one step's batch (host) */
    int32_t *token, *pos, *seq, *slot, *out_rows, *base_pos; /* [max_batch] (base_pos: [n_in]) */
    imp_batch_seq *seqs;                                     /* [max_batch]                    */
    int32_t *seq_in;   /* [max_batch] input index of each batch sequence */
    int32_t base_cap;
    /* the last call's logits */
    float *logits;
    size_t logits_rows_cap;
    int32_t n_logits;
};

imp_engine_params imp_engine_params_default(void) {
    return (imp_engine_params){.n_threads = 0, .max_seq_len = 0, .n_seq_max = 1, .max_batch = 512, .block_size = 16,
                               .device = IMP_DEVICE_AUTO, .kv_type = IMP_TYPE_F16, .cuda_graphs = true};
}

const imp_model *imp_engine_model(const imp_engine *e) { return e->m; }
int imp_engine_max_seq_len(const imp_engine *e) { return e->max_seq_len; }
int imp_engine_threads(const imp_engine *e) { return e->n_threads; }
const char *imp_engine_backend_name(const imp_engine *e) { return e->be->ops->name; }
int imp_engine_device(const imp_engine *e) { return e->device; }

#define GIB(x) ((double)(x) / (1024.0 * 1024.0 * 1024.0))
#define VRAM_RESERVE ((size_t)512 << 20) /* CUDA/cuBLAS workspaces, scratch, fragmentation */

/* Bytes of the forward workspace (imp_forward_ws_alloc's tensors). */
static size_t ws_bytes(const imp_hparams *hp, int64_t T, int64_t n_out) {
    const int64_t QD = (int64_t)hp->n_head * hp->head_dim, KD = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t floats = T * (2 * hp->n_embd + QD + 2 * KD + QD + hp->n_embd + 3 * hp->n_ff) +
                           n_out * (hp->n_embd + hp->n_vocab);
    return (size_t)floats * sizeof(float);
}

/* The VRAM plan: weights + KV pool + workspace + a reserve must fit the device's free memory,
 * checked before anything is allocated. On failure the message gives the numbers and the
 * max_seq_len that would fit, if any. */
static imp_status vram_plan(const imp_model *m, int device, int64_t n_blocks, int32_t bs, int n_seq_max,
                            size_t kv_row, int64_t max_batch, int64_t max_out, imp_error *err) {
    size_t free_b, total_b;
    imp_status st = imp_device_mem_info(device, &free_b, &total_b, err);
    if (st != IMP_OK) return st;
    const size_t w = imp_weights_bytes(&m->w);
    const size_t per_slot = 2 * (size_t)m->hp.n_layer * kv_row; /* K and V, every layer */
    const size_t kv = (size_t)n_blocks * (size_t)bs * per_slot;
    const size_t ws = ws_bytes(&m->hp, max_batch, max_out);
    const size_t need = w + kv + ws + VRAM_RESERVE;
    IMP_LOG_I("VRAM plan: weights %.2f GiB + KV %.2f GiB + workspace %.2f GiB + reserve %.2f GiB = %.2f GiB; "
              "device %d has %.2f of %.2f GiB free",
              GIB(w), GIB(kv), GIB(ws), GIB(VRAM_RESERVE), GIB(need), device, GIB(free_b), GIB(total_b));
    if (need <= free_b) return IMP_OK;
    const size_t fixed = w + ws + VRAM_RESERVE;
    char hint[160] = "";
    if (fixed < free_b) {
        const int64_t slots = (int64_t)((free_b - fixed) / per_slot) / n_seq_max;
        const int64_t fit = slots / bs * bs;
        if (fit >= bs) {
            snprintf(hint, sizeof hint, "; --max-seq-len %lld would fit", (long long)fit);
        }
    }
    if (!hint[0]) snprintf(hint, sizeof hint, "; the weights alone do not fit: use a smaller quantization or --device cpu");
    return imp_error_set(err, IMP_ERR_NOMEM,
                         "model does not fit on GPU %d: weights %.2f GiB + KV cache %.2f GiB + workspace %.2f GiB + "
                         "reserve %.2f GiB = %.2f GiB, but %.2f GiB of %.2f GiB are free%s",
                         device, GIB(w), GIB(kv), GIB(ws), GIB(VRAM_RESERVE), GIB(need), GIB(free_b), GIB(total_b),
                         hint);
}

/* Picks and creates the backend: the CPU, or a CUDA device after the VRAM plan passes. */
static imp_status engine_backend(imp_engine *e, const imp_engine_params *p, int threads, int64_t n_blocks,
                                 int64_t max_out, imp_error *err) {
    int device = p->device;
    if (device == IMP_DEVICE_AUTO) {
        imp_device_info info[1];
        int n = 0;
        imp_error ignore;
        device = imp_device_list(info, 1, &n, &ignore) == IMP_OK && n > 0 ? 0 : IMP_DEVICE_CPU;
    }
    e->device = device;
    if (device == IMP_DEVICE_CPU) return imp_backend_cpu_create(threads, &e->be, err);
    if (device < 0) return imp_error_set(err, IMP_ERR_INVALID_ARG, "device %d is not a device index", device);
    if (p->kv_type != IMP_TYPE_F16 && p->kv_type != IMP_TYPE_F32) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "KV cache type %s: the GPU stores f16 or f32",
                             imp_type_name(p->kv_type));
    }
    imp_status st = vram_plan(e->m, device, n_blocks, p->block_size, p->n_seq_max,
                              imp_row_size(p->kv_type, (int64_t)e->m->hp.n_head_kv * e->m->hp.head_dim),
                              p->max_batch, max_out, err);
    if (st != IMP_OK) return st;
    const imp_cuda_params cp = {.device = device, .kv_type = p->kv_type};
    return imp_backend_cuda_create(&cp, &e->be, err);
}

static void kv_free(imp_engine *e) {
    for (int l = 0; l < e->kv.n_layer; l++) {
        if (e->kv.k && e->kv.k[l].data) e->be->ops->dealloc(e->be, e->kv.k[l].data);
        if (e->kv.v && e->kv.v[l].data) e->be->ops->dealloc(e->be, e->kv.v[l].data);
    }
    free(e->kv.k);
    free(e->kv.v);
    memset(&e->kv, 0, sizeof e->kv);
}

static imp_status kv_alloc(imp_engine *e, int32_t n_blocks, int32_t bs, imp_error *err) {
    const imp_hparams *hp = &e->m->hp;
    imp_kv_store *kv = &e->kv;
    kv->n_layer = hp->n_layer;
    kv->block_size = bs;
    kv->n_blocks = n_blocks;
    kv->n_embd_kv = (int64_t)hp->n_head_kv * hp->head_dim;
    kv->type = e->be->kv_type;
    kv->k = imp_calloc((size_t)hp->n_layer, sizeof *kv->k);
    kv->v = imp_calloc((size_t)hp->n_layer, sizeof *kv->v);
    if (!kv->k || !kv->v) return imp_error_set(err, IMP_ERR_NOMEM, "out of memory");
    const int64_t S = (int64_t)n_blocks * bs;
    size_t bytes;
    if (!imp_mul_size((size_t)S, imp_row_size(kv->type, kv->n_embd_kv), &bytes)) {
        return imp_error_set(err, IMP_ERR_NOMEM, "KV cache size overflows");
    }
    for (int l = 0; l < hp->n_layer; l++) {
        void *pk = e->be->ops->alloc(e->be, bytes, err);
        void *pv = pk ? e->be->ops->alloc(e->be, bytes, err) : NULL;
        if (pk) kv->k[l] = imp_tensor_make(kv->type, kv->n_embd_kv, S, pk);
        if (pv) kv->v[l] = imp_tensor_make(kv->type, kv->n_embd_kv, S, pv);
        if (!pk || !pv) {
            imp_error_prefix(err, "KV cache (%d layers x 2 x %zu bytes)", hp->n_layer, bytes);
            return IMP_ERR_NOMEM;
        }
    }
    return IMP_OK;
}

void imp_engine_free(imp_engine *e) {
    if (!e) return;
    if (e->be) {
        imp_forward_ws_free(e->be, &e->ws);
        kv_free(e);
        imp_weights_free(e->be, &e->w);
        imp_backend_free(e->be);
    }
    imp_kv_pool_free(&e->pool);
    free(e->token);
    free(e->pos);
    free(e->seq);
    free(e->slot);
    free(e->out_rows);
    free(e->base_pos);
    free(e->seqs);
    free(e->seq_in);
    free(e->logits);
    free(e);
}

imp_status imp_engine_create(const imp_model *m, const imp_engine_params *p, imp_engine **out, imp_error *err) {
    *out = NULL;
    imp_engine_params d = imp_engine_params_default();
    if (!p) p = &d;
    const int threads = p->n_threads > 0 ? p->n_threads : imp_cpu_count();
    int max_seq = p->max_seq_len > 0 ? p->max_seq_len : (m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096);
    if (p->max_seq_len < 0 || p->max_seq_len > (1 << 24)) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "max_seq_len %d outside 1..%d", p->max_seq_len, 1 << 24);
    }
    if (p->n_seq_max < 1 || p->n_seq_max > 4096) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "n_seq_max %d outside 1..4096", p->n_seq_max);
    }
    if (p->max_batch < 1 || p->max_batch > 65536) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "max_batch %d outside 1..65536", p->max_batch);
    }
    if (p->block_size < 1 || p->block_size > 1024 || (p->block_size & (p->block_size - 1))) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "KV block size %d is not a power of two in 1..1024", p->block_size);
    }
    if (threads > 512) return imp_error_set(err, IMP_ERR_INVALID_ARG, "thread count %d outside 1..512", threads);
    imp_engine *e = imp_calloc(1, sizeof *e);
    if (!e) return imp_error_set(err, IMP_ERR_NOMEM, "out of memory");
    e->m = m;
    e->max_seq_len = max_seq;
    e->max_batch = p->max_batch;
    e->n_threads = threads;
    e->graphs = p->cuda_graphs;
    int64_t max_out = (int64_t)(LOGITS_WS_BYTES / ((size_t)m->hp.n_vocab * sizeof(float)));
    if (max_out > LOGITS_WS_ROWS) max_out = LOGITS_WS_ROWS;
    if (max_out < 16) max_out = 16;
    if (max_out > p->max_batch) max_out = p->max_batch;
    const int64_t blocks_per_seq = ((int64_t)max_seq + p->block_size - 1) / p->block_size;
    const int64_t n_blocks = blocks_per_seq * p->n_seq_max;
    imp_status st = n_blocks > INT32_MAX ? imp_error_set(err, IMP_ERR_INVALID_ARG, "KV pool too large") : IMP_OK;
    if (st == IMP_OK) st = engine_backend(e, p, threads, n_blocks, max_out, err);
    if (st == IMP_OK) st = imp_weights_upload(e->be, &m->w, &e->w, err);
    if (st == IMP_OK) st = imp_kv_pool_init(&e->pool, (int32_t)n_blocks, p->block_size, err);
    if (st == IMP_OK) st = kv_alloc(e, (int32_t)n_blocks, p->block_size, err);
    if (st == IMP_OK) st = imp_forward_ws_alloc(e->be, &m->hp, p->max_batch, (int32_t)max_out, &e->ws, err);
    if (st == IMP_OK) {
        const size_t n = (size_t)p->max_batch;
        e->token = imp_malloc_array(n, sizeof(int32_t));
        e->pos = imp_malloc_array(n, sizeof(int32_t));
        e->seq = imp_malloc_array(n, sizeof(int32_t));
        e->slot = imp_malloc_array(n, sizeof(int32_t));
        e->out_rows = imp_malloc_array(n, sizeof(int32_t));
        e->seqs = imp_malloc_array(n, sizeof(imp_batch_seq));
        e->seq_in = imp_malloc_array(n, sizeof(int32_t));
        if (!e->token || !e->pos || !e->seq || !e->slot || !e->out_rows || !e->seqs || !e->seq_in) {
            st = imp_error_set(err, IMP_ERR_NOMEM, "out of memory");
        }
    }
    if (st != IMP_OK) {
        imp_engine_free(e);
        return st;
    }
    IMP_LOG_I("engine: %s backend (device %d), %d threads, %d tokens per sequence, steps of %d tokens, KV pool %lld blocks of %d",
              e->be->ops->name, e->device, threads, max_seq, p->max_batch, (long long)n_blocks, p->block_size);
    *out = e;
    return IMP_OK;
}

int32_t imp_engine_n_logits(const imp_engine *e) { return e->n_logits; }

const float *imp_engine_logits(const imp_engine *e, int32_t k) {
    if (k < 0 || k >= e->n_logits) return NULL;
    return e->logits + (size_t)k * (size_t)e->m->hp.n_vocab;
}

void imp_engine_seq_truncate(imp_engine *e, imp_kv_seq *s, int32_t n_pos) { imp_kv_seq_truncate(&e->pool, s, n_pos); }

void imp_engine_seq_release(imp_engine *e, imp_kv_seq *s) { imp_kv_seq_release(&e->pool, s); }

/* One step through imp_forward, or through a recorded graph of it. Decode steps (one token
 * per sequence, logits for each) are recorded on a backend with graphs, keyed by their size:
 * every launch parameter of such a step depends on that size alone. */
static imp_status run_step(imp_engine *e, const imp_batch *b, int32_t nout, imp_error *err) {
    const imp_backend_ops *op = e->be->ops;
    const bool decode = b->n_tokens == b->n_seqs && nout == b->n_tokens;
    if (e->graphs && op->graph_begin && decode) {
        const uint64_t key = (uint64_t)b->n_tokens | (uint64_t)1 << 40;
        bool done = false, capturing = false, launched = false;
        imp_status st = op->graph_replay(e->be, key, b, e->out_rows, nout, &done, err);
        if (st != IMP_OK || done) return st;
        if ((st = op->graph_begin(e->be, key, &capturing, err)) != IMP_OK) return st;
        if (capturing) {
            st = imp_forward(e->be, e->m, &e->w, &e->kv, b, e->out_rows, nout, &e->ws, err);
            imp_status st2 = op->graph_end(e->be, key, st == IMP_OK, &launched, err);
            if (st2 != IMP_OK) return st2;
            if (launched) return IMP_OK;
            IMP_LOG_D("engine: graph for %d tokens not recorded (%s); running the step directly", b->n_tokens,
                      st == IMP_OK ? "the backend refused" : err->msg);
            if (err) imp_error_clear(err);
        }
    }
    return imp_forward(e->be, e->m, &e->w, &e->kv, b, e->out_rows, nout, &e->ws, err);
}

static imp_status check_inputs(imp_engine *e, const imp_engine_input *in, int n_in, int64_t *n_out, imp_error *err) {
    *n_out = 0;
    for (int i = 0; i < n_in; i++) {
        const imp_engine_input *x = &in[i];
        if (!x->seq || x->n_tokens < 0 || (x->n_tokens > 0 && !x->tokens) || x->first_logit < 0 ||
            x->first_logit > x->n_tokens) {
            return imp_error_set(err, IMP_ERR_INVALID_ARG, "forward input %d: bad sequence, token count or first_logit", i);
        }
        for (int j = 0; j < i; j++) {
            if (in[j].seq == x->seq) return imp_error_set(err, IMP_ERR_INVALID_ARG, "forward inputs %d and %d share a sequence", j, i);
        }
        if ((int64_t)x->seq->n_pos + x->n_tokens > e->max_seq_len) {
            return imp_error_set(err, IMP_ERR_RANGE, "sequence would hold %lld tokens; the limit (max_seq_len) is %d",
                                 (long long)x->seq->n_pos + x->n_tokens, e->max_seq_len);
        }
        for (int32_t t = 0; t < x->n_tokens; t++) {
            if (x->tokens[t] < 0 || x->tokens[t] >= e->m->hp.n_vocab) {
                return imp_error_set(err, IMP_ERR_INVALID_ARG, "token id %d at index %d is outside the vocabulary (0..%d)",
                                     x->tokens[t], t, e->m->hp.n_vocab - 1);
            }
        }
        *n_out += x->n_tokens - x->first_logit;
    }
    return IMP_OK;
}

imp_status imp_engine_forward(imp_engine *e, const imp_engine_input *in, int n_in, imp_error *err) {
    e->n_logits = 0;
    if (n_in < 0 || (n_in > 0 && !in)) return imp_error_set(err, IMP_ERR_INVALID_ARG, "forward: bad input list");
    int64_t n_out;
    imp_status st = check_inputs(e, in, n_in, &n_out, err);
    if (st != IMP_OK) return st;
    const size_t V = (size_t)e->m->hp.n_vocab;
    if ((size_t)n_out > e->logits_rows_cap) {
        size_t bytes;
        if (!imp_mul_size((size_t)n_out * V, sizeof(float), &bytes)) return imp_error_set(err, IMP_ERR_NOMEM, "logits too large");
        float *l = realloc(e->logits, bytes);
        if (!l) return imp_error_set(err, IMP_ERR_NOMEM, "cannot allocate %zu bytes of logits", bytes);
        e->logits = l;
        e->logits_rows_cap = (size_t)n_out;
    }
    if (n_in > e->base_cap) {
        int32_t *b = realloc(e->base_pos, (size_t)n_in * sizeof *b);
        if (!b) return imp_error_set(err, IMP_ERR_NOMEM, "out of memory");
        e->base_pos = b;
        e->base_cap = n_in;
    }
    for (int i = 0; i < n_in; i++) {
        st = imp_kv_seq_reserve(&e->pool, in[i].seq, in[i].seq->n_pos + in[i].n_tokens, err);
        if (st != IMP_OK) {
            for (int j = 0; j <= i; j++) imp_kv_seq_truncate(&e->pool, in[j].seq, in[j].seq->n_pos);
            return st;
        }
        e->base_pos[i] = in[i].seq->n_pos;
    }
    int i_in = 0;
    int32_t j = 0;
    int64_t out_done = 0;
    while (i_in < n_in) {
        int32_t nt = 0, nseq = 0, nout = 0, cur = -1;
        while (nt < e->max_batch && nout < e->ws.max_out && i_in < n_in) {
            const imp_engine_input *x = &in[i_in];
            if (j >= x->n_tokens) {
                i_in++;
                j = 0;
                cur = -1;
                continue;
            }
            if (cur < 0) {
                cur = nseq++;
                e->seq_in[cur] = i_in;
                e->seqs[cur] = (imp_batch_seq){.blocks = x->seq->blocks, .n_blocks = x->seq->n_blocks};
            }
            const int32_t p = e->base_pos[i_in] + j;
            e->token[nt] = x->tokens[j];
            e->pos[nt] = p;
            e->seq[nt] = cur;
            e->slot[nt] = imp_kv_seq_slot(&e->pool, x->seq, p);
            if (j >= x->first_logit) e->out_rows[nout++] = nt;
            nt++;
            j++;
        }
        if (nt == 0) break;
        const imp_batch b = {.n_tokens = nt, .token = e->token, .pos = e->pos, .seq = e->seq, .slot = e->slot,
                             .n_seqs = nseq, .seqs = e->seqs};
        st = run_step(e, &b, nout, err);
        if (st == IMP_OK) st = e->be->ops->sync(e->be, err);
        if (st == IMP_OK && nout > 0) {
            st = e->be->ops->download(e->be, e->logits + (size_t)out_done * V, e->ws.logits.data,
                                      (size_t)nout * V * sizeof(float), err);
        }
        if (st != IMP_OK) break;
        out_done += nout;
        /* positions now in the cache: every sequence in this step advanced to its last token */
        for (int32_t t = 0; t < nt; t++) {
            imp_kv_seq *s = in[e->seq_in[e->seq[t]]].seq;
            if (e->pos[t] + 1 > s->n_pos) s->n_pos = e->pos[t] + 1;
        }
    }
    for (int i = 0; i < n_in; i++) imp_kv_seq_truncate(&e->pool, in[i].seq, in[i].seq->n_pos);
    e->n_logits = st == IMP_OK ? (int32_t)out_done : 0;
    return st;
}
