/*
 * Chat templates: family names, message validation, the render entry point, and the text
 * helpers the renderers share (output buffer, Python-compatible strip, JSON strings, search).
 * The renderers themselves are in chat_render.c, detection in chat_detect.c.
 */
#include "base/utf8.h"
#include "chat/chat_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

/* ---- output buffer ------------------------------------------------------------------------ */

void imp_chat_buf_putn(imp_chat_buf *b, const char *s, size_t n) {
    if (b->failed || n == 0) return;
    size_t need;
    if (__builtin_add_overflow(b->len, n + 1, &need)) {
        b->failed = true;
        return;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need) {
            if (cap > SIZE_MAX / 2) {
                cap = need;
                break;
            }
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void imp_chat_buf_put(imp_chat_buf *b, const char *s) {
    imp_chat_buf_putn(b, s, strlen(s));
}

void imp_chat_buf_free(imp_chat_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Python's str.isspace() over all of Unicode. */
static bool py_isspace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

void imp_chat_put_strip(imp_chat_buf *b, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t start = 0, end = n, len;
    while (start < end && py_isspace(imp_utf8_decode(u + start, &len))) start += len;
    while (end > start) {
        size_t k = end - 1;
        while (k > start && (u[k] & 0xC0) == 0x80) k--; /* back to the lead byte */
        if (!py_isspace(imp_utf8_decode(u + k, &len))) break;
        end = k;
    }
    imp_chat_buf_putn(b, s + start, end - start);
}

void imp_chat_put_json(imp_chat_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    imp_chat_buf_putn(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed before each escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t elen = 2;
        switch (c) {
        case '"':
            memcpy(esc, "\\\"", 2);
            break;
        case '\\':
            memcpy(esc, "\\\\", 2);
            break;
        case '\n':
            memcpy(esc, "\\n", 2);
            break;
        case '\r':
            memcpy(esc, "\\r", 2);
            break;
        case '\t':
            memcpy(esc, "\\t", 2);
            break;
        case '\b':
            memcpy(esc, "\\b", 2);
            break;
        case '\f':
            memcpy(esc, "\\f", 2);
            break;
        default:
            if (c >= 0x20) {
                elen = 0;
            } else {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                elen = 6;
            }
        }
        if (elen == 0) {
            run++;
            continue;
        }
        imp_chat_buf_putn(b, s + i - run, run);
        run = 0;
        imp_chat_buf_putn(b, esc, elen);
    }
    imp_chat_buf_putn(b, s + n - run, run);
    imp_chat_buf_putn(b, "\"", 1);
}

size_t imp_chat_find(const char *s, size_t n, const char *needle) {
    size_t m = strlen(needle);
    if (m == 0) return 0;
    for (size_t i = 0; m <= n && i <= n - m; i++) {
        if (s[i] == needle[0] && memcmp(s + i, needle, m) == 0) return i;
    }
    return (size_t)-1;
}

size_t imp_chat_rfind(const char *s, size_t n, const char *needle) {
    size_t m = strlen(needle);
    if (m > n) return (size_t)-1;
    for (size_t i = n - m + 1; i-- > 0;) {
        if (memcmp(s + i, needle, m) == 0) return i;
    }
    return (size_t)-1;
}

void imp_chat_put_without(imp_chat_buf *b, const char *s, size_t n, const char *drop) {
    size_t m = strlen(drop);
    for (;;) {
        size_t at = imp_chat_find(s, n, drop);
        if (at == (size_t)-1 || m == 0) break;
        imp_chat_buf_putn(b, s, at);
        s += at + m;
        n -= at + m;
    }
    imp_chat_buf_putn(b, s, n);
}

/* ---- names -------------------------------------------------------------------------------- */

static const char *const k_role_names[IMP_CHAT_ROLE_COUNT] = {"system", "user", "assistant",
                                                              "tool"};

const char *imp_chat_role_name(imp_chat_role r) {
    return (unsigned)r < IMP_CHAT_ROLE_COUNT ? k_role_names[r] : "?";
}

/* Other spellings accepted by imp_chat_family_from_name. */
static const struct {
    const char *alias;
    imp_chat_family family;
} k_aliases[] = {
    {"mistral", IMP_CHAT_MISTRAL_V3}, /* Mistral-7B-Instruct-v0.3, the most used Mistral GGUF */
    {"deepseek_r1", IMP_CHAT_DEEPSEEK_R1},
    {"nemotron_v2", IMP_CHAT_NEMOTRON_V2},
};

const char *imp_chat_family_name(imp_chat_family f) {
    if (f == IMP_CHAT_AUTO) return "auto";
    if ((unsigned)f >= IMP_CHAT_FAMILY_COUNT) return "?";
    return imp_chat_families[f].name;
}

const char *imp_chat_family_names(void) {
    return "auto, none, chatml, llama2, llama3, llama3.1, mistral-v1, mistral-v3, "
           "mistral-v3-tekken, mistral-v7, mistral-v7-tekken, gemma, phi3, phi4, deepseek-r1, "
           "nemotron, nemotron-v2 (aliases: mistral = mistral-v3, deepseek_r1, nemotron_v2)";
}

imp_status imp_chat_family_from_name(const char *name, imp_chat_family *out, imp_error *err) {
    if (!name || !out) return imp_error_set(err, IMP_ERR_INVALID_ARG, "chat family: NULL name");
    if (strcmp(name, "auto") == 0) {
        *out = IMP_CHAT_AUTO;
        return IMP_OK;
    }
    for (int f = 0; f < IMP_CHAT_FAMILY_COUNT; f++) {
        if (strcmp(name, imp_chat_families[f].name) == 0) {
            *out = (imp_chat_family)f;
            return IMP_OK;
        }
    }
    for (size_t i = 0; i < IMP_ARRAY_LEN(k_aliases); i++) {
        if (strcmp(name, k_aliases[i].alias) == 0) {
            *out = k_aliases[i].family;
            return IMP_OK;
        }
    }
    return imp_error_set(err, IMP_ERR_INVALID_ARG,
                         "unknown chat template family \"%.64s\" (known: %s)", name,
                         imp_chat_family_names());
}

/* ---- rendering ------------------------------------------------------------------------------ */

/* Validates msgs and fills items with the family's role mapping applied. */
static imp_status chat_validate(imp_chat_family family, const imp_chat_msg *msgs, size_t n,
                                imp_chat_item *items, imp_error *err) {
    const unsigned flags = imp_chat_families[family].flags;
    for (size_t i = 0; i < n; i++) {
        const imp_chat_msg *m = &msgs[i];
        if (!m->role) return imp_error_set(err, IMP_ERR_INVALID_ARG, "message %zu: NULL role", i);
        int role = -1;
        for (int r = 0; r < IMP_CHAT_ROLE_COUNT; r++) {
            if (strcmp(m->role, k_role_names[r]) == 0) role = r;
        }
        if (role < 0) {
            return imp_error_set(err, IMP_ERR_INVALID_ARG,
                                 "message %zu: unknown role \"%.32s\" (expected system, user, "
                                 "assistant or tool)",
                                 i, m->role);
        }
        const char *text = m->content ? m->content : "";
        size_t len = strlen(text);
        size_t bad = imp_utf8_invalid_at((const unsigned char *)text, len);
        if (bad != (size_t)-1) {
            return imp_error_set(err, IMP_ERR_INVALID_ARG,
                                 "message %zu (%s): content is not valid UTF-8 at byte %zu", i,
                                 m->role, bad);
        }
        if (m->tool_call_id) {
            size_t id_len = strlen(m->tool_call_id);
            bad = imp_utf8_invalid_at((const unsigned char *)m->tool_call_id, id_len);
            if (bad != (size_t)-1) {
                return imp_error_set(err, IMP_ERR_INVALID_ARG,
                                     "message %zu (%s): tool_call_id is not valid UTF-8 at byte "
                                     "%zu",
                                     i, m->role, bad);
            }
        }
        if (role == IMP_CHAT_ROLE_TOOL && (flags & IMP_CHAT_F_TOOL_AS_USER)) {
            role = IMP_CHAT_ROLE_USER;
        }
        if (role == IMP_CHAT_ROLE_SYSTEM && i > 0 && (flags & IMP_CHAT_F_LATE_SYSTEM_AS_USER)) {
            role = IMP_CHAT_ROLE_USER;
        }
        items[i] = (imp_chat_item){(imp_chat_role)role, text, len, m->tool_call_id};
    }
    return IMP_OK;
}

imp_status imp_chat_render(imp_chat_family family, const imp_chat_msg *msgs, size_t n,
                           bool add_generation_prompt, char **out, size_t *out_len,
                           imp_error *err) {
    if (!out || !out_len)
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "chat render: NULL output");
    *out = NULL;
    *out_len = 0;
    if (family == IMP_CHAT_AUTO) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG,
                             "chat render: family \"auto\" must be resolved with imp_chat_detect "
                             "first");
    }
    if ((unsigned)family >= IMP_CHAT_FAMILY_COUNT) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "chat render: family %d out of range",
                             (int)family);
    }
    if (!msgs || n == 0) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG,
                             "chat render: a conversation needs at least one message");
    }
    imp_chat_item *items = imp_malloc_array(n, sizeof *items);
    if (!items) {
        return imp_error_set(err, IMP_ERR_NOMEM, "chat render: cannot allocate %zu messages", n);
    }
    imp_status st = chat_validate(family, msgs, n, items, err);
    imp_chat_buf b = {0};
    if (st == IMP_OK) {
        st = imp_chat_families[family].render(&b, items, n, add_generation_prompt, err);
    }
    free(items);
    if (st == IMP_OK) {
        if (!b.p && !b.failed) b.p = calloc(1, 1); /* an empty render is still a string */
        if (b.failed || !b.p) {
            st = imp_error_set(err, IMP_ERR_NOMEM, "chat render: out of memory (%zu bytes so far)",
                               b.len);
        }
    }
    if (st != IMP_OK) {
        imp_chat_buf_free(&b);
        return st;
    }
    *out = b.p;
    *out_len = b.len;
    return IMP_OK;
}

void imp_chat_free(char *s) {
    free(s);
}
