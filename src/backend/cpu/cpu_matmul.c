/*
 * CPU matmul y[M, N] = x[M, K] w[N, K]^T (+ b) for every computable weight type, and embedding
 * rows.
 *
 * Activations are quantized once per call to the weight type's vec_dot_type (Q8_0 / Q8_1 / Q8_K
 * or a float type), then every output is one vec_dot of a weight row with an activation row.
 * Each output is computed by exactly one dot product whatever the thread count or M, so results
 * are bit-identical across thread counts and between one-shot and chunked prefill.
 * Threads split the weight rows; a thread walks its rows in small blocks and runs every
 * activation row over a block while the block is in cache (prefill), which for M = 1 (decode)
 * degenerates to streaming the weights once.
 */
#include <string.h>

#include "backend/cpu/cpu.h"
#include "quant/simd.h"

#define MM_BLOCK_ROWS 16

typedef struct {
    const imp_tensor *x, *w, *b; /* b: the addend or NULL */
    imp_tensor *y;
    char *xq;       /* [M, xq_row] quantized activations */
    size_t xq_row;
    imp_vec_dot_fn dot;
    imp_vec_dot4_fn dot4; /* four activation rows at once (same results as dot), or NULL */
    imp_from_float_fn from_float;
} mm_job;

static void mm_quantize(void *ctx, int ith, int nth) {
    mm_job *j = ctx;
    int64_t b, e;
    imp_pool_split(j->x->ne1, ith, nth, &b, &e);
    for (int64_t m = b; m < e; m++) {
        j->from_float((const float *)((const char *)j->x->data + (size_t)m * j->x->nb1),
                      j->xq + (size_t)m * j->xq_row, j->x->ne0);
    }
}

static float *mm_out(const mm_job *j, int64_t m, int64_t n) {
    return (float *)((char *)j->y->data + (size_t)m * j->y->nb1) + n;
}

/* The product s of output (m, n) plus the addend's element (read before the output is written:
 * b may be y). */
static float mm_plus(const mm_job *j, int64_t m, int64_t n, float s) {
    if (!j->b) return s;
    return s + ((const float *)((const char *)j->b->data + (size_t)(j->b->ne1 == 1 ? 0 : m) * j->b->nb1))[n];
}

static void mm_dot(void *ctx, int ith, int nth) {
    mm_job *j = ctx;
    const int64_t M = j->x->ne1, K = j->x->ne0;
    int64_t b, e;
    imp_pool_split(j->w->ne1, ith, nth, &b, &e);
    for (int64_t n0 = b; n0 < e; n0 += MM_BLOCK_ROWS) {
        const int64_t n1 = n0 + MM_BLOCK_ROWS < e ? n0 + MM_BLOCK_ROWS : e;
        int64_t m = 0;
        if (j->dot4) {
            for (; m + 4 <= M; m += 4) {
                const char *xr = j->xq + (size_t)m * j->xq_row;
                for (int64_t n = n0; n < n1; n++) {
                    float s4[4];
                    j->dot4(K, s4, (const char *)j->w->data + (size_t)n * j->w->nb1, xr, j->xq_row);
                    for (int r = 0; r < 4; r++) *mm_out(j, m + r, n) = mm_plus(j, m + r, n, s4[r]);
                }
            }
        }
        for (; m < M; m++) {
            const char *xr = j->xq + (size_t)m * j->xq_row;
            for (int64_t n = n0; n < n1; n++) {
                float s;
                j->dot(K, &s, (const char *)j->w->data + (size_t)n * j->w->nb1, xr);
                *mm_out(j, m, n) = mm_plus(j, m, n, s);
            }
        }
    }
}

imp_status imp_cpu_matmul(imp_backend *be, const imp_tensor *x, const imp_tensor *w, const imp_tensor *b,
                          imp_tensor *y) {
    imp_cpu_backend *c = (imp_cpu_backend *)be;
    const imp_type_traits *tr = imp_type_get(w->type);
    if (!tr || x->type != IMP_TYPE_F32 || y->type != IMP_TYPE_F32 || x->ne0 != w->ne0 ||
        y->ne0 != w->ne1 || y->ne1 != x->ne1 || w->ne0 % tr->block_size != 0 || !imp_matmul_addend_ok(b, y)) {
        return IMP_ERR_INTERNAL;
    }
    mm_job j = {.x = x, .w = w, .b = b, .y = y, .dot = imp_vec_dot_fast(w->type), .dot4 = imp_vec_dot4_fast(w->type),
                .from_float = imp_from_float_fast(tr->vec_dot_type)};
    if (!j.dot || !j.from_float) return IMP_ERR_UNSUPPORTED;
    j.xq_row = imp_row_size(tr->vec_dot_type, x->ne0);
    if (j.xq_row == 0) return IMP_ERR_INTERNAL;
    if (!imp_cpu_scratch(&c->wq, &c->wq_size, j.xq_row * (size_t)x->ne1)) return IMP_ERR_NOMEM;
    j.xq = c->wq;
    if (x->ne1 * x->ne0 < 4096) {
        mm_quantize(&j, 0, 1);
    } else {
        imp_pool_run(c->pool, mm_quantize, &j);
    }
    imp_pool_run(c->pool, mm_dot, &j);
    return IMP_OK;
}

typedef struct {
    const imp_tensor *w;
    const int32_t *ids;
    imp_tensor *y;
    imp_dequantize_fn deq;
} rows_job;

static void rows_run(void *ctx, int ith, int nth) {
    rows_job *j = ctx;
    int64_t b, e;
    imp_pool_split(j->y->ne1, ith, nth, &b, &e);
    for (int64_t i = b; i < e; i++) {
        j->deq((const char *)j->w->data + (size_t)j->ids[i] * j->w->nb1,
               (float *)((char *)j->y->data + (size_t)i * j->y->nb1), j->w->ne0);
    }
}

imp_status imp_cpu_get_rows(imp_backend *be, const imp_tensor *w, const int32_t *ids, int n, imp_tensor *y) {
    imp_cpu_backend *c = (imp_cpu_backend *)be;
    const imp_type_traits *tr = imp_type_get(w->type);
    if (!tr || !tr->dequantize || y->type != IMP_TYPE_F32 || y->ne0 != w->ne0 || y->ne1 != n) {
        return IMP_ERR_INTERNAL;
    }
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= w->ne1) return IMP_ERR_INVALID_ARG;
    }
    rows_job j = {.w = w, .ids = ids, .y = y, .deq = tr->dequantize};
    if (n < 8) {
        rows_run(&j, 0, 1);
    } else {
        imp_pool_run(c->pool, rows_run, &j);
    }
    return IMP_OK;
}
