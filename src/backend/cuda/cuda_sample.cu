/*
 * The sample op: one token per row of logits [n, V] on the GPU, so that only 4 bytes per row
 * come back to the host. The chain and its arithmetic are backend/sampling.h's, which the CPU
 * sampler (engine/sampler.c) uses too: for the same logits and r both pick the same token.
 * Every comparison is on logits (exact), masses are integers whose sums do not depend on the
 * order a reduction takes, and the few float/double operations are the header's unfused ones.
 *
 * Tokens are ordered by the 64-bit key
 *     k64 = key(logit) << 32 | (0xffffffff - id)      (descending = logit desc, id asc)
 * where key() maps a float's bits to an unsigned integer of the same order (-0 as +0), so
 * "the first m tokens in order" is "k64 >= a threshold". Letters: V vocabulary, R rows of a
 * launch (<= SMP_ROWS), S slices of a row (SMP_SLICE logits each, one block per slice).
 *
 * A launch spreads each row over S blocks (grid S x R, 256 threads, 16 logits a thread in
 * registers). Every block writes partials to the workspace; the last block of a row to finish
 * (a ticket per row, reset by that block) combines them. No step waits on the host:
 *
 *   first     (every row) each block: its slice's largest logit, lowest id holding it and
 *             count above -inf; for top-k rows (k <= SMP_KMAX) also its slice's top k,
 *             appended to the row's candidate list. The last block: greedy takes the argmax;
 *             top-k merges the <= S k candidates into the row's top k (rounds of <= 4096 in
 *             registers), sorts them and runs top-p, min-p and the draw as block prefix sums.
 *   kth       the threshold of a block's top m: a radix select on k64, 8 bits a pass over a
 *             shared-memory histogram, ending when a digit holds exactly the tokens still
 *             needed; for m <= 256 the m-th largest of the threads' own maxima (reached by m
 *             distinct tokens) first drops the tokens that cannot be in it.
 *   pass      (chain rows: top-k off or > SMP_KMAX) a fixed number of further launches, each
 *             one step of the row's state machine kept in the workspace (rows already done
 *             return at once): a radix select over key(logit), 11 bits a pass, with per-block
 *             histograms of counts or masses merged by global atomics, finds the token at
 *             which the running count (top-k) or mass (top-p, the draw) in order reaches its
 *             target. Equal logits have equal masses, so within the last digit the answer is
 *             the j-th smallest id among the ties, j computed; a scan pass (per-slice sums,
 *             then the last block walks the slice holding the target in id order) finds it.
 *             The draw in id order (top-k and top-p off) is one scan pass.
 *
 * The workspace is allocated on first use and grown (never shrunk) when a call needs more
 * rows, slices or top-k candidates; its counters and histograms are zero between launches.
 */
#include <limits.h>
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

#define SMP_THREADS 256
#define SMP_WARPS   (SMP_THREADS / 32)
#define SMP_ITEMS   16                        /* logits per thread */
#define SMP_SLICE   (SMP_THREADS * SMP_ITEMS) /* logits per block  */
#define SMP_ROWS    64                        /* rows per launch   */
#define SMP_KMAX    1024                      /* top-k up to this: candidate lists, one launch */
#define SMP_RBITS   11                        /* pass select: digit bits                      */
#define SMP_NB      (1 << SMP_RBITS)
#define SMP_SHIFT0  (32 - SMP_RBITS) /* the first digit's lowest bit (then 10, then 0) */
#define SMP_FULL    0xffffffffu
#define SMP_LOST    (-2) /* a target was not found: a bug, reported as IMP_ERR_INTERNAL */
#define SMP_ALIGN   256

static_assert(SMP_THREADS == 256, "smp_kth keeps one of 256 digits per thread");
static_assert(SMP_NB == 8 * SMP_THREADS, "a pass's last block reads 8 digits per thread");
static_assert(SMP_KMAX <= 4 * SMP_THREADS, "the top-k chain holds 4 candidates per thread");

typedef struct smp_rows {
    imp_sample_params p[SMP_ROWS];
} smp_rows;

/* What the first launch does with a row. */
enum { SMP_GREEDY, SMP_TOPK, SMP_CHAIN };

/* A chain row's stage (the pass launches' state machine). */
enum {
    SMP_DONE,   /* token written (or nothing to do)                              */
    SMP_SEL_K,  /* select by count: the top_k-th token (top-k > SMP_KMAX)        */
    SMP_SEL_P,  /* select by mass of the logit: top-p's cut                      */
    SMP_SEL_D,  /* select by mass of logit / t: the draw, in order              */
    SMP_SCAN_D, /* the draw in id order (top-k and top-p off): one scan pass     */
};

/* A chain row between launches. The survivors are the tokens with logit above -inf,
 * >= lmin and k64 >= kthr. A select in progress has fixed the key bits in pmask to prefix;
 * `before` is the weight of the survivors above that prefix and T its target. */
typedef struct smp_state {
    int stage;
    int tie;   /* the select's answer is the tie_j-th smallest id with key tie_key: scan pass */
    int shift; /* the select's next digit: key bits [shift, shift + SMP_RBITS)             */
    unsigned prefix, pmask, tie_key;
    float mx, lmin;
    unsigned long long kthr, T, before, tie_j;
} smp_state;

/* The workspace as the kernels see it (smp_layout places it). */
typedef struct smp_ws {
    unsigned *ticket;          /* [rows] blocks of the row done; zero between launches      */
    unsigned *ncand;           /* [rows] candidates listed; zero between launches           */
    unsigned *hcnt;            /* [rows][SMP_NB] pass histogram: tokens per digit,          */
    unsigned long long *hmass; /* their weight,                                             */
    unsigned *hnid;            /* the largest ~id (= the smallest id); all zero between     */
    smp_state *st;             /* [rows]                                                    */
    uint4 *part;               /* [rows][S] first: (max bits, argmax, count, 0) per slice   */
    unsigned long long *pw;    /* [rows][S] scan pass: weight per slice                     */
    unsigned long long *cand;  /* [rows][cstride] top-k candidates (k64)                   */
    long long cstride;
} smp_ws;

/* ---- keys, modes ----------------------------------------------------------------------------- */

__device__ __forceinline__ unsigned smp_key(float x) {
    const unsigned u = __float_as_uint(x == 0.0f ? 0.0f : x);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ float smp_unkey(unsigned k) {
    return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

__device__ __forceinline__ unsigned long long smp_k64(unsigned key, unsigned id) {
    return (unsigned long long)key << 32 | (0xffffffffu - id);
}

__device__ __forceinline__ int smp_id(unsigned long long k64) {
    return (int)(0xffffffffu - (unsigned)k64);
}

__host__ __device__ static inline int smp_mode(const imp_sample_params &p, int V) {
    if (!(p.temperature > 0.0f)) return SMP_GREEDY;
    if (p.top_k > 0 && p.top_k < V && p.top_k <= SMP_KMAX) return SMP_TOPK;
    return SMP_CHAIN;
}

/* ---- block reductions (every thread of the block calls them; 256 threads) ---------------- */

__device__ __forceinline__ unsigned long long smp_warp_sum(unsigned long long v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(SMP_FULL, v, o);
    return v;
}

template <typename T> __device__ __forceinline__ T smp_warp_scan(T v, int lane) {
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const T t = __shfl_up_sync(SMP_FULL, v, o);
        if (lane >= o) v += t;
    }
    return v;
}

/* Inclusive prefix sum over the threads in order; *total gets the sum of all. red: shared
 * [SMP_WARPS]. */
template <typename T> __device__ T smp_block_scan(T v, T *total, T *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = smp_warp_scan(v, lane);
    __syncthreads(); /* red may still be read by a previous call */
    if (lane == 31) red[warp] = v;
    __syncthreads();
    T before = 0, all = 0;
#pragma unroll
    for (int w = 0; w < SMP_WARPS; w++) {
        if (w < warp) before += red[w];
        all += red[w];
    }
    *total = all;
    return v + before;
}

__device__ unsigned long long smp_block_sum(unsigned long long v, unsigned long long *red) {
    unsigned long long total;
    smp_block_scan(v, &total, red);
    return total;
}

__device__ int smp_block_min(int v, int *red) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = min(v, __shfl_xor_sync(SMP_FULL, v, o));
    __syncthreads();
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    int m = red[0];
#pragma unroll
    for (int w = 1; w < SMP_WARPS; w++) m = min(m, red[w]);
    return m;
}

/* The largest logit above -inf, the lowest id holding it, and how many are above -inf: each
 * thread's, combined over the block (every thread gets the block's). */
__device__ void smp_block_stats(float *m, int *a, unsigned *n, float *redf, int *redi,
                                unsigned *redn) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float bm = *m;
    int ba = *a;
    unsigned bn = *n;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float m2 = __shfl_xor_sync(SMP_FULL, bm, o);
        const int a2 = __shfl_xor_sync(SMP_FULL, ba, o);
        bn += __shfl_xor_sync(SMP_FULL, bn, o);
        if (m2 > bm || (m2 == bm && a2 < ba)) {
            bm = m2;
            ba = a2;
        }
    }
    __syncthreads();
    if (lane == 0) {
        redf[warp] = bm;
        redi[warp] = ba;
        redn[warp] = bn;
    }
    __syncthreads();
    bm = redf[0];
    ba = redi[0];
    bn = redn[0];
    for (int w = 1; w < SMP_WARPS; w++) {
        bn += redn[w];
        if (redf[w] > bm || (redf[w] == bm && redi[w] < ba)) {
            bm = redf[w];
            ba = redi[w];
        }
    }
    *m = bm;
    *a = ba;
    *n = bn;
}

/* The last block of a row to finish its part of a launch returns true (every thread); it
 * resets the row's ticket for the next launch. The partials the others wrote are then
 * visible to it (read them with __ldcg: L1 is not coherent). */
__device__ bool smp_last_block(unsigned *ticket, int *flag) {
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) *flag = atomicAdd(ticket, 1u) == gridDim.x - 1;
    __syncthreads();
    if (!*flag) return false;
    if (threadIdx.x == 0) *ticket = 0;
    __threadfence();
    return true;
}

/* ---- the first launch --------------------------------------------------------------------- */

typedef struct smp_shared {
    unsigned long long red[SMP_WARPS];
    float redf[SMP_WARPS];
    int redi[SMP_WARPS];
    unsigned redn[SMP_WARPS];
    unsigned h[256];                   /* kth: tokens per digit                    */
    unsigned dig, before, n, base;     /* kth's answer; list: count; list: offset  */
    int last;                          /* smp_last_block                           */
    unsigned long long keep[SMP_KMAX]; /* top-k merge: the best so far, then sorted */
} smp_shared;

/* The threshold t with exactly `need` of the block's nonzero items >= t (1 <= need <= their
 * count; items are distinct k64 values, 0 = none): a radix select from the top, 8 bits a pass,
 * ending when the chosen digit holds exactly the tokens still needed. */
template <int N>
__device__ unsigned long long smp_kth(const unsigned long long (&it)[N], unsigned need,
                                      smp_shared *s) {
    const int tid = threadIdx.x, lane = tid & 31;
    unsigned long long prefix = 0, pmask = 0;
    for (int shift = 56; shift >= 0; shift -= 8) {
        __syncthreads(); /* s->h and s->dig may still be read */
        s->h[tid] = 0;
        __syncthreads();
#pragma unroll
        for (int j = 0; j < N; j++) {
            const unsigned long long u = it[j];
            const bool in = u != 0 && (u & pmask) == prefix;
            if (!__any_sync(SMP_FULL, in)) continue;
            const unsigned d = in ? (unsigned)(u >> shift) & 255u : 256u;
            const unsigned peers = __match_any_sync(SMP_FULL, d);
            if (in && lane == __ffs(peers) - 1) atomicAdd(&s->h[d], (unsigned)__popc(peers));
        }
        __syncthreads();
        const unsigned c = s->h[255 - tid]; /* thread t: digit 255 - t, so threads run in order */
        unsigned total;
        const unsigned incl = smp_block_scan(c, &total, s->redn);
        if (c && incl - c < need && incl >= need) {
            s->dig = 255u - (unsigned)tid;
            s->before = incl - c;
        }
        __syncthreads();
        const unsigned d = s->dig;
        need -= s->before;
        prefix |= (unsigned long long)d << shift;
        pmask |= 255ull << shift;
        if (s->h[d] == need) return prefix; /* the digit's tokens are exactly those still needed */
    }
    return prefix; /* not reached: distinct items end at the last digit at the latest */
}

/* smp_kth over all `total` nonzero items (need <= total); may zero items that cannot be in
 * the top `need`. */
__device__ unsigned long long smp_topk_thr(unsigned long long (&it)[SMP_ITEMS], unsigned need,
                                           unsigned total, smp_shared *s) {
    if (need >= total) return 1;
    if (need <= SMP_THREADS) {
        unsigned long long own = 0;
#pragma unroll
        for (int j = 0; j < SMP_ITEMS; j++) own = it[j] > own ? it[j] : own;
        if ((unsigned)__syncthreads_count(own != 0) >= need) {
            /* `need` threads have their own maximum >= L: the top `need` items are all >= L */
            const unsigned long long one[1] = {own};
            const unsigned long long L = smp_kth(one, need, s);
#pragma unroll
            for (int j = 0; j < SMP_ITEMS; j++) it[j] = it[j] >= L ? it[j] : 0;
        }
    }
    return smp_kth(it, need, s);
}

/* Appends the items >= thr (thr >= 1) to dst at positions counted by *n (shared, zero). */
__device__ void smp_list(const unsigned long long (&it)[SMP_ITEMS], unsigned long long thr,
                         unsigned long long *dst, unsigned *n) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int j = 0; j < SMP_ITEMS; j++) {
        const bool in = it[j] >= thr;
        const unsigned b = __ballot_sync(SMP_FULL, in);
        if (!b) continue;
        const int lead = __ffs(b) - 1;
        unsigned base = 0;
        if (lane == lead) base = atomicAdd(n, (unsigned)__popc(b));
        base = __shfl_sync(SMP_FULL, base, lead);
        if (in) dst[base + (unsigned)__popc(b & ((1u << lane) - 1u))] = it[j];
    }
}

/* Sorts s->keep[0, n) descending (n <= SMP_KMAX; bitonic, padded with zeros). */
__device__ void smp_sort_keep(unsigned n, smp_shared *s) {
    unsigned P = 1;
    while (P < n) P <<= 1;
    for (unsigned q = n + threadIdx.x; q < P; q += SMP_THREADS) s->keep[q] = 0;
    __syncthreads();
    for (unsigned k = 2; k <= P; k <<= 1) {
        for (unsigned j = k >> 1; j > 0; j >>= 1) {
            for (unsigned q = threadIdx.x; q < P; q += SMP_THREADS) {
                const unsigned l = q ^ j;
                if (l > q) {
                    const unsigned long long a = s->keep[q], b = s->keep[l];
                    if ((q & k) == 0 ? a < b : a > b) {
                        s->keep[q] = b;
                        s->keep[l] = a;
                    }
                }
            }
            __syncthreads();
        }
    }
}

/* The first index q of the sorted candidates at which the running weight reaches the target
 * (the draw's when draw, else top-p's, of the weights' total), or INT_MAX; w[e] is the weight
 * of index 4 * thread + e (0 past the survivors). */
__device__ int smp_reach(const unsigned long long (&w)[4], bool draw, const imp_sample_params &p,
                         smp_shared *s) {
    const unsigned long long mine = w[0] + w[1] + w[2] + w[3];
    unsigned long long total;
    unsigned long long run = smp_block_scan(mine, &total, s->red) - mine;
    const unsigned long long T =
        draw ? imp_sample_draw_target(p.r, total) : imp_sample_top_p_target(p.top_p, total);
    int at = INT_MAX;
#pragma unroll
    for (int e = 0; e < 4; e++) {
        run += w[e];
        if (at == INT_MAX && w[e] && run >= T) at = 4 * (int)threadIdx.x + e;
    }
    return smp_block_min(at, s->redi);
}

/* The top-k chain's token from the row's M candidates (each slice's top min(k, its count))
 * at list: their top min(k, M) in order, then top-p, min-p and the draw. */
__device__ int smp_topk_draw(const unsigned long long *list, unsigned M, const imp_sample_params &p,
                             float mx, int V, smp_shared *s) {
    const int tid = threadIdx.x;
    const unsigned k = (unsigned)p.top_k;
    unsigned nk = 0; /* s->keep[0, nk): the best of the candidates read so far */
    for (unsigned off = 0; off < M;) {
        const unsigned take = min(M - off, (unsigned)SMP_SLICE - nk), tot = nk + take;
        unsigned long long it[SMP_ITEMS];
#pragma unroll
        for (int j = 0; j < SMP_ITEMS; j++) {
            const unsigned q = (unsigned)(j * SMP_THREADS + tid);
            it[j] = q < nk ? s->keep[q] : q < tot ? __ldcg(list + off + (q - nk)) : 0ull;
        }
        off += take;
        const unsigned need = min(k, tot);
        const unsigned long long thr = smp_topk_thr(it, need, tot, s);
        __syncthreads(); /* keep[] read by all */
        if (tid == 0) s->n = 0;
        __syncthreads();
        smp_list(it, thr, s->keep, &s->n);
        __syncthreads();
        nk = need;
    }
    smp_sort_keep(nk, s);

    /* index q = 4 * thread + e of the candidates in order */
    const int bits = imp_sample_mass_bits(V);
    float v[4];
#pragma unroll
    for (int e = 0; e < 4; e++) {
        const unsigned q = 4u * (unsigned)tid + (unsigned)e;
        v[e] = q < nk ? smp_unkey((unsigned)(s->keep[q] >> 32)) : -INFINITY;
    }
    unsigned lim = nk;
    unsigned long long w[4];
    if (p.top_p < 1.0f && lim > 1) {
#pragma unroll
        for (int e = 0; e < 4; e++) w[e] = 4u * tid + e < lim ? imp_sample_mass(v[e], mx, bits) : 0;
        const int cut = smp_reach(w, false, p, s);
        if (cut < (int)lim) lim = (unsigned)cut + 1;
    }
    if (p.min_p_log > -INFINITY) { /* in order, so the survivors are a prefix */
        const float thr = IMP_SM_FADD(mx, p.min_p_log);
        int out = INT_MAX;
#pragma unroll
        for (int e = 0; e < 4; e++)
            if (out == INT_MAX && 4u * tid + e < lim && !(v[e] >= thr)) out = 4 * tid + e;
        out = smp_block_min(out, s->redi);
        if (out < (int)lim) lim = (unsigned)out;
    }
    const float mxt = IMP_SM_FDIV(mx, p.temperature);
#pragma unroll
    for (int e = 0; e < 4; e++)
        w[e] =
            4u * tid + e < lim ? imp_sample_mass(IMP_SM_FDIV(v[e], p.temperature), mxt, bits) : 0;
    const int at = smp_reach(w, true, p, s);
    return at < (int)lim ? smp_id(s->keep[at]) : SMP_LOST;
}

/* The survivors and select of a chain row start over for the draw. */
__device__ void smp_draw_init(smp_state *z, const imp_sample_params &p, int V) {
    const bool sorted = (p.top_k > 0 && p.top_k < V) || p.top_p < 1.0f;
    z->lmin = p.min_p_log > -INFINITY ? IMP_SM_FADD(z->mx, p.min_p_log) : -INFINITY;
    z->stage = sorted ? SMP_SEL_D : SMP_SCAN_D;
}

__device__ void smp_select_reset(smp_state *z) {
    z->tie = 0;
    z->shift = SMP_SHIFT0;
    z->prefix = z->pmask = 0;
    z->before = 0;
    z->T = 0;
}

/* This block's slice of a row: thread tid's SMP_ITEMS logits from i0 (-inf past V). */
static __device__ __forceinline__ void smp_load_slice(const float *x, int V, unsigned i0, int tid, float v[SMP_ITEMS]) {
#pragma unroll
    for (int j = 0; j < SMP_ITEMS; j++) {
        const unsigned i = i0 + (unsigned)(j * SMP_THREADS + tid);
        v[j] = i < (unsigned)V ? x[i] : -INFINITY;
    }
}

__global__ void __launch_bounds__(SMP_THREADS)
    smp_first_kernel(const float *logits, int64_t ld, int V, smp_rows rows, smp_ws ws,
                     int32_t *out) {
    __shared__ smp_shared s;
    const int tid = threadIdx.x, row = blockIdx.y, slices = gridDim.x;
    const imp_sample_params p = rows.p[row];
    const int mode = smp_mode(p, V);
    const float *x = logits + (int64_t)row * ld;
    const unsigned i0 = blockIdx.x * (unsigned)SMP_SLICE;
    float v[SMP_ITEMS];
    smp_load_slice(x, V, i0, tid, v);
    float m = -INFINITY;
    int a = INT_MAX;
    unsigned n = 0;
#pragma unroll
    for (int j = 0; j < SMP_ITEMS; j++) {
        if (v[j] > -INFINITY) { /* ids grow with j: the first of equal maxima stays */
            n++;
            if (v[j] > m) {
                m = v[j];
                a = (int)(i0 + (unsigned)(j * SMP_THREADS + tid));
            }
        }
    }
    smp_block_stats(&m, &a, &n, s.redf, s.redi, s.redn);
    if (tid == 0)
        ws.part[(int64_t)row * slices + blockIdx.x] =
            make_uint4(__float_as_uint(m), (unsigned)a, n, 0u);
    if (mode == SMP_TOPK && n > 0) { /* the slice's top min(k, n) to the row's list */
        unsigned long long it[SMP_ITEMS];
#pragma unroll
        for (int j = 0; j < SMP_ITEMS; j++)
            it[j] = v[j] > -INFINITY
                        ? smp_k64(smp_key(v[j]), i0 + (unsigned)(j * SMP_THREADS + tid))
                        : 0ull;
        const unsigned need = min((unsigned)p.top_k, n);
        const unsigned long long thr = smp_topk_thr(it, need, n, &s);
        __syncthreads();
        if (tid == 0) {
            s.base = atomicAdd(&ws.ncand[row], need);
            s.n = 0;
        }
        __syncthreads();
        smp_list(it, thr, ws.cand + row * ws.cstride + s.base, &s.n);
    }
    if (!smp_last_block(&ws.ticket[row], &s.last)) return;

    m = -INFINITY;
    a = INT_MAX;
    n = 0;
    for (int b = tid; b < slices; b += SMP_THREADS) {
        const uint4 q = __ldcg(&ws.part[(int64_t)row * slices + b]);
        const float qm = __uint_as_float(q.x);
        n += q.z;
        if (qm > m || (qm == m && (int)q.y < a)) {
            m = qm;
            a = (int)q.y;
        }
    }
    smp_block_stats(&m, &a, &n, s.redf, s.redi, s.redn);
    int tok = SMP_LOST;
    smp_state z = {};
    if (n == 0) {
        tok = -1;
    } else if (mode == SMP_GREEDY) {
        tok = a;
    } else if (mode == SMP_TOPK) {
        tok = smp_topk_draw(ws.cand + row * ws.cstride, __ldcg(&ws.ncand[row]), p, m, V, &s);
        __syncthreads(); /* everyone has read ncand */
        if (tid == 0) ws.ncand[row] = 0;
    } else { /* the pass launches go on from here */
        smp_select_reset(&z);
        z.mx = m;
        z.lmin = -INFINITY;
        if (p.top_k > 0 && p.top_k < V && (unsigned)p.top_k < n) {
            z.stage = SMP_SEL_K;
            z.T = (unsigned long long)p.top_k;
        } else if (p.top_p < 1.0f) {
            z.stage = SMP_SEL_P;
        } else {
            smp_draw_init(&z, p, V);
        }
    }
    if (tid == 0) {
        ws.st[row] = z;
        out[row] = tok;
    }
}

/* ---- pass launches (chain rows) ---------------------------------------------------------- */

typedef struct smp_pass_shared {
    unsigned cnt[SMP_NB];            /* tokens per digit          */
    unsigned long long mass[SMP_NB]; /* their weight              */
    unsigned nid[SMP_NB];            /* ~ their smallest id       */
    unsigned long long red[SMP_WARPS];
    int redi[SMP_WARPS];
    int last, dig;
    unsigned c, nidd;
    unsigned long long w, before;
} smp_pass_shared;

__device__ __forceinline__ bool smp_in(const smp_state &z, float v, unsigned i) {
    if (!(v > -INFINITY) || !(v >= z.lmin)) return false;
    return smp_k64(smp_key(v), i) >= z.kthr;
}

/* A survivor's weight in the current stage: 1 (top-k), the mass of its logit (top-p), the
 * mass of logit / t (the draw). */
__device__ __forceinline__ unsigned long long
smp_weight(const smp_state &z, const imp_sample_params &p, int bits, float v) {
    if (z.stage == SMP_SEL_K) return 1;
    if (z.stage == SMP_SEL_P) return imp_sample_mass(v, z.mx, bits);
    return imp_sample_mass(IMP_SM_FDIV(v, p.temperature), IMP_SM_FDIV(z.mx, p.temperature), bits);
}

/* A token's weight in a scan pass: a tie scan counts the survivors with key tie_key; the draw
 * in id order weighs survivors by their mass. */
__device__ __forceinline__ unsigned long long
smp_scan_weight(const smp_state &z, const imp_sample_params &p, int bits, float v, unsigned i) {
    if (!smp_in(z, v, i)) return 0;
    if (z.tie) return smp_key(v) == z.tie_key ? 1 : 0;
    return smp_weight(z, p, bits, v);
}

/* Adds each lane's digit d (SMP_NB: none), weight w and id to the histogram. Lanes sharing a
 * digit are counted by their lowest lane (the group's smallest id; one atomic per distinct
 * digit: a hot digit would serialize 32 per-lane atomics); their weights are summed across
 * the warp when at least 8 lanes share the digit (at most 4 such groups), added lane by lane
 * otherwise. All lanes call, with the same `weighted`. */
__device__ __forceinline__ void smp_hist_add(smp_pass_shared *s, unsigned d, unsigned long long w,
                                             unsigned id, bool weighted) {
    const int lane = threadIdx.x & 31;
    const unsigned peers = __match_any_sync(SMP_FULL, d);
    const bool leader = d < SMP_NB && lane == __ffs(peers) - 1;
    if (leader) {
        atomicAdd(&s->cnt[d], (unsigned)__popc(peers));
        atomicMax(&s->nid[d], ~id);
    }
    if (!weighted) return;
    const bool big = __popc(peers) >= 8;
    if (d < SMP_NB && !big) atomicAdd(&s->mass[d], w);
    for (unsigned todo = __ballot_sync(SMP_FULL, leader && big); todo; todo &= todo - 1) {
        const int l = __ffs(todo) - 1;
        const unsigned dl = __shfl_sync(SMP_FULL, d, l);
        const unsigned long long sum = smp_warp_sum(d == dl ? w : 0);
        if (lane == l) atomicAdd(&s->mass[dl], sum);
    }
}

/* A select (or its tie scan) has its answer k64: the next stage, or the token. */
__device__ void smp_select_done(smp_state *z, unsigned long long k64, const imp_sample_params &p,
                                int V, int32_t *out) {
    if (z->stage == SMP_SEL_D) {
        *out = smp_id(k64);
        z->stage = SMP_DONE;
        return;
    }
    z->kthr = k64; /* top-k's or top-p's survivors: k64 >= this one's */
    const bool to_p = z->stage == SMP_SEL_K && p.top_p < 1.0f;
    smp_select_reset(z);
    if (to_p)
        z->stage = SMP_SEL_P;
    else
        smp_draw_init(z, p, V);
}

/* The last block of a select pass: the digit at which the running weight reaches T, and
 * what it settles. Only thread 0 returns true, with *z updated. */
__device__ bool smp_hist_finish(smp_state *z, const smp_ws &ws, int row, const float *x,
                                const imp_sample_params &p, int V, int32_t *out,
                                smp_pass_shared *s) {
    const int tid = threadIdx.x;
    const bool weighted = z->stage != SMP_SEL_K;
    unsigned *gc = ws.hcnt + (int64_t)row * SMP_NB, *gn = ws.hnid + (int64_t)row * SMP_NB;
    unsigned long long *gm = ws.hmass + (int64_t)row * SMP_NB;
    unsigned cnt[8], nid[8];
    unsigned long long wt[8], mine = 0;
#pragma unroll
    for (int j = 0; j < 8; j++) { /* thread t: digits 2047 - 8t - j, so threads run in order */
        const int d = SMP_NB - 1 - 8 * tid - j;
        cnt[j] = __ldcg(gc + d);
        nid[j] = __ldcg(gn + d);
        wt[j] = weighted ? __ldcg(gm + d) : cnt[j];
        mine += wt[j];
        gc[d] = 0; /* zero for the next pass (only this thread reads these digits) */
        gn[d] = 0;
        gm[d] = 0;
    }
    unsigned long long total;
    unsigned long long run = smp_block_scan(mine, &total, s->red) - mine + z->before;
    unsigned long long T = z->T;
    if (z->pmask == 0 && z->stage != SMP_SEL_K) /* the first pass sums every survivor */
        T = z->stage == SMP_SEL_P ? imp_sample_top_p_target(p.top_p, total)
                                  : imp_sample_draw_target(p.r, total);
    int found = -1;
    unsigned fc = 0, fnid = 0;
    unsigned long long fw = 0;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        if (found < 0 && cnt[j] && run + wt[j] >= T) {
            found = SMP_NB - 1 - 8 * tid - j;
            fc = cnt[j];
            fw = wt[j];
            fnid = nid[j];
        }
        if (found < 0) run += wt[j];
    }
    const int win = smp_block_min(found >= 0 ? tid : INT_MAX, s->redi);
    if (tid == win) {
        s->dig = found;
        s->c = fc;
        s->w = fw;
        s->nidd = fnid;
        s->before = run;
    }
    __syncthreads();
    if (tid != 0) return false;
    z->T = T;
    if (win == INT_MAX) { /* T above the total: not reached */
        *out = SMP_LOST;
        z->stage = SMP_DONE;
        return true;
    }
    z->prefix |= (unsigned)s->dig << z->shift;
    z->pmask |= (unsigned)(SMP_NB - 1) << z->shift;
    z->before = s->before;
    const unsigned c = s->c;
    const unsigned long long w = s->w;
    if (c == 1) { /* one token left in the digit: it is the answer */
        const unsigned id = ~s->nidd;
        smp_select_done(z, smp_k64(smp_key(x[id]), id), p, V, out);
    } else if (!weighted && z->before + w == T) { /* the digit's last token: all of it */
        smp_select_done(z, (unsigned long long)z->prefix << 32, p, V, out);
    } else if (z->shift == 0) { /* c tokens with the same logit, each of weight w / c: the j-th */
        const unsigned long long each = w / c;
        unsigned long long j = each && T > z->before ? (T - z->before + each - 1) / each : 1;
        if (j > c) j = c;
        if (j == 1) {
            smp_select_done(z, smp_k64(z->prefix, ~s->nidd), p, V, out);
        } else {
            z->tie = 1;
            z->tie_key = z->prefix;
            z->tie_j = j;
        }
    } else {
        z->shift = z->shift > SMP_RBITS ? z->shift - SMP_RBITS : 0;
    }
    return true;
}

/* The last block of a scan pass: the slice holding the target, then the token in it. Only
 * thread 0 returns true, with *z updated. */
__device__ bool smp_scan_finish(smp_state *z, const smp_ws &ws, int row, const float *x,
                                const imp_sample_params &p, int V, int32_t *out,
                                smp_pass_shared *s) {
    const int tid = threadIdx.x, slices = gridDim.x, bits = imp_sample_mass_bits(V);
    const unsigned long long *pw = ws.pw + (int64_t)row * slices;
    unsigned long long T = z->tie_j;
    if (!z->tie) {
        unsigned long long mine = 0;
        for (int b = tid; b < slices; b += SMP_THREADS) mine += __ldcg(pw + b);
        T = imp_sample_draw_target(p.r, smp_block_sum(mine, s->red));
    }
    int sf = -1;
    unsigned long long sb = 0, carry = 0;
    for (int b0 = 0; b0 < slices && sf < 0; b0 += SMP_THREADS) {
        const int b = b0 + tid;
        const unsigned long long w = b < slices ? __ldcg(pw + b) : 0;
        unsigned long long tot;
        const unsigned long long incl = smp_block_scan(w, &tot, s->red);
        const int hit = smp_block_min(w && carry + incl >= T ? b : INT_MAX, s->redi);
        if (b == hit) s->before = carry + incl - w;
        __syncthreads();
        if (hit < INT_MAX) {
            sf = hit;
            sb = s->before;
        }
        carry += tot;
    }
    int id = INT_MAX;
    if (sf >= 0) { /* thread t walks ids [16 t, 16 t + 16) of the slice */
        const unsigned q0 = (unsigned)sf * SMP_SLICE + (unsigned)tid * SMP_ITEMS;
        unsigned long long mine = 0;
        for (int e = 0; e < SMP_ITEMS; e++) {
            const unsigned q = q0 + (unsigned)e;
            if (q < (unsigned)V) mine += smp_scan_weight(*z, p, bits, x[q], q);
        }
        unsigned long long tot;
        unsigned long long run = smp_block_scan(mine, &tot, s->red) - mine + sb;
        if (run < T && run + mine >= T) {
            for (int e = 0; e < SMP_ITEMS && id == INT_MAX; e++) {
                const unsigned q = q0 + (unsigned)e;
                const unsigned long long w =
                    q < (unsigned)V ? smp_scan_weight(*z, p, bits, x[q], q) : 0;
                run += w;
                if (w && run >= T) id = (int)q;
            }
        }
        id = smp_block_min(id, s->redi);
    }
    if (tid != 0) return false;
    if (id == INT_MAX) {
        *out = SMP_LOST;
        z->stage = SMP_DONE;
    } else if (z->tie) {
        z->tie = 0;
        smp_select_done(z, smp_k64(z->tie_key, (unsigned)id), p, V, out);
    } else {
        *out = id;
        z->stage = SMP_DONE;
    }
    return true;
}

__global__ void __launch_bounds__(SMP_THREADS)
    smp_pass_kernel(const float *logits, int64_t ld, int V, smp_rows rows, smp_ws ws,
                    int32_t *out) {
    __shared__ smp_pass_shared s;
    const int tid = threadIdx.x, row = blockIdx.y, slices = gridDim.x;
    smp_state z = ws.st[row];
    if (z.stage == SMP_DONE) return; /* the same in every block of the row */
    const imp_sample_params p = rows.p[row];
    const int bits = imp_sample_mass_bits(V);
    const bool scan = z.tie || z.stage == SMP_SCAN_D;
    const float *x = logits + (int64_t)row * ld;
    const unsigned i0 = blockIdx.x * (unsigned)SMP_SLICE;
    float v[SMP_ITEMS];
    smp_load_slice(x, V, i0, tid, v);
    if (scan) {
        unsigned long long w = 0;
#pragma unroll
        for (int j = 0; j < SMP_ITEMS; j++)
            w += smp_scan_weight(z, p, bits, v[j], i0 + (unsigned)(j * SMP_THREADS + tid));
        w = smp_block_sum(w, s.red);
        if (tid == 0) ws.pw[(int64_t)row * slices + blockIdx.x] = w;
    } else {
        const bool weighted = z.stage != SMP_SEL_K;
        for (int b = tid; b < SMP_NB; b += SMP_THREADS) {
            s.cnt[b] = 0;
            s.mass[b] = 0;
            s.nid[b] = 0;
        }
        __syncthreads();
#pragma unroll
        for (int j = 0; j < SMP_ITEMS; j++) {
            const unsigned i = i0 + (unsigned)(j * SMP_THREADS + tid);
            bool in = smp_in(z, v[j], i);
            const unsigned key = in ? smp_key(v[j]) : 0u;
            in = in && (key & z.pmask) == z.prefix;
            if (!__any_sync(SMP_FULL, in)) continue;
            const unsigned d = in ? (key >> z.shift) & (SMP_NB - 1u) : (unsigned)SMP_NB;
            const unsigned long long w = in && weighted ? smp_weight(z, p, bits, v[j]) : 0;
            smp_hist_add(&s, d, w, i, weighted);
        }
        __syncthreads();
        const int64_t h0 = (int64_t)row * SMP_NB;
        for (int b = tid; b < SMP_NB; b += SMP_THREADS) {
            const unsigned c = s.cnt[b];
            if (!c) continue;
            atomicAdd(&ws.hcnt[h0 + b], c);
            atomicMax(&ws.hnid[h0 + b], s.nid[b]);
            if (weighted) atomicAdd(&ws.hmass[h0 + b], s.mass[b]);
        }
    }
    if (!smp_last_block(&ws.ticket[row], &s.last)) return;
    const bool wrote = scan ? smp_scan_finish(&z, ws, row, x, p, V, out + row, &s)
                            : smp_hist_finish(&z, ws, row, x, p, V, out + row, &s);
    if (wrote) ws.st[row] = z;
}

/* Pass launches a chain row may need: a select is up to 3 histogram passes and a tie scan. */
static int smp_passes(const imp_sample_params &p, int V) {
    if (smp_mode(p, V) != SMP_CHAIN) return 0;
    const bool topk = p.top_k > 0 && p.top_k < V;
    const bool sorted = topk || p.top_p < 1.0f;
    const int select = 1 + (SMP_SHIFT0 + SMP_RBITS - 1) / SMP_RBITS + 1; /* 3 digits + tie */
    return (topk ? select : 0) + (p.top_p < 1.0f ? select : 0) + (sorted ? select : 1);
}

/* ---- the workspace ----------------------------------------------------------------------------
 */

static size_t smp_align(size_t n) {
    return (n + SMP_ALIGN - 1) / SMP_ALIGN * SMP_ALIGN;
}

/* Places the workspace for `rows` rows of `slices` slices and top-k up to kcap at base (NULL:
 * only the size); returns its bytes. Counters and histograms come first. */
static size_t smp_layout(char *base, int rows, int slices, int kcap, smp_ws *ws) {
    const size_t R = (size_t)rows, S = (size_t)slices;
    size_t o = 0;
#define SMP_PLACE(field, type, count)                                                              \
    do {                                                                                           \
        ws->field = (type *)(base ? base + o : NULL);                                              \
        o += smp_align((count) * sizeof(type));                                                    \
    } while (0)
    SMP_PLACE(ticket, unsigned, R);
    SMP_PLACE(ncand, unsigned, R);
    SMP_PLACE(hcnt, unsigned, R *SMP_NB);
    SMP_PLACE(hmass, unsigned long long, R *SMP_NB);
    SMP_PLACE(hnid, unsigned, R *SMP_NB);
    SMP_PLACE(st, smp_state, R);
    SMP_PLACE(part, uint4, R * S);
    SMP_PLACE(pw, unsigned long long, R *S);
    SMP_PLACE(cand, unsigned long long, R *S *(size_t)kcap);
#undef SMP_PLACE
    ws->cstride = (long long)S * kcap;
    return o;
}

/* The workspace for a call (grown when it needs more than it holds; zeroed when allocated),
 * and the pinned buffer the tokens come back in (mapped: the kernels write it directly). */
static imp_status smp_reserve(imp_cuda *c, int rows, int slices, int kcap, imp_error *err) {
    imp_cuda_smp *m = &c->smp;
    cudaError_t e = cudaSuccess;
    if (!m->host) {
        e = cudaHostAlloc((void **)&m->host, SMP_ROWS * sizeof(int32_t), cudaHostAllocMapped);
        if (e == cudaSuccess &&
            cudaHostGetDevicePointer((void **)&m->host_dev, m->host, 0) != cudaSuccess) {
            cudaGetLastError(); /* not mapped: tokens go through a device buffer and a copy */
            m->host_dev = NULL;
            e = cudaMalloc((void **)&m->dev, SMP_ROWS * sizeof(int32_t));
        }
        if (e != cudaSuccess) {
            cudaGetLastError();
            if (m->host) cudaFreeHost(m->host);
            m->host = NULL;
            return imp_error_set(err, IMP_ERR_NOMEM, "GPU %d: sample token buffer: %s", c->device,
                                 cudaGetErrorString(e));
        }
    }
    if (m->ws && rows <= m->rows && slices <= m->slices && kcap <= m->kcap) return IMP_OK;
    if (m->ws) { /* grow every dimension to what either call needed */
        rows = rows > m->rows ? rows : m->rows;
        slices = slices > m->slices ? slices : m->slices;
        kcap = kcap > m->kcap ? kcap : m->kcap;
    }
    smp_ws ws;
    const size_t bytes = smp_layout(NULL, rows, slices, kcap, &ws);
    e = cudaStreamSynchronize(c->stream); /* queued launches may still use the old one */
    if (e == cudaSuccess && m->ws) e = cudaFree(m->ws);
    m->ws = NULL;
    m->rows = m->slices = m->kcap = 0;
    if (e == cudaSuccess) e = cudaMalloc(&m->ws, bytes);
    if (e == cudaSuccess) e = cudaMemsetAsync(m->ws, 0, bytes, c->stream);
    if (e != cudaSuccess) {
        cudaGetLastError();
        if (m->ws) cudaFree(m->ws);
        m->ws = NULL;
        return imp_error_set(err, IMP_ERR_NOMEM, "GPU %d: sample workspace of %zu bytes: %s",
                             c->device, bytes, cudaGetErrorString(e));
    }
    m->rows = rows;
    m->slices = slices;
    m->kcap = kcap;
    return IMP_OK;
}

/* ---- the op -----------------------------------------------------------------------------------
 */

static imp_status smp_bad(imp_error *err, const char *what) {
    return imp_error_set(err, IMP_ERR_INVALID_ARG, "sample: %s", what);
}

imp_status imp_cuda_sample(imp_backend *be, const imp_tensor *logits, const imp_sample_params *p,
                           int32_t *tokens, imp_error *err) {
    imp_cuda *c = (imp_cuda *)be;
    if (!logits || !p || !tokens) return smp_bad(err, "NULL argument");
    if (logits->type != IMP_TYPE_F32 || logits->ne0 < 1 || logits->ne0 > INT32_MAX ||
        logits->ne1 < 0 || logits->nb1 % sizeof(float) != 0 ||
        logits->nb1 < (size_t)logits->ne0 * sizeof(float)) {
        return smp_bad(err, "logits must be F32 rows of 1..2^31-1 values");
    }
    for (int64_t i = 0; i < logits->ne1; i++) {
        if (!(p[i].r >= 0.0 && p[i].r < 1.0)) return smp_bad(err, "r must be in [0, 1)");
        if (isnan(p[i].temperature) || isnan(p[i].top_p) || isnan(p[i].min_p_log))
            return smp_bad(err, "NaN parameter");
    }
    if (c->capturing)
        return imp_error_set(err, IMP_ERR_INTERNAL, "sample: called while a graph is recorded");
    if (logits->ne1 == 0) return IMP_OK;
    const int V = (int)logits->ne0;
    const int slices = (int)(((int64_t)V + SMP_SLICE - 1) / SMP_SLICE);
    int kcap = 1;
    for (int64_t i = 0; i < logits->ne1; i++)
        if (smp_mode(p[i], V) == SMP_TOPK && p[i].top_k > kcap) kcap = p[i].top_k;
    const int rows_max = (int)(logits->ne1 < SMP_ROWS ? logits->ne1 : SMP_ROWS);
    imp_status st = smp_reserve(c, rows_max, slices, kcap, err);
    if (st != IMP_OK) return st;
    smp_ws ws;
    smp_layout((char *)c->smp.ws, c->smp.rows, slices, kcap, &ws);
    int32_t *out = c->smp.host_dev ? c->smp.host_dev : c->smp.dev;
    const int64_t ld = (int64_t)(logits->nb1 / sizeof(float));
    for (int64_t r0 = 0; r0 < logits->ne1; r0 += SMP_ROWS) {
        const int n = (int)(logits->ne1 - r0 < SMP_ROWS ? logits->ne1 - r0 : SMP_ROWS);
        smp_rows rows;
        memset(&rows, 0, sizeof rows);
        memcpy(rows.p, p + r0, (size_t)n * sizeof *p);
        int passes = 0;
        for (int i = 0; i < n; i++) {
            const int q = smp_passes(rows.p[i], V);
            passes = q > passes ? q : passes;
        }
        const float *x = (const float *)logits->data + r0 * ld;
        const dim3 grid((unsigned)slices, (unsigned)n);
        smp_first_kernel<<<grid, SMP_THREADS, 0, c->stream>>>(x, ld, V, rows, ws, out);
        for (int i = 0; i < passes; i++)
            smp_pass_kernel<<<grid, SMP_THREADS, 0, c->stream>>>(x, ld, V, rows, ws, out);
        cudaError_t e = cudaGetLastError();
        if (e == cudaSuccess && !c->smp.host_dev)
            e = cudaMemcpyAsync(c->smp.host, c->smp.dev, (size_t)n * sizeof(int32_t),
                                cudaMemcpyDeviceToHost, c->stream);
        if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
        if (e != cudaSuccess) {
            return imp_error_set(err, IMP_ERR_DEVICE, "GPU %d: sample: %s", c->device,
                                 cudaGetErrorString(e));
        }
        for (int i = 0; i < n; i++) {
            const int32_t t = c->smp.host[i];
            if (t < -1 || t >= logits->ne0) {
                return imp_error_set(err, IMP_ERR_INTERNAL,
                                     "sample: row %lld: the kernel lost its target",
                                     (long long)(r0 + i));
            }
            tokens[r0 + i] = t;
        }
    }
    return IMP_OK;
}
