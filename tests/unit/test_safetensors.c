/*
 * test_safetensors.c - the safetensors reader (src/model/safetensors.h) and Hugging Face
 * checkpoint directories (src/model/hfdir.h) through ar_model_open().
 *
 * Files come from tests/common/model_writer.h. The reader is checked directly on bytes
 * (entries, dtypes, shapes, offsets, metadata), then whole checkpoints are opened from disk:
 * a directory with model.safetensors, a .safetensors path given directly, and sharded
 * directories with model.safetensors.index.json, where every tensor must be found in the
 * shard the index names and an index that lies (a missing tensor, the wrong shard, a path
 * leaving the directory, a missing shard) is refused with a message that names it.
 */
#include "testutil.h"

#include "archrouter.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "model_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------------- */

static ar_model *open_ok(const char *path) {
    ar_model *m = NULL;
    ar_status st = ar_model_open(path, NULL, &m);
    if (st != AR_OK) fail_msg("%s: %s: %s", path, ar_strerror(st), ar_model_errmsg(m));
    return m;
}

static void expect_open_fails(const char *path, ar_status want, const char *substr) {
    ar_model *m = NULL;
    ar_status st = ar_model_open(path, NULL, &m);
    const char *msg = ar_model_errmsg(m);
    if (st != want || !strstr(msg, substr))
        fail_msg("%s: expected %s with \"%s\", got %s: \"%s\"", path, ar_strerror(want), substr,
                 ar_strerror(st), msg);
    assert_int_equal(ar_model_n_tensors(m), 0);
    ar_model_free(m);
}

/* Every tensor of the model holds mw_value() of its own name. */
static void check_values(const ar_model *m) {
    for (int32_t i = 0; i < ar_model_n_tensors(m); i++) {
        ar_tensor_info ti;
        assert_int_equal(ar_model_tensor_info(m, i, &ti), AR_OK);
        float *x = malloc((size_t)ti.n_elements * sizeof *x);
        assert_non_null(x);
        assert_int_equal(ar_model_tensor_to_f32(m, i, x, ti.n_elements), AR_OK);
        for (uint64_t k = 0; k < ti.n_elements; k++)
            if (x[k] != mw_value(ti.name, k))
                fail_msg("%s[%llu] = %g, expected %g", ti.name, (unsigned long long)k, (double)x[k],
                         (double)mw_value(ti.name, k));
        free(x);
    }
}

static long file_size(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* ---- the reader on bytes ------------------------------------------------------------- */

static void test_parse_single_file(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    s.n_layers = 1;
    s.matrix_type = AR_TYPE_F16;
    json_t *header;
    mw_buf data = {0}, file = {0};
    mw_qwen2_st_parts(&s, &header, &data);
    mw_st_from_json(header, &data, &file);
    uint8_t *bytes = mw_dup(file.data, file.len);
    ar_safetensors st;
    ar_err err;
    ar_status rc = ar_safetensors_parse(&st, bytes, file.len, "t.safetensors", &err);
    if (rc != AR_OK) fail_msg("%s", err.msg);
    assert_int_equal(st.n_tensors, 1 + 12 + 2);
    assert_int_equal(st.data_offset, 8 + st.header_size);
    assert_int_equal(st.data_offset % 8, 0);
    assert_int_equal(file.len - st.data_offset, data.len);
    assert_non_null(st.metadata_format);
    assert_string_equal(st.metadata_format, "pt");
    /* Entries in header order, as the builder wrote them. */
    size_t i = 0;
    const char *name;
    json_t *e;
    json_object_foreach(header, name, e) {
        if (strcmp(name, "__metadata__") == 0) continue;
        const ar_st_tensor *t = &st.tensors[i++];
        assert_string_equal(t->name, name);
        json_t *shape = json_object_get(e, "shape"), *offs = json_object_get(e, "data_offsets");
        assert_int_equal(t->n_dims, (int32_t)json_array_size(shape));
        uint64_t n = 1;
        for (size_t d = 0; d < json_array_size(shape); d++) {
            assert_int_equal(t->shape[d], json_integer_value(json_array_get(shape, d)));
            n *= (uint64_t)t->shape[d];
        }
        assert_int_equal(t->n_elements, n);
        assert_int_equal(t->begin, json_integer_value(json_array_get(offs, 0)));
        assert_int_equal(t->end, json_integer_value(json_array_get(offs, 1)));
        assert_ptr_equal(t->data, bytes + st.data_offset + t->begin);
        const char *dt = json_string_value(json_object_get(e, "dtype"));
        assert_int_equal(t->dtype, strcmp(dt, "F16") == 0 ? AR_TYPE_F16 : AR_TYPE_F32);
    }
    assert_int_equal(i, st.n_tensors);
    /* An (out, in) matrix: q_proj is [H, E]. */
    assert_string_equal(st.tensors[2].name, "model.layers.0.self_attn.q_proj.weight");
    assert_int_equal(st.tensors[2].shape[0], 32);
    assert_int_equal(st.tensors[2].shape[1], 32);
    assert_string_equal(st.tensors[3].name, "model.layers.0.self_attn.q_proj.bias");
    assert_int_equal(st.tensors[3].n_dims, 1);
    ar_safetensors_free(&st);
    ar_safetensors_free(&st); /* idempotent */
    free(bytes);
    json_decref(header);
    mw_free(&data);
    mw_free(&file);
}

static void test_parse_scalars_and_empty(void **state) {
    (void)state;
    /* Rank 0 (one element), a zero-size tensor, no __metadata__, and no tensors at all. */
    const char *h = "{\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                    "\"z\":{\"dtype\":\"BF16\",\"shape\":[0,5],\"data_offsets\":[4,4]}}";
    float one = 1.0f;
    mw_buf f = {0};
    mw_st_assemble(h, strlen(h), &one, 4, 8, &f);
    uint8_t *bytes = mw_dup(f.data, f.len);
    ar_safetensors st;
    ar_err err;
    assert_int_equal(ar_safetensors_parse(&st, bytes, f.len, "s", &err), AR_OK);
    assert_int_equal(st.n_tensors, 2);
    assert_null(st.metadata_format);
    assert_int_equal(st.tensors[0].n_dims, 0);
    assert_int_equal(st.tensors[0].n_elements, 1);
    assert_int_equal(st.tensors[1].n_elements, 0);
    assert_int_equal(st.tensors[1].dtype, AR_TYPE_BF16);
    ar_safetensors_free(&st);
    free(bytes);
    mw_st_assemble("{}", 2, NULL, 0, 8, &f);
    bytes = mw_dup(f.data, f.len);
    assert_int_equal(ar_safetensors_parse(&st, bytes, f.len, "s", &err), AR_OK);
    assert_int_equal(st.n_tensors, 0);
    ar_safetensors_free(&st);
    free(bytes);
    mw_free(&f);
}

static void test_dtype_unsupported_named(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    json_t *header;
    mw_buf data = {0}, file = {0};
    mw_qwen2_st_parts(&s, &header, &data);
    /* Relabel an F32 norm (32 elements = 128 bytes) as I8 of 128 elements. */
    json_t *e = json_object_get(header, "model.layers.0.input_layernorm.weight");
    json_object_set_new(e, "dtype", json_string("I8"));
    json_object_set_new(e, "shape", json_pack("[i]", 128));
    mw_st_from_json(header, &data, &file);
    uint8_t *bytes = mw_dup(file.data, file.len);
    ar_safetensors st;
    ar_err err;
    assert_int_equal(ar_safetensors_parse(&st, bytes, file.len, "x.safetensors", &err),
                     AR_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "x.safetensors: tensor "
                                    "'model.layers.0.input_layernorm.weight' has dtype I8"));
    assert_int_equal(st.n_tensors, 0); /* left empty */
    free(bytes);
    /* And through a checkpoint directory on disk. */
    char *dir = mw_temp_subdir("st_i8");
    char *cfg = mw_qwen2_config(&s);
    free(mw_write_text(dir, "config.json", cfg));
    free(mw_write_file(dir, "model.safetensors", file.data, file.len));
    expect_open_fails(dir, AR_ERR_UNSUPPORTED,
                      "model.safetensors: tensor 'model.layers.0.input_layernorm.weight' has "
                      "dtype I8; archrouter reads F32, F16 and BF16");
    free(cfg);
    free(dir);
    json_decref(header);
    mw_free(&data);
    mw_free(&file);
}

static void test_dtypes(void **state) {
    (void)state;
    static const uint32_t types[] = {AR_TYPE_F32, AR_TYPE_F16, AR_TYPE_BF16};
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 3; j++) {
            mw_qwen2 s = mw_qwen2_default();
            s.matrix_type = types[i];
            s.vector_type = types[j];
            mw_buf f = {0};
            char *cfg;
            mw_qwen2_st(&s, &f, &cfg);
            ar_model *m = NULL;
            ar_status st = ar_model_open_memory(f.data, f.len, cfg, NULL, &m);
            if (st != AR_OK) fail_msg("%s", ar_model_errmsg(m));
            ar_tensor_info ti;
            assert_int_equal(
                ar_model_tensor_info(m, ar_model_tensor_find(m, "lm_head.weight"), &ti), AR_OK);
            assert_int_equal(ti.type, types[i]);
            assert_int_equal(
                ar_model_tensor_info(m, ar_model_tensor_find(m, "model.norm.weight"), &ti), AR_OK);
            assert_int_equal(ti.type, types[j]);
            check_values(m);
            ar_model_free(m);
            free(cfg);
            mw_free(&f);
        }
}

/* ---- checkpoint directories ------------------------------------------------------------ */

static void test_directory_single_file(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    s.matrix_type = AR_TYPE_BF16;
    char *dir = mw_qwen2_st_dir(&s, "tiny-single", 0, NULL, NULL);
    ar_model *m = open_ok(dir);
    ar_model_info in;
    assert_int_equal(ar_model_get_info(m, &in), AR_OK);
    assert_string_equal(in.format, "safetensors");
    assert_string_equal(in.name, "tiny-single"); /* the directory's name */
    assert_string_equal(in.file_type, "BF16");
    assert_int_equal(in.n_files, 1);
    assert_int_equal(in.n_tensors, 27);
    assert_int_equal(in.file_bytes, file_size(dir, "model.safetensors"));
    assert_int_equal(in.n_params, mw_qwen2_n_params(&s));
    assert_false(in.has_chat_template);
    check_values(m);
    ar_model_free(m);
    /* A trailing slash names the same directory. */
    char path[1024];
    snprintf(path, sizeof path, "%s//", dir);
    m = open_ok(path);
    assert_int_equal(ar_model_get_info(m, &in), AR_OK);
    assert_string_equal(in.name, "tiny-single");
    ar_model_free(m);
    free(dir);
}

static void test_safetensors_path_directly(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    char *dir = mw_qwen2_st_dir(&s, "tiny-path", 0, NULL, NULL);
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ar_model *m = open_ok(path);
    ar_model_info in;
    assert_int_equal(ar_model_get_info(m, &in), AR_OK);
    assert_int_equal(in.n_files, 1);
    assert_string_equal(in.name, "tiny-path");
    check_values(m);
    ar_model_free(m);
    /* The file's directory must hold config.json. */
    char *bare = mw_temp_subdir("no-config");
    mw_buf f = {0};
    mw_qwen2_st(&s, &f, NULL);
    char *p = mw_write_file(bare, "weights.safetensors", f.data, f.len);
    expect_open_fails(p, AR_ERR_IO, "no-config: no config.json");
    expect_open_fails(bare, AR_ERR_IO, "no-config: no config.json");
    free(p);
    mw_free(&f);
    free(bare);
    free(dir);
}

static void test_directory_without_weights(void **state) {
    (void)state;
    char *dir = mw_temp_subdir("only-config");
    mw_qwen2 s = mw_qwen2_default();
    char *cfg = mw_qwen2_config(&s);
    free(mw_write_text(dir, "config.json", cfg));
    expect_open_fails(dir, AR_ERR_IO,
                      "only-config: no model.safetensors or model.safetensors.index.json");
    free(cfg);
    free(dir);
}

/* The shard a loaded tensor came from, by name. */
static const char *shard_of(const ar_model *m, const char *name) {
    const ar_tensor *t = ar_model_find_tensor(m, name);
    if (!t) fail_msg("tensor %s not loaded", name);
    return m->hf.shard_names[t->file];
}

static void test_sharded_directory(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    s.matrix_type = AR_TYPE_F16;
    char *dir = mw_qwen2_st_dir(&s, "tiny-sharded", 3, NULL, NULL);
    ar_model *m = open_ok(dir);
    ar_model_info in;
    assert_int_equal(ar_model_get_info(m, &in), AR_OK);
    assert_int_equal(in.n_files, 3);
    assert_int_equal(in.n_tensors, 27);
    assert_int_equal(in.n_params, mw_qwen2_n_params(&s));
    long total = 0;
    for (int k = 0; k < 3; k++) total += file_size(dir, mw_shard_name(k, 3));
    assert_int_equal(in.file_bytes, total);
    /* Every tensor is in the shard the index names. */
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    size_t len;
    char *text = ar_test_read_file(path, &len);
    assert_non_null(text);
    json_t *index = json_loadb(text, len, 0, NULL);
    assert_non_null(index);
    json_t *map = json_object_get(index, "weight_map");
    assert_int_equal(json_object_size(map), 27);
    const char *name;
    json_t *v;
    int per_shard[3] = {0};
    json_object_foreach(map, name, v) {
        assert_string_equal(shard_of(m, name), json_string_value(v));
        for (int k = 0; k < 3; k++)
            if (strcmp(json_string_value(v), mw_shard_name(k, 3)) == 0) per_shard[k]++;
    }
    for (int k = 0; k < 3; k++) assert_int_equal(per_shard[k], 9);
    assert_string_equal(shard_of(m, "model.embed_tokens.weight"), mw_shard_name(0, 3));
    assert_string_equal(shard_of(m, "lm_head.weight"), mw_shard_name(2, 3));
    /* The file offset of a tensor is within its own shard. */
    const ar_tensor *t = ar_model_find_tensor(m, "lm_head.weight");
    assert_true(t->file_offset + t->n_bytes <= (uint64_t)file_size(dir, mw_shard_name(2, 3)));
    check_values(m);
    json_decref(index);
    free(text);
    ar_model_free(m);
    free(dir);
}

static void test_index_preferred_over_single_file(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    char *dir = mw_qwen2_st_dir(&s, "both", 2, NULL, NULL);
    /* A broken model.safetensors next to the index is not read. */
    free(mw_write_text(dir, "model.safetensors", "garbage"));
    ar_model *m = open_ok(dir);
    ar_model_info in;
    assert_int_equal(ar_model_get_info(m, &in), AR_OK);
    assert_int_equal(in.n_files, 2);
    ar_model_free(m);
    free(dir);
}

static void test_single_shard_path_ignores_index(void **state) {
    (void)state;
    /* Naming one shard opens that file alone: the other shard's tensors are missing. */
    mw_qwen2 s = mw_qwen2_default();
    char *dir = mw_qwen2_st_dir(&s, "one-shard", 2, NULL, NULL);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, mw_shard_name(0, 2));
    expect_open_fails(path, AR_ERR_MODEL, "missing tensor 'model.norm.weight'");
    free(dir);
}

static void add_missing_tensor(json_t *map, void *user) {
    (void)user;
    json_object_set_new(map, "model.extra.weight", json_string(mw_shard_name(0, 3)));
}

static void test_index_names_missing_tensor(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    char *dir = mw_qwen2_st_dir(&s, "idx-missing", 3, add_missing_tensor, NULL);
    expect_open_fails(dir, AR_ERR_FORMAT,
                      "model.safetensors.index.json lists tensor 'model.extra.weight' in "
                      "'model-00001-of-00003.safetensors', but no shard has it");
    free(dir);
}

static void move_to_wrong_shard(json_t *map, void *user) {
    (void)user;
    json_object_set_new(map, "model.embed_tokens.weight", json_string(mw_shard_name(2, 3)));
}

static void test_index_wrong_shard(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    char *dir = mw_qwen2_st_dir(&s, "idx-wrong", 3, move_to_wrong_shard, NULL);
    expect_open_fails(dir, AR_ERR_FORMAT,
                      "model.safetensors.index.json puts tensor 'model.embed_tokens.weight' in "
                      "'model-00003-of-00003.safetensors', but it is in "
                      "'model-00001-of-00003.safetensors'");
    free(dir);
}

static void set_first_shard_name(json_t *map, void *user) {
    json_object_set_new(map, "model.embed_tokens.weight", json_string((const char *)user));
}

static void test_index_path_outside_directory(void **state) {
    (void)state;
    static const char *const bad[] = {
        "../model-00001-of-00002.safetensors",
        "sub/model-00001-of-00002.safetensors",
        "/etc/model.safetensors",
        "..",
        ".",
        "",
        "model-00001-of-00002.bin",
    };
    mw_qwen2 s = mw_qwen2_default();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *dir = mw_qwen2_st_dir(&s, "idx-path", 2, set_first_shard_name, (void *)bad[i]);
        char want[256];
        snprintf(want, sizeof want,
                 "weight_map[\"model.embed_tokens.weight\"] = \"%s\" is not a .safetensors file "
                 "name in the checkpoint directory",
                 bad[i]);
        expect_open_fails(dir, AR_ERR_FORMAT, want);
        free(dir);
    }
}

static void test_index_missing_shard_file(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    char *dir = mw_qwen2_st_dir(&s, "idx-noshard", 2, set_first_shard_name,
                                "model-00009-of-00009.safetensors");
    expect_open_fails(dir, AR_ERR_IO, "model-00009-of-00009.safetensors: No such file");
    free(dir);
}

static void test_index_malformed(void **state) {
    (void)state;
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"{}", "\"weight_map\" missing, empty or not an object"},
        {"{\"weight_map\": {}}", "\"weight_map\" missing, empty or not an object"},
        {"{\"weight_map\": [\"a\"]}", "\"weight_map\" missing, empty or not an object"},
        {"{\"weight_map\": {\"a\": 1}}", "weight_map[\"a\"] is not a string"},
        {"{\"weight_map\": {\"a\": \"x.safetensors\"", "model.safetensors.index.json: line 1"},
        {"[1]", "model.safetensors.index.json: expected a JSON object"},
    };
    mw_qwen2 s = mw_qwen2_default();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = mw_qwen2_st_dir(&s, "idx-bad", 2, NULL, NULL);
        free(mw_write_text(dir, "model.safetensors.index.json", cases[i].text));
        expect_open_fails(dir, AR_ERR_FORMAT, cases[i].msg);
        free(dir);
    }
}

static void test_duplicate_across_shards(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    s.dup_tensor = "model.layers.0.input_layernorm.weight"; /* the copy lands in shard 2 */
    char *dir = mw_qwen2_st_dir(&s, "dup-shards", 2, NULL, NULL);
    expect_open_fails(dir, AR_ERR_FORMAT,
                      "duplicate tensor name 'model.layers.0.input_layernorm.weight' (in two "
                      "different shards)");
    free(dir);
}

static void test_bad_shard_named(void **state) {
    (void)state;
    /* A corrupt shard is named in the message. */
    mw_qwen2 s = mw_qwen2_default();
    char *dir = mw_qwen2_st_dir(&s, "bad-shard", 2, NULL, NULL);
    free(mw_write_file(dir, mw_shard_name(1, 2), "\x02\0\0\0\0\0\0\0[]", 10));
    expect_open_fails(dir, AR_ERR_FORMAT,
                      "model-00002-of-00002.safetensors: header at offset 8 is not a JSON "
                      "object");
    free(dir);
}

static void test_chat_template_detection(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    static const struct {
        const char *file, *text;
        bool want;
    } cases[] = {
        {"tokenizer_config.json", "{\"chat_template\": \"{{ messages }}\"}", true},
        {"tokenizer_config.json", "{\"chat_template\": [{\"name\": \"default\"}]}", true},
        {"tokenizer_config.json", "{\"model_max_length\": 10}", false},
        {"tokenizer_config.json", "not json", false},
        {"chat_template.jinja", "{{ messages }}", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = mw_qwen2_st_dir(&s, "tmpl", 0, NULL, NULL);
        free(mw_write_text(dir, cases[i].file, cases[i].text));
        ar_model *m = open_ok(dir);
        ar_model_info in;
        assert_int_equal(ar_model_get_info(m, &in), AR_OK);
        if (in.has_chat_template != cases[i].want)
            fail_msg("%s = %s: has_chat_template %d", cases[i].file, cases[i].text,
                     in.has_chat_template);
        ar_model_free(m);
        free(dir);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_single_file),
        cmocka_unit_test(test_parse_scalars_and_empty),
        cmocka_unit_test(test_dtype_unsupported_named),
        cmocka_unit_test(test_dtypes),
        cmocka_unit_test(test_directory_single_file),
        cmocka_unit_test(test_safetensors_path_directly),
        cmocka_unit_test(test_directory_without_weights),
        cmocka_unit_test(test_sharded_directory),
        cmocka_unit_test(test_index_preferred_over_single_file),
        cmocka_unit_test(test_single_shard_path_ignores_index),
        cmocka_unit_test(test_index_names_missing_tensor),
        cmocka_unit_test(test_index_wrong_shard),
        cmocka_unit_test(test_index_path_outside_directory),
        cmocka_unit_test(test_index_missing_shard_file),
        cmocka_unit_test(test_index_malformed),
        cmocka_unit_test(test_duplicate_across_shards),
        cmocka_unit_test(test_bad_shard_named),
        cmocka_unit_test(test_chat_template_detection),
    };
    return cmocka_run_group_tests_name("safetensors", tests, NULL, NULL);
}
