/*
 * engine.h - the inside of ar_engine (shared by sequences) and ar_seq (one sequence).
 *
 * The engine is read-only while sequences run, except for its thread pool, which one
 * evaluation at a time holds (eval_lock). A sequence owns its KV cache and the scratch
 * buffers of one forward chunk, sized once when it is created:
 *
 *     KV cache, per layer: K [n_ctx][n_kv_heads * head_dim], then V likewise (F32 or F16)
 *     activations: x, xn [n_batch][n_embd]; q, att [n_batch][n_heads * head_dim];
 *                  k, v [n_batch][n_kv_heads * head_dim]; gate, up [n_batch][n_ff]
 *     quantized activations and their rounding errors: a row of the largest kind each, per
 *                  token; the lane form's rows and their GEMM layouts likewise
 *     per thread: AR_ROW_BLOCK weight rows as floats (or packed), attention scores
 *                 [heads per KV head][n_ctx], a head row, cache slots [n_ctx]
 */
#ifndef AR_ENGINE_ENGINE_H
#define AR_ENGINE_ENGINE_H

#include "archrouter.h"
#include "base/err.h"
#include "engine/pool.h"
#include "kernels/kernels.h"
#include "model/model.h"

#include <pthread.h>

/* Norm weights and biases of one layer as float32 (converted once from F16/BF16). */
typedef struct ar_layer_vecs {
    const float *attn_norm, *bq, *bk, *bv, *ffn_norm;
} ar_layer_vecs;

struct ar_engine {
    ar_err err;
    bool failed;
    ar_engine_params params;
    const ar_model *model;
    const ar_qwen2_hparams *hp;
    const ar_qwen2_weights *w;
    ar_kernels k;
    ar_pool *pool;
    pthread_mutex_t eval_lock; /* one evaluation at a time uses the pool */
    bool lock_ready;

    float *vec_pool; /* storage of the float32 vectors below */
    ar_layer_vecs *layers;
    const float *out_norm;
    float *rope_inv_freq; /* head_dim / 2 inverse frequencies */

    /* The engine's copy of the weight matrices (weights.c): when it made one, w points at
     * own_w, a copy of the model's table whose matrices are the tensors in own_tensors
     * (in 2 MB pages at own_data, own_len bytes mapped), n_lanes of them
     * repacked into 16-bit lanes (AR_TYPE_L16). */
    ar_qwen2_weights own_w;
    ar_qwen2_layer *own_layers;
    ar_tensor *own_tensors;
    uint8_t *own_data;
    size_t own_len;
    int n_lanes;

    size_t max_k;       /* longest activation row of any product: max(n_embd, n_ff, q dim) */
    size_t max_act_row; /* bytes of the largest quantized activation row */
};

struct ar_seq {
    ar_err err;
    bool failed;
    ar_engine *e;
    ar_seq_params p;
    int32_t n_past;

    size_t kv_elem; /* 4 or 2 bytes */
    size_t kv_dim;  /* n_kv_heads * head_dim */
    uint8_t *kv;    /* n_layers * 2 * n_ctx * kv_dim elements */

    float *x, *xn, *q, *k, *v, *att, *gate, *up;
    /* Quantized activations per format: Q8A and Q8K (2 * n_batch rows of e->max_act_row
     * bytes: per token its row, then in the accurate precision its rounding error's), and
     * Q16K and Q16A (n_batch rows each, 64-byte aligned). */
    uint8_t *xq_a, *xq_k, *xq_16, *xq_16a;
    /* the fast precision's lane form: ar_block_a8 rows, and their GEMM layouts (ar_block_x8)
     * for 32- and 16-element lanes */
    uint8_t *xq_8, *xq_8x[2];
    /* 16-bit lane activations (ar_block_xl16 groups; only when the engine packed weights) */
    uint8_t *xq_l16;
    float *scratch; /* per-thread scratch, scratch_stride floats each */
    size_t scratch_stride;

    /* A tree evaluation in progress (ar_seq_eval_tree), else NULL: per chunk token its
     * parent in the chunk (-1: the sequence's end) and its depth; tree_chain holds n_batch
     * ints per thread (a token's ancestors, root first). */
    const int32_t *tree_parent;
    int32_t *tree_depth, *tree_chain;
};

/* Copy the weight matrices into the engine's memory in 2 MB pages (unless params.in_place or
 * the system has no transparent huge pages), the F16/BF16 ones into 16-bit lanes in the fast
 * precision (weights.c). AR_OK with nothing done when nothing is to be copied. */
ar_status ar_engine_own_weights(ar_engine *e);
void ar_engine_free_own_weights(ar_engine *e);

/* Weight rows a matmul thread takes at a time (engine.c sizes the scratch for them). */
#define AR_ROW_BLOCK 8

/* The K or V rows of layer l (kind 0 = K, 1 = V), position 0. */
static inline uint8_t *ar_kv_rows(const ar_seq *s, int l, int kind) {
    return s->kv + ((size_t)(2 * l + kind) * (size_t)s->p.n_ctx * s->kv_dim) * s->kv_elem;
}

/* y[t][0..N) = W x[t] (+ bias) for n_tok tokens: W is an N x K weight tensor; x rows are
 * ldx floats apart, y rows ldy floats apart. Uses the engine's kernels and threads. */
void ar_matmul(ar_seq *s, const ar_tensor *w, const float *x, int n_tok, int64_t ldx, float *y,
               int64_t ldy, const float *bias);

/* One output of ar_matmul_multi: y = W x (+ bias). */
typedef struct ar_mm_out {
    const ar_tensor *w;
    float *y;
    int64_t ldy;
    const float *bias;
} ar_mm_out;

/* Several products of the same input (all W with the same K): the input is quantized once
 * per format and all output rows are shared out among the threads in one job. */
void ar_matmul_multi(ar_seq *s, const float *x, int n_tok, int64_t ldx, const ar_mm_out *outs,
                     int n_outs);

/* Run n (<= n_batch) tokens at positions n_past.. through the model; logits as in
 * ar_seq_eval (for these n tokens). With sel (n_sel ids), only those rows of the output
 * layer are computed for the last token: logits[i] = logit of sel[i]; or, with rows
 * (n_rows ascending token indices, which must then be LAST), for each of those tokens:
 * logits[k * n_sel + i] = logit of sel[i] after token rows[k]. In a tree
 * evaluation (s->tree_parent set) token t sits at position n_past + depth(t), attends to
 * the sequence and its ancestors, and n_past does not advance. Inputs already validated. */
void ar_forward(ar_seq *s, const int32_t *tokens, int n, ar_logits which, float *logits,
                const int32_t *sel, int n_sel, const int32_t *rows, int n_rows);

#endif
