/*
 * GGUF test helper (driven by py_gguf_compat.py and used to make the fuzz seed corpus):
 *
 *   helper_gguf_write write PATH [ALIGN]   the compatibility file: every metadata type (all
 *                                          integer widths, bools, floats, strings, arrays of each,
 *                                          string arrays, nested arrays) and tensors of several
 *                                          types and shapes with known bytes; ALIGN sets
 *                                          general.alignment (0 or absent: not set, 32 applies)
 *   helper_gguf_write dump PATH            reads PATH with imp's reader and prints it as JSON
 *                                          (strings as hex, floats as C99 hex floats)
 *   helper_gguf_write corpus DIR           small valid files (<= 4 KiB) for tests/fuzz/corpus
 *
 * The compatibility file's content is mirrored in py_gguf_compat.py (EXPECTED_KV, tensors);
 * change both together. Tensor i's byte k is (k * 131 + i * 17 + 7) mod 256.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "quant/quant.h"

typedef struct helper_tensor {
    const char *name;
    uint32_t type, n_dims;
    int64_t ne[4];
    int fill; /* produced by the fill callback instead of a data pointer */
} helper_tensor;

static const helper_tensor k_tensors[] = {
    {"token_embd.weight", IMP_TYPE_F16, 2, {8, 4, 1, 1}, 0},
    {"blk.0.attn_norm.weight", IMP_TYPE_F32, 1, {8, 1, 1, 1}, 0},
    {"blk.0.ffn_down.weight", IMP_TYPE_Q8_0, 2, {64, 3, 1, 1}, 0},
    {"blk.0.ffn_up.weight", IMP_TYPE_Q4_K, 2, {256, 2, 1, 1}, 1},
    {"odd.i32", IMP_TYPE_I32, 2, {3, 5, 1, 1}, 0},
    {"x.4d", IMP_TYPE_BF16, 4, {2, 3, 2, 2}, 1},
    {"y.i16", IMP_TYPE_I16, 1, {7, 1, 1, 1}, 0},
    {"z.q6k", IMP_TYPE_Q6_K, 1, {256, 1, 1, 1}, 1},
};
#define N_TENSORS ((int64_t)(sizeof k_tensors / sizeof k_tensors[0]))

static uint8_t pattern(int64_t tensor, uint64_t k) {
    return (uint8_t)(k * 131u + (uint64_t)tensor * 17u + 7u);
}

static imp_status fill_pattern(void *user, int64_t index, void *buf, uint64_t size,
                               imp_error *err) {
    (void)user, (void)err;
    for (uint64_t k = 0; k < size; k++) ((uint8_t *)buf)[k] = pattern(index, k);
    return IMP_OK;
}

static imp_gguf_value arr_of(imp_gguf_type et, uint64_t n, const void *data) {
    imp_gguf_value v;
    memset(&v, 0, sizeof v);
    v.type = IMP_GGUF_ARRAY;
    v.arr.elem_type = et;
    v.arr.n = n;
    if (et == IMP_GGUF_STRING)
        v.arr.strs = data;
    else if (et == IMP_GGUF_ARRAY)
        v.arr.elems = data;
    else
        v.arr.data = data;
    return v;
}

/* The compatibility file's metadata (mirrored in py_gguf_compat.py). */
static imp_status set_metadata(imp_gguf_writer *w, uint32_t alignment) {
    static const uint8_t u8s[] = {0, 1, 254, 255};
    static const int8_t i8s[] = {-128, 0, 127};
    static const uint16_t u16s[] = {0, 65535};
    static const int16_t i16s[] = {-32768, 32767};
    static const uint32_t u32s[] = {0, 4294967295u};
    static const int32_t i32s[] = {INT32_MIN, INT32_MAX};
    static const uint64_t u64s[] = {0, UINT64_MAX};
    static const int64_t i64s[] = {INT64_MIN, INT64_MAX};
    static const float f32s[] = {0.5f, -1.25f, 3.4e38f};
    static const double f64s[] = {1e-300, -2.5};
    static const uint8_t bools[] = {1, 0, 1};
    static const char *const strs[] = {"", "a", "h\xc3\xa9llo", "tab\there", "new\nline"};
    static const int32_t n1[] = {1, 2, 3}, n2[] = {-4};
    static const uint8_t d1[] = {1}, d2[] = {2, 3}, d3[] = {4};
    static const imp_gguf_str s1[] = {{"a", 1}, {"b", 1}}, s2[] = {{"c", 1}};
    imp_status st = IMP_OK;
#define S(x)                                                                                       \
    if (st == IMP_OK) st = (x)
    S(imp_gguf_writer_set_str(w, "general.architecture", "llama"));
    S(imp_gguf_writer_set_str(w, "general.name", "imp compat \xe2\x9c\x93"));
    S(imp_gguf_writer_set_u8(w, "c.u8", 255));
    S(imp_gguf_writer_set_i8(w, "c.i8", -128));
    S(imp_gguf_writer_set_u16(w, "c.u16", 65535));
    S(imp_gguf_writer_set_i16(w, "c.i16", -32768));
    S(imp_gguf_writer_set_u32(w, "c.u32", 4294967295u));
    S(imp_gguf_writer_set_i32(w, "c.i32", INT32_MIN));
    S(imp_gguf_writer_set_u64(w, "c.u64", UINT64_MAX));
    S(imp_gguf_writer_set_i64(w, "c.i64", INT64_MIN));
    S(imp_gguf_writer_set_f32(w, "c.f32", 0.1f));
    S(imp_gguf_writer_set_f32(w, "c.f32_denormal", 1e-40f));
    S(imp_gguf_writer_set_f64(w, "c.f64", 0.1));
    S(imp_gguf_writer_set_f64(w, "c.f64_negzero", -0.0));
    S(imp_gguf_writer_set_bool(w, "c.true", true));
    S(imp_gguf_writer_set_bool(w, "c.false", false));
    S(imp_gguf_writer_set_str(w, "c.empty", ""));
    S(imp_gguf_writer_set_arr(w, "a.u8", IMP_GGUF_UINT8, u8s, 4));
    S(imp_gguf_writer_set_arr(w, "a.i8", IMP_GGUF_INT8, i8s, 3));
    S(imp_gguf_writer_set_arr(w, "a.u16", IMP_GGUF_UINT16, u16s, 2));
    S(imp_gguf_writer_set_arr(w, "a.i16", IMP_GGUF_INT16, i16s, 2));
    S(imp_gguf_writer_set_arr(w, "a.u32", IMP_GGUF_UINT32, u32s, 2));
    S(imp_gguf_writer_set_arr(w, "a.i32", IMP_GGUF_INT32, i32s, 2));
    S(imp_gguf_writer_set_arr(w, "a.u64", IMP_GGUF_UINT64, u64s, 2));
    S(imp_gguf_writer_set_arr(w, "a.i64", IMP_GGUF_INT64, i64s, 2));
    S(imp_gguf_writer_set_arr(w, "a.f32", IMP_GGUF_FLOAT32, f32s, 3));
    S(imp_gguf_writer_set_arr(w, "a.f64", IMP_GGUF_FLOAT64, f64s, 2));
    S(imp_gguf_writer_set_arr(w, "a.bool", IMP_GGUF_BOOL, bools, 3));
    S(imp_gguf_writer_set_arr_str(w, "a.str", strs, 5));
    S(imp_gguf_writer_set_arr(w, "a.empty", IMP_GGUF_UINT32, NULL, 0));
    imp_gguf_value ni[2] = {arr_of(IMP_GGUF_INT32, 3, n1), arr_of(IMP_GGUF_INT32, 1, n2)};
    imp_gguf_value nested = arr_of(IMP_GGUF_ARRAY, 2, ni);
    S(imp_gguf_writer_set_value(w, "a.nested_i32", &nested));
    imp_gguf_value si[2] = {arr_of(IMP_GGUF_STRING, 2, s1), arr_of(IMP_GGUF_STRING, 1, s2)};
    imp_gguf_value nested_s = arr_of(IMP_GGUF_ARRAY, 2, si);
    S(imp_gguf_writer_set_value(w, "a.nested_str", &nested_s));
    imp_gguf_value di0[2] = {arr_of(IMP_GGUF_UINT8, 1, d1), arr_of(IMP_GGUF_UINT8, 2, d2)};
    imp_gguf_value di1[1] = {arr_of(IMP_GGUF_UINT8, 1, d3)};
    imp_gguf_value dm[2] = {arr_of(IMP_GGUF_ARRAY, 2, di0), arr_of(IMP_GGUF_ARRAY, 1, di1)};
    imp_gguf_value deep = arr_of(IMP_GGUF_ARRAY, 2, dm);
    S(imp_gguf_writer_set_value(w, "a.nested3_u8", &deep));
    if (alignment) S(imp_gguf_writer_set_u32(w, "general.alignment", alignment));
#undef S
    return st;
}

static int cmd_write(const char *path, uint32_t alignment) {
    imp_gguf_writer *w = imp_gguf_writer_new();
    imp_error err;
    imp_error_clear(&err);
    uint8_t *bufs[N_TENSORS] = {0};
    imp_status st = w ? set_metadata(w, alignment) : IMP_ERR_NOMEM;
    for (int64_t i = 0; i < N_TENSORS && st == IMP_OK; i++) {
        const helper_tensor *t = &k_tensors[i];
        size_t size = imp_row_size(t->type, t->ne[0]) * (size_t)(t->ne[1] * t->ne[2] * t->ne[3]);
        bufs[i] = malloc(size);
        if (!bufs[i]) return 1;
        for (size_t k = 0; k < size; k++) bufs[i][k] = pattern(i, k);
        st = imp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne,
                                        t->fill ? NULL : bufs[i], &err);
    }
    if (st == IMP_OK) st = imp_gguf_writer_write(w, path, fill_pattern, NULL, &err);
    for (int64_t i = 0; i < N_TENSORS; i++) free(bufs[i]);
    imp_gguf_writer_free(w);
    if (st != IMP_OK) {
        fprintf(stderr, "helper_gguf_write: %s: %s\n", path,
                err.msg[0] ? err.msg : imp_status_str(st));
        return 1;
    }
    return 0;
}

/* ---- dump --------------------------------------------------------------------------------- */

static void dump_hex(const void *p, uint64_t n) {
    putchar('"');
    for (uint64_t i = 0; i < n; i++) printf("%02x", ((const uint8_t *)p)[i]);
    putchar('"');
}

static void dump_value(const imp_gguf_value *v);

static void dump_scalar(imp_gguf_type t, const imp_gguf_value *v) {
    printf("{\"t\":\"%s\",\"v\":", imp_gguf_type_name(t));
    switch (t) {
    case IMP_GGUF_UINT8:
    case IMP_GGUF_UINT16:
    case IMP_GGUF_UINT32:
    case IMP_GGUF_UINT64:
        printf("%" PRIu64, v->u64);
        break;
    case IMP_GGUF_INT8:
    case IMP_GGUF_INT16:
    case IMP_GGUF_INT32:
    case IMP_GGUF_INT64:
        printf("%" PRId64, v->i64);
        break;
    case IMP_GGUF_FLOAT32:
    case IMP_GGUF_FLOAT64:
        printf("\"%a\"", v->f64);
        break;
    case IMP_GGUF_BOOL:
        fputs(v->b ? "true" : "false", stdout);
        break;
    default:
        printf("null");
        break;
    }
    putchar('}');
}

static void dump_value(const imp_gguf_value *v) {
    if (v->type == IMP_GGUF_STRING) {
        printf("{\"t\":\"string\",\"v\":");
        dump_hex(v->str.ptr, v->str.len);
        putchar('}');
        return;
    }
    if (v->type != IMP_GGUF_ARRAY) {
        dump_scalar(v->type, v);
        return;
    }
    printf("{\"t\":\"array\",\"et\":\"%s\",\"v\":[", imp_gguf_type_name(v->arr.elem_type));
    for (uint64_t i = 0; i < v->arr.n; i++) {
        if (i) putchar(',');
        if (v->arr.elem_type == IMP_GGUF_STRING) {
            printf("{\"t\":\"string\",\"v\":");
            dump_hex(v->arr.strs[i].ptr, v->arr.strs[i].len);
            putchar('}');
        } else if (v->arr.elem_type == IMP_GGUF_ARRAY) {
            dump_value(&v->arr.elems[i]);
        } else {
            /* re-decode through the public element accessors */
            imp_gguf_value e;
            memset(&e, 0, sizeof e);
            int64_t x = 0;
            double d = 0;
            const imp_gguf_type et = v->arr.elem_type;
            if (et == IMP_GGUF_UINT64) { /* beyond int64: take the raw bytes */
                memcpy(&e.u64, (const uint8_t *)v->arr.data + i * 8, 8);
            } else if (et == IMP_GGUF_FLOAT32 || et == IMP_GGUF_FLOAT64) {
                imp_gguf_arr_f64(v, i, &d);
                e.f64 = d;
            } else {
                imp_gguf_arr_i64(v, i, &x);
                if (et == IMP_GGUF_BOOL)
                    e.b = x != 0; /* a union: set one member only */
                else
                    e.i64 = x;
            }
            dump_scalar(et, &e);
        }
    }
    printf("]}");
}

static int cmd_dump(const char *path) {
    imp_gguf *g = NULL;
    imp_error err;
    imp_status st = imp_gguf_open(path, &g, &err);
    if (st != IMP_OK) {
        fprintf(stderr, "helper_gguf_write: %s: %s\n", path, err.msg);
        return 1;
    }
    printf("{\"version\":%u,\"alignment\":%" PRIu64 ",\"data_offset\":%" PRIu64 ",\"kv\":[",
           imp_gguf_version(g), imp_gguf_alignment(g), imp_gguf_data_offset(g));
    for (int64_t i = 0; i < imp_gguf_n_kv(g); i++) {
        printf(i ? ",\n" : "\n");
        printf("{\"key\":");
        dump_hex(imp_gguf_kv_key(g, i), strlen(imp_gguf_kv_key(g, i)));
        printf(",\"value\":");
        dump_value(imp_gguf_kv_value(g, i));
        putchar('}');
    }
    printf("],\"tensors\":[");
    for (int64_t i = 0; i < imp_gguf_n_tensors(g); i++) {
        const imp_gguf_tensor *t = imp_gguf_tensor_at(g, i);
        printf(i ? ",\n" : "\n");
        printf("{\"name\":");
        dump_hex(t->name, strlen(t->name));
        printf(",\"type\":%u,\"ne\":[", t->type);
        for (uint32_t d = 0; d < t->n_dims; d++) printf(d ? ",%" PRId64 : "%" PRId64, t->ne[d]);
        printf("],\"offset\":%" PRIu64 ",\"size\":%" PRIu64 ",\"data\":", t->offset, t->size);
        dump_hex(t->data, t->size);
        putchar('}');
    }
    printf("]}\n");
    imp_gguf_close(g);
    return 0;
}

/* ---- fuzz seed corpus --------------------------------------------------------------------- */

static int write_or_fail(imp_gguf_writer *w, const char *dir, const char *name) {
    char path[1024];
    imp_error err;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    imp_status st = imp_gguf_writer_write(w, path, fill_pattern, NULL, &err);
    imp_gguf_writer_free(w);
    if (st != IMP_OK) fprintf(stderr, "helper_gguf_write: %s: %s\n", path, err.msg);
    return st != IMP_OK;
}

static int cmd_corpus(const char *dir) {
    int fails = 0;
    imp_error err;
    static const char *const toks[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81the", "a", "bb", ""};
    static const float scores[] = {0, 0, 0, -1, -2, -3, -4};
    static const int32_t ttypes[] = {2, 3, 3, 1, 1, 1, 1};
    const int64_t ne8[1] = {8}, ne32x2[2] = {32, 2}, ne256[1] = {256}, ne3x5[2] = {3, 5};

    imp_gguf_writer *w = imp_gguf_writer_new(); /* tiny: a model header and two tensors */
    imp_gguf_writer_set_str(w, "general.architecture", "llama");
    imp_gguf_writer_set_u32(w, "llama.block_count", 1);
    imp_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    imp_gguf_writer_add_tensor(w, "output_norm.weight", IMP_TYPE_F32, 1, ne8, NULL, &err);
    imp_gguf_writer_add_tensor(w, "token_embd.weight", IMP_TYPE_F16, 2, ne32x2, NULL, &err);
    fails += write_or_fail(w, dir, "tiny.gguf");

    w = imp_gguf_writer_new(); /* vocab: string arrays, typed arrays, nested, alignment 64 */
    imp_gguf_writer_set_str(w, "general.architecture", "qwen3");
    imp_gguf_writer_set_u32(w, "general.alignment", 64);
    imp_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    imp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 7);
    imp_gguf_writer_set_arr(w, "tokenizer.ggml.scores", IMP_GGUF_FLOAT32, scores, 7);
    imp_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", IMP_GGUF_INT32, ttypes, 7);
    imp_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false);
    imp_gguf_writer_set_i64(w, "x.i64", -5);
    imp_gguf_writer_set_u16(w, "x.u16", 7);
    imp_gguf_writer_set_f64(w, "x.f64", 2.5);
    imp_gguf_value inner = arr_of(IMP_GGUF_INT32, 7, ttypes),
                   outer = arr_of(IMP_GGUF_ARRAY, 1, &inner);
    imp_gguf_writer_set_value(w, "x.nested", &outer);
    imp_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", IMP_TYPE_Q8_0, 2, ne32x2, NULL, &err);
    fails += write_or_fail(w, dir, "vocab.gguf");

    w = imp_gguf_writer_new(); /* quantized: K-quants and an integer tensor */
    imp_gguf_writer_set_str(w, "general.architecture", "llama");
    imp_gguf_writer_add_tensor(w, "q4k", IMP_TYPE_Q4_K, 1, ne256, NULL, &err);
    imp_gguf_writer_add_tensor(w, "q6k", IMP_TYPE_Q6_K, 1, ne256, NULL, &err);
    imp_gguf_writer_add_tensor(w, "i32", IMP_TYPE_I32, 2, ne3x5, NULL, &err);
    fails += write_or_fail(w, dir, "kquant.gguf");

    w = imp_gguf_writer_new(); /* metadata only */
    imp_gguf_writer_set_str(w, "general.name", "empty");
    imp_gguf_writer_set_u8(w, "x.u8", 1);
    imp_gguf_writer_set_i8(w, "x.i8", -1);
    imp_gguf_writer_set_i16(w, "x.i16", -2);
    imp_gguf_writer_set_arr_str(w, "x.strs", toks, 3);
    fails += write_or_fail(w, dir, "meta_only.gguf");

    char path[1024];
    snprintf(path, sizeof path, "%s/compat.gguf", dir);
    fails += cmd_write(path, 0);
    return fails ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "write") == 0)
        return cmd_write(argv[2], argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 0);
    if (argc == 3 && strcmp(argv[1], "dump") == 0) return cmd_dump(argv[2]);
    if (argc == 3 && strcmp(argv[1], "corpus") == 0) return cmd_corpus(argv[2]);
    fprintf(stderr, "usage: helper_gguf_write write PATH [ALIGN] | dump PATH | corpus DIR\n");
    return 2;
}
