/*
 * half_avx2.c - F16 and BF16 weight rows times float32 activation rows, fused, for AVX2 +
 * FMA + F16C: vec_dot_f and vec_dot_f_n of kernels.h.
 *
 * Compiled with -mavx2 -mfma -mf16c (CMakeLists.txt) and only called after the CPU check
 * in cpu.c. half_avx512.c on 8 lanes: each step loads 32 halves (64 bytes, four vectors
 * of 8), converts them in registers - F16 with VCVTPH2PS (exact), BF16 by zero-extending
 * to 32 bits and shifting left by 16 (exact) - and multiplies them into the activation
 * rows with FMA, four accumulators per row. The converted weights are exactly the values
 * the reference to_float gives; only the float32 rounding order of the sums differs from
 * the engine's convert-then-dot_f32 path.
 *
 * One body per type (half_rows), parameterized by nr, a compile-time constant at every
 * call (QK_DEFINE_DOTS in qk_simd.h makes vec_dot_f and vec_dot_f_n of it). The 16 ymm
 * registers hold the four accumulators of two rows and the four weight vectors, not more,
 * so the body converts each weight vector once for a pair of rows (half_pair) and walks
 * the row again for the next pair (nr = 3, 4: the second pass reads the row from L1). A
 * row's float operations are the same sequence whatever nr is, so vec_dot_f_n gives each
 * row the bits vec_dot_f gives it alone. Structure as float_avx2.c's dot_f32: the main loop
 * feeds acc0..acc3, an 8-element step acc0, the tail (1..7 elements: the halves through a
 * zeroed stack buffer, the floats with VMASKMOVPS; zero lanes add nothing) acc1, and the
 * sum is (acc0 + acc1) + (acc2 + acc3) reduced across lanes.
 *
 * Accuracy: float32 sums of exact products in 32 lanes x 4 chains (within
 * n/32 * 2^-24 * sum|w*x| of the exact sum in the worst case; tests/unit/test_kernels_half.c
 * checks 1e-6 * sum|w*x| against float64). NaN and inf propagate. Weight rows need only
 * 2-byte alignment (in fact none), activation rows 4-byte; n may be anything.
 */
#include "kernels/kernels.h"
#include "kernels/qk_simd.h"

#include <immintrin.h>
#include <string.h>

/* Lanes [0, rem) of an 8-lane mask (all bits set per lane), rem in 0..8. */
INLINE __m256i tail8(int64_t rem) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* 8 halves (F16, or BF16 when bf16) as floats. */
INLINE __m256 widen8(__m128i h, int bf16) {
    if (bf16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

INLINE __m256 cvt8(const uint8_t *p, int bf16) {
    return widen8(loadu128(p), bf16);
}

/* Activation row r, element i. */
INLINE const float *xrow(const uint8_t *x, size_t stride, int r, int64_t i) {
    return (const float *)(const void *)(x + (size_t)r * stride) + i;
}

/* ys[r] = sum_i w[i] * x_r[i] for r < nr, nr 1 or 2. (The row loops carry "#pragma GCC
 * unroll": unrolled that early, GCC keeps the per-row arrays in registers.) */
INLINE void half_pair(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                      float *ys, int bf16) {
    __m256 acc0[2], acc1[2], acc2[2], acc3[2];
#pragma GCC unroll 2
    for (int r = 0; r < nr; r++) acc0[r] = acc1[r] = acc2[r] = acc3[r] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const uint8_t *wi = w + 2 * i;
        const __m256 w0 = cvt8(wi, bf16), w1 = cvt8(wi + 16, bf16);
        const __m256 w2 = cvt8(wi + 32, bf16), w3 = cvt8(wi + 48, bf16);
#pragma GCC unroll 2
        for (int r = 0; r < nr; r++) {
            const float *xr = xrow(x, stride, r, i);
            acc0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xr), acc0[r]);
            acc1[r] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xr + 8), acc1[r]);
            acc2[r] = _mm256_fmadd_ps(w2, _mm256_loadu_ps(xr + 16), acc2[r]);
            acc3[r] = _mm256_fmadd_ps(w3, _mm256_loadu_ps(xr + 24), acc3[r]);
        }
    }
    for (; i + 8 <= n; i += 8) {
        const __m256 w0 = cvt8(w + 2 * i, bf16);
#pragma GCC unroll 2
        for (int r = 0; r < nr; r++)
            acc0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xrow(x, stride, r, i)), acc0[r]);
    }
    if (i < n) {
        const int64_t rem = n - i;
        uint16_t h[8] = {0};
        memcpy(h, w + 2 * i, (size_t)rem * sizeof(uint16_t));
        const __m256 w0 = cvt8((const uint8_t *)h, bf16);
        const __m256i m = tail8(rem);
#pragma GCC unroll 2
        for (int r = 0; r < nr; r++)
            acc1[r] = _mm256_fmadd_ps(w0, _mm256_maskload_ps(xrow(x, stride, r, i), m), acc1[r]);
    }
#pragma GCC unroll 2
    for (int r = 0; r < nr; r++)
        ys[r] = hsum256(
            _mm256_add_ps(_mm256_add_ps(acc0[r], acc1[r]), _mm256_add_ps(acc2[r], acc3[r])));
}

/* ys[r] for r < nr (1..AR_MAX_NR): the rows in pairs, the last one alone when nr is odd. */
INLINE void half_rows(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                      float *ys, int bf16) {
    int r = 0;
    for (; r + 2 <= nr; r += 2) half_pair(n, w, x + (size_t)r * stride, stride, 2, ys + r, bf16);
    if (r < nr) half_pair(n, w, x + (size_t)r * stride, stride, 1, ys + r, bf16);
}

INLINE void f16_rows(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                     float *ys) {
    half_rows(n, w, x, stride, nr, ys, 0);
}

INLINE void bf16_rows(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                      float *ys) {
    half_rows(n, w, x, stride, nr, ys, 1);
}

QK_DEFINE_DOTS(f16, f16_rows)
QK_DEFINE_DOTS(bf16, bf16_rows)

void ar_kernels_fill_half_avx2(ar_kernels *k) {
    k->vec_dot_f[AR_TYPE_F16] = vec_dot_f16;
    k->vec_dot_f_n[AR_TYPE_F16] = vec_dot_n_f16;
    k->vec_dot_f[AR_TYPE_BF16] = vec_dot_bf16;
    k->vec_dot_f_n[AR_TYPE_BF16] = vec_dot_n_bf16;
}
