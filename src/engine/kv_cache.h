/*
 * Paged KV cache bookkeeping (host side, the same for every backend; the storage itself is the
 * backend's imp_kv_store). The pool hands out fixed-size blocks with reference counts (so a
 * later prefix cache can share blocks between sequences); a sequence's block table maps its
 * logical blocks (positions / block_size) to physical blocks.
 */
#ifndef IMP_ENGINE_KV_CACHE_H
#define IMP_ENGINE_KV_CACHE_H

#include <stdint.h>

#include "base/status.h"

typedef struct imp_kv_pool {
    int32_t n_blocks;
    int32_t block_size;
    int32_t *refcnt;   /* [n_blocks]                          */
    int32_t *free_ids; /* [n_blocks], a stack of free blocks  */
    int32_t n_free;
} imp_kv_pool;

typedef struct imp_kv_seq {
    int32_t *blocks;  /* [cap] block table                            */
    int32_t n_blocks; /* blocks held                                  */
    int32_t cap;
    int32_t n_pos;    /* positions 0..n_pos-1 hold valid K/V          */
} imp_kv_seq;

imp_status imp_kv_pool_init(imp_kv_pool *p, int32_t n_blocks, int32_t block_size, imp_error *err);
void imp_kv_pool_free(imp_kv_pool *p);

/* Makes s hold blocks for positions [0, n_pos_total). Fails with IMP_ERR_NOMEM (pool exhausted)
 * without changing s. */
imp_status imp_kv_seq_reserve(imp_kv_pool *p, imp_kv_seq *s, int32_t n_pos_total, imp_error *err);

/* Keeps positions [0, n_pos) (n_pos <= s->n_pos) and returns blocks no longer needed. */
void imp_kv_seq_truncate(imp_kv_pool *p, imp_kv_seq *s, int32_t n_pos);

/* Returns every block and frees the table; s is empty afterwards and may be reused. */
void imp_kv_seq_release(imp_kv_pool *p, imp_kv_seq *s);

/* The pool slot of position pos (which must be reserved). */
static inline int32_t imp_kv_seq_slot(const imp_kv_pool *p, const imp_kv_seq *s, int32_t pos) {
    return s->blocks[pos / p->block_size] * p->block_size + pos % p->block_size;
}

#endif
