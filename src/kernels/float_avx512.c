/*
 * float_avx512.c - the float vector kernels for AVX-512 (F, BW, VL, DQ), 16 floats a vector.
 *
 * Compiled with the AVX-512 flags (CMakeLists.txt) and only called after the CPU check in
 * cpu.c. Same contracts as the scalar reference (float_scalar.c); tails are handled with
 * masked loads and stores, so n may be anything and pointers need no alignment. How each
 * kernel relates to the reference (checked by tests/unit/test_kernels_float.c):
 *
 *  - Conversions (f16_to_f32, f32_to_f16, to_float for F16/BF16) give the same bits as
 *    the reference for every input: VCVTPH2PS is exact, VCVTPS2PH with round-to-nearest-even
 *    rounds as ar_fp32_to_fp16 does (NaNs quieted with the top payload bits kept, overflow
 *    to inf, subnormal halves rounded correctly), bf16 is a 16-bit shift.
 *  - to_float for F32 stays the reference's memcpy: glibc's memcpy measured
 *    faster than a vector loop on rows that leave L1 (8960 floats: 265 vs 450-510 ns).
 *  - axpy_f32 multiplies then adds (no FMA), so it gives the reference's bits too.
 *  - dot_f32: four FMA accumulators of 16 lanes, summed at the end; a different rounding
 *    order than the reference's single accumulator (both within n * 2^-24 * sum|a*b|).
 *    dot_f32_n (one weight row, up to AR_MAX_NR activation rows) is the same code with
 *    four accumulators per row and each weight vector loaded once for all rows, so each
 *    row gets the bits dot_f32 gives it alone. (The scalar tier has no dot_f32_n.)
 *  - attn_scores: blocks of 16 keys; per head one FMA accumulator per key over the head
 *    row, the 16 reduced together into one vector (sum16x16: 48 operations instead of 16
 *    horizontal sums); a different rounding order than the reference's dot_f32 (within
 *    hd * 2^-24 * sum|q*k|), the same for a key in any block and at any n. attn_values:
 *    NQ heads x up to 4 chunks of 16 output dimensions in registers (NQ a constant per
 *    call: runtime-sized accumulator arrays stayed in memory), each value vector and
 *    probability loaded once per position; FMA per term in position order: the
 *    reference's bits. Measured (one core, 6 heads, hd 128, 330 positions): scores 32 ->
 *    124 GFLOPS, values 41 -> 228 GFLOPS (the FMA peak).
 *  - rmsnorm_f32: the sum of squares accumulates in double like the reference; only the
 *    order of the double additions differs, so results match to the last bit except in
 *    rare ties of the float rounding of the mean (relative difference <= 2e-7).
 *  - silu_mul_f32, softmax_f32: exp512() below instead of libm's expf; softmax sums in
 *    double as the reference does.
 *
 * exp512(x): clamp x to [-104, 89] (exp is 0 / inf beyond; NaN passes through), split
 * x = n * ln2 + r with n = round(x / ln2) and |r| <= ln2/2 (ln2 in two parts, Cody-Waite,
 * the reduction exact with FMA), exp(r) by Cephes' degree-7 expf polynomial, and
 * VSCALEFPS for the 2^n, which handles overflow and subnormal results with one rounding.
 * Measured against exp() in double over every float in [-104, 89] (2.24e9 inputs): at
 * most 1.01 ulp for normal results, 99.2% of them correctly rounded; subnormal results
 * within 0.75 of their unit; identical bits to float_avx2.c's exp256() on every input.
 */
#include "kernels/kernels.h"

#include <immintrin.h>
#include <math.h>
#include <stdbool.h>

/* Lanes [0, rem) of a 16-lane mask, rem in 0..16. */
static inline __mmask16 tail16(int64_t rem) {
    return (__mmask16)((1u << rem) - 1u);
}

static inline __m512 exp512(__m512 x) {
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512 ln2_hi = _mm512_set1_ps(0.693359375f); /* 9 bits: n * ln2_hi is exact */
    const __m512 ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
    /* min/max return their second operand when one is NaN, so NaN stays NaN. */
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, ln2_hi, x);
    r = _mm512_fnmadd_ps(n, ln2_lo, r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
    p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* ys[r] = sum_i w[i] * x[r * stride + i] for r < nr (a compile-time constant at every call,
 * so the loops over the rows unroll and the accumulators live in registers): four FMA
 * accumulators per row, each weight vector loaded once for all rows. A row's float
 * operations do not depend on nr, so ys[r] is bit-identical to nr = 1 on that row alone.
 * (The row loops carry "#pragma GCC unroll": unrolled that early, GCC keeps the per-row
 * arrays in registers; otherwise it stores them to the stack on every step.) */
static inline __attribute__((always_inline)) void
dot_rows(int64_t n, const float *w, const float *x, size_t stride, int nr, float *ys) {
    __m512 acc0[AR_MAX_NR], acc1[AR_MAX_NR], acc2[AR_MAX_NR], acc3[AR_MAX_NR];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) acc0[r] = acc1[r] = acc2[r] = acc3[r] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m512 w0 = _mm512_loadu_ps(w + i), w1 = _mm512_loadu_ps(w + i + 16);
        const __m512 w2 = _mm512_loadu_ps(w + i + 32), w3 = _mm512_loadu_ps(w + i + 48);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const float *xr = x + (size_t)r * stride + i;
            acc0[r] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xr), acc0[r]);
            acc1[r] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xr + 16), acc1[r]);
            acc2[r] = _mm512_fmadd_ps(w2, _mm512_loadu_ps(xr + 32), acc2[r]);
            acc3[r] = _mm512_fmadd_ps(w3, _mm512_loadu_ps(xr + 48), acc3[r]);
        }
    }
    for (; i + 16 <= n; i += 16) {
        const __m512 w0 = _mm512_loadu_ps(w + i);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            acc0[r] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + (size_t)r * stride + i), acc0[r]);
    }
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        const __m512 w0 = _mm512_maskz_loadu_ps(m, w + i);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            acc1[r] =
                _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, x + (size_t)r * stride + i), acc1[r]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
        ys[r] = _mm512_reduce_add_ps(
            _mm512_add_ps(_mm512_add_ps(acc0[r], acc1[r]), _mm512_add_ps(acc2[r], acc3[r])));
}

static float dot_f32(int64_t n, const float *a, const float *b) {
    float y;
    dot_rows(n, a, b, 0, 1, &y);
    return y;
}

static void dot_f32_n(int64_t n, const float *w, const float *x, size_t stride, int nr, float *ys) {
    switch (nr) {
    case 1: ys[0] = dot_f32(n, w, x); return;
    case 2: dot_rows(n, w, x, stride, 2, ys); return;
    case 3: dot_rows(n, w, x, stride, 3, ys); return;
    default: dot_rows(n, w, x, stride, AR_MAX_NR, ys); return;
    }
}

static void axpy_f32(int64_t n, float a, const float *x, float *y) {
    const __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(y + i),
                                              _mm512_mul_ps(va, _mm512_loadu_ps(x + i))));
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        const __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i),
                                       _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, x + i)));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

/* x[0..16) squared and added to two double accumulators (exact squares). */
static inline void sumsq16(__m512 v, __m512d *s0, __m512d *s1) {
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
    *s0 = _mm512_fmadd_pd(lo, lo, *s0);
    *s1 = _mm512_fmadd_pd(hi, hi, *s1);
}

static void rmsnorm_f32(int64_t n, const float *x, const float *w, float eps, float *y) {
    if (n <= 0) return;
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    __m512d s2 = _mm512_setzero_pd(), s3 = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        sumsq16(_mm512_loadu_ps(x + i), &s0, &s1);
        sumsq16(_mm512_loadu_ps(x + i + 16), &s2, &s3);
    }
    for (; i + 16 <= n; i += 16) sumsq16(_mm512_loadu_ps(x + i), &s0, &s1);
    if (i < n) sumsq16(_mm512_maskz_loadu_ps(tail16(n - i), x + i), &s2, &s3);
    const double sum =
        _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3)));

    const float mean = (float)(sum / (double)n);
    const __m512 s = _mm512_set1_ps(1.0f / sqrtf(mean + eps));
    for (i = 0; i + 16 <= n; i += 16)
        _mm512_storeu_ps(
            y + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), s), _mm512_loadu_ps(w + i)));
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        const __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), s),
                                       _mm512_maskz_loadu_ps(m, w + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

static inline __m512 silu_mul16(__m512 g, __m512 u) {
    const __m512 e = exp512(_mm512_xor_ps(g, _mm512_set1_ps(-0.0f)));
    return _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), u);
}

static void silu_mul_f32(int64_t n, const float *g, const float *u, float *y) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, silu_mul16(_mm512_loadu_ps(g + i), _mm512_loadu_ps(u + i)));
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(
            y + i, m, silu_mul16(_mm512_maskz_loadu_ps(m, g + i), _mm512_maskz_loadu_ps(m, u + i)));
    }
}

/* Adds the 16 floats of v to two double accumulators. */
static inline void sum16(__m512 v, __m512d *s0, __m512d *s1) {
    *s0 = _mm512_add_pd(*s0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    *s1 = _mm512_add_pd(*s1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
}

static float softmax_f32(int64_t n, float *x) {
    const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
    __m512 vmax = neg_inf;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(x + i));
    if (i < n) vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(neg_inf, tail16(n - i), x + i));
    const float max = _mm512_reduce_max_ps(vmax);
    if (max == -INFINITY || isnan(max)) {
        /* Every entry -inf, or NaN present (lanes' max may hide a NaN): as the reference,
         * a NaN anywhere makes the row NaN, otherwise the row becomes 0. */
        bool has_nan = false; /* (a float flag here gets vectorized into a lossy min) */
        for (int64_t j = 0; j < n; j++) has_nan |= isnan(x[j]) != 0;
        const float fill = has_nan ? NAN : 0.0f;
        for (int64_t j = 0; j < n; j++) x[j] = fill;
        return fill;
    }

    const __m512 vm = _mm512_set1_ps(max);
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (i = 0; i + 16 <= n; i += 16) {
        const __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
        _mm512_storeu_ps(x + i, e);
        sum16(e, &s0, &s1);
    }
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        const __m512 e =
            _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm)));
        _mm512_mask_storeu_ps(x + i, m, e);
        sum16(e, &s0, &s1);
    }
    const double sum = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));

    const __m512 inv = _mm512_set1_ps(1.0f / (float)sum);
    for (i = 0; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    }
    return (float)sum;
}

/* --- Conversions (bit-identical to fp16.h) ---------------------------------------------- */

#define CVT_PH _MM_FROUND_TO_NEAREST_INT /* VCVTPS2PH: round to nearest even */

static void f32_to_f16(int64_t n, const float *x, uint16_t *y) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i h0 = _mm512_cvtps_ph(_mm512_loadu_ps(x + i), CVT_PH);
        const __m256i h1 = _mm512_cvtps_ph(_mm512_loadu_ps(x + i + 16), CVT_PH);
        _mm256_storeu_si256((__m256i *)(y + i), h0);
        _mm256_storeu_si256((__m256i *)(y + i + 16), h1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = tail16(n - i < 16 ? n - i : 16);
        _mm256_mask_storeu_epi16(y + i, m,
                                 _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), CVT_PH));
    }
}

/* n halves from any address to floats. */
static void half_row_to_f32(const void *src, float *y, int64_t n) {
    const uint8_t *p = src;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i h0 = _mm256_loadu_si256((const __m256i *)(p + 2 * i));
        const __m256i h1 = _mm256_loadu_si256((const __m256i *)(p + 2 * i + 32));
        _mm512_storeu_ps(y + i, _mm512_cvtph_ps(h0));
        _mm512_storeu_ps(y + i + 16, _mm512_cvtph_ps(h1));
    }
    for (; i < n; i += 16) {
        const __mmask16 m = tail16(n - i < 16 ? n - i : 16);
        _mm512_mask_storeu_ps(y + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p + 2 * i)));
    }
}

static void f16_to_f32(int64_t n, const uint16_t *x, float *y) {
    half_row_to_f32(x, y, n);
}

static void to_float_f16(const void *src, float *dst, int64_t n) {
    half_row_to_f32(src, dst, n);
}

static void to_float_bf16(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p + 2 * i)));
        _mm512_storeu_si512(dst + i, _mm512_slli_epi32(v, 16));
    }
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        const __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p + 2 * i));
        _mm512_mask_storeu_epi32(dst + i, m, _mm512_slli_epi32(v, 16));
    }
}

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Mask of the 16 floats of head-row chunk c (c * 16 .. c * 16 + 15) that lie below hd. */
ALWAYS_INLINE __mmask16 chunk_mask(int hd, int c) {
    const int rem = hd - 16 * c;
    return rem >= 16 ? (__mmask16)0xffff : rem > 0 ? tail16(rem) : 0;
}

/* The horizontal sums of 16 vectors as one vector: lane i = the sum of a[i]'s lanes, each
 * summed by the same tree ((x0 + x2) + (x1 + x3) per 128-bit quarter, then (Q0 + Q1) +
 * (Q2 + Q3)), so a sum does not depend on which lane it lands in. */
ALWAYS_INLINE __m512 sum16x16(const __m512 a[16]) {
    __m512 c[8], g[4];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        c[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]),
                             _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        const __m512d x = _mm512_castps_pd(c[2 * i]), y = _mm512_castps_pd(c[2 * i + 1]);
        g[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    const __m512 s01 = _mm512_add_ps(_mm512_shuffle_f32x4(g[0], g[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_f32x4(g[0], g[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512 s23 = _mm512_add_ps(_mm512_shuffle_f32x4(g[2], g[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_f32x4(g[2], g[3], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Scores of blocks of 16 keys: per head, one FMA accumulator per key over the head row
 * (the query chunk loaded once for the 16 keys), then sum16x16: one vector of 16 scores
 * instead of 16 horizontal sums. A key's score is the same in any block and at any n. */
static void attn_scores(int hd, int nq, const float *q, size_t q_stride, const float *k,
                        size_t k_stride, const int32_t *slot, int n, float scale, float *s,
                        size_t s_stride) {
    const int nc = (hd + 15) / 16;
    const __m512 vscale = _mm512_set1_ps(scale);
    for (int j0 = 0; j0 < n; j0 += 16) {
        const int m = n - j0 < 16 ? n - j0 : 16;
        const float *kr[16];
        for (int i = 0; i < 16; i++) kr[i] = k + (size_t)slot[j0 + (i < m ? i : 0)] * k_stride;
        for (int h = 0; h < nq; h++) {
            const float *qh = q + (size_t)h * q_stride;
            __m512 acc[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
            for (int c = 0; c < nc; c++) {
                const __mmask16 cm = chunk_mask(hd, c);
                const __m512 qv = _mm512_maskz_loadu_ps(cm, qh + 16 * c);
#pragma GCC unroll 16
                for (int i = 0; i < 16; i++)
                    acc[i] = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(cm, kr[i] + 16 * c), acc[i]);
            }
            _mm512_mask_storeu_ps(s + (size_t)h * s_stride + (size_t)j0, tail16(m),
                                  _mm512_mul_ps(sum16x16(acc), vscale));
        }
    }
}

/* Values for NQ heads (a compile-time constant at each call) over CH chunks of 16 output
 * dimensions at once, so NQ * CH independent FMA chains hide the FMA latency; per position,
 * the CH value vectors and the NQ probabilities are loaded once. Each output element is one
 * FMA per position in order from 0: the reference's bits. */
ALWAYS_INLINE void values_nq(const int NQ, const int CH, int hd, const float *p, size_t p_stride,
                             const float *v, size_t v_stride, const int32_t *slot, int n,
                             float *out, size_t o_stride) {
    const int nc = (hd + 15) / 16;
    for (int c0 = 0; c0 < nc; c0 += CH) {
        __m512 acc[8][4];
        __mmask16 cm[4];
#pragma GCC unroll 4
        for (int c = 0; c < CH; c++) cm[c] = chunk_mask(hd, c0 + c);
#pragma GCC unroll 8
        for (int h = 0; h < NQ; h++)
#pragma GCC unroll 4
            for (int c = 0; c < CH; c++) acc[h][c] = _mm512_setzero_ps();
        for (int j = 0; j < n; j++) {
            const float *vr = v + (size_t)slot[j] * v_stride + 16 * c0;
            __m512 vv[4];
#pragma GCC unroll 4
            for (int c = 0; c < CH; c++) vv[c] = _mm512_maskz_loadu_ps(cm[c], vr + 16 * c);
#pragma GCC unroll 8
            for (int h = 0; h < NQ; h++) {
                const __m512 ph = _mm512_set1_ps(p[(size_t)h * p_stride + (size_t)j]);
#pragma GCC unroll 4
                for (int c = 0; c < CH; c++) acc[h][c] = _mm512_fmadd_ps(ph, vv[c], acc[h][c]);
            }
        }
#pragma GCC unroll 8
        for (int h = 0; h < NQ; h++)
#pragma GCC unroll 4
            for (int c = 0; c < CH; c++)
                _mm512_mask_storeu_ps(out + (size_t)h * o_stride + 16 * (c0 + c), cm[c], acc[h][c]);
    }
}

static void attn_values(int hd, int nq, const float *p, size_t p_stride, const float *v,
                        size_t v_stride, const int32_t *slot, int n, float *out, size_t o_stride) {
#define VALUES(NQ, CH) values_nq(NQ, CH, hd, p, p_stride, v, v_stride, slot, n, out, o_stride)
    switch (nq) {
    case 1: VALUES(1, 4); break;
    case 2: VALUES(2, 4); break;
    case 3: VALUES(3, 4); break;
    case 4: VALUES(4, 4); break;
    case 5: VALUES(5, 4); break;
    case 6: VALUES(6, 4); break;
    case 7: VALUES(7, 3); break;
    default: VALUES(8, 3); break;
    }
#undef VALUES
}

void ar_kernels_fill_float_avx512(ar_kernels *k) {
    k->attn_scores = attn_scores;
    k->attn_values = attn_values;
    k->dot_f32 = dot_f32;
    k->dot_f32_n = dot_f32_n;
    k->axpy_f32 = axpy_f32;
    k->rmsnorm_f32 = rmsnorm_f32;
    k->silu_mul_f32 = silu_mul_f32;
    k->softmax_f32 = softmax_f32;
    k->f32_to_f16 = f32_to_f16;
    k->f16_to_f32 = f16_to_f32;
    k->to_float[AR_TYPE_F16] = to_float_f16;
    k->to_float[AR_TYPE_BF16] = to_float_bf16;
}
