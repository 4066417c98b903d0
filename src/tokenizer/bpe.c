/*
 * Byte-level BPE (tokenizer.ggml.model "gpt2").
 *
 * Per pre-tokenized word: one symbol per byte (the byte's mapped character), then repeatedly the
 * adjacent pair with the lowest merge rank is merged, leftmost first on ties; a min-heap of
 * candidate pairs makes that O(k log k) per word of k bytes. Stale heap entries (a side already
 * merged away) are skipped when popped. With ignore_merges (llama3 rows), a word that is itself a
 * token is emitted as that token.
 */
#include <stdlib.h>
#include <string.h>

#include "base/heap.h"
#include "base/mem.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tokenizer_impl.h"

/* Bytes that map to themselves: printable ASCII and Latin-1 except the soft hyphen. */
static bool bpe_is_identity(unsigned b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
}

int imp_bpe_byte_char(unsigned b, char out[2]) {
    unsigned cp = b;
    if (!bpe_is_identity(b)) { /* rank among the 68 remapped bytes: 0-32, 127-160, 173 */
        unsigned k = b <= 32 ? b : (b <= 160 ? 33 + (b - 127) : 67);
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

int imp_bpe_char_byte(unsigned cp) {
    if (cp < 256) return bpe_is_identity(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    unsigned k = cp - 256;
    return (int)(k < 33 ? k : (k < 67 ? 127 + (k - 33) : 173));
}

typedef struct bpe_sym {
    int32_t id;         /* token of the symbol's text, -1 if that text is no token */
    int32_t prev, next; /* neighbours in the word, -1 at the ends                  */
    bool dead;          /* merged into its left neighbour                          */
} bpe_sym;

typedef struct bpe_pair {
    int32_t rank, left; /* heap order: rank, then left position                    */
    int32_t right, lid, rid, result;
} bpe_pair;

typedef struct bpe_work {
    bpe_sym *sym;
    size_t sym_cap;
    imp_heap heap; /* of bpe_pair */
    char *mapped;  /* the word as mapped characters, for the ignore_merges lookup */
    size_t mapped_cap;
} bpe_work;

/* Heap order: the lowest rank first, then the leftmost pair. */
static bool pair_before(const void *pa, const void *pb) {
    const bpe_pair *a = pa, *b = pb;
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static imp_status try_pair(const imp_vocab *v, bpe_work *w, int32_t left, int32_t right, imp_error *err) {
    if (left < 0 || right < 0) return IMP_OK;
    int32_t result;
    int32_t rank = imp_vocab_merge(v, w->sym[left].id, w->sym[right].id, &result);
    if (rank < 0) return IMP_OK;
    bpe_pair p = {rank, left, right, w->sym[left].id, w->sym[right].id, result};
    return imp_heap_push(&w->heap, &p, err);
}

static imp_status bpe_word(const imp_vocab *v, bpe_work *w, const unsigned char *s, size_t n,
                           imp_tokens *out, imp_error *err) {
    imp_status st;
    if (n == 0) return IMP_OK;
    if (v->ignore_merges) {
        size_t need = 2 * n;
        if (need > w->mapped_cap) {
            char *m = realloc(w->mapped, need);
            if (!m) return imp_error_set(err, IMP_ERR_NOMEM, "tokenizer: out of memory");
            w->mapped = m;
            w->mapped_cap = need;
        }
        size_t k = 0;
        for (size_t i = 0; i < n; i++) k += (size_t)imp_bpe_byte_char(s[i], w->mapped + k);
        int32_t id = imp_vocab_find(v, w->mapped, k);
        if (id >= 0) return imp_tokens_push(out, id, err);
    }
    if (n > w->sym_cap) {
        bpe_sym *sym = realloc(w->sym, n * sizeof *sym);
        if (!sym) return imp_error_set(err, IMP_ERR_NOMEM, "tokenizer: out of memory");
        w->sym = sym;
        w->sym_cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        w->sym[i].id = v->byte_token[s[i]];
        w->sym[i].prev = (int32_t)i - 1;
        w->sym[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
        w->sym[i].dead = false;
    }
    w->heap.n = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if ((st = try_pair(v, w, (int32_t)i, (int32_t)i + 1, err)) != IMP_OK) return st;
    while (w->heap.n) {
        bpe_pair p;
        imp_heap_pop(&w->heap, &p);
        bpe_sym *l = &w->sym[p.left], *r = &w->sym[p.right];
        if (l->dead || r->dead || l->next != p.right || l->id != p.lid || r->id != p.rid) continue;
        l->id = p.result;
        l->next = r->next;
        if (r->next >= 0) w->sym[r->next].prev = p.left;
        r->dead = true;
        if ((st = try_pair(v, w, l->prev, p.left, err)) != IMP_OK ||
            (st = try_pair(v, w, p.left, l->next, err)) != IMP_OK)
            return st;
    }
    for (int32_t i = 0; i >= 0; i = w->sym[i].next) {
        /* A byte whose character is not in the vocabulary (trainers leave out bytes that never
         * occur in UTF-8, 0xF5-0xFF) cannot be encoded: it is dropped, as llama.cpp and HF
         * tokenizers do (the UNK id of such vocabularies is often a control token). */
        const int32_t id = w->sym[i].id;
        if (id >= 0 && (st = imp_tokens_push(out, id, err)) != IMP_OK) return st;
    }
    return IMP_OK;
}

imp_status imp_bpe_encode(const imp_vocab *v, const char *text, size_t n, imp_tokens *out,
                          imp_error *err) {
    imp_span_list words = {0};
    bpe_work w = {0};
    imp_heap_init(&w.heap, sizeof(bpe_pair), pair_before);
    imp_status st = imp_pretok_split(v->pretok, text, n, &words, err);
    for (size_t i = 0; st == IMP_OK && i < words.n; i++)
        st = bpe_word(v, &w, (const unsigned char *)text + words.v[i].off, words.v[i].len, out, err);
    free(words.v);
    free(w.sym);
    imp_heap_free(&w.heap);
    free(w.mapped);
    return st;
}
