/*
 * Between the imp.conf parser (config_parse.c: text -> sections, keys and typed values) and the
 * loader (config.c: key table, checks, precedence). Tests include it to check values directly.
 */
#ifndef IMP_CONFIG_INTERNAL_H
#define IMP_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

#define IMP_CFG_LINE_MAX 4096       /* bytes per line, without the newline */
#define IMP_CFG_FILE_MAX (1u << 20) /* bytes per file                       */

/* A parsed value; the type is what the text says, not yet the key's. */
typedef struct imp_cfg_value {
    imp_cfg_type type;
    int64_t i;                    /* IMP_CFG_INT                          */
    double f;                     /* IMP_CFG_FLOAT (finite)               */
    bool b;                       /* IMP_CFG_BOOL                         */
    char s[IMP_CFG_LINE_MAX + 1]; /* IMP_CFG_STR, NUL-terminated          */
    size_t len;                   /* IMP_CFG_STR: bytes in s (no NUL ones) */
} imp_cfg_value;

/* Parses the value at p[0, n) where n reaches the end of the line: spaces and a # comment may
 * follow it, nothing else. On failure writes a reason (no file or line) into why[0, why_n) and
 * returns IMP_ERR_FORMAT or IMP_ERR_UNSUPPORTED. */
imp_status imp_cfg_parse_value(const char *p, size_t n, imp_cfg_value *v, char *why, size_t why_n);

/* What the parser reports; each returns IMP_OK or a status with a reason in why (the parser
 * prefixes "NAME:LINE: "). key is NUL-terminated. */
typedef struct imp_cfg_handlers {
    void *ud;
    imp_status (*section)(void *ud, const char *name, int line, char *why, size_t why_n);
    imp_status (*key)(void *ud, const char *key, const imp_cfg_value *v, int line, char *why,
                      size_t why_n);
} imp_cfg_handlers;

/* Parses text[0, len) (named `name` in messages): size, UTF-8, line length and syntax checks,
 * then the handlers in order. Stops at the first error, formatted as "NAME:LINE: reason". */
imp_status imp_cfg_parse(const char *text, size_t len, const char *name, const imp_cfg_handlers *h,
                         imp_error *err);

/* Formats a message into why[0, why_n) and returns st (shared by the parser and the loader). */
imp_status imp_cfg_why(char *why, size_t why_n, imp_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
