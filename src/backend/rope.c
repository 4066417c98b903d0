/*
 * RoPE angles, shared by every backend: the CPU computes cos/sin tables with imp_rope_cos_sin;
 * a GPU kernel evaluates the same expressions per element, with the YaRN correction range
 * computed once on the host by imp_rope_yarn_corr.
 */
#include <math.h>

#include "backend/backend.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

void imp_rope_yarn_corr(const imp_rope *r, float *low, float *high, float *mscale) {
    *low = 0.0f;
    *high = 0.0f;
    *mscale = r->attn_factor;
    if (r->ext_factor == 0.0f) return;
    /* Pair i0 = 2i rotates n_ctx_orig * base^(-i0/n_dims) / (2 pi) times over the training
     * context; pairs between the beta_fast and beta_slow rotation counts blend interpolation
     * into extrapolation. */
    const float two_pi = 6.283185307179586f, lb = 2.0f * logf(r->freq_base);
    float d0 = floorf((float)r->n_dims * logf((float)r->n_ctx_orig / (r->beta_fast * two_pi)) / lb);
    float d1 = ceilf((float)r->n_dims * logf((float)r->n_ctx_orig / (r->beta_slow * two_pi)) / lb);
    *low = d0 > 0.0f ? d0 : 0.0f;
    *high = d1 < (float)(r->n_dims - 1) ? d1 : (float)(r->n_dims - 1);
    *mscale *= 1.0f + 0.1f * logf(1.0f / r->freq_scale);
}

void imp_rope_cos_sin(const imp_rope *r, const float *ff, int32_t pos, float *cs) {
    const int half = r->n_dims / 2;
    float low, high, mscale;
    imp_rope_yarn_corr(r, &low, &high, &mscale);
    const float theta_scale = powf(r->freq_base, -2.0f / (float)r->n_dims);
    float theta_base = (float)pos;
    for (int i = 0; i < half; i++) {
        const float extrap = ff ? theta_base / ff[i] : theta_base;
        const float interp = r->freq_scale * extrap;
        float theta = interp;
        if (r->ext_factor != 0.0f) {
            float y = ((float)i - low) / fmaxf(0.001f, high - low);
            const float ramp = 1.0f - fminf(1.0f, fmaxf(0.0f, y));
            const float mix = ramp * r->ext_factor;
            theta = interp * (1.0f - mix) + extrap * mix;
        }
        cs[2 * i] = cosf(theta) * mscale;
        cs[2 * i + 1] = sinf(theta) * mscale;
        theta_base *= theta_scale;
    }
}
