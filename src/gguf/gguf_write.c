/*
 * GGUF writer: metadata values are serialized as they are set (so replacing a key is replacing
 * its bytes), tensors are described up front, then imp_gguf_writer_write streams header and data
 * to PATH.tmp and renames it over PATH. Tensor bytes come from the caller's pointer or from the
 * fill callback, into one reused buffer sized for the largest such tensor.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/mem.h"
#include "gguf/gguf.h"
#include "gguf/gguf_internal.h"
#include "quant/quant.h"

#define GW_MAX_NAME 63 /* ggml's GGML_MAX_NAME (64) counts the NUL */

typedef struct {
    uint8_t *p;
    size_t len, cap;
    int oom;
} gw_buf;

typedef struct {
    char *key;
    imp_gguf_type type;
    gw_buf val; /* encoded value (without key and type) */
} gw_kv;

typedef struct {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[IMP_GGUF_MAX_DIMS];
    const void *data;
    uint64_t size, offset;
} gw_tensor;

struct imp_gguf_writer {
    gw_kv *kv;
    size_t n_kv, cap_kv;
    gw_tensor *t;
    size_t n_t, cap_t;
};

/* ---- byte buffer ---------------------------------------------------------------------------- */

static void gw_put(gw_buf *b, const void *src, size_t n) {
    if (b->oom || n == 0) return;
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = 1;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}
static void gw_u32(gw_buf *b, uint32_t v) { gw_put(b, &v, 4); }
static void gw_u64(gw_buf *b, uint64_t v) { gw_put(b, &v, 8); }
static void gw_str(gw_buf *b, const char *s, uint64_t len) {
    gw_u64(b, len);
    gw_put(b, s, (size_t)len);
}

/* ---- writer ------------------------------------------------------------------------------- */

imp_gguf_writer *imp_gguf_writer_new(void) { return calloc(1, sizeof(imp_gguf_writer)); }

void imp_gguf_writer_free(imp_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val.p);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

/* The slot for key (existing, cleared; or new). NULL on allocation failure. */
static gw_kv *gw_slot(imp_gguf_writer *w, const char *key, imp_gguf_type type) {
    if (!w || !key || !*key) return NULL;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            w->kv[i].val.len = 0;
            w->kv[i].val.oom = 0;
            w->kv[i].type = type;
            return &w->kv[i];
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        gw_kv *kv = realloc(w->kv, cap * sizeof *kv);
        if (!kv) return NULL;
        w->kv = kv;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) return NULL;
    gw_kv *s = &w->kv[w->n_kv++];
    memset(s, 0, sizeof *s);
    s->key = k;
    s->type = type;
    return s;
}

static imp_status gw_done(gw_kv *s) {
    if (!s) return IMP_ERR_NOMEM;
    return s->val.oom ? IMP_ERR_NOMEM : IMP_OK;
}

static imp_status gw_scalar(imp_gguf_writer *w, const char *key, imp_gguf_type t, const void *v) {
    if (!w || !key || !*key) return IMP_ERR_INVALID_ARG;
    gw_kv *s = gw_slot(w, key, t);
    if (s) gw_put(&s->val, v, (size_t)imp_gguf_scalar_size(t));
    return gw_done(s);
}

imp_status imp_gguf_writer_set_u8(imp_gguf_writer *w, const char *k, uint8_t v) { return gw_scalar(w, k, IMP_GGUF_UINT8, &v); }
imp_status imp_gguf_writer_set_i8(imp_gguf_writer *w, const char *k, int8_t v) { return gw_scalar(w, k, IMP_GGUF_INT8, &v); }
imp_status imp_gguf_writer_set_u16(imp_gguf_writer *w, const char *k, uint16_t v) { return gw_scalar(w, k, IMP_GGUF_UINT16, &v); }
imp_status imp_gguf_writer_set_i16(imp_gguf_writer *w, const char *k, int16_t v) { return gw_scalar(w, k, IMP_GGUF_INT16, &v); }
imp_status imp_gguf_writer_set_u32(imp_gguf_writer *w, const char *k, uint32_t v) { return gw_scalar(w, k, IMP_GGUF_UINT32, &v); }
imp_status imp_gguf_writer_set_i32(imp_gguf_writer *w, const char *k, int32_t v) { return gw_scalar(w, k, IMP_GGUF_INT32, &v); }
imp_status imp_gguf_writer_set_u64(imp_gguf_writer *w, const char *k, uint64_t v) { return gw_scalar(w, k, IMP_GGUF_UINT64, &v); }
imp_status imp_gguf_writer_set_i64(imp_gguf_writer *w, const char *k, int64_t v) { return gw_scalar(w, k, IMP_GGUF_INT64, &v); }
imp_status imp_gguf_writer_set_f32(imp_gguf_writer *w, const char *k, float v) { return gw_scalar(w, k, IMP_GGUF_FLOAT32, &v); }
imp_status imp_gguf_writer_set_f64(imp_gguf_writer *w, const char *k, double v) { return gw_scalar(w, k, IMP_GGUF_FLOAT64, &v); }

imp_status imp_gguf_writer_set_bool(imp_gguf_writer *w, const char *k, bool v) {
    uint8_t b = v ? 1 : 0;
    return gw_scalar(w, k, IMP_GGUF_BOOL, &b);
}

imp_status imp_gguf_writer_set_str(imp_gguf_writer *w, const char *key, const char *str) {
    if (!w || !key || !*key || !str) return IMP_ERR_INVALID_ARG;
    gw_kv *s = gw_slot(w, key, IMP_GGUF_STRING);
    if (s) gw_str(&s->val, str, strlen(str));
    return gw_done(s);
}

imp_status imp_gguf_writer_set_arr(imp_gguf_writer *w, const char *key, imp_gguf_type et,
                                   const void *data, uint64_t n) {
    uint64_t sz = imp_gguf_scalar_size(et), bytes;
    if (!w || !key || !*key || sz == 0 || (n && !data) || !imp_mul_u64(sz, n, &bytes) || bytes > SIZE_MAX) {
        return IMP_ERR_INVALID_ARG;
    }
    if (et == IMP_GGUF_BOOL) { /* readers (ours included) reject other bytes */
        for (uint64_t i = 0; i < n; i++) {
            if (((const uint8_t *)data)[i] > 1) return IMP_ERR_INVALID_ARG;
        }
    }
    gw_kv *s = gw_slot(w, key, IMP_GGUF_ARRAY);
    if (s) {
        gw_u32(&s->val, (uint32_t)et);
        gw_u64(&s->val, n);
        gw_put(&s->val, data, (size_t)bytes);
    }
    return gw_done(s);
}

imp_status imp_gguf_writer_set_arr_str(imp_gguf_writer *w, const char *key, const char *const *strs,
                                       uint64_t n) {
    if (!w || !key || !*key || (n && !strs)) return IMP_ERR_INVALID_ARG;
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i]) return IMP_ERR_INVALID_ARG;
    }
    gw_kv *s = gw_slot(w, key, IMP_GGUF_ARRAY);
    if (s) {
        gw_u32(&s->val, IMP_GGUF_STRING);
        gw_u64(&s->val, n);
        for (uint64_t i = 0; i < n; i++) gw_str(&s->val, strs[i], strlen(strs[i]));
    }
    return gw_done(s);
}

/* Checks that v can be encoded (types known, pointers present, nesting bounded) before any
 * byte of it is written, so a failed set_value leaves the key as it was. */
static bool gw_value_ok(const imp_gguf_value *v, int depth) {
    if ((unsigned)v->type >= IMP_GGUF_TYPE_COUNT) return false;
    if (v->type == IMP_GGUF_STRING) return v->str.ptr || v->str.len == 0;
    if (v->type != IMP_GGUF_ARRAY) return true;
    if (depth >= IMP_GGUF_MAX_DEPTH || (unsigned)v->arr.elem_type >= IMP_GGUF_TYPE_COUNT) return false;
    const imp_gguf_type et = v->arr.elem_type;
    const uint64_t n = v->arr.n;
    if (et == IMP_GGUF_STRING) {
        if (n && !v->arr.strs) return false;
        for (uint64_t i = 0; i < n; i++) {
            if (v->arr.strs[i].len && !v->arr.strs[i].ptr) return false;
        }
        return true;
    }
    if (et == IMP_GGUF_ARRAY) {
        if (n && !v->arr.elems) return false;
        for (uint64_t i = 0; i < n; i++) {
            if (v->arr.elems[i].type != IMP_GGUF_ARRAY || !gw_value_ok(&v->arr.elems[i], depth + 1)) return false;
        }
        return true;
    }
    uint64_t bytes;
    if (n && !v->arr.data) return false;
    if (!imp_mul_u64(n, imp_gguf_scalar_size(et), &bytes) || bytes > SIZE_MAX) return false;
    if (et == IMP_GGUF_BOOL) {
        for (uint64_t i = 0; i < n; i++) {
            if (((const uint8_t *)v->arr.data)[i] > 1) return false;
        }
    }
    return true;
}

/* Encodes a value (any type, nested arrays too; checked by gw_value_ok). */
static void gw_encode_value(gw_buf *b, const imp_gguf_value *v) {
    uint64_t sz = imp_gguf_scalar_size(v->type);
    if (v->type == IMP_GGUF_STRING) {
        gw_str(b, v->str.ptr, v->str.len);
    } else if (v->type == IMP_GGUF_ARRAY) {
        imp_gguf_type et = v->arr.elem_type;
        gw_u32(b, (uint32_t)et);
        gw_u64(b, v->arr.n);
        if (et == IMP_GGUF_STRING) {
            for (uint64_t i = 0; i < v->arr.n; i++) gw_str(b, v->arr.strs[i].ptr, v->arr.strs[i].len);
        } else if (et == IMP_GGUF_ARRAY) {
            for (uint64_t i = 0; i < v->arr.n; i++) gw_encode_value(b, &v->arr.elems[i]);
        } else {
            gw_put(b, v->arr.data, (size_t)(v->arr.n * imp_gguf_scalar_size(et)));
        }
    } else if (sz > 0) {
        /* scalars were widened on read: narrow them back (little-endian host) */
        uint8_t raw[8];
        if (v->type == IMP_GGUF_FLOAT32) {
            float f = (float)v->f64;
            memcpy(raw, &f, 4);
        } else if (v->type == IMP_GGUF_FLOAT64) {
            memcpy(raw, &v->f64, 8);
        } else if (v->type == IMP_GGUF_BOOL) {
            raw[0] = v->b ? 1 : 0;
        } else {
            memcpy(raw, &v->u64, 8); /* low bytes of u64/i64 are the narrow value */
        }
        gw_put(b, raw, (size_t)sz);
    }
}

imp_status imp_gguf_writer_set_value(imp_gguf_writer *w, const char *key, const imp_gguf_value *v) {
    if (!w || !key || !*key || !v || !gw_value_ok(v, 0)) return IMP_ERR_INVALID_ARG;
    gw_kv *s = gw_slot(w, key, v->type);
    if (s) gw_encode_value(&s->val, v);
    return gw_done(s);
}

imp_status imp_gguf_writer_add_tensor(imp_gguf_writer *w, const char *name, uint32_t type,
                                      uint32_t n_dims, const int64_t *ne, const void *data,
                                      imp_error *err) {
    if (!w || !name || !*name || !ne) return imp_error_set(err, IMP_ERR_INVALID_ARG, "bad tensor arguments");
    if (strlen(name) > GW_MAX_NAME) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "tensor name '%.80s...' is longer than %d bytes (ggml's limit)",
                             name, GW_MAX_NAME);
    }
    const imp_type_traits *tr = imp_type_get(type);
    if (!tr) return imp_error_set(err, IMP_ERR_INVALID_ARG, "tensor '%s': unknown type id %u", name, type);
    if (n_dims < 1 || n_dims > IMP_GGUF_MAX_DIMS) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "tensor '%s': %u dims (want 1..4)", name, n_dims);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        if (strcmp(w->t[i].name, name) == 0) {
            return imp_error_set(err, IMP_ERR_INVALID_ARG, "duplicate tensor name '%s'", name);
        }
    }
    gw_tensor t = {.type = type, .n_dims = n_dims, .data = data};
    uint64_t rows = 1;
    for (uint32_t d = 0; d < IMP_GGUF_MAX_DIMS; d++) t.ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] < 1) {
            return imp_error_set(err, IMP_ERR_INVALID_ARG, "tensor '%s': ne[%u] is %lld (must be >= 1)", name, d,
                                 (long long)ne[d]);
        }
        t.ne[d] = ne[d];
        if (d > 0 && !imp_mul_u64(rows, (uint64_t)ne[d], &rows)) {
            return imp_error_set(err, IMP_ERR_INVALID_ARG, "tensor '%s': size overflows", name);
        }
    }
    if (t.ne[0] % tr->block_size != 0) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG,
                             "tensor '%s': row of %lld is not a multiple of the %s block size %lld",
                             name, (long long)t.ne[0], tr->name, (long long)tr->block_size);
    }
    uint64_t row_bytes;
    if (!imp_mul_u64((uint64_t)(t.ne[0] / tr->block_size), tr->type_size, &row_bytes) ||
        !imp_mul_u64(row_bytes, rows, &t.size) || t.size > SIZE_MAX) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "tensor '%s': size overflows", name);
    }
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 64;
        gw_tensor *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt) return imp_error_set(err, IMP_ERR_NOMEM, "out of memory");
        w->t = nt;
        w->cap_t = cap;
    }
    t.name = strdup(name);
    if (!t.name) return imp_error_set(err, IMP_ERR_NOMEM, "out of memory");
    w->t[w->n_t++] = t;
    return IMP_OK;
}

/* ---- output ------------------------------------------------------------------------------- */

static imp_status gw_write_all(int fd, const void *p, uint64_t n, const char *path, imp_error *err) {
    const uint8_t *b = p;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t k = write(fd, b, chunk);
        if (k < 0) {
            if (errno == EINTR) continue;
            return imp_error_set(err, IMP_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        }
        b += k;
        n -= (uint64_t)k;
    }
    return IMP_OK;
}

static imp_status gw_pad(int fd, uint64_t n, const char *path, imp_error *err) {
    static const uint8_t zeros[256] = {0};
    while (n > 0) {
        uint64_t k = n > sizeof zeros ? sizeof zeros : n;
        imp_status st = gw_write_all(fd, zeros, k, path, err);
        if (st != IMP_OK) return st;
        n -= k;
    }
    return IMP_OK;
}

/* The alignment the file will declare: general.alignment if set, else 32. It must be a uint32
 * nonzero power of two (gguf-py accepts no other type): anything else is an error, as the
 * file would otherwise declare one alignment and be padded to another. */
static imp_status gw_alignment(const imp_gguf_writer *w, uint64_t *align, imp_error *err) {
    *align = IMP_GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        const gw_kv *s = &w->kv[i];
        if (strcmp(s->key, "general.alignment") != 0) continue;
        uint32_t a = 0;
        if (s->type != IMP_GGUF_UINT32 || s->val.len != 4) {
            return imp_error_set(err, IMP_ERR_INVALID_ARG, "general.alignment is %s; set it as a uint32",
                                 imp_gguf_type_name(s->type));
        }
        memcpy(&a, s->val.p, 4);
        if (a == 0 || (a & (a - 1)) != 0) {
            return imp_error_set(err, IMP_ERR_INVALID_ARG, "general.alignment %u is not a power of two", a);
        }
        *align = a;
    }
    return IMP_OK;
}

imp_status imp_gguf_writer_write(imp_gguf_writer *w, const char *path, imp_gguf_fill_fn fill,
                                 void *user, imp_error *err) {
    if (!w || !path) return imp_error_set(err, IMP_ERR_INVALID_ARG, "writer or path is NULL");
    uint64_t align;
    imp_status ast = gw_alignment(w, &align, err);
    if (ast != IMP_OK) return ast;
    gw_buf h = {0};
    gw_u32(&h, IMP_GGUF_MAGIC);
    gw_u32(&h, 3);
    gw_u64(&h, (uint64_t)w->n_t);
    gw_u64(&h, (uint64_t)w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        gw_str(&h, w->kv[i].key, strlen(w->kv[i].key));
        gw_u32(&h, (uint32_t)w->kv[i].type);
        gw_put(&h, w->kv[i].val.p, w->kv[i].val.len);
    }
    uint64_t off = 0, max_fill = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        gw_tensor *t = &w->t[i];
        t->offset = off;
        gw_str(&h, t->name, strlen(t->name));
        gw_u32(&h, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) gw_u64(&h, (uint64_t)t->ne[d]);
        gw_u32(&h, t->type);
        gw_u64(&h, t->offset);
        if (!imp_add_u64(off, t->size, &off) || !imp_align_up_u64(off, align, &off)) {
            free(h.p);
            return imp_error_set(err, IMP_ERR_INVALID_ARG, "total tensor size overflows");
        }
        if (!t->data && t->size > max_fill) max_fill = t->size;
    }
    if (h.oom) {
        free(h.p);
        return imp_error_set(err, IMP_ERR_NOMEM, "out of memory for the header");
    }
    if (max_fill > 0 && !fill) {
        free(h.p);
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "a tensor has no data and no fill callback was given");
    }
    uint8_t *buf = NULL;
    if (max_fill > 0) {
        buf = max_fill <= SIZE_MAX ? malloc((size_t)max_fill) : NULL;
        if (!buf) {
            free(h.p);
            return imp_error_set(err, IMP_ERR_NOMEM, "out of memory for a %llu-byte tensor buffer",
                                 (unsigned long long)max_fill);
        }
    }

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    imp_status st = IMP_OK;
    int fd = -1;
    if (!tmp) {
        st = imp_error_set(err, IMP_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = imp_error_set(err, IMP_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    uint64_t header_end;
    imp_align_up_u64(h.len, align, &header_end);
    st = gw_write_all(fd, h.p, h.len, tmp, err);
    if (st == IMP_OK) st = gw_pad(fd, header_end - h.len, tmp, err);
    uint64_t pos = 0;
    for (size_t i = 0; st == IMP_OK && i < w->n_t; i++) {
        gw_tensor *t = &w->t[i];
        const void *src = t->data;
        if (!src && t->size > 0) {
            if (err) imp_error_clear(err);
            st = fill(user, (int64_t)i, buf, t->size, err);
            if (st != IMP_OK) {
                if (err && !err->msg[0]) imp_error_set(err, st, "fill callback failed");
                imp_error_prefix(err, "tensor '%s'", t->name);
                break;
            }
            src = buf;
        }
        if (t->size > 0) st = gw_write_all(fd, src, t->size, tmp, err);
        pos = t->offset + t->size;
        uint64_t next;
        imp_align_up_u64(pos, align, &next);
        if (st == IMP_OK) st = gw_pad(fd, next - pos, tmp, err);
    }
    if (st == IMP_OK && close(fd) != 0) {
        st = imp_error_set(err, IMP_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
        fd = -1;
    } else if (st == IMP_OK) {
        fd = -1;
    }
    if (st == IMP_OK && rename(tmp, path) != 0) {
        st = imp_error_set(err, IMP_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    }
done:
    if (fd >= 0) close(fd);
    if (st != IMP_OK && tmp) unlink(tmp);
    free(tmp);
    free(buf);
    free(h.p);
    return st;
}
