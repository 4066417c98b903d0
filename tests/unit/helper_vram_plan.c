/*
 * The VRAM plan's arithmetic and its advice, without a GPU (run by tests/tools/gpu_layers.sh):
 *
 *   helper_vram_plan MODEL.gguf
 *
 * imp_engine_vram_plan is asked about made-up amounts of free memory. need(n), the least free
 * memory with which n layers on the GPU pass, is found by bisection for every n, then:
 *   1. need(n+1) - need(n) = the GGUF's bytes of layer n's tensors + its K and V pools (the
 *      reference: the file's tensor table, not the engine's bookkeeping); the whole model
 *      (n = n_layer) adds at least token_embd and output on top of that;
 *   2. at free memory F below need(n_layer), the refusal names "--gpu-layers N" with N the
 *      largest n >= 1 with need(n) <= F (and no such hint when there is none), and its
 *      "--max-seq-len X" passes the plan at X and fails at X + block_size;
 *   3. gpu_layers below -1 is refused as an argument error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "testutil.h"

#define GIB ((size_t)1 << 30)

static const imp_model *g_m;

static imp_engine_params params(int gpu_layers, int max_seq) {
    imp_engine_params p = imp_engine_params_default();
    p.device = 0;
    p.max_seq_len = max_seq;
    p.n_seq_max = 2;
    p.kv_type = IMP_TYPE_F16;
    p.gpu_layers = gpu_layers;
    return p;
}

static bool fits(int gpu_layers, int max_seq, size_t free_b, imp_error *err) {
    imp_engine_params p = params(gpu_layers, max_seq);
    imp_error e2 = {0};
    imp_status st = imp_engine_vram_plan(g_m, &p, free_b, 80 * GIB, err ? err : &e2);
    if (st != IMP_OK && st != IMP_ERR_NOMEM) {
        fprintf(stderr, "plan: %s\n", (err ? err : &e2)->msg);
        CHECK(0);
    }
    return st == IMP_OK;
}

/* The least free memory with which gpu_layers pass (the plan is monotonic in it). */
static size_t need(int gpu_layers, int max_seq) {
    size_t lo = 0, hi = (size_t)1 << 50; /* fits(hi), !fits(lo) */
    while (hi - lo > 1) {
        const size_t mid = lo + (hi - lo) / 2;
        if (fits(gpu_layers, max_seq, mid, NULL)) hi = mid;
        else lo = mid;
    }
    return hi;
}

/* Bytes of the GGUF's tensors whose names start with prefix. */
static uint64_t tensor_bytes(const imp_model *m, const char *prefix) {
    uint64_t n = 0;
    for (int64_t i = 0; i < imp_gguf_n_tensors(m->gguf); i++) {
        const imp_gguf_tensor *t = imp_gguf_tensor_at(m->gguf, i);
        if (!strncmp(t->name, prefix, strlen(prefix))) n += t->size;
    }
    return n;
}

/* The number after "flag " in msg, or -1 when the flag is not followed by one. */
static long long hint(const char *msg, const char *flag) {
    const char *p = strstr(msg, flag);
    if (!p || p[strlen(flag)] != ' ') return -1;
    char *end;
    const long long v = strtoll(p + strlen(flag) + 1, &end, 10);
    return end == p + strlen(flag) + 1 ? -1 : v;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    imp_model *m = NULL;
    imp_error err = {0};
    if (imp_model_open(argv[1], NULL, NULL, &m, &err) != IMP_OK) {
        fprintf(stderr, "%s: %s\n", argv[1], err.msg);
        return 1;
    }
    g_m = m;
    const int L = m->hp.n_layer, max_seq = 1000; /* not a multiple of the block size */
    const imp_engine_params p0 = params(-1, max_seq);
    const int64_t slots = ((int64_t)max_seq + p0.block_size - 1) / p0.block_size * p0.block_size * p0.n_seq_max;
    const uint64_t kv_layer = 2 * (uint64_t)slots * (uint64_t)m->hp.n_head_kv * (uint64_t)m->hp.head_dim * 2; /* F16 */
    size_t *nd = calloc((size_t)L + 1, sizeof *nd);
    if (!nd) return 1;
    for (int n = 1; n <= L; n++) nd[n] = need(n, max_seq);
    CHECK(need(-1, max_seq) == nd[L] && need(L + 7, max_seq) == nd[L]);

    /* 1. each layer costs its tensors and its KV pools */
    for (int n = 1; n < L; n++) {
        char pre[32];
        snprintf(pre, sizeof pre, "blk.%d.", n);
        const uint64_t want = tensor_bytes(m, pre) + kv_layer;
        CHECKF(n == L - 1 || nd[n + 1] - nd[n] == want, "layer %d costs %zu bytes, the file says %llu", n,
               nd[n + 1] - nd[n], (unsigned long long)want);
    }
    {
        char pre[32];
        snprintf(pre, sizeof pre, "blk.%d.", L - 1);
        const uint64_t least = tensor_bytes(m, pre) + kv_layer + tensor_bytes(m, "token_embd.") +
                               tensor_bytes(m, "output.");
        CHECKF(nd[L] - nd[L - 1] >= least, "the whole model adds %zu bytes over %d layers, at least %llu expected",
               nd[L] - nd[L - 1], L - 1, (unsigned long long)least);
    }
    printf("need: 1 layer %zu bytes ... %d layers %zu, the whole model %zu\n", nd[1], L - 1, nd[L - 1], nd[L]);

    /* 2. the advice at free memory between one layer's need and the whole model's */
    int checked = 0;
    for (int n = 0; n <= L; n++) {
        const size_t frees[2] = {n == 0 ? nd[1] - 1 : nd[n], n == 0 ? nd[1] / 2 : nd[n] + (nd[n] - nd[n > 1 ? n - 1 : 1]) / 2};
        for (int k = 0; k < 2; k++) {
            const size_t F = frees[k];
            if (F >= nd[L]) continue;
            imp_error_clear(&err);
            CHECK(!fits(-1, max_seq, F, &err));
            int want = 0;
            for (int j = 1; j < L; j++)
                if (nd[j] <= F) want = j;
            const long long got = hint(err.msg, "--gpu-layers");
            CHECKF(want ? got == want : got < 0, "free %zu: hint --gpu-layers %lld, expected %d (%s)", F, got, want,
                   err.msg);
            if (got > 0) CHECK(fits((int)got, max_seq, F, NULL) && !fits((int)got + 1, max_seq, F, NULL));
            const long long seq = hint(err.msg, "--max-seq-len");
            if (seq > 0) {
                CHECKF(fits(-1, (int)seq, F, NULL) && !fits(-1, (int)seq + p0.block_size, F, NULL),
                       "free %zu: --max-seq-len %lld is not the longest that fits", F, seq);
            }
            CHECKF(strstr(err.msg, "does not fit on GPU 0") != NULL, "%s", err.msg);
            checked++;
        }
    }
    imp_error_clear(&err);
    if (!fits(-1, max_seq, nd[L - 1], &err)) printf("e.g. at %zu bytes free: %s\n", nd[L - 1], err.msg);
    /* the split's own refusal names the layers it counted */
    imp_error_clear(&err);
    CHECK(L < 2 || (!fits(1, max_seq, nd[1] - 1, &err) && strstr(err.msg, "(layers 0-0 of ") != NULL));
    printf("advice checked at %d amounts of free memory\n", checked);

    /* 3. bad arguments */
    imp_engine_params bad = params(-2, max_seq);
    CHECK(imp_engine_vram_plan(m, &bad, GIB, GIB, &err) == IMP_ERR_INVALID_ARG);
    free(nd);
    imp_model_close(m);
    return imp_test_finish("helper_vram_plan");
}
