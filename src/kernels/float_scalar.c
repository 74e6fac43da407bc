/*
 * float_scalar.c - the scalar reference of the float vector kernels (see kernels.h).
 *
 * Plain C, float32 arithmetic, one rounding per operation (the project builds with
 * -ffp-contract=off, so no fused multiply-adds sneak in). These define the results; the
 * AVX2 and AVX-512 versions (float_avx2.c, float_avx512.c) are tested against them in
 * tests/unit/test_kernels_float.c. Precision choices, per kernel:
 *
 *  - dot_f32: one float32 accumulator, elements in order. Error <= n * 2^-24 * sum|a*b|.
 *  - axpy_f32: y[i] + (a * x[i]), two float roundings (the SIMD tiers give the same bits).
 *  - rmsnorm_f32: the sum of squares accumulates in DOUBLE (each square is exact there), then
 *    mean = (float)(sum / n) and s = 1.0f / sqrtf(mean + eps) in float, as ggml does; then
 *    y[i] = (x[i] * s) * w[i] in float (the order of ggml and of Hugging Face's Qwen2RMSNorm:
 *    normalize, then scale by the weight).
 *  - silu_mul_f32: g / (1 + expf(-g)) * u with libm's expf. Large negative g gives
 *    expf(-g) = inf and a result of -0.
 *  - softmax_f32: max, then x[i] = expf(x[i] - max) with the sum accumulated in double, then
 *    x[i] *= 1.0f / (float)sum (ggml's order). Entries of -inf become 0. When every entry is
 *    -inf (or n == 0) there is no distribution: the row becomes all 0 and 0 is returned.
 *    NaN or +inf entries give NaN rows.
 *  - attn_scores: each score is dot_f32's (one accumulator, in order) times the scale.
 *  - attn_values: per output element one float accumulator from 0, fmaf(p, v, acc) for the
 *    positions in order (one rounding per term: the SIMD tiers' FMA gives the same bits).
 *  - f32_to_f16 / f16_to_f32: the integer-only conversions of fp16.h (round to nearest even;
 *    NaNs come out quiet with their payload's top bits, as F16C does).
 *
 * Output may alias input where the index is the same (y == x for rmsnorm, y == g or y == u
 * for silu_mul): every kernel reads element i before it writes element i.
 */
#include "kernels/kernels.h"

#include "kernels/fp16.h"

#include <math.h>

static float dot_f32(int64_t n, const float *a, const float *b) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += a[i] * b[i];
    return sum;
}

static void axpy_f32(int64_t n, float a, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = y[i] + a * x[i];
}

static void rmsnorm_f32(int64_t n, const float *x, const float *w, float eps, float *y) {
    if (n <= 0) return;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)x[i] * (double)x[i];
    const float mean = (float)(sum / (double)n);
    const float s = 1.0f / sqrtf(mean + eps);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * s * w[i];
}

static void silu_mul_f32(int64_t n, const float *g, const float *u, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static float softmax_f32(int64_t n, float *x) {
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > max || isnan(x[i])) max = x[i];
    if (max == -INFINITY) { /* empty, or every entry -inf: no distribution */
        for (int64_t i = 0; i < n; i++) x[i] = 0.0f;
        return 0.0f;
    }
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += (double)x[i];
    }
    const float inv = 1.0f / (float)sum;
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
    return (float)sum;
}

static void f32_to_f16(int64_t n, const float *x, uint16_t *y) {
    for (int64_t i = 0; i < n; i++) y[i] = ar_fp32_to_fp16(x[i]);
}

static void f16_to_f32(int64_t n, const uint16_t *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = ar_fp16_to_fp32(x[i]);
}

static void attn_scores(int hd, int nq, const float *q, size_t q_stride, const float *k,
                        size_t k_stride, const int32_t *slot, int n, float scale, float *s,
                        size_t s_stride) {
    for (int h = 0; h < nq; h++)
        for (int j = 0; j < n; j++)
            s[(size_t)h * s_stride + (size_t)j] =
                dot_f32(hd, q + (size_t)h * q_stride, k + (size_t)slot[j] * k_stride) * scale;
}

static void attn_values(int hd, int nq, const float *p, size_t p_stride, const float *v,
                        size_t v_stride, const int32_t *slot, int n, float *out, size_t o_stride) {
    for (int h = 0; h < nq; h++)
        for (int d = 0; d < hd; d++) {
            float acc = 0.0f;
            for (int j = 0; j < n; j++)
                acc = fmaf(p[(size_t)h * p_stride + (size_t)j],
                           v[(size_t)slot[j] * v_stride + (size_t)d], acc);
            out[(size_t)h * o_stride + (size_t)d] = acc;
        }
}

void ar_kernels_fill_float_scalar(ar_kernels *k) {
    k->attn_scores = attn_scores;
    k->attn_values = attn_values;
    k->dot_f32 = dot_f32;
    k->axpy_f32 = axpy_f32;
    k->rmsnorm_f32 = rmsnorm_f32;
    k->silu_mul_f32 = silu_mul_f32;
    k->softmax_f32 = softmax_f32;
    k->f32_to_f16 = f32_to_f16;
    k->f16_to_f32 = f16_to_f32;
}
