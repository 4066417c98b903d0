/*
 * The CPU backend: memory is host memory, weights are used in place (the GGUF mapping), and
 * every op runs on the backend's thread pool. This is the reference the other backends are
 * tested against, so the ops stay plain; speed comes from the SIMD dot products (quant/simd.h)
 * and from splitting work evenly over threads.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "base/mem.h"
#include "quant/simd.h"

bool imp_cpu_scratch(void **buf, size_t *size, size_t bytes) {
    if (*size >= bytes) return true;
    size_t want = bytes + bytes / 4 + 64;
    void *p = NULL;
    if (posix_memalign(&p, 64, want) != 0) return false;
    free(*buf);
    *buf = p;
    *size = want;
    return true;
}

static void cpu_free(imp_backend *be) {
    imp_cpu_backend *c = (imp_cpu_backend *)be;
    imp_pool_free(c->pool);
    free(c->wq);
    free(c->att);
    free(c);
}

static void *cpu_alloc(imp_backend *be, size_t bytes, imp_error *err) {
    void *p = NULL;
    if (bytes == 0) bytes = 1;
    if (posix_memalign(&p, 64, bytes) != 0) {
        imp_error_set(err, IMP_ERR_NOMEM, "cannot allocate %zu bytes of host memory", bytes);
        return NULL;
    }
    memset(p, 0, bytes);
    return p;
}

static void cpu_dealloc(imp_backend *be, void *p) { free(p); }

static imp_status cpu_copy(imp_backend *be, void *dst, const void *src, size_t bytes, imp_error *err) {
    if (bytes) memcpy(dst, src, bytes);
    return IMP_OK;
}

static imp_status cpu_upload_weight(imp_backend *be, const imp_tensor *src, imp_tensor *dst, imp_error *err) {
    *dst = *src; /* compute straight from the mapping */
    return IMP_OK;
}

static void cpu_free_weight(imp_backend *be, imp_tensor *w) { memset(w, 0, sizeof *w); }

static imp_status cpu_begin_step(imp_backend *be, const imp_batch *b, const int32_t *out_rows, int32_t n_out,
                                 const int32_t **token_ids, const int32_t **out_ids, imp_error *err) {
    *token_ids = b->token; /* host memory is the CPU backend's memory */
    *out_ids = out_rows;
    return IMP_OK;
}

static imp_status cpu_sync(imp_backend *be, imp_error *err) { return IMP_OK; }

static const imp_backend_ops k_cpu_ops = {
    .name = "cpu",
    .free = cpu_free,
    .alloc = cpu_alloc,
    .dealloc = cpu_dealloc,
    .upload = cpu_copy,
    .download = cpu_copy,
    .upload_weight = cpu_upload_weight,
    .free_weight = cpu_free_weight,
    .begin_step = cpu_begin_step,
    .get_rows = imp_cpu_get_rows,
    .rms_norm = imp_cpu_rms_norm,
    .matmul = imp_cpu_matmul,
    .add = imp_cpu_add,
    .scale = imp_cpu_scale,
    .glu = imp_cpu_glu,
    .rope_kv_store = imp_cpu_rope_kv_store,
    .attention = imp_cpu_attention,
    .softcap = imp_cpu_softcap,
    .sync = cpu_sync,
};

imp_status imp_backend_cpu_create(int n_threads, imp_backend **out, imp_error *err) {
    *out = NULL;
    imp_cpu_backend *c = imp_calloc(1, sizeof *c);
    if (!c) return imp_error_set(err, IMP_ERR_NOMEM, "cpu backend: out of memory");
    c->base.ops = &k_cpu_ops;
    c->base.kv_type = IMP_TYPE_F32;
    c->base.host_memory = true;
    imp_status st = imp_pool_create(n_threads, &c->pool, err);
    if (st != IMP_OK) {
        free(c);
        return st;
    }
    c->n_threads = imp_pool_threads(c->pool);
    c->dot_f32 = imp_vec_dot_fast(IMP_TYPE_F32);
    c->axpy_f32 = imp_axpy_fast();
    *out = &c->base;
    return IMP_OK;
}
