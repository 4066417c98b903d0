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
 * range is split over several blocks (split-K, "flash decoding"); each writes its partial
 * result (m, l, unnormalised output) and the last of them to finish (a ticket counter per
 * tile, reset by that block for the next launch) combines them. Decode launches a split count
 * fixed by the shape (graphs replay it at any length); splits past the keys exit at once and
 * a tile whose keys fit one split writes its output directly.
 *
 * When D = 32 * DPL (every model's head size) and the pool rows are 16-byte aligned, the
 * head dim is a compile-time constant and K/V tiles are fetched with 16-byte loads, all of a
 * thread's issued before any is used ("EXACT" kernels); other shapes take the general path.
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
    int *tickets;    /* [gridDim.y][gridDim.x] split-done counters, zero between launches */
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

/* Gathers keys p0 .. p0 + ATT_KT - 1 (those < end; zeros past it) of KV head g into sk (row
 * stride D + 1, so lane j reading key j is conflict-free) and sv (row stride D) as F32. */
template <typename KV, int DPL, bool EXACT>
static __device__ __forceinline__ void attn_tile(const attn_args &a, const KV *kc, const KV *vc, const int32_t *table,
                                                 int g, int p0, int end, float *sk, float *sv) {
    const int tid = threadIdx.x, bmask = (1 << a.lbs) - 1;
    if (EXACT) {
        constexpr int D = 32 * DPL, E = 16 / sizeof(KV), CPR = D / E, PER = ATT_KT * CPR / (32 * ATT_WARPS);
        int4 kr[PER], vr[PER];
#pragma unroll
        for (int i = 0; i < PER; i++) {
            const int ch = tid + i * 32 * ATT_WARPS, p = p0 + ch / CPR;
            kr[i] = vr[i] = make_int4(0, 0, 0, 0);
            if (p < end) {
                const int64_t slot = ((int64_t)table[p >> a.lbs] << a.lbs) | (p & bmask);
                const int64_t at = slot * a.n_embd_kv + (int64_t)g * D + (ch % CPR) * E;
                kr[i] = *(const int4 *)(kc + at);
                vr[i] = *(const int4 *)(vc + at);
            }
        }
#pragma unroll
        for (int i = 0; i < PER; i++) {
            const int ch = tid + i * 32 * ATT_WARPS, j = ch / CPR, d0 = (ch % CPR) * E;
            const KV *kv = (const KV *)&kr[i], *vv = (const KV *)&vr[i];
#pragma unroll
            for (int e = 0; e < E; e++) {
                sk[j * (D + 1) + d0 + e] = kv_f32<KV>(kv[e]);
                sv[j * D + d0 + e] = kv_f32<KV>(vv[e]);
            }
        }
        return;
    }
    const int D = a.D;
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
}

/* After a split wrote its partials: the last split of this tile to finish (a ticket per tile,
 * reset by that block for the next launch) combines every split's partials of the tile's rows
 * r < R (token t0 + r / nh, head h0 + r % nh): out = the splits' outputs rescaled to their
 * common max, normalised (a row may see no key of a split: m = -inf, l = 0). Lane owns dims
 * lane + 32 k. */
template <int DPL>
static __device__ void attn_finish_splits(const attn_args &a, int n_active, int t0, int nh, int h0, int R, int D) {
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    __shared__ int s_last;
    __threadfence();
    __syncthreads();
    int *ticket = a.tickets + blockIdx.y * gridDim.x + blockIdx.x;
    if (tid == 0) s_last = atomicAdd(ticket, 1) == n_active - 1;
    __syncthreads();
    if (!s_last) return;
    if (tid == 0) *ticket = 0; /* ready for the next launch */
    __threadfence();
    for (int r = warp; r < R; r += ATT_WARPS) {
        const int t = t0 + r / nh, h = h0 + r % nh;
        float2 ml = make_float2(-INFINITY, 0.0f);
        if (lane < n_active) ml = __ldcg(&a.part_ml[((int64_t)lane * a.T + t) * a.H + h]);
        float M = ml.x;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
        const float wz = ml.y > 0.0f ? expf(ml.x - M) : 0.0f;
        float L = ml.y * wz;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) L += __shfl_xor_sync(0xffffffffu, L, o);
        const float inv = L > 0.0f ? 1.0f / L : 0.0f;
        float o[DPL];
#pragma unroll
        for (int k = 0; k < DPL; k++) o[k] = 0.0f;
        /* 8 splits' rows in flight (every split < n_active wrote its row; the rest weigh 0) */
        for (int z0 = 0; z0 < n_active; z0 += 8) {
            float pv[8][DPL];
#pragma unroll
            for (int u = 0; u < 8; u++) {
                const float *po = a.part_o + (((int64_t)(z0 + u) * a.T + t) * a.H + h) * D;
#pragma unroll
                for (int k = 0; k < DPL; k++) {
                    const int d = lane + 32 * k;
                    pv[u][k] = z0 + u < n_active && d < D ? __ldcg(po + d) : 0.0f;
                }
            }
#pragma unroll
            for (int u = 0; u < 8; u++) {
                const float w = __shfl_sync(0xffffffffu, wz, z0 + u); /* n_active <= 32 */
#pragma unroll
                for (int k = 0; k < DPL; k++) o[k] += w * pv[u][k];
            }
        }
#pragma unroll
        for (int k = 0; k < DPL; k++) {
            const int d = lane + 32 * k;
            if (d < D) a.out[(int64_t)t * a.ldo + (int64_t)h * D + d] = o[k] * inv;
        }
    }
}

template <typename KV, int DPL, bool EXACT>
__global__ void __launch_bounds__(32 * ATT_WARPS) attn_k(attn_args a) {
    extern __shared__ float smem[];
    const int D = EXACT ? 32 * DPL : a.D;
    float *sq = smem;                          /* [ATT_ROWS][D]      */
    float *sk = sq + ATT_ROWS * D;             /* [ATT_KT][D + 1]    */
    float *sv = sk + ATT_KT * (D + 1);         /* [ATT_KT][D]        */
    float *sp = sv + ATT_KT * D;               /* [ATT_ROWS][ATT_KT] */
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    imp_pdl_enter();

    /* this block's tokens, heads and key range */
    const int run = blockIdx.x / a.n_sub, sub = blockIdx.x % a.n_sub;
    const int t0 = a.runs[3 * run] + sub * a.tq, nt_run = a.runs[3 * run + 1] - sub * a.tq, seq = a.runs[3 * run + 2];
    const int nt = nt_run < a.tq ? nt_run : a.tq;
    if (nt <= 0) return; /* the same in every split of this tile: its ticket is never drawn */
    const int g = blockIdx.y / a.n_hchunks, hc = blockIdx.y % a.n_hchunks;
    const int h0 = g * a.G + hc * a.hpc, nh = a.G - hc * a.hpc < a.hpc ? a.G - hc * a.hpc : a.hpc;
    const int R = nt * nh;
    const int lo = lo_of(a.pos[t0], a.window), hi = a.pos[t0 + nt - 1];
    int chunk = (hi - lo + 1 + a.n_split - 1) / a.n_split;
    chunk = (chunk + ATT_KT - 1) / ATT_KT * ATT_KT;
    const int start = lo + (int)blockIdx.z * chunk;
    const int end = start + chunk < hi + 1 ? start + chunk : hi + 1;
    /* the splits with keys (the same for every split of the tile); one alone writes the output */
    const int n_active = (hi - lo + 1 + chunk - 1) / chunk;
    if ((int)blockIdx.z >= n_active) return;

    for (int i = tid; i < R * D; i += blockDim.x) {
        const int r = i / D, d = i % D;
        sq[i] = a.q[(int64_t)(t0 + r / nh) * a.ldq + (int64_t)(h0 + r % nh) * D + d];
    }
    const KV *kc = (const KV *)a.kc, *vc = (const KV *)a.vc;
    const int32_t *table = a.blocks + a.blk_off[seq];

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
        attn_tile<KV, DPL, EXACT>(a, kc, vc, table, g, p0, end, sk, sv);
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
                if (EXACT) { /* four chains: the sum is a latency chain otherwise */
                    float d4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll 8
                    for (int d = 0; d < D; d += 4) {
#pragma unroll
                        for (int u = 0; u < 4; u++) d4[u] += qr[d + u] * kr[d + u];
                    }
                    dot = (d4[0] + d4[1]) + (d4[2] + d4[3]);
                } else {
                    for (int d = 0; d < D; d++) dot += qr[d] * kr[d];
                }
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
                    float o4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
                    for (int j = 0; j < ATT_KT; j += 4) {
#pragma unroll
                        for (int u = 0; u < 4; u++) o4[u] += sp[r * ATT_KT + j + u] * sv[(j + u) * D + d];
                    }
                    acc[i][k] = acc[i][k] * alpha + ((o4[0] + o4[1]) + (o4[2] + o4[3]));
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
        if (n_active == 1) {
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
    if (n_active == 1) return;
    attn_finish_splits<DPL>(a, n_active, t0, nh, h0, R, D);
}

/* ---- decode: one query token per sequence ------------------------------------------------------ */

#define ATD_GM 8 /* query heads per block at most (hpc of a decode launch); kernels for 4 and 8 */

static size_t attn_dec_smem(int D) {
    return sizeof(float) * ((size_t)ATD_GM * D + (size_t)ATT_WARPS * ATD_GM * (32 + D + 2));
}

/* DPL consecutive head dims of a pool row, 16-byte aligned when DPL * sizeof(KV) is 16 or 32. */
template <typename KV, int DPL>
static __device__ __forceinline__ void attn_dec_row(const KV *p, float v[DPL]) {
    constexpr int B = DPL * (int)sizeof(KV);
    if (B % 16 == 0) {
        int4 u[B / 16 > 0 ? B / 16 : 1];
#pragma unroll
        for (int i = 0; i < B / 16; i++) u[i] = ((const int4 *)p)[i];
        const KV *e = (const KV *)u;
#pragma unroll
        for (int k = 0; k < DPL; k++) v[k] = kv_f32<KV>(e[k]);
    } else if (B % 8 == 0) {
        int2 u[B / 8 > 0 ? B / 8 : 1];
#pragma unroll
        for (int i = 0; i < B / 8; i++) u[i] = ((const int2 *)p)[i];
        const KV *e = (const KV *)u;
#pragma unroll
        for (int k = 0; k < DPL; k++) v[k] = kv_f32<KV>(e[k]);
    } else {
#pragma unroll
        for (int k = 0; k < DPL; k++) v[k] = kv_f32<KV>(p[k]);
    }
}

/* Asks L2 for the K and V rows of pool slot `slot` (KV head at offset g * D already in kc / vc):
 * their loads then wait for L2, not for memory. L2 is where global writes land, so this is
 * safe before imp_pdl_wait too (a row the previous kernel writes is fetched again or updated). */
template <typename KV, int D>
static __device__ __forceinline__ void attn_dec_prefetch(const KV *kc, const KV *vc, int64_t at) {
#pragma unroll
    for (int off = 0; off < D * (int)sizeof(KV); off += 128) {
        asm volatile("prefetch.global.L2 [%0];" ::"l"((const char *)(kc + at) + off));
        asm volatile("prefetch.global.L2 [%0];" ::"l"((const char *)(vc + at) + off));
    }
}

/* Decode attention (every run of the step is one token): a block takes the up to ATD_GM query
 * heads of one KV head for one token and one split of its keys; its warps take 32-key tiles in
 * turn. Scores: lane j owns key j and reads its whole K row (16-byte loads, the query heads
 * broadcast from shared memory), so a score needs no reduction; p V: lane owns DPL consecutive
 * dims, every key's V row read by the whole warp in one coalesced load. The step's layout (runs,
 * positions, block table) is read before imp_pdl_wait (uploaded before the step's first kernel,
 * written by none); q, K and V after it. The warps' partials meet in shared memory; splits
 * combine as in attn_k. D = 32 * DPL, pool rows 16-byte aligned. */
template <typename KV, int DPL, int GM>
__global__ void __launch_bounds__(32 * ATT_WARPS) attn_dec_k(attn_args a) {
    constexpr int D = 32 * DPL, E = 16 / (int)sizeof(KV), KC = D / E;
    extern __shared__ float smem[];
    float *sq = smem;                      /* [GM][D]                 */
    float *sp = sq + GM * D;               /* [ATT_WARPS][GM][32]     */
    float *so = sp + ATT_WARPS * GM * 32;  /* [ATT_WARPS][GM][D]      */
    float *sml = so + ATT_WARPS * GM * D;  /* [ATT_WARPS][GM] (m, l)  */
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    imp_pdl_launch();

    const int t = a.runs[3 * blockIdx.x], seq = a.runs[3 * blockIdx.x + 2];
    const int g = blockIdx.y / a.n_hchunks, hc = blockIdx.y % a.n_hchunks;
    const int h0 = g * a.G + hc * a.hpc, nh = a.G - hc * a.hpc < a.hpc ? a.G - hc * a.hpc : a.hpc;
    const int hi = a.pos[t], lo = lo_of(hi, a.window);
    int chunk = (hi - lo + 1 + a.n_split - 1) / a.n_split;
    chunk = (chunk + 32 * ATT_WARPS - 1) / (32 * ATT_WARPS) * (32 * ATT_WARPS); /* a tile per warp at least */
    const int start = lo + (int)blockIdx.z * chunk;
    const int end = start + chunk < hi + 1 ? start + chunk : hi + 1;
    const int n_active = (hi - lo + 1 + chunk - 1) / chunk;
    const int32_t *table = a.blocks + a.blk_off[seq];
    const int bmask = (1 << a.lbs) - 1;
    const KV *kc = (const KV *)a.kc + (int64_t)g * D, *vc = (const KV *)a.vc + (int64_t)g * D;
    int p = start + warp * 32 + lane;
    int64_t slot = p < end ? ((int64_t)table[p >> a.lbs] << a.lbs) | (p & bmask) : 0;
    if (p < end) attn_dec_prefetch<KV, D>(kc, vc, slot * a.n_embd_kv);
    imp_pdl_wait();
    if ((int)blockIdx.z >= n_active) return;

    /* heads past nh (G not a multiple of GM) get q = 0: every loop below runs all GM heads */
    for (int i = tid; i < GM * D; i += blockDim.x) sq[i] = i < nh * D ? a.q[(int64_t)t * a.ldq + (int64_t)h0 * D + i] : 0.0f;
    float m[GM], l[GM], acc[GM][DPL];
#pragma unroll
    for (int h = 0; h < GM; h++) {
        m[h] = -INFINITY;
        l[h] = 0.0f;
#pragma unroll
        for (int k = 0; k < DPL; k++) acc[h][k] = 0.0f;
    }
    __syncthreads();

    float *wp = sp + warp * GM * 32;
    for (int p0 = start + warp * 32; p0 < end; p0 += 32 * ATT_WARPS) {
        /* the next tile's rows are on their way while this one is scored */
        const int pn = p + 32 * ATT_WARPS;
        const int64_t slot_n = pn < end ? ((int64_t)table[pn >> a.lbs] << a.lbs) | (pn & bmask) : 0;
        if (pn < end) attn_dec_prefetch<KV, D>(kc, vc, slot_n * a.n_embd_kv);
        /* scores of key p = p0 + lane for every head */
        float sc[GM];
#pragma unroll
        for (int h = 0; h < GM; h++) sc[h] = 0.0f;
        const KV *kr = kc + slot * a.n_embd_kv;
#pragma unroll 2
        for (int c0 = 0; c0 < KC; c0 += 4) {
            int4 kq[4];
#pragma unroll
            for (int u = 0; u < 4; u++) kq[u] = p < end && c0 + u < KC ? ((const int4 *)kr)[c0 + u] : make_int4(0, 0, 0, 0);
#pragma unroll
            for (int u = 0; u < 4; u++) {
                if (c0 + u >= KC) break;
                const KV *ke = (const KV *)&kq[u];
#pragma unroll
                for (int e4 = 0; e4 < E; e4 += 4) {
                    const float k0 = kv_f32<KV>(ke[e4]), k1 = kv_f32<KV>(ke[e4 + 1]), k2 = kv_f32<KV>(ke[e4 + 2]),
                                k3 = kv_f32<KV>(ke[e4 + 3]);
#pragma unroll
                    for (int h = 0; h < GM; h++) {
                        const float4 qv = *(const float4 *)(sq + h * D + (c0 + u) * E + e4);
                        sc[h] += qv.x * k0 + qv.y * k1 + qv.z * k2 + qv.w * k3;
                    }
                }
            }
        }
        /* online softmax per head, the heads' reductions interleaved; the tile's probabilities
         * go to wp[h][lane] */
        float mt[GM], pj[GM], ps[GM];
#pragma unroll
        for (int h = 0; h < GM; h++) {
            float v = -INFINITY;
            if (p < end) {
                v = sc[h] * a.scale;
                if (a.softcap > 0.0f) v = a.softcap * tanhf(v / a.softcap);
            }
            sc[h] = mt[h] = v;
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
#pragma unroll
            for (int h = 0; h < GM; h++) mt[h] = fmaxf(mt[h], __shfl_xor_sync(0xffffffffu, mt[h], o));
        }
#pragma unroll
        for (int h = 0; h < GM; h++) {
            const float mnew = fmaxf(m[h], mt[h]); /* finite: key p0 < end is in the tile */
            const float alpha = expf(m[h] - mnew);
            ps[h] = pj[h] = sc[h] == -INFINITY ? 0.0f : expf(sc[h] - mnew);
            l[h] *= alpha;
            m[h] = mnew;
#pragma unroll
            for (int k = 0; k < DPL; k++) acc[h][k] *= alpha;
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
#pragma unroll
            for (int h = 0; h < GM; h++) ps[h] += __shfl_xor_sync(0xffffffffu, ps[h], o);
        }
#pragma unroll
        for (int h = 0; h < GM; h++) {
            l[h] += ps[h];
            wp[h * 32 + lane] = pj[h];
        }
        __syncwarp();
        /* p V over the tile's keys, VB rows in flight */
        constexpr int VB = DPL <= 4 ? 16 : 8;
        const int nk = end - p0 < 32 ? end - p0 : 32;
        for (int j0 = 0; j0 < nk; j0 += VB) {
            float v[VB][DPL];
#pragma unroll
            for (int u = 0; u < VB; u++) {
                const int64_t sj = __shfl_sync(0xffffffffu, slot, j0 + u);
                if (j0 + u < nk) attn_dec_row<KV, DPL>(vc + sj * a.n_embd_kv + lane * DPL, v[u]);
            }
#pragma unroll
            for (int u = 0; u < VB; u++) {
                if (j0 + u >= nk) break;
#pragma unroll
                for (int h = 0; h < GM; h++) {
                    const float pw = wp[h * 32 + j0 + u];
#pragma unroll
                    for (int k = 0; k < DPL; k++) acc[h][k] += pw * v[u][k];
                }
            }
        }
        __syncwarp();
        p = pn;
        slot = slot_n;
    }

    /* the warps' partials, combined per head by warp h % ATT_WARPS */
#pragma unroll
    for (int h = 0; h < GM; h++) {
        if (h >= nh) break;
#pragma unroll
        for (int k = 0; k < DPL; k++) so[(warp * GM + h) * D + lane * DPL + k] = acc[h][k];
        if (lane == 0) {
            sml[2 * (warp * GM + h)] = m[h];
            sml[2 * (warp * GM + h) + 1] = l[h];
        }
    }
    __syncthreads();
    for (int h = warp; h < nh; h += ATT_WARPS) {
        float M = -INFINITY;
#pragma unroll
        for (int w = 0; w < ATT_WARPS; w++) M = fmaxf(M, sml[2 * (w * GM + h)]);
        float wz[ATT_WARPS], L = 0.0f;
#pragma unroll
        for (int w = 0; w < ATT_WARPS; w++) {
            const float lw = sml[2 * (w * GM + h) + 1];
            wz[w] = lw > 0.0f ? expf(sml[2 * (w * GM + h)] - M) : 0.0f;
            L += lw * wz[w];
        }
        const int64_t row = (int64_t)t * a.H + h0 + h;
        const float inv = n_active > 1 ? 1.0f : L > 0.0f ? 1.0f / L : 0.0f;
        float *dst = n_active > 1 ? a.part_o + ((int64_t)blockIdx.z * a.T * a.H + row) * D
                                  : a.out + (int64_t)t * a.ldo + (int64_t)(h0 + h) * D;
#pragma unroll
        for (int k = 0; k < DPL; k++) {
            const int d = lane + 32 * k;
            float o = 0.0f;
#pragma unroll
            for (int w = 0; w < ATT_WARPS; w++) o += wz[w] * so[(w * GM + h) * D + d];
            dst[d] = o * inv;
        }
        if (n_active > 1 && lane == 0) a.part_ml[(int64_t)blockIdx.z * a.T * a.H + row] = make_float2(M, L);
    }
    if (n_active == 1) return;
    attn_finish_splits<DPL>(a, n_active, t, nh, h0, nh, D);
}

typedef void (*attn_launch_fn)(const imp_cuda *c, const attn_args &, dim3, size_t);

template <typename KV, int DPL, bool EXACT>
static void attn_launch(const imp_cuda *c, const attn_args &a, dim3 grid, size_t smem) {
    IMP_CUDA_LAUNCH(c, (attn_k<KV, DPL, EXACT>), grid, dim3(32 * ATT_WARPS), smem, a);
}

template <typename KV, int DPL, bool EXACT> static cudaError_t attn_raise_smem(size_t smem) {
    return cudaFuncSetAttribute(attn_k<KV, DPL, EXACT>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
}

/* [KV F16, F32][DPL - 1]: the general kernels, and the EXACT ones for the head sizes models
 * use (D = 64, 96, 128, 256; NULL elsewhere). */
typedef struct attn_kernel {
    attn_launch_fn launch;
    cudaError_t (*raise_smem)(size_t);
} attn_kernel;

#define ATT_K(KV, DPL, EXACT) {attn_launch<KV, DPL, EXACT>, attn_raise_smem<KV, DPL, EXACT>}
#define ATT_GENERAL(KV) \
    {ATT_K(KV, 1, false), ATT_K(KV, 2, false), ATT_K(KV, 3, false), ATT_K(KV, 4, false), \
     ATT_K(KV, 5, false), ATT_K(KV, 6, false), ATT_K(KV, 7, false), ATT_K(KV, 8, false)}
#define ATT_EXACT(KV) \
    {{NULL, NULL}, ATT_K(KV, 2, true), ATT_K(KV, 3, true), ATT_K(KV, 4, true), \
     {NULL, NULL}, {NULL, NULL}, {NULL, NULL}, ATT_K(KV, 8, true)}
static const attn_kernel k_attn[2][2][ATT_MAX_DPL] = {{ATT_GENERAL(__half), ATT_EXACT(__half)},
                                                       {ATT_GENERAL(float), ATT_EXACT(float)}};

/* [KV F16, F32][DPL - 1]: the decode kernels (DPL 2, 3, 4, 8; NULL elsewhere). */
template <typename KV, int DPL>
static void attn_dec_launch(const imp_cuda *c, const attn_args &a, dim3 grid, size_t smem) {
    if (a.hpc <= 4) IMP_CUDA_LAUNCH(c, (attn_dec_k<KV, DPL, 4>), grid, dim3(32 * ATT_WARPS), smem, a);
    else IMP_CUDA_LAUNCH(c, (attn_dec_k<KV, DPL, ATD_GM>), grid, dim3(32 * ATT_WARPS), smem, a);
}
#define ATD_K(KV) {NULL, attn_dec_launch<KV, 2>, attn_dec_launch<KV, 3>, attn_dec_launch<KV, 4>, NULL, NULL, NULL, attn_dec_launch<KV, 8>}
static const attn_launch_fn k_attn_dec[2][ATT_MAX_DPL] = {ATD_K(__half), ATD_K(float)};

#define ATT_TICKETS 4096 /* tiles of a split launch (fewer than the GPU's SMs) */

imp_status imp_cuda_attention_init(imp_cuda *c) {
    for (int k = 0; k < 2; k++) {
        for (int e = 0; e < 2; e++) {
            for (int dpl = 1; dpl <= ATT_MAX_DPL; dpl++) {
                const size_t smem = attn_smem(32 * dpl);
                const attn_kernel *kk = &k_attn[k][e][dpl - 1];
                if (!kk->launch || smem > c->smem_optin) continue; /* such head dims are refused at run time */
                CUDA_TRY(kk->raise_smem(smem));
            }
        }
    }
    CUDA_TRY(cudaMalloc((void **)&c->attn_tickets, ATT_TICKETS * sizeof(int)));
    CUDA_TRY(cudaMemset(c->attn_tickets, 0, ATT_TICKETS * sizeof(int)));
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
    const size_t esz = kv->type == IMP_TYPE_F16 ? 2 : 4;
    const bool exact = D == 32 * dpl && (a.n_embd_kv * esz) % 16 == 0 && ((uintptr_t)a.kc & 15) == 0 &&
                       ((uintptr_t)a.vc & 15) == 0;
    /* one token per run (decode): the decode kernel, ATD_GM query heads per block */
    const attn_launch_fn dec = exact && st->max_run == 1 ? k_attn_dec[kv->type == IMP_TYPE_F16 ? 0 : 1][dpl - 1] : NULL;
    const int rows_max = dec ? ATD_GM : ATT_ROWS;
    a.hpc = a.G < rows_max ? a.G : rows_max;
    a.n_hchunks = (a.G + a.hpc - 1) / a.hpc;
    a.tq = dec ? 1 : ATT_ROWS / a.hpc;
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
    if (split > 1 && (int64_t)grid.x * grid.y > ATT_TICKETS) return IMP_ERR_INTERNAL; /* split implies < SMs */
    a.tickets = c->attn_tickets;
    if (dec) {
        dec(c, a, grid, attn_dec_smem(D));
        CUDA_LAUNCHED();
        return IMP_OK;
    }
    const attn_kernel *kk = &k_attn[kv->type == IMP_TYPE_F16 ? 0 : 1][1][dpl - 1];
    if (!exact || !kk->launch) kk = &k_attn[kv->type == IMP_TYPE_F16 ? 0 : 1][0][dpl - 1];
    kk->launch(c, a, grid, attn_smem(32 * dpl));
    CUDA_LAUNCHED();
    return IMP_OK;
}
