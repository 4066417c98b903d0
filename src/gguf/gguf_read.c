/*
 * GGUF reader: maps a file (or takes a buffer), validates the whole header, and exposes metadata
 * and tensor descriptions (see gguf.h for the checks and the ownership rules).
 *
 * Untrusted input: every count is checked against the bytes that remain before anything is
 * allocated in proportion to it (an entry of each kind has a minimum encoded size), every length
 * and offset goes through overflow-checked arithmetic, nesting depth is bounded. Allocations are
 * therefore bounded by a small multiple of the file size.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"
#include "gguf/gguf.h"
#include "gguf/gguf_internal.h"
#include "quant/quant.h"

#define GG_MAX_DEPTH     IMP_GGUF_MAX_DEPTH /* nested array depth          */
#define GG_MAX_KEY_LEN   65535  /* the spec's bound on key length         */
#define GG_MAX_NAME_LEN  255    /* tensor names (ggml uses 63)            */
#define GG_MAX_ALIGNMENT (1u << 30)

struct imp_gguf {
    const uint8_t *base;
    uint64_t size;
    int fd_mapped; /* base is an mmap of size bytes */
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;
    int64_t n_kv;
    char **keys;               /* [n_kv] NUL-terminated copies          */
    uint64_t *key_off;         /* [n_kv] file offset of each key (messages) */
    imp_gguf_value *vals;      /* [n_kv]                                */
    int64_t *key_index;        /* [n_kv] indices sorted by key          */
    int64_t n_tensors;
    imp_gguf_tensor *tensors;  /* [n_tensors]                           */
    uint64_t *tensor_off;      /* [n_tensors] file offset of each tensor info */
    int64_t *tensor_index;     /* [n_tensors] indices sorted by name    */
    void **allocs;             /* every other allocation (array parts)  */
    size_t n_allocs, cap_allocs;
};

typedef struct {
    imp_gguf *g;
    uint64_t off;
    imp_error *err;
} gg_cursor;

/* ---- allocation tracking ------------------------------------------------------------------ */

static void *gg_alloc(imp_gguf *g, size_t n, size_t size) {
    if (g->n_allocs == g->cap_allocs) {
        size_t cap = g->cap_allocs ? g->cap_allocs * 2 : 16;
        void **a = imp_malloc_array(cap, sizeof *a);
        if (!a) return NULL;
        if (g->allocs) memcpy(a, g->allocs, g->n_allocs * sizeof *a);
        free(g->allocs);
        g->allocs = a;
        g->cap_allocs = cap;
    }
    void *p = imp_calloc(n ? n : 1, size);
    if (p) g->allocs[g->n_allocs++] = p;
    return p;
}

/* ---- primitive reads ---------------------------------------------------------------------- */

static uint64_t gg_left(const gg_cursor *c) { return c->g->size - c->off; }

static imp_status gg_need(gg_cursor *c, uint64_t n, const char *what) {
    if (n > gg_left(c)) {
        return imp_error_set(c->err, IMP_ERR_FORMAT,
                             "truncated file: %s needs %llu bytes at offset %llu, %llu left", what,
                             (unsigned long long)n, (unsigned long long)c->off,
                             (unsigned long long)gg_left(c));
    }
    return IMP_OK;
}

static imp_status gg_read(gg_cursor *c, void *dst, uint64_t n, const char *what) {
    imp_status st = gg_need(c, n, what);
    if (st != IMP_OK) return st;
    memcpy(dst, c->g->base + c->off, (size_t)n);
    c->off += n;
    return IMP_OK;
}

static imp_status gg_u32(gg_cursor *c, uint32_t *v, const char *what) { return gg_read(c, v, 4, what); }
static imp_status gg_u64(gg_cursor *c, uint64_t *v, const char *what) { return gg_read(c, v, 8, what); }

/* A string: u64 length + bytes, returned as a view into the buffer. */
static imp_status gg_str(gg_cursor *c, imp_gguf_str *s, const char *what) {
    uint64_t at = c->off, len;
    imp_status st = gg_u64(c, &len, what);
    if (st != IMP_OK) return st;
    if (len > gg_left(c)) {
        return imp_error_set(c->err, IMP_ERR_FORMAT,
                             "%s at offset %llu has length %llu, past the end of the file", what,
                             (unsigned long long)at, (unsigned long long)len);
    }
    s->ptr = (const char *)c->g->base + c->off;
    s->len = len;
    c->off += len;
    return IMP_OK;
}

/* ---- values ----------------------------------------------------------------------------- */

static const char *const k_type_names[IMP_GGUF_TYPE_COUNT] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
    "bool", "string", "array", "uint64", "int64", "float64"};

const char *imp_gguf_type_name(imp_gguf_type t) {
    return (unsigned)t < IMP_GGUF_TYPE_COUNT ? k_type_names[t] : "?";
}

uint64_t imp_gguf_scalar_size(imp_gguf_type t) {
    switch (t) {
    case IMP_GGUF_UINT8:
    case IMP_GGUF_INT8:
    case IMP_GGUF_BOOL: return 1;
    case IMP_GGUF_UINT16:
    case IMP_GGUF_INT16: return 2;
    case IMP_GGUF_UINT32:
    case IMP_GGUF_INT32:
    case IMP_GGUF_FLOAT32: return 4;
    case IMP_GGUF_UINT64:
    case IMP_GGUF_INT64:
    case IMP_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* Decodes a little-endian scalar of type t at p into v (type already validated). */
static void gg_decode_scalar(imp_gguf_type t, const uint8_t *p, imp_gguf_value *v) {
    v->type = t;
    switch (t) {
    case IMP_GGUF_UINT8: v->u64 = p[0]; break;
    case IMP_GGUF_INT8: v->i64 = (int8_t)p[0]; break;
    case IMP_GGUF_BOOL: v->b = p[0] != 0; break;
    case IMP_GGUF_UINT16: { uint16_t x; memcpy(&x, p, 2); v->u64 = x; break; }
    case IMP_GGUF_INT16: { int16_t x; memcpy(&x, p, 2); v->i64 = x; break; }
    case IMP_GGUF_UINT32: { uint32_t x; memcpy(&x, p, 4); v->u64 = x; break; }
    case IMP_GGUF_INT32: { int32_t x; memcpy(&x, p, 4); v->i64 = x; break; }
    case IMP_GGUF_FLOAT32: { float x; memcpy(&x, p, 4); v->f64 = x; break; }
    case IMP_GGUF_UINT64: memcpy(&v->u64, p, 8); break;
    case IMP_GGUF_INT64: memcpy(&v->i64, p, 8); break;
    case IMP_GGUF_FLOAT64: memcpy(&v->f64, p, 8); break;
    default: break;
    }
}

static imp_status gg_value(gg_cursor *c, imp_gguf_type t, imp_gguf_value *v, int depth);

static imp_status gg_type(gg_cursor *c, imp_gguf_type *t, const char *what) {
    uint64_t at = c->off;
    uint32_t raw;
    imp_status st = gg_u32(c, &raw, what);
    if (st != IMP_OK) return st;
    if (raw >= IMP_GGUF_TYPE_COUNT) {
        return imp_error_set(c->err, IMP_ERR_FORMAT, "%s at offset %llu is %u, not a GGUF value type",
                             what, (unsigned long long)at, raw);
    }
    *t = (imp_gguf_type)raw;
    return IMP_OK;
}

static imp_status gg_array(gg_cursor *c, imp_gguf_value *v, int depth) {
    uint64_t at = c->off;
    if (depth >= GG_MAX_DEPTH) {
        return imp_error_set(c->err, IMP_ERR_FORMAT, "arrays nested deeper than %d at offset %llu",
                             GG_MAX_DEPTH, (unsigned long long)at);
    }
    imp_gguf_type et = IMP_GGUF_UINT8; /* set by gg_type; initialized for -O3 -Wmaybe-uninitialized */
    uint64_t n;
    imp_status st = gg_type(c, &et, "array element type");
    if (st == IMP_OK) st = gg_u64(c, &n, "array length");
    if (st != IMP_OK) return st;
    /* minimum encoded size of one element: bounds n before anything is allocated */
    uint64_t min = et == IMP_GGUF_STRING ? 8 : et == IMP_GGUF_ARRAY ? 12 : imp_gguf_scalar_size(et);
    if (n > gg_left(c) / min) {
        return imp_error_set(c->err, IMP_ERR_FORMAT,
                             "array at offset %llu claims %llu %s elements, more than the %llu bytes "
                             "left can hold", (unsigned long long)at, (unsigned long long)n,
                             imp_gguf_type_name(et), (unsigned long long)gg_left(c));
    }
    v->type = IMP_GGUF_ARRAY;
    v->arr.elem_type = et;
    v->arr.n = n;
    if (et == IMP_GGUF_STRING) {
        imp_gguf_str *strs = gg_alloc(c->g, (size_t)n, sizeof *strs);
        if (!strs) return imp_error_set(c->err, IMP_ERR_NOMEM, "out of memory for a %llu-string array", (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++) {
            st = gg_str(c, &strs[i], "array string");
            if (st != IMP_OK) return st;
        }
        v->arr.strs = strs;
    } else if (et == IMP_GGUF_ARRAY) {
        imp_gguf_value *elems = gg_alloc(c->g, (size_t)n, sizeof *elems);
        if (!elems) return imp_error_set(c->err, IMP_ERR_NOMEM, "out of memory for a nested array");
        for (uint64_t i = 0; i < n; i++) {
            st = gg_array(c, &elems[i], depth + 1);
            if (st != IMP_OK) return st;
        }
        v->arr.elems = elems;
    } else {
        v->arr.data = c->g->base + c->off;
        c->off += n * min;
        if (et == IMP_GGUF_BOOL) {
            const uint8_t *b = v->arr.data;
            for (uint64_t i = 0; i < n; i++) {
                if (b[i] > 1) {
                    return imp_error_set(c->err, IMP_ERR_FORMAT, "bool array element at offset %llu is %u, not 0 or 1",
                                         (unsigned long long)(c->off - n + i), b[i]);
                }
            }
        }
    }
    return IMP_OK;
}

static imp_status gg_value(gg_cursor *c, imp_gguf_type t, imp_gguf_value *v, int depth) {
    memset(v, 0, sizeof *v);
    if (t == IMP_GGUF_STRING) {
        v->type = t;
        return gg_str(c, &v->str, "string value");
    }
    if (t == IMP_GGUF_ARRAY) return gg_array(c, v, depth);
    uint64_t n = imp_gguf_scalar_size(t);
    imp_status st = gg_need(c, n, imp_gguf_type_name(t));
    if (st != IMP_OK) return st;
    const uint8_t *p = c->g->base + c->off;
    if (t == IMP_GGUF_BOOL && p[0] > 1) {
        return imp_error_set(c->err, IMP_ERR_FORMAT, "bool at offset %llu is %u, not 0 or 1",
                             (unsigned long long)c->off, p[0]);
    }
    gg_decode_scalar(t, p, v);
    c->off += n;
    return IMP_OK;
}

/* ---- sorting and lookup ------------------------------------------------------------------- */

/* "a sorts before or with b" for two entries of whatever the index covers. */
typedef bool (*gg_le_fn)(const void *ctx, int64_t a, int64_t b);

static bool gg_le_name(const void *ctx, int64_t a, int64_t b) {
    const char *const *names = ctx;
    return strcmp(names[a], names[b]) <= 0;
}

static bool gg_le_offset(const void *ctx, int64_t a, int64_t b) {
    const imp_gguf_tensor *t = ctx;
    return t[a].offset <= t[b].offset;
}

/* Sorted index of entries 0..n-1 (stable merge sort; C11's qsort has no context argument).
 * tmp: scratch of n entries. */
static void gg_sort_index(gg_le_fn le, const void *ctx, int64_t *idx, int64_t *tmp, int64_t n) {
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = IMP_MIN(lo + w, n), hi = IMP_MIN(lo + 2 * w, n), i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = le(ctx, idx[i], idx[j]) ? idx[i++] : idx[j++];
            while (i < mid) tmp[k++] = idx[i++];
            while (j < hi) tmp[k++] = idx[j++];
        }
        memcpy(idx, tmp, (size_t)n * sizeof *idx);
    }
}

static int64_t gg_find(const char *const *names, const int64_t *idx, int64_t n, const char *name) {
    int64_t lo = 0, hi = n - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(names[idx[mid]], name);
        if (c == 0) return idx[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* Copies a name out of the file as a NUL-terminated string; rejects embedded NULs. */
static imp_status gg_name_copy(gg_cursor *c, imp_gguf_str s, uint64_t at, uint64_t max, const char *what,
                               char **out) {
    if (s.len == 0 || s.len > max) {
        return imp_error_set(c->err, IMP_ERR_FORMAT, "%s at offset %llu has length %llu (want 1..%llu)",
                             what, (unsigned long long)at, (unsigned long long)s.len, (unsigned long long)max);
    }
    if (memchr(s.ptr, '\0', (size_t)s.len)) {
        return imp_error_set(c->err, IMP_ERR_FORMAT, "%s at offset %llu contains a NUL byte", what,
                             (unsigned long long)at);
    }
    char *p = gg_alloc(c->g, (size_t)s.len + 1, 1);
    if (!p) return imp_error_set(c->err, IMP_ERR_NOMEM, "out of memory");
    memcpy(p, s.ptr, (size_t)s.len);
    *out = p;
    return IMP_OK;
}

/* ---- header ------------------------------------------------------------------------------- */

static imp_status gg_parse_kv(gg_cursor *c) {
    imp_gguf *g = c->g;
    for (int64_t i = 0; i < g->n_kv; i++) {
        uint64_t at = c->off;
        imp_gguf_str key;
        imp_gguf_type t = IMP_GGUF_UINT8;
        g->key_off[i] = at;
        imp_status st = gg_str(c, &key, "metadata key");
        if (st == IMP_OK) st = gg_name_copy(c, key, at, GG_MAX_KEY_LEN, "metadata key", &g->keys[i]);
        if (st == IMP_OK) st = gg_type(c, &t, "metadata value type");
        if (st == IMP_OK) st = gg_value(c, t, &g->vals[i], 0);
        if (st != IMP_OK) {
            if (g->keys[i]) imp_error_prefix(c->err, "key '%s'", g->keys[i]);
            return st;
        }
    }
    int64_t *tmp = imp_malloc_array((size_t)(g->n_kv ? g->n_kv : 1), sizeof *tmp);
    g->key_index = gg_alloc(g, (size_t)g->n_kv, sizeof *g->key_index);
    if (!tmp || !g->key_index) {
        free(tmp);
        return imp_error_set(c->err, IMP_ERR_NOMEM, "out of memory");
    }
    gg_sort_index(gg_le_name, g->keys, g->key_index, tmp, g->n_kv);
    free(tmp);
    for (int64_t i = 1; i < g->n_kv; i++) {
        if (strcmp(g->keys[g->key_index[i - 1]], g->keys[g->key_index[i]]) == 0) {
            /* the sort is stable: [i] is the later occurrence */
            return imp_error_set(c->err, IMP_ERR_FORMAT, "duplicate metadata key '%s' at offset %llu",
                                 g->keys[g->key_index[i]],
                                 (unsigned long long)g->key_off[g->key_index[i]]);
        }
    }
    /* general.alignment: a power of two, any integer type */
    g->alignment = IMP_GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = imp_gguf_find_key(g, "general.alignment");
    if (ai >= 0) {
        uint64_t a = 0;
        imp_status st = imp_gguf_get_u64(g, "general.alignment", &a, c->err);
        if (st != IMP_OK) {
            imp_error_prefix(c->err, "bad general.alignment at offset %llu", (unsigned long long)g->key_off[ai]);
            if (c->err) c->err->status = IMP_ERR_FORMAT;
            return IMP_ERR_FORMAT;
        }
        if (a == 0 || (a & (a - 1)) != 0 || a > GG_MAX_ALIGNMENT) {
            return imp_error_set(c->err, IMP_ERR_FORMAT,
                                 "general.alignment at offset %llu is %llu, not a power of two up to 2^30",
                                 (unsigned long long)g->key_off[ai], (unsigned long long)a);
        }
        g->alignment = a;
    }
    return IMP_OK;
}

static imp_status gg_parse_tensors(gg_cursor *c) {
    imp_gguf *g = c->g;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        imp_gguf_tensor *t = &g->tensors[i];
        uint64_t at = c->off;
        imp_gguf_str name;
        g->tensor_off[i] = at;
        imp_status st = gg_str(c, &name, "tensor name");
        if (st == IMP_OK) st = gg_name_copy(c, name, at, GG_MAX_NAME_LEN, "tensor name", (char **)&t->name);
        if (st == IMP_OK) st = gg_u32(c, &t->n_dims, "tensor dims");
        if (st != IMP_OK) return st;
        if (t->n_dims < 1 || t->n_dims > IMP_GGUF_MAX_DIMS) {
            return imp_error_set(c->err, IMP_ERR_FORMAT, "tensor '%s' at offset %llu has %u dims (want 1..4)",
                                 t->name, (unsigned long long)at, t->n_dims);
        }
        int64_t nelem = 1;
        for (uint32_t d = 0; d < IMP_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t ne;
            if ((st = gg_u64(c, &ne, "tensor dim")) != IMP_OK) return st;
            if (ne == 0) {
                /* ggml accepts empty tensors; no model has one and code downstream divides by
                 * dimensions, so imp does not */
                return imp_error_set(c->err, IMP_ERR_FORMAT, "tensor '%s' at offset %llu: dimension %u is 0",
                                     t->name, (unsigned long long)at, d);
            }
            if (ne > (uint64_t)INT64_MAX || !imp_mul_i64(nelem, (int64_t)ne, &nelem)) {
                return imp_error_set(c->err, IMP_ERR_FORMAT,
                                     "tensor '%s' at offset %llu: element count overflows", t->name,
                                     (unsigned long long)at);
            }
            t->ne[d] = (int64_t)ne;
        }
        if ((st = gg_u32(c, &t->type, "tensor type")) != IMP_OK) return st;
        const imp_type_traits *tr = imp_type_get(t->type);
        if (!tr) {
            return imp_error_set(c->err, IMP_ERR_FORMAT, "tensor '%s' at offset %llu has unknown type id %u",
                                 t->name, (unsigned long long)at, t->type);
        }
        if (t->ne[0] % tr->block_size != 0) {
            return imp_error_set(c->err, IMP_ERR_FORMAT,
                                 "tensor '%s' at offset %llu: row of %lld elements is not a multiple of "
                                 "the %s block size %lld", t->name, (unsigned long long)at,
                                 (long long)t->ne[0], tr->name, (long long)tr->block_size);
        }
        uint64_t rows = (uint64_t)(nelem / t->ne[0]), row_bytes;
        if (!imp_mul_u64((uint64_t)(t->ne[0] / tr->block_size), tr->type_size, &row_bytes) ||
            !imp_mul_u64(row_bytes, rows, &t->size)) {
            return imp_error_set(c->err, IMP_ERR_FORMAT, "tensor '%s' at offset %llu: byte size overflows",
                                 t->name, (unsigned long long)at);
        }
        if ((st = gg_u64(c, &t->offset, "tensor offset")) != IMP_OK) return st;
        if (t->offset % g->alignment != 0) {
            return imp_error_set(c->err, IMP_ERR_FORMAT,
                                 "tensor '%s' at offset %llu: data offset %llu is not a multiple of the "
                                 "alignment %llu", t->name, (unsigned long long)at,
                                 (unsigned long long)t->offset, (unsigned long long)g->alignment);
        }
    }
    return IMP_OK;
}

/* Data section: starts at the aligned end of the header; every tensor inside the file; no two
 * tensors overlap; no duplicate names. */
static imp_status gg_check_data(gg_cursor *c) {
    imp_gguf *g = c->g;
    if (!imp_align_up_u64(c->off, g->alignment, &g->data_offset)) {
        return imp_error_set(c->err, IMP_ERR_FORMAT, "data section start overflows at offset %llu",
                             (unsigned long long)c->off);
    }
    int64_t n = g->n_tensors;
    int64_t *tmp = imp_malloc_array((size_t)(n ? n : 1), sizeof *tmp);
    int64_t *order = imp_malloc_array((size_t)(n ? n : 1), sizeof *order);
    const char **names = imp_malloc_array((size_t)(n ? n : 1), sizeof *names);
    g->tensor_index = gg_alloc(g, (size_t)n, sizeof *g->tensor_index);
    imp_status st = IMP_OK;
    if (!tmp || !order || !names || !g->tensor_index) {
        st = imp_error_set(c->err, IMP_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        const imp_gguf_tensor *t = &g->tensors[i];
        names[i] = t->name;
        uint64_t start, end;
        if (!imp_add_u64(g->data_offset, t->offset, &start) || !imp_add_u64(start, t->size, &end) ||
            (t->size > 0 && end > g->size)) {
            st = imp_error_set(c->err, IMP_ERR_FORMAT,
                               "tensor '%s' at offset %llu: data offset %llu + %llu bytes runs past the "
                               "end of the file (%llu bytes)", t->name, (unsigned long long)g->tensor_off[i],
                               (unsigned long long)t->offset, (unsigned long long)t->size,
                               (unsigned long long)g->size);
            goto done;
        }
    }
    gg_sort_index(gg_le_name, names, g->tensor_index, tmp, n);
    for (int64_t i = 1; i < n; i++) {
        if (strcmp(names[g->tensor_index[i - 1]], names[g->tensor_index[i]]) == 0) {
            st = imp_error_set(c->err, IMP_ERR_FORMAT, "duplicate tensor name '%s' at offset %llu",
                               names[g->tensor_index[i]],
                               (unsigned long long)g->tensor_off[g->tensor_index[i]]);
            goto done;
        }
    }
    /* overlap: order by offset, then neighbours must not intersect */
    gg_sort_index(gg_le_offset, g->tensors, order, tmp, n);
    for (int64_t i = 1; i < n; i++) {
        const imp_gguf_tensor *a = &g->tensors[order[i - 1]], *b = &g->tensors[order[i]];
        if (a->offset + a->size > b->offset) {
            st = imp_error_set(c->err, IMP_ERR_FORMAT,
                               "tensor '%s' at offset %llu overlaps tensor '%s' in the data section",
                               b->name, (unsigned long long)g->tensor_off[order[i]], a->name);
            goto done;
        }
    }
    for (int64_t i = 0; i < n; i++) {
        imp_gguf_tensor *t = &g->tensors[i];
        t->data = g->base + g->data_offset + t->offset;
    }
done:
    free(order);
    free(tmp);
    free(names);
    return st;
}

static imp_status gg_parse(imp_gguf *g, imp_error *err) {
    gg_cursor c = {g, 0, err};
    uint32_t magic;
    imp_status st = gg_u32(&c, &magic, "magic");
    if (st != IMP_OK) return st;
    if (magic != IMP_GGUF_MAGIC) {
        return imp_error_set(err, IMP_ERR_FORMAT, "not a GGUF file: bad magic at offset 0");
    }
    if ((st = gg_u32(&c, &g->version, "version")) != IMP_OK) return st;
    if (g->version != 2 && g->version != 3) {
        uint32_t v = g->version, sw = (v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24);
        if (sw >= 1 && sw <= 3) {
            return imp_error_set(err, IMP_ERR_UNSUPPORTED,
                                 "big-endian GGUF (version %u byte-swapped at offset 4) is not supported", sw);
        }
        return imp_error_set(err, IMP_ERR_UNSUPPORTED, "GGUF version %u at offset 4 is not supported (want 2 or 3)", v);
    }
    uint64_t nt, nkv;
    if ((st = gg_u64(&c, &nt, "tensor count")) != IMP_OK) return st;
    if ((st = gg_u64(&c, &nkv, "metadata count")) != IMP_OK) return st;
    /* a key/value is at least 8+1+4+1 bytes; a tensor info at least 8+1+4+8+4+8 */
    if (nkv > gg_left(&c) / 14) {
        return imp_error_set(err, IMP_ERR_FORMAT,
                             "metadata count %llu at offset 16 exceeds what the %llu bytes after it can hold",
                             (unsigned long long)nkv, (unsigned long long)gg_left(&c));
    }
    if (nt > gg_left(&c) / 33) {
        return imp_error_set(err, IMP_ERR_FORMAT,
                             "tensor count %llu at offset 8 exceeds what the %llu bytes after it can hold",
                             (unsigned long long)nt, (unsigned long long)gg_left(&c));
    }
    g->n_kv = (int64_t)nkv;
    g->n_tensors = (int64_t)nt;
    g->keys = gg_alloc(g, (size_t)nkv, sizeof *g->keys);
    g->vals = gg_alloc(g, (size_t)nkv, sizeof *g->vals);
    g->key_off = gg_alloc(g, (size_t)nkv, sizeof *g->key_off);
    g->tensors = gg_alloc(g, (size_t)nt, sizeof *g->tensors);
    g->tensor_off = gg_alloc(g, (size_t)nt, sizeof *g->tensor_off);
    if (!g->keys || !g->vals || !g->key_off || !g->tensors || !g->tensor_off)
        return imp_error_set(err, IMP_ERR_NOMEM, "out of memory for the header at offset 24");
    if ((st = gg_parse_kv(&c)) != IMP_OK) return st;
    if ((st = gg_parse_tensors(&c)) != IMP_OK) return st;
    return gg_check_data(&c);
}

static imp_status gg_open_common(imp_gguf *g, imp_gguf **out, imp_error *err) {
    imp_status st = gg_parse(g, err);
    if (st != IMP_OK) {
        imp_gguf_close(g);
        return st;
    }
    *out = g;
    return IMP_OK;
}

imp_status imp_gguf_open_memory(const void *data, size_t size, imp_gguf **out, imp_error *err) {
    if (!out) return imp_error_set(err, IMP_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!data && size) return imp_error_set(err, IMP_ERR_INVALID_ARG, "data is NULL");
    imp_gguf *g = calloc(1, sizeof *g);
    if (!g) return imp_error_set(err, IMP_ERR_NOMEM, "out of memory");
    static const uint8_t empty[1] = {0};
    g->base = data ? data : empty;
    g->size = size;
    return gg_open_common(g, out, err);
}

imp_status imp_gguf_open(const char *path, imp_gguf **out, imp_error *err) {
    if (!out || !path) return imp_error_set(err, IMP_ERR_INVALID_ARG, "path or out is NULL");
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return imp_error_set(err, IMP_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return imp_error_set(err, IMP_ERR_IO, "not a regular file");
    }
    imp_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        close(fd);
        return imp_error_set(err, IMP_ERR_NOMEM, "out of memory");
    }
    g->size = (uint64_t)sb.st_size;
    if (g->size == 0) {
        close(fd);
        free(g);
        return imp_error_set(err, IMP_ERR_FORMAT, "truncated file: empty (0 bytes) at offset 0");
    }
    void *m = mmap(NULL, (size_t)g->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        free(g);
        return imp_error_set(err, IMP_ERR_IO, "mmap failed: %s", strerror(errno));
    }
    g->base = m;
    g->fd_mapped = 1;
    return gg_open_common(g, out, err);
}

void imp_gguf_close(imp_gguf *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_allocs; i++) free(g->allocs[i]);
    free(g->allocs);
    if (g->fd_mapped) munmap((void *)g->base, (size_t)g->size);
    free(g);
}

/* ---- accessors ---------------------------------------------------------------------------- */

uint32_t imp_gguf_version(const imp_gguf *g) { return g->version; }
uint64_t imp_gguf_alignment(const imp_gguf *g) { return g->alignment; }
uint64_t imp_gguf_data_offset(const imp_gguf *g) { return g->data_offset; }
uint64_t imp_gguf_file_size(const imp_gguf *g) { return g->size; }
int64_t imp_gguf_n_kv(const imp_gguf *g) { return g->n_kv; }
int64_t imp_gguf_n_tensors(const imp_gguf *g) { return g->n_tensors; }

const char *imp_gguf_kv_key(const imp_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? g->keys[i] : NULL;
}

const imp_gguf_value *imp_gguf_kv_value(const imp_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? &g->vals[i] : NULL;
}

int64_t imp_gguf_find_key(const imp_gguf *g, const char *key) {
    if (!key || !g->key_index) return -1;
    return gg_find((const char *const *)g->keys, g->key_index, g->n_kv, key);
}

const imp_gguf_tensor *imp_gguf_tensor_at(const imp_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

int64_t imp_gguf_find_tensor(const imp_gguf *g, const char *name) {
    if (!name || !g->tensor_index || g->n_tensors == 0) return -1;
    int64_t lo = 0, hi = g->n_tensors - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->tensors[g->tensor_index[mid]].name, name);
        if (c == 0) return g->tensor_index[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* ---- typed getters ------------------------------------------------------------------------ */

static imp_status gg_lookup(const imp_gguf *g, const char *key, const imp_gguf_value **v, imp_error *err) {
    int64_t i = imp_gguf_find_key(g, key);
    if (i < 0) return imp_error_set(err, IMP_ERR_NOT_FOUND, "key '%s' not found", key ? key : "(null)");
    *v = &g->vals[i];
    return IMP_OK;
}

static bool gg_is_unsigned(imp_gguf_type t) {
    return t == IMP_GGUF_UINT8 || t == IMP_GGUF_UINT16 || t == IMP_GGUF_UINT32 || t == IMP_GGUF_UINT64;
}
static bool gg_is_signed(imp_gguf_type t) {
    return t == IMP_GGUF_INT8 || t == IMP_GGUF_INT16 || t == IMP_GGUF_INT32 || t == IMP_GGUF_INT64;
}

/* Integer value of v within [lo, hi] (as signed 128-bit-free logic: unsigned above INT64_MAX
 * only fits an unsigned range). */
static imp_status gg_get_int(const imp_gguf *g, const char *key, const char *want, bool want_unsigned,
                             int64_t lo, uint64_t hi, uint64_t *u, int64_t *s, imp_error *err) {
    const imp_gguf_value *v = NULL;
    imp_status st = gg_lookup(g, key, &v, err);
    if (st != IMP_OK) return st;
    if (gg_is_unsigned(v->type)) {
        if (v->u64 > hi) goto range;
        if (u) *u = v->u64;
        if (s) *s = (int64_t)v->u64;
        return IMP_OK;
    }
    if (gg_is_signed(v->type)) {
        if (v->i64 < lo || (v->i64 >= 0 && (uint64_t)v->i64 > hi)) goto range;
        if (want_unsigned && v->i64 < 0) goto range;
        if (u) *u = (uint64_t)v->i64;
        if (s) *s = v->i64;
        return IMP_OK;
    }
    return imp_error_set(err, IMP_ERR_TYPE, "key '%s' is %s, expected %s", key, imp_gguf_type_name(v->type), want);
range:
    return imp_error_set(err, IMP_ERR_RANGE, "key '%s' has a value out of range for %s", key, want);
}

imp_status imp_gguf_get_u32(const imp_gguf *g, const char *key, uint32_t *v, imp_error *err) {
    uint64_t u = 0;
    imp_status st = gg_get_int(g, key, "uint32", true, 0, UINT32_MAX, &u, NULL, err);
    if (st == IMP_OK) *v = (uint32_t)u;
    return st;
}

imp_status imp_gguf_get_i32(const imp_gguf *g, const char *key, int32_t *v, imp_error *err) {
    int64_t s = 0;
    imp_status st = gg_get_int(g, key, "int32", false, INT32_MIN, INT32_MAX, NULL, &s, err);
    if (st == IMP_OK) *v = (int32_t)s;
    return st;
}

imp_status imp_gguf_get_u64(const imp_gguf *g, const char *key, uint64_t *v, imp_error *err) {
    return gg_get_int(g, key, "uint64", true, 0, UINT64_MAX, v, NULL, err);
}

imp_status imp_gguf_get_i64(const imp_gguf *g, const char *key, int64_t *v, imp_error *err) {
    return gg_get_int(g, key, "int64", false, INT64_MIN, INT64_MAX, NULL, v, err);
}

imp_status imp_gguf_get_f32(const imp_gguf *g, const char *key, float *v, imp_error *err) {
    const imp_gguf_value *x = NULL;
    imp_status st = gg_lookup(g, key, &x, err);
    if (st != IMP_OK) return st;
    if (x->type != IMP_GGUF_FLOAT32 && x->type != IMP_GGUF_FLOAT64) {
        return imp_error_set(err, IMP_ERR_TYPE, "key '%s' is %s, expected float32", key, imp_gguf_type_name(x->type));
    }
    if (isfinite(x->f64) && (x->f64 > FLT_MAX || x->f64 < -FLT_MAX)) {
        return imp_error_set(err, IMP_ERR_RANGE, "key '%s' = %g does not fit float32", key, x->f64);
    }
    *v = (float)x->f64;
    return IMP_OK;
}

imp_status imp_gguf_get_bool(const imp_gguf *g, const char *key, bool *v, imp_error *err) {
    const imp_gguf_value *x = NULL;
    imp_status st = gg_lookup(g, key, &x, err);
    if (st != IMP_OK) return st;
    if (x->type != IMP_GGUF_BOOL) {
        return imp_error_set(err, IMP_ERR_TYPE, "key '%s' is %s, expected bool", key, imp_gguf_type_name(x->type));
    }
    *v = x->b;
    return IMP_OK;
}

imp_status imp_gguf_get_str(const imp_gguf *g, const char *key, imp_gguf_str *v, imp_error *err) {
    const imp_gguf_value *x = NULL;
    imp_status st = gg_lookup(g, key, &x, err);
    if (st != IMP_OK) return st;
    if (x->type != IMP_GGUF_STRING) {
        return imp_error_set(err, IMP_ERR_TYPE, "key '%s' is %s, expected string", key, imp_gguf_type_name(x->type));
    }
    *v = x->str;
    return IMP_OK;
}

imp_status imp_gguf_get_arr(const imp_gguf *g, const char *key, const imp_gguf_value **v, imp_error *err) {
    const imp_gguf_value *x = NULL;
    imp_status st = gg_lookup(g, key, &x, err);
    if (st != IMP_OK) return st;
    if (x->type != IMP_GGUF_ARRAY) {
        return imp_error_set(err, IMP_ERR_TYPE, "key '%s' is %s, expected array", key, imp_gguf_type_name(x->type));
    }
    *v = x;
    return IMP_OK;
}

static bool gg_arr_elem(const imp_gguf_value *arr, uint64_t i, imp_gguf_value *out) {
    if (!arr || arr->type != IMP_GGUF_ARRAY || i >= arr->arr.n) return false;
    uint64_t sz = imp_gguf_scalar_size(arr->arr.elem_type);
    if (sz == 0) return false;
    gg_decode_scalar(arr->arr.elem_type, (const uint8_t *)arr->arr.data + i * sz, out);
    return true;
}

bool imp_gguf_arr_f64(const imp_gguf_value *arr, uint64_t i, double *out) {
    imp_gguf_value v;
    if (!gg_arr_elem(arr, i, &v)) return false;
    if (v.type == IMP_GGUF_FLOAT32 || v.type == IMP_GGUF_FLOAT64) *out = v.f64;
    else if (gg_is_unsigned(v.type)) *out = (double)v.u64;
    else if (gg_is_signed(v.type)) *out = (double)v.i64;
    else *out = v.b ? 1.0 : 0.0;
    return true;
}

bool imp_gguf_arr_i64(const imp_gguf_value *arr, uint64_t i, int64_t *out) {
    imp_gguf_value v;
    if (!gg_arr_elem(arr, i, &v)) return false;
    if (gg_is_unsigned(v.type)) {
        if (v.u64 > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)v.u64;
    } else if (gg_is_signed(v.type)) {
        *out = v.i64;
    } else if (v.type == IMP_GGUF_BOOL) {
        *out = v.b;
    } else {
        return false;
    }
    return true;
}
