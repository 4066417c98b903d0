/*
 * Stop strings (see stop.h): one Knuth-Morris-Pratt automaton per stop string, fed byte by byte
 * as text arrives. An automaton's state is the length of the longest suffix of the text so far
 * that is a proper prefix of its string, so the largest state over all strings is exactly how
 * many trailing bytes must be held back; everything before them can never be part of a match.
 * A push costs O(bytes x stop strings); held text is never rescanned.
 */
#include "engine/stop.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

#define IMP_STOP_MAX_N     1024
#define IMP_STOP_MAX_LEN   (64u << 10)
#define IMP_STOP_MAX_TOTAL (1u << 20)

/* strlen that stops looking at max + 1 (strnlen is POSIX, not C11). */
static size_t bounded_len(const char *s, size_t max) {
    size_t n = 0;
    while (n <= max && s[n]) n++;
    return n;
}

struct imp_stop {
    int32_t n;
    char *text;    /* the strings, back to back: string i at text + off[i], len[i] bytes */
    int32_t *fail; /* [total]: KMP prefix function of each string, at the same offsets    */
    uint32_t *off, *len;
    uint32_t max_len;
    int32_t *state; /* [n] matched length of each string (always < its length)             */
    int32_t *next;  /* [n] states while a push is computed (committed when it succeeds)     */
    char *hold;     /* [max_len] the held-back tail, n_hold bytes (= max of state)          */
    size_t n_hold;
    bool stopped;
    int32_t which; /* string that matched, -1 none                                         */
};

imp_status imp_stop_create(const char *const *stops, int32_t n, imp_stop **out, imp_error *err) {
    if (!out) return imp_error_set(err, IMP_ERR_INVALID_ARG, "stop: NULL out");
    *out = NULL;
    if (n < 0 || n > IMP_STOP_MAX_N || (n > 0 && !stops))
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "stop: %d stop strings (at most %d)", n,
                             IMP_STOP_MAX_N);
    size_t total = 0, max_len = 1;
    for (int32_t i = 0; i < n; i++) {
        if (!stops[i] || !stops[i][0])
            return imp_error_set(err, IMP_ERR_INVALID_ARG, "stop: stop string %d is %s", i,
                                 stops[i] ? "empty" : "NULL");
        size_t len = bounded_len(stops[i], IMP_STOP_MAX_LEN);
        if (len > IMP_STOP_MAX_LEN)
            return imp_error_set(err, IMP_ERR_INVALID_ARG,
                                 "stop: stop string %d is longer than %u bytes", i,
                                 IMP_STOP_MAX_LEN);
        total += len;
        if (total > IMP_STOP_MAX_TOTAL)
            return imp_error_set(err, IMP_ERR_INVALID_ARG,
                                 "stop: the stop strings exceed %u bytes in all",
                                 IMP_STOP_MAX_TOTAL);
        max_len = IMP_MAX(max_len, len);
    }
    imp_stop *s = calloc(1, sizeof *s);
    if (!s) return imp_error_set(err, IMP_ERR_NOMEM, "stop: out of memory");
    s->n = n;
    s->max_len = (uint32_t)max_len;
    s->text = malloc(total ? total : 1);
    s->fail = imp_malloc_array(total, sizeof *s->fail);
    s->off = imp_malloc_array((size_t)n, sizeof *s->off);
    s->len = imp_malloc_array((size_t)n, sizeof *s->len);
    s->state = imp_calloc((size_t)n, sizeof *s->state);
    s->next = imp_calloc((size_t)n, sizeof *s->next);
    s->hold = malloc(max_len);
    if (!s->text || !s->fail || !s->off || !s->len || !s->state || !s->next || !s->hold) {
        imp_stop_free(s);
        return imp_error_set(err, IMP_ERR_NOMEM, "stop: out of memory");
    }
    size_t at = 0;
    for (int32_t i = 0; i < n; i++) {
        const uint32_t len = (uint32_t)strlen(stops[i]);
        const char *p = memcpy(s->text + at, stops[i], len);
        int32_t *f = s->fail + at;
        s->off[i] = (uint32_t)at;
        s->len[i] = len;
        /* f[j]: length of the longest proper prefix of p[0..j] that is also its suffix */
        f[0] = 0;
        for (uint32_t j = 1, k = 0; j < len; j++) {
            while (k > 0 && p[j] != p[k]) k = (uint32_t)f[k - 1];
            if (p[j] == p[k]) k++;
            f[j] = (int32_t)k;
        }
        at += len;
    }
    imp_stop_reset(s);
    *out = s;
    return IMP_OK;
}

void imp_stop_free(imp_stop *s) {
    if (!s) return;
    free(s->text);
    free(s->fail);
    free(s->off);
    free(s->len);
    free(s->state);
    free(s->next);
    free(s->hold);
    free(s);
}

void imp_stop_reset(imp_stop *s) {
    if (!s) return;
    memset(s->state, 0, (size_t)s->n * sizeof *s->state);
    s->n_hold = 0;
    s->stopped = false;
    s->which = -1;
}

int32_t imp_stop_which(const imp_stop *s) {
    return s ? s->which : -1;
}

size_t imp_stop_held(const imp_stop *s) {
    return s ? s->n_hold : 0;
}

/* Appends hold[0, a) then text[0, b) to out, or nothing at all on failure. */
static imp_status emit(const imp_stop *s, size_t a, const char *text, size_t b, imp_bytes *out,
                       imp_error *err) {
    const size_t n0 = out->n;
    imp_status st = imp_bytes_append(out, s->hold, a, err);
    if (st == IMP_OK) st = imp_bytes_append(out, text, b, err);
    if (st != IMP_OK && out->p) {
        out->n = n0;
        out->p[n0] = 0;
    }
    if (st != IMP_OK) imp_error_prefix(err, "stop");
    return st;
}

imp_status imp_stop_push(imp_stop *s, const char *text, size_t n, imp_bytes *out, bool *stopped,
                         imp_error *err) {
    if (!s || !out || !stopped || (n && !text))
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "stop: NULL argument to push");
    *stopped = s->stopped;
    if (s->stopped) return IMP_OK;

    /* Positions below are in the held text followed by the new bytes (hold + text). */
    const size_t total = s->n_hold + n;
    size_t best = SIZE_MAX; /* start of the earliest-starting match */
    int32_t which = -1;
    memcpy(s->next, s->state, (size_t)s->n * sizeof *s->next);
    for (size_t j = 0; j < n; j++) {
        const size_t pos = s->n_hold + j;
        /* a match completing later than here starts after pos + 2 - max_len */
        if (best != SIZE_MAX && pos + 1 >= best + s->max_len) break;
        const char c = text[j];
        for (int32_t i = 0; i < s->n; i++) {
            const char *p = s->text + s->off[i];
            const int32_t *f = s->fail + s->off[i];
            int32_t q = s->next[i];
            if (q < 0) continue; /* matched earlier in this push */
            while (q > 0 && p[q] != c) q = f[q - 1];
            if (p[q] == c) q++;
            if ((uint32_t)q == s->len[i]) {
                size_t start = pos + 1 - s->len[i];
                if (start < best) {
                    best = start;
                    which = i;
                }
                q = -1;
            }
            s->next[i] = q;
        }
    }
    if (which >= 0) {
        size_t a = IMP_MIN(best, s->n_hold);
        imp_status st = emit(s, a, text, best - a, out, err);
        if (st != IMP_OK) return st;
        s->stopped = true;
        s->which = which;
        s->n_hold = 0;
        *stopped = true;
        return IMP_OK;
    }

    size_t h = 0; /* bytes to hold: the longest partial match */
    for (int32_t i = 0; i < s->n; i++) h = IMP_MAX(h, (size_t)s->next[i]);
    const size_t keep = total - h; /* bytes to emit */
    const size_t a = IMP_MIN(keep, s->n_hold);
    imp_status st = emit(s, a, text, keep - a, out, err);
    if (st != IMP_OK) return st;
    if (h > n) {
        memmove(s->hold, s->hold + (s->n_hold - (h - n)), h - n);
        if (n) memcpy(s->hold + (h - n), text, n);
    } else if (h) {
        memcpy(s->hold, text + (n - h), h);
    }
    s->n_hold = h;
    memcpy(s->state, s->next, (size_t)s->n * sizeof *s->state);
    return IMP_OK;
}

imp_status imp_stop_flush(imp_stop *s, imp_bytes *out, imp_error *err) {
    if (!s || !out) return imp_error_set(err, IMP_ERR_INVALID_ARG, "stop: NULL argument to flush");
    if (s->stopped || s->n_hold == 0) return IMP_OK;
    imp_status st = emit(s, s->n_hold, NULL, 0, out, err);
    if (st != IMP_OK) return st;
    s->n_hold = 0;
    memset(s->state, 0, (size_t)s->n * sizeof *s->state);
    return IMP_OK;
}
