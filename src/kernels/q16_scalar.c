/*
 * q16_scalar.c - the scalar reference of the k-quants' accurate path: activations quantized
 * to Q16K blocks (15-bit integers), and the dot product of one Q2_K..Q6_K weight row with
 * one Q16K row in a single integer pass. The AVX2 and AVX-512 versions (q16_avx2.c,
 * q16_avx512.c) give the same blocks byte for byte and the same dot products up to float
 * reassociation (tests/unit/test_kernels_q16.c).
 *
 * Activations (quantize_q16k), per block of 256, as q32_scalar.c's Q8A with 16383 for 127:
 *
 *     amax     = max |x[i]|
 *     d        = amax / 16383                 (one float32 division)
 *     qs[i]    = roundf(x[i] / d)             (one float32 division; halfway cases away
 *                                              from zero), clamped to -16383..16383
 *     bsums[j] = qs[16j] + ... + qs[16j + 15]
 *
 * x[i] / d is within an ulp or two of amax / d ~= 16383 at most, so the clamp never acts
 * on finite input (it is kept so the bound holds whatever the rounding). Special blocks:
 *  - a block holding an inf or NaN gets d = NaN and qs = bsums = 0 (every dot product with
 *    it is NaN, as the float path would give inf or NaN);
 *  - a block whose d would be below FLT_MIN (amax < 16383 * 2^-126, including all zeros)
 *    is all zero (d = 0): x / d could overflow there.
 * Every field of every block is written.
 *
 * Dot products: the math of qk_scalar.c (every k-quant weight is D * s * q - M * m per
 * sub-block), with int16 activations a = qs:
 *
 *   sum_i y[i] x[i] = dx * D * sum_sub s * (sum_{i in sub} q[i] a[i])
 *                   - dx * M * sum_sub m * (bsums of the sub-block)
 *
 * and per block sum += (D * dx) * (float)isum - (M * dx) * (float)msum, evaluated left to
 * right in float32, blocks in order (types without a min: sum += D * dx * (float)isum).
 *
 * Integer ranges (|a| <= 16383 < 2^14): a sub-block sum of q * a is at most 32 * 31 * 16383
 * (Q5_K) < 2^24 and fits int32; times its scale (|s * q| <= 4096, Q6_K's 32 * 128) and over
 * a block of 256 it reaches 256 * 4096 * 16383 ~= 2^34, so isum is an int64 (the SIMD
 * tiers split a block over int32 lanes: AVX-512 16 lanes of 16 products, 16 * 4096 * 16383
 * < 2^30; AVX2 8 lanes of 32 products, 32 * 4096 * 16383 = INT32_MAX - 131071, so the
 * +-16383 range of the activations is what keeps AVX2 from overflowing).
 * msum is at most 16 * 15 * 16 * 16383 (Q2_K) or 8 * 63 * 32 * 16383 (Q4_K/Q5_K) < 2^28.
 * (float)isum and (float)msum are the only integer roundings (isum can exceed 2^24).
 */
#include "kernels/kernels.h"

#include "kernels/fp16.h"
#include "kernels/quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* --- Activation quantizer ---------------------------------------------------------------- */

static void quantize_q16k(const float *x, void *vy, int64_t n) {
    ar_block_q16k *y = vy;
    for (int64_t ib = 0; ib < n / AR_QK16K; ib++, x += AR_QK16K) {
        ar_block_q16k *b = &y[ib];
        float amax = 0.0f;
        int finite = 1;
        for (int i = 0; i < AR_QK16K; i++) {
            if (!isfinite(x[i]))
                finite = 0;
            else if (fabsf(x[i]) > amax)
                amax = fabsf(x[i]);
        }
        memset(b, 0, sizeof *b);
        if (!finite) {
            b->d = NAN;
            continue;
        }
        const float d = amax / 16383.0f;
        if (d < FLT_MIN) continue; /* all zero */
        for (int i = 0; i < AR_QK16K; i++) {
            float v = roundf(x[i] / d);
            v = v < -16383.0f ? -16383.0f : v > 16383.0f ? 16383.0f : v;
            b->qs[i] = (int16_t)v;
        }
        for (int j = 0; j < AR_QK16K / 16; j++) {
            int32_t sum = 0;
            for (int i = 16 * j; i < 16 * j + 16; i++) sum += b->qs[i];
            b->bsums[j] = sum;
        }
        b->d = d;
    }
}

/* --- Dot products ------------------------------------------------------------------------ */

/* sum of q[i] * a[i] over `len` (16 or 32) elements: at most 32 * 32 * 16383 < 2^24 */
static int32_t dot_i16(const int8_t *q, const int16_t *a, int len) {
    int32_t sum = 0;
    for (int i = 0; i < len; i++) sum += (int32_t)q[i] * a[i];
    return sum;
}

/* Q2_K: 16 sub-blocks of 16, q in 0..3, 4-bit scale (low nibble) and min (high nibble). */
static float vec_dot16_q2_k(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_q16k *x = vx;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q2_K)) {
        block_q2_K b;
        memcpy(&b, w, sizeof b);
        int8_t q[QK_K]; /* element 128h + 32g + l: bits 2g..2g+1 of qs[32h + l] */
        for (int h = 0; h < 2; h++)
            for (int g = 0; g < 4; g++)
                for (int l = 0; l < 32; l++)
                    q[128 * h + 32 * g + l] = (int8_t)((b.qs[32 * h + l] >> (2 * g)) & 3);
        int64_t isum = 0;
        int32_t msum = 0;
        for (int s = 0; s < 16; s++) {
            isum += (int64_t)(b.scales[s] & 15) * dot_i16(q + 16 * s, x[ib].qs + 16 * s, 16);
            msum += (b.scales[s] >> 4) * x[ib].bsums[s];
        }
        const float dd = ar_fp16_to_fp32(b.d) * x[ib].d;
        const float dm = ar_fp16_to_fp32(b.dmin) * x[ib].d;
        sum += dd * (float)isum - dm * (float)msum;
    }
    return sum;
}

/* Q3_K: 16 sub-blocks of 16, q in -4..3, 6-bit scales biased by 32. */
static float vec_dot16_q3_k(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_q16k *x = vx;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q3_K)) {
        block_q3_K b;
        memcpy(&b, w, sizeof b);
        int8_t q[QK_K]; /* as Q2_K, minus 4 where bit 4h + g of hmask[l] is clear */
        for (int h = 0; h < 2; h++) {
            for (int g = 0; g < 4; g++) {
                for (int l = 0; l < 32; l++) {
                    const int low = (b.qs[32 * h + l] >> (2 * g)) & 3;
                    const int high = (b.hmask[l] >> (4 * h + g)) & 1;
                    q[128 * h + 32 * g + l] = (int8_t)(low - (high ? 0 : 4));
                }
            }
        }
        int64_t isum = 0;
        for (int s = 0; s < 16; s++) {
            const int lo = s < 8 ? b.scales[s] & 15 : b.scales[s - 8] >> 4;
            const int hi = (b.scales[8 + s % 4] >> (2 * (s / 4))) & 3;
            isum += (int64_t)((lo | hi << 4) - 32) * dot_i16(q + 16 * s, x[ib].qs + 16 * s, 16);
        }
        sum += ar_fp16_to_fp32(b.d) * x[ib].d * (float)isum;
    }
    return sum;
}

/* Q4_K: 8 sub-blocks of 32, q in 0..15, 6-bit scales and mins. */
static float vec_dot16_q4_k(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_q16k *x = vx;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q4_K)) {
        block_q4_K b;
        memcpy(&b, w, sizeof b);
        int8_t q[QK_K]; /* sub-block 2j: low nibbles of qs[32j ..], 2j + 1: high nibbles */
        for (int j = 0; j < 4; j++) {
            for (int l = 0; l < 32; l++) {
                q[64 * j + l] = (int8_t)(b.qs[32 * j + l] & 15);
                q[64 * j + 32 + l] = (int8_t)(b.qs[32 * j + l] >> 4);
            }
        }
        int sc[8], mn[8];
        ar_unpack_scales_k4(b.scales, sc, mn);
        int64_t isum = 0;
        int32_t msum = 0;
        for (int s = 0; s < 8; s++) {
            isum += (int64_t)sc[s] * dot_i16(q + 32 * s, x[ib].qs + 32 * s, 32);
            msum += mn[s] * (x[ib].bsums[2 * s] + x[ib].bsums[2 * s + 1]);
        }
        const float dd = ar_fp16_to_fp32(b.d) * x[ib].d;
        const float dm = ar_fp16_to_fp32(b.dmin) * x[ib].d;
        sum += dd * (float)isum - dm * (float)msum;
    }
    return sum;
}

/* Q5_K: Q4_K with a fifth bit from qh, q in 0..31. */
static float vec_dot16_q5_k(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_q16k *x = vx;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q5_K)) {
        block_q5_K b;
        memcpy(&b, w, sizeof b);
        int8_t q[QK_K]; /* as Q4_K; bit 4 of sub-block s is bit s of qh[l] */
        for (int j = 0; j < 4; j++) {
            for (int l = 0; l < 32; l++) {
                q[64 * j + l] = (int8_t)((b.qs[32 * j + l] & 15) | ((b.qh[l] >> (2 * j)) & 1) << 4);
                q[64 * j + 32 + l] =
                    (int8_t)((b.qs[32 * j + l] >> 4) | ((b.qh[l] >> (2 * j + 1)) & 1) << 4);
            }
        }
        int sc[8], mn[8];
        ar_unpack_scales_k4(b.scales, sc, mn);
        int64_t isum = 0;
        int32_t msum = 0;
        for (int s = 0; s < 8; s++) {
            isum += (int64_t)sc[s] * dot_i16(q + 32 * s, x[ib].qs + 32 * s, 32);
            msum += mn[s] * (x[ib].bsums[2 * s] + x[ib].bsums[2 * s + 1]);
        }
        const float dd = ar_fp16_to_fp32(b.d) * x[ib].d;
        const float dm = ar_fp16_to_fp32(b.dmin) * x[ib].d;
        sum += dd * (float)isum - dm * (float)msum;
    }
    return sum;
}

/* Q6_K: 16 sub-blocks of 16, q in -32..31, int8 scales. */
static float vec_dot16_q6_k(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_q16k *x = vx;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q6_K)) {
        block_q6_K b;
        memcpy(&b, w, sizeof b);
        int8_t q[QK_K]; /* element 128h + 32g + l: nibble g/2 of ql[64h + 32(g%2) + l],
                         * bits 2g..2g+1 of qh[32h + l] */
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b.ql + 64 * h, *qh = b.qh + 32 * h;
            int8_t *qo = q + 128 * h;
            for (int l = 0; l < 32; l++) {
                qo[l] = (int8_t)(((ql[l] & 15) | (qh[l] & 3) << 4) - 32);
                qo[l + 32] = (int8_t)(((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32);
                qo[l + 64] = (int8_t)(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
                qo[l + 96] = (int8_t)(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
            }
        }
        int64_t isum = 0;
        for (int s = 0; s < 16; s++)
            isum += (int64_t)b.scales[s] * dot_i16(q + 16 * s, x[ib].qs + 16 * s, 16);
        sum += ar_fp16_to_fp32(b.d) * x[ib].d * (float)isum;
    }
    return sum;
}

/* --- Table ------------------------------------------------------------------------------- */

void ar_kernels_fill_q16_scalar(ar_kernels *k) {
    k->quantize_q16k = quantize_q16k;
    k->vec_dot16[AR_TYPE_Q2_K] = vec_dot16_q2_k;
    k->vec_dot16[AR_TYPE_Q3_K] = vec_dot16_q3_k;
    k->vec_dot16[AR_TYPE_Q4_K] = vec_dot16_q4_k;
    k->vec_dot16[AR_TYPE_Q5_K] = vec_dot16_q5_k;
    k->vec_dot16[AR_TYPE_Q6_K] = vec_dot16_q6_k;
    for (int t = AR_TYPE_Q2_K; t <= AR_TYPE_Q6_K; t++) k->act16[t] = AR_ACT_Q16K;
    /* vec_dot16_n stays NULL: callers loop vec_dot16 */
}
