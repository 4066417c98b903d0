/*
 * imp-synth presets: real model shapes (from the models' published configs) for synthetic
 * GGUF files with random weights. One row per preset; the tensor list and metadata follow from
 * the row's architecture and flags.
 */
#ifndef IMP_SYNTH_PRESETS_H
#define IMP_SYNTH_PRESETS_H

#include <stdbool.h>

typedef struct imp_synth_preset {
    const char *name;   /* "llama3-8b"                                                 */
    const char *arch;   /* general.architecture: llama, qwen2, qwen3, qwen3moe, gemma3, phi3 */
    const char *about;  /* the model whose shapes these are                            */
    int n_layer;
    int n_embd;
    int n_ff;           /* dense FFN width                                             */
    int n_head;
    int n_head_kv;
    int head_dim;
    int n_vocab;
    int n_ctx;          /* training context                                            */
    float rope_base;
    float rms_eps;
    bool tied;          /* no output.weight (token_embd is reused)                     */
    bool qk_norm;       /* attn_q_norm / attn_k_norm (qwen3, gemma3)                    */
    bool post_norms;    /* post_attention_norm / post_ffw_norm (gemma3)                 */
    bool fused_qkv;     /* attn_qkv + fused gate|up in ffn_up (phi3)                    */
    bool qkv_bias;      /* attn_q/k/v.bias (qwen2)                                      */
    int n_expert;       /* 0 = dense                                                   */
    int n_expert_used;
    int n_ff_exp;       /* expert FFN width                                            */
    int sliding_window; /* gemma3 local layers                                         */
    float rope_linear;  /* rope.scaling.factor (linear), 0 = none                      */
    float llama3_rope;  /* llama-3 rope_freqs factor (0 = no rope_freqs tensor)        */
    int llama3_orig_ctx;
} imp_synth_preset;

const imp_synth_preset *imp_synth_preset_find(const char *name);
int imp_synth_preset_count(void);
const imp_synth_preset *imp_synth_preset_at(int i);

#endif
