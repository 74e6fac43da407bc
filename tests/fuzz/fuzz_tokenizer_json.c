/*
 * fuzz_tokenizer_json.c - libFuzzer target for the tokenizer.json loader: the input is the
 * JSON text, opened with ar_tokenizer_open_memory(); a tokenizer that loads is driven
 * through every query and a fixed set of texts (fuzz_check_tokenizer).
 */
#include "fuzz_model.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1); /* exact size: ASan sees over-reads */
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, data, size);
    ar_tokenizer_params p = fuzz_tokenizer_params();
    ar_tokenizer *tok = NULL;
    ar_status st = ar_tokenizer_open_memory(copy, size, true, &p, &tok);
    fuzz_check_tokenizer(st, tok);
    free(copy);
    return 0;
}
