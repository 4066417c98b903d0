/*
 * The log sink. The one piece of process-wide state in libimp: a sink is a property of the
 * process (like stderr), set once by the embedding program before it starts threads.
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>

static ImpLogFn g_log_fn = NULL;
static void *g_log_user = NULL;
static ImpLogLevel g_log_min = IMP_LOG_WARN;

void imp_log_set(ImpLogFn fn, void *user, ImpLogLevel min_level) {
    g_log_fn = fn;
    g_log_user = user;
    g_log_min = min_level;
}

void imp_log(ImpLogLevel level, const char *fmt, ...) {
    if (level < g_log_min) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (g_log_fn) {
        g_log_fn(level, line, g_log_user);
    } else {
        static const char *const names[] = {"debug", "info", "warning", "error"};
        fprintf(stderr, "imp: %s: %s\n", names[level & 3], line);
    }
}
