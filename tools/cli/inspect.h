/* imp-cli --inspect: print a GGUF file's metadata and tensor table without loading weights. */
#ifndef IMP_CLI_INSPECT_H
#define IMP_CLI_INSPECT_H

#include <stdbool.h>
#include <stdio.h>

/* Prints to out; errors to stderr. Returns a process exit code (0 ok, 1 bad file).
 * full_arrays: print every array element instead of the first few. */
int imp_cli_inspect(const char *path, bool full_arrays, FILE *out);

#endif
