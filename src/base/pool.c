/*
 * Thread pool: workers wait for a new generation number, run the current item, count down.
 * Waiting spins for a short while first (ops follow each other within microseconds during a
 * forward pass, and a futex wake costs more than that), then sleeps on the condition variable.
 */
#define _POSIX_C_SOURCE 200809L
#include "base/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "base/mem.h"

#define IMP_POOL_SPIN 20000

typedef struct imp_pool_worker {
    imp_pool *pool;
    int ith;
    pthread_t tid;
} imp_pool_worker;

struct imp_pool {
    int n_threads;
    imp_pool_worker *workers; /* [n_threads - 1]                                 */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;          /* bumped (under mu) when a new item is published     */
    atomic_int pending;       /* workers still running the current item             */
    atomic_bool stop;
    imp_pool_fn fn;           /* the current item (written before gen is bumped)    */
    void *ctx;
};

static inline void imp_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void *imp_pool_main(void *arg) {
    imp_pool_worker *w = arg;
    imp_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        for (int i = 0; i < IMP_POOL_SPIN && g == seen && !atomic_load(&p->stop); i++) {
            imp_cpu_relax();
            g = atomic_load_explicit(&p->gen, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop)) {
                pthread_cond_wait(&p->cv, &p->mu);
            }
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = g;
        p->fn(p->ctx, w->ith, p->n_threads);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
    return NULL;
}

imp_status imp_pool_create(int n_threads, imp_pool **out, imp_error *err) {
    *out = NULL;
    if (n_threads < 1 || n_threads > 512) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "thread count %d outside 1..512", n_threads);
    }
    imp_pool *p = imp_calloc(1, sizeof *p);
    if (!p) return imp_error_set(err, IMP_ERR_NOMEM, "thread pool: out of memory");
    p->n_threads = 1;
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->stop, false);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (n_threads > 1) {
        p->workers = imp_calloc((size_t)n_threads - 1, sizeof *p->workers);
        if (!p->workers) {
            imp_pool_free(p);
            return imp_error_set(err, IMP_ERR_NOMEM, "thread pool: out of memory");
        }
        for (int i = 0; i < n_threads - 1; i++) {
            p->workers[i] = (imp_pool_worker){.pool = p, .ith = i + 1};
            if (pthread_create(&p->workers[i].tid, NULL, imp_pool_main, &p->workers[i]) != 0) {
                imp_pool_free(p);
                return imp_error_set(err, IMP_ERR_INTERNAL, "thread pool: cannot start thread %d of %d",
                                     i + 2, n_threads);
            }
            p->n_threads++;
        }
    }
    *out = p;
    return IMP_OK;
}

void imp_pool_free(imp_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads - 1; i++) pthread_join(p->workers[i].tid, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->workers);
    free(p);
}

int imp_pool_threads(const imp_pool *p) { return p ? p->n_threads : 1; }

void imp_pool_run(imp_pool *p, imp_pool_fn fn, void *ctx) {
    if (p->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->pending, p->n_threads - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n_threads);
    for (int i = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; i++) {
        if (i < IMP_POOL_SPIN) {
            imp_cpu_relax();
        } else {
            sched_yield();
        }
    }
}
