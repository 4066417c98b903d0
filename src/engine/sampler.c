/*
 * The token sampler (see sampler.h for the order of the stages and docs/sampling.md for each
 * stage's definition and where it differs from llama.cpp). DRY lives in sampler_dry.c.
 *
 * Data flow per sample: the caller's logits [n_vocab] are read in place, or copied to
 * s->logits [n_vocab] first when bias, penalties or DRY may change them. The candidates (id,
 * logit, p) then live in s->cand: the top k straight from a k-element heap scan when top-k is on
 * (no pass over the whole vocabulary after that), or every finite token otherwise, sorted only
 * as far as a stage needs (quickselect + introsort of a prefix; top-p first narrows the
 * candidates with a mass histogram). Everything sampling touches is allocated at create; only
 * accept may grow the history (window -1).
 *
 * Top-p and the draw work on integer masses (backend/sampling.h), which a backend's sample op
 * computes the same way: for the same logits and uniform number both pick the same token.
 */
#include "engine/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sampling.h"
#include "base/mem.h"
#include "tokenizer/tokenizer.h"

/* Top-k runs as a single heap scan up to this k; beyond it the candidates are built whole and
 * partially sorted (the heap's log k per insertion stops paying off). */
#define IMP_SAMPLER_HEAP_K_MAX 1024
/* Mirostat (v1) estimates the Zipf exponent from the m most probable tokens (llama.cpp: 100). */
#define IMP_MIROSTAT_M 100
/* Bounds on what a request may ask for (untrusted input). */
#define IMP_DRY_BREAKERS_MAX    1024
#define IMP_DRY_BREAKER_LEN_MAX 1024
/* First history allocation for a window of -1 ("all") or a long one. */
#define IMP_HIST_INITIAL 1024

/* One candidate token. p: its probability (typical sampling); key: scratch (typical sampling
 * keeps the logit there while it sorts); w: its mass (top-p, the draw; backend/sampling.h). */
typedef struct imp_cand {
    int32_t id;
    float logit;
    union {
        struct {
            float p;
            float key;
        };
        uint64_t w;
    };
} imp_cand;

struct imp_sampler {
    imp_sampler_params p; /* copy; p.logit_bias / p.dry_breakers are not kept (NULL)      */
    int32_t n_vocab;
    imp_logit_bias *bias; /* [n_bias], validated copy                                     */
    int32_t n_bias;

    bool penalties_on, dry_on, modify; /* modify: bias, penalties or DRY change logits     */
    float *logits;    /* [n_vocab] when modify: the caller's logits, then adjusted     */
    int32_t *work;    /* [n_vocab], all zero between uses (penalty counts, DRY lengths) */
    uint8_t *breaker; /* [(n_vocab + 7) / 8] bit per id: its text holds a DRY breaker  */
    imp_cand *cand;   /* [cand_cap]                                                     */
    int32_t cand_cap;
    bool heap_topk; /* top-k by one heap scan over the logits                         */

    /* Accepted tokens, oldest first: hist[0, n_hist). One block of 2 * cap_hist int32: the
     * second half (z) is DRY's scratch for the window's Z-array. hist_keep: tokens the longest
     * window needs (0: none kept at all; SIZE_MAX: every token, the buffer grows). */
    int32_t *hist;
    size_t n_hist, cap_hist, hist_keep;

    uint64_t rng[4]; /* xoshiro256** state */
    float mu;        /* Mirostat's current maximum surprise (bits)                      */
    int mass_bits;   /* imp_sample_mass_bits(n_vocab)                                   */
    float min_p_log; /* logf(min_p); -INFINITY when min-p is off                        */
};

/* ---- params ---------------------------------------------------------------------------------- */

static const char *const IMP_DRY_DEFAULT_BREAKERS[] = {"\n", ":", "\"", "*"};

imp_sampler_params imp_sampler_params_default(void) {
    imp_sampler_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.typical_p = 1.0f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.frequency_penalty = 0.0f;
    p.presence_penalty = 0.0f;
    p.dry_multiplier = 0.0f;
    p.dry_base = 1.75f;
    p.dry_allowed_length = 2;
    p.dry_penalty_last_n = -1;
    p.mirostat = 0;
    p.mirostat_tau = 5.0f;
    p.mirostat_eta = 0.1f;
    p.seed = 0;
    p.logit_bias = NULL;
    p.n_logit_bias = 0;
    p.dry_breakers = IMP_DRY_DEFAULT_BREAKERS;
    p.n_dry_breakers = (int32_t)IMP_ARRAY_LEN(IMP_DRY_DEFAULT_BREAKERS);
    return p;
}

/* strlen that stops looking at max + 1 (strnlen is POSIX, not C11). */
static size_t bounded_len(const char *s, size_t max) {
    size_t n = 0;
    while (n <= max && s[n]) n++;
    return n;
}

#define BAD(...) imp_error_set(err, IMP_ERR_INVALID_ARG, "sampler: " __VA_ARGS__)

static imp_status params_check(const imp_sampler_params *p, int32_t n_vocab, imp_error *err) {
    if (n_vocab <= 0) return BAD("n_vocab is %d; must be > 0", n_vocab);
    if (!isfinite(p->temperature))
        return BAD("temperature is %g; must be finite (<= 0 means greedy)", (double)p->temperature);
    if (isnan(p->top_p) || p->top_p < 0)
        return BAD("top_p is %g; must be >= 0 (>= 1 turns it off)", (double)p->top_p);
    if (isnan(p->min_p) || p->min_p > 1)
        return BAD("min_p is %g; must be <= 1 (<= 0 turns it off)", (double)p->min_p);
    if (isnan(p->typical_p) || p->typical_p < 0)
        return BAD("typical_p is %g; must be >= 0 (>= 1 turns it off)", (double)p->typical_p);
    if (!isfinite(p->repeat_penalty) || p->repeat_penalty <= 0)
        return BAD("repeat_penalty is %g; must be finite and > 0 (1 turns it off)",
                   (double)p->repeat_penalty);
    if (p->repeat_last_n < -1)
        return BAD("repeat_last_n is %d; must be >= -1 (-1: all, 0: off)", p->repeat_last_n);
    if (!isfinite(p->frequency_penalty))
        return BAD("frequency_penalty is %g; must be finite", (double)p->frequency_penalty);
    if (!isfinite(p->presence_penalty))
        return BAD("presence_penalty is %g; must be finite", (double)p->presence_penalty);
    if (!isfinite(p->dry_multiplier) || p->dry_multiplier < 0)
        return BAD("dry_multiplier is %g; must be finite and >= 0 (0 turns DRY off)",
                   (double)p->dry_multiplier);
    if (p->dry_multiplier > 0 && (!isfinite(p->dry_base) || p->dry_base < 1))
        return BAD("dry_base is %g; must be finite and >= 1", (double)p->dry_base);
    if (p->dry_allowed_length < 0)
        return BAD("dry_allowed_length is %d; must be >= 0", p->dry_allowed_length);
    if (p->dry_penalty_last_n < -1)
        return BAD("dry_penalty_last_n is %d; must be >= -1 (-1: all, 0: off)",
                   p->dry_penalty_last_n);
    if (p->mirostat < 0 || p->mirostat > 2)
        return BAD("mirostat is %d; must be 0 (off), 1 or 2", p->mirostat);
    if (p->mirostat) {
        if (!isfinite(p->mirostat_tau) || p->mirostat_tau < 0)
            return BAD("mirostat_tau is %g; must be finite and >= 0", (double)p->mirostat_tau);
        if (!isfinite(p->mirostat_eta) || p->mirostat_eta < 0)
            return BAD("mirostat_eta is %g; must be finite and >= 0", (double)p->mirostat_eta);
    }
    if (p->n_logit_bias < 0 || (p->n_logit_bias > 0 && !p->logit_bias))
        return BAD("n_logit_bias is %d with logit_bias %s", p->n_logit_bias,
                   p->logit_bias ? "set" : "NULL");
    for (int32_t i = 0; i < p->n_logit_bias; i++) {
        const imp_logit_bias *b = &p->logit_bias[i];
        if (b->token < 0 || b->token >= n_vocab)
            return BAD("logit_bias[%d].token is %d; the vocabulary has %d tokens", i, b->token,
                       n_vocab);
        if (isnan(b->bias) || b->bias == INFINITY)
            return BAD("logit_bias[%d].bias is %g; must be finite or -inf (a ban)", i,
                       (double)b->bias);
    }
    if (p->n_dry_breakers < 0 || p->n_dry_breakers > IMP_DRY_BREAKERS_MAX ||
        (p->n_dry_breakers > 0 && !p->dry_breakers))
        return BAD("n_dry_breakers is %d (at most %d, with dry_breakers set)", p->n_dry_breakers,
                   IMP_DRY_BREAKERS_MAX);
    for (int32_t i = 0; i < p->n_dry_breakers; i++) {
        const char *b = p->dry_breakers[i];
        if (!b || !b[0]) return BAD("dry_breakers[%d] is %s", i, b ? "empty" : "NULL");
        size_t len = bounded_len(b, IMP_DRY_BREAKER_LEN_MAX);
        if (len > IMP_DRY_BREAKER_LEN_MAX)
            return BAD("dry_breakers[%d] is longer than %d bytes", i, IMP_DRY_BREAKER_LEN_MAX);
    }
    return IMP_OK;
}

/* ---- random numbers: xoshiro256** seeded by splitmix64 ------------------------------------ */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(uint64_t st[4], uint64_t seed) {
    for (int i = 0; i < 4; i++) st[i] = splitmix64(&seed); /* never all zero */
}

static inline uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t st[4]) {
    uint64_t r = rotl(st[1] * 5, 7) * 9, t = st[1] << 17;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = rotl(st[3], 45);
    return r;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t st[4]) {
    return (double)(rng_next(st) >> 11) * 0x1.0p-53;
}

/* ---- create / free / reset / accept -------------------------------------------------------- */

/* Window of a history stage: 0 none, SIZE_MAX all, else the count. */
static size_t window_need(bool on, int32_t last_n) {
    if (!on) return 0;
    return last_n < 0 ? SIZE_MAX : (size_t)last_n;
}

imp_status imp_sampler_create(const imp_sampler_params *params, int32_t n_vocab,
                              const imp_vocab *vocab, imp_sampler **out, imp_error *err) {
    if (!out) return BAD("NULL out");
    *out = NULL;
    imp_sampler_params def = imp_sampler_params_default();
    const imp_sampler_params *p = params ? params : &def;
    imp_status st = params_check(p, n_vocab, err);
    if (st != IMP_OK) return st;

    imp_sampler *s = calloc(1, sizeof *s);
    if (!s) return imp_error_set(err, IMP_ERR_NOMEM, "sampler: out of memory");
    s->p = *p;
    s->p.logit_bias = NULL;
    s->p.dry_breakers = NULL;
    s->n_vocab = n_vocab;
    s->mass_bits = imp_sample_mass_bits(n_vocab);
    s->min_p_log = p->min_p > 0 ? logf(p->min_p) : -INFINITY;
    const size_t nv = (size_t)n_vocab;

    s->penalties_on =
        p->repeat_last_n != 0 &&
        (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f);
    s->dry_on = p->dry_multiplier > 0 && p->dry_penalty_last_n != 0;
    s->modify = p->n_logit_bias > 0 || s->penalties_on || s->dry_on;
    s->heap_topk = p->temperature > 0 && !p->mirostat && p->top_k > 0 && p->top_k < n_vocab &&
                   p->top_k <= IMP_SAMPLER_HEAP_K_MAX;
    s->cand_cap = s->heap_topk ? p->top_k : n_vocab;

    bool ok = true;
    if (p->n_logit_bias > 0) {
        s->bias = imp_malloc_array((size_t)p->n_logit_bias, sizeof *s->bias);
        ok = ok && s->bias;
        if (s->bias) memcpy(s->bias, p->logit_bias, (size_t)p->n_logit_bias * sizeof *s->bias);
        s->n_bias = p->n_logit_bias;
    }
    if (s->modify) ok = ok && (s->logits = imp_malloc_array(nv, sizeof *s->logits));
    if (s->penalties_on || s->dry_on) ok = ok && (s->work = imp_calloc(nv, sizeof *s->work));
    if (p->temperature > 0)
        ok = ok && (s->cand = imp_malloc_array((size_t)s->cand_cap, sizeof *s->cand));

    size_t need_pen = window_need(s->penalties_on, p->repeat_last_n);
    size_t need_dry = window_need(s->dry_on, p->dry_penalty_last_n);
    s->hist_keep = IMP_MAX(need_pen, need_dry);
    if (ok && s->hist_keep) {
        /* a short window: twice its size, moved down when full; a long one grows like "all" */
        s->cap_hist = s->hist_keep <= IMP_HIST_INITIAL ? 2 * s->hist_keep + 16 : IMP_HIST_INITIAL;
        ok = (s->hist = imp_malloc_array(2 * s->cap_hist, sizeof *s->hist)) != NULL;
    }
    if (!ok) {
        imp_sampler_free(s);
        return imp_error_set(err, IMP_ERR_NOMEM, "sampler: out of memory (n_vocab %d)", n_vocab);
    }
    if (s->dry_on && vocab && p->n_dry_breakers > 0) {
        st = imp_dry_find_breakers(vocab, n_vocab, p->dry_breakers, p->n_dry_breakers, &s->breaker,
                                   err);
        if (st != IMP_OK) {
            imp_sampler_free(s);
            return st;
        }
    }
    imp_sampler_reset(s);
    *out = s;
    return IMP_OK;
}

void imp_sampler_free(imp_sampler *s) {
    if (!s) return;
    free(s->bias);
    free(s->logits);
    free(s->work);
    free(s->breaker);
    free(s->cand);
    free(s->hist);
    free(s);
}

void imp_sampler_reset(imp_sampler *s) {
    if (!s) return;
    s->n_hist = 0;
    rng_seed(s->rng, s->p.seed);
    s->mu = s->p.mirostat ? 2.0f * s->p.mirostat_tau : 0.0f;
}

float imp_sampler_mirostat_mu(const imp_sampler *s) {
    return s ? s->mu : 0.0f;
}

void imp_sampler_accept(imp_sampler *s, int32_t token) {
    if (!s || !s->hist_keep) return;
    if (s->n_hist == s->cap_hist) {
        size_t keep = s->hist_keep;
        if (s->n_hist <= keep) {
            /* Grow (the Z scratch in the second half need not survive the move); out of
             * memory: forget the oldest half instead. */
            size_t cap = s->cap_hist * 2, bytes;
            int32_t *h = NULL;
            if (imp_mul_size(cap, 2 * sizeof *h, &bytes)) h = realloc(s->hist, bytes);
            if (h) {
                s->hist = h;
                s->cap_hist = cap;
            } else {
                keep = s->n_hist / 2;
            }
        }
        if (s->n_hist == s->cap_hist) {
            memmove(s->hist, s->hist + (s->n_hist - keep), keep * sizeof *s->hist);
            s->n_hist = keep;
        }
    }
    s->hist[s->n_hist++] = token;
}

/* ---- logit adjustments: bias, penalties, DRY ----------------------------------------------- */

static void apply_bias(imp_sampler *s, float *x) {
    for (int32_t i = 0; i < s->n_bias; i++) x[s->bias[i].token] += s->bias[i].bias;
}

/* Repeat, frequency and presence penalties over the last repeat_last_n accepted tokens: each
 * distinct token of the window is penalized once, by its count. */
static void apply_penalties(imp_sampler *s, float *x) {
    const imp_sampler_params *p = &s->p;
    size_t w = p->repeat_last_n < 0 ? s->n_hist : IMP_MIN(s->n_hist, (size_t)p->repeat_last_n);
    const int32_t *h = s->hist + (s->n_hist - w);
    int32_t *count = s->work;
    for (size_t i = 0; i < w; i++)
        if (h[i] >= 0 && h[i] < s->n_vocab) count[h[i]]++;
    for (size_t i = 0; i < w; i++) {
        int32_t t = h[i];
        if (t < 0 || t >= s->n_vocab || count[t] == 0) continue;
        float l = x[t];
        /* dividing a negative logit would raise it: multiply those instead (llama.cpp) */
        l = l <= 0 ? l * p->repeat_penalty : l / p->repeat_penalty;
        l -= (float)count[t] * p->frequency_penalty + p->presence_penalty;
        x[t] = l;
        count[t] = 0;
    }
}

/* ---- candidates ----------------------------------------------------------------------------- */

/* The order of candidates: higher logit first, then lower id (a strict total order: logits in
 * candidates are never NaN, ids are distinct). */
static inline bool before(const imp_cand *a, const imp_cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static inline void swap_cand(imp_cand *a, imp_cand *b) {
    imp_cand t = *a;
    *a = *b;
    *b = t;
}

/* Min-heap on the order above (root: the candidate that comes last). */
static void heap_sift_down(imp_cand *c, int32_t n, int32_t i) {
    imp_cand x = c[i];
    for (;;) {
        int32_t ch = 2 * i + 1;
        if (ch >= n) break;
        if (ch + 1 < n && before(&c[ch], &c[ch + 1])) ch++;
        if (!before(&x, &c[ch])) break;
        c[i] = c[ch];
        i = ch;
    }
    c[i] = x;
}

/* Top-k of x[0, n) into c[0, k), sorted (0 < k < n): one pass that compares each logit with
 * the heap's weakest, in blocks so that the common "none of these beats it" vectorizes. A later
 * token equal to the weakest never replaces it (lower id first). NaN never enters. */
static void topk_heap(const float *x, int32_t n, int32_t k, imp_cand *c) {
    for (int32_t i = 0; i < k; i++) {
        c[i].id = i;
        c[i].logit = isnan(x[i]) ? -INFINITY : x[i];
    }
    for (int32_t i = k / 2 - 1; i >= 0; i--) heap_sift_down(c, k, i);
    int32_t i = k;
    enum { BLOCK = 32 };
    for (; i < n; i += BLOCK) {
        int32_t end = n - i < BLOCK ? n : i + BLOCK;
        float thr = c[0].logit;
        int any = 0;
        if (end - i == BLOCK) {
            for (int32_t j = 0; j < BLOCK; j++) any |= x[i + j] > thr;
            if (!any) continue;
        }
        for (int32_t j = i; j < end; j++) {
            if (x[j] > c[0].logit) {
                c[0].id = j;
                c[0].logit = x[j];
                heap_sift_down(c, k, 0);
            }
        }
    }
    /* heapsort with a min-heap leaves the order descending */
    for (int32_t m = k - 1; m > 0; m--) {
        swap_cand(&c[0], &c[m]);
        heap_sift_down(c, m, 0);
    }
}

/* Every token with a logit above -INFINITY (not NaN), in id order; returns the count. */
static int32_t cand_all(const float *x, int32_t n, imp_cand *c) {
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++) {
        if (x[i] > -INFINITY) {
            c[m].id = i;
            c[m].logit = x[i];
            m++;
        }
    }
    return m;
}

/* Sorts c[0, n) into the order (a min-heap's heapsort leaves it descending = "before" order). */
static void cand_heapsort(imp_cand *c, int32_t n) {
    for (int32_t i = n / 2 - 1; i >= 0; i--) heap_sift_down(c, n, i);
    for (int32_t m = n - 1; m > 0; m--) {
        swap_cand(&c[0], &c[m]);
        heap_sift_down(c, m, 0);
    }
}

static void cand_insertion_sort(imp_cand *c, int32_t n) {
    for (int32_t i = 1; i < n; i++) {
        imp_cand x = c[i];
        int32_t j = i;
        for (; j > 0 && before(&x, &c[j - 1]); j--) c[j] = c[j - 1];
        c[j] = x;
    }
}

/* Hoare partition of c[lo, hi) (hi - lo >= 3) around the median of three: returns m with
 * lo < m < hi, every candidate in [lo, m) before every one in [m, hi). */
static int32_t cand_partition(imp_cand *c, int32_t lo, int32_t hi) {
    int32_t mid = lo + (hi - lo) / 2;
    if (before(&c[mid], &c[lo])) swap_cand(&c[mid], &c[lo]);
    if (before(&c[hi - 1], &c[lo])) swap_cand(&c[hi - 1], &c[lo]);
    if (before(&c[hi - 1], &c[mid])) swap_cand(&c[hi - 1], &c[mid]);
    swap_cand(&c[lo], &c[mid]); /* the median first: the pivot Hoare's scheme needs */
    const imp_cand pv = c[lo];
    int32_t i = lo - 1, j = hi;
    for (;;) {
        do { i++; } while (before(&c[i], &pv));
        do { j--; } while (before(&pv, &c[j]));
        if (i >= j) return j + 1;
        swap_cand(&c[i], &c[j]);
    }
}

/* Sorts c[lo, hi) (introsort: quicksort, heapsort past the depth budget, insertion at the
 * leaves). */
static void cand_sort(imp_cand *c, int32_t lo, int32_t hi, int depth) {
    while (hi - lo > 16) {
        if (depth-- <= 0) {
            cand_heapsort(c + lo, hi - lo);
            return;
        }
        int32_t m = cand_partition(c, lo, hi);
        if (m - lo < hi - m) { /* recurse into the smaller side */
            cand_sort(c, lo, m, depth);
            lo = m;
        } else {
            cand_sort(c, m, hi, depth);
            hi = m;
        }
    }
    cand_insertion_sort(c + lo, hi - lo);
}

/* Rearranges c[lo, hi) so that c[lo, k) hold the candidates that come first, in any order
 * (quickselect; a sort past the depth budget). */
static void cand_select(imp_cand *c, int32_t lo, int32_t hi, int32_t k) {
    int depth = 64;
    while (k > lo && k < hi && hi - lo > 16) {
        if (--depth == 0) {
            cand_heapsort(c + lo, hi - lo);
            return;
        }
        int32_t m = cand_partition(c, lo, hi);
        if (k <= m)
            hi = m;
        else
            lo = m;
    }
    if (k > lo && k < hi) cand_insertion_sort(c + lo, hi - lo);
}

/* Makes c[0, m) the first m candidates in order, given c[0, *sorted) already are. */
static void cand_sort_prefix(imp_cand *c, int32_t n, int32_t *sorted, int32_t m) {
    if (m > n) m = n;
    if (m <= *sorted) return;
    cand_select(c, *sorted, n, m);
    cand_sort(c, *sorted, m, 64);
    *sorted = m;
}

static float cand_max(const imp_cand *c, int32_t n, int32_t sorted) {
    if (sorted > 0) return c[0].logit;
    float mx = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (c[i].logit > mx) mx = c[i].logit;
    return mx;
}

/* p = softmax(logit) over c[0, n) (n > 0), for typical sampling. +INFINITY logits share all
 * the mass. */
static void cand_softmax(imp_cand *c, int32_t n, int32_t sorted) {
    const float mx = cand_max(c, n, sorted);
    if (mx == INFINITY) {
        int32_t cnt = 0;
        for (int32_t i = 0; i < n; i++) cnt += c[i].logit == INFINITY;
        for (int32_t i = 0; i < n; i++) c[i].p = c[i].logit == INFINITY ? 1.0f / (float)cnt : 0;
        return;
    }
    double sum = 0;
    for (int32_t i = 0; i < n; i++) {
        c[i].p = expf(c[i].logit - mx);
        sum += c[i].p;
    }
    for (int32_t i = 0; i < n; i++) c[i].p = (float)(c[i].p / sum);
}

/* w = the masses of c[0, n) (n > 0) relative to their largest logit; returns their sum. */
static uint64_t cand_mass(const imp_sampler *s, imp_cand *c, int32_t n, int32_t sorted) {
    const float mx = cand_max(c, n, sorted);
    uint64_t sum = 0;
    for (int32_t i = 0; i < n; i++) sum += c[i].w = imp_sample_mass(c[i].logit, mx, s->mass_bits);
    return sum;
}

/* Draws an index from c[0, n) in proportion to the masses of their logits, with the uniform
 * number *r, or the generator's next one when r is NULL; sets w, *sum to their sum. */
static int32_t cand_draw(imp_sampler *s, imp_cand *c, int32_t n, int32_t sorted, const double *r,
                         uint64_t *sum) {
    *sum = cand_mass(s, c, n, sorted);
    const uint64_t target = imp_sample_draw_target(r ? *r : rng_uniform(s->rng), *sum);
    uint64_t cum = 0;
    for (int32_t i = 0; i < n; i++) {
        cum += c[i].w;
        if (cum >= target) return i;
    }
    return n - 1; /* not reached: target <= sum */
}

/* ---- truncations ------------------------------------------------------------------------- */

/* Locally typical sampling: keep the tokens whose surprise -ln p is closest to the entropy H,
 * in order of |-ln p - H|, until their mass exceeds typical_p. The sort runs on the usual order
 * with the logit slot holding -|-ln p - H| for the time being (ties: lower id first). */
static int32_t trunc_typical(imp_cand *c, int32_t n, int32_t *sorted, float typ) {
    cand_softmax(c, n, *sorted);
    double h = 0;
    for (int32_t i = 0; i < n; i++)
        if (c[i].p > 0) h -= (double)c[i].p * log(c[i].p);
    for (int32_t i = 0; i < n; i++) {
        c[i].key = c[i].logit;
        c[i].logit = c[i].p > 0 ? -(float)fabs(-log(c[i].p) - h) : -INFINITY;
    }
    cand_sort(c, 0, n, 64);
    double cum = 0;
    int32_t keep = n;
    for (int32_t i = 0; i < n; i++) {
        c[i].logit = c[i].key;
        if (keep == n) {
            cum += c[i].p;
            if (cum > typ) keep = i + 1;
        }
    }
    *sorted = 0;
    return keep;
}

/* Cuts the sorted c[0, m) where the running mass first reaches target (m if it never does). */
static int32_t top_p_cut(const imp_cand *c, int32_t m, uint64_t target) {
    uint64_t cum = 0;
    for (int32_t i = 0; i < m; i++) {
        cum += c[i].w;
        if (cum >= target) return i + 1;
    }
    return m;
}

/* Nucleus: the most probable tokens until their mass reaches imp_sample_top_p_target.
 * Many unsorted candidates (top-k off): partitioning the whole vocabulary would cost
 * milliseconds of mispredicted branches, so a histogram of the mass by distance below the max
 * logit (1/8-nat buckets) first finds a bucket by which the target is reached; only the tokens
 * up to it (a prefix of the sorted order holding enough mass, hence the whole nucleus) are kept
 * and sorted. Otherwise: sort a prefix of 256, then 8x larger ones, until the mass is reached.
 * The masses are integers, so the sums do not depend on the order they are taken in. */
static int32_t trunc_top_p(const imp_sampler *s, imp_cand *c, int32_t n, int32_t *sorted,
                           float top_p) {
    enum { NB = 256 };
    const float scale = 8.0f;
    const float mx = cand_max(c, n, *sorted);
    const uint64_t target = imp_sample_top_p_target(top_p, cand_mass(s, c, n, *sorted));
    if (n > 1024 && *sorted < 256 && isfinite(mx)) {
        uint64_t hist[NB] = {0};
        for (int32_t i = 0; i < n; i++) {
            const float d = (mx - c[i].logit) * scale;
            hist[d < NB - 1 ? (int)d : NB - 1] += c[i].w;
        }
        uint64_t cum = 0;
        int last = NB - 1;
        for (int b = 0; b < NB; b++) {
            cum += hist[b];
            if (cum >= target) {
                last = b;
                break;
            }
        }
        int32_t m = 0;
        for (int32_t i = 0; i < n; i++) {
            const float d = (mx - c[i].logit) * scale;
            if ((d < NB - 1 ? (int)d : NB - 1) <= last) c[m++] = c[i];
        }
        cand_sort(c, 0, m, 64);
        *sorted = m;
        return top_p_cut(c, m, target);
    }
    uint64_t cum = 0;
    int32_t i = 0, m = IMP_MAX(*sorted, IMP_MIN(n, 256));
    for (;;) {
        cand_sort_prefix(c, n, sorted, m);
        for (; i < m; i++) {
            cum += c[i].w;
            if (cum >= target) return i + 1;
        }
        if (m == n) return n;
        m = n / 8 < m ? n : m * 8;
    }
}

/* min-p: keep p >= min_p * p_max, i.e. logit >= max + ln(min_p); order kept. */
static int32_t trunc_min_p(imp_cand *c, int32_t n, int32_t *sorted, float min_p_log) {
    const float thr = cand_max(c, n, *sorted) + min_p_log;
    int32_t m = 0, s = 0;
    for (int32_t i = 0; i < n; i++) {
        if (c[i].logit >= thr) {
            if (i < *sorted) s++;
            c[m++] = c[i];
        }
    }
    *sorted = s;
    return m;
}

static void scale_temperature(imp_cand *c, int32_t n, float t) {
    for (int32_t i = 0; i < n; i++) c[i].logit /= t;
}

/* ---- the stages' drivers --------------------------------------------------------------------- */

static imp_status none_left(imp_error *err) {
    return imp_error_set(err, IMP_ERR_INVALID_ARG,
                         "sampler: no token has a logit above -inf (all banned or NaN)");
}

/* Argmax, ties to the lowest id, NaN and -inf never. Blocks of 32 are first tested for any
 * logit above the best so far (a loop the compiler vectorizes); most are skipped at that. */
static imp_status sample_greedy(const imp_sampler *s, const float *x, int32_t *token,
                                imp_error *err) {
    enum { BLOCK = 32 };
    const int32_t n = s->n_vocab;
    int32_t best = -1;
    float bl = -INFINITY;
    for (int32_t i = 0; i < n; i += BLOCK) {
        const int32_t end = n - i < BLOCK ? n : i + BLOCK;
        if (end - i == BLOCK) {
            int any = 0;
            for (int32_t j = 0; j < BLOCK; j++) any |= x[i + j] > bl;
            if (!any) continue;
        }
        for (int32_t j = i; j < end; j++) {
            if (x[j] > bl) {
                bl = x[j];
                best = j;
            }
        }
    }
    if (best < 0) return none_left(err);
    *token = best;
    return IMP_OK;
}

/* Draws from c[0, n), updates mu with the surprise of the draw. */
static int32_t mirostat_draw(imp_sampler *s, imp_cand *c, int32_t n, int32_t sorted,
                             const double *r) {
    uint64_t sum;
    const int32_t i = cand_draw(s, c, n, sorted, r, &sum);
    const float surprise = (float)-log2((double)c[i].w / (double)sum);
    s->mu -= s->p.mirostat_eta * (surprise - s->p.mirostat_tau);
    return c[i].id;
}

/* Mirostat v2: drop the tokens whose surprise -log2 p exceeds mu (the most probable always
 * stays), draw from the rest renormalized, then mu -= eta * (surprise of the draw - tau).
 * p >= 2^-mu is tested as y >= ln(sum e^y) - mu ln 2 on y = (logit - max) / T, so only the
 * normalizer needs an exp per token and the survivors are the only candidates built. */
static imp_status sample_mirostat2(imp_sampler *s, const float *x, const double *r, int32_t *token,
                                   imp_error *err) {
    const float t = s->p.temperature;
    const int32_t nv = s->n_vocab;
    imp_cand *c = s->cand;
    int32_t top = -1, n = 0;
    float mx = -INFINITY;
    for (int32_t i = 0; i < nv; i++) {
        if (x[i] > mx) {
            mx = x[i];
            top = i;
        }
    }
    if (top < 0) return none_left(err);
    if (mx == INFINITY) { /* only the +inf tokens have mass: they share it */
        for (int32_t i = 0; i < nv; i++) {
            if (x[i] == INFINITY) {
                c[n].id = i;
                c[n++].logit = 0;
            }
        }
        if (log2((double)n) > s->mu) n = 1; /* each one's surprise is log2 n */
    } else {
        double sum = 0;
        for (int32_t i = 0; i < nv; i++)
            if (x[i] > -INFINITY) sum += expf((x[i] - mx) / t);
        const float thr = (float)(log(sum) - (double)s->mu * 0.69314718055994531);
        for (int32_t i = 0; i < nv; i++) {
            if (x[i] > -INFINITY && (x[i] - mx) / t >= thr) {
                c[n].id = i;
                c[n++].logit = (x[i] - mx) / t;
            }
        }
        if (n == 0) {
            c[0].id = top;
            c[0].logit = 0;
            n = 1;
        }
    }
    *token = mirostat_draw(s, c, n, 0, r);
    return IMP_OK;
}

/* Mirostat (v1): estimate the Zipf exponent s from the m = 100 most probable tokens, keep the
 * top k = (e 2^mu / (1 - N^-e))^(1/s) with e = s - 1 (N = n_vocab), draw, update mu as v2. */
static imp_status sample_mirostat1(imp_sampler *s, const float *x, const double *r, int32_t *token,
                                   imp_error *err) {
    const float t = s->p.temperature;
    const int32_t nv = s->n_vocab;
    imp_cand *c = s->cand;
    int32_t n, sorted, m = IMP_MIROSTAT_M;
    if (m < nv) { /* the top 100 by one heap scan; all candidates only if k turns out larger */
        topk_heap(x, nv, m, c);
        while (m > 0 && c[m - 1].logit == -INFINITY) m--;
        n = sorted = m;
    } else {
        n = cand_all(x, nv, c);
        sorted = 0;
        m = n;
        cand_sort_prefix(c, n, &sorted, m);
    }
    if (n == 0) return none_left(err);
    double sum_tb = 0, sum_tt = 0;
    for (int32_t i = 0; i + 1 < m; i++) {
        double ti = log((double)(i + 2) / (double)(i + 1));
        double bi = ((double)c[i].logit - (double)c[i + 1].logit) / t; /* ln(p_i / p_i+1) */
        sum_tb += ti * bi;
        sum_tt += ti * ti;
    }
    double sh = sum_tb / sum_tt, e = sh - 1;
    double k = pow(e * pow(2.0, s->mu) / (1 - pow((double)s->n_vocab, -e)), 1 / sh);
    if (k > (double)n && n < nv) { /* more than the heap gave: every finite token */
        n = cand_all(x, nv, c);
        sorted = 0;
    }
    int32_t kk = !(k >= 1) ? 1 : k >= (double)n ? n : (int32_t)k;
    cand_sort_prefix(c, n, &sorted, kk);
    scale_temperature(c, kk, t);
    *token = mirostat_draw(s, c, kk, sorted, r);
    return IMP_OK;
}

/* The draw walks the survivors in the order (logit desc, id asc) when top-k is on (even when it
 * keeps every token) or top-p ran, in id order otherwise (backend/sampling.h). */
static imp_status sample_chain(imp_sampler *s, const float *x, const double *r, int32_t *token,
                               imp_error *err) {
    const imp_sampler_params *p = &s->p;
    imp_cand *c = s->cand;
    int32_t n, sorted;
    if (s->heap_topk) {
        topk_heap(x, s->n_vocab, p->top_k, c);
        n = p->top_k;
        while (n > 0 && c[n - 1].logit == -INFINITY) n--;
        sorted = n;
    } else {
        n = cand_all(x, s->n_vocab, c);
        sorted = 0;
        if (p->top_k > 0 && p->top_k < s->n_vocab) cand_sort_prefix(c, n, &sorted, p->top_k);
        if (p->top_k > 0 && p->top_k < n) n = p->top_k;
    }
    if (n == 0) return none_left(err);
    if (p->typical_p < 1 && n > 1) n = trunc_typical(c, n, &sorted, p->typical_p);
    if (p->top_p < 1 && n > 1) n = trunc_top_p(s, c, n, &sorted, p->top_p);
    sorted = IMP_MIN(sorted, n);
    if (p->min_p > 0 && n > 1) n = trunc_min_p(c, n, &sorted, s->min_p_log);
    scale_temperature(c, n, p->temperature);
    uint64_t sum;
    *token = c[cand_draw(s, c, n, sorted, r, &sum)].id;
    return IMP_OK;
}

/* imp_sampler_sample with the draw's uniform number r, or the generator's when r is NULL. */
static imp_status sample_with(imp_sampler *s, const float *logits, const double *r, int32_t *token,
                              imp_error *err) {
    if (!s || !logits || !token) return BAD("NULL argument to sample");
    const float *x = logits;
    if (s->modify) {
        memcpy(s->logits, logits, (size_t)s->n_vocab * sizeof *logits);
        apply_bias(s, s->logits);
        if (s->penalties_on) apply_penalties(s, s->logits);
        if (s->dry_on) {
            const imp_sampler_params *p = &s->p;
            size_t w = p->dry_penalty_last_n < 0
                           ? s->n_hist
                           : IMP_MIN(s->n_hist, (size_t)p->dry_penalty_last_n);
            imp_dry_apply(s->logits, s->n_vocab, s->hist + (s->n_hist - w), w, p->dry_multiplier,
                          p->dry_base, p->dry_allowed_length, s->breaker, s->hist + s->cap_hist,
                          s->work);
        }
        x = s->logits;
    }
    if (s->p.temperature <= 0) return sample_greedy(s, x, token, err);
    if (s->p.mirostat == 2) return sample_mirostat2(s, x, r, token, err);
    if (s->p.mirostat == 1) return sample_mirostat1(s, x, r, token, err);
    return sample_chain(s, x, r, token, err);
}

imp_status imp_sampler_sample(imp_sampler *s, const float *logits, int32_t *token, imp_error *err) {
    return sample_with(s, logits, NULL, token, err);
}

imp_status imp_sampler_sample_r(imp_sampler *s, const float *logits, double r, int32_t *token,
                                imp_error *err) {
    if (!(r >= 0 && r < 1)) return BAD("r is %g; must be in [0, 1)", r);
    return sample_with(s, logits, &r, token, err);
}

bool imp_sampler_prepare(imp_sampler *s, imp_sample_params *out) {
    if (!s || !out || s->modify) return false;
    const imp_sampler_params *p = &s->p;
    const bool greedy = p->temperature <= 0;
    if (!greedy && (p->mirostat || p->typical_p < 1)) return false;
    out->temperature = p->temperature;
    out->top_k = p->top_k;
    out->top_p = p->top_p;
    out->min_p_log = s->min_p_log;
    out->r = greedy ? 0.0 : rng_uniform(s->rng);
    return true;
}
