/*
 * The CUDA backend: device selection, memory, weight upload (with the body/head repack of
 * quantized blocks, cuda_common.cuh), the step's batch copied to the device once
 * (begin_step), and the op table. The ops themselves live in cuda_ops.cu, cuda_matmul.cu,
 * cuda_attn.cu and cuda_sample.cu.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

extern "C" {
#include "base/mem.h"
}

#define WEIGHT_CHUNK_BYTES ((size_t)64 << 20) /* host repack buffer for one upload */

/* ---- quantized block split --------------------------------------------------------------- */

bool imp_cuda_qsplit(imp_type t, int *body_off, int *body_len) {
    switch (t) {
    case IMP_TYPE_Q4_0: *body_off = 2; *body_len = 16; return true;
    case IMP_TYPE_Q4_1: *body_off = 4; *body_len = 16; return true;
    case IMP_TYPE_Q5_0: *body_off = 6; *body_len = 16; return true;
    case IMP_TYPE_Q5_1: *body_off = 8; *body_len = 16; return true;
    case IMP_TYPE_Q8_0: *body_off = 2; *body_len = 32; return true;
    case IMP_TYPE_Q8_1: *body_off = 4; *body_len = 32; return true;
    case IMP_TYPE_IQ4_NL: *body_off = 2; *body_len = 16; return true;
    case IMP_TYPE_Q2_K: *body_off = 16; *body_len = 64; return true;   /* qs; head: scales, d, dmin  */
    case IMP_TYPE_Q3_K: *body_off = 0; *body_len = 96; return true;    /* hmask + qs; head: scales, d */
    case IMP_TYPE_Q4_K: *body_off = 16; *body_len = 128; return true;  /* qs; head: d, dmin, scales  */
    case IMP_TYPE_Q5_K: *body_off = 16; *body_len = 160; return true;  /* qh + qs                    */
    case IMP_TYPE_Q6_K: *body_off = 0; *body_len = 192; return true;   /* ql + qh; head: scales, d   */
    case IMP_TYPE_Q8_K: *body_off = 4; *body_len = 256; return true;   /* qs; head: d, bsums         */
    case IMP_TYPE_IQ4_XS: *body_off = 8; *body_len = 128; return true; /* qs; head: d, scales        */
    default: return false;
    }
}

static size_t head_plane_offset(size_t body_bytes) { return (body_bytes + 255) & ~(size_t)255; }

imp_cuda_wq imp_cuda_wq_of(const imp_tensor *w) {
    imp_cuda_wq q;
    int off = 0, len = 0;
    imp_cuda_qsplit(w->type, &off, &len);
    const imp_type_traits *tr = imp_type_get(w->type);
    q.nb = w->ne0 / tr->block_size;
    q.body_len = len;
    q.head_len = (int)tr->type_size - len;
    q.body = (const uint8_t *)w->data;
    q.head = q.body + head_plane_offset((size_t)w->ne1 * (size_t)q.nb * (size_t)len);
    return q;
}

/* ---- memory -------------------------------------------------------------------------------- */

imp_status imp_cuda_buf_reserve(imp_cuda *c, imp_cuda_buf *b, size_t bytes) {
    if (b->size >= bytes) return IMP_OK;
    if (c->capturing) {
        c->capture_failed = true;
        return IMP_ERR_DEVICE;
    }
    c->epoch++;
    c->gen++; /* contents are not kept */
    CUDA_TRY(cudaStreamSynchronize(c->stream));
    if (b->p) CUDA_TRY(cudaFree(b->p));
    b->p = NULL;
    b->size = 0;
    const size_t want = bytes + bytes / 4 + 256;
    CUDA_TRY(cudaMalloc(&b->p, want));
    b->size = want;
    return IMP_OK;
}

static void buf_free(imp_cuda_buf *b) {
    if (b->p) cudaFree(b->p);
    b->p = NULL;
    b->size = 0;
}

static void cuda_free(imp_backend *be) {
    imp_cuda *c = (imp_cuda *)be;
    cudaSetDevice(c->device);
    if (c->stream) cudaStreamSynchronize(c->stream);
    buf_free(&c->act);
    buf_free(&c->wdq);
    buf_free(&c->attn);
    buf_free(&c->blasws);
    if (c->attn_tickets) cudaFree(c->attn_tickets);
    for (int i = 0; i < IMP_CUDA_GRAPHS; i++) {
        if (c->graphs[i].exec) cudaGraphExecDestroy(c->graphs[i].exec);
    }
    if (c->step.dev) cudaFree(c->step.dev);
    if (c->smp.ws) cudaFree(c->smp.ws);
    if (c->smp.dev) cudaFree(c->smp.dev);
    if (c->smp.host) cudaFreeHost(c->smp.host);
    if (c->step.host) cudaFreeHost(c->step.host);
    if (c->blas) cublasDestroy(c->blas);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

static void *cuda_alloc(imp_backend *be, size_t bytes, imp_error *err) {
    IMP_CUDA_WRITES(be);
    imp_cuda *c = (imp_cuda *)be;
    void *p = NULL;
    if (bytes == 0) bytes = 1;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaSuccess) e = cudaMemsetAsync(p, 0, bytes, c->stream);
    if (e != cudaSuccess) {
        if (p) cudaFree(p);
        cudaGetLastError();
        imp_error_set(err, IMP_ERR_NOMEM, "cannot allocate %zu bytes on GPU %d: %s", bytes, c->device,
                      cudaGetErrorString(e));
        return NULL;
    }
    return p;
}

static void cuda_dealloc(imp_backend *be, void *p) {
    IMP_CUDA_WRITES(be);
    imp_cuda *c = (imp_cuda *)be;
    if (!p) return;
    cudaStreamSynchronize(c->stream); /* queued work may still use it */
    cudaFree(p);
}

static imp_status copy(imp_cuda *c, void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, imp_error *err) {
    if (bytes == 0) return IMP_OK;
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, c->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess) {
        return imp_error_set(err, IMP_ERR_DEVICE, "GPU %d: copy of %zu bytes failed: %s", c->device, bytes,
                             cudaGetErrorString(e));
    }
    return IMP_OK;
}

static imp_status cuda_upload(imp_backend *be, void *dst, const void *src, size_t bytes, imp_error *err) {
    IMP_CUDA_WRITES(be);
    return copy((imp_cuda *)be, dst, src, bytes, cudaMemcpyHostToDevice, err);
}

static imp_status cuda_download(imp_backend *be, void *dst, const void *src, size_t bytes, imp_error *err) {
    return copy((imp_cuda *)be, dst, src, bytes, cudaMemcpyDeviceToHost, err);
}

/* ---- weights --------------------------------------------------------------------------------- */

/* Splits rows [r0, r1) of a quantized host weight into body and head planes in buf and copies
 * them to their places on the device. */
static imp_status upload_split_rows(imp_cuda *c, const imp_tensor *src, uint8_t *dev, int64_t r0, int64_t r1,
                                    uint8_t *buf, imp_error *err) {
    const imp_type_traits *tr = imp_type_get(src->type);
    int off, len;
    imp_cuda_qsplit(src->type, &off, &len);
    const size_t ts = tr->type_size, hl = ts - (size_t)len;
    const int64_t nb = src->ne0 / tr->block_size, n = (r1 - r0) * nb;
    uint8_t *body = buf, *head = buf + (size_t)n * (size_t)len;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)src->data + (size_t)r * src->nb1;
        for (int64_t i = 0; i < nb; i++) {
            const uint8_t *blk = row + (size_t)i * ts;
            const size_t k = (size_t)((r - r0) * nb + i);
            memcpy(body + k * (size_t)len, blk + off, (size_t)len);
            memcpy(head + k * hl, blk, (size_t)off);
            memcpy(head + k * hl + off, blk + off + len, ts - (size_t)off - (size_t)len);
        }
    }
    const size_t body_at = (size_t)r0 * (size_t)nb * (size_t)len;
    const size_t head_at = head_plane_offset((size_t)src->ne1 * (size_t)nb * (size_t)len) + (size_t)r0 * (size_t)nb * hl;
    imp_status st = copy(c, dev + body_at, body, (size_t)n * (size_t)len, cudaMemcpyHostToDevice, err);
    if (st == IMP_OK) st = copy(c, dev + head_at, head, (size_t)n * hl, cudaMemcpyHostToDevice, err);
    return st;
}

/* Counts w's rows under its K and the activation preparation its matmuls use (a hint for
 * the ops that feed them; see imp_cuda_act_hint). */
static void note_act(imp_cuda *c, const imp_tensor *w) {
    if (w->ne1 < 2) return; /* vectors (norm weights, biases) are not multiplied */
    const imp_type_traits *tr = imp_type_get(w->type);
    int kind = 4;
    if (w->type == IMP_TYPE_F16) kind = 3;
    else if (tr->is_quantized) kind = tr->vec_dot_type == IMP_TYPE_Q8_1 ? 1 : tr->vec_dot_type == IMP_TYPE_Q8_K ? 2 : 0;
    int i = 0;
    while (i < c->n_kact && c->kact[i].K != w->ne0) i++;
    if (i == c->n_kact) {
        if (i == (int)(sizeof c->kact / sizeof c->kact[0])) return;
        c->kact[c->n_kact++].K = w->ne0;
    }
    c->kact[i].rows[kind] += w->ne1;
}

static imp_status cuda_upload_weight(imp_backend *be, const imp_tensor *src, imp_tensor *dst, imp_error *err) {
    IMP_CUDA_WRITES(be);
    imp_cuda *c = (imp_cuda *)be;
    memset(dst, 0, sizeof *dst);
    const imp_type_traits *tr = imp_type_get(src->type);
    const size_t row = imp_row_size(src->type, src->ne0);
    if (!tr || row == 0 || src->nb1 < row) {
        return imp_error_set(err, IMP_ERR_INTERNAL, "upload of a %s tensor with bad geometry", imp_type_name(src->type));
    }
    int off, len;
    const bool split = imp_cuda_qsplit(src->type, &off, &len);
    if (!split && tr->is_quantized) {
        return imp_error_set(err, IMP_ERR_UNSUPPORTED, "the CUDA backend cannot compute with %s tensors",
                             imp_type_name(src->type));
    }
    const size_t bytes = split ? head_plane_offset((size_t)src->ne1 * (size_t)(src->ne0 / tr->block_size) * (size_t)len) +
                                     (size_t)src->ne1 * (size_t)(src->ne0 / tr->block_size) * (tr->type_size - (size_t)len)
                               : (size_t)src->ne1 * row;
    uint8_t *dev = (uint8_t *)cuda_alloc(be, bytes, err);
    if (!dev) return err ? err->status : IMP_ERR_NOMEM;
    imp_status st = IMP_OK;
    if (!split) {
        if (src->nb1 == row) {
            st = copy(c, dev, src->data, bytes, cudaMemcpyHostToDevice, err);
        } else {
            for (int64_t r = 0; r < src->ne1 && st == IMP_OK; r++) {
                st = copy(c, dev + (size_t)r * row, (const char *)src->data + (size_t)r * src->nb1, row,
                          cudaMemcpyHostToDevice, err);
            }
        }
    } else {
        const int64_t rows_per = (int64_t)(WEIGHT_CHUNK_BYTES / row) > 0 ? (int64_t)(WEIGHT_CHUNK_BYTES / row) : 1;
        uint8_t *buf = (uint8_t *)malloc((size_t)rows_per * row);
        if (!buf) st = imp_error_set(err, IMP_ERR_NOMEM, "out of memory");
        for (int64_t r = 0; r < src->ne1 && st == IMP_OK; r += rows_per) {
            st = upload_split_rows(c, src, dev, r, r + rows_per < src->ne1 ? r + rows_per : src->ne1, buf, err);
        }
        free(buf);
    }
    if (st != IMP_OK) {
        cudaFree(dev);
        return st;
    }
    *dst = *src;
    dst->data = dev;
    dst->nb1 = row; /* the logical row size; the bytes are laid out as described above */
    note_act(c, src);
    return IMP_OK;
}

static void cuda_free_weight(imp_backend *be, imp_tensor *w) {
    IMP_CUDA_WRITES(be);
    if (w->data) cuda_dealloc(be, w->data);
    memset(w, 0, sizeof *w);
}

/* ---- the step's batch -------------------------------------------------------------------------- */

/* Words of staging a step needs (see imp_cuda_step). */
static size_t step_words(const imp_batch *b, int32_t n_out) {
    int64_t n_blk = 0;
    for (int32_t i = 0; i < b->n_seqs; i++) n_blk += b->seqs[i].n_blocks;
    return (size_t)7 * (size_t)b->n_tokens + (size_t)n_out + (size_t)b->n_seqs + 1 + (size_t)n_blk;
}

/* Writes the step into the staging buffer (which must hold step_words) and points c->step's
 * device pointers at the matching places. */
static void step_stage(imp_cuda *c, const imp_batch *b, const int32_t *out_rows, int32_t n_out) {
    imp_cuda_step *s = &c->step;
    const int32_t T = b->n_tokens;
    int32_t *h = s->host;
    const size_t o_pos = (size_t)T, o_seq = 2 * (size_t)T, o_slot = 3 * (size_t)T, o_out = 4 * (size_t)T;
    const size_t o_blk_off = o_out + (size_t)n_out, o_runs = o_blk_off + (size_t)b->n_seqs + 1;
    const size_t o_blocks = o_runs + 3 * (size_t)T;
    memcpy(h, b->token, (size_t)T * sizeof(int32_t));
    memcpy(h + o_pos, b->pos, (size_t)T * sizeof(int32_t));
    memcpy(h + o_seq, b->seq, (size_t)T * sizeof(int32_t));
    memcpy(h + o_slot, b->slot, (size_t)T * sizeof(int32_t));
    if (n_out > 0) memcpy(h + o_out, out_rows, (size_t)n_out * sizeof(int32_t));
    int32_t o = 0;
    for (int32_t i = 0; i < b->n_seqs; i++) {
        h[o_blk_off + (size_t)i] = o;
        memcpy(h + o_blocks + o, b->seqs[i].blocks, (size_t)b->seqs[i].n_blocks * sizeof(int32_t));
        o += b->seqs[i].n_blocks;
    }
    h[o_blk_off + (size_t)b->n_seqs] = o;
    int32_t n_runs = 0, max_run = 0;
    for (int32_t t = 0; t < T; t++) {
        int32_t *r = h + o_runs + 3 * (size_t)(n_runs - 1);
        if (n_runs > 0 && b->seq[t] == r[2] && b->pos[t] == b->pos[t - 1] + 1 && r[1] < IMP_CUDA_RUN_MAX) {
            r[1]++;
        } else {
            r = h + o_runs + 3 * (size_t)n_runs++;
            r[0] = t;
            r[1] = 1;
            r[2] = b->seq[t];
        }
        if (r[1] > max_run) max_run = r[1];
    }
    s->b = b;
    s->n_tokens = T;
    s->n_out = n_out;
    s->n_seqs = b->n_seqs;
    s->n_runs = n_runs;
    s->max_run = max_run;
    s->token = s->dev;
    s->pos = s->dev + o_pos;
    s->seq = s->dev + o_seq;
    s->slot = s->dev + o_slot;
    s->out = s->dev + o_out;
    s->blk_off = s->dev + o_blk_off;
    s->runs = s->dev + o_runs;
    s->blocks = s->dev + o_blocks;
}

static imp_status cuda_begin_step(imp_backend *be, const imp_batch *b, const int32_t *out_rows, int32_t n_out,
                                  const int32_t **token_ids, const int32_t **out_ids, imp_error *err) {
    IMP_CUDA_WRITES(be);
    imp_cuda *c = (imp_cuda *)be;
    imp_cuda_step *s = &c->step;
    const size_t need = step_words(b, n_out);
    if (need > s->cap) {
        if (c->capturing) {
            c->capture_failed = true;
            return imp_error_set(err, IMP_ERR_DEVICE, "GPU %d: step buffers grew while recording a graph", c->device);
        }
        const size_t cap = need + need / 2 + 1024;
        cudaStreamSynchronize(c->stream);
        if (s->dev) cudaFree(s->dev);
        if (s->host) cudaFreeHost(s->host);
        s->dev = s->host = NULL;
        s->cap = 0;
        c->epoch++;
        cudaError_t e = cudaMalloc((void **)&s->dev, cap * sizeof(int32_t));
        if (e == cudaSuccess) e = cudaMallocHost((void **)&s->host, cap * sizeof(int32_t));
        if (e != cudaSuccess) {
            return imp_error_set(err, IMP_ERR_NOMEM, "GPU %d: step buffers of %zu bytes: %s", c->device,
                                 cap * sizeof(int32_t), cudaGetErrorString(e));
        }
        s->cap = cap;
    } else if (!c->capturing) {
        /* the previous step's copy from the staging buffer must be done before it is rewritten */
        cudaError_t e = cudaStreamSynchronize(c->stream);
        if (e != cudaSuccess) return imp_error_set(err, IMP_ERR_DEVICE, "GPU %d: %s", c->device, cudaGetErrorString(e));
    }
    step_stage(c, b, out_rows, n_out);
    /* the whole buffer: a recorded copy then also carries longer block tables later */
    cudaError_t e = cudaMemcpyAsync(s->dev, s->host, s->cap * sizeof(int32_t), cudaMemcpyHostToDevice, c->stream);
    if (e != cudaSuccess) return imp_error_set(err, IMP_ERR_DEVICE, "GPU %d: step copy: %s", c->device, cudaGetErrorString(e));
    *token_ids = s->token;
    *out_ids = s->out;
    return IMP_OK;
}

/* ---- CUDA graphs ------------------------------------------------------------------------------ */

static imp_cuda_graph *graph_find(imp_cuda *c, uint64_t key, bool add) {
    imp_cuda_graph *free_slot = NULL;
    for (int i = 0; i < IMP_CUDA_GRAPHS; i++) {
        if (c->graphs[i].key == key) return &c->graphs[i];
        if (!c->graphs[i].key && !free_slot) free_slot = &c->graphs[i];
    }
    if (add && free_slot) {
        memset(free_slot, 0, sizeof *free_slot);
        free_slot->key = key;
    }
    return add ? free_slot : NULL;
}

static imp_status cuda_graph_replay(imp_backend *be, uint64_t key, const imp_batch *b, const int32_t *out_rows,
                                    int32_t n_out, bool *done, imp_error *err) {
    imp_cuda *c = (imp_cuda *)be;
    *done = false;
    imp_cuda_graph *g = key ? graph_find(c, key, false) : NULL;
    if (!g || !g->exec) return IMP_OK;
    if (g->epoch != c->epoch || step_words(b, n_out) > c->step.cap) { /* buffers moved: record again */
        cudaGraphExecDestroy(g->exec);
        g->exec = NULL;
        g->seen = 1;
        return IMP_OK;
    }
    cudaError_t e = cudaStreamSynchronize(c->stream); /* the staging buffer is free */
    if (e == cudaSuccess) {
        step_stage(c, b, out_rows, n_out);
        e = cudaGraphLaunch(g->exec, c->stream);
    }
    if (e != cudaSuccess) return imp_error_set(err, IMP_ERR_DEVICE, "GPU %d: graph launch: %s", c->device, cudaGetErrorString(e));
    *done = true;
    return IMP_OK;
}

static imp_status cuda_graph_begin(imp_backend *be, uint64_t key, bool *capturing, imp_error *err) {
    imp_cuda *c = (imp_cuda *)be;
    *capturing = false;
    imp_cuda_graph *g = key ? graph_find(c, key, true) : NULL;
    if (!g || ++g->seen < 2) return IMP_OK; /* the first run sizes every buffer */
    cudaError_t e = cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return imp_error_set(err, IMP_ERR_DEVICE, "GPU %d: graph capture: %s", c->device, cudaGetErrorString(e));
    }
    c->capturing = true;
    c->capture_failed = false;
    *capturing = true;
    return IMP_OK;
}

static imp_status cuda_graph_end(imp_backend *be, uint64_t key, bool ok, bool *launched, imp_error *err) {
    imp_cuda *c = (imp_cuda *)be;
    *launched = false;
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamEndCapture(c->stream, &graph);
    c->capturing = false;
    imp_cuda_graph *g = graph_find(c, key, false);
    if (e != cudaSuccess || !ok || c->capture_failed || !graph || !g) {
        cudaGetLastError(); /* an invalidated capture leaves a sticky-free error behind */
        if (graph) cudaGraphDestroy(graph);
        if (g) g->seen = 0; /* try again later */
        return IMP_OK;
    }
    if (g->exec) cudaGraphExecDestroy(g->exec);
    g->exec = NULL;
    e = cudaGraphInstantiate(&g->exec, graph, 0);
    cudaGraphDestroy(graph);
    if (e == cudaSuccess) e = cudaGraphLaunch(g->exec, c->stream);
    if (e != cudaSuccess) {
        if (g->exec) cudaGraphExecDestroy(g->exec);
        g->exec = NULL;
        return imp_error_set(err, IMP_ERR_DEVICE, "GPU %d: graph: %s", c->device, cudaGetErrorString(e));
    }
    g->epoch = c->epoch;
    *launched = true;
    return IMP_OK;
}

static imp_status cuda_sync(imp_backend *be, imp_error *err) {
    imp_cuda *c = (imp_cuda *)be;
    cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e == cudaSuccess) e = cudaGetLastError();
    if (e != cudaSuccess) return imp_error_set(err, IMP_ERR_DEVICE, "GPU %d: %s", c->device, cudaGetErrorString(e));
    return IMP_OK;
}

static const imp_backend_ops k_cuda_ops = {
    .name = "cuda",
    .free = cuda_free,
    .alloc = cuda_alloc,
    .dealloc = cuda_dealloc,
    .upload = cuda_upload,
    .download = cuda_download,
    .upload_weight = cuda_upload_weight,
    .free_weight = cuda_free_weight,
    .begin_step = cuda_begin_step,
    .get_rows = imp_cuda_get_rows,
    .rms_norm = imp_cuda_rms_norm,
    .matmul = imp_cuda_matmul,
    .add = imp_cuda_add,
    .scale = imp_cuda_scale,
    .glu = imp_cuda_glu,
    .rope_kv_store = imp_cuda_rope_kv_store,
    .attention = imp_cuda_attention,
    .softcap = imp_cuda_softcap,
    .sync = cuda_sync,
    .graph_replay = cuda_graph_replay,
    .graph_begin = cuda_graph_begin,
    .graph_end = cuda_graph_end,
    .sample = imp_cuda_sample,
};

extern "C" imp_status imp_device_mem_info(int device, size_t *free_bytes, size_t *total_bytes, imp_error *err) {
    *free_bytes = *total_bytes = 0;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) n = 0;
    cudaGetLastError();
    if (device < 0 || device >= n) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "GPU %d does not exist (%d device%s)", device, n, n == 1 ? "" : "s");
    }
    cudaError_t e = cudaSetDevice(device);
    if (e == cudaSuccess) e = cudaMemGetInfo(free_bytes, total_bytes);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return imp_error_set(err, IMP_ERR_DEVICE, "GPU %d: %s", device, cudaGetErrorString(e));
    }
    return IMP_OK;
}

extern "C" imp_status imp_backend_cuda_create(const imp_cuda_params *p, imp_backend **out, imp_error *err) {
    *out = NULL;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        cudaGetLastError();
        return imp_error_set(err, IMP_ERR_DEVICE, "no CUDA device%s%s", e != cudaSuccess ? ": " : "",
                             e != cudaSuccess ? cudaGetErrorString(e) : "");
    }
    if (p->device < 0 || p->device >= n) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "GPU %d does not exist (%d device%s)", p->device, n,
                             n == 1 ? "" : "s");
    }
    if (p->kv_type != IMP_TYPE_F16 && p->kv_type != IMP_TYPE_F32) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "KV cache type %s: the GPU stores F16 or F32",
                             imp_type_name(p->kv_type));
    }
    imp_cuda *c = (imp_cuda *)imp_calloc(1, sizeof *c);
    if (!c) return imp_error_set(err, IMP_ERR_NOMEM, "out of memory");
    c->base.ops = &k_cuda_ops;
    c->base.kv_type = p->kv_type;
    c->base.join_weights = true;
    c->device = p->device;
    cudaDeviceProp prop;
    e = cudaSetDevice(p->device);
    if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, p->device);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        cudaGetLastError();
        free(c);
        return imp_error_set(err, IMP_ERR_DEVICE, "GPU %d: %s", p->device, cudaGetErrorString(e));
    }
    if (prop.major < 8) {
        cuda_free(&c->base);
        return imp_error_set(err, IMP_ERR_UNSUPPORTED, "GPU %d (%s) is sm_%d%d; imp needs sm_80 or newer", p->device,
                             prop.name, prop.major, prop.minor);
    }
    c->sm_count = prop.multiProcessorCount;
    c->smem_optin = prop.sharedMemPerBlockOptin;
    c->pdl = prop.major >= 9; /* griddepcontrol: sm_90 */
    c->pdl_attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    c->pdl_attr[0].val.programmaticStreamSerializationAllowed = 1;
    imp_status st = IMP_OK;
    if (cublasCreate(&c->blas) != CUBLAS_STATUS_SUCCESS || cublasSetStream(c->blas, c->stream) != CUBLAS_STATUS_SUCCESS) {
        st = imp_error_set(err, IMP_ERR_DEVICE, "GPU %d: cuBLAS initialisation failed", p->device);
    }
    /* a fixed cuBLAS workspace, so GEMMs never allocate (and can be captured in a graph) */
    if (st == IMP_OK && imp_cuda_buf_reserve(c, &c->blasws, (size_t)32 << 20) != IMP_OK) {
        st = imp_error_set(err, IMP_ERR_NOMEM, "GPU %d: cuBLAS workspace", p->device);
    }
    if (st == IMP_OK && cublasSetWorkspace(c->blas, c->blasws.p, c->blasws.size) != CUBLAS_STATUS_SUCCESS) {
        st = imp_error_set(err, IMP_ERR_DEVICE, "GPU %d: cuBLAS workspace", p->device);
    }
    if (st == IMP_OK && imp_cuda_attention_init(c) != IMP_OK) {
        st = imp_error_set(err, IMP_ERR_DEVICE, "GPU %d: attention kernels could not be configured", p->device);
    }
    if (st != IMP_OK) {
        cuda_free(&c->base);
        return st;
    }
    IMP_LOG_I("cuda: GPU %d %s, sm_%d%d, %d SMs, %.1f GiB, KV cache %s", p->device, prop.name, prop.major, prop.minor,
              c->sm_count, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), imp_type_name(p->kv_type));
    *out = &c->base;
    return IMP_OK;
}
