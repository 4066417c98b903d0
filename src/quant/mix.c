/*
 * Quantization mixes: llama.cpp's per-tensor type rules (llama-quant.cpp) for the mixes imp
 * produces, written as a small decision per tensor role. Layer-dependent rules use the layer
 * index parsed from the tensor name ("blk.N."), which is what llama.cpp's counters amount to
 * for the tensor orders real files use.
 */
#include "quant/mix.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct {
    imp_ftype ftype;
    const char *name;
    imp_type base;
} imp_ftype_row;

static const imp_ftype_row k_ftypes[] = {
    {IMP_FTYPE_ALL_F32, "F32", IMP_TYPE_F32},     {IMP_FTYPE_F16, "F16", IMP_TYPE_F16},
    {IMP_FTYPE_BF16, "BF16", IMP_TYPE_BF16},      {IMP_FTYPE_Q4_0, "Q4_0", IMP_TYPE_Q4_0},
    {IMP_FTYPE_Q4_1, "Q4_1", IMP_TYPE_Q4_1},      {IMP_FTYPE_Q5_0, "Q5_0", IMP_TYPE_Q5_0},
    {IMP_FTYPE_Q5_1, "Q5_1", IMP_TYPE_Q5_1},      {IMP_FTYPE_Q8_0, "Q8_0", IMP_TYPE_Q8_0},
    {IMP_FTYPE_Q2_K, "Q2_K", IMP_TYPE_Q2_K},      {IMP_FTYPE_Q3_K_S, "Q3_K_S", IMP_TYPE_Q3_K},
    {IMP_FTYPE_Q3_K_M, "Q3_K_M", IMP_TYPE_Q3_K},  {IMP_FTYPE_Q3_K_L, "Q3_K_L", IMP_TYPE_Q3_K},
    {IMP_FTYPE_Q4_K_S, "Q4_K_S", IMP_TYPE_Q4_K},  {IMP_FTYPE_Q4_K_M, "Q4_K_M", IMP_TYPE_Q4_K},
    {IMP_FTYPE_Q5_K_S, "Q5_K_S", IMP_TYPE_Q5_K},  {IMP_FTYPE_Q5_K_M, "Q5_K_M", IMP_TYPE_Q5_K},
    {IMP_FTYPE_Q6_K, "Q6_K", IMP_TYPE_Q6_K},      {IMP_FTYPE_IQ4_NL, "IQ4_NL", IMP_TYPE_IQ4_NL},
    {IMP_FTYPE_IQ4_XS, "IQ4_XS", IMP_TYPE_IQ4_XS},
};

static const imp_ftype_row *imp_ftype_row_get(imp_ftype f) {
    for (size_t i = 0; i < sizeof k_ftypes / sizeof k_ftypes[0]; i++) {
        if (k_ftypes[i].ftype == f) return &k_ftypes[i];
    }
    return NULL;
}

bool imp_ftype_from_name(const char *name, imp_ftype *out) {
    if (!name) return false;
    for (size_t i = 0; i < sizeof k_ftypes / sizeof k_ftypes[0]; i++) {
        if (strcasecmp(k_ftypes[i].name, name) == 0) {
            *out = k_ftypes[i].ftype;
            return true;
        }
    }
    /* plain K type names mean their usual mix */
    if (strcasecmp(name, "Q4_K") == 0) return (*out = IMP_FTYPE_Q4_K_M), true;
    if (strcasecmp(name, "Q5_K") == 0) return (*out = IMP_FTYPE_Q5_K_M), true;
    if (strcasecmp(name, "Q3_K") == 0) return (*out = IMP_FTYPE_Q3_K_M), true;
    return false;
}

const char *imp_ftype_name(imp_ftype f) {
    const imp_ftype_row *r = imp_ftype_row_get(f);
    return r ? r->name : "?";
}

const char *imp_ftype_names(void) {
    return "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, "
           "Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, IQ4_NL, IQ4_XS";
}

imp_type imp_ftype_base_type(imp_ftype f) {
    const imp_ftype_row *r = imp_ftype_row_get(f);
    return r ? r->base : IMP_TYPE_F32;
}

static bool imp_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

bool imp_mix_tensor_quantizable(const char *name, uint32_t n_dims) {
    if (n_dims < 2) return false;
    if (!imp_ends_with(name, "weight")) return false;
    if (strstr(name, "_norm.weight")) return false;
    if (strstr(name, "ffn_gate_inp.weight")) return false;
    return true;
}

typedef enum {
    ROLE_OTHER,
    ROLE_TOKEN_EMBD,
    ROLE_OUTPUT,
    ROLE_ATTN_V, /* attn_v and fused attn_qkv: llama.cpp treats both as v-like */
    ROLE_ATTN_K,
    ROLE_ATTN_OUTPUT,
    ROLE_FFN_DOWN,
} imp_tensor_role;

static imp_tensor_role imp_tensor_role_of(const char *name) {
    if (strcmp(name, "output.weight") == 0) return ROLE_OUTPUT;
    if (strcmp(name, "token_embd.weight") == 0) return ROLE_TOKEN_EMBD;
    if (strstr(name, "attn_qkv.weight") || strstr(name, "attn_v.weight")) return ROLE_ATTN_V;
    if (strstr(name, "attn_k.weight")) return ROLE_ATTN_K;
    if (strstr(name, "attn_output.weight")) return ROLE_ATTN_OUTPUT;
    if (strstr(name, "ffn_down")) return ROLE_FFN_DOWN;
    return ROLE_OTHER;
}

/* llama.cpp's "use more bits" layers: the first and last eighth, and every third between. */
static bool imp_use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* Shapes a block size does not divide fall back to a 32-block type, then to F16. */
static imp_type imp_mix_fallback(imp_type t, int64_t ncols) {
    const imp_type_traits *tr = imp_type_get(t);
    if (!tr || ncols % tr->block_size == 0) return t;
    imp_type f;
    switch (t) {
    case IMP_TYPE_IQ4_XS: f = IMP_TYPE_IQ4_NL; break;
    case IMP_TYPE_Q2_K:
    case IMP_TYPE_Q3_K: f = IMP_TYPE_Q4_0; break;
    case IMP_TYPE_Q4_K: f = IMP_TYPE_Q5_0; break;
    case IMP_TYPE_Q5_K: f = IMP_TYPE_Q5_1; break;
    case IMP_TYPE_Q6_K: f = IMP_TYPE_Q8_0; break;
    default: f = IMP_TYPE_F16; break;
    }
    const imp_type_traits *ftr = imp_type_get(f);
    if (ncols % ftr->block_size != 0) f = IMP_TYPE_F16;
    return f;
}

static imp_type imp_mix_role_type(imp_ftype f, const imp_mix_model *m, imp_tensor_role role,
                                  int layer, int64_t ncols, imp_type t) {
    const int n = m->n_layer > 0 ? m->n_layer : 1;
    const int gqa = m->n_head_kv > 0 ? m->n_head / m->n_head_kv : 1;
    const bool moe8 = m->n_expert == 8;

    if (role == ROLE_OUTPUT || (role == ROLE_TOKEN_EMBD && m->tied_embeddings)) {
        const imp_type_traits *tr = imp_type_get(t);
        if (ncols % tr->block_size != 0) return IMP_TYPE_Q8_0;
        return t == IMP_TYPE_Q8_0 ? t : IMP_TYPE_Q6_K;
    }
    switch (role) {
    case ROLE_ATTN_V:
        if (f == IMP_FTYPE_Q2_K) t = gqa >= 4 ? IMP_TYPE_Q4_K : IMP_TYPE_Q3_K;
        else if (f == IMP_FTYPE_Q3_K_M) t = layer < 2 ? IMP_TYPE_Q5_K : IMP_TYPE_Q4_K;
        else if (f == IMP_FTYPE_Q3_K_L) t = IMP_TYPE_Q5_K;
        else if ((f == IMP_FTYPE_IQ4_NL || f == IMP_FTYPE_IQ4_XS) && gqa >= 4) t = IMP_TYPE_Q5_K;
        else if ((f == IMP_FTYPE_Q4_K_M || f == IMP_FTYPE_Q5_K_M) && imp_use_more_bits(layer, n))
            t = IMP_TYPE_Q6_K;
        else if (f == IMP_FTYPE_Q4_K_S && layer < 4) t = IMP_TYPE_Q5_K;
        if (moe8) t = IMP_TYPE_Q8_0;
        return t;
    case ROLE_ATTN_K: return moe8 ? IMP_TYPE_Q8_0 : t;
    case ROLE_FFN_DOWN:
        if (f == IMP_FTYPE_Q2_K) t = IMP_TYPE_Q3_K;
        else if (f == IMP_FTYPE_Q3_K_M) t = layer < n / 16 ? IMP_TYPE_Q5_K : IMP_TYPE_Q4_K;
        else if (f == IMP_FTYPE_Q3_K_L) t = IMP_TYPE_Q5_K;
        else if (f == IMP_FTYPE_Q4_K_M) {
            if (imp_use_more_bits(layer, n)) t = IMP_TYPE_Q6_K;
        } else if (layer < n / 8 && (f == IMP_FTYPE_IQ4_NL || f == IMP_FTYPE_IQ4_XS) &&
                   !m->has_imatrix)
            t = IMP_TYPE_Q5_K;
        else if (f == IMP_FTYPE_Q5_K_M && imp_use_more_bits(layer, n)) t = IMP_TYPE_Q6_K;
        else if (f == IMP_FTYPE_Q4_K_S && layer < n / 8) t = IMP_TYPE_Q5_K;
        else if ((f == IMP_FTYPE_Q4_0 || f == IMP_FTYPE_Q5_0) && m->has_imatrix && layer < n / 8)
            t = f == IMP_FTYPE_Q4_0 ? IMP_TYPE_Q4_1 : IMP_TYPE_Q5_1;
        return t;
    case ROLE_ATTN_OUTPUT:
        if (moe8) {
            if (f == IMP_FTYPE_Q2_K || f == IMP_FTYPE_Q3_K_S || f == IMP_FTYPE_Q3_K_M ||
                f == IMP_FTYPE_IQ4_NL || f == IMP_FTYPE_Q4_K_S || f == IMP_FTYPE_Q4_K_M ||
                f == IMP_FTYPE_IQ4_XS)
                t = IMP_TYPE_Q5_K;
        } else if (f == IMP_FTYPE_Q2_K) t = IMP_TYPE_Q3_K;
        else if (f == IMP_FTYPE_Q3_K_M) t = IMP_TYPE_Q4_K;
        else if (f == IMP_FTYPE_Q3_K_L) t = IMP_TYPE_Q5_K;
        return t;
    default: return t;
    }
}

imp_type imp_mix_tensor_type(imp_ftype f, const imp_mix_model *m, const char *name,
                             uint32_t n_dims, const int64_t *ne, uint32_t src_type) {
    if (!imp_mix_tensor_quantizable(name, n_dims)) {
        return n_dims <= 1 ? IMP_TYPE_F32 : (imp_type)src_type;
    }
    imp_type t = imp_ftype_base_type(f);
    const imp_type_traits *tr = imp_type_get(t);
    if (!tr || !tr->is_quantized) return t; /* F32/F16/BF16 mixes convert everything 2-D */
    int layer = 0;
    if (sscanf(name, "blk.%d.", &layer) != 1 || layer < 0) layer = 0;
    t = imp_mix_role_type(f, m, imp_tensor_role_of(name), layer, ne[0], t);
    return imp_mix_fallback(t, ne[0]);
}
