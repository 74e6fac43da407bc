/*
 * q16a_scalar.c - the scalar reference of the 32-block types' accurate path: activations
 * quantized to a Q16A row (15-bit integers in blocks of 32, kernels.h), and the dot product
 * of one Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0 weight row with one Q16A row in a single integer
 * pass. The AVX2 and AVX-512 versions (q16a_avx2.c, q16a_avx512.c) give the same rows byte
 * for byte and the same dot products up to float reassociation
 * (tests/unit/test_kernels_q16a.c).
 *
 * Row layout (kernels.h, ar_q16a_row_bytes), for n activations in nb = n / 32 blocks:
 *
 *     int16 qs[n] | float d[nb] | float s[nb] | zero bytes up to a multiple of 64
 *
 * Activations (quantize_q16a), per block of 32, as q32_scalar.c's Q8A with 16383 for 127
 * and a true division (as q16_scalar.c's Q16K):
 *
 *     amax  = max |x[i]|
 *     d     = amax / 16383                    (one float32 division)
 *     qs[i] = roundf(x[i] / d)                (one float32 division; halfway cases away
 *                                              from zero), clamped to -16383..16383
 *     s     = d * (float)sum(qs)              (the sum, at most 32 * 16383 < 2^24, is exact)
 *
 * x[i] / d is within an ulp or two of amax / d ~= 16383 at most, so the clamp never acts on
 * finite input (it keeps the bound whatever the rounding). Special blocks:
 *  - a block holding an inf or NaN gets d = s = NaN and qs = 0 (every dot product with it
 *    is NaN, as the float path would give inf or NaN);
 *  - a block whose d would be below FLT_MIN (amax < 16383 * 2^-126, including all zeros)
 *    gets d = s = 0 and qs = 0: x / d could overflow there.
 * Every byte of the row is written, the padding with zeros.
 *
 * Dot products. Per block the integer sum P = sum(q[i] * qs[i]) is exact in int32: |q| is
 * at most 128 (Q8_0's -128), so |P| <= 32 * 128 * 16383 < 2^26. With the weight's float16
 * scale dw (and minimum mw for the "_1" types) the block contributes, as in q32_scalar.c,
 *
 *     Q4_0: (dw * d) * P,  q = nibble - 8          Q4_1: (dw * d) * P + mw * s,  q = nibble
 *     Q5_0: (dw * d) * P,  q = 5-bit value - 16    Q5_1: (dw * d) * P + mw * s,  q = 5-bit
 *     Q8_0: (dw * d) * P,  q = the int8 weight
 *
 * evaluated left to right in float32 ((float)P rounds once P exceeds 2^24), the
 * contributions added in block order into one float32 sum. Weight blocks are copied out
 * with memcpy (any alignment); activation rows need no alignment here either.
 *
 * vec_dot16_n stays NULL in this tier: callers loop vec_dot16.
 */
#include "kernels/kernels.h"

#include "kernels/fp16.h"
#include "kernels/quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* --- Activation quantizer ---------------------------------------------------------------- */

static void quantize_q16a(const float *x, void *vy, int64_t n) {
    uint8_t *row = vy;
    const int64_t nb = n / AR_QK16A;
    const size_t head = (size_t)n * 2 + (size_t)nb * 8;
    for (int64_t ib = 0; ib < nb; ib++, x += AR_QK16A) {
        int16_t qs[AR_QK16A] = {0};
        float d = 0.0f, s = 0.0f, amax = 0.0f;
        int finite = 1;
        for (int i = 0; i < AR_QK16A; i++) {
            if (!isfinite(x[i]))
                finite = 0;
            else if (fabsf(x[i]) > amax)
                amax = fabsf(x[i]);
        }
        if (!finite) {
            d = s = NAN;
        } else if (amax / 16383.0f >= FLT_MIN) {
            d = amax / 16383.0f;
            int32_t sum = 0;
            for (int i = 0; i < AR_QK16A; i++) {
                float v = roundf(x[i] / d);
                v = v < -16383.0f ? -16383.0f : v > 16383.0f ? 16383.0f : v;
                qs[i] = (int16_t)v;
                sum += qs[i];
            }
            s = d * (float)sum;
        }
        memcpy(row + (size_t)ib * sizeof qs, qs, sizeof qs);
        memcpy(row + (size_t)n * 2 + (size_t)ib * 4, &d, 4);
        memcpy(row + (size_t)n * 2 + (size_t)(nb + ib) * 4, &s, 4);
    }
    memset(row + head, 0, ar_q16a_row_bytes(n) - head);
}

/* --- Dot products ------------------------------------------------------------------------ */

/* Block ib's scale d (s: the block's d * sum(qs)) of the Q16A row x of n activations. */
static float row_d(const uint8_t *x, int64_t n, int64_t ib) {
    float d;
    memcpy(&d, x + (size_t)n * 2 + (size_t)ib * 4, sizeof d);
    return d;
}

static float row_s(const uint8_t *x, int64_t n, int64_t ib) {
    float s;
    memcpy(&s, x + (size_t)n * 2 + (size_t)(n / AR_QK16A + ib) * 4, sizeof s);
    return s;
}

/* The 32 activation integers of block ib. */
static void row_qs(const uint8_t *x, int64_t ib, int16_t a[AR_QK16A]) {
    memcpy(a, x + (size_t)ib * AR_QK16A * 2, AR_QK16A * 2);
}

/* The 32 fifth bits of Q5_0/Q5_1, bit i for element i. */
static uint32_t load_qh(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

/* sum over a block of 32 of q[i] * a[i], where q[i] = nibble (+ 16 * fifth bit) - offset:
 * at most 32 * 31 * 16383 < 2^24. */
static int32_t dot_nibbles(const uint8_t qs[16], uint32_t qh, int offset, const int16_t a[32]) {
    int32_t sum = 0;
    for (int j = 0; j < 16; j++) {
        const int lo = (qs[j] & 0x0f) | (int)((qh >> j) & 1u) << 4;
        const int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1u) << 4;
        sum += (lo - offset) * a[j] + (hi - offset) * a[j + 16];
    }
    return sum;
}

static float vec_dot16_q4_0(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw, *x = vx;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / QK4_0; ib++, w += sizeof(block_q4_0)) {
        block_q4_0 b;
        int16_t a[AR_QK16A];
        memcpy(&b, w, sizeof b);
        row_qs(x, ib, a);
        const int32_t p = dot_nibbles(b.qs, 0, 8, a);
        sum += ar_fp16_to_fp32(b.d) * row_d(x, n, ib) * (float)p;
    }
    return sum;
}

static float vec_dot16_q4_1(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw, *x = vx;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / QK4_1; ib++, w += sizeof(block_q4_1)) {
        block_q4_1 b;
        int16_t a[AR_QK16A];
        memcpy(&b, w, sizeof b);
        row_qs(x, ib, a);
        const int32_t p = dot_nibbles(b.qs, 0, 0, a);
        sum += ar_fp16_to_fp32(b.d) * row_d(x, n, ib) * (float)p +
               ar_fp16_to_fp32(b.m) * row_s(x, n, ib);
    }
    return sum;
}

static float vec_dot16_q5_0(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw, *x = vx;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / QK5_0; ib++, w += sizeof(block_q5_0)) {
        block_q5_0 b;
        int16_t a[AR_QK16A];
        memcpy(&b, w, sizeof b);
        row_qs(x, ib, a);
        const int32_t p = dot_nibbles(b.qs, load_qh(b.qh), 16, a);
        sum += ar_fp16_to_fp32(b.d) * row_d(x, n, ib) * (float)p;
    }
    return sum;
}

static float vec_dot16_q5_1(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw, *x = vx;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / QK5_1; ib++, w += sizeof(block_q5_1)) {
        block_q5_1 b;
        int16_t a[AR_QK16A];
        memcpy(&b, w, sizeof b);
        row_qs(x, ib, a);
        const int32_t p = dot_nibbles(b.qs, load_qh(b.qh), 0, a);
        sum += ar_fp16_to_fp32(b.d) * row_d(x, n, ib) * (float)p +
               ar_fp16_to_fp32(b.m) * row_s(x, n, ib);
    }
    return sum;
}

static float vec_dot16_q8_0(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw, *x = vx;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / QK8_0; ib++, w += sizeof(block_q8_0)) {
        block_q8_0 b;
        int16_t a[AR_QK16A];
        memcpy(&b, w, sizeof b);
        row_qs(x, ib, a);
        int32_t p = 0; /* at most 32 * 128 * 16383 < 2^26 */
        for (int i = 0; i < QK8_0; i++) p += (int32_t)b.qs[i] * a[i];
        sum += ar_fp16_to_fp32(b.d) * row_d(x, n, ib) * (float)p;
    }
    return sum;
}

/* --- Table ------------------------------------------------------------------------------- */

void ar_kernels_fill_q16a_scalar(ar_kernels *k) {
    static const struct {
        ar_type type;
        ar_vec_dot_fn dot;
    } dots[] = {
        {AR_TYPE_Q4_0, vec_dot16_q4_0}, {AR_TYPE_Q4_1, vec_dot16_q4_1},
        {AR_TYPE_Q5_0, vec_dot16_q5_0}, {AR_TYPE_Q5_1, vec_dot16_q5_1},
        {AR_TYPE_Q8_0, vec_dot16_q8_0},
    };
    k->quantize_q16a = quantize_q16a;
    for (size_t i = 0; i < sizeof dots / sizeof dots[0]; i++) {
        k->act16[dots[i].type] = AR_ACT_Q16A;
        k->vec_dot16[dots[i].type] = dots[i].dot;
    }
    /* vec_dot16_n stays NULL: callers loop vec_dot16 */
}
