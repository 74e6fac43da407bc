/*
 * qk_avx512.c - the k-quant integer path for AVX-512 (F, BW, VL, DQ, VNNI): the
 * Q2_K..Q6_K x Q8K dot products, with the contracts of the scalar reference (qk_scalar.c,
 * where the math is explained). quantize_q8k stays the AVX2 one (qk_avx2.c): it runs once
 * per activation row, not once per weight row. Compiled with the AVX-512 flags and only
 * called after cpu.c has checked the CPU.
 *
 * One 512-bit register holds 64 consecutive elements of a block. The weight quants are
 * unpacked to unsigned bytes in that order, _mm512_maddubs_epi16 multiplies them with the
 * int8 activations (adjacent pairs summed to int16), and the VNNI instruction
 * _mm512_dpwssd_epi32 multiplies the pair sums by their sub-block scales and adds them to
 * 16 int32 lanes, so a 64-element step is maddubs + dpwssd. The integer sums are exactly
 * the reference's; per block the lanes go to float with one FMA by (super-scale *
 * activation scale), and only the float summation order differs from the reference.
 *
 * Unpacking works on the register's four 128-bit lanes (16 elements each):
 *  - Packed fields shared by several element groups (Q4_K nibbles, Q2_K/Q3_K 2-bit fields,
 *    Q6_K high bits) are broadcast to both 256-bit halves and shifted by a different count
 *    per half (vpsrlvw/vpsllvw), so each half extracts its own group.
 *  - Single bits (Q3_K hmask, Q5_K qh) become a byte mask with vptestmb and are added with
 *    a masked byte add.
 *  - Sub-block scales are broadcast to all four lanes once per block (as int16, or as
 *    bytes that the shuffle zero-extends), and a byte shuffle picks each lane's scale: per
 *    lane, one 16-element sub-block (Q2_K, Q3_K, Q6_K) or half of a 32-element one (Q4_K,
 *    Q5_K).
 * Signed quants get the offsets of qk_avx2.c (Q6_K + 32, Q3_K + 4), taken back through
 * the bsums; no int16 intermediate saturates (a maddubs pair is at most 2 * 63 * 128).
 * Weight blocks are read with unaligned loads and never past their last byte.
 *
 * Several activation rows (vec_dot_n): as in qk_avx2.c, each kernel is one body for
 * 1..AR_MAX_NR rows (QK_DEFINE_DOTS in qk_simd.h). Each register of 64 unpacked quants and
 * its scale pattern is made once and taken through maddubs + dpwssd with every row; the
 * rows' accumulators are separate and see a single row's operations in the same order,
 * so each result is bit-identical to vec_dot on its row. With 4 rows a kernel holds 4
 * integer and 4 (+ 4 for the mins) float accumulators beside a few unpacked registers:
 * well inside the 32 zmm registers.
 */
#include "kernels/kernels.h"

#include "kernels/qk_simd.h"
#include "kernels/quant.h"

#include <immintrin.h>
#include <string.h>

/* --- Helpers ------------------------------------------------------------------------------ */

INLINE __m512i loadu512(const void *p) {
    return _mm512_loadu_si512(p);
}

/* 32 bytes at p, in both 256-bit halves. */
INLINE __m512i bcast256(const void *p) {
    return _mm512_broadcast_i64x4(loadu256(p));
}

/* A 512-bit vector of `lo` in the low 256-bit half and `hi` in the high half (per int16,
 * or per byte with the _epi8 version). */
INLINE __m512i halves16(short lo, short hi) {
    return _mm512_inserti64x4(_mm512_set1_epi16(lo), _mm256_set1_epi16(hi), 1);
}
INLINE __m512i halves8(char lo, char hi) {
    return _mm512_inserti64x4(_mm512_set1_epi8(lo), _mm256_set1_epi8(hi), 1);
}

/* Byte-shuffle control that fills 128-bit lane L with int16 number iL of that lane. */
INLINE __m512i pick16(int i0, int i1, int i2, int i3) {
#define PICK(i) (int)(0x00010001u * (uint32_t)(0x0100 + 0x0202 * (i)))
    return _mm512_setr_epi32(PICK(i0), PICK(i0), PICK(i0), PICK(i0), PICK(i1), PICK(i1), PICK(i1),
                             PICK(i1), PICK(i2), PICK(i2), PICK(i2), PICK(i2), PICK(i3), PICK(i3),
                             PICK(i3), PICK(i3));
#undef PICK
}

/* acc + the scaled sums of u * a over 64 elements: u unsigned quants, a the activations,
 * sc the int16 scale of each pair of elements. */
INLINE __m512i dot64(__m512i acc, __m512i u, const int8_t *a, __m512i sc) {
    return _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(u, loadu512(a)), sc);
}

/* int32 lanes of v, negated and placed in the low half of a 512-bit vector. */
INLINE __m512i neg_low(__m256i v) {
    return _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_zextsi256_si512(v));
}

/* --- Q2_K --------------------------------------------------------------------------------- */

INLINE void dot_q2_k(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                     float *ys) {
    const __m512i m3 = _mm512_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    __m512 acc[AR_MAX_NR];
    __m256 accm[AR_MAX_NR];
    for (int r = 0; r < nr; r++) {
        acc[r] = _mm512_setzero_ps();
        accm[r] = _mm256_setzero_ps();
    }
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q2_K)) {
        const ar_block_q8k *xb[AR_MAX_NR];
        __m512i sumi[AR_MAX_NR];
        for (int r = 0; r < nr; r++) {
            xb[r] = q8k_block(x, stride, r, ib);
            sumi[r] = _mm512_setzero_si512();
        }
        const __m128i packed = loadu128(w); /* scales[16]: low nibble scale, high nibble min */
        const __m256i sc = _mm256_cvtepu8_epi16(_mm_and_si128(packed, m4));
        for (int h = 0; h < 2; h++) {
            const __m512i q = bcast256(w + 16 + 32 * h);
            const __m512i sch = _mm512_broadcast_i32x4(h ? _mm256_extracti128_si256(sc, 1)
                                                         : _mm256_castsi256_si128(sc));
            for (int k = 0; k < 2; k++) { /* element groups 2k, 2k + 1 of 32 */
                const __m512i u = _mm512_and_si512(
                    _mm512_srlv_epi16(q, halves16((short)(4 * k), (short)(4 * k + 2))), m3);
                const __m512i s =
                    _mm512_shuffle_epi8(sch, pick16(4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3));
                for (int r = 0; r < nr; r++)
                    sumi[r] = dot64(sumi[r], u, xb[r]->qs + 128 * h + 64 * k, s);
            }
        }
        const __m256i mn = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), m4));
        const float d = load_fp16(w + 80), dmin = load_fp16(w + 82);
        for (int r = 0; r < nr; r++) {
            const __m256i msum = _mm256_madd_epi16(mn, loadu256(xb[r]->bsums));
            const float dx = xb[r]->d;
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(d * dx), _mm512_cvtepi32_ps(sumi[r]), acc[r]);
            accm[r] = _mm256_fmadd_ps(_mm256_set1_ps(dmin * dx), _mm256_cvtepi32_ps(msum), accm[r]);
        }
    }
    for (int r = 0; r < nr; r++) ys[r] = _mm512_reduce_add_ps(acc[r]) - hsum256(accm[r]);
}

QK_DEFINE_DOTS(q2_k, dot_q2_k)

/* --- Q3_K --------------------------------------------------------------------------------- */

INLINE void dot_q3_k(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                     float *ys) {
    const __m512i m3 = _mm512_set1_epi8(3), four = _mm512_set1_epi8(4);
    __m512 acc[AR_MAX_NR];
    for (int r = 0; r < nr; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q3_K)) {
        const __m256i sc = _mm256_cvtepi8_epi16(unpack_scales_q3_k(w + 96));
        const ar_block_q8k *xb[AR_MAX_NR];
        __m512i sumi[AR_MAX_NR];
        for (int r = 0; r < nr; r++) {
            xb[r] = q8k_block(x, stride, r, ib);
            /* u = q + 4 = low 2 bits + 4 * (hmask bit): take back 4 * sum scale * bsum */
            sumi[r] = neg_low(_mm256_slli_epi32(_mm256_madd_epi16(sc, loadu256(xb[r]->bsums)), 2));
        }
        const __m512i hmask = bcast256(w);
        for (int h = 0; h < 2; h++) {
            const __m512i q = bcast256(w + 32 + 32 * h);
            const __m512i sch = _mm512_broadcast_i32x4(h ? _mm256_extracti128_si256(sc, 1)
                                                         : _mm256_castsi256_si128(sc));
            for (int k = 0; k < 2; k++) { /* element groups 4h + 2k and 4h + 2k + 1 of 32 */
                const int g = 4 * h + 2 * k;
                __m512i u = _mm512_and_si512(
                    _mm512_srlv_epi16(q, halves16((short)(4 * k), (short)(4 * k + 2))), m3);
                const __mmask64 high =
                    _mm512_test_epi8_mask(hmask, halves8((char)(1 << g), (char)(1 << (g + 1))));
                u = _mm512_mask_add_epi8(u, high, u, four);
                const __m512i s =
                    _mm512_shuffle_epi8(sch, pick16(4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3));
                for (int r = 0; r < nr; r++)
                    sumi[r] = dot64(sumi[r], u, xb[r]->qs + 128 * h + 64 * k, s);
            }
        }
        const float d = load_fp16(w + 108);
        for (int r = 0; r < nr; r++)
            acc[r] =
                _mm512_fmadd_ps(_mm512_set1_ps(d * xb[r]->d), _mm512_cvtepi32_ps(sumi[r]), acc[r]);
    }
    for (int r = 0; r < nr; r++) ys[r] = _mm512_reduce_add_ps(acc[r]);
}

QK_DEFINE_DOTS(q3_k, dot_q3_k)

/* --- Q4_K and Q5_K ------------------------------------------------------------------------ */

/* Byte-shuffle control that fills 128-bit lane L with byte number iL of that lane,
 * zero-extended to int16. */
INLINE __m512i pick8(int i0, int i1, int i2, int i3) {
#define PICK(i) (int)(0x80008000u | 0x00010001u * (uint32_t)(i))
    return _mm512_setr_epi32(PICK(i0), PICK(i0), PICK(i0), PICK(i0), PICK(i1), PICK(i1), PICK(i1),
                             PICK(i1), PICK(i2), PICK(i2), PICK(i2), PICK(i2), PICK(i3), PICK(i3),
                             PICK(i3), PICK(i3));
#undef PICK
}

/* Both types: `hbits` selects Q5_K (the fifth bits at w + 16, quants at w + 48). */
INLINE void dot_k4(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr, int hbits,
                   float *ys) {
    const size_t bsize = hbits ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const uint8_t *qs = w + (hbits ? 48 : 16);
    const __m512i m4 = _mm512_set1_epi8(0x0f), sixteen = _mm512_set1_epi8(16);
    const __m512i nibble = halves16(0, 4); /* low nibbles in the low half, high in the high */
    __m512 acc[AR_MAX_NR];
    __m256 accm[AR_MAX_NR];
    for (int r = 0; r < nr; r++) {
        acc[r] = _mm512_setzero_ps();
        accm[r] = _mm256_setzero_ps();
    }
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += bsize, qs += bsize) {
        const ar_block_q8k *xb[AR_MAX_NR];
        __m512i sumi[AR_MAX_NR];
        for (int r = 0; r < nr; r++) {
            xb[r] = q8k_block(x, stride, r, ib);
            sumi[r] = _mm512_setzero_si512();
        }
        const __m512i sm = _mm512_broadcast_i32x4(unpack_scales_k4(loadu128(w))); /* all lanes */
        const __m512i qh = hbits ? bcast256(w + 16) : _mm512_setzero_si512();
        for (int j = 0; j < 4; j++) { /* sub-blocks 2j (low nibbles) and 2j + 1 (high) */
            __m512i u = _mm512_and_si512(_mm512_srlv_epi16(bcast256(qs + 32 * j), nibble), m4);
            if (hbits) {
                const __mmask64 high = _mm512_test_epi8_mask(
                    qh, halves8((char)(1 << (2 * j)), (char)(1 << (2 * j + 1))));
                u = _mm512_mask_add_epi8(u, high, u, sixteen);
            }
            const __m512i s = _mm512_shuffle_epi8(sm, pick8(2 * j, 2 * j, 2 * j + 1, 2 * j + 1));
            for (int r = 0; r < nr; r++) sumi[r] = dot64(sumi[r], u, xb[r]->qs + 64 * j, s);
        }
        /* [d, dmin] as floats; mins: sum_j mn[j] * (bsums[2j] + bsums[2j + 1]) */
        uint32_t d_dmin;
        memcpy(&d_dmin, w, sizeof d_dmin);
        const __m128 ddw = _mm_cvtph_ps(_mm_cvtsi32_si128((int)d_dmin));
        const __m256i mn = _mm256_shuffle_epi8(_mm512_castsi512_si256(sm), mins_dup_k4());
        for (int r = 0; r < nr; r++) {
            const __m128 dd = _mm_mul_ps(ddw, _mm_set1_ps(xb[r]->d)); /* [d, dmin] * dx */
            const __m256i msum = _mm256_madd_epi16(mn, loadu256(xb[r]->bsums));
            acc[r] =
                _mm512_fmadd_ps(_mm512_broadcastss_ps(dd), _mm512_cvtepi32_ps(sumi[r]), acc[r]);
            accm[r] = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dd)),
                                      _mm256_cvtepi32_ps(msum), accm[r]);
        }
    }
    for (int r = 0; r < nr; r++) ys[r] = _mm512_reduce_add_ps(acc[r]) - hsum256(accm[r]);
}

INLINE void dot_q4_k(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                     float *ys) {
    dot_k4(n, w, x, stride, nr, 0, ys);
}

INLINE void dot_q5_k(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                     float *ys) {
    dot_k4(n, w, x, stride, nr, 1, ys);
}

QK_DEFINE_DOTS(q4_k, dot_q4_k)
QK_DEFINE_DOTS(q5_k, dot_q5_k)

/* --- Q6_K --------------------------------------------------------------------------------- */

INLINE void dot_q6_k(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                     float *ys) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
    /* qh bits 2g..2g+1 to bits 4..5: groups 0, 1 shift left 4, 2; groups 2, 3 right 0, 2 */
    const __m512i shl01 = halves16(4, 2), shr23 = halves16(0, 2);
    __m512 acc[AR_MAX_NR];
    for (int r = 0; r < nr; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q6_K)) {
        const __m256i sc = _mm256_cvtepi8_epi16(loadu128(w + 192));
        const ar_block_q8k *xb[AR_MAX_NR];
        __m512i sumi[AR_MAX_NR];
        for (int r = 0; r < nr; r++) {
            xb[r] = q8k_block(x, stride, r, ib);
            /* u = q + 32 (0..63): take back 32 * sum scale * bsum */
            sumi[r] = neg_low(_mm256_slli_epi32(_mm256_madd_epi16(sc, loadu256(xb[r]->bsums)), 5));
        }
        for (int h = 0; h < 2; h++) {
            const __m512i ql = loadu512(w + 64 * h); /* low nibbles: groups 0, 1; high: 2, 3 */
            const __m512i qh = bcast256(w + 128 + 32 * h);
            const __m512i sch = _mm512_broadcast_i32x4(h ? _mm256_extracti128_si256(sc, 1)
                                                         : _mm256_castsi256_si128(sc));
            const __m512i h01 = _mm512_and_si512(_mm512_sllv_epi16(qh, shl01), m30);
            const __m512i h23 = _mm512_and_si512(_mm512_srlv_epi16(qh, shr23), m30);
            /* (nibbles & 0x0f) | high bits, in one ternary-logic op */
            const __m512i u01 = _mm512_ternarylogic_epi32(ql, h01, m4, 0xec);
            const __m512i u23 = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), h23, m4, 0xec);
            const __m512i s01 = _mm512_shuffle_epi8(sch, pick16(0, 1, 2, 3));
            const __m512i s23 = _mm512_shuffle_epi8(sch, pick16(4, 5, 6, 7));
            for (int r = 0; r < nr; r++) {
                sumi[r] = dot64(sumi[r], u01, xb[r]->qs + 128 * h, s01);
                sumi[r] = dot64(sumi[r], u23, xb[r]->qs + 128 * h + 64, s23);
            }
        }
        const float d = load_fp16(w + 208);
        for (int r = 0; r < nr; r++)
            acc[r] =
                _mm512_fmadd_ps(_mm512_set1_ps(d * xb[r]->d), _mm512_cvtepi32_ps(sumi[r]), acc[r]);
    }
    for (int r = 0; r < nr; r++) ys[r] = _mm512_reduce_add_ps(acc[r]);
}

QK_DEFINE_DOTS(q6_k, dot_q6_k)

void ar_kernels_fill_qk_avx512(ar_kernels *k) {
    k->vec_dot[AR_TYPE_Q2_K] = vec_dot_q2_k;
    k->vec_dot[AR_TYPE_Q3_K] = vec_dot_q3_k;
    k->vec_dot[AR_TYPE_Q4_K] = vec_dot_q4_k;
    k->vec_dot[AR_TYPE_Q5_K] = vec_dot_q5_k;
    k->vec_dot[AR_TYPE_Q6_K] = vec_dot_q6_k;
    k->vec_dot_n[AR_TYPE_Q2_K] = vec_dot_n_q2_k;
    k->vec_dot_n[AR_TYPE_Q3_K] = vec_dot_n_q3_k;
    k->vec_dot_n[AR_TYPE_Q4_K] = vec_dot_n_q4_k;
    k->vec_dot_n[AR_TYPE_Q5_K] = vec_dot_n_q5_k;
    k->vec_dot_n[AR_TYPE_Q6_K] = vec_dot_n_q6_k;
}
