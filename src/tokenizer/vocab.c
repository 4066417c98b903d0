/*
 * Loading and validating a GGUF vocabulary (see vocab.h).
 *
 * Defaults follow llama.cpp where the file is silent: SPM adds BOS and a space prefix, BPE adds
 * neither; the pre-tokenizer row may turn on ignore_merges; explicit GGUF flags win. Special ids
 * outside the vocabulary are dropped with a warning (llama.cpp does the same), everything else
 * that is malformed is an error naming the key and the index.
 */
#include "tokenizer/vocab.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tokenizer_impl.h"

/* A practical bound: the largest vocabularies in use have ~260k tokens. */
#define VOCAB_MAX_TOKENS (1 << 24)

uint64_t imp_vocab_hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix for the low bits */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

static uint32_t vocab_pow2_at_least(uint64_t n) {
    uint64_t c = 16;
    while (c < n) c <<= 1;
    return (uint32_t)c;
}

int32_t imp_vocab_find(const imp_vocab *v, const char *s, size_t n) {
    const uint64_t h = imp_vocab_hash(s, n);
    const uint64_t tag = h & 0xFFFFFFFF00000000ull;
    uint32_t i = (uint32_t)h & v->slot_mask;
    for (;;) {
        const uint64_t e = v->slots[i];
        if (e == 0) return -1;
        if ((e & 0xFFFFFFFF00000000ull) == tag) {
            const int32_t id = (int32_t)(uint32_t)e - 1;
            if (v->len[id] == n && !memcmp(v->text + v->off[id], s, n)) return id;
        }
        i = (i + 1) & v->slot_mask;
    }
}

static uint64_t merge_hash(uint64_t key) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return key;
}

int32_t imp_vocab_merge(const imp_vocab *v, int32_t left, int32_t right, int32_t *result) {
    if (!v->merge_key || left < 0 || right < 0) return -1;
    const uint64_t key = ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1;
    uint32_t i = (uint32_t)merge_hash(key) & v->merge_mask;
    for (;;) {
        uint64_t k = v->merge_key[i];
        if (k == 0) return -1;
        if (k == key) {
            *result = v->merge_id[i];
            return v->merge_rank[i];
        }
        i = (i + 1) & v->merge_mask;
    }
}

bool imp_vocab_is_eog(const imp_vocab *v, int32_t id) {
    for (int i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) return true;
    return false;
}

void imp_vocab_free(imp_vocab *v) {
    if (!v) return;
    free(v->text);
    free(v->off);
    free(v->len);
    free(v->score);
    free(v->type);
    free(v->slots);
    free(v->merge_key);
    free(v->merge_rank);
    free(v->merge_id);
    free(v->special);
    free(v->trie_child);
    free(v->trie_next);
    free(v->trie_rank);
    free(v->trie_byte);
    free(v->chat_template);
    imp_pretok_free(v->pretok);
    free(v);
}

/* Returns the array value for key, NULL when absent; a non-array value is an error. */
static imp_status vocab_arr(const imp_gguf *g, const char *key, imp_gguf_type elem,
                            const imp_gguf_value **out, imp_error *err) {
    *out = NULL;
    if (imp_gguf_find_key(g, key) < 0) return IMP_OK;
    imp_status st = imp_gguf_get_arr(g, key, out, err);
    if (st != IMP_OK) return st;
    /* Token types may be stored in any integer width, scores as float32 or float64. */
    const imp_gguf_type t = (*out)->arr.elem_type;
    const bool is_int = t <= IMP_GGUF_INT32 || t == IMP_GGUF_UINT64 || t == IMP_GGUF_INT64;
    const bool ok = elem == IMP_GGUF_INT32   ? is_int
                    : elem == IMP_GGUF_FLOAT32 ? (t == IMP_GGUF_FLOAT32 || t == IMP_GGUF_FLOAT64)
                                               : t == elem;
    if (!ok)
        return imp_error_set(err, IMP_ERR_TYPE, "%s: array of %s, expected %s", key,
                             imp_gguf_type_name(t), imp_gguf_type_name(elem));
    return IMP_OK;
}

/* Optional bool key: leaves *v unchanged when absent. */
static imp_status vocab_bool(const imp_gguf *g, const char *key, bool *v, imp_error *err) {
    if (imp_gguf_find_key(g, key) < 0) return IMP_OK;
    return imp_gguf_get_bool(g, key, v, err);
}

/* Optional special id: absent keeps *id; -1 means none; out of range warns and sets -1. */
static imp_status vocab_special_id(const imp_vocab *v, const imp_gguf *g, const char *key,
                                   int32_t *id, imp_error *err) {
    if (imp_gguf_find_key(g, key) < 0) return IMP_OK;
    int64_t x = 0;
    imp_status st = imp_gguf_get_i64(g, key, &x, err);
    if (st != IMP_OK) return st;
    if (x >= v->n_tokens || x < -1)
        IMP_LOG_W("vocab: %s = %lld is outside the vocabulary (%d tokens); ignored", key,
                  (long long)x, v->n_tokens);
    *id = (x >= 0 && x < v->n_tokens) ? (int32_t)x : -1;
    return IMP_OK;
}

static imp_status vocab_tokens(imp_vocab *v, const imp_gguf *g, imp_error *err) {
    const imp_gguf_value *toks, *scores, *types;
    imp_status st = vocab_arr(g, "tokenizer.ggml.tokens", IMP_GGUF_STRING, &toks, err);
    if (st != IMP_OK) return st;
    if (!toks) return imp_error_set(err, IMP_ERR_FORMAT, "tokenizer.ggml.tokens is missing");
    if (toks->arr.n == 0 || toks->arr.n > VOCAB_MAX_TOKENS)
        return imp_error_set(err, IMP_ERR_FORMAT, "tokenizer.ggml.tokens: %llu tokens (1..%d allowed)",
                             (unsigned long long)toks->arr.n, VOCAB_MAX_TOKENS);
    const int32_t n = (int32_t)toks->arr.n;
    v->n_tokens = n;
    if ((st = vocab_arr(g, "tokenizer.ggml.scores", IMP_GGUF_FLOAT32, &scores, err)) != IMP_OK ||
        (st = vocab_arr(g, "tokenizer.ggml.token_type", IMP_GGUF_INT32, &types, err)) != IMP_OK)
        return st;
    if (scores && scores->arr.n != (uint64_t)n)
        return imp_error_set(err, IMP_ERR_FORMAT, "tokenizer.ggml.scores has %llu entries for %d tokens",
                             (unsigned long long)scores->arr.n, n);
    if (types && types->arr.n != (uint64_t)n)
        return imp_error_set(err, IMP_ERR_FORMAT, "tokenizer.ggml.token_type has %llu entries for %d tokens",
                             (unsigned long long)types->arr.n, n);

    uint64_t total = 0;
    for (int32_t i = 0; i < n; i++) total += toks->arr.strs[i].len; /* each bounded by the file */
    if (total > UINT32_MAX)
        return imp_error_set(err, IMP_ERR_FORMAT, "tokenizer.ggml.tokens: %llu bytes of text",
                             (unsigned long long)total);
    v->text = malloc(total ? total : 1);
    v->off = imp_malloc_array((size_t)n, sizeof *v->off);
    v->len = imp_malloc_array((size_t)n, sizeof *v->len);
    v->score = imp_calloc((size_t)n, sizeof *v->score);
    v->type = imp_malloc_array((size_t)n, 1);
    v->slot_mask = vocab_pow2_at_least((uint64_t)n * 2) - 1;
    v->slots = imp_malloc_array((size_t)v->slot_mask + 1, sizeof *v->slots);
    if (!v->text || !v->off || !v->len || !v->score || !v->type || !v->slots)
        return imp_error_set(err, IMP_ERR_NOMEM, "vocab: out of memory for %d tokens", n);
    memset(v->slots, 0, ((size_t)v->slot_mask + 1) * sizeof *v->slots);

    uint32_t at = 0;
    int32_t dups = 0;
    for (int32_t i = 0; i < n; i++) {
        const imp_gguf_str s = toks->arr.strs[i];
        memcpy(v->text + at, s.ptr, s.len);
        v->off[i] = at;
        v->len[i] = (uint32_t)s.len;
        at += (uint32_t)s.len;
        if (scores) {
            double d = 0;
            imp_gguf_arr_f64(scores, (uint64_t)i, &d);
            v->score[i] = (float)d;
        }
        int64_t t = IMP_TOKEN_NORMAL;
        if (types) imp_gguf_arr_i64(types, (uint64_t)i, &t);
        if (t < IMP_TOKEN_UNDEFINED || t > IMP_TOKEN_BYTE)
            return imp_error_set(err, IMP_ERR_FORMAT, "tokenizer.ggml.token_type[%d] = %lld is not a token type (0..6)",
                                 i, (long long)t);
        v->type[i] = (uint8_t)t;
        if (s.len == 0) continue; /* an empty text can never be looked up */
        /* First id wins for a duplicated text (SentencePiece and HF refuse duplicates). */
        if (imp_vocab_find(v, v->text + v->off[i], s.len) >= 0) {
            dups++;
            continue;
        }
        const uint64_t h = imp_vocab_hash(v->text + v->off[i], s.len);
        uint32_t k = (uint32_t)h & v->slot_mask;
        while (v->slots[k]) k = (k + 1) & v->slot_mask;
        v->slots[k] = (h & 0xFFFFFFFF00000000ull) | (uint32_t)(i + 1);
    }
    if (dups) IMP_LOG_W("vocab: %d duplicated token texts; the lowest id is used for each", dups);
    return IMP_OK;
}

static imp_status vocab_merges(imp_vocab *v, const imp_gguf *g, imp_error *err) {
    const imp_gguf_value *m;
    imp_status st = vocab_arr(g, "tokenizer.ggml.merges", IMP_GGUF_STRING, &m, err);
    if (st != IMP_OK) return st;
    if (!m) return imp_error_set(err, IMP_ERR_FORMAT, "tokenizer.ggml.merges is missing (needed by a gpt2 BPE vocabulary)");
    if (m->arr.n > VOCAB_MAX_TOKENS * 2ull)
        return imp_error_set(err, IMP_ERR_FORMAT, "tokenizer.ggml.merges: %llu merges", (unsigned long long)m->arr.n);
    v->merge_mask = vocab_pow2_at_least(m->arr.n * 2 + 1) - 1;
    const size_t cap = (size_t)v->merge_mask + 1;
    v->merge_key = imp_calloc(cap, sizeof *v->merge_key);
    v->merge_rank = imp_malloc_array(cap, sizeof *v->merge_rank);
    v->merge_id = imp_malloc_array(cap, sizeof *v->merge_id);
    if (!v->merge_key || !v->merge_rank || !v->merge_id)
        return imp_error_set(err, IMP_ERR_NOMEM, "vocab: out of memory for %llu merges", (unsigned long long)m->arr.n);
    int32_t skipped = 0, first_bad = -1;
    char buf[512];
    for (uint64_t r = 0; r < m->arr.n; r++) {
        const imp_gguf_str s = m->arr.strs[r];
        /* "left right": the first space after the first byte separates (a part may itself be
         * a space in vocabularies without byte mapping). */
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        if (!sp || sp == s.ptr + s.len - 1)
            return imp_error_set(err, IMP_ERR_FORMAT, "tokenizer.ggml.merges[%llu] is not 'left right' (%.*s)",
                                 (unsigned long long)r, (int)(s.len > 40 ? 40 : s.len), s.ptr);
        size_t ln = (size_t)(sp - s.ptr), rn = s.len - ln - 1;
        int32_t a = imp_vocab_find(v, s.ptr, ln), b = imp_vocab_find(v, sp + 1, rn), c = -1;
        if (ln + rn <= sizeof buf) {
            memcpy(buf, s.ptr, ln);
            memcpy(buf + ln, sp + 1, rn);
            c = imp_vocab_find(v, buf, ln + rn);
        }
        if (a < 0 || b < 0 || c < 0) { /* can never fire on token symbols: skip, say so below */
            if (first_bad < 0) first_bad = (int32_t)r;
            skipped++;
            continue;
        }
        const uint64_t key = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
        uint32_t i = (uint32_t)merge_hash(key) & v->merge_mask;
        while (v->merge_key[i] != 0 && v->merge_key[i] != key) i = (i + 1) & v->merge_mask;
        if (v->merge_key[i] == key) continue; /* a repeated pair keeps its first (best) rank */
        v->merge_key[i] = key;
        v->merge_rank[i] = (int32_t)r;
        v->merge_id[i] = c;
        v->n_merges++;
    }
    if (skipped)
        IMP_LOG_W("vocab: %d of %llu merges name pieces that are not tokens (first: #%d); skipped",
                  skipped, (unsigned long long)m->arr.n, first_bad);
    return IMP_OK;
}

static void vocab_byte_tokens(imp_vocab *v) {
    for (unsigned b = 0; b < 256; b++) {
        char s[8];
        int n;
        if (v->kind == IMP_VOCAB_SPM) {
            static const char hex[] = "0123456789ABCDEF";
            memcpy(s, "<0x", 3);
            s[3] = hex[b >> 4];
            s[4] = hex[b & 15];
            s[5] = '>';
            n = 6;
        } else {
            n = imp_bpe_byte_char(b, s);
        }
        v->byte_token[b] = imp_vocab_find(v, s, (size_t)n);
        if (v->kind == IMP_VOCAB_SPM && v->byte_token[b] < 0 && b < 0x80) /* no <0xNN>: the char */
            v->byte_token[b] = imp_vocab_find(v, (const char *)&(char){(char)b}, 1);
    }
}

static int vocab_cmp_special(const void *pa, const void *pb, void *ctx) {
    const imp_vocab *v = ctx;
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    if (v->len[a] != v->len[b]) return v->len[a] > v->len[b] ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* qsort has no context argument in C11: sort with a small merge sort instead. */
static void vocab_sort_specials(imp_vocab *v, int32_t *a, int32_t *tmp, int32_t n) {
    if (n < 2) return;
    int32_t h = n / 2;
    vocab_sort_specials(v, a, tmp, h);
    vocab_sort_specials(v, a + h, tmp, n - h);
    int32_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = vocab_cmp_special(&a[j], &a[i], v) < 0 ? a[j++] : a[i++];
    while (i < h) tmp[k++] = a[i++];
    while (j < n) tmp[k++] = a[j++];
    memcpy(a, tmp, (size_t)n * sizeof *a);
}

static imp_status vocab_specials(imp_vocab *v, imp_error *err) {
    int32_t n = 0;
    for (int32_t i = 0; i < v->n_tokens; i++) {
        const uint8_t t = v->type[i];
        if ((t == IMP_TOKEN_CONTROL || t == IMP_TOKEN_USER_DEFINED || t == IMP_TOKEN_UNKNOWN) && v->len[i]) n++;
    }
    if (!n) return IMP_OK;
    v->special = imp_malloc_array((size_t)n, sizeof *v->special);
    int32_t *tmp = imp_malloc_array((size_t)n, sizeof *tmp);
    if (!v->special || !tmp) {
        free(tmp);
        return imp_error_set(err, IMP_ERR_NOMEM, "vocab: out of memory");
    }
    for (int32_t i = 0; i < v->n_tokens; i++) {
        const uint8_t t = v->type[i];
        if ((t == IMP_TOKEN_CONTROL || t == IMP_TOKEN_USER_DEFINED || t == IMP_TOKEN_UNKNOWN) && v->len[i])
            v->special[v->n_special++] = i;
    }
    vocab_sort_specials(v, v->special, tmp, n);
    free(tmp);

    uint64_t nodes = 1;
    for (int32_t k = 0; k < n; k++) nodes += v->len[v->special[k]];
    if (nodes > INT32_MAX) return imp_error_set(err, IMP_ERR_FORMAT, "vocab: special token texts too long");
    v->trie_child = imp_malloc_array(nodes, sizeof *v->trie_child);
    v->trie_next = imp_malloc_array(nodes, sizeof *v->trie_next);
    v->trie_rank = imp_malloc_array(nodes, sizeof *v->trie_rank);
    v->trie_byte = imp_malloc_array(nodes, 1);
    if (!v->trie_child || !v->trie_next || !v->trie_rank || !v->trie_byte)
        return imp_error_set(err, IMP_ERR_NOMEM, "vocab: out of memory");
    v->trie_n = 1;
    v->trie_child[0] = v->trie_next[0] = v->trie_rank[0] = -1;
    v->trie_byte[0] = 0;
    for (int32_t k = 0; k < n; k++) {
        size_t len;
        const char *s = imp_vocab_text(v, v->special[k], &len);
        int32_t node = 0;
        for (size_t i = 0; i < len; i++) {
            int32_t c = v->trie_child[node];
            while (c >= 0 && v->trie_byte[c] != (uint8_t)s[i]) c = v->trie_next[c];
            if (c < 0) {
                c = v->trie_n++;
                v->trie_byte[c] = (uint8_t)s[i];
                v->trie_child[c] = -1;
                v->trie_rank[c] = -1;
                v->trie_next[c] = v->trie_child[node];
                v->trie_child[node] = c;
            }
            node = c;
        }
        if (v->trie_rank[node] < 0) v->trie_rank[node] = k;
    }
    return IMP_OK;
}

static void vocab_add_eog(imp_vocab *v, int32_t id) {
    if (id < 0 || imp_vocab_is_eog(v, id) || v->n_eog >= (int)(sizeof v->eog / sizeof v->eog[0])) return;
    v->eog[v->n_eog++] = id;
}

/* Texts that end a turn in common chat formats: when the file names no EOT, a control token
 * with one of these texts is taken as EOT, and all of them end generation. */
static const char *const vocab_end_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "<|eom_id|>", "<｜end▁of▁sentence｜>", "<end_of_utterance>", "<|return|>", "<|call|>",
};

static void vocab_eog(imp_vocab *v) {
    const int n_texts = (int)(sizeof vocab_end_texts / sizeof vocab_end_texts[0]);
    for (int k = 0; k < n_texts; k++) {
        int32_t id = imp_vocab_find(v, vocab_end_texts[k], strlen(vocab_end_texts[k]));
        if (id < 0 || (v->type[id] != IMP_TOKEN_CONTROL && v->type[id] != IMP_TOKEN_USER_DEFINED)) continue;
        if (v->eot < 0 && k < 4) v->eot = id; /* the turn-end markers proper */
        if (v->eom < 0 && !strcmp(vocab_end_texts[k], "<|eom_id|>")) v->eom = id;
        vocab_add_eog(v, id);
    }
    vocab_add_eog(v, v->eos);
    vocab_add_eog(v, v->eot);
    vocab_add_eog(v, v->eom);
}

static imp_status vocab_load(imp_vocab *v, const imp_gguf *g, imp_error *err) {
    imp_gguf_str s;
    imp_status st = imp_gguf_get_str(g, "tokenizer.ggml.model", &s, err);
    if (st != IMP_OK) return st;
    snprintf(v->model, sizeof v->model, "%.*s", (int)(s.len < 31 ? s.len : 31), s.ptr);
    if (!strcmp(v->model, "llama")) {
        v->kind = IMP_VOCAB_SPM;
    } else if (!strcmp(v->model, "gpt2")) {
        v->kind = IMP_VOCAB_BPE;
    } else {
        return imp_error_set(err, IMP_ERR_UNSUPPORTED,
                             "tokenizer.ggml.model '%s' is not supported (imp reads 'llama' = SentencePiece and 'gpt2' = byte-level BPE)",
                             v->model);
    }
    if ((st = vocab_tokens(v, g, err)) != IMP_OK) return st;

    v->bos = v->eos = v->eot = v->eom = v->unk = v->pad = v->sep = -1;
    if (v->kind == IMP_VOCAB_SPM) { /* SentencePiece's conventional ids, when the texts agree */
        v->unk = imp_vocab_find(v, "<unk>", 5);
        v->bos = imp_vocab_find(v, "<s>", 3);
        v->eos = imp_vocab_find(v, "</s>", 4);
    }
    v->add_bos = v->kind == IMP_VOCAB_SPM;
    v->add_space_prefix = v->kind == IMP_VOCAB_SPM;

    if (imp_gguf_find_key(g, "tokenizer.ggml.pre") >= 0) {
        if ((st = imp_gguf_get_str(g, "tokenizer.ggml.pre", &s, err)) != IMP_OK) return st;
        snprintf(v->pre, sizeof v->pre, "%.*s", (int)(s.len < 63 ? s.len : 63), s.ptr);
    }
    if (v->kind == IMP_VOCAB_BPE) {
        bool fell_back = false;
        if ((st = imp_pretok_create(v->pre, &v->pretok, &v->pre_used, &v->ignore_merges, &fell_back, err)) != IMP_OK)
            return st;
        if (fell_back)
            IMP_LOG_W("vocab: unknown pre-tokenizer '%s'; using the default patterns (token ids may differ from the model's own tokenizer)",
                      v->pre);
        /* llama.cpp's llama3 and tekken rows also turn add_bos on; the file's flag still wins. */
        if (v->ignore_merges) v->add_bos = true;
        if ((st = vocab_merges(v, g, err)) != IMP_OK) return st;
    } else {
        v->pre_used = "spm";
    }

    static const struct { const char *key; size_t field; } ids[] = {
        {"tokenizer.ggml.bos_token_id", offsetof(imp_vocab, bos)},
        {"tokenizer.ggml.eos_token_id", offsetof(imp_vocab, eos)},
        {"tokenizer.ggml.eot_token_id", offsetof(imp_vocab, eot)},
        {"tokenizer.ggml.eom_token_id", offsetof(imp_vocab, eom)},
        {"tokenizer.ggml.unknown_token_id", offsetof(imp_vocab, unk)},
        {"tokenizer.ggml.padding_token_id", offsetof(imp_vocab, pad)},
        {"tokenizer.ggml.seperator_token_id", offsetof(imp_vocab, sep)}, /* sic: GGUF's spelling */
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if ((st = vocab_special_id(v, g, ids[i].key, (int32_t *)((char *)v + ids[i].field), err)) != IMP_OK)
            return st;
    if ((st = vocab_bool(g, "tokenizer.ggml.add_bos_token", &v->add_bos, err)) != IMP_OK ||
        (st = vocab_bool(g, "tokenizer.ggml.add_eos_token", &v->add_eos, err)) != IMP_OK ||
        (st = vocab_bool(g, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix, err)) != IMP_OK)
        return st;
    if (v->add_bos && v->bos < 0) {
        IMP_LOG_W("vocab: the file asks for BOS but names no BOS token; none will be added");
        v->add_bos = false;
    }
    if (v->add_eos && v->eos < 0) v->add_eos = false;

    if (imp_gguf_find_key(g, "tokenizer.chat_template") >= 0) {
        if ((st = imp_gguf_get_str(g, "tokenizer.chat_template", &s, err)) != IMP_OK) return st;
        v->chat_template = malloc(s.len + 1);
        if (!v->chat_template) return imp_error_set(err, IMP_ERR_NOMEM, "vocab: out of memory");
        memcpy(v->chat_template, s.ptr, s.len);
        v->chat_template[s.len] = 0;
        v->chat_template_len = s.len;
    }

    vocab_byte_tokens(v);
    v->nl = v->byte_token['\n'];
    if ((st = vocab_specials(v, err)) != IMP_OK) return st;
    vocab_eog(v);
    return IMP_OK;
}

imp_status imp_vocab_load(const imp_gguf *g, imp_vocab **out, imp_error *err) {
    *out = NULL;
    imp_vocab *v = calloc(1, sizeof *v);
    if (!v) return imp_error_set(err, IMP_ERR_NOMEM, "vocab: out of memory");
    imp_status st = vocab_load(v, g, err);
    if (st != IMP_OK) {
        imp_error_prefix(err, "vocabulary");
        imp_vocab_free(v);
        return st;
    }
    *out = v;
    return IMP_OK;
}

imp_status imp_vocab_load_file(const char *path, imp_vocab **out, imp_error *err) {
    imp_gguf *g = NULL;
    *out = NULL;
    imp_status st = imp_gguf_open(path, &g, err);
    if (st != IMP_OK) return st;
    st = imp_vocab_load(g, out, err);
    imp_gguf_close(g);
    return st;
}
