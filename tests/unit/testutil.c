/* Test harness implementation (see testutil.h). */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>

int imp_test_failures = 0;
int imp_test_checks = 0;

int imp_test_finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, imp_test_checks, imp_test_failures);
    return imp_test_failures ? 1 : 0;
}

void imp_test_skip(const char *reason) {
    printf("SKIPPED: %s\n", reason);
    exit(77);
}

uint64_t imp_test_rng_u64(imp_test_rng *r) {
    /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float imp_test_rng_uniform(imp_test_rng *r) {
    return (float)(imp_test_rng_u64(r) >> 40) * (1.0f / 16777216.0f);
}

float imp_test_rng_normal(imp_test_rng *r) {
    float u1 = imp_test_rng_uniform(r), u2 = imp_test_rng_uniform(r);
    if (u1 < 1e-12f) u1 = 1e-12f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}
