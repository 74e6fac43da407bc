/*
 * model_writer.c - test-only builders of GGUF and safetensors models (see model_writer.h).
 *
 * Both formats start from one plan: the list of tensors a Qwen2 model of the spec's sizes
 * has, in llama.cpp's writing order (token_embd, layer by layer, output_norm, output), each
 * with its GGUF and Hugging Face name, shape (GGUF order) and type, after the spec's
 * changes (omit, duplicate, reshape, retype). The GGUF builder writes header, key/values,
 * tensor infos and aligned data while recording where each field went; the safetensors
 * builder turns the same plan into a JSON header (shapes reversed to (out, in)) and a
 * packed data section.
 */
#define _GNU_SOURCE
#include "model_writer.h"

#include "kernels/types.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void oom(void) {
    fprintf(stderr, "model_writer: out of memory\n");
    abort();
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) oom();
    return p;
}

/* ---- bytes ---------------------------------------------------------------------------- */

void mw_free(mw_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

static void reserve(mw_buf *b, size_t n) {
    if (b->len + n <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d) oom();
    b->data = d;
    b->cap = cap;
}

void mw_bytes(mw_buf *b, const void *p, size_t n) {
    reserve(b, n);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
}

void mw_zeros(mw_buf *b, size_t n) {
    reserve(b, n);
    memset(b->data + b->len, 0, n);
    b->len += n;
}

static void le(mw_buf *b, uint64_t v, int n) {
    uint8_t t[8];
    for (int i = 0; i < n; i++) t[i] = (uint8_t)(v >> (8 * i));
    mw_bytes(b, t, (size_t)n);
}

void mw_u8(mw_buf *b, uint8_t v) {
    le(b, v, 1);
}

void mw_u16(mw_buf *b, uint16_t v) {
    le(b, v, 2);
}

void mw_u32(mw_buf *b, uint32_t v) {
    le(b, v, 4);
}

void mw_u64(mw_buf *b, uint64_t v) {
    le(b, v, 8);
}

void mw_f32(mw_buf *b, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    mw_u32(b, u);
}

void mw_f64(mw_buf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    mw_u64(b, u);
}

void mw_align(mw_buf *b, size_t align) {
    if (align > 1 && b->len % align) mw_zeros(b, align - b->len % align);
}

void mw_patch_u32(uint8_t *data, size_t at, uint32_t v) {
    for (int i = 0; i < 4; i++) data[at + (size_t)i] = (uint8_t)(v >> (8 * i));
}

void mw_patch_u64(uint8_t *data, size_t at, uint64_t v) {
    for (int i = 0; i < 8; i++) data[at + (size_t)i] = (uint8_t)(v >> (8 * i));
}

uint8_t *mw_dup(const void *p, size_t n) {
    uint8_t *d = xmalloc(n);
    if (n) memcpy(d, p, n);
    return d;
}

/* ---- GGUF vocabulary ------------------------------------------------------------------ */

void mw_gguf_header(mw_buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    mw_bytes(b, "GGUF", 4);
    mw_u32(b, version);
    mw_u64(b, n_tensors);
    mw_u64(b, n_kv);
}

void mw_gguf_strn(mw_buf *b, const void *s, uint64_t len) {
    mw_u64(b, len);
    mw_bytes(b, s, (size_t)len);
}

void mw_gguf_str(mw_buf *b, const char *s) {
    mw_gguf_strn(b, s, strlen(s));
}

void mw_gguf_key(mw_buf *b, const char *key, uint32_t type) {
    mw_gguf_str(b, key);
    mw_u32(b, type);
}

void mw_gguf_int(mw_buf *b, uint32_t type, int64_t v) {
    switch (type) {
    case MW_U8:
    case MW_I8:
    case MW_BOOL: le(b, (uint64_t)v, 1); break;
    case MW_U16:
    case MW_I16: le(b, (uint64_t)v, 2); break;
    case MW_U32:
    case MW_I32: le(b, (uint64_t)v, 4); break;
    default: le(b, (uint64_t)v, 8); break;
    }
}

void mw_gguf_kv_int(mw_buf *b, const char *key, uint32_t type, int64_t v) {
    mw_gguf_key(b, key, type);
    mw_gguf_int(b, type, v);
}

void mw_gguf_kv_u64(mw_buf *b, const char *key, uint64_t v) {
    mw_gguf_key(b, key, MW_U64);
    mw_u64(b, v);
}

void mw_gguf_kv_float(mw_buf *b, const char *key, uint32_t type, double v) {
    mw_gguf_key(b, key, type);
    if (type == MW_F32)
        mw_f32(b, (float)v);
    else
        mw_f64(b, v);
}

void mw_gguf_kv_bool(mw_buf *b, const char *key, bool v) {
    mw_gguf_key(b, key, MW_BOOL);
    mw_u8(b, v ? 1 : 0);
}

void mw_gguf_kv_str(mw_buf *b, const char *key, const char *s) {
    mw_gguf_key(b, key, MW_STRING);
    mw_gguf_str(b, s);
}

void mw_gguf_array(mw_buf *b, uint32_t elem_type, uint64_t count) {
    mw_u32(b, elem_type);
    mw_u64(b, count);
}

void mw_gguf_kv_str_array(mw_buf *b, const char *key, const char *const *s, size_t n) {
    mw_gguf_key(b, key, MW_ARRAY);
    mw_gguf_array(b, MW_STRING, n);
    for (size_t i = 0; i < n; i++) mw_gguf_str(b, s[i]);
}

void mw_gguf_tensor_info(mw_buf *b, const char *name, uint32_t n_dims, const int64_t *ne,
                         uint32_t type, uint64_t offset) {
    mw_gguf_str(b, name);
    mw_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) mw_u64(b, (uint64_t)ne[d]);
    mw_u32(b, type);
    mw_u64(b, offset);
}

/* ---- tensor contents ---------------------------------------------------------------- */

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t name_hash(const char *name) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    return h;
}

float mw_value(const char *name, uint64_t i) {
    uint64_t x = mix64(name_hash(name) ^ (i * 0x9e3779b97f4a7c15ull));
    int k = (int)(x % 17) - 8;
    return (float)k / 16.0f;
}

/* float16 bits of a value that float16 holds exactly (zero or a normal number). */
static uint16_t f16_bits(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    if ((u & 0x7fffffff) == 0) return sign;
    int exp = (int)((u >> 23) & 0xff) - 127 + 15;
    return (uint16_t)(sign | (uint16_t)(exp << 10) | (uint16_t)((u >> 13) & 0x3ff));
}

uint64_t mw_type_bytes(uint32_t type, uint64_t n) {
    uint64_t bytes = 0;
    if (!ar_type_row_bytes(ar_type_traits_get(type), n, &bytes)) return 0;
    return bytes;
}

/* Set every float16 scale of a quantized block to 1/16 (offsets as in kernels/quant.h). */
static void set_scales(uint32_t type, uint8_t *blk) {
    static const uint8_t sixteenth[2] = {0x00, 0x2c};
    static const struct {
        uint32_t type;
        int d, dmin; /* byte offsets of d and dmin (-1: none) */
    } fields[] = {
        {AR_TYPE_Q4_0, 0, -1},   {AR_TYPE_Q4_1, 0, 2},  {AR_TYPE_Q5_0, 0, -1},
        {AR_TYPE_Q5_1, 0, 2},    {AR_TYPE_Q8_0, 0, -1}, {AR_TYPE_Q2_K, 80, 82},
        {AR_TYPE_Q3_K, 108, -1}, {AR_TYPE_Q4_K, 0, 2},  {AR_TYPE_Q5_K, 0, 2},
        {AR_TYPE_Q6_K, 208, -1},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (fields[i].type != type) continue;
        memcpy(blk + fields[i].d, sixteenth, 2);
        if (fields[i].dmin >= 0) memcpy(blk + fields[i].dmin, sixteenth, 2);
    }
}

void mw_fill(uint32_t type, const char *name, uint64_t n, uint8_t *dst) {
    if (type == AR_TYPE_F32 || type == AR_TYPE_F16 || type == AR_TYPE_BF16) {
        for (uint64_t i = 0; i < n; i++) {
            float v = mw_value(name, i);
            uint32_t u;
            memcpy(&u, &v, 4);
            if (type == AR_TYPE_F32)
                mw_patch_u32(dst, 4 * i, u);
            else {
                uint16_t h = type == AR_TYPE_F16 ? f16_bits(v) : (uint16_t)(u >> 16);
                dst[2 * i] = (uint8_t)h;
                dst[2 * i + 1] = (uint8_t)(h >> 8);
            }
        }
        return;
    }
    const ar_type_traits *tt = ar_type_traits_get(type);
    if (!tt || n % (uint64_t)tt->blck_size != 0) return; /* mw_type_bytes() is 0: nothing */
    uint64_t blocks = n / (uint64_t)tt->blck_size, size = (uint64_t)tt->type_size;
    uint64_t h = name_hash(name);
    for (uint64_t b = 0; b < blocks; b++) {
        uint8_t *blk = dst + b * size;
        for (uint64_t i = 0; i < size; i++) blk[i] = (uint8_t)mix64(h + b * size + i);
        set_scales(type, blk);
    }
}

/* ---- the plan ------------------------------------------------------------------------- */

typedef struct planned {
    char gguf[MW_NAME_MAX], hf[MW_NAME_MAX];
    uint32_t n_dims;
    int64_t ne[4]; /* innermost first */
    uint32_t type;
    bool vector;
    bool copy; /* the second copy of spec->dup_tensor */
} planned;

mw_qwen2 mw_qwen2_default(void) {
    mw_qwen2 s = {
        .n_layers = 2,
        .n_embd = 32,
        .n_heads = 4,
        .n_kv_heads = 2,
        .n_ff = 64,
        .n_vocab = 48,
        .matrix_type = AR_TYPE_F32,
        .vector_type = AR_TYPE_F32,
        .arch = "qwen2",
        .mod_type = -1,
        .version = 3,
        .file_type = -1,
        .bos_id = -1,
        .eos_id = -1,
        .pad_id = -1,
    };
    return s;
}

static int32_t head_dim(const mw_qwen2 *s) {
    return s->head_dim > 0 ? s->head_dim : s->n_embd / s->n_heads;
}

enum dim { D_0, D_E, D_H, D_K, D_F, D_V };

/* The per-layer weights (as qwen2.h's table): names and shape [ne0, ne1], D_0 = vector. */
static const struct role {
    const char *gguf, *hf;
    enum dim ne0, ne1;
} layer_roles[] = {
    {"blk.%d.attn_norm.weight", "model.layers.%d.input_layernorm.weight", D_E, D_0},
    {"blk.%d.attn_q.weight", "model.layers.%d.self_attn.q_proj.weight", D_E, D_H},
    {"blk.%d.attn_q.bias", "model.layers.%d.self_attn.q_proj.bias", D_H, D_0},
    {"blk.%d.attn_k.weight", "model.layers.%d.self_attn.k_proj.weight", D_E, D_K},
    {"blk.%d.attn_k.bias", "model.layers.%d.self_attn.k_proj.bias", D_K, D_0},
    {"blk.%d.attn_v.weight", "model.layers.%d.self_attn.v_proj.weight", D_E, D_K},
    {"blk.%d.attn_v.bias", "model.layers.%d.self_attn.v_proj.bias", D_K, D_0},
    {"blk.%d.attn_output.weight", "model.layers.%d.self_attn.o_proj.weight", D_H, D_E},
    {"blk.%d.ffn_norm.weight", "model.layers.%d.post_attention_layernorm.weight", D_E, D_0},
    {"blk.%d.ffn_gate.weight", "model.layers.%d.mlp.gate_proj.weight", D_E, D_F},
    {"blk.%d.ffn_up.weight", "model.layers.%d.mlp.up_proj.weight", D_E, D_F},
    {"blk.%d.ffn_down.weight", "model.layers.%d.mlp.down_proj.weight", D_F, D_E},
};

static const struct role tok_embd_role = {"token_embd.weight", "model.embed_tokens.weight", D_E,
                                          D_V};
static const struct role output_norm_role = {"output_norm.weight", "model.norm.weight", D_E, D_0};
static const struct role output_role = {"output.weight", "lm_head.weight", D_E, D_V};

static int64_t dim_size(const mw_qwen2 *s, enum dim d) {
    switch (d) {
    case D_0: return 0;
    case D_E: return s->n_embd;
    case D_H: return (int64_t)s->n_heads * head_dim(s);
    case D_K: return (int64_t)s->n_kv_heads * head_dim(s);
    case D_F: return s->n_ff;
    case D_V: return s->n_vocab;
    }
    return 0;
}

static void add(planned *list, int *n, const struct role *r, int layer, const mw_qwen2 *s) {
    if (*n >= MW_MAX_TENSORS) {
        fprintf(stderr, "model_writer: more than %d tensors\n", MW_MAX_TENSORS);
        abort();
    }
    planned *p = &list[(*n)++];
    memset(p, 0, sizeof *p);
    snprintf(p->gguf, sizeof p->gguf, r->gguf, layer);
    snprintf(p->hf, sizeof p->hf, r->hf, layer);
    p->vector = r->ne1 == D_0;
    p->n_dims = p->vector ? 1 : 2;
    p->ne[0] = dim_size(s, r->ne0);
    p->ne[1] = p->vector ? 1 : dim_size(s, r->ne1);
    p->ne[2] = p->ne[3] = 1;
    p->type = p->vector ? s->vector_type : s->matrix_type;
}

/* Every tensor of the model in writing order, before the spec's changes. */
static int base_plan(const mw_qwen2 *s, planned *list) {
    int n = 0;
    add(list, &n, &tok_embd_role, 0, s);
    for (int l = 0; l < s->n_layers; l++)
        for (size_t i = 0; i < sizeof layer_roles / sizeof layer_roles[0]; i++)
            add(list, &n, &layer_roles[i], l, s);
    add(list, &n, &output_norm_role, 0, s);
    if (!s->tied) add(list, &n, &output_role, 0, s);
    return n;
}

static bool is(const char *want, const planned *p, bool hf) {
    return want && strcmp(want, hf ? p->hf : p->gguf) == 0;
}

/* The tensors to write: the base plan with the spec's changes applied. */
static int make_plan(const mw_qwen2 *s, bool hf, planned *out) {
    planned *base = xmalloc(MW_MAX_TENSORS * sizeof *base);
    int nb = base_plan(s, base), n = 0;
    for (int i = 0; i < nb; i++) {
        planned p = base[i];
        if (is(s->omit_tensor, &p, hf)) continue;
        if (is(s->mod_tensor, &p, hf)) {
            if (s->mod_n_dims > 0) {
                p.n_dims = (uint32_t)s->mod_n_dims;
                for (int d = 0; d < 4; d++) p.ne[d] = d < s->mod_n_dims ? s->mod_ne[d] : 1;
            }
            if (s->mod_type >= 0) p.type = (uint32_t)s->mod_type;
        }
        int copies = is(s->dup_tensor, &p, hf) ? 2 : 1;
        for (int c = 0; c < copies; c++) {
            if (n >= MW_MAX_TENSORS) abort();
            out[n] = p;
            out[n++].copy = c > 0;
        }
    }
    free(base);
    return n;
}

static uint64_t n_elements(const planned *p) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < p->n_dims; d++) n *= (uint64_t)p->ne[d];
    return n;
}

uint64_t mw_qwen2_n_params(const mw_qwen2 *s) {
    planned *list = xmalloc(MW_MAX_TENSORS * sizeof *list);
    int n = base_plan(s, list);
    uint64_t total = 0;
    for (int i = 0; i < n; i++) total += n_elements(&list[i]);
    free(list);
    return total;
}

/* ---- GGUF model ----------------------------------------------------------------------- */

typedef struct gctx {
    const mw_qwen2 *s;
    mw_buf *b;
    mw_gguf_layout *l;
    uint64_t n_kv;
} gctx;

/* Whether to write `key` (not omitted); records where it goes. */
static bool want_kv(gctx *g, const char *key) {
    if (g->s->omit_key && strcmp(g->s->omit_key, key) == 0) return false;
    if (g->l->n_kv < MW_MAX_KV) {
        mw_gguf_kv_pos *k = &g->l->kv[g->l->n_kv++];
        snprintf(k->key, sizeof k->key, "%s", key);
        k->at = g->b->len;
        k->type_at = k->at + 8 + strlen(key);
        k->value_at = k->type_at + 4;
    }
    g->n_kv++;
    return true;
}

static void arch_key(char *buf, size_t size, const mw_qwen2 *s, const char *suffix) {
    snprintf(buf, size, "%s.%s", s->arch, suffix);
}

static void write_hparams(gctx *g) {
    const mw_qwen2 *s = g->s;
    char k[128];
    const struct {
        const char *suffix;
        int64_t v;
        bool skip;
    } ints[] = {
        {"block_count", s->n_layers, false},
        {"context_length", 32768, false},
        {"embedding_length", s->n_embd, false},
        {"feed_forward_length", s->n_ff, false},
        {"attention.head_count", s->n_heads, false},
        {"attention.head_count_kv", s->n_kv_heads, s->omit_kv_heads},
        {"attention.key_length", s->head_dim, s->head_dim <= 0},
        {"attention.value_length", s->head_dim, s->head_dim <= 0},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (ints[i].skip) continue;
        arch_key(k, sizeof k, s, ints[i].suffix);
        if (want_kv(g, k)) mw_gguf_kv_int(g->b, k, MW_U32, ints[i].v);
    }
    arch_key(k, sizeof k, s, "rope.freq_base");
    if (want_kv(g, k)) mw_gguf_kv_float(g->b, k, MW_F32, 1e6);
    arch_key(k, sizeof k, s, "attention.layer_norm_rms_epsilon");
    if (want_kv(g, k)) mw_gguf_kv_float(g->b, k, MW_F32, 1e-6);
}

static void write_tokenizer(gctx *g) {
    const mw_qwen2 *s = g->s;
    if (s->n_tokens > 0) {
        if (want_kv(g, "tokenizer.ggml.model"))
            mw_gguf_kv_str(g->b, "tokenizer.ggml.model", "gpt2");
        if (want_kv(g, "tokenizer.ggml.tokens")) {
            mw_gguf_key(g->b, "tokenizer.ggml.tokens", MW_ARRAY);
            mw_gguf_array(g->b, MW_STRING, (uint64_t)s->n_tokens);
            char t[32];
            for (int32_t i = 0; i < s->n_tokens; i++) {
                snprintf(t, sizeof t, "<t%d>", (int)i);
                mw_gguf_str(g->b, t);
            }
        }
    }
    const struct {
        const char *key;
        int32_t id;
    } ids[] = {{"tokenizer.ggml.bos_token_id", s->bos_id},
               {"tokenizer.ggml.eos_token_id", s->eos_id},
               {"tokenizer.ggml.padding_token_id", s->pad_id}};
    for (size_t i = 0; i < 3; i++)
        if (ids[i].id >= 0 && want_kv(g, ids[i].key))
            mw_gguf_kv_int(g->b, ids[i].key, MW_U32, ids[i].id);
    if (s->chat_template && want_kv(g, "tokenizer.chat_template"))
        mw_gguf_kv_str(g->b, "tokenizer.chat_template", s->chat_template);
}

static void write_metadata(gctx *g) {
    const mw_qwen2 *s = g->s;
    if (want_kv(g, "general.architecture")) mw_gguf_kv_str(g->b, "general.architecture", s->arch);
    if (s->name && want_kv(g, "general.name")) mw_gguf_kv_str(g->b, "general.name", s->name);
    if (s->alignment && want_kv(g, "general.alignment"))
        mw_gguf_kv_int(g->b, "general.alignment", MW_U32, s->alignment);
    if (s->file_type >= 0 && want_kv(g, "general.file_type"))
        mw_gguf_kv_int(g->b, "general.file_type", MW_U32, s->file_type);
    write_hparams(g);
    write_tokenizer(g);
    if (s->extra_kv) {
        s->extra_kv(g->b, s->user);
        g->n_kv += (uint64_t)s->n_extra_kv;
    }
}

static uint64_t align_up(uint64_t x, uint64_t a) {
    return (x + a - 1) / a * a;
}

void mw_qwen2_gguf(const mw_qwen2 *s, mw_buf *out, mw_gguf_layout *layout) {
    mw_gguf_layout local;
    mw_gguf_layout *l = layout ? layout : &local;
    memset(l, 0, sizeof *l);
    out->len = 0;
    planned *plan = xmalloc(MW_MAX_TENSORS * sizeof *plan);
    int n = s->no_tensors ? 0 : make_plan(s, false, plan);
    const uint64_t align = s->alignment ? s->alignment : 32;

    mw_gguf_header(out, s->version, (uint64_t)n, 0);
    l->version_at = 4;
    l->n_tensors_at = 8;
    l->n_kv_at = 16;
    gctx g = {.s = s, .b = out, .l = l};
    write_metadata(&g);
    mw_patch_u64(out->data, l->n_kv_at, g.n_kv);

    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const planned *p = &plan[i];
        mw_gguf_tensor_pos *t = &l->tensors[l->n_tensors++];
        snprintf(t->name, sizeof t->name, "%s", p->gguf);
        t->info_at = out->len;
        t->n_dims_at = t->info_at + 8 + strlen(p->gguf);
        t->ne_at = t->n_dims_at + 4;
        t->type_at = t->ne_at + 8 * p->n_dims;
        t->offset_at = t->type_at + 4;
        t->n_dims = p->n_dims;
        memcpy(t->ne, p->ne, sizeof t->ne);
        t->type = p->type;
        t->offset = align_up(off, align);
        t->n_bytes = mw_type_bytes(p->type, n_elements(p));
        off = t->offset + t->n_bytes;
        mw_gguf_tensor_info(out, p->gguf, p->n_dims, p->ne, p->type, t->offset);
    }
    l->infos_end = out->len;
    mw_align(out, (size_t)align);
    l->data_start = out->len;
    for (int i = 0; i < n; i++) {
        const mw_gguf_tensor_pos *t = &l->tensors[i];
        mw_zeros(out, l->data_start + t->offset - out->len);
        reserve(out, t->n_bytes);
        mw_fill(t->type, t->name, n_elements(&plan[i]), out->data + out->len);
        out->len += t->n_bytes;
    }
    free(plan);
}

const mw_gguf_kv_pos *mw_layout_kv(const mw_gguf_layout *l, const char *key) {
    for (int i = 0; i < l->n_kv; i++)
        if (strcmp(l->kv[i].key, key) == 0) return &l->kv[i];
    return NULL;
}

const mw_gguf_tensor_pos *mw_layout_tensor(const mw_gguf_layout *l, const char *name) {
    for (int i = 0; i < l->n_tensors; i++)
        if (strcmp(l->tensors[i].name, name) == 0) return &l->tensors[i];
    return NULL;
}

/* ---- safetensors ---------------------------------------------------------------------- */

static const char *dtype_name(uint32_t type) {
    switch (type) {
    case AR_TYPE_F32: return "F32";
    case AR_TYPE_F16: return "F16";
    case AR_TYPE_BF16: return "BF16";
    default: {
        const char *n = ar_type_name((ar_type)type);
        return n ? n : "?";
    }
    }
}

static void json_set(json_t *obj, const char *key, json_t *v) {
    if (!v || json_object_set_new(obj, key, v) != 0) oom();
}

/* Header entries and packed data for plan[from, to). */
static void st_build(const planned *plan, int from, int to, json_t **header, mw_buf *data) {
    json_t *h = json_object();
    if (!h) oom();
    json_t *meta = json_object();
    if (!meta) oom();
    json_set(meta, "format", json_string("pt"));
    json_set(h, "__metadata__", meta);
    data->len = 0;
    for (int i = from; i < to; i++) {
        const planned *p = &plan[i];
        if (p->copy) {
            fprintf(stderr,
                    "model_writer: a JSON header cannot hold '%s' twice; duplicate it "
                    "across shards (mw_qwen2_st_dir) or write the header by hand\n",
                    p->hf);
            abort();
        }
        uint64_t n = n_elements(p);
        uint64_t bytes = mw_type_bytes(p->type, n);
        json_t *shape = json_array();
        if (!shape) oom();
        for (int d = (int)p->n_dims - 1; d >= 0; d--)
            if (json_array_append_new(shape, json_integer(p->ne[d])) != 0) oom();
        json_t *e = json_object();
        if (!e) oom();
        json_set(e, "dtype", json_string(dtype_name(p->type)));
        json_set(e, "shape", shape);
        json_set(e, "data_offsets",
                 json_pack("[II]", (json_int_t)data->len, (json_int_t)(data->len + bytes)));
        json_set(h, p->hf, e);
        reserve(data, bytes);
        mw_fill(p->type, p->hf, n, data->data + data->len);
        data->len += bytes;
    }
    *header = h;
}

void mw_qwen2_st_parts(const mw_qwen2 *s, json_t **header, mw_buf *data) {
    planned *plan = xmalloc(MW_MAX_TENSORS * sizeof *plan);
    int n = make_plan(s, true, plan);
    st_build(plan, 0, n, header, data);
    free(plan);
}

void mw_st_assemble(const char *header, size_t header_len, const void *data, size_t data_len,
                    size_t align, mw_buf *out) {
    size_t pad = 0;
    if (align > 1 && (8 + header_len) % align) pad = align - (8 + header_len) % align;
    out->len = 0;
    mw_u64(out, header_len + pad);
    mw_bytes(out, header, header_len);
    for (size_t i = 0; i < pad; i++) mw_u8(out, ' ');
    mw_bytes(out, data, data_len);
}

void mw_st_from_json(const json_t *header, const mw_buf *data, mw_buf *out) {
    char *text = json_dumps(header, JSON_COMPACT);
    if (!text) oom();
    mw_st_assemble(text, strlen(text), data->data, data->len, 8, out);
    free(text);
}

char *mw_qwen2_config(const mw_qwen2 *s) {
    json_t *c =
        json_pack("{s:[s],s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:s,s:b,s:i,s:i}", "architectures",
                  "Qwen2ForCausalLM", "model_type", s->arch, "hidden_size", (int)s->n_embd,
                  "intermediate_size", (int)s->n_ff, "num_hidden_layers", (int)s->n_layers,
                  "num_attention_heads", (int)s->n_heads, "vocab_size", (int)s->n_vocab,
                  "max_position_embeddings", 32768, "rope_theta", 1e6, "rms_norm_eps", 1e-6,
                  "hidden_act", "silu", "tie_word_embeddings", (int)s->tied, "bos_token_id",
                  (int)(s->n_vocab - 1), "eos_token_id", (int)(s->n_vocab - 2));
    if (!c) oom();
    if (!s->omit_kv_heads) json_set(c, "num_key_value_heads", json_integer(s->n_kv_heads));
    if (s->head_dim > 0) json_set(c, "head_dim", json_integer(s->head_dim));
    if (s->config_omit) json_object_del(c, s->config_omit);
    if (s->config_merge) {
        json_error_t e;
        json_t *m = json_loads(s->config_merge, 0, &e);
        if (!m || json_object_update(c, m) != 0) {
            fprintf(stderr, "model_writer: bad config_merge: %s\n", e.text);
            abort();
        }
        json_decref(m);
    }
    char *text = json_dumps(c, JSON_INDENT(2));
    json_decref(c);
    if (!text) oom();
    return text;
}

void mw_qwen2_st(const mw_qwen2 *s, mw_buf *file, char **config_json) {
    json_t *h;
    mw_buf data = {0};
    mw_qwen2_st_parts(s, &h, &data);
    mw_st_from_json(h, &data, file);
    json_decref(h);
    mw_free(&data);
    if (config_json) *config_json = mw_qwen2_config(s);
}

const char *mw_shard_name(int k, int n) {
    static char buf[64];
    snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", k + 1, n);
    return buf;
}

char *mw_qwen2_st_dir(const mw_qwen2 *s, const char *name, int n_shards,
                      void (*edit_index)(json_t *weight_map, void *user), void *user) {
    char *dir = mw_temp_subdir(name);
    char *cfg = mw_qwen2_config(s);
    free(mw_write_text(dir, "config.json", cfg));
    free(cfg);
    planned *plan = xmalloc(MW_MAX_TENSORS * sizeof *plan);
    int n = make_plan(s, true, plan);
    mw_buf data = {0}, file = {0};
    json_t *h;
    if (n_shards <= 0) {
        st_build(plan, 0, n, &h, &data);
        mw_st_from_json(h, &data, &file);
        json_decref(h);
        free(mw_write_file(dir, "model.safetensors", file.data, file.len));
    } else {
        json_t *map = json_object();
        if (!map) oom();
        uint64_t total = 0;
        /* Consecutive runs of the originals; a duplicate's copy goes to the last shard. */
        planned *orig = xmalloc(MW_MAX_TENSORS * sizeof *orig),
                *copies = xmalloc(MW_MAX_TENSORS * sizeof *copies);
        int n_orig = 0, n_copies = 0;
        for (int i = 0; i < n; i++) {
            if (plan[i].copy)
                copies[n_copies++] = plan[i];
            else
                orig[n_orig++] = plan[i];
        }
        for (int k = 0; k < n_shards; k++) {
            int from = (int)((int64_t)n_orig * k / n_shards);
            int to = (int)((int64_t)n_orig * (k + 1) / n_shards);
            planned *part = xmalloc(MW_MAX_TENSORS * sizeof *part);
            int n_part = 0;
            for (int i = from; i < to; i++) part[n_part++] = orig[i];
            if (k == n_shards - 1)
                for (int i = 0; i < n_copies; i++) {
                    part[n_part] = copies[i];
                    part[n_part++].copy = false;
                }
            st_build(part, 0, n_part, &h, &data);
            mw_st_from_json(h, &data, &file);
            json_decref(h);
            total += data.len;
            const char *shard = mw_shard_name(k, n_shards);
            free(mw_write_file(dir, shard, file.data, file.len));
            for (int i = from; i < to; i++) json_set(map, orig[i].hf, json_string(shard));
            free(part);
        }
        free(orig);
        free(copies);
        if (edit_index) edit_index(map, user);
        json_t *index = json_pack("{s:{s:I},s:o}", "metadata", "total_size", (json_int_t)total,
                                  "weight_map", map);
        if (!index) oom();
        char *text = json_dumps(index, JSON_INDENT(2));
        json_decref(index);
        if (!text) oom();
        free(mw_write_text(dir, "model.safetensors.index.json", text));
        free(text);
    }
    mw_free(&data);
    mw_free(&file);
    free(plan);
    return dir;
}

/* ---- files ------------------------------------------------------------------------------ */

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

char *mw_temp_subdir(const char *name) {
    const char *base = ar_test_temp_dir();
    if (!base) {
        fprintf(stderr, "model_writer: no temporary directory\n");
        abort();
    }
    char *dir = join(base, name);
    if (mkdir(dir, 0700) != 0) {
        if (errno != EEXIST) {
            fprintf(stderr, "model_writer: mkdir %s: %s\n", dir, strerror(errno));
            abort();
        }
        /* Reused name: empty it (the builders only write plain files). */
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char *p = join(dir, e->d_name);
            unlink(p);
            free(p);
        }
        if (d) closedir(d);
    }
    return dir;
}

char *mw_write_file(const char *dir, const char *name, const void *data, size_t len) {
    char *path = join(dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "model_writer: cannot write %s\n", path);
        abort();
    }
    return path;
}

char *mw_write_text(const char *dir, const char *name, const char *text) {
    return mw_write_file(dir, name, text, strlen(text));
}
