/*
 * test_dequant.c - every tensor of the tiny quantized Qwen2 GGUF files, dequantized through
 * the public API, against gguf-py's dequantization (testdata models/qwen2-tiny-q).
 *
 * For each file <TYPE>.gguf, dequant-<TYPE>.json lists every tensor with its ggml type,
 * its shape (ne, GGUF order), the sha256 of its float32 little-endian values, their sum and
 * sum of squares (double), and the first 32 values as shortest round-trip decimals. The
 * reference was checked to be bit-identical to ggml's own to_float, so the sha256 must match
 * exactly: that is the real test; type, shape, sums and first values make a failure
 * readable. One cmocka test per file, so a failure names the type.
 */
#include "testutil.h"

#include "archrouter.h"

#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_DIR "models/qwen2-tiny-q"

/* sha256 of n floats serialized as little-endian float32, as lowercase hex. */
static void sha256_f32le(const float *x, uint64_t n, char hex[65]) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
    unsigned char buf[4096];
    size_t used = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        for (int k = 0; k < 4; k++) buf[used++] = (unsigned char)(u >> (8 * k));
        if (used == sizeof buf) {
            assert_int_equal(EVP_DigestUpdate(ctx, buf, used), 1);
            used = 0;
        }
    }
    assert_int_equal(EVP_DigestUpdate(ctx, buf, used), 1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    assert_int_equal(EVP_DigestFinal_ex(ctx, md, &md_len), 1);
    EVP_MD_CTX_free(ctx);
    assert_int_equal(md_len, 32);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* Where the k-th "first32" array starts in the JSON text (after '['), or NULL. jansson
 * hands numbers over as doubles; reading the decimal text with strtof avoids rounding
 * twice (decimal -> double -> float). */
static const char *nth_first32(const char *text, int k) {
    const char *p = text;
    for (int i = 0; i <= k; i++) {
        p = strstr(p, "\"first32\"");
        if (!p) return NULL;
        p += strlen("\"first32\"");
    }
    while (*p == ' ' || *p == ':') p++;
    return *p == '[' ? p + 1 : NULL;
}

static void check_close(const char *what, const char *tensor, double got, double want) {
    const double tol = 1e-12 * fmax(fabs(want), 1e-300);
    if (!(fabs(got - want) <= tol))
        fail_msg("%s: %s = %.17g, expected %.17g (relative 1e-12)", tensor, what, got, want);
}

static void check_tensor(const ar_model *model, json_t *jt, const char *first32_text) {
    const char *name = json_string_value(json_object_get(jt, "name"));
    const char *ggml_type = json_string_value(json_object_get(jt, "ggml_type"));
    const char *sha = json_string_value(json_object_get(jt, "sha256_f32le"));
    json_t *jne = json_object_get(jt, "ne");
    json_t *jfirst = json_object_get(jt, "first32");
    assert_non_null(name);
    assert_non_null(ggml_type);
    assert_non_null(sha);
    assert_true(json_is_array(jne));
    assert_true(json_is_number(json_object_get(jt, "sum")));
    assert_true(json_is_number(json_object_get(jt, "sumsq")));
    const double want_sum = json_number_value(json_object_get(jt, "sum"));
    const double want_sumsq = json_number_value(json_object_get(jt, "sumsq"));

    const int32_t index = ar_model_tensor_find(model, name);
    if (index < 0) fail_msg("tensor %s not found", name);
    ar_tensor_info info;
    assert_int_equal(ar_model_tensor_info(model, index, &info), AR_OK);
    assert_string_equal(info.name, name);

    const char *type_name = ar_type_name(info.type);
    if (!type_name || strcmp(type_name, ggml_type) != 0)
        fail_msg("%s: type %s, expected %s", name, type_name ? type_name : "(unsupported)",
                 ggml_type);

    const size_t n_dims = json_array_size(jne);
    if (info.n_dims != (int32_t)n_dims)
        fail_msg("%s: %d dimensions, expected %zu", name, info.n_dims, n_dims);
    uint64_t n = 1;
    for (int d = 0; d < 4; d++) {
        const int64_t want =
            d < (int)n_dims ? (int64_t)json_integer_value(json_array_get(jne, (size_t)d)) : 1;
        if (info.ne[d] != want)
            fail_msg("%s: ne[%d] = %lld, expected %lld", name, d, (long long)info.ne[d],
                     (long long)want);
        n *= (uint64_t)want;
    }
    assert_int_equal(info.n_elements, n);

    float *values = malloc((size_t)n * sizeof(float));
    assert_non_null(values);
    const ar_status st = ar_model_tensor_to_f32(model, index, values, n);
    if (st != AR_OK)
        fail_msg("%s: ar_model_tensor_to_f32: %s: %s", name, ar_strerror(st),
                 ar_model_errmsg(model));

    char hex[65];
    sha256_f32le(values, n, hex);
    if (strcmp(hex, sha) != 0)
        fail_msg("%s (%s): sha256 %s, expected %s", name, ggml_type, hex, sha);

    double sum = 0, sumsq = 0;
    for (uint64_t i = 0; i < n; i++) {
        sum += (double)values[i];
        sumsq += (double)values[i] * (double)values[i];
    }
    check_close("sum", name, sum, want_sum);
    check_close("sumsq", name, sumsq, want_sumsq);

    /* first32: bitwise equal to the decimal text read with strtof. */
    assert_non_null(first32_text);
    const size_t n_first = json_array_size(jfirst);
    assert_true(n_first == (n < 32 ? n : 32));
    const char *p = first32_text;
    for (size_t i = 0; i < n_first; i++) {
        char *end;
        const float want = strtof(p, &end);
        assert_true(end != p);
        assert_true((float)json_number_value(json_array_get(jfirst, i)) == want || isnan(want));
        if (memcmp(&values[i], &want, sizeof want) != 0)
            fail_msg("%s: value %zu = %.9g, expected %.9g", name, i, (double)values[i],
                     (double)want);
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    assert_true(*p == ']');
    free(values);
}

static void check_type(const char *type) {
    char rel[256];
    snprintf(rel, sizeof rel, MODEL_DIR "/dequant-%s.json", type);
    size_t len;
    char *text = ar_test_read_file(ar_test_data_path(rel), &len);
    if (!text) fail_msg("cannot read %s", ar_test_data_path(rel));
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (!root) fail_msg("%s:%d: %s", rel, jerr.line, jerr.text);

    const char *gguf_rel = json_string_value(json_object_get(root, "gguf"));
    json_t *tensors = json_object_get(root, "tensors");
    assert_non_null(gguf_rel);
    assert_true(json_is_array(tensors));
    char gguf_path[512];
    snprintf(rel, sizeof rel, MODEL_DIR "/%s", gguf_rel);
    snprintf(gguf_path, sizeof gguf_path, "%s", ar_test_data_path(rel));

    ar_model *model = NULL;
    const ar_status st = ar_model_open(gguf_path, NULL, &model);
    if (st != AR_OK)
        fail_msg("ar_model_open(%s): %s: %s", gguf_path, ar_strerror(st), ar_model_errmsg(model));
    assert_int_equal(ar_model_n_tensors(model), (int32_t)json_array_size(tensors));

    for (size_t i = 0; i < json_array_size(tensors); i++)
        check_tensor(model, json_array_get(tensors, i), nth_first32(text, (int)i));

    ar_model_free(model);
    json_decref(root);
    free(text);
}

static void test_f16(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    check_type("F16");
}

static void test_bf16(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    check_type("BF16");
}

static void test_q8_0(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    check_type("Q8_0");
}

static void test_q6_k(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    check_type("Q6_K");
}

static void test_q5_k(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    check_type("Q5_K");
}

static void test_q4_k(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    check_type("Q4_K");
}

static void test_q3_k(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    check_type("Q3_K");
}

static void test_q2_k(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    check_type("Q2_K");
}

static void test_q4_0(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    check_type("Q4_0");
}

static void test_q4_1(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    check_type("Q4_1");
}

static void test_q5_0(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    check_type("Q5_0");
}

static void test_q5_1(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    check_type("Q5_1");
}

/* The mixture llama.cpp's Q4_K_M recipe makes: Q4_K with three Q6_K tensors, F32 norms. */
static void test_q4_k_m(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    check_type("Q4_K_M");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16),    cmocka_unit_test(test_bf16), cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_q6_k),   cmocka_unit_test(test_q5_k), cmocka_unit_test(test_q4_k),
        cmocka_unit_test(test_q3_k),   cmocka_unit_test(test_q2_k), cmocka_unit_test(test_q4_0),
        cmocka_unit_test(test_q4_1),   cmocka_unit_test(test_q5_0), cmocka_unit_test(test_q5_1),
        cmocka_unit_test(test_q4_k_m),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
