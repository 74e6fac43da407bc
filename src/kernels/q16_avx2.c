/*
 * q16_avx2.c - the k-quants' accurate path for AVX2 (+FMA, F16C): quantize_q16k and the
 * Q2_K..Q6_K x Q16K dot products (15-bit activations, one integer pass), with the contracts
 * of the scalar reference (q16_scalar.c, where the math is explained). This file is
 * compiled with -mavx2 -mfma -mf16c and only called after cpu.c has checked the CPU.
 *
 * quantize_q16k performs the reference's float operations one for one: amax from the
 * magnitudes' bit patterns (integer max; inf and NaN sort above every finite value), the
 * same float32 division for d, a true division x / d per element, roundf (halfway cases
 * away from zero) built from truncation, the same clamp; so its bytes equal the scalar ones.
 *
 * Dot products. The int8 kernels (qk_avx2.c) multiply unsigned weight bytes with int8
 * activations (maddubs) and apply the sub-block scales per activation row (madd). Here the
 * activations are int16, so the work is split the other way round:
 *
 *  - per weight block, once for all activation rows: the quants are unpacked straight into
 *    int16 lanes, 16 elements (one element per 16-bit lane, in element order) per register,
 *    and multiplied by their sub-block scale (_mm256_mullo_epi16): w16 = s * q, exact since
 *    |s * q| <= 4096 (Q6_K: 32 * 128). The widening costs one shuffle-port op per 16 weight
 *    bytes: _mm256_cvtepu8_epi16 straight from memory, after which every further step
 *    (nibble masks, bit moves, the offsets -32 / -4) works inside the 16-bit lanes, as each
 *    lane holds the weight byte (or qh / hmask byte) of exactly its own element. The scales
 *    are stored once per block as int32 pairs (s | s << 16) in a small stack array, so that
 *    the broadcast for each register is a plain vpbroadcastd load, not a shuffle;
 *  - per activation row: _mm256_madd_epi16(w16, x16) (8 int32 lanes, each the sum of two
 *    products) added into a running int32 sum; 16 madds per block and row.
 * The minimum terms (Q2_K, Q4_K, Q5_K) come from the Q16K bsums (int32) with
 * _mm256_mullo_epi32, per row and block: Q4_K/Q5_K add bsum pairs first (hadd) and need
 * one mullo, Q2_K two.
 *
 * int32 bounds, per lane and block (the running sum of a row is reset every block): each of
 * the 8 lanes collects 16 madds of 2 products = 32 products |s q a| <= 4096 * 16383, so
 * |lane| <= 32 * 4096 * 16383 = 2147352576 < 2^31 - 1 = 2147483647 (Q6_K; the partial sums
 * are bounded by the same, whatever the order). This is why the Q6_K offset stays in the
 * weights (q - 32 before the scale): taking 32 * s * bsum back afterwards, as the int8
 * kernels do, would double the bound and overflow. Q5_K: 32 * 31 * 63 * 16383 < 2^30;
 * Q4_K (|s q| <= 945), Q3_K (128), Q2_K (45) less. A madd pair itself is at most
 * 2 * 4096 * 16383 < 2^28. Mins, one lane: m * (bsum + bsum) <= 63 * 2 * 16 * 16383 < 2^25
 * (Q4_K/Q5_K), m * bsum + m * bsum <= 2 * 15 * 16 * 16383 < 2^23 (Q2_K).
 * Per block each row's 8 lanes go to float and into a float accumulator with one FMA by
 * (super-scale * activation scale, one float multiply as in the reference), as in the int8
 * kernels; lanes are added at the end. Only those float steps round, so results agree with
 * the reference (int64 isum, one float per block) to float reassociation error.
 *
 * Several activation rows (vec_dot16_n): one always-inline body per type for 1..AR_MAX_NR
 * rows (QK_DEFINE_DOTS, qk_simd.h). Each scaled weight register meets every row before the
 * next is made; the rows' sums and accumulators are separate and see the same operations
 * in the same order as a single row, so each result is bit-identical to vec_dot16 on its
 * row. Register budget with 4 rows: 4 running sums, the 2..3 widened source registers of
 * the current group, the scaled weights, a madd result and 3 constants fit in the 16 ymm
 * registers; the float accumulators (4, or 8 with mins) live in memory, touched once per
 * block. The running sums are pinned by acc_add (the asm barrier of qk_avx2.c), or GCC
 * regroups each row's 16 madds of a block into a tree and spills (measured: up to 1.8x
 * slower). The loops over a block are unrolled by pragma: with 4 rows GCC would keep them
 * rolled and spend general registers (and spills) on index arithmetic.
 *
 * Cost. Per row and block the int16 path does 16 madds on 512 activation bytes, the int8
 * path 8 maddubs + 8 madds on 256 bytes: as many multiplies, twice the loads. The weight
 * side (4..12 widening loads, 16 mullo, the bit work) is shared by the rows, so a single
 * row pays all of it. Measured on one Zen 5 core (the AR_Q16_BENCH=1 run of
 * tests/unit/test_kernels_q16.c): a vec_dot16 costs 1.6..2x an int8 vec_dot, i.e. a little
 * less than the two int8 passes (activations and their rounding error, vec_dot_n with 2
 * rows) the accurate precision ran before; vec_dot16_n with 4 rows costs 1.4..1.65x an
 * int8 vec_dot_n per row, i.e. 0.7..0.8x the paired int8 path for 4 tokens.
 *
 * Activation rows are addressed by bytes (a row of Q16K blocks need not be 4-byte aligned
 * at an arbitrary stride); d is read with memcpy. Weight blocks are read with unaligned
 * loads and never past their last byte.
 */
#include "kernels/kernels.h"

#include "kernels/qk_simd.h"
#include "kernels/quant.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

/* --- Helpers ------------------------------------------------------------------------------ */

/* acc + v (int32 lanes), with an empty asm that pins the result, so that each row's sum is
 * a running sum in the order written (see qk_avx2.c). */
INLINE __m256i acc_add(__m256i acc, __m256i v) {
    acc = _mm256_add_epi32(acc, v);
    __asm__("" : "+x"(acc));
    return acc;
}

/* 16 bytes at p, zero-extended to 16 int16 lanes (one shuffle-port op with the load). */
INLINE __m256i zx16(const uint8_t *p) {
    return _mm256_cvtepu8_epi16(loadu128(p));
}

/* Block ib of activation row r (rows `stride` bytes apart), as bytes. */
INLINE const uint8_t *q16k_at(const uint8_t *x, size_t stride, int r, int64_t ib) {
    return x + (size_t)r * stride + (size_t)ib * sizeof(ar_block_q16k);
}

/* The activation scale d of block b in all 8 lanes (a broadcast load). */
INLINE __m256 q16k_d(const uint8_t *b) {
    float d;
    memcpy(&d, b + offsetof(ar_block_q16k, d), sizeof d);
    return _mm256_set1_ps(d);
}

/* 16 int16 lanes of activations: elements e..e+15 of block b. */
INLINE __m256i q16k_qs(const uint8_t *b, int e) {
    return loadu256(b + offsetof(ar_block_q16k, qs) + 2 * e);
}

/* The bsums of block b, 8 at a time (half 0 or 1). */
INLINE __m256i q16k_bsums(const uint8_t *b, int half) {
    return loadu256(b + offsetof(ar_block_q16k, bsums) + 32 * half);
}

/* Sixteen int16 scales (v, lanes 0..15) stored as int32 pairs s | s << 16 in out[16], in
 * the order of the unpacks: scale i is at out[pair_index(i)]. */
INLINE void store_scale_pairs(__m256i v, int32_t out[16]) {
    _mm256_storeu_si256((__m256i *)(void *)out, _mm256_unpacklo_epi16(v, v));
    _mm256_storeu_si256((__m256i *)(void *)(out + 8), _mm256_unpackhi_epi16(v, v));
    /* "the array may have changed": GCC would otherwise take the scales out of v with a
     * shift and a register broadcast each (two shuffle-port ops) instead of loading them */
    __asm__("" : "+m"(*(int32_t(*)[16])out));
}

INLINE int pair_index(int i) {
    return (i & 3) | (i & 4) << 1 | (i & 8) >> 1;
}

/* Scale i of store_scale_pairs' array in every int16 lane (a broadcast load). */
INLINE __m256i scale_of(const int32_t sc[16], int i) {
    return _mm256_set1_epi32(sc[pair_index(i)]);
}

/* Bits 2g..2g+1 of every 16-bit lane of q (a zero-extended byte), as 0..3. */
INLINE __m256i two_bits(__m256i q, int g) {
    const __m256i m3 = _mm256_set1_epi16(3);
    if (g == 3) return _mm256_srli_epi16(q, 6); /* nothing above bit 7 */
    return _mm256_and_si256(g ? _mm256_srli_epi16(q, 2 * g) : q, m3);
}

/* v shifted so that bit `bit` of each 16-bit lane lands on bit `to` (other bits not
 * cleared). */
INLINE __m256i lane_shift(__m256i v, int bit, int to) {
    if (bit < to) return _mm256_slli_epi16(v, to - bit);
    if (bit > to) return _mm256_srli_epi16(v, bit - to);
    return v;
}

/* Bit `bit` of every 16-bit lane of v (a zero-extended byte) moved to bit `to`, all other
 * bits clear. */
INLINE __m256i lane_bit(__m256i v, int bit, int to) {
    return _mm256_and_si256(lane_shift(v, bit, to), _mm256_set1_epi16((short)(1 << to)));
}

/* The per-row step: sumi[r] += madd(w16, elements e..e+15 of row r's block). */
INLINE void madd_rows(int nr, __m256i *sumi, const uint8_t *const *xb, int e, __m256i w16) {
    for (int r = 0; r < nr; r++)
        sumi[r] = acc_add(sumi[r], _mm256_madd_epi16(w16, q16k_qs(xb[r], e)));
}

/* --- Q16K activations --------------------------------------------------------------------- */

/* roundf() of 8 floats of magnitude below 2^23 (halfway cases away from zero), still as
 * floats: t = trunc(v); v - t is exact; add sign(v) when |v - t| >= 0.5. */
INLINE __m256 round_away(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 f = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    const __m256 up = _mm256_cmp_ps(f, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 one = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_and_ps(up, one));
}

/* The 8 int32 sums of s[0..7] in order (each s[j] 8 int32 lanes). */
INLINE __m256i hsum8_epi32(const __m256i s[8]) {
    /* per 128-bit half: [s0 s1 s2 s3] and [s4 s5 s6 s7] of that half's 4 lanes */
    const __m256i a =
        _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
    const __m256i b =
        _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]), _mm256_hadd_epi32(s[6], s[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                            _mm256_permute2x128_si256(a, b, 0x31));
}

static void quantize_q16k(const float *x, void *vy, int64_t n) {
    ar_block_q16k *y = vy;
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
    const __m256 lim = _mm256_set1_ps(16383.0f), nlim = _mm256_set1_ps(-16383.0f);
    for (int64_t ib = 0; ib < n / AR_QK16K; ib++, x += AR_QK16K) {
        ar_block_q16k *b = &y[ib];
        /* |x| as integers orders like the floats, with inf and NaN above every finite value */
        __m256i m0 = _mm256_setzero_si256(), m1 = m0;
        for (int i = 0; i < AR_QK16K; i += 16) {
            m0 = _mm256_max_epi32(m0, _mm256_and_si256(loadu256(x + i), abs_mask));
            m1 = _mm256_max_epi32(m1, _mm256_and_si256(loadu256(x + i + 8), abs_mask));
        }
        __m128i m = _mm_max_epi32(_mm256_castsi256_si128(m0), _mm256_extracti128_si256(m0, 1));
        m = _mm_max_epi32(
            m, _mm_max_epi32(_mm256_castsi256_si128(m1), _mm256_extracti128_si256(m1, 1)));
        m = _mm_max_epi32(m, _mm_unpackhi_epi64(m, m));
        m = _mm_max_epi32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(2, 3, 0, 1)));
        const int32_t amax_bits = _mm_cvtsi128_si32(m);
        memset(b, 0, sizeof *b);
        if (amax_bits >= 0x7f800000) { /* inf or NaN */
            b->d = NAN;
            continue;
        }
        float amax;
        memcpy(&amax, &amax_bits, sizeof amax);
        const float d = amax / 16383.0f;
        if (d < FLT_MIN) continue; /* all zero */
        const __m256 vd = _mm256_set1_ps(d);
        for (int half = 0; half < 2; half++) {
            __m256i s[8];
            for (int j = 0; j < 8; j++) {
                const float *xj = x + 128 * half + 16 * j;
                __m256 v0 = round_away(_mm256_div_ps(_mm256_loadu_ps(xj), vd));
                __m256 v1 = round_away(_mm256_div_ps(_mm256_loadu_ps(xj + 8), vd));
                v0 = _mm256_min_ps(_mm256_max_ps(v0, nlim), lim);
                v1 = _mm256_min_ps(_mm256_max_ps(v1, nlim), lim);
                const __m256i q0 = _mm256_cvttps_epi32(v0), q1 = _mm256_cvttps_epi32(v1);
                /* packs works per 128-bit half; the permute restores element order */
                const __m256i q = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xd8);
                _mm256_storeu_si256((__m256i *)(void *)(b->qs + 128 * half + 16 * j), q);
                s[j] = _mm256_add_epi32(q0, q1);
            }
            _mm256_storeu_si256((__m256i *)(void *)(b->bsums + 8 * half), hsum8_epi32(s));
        }
        b->d = d;
    }
}

/* --- Dot products ------------------------------------------------------------------------- */

/* Each kernel below is a body for QK_DEFINE_DOTS (qk_simd.h), named dot16_*: per weight
 * block it stores the scale pairs, then makes the scaled int16 weights 16 elements at a
 * time and hands each register to madd_rows; per row the block's int32 lanes then go to
 * float. */

/* --- Q2_K --------------------------------------------------------------------------------- */

INLINE void dot16_q2_k(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                       float *ys) {
    const __m128i m4 = _mm_set1_epi8(0x0f);
    __m256 acc[AR_MAX_NR], accm[AR_MAX_NR];
    for (int r = 0; r < nr; r++) acc[r] = accm[r] = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q2_K)) {
        const uint8_t *xb[AR_MAX_NR];
        __m256i sumi[AR_MAX_NR];
        for (int r = 0; r < nr; r++) {
            xb[r] = q16k_at(x, stride, r, ib);
            sumi[r] = _mm256_setzero_si256();
        }
        const __m128i packed = loadu128(w); /* scales[16]: low nibble scale, high nibble min */
        int32_t sc[16];
        store_scale_pairs(_mm256_cvtepu8_epi16(_mm_and_si128(packed, m4)), sc);
        /* element 128h + 32g + l: bits 2g..2g+1 of qs[32h + l]; sub-block 8h + 2g + l / 16 */
#pragma GCC unroll 8
        for (int h = 0; h < 2; h++) {
#pragma GCC unroll 8
            for (int half = 0; half < 2; half++) {
                const __m256i q = zx16(w + 16 + 32 * h + 16 * half);
#pragma GCC unroll 8
                for (int g = 0; g < 4; g++) {
                    const __m256i u = two_bits(q, g);
                    const __m256i w16 = _mm256_mullo_epi16(u, scale_of(sc, 8 * h + 2 * g + half));
                    madd_rows(nr, sumi, xb, 128 * h + 32 * g + 16 * half, w16);
                }
            }
        }
        const __m128i mn = _mm_and_si128(_mm_srli_epi16(packed, 4), m4);
        const __m256i mn0 = _mm256_cvtepu8_epi32(mn),
                      mn1 = _mm256_cvtepu8_epi32(_mm_srli_si128(mn, 8));
        const __m256 d = _mm256_set1_ps(load_fp16(w + 80)),
                     dmin = _mm256_set1_ps(load_fp16(w + 82));
        for (int r = 0; r < nr; r++) {
            const __m256i msum = _mm256_add_epi32(_mm256_mullo_epi32(mn0, q16k_bsums(xb[r], 0)),
                                                  _mm256_mullo_epi32(mn1, q16k_bsums(xb[r], 1)));
            const __m256 dx = q16k_d(xb[r]);
            acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
            accm[r] = _mm256_fmadd_ps(_mm256_mul_ps(dmin, dx), _mm256_cvtepi32_ps(msum), accm[r]);
        }
    }
    for (int r = 0; r < nr; r++) ys[r] = hsum256(acc[r]) - hsum256(accm[r]);
}

QK_DEFINE_DOTS(q2_k, dot16_q2_k)

/* --- Q3_K --------------------------------------------------------------------------------- */

INLINE void dot16_q3_k(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                       float *ys) {
    const __m256i four = _mm256_set1_epi16(4);
    __m256 acc[AR_MAX_NR];
    for (int r = 0; r < nr; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q3_K)) {
        const uint8_t *xb[AR_MAX_NR];
        __m256i sumi[AR_MAX_NR];
        for (int r = 0; r < nr; r++) {
            xb[r] = q16k_at(x, stride, r, ib);
            sumi[r] = _mm256_setzero_si256();
        }
        int32_t sc[16];
        store_scale_pairs(_mm256_cvtepi8_epi16(unpack_scales_q3_k(w + 96)), sc);
        /* element 128h + 32g + l: low bits 2g..2g+1 of qs[32h + l], third bit 4h + g of
         * hmask[l]; q = low - (bit clear ? 4 : 0) */
#pragma GCC unroll 8
        for (int half = 0; half < 2; half++) {
            const __m256i hm = zx16(w + 16 * half);
#pragma GCC unroll 8
            for (int h = 0; h < 2; h++) {
                const __m256i q = zx16(w + 32 + 32 * h + 16 * half);
#pragma GCC unroll 8
                for (int g = 0; g < 4; g++) {
                    const __m256i minus4 = _mm256_andnot_si256(lane_shift(hm, 4 * h + g, 2), four);
                    const __m256i u = _mm256_sub_epi16(two_bits(q, g), minus4);
                    const __m256i w16 = _mm256_mullo_epi16(u, scale_of(sc, 8 * h + 2 * g + half));
                    madd_rows(nr, sumi, xb, 128 * h + 32 * g + 16 * half, w16);
                }
            }
        }
        const __m256 d = _mm256_set1_ps(load_fp16(w + 108));
        for (int r = 0; r < nr; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(d, q16k_d(xb[r])), _mm256_cvtepi32_ps(sumi[r]),
                                     acc[r]);
    }
    for (int r = 0; r < nr; r++) ys[r] = hsum256(acc[r]);
}

QK_DEFINE_DOTS(q3_k, dot16_q3_k)

/* --- Q4_K and Q5_K ------------------------------------------------------------------------ */

/* Both types: `hbits` selects Q5_K (the fifth bits at w + 16, quants at w + 48). */
INLINE void dot16_k4(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                     int hbits, float *ys) {
    const size_t bsize = hbits ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const int qs_off = hbits ? 48 : 16;
    const __m256i m4 = _mm256_set1_epi16(0x0f);
    /* bytes 8..15 of the unpacked scales (the mins) in the order m0 m1 m4 m5 m2 m3 m6 m7,
     * to meet the bsum pairs as _mm256_hadd_epi32 leaves them */
    const __m128i mins_order =
        _mm_setr_epi8(8, 9, 12, 13, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1);
    __m256 acc[AR_MAX_NR], accm[AR_MAX_NR];
    for (int r = 0; r < nr; r++) acc[r] = accm[r] = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += bsize) {
        const uint8_t *xb[AR_MAX_NR];
        __m256i sumi[AR_MAX_NR];
        for (int r = 0; r < nr; r++) {
            xb[r] = q16k_at(x, stride, r, ib);
            sumi[r] = _mm256_setzero_si256();
        }
        const __m128i sm = unpack_scales_k4(loadu128(w)); /* scales 0..7, mins 8..15 */
        int32_t sc[16];                                   /* scale j at pair_index(j) (j < 8) */
        store_scale_pairs(_mm256_cvtepu8_epi16(sm), sc);
        __m256i qh[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        if (hbits) {
            qh[0] = zx16(w + 16);
            qh[1] = zx16(w + 32);
        }
        /* sub-block 2j: low nibbles of qs[32j + l], 2j + 1: high nibbles; Q5_K: bits 2j and
         * 2j + 1 of qh[l] as bit 4 */
#pragma GCC unroll 8
        for (int j = 0; j < 4; j++) {
            const __m256i s0 = scale_of(sc, 2 * j), s1 = scale_of(sc, 2 * j + 1);
#pragma GCC unroll 8
            for (int half = 0; half < 2; half++) {
                const __m256i z = zx16(w + qs_off + 32 * j + 16 * half);
                __m256i lo = _mm256_and_si256(z, m4), hi = _mm256_srli_epi16(z, 4);
                if (hbits) {
                    lo = _mm256_or_si256(lo, lane_bit(qh[half], 2 * j, 4));
                    hi = _mm256_or_si256(hi, lane_bit(qh[half], 2 * j + 1, 4));
                }
                madd_rows(nr, sumi, xb, 64 * j + 16 * half, _mm256_mullo_epi16(lo, s0));
                madd_rows(nr, sumi, xb, 64 * j + 32 + 16 * half, _mm256_mullo_epi16(hi, s1));
            }
        }
        /* d, dmin in all lanes; mins: sum_j mn[j] * (bsums[2j] + bsums[2j + 1]) */
        const __m256 d = _mm256_set1_ps(load_fp16(w)), dmin = _mm256_set1_ps(load_fp16(w + 2));
        const __m256i mn = _mm256_cvtepu8_epi32(_mm_shuffle_epi8(sm, mins_order));
        for (int r = 0; r < nr; r++) {
            const __m256 dx = q16k_d(xb[r]);
            const __m256i pairs = _mm256_hadd_epi32(q16k_bsums(xb[r], 0), q16k_bsums(xb[r], 1));
            const __m256i msum = _mm256_mullo_epi32(mn, pairs);
            acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
            accm[r] = _mm256_fmadd_ps(_mm256_mul_ps(dmin, dx), _mm256_cvtepi32_ps(msum), accm[r]);
        }
    }
    for (int r = 0; r < nr; r++) ys[r] = hsum256(acc[r]) - hsum256(accm[r]);
}

INLINE void dot16_q4_k(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                       float *ys) {
    dot16_k4(n, w, x, stride, nr, 0, ys);
}

INLINE void dot16_q5_k(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                       float *ys) {
    dot16_k4(n, w, x, stride, nr, 1, ys);
}

QK_DEFINE_DOTS(q4_k, dot16_q4_k)
QK_DEFINE_DOTS(q5_k, dot16_q5_k)

/* --- Q6_K --------------------------------------------------------------------------------- */

INLINE void dot16_q6_k(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                       float *ys) {
    const __m256i m4 = _mm256_set1_epi16(0x0f), m30 = _mm256_set1_epi16(0x30),
                  o32 = _mm256_set1_epi16(32);
    __m256 acc[AR_MAX_NR];
    for (int r = 0; r < nr; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q6_K)) {
        const uint8_t *xb[AR_MAX_NR];
        __m256i sumi[AR_MAX_NR];
        for (int r = 0; r < nr; r++) {
            xb[r] = q16k_at(x, stride, r, ib);
            sumi[r] = _mm256_setzero_si256();
        }
        int32_t sc[16];
        store_scale_pairs(_mm256_cvtepi8_epi16(loadu128(w + 192)), sc);
        /* element 128h + 32g + l: nibble g / 2 of ql[64h + 32(g % 2) + l], bits 2g..2g+1 of
         * qh[32h + l]; q = that 6-bit value - 32; sub-block 8h + 2g + l / 16 */
#pragma GCC unroll 8
        for (int h = 0; h < 2; h++) {
#pragma GCC unroll 8
            for (int half = 0; half < 2; half++) {
                const __m256i l0 = zx16(w + 64 * h + 16 * half);
                const __m256i l1 = zx16(w + 64 * h + 32 + 16 * half);
                const __m256i qh = zx16(w + 128 + 32 * h + 16 * half);
#pragma GCC unroll 8
                for (int g = 0; g < 4; g++) {
                    const __m256i low = g == 0   ? _mm256_and_si256(l0, m4)
                                        : g == 1 ? _mm256_and_si256(l1, m4)
                                        : g == 2 ? _mm256_srli_epi16(l0, 4)
                                                 : _mm256_srli_epi16(l1, 4);
                    const __m256i high = g == 0   ? _mm256_slli_epi16(qh, 4)
                                         : g == 1 ? _mm256_slli_epi16(qh, 2)
                                         : g == 2 ? qh
                                                  : _mm256_srli_epi16(qh, 2);
                    const __m256i u =
                        _mm256_sub_epi16(_mm256_or_si256(low, _mm256_and_si256(high, m30)), o32);
                    const __m256i w16 = _mm256_mullo_epi16(u, scale_of(sc, 8 * h + 2 * g + half));
                    madd_rows(nr, sumi, xb, 128 * h + 32 * g + 16 * half, w16);
                }
            }
        }
        const __m256 d = _mm256_set1_ps(load_fp16(w + 208));
        for (int r = 0; r < nr; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(d, q16k_d(xb[r])), _mm256_cvtepi32_ps(sumi[r]),
                                     acc[r]);
    }
    for (int r = 0; r < nr; r++) ys[r] = hsum256(acc[r]);
}

QK_DEFINE_DOTS(q6_k, dot16_q6_k)

void ar_kernels_fill_q16_avx2(ar_kernels *k) {
    k->quantize_q16k = quantize_q16k;
    k->vec_dot16[AR_TYPE_Q2_K] = vec_dot_q2_k;
    k->vec_dot16[AR_TYPE_Q3_K] = vec_dot_q3_k;
    k->vec_dot16[AR_TYPE_Q4_K] = vec_dot_q4_k;
    k->vec_dot16[AR_TYPE_Q5_K] = vec_dot_q5_k;
    k->vec_dot16[AR_TYPE_Q6_K] = vec_dot_q6_k;
    k->vec_dot16_n[AR_TYPE_Q2_K] = vec_dot_n_q2_k;
    k->vec_dot16_n[AR_TYPE_Q3_K] = vec_dot_n_q3_k;
    k->vec_dot16_n[AR_TYPE_Q4_K] = vec_dot_n_q4_k;
    k->vec_dot16_n[AR_TYPE_Q5_K] = vec_dot_n_q5_k;
    k->vec_dot16_n[AR_TYPE_Q6_K] = vec_dot_n_q6_k;
    /* No GEMM form in this tier (the scalar one would not match these vec_dot16 bit for
     * bit): the engine keeps vec_dot16_n. */
    for (int t = AR_TYPE_Q2_K; t <= AR_TYPE_Q6_K; t++) k->gemm16[t] = NULL;
}
