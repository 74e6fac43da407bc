/*
 * fuzz_tokenize.c - libFuzzer target for the encoder: arbitrary bytes through ar_tokenize
 * in every mode, with the real Qwen2.5 vocabulary when the reference data is there
 * (ARCHROUTER_TESTDATA or ../shared/testdata), else a small synthetic one.
 *
 * Input: one flags byte (bit 0: parse added tokens, bit 1: replace invalid UTF-8), then
 * the text. Checked on every input:
 *   - invalid UTF-8 without replacement fails with the offset of the first bad byte;
 *   - every id is in range; tokenizing twice gives the same ids (the word cache is exact);
 *   - without added-token parsing, decoding gives back the NFC form of the text;
 *   - text without '<' gives the same ids in both modes.
 */
#include "fuzz_model.h"
#include "base/utf8.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static ar_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("ARCHROUTER_TESTDATA");
    char path[4096];
    snprintf(path, sizeof path, "%s/qwen2-tokenizer/ggml-vocab-qwen2.5.gguf",
             dir && *dir ? dir : "../shared/testdata");
    ar_tokenizer_params p = fuzz_tokenizer_params();
    if (ar_tokenizer_open(path, &p, &tok) == AR_OK) return 0;
    ar_tokenizer_free(tok);
    fprintf(stderr, "fuzz_tokenize: %s not found; using a synthetic vocabulary\n", path);
    size_t len;
    char *json = fuzz_tokenizer_json(&len);
    if (ar_tokenizer_open_memory((const uint8_t *)json, len, true, &p, &tok) != AR_OK)
        fuzz_fail(__FILE__, __LINE__, ar_tokenizer_errmsg(tok));
    free(json);
    return 0;
}

/* ids for text in the given mode; *n their count. NULL only for invalid input. */
static int32_t *encode(const char *text, size_t len, uint32_t flags, size_t *n, ar_status *st) {
    size_t cap = 3 * len + 8;
    int32_t *ids = malloc(cap * sizeof *ids);
    FUZZ_CHECK(ids != NULL);
    *st = ar_tokenize(tok, text, len, flags, ids, cap, n);
    if (*st != AR_OK) {
        free(ids);
        return NULL;
    }
    int32_t nt = ar_tokenizer_n_tokens(tok);
    for (size_t i = 0; i < *n; i++) FUZZ_CHECK(ids[i] >= 0 && ids[i] < nt);
    return ids;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint32_t flags =
        (data[0] & 1 ? AR_TOKENIZE_SPECIAL : 0) | (data[0] & 2 ? AR_TOKENIZE_REPLACE_INVALID : 0);
    /* An exact-size copy, so ASan sees any read past the text. */
    size_t len = size - 1;
    char *text = malloc(len ? len : 1);
    FUZZ_CHECK(text != NULL);
    memcpy(text, data + 1, len);
    size_t bad = 0;
    bool valid = ar_utf8_valid((const uint8_t *)text, len, &bad);

    size_t n = 0, n2 = 0;
    ar_status st, st2;
    int32_t *ids = encode(text, len, flags, &n, &st);
    if (!valid && !(flags & AR_TOKENIZE_REPLACE_INVALID)) {
        FUZZ_CHECK(st == AR_ERR_INVALID_INPUT && n == bad);
        free(text);
        return 0;
    }
    FUZZ_CHECK(st == AR_OK);
    int32_t *again = encode(text, len, flags, &n2, &st2);
    FUZZ_CHECK(st2 == AR_OK && n2 == n && memcmp(ids, again, n * sizeof *ids) == 0);
    free(again);

    if (valid && !(flags & AR_TOKENIZE_SPECIAL)) {
        /* Decoding gives the normalized text back. */
        uint8_t *nfc = NULL;
        utf8proc_ssize_t nl = len ? utf8proc_map((const uint8_t *)text, (utf8proc_ssize_t)len, &nfc,
                                                 UTF8PROC_STABLE | UTF8PROC_COMPOSE)
                                  : 0;
        FUZZ_CHECK(nl >= 0);
        char *out = malloc((size_t)nl + 1);
        size_t out_len = 0;
        FUZZ_CHECK(out != NULL);
        FUZZ_CHECK(ar_detokenize(tok, ids, n, out, (size_t)nl + 1, &out_len) == AR_OK);
        FUZZ_CHECK(out_len == (size_t)nl && (nl == 0 || memcmp(out, nfc, (size_t)nl) == 0));
        free(out);
        free(nfc);
    }
    if (valid && !memchr(text, '<', len)) {
        int32_t *other = encode(text, len, flags ^ AR_TOKENIZE_SPECIAL, &n2, &st2);
        FUZZ_CHECK(st2 == AR_OK && n2 == n && memcmp(ids, other, n * sizeof *ids) == 0);
        free(other);
    }
    free(ids);
    free(text);
    return 0;
}
