/* UTF-8 checking and encoding (see utf8.h). */
#include "base/utf8.h"

imp_utf8_result imp_utf8_check(const unsigned char *s, size_t n, size_t *len) {
    *len = 1;
    if (n == 0) return IMP_UTF8_PARTIAL;
    const unsigned char c = s[0];
    if (c < 0x80) return IMP_UTF8_OK;
    const size_t need = imp_utf8_len(c);
    if (need == 1) return IMP_UTF8_INVALID;
    /* The second byte's range depends on the lead (no overlongs, surrogates, > U+10FFFF). */
    unsigned lo = 0x80, hi = 0xBF;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
    for (size_t i = 1; i < need; i++) {
        if (i >= n) return IMP_UTF8_PARTIAL;
        const unsigned b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) {
            *len = i; /* the maximal subpart: one U+FFFD replaces it */
            return IMP_UTF8_INVALID;
        }
    }
    *len = need;
    return IMP_UTF8_OK;
}

int imp_utf8_encode(unsigned cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t imp_utf8_invalid_at(const unsigned char *s, size_t n) {
    for (size_t i = 0, len; i < n; i += len)
        if (imp_utf8_check(s + i, n - i, &len) != IMP_UTF8_OK) return i;
    return (size_t)-1;
}

unsigned imp_utf8_decode(const unsigned char *s, size_t *len) {
    const unsigned c = s[0];
    *len = imp_utf8_len((unsigned char)c);
    switch (*len) {
    case 2: return ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu);
    case 3: return ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
    case 4: return ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
    default: return c;
    }
}
