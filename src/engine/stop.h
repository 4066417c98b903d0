/*
 * Stop strings: text-level matching across token boundaries for a generation loop.
 *
 *     imp_stop *st;
 *     imp_stop_create(stops, n_stops, &st, &err);
 *     per token:  piece = (the token's text, e.g. from imp_detok_stream_push)
 *                 imp_stop_push(st, piece, len, &shown, &stopped, &err);
 *                 (show / stream the bytes appended to `shown`); if (stopped) break;
 *     at the end (length limit, EOS): imp_stop_flush(st, &shown, &err);
 *     imp_stop_free(st);
 *
 * The matcher holds back the tail of the text that could still be the beginning of a stop
 * string (at most the longest stop string's length minus one bytes) and lets everything before
 * it through. When a stop string completes, the text shown ends right before it and the stop
 * string and everything after it are dropped. If several stop strings complete within the same
 * push, the one that starts first wins (what llama.cpp's server does per token).
 *
 * Matching is on bytes. With valid UTF-8 stop strings and whole UTF-8 text pushed (the
 * streaming detokenizer's output), what comes out is whole UTF-8 too: a held-back tail starts
 * where a stop string would, at a character boundary.
 *
 * One matcher per sequence; calls on one must not overlap. Nothing is global.
 */
#ifndef IMP_ENGINE_STOP_H
#define IMP_ENGINE_STOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "tokenizer/tokenizer.h"

typedef struct imp_stop imp_stop;

/* Makes a matcher for stops[0, n) (NUL-terminated byte strings, copied). n may be 0 (then
 * everything passes straight through). Empty or NULL strings, more than 1024 strings, one longer
 * than 64 KiB or more than 1 MiB in all are refused (IMP_ERR_INVALID_ARG, the message names which).
 * *out is NULL on failure. Free with imp_stop_free. */
imp_status imp_stop_create(const char *const *stops, int32_t n, imp_stop **out, imp_error *err);

void imp_stop_free(imp_stop *s); /* NULL is fine */

/* Forgets the held text and a past match: ready for a new generation. */
void imp_stop_reset(imp_stop *s);

/* Feeds the next n bytes of generated text. Appends to *out the bytes that are now safe to show
 * (held text first, then new) and sets *stopped when a stop string has matched: the text
 * appended then ends right before it and the rest is dropped. After a match every push appends
 * nothing and sets *stopped again, until reset. On failure (IMP_ERR_NOMEM from growing out)
 * neither *out nor the matcher has changed. */
imp_status imp_stop_push(imp_stop *s, const char *text, size_t n, imp_bytes *out, bool *stopped,
                         imp_error *err);

/* End of generation without a match: appends the held-back bytes to *out (nothing after a
 * match) and forgets them. */
imp_status imp_stop_flush(imp_stop *s, imp_bytes *out, imp_error *err);

/* Which stop string matched (its index in the create array), or -1 while none has. */
int32_t imp_stop_which(const imp_stop *s);

/* Bytes currently held back. */
size_t imp_stop_held(const imp_stop *s);

#endif
