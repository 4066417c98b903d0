/*
 * imp-cli: the command-line front end. Thin: parses flags and calls libimp.
 * Generation (--prompt, --interactive), --perplexity, --inspect FILE (metadata + tensor table),
 * the tokenizer (--tokenize, --detokenize, --chat-render), --devices, --version.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <imp/imp.h>

#include "backend/device.h"
#include "generate.h"
#include "inspect.h"
#include "tokenize.h"

static void cli_usage(FILE *f) {
    fprintf(f, "usage: imp-cli --model M --prompt TEXT [options]  answer (chat template) or continue a text\n"
               "       imp-cli --model M --interactive [options]  multi-turn chat on stdin (/reset, /exit)\n"
               "       imp-cli --model M --perplexity FILE [--ctx N]  perplexity (llama-perplexity's method)\n"
               "  generation options:\n"
               "    --system S --chat-template NAME|auto|none --max-tokens N (-n) --stop S (repeatable)\n"
               "    --stop-token ID --temperature T --top-k K --top-p P --min-p P --typical-p P\n"
               "    --repeat-penalty R --repeat-last-n N --frequency-penalty F --presence-penalty P\n"
               "    --dry-multiplier M --dry-base B --dry-allowed-length L --dry-penalty-last-n N\n"
               "    --dry-sequence-breaker S --mirostat 0|1|2 --mirostat-lr ETA --mirostat-ent TAU\n"
               "    --seed N --logit-bias TOKEN(+|-)BIAS --max-seq-len N (-c) --threads N (-t) --quiet\n"
               "  configuration (docs/config.md): --config PATH, --set SECTION.KEY=VALUE (repeatable),\n"
               "    --max-batch N (-b), --kv-block-size N, --log-level L; imp-cli --print-config shows the result\n"
               "  device: --device N|cpu|auto (-d), --kv-type f16|f32, --no-cuda-graphs,\n"
               "    --gpu-layers N (-ngl N): the first N layers on the GPU, the rest on the CPU (-1 = all)\n"
               "       imp-cli --model M --bench [--bench-pp N] [--max-tokens N] [--bench-reps R] [--bench-depth D]\n"
               "               [--threads T]                   ppN / tgN t/s (at depth D: D tokens in the cache\n"
               "                                               first) and the memory-bandwidth ceiling; imp-bench\n"
               "                                               runs lists of them\n"
               "       imp-cli --inspect MODEL.gguf [--full]   print metadata and tensors\n"
               "       imp-cli --model M --tokenize TEXT | --tokenize-file F\n"
               "               [--ids] [--add-bos] [--parse-special]\n"
               "                                               token ids (and pieces) of a text\n"
               "       imp-cli --model M --detokenize 1,2,3 | --detokenize-file F [--show-special]\n"
               "                                               the text of token ids (bytes exactly)\n"
               "       imp-cli --model M --chat-render TEXT [--system S] [--chat-template NAME|auto] [--ids]\n"
               "                                               the prompt (or its ids) a chat turn makes\n"
               "       imp-cli --devices                       list GPUs\n"
               "       imp-cli --version\n");
}

static int cli_devices(void) {
    imp_device_info devs[16];
    int n = 0;
    imp_error err;
    imp_error_clear(&err);
    if (imp_device_list(devs, 16, &n, &err) != IMP_OK) {
        fprintf(stderr, "imp-cli: %s\n", err.msg);
        return 1;
    }
    printf("CUDA backend: %s; %d device(s)\n", imp_device_cuda_built() ? "built" : "not built", n);
    for (int i = 0; i < n && i < 16; i++) {
        printf("  %d: %s, sm_%d%d, %d SMs, %.1f GiB, %d-bit bus\n", devs[i].index, devs[i].name,
               devs[i].cc_major, devs[i].cc_minor, devs[i].sm_count,
               (double)devs[i].total_mem / (1024.0 * 1024 * 1024), devs[i].mem_bus_width_bits);
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *inspect = NULL;
    bool full = false;
    cli_tok_opts tok = {0};
    cli_gen_opts gen;
    imp_cli_gen_defaults(&gen);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const bool has_arg = i + 1 < argc;
        /* flags both the tokenizer commands and generation read */
        if ((!strcmp(a, "--model") || !strcmp(a, "-m")) && has_arg) {
            tok.model = gen.model = argv[++i];
            continue;
        }
        if (!strcmp(a, "--system") && has_arg) {
            tok.chat_system = gen.system = argv[++i];
            continue;
        }
        if (!strcmp(a, "--chat-template") && has_arg) tok.chat_template = argv[i + 1]; /* and below */
        const int g = imp_cli_gen_flag(&gen, argc, argv, &i);
        if (g < 0) return 2;
        if (g > 0) continue;
        if (!strcmp(a, "--inspect") && has_arg) {
            inspect = argv[++i];
        } else if (!strcmp(a, "--tokenize") && has_arg) {
            tok.text = argv[++i];
        } else if (!strcmp(a, "--tokenize-file") && has_arg) {
            tok.text_file = argv[++i];
        } else if (!strcmp(a, "--detokenize") && has_arg) {
            tok.detok = argv[++i];
        } else if (!strcmp(a, "--detokenize-file") && has_arg) {
            tok.detok_file = argv[++i];
        } else if (!strcmp(a, "--ids")) {
            tok.ids_only = true;
        } else if (!strcmp(a, "--add-bos")) {
            tok.add_bos = true;
        } else if (!strcmp(a, "--parse-special")) {
            tok.parse_special = true;
        } else if (!strcmp(a, "--show-special")) {
            tok.show_special = true;
        } else if (!strcmp(a, "--chat-render") && has_arg) {
            tok.chat_user = argv[++i];
        } else if (!strcmp(a, "--full")) {
            full = true;
        } else if (!strcmp(a, "--devices")) {
            return cli_devices();
        } else if (!strcmp(a, "--version")) {
            printf("imp %s\n", imp_version());
            return 0;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cli_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "imp-cli: unknown or incomplete option '%s'\n", a);
            cli_usage(stderr);
            return 2;
        }
    }
    const int n_tok_cmds = !!tok.text + !!tok.text_file + !!tok.detok + !!tok.detok_file + !!tok.chat_user;
    if (n_tok_cmds > 1 || (n_tok_cmds && inspect)) {
        fprintf(stderr, "imp-cli: give one of --inspect, --tokenize, --tokenize-file, --detokenize, --detokenize-file, --chat-render\n");
        return 2;
    }
    if (gen.print_config) {
        const int rc = imp_cli_config(&gen);
        if (rc) return rc;
        char *text = NULL;
        imp_error err = {0};
        if (imp_config_dump(&gen.cfg, &text, &err) != IMP_OK) {
            fprintf(stderr, "imp-cli: %s\n", err.msg);
            return 1;
        }
        fputs(text, stdout);
        free(text);
        return 0;
    }
    const int n_gen_cmds = !!gen.prompt + !!gen.interactive + !!gen.perplexity + !!gen.bench;
    if ((n_tok_cmds || inspect) && n_gen_cmds) {
        fprintf(stderr, "imp-cli: --prompt/--interactive/--perplexity do not combine with --inspect or the tokenizer commands\n");
        return 2;
    }
    if (n_tok_cmds) return imp_cli_tokenize(&tok);
    if ((gen.perplexity || gen.bench) && n_gen_cmds > 1) {
        fprintf(stderr, "imp-cli: --perplexity and --bench do not combine with each other, --prompt or --interactive\n");
        return 2;
    }
    if (n_gen_cmds && !gen.model) {
        fprintf(stderr, "imp-cli: --model M is required\n");
        return 2;
    }
    if (n_gen_cmds) {
        const int rc = imp_cli_config(&gen);
        if (rc) return rc;
    }
    if (gen.perplexity) return imp_cli_perplexity(&gen);
    if (gen.bench) {
        if (!gen.max_tokens_set) gen.gen.max_tokens = gen.cfg.v.bench.tg;
        return imp_cli_bench(&gen);
    }
    if (n_gen_cmds) return imp_cli_generate(&gen);
    if (!inspect) {
        cli_usage(stderr);
        return 2;
    }
    return imp_cli_inspect(inspect, full, stdout);
}
