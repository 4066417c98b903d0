/*
 * Quantization mixes ("file types"): the per-tensor type choices behind names like Q4_K_M.
 * Given a mix, a few model facts and one tensor, imp_mix_tensor_type picks the tensor's type the
 * way llama.cpp's quantizer does (the output / tied embedding get Q6_K, attn_v and ffn_down get
 * more bits in some layers, MoE-8 models bump attention, shapes a type cannot hold fall back to
 * a compatible type). Used by imp-quantize and imp-synth so both produce the same files.
 */
#ifndef IMP_QUANT_MIX_H
#define IMP_QUANT_MIX_H

#include <stdbool.h>
#include <stdint.h>

#include "quant/quant.h"

/* llama.cpp's LLAMA_FTYPE_* ids (stored as general.file_type). */
typedef enum imp_ftype {
    IMP_FTYPE_ALL_F32 = 0,
    IMP_FTYPE_F16 = 1,
    IMP_FTYPE_Q4_0 = 2,
    IMP_FTYPE_Q4_1 = 3,
    IMP_FTYPE_Q8_0 = 7,
    IMP_FTYPE_Q5_0 = 8,
    IMP_FTYPE_Q5_1 = 9,
    IMP_FTYPE_Q2_K = 10,
    IMP_FTYPE_Q3_K_S = 11,
    IMP_FTYPE_Q3_K_M = 12,
    IMP_FTYPE_Q3_K_L = 13,
    IMP_FTYPE_Q4_K_S = 14,
    IMP_FTYPE_Q4_K_M = 15,
    IMP_FTYPE_Q5_K_S = 16,
    IMP_FTYPE_Q5_K_M = 17,
    IMP_FTYPE_Q6_K = 18,
    IMP_FTYPE_IQ4_NL = 25,
    IMP_FTYPE_IQ4_XS = 30,
    IMP_FTYPE_BF16 = 32,
} imp_ftype;

/* What the mix rules need to know about the model. */
typedef struct imp_mix_model {
    int n_layer;          /* block_count                                      */
    int n_head;           /* attention.head_count                             */
    int n_head_kv;        /* attention.head_count_kv (GQA ratio = head/kv)     */
    int n_expert;         /* expert_count, 0 for dense models                 */
    bool tied_embeddings; /* no output.weight: token_embd doubles as output   */
    bool has_imatrix;     /* an importance matrix is used                     */
} imp_mix_model;

/* Parses a mix name ("Q4_K_M", "q8_0", "F16", "Q6_K"...); false if unknown. */
bool imp_ftype_from_name(const char *name, imp_ftype *out);
const char *imp_ftype_name(imp_ftype f); /* "?" if unknown */

/* Comma-separated list of every mix name, for usage messages. Static storage. */
const char *imp_ftype_names(void);

/* The mix's base type for ordinary weight matrices. */
imp_type imp_ftype_base_type(imp_ftype f);

/* True when the mix quantizes this tensor at all: 2-D+ tensors named "*weight", except norms
 * and MoE router (ffn_gate_inp) weights. Others keep F32 (1-D) or their own type. */
bool imp_mix_tensor_quantizable(const char *name, uint32_t n_dims);

/* The type tensor `name` (n_dims, ne[0] = row length) gets under mix f. For non-quantizable
 * tensors returns F32 for 1-D tensors and src_type otherwise. */
imp_type imp_mix_tensor_type(imp_ftype f, const imp_mix_model *m, const char *name,
                             uint32_t n_dims, const int64_t *ne, uint32_t src_type);

#endif
