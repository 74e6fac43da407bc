/*
 * qk_scalar.c - the scalar reference of the k-quant integer path: activations quantized to
 * Q8K blocks, and the dot product of one Q2_K..Q6_K weight row with one Q8K row.
 *
 * Activations (quantize_q8k, as llama.cpp's quantize_row_q8_K_ref). Per block of 256:
 *   amax = the largest |x[i]|, max = that x[i] with its sign (the first one on ties);
 *   iscale = -127 / max, qs[i] = round(iscale * x[i]) (nearest, ties to even), d = 1 / iscale,
 *   bsums[j] = qs[16j] + ... + qs[16j + 15].
 * The element of largest magnitude becomes -127 (so d < 0 when max > 0), everything lies in
 * -127..127 and x[i] ~= d * qs[i]. A block of zeros gives d = 0 and zero quants and sums.
 * Rounding is the float "magic number" trick (add 1.5 * 2^23, keep the low mantissa bits),
 * then a clamp to -128..127; for finite inputs the clamp never acts, and for inf/NaN or a
 * subnormal amax the steps are still fully defined, so every tier gives the same bytes.
 * (Older ggml used -128 / max; ggml-quants.c switched to -127 for its IQ2 kernels, and the
 * llama.cpp build the golden data comes from uses -127.)
 *
 * Dot products. Every k-quant weight is y = D * s * q - M * m over sub-blocks of 16 or 32
 * elements (D, M the block's float16 super-scales, s, m small integer scales and mins, q
 * the small integer quant; types without a min have M m = 0). With activations x = dx * a:
 *
 *   sum_i y[i] x[i] = dx * D * sum_sub s * (sum_{i in sub} q[i] a[i])
 *                   - dx * M * sum_sub m * (sum_{i in sub} a[i])
 *
 * The inner sums are exact integers; the last one is read from the Q8K bsums, so the
 * mins cost 16 multiplies a block. Each kernel unpacks a weight block into int8 quants and
 * integer scales (the layouts are in quant.h), forms the two integer sums and adds
 * (dx * D) * isum - (dx * M) * msum to a float accumulator, block after block. Those float
 * operations are the only rounding, so SIMD tiers, which sum the same integers in another
 * order, agree with this reference to float reassociation error.
 *
 * Integer ranges (|a| <= 128): the largest block sum is Q6_K's, 256 * 32 * 128 * 128 =
 * 2^27, well inside int32.
 */
#include "kernels/kernels.h"

#include "kernels/fp16.h"
#include "kernels/quant.h"

#include <math.h>
#include <string.h>

/* Round to the nearest integer, ties to even, for |f| < 2^22: adding 1.5 * 2^23 leaves the
 * rounded value in the low mantissa bits. Outside that range (only reached from inf, NaN
 * or an inf scale) the result is some defined int that the caller clamps. */
static int round_nearest(float f) {
    const float v = f + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

static void quantize_q8k(const float *x, void *vy, int64_t n) {
    ar_block_q8k *y = vy;
    for (int64_t ib = 0; ib < n / AR_QK8K; ib++, x += AR_QK8K) {
        ar_block_q8k *b = &y[ib];
        float amax = 0.0f, max = 0.0f;
        for (int i = 0; i < AR_QK8K; i++) {
            if (fabsf(x[i]) > amax) { /* strict: the first of equal magnitudes wins; NaN never */
                amax = fabsf(x[i]);
                max = x[i];
            }
        }
        if (amax == 0.0f) {
            memset(b, 0, sizeof *b);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int i = 0; i < AR_QK8K; i++) {
            int v = round_nearest(iscale * x[i]);
            b->qs[i] = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
        }
        for (int j = 0; j < AR_QK8K / 16; j++) {
            int sum = 0;
            for (int i = 16 * j; i < 16 * j + 16; i++) sum += b->qs[i];
            b->bsums[j] = (int16_t)sum;
        }
        b->d = 1.0f / iscale;
    }
}

/* sum of q[i] * a[i] over `len` elements */
static int32_t dot_i8(const int8_t *q, const int8_t *a, int len) {
    int32_t sum = 0;
    for (int i = 0; i < len; i++) sum += (int32_t)q[i] * a[i];
    return sum;
}

/* Q2_K: 16 sub-blocks of 16, q in 0..3, 4-bit scale (low nibble) and min (high nibble). */
static float vec_dot_q2_k(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_q8k *x = vx;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q2_K)) {
        block_q2_K b;
        memcpy(&b, w, sizeof b);
        int8_t q[QK_K]; /* element 128h + 32g + l: bits 2g..2g+1 of qs[32h + l] */
        for (int h = 0; h < 2; h++)
            for (int g = 0; g < 4; g++)
                for (int l = 0; l < 32; l++)
                    q[128 * h + 32 * g + l] = (int8_t)((b.qs[32 * h + l] >> (2 * g)) & 3);
        int32_t isum = 0, msum = 0;
        for (int s = 0; s < 16; s++) {
            isum += (b.scales[s] & 15) * dot_i8(q + 16 * s, x[ib].qs + 16 * s, 16);
            msum += (b.scales[s] >> 4) * x[ib].bsums[s];
        }
        const float dd = ar_fp16_to_fp32(b.d) * x[ib].d;
        const float dm = ar_fp16_to_fp32(b.dmin) * x[ib].d;
        sum += dd * (float)isum - dm * (float)msum;
    }
    return sum;
}

/* Q3_K: 16 sub-blocks of 16, q in -4..3, 6-bit scales biased by 32. */
static float vec_dot_q3_k(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_q8k *x = vx;
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
        int32_t isum = 0;
        for (int s = 0; s < 16; s++) {
            const int lo = s < 8 ? b.scales[s] & 15 : b.scales[s - 8] >> 4;
            const int hi = (b.scales[8 + s % 4] >> (2 * (s / 4))) & 3;
            isum += ((lo | hi << 4) - 32) * dot_i8(q + 16 * s, x[ib].qs + 16 * s, 16);
        }
        sum += ar_fp16_to_fp32(b.d) * x[ib].d * (float)isum;
    }
    return sum;
}

/* Q4_K: 8 sub-blocks of 32, q in 0..15, 6-bit scales and mins. */
static float vec_dot_q4_k(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_q8k *x = vx;
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
        int32_t isum = 0, msum = 0;
        for (int s = 0; s < 8; s++) {
            isum += sc[s] * dot_i8(q + 32 * s, x[ib].qs + 32 * s, 32);
            msum += mn[s] * (x[ib].bsums[2 * s] + x[ib].bsums[2 * s + 1]);
        }
        const float dd = ar_fp16_to_fp32(b.d) * x[ib].d;
        const float dm = ar_fp16_to_fp32(b.dmin) * x[ib].d;
        sum += dd * (float)isum - dm * (float)msum;
    }
    return sum;
}

/* Q5_K: Q4_K with a fifth bit from qh, q in 0..31. */
static float vec_dot_q5_k(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_q8k *x = vx;
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
        int32_t isum = 0, msum = 0;
        for (int s = 0; s < 8; s++) {
            isum += sc[s] * dot_i8(q + 32 * s, x[ib].qs + 32 * s, 32);
            msum += mn[s] * (x[ib].bsums[2 * s] + x[ib].bsums[2 * s + 1]);
        }
        const float dd = ar_fp16_to_fp32(b.d) * x[ib].d;
        const float dm = ar_fp16_to_fp32(b.dmin) * x[ib].d;
        sum += dd * (float)isum - dm * (float)msum;
    }
    return sum;
}

/* Q6_K: 16 sub-blocks of 16, q in -32..31, int8 scales. */
static float vec_dot_q6_k(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_q8k *x = vx;
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
        int32_t isum = 0;
        for (int s = 0; s < 16; s++)
            isum += b.scales[s] * dot_i8(q + 16 * s, x[ib].qs + 16 * s, 16);
        sum += ar_fp16_to_fp32(b.d) * x[ib].d * (float)isum;
    }
    return sum;
}

void ar_kernels_fill_qk_scalar(ar_kernels *k) {
    k->quantize_q8k = quantize_q8k;
    static const struct {
        ar_type type;
        ar_vec_dot_fn dot;
    } dots[] = {
        {AR_TYPE_Q2_K, vec_dot_q2_k}, {AR_TYPE_Q3_K, vec_dot_q3_k}, {AR_TYPE_Q4_K, vec_dot_q4_k},
        {AR_TYPE_Q5_K, vec_dot_q5_k}, {AR_TYPE_Q6_K, vec_dot_q6_k},
    };
    for (size_t i = 0; i < sizeof dots / sizeof dots[0]; i++) {
        k->act[dots[i].type] = AR_ACT_Q8K;
        k->vec_dot[dots[i].type] = dots[i].dot;
    }
}
