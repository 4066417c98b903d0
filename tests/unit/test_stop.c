/*
 * Stop strings (src/engine/stop.c).
 * 1. Hand cases: a stop split over 2 and 3 pushes, a false partial prefix released, overlapping
 *    prefixes, two stops completing in one push (the earlier start wins) or in two (the first
 *    completed wins), UTF-8 split inside characters, flush of the held tail, a stop at the very
 *    start, pushes after a stop, reset, no stops at all, invalid arguments.
 * 2. Random texts over a 3-letter alphabet with random stops and split points against a naive
 *    reference: after each push the output is exactly the accumulated text minus the longest
 *    suffix that is a proper prefix of a stop, or, on a stop, the text before the earliest
 *    occurrence of any stop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/stop.h"
#include "testutil.h"

static imp_stop *make(const char *const *stops, int32_t n) {
    imp_stop *s = NULL;
    imp_error err;
    imp_error_clear(&err);
    CHECKF(imp_stop_create(stops, n, &s, &err) == IMP_OK && s, "create: %s", err.msg);
    return s;
}

/* Pushes text; checks what the push appended and the stopped flag. */
static void push(imp_stop *s, imp_bytes *out, const char *text, const char *want_new,
                 bool want_stop, const char *what) {
    size_t n0 = out->n;
    bool stopped = !want_stop;
    imp_error err;
    imp_error_clear(&err);
    CHECKF(imp_stop_push(s, text, strlen(text), out, &stopped, &err) == IMP_OK, "%s: %s", what,
           err.msg);
    size_t got = out->n - n0;
    CHECKF(got == strlen(want_new) && !memcmp(out->p + n0, want_new, got),
           "%s: appended '%.*s', want '%s'", what, (int)got, out->p ? out->p + n0 : "", want_new);
    CHECKF(stopped == want_stop, "%s: stopped %d", what, stopped);
}

static void flush(imp_stop *s, imp_bytes *out, const char *want_new, const char *what) {
    size_t n0 = out->n;
    imp_error err;
    CHECK(imp_stop_flush(s, out, &err) == IMP_OK);
    size_t got = out->n - n0;
    CHECKF(got == strlen(want_new) && !memcmp(out->p + n0, want_new, got),
           "%s: flushed '%.*s', want '%s'", what, (int)got, out->p ? out->p + n0 : "", want_new);
}

static void test_cases(void) {
    imp_bytes out = {0};
    const char *stop1[] = {"STOP"};
    imp_stop *s = make(stop1, 1);

    /* split over two pushes */
    push(s, &out, "hello ST", "hello ", false, "2 pushes a");
    CHECK(imp_stop_held(s) == 2);
    push(s, &out, "OP more", "", true, "2 pushes b");
    CHECK(imp_stop_which(s) == 0 && !strcmp(out.p, "hello "));
    push(s, &out, "after", "", true, "after a stop");
    flush(s, &out, "", "flush after a stop");

    /* split over three pushes */
    imp_stop_reset(s);
    out.n = 0;
    CHECK(imp_stop_which(s) == -1);
    push(s, &out, "ab S", "ab ", false, "3 pushes a");
    push(s, &out, "TO", "", false, "3 pushes b");
    CHECK(imp_stop_held(s) == 3);
    push(s, &out, "P!", "", true, "3 pushes c");

    /* a false partial, released when it stops matching */
    imp_stop_reset(s);
    out.n = 0;
    push(s, &out, "x ST", "x ", false, "false partial a");
    push(s, &out, "ARt", "STARt", false, "false partial b");
    push(s, &out, "S", "", false, "false partial c");
    push(s, &out, "SST", "SS", false, "false partial d"); /* "SSST": only "ST" can still start it */
    flush(s, &out, "ST", "flush releases the tail");
    CHECK(!strcmp(out.p, "x STARtSSST"));
    CHECK(imp_stop_held(s) == 0);

    /* a stop at the very start, whole and split */
    imp_stop_reset(s);
    out.n = 0;
    push(s, &out, "STOP and more", "", true, "stop at the start");
    CHECK(out.n == 0);
    imp_stop_reset(s);
    push(s, &out, "ST", "", false, "split stop at the start a");
    push(s, &out, "OP", "", true, "split stop at the start b");
    CHECK(out.n == 0);
    /* the stop inside one push, text after it dropped */
    imp_stop_reset(s);
    push(s, &out, "abcSTOPdef", "abc", true, "inside one push");
    imp_stop_free(s);

    /* overlapping prefixes: "abcd" and "abx" share "ab" */
    const char *stop2[] = {"abcd", "abx"};
    s = make(stop2, 2);
    out.n = 0;
    push(s, &out, "zab", "z", false, "overlap a");
    push(s, &out, "c", "", false, "overlap b (abc held)");
    CHECK(imp_stop_held(s) == 3);
    push(s, &out, "x", "abcx", false, "overlap c (neither)");
    push(s, &out, "ab", "", false, "overlap d");
    push(s, &out, "x", "", true, "overlap e (abx)");
    CHECK(imp_stop_which(s) == 1);
    imp_stop_free(s);

    /* a stop that is a suffix of a longer one's prefix: "aab" and "ab" in "aaab" */
    const char *stop3[] = {"ab", "aab"};
    s = make(stop3, 2);
    out.n = 0;
    push(s, &out, "aaab", "a", true, "earliest start wins");
    CHECK(imp_stop_which(s) == 1);
    imp_stop_free(s);

    /* "bc" inside "abcd": both complete in one push -> the earlier start ("abcd"); byte by
     * byte, "bc" completes first and ends the text */
    const char *stop4[] = {"abcd", "bc"};
    s = make(stop4, 2);
    out.n = 0;
    push(s, &out, "xabcd", "x", true, "nested, one push");
    CHECK(imp_stop_which(s) == 0);
    imp_stop_reset(s);
    out.n = 0;
    push(s, &out, "xab", "x", false, "nested, bytes a");
    push(s, &out, "c", "a", true, "nested, bytes b");
    CHECK(imp_stop_which(s) == 1);
    imp_stop_free(s);

    /* UTF-8: the stop "—end" (E2 80 94) split inside its first character; a false start inside
     * a character ("é!" vs "é ok") releases the whole character */
    const char *stop5[] = {"\xE2\x80\x94"
                           "end",
                           "\xC3\xA9!"};
    s = make(stop5, 2);
    out.n = 0;
    push(s, &out, "Hello ", "Hello ", false, "utf8 a");
    push(s, &out, "\xE2\x80", "", false, "utf8 b");
    push(s, &out,
         "\x94"
         "e",
         "", false, "utf8 c");
    push(s, &out, "nd tail", "", true, "utf8 d");
    CHECK(!strcmp(out.p, "Hello "));
    imp_stop_reset(s);
    out.n = 0;
    push(s, &out, "caf\xC3", "caf", false, "utf8 e");
    push(s, &out, "\xA9", "", false, "utf8 f");
    push(s, &out, " ok \xE2\x80\x94", "\xC3\xA9 ok ", false, "utf8 g");
    push(s, &out, "\xE2\x80\x94", "\xE2\x80\x94", false, "utf8 h");
    flush(s, &out, "\xE2\x80\x94", "utf8 flush");
    CHECK(!strcmp(out.p, "caf\xC3\xA9 ok \xE2\x80\x94\xE2\x80\x94"));
    imp_stop_free(s);

    /* no stops: everything passes */
    s = make(NULL, 0);
    out.n = 0;
    push(s, &out, "anything", "anything", false, "no stops");
    CHECK(imp_stop_held(s) == 0);
    imp_stop_free(s);

    /* invalid */
    imp_error err;
    imp_stop *bad = (imp_stop *)1;
    const char *e1[] = {"ok", ""};
    CHECK(imp_stop_create(e1, 2, &bad, &err) == IMP_ERR_INVALID_ARG && !bad &&
          strstr(err.msg, "1 is empty"));
    const char *e2[] = {NULL};
    CHECK(imp_stop_create(e2, 1, &bad, &err) == IMP_ERR_INVALID_ARG && strstr(err.msg, "NULL"));
    CHECK(imp_stop_create(NULL, 1, &bad, &err) == IMP_ERR_INVALID_ARG);
    CHECK(imp_stop_create(e1, -1, &bad, &err) == IMP_ERR_INVALID_ARG);
    s = make(stop1, 1);
    bool st;
    CHECK(imp_stop_push(s, NULL, 1, &out, &st, &err) == IMP_ERR_INVALID_ARG);
    CHECK(imp_stop_push(s, "x", 1, NULL, &st, &err) == IMP_ERR_INVALID_ARG);
    CHECK(imp_stop_push(s, NULL, 0, &out, &st, &err) == IMP_OK && !st);
    imp_stop_free(s);
    imp_stop_free(NULL);
    free(out.p);
}

/* ---- random texts against a naive reference ------------------------------------------------ */

static size_t find(const char *t, size_t n, const char *p) {
    size_t m = strlen(p);
    for (size_t i = 0; i + m <= n; i++)
        if (!memcmp(t + i, p, m)) return i;
    return (size_t)-1;
}

static void test_random(void) {
    imp_test_rng rng = {2024};
    int trials = 3000, mismatches = 0;
    for (int t = 0; t < trials; t++) {
        char stops_buf[4][8];
        const char *stops[4];
        int n_stops = 1 + (int)(imp_test_rng_u64(&rng) % 4);
        for (int i = 0; i < n_stops; i++) {
            int len = 1 + (int)(imp_test_rng_u64(&rng) % 5);
            for (int j = 0; j < len; j++)
                stops_buf[i][j] = (char)('a' + imp_test_rng_u64(&rng) % 3);
            stops_buf[i][len] = 0;
            stops[i] = stops_buf[i];
        }
        char text[64];
        int n_text = (int)(imp_test_rng_u64(&rng) % 40);
        for (int j = 0; j < n_text; j++) text[j] = (char)('a' + imp_test_rng_u64(&rng) % 3);
        imp_stop *s = make(stops, n_stops);
        imp_bytes out = {0};
        imp_error err;
        bool stopped = false, bad = false;
        int at = 0;
        while (at < n_text && !stopped && !bad) {
            int len = (int)(imp_test_rng_u64(&rng) % 5); /* 0..4 bytes, empty pushes too */
            if (len > n_text - at) len = n_text - at;
            if (imp_stop_push(s, text + at, (size_t)len, &out, &stopped, &err) != IMP_OK)
                bad = true;
            at += len;
            /* reference over text[0, at) */
            size_t first = (size_t)-1;
            for (int i = 0; i < n_stops; i++) {
                size_t f = find(text, (size_t)at, stops[i]);
                if (f < first) first = f;
            }
            size_t want_n;
            if (first != (size_t)-1) {
                want_n = first;
                bad |= !stopped;
            } else {
                size_t hold = 0; /* longest suffix that is a proper prefix of a stop */
                for (int i = 0; i < n_stops; i++) {
                    size_t m = strlen(stops[i]);
                    for (size_t h = m - 1; h > hold; h--) {
                        if (h <= (size_t)at && !memcmp(text + at - h, stops[i], h)) {
                            hold = h;
                            break;
                        }
                    }
                }
                want_n = (size_t)at - hold;
                bad |= stopped || imp_stop_held(s) != hold;
            }
            bad |= out.n != want_n || (want_n && memcmp(out.p, text, want_n));
        }
        if (!stopped && !bad) {
            imp_stop_flush(s, &out, &err);
            bad |= out.n != (size_t)n_text || (n_text && memcmp(out.p, text, (size_t)n_text));
        }
        if (bad && mismatches++ < 5) {
            fprintf(stderr, "  random %d: text '%.*s' stops", t, n_text, text);
            for (int i = 0; i < n_stops; i++) fprintf(stderr, " '%s'", stops[i]);
            fprintf(stderr, " -> '%.*s'\n", (int)out.n, out.p ? out.p : "");
        }
        free(out.p);
        imp_stop_free(s);
    }
    CHECKF(mismatches == 0, "%d of %d random cases differ from the reference", mismatches, trials);
}

int main(void) {
    test_cases();
    test_random();
    return imp_test_finish("test_stop");
}
