/*
 * gemm16_avx512.c - the k-quants' GEMM path for AVX-512 (F, BW, VL, DQ, VNNI): pack16 (a
 * Q2_K..Q6_K weight row unpacked into ar_block_w16 blocks, the same bytes as the scalar
 * reference gemm16_scalar.c) and gemm16 (packed rows times many Q16K activation rows), each
 * result bit-identical to this tier's vec_dot16 (q16_avx512.c) on that row and token.
 *
 * Why: vec_dot16_n unpacks each weight block (nibbles, offsets, times the sub-block scale:
 * about 30 vector operations for 8 registers of int16) for every group of up to 4 tokens,
 * which costs as much as a third of its dpwssd. The engine instead packs a block of weight
 * rows once per tile of tokens (matmul.c) and multiplies the packed rows here, so the inner
 * loop is loads and dpwssd only.
 *
 * pack16 runs q16_avx512.c's unpacking (the same int16 lanes: s * q in element order, 32
 * elements per register) and stores the 8 registers, the float16 scales as floats and the
 * mins per bsum (int16), with the padding zeroed.
 *
 * gemm16: a micro-kernel of GEMM_NW weight rows x GEMM_NX tokens (2 x 4) keeps one int32
 * sum (16 lanes) and one float accumulator (16 lanes) per (row, token) in registers: 16 of
 * the 32 zmm registers, beside the 2 weight registers and one activation register. Per
 * 256-element block and register k (0..7) it loads the 2 rows' weights and, per token, the
 * token's 32 activations once, for 2 dpwssd: 6 loads per 8 dpwssd instead of vec_dot16_n's
 * 8 loads and the unpacking. Each int32 lane of a (row, token) sum collects exactly the
 * products vec_dot16 puts in that lane (elements 32k + 2i and 32k + 2i + 1 of register k go
 * to lane i in both), and integer sums are exact in any order (each lane stays below 2^30,
 * q16_avx512.c), so the lanes are equal. Then the float steps are vec_dot16's, through the
 * same helpers (flush / flush_min, q16_avx512.h) in the same order per block: t = cvt(sum) *
 * d, t -= (dmin * m) * cvt(bsums) for the types with a minimum (dmin * m made with the same
 * multiply of the same floats), acc += dx * t, and at the end the same 16-lane reduction.
 * Hence bit-identity, which the engine needs (tree and selective evaluation, 1 token at a
 * time through vec_dot16, must equal batched evaluation through here).
 *
 * Edge tiles (fewer rows or tokens) run the same body with constant smaller counts. Tokens
 * are the outer loop: a group of 4 tokens' activations stays in cache while the packed rows
 * (a block of AR_ROW_BLOCK rows, matmul.c) go by.
 */
#include "kernels/kernels.h"

#include "kernels/q16_avx512.h"
#include "kernels/qk_simd.h"
#include "kernels/quant.h"

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

/* --- Packing ------------------------------------------------------------------------------ */

/* The bytes after w[] of a packed block: d, dmin, mins (16 int16, zero-extended from bytes in
 * m8, or zero) and zero padding. */
INLINE void put_tail(ar_block_w16 *out, float d, float dmin, __m128i m8) {
    _mm512_storeu_si512((uint8_t *)out + 512, _mm512_setzero_si512());
    _mm512_storeu_si512((uint8_t *)out + 576, _mm512_setzero_si512());
    out->d = d;
    out->dmin = dmin;
    _mm256_storeu_si256((__m256i *)(void *)out->m, _mm256_cvtepu8_epi16(m8));
}

INLINE void put_w(ar_block_w16 *out, int k, __m512i w16) {
    _mm512_storeu_si512(out->w + 32 * k, w16);
}

static void pack16_q2_k(int64_t n, const void *vw, ar_block_w16 *out) {
    const uint8_t *w = vw;
    const __m512i m3 = _mm512_set1_epi16(3);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q2_K), out++) {
        const __m128i packed = loadu128(w);
        const __m256i sc = _mm256_cvtepu8_epi16(_mm_and_si128(packed, m4));
        for (int h = 0; h < 2; h++) {
            const __m512i q = zx32(w + 16 + 32 * h);
            const __m512i sch = bcast_half(sc, h);
            for (int g = 0; g < 4; g++) {
                const __m512i u = _mm512_and_si512(g ? _mm512_srli_epi16(q, 2 * g) : q, m3);
                put_w(out, 4 * h + g, _mm512_mullo_epi16(u, scales_16(sch, 2 * g)));
            }
        }
        put_tail(out, load_fp16(w + 80), load_fp16(w + 82),
                 _mm_and_si128(_mm_srli_epi16(packed, 4), m4));
    }
}

static void pack16_q3_k(int64_t n, const void *vw, ar_block_w16 *out) {
    const uint8_t *w = vw;
    const __m512i m3 = _mm512_set1_epi16(3), four = _mm512_set1_epi16(4);
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q3_K), out++) {
        const __m256i sc = _mm256_cvtepi8_epi16(unpack_scales_q3_k(w + 96)); /* s - 32 */
        const __m512i hm = zx32(w);
        for (int h = 0; h < 2; h++) {
            const __m512i q = zx32(w + 32 + 32 * h);
            const __m512i sch = bcast_half(sc, h);
            for (int g = 0; g < 4; g++) {
                const __m512i low = _mm512_and_si512(g ? _mm512_srli_epi16(q, 2 * g) : q, m3);
                const __mmask32 clear =
                    _mm512_testn_epi16_mask(hm, _mm512_set1_epi16((short)(1 << (4 * h + g))));
                const __m512i u = _mm512_mask_sub_epi16(low, clear, low, four);
                put_w(out, 4 * h + g, _mm512_mullo_epi16(u, scales_16(sch, 2 * g)));
            }
        }
        put_tail(out, load_fp16(w + 108), 0.0f, _mm_setzero_si128());
    }
}

/* Q4_K and Q5_K; `hbits` selects Q5_K (bit s of qh[l] is bit 4 of sub-block s). */
INLINE void pack_k4(int64_t n, const uint8_t *w, int hbits, ar_block_w16 *out) {
    const size_t bsize = hbits ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const uint8_t *qs = w + (hbits ? 48 : 16);
    const __m512i m4 = _mm512_set1_epi16(0x0f), b4 = _mm512_set1_epi16(0x10);
    const __m128i mins_dup =
        _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += bsize, qs += bsize, out++) {
        const __m128i sm128 = unpack_scales_k4(loadu128(w)); /* scales 0..7, mins 8..15 */
        const __m512i sm = _mm512_broadcast_i32x4(sm128);
        const __m512i qh = hbits ? zx32(w + 16) : _mm512_setzero_si512();
        for (int j = 0; j < 4; j++) {
            const __m512i q = zx32(qs + 32 * j);
            __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_srli_epi16(q, 4);
            if (hbits) {
                const int s = 2 * j;
                const __m512i hl =
                    s <= 4 ? _mm512_slli_epi16(qh, 4 - s) : _mm512_srli_epi16(qh, s - 4);
                const __m512i hh =
                    s + 1 <= 4 ? _mm512_slli_epi16(qh, 3 - s) : _mm512_srli_epi16(qh, s - 3);
                lo = _mm512_ternarylogic_epi32(lo, hl, b4, 0xf8);
                hi = _mm512_ternarylogic_epi32(hi, hh, b4, 0xf8);
            }
            put_w(out, 2 * j, _mm512_mullo_epi16(lo, _mm512_shuffle_epi8(sm, pick8(2 * j))));
            put_w(out, 2 * j + 1,
                  _mm512_mullo_epi16(hi, _mm512_shuffle_epi8(sm, pick8(2 * j + 1))));
        }
        put_tail(out, load_fp16(w), load_fp16(w + 2), _mm_shuffle_epi8(sm128, mins_dup));
    }
}

static void pack16_q4_k(int64_t n, const void *w, ar_block_w16 *out) {
    pack_k4(n, w, 0, out);
}

static void pack16_q5_k(int64_t n, const void *w, ar_block_w16 *out) {
    pack_k4(n, w, 1, out);
}

static void pack16_q6_k(int64_t n, const void *vw, ar_block_w16 *out) {
    const uint8_t *w = vw;
    const __m512i m4 = _mm512_set1_epi16(0x0f), m30 = _mm512_set1_epi16(0x30);
    const __m512i off = _mm512_set1_epi16(32);
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q6_K), out++) {
        const __m256i sc = _mm256_cvtepi8_epi16(loadu128(w + 192));
        for (int h = 0; h < 2; h++) {
            const __m512i sch = bcast_half(sc, h);
            const __m512i l0 = zx32(w + 64 * h), l1 = zx32(w + 64 * h + 32);
            const __m512i qh = zx32(w + 128 + 32 * h);
            __m512i u[4];
            u[0] = _mm512_ternarylogic_epi32(l0, _mm512_and_si512(_mm512_slli_epi16(qh, 4), m30),
                                             m4, 0xec);
            u[1] = _mm512_ternarylogic_epi32(l1, _mm512_and_si512(_mm512_slli_epi16(qh, 2), m30),
                                             m4, 0xec);
            u[2] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(l0, 4), qh, m30, 0xf8);
            u[3] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(l1, 4), _mm512_srli_epi16(qh, 2),
                                             m30, 0xf8);
            for (int g = 0; g < 4; g++)
                put_w(out, 4 * h + g,
                      _mm512_mullo_epi16(_mm512_sub_epi16(u[g], off), scales_16(sch, 2 * g)));
        }
        put_tail(out, load_fp16(w + 208), 0.0f, _mm_setzero_si128());
    }
}

/* --- GEMM --------------------------------------------------------------------------------- */

#define GEMM_NW 2 /* weight rows per micro-tile */
#define GEMM_NX 4 /* tokens per micro-tile */

#define GEMM_KC 2  /* blocks of 256 per pass over a group (L1: see gemm) */
#define GEMM_GW 8  /* weight rows per group */
#define GEMM_GX 32 /* tokens per group */

/* Blocks [ib0, ib1) of the products of weight rows w + r * ws blocks with activation rows
 * x + t * xs bytes, r < nw, t < nx (compile-time constants at every call). The float
 * accumulators come from acc[t * GEMM_GW + r] (zero when ib0 is 0) and go back there, or
 * when ib1 is the last block are reduced into y[t * ldy + r]. Storing and reloading an
 * accumulator is exact, so the split changes no result. */
INLINE void gemm_tile(const ar_block_w16 *w, size_t ws, int nw, const uint8_t *x, size_t xs, int nx,
                      int has_min, int64_t ib0, int64_t ib1, int64_t nblk, __m512 *accbuf, float *y,
                      size_t ldy) {
    __m512 acc[GEMM_NW][GEMM_NX];
    for (int r = 0; r < nw; r++)
        for (int t = 0; t < nx; t++)
            acc[r][t] = ib0 ? accbuf[t * GEMM_GW + r] : _mm512_setzero_ps();
    for (int64_t ib = ib0; ib < ib1; ib++) {
        const uint8_t *xb[GEMM_NX];
        const ar_block_w16 *wb[GEMM_NW];
        __m512i sumi[GEMM_NW][GEMM_NX];
        for (int t = 0; t < nx; t++) xb[t] = q16k_at(x, xs, t, ib);
        for (int r = 0; r < nw; r++) {
            wb[r] = w + (size_t)r * ws + ib;
            for (int t = 0; t < nx; t++) sumi[r][t] = _mm512_setzero_si512();
        }
        for (int k = 0; k < 8; k++) {
            __m512i wv[GEMM_NW];
            for (int r = 0; r < nw; r++) {
                wv[r] = loadu512(wb[r]->w + 32 * k);
                __asm__("" : "+v"(wv[r])); /* one load per row and register, not per pair */
            }
            for (int t = 0; t < nx; t++) {
                const __m512i xv = loadu512(xb[t] + offsetof(ar_block_q16k, qs) + 64 * k);
                for (int r = 0; r < nw; r++)
                    sumi[r][t] = _mm512_dpwssd_epi32(sumi[r][t], wv[r], xv);
            }
        }
        for (int r = 0; r < nw; r++) {
            const __m512 dv = _mm512_set1_ps(wb[r]->d);
            if (has_min) {
                const __m512 mn = _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(loadu256(wb[r]->m)));
                const __m512 mv = _mm512_mul_ps(_mm512_set1_ps(wb[r]->dmin), mn);
                for (int t = 0; t < nx; t++)
                    acc[r][t] = flush_min(acc[r][t], sumi[r][t], dv, mv, xb[t]);
            } else {
                for (int t = 0; t < nx; t++) acc[r][t] = flush(acc[r][t], sumi[r][t], dv, xb[t]);
            }
        }
    }
    for (int r = 0; r < nw; r++)
        for (int t = 0; t < nx; t++) {
            if (ib1 == nblk)
                y[(size_t)t * ldy + (size_t)r] = _mm512_reduce_add_ps(acc[r][t]);
            else
                accbuf[t * GEMM_GW + r] = acc[r][t];
        }
}

/* Every (row, token) of the product: groups of up to GEMM_GW rows x GEMM_GX tokens; per
 * group, passes of GEMM_KC blocks, each over all its micro-tiles (tokens outer), so the
 * pass's packed weights (8 rows x 2 blocks: 10 KiB) stay in L1 while the tokens go by, and
 * its activations (4 tokens x 2 blocks: 5 KiB) while the rows do. The accumulators wait in
 * a 16 KiB buffer between passes. Edge tiles get their own constant counts, so their loops
 * unroll as the full tile's. */
INLINE void gemm(int64_t n, const ar_block_w16 *w, size_t ws, int nw, const void *vx, size_t xs,
                 int nx, float *y, size_t ldy, int has_min) {
    const uint8_t *x = vx;
    const int64_t nblk = n / AR_QK16K;
    __m512 accbuf[GEMM_GW * GEMM_GX];
    for (int gx = 0; gx < nx; gx += GEMM_GX) {
        const int ex = nx - gx < GEMM_GX ? nx - gx : GEMM_GX;
        for (int gw = 0; gw < nw; gw += GEMM_GW) {
            const int ew = nw - gw < GEMM_GW ? nw - gw : GEMM_GW;
            for (int64_t ib0 = 0; ib0 < nblk; ib0 += GEMM_KC) {
                const int64_t ib1 = nblk - ib0 < GEMM_KC ? nblk : ib0 + GEMM_KC;
                for (int t = 0; t < ex; t += GEMM_NX) {
                    const int mx = ex - t < GEMM_NX ? ex - t : GEMM_NX;
                    for (int r = 0; r < ew; r += GEMM_NW) {
                        const int mw = ew - r < GEMM_NW ? ew - r : GEMM_NW;
                        const ar_block_w16 *wr = w + (size_t)(gw + r) * ws;
                        const uint8_t *xt = x + (size_t)(gx + t) * xs;
                        float *yt = y + (size_t)(gx + t) * ldy + (size_t)(gw + r);
                        __m512 *ab = accbuf + t * GEMM_GW + r;
#define TILE(a, b) gemm_tile(wr, ws, a, xt, xs, b, has_min, ib0, ib1, nblk, ab, yt, ldy)
                        switch ((mw - 1) * GEMM_NX + (mx - 1)) {
                        case 0: TILE(1, 1); break;
                        case 1: TILE(1, 2); break;
                        case 2: TILE(1, 3); break;
                        case 3: TILE(1, 4); break;
                        case 4: TILE(2, 1); break;
                        case 5: TILE(2, 2); break;
                        case 6: TILE(2, 3); break;
                        default: TILE(2, 4); break;
                        }
#undef TILE
                    }
                }
            }
        }
    }
}

static void gemm16_min(int64_t n, const ar_block_w16 *w, size_t w_stride, int nw, const void *x,
                       size_t x_stride, int nx, float *y, size_t ldy) {
    gemm(n, w, w_stride, nw, x, x_stride, nx, y, ldy, 1);
}

static void gemm16_nomin(int64_t n, const ar_block_w16 *w, size_t w_stride, int nw, const void *x,
                         size_t x_stride, int nx, float *y, size_t ldy) {
    gemm(n, w, w_stride, nw, x, x_stride, nx, y, ldy, 0);
}

/* --- Table -------------------------------------------------------------------------------- */

void ar_kernels_fill_gemm16_avx512(ar_kernels *k) {
    k->pack16[AR_TYPE_Q2_K] = pack16_q2_k;
    k->pack16[AR_TYPE_Q3_K] = pack16_q3_k;
    k->pack16[AR_TYPE_Q4_K] = pack16_q4_k;
    k->pack16[AR_TYPE_Q5_K] = pack16_q5_k;
    k->pack16[AR_TYPE_Q6_K] = pack16_q6_k;
    k->gemm16[AR_TYPE_Q2_K] = gemm16_min;
    k->gemm16[AR_TYPE_Q3_K] = gemm16_nomin;
    k->gemm16[AR_TYPE_Q4_K] = gemm16_min;
    k->gemm16[AR_TYPE_Q5_K] = gemm16_min;
    k->gemm16[AR_TYPE_Q6_K] = gemm16_nomin;
}
