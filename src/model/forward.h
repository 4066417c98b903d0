/*
 * THE forward pass: embedding -> layers -> final norm -> logits, written once against the
 * backend op table for every architecture row. The engine (engine/engine.c) builds the batch
 * and owns the workspace; this file only sequences ops.
 */
#ifndef IMP_MODEL_FORWARD_H
#define IMP_MODEL_FORWARD_H

#include "backend/backend.h"
#include "model/model.h"

/* Activations of one step, for up to max_tokens tokens and max_out logit rows. */
typedef struct imp_forward_ws {
    int32_t max_tokens, max_out;
    imp_tensor x;      /* [T, E] residual stream                      */
    imp_tensor xn;     /* [T, E] normed input of a block              */
    imp_tensor qkv;    /* [T, H*D + 2*Hkv*D]: q | k | v               */
    imp_tensor att;    /* [T, H*D] attention output                   */
    imp_tensor o;      /* [T, E] block output before the residual add */
    imp_tensor gu;     /* [T, 2F]: gate | up                          */
    imp_tensor h;      /* [T, F] activated FFN hidden                 */
    imp_tensor xo;     /* [n_out, E] rows that produce logits         */
    imp_tensor logits; /* [n_out, V]                                  */
} imp_forward_ws;

/* A workspace for up to max_tokens tokens and max_out logit rows (max_out may be 0 on a
 * backend that never computes the logits: then xo and logits are absent). */
imp_status imp_forward_ws_alloc(imp_backend *be, const imp_hparams *hp, int32_t max_tokens, int32_t max_out,
                                imp_forward_ws *ws, imp_error *err);
void imp_forward_ws_free(imp_backend *be, imp_forward_ws *ws);

/* One backend's share of the model: it computes layers [l0, l1) with the weights w and the KV
 * storage kv (both hold those layers at least) in the workspace ws. A model runs on one part
 * (every layer) or is split by layers over several (--gpu-layers: the first layers on a GPU,
 * the rest on the CPU). */
typedef struct imp_forward_part {
    imp_backend *be;
    const imp_weights *w;
    imp_kv_store *kv;
    imp_forward_ws *ws;
    int l0, l1;
} imp_forward_part;

/* Runs batch b through the model, storing its K/V in the parts' kv, and writes logits for the
 * batch rows out_rows[0..n_out) into rows 0..n_out of the last part's ws->logits (on its
 * backend; sync every part's backend before reading).
 *
 * parts[0..n_parts) cover the layers in order (parts[0].l0 = 0, each l0 the previous l1, the
 * last l1 = n_layer). The last part also computes the token embedding and the logits, so its
 * weights carry token_embd, output_norm and output; with several parts that is the host
 * backend, which reads them from the file's mapping. Between parts the residual stream x [T, E]
 * (the only activation live across a layer boundary) is copied from one backend's workspace
 * to the next one's; one of the two must have host memory (imp_backend.host_memory). */
imp_status imp_forward(const imp_model *m, const imp_forward_part *parts, int n_parts, const imp_batch *b,
                       const int32_t *out_rows, int32_t n_out, imp_error *err);

#endif
