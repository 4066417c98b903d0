/*
 * Text <-> token ids for a loaded vocabulary (vocab.h).
 *
 * Tokenize: special tokens are cut out first as whole strings (user-defined ones always, control
 * and unknown ones only with IMP_TOK_PARSE_SPECIAL, so user content cannot smuggle in control
 * tokens); the text between them goes through the vocabulary's algorithm — SentencePiece merges
 * by score with byte fallback, or byte-level BPE by merge rank after the pre-tokenizer. The
 * semantics follow llama.cpp (src/llama-vocab.cpp), so the same file gives the same ids.
 *
 * Detokenize: ids -> bytes. Control tokens render only with IMP_DETOK_SPECIAL. The streaming
 * decoder emits only complete, valid UTF-8, holding an unfinished sequence back until the next
 * token completes it.
 *
 * All functions take the vocab const and keep their state in the caller's objects: any number of
 * threads may tokenize with one vocab at once.
 */
#ifndef IMP_TOKENIZER_TOKENIZER_H
#define IMP_TOKENIZER_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "tokenizer/vocab.h"

/* A growable id list (caller-owned; imp_tokens_free releases it). */
typedef struct imp_tokens {
    int32_t *ids;
    size_t n, cap;
} imp_tokens;

imp_status imp_tokens_push(imp_tokens *t, int32_t id, imp_error *err);
void imp_tokens_free(imp_tokens *t);

/* A growable byte buffer (caller-owned; free(b->p) releases it). p is NUL-terminated after any
 * successful append, for convenience; n does not count the NUL. */
typedef struct imp_bytes {
    char *p;
    size_t n, cap;
} imp_bytes;

imp_status imp_bytes_append(imp_bytes *b, const void *s, size_t n, imp_error *err);

enum {
    IMP_TOK_ADD_BOS = 1u << 0,       /* prepend the vocab's BOS (if it has one)              */
    IMP_TOK_ADD_EOS = 1u << 1,       /* append the vocab's EOS (if it has one)               */
    IMP_TOK_PARSE_SPECIAL = 1u << 2, /* match control/unknown token texts as those tokens    */
};

/* The flags a model's prompt wants: its add_bos/add_eos, plus parse_special when asked. */
unsigned imp_tokenize_default_flags(const imp_vocab *v, bool parse_special);

/* Appends the ids of text[0..n) to *out (which may already hold ids). Any bytes are accepted
 * (invalid UTF-8 goes through byte fallback / byte tokens). Inputs over 1 GiB are refused. */
imp_status imp_vocab_tokenize(const imp_vocab *v, const char *text, size_t n, unsigned flags,
                        imp_tokens *out, imp_error *err);

enum {
    IMP_DETOK_SPECIAL = 1u << 0, /* render control (and unknown) tokens' text              */
    IMP_DETOK_NO_STRIP = 1u << 1, /* keep the space an SPM add_space_prefix vocab put first */
};

/* Appends the bytes of one token's piece (no leading-space handling). Fails only for an id
 * outside the vocabulary or out of memory. */
imp_status imp_token_piece(const imp_vocab *v, int32_t id, unsigned flags, imp_bytes *out,
                           imp_error *err);

/* Appends the text of ids[0..n): the pieces in order, with the space a SentencePiece vocab with
 * add_space_prefix put in front of the first word removed (unless IMP_DETOK_NO_STRIP). For text
 * tokenized without specials this gives back the original bytes. */
imp_status imp_vocab_detokenize(const imp_vocab *v, const int32_t *ids, size_t n, unsigned flags,
                          imp_bytes *out, imp_error *err);

/* Streaming detokenizer: push ids one at a time; each push appends only whole, valid UTF-8
 * sequences. An unfinished sequence (at most 3 bytes) waits for the next piece; bytes that can
 * never become valid UTF-8 come out as U+FFFD. finish() flushes what is held (as U+FFFD). */
typedef struct imp_detok_stream {
    const imp_vocab *v;
    unsigned flags;
    bool strip;              /* the leading space of the first text piece is still to drop */
    unsigned char hold[4];
    size_t n_hold;
} imp_detok_stream;

void imp_detok_stream_init(imp_detok_stream *s, const imp_vocab *v, unsigned flags);
imp_status imp_detok_stream_push(imp_detok_stream *s, int32_t id, imp_bytes *out, imp_error *err);
imp_status imp_detok_stream_finish(imp_detok_stream *s, imp_bytes *out, imp_error *err);

#endif
