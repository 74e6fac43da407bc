/*
 * qwen2.c - Qwen2 hyper-parameters and weight binding (naming table in qwen2.h).
 *
 * Both file formats go through the same table of roles: each role knows its GGUF and
 * Hugging Face name, whether it is a vector or a matrix, and its expected shape as a
 * function of the hyper-parameters. Binding looks every role up, checks rank, shape and
 * type, and stores the pointer, so the forward pass never meets a surprise.
 */
#include "model/qwen2.h"

#include "kernels/types.h"

#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Generous bounds: far above any Qwen2 model, low enough that products stay in range. */
#define MAX_LAYERS   4096
#define MAX_EMBD     (1 << 18)
#define MAX_HEADS    4096
#define MAX_HEAD_DIM 4096
#define MAX_FF       (1 << 20)
#define MAX_VOCAB    (1 << 24)

/* ---- hyper-parameters ----------------------------------------------------------------- */

static ar_status check_range(const char *key, int64_t v, int64_t lo, int64_t hi, int32_t *out,
                             ar_err *err) {
    if (v < lo || v > hi)
        return ar_errf(err, AR_ERR_MODEL,
                       "%s = %" PRId64 " is out of range (%" PRId64 "..%" PRId64 ")", key, v, lo,
                       hi);
    *out = (int32_t)v;
    return AR_OK;
}

/* Shared consistency checks once all fields are read; `src` names where they came from. */
static ar_status check_hparams(ar_qwen2_hparams *hp, int64_t head_dim, const char *src,
                               ar_err *err) {
    if (hp->n_kv_heads > hp->n_heads || hp->n_heads % hp->n_kv_heads != 0)
        return ar_errf(err, AR_ERR_MODEL,
                       "%s: %" PRId32 " attention heads is not a multiple of %" PRId32
                       " key/value heads",
                       src, hp->n_heads, hp->n_kv_heads);
    if (head_dim <= 0) {
        if (hp->n_embd % hp->n_heads != 0)
            return ar_errf(err, AR_ERR_MODEL,
                           "%s: embedding size %" PRId32 " is not a multiple of %" PRId32 " heads",
                           src, hp->n_embd, hp->n_heads);
        head_dim = hp->n_embd / hp->n_heads;
    }
    if (head_dim % 2 != 0 || head_dim > MAX_HEAD_DIM)
        return ar_errf(err, AR_ERR_MODEL,
                       "%s: head dimension %" PRId64 " must be even and at most %d", src, head_dim,
                       MAX_HEAD_DIM);
    hp->head_dim = (int32_t)head_dim;
    if (!(hp->rope_theta > 0) || !isfinite(hp->rope_theta))
        return ar_errf(err, AR_ERR_MODEL, "%s: rope theta %g must be positive", src,
                       (double)hp->rope_theta);
    if (!(hp->rms_eps > 0) || !(hp->rms_eps < 1))
        return ar_errf(err, AR_ERR_MODEL, "%s: RMS norm epsilon %g must be in (0, 1)", src,
                       (double)hp->rms_eps);
    return AR_OK;
}

/* A required (or, with def >= 0, optional) integer GGUF key in range. */
static ar_status gguf_int(const ar_gguf *g, const char *key, int64_t def, int64_t lo, int64_t hi,
                          int32_t *out, ar_err *err) {
    int64_t v;
    ar_status rc = ar_gguf_get_int(g, key, &v, err);
    if (rc == AR_ERR_NOT_FOUND) {
        if (def < 0) return ar_errf(err, AR_ERR_MODEL, "missing metadata key '%s'", key);
        v = def;
    } else if (rc != AR_OK) {
        return rc;
    }
    return check_range(key, v, lo, hi, out, err);
}

static ar_status gguf_float(const ar_gguf *g, const char *key, double def, float *out,
                            ar_err *err) {
    double v;
    ar_status rc = ar_gguf_get_float(g, key, &v, err);
    if (rc == AR_ERR_NOT_FOUND) {
        if (isnan(def)) return ar_errf(err, AR_ERR_MODEL, "missing metadata key '%s'", key);
        v = def;
    } else if (rc != AR_OK) {
        return rc;
    }
    *out = (float)v;
    return AR_OK;
}

ar_status ar_qwen2_hparams_from_gguf(const ar_gguf *g, ar_qwen2_hparams *hp, ar_err *err) {
    memset(hp, 0, sizeof *hp);
    const char *arch;
    uint64_t len;
    ar_status rc = ar_gguf_get_str(g, "general.architecture", &arch, &len, err);
    if (rc == AR_ERR_NOT_FOUND)
        return ar_errf(err, AR_ERR_FORMAT, "missing metadata key 'general.architecture'");
    if (rc != AR_OK) return rc;
    if (len != 5 || memcmp(arch, "qwen2", 5) != 0)
        return ar_errf(err, AR_ERR_UNSUPPORTED,
                       "unsupported architecture '%.*s' (archrouter runs qwen2 models)",
                       (int)(len < 64 ? len : 64), arch);
    int32_t n_ctx = -1, key_len = -1, val_len = -1;
    if (rc == AR_OK) rc = gguf_int(g, "qwen2.block_count", -1, 1, MAX_LAYERS, &hp->n_layers, err);
    if (rc == AR_OK) rc = gguf_int(g, "qwen2.embedding_length", -1, 1, MAX_EMBD, &hp->n_embd, err);
    if (rc == AR_OK) rc = gguf_int(g, "qwen2.feed_forward_length", -1, 1, MAX_FF, &hp->n_ff, err);
    if (rc == AR_OK)
        rc = gguf_int(g, "qwen2.attention.head_count", -1, 1, MAX_HEADS, &hp->n_heads, err);
    if (rc == AR_OK)
        rc = gguf_int(g, "qwen2.attention.head_count_kv", hp->n_heads, 1, MAX_HEADS,
                      &hp->n_kv_heads, err);
    if (rc == AR_OK) rc = gguf_int(g, "qwen2.context_length", 0, 0, INT32_MAX, &n_ctx, err);
    if (rc == AR_OK)
        rc = gguf_int(g, "qwen2.attention.key_length", 0, 0, MAX_HEAD_DIM, &key_len, err);
    if (rc == AR_OK)
        rc = gguf_int(g, "qwen2.attention.value_length", 0, 0, MAX_HEAD_DIM, &val_len, err);
    if (rc == AR_OK) rc = gguf_float(g, "qwen2.rope.freq_base", 10000.0, &hp->rope_theta, err);
    if (rc == AR_OK)
        rc = gguf_float(g, "qwen2.attention.layer_norm_rms_epsilon", NAN, &hp->rms_eps, err);
    if (rc != AR_OK) return rc;
    if (val_len > 0 && val_len != (key_len > 0 ? key_len : val_len))
        return ar_errf(err, AR_ERR_UNSUPPORTED,
                       "qwen2.attention.value_length %" PRId32 " differs from key_length %" PRId32,
                       val_len, key_len);
    if (key_len <= 0 && val_len > 0) key_len = val_len;
    hp->n_ctx_train = n_ctx > 0 ? n_ctx : -1;
    hp->n_vocab = -1;
    return check_hparams(hp, key_len, "GGUF", err);
}

/* ---- config.json ---------------------------------------------------------------------- */

static ar_status cfg_int(json_t *cfg, const char *key, int64_t def, int64_t lo, int64_t hi,
                         int32_t *out, ar_err *err) {
    json_t *v = json_object_get(cfg, key);
    int64_t x = def;
    if (!v || json_is_null(v)) {
        if (def < 0) return ar_errf(err, AR_ERR_MODEL, "config.json: missing \"%s\"", key);
    } else if (!json_is_integer(v)) {
        return ar_errf(err, AR_ERR_MODEL, "config.json: \"%s\" must be an integer", key);
    } else {
        x = json_integer_value(v);
    }
    char name[96];
    snprintf(name, sizeof name, "config.json: %s", key);
    return check_range(name, x, lo, hi, out, err);
}

static ar_status cfg_float(json_t *cfg, const char *key, double def, float *out, ar_err *err) {
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v)) {
        *out = (float)def;
        return AR_OK;
    }
    if (!json_is_number(v))
        return ar_errf(err, AR_ERR_MODEL, "config.json: \"%s\" must be a number", key);
    *out = (float)json_number_value(v);
    return AR_OK;
}

/* Settings that change the computation in ways the engine does not implement. */
static ar_status cfg_unsupported(json_t *cfg, ar_err *err) {
    json_t *act = json_object_get(cfg, "hidden_act");
    if (act && (!json_is_string(act) || strcmp(json_string_value(act), "silu") != 0))
        return ar_errf(err, AR_ERR_UNSUPPORTED,
                       "config.json: hidden_act must be \"silu\" for qwen2");
    json_t *rs = json_object_get(cfg, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        json_t *t = json_object_get(rs, "rope_type");
        if (!t) t = json_object_get(rs, "type");
        const char *name = json_is_string(t) ? json_string_value(t) : "?";
        if (strcmp(name, "default") != 0)
            return ar_errf(err, AR_ERR_UNSUPPORTED,
                           "config.json: rope_scaling type \"%.40s\" is not supported", name);
    }
    json_t *sw = json_object_get(cfg, "use_sliding_window");
    if (json_is_true(sw))
        return ar_errf(err, AR_ERR_UNSUPPORTED,
                       "config.json: use_sliding_window = true is not supported");
    return AR_OK;
}

ar_status ar_qwen2_hparams_from_config(json_t *cfg, ar_qwen2_hparams *hp, ar_err *err) {
    memset(hp, 0, sizeof *hp);
    json_t *mt = json_object_get(cfg, "model_type");
    if (!json_is_string(mt))
        return ar_errf(err, AR_ERR_FORMAT, "config.json: \"model_type\" missing or not a string");
    if (strcmp(json_string_value(mt), "qwen2") != 0)
        return ar_errf(err, AR_ERR_UNSUPPORTED,
                       "unsupported architecture '%.64s' (config.json model_type; archrouter "
                       "runs qwen2 models)",
                       json_string_value(mt));
    int32_t head_dim = 0, n_ctx = 0;
    ar_status rc = cfg_unsupported(cfg, err);
    if (rc == AR_OK) rc = cfg_int(cfg, "num_hidden_layers", -1, 1, MAX_LAYERS, &hp->n_layers, err);
    if (rc == AR_OK) rc = cfg_int(cfg, "hidden_size", -1, 1, MAX_EMBD, &hp->n_embd, err);
    if (rc == AR_OK) rc = cfg_int(cfg, "intermediate_size", -1, 1, MAX_FF, &hp->n_ff, err);
    if (rc == AR_OK) rc = cfg_int(cfg, "num_attention_heads", -1, 1, MAX_HEADS, &hp->n_heads, err);
    if (rc == AR_OK)
        rc = cfg_int(cfg, "num_key_value_heads", hp->n_heads, 1, MAX_HEADS, &hp->n_kv_heads, err);
    if (rc == AR_OK) rc = cfg_int(cfg, "vocab_size", -1, 1, MAX_VOCAB, &hp->n_vocab, err);
    if (rc == AR_OK) rc = cfg_int(cfg, "head_dim", 0, 0, MAX_HEAD_DIM, &head_dim, err);
    if (rc == AR_OK) rc = cfg_int(cfg, "max_position_embeddings", 0, 0, INT32_MAX, &n_ctx, err);
    if (rc == AR_OK) rc = cfg_float(cfg, "rope_theta", 10000.0, &hp->rope_theta, err);
    if (rc == AR_OK) rc = cfg_float(cfg, "rms_norm_eps", 1e-6, &hp->rms_eps, err);
    if (rc != AR_OK) return rc;
    json_t *tie = json_object_get(cfg, "tie_word_embeddings");
    if (tie && !json_is_boolean(tie))
        return ar_errf(err, AR_ERR_MODEL, "config.json: \"tie_word_embeddings\" must be a bool");
    hp->tied = json_is_true(tie); /* Qwen2Config's default is false */
    hp->n_ctx_train = n_ctx > 0 ? n_ctx : -1;
    return check_hparams(hp, head_dim, "config.json", err);
}

/* ---- weights -------------------------------------------------------------------------- */

enum dim { D_1, D_EMBD, D_Q, D_KV, D_FF, D_VOCAB };

typedef struct role {
    const char *gguf, *hf; /* printf formats taking the layer index */
    size_t field;          /* offset in ar_qwen2_layer, or in ar_qwen2_weights */
    enum dim ne0, ne1;     /* ne1 == D_1 for vectors */
} role;

static const role layer_roles[] = {
    {"blk.%d.attn_norm.weight", "model.layers.%d.input_layernorm.weight",
     offsetof(ar_qwen2_layer, attn_norm), D_EMBD, D_1},
    {"blk.%d.attn_q.weight", "model.layers.%d.self_attn.q_proj.weight",
     offsetof(ar_qwen2_layer, wq), D_EMBD, D_Q},
    {"blk.%d.attn_q.bias", "model.layers.%d.self_attn.q_proj.bias", offsetof(ar_qwen2_layer, bq),
     D_Q, D_1},
    {"blk.%d.attn_k.weight", "model.layers.%d.self_attn.k_proj.weight",
     offsetof(ar_qwen2_layer, wk), D_EMBD, D_KV},
    {"blk.%d.attn_k.bias", "model.layers.%d.self_attn.k_proj.bias", offsetof(ar_qwen2_layer, bk),
     D_KV, D_1},
    {"blk.%d.attn_v.weight", "model.layers.%d.self_attn.v_proj.weight",
     offsetof(ar_qwen2_layer, wv), D_EMBD, D_KV},
    {"blk.%d.attn_v.bias", "model.layers.%d.self_attn.v_proj.bias", offsetof(ar_qwen2_layer, bv),
     D_KV, D_1},
    {"blk.%d.attn_output.weight", "model.layers.%d.self_attn.o_proj.weight",
     offsetof(ar_qwen2_layer, wo), D_Q, D_EMBD},
    {"blk.%d.ffn_norm.weight", "model.layers.%d.post_attention_layernorm.weight",
     offsetof(ar_qwen2_layer, ffn_norm), D_EMBD, D_1},
    {"blk.%d.ffn_gate.weight", "model.layers.%d.mlp.gate_proj.weight",
     offsetof(ar_qwen2_layer, w_gate), D_EMBD, D_FF},
    {"blk.%d.ffn_up.weight", "model.layers.%d.mlp.up_proj.weight", offsetof(ar_qwen2_layer, w_up),
     D_EMBD, D_FF},
    {"blk.%d.ffn_down.weight", "model.layers.%d.mlp.down_proj.weight",
     offsetof(ar_qwen2_layer, w_down), D_FF, D_EMBD},
};

static const role tok_embd_role = {"token_embd.weight", "model.embed_tokens.weight",
                                   offsetof(ar_qwen2_weights, tok_embd), D_EMBD, D_VOCAB};
static const role output_norm_role = {"output_norm.weight", "model.norm.weight",
                                      offsetof(ar_qwen2_weights, output_norm), D_EMBD, D_1};
static const role output_role = {"output.weight", "lm_head.weight",
                                 offsetof(ar_qwen2_weights, output), D_EMBD, D_VOCAB};

static int64_t dim_size(const ar_qwen2_hparams *hp, enum dim d) {
    switch (d) {
    case D_1: return 1;
    case D_EMBD: return hp->n_embd;
    case D_Q: return (int64_t)hp->n_heads * hp->head_dim;
    case D_KV: return (int64_t)hp->n_kv_heads * hp->head_dim;
    case D_FF: return hp->n_ff;
    case D_VOCAB: return hp->n_vocab;
    }
    return -1;
}

typedef struct binder {
    ar_qwen2_hparams *hp;
    ar_naming naming;
    ar_tensor_lookup_fn lookup;
    const void *ctx;
    ar_err *err;
} binder;

static const ar_tensor *find(binder *b, const role *r, int layer, char *name, size_t size) {
    snprintf(name, size, b->naming == AR_NAMING_GGUF ? r->gguf : r->hf, layer);
    return b->lookup(b->ctx, name);
}

/* "[a, b]" in the naming's own order: GGUF innermost first, Hugging Face outermost first. */
static void shape_text(char *buf, size_t size, int n_dims, const int64_t *ne, ar_naming naming) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n_dims && len < size; i++) {
        int d = naming == AR_NAMING_HF ? n_dims - 1 - i : i;
        int n = snprintf(buf + len, size - len, "%s%" PRId64, i ? ", " : "[", ne[d]);
        if (n < 0) return;
        len += (size_t)n;
    }
    if (len < size) snprintf(buf + len, size - len, "]");
}

/* Check rank, shape and type of a found tensor against its role. */
static ar_status check(binder *b, const role *r, const char *name, const ar_tensor *t) {
    bool vec = r->ne1 == D_1;
    int64_t want[2] = {dim_size(b->hp, r->ne0), dim_size(b->hp, r->ne1)};
    if (t->n_dims != (vec ? 1 : 2) || t->ne[0] != want[0] || t->ne[1] != want[1]) {
        char have_s[96], want_s[64];
        shape_text(have_s, sizeof have_s, t->n_dims, t->ne, b->naming);
        shape_text(want_s, sizeof want_s, vec ? 1 : 2, want, b->naming);
        return ar_errf(b->err, AR_ERR_MODEL, "tensor '%s' has shape %s, expected %s", name, have_s,
                       want_s);
    }
    if (vec && t->type != AR_TYPE_F32 && t->type != AR_TYPE_F16 && t->type != AR_TYPE_BF16)
        return ar_errf(b->err, AR_ERR_MODEL,
                       "tensor '%s' has type %s; norms and biases must be F32, F16 or BF16", name,
                       ar_type_name((ar_type)t->type));
    return AR_OK;
}

static ar_status bind_role(binder *b, const role *r, int layer, void *base) {
    char name[128];
    const ar_tensor *t = find(b, r, layer, name, sizeof name);
    if (!t) return ar_errf(b->err, AR_ERR_MODEL, "missing tensor '%s'", name);
    ar_status rc = check(b, r, name, t);
    if (rc == AR_OK) memcpy((char *)base + r->field, &t, sizeof t);
    return rc;
}

/* The token embedding fixes (GGUF) or confirms (HF) the vocabulary size. */
static ar_status bind_embeddings(binder *b, ar_qwen2_weights *w) {
    char name[128];
    const ar_tensor *t = find(b, &tok_embd_role, 0, name, sizeof name);
    if (!t) return ar_errf(b->err, AR_ERR_MODEL, "missing tensor '%s'", name);
    if (b->hp->n_vocab < 0) {
        if (t->n_dims != 2 || t->ne[1] < 1 || t->ne[1] > MAX_VOCAB)
            return ar_errf(b->err, AR_ERR_MODEL,
                           "tensor '%s' must be a matrix [n_embd, n_vocab] with at most %d rows",
                           name, MAX_VOCAB);
        b->hp->n_vocab = (int32_t)t->ne[1];
    }
    ar_status rc = bind_role(b, &tok_embd_role, 0, w);
    if (rc == AR_OK) rc = bind_role(b, &output_norm_role, 0, w);
    if (rc != AR_OK) return rc;
    const ar_tensor *out = find(b, &output_role, 0, name, sizeof name);
    if (b->naming == AR_NAMING_GGUF) b->hp->tied = out == NULL;
    if (b->hp->tied) {
        w->output = w->tok_embd;
        return AR_OK;
    }
    if (!out)
        return ar_errf(b->err, AR_ERR_MODEL,
                       "missing tensor '%s' (config.json says the embeddings are not tied)", name);
    return bind_role(b, &output_role, 0, w);
}

ar_status ar_qwen2_bind(ar_qwen2_hparams *hp, ar_naming naming, ar_tensor_lookup_fn lookup,
                        const void *ctx, ar_qwen2_weights *w, ar_err *err) {
    memset(w, 0, sizeof *w);
    binder b = {.hp = hp, .naming = naming, .lookup = lookup, .ctx = ctx, .err = err};
    ar_status rc = bind_embeddings(&b, w);
    if (rc != AR_OK) return rc;
    w->layers = calloc((size_t)hp->n_layers, sizeof *w->layers);
    if (!w->layers) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    for (int l = 0; l < hp->n_layers && rc == AR_OK; l++)
        for (size_t i = 0; i < sizeof layer_roles / sizeof layer_roles[0] && rc == AR_OK; i++)
            rc = bind_role(&b, &layer_roles[i], l, &w->layers[l]);
    if (rc != AR_OK) ar_qwen2_weights_free(w);
    return rc;
}

void ar_qwen2_weights_free(ar_qwen2_weights *w) {
    free(w->layers);
    memset(w, 0, sizeof *w);
}

void ar_qwen2_for_each(const ar_qwen2_hparams *hp, const ar_qwen2_weights *w,
                       void (*fn)(const ar_tensor *t, void *user), void *user) {
    if (!w->layers) return;
    fn(w->tok_embd, user);
    fn(w->output_norm, user);
    if (w->output != w->tok_embd) fn(w->output, user);
    for (int l = 0; l < hp->n_layers; l++)
        for (size_t i = 0; i < sizeof layer_roles / sizeof layer_roles[0]; i++) {
            const ar_tensor *t;
            memcpy(&t, (const char *)&w->layers[l] + layer_roles[i].field, sizeof t);
            fn(t, user);
        }
}
