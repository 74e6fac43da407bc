/*
 * tokenizer.h - private entry points of the tokenizer, for fuzzing and tests.
 */
#ifndef AR_TOKENIZER_TOKENIZER_H
#define AR_TOKENIZER_TOKENIZER_H

#include "archrouter.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A tokenizer from bytes in memory: a tokenizer.json text when `json`, else a GGUF image
 * (only its tokenizer.* metadata is read). Same contract as ar_tokenizer_open(). */
ar_status ar_tokenizer_open_memory(const uint8_t *data, size_t size, bool json,
                                   const ar_tokenizer_params *params, ar_tokenizer **out);

#endif
