/*
 * test_model_files.c - every model in the reference data opens, with the hyper-parameters
 * its config.json and README state, and the GGUF and safetensors forms of the same weights
 * agree.
 *
 * - every qwen2-tiny-q/gguf/<TYPE>.gguf (one cmocka test per file): hyper-parameters equal to
 *   qwen2-tiny-q/config.json, general.file_type and the matrix types from the README table,
 *   27 tensors with F32 vectors, the placeholder vocabulary, n_params equal to the
 *   safetensors checkpoint's.
 * - qwen2-tiny-a/gguf/F16.gguf: tied embeddings and the real Qwen2.5 tokenizer keys.
 * - the three safetensors directories (tiny-a, tiny-b, tiny-q) against their config.json.
 * - qwen2-tokenizer/ggml-vocab-qwen2.5.gguf: only with allow_vocab_only.
 * - every tensor of tiny-q's and tiny-a's F16.gguf dequantizes bit-identically to the same
 *   tensor of model.safetensors (GGUF names mapped to Hugging Face names).
 * Skipped when the reference data is absent (see testutil.h).
 */
#include "testutil.h"

#include "archrouter.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TINY_Q "models/qwen2-tiny-q"
#define TINY_A "models/qwen2-tiny-a"
#define TINY_B "models/qwen2-tiny-b"

/* ---- helpers -------------------------------------------------------------------------- */

static ar_model *open_rel(const char *rel, const ar_model_params *params) {
    char path[1024];
    snprintf(path, sizeof path, "%s", ar_test_data_path(rel));
    ar_model *m = NULL;
    ar_status st = ar_model_open(path, params, &m);
    if (st != AR_OK) fail_msg("%s: %s: %s", path, ar_strerror(st), ar_model_errmsg(m));
    return m;
}

static json_t *load_config(const char *model_dir) {
    char rel[256];
    snprintf(rel, sizeof rel, "%s/config.json", model_dir);
    json_error_t e;
    json_t *cfg = json_load_file(ar_test_data_path(rel), 0, &e);
    if (!cfg) fail_msg("%s: %s", rel, e.text);
    return cfg;
}

static int64_t cfg_int(json_t *cfg, const char *key) {
    json_t *v = json_object_get(cfg, key);
    if (!json_is_integer(v)) fail_msg("config.json: %s missing", key);
    return json_integer_value(v);
}

/* The hyper-parameters of `in` are those of config.json. */
static void check_against_config(const ar_model_info *in, json_t *cfg, const char *what) {
    const int64_t heads = cfg_int(cfg, "num_attention_heads");
    const int64_t embd = cfg_int(cfg, "hidden_size");
    const struct {
        const char *name;
        int64_t have, want;
    } ints[] = {
        {"n_layers", in->n_layers, cfg_int(cfg, "num_hidden_layers")},
        {"n_heads", in->n_heads, heads},
        {"n_kv_heads", in->n_kv_heads, cfg_int(cfg, "num_key_value_heads")},
        {"head_dim", in->head_dim, embd / heads},
        {"n_embd", in->n_embd, embd},
        {"n_ff", in->n_ff, cfg_int(cfg, "intermediate_size")},
        {"n_vocab", in->n_vocab, cfg_int(cfg, "vocab_size")},
        {"n_ctx_train", in->n_ctx_train, cfg_int(cfg, "max_position_embeddings")},
        {"tied", in->tied_embeddings, json_is_true(json_object_get(cfg, "tie_word_embeddings"))},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].have != ints[i].want)
            fail_msg("%s: %s = %lld, config.json says %lld", what, ints[i].name,
                     (long long)ints[i].have, (long long)ints[i].want);
    const float theta = (float)json_number_value(json_object_get(cfg, "rope_theta"));
    const float eps = (float)json_number_value(json_object_get(cfg, "rms_norm_eps"));
    if (in->rope_theta != theta) fail_msg("%s: rope_theta %g", what, (double)in->rope_theta);
    if (in->rms_eps != eps) fail_msg("%s: rms_eps %g", what, (double)in->rms_eps);
    assert_string_equal(in->architecture, "qwen2");
    assert_false(in->vocab_only);
}

static ar_model_info get_info(const ar_model *m) {
    ar_model_info in;
    assert_int_equal(ar_model_get_info(m, &in), AR_OK);
    return in;
}

/* ---- tiny-q GGUF files ---------------------------------------------------------------- */

typedef struct gguf_case {
    const char *file;      /* under qwen2-tiny-q/gguf */
    const char *file_type; /* general.file_type as ar_model_info names it */
    ar_type matrices;      /* the type of the 16 matrices (Q4_K_M: of most of them) */
} gguf_case;

/* The README's table. */
static const gguf_case tiny_q_files[] = {
    {"F16.gguf", "F16", AR_TYPE_F16},        {"BF16.gguf", "BF16", AR_TYPE_BF16},
    {"Q8_0.gguf", "Q8_0", AR_TYPE_Q8_0},     {"Q6_K.gguf", "Q6_K", AR_TYPE_Q6_K},
    {"Q5_K.gguf", "Q5_K_S", AR_TYPE_Q5_K},   {"Q4_K.gguf", "Q4_K_S", AR_TYPE_Q4_K},
    {"Q3_K.gguf", "Q3_K_S", AR_TYPE_Q3_K},   {"Q2_K.gguf", "Q2_K", AR_TYPE_Q2_K},
    {"Q4_0.gguf", "Q4_0", AR_TYPE_Q4_0},     {"Q4_1.gguf", "Q4_1", AR_TYPE_Q4_1},
    {"Q5_0.gguf", "Q5_0", AR_TYPE_Q5_0},     {"Q5_1.gguf", "Q5_1", AR_TYPE_Q5_1},
    {"Q4_K_M.gguf", "Q4_K_M", AR_TYPE_Q4_K},
};
#define N_TINY_Q (sizeof tiny_q_files / sizeof tiny_q_files[0])

static bool q4_k_m_exception(const char *name) {
    return strcmp(name, "output.weight") == 0 || strcmp(name, "blk.1.attn_v.weight") == 0 ||
           strcmp(name, "blk.1.ffn_down.weight") == 0;
}

static void test_tiny_q_gguf(void **state) {
    const gguf_case *c = *state;
    AR_REQUIRE_TESTDATA();
    char rel[256];
    snprintf(rel, sizeof rel, TINY_Q "/gguf/%s", c->file);
    ar_model *m = open_rel(rel, NULL);
    ar_model_info in = get_info(m);
    json_t *cfg = load_config(TINY_Q);
    check_against_config(&in, cfg, c->file);
    json_decref(cfg);
    assert_int_equal(in.head_dim, 128);
    assert_false(in.tied_embeddings);
    assert_string_equal(in.format, "gguf");
    assert_int_equal(in.format_version, 3);
    assert_string_equal(in.name, "qwen2-tiny-q");
    assert_string_equal(in.file_type, c->file_type);
    assert_int_equal(in.n_tensors, 27);
    assert_int_equal(in.n_files, 1);
    assert_string_equal(in.tokenizer_model, "gpt2");
    assert_string_equal(in.tokenizer_pre, "default");
    assert_int_equal(in.n_tokens, 512);
    assert_int_equal(in.bos_id, 511);
    assert_int_equal(in.eos_id, 511);
    assert_int_equal(in.pad_id, 511);
    assert_false(in.has_chat_template);
    assert_string_equal(ar_model_token_text(m, 0), "<t0>");
    assert_string_equal(ar_model_token_text(m, 511), "<t511>");
    assert_string_equal(ar_model_meta_str(m, "general.architecture"), "qwen2");
    /* Matrices have the file's type, vectors stay F32. */
    int n_matrices = 0;
    for (int32_t i = 0; i < ar_model_n_tensors(m); i++) {
        ar_tensor_info ti;
        assert_int_equal(ar_model_tensor_info(m, i, &ti), AR_OK);
        ar_type want = ti.n_dims == 1 ? AR_TYPE_F32
                       : strcmp(c->file, "Q4_K_M.gguf") == 0 && q4_k_m_exception(ti.name)
                           ? AR_TYPE_Q6_K
                           : c->matrices;
        if (ti.type != want)
            fail_msg("%s: %s has type %s, expected %s", c->file, ti.name, ar_type_name(ti.type),
                     ar_type_name(want));
        n_matrices += ti.n_dims == 2;
    }
    assert_int_equal(n_matrices, 16);
    /* The same element count as the safetensors checkpoint. */
    ar_model *st = open_rel(TINY_Q, NULL);
    ar_model_info sin = get_info(st);
    assert_int_equal(in.n_params, sin.n_params);
    ar_model_free(st);
    ar_model_free(m);
}

static void test_tiny_q_gguf_listing(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    /* The table above covers every GGUF file in the folder. */
    DIR *d = opendir(ar_test_data_path(TINY_Q "/gguf"));
    assert_non_null(d);
    struct dirent *e;
    size_t n = 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".gguf") != 0) continue;
        bool known = false;
        for (size_t i = 0; i < N_TINY_Q; i++) known |= strcmp(tiny_q_files[i].file, e->d_name) == 0;
        if (!known) fail_msg("%s is not in the test's table", e->d_name);
        n++;
    }
    closedir(d);
    assert_int_equal(n, N_TINY_Q);
}

/* ---- tiny-a GGUF ------------------------------------------------------------------------ */

static void test_tiny_a_gguf(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    ar_model *m = open_rel(TINY_A "/gguf/F16.gguf", NULL);
    ar_model_info in = get_info(m);
    json_t *cfg = load_config(TINY_A);
    check_against_config(&in, cfg, "tiny-a F16.gguf");
    json_decref(cfg);
    assert_int_equal(in.head_dim, 16);
    assert_true(in.tied_embeddings);
    assert_int_equal(in.n_tensors, 26);
    assert_int_equal(ar_model_tensor_find(m, "output.weight"), -1);
    assert_string_equal(in.file_type, "F16");
    assert_string_equal(in.name, "qwen2-tiny-a");
    assert_string_equal(in.tokenizer_model, "gpt2");
    assert_string_equal(in.tokenizer_pre, "qwen2");
    assert_int_equal(in.n_tokens, 151936);
    assert_int_equal(in.bos_id, 151643);
    assert_int_equal(in.eos_id, 151645);
    assert_int_equal(in.pad_id, 151643);
    assert_true(in.has_chat_template);
    assert_string_equal(ar_model_token_text(m, 151643), "<|endoftext|>");
    assert_string_equal(ar_model_token_text(m, 151645), "<|im_end|>");
    ar_model *st = open_rel(TINY_A, NULL);
    assert_int_equal(in.n_params, get_info(st).n_params);
    ar_model_free(st);
    ar_model_free(m);
}

/* ---- safetensors directories ------------------------------------------------------------ */

static void check_st_dir(const char *dir, int32_t n_tensors) {
    ar_model *m = open_rel(dir, NULL);
    ar_model_info in = get_info(m);
    json_t *cfg = load_config(dir);
    check_against_config(&in, cfg, dir);
    json_decref(cfg);
    assert_string_equal(in.format, "safetensors");
    assert_int_equal(in.n_files, 1);
    assert_int_equal(in.n_tensors, n_tensors);
    assert_string_equal(in.file_type, "F16");
    assert_int_equal(in.bos_id, 151643);
    assert_int_equal(in.eos_id, 151645);
    const char *base = strrchr(dir, '/') + 1;
    assert_string_equal(in.name, base);
    ar_model_free(m);
}

static void test_safetensors_dirs(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    check_st_dir(TINY_A, 26);
    check_st_dir(TINY_B, 27);
    check_st_dir(TINY_Q, 27);
    /* tiny-b: Arch-Router's attention shape. */
    ar_model *m = open_rel(TINY_B, NULL);
    ar_model_info in = get_info(m);
    assert_int_equal(in.head_dim, 128);
    assert_int_equal(in.n_heads, 6);
    assert_int_equal(in.n_kv_heads, 1);
    ar_model_free(m);
    /* The .safetensors file path opens the same model. */
    m = open_rel(TINY_Q "/model.safetensors", NULL);
    assert_int_equal(get_info(m).n_tensors, 27);
    ar_model_free(m);
}

/* ---- the vocabulary-only GGUF ----------------------------------------------------------- */

static void test_vocab_only_gguf(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    const char *rel = "qwen2-tokenizer/ggml-vocab-qwen2.5.gguf";
    char path[1024];
    snprintf(path, sizeof path, "%s", ar_test_data_path(rel));
    ar_model *m = NULL;
    assert_int_equal(ar_model_open(path, NULL, &m), AR_ERR_MODEL);
    assert_non_null(strstr(ar_model_errmsg(m), "the file has no tensors"));
    ar_model_free(m);
    ar_model_params p = ar_model_default_params();
    p.allow_vocab_only = true;
    m = open_rel(rel, &p);
    ar_model_info in = get_info(m);
    assert_true(in.vocab_only);
    assert_int_equal(in.n_tensors, 0);
    assert_int_equal(in.n_params, 0);
    assert_int_equal(in.format_version, 3);
    /* The qwen2.* keys of Arch-Router-1.5B (Qwen2.5-1.5B). */
    assert_int_equal(in.n_layers, 28);
    assert_int_equal(in.n_embd, 1536);
    assert_int_equal(in.n_ff, 8960);
    assert_int_equal(in.n_heads, 12);
    assert_int_equal(in.n_kv_heads, 2);
    assert_int_equal(in.head_dim, 128);
    assert_int_equal(in.n_ctx_train, 32768);
    assert_true(in.rope_theta == 1e6f);
    assert_true(in.rms_eps == 1e-6f);
    assert_int_equal(in.n_vocab, 151936);
    assert_int_equal(in.n_tokens, 151936);
    assert_string_equal(in.tokenizer_model, "gpt2");
    assert_string_equal(in.tokenizer_pre, "qwen2");
    assert_int_equal(in.bos_id, 151643);
    assert_int_equal(in.eos_id, 151645);
    assert_int_equal(in.pad_id, 151643);
    assert_true(in.has_chat_template);
    assert_string_equal(ar_model_token_text(m, 0), "!");
    assert_string_equal(ar_model_token_text(m, 151644), "<|im_start|>");
    assert_string_equal(ar_model_token_text(m, 151935), "[PAD151935]");
    assert_null(ar_model_token_text(m, 151936));
    ar_model_free(m);
}

/* ---- GGUF against safetensors, tensor by tensor ------------------------------------------ */

/* The Hugging Face name of a llama.cpp tensor name. */
static void hf_name(const char *gguf, char *out, size_t size) {
    static const struct {
        const char *gguf, *hf;
    } top[] = {{"token_embd.weight", "model.embed_tokens.weight"},
               {"output_norm.weight", "model.norm.weight"},
               {"output.weight", "lm_head.weight"}};
    static const struct {
        const char *gguf, *hf;
    } layer[] = {
        {"attn_norm.weight", "input_layernorm.weight"},
        {"attn_q.weight", "self_attn.q_proj.weight"},
        {"attn_q.bias", "self_attn.q_proj.bias"},
        {"attn_k.weight", "self_attn.k_proj.weight"},
        {"attn_k.bias", "self_attn.k_proj.bias"},
        {"attn_v.weight", "self_attn.v_proj.weight"},
        {"attn_v.bias", "self_attn.v_proj.bias"},
        {"attn_output.weight", "self_attn.o_proj.weight"},
        {"ffn_norm.weight", "post_attention_layernorm.weight"},
        {"ffn_gate.weight", "mlp.gate_proj.weight"},
        {"ffn_up.weight", "mlp.up_proj.weight"},
        {"ffn_down.weight", "mlp.down_proj.weight"},
    };
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if (strcmp(gguf, top[i].gguf) == 0) {
            snprintf(out, size, "%s", top[i].hf);
            return;
        }
    int l, n = 0;
    if (sscanf(gguf, "blk.%d.%n", &l, &n) == 1 && n > 0)
        for (size_t i = 0; i < sizeof layer / sizeof layer[0]; i++)
            if (strcmp(gguf + n, layer[i].gguf) == 0) {
                snprintf(out, size, "model.layers.%d.%s", l, layer[i].hf);
                return;
            }
    fail_msg("no Hugging Face name for %s", gguf);
}

static void compare_forms(const char *gguf_rel, const char *st_rel) {
    ar_model *g = open_rel(gguf_rel, NULL), *h = open_rel(st_rel, NULL);
    assert_int_equal(ar_model_n_tensors(g), ar_model_n_tensors(h));
    for (int32_t i = 0; i < ar_model_n_tensors(g); i++) {
        ar_tensor_info a, b;
        assert_int_equal(ar_model_tensor_info(g, i, &a), AR_OK);
        char name[128];
        hf_name(a.name, name, sizeof name);
        int32_t k = ar_model_tensor_find(h, name);
        if (k < 0) fail_msg("%s (%s) is not in the safetensors file", a.name, name);
        assert_int_equal(ar_model_tensor_info(h, k, &b), AR_OK);
        assert_int_equal(a.n_dims, b.n_dims);
        for (int d = 0; d < 4; d++)
            if (a.ne[d] != b.ne[d])
                fail_msg("%s: ne[%d] %lld vs %lld", a.name, d, (long long)a.ne[d],
                         (long long)b.ne[d]);
        assert_int_equal(a.type, b.type);
        float *x = malloc((size_t)a.n_elements * sizeof *x);
        float *y = malloc((size_t)b.n_elements * sizeof *y);
        assert_true(x && y);
        assert_int_equal(ar_model_tensor_to_f32(g, i, x, a.n_elements), AR_OK);
        assert_int_equal(ar_model_tensor_to_f32(h, k, y, b.n_elements), AR_OK);
        if (memcmp(x, y, (size_t)a.n_elements * sizeof *x) != 0)
            fail_msg("%s and %s differ", a.name, name);
        free(x);
        free(y);
    }
    ar_model_free(g);
    ar_model_free(h);
}

static void test_tiny_q_f16_equals_safetensors(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    compare_forms(TINY_Q "/gguf/F16.gguf", TINY_Q);
}

static void test_tiny_a_f16_equals_safetensors(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    compare_forms(TINY_A "/gguf/F16.gguf", TINY_A);
}

int main(void) {
    struct CMUnitTest tests[N_TINY_Q + 7];
    char names[N_TINY_Q][64];
    size_t n = 0;
    for (size_t i = 0; i < N_TINY_Q; i++) {
        snprintf(names[i], sizeof names[i], "test_tiny_q_gguf(%s)", tiny_q_files[i].file);
        struct CMUnitTest t = cmocka_unit_test_prestate(test_tiny_q_gguf, (void *)&tiny_q_files[i]);
        t.name = names[i];
        tests[n++] = t;
    }
    const struct CMUnitTest rest[] = {
        cmocka_unit_test(test_tiny_q_gguf_listing),
        cmocka_unit_test(test_tiny_a_gguf),
        cmocka_unit_test(test_safetensors_dirs),
        cmocka_unit_test(test_vocab_only_gguf),
        cmocka_unit_test(test_tiny_q_f16_equals_safetensors),
        cmocka_unit_test(test_tiny_a_f16_equals_safetensors),
    };
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++) tests[n++] = rest[i];
    return _cmocka_run_group_tests("model_files", tests, n, NULL, NULL);
}
