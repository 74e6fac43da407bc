/*
 * half_avx512.c - F16 and BF16 weight rows times float32 activation rows, fused, for
 * AVX-512 (F, BW, VL): vec_dot_f and vec_dot_f_n of kernels.h.
 *
 * Compiled with the AVX-512 flags (CMakeLists.txt) and only called after the CPU check in
 * cpu.c. The weight row is never written out as floats: each step loads 64 halves (128
 * bytes, four vectors of 16), converts them in registers - F16 with VCVTPH2PS (exact),
 * BF16 by zero-extending to 32 bits and shifting left by 16 (exact) - and multiplies them
 * into every activation row with FMA. The converted weights are exactly the values the
 * reference to_float gives, so the only difference from the engine's convert-then-dot_f32
 * path is the float32 rounding order of the sums.
 *
 * One body per type (half_rows), parameterized by the number of activation rows nr, a
 * compile-time constant at every call (QK_DEFINE_DOTS in qk_simd.h makes vec_dot_f and
 * vec_dot_f_n of it): four FMA accumulators of 16 lanes per row (independent chains for
 * the FMA latency; 4 rows x 4 + 4 weight vectors = 20 of the 32 registers), each weight
 * vector converted once for all rows. A row's float operations are the same sequence
 * whatever nr is, so vec_dot_f_n gives each row the bits vec_dot_f gives it alone. It is
 * the structure of float_avx512.c's dot_f32: the main loop feeds acc0..acc3, a 16-element
 * step acc0, the masked tail (1..15 elements; masked lanes load as zero and add nothing)
 * acc1, and the sum is (acc0 + acc1) + (acc2 + acc3) reduced across lanes.
 *
 * Accuracy: float32 sums of exact products in 64 lanes x 4 chains; within
 * n/64 * 2^-24 * sum|w*x| of the exact sum in the worst case, far less for signed data
 * (tests/unit/test_kernels_half.c checks 1e-6 * sum|w*x| against a float64 reference).
 * NaN and inf propagate as in any float sum. Weight rows need only 2-byte alignment (in
 * fact none), activation rows 4-byte; n may be anything.
 *
 * Decode (one activation row) streams the weights: a software prefetch HALF_PF_DIST bytes
 * ahead of the loads, one line per 64 bytes consumed, keeps the stream at memory speed
 * across row ends (measured: see the constant below).
 */
#include "kernels/kernels.h"
#include "kernels/qk_simd.h"

#include <immintrin.h>

/* Software prefetch distance in bytes of weights ahead of the loads (0: none). The two
 * prefetches per 128-byte step cover the lines HALF_PF_DIST and HALF_PF_DIST + 64 ahead. */
#ifndef HALF_PF_DIST
#define HALF_PF_DIST 256
#endif

/* Lanes [0, rem) of a 16-lane mask, rem in 0..16. */
INLINE __mmask16 tail16(int64_t rem) {
    return (__mmask16)((1u << rem) - 1u);
}

/* 16 halves (F16, or BF16 when bf16) at p, any address, as floats; cvt16_tail loads the
 * lanes of m only and gives zero in the others. */
INLINE __m512 widen16(__m256i h, int bf16) {
    if (bf16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
}

INLINE __m512 cvt16(const uint8_t *p, int bf16) {
    return widen16(_mm256_loadu_si256((const __m256i *)(const void *)p), bf16);
}

INLINE __m512 cvt16_tail(const uint8_t *p, __mmask16 m, int bf16) {
    return widen16(_mm256_maskz_loadu_epi16(m, p), bf16);
}

/* Activation row r, element i. */
INLINE const float *xrow(const uint8_t *x, size_t stride, int r, int64_t i) {
    return (const float *)(const void *)(x + (size_t)r * stride) + i;
}

/* ys[r] = sum_i w[i] * x_r[i] for r < nr, w n halves, x_r the float rows `stride` bytes
 * apart. (The row loops carry "#pragma GCC unroll": unrolled that early, GCC keeps the
 * per-row arrays in registers.) */
INLINE void half_rows(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                      float *ys, int bf16) {
    __m512 acc0[AR_MAX_NR], acc1[AR_MAX_NR], acc2[AR_MAX_NR], acc3[AR_MAX_NR];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) acc0[r] = acc1[r] = acc2[r] = acc3[r] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const uint8_t *wi = w + 2 * i;
        if (HALF_PF_DIST > 0 && nr == 1) {
            _mm_prefetch((const char *)wi + HALF_PF_DIST, _MM_HINT_T0);
            _mm_prefetch((const char *)wi + HALF_PF_DIST + 64, _MM_HINT_T0);
        }
        const __m512 w0 = cvt16(wi, bf16), w1 = cvt16(wi + 32, bf16);
        const __m512 w2 = cvt16(wi + 64, bf16), w3 = cvt16(wi + 96, bf16);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const float *xr = xrow(x, stride, r, i);
            acc0[r] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xr), acc0[r]);
            acc1[r] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xr + 16), acc1[r]);
            acc2[r] = _mm512_fmadd_ps(w2, _mm512_loadu_ps(xr + 32), acc2[r]);
            acc3[r] = _mm512_fmadd_ps(w3, _mm512_loadu_ps(xr + 48), acc3[r]);
        }
    }
    for (; i + 16 <= n; i += 16) {
        const __m512 w0 = cvt16(w + 2 * i, bf16);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            acc0[r] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xrow(x, stride, r, i)), acc0[r]);
    }
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        const __m512 w0 = cvt16_tail(w + 2 * i, m, bf16);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            acc1[r] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, xrow(x, stride, r, i)), acc1[r]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
        ys[r] = _mm512_reduce_add_ps(
            _mm512_add_ps(_mm512_add_ps(acc0[r], acc1[r]), _mm512_add_ps(acc2[r], acc3[r])));
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

void ar_kernels_fill_half_avx512(ar_kernels *k) {
    k->vec_dot_f[AR_TYPE_F16] = vec_dot_f16;
    k->vec_dot_f_n[AR_TYPE_F16] = vec_dot_n_f16;
    k->vec_dot_f[AR_TYPE_BF16] = vec_dot_bf16;
    k->vec_dot_f_n[AR_TYPE_BF16] = vec_dot_n_bf16;
}
