/*
 * libFuzzer target for the imp.conf parser and loader (config files are user input). Each input
 * is loaded as a file's text and applied as a --set assignment; nothing may crash, leak or
 * trip the sanitizers. A config that loads must survive imp_config_dump -> load with every
 * value unchanged (checked here: a difference aborts, which libFuzzer reports).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    imp_config c, d;
    imp_error err = {0};
    imp_config_init(&c);
    if (imp_config_load_string(&c, (const char *)data, size, "fuzz.conf", &err) == IMP_OK) {
        char *text = NULL;
        if (imp_config_dump(&c, &text, &err) == IMP_OK) {
            imp_config_init(&d);
            if (imp_config_load_string(&d, text, strlen(text), "dump", &err) != IMP_OK ||
                memcmp(&c.v, &d.v, sizeof c.v) != 0) {
                abort(); /* a dump that does not load back to the same values is a bug */
            }
            free(text);
        }
    }
    /* the same bytes as one --set assignment */
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = 0;
        imp_config_init(&c);
        (void)imp_config_set(&c, s, IMP_CFG_FROM_SET, &err);
        free(s);
    }
    return 0;
}
