/*
 * The sample op: one token per row of logits [n, V] on the GPU, so that only 4 bytes per row
 * come back to the host. The chain and its arithmetic are backend/sampling.h's, which the CPU
 * sampler (engine/sampler.c) uses too: for the same logits and r both pick the same token.
 * Every comparison is on logits (exact), masses are integers whose sums do not depend on the
 * order a reduction takes, and the few float/double operations are the header's unfused ones.
 *
 * One block of 1024 threads per row. Tokens are ordered by the 64-bit key
 *     k64 = key(logit) << 32 | (0xffffffff - id)      (descending = logit desc, id asc)
 * where key() maps a float's bits to an unsigned integer of the same order (-0 as +0), so
 * "the first m tokens in order" is "k64 >= a threshold". The steps:
 *
 *   stats     one pass: the largest logit, how many are above -inf, the greedy argmax.
 *   top-k     (k <= 1024) the k-th largest of the 1024 threads' own maxima is reached by k
 *             distinct tokens, so it bounds the row's k-th largest logit from below: the
 *             tokens at or above it (usually about k) are gathered and ranked (small, below).
 *             When more than 1024 reach it, or k > 1024, a select finds the k-th.
 *   select    radix select over key(logit), 8 bits a pass from the top, with a histogram of
 *             counts or masses per digit in shared memory: finds the token at which the
 *             running count (top-k) or mass (top-p, the draw) in order first reaches a target.
 *             Tokens with equal logits have equal masses, so within the last digit the answer
 *             is the j-th smallest id among the ties, j computed; a scan in id order finds it.
 *   small     once at most 1024 candidates are left (top-k 40: nearly always), they are
 *             gathered into shared memory, ranked (order, or id), and top-p / min-p / the draw
 *             become block prefix sums over at most 1024 masses.
 *   scan      the draw in id order over many candidates (top-k and top-p off): per-warp sums
 *             over contiguous id ranges, then one warp walks the range holding the target.
 *
 * Rows are launched 64 at a time (their parameters travel in the kernel's argument block).
 */
#include <limits.h>
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

#define SMP_THREADS 1024
#define SMP_WARPS   (SMP_THREADS / 32)
#define SMP_CAP     SMP_THREADS /* candidates the small path holds: one per thread */
#define SMP_ROWS    64          /* rows per launch */
#define SMP_FULL    0xffffffffu
#define SMP_LOST    (-2) /* a target was not found: a bug, reported as IMP_ERR_INTERNAL */

typedef struct smp_rows {
    imp_sample_params p[SMP_ROWS];
} smp_rows;

/* Which tokens are still candidates: logit above -inf and >= lmin, k64 >= kthr, and with
 * has_key only those whose key() is key. */
typedef struct smp_pred {
    unsigned long long kthr;
    float lmin;
    bool has_key;
    unsigned key;
} smp_pred;

/* A token's weight in a select or scan: kind 0 counts tokens; 1 is the mass of the logit
 * relative to mx; 2 the mass of logit / t relative to mx (= max / t). */
typedef struct smp_mass {
    int kind;
    float mx, t;
    int bits;
} smp_mass;

typedef struct smp_shared {
    unsigned long long red[SMP_WARPS]; /* per-warp partials of reductions and scans */
    float redf[SMP_WARPS];
    int redi[SMP_WARPS];
    unsigned cnt[256];            /* select, per digit: tokens,      */
    unsigned long long mass[256]; /* their mass (kinds 1, 2),         */
    unsigned minid[256];          /* the smallest id                  */
    int sel_digit, sel_warp, result;
    unsigned long long sel_before;  /* count/mass of the tokens before the chosen digit or warp */
    unsigned sel_cbefore;           /* count of the tokens before the chosen digit              */
    unsigned n;                     /* small: candidates gathered                               */
    float cl[SMP_CAP], sl[SMP_CAP]; /* small: logits as gathered, then ranked */
    int cid[SMP_CAP], sid[SMP_CAP]; /* small: their ids                       */
} smp_shared;

/* ---- keys, candidates, masses ------------------------------------------------------------ */

__device__ __forceinline__ unsigned smp_key(float x) {
    const unsigned u = __float_as_uint(x == 0.0f ? 0.0f : x);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ unsigned long long smp_k64(unsigned key, unsigned id) {
    return (unsigned long long)key << 32 | (0xffffffffu - id);
}

__device__ __forceinline__ bool smp_in(const smp_pred &p, float x, int i) {
    if (!(x > -INFINITY) || !(x >= p.lmin)) return false;
    const unsigned k = smp_key(x);
    if (p.has_key && k != p.key) return false;
    return smp_k64(k, (unsigned)i) >= p.kthr;
}

__device__ __forceinline__ unsigned long long smp_mass_of(const smp_mass &m, float x) {
    if (m.kind == 0) return 1;
    return imp_sample_mass(m.kind == 2 ? IMP_SM_FDIV(x, m.t) : x, m.mx, m.bits);
}

/* ---- block reductions and scans (every thread of the block calls them) ------------------- */

__device__ __forceinline__ unsigned long long smp_warp_sum(unsigned long long v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(SMP_FULL, v, o);
    return v;
}

__device__ __forceinline__ unsigned long long smp_warp_scan(unsigned long long v, int lane) {
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const unsigned long long t = __shfl_up_sync(SMP_FULL, v, o);
        if (lane >= o) v += t;
    }
    return v;
}

__device__ unsigned long long smp_block_sum(unsigned long long v, smp_shared *s) {
    v = smp_warp_sum(v);
    __syncthreads(); /* s->red may still be read by a previous call */
    if ((threadIdx.x & 31) == 0) s->red[threadIdx.x >> 5] = v;
    __syncthreads();
    return smp_warp_sum(s->red[threadIdx.x & 31]);
}

__device__ int smp_block_min(int v, smp_shared *s) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = min(v, __shfl_xor_sync(SMP_FULL, v, o));
    __syncthreads();
    if ((threadIdx.x & 31) == 0) s->redi[threadIdx.x >> 5] = v;
    __syncthreads();
    v = s->redi[threadIdx.x & 31];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = min(v, __shfl_xor_sync(SMP_FULL, v, o));
    return v;
}

/* Inclusive prefix sum over the threads in order; *total gets the sum of all. */
__device__ unsigned long long smp_block_scan(unsigned long long v, unsigned long long *total,
                                             smp_shared *s) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = smp_warp_scan(v, lane);
    __syncthreads();
    if (lane == 31) s->red[warp] = v;
    __syncthreads();
    const unsigned long long w = smp_warp_scan(s->red[lane], lane); /* warp totals, scanned */
    const unsigned long long before = __shfl_sync(SMP_FULL, w, (warp + 31) & 31);
    *total = __shfl_sync(SMP_FULL, w, 31);
    return warp ? v + before : v;
}

/* ---- stats ----------------------------------------------------------------------------------- */

/* The largest logit above -inf, how many there are, and the lowest id holding the largest;
 * *own: the largest this thread saw (-inf if none). */
__device__ void smp_stats(const float *x, int V, smp_shared *s, float *mx, unsigned *n, int *arg,
                          float *own) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float m = -INFINITY;
    unsigned c = 0;
    int a = INT_MAX;
    for (int i = threadIdx.x; i < V; i += SMP_THREADS) {
        const float v = x[i];
        if (v > -INFINITY) {
            c++;
            if (v > m) { /* ids grow: the first of equal maxima stays */
                m = v;
                a = i;
            }
        }
    }
    *own = m;
    for (int round = 0; round < 2; round++) {
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const float m2 = __shfl_xor_sync(SMP_FULL, m, o);
            const int a2 = __shfl_xor_sync(SMP_FULL, a, o);
            c += __shfl_xor_sync(SMP_FULL, c, o);
            if (m2 > m || (m2 == m && a2 < a)) {
                m = m2;
                a = a2;
            }
        }
        if (round == 1) break;
        __syncthreads();
        if (lane == 0) {
            s->redf[warp] = m;
            s->redi[warp] = a;
            s->red[warp] = c;
        }
        __syncthreads();
        m = s->redf[lane];
        a = s->redi[lane];
        c = (unsigned)s->red[lane];
    }
    *mx = m;
    *n = c;
    *arg = a;
}

/* ---- scan: the first token in id order whose running weight reaches T -------------------- */

/* Tokens of pr in id order, weighted by mf: the id at which the running weight first reaches
 * T (1 <= T <= the total), or SMP_LOST. Warp w sums the ids [w R, (w + 1) R); then the warp
 * whose range holds the target walks it 32 ids at a time. */
__device__ int smp_scan(const float *x, int V, const smp_pred &pr, const smp_mass &mf,
                        unsigned long long T, smp_shared *s) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const long long R = ((((long long)V + SMP_WARPS - 1) / SMP_WARPS) + 31) & ~31ll;
    const long long b0 = warp * R, e0 = min((long long)V, b0 + R);
    unsigned long long m = 0;
    for (long long i = b0 + lane; i < e0; i += 32) {
        const float v = x[i];
        if (smp_in(pr, v, (int)i)) m += smp_mass_of(mf, v);
    }
    m = smp_warp_sum(m);
    __syncthreads();
    if (lane == 0) s->red[warp] = m;
    __syncthreads();
    if (warp == 0) {
        const unsigned long long ws = s->red[lane], inc = smp_warp_scan(ws, lane);
        const unsigned hit = __ballot_sync(SMP_FULL, inc >= T);
        const int w = hit ? __ffs(hit) - 1 : -1;
        if (lane == (w < 0 ? 0 : w)) {
            s->sel_warp = w;
            s->sel_before = inc - ws;
        }
        if (lane == 0) s->result = SMP_LOST;
    }
    __syncthreads();
    if (warp == s->sel_warp) {
        unsigned long long run = s->sel_before;
        int found = -1;
        const long long e = min((long long)V, b0 + R);
        for (long long i0 = b0; i0 < e && found < 0; i0 += 32) {
            const long long i = i0 + lane;
            bool in = false;
            unsigned long long w = 0;
            if (i < e) {
                const float v = x[i];
                in = smp_in(pr, v, (int)i);
                if (in) w = smp_mass_of(mf, v);
            }
            const unsigned long long inc = smp_warp_scan(w, lane) + run;
            const unsigned hit = __ballot_sync(SMP_FULL, in && inc >= T);
            if (hit) found = (int)(i0 + __ffs(hit) - 1);
            run = __shfl_sync(SMP_FULL, inc, 31);
        }
        if (lane == 0 && found >= 0) s->result = found;
    }
    __syncthreads();
    const int r = s->result;
    __syncthreads();
    return r;
}

/* ---- select: radix select by running count or mass --------------------------------------------
 */

/* Adds each lane's digit d (256: none), weight w and id to the histogram. Lanes sharing a
 * digit are counted by their lowest lane (one atomic per distinct digit: a hot digit would
 * serialize 32 per-lane atomics); their weights are summed across the warp when at least 8
 * lanes share the digit (at most 4 such groups), added lane by lane otherwise. All lanes call. */
__device__ __forceinline__ void smp_hist_add(smp_shared *s, unsigned d, unsigned long long w,
                                             unsigned id, bool weighted) {
    const int lane = threadIdx.x & 31;
    const unsigned peers = __match_any_sync(SMP_FULL, d);
    const bool leader = d < 256 && lane == __ffs(peers) - 1; /* the group's smallest id */
    if (leader) {
        atomicAdd(&s->cnt[d], (unsigned)__popc(peers));
        atomicMin(&s->minid[d], id);
    }
    if (!weighted) return;
    const bool big = __popc(peers) >= 8;
    if (d < 256 && !big) atomicAdd(&s->mass[d], w);
    for (unsigned todo = __ballot_sync(SMP_FULL, leader && big); todo; todo &= todo - 1) {
        const int l = __ffs(todo) - 1;
        const unsigned dl = __shfl_sync(SMP_FULL, d, l);
        const unsigned long long sum = smp_warp_sum(d == dl ? w : 0);
        if (lane == l) atomicAdd(&s->mass[dl], sum);
    }
}

/* In the order of k64 (descending), the first token of pr whose running weight reaches T
 * (T <= the total weight; T = 0: the first token). On success *k gets its k64 (so "k64 >= *k"
 * keeps it and every token before it) and *count the number of those tokens. */
__device__ bool smp_select(const float *x, int V, const smp_pred &pr, const smp_mass &mf,
                           unsigned long long T, unsigned long long *k, unsigned *count,
                           smp_shared *s) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const bool weighted = mf.kind != 0;
    unsigned prefix = 0, pmask = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        if (threadIdx.x < 256) {
            s->cnt[threadIdx.x] = 0;
            s->mass[threadIdx.x] = 0;
            s->minid[threadIdx.x] = 0xffffffffu;
        }
        __syncthreads();
        for (int i0 = warp * 32; i0 < V; i0 += SMP_THREADS) {
            const int i = i0 + lane;
            unsigned d = 256;
            unsigned long long w = 0;
            if (i < V) {
                const float v = x[i];
                if (smp_in(pr, v, i)) {
                    const unsigned key = smp_key(v);
                    if ((key & pmask) == prefix) {
                        d = (key >> shift) & 255u;
                        if (weighted) w = smp_mass_of(mf, v);
                    }
                }
            }
            if (__any_sync(SMP_FULL, d < 256)) smp_hist_add(s, d, w, (unsigned)i, weighted);
        }
        __syncthreads();
        if (warp == 0) {
            /* lane l holds digits 255 - 8l - j, j = 0..7: lanes in order = digits in order */
            const unsigned long long before = shift == 24 ? 0 : s->sel_before;
            const unsigned cbefore = shift == 24 ? 0 : s->sel_cbefore;
            unsigned long long lw = 0;
            unsigned lc = 0;
#pragma unroll
            for (int j = 0; j < 8; j++) {
                const int d = 255 - 8 * lane - j;
                lc += s->cnt[d];
                lw += weighted ? s->mass[d] : s->cnt[d];
            }
            unsigned long long run = before + smp_warp_scan(lw, lane) - lw;
            unsigned crun = cbefore + (unsigned)smp_warp_scan(lc, lane) - lc;
            int found = -1;
            for (int j = 0; j < 8; j++) {
                const int d = 255 - 8 * lane - j;
                const unsigned c = s->cnt[d];
                const unsigned long long w = weighted ? s->mass[d] : c;
                if (c && run + w >= T) {
                    found = d;
                    break;
                }
                run += w;
                crun += c;
            }
            const unsigned hit = __ballot_sync(SMP_FULL, found >= 0);
            if (lane == (hit ? __ffs(hit) - 1 : 0)) {
                s->sel_digit = hit ? found : -1;
                s->sel_before = run;
                s->sel_cbefore = crun;
            }
        }
        __syncthreads();
        const int d = s->sel_digit;
        if (d < 0) return false; /* T above the total: not reached by correct callers */
        const unsigned long long before = s->sel_before;
        const unsigned cbefore = s->sel_cbefore, c = s->cnt[d], id = s->minid[d];
        const unsigned long long w = weighted ? s->mass[d] : c;
        prefix |= (unsigned)d << shift;
        pmask |= 255u << shift;
        __syncthreads(); /* everyone has read the histogram before the next pass clears it */
        if (c == 1) {    /* one token left in the digit: it is the answer */
            *k = smp_k64(smp_key(x[id]), id);
            *count = cbefore + 1;
            return true;
        }
        if (!weighted && before + w == T) { /* the digit's last token: all of it */
            *k = (unsigned long long)prefix << 32;
            *count = cbefore + c;
            return true;
        }
        if (shift == 0) { /* c tokens with the same logit, each of weight w / c: the j-th */
            const unsigned long long each = w / c;
            unsigned long long j = each && T > before ? (T - before + each - 1) / each : 1;
            if (j > c) j = c;
            unsigned tie = id;
            if (j > 1) {
                smp_pred tp = pr;
                tp.has_key = true;
                tp.key = prefix;
                const smp_mass one = {0, 0.0f, 1.0f, 0};
                const int t = smp_scan(x, V, tp, one, j, s);
                if (t < 0) return false;
                tie = (unsigned)t;
            }
            *k = smp_k64(prefix, tie);
            *count = cbefore + (unsigned)j;
            return true;
        }
    }
    return false;
}

/* Sum of the weights of pr's tokens; *count (optional) gets how many there are. */
__device__ unsigned long long smp_sum(const float *x, int V, const smp_pred &pr, const smp_mass &mf,
                                      unsigned *count, smp_shared *s) {
    unsigned long long w = 0, c = 0;
    for (int i = threadIdx.x; i < V; i += SMP_THREADS) {
        const float v = x[i];
        if (smp_in(pr, v, i)) {
            w += smp_mass_of(mf, v);
            c++;
        }
    }
    w = smp_block_sum(w, s);
    if (count) *count = (unsigned)smp_block_sum(c, s);
    return w;
}

/* ---- small: at most SMP_CAP candidates in shared memory ----------------------------------------
 */

/* Gathers pr's tokens into s->cl / s->cid (the first SMP_CAP of them); returns how many there
 * are (possibly more than SMP_CAP: then nothing may use the arrays). */
__device__ unsigned smp_gather(const float *x, int V, const smp_pred &pr, smp_shared *s) {
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    __syncthreads(); /* s->n and the arrays may still be read by a previous step */
    if (tid == 0) s->n = 0;
    __syncthreads();
    for (int i0 = warp * 32; i0 < V; i0 += SMP_THREADS) {
        const int i = i0 + lane;
        const float v = i < V ? x[i] : -INFINITY;
        const bool in = i < V && smp_in(pr, v, i);
        const unsigned b = __ballot_sync(SMP_FULL, in);
        if (!b) continue;
        unsigned base = 0;
        if (lane == 0) base = atomicAdd(&s->n, (unsigned)__popc(b));
        base = __shfl_sync(SMP_FULL, base, 0);
        if (in) {
            const unsigned slot = base + (unsigned)__popc(b & ((1u << lane) - 1u));
            if (slot < SMP_CAP) {
                s->cl[slot] = v;
                s->cid[slot] = i;
            }
        }
    }
    __syncthreads();
    const unsigned n = s->n;
    __syncthreads();
    return n;
}

/* Over the n <= SMP_CAP gathered tokens: ranks them (in order when sorted, else by id), keeps
 * the first `first` (top-k from a superset), then top-p (when top_p), min-p and the draw.
 * Returns the token. */
__device__ int smp_small(int n, int first, const imp_sample_params &p, float mx, int bits,
                         bool sorted, bool top_p, smp_shared *s) {
    const int tid = threadIdx.x;
    if (tid < n) { /* rank = how many come before it */
        const float a = s->cl[tid];
        const int ai = s->cid[tid];
        int r = 0;
        for (int j = 0; j < n; j++) {
            const float b = s->cl[j];
            const int bi = s->cid[j];
            r += sorted ? (b > a || (b == a && bi < ai)) : bi < ai;
        }
        s->sl[r] = a;
        s->sid[r] = ai;
    }
    __syncthreads();
    if (first < n) n = first;
    const float v = tid < n ? s->sl[tid] : 0.0f;
    bool keep = tid < n;
    unsigned long long total;
    if (top_p) {
        const unsigned long long cum =
            smp_block_scan(keep ? imp_sample_mass(v, mx, bits) : 0, &total, s);
        const unsigned long long T = imp_sample_top_p_target(p.top_p, total);
        const int cut = smp_block_min(keep && cum >= T ? tid : INT_MAX, s);
        keep = keep && tid <= cut;
    }
    if (p.min_p_log > -INFINITY) keep = keep && v >= IMP_SM_FADD(mx, p.min_p_log);
    const float mxt = IMP_SM_FDIV(mx, p.temperature);
    const unsigned long long cum = smp_block_scan(
        keep ? imp_sample_mass(IMP_SM_FDIV(v, p.temperature), mxt, bits) : 0, &total, s);
    const unsigned long long T = imp_sample_draw_target(p.r, total);
    const int at = smp_block_min(keep && cum >= T ? tid : INT_MAX, s);
    return at < n ? s->sid[at] : SMP_LOST;
}

/* The k-th largest (1 <= k <= SMP_THREADS) of the threads' own maxima: k distinct tokens reach
 * it, so it is at most the row's k-th largest logit. */
__device__ float smp_kth_own(float own, int k, smp_shared *s) {
    const int tid = threadIdx.x;
    __syncthreads();
    s->cl[tid] = own;
    __syncthreads();
    int r = 0;
    for (int j = 0; j < SMP_THREADS; j++) {
        const float o = s->cl[j];
        r += o > own || (o == own && j < tid);
    }
    if (r == k - 1) s->sl[0] = own;
    __syncthreads();
    const float L = s->sl[0];
    __syncthreads();
    return L;
}

/* ---- the chain
 * ------------------------------------------------------------------------------------ */

/* own: this thread's largest logit (smp_stats). */
__device__ int smp_chain(const float *x, int V, const imp_sample_params &p, float mx, unsigned nfin,
                         float own, smp_shared *s) {
    const int bits = imp_sample_mass_bits(V);
    smp_pred pr = {0ull, -INFINITY, false, 0u};
    const bool topk = p.top_k > 0 && p.top_k < V;
    const bool sorted = topk || p.top_p < 1.0f;
    unsigned n = nfin;
    unsigned long long k;
    if (topk && (unsigned)p.top_k < nfin) {
        /* Usually few tokens reach the k-th largest thread maximum, and they include the top k:
         * one gather instead of a radix select. */
        if (p.top_k <= SMP_THREADS) {
            const float L = smp_kth_own(own, p.top_k, s);
            const smp_pred pl = {0ull, L, false, 0u};
            const unsigned g = L > -INFINITY ? smp_gather(x, V, pl, s) : SMP_CAP + 1;
            if (g <= SMP_CAP)
                return smp_small((int)g, p.top_k, p, mx, bits, true, p.top_p < 1.0f, s);
        }
        const smp_mass one = {0, 0.0f, 1.0f, bits};
        if (!smp_select(x, V, pr, one, (unsigned long long)p.top_k, &k, &n, s)) return SMP_LOST;
        pr.kthr = k;
    }
    const bool top_p = p.top_p < 1.0f && n > 1;
    if (n <= SMP_CAP)
        return smp_small((int)smp_gather(x, V, pr, s), SMP_CAP, p, mx, bits, sorted, top_p, s);
    if (top_p) {
        const smp_mass m1 = {1, mx, 1.0f, bits};
        const unsigned long long S = smp_sum(x, V, pr, m1, NULL, s);
        if (!smp_select(x, V, pr, m1, imp_sample_top_p_target(p.top_p, S), &k, &n, s))
            return SMP_LOST;
        pr.kthr = k;
        if (n <= SMP_CAP)
            return smp_small((int)smp_gather(x, V, pr, s), SMP_CAP, p, mx, bits, true, false, s);
    }
    if (p.min_p_log > -INFINITY) pr.lmin = IMP_SM_FADD(mx, p.min_p_log);
    const smp_mass m2 = {2, IMP_SM_FDIV(mx, p.temperature), p.temperature, bits};
    const unsigned long long S = smp_sum(x, V, pr, m2, &n, s);
    if (n <= SMP_CAP)
        return smp_small((int)smp_gather(x, V, pr, s), SMP_CAP, p, mx, bits, sorted, false, s);
    const unsigned long long T = imp_sample_draw_target(p.r, S);
    if (!sorted) return smp_scan(x, V, pr, m2, T, s);
    if (!smp_select(x, V, pr, m2, T, &k, &n, s)) return SMP_LOST;
    return (int)(0xffffffffu - (unsigned)k);
}

__global__ void __launch_bounds__(SMP_THREADS)
    smp_kernel(const float *logits, int64_t ld, int V, smp_rows rows, int32_t *tokens) {
    __shared__ smp_shared s;
    const float *x = logits + (int64_t)blockIdx.x * ld;
    const imp_sample_params p = rows.p[blockIdx.x];
    float mx, own;
    unsigned nfin;
    int arg;
    smp_stats(x, V, &s, &mx, &nfin, &arg, &own);
    int tok;
    if (nfin == 0)
        tok = -1;
    else if (!(p.temperature > 0.0f))
        tok = arg;
    else
        tok = smp_chain(x, V, p, mx, nfin, own, &s);
    if (threadIdx.x == 0) tokens[blockIdx.x] = tok;
}

/* ---- the op
 * ---------------------------------------------------------------------------------------- */

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
    if (!c->smp_dev) {
        cudaError_t e = cudaMalloc((void **)&c->smp_dev, SMP_ROWS * sizeof(int32_t));
        if (e == cudaSuccess) e = cudaMallocHost((void **)&c->smp_host, SMP_ROWS * sizeof(int32_t));
        if (e != cudaSuccess) {
            cudaGetLastError();
            return imp_error_set(err, IMP_ERR_NOMEM, "GPU %d: sample buffers: %s", c->device,
                                 cudaGetErrorString(e));
        }
    }
    const int64_t ld = (int64_t)(logits->nb1 / sizeof(float));
    for (int64_t r0 = 0; r0 < logits->ne1; r0 += SMP_ROWS) {
        const int n = (int)(logits->ne1 - r0 < SMP_ROWS ? logits->ne1 - r0 : SMP_ROWS);
        smp_rows rows;
        memset(&rows, 0, sizeof rows);
        memcpy(rows.p, p + r0, (size_t)n * sizeof *p);
        smp_kernel<<<(unsigned)n, SMP_THREADS, 0, c->stream>>>(
            (const float *)logits->data + r0 * ld, ld, (int)logits->ne0, rows, c->smp_dev);
        cudaError_t e = cudaGetLastError();
        if (e == cudaSuccess)
            e = cudaMemcpyAsync(c->smp_host, c->smp_dev, (size_t)n * sizeof(int32_t),
                                cudaMemcpyDeviceToHost, c->stream);
        if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
        if (e != cudaSuccess) {
            return imp_error_set(err, IMP_ERR_DEVICE, "GPU %d: sample: %s", c->device,
                                 cudaGetErrorString(e));
        }
        for (int i = 0; i < n; i++) {
            if (c->smp_host[i] < -1 || c->smp_host[i] >= logits->ne0) {
                return imp_error_set(err, IMP_ERR_INTERNAL,
                                     "sample: row %lld: the kernel lost its target",
                                     (long long)(r0 + i));
            }
            tokens[r0 + i] = c->smp_host[i];
        }
    }
    return IMP_OK;
}
