/*
 * The backend interface: the table of operations the forward pass (src/model/forward.c) is
 * written against. The CPU backend (cpu/) implements every op plainly and is the reference;
 * other backends implement the same table and are tested against it.
 *
 * Tensors are 2-D views: ne1 rows of ne0 elements, rows nb1 bytes apart (ne0 is contiguous).
 * Activations are F32; weights may have any computable type (quant/quant.h). A view of part of
 * a tensor (phi3's fused QKV output, one head's rows) is a tensor with an offset data pointer
 * and the parent's nb1. Tensor data lives where the backend that made it keeps memory; ops may
 * run asynchronously until sync().
 *
 * Dimension letters used in comments: T tokens in the batch, E embedding width, H query heads,
 * Hkv key/value heads, D head dim, F FFN width, V vocabulary, S KV slots in the pool.
 */
#ifndef IMP_BACKEND_BACKEND_H
#define IMP_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/sampling.h"
#include "base/status.h"
#include "quant/quant.h"

typedef struct imp_tensor {
    imp_type type;
    int64_t ne0; /* elements per row (contiguous) */
    int64_t ne1; /* rows                          */
    size_t nb1;  /* bytes from one row to the next */
    void *data;  /* backend memory                */
} imp_tensor;

/* A tensor of ne1 contiguous rows of ne0 elements at data. */
static inline imp_tensor imp_tensor_make(imp_type type, int64_t ne0, int64_t ne1, void *data) {
    imp_tensor t = {.type = type, .ne0 = ne0, .ne1 = ne1, .nb1 = imp_row_size(type, ne0), .data = data};
    return t;
}

/* Rows [r0, r0 + n) of t. */
static inline imp_tensor imp_tensor_rows(const imp_tensor *t, int64_t r0, int64_t n) {
    imp_tensor v = *t;
    v.ne1 = n;
    v.data = (char *)t->data + (size_t)r0 * t->nb1;
    return v;
}

/* Columns [c0, c0 + n) of every row of an F32 tensor (a strided view). */
static inline imp_tensor imp_tensor_cols(const imp_tensor *t, int64_t c0, int64_t n) {
    imp_tensor v = *t;
    v.ne0 = n;
    v.data = (char *)t->data + (size_t)c0 * sizeof(float);
    return v;
}

/* Whether b is a valid addend of a matmul writing y (backend_ops.matmul): NULL; or F32 rows of
 * y's width, as many as y has or one; and either y itself (same rows, same stride) or memory
 * apart from y's (an addend partly overlapping y would be read after being written). */
static inline bool imp_matmul_addend_ok(const imp_tensor *b, const imp_tensor *y) {
    if (!b) return true;
    if (b->type != IMP_TYPE_F32 || b->ne0 != y->ne0 || (b->ne1 != y->ne1 && b->ne1 != 1)) return false;
    if (b->data == y->data) return b->nb1 == y->nb1 && b->ne1 == y->ne1;
    const char *b0 = (const char *)b->data, *y0 = (const char *)y->data;
    const char *b1 = b0 + (size_t)(b->ne1 - 1) * b->nb1 + (size_t)b->ne0 * sizeof(float);
    const char *y1 = y0 + (size_t)(y->ne1 - 1) * y->nb1 + (size_t)y->ne0 * sizeof(float);
    return b1 <= y0 || y1 <= b0;
}

typedef enum imp_rope_style {
    IMP_ROPE_NORM = 0, /* rotate adjacent pairs (x[2i], x[2i+1]): llama                     */
    IMP_ROPE_NEOX = 1, /* rotate halves (x[i], x[i + n_dims/2]): qwen2/3, gemma3, phi3      */
} imp_rope_style;

/* Rotary embedding of one attention layer. theta_i = pos * base^(-2i/n_dims) / factor_i, then
 * linear scaling (freq_scale) and YaRN's ramp between interpolation and extrapolation. */
typedef struct imp_rope {
    imp_rope_style style;
    int n_dims;               /* rotated dims per head (<= D); the rest pass through        */
    float freq_base;
    float freq_scale;         /* 1 / linear factor; 1 = none                                */
    const imp_tensor *freq_factors; /* F32 [n_dims/2] divisors (llama3 rope_freqs) or NULL  */
    float ext_factor;         /* YaRN extrapolation mix; 0 = off                            */
    float attn_factor;        /* multiplies the magnitude (YaRN mscale base), usually 1      */
    float beta_fast, beta_slow; /* YaRN ramp bounds, in rotations                            */
    int n_ctx_orig;           /* training context for YaRN's correction dims                 */
} imp_rope;

/* cs[2i], cs[2i+1] = cos, sin of pair i's angle at pos (times YaRN's magnitude scale), for
 * i < n_dims/2. freq_factors: rope->freq_factors' data on the host, or NULL. */
void imp_rope_cos_sin(const imp_rope *rope, const float *freq_factors, int32_t pos, float *cs);
/* YaRN's correction range [*low, *high] (in pairs) and magnitude scale; 0, 0, attn_factor when
 * ext_factor is 0. */
void imp_rope_yarn_corr(const imp_rope *rope, float *low, float *high, float *mscale);

/* The KV pool's storage: per layer, S = n_blocks * block_size slots of Hkv*D values for K and
 * for V. Which slots a sequence owns is the engine's bookkeeping (engine/kv_cache.h). */
typedef struct imp_kv_store {
    int n_layer;
    int block_size;       /* slots per block                                 */
    int n_blocks;
    int64_t n_embd_kv;    /* Hkv * D per slot                                */
    imp_type type;        /* storage type: the backend's kv_type (CPU: F32)  */
    imp_tensor *k, *v;    /* [n_layer], each [S, Hkv*D]                      */
} imp_kv_store;

/* One sequence in a batch: its block table (logical block i of the sequence lives in physical
 * block blocks[i] of the pool). */
typedef struct imp_batch_seq {
    const int32_t *blocks;
    int32_t n_blocks;
} imp_batch_seq;

/* The tokens of one forward step, from one or more sequences. Token i of sequence seq[i] sits at
 * position pos[i]; its K/V go to pool slot slot[i]. Attention for token i sees the positions
 * 0..pos[i] of its sequence (all of which are in the pool once this step's K/V are stored). */
typedef struct imp_batch {
    int32_t n_tokens;
    const int32_t *token;      /* [T] */
    const int32_t *pos;        /* [T] */
    const int32_t *seq;        /* [T] index into seqs */
    const int32_t *slot;       /* [T] */
    int32_t n_seqs;
    const imp_batch_seq *seqs; /* [n_seqs] */
} imp_batch;

typedef struct imp_attn_params {
    int n_head, n_head_kv, head_dim;
    float scale;   /* applied to q.k                                               */
    int window;    /* 0: all earlier positions; else only pos_q - pos_k < window     */
    float softcap; /* 0: off; else scores become softcap * tanh(score / softcap)     */
} imp_attn_params;

typedef enum imp_act { IMP_ACT_SILU = 0, IMP_ACT_GELU_TANH = 1 } imp_act;

/* Per-head RMSNorm of q and k before RoPE (qwen3, gemma3): every head of q normalized with the
 * weights q (F32 [D]) and every head of k with k, exactly as the rms_norm op would. */
typedef struct imp_qk_norm {
    const imp_tensor *q, *k;
    float eps;
    bool one_plus_w;
} imp_qk_norm;

typedef struct imp_backend imp_backend;

typedef struct imp_backend_ops {
    const char *name;
    void (*free)(imp_backend *be);
    /* Memory. alloc returns zeroed memory of the backend (NULL + message on failure). */
    void *(*alloc)(imp_backend *be, size_t bytes, imp_error *err);
    void (*dealloc)(imp_backend *be, void *p);
    imp_status (*upload)(imp_backend *be, void *dst, const void *host_src, size_t bytes, imp_error *err);
    imp_status (*download)(imp_backend *be, void *host_dst, const void *src, size_t bytes, imp_error *err);
    /* Weight from host memory (a GGUF mapping). A backend that can compute on host memory may
     * point dst at src without copying; another may repack. dst->type may differ from src's
     * only if the backend says so in its documentation. */
    imp_status (*upload_weight)(imp_backend *be, const imp_tensor *host_src, imp_tensor *dst, imp_error *err);
    void (*free_weight)(imp_backend *be, imp_tensor *w);

    /* Makes a step's batch and its output rows visible to the backend before the ops that use
     * them (the CUDA backend copies the whole step to device memory in one transfer). Sets
     * *token_ids and *out_ids to the backend's copies of b->token [T] and out_rows [n_out], for
     * get_rows. rope_kv_store and attention must be given this b until the next begin_step. */
    imp_status (*begin_step)(imp_backend *be, const imp_batch *b, const int32_t *out_rows, int32_t n_out,
                             const int32_t **token_ids, const int32_t **out_ids, imp_error *err);
    /* y[i] = row ids[i] of w, dequantized to F32. w [V, E] any type; y [n, E]. ids [n] in the
     * backend's memory (from begin_step, or uploaded). */
    imp_status (*get_rows)(imp_backend *be, const imp_tensor *w, const int32_t *ids, int n, imp_tensor *y);
    /* y = x / rms(x) * (one_plus_w ? 1 + w : w), row by row. x, y [R, C]; w F32 [G] with C a
     * multiple of G: each G-wide segment of a row is normalized on its own (G = C: the whole
     * row; G = head dim: per-head q/k norms, x a view of a wider tensor or not). */
    imp_status (*rms_norm)(imp_backend *be, const imp_tensor *x, const imp_tensor *w, float eps,
                           bool one_plus_w, imp_tensor *y);
    /* y = x w^T + b: x [M, K] F32, w [N, K] any type, y [M, N] F32. b (F32) is NULL (no
     * addend), [M, N] (the residual stream: b may be y itself, y += x w^T) or one row [1, N]
     * added to every row (a bias). The product is rounded to F32 before b is added, so the
     * result equals a matmul followed by add, bit for bit on the CPU. */
    imp_status (*matmul)(imp_backend *be, const imp_tensor *x, const imp_tensor *w, const imp_tensor *b,
                         imp_tensor *y);
    /* y = a + b; b has a's shape or is one row broadcast to every row of a (a bias). */
    imp_status (*add)(imp_backend *be, const imp_tensor *a, const imp_tensor *b, imp_tensor *y);
    /* y = s * x. */
    imp_status (*scale)(imp_backend *be, const imp_tensor *x, float s, imp_tensor *y);
    /* y = act(gate) * up; all [T, F] (gate/up may be strided views). */
    imp_status (*glu)(imp_backend *be, const imp_tensor *gate, const imp_tensor *up, imp_act act, imp_tensor *y);
    /* Normalizes q's and k's heads first when norm is not NULL; rotates q [T, H*D] and
     * k [T, Hkv*D] in place by each token's position, then stores k and v [T, Hkv*D] into the
     * pool slots of the batch for this layer. */
    imp_status (*rope_kv_store)(imp_backend *be, const imp_rope *rope, const imp_attn_params *ap,
                                const imp_qk_norm *norm, imp_tensor *q, imp_tensor *k, const imp_tensor *v,
                                const imp_batch *batch, imp_kv_store *kv, int layer);
    /* out [T, H*D] = softmax(scale * q k^T (masked, soft-capped)) v over each token's visible
     * positions in the pool; grouped-query: head h reads kv head h / (H / Hkv). */
    imp_status (*attention)(imp_backend *be, const imp_tensor *q, const imp_kv_store *kv, int layer,
                            const imp_batch *batch, const imp_attn_params *ap, imp_tensor *out);
    /* x = cap * tanh(x / cap), in place (final logit soft-capping). */
    imp_status (*softcap)(imp_backend *be, imp_tensor *x, float cap);
    imp_status (*sync)(imp_backend *be, imp_error *err);

    /* Optional (NULL on backends without graphs): a step recorded once and replayed. The
     * caller gives a key that fixes every launch parameter of the step (token, output and
     * sequence counts), and the step's batch must keep its device layout (decode: one token
     * per sequence).
     *   graph_replay: if a graph for key is ready, stages b / out_rows for it and launches it
     *                 (*done = true); the caller then skips the forward.
     *   graph_begin:  counts the key; from its second sighting starts recording
     *                 (*capturing = true): the ops the caller issues next are recorded, not run.
     *   graph_end:    stops recording; when it succeeded (ok and nothing illegal was issued)
     *                 instantiates and launches the graph (*launched = true); otherwise the
     *                 caller must run the step again without a graph. */
    imp_status (*graph_replay)(imp_backend *be, uint64_t key, const imp_batch *b, const int32_t *out_rows,
                               int32_t n_out, bool *done, imp_error *err);
    imp_status (*graph_begin)(imp_backend *be, uint64_t key, bool *capturing, imp_error *err);
    imp_status (*graph_end)(imp_backend *be, uint64_t key, bool ok, bool *launched, imp_error *err);

    /* Optional (NULL on the CPU: the engine downloads the logits and the host sampler runs).
     * tokens[i] (host memory) = the token backend/sampling.h's chain picks from row i of
     * logits [n, V] (F32, backend memory) with params p[i] (host memory, n = logits->ne1), or
     * -1 when the row has no logit above -inf. The same token imp_sampler_sample_r picks for
     * the same logits and r. Runs after the ops queued before it; synchronous: returns once
     * tokens are written. IMP_ERR_INVALID_ARG on a bad tensor or r outside [0, 1). */
    imp_status (*sample)(imp_backend *be, const imp_tensor *logits, const imp_sample_params *p,
                         int32_t *tokens, imp_error *err);
} imp_backend_ops;

struct imp_backend {
    const imp_backend_ops *ops;
    imp_type kv_type;  /* the KV pool's storage type the backend computes with (F32, F16) */
    bool join_weights; /* weights read by one input are better joined into one matmul (q|k|v,
                        * gate|up) than computed on the file's mapping in place             */
    bool host_memory;  /* alloc returns ordinary host memory (the CPU backend): another
                        * backend may upload from it or download into it directly          */
};

/* The CPU backend with n_threads workers (>= 1). */
imp_status imp_backend_cpu_create(int n_threads, imp_backend **out, imp_error *err);

static inline void imp_backend_free(imp_backend *be) {
    if (be) be->ops->free(be);
}

#endif
