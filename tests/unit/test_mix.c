/*
 * Quantization mix rules (src/quant/mix.c).
 * 1. Against real files: for each PyPI model in models/ (Gemma-3-270M Q4_K_M, SmolLM2-135M Q4_1,
 *    both made by llama.cpp's quantizer), applying our mix to every tensor's name and shape must
 *    give exactly the type stored in the file. Skipped per file when absent.
 * 2. Exact expectations on a Llama-3-8B-shaped model (32 layers, GQA 4) for Q4_K_M / Q5_K_M /
 *    Q6_K / Q8_0 / Q4_0, an 8-expert model, tied embeddings, and shape fallbacks.
 */
#include <stdio.h>
#include <string.h>

#include "gguf/gguf.h"
#include "quant/mix.h"
#include "testutil.h"

#ifndef IMP_SOURCE_DIR
#define IMP_SOURCE_DIR "."
#endif

static int check_real_file(const char *rel) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", IMP_SOURCE_DIR, rel);
    imp_gguf *g = NULL;
    imp_error err;
    if (imp_gguf_open(path, &g, &err) != IMP_OK) {
        printf("skip %s: %s (scripts/get-models.sh fetches it)\n", rel, err.msg);
        return 0;
    }
    uint32_t ftype = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_expert = 0;
    imp_gguf_str arch;
    CHECK(imp_gguf_get_str(g, "general.architecture", &arch, &err) == IMP_OK);
    CHECK(imp_gguf_get_u32(g, "general.file_type", &ftype, &err) == IMP_OK);
    char key[128];
    snprintf(key, sizeof key, "%.*s.block_count", (int)arch.len, arch.ptr);
    CHECK(imp_gguf_get_u32(g, key, &n_layer, &err) == IMP_OK);
    snprintf(key, sizeof key, "%.*s.attention.head_count", (int)arch.len, arch.ptr);
    CHECK(imp_gguf_get_u32(g, key, &n_head, &err) == IMP_OK);
    snprintf(key, sizeof key, "%.*s.attention.head_count_kv", (int)arch.len, arch.ptr);
    CHECK(imp_gguf_get_u32(g, key, &n_head_kv, &err) == IMP_OK);
    snprintf(key, sizeof key, "%.*s.expert_count", (int)arch.len, arch.ptr);
    imp_gguf_get_u32(g, key, &n_expert, NULL);
    imp_mix_model m = {(int)n_layer, (int)n_head, (int)n_head_kv, (int)n_expert,
                       imp_gguf_find_tensor(g, "output.weight") < 0, false};
    int mismatches = 0;
    for (int64_t i = 0; i < imp_gguf_n_tensors(g); i++) {
        const imp_gguf_tensor *t = imp_gguf_tensor_at(g, i);
        /* the source was F32/F16/BF16: pretend F16 for 2-D, F32 for 1-D */
        uint32_t src = t->n_dims > 1 ? IMP_TYPE_F16 : IMP_TYPE_F32;
        imp_type want = (imp_type)t->type;
        imp_type got = imp_mix_tensor_type((imp_ftype)ftype, &m, t->name, t->n_dims, t->ne, src);
        if (got != want) {
            if (mismatches++ < 10) {
                fprintf(stderr, "%s: %s: mix gives %s, file has %s\n", rel, t->name,
                        imp_type_name(got), imp_type_name(want));
            }
        }
    }
    CHECKF(mismatches == 0, "%s: %d tensors typed differently", rel, mismatches);
    printf("%s: %s, %lld tensors, %d mismatches\n", rel, imp_ftype_name((imp_ftype)ftype),
           (long long)imp_gguf_n_tensors(g), mismatches);
    imp_gguf_close(g);
    return 1;
}

static imp_type ty(imp_ftype f, const imp_mix_model *m, const char *name, int64_t ne0) {
    int64_t ne[4] = {ne0, 1024, 1, 1};
    return imp_mix_tensor_type(f, m, name, 2, ne, IMP_TYPE_F16);
}

static void check_llama8b(void) {
    imp_mix_model m = {32, 32, 8, 0, false, false};
    /* llama.cpp's "more bits" layers for 32 layers: 0-3, 28-31, and 6, 9, ..., 27 */
    for (int l = 0; l < 32; l++) {
        bool more = l < 4 || l >= 28 || (l - 4) % 3 == 2;
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        CHECKF(ty(IMP_FTYPE_Q4_K_M, &m, name, 4096) == (more ? IMP_TYPE_Q6_K : IMP_TYPE_Q4_K), "%s", name);
        CHECK(ty(IMP_FTYPE_Q5_K_M, &m, name, 4096) == (more ? IMP_TYPE_Q6_K : IMP_TYPE_Q5_K));
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        CHECKF(ty(IMP_FTYPE_Q4_K_M, &m, name, 14336) == (more ? IMP_TYPE_Q6_K : IMP_TYPE_Q4_K), "%s", name);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", l);
        CHECK(ty(IMP_FTYPE_Q4_K_M, &m, name, 4096) == IMP_TYPE_Q4_K);
    }
    CHECK(ty(IMP_FTYPE_Q4_K_M, &m, "output.weight", 4096) == IMP_TYPE_Q6_K);
    CHECK(ty(IMP_FTYPE_Q4_K_M, &m, "token_embd.weight", 4096) == IMP_TYPE_Q4_K);
    CHECK(ty(IMP_FTYPE_Q8_0, &m, "output.weight", 4096) == IMP_TYPE_Q8_0);
    CHECK(ty(IMP_FTYPE_Q8_0, &m, "blk.0.attn_v.weight", 4096) == IMP_TYPE_Q8_0);
    CHECK(ty(IMP_FTYPE_Q4_0, &m, "output.weight", 4096) == IMP_TYPE_Q6_K);
    CHECK(ty(IMP_FTYPE_Q4_0, &m, "blk.3.ffn_down.weight", 14336) == IMP_TYPE_Q4_0);
    CHECK(ty(IMP_FTYPE_Q6_K, &m, "blk.3.ffn_up.weight", 4096) == IMP_TYPE_Q6_K);
    CHECK(ty(IMP_FTYPE_F16, &m, "output.weight", 4096) == IMP_TYPE_F16);
    CHECK(ty(IMP_FTYPE_Q2_K, &m, "blk.5.attn_v.weight", 4096) == IMP_TYPE_Q4_K); /* GQA 4 */
    CHECK(ty(IMP_FTYPE_Q2_K, &m, "blk.5.ffn_down.weight", 14336) == IMP_TYPE_Q3_K);
    CHECK(ty(IMP_FTYPE_Q3_K_M, &m, "blk.1.attn_v.weight", 4096) == IMP_TYPE_Q5_K);
    CHECK(ty(IMP_FTYPE_Q3_K_M, &m, "blk.2.attn_v.weight", 4096) == IMP_TYPE_Q4_K);

    /* tied embeddings take the output's type */
    imp_mix_model tied = m;
    tied.tied_embeddings = true;
    CHECK(ty(IMP_FTYPE_Q4_K_M, &tied, "token_embd.weight", 4096) == IMP_TYPE_Q6_K);

    /* 1-D, norms and routers are never quantized */
    int64_t ne1[4] = {4096, 1, 1, 1};
    CHECK(imp_mix_tensor_type(IMP_FTYPE_Q4_K_M, &m, "blk.0.attn_norm.weight", 1, ne1, IMP_TYPE_F16) == IMP_TYPE_F32);
    CHECK(ty(IMP_FTYPE_Q4_K_M, &m, "blk.0.ffn_gate_inp.weight", 4096) == IMP_TYPE_F16);

    /* 8 experts (Mixtral): attn_v/attn_k at Q8_0, attn_output Q5_K */
    imp_mix_model moe = {32, 32, 8, 8, false, false};
    CHECK(ty(IMP_FTYPE_Q4_K_M, &moe, "blk.7.attn_v.weight", 4096) == IMP_TYPE_Q8_0);
    CHECK(ty(IMP_FTYPE_Q4_K_M, &moe, "blk.7.attn_k.weight", 4096) == IMP_TYPE_Q8_0);
    CHECK(ty(IMP_FTYPE_Q4_K_M, &moe, "blk.7.attn_output.weight", 4096) == IMP_TYPE_Q5_K);

    /* fallbacks for rows a 256-block cannot hold */
    CHECK(ty(IMP_FTYPE_Q4_K_M, &m, "blk.5.attn_q.weight", 1152) == IMP_TYPE_Q5_0);
    CHECK(ty(IMP_FTYPE_Q5_K_M, &m, "blk.5.attn_q.weight", 1152) == IMP_TYPE_Q5_1);
    CHECK(ty(IMP_FTYPE_Q6_K, &m, "blk.5.attn_q.weight", 1152) == IMP_TYPE_Q8_0);
    CHECK(ty(IMP_FTYPE_IQ4_XS, &m, "blk.5.attn_q.weight", 1152) == IMP_TYPE_IQ4_NL);
    CHECK(ty(IMP_FTYPE_Q4_K_M, &m, "blk.5.attn_q.weight", 100) == IMP_TYPE_F16);

    imp_ftype f;
    CHECK(imp_ftype_from_name("q4_k_m", &f) && f == IMP_FTYPE_Q4_K_M);
    CHECK(imp_ftype_from_name("Q8_0", &f) && f == IMP_FTYPE_Q8_0);
    CHECK(!imp_ftype_from_name("Q9_X", &f));
}

int main(void) {
    check_llama8b();
    check_real_file("models/gemma-3-270m-q4_k_m.gguf");
    check_real_file("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    return imp_test_finish("test_mix");
}
