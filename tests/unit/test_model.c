/*
 * Model loading refuses what it cannot run, with a message naming the key or tensor, and never
 * crashes: a minimal valid llama file is written with the GGUF writer, then variants with one
 * thing wrong each (architecture, missing / out-of-range / inconsistent hyper-parameters, tensor
 * shapes, missing tensors, a type imp cannot compute with, an unknown RoPE scaling, LongRoPE
 * factor tensors). The valid
 * file runs a forward step with finite logits.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "testutil.h"

enum { E = 256, H = 4, HKV = 2, D = 64, F = 256, V = 300 };

typedef enum {
    OK_MODEL,
    BAD_ARCH,
    NO_BLOCKS,
    BAD_HEADS,
    BAD_SHAPE,
    BAD_TYPE,
    NO_DOWN,
    BAD_ROPE,
    HUGE_BLOCKS,
    ZERO_EPS,
    LONGROPE,
    N_VARIANTS
} variant;

static float *zeros;

static void add(imp_gguf_writer *w, const char *name, uint32_t type, int64_t ne0, int64_t ne1) {
    int64_t ne[2] = {ne0, ne1};
    imp_error err = {0};
    if (imp_gguf_writer_add_tensor(w, name, type, ne1 > 1 ? 2 : 1, ne, zeros, &err) != IMP_OK) {
        fprintf(stderr, "add %s: %s\n", name, err.msg);
    }
}

static int write_model(const char *path, variant v) {
    imp_gguf_writer *w = imp_gguf_writer_new();
    const char *arch = v == BAD_ARCH ? "mamba" : "llama";
    char key[96];
#define K(s) (snprintf(key, sizeof key, "%s.%s", arch, s), key)
    imp_gguf_writer_set_str(w, "general.architecture", arch);
    if (v != NO_BLOCKS) imp_gguf_writer_set_u32(w, K("block_count"), v == HUGE_BLOCKS ? 100000 : 1);
    imp_gguf_writer_set_u32(w, K("embedding_length"), E);
    imp_gguf_writer_set_u32(w, K("feed_forward_length"), F);
    imp_gguf_writer_set_u32(w, K("attention.head_count"), v == BAD_HEADS ? 3 : H);
    imp_gguf_writer_set_u32(w, K("attention.head_count_kv"), HKV);
    imp_gguf_writer_set_u32(w, K("attention.key_length"), D);
    imp_gguf_writer_set_f32(w, K("attention.layer_norm_rms_epsilon"), v == ZERO_EPS ? 0.0f : 1e-5f);
    if (v == BAD_ROPE) imp_gguf_writer_set_str(w, K("rope.scaling.type"), "longrope");
#undef K
    /* a small SentencePiece vocabulary */
    static char names[V][16];
    const char *toks[V];
    float scores[V];
    int32_t types[V];
    for (int i = 0; i < V; i++) {
        snprintf(names[i], sizeof names[i], i == 0 ? "<unk>" : i == 1 ? "<s>" : i == 2 ? "</s>" : "t%d", i);
        toks[i] = names[i];
        scores[i] = -(float)i;
        types[i] = i == 0 ? 2 : i < 3 ? 3 : 1;
    }
    imp_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    imp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, V);
    imp_gguf_writer_set_arr(w, "tokenizer.ggml.scores", IMP_GGUF_FLOAT32, scores, V);
    imp_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", IMP_GGUF_INT32, types, V);
    imp_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    imp_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    add(w, "token_embd.weight", IMP_TYPE_F32, E, V);
    add(w, "output_norm.weight", IMP_TYPE_F32, E, 1);
    add(w, "blk.0.attn_norm.weight", IMP_TYPE_F32, E, 1);
    add(w, "blk.0.attn_q.weight", IMP_TYPE_F32, E, v == BAD_SHAPE ? H * D - 1 : H * D);
    add(w, "blk.0.attn_k.weight", v == BAD_TYPE ? IMP_TYPE_IQ2_XXS : IMP_TYPE_F32, E, HKV * D);
    add(w, "blk.0.attn_v.weight", IMP_TYPE_F32, E, HKV * D);
    add(w, "blk.0.attn_output.weight", IMP_TYPE_F32, H * D, E);
    add(w, "blk.0.ffn_norm.weight", IMP_TYPE_F32, E, 1);
    add(w, "blk.0.ffn_gate.weight", IMP_TYPE_F32, E, F);
    add(w, "blk.0.ffn_up.weight", IMP_TYPE_F32, E, F);
    if (v != NO_DOWN) add(w, "blk.0.ffn_down.weight", IMP_TYPE_F32, F, E);
    if (v == LONGROPE) add(w, "rope_factors_long.weight", IMP_TYPE_F32, D / 2, 1);
    imp_error err = {0};
    imp_status st = imp_gguf_writer_write(w, path, NULL, NULL, &err);
    imp_gguf_writer_free(w);
    if (st != IMP_OK) fprintf(stderr, "write: %s\n", err.msg);
    return st == IMP_OK ? 0 : -1;
}

int main(void) {
    zeros = calloc((size_t)E * V, sizeof *zeros);
    char path[] = "/tmp/imp_test_model_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || !zeros) imp_test_skip("no temporary file");
    close(fd);
    static const struct {
        imp_status st;
        const char *msg;
    } want[N_VARIANTS] = {
        [OK_MODEL] = {IMP_OK, ""},
        [BAD_ARCH] = {IMP_ERR_UNSUPPORTED, "\"mamba\" is not supported"},
        [NO_BLOCKS] = {IMP_ERR_NOT_FOUND, "llama.block_count"},
        [BAD_HEADS] = {IMP_ERR_FORMAT, "not a multiple of head_count_kv"},
        [BAD_SHAPE] = {IMP_ERR_FORMAT, "blk.0.attn_q.weight has shape"},
        [BAD_TYPE] = {IMP_ERR_UNSUPPORTED, "blk.0.attn_k.weight has type IQ2_XXS"},
        [NO_DOWN] = {IMP_ERR_NOT_FOUND, "missing tensor blk.0.ffn_down.weight"},
        [BAD_ROPE] = {IMP_ERR_UNSUPPORTED, "\"longrope\" is not supported"},
        [HUGE_BLOCKS] = {IMP_ERR_RANGE, "llama.block_count = 100000 is outside"},
        [ZERO_EPS] = {IMP_ERR_RANGE, "layer_norm_rms_epsilon"},
        [LONGROPE] = {IMP_ERR_UNSUPPORTED, "LongRoPE"},
    };
    for (int v = 0; v < N_VARIANTS; v++) {
        if (write_model(path, (variant)v) != 0) {
            CHECKF(false, "variant %d: could not write the file", v);
            continue;
        }
        imp_model *m = NULL;
        imp_error err = {0};
        imp_status st = imp_model_open(path, NULL, NULL, &m, &err);
        CHECKF(st == want[v].st, "variant %d: status %d, want %d (%s)", v, st, want[v].st, err.msg);
        CHECKF(strstr(err.msg, want[v].msg) != NULL, "variant %d: message '%s' lacks '%s'", v, err.msg, want[v].msg);
        CHECK((st == IMP_OK) == (m != NULL));
        if (st != IMP_OK) printf("refused as expected: %s\n", err.msg);
        if (m) {
            CHECK(m->hp.n_layer == 1 && m->hp.n_head == H && m->hp.n_head_kv == HKV && m->hp.head_dim == D);
            CHECK(m->hp.n_vocab == V && m->w.tied && m->hp.rope_base == 10000.0f);
            imp_engine *e = NULL;
            imp_engine_params p = imp_engine_params_default();
            p.device = IMP_DEVICE_CPU;
            p.n_threads = 2;
            CHECK(imp_engine_create(m, &p, &e, &err) == IMP_OK);
            imp_kv_seq s = {0};
            const int32_t toks[3] = {1, 5, 7};
            imp_engine_input in = {.seq = &s, .tokens = toks, .n_tokens = 3, .first_logit = 2};
            CHECK(e && imp_engine_forward(e, &in, 1, &err) == IMP_OK);
            const float *l = e ? imp_engine_logits(e, 0) : NULL;
            bool finite = l != NULL;
            for (int i = 0; l && i < V; i++) finite = finite && isfinite(l[i]);
            CHECK(finite);
            if (e) imp_engine_seq_release(e, &s);
            imp_engine_free(e);
            imp_model_close(m);
        }
    }
    unlink(path);
    free(zeros);
    return imp_test_finish("test_model");
}
