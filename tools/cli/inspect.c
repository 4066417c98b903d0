/*
 * imp-cli --inspect: metadata and tensor table of a GGUF file, in the spirit of gguf-dump.
 * Only the header is read (the reader never touches tensor data).
 */
#include "inspect.h"

#include <inttypes.h>
#include <string.h>

#include "gguf/gguf.h"
#include "quant/quant.h"

#define INSPECT_ARRAY_HEAD 8

static void inspect_str(FILE *out, imp_gguf_str s, uint64_t max) {
    fputc('\'', out);
    uint64_t n = s.len < max ? s.len : max;
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '\n') fputs("\\n", out);
        else if (c == '\'' || c == '\\') fprintf(out, "\\%c", c);
        else if (c < 0x20 || c == 0x7f) fprintf(out, "\\x%02x", c);
        else fputc(c, out);
    }
    fputc('\'', out);
    if (n < s.len) fprintf(out, "...(%" PRIu64 " bytes)", s.len);
}

static void inspect_value(FILE *out, const imp_gguf_value *v, bool full, int depth);

static void inspect_array(FILE *out, const imp_gguf_value *v, bool full, int depth) {
    uint64_t n = v->arr.n, shown = full ? n : (n < INSPECT_ARRAY_HEAD ? n : INSPECT_ARRAY_HEAD);
    fputc('[', out);
    for (uint64_t i = 0; i < shown; i++) {
        if (i) fputs(", ", out);
        if (v->arr.elem_type == IMP_GGUF_STRING) {
            inspect_str(out, v->arr.strs[i], 64);
        } else if (v->arr.elem_type == IMP_GGUF_ARRAY) {
            inspect_value(out, &v->arr.elems[i], full, depth + 1);
        } else if (v->arr.elem_type == IMP_GGUF_FLOAT32 || v->arr.elem_type == IMP_GGUF_FLOAT64) {
            double d = 0;
            imp_gguf_arr_f64(v, i, &d);
            fprintf(out, "%.6g", d);
        } else if (v->arr.elem_type == IMP_GGUF_BOOL) {
            int64_t b = 0;
            imp_gguf_arr_i64(v, i, &b);
            fputs(b ? "true" : "false", out);
        } else {
            int64_t x = 0;
            if (imp_gguf_arr_i64(v, i, &x)) fprintf(out, "%" PRId64, x);
            else {
                double d = 0; /* u64 beyond int64 */
                imp_gguf_arr_f64(v, i, &d);
                fprintf(out, "%.0f", d);
            }
        }
    }
    if (shown < n) fputs(", ...", out);
    fputc(']', out);
    if (depth == 0) fprintf(out, " (%" PRIu64 " %s)", n, imp_gguf_type_name(v->arr.elem_type));
}

static void inspect_value(FILE *out, const imp_gguf_value *v, bool full, int depth) {
    switch (v->type) {
    case IMP_GGUF_UINT8:
    case IMP_GGUF_UINT16:
    case IMP_GGUF_UINT32:
    case IMP_GGUF_UINT64: fprintf(out, "%" PRIu64, v->u64); break;
    case IMP_GGUF_INT8:
    case IMP_GGUF_INT16:
    case IMP_GGUF_INT32:
    case IMP_GGUF_INT64: fprintf(out, "%" PRId64, v->i64); break;
    case IMP_GGUF_FLOAT32:
    case IMP_GGUF_FLOAT64: fprintf(out, "%.9g", v->f64); break;
    case IMP_GGUF_BOOL: fputs(v->b ? "true" : "false", out); break;
    case IMP_GGUF_STRING: inspect_str(out, v->str, 512); break;
    case IMP_GGUF_ARRAY: inspect_array(out, v, full, depth); break;
    default: fputs("?", out); break;
    }
}

int imp_cli_inspect(const char *path, bool full_arrays, FILE *out) {
    imp_gguf *g = NULL;
    imp_error err;
    imp_error_clear(&err);
    imp_status st = imp_gguf_open(path, &g, &err);
    if (st != IMP_OK) {
        fprintf(stderr, "imp-cli: %s: %s\n", path, err.msg[0] ? err.msg : imp_status_str(st));
        return 1;
    }
    fprintf(out, "* File: %s\n", path);
    fprintf(out, "* GGUF v%u, %" PRId64 " key/value pairs, %" PRId64 " tensors, alignment %" PRIu64
                 ", data at offset %" PRIu64 ", file size %" PRIu64 " bytes\n",
            imp_gguf_version(g), imp_gguf_n_kv(g), imp_gguf_n_tensors(g), imp_gguf_alignment(g),
            imp_gguf_data_offset(g), imp_gguf_file_size(g));
    fprintf(out, "* Metadata:\n");
    for (int64_t i = 0; i < imp_gguf_n_kv(g); i++) {
        const imp_gguf_value *v = imp_gguf_kv_value(g, i);
        char tname[32];
        if (v->type == IMP_GGUF_ARRAY) snprintf(tname, sizeof tname, "[%s]", imp_gguf_type_name(v->arr.elem_type));
        else snprintf(tname, sizeof tname, "%s", imp_gguf_type_name(v->type));
        fprintf(out, "  %5" PRId64 ": %-10s %s = ", i + 1, tname, imp_gguf_kv_key(g, i));
        inspect_value(out, v, full_arrays, 0);
        fputc('\n', out);
    }
    fprintf(out, "* Tensors:\n  %5s  %-40s %-8s %-28s %14s %14s\n", "#", "name", "type", "shape (ne0 first)", "bytes", "offset");
    uint64_t total = 0;
    for (int64_t i = 0; i < imp_gguf_n_tensors(g); i++) {
        const imp_gguf_tensor *t = imp_gguf_tensor_at(g, i);
        char shape[64] = "";
        size_t len = 0;
        for (uint32_t d = 0; d < t->n_dims && len < sizeof shape; d++) {
            len += (size_t)snprintf(shape + len, sizeof shape - len, d ? " x %" PRId64 : "%" PRId64, t->ne[d]);
        }
        fprintf(out, "  %5" PRId64 "  %-40s %-8s %-28s %14" PRIu64 " %14" PRIu64 "\n", i + 1, t->name,
                imp_type_name(t->type), shape, t->size, t->offset);
        total += t->size;
    }
    fprintf(out, "* Total tensor bytes: %" PRIu64 " (%.3f GiB)\n", total, (double)total / (1024.0 * 1024 * 1024));
    imp_gguf_close(g);
    return 0;
}
