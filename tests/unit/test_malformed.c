/*
 * test_malformed.c - the corpus of hand-made malformed model files.
 *
 * Every case starts from bytes the loader must refuse and asserts two things: the status
 * code, and a distinctive part of ar_model_errmsg(), so that the message keeps naming what
 * was wrong and where (offset, key, tensor, field). Most GGUF cases are a valid image from
 * tests/common/model_writer.h with a few bytes patched at offsets the builder reports;
 * the rest are written byte by byte. Safetensors cases edit the JSON header or the
 * config.json text. A representative subset goes through files on disk (ar_model_open),
 * the rest through ar_model_open_memory() on an exact-size copy, so AddressSanitizer
 * catches any read past the end. Every failed handle is also checked to be inert.
 *
 * Two sweeps open every proper prefix of a small valid GGUF and safetensors file: each
 * must fail with AR_ERR_FORMAT, and none may crash.
 */
#include "testutil.h"

#include "archrouter.h"
#include "model/model.h"
#include "model_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------------- */

/* A failed open: the status, the message, and a handle that only answers errmsg/free. */
static void check_failed(ar_status st, ar_model *m, ar_status want, const char *substr,
                         const char *how) {
    if (!m) fail_msg("%s: no handle returned (status %s)", how, ar_strerror(st));
    const char *msg = ar_model_errmsg(m);
    if (st != want || !strstr(msg, substr))
        fail_msg("%s: expected %s with \"%s\", got %s: \"%s\"", how, ar_strerror(want), substr,
                 ar_strerror(st), msg);
    ar_model_info info;
    assert_int_equal(ar_model_get_info(m, &info), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_model_n_tensors(m), 0);
    assert_int_equal(ar_model_meta_count(m), 0);
    assert_int_equal(ar_model_tensor_find(m, "token_embd.weight"), -1);
    ar_model_free(m);
}

/* Open GGUF bytes from memory (exact-size copy) with `params` (NULL: defaults). */
static void expect_gguf_p(const void *data, size_t size, const ar_model_params *params,
                          ar_status want, const char *substr) {
    uint8_t *copy = mw_dup(data, size);
    ar_model *m = NULL;
    ar_status st = ar_model_open_memory(copy, size, NULL, params, &m);
    check_failed(st, m, want, substr, "GGUF in memory");
    free(copy);
}

static void expect_gguf(const mw_buf *b, ar_status want, const char *substr) {
    expect_gguf_p(b->data, b->len, NULL, want, substr);
}

/* Write bytes to <temp>/<name> and open that path. */
static void expect_file(const char *name, const void *data, size_t size,
                        const ar_model_params *params, ar_status want, const char *substr) {
    const char *path = ar_test_write_temp(0, name, data, size);
    assert_non_null(path);
    ar_model *m = NULL;
    ar_status st = ar_model_open(path, params, &m);
    check_failed(st, m, want, substr, path);
}

/* A safetensors shard and its config.json, from memory. */
static void expect_st(const mw_buf *file, const char *config, ar_status want, const char *substr) {
    uint8_t *copy = mw_dup(file->data, file->len);
    ar_model *m = NULL;
    ar_status st = ar_model_open_memory(copy, file->len, config, NULL, &m);
    check_failed(st, m, want, substr, "safetensors in memory");
    free(copy);
}

/* A checkpoint directory <temp>/<dir> with this shard and config, opened by path. */
static void expect_st_dir(const char *dir_name, const mw_buf *file, const char *config,
                          ar_status want, const char *substr) {
    char *dir = mw_temp_subdir(dir_name);
    free(mw_write_text(dir, "config.json", config));
    free(mw_write_file(dir, "model.safetensors", file->data, file->len));
    ar_model *m = NULL;
    ar_status st = ar_model_open(dir, NULL, &m);
    check_failed(st, m, want, substr, dir);
    free(dir);
}

/* A valid GGUF image of the default spec (or `spec`) and its layout. */
typedef struct image {
    mw_buf b;
    mw_gguf_layout l;
} image;

static image *make_image(const mw_qwen2 *spec) {
    image *im = calloc(1, sizeof *im);
    assert_non_null(im);
    mw_qwen2 def = mw_qwen2_default();
    mw_qwen2_gguf(spec ? spec : &def, &im->b, &im->l);
    return im;
}

static void free_image(image *im) {
    mw_free(&im->b);
    free(im);
}

static size_t kv_value_at(const image *im, const char *key) {
    const mw_gguf_kv_pos *k = mw_layout_kv(&im->l, key);
    if (!k) fail_msg("no key %s in the image", key);
    return k->value_at;
}

static const mw_gguf_tensor_pos *tensor_at(const image *im, const char *name) {
    const mw_gguf_tensor_pos *t = mw_layout_tensor(&im->l, name);
    if (!t) fail_msg("no tensor %s in the image", name);
    return t;
}

/* Patch a u32 / u64 in a valid image and expect the open to fail. */
static void patched_u32(size_t (*where)(const image *), uint32_t v, ar_status want,
                        const char *substr) {
    image *im = make_image(NULL);
    mw_patch_u32(im->b.data, where(im), v);
    expect_gguf(&im->b, want, substr);
    free_image(im);
}

/* A GGUF model whose metadata ends with the key/values `extra` writes. */
static void expect_extra_kv(void (*extra)(mw_buf *, void *), int n, ar_status want,
                            const char *substr) {
    mw_qwen2 spec = mw_qwen2_default();
    spec.extra_kv = extra;
    spec.n_extra_kv = n;
    image *im = make_image(&spec);
    expect_gguf(&im->b, want, substr);
    free_image(im);
}

/* A bare GGUF image: header and one key written by `body`. */
static void expect_raw_kv(void (*body)(mw_buf *), ar_status want, const char *substr) {
    mw_buf b = {0};
    mw_gguf_header(&b, 3, 0, 1);
    body(&b);
    expect_gguf(&b, want, substr);
    mw_free(&b);
}

/* ---- GGUF: the file as a whole -------------------------------------------------------- */

static void test_empty_file(void **state) {
    (void)state;
    expect_file("empty.gguf", "", 0, NULL, AR_ERR_FORMAT, "file is 0 bytes, too short for GGUF");
    expect_gguf_p("", 0, NULL, AR_ERR_FORMAT, "file is 0 bytes, too short for GGUF");
}

static void test_three_byte_file(void **state) {
    (void)state;
    expect_file("three.gguf", "GGU", 3, NULL, AR_ERR_FORMAT, "three.gguf: file is 3 bytes");
    expect_gguf_p("GGU", 3, NULL, AR_ERR_FORMAT, "file is 3 bytes, too short for GGUF");
}

static void test_wrong_magic(void **state) {
    (void)state;
    image *im = make_image(NULL);
    memcpy(im->b.data, "GGML", 4);
    expect_file("magic.gguf", im->b.data, im->b.len, NULL, AR_ERR_FORMAT,
                "not a GGUF file (magic 47 47 4d 4c)");
    expect_gguf(&im->b, AR_ERR_FORMAT, "bad magic 47 47 4d 4c at offset 0");
    free_image(im);
}

static void test_version_1(void **state) {
    (void)state;
    image *im = make_image(NULL);
    mw_patch_u32(im->b.data, im->l.version_at, 1);
    expect_gguf(&im->b, AR_ERR_UNSUPPORTED, "GGUF version 1 is obsolete");
    free_image(im);
}

static void test_version_4(void **state) {
    (void)state;
    image *im = make_image(NULL);
    mw_patch_u32(im->b.data, im->l.version_at, 4);
    expect_file("v4.gguf", im->b.data, im->b.len, NULL, AR_ERR_UNSUPPORTED,
                "GGUF version 4 is not supported");
    free_image(im);
}

static void test_version_big_endian(void **state) {
    (void)state;
    image *im = make_image(NULL);
    mw_patch_u32(im->b.data, im->l.version_at, 0x03000000u); /* bytes 00 00 00 03 */
    expect_gguf(&im->b, AR_ERR_UNSUPPORTED, "big-endian GGUF files are not supported");
    mw_patch_u32(im->b.data, im->l.version_at, 0x02000000u);
    expect_gguf(&im->b, AR_ERR_UNSUPPORTED, "big-endian");
    free_image(im);
}

static void test_truncated_header(void **state) {
    (void)state;
    image *im = make_image(NULL);
    expect_gguf_p(im->b.data, 6, NULL, AR_ERR_FORMAT,
                  "truncated file: the header needs 4 bytes at offset 4 but only 2 remain");
    expect_gguf_p(im->b.data, 20, NULL, AR_ERR_FORMAT,
                  "the header needs 8 bytes at offset 16 but only 4 remain");
    expect_file("trunc.gguf", im->b.data, im->b.len - 1, NULL, AR_ERR_FORMAT,
                "lies past the end of the file");
    free_image(im);
}

/* Every proper prefix of a small valid file fails cleanly with AR_ERR_FORMAT. */
static void test_truncation_sweep_gguf(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.n_layers = 1;
    spec.n_embd = 8;
    spec.n_heads = 2;
    spec.n_kv_heads = 1;
    spec.n_ff = 8;
    spec.n_vocab = 16;
    spec.n_tokens = 16;
    spec.bos_id = 1;
    spec.eos_id = 2;
    spec.name = "sweep";
    spec.chat_template = "{{ messages }}";
    spec.file_type = 0;
    image *im = make_image(&spec);
    ar_model *m = NULL;
    assert_int_equal(ar_model_open_memory(im->b.data, im->b.len, NULL, NULL, &m), AR_OK);
    ar_model_free(m);
    for (size_t n = 0; n < im->b.len; n++) {
        uint8_t *copy = mw_dup(im->b.data, n);
        m = NULL;
        ar_status st = ar_model_open_memory(copy, n, NULL, NULL, &m);
        if (st != AR_ERR_FORMAT || !m || !ar_model_errmsg(m)[0])
            fail_msg("prefix of %zu of %zu bytes: %s: %s", n, im->b.len, ar_strerror(st),
                     ar_model_errmsg(m));
        ar_model_free(m);
        free(copy);
    }
    free_image(im);
}

/* ---- GGUF: header counts and strings -------------------------------------------------- */

static size_t at_n_kv(const image *im) {
    return im->l.n_kv_at;
}

static size_t at_n_tensors(const image *im) {
    return im->l.n_tensors_at;
}

static void test_n_kv_huge(void **state) {
    (void)state;
    image *im = make_image(NULL);
    mw_patch_u64(im->b.data, at_n_kv(im), 1ull << 60);
    expect_gguf(&im->b, AR_ERR_FORMAT, "header claims 1152921504606846976 metadata entries");
    mw_patch_u64(im->b.data, at_n_kv(im), UINT64_MAX);
    expect_gguf(&im->b, AR_ERR_FORMAT, "header claims 18446744073709551615 metadata entries");
    free_image(im);
}

static void test_n_tensors_huge(void **state) {
    (void)state;
    image *im = make_image(NULL);
    mw_patch_u64(im->b.data, at_n_tensors(im), 1ull << 60);
    expect_gguf(&im->b, AR_ERR_FORMAT, "header claims 1152921504606846976 tensors");
    free_image(im);
}

static void test_n_tensors_too_many_for_data(void **state) {
    (void)state;
    /* One tensor more than written: the data of the last is read as a tensor info. */
    image *im = make_image(NULL);
    mw_patch_u64(im->b.data, at_n_tensors(im), (uint64_t)im->l.n_tensors + 1);
    expect_gguf(&im->b, AR_ERR_FORMAT, "");
    free_image(im);
}

static void test_key_length_huge(void **state) {
    (void)state;
    image *im = make_image(NULL);
    mw_patch_u64(im->b.data, im->l.kv[0].at, 1ull << 62);
    expect_gguf(&im->b, AR_ERR_FORMAT,
                "truncated file: metadata entry 0 needs 4611686018427387904 bytes at offset 32");
    free_image(im);
}

static void test_string_value_length_huge(void **state) {
    (void)state;
    image *im = make_image(NULL);
    mw_patch_u64(im->b.data, kv_value_at(im, "general.architecture"), UINT64_MAX);
    expect_gguf(&im->b, AR_ERR_FORMAT,
                "key 'general.architecture' needs 18446744073709551615 bytes at offset");
    free_image(im);
}

static void body_key_bad_utf8(mw_buf *b) {
    mw_gguf_kv_int(b, "gen\xc3(x", MW_U8, 1);
}

static void test_key_not_utf8(void **state) {
    (void)state;
    expect_raw_kv(body_key_bad_utf8, AR_ERR_FORMAT,
                  "metadata key at offset 24 is not valid UTF-8 (bad byte at offset 35)");
}

static void body_key_overlong(mw_buf *b) {
    mw_gguf_kv_int(b, "a\xc0\xaf", MW_U8, 1); /* "/" as an overlong two-byte form */
}

static void body_key_surrogate(mw_buf *b) {
    mw_gguf_kv_int(b, "ab\xed\xa0\x80", MW_U8, 1); /* U+D800 */
}

static void test_key_overlong_or_surrogate(void **state) {
    (void)state;
    expect_raw_kv(body_key_overlong, AR_ERR_FORMAT, "is not valid UTF-8 (bad byte at offset 33)");
    expect_raw_kv(body_key_surrogate, AR_ERR_FORMAT, "is not valid UTF-8 (bad byte at offset 34)");
}

static void body_key_nul(mw_buf *b) {
    mw_gguf_strn(b, "a\0b", 3);
    mw_u32(b, MW_U8);
    mw_u8(b, 1);
}

static void test_key_with_nul(void **state) {
    (void)state;
    expect_raw_kv(body_key_nul, AR_ERR_FORMAT, "metadata key at offset 24 contains a NUL byte");
}

static void body_key_empty(mw_buf *b) {
    mw_gguf_kv_int(b, "", MW_U8, 1);
}

static void test_key_empty(void **state) {
    (void)state;
    expect_raw_kv(body_key_empty, AR_ERR_FORMAT, "empty metadata key at offset 24");
}

static void body_key_too_long(mw_buf *b) {
    char *key = malloc(65537);
    assert_non_null(key);
    memset(key, 'k', 65536);
    key[65536] = 0;
    mw_gguf_kv_int(b, key, MW_U8, 1);
    free(key);
}

static void test_key_too_long(void **state) {
    (void)state;
    expect_raw_kv(body_key_too_long, AR_ERR_FORMAT,
                  "metadata key at offset 24 is 65536 bytes long (limit 65535)");
}

static void extra_dup_arch(mw_buf *b, void *user) {
    (void)user;
    mw_gguf_kv_str(b, "general.architecture", "qwen2");
}

static void test_duplicate_key(void **state) {
    (void)state;
    expect_extra_kv(extra_dup_arch, 1, AR_ERR_FORMAT,
                    "duplicate metadata key 'general.architecture'");
}

/* ---- GGUF: values --------------------------------------------------------------------- */

static void test_invalid_value_type(void **state) {
    (void)state;
    image *im = make_image(NULL);
    const mw_gguf_kv_pos *k = mw_layout_kv(&im->l, "qwen2.block_count");
    mw_patch_u32(im->b.data, k->type_at, 13);
    char want[128];
    snprintf(want, sizeof want, "key 'qwen2.block_count': invalid value type 13 at offset %zu",
             k->type_at);
    expect_gguf(&im->b, AR_ERR_FORMAT, want);
    mw_patch_u32(im->b.data, k->type_at, UINT32_MAX);
    expect_gguf(&im->b, AR_ERR_FORMAT, "invalid value type 4294967295");
    free_image(im);
}

static void extra_bad_bool(mw_buf *b, void *user) {
    (void)user;
    mw_gguf_key(b, "x.flag", MW_BOOL);
    mw_u8(b, 2);
}

static void test_invalid_bool(void **state) {
    (void)state;
    expect_extra_kv(extra_bad_bool, 1, AR_ERR_FORMAT, "key 'x.flag': invalid bool 2 at offset");
}

static void extra_bad_bool_array(mw_buf *b, void *user) {
    (void)user;
    mw_gguf_key(b, "x.flags", MW_ARRAY);
    mw_gguf_array(b, MW_BOOL, 3);
    mw_u8(b, 1);
    mw_u8(b, 0);
    mw_u8(b, 255);
}

static void test_invalid_bool_in_array(void **state) {
    (void)state;
    expect_extra_kv(extra_bad_bool_array, 1, AR_ERR_FORMAT, "key 'x.flags': invalid bool 255");
}

static void extra_bad_elem_type(mw_buf *b, void *user) {
    (void)user;
    mw_gguf_key(b, "x.arr", MW_ARRAY);
    mw_gguf_array(b, 13, 1);
    mw_u32(b, 0);
}

static void test_invalid_array_element_type(void **state) {
    (void)state;
    expect_extra_kv(extra_bad_elem_type, 1, AR_ERR_FORMAT,
                    "key 'x.arr': invalid array element type 13");
}

static void extra_u64_array_overflow(mw_buf *b, void *user) {
    (void)user;
    mw_gguf_key(b, "x.big", MW_ARRAY);
    mw_gguf_array(b, MW_U64, 1ull << 61); /* 2^61 * 8 bytes = 2^64: overflows */
    mw_u64(b, 0);
}

static void extra_u32_array_overflow(mw_buf *b, void *user) {
    (void)user;
    mw_gguf_key(b, "x.big32", MW_ARRAY);
    mw_gguf_array(b, MW_U32, (1ull << 62) + 1);
    mw_u32(b, 0);
}

static void extra_u64_array_huge(mw_buf *b, void *user) {
    (void)user;
    mw_gguf_key(b, "x.huge", MW_ARRAY);
    mw_gguf_array(b, MW_U64, 1ull << 40);
    mw_u64(b, 0);
}

static void test_array_count_overflows_size(void **state) {
    (void)state;
    expect_extra_kv(extra_u64_array_overflow, 1, AR_ERR_FORMAT,
                    "key 'x.big': array of 2305843009213693952 u64 values at offset");
    expect_extra_kv(extra_u64_array_overflow, 1, AR_ERR_FORMAT, "overflows its byte size");
    expect_extra_kv(extra_u32_array_overflow, 1, AR_ERR_FORMAT,
                    "key 'x.big32': array of 4611686018427387905 u32 values");
    /* No overflow, but far more than the file holds. */
    expect_extra_kv(extra_u64_array_huge, 1, AR_ERR_FORMAT,
                    "truncated file: key 'x.huge' needs 8796093022208 bytes");
}

static void extra_string_array_huge(mw_buf *b, void *user) {
    (void)user;
    mw_gguf_key(b, "x.strs", MW_ARRAY);
    mw_gguf_array(b, MW_STRING, 1ull << 40);
    mw_gguf_str(b, "a");
}

static void extra_string_array_wraps(mw_buf *b, void *user) {
    (void)user;
    mw_gguf_key(b, "x.strs", MW_ARRAY);
    mw_gguf_array(b, MW_STRING, 1ull << 61); /* 2^61 lengths of 8 bytes: 2^64 */
    mw_gguf_str(b, "a");
}

static void test_string_array_count_huge(void **state) {
    (void)state;
    expect_extra_kv(extra_string_array_huge, 1, AR_ERR_FORMAT,
                    "truncated file: key 'x.strs' holds 1099511627776 strings at offset");
    /* A count whose byte size would wrap is named as it is, not as a wrapped size. */
    expect_extra_kv(extra_string_array_wraps, 1, AR_ERR_FORMAT,
                    "truncated file: key 'x.strs' holds 2305843009213693952 strings");
}

static void extra_nested_too_deep(mw_buf *b, void *user) {
    (void)user;
    mw_gguf_key(b, "x.deep", MW_ARRAY);
    for (int d = 0; d < 40; d++) mw_gguf_array(b, MW_ARRAY, 1);
    mw_gguf_array(b, MW_U8, 0);
}

static void test_nesting_too_deep(void **state) {
    (void)state;
    expect_extra_kv(extra_nested_too_deep, 1, AR_ERR_FORMAT,
                    "key 'x.deep': arrays nested deeper than 16");
}

static void extra_nested_count_huge(mw_buf *b, void *user) {
    (void)user;
    mw_gguf_key(b, "x.nest", MW_ARRAY);
    mw_gguf_array(b, MW_ARRAY, UINT64_MAX);
    mw_gguf_array(b, MW_U8, 0);
}

static void extra_nested_count_wraps(mw_buf *b, void *user) {
    (void)user;
    mw_gguf_key(b, "x.nest", MW_ARRAY);
    mw_gguf_array(b, MW_ARRAY, 0x1555555555555556ull); /* * 12 = 2^64 + 8 */
    mw_gguf_array(b, MW_U8, 0);
}

static void test_nested_array_count_huge(void **state) {
    (void)state;
    expect_extra_kv(extra_nested_count_huge, 1, AR_ERR_FORMAT,
                    "truncated file: key 'x.nest' holds");
    /* A count whose byte size would wrap is named as it is. */
    expect_extra_kv(extra_nested_count_wraps, 1, AR_ERR_FORMAT,
                    "truncated file: key 'x.nest' holds 1537228672809129302 arrays");
}

/* ---- GGUF: tensor infos --------------------------------------------------------------- */

static void test_n_dims_0_and_5(void **state) {
    (void)state;
    image *im = make_image(NULL);
    const mw_gguf_tensor_pos *t = tensor_at(im, "blk.0.attn_q.weight");
    char want[160];
    snprintf(want, sizeof want,
             "tensor 'blk.0.attn_q.weight': 0 dimensions at offset %zu (expected 1 to 4)",
             t->n_dims_at);
    mw_patch_u32(im->b.data, t->n_dims_at, 0);
    expect_gguf(&im->b, AR_ERR_FORMAT, want);
    mw_patch_u32(im->b.data, t->n_dims_at, 5);
    expect_gguf(&im->b, AR_ERR_FORMAT, "tensor 'blk.0.attn_q.weight': 5 dimensions at offset");
    mw_patch_u32(im->b.data, t->n_dims_at, UINT32_MAX);
    expect_gguf(&im->b, AR_ERR_FORMAT, "4294967295 dimensions");
    free_image(im);
}

static void test_dimension_zero(void **state) {
    (void)state;
    image *im = make_image(NULL);
    const mw_gguf_tensor_pos *t = tensor_at(im, "blk.1.ffn_up.weight");
    mw_patch_u64(im->b.data, t->ne_at + 8, 0);
    char want[160];
    snprintf(want, sizeof want,
             "tensor 'blk.1.ffn_up.weight': dimension 1 has invalid size 0 at offset %zu",
             t->ne_at + 8);
    expect_gguf(&im->b, AR_ERR_FORMAT, want);
    free_image(im);
}

static void test_dimension_negative(void **state) {
    (void)state;
    image *im = make_image(NULL);
    const mw_gguf_tensor_pos *t = tensor_at(im, "token_embd.weight");
    mw_patch_u64(im->b.data, t->ne_at, (uint64_t)INT64_MAX + 1);
    expect_gguf(&im->b, AR_ERR_FORMAT,
                "tensor 'token_embd.weight': dimension 0 has invalid size 9223372036854775808");
    free_image(im);
}

static void test_ne_product_overflows(void **state) {
    (void)state;
    image *im = make_image(NULL);
    const mw_gguf_tensor_pos *t = tensor_at(im, "blk.0.attn_k.weight");
    mw_patch_u64(im->b.data, t->ne_at, 1ull << 32);
    mw_patch_u64(im->b.data, t->ne_at + 8, 1ull << 32);
    expect_gguf(&im->b, AR_ERR_FORMAT,
                "tensor 'blk.0.attn_k.weight': element count overflows at dimension 1");
    /* 2^31 * 2^32 = 2^63 > INT64_MAX, without wrapping u64. */
    mw_patch_u64(im->b.data, t->ne_at, 1ull << 31);
    expect_gguf(&im->b, AR_ERR_FORMAT, "element count overflows at dimension 1");
    free_image(im);
}

static void test_byte_size_overflows(void **state) {
    (void)state;
    /* [2^31, 2^31] F32: 2^62 elements fit int64, a row of 2^33 bytes fits, 2^31 rows do not. */
    image *im = make_image(NULL);
    const mw_gguf_tensor_pos *t = tensor_at(im, "blk.0.ffn_down.weight");
    mw_patch_u64(im->b.data, t->ne_at, 1ull << 31);
    mw_patch_u64(im->b.data, t->ne_at + 8, 1ull << 31);
    expect_gguf(&im->b, AR_ERR_FORMAT, "tensor 'blk.0.ffn_down.weight': byte size overflows");
    free_image(im);
    /* 2^61 F32 elements need 2^63 bytes: no overflow, but past the end. */
    im = make_image(NULL);
    t = tensor_at(im, "output_norm.weight");
    mw_patch_u64(im->b.data, t->ne_at, 1ull << 61);
    char want[160];
    snprintf(want, sizeof want,
             "tensor 'output_norm.weight': data [%llu, +9223372036854775808) lies past",
             (unsigned long long)t->offset);
    expect_gguf(&im->b, AR_ERR_FORMAT, want);
    /* 2^62 F32 elements: the row's byte size overflows. */
    mw_patch_u64(im->b.data, t->ne_at, 1ull << 62);
    expect_gguf(&im->b, AR_ERR_FORMAT, "tensor 'output_norm.weight': byte size overflows");
    free_image(im);
}

static void test_unknown_tensor_type(void **state) {
    (void)state;
    image *im = make_image(NULL);
    const mw_gguf_tensor_pos *t = tensor_at(im, "blk.0.ffn_gate.weight");
    mw_patch_u32(im->b.data, t->type_at, 99);
    expect_gguf(&im->b, AR_ERR_FORMAT, "tensor 'blk.0.ffn_gate.weight' has unknown type id 99");
    mw_patch_u32(im->b.data, t->type_at, UINT32_MAX);
    expect_gguf(&im->b, AR_ERR_FORMAT, "has unknown type id 4294967295");
    free_image(im);
}

static void test_unsupported_tensor_type(void **state) {
    (void)state;
    image *im = make_image(NULL);
    const mw_gguf_tensor_pos *t = tensor_at(im, "blk.0.ffn_gate.weight");
    mw_patch_u32(im->b.data, t->type_at, 17);
    expect_gguf(&im->b, AR_ERR_UNSUPPORTED,
                "tensor 'blk.0.ffn_gate.weight' has type IQ2_XS, which archrouter does not "
                "support");
    mw_patch_u32(im->b.data, t->type_at, 9);
    expect_gguf(&im->b, AR_ERR_UNSUPPORTED, "has type Q8_1");
    free_image(im);
}

static void test_quantized_row_not_whole_blocks(void **state) {
    (void)state;
    image *im = make_image(NULL); /* n_embd 32: one Q8_0 block, but not a Q4_K block */
    const mw_gguf_tensor_pos *t = tensor_at(im, "token_embd.weight");
    mw_patch_u32(im->b.data, t->type_at, AR_TYPE_Q4_K);
    expect_gguf(&im->b, AR_ERR_FORMAT,
                "tensor 'token_embd.weight': row of 32 elements is not a whole number of Q4_K "
                "blocks of 256");
    mw_patch_u64(im->b.data, t->ne_at, 40);
    mw_patch_u32(im->b.data, t->type_at, AR_TYPE_Q8_0);
    expect_gguf(&im->b, AR_ERR_FORMAT, "row of 40 elements is not a whole number of Q8_0");
    free_image(im);
}

static void test_tensor_name_too_long_or_bad(void **state) {
    (void)state;
    char name[258];
    memset(name, 'n', 257);
    name[257] = 0;
    const int64_t ne[1] = {4};
    mw_buf b = {0};
    mw_gguf_header(&b, 3, 1, 0);
    mw_gguf_tensor_info(&b, name, 1, ne, AR_TYPE_F32, 0);
    expect_gguf(&b, AR_ERR_FORMAT, "tensor name at offset 24 is 257 bytes long (limit 256)");
    b.len = 0;
    mw_gguf_header(&b, 3, 1, 0);
    mw_gguf_tensor_info(&b, "w\xff", 1, ne, AR_TYPE_F32, 0);
    expect_gguf(&b, AR_ERR_FORMAT, "tensor name at offset 24 is not valid UTF-8");
    b.len = 0;
    mw_gguf_header(&b, 3, 1, 0);
    mw_gguf_tensor_info(&b, "", 1, ne, AR_TYPE_F32, 0);
    expect_gguf(&b, AR_ERR_FORMAT, "empty tensor name at offset 24");
    mw_free(&b);
}

/* ---- GGUF: tensor data ---------------------------------------------------------------- */

static void test_tensor_offset_misaligned(void **state) {
    (void)state;
    image *im = make_image(NULL);
    const mw_gguf_tensor_pos *t = tensor_at(im, "blk.0.attn_v.bias");
    mw_patch_u64(im->b.data, t->offset_at, t->offset + 16);
    char want[160];
    snprintf(want, sizeof want,
             "tensor 'blk.0.attn_v.bias': data offset %llu is not a multiple of the alignment 32",
             (unsigned long long)(t->offset + 16));
    expect_gguf(&im->b, AR_ERR_FORMAT, want);
    free_image(im);
}

static void test_tensor_data_past_end(void **state) {
    (void)state;
    image *im = make_image(NULL);
    const mw_gguf_tensor_pos *t = tensor_at(im, "blk.0.attn_norm.weight");
    const uint64_t data_size = im->b.len - im->l.data_start;
    const uint64_t off = (data_size + 31) / 32 * 32;
    mw_patch_u64(im->b.data, t->offset_at, off);
    char want[200];
    snprintf(want, sizeof want,
             "tensor 'blk.0.attn_norm.weight': data [%llu, +128) lies past the end of the file "
             "(data section is %llu bytes at offset %zu)",
             (unsigned long long)off, (unsigned long long)data_size, im->l.data_start);
    expect_gguf(&im->b, AR_ERR_FORMAT, want);
    free_image(im);
}

static void test_tensor_offset_plus_size_overflows(void **state) {
    (void)state;
    image *im = make_image(NULL);
    const mw_gguf_tensor_pos *t = tensor_at(im, "output.weight");
    mw_patch_u64(im->b.data, t->offset_at, UINT64_MAX - 31); /* aligned, + size wraps */
    expect_gguf(&im->b, AR_ERR_FORMAT,
                "tensor 'output.weight': data [18446744073709551584, +6144) lies past the end");
    free_image(im);
}

static void test_data_section_missing(void **state) {
    (void)state;
    /* The file ends right after the tensor infos: the data start is past the end. */
    image *im = make_image(NULL);
    assert_true(im->l.data_start > im->l.infos_end); /* the default image needs padding */
    char want[160];
    snprintf(want, sizeof want,
             "truncated file: tensor data should start at offset %zu but the file is %zu bytes",
             im->l.data_start, im->l.infos_end);
    expect_gguf_p(im->b.data, im->l.infos_end, NULL, AR_ERR_FORMAT, want);
    free_image(im);
}

/* ---- GGUF: model-level checks --------------------------------------------------------- */

static void test_duplicate_tensor_names(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.dup_tensor = "blk.1.ffn_up.weight";
    image *im = make_image(&spec);
    expect_gguf(&im->b, AR_ERR_FORMAT, "duplicate tensor name 'blk.1.ffn_up.weight'");
    free_image(im);
}

static void test_missing_tensor(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.omit_tensor = "blk.1.attn_k.bias";
    image *im = make_image(&spec);
    expect_file("missing.gguf", im->b.data, im->b.len, NULL, AR_ERR_MODEL,
                "missing tensor 'blk.1.attn_k.bias'");
    free_image(im);
}

static void test_missing_token_embd(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.omit_tensor = "token_embd.weight";
    image *im = make_image(&spec);
    expect_gguf(&im->b, AR_ERR_MODEL, "missing tensor 'token_embd.weight'");
    free_image(im);
}

static void test_wrong_shape(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.mod_tensor = "blk.0.attn_k.weight";
    spec.mod_n_dims = 2;
    spec.mod_ne[0] = 32;
    spec.mod_ne[1] = 8;
    image *im = make_image(&spec);
    expect_gguf(&im->b, AR_ERR_MODEL,
                "tensor 'blk.0.attn_k.weight' has shape [32, 8], expected [32, 16]");
    free_image(im);
}

static void test_wrong_rank(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.mod_tensor = "output_norm.weight";
    spec.mod_n_dims = 2;
    spec.mod_ne[0] = 32;
    spec.mod_ne[1] = 1;
    image *im = make_image(&spec);
    expect_gguf(&im->b, AR_ERR_MODEL,
                "tensor 'output_norm.weight' has shape [32, 1], expected [32]");
    free_image(im);
}

static void test_quantized_norm(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.mod_tensor = "blk.1.ffn_norm.weight";
    spec.mod_type = AR_TYPE_Q8_0;
    image *im = make_image(&spec);
    expect_gguf(&im->b, AR_ERR_MODEL,
                "tensor 'blk.1.ffn_norm.weight' has type Q8_0; norms and biases must be F32, "
                "F16 or BF16");
    free_image(im);
}

static size_t at_head_count(const image *im) {
    return kv_value_at(im, "qwen2.attention.head_count");
}

static size_t at_head_count_kv(const image *im) {
    return kv_value_at(im, "qwen2.attention.head_count_kv");
}

static size_t at_block_count(const image *im) {
    return kv_value_at(im, "qwen2.block_count");
}

static size_t at_embd(const image *im) {
    return kv_value_at(im, "qwen2.embedding_length");
}

static void test_head_count_zero(void **state) {
    (void)state;
    patched_u32(at_head_count, 0, AR_ERR_MODEL,
                "qwen2.attention.head_count = 0 is out of range (1..4096)");
}

static void test_head_count_kv_not_dividing(void **state) {
    (void)state;
    patched_u32(at_head_count_kv, 3, AR_ERR_MODEL,
                "GGUF: 4 attention heads is not a multiple of 3 key/value heads");
    patched_u32(at_head_count_kv, 8, AR_ERR_MODEL, "4 attention heads is not a multiple of 8");
    patched_u32(at_head_count_kv, 0, AR_ERR_MODEL, "qwen2.attention.head_count_kv = 0 is out");
}

static void test_block_count_out_of_range(void **state) {
    (void)state;
    patched_u32(at_block_count, 0, AR_ERR_MODEL, "qwen2.block_count = 0 is out of range");
    patched_u32(at_block_count, 5000, AR_ERR_MODEL, "qwen2.block_count = 5000 is out of range");
}

static void test_embedding_not_multiple_of_heads(void **state) {
    (void)state;
    patched_u32(at_embd, 30, AR_ERR_MODEL, "embedding size 30 is not a multiple of 4 heads");
}

static void test_missing_hparam_keys(void **state) {
    (void)state;
    static const char *const keys[] = {"qwen2.block_count", "qwen2.embedding_length",
                                       "qwen2.feed_forward_length", "qwen2.attention.head_count",
                                       "qwen2.attention.layer_norm_rms_epsilon"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        mw_qwen2 spec = mw_qwen2_default();
        spec.omit_key = keys[i];
        image *im = make_image(&spec);
        char want[128];
        snprintf(want, sizeof want, "missing metadata key '%s'", keys[i]);
        expect_gguf(&im->b, AR_ERR_MODEL, want);
        free_image(im);
    }
    mw_qwen2 spec = mw_qwen2_default();
    spec.omit_key = "general.architecture";
    image *im = make_image(&spec);
    expect_gguf(&im->b, AR_ERR_FORMAT, "missing metadata key 'general.architecture'");
    free_image(im);
}

static void extra_head_count_str(mw_buf *b, void *user) {
    (void)user;
    mw_gguf_kv_str(b, "qwen2.attention.head_count", "4");
}

static void extra_arch_u32(mw_buf *b, void *user) {
    (void)user;
    mw_gguf_kv_int(b, "general.architecture", MW_U32, 2);
}

static void test_hparam_wrong_type(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.omit_key = "qwen2.attention.head_count";
    spec.extra_kv = extra_head_count_str;
    spec.n_extra_kv = 1;
    image *im = make_image(&spec);
    expect_gguf(&im->b, AR_ERR_FORMAT,
                "metadata key 'qwen2.attention.head_count' has type string, expected an integer");
    free_image(im);
    /* general.architecture as a number. */
    spec = mw_qwen2_default();
    spec.omit_key = "general.architecture";
    spec.extra_kv = extra_arch_u32;
    spec.n_extra_kv = 1;
    im = make_image(&spec);
    expect_gguf(&im->b, AR_ERR_FORMAT,
                "metadata key 'general.architecture' has type u32, expected string");
    free_image(im);
}

static void test_rope_and_eps_out_of_range(void **state) {
    (void)state;
    image *im = make_image(NULL);
    float f = -1.0f;
    uint32_t u;
    memcpy(&u, &f, 4);
    mw_patch_u32(im->b.data, kv_value_at(im, "qwen2.rope.freq_base"), u);
    expect_gguf(&im->b, AR_ERR_MODEL, "GGUF: rope theta -1 must be positive");
    free_image(im);
    im = make_image(NULL);
    mw_patch_u32(im->b.data, kv_value_at(im, "qwen2.attention.layer_norm_rms_epsilon"), 0);
    expect_gguf(&im->b, AR_ERR_MODEL, "GGUF: RMS norm epsilon 0 must be in (0, 1)");
    mw_patch_u32(im->b.data, kv_value_at(im, "qwen2.attention.layer_norm_rms_epsilon"),
                 0x7fc00000u); /* NaN */
    expect_gguf(&im->b, AR_ERR_MODEL, "RMS norm epsilon nan must be in (0, 1)");
    free_image(im);
}

static void test_head_dim_odd_or_mismatched(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.head_dim = 8; /* writes key_length and value_length */
    image *im = make_image(&spec);
    mw_patch_u32(im->b.data, kv_value_at(im, "qwen2.attention.key_length"), 7);
    mw_patch_u32(im->b.data, kv_value_at(im, "qwen2.attention.value_length"), 7);
    expect_gguf(&im->b, AR_ERR_MODEL, "GGUF: head dimension 7 must be even and at most 4096");
    mw_patch_u32(im->b.data, kv_value_at(im, "qwen2.attention.key_length"), 8);
    mw_patch_u32(im->b.data, kv_value_at(im, "qwen2.attention.value_length"), 16);
    expect_gguf(&im->b, AR_ERR_UNSUPPORTED,
                "qwen2.attention.value_length 16 differs from key_length 8");
    free_image(im);
}

static void test_unsupported_architecture_gguf(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.arch = "llama";
    image *im = make_image(&spec);
    expect_gguf(&im->b, AR_ERR_UNSUPPORTED,
                "unsupported architecture 'llama' (archrouter runs qwen2 models)");
    free_image(im);
}

static size_t at_alignment(const image *im) {
    return kv_value_at(im, "general.alignment");
}

static void test_alignment_zero_three_string(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.alignment = 64;
    image *im = make_image(&spec);
    mw_patch_u32(im->b.data, at_alignment(im), 0);
    expect_gguf(&im->b, AR_ERR_FORMAT, "general.alignment is 0, expected a power of two");
    mw_patch_u32(im->b.data, at_alignment(im), 3);
    expect_file("align3.gguf", im->b.data, im->b.len, NULL, AR_ERR_FORMAT,
                "general.alignment is 3, expected a power of two");
    /* The same key as a string: type string, then u64 length 2, "32". */
    mw_buf b = {0};
    mw_gguf_header(&b, 3, 0, 1);
    mw_gguf_kv_str(&b, "general.alignment", "32");
    expect_gguf(&b, AR_ERR_FORMAT, "general.alignment has type string, expected u32");
    mw_free(&b);
    free_image(im);
}

/* ---- GGUF: vocabulary ----------------------------------------------------------------- */

static void test_special_id_past_vocab(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.n_tokens = 48;
    spec.bos_id = 48;
    image *im = make_image(&spec);
    expect_gguf(&im->b, AR_ERR_FORMAT,
                "tokenizer.ggml.bos_token_id = 48 is outside the vocabulary (48 tokens)");
    free_image(im);
    spec.bos_id = 1;
    spec.pad_id = 1000;
    im = make_image(&spec);
    expect_gguf(&im->b, AR_ERR_FORMAT, "tokenizer.ggml.padding_token_id = 1000 is outside");
    free_image(im);
}

static void test_vocab_larger_than_embedding(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.n_tokens = 49;
    image *im = make_image(&spec);
    expect_gguf(&im->b, AR_ERR_MODEL, "the vocabulary has 49 tokens but token_embd only 48 rows");
    free_image(im);
}

static void extra_tokens_u32(mw_buf *b, void *user) {
    (void)user;
    mw_gguf_key(b, "tokenizer.ggml.tokens", MW_ARRAY);
    mw_gguf_array(b, MW_U32, 1);
    mw_u32(b, 0);
}

static void test_tokens_not_strings(void **state) {
    (void)state;
    expect_extra_kv(extra_tokens_u32, 1, AR_ERR_FORMAT,
                    "metadata key 'tokenizer.ggml.tokens' is an array of u32, expected an array "
                    "of string");
}

/* ---- limits --------------------------------------------------------------------------- */

static void test_max_file_bytes(void **state) {
    (void)state;
    image *im = make_image(NULL);
    ar_model_params p = ar_model_default_params();
    p.max_file_bytes = im->b.len - 1;
    char want[128];
    snprintf(want, sizeof want, "file is %zu bytes, over the limit of %zu", im->b.len,
             im->b.len - 1);
    expect_file("limit.gguf", im->b.data, im->b.len, &p, AR_ERR_LIMIT, want);
    /* Exactly the limit is fine. */
    p.max_file_bytes = im->b.len;
    const char *path = ar_test_write_temp(1, "limit_ok.gguf", im->b.data, im->b.len);
    ar_model *m = NULL;
    assert_int_equal(ar_model_open(path, &p, &m), AR_OK);
    ar_model_free(m);
    free_image(im);
}

static void test_max_file_bytes_safetensors(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    char *dir = mw_qwen2_st_dir(&spec, "limit_st", 2, NULL, NULL);
    ar_model_params p = ar_model_default_params();
    p.max_file_bytes = 1000;
    ar_model *m = NULL;
    ar_status st = ar_model_open(dir, &p, &m);
    check_failed(st, m, AR_ERR_LIMIT, "model-00001-of-00002.safetensors: file is", dir);
    free(dir);
}

static void test_missing_file(void **state) {
    (void)state;
    ar_model *m = NULL;
    ar_status st = ar_model_open("/nonexistent/dir/model.gguf", NULL, &m);
    check_failed(st, m, AR_ERR_IO, "/nonexistent/dir/model.gguf: No such file or directory",
                 "missing");
    st = ar_model_open("/nonexistent/model.safetensors", NULL, &m);
    check_failed(st, m, AR_ERR_IO, "/nonexistent/model.safetensors: No such file", "missing");
    st = ar_model_open("", NULL, &m);
    check_failed(st, m, AR_ERR_INVALID_ARG, "no model path given", "empty path");
}

/* ---- safetensors: the header ---------------------------------------------------------- */

/* A one-tensor safetensors file: header text (as given) + `data_len` bytes of data. */
static void raw_st(mw_buf *out, const char *header, size_t data_len, size_t align) {
    uint8_t *data = calloc(1, data_len + 1);
    assert_non_null(data);
    mw_st_assemble(header, strlen(header), data, data_len, align, out);
    free(data);
}

static char *default_config(void) {
    mw_qwen2 spec = mw_qwen2_default();
    return mw_qwen2_config(&spec);
}

/* Expect a raw header (8-aligned) with `data_len` bytes of data to fail. */
static void expect_raw_st(const char *header, size_t data_len, ar_status want, const char *substr) {
    mw_buf f = {0};
    raw_st(&f, header, data_len, 8);
    char *cfg = default_config();
    expect_st(&f, cfg, want, substr);
    free(cfg);
    mw_free(&f);
}

#define W16 "\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}"

static void test_st_raw_valid_reaches_binding(void **state) {
    (void)state;
    /* The raw builder's baseline: a well-formed file that only lacks the model's tensors. */
    expect_raw_st("{" W16 "}", 16, AR_ERR_MODEL, "missing tensor 'model.embed_tokens.weight'");
}

static void test_st_too_short(void **state) {
    (void)state;
    mw_buf f = {0};
    mw_bytes(&f, "\x02\0\0\0\0", 5);
    char *cfg = default_config();
    expect_st(&f, cfg, AR_ERR_FORMAT,
              "model.safetensors: file is 5 bytes, too short for safetensors");
    free(cfg);
    mw_free(&f);
}

static void test_st_header_size_past_end(void **state) {
    (void)state;
    mw_buf f = {0};
    mw_u64(&f, 1000);
    mw_bytes(&f, "{}", 2);
    char *cfg = default_config();
    expect_st_dir("st_past_end", &f, cfg, AR_ERR_FORMAT,
                  "model.safetensors: header size 1000 runs past the end of the file (10 bytes)");
    free(cfg);
    mw_free(&f);
}

static void test_st_header_size_over_limit(void **state) {
    (void)state;
    mw_buf f = {0};
    mw_u64(&f, 100000001);
    mw_bytes(&f, "{}", 2);
    char *cfg = default_config();
    expect_st(&f, cfg, AR_ERR_FORMAT,
              "header size 100000001 exceeds the format's limit of 100000000 bytes");
    mw_patch_u64(f.data, 0, UINT64_MAX);
    expect_st(&f, cfg, AR_ERR_FORMAT, "header size 18446744073709551615 exceeds");
    free(cfg);
    mw_free(&f);
}

static void test_st_header_not_json(void **state) {
    (void)state;
    expect_raw_st("{\"w\": nope}", 0, AR_ERR_FORMAT, "model.safetensors: JSON header, byte");
}

static void test_st_header_not_object(void **state) {
    (void)state;
    expect_raw_st("[1, 2]", 0, AR_ERR_FORMAT,
                  "header at offset 8 is not a JSON object (not a safetensors file?)");
    expect_raw_st("  {}", 0, AR_ERR_FORMAT, "header at offset 8 is not a JSON object");
    mw_buf f = {0};
    mw_u64(&f, 0);
    char *cfg = default_config();
    expect_st(&f, cfg, AR_ERR_FORMAT, "header at offset 8 is not a JSON object");
    free(cfg);
    mw_free(&f);
}

static void test_st_header_trailing_garbage(void **state) {
    (void)state;
    expect_raw_st("{" W16 "} x", 16, AR_ERR_FORMAT, "JSON header, byte");
}

static void test_st_duplicate_names(void **state) {
    (void)state;
    expect_raw_st("{" W16 "," W16 "}", 16, AR_ERR_FORMAT, "duplicate object key");
}

static void test_st_dtype_missing(void **state) {
    (void)state;
    expect_raw_st("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, AR_ERR_FORMAT,
                  "model.safetensors: tensor 'w': \"dtype\" missing or not a string");
    expect_raw_st("{\"w\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, AR_ERR_FORMAT,
                  "tensor 'w': \"dtype\" missing or not a string");
}

static void test_st_dtype_unknown(void **state) {
    (void)state;
    expect_raw_st("{\"w\":{\"dtype\":\"F12\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                  AR_ERR_FORMAT, "tensor 'w' has unknown dtype \"F12\"");
    expect_raw_st("{\"w\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                  AR_ERR_FORMAT, "has unknown dtype \"f32\"");
}

static void test_st_dtype_unsupported(void **state) {
    (void)state;
    expect_raw_st("{\"w\":{\"dtype\":\"I8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8,
                  AR_ERR_UNSUPPORTED,
                  "tensor 'w' has dtype I8; archrouter reads F32, F16 and BF16");
    expect_raw_st("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8,
                  AR_ERR_UNSUPPORTED, "has dtype F8_E4M3");
}

static void test_st_shape_negative_or_fractional(void **state) {
    (void)state;
    expect_raw_st("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-2],\"data_offsets\":[0,16]}}", 16,
                  AR_ERR_FORMAT, "tensor 'w': shape[1] is not a non-negative integer");
    expect_raw_st("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,16]}}", 16,
                  AR_ERR_FORMAT, "tensor 'w': shape[0] is not a non-negative integer");
    expect_raw_st("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8,
                  AR_ERR_FORMAT, "shape[0] is not a non-negative integer");
    expect_raw_st("{\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8,
                  AR_ERR_FORMAT, "tensor 'w': \"shape\" missing or not an array");
}

static void test_st_shape_five_dims(void **state) {
    (void)state;
    expect_raw_st("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}}", 8,
                  AR_ERR_UNSUPPORTED, "tensor 'w' has 5 dimensions (archrouter handles up to 4)");
}

static void test_st_shape_product_overflows(void **state) {
    (void)state;
    expect_raw_st("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                  "\"data_offsets\":[0,8]}}",
                  8, AR_ERR_FORMAT, "tensor 'w': element count overflows");
    /* 2^62 + 1 elements fit, their bytes (x 4) do not. */
    expect_raw_st("{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387905],"
                  "\"data_offsets\":[0,8]}}",
                  8, AR_ERR_FORMAT, "tensor 'w': byte size of the shape overflows");
}

static void test_st_offsets_reversed(void **state) {
    (void)state;
    expect_raw_st("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,0]}}", 16,
                  AR_ERR_FORMAT, "tensor 'w': data_offsets end 0 is before begin 16");
}

static void test_st_offsets_malformed(void **state) {
    (void)state;
    static const char *const bad[] = {
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0]}}",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16,16]}}",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[-16,0]}}",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":{\"a\":1}}}",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4]}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_raw_st(bad[i], 16, AR_ERR_FORMAT,
                      "tensor 'w': \"data_offsets\" must be [begin, end] with non-negative "
                      "integers");
}

static void test_st_offsets_overlap(void **state) {
    (void)state;
    expect_raw_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
                  24, AR_ERR_FORMAT,
                  "tensor 'b': data_offsets begin at 8 but the previous tensor ends at 16 "
                  "(overlap)");
}

static void test_st_offsets_gap(void **state) {
    (void)state;
    expect_raw_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[20,36]}}",
                  36, AR_ERR_FORMAT,
                  "tensor 'b': data_offsets begin at 20 but the previous tensor ends at 16 (gap)");
    expect_raw_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24,
                  AR_ERR_FORMAT,
                  "tensor 'a': data_offsets begin at 8 but the previous tensor "
                  "ends at 0 (gap)");
}

static void test_st_offsets_past_end(void **state) {
    (void)state;
    expect_raw_st("{" W16 "}", 12, AR_ERR_FORMAT,
                  "tensor 'w': data_offsets end 16 is past the end of the data (12 bytes)");
}

static void test_st_data_after_tensors(void **state) {
    (void)state;
    expect_raw_st("{" W16 "}", 20, AR_ERR_FORMAT,
                  "the tensors cover 16 bytes of data but the file has 20 after the header");
}

static void test_st_offsets_size_mismatch(void **state) {
    (void)state;
    expect_raw_st("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12,
                  AR_ERR_FORMAT,
                  "tensor 'w': data_offsets cover 12 bytes but the shape and dtype need 16");
    expect_raw_st("{\"w\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                  AR_ERR_FORMAT, "data_offsets cover 8 bytes but the shape and dtype need 6");
}

static void test_st_misaligned_f32(void **state) {
    (void)state;
    /* An F16 tensor of 3 elements (6 bytes) pushes the F32 tensor after it off 4. */
    expect_raw_st("{\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[6,10]}}",
                  10, AR_ERR_FORMAT, "is not aligned to its 4-byte elements");
    /* A header padded with spaces until the data starts at 2 mod 4. */
    char header[128] = "{" W16 "}";
    while ((8 + strlen(header)) % 4 != 2) strcat(header, " ");
    mw_buf f = {0};
    raw_st(&f, header, 16, 1);
    char *cfg = default_config();
    char want[128];
    snprintf(want, sizeof want,
             "tensor 'w': data at file offset %zu is not aligned to its 4-byte elements",
             8 + strlen(header));
    expect_st(&f, cfg, AR_ERR_FORMAT, want);
    free(cfg);
    mw_free(&f);
}

static void test_st_invalid_utf8(void **state) {
    (void)state;
    expect_raw_st("{\"w\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                  AR_ERR_FORMAT, "JSON header, byte");
    expect_raw_st("{\"w\":{\"dtype\":\"F\xc0\xb2\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                  AR_ERR_FORMAT, "JSON header, byte");
}

static void test_st_nul_in_name(void **state) {
    (void)state;
    expect_raw_st("{\"w\\u0000x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                  AR_ERR_FORMAT, "JSON header, byte");
}

static void test_st_entry_not_object(void **state) {
    (void)state;
    expect_raw_st("{\"w\":[1]}", 0, AR_ERR_FORMAT, "model.safetensors: entry 'w' is not an object");
    expect_raw_st("{\"\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                  AR_ERR_FORMAT, "tensor name of 0 bytes (1 to 1024 allowed)");
}

static void test_st_metadata_malformed(void **state) {
    (void)state;
    expect_raw_st("{\"__metadata__\":[1]," W16 "}", 16, AR_ERR_FORMAT,
                  "\"__metadata__\" is not an object");
    expect_raw_st("{\"__metadata__\":{\"format\":1}," W16 "}", 16, AR_ERR_FORMAT,
                  "__metadata__.format is not a string");
}

/* Every proper prefix of a small valid safetensors file fails with AR_ERR_FORMAT. */
static void test_truncation_sweep_safetensors(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.n_layers = 1;
    spec.n_embd = 8;
    spec.n_heads = 2;
    spec.n_kv_heads = 1;
    spec.n_ff = 8;
    spec.n_vocab = 8;
    spec.matrix_type = AR_TYPE_F16;
    mw_buf f = {0};
    char *cfg;
    mw_qwen2_st(&spec, &f, &cfg);
    ar_model *m = NULL;
    assert_int_equal(ar_model_open_memory(f.data, f.len, cfg, NULL, &m), AR_OK);
    ar_model_free(m);
    for (size_t n = 0; n < f.len; n++) {
        uint8_t *copy = mw_dup(f.data, n);
        m = NULL;
        ar_status st = ar_model_open_memory(copy, n, cfg, NULL, &m);
        if (st != AR_ERR_FORMAT || !m || !ar_model_errmsg(m)[0])
            fail_msg("prefix of %zu of %zu bytes: %s: %s", n, f.len, ar_strerror(st),
                     ar_model_errmsg(m));
        ar_model_free(m);
        free(copy);
    }
    free(cfg);
    mw_free(&f);
}

/* ---- safetensors: the model ----------------------------------------------------------- */

/* A valid checkpoint of the default spec with `edit` applied to the spec. */
static void expect_st_spec(const mw_qwen2 *spec, ar_status want, const char *substr) {
    mw_buf f = {0};
    char *cfg;
    mw_qwen2_st(spec, &f, &cfg);
    expect_st(&f, cfg, want, substr);
    free(cfg);
    mw_free(&f);
}

static void test_config_invalid_json(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    mw_buf f = {0};
    mw_qwen2_st(&spec, &f, NULL);
    expect_st(&f, "{\"model_type\": \"qwen2\",", AR_ERR_FORMAT, "config.json: line 1, column");
    expect_st(&f, "[1]", AR_ERR_FORMAT, "config.json: expected a JSON object");
    expect_st(&f, "{\"a\":1,\"a\":2}", AR_ERR_FORMAT, "config.json: line 1");
    expect_st_dir("cfg_bad", &f, "{\n  \"model_type\": qwen2\n}", AR_ERR_FORMAT,
                  "config.json: line 2, column");
    mw_free(&f);
}

static void test_config_missing_fields(void **state) {
    (void)state;
    static const char *const fields[] = {"num_hidden_layers", "hidden_size", "intermediate_size",
                                         "num_attention_heads", "vocab_size"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        mw_qwen2 spec = mw_qwen2_default();
        spec.config_omit = fields[i];
        char want[96];
        snprintf(want, sizeof want, "config.json: missing \"%s\"", fields[i]);
        expect_st_spec(&spec, AR_ERR_MODEL, want);
    }
    mw_qwen2 spec = mw_qwen2_default();
    spec.config_omit = "model_type";
    expect_st_spec(&spec, AR_ERR_FORMAT, "config.json: \"model_type\" missing or not a string");
}

static void test_config_wrong_types(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.config_merge = "{\"hidden_size\": \"32\"}";
    expect_st_spec(&spec, AR_ERR_MODEL, "config.json: \"hidden_size\" must be an integer");
    spec.config_merge = "{\"rope_theta\": \"1e6\"}";
    expect_st_spec(&spec, AR_ERR_MODEL, "config.json: \"rope_theta\" must be a number");
    spec.config_merge = "{\"tie_word_embeddings\": 1}";
    expect_st_spec(&spec, AR_ERR_MODEL, "config.json: \"tie_word_embeddings\" must be a bool");
    spec.config_merge = "{\"num_attention_heads\": 0}";
    expect_st_spec(&spec, AR_ERR_MODEL, "config.json: num_attention_heads = 0 is out of range");
    spec.config_merge = "{\"num_key_value_heads\": 3}";
    expect_st_spec(&spec, AR_ERR_MODEL,
                   "config.json: 4 attention heads is not a multiple of 3 key/value heads");
}

static void test_config_model_type_llama(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.arch = "llama";
    expect_st_spec(&spec, AR_ERR_UNSUPPORTED,
                   "unsupported architecture 'llama' (config.json model_type");
}

static void test_config_rope_scaling_yarn(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.config_merge = "{\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4.0}}";
    expect_st_spec(&spec, AR_ERR_UNSUPPORTED,
                   "config.json: rope_scaling type \"yarn\" is not supported");
    spec.config_merge = "{\"rope_scaling\": {\"rope_type\": \"dynamic\"}}";
    expect_st_spec(&spec, AR_ERR_UNSUPPORTED, "rope_scaling type \"dynamic\"");
    spec.config_merge = "{\"rope_scaling\": {\"factor\": 2}}";
    expect_st_spec(&spec, AR_ERR_UNSUPPORTED, "rope_scaling type \"?\"");
}

static void test_config_other_unsupported(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.config_merge = "{\"hidden_act\": \"gelu\"}";
    expect_st_spec(&spec, AR_ERR_UNSUPPORTED, "config.json: hidden_act must be \"silu\"");
    spec.config_merge = "{\"use_sliding_window\": true}";
    expect_st_spec(&spec, AR_ERR_UNSUPPORTED, "use_sliding_window = true is not supported");
}

static void test_st_missing_and_wrong_tensors(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    spec.omit_tensor = "model.layers.1.mlp.down_proj.weight";
    expect_st_spec(&spec, AR_ERR_MODEL, "missing tensor 'model.layers.1.mlp.down_proj.weight'");
    spec = mw_qwen2_default();
    spec.omit_tensor = "lm_head.weight";
    expect_st_spec(&spec, AR_ERR_MODEL,
                   "missing tensor 'lm_head.weight' (config.json says the embeddings are not "
                   "tied)");
    /* Shapes are named in Hugging Face order (out, in). */
    spec = mw_qwen2_default();
    spec.mod_tensor = "model.layers.0.self_attn.k_proj.weight";
    spec.mod_n_dims = 2;
    spec.mod_ne[0] = 32;
    spec.mod_ne[1] = 8;
    expect_st_spec(&spec, AR_ERR_MODEL,
                   "tensor 'model.layers.0.self_attn.k_proj.weight' has shape [8, 32], expected "
                   "[16, 32]");
    /* config.json's vocab_size must match the embedding. */
    spec = mw_qwen2_default();
    spec.config_merge = "{\"vocab_size\": 50}";
    expect_st_spec(&spec, AR_ERR_MODEL,
                   "tensor 'model.embed_tokens.weight' has shape [48, 32], expected [50, 32]");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_three_byte_file),
        cmocka_unit_test(test_wrong_magic),
        cmocka_unit_test(test_version_1),
        cmocka_unit_test(test_version_4),
        cmocka_unit_test(test_version_big_endian),
        cmocka_unit_test(test_truncated_header),
        cmocka_unit_test(test_truncation_sweep_gguf),
        cmocka_unit_test(test_n_kv_huge),
        cmocka_unit_test(test_n_tensors_huge),
        cmocka_unit_test(test_n_tensors_too_many_for_data),
        cmocka_unit_test(test_key_length_huge),
        cmocka_unit_test(test_string_value_length_huge),
        cmocka_unit_test(test_key_not_utf8),
        cmocka_unit_test(test_key_overlong_or_surrogate),
        cmocka_unit_test(test_key_with_nul),
        cmocka_unit_test(test_key_empty),
        cmocka_unit_test(test_key_too_long),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_invalid_value_type),
        cmocka_unit_test(test_invalid_bool),
        cmocka_unit_test(test_invalid_bool_in_array),
        cmocka_unit_test(test_invalid_array_element_type),
        cmocka_unit_test(test_array_count_overflows_size),
        cmocka_unit_test(test_string_array_count_huge),
        cmocka_unit_test(test_nesting_too_deep),
        cmocka_unit_test(test_nested_array_count_huge),
        cmocka_unit_test(test_n_dims_0_and_5),
        cmocka_unit_test(test_dimension_zero),
        cmocka_unit_test(test_dimension_negative),
        cmocka_unit_test(test_ne_product_overflows),
        cmocka_unit_test(test_byte_size_overflows),
        cmocka_unit_test(test_unknown_tensor_type),
        cmocka_unit_test(test_unsupported_tensor_type),
        cmocka_unit_test(test_quantized_row_not_whole_blocks),
        cmocka_unit_test(test_tensor_name_too_long_or_bad),
        cmocka_unit_test(test_tensor_offset_misaligned),
        cmocka_unit_test(test_tensor_data_past_end),
        cmocka_unit_test(test_tensor_offset_plus_size_overflows),
        cmocka_unit_test(test_data_section_missing),
        cmocka_unit_test(test_duplicate_tensor_names),
        cmocka_unit_test(test_missing_tensor),
        cmocka_unit_test(test_missing_token_embd),
        cmocka_unit_test(test_wrong_shape),
        cmocka_unit_test(test_wrong_rank),
        cmocka_unit_test(test_quantized_norm),
        cmocka_unit_test(test_head_count_zero),
        cmocka_unit_test(test_head_count_kv_not_dividing),
        cmocka_unit_test(test_block_count_out_of_range),
        cmocka_unit_test(test_embedding_not_multiple_of_heads),
        cmocka_unit_test(test_missing_hparam_keys),
        cmocka_unit_test(test_hparam_wrong_type),
        cmocka_unit_test(test_rope_and_eps_out_of_range),
        cmocka_unit_test(test_head_dim_odd_or_mismatched),
        cmocka_unit_test(test_unsupported_architecture_gguf),
        cmocka_unit_test(test_alignment_zero_three_string),
        cmocka_unit_test(test_special_id_past_vocab),
        cmocka_unit_test(test_vocab_larger_than_embedding),
        cmocka_unit_test(test_tokens_not_strings),
        cmocka_unit_test(test_max_file_bytes),
        cmocka_unit_test(test_max_file_bytes_safetensors),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_st_raw_valid_reaches_binding),
        cmocka_unit_test(test_st_too_short),
        cmocka_unit_test(test_st_header_size_past_end),
        cmocka_unit_test(test_st_header_size_over_limit),
        cmocka_unit_test(test_st_header_not_json),
        cmocka_unit_test(test_st_header_not_object),
        cmocka_unit_test(test_st_header_trailing_garbage),
        cmocka_unit_test(test_st_duplicate_names),
        cmocka_unit_test(test_st_dtype_missing),
        cmocka_unit_test(test_st_dtype_unknown),
        cmocka_unit_test(test_st_dtype_unsupported),
        cmocka_unit_test(test_st_shape_negative_or_fractional),
        cmocka_unit_test(test_st_shape_five_dims),
        cmocka_unit_test(test_st_shape_product_overflows),
        cmocka_unit_test(test_st_offsets_reversed),
        cmocka_unit_test(test_st_offsets_malformed),
        cmocka_unit_test(test_st_offsets_overlap),
        cmocka_unit_test(test_st_offsets_gap),
        cmocka_unit_test(test_st_offsets_past_end),
        cmocka_unit_test(test_st_data_after_tensors),
        cmocka_unit_test(test_st_offsets_size_mismatch),
        cmocka_unit_test(test_st_misaligned_f32),
        cmocka_unit_test(test_st_invalid_utf8),
        cmocka_unit_test(test_st_nul_in_name),
        cmocka_unit_test(test_st_entry_not_object),
        cmocka_unit_test(test_st_metadata_malformed),
        cmocka_unit_test(test_truncation_sweep_safetensors),
        cmocka_unit_test(test_config_invalid_json),
        cmocka_unit_test(test_config_missing_fields),
        cmocka_unit_test(test_config_wrong_types),
        cmocka_unit_test(test_config_model_type_llama),
        cmocka_unit_test(test_config_rope_scaling_yarn),
        cmocka_unit_test(test_config_other_unsupported),
        cmocka_unit_test(test_st_missing_and_wrong_tensors),
    };
    return cmocka_run_group_tests_name("malformed", tests, NULL, NULL);
}
