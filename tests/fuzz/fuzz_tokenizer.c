/*
 * libFuzzer target for the tokenizer: arbitrary bytes through tokenize -> detokenize (whole and
 * streamed) on synthetic vocabularies made at start-up: SentencePiece vocabularies (with and
 * without the space prefix) with byte fallback and overlapping specials, and byte-level BPE
 * vocabularies with five pre-tokenizer rows. The first input byte picks the vocabulary and
 * whether specials are parsed. Checks, beyond "no
 * crash, no leak, no UB": without special parsing the text comes back byte for byte (every byte
 * is encodable in these vocabularies; with the SPM space prefix, only texts without specials),
 * and the streaming decoder only ever emits valid UTF-8.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/utf8.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer_impl.h"

#define N_VOCABS 7
static imp_vocab *vocabs[N_VOCABS]; /* read-only after LLVMFuzzerInitialize */

static void die(const char *what) {
    fprintf(stderr, "fuzz_tokenizer: setup failed: %s\n", what);
    abort();
}

static imp_vocab *load(imp_gguf_writer *w) {
    char path[] = "/tmp/imp-fuzz-vocab-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) die("mkstemp");
    close(fd);
    imp_error err;
    imp_vocab *v = NULL;
    if (imp_gguf_writer_write(w, path, NULL, NULL, &err) != IMP_OK || imp_vocab_load_file(path, &v, &err) != IMP_OK)
        die(err.msg);
    unlink(path);
    imp_gguf_writer_free(w);
    return v;
}

static imp_vocab *make_spm(bool space_prefix) {
    static const char *extra[] = {"\xE2\x96\x81", "a", "b", "ab", ("\xE2\x96\x81" "a"), "aa", "\xC3\xA9",
                                  "<|ctl|>", "<ud>", "XY", "YZW", "<|c"};
    static const int32_t extra_type[] = {1, 1, 1, 1, 1, 1, 1, 3, 4, 4, 4, 3};
    enum { N_EXTRA = sizeof extra / sizeof extra[0], N = 3 + 256 + N_EXTRA };
    const char *tok[N];
    static char bytes[256][8];
    float score[N];
    int32_t type[N];
    tok[0] = "<unk>", tok[1] = "<s>", tok[2] = "</s>";
    type[0] = 2, type[1] = type[2] = 3;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        tok[3 + b] = bytes[b];
        type[3 + b] = 6;
    }
    for (int i = 0; i < N_EXTRA; i++) tok[259 + i] = extra[i], type[259 + i] = extra_type[i];
    for (int i = 0; i < N; i++) score[i] = -(float)(i % 7);
    imp_gguf_writer *w = imp_gguf_writer_new();
    imp_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    imp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tok, N);
    imp_gguf_writer_set_arr(w, "tokenizer.ggml.scores", IMP_GGUF_FLOAT32, score, N);
    imp_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", IMP_GGUF_INT32, type, N);
    imp_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", space_prefix);
    return load(w);
}

static imp_vocab *make_bpe(const char *pre) {
    enum { N = 256 + 5 };
    static char chars[256][4];
    const char *tok[N];
    int32_t type[N];
    for (int b = 0; b < 256; b++) {
        chars[b][imp_bpe_byte_char((unsigned)b, chars[b])] = 0;
        tok[b] = chars[b];
        type[b] = 1;
    }
    tok[256] = "bc", tok[257] = "ab", tok[258] = "abc", tok[259] = "\xC4\xA0" "a", tok[260] = "<|end|>";
    for (int i = 256; i < N; i++) type[i] = i == 260 ? 3 : 1;
    static const char *merges[] = {"b c", "a b", "a bc", "\xC4\xA0 a"};
    imp_gguf_writer *w = imp_gguf_writer_new();
    imp_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    imp_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    imp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tok, N);
    imp_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", IMP_GGUF_INT32, type, N);
    imp_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 4);
    return load(w);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    static const char *pres[] = {"gpt2", "llama-bpe", "smollm", "deepseek-llm", "tekken"};
    vocabs[0] = make_spm(false);
    vocabs[1] = make_spm(true);
    for (int i = 0; i < 5; i++) vocabs[2 + i] = make_bpe(pres[i]);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const imp_vocab *v = vocabs[data[0] % N_VOCABS];
    const bool parse = (data[0] / N_VOCABS) & 1;
    const char *text = (const char *)data + 1;
    const size_t n = size - 1;
    imp_error err;
    imp_tokens t = {0};
    imp_bytes out = {0}, s = {0};
    if (imp_vocab_tokenize(v, text, n, parse ? IMP_TOK_PARSE_SPECIAL : 0u, &t, &err) != IMP_OK) abort();
    if (imp_vocab_detokenize(v, t.ids, t.n, 0, &out, &err) != IMP_OK) abort();
    /* With add_space_prefix, text after a special token gets its own prefix space (llama.cpp's
     * rule), so only texts without specials must come back exactly there. */
    bool exact = !parse;
    for (size_t i = 0; exact && v->add_space_prefix && i < t.n; i++)
        exact = v->type[t.ids[i]] != IMP_TOKEN_CONTROL && v->type[t.ids[i]] != IMP_TOKEN_USER_DEFINED;
    if (exact && (out.n != n || (n && memcmp(out.p, text, n)))) {
        fprintf(stderr, "round trip differs: %zu bytes in, %zu out\n", n, out.n);
        abort();
    }
    imp_detok_stream ds;
    imp_detok_stream_init(&ds, v, (data[0] & 0x80) ? IMP_DETOK_SPECIAL : 0u);
    for (size_t i = 0; i < t.n; i++)
        if (imp_detok_stream_push(&ds, t.ids[i], &s, &err) != IMP_OK) abort();
    if (imp_detok_stream_finish(&ds, &s, &err) != IMP_OK) abort();
    if (s.n && imp_utf8_invalid_at((const unsigned char *)s.p, s.n) != (size_t)-1) {
        fprintf(stderr, "stream emitted invalid UTF-8\n");
        abort();
    }
    imp_tokens_free(&t);
    free(out.p);
    free(s.p);
    return 0;
}
