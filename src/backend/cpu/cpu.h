/*
 * CPU backend internals: the backend struct and the op functions, split over files by concern
 * (cpu_backend.c memory + table, cpu_matmul.c matmul + get_rows, cpu_ops.c the rest).
 */
#ifndef IMP_BACKEND_CPU_CPU_H
#define IMP_BACKEND_CPU_CPU_H

#include "backend/backend.h"
#include "base/pool.h"
#include "quant/simd.h"

typedef struct imp_cpu_backend {
    imp_backend base;
    imp_pool *pool;
    int n_threads;
    /* Grow-only scratch, owned by the backend (ops run one at a time): quantized activations for
     * matmul, and per-thread attention scores. */
    void *wq;
    size_t wq_size;
    float *att;          /* [n_threads, att_per_thread] */
    size_t att_per_thread;
    imp_vec_dot_fn dot_f32; /* fast F32 dot and axpy for attention */
    imp_axpy_fn axpy_f32;
} imp_cpu_backend;

/* Grows a scratch buffer to at least bytes (64-byte aligned); false when memory is short. */
bool imp_cpu_scratch(void **buf, size_t *size, size_t bytes);

imp_status imp_cpu_get_rows(imp_backend *be, const imp_tensor *w, const int32_t *ids, int n, imp_tensor *y);
imp_status imp_cpu_matmul(imp_backend *be, const imp_tensor *x, const imp_tensor *w, const imp_tensor *b,
                          imp_tensor *y);
imp_status imp_cpu_rms_norm(imp_backend *be, const imp_tensor *x, const imp_tensor *w, float eps,
                            bool one_plus_w, imp_tensor *y);
imp_status imp_cpu_add(imp_backend *be, const imp_tensor *a, const imp_tensor *b, imp_tensor *y);
imp_status imp_cpu_scale(imp_backend *be, const imp_tensor *x, float s, imp_tensor *y);
imp_status imp_cpu_glu(imp_backend *be, const imp_tensor *gate, const imp_tensor *up, imp_act act, imp_tensor *y);
imp_status imp_cpu_softcap(imp_backend *be, imp_tensor *x, float cap);
imp_status imp_cpu_rope_kv_store(imp_backend *be, const imp_rope *rope, const imp_attn_params *ap, const imp_qk_norm *norm,
                                 imp_tensor *q, imp_tensor *k, const imp_tensor *v,
                                 const imp_batch *batch, imp_kv_store *kv, int layer);
imp_status imp_cpu_attention(imp_backend *be, const imp_tensor *q, const imp_kv_store *kv, int layer,
                             const imp_batch *batch, const imp_attn_params *ap, imp_tensor *out);


#endif
