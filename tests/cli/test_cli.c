/*
 * test_cli.c - the archrouter program as a user meets it: help, version, exit codes,
 * error messages, and `info` (text and --json) on every model of the reference data.
 *
 * Runs the built binary (path in ARCHROUTER_BIN, set by CTest) through /bin/sh, capturing
 * stdout, stderr and the exit status; JSON output is parsed with jansson.
 */
#include "testutil.h"

#include "cli_run.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static void test_help(void **state) {
    (void)state;
    run_result r = run("--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Usage: archrouter COMMAND"));
    assert_non_null(strstr(r.out, "info"));
    assert_non_null(strstr(r.out, "Exit status:"));
    assert_string_equal(r.err, "");
    run_free(&r);

    r = run("info --help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Usage: archrouter info"));
    assert_non_null(strstr(r.out, "--json"));
    run_free(&r);
}

static void test_version(void **state) {
    (void)state;
    run_result r = run("--version");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "archrouter 0."));
    run_free(&r);
}

static void test_usage_errors(void **state) {
    (void)state;
    run_result r = run("");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "archrouter: error: no command given"));
    assert_string_equal(r.out, "");
    run_free(&r);

    r = run("frobnicate");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "archrouter: error: unknown command 'frobnicate'"));
    run_free(&r);

    r = run("--frob");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "unknown option '--frob'"));
    run_free(&r);

    r = run("info");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "archrouter: error: no model given"));
    assert_non_null(strstr(r.err, "Try 'archrouter info --help'"));
    run_free(&r);

    r = run("info --bogus x");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "unknown option '--bogus'"));
    run_free(&r);

    r = run("info a b");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "more than one model"));
    run_free(&r);
}

static void test_info_failures(void **state) {
    (void)state;
    run_result r = run("info /nonexistent/model.gguf");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "archrouter: error: "));
    assert_non_null(strstr(r.err, "/nonexistent/model.gguf"));
    assert_string_equal(r.out, "");
    run_free(&r);

    const char *junk = ar_test_write_temp(0, "junk.bin", "not a model at all", 18);
    assert_non_null(junk);
    char args[1024];
    snprintf(args, sizeof args, "info '%s'", junk);
    r = run(args);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "not a GGUF file"));
    run_free(&r);
}

/* A failed write to stdout must be reported, not ignored. */
static void test_write_failure(void **state) {
    (void)state;
    FILE *f = fopen("/dev/full", "w");
    if (!f) skip();
    fclose(f);
    const char *bin = getenv("ARCHROUTER_BIN");
    char cmd[1024];
    static const char *const args[] = {"--version", "--help", "info --help"};
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++) {
        snprintf(cmd, sizeof cmd, "'%s' %s >/dev/full 2>/dev/null", bin, args[i]);
        int st = system(cmd);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 1);
    }
}

/* ---- info on the reference models -------------------------------------------------------- */

static json_t *info_json(const char *rel, bool extra) {
    char args[4096];
    snprintf(args, sizeof args, "info --json %s'%s'", extra ? "--tensors --meta " : "",
             ar_test_data_path(rel));
    run_result r = run(args);
    if (r.status != 0) fail_msg("info %s failed (%d): %s", rel, r.status, r.err);
    json_error_t jerr;
    json_t *o = json_loads(r.out, 0, &jerr);
    if (!o) fail_msg("info --json %s: invalid JSON: %s", rel, jerr.text);
    run_free(&r);
    static const char *const keys[] = {"architecture",    "n_params",     "n_layers", "n_heads",
                                       "n_kv_heads",      "n_embd",       "n_ff",     "n_vocab",
                                       "tied_embeddings", "tensor_types", "load_ms"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!json_object_get(o, keys[i])) fail_msg("info --json %s: no key %s", rel, keys[i]);
    assert_string_equal(json_string_value(json_object_get(o, "architecture")), "qwen2");
    return o;
}

static json_int_t jint(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) fail_msg("key %s is not an integer", key);
    return json_integer_value(v);
}

/* Hyper-parameters equal to the checkpoint's config.json. */
static void check_against_config(json_t *info, const char *config_rel) {
    json_error_t jerr;
    json_t *cfg = json_load_file(ar_test_data_path(config_rel), 0, &jerr);
    if (!cfg) fail_msg("%s: %s", config_rel, jerr.text);
    assert_int_equal(jint(info, "n_layers"), jint(cfg, "num_hidden_layers"));
    assert_int_equal(jint(info, "n_heads"), jint(cfg, "num_attention_heads"));
    assert_int_equal(jint(info, "n_kv_heads"), jint(cfg, "num_key_value_heads"));
    assert_int_equal(jint(info, "n_embd"), jint(cfg, "hidden_size"));
    assert_int_equal(jint(info, "n_ff"), jint(cfg, "intermediate_size"));
    assert_int_equal(jint(info, "n_vocab"), jint(cfg, "vocab_size"));
    assert_int_equal(json_is_true(json_object_get(info, "tied_embeddings")),
                     json_is_true(json_object_get(cfg, "tie_word_embeddings")));
    json_decref(cfg);
}

static void test_info_every_gguf_type(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    /* file, llama-quantize type name as general.file_type, matrix type (pure files). */
    static const char *const files[][3] = {
        {"F16", "F16", "F16"},      {"BF16", "BF16", "BF16"},   {"Q8_0", "Q8_0", "Q8_0"},
        {"Q6_K", "Q6_K", "Q6_K"},   {"Q5_K", "Q5_K_S", "Q5_K"}, {"Q4_K", "Q4_K_S", "Q4_K"},
        {"Q3_K", "Q3_K_S", "Q3_K"}, {"Q2_K", "Q2_K", "Q2_K"},   {"Q4_0", "Q4_0", "Q4_0"},
        {"Q4_1", "Q4_1", "Q4_1"},   {"Q5_0", "Q5_0", "Q5_0"},   {"Q5_1", "Q5_1", "Q5_1"},
        {"Q4_K_M", "Q4_K_M", NULL},
    };
    json_t *st = info_json("models/qwen2-tiny-q", false);
    check_against_config(st, "models/qwen2-tiny-q/config.json");
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "models/qwen2-tiny-q/gguf/%s.gguf", files[i][0]);
        json_t *o = info_json(rel, i == 0);
        check_against_config(o, "models/qwen2-tiny-q/config.json");
        assert_string_equal(json_string_value(json_object_get(o, "file_type")), files[i][1]);
        /* Same parameter count as the safetensors form of the same model. */
        assert_int_equal(jint(o, "n_params"), jint(st, "n_params"));
        json_t *types = json_object_get(o, "tensor_types");
        assert_int_equal(jint(types, "F32"), 11);
        if (files[i][2]) {
            assert_int_equal(jint(types, files[i][2]), 16);
        } else { /* Q4_K_M: 13 Q4_K + 3 Q6_K (README) */
            assert_int_equal(jint(types, "Q4_K"), 13);
            assert_int_equal(jint(types, "Q6_K"), 3);
        }
        if (i == 0) {
            assert_int_equal(json_array_size(json_object_get(o, "tensors")), 27);
            assert_non_null(json_object_get(json_object_get(o, "metadata"), "qwen2.block_count"));
        }
        json_decref(o);
    }
    json_decref(st);
}

static void test_info_safetensors_and_tokenizer(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    json_t *a_st = info_json("models/qwen2-tiny-a", false);
    json_t *a_gg = info_json("models/qwen2-tiny-a/gguf/F16.gguf", false);
    json_t *b_st = info_json("models/qwen2-tiny-b", false);
    check_against_config(a_st, "models/qwen2-tiny-a/config.json");
    check_against_config(a_gg, "models/qwen2-tiny-a/config.json");
    check_against_config(b_st, "models/qwen2-tiny-b/config.json");
    assert_int_equal(jint(a_st, "n_params"), jint(a_gg, "n_params"));
    assert_int_equal(jint(b_st, "head_dim"), 128);
    /* tiny-a's GGUF carries the real Qwen2.5 tokenizer and chat template. */
    json_t *tok = json_object_get(a_gg, "tokenizer");
    assert_int_equal(jint(tok, "n_tokens"), 151936);
    assert_string_equal(json_string_value(json_object_get(tok, "eos")), "<|im_end|>");
    assert_string_equal(json_string_value(json_object_get(tok, "bos")), "<|endoftext|>");
    assert_true(json_is_true(json_object_get(a_gg, "has_chat_template")));
    json_decref(a_st);
    json_decref(a_gg);
    json_decref(b_st);

    json_t *v = info_json("qwen2-tokenizer/ggml-vocab-qwen2.5.gguf", false);
    assert_true(json_is_true(json_object_get(v, "vocab_only")));
    assert_int_equal(jint(v, "n_layers"), 28);
    assert_int_equal(jint(v, "n_embd"), 1536);
    assert_int_equal(jint(v, "n_vocab"), 151936);
    json_decref(v);
}

static void test_info_text(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    char args[4096];
    snprintf(args, sizeof args, "info '%s'",
             ar_test_data_path("models/qwen2-tiny-q/gguf/Q4_K_M.gguf"));
    run_result r = run(args);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "architecture   qwen2"));
    assert_non_null(strstr(r.out, "Q4_K_M"));
    assert_non_null(strstr(r.out, "Q6_K 3"));
    assert_non_null(strstr(r.out, "load time"));
    run_free(&r);
}

/* ---- tokenize and bench ----------------------------------------------------------------- */

static json_t *parse_json(const char *s) {
    json_error_t jerr;
    json_t *o = json_loads(s, 0, &jerr);
    if (!o) fail_msg("invalid JSON (%s): %s", jerr.text, s);
    return o;
}

static void test_tokenize(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    const char *model = ar_test_data_path("models/qwen2-tiny-a/gguf/F16.gguf");
    char args[4096];
    snprintf(args, sizeof args, "tokenize --json '%s' '<|im_start|>user'", model);
    run_result r = run(args);
    assert_int_equal(r.status, 0);
    json_t *o = parse_json(r.out);
    json_t *ids = json_object_get(o, "ids"), *pieces = json_object_get(o, "pieces");
    assert_int_equal(json_array_size(ids), 2);
    assert_int_equal(json_integer_value(json_array_get(ids, 0)), 151644);
    assert_int_equal(json_integer_value(json_array_get(ids, 1)), 872);
    assert_string_equal(json_string_value(json_array_get(pieces, 0)), "<|im_start|>");
    json_decref(o);
    run_free(&r);

    /* Without special parsing the control token is plain text: no id >= 151643. */
    snprintf(args, sizeof args, "tokenize --json --no-special '%s' '<|im_start|>user'", model);
    r = run(args);
    assert_int_equal(r.status, 0);
    o = parse_json(r.out);
    ids = json_object_get(o, "ids");
    assert_true(json_array_size(ids) > 2);
    for (size_t i = 0; i < json_array_size(ids); i++)
        assert_true(json_integer_value(json_array_get(ids, i)) < 151643);
    json_decref(o);
    run_free(&r);

    /* Text table: id TAB piece. */
    snprintf(args, sizeof args, "tokenize '%s' 'Hello world'", model);
    r = run(args);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "9707\tHello\n1879\t\xc4\xa0world\n");
    run_free(&r);

    /* Standard input, invalid UTF-8 named by offset. */
    snprintf(args, sizeof args, "tokenize '%s' - < '%s'", model,
             ar_test_write_temp(1, "bad.txt", "ab\xff", 3));
    r = run(args);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "byte offset 2"));
    run_free(&r);
    snprintf(args, sizeof args, "tokenize --replace-invalid --json '%s' - < '%s/bad.txt'", model,
             ar_test_temp_dir());
    r = run(args);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "\"pieces\":[\"ab\",\"\xc3\xaf\xc2\xbf\xc2\xbd\"]"));
    run_free(&r);
}

static void test_tokenize_jsonl(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    const char *in = "{\"text\": \"hi there\"}\nnot json\n{\"text\": \"x\"}\n";
    const char *path = ar_test_write_temp(2, "in.jsonl", in, strlen(in));
    char args[4096];
    snprintf(args, sizeof args, "tokenize --jsonl '%s' < '%s'",
             ar_test_data_path("qwen2-tokenizer/tokenizer.json"), path);
    run_result r = run(args);
    assert_int_equal(r.status, 1); /* one bad line */
    assert_non_null(strstr(r.err, "1 line(s) could not be tokenized"));
    char *l2 = strchr(r.out, '\n');
    assert_non_null(l2);
    char *l3 = strchr(l2 + 1, '\n');
    assert_non_null(l3);
    *l2 = *l3 = 0;
    json_t *a = parse_json(r.out), *b = parse_json(l2 + 1), *c = parse_json(l3 + 1);
    assert_int_equal(json_array_size(json_object_get(a, "ids")), 2);
    assert_non_null(json_object_get(b, "error"));
    assert_int_equal(json_integer_value(json_object_get(b, "line")), 2);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(c, "ids"), 0)), 87);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    run_free(&r);
}

static void test_bench_tokenizer(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    const char *corpus = "hello world\nthe quick brown fox\n\xe4\xbd\xa0\xe5\xa5\xbd\n";
    const char *path = ar_test_write_temp(3, "corpus.txt", corpus, strlen(corpus));
    char args[4096];
    snprintf(args, sizeof args, "bench --tokenizer --runs 1 --json --corpus '%s' '%s'", path,
             ar_test_data_path("qwen2-tokenizer/ggml-vocab-qwen2.5.gguf"));
    run_result r = run(args);
    assert_int_equal(r.status, 0);
    json_t *o = parse_json(r.out), *t = json_object_get(o, "tokenizer");
    assert_int_equal(json_integer_value(json_object_get(t, "texts")), 3);
    assert_int_equal(json_integer_value(json_object_get(t, "bytes")), strlen(corpus));
    assert_true(json_integer_value(json_object_get(t, "tokens")) >= 6);
    assert_true(json_real_value(json_object_get(t, "load_ms")) > 0);
    assert_true(json_real_value(json_object_get(t, "mb_per_s_cold")) > 0);
    assert_true(json_real_value(json_object_get(t, "mb_per_s_warm")) > 0);
    assert_true(json_real_value(json_object_get(o, "peak_rss_mb")) > 0);
    json_decref(o);
    run_free(&r);

    r = run("bench --tokenizer x");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--corpus"));
    run_free(&r);
}

/* ---- generate and logits ------------------------------------------------------------------ */

static void test_logits(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    char args[4096];
    snprintf(args, sizeof args, "logits --json --top 3 '%s' --ids 1,2,3",
             ar_test_data_path("models/qwen2-tiny-b"));
    run_result r = run(args);
    assert_int_equal(r.status, 0);
    json_t *o = parse_json(r.out);
    assert_int_equal(json_integer_value(json_object_get(o, "n_vocab")), 2048);
    json_t *pos = json_object_get(o, "positions");
    assert_int_equal(json_array_size(pos), 3);
    json_t *p2 = json_array_get(pos, 2), *top = json_object_get(p2, "top");
    assert_int_equal(json_integer_value(json_object_get(p2, "pos")), 2);
    assert_int_equal(json_array_size(top), 3);
    double l0 = json_real_value(json_object_get(json_array_get(top, 0), "logit"));
    double l1 = json_real_value(json_object_get(json_array_get(top, 1), "logit"));
    double lse = json_real_value(json_object_get(p2, "lse"));
    assert_true(l0 >= l1 && lse >= l0); /* sorted, and lse bounds the maximum */
    json_decref(o);
    run_free(&r);

    snprintf(args, sizeof args, "logits '%s' --ids 1,99999",
             ar_test_data_path("models/qwen2-tiny-b"));
    r = run(args);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "outside the vocabulary"));
    run_free(&r);
    r = run("logits x --ids 1,a");
    assert_int_equal(r.status, 2);
    run_free(&r);
}

static void test_generate(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    char args[4096];
    snprintf(args, sizeof args, "generate -n 4 --threads 1 '%s' 'Hello'",
             ar_test_data_path("models/qwen2-tiny-a/gguf/F16.gguf"));
    run_result r = run(args);
    assert_int_equal(r.status, 0);
    assert_true(strlen(r.out) > 1);
    assert_non_null(strstr(r.err, "1 prompt tokens"));
    assert_non_null(strstr(r.err, "4 generated"));
    run_free(&r);
    r = run("generate --precision exact x y");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "invalid value 'exact' for --precision"));
    run_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_info_failures),
        cmocka_unit_test(test_write_failure),
        cmocka_unit_test(test_info_every_gguf_type),
        cmocka_unit_test(test_info_safetensors_and_tokenizer),
        cmocka_unit_test(test_info_text),
        cmocka_unit_test(test_tokenize),
        cmocka_unit_test(test_tokenize_jsonl),
        cmocka_unit_test(test_bench_tokenizer),
        cmocka_unit_test(test_logits),
        cmocka_unit_test(test_generate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
