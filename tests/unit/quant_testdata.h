/*
 * Seeded test data for the quantization tests (helper_quant_dump.c, test_quant.c): random blocks
 * of any computable type with sane scale fields, and float rows of awkward shapes. Header-only
 * (static functions) because each test executable is built from its own .c plus testutil.c.
 *
 * Random blocks are random bytes except the scale fields, which get finite values of sane
 * magnitude (fp16 normals from 2^-20 to 2^4, some subnormals and zeros, both signs) so that a
 * comparison exercises the decoding rather than NaN arithmetic. Every 8th block has all code bytes
 * 0xff and the next one all 0x00, so both extremes of every code appear. Float types (block size
 * 1) get raw random bits: infinities, NaNs and subnormals included.
 */
#ifndef IMP_TESTS_QUANT_TESTDATA_H
#define IMP_TESTS_QUANT_TESTDATA_H

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"
#include "quant/quant_blocks.h"
#include "testutil.h"

enum { FIELD_NONE, FIELD_FP16, FIELD_F32 };
typedef struct {
    int kind;
    size_t off;
} scale_field;

/* Where each format keeps its float scale fields; everything else in a block is code bits that
 * any byte value may fill. A computable quantized type missing here gets blocks made by
 * quantizing random floats instead (always valid, but fewer extreme codes) and a note. */
static const struct {
    imp_type type;
    scale_field f[2];
} k_fields[] = {
    {IMP_TYPE_Q4_0, {{FIELD_FP16, offsetof(imp_block_q4_0, d)}}},
    {IMP_TYPE_Q4_1,
     {{FIELD_FP16, offsetof(imp_block_q4_1, d)}, {FIELD_FP16, offsetof(imp_block_q4_1, m)}}},
    {IMP_TYPE_Q5_0, {{FIELD_FP16, offsetof(imp_block_q5_0, d)}}},
    {IMP_TYPE_Q5_1,
     {{FIELD_FP16, offsetof(imp_block_q5_1, d)}, {FIELD_FP16, offsetof(imp_block_q5_1, m)}}},
    {IMP_TYPE_Q8_0, {{FIELD_FP16, offsetof(imp_block_q8_0, d)}}},
    {IMP_TYPE_Q8_1,
     {{FIELD_FP16, offsetof(imp_block_q8_1, d)}, {FIELD_FP16, offsetof(imp_block_q8_1, s)}}},
    {IMP_TYPE_Q2_K,
     {{FIELD_FP16, offsetof(imp_block_q2_K, d)}, {FIELD_FP16, offsetof(imp_block_q2_K, dmin)}}},
    {IMP_TYPE_Q3_K, {{FIELD_FP16, offsetof(imp_block_q3_K, d)}}},
    {IMP_TYPE_Q4_K,
     {{FIELD_FP16, offsetof(imp_block_q4_K, d)}, {FIELD_FP16, offsetof(imp_block_q4_K, dmin)}}},
    {IMP_TYPE_Q5_K,
     {{FIELD_FP16, offsetof(imp_block_q5_K, d)}, {FIELD_FP16, offsetof(imp_block_q5_K, dmin)}}},
    {IMP_TYPE_Q6_K, {{FIELD_FP16, offsetof(imp_block_q6_K, d)}}},
    {IMP_TYPE_Q8_K, {{FIELD_F32, offsetof(imp_block_q8_K, d)}}},
    {IMP_TYPE_IQ4_NL, {{FIELD_FP16, offsetof(imp_block_iq4_nl, d)}}},
    {IMP_TYPE_IQ4_XS, {{FIELD_FP16, offsetof(imp_block_iq4_xs, d)}}},
};

/* A random finite scale: mostly normal numbers 2^-20..2^4 of either sign, some fp16 subnormals
 * and zeros (a scale of 0 is what an all-zero block quantizes to). */
static inline float random_scale(imp_test_rng *r) {
    const uint64_t u = imp_test_rng_u64(r);
    const float sign = (u & 1) ? -1.0f : 1.0f;
    switch ((u >> 1) % 16) {
    case 0:
        return 0.0f * sign;
    case 1:
        return sign * imp_fp16_to_f32((imp_fp16)(1 + (u >> 8) % 0x3ff)); /* fp16 subnormal */
    default: {
        const int e = (int)((u >> 8) % 25) - 20;
        return sign * ldexpf(1.0f + imp_test_rng_uniform(r), e);
    }
    }
}

static inline int field_index(imp_type t) {
    for (size_t i = 0; i < sizeof k_fields / sizeof k_fields[0]; i++)
        if (k_fields[i].type == t) return (int)i;
    return -1;
}

/* nb random blocks of type t into blocks (nb * type_size bytes). Returns 1 when t is quantized
 * but has no k_fields entry and the blocks were made by quantizing random floats instead (a
 * caller may want to say so), -1 on allocation failure, 0 otherwise. */
static inline int fill_random_blocks(imp_type t, uint8_t *blocks, int64_t nb, imp_test_rng *r) {
    const imp_type_traits *tr = imp_type_get(t);
    const int fi = field_index(t);
    if (tr->is_quantized && fi < 0) {
        const int64_t n = nb * tr->block_size;
        float *tmp = malloc((size_t)n * sizeof(float));
        if (!tmp) return -1;
        for (int64_t i = 0; i < n; i++) tmp[i] = imp_test_rng_normal(r) * random_scale(r);
        tr->quantize(tmp, blocks, n, NULL);
        free(tmp);
        return 1;
    }
    for (int64_t i = 0; i < nb; i++) {
        uint8_t *b = blocks + i * (int64_t)tr->type_size;
        for (size_t k = 0; k < tr->type_size; k++) {
            b[k] = i % 8 == 0 ? 0xff : i % 8 == 1 ? 0x00 : (uint8_t)imp_test_rng_u64(r);
        }
        if (fi < 0) continue; /* float types: raw bits everywhere */
        for (int k = 0; k < 2; k++) {
            const scale_field *f = &k_fields[fi].f[k];
            if (f->kind == FIELD_FP16) {
                const imp_fp16 h = imp_f32_to_fp16(random_scale(r));
                memcpy(b + f->off, &h, sizeof h);
            } else if (f->kind == FIELD_F32) {
                const float v = random_scale(r);
                memcpy(b + f->off, &v, sizeof v);
            }
        }
    }
    return 0;
}

/* The quantizer inputs, one kind of row per row index (mod 16):
 *   0-3 N(0,1)          4 N(0,1)*1e-3        5 N(0,1)*1e-6 (fp16 scales go subnormal)
 *   6 N(0,1)*1e-30 (scales round to 0)       7 all zeros       8 uniform(-1,1)*1000
 *   9 N(0,1) with 1% outliers x30            10 all positive |N|+1 (min > 0)
 *   11 per-block magnitudes 10^U(-4,2)       12 half-integers (rounding ties: x*id lands on .5)
 *   13 blocks of one repeated value          14 a single nonzero element per 32
 *   15 N(0,1) with exact duplicates of the largest magnitude of opposite sign */
static inline void make_inputs(float *x, int rows, int cols, imp_test_rng *r) {
    for (int row = 0; row < rows; row++) {
        float *v = x + (size_t)row * cols;
        const int kind = row % 16;
        float block_scale = 1.0f;
        for (int j = 0; j < cols; j++) {
            const float g = imp_test_rng_normal(r);
            if (j % 32 == 0) block_scale = powf(10.0f, -4.0f + 6.0f * imp_test_rng_uniform(r));
            switch (kind) {
            case 4:
                v[j] = g * 1e-3f;
                break;
            case 5:
                v[j] = g * 1e-6f;
                break;
            case 6:
                v[j] = g * 1e-30f;
                break;
            case 7:
                v[j] = 0.0f;
                break;
            case 8:
                v[j] = (2.0f * imp_test_rng_uniform(r) - 1.0f) * 1000.0f;
                break;
            case 9:
                v[j] = imp_test_rng_uniform(r) < 0.01f ? g * 30.0f : g;
                break;
            case 10:
                v[j] = fabsf(g) + 1.0f;
                break;
            case 11:
                v[j] = g * block_scale;
                break;
            case 12:
                v[j] = 0.5f * (float)((int)(imp_test_rng_u64(r) % 33) - 16);
                break;
            case 13:
                v[j] = (j / 32 % 2 ? -1.0f : 1.0f) * (1.0f + (float)(j / 32));
                break;
            case 14:
                v[j] = j % 32 == (j / 32) % 32 ? g : 0.0f;
                break;
            case 15:
                v[j] = j % 32 == 5 ? 4.0f : j % 32 == 20 ? -4.0f : g;
                break;
            default:
                v[j] = g;
                break;
            }
        }
    }
}

#endif
