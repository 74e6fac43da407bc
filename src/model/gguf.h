/*
 * gguf.h - a validating reader of GGUF files (versions 2 and 3), over bytes in memory.
 *
 * Layout (all integers little-endian):
 *
 *     u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *     n_kv x  { string key | u32 value_type | value }
 *     n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 type | u64 offset }
 *     padding to `alignment` (general.alignment, default 32)
 *     tensor data; each tensor at data_start + offset, offset a multiple of alignment
 *
 *     string = u64 length | bytes (UTF-8, not NUL-terminated)
 *     value  = u8 i8 u16 i16 u32 i32 f32 bool(u8) string | u64 i64 f64
 *            | array: u32 element_type | u64 count | count x element (arrays may nest)
 *
 * Version 1 (32-bit counts) is obsolete and refused. The parser checks every length, count
 * and offset against the bytes that remain before using it, never allocates by an
 * unchecked count, and names the offset, key or tensor in each error. Tensor data is not
 * copied: each tensor points into the caller's buffer, which must outlive the ar_gguf.
 */
#ifndef AR_MODEL_GGUF_H
#define AR_MODEL_GGUF_H

#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    AR_GGUF_U8 = 0,
    AR_GGUF_I8 = 1,
    AR_GGUF_U16 = 2,
    AR_GGUF_I16 = 3,
    AR_GGUF_U32 = 4,
    AR_GGUF_I32 = 5,
    AR_GGUF_F32 = 6,
    AR_GGUF_BOOL = 7,
    AR_GGUF_STRING = 8,
    AR_GGUF_ARRAY = 9,
    AR_GGUF_U64 = 10,
    AR_GGUF_I64 = 11,
    AR_GGUF_F64 = 12,
    AR_GGUF_NTYPES
};

#define AR_GGUF_DEFAULT_ALIGNMENT 32
#define AR_GGUF_MAX_DIMS          4
#define AR_GGUF_MAX_NAME          256   /* bytes in a tensor name */
#define AR_GGUF_MAX_KEY           65535 /* bytes in a metadata key */
#define AR_GGUF_MAX_NESTING       16    /* arrays of arrays of ... */

/* A metadata value, pointing into the file. */
typedef struct ar_gguf_value {
    uint32_t type;       /* AR_GGUF_* */
    uint32_t elem_type;  /* arrays: the element type */
    uint64_t count;      /* arrays: the element count; strings: the byte length */
    const uint8_t *data; /* scalars: the value; strings: the bytes; arrays: the elements */
    uint64_t size;       /* bytes at data */
    uint64_t offset;     /* file offset of the value */
    uint64_t *str_index; /* arrays of strings: offset (relative to data) of element i */
} ar_gguf_value;

typedef struct ar_gguf_kv {
    char *key; /* NUL-terminated copy, valid UTF-8 */
    ar_gguf_value value;
} ar_gguf_kv;

typedef struct ar_gguf_tensor {
    char *name; /* NUL-terminated copy, valid UTF-8 */
    uint32_t n_dims;
    int64_t ne[AR_GGUF_MAX_DIMS]; /* unused dimensions are 1 */
    uint32_t type;                /* a supported ar_type */
    uint64_t offset;              /* relative to the data section */
    uint64_t n_elements;
    uint64_t n_bytes;
    const uint8_t *data;
    uint64_t info_offset; /* file offset of this tensor's info record (for messages) */
} ar_gguf_tensor;

typedef struct ar_gguf {
    uint32_t version;
    uint32_t alignment;
    uint64_t n_kv;
    ar_gguf_kv *kv;
    uint64_t n_tensors;
    ar_gguf_tensor *tensors;
    uint64_t data_offset; /* file offset of the data section */
    const uint8_t *file;
    size_t file_size;
} ar_gguf;

/* Parse and validate `size` bytes. On failure g is left empty (safe to ar_gguf_free). */
ar_status ar_gguf_parse(ar_gguf *g, const uint8_t *data, size_t size, ar_err *err);

void ar_gguf_free(ar_gguf *g);

/* True when the bytes start with the GGUF magic. */
bool ar_gguf_has_magic(const uint8_t *data, size_t size);

/* The name of a value type ("u32", "string", "array"), "?" when invalid. */
const char *ar_gguf_type_name(uint32_t type);

/* The entry for `key`, or NULL. */
const ar_gguf_kv *ar_gguf_find(const ar_gguf *g, const char *key);

/* Typed getters. Each returns AR_ERR_NOT_FOUND when the key is absent (err untouched) and
 * AR_ERR_FORMAT, naming the key and the types, when it has another type. Integers accept
 * any integer type whose value fits; floats accept f32 and f64. */
ar_status ar_gguf_get_int(const ar_gguf *g, const char *key, int64_t *out, ar_err *err);
ar_status ar_gguf_get_float(const ar_gguf *g, const char *key, double *out, ar_err *err);
ar_status ar_gguf_get_bool(const ar_gguf *g, const char *key, bool *out, ar_err *err);
ar_status ar_gguf_get_str(const ar_gguf *g, const char *key, const char **s, uint64_t *len,
                          ar_err *err);
/* An array entry of element type elem_type (AR_GGUF_NTYPES = any). */
ar_status ar_gguf_get_array(const ar_gguf *g, const char *key, uint32_t elem_type,
                            const ar_gguf_value **out, ar_err *err);

/* Element i of an array of strings (bounds-checked by the caller: i < count). */
void ar_gguf_array_str(const ar_gguf_value *arr, uint64_t i, const char **s, uint64_t *len);

/* Render a value as text into buf (truncating, NUL-terminated); returns the full length. */
int64_t ar_gguf_value_text(const ar_gguf_value *v, char *buf, size_t buf_size);

#endif
