/*
 * Status codes and error messages.
 *
 * Fallible internal functions return imp_status and, when given a non-NULL imp_error, write a
 * one-line message that names the problem (and, for files, the offset). The message buffer is
 * the caller's, so nothing here is global or thread-local.
 */
#ifndef IMP_BASE_STATUS_H
#define IMP_BASE_STATUS_H

#include <imp/imp.h>

typedef ImpStatus imp_status;

#define IMP_ERROR_MSG_MAX 512

typedef struct imp_error {
    imp_status status;
    char msg[IMP_ERROR_MSG_MAX]; /* NUL-terminated; "" when no error was set */
} imp_error;

/* Clears e (if non-NULL). */
void imp_error_clear(imp_error *e);

/* Sets e->status and formats e->msg (if e is non-NULL); returns status, so callers can write
 * `return imp_error_set(err, IMP_ERR_FORMAT, "bad magic at offset %d", 0);`. */
imp_status imp_error_set(imp_error *e, imp_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an existing message (adds context as an error travels up). */
void imp_error_prefix(imp_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
