/*
 * matmul.c - products of a weight matrix with a batch of activation rows, on the engine's
 * threads (ar_matmul in engine.h).
 *
 * Two steps. (1) When the weight type multiplies with quantized activations (every
 * precision but float32), the activation rows are quantized once, split over threads by
 * token. In the default precision the rounding error of that quantization is itself
 * quantized (a second set of 8-bit blocks for x - dequant(q(x))), and each product takes
 * both: about 16-bit activations from the same integer kernels, for twice the dot products. (2) The
 * N output rows are split evenly over threads; each thread walks the tokens in tiles (so a tile of
 * activations stays in cache) and, for each of its weight rows, takes the dot product with every
 * token of the tile. On the float path a weight row is first converted to float32 into the thread's
 * scratch, once per tile.
 */
#include "engine/engine.h"

#define TOKEN_TILE 32

typedef struct mm_job {
    const ar_engine *e;
    const ar_tensor *w;
    int64_t K, N;
    size_t w_row; /* bytes of a weight row */
    int n_tok;
    const float *x;
    int64_t ldx;
    const uint8_t *xq; /* quantized rows, xq_row bytes apart; NULL on the float path */
    bool paired;       /* each token's row is followed by its quantized rounding error */
    size_t xq_row;
    int block; /* activations per quantized block */
    ar_quantize_fn quantize;
    float *y;
    int64_t ldy;
    const float *bias;
    float *scratch;
    size_t scratch_stride;
} mm_job;

/* x - dequant(q) for one row of quantized activations (Q8A or Q8K blocks). */
static void rounding_error(const float *x, const uint8_t *q, int64_t K, int block, float *r) {
    for (int64_t b = 0; b < K / block; b++) {
        float d;
        const int8_t *qs;
        if (block == AR_QK8A) {
            const ar_block_q8a *blk = (const ar_block_q8a *)q + b;
            d = blk->d;
            qs = blk->qs;
        } else {
            const ar_block_q8k *blk = (const ar_block_q8k *)q + b;
            d = blk->d;
            qs = blk->qs;
        }
        for (int i = 0; i < block; i++) r[b * block + i] = x[b * block + i] - d * (float)qs[i];
    }
}

static void quantize_rows(int ith, int nth, void *ctx) {
    const mm_job *j = ctx;
    float *r = j->scratch + (size_t)ith * j->scratch_stride;
    int per_token = j->paired ? 2 : 1;
    for (int t = ith; t < j->n_tok; t += nth) {
        const float *x = j->x + (size_t)t * j->ldx;
        uint8_t *q = (uint8_t *)j->xq + (size_t)t * per_token * j->xq_row;
        j->quantize(x, q, j->K);
        if (!j->paired) continue;
        rounding_error(x, q, j->K, j->block, r);
        j->quantize(r, q + j->xq_row, j->K);
    }
}

/* ys[r] = dot(wrow, activation row r) for nr rows `stride` bytes apart: the kernel's
 * multi-row form, or one call per row. */
static void dot_rows(const ar_kernels *k, uint32_t type, int64_t K, const void *wrow,
                     const uint8_t *x, size_t stride, int nr, float *ys) {
    if (k->vec_dot_n[type]) {
        k->vec_dot_n[type](K, wrow, x, stride, nr, ys);
        return;
    }
    for (int r = 0; r < nr; r++) ys[r] = k->vec_dot[type](K, wrow, x + (size_t)r * stride);
}

static void dot_rows_f32(const ar_kernels *k, int64_t K, const float *w, const float *x,
                         size_t stride, int nr, float *ys) {
    if (k->dot_f32_n) {
        k->dot_f32_n(K, w, x, stride, nr, ys);
        return;
    }
    for (int r = 0; r < nr; r++) ys[r] = k->dot_f32(K, w, x + (size_t)r * stride);
}

/* Products of one weight row with tokens [t0, t1), AR_MAX_NR activation rows at a time.
 * In the accurate precision each token has two quantized rows side by side (the rounded
 * activations, then their rounding error), and its result is the sum of both products. */
static void row_times_tokens(const mm_job *j, int64_t r, int t0, int t1, float *wf) {
    const ar_kernels *k = &j->e->k;
    const uint8_t *wrow = j->w->data + (size_t)r * j->w_row;
    float b = j->bias ? j->bias[r] : 0.0f;
    float ys[AR_MAX_NR];
    if (!j->xq) { /* float path */
        const float *row = (const float *)wrow;
        if (j->w->type != AR_TYPE_F32) {
            k->to_float[j->w->type](wrow, wf, j->K);
            row = wf;
        }
        for (int t = t0; t < t1; t += AR_MAX_NR) {
            int nr = t1 - t < AR_MAX_NR ? t1 - t : AR_MAX_NR;
            dot_rows_f32(k, j->K, row, j->x + (size_t)t * j->ldx, (size_t)j->ldx, nr, ys);
            for (int i = 0; i < nr; i++) j->y[(size_t)(t + i) * j->ldy + r] = ys[i] + b;
        }
        return;
    }
    int per_token = j->paired ? 2 : 1, step = AR_MAX_NR / per_token;
    for (int t = t0; t < t1; t += step) {
        int nt = t1 - t < step ? t1 - t : step;
        dot_rows(k, j->w->type, j->K, wrow, j->xq + (size_t)t * per_token * j->xq_row, j->xq_row,
                 nt * per_token, ys);
        for (int i = 0; i < nt; i++)
            j->y[(size_t)(t + i) * j->ldy + r] =
                (j->paired ? ys[2 * i] + ys[2 * i + 1] : ys[i]) + b;
    }
}

static void multiply_rows(int ith, int nth, void *ctx) {
    const mm_job *j = ctx;
    int64_t r0 = j->N * ith / nth, r1 = j->N * (ith + 1) / nth;
    float *wf = j->scratch + (size_t)ith * j->scratch_stride;
    for (int t0 = 0; t0 < j->n_tok; t0 += TOKEN_TILE) {
        int t1 = t0 + TOKEN_TILE < j->n_tok ? t0 + TOKEN_TILE : j->n_tok;
        for (int64_t r = r0; r < r1; r++) row_times_tokens(j, r, t0, t1, wf);
    }
}

void ar_matmul(ar_seq *s, const ar_tensor *w, const float *x, int n_tok, int64_t ldx, float *y,
               int64_t ldy, const float *bias) {
    const ar_engine *e = s->e;
    ar_act act = e->k.act[w->type];
    bool quantized = act != AR_ACT_F32 && e->params.precision != AR_PRECISION_FLOAT32;
    mm_job j = {
        .e = e,
        .w = w,
        .K = w->ne[0],
        .N = w->ne[1],
        .w_row = (size_t)(w->n_bytes / (uint64_t)w->ne[1]),
        .n_tok = n_tok,
        .x = x,
        .ldx = ldx,
        .y = y,
        .ldy = ldy,
        .bias = bias,
        .scratch = s->scratch,
        .scratch_stride = s->scratch_stride,
    };
    if (quantized) {
        j.xq = s->xq;
        j.xq_row = e->max_act_row;
        j.quantize = act == AR_ACT_Q8A ? e->k.quantize_q8a : e->k.quantize_q8k;
        j.block = act == AR_ACT_Q8A ? AR_QK8A : AR_QK8K;
        j.paired = e->params.precision == AR_PRECISION_ACCURATE;
        ar_pool_run(e->pool, quantize_rows, &j);
    }
    ar_pool_run(e->pool, multiply_rows, &j);
}
