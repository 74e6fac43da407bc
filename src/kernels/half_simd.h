/*
 * half_simd.h - HALF_DEFINE_TILES, which makes the three F16/BF16 x float32 entry points of a
 * SIMD tier (vec_dot_f, vec_dot_f_n, vec_dot_f_mn of kernels.h) out of one tile body;
 * private to half_avx2.c and half_avx512.c.
 *
 * BODY(n, w, w_stride, nw, x, x_stride, nr, ys) is an always-inline function that computes
 * the nw x nr tile of products (ys[i * nr + r]); every entry point below calls it with nw
 * and nr compile-time constants (so its loops over rows unroll and its accumulators live in
 * registers). BODY gives each pair one accumulator and the same sequence of float
 * operations whatever nw and nr are, so all three entry points give a pair the same bits:
 * vec_dot_f is the 1 x 1 tile, vec_dot_f_n the 1 x nr tile.
 */
#ifndef AR_KERNELS_HALF_SIMD_H
#define AR_KERNELS_HALF_SIMD_H

#include "kernels/kernels.h"

#include <stddef.h>
#include <stdint.h>

/* The largest tile the bodies are instantiated for (their accumulator arrays' size). */
#define HALF_MAX_TILE 6
_Static_assert(AR_MN_W <= HALF_MAX_TILE && AR_MN_R <= HALF_MAX_TILE && AR_MAX_NR <= AR_MN_R,
               "tile sizes");

/* One case per tile shape; shapes outside the contract are never instantiated. */
#define HALF_TILE_CASE(BODY, a, b)                                                                 \
    case (a)*8 + (b):                                                                              \
        if ((a) <= AR_MN_W && (b) <= AR_MN_R)                                                      \
            BODY(n, (const uint8_t *)w, ws, (a) <= AR_MN_W ? (a) : 1, (const uint8_t *)x, xs,      \
                 (b) <= AR_MN_R ? (b) : 1, ys);                                                    \
        return;

#define HALF_TILE_ROW(BODY, a)                                                                     \
    HALF_TILE_CASE(BODY, a, 1)                                                                     \
    HALF_TILE_CASE(BODY, a, 2)                                                                     \
    HALF_TILE_CASE(BODY, a, 3)                                                                     \
    HALF_TILE_CASE(BODY, a, 4)                                                                     \
    HALF_TILE_CASE(BODY, a, 5)                                                                     \
    HALF_TILE_CASE(BODY, a, 6)

#define HALF_DEFINE_TILES(name, BODY)                                                              \
    static void vec_dot_mn_##name(int64_t n, const void *w, size_t ws, int nw, const void *x,      \
                                  size_t xs, int nr, float *ys) {                                  \
        switch (nw * 8 + nr) {                                                                     \
            HALF_TILE_ROW(BODY, 1)                                                                 \
            HALF_TILE_ROW(BODY, 2)                                                                 \
            HALF_TILE_ROW(BODY, 3)                                                                 \
            HALF_TILE_ROW(BODY, 4)                                                                 \
            HALF_TILE_ROW(BODY, 5)                                                                 \
            HALF_TILE_ROW(BODY, 6)                                                                 \
        default: return; /* outside the contract */                                                \
        }                                                                                          \
    }                                                                                              \
    static float vec_dot_##name(int64_t n, const void *w, const void *x) {                         \
        float y;                                                                                   \
        BODY(n, (const uint8_t *)w, 0, 1, (const uint8_t *)x, 0, 1, &y);                           \
        return y;                                                                                  \
    }                                                                                              \
    static void vec_dot_n_##name(int64_t n, const void *w, const void *x, size_t xs, int nr,       \
                                 float *ys) {                                                      \
        vec_dot_mn_##name(n, w, 0, 1, x, xs, nr, ys);                                              \
    }

#endif
