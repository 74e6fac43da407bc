/*
 * model_writer.h - test-only builders of model files in memory: raw GGUF bytes, valid tiny
 * Qwen2 models as GGUF or as safetensors + config.json, and sharded checkpoint directories.
 *
 * Three levels:
 *
 * 1. A growable byte buffer (mw_buf) with little-endian writers and a GGUF vocabulary on top
 *    (header, key + value type, scalar values, array headers, tensor infos), so a test can
 *    write exactly the bytes it wants, well-formed or not, v2 or v3 (or any version number).
 *
 * 2. mw_qwen2_gguf(): a complete, valid Qwen2 GGUF described by an mw_qwen2 spec (sizes,
 *    tensor types, tied or not, vocabulary, ...). It reports where the interesting fields
 *    landed (mw_gguf_layout: the counts in the header, every key/value and every tensor
 *    info field, the start of the data), so a malformed case is "a valid image with these
 *    bytes patched". The spec can also leave out a key or a tensor, write a tensor twice,
 *    or give one tensor another shape or type, and a hook appends extra key/values.
 *
 * 3. mw_qwen2_st_parts() / mw_qwen2_st() / mw_qwen2_st_dir(): the same model as a Hugging
 *    Face checkpoint (names model.layers.N...., shapes (out, in), dtypes F32/F16/BF16). The
 *    header comes back as a jansson object the test may edit (lie about data_offsets, ...)
 *    before mw_st_assemble() turns it into file bytes; the directory writer makes
 *    config.json plus one model.safetensors or N shards and model.safetensors.index.json
 *    (with a hook to edit the weight_map) under ar_test_temp_dir().
 *
 * Tensor values are deterministic (mw_value(): multiples of 1/16 in [-0.5, 0.5], exact in
 * F32, F16 and BF16), so tests can check dequantization exactly. Quantized tensors are
 * pseudo-random bytes with every float16 scale set to 1/16, hence finite.
 *
 * Builders never fail: on out-of-memory they abort the test program.
 */
#ifndef AR_TEST_MODEL_WRITER_H
#define AR_TEST_MODEL_WRITER_H

#include "archrouter.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- bytes ---------------------------------------------------------------------------- */

typedef struct mw_buf {
    uint8_t *data;
    size_t len, cap;
} mw_buf;

void mw_free(mw_buf *b);
void mw_bytes(mw_buf *b, const void *p, size_t n);
void mw_zeros(mw_buf *b, size_t n);
void mw_u8(mw_buf *b, uint8_t v);
void mw_u16(mw_buf *b, uint16_t v);
void mw_u32(mw_buf *b, uint32_t v);
void mw_u64(mw_buf *b, uint64_t v);
void mw_f32(mw_buf *b, float v);
void mw_f64(mw_buf *b, double v);
/* Zero bytes up to the next multiple of `align`. */
void mw_align(mw_buf *b, size_t align);

/* Overwrite little-endian integers at byte offset `at` of any buffer. */
void mw_patch_u32(uint8_t *data, size_t at, uint32_t v);
void mw_patch_u64(uint8_t *data, size_t at, uint64_t v);

/* A malloc'd copy of bytes (tests pass exact-size copies so ASan sees over-reads). */
uint8_t *mw_dup(const void *p, size_t n);

/* ---- GGUF vocabulary ------------------------------------------------------------------ */

/* Value types (as gguf.h's AR_GGUF_*). */
enum {
    MW_U8 = 0,
    MW_I8 = 1,
    MW_U16 = 2,
    MW_I16 = 3,
    MW_U32 = 4,
    MW_I32 = 5,
    MW_F32 = 6,
    MW_BOOL = 7,
    MW_STRING = 8,
    MW_ARRAY = 9,
    MW_U64 = 10,
    MW_I64 = 11,
    MW_F64 = 12
};

/* "GGUF" | version | n_tensors | n_kv (24 bytes). */
void mw_gguf_header(mw_buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv);
/* A GGUF string: u64 length | bytes. */
void mw_gguf_str(mw_buf *b, const char *s);
void mw_gguf_strn(mw_buf *b, const void *s, uint64_t len);
/* The start of a key/value: key string | u32 value type. The value follows. */
void mw_gguf_key(mw_buf *b, const char *key, uint32_t type);
/* One scalar of an integer type (u8..i64, bool): its low bytes, little-endian. */
void mw_gguf_int(mw_buf *b, uint32_t type, int64_t v);
/* Whole key/values. */
void mw_gguf_kv_int(mw_buf *b, const char *key, uint32_t type, int64_t v);
void mw_gguf_kv_u64(mw_buf *b, const char *key, uint64_t v);
void mw_gguf_kv_float(mw_buf *b, const char *key, uint32_t type, double v); /* F32 / F64 */
void mw_gguf_kv_bool(mw_buf *b, const char *key, bool v);
void mw_gguf_kv_str(mw_buf *b, const char *key, const char *s);
void mw_gguf_kv_str_array(mw_buf *b, const char *key, const char *const *s, size_t n);
/* An array header (element type | count); the elements follow (after a key, or nested). */
void mw_gguf_array(mw_buf *b, uint32_t elem_type, uint64_t count);
/* A tensor info: name | n_dims | ne[n_dims] | type | offset. */
void mw_gguf_tensor_info(mw_buf *b, const char *name, uint32_t n_dims, const int64_t *ne,
                         uint32_t type, uint64_t offset);

/* ---- tensor contents ---------------------------------------------------------------- */

/* The value of element i of the tensor called `name` (exact in F32, F16 and BF16). */
float mw_value(const char *name, uint64_t i);

/* Bytes of n elements of ar_type `type` (0 when n is not a whole number of blocks). */
uint64_t mw_type_bytes(uint32_t type, uint64_t n);

/* Fill `n` elements of `type` for tensor `name` into dst (mw_type_bytes(type, n) bytes). */
void mw_fill(uint32_t type, const char *name, uint64_t n, uint8_t *dst);

/* ---- a tiny Qwen2 model --------------------------------------------------------------- */

#define MW_MAX_TENSORS 256
#define MW_MAX_KV      64
#define MW_NAME_MAX    96

typedef struct mw_qwen2 {
    /* Both formats. */
    int32_t n_layers, n_embd, n_heads, n_kv_heads, n_ff, n_vocab;
    int32_t head_dim;        /* 0: n_embd / n_heads and no key_length / head_dim field */
    bool tied;               /* no output / lm_head tensor */
    uint32_t matrix_type;    /* ar_type of the matrices and embeddings */
    uint32_t vector_type;    /* ar_type of norms and biases */
    const char *arch;        /* general.architecture / model_type ("qwen2") */
    const char *omit_tensor; /* leave this tensor out (name in the format's naming) */
    const char *dup_tensor;  /* write this tensor twice (safetensors: the copy goes in the
                                last shard of mw_qwen2_st_dir; a single JSON header cannot
                                hold a name twice) */
    const char *mod_tensor;  /* give this tensor ... */
    int32_t mod_n_dims;      /* ... this rank and mod_ne (0: keep the shape) ... */
    int64_t mod_ne[4];       /*     (GGUF order, innermost first, in both formats) */
    int32_t mod_type;        /* ... and this type (-1: keep) */
    bool omit_kv_heads;      /* no head_count_kv key / num_key_value_heads field */

    /* GGUF only. */
    uint32_t version;               /* 2 or 3 */
    uint32_t alignment;             /* 0: no general.alignment key (32) */
    bool no_tensors;                /* a vocabulary-only file */
    const char *name;               /* general.name; NULL: none */
    int64_t file_type;              /* general.file_type; -1: none */
    int32_t n_tokens;               /* vocabulary "<t0>".."<tN-1>"; 0: none */
    int32_t bos_id, eos_id, pad_id; /* -1: key absent */
    const char *chat_template;      /* NULL: none */
    const char *omit_key;           /* leave this key out */
    /* Extra key/values written after the others (n_extra_kv of them). */
    void (*extra_kv)(mw_buf *b, void *user);
    int32_t n_extra_kv;
    void *user;

    /* safetensors only. */
    const char *config_omit;  /* a config.json field to leave out */
    const char *config_merge; /* JSON object text whose fields override config.json's */
} mw_qwen2;

/* Defaults: 2 layers, n_embd 32, 4 heads, 2 KV heads (head_dim 8), n_ff 64, vocab 48,
 * untied, F32 matrices and vectors, GGUF v3 without general.alignment, no vocabulary. */
mw_qwen2 mw_qwen2_default(void);

/* The element count a loader should report as n_params (tied embeddings once). */
uint64_t mw_qwen2_n_params(const mw_qwen2 *spec);

/* Where things are in a built GGUF image (byte offsets from the start of the file). */
typedef struct mw_gguf_kv_pos {
    char key[MW_NAME_MAX];
    size_t at;       /* the key's length field */
    size_t type_at;  /* the u32 value type */
    size_t value_at; /* the value */
} mw_gguf_kv_pos;

typedef struct mw_gguf_tensor_pos {
    char name[MW_NAME_MAX];
    size_t info_at;   /* the name's length field */
    size_t n_dims_at; /* u32 n_dims */
    size_t ne_at;     /* u64 ne[0] (ne[d] at ne_at + 8 * d) */
    size_t type_at;   /* u32 type */
    size_t offset_at; /* u64 offset */
    uint32_t n_dims;
    int64_t ne[4];
    uint32_t type;
    uint64_t offset; /* relative to the data section */
    uint64_t n_bytes;
} mw_gguf_tensor_pos;

typedef struct mw_gguf_layout {
    size_t version_at, n_tensors_at, n_kv_at;
    int n_kv;
    mw_gguf_kv_pos kv[MW_MAX_KV];
    int n_tensors;
    mw_gguf_tensor_pos tensors[MW_MAX_TENSORS];
    size_t infos_end;  /* the byte after the last tensor info */
    size_t data_start; /* the data section (aligned) */
} mw_gguf_layout;

/* Build the GGUF image into *out (which is reset first). `layout` may be NULL. The file
 * ends with the last tensor's data (no trailing padding). */
void mw_qwen2_gguf(const mw_qwen2 *spec, mw_buf *out, mw_gguf_layout *layout);

/* Entries of a layout by key / tensor name (NULL when absent). */
const mw_gguf_kv_pos *mw_layout_kv(const mw_gguf_layout *l, const char *key);
const mw_gguf_tensor_pos *mw_layout_tensor(const mw_gguf_layout *l, const char *name);

/* ---- safetensors ---------------------------------------------------------------------- */

/* The header (a new JSON object: "__metadata__" then one entry per tensor, in writing
 * order) and the data section of a single-file checkpoint (spec->dup_tensor not allowed). */
void mw_qwen2_st_parts(const mw_qwen2 *spec, json_t **header, mw_buf *data);

/* A safetensors file: u64 length | header text padded with spaces until the data starts at
 * a multiple of `align` (1: no padding) | data. *out is reset first. */
void mw_st_assemble(const char *header, size_t header_len, const void *data, size_t data_len,
                    size_t align, mw_buf *out);

/* mw_st_assemble() of a JSON header (dumped compactly, in order), aligned to 8. */
void mw_st_from_json(const json_t *header, const mw_buf *data, mw_buf *out);

/* config.json text for the spec (malloc'd). */
char *mw_qwen2_config(const mw_qwen2 *spec);

/* The whole single-file checkpoint: file bytes and config.json text (malloc'd). */
void mw_qwen2_st(const mw_qwen2 *spec, mw_buf *file, char **config_json);

/* A checkpoint directory <temp>/<name>: config.json and either model.safetensors
 * (n_shards 0) or n_shards files "model-0000K-of-0000N.safetensors" (consecutive runs of
 * tensors in writing order; a dup_tensor copy goes in the last shard and is not in the
 * index) with model.safetensors.index.json, whose weight_map
 * `edit_index` (may be NULL) may change before it is written. Returns the directory
 * (malloc'd). */
char *mw_qwen2_st_dir(const mw_qwen2 *spec, const char *name, int n_shards,
                      void (*edit_index)(json_t *weight_map, void *user), void *user);

/* The name of shard k (0-based) of n: "model-00001-of-00003.safetensors" (static buffer). */
const char *mw_shard_name(int k, int n);

/* ---- files ------------------------------------------------------------------------------ */

/* A fresh directory <temp>/<name> (removed and recreated when it exists); malloc'd path. */
char *mw_temp_subdir(const char *name);

/* Write bytes / a NUL-terminated text to dir/name. Returns the path (malloc'd). */
char *mw_write_file(const char *dir, const char *name, const void *data, size_t len);
char *mw_write_text(const char *dir, const char *name, const char *text);

#endif
