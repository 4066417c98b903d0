/*
 * GGUF test helpers. imp_test_gguf_walk walks everything an opened GGUF exposes — every key, every
 * value (nested arrays and string arrays to the last element), every typed getter on every key,
 * every tensor and every byte of its data — so that a sanitizer sees each pointer the reader hands
 * out being used. Shared by test_gguf.c, test_gguf_bad.c and the libFuzzer target. Returns a
 * checksum (so nothing is optimized away) and counts inconsistencies (lookups that disagree with
 * the file order, getters that succeed with the wrong type, ...) in *bad.
 */
#ifndef IMP_TEST_GGUF_WALK_H
#define IMP_TEST_GGUF_WALK_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

static inline uint64_t imp_test_gguf_walk_value(const imp_gguf_value *v, int depth, int *bad) {
    uint64_t h = (uint64_t)v->type * 131u;
    if (depth > IMP_GGUF_MAX_DEPTH + 1) {
        (*bad)++;
        return h;
    }
    switch (v->type) {
    case IMP_GGUF_STRING:
        for (uint64_t i = 0; i < v->str.len; i++) h = h * 31u + (uint8_t)v->str.ptr[i];
        break;
    case IMP_GGUF_ARRAY:
        h ^= (uint64_t)v->arr.elem_type << 8;
        for (uint64_t i = 0; i < v->arr.n; i++) {
            if (v->arr.elem_type == IMP_GGUF_STRING) {
                const imp_gguf_str *s = &v->arr.strs[i];
                for (uint64_t k = 0; k < s->len; k++) h = h * 31u + (uint8_t)s->ptr[k];
            } else if (v->arr.elem_type == IMP_GGUF_ARRAY) {
                if (v->arr.elems[i].type != IMP_GGUF_ARRAY) (*bad)++;
                h += imp_test_gguf_walk_value(&v->arr.elems[i], depth + 1, bad);
            } else {
                double d = 0;
                int64_t x = 0;
                if (!imp_gguf_arr_f64(v, i, &d)) (*bad)++;
                if (imp_gguf_arr_i64(v, i, &x)) h += (uint64_t)x;
                h += (uint64_t)(d == d); /* NaN-safe use of d */
            }
        }
        {
            double d;
            int64_t x;
            if (imp_gguf_arr_f64(v, v->arr.n, &d) || imp_gguf_arr_i64(v, v->arr.n, &x)) (*bad)++;
        }
        break;
    case IMP_GGUF_BOOL:
        h += v->b;
        break;
    case IMP_GGUF_FLOAT32:
    case IMP_GGUF_FLOAT64:
        h += (uint64_t)(v->f64 == v->f64);
        break;
    default:
        h += v->u64;
        break;
    }
    return h;
}

static inline uint64_t imp_test_gguf_walk(const imp_gguf *g, int *bad) {
    uint64_t h = imp_gguf_version(g) + imp_gguf_alignment(g) + imp_gguf_data_offset(g);
    const int64_t n_kv = imp_gguf_n_kv(g), n_t = imp_gguf_n_tensors(g);
    if (n_kv < 0 || n_t < 0) (*bad)++;
    for (int64_t i = 0; i < n_kv; i++) {
        const char *key = imp_gguf_kv_key(g, i);
        const imp_gguf_value *v = imp_gguf_kv_value(g, i);
        if (!key || !v) {
            (*bad)++;
            continue;
        }
        h = h * 7u + strlen(key);
        if (imp_gguf_find_key(g, key) != i) (*bad)++;
        h += imp_test_gguf_walk_value(v, 0, bad);
        imp_error e;
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        int64_t i64;
        float f;
        bool b;
        imp_gguf_str s;
        const imp_gguf_value *a;
        const bool is_int =
            v->type <= IMP_GGUF_INT32 || v->type == IMP_GGUF_UINT64 || v->type == IMP_GGUF_INT64;
        imp_status st;
        st = imp_gguf_get_u32(g, key, &u32, &e);
        if (st == IMP_OK)
            h += u32;
        else if (!e.msg[0] || (st == IMP_ERR_TYPE && is_int))
            (*bad)++;
        st = imp_gguf_get_i32(g, key, &i32, &e);
        if (st == IMP_OK)
            h += (uint64_t)i32;
        else if (!e.msg[0] || (st == IMP_ERR_TYPE && is_int))
            (*bad)++;
        st = imp_gguf_get_u64(g, key, &u64, &e);
        if (st == IMP_OK)
            h += u64;
        else if (!e.msg[0] || !(st == IMP_ERR_TYPE || st == IMP_ERR_RANGE))
            (*bad)++;
        st = imp_gguf_get_i64(g, key, &i64, &e);
        if (st == IMP_OK)
            h += (uint64_t)i64;
        else if (!e.msg[0] || !(st == IMP_ERR_TYPE || st == IMP_ERR_RANGE))
            (*bad)++;
        st = imp_gguf_get_f32(g, key, &f, &e);
        if (st == IMP_OK)
            h += (uint64_t)(f == f);
        else if (!e.msg[0])
            (*bad)++;
        st = imp_gguf_get_bool(g, key, &b, &e);
        if ((st == IMP_OK) != (v->type == IMP_GGUF_BOOL)) (*bad)++;
        st = imp_gguf_get_str(g, key, &s, &e);
        if ((st == IMP_OK) != (v->type == IMP_GGUF_STRING)) (*bad)++;
        if (st == IMP_OK && s.len) h += (uint8_t)s.ptr[s.len - 1];
        st = imp_gguf_get_arr(g, key, &a, &e);
        if ((st == IMP_OK) != (v->type == IMP_GGUF_ARRAY)) (*bad)++;
    }
    for (int64_t i = 0; i < n_t; i++) {
        const imp_gguf_tensor *t = imp_gguf_tensor_at(g, i);
        if (!t || !t->name) {
            (*bad)++;
            continue;
        }
        if (imp_gguf_find_tensor(g, t->name) != i) (*bad)++;
        if (t->n_dims < 1 || t->n_dims > IMP_GGUF_MAX_DIMS) (*bad)++;
        for (int d = 0; d < IMP_GGUF_MAX_DIMS; d++) {
            if (t->ne[d] < 0 || ((uint32_t)d >= t->n_dims && t->ne[d] != 1)) (*bad)++;
        }
        if (t->offset % imp_gguf_alignment(g) != 0) (*bad)++;
        if (t->size > 0 &&
            (!t->data || imp_gguf_data_offset(g) + t->offset + t->size > imp_gguf_file_size(g)))
            (*bad)++;
        const uint8_t *p = t->data;
        for (uint64_t k = 0; k < t->size; k++) h = h * 3u + p[k];
    }
    if (imp_gguf_kv_key(g, n_kv) || imp_gguf_kv_value(g, -1) || imp_gguf_tensor_at(g, n_t))
        (*bad)++;
    /* empty names cannot exist (the reader rejects them), so these must miss */
    if (imp_gguf_find_key(g, "") >= 0 || imp_gguf_find_tensor(g, "") >= 0) (*bad)++;
    return h;
}

/* Opens a copy of p[0..n) in a heap block of exactly n bytes (so ASAN sees any over-read). */
typedef struct mem_gguf {
    uint8_t *buf;
    imp_gguf *g;
} mem_gguf;

static inline imp_status mem_open(const void *p, size_t n, mem_gguf *m, imp_error *e) {
    m->buf = malloc(n ? n : 1);
    if (n) memcpy(m->buf, p, n);
    m->g = NULL;
    imp_error_clear(e);
    return imp_gguf_open_memory(m->buf, n, &m->g, e);
}
static inline void mem_close(mem_gguf *m) {
    imp_gguf_close(m->g);
    free(m->buf);
}

#endif
