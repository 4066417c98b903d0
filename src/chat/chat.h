/*
 * Chat templates: turn a conversation (role + content messages) into the prompt text a model
 * was trained on, and pick the right format from the GGUF's tokenizer.chat_template.
 *
 *   imp_chat_detection d = imp_chat_detect(tmpl.ptr, tmpl.len);   // from the GGUF, or NULL, 0
 *   char buf[256]; imp_chat_detection_describe(&d, buf, sizeof buf); // "picked chatml (found ..."
 *   imp_chat_msg msgs[] = {{"system", "Be brief."}, {"user", "Hi"}};
 *   char *prompt; size_t len;
 *   if (imp_chat_render(d.family, msgs, 2, true, &prompt, &len, &err) == IMP_OK) { ...;
 * free(prompt); }
 *
 * Families, not a Jinja interpreter (a Jinja subset may come later): each family is one
 * hand-written renderer that reproduces, byte for byte, what the named model's own template
 * produces under Hugging Face's apply_chat_template (jinja2 with trim_blocks/lstrip_blocks) for
 * messages of the roles below. docs/chat.md lists every family, the template it reproduces, its
 * detection markers and its choices where the template has none (tool messages, a system message
 * in a model without one). The output never contains the BOS token text at its start: the
 * tokenizer adds BOS according to the vocab's add_bos flag, as llama.cpp does. Special-token text
 * inside the prompt ("<|im_start|>", "</s>", ...) is meant to be tokenized as special tokens.
 *
 * Thread safety: every function here is pure (no globals, no state); call from any thread.
 */
#ifndef IMP_CHAT_CHAT_H
#define IMP_CHAT_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

/* One message. role: "system", "user", "assistant" or "tool" (exact, lowercase). content: UTF-8,
 * NUL-terminated; NULL means "". tool_call_id: for "tool" messages, the id of the call answered
 * (OpenAI's tool_call_id); only the Mistral v3/v7-tekken families print it (and need it);
 * NULL elsewhere is fine. Nothing is copied or kept. */
typedef struct imp_chat_msg {
    const char *role;
    const char *content;
    const char *tool_call_id;
} imp_chat_msg;

/* Families, named as llama.cpp names them where it has the same format. */
typedef enum imp_chat_family {
    IMP_CHAT_AUTO = -1,         /* "auto": resolve with imp_chat_detect before rendering      */
    IMP_CHAT_NONE = 0,          /* contents joined by a blank line; no roles, no markers      */
    IMP_CHAT_CHATML,            /* <|im_start|>role\n...<|im_end|>\n (Qwen, SmolLM, Hermes)  */
    IMP_CHAT_LLAMA2,            /* Llama-2-chat: [INST] <<SYS>>\n..\n<</SYS>>\n\n.. [/INST]   */
    IMP_CHAT_LLAMA3,            /* Meta-Llama-3-Instruct headers                              */
    IMP_CHAT_LLAMA31,           /* Llama 3.1/3.2: + "Cutting Knowledge Date" system preamble  */
    IMP_CHAT_MISTRAL_V1,        /* " [INST] .. [/INST]" (Mistral 7B v0.1/v0.2, Mixtral 8x7B)  */
    IMP_CHAT_MISTRAL_V3,        /* "[INST] ..[/INST]" (Mistral 7B v0.3, Large 2407)           */
    IMP_CHAT_MISTRAL_V3_TEKKEN, /* "[INST]..[/INST]" (Mistral Nemo 2407)                      */
    IMP_CHAT_MISTRAL_V7,        /* [SYSTEM_PROMPT] .. (Mistral Large 2411)                    */
    IMP_CHAT_MISTRAL_V7_TEKKEN, /* [SYSTEM_PROMPT].. (Mistral Small 3.x)                      */
    IMP_CHAT_GEMMA,             /* <start_of_turn>user\n...<end_of_turn>\n (Gemma 1/2/3)      */
    IMP_CHAT_PHI3,              /* <|user|>\n...<|end|>\n (Phi-3, Phi-3.5)                     */
    IMP_CHAT_PHI4,              /* <|im_start|>user<|im_sep|>...<|im_end|> (Phi-4)             */
    IMP_CHAT_DEEPSEEK_R1, /* <｜User｜>..<｜Assistant｜> (DeepSeek-R1 and R1-Distill)      */
    IMP_CHAT_NEMOTRON,    /* <extra_id_1>User\n... (Nemotron-4, Nemotron-Mini, Minitron) */
    IMP_CHAT_NEMOTRON_V2, /* <SPECIAL_11>User\n... (Nemotron Nano 2, reasoning)         */
    IMP_CHAT_FAMILY_COUNT
} imp_chat_family;

/* The family's name ("chatml", "mistral-v3-tekken", "auto" for IMP_CHAT_AUTO); "?" if out of
 * range. Static storage. */
const char *imp_chat_family_name(imp_chat_family f);

/* Parses a family name: any name imp_chat_family_name returns (including "auto") or an alias
 * ("mistral" = mistral-v3, "deepseek_r1" = deepseek-r1; docs/chat.md lists them). Unknown or NULL
 * name: IMP_ERR_INVALID_ARG with a message that lists the known names. */
imp_status imp_chat_family_from_name(const char *name, imp_chat_family *out, imp_error *err);

/* Comma-separated list of every family name, for usage messages. Static storage. */
const char *imp_chat_family_names(void);

/* What imp_chat_detect decided. */
typedef struct imp_chat_detection {
    imp_chat_family family; /* never IMP_CHAT_AUTO                                           */
    const char *marker;     /* the text found in the template that decided (static), or NULL */
    bool fallback;          /* nothing recognised (or no template): family is chatml         */
    bool no_template;       /* the template was NULL or empty                                */
} imp_chat_detection;

/* Picks a family from recognisable markers in a Jinja chat template (the GGUF's
 * tokenizer.chat_template; need not be NUL-terminated; may be NULL when len is 0). Rules are
 * tried in a fixed order (docs/chat.md) and the first whose markers are all present wins; a
 * template that is exactly a family name picks that family. When nothing matches, chatml with
 * fallback = true (llama.cpp's default too). Never fails. */
imp_chat_detection imp_chat_detect(const char *tmpl, size_t len);

/* Writes a one-line description for logs, e.g.
 *   picked llama3 (found "<|start_header_id|>")
 *   no recognisable marker in the chat template; using chatml
 * into buf (always NUL-terminated when size > 0; truncated if short). Returns buf. */
char *imp_chat_detection_describe(const imp_chat_detection *d, char *buf, size_t size);

/* Renders msgs[0..n) in the family's format. add_generation_prompt appends the opening of an
 * assistant turn where the family's template does (several templates ignore the flag; see
 * docs/chat.md). On success *out is a malloc'd NUL-terminated string of *out_len bytes (the
 * caller frees it with free() or imp_chat_free) and IMP_OK is returned. Fails, with *out = NULL
 * and a message naming the message index, on: n == 0 or msgs NULL, a NULL or unknown role,
 * content that is not valid UTF-8, family IMP_CHAT_AUTO or out of range, a tool message without
 * tool_call_id in a family that prints it (IMP_ERR_INVALID_ARG), allocation failure
 * (IMP_ERR_NOMEM). */
imp_status imp_chat_render(imp_chat_family family, const imp_chat_msg *msgs, size_t n,
                           bool add_generation_prompt, char **out, size_t *out_len, imp_error *err);

/* Frees a string from imp_chat_render (NULL is fine). */
void imp_chat_free(char *s);

#endif
