/*
 * imp.conf (src/config/).
 * 1. The key table: defaults equal the values the brief fixes (hand-written here), every def
 *    string applies through --set, the table covers imp_runtime_config field by field.
 * 2. Values: every accepted form (integers with sign and '_', floats in TOML forms, an integer
 *    for a float key, booleans, basic strings with each escape, literal strings, CRLF, a BOM).
 * 3. Every error path: the status, the message's text (the suggestion, the expected type, the
 *    range) and "t.conf:LINE:"; the config is unchanged after each.
 * 4. Files and precedence: --config > $IMP_CONFIG > ./imp.conf > ~/.config/imp/imp.conf >
 *    defaults, in temp dirs with HOME / IMP_CONFIG set and chdir; missing required files.
 * 5. --set / flags on top of a file, with their sources; their errors.
 * 6. The dump: sources shown, and dump -> load_string gives the same values.
 * 7. imp.conf.example (from IMP_SOURCE_DIR) loads as is and with every key uncommented, its keys
 *    are exactly the table's with the same defaults; docs/config.md has one row per key.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "testutil.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static bool key_equal(const imp_cfg_key *k, const imp_runtime_config *a,
                      const imp_runtime_config *b) {
    const char *fa = (const char *)a + k->offset, *fb = (const char *)b + k->offset;
    if (k->type == IMP_CFG_STR) return strncmp(fa, fb, k->size) == 0;
    return memcmp(fa, fb, k->type == IMP_CFG_BOOL ? sizeof(bool) : k->size) == 0;
}

static bool values_equal(const imp_runtime_config *a, const imp_runtime_config *b) {
    int n;
    const imp_cfg_key *keys = imp_config_keys(&n);
    for (int i = 0; i < n; i++)
        if (!key_equal(&keys[i], a, b)) return false;
    return true;
}

static bool configs_equal(const imp_config *a, const imp_config *b) {
    if (!values_equal(&a->v, &b->v) || strcmp(a->file, b->file)) return false;
    for (int i = 0; i < IMP_CFG_N_KEYS; i++)
        if (a->from[i] != b->from[i] || a->line[i] != b->line[i]) return false;
    return true;
}

static int idx(const char *dotted) {
    int i = imp_config_key_index(dotted);
    CHECKF(i >= 0, "no key %s", dotted);
    return i < 0 ? 0 : i;
}

static imp_status load_str(imp_config *c, const char *text, imp_error *err) {
    imp_error_clear(err);
    return imp_config_load_string(c, text, strlen(text), "t.conf", err);
}

static void load_ok(imp_config *c, const char *text) {
    imp_error err;
    imp_status st = load_str(c, text, &err);
    CHECKF(st == IMP_OK, "load '%s': %s", text, err.msg);
}

/* Loads text (len bytes) into a default config and expects status `want` with a message that
 * contains every non-NULL needle; the config must be unchanged. */
static void expect_err_n(const char *text, size_t len, imp_status want, const char *n1,
                         const char *n2, const char *n3) {
    imp_config c, before;
    imp_config_init(&c);
    imp_config_set(&c, "generation.top_k=7", IMP_CFG_FROM_SET, NULL);
    before = c;
    imp_error err;
    imp_error_clear(&err);
    imp_status st = imp_config_load_string(&c, text, len, "t.conf", &err);
    CHECKF(st == want, "'%.60s': status %d, want %d (%s)", text, (int)st, (int)want, err.msg);
    const char *needles[3] = {n1, n2, n3};
    for (int i = 0; i < 3; i++)
        if (needles[i])
            CHECKF(strstr(err.msg, needles[i]) != NULL, "'%.60s': message '%s' lacks '%s'", text,
                   err.msg, needles[i]);
    CHECKF(configs_equal(&c, &before), "'%.60s': config changed by a failed load", text);
}

static void expect_err(const char *text, imp_status want, const char *n1, const char *n2,
                       const char *n3) {
    expect_err_n(text, strlen(text), want, n1, n2, n3);
}

static void expect_set_err(const char *a, imp_status want, const char *n1, const char *n2) {
    imp_config c, before;
    imp_config_init(&c);
    before = c;
    imp_error err;
    imp_error_clear(&err);
    imp_status st = imp_config_set(&c, a, IMP_CFG_FROM_SET, &err);
    CHECKF(st == want, "set '%s': status %d, want %d (%s)", a, (int)st, (int)want, err.msg);
    if (n1) CHECKF(strstr(err.msg, n1) != NULL, "set '%s': '%s' lacks '%s'", a, err.msg, n1);
    if (n2) CHECKF(strstr(err.msg, n2) != NULL, "set '%s': '%s' lacks '%s'", a, err.msg, n2);
    CHECKF(configs_equal(&c, &before), "set '%s': config changed by a failed set", a);
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *p = realloc(buf, cap * 2 + 1);
            if (!p) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    *len = n;
    return buf;
}

static bool write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(text, 1, strlen(text), f) == strlen(text);
    return fclose(f) == 0 && ok;
}

/* ---- 1. the table and defaults ---------------------------------------------------------- */

static void test_defaults(void) {
    imp_config c;
    imp_config_init(&c);
    const imp_runtime_config *v = &c.v;
    CHECK(v->runtime.threads == 0 && v->runtime.max_seq_len == 0 && v->runtime.max_batch == 512);
    CHECK(v->kv_cache.block_size == 16);
    CHECK(v->generation.max_tokens == 256);
    CHECK(v->generation.temperature == 0.8f);
    CHECK(v->generation.top_k == 40);
    CHECK(v->generation.top_p == 0.95f && v->generation.min_p == 0.05f);
    CHECK(v->generation.typical_p == 1.0f && v->generation.repeat_penalty == 1.0f);
    CHECK(v->generation.repeat_last_n == 64);
    CHECK(v->generation.frequency_penalty == 0.0f && v->generation.presence_penalty == 0.0f);
    CHECK(v->generation.dry_multiplier == 0.0f && v->generation.dry_base == 1.75f);
    CHECK(v->generation.dry_allowed_length == 2 && v->generation.dry_penalty_last_n == -1);
    CHECK(v->generation.mirostat == 0);
    CHECK(v->generation.mirostat_tau == 5.0f && v->generation.mirostat_eta == 0.1f);
    CHECK(v->generation.seed == -1);
    CHECK(!strcmp(v->generation.chat_template, "auto"));
    CHECK(v->bench.pp == 512 && v->bench.tg == 128 && v->bench.reps == 5 && v->bench.depth == 0);
    CHECK(!strcmp(v->diagnostics.log_level, "warn"));
    CHECK(c.file[0] == '\0');
    for (int i = 0; i < IMP_CFG_N_KEYS; i++) CHECK(c.from[i] == IMP_CFG_FROM_DEFAULT);

    /* every def string applies (through --set) and gives the same value */
    int n;
    const imp_cfg_key *keys = imp_config_keys(&n);
    CHECK(n == IMP_CFG_N_KEYS);
    for (int i = 0; i < n; i++) {
        imp_config d;
        imp_config_init(&d);
        memset(&d.v, 0, sizeof d.v);
        char a[256];
        snprintf(a, sizeof a, "%s.%s=%s", keys[i].section, keys[i].name, keys[i].def);
        imp_error err;
        imp_error_clear(&err);
        CHECKF(imp_config_set(&d, a, IMP_CFG_FROM_SET, &err) == IMP_OK, "%s: %s", a, err.msg);
        CHECKF(key_equal(&keys[i], &d.v, &c.v), "default of %s.%s", keys[i].section, keys[i].name);
        CHECK(imp_config_key_index(a) < 0); /* "x.y=..." is not a key name */
        snprintf(a, sizeof a, "%s.%s", keys[i].section, keys[i].name);
        CHECK(imp_config_key_index(a) == i);
        CHECK(keys[i].help && keys[i].help[0]);
    }

    /* every table section is a valid section; fields are covered in order with no gaps beyond
     * alignment padding (a struct field missing from the table would leave one) */
    int ns;
    const char *const *secs = imp_config_sections(&ns);
    CHECK(ns == 11);
    size_t end = 0;
    for (int i = 0; i < n; i++) {
        bool found = false;
        for (int s = 0; s < ns; s++) found = found || !strcmp(secs[s], keys[i].section);
        CHECKF(found, "section of %s", keys[i].name);
        size_t gap = keys[i].offset - end;
        CHECKF(keys[i].offset >= end && (gap == 0 || (keys[i].size == 8 && gap < 8)),
               "key %s.%s at offset %zu, previous field ends at %zu", keys[i].section, keys[i].name,
               keys[i].offset, end);
        end = keys[i].offset + keys[i].size;
    }
    CHECKF(sizeof(imp_runtime_config) - end < 8, "fields after the last key (%zu of %zu)", end,
           sizeof(imp_runtime_config));
    CHECK(imp_config_key_index("generation") < 0 && imp_config_key_index("nope.top_k") < 0);
    CHECK(imp_config_key_index(NULL) < 0);
}

/* ---- 2. values ------------------------------------------------------------------------- */

static void value_is(const char *text, imp_cfg_type type, double f, int64_t i, const char *s) {
    imp_cfg_value *v = malloc(sizeof *v);
    char why[256] = "";
    imp_status st = imp_cfg_parse_value(text, strlen(text), v, why, sizeof why);
    CHECKF(st == IMP_OK, "value '%s': %s", text, why);
    if (st == IMP_OK) {
        CHECKF(v->type == type, "value '%s': type %d", text, (int)v->type);
        if (type == IMP_CFG_FLOAT) CHECKF(v->f == f, "value '%s': %g", text, v->f);
        if (type == IMP_CFG_INT) CHECKF(v->i == i, "value '%s': %lld", text, (long long)v->i);
        if (type == IMP_CFG_BOOL) CHECKF(v->b == (i != 0), "value '%s'", text);
        if (type == IMP_CFG_STR)
            CHECKF(v->len == strlen(s) && !strcmp(v->s, s), "value '%s': '%s'", text, v->s);
    }
    free(v);
}

static void test_values(void) {
    value_is(" 42", IMP_CFG_INT, 0, 42, NULL);
    value_is("-7 # comment", IMP_CFG_INT, 0, -7, NULL);
    value_is("+1_000_000", IMP_CFG_INT, 0, 1000000, NULL);
    value_is("0", IMP_CFG_INT, 0, 0, NULL);
    value_is("9223372036854775807", IMP_CFG_INT, 0, INT64_MAX, NULL);
    value_is("-9223372036854775808", IMP_CFG_INT, 0, INT64_MIN, NULL);
    value_is("0.5", IMP_CFG_FLOAT, 0.5, 0, NULL);
    value_is("1e-3", IMP_CFG_FLOAT, 1e-3, 0, NULL);
    value_is("2.5E+2", IMP_CFG_FLOAT, 250, 0, NULL);
    value_is("-0.0", IMP_CFG_FLOAT, -0.0, 0, NULL);
    value_is("1_0.2_5", IMP_CFG_FLOAT, 10.25, 0, NULL);
    value_is("3e0_1", IMP_CFG_FLOAT, 3e1, 0, NULL);
    value_is("1e-05", IMP_CFG_FLOAT, 1e-5, 0, NULL);
    value_is("true", IMP_CFG_BOOL, 0, 1, NULL);
    value_is("false\t#x", IMP_CFG_BOOL, 0, 0, NULL);
    value_is("\"\"", IMP_CFG_STR, 0, 0, "");
    value_is("\"a\\\"b\\\\c\\n\\t\\b\\f\\r#\"  # c", IMP_CFG_STR, 0, 0, "a\"b\\c\n\t\b\f\r#");
    value_is("\"\\u00e9\\U0001F600\"", IMP_CFG_STR, 0, 0, "\xc3\xa9\xf0\x9f\x98\x80");
    value_is("'C:\\path\\n \"q\"'", IMP_CFG_STR, 0, 0, "C:\\path\\n \"q\"");
    value_is("\"h\xc3\xa9llo\tx\"", IMP_CFG_STR, 0, 0, "h\xc3\xa9llo\tx");

    imp_config c;
    imp_config_init(&c);
    load_ok(&c, "# top comment\n\n[generation]\n  temperature = 1   # an integer for a float\n"
                "top_p=0.5\nseed = 9_223_372_036_854_775_807\nchat_template = \"a\\\"b\"\n"
                "[ diagnostics ]  # spaces\nlog_level = 'debug'\n[bench]\npp = +64\n"
                "[attention]\n[runtime]\nmax_seq_len = 16777216\n");
    CHECK(c.v.generation.temperature == 1.0f && c.v.generation.top_p == 0.5f);
    CHECK(c.v.generation.seed == INT64_MAX);
    CHECK(!strcmp(c.v.generation.chat_template, "a\"b"));
    CHECK(!strcmp(c.v.diagnostics.log_level, "debug"));
    CHECK(c.v.bench.pp == 64 && c.v.runtime.max_seq_len == 16777216);
    CHECK(c.from[idx("generation.temperature")] == IMP_CFG_FROM_FILE);
    CHECK(c.line[idx("generation.temperature")] == 4 && c.line[idx("bench.pp")] == 11);
    CHECK(c.from[idx("generation.top_k")] == IMP_CFG_FROM_DEFAULT);
    CHECK(!strcmp(c.file, "t.conf") && !strcmp(c.file_via, "string"));

    /* a second load replaces only what it sets */
    load_ok(&c, "[bench]\nreps = 9\n");
    CHECK(c.v.bench.reps == 9 && c.v.bench.pp == 64 && c.v.generation.top_p == 0.5f);

    /* CRLF line ends, a BOM, no final newline, an empty text */
    imp_config_init(&c);
    load_ok(&c, "\xEF\xBB\xBF[bench]\r\nreps = 7\r\ntg = 3");
    CHECK(c.v.bench.reps == 7 && c.v.bench.tg == 3 && c.line[idx("bench.tg")] == 3);
    load_ok(&c, "");
    CHECK(c.v.bench.reps == 7);
    /* the edges of ranges are accepted */
    imp_config_init(&c);
    load_ok(&c,
            "[kv_cache]\nblock_size = 1024\n[generation]\nrepeat_penalty = 100\n"
            "repeat_last_n = -1\ntop_p = 0\nmirostat = 2\nseed = -1\n"
            "chat_template = \"123456789012345678901234567890123456789012345678901234567890123\"\n"
            "[runtime]\nthreads = 512\n");
    CHECK(c.v.kv_cache.block_size == 1024 && c.v.generation.repeat_penalty == 100.0f);
    CHECK(strlen(c.v.generation.chat_template) == 63 && c.v.runtime.threads == 512);
}

/* ---- 3. errors ------------------------------------------------------------------------- */

static void test_errors(void) {
    /* names */
    expect_err("[generaton]\n", IMP_ERR_NOT_FOUND, "t.conf:1:", "unknown section [generaton]",
               "did you mean [generation]?");
    expect_err("# c\n[samplr]\n", IMP_ERR_NOT_FOUND, "t.conf:2:", "unknown section [samplr]",
               "valid: runtime");
    expect_err("[generation]\ntopp = 0.5\n", IMP_ERR_NOT_FOUND,
               "t.conf:2:", "unknown key 'topp' in [generation]", "did you mean generation.top_p?");
    expect_err("[generation]\ntemprature = 0.5\n", IMP_ERR_NOT_FOUND,
               "t.conf:2:", "did you mean generation.temperature?", NULL);
    expect_err("[runtime]\ntop_p = 0.5\n", IMP_ERR_NOT_FOUND,
               "t.conf:2:", "unknown key 'top_p' in [runtime]", "did you mean generation.top_p?");
    expect_err("[attention]\nblock_sise = 8\n", IMP_ERR_NOT_FOUND,
               "t.conf:2:", "did you mean kv_cache.block_size?", NULL);
    expect_err("[moe]\nexperts = 8\n", IMP_ERR_NOT_FOUND,
               "t.conf:2:", "unknown key 'experts' in [moe]", "[moe] has no keys yet");
    expect_err("[generation]\nzzzzzzzzz = 1\n", IMP_ERR_NOT_FOUND,
               "t.conf:2:", "unknown key 'zzzzzzzzz'", "imp.conf.example");
    /* types */
    expect_err("[generation]\ntop_k = 0.5\n", IMP_ERR_TYPE,
               "t.conf:2:", "generation.top_k: expected an integer, found a float", NULL);
    expect_err("[generation]\ntop_p = \"x\"\n", IMP_ERR_TYPE,
               "t.conf:2:", "expected a number (float), found a string", NULL);
    expect_err("[generation]\nchat_template = 5\n", IMP_ERR_TYPE, "t.conf:2:", "expected a string",
               NULL);
    expect_err("[bench]\nreps = true\n", IMP_ERR_TYPE, "t.conf:2:", "expected an integer",
               "found a boolean");
    /* ranges */
    expect_err("[generation]\ntop_p = 1.5\n", IMP_ERR_RANGE,
               "t.conf:2:", "generation.top_p = 1.5 is out of range (0..1)", NULL);
    expect_err("[runtime]\nthreads = 513\n", IMP_ERR_RANGE,
               "t.conf:2:", "runtime.threads = 513 is out of range (0..512)", NULL);
    expect_err("[runtime]\nmax_batch = 0\n", IMP_ERR_RANGE, "(1..65536)", NULL, NULL);
    expect_err("[kv_cache]\nblock_size = 24\n", IMP_ERR_RANGE,
               "t.conf:2:", "a power of two in 1..1024", NULL);
    expect_err("[generation]\nrepeat_penalty = 0\n", IMP_ERR_RANGE, "t.conf:2:", "(> 0 and <= 100)",
               NULL);
    expect_err("[generation]\ntop_k = -1\n", IMP_ERR_RANGE, "(>= 0)", NULL, NULL);
    expect_err("[generation]\ndry_base = 0.5\n", IMP_ERR_RANGE, "(>= 1)", NULL, NULL);
    expect_err("[generation]\nseed = -2\n", IMP_ERR_RANGE, "generation.seed = -2", "(>= -1)", NULL);
    expect_err("[generation]\nmax_tokens = 3000000000\n", IMP_ERR_RANGE, "(0..16777216)", NULL,
               NULL);
    expect_err("[diagnostics]\nlog_level = \"verbose\"\n", IMP_ERR_RANGE,
               "t.conf:2:", "must be one of debug|info|warn|error", NULL);
    expect_err("[generation]\nchat_template = "
               "\"1234567890123456789012345678901234567890123456789012345678901234\"\n",
               IMP_ERR_RANGE, "t.conf:2:", "longer than 63 bytes", NULL);
    expect_err("[generation]\nchat_template = \"a\\u0000b\"\n", IMP_ERR_FORMAT, "t.conf:2:", "NUL",
               NULL);
    expect_err("[generation]\nseed = 9223372036854775808\n", IMP_ERR_RANGE,
               "t.conf:2:", "does not fit in 64 bits", NULL);
    expect_err("[generation]\ntemperature = 1e999\n", IMP_ERR_RANGE,
               "t.conf:2:", "number too large", NULL);
    /* structure */
    expect_err("[generation]\nseed = 1\nseed = 2\n", IMP_ERR_FORMAT,
               "t.conf:3:", "duplicate key generation.seed (first at line 2)", NULL);
    expect_err("[bench]\n[generation]\n[bench]\n", IMP_ERR_FORMAT,
               "t.conf:3:", "duplicate section [bench] (first at line 1)", NULL);
    expect_err("# c\nseed = 1\n[generation]\n", IMP_ERR_FORMAT,
               "t.conf:2:", "key 'seed' before any [section]", NULL);
    expect_err("[generation]\ntop_k 5\n", IMP_ERR_FORMAT,
               "t.conf:2:", "expected '=' after key 'top_k'", NULL);
    expect_err("[generation]\ntop_k\n", IMP_ERR_FORMAT, "t.conf:2:", "expected '='", NULL);
    expect_err("[generation]\ntop_k =   # nothing\n", IMP_ERR_FORMAT, "t.conf:2:", "missing value",
               NULL);
    expect_err("[generation]\ntop_k = 5 6\n", IMP_ERR_FORMAT,
               "t.conf:2:", "unexpected text after the value", NULL);
    expect_err("[generation\n", IMP_ERR_FORMAT, "t.conf:1:", "expected ']'", NULL);
    expect_err("[generation] x\n", IMP_ERR_FORMAT, "t.conf:1:", "unexpected text after", NULL);
    expect_err("[]\n", IMP_ERR_FORMAT, "t.conf:1:", "expected a section name", NULL);
    expect_err("[bench]\n= 5\n", IMP_ERR_FORMAT, "t.conf:2:", "expected a key", NULL);
    /* strings */
    expect_err("[generation]\nchat_template = \"abc\n", IMP_ERR_FORMAT,
               "t.conf:2:", "unterminated string", NULL);
    expect_err("[generation]\nchat_template = 'abc\n", IMP_ERR_FORMAT,
               "t.conf:2:", "unterminated string", NULL);
    expect_err("[generation]\nchat_template = \"abc\\\"\n", IMP_ERR_FORMAT,
               "t.conf:2:", "unterminated string", NULL);
    expect_err("[generation]\nchat_template = \"a\\qb\"\n", IMP_ERR_FORMAT,
               "t.conf:2:", "bad escape '\\q'", NULL);
    expect_err("[generation]\nchat_template = \"a\\u12\"\n", IMP_ERR_FORMAT,
               "t.conf:2:", "bad escape", "4 hex digits");
    expect_err("[generation]\nchat_template = \"\\uD800\"\n", IMP_ERR_FORMAT,
               "t.conf:2:", "not a Unicode scalar value", NULL);
    expect_err("[generation]\nchat_template = \"\\U00110000\"\n", IMP_ERR_FORMAT,
               "t.conf:2:", "not a Unicode scalar value", NULL);
    expect_err("[generation]\nchat_template = \"a\x01\"\n", IMP_ERR_FORMAT,
               "t.conf:2:", "control character 0x01", NULL);
    expect_err("[generation]\nchat_template = chatml\n", IMP_ERR_FORMAT,
               "t.conf:2:", "invalid value 'chatml'", "needs quotes");
    /* numbers */
    expect_err("[generation]\ntemperature = inf\n", IMP_ERR_FORMAT,
               "t.conf:2:", "inf and nan are not allowed", NULL);
    expect_err("[generation]\ntemperature = -nan\n", IMP_ERR_FORMAT, "inf and nan", NULL, NULL);
    expect_err("[generation]\ntop_k = 0x10\n", IMP_ERR_UNSUPPORTED, "t.conf:2:", "hexadecimal",
               NULL);
    expect_err("[generation]\ntop_k = 010\n", IMP_ERR_FORMAT, "t.conf:2:", "leading zeros", NULL);
    const char *bad_numbers[] = {"1__0", "_1", "1_",  "1.",    ".5",         "1e",
                                 "1e+",  "+",  "--1", "1.5.2", "1979-05-27", "1,5"};
    for (size_t i = 0; i < sizeof bad_numbers / sizeof bad_numbers[0]; i++) {
        char t[96];
        snprintf(t, sizeof t, "[generation]\ntemperature = %s\n", bad_numbers[i]);
        expect_err(t, IMP_ERR_FORMAT, "t.conf:2:", "invalid value", NULL);
    }
    /* TOML that imp.conf does not take */
    expect_err("[generation]\na.b = 1\n", IMP_ERR_UNSUPPORTED, "t.conf:2:", "dotted keys",
               "not supported in imp.conf");
    expect_err("[generation]\ntop_k . x = 1\n", IMP_ERR_UNSUPPORTED, "dotted keys", NULL, NULL);
    expect_err("[generation.sub]\n", IMP_ERR_UNSUPPORTED, "t.conf:1:", "dotted section names",
               NULL);
    expect_err("[generation]\ntop_k = [1, 2]\n", IMP_ERR_UNSUPPORTED,
               "t.conf:2:", "arrays are not supported in imp.conf", NULL);
    expect_err("[generation]\ntop_k = { a = 1 }\n", IMP_ERR_UNSUPPORTED,
               "t.conf:2:", "inline tables are not supported in imp.conf", NULL);
    expect_err("[generation]\nchat_template = \"\"\"a\"\"\"\n", IMP_ERR_UNSUPPORTED,
               "t.conf:2:", "multi-line strings", NULL);
    expect_err("[generation]\nchat_template = '''a'''\n", IMP_ERR_UNSUPPORTED, "multi-line", NULL,
               NULL);
    expect_err("[[generation]]\n", IMP_ERR_UNSUPPORTED, "t.conf:1:", "arrays of tables", NULL);
    expect_err("[generation]\n\"top_k\" = 1\n", IMP_ERR_UNSUPPORTED, "t.conf:2:", "quoted keys",
               NULL);
    expect_err("[\"generation\"]\n", IMP_ERR_UNSUPPORTED, "quoted section names", NULL, NULL);
    /* text-level limits */
    {
        size_t n = 5000;
        char *t = malloc(n + 64);
        strcpy(t, "[generation]\n#");
        size_t l = strlen(t);
        memset(t + l, 'x', n);
        strcpy(t + l + n, "\ntop_k = 1\n");
        expect_err(t, IMP_ERR_RANGE, "t.conf:2:", "line longer than 4096 bytes", NULL);
        /* exactly 4096 bytes is fine */
        memset(t, 0, n + 64);
        strcpy(t, "[generation]\n#");
        memset(t + strlen(t), 'y', 4095);
        strcat(t, "\r\ntop_k = 1\n");
        imp_config c;
        imp_config_init(&c);
        load_ok(&c, t);
        CHECK(c.v.generation.top_k == 1);
        free(t);
    }
    expect_err("[generation]\n# caf\xe9 au lait\n", IMP_ERR_FORMAT, "t.conf:2:", "invalid UTF-8",
               "column 6");
    expect_err("[generation]\nchat_template = \"\xc0\xaf\"\n", IMP_ERR_FORMAT,
               "t.conf:2:", "invalid UTF-8", NULL);
    expect_err_n("[bench]\nreps = 1\0\n", 18, IMP_ERR_FORMAT, "t.conf:2:", "NUL byte", NULL);
    {
        size_t n = (1u << 20) + 1;
        char *t = malloc(n);
        memset(t, '\n', n);
        expect_err_n(t, n, IMP_ERR_RANGE, "t.conf", "larger than 1 MiB", NULL);
        /* 1 MiB exactly is fine */
        imp_config c;
        imp_config_init(&c);
        imp_error err;
        CHECK(imp_config_load_string(&c, t, n - 1, "big", &err) == IMP_OK);
        free(t);
    }
    /* a failure late in a file leaves the earlier keys unapplied too */
    expect_err("[generation]\ntop_k = 5\ntop_p = 2\n", IMP_ERR_RANGE, "t.conf:3:", NULL, NULL);
    /* arguments */
    imp_config c;
    imp_config_init(&c);
    imp_error err;
    CHECK(imp_config_load_string(NULL, "", 0, "x", &err) == IMP_ERR_INVALID_ARG);
    CHECK(imp_config_load_string(&c, NULL, 3, "x", &err) == IMP_ERR_INVALID_ARG);
    CHECK(imp_config_load_string(&c, NULL, 0, NULL, &err) == IMP_OK);
    CHECK(imp_config_load_file(&c, NULL, &err) == IMP_ERR_INVALID_ARG);
    CHECK(imp_config_load_file(&c, "", &err) == IMP_ERR_INVALID_ARG);
}

/* ---- 4. files and precedence ------------------------------------------------------------ */

static void path_join(char *out, size_t n, const char *a, const char *b) {
    int r = snprintf(out, n, "%s/%s", a, b);
    CHECK(r > 0 && (size_t)r < n);
}

static void test_precedence(void) {
    char root[] = "/tmp/imp_cfg_XXXXXX";
    if (!mkdtemp(root)) {
        CHECKF(0, "mkdtemp failed");
        return;
    }
    char cwd0[4096];
    if (!getcwd(cwd0, sizeof cwd0)) {
        CHECKF(0, "getcwd failed");
        return;
    }
    const char *home0 = getenv("HOME"), *env0 = getenv("IMP_CONFIG");
    char *home_saved = home0 ? strdup(home0) : NULL, *env_saved = env0 ? strdup(env0) : NULL;

    char home[600], d1[700], d2[700], homefile[800], cwd[600], cwdfile[700], envfile[600],
        explicitfile[600], missing[600];
    path_join(home, sizeof home, root, "home");
    path_join(d1, sizeof d1, home, ".config");
    path_join(d2, sizeof d2, d1, "imp");
    path_join(homefile, sizeof homefile, d2, "imp.conf");
    path_join(cwd, sizeof cwd, root, "cwd");
    path_join(cwdfile, sizeof cwdfile, cwd, "imp.conf");
    path_join(envfile, sizeof envfile, root, "env.conf");
    path_join(explicitfile, sizeof explicitfile, root, "explicit.conf");
    path_join(missing, sizeof missing, root, "missing.conf");
    bool ok = mkdir(home, 0700) == 0 && mkdir(d1, 0700) == 0 && mkdir(d2, 0700) == 0 &&
              mkdir(cwd, 0700) == 0;
    /* each file sets threads to its rank and one key of its own, to show that only one is read */
    ok = ok && write_file(homefile, "[runtime]\nthreads = 1\n[bench]\nreps = 11\n");
    ok = ok && write_file(cwdfile, "[runtime]\nthreads = 2\n[bench]\ntg = 22\n");
    ok = ok && write_file(envfile, "[runtime]\nthreads = 3\n[bench]\npp = 33\n");
    ok = ok && write_file(explicitfile, "\n[runtime]\nthreads = 4\n");
    CHECKF(ok, "could not make the temp tree under %s", root);

    imp_config c;
    imp_error err;
    imp_status st;
#define LOAD(explicit_path)                                                                        \
    (imp_config_init(&c), imp_error_clear(&err), st = imp_config_load(&c, explicit_path, &err))

    CHECK(setenv("HOME", home, 1) == 0);
    CHECK(unsetenv("IMP_CONFIG") == 0);
    CHECK(chdir(cwd) == 0);
    /* ./imp.conf beats the home file */
    LOAD(NULL);
    CHECKF(st == IMP_OK, "%s", err.msg);
    CHECK(c.v.runtime.threads == 2 && c.v.bench.tg == 22 && c.v.bench.reps == 5);
    CHECK(!strcmp(c.file, "imp.conf") && !strcmp(c.file_via, "./imp.conf"));
    CHECK(c.from[idx("runtime.threads")] == IMP_CFG_FROM_FILE &&
          c.line[idx("runtime.threads")] == 2);
    /* $IMP_CONFIG beats ./imp.conf */
    CHECK(setenv("IMP_CONFIG", envfile, 1) == 0);
    LOAD(NULL);
    CHECKF(st == IMP_OK, "%s", err.msg);
    CHECK(c.v.runtime.threads == 3 && c.v.bench.pp == 33 && c.v.bench.tg == 128);
    CHECK(!strcmp(c.file, envfile) && !strcmp(c.file_via, "$IMP_CONFIG"));
    /* --config beats $IMP_CONFIG */
    LOAD(explicitfile);
    CHECKF(st == IMP_OK, "%s", err.msg);
    CHECK(c.v.runtime.threads == 4 && c.v.bench.pp == 512 && c.line[idx("runtime.threads")] == 3);
    CHECK(!strcmp(c.file, explicitfile) && !strcmp(c.file_via, "--config"));
    /* a missing --config file is an error, whatever else exists */
    LOAD(missing);
    CHECK(st == IMP_ERR_NOT_FOUND);
    CHECKF(strstr(err.msg, "--config") && strstr(err.msg, missing) &&
               strstr(err.msg, "cannot open"),
           "%s", err.msg);
    CHECK(c.v.runtime.threads == 0 && c.file[0] == '\0');
    /* a missing $IMP_CONFIG is an error */
    CHECK(setenv("IMP_CONFIG", missing, 1) == 0);
    LOAD(NULL);
    CHECK(st == IMP_ERR_NOT_FOUND);
    CHECKF(strstr(err.msg, "$IMP_CONFIG") && strstr(err.msg, missing), "%s", err.msg);
    /* an empty $IMP_CONFIG counts as unset */
    CHECK(setenv("IMP_CONFIG", "", 1) == 0);
    LOAD(NULL);
    CHECK(st == IMP_OK && c.v.runtime.threads == 2);
    /* no ./imp.conf: the home file */
    CHECK(unsetenv("IMP_CONFIG") == 0);
    CHECK(chdir(root) == 0);
    LOAD(NULL);
    CHECKF(st == IMP_OK, "%s", err.msg);
    CHECK(c.v.runtime.threads == 1 && c.v.bench.reps == 11);
    CHECK(!strcmp(c.file, homefile) && !strcmp(c.file_via, "~/.config/imp/imp.conf"));
    /* no file anywhere: defaults */
    CHECK(setenv("HOME", cwd, 1) == 0); /* cwd has no .config */
    LOAD(NULL);
    CHECK(st == IMP_OK && c.v.runtime.threads == 0 && c.file[0] == '\0');
    CHECK(unsetenv("HOME") == 0);
    LOAD(NULL);
    CHECK(st == IMP_OK && c.v.runtime.threads == 0 && c.file[0] == '\0');
    /* a present but bad ./imp.conf or home file is an error, not skipped */
    CHECK(setenv("HOME", home, 1) == 0);
    CHECK(write_file(homefile, "[runtime]\nthreads = lots\n"));
    LOAD(NULL);
    CHECK(st == IMP_ERR_FORMAT);
    CHECKF(strstr(err.msg, homefile) && strstr(err.msg, ":2:"), "%s", err.msg);
    CHECK(chdir(cwd) == 0);
    CHECK(write_file(cwdfile, "[runtime]\nthreds = 2\n"));
    LOAD(NULL);
    CHECK(st == IMP_ERR_NOT_FOUND);
    CHECKF(strstr(err.msg, "imp.conf:2:") && strstr(err.msg, "did you mean runtime.threads?"), "%s",
           err.msg);
    /* a file that cannot be read as one */
    LOAD(root);
    CHECK(st == IMP_ERR_IO);
    CHECKF(strstr(err.msg, "--config") && strstr(err.msg, root), "%s", err.msg);
    /* load_file: a file larger than 1 MiB */
    {
        char big[700];
        path_join(big, sizeof big, root, "big.conf");
        FILE *f = fopen(big, "wb");
        CHECK(f != NULL);
        if (f) {
            for (int i = 0; i < (1 << 20) / 64 + 1; i++)
                fputs("#234567890123456789012345678901234567890123456789012345678901234\n", f);
            fclose(f);
        }
        imp_config_init(&c);
        st = imp_config_load_file(&c, big, &err);
        CHECK(st == IMP_ERR_RANGE);
        CHECKF(strstr(err.msg, big) && strstr(err.msg, "larger than 1 MiB"), "%s", err.msg);
        remove(big);
    }
#undef LOAD

    CHECK(chdir(cwd0) == 0);
    if (home_saved)
        setenv("HOME", home_saved, 1);
    else
        unsetenv("HOME");
    if (env_saved)
        setenv("IMP_CONFIG", env_saved, 1);
    else
        unsetenv("IMP_CONFIG");
    free(home_saved);
    free(env_saved);
    remove(homefile);
    remove(cwdfile);
    remove(envfile);
    remove(explicitfile);
    rmdir(d2);
    rmdir(d1);
    rmdir(home);
    rmdir(cwd);
    CHECK(rmdir(root) == 0);
}

/* ---- 5. --set --------------------------------------------------------------------------- */

static void test_set(void) {
    imp_config c;
    imp_config_init(&c);
    load_ok(&c, "[generation]\ntop_p = 0.5\ntop_k = 10\n");
    imp_error err;
    imp_error_clear(&err);
    CHECKF(imp_config_set(&c, "generation.top_p=0.25", IMP_CFG_FROM_SET, &err) == IMP_OK, "%s",
           err.msg);
    CHECK(c.v.generation.top_p == 0.25f);
    CHECK(c.from[idx("generation.top_p")] == IMP_CFG_FROM_SET &&
          c.line[idx("generation.top_p")] == 0);
    CHECK(c.from[idx("generation.top_k")] == IMP_CFG_FROM_FILE && c.v.generation.top_k == 10);
    CHECK(imp_config_set(&c, " generation . top_k = 7 ", IMP_CFG_FROM_FLAG, &err) == IMP_OK);
    CHECK(c.v.generation.top_k == 7 && c.from[idx("generation.top_k")] == IMP_CFG_FROM_FLAG);
    /* the last one wins */
    CHECK(imp_config_set(&c, "generation.top_k=8", IMP_CFG_FROM_SET, &err) == IMP_OK);
    CHECK(c.v.generation.top_k == 8 && c.from[idx("generation.top_k")] == IMP_CFG_FROM_SET);
    /* strings: unquoted as is, quoted with escapes, literal */
    CHECK(imp_config_set(&c, "generation.chat_template=chatml", IMP_CFG_FROM_SET, &err) == IMP_OK);
    CHECK(!strcmp(c.v.generation.chat_template, "chatml"));
    CHECK(imp_config_set(&c, "generation.chat_template=\"a \\\"b\\\"\"", IMP_CFG_FROM_SET, &err) ==
          IMP_OK);
    CHECK(!strcmp(c.v.generation.chat_template, "a \"b\""));
    CHECK(imp_config_set(&c, "generation.chat_template='x\\y'", IMP_CFG_FROM_SET, &err) == IMP_OK);
    CHECK(!strcmp(c.v.generation.chat_template, "x\\y"));
    CHECK(imp_config_set(&c, "diagnostics.log_level=error", IMP_CFG_FROM_FLAG, &err) == IMP_OK);
    CHECK(!strcmp(c.v.diagnostics.log_level, "error"));
    CHECK(imp_config_set(&c, "generation.temperature=0", IMP_CFG_FROM_SET, &err) == IMP_OK);
    CHECK(c.v.generation.temperature == 0.0f);
    CHECK(imp_config_set(&c, "generation.seed=1234567890123", IMP_CFG_FROM_SET, &err) == IMP_OK);
    CHECK(c.v.generation.seed == 1234567890123LL);

    expect_set_err("generation.topp=0.5", IMP_ERR_NOT_FOUND,
                   "--set generation.topp=0.5: unknown key 'topp' in [generation]",
                   "did you mean generation.top_p?");
    expect_set_err("generaton.top_p=0.5", IMP_ERR_NOT_FOUND, "unknown section [generaton]",
                   "did you mean [generation]?");
    expect_set_err("runtime.top_k=5", IMP_ERR_NOT_FOUND, "did you mean generation.top_k?", NULL);
    expect_set_err("generation.top_p=abc", IMP_ERR_TYPE,
                   "generation.top_p: expected a number (float), found 'abc'", NULL);
    expect_set_err("generation.top_k=0.5", IMP_ERR_TYPE, "expected an integer", NULL);
    expect_set_err("generation.top_p=2", IMP_ERR_RANGE,
                   "--set generation.top_p=2:", "is out of range (0..1)");
    expect_set_err("diagnostics.log_level=loud", IMP_ERR_RANGE, "must be one of", NULL);
    expect_set_err("generation.top_p", IMP_ERR_FORMAT, "expected section.key=value", NULL);
    expect_set_err("top_p=0.5", IMP_ERR_FORMAT, "expected section.key=value", NULL);
    expect_set_err("generation.top_p=", IMP_ERR_FORMAT, "missing value", NULL);
    expect_set_err("generation.top_p=[1]", IMP_ERR_UNSUPPORTED, "arrays", NULL);
    expect_set_err("generation.temperature=inf", IMP_ERR_FORMAT, "inf and nan", NULL);
    expect_set_err("generation.chat_template=\xff", IMP_ERR_FORMAT, "invalid UTF-8", NULL);
    CHECK(imp_config_set(&c, "generation.top_k=1", IMP_CFG_FROM_FILE, &err) == IMP_ERR_INVALID_ARG);
    CHECK(imp_config_set(&c, "generation.top_k=1", IMP_CFG_FROM_DEFAULT, &err) ==
          IMP_ERR_INVALID_ARG);
    CHECK(imp_config_set(&c, NULL, IMP_CFG_FROM_SET, &err) == IMP_ERR_INVALID_ARG);
    /* a flag's message has no "--set" (the caller names the flag) */
    imp_config d;
    imp_config_init(&d);
    CHECK(imp_config_set(&d, "generation.top_p=5", IMP_CFG_FROM_FLAG, &err) == IMP_ERR_RANGE);
    CHECKF(!strncmp(err.msg, "generation.top_p=5: ", 20), "%s", err.msg);
}

/* ---- 6. dump ---------------------------------------------------------------------------- */

static void check_round_trip(const imp_config *c, const char *what) {
    char *text = NULL;
    imp_error err;
    imp_error_clear(&err);
    CHECKF(imp_config_dump(c, &text, &err) == IMP_OK && text, "%s: dump: %s", what, err.msg);
    if (!text) return;
    imp_config back;
    imp_config_init(&back);
    memset(&back.v, 0, sizeof back.v);
    imp_error_clear(&err);
    CHECKF(imp_config_load_string(&back, text, strlen(text), "dump", &err) == IMP_OK,
           "%s: reload: %s\n%s", what, err.msg, text);
    int n;
    const imp_cfg_key *keys = imp_config_keys(&n);
    for (int i = 0; i < n; i++) {
        CHECKF(key_equal(&keys[i], &c->v, &back.v), "%s: %s.%s differs after the round trip", what,
               keys[i].section, keys[i].name);
        CHECK(back.from[i] == IMP_CFG_FROM_FILE);
    }
    free(text);
}

static void test_dump(void) {
    imp_config c;
    imp_config_init(&c);
    check_round_trip(&c, "defaults");
    char *text = NULL;
    imp_error err;
    CHECK(imp_config_dump(&c, &text, &err) == IMP_OK);
    if (text) {
        CHECK(strstr(text, "# file: none (embedded defaults)") != NULL);
        CHECK(strstr(text, "[speculative]\n# no keys yet\n") != NULL);
        CHECK(strstr(text, "temperature = 0.8 ") != NULL);
        CHECK(strstr(text, "typical_p = 1.0 ") != NULL);
        CHECK(strstr(text, "chat_template = \"auto\"") != NULL);
        free(text);
    }

    load_ok(&c, "[generation]\n\ntop_p = 0.1\nfrequency_penalty = -1e-5\nseed = "
                "9223372036854775807\n[runtime]\nmax_batch = 77\n");
    CHECK(imp_config_set(&c, "generation.chat_template=\"q\\\"b\\\\s\\n\\t\\u0001\\u00e9\"",
                         IMP_CFG_FROM_SET, &err) == IMP_OK);
    CHECK(imp_config_set(&c, "generation.min_p=0.3333333", IMP_CFG_FROM_FLAG, &err) == IMP_OK);
    CHECK(imp_config_set(&c, "generation.mirostat_tau=100", IMP_CFG_FROM_SET, &err) == IMP_OK);
    CHECK(imp_config_set(&c, "generation.dry_multiplier=3.4e38", IMP_CFG_FROM_SET, &err) == IMP_OK);
    CHECK(imp_config_dump(&c, &text, &err) == IMP_OK);
    if (text) {
        CHECKF(strstr(text, "# file: t.conf (string)") != NULL, "%s", text);
        CHECKF(strstr(text, "# from: t.conf:3\n") != NULL, "%s", text);
        CHECKF(strstr(text, "max_batch = 77") && strstr(text, "# from: t.conf:7\n"), "%s", text);
        CHECK(strstr(text, "# from: --set\n") != NULL);
        CHECK(strstr(text, "# from: flag\n") != NULL);
        CHECK(strstr(text, "# from: default\n") != NULL);
        CHECK(strstr(text, "top_p = 0.1 ") != NULL);
        free(text);
    }
    check_round_trip(&c, "file + sets");

    /* random values in range survive the round trip (fixed seed) */
    imp_test_rng rng = {12345};
    int n;
    const imp_cfg_key *keys = imp_config_keys(&n);
    for (int rep = 0; rep < 50; rep++) {
        imp_config_init(&c);
        for (int i = 0; i < n; i++) {
            const imp_cfg_key *k = &keys[i];
            char a[160];
            if (k->type == IMP_CFG_FLOAT) {
                double hi = k->hi > 1e6 ? 1e6 : k->hi;
                double x = k->lo + (hi - k->lo) * imp_test_rng_uniform(&rng);
                if (x <= k->lo) x = hi;
                snprintf(a, sizeof a, "%s.%s=%.17g", k->section, k->name, x);
            } else if (k->type == IMP_CFG_INT && !(k->flags & IMP_CFG_POW2)) {
                double hi = k->hi > 1e9 ? 1e9 : k->hi;
                long long x = (long long)(k->lo + (hi - k->lo) * imp_test_rng_uniform(&rng));
                snprintf(a, sizeof a, "%s.%s=%lld", k->section, k->name, x);
            } else {
                continue;
            }
            CHECKF(imp_config_set(&c, a, IMP_CFG_FROM_SET, &err) == IMP_OK, "%s: %s", a, err.msg);
        }
        check_round_trip(&c, "random");
    }
    CHECK(imp_config_dump(NULL, &text, &err) == IMP_ERR_INVALID_ARG);
    CHECK(!strcmp(imp_config_from_str(IMP_CFG_FROM_SET), "--set"));
}

/* ---- 7. imp.conf.example and docs/config.md --------------------------------------------- */

/* "# key = value" at the start of a line: a commented-out key (prose never looks like this). */
static bool commented_key(const char *line, size_t n) {
    if (n < 2 || line[0] != '#' || line[1] != ' ') return false;
    size_t i = 2;
    while (i < n && ((line[i] >= 'a' && line[i] <= 'z') || (line[i] >= '0' && line[i] <= '9') ||
                     line[i] == '_'))
        i++;
    return i > 2 && n - i >= 3 && !memcmp(line + i, " = ", 3);
}

static void test_example(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/imp.conf.example", IMP_SOURCE_DIR);
    size_t len = 0;
    char *text = read_all(path, &len);
    CHECKF(text != NULL, "cannot read %s", path);
    if (!text) return;

    /* as is: loads, sets nothing */
    imp_config c, def;
    imp_config_init(&def);
    imp_config_init(&c);
    imp_error err;
    imp_error_clear(&err);
    CHECKF(imp_config_load_file(&c, path, &err) == IMP_OK, "%s", err.msg);
    for (int i = 0; i < IMP_CFG_N_KEYS; i++) CHECK(c.from[i] == IMP_CFG_FROM_DEFAULT);

    /* every section header is there, once */
    int ns;
    const char *const *secs = imp_config_sections(&ns);
    for (int s = 0; s < ns; s++) {
        char h[64];
        snprintf(h, sizeof h, "\n[%s]\n", secs[s]);
        const char *at = strstr(text, h);
        CHECKF(at != NULL, "imp.conf.example lacks %s", h + 1);
        if (at) CHECKF(strstr(at + 1, h) == NULL, "imp.conf.example repeats [%s]", secs[s]);
    }

    /* uncommented: every key set, to its default, exactly once (duplicates would fail) */
    char *un = malloc(len + 1);
    size_t un_n = 0;
    int n_keys = 0;
    for (size_t pos = 0; pos < len;) {
        const char *eol = memchr(text + pos, '\n', len - pos);
        size_t end = eol ? (size_t)(eol - text) : len;
        if (commented_key(text + pos, end - pos)) {
            pos += 2;
            n_keys++;
        }
        memcpy(un + un_n, text + pos, end - pos + (eol ? 1 : 0));
        un_n += end - pos + (eol ? 1 : 0);
        pos = end + 1;
    }
    imp_config_init(&c);
    memset(&c.v, 0, sizeof c.v);
    imp_error_clear(&err);
    CHECKF(imp_config_load_string(&c, un, un_n, "imp.conf.example (uncommented)", &err) == IMP_OK,
           "%s", err.msg);
    CHECKF(n_keys == IMP_CFG_N_KEYS, "imp.conf.example has %d keys, the table %d", n_keys,
           IMP_CFG_N_KEYS);
    int n;
    const imp_cfg_key *keys = imp_config_keys(&n);
    for (int i = 0; i < n; i++) {
        CHECKF(c.from[i] == IMP_CFG_FROM_FILE, "imp.conf.example lacks %s.%s", keys[i].section,
               keys[i].name);
        CHECKF(key_equal(&keys[i], &c.v, &def.v), "imp.conf.example: %s.%s is not the default %s",
               keys[i].section, keys[i].name, keys[i].def);
    }
    free(un);
    free(text);

    /* docs/config.md: one table row per key, no rows for keys that do not exist */
    snprintf(path, sizeof path, "%s/docs/config.md", IMP_SOURCE_DIR);
    text = read_all(path, &len);
    CHECKF(text != NULL, "cannot read %s", path);
    if (!text) return;
    int rows = 0;
    bool seen[IMP_CFG_N_KEYS] = {false};
    for (const char *p = text; (p = strstr(p, "\n| `")) != NULL; p++) {
        const char *s = p + 4, *e = strchr(s, '`');
        if (!e || e - s > 100) continue;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(e - s), s);
        int k = imp_config_key_index(name);
        CHECKF(k >= 0, "docs/config.md documents '%s', which is not a key", name);
        if (k >= 0) {
            CHECKF(!seen[k], "docs/config.md documents %s twice", name);
            seen[k] = true;
        }
        rows++;
    }
    for (int i = 0; i < n; i++)
        CHECKF(seen[i], "docs/config.md lacks %s.%s", keys[i].section, keys[i].name);
    CHECK(rows == IMP_CFG_N_KEYS);
    free(text);
}

int main(void) {
    test_defaults();
    test_values();
    test_errors();
    test_precedence();
    test_set();
    test_dump();
    test_example();
    return imp_test_finish("test_config");
}
