/*
 * The type table. Geometry for every ggml type id (so any GGUF can be read and inspected);
 * CPU reference functions for the types imp computes with. Adding a format = adding a row.
 * vec_dot_type follows ggml: activations for the 4/5-bit legacy types with an offset (Q4_1,
 * Q5_1) are Q8_1 (the dot needs sum(y)); the other legacy and IQ4_NL take Q8_0; K-quants and
 * IQ4_XS take Q8_K; float types take themselves.
 */
#include "quant/quant.h"

#include <strings.h>

#include "base/mem.h"
#include "quant/quant_impl.h"

#define ROW(id, nm, bs, ts, q) [IMP_TYPE_##id] = {.name = nm, .block_size = bs, .type_size = ts, .is_quantized = q}
#define FNS(f, vdt) .dequantize = imp_dequantize_##f, .quantize = imp_quantize_##f, .vec_dot = imp_vec_dot_##f, .vec_dot_type = IMP_TYPE_##vdt

static const imp_type_traits k_types[IMP_TYPE_COUNT] = {
    [IMP_TYPE_F32] = {.name = "F32", .block_size = 1, .type_size = 4, FNS(f32, F32)},
    [IMP_TYPE_F16] = {.name = "F16", .block_size = 1, .type_size = 2, FNS(f16, F16)},
    [IMP_TYPE_BF16] = {.name = "BF16", .block_size = 1, .type_size = 2, FNS(bf16, BF16)},
    [IMP_TYPE_Q4_0] = {.name = "Q4_0", .block_size = 32, .type_size = 18, .is_quantized = true, FNS(q4_0, Q8_0)},
    [IMP_TYPE_Q4_1] = {.name = "Q4_1", .block_size = 32, .type_size = 20, .is_quantized = true, FNS(q4_1, Q8_1)},
    [IMP_TYPE_Q5_0] = {.name = "Q5_0", .block_size = 32, .type_size = 22, .is_quantized = true, FNS(q5_0, Q8_0)},
    [IMP_TYPE_Q5_1] = {.name = "Q5_1", .block_size = 32, .type_size = 24, .is_quantized = true, FNS(q5_1, Q8_1)},
    [IMP_TYPE_Q8_0] = {.name = "Q8_0", .block_size = 32, .type_size = 34, .is_quantized = true, FNS(q8_0, Q8_0)},
    [IMP_TYPE_Q8_1] = {.name = "Q8_1", .block_size = 32, .type_size = 36, .is_quantized = true, FNS(q8_1, Q8_1)},
    [IMP_TYPE_Q2_K] = {.name = "Q2_K", .block_size = 256, .type_size = 84, .is_quantized = true, FNS(q2_K, Q8_K)},
    [IMP_TYPE_Q3_K] = {.name = "Q3_K", .block_size = 256, .type_size = 110, .is_quantized = true, FNS(q3_K, Q8_K)},
    [IMP_TYPE_Q4_K] = {.name = "Q4_K", .block_size = 256, .type_size = 144, .is_quantized = true, FNS(q4_K, Q8_K)},
    [IMP_TYPE_Q5_K] = {.name = "Q5_K", .block_size = 256, .type_size = 176, .is_quantized = true, FNS(q5_K, Q8_K)},
    [IMP_TYPE_Q6_K] = {.name = "Q6_K", .block_size = 256, .type_size = 210, .is_quantized = true, FNS(q6_K, Q8_K)},
    [IMP_TYPE_Q8_K] = {.name = "Q8_K", .block_size = 256, .type_size = 292, .is_quantized = true, FNS(q8_K, Q8_K)},
    [IMP_TYPE_IQ4_NL] = {.name = "IQ4_NL", .block_size = 32, .type_size = 18, .is_quantized = true, FNS(iq4_nl, Q8_0)},
    [IMP_TYPE_IQ4_XS] = {.name = "IQ4_XS", .block_size = 256, .type_size = 136, .is_quantized = true, FNS(iq4_xs, Q8_K)},
    /* geometry only: readable and inspectable, not computable (yet) */
    ROW(IQ2_XXS, "IQ2_XXS", 256, 66, true),
    ROW(IQ2_XS, "IQ2_XS", 256, 74, true),
    ROW(IQ3_XXS, "IQ3_XXS", 256, 98, true),
    ROW(IQ1_S, "IQ1_S", 256, 50, true),
    ROW(IQ3_S, "IQ3_S", 256, 110, true),
    ROW(IQ2_S, "IQ2_S", 256, 82, true),
    ROW(I8, "I8", 1, 1, false),
    ROW(I16, "I16", 1, 2, false),
    ROW(I32, "I32", 1, 4, false),
    ROW(I64, "I64", 1, 8, false),
    ROW(F64, "F64", 1, 8, false),
    ROW(IQ1_M, "IQ1_M", 256, 56, true),
    ROW(TQ1_0, "TQ1_0", 256, 54, true),
    ROW(TQ2_0, "TQ2_0", 256, 66, true),
    ROW(MXFP4, "MXFP4", 32, 17, true),
    ROW(NVFP4, "NVFP4", 64, 36, true),
    ROW(Q1_0, "Q1_0", 128, 18, true),
};

const imp_type_traits *imp_type_get(uint32_t t) {
    if (t >= IMP_TYPE_COUNT || k_types[t].name == NULL) return NULL;
    return &k_types[t];
}

const char *imp_type_name(uint32_t t) {
    const imp_type_traits *tr = imp_type_get(t);
    return tr ? tr->name : "?";
}

bool imp_type_from_name(const char *name, imp_type *out) {
    if (!name) return false;
    for (uint32_t t = 0; t < IMP_TYPE_COUNT; t++) {
        if (k_types[t].name && strcasecmp(k_types[t].name, name) == 0) {
            *out = (imp_type)t;
            return true;
        }
    }
    return false;
}

size_t imp_row_size(uint32_t t, int64_t n) {
    const imp_type_traits *tr = imp_type_get(t);
    if (!tr || n < 0 || n % tr->block_size != 0) return 0;
    size_t bytes;
    if (!imp_mul_size((size_t)(n / tr->block_size), tr->type_size, &bytes)) return 0;
    return bytes;
}

bool imp_type_is_computable(uint32_t t) {
    const imp_type_traits *tr = imp_type_get(t);
    return tr && tr->dequantize && tr->quantize && tr->vec_dot;
}
