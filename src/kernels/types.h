/*
 * types.h - per-type traits of tensor element types (the ggml type_traits idea).
 *
 * A tensor row of n elements of a block-quantized type is n / blck_size consecutive blocks
 * of type_size bytes each; plain types have blck_size 1. `to_float` is the scalar reference
 * dequantizer: it converts one row (n a multiple of blck_size) to float32 and is
 * bit-identical to ggml's to_float for the same type. SIMD kernels are checked against it.
 */
#ifndef AR_KERNELS_TYPES_H
#define AR_KERNELS_TYPES_H

#include "archrouter.h"

#include <stdbool.h>
#include <stdint.h>

typedef void (*ar_to_float_fn)(const void *src, float *dst, int64_t n);

typedef struct ar_type_traits {
    const char *name;  /* "Q4_K" */
    int32_t blck_size; /* elements per block */
    int32_t type_size; /* bytes per block */
    bool is_quantized;
    ar_to_float_fn to_float;
} ar_type_traits;

/* Traits of a type id as found in a file, or NULL when the id is unknown or unsupported. */
const ar_type_traits *ar_type_traits_get(uint32_t type);

/* The name of a GGUF type id that archrouter knows of but cannot load ("IQ2_XS"), or NULL.
 * Used to make "unsupported type" errors precise. */
const char *ar_type_known_name(uint32_t type);

/* Bytes of a row of n elements; false when n is not a multiple of the block size or the
 * size overflows. */
bool ar_type_row_bytes(const ar_type_traits *tt, uint64_t n, uint64_t *bytes);

#endif
