/*
 * The vocabulary a GGUF file carries (`tokenizer.ggml.*`), loaded and validated like any other
 * untrusted input: token texts, scores, types, BPE merges, the special ids and flags, the
 * pre-tokenizer name and the chat template. A vocab is read-only after loading and may be shared
 * by any number of threads (tokenize and detokenize take it const and keep their state local).
 *
 * Token ids are int32 in [0, n_tokens); -1 means "none" everywhere below.
 */
#ifndef IMP_TOKENIZER_VOCAB_H
#define IMP_TOKENIZER_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "gguf/gguf.h"

typedef enum imp_vocab_kind {
    IMP_VOCAB_SPM = 1, /* tokenizer.ggml.model "llama": SentencePiece, score-driven merges */
    IMP_VOCAB_BPE = 2, /* tokenizer.ggml.model "gpt2": byte-level BPE with merge ranks    */
} imp_vocab_kind;

/* GGUF token types (tokenizer.ggml.token_type), as llama.cpp's converter writes them. */
typedef enum imp_token_type {
    IMP_TOKEN_UNDEFINED = 0,
    IMP_TOKEN_NORMAL = 1,
    IMP_TOKEN_UNKNOWN = 2,
    IMP_TOKEN_CONTROL = 3,
    IMP_TOKEN_USER_DEFINED = 4,
    IMP_TOKEN_UNUSED = 5,
    IMP_TOKEN_BYTE = 6,
} imp_token_type;

struct imp_pretok; /* pretok.h: the compiled pre-tokenizer regexes of a BPE vocab */

typedef struct imp_vocab {
    imp_vocab_kind kind;
    int32_t n_tokens;

    /* token texts: text + off[i], len[i] bytes (not NUL-terminated); one arena */
    char *text;        /* [sum of lengths]                                             */
    uint32_t *off;     /* [n_tokens]                                                   */
    uint32_t *len;     /* [n_tokens]                                                   */
    float *score;      /* [n_tokens]; 0 when the file has no scores                    */
    uint8_t *type;     /* [n_tokens]; imp_token_type                                   */

    /* text -> id: open addressing (linear probing); a slot holds id + 1 (0 = empty) in the low
     * 32 bits and the text's hash tag in the high 32, so most misses never touch the texts */
    uint64_t *slots;
    uint32_t slot_mask;

    /* BPE merges: (left id, right id) -> rank and result id; open addressing on the key */
    uint64_t *merge_key;  /* [merge_mask + 1]; (left << 32 | right) + 1, 0 = empty     */
    int32_t *merge_rank;  /* [merge_mask + 1]                                         */
    int32_t *merge_id;    /* [merge_mask + 1]                                         */
    uint32_t merge_mask;
    int32_t n_merges;

    /* Byte tokens: SPM <0xNN>; BPE the token of the byte's mapped character. -1: none. */
    int32_t byte_token[256];

    /* Tokens matched as whole strings before the model's algorithm runs (control, unknown and
     * user-defined types with non-empty text), longest text first, ties by id. */
    int32_t *special;     /* [n_special]                                               */
    int32_t n_special;
    /* A byte trie over those texts (node 0 is the root) that finds, in one pass over a text,
     * which specials occur in it. trie_rank: index into special[] ending at the node, or -1. */
    int32_t *trie_child, *trie_next, *trie_rank; /* [trie_n]                         */
    uint8_t *trie_byte;                          /* [trie_n]                         */
    int32_t trie_n;

    /* End-of-generation ids: eos, eot, eom and control tokens with well-known end texts. */
    int32_t eog[16];
    int32_t n_eog;

    int32_t bos, eos, eot, eom, unk, pad, sep, nl;
    bool add_bos, add_eos, add_space_prefix;
    bool ignore_merges; /* BPE: a pre-token that is itself a token is emitted as is (llama3) */

    char model[32];     /* tokenizer.ggml.model                                         */
    char pre[64];       /* tokenizer.ggml.pre as written ("" when absent)                */
    const char *pre_used; /* the pre-tokenizer row actually used (may differ: fallback)  */
    struct imp_pretok *pretok; /* BPE only                                             */

    char *chat_template;  /* tokenizer.chat_template, NUL-terminated copy; NULL if absent */
    size_t chat_template_len;
} imp_vocab;

/* Loads the vocabulary of an open GGUF. Works on vocabulary-only files (no tensors). Every id,
 * count and merge is validated; on failure returns a status with a message and *out is NULL.
 * The vocab copies what it needs: g may be closed afterwards. Free with imp_vocab_free. */
imp_status imp_vocab_load(const imp_gguf *g, imp_vocab **out, imp_error *err);

/* Opens path, loads its vocabulary and closes it. */
imp_status imp_vocab_load_file(const char *path, imp_vocab **out, imp_error *err);

void imp_vocab_free(imp_vocab *v);

/* The id whose text is exactly bytes s[0..n), or -1. */
int32_t imp_vocab_find(const imp_vocab *v, const char *s, size_t n);

/* Token text (raw, as stored: SPM "▁" and BPE byte-mapped characters not undone). */
static inline const char *imp_vocab_text(const imp_vocab *v, int32_t id, size_t *n) {
    *n = v->len[id];
    return v->text + v->off[id];
}

static inline bool imp_vocab_valid(const imp_vocab *v, int32_t id) {
    return id >= 0 && id < v->n_tokens;
}

/* True for ids that end a generation (imp_vocab.eog). */
bool imp_vocab_is_eog(const imp_vocab *v, int32_t id);

/* BPE merge of two adjacent symbols: returns the rank (lower merges first) and sets *result,
 * or returns -1 when the pair has no merge. */
int32_t imp_vocab_merge(const imp_vocab *v, int32_t left, int32_t right, int32_t *result);

/* Hash of n bytes, shared by the vocab's tables. */
uint64_t imp_vocab_hash(const char *s, size_t n);

#endif
