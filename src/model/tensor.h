/*
 * tensor.h - a model tensor as the engine sees it, whatever file format it came from.
 *
 * Shapes are in GGUF order (innermost first): a Hugging Face matrix of shape (out, in) has
 * ne = {in, out, 1, 1} and is stored as `out` rows of `in` elements. Data points into a
 * mapped file and is read-only.
 */
#ifndef AR_MODEL_TENSOR_H
#define AR_MODEL_TENSOR_H

#include <stdint.h>

typedef struct ar_tensor {
    const char *name; /* as in the file */
    uint32_t type;    /* ar_type */
    int32_t n_dims;   /* 1..4 */
    int64_t ne[4];    /* unused dimensions are 1 */
    uint64_t n_elements;
    uint64_t n_bytes;
    const uint8_t *data;
    uint64_t file_offset; /* absolute, in file `file` */
    int32_t file;         /* index of the file (shard) holding the data */
} ar_tensor;

#endif
