/*
 * q32_scalar.c - scalar reference of the integer path for the 32-element block types
 * Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0: the activation quantizer (float -> ar_block_q8a) and
 * the dot product of one weight row with one quantized activation row, per type.
 *
 * These functions define the results of the q32 family; the AVX2 and AVX-512 versions
 * (q32_avx2.c, q32_avx512.c) must give the same activation blocks bit for bit and the same
 * dot products up to float reassociation (tests/unit/test_kernels_q32.c).
 *
 * Activation quantization (llama.cpp's quantize_row_q8_0_ref / quantize_row_q8_1_ref, with
 * d and s kept in float32 where llama.cpp rounds them to float16), per block of 32:
 *
 *     amax  = max |x[i]|
 *     d     = amax / 127                  (one float32 division)
 *     id    = 1 / d                       (one float32 division)
 *     qs[i] = roundf(x[i] * id)           (nearest, halfway cases away from zero)
 *     s     = d * (float)sum(qs)
 *
 * Since x[i] * id is within a few ulps of at most 127, qs is in -127..127: -128 never
 * occurs, which the SIMD dot products rely on (a 16-bit pair sum of 2 * 128 * 127 fits
 * int16, 2 * 128 * 128 does not). Two cases llama.cpp leaves undefined are pinned down:
 *  - a block holding an inf or NaN gets d = s = NaN and qs = 0, so every dot product with
 *    it is NaN (the float path would also give inf or NaN);
 *  - a block whose d would be below FLT_MIN (amax < 127 * 2^-126, including all zeros) gets
 *    d = s = 0 and qs = 0: 1 / d could overflow there. llama.cpp's float16 d already
 *    flushes every d below 2^-24 to zero or a float16 subnormal.
 *
 * Dot products. Per block the integer sum P = sum(q[i] * qs[i]) is exact (int32); with the
 * weight's float16 scale dw (and minimum mw for the "_1" types), the block contributes
 *
 *     Q4_0: (dw * d) * P,  q = nibble - 8          Q4_1: (dw * d) * P + mw * s,  q = nibble
 *     Q5_0: (dw * d) * P,  q = 5-bit value - 16    Q5_1: (dw * d) * P + mw * s,  q = 5-bit
 *     Q8_0: (dw * d) * P,  q = the int8 weight
 *
 * evaluated left to right in float32, and the contributions are added in block order into
 * one float32 sum. Block layouts are in quant.h; weight blocks are copied out with memcpy,
 * so rows may have any alignment.
 */
#include "kernels/kernels.h"

#include "kernels/fp16.h"
#include "kernels/quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* --- Activation quantizer ---------------------------------------------------------------- */

static void quantize_q8a(const float *x, void *vy, int64_t n) {
    ar_block_q8a *y = vy;
    for (int64_t ib = 0; ib < n / AR_QK8A; ib++, x += AR_QK8A) {
        ar_block_q8a *b = &y[ib];
        const float d = ar_quantize32(x, b->qs);
        int sum = 0;
        for (int i = 0; i < AR_QK8A; i++) sum += b->qs[i];
        b->d = d; /* NaN or 0 in the special cases, and then s too (qs is all zero) */
        b->s = d * (float)sum;
    }
}

/* --- Dot products ------------------------------------------------------------------------ */

/* The 32 fifth bits of Q5_0/Q5_1, bit i for element i. */
static uint32_t load_qh(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

/* sum over a block of 32 of q[i] * a[i], where q[i] = nibble (+ 16 * fifth bit) - offset. */
static int32_t dot_nibbles(const uint8_t qs[16], uint32_t qh, int offset, const int8_t a[32]) {
    int32_t sum = 0;
    for (int j = 0; j < 16; j++) {
        const int lo = (qs[j] & 0x0f) | (int)((qh >> j) & 1u) << 4;
        const int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1u) << 4;
        sum += (lo - offset) * a[j] + (hi - offset) * a[j + 16];
    }
    return sum;
}

static float vec_dot_q4_0(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_q8a *x = vx;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / QK4_0; ib++, w += sizeof(block_q4_0)) {
        block_q4_0 b;
        memcpy(&b, w, sizeof b);
        const int32_t p = dot_nibbles(b.qs, 0, 8, x[ib].qs);
        sum += ar_fp16_to_fp32(b.d) * x[ib].d * (float)p;
    }
    return sum;
}

static float vec_dot_q4_1(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_q8a *x = vx;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / QK4_1; ib++, w += sizeof(block_q4_1)) {
        block_q4_1 b;
        memcpy(&b, w, sizeof b);
        const int32_t p = dot_nibbles(b.qs, 0, 0, x[ib].qs);
        sum += ar_fp16_to_fp32(b.d) * x[ib].d * (float)p + ar_fp16_to_fp32(b.m) * x[ib].s;
    }
    return sum;
}

static float vec_dot_q5_0(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_q8a *x = vx;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / QK5_0; ib++, w += sizeof(block_q5_0)) {
        block_q5_0 b;
        memcpy(&b, w, sizeof b);
        const int32_t p = dot_nibbles(b.qs, load_qh(b.qh), 16, x[ib].qs);
        sum += ar_fp16_to_fp32(b.d) * x[ib].d * (float)p;
    }
    return sum;
}

static float vec_dot_q5_1(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_q8a *x = vx;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / QK5_1; ib++, w += sizeof(block_q5_1)) {
        block_q5_1 b;
        memcpy(&b, w, sizeof b);
        const int32_t p = dot_nibbles(b.qs, load_qh(b.qh), 0, x[ib].qs);
        sum += ar_fp16_to_fp32(b.d) * x[ib].d * (float)p + ar_fp16_to_fp32(b.m) * x[ib].s;
    }
    return sum;
}

static float vec_dot_q8_0(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_q8a *x = vx;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / QK8_0; ib++, w += sizeof(block_q8_0)) {
        block_q8_0 b;
        memcpy(&b, w, sizeof b);
        int32_t p = 0;
        for (int i = 0; i < QK8_0; i++) p += b.qs[i] * x[ib].qs[i];
        sum += ar_fp16_to_fp32(b.d) * x[ib].d * (float)p;
    }
    return sum;
}

/* --- Table ------------------------------------------------------------------------------- */

void ar_kernels_fill_q32_scalar(ar_kernels *k) {
    static const struct {
        ar_type type;
        ar_vec_dot_fn dot;
    } dots[] = {
        {AR_TYPE_Q4_0, vec_dot_q4_0}, {AR_TYPE_Q4_1, vec_dot_q4_1}, {AR_TYPE_Q5_0, vec_dot_q5_0},
        {AR_TYPE_Q5_1, vec_dot_q5_1}, {AR_TYPE_Q8_0, vec_dot_q8_0},
    };
    k->quantize_q8a = quantize_q8a;
    for (size_t i = 0; i < sizeof dots / sizeof dots[0]; i++) {
        k->act[dots[i].type] = AR_ACT_Q8A;
        k->vec_dot[dots[i].type] = dots[i].dot;
    }
}
