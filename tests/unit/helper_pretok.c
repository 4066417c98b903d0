/*
 * Test helper for py_pretok_ref.py: runs one pre-tokenizer row.
 *   helper_pretok --patterns NAME   print the row's patterns, one per line
 *   helper_pretok NAME FILE         print the pieces FILE's bytes split into, one per line, in hex
 * Exit 0 ok, 1 error (message on stderr).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/pretok.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: helper_pretok --patterns NAME | NAME FILE\n");
        return 1;
    }
    const bool patterns = !strcmp(argv[1], "--patterns");
    const char *name = patterns ? argv[2] : argv[1];
    imp_error err;
    imp_error_clear(&err);
    imp_pretok *p = NULL;
    const char *row = NULL;
    bool ignore = false, fell_back = false;
    if (imp_pretok_create(name, &p, &row, &ignore, &fell_back, &err) != IMP_OK) {
        fprintf(stderr, "helper_pretok: %s\n", err.msg);
        return 1;
    }
    if (fell_back) fprintf(stderr, "helper_pretok: '%s' unknown, using '%s'\n", name, row);
    int rc = 0;
    if (patterns) {
        for (int i = 0; imp_pretok_pattern(p, i); i++) printf("%s\n", imp_pretok_pattern(p, i));
    } else {
        FILE *f = fopen(argv[2], "rb");
        static char buf[1 << 20];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f) fclose(f);
        imp_span_list l = {0};
        if (!f || imp_pretok_split(p, buf, n, &l, &err) != IMP_OK) {
            fprintf(stderr, "helper_pretok: %s\n", f ? err.msg : "cannot read input");
            rc = 1;
        }
        for (size_t i = 0; !rc && i < l.n; i++) {
            for (size_t k = 0; k < l.v[i].len; k++) printf("%02x", (unsigned char)buf[l.v[i].off + k]);
            printf("\n");
        }
        free(l.v);
    }
    imp_pretok_free(p);
    return rc;
}
