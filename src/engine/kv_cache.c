/* Block pool and block tables of the paged KV cache (see kv_cache.h). */
#include "engine/kv_cache.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

imp_status imp_kv_pool_init(imp_kv_pool *p, int32_t n_blocks, int32_t block_size, imp_error *err) {
    memset(p, 0, sizeof *p);
    if (n_blocks < 1 || block_size < 1) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "KV pool: %d blocks of %d slots", n_blocks, block_size);
    }
    p->refcnt = imp_calloc((size_t)n_blocks, sizeof *p->refcnt);
    p->free_ids = imp_malloc_array((size_t)n_blocks, sizeof *p->free_ids);
    if (!p->refcnt || !p->free_ids) {
        imp_kv_pool_free(p);
        return imp_error_set(err, IMP_ERR_NOMEM, "KV pool: out of memory");
    }
    p->n_blocks = n_blocks;
    p->block_size = block_size;
    /* Hand out low block ids first (pop from the end). */
    for (int32_t i = 0; i < n_blocks; i++) p->free_ids[i] = n_blocks - 1 - i;
    p->n_free = n_blocks;
    return IMP_OK;
}

void imp_kv_pool_free(imp_kv_pool *p) {
    free(p->refcnt);
    free(p->free_ids);
    memset(p, 0, sizeof *p);
}

imp_status imp_kv_seq_reserve(imp_kv_pool *p, imp_kv_seq *s, int32_t n_pos_total, imp_error *err) {
    if (n_pos_total < 0) return imp_error_set(err, IMP_ERR_INVALID_ARG, "KV reserve: negative length");
    const int32_t need = (int32_t)(((int64_t)n_pos_total + p->block_size - 1) / p->block_size);
    if (need <= s->n_blocks) return IMP_OK;
    if (need - s->n_blocks > p->n_free) {
        return imp_error_set(err, IMP_ERR_NOMEM, "KV cache full: %d more blocks of %d tokens needed, %d free",
                             need - s->n_blocks, p->block_size, p->n_free);
    }
    if (need > s->cap) {
        int32_t cap = s->cap ? s->cap : 16;
        while (cap < need) cap *= 2;
        int32_t *b = realloc(s->blocks, (size_t)cap * sizeof *b);
        if (!b) return imp_error_set(err, IMP_ERR_NOMEM, "KV block table: out of memory");
        s->blocks = b;
        s->cap = cap;
    }
    while (s->n_blocks < need) {
        const int32_t id = p->free_ids[--p->n_free];
        p->refcnt[id] = 1;
        s->blocks[s->n_blocks++] = id;
    }
    return IMP_OK;
}

static void put_block(imp_kv_pool *p, int32_t id) {
    if (--p->refcnt[id] == 0) p->free_ids[p->n_free++] = id;
}

void imp_kv_seq_truncate(imp_kv_pool *p, imp_kv_seq *s, int32_t n_pos) {
    if (n_pos < 0) n_pos = 0;
    if (n_pos < s->n_pos) s->n_pos = n_pos;
    const int32_t keep = (int32_t)(((int64_t)s->n_pos + p->block_size - 1) / p->block_size);
    while (s->n_blocks > keep) put_block(p, s->blocks[--s->n_blocks]);
}

void imp_kv_seq_release(imp_kv_pool *p, imp_kv_seq *s) {
    for (int32_t i = 0; i < s->n_blocks; i++) put_block(p, s->blocks[i]);
    free(s->blocks);
    memset(s, 0, sizeof *s);
}
