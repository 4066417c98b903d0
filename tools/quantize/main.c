/*
 * imp-quantize IN.gguf OUT.gguf MIX [--threads N] [--allow-requantize]
 *
 * Converts a model's weights to a quantization mix (Q4_K_M, Q8_0, ...): metadata is carried
 * over unchanged (general.file_type updated), each tensor gets the type the mix picks for it
 * (quant/mix.h), rows are converted in parallel. Progress goes to stderr. The output is written
 * to OUT.tmp and renamed, so a failure never leaves a broken OUT.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/threads.h"
#include "gguf/gguf.h"
#include "quant/mix.h"
#include "quant/quant.h"

typedef struct {
    imp_gguf *in;
    uint32_t *types; /* chosen type per tensor */
    int threads;
    int64_t n_tensors;
    double t0;
} qz_ctx;

typedef struct {
    const imp_gguf_tensor *src;
    uint32_t dst_type;
    uint8_t *dst;
    int failed;
} qz_job;

static void qz_rows(void *ctx, int64_t b, int64_t e, int ith) {
    qz_job *j = ctx;
    const int64_t n = j->src->ne[0];
    const imp_type_traits *st = imp_type_get(j->src->type), *dt = imp_type_get(j->dst_type);
    const size_t src_row = imp_row_size(j->src->type, n), dst_row = imp_row_size(j->dst_type, n);
    float *tmp = imp_malloc_array((size_t)n, sizeof(float));
    if (!tmp) {
        j->failed = 1;
        return;
    }
    for (int64_t r = b; r < e; r++) {
        st->dequantize((const uint8_t *)j->src->data + (size_t)r * src_row, tmp, n);
        dt->quantize(tmp, j->dst + (size_t)r * dst_row, n, NULL);
    }
    free(tmp);
}

static imp_status qz_fill(void *user, int64_t index, void *buf, uint64_t size, imp_error *err) {
    qz_ctx *q = user;
    const imp_gguf_tensor *t = imp_gguf_tensor_at(q->in, index);
    const int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    qz_job j = {t, q->types[index], buf, 0};
    imp_parallel_for(q->threads, rows, qz_rows, &j);
    if (j.failed) return imp_error_set(err, IMP_ERR_NOMEM, "out of memory converting %s", t->name);
    char shape[64];
    snprintf(shape, sizeof shape, "%" PRId64 " x %" PRId64 " x %" PRId64, t->ne[0], t->ne[1], t->ne[2]);
    fprintf(stderr, "[%4" PRId64 "/%4" PRId64 "] %-36s %-6s -> %-6s [%s] %8.2f -> %8.2f MiB  (%.1f s)\n",
            index + 1, q->n_tensors, t->name, imp_type_name(t->type), imp_type_name(q->types[index]),
            shape, (double)t->size / 1048576.0, (double)size / 1048576.0, imp_time_s() - q->t0);
    return IMP_OK;
}

static int64_t qz_meta_int(imp_gguf *g, const char *arch, const char *suffix, int64_t dflt) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t v;
    return imp_gguf_get_i64(g, key, &v, NULL) == IMP_OK ? v : dflt;
}

static void qz_usage(FILE *f) {
    fprintf(f, "usage: imp-quantize IN.gguf OUT.gguf MIX [--threads N] [--allow-requantize]\n"
               "  MIX: %s\n", imp_ftype_names());
}

int main(int argc, char **argv) {
    const char *pos[3] = {NULL, NULL, NULL};
    int npos = 0;
    long threads = imp_cpu_count();
    bool requant = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            char *end;
            threads = strtol(argv[++i], &end, 10);
            if (*end || threads < 1 || threads > 1024) {
                fprintf(stderr, "imp-quantize: --threads wants 1..1024, got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--allow-requantize")) {
            requant = true;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            qz_usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "imp-quantize: unknown option '%s'\n", argv[i]);
            qz_usage(stderr);
            return 2;
        } else if (npos < 3) {
            pos[npos++] = argv[i];
        } else {
            fprintf(stderr, "imp-quantize: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (npos != 3) {
        qz_usage(stderr);
        return 2;
    }
    imp_ftype ftype;
    if (!imp_ftype_from_name(pos[2], &ftype)) {
        fprintf(stderr, "imp-quantize: unknown mix '%s'; one of: %s\n", pos[2], imp_ftype_names());
        return 2;
    }
    if (!strcmp(pos[0], pos[1])) {
        fprintf(stderr, "imp-quantize: input and output are the same file\n");
        return 2;
    }
    imp_error err;
    imp_error_clear(&err);
    qz_ctx q = {.threads = (int)threads, .t0 = imp_time_s()};
    imp_status st = imp_gguf_open(pos[0], &q.in, &err);
    if (st != IMP_OK) {
        fprintf(stderr, "imp-quantize: %s: %s\n", pos[0], err.msg);
        return 1;
    }
    imp_gguf_str arch_s = {"", 0};
    char arch[64] = "";
    if (imp_gguf_get_str(q.in, "general.architecture", &arch_s, NULL) == IMP_OK && arch_s.len < sizeof arch) {
        memcpy(arch, arch_s.ptr, arch_s.len);
        arch[arch_s.len] = '\0';
    }
    imp_mix_model mm = {
        .n_layer = (int)qz_meta_int(q.in, arch, "block_count", 1),
        .n_head = (int)qz_meta_int(q.in, arch, "attention.head_count", 1),
        .n_head_kv = (int)qz_meta_int(q.in, arch, "attention.head_count_kv", 1),
        .n_expert = (int)qz_meta_int(q.in, arch, "expert_count", 0),
        .tied_embeddings = imp_gguf_find_tensor(q.in, "output.weight") < 0,
    };
    q.n_tensors = imp_gguf_n_tensors(q.in);
    q.types = imp_calloc((size_t)(q.n_tensors ? q.n_tensors : 1), sizeof *q.types);
    imp_gguf_writer *w = imp_gguf_writer_new();
    if (!q.types || !w) st = imp_error_set(&err, IMP_ERR_NOMEM, "out of memory");

    for (int64_t i = 0; st == IMP_OK && i < imp_gguf_n_kv(q.in); i++) {
        const char *key = imp_gguf_kv_key(q.in, i);
        if (!strcmp(key, "general.file_type") || !strcmp(key, "general.quantization_version")) continue;
        st = imp_gguf_writer_set_value(w, key, imp_gguf_kv_value(q.in, i));
        if (st != IMP_OK) imp_error_set(&err, st, "cannot copy metadata key '%s'", key);
    }
    if (st == IMP_OK) st = imp_gguf_writer_set_u32(w, "general.file_type", (uint32_t)ftype);
    if (st == IMP_OK) st = imp_gguf_writer_set_u32(w, "general.quantization_version", 2);

    for (int64_t i = 0; st == IMP_OK && i < q.n_tensors; i++) {
        const imp_gguf_tensor *t = imp_gguf_tensor_at(q.in, i);
        uint32_t type = imp_mix_tensor_type(ftype, &mm, t->name, t->n_dims, t->ne, t->type);
        const imp_type_traits *src = imp_type_get(t->type);
        if (type != t->type) {
            if (src->is_quantized && !requant) {
                st = imp_error_set(&err, IMP_ERR_UNSUPPORTED,
                                   "tensor '%s' is already %s; pass --allow-requantize to convert it "
                                   "(quality suffers)", t->name, src->name);
            } else if (!src->dequantize) {
                st = imp_error_set(&err, IMP_ERR_UNSUPPORTED, "tensor '%s': cannot read type %s",
                                   t->name, src->name);
            } else if (!imp_type_get(type)->quantize) {
                st = imp_error_set(&err, IMP_ERR_UNSUPPORTED, "tensor '%s': cannot produce type %s",
                                   t->name, imp_type_name(type));
            }
        }
        q.types[i] = type;
        if (st == IMP_OK) {
            st = imp_gguf_writer_add_tensor(w, t->name, type, t->n_dims, t->ne,
                                            type == t->type ? t->data : NULL, &err);
        }
    }
    if (st == IMP_OK) {
        fprintf(stderr, "imp-quantize: %s -> %s as %s, %" PRId64 " tensors, %d threads\n", pos[0],
                pos[1], imp_ftype_name(ftype), q.n_tensors, q.threads);
        st = imp_gguf_writer_write(w, pos[1], qz_fill, &q, &err);
    }
    if (st == IMP_OK) {
        fprintf(stderr, "imp-quantize: done in %.1f s\n", imp_time_s() - q.t0);
    } else {
        fprintf(stderr, "imp-quantize: %s\n", err.msg[0] ? err.msg : imp_status_str(st));
    }
    imp_gguf_writer_free(w);
    free(q.types);
    imp_gguf_close(q.in);
    return st == IMP_OK ? 0 : 1;
}
