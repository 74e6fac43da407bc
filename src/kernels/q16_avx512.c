/*
 * q16_avx512.c - the k-quants' accurate path for AVX-512 (F, BW, VL, DQ, VNNI):
 * quantize_q16k and the Q2_K..Q6_K x Q16K dot products (15-bit activations, one integer
 * pass), single- and multi-row, with the contracts of the scalar reference (q16_scalar.c,
 * where the math is explained). Compiled with the AVX-512 flags and only called after
 * cpu.c has checked the CPU.
 *
 * quantize_q16k performs the reference's float operations one for one (amax from the
 * magnitudes' bit patterns, where inf and NaN sort above every finite value; the same
 * float32 division for d; a true division x / d per element; roundf built from
 * truncation; the same clamp), 16 floats per step, so its bytes equal the scalar ones.
 *
 * Dot products. The int8 kernels (qk_avx512.c) multiply unsigned weight bytes with int8
 * activations (maddubs) and apply the sub-block scales per row (dpwssd). With int16
 * activations the work splits the other way round:
 *  - per weight block, once for all activation rows: the quants are unpacked into int16
 *    lanes, 32 elements in element order per 512-bit register (vpmovzxbw from memory,
 *    after which nibble masks, bit moves and the offsets work inside each 16-bit lane, as
 *    each lane holds the weight byte of its own element), and multiplied by their
 *    sub-block scale (_mm512_mullo_epi16): w16 = s * q, exact since |s * q| <= 4096
 *    (Q6_K: 32 * 128; Q5_K 1953, Q4_K 945, Q3_K 128, Q2_K 45). The scale of each lane
 *    comes from a byte shuffle of the block's scales broadcast to the four 128-bit lanes;
 *  - per activation row: _mm512_dpwssd_epi32(sum, w16, x16) (VNNI: 16 int32 lanes, each
 *    adding two products), 8 per block and row, and one 64-byte load of activations each.
 *
 * int32 bounds, per lane and block (the row's integer sum starts at 0 every block): each
 * of the 16 lanes collects 8 dpwssd of 2 products = 16 products |s q a| <= 4096 * 16383, so
 * |lane| <= 16 * 4096 * 16383 = 1073676288 < 2^30 (Q6_K); Q5_K 16 * 1953 * 16383 < 2^29,
 * the others less. The Q6_K and Q3_K offsets (q = u - 32, u - 4) are applied to the
 * weights before the scale, so nothing is taken back through the bsums. A dpwssd pair is
 * at most 2 * 4096 * 16383 < 2^28.
 * Per block and row the 16 int32 lanes go to float and are scaled into one float
 * accumulator per row: t = cvt(sum) * d, then for the types with a minimum (Q2_K, Q4_K,
 * Q5_K) t -= (dmin * m) * cvt(bsums) in one FNMADD over the 16 bsums of the row's block
 * (|bsum| <= 16 * 16383 < 2^18 converts exactly; dmin * m, a float16 times a 6-bit integer,
 * is exact and made once per block for all rows), then acc += dx * t (dx broadcast from
 * the row's block). The 16 lanes are added at the end. Only these float steps round, so
 * results agree with the reference (int64 isum, one float per block) to float
 * reassociation error (about 1e-7 of the sum of |terms| in the tests).
 *
 * Speed (Zen 5, n = 1536 and 8960, ns per weight row, tests/unit/test_kernels_q16.c with
 * AR_Q16_BENCH=1): one activation row costs about 1.45x (Q4_K) to 1.65x (Q6_K) the int8
 * vec_dot on the same weights, i.e. 0.7x..0.8x the two int8 passes it replaces; 4 rows
 * (vec_dot16_n) about 1.3x vec_dot_n at n = 1536 and 1.5x at 8960. The multiply-class
 * operations (dpwssd, mullo, FMA: 2 a cycle) are as many as the int8 kernels' plus the
 * shared mullo per 32 weights, but every row reads twice the activation bytes (512 per
 * block; the 640-byte blocks keep those loads 64-byte aligned when the rows are, as the
 * engine's are), and 4 rows of 8960 no longer fit in L1.
 *
 * Several activation rows (vec_dot16_n): one always-inline body per type for 1..AR_MAX_NR
 * rows (QK_DEFINE_DOTS, qk_simd.h). Each scaled weight register meets every row before the
 * next is made; the rows' sums and accumulators are separate and see the same operations
 * in the same order as a single row, so each result is bit-identical to vec_dot16 on its
 * row. With 4 rows: 4 integer sums and 4 float accumulators beside a few unpacked
 * registers, well inside the 32 zmm registers.
 *
 * Activation rows are addressed by bytes (rows `stride` bytes apart; d read with memcpy)
 * and read with unaligned loads, as are weight blocks, never past their last byte.
 */
#include "kernels/kernels.h"

#include "kernels/q16_avx512.h"
#include "kernels/qk_simd.h"
#include "kernels/quant.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

/* --- Q16K activations --------------------------------------------------------------------- */

/* roundf() of 16 floats of magnitude below 2^23 (halfway cases away from zero), still as
 * floats: t = trunc(v); v - t is exact; add sign(v) when |v - t| >= 0.5. */
INLINE __m512 round_away(__m512 v) {
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 up =
        _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512i sign = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN));
    const __m512 one = _mm512_castsi512_ps(_mm512_or_si512(sign, _mm512_set1_epi32(0x3f800000)));
    return _mm512_mask_add_ps(t, up, t, one);
}

static void quantize_q16k(const float *x, void *vy, int64_t n) {
    ar_block_q16k *y = vy;
    const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
    const __m512 lim = _mm512_set1_ps(16383.0f), nlim = _mm512_set1_ps(-16383.0f);
    for (int64_t ib = 0; ib < n / AR_QK16K; ib++, x += AR_QK16K) {
        ar_block_q16k *b = &y[ib];
        /* |x| as integers orders like the floats, with inf and NaN above every finite value */
        __m512i m0 = _mm512_setzero_si512(), m1 = m0;
        for (int i = 0; i < AR_QK16K; i += 32) {
            m0 = _mm512_max_epi32(m0, _mm512_and_si512(loadu512(x + i), abs_mask));
            m1 = _mm512_max_epi32(m1, _mm512_and_si512(loadu512(x + i + 16), abs_mask));
        }
        const int32_t amax_bits = _mm512_reduce_max_epi32(_mm512_max_epi32(m0, m1));
        memset(b, 0, sizeof *b);
        if (amax_bits >= 0x7f800000) { /* inf or NaN */
            b->d = NAN;
            continue;
        }
        float amax;
        memcpy(&amax, &amax_bits, sizeof amax);
        const float d = amax / 16383.0f;
        if (d < FLT_MIN) continue; /* all zero */
        const __m512 vd = _mm512_set1_ps(d);
        for (int j = 0; j < AR_QK16K / 16; j++) { /* element group j = bsum j */
            __m512 v = round_away(_mm512_div_ps(_mm512_loadu_ps(x + 16 * j), vd));
            v = _mm512_min_ps(_mm512_max_ps(v, nlim), lim);
            const __m512i q = _mm512_cvttps_epi32(v);
            _mm256_storeu_si256((__m256i *)(void *)(b->qs + 16 * j), _mm512_cvtepi32_epi16(q));
            b->bsums[j] = _mm512_reduce_add_epi32(q);
        }
        b->d = d;
    }
}

/* --- Q2_K --------------------------------------------------------------------------------- */

/* 84 bytes: scales[16] (low nibble scale, high nibble min) | qs[64] | d | dmin. Element
 * 128h + 32g + l: bits 2g..2g+1 of qs[32h + l]; register k = 4h + g holds sub-blocks 2k,
 * 2k + 1. */
INLINE void dot_q2_k(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                     float *ys) {
    const __m512i m3 = _mm512_set1_epi16(3);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    __m512 acc[AR_MAX_NR];
    for (int r = 0; r < nr; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q2_K)) {
        const uint8_t *xb[AR_MAX_NR];
        __m512i sumi[AR_MAX_NR];
        for (int r = 0; r < nr; r++) {
            xb[r] = q16k_at(x, stride, r, ib);
            sumi[r] = _mm512_setzero_si512();
        }
        const __m128i packed = loadu128(w);
        const __m256i sc = _mm256_cvtepu8_epi16(_mm_and_si128(packed, m4));
        for (int h = 0; h < 2; h++) {
            const __m512i q = zx32(w + 16 + 32 * h);
            const __m512i sch = bcast_half(sc, h);
            for (int g = 0; g < 4; g++) {
                const __m512i u = _mm512_and_si512(g ? _mm512_srli_epi16(q, 2 * g) : q, m3);
                const __m512i w16 = _mm512_mullo_epi16(u, scales_16(sch, 2 * g));
                dot_rows(nr, sumi, xb, 4 * h + g, w16);
            }
        }
        /* mins of the 16 sub-blocks, one per bsum */
        const __m512 mn =
            _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(packed, 4), m4)));
        const __m512 dv = _mm512_set1_ps(load_fp16(w + 80));
        const __m512 mv = _mm512_mul_ps(_mm512_set1_ps(load_fp16(w + 82)), mn);
        for (int r = 0; r < nr; r++) acc[r] = flush_min(acc[r], sumi[r], dv, mv, xb[r]);
    }
    for (int r = 0; r < nr; r++) ys[r] = _mm512_reduce_add_ps(acc[r]);
}

QK_DEFINE_DOTS(q2_k, dot_q2_k)

/* --- Q3_K --------------------------------------------------------------------------------- */

/* 110 bytes: hmask[32] | qs[64] | scales[12] | d. Element 128h + 32g + l: low 2 bits as
 * Q2_K, minus 4 where bit 4h + g of hmask[l] is clear. */
INLINE void dot_q3_k(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                     float *ys) {
    const __m512i m3 = _mm512_set1_epi16(3), four = _mm512_set1_epi16(4);
    __m512 acc[AR_MAX_NR];
    for (int r = 0; r < nr; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q3_K)) {
        const uint8_t *xb[AR_MAX_NR];
        __m512i sumi[AR_MAX_NR];
        for (int r = 0; r < nr; r++) {
            xb[r] = q16k_at(x, stride, r, ib);
            sumi[r] = _mm512_setzero_si512();
        }
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
                const __m512i w16 = _mm512_mullo_epi16(u, scales_16(sch, 2 * g));
                dot_rows(nr, sumi, xb, 4 * h + g, w16);
            }
        }
        const __m512 dv = _mm512_set1_ps(load_fp16(w + 108));
        for (int r = 0; r < nr; r++) acc[r] = flush(acc[r], sumi[r], dv, xb[r]);
    }
    for (int r = 0; r < nr; r++) ys[r] = _mm512_reduce_add_ps(acc[r]);
}

QK_DEFINE_DOTS(q3_k, dot_q3_k)

/* --- Q4_K and Q5_K ------------------------------------------------------------------------ */

/* 144 / 176 bytes: d | dmin | scales[12] | (Q5_K: qh[32]) | qs[128]. Sub-block 2j: low
 * nibbles of qs[32j..32j+31], 2j + 1: high nibbles; Q5_K's bit 4 of sub-block s is bit s of
 * qh[l]. One register = one sub-block of 32 = one scale. `hbits` selects Q5_K. */
INLINE void dot_k4(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr, int hbits,
                   float *ys) {
    const size_t bsize = hbits ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const uint8_t *qs = w + (hbits ? 48 : 16);
    const __m512i m4 = _mm512_set1_epi16(0x0f), b4 = _mm512_set1_epi16(0x10);
    /* byte shuffle: the 8 mins (bytes 8..15 of unpack_scales_k4) each twice, as bytes */
    const __m128i mins_dup =
        _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    __m512 acc[AR_MAX_NR];
    for (int r = 0; r < nr; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += bsize, qs += bsize) {
        const uint8_t *xb[AR_MAX_NR];
        __m512i sumi[AR_MAX_NR];
        for (int r = 0; r < nr; r++) {
            xb[r] = q16k_at(x, stride, r, ib);
            sumi[r] = _mm512_setzero_si512();
        }
        const __m128i sm128 = unpack_scales_k4(loadu128(w)); /* scales 0..7, mins 8..15 */
        const __m512i sm = _mm512_broadcast_i32x4(sm128);
        const __m512i qh = hbits ? zx32(w + 16) : _mm512_setzero_si512();
        for (int j = 0; j < 4; j++) {
            const __m512i q = zx32(qs + 32 * j);
            __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_srli_epi16(q, 4);
            if (hbits) { /* bit s of qh to bit 4: lo | (shifted & 0x10) */
                const int s = 2 * j;
                const __m512i hl =
                    s <= 4 ? _mm512_slli_epi16(qh, 4 - s) : _mm512_srli_epi16(qh, s - 4);
                const __m512i hh =
                    s + 1 <= 4 ? _mm512_slli_epi16(qh, 3 - s) : _mm512_srli_epi16(qh, s - 3);
                lo = _mm512_ternarylogic_epi32(lo, hl, b4, 0xf8);
                hi = _mm512_ternarylogic_epi32(hi, hh, b4, 0xf8);
            }
            const __m512i w_lo = _mm512_mullo_epi16(lo, _mm512_shuffle_epi8(sm, pick8(2 * j)));
            dot_rows(nr, sumi, xb, 2 * j, w_lo);
            const __m512i w_hi = _mm512_mullo_epi16(hi, _mm512_shuffle_epi8(sm, pick8(2 * j + 1)));
            dot_rows(nr, sumi, xb, 2 * j + 1, w_hi);
        }
        /* mins: bsum j belongs to sub-block j / 2 */
        const __m512 mn =
            _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_shuffle_epi8(sm128, mins_dup)));
        const __m512 dv = _mm512_set1_ps(load_fp16(w));
        const __m512 mv = _mm512_mul_ps(_mm512_set1_ps(load_fp16(w + 2)), mn);
        for (int r = 0; r < nr; r++) acc[r] = flush_min(acc[r], sumi[r], dv, mv, xb[r]);
    }
    for (int r = 0; r < nr; r++) ys[r] = _mm512_reduce_add_ps(acc[r]);
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

/* 210 bytes: ql[128] | qh[64] | scales[16] int8 | d. Element 128h + 32g + l: nibble g / 2
 * of ql[64h + 32(g % 2) + l], bits 2g..2g+1 of qh[32h + l]; q = that 6-bit value - 32.
 * Register k = 4h + g holds sub-blocks 2k, 2k + 1. */
INLINE void dot_q6_k(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                     float *ys) {
    const __m512i m4 = _mm512_set1_epi16(0x0f), m30 = _mm512_set1_epi16(0x30);
    const __m512i off = _mm512_set1_epi16(32);
    __m512 acc[AR_MAX_NR];
    for (int r = 0; r < nr; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q6_K)) {
        const uint8_t *xb[AR_MAX_NR];
        __m512i sumi[AR_MAX_NR];
        for (int r = 0; r < nr; r++) {
            xb[r] = q16k_at(x, stride, r, ib);
            sumi[r] = _mm512_setzero_si512();
        }
        const __m256i sc = _mm256_cvtepi8_epi16(loadu128(w + 192));
        for (int h = 0; h < 2; h++) {
            const __m512i sch = bcast_half(sc, h);
            const __m512i l0 = zx32(w + 64 * h), l1 = zx32(w + 64 * h + 32);
            const __m512i qh = zx32(w + 128 + 32 * h);
            /* (A & 0x0f) | B with B the high bits already in place: ternary-logic 0xec with
             * C = 0x0f; A | (B & 0x30): 0xf8 with C = 0x30 */
            __m512i u[4];
            u[0] = _mm512_ternarylogic_epi32(l0, _mm512_and_si512(_mm512_slli_epi16(qh, 4), m30),
                                             m4, 0xec);
            u[1] = _mm512_ternarylogic_epi32(l1, _mm512_and_si512(_mm512_slli_epi16(qh, 2), m30),
                                             m4, 0xec);
            u[2] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(l0, 4), qh, m30, 0xf8);
            u[3] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(l1, 4), _mm512_srli_epi16(qh, 2),
                                             m30, 0xf8);
            for (int g = 0; g < 4; g++) {
                const __m512i w16 =
                    _mm512_mullo_epi16(_mm512_sub_epi16(u[g], off), scales_16(sch, 2 * g));
                dot_rows(nr, sumi, xb, 4 * h + g, w16);
            }
        }
        const __m512 dv = _mm512_set1_ps(load_fp16(w + 208));
        for (int r = 0; r < nr; r++) acc[r] = flush(acc[r], sumi[r], dv, xb[r]);
    }
    for (int r = 0; r < nr; r++) ys[r] = _mm512_reduce_add_ps(acc[r]);
}

QK_DEFINE_DOTS(q6_k, dot_q6_k)

/* --- Table -------------------------------------------------------------------------------- */

void ar_kernels_fill_q16_avx512(ar_kernels *k) {
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
}
