/*
 * Pre-tokenizers of byte-level BPE vocabularies: the regexes that cut text into words before
 * merges run, chosen by the GGUF's `tokenizer.ggml.pre`. One table row per name; PCRE2 (UTF +
 * Unicode properties, JIT-compiled) runs them, so the models' original tokenizer.json patterns
 * are used as written.
 */
#ifndef IMP_TOKENIZER_PRETOK_H
#define IMP_TOKENIZER_PRETOK_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

typedef struct imp_pretok imp_pretok;

/* A piece of the input: bytes [off, off + len). */
typedef struct imp_span {
    size_t off, len;
} imp_span;

/* A growable list of spans (owned by the caller; free(list->v) when done). */
typedef struct imp_span_list {
    imp_span *v;
    size_t n, cap;
} imp_span_list;

imp_status imp_span_push(imp_span_list *l, size_t off, size_t len, imp_error *err);

/* Compiles the pre-tokenizer for `name` (tokenizer.ggml.pre; NULL or "" = default). An unknown
 * name falls back to the default row and sets *fell_back (the caller logs a warning naming it).
 * *row_name is the table row used; *ignore_merges is that row's llama3-style flag. */
imp_status imp_pretok_create(const char *name, imp_pretok **out, const char **row_name,
                             bool *ignore_merges, bool *fell_back, imp_error *err);

void imp_pretok_free(imp_pretok *p);

/* Cuts text[0..n) into words, appended to *out in order (offsets relative to text); the words
 * cover the text exactly. Each pattern of the row refines the pieces the previous one made:
 * matches and the gaps between them both become pieces. Invalid UTF-8 never
 * matches a pattern and ends up in the words between matches. Thread-safe (per-call state). */
imp_status imp_pretok_split(const imp_pretok *p, const char *text, size_t n, imp_span_list *out,
                            imp_error *err);

/* Pattern i of the row (PCRE2 syntax), NULL past the last. */
const char *imp_pretok_pattern(const imp_pretok *p, int i);

/* Names of every table row, for docs and tests; NULL-terminated. */
extern const char *const imp_pretok_names[];

#endif
