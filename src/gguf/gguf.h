/*
 * GGUF reader and writer (format: ggml-org/ggml docs/gguf.md).
 *
 * Reader: imp_gguf_open() maps the file read-only and validates the whole header before
 * returning — magic, version (2 or 3; big-endian files are rejected with a message saying so),
 * counts, string lengths, value types, nested arrays, tensor dims/types/offsets, alignment,
 * tensor data in bounds and non-overlapping, duplicate keys and tensor names. Nothing is
 * allocated in proportion to a count before the bytes that count implies are known to exist, so
 * a hostile header cannot cause a huge allocation. Tensor data is never read by open.
 * Stricter than ggml on purpose: every dimension must be >= 1 (no empty tensors), bools must be
 * 0 or 1, keys and names must be non-empty without NUL bytes, arrays nest at most
 * IMP_GGUF_MAX_DEPTH deep. Tensor data need not be packed in order, only aligned, inside the
 * file and non-overlapping. Every failure gives a status and a one-line message naming the
 * problem and the byte offset.
 *
 * Ownership: every pointer returned by getters points into the imp_gguf (or its mapping) and
 * lives until imp_gguf_close(). Strings from the file are NOT NUL-terminated in general: use the
 * length (keys and tensor names are copied and NUL-terminated for convenience).
 *
 * Thread safety: an open imp_gguf is read-only; any number of threads may call getters.
 */
#ifndef IMP_GGUF_GGUF_H
#define IMP_GGUF_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#define IMP_GGUF_MAGIC             0x46554747u /* "GGUF" read as little-endian u32 */
#define IMP_GGUF_DEFAULT_ALIGNMENT 32
#define IMP_GGUF_MAX_DIMS          4
#define IMP_GGUF_MAX_DEPTH         8 /* arrays of arrays: deepest nesting accepted */

typedef enum imp_gguf_type {
    IMP_GGUF_UINT8 = 0,
    IMP_GGUF_INT8 = 1,
    IMP_GGUF_UINT16 = 2,
    IMP_GGUF_INT16 = 3,
    IMP_GGUF_UINT32 = 4,
    IMP_GGUF_INT32 = 5,
    IMP_GGUF_FLOAT32 = 6,
    IMP_GGUF_BOOL = 7,
    IMP_GGUF_STRING = 8,
    IMP_GGUF_ARRAY = 9,
    IMP_GGUF_UINT64 = 10,
    IMP_GGUF_INT64 = 11,
    IMP_GGUF_FLOAT64 = 12,
    IMP_GGUF_TYPE_COUNT = 13,
} imp_gguf_type;

/* "uint32", "string", "array" ...; "?" for an unknown id. */
const char *imp_gguf_type_name(imp_gguf_type t);

typedef struct imp_gguf_str {
    const char *ptr; /* into the mapping; not NUL-terminated */
    uint64_t len;
} imp_gguf_str;

/* A metadata value. Scalars are widened into the union; arrays describe their elements. */
typedef struct imp_gguf_value {
    imp_gguf_type type;
    union {
        uint64_t u64;     /* UINT8/16/32/64                                     */
        int64_t i64;      /* INT8/16/32/64                                      */
        double f64;       /* FLOAT32/64                                         */
        bool b;           /* BOOL                                               */
        imp_gguf_str str; /* STRING                                             */
        struct {
            imp_gguf_type elem_type;
            uint64_t n;                         /* element count                        */
            const void *data;                   /* numeric/bool elements: raw little-endian
                                                   bytes in the mapping (may be unaligned:
                                                   memcpy them)                          */
            const imp_gguf_str *strs;           /* STRING elements: n entries            */
            const struct imp_gguf_value *elems; /* ARRAY elements (nested): n values     */
        } arr;
    };
} imp_gguf_value;

typedef struct imp_gguf_tensor {
    const char *name;                 /* NUL-terminated copy                                  */
    uint32_t n_dims;                  /* 1..4                                                 */
    int64_t ne[IMP_GGUF_MAX_DIMS];    /* elements per dim; ne[0] is contiguous; unused dims 1 */
    uint32_t type;                    /* ggml type id (quant.h)                               */
    uint64_t offset;                  /* from the start of the data section                   */
    uint64_t size;                    /* bytes                                                */
    const void *data;                 /* into the mapping                                     */
} imp_gguf_tensor;

typedef struct imp_gguf imp_gguf;

/* Opens and validates a GGUF file. On success *out owns the mapping; on failure *out is NULL
 * and err names the problem and the byte offset. */
imp_status imp_gguf_open(const char *path, imp_gguf **out, imp_error *err);

/* Same over a caller-owned buffer (not copied; must outlive the imp_gguf). For tests/fuzzing. */
imp_status imp_gguf_open_memory(const void *data, size_t size, imp_gguf **out, imp_error *err);

void imp_gguf_close(imp_gguf *g); /* NULL is fine */

uint32_t imp_gguf_version(const imp_gguf *g);
uint64_t imp_gguf_alignment(const imp_gguf *g);
uint64_t imp_gguf_data_offset(const imp_gguf *g); /* file offset of the data section */
uint64_t imp_gguf_file_size(const imp_gguf *g);

/* Metadata, in file order. */
int64_t imp_gguf_n_kv(const imp_gguf *g);
const char *imp_gguf_kv_key(const imp_gguf *g, int64_t i);            /* NUL-terminated   */
const imp_gguf_value *imp_gguf_kv_value(const imp_gguf *g, int64_t i);
int64_t imp_gguf_find_key(const imp_gguf *g, const char *key);        /* -1 when absent   */

/* Typed getters. IMP_ERR_NOT_FOUND if the key is absent, IMP_ERR_TYPE if the value is not of a
 * compatible type (integers convert between widths and signedness when the value fits, else
 * IMP_ERR_RANGE; floats accept FLOAT32/FLOAT64), with a message naming the key and both types. */
imp_status imp_gguf_get_u32(const imp_gguf *g, const char *key, uint32_t *v, imp_error *err);
imp_status imp_gguf_get_i32(const imp_gguf *g, const char *key, int32_t *v, imp_error *err);
imp_status imp_gguf_get_u64(const imp_gguf *g, const char *key, uint64_t *v, imp_error *err);
imp_status imp_gguf_get_i64(const imp_gguf *g, const char *key, int64_t *v, imp_error *err);
imp_status imp_gguf_get_f32(const imp_gguf *g, const char *key, float *v, imp_error *err);
imp_status imp_gguf_get_bool(const imp_gguf *g, const char *key, bool *v, imp_error *err);
imp_status imp_gguf_get_str(const imp_gguf *g, const char *key, imp_gguf_str *v, imp_error *err);
/* Arrays: *v is the ARRAY value (check arr.elem_type yourself, or use the helpers below). */
imp_status imp_gguf_get_arr(const imp_gguf *g, const char *key, const imp_gguf_value **v,
                            imp_error *err);
/* Element i of a numeric array value as double / int64 (false if not numeric or out of range). */
bool imp_gguf_arr_f64(const imp_gguf_value *arr, uint64_t i, double *out);
bool imp_gguf_arr_i64(const imp_gguf_value *arr, uint64_t i, int64_t *out);

/* Tensors, in file order. */
int64_t imp_gguf_n_tensors(const imp_gguf *g);
const imp_gguf_tensor *imp_gguf_tensor_at(const imp_gguf *g, int64_t i);
int64_t imp_gguf_find_tensor(const imp_gguf *g, const char *name); /* -1 when absent */

/* ------------------------------------------------------------------------------------------ */
/* Writer: collect metadata and tensor infos, then stream the file. Produces version 3,
 * little-endian, general.alignment (default 32) honoured, tensors in the order added.
 * general.alignment must be set with set_u32 to a power of two (what gguf-py and ggml accept):
 * anything else makes imp_gguf_writer_write fail. Files load in llama.cpp and PyPI gguf.    */

typedef struct imp_gguf_writer imp_gguf_writer;

imp_gguf_writer *imp_gguf_writer_new(void); /* NULL on allocation failure */
void imp_gguf_writer_free(imp_gguf_writer *w);

/* Metadata setters; setting an existing key replaces its value. Strings are copied. */
imp_status imp_gguf_writer_set_u8(imp_gguf_writer *w, const char *key, uint8_t v);
imp_status imp_gguf_writer_set_i8(imp_gguf_writer *w, const char *key, int8_t v);
imp_status imp_gguf_writer_set_u16(imp_gguf_writer *w, const char *key, uint16_t v);
imp_status imp_gguf_writer_set_i16(imp_gguf_writer *w, const char *key, int16_t v);
imp_status imp_gguf_writer_set_u32(imp_gguf_writer *w, const char *key, uint32_t v);
imp_status imp_gguf_writer_set_i32(imp_gguf_writer *w, const char *key, int32_t v);
imp_status imp_gguf_writer_set_u64(imp_gguf_writer *w, const char *key, uint64_t v);
imp_status imp_gguf_writer_set_i64(imp_gguf_writer *w, const char *key, int64_t v);
imp_status imp_gguf_writer_set_f32(imp_gguf_writer *w, const char *key, float v);
imp_status imp_gguf_writer_set_f64(imp_gguf_writer *w, const char *key, double v);
imp_status imp_gguf_writer_set_bool(imp_gguf_writer *w, const char *key, bool v);
imp_status imp_gguf_writer_set_str(imp_gguf_writer *w, const char *key, const char *s);
/* Array of n numeric/bool elements of elem_type, packed little-endian in data. */
imp_status imp_gguf_writer_set_arr(imp_gguf_writer *w, const char *key, imp_gguf_type elem_type,
                                   const void *data, uint64_t n);
/* Array of n NUL-terminated strings. */
imp_status imp_gguf_writer_set_arr_str(imp_gguf_writer *w, const char *key,
                                       const char *const *strs, uint64_t n);
/* Copies a value (any type, nested arrays too) read from another file: lets tools carry
 * metadata over unchanged. */
imp_status imp_gguf_writer_set_value(imp_gguf_writer *w, const char *key,
                                     const imp_gguf_value *v);

/* Declares a tensor (in file order). data: its bytes (not copied; must stay valid until the
 * file is written), or NULL to have the fill callback produce them while writing. The size is
 * computed from type and shape; every ne[d] must be >= 1 and ne[0] a multiple of the type's
 * block size; names are 1..63 bytes (ggml's limit) and unique. */
imp_status imp_gguf_writer_add_tensor(imp_gguf_writer *w, const char *name, uint32_t type,
                                      uint32_t n_dims, const int64_t *ne, const void *data,
                                      imp_error *err);

/* Produces the bytes of tensor `index` (as added) into buf: `size` bytes, the whole tensor.
 * Returns IMP_OK or an error that aborts the write. */
typedef imp_status (*imp_gguf_fill_fn)(void *user, int64_t index, void *buf, uint64_t size,
                                       imp_error *err);

/* Writes the file (to path.tmp, then renamed over path, so a failed write never leaves a
 * half-written file under the final name). fill may be NULL if every tensor has data. */
imp_status imp_gguf_writer_write(imp_gguf_writer *w, const char *path, imp_gguf_fill_fn fill,
                                 void *user, imp_error *err);

#endif
