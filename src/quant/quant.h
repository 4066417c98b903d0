/*
 * The type table: one row per ggml tensor type, indexed by the ggml type id (the id GGUF files
 * store). A row gives the block geometry (every known id, so files with any type can be read and
 * inspected) and, for the types imp computes with, the CPU reference functions:
 *
 *   dequantize  blocks -> float, bit-exact with ggml's dequantize_row_* definitions
 *   quantize    float -> blocks, reference quality (ggml's scale searches), optional importance
 *   vec_dot     dot product of one weight row with one activation row already quantized to the
 *               row's vec_dot_type (how matmul works: activations are quantized once per row)
 *
 * Lengths n are element counts and must be multiples of block_size; callers check that.
 * Block layouts follow ggml-common.h; they are defined in quant_blocks.h.
 */
#ifndef IMP_QUANT_QUANT_H
#define IMP_QUANT_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum imp_type {
    IMP_TYPE_F32 = 0,
    IMP_TYPE_F16 = 1,
    IMP_TYPE_Q4_0 = 2,
    IMP_TYPE_Q4_1 = 3,
    IMP_TYPE_Q5_0 = 6,
    IMP_TYPE_Q5_1 = 7,
    IMP_TYPE_Q8_0 = 8,
    IMP_TYPE_Q8_1 = 9,
    IMP_TYPE_Q2_K = 10,
    IMP_TYPE_Q3_K = 11,
    IMP_TYPE_Q4_K = 12,
    IMP_TYPE_Q5_K = 13,
    IMP_TYPE_Q6_K = 14,
    IMP_TYPE_Q8_K = 15,
    IMP_TYPE_IQ2_XXS = 16,
    IMP_TYPE_IQ2_XS = 17,
    IMP_TYPE_IQ3_XXS = 18,
    IMP_TYPE_IQ1_S = 19,
    IMP_TYPE_IQ4_NL = 20,
    IMP_TYPE_IQ3_S = 21,
    IMP_TYPE_IQ2_S = 22,
    IMP_TYPE_IQ4_XS = 23,
    IMP_TYPE_I8 = 24,
    IMP_TYPE_I16 = 25,
    IMP_TYPE_I32 = 26,
    IMP_TYPE_I64 = 27,
    IMP_TYPE_F64 = 28,
    IMP_TYPE_IQ1_M = 29,
    IMP_TYPE_BF16 = 30,
    IMP_TYPE_TQ1_0 = 34,
    IMP_TYPE_TQ2_0 = 35,
    IMP_TYPE_MXFP4 = 39,
    IMP_TYPE_NVFP4 = 40,
    IMP_TYPE_Q1_0 = 41,
    IMP_TYPE_COUNT = 42, /* ids below this may be rows; ids 4, 5, 31-33, 36-38 are retired */
} imp_type;

/* x: n elements of a row in this type; y: n elements in vec_dot_type; *s = sum x_i * y_i. */
typedef void (*imp_vec_dot_fn)(int64_t n, float *s, const void *x, const void *y);
typedef void (*imp_dequantize_fn)(const void *src, float *dst, int64_t n);
/* imatrix: NULL, or n per-column importance weights (squared-activation means) that the scale
 * search weighs the error by. */
typedef void (*imp_quantize_fn)(const float *src, void *dst, int64_t n, const float *imatrix);

typedef struct imp_type_traits {
    const char *name;       /* ggml's name: "Q4_K", "F16" ... NULL for retired ids        */
    int64_t block_size;     /* elements per block                                          */
    size_t type_size;       /* bytes per block                                             */
    bool is_quantized;      /* block_size > 1 or integer-coded                             */
    imp_dequantize_fn dequantize; /* NULL: imp cannot compute with this type                */
    imp_quantize_fn quantize;     /* NULL: imp cannot produce this type                     */
    imp_vec_dot_fn vec_dot;       /* NULL: no CPU dot product                               */
    imp_type vec_dot_type;        /* the activation type vec_dot expects                    */
} imp_type_traits;

/* The row for type id t, or NULL when t is not a known ggml type id (including retired ids). */
const imp_type_traits *imp_type_get(uint32_t t);

/* The row's name, or "?" for an unknown id. */
const char *imp_type_name(uint32_t t);

/* Looks a type up by name, case-insensitively ("q4_k", "F16"); returns false if unknown. */
bool imp_type_from_name(const char *name, imp_type *out);

/* Bytes of a row of n elements of type t; 0 when t is unknown, n is not a multiple of the block
 * size, or the size overflows. */
size_t imp_row_size(uint32_t t, int64_t n);

/* True when imp has dequantize, quantize and vec_dot for t. */
bool imp_type_is_computable(uint32_t t);

#endif
