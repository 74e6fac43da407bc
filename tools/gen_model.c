/*
 * gen_model.c - write a random-weight Qwen2 model as GGUF, shaped like Arch-Router-1.5B
 * (or smaller), for benchmarks and load-time measurements on machines without the real
 * weights.
 *
 * Usage: gen_model [--type T] [--layers N] [--seed S] [--vocab-from FILE.gguf] OUT.gguf
 *
 *   --type T   F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
 *              or Q4_K_M: llama.cpp's mixture as in the published Arch-Router file
 *              (Q4_K; Q6_K for the tied token embedding, and for attn_v and ffn_down in
 *              the first and last eighth of the layers and every third layer between).
 *   --layers N number of layers (default 28, as the real model).
 *   --vocab-from FILE.gguf  copy the tokenizer.* metadata (vocabulary, merges, special
 *              ids, chat template) from another GGUF, e.g. a vocabulary-only file.
 *
 * Shapes: hidden 1536, 12 heads, 2 KV heads (head_dim 128), FFN 8960, vocabulary 151936,
 * tied embeddings, q/k/v biases; norms and biases F32. Quantized blocks hold random
 * quants with float16 scales chosen so weights are of order 0.05; float types hold
 * uniform random values of that size. Data is streamed to the file in chunks.
 */
#include "kernels/fp16.h"
#include "kernels/types.h"
#include "model/gguf.h"
#include "base/mapfile.h"

#include <fcntl.h>
#include <inttypes.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_EMBD    1536
#define N_HEAD    12
#define N_HEAD_KV 2
#define HEAD_DIM  128
#define N_FF      8960
#define N_VOCAB   151936
#define ALIGN     32

typedef struct tensor_spec {
    char name[64];
    uint32_t type;
    int n_dims;
    uint64_t ne[2];
    uint64_t offset; /* in the data section */
    uint64_t bytes;
} tensor_spec;

typedef struct gen {
    FILE *f;
    uint64_t rng;
    uint64_t written;
} gen;

static uint64_t next_rand(gen *g) { /* xorshift64* */
    g->rng ^= g->rng >> 12;
    g->rng ^= g->rng << 25;
    g->rng ^= g->rng >> 27;
    return g->rng * 2685821657736338717ull;
}

static float rand_weight(gen *g) {
    return ((float)(next_rand(g) >> 40) / (float)(1 << 24) - 0.5f) * 0.1f;
}

static int put(gen *g, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, g->f) != n) return -1;
    g->written += n;
    return 0;
}

static int put_u32(gen *g, uint32_t v) {
    return put(g, &v, 4);
}

static int put_u64(gen *g, uint64_t v) {
    return put(g, &v, 8);
}

static int put_str(gen *g, const char *s) {
    return put_u64(g, strlen(s)) || put(g, s, strlen(s));
}

static int kv_u32(gen *g, const char *k, uint32_t v) {
    return put_str(g, k) || put_u32(g, AR_GGUF_U32) || put_u32(g, v);
}

static int kv_f32(gen *g, const char *k, float v) {
    return put_str(g, k) || put_u32(g, AR_GGUF_F32) || put(g, &v, 4);
}

static int kv_str(gen *g, const char *k, const char *v) {
    return put_str(g, k) || put_u32(g, AR_GGUF_STRING) || put_str(g, v);
}

/* Copy one metadata entry of another file verbatim. */
static int kv_copy(gen *g, const ar_gguf_kv *kv) {
    const ar_gguf_value *v = &kv->value;
    if (put_str(g, kv->key) || put_u32(g, v->type)) return -1;
    if (v->type == AR_GGUF_ARRAY)
        return put_u32(g, v->elem_type) || put_u64(g, v->count) || put(g, v->data, v->size);
    if (v->type == AR_GGUF_STRING) return put_u64(g, v->count) || put(g, v->data, v->size);
    return put(g, v->data, v->size);
}

/* Offsets of the float16 scale fields in each block type (d, then dmin/m when present). */
static void scale_fields(uint32_t type, int *d, int *m) {
    *d = 0;
    *m = -1;
    switch (type) {
    case AR_TYPE_Q4_1:
    case AR_TYPE_Q5_1:
    case AR_TYPE_Q4_K:
    case AR_TYPE_Q5_K: *m = 2; break;
    case AR_TYPE_Q2_K:
        *d = 80;
        *m = 82;
        break;
    case AR_TYPE_Q3_K: *d = 108; break;
    case AR_TYPE_Q6_K: *d = 208; break;
    }
}

/* A weight tensor's data: random blocks with sane scales, or random floats. */
static int write_weights(gen *g, const tensor_spec *t) {
    const ar_type_traits *tt = ar_type_traits_get(t->type);
    uint64_t n_blocks = t->bytes / (uint64_t)tt->type_size;
    uint8_t buf[1 << 16];
    size_t per_chunk = sizeof buf / (size_t)tt->type_size;
    int d_off, m_off;
    scale_fields(t->type, &d_off, &m_off);
    /* Scale so that |weight| is about 0.05 whatever the bit width. */
    float d = tt->blck_size == 1 ? 0 : (tt->type_size * 8.0f / tt->blck_size > 6 ? 0.0005f : 0.01f);
    for (uint64_t b = 0; b < n_blocks;) {
        size_t n = (size_t)(n_blocks - b < per_chunk ? n_blocks - b : per_chunk);
        size_t bytes = n * (size_t)tt->type_size;
        if (t->type == AR_TYPE_F32) {
            for (size_t i = 0; i < bytes / 4; i++) {
                float w = rand_weight(g);
                memcpy(buf + 4 * i, &w, 4);
            }
        } else if (t->type == AR_TYPE_F16 || t->type == AR_TYPE_BF16) {
            for (size_t i = 0; i < bytes / 2; i++) {
                float w = rand_weight(g);
                uint32_t bits;
                memcpy(&bits, &w, 4);
                uint16_t h = t->type == AR_TYPE_F16 ? ar_fp32_to_fp16(w) : (uint16_t)(bits >> 16);
                memcpy(buf + 2 * i, &h, 2);
            }
        } else {
            for (size_t i = 0; i + 8 <= bytes; i += 8) {
                uint64_t r = next_rand(g);
                memcpy(buf + i, &r, 8);
            }
            for (size_t i = bytes & ~(size_t)7; i < bytes; i++) buf[i] = (uint8_t)next_rand(g);
            uint16_t hd = ar_fp32_to_fp16(d), hm = ar_fp32_to_fp16(d * 4);
            for (size_t k = 0; k < n; k++) {
                memcpy(buf + k * (size_t)tt->type_size + d_off, &hd, 2);
                if (m_off >= 0) memcpy(buf + k * (size_t)tt->type_size + m_off, &hm, 2);
            }
        }
        if (put(g, buf, bytes)) return -1;
        b += n;
    }
    return 0;
}

static int write_vector(gen *g, const tensor_spec *t, int is_norm) {
    for (uint64_t i = 0; i < t->ne[0]; i++) {
        float v = is_norm ? 1.0f + rand_weight(g) : rand_weight(g);
        if (put(g, &v, 4)) return -1;
    }
    return 0;
}

static bool use_more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static int add_tensor(tensor_spec *ts, int *n, const char *name, uint32_t type, uint64_t ne0,
                      uint64_t ne1) {
    tensor_spec *t = &ts[(*n)++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = ne1 ? 2 : 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1 ? ne1 : 1;
    if (!ar_type_row_bytes(ar_type_traits_get(type), ne0, &t->bytes)) return -1;
    t->bytes *= t->ne[1];
    return 0;
}

static int plan(tensor_spec *ts, int n_layers, uint32_t type, bool mixture) {
    int n = 0;
    char name[64];
    uint32_t q6 = AR_TYPE_Q6_K;
    add_tensor(ts, &n, "token_embd.weight", mixture ? q6 : type, N_EMBD, N_VOCAB);
    for (int l = 0; l < n_layers; l++) {
        bool more = mixture && use_more_bits(l, n_layers);
        struct {
            const char *suffix;
            uint64_t ne0, ne1;
            uint32_t type;
        } layer[] = {
            {"attn_norm.weight", N_EMBD, 0, AR_TYPE_F32},
            {"attn_q.weight", N_EMBD, N_HEAD * HEAD_DIM, type},
            {"attn_q.bias", N_HEAD * HEAD_DIM, 0, AR_TYPE_F32},
            {"attn_k.weight", N_EMBD, N_HEAD_KV * HEAD_DIM, type},
            {"attn_k.bias", N_HEAD_KV * HEAD_DIM, 0, AR_TYPE_F32},
            {"attn_v.weight", N_EMBD, N_HEAD_KV * HEAD_DIM, more ? q6 : type},
            {"attn_v.bias", N_HEAD_KV * HEAD_DIM, 0, AR_TYPE_F32},
            {"attn_output.weight", N_HEAD * HEAD_DIM, N_EMBD, type},
            {"ffn_norm.weight", N_EMBD, 0, AR_TYPE_F32},
            {"ffn_gate.weight", N_EMBD, N_FF, type},
            {"ffn_up.weight", N_EMBD, N_FF, type},
            {"ffn_down.weight", N_FF, N_EMBD, more ? q6 : type},
        };
        for (size_t i = 0; i < sizeof layer / sizeof layer[0]; i++) {
            snprintf(name, sizeof name, "blk.%d.%s", l, layer[i].suffix);
            if (add_tensor(ts, &n, name, layer[i].type, layer[i].ne0, layer[i].ne1)) return -1;
        }
    }
    add_tensor(ts, &n, "output_norm.weight", AR_TYPE_F32, N_EMBD, 0);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        ts[i].offset = off;
        off = (off + ts[i].bytes + ALIGN - 1) / ALIGN * ALIGN;
    }
    return n;
}

static uint32_t parse_type(const char *s, bool *mixture) {
    *mixture = strcmp(s, "Q4_K_M") == 0;
    if (*mixture) return AR_TYPE_Q4_K;
    for (uint32_t t = 0; t < 64; t++)
        if (ar_type_traits_get(t) && strcmp(ar_type_traits_get(t)->name, s) == 0) return t;
    return UINT32_MAX;
}

static int write_header(gen *g, const tensor_spec *ts, int n, int n_layers, int ftype,
                        const ar_gguf *vocab) {
    uint64_t n_kv = 13;
    for (uint64_t i = 0; vocab && i < vocab->n_kv; i++)
        if (strncmp(vocab->kv[i].key, "tokenizer.", 10) == 0) n_kv++;
    if (put(g, "GGUF", 4) || put_u32(g, 3) || put_u64(g, (uint64_t)n) || put_u64(g, n_kv))
        return -1;
    int rc = kv_str(g, "general.architecture", "qwen2") || kv_str(g, "general.type", "model") ||
             kv_str(g, "general.name", "Arch-Router-1.5B-shaped random qwen2") ||
             kv_u32(g, "general.file_type", (uint32_t)ftype) ||
             kv_u32(g, "general.quantization_version", 2) ||
             kv_u32(g, "qwen2.block_count", (uint32_t)n_layers) ||
             kv_u32(g, "qwen2.context_length", 32768) ||
             kv_u32(g, "qwen2.embedding_length", N_EMBD) ||
             kv_u32(g, "qwen2.feed_forward_length", N_FF) ||
             kv_u32(g, "qwen2.attention.head_count", N_HEAD) ||
             kv_u32(g, "qwen2.attention.head_count_kv", N_HEAD_KV) ||
             kv_f32(g, "qwen2.rope.freq_base", 1e6f) ||
             kv_f32(g, "qwen2.attention.layer_norm_rms_epsilon", 1e-6f);
    for (uint64_t i = 0; !rc && vocab && i < vocab->n_kv; i++)
        if (strncmp(vocab->kv[i].key, "tokenizer.", 10) == 0) rc = kv_copy(g, &vocab->kv[i]);
    for (int i = 0; !rc && i < n; i++) {
        rc = put_str(g, ts[i].name) || put_u32(g, (uint32_t)ts[i].n_dims) ||
             put_u64(g, ts[i].ne[0]) || (ts[i].n_dims == 2 && put_u64(g, ts[i].ne[1])) ||
             put_u32(g, ts[i].type) || put_u64(g, ts[i].offset);
    }
    static const uint8_t zeros[ALIGN];
    if (!rc && g->written % ALIGN) rc = put(g, zeros, ALIGN - g->written % ALIGN);
    return rc;
}

static int ftype_of(uint32_t type, bool mixture) {
    static const int ft[] = {
        [AR_TYPE_F32] = 0,   [AR_TYPE_F16] = 1,   [AR_TYPE_Q4_0] = 2,  [AR_TYPE_Q4_1] = 3,
        [AR_TYPE_Q8_0] = 7,  [AR_TYPE_Q5_0] = 8,  [AR_TYPE_Q5_1] = 9,  [AR_TYPE_Q2_K] = 10,
        [AR_TYPE_Q3_K] = 12, [AR_TYPE_Q4_K] = 14, [AR_TYPE_Q5_K] = 16, [AR_TYPE_Q6_K] = 18,
        [AR_TYPE_BF16] = 32};
    return mixture ? 15 : ft[type];
}

int main(int argc, char **argv) {
    const char *out = NULL, *type_name = "Q4_K_M", *vocab_path = NULL;
    int n_layers = 28;
    gen g = {.rng = 0x9e3779b97f4a7c15ull};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--type") == 0 && i + 1 < argc)
            type_name = argv[++i];
        else if (strcmp(argv[i], "--layers") == 0 && i + 1 < argc)
            n_layers = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            g.rng ^= strtoull(argv[++i], NULL, 0) * 0x2545F4914F6CDD1Dull;
        else if (strcmp(argv[i], "--vocab-from") == 0 && i + 1 < argc)
            vocab_path = argv[++i];
        else if (argv[i][0] != '-' && !out)
            out = argv[i];
        else {
            fprintf(stderr, "usage: gen_model [--type T] [--layers N] [--seed S] "
                            "[--vocab-from FILE.gguf] OUT.gguf\n");
            return 2;
        }
    }
    bool mixture;
    uint32_t type = parse_type(type_name, &mixture);
    if (!out || type == UINT32_MAX || n_layers < 1 || n_layers > 1024) {
        fprintf(stderr, "gen_model: need OUT.gguf, a known --type and 1 <= --layers <= 1024\n");
        return 2;
    }
    ar_mapfile vf = {0};
    ar_gguf vocab = {0};
    ar_err err = {{0}};
    if (vocab_path && (ar_mapfile_open(&vf, vocab_path, true, 0, &err) != AR_OK ||
                       ar_gguf_parse(&vocab, vf.data, vf.size, &err) != AR_OK)) {
        fprintf(stderr, "gen_model: %s: %s\n", vocab_path, err.msg);
        return 1;
    }
    tensor_spec *ts = calloc((size_t)n_layers * 12 + 2, sizeof *ts);
    int n = ts ? plan(ts, n_layers, type, mixture) : -1;
    g.f = fopen(out, "wb");
    int rc = n < 0 || !g.f;
    if (!rc)
        rc = write_header(&g, ts, n, n_layers, ftype_of(type, mixture), vocab_path ? &vocab : NULL);
    uint64_t data_start = g.written;
    static const uint8_t zeros[ALIGN];
    for (int i = 0; !rc && i < n; i++) {
        uint64_t pos = g.written - data_start;
        if (pos < ts[i].offset) rc = put(&g, zeros, ts[i].offset - pos);
        if (!rc)
            rc = ts[i].n_dims == 1 ? write_vector(&g, &ts[i], strstr(ts[i].name, "norm") != NULL)
                                   : write_weights(&g, &ts[i]);
        if (!rc && (i % 24 == 0 || i == n - 1))
            fprintf(stderr, "\rgen_model: %d/%d tensors, %.0f MB", i + 1, n, g.written / 1e6);
    }
    /* Written pages stay in the page cache as small pages, which stream several times
     * slower through a mapping than the large folios readahead makes when the file is
     * read back. Flush them out so the first reader (a benchmark) sees a file as it is
     * after a download and a first read, not a freshly written one. */
    if (g.f && !rc && (fflush(g.f) != 0 || fsync(fileno(g.f)) != 0)) rc = 1;
    if (g.f && !rc) posix_fadvise(fileno(g.f), 0, 0, POSIX_FADV_DONTNEED);
    if (g.f && fclose(g.f) != 0) rc = 1;
    fprintf(stderr, "\n");
    ar_gguf_free(&vocab);
    ar_mapfile_close(&vf);
    free(ts);
    if (rc) {
        fprintf(stderr, "gen_model: failed writing %s\n", out ? out : "");
        return 1;
    }
    fprintf(stderr, "gen_model: wrote %s (%s, %d layers, %.1f MB)\n", out, type_name, n_layers,
            g.written / 1e6);
    return 0;
}
