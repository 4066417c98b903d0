/*
 * Small helpers shared by the CPU reference kernels (internal to src/quant/).
 *
 * Blocks are read and written through byte pointers with memcpy: GGUF rows of 18-, 22- or
 * 34-byte blocks sit at any even (or odd, in a hand-made buffer) address, so dereferencing an
 * imp_block_* pointer would be unaligned-access UB. memcpy of 2 or 4 bytes compiles to one load.
 * Multi-byte fields are little-endian, as in ggml (which also assumes a little-endian host).
 *
 * The 32-element nibble layout is shared by Q4_0, Q4_1, Q5_0, Q5_1 (low 4 bits), IQ4_NL and each
 * 32-element sub-block of IQ4_XS: byte j holds element j in its low nibble and element j+16 in
 * its high nibble.
 */
#ifndef IMP_QUANT_Q_COMMON_H
#define IMP_QUANT_Q_COMMON_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/fp16.h"

static inline float imp_q_load_fp16(const uint8_t *p) {
    imp_fp16 h;
    memcpy(&h, p, sizeof h);
    return imp_fp16_to_f32(h);
}

/* Stores fp16(v) and returns the value actually stored, widened back (what dequantize sees). */
static inline float imp_q_store_fp16(uint8_t *p, float v) {
    imp_fp16 h = imp_f32_to_fp16(v);
    memcpy(p, &h, sizeof h);
    return imp_fp16_to_f32(h);
}

static inline float imp_q_load_f32(const uint8_t *p) {
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint32_t imp_q_load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint16_t imp_q_load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* 32 nibble codes from 16 bytes (layout above). */
static inline void imp_q_unpack_nibbles(const uint8_t *qs, uint8_t *codes) {
    for (int j = 0; j < 16; j++) {
        codes[j] = qs[j] & 0x0f;
        codes[j + 16] = qs[j] >> 4;
    }
}

/* 16 bytes from 32 codes; only the low 4 bits of each code are kept. */
static inline void imp_q_pack_nibbles(const uint8_t *codes, uint8_t *qs) {
    for (int j = 0; j < 16; j++)
        qs[j] = (uint8_t)((codes[j] & 0x0f) | ((codes[j + 16] & 0x0f) << 4));
}

/* Round to nearest, ties to even (the default FP mode, as ggml's nearest_int), clamped to
 * [lo, hi]; NaN maps to lo. Clamping in float first keeps the int conversion defined for any
 * input, including inf and NaN from a hostile file or a degenerate scale. */
static inline int imp_q_round_clamp(float v, int lo, int hi) {
    if (!(v >= (float)lo)) return lo;
    if (v >= (float)hi) return hi;
    return (int)rintf(v);
}

/* Truncation toward zero clamped to [0, hi] (NaN -> 0): the C cast ggml's reference quantizers
 * use, made defined for every input. For values in range it equals MIN(hi, (int)v). */
static inline int imp_q_trunc_clamp(float v, int hi) {
    if (!(v > 0.0f)) return 0;
    if (v >= (float)hi) return hi;
    return (int)v;
}

#endif
