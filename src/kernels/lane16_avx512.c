/*
 * lane16_avx512.c - float weights (F16, BF16) in 16-bit lanes for AVX-512 (F, BW, VL, DQ,
 * VNNI): pack_l16 (a weight row into ar_block_wl16 groups), quantize_l16 (an activation row
 * into ar_block_xl16 groups) and gemm_l16 (packed rows times many activation rows). Every
 * byte and every result is identical to the scalar reference (lane16_scalar.c, which defines
 * the form; kernels.h describes it).
 *
 * pack_l16 and quantize_l16. A group's 16 lanes of 32 elements are loaded as floats, lane L
 * into two registers (elements 0..15 and 16..31; F16 through vcvtph2ps, BF16 by a 16-bit
 * shift; lanes past the end of the row are zero registers), and each half is transposed as a
 * 16 x 16 matrix of dwords (transpose16: unpack of 32-bit then 64-bit pairs, then two rounds
 * of 128-bit shuffles), so that register i holds element i of every lane, lane L in dword
 * L. Everything per lane is then a plain vertical operation: amax is the integer maximum of
 * the |x| bits over the 32 registers (the bits order like the floats, inf and NaN above every
 * finite value), the lane scales are one register, and each element register is scaled,
 * rounded (ar_round_away512: roundf's halfway cases away from zero) and clamped for all 16
 * lanes at once. Chunk c (elements 2c and 2c + 1 of every lane) is then element register 2c
 * in the low and 2c + 1 in the high int16 of each dword: one shift and one blend.
 *   The weight scale 2^(e - 13) (frexpf's e = getexp(amax) + 1) is made by vscalefps from
 * 1.0: exact, also for a subnormal amax (getexp normalizes it), and 0 where it falls below
 * the smallest subnormal, as ldexpf gives. w / scale is vscalefps(w, 12 - getexp): w times a
 * power of two with one rounding, the correctly rounded quotient the scalar division gives,
 * even where 1 / scale is not a float. Activations use the reference's own operations: dx =
 * amax / 8191, id = 1 / dx (divisions), q = round(x * id).
 *
 * gemm_l16. Packed weights and activations share the chunk layout, so per chunk one load per
 * weight row and per token and one vpdpwssd per (row, token) adds into the pair's 16 int32
 * lanes exactly the lane products of the reference (integer sums are exact in any order and
 * a lane's sum stays below 2^31, so the lanes are the reference's isum). Per group and pair
 * then cvtepi32_ps, scale * dx and one fused multiply-add into the pair's float lanes, the
 * reference's operations in its order; at the end hsum512 adds the lanes in the reference's
 * order. Storing and reloading a float accumulator is exact, so neither the tiling below nor
 * nw and nx change a bit of any result.
 *   Micro-tiles of 4 rows x 3 tokens (GEMM_NW x GEMM_NX) keep their 12 int32 sums and 12
 * float accumulators in registers, with the 4 weight vectors and one activation vector of the
 * current chunk: 7 loads per 12 vpdpwssd (an empty asm statement pins each weight vector in a
 * register: GCC otherwise reloads it for every token, 15 loads per 12, and the kernel ran at
 * two thirds of the speed), and every loop of the tile carries an unroll pragma, so that
 * -O2 builds (RelWithDebInfo) unroll it as -O3 does: without, the tile's arrays stay in
 * memory and the kernel ran at a fifth of the speed. Passes of GEMM_KC = 2 groups (one pass
 * when the row has at most 3) go over blocks of 8 rows x 24 tokens, tokens outer: the
 * block's rows for the pass (17 KB) stay in L1 while the token tiles go by, each token tile
 * serving the block's two row tiles; the float accumulators wait in a buffer between
 * passes. Edge tiles run the same body with constant smaller counts. On the Zen 5 this was tuned on
 * (2 vpdpwssd per cycle, latency 4, 48 KB L1D, 1 MB L2), 8 rows x 128 tokens ran at about 365 GOPS
 * for n = 1536 (86% of the vpdpwssd peak; the per-group float steps take most of the rest) and 315
 * GOPS for n = 8960 (the 2.4 MB of activations come from L3 each call), against 290-350 / 210-300
 * for tiles of 3 x 4, 6 x 2, 5 x 2, 2 x 6, 4 x 2 and 3 x 3, float accumulators in memory (4 x 4 ..
 * 6 x 4), passes of 1, 3, 4 or 6 groups, blocks of 12 or 48 tokens, or software prefetch of the
 * next token tile. One token (decode) instead takes tiles of 2 rows over the whole row, so each
 * weight row streams from memory once (about 47 GB/s, the core's read bandwidth; 4- and
 * 8-row tiles were slower from L3).
 */
#include "kernels/kernels.h"

#include "kernels/q8_avx512.h"
#include "kernels/qk_simd.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

/* --- Lanes in registers ------------------------------------------------------------------ */

/* r[i] dword j <-> r[j] dword i. */
INLINE void transpose16(__m512i r[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    /* u[4g + j], 128-bit lane k: dword 4k + j of rows 4g .. 4g + 3 */
    for (int g = 0; g < 16; g += 4) {
        u[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
        u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
        u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
        u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
    }
    for (int j = 0; j < 4; j++) {
        const __m512i a = _mm512_shuffle_i32x4(u[j], u[4 + j], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512i b = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512i c = _mm512_shuffle_i32x4(u[j], u[4 + j], _MM_SHUFFLE(3, 2, 3, 2));
        const __m512i d = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], _MM_SHUFFLE(3, 2, 3, 2));
        r[j] = _mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0));
        r[4 + j] = _mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1));
        r[8 + j] = _mm512_shuffle_i32x4(c, d, _MM_SHUFFLE(2, 0, 2, 0));
        r[12 + j] = _mm512_shuffle_i32x4(c, d, _MM_SHUFFLE(3, 1, 3, 1));
    }
}

enum { SRC_F32, SRC_F16, SRC_BF16 };

/* Elements 16h .. 16h + 15 of the lane at p (32 elements of kind src) as float bits. */
INLINE __m512i load_half(int src, const void *p, int h) {
    if (src == SRC_F32) return _mm512_loadu_si512((const float *)p + 16 * h);
    const __m256i v = loadu256((const uint16_t *)p + 16 * h);
    if (src == SRC_F16) return _mm512_castps_si512(_mm512_cvtph_ps(v));
    return _mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16);
}

/* One group of a row of kind src starting at p with nl lanes (1..16; the others zero):
 * e[i] = element i of every lane (lane L in dword L) as floats; returns the lanes' max |x|
 * bits. */
INLINE __m512i load_group(int src, const void *p, int nl, __m512 e[32]) {
    const size_t esize = src == SRC_F32 ? 4 : 2;
    const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
    __m512i m = _mm512_setzero_si512();
    for (int h = 0; h < 2; h++) {
        __m512i r[16];
        for (int L = 0; L < 16; L++)
            r[L] = L < nl ? load_half(src, (const uint8_t *)p + 32 * esize * (size_t)L, h)
                          : _mm512_setzero_si512();
        transpose16(r);
        for (int i = 0; i < 16; i++) {
            m = _mm512_max_epu32(m, _mm512_and_si512(r[i], abs_mask));
            e[16 * h + i] = _mm512_castsi512_ps(r[i]);
        }
    }
    return m;
}

/* The 16 chunks of a group from the rounded element registers q[32] (int32, lane L in dword
 * L), zeroed in the lanes outside `keep`. */
INLINE void store_chunks(int16_t *out, const __m512i q[32], __mmask16 keep) {
    for (int c = 0; c < 16; c++) {
        const __m512i v =
            _mm512_mask_blend_epi16(0xaaaaaaaa, q[2 * c], _mm512_slli_epi32(q[2 * c + 1], 16));
        _mm512_storeu_si512(out + 32 * c, _mm512_maskz_mov_epi32(keep, v));
    }
}

/* round-half-away of v clamped to -lim..lim. */
INLINE __m512i round_clamp(__m512 v, __m512i lim) {
    const __m512i r = ar_round_away512(v);
    return _mm512_max_epi32(_mm512_min_epi32(r, lim),
                            _mm512_sub_epi32(_mm512_setzero_si512(), lim));
}

/* Lanes (of 16) of group g that hold elements of a row of n. */
INLINE int group_lanes(int64_t n, int64_t g) {
    const int64_t left = (n - 512 * g) / 32;
    return left < 16 ? (int)left : 16;
}

/* --- Weights ------------------------------------------------------------------------------ */

INLINE void pack_row(int src, int64_t n, const void *w, ar_block_wl16 *out) {
    const __m512 one = _mm512_set1_ps(1.0f), sh = _mm512_set1_ps(AR_L16_WSHIFT - 1);
    const __m512i inf_bits = _mm512_set1_epi32(0x7f800000), lim = _mm512_set1_epi32(AR_L16_WLIM);
    for (int64_t g = 0; g < ar_lane_groups(n, 32); g++, out++) {
        __m512 e[32];
        const __m512i m = load_group(src, (const uint16_t *)w + 512 * g, group_lanes(n, g), e);
        const __mmask16 finite = _mm512_cmplt_epu32_mask(m, inf_bits);
        const __m512 amax = _mm512_castsi512_ps(m);
        /* frexpf's e is getexp + 1: scale = 2^(getexp + 1 - AR_L16_WSHIFT), 0 when amax is 0
         * or the power underflows */
        const __m512 ex = _mm512_getexp_ps(amax);
        const __m512 scale = _mm512_scalef_ps(one, _mm512_sub_ps(ex, sh));
        const __mmask16 keep = _mm512_mask_cmp_ps_mask(
            _mm512_mask_cmpneq_epu32_mask(finite, m, _mm512_setzero_si512()), scale,
            _mm512_setzero_ps(), _CMP_GT_OQ);
        const __m512 k = _mm512_maskz_sub_ps(keep, sh, ex); /* w / scale = w * 2^k */
        __m512i q[32];
        for (int i = 0; i < 32; i++) q[i] = round_clamp(_mm512_scalef_ps(e[i], k), lim);
        store_chunks(out->u, q, keep);
        _mm512_storeu_ps(out->scale, _mm512_mask_mov_ps(_mm512_maskz_mov_ps(keep, scale),
                                                        (__mmask16)~finite, _mm512_set1_ps(NAN)));
    }
}

static void pack_l16_f16(int64_t n, const void *w, ar_block_wl16 *out) {
    pack_row(SRC_F16, n, w, out);
}

static void pack_l16_bf16(int64_t n, const void *w, ar_block_wl16 *out) {
    pack_row(SRC_BF16, n, w, out);
}

/* --- Activations -------------------------------------------------------------------------- */

static void quantize_l16(const float *x, void *vy, int64_t n) {
    ar_block_xl16 *y = vy;
    const __m512i inf_bits = _mm512_set1_epi32(0x7f800000), lim = _mm512_set1_epi32(AR_L16_XLIM);
    for (int64_t g = 0; g < ar_lane_groups(n, 32); g++, y++) {
        __m512 e[32];
        const __m512i m = load_group(SRC_F32, x + 512 * g, group_lanes(n, g), e);
        const __mmask16 finite = _mm512_cmplt_epu32_mask(m, inf_bits);
        const __m512 d = _mm512_div_ps(_mm512_castsi512_ps(m), _mm512_set1_ps((float)AR_L16_XLIM));
        const __mmask16 keep =
            _mm512_mask_cmp_ps_mask(finite, d, _mm512_set1_ps(FLT_MIN), _CMP_GE_OQ);
        const __m512 id = _mm512_maskz_div_ps(keep, _mm512_set1_ps(1.0f), d);
        __m512i q[32];
        for (int i = 0; i < 32; i++) q[i] = round_clamp(_mm512_mul_ps(e[i], id), lim);
        store_chunks(y->q, q, keep);
        _mm512_storeu_ps(y->dx, _mm512_mask_mov_ps(_mm512_maskz_mov_ps(keep, d), (__mmask16)~finite,
                                                   _mm512_set1_ps(NAN)));
    }
}

/* --- Products ----------------------------------------------------------------------------- */

INLINE __m512i load512(const void *p) {
    return _mm512_loadu_si512(p);
}

INLINE float hsum512(__m512 v) {
    return hsum256(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}

#define GEMM_NW  4  /* weight rows per micro-tile */
#define GEMM_NX  3  /* tokens per micro-tile */
#define GEMM_KC  2  /* lane groups per pass over a block of rows and tokens */
#define GEMM_KC1 3  /* rows of up to this many groups go in one pass */
#define GEMM_GW  8  /* weight rows per block */
#define GEMM_GX  24 /* tokens per block */
#define DEC_NW   2  /* weight rows per micro-tile with one token */

/* Groups [g0, g1) of rows w + r * ws x tokens x + t * xs (r < nw, t < nx: constants at every
 * call). Accumulators from / to accbuf[t * GEMM_GW + r] (zero when g0 is 0), or summed into
 * y when g1 is the last group. */
INLINE void tile(int nw, int nx, const ar_block_wl16 *w, size_t ws, const ar_block_xl16 *x,
                 size_t xs, int64_t g0, int64_t g1, int64_t ng, __m512 *accbuf, float *y,
                 size_t ldy) {
    __m512 acc[GEMM_NW][GEMM_NX];
#pragma GCC unroll 4
    for (int r = 0; r < nw; r++)
#pragma GCC unroll 4
        for (int t = 0; t < nx; t++) acc[r][t] = g0 ? accbuf[t * GEMM_GW + r] : _mm512_setzero_ps();
    for (int64_t g = g0; g < g1; g++) {
        const ar_block_wl16 *wb[GEMM_NW];
        const ar_block_xl16 *xb[GEMM_NX];
        __m512i s[GEMM_NW][GEMM_NX];
#pragma GCC unroll 4
        for (int r = 0; r < nw; r++) wb[r] = w + (size_t)r * ws + g;
#pragma GCC unroll 4
        for (int t = 0; t < nx; t++) xb[t] = x + (size_t)t * xs + g;
#pragma GCC unroll 4
        for (int r = 0; r < nw; r++)
#pragma GCC unroll 4
            for (int t = 0; t < nx; t++) s[r][t] = _mm512_setzero_si512();
#pragma GCC unroll 16
        for (int c = 0; c < 16; c++) {
            __m512i wv[GEMM_NW];
#pragma GCC unroll 4
            for (int r = 0; r < nw; r++) {
                wv[r] = load512(wb[r]->u + 32 * c);
                __asm__("" : "+v"(wv[r])); /* one load per row and chunk, not per pair */
            }
#pragma GCC unroll 4
            for (int t = 0; t < nx; t++) {
                const __m512i xv = load512(xb[t]->q + 32 * c);
#pragma GCC unroll 4
                for (int r = 0; r < nw; r++) s[r][t] = _mm512_dpwssd_epi32(s[r][t], wv[r], xv);
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < nx; t++) {
            const __m512 dx = _mm512_loadu_ps(xb[t]->dx);
#pragma GCC unroll 4
            for (int r = 0; r < nw; r++)
                acc[r][t] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r][t]),
                                    _mm512_mul_ps(_mm512_loadu_ps(wb[r]->scale), dx), acc[r][t]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nw; r++)
#pragma GCC unroll 4
        for (int t = 0; t < nx; t++) {
            if (g1 == ng)
                y[(size_t)t * ldy + (size_t)r] = hsum512(acc[r][t]);
            else
                accbuf[t * GEMM_GW + r] = acc[r][t];
        }
}

static void gemm_l16(int64_t n, const ar_block_wl16 *w, size_t ws, int nw, const ar_block_xl16 *x,
                     size_t xs, int nx, float *y, size_t ldy) {
    const int64_t ng = ar_lane_groups(n, 32);
    if (nx == 1) { /* one token: each row once over its whole length, streamed */
        for (int r = 0; r < nw; r += DEC_NW) {
            const ar_block_wl16 *wr = w + (size_t)r * ws;
            if (nw - r >= 2)
                tile(2, 1, wr, ws, x, xs, 0, ng, ng, NULL, y + r, ldy);
            else
                tile(1, 1, wr, ws, x, xs, 0, ng, ng, NULL, y + r, ldy);
        }
        return;
    }
    __m512 accbuf[GEMM_GW * GEMM_GX];
    const int64_t kc = ng <= GEMM_KC1 ? ng : GEMM_KC;
    for (int gx = 0; gx < nx; gx += GEMM_GX) {
        const int ex = nx - gx < GEMM_GX ? nx - gx : GEMM_GX;
        for (int gw = 0; gw < nw; gw += GEMM_GW) {
            const int ew = nw - gw < GEMM_GW ? nw - gw : GEMM_GW;
            for (int64_t g0 = 0; g0 < ng; g0 += kc) {
                const int64_t g1 = ng - g0 < kc ? ng : g0 + kc;
                for (int t = 0; t < ex; t += GEMM_NX) {
                    const int mx = ex - t < GEMM_NX ? ex - t : GEMM_NX;
                    for (int r = 0; r < ew; r += GEMM_NW) {
                        const int mw = ew - r < GEMM_NW ? ew - r : GEMM_NW;
                        const ar_block_wl16 *wr = w + (size_t)(gw + r) * ws;
                        const ar_block_xl16 *xt = x + (size_t)(gx + t) * xs;
                        float *yt = y + (size_t)(gx + t) * ldy + (size_t)(gw + r);
                        __m512 *ab = accbuf + t * GEMM_GW + r;
#define TILE(a, b) tile(a, b, wr, ws, xt, xs, g0, g1, ng, ab, yt, ldy)
                        switch ((mw - 1) * GEMM_NX + (mx - 1)) {
                        case 0: TILE(1, 1); break;
                        case 1: TILE(1, 2); break;
                        case 2: TILE(1, 3); break;
                        case 3: TILE(2, 1); break;
                        case 4: TILE(2, 2); break;
                        case 5: TILE(2, 3); break;
                        case 6: TILE(3, 1); break;
                        case 7: TILE(3, 2); break;
                        case 8: TILE(3, 3); break;
                        case 9: TILE(4, 1); break;
                        case 10: TILE(4, 2); break;
                        default: TILE(4, 3); break;
                        }
#undef TILE
                    }
                }
            }
        }
    }
}

/* --- Table -------------------------------------------------------------------------------- */

void ar_kernels_fill_lane16_avx512(ar_kernels *k) {
    k->pack_l16[AR_TYPE_F16] = pack_l16_f16;
    k->pack_l16[AR_TYPE_BF16] = pack_l16_bf16;
    k->quantize_l16 = quantize_l16;
    k->gemm_l16 = gemm_l16;
}
