/*
 * fuzz_safetensors.c - libFuzzer target for the safetensors reader and the Hugging Face
 * checkpoint loader.
 *
 * Input layout:
 *
 *     u8 selector | safetensors image (u64 header size | JSON header | data)
 *
 * selector % FUZZ_ST_N_CONFIGS picks one of the fixed config.json texts of fuzz_model.c
 * (tiny tied, tiny untied with an explicit head_dim, the reference tiny-q shape). The image
 * is copied into its own exact-size allocation (so ASan sees any read past it, and the
 * data has the alignment a mapping would give) and goes
 *   1. through ar_model_open_memory(image, config) and, on success, every query of the
 *      model (fuzz_model.c);
 *   2. through ar_safetensors_parse() directly: every tensor must lie in the data, the
 *      ranges must tile it as the header promises, and each converts to float32.
 * A broken contract abort()s (see FUZZ_CHECK), so libFuzzer saves the input.
 *
 * Build and run: scripts/fuzz.sh safetensors
 */
#include "fuzz_model.h"
#include "model/model.h"
#include "model/safetensors.h"

#include <stdlib.h>
#include <string.h>

static int cmp_begin(const void *a, const void *b) {
    const ar_st_tensor *x = *(const ar_st_tensor *const *)a;
    const ar_st_tensor *y = *(const ar_st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static void check_tensor(const ar_safetensors *st, const ar_st_tensor *t, const uint8_t *img,
                         size_t size, uint64_t *budget) {
    FUZZ_CHECK(t->name != NULL);
    size_t len = strlen(t->name);
    FUZZ_CHECK(len >= 1 && len <= AR_ST_MAX_NAME);
    FUZZ_CHECK(t->dtype == AR_TYPE_F32 || t->dtype == AR_TYPE_F16 || t->dtype == AR_TYPE_BF16);
    FUZZ_CHECK(t->n_dims >= 0 && t->n_dims <= AR_ST_MAX_DIMS);
    uint64_t n = 1;
    for (int d = 0; d < t->n_dims; d++) {
        FUZZ_CHECK(t->shape[d] >= 0);
        FUZZ_CHECK(!__builtin_mul_overflow(n, (uint64_t)t->shape[d], &n));
    }
    FUZZ_CHECK(n == t->n_elements);
    const ar_type_traits *tt = ar_type_traits_get(t->dtype);
    FUZZ_CHECK(tt != NULL && tt->blck_size == 1);
    uint64_t data_size = size - st->data_offset;
    FUZZ_CHECK(t->begin <= t->end && t->end <= data_size);
    FUZZ_CHECK(t->end - t->begin == n * (uint64_t)tt->type_size);
    FUZZ_CHECK(t->data == img + st->data_offset + t->begin);
    FUZZ_CHECK((st->data_offset + t->begin) % (uint64_t)tt->type_size == 0);
    fuzz_to_f32(tt, t->data, n, budget);
}

/* Returns whether the image parses. */
static bool check_parse(const uint8_t *img, size_t size) {
    ar_safetensors st;
    ar_err err;
    err.msg[0] = 0;
    ar_status rc = ar_safetensors_parse(&st, img, size, "fuzz.safetensors", &err);
    if (rc != AR_OK) {
        fuzz_check_error(rc, err.msg);
        FUZZ_CHECK(st.n_tensors == 0 && st.tensors == NULL && st.metadata_format == NULL);
        ar_safetensors_free(&st);
        return false;
    }
    FUZZ_CHECK(size >= 8 && st.data_offset == 8 + st.header_size && st.data_offset <= size);
    FUZZ_CHECK(st.header_size <= AR_ST_MAX_HEADER);
    if (st.metadata_format) (void)strlen(st.metadata_format);
    uint64_t budget = FUZZ_MAX_ELEMENTS;
    for (uint64_t i = 0; i < st.n_tensors; i++)
        check_tensor(&st, &st.tensors[i], img, size, &budget);
    /* The ranges tile the data exactly. */
    const ar_st_tensor **order = malloc((size_t)(st.n_tensors ? st.n_tensors : 1) * sizeof *order);
    FUZZ_CHECK(order != NULL);
    for (uint64_t i = 0; i < st.n_tensors; i++) order[i] = &st.tensors[i];
    qsort(order, (size_t)st.n_tensors, sizeof *order, cmp_begin);
    uint64_t at = 0;
    for (uint64_t i = 0; i < st.n_tensors; i++) {
        FUZZ_CHECK(order[i]->begin == at);
        at = order[i]->end;
    }
    FUZZ_CHECK(at == size - st.data_offset);
    free(order);
    ar_safetensors_free(&st);
    FUZZ_CHECK(st.tensors == NULL && st.n_tensors == 0);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const fuzz_st_config *cfg = &fuzz_st_configs[data[0] % FUZZ_ST_N_CONFIGS];
    size_t n = size - 1;
    uint8_t *img = malloc(n ? n : 1);
    FUZZ_CHECK(img != NULL);
    if (n) memcpy(img, data + 1, n);

    ar_model_params params = ar_model_default_params();
    ar_model *m = NULL;
    ar_status st = ar_model_open_memory(img, n, cfg->json, &params, &m);
    fuzz_check_model(st, m, "safetensors", n);

    bool parsed = check_parse(img, n);
    FUZZ_CHECK(parsed || st != AR_OK); /* a checkpoint that opens has a shard that parses */
    free(img);
    return 0;
}
