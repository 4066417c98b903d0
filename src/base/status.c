/* Status names and the caller-owned error message buffer. */
#include "base/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *imp_status_str(ImpStatus status) {
    switch (status) {
    case IMP_OK: return "ok";
    case IMP_ERR_INVALID_ARG: return "invalid argument";
    case IMP_ERR_IO: return "I/O error";
    case IMP_ERR_FORMAT: return "format error";
    case IMP_ERR_NOMEM: return "out of memory";
    case IMP_ERR_UNSUPPORTED: return "unsupported";
    case IMP_ERR_NOT_FOUND: return "not found";
    case IMP_ERR_TYPE: return "type mismatch";
    case IMP_ERR_RANGE: return "out of range";
    case IMP_ERR_DEVICE: return "device error";
    case IMP_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

void imp_error_clear(imp_error *e) {
    if (!e) return;
    e->status = IMP_OK;
    e->msg[0] = '\0';
}

imp_status imp_error_set(imp_error *e, imp_status status, const char *fmt, ...) {
    if (!e) return status;
    e->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return status;
}

void imp_error_prefix(imp_error *e, const char *fmt, ...) {
    if (!e) return;
    char buf[IMP_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    /* append ": " and the old message, truncating at the buffer's end */
    const char *parts[2] = {": ", e->msg};
    for (int i = 0; i < 2; i++) {
        for (const char *c = parts[i]; *c && len + 1 < sizeof buf; c++) buf[len++] = *c;
    }
    buf[len] = '\0';
    memcpy(e->msg, buf, len + 1);
}
