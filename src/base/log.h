/* Internal logging: every line goes through the caller-supplied callback (imp_log_set). */
#ifndef IMP_BASE_LOG_H
#define IMP_BASE_LOG_H

#include <imp/imp.h>

void imp_log(ImpLogLevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define IMP_LOG_D(...) imp_log(IMP_LOG_DEBUG, __VA_ARGS__)
#define IMP_LOG_I(...) imp_log(IMP_LOG_INFO, __VA_ARGS__)
#define IMP_LOG_W(...) imp_log(IMP_LOG_WARN, __VA_ARGS__)
#define IMP_LOG_E(...) imp_log(IMP_LOG_ERROR, __VA_ARGS__)

#endif
