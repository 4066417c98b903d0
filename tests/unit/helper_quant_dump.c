/*
 * helper_quant_dump OUTDIR [TYPE...]
 *
 * Writes seeded test data and imp's results for every computable type of the type table (or the
 * named ones) so tests/unit/py_quant_ref.py can compare them with an independent reference (PyPI
 * gguf's numpy code). Raw little-endian binary, read with numpy.fromfile:
 *
 *   manifest.txt   one line per type: NAME id block_size type_size n_blocks rows cols
 *   NAME.blocks    n_blocks random blocks (uint8, n_blocks * type_size)
 *   NAME.deq       imp's dequantization of them (float32, n_blocks * block_size)
 *   NAME.x         rows x cols float32 inputs: normal rows and awkward ones (see make_inputs)
 *   NAME.q         imp's quantization of NAME.x, row by row without an imatrix (uint8)
 *   NAME.qdeq      imp's dequantization of NAME.q (float32, rows x cols)
 *
 * The random blocks and inputs come from quant_testdata.h (sane random scales, all-0x00 and
 * all-0xff code bytes, raw bits for the float types; normal, tiny, huge, outlier, tie rows).
 *
 * Exit status: 0 on success, 1 on bad arguments or I/O failure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"
#include "quant_testdata.h"
#include "testutil.h"

#define ROWS 64
#define COLS 1024 /* a multiple of every block size (256 at most) */

static int write_file(const char *dir, const char *name, const char *ext, const void *data,
                      size_t bytes) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "helper_quant_dump: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    const size_t put = fwrite(data, 1, bytes, f);
    if (fclose(f) != 0 || put != bytes) {
        fprintf(stderr, "helper_quant_dump: short write to %s\n", path);
        return -1;
    }
    return 0;
}

static int dump_type(const char *dir, imp_type t, FILE *manifest) {
    const imp_type_traits *tr = imp_type_get(t);
    const int64_t bs = tr->block_size;
    const int64_t nb = bs == 1 ? 65536 : (65536 / bs > 1024 ? 65536 / bs : 1024);
    const size_t n_x = (size_t)ROWS * COLS;
    const size_t row_bytes = imp_row_size(t, COLS);
    imp_test_rng r = {0x5eed0000ull + (uint64_t)t};

    uint8_t *blocks = malloc((size_t)nb * tr->type_size);
    float *deq = malloc((size_t)(nb * bs) * sizeof(float));
    float *x = malloc(n_x * sizeof(float));
    uint8_t *q = malloc(ROWS * row_bytes);
    float *qdeq = malloc(n_x * sizeof(float));
    int rc = -1;
    if (!blocks || !deq || !x || !q || !qdeq || row_bytes == 0) goto done;

    make_inputs(x, ROWS, COLS, &r);
    for (int row = 0; row < ROWS; row++) {
        tr->quantize(x + (size_t)row * COLS, q + row * row_bytes, COLS, NULL);
        tr->dequantize(q + row * row_bytes, qdeq + (size_t)row * COLS, COLS);
    }

    const int made = fill_random_blocks(t, blocks, nb, &r);
    if (made < 0) goto done;
    if (made == 1)
        fprintf(stderr,
                "helper_quant_dump: note: %s has no scale-field entry in quant_testdata.h; "
                "its blocks come from quantized floats\n",
                tr->name);
    tr->dequantize(blocks, deq, nb * bs);

    if (write_file(dir, tr->name, "blocks", blocks, (size_t)nb * tr->type_size) ||
        write_file(dir, tr->name, "deq", deq, (size_t)(nb * bs) * sizeof(float)) ||
        write_file(dir, tr->name, "x", x, n_x * sizeof(float)) ||
        write_file(dir, tr->name, "q", q, ROWS * row_bytes) ||
        write_file(dir, tr->name, "qdeq", qdeq, n_x * sizeof(float)))
        goto done;
    fprintf(manifest, "%s %d %lld %zu %lld %d %d\n", tr->name, (int)t, (long long)bs, tr->type_size,
            (long long)nb, ROWS, COLS);
    rc = 0;
done:
    if (rc) fprintf(stderr, "helper_quant_dump: failed on %s\n", tr->name);
    free(blocks);
    free(deq);
    free(x);
    free(q);
    free(qdeq);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: helper_quant_dump OUTDIR [TYPE...]\n");
        return 1;
    }
    const char *dir = argv[1];
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *manifest = fopen(path, "w");
    if (!manifest) {
        fprintf(stderr, "helper_quant_dump: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    int rc = 0;
    if (argc > 2) {
        for (int i = 2; i < argc && rc == 0; i++) {
            imp_type t;
            if (!imp_type_from_name(argv[i], &t) || !imp_type_is_computable(t)) {
                fprintf(stderr, "helper_quant_dump: %s is not a computable type\n", argv[i]);
                rc = 1;
            } else if (dump_type(dir, t, manifest)) {
                rc = 1;
            }
        }
    } else {
        for (uint32_t t = 0; t < IMP_TYPE_COUNT && rc == 0; t++)
            if (imp_type_is_computable(t) && dump_type(dir, (imp_type)t, manifest)) rc = 1;
    }
    if (fclose(manifest) != 0) rc = 1;
    return rc;
}
