/*
 * half_avx2.c - F16 and BF16 weight rows times float32 activation rows, fused, for AVX2 +
 * FMA + F16C: vec_dot_f, vec_dot_f_n and vec_dot_f_mn of kernels.h.
 *
 * Compiled with -mavx2 -mfma -mf16c (CMakeLists.txt) and only called after the CPU check
 * in cpu.c. half_avx512.c on 8 lanes: each 8-element step loads 8 halves of a weight row,
 * converts them in registers - F16 with VCVTPH2PS (exact), BF16 by zero-extending to 32
 * bits and shifting left by 16 (exact) - and multiplies them into the activation rows with
 * FMA, one accumulator per (weight row, activation row) pair. The converted weights are
 * exactly the values the reference to_float gives; only the float32 rounding order of the
 * sums differs from the scalar reference (half_scalar.c).
 *
 * The 16 ymm registers hold the tile of two weight rows x up to 4 activation rows (8
 * accumulators, two weight vectors, an activation vector), so the body (half_pair) takes
 * the weight rows of a tile two at a time and walks the activation rows again for the next
 * pair (from L1). A pair's accumulator takes the 8-element chunks in order, then the tail
 * (1..7 elements: the halves through a zeroed stack buffer, the floats with VMASKMOVPS;
 * zero lanes add nothing), and the result is its sum across lanes: the same sequence
 * whatever the tile, so vec_dot_f (the 1 x 1 tile), vec_dot_f_n (1 x nr) and vec_dot_f_mn
 * give a pair the same bits (HALF_DEFINE_TILES in half_simd.h makes the three of one body).
 *
 * Accuracy: float32 sums in 8 lanes of n/8 terms each (within (n/8 + 3) * 2^-24 *
 * sum|w*x| of the exact sum in the worst case; tests/unit/test_kernels_half.c checks
 * 1e-6 * sum|w*x| against float64). NaN and inf propagate. Weight rows need only 2-byte
 * alignment (in fact none), activation rows 4-byte; n may be anything.
 */
#include "kernels/kernels.h"
#include "kernels/half_simd.h"
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

/* The tile of up to two weight rows (nw 1, 2) and nr activation rows: ys[a * ys_nr + r].
 * 2 x 4 accumulators, two weight vectors and the activations as memory operands fit the 16
 * ymm registers. (The loops carry "#pragma GCC unroll": unrolled that early, GCC keeps the
 * accumulator arrays in registers.) */
INLINE void half_pair(int64_t n, const uint8_t *w, size_t ws, int nw, const uint8_t *x, size_t xs,
                      int nr, float *ys, int ys_nr, int bf16) {
    __m256 acc[2][AR_MN_R];
#pragma GCC unroll 2
    for (int a = 0; a < nw; a++)
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) acc[a][r] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wv[2];
#pragma GCC unroll 2
        for (int a = 0; a < nw; a++) wv[a] = cvt8(w + (size_t)a * ws + 2 * i, bf16);
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            const __m256 xv = _mm256_loadu_ps(xrow(x, xs, r, i));
#pragma GCC unroll 2
            for (int a = 0; a < nw; a++) acc[a][r] = _mm256_fmadd_ps(wv[a], xv, acc[a][r]);
        }
    }
    if (i < n) {
        const int64_t rem = n - i;
        const __m256i m = tail8(rem);
        __m256 wv[2];
#pragma GCC unroll 2
        for (int a = 0; a < nw; a++) {
            uint16_t h[8] = {0};
            memcpy(h, w + (size_t)a * ws + 2 * i, (size_t)rem * sizeof(uint16_t));
            wv[a] = cvt8((const uint8_t *)h, bf16);
        }
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            const __m256 xv = _mm256_maskload_ps(xrow(x, xs, r, i), m);
#pragma GCC unroll 2
            for (int a = 0; a < nw; a++) acc[a][r] = _mm256_fmadd_ps(wv[a], xv, acc[a][r]);
        }
    }
#pragma GCC unroll 2
    for (int a = 0; a < nw; a++)
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) ys[a * ys_nr + r] = hsum256(acc[a][r]);
}

/* The nw x nr tile as pairs of weight rows, the last row alone when nw is odd (each pair
 * walks the activation rows again, from L1). */
INLINE void half_tile(int64_t n, const uint8_t *w, size_t ws, int nw, const uint8_t *x, size_t xs,
                      int nr, float *ys, int bf16) {
    int a = 0;
    for (; a + 2 <= nw; a += 2)
        half_pair(n, w + (size_t)a * ws, ws, 2, x, xs, nr, ys + a * nr, nr, bf16);
    if (a < nw) half_pair(n, w + (size_t)a * ws, ws, 1, x, xs, nr, ys + a * nr, nr, bf16);
}

INLINE void f16_tile(int64_t n, const uint8_t *w, size_t ws, int nw, const uint8_t *x, size_t xs,
                     int nr, float *ys) {
    half_tile(n, w, ws, nw, x, xs, nr, ys, 0);
}

INLINE void bf16_tile(int64_t n, const uint8_t *w, size_t ws, int nw, const uint8_t *x, size_t xs,
                      int nr, float *ys) {
    half_tile(n, w, ws, nw, x, xs, nr, ys, 1);
}

HALF_DEFINE_TILES(f16, f16_tile)
HALF_DEFINE_TILES(bf16, bf16_tile)

void ar_kernels_fill_half_avx2(ar_kernels *k) {
    k->vec_dot_f[AR_TYPE_F16] = vec_dot_f16;
    k->vec_dot_f_n[AR_TYPE_F16] = vec_dot_n_f16;
    k->vec_dot_f[AR_TYPE_BF16] = vec_dot_bf16;
    k->vec_dot_f_n[AR_TYPE_BF16] = vec_dot_n_bf16;
    k->vec_dot_f_mn[AR_TYPE_F16] = vec_dot_mn_f16;
    k->vec_dot_f_mn[AR_TYPE_BF16] = vec_dot_mn_bf16;
}
