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

imp_status imp_forward_ws_alloc(imp_backend *be, const imp_hparams *hp, int32_t max_tokens, int32_t max_out,
                                imp_forward_ws *ws, imp_error *err);
void imp_forward_ws_free(imp_backend *be, imp_forward_ws *ws);

/* Runs batch b through the model, storing its K/V in kv, and writes logits for the batch rows
 * out_rows[0..n_out) into ws->logits rows 0..n_out (on the backend; sync before reading). */
imp_status imp_forward(imp_backend *be, const imp_model *m, const imp_weights *w, imp_kv_store *kv,
                       const imp_batch *b, const int32_t *out_rows, int32_t n_out, imp_forward_ws *ws,
                       imp_error *err);

#endif
