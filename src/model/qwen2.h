/*
 * qwen2.h - the Qwen2 architecture: hyper-parameters and the set of weights the forward
 * pass reads, bound from either GGUF (llama.cpp names) or Hugging Face (transformers names).
 *
 * Weights per layer (shapes innermost first; E = n_embd, H = n_heads * head_dim,
 * K = n_kv_heads * head_dim, F = n_ff):
 *
 *     role         GGUF                 Hugging Face                         shape
 *     attn_norm    blk.N.attn_norm      model.layers.N.input_layernorm       [E]
 *     wq, bq       blk.N.attn_q         model.layers.N.self_attn.q_proj      [E, H], [H]
 *     wk, bk       blk.N.attn_k         model.layers.N.self_attn.k_proj      [E, K], [K]
 *     wv, bv       blk.N.attn_v         model.layers.N.self_attn.v_proj      [E, K], [K]
 *     wo           blk.N.attn_output    model.layers.N.self_attn.o_proj      [H, E]
 *     ffn_norm     blk.N.ffn_norm       model.layers.N.post_attention_layernorm [E]
 *     w_gate, w_up blk.N.ffn_gate/up    model.layers.N.mlp.gate_proj/up_proj [E, F]
 *     w_down       blk.N.ffn_down       model.layers.N.mlp.down_proj         [F, E]
 *
 * plus token_embd / model.embed_tokens [E, V], output_norm / model.norm [E] and
 * output / lm_head [E, V] (absent when the embeddings are tied). ".weight" / ".bias"
 * suffixes as usual. Vectors (norms, biases) must be F32, F16 or BF16; matrices may be any
 * supported type.
 */
#ifndef AR_MODEL_QWEN2_H
#define AR_MODEL_QWEN2_H

#include "base/err.h"
#include "model/gguf.h"
#include "model/tensor.h"

#include <jansson.h>
#include <stdbool.h>

typedef struct ar_qwen2_hparams {
    int32_t n_layers;
    int32_t n_heads;
    int32_t n_kv_heads;
    int32_t head_dim;
    int32_t n_embd;
    int32_t n_ff;
    int32_t n_vocab; /* rows of the token embedding */
    int32_t n_ctx_train;
    float rope_theta;
    float rms_eps;
    bool tied; /* lm_head = token embedding */
} ar_qwen2_hparams;

typedef struct ar_qwen2_layer {
    const ar_tensor *attn_norm;
    const ar_tensor *wq, *bq, *wk, *bk, *wv, *bv, *wo;
    const ar_tensor *ffn_norm;
    const ar_tensor *w_gate, *w_up, *w_down;
} ar_qwen2_layer;

typedef struct ar_qwen2_weights {
    const ar_tensor *tok_embd;
    const ar_tensor *output_norm;
    const ar_tensor *output; /* == tok_embd when tied */
    ar_qwen2_layer *layers;  /* n_layers, owned */
} ar_qwen2_weights;

typedef enum ar_naming { AR_NAMING_GGUF, AR_NAMING_HF } ar_naming;

/* Looks a tensor up by name; NULL when absent. */
typedef const ar_tensor *(*ar_tensor_lookup_fn)(const void *ctx, const char *name);

/* Hyper-parameters from GGUF "<arch>.*" keys (arch must be qwen2). n_vocab is set when the
 * weights are bound. */
ar_status ar_qwen2_hparams_from_gguf(const ar_gguf *g, ar_qwen2_hparams *hp, ar_err *err);

/* Hyper-parameters from a parsed config.json. */
ar_status ar_qwen2_hparams_from_config(json_t *cfg, ar_qwen2_hparams *hp, ar_err *err);

/* Find and check every tensor the forward pass needs. For GGUF, hp->tied and hp->n_vocab are
 * derived from the tensors; for HF they are checked against them. On failure w is empty. */
ar_status ar_qwen2_bind(ar_qwen2_hparams *hp, ar_naming naming, ar_tensor_lookup_fn lookup,
                        const void *ctx, ar_qwen2_weights *w, ar_err *err);

void ar_qwen2_weights_free(ar_qwen2_weights *w);

/* Visit every distinct weight tensor the model uses (tied output once). */
void ar_qwen2_for_each(const ar_qwen2_hparams *hp, const ar_qwen2_weights *w,
                       void (*fn)(const ar_tensor *t, void *user), void *user);

#endif
