/*
 * The preset table. Shapes are those of the public configs of each model (hidden size, layers,
 * heads, KV heads, head dim, FFN width, vocabulary, rope base); tiny-* presets are small models
 * of each architecture for tests (row lengths multiples of 256 so every quant type applies).
 */
#include "presets.h"

#include <string.h>

#define L3ROPE(f, ctx) .llama3_rope = f, .llama3_orig_ctx = ctx

static const imp_synth_preset k_presets[] = {
    /* name, arch, about, layers, embd, ff, heads, kv, head_dim, vocab, ctx, rope base, eps */
    {"tiny", "llama", "tiny llama (tests)", 2, 256, 512, 4, 2, 64, 512, 2048, 10000.0f, 1e-5f},
    {"tiny-qwen2", "qwen2", "tiny qwen2 (tests)", 2, 256, 512, 4, 2, 64, 512, 2048, 1e6f, 1e-6f,
     .qkv_bias = true},
    {"tiny-qwen3", "qwen3", "tiny qwen3 (tests)", 2, 256, 512, 4, 2, 64, 512, 2048, 1e6f, 1e-6f,
     .tied = true, .qk_norm = true},
    {"tiny-gemma3", "gemma3", "tiny gemma3 (tests)", 6, 256, 512, 4, 1, 64, 512, 2048, 1e6f, 1e-6f,
     .tied = true, .qk_norm = true, .post_norms = true, .sliding_window = 16, .rope_linear = 8.0f},
    {"tiny-llama3", "llama", "tiny llama3 with rope_freqs (tests)", 2, 256, 512, 4, 1, 64, 512, 2048, 500000.0f,
     1e-5f, .tied = true, L3ROPE(8.0f, 256)},
    {"tiny-phi3", "phi3", "tiny phi3 (tests)", 2, 256, 512, 4, 4, 64, 512, 2048, 10000.0f, 1e-5f,
     .fused_qkv = true},
    {"tiny-moe", "qwen3moe", "tiny qwen3moe (tests)", 2, 256, 512, 4, 2, 64, 512, 2048, 1e6f, 1e-6f,
     .qk_norm = true, .n_expert = 8, .n_expert_used = 2, .n_ff_exp = 256},
    {"llama3-1b", "llama", "Llama-3.2-1B", 16, 2048, 8192, 32, 8, 64, 128256, 131072, 500000.0f,
     1e-5f, .tied = true, L3ROPE(32.0f, 8192)},
    {"llama3-8b", "llama", "Llama-3.1-8B", 32, 4096, 14336, 32, 8, 128, 128256, 131072, 500000.0f,
     1e-5f, L3ROPE(8.0f, 8192)},
    {"mistral-7b", "llama", "Mistral-7B-v0.3", 32, 4096, 14336, 32, 8, 128, 32768, 32768, 1e6f, 1e-5f},
    {"qwen2.5-7b", "qwen2", "Qwen2.5-7B", 28, 3584, 18944, 28, 4, 128, 152064, 32768, 1e6f, 1e-6f,
     .qkv_bias = true},
    {"qwen3-0.6b", "qwen3", "Qwen3-0.6B", 28, 1024, 3072, 16, 8, 128, 151936, 40960, 1e6f, 1e-6f,
     .tied = true, .qk_norm = true},
    {"qwen3-4b", "qwen3", "Qwen3-4B", 36, 2560, 9728, 32, 8, 128, 151936, 40960, 1e6f, 1e-6f,
     .tied = true, .qk_norm = true},
    {"qwen3-8b", "qwen3", "Qwen3-8B", 36, 4096, 12288, 32, 8, 128, 151936, 40960, 1e6f, 1e-6f,
     .qk_norm = true},
    {"gemma3-1b", "gemma3", "Gemma-3-1B", 26, 1152, 6912, 4, 1, 256, 262144, 32768, 1e6f, 1e-6f,
     .tied = true, .qk_norm = true, .post_norms = true, .sliding_window = 512},
    {"gemma3-12b", "gemma3", "Gemma-3-12B", 48, 3840, 15360, 16, 8, 256, 262208, 131072, 1e6f,
     1e-6f, .tied = true, .qk_norm = true, .post_norms = true, .sliding_window = 1024,
     .rope_linear = 8.0f},
    {"phi3-mini", "phi3", "Phi-3-mini-4k", 32, 3072, 8192, 32, 32, 96, 32064, 4096, 10000.0f,
     1e-5f, .fused_qkv = true},
    {"qwen3-30b-a3b", "qwen3moe", "Qwen3-30B-A3B", 48, 2048, 6144, 32, 4, 128, 151936, 40960, 1e6f,
     1e-6f, .qk_norm = true, .n_expert = 128, .n_expert_used = 8, .n_ff_exp = 768},
    {"mixtral-8x7b", "llama", "Mixtral-8x7B", 32, 4096, 14336, 32, 8, 128, 32000, 32768, 1e6f,
     1e-5f, .n_expert = 8, .n_expert_used = 2, .n_ff_exp = 14336},
};

int imp_synth_preset_count(void) { return (int)(sizeof k_presets / sizeof k_presets[0]); }

const imp_synth_preset *imp_synth_preset_at(int i) {
    return i >= 0 && i < imp_synth_preset_count() ? &k_presets[i] : NULL;
}

const imp_synth_preset *imp_synth_preset_find(const char *name) {
    for (int i = 0; i < imp_synth_preset_count(); i++) {
        if (strcmp(k_presets[i].name, name) == 0) return &k_presets[i];
    }
    return NULL;
}
