/*
 * One renderer per chat family and the family table. Each renderer reproduces what the named
 * model's own Jinja template emits under Hugging Face's apply_chat_template (jinja2,
 * trim_blocks + lstrip_blocks), minus the BOS token text at the very start; the comment above
 * each names the template. Messages arrive validated and already mapped (tool -> user, later
 * system -> user) for the families whose table row says so. Where a template would raise
 * (roles not alternating, say) the renderers still produce the obvious output.
 */
#include "chat/chat_internal.h"

#include <string.h>

#define PUT(lit) imp_chat_buf_putn(b, (lit), sizeof(lit) - 1)

static void put_text(imp_chat_buf *b, const imp_chat_item *m) {
    imp_chat_buf_putn(b, m->text, m->len);
}
static void put_strip(imp_chat_buf *b, const imp_chat_item *m) {
    imp_chat_put_strip(b, m->text, m->len);
}
static void put_role(imp_chat_buf *b, const imp_chat_item *m) {
    imp_chat_buf_put(b, imp_chat_role_name(m->role));
}

/* The system message, when it is the first message (most templates only look there). */
static const imp_chat_item *first_system(const imp_chat_item *m, size_t n, size_t *first) {
    *first = n > 0 && m[0].role == IMP_CHAT_ROLE_SYSTEM ? 1 : 0;
    return *first ? &m[0] : NULL;
}

/* none: no template; contents joined by a blank line (a lone message is exactly its content). */
static imp_status render_none(imp_chat_buf *b, const imp_chat_item *m, size_t n, bool gen,
                              imp_error *err) {
    for (size_t i = 0; i < n; i++) {
        if (i) PUT("\n\n");
        put_text(b, &m[i]);
    }
    return IMP_OK;
}

/* chatml: teknium/OpenHermes-2.5 and SmolLM2-Instruct (minus SmolLM2's default system turn). */
static imp_status render_chatml(imp_chat_buf *b, const imp_chat_item *m, size_t n, bool gen,
                                imp_error *err) {
    for (size_t i = 0; i < n; i++) {
        PUT("<|im_start|>");
        put_role(b, &m[i]);
        PUT("\n");
        put_text(b, &m[i]);
        PUT("<|im_end|>\n");
    }
    if (gen) PUT("<|im_start|>assistant\n");
    return IMP_OK;
}

/* llama2: meta-llama/Llama-2-7b-chat-hf. The system block joins the first message before
 * .strip(); every user turn but a leading one starts with the BOS text "<s>". No generation
 * prompt (the template has none: "[/INST]" already hands over). */
static imp_status render_llama2(imp_chat_buf *b, const imp_chat_item *m, size_t n, bool gen,
                                imp_error *err) {
    size_t first;
    const imp_chat_item *sys = first_system(m, n, &first);
    for (size_t i = first; i < n; i++) {
        imp_chat_buf tmp = {0};
        const char *c = m[i].text;
        size_t len = m[i].len;
        if (i == first && sys) {
            imp_chat_buf_put(&tmp, "<<SYS>>\n");
            imp_chat_buf_putn(&tmp, sys->text, sys->len);
            imp_chat_buf_put(&tmp, "\n<</SYS>>\n\n");
            imp_chat_buf_putn(&tmp, m[i].text, m[i].len);
            if (tmp.failed) b->failed = true;
            c = tmp.p ? tmp.p : "";
            len = tmp.len;
        }
        if (m[i].role == IMP_CHAT_ROLE_ASSISTANT) {
            PUT(" ");
            imp_chat_put_strip(b, c, len);
            PUT(" </s>");
        } else {
            if (b->len > 0) PUT("<s>");
            PUT("[INST] ");
            imp_chat_put_strip(b, c, len);
            PUT(" [/INST]");
        }
        imp_chat_buf_free(&tmp);
    }
    return IMP_OK;
}

/* llama3: meta-llama/Meta-Llama-3-8B-Instruct (roles printed as given, "tool" included). */
static imp_status render_llama3(imp_chat_buf *b, const imp_chat_item *m, size_t n, bool gen,
                                imp_error *err) {
    for (size_t i = 0; i < n; i++) {
        PUT("<|start_header_id|>");
        put_role(b, &m[i]);
        PUT("<|end_header_id|>\n\n");
        put_strip(b, &m[i]);
        PUT("<|eot_id|>");
    }
    if (gen) PUT("<|start_header_id|>assistant<|end_header_id|>\n\n");
    return IMP_OK;
}

/* llama3.1: meta-llama/Llama-3.1-8B-Instruct (= Llama-3.2-3B-Instruct without tools): a system
 * turn always, opening with the knowledge/date preamble (3.1's default date; 3.2 under
 * transformers prints today's date instead); tool results as role "ipython", content JSON-quoted
 * (the template's `tojson`, since a string "is iterable"). */
static imp_status render_llama31(imp_chat_buf *b, const imp_chat_item *m, size_t n, bool gen,
                                 imp_error *err) {
    size_t first;
    const imp_chat_item *sys = first_system(m, n, &first);
    PUT("<|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n");
    if (sys) put_strip(b, sys);
    PUT("<|eot_id|>");
    for (size_t i = first; i < n; i++) {
        if (m[i].role == IMP_CHAT_ROLE_TOOL) {
            PUT("<|start_header_id|>ipython<|end_header_id|>\n\n");
            imp_chat_put_json(b, m[i].text, m[i].len);
        } else {
            PUT("<|start_header_id|>");
            put_role(b, &m[i]);
            PUT("<|end_header_id|>\n\n");
            put_strip(b, &m[i]);
        }
        PUT("<|eot_id|>");
    }
    if (gen) PUT("<|start_header_id|>assistant<|end_header_id|>\n\n");
    return IMP_OK;
}

/* mistral-v1: Mistral's official "v1" template (Mistral-7B-Instruct-v0.2 with a system prompt):
 * the system message joins the first user turn. No generation prompt. */
static imp_status render_mistral_v1(imp_chat_buf *b, const imp_chat_item *m, size_t n, bool gen,
                                    imp_error *err) {
    size_t first;
    const imp_chat_item *sys = first_system(m, n, &first);
    for (size_t i = first; i < n; i++) {
        if (m[i].role == IMP_CHAT_ROLE_ASSISTANT) {
            PUT(" ");
            put_text(b, &m[i]);
            PUT("</s>");
        } else {
            PUT(" [INST] ");
            if (i == first && sys) {
                put_text(b, sys);
                PUT("\n\n");
            }
            put_text(b, &m[i]);
            PUT(" [/INST]");
        }
    }
    return IMP_OK;
}

/* Tool results in the Mistral families that have them: OPEN + content + `, "call_id": "ID"}`
 * + "[/TOOL_RESULTS]". The content goes in as it is (the templates' `content|string`). */
static imp_status put_mistral_tool(imp_chat_buf *b, const imp_chat_item *m, size_t idx,
                                   const char *open, bool last9, imp_error *err) {
    if (!m->tool_call_id || !m->tool_call_id[0]) {
        return imp_error_set(err, IMP_ERR_INVALID_ARG,
                             "message %zu (tool): this chat family prints the tool_call_id, and "
                             "the message has none",
                             idx);
    }
    const char *id = m->tool_call_id;
    size_t len = strlen(id);
    if (last9) { /* Python's id[-9:]: the last 9 code points */
        size_t start = len, cps = 0;
        while (start > 0 && cps < 9) {
            start--;
            if (((unsigned char)id[start] & 0xC0) != 0x80) cps++;
        }
        id += start;
        len -= start;
    }
    imp_chat_buf_put(b, open);
    put_text(b, m);
    PUT(", \"call_id\": \"");
    imp_chat_buf_putn(b, id, len);
    PUT("\"}[/TOOL_RESULTS]");
    return IMP_OK;
}

/* mistral-v3 and -v3-tekken: Mistral-Large-Instruct-2407 and Mistral-Nemo-Instruct-2407. The
 * system message goes in front of the LAST message when that one is a user message (and is not
 * shown otherwise), as the official templates do. No generation prompt. */
static imp_status render_mistral_v3_any(imp_chat_buf *b, const imp_chat_item *m, size_t n,
                                        bool tekken, imp_error *err) {
    size_t first;
    const imp_chat_item *sys = first_system(m, n, &first);
    for (size_t i = first; i < n; i++) {
        switch (m[i].role) {
        case IMP_CHAT_ROLE_ASSISTANT:
            if (tekken) {
                put_text(b, &m[i]);
            } else {
                PUT(" ");
                put_strip(b, &m[i]);
            }
            PUT("</s>");
            break;
        case IMP_CHAT_ROLE_TOOL: {
            const char *open =
                tekken ? "[TOOL_RESULTS]{\"content\": " : "[TOOL_RESULTS] {\"content\": ";
            imp_status st = put_mistral_tool(b, &m[i], i, open, false, err);
            if (st != IMP_OK) return st;
            break;
        }
        default:
            imp_chat_buf_put(b, tekken ? "[INST]" : "[INST] ");
            if (i == n - 1 && sys) {
                put_text(b, sys);
                PUT("\n\n");
            }
            put_text(b, &m[i]);
            PUT("[/INST]");
        }
    }
    return IMP_OK;
}

static imp_status render_mistral_v3(imp_chat_buf *b, const imp_chat_item *m, size_t n, bool gen,
                                    imp_error *err) {
    return render_mistral_v3_any(b, m, n, false, err);
}

static imp_status render_mistral_v3_tekken(imp_chat_buf *b, const imp_chat_item *m, size_t n,
                                           bool gen, imp_error *err) {
    return render_mistral_v3_any(b, m, n, true, err);
}

/* mistral-v7: Mistral-Large-Instruct-2411's basic v7 template: system prompts in place. */
static imp_status render_mistral_v7(imp_chat_buf *b, const imp_chat_item *m, size_t n, bool gen,
                                    imp_error *err) {
    for (size_t i = 0; i < n; i++) {
        switch (m[i].role) {
        case IMP_CHAT_ROLE_SYSTEM:
            PUT("[SYSTEM_PROMPT] ");
            put_text(b, &m[i]);
            PUT("[/SYSTEM_PROMPT]");
            break;
        case IMP_CHAT_ROLE_ASSISTANT:
            PUT(" ");
            put_text(b, &m[i]);
            PUT("</s>");
            break;
        default:
            PUT("[INST] ");
            put_text(b, &m[i]);
            PUT("[/INST]");
        }
    }
    return IMP_OK;
}

/* mistral-v7-tekken: Mistral-Small-3.1-24B-Instruct-2503. Without a system message the template
 * inserts a long default one carrying today's date; imp inserts nothing (like llama.cpp). */
static imp_status render_mistral_v7_tekken(imp_chat_buf *b, const imp_chat_item *m, size_t n,
                                           bool gen, imp_error *err) {
    size_t first;
    const imp_chat_item *sys = first_system(m, n, &first);
    if (sys) {
        PUT("[SYSTEM_PROMPT]");
        put_text(b, sys);
        PUT("[/SYSTEM_PROMPT]");
    }
    for (size_t i = first; i < n; i++) {
        switch (m[i].role) {
        case IMP_CHAT_ROLE_ASSISTANT:
            put_text(b, &m[i]);
            PUT("</s>");
            break;
        case IMP_CHAT_ROLE_TOOL: {
            imp_status st =
                put_mistral_tool(b, &m[i], i, "[TOOL_RESULTS] {\"content\": ", true, err);
            if (st != IMP_OK) return st;
            break;
        }
        default:
            PUT("[INST]");
            put_text(b, &m[i]);
            PUT("[/INST]");
        }
    }
    return IMP_OK;
}

/* gemma: google/gemma-3-*-it (Gemma 1/2 are the same without a system message): the system
 * message, untrimmed plus a blank line, opens the first turn; contents are trimmed; the assistant
 * is "model". */
static imp_status render_gemma(imp_chat_buf *b, const imp_chat_item *m, size_t n, bool gen,
                               imp_error *err) {
    size_t first;
    const imp_chat_item *sys = first_system(m, n, &first);
    for (size_t i = first; i < n; i++) {
        PUT("<start_of_turn>");
        imp_chat_buf_put(b, m[i].role == IMP_CHAT_ROLE_ASSISTANT ? "model" : "user");
        PUT("\n");
        if (i == first && sys) {
            put_text(b, sys);
            PUT("\n\n");
        }
        put_strip(b, &m[i]);
        PUT("<end_of_turn>\n");
    }
    if (gen) PUT("<start_of_turn>model\n");
    return IMP_OK;
}

/* phi3: microsoft/Phi-3.5-mini-instruct. An empty system message is skipped; without the
 * generation prompt the template ends with the EOS text. */
static imp_status render_phi3(imp_chat_buf *b, const imp_chat_item *m, size_t n, bool gen,
                              imp_error *err) {
    for (size_t i = 0; i < n; i++) {
        if (m[i].role == IMP_CHAT_ROLE_SYSTEM && m[i].len == 0) continue;
        PUT("<|");
        put_role(b, &m[i]);
        PUT("|>\n");
        put_text(b, &m[i]);
        PUT("<|end|>\n");
    }
    if (gen) {
        PUT("<|assistant|>\n");
    } else {
        PUT("<|endoftext|>");
    }
    return IMP_OK;
}

/* phi4: microsoft/phi-4. Every user turn opens the assistant turn after it, so the flag changes
 * nothing (the template ignores add_generation_prompt). */
static imp_status render_phi4(imp_chat_buf *b, const imp_chat_item *m, size_t n, bool gen,
                              imp_error *err) {
    for (size_t i = 0; i < n; i++) {
        switch (m[i].role) {
        case IMP_CHAT_ROLE_SYSTEM:
            PUT("<|im_start|>system<|im_sep|>");
            put_text(b, &m[i]);
            PUT("<|im_end|>");
            break;
        case IMP_CHAT_ROLE_ASSISTANT:
            put_text(b, &m[i]);
            PUT("<|im_end|>");
            break;
        default:
            PUT("<|im_start|>user<|im_sep|>");
            put_text(b, &m[i]);
            PUT("<|im_end|><|im_start|>assistant<|im_sep|>");
        }
    }
    return IMP_OK;
}

/* deepseek-r1: deepseek-ai/DeepSeek-R1 and the R1-Distill models (current revision, generation
 * prompt "<｜Assistant｜><think>\n"). The last system message goes first, bare; an assistant
 * message keeps only what follows its last "</think>"; tool outputs are grouped. */
static imp_status render_deepseek_r1(imp_chat_buf *b, const imp_chat_item *m, size_t n, bool gen,
                                     imp_error *err) {
    const imp_chat_item *sys = NULL;
    for (size_t i = 0; i < n; i++) {
        if (m[i].role == IMP_CHAT_ROLE_SYSTEM) sys = &m[i];
    }
    if (sys) put_text(b, sys);
    bool in_tool = false, first_output = true;
    for (size_t i = 0; i < n; i++) {
        const imp_chat_item *x = &m[i];
        if (x->role == IMP_CHAT_ROLE_USER) {
            in_tool = false;
            PUT("<｜User｜>");
            put_text(b, x);
        } else if (x->role == IMP_CHAT_ROLE_ASSISTANT && in_tool) {
            PUT("<｜tool▁outputs▁end｜>");
            put_text(b, x);
            PUT("<｜end▁of▁sentence｜>");
            in_tool = false;
        } else if (x->role == IMP_CHAT_ROLE_ASSISTANT) {
            size_t at = imp_chat_rfind(x->text, x->len, "</think>");
            size_t skip = at == (size_t)-1 ? 0 : at + strlen("</think>");
            PUT("<｜Assistant｜>");
            imp_chat_buf_putn(b, x->text + skip, x->len - skip);
            PUT("<｜end▁of▁sentence｜>");
        } else if (x->role == IMP_CHAT_ROLE_TOOL) {
            in_tool = true;
            if (first_output) {
                PUT("<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>");
                first_output = false;
            } else {
                PUT("\n<｜tool▁output▁begin｜>");
            }
            put_text(b, x);
            PUT("<｜tool▁output▁end｜>");
        }
    }
    if (in_tool) PUT("<｜tool▁outputs▁end｜>");
    if (gen && !in_tool) PUT("<｜Assistant｜><think>\n");
    return IMP_OK;
}

/* nemotron: nvidia/Nemotron-Mini-4B-Instruct (= Hymba-1.5B-Instruct; Nemotron-4 and Minitron
 * instruct use the same turns): every system message, stripped, goes into the System header. */
static imp_status render_nemotron(imp_chat_buf *b, const imp_chat_item *m, size_t n, bool gen,
                                  imp_error *err) {
    static const char *const k_turn[IMP_CHAT_ROLE_COUNT] = {
        NULL, "<extra_id_1>User\n", "<extra_id_1>Assistant\n", "<extra_id_1>Tool\n"};
    PUT("<extra_id_0>System");
    for (size_t i = 0; i < n; i++) {
        if (m[i].role != IMP_CHAT_ROLE_SYSTEM) continue;
        PUT("\n");
        put_strip(b, &m[i]);
    }
    PUT("\n\n");
    for (size_t i = 0; i < n; i++) {
        if (!k_turn[m[i].role]) continue;
        imp_chat_buf_put(b, k_turn[m[i].role]);
        put_strip(b, &m[i]);
        PUT("\n");
    }
    if (gen) PUT("<extra_id_1>Assistant\n");
    return IMP_OK;
}

/* Appends strip(text with "/think" then "/no_think" removed), the v2 template's user cleanup. */
static void put_nemotron_v2_user(imp_chat_buf *b, const imp_chat_item *m) {
    imp_chat_buf t1 = {0}, t2 = {0};
    imp_chat_put_without(&t1, m->text, m->len, "/think");
    imp_chat_put_without(&t2, t1.p ? t1.p : "", t1.len, "/no_think");
    if (t1.failed || t2.failed) b->failed = true;
    imp_chat_put_strip(b, t2.p ? t2.p : "", t2.len);
    imp_chat_buf_free(&t1);
    imp_chat_buf_free(&t2);
}

/* nemotron-v2: nvidia/NVIDIA-Nemotron-Nano-9B-v2 (and 12B-v2). "/think" or "/no_think" in a
 * user or system message (the last one wins) picks "<think>\n\n" or "<think></think>"; a
 * trailing assistant message is moved after that tag; earlier assistant messages keep the text
 * between their first and second "</think>". */
static imp_status render_nemotron_v2(imp_chat_buf *b, const imp_chat_item *m, size_t n, bool gen,
                                     imp_error *err) {
    bool think = true;
    for (size_t i = 0; i < n; i++) {
        if (m[i].role != IMP_CHAT_ROLE_USER && m[i].role != IMP_CHAT_ROLE_SYSTEM) continue;
        if (imp_chat_find(m[i].text, m[i].len, "/think") != (size_t)-1) {
            think = true;
        } else if (imp_chat_find(m[i].text, m[i].len, "/no_think") != (size_t)-1) {
            think = false;
        }
    }
    size_t first;
    const imp_chat_item *sys = first_system(m, n, &first);
    PUT("<SPECIAL_10>System\n");
    if (sys) put_nemotron_v2_user(b, sys);
    PUT("\n\n");
    size_t end = n;
    const imp_chat_item *last = NULL;
    if (end > first && m[end - 1].role == IMP_CHAT_ROLE_ASSISTANT) last = &m[--end];
    for (size_t i = first; i < end; i++) {
        const imp_chat_item *x = &m[i];
        if (x->role == IMP_CHAT_ROLE_USER) {
            PUT("<SPECIAL_11>User\n");
            put_nemotron_v2_user(b, x);
            PUT("\n");
        } else if (x->role == IMP_CHAT_ROLE_TOOL) {
            bool prev_tool = i > first && m[i - 1].role == IMP_CHAT_ROLE_TOOL;
            bool next_tool = i + 1 < end && m[i + 1].role == IMP_CHAT_ROLE_TOOL;
            if (!prev_tool) PUT("<SPECIAL_11>User\n<TOOL_RESPONSE>[");
            put_text(b, x);
            if (next_tool) {
                PUT(", ");
            } else {
                PUT("]</TOOL_RESPONSE>\n\n");
            }
        } else if (x->role == IMP_CHAT_ROLE_ASSISTANT) {
            const char *c = x->text;
            size_t len = x->len, at = imp_chat_find(c, len, "</think>");
            if (at != (size_t)-1) { /* content.split('</think>')[1] */
                c += at + strlen("</think>");
                len -= at + strlen("</think>");
                size_t next = imp_chat_find(c, len, "</think>");
                if (next != (size_t)-1) len = next;
            }
            PUT("<SPECIAL_11>Assistant\n");
            imp_chat_put_strip(b, c, len);
            PUT("\n<SPECIAL_12>\n\n");
        }
    }
    imp_chat_buf tail = {0}; /* strip(last assistant content) */
    if (last) imp_chat_put_strip(&tail, last->text, last->len);
    if (tail.failed) b->failed = true;
    if (gen || tail.len > 0) {
        PUT("<SPECIAL_11>Assistant\n");
        if (think) {
            PUT("<think>\n\n");
        } else {
            PUT("<think></think>");
        }
        imp_chat_buf_putn(b, tail.p, tail.len);
        if (!gen) PUT("\n<SPECIAL_12>\n\n");
    }
    imp_chat_buf_free(&tail);
    return IMP_OK;
}

#define TOOL_USER IMP_CHAT_F_TOOL_AS_USER
#define LATE_SYS  IMP_CHAT_F_LATE_SYSTEM_AS_USER

const imp_chat_family_info imp_chat_families[IMP_CHAT_FAMILY_COUNT] = {
    [IMP_CHAT_NONE] = {"none", render_none, 0},
    [IMP_CHAT_CHATML] = {"chatml", render_chatml, 0},
    [IMP_CHAT_LLAMA2] = {"llama2", render_llama2, TOOL_USER | LATE_SYS},
    [IMP_CHAT_LLAMA3] = {"llama3", render_llama3, 0},
    [IMP_CHAT_LLAMA31] = {"llama3.1", render_llama31, 0},
    [IMP_CHAT_MISTRAL_V1] = {"mistral-v1", render_mistral_v1, TOOL_USER | LATE_SYS},
    [IMP_CHAT_MISTRAL_V3] = {"mistral-v3", render_mistral_v3, LATE_SYS},
    [IMP_CHAT_MISTRAL_V3_TEKKEN] = {"mistral-v3-tekken", render_mistral_v3_tekken, LATE_SYS},
    [IMP_CHAT_MISTRAL_V7] = {"mistral-v7", render_mistral_v7, TOOL_USER},
    [IMP_CHAT_MISTRAL_V7_TEKKEN] = {"mistral-v7-tekken", render_mistral_v7_tekken, LATE_SYS},
    [IMP_CHAT_GEMMA] = {"gemma", render_gemma, TOOL_USER | LATE_SYS},
    [IMP_CHAT_PHI3] = {"phi3", render_phi3, TOOL_USER},
    [IMP_CHAT_PHI4] = {"phi4", render_phi4, TOOL_USER},
    [IMP_CHAT_DEEPSEEK_R1] = {"deepseek-r1", render_deepseek_r1, 0},
    [IMP_CHAT_NEMOTRON] = {"nemotron", render_nemotron, 0},
    [IMP_CHAT_NEMOTRON_V2] = {"nemotron-v2", render_nemotron_v2, LATE_SYS},
};
