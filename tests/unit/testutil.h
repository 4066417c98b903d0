/*
 * Tiny test harness: CHECK macros that count failures and print file:line, a seeded RNG, and
 * the exit convention (0 pass, 1 fail, 77 skip — ctest's SKIP_RETURN_CODE).
 */
#ifndef IMP_TESTUTIL_H
#define IMP_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>

extern int imp_test_failures;
extern int imp_test_checks;

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        imp_test_checks++;                                                                       \
        if (!(cond)) {                                                                           \
            imp_test_failures++;                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);            \
        }                                                                                        \
    } while (0)

#define CHECKF(cond, ...)                                                                        \
    do {                                                                                         \
        imp_test_checks++;                                                                       \
        if (!(cond)) {                                                                           \
            imp_test_failures++;                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);            \
            fprintf(stderr, __VA_ARGS__);                                                        \
            fputc('\n', stderr);                                                                 \
        }                                                                                        \
    } while (0)

/* Prints a summary ("name: N checks, M failed") and returns the process exit code. */
int imp_test_finish(const char *name);

/* Prints the reason and exits 77 (skip). */
void imp_test_skip(const char *reason) __attribute__((noreturn));

/* xoshiro-style deterministic RNG for tests. */
typedef struct { uint64_t s; } imp_test_rng;
uint64_t imp_test_rng_u64(imp_test_rng *r);
float imp_test_rng_uniform(imp_test_rng *r);          /* [0, 1) */
float imp_test_rng_normal(imp_test_rng *r);           /* N(0, 1) */

#endif
