/*
 * imp — public C API.
 *
 * Usage (grows with the engine; model/context API arrives with the forward pass):
 *
 *     #include <imp/imp.h>
 *     printf("imp %s\n", imp_version());
 *     imp_log_set(my_log_fn, my_user_data);   // the library never prints to stdout
 *
 * Thread safety: every function here may be called from any thread, except imp_log_set, which
 * should be called once before other threads use the library.
 */
#ifndef IMP_IMP_H
#define IMP_IMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every fallible function returns one of these. IMP_OK is 0. */
typedef enum ImpStatus {
    IMP_OK = 0,
    IMP_ERR_INVALID_ARG = 1, /* a caller passed a bad argument (NULL, out of range)          */
    IMP_ERR_IO = 2,          /* open/read/write/mmap failed                                   */
    IMP_ERR_FORMAT = 3,      /* a file or request is malformed                                */
    IMP_ERR_NOMEM = 4,       /* an allocation failed or would exceed a bound                  */
    IMP_ERR_UNSUPPORTED = 5, /* valid input that imp does not handle (yet)                    */
    IMP_ERR_NOT_FOUND = 6,   /* a key, tensor or name is absent                               */
    IMP_ERR_TYPE = 7,        /* a value has another type than the one asked for               */
    IMP_ERR_RANGE = 8,       /* a value does not fit the type or bound asked for              */
    IMP_ERR_DEVICE = 9,      /* the GPU or its runtime reported an error                      */
    IMP_ERR_INTERNAL = 10,   /* a bug in imp                                                  */
} ImpStatus;

/* A short constant English name for a status ("ok", "format error", ...). Never NULL. */
const char *imp_status_str(ImpStatus status);

/* The library version as "MAJOR.MINOR.PATCH". Static storage. */
const char *imp_version(void);

typedef enum ImpLogLevel {
    IMP_LOG_DEBUG = 0,
    IMP_LOG_INFO = 1,
    IMP_LOG_WARN = 2,
    IMP_LOG_ERROR = 3,
} ImpLogLevel;

/* Receives every log line (without a trailing newline). */
typedef void (*ImpLogFn)(ImpLogLevel level, const char *message, void *user);

/* Routes the library's log lines to fn (NULL: the default, which writes WARN and ERROR lines to
 * stderr). min_level drops lines below it. Call before other threads use the library. */
void imp_log_set(ImpLogFn fn, void *user, ImpLogLevel min_level);

#ifdef __cplusplus
}
#endif
#endif /* IMP_IMP_H */
