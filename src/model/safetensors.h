/*
 * safetensors.h - a validating reader of one .safetensors file, over bytes in memory.
 *
 * Layout:
 *
 *     u64 N (little-endian) | N bytes of JSON header (UTF-8) | data
 *
 *     header = { "__metadata__": {string: string, ...},          (optional)
 *                "<name>": {"dtype": "F16", "shape": [d0, d1, ...],
 *                           "data_offsets": [begin, end]}, ... }
 *
 * Offsets are relative to the start of the data; shapes are row-major (outermost first).
 * The reader applies the reference library's rules: the header is at most 100 MB, names
 * are unique, every tensor's byte range equals its element count times the dtype size,
 * and the ranges tile the data exactly (sorted, no gap, no overlap, nothing after).
 * In addition each tensor must be aligned to its element size, so it can be used in place.
 * Dtypes F32, F16 and BF16 are supported; the other dtypes of the format are named in an
 * "unsupported" error. Data is not copied.
 */
#ifndef AR_MODEL_SAFETENSORS_H
#define AR_MODEL_SAFETENSORS_H

#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AR_ST_MAX_HEADER 100000000u /* bytes, as the reference library */
#define AR_ST_MAX_DIMS   4
#define AR_ST_MAX_NAME   1024

typedef struct ar_st_tensor {
    char *name;                    /* NUL-terminated copy */
    uint32_t dtype;                /* ar_type: F32, F16 or BF16 */
    int32_t n_dims;                /* 0..4 as stored (0 = scalar) */
    int64_t shape[AR_ST_MAX_DIMS]; /* outermost first, as stored */
    uint64_t n_elements;
    uint64_t begin, end; /* relative to the data section */
    const uint8_t *data;
} ar_st_tensor;

typedef struct ar_safetensors {
    uint64_t header_size;
    uint64_t data_offset; /* 8 + header_size */
    uint64_t n_tensors;
    ar_st_tensor *tensors; /* in header order */
    char *metadata_format; /* __metadata__.format ("pt"), or NULL */
} ar_safetensors;

/* Parse and validate. `what` names the file in messages. On failure st is left empty. */
ar_status ar_safetensors_parse(ar_safetensors *st, const uint8_t *data, size_t size,
                               const char *what, ar_err *err);

void ar_safetensors_free(ar_safetensors *st);

#endif
