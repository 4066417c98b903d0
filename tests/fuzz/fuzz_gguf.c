/*
 * libFuzzer target for the GGUF reader: opens the input with imp_gguf_open_memory and, when the
 * reader accepts it, walks everything it exposes (every key and value, nested arrays and string
 * arrays to the last element, every typed getter on every key, every tensor and every byte of
 * its data) so ASAN/UBSAN see each pointer and size the reader hands out. A rejection must come
 * with a message; an accepted file must be self-consistent (gguf_walk.h). Either failure aborts,
 * which libFuzzer reports as a crash.
 *
 * Build: cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DIMP_FUZZ=ON -DIMP_CUDA=OFF
 * Run:   tests/fuzz/run-fuzz.sh build-fuzz 60
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "gguf_walk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* an exact-size copy: libFuzzer's buffer may have slack that would hide over-reads */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    imp_gguf *g = NULL;
    imp_error err;
    imp_error_clear(&err);
    imp_status st = imp_gguf_open_memory(copy, size, &g, &err);
    if (st == IMP_OK) {
        int bad = 0;
        volatile uint64_t h = imp_test_gguf_walk(g, &bad);
        (void)h;
        if (bad) {
            fprintf(stderr, "fuzz_gguf: accepted file is inconsistent (%d problems)\n", bad);
            abort();
        }
        imp_gguf_close(g);
    } else if (g != NULL || err.msg[0] == '\0' || err.status != st) {
        fprintf(stderr, "fuzz_gguf: rejection without a message (status %d)\n", (int)st);
        abort();
    }
    free(copy);
    return 0;
}
