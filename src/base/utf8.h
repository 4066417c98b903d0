/*
 * UTF-8 helpers: sequence length from a lead byte, and a strict check of one sequence that also
 * says when more bytes are needed (the streaming detokenizer holds those back).
 */
#ifndef IMP_BASE_UTF8_H
#define IMP_BASE_UTF8_H

#include <stddef.h>

/* Length of the sequence a lead byte starts (1-4), or 1 for a byte that cannot start one. */
static inline size_t imp_utf8_len(unsigned char lead) {
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) return 2;
    if (lead >= 0xE0 && lead <= 0xEF) return 3;
    if (lead >= 0xF0 && lead <= 0xF4) return 4;
    return 1;
}

typedef enum imp_utf8_result {
    IMP_UTF8_INVALID = -1, /* s[0] does not start a valid sequence; *len is the length of
                              its maximal valid prefix (>= 1), which Unicode's practice
                              replaces with one U+FFFD                                    */
    IMP_UTF8_PARTIAL = 0,  /* s[0..n) is a valid but unfinished start of a sequence       */
    IMP_UTF8_OK = 1,       /* s[0..*len) is one complete, valid sequence (no overlongs,
                              surrogates or code points above U+10FFFF)                   */
} imp_utf8_result;

imp_utf8_result imp_utf8_check(const unsigned char *s, size_t n, size_t *len);

/* Offset of the first byte of s[0..n) that is not part of a valid sequence, or (size_t)-1 when
 * all of it is valid UTF-8. */
size_t imp_utf8_invalid_at(const unsigned char *s, size_t n);

/* The code point of the valid sequence at s[0] (check first); *len gets its byte count. */
unsigned imp_utf8_decode(const unsigned char *s, size_t *len);

/* Appends the UTF-8 of code point cp (<= 0x10FFFF) to out; returns the byte count (1-4). */
int imp_utf8_encode(unsigned cp, char out[4]);

#endif
