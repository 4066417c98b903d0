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
    o->bench_pp = 512;
    o->bench_reps = 5;
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

static int parse_f32(const char *flag, const char *v, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    float x = strtof(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi)) {
        char want[96];
        snprintf(want, sizeof want, "a number in %g..%g", (double)lo, (double)hi);
        return bad_value(flag, v, want);
    }
    *out = x;
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
    if (!strcmp(a, "--bench")) {
        o->bench = true;
        return 1;
    }
    if (*i + 1 >= argc) return 0;
    const char *v = argv[*i + 1];
    int r = 0;
#define IS(name) (!strcmp(a, name))
    if (IS("--prompt") || IS("-p")) {
        o->prompt = v, r = 1;
    } else if (IS("--system")) {
        o->system = v, r = 1;
    } else if (IS("--chat-template")) {
        o->chat_template = v, r = 1;
    } else if (IS("--max-tokens") || IS("-n")) {
        r = parse_i32(a, v, 0, 1 << 24, &g->max_tokens);
        o->max_tokens_set = true;
    } else if (IS("--temperature") || IS("--temp")) {
        r = parse_f32(a, v, 0.0f, 100.0f, &g->temperature);
    } else if (IS("--top-k")) {
        r = parse_i32(a, v, 0, INT32_MAX, &g->top_k);
    } else if (IS("--top-p")) {
        r = parse_f32(a, v, 0.0f, 1.0f, &g->top_p);
    } else if (IS("--min-p")) {
        r = parse_f32(a, v, 0.0f, 1.0f, &g->min_p);
    } else if (IS("--typical-p") || IS("--typical")) {
        r = parse_f32(a, v, 0.0f, 1.0f, &g->typical_p);
    } else if (IS("--repeat-penalty")) {
        r = parse_f32(a, v, 0.0f, 100.0f, &g->repeat_penalty);
    } else if (IS("--repeat-last-n")) {
        r = parse_i32(a, v, -1, 1 << 24, &g->repeat_last_n);
    } else if (IS("--frequency-penalty")) {
        r = parse_f32(a, v, -100.0f, 100.0f, &g->frequency_penalty);
    } else if (IS("--presence-penalty")) {
        r = parse_f32(a, v, -100.0f, 100.0f, &g->presence_penalty);
    } else if (IS("--dry-multiplier")) {
        r = parse_f32(a, v, 0.0f, 100.0f, &g->dry_multiplier);
    } else if (IS("--dry-base")) {
        r = parse_f32(a, v, 1.0f, 100.0f, &g->dry_base);
    } else if (IS("--dry-allowed-length")) {
        r = parse_i32(a, v, 0, 1 << 20, &g->dry_allowed_length);
    } else if (IS("--dry-penalty-last-n")) {
        r = parse_i32(a, v, -1, 1 << 24, &g->dry_penalty_last_n);
    } else if (IS("--dry-sequence-breaker")) {
        if (o->n_breakers >= CLI_MAX_LIST) return bad_value(a, v, "at most 64 breakers");
        if (!*v) return bad_value(a, v, "a non-empty string");
        o->breakers[o->n_breakers++] = v;
        g->dry_breakers = o->breakers;
        g->n_dry_breakers = o->n_breakers;
        r = 1;
    } else if (IS("--mirostat")) {
        r = parse_i32(a, v, 0, 2, &g->mirostat);
    } else if (IS("--mirostat-lr") || IS("--mirostat-eta")) {
        r = parse_f32(a, v, 0.0f, 10.0f, &g->mirostat_eta);
    } else if (IS("--mirostat-ent") || IS("--mirostat-tau")) {
        r = parse_f32(a, v, 0.0f, 100.0f, &g->mirostat_tau);
    } else if (IS("--seed") || IS("-s")) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (errno || end == v || *end || *v == '-') return bad_value(a, v, "a non-negative integer");
        g->seed = s;
        o->seed_set = true;
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
    } else if (IS("--threads") || IS("-t")) {
        r = parse_i32(a, v, 0, 512, &o->threads);
    } else if (IS("--max-seq-len") || IS("-c")) {
        r = parse_i32(a, v, 0, 1 << 24, &o->max_seq_len);
    } else if (IS("--perplexity")) {
        o->perplexity = v, r = 1;
    } else if (IS("--bench-pp")) {
        r = parse_i32(a, v, 0, 1 << 16, &o->bench_pp);
    } else if (IS("--bench-reps")) {
        r = parse_i32(a, v, 1, 1000, &o->bench_reps);
    } else if (IS("--ctx")) {
        r = parse_i32(a, v, 2, 1 << 20, &o->ppl_ctx);
    }
#undef IS
    if (r == 1) (*i)++;
    return r;
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
    ImpConfig cfg = imp_config_default();
    cfg.n_threads = o->threads;
    cfg.max_seq_len = o->max_seq_len;
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
