/*
 * test_tokenizer.c - the tokenizer against the reference: every string of
 * tokenizer-golden.jsonl in both modes (ids with added tokens parsed, ids_no_special
 * without), from the GGUF metadata and from tokenizer.json; llama.cpp's 46 test cases with
 * the vocabulary-only GGUF; decoding back to the original text.
 */
#include "testutil.h"

#include "archrouter.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ar_tokenizer *open_tok(const char *rel) {
    ar_tokenizer *t = NULL;
    ar_status st = ar_tokenizer_open(ar_test_data_path(rel), NULL, &t);
    if (st != AR_OK) fail_msg("%s: %s", rel, ar_tokenizer_errmsg(t));
    return t;
}

/* Compare ar_tokenize(text) with the expected ids; print the first difference. */
static int check_ids(const ar_tokenizer *t, const char *text, size_t len, uint32_t flags,
                     json_t *want, int line) {
    size_t cap = 4 * len + 16, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    assert_non_null(ids);
    ar_status st = ar_tokenize(t, text, len, flags, ids, cap, &n);
    int bad = st != AR_OK || n != json_array_size(want);
    for (size_t i = 0; !bad && i < n; i++)
        bad = ids[i] != json_integer_value(json_array_get(want, i));
    if (bad) {
        fprintf(stderr,
                "line %d (%s): status %d, %zu ids vs %zu expected; text %.80s\n  got:", line,
                flags ? "special" : "no special", st, n, json_array_size(want), text);
        for (size_t i = 0; i < n && i < 24; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n  want:");
        for (size_t i = 0; i < json_array_size(want) && i < 24; i++)
            fprintf(stderr, " %lld", (long long)json_integer_value(json_array_get(want, i)));
        fprintf(stderr, "\n");
    } else if (n) {
        /* Decoding the ids gives back the (NFC-normalized) text: compare lengths at least
         * for ASCII input, where NFC is the identity. */
        size_t out_len;
        char *buf = malloc(4 * len + 16);
        assert_non_null(buf);
        assert_int_equal(ar_detokenize(t, ids, n, buf, 4 * len + 16, &out_len), AR_OK);
        int ascii = 1;
        for (size_t i = 0; i < len; i++) ascii &= (unsigned char)text[i] < 0x80;
        if (ascii && (out_len != len || memcmp(buf, text, len) != 0)) {
            fprintf(stderr, "line %d: decode does not give the text back\n", line);
            bad = 1;
        }
        free(buf);
    }
    free(ids);
    return bad;
}

static void run_golden(const char *tokenizer_rel) {
    ar_tokenizer *t = open_tok(tokenizer_rel);
    size_t size;
    char *data = ar_test_read_file(ar_test_data_path("tokenizer-golden.jsonl"), &size);
    assert_non_null(data);
    int lines = 0, failures = 0;
    for (char *line = data, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        lines++;
        json_error_t jerr;
        json_t *o = json_loads(line, JSON_ALLOW_NUL, &jerr);
        if (!o) fail_msg("golden line %d: %s", lines, jerr.text);
        size_t len = json_string_length(json_object_get(o, "text"));
        const char *text = json_string_value(json_object_get(o, "text"));
        failures += check_ids(t, text, len, AR_TOKENIZE_SPECIAL, json_object_get(o, "ids"), lines);
        failures += check_ids(t, text, len, 0, json_object_get(o, "ids_no_special"), lines);
        json_decref(o);
    }
    free(data);
    ar_tokenizer_free(t);
    fprintf(stderr, "%s: %d strings, %d mismatches\n", tokenizer_rel, lines, failures);
    assert_int_equal(lines, 5386);
    assert_int_equal(failures, 0);
}

static void test_golden_from_gguf(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    run_golden("models/qwen2-tiny-a/gguf/F16.gguf");
}

static void test_golden_from_tokenizer_json(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    run_golden("qwen2-tokenizer/tokenizer.json");
}

/* llama.cpp's test-tokenizer-0 cases: inputs separated by "\n__ggml_vocab_test__\n", one
 * line of " %d" ids per input; no special-token parsing. */
static void test_llamacpp_cases(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    ar_tokenizer *t = open_tok("qwen2-tokenizer/ggml-vocab-qwen2.5.gguf");
    size_t n_inp, n_out;
    char *inp =
        ar_test_read_file(ar_test_data_path("qwen2-tokenizer/ggml-vocab-qwen2.gguf.inp"), &n_inp);
    char *out =
        ar_test_read_file(ar_test_data_path("qwen2-tokenizer/ggml-vocab-qwen2.gguf.out"), &n_out);
    assert_non_null(inp);
    assert_non_null(out);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    int cases = 0, failures = 0;
    char *p = inp, *o = out;
    for (char *end; (end = strstr(p, sep)) != NULL; p = end + strlen(sep)) {
        char *eol = strchr(o, '\n');
        assert_non_null(eol);
        *eol = 0;
        json_t *want = json_array();
        for (char *q = o; *q;) {
            char *e;
            long v = strtol(q, &e, 10);
            if (e == q) break;
            json_array_append_new(want, json_integer(v));
            q = e;
        }
        failures += check_ids(t, p, (size_t)(end - p), 0, want, cases + 1);
        json_decref(want);
        o = eol + 1;
        cases++;
    }
    free(inp);
    free(out);
    ar_tokenizer_free(t);
    assert_int_equal(cases, 46);
    assert_int_equal(failures, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_from_gguf),
        cmocka_unit_test(test_golden_from_tokenizer_json),
        cmocka_unit_test(test_llamacpp_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
