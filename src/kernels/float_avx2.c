/*
 * float_avx2.c - the float vector kernels for AVX2 + FMA + F16C, 8 floats a vector.
 *
 * Compiled with -mavx2 -mfma -mf16c (CMakeLists.txt) and only called after the CPU check
 * in cpu.c. Same contracts as the scalar reference (float_scalar.c); n may be anything
 * (tails use VMASKMOVPS, or a small stack buffer for the 16-bit formats) and pointers need
 * no alignment. How each kernel relates to the reference (checked by
 * tests/unit/test_kernels_float.c):
 *
 *  - Conversions (f16_to_f32, f32_to_f16, to_float for F16/BF16) give the same bits as
 *    the reference for every input: VCVTPH2PS is exact, VCVTPS2PH with round-to-nearest-even
 *    rounds as ar_fp32_to_fp16 does (NaNs quieted with the top payload bits kept, overflow
 *    to inf, subnormal halves rounded correctly), bf16 is a 16-bit shift.
 *  - to_float for F32 stays the reference's memcpy: glibc's memcpy measured
 *    faster than a vector loop on rows that leave L1 (8960 floats: 265 vs 450-510 ns).
 *  - axpy_f32 multiplies then adds (no FMA), so it gives the reference's bits too.
 *  - dot_f32: four FMA accumulators of 8 lanes, summed at the end; a different rounding
 *    order than the reference's single accumulator (both within n * 2^-24 * sum|a*b|).
 *    dot_f32_n (one weight row, up to AR_MAX_NR activation rows) is the same code with
 *    four accumulators per row and each weight vector loaded once for two rows (the 16
 *    registers hold no more), so each row gets the bits dot_f32 gives it alone. (The
 *    scalar tier has no dot_f32_n.)
 *  - rmsnorm_f32: the sum of squares accumulates in double like the reference; only the
 *    order of the double additions differs, so results match to the last bit except in
 *    rare ties of the float rounding of the mean (relative difference <= 2e-7).
 *  - silu_mul_f32, softmax_f32: exp256() below instead of libm's expf; softmax sums in
 *    double as the reference does.
 *
 * exp256(x) is float_avx512.c's exp512() on 8 lanes: clamp x to [-104, 89] (NaN passes
 * through), n = round(x / ln2), r = x - n * ln2 (Cody-Waite, exact with FMA), Cephes'
 * degree-7 expf polynomial for exp(r), then the 2^n in two factors 2^(n>>1) * 2^(n - n>>1):
 * both are normal floats for every n in [-150, 128] and the first product is exact, so
 * overflow to inf and subnormal results come out with a single rounding, as VSCALEFPS
 * gives them (the two tiers agree bit for bit on every input). Error against exp() in
 * double over every float in [-104, 89]: at most 1.01 ulp for normal results (99.2%
 * correctly rounded), subnormal results within 0.75 of their unit.
 */
#include "kernels/kernels.h"

#include <immintrin.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

/* Lanes [0, rem) of an 8-lane mask (all bits set per lane), rem in 0..8. */
static inline __m256i tail8(int64_t rem) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline double hsum256d(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

static inline __m256 exp256(__m256 x) {
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
    const __m256 ln2_hi = _mm256_set1_ps(0.693359375f); /* 9 bits: n * ln2_hi is exact */
    const __m256 ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
    /* min/max return their second operand when one is NaN, so NaN stays NaN. */
    x = _mm256_min_ps(_mm256_set1_ps(89.0f), x);
    x = _mm256_max_ps(_mm256_set1_ps(-104.0f), x);
    const __m256 n =
        _mm256_round_ps(_mm256_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, ln2_hi, x);
    r = _mm256_fnmadd_ps(n, ln2_lo, r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    /* 2^n = 2^q * 2^(n-q), q = floor(n/2): exponent fields built directly. */
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i q = _mm256_srai_epi32(ni, 1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(q, bias), 23));
    const __m256 s2 =
        _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, q), bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

/* ys[r] = sum_i w[i] * x[r * stride + i] for r < nr (1 or 2, a compile-time constant at
 * every call, so the loops over the rows unroll and the accumulators live in registers):
 * four FMA accumulators per row, each weight vector loaded once for all rows. A row's float
 * operations do not depend on nr, so ys[r] is bit-identical to nr = 1 on that row alone.
 * (The row loops carry "#pragma GCC unroll": unrolled that early, GCC keeps the per-row
 * arrays in registers; otherwise it stores them to the stack on every step.) */
static inline __attribute__((always_inline)) void
dot_rows(int64_t n, const float *w, const float *x, size_t stride, int nr, float *ys) {
    __m256 acc0[AR_MAX_NR], acc1[AR_MAX_NR], acc2[AR_MAX_NR], acc3[AR_MAX_NR];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) acc0[r] = acc1[r] = acc2[r] = acc3[r] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256 w0 = _mm256_loadu_ps(w + i), w1 = _mm256_loadu_ps(w + i + 8);
        const __m256 w2 = _mm256_loadu_ps(w + i + 16), w3 = _mm256_loadu_ps(w + i + 24);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const float *xr = x + (size_t)r * stride + i;
            acc0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xr), acc0[r]);
            acc1[r] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xr + 8), acc1[r]);
            acc2[r] = _mm256_fmadd_ps(w2, _mm256_loadu_ps(xr + 16), acc2[r]);
            acc3[r] = _mm256_fmadd_ps(w3, _mm256_loadu_ps(xr + 24), acc3[r]);
        }
    }
    for (; i + 8 <= n; i += 8) {
        const __m256 w0 = _mm256_loadu_ps(w + i);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            acc0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + (size_t)r * stride + i), acc0[r]);
    }
    if (i < n) {
        const __m256i m = tail8(n - i);
        const __m256 w0 = _mm256_maskload_ps(w + i, m);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            acc1[r] =
                _mm256_fmadd_ps(w0, _mm256_maskload_ps(x + (size_t)r * stride + i, m), acc1[r]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
        ys[r] = hsum256(
            _mm256_add_ps(_mm256_add_ps(acc0[r], acc1[r]), _mm256_add_ps(acc2[r], acc3[r])));
}

static float dot_f32(int64_t n, const float *a, const float *b) {
    float y;
    dot_rows(n, a, b, 0, 1, &y);
    return y;
}

static void dot_f32_n(int64_t n, const float *w, const float *x, size_t stride, int nr, float *ys) {
    /* At most two rows at a time: their 8 accumulators and the 4 weight vectors fit the 16
     * registers; more rows would spill accumulators (measured slower than single rows). */
    for (int r = 0; r < nr; r += 2) {
        if (nr - r >= 2)
            dot_rows(n, w, x + (size_t)r * stride, stride, 2, ys + r);
        else
            ys[r] = dot_f32(n, w, x + (size_t)r * stride);
    }
}

static void axpy_f32(int64_t n, float a, const float *x, float *y) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i),
                                              _mm256_mul_ps(va, _mm256_loadu_ps(x + i))));
    if (i < n) {
        const __m256i m = tail8(n - i);
        const __m256 v = _mm256_add_ps(_mm256_maskload_ps(y + i, m),
                                       _mm256_mul_ps(va, _mm256_maskload_ps(x + i, m)));
        _mm256_maskstore_ps(y + i, m, v);
    }
}

/* The 8 floats of v squared and added to two double accumulators (exact squares). */
static inline void sumsq8(__m256 v, __m256d *s0, __m256d *s1) {
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    *s0 = _mm256_fmadd_pd(lo, lo, *s0);
    *s1 = _mm256_fmadd_pd(hi, hi, *s1);
}

static void rmsnorm_f32(int64_t n, const float *x, const float *w, float eps, float *y) {
    if (n <= 0) return;
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    __m256d s2 = _mm256_setzero_pd(), s3 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        sumsq8(_mm256_loadu_ps(x + i), &s0, &s1);
        sumsq8(_mm256_loadu_ps(x + i + 8), &s2, &s3);
    }
    for (; i + 8 <= n; i += 8) sumsq8(_mm256_loadu_ps(x + i), &s0, &s1);
    if (i < n) sumsq8(_mm256_maskload_ps(x + i, tail8(n - i)), &s2, &s3);
    const double sum = hsum256d(_mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));

    const float mean = (float)(sum / (double)n);
    const __m256 s = _mm256_set1_ps(1.0f / sqrtf(mean + eps));
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(
            y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), s), _mm256_loadu_ps(w + i)));
    if (i < n) {
        const __m256i m = tail8(n - i);
        const __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_maskload_ps(x + i, m), s),
                                       _mm256_maskload_ps(w + i, m));
        _mm256_maskstore_ps(y + i, m, v);
    }
}

static inline __m256 silu_mul8(__m256 g, __m256 u) {
    const __m256 e = exp256(_mm256_xor_ps(g, _mm256_set1_ps(-0.0f)));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

static void silu_mul_f32(int64_t n, const float *g, const float *u, float *y) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, silu_mul8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
    if (i < n) {
        const __m256i m = tail8(n - i);
        _mm256_maskstore_ps(y + i, m,
                            silu_mul8(_mm256_maskload_ps(g + i, m), _mm256_maskload_ps(u + i, m)));
    }
}

/* Adds the 8 floats of v to two double accumulators. */
static inline void sum8(__m256 v, __m256d *s0, __m256d *s1) {
    *s0 = _mm256_add_pd(*s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    *s1 = _mm256_add_pd(*s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

static float softmax_f32(int64_t n, float *x) {
    const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
    __m256 vmax = neg_inf;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
    if (i < n) {
        const __m256i m = tail8(n - i);
        const __m256 v =
            _mm256_blendv_ps(neg_inf, _mm256_maskload_ps(x + i, m), _mm256_castsi256_ps(m));
        vmax = _mm256_max_ps(vmax, v);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, vmax);
    float max = lanes[0];
    for (int j = 1; j < 8; j++) max = lanes[j] > max || isnan(lanes[j]) ? lanes[j] : max;
    if (max == -INFINITY || isnan(max)) {
        /* Every entry -inf, or NaN present (lanes' max may hide a NaN): as the reference,
         * a NaN anywhere makes the row NaN, otherwise the row becomes 0. */
        bool has_nan = false; /* (a float flag here gets vectorized into a lossy min) */
        for (int64_t j = 0; j < n; j++) has_nan |= isnan(x[j]) != 0;
        const float fill = has_nan ? NAN : 0.0f;
        for (int64_t j = 0; j < n; j++) x[j] = fill;
        return fill;
    }

    const __m256 vm = _mm256_set1_ps(max);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        sum8(e, &s0, &s1);
    }
    if (i < n) {
        const __m256i m = tail8(n - i);
        const __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vm)),
                                       _mm256_castsi256_ps(m));
        _mm256_maskstore_ps(x + i, m, e);
        sum8(e, &s0, &s1);
    }
    const double sum = hsum256d(_mm256_add_pd(s0, s1));

    const __m256 inv = _mm256_set1_ps(1.0f / (float)sum);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    if (i < n) {
        const __m256i m = tail8(n - i);
        _mm256_maskstore_ps(x + i, m, _mm256_mul_ps(_mm256_maskload_ps(x + i, m), inv));
    }
    return (float)sum;
}

/* --- Conversions (bit-identical to fp16.h) ---------------------------------------------- */

#define CVT_PH _MM_FROUND_TO_NEAREST_INT /* VCVTPS2PH: round to nearest even */

static void f32_to_f16(int64_t n, const float *x, uint16_t *y) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m128i h0 = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), CVT_PH);
        const __m128i h1 = _mm256_cvtps_ph(_mm256_loadu_ps(x + i + 8), CVT_PH);
        _mm_storeu_si128((__m128i *)(y + i), h0);
        _mm_storeu_si128((__m128i *)(y + i + 8), h1);
    }
    for (; i < n; i += 8) {
        /* The tail goes through the same instruction via a stack buffer. */
        const size_t rem = (size_t)(n - i < 8 ? n - i : 8);
        float in[8] = {0};
        uint16_t out[8];
        memcpy(in, x + i, rem * sizeof(float));
        _mm_storeu_si128((__m128i *)out, _mm256_cvtps_ph(_mm256_loadu_ps(in), CVT_PH));
        memcpy(y + i, out, rem * sizeof(uint16_t));
    }
}

/* n halves from any address to floats. */
static void half_row_to_f32(const void *src, float *y, int64_t n) {
    const uint8_t *p = src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m128i h0 = _mm_loadu_si128((const __m128i *)(p + 2 * i));
        const __m128i h1 = _mm_loadu_si128((const __m128i *)(p + 2 * i + 16));
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h0));
        _mm256_storeu_ps(y + i + 8, _mm256_cvtph_ps(h1));
    }
    for (; i < n; i += 8) {
        const int64_t rem = n - i < 8 ? n - i : 8;
        uint16_t in[8] = {0};
        memcpy(in, p + 2 * i, (size_t)rem * sizeof(uint16_t));
        _mm256_maskstore_ps(y + i, tail8(rem),
                            _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)in)));
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
    for (; i + 8 <= n; i += 8) {
        const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p + 2 * i)));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_slli_epi32(v, 16));
    }
    if (i < n) {
        const int64_t rem = n - i;
        uint16_t in[8] = {0};
        memcpy(in, p + 2 * i, (size_t)rem * sizeof(uint16_t));
        const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)in));
        _mm256_maskstore_ps(dst + i, tail8(rem), _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
    }
}

void ar_kernels_fill_float_avx2(ar_kernels *k) {
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
