/* The rows of the architecture table (see arch.h for what each field changes). */
#include "model/arch.h"

#include <string.h>

static const imp_arch k_archs[] = {
    /* Llama 2/3.x, Mistral, SmolLM2, TinyLlama, DeepSeek-R1-Distill-Llama */
    {.name = "llama", .rope = IMP_ROPE_NORM, .act = IMP_ACT_SILU},
    /* Qwen2 / Qwen2.5, DeepSeek-R1-Distill-Qwen: q/k/v biases come from the file */
    {.name = "qwen2", .rope = IMP_ROPE_NEOX, .act = IMP_ACT_SILU},
    {.name = "qwen3", .rope = IMP_ROPE_NEOX, .act = IMP_ACT_SILU, .qk_norm = true},
    {.name = "gemma3", .rope = IMP_ROPE_NEOX, .act = IMP_ACT_GELU_TANH, .qk_norm = true, .post_norms = true,
     .embd_scale = true, .swa_pattern = 6, .swa_rope_base = 10000.0f},
    /* Phi-3 / Phi-3.5 / Phi-4-mini (fused attn_qkv and gate|up are found by the loader, as
     * for any row) */
    {.name = "phi3", .rope = IMP_ROPE_NEOX, .act = IMP_ACT_SILU, .ignore_swa = true},
};

const imp_arch *imp_arch_find(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof k_archs / sizeof k_archs[0]; i++) {
        if (strlen(k_archs[i].name) == len && memcmp(k_archs[i].name, name, len) == 0) return &k_archs[i];
    }
    return NULL;
}

const char *imp_arch_names(void) { return "llama, qwen2, qwen3, gemma3, phi3"; }
