/*
 * Private to src/chat/: the growable output buffer, the validated message form the renderers
 * work on, the text helpers that mirror Python/Jinja semantics (str.strip, tojson, split), and
 * the renderer table shared by chat.c (API, validation) and chat_render.c (one renderer per
 * family).
 */
#ifndef IMP_CHAT_INTERNAL_H
#define IMP_CHAT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "chat/chat.h"

/* Growable byte buffer with a sticky failure flag, so renderers append without checking each
 * call; imp_chat_render checks `failed` once at the end. Always NUL-terminated when p != NULL. */
typedef struct imp_chat_buf {
    char *p;
    size_t len, cap;
    bool failed; /* an allocation failed or a size overflowed: contents are incomplete */
} imp_chat_buf;

void imp_chat_buf_putn(imp_chat_buf *b, const char *s, size_t n);
void imp_chat_buf_put(imp_chat_buf *b, const char *s); /* NUL-terminated s */
void imp_chat_buf_free(imp_chat_buf *b);

typedef enum imp_chat_role {
    IMP_CHAT_ROLE_SYSTEM,
    IMP_CHAT_ROLE_USER,
    IMP_CHAT_ROLE_ASSISTANT,
    IMP_CHAT_ROLE_TOOL,
    IMP_CHAT_ROLE_COUNT
} imp_chat_role;

/* "system", "user", "assistant", "tool". */
const char *imp_chat_role_name(imp_chat_role r);

/* A validated message: known role, UTF-8 content with its length, tool_call_id or NULL. */
typedef struct imp_chat_item {
    imp_chat_role role;
    const char *text; /* never NULL */
    size_t len;
    const char *tool_call_id; /* NUL-terminated, or NULL */
} imp_chat_item;

/* Text helpers over valid UTF-8 (content is validated before rendering). */

/* Appends s[0..n) without the leading and trailing characters Python's str.strip() removes
 * (str.isspace(): ASCII whitespace, U+001C..U+001F, U+0085, U+00A0, U+1680, U+2000..U+200A,
 * U+2028, U+2029, U+202F, U+205F, U+3000) -- Jinja's trim filter and .strip() alike. */
void imp_chat_put_strip(imp_chat_buf *b, const char *s, size_t n);

/* Appends s[0..n) as a JSON string the way transformers' tojson filter writes it
 * (json.dumps(ensure_ascii=False)): quotes, \" \\ \n \r \t \b \f, \u00xx for other controls. */
void imp_chat_put_json(imp_chat_buf *b, const char *s, size_t n);

/* Finds needle in s[0..n); returns its offset or (size_t)-1. */
size_t imp_chat_find(const char *s, size_t n, const char *needle);
size_t imp_chat_rfind(const char *s, size_t n, const char *needle);

/* Appends s[0..n) with every occurrence of `drop` removed (Python's s.replace(drop, '')). */
void imp_chat_put_without(imp_chat_buf *b, const char *s, size_t n, const char *drop);

/* Renders validated items into b. Returns IMP_OK or an error (with err set). */
typedef imp_status (*imp_chat_render_fn)(imp_chat_buf *b, const imp_chat_item *m, size_t n,
                                         bool add_generation_prompt, imp_error *err);

/* How messages are mapped before a family's renderer sees them, where the model's template has
 * no place for a role (see docs/chat.md). */
enum {
    IMP_CHAT_F_TOOL_AS_USER = 1u << 0,        /* a tool message is rendered as a user message */
    IMP_CHAT_F_LATE_SYSTEM_AS_USER = 1u << 1, /* so is a system message that is not the first */
};

typedef struct imp_chat_family_info {
    const char *name;
    imp_chat_render_fn render;
    unsigned flags; /* IMP_CHAT_F_* */
} imp_chat_family_info;

/* The family table, indexed by imp_chat_family (chat_render.c). */
extern const imp_chat_family_info imp_chat_families[IMP_CHAT_FAMILY_COUNT];

#endif
