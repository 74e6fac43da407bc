/*
 * test_engine.c - the float32 forward pass against the float64 reference: tiny-a (real
 * vocabulary, tied embeddings; safetensors and GGUF F16) and tiny-b (head_dim 128, GQA 6:1,
 * untied), every prompt including the 2,143-token one, the routing prompts' route
 * log-probabilities, greedy continuations, every CPU tier; incremental evaluation and KV
 * prefix copies give bit-identical logits; a tree of continuations in one pass equals each
 * path on its own and selected logits equal the full vector's; bad inputs are refused.
 *
 * Tolerance 1e-3 absolute (the task's bound for float32 compute; measured errors are
 * printed and are far smaller).
 */
#include "engine_golden.h"
#include "testutil.h"

#include "archrouter.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-3

typedef struct fixture {
    ar_model *model;
    ar_engine *eng;
} fixture;

static void open_fixture(fixture *f, const char *rel, int cpu, int n_threads) {
    ar_model_params mp = ar_model_default_params();
    if (ar_model_open(ar_test_data_path(rel), &mp, &f->model) != AR_OK)
        fail_msg("%s: %s", rel, ar_model_errmsg(f->model));
    ar_engine_params ep = ar_engine_default_params();
    ep.cpu = cpu;
    ep.n_threads = n_threads;
    if (ar_engine_new(f->model, &ep, &f->eng) != AR_OK)
        fail_msg("%s: %s", rel, ar_engine_errmsg(f->eng));
}

static void close_fixture(fixture *f) {
    ar_engine_free(f->eng);
    ar_model_free(f->model);
}

static json_t *load_json(const char *rel) {
    json_error_t jerr;
    json_t *j = json_load_file(ar_test_data_path(rel), 0, &jerr);
    if (!j) fail_msg("%s: %s", rel, jerr.text);
    return j;
}

static void assert_within(const golden_errors *e) {
    assert_true(e->positions > 0);
    assert_true(e->lse <= TOL);
    assert_true(e->top <= TOL);
    assert_true(e->last <= TOL);
    assert_true(e->route <= TOL);
    assert_int_equal(e->id_mismatch, 0);
    assert_int_equal(e->greedy_bad, 0);
}

static void run_model(const char *label, const char *model_rel, const char *golden_rel,
                      const char *dir_rel, int cpu) {
    fixture f;
    open_fixture(&f, model_rel, cpu, 0);
    json_t *g = load_json(golden_rel);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", ar_test_data_path(dir_rel));
    golden_errors e = {0};
    golden_run(f.eng, g, dir, TOL, &e);
    char full[128];
    snprintf(full, sizeof full, "%s [%s]", label, ar_engine_cpu_name(f.eng));
    golden_print(full, &e);
    json_decref(g);
    close_fixture(&f);
    assert_within(&e);
}

static void test_tiny_a_safetensors(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    run_model("tiny-a safetensors", "models/qwen2-tiny-a", "models/qwen2-tiny-a/golden.json",
              "models/qwen2-tiny-a", -1);
}

/* The whole text -> logits path from one GGUF: its tokenizer turns the prompt texts into
 * the golden ids, then the logits are checked. */
static void test_tiny_a_gguf_text_to_logits(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    ar_tokenizer *tok = NULL;
    assert_int_equal(
        ar_tokenizer_open(ar_test_data_path("models/qwen2-tiny-a/gguf/F16.gguf"), NULL, &tok),
        AR_OK);
    json_t *prompts = load_json("models/prompts.json");
    json_t *texts = json_object_get(prompts, "prompts");
    json_t *g = load_json("models/qwen2-tiny-a/golden.json");
    const char *name;
    json_t *p;
    json_object_foreach(json_object_get(g, "prompts"), name, p) {
        json_t *text = json_object_get(texts, name);
        if (json_is_object(text)) text = json_object_get(text, "text");
        if (!json_is_string(text)) fail_msg("prompts.json has no text for %s", name);
        json_t *want = json_object_get(p, "ids");
        size_t cap = json_array_size(want) + 64, n = 0;
        int32_t *ids = malloc(cap * sizeof *ids);
        assert_int_equal(ar_tokenize(tok, json_string_value(text), json_string_length(text),
                                     AR_TOKENIZE_SPECIAL, ids, cap, &n),
                         AR_OK);
        assert_int_equal(n, json_array_size(want));
        for (size_t i = 0; i < n; i++)
            assert_int_equal(ids[i], json_integer_value(json_array_get(want, i)));
        free(ids);
    }
    json_decref(g);
    json_decref(prompts);
    ar_tokenizer_free(tok);
    run_model("tiny-a gguf F16", "models/qwen2-tiny-a/gguf/F16.gguf",
              "models/qwen2-tiny-a/golden.json", "models/qwen2-tiny-a", -1);
}

static void test_tiny_b_every_tier(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    /* The best tier, then every lower one the dispatch can be forced to. */
    for (int cpu = 2; cpu >= 0; cpu--) {
        ar_model *m = NULL;
        assert_int_equal(ar_model_open(ar_test_data_path("models/qwen2-tiny-b"), NULL, &m), AR_OK);
        ar_engine_params ep = ar_engine_default_params();
        ep.cpu = cpu;
        ar_engine *e = NULL;
        ar_status st = ar_engine_new(m, &ep, &e);
        ar_engine_free(e);
        ar_model_free(m);
        if (st == AR_ERR_UNSUPPORTED) continue; /* this CPU lacks the tier */
        assert_int_equal(st, AR_OK);
        run_model("tiny-b safetensors", "models/qwen2-tiny-b", "models/qwen2-tiny-b/golden.json",
                  "models/qwen2-tiny-b", cpu);
    }
}

/* ---- incremental evaluation and prefix copies ------------------------------------------ */

static float *eval_split(ar_engine *e, const int32_t *ids, int n, const int *splits, int n_splits,
                         int n_batch, ar_kv_type kv) {
    ar_seq_params sp = ar_seq_default_params();
    sp.n_ctx = n;
    sp.n_batch = n_batch;
    sp.kv_type = kv;
    ar_seq *s = NULL;
    assert_int_equal(ar_seq_new(e, &sp, &s), AR_OK);
    float *last = malloc((size_t)ar_engine_n_vocab(e) * sizeof *last);
    int done = 0;
    for (int i = 0; i <= n_splits; i++) {
        int end = i < n_splits ? splits[i] : n;
        assert_int_equal(ar_seq_eval(s, ids + done, end - done, AR_LOGITS_LAST, last), AR_OK);
        done = end;
    }
    assert_int_equal(ar_seq_n_past(s), n);
    ar_seq_free(s);
    return last;
}

static void test_incremental_and_copy(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    fixture f;
    open_fixture(&f, "models/qwen2-tiny-b", -1, 0);
    json_t *g = load_json("models/qwen2-tiny-b/golden.json");
    json_t *jids = NULL;
    const char *name;
    json_t *p;
    json_object_foreach(json_object_get(g, "prompts"), name, p) {
        if (json_array_size(json_object_get(p, "ids")) == 257) jids = json_object_get(p, "ids");
    }
    assert_non_null(jids);
    int n = (int)json_array_size(jids), nv = ar_engine_n_vocab(f.eng);
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    for (int i = 0; i < n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(jids, i));
    size_t bytes = (size_t)nv * sizeof(float);
    for (int kv = 0; kv < 2; kv++) {
        float *one = eval_split(f.eng, ids, n, NULL, 0, 512, (ar_kv_type)kv);
        float *two = eval_split(f.eng, ids, n, (int[]){100}, 1, 512, (ar_kv_type)kv);
        float *many = eval_split(f.eng, ids, n, (int[]){1, 2, 50, 200, 256}, 5, 7, (ar_kv_type)kv);
        assert_memory_equal(one, two, bytes);
        assert_memory_equal(one, many, bytes);
        /* A copied prefix continues exactly like the original. */
        ar_seq_params sp = ar_seq_default_params();
        sp.n_ctx = n;
        sp.kv_type = (ar_kv_type)kv;
        ar_seq *a = NULL, *b = NULL;
        assert_int_equal(ar_seq_new(f.eng, &sp, &a), AR_OK);
        assert_int_equal(ar_seq_new(f.eng, &sp, &b), AR_OK);
        assert_int_equal(ar_seq_eval(a, ids, 150, AR_LOGITS_NONE, NULL), AR_OK);
        assert_int_equal(ar_seq_copy(b, a, 120), AR_OK);
        assert_int_equal(ar_seq_n_past(b), 120);
        float *last = malloc(bytes);
        assert_int_equal(ar_seq_eval(b, ids + 120, n - 120, AR_LOGITS_LAST, last), AR_OK);
        assert_memory_equal(one, last, bytes);
        /* Truncating and re-running the tail gives the same again. */
        assert_int_equal(ar_seq_truncate(b, 10), AR_OK);
        assert_int_equal(ar_seq_eval(b, ids + 10, n - 10, AR_LOGITS_LAST, last), AR_OK);
        assert_memory_equal(one, last, bytes);
        ar_seq_free(a);
        ar_seq_free(b);
        free(one);
        free(two);
        free(many);
        free(last);
    }
    free(ids);
    json_decref(g);
    close_fixture(&f);
}

/* ---- tree evaluation and selected logits ----------------------------------------------- */

static void test_tree_and_select(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    json_t *g = load_json("models/qwen2-tiny-b/golden.json");
    json_t *jids = NULL;
    const char *name;
    json_t *p;
    json_object_foreach(json_object_get(g, "prompts"), name, p) {
        if (json_array_size(json_object_get(p, "ids")) == 257) jids = json_object_get(p, "ids");
    }
    assert_non_null(jids);
    int32_t ids[257];
    for (int i = 0; i < 257; i++) ids[i] = (int32_t)json_integer_value(json_array_get(jids, i));
    for (int cpu = -1; cpu <= 0; cpu++) { /* best tier, scalar */
        fixture f;
        open_fixture(&f, "models/qwen2-tiny-b", cpu, 2);
        golden_check_tree_and_select(f.eng, ids, 200, AR_KV_F32);
        golden_check_tree_and_select(f.eng, ids, 31, AR_KV_F16);
        close_fixture(&f);
    }
    json_decref(g);
}

/* ---- bad input ------------------------------------------------------------------------- */

static void test_bad_input(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    fixture f;
    open_fixture(&f, "models/qwen2-tiny-b", -1, 2);
    ar_seq_params sp = ar_seq_default_params();
    sp.n_ctx = 16;
    ar_seq *s = NULL;
    assert_int_equal(ar_seq_new(f.eng, &sp, &s), AR_OK);
    float *logits = malloc((size_t)ar_engine_n_vocab(f.eng) * 20 * sizeof *logits);
    int32_t ids[20] = {1, 2, 3};
    assert_int_equal(ar_seq_eval(s, ids, 0, AR_LOGITS_LAST, logits), AR_ERR_INVALID_ARG);
    assert_non_null(strstr(ar_seq_errmsg(s), "no tokens"));
    ids[1] = 2048;
    assert_int_equal(ar_seq_eval(s, ids, 3, AR_LOGITS_LAST, logits), AR_ERR_INVALID_ARG);
    assert_non_null(strstr(ar_seq_errmsg(s), "id 2048) is outside the vocabulary of 2048"));
    ids[1] = -5;
    assert_int_equal(ar_seq_eval(s, ids, 3, AR_LOGITS_LAST, logits), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_seq_n_past(s), 0); /* nothing was appended */
    ids[1] = 2;
    assert_int_equal(ar_seq_eval(s, ids, 17, AR_LOGITS_NONE, NULL), AR_ERR_INVALID_ARG);
    assert_non_null(strstr(ar_seq_errmsg(s), "exceed the context of 16"));
    assert_int_equal(ar_seq_eval(s, ids, 16, AR_LOGITS_LAST, NULL), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_seq_eval(s, ids, 16, AR_LOGITS_NONE, NULL), AR_OK);
    assert_int_equal(ar_seq_eval(s, ids, 1, AR_LOGITS_NONE, NULL), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_seq_truncate(s, 17), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_seq_truncate(s, 0), AR_OK);
    /* A context beyond the model's training length is refused. */
    ar_seq *big = NULL;
    sp.n_ctx = 1 << 20;
    assert_int_equal(ar_seq_new(f.eng, &sp, &big), AR_ERR_INVALID_ARG);
    assert_non_null(strstr(ar_seq_errmsg(big), "exceeds the model's context"));
    ar_seq_free(big);
    ar_seq_free(s);
    free(logits);
    close_fixture(&f);

    /* A vocabulary-only model has no engine. */
    ar_model_params mp = ar_model_default_params();
    mp.allow_vocab_only = true;
    ar_model *m = NULL;
    assert_int_equal(
        ar_model_open(ar_test_data_path("qwen2-tokenizer/ggml-vocab-qwen2.5.gguf"), &mp, &m),
        AR_OK);
    ar_engine *e = NULL;
    assert_int_equal(ar_engine_new(m, NULL, &e), AR_ERR_INVALID_ARG);
    assert_non_null(strstr(ar_engine_errmsg(e), "vocabulary-only"));
    ar_engine_free(e);
    ar_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_a_safetensors),
        cmocka_unit_test(test_tiny_a_gguf_text_to_logits),
        cmocka_unit_test(test_tiny_b_every_tier),
        cmocka_unit_test(test_incremental_and_copy),
        cmocka_unit_test(test_tree_and_select),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
