/*
 * fuzz_gguf.c - libFuzzer target for the GGUF reader.
 *
 * The input is a GGUF image. It goes
 *   1. through the public entry point, ar_model_open_memory() (vocabulary-only files
 *      allowed), and on success through every query of the model (fuzz_model.c); a
 *      vocabulary-only file is opened again without allow_vocab_only and must be refused;
 *   2. through ar_gguf_parse() directly, which also accepts valid GGUF files that are not
 *      valid models: every metadata value is read back with each typed getter (which must
 *      agree with its type) and rendered, every array of strings is walked, and every
 *      tensor must lie in the file and is converted with its reference dequantizer;
 *   3. when it parses, through ar_tokenizer_open() on a copy in a temporary file (that path
 *      reads any GGUF's tokenizer.* metadata without validating a model), and, when the
 *      model opened, through ar_tokenizer_from_model(): both tokenizers encode and decode
 *      fixed texts (fuzz_check_tokenizer).
 * A broken contract abort()s (see FUZZ_CHECK), so libFuzzer saves the input.
 *
 * Build and run: scripts/fuzz.sh gguf
 */
#include "fuzz_model.h"
#include "model/gguf.h"
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile uint8_t sink;

static bool is_int_type(uint32_t t) {
    return t == AR_GGUF_U8 || t == AR_GGUF_I8 || t == AR_GGUF_U16 || t == AR_GGUF_I16 ||
           t == AR_GGUF_U32 || t == AR_GGUF_I32 || t == AR_GGUF_U64 || t == AR_GGUF_I64;
}

/* A getter either succeeds when the type says it should, or fails with AR_ERR_FORMAT and a
 * message (the key exists, so never AR_ERR_NOT_FOUND). */
static void expect(ar_status st, bool ok, const ar_err *err) {
    if (ok) {
        FUZZ_CHECK(st == AR_OK);
    } else {
        FUZZ_CHECK(st == AR_ERR_FORMAT);
        fuzz_check_error(st, err->msg);
    }
}

/* The integer a scalar holds, read independently of the parser. */
static int64_t int_value(const ar_gguf_value *v) {
    uint64_t u = 0;
    memcpy(&u, v->data, (size_t)v->size); /* little-endian host (quant.h insists) */
    switch (v->type) {
    case AR_GGUF_I8: return (int8_t)u;
    case AR_GGUF_I16: return (int16_t)u;
    case AR_GGUF_I32: return (int32_t)u;
    default: return (int64_t)u;
    }
}

static void check_getters(const ar_gguf *g, const ar_gguf_kv *kv) {
    const ar_gguf_value *v = &kv->value;
    ar_err err;
    int64_t iv;
    double dv;
    bool bv;
    const char *s;
    uint64_t len;
    const ar_gguf_value *av;

    bool int_ok = is_int_type(v->type) && !(v->type == AR_GGUF_U64 && (v->data[7] & 0x80));
    err.msg[0] = 0;
    expect(ar_gguf_get_int(g, kv->key, &iv, &err), int_ok, &err);
    if (int_ok) FUZZ_CHECK(iv == int_value(v));
    err.msg[0] = 0;
    expect(ar_gguf_get_float(g, kv->key, &dv, &err),
           v->type == AR_GGUF_F32 || v->type == AR_GGUF_F64, &err);
    err.msg[0] = 0;
    expect(ar_gguf_get_bool(g, kv->key, &bv, &err), v->type == AR_GGUF_BOOL, &err);
    if (v->type == AR_GGUF_BOOL) FUZZ_CHECK(bv == (v->data[0] != 0) && v->data[0] <= 1);
    err.msg[0] = 0;
    expect(ar_gguf_get_str(g, kv->key, &s, &len, &err), v->type == AR_GGUF_STRING, &err);
    if (v->type == AR_GGUF_STRING) FUZZ_CHECK(s == (const char *)v->data && len == v->count);
    err.msg[0] = 0;
    expect(ar_gguf_get_array(g, kv->key, AR_GGUF_NTYPES, &av, &err), v->type == AR_GGUF_ARRAY,
           &err);
    if (v->type == AR_GGUF_ARRAY) FUZZ_CHECK(av == v);
    err.msg[0] = 0;
    expect(ar_gguf_get_array(g, kv->key, v->elem_type, &av, &err), v->type == AR_GGUF_ARRAY, &err);
    err.msg[0] = 0;
    expect(ar_gguf_get_array(g, kv->key, (v->elem_type + 1) % AR_GGUF_NTYPES, &av, &err), false,
           &err);
}

/* Arrays: the element type is valid, scalars fill the bytes exactly, every string of an
 * array of strings lies inside the array. */
static void check_array(const ar_gguf_value *v) {
    static const uint8_t scalar_size[AR_GGUF_NTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    FUZZ_CHECK(v->elem_type < AR_GGUF_NTYPES);
    if (scalar_size[v->elem_type]) {
        FUZZ_CHECK(v->size / scalar_size[v->elem_type] == v->count &&
                   v->size % scalar_size[v->elem_type] == 0);
        if (v->elem_type == AR_GGUF_BOOL)
            for (uint64_t i = 0; i < v->count; i++) FUZZ_CHECK(v->data[i] <= 1);
    } else if (v->elem_type == AR_GGUF_STRING) {
        FUZZ_CHECK(v->count == 0 || v->str_index != NULL);
        const uint8_t *end = v->data + v->size;
        for (uint64_t i = 0; i < v->count; i++) {
            const char *s;
            uint64_t len;
            ar_gguf_array_str(v, i, &s, &len);
            const uint8_t *p = (const uint8_t *)s;
            FUZZ_CHECK(p >= v->data + 8 && p <= end && len <= (uint64_t)(end - p));
            if (len) sink ^= p[0] ^ p[len - 1]; /* let ASan see the ends */
        }
    }
}

/* ar_gguf_value_text() renders like snprintf (see check_meta_entry in fuzz_model.c). */
static void check_value_text(const ar_gguf_value *v) {
    int64_t len = ar_gguf_value_text(v, NULL, 0);
    FUZZ_CHECK(len >= 0);
    char *full = malloc((size_t)len + 1);
    FUZZ_CHECK(full != NULL);
    FUZZ_CHECK(ar_gguf_value_text(v, full, (size_t)len + 1) == len);
    FUZZ_CHECK(strlen(full) == (size_t)len);
    for (size_t cap = 1; cap <= 3; cap++) {
        char *small = malloc(cap);
        FUZZ_CHECK(small != NULL);
        FUZZ_CHECK(ar_gguf_value_text(v, small, cap) == len);
        size_t want = (size_t)len < cap - 1 ? (size_t)len : cap - 1;
        FUZZ_CHECK(strlen(small) == want && memcmp(small, full, want) == 0);
        free(small);
    }
    free(full);
}

static void check_kv(const ar_gguf *g, uint64_t i, const uint8_t *data, size_t size, bool lookup) {
    const ar_gguf_kv *kv = &g->kv[i];
    const ar_gguf_value *v = &kv->value;
    FUZZ_CHECK(kv->key != NULL && kv->key[0] != 0);
    if (lookup) FUZZ_CHECK(ar_gguf_find(g, kv->key) == kv); /* keys are unique */
    FUZZ_CHECK(v->type < AR_GGUF_NTYPES && strcmp(ar_gguf_type_name(v->type), "?") != 0);
    FUZZ_CHECK(v->data >= data && v->data <= data + size &&
               v->size <= (uint64_t)(data + size - v->data));
    FUZZ_CHECK(v->offset < size);
    if (lookup) check_getters(g, kv);
    if (v->type == AR_GGUF_ARRAY) check_array(v);
    check_value_text(v);
}

static void check_tensor(const ar_gguf *g, const ar_gguf_tensor *t, const uint8_t *data,
                         size_t size, uint64_t *budget) {
    FUZZ_CHECK(t->name != NULL && t->name[0] != 0);
    FUZZ_CHECK(t->n_dims >= 1 && t->n_dims <= AR_GGUF_MAX_DIMS);
    uint64_t n = 1;
    for (uint32_t d = 0; d < AR_GGUF_MAX_DIMS; d++) {
        FUZZ_CHECK(t->ne[d] >= 1 && (d < t->n_dims || t->ne[d] == 1));
        FUZZ_CHECK(!__builtin_mul_overflow(n, (uint64_t)t->ne[d], &n));
    }
    FUZZ_CHECK(n == t->n_elements);
    const ar_type_traits *tt = ar_type_traits_get(t->type);
    FUZZ_CHECK(tt != NULL);
    uint64_t row;
    FUZZ_CHECK(ar_type_row_bytes(tt, (uint64_t)t->ne[0], &row));
    FUZZ_CHECK(row * (n / (uint64_t)t->ne[0]) == t->n_bytes);
    FUZZ_CHECK(t->offset % g->alignment == 0);
    FUZZ_CHECK(g->data_offset <= size && t->offset <= size - g->data_offset &&
               t->n_bytes <= size - g->data_offset - t->offset);
    FUZZ_CHECK(t->data == data + g->data_offset + t->offset);
    FUZZ_CHECK(t->info_offset < g->data_offset);
    fuzz_to_f32(tt, t->data, t->n_elements, budget);
}

/* Returns whether the bytes parse. */
static bool check_parse(const uint8_t *data, size_t size) {
    ar_gguf g;
    ar_err err;
    err.msg[0] = 0;
    ar_status st = ar_gguf_parse(&g, data, size, &err);
    if (st != AR_OK) {
        fuzz_check_error(st, err.msg);
        FUZZ_CHECK(g.n_kv == 0 && g.kv == NULL && g.n_tensors == 0 && g.tensors == NULL);
        ar_gguf_free(&g);
        return false;
    }
    FUZZ_CHECK(ar_gguf_has_magic(data, size));
    FUZZ_CHECK(g.version == 2 || g.version == 3);
    FUZZ_CHECK(g.alignment != 0 && (g.alignment & (g.alignment - 1)) == 0);
    FUZZ_CHECK(g.data_offset % g.alignment == 0);
    FUZZ_CHECK(g.file == data && g.file_size == size);
    for (uint64_t i = 0; i < g.n_kv; i++) check_kv(&g, i, data, size, i < FUZZ_MAX_LOOKUPS);
    FUZZ_CHECK(ar_gguf_find(&g, "") == NULL);
    uint64_t budget = FUZZ_MAX_ELEMENTS;
    for (uint64_t i = 0; i < g.n_tensors; i++) check_tensor(&g, &g.tensors[i], data, size, &budget);
    ar_gguf_free(&g);
    FUZZ_CHECK(g.kv == NULL && g.tensors == NULL); /* free leaves it empty */
    ar_gguf_free(&g);                              /* and freeing twice is harmless */
    return true;
}

/* ---- the tokenizer from a file ------------------------------------------------------ */

static char tmp_path[4096]; /* this process's copy of the input, for ar_tokenizer_open() */

static void remove_tmp(void) {
    if (tmp_path[0]) unlink(tmp_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("TMPDIR");
    snprintf(tmp_path, sizeof tmp_path, "%s/fuzz_gguf.XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(tmp_path);
    FUZZ_CHECK(fd >= 0); /* no temporary directory: the harness cannot run */
    close(fd);
    atexit(remove_tmp);
    return 0;
}

static void check_tokenizer_file(const uint8_t *data, size_t size) {
    FILE *f = fopen(tmp_path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(fwrite(data, 1, size, f) == size && fclose(f) == 0);
    ar_tokenizer_params tp = fuzz_tokenizer_params();
    ar_tokenizer *tok = NULL;
    ar_status st = ar_tokenizer_open(tmp_path, &tp, &tok);
    fuzz_check_tokenizer(st, tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ar_model_params params = ar_model_default_params();
    params.allow_vocab_only = true;
    ar_model *m = NULL;
    ar_status st = ar_model_open_memory(data, size, NULL, &params, &m);
    ar_model_info in = {0};
    if (st == AR_OK) FUZZ_CHECK(ar_model_get_info(m, &in) == AR_OK);
    fuzz_check_model(st, m, "gguf", size);

    if (st == AR_OK && in.vocab_only) {
        params.allow_vocab_only = false;
        m = NULL;
        ar_status st2 = ar_model_open_memory(data, size, NULL, &params, &m);
        FUZZ_CHECK(st2 == AR_ERR_MODEL);
        fuzz_check_model(st2, m, "gguf", size);
    }

    bool parsed = check_parse(data, size);
    FUZZ_CHECK(parsed || st != AR_OK); /* a model that opens is a GGUF that parses */
    if (parsed) check_tokenizer_file(data, size);
    return 0;
}
