/*
 * CUDA ops other than matmul and attention: RMSNorm, residual add, scale, gated activations,
 * soft-capping, and RoPE fused with the KV-cache write. The float expressions follow the CPU
 * reference (cpu_ops.c) so results agree to rounding: RMSNorm sums squares in double, RoPE
 * angles are built by the same repeated multiplication.
 *
 * RMSNorm of long rows and the gated activations also prepare their output for the matmul it
 * most likely feeds (imp_cuda_act_hint: quantized like the CPU, or F16; cuda_act.cuh) while
 * writing it, so that matmul finds it ready instead of reading the rows again.
 */
#include "backend/cuda/cuda_act.cuh"

#define EW_THREADS 256
#define MAX_GRID_Y 65535

static bool same_shape(const imp_tensor *a, const imp_tensor *b) {
    return a->type == IMP_TYPE_F32 && b->type == IMP_TYPE_F32 && a->ne0 == b->ne0 && a->ne1 == b->ne1 &&
           a->nb1 % sizeof(float) == 0 && b->nb1 % sizeof(float) == 0;
}

static inline int64_t ld(const imp_tensor *t) { return (int64_t)(t->nb1 / sizeof(float)); }

static dim3 ew_grid(const imp_tensor *t) {
    const int64_t gy = t->ne1 < MAX_GRID_Y ? t->ne1 : MAX_GRID_Y;
    return dim3(imp_cuda_blocks(t->ne0, EW_THREADS), (unsigned)gy);
}

/* ---- RMSNorm: one warp per short row (per-head norms), one block per long row --------------- */

#define NORM_BLOCK_MIN_C 512

/* Rows r = (row, segment) pairs: segs segments of C per row. */
__global__ void rms_norm_k(const float *x, int64_t ldx, const float *w, float *y, int64_t ldy, int64_t R, int64_t C,
                           int64_t segs, float eps, bool one_plus_w) {
    imp_pdl_enter();
    const int lane = threadIdx.x & 31;
    const int64_t r = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (r >= R) return;
    const float *xr = x + (r / segs) * ldx + (r % segs) * C;
    float *yr = y + (r / segs) * ldy + (r % segs) * C;
    double ss = 0.0;
    for (int64_t i = lane; i < C; i += 32) ss += (double)(xr[i] * xr[i]);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    const float s = 1.0f / sqrtf((float)(ss / (double)C) + eps);
    for (int64_t i = lane; i < C; i += 32) {
        const float wi = one_plus_w ? 1.0f + w[i] : w[i];
        yr[i] = __fmul_rn(__fmul_rn(xr[i], s), wi);
    }
}

/* Writes v, the value of element i of a row, and prepares it: a warp holds one group of WHAT
 * (32 elements, lane j element j; or 256 for Q8_K, lane j elements 8j..8j+7, given as v[e]). */
template <int WHAT>
static __device__ __forceinline__ void prep_group(const float *v, int lane, int64_t g, int64_t row, int64_t C,
                                                  int8_t *q, float4 *mt) {
    constexpr int BASE = WHAT & ~ACT_DQ;
    constexpr bool DQ = (WHAT & ACT_DQ) != 0;
    if (WHAT == ACT_F16) {
        ((__half *)q)[row * C + g * 32 + lane] = __float2half_rn(v[0]);
    } else if (BASE == ACT_Q8_K) {
        int8_t *qq = DQ ? (int8_t *)((__half *)q + row * C + g * 256) : q + row * C + g * 256;
        act_emit256<DQ>(v, lane, qq, mt + row * (C / 32) + g * 8);
    } else {
        int8_t *qq = DQ ? (int8_t *)((__half *)q + row * C + g * 32) : q + row * C + g * 32;
        act_emit32<BASE == ACT_Q8_1, DQ>(v[0], lane, qq, mt + row * (C / 32) + g);
    }
}

/* Elements per group a warp prepares. */
template <int WHAT> struct prep_n {
    static constexpr int N = (WHAT & ~ACT_DQ) == ACT_Q8_K ? 256 : 32;
};

/* Long rows: one block of NORM_THREADS per (row, segment). Warp w holds groups g = w + 32k of
 * the row (prep_n elements each) in registers from the one read of x, so the sum of squares,
 * the scaling and the preparation for the next matmul (WHAT != ACT_NONE; the groups are the
 * preparation's units) all work on them: every load is issued before any is waited for. Rows
 * up to NORM_REGS * NORM_THREADS elements, C a multiple of the group. */
#define NORM_THREADS 1024
#define NORM_REGS 16

template <int WHAT>
__global__ void __launch_bounds__(NORM_THREADS)
    rms_norm_row_k(const float *x, int64_t ldx, const float *w, float *y, int64_t ldy, int64_t C, int segs, float eps,
                   bool one_plus_w, int8_t *q, float4 *mt) {
    constexpr int N = prep_n<WHAT>::N, PER = N / 32, KMAX = NORM_REGS / PER, NW = NORM_THREADS / 32;
    __shared__ double part[NW];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int64_t row = blockIdx.x / segs;
    const float *xr = x + row * ldx + (int64_t)(blockIdx.x % segs) * C;
    float *yr = y + row * ldy + (int64_t)(blockIdx.x % segs) * C;
    const int ng = (int)(C / N);
    /* the weights (which no kernel writes) are read before waiting for x */
    imp_pdl_launch();
    float wv[NORM_REGS];
#pragma unroll
    for (int k = 0; k < KMAX; k++) {
        const int g = warp + NW * k;
#pragma unroll
        for (int e = 0; e < PER; e++) {
            const float wi = g < ng ? w[(int64_t)g * N + lane * PER + e] : 0.0f;
            wv[k * PER + e] = one_plus_w ? 1.0f + wi : wi;
        }
    }
    imp_pdl_wait();
    float v[NORM_REGS];
    double ss = 0.0;
#pragma unroll
    for (int k = 0; k < KMAX; k++) {
        const int g = warp + NW * k;
#pragma unroll
        for (int e = 0; e < PER; e++) v[k * PER + e] = g < ng ? xr[(int64_t)g * N + lane * PER + e] : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < NORM_REGS; i++) ss += (double)(v[i] * v[i]);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if (lane == 0) part[warp] = ss;
    __syncthreads();
    ss = 0.0;
    for (int k = 0; k < NW; k++) ss += part[k];
    const float s = 1.0f / sqrtf((float)(ss / (double)C) + eps);
#pragma unroll
    for (int k = 0; k < KMAX; k++) {
        const int g = warp + NW * k;
        if (g >= ng) break; /* uniform across the warp */
#pragma unroll
        for (int e = 0; e < PER; e++) {
            const int64_t i = (int64_t)g * N + lane * PER + e;
            v[k * PER + e] = __fmul_rn(__fmul_rn(v[k * PER + e], s), wv[k * PER + e]);
            yr[i] = v[k * PER + e];
        }
        if (WHAT != ACT_NONE) prep_group<WHAT>(v + k * PER, lane, g, row, C, q, mt);
    }
}

/* Rows too long (or odd) for that: a block of 256 walks the row twice. */
__global__ void rms_norm_long_k(const float *x, int64_t ldx, const float *w, float *y, int64_t ldy, int64_t C, int segs,
                                float eps, bool one_plus_w) {
    __shared__ double part[8];
    imp_pdl_enter();
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const float *xr = x + (int64_t)(blockIdx.x / segs) * ldx + (int64_t)(blockIdx.x % segs) * C;
    float *yr = y + (int64_t)(blockIdx.x / segs) * ldy + (int64_t)(blockIdx.x % segs) * C;
    double ss = 0.0;
#pragma unroll 4
    for (int64_t i = tid; i < C; i += 256) ss += (double)(xr[i] * xr[i]);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if (lane == 0) part[warp] = ss;
    __syncthreads();
    ss = 0.0;
    for (int k = 0; k < 8; k++) ss += part[k];
    const float s = 1.0f / sqrtf((float)(ss / (double)C) + eps);
    for (int64_t i = tid; i < C; i += 256) {
        const float wi = one_plus_w ? 1.0f + w[i] : w[i];
        yr[i] = __fmul_rn(__fmul_rn(xr[i], s), wi);
    }
}

/* What an op whose output y feeds a matmul prepares (ACT_NONE: nothing), and where. */
static int prep_of(imp_cuda *c, const imp_tensor *y, int8_t **q, float4 **mt) {
    int what = imp_cuda_act_hint(c, y->ne0);
    if (what == ACT_NONE || y->ne0 % (what == ACT_Q8_K ? 256 : 32)) return ACT_NONE;
    if (what == ACT_F16 && y->ne1 <= IMP_CUDA_MMV_F_MAX_M) return ACT_NONE; /* read as F32 there */
    if (what != ACT_F16 && y->ne1 > IMP_CUDA_MMV_MAX_M) what |= ACT_DQ;
    if (imp_cuda_act_claim(c, y, what, q, mt) != IMP_OK) return ACT_NONE;
    return what;
}

#define PREP_CASES(X) X(ACT_Q8_0) X(ACT_Q8_1) X(ACT_Q8_K) X(ACT_Q8_0 | ACT_DQ) X(ACT_Q8_1 | ACT_DQ) X(ACT_Q8_K | ACT_DQ) X(ACT_F16)

imp_status imp_cuda_rms_norm(imp_backend *be, const imp_tensor *x, const imp_tensor *w, float eps, bool one_plus_w,
                             imp_tensor *y) {
    IMP_CUDA_WRITES(be);
    imp_cuda *c = (imp_cuda *)be;
    if (!same_shape(x, y) || w->type != IMP_TYPE_F32 || w->ne0 < 1 || x->ne0 % w->ne0) return IMP_ERR_INTERNAL;
    if (x->ne1 == 0) return IMP_OK;
    const float *xd = (const float *)x->data, *wd = (const float *)w->data;
    float *yd = (float *)y->data;
    const int64_t C = w->ne0, segs = x->ne0 / C, R = x->ne1 * segs;
    if (C >= NORM_BLOCK_MIN_C && R <= INT32_MAX && segs <= INT32_MAX) {
        if (C % 32 || C > (int64_t)NORM_REGS * NORM_THREADS) {
            IMP_CUDA_LAUNCH(c, rms_norm_long_k, dim3((unsigned)R), dim3(256), 0, xd, ld(x), wd, yd, ld(y), C, (int)segs, eps,
                            one_plus_w);
            CUDA_LAUNCHED();
            return IMP_OK;
        }
        int8_t *q = NULL;
        float4 *mt = NULL;
        const int what = segs == 1 ? prep_of(c, y, &q, &mt) : ACT_NONE;
        switch (what) {
#define X(W)                                                                                                               \
    case W:                                                                                                                \
        IMP_CUDA_LAUNCH(c, (rms_norm_row_k<W>), dim3((unsigned)R), dim3(NORM_THREADS), 0, xd, ld(x), wd, yd, ld(y), C,      \
                        (int)segs, eps, one_plus_w, q, mt);                                                                \
        break;
            PREP_CASES(X)
#undef X
        default:
            IMP_CUDA_LAUNCH(c, (rms_norm_row_k<ACT_NONE>), dim3((unsigned)R), dim3(NORM_THREADS), 0, xd, ld(x), wd, yd,
                            ld(y), C, (int)segs, eps, one_plus_w, q, mt);
        }
        CUDA_LAUNCHED();
        return IMP_OK;
    }
    IMP_CUDA_LAUNCH(c, rms_norm_k, dim3(imp_cuda_blocks(R, 8)), dim3(256), 0, xd, ld(x), wd, yd, ld(y), R, C, segs, eps,
                    one_plus_w);
    CUDA_LAUNCHED();
    return IMP_OK;
}

/* ---- elementwise ---------------------------------------------------------------------------------- */

enum { EW_ADD, EW_SCALE, EW_SOFTCAP, EW_SILU, EW_GELU };

/* act(g) * u, as the CPU computes it. */
template <int OP> static __device__ __forceinline__ float glu1(float g, float u) {
    if (OP == EW_SILU) return __fmul_rn(g / (1.0f + expf(-g)), u);
    const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
    const float a = __fmul_rn(__fmul_rn(0.5f, g),
                              1.0f + tanhf(__fmul_rn(k, __fadd_rn(g, __fmul_rn(__fmul_rn(__fmul_rn(0.044715f, g), g), g)))));
    return __fmul_rn(a, u);
}

template <int OP>
__global__ void ew_k(const float *a, int64_t lda, const float *b, int64_t ldb, float *y, int64_t ldy, int64_t R,
                     int64_t C, float s) {
    imp_pdl_enter();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= C) return;
    for (int64_t r = blockIdx.y; r < R; r += gridDim.y) {
        const float x = a[r * lda + i];
        float v;
        if (OP == EW_ADD) {
            v = x + b[r * ldb + i];
        } else if (OP == EW_SCALE) {
            v = x * s;
        } else if (OP == EW_SOFTCAP) {
            v = s * tanhf(x / s);
        } else {
            v = glu1<OP>(x, b[r * ldb + i]);
        }
        y[r * ldy + i] = v;
    }
}

template <int OP>
static imp_status ew(imp_cuda *c, const imp_tensor *a, const imp_tensor *b, int64_t ldb, imp_tensor *y, float s) {
    if (a->ne1 == 0 || a->ne0 == 0) return IMP_OK;
    IMP_CUDA_LAUNCH(c, ew_k<OP>, ew_grid(a), dim3(EW_THREADS), 0, (const float *)a->data, ld(a),
                    b ? (const float *)b->data : (const float *)NULL, ldb, (float *)y->data, ld(y), a->ne1, a->ne0, s);
    CUDA_LAUNCHED();
    return IMP_OK;
}

imp_status imp_cuda_add(imp_backend *be, const imp_tensor *a, const imp_tensor *b, imp_tensor *y) {
    IMP_CUDA_WRITES(be);
    if (!same_shape(a, y) || b->type != IMP_TYPE_F32 || b->ne0 != a->ne0 || (b->ne1 != a->ne1 && b->ne1 != 1) ||
        b->nb1 % sizeof(float)) {
        return IMP_ERR_INTERNAL;
    }
    return ew<EW_ADD>((imp_cuda *)be, a, b, b->ne1 == 1 ? 0 : ld(b), y, 0.0f);
}

imp_status imp_cuda_scale(imp_backend *be, const imp_tensor *x, float s, imp_tensor *y) {
    IMP_CUDA_WRITES(be);
    if (!same_shape(x, y)) return IMP_ERR_INTERNAL;
    return ew<EW_SCALE>((imp_cuda *)be, x, NULL, 0, y, s);
}

imp_status imp_cuda_softcap(imp_backend *be, imp_tensor *x, float cap) {
    IMP_CUDA_WRITES(be);
    if (x->type != IMP_TYPE_F32 || !(cap > 0.0f) || x->nb1 % sizeof(float)) return IMP_ERR_INTERNAL;
    return ew<EW_SOFTCAP>((imp_cuda *)be, x, NULL, 0, x, cap);
}

/* GLU that also prepares its output: a warp per group, 8 warps per block, blockIdx.y rows. */
template <int OP, int WHAT>
__global__ void glu_prep_k(const float *gt, int64_t ldg, const float *up, int64_t ldu, float *y, int64_t ldy, int64_t C,
                           int8_t *q, float4 *mt) {
    constexpr int N = prep_n<WHAT>::N, PER = N / 32;
    imp_pdl_enter();
    const int lane = threadIdx.x & 31;
    const int64_t g = (int64_t)blockIdx.x * 8 + threadIdx.x / 32, r = blockIdx.y;
    if (g >= C / N) return;
    float v[PER];
#pragma unroll
    for (int e = 0; e < PER; e++) {
        const int64_t i = g * N + PER * lane + e;
        v[e] = glu1<OP>(gt[r * ldg + i], up[r * ldu + i]);
        y[r * ldy + i] = v[e];
    }
    prep_group<WHAT>(v, lane, g, r, C, q, mt);
}

template <int OP>
static imp_status glu_run(imp_cuda *c, const imp_tensor *gate, const imp_tensor *up, imp_tensor *y) {
    int8_t *q = NULL;
    float4 *mt = NULL;
    const int what = gate->ne1 > 0 && gate->ne1 <= MAX_GRID_Y ? prep_of(c, y, &q, &mt) : ACT_NONE;
    const float *gd = (const float *)gate->data, *ud = (const float *)up->data;
    float *yd = (float *)y->data;
    const int64_t C = gate->ne0;
    switch (what) {
#define X(W)                                                                                                         \
    case W:                                                                                                          \
        IMP_CUDA_LAUNCH(c, (glu_prep_k<OP, W>), dim3(imp_cuda_blocks(C / prep_n<W>::N, 8), (unsigned)gate->ne1),      \
                        dim3(256), 0, gd, ld(gate), ud, ld(up), yd, ld(y), C, q, mt);                                \
        CUDA_LAUNCHED();                                                                                             \
        return IMP_OK;
        PREP_CASES(X)
#undef X
    default: return ew<OP>(c, gate, up, ld(up), y, 0.0f);
    }
}

imp_status imp_cuda_glu(imp_backend *be, const imp_tensor *gate, const imp_tensor *up, imp_act act, imp_tensor *y) {
    IMP_CUDA_WRITES(be);
    if (!same_shape(gate, up) || !same_shape(gate, y)) return IMP_ERR_INTERNAL;
    if (act == IMP_ACT_SILU) return glu_run<EW_SILU>((imp_cuda *)be, gate, up, y);
    if (act == IMP_ACT_GELU_TANH) return glu_run<EW_GELU>((imp_cuda *)be, gate, up, y);
    return IMP_ERR_INTERNAL;
}

/* ---- RoPE + KV store ---------------------------------------------------------------------------- */

#define ROPE_MAX_HALF 512

typedef struct rope_args {
    int style, n_dims, H, Hkv, D;
    float theta_scale, freq_scale, ext_factor, low, high, mscale;
    const float *ff;       /* [n_dims/2] or NULL */
    const float *qn, *kn;  /* per-head norm weights [D] (imp_qk_norm), or NULL: no norm */
    float eps;
    bool one_plus_w;
} rope_args;

template <typename KV> static __device__ __forceinline__ KV kv_from(float v);
template <> __device__ __forceinline__ __half kv_from<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ float kv_from<float>(float v) { return v; }

/* Block (t, y): token t, heads ROPE_HEADS * y .. of q then k (and a share of v's row): the
 * angles of the token's position into shared memory, pair i by thread i (the CPU's recurrence
 * theta_base *= theta_scale, repeated i times, so angles match), and with per-head norms each
 * head's scale 1/rms by warp h (the rms_norm op's arithmetic); then each (head, pair) of its
 * heads normalized and rotated, k's rows and v's rows written to the token's pool slot.
 * Several blocks per token keep a decode step (one token) from running on one SM. */
#define ROPE_HEADS 4

/* Element d of a q (or k) head scaled by its 1/rms s and the norm weight, as rms_norm does. */
static __device__ __forceinline__ float rope_norm(const rope_args &a, bool is_k, float s, float x, int d) {
    const float w = (is_k ? a.kn : a.qn)[d];
    return __fmul_rn(__fmul_rn(x, s), a.one_plus_w ? 1.0f + w : w);
}

template <typename KV>
__global__ void rope_kv_k(rope_args a, float *q, int64_t ldq, float *k, int64_t ldk, const float *v, int64_t ldv,
                          const int32_t *pos, const int32_t *slot, KV *kc, KV *vc, int64_t n_embd_kv) {
    __shared__ float cs[2 * ROPE_MAX_HALF];
    __shared__ float nsc[ROPE_HEADS];
    imp_pdl_enter();
    const int64_t t = blockIdx.x;
    const int half = a.n_dims / 2;
    float *qr = q + t * ldq, *kr = k + t * ldk;
    const int nh = a.H + a.Hkv, h0 = (int)blockIdx.y * ROPE_HEADS;
    const int nhb = nh - h0 < ROPE_HEADS ? nh - h0 : ROPE_HEADS;
    if (a.qn && (int)(threadIdx.x >> 5) < nhb) {
        const int h = h0 + (int)(threadIdx.x >> 5), lane = threadIdx.x & 31;
        const float *x = h >= a.H ? kr + (int64_t)(h - a.H) * a.D : qr + (int64_t)h * a.D;
        double ss = 0.0;
        for (int d = lane; d < a.D; d += 32) ss += (double)(x[d] * x[d]);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
        if (lane == 0) nsc[h - h0] = 1.0f / sqrtf((float)(ss / (double)a.D) + a.eps);
    }
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        float tb = (float)pos[t];
        for (int j = 0; j < i; j++) tb *= a.theta_scale;
        const float extrap = a.ff ? tb / a.ff[i] : tb;
        const float interp = a.freq_scale * extrap;
        float theta = interp;
        if (a.ext_factor != 0.0f) {
            const float yv = ((float)i - a.low) / fmaxf(0.001f, a.high - a.low);
            const float ramp = 1.0f - fminf(1.0f, fmaxf(0.0f, yv));
            const float mix = ramp * a.ext_factor;
            theta = __fadd_rn(__fmul_rn(interp, 1.0f - mix), __fmul_rn(extrap, mix));
        }
        cs[2 * i] = cosf(theta) * a.mscale;
        cs[2 * i + 1] = sinf(theta) * a.mscale;
    }
    __syncthreads();
    KV *kd = kc + (int64_t)slot[t] * n_embd_kv, *vd = vc + (int64_t)slot[t] * n_embd_kv;
    for (int idx = threadIdx.x; idx < nhb * half; idx += blockDim.x) {
        const int h = h0 + idx / half, i = idx % half;
        const bool is_k = h >= a.H;
        float *x = is_k ? kr + (int64_t)(h - a.H) * a.D : qr + (int64_t)h * a.D;
        const int ia = a.style == IMP_ROPE_NEOX ? i : 2 * i, ib = a.style == IMP_ROPE_NEOX ? i + half : 2 * i + 1;
        float x0 = x[ia], x1 = x[ib];
        const float c = cs[2 * i], s = cs[2 * i + 1];
        if (a.qn) {
            x0 = rope_norm(a, is_k, nsc[h - h0], x0, ia);
            x1 = rope_norm(a, is_k, nsc[h - h0], x1, ib);
        }
        const float r0 = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
        const float r1 = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
        x[ia] = r0;
        x[ib] = r1;
        if (is_k) {
            KV *o = kd + (int64_t)(h - a.H) * a.D;
            o[ia] = kv_from<KV>(r0);
            o[ib] = kv_from<KV>(r1);
        }
    }
    /* dims past n_dims pass through (normalized, with per-head norms); k's to the pool */
    const int rest = a.D - a.n_dims;
    for (int idx = threadIdx.x; idx < nhb * rest; idx += blockDim.x) {
        const int h = h0 + idx / rest, d = a.n_dims + idx % rest;
        const bool is_k = h >= a.H;
        float *x = is_k ? kr + (int64_t)(h - a.H) * a.D : qr + (int64_t)h * a.D;
        float xv = x[d];
        if (a.qn) {
            xv = rope_norm(a, is_k, nsc[h - h0], xv, d);
            x[d] = xv;
        }
        if (is_k) kd[(int64_t)(h - a.H) * a.D + d] = kv_from<KV>(xv);
    }
    /* this block's share of v's row */
    const int64_t share = (n_embd_kv + gridDim.y - 1) / gridDim.y, v0 = (int64_t)blockIdx.y * share;
    const int64_t v1 = v0 + share < n_embd_kv ? v0 + share : n_embd_kv;
    for (int64_t i = v0 + threadIdx.x; i < v1; i += blockDim.x) vd[i] = kv_from<KV>(v[t * ldv + i]);
}

imp_status imp_cuda_rope_kv_store(imp_backend *be, const imp_rope *rope, const imp_attn_params *ap,
                                  const imp_qk_norm *norm, imp_tensor *q, imp_tensor *k, const imp_tensor *v,
                                  const imp_batch *batch, imp_kv_store *kv, int layer) {
    IMP_CUDA_WRITES(be);
    imp_cuda *c = (imp_cuda *)be;
    const int64_t S = (int64_t)kv->n_blocks * kv->block_size;
    if (rope->n_dims < 2 || rope->n_dims > 2 * ROPE_MAX_HALF || rope->n_dims > ap->head_dim || rope->n_dims % 2 ||
        kv->type != be->kv_type || layer < 0 || layer >= kv->n_layer ||
        q->ne0 != (int64_t)ap->n_head * ap->head_dim || k->ne0 != kv->n_embd_kv || v->ne0 != kv->n_embd_kv ||
        (int64_t)ap->n_head_kv * ap->head_dim != kv->n_embd_kv || q->ne1 != batch->n_tokens ||
        k->ne1 != batch->n_tokens || v->ne1 != batch->n_tokens || batch != c->step.b ||
        q->nb1 % 4 || k->nb1 % 4 || v->nb1 % 4 || (rope->freq_factors && rope->freq_factors->ne0 < rope->n_dims / 2) ||
        (norm && (!norm->q || !norm->k || norm->q->type != IMP_TYPE_F32 || norm->k->type != IMP_TYPE_F32 ||
                  norm->q->ne0 != ap->head_dim || norm->k->ne0 != ap->head_dim))) {
        return IMP_ERR_INTERNAL;
    }
    for (int32_t t = 0; t < batch->n_tokens; t++) {
        if (batch->slot[t] < 0 || batch->slot[t] >= S) return IMP_ERR_INTERNAL;
    }
    if (batch->n_tokens == 0) return IMP_OK;
    rope_args a;
    a.style = rope->style;
    a.n_dims = rope->n_dims;
    a.H = ap->n_head;
    a.Hkv = ap->n_head_kv;
    a.D = ap->head_dim;
    a.theta_scale = powf(rope->freq_base, -2.0f / (float)rope->n_dims);
    a.freq_scale = rope->freq_scale;
    a.ext_factor = rope->ext_factor;
    imp_rope_yarn_corr(rope, &a.low, &a.high, &a.mscale);
    a.ff = rope->freq_factors ? (const float *)rope->freq_factors->data : NULL;
    a.qn = norm ? (const float *)norm->q->data : NULL;
    a.kn = norm ? (const float *)norm->k->data : NULL;
    a.eps = norm ? norm->eps : 0.0f;
    a.one_plus_w = norm && norm->one_plus_w;
    const dim3 grid((unsigned)batch->n_tokens, imp_cuda_blocks(ap->n_head + ap->n_head_kv, ROPE_HEADS));
    if (kv->type == IMP_TYPE_F16) {
        IMP_CUDA_LAUNCH(c, rope_kv_k<__half>, grid, dim3(256), 0, a, (float *)q->data, ld(q), (float *)k->data, ld(k),
                        (const float *)v->data, ld(v), c->step.pos, c->step.slot, (__half *)kv->k[layer].data,
                        (__half *)kv->v[layer].data, kv->n_embd_kv);
    } else {
        IMP_CUDA_LAUNCH(c, rope_kv_k<float>, grid, dim3(256), 0, a, (float *)q->data, ld(q), (float *)k->data, ld(k),
                        (const float *)v->data, ld(v), c->step.pos, c->step.slot, (float *)kv->k[layer].data,
                        (float *)kv->v[layer].data, kv->n_embd_kv);
    }
    CUDA_LAUNCHED();
    return IMP_OK;
}
