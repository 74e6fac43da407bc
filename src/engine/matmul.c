/*
 * matmul.c - products of weight matrices with a batch of activation rows, on the engine's
 * threads (ar_matmul / ar_matmul_multi in engine.h).
 *
 * Several matrices that multiply the same input (Q, K and V; gate and up) run as one job:
 * the input is quantized once and their output rows are split over the threads together.
 *
 * (1) Quantize. When a weight type multiplies with quantized activations (every precision
 *     but float32), the activation rows are quantized once per format (Q8A / Q8K / Q16K /
 *     A8), split over threads by token. In the accurate precision the k-quants take 15-bit
 *     activations (Q16K) where the tier has those kernels; the other types take 8-bit
 *     blocks and, right after each token's row, its rounding error quantized again: about
 *     16-bit activations from the same integer kernels. In the fast precision Q4_K, Q6_K
 *     and Q8_0 take the lane form's A8 blocks (kernels.h), and for a GEMM also their GEMM
 *     layout (pack8x) right away.
 * (2) Multiply. The output rows of all matrices are split evenly over the threads; each
 *     thread walks the tokens in tiles (a tile of activations stays in cache) and, for each
 *     block of AR_ROW_BLOCK weight rows, takes the products with the tile's tokens, several
 *     activation rows per kernel call so each weight block is unpacked once for all of
 *     them. On the float path a block's rows are first converted to float32 into the
 *     thread's scratch, once per tile. F16 and BF16 weights with float activations go by
 *     register tiles instead (vec_dot_f_mn: AR_MN_W weight rows x AR_MN_R tokens per call,
 *     converted in registers), in blocks of TILE_ROW_BLOCK rows; decode too (one token).
 *     The k-quants' 15-bit path (Q16K) and the lane form (A8) with more than AR_MAX_NR
 *     tokens unpack the block's rows once instead (pack16 / pack8, into the same scratch)
 *     and multiply them with all the tokens (gemm16 / gemm8, where the tier has them; the
 *     kernels block for the caches, so then the tile is all the tokens), with results
 *     bit-identical to the per-row kernels. F16/BF16 matrices the engine repacked into
 *     16-bit lanes (AR_TYPE_L16, weights.c) take 14-bit activations (quantize_l16) and go
 *     through gemm_l16 for any number of tokens, decode included. In a GEMM job of more
 *     than AR_MAX_NR tokens the threads take row blocks in turn (an atomic counter) rather
 *     than equal shares, as rows of different outputs can differ in cost.
 */
#include "engine/engine.h"

#include <stdatomic.h>

#define TOKEN_TILE     32
/* Weight rows per block in the tiled path: two tiles of AR_MN_W rows. */
#define TILE_ROW_BLOCK (2 * AR_MN_W)
#define MAX_OUTS       4

typedef struct mm_job {
    const ar_engine *e;
    int n_tok;
    const float *x;
    int64_t ldx, K;
    const ar_mm_out *outs;
    int n_outs;
    ar_act act_of[MAX_OUTS]; /* the activation format each output multiplies with */
    int64_t total_rows;
    bool paired; /* Q8A/Q8K: each token's row is followed by its rounding error's */
    int tile;    /* tokens per tile: TOKEN_TILE, or all when every output takes a GEMM (its
                    rows are then packed once; the GEMM kernels block for the caches) */
    /* Quantized activations per format (index ar_act), NULL when no matrix needs it. */
    uint8_t *xq[7];
    size_t xq_row[7];
    /* The lane form's GEMM layout (ar_block_x8 rows), when a tile of more than AR_MAX_NR
     * tokens takes gemm8; NULL when no output needs it. */
    uint8_t *x8[2]; /* [0]: 32-element lanes, [1]: 16-element ones */
    size_t x8_row[2];
    float *scratch;
    size_t scratch_stride;
    /* Prefill (one tile of more than AR_MAX_NR tokens): threads take row blocks in turn from
     * `next` (blocks of output o end at block_end[o]) instead of an even share of the rows,
     * since the outputs of one job can differ in cost per row (Q4_K_M: Q6_K rows take about
     * 1.4 times a Q4_K row's time), and an even share left one thread waiting 8% of prefill. */
    bool dynamic;
    int64_t block_end[MAX_OUTS];
    _Atomic int64_t next;
} mm_job;

/* x - dequant(q) for one row of quantized activations (Q8A or Q8K blocks). */
static void rounding_error(const float *x, const uint8_t *q, int64_t K, ar_act act, float *r) {
    int block = act == AR_ACT_Q8A ? AR_QK8A : AR_QK8K;
    for (int64_t b = 0; b < K / block; b++) {
        float d;
        const int8_t *qs;
        if (act == AR_ACT_Q8A) {
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
    const ar_kernels *k = &j->e->k;
    float *r = j->scratch + (size_t)ith * j->scratch_stride;
    for (int act = AR_ACT_Q8A; act <= AR_ACT_L16; act++) {
        if (!j->xq[act]) continue;
        ar_quantize_fn quantize = act == AR_ACT_Q8A    ? k->quantize_q8a
                                  : act == AR_ACT_Q8K  ? k->quantize_q8k
                                  : act == AR_ACT_Q16K ? k->quantize_q16k
                                  : act == AR_ACT_Q16A ? k->quantize_q16a
                                  : act == AR_ACT_A8   ? k->quantize_a8
                                                       : k->quantize_l16;
        bool paired = j->paired && (act == AR_ACT_Q8A || act == AR_ACT_Q8K);
        int per_token = paired ? 2 : 1;
        for (int t = ith; t < j->n_tok; t += nth) {
            const float *x = j->x + (size_t)t * j->ldx;
            uint8_t *q = j->xq[act] + (size_t)t * per_token * j->xq_row[act];
            quantize(x, q, j->K);
            for (int l = 0; act == AR_ACT_A8 && l < 2; l++)
                if (j->x8[l])
                    k->pack8x(j->K, (const ar_block_a8 *)(const void *)q, l ? 16 : 32,
                              (ar_block_x8 *)(void *)(j->x8[l] + (size_t)t * j->x8_row[l]));
            if (!paired) continue;
            rounding_error(x, q, j->K, (ar_act)act, r);
            quantize(r, q + j->xq_row[act], j->K);
        }
    }
}

/* ys[r] = dot(wrow, activation row r) for nr rows `stride` bytes apart: the kernel's
 * multi-row form, or one call per row. */
static void dot_rows(const ar_kernels *k, ar_act act, uint32_t type, int64_t K, const void *wrow,
                     const uint8_t *x, size_t stride, int nr, float *ys) {
    bool wide = act == AR_ACT_Q16K || act == AR_ACT_Q16A;
    ar_vec_dot_n_fn many = act == AR_ACT_A8 ? NULL
                           : wide           ? k->vec_dot16_n[type]
                                            : k->vec_dot_n[type];
    if (many) {
        many(K, wrow, x, stride, nr, ys);
        return;
    }
    ar_vec_dot_fn one = act == AR_ACT_A8 ? k->vec_dot8[type]
                        : wide           ? k->vec_dot16[type]
                                         : k->vec_dot[type];
    for (int r = 0; r < nr; r++) ys[r] = one(K, wrow, x + (size_t)r * stride);
}

static void dot_rows_f32(const ar_kernels *k, int64_t K, const float *w, const float *x,
                         size_t stride, int nr, float *ys) {
    if (k->dot_f32_n) {
        k->dot_f32_n(K, w, x, stride, nr, ys);
        return;
    }
    for (int r = 0; r < nr; r++) ys[r] = k->dot_f32(K, w, x + (size_t)r * stride);
}

/* Whether output o multiplies in register tiles (F16/BF16 weights, float activations). */
static bool tiled(const mm_job *j, int o) {
    return j->act_of[o] == AR_ACT_F32 && j->e->k.vec_dot_f_mn[j->outs[o].w->type];
}

/* A product as stored: plus the row's bias when the output has one. Every path stores
 * through this (the GEMM paths afterwards, add_bias), so results do not depend on the path.
 * Without a bias nothing is added: no pass over the output. */
static inline float biased(const ar_mm_out *o, int64_t r, float v) {
    return o->bias ? v + o->bias[r] : v;
}

static void add_bias(const ar_mm_out *o, int64_t r0, int64_t r1, int t0, int t1) {
    if (!o->bias) return;
    for (int t = t0; t < t1; t++)
        for (int64_t r = r0; r < r1; r++)
            o->y[(size_t)t * o->ldy + r] = biased(o, r, o->y[(size_t)t * o->ldy + r]);
}

/* The GEMM paths unpack a block of weight rows just before its long multiplication, and the
 * unpacking waits on memory (the weights come from RAM once per matmul). So the next block's
 * bytes are requested into L2 while this one multiplies, a slice before each GEMM_SLICE
 * tokens. Measured with perf on a Q8_0 model from 4 KB file pages: the unpacking's share of
 * prefill 17.6% without it, 13-15% with it; most of the rest was TLB misses, which the
 * engine's copy of the weights in 2 MB pages removes (weights.c: 4.3%). */
#define GEMM_SLICE 32

typedef struct ahead {
    const uint8_t *p, *end;
    size_t step;
} ahead;

/* A block of weight rows: [r0, r1) of output o (o NULL: none). */
typedef struct rows {
    const ar_mm_out *o;
    int64_t r0, r1;
} rows;

static ahead ahead_of(const rows *next, int n_tok) {
    ahead a = {NULL, NULL, 0};
    if (!next->o || next->r0 >= next->r1) return a;
    const ar_tensor *w = next->o->w;
    const size_t w_row = (size_t)(w->n_bytes / (uint64_t)w->ne[1]);
    a.p = w->data + (size_t)next->r0 * w_row;
    a.end = w->data + (size_t)next->r1 * w_row;
    int slices = (n_tok + GEMM_SLICE - 1) / GEMM_SLICE;
    a.step = ((size_t)(a.end - a.p) / (size_t)slices + 63) & ~(size_t)63;
    return a;
}

static void ahead_slice(ahead *a) {
    const uint8_t *stop = a->end - a->p > (ptrdiff_t)a->step ? a->p + a->step : a->end;
    for (; a->p < stop; a->p += 64) __builtin_prefetch(a->p, 0, 2);
}

/* The GEMM path of the k-quants' accurate precision (a tile of several tokens): the block's
 * weight rows are unpacked once into the thread's scratch (pack16; the float rows' area,
 * which engine.c sizes to hold them), then multiplied with every token of the tile
 * (gemm16). Each product is bit-identical to vec_dot16 on its row and token. */
static void block_times_tokens_gemm16(const mm_job *j, const ar_mm_out *o, int64_t r0, int64_t r1,
                                      int t0, int t1, float *wf, const rows *next_rows) {
    const ar_kernels *k = &j->e->k;
    const ar_tensor *w = o->w;
    size_t w_row = (size_t)(w->n_bytes / (uint64_t)w->ne[1]);
    size_t nblk = (size_t)j->K / AR_QK16K, row_bytes = j->xq_row[AR_ACT_Q16K];
    ar_block_w16 *packed = (ar_block_w16 *)(((uintptr_t)wf + 63) & ~(uintptr_t)63);
    for (int64_t r = r0; r < r1; r++)
        k->pack16[w->type](j->K, w->data + (size_t)r * w_row, packed + (size_t)(r - r0) * nblk);
    ahead next = ahead_of(next_rows, t1 - t0);
    for (int t = t0; t < t1; t += GEMM_SLICE) {
        int n = t1 - t < GEMM_SLICE ? t1 - t : GEMM_SLICE;
        ahead_slice(&next);
        k->gemm16[w->type](j->K, packed, nblk, (int)(r1 - r0),
                           j->xq[AR_ACT_Q16K] + (size_t)t * row_bytes, row_bytes, n,
                           o->y + (size_t)t * o->ldy + r0, (size_t)o->ldy);
    }
    add_bias(o, r0, r1, t0, t1);
}

/* The lane form's GEMM (the fast precision, a tile of several tokens): the block's weight
 * rows packed once into the thread's scratch (pack8), then multiplied with the tile's
 * tokens in GEMM layout (gemm8), each product bit-identical to vec_dot8. */
static void block_times_tokens_gemm8(const mm_job *j, const ar_mm_out *o, int64_t r0, int64_t r1,
                                     int t0, int t1, float *wf, const rows *next_rows) {
    const ar_kernels *k = &j->e->k;
    const ar_tensor *w = o->w;
    size_t w_row = (size_t)(w->n_bytes / (uint64_t)w->ne[1]);
    const int lane = k->lanes8[w->type], l = lane == 16;
    size_t ngroups = (size_t)ar_lane_groups(j->K, lane);
    ar_block_w8 *packed = (ar_block_w8 *)(((uintptr_t)wf + 63) & ~(uintptr_t)63);
    for (int64_t r = r0; r < r1; r++)
        k->pack8[w->type](j->K, w->data + (size_t)r * w_row, packed + (size_t)(r - r0) * ngroups);
    ahead next = ahead_of(next_rows, t1 - t0);
    for (int t = t0; t < t1; t += GEMM_SLICE) {
        int n = t1 - t < GEMM_SLICE ? t1 - t : GEMM_SLICE;
        const uint8_t *x = j->x8[l] + (size_t)t * j->x8_row[l];
        ahead_slice(&next);
        k->gemm8(j->K, packed, ngroups, (int)(r1 - r0), (const ar_block_x8 *)(const void *)x,
                 ngroups, n, lane, o->y + (size_t)t * o->ldy + r0, (size_t)o->ldy);
    }
    add_bias(o, r0, r1, t0, t1);
}

/* Products of weight rows [r0, r1) of output o (at most ROW_BLOCK) with tokens [t0, t1).
 * Loop order: for each group of activation rows (AR_MAX_NR rows: up to 4 tokens, or 2 in the
 * accurate precision where each token has two quantized rows - its activations and their
 * rounding error - whose products add up), every weight row of the block. The group stays in
 * L1 while the block's weight rows go by; the block stays in L1/L2 for the whole tile. */
static void block_times_tokens(const mm_job *j, const ar_mm_out *o, int64_t r0, int64_t r1, int t0,
                               int t1, float *wf, const rows *next) {
    const ar_kernels *k = &j->e->k;
    const ar_tensor *w = o->w;
    size_t w_row = (size_t)(w->n_bytes / (uint64_t)w->ne[1]);
    float ys[AR_MAX_NR];
    ar_act act = j->act_of[o - j->outs];
    if (tiled(j, (int)(o - j->outs))) { /* F16/BF16 rows: register tiles */
        float tile[AR_MN_W * AR_MN_R];
        for (int t = t0; t < t1; t += AR_MN_R) {
            int nr = t1 - t < AR_MN_R ? t1 - t : AR_MN_R;
            const uint8_t *xg = (const uint8_t *)(j->x + (size_t)t * j->ldx);
            /* One token (decode) streams the weights, and the tile shape that streams fastest
             * depends on K (measured with one thread, see half_avx512.c): one row per call
             * for short rows, four for long ones. The results are the same either way. */
            int max_w = nr > 1 ? AR_MN_W : j->K > 4096 ? 4 : 1;
            for (int64_t r = r0; r < r1; r += max_w) {
                int nw = r1 - r < max_w ? (int)(r1 - r) : max_w;
                k->vec_dot_f_mn[w->type](j->K, w->data + (size_t)r * w_row, w_row, nw, xg,
                                         (size_t)j->ldx * sizeof(float), nr, tile);
                for (int a = 0; a < nw; a++)
                    for (int i = 0; i < nr; i++)
                        o->y[(size_t)(t + i) * o->ldy + r + a] = biased(o, r + a, tile[a * nr + i]);
            }
        }
        return;
    }
    if (act == AR_ACT_F32) { /* float path: rows converted once per tile */
        for (int64_t r = r0; r < r1; r++)
            if (w->type != AR_TYPE_F32)
                k->to_float[w->type](w->data + (size_t)r * w_row,
                                     wf + (size_t)(r - r0) * (size_t)j->K, j->K);
        for (int t = t0; t < t1; t += AR_MAX_NR) {
            int nr = t1 - t < AR_MAX_NR ? t1 - t : AR_MAX_NR;
            for (int64_t r = r0; r < r1; r++) {
                const float *row = w->type == AR_TYPE_F32
                                       ? (const float *)(w->data + (size_t)r * w_row)
                                       : wf + (size_t)(r - r0) * (size_t)j->K;
                dot_rows_f32(k, j->K, row, j->x + (size_t)t * j->ldx, (size_t)j->ldx, nr, ys);
                for (int i = 0; i < nr; i++)
                    o->y[(size_t)(t + i) * o->ldy + r] = biased(o, r, ys[i]);
            }
        }
        return;
    }
    if (act == AR_ACT_L16) { /* packed rows, any number of tokens */
        const size_t ng = (size_t)ar_lane_groups(j->K, 32), row_bytes = j->xq_row[AR_ACT_L16];
        k->gemm_l16(
            j->K, (const ar_block_wl16 *)(const void *)w->data + (size_t)r0 * ng, ng,
            (int)(r1 - r0),
            (const ar_block_xl16 *)(const void *)(j->xq[AR_ACT_L16] + (size_t)t0 * row_bytes), ng,
            t1 - t0, o->y + (size_t)t0 * o->ldy + r0, (size_t)o->ldy);
        add_bias(o, r0, r1, t0, t1);
        return;
    }
    if (act == AR_ACT_Q16K && t1 - t0 > AR_MAX_NR && k->gemm16[w->type]) { /* prefill */
        block_times_tokens_gemm16(j, o, r0, r1, t0, t1, wf, next);
        return;
    }
    if (act == AR_ACT_A8 && j->x8[k->lanes8[w->type] == 16] && t1 - t0 > AR_MAX_NR) {
        block_times_tokens_gemm8(j, o, r0, r1, t0, t1, wf, next);
        return;
    }
    bool paired = j->paired && (act == AR_ACT_Q8A || act == AR_ACT_Q8K);
    int per_token = paired ? 2 : 1, step = AR_MAX_NR / per_token;
    size_t row_bytes = j->xq_row[act];
    for (int t = t0; t < t1; t += step) {
        int nt = t1 - t < step ? t1 - t : step;
        const uint8_t *xg = j->xq[act] + (size_t)t * per_token * row_bytes;
        for (int64_t r = r0; r < r1; r++) {
            dot_rows(k, act, w->type, j->K, w->data + (size_t)r * w_row, xg, row_bytes,
                     nt * per_token, ys);
            for (int i = 0; i < nt; i++)
                o->y[(size_t)(t + i) * o->ldy + r] =
                    biased(o, r, paired ? ys[2 * i] + ys[2 * i + 1] : ys[i]);
        }
    }
}

/* Weight rows per block of output o. */
static int64_t row_step(const mm_job *j, int o) {
    return tiled(j, o) ? TILE_ROW_BLOCK : AR_ROW_BLOCK;
}

/* Row block b of the job (0 <= b < block_end[n_outs - 1]), or none past the last. */
static rows block_rows(const mm_job *j, int64_t b) {
    rows r = {NULL, 0, 0};
    if (b >= j->block_end[j->n_outs - 1]) return r;
    int o = 0;
    while (b >= j->block_end[o]) o++;
    const int64_t n = j->outs[o].w->ne[1], step = row_step(j, o);
    r.o = &j->outs[o];
    r.r0 = (b - (o ? j->block_end[o - 1] : 0)) * step;
    r.r1 = r.r0 + step < n ? r.r0 + step : n;
    return r;
}

static void multiply_rows(int ith, int nth, void *ctx) {
    mm_job *j = ctx;
    float *wf = j->scratch + (size_t)ith * j->scratch_stride;
    if (j->dynamic) {
        /* Each thread claims its next block before multiplying the current one, so that
         * block's weights can be requested while this one multiplies. */
        rows cur = block_rows(j, atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed));
        while (cur.o) {
            rows nxt = block_rows(j, atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed));
            block_times_tokens(j, cur.o, cur.r0, cur.r1, 0, j->n_tok, wf, &nxt);
            cur = nxt;
        }
        return;
    }
    int64_t g0 = j->total_rows * ith / nth, g1 = j->total_rows * (ith + 1) / nth;
    for (int t0 = 0; t0 < j->n_tok; t0 += j->tile) {
        int t1 = t0 + j->tile < j->n_tok ? t0 + j->tile : j->n_tok;
        /* The thread's global rows [g0, g1) run across the outputs in order. */
        int64_t base = 0;
        for (int o = 0; o < j->n_outs; o++) {
            int64_t n = j->outs[o].w->ne[1];
            int64_t lo = g0 > base ? g0 - base : 0, hi = g1 - base < n ? g1 - base : n;
            int64_t step = row_step(j, o);
            for (int64_t r = lo; r < hi; r += step) {
                int64_t r1 = r + step < hi ? r + step : hi;
                rows nxt = {&j->outs[o], r1, r1 + step < hi ? r1 + step : hi};
                block_times_tokens(j, &j->outs[o], r, r1, t0, t1, wf, &nxt);
            }
            base += n;
        }
    }
}

/* Bytes of one activation row of K elements in format act. */
static size_t act_row_bytes(ar_act act, int64_t K) {
    switch (act) {
    case AR_ACT_Q8A: return (size_t)K / AR_QK8A * sizeof(ar_block_q8a);
    case AR_ACT_Q8K: return (size_t)K / AR_QK8K * sizeof(ar_block_q8k);
    case AR_ACT_Q16K: return (size_t)K / AR_QK16K * sizeof(ar_block_q16k);
    case AR_ACT_Q16A: return ar_q16a_row_bytes(K);
    case AR_ACT_A8: return (size_t)K / 256 * sizeof(ar_block_a8);
    case AR_ACT_L16: return (size_t)ar_lane_groups(K, 32) * sizeof(ar_block_xl16);
    case AR_ACT_F32: break;
    }
    return (size_t)K * sizeof(float);
}

/* The activations a weight type takes in the engine's precision: float32, 8-bit blocks
 * (Q8A/Q8K, in the accurate precision paired with their rounding error), for the k-quants
 * in the accurate precision the 15-bit Q16K blocks when the tier has kernels, and in the
 * fast precision the lane form's A8 blocks for the types and tiers that have it (rows of a
 * multiple of 256). */
static ar_act activation_format(const ar_engine *e, uint32_t type, int64_t K) {
    if (type == AR_TYPE_L16) return AR_ACT_L16;
    ar_act act = e->k.act[type];
    if (act == AR_ACT_F32 || e->params.precision == AR_PRECISION_FLOAT32) return AR_ACT_F32;
    if (e->params.precision == AR_PRECISION_FAST && e->k.vec_dot8[type] && K % 256 == 0)
        return AR_ACT_A8;
    if (e->params.precision == AR_PRECISION_ACCURATE && e->k.vec_dot16[type])
        return e->k.act16[type];
    return act;
}

void ar_matmul_multi(ar_seq *s, const float *x, int n_tok, int64_t ldx, const ar_mm_out *outs,
                     int n_outs) {
    const ar_engine *e = s->e;
    mm_job j = {
        .e = e,
        .n_tok = n_tok,
        .x = x,
        .ldx = ldx,
        .K = outs[0].w->ne[0],
        .outs = outs,
        .n_outs = n_outs,
        .paired = e->params.precision == AR_PRECISION_ACCURATE,
        .scratch = s->scratch,
        .scratch_stride = s->scratch_stride,
    };
    bool quantize = false, all_gemm = true;
    for (int o = 0; o < n_outs; o++) {
        j.total_rows += outs[o].w->ne[1];
        ar_act act = activation_format(e, outs[o].w->type, j.K);
        j.act_of[o] = act;
        bool gemm8 = act == AR_ACT_A8 && e->k.gemm8 && n_tok > AR_MAX_NR;
        all_gemm = all_gemm && ((act == AR_ACT_Q16K && e->k.gemm16[outs[o].w->type]) || gemm8 ||
                                act == AR_ACT_L16);
        if (gemm8) {
            int l = e->k.lanes8[outs[o].w->type] == 16;
            j.x8[l] = s->xq_8x[l];
            j.x8_row[l] = (size_t)ar_lane_groups(j.K, l ? 16 : 32) * sizeof(ar_block_x8);
        }
        if (act == AR_ACT_F32) continue;
        j.xq[act] = act == AR_ACT_Q8A    ? s->xq_a
                    : act == AR_ACT_Q8K  ? s->xq_k
                    : act == AR_ACT_Q16K ? s->xq_16
                    : act == AR_ACT_Q16A ? s->xq_16a
                    : act == AR_ACT_A8   ? s->xq_8
                                         : s->xq_l16;
        j.xq_row[act] = act_row_bytes(act, j.K);
        quantize = true;
    }
    j.tile = all_gemm ? n_tok : TOKEN_TILE;
    j.dynamic = all_gemm && n_tok > AR_MAX_NR;
    for (int o = 0; o < n_outs; o++) {
        const int64_t step = row_step(&j, o);
        j.block_end[o] = (o ? j.block_end[o - 1] : 0) + (outs[o].w->ne[1] + step - 1) / step;
    }
    atomic_init(&j.next, 0);
    if (quantize) ar_pool_run(e->pool, quantize_rows, &j);
    ar_pool_run(e->pool, multiply_rows, &j);
}

void ar_matmul(ar_seq *s, const ar_tensor *w, const float *x, int n_tok, int64_t ldx, float *y,
               int64_t ldy, const float *bias) {
    ar_mm_out out = {.w = w, .y = y, .ldy = ldy, .bias = bias};
    ar_matmul_multi(s, x, n_tok, ldx, &out, 1);
}
