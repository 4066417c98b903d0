/*
 * imp-cli generation: --prompt (one answer), --interactive (a multi-turn chat), sampler flags.
 * A prompt goes through the chat template when the model has one (or --chat-template names
 * one); a model without a template (a base model) continues the text as written. Tokens stream
 * to stdout as they come; speeds go to stderr at the end.
 */
#define _POSIX_C_SOURCE 200809L
#include "generate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- flags -------------------------------------------------------------------------------- */

void imp_cli_gen_defaults(cli_gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->gen = imp_generate_params_default();
    o->ppl_ctx = 512;
    imp_config_init(&o->cfg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    o->gen.seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
}

static int bad_value(const char *flag, const char *v, const char *want) {
    fprintf(stderr, "imp-cli: %s: expected %s, got '%s'\n", flag, want, v);
    return -1;
}

static int parse_i32(const char *flag, const char *v, long lo, long hi, int32_t *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        char want[96];
        snprintf(want, sizeof want, "an integer in %ld..%ld", lo, hi);
        return bad_value(flag, v, want);
    }
    *out = (int32_t)x;
    return 1;
}

/* llama.cpp's --logit-bias form: TOKEN(+|-)BIAS, e.g. 15043+1 or 2-inf. */
static int parse_bias(cli_gen_opts *o, const char *v) {
    if (o->gen.n_logit_bias >= CLI_MAX_LIST) return bad_value("--logit-bias", v, "at most 64 biases");
    char *end;
    errno = 0;
    long tok = strtol(v, &end, 10);
    if (errno || end == v || (*end != '+' && *end != '-') || tok < 0 || tok > INT32_MAX) {
        return bad_value("--logit-bias", v, "TOKEN+BIAS or TOKEN-BIAS");
    }
    const char *b = end;
    float bias;
    if (!strcmp(b, "-inf")) {
        bias = -INFINITY;
    } else {
        char *e2;
        bias = strtof(b, &e2);
        if (e2 == b || *e2 || !isfinite(bias)) return bad_value("--logit-bias", v, "TOKEN+BIAS or TOKEN-BIAS");
    }
    o->bias[o->gen.n_logit_bias++] = (ImpLogitBias){(int32_t)tok, bias};
    o->gen.logit_bias = o->bias;
    return 1;
}

/* Named flags: shorthands for --set on a configuration key (docs/config.md). */
static const struct {
    const char *flag, *alias, *key;
} k_flag_keys[] = {
    {"--max-tokens", "-n", "generation.max_tokens"},
    {"--temperature", "--temp", "generation.temperature"},
    {"--top-k", NULL, "generation.top_k"},
    {"--top-p", NULL, "generation.top_p"},
    {"--min-p", NULL, "generation.min_p"},
    {"--typical-p", "--typical", "generation.typical_p"},
    {"--repeat-penalty", NULL, "generation.repeat_penalty"},
    {"--repeat-last-n", NULL, "generation.repeat_last_n"},
    {"--frequency-penalty", NULL, "generation.frequency_penalty"},
    {"--presence-penalty", NULL, "generation.presence_penalty"},
    {"--dry-multiplier", NULL, "generation.dry_multiplier"},
    {"--dry-base", NULL, "generation.dry_base"},
    {"--dry-allowed-length", NULL, "generation.dry_allowed_length"},
    {"--dry-penalty-last-n", NULL, "generation.dry_penalty_last_n"},
    {"--mirostat", NULL, "generation.mirostat"},
    {"--mirostat-lr", "--mirostat-eta", "generation.mirostat_eta"},
    {"--mirostat-ent", "--mirostat-tau", "generation.mirostat_tau"},
    {"--seed", "-s", "generation.seed"},
    {"--chat-template", NULL, "generation.chat_template"},
    {"--threads", "-t", "runtime.threads"},
    {"--max-seq-len", "-c", "runtime.max_seq_len"},
    {"--max-batch", "-b", "runtime.max_batch"},
    {"--kv-block-size", NULL, "kv_cache.block_size"},
    {"--device", "-d", "runtime.device"},
    {"--kv-type", NULL, "kv_cache.type"},
    {"--gpu-layers", "-ngl", "runtime.gpu_layers"},
    {"--bench-pp", NULL, "bench.pp"},
    {"--bench-reps", NULL, "bench.reps"},
    {"--bench-depth", NULL, "bench.depth"},
    {"--log-level", NULL, "diagnostics.log_level"},
};

static int add_assign(cli_gen_opts *o, const char *flag, const char *key, const char *value, imp_cfg_from from) {
    if (o->n_assigns >= (int32_t)(sizeof o->assigns / sizeof o->assigns[0])) {
        fprintf(stderr, "imp-cli: too many --set and configuration flags (at most 128)\n");
        return -1;
    }
    cli_assign *a = &o->assigns[o->n_assigns++];
    int w = key ? snprintf(a->text, sizeof a->text, "%s=%s", key, value) : snprintf(a->text, sizeof a->text, "%s", value);
    if (w < 0 || (size_t)w >= sizeof a->text) return bad_value(flag, value, "a shorter value");
    a->flag = flag;
    a->from = from;
    return 1;
}

int imp_cli_gen_flag(cli_gen_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    ImpGenerateParams *g = &o->gen;
    /* flags without a value */
    if (!strcmp(a, "--interactive") || !strcmp(a, "-i")) {
        o->interactive = true;
        return 1;
    }
    if (!strcmp(a, "--quiet")) {
        o->quiet = true;
        return 1;
    }
    if (!strcmp(a, "--no-cuda-graphs")) {
        return add_assign(o, a, "runtime.cuda_graphs", "false", IMP_CFG_FROM_FLAG) < 0 ? -1 : 1;
    }
    if (!strcmp(a, "--bench")) {
        o->bench = true;
        return 1;
    }
    if (!strcmp(a, "--print-config")) {
        o->print_config = true;
        return 1;
    }
    if (*i + 1 >= argc) return 0;
    const char *v = argv[*i + 1];
    int r = 0;
    for (size_t k = 0; k < sizeof k_flag_keys / sizeof k_flag_keys[0]; k++) {
        if (!strcmp(a, k_flag_keys[k].flag) || (k_flag_keys[k].alias && !strcmp(a, k_flag_keys[k].alias))) {
            r = add_assign(o, a, k_flag_keys[k].key, v, IMP_CFG_FROM_FLAG);
            if (r == 1 && (!strcmp(a, "--max-tokens") || !strcmp(a, "-n"))) o->max_tokens_set = true;
            if (r == 1 && (!strcmp(a, "--seed") || !strcmp(a, "-s"))) o->seed_set = true;
            if (r == 1) (*i)++;
            return r;
        }
    }
#define IS(name) (!strcmp(a, name))
    if (IS("--set")) {
        r = add_assign(o, "--set", NULL, v, IMP_CFG_FROM_SET);
    } else if (IS("--config")) {
        o->config_path = v, r = 1;
    } else if (IS("--prompt") || IS("-p")) {
        o->prompt = v, r = 1;
    } else if (IS("--system")) {
        o->system = v, r = 1;
    } else if (IS("--dry-sequence-breaker")) {
        if (o->n_breakers >= CLI_MAX_LIST) return bad_value(a, v, "at most 64 breakers");
        if (!*v) return bad_value(a, v, "a non-empty string");
        o->breakers[o->n_breakers++] = v;
        g->dry_breakers = o->breakers;
        g->n_dry_breakers = o->n_breakers;
        r = 1;
    } else if (IS("--stop")) {
        if (g->n_stop >= CLI_MAX_LIST) return bad_value(a, v, "at most 64 stop strings");
        if (!*v) return bad_value(a, v, "a non-empty string");
        o->stops[g->n_stop++] = v;
        g->stop = o->stops;
        r = 1;
    } else if (IS("--stop-token")) {
        if (g->n_stop_tokens >= CLI_MAX_LIST) return bad_value(a, v, "at most 64 stop tokens");
        r = parse_i32(a, v, 0, INT32_MAX, &o->stop_tokens[g->n_stop_tokens]);
        if (r == 1) g->n_stop_tokens++;
        g->stop_tokens = o->stop_tokens;
    } else if (IS("--logit-bias")) {
        r = parse_bias(o, v);
    } else if (IS("--perplexity")) {
        o->perplexity = v, r = 1;
    } else if (IS("--ctx")) {
        r = parse_i32(a, v, 2, 1 << 20, &o->ppl_ctx);
    }
#undef IS
    if (r == 1) (*i)++;
    return r;
}

int imp_cli_config(cli_gen_opts *o) {
    imp_error err = {0};
    imp_config_init(&o->cfg);
    if (imp_config_load(&o->cfg, o->config_path, &err) != IMP_OK) {
        fprintf(stderr, "imp-cli: %s\n", err.msg);
        return 1;
    }
    for (int32_t k = 0; k < o->n_assigns; k++) {
        const cli_assign *a = &o->assigns[k];
        if (imp_config_set(&o->cfg, a->text, a->from, &err) != IMP_OK) {
            if (a->from == IMP_CFG_FROM_SET) fprintf(stderr, "imp-cli: %s\n", err.msg); /* names --set itself */
            else fprintf(stderr, "imp-cli: %s: %s\n", a->flag, err.msg);
            return 2;
        }
    }
    const imp_runtime_config *c = &o->cfg.v;
    ImpGenerateParams *g = &o->gen;
    g->max_tokens = c->generation.max_tokens;
    g->temperature = c->generation.temperature;
    g->top_k = c->generation.top_k;
    g->top_p = c->generation.top_p;
    g->min_p = c->generation.min_p;
    g->typical_p = c->generation.typical_p;
    g->repeat_penalty = c->generation.repeat_penalty;
    g->repeat_last_n = c->generation.repeat_last_n;
    g->frequency_penalty = c->generation.frequency_penalty;
    g->presence_penalty = c->generation.presence_penalty;
    g->dry_multiplier = c->generation.dry_multiplier;
    g->dry_base = c->generation.dry_base;
    g->dry_allowed_length = c->generation.dry_allowed_length;
    g->dry_penalty_last_n = c->generation.dry_penalty_last_n;
    g->mirostat = c->generation.mirostat;
    g->mirostat_tau = c->generation.mirostat_tau;
    g->mirostat_eta = c->generation.mirostat_eta;
    if (c->generation.seed >= 0) {
        g->seed = (uint64_t)c->generation.seed;
        o->seed_set = true;
    }
    o->chat_template = !strcmp(c->generation.chat_template, "auto") ? NULL : c->generation.chat_template;
    o->threads = c->runtime.threads;
    o->max_seq_len = c->runtime.max_seq_len;
    o->bench_pp = c->bench.pp;
    o->bench_reps = c->bench.reps;
    o->bench_depth = c->bench.depth;
    const char *dev = c->runtime.device;
    if (!strcmp(dev, "auto")) {
        o->device = IMP_DEVICE_AUTO;
    } else if (!strcmp(dev, "cpu")) {
        o->device = IMP_DEVICE_CPU;
    } else {
        char *end = NULL;
        const long v = strtol(dev, &end, 10);
        if (!dev[0] || *end || v < 0 || v > 1023) {
            fprintf(stderr, "imp-cli: runtime.device = \"%s\": expected auto, cpu or a GPU index (0, 1, ...)\n", dev);
            return 2;
        }
        o->device = (int32_t)v;
    }
    const int key = imp_config_key_index("generation.max_tokens");
    if (key >= 0 && o->cfg.from[key] != IMP_CFG_FROM_DEFAULT) o->max_tokens_set = true;
    const char *lv = c->diagnostics.log_level;
    imp_log_set(NULL, NULL, !strcmp(lv, "debug") ? IMP_LOG_DEBUG : !strcmp(lv, "info") ? IMP_LOG_INFO
                              : !strcmp(lv, "error") ? IMP_LOG_ERROR : IMP_LOG_WARN);
    return 0;
}

ImpConfig imp_cli_context_config(const cli_gen_opts *o) {
    ImpConfig cfg = imp_config_default();
    cfg.n_threads = o->cfg.v.runtime.threads;
    cfg.max_seq_len = o->cfg.v.runtime.max_seq_len;
    cfg.max_batch = o->cfg.v.runtime.max_batch;
    cfg.kv_block_size = o->cfg.v.kv_cache.block_size;
    cfg.device = o->device;
    cfg.cuda_graphs = o->cfg.v.runtime.cuda_graphs ? 1 : 0;
    cfg.gpu_layers = o->cfg.v.runtime.gpu_layers;
    cfg.kv_type = !strcmp(o->cfg.v.kv_cache.type, "f32") ? IMP_KV_F32 : IMP_KV_F16;
    return cfg;
}

/* ---- loading ------------------------------------------------------------------------------ */

static void load_bar(uint64_t done, uint64_t total, void *user) {
    (void)user;
    const int width = 40;
    const int fill = total ? (int)((double)done / (double)total * width) : width;
    char bar[64];
    for (int k = 0; k < width; k++) bar[k] = k < fill ? '#' : ' ';
    bar[width] = 0;
    fprintf(stderr, "\rloading [%s] %3d%%", bar, total ? (int)(100.0 * (double)done / (double)total) : 100);
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
}

ImpModel imp_cli_load(const char *path, bool quiet) {
    ImpModel m = NULL;
    char err[512];
    const bool tty = !quiet && isatty(STDERR_FILENO);
    if (imp_model_load_ex(path, IMP_FORMAT_GGUF, tty ? load_bar : NULL, NULL, &m, err, sizeof err) != IMP_OK) {
        fprintf(stderr, "imp-cli: %s\n", err);
        return NULL;
    }
    return m;
}

/* ---- generation --------------------------------------------------------------------------- */

static bool print_text(const char *s, size_t n, void *user) {
    (void)user;
    fwrite(s, 1, n, stdout);
    fflush(stdout);
    return true;
}

static const char *stop_name(ImpStopReason r) {
    switch (r) {
    case IMP_STOP_EOG: return "end of generation";
    case IMP_STOP_MAX_TOKENS: return "max tokens";
    case IMP_STOP_STRING: return "stop string";
    case IMP_STOP_TOKEN: return "stop token";
    case IMP_STOP_CALLBACK: return "interrupted";
    case IMP_STOP_BUFFER_FULL: return "output buffer full";
    case IMP_STOP_CONTEXT_FULL: return "context full";
    default: return "-";
    }
}

static void print_stats(ImpContext ctx, bool quiet) {
    ImpStats s;
    if (quiet || imp_context_stats(ctx, &s) != IMP_OK) return;
    fprintf(stderr, "imp-cli: prompt %d tokens (%d reused) %.1f tok/s | generation %d tokens %.1f tok/s | stop: %s\n",
            s.n_prompt, s.n_reused, s.prompt_s > 0 ? s.n_prompt / s.prompt_s : 0.0, s.n_generated,
            s.generate_s > 0 ? s.n_generated / s.generate_s : 0.0, stop_name(s.stop));
}

/* A growable conversation. */
typedef struct {
    ImpChatMessage *m;
    char **own; /* strings we allocated (user lines, replies) */
    size_t n, cap;
} convo;

static bool convo_add(convo *c, const char *role, char *content_owned, const char *content_static) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        ImpChatMessage *m = realloc(c->m, cap * sizeof *m);
        if (!m) return false;
        c->m = m;
        char **own = realloc(c->own, cap * sizeof *own);
        if (!own) return false;
        c->own = own;
        c->cap = cap;
    }
    c->own[c->n] = content_owned;
    c->m[c->n++] = (ImpChatMessage){role, content_owned ? content_owned : content_static};
    return true;
}

static void convo_free(convo *c) {
    for (size_t i = 0; i < c->n; i++) free(c->own[i]);
    free(c->m);
    free(c->own);
    memset(c, 0, sizeof *c);
}

/* Renders the conversation (or, for plain completion, joins the texts) into a malloc'd prompt. */
static char *render(ImpModel model, const char *tmpl, const convo *c) {
    size_t len = 0;
    ImpStatus st = imp_chat_apply(model, tmpl, c->m, c->n, true, NULL, 0, &len);
    if (st != IMP_OK && st != IMP_ERR_RANGE) return NULL;
    char *buf = malloc(len + 1);
    if (!buf) return NULL;
    if (imp_chat_apply(model, tmpl, c->m, c->n, true, buf, len + 1, &len) != IMP_OK) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* One turn: generate from prompt, stream, and return the reply (malloc'd) or NULL. */
static char *turn(ImpContext ctx, const char *prompt, const cli_gen_opts *o) {
    const size_t cap = 1 << 20;
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t len = 0;
    ImpGenerateParams g = o->gen;
    g.on_text = print_text;
    if (imp_generate(ctx, prompt, &g, out, cap, &len) != IMP_OK) {
        fprintf(stderr, "\nimp-cli: %s\n", imp_context_last_error(ctx));
        free(out);
        return NULL;
    }
    fputc('\n', stdout);
    fflush(stdout);
    print_stats(ctx, o->quiet);
    return out;
}

int imp_cli_generate(cli_gen_opts *o) {
    if (!o->prompt && !o->interactive) {
        fprintf(stderr, "imp-cli: give --prompt TEXT or --interactive (or --perplexity FILE)\n");
        return 2;
    }
    ImpModel model = imp_cli_load(o->model, o->quiet);
    if (!model) return 1;
    char why[256];
    const char *fam = imp_chat_format(model, o->chat_template, why, sizeof why);
    if (!fam) {
        fprintf(stderr, "imp-cli: --chat-template: %s\n", why);
        imp_model_free(model);
        return 2;
    }
    const bool plain = !strcmp(fam, "none");
    if (!o->quiet) fprintf(stderr, "imp-cli: chat template: %s\n", why);
    if (!o->quiet && !o->seed_set && o->gen.temperature > 0) {
        fprintf(stderr, "imp-cli: seed %llu\n", (unsigned long long)o->gen.seed);
    }
    ImpConfig cfg = imp_cli_context_config(o);
    ImpContext ctx;
    if (imp_context_create(model, &cfg, &ctx) != IMP_OK) {
        fprintf(stderr, "imp-cli: cannot create a context (see the message above)\n");
        imp_model_free(model);
        return 1;
    }
    int rc = 0;
    convo c = {0};
    if (o->system && !plain && !convo_add(&c, "system", NULL, o->system)) rc = 1;
    if (o->prompt && rc == 0) {
        char *p = strdup(o->prompt);
        if (!p || !convo_add(&c, "user", p, NULL)) {
            free(p);
            rc = 1;
        }
    }
    char *line = NULL;
    size_t line_cap = 0;
    for (bool first = true; rc == 0; first = false) {
        if (!first || !o->prompt) {
            if (!o->interactive) break;
            /* next user line */
            if (isatty(STDIN_FILENO)) {
                fputs("> ", stdout);
                fflush(stdout);
            }
            ssize_t got = getline(&line, &line_cap, stdin);
            if (got < 0) break;
            while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
            if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
            if (!strcmp(line, "/reset")) {
                convo_free(&c);
                if (o->system && !plain) convo_add(&c, "system", NULL, o->system);
                imp_context_reset(ctx);
                continue;
            }
            if (got == 0) continue;
            char *p = strdup(line);
            if (!p || !convo_add(&c, "user", p, NULL)) {
                free(p);
                rc = 1;
                break;
            }
        }
        char *prompt = render(model, plain ? "none" : o->chat_template, &c);
        if (!prompt) {
            fprintf(stderr, "imp-cli: cannot render the conversation\n");
            rc = 1;
            break;
        }
        char *reply = turn(ctx, prompt, o);
        free(prompt);
        if (!reply) {
            rc = 1;
            break;
        }
        if (!convo_add(&c, "assistant", reply, NULL)) {
            free(reply);
            rc = 1;
        }
    }
    free(line);
    convo_free(&c);
    imp_context_free(ctx);
    imp_model_free(model);
    return rc;
}
