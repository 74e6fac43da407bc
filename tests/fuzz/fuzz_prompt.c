/*
 * fuzz_prompt.c - libFuzzer target for the router's prompt builder (src/router/prompt.c):
 * hostile conversations through the conversation rules, the token budget (including the
 * head-and-tail shortening of a long message at arbitrary byte positions), JSON escaping in
 * both layouts and the tokenization with template-only control tokens. Uses the real
 * Qwen2.5 vocabulary when the reference data is there, else a synthetic one.
 *
 * Input: a header byte (bit 0: layout, bits 1-3: budget 16 .. 2048 tokens), then messages
 * separated by NUL bytes; each message's first byte picks its role (one of seven, the last
 * unknown) and the rest is its content, any bytes. Checked on every input:
 *   - an error comes with a message; success gives ids all in range, a head (n_prefix)
 *     within the ids, and text that begins with the chat header;
 *   - the marker ids occur exactly as often as the template writes them (5): no content
 *     becomes a control token;
 *   - the bytes of the ids are the text (in NFC, as the tokenizer normalizes it).
 */
#include "fuzz_model.h"
#include "router/prompt.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static ar_tokenizer *tok;
static int32_t im_start, im_end;

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
    if (ar_tokenizer_open(path, &p, &tok) != AR_OK) {
        ar_tokenizer_free(tok);
        fprintf(stderr, "fuzz_prompt: %s not found; using a synthetic vocabulary\n", path);
        size_t len;
        char *json = fuzz_tokenizer_json(&len);
        if (ar_tokenizer_open_memory((const uint8_t *)json, len, true, &p, &tok) != AR_OK)
            fuzz_fail(__FILE__, __LINE__, ar_tokenizer_errmsg(tok));
        free(json);
    }
    im_start = ar_tokenizer_find(tok, "<|im_start|>");
    im_end = ar_tokenizer_find(tok, "<|im_end|>");
    return 0;
}

static const char *const roles[] = {"user",      "assistant", "system", "tool",
                                    "developer", "function",  "robot"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || im_start < 0 || im_end < 0) return 0;
    ar_route routes[] = {{"code_generation", "Writing new code", "m"},
                         {"café ☃ \"q\"", "Unicode and quotes in a name", NULL}};
    ar_prompt_spec spec = {.tok = tok,
                           .layout = data[0] & 1 ? AR_LAYOUT_ARCHGW : AR_LAYOUT_CARD,
                           .system_prompt = "You are a helpful assistant.",
                           .im_start = im_start,
                           .im_end = im_end,
                           .routes = routes,
                           .n_routes = 2,
                           .budget = 16 << ((data[0] >> 1) & 7)};
    /* Split the rest into messages at NUL bytes (content is then NUL-free, as C strings). */
    char *copy = malloc(size);
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = 0;
    ar_message msgs[64];
    int32_t n = 0;
    for (char *p = copy; p < copy + size - 1 && n < 64;) {
        size_t len = strlen(p);
        if (len > 0) {
            msgs[n].role = roles[(unsigned char)p[0] % 7];
            msgs[n].content = p + 1;
            n++;
        }
        p += len + 1;
    }
    ar_prompt pr;
    ar_err err = {{0}};
    ar_status st = ar_prompt_build(&spec, msgs, n, &pr, &err);
    if (st != AR_OK) {
        fuzz_check_error(st, err.msg);
        free(copy);
        return 0;
    }
    FUZZ_CHECK(pr.n_ids > 0 && pr.n_prefix >= 0 && pr.n_prefix < pr.n_ids);
    FUZZ_CHECK(pr.messages_used >= 1);
    FUZZ_CHECK(strncmp(pr.text, "<|im_start|>system\n", 19) == 0);
    char *nfc = (char *)utf8proc_NFC((const utf8proc_uint8_t *)pr.text);
    FUZZ_CHECK(nfc != NULL);
    size_t nfc_len = strlen(nfc);
    int markers = 0;
    size_t at = 0;
    int32_t nt = ar_tokenizer_n_tokens(tok);
    for (int32_t i = 0; i < pr.n_ids; i++) {
        FUZZ_CHECK(pr.ids[i] >= 0 && pr.ids[i] < nt);
        markers += pr.ids[i] == im_start || pr.ids[i] == im_end;
        size_t len = 0;
        const char *b = ar_token_bytes(tok, pr.ids[i], &len);
        FUZZ_CHECK(b != NULL && at + len <= nfc_len && memcmp(nfc + at, b, len) == 0);
        at += len;
    }
    FUZZ_CHECK(at == nfc_len);
    free(nfc);
    FUZZ_CHECK(markers == 5);
    ar_prompt_free(&pr);
    free(copy);
    return 0;
}
