/*
 * Minimal parallelism: run fn over [0, n) split into contiguous ranges on up to n_threads
 * threads (the caller's thread takes one range). Used by tools (quantize, synth); the compute
 * backends get a persistent pool with the forward pass.
 */
#ifndef IMP_BASE_THREADS_H
#define IMP_BASE_THREADS_H

#include <stdint.h>

/* Works on items [begin, end); ith is the range index (0..n_ranges-1). */
typedef void (*imp_range_fn)(void *ctx, int64_t begin, int64_t end, int ith);

/* Splits [0, n) into n_threads ranges and runs them concurrently; returns when all are done.
 * n_threads <= 1 (or thread creation failure) runs the rest on the caller's thread. */
void imp_parallel_for(int n_threads, int64_t n, imp_range_fn fn, void *ctx);

/* Number of online CPUs (at least 1). */
int imp_cpu_count(void);

/* Monotonic time in seconds. */
double imp_time_s(void);

#endif
