/*
 * A binary heap of fixed-size elements ordered by a caller's "before" function (the element that
 * comes out first is the one no other is before). The tokenizers keep their merge candidates in
 * one. Not thread-safe per heap; the caller owns it (imp_heap_free).
 */
#ifndef IMP_BASE_HEAP_H
#define IMP_BASE_HEAP_H

#include <stdbool.h>
#include <stddef.h>

#include <stdlib.h>
#include <string.h>

#include "base/status.h"

typedef bool (*imp_heap_before_fn)(const void *a, const void *b);

typedef struct imp_heap {
    unsigned char *v;          /* [cap * elem]                 */
    size_t n, cap, elem;       /* elem: bytes per element       */
    imp_heap_before_fn before; /* a comes out before b          */
} imp_heap;

static inline void imp_heap_init(imp_heap *h, size_t elem, imp_heap_before_fn before) {
    h->v = NULL;
    h->n = h->cap = 0;
    h->elem = elem;
    h->before = before;
}

/* Push and pop are inline so that each caller's element size and order function are constants
 * the compiler can fold in (the tokenizers' merge loops spend their time here). Elements move
 * with memcpy; the slot at index cap holds the one being sifted down. */
#define IMP_HEAP_AT(h, i) ((h)->v + (i) * (h)->elem)

/* Adds a copy of *x. */
static inline imp_status imp_heap_push(imp_heap *h, const void *x, imp_error *err) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        unsigned char *v = realloc(h->v, (cap + 1) * h->elem); /* + 1: the sift slot */
        if (!v) return imp_error_set(err, IMP_ERR_NOMEM, "out of memory (heap of %zu)", cap);
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!h->before(x, IMP_HEAP_AT(h, parent))) break;
        memcpy(IMP_HEAP_AT(h, i), IMP_HEAP_AT(h, parent), h->elem);
        i = parent;
    }
    memcpy(IMP_HEAP_AT(h, i), x, h->elem);
    return IMP_OK;
}

/* Removes the first element into *out (h->n must be > 0). */
static inline void imp_heap_pop(imp_heap *h, void *out) {
    memcpy(out, IMP_HEAP_AT(h, 0), h->elem);
    unsigned char *last = IMP_HEAP_AT(h, h->cap);
    memcpy(last, IMP_HEAP_AT(h, --h->n), h->elem);
    size_t i = 0, n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h->before(IMP_HEAP_AT(h, c + 1), IMP_HEAP_AT(h, c))) c++;
        if (!h->before(IMP_HEAP_AT(h, c), last)) break;
        memcpy(IMP_HEAP_AT(h, i), IMP_HEAP_AT(h, c), h->elem);
        i = c;
    }
    if (n) memcpy(IMP_HEAP_AT(h, i), last, h->elem);
}

void imp_heap_free(imp_heap *h);

#endif
