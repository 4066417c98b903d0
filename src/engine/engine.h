/*
 * The engine: a backend (or a GPU and the CPU sharing the model's layers: --gpu-layers), the
 * model's weights on it, the paged KV pool and the forward workspace. Sequences (imp_kv_seq) are owned by callers; one forward call may carry tokens of
 * several sequences (a batch), which is how the server will batch requests.
 *
 * Thread safety: one thread at a time per engine.
 */
#ifndef IMP_ENGINE_ENGINE_H
#define IMP_ENGINE_ENGINE_H

#include "backend/backend.h"
#include "engine/kv_cache.h"
#include "model/forward.h"
#include "model/model.h"

typedef struct imp_engine_params {
    int n_threads;   /* CPU threads; 0 = every core                                   */
    int max_seq_len; /* tokens one sequence may hold; 0 = min(training context, 4096) */
    int n_seq_max;   /* sequences of max_seq_len the KV pool holds at once; default 1 */
    int max_batch;   /* tokens per forward step; longer inputs run in steps; 512       */
    int block_size;  /* KV slots per block, a power of two in 1..1024; 16              */
    int device;      /* IMP_DEVICE_AUTO (default: GPU 0 when there is one, else the CPU),
                        IMP_DEVICE_CPU, or a CUDA device index (imp.h)                 */
    imp_type kv_type; /* KV storage on the GPU: IMP_TYPE_F16 (default) or F32; the CPU
                        stores F32                                                      */
    bool cuda_graphs; /* record decode steps as CUDA graphs and replay them (default on;
                        only when every layer is on the GPU)                           */
    int gpu_layers;   /* on a GPU device: layers [0, gpu_layers) on the GPU, the rest, the
                        embedding and the output layer on the CPU backend (its threads and
                        F32 KV storage); IMP_GPU_LAYERS_ALL (-1, default) or >= n_layer:
                        the whole model on the GPU; 0: the CPU alone. Ignored on the CPU.
                        Below -1 is an error (IMP_ERR_INVALID_ARG).                    */
    bool split_on_cpu; /* tests only: on the CPU device, split by gpu_layers all the same,
                        with a second CPU backend in the GPU's place, so the split's
                        bookkeeping runs (bit-exact) on a machine without a GPU        */
} imp_engine_params;


imp_engine_params imp_engine_params_default(void);

typedef struct imp_engine imp_engine;

/* One sequence's part of a forward call: n_tokens tokens appended at its current end; logits
 * are produced for tokens first_logit..n_tokens-1 (n_tokens - 1: only the last; n_tokens:
 * none). */
typedef struct imp_engine_input {
    imp_kv_seq *seq;
    const int32_t *tokens;
    int32_t n_tokens;
    int32_t first_logit;
} imp_engine_input;

imp_status imp_engine_create(const imp_model *m, const imp_engine_params *p, imp_engine **out, imp_error *err);

/* The VRAM plan imp_engine_create checks before it allocates anything on a GPU, here against
 * free_bytes of total_bytes instead of the device's memory (exposed for tests; p->max_seq_len
 * must be set). IMP_OK when the GPU's share under p fits (the layers p->gpu_layers puts there,
 * their KV pool, a workspace, a reserve); IMP_ERR_NOMEM otherwise, with the numbers and what
 * would fit: "--max-seq-len X" at these layers and/or "--gpu-layers N" (the most layers) at
 * this max_seq_len. */
imp_status imp_engine_vram_plan(const imp_model *m, const imp_engine_params *p, size_t free_bytes, size_t total_bytes,
                                imp_error *err);
void imp_engine_free(imp_engine *e);

const imp_model *imp_engine_model(const imp_engine *e);
int imp_engine_max_seq_len(const imp_engine *e);
int imp_engine_threads(const imp_engine *e);
/* The backend the engine runs on ("cpu", "cuda") and its CUDA device index (-1 on the CPU). */
const char *imp_engine_backend_name(const imp_engine *e);
int imp_engine_device(const imp_engine *e);
/* Layers computed on the GPU: n_layer when the whole model is there, fewer when it is split
 * with the CPU (imp_engine_backend_name is then "cuda+cpu"), 0 on the CPU. */
int imp_engine_gpu_layers(const imp_engine *e);

/* Runs the inputs (tokens checked against the vocabulary, lengths against max_seq_len and the
 * pool) and appends them to their sequences. The logits asked for are then available, in input
 * order, through imp_engine_logits(e, 0..imp_engine_n_logits(e)-1) and imp_engine_sample until
 * the next call. On an error the sequences keep the positions that were fully processed. */
imp_status imp_engine_forward(imp_engine *e, const imp_engine_input *in, int n_in, imp_error *err);

/* Waits for the work the last forward call left queued: a call whose logit rows all come from
 * its last step returns without waiting for that step (on a model in one part), so that
 * imp_engine_sample's launch follows it on the device; the sample op, imp_engine_logits and
 * the next forward call wait for it themselves. A device error of the step shows here (or in
 * whichever of those comes first). */
imp_status imp_engine_sync(imp_engine *e, imp_error *err);

int32_t imp_engine_n_logits(const imp_engine *e);
/* Row k of the last call's logits: n_vocab floats, owned by the engine, valid until the next
 * forward call; NULL when k is not a row of the last call, or when the rows could not be
 * downloaded (a device error, logged). Logits that stayed in backend memory are downloaded by
 * the first call (all rows at once). */
const float *imp_engine_logits(imp_engine *e, int32_t k);

/* True when imp_engine_sample can run on the last call's logits: the backend has a sample op
 * and every row is still in its memory (the call's logit rows came from one step). */
bool imp_engine_can_sample(const imp_engine *e);

/* tokens[i] = the backend's sample op's token (backend.h) for row k0 + i of the last call's
 * logits with p[i], for i < n; -1 for a row with no logit above -inf. The logits are not
 * downloaded. IMP_ERR_UNSUPPORTED when !imp_engine_can_sample (then sample on the host from
 * imp_engine_logits), IMP_ERR_INVALID_ARG for rows outside the last call's. */
imp_status imp_engine_sample(imp_engine *e, int32_t k0, int32_t n, const imp_sample_params *p,
                             int32_t *tokens, imp_error *err);

/* Drops positions >= n_pos of s (n_pos = 0 empties it, keeping the table). */
void imp_engine_seq_truncate(imp_engine *e, imp_kv_seq *s, int32_t n_pos);
/* Returns s's blocks to the pool; s is empty and reusable afterwards. */
void imp_engine_seq_release(imp_engine *e, imp_kv_seq *s);

#endif
