/*
 * imp-synth PRESET out.gguf [--type MIX] [--seed N] [--threads N] [--layers N]
 *
 * Writes a complete model with random weights (normal, std 0.02; norm weights 1 +- 0.25) at a real
 * model's shapes, with a synthetic SentencePiece-style vocabulary and the metadata a loader
 * needs. This is how GPU benchmarks get their models: speed does not depend on weight values.
 *
 * Speed: an 8B model must take seconds. Each tensor type gets a pool of ~1M random elements
 * quantized once; tensors are filled by copying pool windows chosen by a seeded hash (in
 * parallel), so the cost is memory bandwidth plus the disk write.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/threads.h"
#include "gguf/gguf.h"
#include "presets.h"
#include "quant/mix.h"
#include "quant/quant.h"

#define SYNTH_POOL_ELEMS (1 << 20)
#define SYNTH_STD        0.02f

typedef enum { FILL_RANDOM, FILL_NORM, FILL_ROPE_FREQS } synth_fill_kind;

typedef struct {
    char name[96];
    uint32_t n_dims;
    int64_t ne[4];
    uint32_t type;
    synth_fill_kind fill;
} synth_tensor;

typedef struct {
    const imp_synth_preset *p;
    int n_layer;
    imp_ftype ftype;
    uint64_t seed;
    int threads;
    synth_tensor *tensors;
    int n_tensors, cap_tensors;
    uint8_t *pools[IMP_TYPE_COUNT]; /* random blocks per type, built on first use */
    size_t pool_bytes[IMP_TYPE_COUNT];
} synth_ctx;

static uint64_t synth_hash(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int synth_add(synth_ctx *s, synth_fill_kind fill, uint32_t n_dims, int64_t ne0, int64_t ne1,
                     int64_t ne2, const char *fmt, int layer) {
    if (s->n_tensors == s->cap_tensors) {
        int cap = s->cap_tensors ? s->cap_tensors * 2 : 64;
        synth_tensor *t = realloc(s->tensors, (size_t)cap * sizeof *t);
        if (!t) return -1;
        s->tensors = t;
        s->cap_tensors = cap;
    }
    synth_tensor *t = &s->tensors[s->n_tensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, fmt, layer);
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = ne2;
    t->ne[3] = 1;
    t->fill = fill;
    return 0;
}

/* The tensor list of the preset's architecture, in llama.cpp's naming. */
static int synth_build_tensors(synth_ctx *s) {
    const imp_synth_preset *p = s->p;
    const int64_t E = p->n_embd, V = p->n_vocab, F = p->n_ff, HD = p->head_dim;
    const int64_t QD = (int64_t)p->n_head * HD, KD = (int64_t)p->n_head_kv * HD;
    int rc = 0;
    rc |= synth_add(s, FILL_RANDOM, 2, E, V, 1, "token_embd.weight", 0);
    if (p->llama3_rope > 0) rc |= synth_add(s, FILL_ROPE_FREQS, 1, HD / 2, 1, 1, "rope_freqs.weight", 0);
    for (int l = 0; l < s->n_layer; l++) {
        rc |= synth_add(s, FILL_NORM, 1, E, 1, 1, "blk.%d.attn_norm.weight", l);
        if (p->fused_qkv) {
            rc |= synth_add(s, FILL_RANDOM, 2, E, QD + 2 * KD, 1, "blk.%d.attn_qkv.weight", l);
        } else {
            rc |= synth_add(s, FILL_RANDOM, 2, E, QD, 1, "blk.%d.attn_q.weight", l);
            rc |= synth_add(s, FILL_RANDOM, 2, E, KD, 1, "blk.%d.attn_k.weight", l);
            rc |= synth_add(s, FILL_RANDOM, 2, E, KD, 1, "blk.%d.attn_v.weight", l);
        }
        if (p->qkv_bias) {
            rc |= synth_add(s, FILL_RANDOM, 1, QD, 1, 1, "blk.%d.attn_q.bias", l);
            rc |= synth_add(s, FILL_RANDOM, 1, KD, 1, 1, "blk.%d.attn_k.bias", l);
            rc |= synth_add(s, FILL_RANDOM, 1, KD, 1, 1, "blk.%d.attn_v.bias", l);
        }
        if (p->qk_norm) {
            rc |= synth_add(s, FILL_NORM, 1, HD, 1, 1, "blk.%d.attn_q_norm.weight", l);
            rc |= synth_add(s, FILL_NORM, 1, HD, 1, 1, "blk.%d.attn_k_norm.weight", l);
        }
        rc |= synth_add(s, FILL_RANDOM, 2, QD, E, 1, "blk.%d.attn_output.weight", l);
        if (p->post_norms) rc |= synth_add(s, FILL_NORM, 1, E, 1, 1, "blk.%d.post_attention_norm.weight", l);
        rc |= synth_add(s, FILL_NORM, 1, E, 1, 1, "blk.%d.ffn_norm.weight", l);
        if (p->n_expert > 0) {
            const int64_t X = p->n_expert, FE = p->n_ff_exp;
            rc |= synth_add(s, FILL_RANDOM, 2, E, X, 1, "blk.%d.ffn_gate_inp.weight", l);
            rc |= synth_add(s, FILL_RANDOM, 3, E, FE, X, "blk.%d.ffn_gate_exps.weight", l);
            rc |= synth_add(s, FILL_RANDOM, 3, E, FE, X, "blk.%d.ffn_up_exps.weight", l);
            rc |= synth_add(s, FILL_RANDOM, 3, FE, E, X, "blk.%d.ffn_down_exps.weight", l);
        } else if (p->fused_qkv) {
            rc |= synth_add(s, FILL_RANDOM, 2, E, 2 * F, 1, "blk.%d.ffn_up.weight", l);
            rc |= synth_add(s, FILL_RANDOM, 2, F, E, 1, "blk.%d.ffn_down.weight", l);
        } else {
            rc |= synth_add(s, FILL_RANDOM, 2, E, F, 1, "blk.%d.ffn_gate.weight", l);
            rc |= synth_add(s, FILL_RANDOM, 2, E, F, 1, "blk.%d.ffn_up.weight", l);
            rc |= synth_add(s, FILL_RANDOM, 2, F, E, 1, "blk.%d.ffn_down.weight", l);
        }
        if (p->post_norms) rc |= synth_add(s, FILL_NORM, 1, E, 1, 1, "blk.%d.post_ffw_norm.weight", l);
    }
    rc |= synth_add(s, FILL_NORM, 1, E, 1, 1, "output_norm.weight", 0);
    if (!p->tied) rc |= synth_add(s, FILL_RANDOM, 2, E, V, 1, "output.weight", 0);
    if (rc) return -1;

    imp_mix_model mm = {.n_layer = s->n_layer, .n_head = p->n_head, .n_head_kv = p->n_head_kv,
                        .n_expert = p->n_expert, .tied_embeddings = p->tied};
    for (int i = 0; i < s->n_tensors; i++) {
        synth_tensor *t = &s->tensors[i];
        t->type = imp_mix_tensor_type(s->ftype, &mm, t->name, t->n_dims, t->ne, IMP_TYPE_F32);
    }
    return 0;
}

typedef struct {
    float *x;
    uint64_t seed;
} synth_normal_job;

static void synth_normal_range(void *ctx, int64_t b, int64_t e, int ith) {
    synth_normal_job *j = ctx;
    for (int64_t i = b; i < e; i += 2) {
        uint64_t h = synth_hash(j->seed ^ (uint64_t)i);
        float u1 = (float)((h >> 40) + 1) * (1.0f / 16777217.0f);
        float u2 = (float)(h & 0xffffff) * (1.0f / 16777216.0f);
        float r = sqrtf(-2.0f * logf(u1)) * SYNTH_STD;
        j->x[i] = r * cosf(6.28318531f * u2);
        if (i + 1 < e) j->x[i + 1] = r * sinf(6.28318531f * u2);
    }
}

typedef struct {
    const imp_type_traits *tr;
    const float *src;
    uint8_t *dst;
} synth_quant_job;

static void synth_quant_range(void *ctx, int64_t b, int64_t e, int ith) {
    synth_quant_job *j = ctx;
    const int64_t rows_elems = 4096; /* quantize in rows of 4096 elements */
    for (int64_t r = b; r < e; r++) {
        j->tr->quantize(j->src + r * rows_elems, j->dst + (size_t)(r * rows_elems / j->tr->block_size) * j->tr->type_size, rows_elems, NULL);
    }
}

static imp_status synth_pool(synth_ctx *s, uint32_t type, imp_error *err) {
    if (s->pools[type]) return IMP_OK;
    const imp_type_traits *tr = imp_type_get(type);
    if (!tr || !tr->quantize) {
        return imp_error_set(err, IMP_ERR_UNSUPPORTED, "cannot produce tensors of type %s", imp_type_name(type));
    }
    float *x = malloc(sizeof(float) * SYNTH_POOL_ELEMS);
    size_t bytes = imp_row_size(type, SYNTH_POOL_ELEMS);
    uint8_t *q = malloc(bytes);
    if (!x || !q) {
        free(x);
        free(q);
        return imp_error_set(err, IMP_ERR_NOMEM, "out of memory for the %s pool", tr->name);
    }
    synth_normal_job nj = {x, s->seed * 1000003u + type};
    imp_parallel_for(s->threads, SYNTH_POOL_ELEMS, synth_normal_range, &nj);
    synth_quant_job qj = {tr, x, q};
    imp_parallel_for(s->threads, SYNTH_POOL_ELEMS / 4096, synth_quant_range, &qj);
    free(x);
    s->pools[type] = q;
    s->pool_bytes[type] = bytes;
    return IMP_OK;
}

typedef struct {
    synth_ctx *s;
    uint8_t *buf;
    uint64_t size;
    size_t chunk;
    uint64_t seed;
    uint32_t type;
} synth_fill_job;

static void synth_fill_range(void *ctx, int64_t b, int64_t e, int ith) {
    synth_fill_job *j = ctx;
    const uint8_t *pool = j->s->pools[j->type];
    const size_t ts = imp_type_get(j->type)->type_size;
    const size_t pool_blocks = j->s->pool_bytes[j->type] / ts;
    const size_t chunk_blocks = j->chunk / ts;
    for (int64_t c = b; c < e; c++) {
        uint64_t off = (uint64_t)c * j->chunk;
        size_t n = (size_t)IMP_MIN((uint64_t)j->chunk, j->size - off);
        size_t start = (size_t)(synth_hash(j->seed ^ (uint64_t)c) % (pool_blocks - chunk_blocks + 1));
        memcpy(j->buf + off, pool + start * ts, n);
    }
}

static void synth_rope_freqs(const imp_synth_preset *p, float *out, int64_t n) {
    /* Llama 3.1 rope scaling as per-dimension frequency divisors (the rope_freqs tensor). */
    const float factor = p->llama3_rope, lo = 1.0f, hi = 4.0f, old = (float)p->llama3_orig_ctx;
    const float lo_wl = old / lo, hi_wl = old / hi;
    for (int64_t i = 0; i < n; i++) {
        float freq = powf(p->rope_base, -2.0f * (float)i / (float)p->head_dim);
        float wl = 6.28318531f / freq;
        if (wl < hi_wl) out[i] = 1.0f;
        else if (wl > lo_wl) out[i] = factor;
        else {
            float smooth = (old / wl - lo) / (hi - lo);
            out[i] = 1.0f / ((1.0f - smooth) / factor + smooth);
        }
    }
}

static imp_status synth_fill(void *user, int64_t index, void *buf, uint64_t size, imp_error *err) {
    synth_ctx *s = user;
    synth_tensor *t = &s->tensors[index];
    if (t->fill == FILL_NORM) {
        /* 1 +- 0.25: near a trained norm's scale, but not all ones, so a test notices a norm
         * weight applied wrongly */
        float *f = buf;
        for (uint64_t i = 0; i < size / 4; i++) {
            const uint64_t h = synth_hash(s->seed ^ (0x5eedull + 1000003ull * (uint64_t)index + i));
            f[i] = 1.0f + 0.5f * ((float)(h >> 40) / (float)(1ull << 24) - 0.5f);
        }
        return IMP_OK;
    }
    if (t->fill == FILL_ROPE_FREQS) {
        synth_rope_freqs(s->p, buf, t->ne[0]);
        return IMP_OK;
    }
    imp_status st = synth_pool(s, t->type, err);
    if (st != IMP_OK) return st;
    const size_t ts = imp_type_get(t->type)->type_size;
    size_t chunk = (65536 / ts) * ts;
    if (chunk > s->pool_bytes[t->type]) chunk = (s->pool_bytes[t->type] / ts) * ts;
    synth_fill_job j = {s, buf, size, chunk, synth_hash(s->seed + 7919u * (uint64_t)index), t->type};
    imp_parallel_for(s->threads, (int64_t)((size + chunk - 1) / chunk), synth_fill_range, &j);
    return IMP_OK;
}

/* Synthetic SentencePiece-style vocabulary: <unk> <s> </s>, the 256 byte tokens, the word-start
 * marker U+2581 alone (every real SPM vocabulary has it: without it a space would decode as the
 * marker's bytes), then unique lowercase pieces (every other one with the marker). */
static imp_status synth_vocab(synth_ctx *s, imp_gguf_writer *w, imp_error *err) {
    const int n = s->p->n_vocab;
    char **toks = imp_calloc((size_t)n, sizeof *toks);
    float *scores = imp_calloc((size_t)n, sizeof *scores);
    int32_t *types = imp_calloc((size_t)n, sizeof *types);
    imp_status st = IMP_OK;
    if (!toks || !scores || !types) {
        st = imp_error_set(err, IMP_ERR_NOMEM, "out of memory for the vocabulary");
        goto done;
    }
    for (int i = 0; i < n && st == IMP_OK; i++) {
        char piece[32];
        if (i == 0) snprintf(piece, sizeof piece, "<unk>");
        else if (i == 1) snprintf(piece, sizeof piece, "<s>");
        else if (i == 2) snprintf(piece, sizeof piece, "</s>");
        else if (i < 259) snprintf(piece, sizeof piece, "<0x%02X>", i - 3);
        else if (i == 259) snprintf(piece, sizeof piece, "\xe2\x96\x81");
        else {
            int k = i - 260, len = 0;
            char letters[16];
            do {
                letters[len++] = (char)('a' + k % 26);
                k = k / 26 - 1;
            } while (k >= 0 && len < 15);
            letters[len] = '\0';
            snprintf(piece, sizeof piece, "%s%s", (i & 1) ? "\xe2\x96\x81" : "", letters);
        }
        toks[i] = strdup(piece);
        if (!toks[i]) st = imp_error_set(err, IMP_ERR_NOMEM, "out of memory for the vocabulary");
        scores[i] = i < 259 ? 0.0f : -(float)(i - 259);
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1; /* unknown, control, byte, normal */
    }
    if (st == IMP_OK) st = imp_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    if (st == IMP_OK) st = imp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, (uint64_t)n);
    if (st == IMP_OK) st = imp_gguf_writer_set_arr(w, "tokenizer.ggml.scores", IMP_GGUF_FLOAT32, scores, (uint64_t)n);
    if (st == IMP_OK) st = imp_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", IMP_GGUF_INT32, types, (uint64_t)n);
    if (st == IMP_OK) st = imp_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    if (st == IMP_OK) st = imp_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    if (st == IMP_OK) st = imp_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    if (st == IMP_OK) st = imp_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    if (st == IMP_OK) st = imp_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    if (st != IMP_OK && err && err->msg[0] == '\0') imp_error_set(err, st, "cannot set vocabulary metadata");
done:
    if (toks) {
        for (int i = 0; i < n; i++) free(toks[i]);
    }
    free(toks);
    free(scores);
    free(types);
    return st;
}

static imp_status synth_metadata(synth_ctx *s, imp_gguf_writer *w, imp_error *err) {
    const imp_synth_preset *p = s->p;
    char key[128];
    imp_status st = IMP_OK;
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", p->arch, suffix), key)
#define SET(call)                                                                                  \
    do {                                                                                           \
        if (st == IMP_OK) st = (call);                                                             \
    } while (0)
    char name[128];
    snprintf(name, sizeof name, "synthetic %s (%s shapes)", p->name, p->about);
    SET(imp_gguf_writer_set_str(w, "general.architecture", p->arch));
    SET(imp_gguf_writer_set_str(w, "general.name", name));
    SET(imp_gguf_writer_set_u32(w, "general.file_type", (uint32_t)s->ftype));
    SET(imp_gguf_writer_set_u32(w, "general.quantization_version", 2));
    SET(imp_gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)s->n_layer));
    SET(imp_gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)p->n_ctx));
    SET(imp_gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)p->n_embd));
    SET(imp_gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)p->n_ff));
    SET(imp_gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)p->n_head));
    SET(imp_gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)p->n_head_kv));
    SET(imp_gguf_writer_set_u32(w, KEY("attention.key_length"), (uint32_t)p->head_dim));
    SET(imp_gguf_writer_set_u32(w, KEY("attention.value_length"), (uint32_t)p->head_dim));
    SET(imp_gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), p->rms_eps));
    SET(imp_gguf_writer_set_f32(w, KEY("rope.freq_base"), p->rope_base));
    SET(imp_gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)p->head_dim));
    SET(imp_gguf_writer_set_u32(w, KEY("vocab_size"), (uint32_t)p->n_vocab));
    if (p->n_expert > 0) {
        SET(imp_gguf_writer_set_u32(w, KEY("expert_count"), (uint32_t)p->n_expert));
        SET(imp_gguf_writer_set_u32(w, KEY("expert_used_count"), (uint32_t)p->n_expert_used));
        if (strcmp(p->arch, "llama") != 0) {
            SET(imp_gguf_writer_set_u32(w, KEY("expert_feed_forward_length"), (uint32_t)p->n_ff_exp));
        }
    }
    if (p->sliding_window > 0) {
        SET(imp_gguf_writer_set_u32(w, KEY("attention.sliding_window"), (uint32_t)p->sliding_window));
    }
    if (p->rope_linear > 0) {
        SET(imp_gguf_writer_set_str(w, KEY("rope.scaling.type"), "linear"));
        SET(imp_gguf_writer_set_f32(w, KEY("rope.scaling.factor"), p->rope_linear));
    }
#undef KEY
#undef SET
    if (st != IMP_OK) return imp_error_set(err, st, "cannot set model metadata");
    return synth_vocab(s, w, err);
}

static void synth_usage(FILE *f) {
    fprintf(f, "usage: imp-synth PRESET OUT.gguf [--type MIX] [--seed N] [--threads N] [--layers N]\n"
               "  --type MIX   weight type or mix (default F16): %s\n"
               "  --layers N   override the layer count (a shallower model of the same width)\n"
               "presets:\n", imp_ftype_names());
    for (int i = 0; i < imp_synth_preset_count(); i++) {
        const imp_synth_preset *p = imp_synth_preset_at(i);
        fprintf(f, "  %-14s %-9s %s\n", p->name, p->arch, p->about);
    }
}

static bool synth_parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

int main(int argc, char **argv) {
    const char *preset = NULL, *out = NULL, *type = "F16";
    long seed = 1, threads = imp_cpu_count(), layers = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            synth_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--type") && has_val) {
            type = argv[++i];
        } else if (!strcmp(a, "--seed") && has_val) {
            if (!synth_parse_int(argv[++i], 0, 0x7fffffffL, &seed)) {
                fprintf(stderr, "imp-synth: --seed wants a non-negative integer, got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--threads") && has_val) {
            if (!synth_parse_int(argv[++i], 1, 1024, &threads)) {
                fprintf(stderr, "imp-synth: --threads wants 1..1024, got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--layers") && has_val) {
            if (!synth_parse_int(argv[++i], 1, 100000, &layers)) {
                fprintf(stderr, "imp-synth: --layers wants a positive integer, got '%s'\n", argv[i]);
                return 2;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "imp-synth: unknown or incomplete option '%s'\n", a);
            synth_usage(stderr);
            return 2;
        } else if (!preset) {
            preset = a;
        } else if (!out) {
            out = a;
        } else {
            fprintf(stderr, "imp-synth: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!preset || !out) {
        synth_usage(stderr);
        return 2;
    }
    synth_ctx s = {.p = imp_synth_preset_find(preset), .seed = (uint64_t)seed, .threads = (int)threads};
    if (!s.p) {
        fprintf(stderr, "imp-synth: unknown preset '%s' (imp-synth --help lists them)\n", preset);
        return 2;
    }
    if (!imp_ftype_from_name(type, &s.ftype)) {
        fprintf(stderr, "imp-synth: unknown type '%s'; one of: %s\n", type, imp_ftype_names());
        return 2;
    }
    s.n_layer = layers > 0 ? (int)layers : s.p->n_layer;

    double t0 = imp_time_s();
    imp_error err;
    imp_error_clear(&err);
    imp_status st = IMP_OK;
    imp_gguf_writer *w = imp_gguf_writer_new();
    if (!w || synth_build_tensors(&s) != 0) {
        st = imp_error_set(&err, IMP_ERR_NOMEM, "out of memory");
    }
    if (st == IMP_OK) st = synth_metadata(&s, w, &err);
    uint64_t total = 0;
    for (int i = 0; st == IMP_OK && i < s.n_tensors; i++) {
        synth_tensor *t = &s.tensors[i];
        st = imp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, NULL, &err);
        total += imp_row_size(t->type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
    }
    if (st == IMP_OK) st = imp_gguf_writer_write(w, out, synth_fill, &s, &err);
    double dt = imp_time_s() - t0;
    if (st == IMP_OK) {
        fprintf(stderr, "imp-synth: wrote %s: %s %s, %d tensors, %.2f GiB in %.1f s\n", out, s.p->name,
                imp_ftype_name(s.ftype), s.n_tensors, (double)total / (1024.0 * 1024 * 1024), dt);
    } else {
        fprintf(stderr, "imp-synth: %s\n", err.msg[0] ? err.msg : imp_status_str(st));
    }
    imp_gguf_writer_free(w);
    for (int t = 0; t < IMP_TYPE_COUNT; t++) free(s.pools[t]);
    free(s.tensors);
    return st == IMP_OK ? 0 : 1;
}
