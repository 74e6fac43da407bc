/*
 * forward.c - the Qwen2 forward pass over a chunk of tokens (ar_forward in engine.h).
 *
 * Read top to bottom, it is the model:
 *
 *   x = embedding rows of the tokens
 *   for each layer:
 *       h = rmsnorm(x) * attn_norm
 *       q, k, v = h Wq + bq, h Wk + bk, h Wv + bv
 *       rotate q and k by their positions (RoPE, rotate-half pairs (i, i + d/2))
 *       append k, v to the KV cache
 *       a = causal attention of q over the cache, kv head shared by n_heads/n_kv_heads
 *       x = x + a Wo
 *       h = rmsnorm(x) * ffn_norm
 *       x = x + (silu(h Wgate) * (h Wup)) Wdown
 *   logits = (rmsnorm(x) * output_norm) Woutput    (for the positions asked for)
 *
 * Each step splits its work over the engine's threads (one pool run per step); products
 * go through ar_matmul. Everything is float32 except the weights and, optionally, the KV
 * cache (F16).
 */
#include "engine/engine.h"

#include <math.h>
#include <string.h>

/* ---- parallel steps ------------------------------------------------------------------ */

typedef struct step {
    ar_seq *s;
    int n; /* tokens in the chunk */
    int layer;
    const float *in; /* rows of `width` floats */
    float *out;
    const float *weight; /* rmsnorm weight */
    int width;
} step;

static void rmsnorm_rows(int ith, int nth, void *ctx) {
    const step *st = ctx;
    const ar_engine *e = st->s->e;
    for (int t = ith; t < st->n; t += nth)
        e->k.rmsnorm_f32(st->width, st->in + (size_t)t * st->width, st->weight, e->hp->rms_eps,
                         st->out + (size_t)t * st->width);
}

static void rmsnorm(ar_seq *s, int n, const float *in, float *out, const float *weight) {
    step st = {.s = s, .n = n, .in = in, .out = out, .weight = weight, .width = s->e->hp->n_embd};
    ar_pool_run(s->e->pool, rmsnorm_rows, &st);
}

/* x += delta, row by row. */
static void add_rows(int ith, int nth, void *ctx) {
    const step *st = ctx;
    const ar_engine *e = st->s->e;
    for (int t = ith; t < st->n; t += nth)
        e->k.axpy_f32(st->width, 1.0f, st->in + (size_t)t * st->width,
                      st->out + (size_t)t * st->width);
}

static void residual(ar_seq *s, int n, const float *delta, float *x) {
    step st = {.s = s, .n = n, .in = delta, .out = x, .width = s->e->hp->n_embd};
    ar_pool_run(s->e->pool, add_rows, &st);
}

static void silu_mul_rows(int ith, int nth, void *ctx) {
    const step *st = ctx;
    ar_seq *s = st->s;
    size_t f = (size_t)s->e->hp->n_ff;
    for (int t = ith; t < st->n; t += nth)
        s->e->k.silu_mul_f32((int64_t)f, s->gate + t * f, s->up + t * f, s->gate + t * f);
}

/* Rotate each head of each row by its position: pairs (i, i + d/2) turn by pos * f_i. */
static void rope_rows(int ith, int nth, void *ctx) {
    const step *st = ctx;
    ar_seq *s = st->s;
    const ar_qwen2_hparams *hp = s->e->hp;
    int half = hp->head_dim / 2;
    for (int t = ith; t < st->n; t += nth) {
        float pos = (float)(s->n_past + (s->tree_parent ? s->tree_depth[t] : t));
        for (int i = 0; i < half; i++) {
            float angle = pos * s->e->rope_inv_freq[i];
            float c = cosf(angle), sn = sinf(angle);
            for (int which = 0; which < 2; which++) {
                float *rows = which == 0 ? s->q + (size_t)t * hp->n_heads * hp->head_dim
                                         : s->k + (size_t)t * s->kv_dim;
                int heads = which == 0 ? hp->n_heads : hp->n_kv_heads;
                for (int h = 0; h < heads; h++) {
                    float *v = rows + (size_t)h * hp->head_dim;
                    float a = v[i], b = v[i + half];
                    v[i] = a * c - b * sn;
                    v[i + half] = a * sn + b * c;
                }
            }
        }
    }
}

/* Copy the chunk's k and v rows into the cache at positions n_past.. */
static void store_kv(int ith, int nth, void *ctx) {
    const step *st = ctx;
    ar_seq *s = st->s;
    for (int t = ith; t < st->n; t += nth)
        for (int kind = 0; kind < 2; kind++) {
            const float *src = (kind == 0 ? s->k : s->v) + (size_t)t * s->kv_dim;
            uint8_t *dst =
                ar_kv_rows(s, st->layer, kind) + (size_t)(s->n_past + t) * s->kv_dim * s->kv_elem;
            if (s->p.kv_type == AR_KV_F16)
                s->e->k.f32_to_f16((int64_t)s->kv_dim, src, (uint16_t *)dst);
            else
                memcpy(dst, src, s->kv_dim * sizeof(float));
        }
}

/* ---- attention ------------------------------------------------------------------------ */

/* Row `pos` of head g of the cache as floats: in place for F32, converted for F16. */
static const float *kv_row(const ar_seq *s, const uint8_t *base, int pos, int g, float *tmp) {
    size_t hd = (size_t)s->e->hp->head_dim;
    const uint8_t *p = base + ((size_t)pos * s->kv_dim + (size_t)g * hd) * s->kv_elem;
    if (s->p.kv_type == AR_KV_F32) return (const float *)p;
    s->e->k.f16_to_f32((int64_t)hd, (const uint16_t *)p, tmp);
    return tmp;
}

/* Work items are (query token, head) pairs, or (query token, key/value head) pairs when the
 * tier has the grouped kernels and the cache is F32 (the query heads that share a key/value
 * head then go together: each cache row is loaded once for all of them), dealt out
 * round-robin: later tokens attend to more positions, so interleaving balances the threads.
 * A token's result is the same whichever way its neighbours were batched. */
static void attention_items(int ith, int nth, void *ctx) {
    const step *st = ctx;
    ar_seq *s = st->s;
    const ar_engine *e = s->e;
    const ar_qwen2_hparams *hp = e->hp;
    int hd = hp->head_dim, group = hp->n_heads / hp->n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    size_t n_ctx = (size_t)s->p.n_ctx;
    float *scores = s->scratch + (size_t)ith * s->scratch_stride + AR_ROW_BLOCK * e->max_k;
    float *tmp = scores + (size_t)group * n_ctx;
    int32_t *slots = (int32_t *)(void *)(tmp + hd);
    const uint8_t *kc = ar_kv_rows(s, st->layer, 0), *vc = ar_kv_rows(s, st->layer, 1);
    int32_t *chain = s->tree_parent ? s->tree_chain + (size_t)ith * (size_t)s->p.n_batch : NULL;
    bool grouped = e->k.attn_scores && e->k.attn_values && s->p.kv_type == AR_KV_F32;
    int per_token = grouped ? hp->n_kv_heads : hp->n_heads;
    for (int item = ith; item < st->n * per_token; item += nth) {
        int t = item / per_token, u = item % per_token;
        /* Visible positions: causal, 0..n_past + t; in a tree, the sequence 0..n_past - 1
         * and then the token's ancestors root first (slots n_past + a), itself last - the
         * same positions in the same order as the path evaluated on its own. */
        int n_vis = s->n_past + t + 1;
        if (s->tree_parent) {
            int d = s->tree_depth[t];
            for (int a = t; a >= 0; a = s->tree_parent[a]) chain[d--] = s->n_past + a;
            n_vis = s->n_past + s->tree_depth[t] + 1;
        }
#define SLOT(j) (chain && (j) >= s->n_past ? chain[(j)-s->n_past] : (j))
        if (grouped) {
            const float *kg = (const float *)(const void *)kc + (size_t)u * (size_t)hd;
            const float *vg = (const float *)(const void *)vc + (size_t)u * (size_t)hd;
            for (int j = 0; j < n_vis; j++) slots[j] = SLOT(j);
            for (int h0 = 0; h0 < group; h0 += AR_ATTN_MAX_Q) {
                int nq = group - h0 < AR_ATTN_MAX_Q ? group - h0 : AR_ATTN_MAX_Q;
                size_t head = (size_t)t * hp->n_heads + (size_t)u * group + (size_t)h0;
                e->k.attn_scores(hd, nq, s->q + head * (size_t)hd, (size_t)hd, kg, s->kv_dim, slots,
                                 n_vis, scale, scores, n_ctx);
                for (int i = 0; i < nq; i++) e->k.softmax_f32(n_vis, scores + (size_t)i * n_ctx);
                e->k.attn_values(hd, nq, scores, n_ctx, vg, s->kv_dim, slots, n_vis,
                                 s->att + head * (size_t)hd, (size_t)hd);
            }
            continue;
        }
        int h = u, g = h / group;
        const float *q = s->q + ((size_t)t * hp->n_heads + (size_t)h) * (size_t)hd;
        for (int j = 0; j < n_vis; j++)
            scores[j] = e->k.dot_f32(hd, q, kv_row(s, kc, SLOT(j), g, tmp)) * scale;
        e->k.softmax_f32(n_vis, scores);
        float *out = s->att + ((size_t)t * hp->n_heads + (size_t)h) * (size_t)hd;
        memset(out, 0, (size_t)hd * sizeof *out);
        for (int j = 0; j < n_vis; j++)
            e->k.axpy_f32(hd, scores[j], kv_row(s, vc, SLOT(j), g, tmp), out);
#undef SLOT
    }
}

/* ---- the pass ------------------------------------------------------------------------- */

static void embed(ar_seq *s, const int32_t *tokens, int n) {
    const ar_engine *e = s->e;
    const ar_tensor *emb = e->w->tok_embd;
    size_t row = (size_t)(emb->n_bytes / (uint64_t)emb->ne[1]);
    for (int t = 0; t < n; t++)
        e->k.to_float[emb->type](emb->data + (size_t)tokens[t] * row,
                                 s->x + (size_t)t * e->hp->n_embd, e->hp->n_embd);
}

static void layer(ar_seq *s, int l, int n) {
    const ar_engine *e = s->e;
    const ar_qwen2_layer *w = &e->w->layers[l];
    const ar_layer_vecs *v = &e->layers[l];
    const ar_qwen2_hparams *hp = e->hp;
    int64_t E = hp->n_embd, Q = (int64_t)hp->n_heads * hp->head_dim, KV = (int64_t)s->kv_dim;
    step st = {.s = s, .n = n, .layer = l};

    rmsnorm(s, n, s->x, s->xn, v->attn_norm);
    ar_mm_out qkv[3] = {
        {w->wq, s->q, Q, v->bq}, {w->wk, s->k, KV, v->bk}, {w->wv, s->v, KV, v->bv}};
    ar_matmul_multi(s, s->xn, n, E, qkv, 3);
    ar_pool_run(e->pool, rope_rows, &st);
    ar_pool_run(e->pool, store_kv, &st);
    ar_pool_run(e->pool, attention_items, &st);
    ar_matmul(s, w->wo, s->att, n, Q, s->xn, E, NULL);
    residual(s, n, s->xn, s->x);

    rmsnorm(s, n, s->x, s->xn, v->ffn_norm);
    ar_mm_out gate_up[2] = {{w->w_gate, s->gate, hp->n_ff, NULL}, {w->w_up, s->up, hp->n_ff, NULL}};
    ar_matmul_multi(s, s->xn, n, E, gate_up, 2);
    ar_pool_run(e->pool, silu_mul_rows, &st);
    ar_matmul(s, w->w_down, s->gate, n, hp->n_ff, s->xn, E, NULL);
    residual(s, n, s->xn, s->x);
}

/* logits[k * n_sel + i] = row sel[i] of the output layer times normalized row k of xn, for
 * the m rows of xn. */
static void select_logits(ar_seq *s, const int32_t *sel, int n_sel, int m, float *logits) {
    const ar_tensor *out = s->e->w->output;
    uint64_t row = out->n_bytes / (uint64_t)out->ne[1];
    for (int i = 0; i < n_sel; i++) {
        ar_tensor one = *out;
        one.ne[1] = 1;
        one.n_elements = (uint64_t)out->ne[0];
        one.n_bytes = row;
        one.data = out->data + (uint64_t)sel[i] * row;
        ar_matmul(s, &one, s->xn, m, s->e->hp->n_embd, logits + i, n_sel, NULL);
    }
}

void ar_forward(ar_seq *s, const int32_t *tokens, int n, ar_logits which, float *logits,
                const int32_t *sel, int n_sel, const int32_t *rows, int n_rows) {
    const ar_engine *e = s->e;
    int64_t E = e->hp->n_embd;
    embed(s, tokens, n);
    for (int l = 0; l < e->hp->n_layers; l++) layer(s, l, n);
    if (which != AR_LOGITS_NONE) {
        /* Only the rows whose logits are wanted go through the norm and the output. */
        int first = which == AR_LOGITS_ALL ? 0 : n - 1;
        if (sel && rows) { /* selected logits after several tokens: their rows, in order */
            for (int k = 0; k < n_rows; k++)
                rmsnorm(s, 1, s->x + (size_t)rows[k] * (size_t)E, s->xn + (size_t)k * (size_t)E,
                        e->out_norm);
            select_logits(s, sel, n_sel, n_rows, logits);
        } else {
            rmsnorm(s, n - first, s->x + (size_t)first * (size_t)E, s->xn, e->out_norm);
            if (sel)
                select_logits(s, sel, n_sel, 1, logits);
            else
                ar_matmul(s, e->w->output, s->xn, n - first, E, logits, e->hp->n_vocab, NULL);
        }
    }
    if (!s->tree_parent) s->n_past += n;
}
