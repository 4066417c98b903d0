/*
 * Tests for src/gguf (reader and writer); hand-made bad files are in test_gguf_bad.c.
 *
 *  - round trip: every metadata type (all integer widths, bools, floats, strings, arrays of each,
 *    string arrays, nested arrays), key replacement, tensors of several types/shapes from data
 *    pointers and from the fill callback, general.alignment honoured; read back from the file
 *    (mmap) and from memory; set_value copies reproduce the file byte for byte;
 *  - typed getters: conversions between integer widths, range and type errors and their messages;
 *  - writer errors: bad tensors, bad alignment, failing fill callback (no file, no .tmp left,
 *    an existing file untouched);
 *  - every truncation of two small files, and thousands of seeded random mutations of valid
 *    files (bit flips, byte sets, huge counts/lengths/dims, inserted/deleted/duplicated spans):
 *    open returns OK or an error with a message, never crashes (the sanitizer build catches
 *    memory errors), and what a successful open exposes is consistent (gguf_walk.h);
 *  - scale: thousands of keys and tensors found by name; tensors bigger than the write buffer.
 * Usage: test_gguf [MUTATIONS] (default 20000).
 */
#define _POSIX_C_SOURCE 200809L

#include <float.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "gguf_walk.h"
#include "quant/quant.h"
#include "testutil.h"

static uint8_t pattern(int64_t tensor, uint64_t k) {
    return (uint8_t)(k * 131u + (uint64_t)tensor * 17u + 7u);
}

static imp_status fill_pattern(void *user, int64_t index, void *buf, uint64_t size,
                               imp_error *err) {
    (void)user;
    (void)err;
    for (uint64_t k = 0; k < size; k++) ((uint8_t *)buf)[k] = pattern(index, k);
    return IMP_OK;
}

static imp_status fill_fail(void *user, int64_t index, void *buf, uint64_t size, imp_error *err) {
    (void)user, (void)index, (void)buf, (void)size;
    return imp_error_set(err, IMP_ERR_IO, "synthetic failure");
}

static uint8_t *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(sz > 0 ? (size_t)sz : 1);
    *n = p ? fread(p, 1, (size_t)sz, f) : 0;
    fclose(f);
    return p;
}

static bool file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* ---- the round-trip file ------------------------------------------------------------------ */

typedef struct rt_tensor {
    const char *name;
    uint32_t type, n_dims;
    int64_t ne[4];
    bool use_fill;
} rt_tensor;

static const rt_tensor k_rt_tensors[] = {
    {"f32.bias", IMP_TYPE_F32, 1, {5, 1, 1, 1}, false},
    {"blk.0.attn_q.weight", IMP_TYPE_F16, 2, {16, 3, 1, 1}, false},
    {"q8", IMP_TYPE_Q8_0, 2, {64, 2, 1, 1}, false},
    {"q4k", IMP_TYPE_Q4_K, 2, {256, 2, 1, 1}, true},
    {"i8.3d", IMP_TYPE_I8, 3, {3, 1, 2, 1}, false},
    {"bf16.4d", IMP_TYPE_BF16, 4, {2, 3, 4, 5}, true},
    {"iq4nl", IMP_TYPE_IQ4_NL, 1, {96, 1, 1, 1}, false},
};
#define RT_N ((int64_t)(sizeof k_rt_tensors / sizeof k_rt_tensors[0]))

static const uint8_t k_u8s[] = {0, 1, 200, 255};
static const int16_t k_i16s[] = {-32768, -1, 0, 32767};
static const uint64_t k_u64s[] = {UINT64_MAX, 0, 1ull << 63};
static const int64_t k_i64s[] = {INT64_MIN, -1, INT64_MAX};
static const float k_f32s[] = {1.5f, -0.0f, 3.0e38f};
static const double k_f64s[] = {1e-300, -2.5};
static const uint8_t k_bools[] = {1, 0, 1};
static const char *const k_strs[] = {"a", "", "\xc3\xbc\xe2\x9c\x93", "tokens with spaces"};
static const int32_t k_nest_a[] = {1, 2, 3}, k_nest_b[] = {-4};

/* Builds the writer for the round-trip file; data for non-fill tensors points into bufs. */
static imp_gguf_writer *rt_writer(uint8_t **bufs, uint32_t alignment) {
    imp_gguf_writer *w = imp_gguf_writer_new();
    imp_status st = IMP_OK;
#define S(x)                                                                                       \
    if (st == IMP_OK) st = (x)
    S(imp_gguf_writer_set_str(w, "general.architecture", "llama"));
    S(imp_gguf_writer_set_u32(w, "t.replace", 7));
    S(imp_gguf_writer_set_u8(w, "t.u8", 200));
    S(imp_gguf_writer_set_i8(w, "t.i8", -100));
    S(imp_gguf_writer_set_u16(w, "t.u16", 60000));
    S(imp_gguf_writer_set_i16(w, "t.i16", -30000));
    S(imp_gguf_writer_set_u32(w, "t.u32", 4000000000u));
    S(imp_gguf_writer_set_i32(w, "t.i32", -2000000000));
    S(imp_gguf_writer_set_u64(w, "t.u64", UINT64_MAX));
    S(imp_gguf_writer_set_i64(w, "t.i64", INT64_MIN));
    S(imp_gguf_writer_set_f32(w, "t.f32", 3.25f));
    S(imp_gguf_writer_set_f64(w, "t.f64", -1e300));
    S(imp_gguf_writer_set_bool(w, "t.true", true));
    S(imp_gguf_writer_set_bool(w, "t.false", false));
    S(imp_gguf_writer_set_str(w, "t.str", "h\xc3\xa9llo, world"));
    S(imp_gguf_writer_set_str(w, "t.empty", ""));
    S(imp_gguf_writer_set_str(w, "t.replace", "second")); /* replaces, keeps its position */
    S(imp_gguf_writer_set_arr(w, "a.u8", IMP_GGUF_UINT8, k_u8s, 4));
    S(imp_gguf_writer_set_arr(w, "a.i16", IMP_GGUF_INT16, k_i16s, 4));
    S(imp_gguf_writer_set_arr(w, "a.u64", IMP_GGUF_UINT64, k_u64s, 3));
    S(imp_gguf_writer_set_arr(w, "a.i64", IMP_GGUF_INT64, k_i64s, 3));
    S(imp_gguf_writer_set_arr(w, "a.f32", IMP_GGUF_FLOAT32, k_f32s, 3));
    S(imp_gguf_writer_set_arr(w, "a.f64", IMP_GGUF_FLOAT64, k_f64s, 2));
    S(imp_gguf_writer_set_arr(w, "a.bool", IMP_GGUF_BOOL, k_bools, 3));
    S(imp_gguf_writer_set_arr(w, "a.empty", IMP_GGUF_UINT32, NULL, 0));
    S(imp_gguf_writer_set_arr_str(w, "a.str", k_strs, 4));
    /* nested: [[1,2,3],[-4]] (int32) and [["a",""],["ü✓"]] and [[[1,2,3]]] */
    imp_gguf_value inner[2], nested = {.type = IMP_GGUF_ARRAY};
    memset(inner, 0, sizeof inner);
    inner[0].type = inner[1].type = IMP_GGUF_ARRAY;
    inner[0].arr.elem_type = inner[1].arr.elem_type = IMP_GGUF_INT32;
    inner[0].arr.n = 3, inner[0].arr.data = k_nest_a;
    inner[1].arr.n = 1, inner[1].arr.data = k_nest_b;
    nested.arr.elem_type = IMP_GGUF_ARRAY, nested.arr.n = 2, nested.arr.elems = inner;
    S(imp_gguf_writer_set_value(w, "a.nested", &nested));
    imp_gguf_str sv[3] = {{"a", 1}, {"", 0}, {"\xc3\xbc\xe2\x9c\x93", 5}};
    imp_gguf_value sinner[2], snested = {.type = IMP_GGUF_ARRAY};
    memset(sinner, 0, sizeof sinner);
    sinner[0].type = sinner[1].type = IMP_GGUF_ARRAY;
    sinner[0].arr.elem_type = sinner[1].arr.elem_type = IMP_GGUF_STRING;
    sinner[0].arr.n = 2, sinner[0].arr.strs = sv;
    sinner[1].arr.n = 1, sinner[1].arr.strs = sv + 2;
    snested.arr.elem_type = IMP_GGUF_ARRAY, snested.arr.n = 2, snested.arr.elems = sinner;
    S(imp_gguf_writer_set_value(w, "a.nested_str", &snested));
    imp_gguf_value deep = {.type = IMP_GGUF_ARRAY};
    deep.arr.elem_type = IMP_GGUF_ARRAY, deep.arr.n = 1, deep.arr.elems = &nested;
    S(imp_gguf_writer_set_value(w, "a.deep", &deep));
    if (alignment) S(imp_gguf_writer_set_u32(w, "general.alignment", alignment));
#undef S
    CHECKF(st == IMP_OK, "setting metadata: %d", st);
    for (int64_t i = 0; i < RT_N; i++) {
        const rt_tensor *t = &k_rt_tensors[i];
        size_t size = imp_row_size(t->type, t->ne[0]) * (size_t)(t->ne[1] * t->ne[2] * t->ne[3]);
        bufs[i] = malloc(size);
        for (size_t k = 0; k < size; k++) bufs[i][k] = pattern(i, k);
        imp_error e;
        st = imp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne,
                                        t->use_fill ? NULL : bufs[i], &e);
        CHECKF(st == IMP_OK, "add_tensor %s: %s", t->name, e.msg);
    }
    return w;
}

static void check_rt_content(const imp_gguf *g, uint32_t alignment) {
    imp_error e;
    CHECK(imp_gguf_version(g) == 3);
    CHECK(imp_gguf_alignment(g) == (alignment ? alignment : 32));
    CHECK(imp_gguf_data_offset(g) % imp_gguf_alignment(g) == 0);
    CHECK(imp_gguf_n_kv(g) == 28 + (alignment ? 1 : 0));
    CHECK(strcmp(imp_gguf_kv_key(g, 0), "general.architecture") == 0);
    CHECK(strcmp(imp_gguf_kv_key(g, 1), "t.replace") == 0);
    CHECK(imp_gguf_kv_value(g, 1)->type == IMP_GGUF_STRING);
    uint32_t u32 = 0;
    int32_t i32 = 0;
    uint64_t u64 = 0;
    int64_t i64 = 0;
    float f = 0;
    bool b = false;
    imp_gguf_str s = {0};
    CHECK(imp_gguf_get_u32(g, "t.u8", &u32, &e) == IMP_OK && u32 == 200);
    CHECK(imp_gguf_get_i32(g, "t.i8", &i32, &e) == IMP_OK && i32 == -100);
    CHECK(imp_gguf_get_u32(g, "t.u16", &u32, &e) == IMP_OK && u32 == 60000);
    CHECK(imp_gguf_get_i64(g, "t.i16", &i64, &e) == IMP_OK && i64 == -30000);
    CHECK(imp_gguf_get_u32(g, "t.u32", &u32, &e) == IMP_OK && u32 == 4000000000u);
    CHECK(imp_gguf_get_i32(g, "t.i32", &i32, &e) == IMP_OK && i32 == -2000000000);
    CHECK(imp_gguf_get_u64(g, "t.u64", &u64, &e) == IMP_OK && u64 == UINT64_MAX);
    CHECK(imp_gguf_get_i64(g, "t.i64", &i64, &e) == IMP_OK && i64 == INT64_MIN);
    CHECK(imp_gguf_get_f32(g, "t.f32", &f, &e) == IMP_OK && f == 3.25f);
    CHECK(imp_gguf_kv_value(g, imp_gguf_find_key(g, "t.f64"))->f64 == -1e300);
    CHECK(imp_gguf_get_bool(g, "t.true", &b, &e) == IMP_OK && b);
    CHECK(imp_gguf_get_bool(g, "t.false", &b, &e) == IMP_OK && !b);
    CHECK(imp_gguf_get_str(g, "t.str", &s, &e) == IMP_OK && s.len == 13 &&
          memcmp(s.ptr, "h\xc3\xa9llo, world", 13) == 0);
    CHECK(imp_gguf_get_str(g, "t.empty", &s, &e) == IMP_OK && s.len == 0);
    CHECK(imp_gguf_get_str(g, "t.replace", &s, &e) == IMP_OK && s.len == 6 &&
          memcmp(s.ptr, "second", 6) == 0);
    /* conversions and their failures */
    CHECK(imp_gguf_get_i64(g, "t.u32", &i64, &e) == IMP_OK && i64 == 4000000000);
    CHECK(imp_gguf_get_u64(g, "t.u8", &u64, &e) == IMP_OK && u64 == 200);
    CHECK(imp_gguf_get_i32(g, "t.u32", &i32, &e) == IMP_ERR_RANGE && strstr(e.msg, "t.u32"));
    CHECK(imp_gguf_get_u32(g, "t.i8", &u32, &e) == IMP_ERR_RANGE && strstr(e.msg, "t.i8"));
    CHECK(imp_gguf_get_u64(g, "t.i64", &u64, &e) == IMP_ERR_RANGE);
    CHECK(imp_gguf_get_i64(g, "t.u64", &i64, &e) == IMP_ERR_RANGE && strstr(e.msg, "t.u64"));
    CHECK(imp_gguf_get_u32(g, "t.u64", &u32, &e) == IMP_ERR_RANGE);
    CHECK(imp_gguf_get_i32(g, "t.i64", &i32, &e) == IMP_ERR_RANGE);
    CHECK(imp_gguf_get_f32(g, "t.f64", &f, &e) == IMP_ERR_RANGE && strstr(e.msg, "t.f64"));
    CHECK(imp_gguf_get_u32(g, "t.str", &u32, &e) == IMP_ERR_TYPE);
    CHECKF(strcmp(e.msg, "key 't.str' is string, expected uint32") == 0, "%s", e.msg);
    CHECK(imp_gguf_get_f32(g, "t.u32", &f, &e) == IMP_ERR_TYPE &&
          strstr(e.msg, "expected float32"));
    CHECK(imp_gguf_get_bool(g, "t.u8", &b, &e) == IMP_ERR_TYPE && strstr(e.msg, "'t.u8' is uint8"));
    CHECK(imp_gguf_get_str(g, "a.str", &s, &e) == IMP_ERR_TYPE &&
          strstr(e.msg, "'a.str' is array"));
    CHECK(imp_gguf_get_u32(g, "t.true", &u32, &e) == IMP_ERR_TYPE);
    CHECK(imp_gguf_get_u32(g, "no.such.key", &u32, &e) == IMP_ERR_NOT_FOUND);
    CHECKF(strcmp(e.msg, "key 'no.such.key' not found") == 0, "%s", e.msg);
    const imp_gguf_value *a = NULL;
    CHECK(imp_gguf_get_arr(g, "t.u8", &a, &e) == IMP_ERR_TYPE);
    CHECK(imp_gguf_find_key(g, "no.such.key") == -1 && imp_gguf_find_key(g, "") == -1);
    /* arrays */
    double d = 0;
    CHECK(imp_gguf_get_arr(g, "a.u8", &a, &e) == IMP_OK && a->arr.elem_type == IMP_GGUF_UINT8 &&
          a->arr.n == 4);
    CHECK(imp_gguf_arr_i64(a, 2, &i64) && i64 == 200 && !imp_gguf_arr_i64(a, 4, &i64));
    CHECK(imp_gguf_get_arr(g, "a.i16", &a, &e) == IMP_OK && imp_gguf_arr_i64(a, 0, &i64) &&
          i64 == -32768);
    CHECK(imp_gguf_get_arr(g, "a.u64", &a, &e) == IMP_OK && !imp_gguf_arr_i64(a, 0, &i64));
    CHECK(imp_gguf_arr_f64(a, 0, &d) && d == 18446744073709551615.0);
    CHECK(imp_gguf_arr_i64(a, 1, &i64) && i64 == 0);
    CHECK(imp_gguf_get_arr(g, "a.i64", &a, &e) == IMP_OK && imp_gguf_arr_i64(a, 0, &i64) &&
          i64 == INT64_MIN);
    CHECK(imp_gguf_get_arr(g, "a.f32", &a, &e) == IMP_OK && imp_gguf_arr_f64(a, 2, &d) &&
          d == (double)3.0e38f);
    CHECK(!imp_gguf_arr_i64(a, 0, &i64));
    CHECK(imp_gguf_get_arr(g, "a.f64", &a, &e) == IMP_OK && imp_gguf_arr_f64(a, 0, &d) &&
          d == 1e-300);
    CHECK(imp_gguf_get_arr(g, "a.bool", &a, &e) == IMP_OK && imp_gguf_arr_i64(a, 0, &i64) &&
          i64 == 1);
    CHECK(imp_gguf_arr_i64(a, 1, &i64) && i64 == 0);
    CHECK(imp_gguf_get_arr(g, "a.empty", &a, &e) == IMP_OK && a->arr.n == 0 &&
          a->arr.elem_type == IMP_GGUF_UINT32);
    CHECK(imp_gguf_get_arr(g, "a.str", &a, &e) == IMP_OK && a->arr.elem_type == IMP_GGUF_STRING &&
          a->arr.n == 4);
    if (a && a->arr.n == 4) {
        for (int i = 0; i < 4; i++)
            CHECK(a->arr.strs[i].len == strlen(k_strs[i]) &&
                  memcmp(a->arr.strs[i].ptr, k_strs[i], strlen(k_strs[i])) == 0);
        CHECK(!imp_gguf_arr_f64(a, 0, &d));
    }
    CHECK(imp_gguf_get_arr(g, "a.nested", &a, &e) == IMP_OK && a->arr.elem_type == IMP_GGUF_ARRAY &&
          a->arr.n == 2);
    if (a && a->arr.n == 2) {
        const imp_gguf_value *x = &a->arr.elems[0], *y = &a->arr.elems[1];
        CHECK(x->arr.elem_type == IMP_GGUF_INT32 && x->arr.n == 3 && imp_gguf_arr_i64(x, 2, &i64) &&
              i64 == 3);
        CHECK(y->arr.n == 1 && imp_gguf_arr_i64(y, 0, &i64) && i64 == -4);
    }
    CHECK(imp_gguf_get_arr(g, "a.nested_str", &a, &e) == IMP_OK && a->arr.n == 2);
    if (a && a->arr.n == 2)
        CHECK(a->arr.elems[1].arr.elem_type == IMP_GGUF_STRING &&
              a->arr.elems[1].arr.strs[0].len == 5);
    CHECK(imp_gguf_get_arr(g, "a.deep", &a, &e) == IMP_OK && a->arr.n == 1 &&
          a->arr.elems[0].arr.n == 2 && a->arr.elems[0].arr.elems[0].arr.n == 3);
    /* tensors */
    CHECK(imp_gguf_n_tensors(g) == RT_N);
    for (int64_t i = 0; i < RT_N && i < imp_gguf_n_tensors(g); i++) {
        const rt_tensor *r = &k_rt_tensors[i];
        const imp_gguf_tensor *t = imp_gguf_tensor_at(g, i);
        CHECKF(strcmp(t->name, r->name) == 0, "tensor %" PRId64 " name %s", i, t->name);
        CHECK(imp_gguf_find_tensor(g, r->name) == i);
        CHECK(t->type == r->type && t->n_dims == r->n_dims);
        for (int d2 = 0; d2 < 4; d2++) CHECK(t->ne[d2] == r->ne[d2]);
        uint64_t size =
            imp_row_size(r->type, r->ne[0]) * (uint64_t)(r->ne[1] * r->ne[2] * r->ne[3]);
        CHECK(t->size == size);
        CHECK(t->offset % imp_gguf_alignment(g) == 0);
        CHECK((const uint8_t *)t->data ==
              (const uint8_t *)imp_gguf_tensor_at(g, 0)->data + t->offset);
        bool same = true;
        for (uint64_t k = 0; k < t->size; k++)
            same = same && ((const uint8_t *)t->data)[k] == pattern(i, k);
        CHECKF(same, "tensor %s bytes", t->name);
    }
    CHECK(imp_gguf_find_tensor(g, "missing") == -1 && imp_gguf_tensor_at(g, RT_N) == NULL);
    int bad = 0;
    imp_test_gguf_walk(g, &bad);
    CHECK(bad == 0);
}

static void test_roundtrip(const char *dir) {
    char path[512], path2[512], tmp[600];
    for (int pass = 0; pass < 2; pass++) {
        const uint32_t alignment = pass ? 64 : 0;
        snprintf(path, sizeof path, "%s/rt%d.gguf", dir, pass);
        snprintf(path2, sizeof path2, "%s/rt%d_copy.gguf", dir, pass);
        uint8_t *bufs[RT_N];
        imp_gguf_writer *w = rt_writer(bufs, alignment);
        imp_error e;
        CHECKF(imp_gguf_writer_write(w, path, fill_pattern, NULL, &e) == IMP_OK, "write: %s",
               e.msg);
        imp_gguf_writer_free(w);
        for (int64_t i = 0; i < RT_N; i++) free(bufs[i]);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        CHECK(!file_exists(tmp));

        imp_gguf *g = NULL;
        CHECKF(imp_gguf_open(path, &g, &e) == IMP_OK, "open: %s", e.msg);
        if (!g) continue;
        check_rt_content(g, alignment);
        /* the last tensor ends the file, padded to the alignment */
        const imp_gguf_tensor *last = imp_gguf_tensor_at(g, RT_N - 1);
        uint64_t end = imp_gguf_data_offset(g) + last->offset + last->size;
        CHECK(imp_gguf_file_size(g) ==
              (end + imp_gguf_alignment(g) - 1) / imp_gguf_alignment(g) * imp_gguf_alignment(g));

        /* copy everything through set_value and data pointers: the same bytes come out */
        imp_gguf_writer *w2 = imp_gguf_writer_new();
        for (int64_t i = 0; i < imp_gguf_n_kv(g); i++)
            CHECK(imp_gguf_writer_set_value(w2, imp_gguf_kv_key(g, i), imp_gguf_kv_value(g, i)) ==
                  IMP_OK);
        for (int64_t i = 0; i < imp_gguf_n_tensors(g); i++) {
            const imp_gguf_tensor *t = imp_gguf_tensor_at(g, i);
            CHECK(imp_gguf_writer_add_tensor(w2, t->name, t->type, t->n_dims, t->ne, t->data, &e) ==
                  IMP_OK);
        }
        CHECKF(imp_gguf_writer_write(w2, path2, NULL, NULL, &e) == IMP_OK, "copy: %s", e.msg);
        imp_gguf_writer_free(w2);
        size_t n1 = 0, n2 = 0;
        uint8_t *b1 = read_file(path, &n1), *b2 = read_file(path2, &n2);
        CHECK(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0);

        /* the same file from memory */
        mem_gguf m;
        CHECK(mem_open(b1, n1, &m, &e) == IMP_OK);
        if (m.g) check_rt_content(m.g, alignment);
        mem_close(&m);
        free(b1);
        free(b2);
        imp_gguf_close(g);
        unlink(path);
        unlink(path2);
    }
}

/* ---- writer errors ------------------------------------------------------------------------ */

static void test_writer_errors(const char *dir) {
    imp_gguf_writer *w = imp_gguf_writer_new();
    imp_error e;
    const int64_t ne[4] = {32, 2, 1, 1}, ne_bad[4] = {33, 1, 1, 1}, ne0[4] = {0, 1, 1, 1};
    const int64_t ne_neg[4] = {32, -1, 1, 1}, ne_big[4] = {INT64_MAX, 4, 1, 1};
    static const float data[64];
    CHECK(imp_gguf_writer_add_tensor(w, "x", 4, 1, ne, data, &e) == IMP_ERR_INVALID_ARG &&
          e.msg[0]);
    CHECK(imp_gguf_writer_add_tensor(w, "x", 999, 1, ne, data, &e) == IMP_ERR_INVALID_ARG);
    CHECK(imp_gguf_writer_add_tensor(w, "x", IMP_TYPE_F32, 0, ne, data, &e) == IMP_ERR_INVALID_ARG);
    CHECK(imp_gguf_writer_add_tensor(w, "x", IMP_TYPE_F32, 5, ne, data, &e) == IMP_ERR_INVALID_ARG);
    CHECK(imp_gguf_writer_add_tensor(w, "x", IMP_TYPE_Q4_0, 1, ne_bad, data, &e) ==
              IMP_ERR_INVALID_ARG &&
          strstr(e.msg, "block size"));
    CHECK(imp_gguf_writer_add_tensor(w, "x", IMP_TYPE_F32, 1, ne0, data, &e) != IMP_OK);
    CHECK(imp_gguf_writer_add_tensor(w, "x", IMP_TYPE_F32, 2, ne_neg, data, &e) != IMP_OK);
    CHECK(imp_gguf_writer_add_tensor(w, "x", IMP_TYPE_F32, 2, ne_big, data, &e) != IMP_OK);
    CHECK(imp_gguf_writer_add_tensor(w, "", IMP_TYPE_F32, 1, ne, data, &e) != IMP_OK);
    char longname[80];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK(imp_gguf_writer_add_tensor(w, longname, IMP_TYPE_F32, 1, ne, data, &e) != IMP_OK);
    CHECK(imp_gguf_writer_add_tensor(w, "x", IMP_TYPE_F32, 2, ne, data, &e) == IMP_OK);
    CHECK(imp_gguf_writer_add_tensor(w, "x", IMP_TYPE_F16, 1, ne, data, &e) ==
              IMP_ERR_INVALID_ARG &&
          strstr(e.msg, "duplicate"));
    CHECK(imp_gguf_writer_set_arr(w, "k", IMP_GGUF_STRING, data, 1) == IMP_ERR_INVALID_ARG);
    CHECK(imp_gguf_writer_set_arr(w, "k", IMP_GGUF_ARRAY, data, 1) == IMP_ERR_INVALID_ARG);
    CHECK(imp_gguf_writer_set_arr(w, "k", (imp_gguf_type)77, data, 1) == IMP_ERR_INVALID_ARG);
    CHECK(imp_gguf_writer_set_arr(w, "k", IMP_GGUF_UINT8, NULL, 1) == IMP_ERR_INVALID_ARG);
    const uint8_t bad_bools[2] = {1, 2};
    CHECK(imp_gguf_writer_set_arr(w, "k", IMP_GGUF_BOOL, bad_bools, 2) == IMP_ERR_INVALID_ARG);
    CHECK(imp_gguf_writer_set_str(w, "k", NULL) == IMP_ERR_INVALID_ARG);
    CHECK(imp_gguf_writer_set_u32(w, "", 1) == IMP_ERR_INVALID_ARG);
    CHECK(imp_gguf_writer_set_u32(w, NULL, 1) == IMP_ERR_INVALID_ARG);
    imp_gguf_value v = {.type = (imp_gguf_type)13};
    CHECK(imp_gguf_writer_set_value(w, "k", &v) == IMP_ERR_INVALID_ARG);
    const char *const strs[2] = {"a", NULL};
    CHECK(imp_gguf_writer_set_arr_str(w, "k", strs, 2) == IMP_ERR_INVALID_ARG);

    char path[512], tmp[600];
    snprintf(path, sizeof path, "%s/werr.gguf", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* a tensor without data and no fill callback */
    CHECK(imp_gguf_writer_add_tensor(w, "filled", IMP_TYPE_F32, 1, ne, NULL, &e) == IMP_OK);
    CHECK(imp_gguf_writer_write(w, path, NULL, NULL, &e) == IMP_ERR_INVALID_ARG && e.msg[0]);
    CHECK(!file_exists(path) && !file_exists(tmp));
    /* a good file, then a failing write over it: the old file stays, no .tmp left */
    CHECK(imp_gguf_writer_write(w, path, fill_pattern, NULL, &e) == IMP_OK);
    size_t n_before = 0, n_after = 0;
    uint8_t *before = read_file(path, &n_before);
    CHECK(imp_gguf_writer_set_str(w, "extra", "changes the header") == IMP_OK);
    CHECK(imp_gguf_writer_write(w, path, fill_fail, NULL, &e) == IMP_ERR_IO);
    CHECKF(strstr(e.msg, "synthetic failure") && strstr(e.msg, "filled"), "%s", e.msg);
    uint8_t *after = read_file(path, &n_after);
    CHECK(before && after && n_before == n_after && memcmp(before, after, n_before) == 0);
    CHECK(!file_exists(tmp));
    free(before);
    free(after);
    /* alignment must be a uint32 power of two */
    CHECK(imp_gguf_writer_set_u32(w, "general.alignment", 48) == IMP_OK);
    CHECK(imp_gguf_writer_write(w, path, fill_pattern, NULL, &e) != IMP_OK && e.msg[0]);
    CHECK(imp_gguf_writer_set_u64(w, "general.alignment", 64) == IMP_OK);
    CHECK(imp_gguf_writer_write(w, path, fill_pattern, NULL, &e) != IMP_OK && e.msg[0]);
    CHECK(imp_gguf_writer_set_u32(w, "general.alignment", 256) == IMP_OK);
    CHECK(imp_gguf_writer_write(w, path, fill_pattern, NULL, &e) == IMP_OK);
    imp_gguf *g = NULL;
    CHECK(imp_gguf_open(path, &g, &e) == IMP_OK && imp_gguf_alignment(g) == 256 &&
          imp_gguf_data_offset(g) % 256 == 0 && imp_gguf_tensor_at(g, 1)->offset == 256);
    imp_gguf_close(g);
    /* unwritable destination */
    char nodir[600];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.gguf", dir);
    CHECK(imp_gguf_writer_write(w, nodir, fill_pattern, NULL, &e) == IMP_ERR_IO && e.msg[0]);
    unlink(path);
    imp_gguf_writer_free(w);
    imp_gguf_writer_free(NULL);
}

/* ---- truncation and mutation -------------------------------------------------------------- */

/* Small valid files made by the writer, as bytes. */
static uint8_t *small_file(const char *dir, int which, size_t *n) {
    char path[512];
    snprintf(path, sizeof path, "%s/small%d.gguf", dir, which);
    imp_gguf_writer *w = imp_gguf_writer_new();
    imp_error e;
    const int64_t ne[2] = {32, 2}, ne1[1] = {8};
    static const char *const toks[] = {"<s>", "</s>", "a", "bb", "\xe2\x96\x81the", ""};
    static const float scores[] = {0, 0, -1, -2, -3, -4};
    static const int32_t types[] = {3, 3, 1, 1, 1, 1};
    imp_gguf_writer_set_str(w, "general.architecture", "llama");
    imp_gguf_writer_set_u32(w, "llama.block_count", 2);
    imp_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    imp_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    imp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 6);
    if (which == 1) {
        imp_gguf_writer_set_arr(w, "tokenizer.ggml.scores", IMP_GGUF_FLOAT32, scores, 6);
        imp_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", IMP_GGUF_INT32, types, 6);
        imp_gguf_writer_set_u32(w, "general.alignment", 64);
        imp_gguf_value inner = {.type = IMP_GGUF_ARRAY}, outer = {.type = IMP_GGUF_ARRAY};
        inner.arr.elem_type = IMP_GGUF_INT32, inner.arr.n = 6, inner.arr.data = types;
        outer.arr.elem_type = IMP_GGUF_ARRAY, outer.arr.n = 1, outer.arr.elems = &inner;
        imp_gguf_writer_set_value(w, "x.nested", &outer);
    }
    imp_gguf_writer_add_tensor(w, "output_norm.weight", IMP_TYPE_F32, 1, ne1, NULL, &e);
    imp_gguf_writer_add_tensor(w, "blk.0.w", which ? IMP_TYPE_Q8_0 : IMP_TYPE_F16, 2, ne, NULL, &e);
    CHECKF(imp_gguf_writer_write(w, path, fill_pattern, NULL, &e) == IMP_OK, "%s", e.msg);
    imp_gguf_writer_free(w);
    uint8_t *p = read_file(path, n);
    unlink(path);
    return p;
}

static void test_truncations(const uint8_t *file, size_t n) {
    mem_gguf m;
    imp_error e;
    CHECK(mem_open(file, n, &m, &e) == IMP_OK);
    const imp_gguf_tensor *last = imp_gguf_tensor_at(m.g, imp_gguf_n_tensors(m.g) - 1);
    const size_t data_end = (size_t)(imp_gguf_data_offset(m.g) + last->offset + last->size);
    mem_close(&m);
    int wrong = 0;
    for (size_t len = 0; len <= n; len++) {
        imp_status st = mem_open(file, len, &m, &e);
        if ((st == IMP_OK) != (len >= data_end)) wrong++;
        if (st != IMP_OK && (!e.msg[0] || !strstr(e.msg, "offset"))) {
            fprintf(stderr, "truncated at %zu: message '%s'\n", len, e.msg);
            wrong++;
        }
        mem_close(&m);
    }
    CHECKF(wrong == 0, "%d truncations handled wrongly (file %zu bytes, data ends at %zu)", wrong,
           n, data_end);
}

static void mutate(imp_test_rng *rng, uint8_t **buf, size_t *n) {
    static const uint64_t u64s[] = {
        0,          1,          2,          0x7fffffffffffffffull, 0xffffffffffffffffull,
        1ull << 63, 1ull << 62, 1ull << 32, 0xffffffffull,         4096,
        65536,      33};
    static const uint32_t u32s[] = {0,  1,  2,  3,  4,  5,  7,  8,           9,
                                    12, 13, 14, 24, 30, 41, 64, 0xffffffffu, 0x80000000u};
    uint8_t *p = *buf;
    size_t len = *n;
    const size_t pos = len ? (size_t)(imp_test_rng_u64(rng) % len) : 0;
    switch (imp_test_rng_u64(rng) % 10) {
    case 0:
        if (len) p[pos] ^= (uint8_t)(1u << (imp_test_rng_u64(rng) % 8));
        break;
    case 1:
        if (len) p[pos] = (uint8_t)imp_test_rng_u64(rng);
        break;
    case 2: {
        static const uint8_t v[] = {0, 1, 0x7f, 0x80, 0xff};
        if (len) p[pos] = v[imp_test_rng_u64(rng) % 5];
        break;
    }
    case 3:
    case 4: { /* a field-sized overwrite, often on an 8-aligned boundary of the header */
        uint64_t v = u64s[imp_test_rng_u64(rng) % (sizeof u64s / 8)];
        if (v == 4096 && (imp_test_rng_u64(rng) & 1)) v = len - pos;
        if (pos + 8 <= len) memcpy(p + pos, &v, 8);
        break;
    }
    case 5: {
        uint32_t v = u32s[imp_test_rng_u64(rng) % (sizeof u32s / 4)];
        if (pos + 4 <= len) memcpy(p + pos, &v, 4);
        break;
    }
    case 6:
        *n = len ? (size_t)(imp_test_rng_u64(rng) % len) : 0;
        break;
    case 7: { /* insert 1..16 random bytes */
        size_t k = 1 + (size_t)(imp_test_rng_u64(rng) % 16);
        p = realloc(p, len + k);
        memmove(p + pos + k, p + pos, len - pos);
        for (size_t i = 0; i < k; i++) p[pos + i] = (uint8_t)imp_test_rng_u64(rng);
        *n = len + k;
        break;
    }
    case 8: { /* delete a span */
        size_t k = 1 + (size_t)(imp_test_rng_u64(rng) % 16);
        if (pos + k > len) k = len - pos;
        memmove(p + pos, p + pos + k, len - pos - k);
        *n = len - k;
        break;
    }
    default: { /* copy a span over another place */
        if (len < 2) break;
        size_t src = (size_t)(imp_test_rng_u64(rng) % len),
               k = 1 + (size_t)(imp_test_rng_u64(rng) % 32);
        if (src + k > len) k = len - src;
        if (pos + k > len) k = len - pos;
        memmove(p + pos, p + src, k);
        break;
    }
    }
    *buf = p;
}

static void test_mutations(uint8_t *const *bases, const size_t *sizes, int n_bases, int iters) {
    imp_test_rng rng = {0x9e3779b97f4a7c15ull};
    int n_ok = 0, n_fail = 0, no_msg = 0, bad_total = 0;
    for (int it = 0; it < iters; it++) {
        const int which = (int)(imp_test_rng_u64(&rng) % (uint64_t)n_bases);
        size_t n = sizes[which];
        uint8_t *p = malloc(n);
        memcpy(p, bases[which], n);
        const int k = 1 + (int)(imp_test_rng_u64(&rng) % 4);
        for (int j = 0; j < k; j++) mutate(&rng, &p, &n);
        mem_gguf m;
        imp_error e;
        imp_status st = mem_open(p, n, &m, &e);
        if (st == IMP_OK) {
            int bad = 0;
            imp_test_gguf_walk(m.g, &bad);
            if (bad) fprintf(stderr, "mutation %d: %d inconsistencies\n", it, bad);
            bad_total += bad;
            n_ok++;
        } else {
            n_fail++;
            if (!e.msg[0] || m.g) no_msg++;
        }
        mem_close(&m);
        free(p);
    }
    printf("mutations: %d opened, %d rejected\n", n_ok, n_fail);
    CHECKF(no_msg == 0, "%d rejections without a message", no_msg);
    CHECKF(bad_total == 0, "%d inconsistencies in accepted files", bad_total);
    CHECK(n_ok > iters / 50 && n_fail > iters / 2); /* the loop reaches both outcomes */
}

/* ---- scale -------------------------------------------------------------------------------- */

static void test_many(const char *dir) {
    enum { NT = 3000, NK = 2000 };
    char path[512], name[64];
    snprintf(path, sizeof path, "%s/many.gguf", dir);
    imp_gguf_writer *w = imp_gguf_writer_new();
    imp_error e;
    imp_test_rng rng = {42};
    static const float row[8];
    const int64_t ne[1] = {8};
    for (int i = 0; i < NK; i++) {
        snprintf(name, sizeof name, "k.%08x.%d", (unsigned)imp_test_rng_u64(&rng), i);
        CHECK(imp_gguf_writer_set_i32(w, name, i) == IMP_OK);
    }
    for (int i = 0; i < NT; i++) {
        snprintf(name, sizeof name, "blk.%d.%08x", i, (unsigned)imp_test_rng_u64(&rng));
        CHECK(imp_gguf_writer_add_tensor(w, name, IMP_TYPE_F32, 1, ne, row, &e) == IMP_OK);
    }
    CHECKF(imp_gguf_writer_write(w, path, NULL, NULL, &e) == IMP_OK, "%s", e.msg);
    imp_gguf_writer_free(w);
    imp_gguf *g = NULL;
    CHECKF(imp_gguf_open(path, &g, &e) == IMP_OK, "%s", e.msg);
    if (g) {
        CHECK(imp_gguf_n_kv(g) == NK && imp_gguf_n_tensors(g) == NT);
        int wrong = 0;
        for (int64_t i = 0; i < imp_gguf_n_kv(g); i++) {
            int32_t v = -1;
            wrong += imp_gguf_find_key(g, imp_gguf_kv_key(g, i)) != i;
            wrong += imp_gguf_get_i32(g, imp_gguf_kv_key(g, i), &v, &e) != IMP_OK || v != i;
        }
        for (int64_t i = 0; i < imp_gguf_n_tensors(g); i++) {
            const imp_gguf_tensor *t = imp_gguf_tensor_at(g, i);
            wrong += imp_gguf_find_tensor(g, t->name) != i;
            wrong += t->offset != (uint64_t)i * 32;
        }
        CHECKF(wrong == 0, "%d lookups wrong", wrong);
        imp_gguf_close(g);
    }
    unlink(path);
}

/* A tensor larger than any write buffer, from the fill callback, and one from a pointer. */
static void test_big(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/big.gguf", dir);
    const int64_t ne_a[2] = {4096, 768}, ne_b[1] = {(int64_t)5 << 20}; /* 12 MiB F32, 5 MiB I8 */
    uint8_t *b = malloc((size_t)ne_b[0]);
    for (int64_t k = 0; k < ne_b[0]; k++) b[k] = pattern(1, (uint64_t)k);
    imp_gguf_writer *w = imp_gguf_writer_new();
    imp_error e;
    CHECK(imp_gguf_writer_add_tensor(w, "a", IMP_TYPE_F32, 2, ne_a, NULL, &e) == IMP_OK);
    CHECK(imp_gguf_writer_add_tensor(w, "b", IMP_TYPE_I8, 1, ne_b, b, &e) == IMP_OK);
    CHECKF(imp_gguf_writer_write(w, path, fill_pattern, NULL, &e) == IMP_OK, "%s", e.msg);
    imp_gguf_writer_free(w);
    imp_gguf *g = NULL;
    CHECKF(imp_gguf_open(path, &g, &e) == IMP_OK, "%s", e.msg);
    if (g) {
        int wrong = 0;
        for (int64_t i = 0; i < 2; i++) {
            const imp_gguf_tensor *t = imp_gguf_tensor_at(g, i);
            for (uint64_t k = 0; k < t->size; k++)
                wrong += ((const uint8_t *)t->data)[k] != pattern(i, k);
        }
        CHECK(imp_gguf_tensor_at(g, 0)->size == 4096u * 768u * 4u && wrong == 0);
        imp_gguf_close(g);
    }
    free(b);
    unlink(path);
}

static void test_open_errors(const char *dir) {
    imp_gguf *g = (imp_gguf *)&g;
    imp_error e;
    char path[512];
    snprintf(path, sizeof path, "%s/does-not-exist.gguf", dir);
    CHECK(imp_gguf_open(path, &g, &e) == IMP_ERR_IO && g == NULL && e.msg[0]);
    CHECK(imp_gguf_open(dir, &g, &e) != IMP_OK && g == NULL && e.msg[0]); /* a directory */
    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    FILE *f = fopen(path, "wb");
    if (f) fclose(f);
    CHECK(imp_gguf_open(path, &g, &e) != IMP_OK && g == NULL && e.msg[0]);
    unlink(path);
    CHECK(imp_gguf_open_memory(NULL, 0, &g, &e) != IMP_OK && g == NULL && e.msg[0]);
    CHECK(imp_gguf_open_memory("GGUF", 4, NULL, &e) == IMP_ERR_INVALID_ARG);
    imp_gguf_close(NULL);
    CHECK(strcmp(imp_gguf_type_name(IMP_GGUF_UINT32), "uint32") == 0);
    CHECK(strcmp(imp_gguf_type_name(IMP_GGUF_FLOAT64), "float64") == 0);
    CHECK(strcmp(imp_gguf_type_name((imp_gguf_type)99), "?") == 0);
}

int main(int argc, char **argv) {
    int iters = argc > 1 ? atoi(argv[1]) : 20000;
    char dir[] = "/tmp/imp_test_gguf_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_roundtrip(dir);
    test_writer_errors(dir);
    test_open_errors(dir);
    uint8_t *bases[2];
    size_t sizes[2];
    for (int i = 0; i < 2; i++) bases[i] = small_file(dir, i, &sizes[i]);
    test_truncations(bases[0], sizes[0]);
    test_truncations(bases[1], sizes[1]);
    test_mutations(bases, sizes, 2, iters);
    free(bases[0]);
    free(bases[1]);
    test_many(dir);
    test_big(dir);
    rmdir(dir);
    return imp_test_finish("test_gguf");
}
