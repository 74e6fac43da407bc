/*
 * gemm8_scalar.c - the fast precision's lane form, scalar reference (the definition of
 * every result; kernels.h describes the form): the activation quantizer (ar_block_a8),
 * vec_dot8 for Q4_K, Q6_K and Q8_0 rows as stored, and the GEMM form (pack8 for weight rows,
 * pack8x for activation rows, gemm8 on both).
 *
 * Each weight block is first unpacked to its natural form: the 256 unsigned bytes u in
 * element order and one float scale and minimum per 16 elements, so that w = scale * u - min:
 *
 *     Q4_K: u = the nibble,        scale = d * sc,  min = dmin * m   (sc, m: of the 32)
 *     Q6_K: u = the 6-bit value,   scale = d * sc,  min = scale * 32
 *     Q8_0: u = q + 128,           scale = d,       min = d * 128    (d: of the 32)
 *
 * (float32 products of the float16 d and the integer sc). Then each lane group (kernels.h:
 * two blocks in 32-element lanes, one in 16-element ones) is cut into its 16 lanes (lane()),
 * each lane takes the integer sum of u * q over its elements and goes through the two fused
 * multiply-adds of kernels.h (fmaf: one rounding each, as the SIMD tiers' fmadd/fnmadd), and
 * the lanes are added in the fixed order. The GEMM form stores u and the per-lane floats
 * already in lane order (the chunk layout of ar_block_w8/ar_block_x8), so gemm8 is the same
 * sums over the same bytes: bit-identical to vec_dot8 by construction, which the tests
 * check.
 */
#include "kernels/kernels.h"

#include "kernels/fp16.h"
#include "kernels/quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* Where lane L of a group (lanes of `len` elements) starts: its block (0 or 1) and its
 * first element in that block (kernels.h). */
static void lane_at(int len, int lane, int *block, int *first) {
    static const int sigma8[8] = {0, 2, 4, 6, 1, 3, 5, 7};
    *block = len == 32 ? lane / 8 : 0;
    *first = len == 32 ? 32 * sigma8[lane % 8] : 16 * (4 * (lane % 4) + lane / 4);
}

/* One weight block in natural form: sub-block j has elements 16j .. 16j + 15. */
typedef struct natural {
    uint8_t u[QK_K];
    float scale[16];
    float min[16];
} natural;

/* --- Activations --------------------------------------------------------------------------- */

static void quantize_a8(const float *x, void *vy, int64_t n) {
    ar_block_a8 *y = vy;
    for (int64_t ib = 0; ib < n / QK_K; ib++, x += QK_K) {
        ar_block_a8 *b = &y[ib];
        int sum16[16];
        for (int j = 0; j < 8; j++) {
            b->d[j] = ar_quantize32(x + 32 * j, b->qs + 32 * j);
            for (int h = 0; h < 2; h++) {
                sum16[2 * j + h] = 0;
                for (int i = 0; i < 16; i++) sum16[2 * j + h] += b->qs[32 * j + 16 * h + i];
            }
        }
        for (int j = 0; j < 8; j++) b->s32[j] = b->d[j] * (float)(sum16[2 * j] + sum16[2 * j + 1]);
        for (int j = 0; j < 16; j++) b->s16[j] = b->d[j / 2] * (float)sum16[j];
    }
}

/* --- Weights in natural form --------------------------------------------------------------- */

static void natural_q4_k(const uint8_t *w, natural *o) {
    block_q4_K b;
    memcpy(&b, w, sizeof b);
    const float d = ar_fp16_to_fp32(b.d), dmin = ar_fp16_to_fp32(b.dmin);
    int sc[8], mn[8];
    ar_unpack_scales_k4(b.scales, sc, mn);
    for (int j = 0; j < 16; j++) {
        o->scale[j] = d * (float)sc[j / 2];
        o->min[j] = dmin * (float)mn[j / 2];
    }
    for (int g = 0; g < 4; g++)
        for (int l = 0; l < 32; l++) {
            o->u[64 * g + l] = b.qs[32 * g + l] & 15;
            o->u[64 * g + 32 + l] = b.qs[32 * g + l] >> 4;
        }
}

static void natural_q6_k(const uint8_t *w, natural *o) {
    block_q6_K b;
    memcpy(&b, w, sizeof b);
    const float d = ar_fp16_to_fp32(b.d);
    for (int j = 0; j < 16; j++) {
        o->scale[j] = d * (float)b.scales[j];
        o->min[j] = o->scale[j] * 32.0f;
    }
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b.ql + 64 * h, *qh = b.qh + 32 * h;
        uint8_t *u = o->u + 128 * h;
        for (int l = 0; l < 32; l++) {
            u[l] = (uint8_t)((ql[l] & 15) | (qh[l] & 3) << 4);
            u[l + 32] = (uint8_t)((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4);
            u[l + 64] = (uint8_t)((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4);
            u[l + 96] = (uint8_t)((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4);
        }
    }
}

/* Eight Q8_0 blocks (256 elements) at w. */
static void natural_q8_0(const uint8_t *w, natural *o) {
    for (int j = 0; j < 8; j++) {
        block_q8_0 b;
        memcpy(&b, w + j * sizeof b, sizeof b);
        for (int h = 0; h < 2; h++) {
            o->scale[2 * j + h] = ar_fp16_to_fp32(b.d);
            o->min[2 * j + h] = o->scale[2 * j + h] * 128.0f;
        }
        for (int i = 0; i < 32; i++) o->u[32 * j + i] = (uint8_t)(b.qs[i] + 128);
    }
}

/* --- Products ------------------------------------------------------------------------------- */

/* One lane's two fused steps (kernels.h). */
static float lane_step(float acc, int32_t isum, float scale, float min, float dx, float xs) {
    acc = fmaf((float)isum, scale * dx, acc);
    return fmaf(-min, xs, acc);
}

/* The 16 lanes added in the SIMD tiers' order. */
static float hsum_lanes(float acc[16]) {
    float a[8], b[4], c[2];
    for (int i = 0; i < 8; i++) a[i] = acc[i] + acc[i + 8];
    for (int i = 0; i < 4; i++) b[i] = a[i] + a[i + 4];
    for (int i = 0; i < 2; i++) c[i] = b[i] + b[i + 2];
    return c[0] + c[1];
}

/* One lane group in lane order: the bytes of lane L are u[L][0 .. len), with its floats. The
 * absent block B of a row's last 32-element group is all zeros (kernels.h). */
typedef struct group {
    uint8_t u[16][32];
    int8_t q[16][32];
    float scale[16], min[16], dx[16], xs[16];
} group;

typedef void (*natural_fn)(const uint8_t *w, natural *o);

/* Group g of a weight row (w: the row, block_bytes per 256 elements; 32- or 16-element
 * lanes) and of an activation row x (either may be NULL), n elements. */
static void make_group(int len, int64_t n, int64_t g, const uint8_t *w, size_t block_bytes,
                       natural_fn unpack, const ar_block_a8 *x, group *out) {
    memset(out, 0, sizeof *out);
    for (int lane = 0; lane < 16; lane++) {
        int b, first;
        lane_at(len, lane, &b, &first);
        const int64_t ib = (len == 32 ? 2 * g : g) + b;
        if (ib >= n / QK_K) continue; /* the absent block B */
        if (w) {
            natural wb;
            unpack(w + (size_t)ib * block_bytes, &wb);
            memcpy(out->u[lane], wb.u + first, (size_t)len);
            out->scale[lane] = wb.scale[first / 16];
            out->min[lane] = wb.min[first / 16];
        }
        if (x) {
            memcpy(out->q[lane], x[ib].qs + first, (size_t)len);
            out->dx[lane] = x[ib].d[first / 32];
            out->xs[lane] = len == 32 ? x[ib].s32[first / 32] : x[ib].s16[first / 16];
        }
    }
}

static float dot8(int len, int64_t n, const uint8_t *w, size_t block_bytes, natural_fn unpack,
                  const ar_block_a8 *x) {
    float acc[16] = {0};
    for (int64_t g = 0; g < ar_lane_groups(n, len); g++) {
        group gr;
        make_group(len, n, g, w, block_bytes, unpack, x, &gr);
        for (int lane = 0; lane < 16; lane++) {
            int32_t isum = 0;
            for (int i = 0; i < len; i++) isum += (int32_t)gr.u[lane][i] * gr.q[lane][i];
            acc[lane] =
                lane_step(acc[lane], isum, gr.scale[lane], gr.min[lane], gr.dx[lane], gr.xs[lane]);
        }
    }
    return hsum_lanes(acc);
}

static float vec_dot8_q4_k(int64_t n, const void *w, const void *x) {
    return dot8(32, n, w, sizeof(block_q4_K), natural_q4_k, x);
}

static float vec_dot8_q6_k(int64_t n, const void *w, const void *x) {
    return dot8(16, n, w, sizeof(block_q6_K), natural_q6_k, x);
}

static float vec_dot8_q8_0(int64_t n, const void *w, const void *x) {
    return dot8(32, n, w, 8 * sizeof(block_q8_0), natural_q8_0, x);
}

/* --- GEMM form ------------------------------------------------------------------------------ */

/* Byte i (0..3) of chunk c of lane L in a chunk-layout block. */
static int chunk_pos(int c, int lane, int i) {
    return 64 * c + 4 * lane + i;
}

/* The bytes of a group's lanes (lanes[L][0 .. len)) in chunk layout. */
static void to_chunks(int len, const void *lanes, uint8_t out[512]) {
    const uint8_t(*b)[32] = lanes;
    for (int c = 0; c < len / 4; c++)
        for (int lane = 0; lane < 16; lane++)
            for (int i = 0; i < 4; i++) out[chunk_pos(c, lane, i)] = b[lane][4 * c + i];
}

static void pack8(int len, int64_t n, const uint8_t *w, size_t block_bytes, natural_fn unpack,
                  ar_block_w8 *out) {
    for (int64_t g = 0; g < ar_lane_groups(n, len); g++, out++) {
        group gr;
        make_group(len, n, g, w, block_bytes, unpack, NULL, &gr);
        memset(out, 0, sizeof *out);
        to_chunks(len, gr.u, out->u);
        memcpy(out->scale, gr.scale, sizeof gr.scale);
        memcpy(out->min, gr.min, sizeof gr.min);
    }
}

static void pack8_q4_k(int64_t n, const void *w, ar_block_w8 *out) {
    pack8(32, n, w, sizeof(block_q4_K), natural_q4_k, out);
}

static void pack8_q6_k(int64_t n, const void *w, ar_block_w8 *out) {
    pack8(16, n, w, sizeof(block_q6_K), natural_q6_k, out);
}

static void pack8_q8_0(int64_t n, const void *w, ar_block_w8 *out) {
    pack8(32, n, w, 8 * sizeof(block_q8_0), natural_q8_0, out);
}

static void pack8x(int64_t n, const ar_block_a8 *x, int len, ar_block_x8 *out) {
    for (int64_t g = 0; g < ar_lane_groups(n, len); g++, out++) {
        group gr;
        make_group(len, n, g, NULL, 0, NULL, x, &gr);
        memset(out, 0, sizeof *out);
        to_chunks(len, gr.q, (uint8_t *)out->qs);
        memcpy(out->dx, gr.dx, sizeof gr.dx);
        memcpy(out->xs, gr.xs, sizeof gr.xs);
    }
}

static void gemm8(int64_t n, const ar_block_w8 *w, size_t w_stride, int nw, const ar_block_x8 *x,
                  size_t x_stride, int nx, int len, float *y, size_t ldy) {
    for (int t = 0; t < nx; t++)
        for (int r = 0; r < nw; r++) {
            float acc[16] = {0};
            for (int64_t g = 0; g < ar_lane_groups(n, len); g++) {
                const ar_block_w8 *wb = w + (size_t)r * w_stride + g;
                const ar_block_x8 *xb = x + (size_t)t * x_stride + g;
                for (int lane = 0; lane < 16; lane++) {
                    int32_t isum = 0;
                    for (int c = 0; c < len / 4; c++)
                        for (int i = 0; i < 4; i++) {
                            const int p = chunk_pos(c, lane, i);
                            isum += (int32_t)wb->u[p] * xb->qs[p];
                        }
                    acc[lane] = lane_step(acc[lane], isum, wb->scale[lane], wb->min[lane],
                                          xb->dx[lane], xb->xs[lane]);
                }
            }
            y[(size_t)t * ldy + (size_t)r] = hsum_lanes(acc);
        }
}

/* --- Table ---------------------------------------------------------------------------------- */

void ar_kernels_fill_gemm8_scalar(ar_kernels *k) {
    k->lanes8[AR_TYPE_Q4_K] = 32;
    k->lanes8[AR_TYPE_Q6_K] = 16;
    k->lanes8[AR_TYPE_Q8_0] = 32;
    k->vec_dot8[AR_TYPE_Q4_K] = vec_dot8_q4_k;
    k->vec_dot8[AR_TYPE_Q6_K] = vec_dot8_q6_k;
    k->vec_dot8[AR_TYPE_Q8_0] = vec_dot8_q8_0;
    k->pack8[AR_TYPE_Q4_K] = pack8_q4_k;
    k->pack8[AR_TYPE_Q6_K] = pack8_q6_k;
    k->pack8[AR_TYPE_Q8_0] = pack8_q8_0;
    k->quantize_a8 = quantize_a8;
    k->pack8x = pack8x;
    k->gemm8 = gemm8;
}
