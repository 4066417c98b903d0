/*
 * CUDA matmul y[M, N] = x[M, K] w[N, K]^T + b, and embedding rows (get_rows). The addend b
 * (the residual stream, possibly y itself, or a bias row) is added where the outputs are
 * written: by the matrix-vector kernels' last step, by cuBLAS's beta when b is y, else by the
 * add kernel after the GEMM.
 *
 * Activations are first brought to the weight type's CPU vec_dot_type, with the CPU's exact
 * rounding: Q8_0 / Q8_1 blocks of 32 (d = amax/127, fp16 d and s) for the legacy types, Q8_K
 * blocks of 256 for the K-quants and IQ4_XS, F16 / BF16 for those weights. Then:
 *
 *   M <= MMV_MAX_M   matrix-vector kernels (decode): one warp per weight row, reading the
 *                    weights once for up to MMV_COLS activation rows, int8 dp4a dot products
 *                    against the quantized activations (the integer sums equal the CPU's);
 *                    float weights up to MMV_COLS rows read x in F32, rounding each element
 *                    to the weight type as they load it
 *   larger M         tensor-core GEMM through cuBLAS: quantized weights are dequantized to
 *                    F16 in chunks of rows and multiplied with the quantized activations'
 *                    values d*q in F16 (so both paths, and the CPU, multiply the same
 *                    numbers); F16 / BF16 / F32 weights take x in their own type
 *
 * Letters: M activation rows, N weight rows (outputs), K the shared dimension.
 */
#include "backend/cuda/cuda_act.cuh"

#define MMV_COLS IMP_CUDA_MMV_F_MAX_M /* activation rows per pass of the matrix-vector kernels */
#define MMV_MAX_M IMP_CUDA_MMV_MAX_M /* above this, the GEMM path                          */
#define MMV_WARPS 4         /* warps per block of the matrix-vector kernels                 */
#define WDQ_CHUNK_BYTES ((size_t)128 << 20) /* dequantized weight rows per GEMM chunk      */

static __device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* ---- activation quantization (the emitters are in cuda_act.cuh) ------------------------------ */

/* Q8_0 / Q8_1 (SUM): one warp per unit of 32. */
template <bool SUM, bool DQ>
__global__ void act_q8_32(const float *x, int64_t ldx, int64_t K, int8_t *qa, float4 *meta) {
    imp_pdl_enter();
    const int lane = threadIdx.x & 31;
    const int64_t g = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, m = blockIdx.y;
    if (g * 32 >= K) return;
    int8_t *q = DQ ? (int8_t *)((__half *)qa + m * K + g * 32) : qa + m * K + g * 32;
    act_emit32<SUM, DQ>(x[m * ldx + g * 32 + lane], lane, q, meta + m * (K / 32) + g);
}

/* Q8_K: one warp per block of 256. */
template <bool DQ>
__global__ void act_q8_K(const float *x, int64_t ldx, int64_t K, int8_t *qa, float4 *meta) {
    imp_pdl_enter();
    const int lane = threadIdx.x & 31;
    const int64_t g = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, m = blockIdx.y;
    if (g * 256 >= K) return;
    const float *xr = x + m * ldx + g * 256 + 8 * lane;
    float v[8];
#pragma unroll
    for (int e = 0; e < 8; e++) v[e] = xr[e];
    int8_t *q = DQ ? (int8_t *)((__half *)qa + m * K + g * 256) : qa + m * K + g * 256;
    act_emit256<DQ>(v, lane, q, meta + m * (K / 32) + g * 8);
}

/* x (F32, strided) -> contiguous [M][K] of type W. */
template <typename W> static __device__ __forceinline__ W from_f32(float v);
template <> __device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <typename W>
__global__ void act_convert(const float *x, int64_t ldx, int64_t K, W *out) {
    imp_pdl_enter();
    const int64_t m = blockIdx.y;
    for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < K; k += (int64_t)gridDim.x * blockDim.x) {
        out[m * K + k] = from_f32<W>(x[m * ldx + k]);
    }
}

/* ---- matrix-vector: quantized weights ---------------------------------------------------------- */

#define MMV_PREFETCH_BYTES 4096 /* of each weight row, pulled into L2 before the wait (cuda_common.cuh) */

/* Before imp_pdl_wait: lane l of the row's first warp asks L2 for line l of the first
 * MMV_PREFETCH_BYTES of [p, p + bytes) (weights: no kernel writes them, so reading them early
 * is safe), so the row's stream is under way while the previous kernel finishes. */
static __device__ __forceinline__ void mmv_prefetch(const void *p, int64_t bytes, int sub, int lane) {
    const int64_t off = (int64_t)lane * 128;
    if (sub == 0 && off < bytes && off < MMV_PREFETCH_BYTES) {
        asm volatile("prefetch.global.L2 [%0];" ::"l"((const char *)p + off));
    }
}

/* The addend of a matmul's outputs: row c's element n is b[c * ldb + n] (ldb 0: one row for
 * all); b NULL: none. b may be y: each element is read by the thread that then writes it. */
typedef struct mm_add {
    const float *b;
    int64_t ldb;
} mm_add;

/* The NC sums of a row's WPR warps (lane 0 of the first writes them, plus the addend): warp
 * sums, then the warps of a row add theirs through shared memory. */
template <int NC, int WPR>
static __device__ __forceinline__ void mmv_store(float acc[NC], int M, mm_add ad, float *y, int64_t ldy, int64_t n,
                                                 int64_t N) {
    __shared__ float part[MMV_WARPS][NC];
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
#pragma unroll
    for (int c = 0; c < NC; c++) acc[c] = warp_sum(acc[c]);
    if (WPR > 1) {
        if (lane == 0) {
#pragma unroll
            for (int c = 0; c < NC; c++) part[warp][c] = acc[c];
        }
        __syncthreads();
        if (warp % WPR) return;
#pragma unroll
        for (int c = 0; c < NC; c++) {
            float s = 0.0f;
#pragma unroll
            for (int i = 0; i < WPR; i++) s += part[warp + i][c];
            acc[c] = s;
        }
    }
    if (lane == 0 && n < N) {
#pragma unroll
        for (int c = 0; c < NC; c++) {
            if (c < M) y[c * ldy + n] = ad.b ? acc[c] + ad.b[c * ad.ldb + n] : acc[c];
        }
    }
}

/* WPR warps per weight row n (MMV_WARPS / WPR rows per block); a row's lanes walk its units;
 * up to NC activation rows per pass. */
template <int T, int NC, int WPR>
__global__ void __launch_bounds__(32 * MMV_WARPS)
    mmv_q(imp_cuda_wq w, const int8_t *qa, const float4 *meta, int64_t K, int M, mm_add ad, float *y, int64_t ldy,
          int64_t N) {
    typedef qunit<T> Q;
    constexpr int UPB = Q::QK / 32;
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
    const int64_t n = (int64_t)blockIdx.x * (MMV_WARPS / WPR) + warp / WPR;
    const int64_t nu = n < N ? w.nb * UPB : 0, K32 = K / 32;
    const uint8_t *body = w.body + n * w.nb * w.body_len, *head = w.head + n * w.nb * w.head_len;
    imp_pdl_launch();
    if (n < N) {
        mmv_prefetch(body, w.nb * w.body_len, warp % WPR, lane);
        mmv_prefetch(head, w.nb * w.head_len, warp % WPR, lane);
    }
    imp_pdl_wait();
    float acc[NC];
#pragma unroll
    for (int c = 0; c < NC; c++) acc[c] = 0.0f;
#pragma unroll 2
    for (int64_t iu = (warp % WPR) * 32 + lane; iu < nu; iu += 32 * WPR) {
        const int64_t ib = iu / UPB;
        const int u = (int)(iu % UPB);
        int q[8];
        float sc[2], mn[2];
        Q::load(body + ib * w.body_len, head + ib * w.head_len, u, q, sc, mn);
#pragma unroll
        for (int c = 0; c < NC; c++) {
            if (c < M) {
                int a[8];
                ld16((const uint8_t *)(qa + c * K + iu * 32), a);
                ld16((const uint8_t *)(qa + c * K + iu * 32) + 16, a + 4);
                const float4 mt = meta[c * K32 + iu];
                int s0 = 0, s1 = 0;
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    s0 = __dp4a(q[k], a[k], s0);
                    s1 = __dp4a(q[k + 4], a[k + 4], s1);
                }
                acc[c] += mt.x * (sc[0] * (float)s0 + sc[1] * (float)s1) + mn[0] * mt.y + mn[1] * mt.z;
            }
        }
    }
    mmv_store<NC, WPR>(acc, M, ad, y, ldy, n, N);
}

/* ---- matrix-vector: float weights --------------------------------------------------------------- */

template <typename W> static __device__ __forceinline__ float to_f32(W v);
template <> __device__ __forceinline__ float to_f32<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <> __device__ __forceinline__ float to_f32<float>(float v) { return v; }

/* An activation as the CPU multiplies it with W weights: rounded to W (act_convert's
 * rounding), back in F32. */
template <typename W> static __device__ __forceinline__ float act_as(float v) { return to_f32<W>(from_f32<W>(v)); }
template <> __device__ __forceinline__ float act_as<float>(float v) { return v; }

/* One 16-byte chunk wq of a weight row times the same columns (from k) of the NC F32
 * activation rows. */
template <typename W, int NC>
static __device__ __forceinline__ void mmv_f_chunk(int4 wq, const float *x, int64_t ldx, int64_t k, int M, float acc[NC]) {
    constexpr int E = 16 / sizeof(W);
    const W *wv = (const W *)&wq;
#pragma unroll
    for (int c = 0; c < NC; c++) {
        if (c < M) {
            float xv[E];
#pragma unroll
            for (int j = 0; j < E / 4; j++) *(float4 *)(xv + 4 * j) = *(const float4 *)(x + c * ldx + k + 4 * j);
#pragma unroll
            for (int e = 0; e < E; e++) acc[c] += to_f32<W>(wv[e]) * act_as<W>(xv[e]);
        }
    }
}

/* 16 bytes of a weight, read once: through the read-only path without a place in L1, which
 * stays for the activations every row of the SM reads again. */
static __device__ __forceinline__ int4 ld_weight16(const void *p) {
    int4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.s32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

/* x [M][ldx] F32, each element rounded to W as it is read (the CPU converts x to W first; a
 * separate conversion kernel would cost a launch per matmul). VEC: K % (16 / sizeof(W)) == 0
 * and rows 16-byte aligned: 16-byte weight loads, 4 of them issued before any is used. */
template <typename W, int NC, bool VEC, int WPR>
__global__ void __launch_bounds__(32 * MMV_WARPS)
    mmv_f(const W *w, int64_t ldw, const float *x, int64_t ldx, int64_t K, int M, mm_add ad, float *y, int64_t ldy,
          int64_t N) {
    constexpr int E = 16 / sizeof(W);
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32, sub = warp % WPR;
    const int64_t n = (int64_t)blockIdx.x * (MMV_WARPS / WPR) + warp / WPR;
    const int64_t KK = n < N ? K : 0;
    const W *wr = w + n * ldw;
    imp_pdl_launch();
    if (n < N) mmv_prefetch(wr, K * (int64_t)sizeof(W), sub, lane);
    imp_pdl_wait();
    float acc[NC];
#pragma unroll
    for (int c = 0; c < NC; c++) acc[c] = 0.0f;
    if (VEC) {
        constexpr int U = 4;
        const int64_t step = 32 * WPR * E;
        int64_t k = (int64_t)(sub * 32 + lane) * E;
        for (; k + (U - 1) * step < KK; k += U * step) {
            int4 wq[U];
#pragma unroll
            for (int u = 0; u < U; u++) wq[u] = ld_weight16(wr + k + u * step);
#pragma unroll
            for (int u = 0; u < U; u++) mmv_f_chunk<W, NC>(wq[u], x, ldx, k + u * step, M, acc);
        }
        for (; k < KK; k += step) mmv_f_chunk<W, NC>(ld_weight16(wr + k), x, ldx, k, M, acc);
    } else {
        for (int64_t k = sub * 32 + lane; k < KK; k += 32 * WPR) {
            const float wv = to_f32<W>(wr[k]);
#pragma unroll
            for (int c = 0; c < NC; c++) {
                if (c < M) acc[c] += wv * act_as<W>(x[c * ldx + k]);
            }
        }
    }
    mmv_store<NC, WPR>(acc, M, ad, y, ldy, n, N);
}

/* ---- dequantization (GEMM path, get_rows) ------------------------------------------------------- */

/* Rows [n0, n0 + rows) of w dequantized to F16 [rows][K]: one thread per unit. */
template <int T>
__global__ void dequant_f16(imp_cuda_wq w, int64_t n0, int64_t rows, int64_t K, __half *out) {
    typedef qunit<T> Q;
    constexpr int UPB = Q::QK / 32;
    const int64_t nu = w.nb * UPB, i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * nu) return;
    const int64_t r = i / nu, iu = i % nu, ib = iu / UPB, n = n0 + r;
    int q[8];
    float sc[2], mn[2];
    Q::load(w.body + (n * w.nb + ib) * w.body_len, w.head + (n * w.nb + ib) * w.head_len, (int)(iu % UPB), q, sc, mn);
    __half *o = out + r * K + iu * 32;
#pragma unroll
    for (int j = 0; j < 32; j += 8) {
        __half h[8];
#pragma unroll
        for (int e = 0; e < 8; e++) h[e] = __float2half_rn(qunit_value(q, sc, mn, j + e));
        *(int4 *)(o + j) = *(const int4 *)h;
    }
}

/* y[i] = row ids[i] of a quantized w, as F32: one thread per unit. */
template <int T>
__global__ void get_rows_q(imp_cuda_wq w, int64_t N, const int32_t *ids, float *y, int64_t ldy) {
    typedef qunit<T> Q;
    constexpr int UPB = Q::QK / 32;
    imp_pdl_enter();
    const int64_t nu = w.nb * UPB, iu = (int64_t)blockIdx.y * blockDim.x + threadIdx.x;
    if (iu >= nu) return;
    const int32_t n = ids[blockIdx.x];
    float *o = y + (int64_t)blockIdx.x * ldy + iu * 32;
    if (n < 0 || n >= N) { /* the engine checks ids; never read outside the tensor */
        for (int j = 0; j < 32; j++) o[j] = 0.0f;
        return;
    }
    const int64_t ib = iu / UPB;
    int q[8];
    float sc[2], mn[2];
    Q::load(w.body + (n * w.nb + ib) * w.body_len, w.head + (n * w.nb + ib) * w.head_len, (int)(iu % UPB), q, sc, mn);
#pragma unroll
    for (int j = 0; j < 32; j++) o[j] = qunit_value(q, sc, mn, j);
}

template <typename W>
__global__ void get_rows_f(const W *w, int64_t ldw, int64_t N, int64_t K, const int32_t *ids, float *y, int64_t ldy) {
    imp_pdl_enter();
    const int32_t n = ids[blockIdx.x];
    float *o = y + (int64_t)blockIdx.x * ldy;
    for (int64_t k = (int64_t)blockIdx.y * blockDim.x + threadIdx.x; k < K; k += (int64_t)gridDim.y * blockDim.x) {
        o[k] = n >= 0 && n < N ? to_f32<W>(w[n * ldw + k]) : 0.0f;
    }
}

/* ---- launchers ----------------------------------------------------------------------------------- */

static int act_kind(imp_type t) {
    switch (imp_type_get(t)->vec_dot_type) {
    case IMP_TYPE_Q8_1: return ACT_Q8_1;
    case IMP_TYPE_Q8_K: return ACT_Q8_K;
    default: return ACT_Q8_0;
    }
}

/* True when c->act holds x prepared as `what`. */
static bool act_cached(const imp_cuda *c, const imp_tensor *x, int what) {
    return c->act_of.gen == c->gen && c->act_of.x == x->data && c->act_of.ne0 == x->ne0 && c->act_of.ne1 == x->ne1 &&
           c->act_of.nb1 == x->nb1 && c->act_of.what == what;
}

imp_status imp_cuda_act_claim(imp_cuda *c, const imp_tensor *x, int what, int8_t **q, float4 **meta) {
    const size_t M = (size_t)x->ne1, K = (size_t)x->ne0;
    const bool flt = what == ACT_F16 || what == ACT_BF16;
    const size_t qbytes = (M * K * (flt || (what & ACT_DQ) ? 2 : 1) + 255) & ~(size_t)255;
    imp_status st = imp_cuda_buf_reserve(c, &c->act, qbytes + (flt ? 0 : M * (K / 32) * sizeof(float4)));
    if (st != IMP_OK) return st;
    *q = (int8_t *)c->act.p;
    *meta = flt ? NULL : (float4 *)((char *)c->act.p + qbytes);
    c->act_of.x = x->data;
    c->act_of.ne0 = x->ne0;
    c->act_of.ne1 = x->ne1;
    c->act_of.nb1 = x->nb1;
    c->act_of.what = what;
    c->act_of.gen = c->gen;
    return IMP_OK;
}

int imp_cuda_act_hint(const imp_cuda *c, int64_t C) {
    for (int i = 0; i < c->n_kact; i++) {
        if (c->kact[i].K != C) continue;
        int best = ACT_NONE;
        int64_t most = 0;
        for (int k = 0; k < IMP_CUDA_KACT_KINDS; k++) {
            if (c->kact[i].rows[k] > most) most = c->kact[i].rows[k], best = k;
        }
        return best == 3 ? ACT_F16 : best == 4 ? ACT_NONE : best;
    }
    return ACT_NONE;
}

/* Quantizes x [M, K] into c->act for weight type t; *qa and *meta point into it. dq: F16
 * values d*q at *qa instead (no meta). */
static imp_status quantize_act(imp_cuda *c, const imp_tensor *x, imp_type t, bool dq, const int8_t **qa,
                               const float4 **meta) {
    const int64_t M = x->ne1, K = x->ne0, ldx = (int64_t)(x->nb1 / sizeof(float));
    const int kind = act_kind(t), what = kind | (dq ? ACT_DQ : 0);
    const bool cached = act_cached(c, x, what);
    int8_t *q;
    float4 *mt;
    imp_status st = imp_cuda_act_claim(c, x, what, &q, &mt);
    if (st != IMP_OK) return st;
    *qa = q;
    *meta = mt;
    if (cached) return IMP_OK;
    const float *xd = (const float *)x->data;
    const dim3 g256(imp_cuda_blocks(K / 256, 8), (unsigned)M), g32(imp_cuda_blocks(K / 32, 8), (unsigned)M);
    if (kind == ACT_Q8_K) {
        if (dq) IMP_CUDA_LAUNCH(c, act_q8_K<true>, dim3(g256), dim3(256), 0, xd, ldx, K, q, mt);
        else IMP_CUDA_LAUNCH(c, act_q8_K<false>, dim3(g256), dim3(256), 0, xd, ldx, K, q, mt);
    } else if (kind == ACT_Q8_1) {
        if (dq) IMP_CUDA_LAUNCH(c, (act_q8_32<true, true>), dim3(g32), dim3(256), 0, xd, ldx, K, q, mt);
        else IMP_CUDA_LAUNCH(c, (act_q8_32<true, false>), dim3(g32), dim3(256), 0, xd, ldx, K, q, mt);
    } else {
        if (dq) IMP_CUDA_LAUNCH(c, (act_q8_32<false, true>), dim3(g32), dim3(256), 0, xd, ldx, K, q, mt);
        else IMP_CUDA_LAUNCH(c, (act_q8_32<false, false>), dim3(g32), dim3(256), 0, xd, ldx, K, q, mt);
    }
    CUDA_LAUNCHED();
    return IMP_OK;
}

/* act_cached's tag of an activation copy converted to W (the quantized ones use 0..6). */
template <typename W> struct act_tag;
template <> struct act_tag<__half> { static const int v = ACT_F16; };
template <> struct act_tag<__nv_bfloat16> { static const int v = ACT_BF16; };

/* x [M, K] F32 -> contiguous [M][K] of type W in c->act. */
template <typename W>
static imp_status convert_act(imp_cuda *c, const imp_tensor *x, const W **out) {
    const int64_t M = x->ne1, K = x->ne0;
    const bool cached = act_cached(c, x, act_tag<W>::v);
    int8_t *q;
    float4 *unused;
    imp_status st = imp_cuda_act_claim(c, x, act_tag<W>::v, &q, &unused);
    if (st != IMP_OK) return st;
    *out = (const W *)q;
    if (cached) return IMP_OK;
    const unsigned gx = imp_cuda_blocks(K, 256) < 64 ? imp_cuda_blocks(K, 256) : 64;
    IMP_CUDA_LAUNCH(c, act_convert<W>, dim3(dim3(gx, (unsigned)M)), dim3(256), 0, (const float *)x->data, (int64_t)(x->nb1 / 4), K, (W *)c->act.p);
    CUDA_LAUNCHED();
    return IMP_OK;
}

/* Warps per weight row for a single activation row (decode): more than one when the matrix
 * has too few rows to keep every SM's loads in flight (measured on the H100: llama3-8b's
 * 4096- and 6144-row matrices decode faster with 2). */
static int mmv_wpr(const imp_cuda *c, int64_t N) {
    const int64_t per_sm = N / (c->sm_count > 0 ? c->sm_count : 1);
    return per_sm < 16 ? 4 : per_sm < 64 ? 2 : 1;
}

template <int T>
static imp_status mmv_q_launch(imp_cuda *c, const imp_cuda_wq &w, const int8_t *qa, const float4 *meta, int64_t K, int M,
                               mm_add ad, float *y, int64_t ldy, int64_t N) {
    const unsigned threads = 32 * MMV_WARPS;
    if (M == 1) {
        const int wpr = mmv_wpr(c, N);
        const unsigned grid = imp_cuda_blocks(N, MMV_WARPS / wpr);
        if (wpr == 4) IMP_CUDA_LAUNCH(c, (mmv_q<T, 1, 4>), dim3(grid), dim3(threads), 0, w, qa, meta, K, 1, ad, y, ldy, N);
        else if (wpr == 2) IMP_CUDA_LAUNCH(c, (mmv_q<T, 1, 2>), dim3(grid), dim3(threads), 0, w, qa, meta, K, 1, ad, y, ldy, N);
        else IMP_CUDA_LAUNCH(c, (mmv_q<T, 1, 1>), dim3(grid), dim3(threads), 0, w, qa, meta, K, 1, ad, y, ldy, N);
        CUDA_LAUNCHED();
        return IMP_OK;
    }
    const unsigned grid = imp_cuda_blocks(N, MMV_WARPS);
    for (int m0 = 0; m0 < M; m0 += MMV_COLS) {
        const int mc = M - m0 < MMV_COLS ? M - m0 : MMV_COLS;
        const int8_t *q = qa + (int64_t)m0 * K;
        const float4 *mt = meta + (int64_t)m0 * (K / 32);
        float *yy = y + (int64_t)m0 * ldy;
        const mm_add aa = {ad.b ? ad.b + m0 * ad.ldb : NULL, ad.ldb};
        if (mc == 1) {
            IMP_CUDA_LAUNCH(c, (mmv_q<T, 1, 1>), dim3(grid), dim3(threads), 0, w, q, mt, K, mc, aa, yy, ldy, N);
        } else if (mc == 2) {
            IMP_CUDA_LAUNCH(c, (mmv_q<T, 2, 1>), dim3(grid), dim3(threads), 0, w, q, mt, K, mc, aa, yy, ldy, N);
        } else if (mc <= 4) {
            IMP_CUDA_LAUNCH(c, (mmv_q<T, 4, 1>), dim3(grid), dim3(threads), 0, w, q, mt, K, mc, aa, yy, ldy, N);
        } else {
            IMP_CUDA_LAUNCH(c, (mmv_q<T, 8, 1>), dim3(grid), dim3(threads), 0, w, q, mt, K, mc, aa, yy, ldy, N);
        }
        CUDA_LAUNCHED();
    }
    return IMP_OK;
}

template <typename W, bool VEC>
static imp_status mmv_f_launch2(imp_cuda *c, const W *w, int64_t ldw, const float *x, int64_t ldx, int64_t K, int M, mm_add ad,
                                float *y, int64_t ldy, int64_t N) {
    const unsigned threads = 32 * MMV_WARPS;
    if (M == 1) {
        const int wpr = mmv_wpr(c, N);
        const unsigned grid = imp_cuda_blocks(N, MMV_WARPS / wpr);
        if (wpr == 4) IMP_CUDA_LAUNCH(c, (mmv_f<W, 1, VEC, 4>), dim3(grid), dim3(threads), 0, w, ldw, x, ldx, K, 1, ad, y, ldy, N);
        else if (wpr == 2) IMP_CUDA_LAUNCH(c, (mmv_f<W, 1, VEC, 2>), dim3(grid), dim3(threads), 0, w, ldw, x, ldx, K, 1, ad, y, ldy, N);
        else IMP_CUDA_LAUNCH(c, (mmv_f<W, 1, VEC, 1>), dim3(grid), dim3(threads), 0, w, ldw, x, ldx, K, 1, ad, y, ldy, N);
        CUDA_LAUNCHED();
        return IMP_OK;
    }
    const unsigned grid = imp_cuda_blocks(N, MMV_WARPS);
    for (int m0 = 0; m0 < M; m0 += MMV_COLS) {
        const int mc = M - m0 < MMV_COLS ? M - m0 : MMV_COLS;
        const float *xx = x + (int64_t)m0 * ldx;
        float *yy = y + (int64_t)m0 * ldy;
        const mm_add aa = {ad.b ? ad.b + m0 * ad.ldb : NULL, ad.ldb};
        if (mc == 1) {
            IMP_CUDA_LAUNCH(c, (mmv_f<W, 1, VEC, 1>), dim3(grid), dim3(threads), 0, w, ldw, xx, ldx, K, mc, aa, yy, ldy, N);
        } else if (mc == 2) {
            IMP_CUDA_LAUNCH(c, (mmv_f<W, 2, VEC, 1>), dim3(grid), dim3(threads), 0, w, ldw, xx, ldx, K, mc, aa, yy, ldy, N);
        } else if (mc <= 4) {
            IMP_CUDA_LAUNCH(c, (mmv_f<W, 4, VEC, 1>), dim3(grid), dim3(threads), 0, w, ldw, xx, ldx, K, mc, aa, yy, ldy, N);
        } else {
            IMP_CUDA_LAUNCH(c, (mmv_f<W, 8, VEC, 1>), dim3(grid), dim3(threads), 0, w, ldw, xx, ldx, K, mc, aa, yy, ldy, N);
        }
        CUDA_LAUNCHED();
    }
    return IMP_OK;
}

template <typename W>
static imp_status mmv_f_launch(imp_cuda *c, const W *w, int64_t ldw, const float *x, int64_t ldx, int64_t K, int M, mm_add ad,
                               float *y, int64_t ldy, int64_t N) {
    constexpr int E = 16 / sizeof(W);
    const bool vec = K % E == 0 && ldw % E == 0 && ldx % 4 == 0 && ((uintptr_t)w & 15) == 0 && ((uintptr_t)x & 15) == 0;
    return vec ? mmv_f_launch2<W, true>(c, w, ldw, x, ldx, K, M, ad, y, ldy, N)
               : mmv_f_launch2<W, false>(c, w, ldw, x, ldx, K, M, ad, y, ldy, N);
}

static cudaDataType blas_type(imp_type t) {
    return t == IMP_TYPE_F32 ? CUDA_R_32F : t == IMP_TYPE_BF16 ? CUDA_R_16BF : CUDA_R_16F;
}

/* y[:, n0 : n0+rows] = x w[n0 : n0+rows]^T (+ y when acc) with w given as a dense [rows][ldw]
 * matrix. */
static imp_status gemm(imp_cuda *c, const void *w, imp_type wt, int64_t ldw, int64_t rows, const void *x, int64_t ldx,
                       int64_t M, int64_t K, bool acc, float *y, int64_t ldy) {
    const float alpha = 1.0f, beta = acc ? 1.0f : 0.0f;
    CUBLAS_TRY(cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, (int)M, (int)K, &alpha, w, blas_type(wt), (int)ldw, x,
                            blas_type(wt), (int)ldx, &beta, y, CUDA_R_32F, (int)ldy, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return IMP_OK;
}

template <int T>
static imp_status dequant_launch(imp_cuda *c, const imp_cuda_wq &w, int64_t n0, int64_t rows, int64_t K, __half *out) {
    const int64_t units = rows * w.nb * (qunit<T>::QK / 32);
    dequant_f16<T><<<imp_cuda_blocks(units, 256), 256, 0, c->stream>>>(w, n0, rows, K, out);
    CUDA_LAUNCHED();
    return IMP_OK;
}

static imp_status dequant_rows(imp_cuda *c, const imp_tensor *w, int64_t n0, int64_t rows, __half *out) {
    const imp_cuda_wq q = imp_cuda_wq_of(w);
    switch (w->type) {
#define X(t) \
    case t: return dequant_launch<t>(c, q, n0, rows, w->ne0, out);
        IMP_CUDA_QTYPES(X)
#undef X
    default: return IMP_ERR_UNSUPPORTED;
    }
}

/* acc: y += x w^T (the addend is y). */
static imp_status matmul_gemm(imp_cuda *c, const imp_tensor *x, const imp_tensor *w, bool acc, imp_tensor *y) {
    const int64_t M = x->ne1, K = x->ne0, N = w->ne1, ldy = (int64_t)(y->nb1 / sizeof(float));
    float *yd = (float *)y->data;
    imp_status st;
    if (w->type == IMP_TYPE_F32) return gemm(c, w->data, w->type, K, N, x->data, (int64_t)(x->nb1 / 4), M, K, acc, yd, ldy);
    if (w->type == IMP_TYPE_BF16) {
        const __nv_bfloat16 *xb;
        if ((st = convert_act(c, x, &xb)) != IMP_OK) return st;
        return gemm(c, w->data, w->type, K, N, xb, K, M, K, acc, yd, ldy);
    }
    const __half *xh;
    if (w->type == IMP_TYPE_F16) {
        if ((st = convert_act(c, x, &xh)) != IMP_OK) return st;
        return gemm(c, w->data, w->type, K, N, xh, K, M, K, acc, yd, ldy);
    }
    /* quantized weights: the activations' quantized values (as the CPU and the integer kernels
     * see them), exactly representable in F16 up to its rounding */
    const int8_t *xq;
    const float4 *unused;
    if ((st = quantize_act(c, x, w->type, true, &xq, &unused)) != IMP_OK) return st;
    xh = (const __half *)xq;
    int64_t chunk = (int64_t)(WDQ_CHUNK_BYTES / ((size_t)K * sizeof(__half)));
    if (chunk > N) chunk = N;
    if (chunk < 1) chunk = 1;
    if ((st = imp_cuda_buf_reserve(c, &c->wdq, (size_t)chunk * (size_t)K * sizeof(__half))) != IMP_OK) return st;
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        const int64_t rows = N - n0 < chunk ? N - n0 : chunk;
        if ((st = dequant_rows(c, w, n0, rows, (__half *)c->wdq.p)) != IMP_OK) return st;
        if ((st = gemm(c, c->wdq.p, IMP_TYPE_F16, K, rows, xh, K, M, K, acc, yd + n0, ldy)) != IMP_OK) return st;
    }
    return IMP_OK;
}

static imp_status matmul_mmv(imp_cuda *c, const imp_tensor *x, const imp_tensor *w, mm_add ad, imp_tensor *y) {
    const int64_t M = x->ne1, K = x->ne0, N = w->ne1, ldy = (int64_t)(y->nb1 / sizeof(float));
    float *yd = (float *)y->data;
    imp_status st;
    const float *xd = (const float *)x->data;
    const int64_t ldx = (int64_t)(x->nb1 / 4);
    switch (w->type) {
    case IMP_TYPE_F32: return mmv_f_launch<float>(c, (const float *)w->data, K, xd, ldx, K, (int)M, ad, yd, ldy, N);
    case IMP_TYPE_F16: return mmv_f_launch<__half>(c, (const __half *)w->data, K, xd, ldx, K, (int)M, ad, yd, ldy, N);
    case IMP_TYPE_BF16:
        return mmv_f_launch<__nv_bfloat16>(c, (const __nv_bfloat16 *)w->data, K, xd, ldx, K, (int)M, ad, yd, ldy, N);
    default: break;
    }
    const int8_t *qa;
    const float4 *meta;
    if ((st = quantize_act(c, x, w->type, false, &qa, &meta)) != IMP_OK) return st;
    const imp_cuda_wq q = imp_cuda_wq_of(w);
    switch (w->type) {
#define X(t) \
    case t: return mmv_q_launch<t>(c, q, qa, meta, K, (int)M, ad, yd, ldy, N);
        IMP_CUDA_QTYPES(X)
#undef X
    default: return IMP_ERR_UNSUPPORTED;
    }
}

/* Whether y's rows overlap x's (then x's prepared copy is stale after this matmul). */
static bool overlaps(const imp_tensor *x, const imp_tensor *y) {
    const char *x0 = (const char *)x->data, *x1 = x0 + (size_t)x->ne1 * x->nb1;
    const char *y0 = (const char *)y->data, *y1 = y0 + (size_t)y->ne1 * y->nb1;
    return x0 < y1 && y0 < x1;
}

static imp_status matmul_run(imp_cuda *c, const imp_tensor *x, const imp_tensor *w, const imp_tensor *b, imp_tensor *y);

imp_status imp_cuda_matmul(imp_backend *be, const imp_tensor *x, const imp_tensor *w, const imp_tensor *b, imp_tensor *y) {
    imp_cuda *c = (imp_cuda *)be;
    const imp_status st = matmul_run(c, x, w, b, y);
    if (st != IMP_OK || overlaps(x, y)) c->gen++;
    return st;
}

static imp_status matmul_run(imp_cuda *c, const imp_tensor *x, const imp_tensor *w, const imp_tensor *b, imp_tensor *y) {
    const imp_type_traits *tr = imp_type_get(w->type);
    if (!tr || !tr->dequantize || x->type != IMP_TYPE_F32 || y->type != IMP_TYPE_F32 || x->ne0 != w->ne0 ||
        y->ne0 != w->ne1 || y->ne1 != x->ne1 || w->ne0 % tr->block_size != 0 || x->nb1 % sizeof(float) ||
        y->nb1 % sizeof(float) || x->ne1 < 1 || !imp_matmul_addend_ok(b, y) || (b && b->nb1 % sizeof(float))) {
        return IMP_ERR_INTERNAL;
    }
    if (x->ne1 <= (w->type == IMP_TYPE_F16 || w->type == IMP_TYPE_BF16 || w->type == IMP_TYPE_F32 ? MMV_COLS : MMV_MAX_M)) {
        const mm_add ad = {b ? (const float *)b->data : NULL, b && b->ne1 > 1 ? (int64_t)(b->nb1 / sizeof(float)) : 0};
        return matmul_mmv(c, x, w, ad, y);
    }
    const bool acc = b && b->data == y->data;
    const imp_status st = matmul_gemm(c, x, w, acc, y);
    if (st != IMP_OK || !b || acc) return st;
    return imp_cuda_add(&c->base, y, b, y);
}

template <int T>
static imp_status get_rows_q_launch(imp_cuda *c, const imp_tensor *w, const int32_t *ids, int n, imp_tensor *y) {
    const imp_cuda_wq q = imp_cuda_wq_of(w);
    const int64_t nu = q.nb * (qunit<T>::QK / 32);
    IMP_CUDA_LAUNCH(c, get_rows_q<T>, dim3(dim3((unsigned)n, imp_cuda_blocks(nu, 128))), dim3(128), 0, q, w->ne1, ids, (float *)y->data,
                                                                                     (int64_t)(y->nb1 / 4));
    CUDA_LAUNCHED();
    return IMP_OK;
}

template <typename W>
static imp_status get_rows_f_launch(imp_cuda *c, const imp_tensor *w, const int32_t *ids, int n, imp_tensor *y) {
    const unsigned gy = imp_cuda_blocks(w->ne0, 256) < 32 ? imp_cuda_blocks(w->ne0, 256) : 32;
    IMP_CUDA_LAUNCH(c, get_rows_f<W>, dim3(dim3((unsigned)n, gy)), dim3(256), 0, (const W *)w->data, (int64_t)(w->nb1 / sizeof(W)), w->ne1,
                                                               w->ne0, ids, (float *)y->data, (int64_t)(y->nb1 / 4));
    CUDA_LAUNCHED();
    return IMP_OK;
}

imp_status imp_cuda_get_rows(imp_backend *be, const imp_tensor *w, const int32_t *ids, int n, imp_tensor *y) {
    IMP_CUDA_WRITES(be);
    imp_cuda *c = (imp_cuda *)be;
    const imp_type_traits *tr = imp_type_get(w->type);
    if (!tr || !tr->dequantize || y->type != IMP_TYPE_F32 || y->ne0 != w->ne0 || y->ne1 != n || n < 0) {
        return IMP_ERR_INTERNAL;
    }
    if (n == 0) return IMP_OK;
    switch (w->type) {
    case IMP_TYPE_F32: return get_rows_f_launch<float>(c, w, ids, n, y);
    case IMP_TYPE_F16: return get_rows_f_launch<__half>(c, w, ids, n, y);
    case IMP_TYPE_BF16: return get_rows_f_launch<__nv_bfloat16>(c, w, ids, n, y);
#define X(t) \
    case t: return get_rows_q_launch<t>(c, w, ids, n, y);
        IMP_CUDA_QTYPES(X)
#undef X
    default: return IMP_ERR_UNSUPPORTED;
    }
}
