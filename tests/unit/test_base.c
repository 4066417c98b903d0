/*
 * src/base: fp16/bf16 conversions (exhaustive fp16 round trip, rounding ties, overflow,
 * subnormals, NaN), error messages (set, prefix, truncation), overflow-checked arithmetic and
 * imp_parallel_for coverage of [0, n) for any thread count.
 */
#include <math.h>
#include <string.h>

#include "base/fp16.h"
#include "base/mem.h"
#include "base/status.h"
#include "base/threads.h"
#include "testutil.h"

static void test_fp16(void) {
    /* every finite fp16 survives fp16 -> f32 -> fp16 exactly; NaNs stay NaN */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = imp_fp16_to_f32((imp_fp16)h);
        if (isnan(f)) {
            if ((h & 0x7c00) != 0x7c00 || (h & 0x3ff) == 0) bad++;
            if (!isnan(imp_fp16_to_f32(imp_f32_to_fp16(f)))) bad++;
            continue;
        }
        if (imp_f32_to_fp16(f) != h) bad++;
    }
    CHECKF(bad == 0, "%d fp16 values do not round-trip", bad);
    CHECK(imp_fp16_to_f32(0x3c00) == 1.0f);
    CHECK(imp_fp16_to_f32(0xc000) == -2.0f);
    CHECK(imp_fp16_to_f32(0x0001) == 5.9604644775390625e-08f); /* smallest subnormal */
    CHECK(imp_fp16_to_f32(0x7bff) == 65504.0f);
    /* ties to even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 -> 1 */
    CHECK(imp_f32_to_fp16(1.0f + 0x1p-11f) == 0x3c00);
    CHECK(imp_f32_to_fp16(1.0f + 3 * 0x1p-11f) == 0x3c02);
    CHECK(imp_f32_to_fp16(65520.0f) == 0x7c00); /* rounds up to inf */
    CHECK(imp_f32_to_fp16(65519.0f) == 0x7bff);
    CHECK(imp_f32_to_fp16(0x1p-25f) == 0x0000); /* exactly half the smallest subnormal: even */
    CHECK(imp_f32_to_fp16(0x1.000002p-25f) == 0x0001);
    CHECK(imp_f32_to_fp16(-0.0f) == 0x8000);
    CHECK(imp_f32_to_fp16(INFINITY) == 0x7c00);
    /* bf16: round to nearest even, NaN quieted */
    CHECK(imp_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(imp_f32_to_bf16(imp_bits_to_f32(0x3f808000u)) == 0x3f80); /* tie -> even */
    CHECK(imp_f32_to_bf16(imp_bits_to_f32(0x3f818000u)) == 0x3f82);
    CHECK(imp_bf16_to_f32(0x4049) == imp_bits_to_f32(0x40490000u));
    CHECK(isnan(imp_bf16_to_f32(imp_f32_to_bf16(imp_bits_to_f32(0x7f800001u)))));
}

static void test_error(void) {
    imp_error e;
    imp_error_clear(&e);
    CHECK(e.status == IMP_OK && e.msg[0] == '\0');
    CHECK(imp_error_set(&e, IMP_ERR_FORMAT, "bad %s at offset %d", "magic", 0) == IMP_ERR_FORMAT);
    CHECK(strcmp(e.msg, "bad magic at offset 0") == 0);
    imp_error_prefix(&e, "file %s", "x.gguf");
    CHECK(strcmp(e.msg, "file x.gguf: bad magic at offset 0") == 0);
    char big[2 * IMP_ERROR_MSG_MAX];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    imp_error_set(&e, IMP_ERR_IO, "%s", big);
    CHECK(strlen(e.msg) == IMP_ERROR_MSG_MAX - 1);
    imp_error_prefix(&e, "p");
    CHECK(strlen(e.msg) == IMP_ERROR_MSG_MAX - 1 && strncmp(e.msg, "p: aaa", 6) == 0);
    CHECK(imp_error_set(NULL, IMP_ERR_IO, "ignored") == IMP_ERR_IO);
    CHECK(strcmp(imp_status_str(IMP_OK), "ok") == 0);
    CHECK(strcmp(imp_status_str((ImpStatus)999), "unknown status") == 0);
}

static void test_mem(void) {
    uint64_t u;
    CHECK(imp_add_u64(1, 2, &u) && u == 3);
    CHECK(!imp_add_u64(UINT64_MAX, 1, &u));
    CHECK(!imp_mul_u64(UINT64_MAX / 2 + 1, 2, &u));
    CHECK(imp_align_up_u64(33, 32, &u) && u == 64);
    CHECK(imp_align_up_u64(64, 32, &u) && u == 64);
    CHECK(!imp_align_up_u64(UINT64_MAX - 3, 32, &u));
    CHECK(imp_calloc(SIZE_MAX / 2, 4) == NULL);
    CHECK(imp_malloc_array(SIZE_MAX / 8 + 1, 16) == NULL);
}

typedef struct {
    int counts[1000];
} cover_ctx;

static void cover(void *ctx, int64_t b, int64_t e, int ith) {
    cover_ctx *c = ctx;
    for (int64_t i = b; i < e; i++) __atomic_fetch_add(&c->counts[i], 1, __ATOMIC_RELAXED);
}

static void test_parallel(void) {
    int threads[] = {1, 2, 3, 7, 64, 2000};
    for (size_t k = 0; k < sizeof threads / sizeof threads[0]; k++) {
        for (int64_t n = 0; n <= 1000; n += 333) {
            cover_ctx c;
            memset(&c, 0, sizeof c);
            imp_parallel_for(threads[k], n, cover, &c);
            int ok = 1;
            for (int64_t i = 0; i < 1000; i++) ok &= c.counts[i] == (i < n ? 1 : 0);
            CHECKF(ok, "threads %d n %lld", threads[k], (long long)n);
        }
    }
    CHECK(imp_cpu_count() >= 1);
}

int main(void) {
    test_fp16();
    test_error();
    test_mem();
    test_parallel();
    return imp_test_finish("test_base");
}
