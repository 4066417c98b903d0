/* imp-cli generation: one prompt, interactive chat, and --perplexity. */
#ifndef IMP_CLI_GENERATE_H
#define IMP_CLI_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include <imp/imp.h>

#include "config/config.h"

#define CLI_MAX_LIST 64

/* One --set or named-flag assignment, applied in command-line order after the config file. */
typedef struct cli_assign {
    char text[192];      /* "section.key=value"            */
    const char *flag;    /* the flag as typed ("--top-p"), or "--set" */
    imp_cfg_from from;
} cli_assign;

typedef struct cli_gen_opts {
    const char *model;
    const char *prompt;        /* --prompt / -p                                        */
    const char *system;        /* --system                                             */
    const char *chat_template; /* --chat-template NAME (NULL: auto)                    */
    bool interactive;          /* --interactive / -i                                   */
    bool seed_set;
    int32_t threads;           /* --threads (0: every core)                            */
    int32_t max_seq_len;       /* --max-seq-len (0: default)                           */
    const char *perplexity;    /* --perplexity FILE                                    */
    int32_t ppl_ctx;           /* --ctx N (default 512)                                */
    bool quiet;                /* --quiet: no load bar, no stats                      */
    bool bench;                /* --bench                                              */
    int32_t bench_pp;          /* --bench-pp N (default 512; 0 skips)                  */
    int32_t bench_reps;        /* --bench-reps R (default 5)                           */
    int32_t bench_depth;       /* --bench-depth N: tokens in the cache first (default 0) */
    bool max_tokens_set;
    int32_t device; /* runtime.device parsed: IMP_DEVICE_AUTO, IMP_DEVICE_CPU or a GPU index */
    const char *config_path;   /* --config PATH                                        */
    bool print_config;         /* --print-config                                       */
    cli_assign assigns[128];
    int32_t n_assigns;
    imp_config cfg;            /* the effective configuration (after imp_cli_config)   */
    ImpGenerateParams gen;     /* sampler flags, --max-tokens, stops                   */
    const char *stops[CLI_MAX_LIST];
    int32_t stop_tokens[CLI_MAX_LIST];
    ImpLogitBias bias[CLI_MAX_LIST];
    const char *breakers[CLI_MAX_LIST];
    int32_t n_breakers;
} cli_gen_opts;

/* Sets the defaults (ImpGenerateParams defaults, a seed from the clock). */
void imp_cli_gen_defaults(cli_gen_opts *o);

/* Parses one generation flag at argv[*i] (advancing *i past its value). Returns 1 when the flag
 * was consumed, 0 when it is not a generation flag, -1 on a bad value (message printed). */
int imp_cli_gen_flag(cli_gen_opts *o, int argc, char **argv, int *i);

/* Loads the configuration (file by precedence, then --set and flags in order) into o->cfg and
 * fills the generation, bench and runtime options from it; sets the log level. Returns 0, or a
 * process exit code after printing the problem. */
int imp_cli_config(cli_gen_opts *o);

/* The context settings of the effective configuration ([runtime], [kv_cache]). */
ImpConfig imp_cli_context_config(const cli_gen_opts *o);

/* Returns a process exit code (0 ok, 1 error, 2 usage). */
int imp_cli_generate(cli_gen_opts *o);
int imp_cli_perplexity(cli_gen_opts *o);
int imp_cli_bench(cli_gen_opts *o);

/* Loads the model with a progress bar on a terminal; NULL on failure (message printed). */
ImpModel imp_cli_load(const char *path, bool quiet);

#endif
