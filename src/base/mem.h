/*
 * Overflow-checked size arithmetic and allocation helpers. Every size derived from untrusted
 * input (file headers, requests) goes through these before it reaches malloc or an offset.
 */
#ifndef IMP_BASE_MEM_H
#define IMP_BASE_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* *out = a + b; returns false (and leaves *out undefined) on overflow. */
static inline bool imp_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
static inline bool imp_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool imp_mul_i64(int64_t a, int64_t b, int64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool imp_mul_size(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}

/* Rounds x up to a multiple of align (a power of two or any positive value); false on overflow. */
static inline bool imp_align_up_u64(uint64_t x, uint64_t align, uint64_t *out) {
    uint64_t r = x % align;
    if (r == 0) {
        *out = x;
        return true;
    }
    return imp_add_u64(x, align - r, out);
}

/* calloc(n, size) that fails (returns NULL) on overflow as well as on exhaustion. */
static inline void *imp_calloc(size_t n, size_t size) {
    size_t total;
    if (!imp_mul_size(n, size, &total)) return NULL;
    return calloc(total ? n : 1, total ? size : 1);
}

/* malloc(n * size) with an overflow check. */
static inline void *imp_malloc_array(size_t n, size_t size) {
    size_t total;
    if (!imp_mul_size(n, size, &total)) return NULL;
    return malloc(total ? total : 1);
}

#define IMP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define IMP_MIN(a, b)    ((a) < (b) ? (a) : (b))
#define IMP_MAX(a, b)    ((a) > (b) ? (a) : (b))

#endif
