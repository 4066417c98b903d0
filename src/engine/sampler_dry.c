/*
 * DRY ("don't repeat yourself", after koboldcpp and llama.cpp): a token that would extend a
 * repetition of the text's tail beyond dry_allowed_length tokens gets
 * multiplier * base^(length - allowed_length) subtracted from its logit.
 *
 * Sequence breakers (the subset imp implements): a token whose text contains any breaker string
 * is a breaker. A repetition never reaches back past the newest breaker, and a breaker token is
 * never penalized itself. llama.cpp also treats a token that ends with the start of a breaker
 * followed by the tokens of the breaker's rest as a multi-token breaker; imp does not.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "engine/sampler.h"
#include "tokenizer/tokenizer.h"

static bool contains(const char *s, size_t n, const char *pat, size_t m) {
    if (m > n) return false;
    for (size_t i = 0; i + m <= n; i++)
        if (s[i] == pat[0] && !memcmp(s + i, pat, m)) return true;
    return false;
}

imp_status imp_dry_find_breakers(const imp_vocab *v, int32_t n_vocab, const char *const *breakers,
                                 int32_t n, uint8_t **out, imp_error *err) {
    *out = NULL;
    uint8_t *bits = imp_calloc(((size_t)n_vocab + 7) / 8, 1);
    size_t *lens = imp_malloc_array((size_t)n, sizeof *lens);
    if (!bits || !lens) {
        free(bits);
        free(lens);
        return imp_error_set(err, IMP_ERR_NOMEM, "sampler: out of memory (DRY breakers)");
    }
    for (int32_t j = 0; j < n; j++) lens[j] = strlen(breakers[j]);
    imp_bytes piece = {0};
    imp_status st = IMP_OK;
    const int32_t n_ids = IMP_MIN(n_vocab, v->n_tokens);
    for (int32_t id = 0; id < n_ids && st == IMP_OK; id++) {
        piece.n = 0;
        st = imp_token_piece(v, id, IMP_DETOK_SPECIAL, &piece, err);
        for (int32_t j = 0; st == IMP_OK && j < n; j++) {
            if (contains(piece.p, piece.n, breakers[j], lens[j])) {
                bits[id >> 3] |= (uint8_t)(1u << (id & 7));
                break;
            }
        }
    }
    free(piece.p);
    free(lens);
    if (st != IMP_OK) {
        free(bits);
        imp_error_prefix(err, "sampler: DRY breakers");
        return st;
    }
    *out = bits;
    return IMP_OK;
}

static inline bool is_breaker(const uint8_t *bits, int32_t n_vocab, int32_t id) {
    return bits && id >= 0 && id < n_vocab && ((bits[id >> 3] >> (id & 7)) & 1);
}

/* With r the window newest first (r[0] = the last accepted token):
 *   - rep_limit = the index in r of the newest breaker (w if none): no repetition reaches it;
 *   - z[k] = the longest common prefix of r and r[k..] (r's Z-array, linear time): the tail of
 *     length min(z[k], rep_limit) occurred before, ending at r[k], so r[k - 1] would extend it;
 *   - each such token takes the longest length it would extend; if that is >= allowed_length
 *     and the token is no breaker, it pays multiplier * base^(length - allowed_length), the
 *     exponent clamped where base^e would overflow a float (as llama.cpp does). */
void imp_dry_apply(float *x, int32_t n_vocab, const int32_t *hist, size_t w, float multiplier,
                   float base, int32_t allowed_length, const uint8_t *breaker, int32_t *z,
                   int32_t *best) {
    const size_t allowed = (size_t)allowed_length;
    if (w <= allowed) return;
    const int32_t *h = hist + w - 1;
#define R(i) h[-(ptrdiff_t)(i)]
    size_t rep_limit = w;
    for (size_t i = 0; i < w; i++) {
        if (is_breaker(breaker, n_vocab, R(i))) {
            rep_limit = i;
            break;
        }
    }
    if (rep_limit < allowed) return;

    size_t lo = 0, hi = 0; /* the match [lo, hi) reaching furthest: r[lo, hi) = r[0, hi - lo) */
    for (size_t k = 1; k < w; k++) {
        size_t n = 0;
        if (k < hi) n = IMP_MIN((size_t)z[k - lo], hi - k);
        while (k + n < w && R(n) == R(k + n)) n++;
        z[k] = (int32_t)IMP_MIN(n, (size_t)INT32_MAX);
        if (k + n > hi) {
            lo = k;
            hi = k + n;
        }
    }
    /* best[t] = 1 + the longest repetition t would extend (0: none) */
    for (size_t k = 1; k < w; k++) {
        const size_t len = IMP_MIN((size_t)z[k], rep_limit);
        const int32_t t = R(k - 1);
        if (len >= allowed && t >= 0 && t < n_vocab && (int32_t)len + 1 > best[t])
            best[t] = (int32_t)len + 1;
    }
    const int32_t max_exp = base > 1.000001f ? (int32_t)(88.7228391f / logf(base)) : 0;
    for (size_t k = 1; k < w; k++) {
        const int32_t t = R(k - 1);
        if (t < 0 || t >= n_vocab || best[t] == 0) continue;
        int32_t e = best[t] - 1 - allowed_length;
        if (max_exp > 0 && e > max_exp) e = max_exp;
        if (!is_breaker(breaker, n_vocab, t)) x[t] -= multiplier * (float)pow(base, e);
        best[t] = 0;
    }
#undef R
}
