/*
 * A loaded model: the GGUF mapping, its vocabulary, the architecture row, validated
 * hyper-parameters and the weights bound by name. Read-only after loading, so one model may
 * serve several engines (and threads) at once. Weights here are host tensors pointing into
 * the mapping; an engine uploads them to its backend (imp_weights_upload).
 */
#ifndef IMP_MODEL_MODEL_H
#define IMP_MODEL_MODEL_H

#include "backend/backend.h"
#include "gguf/gguf.h"
#include "model/arch.h"
#include "tokenizer/vocab.h"

#define IMP_MAX_LAYERS 512

typedef enum imp_rope_scaling { IMP_ROPE_SCALING_NONE, IMP_ROPE_SCALING_LINEAR, IMP_ROPE_SCALING_YARN } imp_rope_scaling;

typedef struct imp_hparams {
    int n_layer;
    int n_embd;         /* E                                                   */
    int n_ff;           /* F                                                   */
    int n_head;         /* H                                                   */
    int n_head_kv;      /* Hkv                                                 */
    int head_dim;       /* D (key_length; value_length must equal it)          */
    int n_vocab;        /* V (rows of token_embd)                              */
    int n_ctx_train;
    float rms_eps;
    int rope_dims;      /* rotated dims per head                               */
    float rope_base;
    float rope_base_swa; /* sliding-window layers                              */
    imp_rope_scaling rope_scaling;
    float rope_factor;  /* linear / YaRN factor (1 = none)                     */
    int rope_ctx_orig;  /* YaRN: original training context                     */
    float yarn_ext_factor, yarn_attn_factor, yarn_beta_fast, yarn_beta_slow;
    int sliding_window; /* 0: none                                             */
    float attn_scale;   /* q.k scale                                           */
    float attn_softcap; /* 0: none                                             */
    float final_softcap; /* 0: none                                            */
} imp_hparams;

/* Every tensor of one layer; a tensor whose data is NULL is absent. Shapes as [rows, cols]. */
typedef struct imp_layer_weights {
    bool swa;                   /* sliding-window layer                              */
    imp_tensor attn_norm;       /* [E]                                               */
    imp_tensor wq, wk, wv;      /* [H*D, E], [Hkv*D, E], [Hkv*D, E]                   */
    imp_tensor wqkv;            /* [H*D + 2*Hkv*D, E] instead of wq/wk/wv (phi3)      */
    imp_tensor bq, bk, bv, bo;  /* biases (qwen2): [H*D], [Hkv*D], [Hkv*D], [E]        */
    imp_tensor bqkv;            /* [H*D + 2*Hkv*D]: bq | bk | bv joined on upload     */
    imp_tensor q_norm, k_norm;  /* [D]                                               */
    imp_tensor wo;              /* [E, H*D]                                          */
    imp_tensor post_attn_norm;  /* [E]                                               */
    imp_tensor ffn_norm;        /* [E]                                               */
    imp_tensor gate, up;        /* [F, E] each, or up [2F, E] = [gate | up] with no gate */
    imp_tensor down;            /* [E, F]                                            */
    imp_tensor post_ffw_norm;   /* [E]                                               */
} imp_layer_weights;

typedef struct imp_weights {
    imp_tensor tok_embd;    /* [V, E]                                                 */
    imp_tensor output_norm; /* [E]                                                    */
    imp_tensor output;      /* [V, E]; the token_embd tensor when tied                 */
    imp_tensor rope_freqs;  /* [rope_dims/2] llama3 frequency divisors, or absent       */
    imp_layer_weights *layers; /* [n_layer]                                            */
    int n_layer;
    bool tied;
} imp_weights;

typedef struct imp_model {
    imp_gguf *gguf;
    imp_vocab *vocab;
    const imp_arch *arch;
    imp_hparams hp;
    imp_weights w;      /* host views into the mapping */
    char name[128];     /* general.name or the file name */
    uint64_t n_params;
    uint64_t weight_bytes;
} imp_model;

/* Progress callback for loading: done/total in bytes of tensor data checked. */
typedef void (*imp_load_progress_fn)(void *user, uint64_t done, uint64_t total);

/* Opens and validates a GGUF model: architecture row, hyper-parameters (bounds and
 * consistency), every tensor the row needs with its exact shape and a computable type, and the
 * vocabulary. Touches every weight page once (reporting progress) so the first forward pass does
 * not page-fault its way through the file. On failure *out is NULL and err names the key or
 * tensor. */
imp_status imp_model_open(const char *path, imp_load_progress_fn progress, void *user, imp_model **out,
                          imp_error *err);
void imp_model_close(imp_model *m);

/* Bytes of every tensor of w (a tied output counted once). */
size_t imp_weights_bytes(const imp_weights *w);
/* Bytes of the part of w that imp_weights_upload_range(l0, l1, io) uploads: layers [l0, l1),
 * rope_freqs, and with io token_embd, output_norm and output. */
size_t imp_weights_bytes_range(const imp_weights *w, int l0, int l1, bool io);
/* Copies the host weights to a backend (dst gets the backend's tensors). */
imp_status imp_weights_upload(imp_backend *be, const imp_weights *src, imp_weights *dst, imp_error *err);
/* The same for part of a model split between backends by layers: dst gets layers [l0, l1)
 * (0 <= l0 <= l1 <= n_layer; the others stay absent), rope_freqs (every layer's RoPE reads
 * it), and only when io the input and output tensors (token_embd, output_norm, output). */
imp_status imp_weights_upload_range(imp_backend *be, const imp_weights *src, int l0, int l1, bool io,
                                    imp_weights *dst, imp_error *err);
void imp_weights_free(imp_backend *be, imp_weights *w);

/* Reads and validates the hyper-parameters of arch from g (exposed for tests). */
imp_status imp_hparams_load(const imp_gguf *g, const imp_arch *arch, imp_hparams *hp, imp_error *err);

#endif
