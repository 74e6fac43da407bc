/*
 * fuzz_request.c - libFuzzer target for the gateway's request handling: the input is a chat
 * completions request body, validated by ar_gw_request_parse(); a body that passes is then
 * rewritten by ar_gw_request_rewrite() with a model taken from the input's first byte. The
 * rewritten body must parse as JSON and equal the original with only `model` changed.
 */
#include "fuzz_model.h"
#include "gateway/request.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const models[] = {"gpt-4o", "", "a\"b\\c", "\xc3\xa9t\xc3\xa9"};
    const char *model = models[size ? data[0] % 4 : 0];
    char *copy = malloc(size ? size : 1); /* exact size: ASan sees over-reads */
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, data, size);
    ar_err e = {{0}};
    ar_gw_request req;
    ar_status st = ar_gw_request_parse(copy, size, &req, &e);
    if (st != AR_OK) {
        fuzz_check_error(st, e.msg);
        FUZZ_CHECK(req.root == NULL && req.msgs.n == 0);
        free(copy);
        return 0;
    }
    FUZZ_CHECK(json_is_object(req.root) && req.msgs.n > 0);
    char *out = NULL;
    size_t out_len = 0;
    st = ar_gw_request_rewrite(copy, size, model, &out, &out_len, &e);
    FUZZ_CHECK(st == AR_OK);
    FUZZ_CHECK(strlen(out) == out_len); /* jansson rejects NUL: none to copy */
    json_t *got = json_loadb(out, out_len, JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(got != NULL);
    json_object_set_new(req.root, "model", json_string(model));
    FUZZ_CHECK(json_equal(got, req.root));
    json_decref(got);
    free(out);
    ar_gw_request_free(&req);
    free(copy);
    return 0;
}
