/*
 * SentencePiece (tokenizer.ggml.model "llama"), as llama.cpp runs it.
 *
 * The escaped text starts as one symbol per UTF-8 character. Every adjacent pair whose joined
 * text is a token is a candidate; the candidate with the highest token score merges first
 * (leftmost on ties), and the merged symbol forms new candidates with its neighbours. A max-heap
 * keeps this O(k log k). Stale candidates (a side already merged, or grown) are skipped when
 * popped. Symbols left that are not tokens (single characters missing from the vocabulary) fall
 * back to their bytes' <0xNN> tokens, or UNK.
 */
#include <stdlib.h>
#include <string.h>

#include "base/heap.h"
#include "base/utf8.h"
#include "tokenizer/tokenizer_impl.h"

typedef struct spm_sym {
    size_t off, n;      /* text bytes [off, off + n); n = 0 once merged away */
    int32_t prev, next; /* neighbours, -1 at the ends                       */
    int32_t id;         /* token of the text, -1 if none                   */
} spm_sym;

typedef struct spm_pair {
    float score;
    int32_t left, right;
    size_t size; /* bytes of the joined text when the candidate was made */
    int32_t id;
} spm_pair;

typedef struct spm_work {
    spm_sym *sym;
    imp_heap heap; /* of spm_pair */
} spm_work;

/* Heap order: higher score first, then the leftmost pair. */
static bool pair_before(const void *pa, const void *pb) {
    const spm_pair *a = pa, *b = pb;
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static imp_status spm_try(const imp_vocab *v, spm_work *w, const char *text, int32_t left,
                          int32_t right, imp_error *err) {
    if (left < 0 || right < 0) return IMP_OK;
    const spm_sym *l = &w->sym[left], *r = &w->sym[right];
    const size_t size = l->n + r->n;
    int32_t id = imp_vocab_find(v, text + l->off, size);
    if (id < 0) return IMP_OK;
    spm_pair p = {v->score[id], left, right, size, id};
    return imp_heap_push(&w->heap, &p, err);
}

imp_status imp_spm_encode(const imp_vocab *v, const char *text, size_t n, imp_tokens *out,
                          imp_error *err) {
    if (n == 0) return IMP_OK;
    spm_work w = {0};
    imp_heap_init(&w.heap, sizeof(spm_pair), pair_before);
    imp_status st = IMP_OK;
    w.sym = malloc(n * sizeof *w.sym); /* at most one symbol per byte */
    if (!w.sym) return imp_error_set(err, IMP_ERR_NOMEM, "tokenizer: out of memory (%zu bytes of text)", n);
    int32_t n_sym = 0;
    for (size_t i = 0; i < n;) {
        /* One symbol per valid UTF-8 sequence; a byte that starts none is a symbol of its own
         * (llama.cpp trusts the lead byte, which lets invalid input swallow the next
         * character's bytes and lose a U+2581). */
        size_t len;
        if (imp_utf8_check((const unsigned char *)text + i, n - i, &len) != IMP_UTF8_OK) len = 1;
        spm_sym *s = &w.sym[n_sym];
        s->off = i;
        s->n = len;
        s->prev = n_sym - 1;
        s->next = -1;
        s->id = imp_vocab_find(v, text + i, len);
        if (n_sym > 0) w.sym[n_sym - 1].next = n_sym;
        n_sym++;
        i += len;
    }
    for (int32_t i = 0; st == IMP_OK && i + 1 < n_sym; i++) st = spm_try(v, &w, text, i, i + 1, err);
    while (st == IMP_OK && w.heap.n) {
        spm_pair p;
        imp_heap_pop(&w.heap, &p);
        spm_sym *l = &w.sym[p.left], *r = &w.sym[p.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != p.size || l->next != p.right) continue;
        l->n += r->n;
        l->id = p.id;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w.sym[r->next].prev = p.left;
        st = spm_try(v, &w, text, l->prev, p.left, err);
        if (st == IMP_OK) st = spm_try(v, &w, text, p.left, l->next, err);
    }
    for (int32_t i = 0; st == IMP_OK && i >= 0; i = w.sym[i].next) {
        const spm_sym *s = &w.sym[i];
        if (s->id >= 0) {
            st = imp_tokens_push(out, s->id, err);
            continue;
        }
        for (size_t k = 0; st == IMP_OK && k < s->n; k++) { /* byte fallback */
            int32_t id = v->byte_token[(unsigned char)text[s->off + k]];
            if (id < 0) id = v->unk;
            if (id >= 0) st = imp_tokens_push(out, id, err);
        }
    }
    free(w.sym);
    imp_heap_free(&w.heap);
    return st;
}
