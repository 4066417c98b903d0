/*
 * Test helper: helper_vocab_only IN.gguf OUT.gguf writes a vocabulary-only GGUF (no tensors):
 * general.architecture, general.name and every tokenizer.* key of IN, copied unchanged — the
 * kind of file llama.cpp's tokenizer tests use (ggml-vocab-*.gguf). Exit 0 ok, 1 error.
 */
#include <stdio.h>
#include <string.h>

#include "gguf/gguf.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: helper_vocab_only IN.gguf OUT.gguf\n");
        return 1;
    }
    imp_error err;
    imp_error_clear(&err);
    imp_gguf *g = NULL;
    if (imp_gguf_open(argv[1], &g, &err) != IMP_OK) {
        fprintf(stderr, "helper_vocab_only: %s\n", err.msg);
        return 1;
    }
    imp_gguf_writer *w = imp_gguf_writer_new();
    int rc = w ? 0 : 1;
    for (int64_t i = 0; !rc && i < imp_gguf_n_kv(g); i++) {
        const char *key = imp_gguf_kv_key(g, i);
        if (strncmp(key, "tokenizer.", 10) && strcmp(key, "general.architecture") && strcmp(key, "general.name"))
            continue;
        if (imp_gguf_writer_set_value(w, key, imp_gguf_kv_value(g, i)) != IMP_OK) rc = 1;
    }
    if (!rc && imp_gguf_writer_write(w, argv[2], NULL, NULL, &err) != IMP_OK) {
        fprintf(stderr, "helper_vocab_only: %s\n", err.msg);
        rc = 1;
    }
    imp_gguf_writer_free(w);
    imp_gguf_close(g);
    return rc;
}
