/*
 * safetensors.c - the safetensors reader (format and rules in safetensors.h).
 *
 * The header is parsed with jansson (duplicate names rejected by the parser itself), then
 * each entry is checked field by field; finally the byte ranges are sorted and must tile
 * the data section exactly, which catches headers that lie about offsets (overlaps, gaps,
 * ranges past the end) the same way the reference library does.
 */
#include "model/safetensors.h"

#include "base/checked.h"
#include "kernels/types.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The format's dtype names; those archrouter cannot load map to -1. */
static const struct {
    const char *name;
    int type;
} dtypes[] = {
    {"F32", AR_TYPE_F32}, {"F16", AR_TYPE_F16}, {"BF16", AR_TYPE_BF16},
    {"F64", -1},          {"I64", -1},          {"I32", -1},
    {"I16", -1},          {"I8", -1},           {"U64", -1},
    {"U32", -1},          {"U16", -1},          {"U8", -1},
    {"BOOL", -1},         {"F8_E4M3", -1},      {"F8_E5M2", -1},
    {"F8_E8M0", -1},      {"F6_E2M3", -1},      {"F6_E3M2", -1},
    {"F4", -1},           {"C64", -1},
};

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static ar_status parse_dtype(json_t *entry, const char *file, const char *name, uint32_t *out,
                             ar_err *err) {
    json_t *dt = json_object_get(entry, "dtype");
    if (!json_is_string(dt))
        return ar_errf(err, AR_ERR_FORMAT, "%s: tensor '%s': \"dtype\" missing or not a string",
                       file, name);
    const char *s = json_string_value(dt);
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) {
        if (strcmp(s, dtypes[i].name) != 0) continue;
        if (dtypes[i].type < 0)
            return ar_errf(err, AR_ERR_UNSUPPORTED,
                           "%s: tensor '%s' has dtype %s; archrouter reads F32, F16 and BF16", file,
                           name, s);
        *out = (uint32_t)dtypes[i].type;
        return AR_OK;
    }
    return ar_errf(err, AR_ERR_FORMAT, "%s: tensor '%s' has unknown dtype \"%.40s\"", file, name,
                   s);
}

static ar_status parse_shape(json_t *entry, const char *file, ar_st_tensor *t, ar_err *err) {
    json_t *shape = json_object_get(entry, "shape");
    if (!json_is_array(shape))
        return ar_errf(err, AR_ERR_FORMAT, "%s: tensor '%s': \"shape\" missing or not an array",
                       file, t->name);
    size_t nd = json_array_size(shape);
    if (nd > AR_ST_MAX_DIMS)
        return ar_errf(err, AR_ERR_UNSUPPORTED,
                       "%s: tensor '%s' has %zu dimensions (archrouter handles up to %d)", file,
                       t->name, nd, AR_ST_MAX_DIMS);
    t->n_dims = (int32_t)nd;
    uint64_t n = 1;
    for (size_t d = 0; d < nd; d++) {
        json_t *v = json_array_get(shape, d);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return ar_errf(err, AR_ERR_FORMAT,
                           "%s: tensor '%s': shape[%zu] is not a non-negative integer", file,
                           t->name, d);
        t->shape[d] = (int64_t)json_integer_value(v);
        if (!ar_mul_u64(n, (uint64_t)t->shape[d], &n) || n > (uint64_t)INT64_MAX)
            return ar_errf(err, AR_ERR_FORMAT, "%s: tensor '%s': element count overflows", file,
                           t->name);
    }
    t->n_elements = n;
    return AR_OK;
}

static ar_status parse_offsets(json_t *entry, const char *file, ar_st_tensor *t, ar_err *err) {
    json_t *offs = json_object_get(entry, "data_offsets");
    json_t *b = json_array_get(offs, 0), *e = json_array_get(offs, 1);
    if (!json_is_array(offs) || json_array_size(offs) != 2 || !json_is_integer(b) ||
        !json_is_integer(e) || json_integer_value(b) < 0 || json_integer_value(e) < 0)
        return ar_errf(err, AR_ERR_FORMAT,
                       "%s: tensor '%s': \"data_offsets\" must be [begin, end] with "
                       "non-negative integers",
                       file, t->name);
    t->begin = (uint64_t)json_integer_value(b);
    t->end = (uint64_t)json_integer_value(e);
    if (t->end < t->begin)
        return ar_errf(err, AR_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets end %" PRIu64 " is before begin %" PRIu64,
                       file, t->name, t->end, t->begin);
    const ar_type_traits *tt = ar_type_traits_get(t->dtype);
    uint64_t bytes;
    if (!tt || !ar_mul_u64(t->n_elements, (uint64_t)tt->type_size, &bytes))
        return ar_errf(err, AR_ERR_FORMAT, "%s: tensor '%s': byte size of the shape overflows",
                       file, t->name);
    if (bytes != t->end - t->begin)
        return ar_errf(err, AR_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets cover %" PRIu64 " bytes but the shape "
                       "and dtype need %" PRIu64,
                       file, t->name, t->end - t->begin, bytes);
    return AR_OK;
}

static int cmp_begin(const void *a, const void *b) {
    const ar_st_tensor *x = *(ar_st_tensor *const *)a, *y = *(ar_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* The ranges must tile [0, data_size) exactly, and each must be aligned to its element. */
static ar_status check_layout(ar_safetensors *st, const uint8_t *data, uint64_t data_size,
                              const char *file, ar_err *err) {
    ar_st_tensor **order = malloc((size_t)(st->n_tensors ? st->n_tensors : 1) * sizeof *order);
    if (!order) return ar_errf(err, AR_ERR_NOMEM, "%s: out of memory", file);
    for (uint64_t i = 0; i < st->n_tensors; i++) order[i] = &st->tensors[i];
    qsort(order, (size_t)st->n_tensors, sizeof *order, cmp_begin);
    ar_status rc = AR_OK;
    uint64_t expect = 0;
    for (uint64_t i = 0; i < st->n_tensors && rc == AR_OK; i++) {
        ar_st_tensor *t = order[i];
        if (t->begin != expect)
            rc = ar_errf(err, AR_ERR_FORMAT,
                         "%s: tensor '%s': data_offsets begin at %" PRIu64 " but the previous "
                         "tensor ends at %" PRIu64 " (%s)",
                         file, t->name, t->begin, expect, t->begin < expect ? "overlap" : "gap");
        else if (t->end > data_size)
            rc = ar_errf(err, AR_ERR_FORMAT,
                         "%s: tensor '%s': data_offsets end %" PRIu64 " is past the end of the "
                         "data (%" PRIu64 " bytes)",
                         file, t->name, t->end, data_size);
        else if ((st->data_offset + t->begin) % (uint64_t)ar_type_traits_get(t->dtype)->type_size)
            rc = ar_errf(err, AR_ERR_FORMAT,
                         "%s: tensor '%s': data at file offset %" PRIu64 " is not aligned to "
                         "its %" PRId32 "-byte elements",
                         file, t->name, st->data_offset + t->begin,
                         ar_type_traits_get(t->dtype)->type_size);
        t->data = data + t->begin;
        expect = t->end;
    }
    if (rc == AR_OK && expect != data_size)
        rc = ar_errf(err, AR_ERR_FORMAT,
                     "%s: the tensors cover %" PRIu64 " bytes of data but the file has %" PRIu64
                     " after the header",
                     file, expect, data_size);
    free(order);
    return rc;
}

static ar_status parse_metadata(ar_safetensors *st, json_t *meta, const char *file, ar_err *err) {
    if (!json_is_object(meta))
        return ar_errf(err, AR_ERR_FORMAT, "%s: \"__metadata__\" is not an object", file);
    const char *k;
    json_t *v;
    json_object_foreach(meta, k, v) {
        if (!json_is_string(v))
            return ar_errf(err, AR_ERR_FORMAT, "%s: __metadata__.%.100s is not a string", file, k);
    }
    json_t *fmt = json_object_get(meta, "format");
    if (fmt) {
        st->metadata_format = strdup(json_string_value(fmt));
        if (!st->metadata_format) return ar_errf(err, AR_ERR_NOMEM, "%s: out of memory", file);
    }
    return AR_OK;
}

static ar_status parse_entries(ar_safetensors *st, json_t *root, const char *file, ar_err *err) {
    size_t n = json_object_size(root);
    st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
    if (!st->tensors) return ar_errf(err, AR_ERR_NOMEM, "%s: out of memory", file);
    const char *key;
    json_t *entry;
    json_object_foreach(root, key, entry) {
        ar_status rc;
        if (strcmp(key, "__metadata__") == 0) {
            rc = parse_metadata(st, entry, file, err);
            if (rc != AR_OK) return rc;
            continue;
        }
        size_t klen = strlen(key);
        if (klen == 0 || klen > AR_ST_MAX_NAME)
            return ar_errf(err, AR_ERR_FORMAT, "%s: tensor name of %zu bytes (1 to %d allowed)",
                           file, klen, AR_ST_MAX_NAME);
        if (!json_is_object(entry))
            return ar_errf(err, AR_ERR_FORMAT, "%s: entry '%s' is not an object", file, key);
        ar_st_tensor *t = &st->tensors[st->n_tensors];
        t->name = strdup(key);
        if (!t->name) return ar_errf(err, AR_ERR_NOMEM, "%s: out of memory", file);
        st->n_tensors++;
        rc = parse_dtype(entry, file, t->name, &t->dtype, err);
        if (rc == AR_OK) rc = parse_shape(entry, file, t, err);
        if (rc == AR_OK) rc = parse_offsets(entry, file, t, err);
        if (rc != AR_OK) return rc;
    }
    return AR_OK;
}

ar_status ar_safetensors_parse(ar_safetensors *st, const uint8_t *data, size_t size,
                               const char *file, ar_err *err) {
    memset(st, 0, sizeof *st);
    if (size < 8)
        return ar_errf(err, AR_ERR_FORMAT,
                       "%s: file is %zu bytes, too short for safetensors (8-byte header size)",
                       file, size);
    uint64_t n = le64(data);
    if (n > AR_ST_MAX_HEADER)
        return ar_errf(err, AR_ERR_FORMAT,
                       "%s: header size %" PRIu64 " exceeds the format's limit of %u bytes", file,
                       n, AR_ST_MAX_HEADER);
    if (n > size - 8)
        return ar_errf(err, AR_ERR_FORMAT,
                       "%s: header size %" PRIu64 " runs past the end of the file (%zu bytes)",
                       file, n, size);
    if (n < 2 || data[8] != '{')
        return ar_errf(err, AR_ERR_FORMAT,
                       "%s: header at offset 8 is not a JSON object (not a safetensors file?)",
                       file);
    st->header_size = n;
    st->data_offset = 8 + n;
    json_error_t jerr;
    json_t *root = json_loadb((const char *)data + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ar_errf(err, AR_ERR_FORMAT, "%s: JSON header, byte %d (file offset %" PRIu64 "): %s",
                       file, jerr.position, (uint64_t)jerr.position + 8, jerr.text);
    ar_status rc = AR_OK;
    if (!json_is_object(root))
        rc = ar_errf(err, AR_ERR_FORMAT, "%s: JSON header is not an object", file);
    if (rc == AR_OK) rc = parse_entries(st, root, file, err);
    if (rc == AR_OK)
        rc = check_layout(st, data + st->data_offset, size - st->data_offset, file, err);
    json_decref(root);
    if (rc != AR_OK) ar_safetensors_free(st);
    return rc;
}

void ar_safetensors_free(ar_safetensors *st) {
    for (uint64_t i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    free(st->metadata_format);
    memset(st, 0, sizeof *st);
}
