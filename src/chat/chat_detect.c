/*
 * Chat family detection from a GGUF's tokenizer.chat_template (a Jinja source we do not run):
 * an ordered table of rules, each a family and up to three substrings that must all occur; the
 * first rule that matches wins. The order settles overlaps the way llama.cpp's detector does
 * (phi4 before chatml since Phi-4 also uses <|im_start|>; the Mistral rules, which tell the
 * variants apart by their spacing around [INST], before the generic [INST] of Llama 2).
 * The primary marker -- the one reported -- is the first of a rule's list.
 */
#include "chat/chat_internal.h"

#include <stdio.h>
#include <string.h>

#include "base/mem.h"

typedef struct chat_rule {
    imp_chat_family family;
    const char *markers[3]; /* all must occur; unused entries NULL */
} chat_rule;

static const chat_rule k_rules[] = {
    {IMP_CHAT_PHI4, {"<|im_sep|>"}},
    {IMP_CHAT_CHATML, {"<|im_start|>"}},
    {IMP_CHAT_MISTRAL_V7, {"[SYSTEM_PROMPT] "}}, /* Large 2411: '[SYSTEM_PROMPT] ' + ... */
    {IMP_CHAT_MISTRAL_V7_TEKKEN, {"[SYSTEM_PROMPT]"}},
    {IMP_CHAT_MISTRAL_V1, {"' [INST] ' + system_message"}},
    {IMP_CHAT_MISTRAL_V1, {" [INST]", "[AVAILABLE_TOOLS]"}},
    {IMP_CHAT_MISTRAL_V3_TEKKEN, {"\"[INST]\"", "[AVAILABLE_TOOLS]"}},
    {IMP_CHAT_MISTRAL_V3, {"[AVAILABLE_TOOLS]"}},
    {IMP_CHAT_LLAMA2, {"<<SYS>>", "[INST]"}},
    {IMP_CHAT_MISTRAL_V1, {"[INST]"}}, /* pre-v1 Mistral templates: the nearest family */
    {IMP_CHAT_PHI3, {"<|assistant|>", "<|end|>"}},
    {IMP_CHAT_GEMMA, {"<start_of_turn>"}},
    {IMP_CHAT_LLAMA31, {"Cutting Knowledge Date", "<|start_header_id|>"}},
    {IMP_CHAT_LLAMA3, {"<|start_header_id|>", "<|end_header_id|>"}},
    {IMP_CHAT_DEEPSEEK_R1, {"<｜Assistant｜>", "<｜User｜>"}},
    {IMP_CHAT_NEMOTRON_V2, {"<SPECIAL_11>"}},
    {IMP_CHAT_NEMOTRON, {"<extra_id_1>"}},
};

static bool rule_matches(const chat_rule *r, const char *tmpl, size_t len) {
    for (size_t k = 0; k < IMP_ARRAY_LEN(r->markers) && r->markers[k]; k++) {
        if (imp_chat_find(tmpl, len, r->markers[k]) == (size_t)-1) return false;
    }
    return true;
}

imp_chat_detection imp_chat_detect(const char *tmpl, size_t len) {
    imp_chat_detection d = {IMP_CHAT_CHATML, NULL, true, false};
    if (!tmpl || len == 0) {
        d.no_template = true;
        return d;
    }
    /* A template that is just a family name (llama.cpp accepts those too). */
    char name[32];
    if (len < sizeof name && !memchr(tmpl, '\0', len)) {
        memcpy(name, tmpl, len);
        name[len] = '\0';
        imp_chat_family f;
        if (imp_chat_family_from_name(name, &f, NULL) == IMP_OK && f != IMP_CHAT_AUTO) {
            d.family = f;
            d.marker = imp_chat_family_name(f);
            d.fallback = false;
            return d;
        }
    }
    for (size_t i = 0; i < IMP_ARRAY_LEN(k_rules); i++) {
        if (rule_matches(&k_rules[i], tmpl, len)) {
            d.family = k_rules[i].family;
            d.marker = k_rules[i].markers[0];
            d.fallback = false;
            return d;
        }
    }
    return d;
}

char *imp_chat_detection_describe(const imp_chat_detection *d, char *buf, size_t size) {
    if (!buf || size == 0) return buf;
    if (!d) {
        snprintf(buf, size, "no detection");
    } else if (d->no_template) {
        snprintf(buf, size, "no chat template in the model; using %s",
                 imp_chat_family_name(d->family));
    } else if (d->fallback) {
        snprintf(buf, size, "no recognisable marker in the chat template; using %s",
                 imp_chat_family_name(d->family));
    } else {
        snprintf(buf, size, "picked %s (found \"%s\")", imp_chat_family_name(d->family),
                 d->marker ? d->marker : "?");
    }
    return buf;
}
