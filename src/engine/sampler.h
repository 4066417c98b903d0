/*
 * The token sampler: logits -> one token id, one sampler per sequence.
 *
 *     imp_sampler_params p = imp_sampler_params_default();
 *     p.seed = 1234;
 *     imp_sampler *s;
 *     if (imp_sampler_create(&p, n_vocab, vocab, &s, &err) != IMP_OK) ...;
 *     for (i = 0; i < n_prompt; i++) imp_sampler_accept(s, prompt[i]);
 *     loop: imp_sampler_sample(s, logits, &tok, &err); imp_sampler_accept(s, tok); ...
 *     imp_sampler_free(s);
 *
 * Order (llama.cpp's default chain; docs/sampling.md has the formulas and the differences):
 *   logit bias -> penalties (repeat / frequency / presence over the last repeat_last_n accepted
 *   tokens) -> DRY -> then either
 *     temperature <= 0: argmax (ties: the lowest id), or
 *     mirostat 1 or 2: temperature -> Mirostat (instead of the truncations), or
 *     top-k -> typical -> top-p -> min-p -> temperature -> a draw from the softmax.
 * Every truncation keeps at least one token. Tokens whose logit is -INFINITY (banned, or masked
 * by the model) and NaN logits are never chosen.
 *
 * Determinism: the same params (seed included), the same accepted tokens and the same logits
 * give the same choices. The generator is xoshiro256** seeded through splitmix64, one draw per
 * non-greedy sample: the stream differs from llama.cpp's mt19937, so the same seed does not pick
 * the same tokens as llama.cpp does. Top-p and the draw use the integer masses of
 * backend/sampling.h, so a backend's sample op given imp_sampler_prepare's parameters picks the
 * token this sampler would (sampling on the GPU without downloading the logits).
 *
 * Threads: a sampler is per-sequence state; calls on one sampler must not overlap; different
 * samplers are independent. Nothing is global.
 */
#ifndef IMP_ENGINE_SAMPLER_H
#define IMP_ENGINE_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/sampling.h"
#include "base/status.h"
#include "tokenizer/vocab.h"

typedef struct imp_logit_bias {
    int32_t token;
    float bias; /* added to the logit; -INFINITY bans the token (+INFINITY is refused) */
} imp_logit_bias;

typedef struct imp_sampler_params {
    float temperature;          /* <= 0: greedy (argmax after bias/penalties/DRY)   default 0.8  */
    int32_t top_k;              /* <= 0: off                                         default 40   */
    float top_p;                /* >= 1: off; < 0 refused                            default 0.95 */
    float min_p;                /* <= 0: off; > 1 refused                            default 0.05 */
    float typical_p;            /* >= 1: off; < 0 refused                            default 1.0  */
    float repeat_penalty;       /* 1: off; must be > 0                               default 1.0  */
    int32_t repeat_last_n;      /* history window of the three penalties; 0 off, -1 all; def 64  */
    float frequency_penalty;    /* subtracted count times; 0 off                     default 0    */
    float presence_penalty;     /* subtracted once if present; 0 off                 default 0    */
    float dry_multiplier;       /* 0: DRY off; < 0 refused                           default 0    */
    float dry_base;             /* penalty = multiplier * base^(len - allowed); >= 1 default 1.75 */
    int32_t dry_allowed_length; /* repeats up to this length are free; >= 0          default 2    */
    int32_t dry_penalty_last_n; /* history DRY searches; 0 off, -1 all               default -1   */
    int32_t mirostat;           /* 0 off, 1 Mirostat (v1, m = 100), 2 Mirostat v2   default 0    */
    float mirostat_tau;         /* target surprise in bits; >= 0                     default 5.0  */
    float mirostat_eta;         /* learning rate; >= 0                               default 0.1  */
    uint64_t seed;              /* same seed -> same choices                         default 0    */
    /* [n_logit_bias] token biases, applied in order (entries for one token add up); copied at
     * create. Default: none. */
    const imp_logit_bias *logit_bias;
    int32_t n_logit_bias;
    /* DRY sequence breakers (byte strings, non-empty): a token whose text contains one of them
     * ends a repeat. Read at create (when DRY is on and a vocab is given), not kept. Default:
     * "\n", ":", "\"", "*" (a static array; set n_dry_breakers = 0 for none). */
    const char *const *dry_breakers;
    int32_t n_dry_breakers;
} imp_sampler_params;

typedef struct imp_sampler imp_sampler;

/* The defaults above. */
imp_sampler_params imp_sampler_params_default(void);

/* Checks p and makes a sampler for logits of n_vocab entries. vocab (may be NULL) is used only
 * at create, to find the tokens containing a DRY breaker; without it DRY has no breakers. With
 * vocab, ids >= vocab->n_tokens (padding rows of the output layer) are never breakers.
 * A NULL p means the defaults. Every scratch buffer sampling needs is allocated here.
 * Fails with IMP_ERR_INVALID_ARG (the message names the parameter) or IMP_ERR_NOMEM; *out is
 * NULL then. Free with imp_sampler_free. */
imp_status imp_sampler_create(const imp_sampler_params *p, int32_t n_vocab, const imp_vocab *vocab,
                              imp_sampler **out, imp_error *err);

void imp_sampler_free(imp_sampler *s); /* NULL is fine */

/* Forgets the accepted tokens, reseeds the generator with the params' seed and sets Mirostat's
 * mu back to 2 * tau: the sampler then behaves as a newly created one. */
void imp_sampler_reset(imp_sampler *s);

/* Appends a token to the history the penalties and DRY look at: the prompt's tokens and then
 * each generated one (imp_sampler_sample does not accept its choice by itself). Ids outside
 * [0, n_vocab) are kept as history but never penalized. The history keeps what the longest
 * window needs; with a window of -1 it grows (amortized doubling); if that allocation fails, the
 * oldest half is dropped instead (accept itself never fails). */
void imp_sampler_accept(imp_sampler *s, int32_t token);

/* Picks a token from logits[0..n_vocab) (read only) and writes it to *token. Does not allocate.
 * Fails (IMP_ERR_INVALID_ARG) on NULL arguments or when no token has a logit above -INFINITY
 * after bias, penalties and DRY (everything banned or NaN). */
imp_status imp_sampler_sample(imp_sampler *s, const float *logits, int32_t *token, imp_error *err);

/* imp_sampler_sample with r in [0, 1) in place of the generator's next number (which is not
 * drawn): what a backend given the same r must reproduce. IMP_ERR_INVALID_ARG for r outside
 * [0, 1) and as imp_sampler_sample otherwise. */
imp_status imp_sampler_sample_r(imp_sampler *s, const float *logits, double r, int32_t *token,
                                imp_error *err);

/* For sampling elsewhere (a backend's sample op, backend.h): when s uses only what that op runs
 * (greedy, or temperature with top-k / top-p / min-p; no logit bias, penalties, DRY, typical or
 * Mirostat), fills *p for the next sample, draws r from the generator exactly as
 * imp_sampler_sample would (greedy: none, r = 0) and returns true; the op's token is then the
 * one imp_sampler_sample would have returned. Otherwise returns false and changes nothing.
 * (Unlike imp_sampler_sample, r is drawn even if the row turns out to have no token above
 * -inf; sampling fails then anyway.) */
bool imp_sampler_prepare(imp_sampler *s, imp_sample_params *p);

/* Mirostat's current mu (2 * tau after create/reset; 0 when Mirostat is off). */
float imp_sampler_mirostat_mu(const imp_sampler *s);

/* ---- internal: DRY (sampler_dry.c), used by sampler.c only ------------------------------- */

/* *out = a bitmap [(n_vocab + 7) / 8] of the ids below min(n_vocab, v->n_tokens) whose piece
 * (control tokens rendered) contains one of breakers[0, n) (validated: non-empty). */
imp_status imp_dry_find_breakers(const imp_vocab *v, int32_t n_vocab, const char *const *breakers,
                                 int32_t n, uint8_t **out, imp_error *err);

/* Subtracts DRY penalties from logits[n_vocab] for the window hist[0, w) (oldest first).
 * breaker: bitmap or NULL; z: scratch [w]; best: scratch [n_vocab], all zero (left so). */
void imp_dry_apply(float *logits, int32_t n_vocab, const int32_t *hist, size_t w, float multiplier,
                   float base, int32_t allowed_length, const uint8_t *breaker, int32_t *z,
                   int32_t *best);

#endif
