/* imp-cli --tokenize / --tokenize-file / --detokenize / --chat-render: the tokenizer and chat
 * template of a model's vocabulary. */
#ifndef IMP_CLI_TOKENIZE_H
#define IMP_CLI_TOKENIZE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cli_tok_opts {
    const char *model;         /* GGUF (a vocabulary-only file is enough)               */
    const char *text;          /* --tokenize TEXT                                       */
    const char *text_file;     /* --tokenize-file F: the file's bytes exactly           */
    const char *detok;         /* --detokenize 1,2,3                                    */
    const char *detok_file;    /* --detokenize-file F: ids separated by spaces/commas   */
    bool ids_only;             /* --ids: one line of space-separated ids                */
    bool add_bos;              /* --add-bos                                             */
    bool parse_special;        /* --parse-special                                       */
    bool show_special;         /* --show-special: render control tokens when detokenizing */
    const char *chat_user;     /* --chat-render TEXT: the prompt a user turn makes         */
    const char *chat_system;   /* --system TEXT: a system message before it               */
    const char *chat_template; /* --chat-template NAME (default auto)                     */
} cli_tok_opts;

/* Reads a whole file (binary, NUL-terminated after the n bytes). NULL with a message on stderr
 * when it cannot be read or is over 1 GiB. */
char *imp_cli_read_file(const char *path, size_t *n);

/* Returns a process exit code: 0 ok, 1 error (message on stderr), 2 bad usage. */
int imp_cli_tokenize(const cli_tok_opts *o);

#endif
