/*
 * CUDA attention over the paged KV pool: causal, grouped-query, sliding window, soft-cap, in
 * O(n) memory (flash-attention's online softmax), for prefill and decode alike.
 *
 * A block handles a tile of query rows — up to ATT_ROWS (token, head) pairs: consecutive
 * tokens of one sequence (a "run" of the step, cuda_backend.cu) times the query heads of one
 * KV head — and walks the keys of its range ATT_KT at a time: K and V rows are gathered
 * through the block table into shared memory (as F32), each warp scores its rows (lane j takes
 * key j), updates its rows' running max and sum, and accumulates p V with each lane owning
 * head dims lane, lane + 32, ... When the tiles alone cannot fill the GPU (decode), the key
 * range is split over several blocks (split-K, "flash decoding") whose partial results
 * (m, l, unnormalised output) a second kernel combines.
 *
 * Letters: T tokens, H query heads, Hkv KV heads, G = H / Hkv, D head dim, S pool slots.
 */
#include <math.h>

#include "backend/cuda/cuda_common.cuh"

#define ATT_WARPS 4
#define ATT_ROWS 32     /* query rows per block                        */
#define ATT_KT 32       /* keys per tile (one per lane)                */
#define ATT_MAX_DPL 8   /* head dims per lane: D <= 256                */
#define ATT_MAX_SPLIT 32

typedef struct attn_args {
    const float *q;
    int64_t ldq;
    float *out;
    int64_t ldo;
    const void *kc, *vc;
    int64_t n_embd_kv;
    const int32_t *pos, *runs, *blk_off, *blocks;
    int lbs; /* log2(block_size) */
    int H, Hkv, G, D;
    float scale, softcap;
    int window;
    int tq, hpc, n_hchunks, n_sub, n_split, T;
    float *part_o;  /* [n_split][T][H][D] */
    float2 *part_ml; /* [n_split][T][H] (m, l) */
} attn_args;

template <typename KV> static __device__ __forceinline__ float kv_f32(KV v);
template <> __device__ __forceinline__ float kv_f32<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float kv_f32<float>(float v) { return v; }

static __device__ __forceinline__ int lo_of(int pos, int window) {
    return window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
}

static size_t attn_smem(int D) {
    return sizeof(float) * ((size_t)ATT_ROWS * D + (size_t)ATT_KT * (D + 1) + (size_t)ATT_KT * D + (size_t)ATT_ROWS * ATT_KT);
}

template <typename KV, int DPL>
__global__ void __launch_bounds__(32 * ATT_WARPS) attn_k(attn_args a) {
    extern __shared__ float smem[];
    const int D = a.D;
    float *sq = smem;                          /* [ATT_ROWS][D]      */
    float *sk = sq + ATT_ROWS * D;             /* [ATT_KT][D + 1]    */
    float *sv = sk + ATT_KT * (D + 1);         /* [ATT_KT][D]        */
    float *sp = sv + ATT_KT * D;               /* [ATT_ROWS][ATT_KT] */
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

    /* this block's tokens, heads and key range */
    const int run = blockIdx.x / a.n_sub, sub = blockIdx.x % a.n_sub;
    const int t0 = a.runs[3 * run] + sub * a.tq, nt_run = a.runs[3 * run + 1] - sub * a.tq, seq = a.runs[3 * run + 2];
    const int nt = nt_run < a.tq ? nt_run : a.tq;
    if (nt <= 0) return;
    const int g = blockIdx.y / a.n_hchunks, hc = blockIdx.y % a.n_hchunks;
    const int h0 = g * a.G + hc * a.hpc, nh = a.G - hc * a.hpc < a.hpc ? a.G - hc * a.hpc : a.hpc;
    const int R = nt * nh;
    const int lo = lo_of(a.pos[t0], a.window), hi = a.pos[t0 + nt - 1];
    int chunk = (hi - lo + 1 + a.n_split - 1) / a.n_split;
    chunk = (chunk + ATT_KT - 1) / ATT_KT * ATT_KT;
    const int start = lo + (int)blockIdx.z * chunk;
    const int end = start + chunk < hi + 1 ? start + chunk : hi + 1;

    for (int i = tid; i < R * D; i += blockDim.x) {
        const int r = i / D, d = i % D;
        sq[i] = a.q[(int64_t)(t0 + r / nh) * a.ldq + (int64_t)(h0 + r % nh) * D + d];
    }
    const KV *kc = (const KV *)a.kc, *vc = (const KV *)a.vc;
    const int32_t *table = a.blocks + a.blk_off[seq];
    const int bmask = (1 << a.lbs) - 1;

    constexpr int RPW = ATT_ROWS / ATT_WARPS; /* rows per warp: r = warp + ATT_WARPS * i */
    float m[RPW], l[RPW], acc[RPW][DPL];
    int rpos[RPW], rlo[RPW];
#pragma unroll
    for (int i = 0; i < RPW; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
        const int r = warp + ATT_WARPS * i;
        rpos[i] = r < R ? a.pos[t0 + r / nh] : -1;
        rlo[i] = r < R ? lo_of(rpos[i], a.window) : 0;
#pragma unroll
        for (int k = 0; k < DPL; k++) acc[i][k] = 0.0f;
    }

    for (int p0 = start; p0 < end; p0 += ATT_KT) {
        __syncthreads(); /* the previous tile is consumed (and sq is written, the first time) */
        for (int i = tid; i < ATT_KT * D; i += blockDim.x) {
            const int j = i / D, d = i % D, p = p0 + j;
            float kv = 0.0f, vv = 0.0f;
            if (p < end) {
                const int64_t slot = ((int64_t)table[p >> a.lbs] << a.lbs) | (p & bmask);
                const int64_t at = slot * a.n_embd_kv + (int64_t)g * D + d;
                kv = kv_f32<KV>(kc[at]);
                vv = kv_f32<KV>(vc[at]);
            }
            sk[j * (D + 1) + d] = kv;
            sv[j * D + d] = vv;
        }
        __syncthreads();
        const int p = p0 + lane;
#pragma unroll
        for (int i = 0; i < RPW; i++) {
            const int r = warp + ATT_WARPS * i;
            if (r >= R) continue; /* uniform across the warp */
            float s = -INFINITY;
            if (p < end && p >= rlo[i] && p <= rpos[i]) {
                const float *qr = sq + r * D, *kr = sk + lane * (D + 1);
                float dot = 0.0f;
                for (int d = 0; d < D; d++) dot += qr[d] * kr[d];
                s = dot * a.scale;
                if (a.softcap > 0.0f) s = a.softcap * tanhf(s / a.softcap);
            }
            float mt = s;
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, o));
            const float mnew = fmaxf(m[i], mt);
            if (mnew == -INFINITY) continue; /* nothing visible yet */
            const float alpha = expf(m[i] - mnew);
            const float pj = s == -INFINITY ? 0.0f : expf(s - mnew);
            float ps = pj;
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) ps += __shfl_xor_sync(0xffffffffu, ps, o);
            l[i] = l[i] * alpha + ps;
            m[i] = mnew;
            sp[r * ATT_KT + lane] = pj;
            __syncwarp();
#pragma unroll
            for (int k = 0; k < DPL; k++) {
                const int d = lane + 32 * k;
                if (d < D) {
                    float o = acc[i][k] * alpha;
                    for (int j = 0; j < ATT_KT; j++) o += sp[r * ATT_KT + j] * sv[j * D + d];
                    acc[i][k] = o;
                }
            }
            __syncwarp();
        }
    }

#pragma unroll
    for (int i = 0; i < RPW; i++) {
        const int r = warp + ATT_WARPS * i;
        if (r >= R) continue;
        const int t = t0 + r / nh, h = h0 + r % nh;
        if (a.n_split == 1) {
            const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
#pragma unroll
            for (int k = 0; k < DPL; k++) {
                const int d = lane + 32 * k;
                if (d < D) a.out[(int64_t)t * a.ldo + (int64_t)h * D + d] = acc[i][k] * inv;
            }
        } else {
            const int64_t row = ((int64_t)blockIdx.z * a.T + t) * a.H + h;
#pragma unroll
            for (int k = 0; k < DPL; k++) {
                const int d = lane + 32 * k;
                if (d < D) a.part_o[row * D + d] = acc[i][k];
            }
            if (lane == 0) a.part_ml[row] = make_float2(m[i], l[i]);
        }
    }
}

/* out[t, h] = the splits' partial outputs rescaled to their common max and normalised. Every
 * split of every (t, h) row was written by the one block that owns it (a split past the row's
 * keys as m = -inf, l = 0, output 0). */
__global__ void attn_combine_k(const float *part_o, const float2 *part_ml, int n_split, int T, int H, int D, float *out,
                               int64_t ldo) {
    const int t = blockIdx.x, h = blockIdx.y;
    float M = -INFINITY;
    for (int z = 0; z < n_split; z++) M = fmaxf(M, part_ml[((int64_t)z * T + t) * H + h].x);
    float L = 0.0f;
    for (int z = 0; z < n_split; z++) {
        const float2 ml = part_ml[((int64_t)z * T + t) * H + h];
        if (ml.y > 0.0f) L += ml.y * expf(ml.x - M);
    }
    const float inv = L > 0.0f ? 1.0f / L : 0.0f;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float o = 0.0f;
        for (int z = 0; z < n_split; z++) {
            const int64_t row = ((int64_t)z * T + t) * H + h;
            const float2 ml = part_ml[row];
            if (ml.y > 0.0f) o += part_o[row * D + d] * expf(ml.x - M);
        }
        out[(int64_t)t * ldo + (int64_t)h * D + d] = o * inv;
    }
}

template <typename KV, int DPL> static void *attn_fn(void) { return (void *)attn_k<KV, DPL>; }

typedef void (*attn_launch_fn)(const attn_args &, dim3, size_t, cudaStream_t);

template <typename KV, int DPL> static void attn_launch(const attn_args &a, dim3 grid, size_t smem, cudaStream_t s) {
    attn_k<KV, DPL><<<grid, 32 * ATT_WARPS, smem, s>>>(a);
}

#define ATT_VARIANTS(KV) \
    {attn_launch<KV, 1>, attn_launch<KV, 2>, attn_launch<KV, 3>, attn_launch<KV, 4>, \
     attn_launch<KV, 5>, attn_launch<KV, 6>, attn_launch<KV, 7>, attn_launch<KV, 8>}
static const attn_launch_fn k_attn_f16[ATT_MAX_DPL] = ATT_VARIANTS(__half);
static const attn_launch_fn k_attn_f32[ATT_MAX_DPL] = ATT_VARIANTS(float);

#define ATT_FNS(KV) \
    {attn_fn<KV, 1>, attn_fn<KV, 2>, attn_fn<KV, 3>, attn_fn<KV, 4>, attn_fn<KV, 5>, attn_fn<KV, 6>, attn_fn<KV, 7>, attn_fn<KV, 8>}

imp_status imp_cuda_attention_init(imp_cuda *c) {
    void *(*const fns[2][ATT_MAX_DPL])(void) = {ATT_FNS(__half), ATT_FNS(float)};
    for (int k = 0; k < 2; k++) {
        for (int dpl = 1; dpl <= ATT_MAX_DPL; dpl++) {
            const size_t smem = attn_smem(32 * dpl);
            if (smem > c->smem_optin) continue; /* such head dims are refused at run time */
            CUDA_TRY(cudaFuncSetAttribute(fns[k][dpl - 1](), cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        }
    }
    return IMP_OK;
}

imp_status imp_cuda_attention(imp_backend *be, const imp_tensor *q, const imp_kv_store *kv, int layer,
                              const imp_batch *batch, const imp_attn_params *ap, imp_tensor *out) {
    IMP_CUDA_WRITES(be);
    imp_cuda *c = (imp_cuda *)be;
    const imp_cuda_step *st = &c->step;
    if (ap->n_head_kv <= 0 || ap->n_head % ap->n_head_kv || layer < 0 || layer >= kv->n_layer ||
        kv->type != be->kv_type || (int64_t)ap->n_head_kv * ap->head_dim != kv->n_embd_kv ||
        q->ne0 != (int64_t)ap->n_head * ap->head_dim || out->ne0 != q->ne0 || q->ne1 != batch->n_tokens ||
        out->ne1 != batch->n_tokens || batch != st->b || q->nb1 % 4 || out->nb1 % 4 ||
        (kv->block_size & (kv->block_size - 1))) {
        return IMP_ERR_INTERNAL;
    }
    const int D = ap->head_dim, dpl = (D + 31) / 32;
    if (dpl > ATT_MAX_DPL || attn_smem(32 * dpl) > c->smem_optin) return IMP_ERR_UNSUPPORTED;
    int max_len = 1;
    for (int32_t t = 0; t < batch->n_tokens; t++) {
        const int32_t s = batch->seq[t], pos = batch->pos[t];
        if (s < 0 || s >= batch->n_seqs || pos < 0 || pos / kv->block_size >= batch->seqs[s].n_blocks) {
            return IMP_ERR_INTERNAL;
        }
        const int len = ap->window > 0 && pos + 1 > ap->window ? ap->window : pos + 1;
        if (len > max_len) max_len = len;
    }
    if (batch->n_tokens == 0) return IMP_OK;
    attn_args a;
    a.q = (const float *)q->data;
    a.ldq = (int64_t)(q->nb1 / 4);
    a.out = (float *)out->data;
    a.ldo = (int64_t)(out->nb1 / 4);
    a.kc = kv->k[layer].data;
    a.vc = kv->v[layer].data;
    a.n_embd_kv = kv->n_embd_kv;
    a.pos = st->pos;
    a.runs = st->runs;
    a.blk_off = st->blk_off;
    a.blocks = st->blocks;
    a.lbs = 0;
    while ((1 << a.lbs) < kv->block_size) a.lbs++;
    a.H = ap->n_head;
    a.Hkv = ap->n_head_kv;
    a.G = ap->n_head / ap->n_head_kv;
    a.D = D;
    a.scale = ap->scale;
    a.softcap = ap->softcap;
    a.window = ap->window;
    a.hpc = a.G < ATT_ROWS ? a.G : ATT_ROWS;
    a.n_hchunks = (a.G + a.hpc - 1) / a.hpc;
    a.tq = ATT_ROWS / a.hpc;
    a.n_sub = (st->max_run + a.tq - 1) / a.tq;
    a.T = batch->n_tokens;
    const int64_t ctas = (int64_t)st->n_runs * a.n_sub * a.Hkv * a.n_hchunks;
    int split = 1;
    if (ctas < c->sm_count) {
        split = (int)((2 * c->sm_count + ctas - 1) / ctas);
        /* Decode (one token per sequence) may be replayed from a graph at any context length,
         * so its split count depends on the shape only; splits past the keys exit at once.
         * Otherwise at least 256 keys per split. */
        const int by_len = (max_len + 255) / 256;
        if (st->n_runs != batch->n_tokens && split > by_len) split = by_len;
        if (split > ATT_MAX_SPLIT) split = ATT_MAX_SPLIT;
        if (split < 1) split = 1;
    }
    a.n_split = split;
    a.part_o = NULL;
    a.part_ml = NULL;
    const int64_t rows = (int64_t)a.T * a.H;
    if (split > 1) {
        const size_t o_bytes = (size_t)split * (size_t)rows * (size_t)D * sizeof(float);
        imp_status s = imp_cuda_buf_reserve(c, &c->attn, o_bytes + (size_t)split * (size_t)rows * sizeof(float2));
        if (s != IMP_OK) return s;
        a.part_o = (float *)c->attn.p;
        a.part_ml = (float2 *)((char *)c->attn.p + o_bytes);
    }
    const dim3 grid((unsigned)(st->n_runs * a.n_sub), (unsigned)(a.Hkv * a.n_hchunks), (unsigned)split);
    const attn_launch_fn *fns = kv->type == IMP_TYPE_F16 ? k_attn_f16 : k_attn_f32;
    fns[dpl - 1](a, grid, attn_smem(32 * dpl), c->stream);
    CUDA_LAUNCHED();
    if (split > 1) {
        attn_combine_k<<<dim3((unsigned)a.T, (unsigned)a.H), 128, 0, c->stream>>>(a.part_o, a.part_ml, split, a.T, a.H, D,
                                                                                a.out, a.ldo);
        CUDA_LAUNCHED();
    }
    return IMP_OK;
}
