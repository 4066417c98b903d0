/* pthread-based parallel-for and small time helpers. */
#define _POSIX_C_SOURCE 200809L
#include "base/threads.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    imp_range_fn fn;
    void *ctx;
    int64_t begin, end;
    int ith;
} imp_range_job;

static void *imp_range_thread(void *arg) {
    imp_range_job *j = arg;
    j->fn(j->ctx, j->begin, j->end, j->ith);
    return NULL;
}

void imp_parallel_for(int n_threads, int64_t n, imp_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (n_threads > n) n_threads = (int)n;
    if (n_threads <= 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    imp_range_job *jobs = calloc((size_t)n_threads, sizeof *jobs);
    pthread_t *tids = calloc((size_t)n_threads, sizeof *tids);
    char *started = calloc((size_t)n_threads, 1);
    if (!jobs || !tids || !started) {
        free(jobs);
        free(tids);
        free(started);
        fn(ctx, 0, n, 0);
        return;
    }
    for (int t = 0; t < n_threads; t++) {
        jobs[t] = (imp_range_job){fn, ctx, n * t / n_threads, n * (t + 1) / n_threads, t};
    }
    for (int t = 1; t < n_threads; t++) {
        started[t] = pthread_create(&tids[t], NULL, imp_range_thread, &jobs[t]) == 0;
    }
    imp_range_thread(&jobs[0]);
    for (int t = 1; t < n_threads; t++) {
        if (started[t]) {
            pthread_join(tids[t], NULL);
        } else {
            imp_range_thread(&jobs[t]); /* could not start: do it here */
        }
    }
    free(jobs);
    free(tids);
    free(started);
}

int imp_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

double imp_time_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
