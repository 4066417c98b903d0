/*
 * imp-cli tokenizer commands. --tokenize prints "id -> 'piece'" per token (control characters
 * escaped); with --ids one line of ids. --detokenize writes the text's bytes exactly, with no
 * newline added, so its output can be compared byte for byte with the original. --chat-render
 * prints the prompt the chat template makes of a (system +) user message, or with --ids the ids
 * it tokenizes to (the model's BOS rule, specials parsed), and names the template on stderr.
 */
#include "tokenize.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/threads.h"
#include "base/utf8.h"
#include "chat/chat.h"
#include "tokenizer/tokenizer.h"

char *imp_cli_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "imp-cli: cannot open '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (len == cap) {
            char *b = cap > ((size_t)1 << 30) ? NULL : realloc(buf, cap * 2 + 1);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (!buf) fprintf(stderr, "imp-cli: '%s' is too large\n", path);
    else if (ferror(f)) {
        fprintf(stderr, "imp-cli: error reading '%s'\n", path);
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[len] = 0;
    *n = len;
    return buf;
}

/* Parses ids separated by commas and/or whitespace. */
static int parse_ids(const char *s, imp_tokens *ids) {
    imp_error err;
    imp_error_clear(&err);
    while (*s) {
        while (*s == ',' || *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
        if (!*s) break;
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (end == s || errno || x < INT32_MIN || x > INT32_MAX ||
            (*end && *end != ',' && *end != ' ' && *end != '\t' && *end != '\n' && *end != '\r')) {
            fprintf(stderr, "imp-cli: bad token id near '%.20s'\n", s);
            return 1;
        }
        if (imp_tokens_push(ids, (int32_t)x, &err) != IMP_OK) {
            fprintf(stderr, "imp-cli: %s\n", err.msg);
            return 1;
        }
        s = end;
    }
    return 0;
}

static void print_escaped(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t len;
        unsigned char c = (unsigned char)s[i];
        if (imp_utf8_check((const unsigned char *)s + i, n - i, &len) != IMP_UTF8_OK) {
            printf("\\x%02x", c);
            i++;
        } else if (c == '\n') {
            fputs("\\n", stdout), i++;
        } else if (c == '\t') {
            fputs("\\t", stdout), i++;
        } else if (c == '\r') {
            fputs("\\r", stdout), i++;
        } else if (c < 0x20 || c == 0x7f) {
            printf("\\x%02x", c), i++;
        } else {
            fwrite(s + i, 1, len, stdout);
            i += len;
        }
    }
}

static int cli_tokenize_text(const imp_vocab *v, const cli_tok_opts *o, const char *text, size_t n) {
    imp_error err;
    imp_error_clear(&err);
    imp_tokens ids = {0};
    unsigned flags = (o->add_bos ? IMP_TOK_ADD_BOS : 0u) | (o->parse_special ? IMP_TOK_PARSE_SPECIAL : 0u);
    const double t0 = imp_time_s();
    if (imp_vocab_tokenize(v, text, n, flags, &ids, &err) != IMP_OK) {
        fprintf(stderr, "imp-cli: %s\n", err.msg);
        return 1;
    }
    const double t1 = imp_time_s();
    if (o->ids_only) {
        for (size_t i = 0; i < ids.n; i++) printf(i ? " %d" : "%d", ids.ids[i]);
        printf("\n");
    } else {
        imp_bytes piece = {0};
        for (size_t i = 0; i < ids.n; i++) {
            piece.n = 0;
            if (imp_token_piece(v, ids.ids[i], IMP_DETOK_SPECIAL, &piece, &err) != IMP_OK) break;
            printf("%6d -> '", ids.ids[i]);
            print_escaped(piece.p, piece.n);
            printf("'\n");
        }
        free(piece.p);
    }
    fprintf(stderr, "imp-cli: %zu bytes -> %zu tokens in %.2f ms\n", n, ids.n, (t1 - t0) * 1e3);
    imp_tokens_free(&ids);
    return 0;
}

static int cli_detokenize(const imp_vocab *v, const cli_tok_opts *o, const char *list) {
    imp_error err;
    imp_error_clear(&err);
    imp_tokens ids = {0};
    if (parse_ids(list, &ids)) {
        imp_tokens_free(&ids);
        return 1;
    }
    imp_bytes text = {0};
    int rc = 0;
    if (imp_vocab_detokenize(v, ids.ids, ids.n, o->show_special ? IMP_DETOK_SPECIAL : 0u, &text, &err) != IMP_OK) {
        fprintf(stderr, "imp-cli: %s\n", err.msg);
        rc = 1;
    } else {
        fwrite(text.p, 1, text.n, stdout);
    }
    free(text.p);
    imp_tokens_free(&ids);
    return rc;
}

static int cli_chat_render(const imp_vocab *v, const cli_tok_opts *o) {
    imp_error err;
    imp_error_clear(&err);
    imp_chat_family fam;
    if (imp_chat_family_from_name(o->chat_template ? o->chat_template : "auto", &fam, &err) != IMP_OK) {
        fprintf(stderr, "imp-cli: --chat-template: %s\n", err.msg);
        return 2;
    }
    if (fam == IMP_CHAT_AUTO) {
        imp_chat_detection d = imp_chat_detect(v->chat_template, v->chat_template_len);
        char line[256];
        fprintf(stderr, "imp-cli: chat template: %s\n", imp_chat_detection_describe(&d, line, sizeof line));
        fam = d.family;
    } else {
        fprintf(stderr, "imp-cli: chat template: %s (from --chat-template)\n", imp_chat_family_name(fam));
    }
    imp_chat_msg msgs[2];
    size_t n = 0;
    if (o->chat_system) msgs[n++] = (imp_chat_msg){"system", o->chat_system, NULL};
    msgs[n++] = (imp_chat_msg){"user", o->chat_user, NULL};
    char *prompt = NULL;
    size_t len = 0;
    if (imp_chat_render(fam, msgs, n, true, &prompt, &len, &err) != IMP_OK) {
        fprintf(stderr, "imp-cli: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (o->ids_only) {
        imp_tokens ids = {0};
        if (imp_vocab_tokenize(v, prompt, len, imp_tokenize_default_flags(v, true), &ids, &err) != IMP_OK) {
            fprintf(stderr, "imp-cli: %s\n", err.msg);
            rc = 1;
        }
        for (size_t i = 0; !rc && i < ids.n; i++) printf(i ? " %d" : "%d", ids.ids[i]);
        if (!rc) printf("\n");
        imp_tokens_free(&ids);
    } else {
        fwrite(prompt, 1, len, stdout);
    }
    imp_chat_free(prompt);
    return rc;
}

int imp_cli_tokenize(const cli_tok_opts *o) {
    if (!o->model) {
        fprintf(stderr, "imp-cli: --tokenize/--detokenize/--chat-render need --model FILE\n");
        return 2;
    }
    imp_error err;
    imp_error_clear(&err);
    imp_vocab *v = NULL;
    if (imp_vocab_load_file(o->model, &v, &err) != IMP_OK) {
        fprintf(stderr, "imp-cli: %s: %s\n", o->model, err.msg);
        return 1;
    }
    int rc = 0;
    if (o->text) {
        rc = cli_tokenize_text(v, o, o->text, strlen(o->text));
    } else if (o->text_file) {
        size_t n;
        char *buf = imp_cli_read_file(o->text_file, &n);
        rc = buf ? cli_tokenize_text(v, o, buf, n) : 1;
        free(buf);
    } else if (o->chat_user) {
        rc = cli_chat_render(v, o);
    } else if (o->detok) {
        rc = cli_detokenize(v, o, o->detok);
    } else if (o->detok_file) {
        size_t n;
        char *buf = imp_cli_read_file(o->detok_file, &n);
        char *s = buf ? realloc(buf, n + 1) : NULL;
        if (s) {
            s[n] = 0;
            rc = cli_detokenize(v, o, s);
            free(s);
        } else {
            free(buf);
            rc = 1;
        }
    }
    imp_vocab_free(v);
    return rc;
}
