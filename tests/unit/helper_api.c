/*
 * The public C API on one model file (run by tests/tools/generate.sh on a tiny synthetic model):
 * imp_generate's greedy text equals what token-level imp_prefill + imp_decode_step produce,
 * detokenized; a second imp_generate with the same prompt reuses the cache and gives the same
 * text; imp_prefill_logits keeps every row and its last row is imp_get_logits; tokenize /
 * detokenize round-trip and report IMP_ERR_RANGE with the needed size; a full context and bad
 * arguments give errors, never crashes.
 *   helper_api MODEL
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <imp/imp.h>

#include "testutil.h"

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    ImpModel model = NULL;
    CHECK(imp_model_load(argv[1], IMP_FORMAT_GGUF, &model) == IMP_OK);
    if (!model) return imp_test_finish("helper_api");
    ImpModelInfo info;
    CHECK(imp_model_info(model, &info) == IMP_OK);
    ImpConfig cfg = imp_config_default();
    cfg.n_threads = 2;
    cfg.max_seq_len = 64;
    ImpContext ctx = NULL;
    CHECK(imp_context_create(model, &cfg, &ctx) == IMP_OK);

    /* tokenize / detokenize */
    const char *prompt = "hello world, the quick brown fox";
    int32_t toks[64];
    size_t n = 0, need = 0;
    CHECK(imp_tokenize(model, prompt, strlen(prompt), true, true, toks, 2, &need) == IMP_ERR_RANGE && need > 2);
    CHECK(imp_tokenize(model, prompt, strlen(prompt), true, true, toks, 64, &n) == IMP_OK && n == need);
    CHECK(info.add_bos && toks[0] == info.bos);
    char text[256];
    size_t tl = 0;
    CHECK(imp_detokenize(model, toks + 1, n - 1, false, text, sizeof text, &tl) == IMP_OK);
    CHECKF(tl == strlen(prompt) && !strcmp(text, prompt), "round trip: '%s'", text);
    CHECK(imp_detokenize(model, toks + 1, n - 1, false, text, 4, &tl) == IMP_ERR_RANGE && tl == strlen(prompt));

    /* imp_generate (greedy) */
    ImpGenerateParams gp = imp_generate_params_default();
    gp.temperature = 0.0f;
    gp.max_tokens = 12;
    /* imp-synth's vocabulary has byte tokens at ids 3..258: banned, so the text is valid UTF-8
     * and the streamed text must equal the detokenized ids byte for byte */
    ImpLogitBias ban[256];
    for (int i = 0; i < 256; i++) ban[i] = (ImpLogitBias){3 + i, -INFINITY};
    gp.logit_bias = ban;
    gp.n_logit_bias = 256;
    char out1[1024], out2[1024];
    size_t l1 = 0, l2 = 0;
    CHECK(imp_generate(ctx, prompt, &gp, out1, sizeof out1, &l1) == IMP_OK);
    ImpStats st;
    CHECK(imp_context_stats(ctx, &st) == IMP_OK && st.n_prompt == (int32_t)n && st.n_reused == 0);
    CHECK(imp_generate(ctx, prompt, &gp, out2, sizeof out2, &l2) == IMP_OK);
    CHECK(imp_context_stats(ctx, &st) == IMP_OK);
    CHECKF(st.n_reused == (int32_t)n - 1 && st.n_prompt == 1, "reuse: %d reused, %d computed", st.n_reused, st.n_prompt);
    CHECKF(l1 == l2 && !memcmp(out1, out2, l1), "second generate differs: '%s' vs '%s'", out1, out2);

    /* the same through prefill + decode_step */
    imp_context_reset(ctx);
    CHECK(imp_context_n_past(ctx) == 0);
    CHECK(imp_set_sampling(ctx, &gp) == IMP_OK);
    CHECK(imp_prefill(ctx, toks, n) == IMP_OK && imp_context_n_past(ctx) == (int32_t)n);
    int32_t gen[16];
    int ng = 0;
    for (int i = 0; i < gp.max_tokens; i++) {
        bool eog = false;
        CHECK(imp_decode_step(ctx, &gen[ng], &eog) == IMP_OK);
        if (eog) break;
        ng++;
    }
    char out3[1024];
    size_t l3 = 0;
    CHECK(imp_detokenize(model, gen, (size_t)ng, false, out3, sizeof out3, &l3) == IMP_OK);
    /* imp_detokenize drops the space SentencePiece puts before the first word of a text;
     * imp_generate keeps it (its output continues the prompt) */
    const char *g1 = out1;
    if (l1 == l3 + 1 && out1[0] == ' ' && out3[0] != ' ') g1++;
    CHECKF(strlen(g1) == l3 && !memcmp(g1, out3, l3) && l3 > 0, "decode_step text '%s' differs from imp_generate '%s'",
           out3, out1);

    /* every row's logits; the last one is the current logits */
    imp_context_reset(ctx);
    CHECK(imp_prefill_logits(ctx, toks, n, 0) == IMP_OK);
    int32_t nv = 0;
    const float *last = imp_get_logits(ctx, &nv), *ith = imp_get_logits_ith(ctx, (int32_t)n - 1);
    CHECK(nv == info.n_vocab && last && ith && !memcmp(last, ith, (size_t)nv * sizeof(float)));
    CHECK(imp_get_logits_ith(ctx, 0) != NULL && imp_get_logits_ith(ctx, (int32_t)n) == NULL);

    /* errors */
    imp_context_reset(ctx);
    bool eog;
    int32_t t;
    CHECK(imp_decode_step(ctx, &t, &eog) == IMP_ERR_INVALID_ARG);
    CHECK(strstr(imp_context_last_error(ctx), "prefill") != NULL);
    int32_t many[80];
    for (int i = 0; i < 80; i++) many[i] = toks[1];
    CHECK(imp_prefill(ctx, many, 80) == IMP_ERR_RANGE);
    CHECK(imp_context_n_past(ctx) == 0);
    int32_t bad = info.n_vocab;
    CHECK(imp_prefill(ctx, &bad, 1) == IMP_ERR_INVALID_ARG);
    CHECK(imp_generate(ctx, NULL, &gp, out1, sizeof out1, &l1) == IMP_ERR_INVALID_ARG);
    ImpGenerateParams badp = gp;
    badp.top_p = -1.0f;
    CHECK(imp_generate(ctx, prompt, &badp, out1, sizeof out1, &l1) == IMP_ERR_INVALID_ARG);
    CHECK(strstr(imp_context_last_error(ctx), "top_p") != NULL);
    CHECK(imp_model_load("/nonexistent.gguf", IMP_FORMAT_GGUF, &(ImpModel){NULL}) == IMP_ERR_IO);
    /* gpu_layers: below -1 is refused with a message (on any device); on the CPU any count is
     * accepted and ignored */
    CHECK(imp_config_default().gpu_layers == IMP_GPU_LAYERS_ALL);
    ImpConfig badc = cfg;
    badc.gpu_layers = -2;
    ImpContext bad_ctx = NULL;
    CHECK(imp_context_create(model, &badc, &bad_ctx) == IMP_ERR_INVALID_ARG && bad_ctx == NULL);
    badc.device = IMP_DEVICE_CPU;
    CHECK(imp_context_create(model, &badc, &bad_ctx) == IMP_ERR_INVALID_ARG && bad_ctx == NULL);
    badc.gpu_layers = 1;
    CHECK(imp_context_create(model, &badc, &bad_ctx) == IMP_OK && imp_context_device(bad_ctx) == IMP_DEVICE_CPU);
    imp_context_free(bad_ctx);
    /* generation stops at the context's end with a reason, not an error */
    gp.max_tokens = 200;
    CHECK(imp_generate(ctx, prompt, &gp, out1, sizeof out1, &l1) == IMP_OK);
    CHECK(imp_context_stats(ctx, &st) == IMP_OK);
    CHECKF(st.stop == IMP_STOP_CONTEXT_FULL || st.stop == IMP_STOP_EOG, "stop reason %d", (int)st.stop);

    imp_context_free(ctx);
    imp_model_free(model);
    return imp_test_finish("helper_api");
}
