/*
 * helper_chat_render FAMILY|auto [--template-from M.gguf] [--template-file T.jinja]
 *                    [--no-generation-prompt] < MESSAGES
 *
 * Renders a conversation with src/chat and writes the prompt to stdout, byte for byte; the
 * family used goes to stderr as one line ("chat template: picked gemma (found ...)" or
 * "chat template: chatml (by name)"). Driven by tests/unit/py_chat_ref.py.
 *
 * FAMILY is a family name (imp_chat_family_from_name) or "auto": detect from the GGUF's
 * tokenizer.chat_template (--template-from) or from a template text file (--template-file);
 * "auto" with neither, or with a GGUF that has no template, falls back to chatml and says so.
 *
 * MESSAGES: one message per line, "ROLE<TAB>CONTENT" or "ROLE<TAB>CONTENT<TAB>TOOL_CALL_ID".
 * CONTENT escapes: \n newline, \t tab, \r carriage return, \\ backslash (any other backslash
 * sequence is an error). Empty lines are skipped.
 *
 * Exit status: 0 rendered, 1 bad input or render/GGUF error (message on stderr), 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "gguf/gguf.h"

#define MAX_INPUT (64u << 20) /* bytes of stdin accepted */

static int usage(void) {
    fprintf(stderr,
            "usage: helper_chat_render FAMILY|auto [--template-from M.gguf] "
            "[--template-file T.jinja] [--no-generation-prompt] < messages\n"
            "families: %s\n",
            imp_chat_family_names());
    return 2;
}

/* Reads all of f into a malloc'd NUL-terminated buffer; NULL on error or when over the limit. */
static char *read_all(FILE *f, size_t *len) {
    size_t cap = 4096, n = 0;
    char *p = malloc(cap);
    while (p) {
        if (n + 1 >= cap) {
            if (cap >= MAX_INPUT) {
                free(p);
                return NULL;
            }
            char *q = realloc(p, cap * 2);
            if (!q) break;
            p = q;
            cap *= 2;
        }
        size_t got = fread(p + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) break;
            p[n] = '\0';
            *len = n;
            return p;
        }
    }
    free(p);
    return NULL;
}

/* Unescapes s in place (it only shrinks); returns 0, or -1 on a bad escape. */
static int unescape(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r != '\\') {
            *w++ = *r;
            continue;
        }
        switch (*++r) {
        case 'n':
            *w++ = '\n';
            break;
        case 't':
            *w++ = '\t';
            break;
        case 'r':
            *w++ = '\r';
            break;
        case '\\':
            *w++ = '\\';
            break;
        default:
            return -1;
        }
    }
    *w = '\0';
    return 0;
}

/* Splits the input into messages (pointing into text, which is modified). */
static int parse_messages(char *text, imp_chat_msg **out, size_t *n_out) {
    size_t cap = 16, n = 0;
    imp_chat_msg *msgs = malloc(cap * sizeof *msgs);
    if (!msgs) return -1;
    int line_no = 0;
    for (char *line = text; line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        line_no++;
        if (*line) {
            char *content = strchr(line, '\t');
            if (!content) {
                fprintf(stderr, "helper_chat_render: line %d: expected ROLE<TAB>CONTENT\n",
                        line_no);
                free(msgs);
                return -1;
            }
            *content++ = '\0';
            char *id = strchr(content, '\t');
            if (id) *id++ = '\0';
            if (unescape(content) != 0) {
                fprintf(stderr, "helper_chat_render: line %d: bad backslash escape\n", line_no);
                free(msgs);
                return -1;
            }
            if (n == cap) {
                imp_chat_msg *m = realloc(msgs, 2 * cap * sizeof *msgs);
                if (!m) {
                    free(msgs);
                    return -1;
                }
                msgs = m;
                cap *= 2;
            }
            msgs[n++] = (imp_chat_msg){line, content, id};
        }
        line = next;
    }
    *out = msgs;
    *n_out = n;
    return 0;
}

/* Detects the family from a GGUF's tokenizer.chat_template (or its absence). */
static int detect_from_gguf(const char *path, imp_chat_detection *d) {
    imp_gguf *g = NULL;
    imp_error err;
    if (imp_gguf_open(path, &g, &err) != IMP_OK) {
        fprintf(stderr, "helper_chat_render: %s: %s\n", path, err.msg);
        return -1;
    }
    imp_gguf_str s = {NULL, 0};
    imp_status st = imp_gguf_get_str(g, "tokenizer.chat_template", &s, &err);
    if (st != IMP_OK && st != IMP_ERR_NOT_FOUND) {
        fprintf(stderr, "helper_chat_render: %s: %s\n", path, err.msg);
        imp_gguf_close(g);
        return -1;
    }
    *d = imp_chat_detect(s.ptr, st == IMP_OK ? (size_t)s.len : 0);
    imp_gguf_close(g);
    return 0;
}

static int detect_from_file(const char *path, imp_chat_detection *d) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "helper_chat_render: cannot open %s\n", path);
        return -1;
    }
    size_t len = 0;
    char *text = read_all(f, &len);
    fclose(f);
    if (!text) {
        fprintf(stderr, "helper_chat_render: cannot read %s\n", path);
        return -1;
    }
    *d = imp_chat_detect(text, len);
    free(text);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    const char *gguf_path = NULL, *tmpl_path = NULL;
    bool gen = true;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--template-from") == 0 && i + 1 < argc) {
            gguf_path = argv[++i];
        } else if (strcmp(argv[i], "--template-file") == 0 && i + 1 < argc) {
            tmpl_path = argv[++i];
        } else if (strcmp(argv[i], "--no-generation-prompt") == 0) {
            gen = false;
        } else {
            return usage();
        }
    }
    imp_error err;
    imp_chat_family family;
    if (imp_chat_family_from_name(argv[1], &family, &err) != IMP_OK) {
        fprintf(stderr, "helper_chat_render: %s\n", err.msg);
        return 2;
    }
    if (family == IMP_CHAT_AUTO) {
        imp_chat_detection d = imp_chat_detect(NULL, 0);
        if (gguf_path && detect_from_gguf(gguf_path, &d) != 0) return 1;
        if (tmpl_path && detect_from_file(tmpl_path, &d) != 0) return 1;
        char line[256];
        fprintf(stderr, "chat template: %s\n", imp_chat_detection_describe(&d, line, sizeof line));
        family = d.family;
    } else {
        fprintf(stderr, "chat template: %s (by name)\n", imp_chat_family_name(family));
    }

    size_t len = 0, n = 0;
    char *text = read_all(stdin, &len);
    imp_chat_msg *msgs = NULL;
    if (!text || parse_messages(text, &msgs, &n) != 0) {
        if (!text) fprintf(stderr, "helper_chat_render: cannot read stdin\n");
        free(text);
        return 1;
    }
    char *out = NULL;
    size_t out_len = 0;
    int rc = 0;
    if (imp_chat_render(family, msgs, n, gen, &out, &out_len, &err) != IMP_OK) {
        fprintf(stderr, "helper_chat_render: %s\n", err.msg);
        rc = 1;
    } else if (fwrite(out, 1, out_len, stdout) != out_len || fflush(stdout) != 0) {
        rc = 1;
    }
    imp_chat_free(out);
    free(msgs);
    free(text);
    return rc;
}
