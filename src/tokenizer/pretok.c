/*
 * Pre-tokenizer table for byte-level BPE vocabularies (see pretok.h).
 *
 * Each row lists the `tokenizer.ggml.pre` names it serves and its patterns, applied in order:
 * pattern k splits every piece pattern k-1 produced, keeping both matches and the gaps between
 * them, and each piece is matched on its own (look-arounds do not see past it). Patterns are the
 * originals from the models' tokenizer.json where PCRE2 can run them; case-insensitive
 * contraction groups are spelled with ASCII classes ('[sS]') so that Unicode case folding (the
 * long s, U+017F, folds to 's') cannot change a split.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretok.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#define PRETOK_MAX_PATTERNS 6

/* Contractions: 's 't 're 've 'm 'll 'd in any case. */
#define RE_CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"

/* GPT-2's pattern (llama.cpp drops the final \s+ alternative; the gap rule yields the same). */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

#define RE_LLAMA3                                                                                 \
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"  \
                    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

#define RE_QWEN2                                                                                  \
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"       \
                    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* Upper-then-lower letter runs (o200k / tekken): a word may start with capitals and continue in
 * lower case, or be all capitals followed by lower case. */
#define RE_UPPER "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]"
#define RE_LOWER "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]"

#define RE_GPT4O                                                                                  \
    "[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "*" RE_LOWER "+" RE_CONTRACTIONS "?|"                       \
    "[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "+" RE_LOWER "*" RE_CONTRACTIONS "?|"                       \
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

#define RE_TEKKEN                                                                                 \
    "[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "*" RE_LOWER "+|"                                           \
    "[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "+" RE_LOWER "*|"                                           \
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* The Latin/Greek/Cyrillic/... letter ranges DeepSeek LLM's tokenizer.json lists explicitly. */
/* The cased-letter ranges DeepSeek LLM's tokenizer.json lists explicitly, as code points: several
 * (U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126, U+212A) have canonical equivalents that an editor's
 * normalisation would silently substitute. */
#define RE_DEEPSEEK_LETTERS \
    "\\s?[A-Za-z" \
    "\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-" \
    "\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}" \
    "\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}" \
    "\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-" \
    "\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-" \
    "\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-" \
    "\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-" \
    "\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}" \
    "\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}" \
    "\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}" \
    "\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}" \
    "\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-" \
    "\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}" \
    "\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}" \
    "\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}" \
    "\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}" \
    "\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}" \
    "]+"

typedef struct pretok_row {
    const char *names; /* '|'-separated tokenizer.ggml.pre values served by this row */
    bool ignore_merges;
    const char *patterns[PRETOK_MAX_PATTERNS];
} pretok_row;

/* Row 0 is the fallback for unknown names and for files without tokenizer.ggml.pre. */
static const pretok_row pretok_rows[] = {
    {"default", false,
     {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}},
    {"gpt2|gpt-2|phi-2|mpt|olmo|jais|trillion|jina-es|jina-de|jina-v1-en|jina-v2-es|jina-v2-de|"
     "jina-v2-code|roberta-bpe|gigachat|a.x-4.0|mellum|exaone4|granite-docling",
     false,
     {RE_GPT2}},
    {"llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2", true, {RE_LLAMA3}},
    {"dbrx|smaug-bpe|glm4|chatglm-bpe", false, {RE_LLAMA3}},
    {"qwen2|deepseek-r1-qwen|stablelm2|megrez|hunyuan|solar-open|grok-2", false, {RE_QWEN2}},
    {"smollm|starcoder|refact|command-r|codeshell|exaone|minerva-7b", false, {"\\p{N}", RE_GPT2}},
    {"deepseek-llm", false,
     {"[\\r\\n]", RE_DEEPSEEK_LETTERS, "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$",
      "[一-龥ࠀ-一가-퟿]+", "\\p{N}+"}},
    {"deepseek-coder", false,
     {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"}},
    {"deepseek-v3", false,
     {"\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
      " ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
    {"falcon", false,
     {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}},
    {"gpt-4o|llama4|minimax-m2", false, {RE_GPT4O}},
    {"tekken", true, {RE_TEKKEN}},
    {"poro-chat|bloom|gpt3-finnish", false, {" ?[^(\\s|.,!?…。，、।۔،)]+"}},
    {"viking", false, {" ?[^(\\s|.,!?…。，、।۔،)]+", "\\p{N}"}},
    {"seed-coder", false,
     {RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|"
                      "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
    {"bailingmoe|llada-moe", false,
     {"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
      " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"}},
};
#define PRETOK_N_ROWS (sizeof pretok_rows / sizeof pretok_rows[0])

/* The first name of each row, in row order (a row's canonical name). */
const char *const imp_pretok_names[] = {
    "default", "gpt2", "llama3", "dbrx", "qwen2", "smollm", "deepseek-llm", "deepseek-coder",
    "deepseek-v3", "falcon", "gpt-4o", "tekken", "poro-chat", "viking", "seed-coder",
    "bailingmoe", NULL};
_Static_assert(sizeof imp_pretok_names / sizeof imp_pretok_names[0] == PRETOK_N_ROWS + 1,
               "one canonical name per pre-tokenizer row");

struct imp_pretok {
    const pretok_row *row;
    int n_code;
    pcre2_code *code[PRETOK_MAX_PATTERNS];
};

imp_status imp_span_push(imp_span_list *l, size_t off, size_t len, imp_error *err) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        imp_span *v = realloc(l->v, cap * sizeof *v);
        if (!v) return imp_error_set(err, IMP_ERR_NOMEM, "tokenizer: out of memory (%zu pieces)", cap);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].off = off;
    l->v[l->n].len = len;
    l->n++;
    return IMP_OK;
}

/* True when `name` is one of the '|'-separated names in `list`. */
static bool pretok_name_in(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !memcmp(p, name, n)) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

static const pretok_row *pretok_find(const char *name) {
    for (size_t i = 0; i < PRETOK_N_ROWS; i++)
        if (pretok_name_in(pretok_rows[i].names, name)) return &pretok_rows[i];
    return NULL;
}

void imp_pretok_free(imp_pretok *p) {
    if (!p) return;
    for (int i = 0; i < p->n_code; i++) pcre2_code_free(p->code[i]);
    free(p);
}

imp_status imp_pretok_create(const char *name, imp_pretok **out, const char **row_name,
                             bool *ignore_merges, bool *fell_back, imp_error *err) {
    *out = NULL;
    *fell_back = false;
    const pretok_row *row = (name && *name) ? pretok_find(name) : &pretok_rows[0];
    if (!row) {
        row = &pretok_rows[0];
        *fell_back = true;
    }
    imp_pretok *p = calloc(1, sizeof *p);
    if (!p) return imp_error_set(err, IMP_ERR_NOMEM, "tokenizer: out of memory");
    p->row = row;
    for (int i = 0; i < PRETOK_MAX_PATTERNS && row->patterns[i]; i++) {
        int ec = 0;
        PCRE2_SIZE eoff = 0;
        pcre2_code *c = pcre2_compile((PCRE2_SPTR)row->patterns[i], PCRE2_ZERO_TERMINATED,
                                      PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF |
                                          PCRE2_DOLLAR_ENDONLY,
                                      &ec, &eoff, NULL);
        if (!c) {
            char msg[128];
            pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
            imp_pretok_free(p);
            return imp_error_set(err, IMP_ERR_INTERNAL,
                                 "tokenizer: pre-tokenizer '%s' pattern %d: %s at %zu",
                                 row->names, i, msg, (size_t)eoff);
        }
        /* JIT is an optimisation: where it is unavailable the interpreter gives the same
         * matches, so a JIT failure is not an error. */
        (void)pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);
        p->code[p->n_code++] = c;
    }
    *row_name = imp_pretok_names[row - pretok_rows];
    *ignore_merges = row->ignore_merges;
    *out = p;
    return IMP_OK;
}

const char *imp_pretok_pattern(const imp_pretok *p, int i) {
    return (i >= 0 && i < p->n_code) ? p->row->patterns[i] : NULL;
}

/* Splits each span of `in` (offsets into text) with one pattern, appending to `out`. */
static imp_status pretok_apply(const pcre2_code *code, const char *text, const imp_span_list *in,
                               imp_span_list *out, pcre2_match_data *md, pcre2_match_context *mc,
                               imp_error *err) {
    for (size_t k = 0; k < in->n; k++) {
        const size_t base = in->v[k].off, n = in->v[k].len;
        const PCRE2_SPTR subj = (PCRE2_SPTR)(text + base);
        size_t pos = 0;
        while (pos < n) {
            int rc = pcre2_match(code, subj, n, pos, PCRE2_NOTEMPTY, md, mc);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                char msg[128];
                pcre2_get_error_message(rc, (PCRE2_UCHAR *)msg, sizeof msg);
                return imp_error_set(err, IMP_ERR_INTERNAL, "tokenizer: regex match failed: %s", msg);
            }
            const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            if (me <= ms || ms < pos || me > n) break; /* cannot happen with NOTEMPTY */
            imp_status st = IMP_OK;
            if (ms > pos) st = imp_span_push(out, base + pos, ms - pos, err);
            if (st == IMP_OK) st = imp_span_push(out, base + ms, me - ms, err);
            if (st != IMP_OK) return st;
            pos = me;
        }
        if (pos < n) {
            imp_status st = imp_span_push(out, base + pos, n - pos, err);
            if (st != IMP_OK) return st;
        }
    }
    return IMP_OK;
}

imp_status imp_pretok_split(const imp_pretok *p, const char *text, size_t n, imp_span_list *out,
                            imp_error *err) {
    imp_span_list a = {0}, b = {0};
    imp_status st = IMP_OK;
    pcre2_match_data *md = NULL;
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_jit_stack *js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (!mc || !js) {
        st = imp_error_set(err, IMP_ERR_NOMEM, "tokenizer: out of memory (regex context)");
        goto done;
    }
    pcre2_jit_stack_assign(mc, NULL, js);
    if (n == 0) goto done;
    st = imp_span_push(&a, 0, n, err);
    for (int i = 0; st == IMP_OK && i < p->n_code; i++) {
        md = pcre2_match_data_create_from_pattern(p->code[i], NULL);
        if (!md) {
            st = imp_error_set(err, IMP_ERR_NOMEM, "tokenizer: out of memory (match data)");
            break;
        }
        b.n = 0;
        st = pretok_apply(p->code[i], text, &a, &b, md, mc, err);
        pcre2_match_data_free(md);
        md = NULL;
        imp_span_list t = a;
        a = b;
        b = t;
    }
    for (size_t i = 0; st == IMP_OK && i < a.n; i++) st = imp_span_push(out, a.v[i].off, a.v[i].len, err);
done:
    free(a.v);
    free(b.v);
    if (js) pcre2_jit_stack_free(js);
    if (mc) pcre2_match_context_free(mc);
    return st;
}
