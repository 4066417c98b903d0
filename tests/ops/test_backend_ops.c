/*
 * Every op of the backend interface (backend/backend.h) run on the CPU backend, the reference,
 * and on the backend under test (the CUDA backend), on random inputs, compared by
 * NMSE = sum((out - ref)^2) / sum(ref^2) against a per-op threshold: ggml's test-backend-ops
 * idea. Outputs are poisoned with a NaN pattern before each op, so an element the op never wrote
 * shows up as NaN; the parts of a column view's parent and of the KV pool that an op does not
 * own must still hold the poison afterwards. One line per case
 *
 *     ok   matmul Q4_K M=5 N=256 K=512 nmse=1.2e-07
 *
 * then a summary; exit 1 when a case exceeds its threshold, an op rejects valid input or
 * accepts a mismatched shape, or an output holds NaN. Every case seeds its RNG from its own
 * name, so a filtered run sees the same data as a full one.
 *
 * The sample op is checked token for token against the CPU sampler (imp_sampler_sample_r) on
 * the same logits and r: vocabularies of 1 to 262144 with ties, NaN and +-inf, every
 * combination of greedy / temperature, top-k, top-p and min-p.
 *
 * Environment:
 *   IMP_OPS_SELFTEST=1   test a second CPU backend (1 thread against the reference's 4) and a
 *                        shim that keeps the KV pool in F16 instead of the CUDA backend: checks
 *                        the harness itself without a GPU (every NMSE 0, or F16 rounding)
 *   IMP_OPS_DEVICE=N     the CUDA device (default 0)
 *   IMP_OPS_FILTER=str   only the cases whose name contains str
 * Skips (77) when the build has no CUDA backend, there is no device, or the backend cannot be
 * created on it.
 *
 * Dimension letters as in backend.h: T tokens, H / Hkv heads, D head dim, S KV slots.
 */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/device.h"
#include "base/fp16.h"
#include "base/threads.h"
#include "engine/sampler.h"
#include "quant/quant.h"
#include "testutil.h"

#define OPS_LEN(a) (sizeof(a) / sizeof((a)[0]))

enum { REF = 0, DUT = 1 }; /* sides: the CPU reference, the backend under test */

#define OPS_REF_THREADS 4
/* quiet NaNs with payloads that arithmetic does not produce */
#define OPS_POISON_F32   0x7fc0deadu
#define OPS_POISON_F16   0x7e5au
#define OPS_SPARE_BLOCKS 3 /* pool blocks no sequence owns */
#define OPS_MAX_TOKENS   128

/* NMSE thresholds. Matmul: for small M the GPU quantizes activations like the CPU (Q8_0 / Q8_1 /
 * Q8_K), for larger M it converts them to F16/BF16 for tensor-core GEMMs while the CPU still
 * uses Q8 activations, so quantized types differ by about the activation quantization error
 * (~1e-5..1e-4). F16/BF16 weights take F16/BF16 activations on both. Dequantization, adds and
 * scales are exact; transcendental functions differ by an ulp or two. */
#define THR_MATMUL_Q    5e-4
#define THR_MATMUL_F    1e-5 /* F32, F16 */
#define THR_MATMUL_BF16 1e-4
#define THR_GET_ROWS    1e-10
#define THR_NORM        1e-10
#define THR_EW          1e-10 /* add, scale */
#define THR_ACT         1e-8  /* glu, softcap */
#define THR_ROPE        1e-6  /* rotated q/k, and pool rows also for an F16 pool */
#define THR_ATTN_F32    1e-5
#define THR_ATTN_F16    1e-4

/* ---- harness state -------------------------------------------------------------------------- */

typedef enum { RES_HOST, RES_MEM, RES_WEIGHT } ops_res_kind;

/* Something a scope owns: host memory, backend memory, or an uploaded weight. */
typedef struct ops_res {
    ops_res_kind kind;
    int side;     /* RES_MEM, RES_WEIGHT */
    void *p;      /* RES_HOST, RES_MEM   */
    imp_tensor w; /* RES_WEIGHT          */
} ops_res;

typedef struct ops_ctx {
    imp_backend *be[2];
    const char *label[2];
    const char *filter; /* NULL: every case */
    imp_test_rng rng;   /* the current case's, seeded from its name */
    ops_res *res;       /* a stack: ops_release(mark) frees back to mark, newest first */
    int n_res, cap_res;
    imp_status st[2];   /* the last op's statuses */
    bool expect_reject; /* a bad-input case: non-OK statuses are the point */
    /* the current case */
    char name[256];
    char line[1024]; /* " q=1e-09 k=2e-09 ..." */
    char why[2048];  /* failure reasons, one indented line each */
    bool failed;
    /* totals for the backend under test */
    int n_cases, n_failed;
    double worst; /* largest nmse / threshold */
    char worst_name[320];
} ops_ctx;

/* The same tensor on both backends. */
typedef struct ops_t {
    imp_tensor t[2];
} ops_t;

static void ops_append(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void ops_append(char *dst, size_t cap, const char *fmt, ...) {
    const size_t len = strlen(dst);
    if (len + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst + len, cap - len, fmt, ap);
    va_end(ap);
}

/* Marks the current case failed with a reason. */
static void ops_fail(ops_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ops_fail(ops_ctx *c, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->failed = true;
    ops_append(c->why, sizeof c->why, "     %s\n", msg);
}

static void ops_seed(ops_ctx *c, const char *s) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    c->rng.s = h;
}

static bool ops_wanted(const ops_ctx *c, const char *name) {
    return !c->filter || strstr(name, c->filter);
}

/* Starts a case; false (and nothing to do) when the filter leaves it out. */
static bool ops_case(ops_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool ops_case(ops_ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->name, sizeof c->name, fmt, ap);
    va_end(ap);
    if (!ops_wanted(c, c->name)) return false;
    c->line[0] = c->why[0] = '\0';
    c->failed = false;
    c->expect_reject = false;
    c->st[REF] = c->st[DUT] = IMP_OK;
    ops_seed(c, c->name);
    return true;
}

static void ops_case_print(ops_ctx *c) {
    printf("%s %s%s\n%s", c->failed ? "FAIL" : "ok  ", c->name, c->line, c->why);
    fflush(stdout);
    c->n_cases++;
    imp_test_checks++;
    if (c->failed) {
        c->n_failed++;
        imp_test_failures++;
    }
}

/* ---- memory --------------------------------------------------------------------------------- */

static void ops_own(ops_ctx *c, ops_res r) {
    if (c->n_res == c->cap_res) {
        const int cap = c->cap_res ? 2 * c->cap_res : 64;
        ops_res *p = realloc(c->res, (size_t)cap * sizeof *p);
        if (!p) {
            fprintf(stderr, "test_backend_ops: out of host memory\n");
            exit(1);
        }
        c->res = p;
        c->cap_res = cap;
    }
    c->res[c->n_res++] = r;
}

/* Zeroed host memory owned by the current scope. A test without host memory cannot go on. */
static void *ops_host(ops_ctx *c, size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "test_backend_ops: out of host memory (%zu bytes)\n", bytes);
        exit(1);
    }
    ops_own(c, (ops_res){.kind = RES_HOST, .p = p});
    return p;
}

/* Backend memory of side s owned by the current scope; NULL (case failed) when alloc fails. */
static void *ops_mem(ops_ctx *c, int s, size_t bytes) {
    imp_error e;
    imp_error_clear(&e);
    void *p = c->be[s]->ops->alloc(c->be[s], bytes, &e);
    if (!p) {
        ops_fail(c, "%s: alloc of %zu bytes failed: %s", c->label[s], bytes, e.msg);
        return NULL;
    }
    ops_own(c, (ops_res){.kind = RES_MEM, .side = s, .p = p});
    return p;
}

static bool ops_sync(ops_ctx *c) {
    bool ok = true;
    for (int s = 0; s < 2; s++) {
        imp_error e;
        imp_error_clear(&e);
        if (c->be[s]->ops->sync(c->be[s], &e) != IMP_OK) {
            ops_fail(c, "%s: sync failed: %s", c->label[s], e.msg);
            ok = false;
        }
    }
    return ok;
}

static int ops_mark(const ops_ctx *c) {
    return c->n_res;
}

/* Frees what the scope acquired since mark, newest first (a weight before the host copy the CPU
 * computes from). Syncs first: nothing queued may still read what is freed. */
static void ops_release(ops_ctx *c, int mark) {
    for (int s = 0; s < 2; s++) {
        imp_error e;
        imp_error_clear(&e);
        c->be[s]->ops->sync(c->be[s], &e); /* a failure was reported by the case that caused it */
    }
    while (c->n_res > mark) {
        ops_res *r = &c->res[--c->n_res];
        if (r->kind == RES_HOST) {
            free(r->p);
        } else if (r->kind == RES_MEM) {
            c->be[r->side]->ops->dealloc(c->be[r->side], r->p);
        } else {
            c->be[r->side]->ops->free_weight(c->be[r->side], &r->w);
        }
    }
}

/* Ends a case: syncs (an asynchronous failure belongs to this case), frees, prints. */
static void ops_end(ops_ctx *c, int mark) {
    ops_sync(c);
    ops_release(c, mark);
    ops_case_print(c);
}

static void ops_upload(ops_ctx *c, int s, void *dst, const void *src, size_t bytes) {
    if (!dst) return; /* the alloc failed the case already */
    imp_error e;
    imp_error_clear(&e);
    if (c->be[s]->ops->upload(c->be[s], dst, src, bytes, &e) != IMP_OK) {
        ops_fail(c, "%s: upload of %zu bytes failed: %s", c->label[s], bytes, e.msg);
    }
}

static bool ops_download(ops_ctx *c, int s, void *dst, const void *src, size_t bytes) {
    imp_error e;
    imp_error_clear(&e);
    if (c->be[s]->ops->download(c->be[s], dst, src, bytes, &e) != IMP_OK) {
        ops_fail(c, "%s: download of %zu bytes failed: %s", c->label[s], bytes, e.msg);
        return false;
    }
    return true;
}

/* ---- host data ------------------------------------------------------------------------------ */

static float *ops_randn(ops_ctx *c, size_t n, float scale) {
    float *x = ops_host(c, n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = scale * imp_test_rng_normal(&c->rng);
    return x;
}

static float ops_uniform(ops_ctx *c, float lo, float hi) {
    return lo + (hi - lo) * imp_test_rng_uniform(&c->rng);
}

/* n elements of type t (F32 or F16) holding the poison pattern. */
static const void *ops_poison(ops_ctx *c, imp_type t, size_t n) {
    if (t == IMP_TYPE_F16) {
        uint16_t *p = ops_host(c, n * sizeof *p);
        for (size_t i = 0; i < n; i++) p[i] = OPS_POISON_F16;
        return p;
    }
    uint32_t *p = ops_host(c, n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = OPS_POISON_F32;
    return p;
}

static bool ops_is_poison(const void *row, imp_type t, int64_t i) {
    if (t == IMP_TYPE_F16) return ((const uint16_t *)row)[i] == OPS_POISON_F16;
    uint32_t u;
    memcpy(&u, (const char *)row + (size_t)i * 4, 4);
    return u == OPS_POISON_F32;
}

/* ---- tensors -------------------------------------------------------------------------------- */

/* An F32 [ne1, ne0] activation (alloc + upload) on both backends holding host, or the poison
 * when host is NULL. */
static ops_t ops_f32(ops_ctx *c, int64_t ne0, int64_t ne1, const float *host) {
    const size_t n = (size_t)(ne0 * ne1), bytes = n * sizeof(float);
    const void *src = host ? (const void *)host : ops_poison(c, IMP_TYPE_F32, n);
    ops_t r;
    for (int s = 0; s < 2; s++) {
        void *p = ops_mem(c, s, bytes);
        r.t[s] = imp_tensor_make(IMP_TYPE_F32, ne0, ne1, p);
        ops_upload(c, s, p, src, bytes);
    }
    return r;
}

static ops_t ops_randt(ops_ctx *c, int64_t ne0, int64_t ne1, float scale) {
    return ops_f32(c, ne0, ne1, ops_randn(c, (size_t)(ne0 * ne1), scale));
}

static ops_t ops_cols(const ops_t *p, int64_t c0, int64_t n) {
    ops_t r = *p;
    for (int s = 0; s < 2; s++) {
        if (p->t[s].data) r.t[s] = imp_tensor_cols(&p->t[s], c0, n);
    }
    return r;
}

static ops_t ops_rows(const ops_t *p, int64_t r0, int64_t n) {
    ops_t r = *p;
    for (int s = 0; s < 2; s++) {
        if (p->t[s].data) r.t[s] = imp_tensor_rows(&p->t[s], r0, n);
    }
    return r;
}

/* A weight [N, K] of type t made from host F32 values (each row quantized with the type table)
 * and given to both backends by upload_weight. The quantized host copy lives as long as the
 * scope: the CPU backend computes straight from it. */
static ops_t ops_weight(ops_ctx *c, imp_type t, int64_t K, int64_t N, const float *src) {
    ops_t r;
    memset(&r, 0, sizeof r);
    const imp_type_traits *tr = imp_type_get(t);
    const size_t row = imp_row_size(t, K);
    if (!tr || !tr->quantize || row == 0) {
        ops_fail(c, "cannot make a %s weight of %lld columns", imp_type_name(t), (long long)K);
        return r;
    }
    char *q = ops_host(c, row * (size_t)N);
    for (int64_t n = 0; n < N; n++) tr->quantize(src + n * K, q + (size_t)n * row, K, NULL);
    const imp_tensor host = imp_tensor_make(t, K, N, q);
    for (int s = 0; s < 2; s++) {
        imp_error e;
        imp_error_clear(&e);
        if (c->be[s]->ops->upload_weight(c->be[s], &host, &r.t[s], &e) != IMP_OK) {
            ops_fail(c, "%s: upload_weight %s [%lld, %lld] failed: %s", c->label[s],
                     imp_type_name(t), (long long)N, (long long)K, e.msg);
            memset(&r.t[s], 0, sizeof r.t[s]);
            continue;
        }
        ops_own(c, (ops_res){.kind = RES_WEIGHT, .side = s, .w = r.t[s]});
    }
    return r;
}

/* ids [n] in each backend's memory (alloc + upload), for get_rows. */
static void ops_ids(ops_ctx *c, const int32_t *ids, int n, const int32_t *out[2]) {
    for (int s = 0; s < 2; s++) {
        int32_t *p = ops_mem(c, s, (size_t)n * sizeof *p);
        ops_upload(c, s, p, ids, (size_t)n * sizeof *p);
        out[s] = p;
    }
}

/* ---- checks --------------------------------------------------------------------------------- */

/* Dense host copies [ne1 * ne0] of an F32 tensor (or view) from both backends, after sync. */
static bool ops_fetch(ops_ctx *c, const ops_t *t, float *out[2]) {
    if (!t->t[REF].data || !t->t[DUT].data || !ops_sync(c)) return false;
    for (int s = 0; s < 2; s++) {
        const imp_tensor *x = &t->t[s];
        const size_t row = (size_t)x->ne0 * sizeof(float),
                     span = (size_t)(x->ne1 - 1) * x->nb1 + row;
        char *raw = ops_host(c, span);
        if (!ops_download(c, s, raw, x->data, span)) return false;
        out[s] = ops_host(c, row * (size_t)x->ne1);
        for (int64_t r = 0; r < x->ne1; r++)
            memcpy((char *)out[s] + (size_t)r * row, raw + (size_t)r * x->nb1, row);
    }
    return true;
}

/* Appends " label=nmse" (or " nmse=...") to the case line; fails the case above thr or when
 * either side holds a NaN/Inf (on the tested side: never written, or computed as NaN).
 * power_floor: a lower bound for the denominator sum(ref^2), or 0 (see mm_case). */
static void ops_compare(ops_ctx *c, const char *label, const float *ref, const float *out, size_t n,
                        double thr, double power_floor) {
    double num = 0.0, den = 0.0;
    size_t bad[2] = {0, 0}, first[2] = {0, 0};
    for (size_t i = 0; i < n; i++) {
        const bool ok_r = isfinite(ref[i]), ok_o = isfinite(out[i]);
        if (!ok_r && bad[REF]++ == 0) first[REF] = i;
        if (!ok_o && bad[DUT]++ == 0) first[DUT] = i;
        if (ok_r && ok_o) {
            const double d = (double)out[i] - (double)ref[i];
            num += d * d;
            den += (double)ref[i] * (double)ref[i];
        }
    }
    const char *what = label ? label : "output";
    for (int s = 0; s < 2; s++) {
        if (bad[s]) {
            ops_fail(c, "%s: %s has %zu NaN/Inf of %zu (first at %zu)%s", what, c->label[s], bad[s],
                     n, first[s],
                     s == DUT ? ": never written, or computed as NaN" : ": the reference itself");
        }
    }
    if (den < power_floor) den = power_floor;
    const double nmse = den > 0.0 ? num / den : (num > 0.0 ? INFINITY : 0.0);
    ops_append(c->line, sizeof c->line, " %s=%.2g", label ? label : "nmse", nmse);
    if (!(nmse <= thr)) ops_fail(c, "%s: nmse %.3g above the threshold %.0e", what, nmse, thr);
    const double ratio = thr > 0.0 ? nmse / thr : (nmse > 0.0 ? INFINITY : 0.0);
    if (ratio > c->worst) {
        c->worst = ratio;
        snprintf(c->worst_name, sizeof c->worst_name, "%s [%s]", c->name, what);
    }
}

static void ops_check_floor(ops_ctx *c, const char *label, const ops_t *t, double thr,
                            double power_floor) {
    float *v[2];
    if (ops_fetch(c, t, v)) {
        ops_compare(c, label, v[REF], v[DUT], (size_t)(t->t[REF].ne0 * t->t[REF].ne1), thr,
                    power_floor);
    }
}

static void ops_check(ops_ctx *c, const char *label, const ops_t *t, double thr) {
    ops_check_floor(c, label, t, thr, 0.0);
}

/* The columns of parent p outside [c0, c0 + n) must still hold the poison: an op writing a column
 * view must not touch its neighbours. */
static void ops_check_outside(ops_ctx *c, const ops_t *p, int64_t c0, int64_t n) {
    float *v[2];
    if (!ops_fetch(c, p, v)) return;
    const int64_t C = p->t[REF].ne0, R = p->t[REF].ne1;
    for (int s = 0; s < 2; s++) {
        size_t bad = 0;
        int64_t fr = 0, fc = 0;
        for (int64_t r = 0; r < R; r++) {
            for (int64_t i = 0; i < C; i++) {
                if (i >= c0 && i < c0 + n) continue;
                if (!ops_is_poison(v[s] + r * C, IMP_TYPE_F32, i) && bad++ == 0) {
                    fr = r;
                    fc = i;
                }
            }
        }
        if (bad) {
            ops_fail(c,
                     "%s wrote %zu values outside the view's columns [%lld, %lld) (first at row "
                     "%lld col %lld)",
                     c->label[s], bad, (long long)c0, (long long)(c0 + n), (long long)fr,
                     (long long)fc);
        }
    }
}

/* ---- op calls: one wrapper per op runs it on both sides ------------------------------------- */

static bool ops_status(ops_ctx *c, const char *op) {
    if (c->st[REF] == IMP_OK && c->st[DUT] == IMP_OK) return true;
    if (!c->expect_reject) {
        ops_fail(c, "%s returned %s on %s and %s on %s", op, imp_status_str(c->st[REF]),
                 c->label[REF], imp_status_str(c->st[DUT]), c->label[DUT]);
    }
    return false;
}

/* y = x w^T (+ b when b is not NULL). */
static bool op_matmul_add(ops_ctx *c, const ops_t *x, const ops_t *w, const ops_t *b, ops_t *y) {
    if (c->failed) return false;
    for (int s = 0; s < 2; s++)
        c->st[s] = c->be[s]->ops->matmul(c->be[s], &x->t[s], &w->t[s], b ? &b->t[s] : NULL, &y->t[s]);
    return ops_status(c, "matmul");
}

static bool op_matmul(ops_ctx *c, const ops_t *x, const ops_t *w, ops_t *y) { return op_matmul_add(c, x, w, NULL, y); }

static bool op_get_rows(ops_ctx *c, const ops_t *w, const int32_t *ids[2], int n, ops_t *y) {
    if (c->failed) return false;
    for (int s = 0; s < 2; s++)
        c->st[s] = c->be[s]->ops->get_rows(c->be[s], &w->t[s], ids[s], n, &y->t[s]);
    return ops_status(c, "get_rows");
}

static bool op_rms_norm(ops_ctx *c, const ops_t *x, const ops_t *w, float eps, bool one_plus_w,
                        ops_t *y) {
    if (c->failed) return false;
    for (int s = 0; s < 2; s++) {
        c->st[s] = c->be[s]->ops->rms_norm(c->be[s], &x->t[s], &w->t[s], eps, one_plus_w, &y->t[s]);
    }
    return ops_status(c, "rms_norm");
}

static bool op_add(ops_ctx *c, const ops_t *a, const ops_t *b, ops_t *y) {
    if (c->failed) return false;
    for (int s = 0; s < 2; s++)
        c->st[s] = c->be[s]->ops->add(c->be[s], &a->t[s], &b->t[s], &y->t[s]);
    return ops_status(c, "add");
}

static bool op_scale(ops_ctx *c, const ops_t *x, float f, ops_t *y) {
    if (c->failed) return false;
    for (int s = 0; s < 2; s++) c->st[s] = c->be[s]->ops->scale(c->be[s], &x->t[s], f, &y->t[s]);
    return ops_status(c, "scale");
}

static bool op_glu(ops_ctx *c, const ops_t *g, const ops_t *u, imp_act act, ops_t *y) {
    if (c->failed) return false;
    for (int s = 0; s < 2; s++)
        c->st[s] = c->be[s]->ops->glu(c->be[s], &g->t[s], &u->t[s], act, &y->t[s]);
    return ops_status(c, "glu");
}

static bool op_softcap(ops_ctx *c, ops_t *x, float cap) {
    if (c->failed) return false;
    for (int s = 0; s < 2; s++) c->st[s] = c->be[s]->ops->softcap(c->be[s], &x->t[s], cap);
    return ops_status(c, "softcap");
}

static bool op_begin_step(ops_ctx *c, const imp_batch *b, const int32_t *out_rows, int32_t n_out,
                          const int32_t *tok[2], const int32_t *out[2]) {
    if (c->failed) return false;
    for (int s = 0; s < 2; s++) {
        imp_error e;
        imp_error_clear(&e);
        const int32_t *ti = NULL, *oi = NULL;
        c->st[s] = c->be[s]->ops->begin_step(c->be[s], b, out_rows, n_out, &ti, &oi, &e);
        if (c->st[s] != IMP_OK) ops_fail(c, "%s: begin_step failed: %s", c->label[s], e.msg);
        if (tok) tok[s] = ti;
        if (out) out[s] = oi;
    }
    return !c->failed;
}

/* norm: per-side per-head norms, or NULL. */
static bool op_rope(ops_ctx *c, const imp_rope rope[2], const imp_attn_params *ap, const imp_qk_norm *norm,
                    ops_t *q, ops_t *k, const ops_t *v, const imp_batch *b, imp_kv_store kv[2], int layer) {
    if (c->failed) return false;
    for (int s = 0; s < 2; s++) {
        c->st[s] = c->be[s]->ops->rope_kv_store(c->be[s], &rope[s], ap, norm ? &norm[s] : NULL, &q->t[s],
                                                &k->t[s], &v->t[s], b, &kv[s], layer);
    }
    return ops_status(c, "rope_kv_store");
}

static bool op_attention(ops_ctx *c, const ops_t *q, const imp_kv_store kv[2], int layer,
                         const imp_batch *b, const imp_attn_params *ap, ops_t *out) {
    if (c->failed) return false;
    for (int s = 0; s < 2; s++) {
        c->st[s] = c->be[s]->ops->attention(c->be[s], &q->t[s], &kv[s], layer, b, ap, &out->t[s]);
    }
    return ops_status(c, "attention");
}

/* ---- batches and the KV pool ---------------------------------------------------------------- */

/* A step's batch with its host arrays (scope-owned). */
typedef struct ops_batch {
    imp_batch b;
    int32_t *len;     /* [n_seqs] positions 0..len-1 of each sequence exist */
    int32_t n_blocks; /* physical blocks in the pool */
    int block_size;
} ops_batch;

/* The pool slot of position p of sequence s. */
static int32_t ops_slot(const ops_batch *ob, int s, int32_t p) {
    return ob->b.seqs[s].blocks[p / ob->block_size] * ob->block_size + p % ob->block_size;
}

/* T tokens: token i of sequence tok_seq[i] at position tok_pos[i]. Each sequence's block table
 * covers its positions 0..max pos with physical blocks dealt from a shuffled pool that has a few
 * blocks to spare, so slots are scattered and some blocks belong to nobody. Token ids are
 * random in [0, 50). */
static ops_batch ops_batch_make(ops_ctx *c, int bs, int T, const int32_t *tok_seq,
                                const int32_t *tok_pos) {
    ops_batch ob;
    memset(&ob, 0, sizeof ob);
    int n_seqs = 0;
    for (int t = 0; t < T; t++) n_seqs = tok_seq[t] + 1 > n_seqs ? tok_seq[t] + 1 : n_seqs;
    ob.len = ops_host(c, (size_t)n_seqs * sizeof *ob.len);
    for (int t = 0; t < T; t++) {
        if (tok_pos[t] + 1 > ob.len[tok_seq[t]]) ob.len[tok_seq[t]] = tok_pos[t] + 1;
    }
    int32_t used = 0;
    for (int s = 0; s < n_seqs; s++) used += (ob.len[s] + bs - 1) / bs;
    ob.block_size = bs;
    ob.n_blocks = used + OPS_SPARE_BLOCKS;
    int32_t *perm = ops_host(c, (size_t)ob.n_blocks * sizeof *perm);
    for (int32_t i = 0; i < ob.n_blocks; i++) perm[i] = i;
    for (int32_t i = ob.n_blocks - 1; i > 0; i--) {
        const int32_t j = (int32_t)(imp_test_rng_u64(&c->rng) % (uint64_t)(i + 1)), tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    imp_batch_seq *seqs = ops_host(c, (size_t)n_seqs * sizeof *seqs);
    for (int s = 0, off = 0; s < n_seqs; s++) {
        seqs[s].blocks = perm + off;
        seqs[s].n_blocks = (ob.len[s] + bs - 1) / bs;
        off += seqs[s].n_blocks;
    }
    int32_t *token = ops_host(c, (size_t)T * sizeof *token),
            *pos = ops_host(c, (size_t)T * sizeof *pos);
    int32_t *seq = ops_host(c, (size_t)T * sizeof *seq),
            *slot = ops_host(c, (size_t)T * sizeof *slot);
    ob.b = (imp_batch){.n_tokens = T,
                       .token = token,
                       .pos = pos,
                       .seq = seq,
                       .slot = slot,
                       .n_seqs = n_seqs,
                       .seqs = seqs};
    for (int t = 0; t < T; t++) {
        token[t] = (int32_t)(imp_test_rng_u64(&c->rng) % 50);
        pos[t] = tok_pos[t];
        seq[t] = tok_seq[t];
        slot[t] = ops_slot(&ob, seq[t], pos[t]);
    }
    return ob;
}

/* Pools of n_layer layers, S = n_blocks * block_size slots of E values, on both backends, each in
 * its backend's kv_type, filled with the poison. */
static void ops_kv_make(ops_ctx *c, imp_kv_store kv[2], int n_layer, const ops_batch *ob,
                        int64_t E) {
    const int64_t S = (int64_t)ob->n_blocks * ob->block_size;
    for (int s = 0; s < 2; s++) {
        const imp_type t = c->be[s]->kv_type;
        kv[s] = (imp_kv_store){.n_layer = n_layer,
                               .block_size = ob->block_size,
                               .n_blocks = ob->n_blocks,
                               .n_embd_kv = E,
                               .type = t,
                               .k = ops_host(c, (size_t)n_layer * sizeof(imp_tensor)),
                               .v = ops_host(c, (size_t)n_layer * sizeof(imp_tensor))};
        if (t != IMP_TYPE_F32 && t != IMP_TYPE_F16) {
            ops_fail(c, "%s: kv_type %s: the harness handles F32 and F16 pools", c->label[s],
                     imp_type_name(t));
            continue;
        }
        const size_t bytes = (size_t)S * imp_row_size(t, E);
        const void *pattern = ops_poison(c, t, (size_t)(S * E));
        for (int l = 0; l < n_layer; l++) {
            void *pk = ops_mem(c, s, bytes), *pv = ops_mem(c, s, bytes);
            ops_upload(c, s, pk, pattern, bytes);
            ops_upload(c, s, pv, pattern, bytes);
            kv[s].k[l] = imp_tensor_make(t, E, S, pk);
            kv[s].v[l] = imp_tensor_make(t, E, S, pv);
        }
    }
}

static void ops_kv_upload(ops_ctx *c, int s, const imp_tensor *pool, const float *host) {
    const size_t n = (size_t)(pool->ne0 * pool->ne1);
    if (pool->type == IMP_TYPE_F32) {
        ops_upload(c, s, pool->data, host, n * sizeof(float));
        return;
    }
    imp_fp16 *h = ops_host(c, n * sizeof *h);
    for (size_t i = 0; i < n; i++) h[i] = imp_f32_to_fp16(host[i]);
    ops_upload(c, s, pool->data, h, n * sizeof *h);
}

/* Fills K and V of one layer: the positions of every sequence with N(0, 1) values, every other
 * slot (spare blocks, the tails of last blocks) with 100x larger garbage that attention must
 * not read. For an F16 pool the values are F16-rounded on both sides, so the comparison
 * measures the kernel, not the storage. */
static void ops_kv_fill(ops_ctx *c, imp_kv_store kv[2], int layer, const ops_batch *ob) {
    if (c->failed) return;
    const int64_t S = (int64_t)ob->n_blocks * ob->block_size, E = kv[REF].n_embd_kv;
    bool *vis = ops_host(c, (size_t)S);
    for (int s = 0; s < ob->b.n_seqs; s++) {
        for (int32_t p = 0; p < ob->len[s]; p++) vis[ops_slot(ob, s, p)] = true;
    }
    const bool f16 = kv[REF].type == IMP_TYPE_F16 || kv[DUT].type == IMP_TYPE_F16;
    for (int which = 0; which < 2; which++) {
        float *h = ops_host(c, (size_t)(S * E) * sizeof *h);
        for (int64_t i = 0; i < S; i++) {
            const float scale = vis[i] ? 1.0f : 100.0f;
            for (int64_t e = 0; e < E; e++) {
                float x = scale * imp_test_rng_normal(&c->rng);
                h[i * E + e] = f16 ? imp_fp16_to_f32(imp_f32_to_fp16(x)) : x;
            }
        }
        for (int s = 0; s < 2; s++)
            ops_kv_upload(c, s, which ? &kv[s].v[layer] : &kv[s].k[layer], h);
    }
}

/* After rope_kv_store: the batch's slots of one layer's K (which 0) or V (1) compared by NMSE
 * (label), every other slot still the poison on both sides. ob NULL: a layer nothing may
 * touch. */
static void ops_check_pool(ops_ctx *c, const char *label, const imp_kv_store kv[2], int layer,
                           int which, const ops_batch *ob, double thr) {
    if (!ops_sync(c)) return;
    const int64_t S = (int64_t)kv[REF].n_blocks * kv[REF].block_size, E = kv[REF].n_embd_kv;
    bool *written = ops_host(c, (size_t)S);
    const int T = ob ? ob->b.n_tokens : 0;
    for (int t = 0; t < T; t++) written[ob->b.slot[t]] = true;
    float *rows[2];
    for (int s = 0; s < 2; s++) {
        const imp_tensor *pool = which ? &kv[s].v[layer] : &kv[s].k[layer];
        if (!pool->data) return;
        const size_t row = imp_row_size(pool->type, E);
        char *raw = ops_host(c, (size_t)S * row);
        if (!ops_download(c, s, raw, pool->data, (size_t)S * row)) return;
        rows[s] = ops_host(c, (size_t)(T > 0 ? T : 1) * (size_t)E * sizeof(float));
        int64_t n_bad = 0, first = -1, g = 0;
        for (int64_t i = 0; i < S; i++) {
            const char *r = raw + (size_t)i * row;
            if (!written[i]) {
                for (int64_t e = 0; e < E; e++) {
                    if (!ops_is_poison(r, pool->type, e)) {
                        if (n_bad++ == 0) first = i;
                        break;
                    }
                }
                continue;
            }
            float *dst = rows[s] + (size_t)(g++ * E);
            for (int64_t e = 0; e < E; e++) {
                dst[e] = pool->type == IMP_TYPE_F16 ? imp_fp16_to_f32(((const imp_fp16 *)r)[e])
                                                    : ((const float *)r)[e];
            }
        }
        if (n_bad) {
            ops_fail(c,
                     "%s: layer %d %s: %lld slots the batch does not own were written (first %lld)",
                     c->label[s], layer, which ? "V" : "K", (long long)n_bad, (long long)first);
        }
    }
    if (T > 0) ops_compare(c, label, rows[REF], rows[DUT], (size_t)T * (size_t)E, thr, 0.0);
}

/* ---- bad input ------------------------------------------------------------------------------ */

/* Ends the op call of a bad-input case: both sides must have refused it, and a refused call
 * must leave the backend usable (its stream unbroken). */
static void ops_rejected(ops_ctx *c, const char *op) {
    c->expect_reject = false;
    if (c->failed) return;
    for (int s = 0; s < 2; s++) {
        if (c->st[s] == IMP_OK) ops_fail(c, "%s: %s accepted it", op, c->label[s]);
    }
    ops_append(c->line, sizeof c->line, " (%s: %s, %s: %s)", c->label[REF],
               imp_status_str(c->st[REF]), c->label[DUT], imp_status_str(c->st[DUT]));
    ops_sync(c);
}

/* A small one-sequence step with a pool (H = 4, Hkv = 2, D = 64) for the rope/attention cases. */
static ops_batch bad_kv_step(ops_ctx *c, imp_kv_store kv[2]) {
    static const int32_t k_seq[4] = {0, 0, 0, 0}, k_pos[4] = {0, 1, 2, 3};
    const int32_t out_row = 3;
    ops_batch ob = ops_batch_make(c, 16, 4, k_seq, k_pos);
    ops_kv_make(c, kv, 1, &ob, 2 * 64);
    op_begin_step(c, &ob.b, &out_row, 1, NULL, NULL);
    return ob;
}

static void suite_bad_input(ops_ctx *c) {
    int mark;
    if (ops_case(c, "bad-input matmul x->ne0 != w->ne0")) {
        mark = ops_mark(c);
        ops_t w = ops_weight(c, IMP_TYPE_Q8_0, 256, 64, ops_randn(c, 64 * 256, 1.0f));
        ops_t x = ops_randt(c, 512, 3, 1.0f), y = ops_f32(c, 64, 3, NULL);
        c->expect_reject = true;
        op_matmul(c, &x, &w, &y);
        ops_rejected(c, "matmul");
        ops_end(c, mark);
    }
    if (ops_case(c, "bad-input matmul y->ne0 != w->ne1")) {
        mark = ops_mark(c);
        ops_t w = ops_weight(c, IMP_TYPE_Q4_K, 256, 64, ops_randn(c, 64 * 256, 1.0f));
        ops_t x = ops_randt(c, 256, 3, 1.0f), y = ops_f32(c, 65, 3, NULL);
        c->expect_reject = true;
        op_matmul(c, &x, &w, &y);
        ops_rejected(c, "matmul");
        ops_end(c, mark);
    }
    if (ops_case(c, "bad-input get_rows y->ne0 != w->ne0")) {
        mark = ops_mark(c);
        static const int32_t k_ids[2] = {0, 1};
        const int32_t *ids[2];
        ops_t w = ops_weight(c, IMP_TYPE_Q8_0, 256, 8, ops_randn(c, 8 * 256, 1.0f)),
              y = ops_f32(c, 255, 2, NULL);
        ops_ids(c, k_ids, 2, ids);
        c->expect_reject = true;
        op_get_rows(c, &w, ids, 2, &y);
        ops_rejected(c, "get_rows");
        ops_end(c, mark);
    }
    if (ops_case(c, "bad-input rms_norm w->ne0 != x->ne0")) {
        mark = ops_mark(c);
        ops_t x = ops_randt(c, 64, 3, 1.0f),
              w = ops_weight(c, IMP_TYPE_F32, 63, 1, ops_randn(c, 63, 1.0f));
        ops_t y = ops_f32(c, 64, 3, NULL);
        c->expect_reject = true;
        op_rms_norm(c, &x, &w, 1e-6f, false, &y);
        ops_rejected(c, "rms_norm");
        ops_end(c, mark);
    }
    if (ops_case(c, "bad-input add b->ne1 neither a->ne1 nor 1")) {
        mark = ops_mark(c);
        ops_t a = ops_randt(c, 100, 5, 1.0f), b = ops_randt(c, 100, 2, 1.0f),
              y = ops_f32(c, 100, 5, NULL);
        c->expect_reject = true;
        op_add(c, &a, &b, &y);
        ops_rejected(c, "add");
        ops_end(c, mark);
    }
    if (ops_case(c, "bad-input scale y->ne0 != x->ne0")) {
        mark = ops_mark(c);
        ops_t x = ops_randt(c, 100, 3, 1.0f), y = ops_f32(c, 99, 3, NULL);
        c->expect_reject = true;
        op_scale(c, &x, 2.0f, &y);
        ops_rejected(c, "scale");
        ops_end(c, mark);
    }
    if (ops_case(c, "bad-input glu gate->ne0 != up->ne0")) {
        mark = ops_mark(c);
        ops_t gu = ops_randt(c, 200, 3, 1.0f), y = ops_f32(c, 100, 3, NULL);
        ops_t g = ops_cols(&gu, 0, 100), u = ops_cols(&gu, 100, 99);
        c->expect_reject = true;
        op_glu(c, &g, &u, IMP_ACT_SILU, &y);
        ops_rejected(c, "glu");
        ops_end(c, mark);
    }
    if (ops_case(c, "bad-input rope_kv_store n_dims > head_dim")) {
        mark = ops_mark(c);
        imp_kv_store kv[2];
        ops_batch ob = bad_kv_step(c, kv);
        ops_t q = ops_randt(c, 4 * 64, 4, 1.0f), k = ops_randt(c, 2 * 64, 4, 1.0f),
              v = ops_randt(c, 2 * 64, 4, 1.0f);
        const imp_rope r = {.style = IMP_ROPE_NEOX,
                            .n_dims = 128,
                            .freq_base = 10000.0f,
                            .freq_scale = 1.0f,
                            .attn_factor = 1.0f,
                            .beta_fast = 32.0f,
                            .beta_slow = 1.0f,
                            .n_ctx_orig = 4096};
        const imp_rope rope[2] = {r, r};
        const imp_attn_params ap = {.n_head = 4, .n_head_kv = 2, .head_dim = 64, .scale = 0.125f};
        c->expect_reject = true;
        op_rope(c, rope, &ap, NULL, &q, &k, &v, &ob.b, kv, 0);
        ops_rejected(c, "rope_kv_store");
        ops_end(c, mark);
    }
    if (ops_case(c, "bad-input attention n_head %% n_head_kv != 0")) {
        mark = ops_mark(c);
        imp_kv_store kv[2];
        ops_batch ob = bad_kv_step(c, kv);
        ops_t q = ops_randt(c, 3 * 64, 4, 1.0f), out = ops_f32(c, 3 * 64, 4, NULL);
        const imp_attn_params ap = {.n_head = 3, .n_head_kv = 2, .head_dim = 64, .scale = 0.125f};
        c->expect_reject = true;
        op_attention(c, &q, kv, 0, &ob.b, &ap, &out);
        ops_rejected(c, "attention");
        ops_end(c, mark);
    }
    if (ops_case(c, "bad-input attention q->ne0 != n_head * head_dim")) {
        mark = ops_mark(c);
        imp_kv_store kv[2];
        ops_batch ob = bad_kv_step(c, kv);
        ops_t q = ops_randt(c, 4 * 64 - 1, 4, 1.0f), out = ops_f32(c, 4 * 64 - 1, 4, NULL);
        const imp_attn_params ap = {.n_head = 4, .n_head_kv = 2, .head_dim = 64, .scale = 0.125f};
        c->expect_reject = true;
        op_attention(c, &q, kv, 0, &ob.b, &ap, &out);
        ops_rejected(c, "attention");
        ops_end(c, mark);
    }
}

/* ---- matmul --------------------------------------------------------------------------------- */

static const int k_mm_M[] = {1, 2, 3, 5, 8, 9, 16, 33, 64, 100};
static const int k_mm_M_large[] = {1, 64};
static const int k_mm_M_views[] = {5, 64};
static const struct { int64_t N, K; } k_mm_NK[] = {{1, 512}, {7, 256}, {129, 2816}, {1000, 512}};

typedef enum { MM_PLAIN, MM_XROWS_YCOLS, MM_XCOLS, MM_VIEWS } mm_view;
static const char *const k_mm_view_name[MM_VIEWS] = {"", " x=rows y=cols", " x=cols"};

static double mm_threshold(imp_type t) {
    if (t == IMP_TYPE_F32 || t == IMP_TYPE_F16) return THR_MATMUL_F;
    if (t == IMP_TYPE_BF16) return THR_MATMUL_BF16;
    return THR_MATMUL_Q;
}

/* The NMSE floor of a matmul's outputs: the power of x's n values times the weights' power per
 * element, over K (the expected power of an output). */
static double mm_floor(const float *x, int64_t n, int64_t K, double w_power) {
    double p = 0.0;
    for (int64_t i = 0; i < n; i++) p += (double)x[i] * (double)x[i];
    return p * w_power / (double)K;
}

static void mm_name(char *buf, size_t cap, imp_type t, int64_t M, int64_t N, int64_t K,
                    mm_view view) {
    snprintf(buf, cap, "matmul %s M=%lld N=%lld K=%lld%s", imp_type_name(t), (long long)M,
             (long long)N, (long long)K, k_mm_view_name[view]);
}

/* y [M, N] = x [M, K] w^T with x a row or column view of a wider tensor and y a column view of a
 * wider output when the view asks for it. w_power: sum of the weight's squared values.
 *
 * The NMSE denominator is floored at the expected output power (sum_m |x_m|^2) w_power / K,
 * which sum(ref^2) equals on average for these zero-mean random inputs: with a handful of
 * outputs (N = 1, small M) sum(ref^2) lands near 0 by chance often enough that the plain ratio
 * measures luck (an emulated F16-activation GEMM gave 1.3e-3 on one such case and <= 1.1e-4 on
 * every case with 9 or more outputs). */
static void mm_case(ops_ctx *c, const ops_t *w, double w_power, imp_type t, int64_t M, int64_t N,
                    int64_t K, mm_view view) {
    char name[256];
    mm_name(name, sizeof name, t, M, N, K, view);
    if (!ops_case(c, "%s", name)) return;
    const int mark = ops_mark(c);
    const int64_t y0 = 32; /* the y view's first column in a parent of N + 37 */
    ops_t x, y, yp;
    if (view == MM_XROWS_YCOLS) {
        ops_t xp = ops_randt(c, K, M + 4, 1.0f);
        x = ops_rows(&xp, 2, M);
        yp = ops_f32(c, N + 37, M, NULL);
        y = ops_cols(&yp, y0, N);
    } else if (view == MM_XCOLS) {
        ops_t xp = ops_randt(c, K + 64, M, 1.0f);
        x = ops_cols(&xp, 32, K);
        y = yp = ops_f32(c, N, M, NULL);
    } else {
        x = ops_randt(c, K, M, 1.0f);
        y = yp = ops_f32(c, N, M, NULL);
    }
    float *xv[2];
    double floor = 0.0;
    if (ops_fetch(c, &x, xv)) floor = mm_floor(xv[REF], M * K, K, w_power);
    if (op_matmul(c, &x, w, &y)) {
        ops_check_floor(c, NULL, &y, mm_threshold(t), floor);
        if (view == MM_XROWS_YCOLS) ops_check_outside(c, &yp, y0, N);
    }
    ops_end(c, mark);
}

/* A random weight [N, K] of type t (*w, and its sum of squares *w_power) set up outside any
 * case: a failure there is a case line of its own, "upload_weight ...tag". The caller releases
 * from *mark. False on failure. */
static bool mm_weight_make(ops_ctx *c, imp_type t, int64_t N, int64_t K, const char *tag, ops_t *w,
                           double *w_power, int *mark) {
    snprintf(c->name, sizeof c->name, "upload_weight %s N=%lld K=%lld%s", imp_type_name(t),
             (long long)N, (long long)K, tag);
    c->line[0] = c->why[0] = '\0';
    c->failed = false;
    ops_seed(c, c->name);
    *mark = ops_mark(c);
    const float *src = ops_randn(c, (size_t)(N * K), 1.0f);
    *w_power = 0.0;
    for (int64_t i = 0; i < N * K; i++) *w_power += (double)src[i] * (double)src[i];
    *w = ops_weight(c, t, K, N, src);
    if (c->failed) ops_case_print(c);
    return !c->failed;
}

/* Every case of one weight [N, K] of type t, which is quantized and uploaded once (when any of
 * them passes the filter): M in Ms plain, plus the view variants for M in k_mm_M_views. */
static void mm_weight_cases(ops_ctx *c, imp_type t, int64_t N, int64_t K, const int *Ms, size_t n_M,
                            bool views) {
    char name[256];
    bool any = false;
    for (size_t i = 0; i < n_M; i++) {
        mm_name(name, sizeof name, t, Ms[i], N, K, MM_PLAIN);
        any = any || ops_wanted(c, name);
    }
    for (size_t i = 0; views && i < OPS_LEN(k_mm_M_views); i++) {
        for (int v = MM_XROWS_YCOLS; v < MM_VIEWS; v++) {
            mm_name(name, sizeof name, t, k_mm_M_views[i], N, K, (mm_view)v);
            any = any || ops_wanted(c, name);
        }
    }
    if (!any) return;
    ops_t w;
    double w_power;
    int mark;
    if (mm_weight_make(c, t, N, K, "", &w, &w_power, &mark)) {
        for (size_t i = 0; i < n_M; i++) mm_case(c, &w, w_power, t, Ms[i], N, K, MM_PLAIN);
        for (size_t i = 0; views && i < OPS_LEN(k_mm_M_views); i++) {
            for (int v = MM_XROWS_YCOLS; v < MM_VIEWS; v++) {
                mm_case(c, &w, w_power, t, k_mm_M_views[i], N, K, (mm_view)v);
            }
        }
    }
    ops_release(c, mark);
}

static void suite_matmul(ops_ctx *c) {
    for (uint32_t t = 0; t < IMP_TYPE_COUNT; t++) {
        const imp_type_traits *tr = imp_type_get(t);
        if (!tr || !tr->dequantize) continue;
        for (size_t i = 0; i < OPS_LEN(k_mm_NK); i++) {
            mm_weight_cases(c, (imp_type)t, k_mm_NK[i].N, k_mm_NK[i].K, k_mm_M, OPS_LEN(k_mm_M),
                            k_mm_NK[i].K == 2816);
        }
    }
    /* one real layer's shape (decode and a prefill chunk) for the types models use most */
    static const imp_type k_large[] = {IMP_TYPE_Q8_0, IMP_TYPE_Q4_K, IMP_TYPE_F16};
    for (size_t i = 0; i < OPS_LEN(k_large); i++) {
        mm_weight_cases(c, k_large[i], 4096, 4096, k_mm_M_large, OPS_LEN(k_mm_M_large), false);
    }
}

/* ---- matmul with an addend ------------------------------------------------------------------
 * y = x w^T + b for a bias row, a separate [M, N] tensor, and b = y (the residual stream added
 * in place), on both paths (M = 1 and small M: the matrix-vector kernels; 64: the GEMM). Each
 * side's result must equal, bit for bit on the reference, its own matmul followed by add; the
 * tested side is compared with the reference like a plain matmul. */

typedef enum { MA_BIAS, MA_TENSOR, MA_INPLACE, MA_KINDS } ma_kind;
static const char *const k_ma_name[MA_KINDS] = {"bias", "tensor", "y+="};

static void ma_case(ops_ctx *c, const ops_t *w, double w_power, imp_type t, int64_t M, int64_t N, int64_t K,
                    ma_kind kind) {
    if (!ops_case(c, "matmul+%s %s M=%lld N=%lld K=%lld", k_ma_name[kind], imp_type_name(t), (long long)M,
                  (long long)N, (long long)K)) {
        return;
    }
    const int mark = ops_mark(c);
    const ops_t x = ops_randt(c, K, M, 1.0f);
    const float *bv = ops_randn(c, (size_t)(N * (kind == MA_BIAS ? 1 : M)), 4.0f);
    ops_t b = ops_f32(c, N, kind == MA_BIAS ? 1 : M, bv);
    ops_t y = kind == MA_INPLACE ? b : ops_f32(c, N, M, NULL), plain = ops_f32(c, N, M, NULL);
    ops_t sum = ops_f32(c, N, M, NULL);
    /* the expectation: plain product, then add (b's values, broadcast for a bias) */
    bool ok = op_matmul(c, &x, w, &plain) && op_add(c, &plain, &b, &sum);
    ok = ok && op_matmul_add(c, &x, w, &b, &y);
    float *xv[2], *yv[2], *sv[2];
    if (ok && ops_fetch(c, &x, xv) && ops_fetch(c, &y, yv) && ops_fetch(c, &sum, sv)) {
        ops_compare(c, NULL, yv[REF], yv[DUT], (size_t)(M * N), mm_threshold(t), mm_floor(xv[REF], M * K, K, w_power));
        for (int64_t i = 0; i < M * N; i++) {
            if (memcmp(&yv[REF][i], &sv[REF][i], sizeof(float)) != 0) {
                ops_fail(c, "%s: element %lld is %.9g, matmul then add gives %.9g", c->label[REF], (long long)i,
                         yv[REF][i], sv[REF][i]);
                break;
            }
        }
    }
    ops_end(c, mark);
}

static void suite_matmul_add(ops_ctx *c) {
    static const imp_type k_types[] = {IMP_TYPE_Q8_0, IMP_TYPE_Q4_0, IMP_TYPE_Q4_K, IMP_TYPE_F16, IMP_TYPE_BF16,
                                       IMP_TYPE_F32};
    static const int k_M[] = {1, 3, 9, 64};
    const int64_t N = 129, K = 512;
    for (size_t ti = 0; ti < OPS_LEN(k_types); ti++) {
        const imp_type t = k_types[ti];
        ops_t w;
        double w_power;
        int mark;
        if (mm_weight_make(c, t, N, K, " (addend)", &w, &w_power, &mark)) {
            for (size_t mi = 0; mi < OPS_LEN(k_M); mi++) {
                for (int k = 0; k < MA_KINDS; k++) ma_case(c, &w, w_power, t, k_M[mi], N, K, (ma_kind)k);
            }
        }
        ops_release(c, mark);
    }
}

/* ---- get_rows ------------------------------------------------------------------------------- */

static void suite_get_rows(ops_ctx *c) {
    static const int32_t k_ids[] = {0, 49, 7, 7, 23, 49, 1, 0, 31}; /* repeats and the last row */
    const int64_t V = 50, E = 512;
    const int n = (int)OPS_LEN(k_ids);
    for (uint32_t t = 0; t < IMP_TYPE_COUNT; t++) {
        const imp_type_traits *tr = imp_type_get(t);
        if (!tr || !tr->dequantize) continue;
        if (!ops_case(c, "get_rows %s V=%lld E=%lld n=%d", tr->name, (long long)V, (long long)E, n))
            continue;
        const int mark = ops_mark(c);
        const int32_t *ids[2];
        ops_t w = ops_weight(c, (imp_type)t, E, V, ops_randn(c, (size_t)(V * E), 1.0f)),
              y = ops_f32(c, E, n, NULL);
        ops_ids(c, k_ids, n, ids);
        if (op_get_rows(c, &w, ids, n, &y)) ops_check(c, NULL, &y, THR_GET_ROWS);
        ops_end(c, mark);
    }
    /* the forward pass's uses: the step's tokens (embedding) and output rows (last hidden
     * states), with ids from begin_step */
    enum { T = 37, N_OUT = 4 };
    static const int32_t k_out_rows[N_OUT] = {36, 0, 17, 36};
    int32_t seq[T], pos[T];
    for (int i = 0; i < T; i++) {
        seq[i] = 0;
        pos[i] = i;
    }
    if (ops_case(c, "get_rows Q6_K V=%lld E=%lld token_ids from begin_step T=%d", (long long)V,
                 (long long)E, T)) {
        const int mark = ops_mark(c);
        const int32_t *tok[2];
        ops_batch ob = ops_batch_make(c, 16, T, seq, pos);
        ops_t w = ops_weight(c, IMP_TYPE_Q6_K, E, V, ops_randn(c, (size_t)(V * E), 1.0f)),
              y = ops_f32(c, E, T, NULL);
        if (op_begin_step(c, &ob.b, k_out_rows, N_OUT, tok, NULL) &&
            op_get_rows(c, &w, tok, T, &y)) {
            ops_check(c, NULL, &y, THR_GET_ROWS);
        }
        ops_end(c, mark);
    }
    if (ops_case(c, "get_rows F32 activation E=1000 out_ids from begin_step T=%d n=%d", T, N_OUT)) {
        const int mark = ops_mark(c);
        const int32_t *out[2];
        ops_batch ob = ops_batch_make(c, 16, T, seq, pos);
        ops_t x = ops_randt(c, 1000, T, 1.0f), y = ops_f32(c, 1000, N_OUT, NULL);
        if (op_begin_step(c, &ob.b, k_out_rows, N_OUT, NULL, out) &&
            op_get_rows(c, &x, out, N_OUT, &y)) {
            ops_check(c, NULL, &y, THR_GET_ROWS);
        }
        ops_end(c, mark);
    }
}

/* ---- rms_norm ------------------------------------------------------------------------------- */

static void norm_case(ops_ctx *c, int64_t C, int64_t R, bool one_plus_w, bool in_place,
                      const char *what) {
    if (!ops_case(c, "rms_norm C=%lld R=%lld %s%s%s", (long long)C, (long long)R,
                  one_plus_w ? "1+w" : "w", in_place ? " in-place" : "", what)) {
        return;
    }
    const int mark = ops_mark(c);
    /* w near 1 as trained norms are; near 0 for the 1 + w form (gemma) */
    float *wh = ops_randn(c, (size_t)C, 0.2f);
    for (int64_t i = 0; !one_plus_w && i < C; i++) wh[i] += 1.0f;
    ops_t x = ops_randt(c, C, R, 3.0f), w = ops_weight(c, IMP_TYPE_F32, C, 1, wh);
    ops_t y = in_place ? x : ops_f32(c, C, R, NULL);
    if (op_rms_norm(c, &x, &w, 1e-6f, one_plus_w, &y)) ops_check(c, NULL, &y, THR_NORM);
    ops_end(c, mark);
}

/* Per-head norm as the forward does it on a joined q|k|v output: x = columns [c0, c0 + C) of a
 * wider [R, Cp] tensor, normalized in place in segments of G (the weight's length). */
static void norm_seg_case(ops_ctx *c, int64_t G, int64_t C, int64_t c0, int64_t Cp, int64_t R, bool one_plus_w) {
    if (!ops_case(c, "rms_norm segments G=%lld C=%lld R=%lld %s x=cols [%lld, %lld) of %lld in-place", (long long)G,
                  (long long)C, (long long)R, one_plus_w ? "1+w" : "w", (long long)c0, (long long)(c0 + C),
                  (long long)Cp)) {
        return;
    }
    const int mark = ops_mark(c);
    float *wh = ops_randn(c, (size_t)G, 0.2f);
    for (int64_t i = 0; !one_plus_w && i < G; i++) wh[i] += 1.0f;
    ops_t p = ops_f32(c, Cp, R, NULL), w = ops_weight(c, IMP_TYPE_F32, G, 1, wh);
    ops_t x = ops_cols(&p, c0, C), src = ops_randt(c, C, R, 3.0f);
    float *sv[2];
    if (ops_fetch(c, &src, sv)) { /* the view's values: random, the rest of the parent poison */
        for (int s = 0; s < 2; s++) {
            for (int64_t r = 0; r < R; r++) ops_upload(c, s, (char *)x.t[s].data + (size_t)r * x.t[s].nb1, sv[REF] + r * C, (size_t)C * sizeof(float));
        }
    }
    if (op_rms_norm(c, &x, &w, 1e-6f, one_plus_w, &x)) {
        ops_check(c, NULL, &x, THR_NORM);
        ops_check_outside(c, &p, c0, C);
    }
    ops_end(c, mark);
}

static void suite_norm(ops_ctx *c) {
    static const int64_t k_C[] = {64, 257, 4096}, k_R[] = {1, 37};
    for (size_t i = 0; i < OPS_LEN(k_C); i++) {
        for (size_t j = 0; j < OPS_LEN(k_R); j++) {
            norm_case(c, k_C[i], k_R[j], false, false, "");
            norm_case(c, k_C[i], k_R[j], true, false, "");
        }
    }
    norm_case(c, 4096, 5, false, true, "");
    norm_case(c, 257, 37, true, true, "");
    /* qk-norm: every head of every token is a row of D = 128 (37 tokens x 32 heads) */
    norm_case(c, 128, 37 * 32, false, true, " qk-norm");
    norm_case(c, 128, 37 * 32, true, true, " qk-norm");
    /* q and k heads inside a joined q|k|v output (qwen3: 32 + 8 + 8 heads of 128; gemma3 D 256) */
    norm_seg_case(c, 128, 32 * 128, 0, 48 * 128, 37, false);
    norm_seg_case(c, 128, 8 * 128, 32 * 128, 48 * 128, 5, false);
    norm_seg_case(c, 256, 4 * 256, 0, 8 * 256, 3, true);
    norm_seg_case(c, 512, 2 * 512, 512, 4 * 512, 2, false); /* segments long enough for a block each */
}

/* ---- a matmul fed by RMSNorm / GLU --------------------------------------------------------------
 * A backend may prepare (quantize) an activation for the matmul it feeds while writing it (the
 * CUDA backend does, for the weight type most rows with that K have). The matmul that uses the
 * prepared copy must equal, bit for bit, the same matmul after an unrelated op has made the
 * copy stale (it then prepares x itself), and the CPU within the matmul threshold. Each type
 * gets its own K, so the weights of other cases do not decide what is prepared. */

static void fed_case(ops_ctx *c, imp_type t, int64_t K, int64_t M, bool by_glu) {
    if (!ops_case(c, "matmul fed by %s %s M=%lld K=%lld", by_glu ? "glu" : "rms_norm", imp_type_name(t),
                  (long long)M, (long long)K)) {
        return;
    }
    const int mark = ops_mark(c);
    const int64_t N = 96;
    const float *src = ops_randn(c, (size_t)(N * K), 1.0f);
    double w_power = 0.0;
    for (int64_t i = 0; i < N * K; i++) w_power += (double)src[i] * (double)src[i];
    const ops_t w = ops_weight(c, t, K, N, src);
    ops_t x = ops_f32(c, K, M, NULL), z1 = ops_f32(c, N, M, NULL), z2 = ops_f32(c, N, M, NULL);
    ops_t other = ops_randt(c, 64, 1, 1.0f);
    bool ok;
    if (by_glu) {
        ops_t gu = ops_randt(c, 2 * K, M, 2.0f);
        ops_t g = ops_cols(&gu, 0, K), u = ops_cols(&gu, K, K);
        ok = op_glu(c, &g, &u, IMP_ACT_SILU, &x);
    } else {
        ops_t in = ops_randt(c, K, M, 3.0f), nw = ops_weight(c, IMP_TYPE_F32, K, 1, ops_randn(c, (size_t)K, 0.2f));
        ok = op_rms_norm(c, &in, &nw, 1e-6f, true, &x);
    }
    ok = ok && op_matmul(c, &x, &w, &z1) && op_scale(c, &other, 2.0f, &other) && op_matmul(c, &x, &w, &z2);
    float *xv[2], *v1[2], *v2[2];
    if (ok && ops_fetch(c, &x, xv) && ops_fetch(c, &z1, v1) && ops_fetch(c, &z2, v2)) {
        ops_compare(c, NULL, v1[REF], v1[DUT], (size_t)(M * N), mm_threshold(t), mm_floor(xv[REF], M * K, K, w_power));
        for (int64_t i = 0; i < M * N; i++) {
            if (memcmp(&v1[DUT][i], &v2[DUT][i], sizeof(float)) != 0) {
                ops_fail(c, "%s: element %lld is %.9g with the op's prepared input, %.9g without", c->label[DUT],
                         (long long)i, v1[DUT][i], v2[DUT][i]);
                break;
            }
        }
    }
    ops_end(c, mark);
}

static void suite_fed(ops_ctx *c) {
    static const imp_type k_t[] = {IMP_TYPE_Q8_0, IMP_TYPE_Q4_1, IMP_TYPE_Q4_K, IMP_TYPE_Q6_K, IMP_TYPE_F16};
    static const int64_t k_M[] = {1, 5, 33, 40};
    for (size_t i = 0; i < OPS_LEN(k_t); i++) {
        for (size_t j = 0; j < OPS_LEN(k_M); j++) {
            fed_case(c, k_t[i], 1280 + 256 * (int64_t)i, k_M[j], false);
            fed_case(c, k_t[i], 1280 + 256 * (int64_t)i, k_M[j], true);
        }
    }
}

/* ---- add, scale, glu, softcap --------------------------------------------------------------- */

static void add_case(ops_ctx *c, int64_t C, int64_t R, bool broadcast, bool in_place) {
    if (!ops_case(c, "add C=%lld R=%lld%s%s", (long long)C, (long long)R,
                  broadcast ? " b=one-row" : "", in_place ? " in-place" : "")) {
        return;
    }
    const int mark = ops_mark(c);
    ops_t a = ops_randt(c, C, R, 1.0f);
    /* a broadcast row is a bias: a weight */
    ops_t b = broadcast ? ops_weight(c, IMP_TYPE_F32, C, 1, ops_randn(c, (size_t)C, 1.0f))
                        : ops_randt(c, C, R, 1.0f);
    ops_t y = in_place ? a : ops_f32(c, C, R, NULL);
    if (op_add(c, &a, &b, &y)) ops_check(c, NULL, &y, THR_EW);
    ops_end(c, mark);
}

static void scale_case(ops_ctx *c, int64_t C, int64_t R, float f, bool in_place) {
    if (!ops_case(c, "scale C=%lld R=%lld s=%g%s", (long long)C, (long long)R, f,
                  in_place ? " in-place" : ""))
        return;
    const int mark = ops_mark(c);
    ops_t x = ops_randt(c, C, R, 1.0f), y = in_place ? x : ops_f32(c, C, R, NULL);
    if (op_scale(c, &x, f, &y)) ops_check(c, NULL, &y, THR_EW);
    ops_end(c, mark);
}

/* gate and up are the two column halves of one [T, 2F] tensor (a fused gate_up matmul's output). */
static void glu_case(ops_ctx *c, imp_act act, int64_t T, int64_t F) {
    if (!ops_case(c, "glu %s T=%lld F=%lld gate/up=cols",
                  act == IMP_ACT_SILU ? "SILU" : "GELU_TANH", (long long)T, (long long)F)) {
        return;
    }
    const int mark = ops_mark(c);
    ops_t gu = ops_randt(c, 2 * F, T, 3.0f), y = ops_f32(c, F, T, NULL);
    ops_t g = ops_cols(&gu, 0, F), u = ops_cols(&gu, F, F);
    if (op_glu(c, &g, &u, act, &y)) ops_check(c, NULL, &y, THR_ACT);
    ops_end(c, mark);
}

static void softcap_case(ops_ctx *c, int64_t C, int64_t R, float cap) {
    if (!ops_case(c, "softcap C=%lld R=%lld cap=%g in-place", (long long)C, (long long)R, cap))
        return;
    const int mark = ops_mark(c);
    ops_t x = ops_randt(c, C, R, 40.0f); /* logits well into tanh's bend */
    if (op_softcap(c, &x, cap)) ops_check(c, NULL, &x, THR_ACT);
    ops_end(c, mark);
}

static void suite_elementwise(ops_ctx *c) {
    add_case(c, 1000, 37, false, false);
    add_case(c, 1000, 37, true, false);
    add_case(c, 1000, 37, false, true);
    add_case(c, 1000, 37, true, true);
    add_case(c, 4097, 1, true, false);
    scale_case(c, 1000, 37, 0.125f, false);
    scale_case(c, 4096, 1, 45.254834f, true);
    for (int act = IMP_ACT_SILU; act <= IMP_ACT_GELU_TANH; act++) {
        glu_case(c, (imp_act)act, 1, 2048);
        glu_case(c, (imp_act)act, 37, 777);
        glu_case(c, (imp_act)act, 100, 2048);
    }
    softcap_case(c, 5000, 3, 30.0f);
    softcap_case(c, 257, 37, 50.0f);
}

/* ---- rope_kv_store -------------------------------------------------------------------------- */

typedef struct rope_cfg {
    imp_rope_style style;
    int D, n_dims, H, Hkv, bs;
    float base, freq_scale; /* freq_scale < 1 without yarn: linear scaling */
    bool freq_factors, yarn, fused;
    int norm; /* per-head q/k norms: 0 none, 1 w, 2 1 + w */
} rope_cfg;

static const rope_cfg k_rope[] = {
    {IMP_ROPE_NORM, 128, 128, 8, 2, 16, 10000.0f, 1.0f, false, false, true}, /* llama */
    {IMP_ROPE_NORM, 128, 128, 8, 2, 32, 500000.0f, 1.0f, true, false, true}, /* llama3 rope_freqs */
    {IMP_ROPE_NEOX, 128, 128, 8, 1, 16, 1000000.0f, 1.0f, false, false, true}, /* qwen */
    {IMP_ROPE_NEOX, 64, 32, 8, 8, 16, 10000.0f, 0.5f, false, false, true},     /* partial, linear */
    {IMP_ROPE_NEOX, 256, 256, 4, 1, 32, 1000000.0f, 0.125f, false, false, true}, /* gemma3 global */
    {IMP_ROPE_NEOX, 128, 128, 8, 2, 16, 10000.0f, 0.25f, false, true, true},     /* YaRN */
    {IMP_ROPE_NORM, 64, 64, 8, 4, 32, 10000.0f, 0.25f, false, true, true},       /* YaRN, pairs */
    {IMP_ROPE_NORM, 256, 128, 4, 2, 16, 500000.0f, 1.0f, true, false, true}, /* partial, factors */
    {IMP_ROPE_NEOX, 96, 96, 8, 4, 16, 10000.0f, 1.0f, false, false, false},  /* separate q, k, v */
    {IMP_ROPE_NEOX, 128, 128, 8, 2, 16, 1000000.0f, 1.0f, false, false, true, 1}, /* qwen3 q/k norms */
    {IMP_ROPE_NEOX, 256, 256, 4, 1, 32, 1000000.0f, 0.125f, false, false, true, 2}, /* gemma3 norms */
    {IMP_ROPE_NORM, 64, 32, 6, 3, 16, 10000.0f, 1.0f, false, false, false, 1}, /* norms, partial */
};

/* Sequences 0..3: a prefill chunk, a token deep into a long context, a few tokens in between;
 * in batch order with the long one first. */
static const struct {
    int seq, pos0, n;
} k_rope_runs[] = {{1, 4999, 1}, {0, 0, 10}, {2, 1234, 3}, {3, 300, 6}};

static void rope_case(ops_ctx *c, const rope_cfg *rc) {
    const imp_type kvt = c->be[DUT]->kv_type;
    if (!ops_case(c, "rope_kv_store %s D=%d n_dims=%d H=%d/%d base=%g scale=%g%s%s %s bs=%d kv=%s%s",
                  rc->style == IMP_ROPE_NEOX ? "NEOX" : "NORM", rc->D, rc->n_dims, rc->H, rc->Hkv,
                  rc->base, rc->freq_scale, rc->yarn ? " yarn" : "",
                  rc->freq_factors ? " freq_factors" : "", rc->fused ? "qkv=cols" : "qkv=separate",
                  rc->bs, imp_type_name(kvt), rc->norm == 1 ? " norm" : rc->norm == 2 ? " norm(1+w)" : "")) {
        return;
    }
    const int mark = ops_mark(c);
    int32_t seq[OPS_MAX_TOKENS], pos[OPS_MAX_TOKENS];
    int T = 0;
    for (size_t i = 0; i < OPS_LEN(k_rope_runs); i++) {
        for (int j = 0; j < k_rope_runs[i].n; j++, T++) {
            seq[T] = k_rope_runs[i].seq;
            pos[T] = k_rope_runs[i].pos0 + j;
        }
    }
    const int64_t QD = (int64_t)rc->H * rc->D, KD = (int64_t)rc->Hkv * rc->D;
    ops_batch ob = ops_batch_make(c, rc->bs, T, seq, pos);
    imp_kv_store kv[2];
    ops_kv_make(c, kv, 2, &ob, KD); /* the op writes layer 1; layer 0 must stay the poison */
    ops_t q, k, v;
    if (rc->fused) { /* phi3: one [T, QD + 2 KD] output, q k v its column views */
        ops_t qkv = ops_randt(c, QD + 2 * KD, T, 1.0f);
        q = ops_cols(&qkv, 0, QD);
        k = ops_cols(&qkv, QD, KD);
        v = ops_cols(&qkv, QD + KD, KD);
    } else {
        q = ops_randt(c, QD, T, 1.0f);
        k = ops_randt(c, KD, T, 1.0f);
        v = ops_randt(c, KD, T, 1.0f);
    }
    ops_t ff = {0};
    if (rc->freq_factors) { /* llama3's are 1 for fast dims up to 8 for slow ones */
        float *h = ops_host(c, (size_t)(rc->n_dims / 2) * sizeof *h);
        for (int i = 0; i < rc->n_dims / 2; i++) h[i] = ops_uniform(c, 1.0f, 8.0f);
        ff = ops_weight(c, IMP_TYPE_F32, rc->n_dims / 2, 1, h);
    }
    imp_rope rope[2];
    for (int s = 0; s < 2; s++) {
        rope[s] = (imp_rope){.style = rc->style,
                             .n_dims = rc->n_dims,
                             .freq_base = rc->base,
                             .freq_scale = rc->freq_scale,
                             .freq_factors = rc->freq_factors ? &ff.t[s] : NULL,
                             .ext_factor = rc->yarn ? 1.0f : 0.0f,
                             .attn_factor = 1.0f,
                             .beta_fast = 32.0f,
                             .beta_slow = 1.0f,
                             .n_ctx_orig = rc->yarn ? 256 : 4096};
    }
    const imp_attn_params ap = {.n_head = rc->H,
                                .n_head_kv = rc->Hkv,
                                .head_dim = rc->D,
                                .scale = 1.0f / sqrtf((float)rc->D)};
    imp_qk_norm norm[2];
    ops_t qn = {0}, kn = {0};
    bool ok = true;
    if (rc->norm) { /* weights well away from 1; q and k of different magnitudes */
        qn = ops_weight(c, IMP_TYPE_F32, rc->D, 1, ops_randn(c, (size_t)rc->D, 0.5f));
        kn = ops_weight(c, IMP_TYPE_F32, rc->D, 1, ops_randn(c, (size_t)rc->D, 0.5f));
        for (int s = 0; s < 2; s++) {
            norm[s] = (imp_qk_norm){.q = &qn.t[s], .k = &kn.t[s], .eps = 1e-6f, .one_plus_w = rc->norm == 2};
        }
        ok = op_scale(c, &q, 3.0f, &q) && op_scale(c, &k, 0.25f, &k);
    }
    const int32_t out_row = T - 1;
    if (ok && op_begin_step(c, &ob.b, &out_row, 1, NULL, NULL) &&
        op_rope(c, rope, &ap, rc->norm ? norm : NULL, &q, &k, &v, &ob.b, kv, 1)) {
        ops_check(c, "q", &q, THR_ROPE);
        ops_check(c, "k", &k, THR_ROPE);
        ops_check(c, "v", &v, 0.0); /* an input: must be left as it was */
        ops_check_pool(c, "kpool", kv, 1, 0, &ob, THR_ROPE);
        ops_check_pool(c, "vpool", kv, 1, 1, &ob, kvt == IMP_TYPE_F32 ? 0.0 : THR_ROPE);
        ops_check_pool(c, NULL, kv, 0, 0, NULL, 0.0);
        ops_check_pool(c, NULL, kv, 0, 1, NULL, 0.0);
    }
    ops_end(c, mark);
}

static void suite_rope(ops_ctx *c) {
    for (size_t i = 0; i < OPS_LEN(k_rope); i++) rope_case(c, &k_rope[i]);
}

/* ---- attention ------------------------------------------------------------------------------ */

typedef struct attn_shape {
    const char *what;
    int n_runs;
    struct {
        int seq, pos0, n;
    } runs[8]; /* runs of consecutive positions of one sequence, in batch order */
} attn_shape;

static const attn_shape k_attn_shapes[] = {
    {"prefill T=37 pos=0..36", 1, {{0, 0, 37}}},
    {"prefill T=70 pos=500..569", 1, {{0, 500, 70}}},
    {"decode T=1 pos=4999", 1, {{0, 4999, 1}}},
    {"decode T=8 seqs=8",
     8,
     {{0, 0, 1},
      {1, 16, 1},
      {2, 31, 1},
      {3, 99, 1},
      {4, 256, 1},
      {5, 1000, 1},
      {6, 2047, 1},
      {7, 3001, 1}}},
    {"mixed T=25 seqs=6",
     6,
     {{1, 7, 1}, {2, 63, 1}, {0, 100, 20}, {3, 64, 1}, {4, 777, 1}, {5, 1500, 1}}},
};

typedef struct attn_cfg {
    int H, Hkv, D, bs, window;
    float softcap;
    bool q_cols; /* q a column view of a fused qkv tensor */
} attn_cfg;

static const attn_cfg k_attn_cfgs[] = {
    {8, 8, 64, 16, 0, 0.0f, false},    {16, 4, 128, 32, 0, 0.0f, true},
    {16, 2, 96, 16, 16, 0.0f, false},  {8, 1, 256, 32, 100, 50.0f, false},
    {32, 8, 128, 16, 0, 50.0f, false}, {16, 2, 128, 16, 100, 0.0f, false},
    {16, 1, 64, 16, 0, 0.0f, false},   {28, 4, 128, 16, 0, 0.0f, true}, /* 16 and 7 heads per KV head */
};

static void attn_case(ops_ctx *c, const attn_shape *sh, const attn_cfg *ac) {
    const imp_type kvt = c->be[DUT]->kv_type;
    if (!ops_case(c, "attention %s H=%d/%d D=%d bs=%d window=%d softcap=%g%s kv=%s", sh->what,
                  ac->H, ac->Hkv, ac->D, ac->bs, ac->window, ac->softcap,
                  ac->q_cols ? " q=cols" : "", imp_type_name(kvt))) {
        return;
    }
    const int mark = ops_mark(c);
    int32_t seq[OPS_MAX_TOKENS], pos[OPS_MAX_TOKENS];
    int T = 0;
    for (int i = 0; i < sh->n_runs; i++) {
        for (int j = 0; j < sh->runs[i].n && T < OPS_MAX_TOKENS; j++, T++) {
            seq[T] = sh->runs[i].seq;
            pos[T] = sh->runs[i].pos0 + j;
        }
    }
    const int64_t QD = (int64_t)ac->H * ac->D, KD = (int64_t)ac->Hkv * ac->D;
    ops_batch ob = ops_batch_make(c, ac->bs, T, seq, pos);
    imp_kv_store kv[2];
    ops_kv_make(c, kv, 2, &ob, KD); /* layer 1 filled; layer 0 stays NaN, so reading it shows */
    ops_kv_fill(c, kv, 1, &ob);
    ops_t q, out = ops_f32(c, QD, T, NULL);
    if (ac->q_cols) {
        ops_t qkv = ops_randt(c, QD + 2 * KD, T, 1.0f);
        q = ops_cols(&qkv, 0, QD);
    } else {
        q = ops_randt(c, QD, T, 1.0f);
    }
    /* with a soft-cap, scores large enough (std 10) for the cap to bend them */
    const imp_attn_params ap = {.n_head = ac->H,
                                .n_head_kv = ac->Hkv,
                                .head_dim = ac->D,
                                .scale = (ac->softcap > 0.0f ? 10.0f : 1.0f) / sqrtf((float)ac->D),
                                .window = ac->window,
                                .softcap = ac->softcap};
    const int32_t out_row = T - 1;
    if (op_begin_step(c, &ob.b, &out_row, 1, NULL, NULL) &&
        op_attention(c, &q, kv, 1, &ob.b, &ap, &out)) {
        ops_check(c, NULL, &out, kvt == IMP_TYPE_F16 ? THR_ATTN_F16 : THR_ATTN_F32);
    }
    ops_end(c, mark);
}

static void suite_attention(ops_ctx *c) {
    for (size_t i = 0; i < OPS_LEN(k_attn_cfgs); i++) {
        for (size_t j = 0; j < OPS_LEN(k_attn_shapes); j++)
            attn_case(c, &k_attn_shapes[j], &k_attn_cfgs[i]);
    }
}

/* ---- sample ---------------------------------------------------------------------------------- */

/* The sample op is not compared by NMSE: its token must be the CPU sampler's
 * (imp_sampler_sample_r) for the same logits and r, in every row. Params come from
 * imp_sampler_prepare (which also draws r); some rows get r = 0 and the largest r below 1. A
 * backend without the op (the self-test's CPU) is replaced by a second sampler on the logits
 * downloaded from it, which checks the harness and that equal samplers agree. */

#define SMP_MAX_ROWS 70 /* more than one launch of the CUDA op (64 rows) */

enum {
    SMP_NORMAL,
    SMP_FLAT,
    SMP_PEAKED,
    SMP_TIES,
    SMP_NINF,
    SMP_SPARSE,
    SMP_PINF,
    SMP_EMPTY,
    SMP_SLICES,
    SMP_KINDS
};
static const char *const k_smp_kind[SMP_KINDS] = {"normal", "flat", "peaked", "ties",  "ninf",
                                                  "sparse", "pinf", "empty",  "slices"};

/* Row r of kind k: normal N(0, 2.5^2); flat N(0, .3^2) (huge nuclei); peaked: five tokens far
 * above the rest; ties: N(0, 2^2) rounded to quarters; ninf: half -inf, some NaN; sparse: 15
 * finite among -inf; pinf: two +inf; empty: -inf and NaN only; slices: N(0, 1) with the
 * largest logit at 8 ids in different blocks of 4096 (the CUDA op spreads a row over such
 * blocks: the lowest id must win across them), some just below a multiple of 4096, the
 * lowest written last, and 64 equal runners-up spread over the row (top-k 40 ends inside
 * ties that span blocks). */
static void smp_fill(ops_ctx *c, float *x, int64_t V, int kind) {
    for (int64_t i = 0; i < V; i++) {
        const float v = imp_test_rng_normal(&c->rng);
        const uint64_t u = imp_test_rng_u64(&c->rng) % 100;
        switch (kind) {
        case SMP_NORMAL:
            x[i] = 2.5f * v;
            break;
        case SMP_FLAT:
            x[i] = 0.3f * v;
            break;
        case SMP_PEAKED:
            x[i] = v;
            break;
        case SMP_TIES:
            x[i] = roundf(8.0f * v) / 4.0f;
            break;
        case SMP_NINF:
            x[i] = u < 50 ? -INFINITY : u < 53 ? NAN : 2.0f * v;
            break;
        case SMP_SPARSE:
            x[i] = -INFINITY;
            break;
        case SMP_PINF:
            x[i] = 2.0f * v;
            break;
        case SMP_SLICES:
            x[i] = v;
            break;
        default:
            x[i] = u < 80 ? -INFINITY : NAN;
            break;
        }
    }
    const uint64_t uV = (uint64_t)V;
    if (kind == SMP_PEAKED)
        for (int j = 0; j < 5; j++) x[imp_test_rng_u64(&c->rng) % uV] = 12.0f + (float)(j % 3);
    if (kind == SMP_SPARSE)
        for (int j = 0; j < 15; j++)
            x[imp_test_rng_u64(&c->rng) % uV] = roundf(2.0f * imp_test_rng_normal(&c->rng));
    if (kind == SMP_PINF)
        for (int j = 0; j < 2; j++) x[imp_test_rng_u64(&c->rng) % uV] = INFINITY;
    if (kind == SMP_SLICES) {
        for (int j = 0; j < 64; j++) x[((uint64_t)j * 2053u + 4090u) % uV] = 6.0f;
        for (int j = 0; j < 8; j++)
            x[((uint64_t)(16 - 2 * (j % 4) + 24 * (j / 4)) * 4096u - (j % 2)) % uV] = 7.0f;
    }
}

/* The DUT's tokens for logits t (its memory) with params p; the self-test's stand-in when the
 * backend has no sample op: sampler s2 (configured like the reference's) on downloaded rows. */
static bool smp_dut(ops_ctx *c, const imp_tensor *t, const imp_sample_params *p, imp_sampler *s2,
                    float *scratch, int32_t *tok) {
    imp_backend *be = c->be[DUT];
    imp_error e;
    imp_error_clear(&e);
    if (be->ops->sample) {
        if (be->ops->sample(be, t, p, tok, &e) == IMP_OK) return true;
        ops_fail(c, "%s: sample failed: %s", c->label[DUT], e.msg);
        return false;
    }
    for (int64_t r = 0; r < t->ne1; r++) {
        if (!ops_download(c, DUT, scratch, (const char *)t->data + (size_t)r * t->nb1,
                          (size_t)t->ne0 * sizeof(float)))
            return false;
        if (imp_sampler_sample_r(s2, scratch, p[r].r, &tok[r], &e) != IMP_OK) tok[r] = -1;
    }
    return true;
}

/* One case: n rows of kind at V (a strided view when strided), each of the nset sampler
 * configurations `rounds` calls. The line shows the mean wall time of the DUT's calls for
 * greedy, top-k on and top-k off (information only: the launches, the kernels, the copy back
 * of n tokens). */
static void smp_run(ops_ctx *c, int64_t V, int kind, int n, bool strided, int rounds,
                    const imp_sampler_params *set, int nset, const char *what) {
    if (!ops_case(c, "sample V=%lld %s rows=%d%s%s", (long long)V, k_smp_kind[kind], n,
                  strided ? " strided" : "", what))
        return;
    const int mark = ops_mark(c);
    const int64_t ld = strided ? V + 5 : V;
    float *x = ops_host(c, (size_t)(ld * n) * sizeof(float));
    for (int r = 0; r < n; r++) smp_fill(c, x + r * ld, ld, kind);
    void *dev = ops_mem(c, DUT, (size_t)(ld * n) * sizeof(float));
    ops_upload(c, DUT, dev, x, (size_t)(ld * n) * sizeof(float));
    const imp_tensor whole = imp_tensor_make(IMP_TYPE_F32, ld, n, dev),
                     t = imp_tensor_cols(&whole, 0, V);
    float *scratch = ops_host(c, (size_t)V * sizeof(float));
    imp_sample_params p[SMP_MAX_ROWS];
    int32_t want[SMP_MAX_ROWS], got[SMP_MAX_ROWS];
    int draws = 0, bad = 0, calls[3] = {0, 0, 0};
    double dut_s[3] = {0.0, 0.0, 0.0}; /* greedy; top-k on; top-k off (0 or >= V) */
    for (int si = 0; si < nset && dev && !c->failed; si++) {
        imp_sampler_params sp = set[si];
        sp.seed = imp_test_rng_u64(&c->rng);
        const bool greedy = sp.temperature <= 0;
        imp_sampler *s = NULL, *s2 = NULL;
        imp_error e;
        if (imp_sampler_create(&sp, (int32_t)V, NULL, &s, &e) != IMP_OK ||
            imp_sampler_create(&sp, (int32_t)V, NULL, &s2, &e) != IMP_OK) {
            ops_fail(c, "sampler: %s", e.msg);
            imp_sampler_free(s);
            return;
        }
        for (int round = 0; round < rounds; round++) {
            for (int r = 0; r < n; r++) {
                if (!imp_sampler_prepare(s, &p[r])) ops_fail(c, "imp_sampler_prepare refused");
                if (round == 0 && r == 0 && !greedy) p[r].r = 0.0;
                if (round == 0 && r == 1 && !greedy) p[r].r = 0x1.fffffffffffffp-1;
                if (imp_sampler_sample_r(s, x + r * ld, p[r].r, &want[r], &e) != IMP_OK)
                    want[r] = -1;
            }
            const double t0 = imp_time_s();
            if (c->failed || !smp_dut(c, &t, p, s2, scratch, got)) break;
            const int bucket = greedy ? 0 : sp.top_k > 0 && sp.top_k < V ? 1 : 2;
            dut_s[bucket] += imp_time_s() - t0;
            calls[bucket]++;
            for (int r = 0; r < n; r++, draws++) {
                if (got[r] == want[r]) continue;
                if (bad++ < 5)
                    ops_fail(c, "T=%g top_k=%d top_p=%g min_p=%g row %d r=%.17g: %s %d, cpu %d",
                             (double)sp.temperature, sp.top_k, (double)sp.top_p, (double)sp.min_p,
                             r, p[r].r, c->label[DUT], got[r], want[r]);
            }
        }
        imp_sampler_free(s);
        imp_sampler_free(s2);
    }
    if (bad > 5) ops_fail(c, "... %d mismatches in all", bad);
    ops_append(c->line, sizeof c->line,
               " combos=%d draws=%d; %s us/call: greedy %.0f, top-k %.0f, top-k off %.0f", nset,
               draws, c->label[DUT], calls[0] ? 1e6 * dut_s[0] / calls[0] : 0.0,
               calls[1] ? 1e6 * dut_s[1] / calls[1] : 0.0,
               calls[2] ? 1e6 * dut_s[2] / calls[2] : 0.0);
    ops_end(c, mark);
}

/* Every combination of greedy, temperature 0.7 / 1.5, top-k 0 / 1 / 40 / V, top-p .5 / .95 /
 * 1 and min-p 0 / .05. */
static void smp_case(ops_ctx *c, int64_t V, int kind, int n, bool strided, int rounds) {
    imp_sampler_params set[64];
    int nset = 0;
    const float temps[3] = {0.0f, 0.7f, 1.5f}, tps[3] = {0.5f, 0.95f, 1.0f}, mps[2] = {0.0f, 0.05f};
    const int32_t ks[4] = {0, 1, 40, (int32_t)V};
    for (int ti = 0; ti < 3; ti++)
        for (int ki = 0; ki < 4; ki++)
            for (int pi = 0; pi < 3; pi++)
                for (int mi = 0; mi < 2; mi++) {
                    if (ti == 0 && (ki || pi || mi)) continue; /* greedy reads none of them */
                    imp_sampler_params sp = imp_sampler_params_default();
                    sp.temperature = temps[ti];
                    sp.top_k = ks[ki];
                    sp.top_p = tps[pi];
                    sp.min_p = mps[mi];
                    set[nset++] = sp;
                }
    smp_run(c, V, kind, n, strided, rounds, set, nset, "");
}

/* Greedy, the default chain (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05) and the same
 * with top-k off: the configurations generation runs, at real vocabulary sizes. */
static void smp_case_defaults(ops_ctx *c, int64_t V, int kind, int n, int rounds) {
    imp_sampler_params set[3];
    for (int i = 0; i < 3; i++) set[i] = imp_sampler_params_default();
    set[0].temperature = 0.0f;
    set[2].top_k = 0;
    smp_run(c, V, kind, n, false, rounds, set, 3, " defaults");
}

/* Invalid calls the op must refuse (IMP_ERR_INVALID_ARG), and zero rows. */
static void smp_bad_input(ops_ctx *c) {
    imp_backend *be = c->be[DUT];
    if (!be->ops->sample || !ops_case(c, "bad-input sample")) return;
    const int mark = ops_mark(c);
    float *x = ops_randn(c, 2 * 100, 1.0f);
    void *dev = ops_mem(c, DUT, 2 * 100 * sizeof(float));
    ops_upload(c, DUT, dev, x, 2 * 100 * sizeof(float));
    imp_sample_params p[2] = {{.temperature = 1, .top_p = 1, .min_p_log = -INFINITY, .r = 0.5},
                              {.temperature = 1, .top_p = 1, .min_p_log = -INFINITY, .r = 0.5}};
    int32_t tok[2];
    imp_error e;
    imp_tensor t = imp_tensor_make(IMP_TYPE_F32, 100, 2, dev);
#define SMP_EXPECT(st, what)                                                                       \
    do {                                                                                           \
        imp_error_clear(&e);                                                                       \
        const imp_status got_ = be->ops->sample(be, &t, p, tok, &e);                               \
        if (got_ != (st))                                                                          \
            ops_fail(c, "%s: %s returned %s (%s)", what, c->label[DUT], imp_status_str(got_),      \
                     e.msg);                                                                       \
    } while (0)
    p[1].r = 1.0;
    SMP_EXPECT(IMP_ERR_INVALID_ARG, "r = 1");
    p[1].r = 0.5;
    p[0].top_p = NAN;
    SMP_EXPECT(IMP_ERR_INVALID_ARG, "top_p NaN");
    p[0].top_p = 1;
    t.type = IMP_TYPE_F16;
    SMP_EXPECT(IMP_ERR_INVALID_ARG, "F16 logits");
    t.type = IMP_TYPE_F32;
    t.nb1 = 99 * sizeof(float);
    SMP_EXPECT(IMP_ERR_INVALID_ARG, "rows overlapping");
    t.nb1 = 100 * sizeof(float);
    t.ne1 = 0;
    SMP_EXPECT(IMP_OK, "no rows");
    t.ne1 = 2;
    SMP_EXPECT(IMP_OK, "a valid call after the refusals");
#undef SMP_EXPECT
    ops_end(c, mark);
}

static void suite_sample(ops_ctx *c) {
    smp_bad_input(c);
    const int64_t vs[5] = {1, 7, 32000, 128256, 262144};
    int k = 0;
    for (int vi = 0; vi < 5; vi++)
        for (int kind = 0; kind < SMP_KINDS; kind++, k++)
            smp_case(c, vs[vi], kind, 1 + k % 8, k % 3 == 1, vs[vi] <= 32000 ? 6 : 2);
    smp_case(c, 1000, SMP_TIES, SMP_MAX_ROWS, false, 1);
    /* llama3 and qwen3 vocabularies: one row many times (the timing lines), then a batch */
    const int64_t real[2] = {128256, 151936};
    const int kinds[3] = {SMP_NORMAL, SMP_SLICES, SMP_TIES};
    for (int vi = 0; vi < 2; vi++) {
        for (int ki = 0; ki < 3; ki++) smp_case_defaults(c, real[vi], kinds[ki], 1, ki ? 4 : 20);
        smp_case_defaults(c, real[vi], SMP_SLICES, 6, 2);
    }
}

/* ---- self-test: a CPU backend whose KV pool is F16 ------------------------------------------ */

/* Under IMP_OPS_SELFTEST only. The CUDA backend's default pool is F16; without this shim the
 * harness's F16 paths (rounded pool values, converted downloads, F16 poison) would first run on
 * the device machine. It keeps the pool in F16 and runs the CPU's F32 rope/attention on a
 * converted copy. It serves the KV cases only, so the compute ops other than those are absent
 * from its table. */
typedef struct ops_f16kv {
    imp_backend base;
    imp_backend_ops ops;
    imp_backend *cpu;
} ops_f16kv;

static imp_backend *fk_cpu(imp_backend *be) {
    return ((ops_f16kv *)be)->cpu;
}

static void fk_free(imp_backend *be) {
    imp_backend_free(fk_cpu(be));
    free(be);
}
static void *fk_alloc(imp_backend *be, size_t n, imp_error *e) {
    return fk_cpu(be)->ops->alloc(fk_cpu(be), n, e);
}
static void fk_dealloc(imp_backend *be, void *p) {
    fk_cpu(be)->ops->dealloc(fk_cpu(be), p);
}
static imp_status fk_upload(imp_backend *be, void *dst, const void *src, size_t n, imp_error *e) {
    return fk_cpu(be)->ops->upload(fk_cpu(be), dst, src, n, e);
}
static imp_status fk_download(imp_backend *be, void *dst, const void *src, size_t n, imp_error *e) {
    return fk_cpu(be)->ops->download(fk_cpu(be), dst, src, n, e);
}
static imp_status fk_upload_weight(imp_backend *be, const imp_tensor *src, imp_tensor *dst,
                                   imp_error *e) {
    return fk_cpu(be)->ops->upload_weight(fk_cpu(be), src, dst, e);
}
static void fk_free_weight(imp_backend *be, imp_tensor *w) {
    fk_cpu(be)->ops->free_weight(fk_cpu(be), w);
}
static imp_status fk_begin_step(imp_backend *be, const imp_batch *b, const int32_t *out_rows,
                                int32_t n_out, const int32_t **tok, const int32_t **out,
                                imp_error *e) {
    return fk_cpu(be)->ops->begin_step(fk_cpu(be), b, out_rows, n_out, tok, out, e);
}
static imp_status fk_sync(imp_backend *be, imp_error *e) {
    return fk_cpu(be)->ops->sync(fk_cpu(be), e);
}

/* An F32 copy of one F16 pool tensor [S, E] (malloc'd), or NULL. */
static float *fk_widen(const imp_tensor *t) {
    const size_t n = (size_t)(t->ne0 * t->ne1);
    float *f = malloc(n * sizeof *f);
    for (size_t i = 0; f && i < n; i++) f[i] = imp_fp16_to_f32(((const imp_fp16 *)t->data)[i]);
    return f;
}

/* The CPU op on a one-layer F32 pool, then the batch's rows narrowed into the F16 pool. */
static imp_status fk_rope_kv_store(imp_backend *be, const imp_rope *rope, const imp_attn_params *ap,
                                   const imp_qk_norm *norm, imp_tensor *q, imp_tensor *k, const imp_tensor *v,
                                   const imp_batch *b, imp_kv_store *kv, int layer) {
    if (kv->type != IMP_TYPE_F16 || layer < 0 || layer >= kv->n_layer) return IMP_ERR_INTERNAL;
    const int64_t S = (int64_t)kv->n_blocks * kv->block_size, E = kv->n_embd_kv;
    float *kf = calloc((size_t)(S * E), sizeof *kf), *vf = calloc((size_t)(S * E), sizeof *vf);
    imp_tensor kt = imp_tensor_make(IMP_TYPE_F32, E, S, kf),
               vt = imp_tensor_make(IMP_TYPE_F32, E, S, vf);
    imp_kv_store f32 = *kv;
    f32.type = IMP_TYPE_F32;
    f32.n_layer = 1;
    f32.k = &kt;
    f32.v = &vt;
    imp_status st = kf && vf
                        ? fk_cpu(be)->ops->rope_kv_store(fk_cpu(be), rope, ap, norm, q, k, v, b, &f32, 0)
                        : IMP_ERR_NOMEM;
    for (int32_t t = 0; st == IMP_OK && t < b->n_tokens; t++) {
        const size_t row = (size_t)b->slot[t] * (size_t)E;
        imp_fp16 *dk = (imp_fp16 *)kv->k[layer].data + row,
                 *dv = (imp_fp16 *)kv->v[layer].data + row;
        for (int64_t e = 0; e < E; e++) {
            dk[e] = imp_f32_to_fp16(kf[row + (size_t)e]);
            dv[e] = imp_f32_to_fp16(vf[row + (size_t)e]);
        }
    }
    free(kf);
    free(vf);
    return st;
}

static imp_status fk_attention(imp_backend *be, const imp_tensor *q, const imp_kv_store *kv,
                               int layer, const imp_batch *b, const imp_attn_params *ap,
                               imp_tensor *out) {
    if (kv->type != IMP_TYPE_F16 || layer < 0 || layer >= kv->n_layer) return IMP_ERR_INTERNAL;
    float *kf = fk_widen(&kv->k[layer]), *vf = fk_widen(&kv->v[layer]);
    imp_tensor kt = imp_tensor_make(IMP_TYPE_F32, kv->n_embd_kv, kv->k[layer].ne1, kf);
    imp_tensor vt = imp_tensor_make(IMP_TYPE_F32, kv->n_embd_kv, kv->v[layer].ne1, vf);
    imp_kv_store f32 = *kv;
    f32.type = IMP_TYPE_F32;
    f32.n_layer = 1;
    f32.k = &kt;
    f32.v = &vt;
    const imp_status st =
        kf && vf ? fk_cpu(be)->ops->attention(fk_cpu(be), q, &f32, 0, b, ap, out) : IMP_ERR_NOMEM;
    free(kf);
    free(vf);
    return st;
}

static imp_status ops_f16kv_create(imp_backend **out, imp_error *err) {
    *out = NULL;
    ops_f16kv *f = calloc(1, sizeof *f);
    if (!f) return imp_error_set(err, IMP_ERR_NOMEM, "out of memory");
    imp_status st = imp_backend_cpu_create(1, &f->cpu, err);
    if (st != IMP_OK) {
        free(f);
        return st;
    }
    f->ops = (imp_backend_ops){.name = "cpu-f16kv",
                               .free = fk_free,
                               .alloc = fk_alloc,
                               .dealloc = fk_dealloc,
                               .upload = fk_upload,
                               .download = fk_download,
                               .upload_weight = fk_upload_weight,
                               .free_weight = fk_free_weight,
                               .begin_step = fk_begin_step,
                               .rope_kv_store = fk_rope_kv_store,
                               .attention = fk_attention,
                               .sync = fk_sync};
    f->base.ops = &f->ops;
    f->base.kv_type = IMP_TYPE_F16;
    *out = &f->base;
    return IMP_OK;
}

/* ---- main ----------------------------------------------------------------------------------- */

/* One backend to test: the CUDA backend with each pool type, or the self-test's stand-ins.
 * kv_only: only the rope/attention suites (the rest does not depend on the pool type). */
typedef struct ops_dut {
    const char *label;
    imp_type kv_type;
    bool kv_only;
} ops_dut;

static imp_status ops_dut_create(bool selftest, int device, const ops_dut *d, imp_backend **out,
                                 imp_error *err) {
    if (selftest)
        return d->kv_type == IMP_TYPE_F16 ? ops_f16kv_create(out, err)
                                          : imp_backend_cpu_create(1, out, err);
    const imp_cuda_params p = {.device = device, .kv_type = d->kv_type};
    return imp_backend_cuda_create(&p, out, err);
}

int main(void) {
    const char *env = getenv("IMP_OPS_SELFTEST");
    const bool selftest = env && strcmp(env, "1") == 0;
    const char *filter = getenv("IMP_OPS_FILTER");
    int device = 0;
    if ((env = getenv("IMP_OPS_DEVICE")) && *env) {
        char *end;
        const long d = strtol(env, &end, 10);
        if (*end || d < 0 || d > 1024) {
            fprintf(stderr, "test_backend_ops: IMP_OPS_DEVICE=%s is not a device index\n", env);
            return 1;
        }
        device = (int)d;
    }
    char where[256] = "";
    if (!selftest) {
        if (!imp_device_cuda_built()) {
            imp_test_skip("this build has no CUDA backend (IMP_OPS_SELFTEST=1 checks the harness "
                          "CPU against CPU)");
        }
        imp_device_info info[16];
        int n = 0;
        imp_error err;
        imp_error_clear(&err);
        if (imp_device_list(info, (int)OPS_LEN(info), &n, &err) != IMP_OK) {
            fprintf(stderr, "test_backend_ops: imp_device_list: %s\n", err.msg);
            return 1;
        }
        if (n == 0) imp_test_skip("no CUDA device");
        if (device >= n) {
            fprintf(stderr, "test_backend_ops: IMP_OPS_DEVICE=%d but there are %d devices\n",
                    device, n);
            return 1;
        }
        if (device < (int)OPS_LEN(info)) {
            snprintf(where, sizeof where, " on device %d (%s, sm_%d%d)", device, info[device].name,
                     info[device].cc_major, info[device].cc_minor);
        }
    }

    ops_ctx c;
    memset(&c, 0, sizeof c);
    c.filter = filter && *filter ? filter : NULL;
    imp_error err;
    imp_error_clear(&err);
    if (imp_backend_cpu_create(OPS_REF_THREADS, &c.be[REF], &err) != IMP_OK) {
        fprintf(stderr, "test_backend_ops: CPU backend: %s\n", err.msg);
        return 1;
    }
    c.label[REF] = "cpu";

    static const ops_dut k_cuda[] = {{"cuda", IMP_TYPE_F16, false}, {"cuda", IMP_TYPE_F32, true}};
    static const ops_dut k_self[] = {{"cpu1", IMP_TYPE_F32, false},
                                     {"cpu1-f16kv", IMP_TYPE_F16, true}};
    const ops_dut *duts = selftest ? k_self : k_cuda;
    for (int i = 0; i < 2; i++) {
        imp_backend *be = NULL;
        imp_error_clear(&err);
        const imp_status st = ops_dut_create(selftest, device, &duts[i], &be, &err);
        if (st != IMP_OK) {
            /* the first backend decides whether this machine can run the test at all */
            if (i == 0 && (st == IMP_ERR_UNSUPPORTED || st == IMP_ERR_DEVICE)) {
                char reason[IMP_ERROR_MSG_MAX + 64];
                snprintf(reason, sizeof reason, "cannot create the CUDA backend: %s", err.msg);
                imp_test_skip(reason);
            }
            printf("FAIL create %s (KV %s): %s: %s\n", duts[i].label,
                   imp_type_name(duts[i].kv_type), imp_status_str(st), err.msg);
            imp_test_checks++;
            imp_test_failures++;
            continue;
        }
        c.be[DUT] = be;
        c.label[DUT] = duts[i].label;
        c.n_cases = c.n_failed = 0;
        c.worst = 0.0;
        snprintf(c.worst_name, sizeof c.worst_name, "none");
        printf("# %s%s (KV %s) against cpu (%d threads)%s%s\n", duts[i].label, where,
               imp_type_name(be->kv_type), OPS_REF_THREADS, c.filter ? ", filter: " : "",
               c.filter ? c.filter : "");
        if (!duts[i].kv_only) {
            suite_bad_input(&c); /* first: a backend a refused call leaves broken fails the rest */
            suite_matmul(&c);
            suite_matmul_add(&c);
            suite_get_rows(&c);
            suite_norm(&c);
            suite_fed(&c);
            suite_elementwise(&c);
        }
        suite_rope(&c);
        suite_attention(&c);
        if (!duts[i].kv_only) suite_sample(&c);
        printf("# %s (KV %s): %d cases, %d failed; closest to its threshold: %s (nmse/threshold "
               "%.2g)\n",
               duts[i].label, imp_type_name(be->kv_type), c.n_cases, c.n_failed, c.worst_name,
               c.worst);
        imp_backend_free(be);
        c.be[DUT] = NULL;
    }
    imp_backend_free(c.be[REF]);
    free(c.res);
    return imp_test_finish("test_backend_ops");
}
