/* Shared between the GGUF reader and writer (internal to src/gguf/). */
#ifndef IMP_GGUF_INTERNAL_H
#define IMP_GGUF_INTERNAL_H

#include "gguf/gguf.h"

/* Encoded size of a scalar value type; 0 for STRING, ARRAY and unknown ids. */
uint64_t imp_gguf_scalar_size(imp_gguf_type t);

#endif
