/*
 * imp.conf: the one runtime configuration of imp, loaded once and read everywhere.
 *
 *     imp_config cfg;
 *     imp_config_init(&cfg);                                   embedded defaults
 *     imp_config_load(&cfg, opt_config_path, &err);            the one file, by precedence
 *     for each --set / named flag:
 *         imp_config_set(&cfg, "generation.top_p=0.9", IMP_CFG_FROM_SET, &err);
 *     then read cfg.v.generation.top_p etc.; imp_config_dump() for --print-config.
 *
 * The file is a TOML subset: [section] headers, `key = value` lines, values that are strings
 * ("basic" with \" \\ \b \t \n \f \r \uXXXX \UXXXXXXXX escapes, or 'literal'), decimal integers
 * (optional sign, `_` between digits), floats (1.5, 1e-3, 2.5E+2; inf and nan refused),
 * booleans (true / false) and # comments. Dotted keys, arrays, inline tables, multi-line strings
 * and dates are refused with a message saying so. Every problem is an error naming the file and
 * line: nothing is silently ignored. docs/config.md is the user's reference; imp.conf.example at
 * the repository root lists every key (a test keeps it equal to the key table below).
 *
 * Which file: the first that exists of --config PATH, $IMP_CONFIG, ./imp.conf,
 * $HOME/.config/imp/imp.conf; none is fine (defaults). Only that one file is read.
 *
 * Nothing here is global: an imp_config is a plain value owned by the caller. Functions on
 * different imp_config values may run on several threads at once; imp_config_load reads the
 * process environment (getenv), the only place in imp that does.
 */
#ifndef IMP_CONFIG_CONFIG_H
#define IMP_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef enum imp_cfg_type { IMP_CFG_STR, IMP_CFG_INT, IMP_CFG_FLOAT, IMP_CFG_BOOL } imp_cfg_type;

/* Where a value came from (what --print-config shows). */
typedef enum imp_cfg_from {
    IMP_CFG_FROM_DEFAULT, /* the key table's embedded default      */
    IMP_CFG_FROM_FILE,    /* imp_config.file, line imp_config.line  */
    IMP_CFG_FROM_SET,     /* --set section.key=value                */
    IMP_CFG_FROM_FLAG,    /* a named command-line flag (a --set shorthand) */
} imp_cfg_from;

/* The number of keys in the table (a static_assert in config.c keeps them equal). */
#define IMP_CFG_N_KEYS 32

/* The one struct the rest of imp reads. Field names are the keys' names; docs/config.md and
 * imp.conf.example say what each does. */
typedef struct imp_runtime_config {
    struct {
        int32_t threads;     /* 0 = every core                               */
        int32_t max_seq_len; /* 0 = min(the model's training context, 4096)  */
        int32_t max_batch;   /* tokens per forward step                       */
        char device[11];     /* "auto" | "cpu" | a CUDA device index (10 chars) */
        bool cuda_graphs;    /* record and replay decode steps on a GPU       */
        int32_t gpu_layers;  /* layers on the GPU, the rest on the CPU; -1 = all */
    } runtime;
    struct {
        int32_t block_size; /* token slots per KV block, a power of two */
        char type[8];       /* "f16" | "f32": storage on a GPU          */
    } kv_cache;
    struct {
        int32_t max_tokens;
        float temperature;
        int32_t top_k;
        float top_p, min_p, typical_p, repeat_penalty;
        int32_t repeat_last_n;
        float frequency_penalty, presence_penalty, dry_multiplier, dry_base;
        int32_t dry_allowed_length, dry_penalty_last_n, mirostat;
        float mirostat_tau, mirostat_eta;
        int64_t seed; /* -1 = from the clock */
        char chat_template[64];
    } generation;
    struct {
        int32_t pp, tg, reps;
        int32_t depth; /* tokens in the KV cache before each measurement (llama-bench -d) */
    } bench;
    struct {
        char log_level[8]; /* "debug" | "info" | "warn" | "error" */
    } diagnostics;
} imp_runtime_config;

/* Values plus where each came from. Index from[] and line[] with the key's position in the
 * table (imp_config_keys / imp_config_key_index). */
typedef struct imp_config {
    imp_runtime_config v;
    imp_cfg_from from[IMP_CFG_N_KEYS];
    int line[IMP_CFG_N_KEYS]; /* 1-based line in `file` when from[] is IMP_CFG_FROM_FILE, else 0 */
    char file[512];           /* the last file loaded ("" = none)                               */
    char file_via[32];        /* how it was found: "--config", "$IMP_CONFIG", "./imp.conf",
                                 "~/.config/imp/imp.conf", "file" (imp_config_load_file) or
                                 "string" (imp_config_load_string); "" = none               */
} imp_config;

/* Key flags. */
#define IMP_CFG_POW2    1u /* an integer that must be a power of two        */
#define IMP_CFG_LO_OPEN 2u /* the lower bound is exclusive (value > lo)     */

/* One row of the key table. Ranges are inclusive unless flagged; strings have a capacity
 * (size - 1 bytes) and optionally a list of allowed values. */
typedef struct imp_cfg_key {
    const char *section, *name;
    imp_cfg_type type;
    size_t offset;       /* of the field in imp_runtime_config                     */
    size_t size;         /* of the field: 4 or 8 for integers, capacity for strings */
    const char *def;     /* the default, as it would be written in imp.conf         */
    const char *help;    /* one line                                                */
    double lo, hi;       /* allowed range of integers and floats                   */
    unsigned flags;      /* IMP_CFG_POW2, IMP_CFG_LO_OPEN                          */
    const char *choices; /* strings: allowed values separated by '|', or NULL      */
} imp_cfg_key;

/* The key table (static, read-only), in the order imp.conf.example and --print-config use; *n
 * gets its length (IMP_CFG_N_KEYS) when n is non-NULL. */
const imp_cfg_key *imp_config_keys(int *n);

/* The valid section names in order; *n gets their count. Sections without keys are valid. */
const char *const *imp_config_sections(int *n);

/* Position of "section.key" in the table, or -1. */
int imp_config_key_index(const char *dotted);

/* Fills c with the embedded defaults (every from[] = IMP_CFG_FROM_DEFAULT, no file). */
void imp_config_init(imp_config *c);

/* Finds and loads the one configuration file by precedence (see the top of this file).
 * explicit_path is --config's value (NULL when not given). Reads getenv("IMP_CONFIG") (unset
 * or empty = not given) and getenv("HOME") (unset or empty = no home file). An explicit path or
 * $IMP_CONFIG that cannot be opened is an error (IMP_ERR_NOT_FOUND or IMP_ERR_IO naming it);
 * ./imp.conf and the home file are skipped when absent but are errors when present and bad.
 * On error c is unchanged. */
imp_status imp_config_load(imp_config *c, const char *explicit_path, imp_error *err);

/* Loads one file (at most 1 MiB) on top of c: only the keys it sets change (from[] =
 * IMP_CFG_FROM_FILE, line[] = their lines, file = path). On error c is unchanged and the message
 * is "PATH:LINE: what" (IMP_ERR_FORMAT for syntax, IMP_ERR_NOT_FOUND for unknown sections and
 * keys, IMP_ERR_TYPE, IMP_ERR_RANGE, IMP_ERR_UNSUPPORTED for TOML that imp.conf does not take,
 * IMP_ERR_IO / IMP_ERR_NOT_FOUND when the file cannot be read). */
imp_status imp_config_load_file(imp_config *c, const char *path, imp_error *err);

/* The same on text[0, len) that came from `name` (used in messages and as c->file). */
imp_status imp_config_load_string(imp_config *c, const char *text, size_t len, const char *name,
                                  imp_error *err);

/* Applies "section.key=value" (from = IMP_CFG_FROM_SET or IMP_CFG_FROM_FLAG). The value is
 * parsed with the key's type as in a file, except that a string key also takes unquoted text
 * as is (--set generation.chat_template=chatml). Spaces around the key, '=' and the value are
 * ignored. Same errors as a file, prefixed with the assignment instead of FILE:LINE. On error c
 * is unchanged. */
imp_status imp_config_set(imp_config *c, const char *assignment, imp_cfg_from from, imp_error *err);

/* The effective configuration as imp.conf text: every section and key, each value followed by
 * "# from: default | FILE:LINE | --set | flag". Loading it back gives the same values. *out is
 * malloc'd (the caller frees it). IMP_ERR_NOMEM on allocation failure. */
imp_status imp_config_dump(const imp_config *c, char **out, imp_error *err);

/* "default", "file", "--set", "flag". */
const char *imp_config_from_str(imp_cfg_from from);

#endif
