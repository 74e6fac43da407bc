/*
 * gguf.c - the GGUF reader (format and guarantees in gguf.h).
 *
 * Parsing is one forward pass with a cursor that knows how many bytes remain. Every read
 * checks the remaining length first; every count is compared with the bytes it would need
 * (a string needs at least 8 bytes, a tensor info at least 32) before anything is
 * allocated by it, so a hostile file cannot make us allocate more than a small multiple of
 * its own size. Keys and tensor names are copied (NUL-terminated, UTF-8 checked); values
 * and tensor data stay in the caller's buffer.
 */
#include "model/gguf.h"

#include "base/checked.h"
#include "base/utf8.h"
#include "kernels/types.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t gguf_magic[4] = {'G', 'G', 'U', 'F'};

/* Sizes of the scalar value types; 0 for string and array. */
static const uint8_t scalar_size[AR_GGUF_NTYPES] = {
    [AR_GGUF_U8] = 1,  [AR_GGUF_I8] = 1,  [AR_GGUF_U16] = 2, [AR_GGUF_I16] = 2,
    [AR_GGUF_U32] = 4, [AR_GGUF_I32] = 4, [AR_GGUF_F32] = 4, [AR_GGUF_BOOL] = 1,
    [AR_GGUF_U64] = 8, [AR_GGUF_I64] = 8, [AR_GGUF_F64] = 8,
};

static const char *const type_names[AR_GGUF_NTYPES] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

const char *ar_gguf_type_name(uint32_t type) {
    return type < AR_GGUF_NTYPES ? type_names[type] : "?";
}

bool ar_gguf_has_magic(const uint8_t *data, size_t size) {
    return size >= 4 && memcmp(data, gguf_magic, 4) == 0;
}

/* ---- cursor --------------------------------------------------------------------------- */

typedef struct cursor {
    const uint8_t *base;
    uint64_t size;
    uint64_t off;
    ar_err *err;
    const char *what; /* what is being read, for messages: "header", "key 'x'", ... */
} cursor;

static uint64_t remaining(const cursor *c) {
    return c->size - c->off;
}

static ar_status truncated(cursor *c, uint64_t need) {
    return ar_errf(c->err, AR_ERR_FORMAT,
                   "truncated file: %s needs %" PRIu64 " bytes at offset %" PRIu64
                   " but only %" PRIu64 " remain",
                   c->what, need, c->off, remaining(c));
}

/* An element count that cannot fit in the rest of the file, each element needing at
 * least min_size bytes. */
static ar_status too_many(cursor *c, uint64_t count, const char *what, unsigned min_size) {
    return ar_errf(c->err, AR_ERR_FORMAT,
                   "truncated file: %s holds %" PRIu64 " %s at offset %" PRIu64
                   ", but each needs at least %u bytes and only %" PRIu64 " remain",
                   c->what, count, what, c->off, min_size, remaining(c));
}

static ar_status take(cursor *c, uint64_t n, const uint8_t **p) {
    if (n > remaining(c)) return truncated(c, n);
    *p = c->base + c->off;
    c->off += n;
    return AR_OK;
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p) {
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static ar_status read_u32(cursor *c, uint32_t *v) {
    const uint8_t *p = NULL;
    ar_status st = take(c, 4, &p);
    if (st == AR_OK) *v = le32(p);
    return st;
}

static ar_status read_u64(cursor *c, uint64_t *v) {
    const uint8_t *p = NULL;
    ar_status st = take(c, 8, &p);
    if (st == AR_OK) *v = le64(p);
    return st;
}

/* A length-prefixed string: bounds only (no UTF-8 check; values may hold any bytes). */
static ar_status read_str(cursor *c, const uint8_t **s, uint64_t *len) {
    ar_status st = read_u64(c, len);
    if (st != AR_OK) return st;
    return take(c, *len, s);
}

/* A string that becomes a C identifier (key, tensor name): non-empty, at most max bytes,
 * valid UTF-8 without NUL. Returns a malloc'd copy. */
static ar_status read_name(cursor *c, uint64_t max, const char *kind, char **out) {
    uint64_t at = c->off, len;
    const uint8_t *s = NULL;
    ar_status st = read_str(c, &s, &len);
    if (st != AR_OK) return st;
    if (len == 0) return ar_errf(c->err, AR_ERR_FORMAT, "empty %s at offset %" PRIu64, kind, at);
    if (len > max)
        return ar_errf(c->err, AR_ERR_FORMAT,
                       "%s at offset %" PRIu64 " is %" PRIu64 " bytes long (limit %" PRIu64 ")",
                       kind, at, len, max);
    size_t bad;
    const uint8_t *nul = memchr(s, 0, (size_t)len);
    if (nul)
        return ar_errf(c->err, AR_ERR_FORMAT, "%s at offset %" PRIu64 " contains a NUL byte", kind,
                       at);
    if (!ar_utf8_valid(s, (size_t)len, &bad))
        return ar_errf(c->err, AR_ERR_FORMAT,
                       "%s at offset %" PRIu64 " is not valid UTF-8 (bad byte at offset %" PRIu64
                       ")",
                       kind, at, at + 8 + (uint64_t)bad);
    char *copy = malloc((size_t)len + 1);
    if (!copy) return ar_errf(c->err, AR_ERR_NOMEM, "out of memory reading %s", kind);
    memcpy(copy, s, (size_t)len);
    copy[len] = 0;
    *out = copy;
    return AR_OK;
}

/* ---- values --------------------------------------------------------------------------- */

static ar_status skip_value(cursor *c, uint32_t type, int depth);

/* The elements of an array whose header (type, count) has been read. */
static ar_status read_array_body(cursor *c, ar_gguf_value *v, int depth) {
    if (v->elem_type >= AR_GGUF_NTYPES)
        return ar_errf(c->err, AR_ERR_FORMAT,
                       "%s: invalid array element type %" PRIu32 " at offset %" PRIu64, c->what,
                       v->elem_type, c->off - 12);
    uint64_t start = c->off;
    v->data = c->base + start;
    if (scalar_size[v->elem_type]) {
        uint64_t bytes;
        if (!ar_mul_u64(v->count, scalar_size[v->elem_type], &bytes))
            return ar_errf(c->err, AR_ERR_FORMAT,
                           "%s: array of %" PRIu64 " %s values at offset %" PRIu64
                           " overflows its byte size",
                           c->what, v->count, ar_gguf_type_name(v->elem_type), start - 12);
        if (bytes > remaining(c)) return truncated(c, bytes);
        if (v->elem_type == AR_GGUF_BOOL)
            for (uint64_t i = 0; i < v->count; i++)
                if (c->base[c->off + i] > 1)
                    return ar_errf(c->err, AR_ERR_FORMAT, "%s: invalid bool %u at offset %" PRIu64,
                                   c->what, c->base[c->off + i], c->off + i);
        c->off += bytes;
    } else if (v->elem_type == AR_GGUF_STRING) {
        /* Every string takes at least its 8-byte length: bound the index by that. */
        if (v->count > remaining(c) / 8) return too_many(c, v->count, "strings", 8);
        v->str_index = malloc((size_t)(v->count ? v->count : 1) * sizeof *v->str_index);
        if (!v->str_index) return ar_errf(c->err, AR_ERR_NOMEM, "%s: out of memory", c->what);
        for (uint64_t i = 0; i < v->count; i++) {
            v->str_index[i] = c->off - start;
            const uint8_t *s = NULL;
            uint64_t len;
            ar_status st = read_str(c, &s, &len);
            if (st != AR_OK) return st;
        }
    } else { /* nested arrays */
        if (depth >= AR_GGUF_MAX_NESTING)
            return ar_errf(c->err, AR_ERR_FORMAT,
                           "%s: arrays nested deeper than %d at offset %" PRIu64, c->what,
                           AR_GGUF_MAX_NESTING, c->off);
        /* Each nested array takes at least 12 bytes (type + count). */
        if (v->count > remaining(c) / 12) return too_many(c, v->count, "arrays", 12);
        for (uint64_t i = 0; i < v->count; i++) {
            ar_status st = skip_value(c, AR_GGUF_ARRAY, depth + 1);
            if (st != AR_OK) return st;
        }
    }
    v->size = c->off - start;
    return AR_OK;
}

/* Validate and step over a value of a known type (used inside nested arrays). */
static ar_status skip_value(cursor *c, uint32_t type, int depth) {
    if (type == AR_GGUF_ARRAY) {
        ar_gguf_value v = {.type = AR_GGUF_ARRAY};
        ar_status st = read_u32(c, &v.elem_type);
        if (st == AR_OK) st = read_u64(c, &v.count);
        if (st == AR_OK) st = read_array_body(c, &v, depth);
        free(v.str_index);
        return st;
    }
    if (type == AR_GGUF_STRING) {
        const uint8_t *s = NULL;
        uint64_t len;
        return read_str(c, &s, &len);
    }
    const uint8_t *p = NULL;
    return take(c, scalar_size[type], &p);
}

static ar_status read_value(cursor *c, ar_gguf_value *v) {
    uint64_t at = c->off;
    ar_status st = read_u32(c, &v->type);
    if (st != AR_OK) return st;
    v->offset = c->off;
    if (v->type >= AR_GGUF_NTYPES)
        return ar_errf(c->err, AR_ERR_FORMAT,
                       "%s: invalid value type %" PRIu32 " at offset %" PRIu64, c->what, v->type,
                       at);
    if (v->type == AR_GGUF_ARRAY) {
        st = read_u32(c, &v->elem_type);
        if (st == AR_OK) st = read_u64(c, &v->count);
        if (st == AR_OK) st = read_array_body(c, v, 1);
        return st;
    }
    if (v->type == AR_GGUF_STRING) {
        st = read_str(c, &v->data, &v->count);
        v->size = v->count;
        return st;
    }
    v->size = scalar_size[v->type];
    st = take(c, v->size, &v->data);
    if (st == AR_OK && v->type == AR_GGUF_BOOL && v->data[0] > 1)
        return ar_errf(c->err, AR_ERR_FORMAT, "%s: invalid bool %u at offset %" PRIu64, c->what,
                       v->data[0], v->offset);
    return st;
}

/* ---- duplicates ----------------------------------------------------------------------- */

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The first name that occurs twice, or NULL. Sorting keeps this O(n log n) for hostile
 * files with very many entries. */
static const char *find_duplicate(char **names, uint64_t n, ar_err *err, bool *oom) {
    *oom = false;
    if (n < 2) return NULL;
    char **sorted = malloc((size_t)n * sizeof *sorted);
    if (!sorted) {
        *oom = true;
        ar_errf(err, AR_ERR_NOMEM, "out of memory checking names");
        return NULL;
    }
    memcpy(sorted, names, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_str_ptr);
    const char *dup = NULL;
    for (uint64_t i = 1; i < n && !dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) dup = sorted[i];
    free(sorted);
    return dup;
}

/* ---- header, metadata, tensor infos --------------------------------------------------- */

static ar_status read_header(cursor *c, ar_gguf *g, uint64_t *n_tensors, uint64_t *n_kv) {
    c->what = "the header";
    if (c->size < 4)
        return ar_errf(c->err, AR_ERR_FORMAT, "file is %" PRIu64 " bytes, too short for GGUF",
                       c->size);
    if (memcmp(c->base, gguf_magic, 4) != 0)
        return ar_errf(c->err, AR_ERR_FORMAT,
                       "bad magic %02x %02x %02x %02x at offset 0: not a GGUF file", c->base[0],
                       c->base[1], c->base[2], c->base[3]);
    c->off = 4;
    ar_status st = read_u32(c, &g->version);
    if (st != AR_OK) return st;
    if (g->version == 1)
        return ar_errf(c->err, AR_ERR_UNSUPPORTED,
                       "GGUF version 1 is obsolete; convert the model with a current llama.cpp");
    if (g->version == 0x02000000u || g->version == 0x03000000u)
        return ar_errf(c->err, AR_ERR_UNSUPPORTED, "big-endian GGUF files are not supported");
    if (g->version != 2 && g->version != 3)
        return ar_errf(c->err, AR_ERR_UNSUPPORTED,
                       "GGUF version %" PRIu32 " is not supported (archrouter reads 2 and 3)",
                       g->version);
    st = read_u64(c, n_tensors);
    if (st == AR_OK) st = read_u64(c, n_kv);
    if (st != AR_OK) return st;
    /* A key/value pair takes at least 13 bytes, a tensor info at least 32. */
    if (*n_kv > remaining(c) / 13)
        return ar_errf(c->err, AR_ERR_FORMAT,
                       "header claims %" PRIu64 " metadata entries, more than the %" PRIu64
                       " remaining bytes can hold",
                       *n_kv, remaining(c));
    if (*n_tensors > remaining(c) / 32)
        return ar_errf(c->err, AR_ERR_FORMAT,
                       "header claims %" PRIu64 " tensors, more than the %" PRIu64
                       " remaining bytes can hold",
                       *n_tensors, remaining(c));
    return AR_OK;
}

static ar_status read_metadata(cursor *c, ar_gguf *g, uint64_t n_kv) {
    g->kv = calloc((size_t)(n_kv ? n_kv : 1), sizeof *g->kv);
    if (!g->kv) return ar_errf(c->err, AR_ERR_NOMEM, "out of memory for metadata");
    char what[AR_ERRMSG_MAX / 2];
    for (uint64_t i = 0; i < n_kv; i++) {
        ar_gguf_kv *kv = &g->kv[i];
        snprintf(what, sizeof what, "metadata entry %" PRIu64, i);
        c->what = what;
        ar_status st = read_name(c, AR_GGUF_MAX_KEY, "metadata key", &kv->key);
        if (st != AR_OK) return st;
        g->n_kv = i + 1; /* owned from here on */
        snprintf(what, sizeof what, "key '%.200s'", kv->key);
        st = read_value(c, &kv->value);
        if (st != AR_OK) return st;
    }
    c->what = "the tensor infos";
    char **keys = malloc((size_t)(n_kv ? n_kv : 1) * sizeof *keys);
    if (!keys) return ar_errf(c->err, AR_ERR_NOMEM, "out of memory for metadata");
    for (uint64_t i = 0; i < n_kv; i++) keys[i] = g->kv[i].key;
    bool oom;
    const char *dup = find_duplicate(keys, n_kv, c->err, &oom);
    ar_status st = oom ? AR_ERR_NOMEM : AR_OK;
    if (dup) st = ar_errf(c->err, AR_ERR_FORMAT, "duplicate metadata key '%.200s'", dup);
    free(keys);
    return st;
}

static ar_status read_alignment(cursor *c, ar_gguf *g) {
    g->alignment = AR_GGUF_DEFAULT_ALIGNMENT;
    const ar_gguf_kv *kv = ar_gguf_find(g, "general.alignment");
    if (!kv) return AR_OK;
    if (kv->value.type != AR_GGUF_U32)
        return ar_errf(c->err, AR_ERR_FORMAT, "general.alignment has type %s, expected u32",
                       ar_gguf_type_name(kv->value.type));
    uint32_t a = le32(kv->value.data);
    if (a == 0 || (a & (a - 1)) != 0)
        return ar_errf(c->err, AR_ERR_FORMAT,
                       "general.alignment is %" PRIu32 ", expected a power of two", a);
    g->alignment = a;
    return AR_OK;
}

/* ctx: the caller's buffer for the cursor's "what" while this tensor is read. */
static ar_status read_tensor_info(cursor *c, ar_gguf_tensor *t, char *ctx, size_t ctx_size) {
    t->info_offset = c->off;
    ar_status st = read_name(c, AR_GGUF_MAX_NAME, "tensor name", &t->name);
    if (st != AR_OK) return st;
    snprintf(ctx, ctx_size, "tensor '%s'", t->name);
    c->what = ctx;
    st = read_u32(c, &t->n_dims);
    if (st != AR_OK) return st;
    if (t->n_dims < 1 || t->n_dims > AR_GGUF_MAX_DIMS)
        return ar_errf(c->err, AR_ERR_FORMAT,
                       "tensor '%s': %" PRIu32 " dimensions at offset %" PRIu64
                       " (expected 1 to %d)",
                       t->name, t->n_dims, c->off - 4, AR_GGUF_MAX_DIMS);
    uint64_t n = 1;
    for (int d = 0; d < AR_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne;
        st = read_u64(c, &ne);
        if (st != AR_OK) return st;
        if (ne == 0 || ne > (uint64_t)INT64_MAX)
            return ar_errf(c->err, AR_ERR_FORMAT,
                           "tensor '%s': dimension %" PRIu32 " has invalid size %" PRIu64
                           " at offset %" PRIu64,
                           t->name, d, ne, c->off - 8);
        if (!ar_mul_u64(n, ne, &n) || n > (uint64_t)INT64_MAX)
            return ar_errf(c->err, AR_ERR_FORMAT,
                           "tensor '%s': element count overflows at dimension %" PRIu32, t->name,
                           d);
        t->ne[d] = (int64_t)ne;
    }
    t->n_elements = n;
    st = read_u32(c, &t->type);
    if (st == AR_OK) st = read_u64(c, &t->offset);
    if (st != AR_OK) return st;
    const ar_type_traits *tt = ar_type_traits_get(t->type);
    if (!tt) {
        const char *known = ar_type_known_name(t->type);
        if (known)
            return ar_errf(c->err, AR_ERR_UNSUPPORTED,
                           "tensor '%s' has type %s, which archrouter does not support (it "
                           "reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K)",
                           t->name, known);
        return ar_errf(c->err, AR_ERR_FORMAT, "tensor '%s' has unknown type id %" PRIu32, t->name,
                       t->type);
    }
    uint64_t row;
    if ((uint64_t)t->ne[0] % (uint64_t)tt->blck_size == 0 &&
        !ar_type_row_bytes(tt, (uint64_t)t->ne[0], &row))
        return ar_errf(c->err, AR_ERR_FORMAT, "tensor '%s': byte size overflows", t->name);
    if (!ar_type_row_bytes(tt, (uint64_t)t->ne[0], &row))
        return ar_errf(c->err, AR_ERR_FORMAT,
                       "tensor '%s': row of %" PRId64 " elements is not a whole number of %s "
                       "blocks of %" PRId32,
                       t->name, t->ne[0], tt->name, tt->blck_size);
    if (!ar_mul_u64(row, n / (uint64_t)t->ne[0], &t->n_bytes))
        return ar_errf(c->err, AR_ERR_FORMAT, "tensor '%s': byte size overflows", t->name);
    return AR_OK;
}

static ar_status read_tensor_infos(cursor *c, ar_gguf *g, uint64_t n_tensors) {
    g->tensors = calloc((size_t)(n_tensors ? n_tensors : 1), sizeof *g->tensors);
    if (!g->tensors) return ar_errf(c->err, AR_ERR_NOMEM, "out of memory for tensor infos");
    char ctx[AR_GGUF_MAX_NAME + 32];
    ar_status st = AR_OK;
    for (uint64_t i = 0; i < n_tensors && st == AR_OK; i++) {
        c->what = "a tensor info";
        st = read_tensor_info(c, &g->tensors[i], ctx, sizeof ctx);
        g->n_tensors = i + 1; /* owned (name) from here on */
    }
    c->what = "tensor data";
    return st;
}

/* Place every tensor in the data section: aligned, inside the file. */
static ar_status place_tensors(cursor *c, ar_gguf *g) {
    uint64_t data_off;
    if (!ar_align_u64(c->off, g->alignment, &data_off))
        return ar_errf(c->err, AR_ERR_FORMAT, "data offset overflows");
    g->data_offset = data_off;
    uint64_t data_size = data_off <= c->size ? c->size - data_off : 0;
    if (g->n_tensors > 0 && data_off > c->size)
        return ar_errf(c->err, AR_ERR_FORMAT,
                       "truncated file: tensor data should start at offset %" PRIu64
                       " but the file is %" PRIu64 " bytes",
                       data_off, c->size);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        ar_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment != 0)
            return ar_errf(c->err, AR_ERR_FORMAT,
                           "tensor '%s': data offset %" PRIu64 " is not a multiple of the "
                           "alignment %" PRIu32,
                           t->name, t->offset, g->alignment);
        uint64_t end;
        if (!ar_add_u64(t->offset, t->n_bytes, &end) || end > data_size)
            return ar_errf(c->err, AR_ERR_FORMAT,
                           "tensor '%s': data [%" PRIu64 ", +%" PRIu64
                           ") lies past the end of the file (data section is %" PRIu64
                           " bytes at offset %" PRIu64 ")",
                           t->name, t->offset, t->n_bytes, data_size, data_off);
        /* Elements must sit at their natural alignment in memory (the mapping is
         * page-aligned, so file offsets stand for addresses). */
        uint64_t natural = t->type == AR_TYPE_F32 ? 4 : 2;
        if ((data_off + t->offset) % natural != 0)
            return ar_errf(c->err, AR_ERR_FORMAT,
                           "tensor '%s': data at file offset %" PRIu64 " is misaligned for "
                           "its type (needs a multiple of %" PRIu64 ")",
                           t->name, data_off + t->offset, natural);
        t->data = c->base + data_off + t->offset;
    }
    return AR_OK;
}

ar_status ar_gguf_parse(ar_gguf *g, const uint8_t *data, size_t size, ar_err *err) {
    memset(g, 0, sizeof *g);
    cursor c = {.base = data, .size = size, .err = err, .what = "the header"};
    uint64_t n_tensors = 0, n_kv = 0;
    ar_status st = read_header(&c, g, &n_tensors, &n_kv);
    if (st == AR_OK) st = read_metadata(&c, g, n_kv);
    if (st == AR_OK) st = read_alignment(&c, g);
    if (st == AR_OK) st = read_tensor_infos(&c, g, n_tensors);
    if (st == AR_OK) st = place_tensors(&c, g);
    if (st != AR_OK) {
        ar_gguf_free(g);
        return st;
    }
    g->file = data;
    g->file_size = size;
    return AR_OK;
}

void ar_gguf_free(ar_gguf *g) {
    for (uint64_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].value.str_index);
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    memset(g, 0, sizeof *g);
}

/* ---- lookups -------------------------------------------------------------------------- */

const ar_gguf_kv *ar_gguf_find(const ar_gguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

static ar_status wrong_type(ar_err *err, const char *key, uint32_t have, const char *want) {
    return ar_errf(err, AR_ERR_FORMAT, "metadata key '%s' has type %s, expected %s", key,
                   ar_gguf_type_name(have), want);
}

/* Scalar integer at p of type t into *out; false for non-integers or u64 > INT64_MAX. */
static bool scalar_int(const uint8_t *p, uint32_t t, int64_t *out) {
    switch (t) {
    case AR_GGUF_U8: *out = p[0]; return true;
    case AR_GGUF_I8: *out = (int8_t)p[0]; return true;
    case AR_GGUF_U16: *out = (uint16_t)(p[0] | p[1] << 8); return true;
    case AR_GGUF_I16: *out = (int16_t)(uint16_t)(p[0] | p[1] << 8); return true;
    case AR_GGUF_U32: *out = le32(p); return true;
    case AR_GGUF_I32: *out = (int32_t)le32(p); return true;
    case AR_GGUF_U64: {
        uint64_t v = le64(p);
        if (v > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)v;
        return true;
    }
    case AR_GGUF_I64: *out = (int64_t)le64(p); return true;
    }
    return false;
}

static double scalar_float(const uint8_t *p, uint32_t t) {
    if (t == AR_GGUF_F32) {
        uint32_t u = le32(p);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    uint64_t u = le64(p);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

ar_status ar_gguf_get_int(const ar_gguf *g, const char *key, int64_t *out, ar_err *err) {
    const ar_gguf_kv *kv = ar_gguf_find(g, key);
    if (!kv) return AR_ERR_NOT_FOUND;
    if (kv->value.type == AR_GGUF_ARRAY || kv->value.type == AR_GGUF_STRING ||
        kv->value.type == AR_GGUF_BOOL || kv->value.type == AR_GGUF_F32 ||
        kv->value.type == AR_GGUF_F64)
        return wrong_type(err, key, kv->value.type, "an integer");
    if (!scalar_int(kv->value.data, kv->value.type, out))
        return ar_errf(err, AR_ERR_FORMAT, "metadata key '%s': value out of range", key);
    return AR_OK;
}

ar_status ar_gguf_get_float(const ar_gguf *g, const char *key, double *out, ar_err *err) {
    const ar_gguf_kv *kv = ar_gguf_find(g, key);
    if (!kv) return AR_ERR_NOT_FOUND;
    if (kv->value.type != AR_GGUF_F32 && kv->value.type != AR_GGUF_F64)
        return wrong_type(err, key, kv->value.type, "f32 or f64");
    *out = scalar_float(kv->value.data, kv->value.type);
    return AR_OK;
}

ar_status ar_gguf_get_bool(const ar_gguf *g, const char *key, bool *out, ar_err *err) {
    const ar_gguf_kv *kv = ar_gguf_find(g, key);
    if (!kv) return AR_ERR_NOT_FOUND;
    if (kv->value.type != AR_GGUF_BOOL) return wrong_type(err, key, kv->value.type, "bool");
    *out = kv->value.data[0] != 0;
    return AR_OK;
}

ar_status ar_gguf_get_str(const ar_gguf *g, const char *key, const char **s, uint64_t *len,
                          ar_err *err) {
    const ar_gguf_kv *kv = ar_gguf_find(g, key);
    if (!kv) return AR_ERR_NOT_FOUND;
    if (kv->value.type != AR_GGUF_STRING) return wrong_type(err, key, kv->value.type, "string");
    *s = (const char *)kv->value.data;
    *len = kv->value.count;
    return AR_OK;
}

ar_status ar_gguf_get_array(const ar_gguf *g, const char *key, uint32_t elem_type,
                            const ar_gguf_value **out, ar_err *err) {
    const ar_gguf_kv *kv = ar_gguf_find(g, key);
    if (!kv) return AR_ERR_NOT_FOUND;
    if (kv->value.type != AR_GGUF_ARRAY) return wrong_type(err, key, kv->value.type, "array");
    if (elem_type != AR_GGUF_NTYPES && kv->value.elem_type != elem_type)
        return ar_errf(err, AR_ERR_FORMAT,
                       "metadata key '%s' is an array of %s, expected an array of %s", key,
                       ar_gguf_type_name(kv->value.elem_type), ar_gguf_type_name(elem_type));
    *out = &kv->value;
    return AR_OK;
}

void ar_gguf_array_str(const ar_gguf_value *arr, uint64_t i, const char **s, uint64_t *len) {
    const uint8_t *p = arr->data + arr->str_index[i];
    *len = le64(p);
    *s = (const char *)p + 8;
}

/* ---- rendering ------------------------------------------------------------------------ */

typedef struct textbuf {
    char *buf;
    size_t cap;
    int64_t len; /* full length, may exceed cap */
} textbuf;

static void put(textbuf *t, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++, t->len++)
        if (t->cap && (size_t)t->len < t->cap - 1) t->buf[t->len] = s[i];
}

static void putf(textbuf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(textbuf *t, const char *fmt, ...) {
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) put(t, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A string shown with control characters escaped, cut after `max` bytes. */
static void put_string(textbuf *t, const uint8_t *s, uint64_t len, uint64_t max) {
    put(t, "\"", 1);
    for (uint64_t i = 0; i < len && i < max; i++) {
        if (s[i] == '\n')
            put(t, "\\n", 2);
        else if (s[i] == '"' || s[i] == '\\')
            putf(t, "\\%c", s[i]);
        else if (s[i] < 0x20 || s[i] == 0x7f)
            putf(t, "\\x%02x", s[i]);
        else
            put(t, (const char *)&s[i], 1);
    }
    put(t, "\"", 1);
    if (len > max) putf(t, "...(%" PRIu64 " bytes)", len);
}

static void put_scalar(textbuf *t, const uint8_t *p, uint32_t type) {
    int64_t iv;
    if (type == AR_GGUF_BOOL)
        put(t, p[0] ? "true" : "false", p[0] ? 4 : 5);
    else if (type == AR_GGUF_F32 || type == AR_GGUF_F64)
        putf(t, "%.9g", scalar_float(p, type));
    else if (type == AR_GGUF_U64 && !scalar_int(p, type, &iv))
        putf(t, "%" PRIu64, le64(p));
    else if (scalar_int(p, type, &iv))
        putf(t, "%" PRId64, iv);
}

int64_t ar_gguf_value_text(const ar_gguf_value *v, char *buf, size_t buf_size) {
    textbuf t = {.buf = buf, .cap = buf_size};
    if (v->type == AR_GGUF_STRING) {
        put_string(&t, v->data, v->count, 160);
    } else if (v->type == AR_GGUF_ARRAY) {
        putf(&t, "[%s x %" PRIu64 "]", ar_gguf_type_name(v->elem_type), v->count);
        uint64_t shown = v->count < 8 ? v->count : 8;
        if (v->elem_type == AR_GGUF_ARRAY) shown = 0;
        for (uint64_t i = 0; i < shown; i++) {
            put(&t, " ", 1);
            if (v->elem_type == AR_GGUF_STRING) {
                const char *s;
                uint64_t len;
                ar_gguf_array_str(v, i, &s, &len);
                put_string(&t, (const uint8_t *)s, len, 40);
            } else {
                put_scalar(&t, v->data + i * scalar_size[v->elem_type], v->elem_type);
            }
        }
        if (shown < v->count && shown > 0) put(&t, " ...", 4);
    } else {
        put_scalar(&t, v->data, v->type);
    }
    if (buf_size) buf[(size_t)t.len < buf_size ? (size_t)t.len : buf_size - 1] = 0;
    return t.len;
}
