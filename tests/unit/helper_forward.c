/*
 * Forward-pass checks on one model file (run by tests/tools/forward.sh on tiny synthetic models of
 * every architecture row, and by py_forward_ref.py):
 *
 *   helper_forward MODEL check      consistency of the engine against itself:
 *       chunked prefill == one-shot prefill (every token's logits, rel. 1e-4), token-by-token
 *       decode == prefill, a batch of 3 sequences in one call == 3 separate runs, small steps
 *       (max_batch 5) == large, 1 thread == 2 threads bit for bit, and bad input refused with
 *       the sequence unchanged.
 *   helper_forward MODEL logits ID,ID,...   every token's logits as raw float32 on stdout
 *       ([n_tokens, n_vocab], row-major), for the numpy reference.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "testutil.h"

#define L_A 40
#define L_B 23
#define L_C 31

typedef struct {
    float *v; /* [n, V] */
    int32_t n;
} rows;

static int32_t V;

static void ids_make(int32_t *ids, int n, uint64_t seed) {
    uint64_t s = seed;
    for (int i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = 3 + (int32_t)((s >> 33) % (uint64_t)(V - 3));
    }
}

static imp_engine *engine(const imp_model *m, int threads, int max_batch, int n_seq) {
    imp_engine_params p = imp_engine_params_default();
    p.device = IMP_DEVICE_CPU; /* the CPU reference: bit-exactness across threads and chunkings */
    p.n_threads = threads;
    p.max_batch = max_batch;
    p.n_seq_max = n_seq;
    p.max_seq_len = 64;
    imp_engine *e = NULL;
    imp_error err = {0};
    if (imp_engine_create(m, &p, &e, &err) != IMP_OK) {
        fprintf(stderr, "engine: %s\n", err.msg);
        exit(1);
    }
    return e;
}

/* Feeds ids in pieces of the given sizes (cycled), keeping every token's logits. */
static rows run_chunked(imp_engine *e, const int32_t *ids, int n, const int *chunks, int n_chunks) {
    rows r = {malloc((size_t)n * (size_t)V * sizeof(float)), n};
    imp_kv_seq s = {0};
    imp_error err = {0};
    for (int done = 0, c = 0; done < n; c++) {
        int k = chunks[c % n_chunks];
        if (k > n - done) k = n - done;
        imp_engine_input in = {.seq = &s, .tokens = ids + done, .n_tokens = k, .first_logit = 0};
        if (imp_engine_forward(e, &in, 1, &err) != IMP_OK) {
            fprintf(stderr, "forward: %s\n", err.msg);
            exit(1);
        }
        for (int t = 0; t < k; t++) memcpy(r.v + (size_t)(done + t) * V, imp_engine_logits(e, t), (size_t)V * sizeof(float));
        done += k;
    }
    imp_engine_seq_release(e, &s);
    return r;
}

/* max |a - b| / max |a| over all rows. */
static double rel_diff(const rows *a, const rows *b) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < (size_t)a->n * (size_t)V; i++) {
        num = fmax(num, fabs((double)a->v[i] - (double)b->v[i]));
        den = fmax(den, fabs((double)a->v[i]));
    }
    return den > 0 ? num / den : num;
}

static bool same_bits(const rows *a, const rows *b) {
    return memcmp(a->v, b->v, (size_t)a->n * (size_t)V * sizeof(float)) == 0;
}

static int check(const imp_model *m) {
    int32_t A[L_A], B[L_B], C[L_C];
    ids_make(A, L_A, 1);
    ids_make(B, L_B, 2);
    ids_make(C, L_C, 3);
    imp_engine *e2 = engine(m, 2, 512, 4);
    const int one[] = {L_A}, pieces[] = {7, 1, 13, 3}, single[] = {1};
    rows ref = run_chunked(e2, A, L_A, one, 1);

    rows chunked = run_chunked(e2, A, L_A, pieces, 4);
    double d = rel_diff(&ref, &chunked);
    CHECKF(d <= 1e-4, "chunked prefill differs from one-shot: %.3g", d);
    printf("chunked (7,1,13,3) vs one-shot: max rel diff %.3g\n", d);

    rows dec = run_chunked(e2, A, L_A, single, 1);
    d = rel_diff(&ref, &dec);
    CHECKF(d <= 1e-4, "token-by-token decode differs from prefill: %.3g", d);
    printf("decode vs prefill: max rel diff %.3g\n", d);

    imp_engine *e2s = engine(m, 2, 5, 4);
    rows small = run_chunked(e2s, A, L_A, one, 1);
    d = rel_diff(&ref, &small);
    CHECKF(d <= 1e-4, "max_batch 5 differs from 512: %.3g", d);
    imp_engine_free(e2s);

    imp_engine *e1 = engine(m, 1, 512, 4);
    rows t1 = run_chunked(e1, A, L_A, one, 1);
    CHECKF(same_bits(&ref, &t1), "1 thread and 2 threads give different logits (%.3g)", rel_diff(&ref, &t1));
    printf("1 vs 2 threads: %s\n", same_bits(&ref, &t1) ? "identical" : "DIFFERENT");
    imp_engine_free(e1);

    /* batch of 3: B (prefilled 10 tokens earlier) continues, C and A start, in one call */
    rows rb = run_chunked(e2, B, L_B, one, 1), rc = run_chunked(e2, C, L_C, one, 1);
    imp_kv_seq sa = {0}, sb = {0}, sc = {0};
    imp_error err = {0};
    imp_engine_input pre = {.seq = &sb, .tokens = B, .n_tokens = 10, .first_logit = 10};
    CHECK(imp_engine_forward(e2, &pre, 1, &err) == IMP_OK);
    imp_engine_input in[3] = {{.seq = &sb, .tokens = B + 10, .n_tokens = L_B - 10, .first_logit = 0},
                              {.seq = &sc, .tokens = C, .n_tokens = L_C, .first_logit = 0},
                              {.seq = &sa, .tokens = A, .n_tokens = L_A, .first_logit = 0}};
    CHECK(imp_engine_forward(e2, in, 3, &err) == IMP_OK);
    CHECK(imp_engine_n_logits(e2) == L_B - 10 + L_C + L_A);
    double worst = 0.0;
    for (int t = 0; t < L_B - 10; t++) {
        rows x = {(float *)imp_engine_logits(e2, t), 1}, y = {rb.v + (size_t)(10 + t) * V, 1};
        worst = fmax(worst, rel_diff(&y, &x));
    }
    for (int t = 0; t < L_C; t++) {
        rows x = {(float *)imp_engine_logits(e2, L_B - 10 + t), 1}, y = {rc.v + (size_t)t * V, 1};
        worst = fmax(worst, rel_diff(&y, &x));
    }
    for (int t = 0; t < L_A; t++) {
        rows x = {(float *)imp_engine_logits(e2, L_B - 10 + L_C + t), 1}, y = {ref.v + (size_t)t * V, 1};
        worst = fmax(worst, rel_diff(&y, &x));
    }
    CHECKF(worst <= 1e-4, "batch of 3 sequences differs from separate runs: %.3g", worst);
    printf("batch of 3 vs separate: max rel diff %.3g\n", worst);
    CHECK(sa.n_pos == L_A && sb.n_pos == L_B && sc.n_pos == L_C);

    /* bad input: refused, sequence unchanged */
    int32_t bad[2] = {1, V};
    imp_engine_input ib = {.seq = &sa, .tokens = bad, .n_tokens = 2, .first_logit = 1};
    CHECK(imp_engine_forward(e2, &ib, 1, &err) == IMP_ERR_INVALID_ARG);
    CHECK(strstr(err.msg, "outside the vocabulary") != NULL);
    CHECK(sa.n_pos == L_A);
    int32_t many[30] = {0};
    for (int i = 0; i < 30; i++) many[i] = 5;
    imp_engine_input il = {.seq = &sa, .tokens = many, .n_tokens = 30, .first_logit = 29};
    CHECK(imp_engine_forward(e2, &il, 1, &err) == IMP_ERR_RANGE);
    CHECK(sa.n_pos == L_A);
    /* the sequence still works after the refusals: one more token equals a fresh run's */
    imp_engine_input ok = {.seq = &sa, .tokens = many, .n_tokens = 1, .first_logit = 0};
    CHECK(imp_engine_forward(e2, &ok, 1, &err) == IMP_OK);
    imp_engine_seq_release(e2, &sa);
    imp_engine_seq_release(e2, &sb);
    imp_engine_seq_release(e2, &sc);

    free(ref.v);
    free(chunked.v);
    free(dec.v);
    free(small.v);
    free(t1.v);
    free(rb.v);
    free(rc.v);
    imp_engine_free(e2);
    return imp_test_finish("helper_forward check");
}

static int dump(const imp_model *m, const char *list) {
    int32_t ids[256];
    int n = 0;
    for (const char *p = list; *p && n < 256;) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p) return 2;
        ids[n++] = (int32_t)x;
        p = *end == ',' ? end + 1 : end;
    }
    imp_engine *e = engine(m, 2, 512, 1);
    const int one[] = {n};
    rows r = run_chunked(e, ids, n, one, 1);
    fwrite(r.v, sizeof(float), (size_t)n * (size_t)V, stdout);
    free(r.v);
    imp_engine_free(e);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: helper_forward MODEL check | logits ID,ID,...\n");
        return 2;
    }
    imp_model *m = NULL;
    imp_error err = {0};
    if (imp_model_open(argv[1], NULL, NULL, &m, &err) != IMP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    V = m->hp.n_vocab;
    int rc = 2;
    if (!strcmp(argv[2], "check")) {
        rc = check(m);
    } else if (!strcmp(argv[2], "logits") && argc > 3) {
        rc = dump(m, argv[3]);
    }
    imp_model_close(m);
    return rc;
}
