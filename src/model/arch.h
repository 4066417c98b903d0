/*
 * The architecture table: one row per `general.architecture` imp can run. A row says how the
 * shared forward pass (forward.c) differs for that family; adding an architecture that fits
 * the decoder-only template is adding a row (DESIGN.md, principle 4).
 */
#ifndef IMP_MODEL_ARCH_H
#define IMP_MODEL_ARCH_H

#include <stdbool.h>

#include "backend/backend.h"

typedef struct imp_arch {
    const char *name;         /* general.architecture and the GGUF key prefix               */
    imp_rope_style rope;
    imp_act act;              /* FFN gate activation                                        */
    bool qk_norm;             /* RMSNorm of each q and k head before RoPE (qwen3, gemma3)   */
    bool post_norms;          /* norms after attention and FFN, before the residual (gemma3) */
    bool embd_scale;          /* embeddings multiplied by sqrt(E) (gemma)                   */
    bool norm_one_plus_w;     /* RMSNorm scales by 1 + w; GGUF converters fold the 1 into w,
                                 so no row sets it today                                    */
    int swa_pattern;          /* every n-th layer global, the others sliding-window; 0: none */
    float swa_rope_base;      /* rope base of sliding-window layers (0: the model's)        */
    bool ignore_swa;          /* a sliding_window key is present but not applied (phi3, as
                                 llama.cpp)                                                  */
} imp_arch;

/* The row for an architecture name, or NULL. */
const imp_arch *imp_arch_find(const char *name, size_t len);

/* Comma-separated names of the supported architectures (static storage). */
const char *imp_arch_names(void);

#endif
