/*
 * Hand-made bad GGUF files, one per check the reader makes (magic, version, big-endian, counts,
 * key and string lengths, value and element types, nesting depth, bools, duplicate keys,
 * general.alignment, tensor dims/types/sizes/offsets/overlaps/duplicate names): each must be
 * rejected with the right status and a message naming the problem and the byte offset. Also
 * the valid edge cases next to them (version 2, no tensors, unpadded end, out-of-order data).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "gguf_walk.h"
#include "quant/quant.h"
#include "testutil.h"

/* ---- byte builder for hand-made files ----------------------------------------------------- */

typedef struct tb {
    uint8_t *p;
    size_t len, cap;
} tb;

static void tb_put(tb *b, const void *src, size_t n) {
    if (n == 0) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}
static void tb_u8(tb *b, uint8_t v) {
    tb_put(b, &v, 1);
}
static void tb_u32(tb *b, uint32_t v) {
    tb_put(b, &v, 4);
}
static void tb_u64(tb *b, uint64_t v) {
    tb_put(b, &v, 8);
}
static void tb_str(tb *b, const char *s) {
    tb_u64(b, strlen(s));
    tb_put(b, s, strlen(s));
}
static void tb_header(tb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    tb_put(b, "GGUF", 4);
    tb_u32(b, version);
    tb_u64(b, n_tensors);
    tb_u64(b, n_kv);
}
/* Starts a new file in b: just the header. */
static void tb_reset(tb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b->len = 0;
    tb_header(b, version, n_tensors, n_kv);
}
static void tb_kv(tb *b, const char *key, uint32_t type) {
    tb_str(b, key);
    tb_u32(b, type);
}
static void tb_tensor(tb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                      uint64_t offset) {
    tb_str(b, name);
    tb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) tb_u64(b, ne[d]);
    tb_u32(b, type);
    tb_u64(b, offset);
}
static void tb_pad(tb *b, size_t align, size_t extra) {
    while (b->len % align) tb_u8(b, 0);
    for (size_t i = 0; i < extra; i++) tb_u8(b, (uint8_t)i);
}

/* Expects the file to be rejected with status st and a message containing each of subs. */
#define EXPECT_FAIL(b, st, ...)                                                                    \
    expect_fail(__LINE__, (b), (st), (const char *[]){__VA_ARGS__, NULL})
static void expect_fail(int line, const tb *b, imp_status want, const char **subs) {
    mem_gguf m;
    imp_error e;
    imp_status st = mem_open(b->p, b->len, &m, &e);
    CHECKF(st == want, "line %d: status %d, want %d (%s)", line, st, want, e.msg);
    CHECKF(m.g == NULL || st == IMP_OK, "line %d: out set on failure", line);
    CHECKF(e.msg[0] != '\0', "line %d: empty message", line);
    if (want == IMP_ERR_FORMAT)
        CHECKF(strstr(e.msg, "offset") != NULL, "line %d: no offset in '%s'", line, e.msg);
    for (const char **s = subs; *s; s++)
        CHECKF(strstr(e.msg, *s) != NULL, "line %d: '%s' not in '%s'", line, *s, e.msg);
    mem_close(&m);
}

/* Expects the file to open; returns walk inconsistencies checked. */
static void expect_ok(int line, const tb *b, uint64_t *alignment) {
    mem_gguf m;
    imp_error e;
    imp_status st = mem_open(b->p, b->len, &m, &e);
    CHECKF(st == IMP_OK, "line %d: open failed: %s", line, e.msg);
    if (st == IMP_OK) {
        int bad = 0;
        imp_test_gguf_walk(m.g, &bad);
        CHECKF(bad == 0, "line %d: %d inconsistencies", line, bad);
        if (alignment) *alignment = imp_gguf_alignment(m.g);
    }
    mem_close(&m);
}

/* ---- hand-made bad files ------------------------------------------------------------------ */

static void test_bad_headers(void) {
    tb b = {0};
    uint64_t align = 0;
    /* empty, short, bad magic */
    for (size_t n = 0; n < 4; n++) {
        b.len = 0;
        tb_put(&b, "GGUF", n);
        EXPECT_FAIL(&b, IMP_ERR_FORMAT, "");
    }
    b.len = 0;
    tb_header(&b, 3, 0, 0);
    b.p[3] = 'X';
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "magic");
    b.len = 0;
    tb_put(&b, "GGUF", 4);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "");
    /* versions */
    tb_reset(&b, 1, 0, 0);
    EXPECT_FAIL(&b, IMP_ERR_UNSUPPORTED, "version 1");
    tb_reset(&b, 4, 0, 0);
    EXPECT_FAIL(&b, IMP_ERR_UNSUPPORTED, "version 4");
    tb_reset(&b, 0x03000000u, 0, 0);
    EXPECT_FAIL(&b, IMP_ERR_UNSUPPORTED, "big-endian");
    tb_reset(&b, 0x02000000u, 0, 0);
    EXPECT_FAIL(&b, IMP_ERR_UNSUPPORTED, "big-endian");
    tb_reset(&b, 2, 0, 0);
    expect_ok(__LINE__, &b, &align);
    tb_reset(&b, 3, 0, 0);
    expect_ok(__LINE__, &b, &align);
    CHECK(align == 32);
    /* truncated counts, huge counts */
    tb_reset(&b, 3, 0, 0), b.len = 20;
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "");
    tb_reset(&b, 3, UINT64_MAX, 0), tb_pad(&b, 1, 100);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "offset 8");
    tb_reset(&b, 3, 0, 1ull << 60), tb_pad(&b, 1, 100);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "offset 16");
    tb_reset(&b, 3, 3, 0), tb_pad(&b, 1, 98); /* 3 tensor infos need >= 99 bytes */
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "offset 8");
    /* keys */
    tb_reset(&b, 3, 0, 1), tb_u64(&b, UINT64_MAX - 3), tb_pad(&b, 1, 40);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "offset 24");
    tb_reset(&b, 3, 0, 1), tb_kv(&b, "", IMP_GGUF_UINT8), tb_u8(&b, 1);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "");
    tb_reset(&b, 3, 0, 1), tb_u64(&b, 3), tb_put(&b, "a\0b", 3), tb_u32(&b, 0), tb_u8(&b, 1);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "NUL");
    tb_reset(&b, 3, 0, 1), tb_kv(&b, "a", 13), tb_pad(&b, 1, 16);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "offset 33");
    tb_reset(&b, 3, 0, 1), tb_kv(&b, "a", IMP_GGUF_UINT32), tb_u8(&b, 1);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "'a'");
    tb_reset(&b, 3, 0, 1), tb_kv(&b, "a", IMP_GGUF_STRING), tb_u64(&b, 1000), tb_pad(&b, 1, 999);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "");
    tb_reset(&b, 3, 0, 1), tb_kv(&b, "a", IMP_GGUF_BOOL), tb_u8(&b, 2);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "bool");
    tb_reset(&b, 3, 0, 2), tb_kv(&b, "a", IMP_GGUF_UINT8), tb_u8(&b, 1);
    tb_kv(&b, "a", IMP_GGUF_UINT8), tb_u8(&b, 2);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "duplicate", "'a'", "offset 38");
    /* arrays */
    tb_reset(&b, 3, 0, 1), tb_kv(&b, "a", IMP_GGUF_ARRAY), tb_u32(&b, IMP_GGUF_UINT32),
        tb_u64(&b, 1ull << 62), tb_pad(&b, 1, 64);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "offset 37");
    tb_reset(&b, 3, 0, 1), tb_kv(&b, "a", IMP_GGUF_ARRAY), tb_u32(&b, IMP_GGUF_STRING),
        tb_u64(&b, 9), tb_pad(&b, 1, 64);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "");
    tb_reset(&b, 3, 0, 1), tb_kv(&b, "a", IMP_GGUF_ARRAY), tb_u32(&b, IMP_GGUF_ARRAY),
        tb_u64(&b, 1ull << 40), tb_pad(&b, 1, 64);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "");
    tb_reset(&b, 3, 0, 1), tb_kv(&b, "a", IMP_GGUF_ARRAY), tb_u32(&b, 13), tb_u64(&b, 0);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "");
    tb_reset(&b, 3, 0, 1), tb_kv(&b, "a", IMP_GGUF_ARRAY), tb_u32(&b, IMP_GGUF_BOOL), tb_u64(&b, 3);
    tb_u8(&b, 1), tb_u8(&b, 0), tb_u8(&b, 7);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "bool");
    for (int depth = IMP_GGUF_MAX_DEPTH; depth <= IMP_GGUF_MAX_DEPTH + 1; depth++) {
        tb_reset(&b, 3, 0, 1), tb_kv(&b, "a", IMP_GGUF_ARRAY);
        for (int k = 1; k < depth; k++) tb_u32(&b, IMP_GGUF_ARRAY), tb_u64(&b, 1);
        tb_u32(&b, IMP_GGUF_UINT8), tb_u64(&b, 1), tb_u8(&b, 42);
        if (depth <= IMP_GGUF_MAX_DEPTH)
            expect_ok(__LINE__, &b, NULL);
        else
            EXPECT_FAIL(&b, IMP_ERR_FORMAT, "nested");
    }
    /* general.alignment */
    const struct {
        uint32_t type;
        uint64_t v;
        bool ok;
    } aligns[] = {
        {IMP_GGUF_UINT32, 0, false},
        {IMP_GGUF_UINT32, 3, false},
        {IMP_GGUF_UINT32, 48, false},
        {IMP_GGUF_UINT64, 64, true},
        {IMP_GGUF_INT32, 16, true},
        {IMP_GGUF_UINT8, 8, true},
        {IMP_GGUF_INT8, (uint64_t)-32, false},
        {IMP_GGUF_FLOAT32, 0x42000000u, false},
    };
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        tb_reset(&b, 3, 0, 1), tb_kv(&b, "general.alignment", aligns[i].type);
        static const uint8_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
        tb_put(&b, &aligns[i].v, sz[aligns[i].type]);
        if (aligns[i].ok) {
            expect_ok(__LINE__, &b, &align);
            CHECK(align == aligns[i].v);
        } else {
            EXPECT_FAIL(&b, IMP_ERR_FORMAT, "alignment");
        }
    }
    tb_reset(&b, 3, 0, 1), tb_kv(&b, "general.alignment", IMP_GGUF_STRING), tb_str(&b, "32");
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "alignment");
    free(b.p);
}

/* One tensor (or two) in an otherwise valid file; data section of data_bytes. */
static void tb_tensor_file(tb *b, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                           uint64_t offset, size_t data_bytes) {
    tb_reset(b, 3, 1, 0);
    tb_tensor(b, "w", n_dims, ne, type, offset);
    tb_pad(b, 32, data_bytes);
}

static void test_bad_tensors(void) {
    tb b = {0};
    const uint64_t ne4[4] = {4, 2, 1, 1}, ne5[5] = {1, 1, 1, 1, 1};
    tb_tensor_file(&b, 2, ne4, IMP_TYPE_F32, 0, 32);
    expect_ok(__LINE__, &b, NULL);
    tb_tensor_file(&b, 2, ne4, IMP_TYPE_F32, 0, 31); /* one byte short */
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "'w'");
    tb_tensor_file(&b, 0, ne4, IMP_TYPE_F32, 0, 32);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "dims");
    tb_tensor_file(&b, 5, ne5, IMP_TYPE_F32, 0, 32);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "dims");
    const uint64_t ne_zero[2] = {4, 0}, ne_neg[2] = {4, (uint64_t)-2};
    tb_tensor_file(&b, 2, ne_zero, IMP_TYPE_F32, 0, 32);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "'w'");
    tb_tensor_file(&b, 2, ne_neg, IMP_TYPE_F32, 0, 32);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "'w'");
    const uint64_t ne_ovf[3] = {1ull << 32, 1ull << 32, 4}, ne_size[2] = {1ull << 31, 1ull << 31};
    tb_tensor_file(&b, 3, ne_ovf, IMP_TYPE_F32, 0, 32);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "'w'");
    tb_tensor_file(&b, 2, ne_size, IMP_TYPE_F32, 0, 32); /* 2^62 elements: 2^64 bytes */
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "'w'");
    const uint64_t ne_row[1] = {1ull << 62}; /* one row of 2^64 bytes */
    tb_tensor_file(&b, 1, ne_row, IMP_TYPE_F32, 0, 32);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "'w'");
    const uint64_t ne_row64[2] = {1ull << 61, 1}; /* F64: 2^64 bytes, wraps to 0 if unchecked */
    tb_tensor_file(&b, 2, ne_row64, IMP_TYPE_F64, 0, 32);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "'w'");
    tb_tensor_file(&b, 2, ne4, 4, 0, 32);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "type");
    tb_tensor_file(&b, 2, ne4, 1000, 0, 32);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "type");
    const uint64_t ne33[1] = {33};
    tb_tensor_file(&b, 1, ne33, IMP_TYPE_Q4_0, 0, 64);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "block size");
    tb_tensor_file(&b, 2, ne4, IMP_TYPE_F32, 16, 64);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "alignment");
    tb_tensor_file(&b, 2, ne4, IMP_TYPE_F32, 1ull << 63, 64);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "'w'");
    tb_tensor_file(&b, 2, ne4, IMP_TYPE_F32, UINT64_MAX - 31, 64);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "");
    /* empty name, name with NUL */
    tb_reset(&b, 3, 1, 0), tb_tensor(&b, "", 2, ne4, IMP_TYPE_F32, 0), tb_pad(&b, 32, 32);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "");
    /* two tensors: overlapping, duplicate names, out of order (fine) */
    const uint64_t offs[3][2] = {{0, 0}, {0, 16 * 0 + 32}, {32, 0}};
    for (int k = 0; k < 3; k++) {
        tb_reset(&b, 3, 2, 0);
        tb_tensor(&b, "a", 2, ne4, IMP_TYPE_F32, offs[k][0]);
        tb_tensor(&b, "b", 2, ne4, IMP_TYPE_F32, offs[k][1]);
        tb_pad(&b, 32, 64);
        if (k == 0)
            EXPECT_FAIL(&b, IMP_ERR_FORMAT, "overlap");
        else
            expect_ok(__LINE__, &b, NULL);
    }
    const uint64_t ne8[2] = {8, 2}; /* 64 bytes: a at 0 covers b at 32 */
    tb_reset(&b, 3, 2, 0);
    tb_tensor(&b, "a", 2, ne8, IMP_TYPE_F32, 0), tb_tensor(&b, "b", 2, ne4, IMP_TYPE_F32, 32);
    tb_pad(&b, 32, 96);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "overlap");
    tb_reset(&b, 3, 2, 0);
    tb_tensor(&b, "a", 2, ne4, IMP_TYPE_F32, 0), tb_tensor(&b, "a", 2, ne4, IMP_TYPE_F32, 32);
    tb_pad(&b, 32, 64);
    EXPECT_FAIL(&b, IMP_ERR_FORMAT, "duplicate", "'a'");
    /* no tensors and the file ends right after the header (not padded): fine */
    tb_reset(&b, 3, 0, 1), tb_kv(&b, "a", IMP_GGUF_UINT8), tb_u8(&b, 1);
    expect_ok(__LINE__, &b, NULL);
    free(b.p);
}

int main(void) {
    test_bad_headers();
    test_bad_tensors();
    return imp_test_finish("test_gguf_bad");
}
