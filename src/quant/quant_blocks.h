/*
 * Block layouts of the ggml quantization formats, byte-for-byte as stored in GGUF files
 * (ggml-common.h defines them; sizes are checked below). QK = elements per block.
 */
#ifndef IMP_QUANT_BLOCKS_H
#define IMP_QUANT_BLOCKS_H

#include <assert.h>
#include <stdint.h>

#include "base/fp16.h"

#define IMP_QK4_0  32
#define IMP_QK4_1  32
#define IMP_QK5_0  32
#define IMP_QK5_1  32
#define IMP_QK8_0  32
#define IMP_QK8_1  32
#define IMP_QK4_NL 32
#define IMP_QK_K   256
#define IMP_K_SCALE_SIZE 12

typedef struct { imp_fp16 d; uint8_t qs[IMP_QK4_0 / 2]; } imp_block_q4_0;            /* x = d*(q-8) */
typedef struct { imp_fp16 d, m; uint8_t qs[IMP_QK4_1 / 2]; } imp_block_q4_1;         /* x = d*q + m */
typedef struct { imp_fp16 d; uint8_t qh[4]; uint8_t qs[IMP_QK5_0 / 2]; } imp_block_q5_0;
typedef struct { imp_fp16 d, m; uint8_t qh[4]; uint8_t qs[IMP_QK5_1 / 2]; } imp_block_q5_1;
typedef struct { imp_fp16 d; int8_t qs[IMP_QK8_0]; } imp_block_q8_0;
typedef struct { imp_fp16 d, s; int8_t qs[IMP_QK8_1]; } imp_block_q8_1; /* s = d * sum(qs) */

typedef struct {
    uint8_t scales[IMP_QK_K / 16]; /* 4-bit scale (low) and min (high) per 16 elements */
    uint8_t qs[IMP_QK_K / 4];      /* 2-bit quants                                      */
    imp_fp16 d, dmin;
} imp_block_q2_K;
typedef struct {
    uint8_t hmask[IMP_QK_K / 8]; /* high bit of the 3-bit quants */
    uint8_t qs[IMP_QK_K / 4];    /* low 2 bits                   */
    uint8_t scales[12];          /* 16 6-bit scales              */
    imp_fp16 d;
} imp_block_q3_K;
typedef struct {
    imp_fp16 d, dmin;
    uint8_t scales[IMP_K_SCALE_SIZE]; /* 8 6-bit scales and 8 6-bit mins */
    uint8_t qs[IMP_QK_K / 2];
} imp_block_q4_K;
typedef struct {
    imp_fp16 d, dmin;
    uint8_t scales[IMP_K_SCALE_SIZE];
    uint8_t qh[IMP_QK_K / 8];
    uint8_t qs[IMP_QK_K / 2];
} imp_block_q5_K;
typedef struct {
    uint8_t ql[IMP_QK_K / 2];      /* low 4 bits  */
    uint8_t qh[IMP_QK_K / 4];      /* high 2 bits */
    int8_t scales[IMP_QK_K / 16];  /* 8-bit scales */
    imp_fp16 d;
} imp_block_q6_K;
typedef struct {
    float d;                       /* activations only: fp32 scale          */
    int8_t qs[IMP_QK_K];
    int16_t bsums[IMP_QK_K / 16];  /* sums of qs in groups of 16            */
} imp_block_q8_K;

typedef struct { imp_fp16 d; uint8_t qs[IMP_QK4_NL / 2]; } imp_block_iq4_nl;
typedef struct {
    imp_fp16 d;
    uint16_t scales_h;
    uint8_t scales_l[IMP_QK_K / 64];
    uint8_t qs[IMP_QK_K / 2];
} imp_block_iq4_xs;

static_assert(sizeof(imp_block_q4_0) == 18, "q4_0 size");
static_assert(sizeof(imp_block_q4_1) == 20, "q4_1 size");
static_assert(sizeof(imp_block_q5_0) == 22, "q5_0 size");
static_assert(sizeof(imp_block_q5_1) == 24, "q5_1 size");
static_assert(sizeof(imp_block_q8_0) == 34, "q8_0 size");
static_assert(sizeof(imp_block_q8_1) == 36, "q8_1 size");
static_assert(sizeof(imp_block_q2_K) == 84, "q2_K size");
static_assert(sizeof(imp_block_q3_K) == 110, "q3_K size");
static_assert(sizeof(imp_block_q4_K) == 144, "q4_K size");
static_assert(sizeof(imp_block_q5_K) == 176, "q5_K size");
static_assert(sizeof(imp_block_q6_K) == 210, "q6_K size");
static_assert(sizeof(imp_block_q8_K) == 292, "q8_K size");
static_assert(sizeof(imp_block_iq4_nl) == 18, "iq4_nl size");
static_assert(sizeof(imp_block_iq4_xs) == 136, "iq4_xs size");

/* The IQ4_NL / IQ4_XS non-linear 4-bit code book. */
extern const int8_t imp_iq4nl_values[16];

#endif
