/*
 * The imp.conf parser: a line-oriented subset of TOML. It knows nothing of the key table; it
 * checks the text (size, UTF-8, line length, syntax), decodes values (strings with escapes,
 * decimal integers, floats, booleans) and hands sections and keys to config.c in order. What
 * TOML has and imp.conf does not take (dotted and quoted keys, arrays, inline tables, multi-line
 * strings, non-decimal integers) is refused by name rather than misread.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "config/config_internal.h"

imp_status imp_cfg_why(char *why, size_t why_n, imp_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_n, fmt, ap);
    va_end(ap);
    return st;
}

static int is_bare(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}
static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

static size_t skip_ws(const char *p, size_t n, size_t i) {
    while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
    return i;
}

/* Describes the character at p[i] for a message: 'c' or byte 0xNN. */
static void char_desc(const char *p, size_t n, size_t i, char out[16]) {
    if (i >= n) {
        snprintf(out, 16, "end of line");
        return;
    }
    unsigned char c = (unsigned char)p[i];
    if (c >= 0x21 && c < 0x7f)
        snprintf(out, 16, "'%c'", c);
    else
        snprintf(out, 16, "byte 0x%02x", c);
}

/* strtod in the C locale whatever the program's locale is (imp.conf always writes '.'). */
static double strtod_c(const char *s, char **end) {
    locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c == (locale_t)0) return strtod(s, end);
    locale_t old = uselocale(c);
    double d = strtod(s, end);
    uselocale(old);
    freelocale(c);
    return d;
}

static int hex_val(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes a basic string starting after its opening quote at p[*i]; *i ends past the closing one.
 */
static imp_status parse_basic(const char *p, size_t n, size_t *i, imp_cfg_value *v, char *why,
                              size_t why_n) {
    size_t j = *i, k = 0;
    for (;;) {
        if (j >= n)
            return imp_cfg_why(why, why_n, IMP_ERR_FORMAT,
                           "unterminated string (no closing '\"' on this line)");
        unsigned char c = (unsigned char)p[j];
        if (c == '"') {
            j++;
            break;
        }
        if (c == '\\') {
            if (j + 1 >= n)
                return imp_cfg_why(why, why_n, IMP_ERR_FORMAT,
                               "unterminated string (no closing '\"' on this line)");
            char e = p[j + 1];
            static const char names[] = "btnfr\"\\", map[] = "\b\t\n\f\r\"\\";
            const char *simple = e != '\0' ? strchr(names, e) : NULL;
            if (simple) {
                v->s[k++] = map[simple - names];
                j += 2;
                continue;
            }
            if (e == 'u' || e == 'U') {
                size_t digits = e == 'u' ? 4 : 8;
                unsigned long cp = 0;
                for (size_t d = 0; d < digits; d++) {
                    int h = j + 2 + d < n ? hex_val(p[j + 2 + d]) : -1;
                    if (h < 0)
                        return imp_cfg_why(why, why_n, IMP_ERR_FORMAT,
                                       "bad escape '\\%c' in string: needs %zu hex digits", e,
                                       digits);
                    cp = cp * 16 + (unsigned long)h;
                }
                if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                    return imp_cfg_why(why, why_n, IMP_ERR_FORMAT,
                                   "bad escape '\\%c%.*s' in string: not a Unicode scalar value", e,
                                   (int)digits, p + j + 2);
                k += (size_t)imp_utf8_encode((unsigned)cp, v->s + k);
                j += 2 + digits;
                continue;
            }
            unsigned char ec = (unsigned char)e;
            char d[16];
            if (ec >= 0x21 && ec < 0x7f)
                snprintf(d, sizeof d, "'\\%c'", ec);
            else
                snprintf(d, sizeof d, "'\\' + byte 0x%02x", ec);
            return imp_cfg_why(why, why_n, IMP_ERR_FORMAT,
                           "bad escape %s in string (valid escapes: \\\" \\\\ \\b \\t \\n "
                           "\\f \\r \\uXXXX \\UXXXXXXXX)",
                           d);
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return imp_cfg_why(why, why_n, IMP_ERR_FORMAT,
                           "control character 0x%02x in a string (write it as an escape)", c);
        v->s[k++] = (char)c;
        j++;
    }
    v->s[k] = '\0';
    v->len = k;
    v->type = IMP_CFG_STR;
    *i = j;
    return IMP_OK;
}

/* A literal string: everything up to the next single quote, no escapes. */
static imp_status parse_literal(const char *p, size_t n, size_t *i, imp_cfg_value *v, char *why,
                                size_t why_n) {
    size_t j = *i, k = 0;
    for (;;) {
        if (j >= n)
            return imp_cfg_why(why, why_n, IMP_ERR_FORMAT,
                           "unterminated string (no closing \"'\" on this line)");
        unsigned char c = (unsigned char)p[j];
        if (c == '\'') {
            j++;
            break;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return imp_cfg_why(why, why_n, IMP_ERR_FORMAT,
                           "control character 0x%02x in a literal string", c);
        v->s[k++] = (char)c;
        j++;
    }
    v->s[k] = '\0';
    v->len = k;
    v->type = IMP_CFG_STR;
    *i = j;
    return IMP_OK;
}

/* Copies digits with TOML's underscore rule (each '_' between two digits) from t[*i] into buf;
 * returns the number of digits, 0 when there are none or an underscore is misplaced. */
static size_t take_digits(const char *t, size_t n, size_t *i, char *buf, size_t *bn) {
    size_t j = *i, count = 0;
    while (j < n) {
        if (is_digit(t[j])) {
            buf[(*bn)++] = t[j++];
            count++;
        } else if (t[j] == '_' && count > 0 && j + 1 < n && is_digit(t[j + 1])) {
            j++;
        } else {
            break;
        }
    }
    if (j < n && t[j] == '_') return 0;
    *i = j;
    return count;
}

/* An integer or float token t[0, n) (no spaces). */
static imp_status parse_number(const char *t, size_t n, imp_cfg_value *v, char *why, size_t why_n) {
    const int shown = n > 40 ? 40 : (int)n;
    size_t i = 0;
    if (i < n && (t[i] == '+' || t[i] == '-')) i++;
    if ((n - i == 3) && (!memcmp(t + i, "inf", 3) || !memcmp(t + i, "nan", 3)))
        return imp_cfg_why(why, why_n, IMP_ERR_FORMAT,
                       "'%.*s': inf and nan are not allowed in imp.conf", shown, t);
    if (n - i >= 2 && t[i] == '0' && (t[i + 1] == 'x' || t[i + 1] == 'o' || t[i + 1] == 'b'))
        return imp_cfg_why(why, why_n, IMP_ERR_UNSUPPORTED,
                       "'%.*s': hexadecimal, octal and binary integers are not supported in "
                       "imp.conf (write it in decimal)",
                       shown, t);
    char buf[IMP_CFG_LINE_MAX + 2];
    size_t bn = 0;
    if (i > 0) buf[bn++] = t[0];
    size_t int_start = bn;
    size_t nd = take_digits(t, n, &i, buf, &bn);
    int is_float = 0;
    if (nd == 0) goto invalid;
    if (nd > 1 && buf[int_start] == '0')
        return imp_cfg_why(why, why_n, IMP_ERR_FORMAT,
                       "'%.*s': leading zeros are not allowed in numbers", shown, t);
    if (i < n && t[i] == '.') {
        buf[bn++] = t[i++];
        if (take_digits(t, n, &i, buf, &bn) == 0) goto invalid;
        is_float = 1;
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        buf[bn++] = t[i++];
        if (i < n && (t[i] == '+' || t[i] == '-')) buf[bn++] = t[i++];
        if (take_digits(t, n, &i, buf, &bn) == 0) goto invalid;
        is_float = 1;
    }
    if (i != n) goto invalid;
    buf[bn] = '\0';
    char *end = NULL;
    errno = 0;
    if (is_float) {
        double d = strtod_c(buf, &end);
        if (!isfinite(d))
            return imp_cfg_why(why, why_n, IMP_ERR_RANGE, "'%.*s': number too large", shown, t);
        v->type = IMP_CFG_FLOAT;
        v->f = d;
    } else {
        long long x = strtoll(buf, &end, 10);
        if (errno == ERANGE)
            return imp_cfg_why(why, why_n, IMP_ERR_RANGE, "'%.*s': integer does not fit in 64 bits",
                           shown, t);
        v->type = IMP_CFG_INT;
        v->i = (int64_t)x;
    }
    return IMP_OK;
invalid:
    if ((t[0] >= 'a' && t[0] <= 'z') || (t[0] >= 'A' && t[0] <= 'Z'))
        return imp_cfg_why(why, why_n, IMP_ERR_FORMAT,
                       "invalid value '%.*s' (a string needs quotes: \"%.*s\")", shown, t, shown,
                       t);
    return imp_cfg_why(why, why_n, IMP_ERR_FORMAT,
                   "invalid value '%.*s' (expected a number, a quoted string, true or false)",
                   shown, t);
}

imp_status imp_cfg_parse_value(const char *p, size_t n, imp_cfg_value *v, char *why, size_t why_n) {
    memset(v, 0, offsetof(imp_cfg_value, s));
    v->s[0] = '\0';
    v->len = 0;
    size_t i = skip_ws(p, n, 0);
    if (i == n || p[i] == '#')
        return imp_cfg_why(why, why_n, IMP_ERR_FORMAT, "missing value after '='");
    imp_status st;
    char c = p[i];
    if (c == '"' || c == '\'') {
        if (n - i >= 3 && p[i + 1] == c && p[i + 2] == c)
            return imp_cfg_why(why, why_n, IMP_ERR_UNSUPPORTED,
                           "multi-line strings (%c%c%c) are not supported in imp.conf", c, c, c);
        i++;
        st = c == '"' ? parse_basic(p, n, &i, v, why, why_n)
                      : parse_literal(p, n, &i, v, why, why_n);
        if (st != IMP_OK) return st;
    } else if (c == '[') {
        return imp_cfg_why(why, why_n, IMP_ERR_UNSUPPORTED, "arrays are not supported in imp.conf");
    } else if (c == '{') {
        return imp_cfg_why(why, why_n, IMP_ERR_UNSUPPORTED,
                       "inline tables are not supported in imp.conf");
    } else {
        size_t j = i;
        while (j < n && p[j] != ' ' && p[j] != '\t' && p[j] != '#') j++;
        if ((j - i == 4 && !memcmp(p + i, "true", 4)) ||
            (j - i == 5 && !memcmp(p + i, "false", 5))) {
            v->type = IMP_CFG_BOOL;
            v->b = p[i] == 't';
        } else {
            st = parse_number(p + i, j - i, v, why, why_n);
            if (st != IMP_OK) return st;
        }
        i = j;
    }
    i = skip_ws(p, n, i);
    if (i < n && p[i] != '#') {
        size_t rest = n - i > 40 ? 40 : n - i;
        return imp_cfg_why(why, why_n, IMP_ERR_FORMAT, "unexpected text after the value: '%.*s'",
                       (int)rest, p + i);
    }
    return IMP_OK;
}

/* One line p[0, n) (no newline). */
/* Copies the bare name (letters, digits, '_', '-') starting at p[i] into name (NUL-terminated;
 * name holds a whole line) and returns the index after it: i itself when there is none. */
static size_t bare_name(const char *p, size_t n, size_t i, char *name) {
    size_t e = i;
    while (e < n && is_bare(p[e])) e++;
    memcpy(name, p + i, e - i);
    name[e - i] = '\0';
    return e;
}

static imp_status parse_line(const char *p, size_t n, int line, const imp_cfg_handlers *h,
                             imp_cfg_value *v, char *why, size_t why_n) {
    char name[IMP_CFG_LINE_MAX + 1], d[16];
    size_t i = skip_ws(p, n, 0);
    if (i == n || p[i] == '#') return IMP_OK;
    if (p[i] == '[') {
        if (i + 1 < n && p[i + 1] == '[')
            return imp_cfg_why(why, why_n, IMP_ERR_UNSUPPORTED,
                           "arrays of tables ([[...]]) are not supported in imp.conf");
        i = skip_ws(p, n, i + 1);
        if (i < n && (p[i] == '"' || p[i] == '\''))
            return imp_cfg_why(why, why_n, IMP_ERR_UNSUPPORTED,
                           "quoted section names are not supported in imp.conf");
        const size_t e = bare_name(p, n, i, name);
        if (e == i) {
            char_desc(p, n, i, d);
            return imp_cfg_why(why, why_n, IMP_ERR_FORMAT,
                           "expected a section name after '[', found %s", d);
        }
        i = skip_ws(p, n, e);
        if (i < n && p[i] == '.')
            return imp_cfg_why(why, why_n, IMP_ERR_UNSUPPORTED,
                           "dotted section names ([%s...]) are not supported in imp.conf", name);
        if (i >= n || p[i] != ']') {
            char_desc(p, n, i, d);
            return imp_cfg_why(why, why_n, IMP_ERR_FORMAT,
                           "expected ']' after section name '%s', found %s", name, d);
        }
        i = skip_ws(p, n, i + 1);
        if (i < n && p[i] != '#')
            return imp_cfg_why(why, why_n, IMP_ERR_FORMAT, "unexpected text after [%s]", name);
        return h->section(h->ud, name, line, why, why_n);
    }
    if (p[i] == '"' || p[i] == '\'')
        return imp_cfg_why(why, why_n, IMP_ERR_UNSUPPORTED,
                       "quoted keys are not supported in imp.conf");
    const size_t e = bare_name(p, n, i, name);
    if (e == i) {
        char_desc(p, n, i, d);
        return imp_cfg_why(why, why_n, IMP_ERR_FORMAT,
                       "expected a key, a [section] or a comment, found %s", d);
    }
    i = skip_ws(p, n, e);
    if (i < n && p[i] == '.')
        return imp_cfg_why(why, why_n, IMP_ERR_UNSUPPORTED,
                       "dotted keys (%s... = ...) are not supported in imp.conf: write the "
                       "[section] header, then key = value",
                       name);
    if (i >= n || p[i] != '=') {
        char_desc(p, n, i, d);
        return imp_cfg_why(why, why_n, IMP_ERR_FORMAT, "expected '=' after key '%s', found %s", name,
                       d);
    }
    imp_status st = imp_cfg_parse_value(p + i + 1, n - i - 1, v, why, why_n);
    if (st != IMP_OK) return st;
    return h->key(h->ud, name, v, line, why, why_n);
}

imp_status imp_cfg_parse(const char *text, size_t len, const char *name, const imp_cfg_handlers *h,
                         imp_error *err) {
    if (!text && len) return imp_error_set(err, IMP_ERR_INVALID_ARG, "%s: NULL text", name);
    if (len > IMP_CFG_FILE_MAX)
        return imp_error_set(err, IMP_ERR_RANGE, "%s: larger than 1 MiB (%zu bytes)", name, len);
    const unsigned char *u = (const unsigned char *)text;
    size_t bad = len ? imp_utf8_invalid_at(u, len) : (size_t)-1;
    if (bad != (size_t)-1) {
        int line = 1;
        size_t line_start = 0;
        for (size_t k = 0; k < bad; k++) {
            if (u[k] == '\n') {
                line++;
                line_start = k + 1;
            }
        }
        return imp_error_set(err, IMP_ERR_FORMAT,
                             "%s:%d: invalid UTF-8 (byte 0x%02x at column %zu); imp.conf must "
                             "be UTF-8 text",
                             name, line, u[bad], bad - line_start + 1);
    }
    imp_cfg_value *v = malloc(sizeof *v);
    if (!v) return imp_error_set(err, IMP_ERR_NOMEM, "%s: out of memory", name);
    char why[IMP_ERROR_MSG_MAX];
    size_t pos = 0;
    if (len >= 3 && u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF) pos = 3; /* a UTF-8 BOM */
    int line = 0;
    imp_status st = IMP_OK;
    while (pos < len) {
        line++;
        const char *eol = memchr(text + pos, '\n', len - pos);
        size_t end = eol ? (size_t)(eol - text) : len;
        size_t n = end - pos;
        if (n > 0 && text[pos + n - 1] == '\r') n--;
        if (n > IMP_CFG_LINE_MAX) {
            st = imp_error_set(err, IMP_ERR_RANGE, "%s:%d: line longer than %d bytes (%zu)", name,
                               line, IMP_CFG_LINE_MAX, n);
            break;
        }
        if (memchr(text + pos, '\0', n)) {
            st = imp_error_set(err, IMP_ERR_FORMAT, "%s:%d: NUL byte in the text", name, line);
            break;
        }
        why[0] = '\0';
        st = parse_line(text + pos, n, line, h, v, why, sizeof why);
        if (st != IMP_OK) {
            imp_error_set(err, st, "%s:%d: %s", name, line, why);
            break;
        }
        pos = eol ? end + 1 : len;
    }
    free(v);
    return st;
}
