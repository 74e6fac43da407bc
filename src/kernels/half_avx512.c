/*
 * half_avx512.c - F16 and BF16 weight rows times float32 activation rows, fused, for
 * AVX-512 (F, BW, VL): vec_dot_f, vec_dot_f_n and vec_dot_f_mn of kernels.h.
 *
 * Compiled with the AVX-512 flags (CMakeLists.txt) and only called after the CPU check in
 * cpu.c. The weight rows are never written out as floats: each 16-element step loads 16
 * halves of each weight row, converts them in registers - F16 with VCVTPH2PS (exact), BF16
 * by zero-extending to 32 bits and shifting left by 16 (exact) - and multiplies them into
 * the activation rows with FMA. The converted weights are exactly the values the reference
 * to_float gives, so the only difference from the scalar reference (half_scalar.c) is the
 * float32 rounding order of the sums.
 *
 * A register tile (half_tile): nw weight rows x nr activation rows (up to AR_MN_W x
 * AR_MN_R = 6 x 4), one 16-lane accumulator per pair. A step loads the nr activation
 * vectors once, converts each weight vector once and issues nw * nr FMAs: 24 accumulators,
 * 4 activation vectors and a weight vector in 29 of the 32 registers, and 6 + 4 loads for
 * 24 FMAs, so prefill (many tokens) is bound by the FMAs, not by loads from L1/L2 as a
 * one-weight-row kernel is. (Measured on a block of 240 rows x 24 tokens, one thread:
 * 6 x 4 ran at 185 GFLOP/s at K = 1536 and 8960; 4 x 4 at 170 and 145; 4 x 6 at 180 and
 * 173; one weight row x 4 tokens at 100 and 60.) The 16 independent chains of a 4-row
 * decode tile (or 6) hide the FMA latency; the shapes are compile-time constants at every
 * call (HALF_DEFINE_TILES, half_simd.h), so the loops unroll and the accumulators stay in
 * registers.
 *
 * Each pair's operations are the same sequence whatever the tile: its accumulator takes
 * the 16-element chunks in order (the main loop two per iteration, then one, then the
 * masked tail of 1..15 elements, whose masked lanes load as zero and add nothing), and
 * the result is its reduction across lanes. So every entry point (vec_dot_f is the 1 x 1
 * tile, vec_dot_f_n the 1 x nr tile) gives a pair the same bits, and results never depend
 * on how the engine grouped rows or tokens.
 *
 * Accuracy: float32 sums in 16 lanes of n/16 terms each; within (n/16 + 4) * 2^-24 *
 * sum|w*x| of the exact sum in the worst case, far less for signed data
 * (tests/unit/test_kernels_half.c checks 1e-6 * sum|w*x| against a float64 reference).
 * NaN and inf propagate as in any float sum. Weight rows need only 2-byte alignment (in
 * fact none), activation rows 4-byte; n may be anything.
 *
 * Decode (one activation row) streams the weights: a software prefetch HALF_PF_DIST bytes
 * ahead of the loads, one line per weight row per 64 bytes consumed, keeps the streams at
 * memory speed across row ends.
 */
#include "kernels/kernels.h"
#include "kernels/half_simd.h"
#include "kernels/qk_simd.h"

#include <immintrin.h>

/* Software prefetch distance in bytes of weights ahead of the loads (0: none), for a tile
 * of one weight row and of several. One prefetch per weight row per 32-element (64-byte)
 * step fetches the line that far ahead. Measured streaming a 512 MiB matrix with one
 * token, one thread (GB/s, K = 1536 / 8960): one row 28 / 21 at 256 bytes, 24 / 20 at
 * 1024; four rows 20 / 23 at 256, 21 / 25 at 1024. */
#ifndef HALF_PF_DIST
#define HALF_PF_DIST 256
#endif
#ifndef HALF_PF_DIST_MULTI
#define HALF_PF_DIST_MULTI 1024
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

/* One 16-element step of the tile: the nr activation vectors loaded once, each weight row's
 * vector converted once, nw * nr FMAs. */
INLINE void tile_step(__m512 acc[AR_MN_W][AR_MN_R], const uint8_t *w, size_t ws, int nw,
                      const uint8_t *x, size_t xs, int nr, int64_t i, int bf16) {
    __m512 xv[AR_MN_R];
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++) xv[r] = _mm512_loadu_ps(xrow(x, xs, r, i));
#pragma GCC unroll 8
    for (int a = 0; a < nw; a++) {
        const __m512 wv = cvt16(w + (size_t)a * ws + 2 * i, bf16);
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) acc[a][r] = _mm512_fmadd_ps(wv, xv[r], acc[a][r]);
    }
}

/* ys[a * nr + r] = sum_i w_a[i] * x_r[i]: nw weight rows ws bytes apart, nr float rows xs
 * bytes apart. (The loops carry "#pragma GCC unroll": unrolled that early, GCC keeps the
 * accumulator arrays in registers.) */
INLINE void half_tile(int64_t n, const uint8_t *w, size_t ws, int nw, const uint8_t *x, size_t xs,
                      int nr, float *ys, int bf16) {
    __m512 acc[AR_MN_W][AR_MN_R];
#pragma GCC unroll 8
    for (int a = 0; a < nw; a++)
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) acc[a][r] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const int pf = nw == 1 ? HALF_PF_DIST : HALF_PF_DIST_MULTI;
        if (pf > 0 && nr == 1)
#pragma GCC unroll 8
            for (int a = 0; a < nw; a++)
                _mm_prefetch((const char *)w + (size_t)a * ws + 2 * i + pf, _MM_HINT_T0);
        tile_step(acc, w, ws, nw, x, xs, nr, i, bf16);
        tile_step(acc, w, ws, nw, x, xs, nr, i + 16, bf16);
    }
    if (i + 16 <= n) {
        tile_step(acc, w, ws, nw, x, xs, nr, i, bf16);
        i += 16;
    }
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        __m512 xv[AR_MN_R];
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) xv[r] = _mm512_maskz_loadu_ps(m, xrow(x, xs, r, i));
#pragma GCC unroll 8
        for (int a = 0; a < nw; a++) {
            const __m512 wv = cvt16_tail(w + (size_t)a * ws + 2 * i, m, bf16);
#pragma GCC unroll 8
            for (int r = 0; r < nr; r++) acc[a][r] = _mm512_fmadd_ps(wv, xv[r], acc[a][r]);
        }
    }
#pragma GCC unroll 8
    for (int a = 0; a < nw; a++)
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) ys[a * nr + r] = _mm512_reduce_add_ps(acc[a][r]);
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

void ar_kernels_fill_half_avx512(ar_kernels *k) {
    k->vec_dot_f[AR_TYPE_F16] = vec_dot_f16;
    k->vec_dot_f_n[AR_TYPE_F16] = vec_dot_n_f16;
    k->vec_dot_f[AR_TYPE_BF16] = vec_dot_bf16;
    k->vec_dot_f_n[AR_TYPE_BF16] = vec_dot_n_bf16;
    k->vec_dot_f_mn[AR_TYPE_F16] = vec_dot_mn_f16;
    k->vec_dot_f_mn[AR_TYPE_BF16] = vec_dot_mn_bf16;
}
