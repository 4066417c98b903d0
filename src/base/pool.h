/*
 * A persistent thread pool for the compute backends. One forward pass issues hundreds of
 * parallel ops (a few per layer); creating threads per op would cost more than a small model's
 * matmul, so workers live as long as the pool and wait between ops (spinning briefly, then
 * sleeping on a condition variable, so an idle pool costs no CPU).
 *
 * Thread safety: one caller at a time may run work on a pool (the backend that owns it).
 */
#ifndef IMP_BASE_POOL_H
#define IMP_BASE_POOL_H

#include "base/status.h"

typedef struct imp_pool imp_pool;

/* Work item: called once on every thread, ith in [0, nth); thread 0 is the caller's. */
typedef void (*imp_pool_fn)(void *ctx, int ith, int nth);

/* Starts n_threads - 1 workers (n_threads >= 1; 1 means everything runs on the caller).
 * Returns IMP_ERR_INVALID_ARG for n_threads < 1 or > 512, IMP_ERR_NOMEM / IMP_ERR_INTERNAL when
 * memory or a thread cannot be had; on failure *out is NULL. */
imp_status imp_pool_create(int n_threads, imp_pool **out, imp_error *err);

/* Stops and joins the workers. NULL is fine. */
void imp_pool_free(imp_pool *p);

int imp_pool_threads(const imp_pool *p);

/* Runs fn on all threads and returns when every call has returned. */
void imp_pool_run(imp_pool *p, imp_pool_fn fn, void *ctx);

/* The [begin, end) share of thread ith of nth over n items, split evenly. */
static inline void imp_pool_split(int64_t n, int ith, int nth, int64_t *begin, int64_t *end) {
    *begin = n * ith / nth;
    *end = n * (ith + 1) / nth;
}

#endif
