/*
 * imp — public C API.
 *
 * Usage:
 *
 *     #include <imp/imp.h>
 *     ImpModel model;   imp_model_load("model.gguf", IMP_FORMAT_GGUF, &model);
 *     ImpConfig cfg = imp_config_default();
 *     ImpContext ctx;   imp_context_create(model, &cfg, &ctx);
 *     ImpGenerateParams params = imp_generate_params_default();  params.max_tokens = 128;
 *     char output[4096]; size_t output_len;
 *     imp_generate(ctx, "The capital of France is", &params, output, sizeof(output), &output_len);
 *     imp_context_free(ctx); imp_model_free(model);
 *
 * Every function returns an ImpStatus (IMP_OK = 0) unless documented otherwise; the message of
 * a failure goes to the log callback (imp_log_set) and, for a context, to
 * imp_context_last_error(). The library never prints to stdout and never exits.
 *
 * Thread safety: a model is read-only once loaded and may be shared by any number of contexts
 * on any threads; a context is used by one thread at a time. imp_log_set should be called once
 * before other threads use the library.
 */
#ifndef IMP_IMP_H
#define IMP_IMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every fallible function returns one of these. IMP_OK is 0. */
typedef enum ImpStatus {
    IMP_OK = 0,
    IMP_ERR_INVALID_ARG = 1, /* a caller passed a bad argument (NULL, out of range)          */
    IMP_ERR_IO = 2,          /* open/read/write/mmap failed                                   */
    IMP_ERR_FORMAT = 3,      /* a file or request is malformed                                */
    IMP_ERR_NOMEM = 4,       /* an allocation failed or would exceed a bound                  */
    IMP_ERR_UNSUPPORTED = 5, /* valid input that imp does not handle (yet)                    */
    IMP_ERR_NOT_FOUND = 6,   /* a key, tensor or name is absent                               */
    IMP_ERR_TYPE = 7,        /* a value has another type than the one asked for               */
    IMP_ERR_RANGE = 8,       /* a value does not fit the type or bound asked for              */
    IMP_ERR_DEVICE = 9,      /* the GPU or its runtime reported an error                      */
    IMP_ERR_INTERNAL = 10,   /* a bug in imp                                                  */
} ImpStatus;

/* A short constant English name for a status ("ok", "format error", ...). Never NULL. */
const char *imp_status_str(ImpStatus status);

/* The library version as "MAJOR.MINOR.PATCH". Static storage. */
const char *imp_version(void);

typedef enum ImpLogLevel {
    IMP_LOG_DEBUG = 0,
    IMP_LOG_INFO = 1,
    IMP_LOG_WARN = 2,
    IMP_LOG_ERROR = 3,
} ImpLogLevel;

/* Receives every log line (without a trailing newline). */
typedef void (*ImpLogFn)(ImpLogLevel level, const char *message, void *user);

/* Routes the library's log lines to fn (NULL: the default, which writes WARN and ERROR lines to
 * stderr). min_level drops lines below it. Call before other threads use the library. */
void imp_log_set(ImpLogFn fn, void *user, ImpLogLevel min_level);

/* ---- models ----------------------------------------------------------------------------- */

typedef struct ImpModel_ *ImpModel;     /* a loaded model (weights, vocabulary, hyper-parameters) */
typedef struct ImpContext_ *ImpContext; /* per-conversation state: KV cache, sampler, history    */

typedef enum ImpFormat { IMP_FORMAT_GGUF = 0 } ImpFormat;

/* Load progress: called with bytes checked so far and the total (may be called often). */
typedef void (*ImpProgressFn)(uint64_t done, uint64_t total, void *user);

/* Loads and validates a model file. On success *out is the model (free with imp_model_free);
 * on failure *out is NULL and the reason is logged at ERROR level. */
ImpStatus imp_model_load(const char *path, ImpFormat format, ImpModel *out);

/* As imp_model_load, with a progress callback (may be NULL) and the failure's message written
 * to err (NUL-terminated, truncated to err_cap; err may be NULL). */
ImpStatus imp_model_load_ex(const char *path, ImpFormat format, ImpProgressFn progress, void *user,
                            ImpModel *out, char *err, size_t err_cap);

/* Frees a model; every context made from it must be freed first. NULL is fine. */
void imp_model_free(ImpModel model);

typedef struct ImpModelInfo {
    const char *name;          /* general.name or the file name (owned by the model)      */
    const char *architecture;  /* "llama", "qwen3", ... (static)                          */
    int32_t n_vocab, n_ctx_train, n_layer, n_embd, n_head, n_head_kv;
    uint64_t n_params;         /* weights' element count                                  */
    uint64_t weight_bytes;
    int32_t bos, eos;          /* -1 if none                                              */
    bool add_bos;              /* the tokenizer prepends BOS                              */
    bool has_chat_template;    /* the file carries tokenizer.chat_template                */
} ImpModelInfo;

ImpStatus imp_model_info(ImpModel model, ImpModelInfo *info);

/* ---- tokens ----------------------------------------------------------------------------- */

/* Text -> token ids. add_special: prepend BOS (and append EOS) as the model's tokenizer does;
 * parse_special: control-token texts ("<|im_end|>") become those tokens. *n_tokens gets the
 * full count; when it exceeds cap, nothing useful is in tokens and IMP_ERR_RANGE is returned
 * (call again with a larger buffer). */
ImpStatus imp_tokenize(ImpModel model, const char *text, size_t len, bool add_special, bool parse_special,
                       int32_t *tokens, size_t cap, size_t *n_tokens);

/* Token ids -> text (exact bytes; special tokens rendered only when special is true). out gets
 * up to cap - 1 bytes and a NUL; *len the full length; IMP_ERR_RANGE when it did not fit. */
ImpStatus imp_detokenize(ImpModel model, const int32_t *tokens, size_t n, bool special, char *out, size_t cap,
                         size_t *len);

/* ---- contexts --------------------------------------------------------------------------- */

#define IMP_DEVICE_AUTO (-2) /* the first GPU when there is one, else the CPU */
#define IMP_DEVICE_CPU (-1)
#define IMP_GPU_LAYERS_ALL (-1) /* ImpConfig.gpu_layers: every layer on the GPU */

typedef enum ImpKvType { IMP_KV_F16 = 0, IMP_KV_F32 = 1 } ImpKvType;

typedef struct ImpConfig {
    int32_t n_threads;    /* CPU threads; 0 = every core                                    */
    int32_t max_seq_len;  /* context length; 0 = min(training context, 4096)                */
    int32_t max_batch;    /* tokens per forward step (prompt processing); default 512        */
    int32_t kv_block_size; /* token slots per KV-cache block, a power of two; default 16      */
    int32_t device;       /* IMP_DEVICE_AUTO (default), IMP_DEVICE_CPU or a CUDA device index */
    ImpKvType kv_type;    /* KV-cache storage on a GPU (the CPU stores F32); default F16     */
    int32_t cuda_graphs;  /* 1 (default): decode steps are recorded as CUDA graphs, replayed  */
    int32_t gpu_layers;   /* on a GPU: the first gpu_layers transformer layers run there, the
                             rest (and the embedding and output layer) on the CPU, like
                             llama.cpp's -ngl; IMP_GPU_LAYERS_ALL (default) or >= the model's
                             layer count: all on the GPU; 0: the CPU alone. < -1: an error    */
} ImpConfig;

ImpConfig imp_config_default(void);

/* Makes a context for model (which must outlive it). */
ImpStatus imp_context_create(ImpModel model, const ImpConfig *cfg, ImpContext *out);
void imp_context_free(ImpContext ctx); /* NULL is fine */

/* The message of the context's last failure ("" if none). Owned by the context. */
const char *imp_context_last_error(ImpContext ctx);

/* Forgets the conversation (the KV cache and token history). */
void imp_context_reset(ImpContext ctx);

/* Number of tokens in the context's history (and KV cache). */
int32_t imp_context_n_past(ImpContext ctx);

typedef struct ImpLogitBias { int32_t token; float bias; } ImpLogitBias; /* -INFINITY bans */

/* Streaming: called with each piece of generated text as soon as it is safe to show (stop
 * strings held back); return false to stop generating. */
typedef bool (*ImpTextFn)(const char *text, size_t len, void *user);

typedef enum ImpStopReason {
    IMP_STOP_NONE = 0, IMP_STOP_EOG = 1, IMP_STOP_MAX_TOKENS = 2, IMP_STOP_STRING = 3, IMP_STOP_TOKEN = 4,
    IMP_STOP_CALLBACK = 5, IMP_STOP_BUFFER_FULL = 6, IMP_STOP_CONTEXT_FULL = 7,
} ImpStopReason;

typedef struct ImpGenerateParams {
    int32_t max_tokens;          /* tokens to generate at most; default 256                     */
    float temperature;           /* <= 0: greedy; default 0.8                                   */
    int32_t top_k;               /* <= 0 off; default 40                                        */
    float top_p;                 /* >= 1 off; default 0.95                                      */
    float min_p;                 /* <= 0 off; default 0.05                                      */
    float typical_p;             /* >= 1 off; default 1                                         */
    float repeat_penalty;        /* 1 off; default 1                                            */
    int32_t repeat_last_n;       /* penalty window; 0 off, -1 whole history; default 64         */
    float frequency_penalty;     /* default 0                                                   */
    float presence_penalty;      /* default 0                                                   */
    float dry_multiplier;        /* 0 off; default 0                                            */
    float dry_base;              /* default 1.75                                                */
    int32_t dry_allowed_length;  /* default 2                                                   */
    int32_t dry_penalty_last_n;  /* -1 whole history; default -1                                */
    const char *const *dry_breakers; int32_t n_dry_breakers; /* NULL: "\n" ":" "\"" "*"           */
    int32_t mirostat;            /* 0 off, 1, 2; default 0                                      */
    float mirostat_tau;          /* default 5                                                   */
    float mirostat_eta;          /* default 0.1                                                 */
    uint64_t seed;               /* same seed, same output; default 0                           */
    const ImpLogitBias *logit_bias; int32_t n_logit_bias;
    const char *const *stop;     int32_t n_stop;        /* stop strings (not part of the output)   */
    const int32_t *stop_tokens;  int32_t n_stop_tokens; /* besides the model's end-of-generation set */
    bool parse_special;          /* prompt text may contain control tokens; default true         */
    bool add_special;            /* prepend BOS when the model's tokenizer does; default true    */
    ImpTextFn on_text; void *user;
} ImpGenerateParams;

ImpGenerateParams imp_generate_params_default(void);

/* Generates a continuation of prompt. The context keeps the conversation: tokens the new prompt
 * shares with the history (from the start) are not computed again, so a chat can pass its whole
 * re-rendered transcript every turn. out receives the generated text (up to cap - 1 bytes and
 * a NUL; generation stops when it is full); *out_len its length. */
ImpStatus imp_generate(ImpContext ctx, const char *prompt, const ImpGenerateParams *params, char *out, size_t cap,
                       size_t *out_len);

typedef struct ImpStats {
    int32_t n_prompt;        /* prompt tokens computed (after reuse)   */
    int32_t n_reused;        /* prompt tokens taken from the cache     */
    int32_t n_generated;
    double prompt_s, generate_s;
    ImpStopReason stop;
} ImpStats;

/* The device the context computes on: a CUDA device index, or IMP_DEVICE_CPU. */
int32_t imp_context_device(ImpContext ctx);

/* Counters of the last imp_generate call (or prefill + decode steps since the last reset). */
ImpStatus imp_context_stats(ImpContext ctx, ImpStats *stats);

/* Token-level control. imp_prefill appends tokens to the history and computes them; the
 * logits of the last one become current. */
ImpStatus imp_prefill(ImpContext ctx, const int32_t *tokens, size_t n);

/* As imp_prefill, and keeps the logits of tokens[first..n) (not only the last one's) until the
 * next call: imp_get_logits_ith(ctx, i) for first <= i < n. For scoring text (perplexity). */
ImpStatus imp_prefill_logits(ImpContext ctx, const int32_t *tokens, size_t n, size_t first);

/* Logits of token i of the last imp_prefill_logits call (n_vocab floats, owned by the context),
 * or NULL when i was not kept. */
const float *imp_get_logits_ith(ImpContext ctx, int32_t i);

/* Sets the sampling used by imp_decode_step (default: imp_generate_params_default()). */
ImpStatus imp_set_sampling(ImpContext ctx, const ImpGenerateParams *params);

/* Samples the next token from the current logits, appends it and computes it so the next
 * logits are current. *token gets the token; *is_eog whether it ends generation (then it is
 * not computed). IMP_ERR_RANGE when the context is full. */
ImpStatus imp_decode_step(ImpContext ctx, int32_t *token, bool *is_eog);

/* The current logits (n_vocab floats, owned by the context, valid until the next call), or
 * NULL when there are none. On a GPU, generation samples there and leaves the logits in device
 * memory: the first call after a step downloads them. */
const float *imp_get_logits(ImpContext ctx, int32_t *n_vocab);

/* ---- chat templates ----------------------------------------------------------------------- */

typedef struct ImpChatMessage {
    const char *role;    /* "system", "user", "assistant", "tool" */
    const char *content; /* UTF-8                                 */
} ImpChatMessage;

/* Which chat format tmpl means for this model: a family name ("chatml", "llama3", "gemma", ...,
 * "none" for plain text) or "auto" / NULL for the model's own template, detected from its GGUF.
 * A model whose file has no template (a base model) resolves to "none": its prompts are plain
 * completions. Returns the family's name (static storage), or NULL for an unknown name. When
 * why is non-NULL it receives a one-line explanation ("picked chatml (found ...)"). */
const char *imp_chat_format(ImpModel model, const char *tmpl, char *why, size_t why_cap);

/* Renders a conversation in the format imp_chat_format(model, tmpl) names. add_assistant opens
 * the assistant's turn (the prompt for generation). out gets up to cap - 1 bytes and a NUL,
 * *len the full length; IMP_ERR_RANGE when it did not fit. BOS is not included (imp_generate /
 * imp_tokenize add it as the tokenizer does). */
ImpStatus imp_chat_apply(ImpModel model, const char *tmpl, const ImpChatMessage *msgs, size_t n, bool add_assistant,
                         char *out, size_t cap, size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* IMP_IMP_H */
