/*
 * imp.conf: the key table, checks of each value against its key, the file precedence,
 * --set overrides and --print-config's dump. The text itself is parsed in config_parse.c.
 *
 * Adding a key: a field in imp_runtime_config (config.h), a row below, IMP_CFG_N_KEYS, its
 * entry in imp.conf.example and docs/config.md (tests/unit/test_config.c checks all of these).
 */
#define _POSIX_C_SOURCE 200809L

#include "config/config.h"

#include <errno.h>
#include <float.h>
#include <locale.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/mem.h"
#include "base/utf8.h"
#include "config/config_internal.h"

#define I32MAX 2147483647.0
#define I64MAX 9223372036854775807.0 /* rounds to 2^63 as a double; see check_int */

#define F(field) offsetof(imp_runtime_config, field), sizeof(((imp_runtime_config *)0)->field)

/* clang-format off */
static const imp_cfg_key imp_cfg_table[] = {
    {"runtime", "threads", IMP_CFG_INT, F(runtime.threads), "0",
     "CPU worker threads (0 = every core)", 0, 512, 0, NULL},
    {"runtime", "max_seq_len", IMP_CFG_INT, F(runtime.max_seq_len), "0",
     "context length in tokens (0 = min(the model's training context, 4096))", 0, 16777216, 0, NULL},
    {"runtime", "max_batch", IMP_CFG_INT, F(runtime.max_batch), "512",
     "most tokens in one forward step (prefill chunk size)", 1, 65536, 0, NULL},
    {"runtime", "device", IMP_CFG_STR, F(runtime.device), "\"auto\"",
     "where the model runs: auto (the first GPU, else the CPU), cpu, or a CUDA device index", 0, 0, 0, NULL},
    {"runtime", "cuda_graphs", IMP_CFG_BOOL, F(runtime.cuda_graphs), "true",
     "record each decode step as a CUDA graph once and replay it (fewer launches)", 0, 0, 0, NULL},
    {"runtime", "gpu_layers", IMP_CFG_INT, F(runtime.gpu_layers), "-1",
     "transformer layers kept on the GPU, the rest run on the CPU (-1 = all, 0 = the CPU alone)", -1, I32MAX, 0, NULL},
    {"kv_cache", "block_size", IMP_CFG_INT, F(kv_cache.block_size), "16",
     "token slots per paged KV-cache block", 1, 1024, IMP_CFG_POW2, NULL},
    {"kv_cache", "type", IMP_CFG_STR, F(kv_cache.type), "\"f16\"",
     "KV-cache storage on a GPU (the CPU stores f32)", 0, 0, 0, "f16|f32"},
    {"generation", "max_tokens", IMP_CFG_INT, F(generation.max_tokens), "256",
     "most tokens generated per request (0 = until the context is full)", 0, 16777216, 0, NULL},
    {"generation", "temperature", IMP_CFG_FLOAT, F(generation.temperature), "0.8",
     "sampling temperature (0 = greedy)", 0, 100, 0, NULL},
    {"generation", "top_k", IMP_CFG_INT, F(generation.top_k), "40",
     "keep the k most likely tokens (0 = off)", 0, I32MAX, 0, NULL},
    {"generation", "top_p", IMP_CFG_FLOAT, F(generation.top_p), "0.95",
     "nucleus sampling: smallest set with this probability mass (1 = off)", 0, 1, 0, NULL},
    {"generation", "min_p", IMP_CFG_FLOAT, F(generation.min_p), "0.05",
     "drop tokens below min_p times the top probability (0 = off)", 0, 1, 0, NULL},
    {"generation", "typical_p", IMP_CFG_FLOAT, F(generation.typical_p), "1.0",
     "locally typical sampling mass (1 = off)", 0, 1, 0, NULL},
    {"generation", "repeat_penalty", IMP_CFG_FLOAT, F(generation.repeat_penalty), "1.0",
     "divide logits of recent tokens by this (1 = off)", 0, 100, IMP_CFG_LO_OPEN, NULL},
    {"generation", "repeat_last_n", IMP_CFG_INT, F(generation.repeat_last_n), "64",
     "recent tokens the penalties look at (0 = off, -1 = the whole context)", -1, I32MAX, 0, NULL},
    {"generation", "frequency_penalty", IMP_CFG_FLOAT, F(generation.frequency_penalty), "0.0",
     "subtract this times a token's recent count (0 = off)", -100, 100, 0, NULL},
    {"generation", "presence_penalty", IMP_CFG_FLOAT, F(generation.presence_penalty), "0.0",
     "subtract this from every recently seen token (0 = off)", -100, 100, 0, NULL},
    {"generation", "dry_multiplier", IMP_CFG_FLOAT, F(generation.dry_multiplier), "0.0",
     "DRY repetition penalty strength (0 = off)", 0, FLT_MAX, 0, NULL},
    {"generation", "dry_base", IMP_CFG_FLOAT, F(generation.dry_base), "1.75",
     "DRY penalty growth per extra repeated token", 1, FLT_MAX, 0, NULL},
    {"generation", "dry_allowed_length", IMP_CFG_INT, F(generation.dry_allowed_length), "2",
     "repeats up to this long are not penalized by DRY", 0, I32MAX, 0, NULL},
    {"generation", "dry_penalty_last_n", IMP_CFG_INT, F(generation.dry_penalty_last_n), "-1",
     "recent tokens DRY looks at (-1 = the whole context, 0 = off)", -1, I32MAX, 0, NULL},
    {"generation", "mirostat", IMP_CFG_INT, F(generation.mirostat), "0",
     "Mirostat sampling: 0 = off, 1 = Mirostat, 2 = Mirostat 2.0", 0, 2, 0, NULL},
    {"generation", "mirostat_tau", IMP_CFG_FLOAT, F(generation.mirostat_tau), "5.0",
     "Mirostat target surprise (entropy)", 0, 100, 0, NULL},
    {"generation", "mirostat_eta", IMP_CFG_FLOAT, F(generation.mirostat_eta), "0.1",
     "Mirostat learning rate", 0, 1, 0, NULL},
    {"generation", "seed", IMP_CFG_INT, F(generation.seed), "-1",
     "sampling RNG seed (-1 = from the clock)", -1, I64MAX, 0, NULL},
    {"generation", "chat_template", IMP_CFG_STR, F(generation.chat_template), "\"auto\"",
     "chat template family (\"auto\" = from the model's metadata)", 0, 0, 0, NULL},
    {"bench", "pp", IMP_CFG_INT, F(bench.pp), "512",
     "prompt tokens per prefill measurement", 0, 65536, 0, NULL},
    {"bench", "tg", IMP_CFG_INT, F(bench.tg), "128",
     "tokens generated per decode measurement", 0, 16777216, 0, NULL},
    {"bench", "reps", IMP_CFG_INT, F(bench.reps), "5",
     "repetitions of each measurement", 1, 1000, 0, NULL},
    {"bench", "depth", IMP_CFG_INT, F(bench.depth), "0",
     "tokens already in the KV cache when each measurement starts", 0, 16777215, 0, NULL},
    {"diagnostics", "log_level", IMP_CFG_STR, F(diagnostics.log_level), "\"warn\"",
     "least severe log messages shown", 0, 0, 0, "debug|info|warn|error"},
};
/* clang-format on */
_Static_assert(sizeof imp_cfg_table / sizeof imp_cfg_table[0] == IMP_CFG_N_KEYS,
               "IMP_CFG_N_KEYS must equal the key table's length");

static const char *const imp_cfg_sections[] = {"runtime", "kv_cache",    "attention",  "moe",
                                               "gemm",    "generation",  "server",     "bench",
                                               "paths",   "speculative", "diagnostics"};
#define N_SECTIONS ((int)(sizeof imp_cfg_sections / sizeof imp_cfg_sections[0]))

const imp_cfg_key *imp_config_keys(int *n) {
    if (n) *n = IMP_CFG_N_KEYS;
    return imp_cfg_table;
}

const char *const *imp_config_sections(int *n) {
    if (n) *n = N_SECTIONS;
    return imp_cfg_sections;
}

const char *imp_config_from_str(imp_cfg_from from) {
    switch (from) {
    case IMP_CFG_FROM_DEFAULT:
        return "default";
    case IMP_CFG_FROM_FILE:
        return "file";
    case IMP_CFG_FROM_SET:
        return "--set";
    case IMP_CFG_FROM_FLAG:
        return "flag";
    }
    return "?";
}


/* ---- lookup and suggestions ------------------------------------------------------------- */

static bool name_eq(const char *a, size_t an, const char *b) {
    return strlen(b) == an && !memcmp(a, b, an);
}

static int find_section(const char *s, size_t n) {
    for (int i = 0; i < N_SECTIONS; i++)
        if (name_eq(s, n, imp_cfg_sections[i])) return i;
    return -1;
}

static int find_key(int section, const char *k, size_t n) {
    for (int i = 0; i < IMP_CFG_N_KEYS; i++)
        if (!strcmp(imp_cfg_table[i].section, imp_cfg_sections[section]) &&
            name_eq(k, n, imp_cfg_table[i].name))
            return i;
    return -1;
}

int imp_config_key_index(const char *dotted) {
    if (!dotted) return -1;
    const char *dot = strchr(dotted, '.');
    if (!dot) return -1;
    int s = find_section(dotted, (size_t)(dot - dotted));
    return s < 0 ? -1 : find_key(s, dot + 1, strlen(dot + 1));
}

/* Levenshtein distance of a[0, an) and b (both cut at 63 bytes: names are short). */
static int edit_distance(const char *a, size_t an, const char *b) {
    enum { M = 63 };
    size_t bn = strlen(b);
    if (an > M) an = M;
    if (bn > M) bn = M;
    int prev[M + 1], cur[M + 1];
    for (size_t j = 0; j <= bn; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= an; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= bn; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = IMP_MIN(sub, IMP_MIN(del, ins));
        }
        memcpy(prev, cur, sizeof(int) * (bn + 1));
    }
    return prev[bn];
}

static bool close_enough(int d, size_t len) {
    return d <= 2 || (size_t)d * 3 <= len;
}

/* The nearest section name to s[0, n), or NULL. */
static const char *suggest_section(const char *s, size_t n) {
    int best = -1, best_d = 1 << 30;
    for (int i = 0; i < N_SECTIONS; i++) {
        int d = edit_distance(s, n, imp_cfg_sections[i]);
        if (d < best_d) best_d = d, best = i;
    }
    return best >= 0 && close_enough(best_d, n) ? imp_cfg_sections[best] : NULL;
}

/* The nearest key to section.key (comparing whole dotted names and bare key names, so a key in
 * the wrong section is found), or -1. */
static int suggest_key(const char *sec, size_t sn, const char *key, size_t kn) {
    char full[128], cand[128];
    snprintf(full, sizeof full, "%.*s.%.*s", (int)IMP_MIN(sn, 60), sec, (int)IMP_MIN(kn, 60), key);
    int best = -1, best_d = 1 << 30;
    for (int i = 0; i < IMP_CFG_N_KEYS; i++) {
        snprintf(cand, sizeof cand, "%s.%s", imp_cfg_table[i].section, imp_cfg_table[i].name);
        int d1 = edit_distance(full, strlen(full), cand);
        int d2 = edit_distance(key, kn, imp_cfg_table[i].name);
        int d = IMP_MIN(d1, d2);
        if (d < best_d) best_d = d, best = i;
    }
    return best >= 0 && close_enough(best_d, kn) ? best : -1;
}

static bool section_has_keys(int section) {
    for (int i = 0; i < IMP_CFG_N_KEYS; i++)
        if (!strcmp(imp_cfg_table[i].section, imp_cfg_sections[section])) return true;
    return false;
}

static imp_status unknown_section(const char *s, size_t n, char *why, size_t why_n) {
    const char *sug = suggest_section(s, n);
    if (sug)
        return imp_cfg_why(why, why_n, IMP_ERR_NOT_FOUND, "unknown section [%.*s]; did you mean [%s]?",
                       (int)IMP_MIN(n, 64), s, sug);
    return imp_cfg_why(why, why_n, IMP_ERR_NOT_FOUND,
                   "unknown section [%.*s] (valid: runtime, kv_cache, attention, moe, gemm, "
                   "generation, server, bench, paths, speculative, diagnostics)",
                   (int)IMP_MIN(n, 64), s);
}

static imp_status unknown_key(int section, const char *k, size_t n, char *why, size_t why_n) {
    const char *sec = imp_cfg_sections[section];
    int sug = suggest_key(sec, strlen(sec), k, n);
    char hint[160];
    if (sug >= 0)
        snprintf(hint, sizeof hint, "; did you mean %s.%s?", imp_cfg_table[sug].section,
                 imp_cfg_table[sug].name);
    else if (!section_has_keys(section))
        snprintf(hint, sizeof hint, " ([%s] has no keys yet)", sec);
    else
        snprintf(hint, sizeof hint, " (imp.conf.example lists every key)");
    return imp_cfg_why(why, why_n, IMP_ERR_NOT_FOUND, "unknown key '%.*s' in [%s]%s",
                   (int)IMP_MIN(n, 64), k, sec, hint);
}

/* ---- values ----------------------------------------------------------------------------- */

static const char *value_kind(const imp_cfg_value *v) {
    switch (v->type) {
    case IMP_CFG_STR:
        return "a string";
    case IMP_CFG_INT:
        return "an integer";
    case IMP_CFG_FLOAT:
        return "a float";
    case IMP_CFG_BOOL:
        return "a boolean";
    }
    return "?";
}

static const char *expected_kind(imp_cfg_type t) {
    switch (t) {
    case IMP_CFG_STR:
        return "a string (in quotes)";
    case IMP_CFG_INT:
        return "an integer";
    case IMP_CFG_FLOAT:
        return "a number (float)";
    case IMP_CFG_BOOL:
        return "a boolean (true or false)";
    }
    return "?";
}

/* The allowed range of k as text ("0..512", ">= 0", "> 0 and <= 100", "a power of two in ..."). */
static void describe_range(const imp_cfg_key *k, char *buf, size_t n) {
    if (k->type == IMP_CFG_INT) {
        double type_max = k->size == 8 ? I64MAX : I32MAX;
        if (k->hi >= type_max)
            snprintf(buf, n, ">= %.0f", k->lo);
        else
            snprintf(buf, n, "%s%.0f..%.0f", k->flags & IMP_CFG_POW2 ? "a power of two in " : "",
                     k->lo, k->hi);
    } else {
        const char *lo_op = k->flags & IMP_CFG_LO_OPEN ? ">" : ">=";
        if (k->hi >= FLT_MAX)
            snprintf(buf, n, "%s %g", lo_op, k->lo);
        else if (k->flags & IMP_CFG_LO_OPEN)
            snprintf(buf, n, "> %g and <= %g", k->lo, k->hi);
        else
            snprintf(buf, n, "%g..%g", k->lo, k->hi);
    }
}

/* Checks v against key k and stores it in rc. */
static imp_status apply_value(const imp_cfg_key *k, const imp_cfg_value *v, imp_runtime_config *rc,
                              char *why, size_t why_n) {
    char *field = (char *)rc + k->offset;
    char range[80];
    bool type_ok = v->type == k->type || (k->type == IMP_CFG_FLOAT && v->type == IMP_CFG_INT);
    if (!type_ok)
        return imp_cfg_why(why, why_n, IMP_ERR_TYPE, "%s.%s: expected %s, found %s", k->section,
                       k->name, expected_kind(k->type), value_kind(v));
    switch (k->type) {
    case IMP_CFG_INT: {
        int64_t x = v->i;
        /* (double)INT64_MAX is 2^63, so the upper test never refuses an int64 that fits. */
        bool ok = (double)x >= k->lo && (double)x <= k->hi;
        if (ok && (k->flags & IMP_CFG_POW2)) ok = x > 0 && (x & (x - 1)) == 0;
        if (!ok) {
            describe_range(k, range, sizeof range);
            return imp_cfg_why(why, why_n, IMP_ERR_RANGE, "%s.%s = %lld is out of range (%s)",
                           k->section, k->name, (long long)x, range);
        }
        if (k->size == 8) {
            memcpy(field, &x, 8);
        } else {
            int32_t y = (int32_t)x;
            memcpy(field, &y, 4);
        }
        return IMP_OK;
    }
    case IMP_CFG_FLOAT: {
        double x = v->type == IMP_CFG_INT ? (double)v->i : v->f;
        bool lo_ok = k->flags & IMP_CFG_LO_OPEN ? x > k->lo : x >= k->lo;
        if (!lo_ok || x > k->hi) {
            describe_range(k, range, sizeof range);
            return imp_cfg_why(why, why_n, IMP_ERR_RANGE, "%s.%s = %g is out of range (%s)", k->section,
                           k->name, x, range);
        }
        float y = (float)x;
        memcpy(field, &y, sizeof y);
        return IMP_OK;
    }
    case IMP_CFG_BOOL: {
        bool y = v->b;
        memcpy(field, &y, sizeof y);
        return IMP_OK;
    }
    case IMP_CFG_STR:
        if (memchr(v->s, '\0', v->len))
            return imp_cfg_why(why, why_n, IMP_ERR_FORMAT, "%s.%s: NUL character in the string",
                           k->section, k->name);
        if (v->len >= k->size)
            return imp_cfg_why(why, why_n, IMP_ERR_RANGE, "%s.%s: longer than %zu bytes", k->section,
                           k->name, k->size - 1);
        if (k->choices) {
            bool found = false;
            for (const char *c = k->choices; *c;) {
                const char *bar = strchr(c, '|');
                size_t cn = bar ? (size_t)(bar - c) : strlen(c);
                if (cn == v->len && !memcmp(c, v->s, cn)) found = true;
                c += cn + (bar ? 1 : 0);
            }
            if (!found)
                return imp_cfg_why(why, why_n, IMP_ERR_RANGE, "%s.%s = \"%.*s\": must be one of %s",
                               k->section, k->name, (int)IMP_MIN(v->len, 64), v->s, k->choices);
        }
        memset(field, 0, k->size);
        memcpy(field, v->s, v->len);
        return IMP_OK;
    }
    return imp_cfg_why(why, why_n, IMP_ERR_INTERNAL, "bad key type");
}

void imp_config_init(imp_config *c) {
    if (!c) return;
    memset(c, 0, sizeof *c);
    imp_cfg_value *v = malloc(sizeof *v);
    if (!v) return; /* zeros; the test checks that every default parses and applies */
    char why[IMP_ERROR_MSG_MAX];
    for (int i = 0; i < IMP_CFG_N_KEYS; i++) {
        const imp_cfg_key *k = &imp_cfg_table[i];
        if (imp_cfg_parse_value(k->def, strlen(k->def), v, why, sizeof why) == IMP_OK)
            apply_value(k, v, &c->v, why, sizeof why);
        c->from[i] = IMP_CFG_FROM_DEFAULT;
    }
    free(v);
}

/* ---- files ------------------------------------------------------------------------------ */

typedef struct load_state {
    imp_config *c;                /* the working copy */
    int section;                  /* current section, -1 before the first header */
    int section_line[N_SECTIONS]; /* where each section was opened (0 = not yet) */
    int key_line[IMP_CFG_N_KEYS]; /* where each key was set in this file (0 = not) */
} load_state;

static imp_status on_section(void *ud, const char *name, int line, char *why, size_t why_n) {
    load_state *st = ud;
    int s = find_section(name, strlen(name));
    if (s < 0) return unknown_section(name, strlen(name), why, why_n);
    if (st->section_line[s])
        return imp_cfg_why(why, why_n, IMP_ERR_FORMAT, "duplicate section [%s] (first at line %d)",
                       name, st->section_line[s]);
    st->section_line[s] = line;
    st->section = s;
    return IMP_OK;
}

static imp_status on_key(void *ud, const char *key, const imp_cfg_value *v, int line, char *why,
                         size_t why_n) {
    load_state *st = ud;
    size_t n = strlen(key);
    if (st->section < 0)
        return imp_cfg_why(why, why_n, IMP_ERR_FORMAT,
                       "key '%.*s' before any [section] header (keys go under one, e.g. "
                       "[generation])",
                       (int)IMP_MIN(n, 64), key);
    int k = find_key(st->section, key, n);
    if (k < 0) return unknown_key(st->section, key, n, why, why_n);
    if (st->key_line[k])
        return imp_cfg_why(why, why_n, IMP_ERR_FORMAT, "duplicate key %s.%s (first at line %d)",
                       imp_cfg_table[k].section, key, st->key_line[k]);
    imp_status s = apply_value(&imp_cfg_table[k], v, &st->c->v, why, why_n);
    if (s != IMP_OK) return s;
    st->key_line[k] = line;
    st->c->from[k] = IMP_CFG_FROM_FILE;
    st->c->line[k] = line;
    return IMP_OK;
}

static imp_status load_text(imp_config *c, const char *text, size_t len, const char *name,
                            const char *via, imp_error *err) {
    imp_config *tmp = malloc(sizeof *tmp);
    load_state *st = malloc(sizeof *st);
    if (!tmp || !st) {
        free(tmp);
        free(st);
        return imp_error_set(err, IMP_ERR_NOMEM, "%s: out of memory", name);
    }
    *tmp = *c;
    memset(st, 0, sizeof *st);
    st->c = tmp;
    st->section = -1;
    imp_cfg_handlers h = {st, on_section, on_key};
    imp_status s = imp_cfg_parse(text, len, name, &h, err);
    if (s == IMP_OK) {
        snprintf(tmp->file, sizeof tmp->file, "%s", name);
        snprintf(tmp->file_via, sizeof tmp->file_via, "%s", via);
        /* keys this file set point at it; keys an earlier file set keep their line but now
         * `file` names this one, so only one file per config is the documented use */
        *c = *tmp;
    }
    free(tmp);
    free(st);
    return s;
}

imp_status imp_config_load_string(imp_config *c, const char *text, size_t len, const char *name,
                                  imp_error *err) {
    if (!c || (!text && len))
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "imp_config_load_string: NULL argument");
    return load_text(c, text ? text : "", len, name ? name : "(string)", "string", err);
}

static imp_status load_file_via(imp_config *c, const char *path, const char *via, imp_error *err) {
    if (!c || !path) return imp_error_set(err, IMP_ERR_INVALID_ARG, "config: NULL argument");
    if (!*path) return imp_error_set(err, IMP_ERR_INVALID_ARG, "config: empty file name");
    if (strlen(path) >= sizeof c->file)
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "config file path longer than %zu bytes",
                             sizeof c->file - 1);
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return imp_error_set(err, e == ENOENT ? IMP_ERR_NOT_FOUND : IMP_ERR_IO,
                             "%s: cannot open config file: %s", path, strerror(e));
    }
    char *buf = malloc(IMP_CFG_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return imp_error_set(err, IMP_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, IMP_CFG_FILE_MAX + 1, f);
    bool bad = ferror(f) != 0;
    int e = errno;
    fclose(f);
    imp_status s;
    if (bad)
        s = imp_error_set(err, IMP_ERR_IO, "%s: read error: %s", path, strerror(e));
    else if (n > IMP_CFG_FILE_MAX)
        s = imp_error_set(err, IMP_ERR_RANGE, "%s: config file larger than 1 MiB", path);
    else
        s = load_text(c, buf, n, path, via, err);
    free(buf);
    return s;
}

imp_status imp_config_load_file(imp_config *c, const char *path, imp_error *err) {
    return load_file_via(c, path, "file", err);
}

/* True when path names something (a file that then must load); false when it is absent. */
static bool exists(const char *path) {
    struct stat sb;
    if (stat(path, &sb) == 0) return true;
    return errno != ENOENT && errno != ENOTDIR;
}

imp_status imp_config_load(imp_config *c, const char *explicit_path, imp_error *err) {
    if (!c) return imp_error_set(err, IMP_ERR_INVALID_ARG, "config: NULL argument");
    imp_status s;
    if (explicit_path) {
        s = load_file_via(c, explicit_path, "--config", err);
        if (s != IMP_OK) imp_error_prefix(err, "--config");
        return s;
    }
    /* The one place imp reads its environment (see config.h). */
    const char *env = getenv("IMP_CONFIG");
    if (env && *env) {
        s = load_file_via(c, env, "$IMP_CONFIG", err);
        if (s != IMP_OK) imp_error_prefix(err, "$IMP_CONFIG");
        return s;
    }
    if (exists("imp.conf")) return load_file_via(c, "imp.conf", "./imp.conf", err);
    const char *home = getenv("HOME");
    if (home && *home) {
        char path[sizeof c->file];
        int n = snprintf(path, sizeof path, "%s/.config/imp/imp.conf", home);
        if (n < 0 || (size_t)n >= sizeof path)
            return imp_error_set(err, IMP_ERR_INVALID_ARG,
                                 "$HOME/.config/imp/imp.conf: path longer than %zu bytes",
                                 sizeof path - 1);
        if (exists(path)) return load_file_via(c, path, "~/.config/imp/imp.conf", err);
    }
    return IMP_OK;
}

/* ---- --set ------------------------------------------------------------------------------ */

static void trim(const char **s, size_t *n) {
    while (*n && (**s == ' ' || **s == '\t')) (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

static imp_status set_apply(imp_config *c, const char *a, imp_cfg_from from, imp_cfg_value *v,
                            char *why, size_t why_n) {
    size_t len = strlen(a);
    if (len > IMP_CFG_LINE_MAX)
        return imp_cfg_why(why, why_n, IMP_ERR_RANGE, "longer than %d bytes", IMP_CFG_LINE_MAX);
    if (imp_utf8_invalid_at((const unsigned char *)a, len) != (size_t)-1)
        return imp_cfg_why(why, why_n, IMP_ERR_FORMAT, "invalid UTF-8");
    const char *eq = strchr(a, '=');
    const char *lhs = a;
    size_t ln = eq ? (size_t)(eq - a) : len;
    trim(&lhs, &ln);
    const char *dot = memchr(lhs, '.', ln);
    if (!eq || !dot)
        return imp_cfg_why(why, why_n, IMP_ERR_FORMAT,
                       "expected section.key=value (e.g. generation.top_p=0.9)");
    const char *sec = lhs, *key = dot + 1;
    size_t sn = (size_t)(dot - lhs), kn = ln - sn - 1;
    trim(&sec, &sn);
    trim(&key, &kn);
    int s = find_section(sec, sn);
    if (s < 0) return unknown_section(sec, sn, why, why_n);
    int k = find_key(s, key, kn);
    if (k < 0) return unknown_key(s, key, kn, why, why_n);
    const imp_cfg_key *kk = &imp_cfg_table[k];
    const char *val = eq + 1;
    size_t vn = strlen(val);
    trim(&val, &vn);
    imp_status st;
    if (kk->type == IMP_CFG_STR && (vn == 0 || (val[0] != '"' && val[0] != '\''))) {
        memset(v, 0, offsetof(imp_cfg_value, s));
        v->type = IMP_CFG_STR;
        memcpy(v->s, val, vn);
        v->s[vn] = '\0';
        v->len = vn;
    } else {
        st = imp_cfg_parse_value(val, vn, v, why, why_n);
        /* "top_p=abc" on the command line: say what the key takes, not how TOML quotes */
        if (st == IMP_ERR_FORMAT && kk->type != IMP_CFG_STR && strstr(why, "needs quotes"))
            return imp_cfg_why(why, why_n, IMP_ERR_TYPE, "%s.%s: expected %s, found '%.*s'",
                           kk->section, kk->name, expected_kind(kk->type), (int)IMP_MIN(vn, 40),
                           val);
        if (st != IMP_OK) return st;
    }
    st = apply_value(kk, v, &c->v, why, why_n);
    if (st != IMP_OK) return st;
    c->from[k] = from;
    c->line[k] = 0;
    return IMP_OK;
}

imp_status imp_config_set(imp_config *c, const char *assignment, imp_cfg_from from,
                          imp_error *err) {
    if (!c || !assignment)
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "imp_config_set: NULL argument");
    if (from != IMP_CFG_FROM_SET && from != IMP_CFG_FROM_FLAG)
        return imp_error_set(err, IMP_ERR_INVALID_ARG,
                             "imp_config_set: from must be IMP_CFG_FROM_SET or _FLAG");
    imp_cfg_value *v = malloc(sizeof *v);
    imp_config *tmp = malloc(sizeof *tmp);
    if (!v || !tmp) {
        free(v);
        free(tmp);
        return imp_error_set(err, IMP_ERR_NOMEM, "--set: out of memory");
    }
    *tmp = *c;
    char why[IMP_ERROR_MSG_MAX];
    imp_status st = set_apply(tmp, assignment, from, v, why, sizeof why);
    if (st == IMP_OK)
        *c = *tmp;
    else
        imp_error_set(err, st, "%s%.*s: %s", from == IMP_CFG_FROM_SET ? "--set " : "",
                      (int)IMP_MIN(strlen(assignment), 100), assignment, why);
    free(v);
    free(tmp);
    return st;
}

/* ---- dump ------------------------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1) {
            if (cap > ((size_t)1 << 30)) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* The path with control characters shown as '?' (a newline would end the comment). */
static void sb_path(sbuf *b, const char *path) {
    for (const char *p = path; *p; p++) {
        char ch = (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p;
        sb_put(b, &ch, 1);
    }
}

/* Shortest "%g" text that reads back as the same float, always with '.' or an exponent. */
static void format_float(float x, char *out, size_t n) {
    locale_t cl = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    locale_t old = cl != (locale_t)0 ? uselocale(cl) : (locale_t)0;
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(out, n, "%.*g", prec, (double)x);
        if (strtof(out, NULL) == x) break;
    }
    if (cl != (locale_t)0) {
        uselocale(old);
        freelocale(cl);
    }
    if (!strpbrk(out, ".eEn")) {
        size_t l = strlen(out);
        if (l + 2 < n) memcpy(out + l, ".0", 3);
    }
}

static void value_text(const imp_cfg_key *k, const imp_runtime_config *rc, sbuf *b) {
    const char *field = (const char *)rc + k->offset;
    char tmp[64];
    switch (k->type) {
    case IMP_CFG_INT:
        if (k->size == 8) {
            int64_t x;
            memcpy(&x, field, 8);
            sb_printf(b, "%lld", (long long)x);
        } else {
            int32_t x;
            memcpy(&x, field, 4);
            sb_printf(b, "%d", (int)x);
        }
        return;
    case IMP_CFG_FLOAT: {
        float x;
        memcpy(&x, field, sizeof x);
        format_float(x, tmp, sizeof tmp);
        sb_printf(b, "%s", tmp);
        return;
    }
    case IMP_CFG_BOOL: {
        bool x;
        memcpy(&x, field, sizeof x);
        sb_printf(b, "%s", x ? "true" : "false");
        return;
    }
    case IMP_CFG_STR: {
        sb_put(b, "\"", 1);
        size_t len = strnlen(field, k->size);
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)field[i];
            if (ch == '"' || ch == '\\')
                sb_printf(b, "\\%c", ch);
            else if (ch == '\n')
                sb_put(b, "\\n", 2);
            else if (ch == '\t')
                sb_put(b, "\\t", 2);
            else if (ch < 0x20 || ch == 0x7f)
                sb_printf(b, "\\u%04x", ch);
            else
                sb_put(b, (const char *)&ch, 1);
        }
        sb_put(b, "\"", 1);
        return;
    }
    }
}

imp_status imp_config_dump(const imp_config *c, char **out, imp_error *err) {
    if (!c || !out)
        return imp_error_set(err, IMP_ERR_INVALID_ARG, "imp_config_dump: NULL argument");
    *out = NULL;
    sbuf b = {0};
    sb_printf(&b, "# imp: the effective configuration\n# file: ");
    if (c->file[0]) {
        sb_path(&b, c->file);
        sb_printf(&b, " (%s)\n", c->file_via[0] ? c->file_via : "file");
    } else {
        sb_printf(&b, "none (embedded defaults)\n");
    }
    for (int s = 0; s < N_SECTIONS; s++) {
        sb_printf(&b, "\n[%s]\n", imp_cfg_sections[s]);
        if (!section_has_keys(s)) sb_printf(&b, "# no keys yet\n");
        for (int i = 0; i < IMP_CFG_N_KEYS; i++) {
            const imp_cfg_key *k = &imp_cfg_table[i];
            if (strcmp(k->section, imp_cfg_sections[s])) continue;
            size_t start = b.n;
            sb_printf(&b, "%s = ", k->name);
            value_text(k, &c->v, &b);
            size_t w = b.oom ? 0 : b.n - start;
            for (; w < 32; w++) sb_put(&b, " ", 1);
            sb_printf(&b, " # from: ");
            if (c->from[i] == IMP_CFG_FROM_FILE) {
                sb_path(&b, c->file[0] ? c->file : "(file)");
                sb_printf(&b, ":%d\n", c->line[i]);
            } else {
                sb_printf(&b, "%s\n", imp_config_from_str(c->from[i]));
            }
        }
    }
    if (b.oom) {
        free(b.p);
        return imp_error_set(err, IMP_ERR_NOMEM, "imp_config_dump: out of memory");
    }
    *out = b.p;
    return IMP_OK;
}
