/*
 * Internals shared by the tokenizer's files: the two model algorithms, each run on one run of
 * plain text (the pieces between special tokens), and the GPT-2 byte map.
 */
#ifndef IMP_TOKENIZER_IMPL_H
#define IMP_TOKENIZER_IMPL_H

#include "tokenizer/tokenizer.h"

/* SentencePiece on text that is already escaped (spaces as U+2581, prefix added). */
imp_status imp_spm_encode(const imp_vocab *v, const char *text, size_t n, imp_tokens *out,
                          imp_error *err);

/* Byte-level BPE: pre-tokenize, map bytes to characters, merge by rank. */
imp_status imp_bpe_encode(const imp_vocab *v, const char *text, size_t n, imp_tokens *out,
                          imp_error *err);

/* GPT-2's byte -> character map: printable Latin-1 bytes stand for themselves, the other 68 take
 * the code points from U+0100 up, in byte order. Writes the character's UTF-8 (1-2 bytes). */
int imp_bpe_byte_char(unsigned b, char out[2]);

/* The inverse for one code point: the byte, or -1 for a character outside the map. */
int imp_bpe_char_byte(unsigned cp);

#endif
