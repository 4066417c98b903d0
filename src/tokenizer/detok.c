/*
 * Detokenize: ids -> bytes, whole or streamed (see tokenizer.h).
 *
 * A piece by token type: normal tokens give their text with U+2581 as ' ' (SPM) or their mapped
 * characters turned back into bytes (BPE); byte tokens <0xNN> give the byte; user-defined tokens
 * their text as is; control tokens nothing unless IMP_DETOK_SPECIAL; an unknown token U+FFFD
 * (or its text with IMP_DETOK_SPECIAL).
 */
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "tokenizer/tokenizer_impl.h"

static const char REPLACEMENT[3] = {(char)0xEF, (char)0xBF, (char)0xBD}; /* U+FFFD */

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* SPM normal text: U+2581 -> ' '. */
static imp_status piece_spm(const char *s, size_t n, imp_bytes *out, imp_error *err) {
    size_t run = 0;
    imp_status st = IMP_OK;
    for (size_t i = 0; st == IMP_OK && i < n; i++) {
        if (i + 2 < n && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 &&
            (unsigned char)s[i + 2] == 0x81) {
            st = imp_bytes_append(out, s + run, i - run, err);
            if (st == IMP_OK) st = imp_bytes_append(out, " ", 1, err);
            i += 2;
            run = i + 1;
        }
    }
    if (st == IMP_OK) st = imp_bytes_append(out, s + run, n - run, err);
    return st;
}

/* BPE normal text: each mapped character back to its byte; a character outside the map (only
 * in unusual vocabularies) is copied as it is. */
static imp_status piece_bpe(const char *s, size_t n, imp_bytes *out, imp_error *err) {
    imp_status st = IMP_OK;
    for (size_t i = 0; st == IMP_OK && i < n;) {
        size_t len = 1;
        int b = -1;
        if (imp_utf8_check((const unsigned char *)s + i, n - i, &len) == IMP_UTF8_OK)
            b = imp_bpe_char_byte(imp_utf8_decode((const unsigned char *)s + i, &len));
        if (b >= 0) {
            unsigned char c = (unsigned char)b;
            st = imp_bytes_append(out, &c, 1, err);
        } else {
            st = imp_bytes_append(out, s + i, len, err);
        }
        i += len;
    }
    return st;
}

imp_status imp_token_piece(const imp_vocab *v, int32_t id, unsigned flags, imp_bytes *out,
                           imp_error *err) {
    if (!imp_vocab_valid(v, id))
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "token id %d is outside the vocabulary (%d tokens)",
                             id, v->n_tokens);
    size_t n;
    const char *s = imp_vocab_text(v, id, &n);
    switch (v->type[id]) {
    case IMP_TOKEN_CONTROL:
        return (flags & IMP_DETOK_SPECIAL) ? imp_bytes_append(out, s, n, err) : IMP_OK;
    case IMP_TOKEN_UNKNOWN:
        return (flags & IMP_DETOK_SPECIAL) ? imp_bytes_append(out, s, n, err)
                                           : imp_bytes_append(out, REPLACEMENT, 3, err);
    case IMP_TOKEN_USER_DEFINED:
        return imp_bytes_append(out, s, n, err);
    case IMP_TOKEN_BYTE:
        if (n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && hex_digit(s[3]) >= 0 && hex_digit(s[4]) >= 0) {
            unsigned char c = (unsigned char)(hex_digit(s[3]) * 16 + hex_digit(s[4]));
            return imp_bytes_append(out, &c, 1, err);
        }
        return imp_bytes_append(out, s, n, err);
    default:
        return v->kind == IMP_VOCAB_SPM ? piece_spm(s, n, out, err) : piece_bpe(s, n, out, err);
    }
}

/* Appends the piece of id, dropping one leading space while *strip is set; *strip clears at the
 * first piece that produces bytes. */
static imp_status piece_stripped(const imp_vocab *v, int32_t id, unsigned flags, bool *strip,
                                 imp_bytes *out, imp_error *err) {
    const size_t start = out->n;
    imp_status st = imp_token_piece(v, id, flags, out, err);
    if (st != IMP_OK || !*strip || out->n == start) return st;
    *strip = false;
    if (out->p[start] == ' ') {
        memmove(out->p + start, out->p + start + 1, out->n - start - 1);
        out->n--;
        out->p[out->n] = 0;
    }
    return IMP_OK;
}

imp_status imp_vocab_detokenize(const imp_vocab *v, const int32_t *ids, size_t n, unsigned flags,
                          imp_bytes *out, imp_error *err) {
    if (!v || !out || (!ids && n)) return imp_error_set(err, IMP_ERR_INVALID_ARG, "detokenize: NULL argument");
    bool strip = v->kind == IMP_VOCAB_SPM && v->add_space_prefix && !(flags & IMP_DETOK_NO_STRIP);
    imp_status st = imp_bytes_append(out, "", 0, err); /* out->p valid even for no ids */
    for (size_t i = 0; st == IMP_OK && i < n; i++) st = piece_stripped(v, ids[i], flags, &strip, out, err);
    return st;
}

void imp_detok_stream_init(imp_detok_stream *s, const imp_vocab *v, unsigned flags) {
    memset(s, 0, sizeof *s);
    s->v = v;
    s->flags = flags;
    s->strip = v->kind == IMP_VOCAB_SPM && v->add_space_prefix && !(flags & IMP_DETOK_NO_STRIP);
}

/* Appends the valid prefix of bytes[0..n) to out, U+FFFD for bytes that cannot start a valid
 * sequence, and keeps an unfinished tail in s->hold. */
static imp_status stream_emit(imp_detok_stream *s, const unsigned char *b, size_t n, imp_bytes *out,
                              imp_error *err) {
    imp_status st = IMP_OK;
    size_t i = 0, run = 0;
    while (st == IMP_OK && i < n) {
        size_t len;
        imp_utf8_result r = imp_utf8_check(b + i, n - i, &len);
        if (r == IMP_UTF8_OK) {
            i += len;
            continue;
        }
        st = imp_bytes_append(out, b + run, i - run, err);
        if (st != IMP_OK) break;
        if (r == IMP_UTF8_PARTIAL) { /* only possible at the end */
            memcpy(s->hold, b + i, n - i);
            s->n_hold = n - i;
            return IMP_OK;
        }
        st = imp_bytes_append(out, REPLACEMENT, 3, err);
        i += len;
        run = i;
    }
    if (st == IMP_OK) st = imp_bytes_append(out, b + run, n - run, err);
    s->n_hold = 0;
    return st;
}

imp_status imp_detok_stream_push(imp_detok_stream *s, int32_t id, imp_bytes *out, imp_error *err) {
    /* The held bytes, then the token's piece; piece_stripped strips at the piece's own start. */
    imp_bytes piece = {0};
    bool strip = s->strip;
    imp_status st = imp_bytes_append(&piece, s->hold, s->n_hold, err);
    if (st == IMP_OK) st = piece_stripped(s->v, id, s->flags, &strip, &piece, err);
    if (st == IMP_OK) {
        s->strip = strip;
        st = stream_emit(s, (const unsigned char *)piece.p, piece.n, out, err);
    }
    free(piece.p);
    return st;
}

imp_status imp_detok_stream_finish(imp_detok_stream *s, imp_bytes *out, imp_error *err) {
    imp_status st = IMP_OK;
    if (s->n_hold) st = imp_bytes_append(out, REPLACEMENT, 3, err);
    s->n_hold = 0;
    return st;
}
