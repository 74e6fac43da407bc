/*
 * gen_seeds.c - writes the seed corpora of the fuzz targets.
 *
 *     usage: gen_seeds GGUF_DIR SAFETENSORS_DIR [TOKENIZE_DIR TOKENIZER_JSON_DIR]
 *
 * GGUF_DIR gets tiny valid qwen2 GGUF models (versions 2 and 3, default and custom
 * alignment, F32 / F16 / BF16 / every block-32 quant / every k-quant matrix, tied and
 * untied output, a vocabulary with special ids and merges, scalars of every type, arrays
 * of strings, nested arrays), a vocabulary-only file, and a GGUF container that parses but
 * is not a model (another architecture, one tensor of each supported type, 3-D and 4-D
 * shapes), which reaches the dequantizers through ar_gguf_parse() alone.
 *
 * SAFETENSORS_DIR gets fuzz_safetensors inputs: a selector byte (the index of a config in
 * fuzz_st_configs) followed by a checkpoint matching that config, in F32, F16, BF16 and
 * mixed dtypes, one with extra tensors of unusual shapes (scalar, empty, 3-D, 4-D).
 *
 * The writers are minimal and written here from the format descriptions (gguf.h,
 * safetensors.h, quant.h), independent of the readers and of any test helper. Every seed
 * is opened with the library before it is written, so a seed that stops loading (after a
 * change in the writer or the reader) fails here instead of silently costing coverage.
 * TOKENIZE_DIR and TOKENIZER_JSON_DIR, when given, get texts for fuzz_tokenize (a flags
 * byte, then the text) and the synthetic tokenizer.json of fuzz_tokenizer_json.
 *
 * This is an ordinary program: it does not need libFuzzer.
 */
#include "fuzz_model.h"
#include "model/gguf.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "tokenizer/tokenizer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- bytes ------------------------------------------------------------------------ */

typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
} bytes;

static _Noreturn void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gen_seeds: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void put(bytes *b, const void *src, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) die("out of memory");
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_zeros(bytes *b, size_t n) {
    static const uint8_t zero[64];
    for (; n > sizeof zero; n -= sizeof zero) put(b, zero, sizeof zero);
    put(b, zero, n);
}

static void put_u8(bytes *b, uint8_t v) {
    put(b, &v, 1);
}

static void put_u32(bytes *b, uint32_t v) {
    uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, p, 4);
}

static void put_u64(bytes *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_f32(bytes *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(b, u);
}

/* A GGUF string: u64 length, then the bytes. */
static void put_gstr(bytes *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

static void printf_to(bytes *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printf_to(bytes *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) die("internal: formatted text too long");
    put(b, tmp, (size_t)n);
}

static void write_file(const char *dir, const char *name, const bytes *b) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) die("%s: %s", path, strerror(errno));
    if (fwrite(b->p, 1, b->len, f) != b->len || fclose(f) != 0)
        die("%s: write failed: %s", path, strerror(errno));
    printf("gen_seeds: wrote %s (%zu bytes)\n", path, b->len);
}

/* ---- deterministic values ----------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static float frand(void) { /* [-0.5, 0.5) */
    return (float)(rng_next() >> 40) / (float)(1u << 24) - 0.5f;
}

/* float32 -> binary16 for the small finite values used here (truncating; tiny -> 0). */
static uint16_t to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    int32_t e = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    if (e <= 0) return sign;
    if (e >= 31) return (uint16_t)(sign | 0x7bff);
    return (uint16_t)(sign | (uint32_t)e << 10 | ((x >> 13) & 0x3ff));
}

static uint16_t to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    return (uint16_t)(x >> 16);
}

/* ---- tensor types ------------------------------------------------------------------- */

/* GGUF type ids and block geometry (quant.h), and where each block keeps f16 scales. */
typedef struct type_desc {
    uint32_t id;
    const char *name;
    int blck, size;
    int n_f16;
    int f16_at[2];
} type_desc;

/* clang-format off */
enum { F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q2_K = 10,
       Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, BF16 = 30 };
/* clang-format on */

static const type_desc type_descs[] = {
    {F32, "F32", 1, 4, 0, {0}},           {F16, "F16", 1, 2, 0, {0}},
    {BF16, "BF16", 1, 2, 0, {0}},         {Q4_0, "Q4_0", 32, 18, 1, {0}},
    {Q4_1, "Q4_1", 32, 20, 2, {0, 2}},    {Q5_0, "Q5_0", 32, 22, 1, {0}},
    {Q5_1, "Q5_1", 32, 24, 2, {0, 2}},    {Q8_0, "Q8_0", 32, 34, 1, {0}},
    {Q2_K, "Q2_K", 256, 84, 2, {80, 82}}, {Q3_K, "Q3_K", 256, 110, 1, {108}},
    {Q4_K, "Q4_K", 256, 144, 2, {0, 2}},  {Q5_K, "Q5_K", 256, 176, 2, {0, 2}},
    {Q6_K, "Q6_K", 256, 210, 1, {208}},
};

static const type_desc *type_desc_of(uint32_t id) {
    for (size_t i = 0; i < sizeof type_descs / sizeof type_descs[0]; i++)
        if (type_descs[i].id == id) return &type_descs[i];
    die("internal: type %u", id);
}

/* n elements of type `id`: small random values; quant blocks get random bits and sane
 * f16 scales (0.01 / 0.005), as a quantizer would write. */
static void put_tensor_data(bytes *b, uint32_t id, uint64_t n) {
    const type_desc *td = type_desc_of(id);
    if (n % (uint64_t)td->blck != 0)
        die("internal: %s row of %llu", td->name, (unsigned long long)n);
    for (uint64_t i = 0; i < n / (uint64_t)td->blck; i++) {
        uint8_t blk[256];
        if (id == F32) {
            float f = frand();
            memcpy(blk, &f, 4);
        } else if (id == F16 || id == BF16) {
            uint16_t h = id == F16 ? to_f16(frand()) : to_bf16(frand());
            memcpy(blk, &h, 2);
        } else {
            for (int j = 0; j < td->size; j++) blk[j] = (uint8_t)rng_next();
            for (int k = 0; k < td->n_f16; k++) {
                uint16_t h = to_f16(k == 0 ? 0.01f : 0.005f);
                memcpy(blk + td->f16_at[k], &h, 2);
            }
        }
        put(b, blk, (size_t)td->size);
    }
}

/* ---- GGUF writer -------------------------------------------------------------------- */

typedef struct gguf_writer {
    uint32_t version, alignment;
    bytes kv, infos, data;
    uint64_t n_kv, n_tensors;
} gguf_writer;

static void kv_head(gguf_writer *w, const char *key, uint32_t type) {
    put_gstr(&w->kv, key);
    put_u32(&w->kv, type);
    w->n_kv++;
}

static void kv_u32(gguf_writer *w, const char *key, uint32_t v) {
    kv_head(w, key, AR_GGUF_U32);
    put_u32(&w->kv, v);
}

static void kv_f32(gguf_writer *w, const char *key, float v) {
    kv_head(w, key, AR_GGUF_F32);
    put_f32(&w->kv, v);
}

static void kv_str(gguf_writer *w, const char *key, const char *s) {
    kv_head(w, key, AR_GGUF_STRING);
    put_gstr(&w->kv, s);
}

/* A scalar of any type from its little-endian bytes. */
static void kv_scalar(gguf_writer *w, const char *key, uint32_t type, uint64_t bits, int size) {
    kv_head(w, key, type);
    for (int i = 0; i < size; i++) put_u8(&w->kv, (uint8_t)(bits >> (8 * i)));
}

static void kv_arr_str(gguf_writer *w, const char *key, int n, const char *const *s) {
    kv_head(w, key, AR_GGUF_ARRAY);
    put_u32(&w->kv, AR_GGUF_STRING);
    put_u64(&w->kv, (uint64_t)n);
    for (int i = 0; i < n; i++) put_gstr(&w->kv, s[i]);
}

/* An array of scalars, elements given as little-endian bytes. */
static void kv_arr(gguf_writer *w, const char *key, uint32_t elem, uint64_t n, const void *v,
                   size_t elem_size) {
    kv_head(w, key, AR_GGUF_ARRAY);
    put_u32(&w->kv, elem);
    put_u64(&w->kv, n);
    put(&w->kv, v, (size_t)n * elem_size);
}

static void add_tensor(gguf_writer *w, const char *name, uint32_t type, int n_dims,
                       const int64_t *ne) {
    put_zeros(&w->data, (w->alignment - w->data.len % w->alignment) % w->alignment);
    put_gstr(&w->infos, name);
    put_u32(&w->infos, (uint32_t)n_dims);
    uint64_t n = 1;
    for (int d = 0; d < n_dims; d++) {
        put_u64(&w->infos, (uint64_t)ne[d]);
        n *= (uint64_t)ne[d];
    }
    put_u32(&w->infos, type);
    put_u64(&w->infos, w->data.len);
    w->n_tensors++;
    put_tensor_data(&w->data, type, n);
}

/* header | kv | tensor infos | padding to the alignment | data */
static bytes gguf_finish(gguf_writer *w) {
    bytes out = {0};
    put(&out, "GGUF", 4);
    put_u32(&out, w->version);
    put_u64(&out, w->n_tensors);
    put_u64(&out, w->n_kv);
    put(&out, w->kv.p, w->kv.len);
    put(&out, w->infos.p, w->infos.len);
    if (w->n_tensors) {
        put_zeros(&out, (w->alignment - out.len % w->alignment) % w->alignment);
        put(&out, w->data.p, w->data.len);
    }
    free(w->kv.p);
    free(w->infos.p);
    free(w->data.p);
    return out;
}

/* ---- GGUF seeds --------------------------------------------------------------------- */

typedef struct gguf_model {
    const char *file;
    const char *arch; /* "qwen2", or another to make a non-model */
    uint32_t version;
    uint32_t alignment; /* 0: default (no general.alignment key) */
    int n_layers, n_embd, n_heads, n_kv_heads, n_ff, n_vocab;
    bool untied;
    uint32_t vec_type, embd_type;
    const uint32_t *mats; /* types cycled over the attention matrices and output */
    int n_mats;
    const uint32_t *ffns; /* types cycled over ffn_gate and ffn_up */
    int n_ffns;
    const uint32_t *downs; /* ffn_down (rows of n_ff), per layer, cycled */
    int n_downs;
    int n_tokens;      /* vocabulary entries written (0: no tokenizer) */
    bool bytelevel;    /* a complete byte-level BPE tokenizer instead */
    bool vocab_only;   /* no tensors */
    bool extras;       /* scalars of every type, empty and nested arrays */
    bool all_types;    /* extra tensors of every supported type, 3-D and 4-D */
    int64_t file_type; /* general.file_type, or -1 */
} gguf_model;

/* clang-format off */
static const char *const vocab[] = {
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "a", "b", "c", "\xc4\xa0", "\xc4\xa0the",
    "\n", "\xc4\x8a\xc4\x8a", "\xe4\xbd\xa0\xe5\xa5\xbd", "\xc3\xa9", "\xf0\x9f\x99\x82", "12",
    "!", "<unused>",
};
/* clang-format on */

static void write_tokenizer(gguf_writer *w, int n) {
    int32_t types[16];
    for (int i = 0; i < n; i++) types[i] = i < 3 ? 3 : 1; /* control, normal */
    static const char *const merges[] = {"\xc4\xa0 t", "t h", "\xc4\xa0t he"};
    kv_str(w, "tokenizer.ggml.model", "gpt2");
    kv_str(w, "tokenizer.ggml.pre", "qwen2");
    kv_arr_str(w, "tokenizer.ggml.tokens", n, vocab);
    kv_arr(w, "tokenizer.ggml.token_type", AR_GGUF_I32, (uint64_t)n, types, 4);
    kv_arr_str(w, "tokenizer.ggml.merges", 3, merges);
    kv_u32(w, "tokenizer.ggml.bos_token_id", 0);
    kv_u32(w, "tokenizer.ggml.eos_token_id", 2);
    kv_u32(w, "tokenizer.ggml.padding_token_id", 0);
    kv_scalar(w, "tokenizer.ggml.add_bos_token", AR_GGUF_BOOL, 0, 1);
    kv_str(w, "tokenizer.chat_template",
           "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
           "<|im_end|>\n{% endfor %}");
}

/* GPT-2's byte alphabet: the character (a code point below U+0144) byte b is written as. */
static int byte_char(int b) {
    int n = 0;
    for (int x = 0; x < 256; x++) {
        bool printable = (x >= 0x21 && x <= 0x7e) || (x >= 0xa1 && x <= 0xac) || x >= 0xae;
        if (x == b) return printable ? b : 256 + n;
        if (!printable) n++;
    }
    return -1;
}

/* A complete byte-level BPE tokenizer as Qwen2's, in miniature: the 256 byte tokens in
 * GPT-2's alphabet, a few merges with the tokens they make, three added control tokens. */
static void write_bytelevel_tokenizer(gguf_writer *w) {
    static const char *const merges[] = {
        "\xc4\xa0 t", "h e", "\xc4\xa0t he", "l l", "e ll",           "H ell", "Hell o",
        "\xc4\xa0 w", "o r", "\xc4\xa0w or", "l d", "\xc4\xa0wor ld", "' s",   "1 2",
    };
    static const char *const added[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    enum { N_MERGES = sizeof merges / sizeof merges[0], N = 256 + N_MERGES + 3 };
    static char pool[N][32];
    const char *tokens[N];
    int32_t types[N];
    for (int i = 0; i < N; i++) {
        tokens[i] = pool[i];
        types[i] = i < 256 + N_MERGES ? 1 : 3; /* normal, control */
    }
    for (int b = 0; b < 256; b++) {
        int c = byte_char(b);
        if (c < 0x80) {
            pool[b][0] = (char)c;
        } else { /* two UTF-8 bytes */
            pool[b][0] = (char)(0xc0 | c >> 6);
            pool[b][1] = (char)(0x80 | (c & 0x3f));
        }
    }
    for (int i = 0; i < N_MERGES; i++) { /* "a b" makes "ab" */
        const char *sp = strchr(merges[i], ' ');
        snprintf(pool[256 + i], sizeof pool[0], "%.*s%s", (int)(sp - merges[i]), merges[i], sp + 1);
    }
    for (int i = 0; i < 3; i++) snprintf(pool[256 + N_MERGES + i], sizeof pool[0], "%s", added[i]);
    kv_str(w, "tokenizer.ggml.model", "gpt2");
    kv_str(w, "tokenizer.ggml.pre", "qwen2");
    kv_arr_str(w, "tokenizer.ggml.tokens", N, tokens);
    kv_arr(w, "tokenizer.ggml.token_type", AR_GGUF_I32, N, types, 4);
    kv_arr_str(w, "tokenizer.ggml.merges", N_MERGES, merges);
    kv_u32(w, "tokenizer.ggml.bos_token_id", 256 + N_MERGES);
    kv_u32(w, "tokenizer.ggml.eos_token_id", 256 + N_MERGES + 2);
    kv_u32(w, "tokenizer.ggml.padding_token_id", 256 + N_MERGES);
    kv_str(w, "tokenizer.chat_template", "{{ messages[0]['content'] }}");
}

/* Values of every type and shape the metadata may hold. */
static void write_extras(gguf_writer *w) {
    kv_scalar(w, "test.u8", AR_GGUF_U8, 200, 1);
    kv_scalar(w, "test.i8", AR_GGUF_I8, (uint8_t)-5, 1);
    kv_scalar(w, "test.u16", AR_GGUF_U16, 65535, 2);
    kv_scalar(w, "test.i16", AR_GGUF_I16, (uint16_t)-300, 2);
    kv_scalar(w, "test.i32", AR_GGUF_I32, (uint32_t)-70000, 4);
    kv_scalar(w, "test.u64", AR_GGUF_U64, 0x8000000000000001ull, 8);
    kv_scalar(w, "test.i64", AR_GGUF_I64, (uint64_t)-5000000000ll, 8);
    double d = 2.718281828459045;
    uint64_t db;
    memcpy(&db, &d, 8);
    kv_scalar(w, "test.f64", AR_GGUF_F64, db, 8);
    kv_scalar(w, "test.true", AR_GGUF_BOOL, 1, 1);
    kv_str(w, "test.empty", "");
    char long_str[241];
    for (int i = 0; i < 240; i++) long_str[i] = "ab\"\\\n\x01 \x7f"[i % 8];
    long_str[240] = 0;
    kv_str(w, "test.long", long_str);
    static const uint8_t u8s[] = {1, 2, 3, 250};
    static const uint8_t bools[] = {0, 1, 1};
    static const double f64s[] = {0.5, -1e300, 3};
    static const float f32s[] = {1.5f, -0.25f, 1e-30f, 7, 8, 9, 10, 11, 12, 13};
    kv_arr(w, "test.arr_u8", AR_GGUF_U8, 4, u8s, 1);
    kv_arr(w, "test.arr_bool", AR_GGUF_BOOL, 3, bools, 1);
    kv_arr(w, "test.arr_f64", AR_GGUF_F64, 3, f64s, 8);
    kv_arr(w, "test.arr_f32", AR_GGUF_F32, 10, f32s, 4); /* more than are shown */
    kv_arr(w, "test.arr_empty", AR_GGUF_I16, 0, NULL, 2);
    kv_arr_str(w, "test.arr_str_empty", 0, NULL);
    /* [[1, 2, 3] (i32), ["x", "y"], [] (u8)] */
    kv_head(w, "test.nested", AR_GGUF_ARRAY);
    put_u32(&w->kv, AR_GGUF_ARRAY);
    put_u64(&w->kv, 3);
    static const int32_t i32s[] = {1, 2, 3};
    put_u32(&w->kv, AR_GGUF_I32);
    put_u64(&w->kv, 3);
    put(&w->kv, i32s, sizeof i32s);
    put_u32(&w->kv, AR_GGUF_STRING);
    put_u64(&w->kv, 2);
    put_gstr(&w->kv, "x");
    put_gstr(&w->kv, "y");
    put_u32(&w->kv, AR_GGUF_U8);
    put_u64(&w->kv, 0);
    /* [[[7]]] (u8), three levels deep */
    kv_head(w, "test.nested3", AR_GGUF_ARRAY);
    put_u32(&w->kv, AR_GGUF_ARRAY);
    put_u64(&w->kv, 1);
    put_u32(&w->kv, AR_GGUF_ARRAY);
    put_u64(&w->kv, 1);
    put_u32(&w->kv, AR_GGUF_U8);
    put_u64(&w->kv, 1);
    put_u8(&w->kv, 7);
}

static void mat(gguf_writer *w, const char *name, uint32_t type, int64_t ne0, int64_t ne1) {
    int64_t ne[2] = {ne0, ne1};
    add_tensor(w, name, type, 2, ne);
}

static void vec(gguf_writer *w, const char *name, uint32_t type, int64_t ne0) {
    add_tensor(w, name, type, 1, &ne0);
}

static void write_weights(gguf_writer *w, const gguf_model *s) {
    int64_t E = s->n_embd, F = s->n_ff, V = s->n_vocab;
    int64_t hd = E / s->n_heads, Q = s->n_heads * hd, K = s->n_kv_heads * hd;
    int k = 0, f = 0; /* positions in the type cycles */
    char name[96];
    mat(w, "token_embd.weight", s->embd_type, E, V);
    for (int l = 0; l < s->n_layers; l++) {
#define NAME(suffix) (snprintf(name, sizeof name, "blk.%d." suffix, l), name)
        vec(w, NAME("attn_norm.weight"), s->vec_type, E);
        mat(w, NAME("attn_q.weight"), s->mats[k++ % s->n_mats], E, Q);
        vec(w, NAME("attn_q.bias"), s->vec_type, Q);
        mat(w, NAME("attn_k.weight"), s->mats[k++ % s->n_mats], E, K);
        vec(w, NAME("attn_k.bias"), s->vec_type, K);
        mat(w, NAME("attn_v.weight"), s->mats[k++ % s->n_mats], E, K);
        vec(w, NAME("attn_v.bias"), s->vec_type, K);
        mat(w, NAME("attn_output.weight"), s->mats[k++ % s->n_mats], Q, E);
        vec(w, NAME("ffn_norm.weight"), s->vec_type, E);
        mat(w, NAME("ffn_gate.weight"), s->ffns[f++ % s->n_ffns], E, F);
        mat(w, NAME("ffn_up.weight"), s->ffns[f++ % s->n_ffns], E, F);
        mat(w, NAME("ffn_down.weight"), s->downs[l % s->n_downs], F, E);
#undef NAME
    }
    vec(w, "output_norm.weight", s->vec_type, E);
    if (s->untied) mat(w, "output.weight", s->mats[k % s->n_mats], E, V);
}

/* One tensor of every supported type (rows of 256: a whole k-quant block), and shapes of
 * three and four dimensions. */
static void write_all_types(gguf_writer *w) {
    for (size_t i = 0; i < sizeof type_descs / sizeof type_descs[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "all.%s", type_descs[i].name);
        mat(w, name, type_descs[i].id, 256, 2);
    }
    int64_t cube[3] = {4, 3, 2}, hyper[4] = {2, 1, 3, 2};
    add_tensor(w, "all.cube", F16, 3, cube);
    add_tensor(w, "all.hyper", F32, 4, hyper);
}

static bytes build_gguf(const gguf_model *s) {
    gguf_writer w = {.version = s->version,
                     .alignment = s->alignment ? s->alignment : AR_GGUF_DEFAULT_ALIGNMENT};
    kv_str(&w, "general.architecture", s->arch);
    kv_str(&w, "general.name", s->file);
    if (s->alignment) kv_u32(&w, "general.alignment", s->alignment);
    if (s->file_type >= 0) kv_u32(&w, "general.file_type", (uint32_t)s->file_type);
    char key[96];
#define ARCH_KEY(suffix) (snprintf(key, sizeof key, "%s." suffix, s->arch), key)
    kv_u32(&w, ARCH_KEY("block_count"), (uint32_t)s->n_layers);
    kv_u32(&w, ARCH_KEY("context_length"), 4096);
    kv_u32(&w, ARCH_KEY("embedding_length"), (uint32_t)s->n_embd);
    kv_u32(&w, ARCH_KEY("feed_forward_length"), (uint32_t)s->n_ff);
    kv_u32(&w, ARCH_KEY("attention.head_count"), (uint32_t)s->n_heads);
    kv_u32(&w, ARCH_KEY("attention.head_count_kv"), (uint32_t)s->n_kv_heads);
    kv_f32(&w, ARCH_KEY("rope.freq_base"), 1000000.0f);
    kv_f32(&w, ARCH_KEY("attention.layer_norm_rms_epsilon"), 1e-6f);
#undef ARCH_KEY
    if (s->n_tokens) write_tokenizer(&w, s->n_tokens);
    if (s->bytelevel) write_bytelevel_tokenizer(&w);
    if (s->extras) write_extras(&w);
    if (!s->vocab_only) write_weights(&w, s);
    if (s->all_types) write_all_types(&w);
    return gguf_finish(&w);
}

/* The seed must parse; a model seed must also open as one (and pass the fuzz checks). */
static void check_gguf(const gguf_model *s, const bytes *b) {
    ar_gguf g;
    ar_err err = {{0}};
    if (ar_gguf_parse(&g, b->p, b->len, &err) != AR_OK)
        die("%s: does not parse: %s", s->file, err.msg);
    ar_gguf_free(&g);
    ar_model_params p = ar_model_default_params();
    p.allow_vocab_only = true;
    ar_model *m = NULL;
    ar_status st = ar_model_open_memory(b->p, b->len, NULL, &p, &m);
    bool want = strcmp(s->arch, "qwen2") == 0;
    if ((st == AR_OK) != want)
        die("%s: opened with status %d (%s), expected %s", s->file, (int)st,
            st == AR_OK ? "" : ar_model_errmsg(m), want ? "success" : "failure");
    if (s->bytelevel) { /* the one seed whose tokenizer must load, so encoding is reached */
        ar_tokenizer *tok = NULL;
        if (ar_tokenizer_from_model(m, NULL, &tok) != AR_OK)
            die("%s: tokenizer does not load: %s", s->file, ar_tokenizer_errmsg(tok));
        ar_tokenizer_free(tok);
    }
    fuzz_check_model(st, m, "gguf", b->len);
}

static void write_gguf_seeds(const char *dir) {
    static const uint32_t f32[] = {F32}, f16[] = {F16}, q8_0[] = {Q8_0};
    static const uint32_t q4_k_mats[] = {Q8_0, Q4_0, Q4_1}, q4_k_ffns[] = {Q4_0, Q8_0};
    static const uint32_t q4_k_downs[] = {Q4_K};
    static const uint32_t mix_mats[] = {BF16, F16, F32, Q8_0, Q5_1};
    static const uint32_t mix_ffns[] = {Q4_0, Q4_1, Q5_0, Q5_1};
    static const uint32_t mix_downs[] = {Q2_K, Q3_K, Q5_K, Q6_K};
    /* clang-format off */
    const gguf_model seeds[] = {
        {.file = "v3-f32-tied.gguf", .arch = "qwen2", .version = 3, .n_layers = 1,
         .n_embd = 8, .n_heads = 2, .n_kv_heads = 1, .n_ff = 16, .n_vocab = 16,
         .vec_type = F32, .embd_type = F32, .mats = f32, .n_mats = 1, .ffns = f32,
         .n_ffns = 1, .downs = f32, .n_downs = 1, .n_tokens = 16, .extras = true,
         .file_type = 0},
        {.file = "v2-f16-untied.gguf", .arch = "qwen2", .version = 2, .n_layers = 2,
         .n_embd = 8, .n_heads = 2, .n_kv_heads = 2, .n_ff = 16, .n_vocab = 16,
         .untied = true, .vec_type = F32, .embd_type = F16, .mats = f16, .n_mats = 1,
         .ffns = f16, .n_ffns = 1, .downs = f16, .n_downs = 1, .n_tokens = 12, .file_type = 1},
        {.file = "v3-align64-q8_0.gguf", .arch = "qwen2", .version = 3, .alignment = 64,
         .n_layers = 1, .n_embd = 32, .n_heads = 2, .n_kv_heads = 1, .n_ff = 32,
         .n_vocab = 8, .untied = true, .vec_type = F16, .embd_type = Q8_0, .mats = q8_0,
         .n_mats = 1, .ffns = q8_0, .n_ffns = 1, .downs = q8_0, .n_downs = 1, .file_type = 7},
        {.file = "v3-q4_k.gguf", .arch = "qwen2", .version = 3, .n_layers = 1, .n_embd = 32,
         .n_heads = 2, .n_kv_heads = 1, .n_ff = 256, .n_vocab = 16, .vec_type = BF16,
         .embd_type = Q4_0, .mats = q4_k_mats, .n_mats = 3, .ffns = q4_k_ffns, .n_ffns = 2,
         .downs = q4_k_downs, .n_downs = 1, .n_tokens = 16, .file_type = 15},
        {.file = "v3-quant-mix.gguf", .arch = "qwen2", .version = 3, .alignment = 16,
         .n_layers = 4, .n_embd = 32, .n_heads = 4, .n_kv_heads = 2, .n_ff = 256,
         .n_vocab = 16, .untied = true, .vec_type = F16, .embd_type = Q5_1,
         .mats = mix_mats, .n_mats = 5, .ffns = mix_ffns, .n_ffns = 4,
         .downs = mix_downs, .n_downs = 4, .n_tokens = 5, .file_type = -1},
        {.file = "v3-vocab-only.gguf", .arch = "qwen2", .version = 3, .n_layers = 1,
         .n_embd = 8, .n_heads = 2, .n_kv_heads = 1, .n_ff = 16, .n_tokens = 16,
         .vocab_only = true, .file_type = -1},
        {.file = "v3-bytelevel-vocab.gguf", .arch = "qwen2", .version = 3, .n_layers = 1,
         .n_embd = 8, .n_heads = 2, .n_kv_heads = 1, .n_ff = 16, .bytelevel = true,
         .vocab_only = true, .file_type = -1},
        {.file = "v3-llama-container.gguf", .arch = "llama", .version = 3, .alignment = 8,
         .n_layers = 1, .n_embd = 8, .n_heads = 2, .n_kv_heads = 1, .n_ff = 16,
         .n_tokens = 4, .vocab_only = true, .extras = true, .all_types = true,
         .file_type = 1024 + 15},
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        rng_state = 0x9e3779b97f4a7c15ull + i;
        bytes b = build_gguf(&seeds[i]);
        check_gguf(&seeds[i], &b);
        write_file(dir, seeds[i].file, &b);
        free(b.p);
    }
}

/* ---- safetensors writer ------------------------------------------------------------- */

typedef struct st_tensor {
    char name[96];
    uint32_t type; /* F32, F16 or BF16 */
    int n_dims;
    int64_t shape[4]; /* outermost first */
} st_tensor;

typedef struct st_writer {
    st_tensor t[64];
    int n;
} st_writer;

static void st_add(st_writer *w, uint32_t type, int n_dims, const int64_t *shape, const char *fmt,
                   int layer) {
    if (w->n == (int)(sizeof w->t / sizeof w->t[0])) die("internal: too many tensors");
    st_tensor *t = &w->t[w->n++];
    snprintf(t->name, sizeof t->name, fmt, layer);
    t->type = type;
    t->n_dims = n_dims;
    if (n_dims) memcpy(t->shape, shape, (size_t)n_dims * sizeof *shape);
}

static const char *st_dtype(uint32_t type) {
    return type == F32 ? "F32" : type == F16 ? "F16" : "BF16";
}

/* selector | u64 N | JSON header padded with spaces to a multiple of 8 | data. Tensors
 * are laid out 4-byte types first, so every tensor is aligned to its element size. */
static bytes st_finish(const st_writer *w, uint8_t selector) {
    int order[64], k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < w->n; i++)
            if ((w->t[i].type == F32) == (pass == 0)) order[k++] = i;
    bytes hdr = {0}, data = {0};
    printf_to(&hdr, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int j = 0; j < w->n; j++) {
        const st_tensor *t = &w->t[order[j]];
        uint64_t n = 1, begin = data.len;
        for (int d = 0; d < t->n_dims; d++) n *= (uint64_t)t->shape[d];
        put_tensor_data(&data, t->type, n);
        printf_to(&hdr, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, st_dtype(t->type));
        for (int d = 0; d < t->n_dims; d++)
            printf_to(&hdr, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        printf_to(&hdr, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)begin,
                  (unsigned long long)data.len);
    }
    put(&hdr, "}", 1);
    while (hdr.len % 8) put(&hdr, " ", 1);
    bytes out = {0};
    put_u8(&out, selector);
    put_u64(&out, hdr.len);
    put(&out, hdr.p, hdr.len);
    put(&out, data.p, data.len);
    free(hdr.p);
    free(data.p);
    return out;
}

/* The checkpoint config `c` asks for; matrices `mat`, vectors `vecs`, embeddings `emb`. */
static void st_model(st_writer *w, const fuzz_st_config *c, uint32_t mat, uint32_t vecs,
                     uint32_t emb) {
    int64_t E = c->n_embd, F = c->n_ff, V = c->n_vocab;
    int64_t Q = (int64_t)c->n_heads * c->head_dim, K = (int64_t)c->n_kv_heads * c->head_dim;
    st_add(w, emb, 2, (int64_t[]){V, E}, "model.embed_tokens.weight", 0);
    st_add(w, vecs, 1, (int64_t[]){E}, "model.norm.weight", 0);
    if (!c->tied) st_add(w, mat, 2, (int64_t[]){V, E}, "lm_head.weight", 0);
    for (int l = 0; l < c->n_layers; l++) {
        st_add(w, vecs, 1, (int64_t[]){E}, "model.layers.%d.input_layernorm.weight", l);
        st_add(w, mat, 2, (int64_t[]){Q, E}, "model.layers.%d.self_attn.q_proj.weight", l);
        st_add(w, vecs, 1, (int64_t[]){Q}, "model.layers.%d.self_attn.q_proj.bias", l);
        st_add(w, mat, 2, (int64_t[]){K, E}, "model.layers.%d.self_attn.k_proj.weight", l);
        st_add(w, vecs, 1, (int64_t[]){K}, "model.layers.%d.self_attn.k_proj.bias", l);
        st_add(w, mat, 2, (int64_t[]){K, E}, "model.layers.%d.self_attn.v_proj.weight", l);
        st_add(w, vecs, 1, (int64_t[]){K}, "model.layers.%d.self_attn.v_proj.bias", l);
        st_add(w, mat, 2, (int64_t[]){E, Q}, "model.layers.%d.self_attn.o_proj.weight", l);
        st_add(w, vecs, 1, (int64_t[]){E}, "model.layers.%d.post_attention_layernorm.weight", l);
        st_add(w, mat, 2, (int64_t[]){F, E}, "model.layers.%d.mlp.gate_proj.weight", l);
        st_add(w, mat, 2, (int64_t[]){F, E}, "model.layers.%d.mlp.up_proj.weight", l);
        st_add(w, mat, 2, (int64_t[]){E, F}, "model.layers.%d.mlp.down_proj.weight", l);
    }
}

static void write_st_seed(const char *dir, const char *file, int cfg, const st_writer *w) {
    bytes b = st_finish(w, (uint8_t)cfg);
    ar_model_params p = ar_model_default_params();
    ar_model *m = NULL;
    ar_status st = ar_model_open_memory(b.p + 1, b.len - 1, fuzz_st_configs[cfg].json, &p, &m);
    if (st != AR_OK) die("%s: does not open: %s", file, ar_model_errmsg(m));
    fuzz_check_model(st, m, "safetensors", b.len - 1);
    write_file(dir, file, &b);
    free(b.p);
}

static void write_safetensors_seeds(const char *dir) {
    static const struct {
        const char *file;
        int cfg;
        uint32_t mat, vecs, emb;
        bool extras;
    } seeds[] = {
        {"c0-f32.st", 0, F32, F32, F32, false},     {"c0-f16.st", 0, F16, F16, F16, false},
        {"c0-bf16.st", 0, BF16, BF16, BF16, false}, {"c0-extras.st", 0, F16, F32, F16, true},
        {"c1-f32.st", 1, F32, F32, F32, false},     {"c1-mixed.st", 1, BF16, F32, F16, false},
        {"c1-f16.st", 1, F16, BF16, F16, false},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        rng_state = 0x2545f4914f6cdd1dull + i;
        st_writer w = {.n = 0};
        st_model(&w, &fuzz_st_configs[seeds[i].cfg], seeds[i].mat, seeds[i].vecs, seeds[i].emb);
        if (seeds[i].extras) { /* tensors the model ignores, of unusual shapes */
            st_add(&w, F32, 0, NULL, "extra.scalar", 0);
            st_add(&w, F16, 2, (int64_t[]){0, 3}, "extra.empty", 0);
            st_add(&w, BF16, 3, (int64_t[]){2, 3, 2}, "extra.cube", 0);
            st_add(&w, F32, 4, (int64_t[]){1, 2, 1, 3}, "extra.hyper", 0);
        }
        write_st_seed(dir, seeds[i].file, seeds[i].cfg, &w);
    }
}

/* ---- main --------------------------------------------------------------------------- */

static void make_dir(const char *dir) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) die("%s: %s", dir, strerror(errno));
}

/* fuzz_tokenize: a flags byte, then text; fuzz_tokenizer_json: the synthetic tokenizer. */
static void write_tokenizer_seeds(const char *tok_dir, const char *json_dir) {
    static const char *const texts[] = {
        "\001<|im_start|>user\nWhat's the weather in Paris? I'LL go<|im_end|>\n",
        "\000Hello world, the quick brown fox's 12345 jumps!\n\n  over\t\ttabs",
        ("\002e\xcc\x81 caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd "
         "\xff\xfe"),
        "\003   \r\n\r\n  x  \xc2\xa0\xe3\x80\x80 <tool_call></tool_call>",
    };
    char path[4096];
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        snprintf(path, sizeof path, "%s/text-%zu", tok_dir, i);
        size_t len = 1 + strlen(texts[i] + 1); /* the flags byte may be 0 */
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(texts[i], 1, len, f) != len || fclose(f) != 0)
            die("%s: write failed", path);
    }
    size_t len;
    char *json = fuzz_tokenizer_json(&len);
    ar_tokenizer *tok = NULL;
    if (ar_tokenizer_open_memory((const uint8_t *)json, len, true, NULL, &tok) != AR_OK)
        die("the synthetic tokenizer.json does not load: %s", ar_tokenizer_errmsg(tok));
    ar_tokenizer_free(tok);
    snprintf(path, sizeof path, "%s/synthetic.json", json_dir);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(json, 1, len, f) != len || fclose(f) != 0) die("%s: write failed", path);
    free(json);
}

int main(int argc, char **argv) {
    if ((argc != 3 && argc != 5) || argv[1][0] == '-') {
        fprintf(stderr,
                "usage: gen_seeds GGUF_DIR SAFETENSORS_DIR [TOKENIZE_DIR TOKENIZER_JSON_DIR]\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) make_dir(argv[i]);
    write_gguf_seeds(argv[1]);
    write_safetensors_seeds(argv[2]);
    if (argc == 5) write_tokenizer_seeds(argv[3], argv[4]);
    return 0;
}
