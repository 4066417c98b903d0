/*
 * The engine (see engine.h): owns the backend, uploaded weights, the KV pool and workspace, and
 * cuts a forward call's inputs into steps of at most max_batch tokens (and at most max_out
 * logit rows), each a batch of one or more sequences for imp_forward.
 *
 * Logits: when a call's logit rows all come from one step (generation: one row per sequence)
 * they stay in the backend's workspace; imp_engine_sample picks tokens there (4 bytes a row
 * come back) and imp_engine_logits downloads them only when first asked. Rows spread over
 * several steps are downloaded after each step, as the next step overwrites the workspace.
 * A step whose logits stay is not waited for (on a model in one part): the sample op queued
 * after it on the same stream is the first wait, so decode pays one host synchronization
 * per token. Whatever reads its results first (sample, download, the next forward call,
 * imp_engine_sync) waits.
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

/* One backend and what lives on it: the weights of its layers, their KV storage, a workspace. */
typedef struct engine_part {
    imp_backend *be;
    imp_weights w;
    imp_kv_store kv;
    imp_forward_ws ws;
} engine_part;

struct imp_engine {
    const imp_model *m;
    /* one part (every layer on one backend), or two with --gpu-layers N < n_layer: part[0] the
     * GPU with layers [0, N), part[1] the CPU with layers [N, n_layer), the embedding and the
     * output layer. The last part computes the logits. */
    engine_part part[2];
    imp_forward_part fp[2]; /* views of part[] for imp_forward */
    int n_parts;
    imp_kv_pool pool; /* the block tables are the same for every part */
    int max_seq_len, max_batch, n_threads, device, gpu_layers;
    bool graphs;
    char name[16]; /* "cpu", "cuda", "cuda+cpu" */
    /* one step's batch (host) */
    int32_t *token, *pos, *seq, *slot, *out_rows, *base_pos; /* [max_batch] (base_pos: [n_in]) */
    imp_batch_seq *seqs;                                     /* [max_batch]                    */
    int32_t *seq_in;   /* [max_batch] input index of each batch sequence */
    int32_t base_cap;
    /* the last call's logits: rows [0, n_logits) of ws.logits (on the backend) when
     * logits_dev, of logits (host) when logits_host; at least one of them when n_logits > 0 */
    float *logits;
    size_t logits_rows_cap;
    int32_t n_logits;
    bool logits_dev, logits_host;
    /* the last step was queued and not waited for (its logits stayed on the device, so that a
     * sample op can follow on the stream): the next sample, download or call waits */
    bool unsynced;
};

imp_engine_params imp_engine_params_default(void) {
    return (imp_engine_params){.n_threads = 0, .max_seq_len = 0, .n_seq_max = 1, .max_batch = 512, .block_size = 16,
                               .device = IMP_DEVICE_AUTO, .kv_type = IMP_TYPE_F16, .cuda_graphs = true,
                               .gpu_layers = IMP_GPU_LAYERS_ALL};
}

const imp_model *imp_engine_model(const imp_engine *e) { return e->m; }
int imp_engine_max_seq_len(const imp_engine *e) { return e->max_seq_len; }
int imp_engine_threads(const imp_engine *e) { return e->n_threads; }
const char *imp_engine_backend_name(const imp_engine *e) { return e->name; }
int imp_engine_device(const imp_engine *e) { return e->device; }
int imp_engine_gpu_layers(const imp_engine *e) { return e->gpu_layers; }

#define GIB(x) ((double)(x) / (1024.0 * 1024.0 * 1024.0))
#define VRAM_RESERVE ((size_t)512 << 20) /* CUDA/cuBLAS workspaces, scratch, fragmentation */

/* Bytes of the forward workspace (imp_forward_ws_alloc's tensors). */
static size_t ws_bytes(const imp_hparams *hp, int64_t T, int64_t n_out) {
    const int64_t QD = (int64_t)hp->n_head * hp->head_dim, KD = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t floats = T * (2 * hp->n_embd + QD + 2 * KD + QD + hp->n_embd + 3 * hp->n_ff) +
                           n_out * (hp->n_embd + hp->n_vocab);
    return (size_t)floats * sizeof(float);
}

static size_t sat_add(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }
static size_t sat_mul(size_t a, size_t b) {
    size_t r;
    return imp_mul_size(a, b, &r) ? r : SIZE_MAX;
}

/* What the GPU holds when it computes layers [0, n) (n = n_layer: the whole model, with the
 * embedding and the output layer; else those stay on the CPU and the GPU's workspace has no
 * logits). */
typedef struct vram_share {
    size_t w, kv, ws, total;
} vram_share;

static vram_share vram_share_of(const imp_model *m, int n, int64_t slots, size_t kv_row, int64_t max_batch,
                                int64_t max_out) {
    const bool all = n >= m->hp.n_layer;
    vram_share s;
    s.w = imp_weights_bytes_range(&m->w, 0, n, all);
    s.kv = sat_mul(sat_mul((size_t)slots, 2 * (size_t)n), kv_row); /* K and V of n layers */
    s.ws = ws_bytes(&m->hp, max_batch, all ? max_out : 0);
    s.total = sat_add(sat_add(sat_add(s.w, s.kv), s.ws), VRAM_RESERVE);
    return s;
}

/* The VRAM plan: the GPU's share (weights of its layers + their KV pool + workspace + a
 * reserve) must fit the device's free memory, checked before anything is allocated. On failure
 * the message gives the numbers and what would fit: the max_seq_len at these layers, and the
 * most layers (--gpu-layers) at this max_seq_len. */
static imp_status vram_plan(const imp_model *m, size_t free_b, size_t total_b, int device, int n_gpu, int64_t n_blocks,
                            int32_t bs, int n_seq_max, size_t kv_row, int64_t max_batch, int64_t max_out,
                            imp_error *err) {
    const int L = m->hp.n_layer;
    const vram_share s = vram_share_of(m, n_gpu, n_blocks * bs, kv_row, max_batch, max_out);
    char what[64] = "";
    if (n_gpu < L) snprintf(what, sizeof what, " (layers 0-%d of %d)", n_gpu - 1, L);
    IMP_LOG_I("VRAM plan%s: weights %.2f GiB + KV %.2f GiB + workspace %.2f GiB + reserve %.2f GiB = %.2f GiB; "
              "device %d has %.2f of %.2f GiB free",
              what, GIB(s.w), GIB(s.kv), GIB(s.ws), GIB(VRAM_RESERVE), GIB(s.total), device, GIB(free_b),
              GIB(total_b));
    if (s.total <= free_b) return IMP_OK;
    /* the longest context at these layers */
    int64_t fit_seq = 0;
    const size_t fixed = sat_add(sat_add(s.w, s.ws), VRAM_RESERVE);
    const size_t per_slot = sat_mul(2 * (size_t)n_gpu, kv_row);
    if (fixed < free_b && per_slot > 0) {
        const int64_t slots = (int64_t)((free_b - fixed) / per_slot) / n_seq_max;
        fit_seq = slots / bs * bs;
        if (fit_seq < bs) fit_seq = 0;
    }
    /* the most layers at this context (at least one; zero is --device cpu) */
    int fit_layers = 0;
    for (int n = n_gpu - 1; n >= 1 && !fit_layers; n--) {
        if (vram_share_of(m, n, n_blocks * bs, kv_row, max_batch, max_out).total <= free_b) fit_layers = n;
    }
    char hint[192];
    if (fit_seq && fit_layers) {
        snprintf(hint, sizeof hint, "; --max-seq-len %lld or --gpu-layers %d would fit", (long long)fit_seq,
                 fit_layers);
    } else if (fit_seq) {
        snprintf(hint, sizeof hint, "; --max-seq-len %lld would fit", (long long)fit_seq);
    } else if (fit_layers) {
        snprintf(hint, sizeof hint, "; --gpu-layers %d would fit (the other layers run on the CPU)", fit_layers);
    } else {
        snprintf(hint, sizeof hint,
                 "; neither a shorter --max-seq-len nor fewer --gpu-layers alone would fit: use a smaller "
                 "quantization or --device cpu");
    }
    return imp_error_set(err, IMP_ERR_NOMEM,
                         "model%s does not fit on GPU %d: weights %.2f GiB + KV cache %.2f GiB + workspace %.2f GiB + "
                         "reserve %.2f GiB = %.2f GiB, but %.2f GiB of %.2f GiB are free%s",
                         what, device, GIB(s.w), GIB(s.kv), GIB(s.ws), GIB(VRAM_RESERVE), GIB(s.total), GIB(free_b),
                         GIB(total_b), hint);
}

/* Picks and creates the backends: the CPU alone, or a CUDA device after the VRAM plan passes
 * (with the CPU beside it when only the first gpu_layers layers go to the GPU). */
static imp_status engine_backends(imp_engine *e, const imp_engine_params *p, int threads, int64_t n_blocks,
                                  int64_t max_out, imp_error *err) {
    const int L = e->m->hp.n_layer;
    const int n_gpu = p->gpu_layers < 0 || p->gpu_layers > L ? L : p->gpu_layers;
    int device = p->device;
    if (device != IMP_DEVICE_CPU && n_gpu == 0) {
        IMP_LOG_I("engine: gpu_layers = 0: every layer runs on the CPU");
        device = IMP_DEVICE_CPU;
    }
    if (device == IMP_DEVICE_AUTO) {
        imp_device_info info[1];
        int n = 0;
        imp_error ignore;
        device = imp_device_list(info, 1, &n, &ignore) == IMP_OK && n > 0 ? 0 : IMP_DEVICE_CPU;
    }
    e->device = device;
    e->n_parts = 1;
    e->gpu_layers = 0;
    if (device == IMP_DEVICE_CPU && (!p->split_on_cpu || n_gpu == 0 || n_gpu == L)) {
        return imp_backend_cpu_create(threads, &e->part[0].be, err);
    }
    if (device == IMP_DEVICE_CPU) { /* tests: the split with a CPU backend as the "GPU" */
        imp_status st = imp_backend_cpu_create(threads, &e->part[0].be, err);
        if (st != IMP_OK) return st;
        e->gpu_layers = n_gpu;
        e->n_parts = 2;
        return imp_backend_cpu_create(threads, &e->part[1].be, err);
    }
    if (device < 0) return imp_error_set(err, IMP_ERR_INVALID_ARG, "device %d is not a device index", device);
    if (p->kv_type != IMP_TYPE_F16 && p->kv_type != IMP_TYPE_F32) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "KV cache type %s: the GPU stores f16 or f32",
                             imp_type_name(p->kv_type));
    }
    size_t free_b, total_b;
    imp_status st = imp_device_mem_info(device, &free_b, &total_b, err);
    if (st == IMP_OK) {
        st = vram_plan(e->m, free_b, total_b, device, n_gpu, n_blocks, p->block_size, p->n_seq_max,
                       imp_row_size(p->kv_type, (int64_t)e->m->hp.n_head_kv * e->m->hp.head_dim), p->max_batch,
                       max_out, err);
    }
    if (st != IMP_OK) return st;
    const imp_cuda_params cp = {.device = device, .kv_type = p->kv_type};
    st = imp_backend_cuda_create(&cp, &e->part[0].be, err);
    if (st != IMP_OK) return st;
    e->gpu_layers = n_gpu;
    if (n_gpu == L) return IMP_OK;
    e->n_parts = 2;
    return imp_backend_cpu_create(threads, &e->part[1].be, err);
}

static void kv_free(engine_part *P) {
    imp_kv_store *kv = &P->kv;
    for (int l = 0; l < kv->n_layer; l++) {
        if (kv->k && kv->k[l].data) P->be->ops->dealloc(P->be, kv->k[l].data);
        if (kv->v && kv->v[l].data) P->be->ops->dealloc(P->be, kv->v[l].data);
    }
    free(kv->k);
    free(kv->v);
    memset(kv, 0, sizeof *kv);
}

/* The KV storage of layers [l0, l1) on P's backend, in its kv_type; the other layers' tensors
 * stay absent. */
static imp_status kv_alloc(const imp_model *m, engine_part *P, int l0, int l1, int32_t n_blocks, int32_t bs,
                           imp_error *err) {
    const imp_hparams *hp = &m->hp;
    imp_kv_store *kv = &P->kv;
    kv->n_layer = hp->n_layer;
    kv->block_size = bs;
    kv->n_blocks = n_blocks;
    kv->n_embd_kv = (int64_t)hp->n_head_kv * hp->head_dim;
    kv->type = P->be->kv_type;
    kv->k = imp_calloc((size_t)hp->n_layer, sizeof *kv->k);
    kv->v = imp_calloc((size_t)hp->n_layer, sizeof *kv->v);
    if (!kv->k || !kv->v) return imp_error_set(err, IMP_ERR_NOMEM, "out of memory");
    const int64_t S = (int64_t)n_blocks * bs;
    size_t bytes;
    if (!imp_mul_size((size_t)S, imp_row_size(kv->type, kv->n_embd_kv), &bytes)) {
        return imp_error_set(err, IMP_ERR_NOMEM, "KV cache size overflows");
    }
    for (int l = l0; l < l1; l++) {
        void *pk = P->be->ops->alloc(P->be, bytes, err);
        void *pv = pk ? P->be->ops->alloc(P->be, bytes, err) : NULL;
        if (pk) kv->k[l] = imp_tensor_make(kv->type, kv->n_embd_kv, S, pk);
        if (pv) kv->v[l] = imp_tensor_make(kv->type, kv->n_embd_kv, S, pv);
        if (!pk || !pv) {
            imp_error_prefix(err, "KV cache on the %s backend (%d layers x 2 x %zu bytes)", P->be->ops->name,
                             l1 - l0, bytes);
            return IMP_ERR_NOMEM;
        }
    }
    return IMP_OK;
}

/* Everything of the parts after their backends exist: weights, KV storage, workspaces. */
static imp_status engine_parts(imp_engine *e, int32_t n_blocks, int32_t bs, int32_t max_batch, int32_t max_out,
                               imp_error *err) {
    const imp_model *m = e->m;
    const int L = m->hp.n_layer;
    imp_status st = IMP_OK;
    for (int i = 0; i < e->n_parts && st == IMP_OK; i++) {
        engine_part *P = &e->part[i];
        const bool last = i == e->n_parts - 1;
        const int l0 = i == 0 ? 0 : e->gpu_layers, l1 = last ? L : e->gpu_layers;
        st = imp_weights_upload_range(P->be, &m->w, l0, l1, last, &P->w, err);
        if (st == IMP_OK) st = kv_alloc(m, P, l0, l1, n_blocks, bs, err);
        if (st == IMP_OK) st = imp_forward_ws_alloc(P->be, &m->hp, max_batch, last ? max_out : 0, &P->ws, err);
        e->fp[i] = (imp_forward_part){.be = P->be, .w = &P->w, .kv = &P->kv, .ws = &P->ws, .l0 = l0, .l1 = l1};
    }
    return st;
}

void imp_engine_free(imp_engine *e) {
    if (!e) return;
    for (int i = 0; i < 2; i++) {
        engine_part *P = &e->part[i];
        if (!P->be) continue;
        imp_forward_ws_free(P->be, &P->ws);
        kv_free(P);
        imp_weights_free(P->be, &P->w);
        imp_backend_free(P->be);
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

/* Logit rows per step and KV blocks in the pool for max_seq tokens per sequence. */
static void engine_sizes(const imp_model *m, const imp_engine_params *p, int max_seq, int64_t *max_out,
                         int64_t *n_blocks) {
    int64_t mo = (int64_t)(LOGITS_WS_BYTES / ((size_t)m->hp.n_vocab * sizeof(float)));
    if (mo > LOGITS_WS_ROWS) mo = LOGITS_WS_ROWS;
    if (mo < 16) mo = 16;
    if (mo > p->max_batch) mo = p->max_batch;
    *max_out = mo;
    *n_blocks = ((int64_t)max_seq + p->block_size - 1) / p->block_size * p->n_seq_max;
}

imp_status imp_engine_vram_plan(const imp_model *m, const imp_engine_params *p, size_t free_bytes, size_t total_bytes,
                                imp_error *err) {
    if (p->max_seq_len < 1 || p->max_seq_len > (1 << 24) || p->n_seq_max < 1 || p->max_batch < 1 ||
        p->block_size < 1 || p->gpu_layers < IMP_GPU_LAYERS_ALL ||
        (p->kv_type != IMP_TYPE_F16 && p->kv_type != IMP_TYPE_F32)) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "vram plan: bad parameters");
    }
    const int L = m->hp.n_layer;
    const int n_gpu = p->gpu_layers < 0 || p->gpu_layers > L ? L : p->gpu_layers;
    int64_t max_out, n_blocks;
    engine_sizes(m, p, p->max_seq_len, &max_out, &n_blocks);
    return vram_plan(m, free_bytes, total_bytes, p->device >= 0 ? p->device : 0, n_gpu, n_blocks, p->block_size,
                     p->n_seq_max, imp_row_size(p->kv_type, (int64_t)m->hp.n_head_kv * m->hp.head_dim),
                     p->max_batch, max_out, err);
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
    if (p->gpu_layers < IMP_GPU_LAYERS_ALL) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG,
                             "gpu_layers %d: expected a layer count >= 0, or -1 for every layer", p->gpu_layers);
    }
    imp_engine *e = imp_calloc(1, sizeof *e);
    if (!e) return imp_error_set(err, IMP_ERR_NOMEM, "out of memory");
    e->m = m;
    e->max_seq_len = max_seq;
    e->max_batch = p->max_batch;
    e->n_threads = threads;
    e->graphs = p->cuda_graphs;
    int64_t max_out, n_blocks;
    engine_sizes(m, p, max_seq, &max_out, &n_blocks);
    imp_status st = n_blocks > INT32_MAX ? imp_error_set(err, IMP_ERR_INVALID_ARG, "KV pool too large") : IMP_OK;
    if (st == IMP_OK) st = engine_backends(e, p, threads, n_blocks, max_out, err);
    if (st == IMP_OK) st = imp_kv_pool_init(&e->pool, (int32_t)n_blocks, p->block_size, err);
    if (st == IMP_OK) st = engine_parts(e, (int32_t)n_blocks, p->block_size, p->max_batch, (int32_t)max_out, err);
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
    snprintf(e->name, sizeof e->name, "%s%s%s", e->part[0].be->ops->name, e->n_parts > 1 ? "+" : "",
             e->n_parts > 1 ? e->part[1].be->ops->name : "");
    char split[96] = "";
    if (e->n_parts > 1) {
        snprintf(split, sizeof split, "; layers 0-%d on the GPU, %d-%d on the CPU", e->gpu_layers - 1, e->gpu_layers,
                 m->hp.n_layer - 1);
    }
    IMP_LOG_I("engine: %s backend (device %d), %d threads, %d tokens per sequence, steps of %d tokens, KV pool %lld blocks of %d%s",
              e->name, e->device, threads, max_seq, p->max_batch, (long long)n_blocks, p->block_size, split);
    *out = e;
    return IMP_OK;
}

int32_t imp_engine_n_logits(const imp_engine *e) { return e->n_logits; }

imp_status imp_engine_sync(imp_engine *e, imp_error *err) {
    if (!e->unsynced) return IMP_OK;
    imp_status st = IMP_OK;
    for (int i = 0; i < e->n_parts && st == IMP_OK; i++) st = e->part[i].be->ops->sync(e->part[i].be, err);
    if (st == IMP_OK) e->unsynced = false;
    return st;
}

/* Brings the first n rows of ws.logits to e->logits (the download waits for the step). */
static imp_status logits_download(imp_engine *e, int32_t n, imp_error *err) {
    const size_t V = (size_t)e->m->hp.n_vocab;
    const engine_part *io = &e->part[e->n_parts - 1];
    imp_status st = io->be->ops->download(io->be, e->logits, io->ws.logits.data, (size_t)n * V * sizeof(float), err);
    if (st == IMP_OK && e->n_parts == 1) e->unsynced = false;
    return st;
}

const float *imp_engine_logits(imp_engine *e, int32_t k) {
    if (k < 0 || k >= e->n_logits) return NULL;
    if (!e->logits_host) {
        imp_error err;
        imp_error_clear(&err);
        if (logits_download(e, e->n_logits, &err) != IMP_OK) {
            IMP_LOG_E("engine: logits: %s", err.msg);
            return NULL;
        }
        e->logits_host = true;
    }
    return e->logits + (size_t)k * (size_t)e->m->hp.n_vocab;
}

bool imp_engine_can_sample(const imp_engine *e) {
    return e->part[e->n_parts - 1].be->ops->sample && e->logits_dev;
}

imp_status imp_engine_sample(imp_engine *e, int32_t k0, int32_t n, const imp_sample_params *p,
                             int32_t *tokens, imp_error *err) {
    if (!imp_engine_can_sample(e)) {
        return imp_error_set(err, IMP_ERR_UNSUPPORTED, "the %s backend cannot sample these logits",
                             e->part[e->n_parts - 1].be->ops->name);
    }
    if (k0 < 0 || n < 0 || k0 > e->n_logits - n || (n > 0 && (!p || !tokens))) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG,
                             "sample: rows %d..%d of %d, or NULL arguments", k0, k0 + n,
                             e->n_logits);
    }
    const engine_part *io = &e->part[e->n_parts - 1]; /* holds the logits */
    const imp_tensor rows = imp_tensor_rows(&io->ws.logits, k0, n);
    /* queued right after the step on the same stream; returns once the tokens are here */
    imp_status st = io->be->ops->sample(io->be, &rows, p, tokens, err);
    if (st == IMP_OK && n > 0 && e->n_parts == 1) e->unsynced = false;
    return st;
}

void imp_engine_seq_truncate(imp_engine *e, imp_kv_seq *s, int32_t n_pos) { imp_kv_seq_truncate(&e->pool, s, n_pos); }

void imp_engine_seq_release(imp_engine *e, imp_kv_seq *s) { imp_kv_seq_release(&e->pool, s); }

/* One step through imp_forward, or through a recorded graph of it. Decode steps (one token
 * per sequence, logits for each) are recorded on a backend with graphs, keyed by their size:
 * every launch parameter of such a step depends on that size alone. A model split between
 * backends runs without graphs (a graph cannot hold the CPU's part). */
static imp_status run_step(imp_engine *e, const imp_batch *b, int32_t nout, imp_error *err) {
    imp_backend *be = e->part[0].be;
    const imp_backend_ops *op = be->ops;
    const bool decode = b->n_tokens == b->n_seqs && nout == b->n_tokens;
    if (e->graphs && e->n_parts == 1 && op->graph_begin && decode) {
        const uint64_t key = (uint64_t)b->n_tokens | (uint64_t)1 << 40;
        bool done = false, capturing = false, launched = false;
        imp_status st = op->graph_replay(be, key, b, e->out_rows, nout, &done, err);
        if (st != IMP_OK || done) return st;
        if ((st = op->graph_begin(be, key, &capturing, err)) != IMP_OK) return st;
        if (capturing) {
            st = imp_forward(e->m, e->fp, e->n_parts, b, e->out_rows, nout, err);
            imp_status st2 = op->graph_end(be, key, st == IMP_OK, &launched, err);
            if (st2 != IMP_OK) return st2;
            if (launched) return IMP_OK;
            IMP_LOG_D("engine: graph for %d tokens not recorded (%s); running the step directly", b->n_tokens,
                      st == IMP_OK ? "the backend refused" : err->msg);
            if (err) imp_error_clear(err);
        }
    }
    return imp_forward(e->m, e->fp, e->n_parts, b, e->out_rows, nout, err);
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
    e->logits_dev = e->logits_host = false;
    if (n_in < 0 || (n_in > 0 && !in)) return imp_error_set(err, IMP_ERR_INVALID_ARG, "forward: bad input list");
    /* the previous step may still run: it reads the staging buffers this call refills */
    imp_status st = imp_engine_sync(e, err);
    if (st != IMP_OK) return st;
    int64_t n_out;
    st = check_inputs(e, in, n_in, &n_out, err);
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
    const engine_part *io = &e->part[e->n_parts - 1]; /* computes the logits */
    int i_in = 0;
    int32_t j = 0;
    int64_t out_done = 0;
    while (i_in < n_in) {
        int32_t nt = 0, nseq = 0, nout = 0, cur = -1;
        while (nt < e->max_batch && nout < io->ws.max_out && i_in < n_in) {
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
        /* logits kept from an earlier step: this one may overwrite them */
        if (e->logits_dev) {
            if (!e->logits_host && (st = logits_download(e, (int32_t)out_done, err)) != IMP_OK)
                break;
            e->logits_host = true;
            e->logits_dev = false;
        }
        const imp_batch b = {.n_tokens = nt, .token = e->token, .pos = e->pos, .seq = e->seq, .slot = e->slot,
                             .n_seqs = nseq, .seqs = e->seqs};
        st = run_step(e, &b, nout, err);
        e->unsynced = true;
        const bool keep = nout > 0 && out_done == 0 && nout == n_out; /* every row of the call */
        if (st == IMP_OK && !(keep && e->n_parts == 1)) st = imp_engine_sync(e, err);
        if (st == IMP_OK && nout > 0) {
            if (keep) {
                e->logits_dev = true; /* every row of the call: downloaded when asked for */
            } else {
                st = io->be->ops->download(io->be, e->logits + (size_t)out_done * V, io->ws.logits.data,
                                           (size_t)nout * V * sizeof(float), err);
                e->logits_host = true;
                e->logits_dev = false;
            }
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
    if (e->n_logits == 0) e->logits_dev = e->logits_host = false;
    return st;
}
