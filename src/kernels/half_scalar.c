/*
 * half_scalar.c - F16/BF16 weight rows times float32 activation rows in the scalar tier:
 * the reference tile vec_dot_f_mn, and no vec_dot_f / vec_dot_f_n.
 *
 * The definition of the F16/BF16 results is the two-pass path: convert the weight row with
 * to_float (the exact conversions of fp16.h), then dot_f32 (one float32 accumulator,
 * elements in order). vec_dot_f_mn here computes exactly that, pair by pair, without the
 * row buffer: it converts a chunk of HALF_CHUNK weights of each of the nw rows into a small
 * stack buffer (once for all nr activation rows) and adds the chunk's products into each
 * pair's accumulator in element order. The same products added in the same order: every
 * result is bit-identical to to_float + the scalar dot_f32 (tests/unit/test_kernels_half.c
 * checks this), so the scalar engine's numbers do not change with it. (The file is
 * compiled with -ffp-contract=off like every reference: no fused multiply-adds.)
 *
 * The single-pair entries vec_dot_f and vec_dot_f_n stay NULL in this tier (the SIMD tiers'
 * half_avx2.c / half_avx512.c fill them): a scalar fused dot would only repeat this file.
 */
#include "kernels/kernels.h"

#include "kernels/fp16.h"

#include <string.h>

#define HALF_CHUNK 64

/* The tile for one weight type: bf16 selects the conversion. */
static void half_mn(int64_t n, const uint8_t *w, size_t w_stride, int nw, const uint8_t *x,
                    size_t x_stride, int nr, float *ys, int bf16) {
    float acc[AR_MN_W * AR_MN_R] = {0};
    float wf[AR_MN_W][HALF_CHUNK];
    for (int64_t c = 0; c < n; c += HALF_CHUNK) {
        const int len = n - c < HALF_CHUNK ? (int)(n - c) : HALF_CHUNK;
        for (int i = 0; i < nw; i++)
            for (int e = 0; e < len; e++) {
                uint16_t h;
                memcpy(&h, w + (size_t)i * w_stride + 2 * (size_t)(c + e), sizeof h);
                wf[i][e] = bf16 ? ar_bf16_to_fp32(h) : ar_fp16_to_fp32(h);
            }
        for (int r = 0; r < nr; r++) {
            const float *xr = (const float *)(const void *)(x + (size_t)r * x_stride) + c;
            for (int i = 0; i < nw; i++) {
                float sum = acc[i * nr + r];
                for (int e = 0; e < len; e++) sum += wf[i][e] * xr[e];
                acc[i * nr + r] = sum;
            }
        }
    }
    for (int p = 0; p < nw * nr; p++) ys[p] = acc[p];
}

static void vec_dot_mn_f16(int64_t n, const void *w, size_t w_stride, int nw, const void *x,
                           size_t x_stride, int nr, float *ys) {
    half_mn(n, w, w_stride, nw, x, x_stride, nr, ys, 0);
}

static void vec_dot_mn_bf16(int64_t n, const void *w, size_t w_stride, int nw, const void *x,
                            size_t x_stride, int nr, float *ys) {
    half_mn(n, w, w_stride, nw, x, x_stride, nr, ys, 1);
}

void ar_kernels_fill_half_scalar(ar_kernels *k) {
    k->vec_dot_f[AR_TYPE_F16] = NULL;
    k->vec_dot_f_n[AR_TYPE_F16] = NULL;
    k->vec_dot_f[AR_TYPE_BF16] = NULL;
    k->vec_dot_f_n[AR_TYPE_BF16] = NULL;
    k->vec_dot_f_mn[AR_TYPE_F16] = vec_dot_mn_f16;
    k->vec_dot_f_mn[AR_TYPE_BF16] = vec_dot_mn_bf16;
}
