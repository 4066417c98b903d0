/*
 * IEEE half (fp16) and bfloat16 conversions, bit-exact with ggml's scalar definitions:
 * fp16 -> fp32 exact; fp32 -> fp16 round-to-nearest-even (NaN stays NaN); fp32 -> bf16
 * round-to-nearest-even with NaNs quieted (the conversion gguf/ggml use).
 */
#ifndef IMP_BASE_FP16_H
#define IMP_BASE_FP16_H

#include <stdint.h>
#include <string.h>

typedef uint16_t imp_fp16; /* raw IEEE binary16 bits */
typedef uint16_t imp_bf16; /* raw bfloat16 bits      */

static inline float imp_bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint32_t imp_f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float imp_fp16_to_f32(imp_fp16 h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13); /* inf / nan */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign; /* +-0 */
    } else {
        /* subnormal: normalize */
        int e = -1;
        do {
            mant <<= 1;
            e++;
        } while ((mant & 0x400) == 0);
        bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ff) << 13);
    }
    return imp_bits_to_f32(bits);
}

static inline imp_fp16 imp_f32_to_fp16(float f) {
    uint32_t x = imp_f32_to_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx > 0x7f800000u) return (imp_fp16)(sign | 0x7e00); /* nan */
    if (absx >= 0x477ff000u) return (imp_fp16)(sign | 0x7c00); /* overflow -> inf (rne) */
    if (absx < 0x38800000u) {
        /* result is subnormal or zero: scale into the subnormal grid with rne */
        if (absx < 0x33000000u) return (imp_fp16)sign; /* < 2^-25 rounds to 0 */
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t half = 1u << (shift - 1);
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (imp_fp16)(sign | r);
    }
    uint32_t r = absx - 0x38000000u; /* rebias exponent 127 -> 15 */
    uint32_t h = r >> 13;
    uint32_t rem = r & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (imp_fp16)(sign | h);
}

static inline float imp_bf16_to_f32(imp_bf16 b) { return imp_bits_to_f32((uint32_t)b << 16); }

static inline imp_bf16 imp_f32_to_bf16(float f) {
    uint32_t u = imp_f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (imp_bf16)((u >> 16) | 64); /* quiet nan */
    return (imp_bf16)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

#endif
