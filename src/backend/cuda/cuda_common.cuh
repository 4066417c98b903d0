/*
 * The CUDA backend's shared state and helpers, for the .cu files of src/backend/cuda/ only.
 *
 * One backend = one device, one stream, one cuBLAS handle. Every op is queued on the stream
 * and returns at once; sync() waits and reports the first error. Each .cu file is one op
 * family in three layers: kernel -> launcher taking the stream -> op entry (imp_cuda_*).
 *
 * Weight layout on the device. F32/F16/BF16 weights are copied as they are. A quantized
 * weight [N, K] is split at upload into two planes so that the bulk of each block (the
 * quantized values, a multiple of 16 bytes) is 16-byte aligned:
 *
 *   body plane  [N][K / QK][body_len]   the block's bytes [body_off, body_off + body_len)
 *   head plane  [N][K / QK][head_len]   the other bytes (scales, mins, high-bit masks), in order
 *
 * body_off/body_len per type are in imp_cuda_qsplit(); the head plane starts at the first
 * 256-byte boundary after the body plane. Kernels read both through imp_cuda_wq views.
 *
 * Dimension letters as in backend.h: T tokens, E embedding, H/Hkv heads, D head dim.
 */
#ifndef IMP_CUDA_COMMON_CUH
#define IMP_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "backend/backend.h"
#include "backend/device.h"
#include "base/log.h"
}

/* Returns IMP_ERR_DEVICE from the enclosing function (after logging file:line and the CUDA
 * message) when a runtime call fails. Never aborts. */
#define CUDA_TRY(call)                                                                             \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            IMP_LOG_E("cuda: %s failed at %s:%d: %s", #call, __FILE__, __LINE__, cudaGetErrorString(e_)); \
            return IMP_ERR_DEVICE;                                                                 \
        }                                                                                          \
    } while (0)

/* After a kernel launch: a bad configuration shows up here, a fault only at sync. */
#define CUDA_LAUNCHED() CUDA_TRY(cudaGetLastError())

#define CUBLAS_TRY(call)                                                                           \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                         \
            IMP_LOG_E("cublas: %s failed at %s:%d: status %d", #call, __FILE__, __LINE__, (int)s_); \
            return IMP_ERR_DEVICE;                                                                 \
        }                                                                                          \
    } while (0)

/* The device copy of one step's batch (begin_step): a single int32 allocation holding, in
 * order, token[T], pos[T], seq[T], slot[T], out[n_out], blk_off[n_seqs + 1] (each sequence's
 * first entry in blocks), runs[3 * T] (maximal stretches of consecutive tokens of one
 * sequence, at most IMP_CUDA_RUN_MAX tokens: first token, token count, sequence) and last
 * blocks[...] (the block tables, concatenated). Every offset depends only on T, n_out and
 * n_seqs, and the whole staging buffer is copied, so a recorded step (a CUDA graph) stays
 * valid as block tables grow. */
#define IMP_CUDA_RUN_MAX 64

typedef struct imp_cuda_step {
    const imp_batch *b; /* the host batch this describes (ops check they are given it) */
    int32_t n_tokens, n_out, n_seqs, n_runs, max_run;
    const int32_t *token, *pos, *seq, *slot, *out, *blk_off, *blocks, *runs; /* device */
    int32_t *dev, *host; /* device buffer and its pinned staging copy */
    size_t cap;          /* int32 capacity of both */
} imp_cuda_step;

/* A growable device scratch buffer (contents not kept across growth). */
typedef struct imp_cuda_buf {
    void *p;
    size_t size;
} imp_cuda_buf;

#define IMP_CUDA_GRAPHS 64 /* recorded steps kept (one per decode batch size) */

typedef struct imp_cuda_graph {
    uint64_t key;   /* 0: free */
    int seen;       /* sightings of the key (recording starts at the second) */
    uint32_t epoch; /* imp_cuda.epoch when recorded                          */
    cudaGraphExec_t exec;
} imp_cuda_graph;

/* The sample op's buffers (cuda_sample.cu), made on first use. */
typedef struct imp_cuda_smp {
    void *ws;               /* workspace laid out for rows x slices x kcap; zeroed when made */
    int rows, slices, kcap; /* what it holds (grown, never shrunk)                           */
    int32_t *host;          /* pinned: one launch's tokens (64)                              */
    int32_t *host_dev;      /* host as the kernels see it (mapped); NULL: dev and a copy     */
    int32_t *dev;
} imp_cuda_smp;

typedef struct imp_cuda {
    imp_backend base;
    int device;
    int sm_count;
    size_t smem_optin; /* largest dynamic shared memory a block may ask for */
    cudaStream_t stream;
    cublasHandle_t blas;
    imp_cuda_step step;
    imp_cuda_buf act;   /* activations quantized/converted for a matmul                  */
    imp_cuda_buf wdq;   /* a chunk of a weight dequantized to F16 for a cuBLAS GEMM       */
    imp_cuda_buf attn;  /* split-K attention partials                                    */
    int *attn_tickets;  /* split-K attention: per-tile counters of finished splits        */
    imp_cuda_buf blasws; /* cuBLAS workspace                                               */
    bool capturing;      /* the stream is recording a graph: nothing may allocate or wait  */
    bool capture_failed; /* something during this recording needed to                    */
    uint32_t epoch;      /* bumped whenever a buffer a graph may point into moves          */
    imp_cuda_graph graphs[IMP_CUDA_GRAPHS];
    imp_cuda_smp smp;
    /* What c->act holds, so that matmuls sharing an input (q, k, v; gate, up) quantize it
     * once: valid while gen is unchanged. Every op that may write device memory other than
     * matmul bumps gen (IMP_CUDA_WRITES); a matmul bumps it when its output overlaps x. */
    uint64_t gen;
    struct {
        const void *x;
        int64_t ne0, ne1;
        size_t nb1;
        int what;
        uint64_t gen;
    } act_of;
    /* Weight rows uploaded per shared dimension K and activation preparation they need
     * ([Q8_0, Q8_1, Q8_K, F16, other]): ops whose output feeds a matmul prepare it for the
     * likeliest one (imp_cuda_act_hint). */
    struct {
        int64_t K;
        int64_t rows[5];
    } kact[16];
    int n_kact;
    bool pdl; /* kernels launched with IMP_CUDA_LAUNCH may overlap their predecessor */
    cudaLaunchAttribute pdl_attr[1];
} imp_cuda;

#define IMP_CUDA_KACT_KINDS 5

/* Programmatic dependent launch (Hopper and later). The decode kernels are launched with
 * IMP_CUDA_LAUNCH, which lets a kernel's blocks be scheduled while the kernel before it on the
 * stream is still finishing: launch latency and the previous kernel's tail overlap, and a
 * matrix-vector kernel starts pulling its weights (which nothing on the stream writes) into
 * L2 early. In exchange every kernel so launched obeys two rules, in every block:
 *   - imp_pdl_wait() before reading anything an earlier kernel wrote and before writing
 *     anything an earlier kernel may still read; it returns once the previous grids have
 *     completed and their writes are visible;
 *   - it calls imp_pdl_wait() at all, even a block with nothing to do, so that "this kernel
 *     has completed" keeps implying "every kernel before it has" for the next one.
 * imp_pdl_launch() lets the next kernel be scheduled; kernels call it first thing. */
static __device__ __forceinline__ void imp_pdl_wait(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

static __device__ __forceinline__ void imp_pdl_launch(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* Both, at the top of a kernel that does nothing before waiting. */
static __device__ __forceinline__ void imp_pdl_enter(void) {
    imp_pdl_launch();
    imp_pdl_wait();
}

/* A launch on c's stream, with programmatic dependent launch when c->pdl. */
static inline cudaLaunchConfig_t imp_cuda_cfg(const imp_cuda *c, dim3 grid, dim3 block, size_t smem) {
    cudaLaunchConfig_t cfg; /* every field set below */
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = c->stream;
    cfg.attrs = (cudaLaunchAttribute *)c->pdl_attr;
    cfg.numAttrs = c->pdl ? 1 : 0;
    return cfg;
}

/* kernel<<<grid, block, smem, c->stream>>>(args) with the launch attributes above; a kernel
 * name with template arguments goes in parentheses. Check with CUDA_LAUNCHED() after. */
#define IMP_CUDA_LAUNCH(c, kernel, grid, block, smem, ...)                                          \
    do {                                                                                           \
        const cudaLaunchConfig_t cfg_ = imp_cuda_cfg((c), (grid), (block), (smem));                \
        (void)cudaLaunchKernelEx(&cfg_, kernel, __VA_ARGS__);                                      \
    } while (0)

/* At the top of every op that may write device memory, except matmul. */
#define IMP_CUDA_WRITES(be) (((imp_cuda *)(be))->gen++)

/* Grows b to at least bytes (synchronizing the stream first: queued work may still read the
 * old buffer). While a graph is being recorded, growing fails the recording instead. */
imp_status imp_cuda_buf_reserve(imp_cuda *c, imp_cuda_buf *b, size_t bytes);

/* The body/head split of a quantized type's block (see the top of this file); false for
 * types that are not split (float types). */
bool imp_cuda_qsplit(imp_type t, int *body_off, int *body_len);

/* A repacked quantized weight [N, K]: block (n, i)'s body at body + (n * nb + i) * body_len,
 * its head at head + (n * nb + i) * head_len. */
typedef struct imp_cuda_wq {
    const uint8_t *body, *head;
    int64_t nb; /* blocks per row */
    int body_len, head_len;
} imp_cuda_wq;

imp_cuda_wq imp_cuda_wq_of(const imp_tensor *w);

/* Ops (imp_backend_ops entries), one family per file. */
imp_status imp_cuda_matmul(imp_backend *be, const imp_tensor *x, const imp_tensor *w, const imp_tensor *b,
                           imp_tensor *y);
imp_status imp_cuda_get_rows(imp_backend *be, const imp_tensor *w, const int32_t *ids, int n, imp_tensor *y);
imp_status imp_cuda_rms_norm(imp_backend *be, const imp_tensor *x, const imp_tensor *w, float eps, bool one_plus_w,
                             imp_tensor *y);
imp_status imp_cuda_add(imp_backend *be, const imp_tensor *a, const imp_tensor *b, imp_tensor *y);
imp_status imp_cuda_scale(imp_backend *be, const imp_tensor *x, float s, imp_tensor *y);
imp_status imp_cuda_glu(imp_backend *be, const imp_tensor *gate, const imp_tensor *up, imp_act act, imp_tensor *y);
imp_status imp_cuda_softcap(imp_backend *be, imp_tensor *x, float cap);
imp_status imp_cuda_rope_kv_store(imp_backend *be, const imp_rope *rope, const imp_attn_params *ap,
                                  const imp_qk_norm *norm, imp_tensor *q, imp_tensor *k, const imp_tensor *v,
                                  const imp_batch *batch, imp_kv_store *kv, int layer);
imp_status imp_cuda_attention(imp_backend *be, const imp_tensor *q, const imp_kv_store *kv, int layer,
                              const imp_batch *batch, const imp_attn_params *ap, imp_tensor *out);
imp_status imp_cuda_sample(imp_backend *be, const imp_tensor *logits, const imp_sample_params *p,
                           int32_t *tokens, imp_error *err);
/* Called once at create: raises the shared-memory limits of the attention kernels. */
imp_status imp_cuda_attention_init(imp_cuda *c);

static inline unsigned imp_cuda_blocks(int64_t n, int per) { return (unsigned)((n + per - 1) / per); }

#endif
