/*
 * test_gguf.c - the GGUF reader (src/model/gguf.h) on images built byte by byte.
 *
 * Each test writes a GGUF image with tests/common/model_writer.h, copies it into an
 * exact-size buffer (so AddressSanitizer sees any read past the end) and parses it with
 * ar_gguf_parse(). Covered: every metadata value type through the typed getters and
 * ar_gguf_value_text(), arrays of scalars and of strings, nested arrays up to and past the
 * nesting limit, versions 2 and 3, general.alignment (default, custom powers of two,
 * invalid values and types), tensor infos and data placement, and the getters' type errors,
 * which must name the key. The malformed-file corpus is in test_malformed.c.
 */
#include "testutil.h"

#include "model/gguf.h"
#include "model_writer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A parsed image and the exact-size copy it points into. */
typedef struct parsed {
    uint8_t *bytes;
    size_t size;
    ar_gguf g;
    ar_err err;
    ar_status st;
} parsed;

static void parse(parsed *p, const mw_buf *b) {
    memset(p, 0, sizeof *p);
    p->size = b->len;
    p->bytes = mw_dup(b->data, b->len);
    p->st = ar_gguf_parse(&p->g, p->bytes, p->size, &p->err);
}

static void parse_ok(parsed *p, const mw_buf *b) {
    parse(p, b);
    if (p->st != AR_OK) fail_msg("ar_gguf_parse: %s: %s", ar_strerror(p->st), p->err.msg);
}

static void done(parsed *p) {
    ar_gguf_free(&p->g);
    free(p->bytes);
}

/* The parse failed with `want` and a message containing `substr`; the struct is empty. */
static void expect_fail(parsed *p, ar_status want, const char *substr) {
    if (p->st != want || !strstr(p->err.msg, substr))
        fail_msg("expected %s with \"%s\", got %s: \"%s\"", ar_strerror(want), substr,
                 ar_strerror(p->st), p->err.msg);
    assert_int_equal(p->g.n_kv, 0);
    assert_null(p->g.kv);
    assert_int_equal(p->g.n_tensors, 0);
    assert_null(p->g.tensors);
}

static void expect_text(const ar_gguf *g, const char *key, const char *want) {
    const ar_gguf_kv *kv = ar_gguf_find(g, key);
    if (!kv) fail_msg("key %s missing", key);
    char buf[512];
    int64_t n = ar_gguf_value_text(&kv->value, buf, sizeof buf);
    if (strcmp(buf, want) != 0) fail_msg("%s: text \"%s\", expected \"%s\"", key, buf, want);
    assert_int_equal(n, (int64_t)strlen(want));
}

static void expect_int(const ar_gguf *g, const char *key, int64_t want) {
    int64_t v = 0;
    ar_err err;
    ar_status st = ar_gguf_get_int(g, key, &v, &err);
    if (st != AR_OK) fail_msg("%s: %s", key, err.msg);
    if (v != want) fail_msg("%s = %lld, expected %lld", key, (long long)v, (long long)want);
}

/* ---- scalar values ---------------------------------------------------------------------- */

#define N_SCALARS 15

static void write_scalars(mw_buf *b) {
    mw_gguf_header(b, 3, 0, N_SCALARS);
    mw_gguf_kv_int(b, "t.u8", MW_U8, 200);
    mw_gguf_kv_int(b, "t.i8", MW_I8, -5);
    mw_gguf_kv_int(b, "t.u16", MW_U16, 60000);
    mw_gguf_kv_int(b, "t.i16", MW_I16, -300);
    mw_gguf_kv_int(b, "t.u32", MW_U32, 4000000000);
    mw_gguf_kv_int(b, "t.i32", MW_I32, -2000000000);
    mw_gguf_kv_float(b, "t.f32", MW_F32, 1.5);
    mw_gguf_kv_bool(b, "t.true", true);
    mw_gguf_kv_bool(b, "t.false", false);
    mw_gguf_kv_str(b, "t.str", "h\xc3\xa9llo");
    mw_gguf_kv_u64(b, "t.u64", 7);
    mw_gguf_kv_u64(b, "t.u64big", (1ull << 63) + 5);
    mw_gguf_kv_int(b, "t.i64", MW_I64, -(1ll << 40));
    mw_gguf_kv_float(b, "t.f64", MW_F64, -0.25);
    mw_gguf_kv_float(b, "t.f32small", MW_F32, 1e-6);
}

static void test_scalar_types_round_trip(void **state) {
    (void)state;
    mw_buf b = {0};
    write_scalars(&b);
    parsed p;
    parse_ok(&p, &b);
    assert_int_equal(p.g.version, 3);
    assert_int_equal(p.g.n_kv, N_SCALARS);
    assert_int_equal(p.g.n_tensors, 0);
    static const struct {
        const char *key;
        uint32_t type;
    } types[] = {{"t.u8", MW_U8},      {"t.i8", MW_I8},   {"t.u16", MW_U16}, {"t.i16", MW_I16},
                 {"t.u32", MW_U32},    {"t.i32", MW_I32}, {"t.f32", MW_F32}, {"t.true", MW_BOOL},
                 {"t.str", MW_STRING}, {"t.u64", MW_U64}, {"t.i64", MW_I64}, {"t.f64", MW_F64}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const ar_gguf_kv *kv = ar_gguf_find(&p.g, types[i].key);
        assert_non_null(kv);
        assert_int_equal(kv->value.type, types[i].type);
    }
    /* Integers of every width and sign through get_int. */
    expect_int(&p.g, "t.u8", 200);
    expect_int(&p.g, "t.i8", -5);
    expect_int(&p.g, "t.u16", 60000);
    expect_int(&p.g, "t.i16", -300);
    expect_int(&p.g, "t.u32", 4000000000);
    expect_int(&p.g, "t.i32", -2000000000);
    expect_int(&p.g, "t.u64", 7);
    expect_int(&p.g, "t.i64", -(1ll << 40));
    /* A u64 past INT64_MAX does not fit get_int's int64. */
    ar_err err;
    int64_t iv;
    assert_int_equal(ar_gguf_get_int(&p.g, "t.u64big", &iv, &err), AR_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "'t.u64big'"));
    assert_non_null(strstr(err.msg, "out of range"));
    /* Floats. */
    double d;
    assert_int_equal(ar_gguf_get_float(&p.g, "t.f32", &d, &err), AR_OK);
    assert_true(d == 1.5);
    assert_int_equal(ar_gguf_get_float(&p.g, "t.f64", &d, &err), AR_OK);
    assert_true(d == -0.25);
    assert_int_equal(ar_gguf_get_float(&p.g, "t.f32small", &d, &err), AR_OK);
    assert_true(d == (double)1e-6f);
    /* Bools and strings. */
    bool bv = false;
    assert_int_equal(ar_gguf_get_bool(&p.g, "t.true", &bv, &err), AR_OK);
    assert_true(bv);
    assert_int_equal(ar_gguf_get_bool(&p.g, "t.false", &bv, &err), AR_OK);
    assert_false(bv);
    const char *s;
    uint64_t len;
    assert_int_equal(ar_gguf_get_str(&p.g, "t.str", &s, &len, &err), AR_OK);
    assert_int_equal(len, 6);
    assert_memory_equal(s, "h\xc3\xa9llo", 6);
    /* Text rendering. */
    expect_text(&p.g, "t.u8", "200");
    expect_text(&p.g, "t.i8", "-5");
    expect_text(&p.g, "t.u16", "60000");
    expect_text(&p.g, "t.i16", "-300");
    expect_text(&p.g, "t.u32", "4000000000");
    expect_text(&p.g, "t.i32", "-2000000000");
    expect_text(&p.g, "t.f32", "1.5");
    expect_text(&p.g, "t.true", "true");
    expect_text(&p.g, "t.false", "false");
    expect_text(&p.g, "t.str", "\"h\xc3\xa9llo\"");
    expect_text(&p.g, "t.u64", "7");
    expect_text(&p.g, "t.u64big", "9223372036854775813");
    expect_text(&p.g, "t.i64", "-1099511627776");
    expect_text(&p.g, "t.f64", "-0.25");
    expect_text(&p.g, "t.f32small", "9.99999997e-07");
    done(&p);
    mw_free(&b);
}

static void test_value_offsets_and_order(void **state) {
    (void)state;
    mw_buf b = {0};
    mw_gguf_header(&b, 3, 0, 2);
    mw_gguf_kv_int(&b, "b.second", MW_U32, 1); /* keys keep file order, not sorted */
    size_t at = b.len + 8 + strlen("a.first") + 4;
    mw_gguf_kv_int(&b, "a.first", MW_U16, 2);
    parsed p;
    parse_ok(&p, &b);
    assert_string_equal(p.g.kv[0].key, "b.second");
    assert_string_equal(p.g.kv[1].key, "a.first");
    assert_int_equal(p.g.kv[1].value.offset, at);
    assert_ptr_equal(p.g.kv[1].value.data, p.bytes + at);
    assert_int_equal(p.g.kv[1].value.size, 2);
    assert_null(ar_gguf_find(&p.g, "missing"));
    assert_null(ar_gguf_find(&p.g, "a.firs"));
    done(&p);
    mw_free(&b);
}

/* ---- getter type errors --------------------------------------------------------------- */

static void expect_type_error(ar_status st, const ar_err *err, const char *substr) {
    if (st != AR_ERR_FORMAT || !strstr(err->msg, substr))
        fail_msg("expected a type error with \"%s\", got %s: \"%s\"", substr, ar_strerror(st),
                 err->msg);
}

static void test_getter_type_errors_name_the_key(void **state) {
    (void)state;
    mw_buf b = {0};
    mw_gguf_header(&b, 3, 0, 5);
    mw_gguf_kv_str(&b, "k.str", "x");
    mw_gguf_kv_int(&b, "k.u32", MW_U32, 3);
    mw_gguf_kv_float(&b, "k.f32", MW_F32, 2.0);
    mw_gguf_kv_bool(&b, "k.bool", true);
    mw_gguf_key(&b, "k.arr", MW_ARRAY);
    mw_gguf_array(&b, MW_U32, 1);
    mw_u32(&b, 9);
    parsed p;
    parse_ok(&p, &b);
    ar_err err;
    int64_t iv;
    double dv;
    bool bv;
    const char *s;
    uint64_t len;
    const ar_gguf_value *arr;
    expect_type_error(ar_gguf_get_int(&p.g, "k.str", &iv, &err), &err,
                      "metadata key 'k.str' has type string, expected an integer");
    expect_type_error(ar_gguf_get_int(&p.g, "k.f32", &iv, &err), &err,
                      "'k.f32' has type f32, expected an integer");
    expect_type_error(ar_gguf_get_int(&p.g, "k.bool", &iv, &err), &err,
                      "'k.bool' has type bool, expected an integer");
    expect_type_error(ar_gguf_get_int(&p.g, "k.arr", &iv, &err), &err,
                      "'k.arr' has type array, expected an integer");
    expect_type_error(ar_gguf_get_float(&p.g, "k.u32", &dv, &err), &err,
                      "'k.u32' has type u32, expected f32 or f64");
    expect_type_error(ar_gguf_get_bool(&p.g, "k.u32", &bv, &err), &err,
                      "'k.u32' has type u32, expected bool");
    expect_type_error(ar_gguf_get_str(&p.g, "k.arr", &s, &len, &err), &err,
                      "'k.arr' has type array, expected string");
    expect_type_error(ar_gguf_get_array(&p.g, "k.str", MW_U32, &arr, &err), &err,
                      "'k.str' has type string, expected array");
    expect_type_error(ar_gguf_get_array(&p.g, "k.arr", MW_STRING, &arr, &err), &err,
                      "'k.arr' is an array of u32, expected an array of string");
    /* The right element type, and "any". */
    assert_int_equal(ar_gguf_get_array(&p.g, "k.arr", MW_U32, &arr, &err), AR_OK);
    assert_int_equal(arr->count, 1);
    assert_int_equal(ar_gguf_get_array(&p.g, "k.arr", AR_GGUF_NTYPES, &arr, &err), AR_OK);
    /* An absent key is AR_ERR_NOT_FOUND and leaves the message alone. */
    snprintf(err.msg, sizeof err.msg, "untouched");
    assert_int_equal(ar_gguf_get_int(&p.g, "nope", &iv, &err), AR_ERR_NOT_FOUND);
    assert_int_equal(ar_gguf_get_float(&p.g, "nope", &dv, &err), AR_ERR_NOT_FOUND);
    assert_int_equal(ar_gguf_get_bool(&p.g, "nope", &bv, &err), AR_ERR_NOT_FOUND);
    assert_int_equal(ar_gguf_get_str(&p.g, "nope", &s, &len, &err), AR_ERR_NOT_FOUND);
    assert_int_equal(ar_gguf_get_array(&p.g, "nope", MW_U32, &arr, &err), AR_ERR_NOT_FOUND);
    assert_string_equal(err.msg, "untouched");
    done(&p);
    mw_free(&b);
}

/* ---- arrays --------------------------------------------------------------------------- */

static void test_scalar_arrays(void **state) {
    (void)state;
    mw_buf b = {0};
    mw_gguf_header(&b, 3, 0, 7);
    mw_gguf_key(&b, "a.u32", MW_ARRAY);
    mw_gguf_array(&b, MW_U32, 3);
    for (uint32_t i = 1; i <= 3; i++) mw_u32(&b, i);
    mw_gguf_key(&b, "a.i16", MW_ARRAY);
    mw_gguf_array(&b, MW_I16, 2);
    mw_u16(&b, (uint16_t)-7);
    mw_u16(&b, 300);
    mw_gguf_key(&b, "a.f32", MW_ARRAY);
    mw_gguf_array(&b, MW_F32, 2);
    mw_f32(&b, 0.5f);
    mw_f32(&b, -1.0f);
    mw_gguf_key(&b, "a.bool", MW_ARRAY);
    mw_gguf_array(&b, MW_BOOL, 2);
    mw_u8(&b, 1);
    mw_u8(&b, 0);
    mw_gguf_key(&b, "a.i32x10", MW_ARRAY);
    mw_gguf_array(&b, MW_I32, 10);
    for (uint32_t i = 0; i < 10; i++) mw_u32(&b, i);
    mw_gguf_key(&b, "a.empty", MW_ARRAY);
    mw_gguf_array(&b, MW_U8, 0);
    mw_gguf_key(&b, "a.u64", MW_ARRAY);
    mw_gguf_array(&b, MW_U64, 2);
    mw_u64(&b, UINT64_MAX);
    mw_u64(&b, 1);
    parsed p;
    parse_ok(&p, &b);
    ar_err err;
    const ar_gguf_value *v;
    assert_int_equal(ar_gguf_get_array(&p.g, "a.u32", MW_U32, &v, &err), AR_OK);
    assert_int_equal(v->type, MW_ARRAY);
    assert_int_equal(v->elem_type, MW_U32);
    assert_int_equal(v->count, 3);
    assert_int_equal(v->size, 12);
    assert_int_equal(v->data[4], 2);
    assert_int_equal(ar_gguf_get_array(&p.g, "a.empty", MW_U8, &v, &err), AR_OK);
    assert_int_equal(v->count, 0);
    assert_int_equal(v->size, 0);
    expect_text(&p.g, "a.u32", "[u32 x 3] 1 2 3");
    expect_text(&p.g, "a.i16", "[i16 x 2] -7 300");
    expect_text(&p.g, "a.f32", "[f32 x 2] 0.5 -1");
    expect_text(&p.g, "a.bool", "[bool x 2] true false");
    expect_text(&p.g, "a.i32x10", "[i32 x 10] 0 1 2 3 4 5 6 7 ...");
    expect_text(&p.g, "a.empty", "[u8 x 0]");
    expect_text(&p.g, "a.u64", "[u64 x 2] 18446744073709551615 1");
    done(&p);
    mw_free(&b);
}

static void test_string_arrays(void **state) {
    (void)state;
    static const char *const strs[] = {"a", "", "h\xc3\xa9llo", "x\ny\"z"};
    mw_buf b = {0};
    mw_gguf_header(&b, 3, 0, 2);
    mw_gguf_kv_str_array(&b, "s.list", strs, 4);
    mw_gguf_kv_str_array(&b, "s.none", strs, 0);
    parsed p;
    parse_ok(&p, &b);
    ar_err err;
    const ar_gguf_value *v;
    assert_int_equal(ar_gguf_get_array(&p.g, "s.list", MW_STRING, &v, &err), AR_OK);
    assert_int_equal(v->count, 4);
    assert_non_null(v->str_index);
    for (uint64_t i = 0; i < 4; i++) {
        const char *s;
        uint64_t len;
        ar_gguf_array_str(v, i, &s, &len);
        assert_int_equal(len, strlen(strs[i]));
        assert_memory_equal(s, strs[i], len);
        /* The pointer is into the file, not a copy. */
        assert_true((const uint8_t *)s >= p.bytes && (const uint8_t *)s <= p.bytes + p.size);
    }
    expect_text(&p.g, "s.list", "[string x 4] \"a\" \"\" \"h\xc3\xa9llo\" \"x\\ny\\\"z\"");
    expect_text(&p.g, "s.none", "[string x 0]");
    done(&p);
    mw_free(&b);
}

/* An array nested `depth` levels deep ([[[...[7]...]]]) under key "n.deep". */
static void write_nested(mw_buf *b, int depth) {
    mw_gguf_header(b, 3, 0, 1);
    mw_gguf_key(b, "n.deep", MW_ARRAY);
    for (int d = 1; d < depth; d++) mw_gguf_array(b, MW_ARRAY, 1);
    mw_gguf_array(b, MW_U32, 1);
    mw_u32(b, 7);
}

static void test_nested_arrays(void **state) {
    (void)state;
    /* [[1, 2], [3], [], ["s"]]: arrays of arrays, mixed element types inside. */
    mw_buf b = {0};
    mw_gguf_header(&b, 3, 0, 2);
    mw_gguf_key(&b, "n.mixed", MW_ARRAY);
    mw_gguf_array(&b, MW_ARRAY, 4);
    mw_gguf_array(&b, MW_U32, 2);
    mw_u32(&b, 1);
    mw_u32(&b, 2);
    mw_gguf_array(&b, MW_U32, 1);
    mw_u32(&b, 3);
    mw_gguf_array(&b, MW_BOOL, 0);
    mw_gguf_array(&b, MW_STRING, 1);
    mw_gguf_str(&b, "s");
    size_t after = b.len;
    mw_gguf_kv_int(&b, "n.after", MW_U8, 5); /* parsing resumes after the nested array */
    parsed p;
    parse_ok(&p, &b);
    const ar_gguf_kv *kv = ar_gguf_find(&p.g, "n.mixed");
    assert_non_null(kv);
    assert_int_equal(kv->value.elem_type, MW_ARRAY);
    assert_int_equal(kv->value.count, 4);
    assert_ptr_equal(kv->value.data + kv->value.size, p.bytes + after);
    expect_text(&p.g, "n.mixed", "[array x 4]");
    expect_int(&p.g, "n.after", 5);
    done(&p);
    mw_free(&b);

    /* The deepest nesting allowed, then one level more. */
    b = (mw_buf){0};
    write_nested(&b, AR_GGUF_MAX_NESTING);
    parse_ok(&p, &b);
    assert_int_equal(ar_gguf_find(&p.g, "n.deep")->value.count, 1);
    done(&p);
    mw_free(&b);
    write_nested(&b, AR_GGUF_MAX_NESTING + 1);
    parse(&p, &b);
    expect_fail(&p, AR_ERR_FORMAT, "arrays nested deeper than 16");
    assert_non_null(strstr(p.err.msg, "key 'n.deep'"));
    done(&p);
    mw_free(&b);
}

/* ---- versions ------------------------------------------------------------------------- */

static void test_versions_2_and_3(void **state) {
    (void)state;
    for (uint32_t version = 2; version <= 3; version++) {
        mw_qwen2 spec = mw_qwen2_default();
        spec.version = version;
        spec.n_tokens = 48;
        mw_buf b = {0};
        mw_gguf_layout l;
        mw_qwen2_gguf(&spec, &b, &l);
        parsed p;
        parse_ok(&p, &b);
        assert_int_equal(p.g.version, version);
        assert_int_equal(p.g.n_tensors, l.n_tensors);
        assert_int_equal(p.g.n_kv, l.n_kv);
        assert_int_equal(p.g.data_offset, l.data_start);
        done(&p);
        mw_free(&b);
    }
}

/* ---- tensors and alignment ------------------------------------------------------------ */

static void check_tensors(const parsed *p, const mw_gguf_layout *l) {
    assert_int_equal(p->g.n_tensors, l->n_tensors);
    assert_int_equal(p->g.data_offset, l->data_start);
    for (int i = 0; i < l->n_tensors; i++) {
        const ar_gguf_tensor *t = &p->g.tensors[i];
        const mw_gguf_tensor_pos *w = &l->tensors[i];
        assert_string_equal(t->name, w->name);
        assert_int_equal(t->n_dims, w->n_dims);
        uint64_t n = 1;
        for (int d = 0; d < 4; d++) {
            assert_int_equal(t->ne[d], w->ne[d]);
            n *= (uint64_t)w->ne[d];
        }
        assert_int_equal(t->n_elements, n);
        assert_int_equal(t->type, w->type);
        assert_int_equal(t->offset, w->offset);
        assert_int_equal(t->offset % p->g.alignment, 0);
        assert_int_equal(t->n_bytes, w->n_bytes);
        assert_int_equal(t->info_offset, w->info_at);
        assert_ptr_equal(t->data, p->bytes + l->data_start + w->offset);
    }
}

static void test_tensor_infos(void **state) {
    (void)state;
    mw_qwen2 spec = mw_qwen2_default();
    mw_buf b = {0};
    mw_gguf_layout l;
    mw_qwen2_gguf(&spec, &b, &l);
    parsed p;
    parse_ok(&p, &b);
    assert_int_equal(p.g.alignment, AR_GGUF_DEFAULT_ALIGNMENT);
    assert_int_equal(p.g.n_tensors, 1 + 12 * 2 + 2);
    assert_int_equal(p.g.data_offset % 32, 0);
    assert_true(p.g.data_offset >= l.infos_end && p.g.data_offset < l.infos_end + 32);
    check_tensors(&p, &l);
    /* Spot checks against hand-computed values. */
    assert_string_equal(p.g.tensors[0].name, "token_embd.weight");
    assert_int_equal(p.g.tensors[0].ne[0], 32);
    assert_int_equal(p.g.tensors[0].ne[1], 48);
    assert_int_equal(p.g.tensors[0].n_bytes, 32 * 48 * 4);
    assert_int_equal(p.g.tensors[0].offset, 0);
    assert_string_equal(p.g.tensors[2].name, "blk.0.attn_q.weight");
    assert_int_equal(p.g.tensors[2].n_dims, 2);
    assert_string_equal(p.g.tensors[3].name, "blk.0.attn_q.bias");
    assert_int_equal(p.g.tensors[3].n_dims, 1);
    assert_int_equal(p.g.tensors[3].ne[1], 1);
    assert_ptr_equal(p.g.file, p.bytes);
    assert_int_equal(p.g.file_size, p.size);
    done(&p);
    mw_free(&b);
}

static void test_tensor_sizes_of_every_type(void **state) {
    (void)state;
    /* Bytes of a [256, 2] tensor, from the block layouts (not from the traits table). */
    static const struct {
        uint32_t type;
        uint64_t bytes;
    } cases[] = {
        {AR_TYPE_F32, 2048},     {AR_TYPE_F16, 1024},     {AR_TYPE_BF16, 1024},
        {AR_TYPE_Q4_0, 18 * 16}, {AR_TYPE_Q4_1, 20 * 16}, {AR_TYPE_Q5_0, 22 * 16},
        {AR_TYPE_Q5_1, 24 * 16}, {AR_TYPE_Q8_0, 34 * 16}, {AR_TYPE_Q2_K, 84 * 2},
        {AR_TYPE_Q3_K, 110 * 2}, {AR_TYPE_Q4_K, 144 * 2}, {AR_TYPE_Q5_K, 176 * 2},
        {AR_TYPE_Q6_K, 210 * 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mw_buf b = {0};
        const int64_t ne[2] = {256, 2};
        mw_gguf_header(&b, 3, 1, 0);
        mw_gguf_tensor_info(&b, "w", 2, ne, cases[i].type, 0);
        mw_align(&b, 32);
        mw_zeros(&b, (size_t)cases[i].bytes);
        parsed p;
        parse_ok(&p, &b);
        if (p.g.tensors[0].n_bytes != cases[i].bytes)
            fail_msg("%s: %llu bytes, expected %llu", ar_type_name((ar_type)cases[i].type),
                     (unsigned long long)p.g.tensors[0].n_bytes,
                     (unsigned long long)cases[i].bytes);
        assert_int_equal(p.g.tensors[0].n_elements, 512);
        done(&p);
        /* One byte less is past the end. */
        b.len--;
        parse(&p, &b);
        expect_fail(&p, AR_ERR_FORMAT, "lies past the end of the file");
        done(&p);
        mw_free(&b);
    }
}

static void test_alignment_custom(void **state) {
    (void)state;
    static const uint32_t aligns[] = {2, 8, 64, 256, 4096};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        mw_qwen2 spec = mw_qwen2_default();
        spec.alignment = aligns[i];
        /* F16 throughout, so alignment 2 also keeps every element at its natural place. */
        spec.matrix_type = spec.vector_type = AR_TYPE_F16;
        spec.n_embd = 36;
        spec.n_heads = 6;
        spec.n_kv_heads = 3;
        spec.n_ff = 10;
        mw_buf b = {0};
        mw_gguf_layout l;
        mw_qwen2_gguf(&spec, &b, &l);
        parsed p;
        parse(&p, &b);
        if (p.st != AR_OK) fail_msg("alignment %u: %s", aligns[i], p.err.msg);
        assert_int_equal(p.g.alignment, aligns[i]);
        assert_int_equal(p.g.data_offset % aligns[i], 0);
        assert_true(p.g.data_offset >= l.infos_end && p.g.data_offset < l.infos_end + aligns[i]);
        check_tensors(&p, &l);
        done(&p);
        mw_free(&b);
    }
}

static void test_alignment_one_needs_natural_alignment(void **state) {
    (void)state;
    /* general.alignment = 1 packs the data right after the infos. The reader uses tensors in
     * place, so F32 data must still start at a multiple of 4: general.name's length moves
     * the data start through every residue mod 4. */
    static const char *const names[] = {"a", "ab", "abc", "abcd"};
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        mw_qwen2 spec = mw_qwen2_default();
        spec.alignment = 1;
        spec.name = names[i];
        mw_buf b = {0};
        mw_gguf_layout l;
        mw_qwen2_gguf(&spec, &b, &l);
        assert_int_equal(l.data_start, l.infos_end);
        parsed p;
        parse(&p, &b);
        if (l.data_start % 4 == 0) {
            if (p.st != AR_OK) fail_msg("data at %zu: %s", l.data_start, p.err.msg);
            check_tensors(&p, &l);
            ok++;
        } else {
            expect_fail(&p, AR_ERR_FORMAT, "is misaligned for its type (needs a multiple of 4)");
            assert_non_null(strstr(p.err.msg, "tensor 'token_embd.weight'"));
        }
        done(&p);
        mw_free(&b);
    }
    assert_int_equal(ok, 1);
}

static void test_alignment_offset_not_multiple(void **state) {
    (void)state;
    /* Alignment 64: an offset of 32 (fine for the default) is now misaligned. */
    mw_qwen2 spec = mw_qwen2_default();
    spec.alignment = 64;
    mw_buf b = {0};
    mw_gguf_layout l;
    mw_qwen2_gguf(&spec, &b, &l);
    const mw_gguf_tensor_pos *t = mw_layout_tensor(&l, "blk.0.attn_norm.weight");
    assert_non_null(t);
    mw_patch_u64(b.data, t->offset_at, t->offset + 32);
    parsed p;
    parse(&p, &b);
    expect_fail(&p, AR_ERR_FORMAT, "is not a multiple of the alignment 64");
    assert_non_null(strstr(p.err.msg, "tensor 'blk.0.attn_norm.weight'"));
    done(&p);
    mw_free(&b);
}

static void test_alignment_invalid(void **state) {
    (void)state;
    static const struct {
        uint32_t value;
        const char *msg;
    } bad[] = {{0, "general.alignment is 0, expected a power of two"},
               {3, "general.alignment is 3, expected a power of two"},
               {48, "general.alignment is 48, expected a power of two"},
               {0x80000001u, "expected a power of two"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mw_qwen2 spec = mw_qwen2_default();
        spec.alignment = 64;
        mw_buf b = {0};
        mw_gguf_layout l;
        mw_qwen2_gguf(&spec, &b, &l);
        mw_patch_u32(b.data, mw_layout_kv(&l, "general.alignment")->value_at, bad[i].value);
        parsed p;
        parse(&p, &b);
        expect_fail(&p, AR_ERR_FORMAT, bad[i].msg);
        done(&p);
        mw_free(&b);
    }
    /* Wrong types: a string, a u64 and an i32 holding 32. */
    for (int k = 0; k < 3; k++) {
        mw_buf b = {0};
        mw_gguf_header(&b, 3, 0, 1);
        if (k == 0) mw_gguf_kv_str(&b, "general.alignment", "32");
        if (k == 1) mw_gguf_kv_u64(&b, "general.alignment", 32);
        if (k == 2) mw_gguf_kv_int(&b, "general.alignment", MW_I32, 32);
        parsed p;
        parse(&p, &b);
        expect_fail(&p, AR_ERR_FORMAT,
                    k == 0   ? "general.alignment has type string, expected u32"
                    : k == 1 ? "general.alignment has type u64, expected u32"
                             : "general.alignment has type i32, expected u32");
        done(&p);
        mw_free(&b);
    }
}

/* ---- small things --------------------------------------------------------------------- */

static void test_value_text_truncates(void **state) {
    (void)state;
    char long_str[201];
    memset(long_str, 'a', 200);
    long_str[200] = 0;
    mw_buf b = {0};
    mw_gguf_header(&b, 3, 0, 3);
    mw_gguf_kv_int(&b, "v.num", MW_U32, 123456789);
    mw_gguf_kv_str(&b, "v.long", long_str);
    mw_gguf_key(&b, "v.ctl", MW_STRING);
    mw_gguf_strn(&b, "a\x01\x7f\\b", 5);
    parsed p;
    parse_ok(&p, &b);
    const ar_gguf_kv *kv = ar_gguf_find(&p.g, "v.num");
    char buf[16];
    memset(buf, 'X', sizeof buf);
    assert_int_equal(ar_gguf_value_text(&kv->value, buf, 5), 9);
    assert_string_equal(buf, "1234");
    assert_int_equal(buf[5], 'X');                                /* nothing written past 5 */
    assert_int_equal(ar_gguf_value_text(&kv->value, NULL, 0), 9); /* length only */
    assert_int_equal(ar_gguf_value_text(&kv->value, buf, 1), 9);
    assert_string_equal(buf, "");
    /* Strings are cut after 160 bytes with the full length named. */
    char big[512];
    kv = ar_gguf_find(&p.g, "v.long");
    int64_t n = ar_gguf_value_text(&kv->value, big, sizeof big);
    assert_int_equal(n, (int64_t)strlen(big));
    assert_non_null(strstr(big, "\"...(200 bytes)"));
    assert_int_equal(strspn(big + 1, "a"), 160);
    /* Control characters and quotes are escaped. */
    expect_text(&p.g, "v.ctl", "\"a\\x01\\x7f\\\\b\"");
    done(&p);
    mw_free(&b);
}

static void test_string_values_hold_any_bytes(void **state) {
    (void)state;
    /* Values (unlike keys and tensor names) are not required to be UTF-8 or NUL-free. */
    mw_buf b = {0};
    mw_gguf_header(&b, 3, 0, 1);
    mw_gguf_key(&b, "v.bytes", MW_STRING);
    mw_gguf_strn(&b, "\xff\x00z", 3);
    parsed p;
    parse_ok(&p, &b);
    const char *s;
    uint64_t len;
    ar_err err;
    assert_int_equal(ar_gguf_get_str(&p.g, "v.bytes", &s, &len, &err), AR_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "\xff\x00z", 3);
    expect_text(&p.g, "v.bytes", "\"\xff\\x00z\"");
    done(&p);
    mw_free(&b);
}

static void test_empty_file_and_magic(void **state) {
    (void)state;
    mw_buf b = {0};
    mw_gguf_header(&b, 3, 0, 0);
    parsed p;
    parse_ok(&p, &b);
    assert_int_equal(p.g.n_kv, 0);
    assert_int_equal(p.g.n_tensors, 0);
    assert_int_equal(p.g.alignment, 32);
    done(&p);
    assert_true(ar_gguf_has_magic(b.data, b.len));
    assert_true(ar_gguf_has_magic(b.data, 4));
    assert_false(ar_gguf_has_magic(b.data, 3));
    assert_false(ar_gguf_has_magic((const uint8_t *)"GGUG", 4));
    mw_free(&b);
    assert_string_equal(ar_gguf_type_name(MW_U8), "u8");
    assert_string_equal(ar_gguf_type_name(MW_STRING), "string");
    assert_string_equal(ar_gguf_type_name(MW_ARRAY), "array");
    assert_string_equal(ar_gguf_type_name(MW_F64), "f64");
    assert_string_equal(ar_gguf_type_name(13), "?");
    assert_string_equal(ar_gguf_type_name(UINT32_MAX), "?");
}

static void test_free_is_idempotent(void **state) {
    (void)state;
    ar_gguf g;
    ar_err err;
    static const uint8_t junk[] = "GGUF\x03\x00\x00";
    assert_int_equal(ar_gguf_parse(&g, junk, 7, &err), AR_ERR_FORMAT);
    ar_gguf_free(&g);                                                  /* safe on a failed parse */
    ar_gguf_free(&g);                                                  /* and twice */
    assert_int_equal(ar_gguf_parse(&g, junk, 7, NULL), AR_ERR_FORMAT); /* err may be NULL */
    ar_gguf_free(&g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_types_round_trip),
        cmocka_unit_test(test_value_offsets_and_order),
        cmocka_unit_test(test_getter_type_errors_name_the_key),
        cmocka_unit_test(test_scalar_arrays),
        cmocka_unit_test(test_string_arrays),
        cmocka_unit_test(test_nested_arrays),
        cmocka_unit_test(test_versions_2_and_3),
        cmocka_unit_test(test_tensor_infos),
        cmocka_unit_test(test_tensor_sizes_of_every_type),
        cmocka_unit_test(test_alignment_custom),
        cmocka_unit_test(test_alignment_one_needs_natural_alignment),
        cmocka_unit_test(test_alignment_offset_not_multiple),
        cmocka_unit_test(test_alignment_invalid),
        cmocka_unit_test(test_value_text_truncates),
        cmocka_unit_test(test_string_values_hold_any_bytes),
        cmocka_unit_test(test_empty_file_and_magic),
        cmocka_unit_test(test_free_is_idempotent),
    };
    return cmocka_run_group_tests_name("gguf", tests, NULL, NULL);
}
