/*
 * Tokenize: cut special tokens out of the text, run the vocabulary's algorithm on the runs of
 * plain text between them, add BOS/EOS (see tokenizer.h).
 *
 * Specials are matched the way llama.cpp does it, longest text first: for each special in that
 * order, every occurrence that lies wholly in text no longer-ranked special has claimed is taken,
 * left to right. A byte trie finds in one pass which specials occur at all, so the per-special
 * scans run only for those (a prompt rarely holds more than a few of a vocab's thousands).
 */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "tokenizer/tokenizer_impl.h"

#define TOKENIZE_MAX_BYTES ((size_t)1 << 30)

imp_status imp_tokens_push(imp_tokens *t, int32_t id, imp_error *err) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        int32_t *ids = realloc(t->ids, cap * sizeof *ids);
        if (!ids) return imp_error_set(err, IMP_ERR_NOMEM, "tokenizer: out of memory (%zu ids)", cap);
        t->ids = ids;
        t->cap = cap;
    }
    t->ids[t->n++] = id;
    return IMP_OK;
}

void imp_tokens_free(imp_tokens *t) {
    free(t->ids);
    t->ids = NULL;
    t->n = t->cap = 0;
}

imp_status imp_bytes_append(imp_bytes *b, const void *s, size_t n, imp_error *err) {
    if (!b->p || n >= b->cap - b->n) { /* room for n bytes and the NUL */
        uint64_t need;
        if (!imp_add_u64(b->n, (uint64_t)n + 1, &need) || need > SIZE_MAX / 2)
            return imp_error_set(err, IMP_ERR_NOMEM, "tokenizer: text too long");
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return imp_error_set(err, IMP_ERR_NOMEM, "tokenizer: out of memory (%zu bytes)", cap);
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return IMP_OK;
}

unsigned imp_tokenize_default_flags(const imp_vocab *v, bool parse_special) {
    return (v->add_bos ? IMP_TOK_ADD_BOS : 0u) | (v->add_eos ? IMP_TOK_ADD_EOS : 0u) |
           (parse_special ? IMP_TOK_PARSE_SPECIAL : 0u);
}

/* A run of the input: plain text [off, off + len) or, when id >= 0, one special token. */
typedef struct fragment {
    size_t off, len;
    int32_t id;
} fragment;

/* First occurrence of s[0..len) in text[0..n), or NULL (memmem is not C11). */
static const char *find_bytes(const char *text, size_t n, const char *s, size_t len) {
    if (len == 0 || len > n) return NULL;
    const char *end = text + (n - len) + 1;
    for (const char *p = text; p < end; p++) {
        p = memchr(p, s[0], (size_t)(end - p));
        if (!p) return NULL;
        if (!memcmp(p, s, len)) return p;
    }
    return NULL;
}

static bool special_allowed(const imp_vocab *v, int32_t id, bool parse_special) {
    return parse_special || v->type[id] == IMP_TOKEN_USER_DEFINED;
}

/* Marks in `present` (indexed by special rank) every special whose text occurs in text. */
static void specials_present(const imp_vocab *v, const char *text, size_t n, uint8_t *present) {
    for (size_t i = 0; i < n; i++) {
        int32_t node = 0;
        for (size_t j = i; j < n; j++) {
            int32_t c = v->trie_child[node];
            while (c >= 0 && v->trie_byte[c] != (uint8_t)text[j]) c = v->trie_next[c];
            if (c < 0) break;
            node = c;
            if (v->trie_rank[node] >= 0) present[v->trie_rank[node]] = 1;
        }
    }
}

static int frag_cmp(const void *a, const void *b) {
    const fragment *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Splits text into fragments (plain runs and specials), in order. *frags is malloc'd. */
static imp_status partition(const imp_vocab *v, const char *text, size_t n, bool parse_special,
                            fragment **frags, size_t *n_frags, imp_error *err) {
    *frags = NULL;
    *n_frags = 0;
    uint8_t *present = NULL, *taken = NULL;
    fragment *hits = NULL;
    size_t n_hits = 0, cap_hits = 0;
    imp_status st = IMP_OK;

    if (v->n_special && n) {
        present = calloc((size_t)v->n_special, 1);
        taken = calloc(n, 1);
        if (!present || !taken) {
            st = imp_error_set(err, IMP_ERR_NOMEM, "tokenizer: out of memory");
            goto done;
        }
        specials_present(v, text, n, present);
        for (int32_t k = 0; k < v->n_special; k++) {
            if (!present[k]) continue;
            const int32_t id = v->special[k];
            if (!special_allowed(v, id, parse_special)) continue;
            size_t len;
            const char *s = imp_vocab_text(v, id, &len);
            size_t pos = 0;
            while (pos + len <= n) {
                const char *hit = find_bytes(text + pos, n - pos, s, len);
                if (!hit) break;
                size_t at = (size_t)(hit - text), last_taken = SIZE_MAX;
                for (size_t b = at; b < at + len; b++)
                    if (taken[b]) last_taken = b;
                if (last_taken != SIZE_MAX) { /* overlaps a longer special: resume after it */
                    pos = last_taken + 1;
                    while (pos < n && taken[pos]) pos++;
                    continue;
                }
                memset(taken + at, 1, len);
                if (n_hits == cap_hits) {
                    size_t cap = cap_hits ? cap_hits * 2 : 16;
                    fragment *h = realloc(hits, cap * sizeof *h);
                    if (!h) {
                        st = imp_error_set(err, IMP_ERR_NOMEM, "tokenizer: out of memory");
                        goto done;
                    }
                    hits = h;
                    cap_hits = cap;
                }
                hits[n_hits++] = (fragment){at, len, id};
                pos = at + len;
            }
        }
    }
    if (n_hits > 1) qsort(hits, n_hits, sizeof *hits, frag_cmp);

    fragment *f = imp_malloc_array(2 * n_hits + 1, sizeof *f);
    if (!f) {
        st = imp_error_set(err, IMP_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    size_t nf = 0, pos = 0;
    for (size_t i = 0; i < n_hits; i++) {
        if (hits[i].off > pos) f[nf++] = (fragment){pos, hits[i].off - pos, -1};
        f[nf++] = hits[i];
        pos = hits[i].off + hits[i].len;
    }
    if (pos < n) f[nf++] = (fragment){pos, n - pos, -1};
    *frags = f;
    *n_frags = nf;
done:
    free(present);
    free(taken);
    free(hits);
    return st;
}

/* SentencePiece input: optional leading U+2581, then the text with every ' ' as U+2581. */
static imp_status spm_escape(const char *s, size_t n, bool prefix, imp_bytes *buf, imp_error *err) {
    static const char sp[3] = {(char)0xE2, (char)0x96, (char)0x81};
    buf->n = 0;
    imp_status st = IMP_OK;
    if (prefix) st = imp_bytes_append(buf, sp, 3, err);
    size_t run = 0; /* copy runs of non-spaces at once */
    for (size_t i = 0; st == IMP_OK && i <= n; i++) {
        if (i == n || s[i] == ' ') {
            st = imp_bytes_append(buf, s + run, i - run, err);
            if (st == IMP_OK && i < n) st = imp_bytes_append(buf, sp, 3, err);
            run = i + 1;
        }
    }
    return st;
}

imp_status imp_vocab_tokenize(const imp_vocab *v, const char *text, size_t n, unsigned flags,
                        imp_tokens *out, imp_error *err) {
    if (!v || !out || (!text && n))
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "tokenize: NULL argument");
    if (n > TOKENIZE_MAX_BYTES)
        return imp_error_set(err, IMP_ERR_RANGE, "tokenize: %zu bytes of text (at most %zu)", n,
                             TOKENIZE_MAX_BYTES);
    fragment *frags = NULL;
    size_t n_frags = 0;
    imp_status st = partition(v, text, n, (flags & IMP_TOK_PARSE_SPECIAL) != 0, &frags, &n_frags, err);
    if (st != IMP_OK) return st;

    imp_bytes esc = {0};
    if ((flags & IMP_TOK_ADD_BOS) && v->bos >= 0) st = imp_tokens_push(out, v->bos, err);
    bool prev_special = true; /* SPM: the first run, and any run after a special, gets the prefix */
    for (size_t i = 0; st == IMP_OK && i < n_frags; i++) {
        const fragment *f = &frags[i];
        if (f->id >= 0) {
            st = imp_tokens_push(out, f->id, err);
            prev_special = true;
            continue;
        }
        if (v->kind == IMP_VOCAB_SPM) {
            st = spm_escape(text + f->off, f->len, v->add_space_prefix && prev_special, &esc, err);
            if (st == IMP_OK) st = imp_spm_encode(v, esc.p, esc.n, out, err);
        } else {
            st = imp_bpe_encode(v, text + f->off, f->len, out, err);
        }
        prev_special = false;
    }
    if (st == IMP_OK && (flags & IMP_TOK_ADD_EOS) && v->eos >= 0) st = imp_tokens_push(out, v->eos, err);
    free(esc.p);
    free(frags);
    return st;
}
