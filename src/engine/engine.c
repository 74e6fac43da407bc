/*
 * engine.c - ar_engine and ar_seq: creation, validation of inputs, chunking of long
 * inputs, KV cache management (public API in include/archrouter.h; the forward pass is in
 * forward.c).
 */
#include "engine/engine.h"

#include "kernels/types.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_N_CTX   4096
#define DEFAULT_N_BATCH 256

ar_engine_params ar_engine_default_params(void) {
    ar_engine_params p = {.n_threads = 0, .cpu = AR_CPU_AUTO, .precision = AR_PRECISION_ACCURATE};
    return p;
}

ar_seq_params ar_seq_default_params(void) {
    ar_seq_params p = {.n_ctx = DEFAULT_N_CTX, .n_batch = DEFAULT_N_BATCH, .kv_type = AR_KV_F32};
    return p;
}

/* ---- engine --------------------------------------------------------------------------- */

/* Norm weights and biases converted to float32, all in one allocation. */
static ar_status prepare_vectors(ar_engine *e) {
    const ar_qwen2_hparams *hp = e->hp;
    size_t q = (size_t)hp->n_heads * (size_t)hp->head_dim;
    size_t kv = (size_t)hp->n_kv_heads * (size_t)hp->head_dim;
    size_t per_layer = 2 * (size_t)hp->n_embd + q + 2 * kv;
    e->vec_pool = malloc(((size_t)hp->n_layers * per_layer + (size_t)hp->n_embd) * sizeof(float));
    e->layers = calloc((size_t)hp->n_layers, sizeof *e->layers);
    e->rope_inv_freq = malloc((size_t)(hp->head_dim / 2) * sizeof(float));
    if (!e->vec_pool || !e->layers || !e->rope_inv_freq)
        return ar_errf(&e->err, AR_ERR_NOMEM, "out of memory for the engine");
    float *p = e->vec_pool;
#define TAKE(dst, tensor)                                                                          \
    do {                                                                                           \
        e->k.to_float[(tensor)->type]((tensor)->data, p, (int64_t)(tensor)->n_elements);           \
        (dst) = p;                                                                                 \
        p += (tensor)->n_elements;                                                                 \
    } while (0)
    for (int l = 0; l < hp->n_layers; l++) {
        const ar_qwen2_layer *w = &e->w->layers[l];
        ar_layer_vecs *v = &e->layers[l];
        TAKE(v->attn_norm, w->attn_norm);
        TAKE(v->bq, w->bq);
        TAKE(v->bk, w->bk);
        TAKE(v->bv, w->bv);
        TAKE(v->ffn_norm, w->ffn_norm);
    }
    TAKE(e->out_norm, e->w->output_norm);
#undef TAKE
    /* As the reference: inv_freq[i] = 1 / theta^(2i / d), in float32. */
    for (int i = 0; i < hp->head_dim / 2; i++)
        e->rope_inv_freq[i] = 1.0f / powf(hp->rope_theta, (float)(2 * i) / (float)hp->head_dim);
    return AR_OK;
}

/* The widest activation row and its quantized size, for the sequence buffers. */
static void size_activations(ar_engine *e) {
    const ar_qwen2_hparams *hp = e->hp;
    size_t k = (size_t)hp->n_embd;
    if ((size_t)hp->n_ff > k) k = (size_t)hp->n_ff;
    if ((size_t)hp->n_heads * (size_t)hp->head_dim > k) k = (size_t)hp->n_heads * hp->head_dim;
    e->max_k = k;
    size_t q8a = (k + AR_QK8A - 1) / AR_QK8A * sizeof(ar_block_q8a);
    size_t q8k = (k + AR_QK8K - 1) / AR_QK8K * sizeof(ar_block_q8k);
    size_t q16k = (k + AR_QK16K - 1) / AR_QK16K * sizeof(ar_block_q16k);
    size_t q16a = ar_q16a_row_bytes((int64_t)((k + AR_QK16A - 1) / AR_QK16A * AR_QK16A));
    e->max_act_row = q8a > q8k ? q8a : q8k;
    if (q16k > e->max_act_row) e->max_act_row = q16k;
    if (q16a > e->max_act_row) e->max_act_row = q16a;
}

ar_status ar_engine_new(const ar_model *model, const ar_engine_params *params, ar_engine **out) {
    if (!out) return AR_ERR_INVALID_ARG;
    ar_engine *e = calloc(1, sizeof *e);
    *out = e;
    if (!e) return AR_ERR_NOMEM;
    e->failed = true;
    e->params = params ? *params : ar_engine_default_params();
    if (!model || model->failed)
        return ar_errf(&e->err, AR_ERR_INVALID_ARG, "no model (or one whose open failed)");
    if (model->vocab_only)
        return ar_errf(&e->err, AR_ERR_INVALID_ARG,
                       "the model has no weights (a vocabulary-only file)");
    e->model = model;
    e->hp = &model->hp;
    e->w = &model->w;
    ar_status rc = ar_kernels_get((ar_cpu_tier)e->params.cpu, &e->k);
    if (rc != AR_OK)
        return ar_errf(&e->err, rc, "this CPU cannot run the %s kernels",
                       ar_cpu_tier_name((ar_cpu_tier)e->params.cpu));
    /* Every weight type of the model must have its kernels at this tier. */
    for (int l = 0; l < e->hp->n_layers; l++) {
        const ar_tensor *mats[] = {e->w->layers[l].wq,     e->w->layers[l].wk,
                                   e->w->layers[l].wv,     e->w->layers[l].wo,
                                   e->w->layers[l].w_gate, e->w->layers[l].w_up,
                                   e->w->layers[l].w_down, e->w->output};
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++)
            if (e->k.act[mats[i]->type] != AR_ACT_F32 && !e->k.vec_dot[mats[i]->type])
                return ar_errf(&e->err, AR_ERR_UNSUPPORTED, "no %s kernel for tensor '%s' (%s)",
                               ar_cpu_tier_name(e->k.tier), mats[i]->name,
                               ar_type_name((ar_type)mats[i]->type));
    }
    if (e->params.precision < AR_PRECISION_ACCURATE || e->params.precision > AR_PRECISION_FLOAT32)
        return ar_errf(&e->err, AR_ERR_INVALID_ARG, "unknown precision %d", e->params.precision);
    int n_threads = e->params.n_threads > 0 ? e->params.n_threads : ar_physical_cores();
    if (n_threads > 256) n_threads = 256;
    e->params.n_threads = n_threads;
    rc = ar_pool_new(n_threads, &e->pool);
    if (rc != AR_OK) return ar_errf(&e->err, rc, "cannot start %d threads", n_threads);
    if (pthread_mutex_init(&e->eval_lock, NULL) != 0)
        return ar_errf(&e->err, AR_ERR_NOMEM, "cannot create a mutex");
    e->lock_ready = true;
    size_activations(e);
    rc = prepare_vectors(e);
    if (rc != AR_OK) return rc;
    rc = ar_engine_own_weights(e);
    if (rc != AR_OK) return rc;
    e->failed = false;
    return AR_OK;
}

void ar_engine_free(ar_engine *e) {
    if (!e) return;
    ar_pool_free(e->pool);
    if (e->lock_ready) pthread_mutex_destroy(&e->eval_lock);
    free(e->vec_pool);
    free(e->layers);
    free(e->rope_inv_freq);
    ar_engine_free_own_weights(e);
    free(e);
}

const char *ar_engine_errmsg(const ar_engine *e) {
    return e ? e->err.msg : "out of memory";
}

int32_t ar_engine_n_vocab(const ar_engine *e) {
    return e && !e->failed ? e->hp->n_vocab : 0;
}

int32_t ar_engine_n_threads(const ar_engine *e) {
    return e && !e->failed ? e->params.n_threads : 0;
}

const char *ar_engine_cpu_name(const ar_engine *e) {
    return e && !e->failed ? ar_cpu_tier_name(e->k.tier) : "";
}

/* ---- sequences ------------------------------------------------------------------------ */

static ar_status alloc_seq_buffers(ar_seq *s) {
    const ar_engine *e = s->e;
    const ar_qwen2_hparams *hp = e->hp;
    size_t b = (size_t)s->p.n_batch;
    size_t E = (size_t)hp->n_embd, Q = (size_t)hp->n_heads * hp->head_dim, F = (size_t)hp->n_ff;
    s->kv_dim = (size_t)hp->n_kv_heads * (size_t)hp->head_dim;
    s->kv_elem = s->p.kv_type == AR_KV_F16 ? 2 : 4;
    s->kv = malloc((size_t)hp->n_layers * 2 * (size_t)s->p.n_ctx * s->kv_dim * s->kv_elem);
    float *act = malloc((2 * E + 2 * Q + 2 * s->kv_dim + 2 * F) * b * sizeof(float));
    s->xq_a = malloc(2 * b * e->max_act_row);
    s->xq_k = malloc(2 * b * e->max_act_row);
    /* Q16K rows are whole 640-byte blocks: 64-byte aligned rows keep their loads aligned. */
    s->xq_16 = aligned_alloc(64, (b * e->max_act_row + 63) & ~(size_t)63);
    s->xq_16a = aligned_alloc(64, (b * e->max_act_row + 63) & ~(size_t)63);
    s->xq_8 = aligned_alloc(64, (b * e->max_act_row + 63) & ~(size_t)63);
    for (int i = 0; i < 2; i++)
        s->xq_8x[i] = aligned_alloc(64, (b * e->max_act_row + 63) & ~(size_t)63);
    size_t l16_row = (size_t)ar_lane_groups((int64_t)e->max_k, 32) * sizeof(ar_block_xl16);
    if (e->n_lanes) s->xq_l16 = aligned_alloc(64, b * l16_row);
    /* per thread: AR_ROW_BLOCK weight rows as floats (or, on the k-quants' GEMM path,
     * packed: AR_ROW_BLOCK * max_k / 256 blocks of 640 bytes, 2.5 bytes an element, plus up
     * to 63 bytes to align them: 12 * max_k bytes to spare), attention scores (a row per
     * query head of a key/value group), one converted head row, the group's cache slots */
    size_t group = (size_t)(hp->n_heads / hp->n_kv_heads);
    s->scratch_stride =
        (AR_ROW_BLOCK * e->max_k + (group + 1) * (size_t)s->p.n_ctx + (size_t)hp->head_dim + 15) &
        ~(size_t)15;
    s->scratch = malloc((size_t)e->params.n_threads * s->scratch_stride * sizeof(float));
    /* tree evaluation: depths, then each thread's ancestor chain */
    s->tree_depth = malloc((size_t)(e->params.n_threads + 1) * b * sizeof(int32_t));
    if (!s->kv || !act || !s->xq_a || !s->xq_k || !s->xq_16 || !s->xq_16a || !s->xq_8 ||
        !s->xq_8x[0] || !s->xq_8x[1] || (e->n_lanes && !s->xq_l16) || !s->scratch ||
        !s->tree_depth) {
        free(act);
        return ar_errf(&s->err, AR_ERR_NOMEM,
                       "out of memory for a sequence of %d positions (KV cache %.1f MiB)",
                       s->p.n_ctx,
                       (double)hp->n_layers * 2 * s->p.n_ctx * (double)s->kv_dim *
                           (double)s->kv_elem / 1048576.0);
    }
    s->x = act;
    s->xn = s->x + b * E;
    s->q = s->xn + b * E;
    s->att = s->q + b * Q;
    s->k = s->att + b * Q;
    s->v = s->k + b * s->kv_dim;
    s->gate = s->v + b * s->kv_dim;
    s->up = s->gate + b * F;
    s->tree_chain = s->tree_depth + b;
    return AR_OK;
}

ar_status ar_seq_new(ar_engine *e, const ar_seq_params *params, ar_seq **out) {
    if (!out) return AR_ERR_INVALID_ARG;
    ar_seq *s = calloc(1, sizeof *s);
    *out = s;
    if (!s) return AR_ERR_NOMEM;
    s->failed = true;
    s->p = params ? *params : ar_seq_default_params();
    if (!e || e->failed) return ar_errf(&s->err, AR_ERR_INVALID_ARG, "no engine");
    s->e = e;
    int32_t max_ctx = e->hp->n_ctx_train > 0 ? e->hp->n_ctx_train : INT32_MAX;
    if (s->p.n_ctx <= 0) s->p.n_ctx = DEFAULT_N_CTX < max_ctx ? DEFAULT_N_CTX : max_ctx;
    if (s->p.n_ctx > max_ctx)
        return ar_errf(&s->err, AR_ERR_INVALID_ARG,
                       "n_ctx %" PRId32 " exceeds the model's context of %" PRId32, s->p.n_ctx,
                       max_ctx);
    if (s->p.n_ctx > (1 << 22))
        return ar_errf(&s->err, AR_ERR_LIMIT, "n_ctx %" PRId32 " is too large", s->p.n_ctx);
    if (s->p.n_batch <= 0) s->p.n_batch = DEFAULT_N_BATCH;
    if (s->p.n_batch > s->p.n_ctx) s->p.n_batch = s->p.n_ctx;
    if (s->p.kv_type != AR_KV_F32 && s->p.kv_type != AR_KV_F16)
        return ar_errf(&s->err, AR_ERR_INVALID_ARG, "unknown KV cache type %d", s->p.kv_type);
    ar_status rc = alloc_seq_buffers(s);
    if (rc != AR_OK) return rc;
    s->failed = false;
    return AR_OK;
}

void ar_seq_free(ar_seq *s) {
    if (!s) return;
    free(s->kv);
    free(s->x);
    free(s->xq_a);
    free(s->xq_k);
    free(s->xq_16);
    free(s->xq_16a);
    free(s->xq_8);
    free(s->xq_8x[0]);
    free(s->xq_8x[1]);
    free(s->xq_l16);
    free(s->scratch);
    free(s->tree_depth);
    free(s);
}

const char *ar_seq_errmsg(const ar_seq *s) {
    return s ? s->err.msg : "out of memory";
}

int32_t ar_seq_n_past(const ar_seq *s) {
    return s && !s->failed ? s->n_past : 0;
}

int32_t ar_seq_n_ctx(const ar_seq *s) {
    return s && !s->failed ? s->p.n_ctx : 0;
}

/* Checks shared by the evaluations: n tokens in the vocabulary and room for them. */
static ar_status check_tokens(ar_seq *s, const int32_t *tokens, int32_t n) {
    if (n < 1 || !tokens) return ar_errf(&s->err, AR_ERR_INVALID_ARG, "no tokens to evaluate");
    if (n > s->p.n_ctx - s->n_past)
        return ar_errf(&s->err, AR_ERR_INVALID_ARG,
                       "%" PRId32 " tokens after %" PRId32 " would exceed the context of %" PRId32
                       " positions",
                       n, s->n_past, s->p.n_ctx);
    int32_t n_vocab = s->e->hp->n_vocab;
    for (int32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return ar_errf(&s->err, AR_ERR_INVALID_ARG,
                           "token %" PRId32 " (id %" PRId32
                           ") is outside the vocabulary of %" PRId32,
                           i, tokens[i], n_vocab);
    return AR_OK;
}

/* n tokens in chunks of n_batch; the last chunk writes `which` logits (or the selected
 * ones). With `at` (n_at ascending token indices; sel must be given), each chunk writes the
 * selected logits after those of its tokens that are in `at`, at out + k * n_sel for the
 * k-th. Takes the engine's evaluation lock. */
static void run_chunks(ar_seq *s, const int32_t *tokens, int32_t n, ar_logits which, float *logits,
                       const int32_t *sel, int32_t n_sel, const int32_t *at, int32_t n_at) {
    int32_t n_vocab = s->e->hp->n_vocab;
    int32_t rows[AR_SELECT_AT_MAX];
    pthread_mutex_lock(&s->e->eval_lock);
    for (int32_t done = 0, k = 0; done < n;) {
        int32_t c = n - done < s->p.n_batch ? n - done : s->p.n_batch;
        bool last = done + c == n;
        if (at) { /* the selected tokens that fall in this chunk */
            int32_t m = 0, k0 = k;
            while (k < n_at && at[k] < done + c) rows[m++] = at[k++] - done;
            ar_forward(s, tokens + done, c, m ? AR_LOGITS_LAST : AR_LOGITS_NONE,
                       logits + (size_t)k0 * (size_t)n_sel, sel, n_sel, rows, m);
            done += c;
            continue;
        }
        ar_logits w = which == AR_LOGITS_ALL ? AR_LOGITS_ALL : last ? which : AR_LOGITS_NONE;
        float *out = which == AR_LOGITS_ALL ? logits + (size_t)done * (size_t)n_vocab : logits;
        ar_forward(s, tokens + done, c, w, out, last ? sel : NULL, n_sel, NULL, 0);
        done += c;
    }
    pthread_mutex_unlock(&s->e->eval_lock);
    s->err.msg[0] = 0;
}

ar_status ar_seq_eval(ar_seq *s, const int32_t *tokens, int32_t n, ar_logits which, float *logits) {
    if (!s || s->failed) return AR_ERR_INVALID_ARG;
    if (which != AR_LOGITS_NONE && which != AR_LOGITS_LAST && which != AR_LOGITS_ALL)
        return ar_errf(&s->err, AR_ERR_INVALID_ARG, "unknown logits mode %d", which);
    if (which != AR_LOGITS_NONE && !logits)
        return ar_errf(&s->err, AR_ERR_INVALID_ARG, "no buffer for the logits");
    ar_status rc = check_tokens(s, tokens, n);
    if (rc != AR_OK) return rc;
    run_chunks(s, tokens, n, which, logits, NULL, 0, NULL, 0);
    return AR_OK;
}

/* The vocabulary ids whose logits ar_seq_eval_select* compute, and their buffer. */
static ar_status check_ids(ar_seq *s, const int32_t *ids, int32_t n_ids, const float *out) {
    if (n_ids < 1 || !ids || !out)
        return ar_errf(&s->err, AR_ERR_INVALID_ARG, "no vocabulary ids to compute logits for");
    for (int32_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= s->e->hp->n_vocab)
            return ar_errf(&s->err, AR_ERR_INVALID_ARG,
                           "selected id %" PRId32 " (%" PRId32
                           ") is outside the vocabulary of %" PRId32,
                           i, ids[i], s->e->hp->n_vocab);
    return AR_OK;
}

ar_status ar_seq_eval_select(ar_seq *s, const int32_t *tokens, int32_t n, const int32_t *ids,
                             int32_t n_ids, float *out) {
    if (!s || s->failed) return AR_ERR_INVALID_ARG;
    ar_status rc = check_tokens(s, tokens, n);
    if (rc != AR_OK) return rc;
    if ((rc = check_ids(s, ids, n_ids, out)) != AR_OK) return rc;
    run_chunks(s, tokens, n, AR_LOGITS_LAST, out, ids, n_ids, NULL, 0);
    return AR_OK;
}

ar_status ar_seq_eval_select_at(ar_seq *s, const int32_t *tokens, int32_t n, const int32_t *at,
                                int32_t n_at, const int32_t *ids, int32_t n_ids, float *out) {
    if (!s || s->failed) return AR_ERR_INVALID_ARG;
    if (!at || n_at < 1 || n_at > AR_SELECT_AT_MAX)
        return ar_errf(&s->err, AR_ERR_INVALID_ARG, "%" PRId32 " positions to select at (1..%d)",
                       n_at, AR_SELECT_AT_MAX);
    ar_status rc = check_tokens(s, tokens, n);
    if (rc != AR_OK) return rc;
    for (int32_t k = 0; k < n_at; k++)
        if (at[k] < 0 || at[k] >= n || (k > 0 && at[k] <= at[k - 1]))
            return ar_errf(&s->err, AR_ERR_INVALID_ARG,
                           "position %" PRId32 " (%" PRId32
                           ") is not a token of this call after the one before",
                           k, at[k]);
    if ((rc = check_ids(s, ids, n_ids, out)) != AR_OK) return rc;
    run_chunks(s, tokens, n, AR_LOGITS_LAST, out, ids, n_ids, at, n_at);
    return AR_OK;
}

ar_status ar_seq_eval_tree(ar_seq *s, const int32_t *tokens, const int32_t *parents, int32_t n,
                           float *logits) {
    if (!s || s->failed) return AR_ERR_INVALID_ARG;
    if (!parents || !logits)
        return ar_errf(&s->err, AR_ERR_INVALID_ARG, "no parents or no buffer for the logits");
    ar_status rc = check_tokens(s, tokens, n);
    if (rc != AR_OK) return rc;
    if (n > s->p.n_batch)
        return ar_errf(&s->err, AR_ERR_INVALID_ARG,
                       "a tree of %" PRId32 " tokens exceeds the batch of %" PRId32, n,
                       s->p.n_batch);
    for (int32_t i = 0; i < n; i++) {
        if (parents[i] < -1 || parents[i] >= i)
            return ar_errf(&s->err, AR_ERR_INVALID_ARG,
                           "tree token %" PRId32 ": parent %" PRId32
                           " is not an earlier token (or -1)",
                           i, parents[i]);
        s->tree_depth[i] = parents[i] < 0 ? 0 : s->tree_depth[parents[i]] + 1;
    }
    s->tree_parent = parents;
    run_chunks(s, tokens, n, AR_LOGITS_ALL, logits, NULL, 0, NULL, 0);
    s->tree_parent = NULL;
    return AR_OK;
}

ar_status ar_seq_truncate(ar_seq *s, int32_t n_past) {
    if (!s || s->failed) return AR_ERR_INVALID_ARG;
    if (n_past < 0 || n_past > s->n_past)
        return ar_errf(&s->err, AR_ERR_INVALID_ARG,
                       "cannot truncate to %" PRId32 " positions: the sequence holds %" PRId32,
                       n_past, s->n_past);
    s->n_past = n_past;
    return AR_OK;
}

ar_status ar_seq_copy(ar_seq *dst, const ar_seq *src, int32_t n) {
    if (!dst || dst->failed || !src || src->failed || dst == src) return AR_ERR_INVALID_ARG;
    if (dst->e != src->e || dst->p.kv_type != src->p.kv_type)
        return ar_errf(&dst->err, AR_ERR_INVALID_ARG,
                       "sequences of different engines or KV types cannot share positions");
    if (n < 0 || n > src->n_past || n > dst->p.n_ctx)
        return ar_errf(&dst->err, AR_ERR_INVALID_ARG,
                       "cannot copy %" PRId32 " positions (source holds %" PRId32
                       ", destination fits %" PRId32 ")",
                       n, src->n_past, dst->p.n_ctx);
    size_t bytes = (size_t)n * dst->kv_dim * dst->kv_elem;
    for (int l = 0; l < dst->e->hp->n_layers; l++)
        for (int kind = 0; kind < 2; kind++)
            memcpy(ar_kv_rows(dst, l, kind), ar_kv_rows(src, l, kind), bytes);
    dst->n_past = n;
    return AR_OK;
}
