/*
 * qk_avx2.c - the k-quant integer path for AVX2 (+FMA, F16C): quantize_q8k and the
 * Q2_K..Q6_K x Q8K dot products, with the contracts of the scalar reference (qk_scalar.c,
 * where the math is explained). This file is compiled with -mavx2 -mfma -mf16c and only
 * called after cpu.c has checked the CPU.
 *
 * quantize_q8k performs the reference's float operations one for one (the same multiply,
 * the same magic-number rounding, saturating packs for the clamp, the first element of
 * largest magnitude found by compare and bit scan), so its bytes equal the scalar ones.
 *
 * Dot products. The weight quants are unpacked to unsigned bytes, 32 per register, and
 * multiplied with the int8 activations by _mm256_maddubs_epi16 (u8 x s8, adjacent pairs
 * summed to int16). Then _mm256_madd_epi16 multiplies each pair sum by its sub-block scale
 * (broadcast into the lanes by a byte shuffle) and sums pairs again to int32, which is
 * exact. Per block, the 8 int32 lanes go to float and into a float accumulator with one
 * FMA by (super-scale * activation scale); the lanes are added up at the end. So the
 * integers are the reference's and only the float summation order differs.
 *
 * Several activation rows (vec_dot_n): each kernel is one body for 1..AR_MAX_NR rows
 * (QK_DEFINE_DOTS in qk_simd.h). A block's scales are unpacked once, and each register of
 * 32 unpacked quants is multiplied with every row before the next is unpacked; the rows'
 * integer sums and float accumulators are separate and see the same operations in the
 * same order as a single row, so each result is bit-identical to vec_dot on its row. With
 * 4 rows the per-row float accumulators do not all fit in the 16 ymm registers beside the
 * unpacked quants and integer sums; the compiler keeps some in memory, touched once per
 * block. The integer sums are running sums pinned by acc_add (see there), or the compiler
 * reorders them into a spill-heavy tree.
 *
 * Signed quants are made unsigned by an offset that is taken back through the bsums:
 * Q6_K stores q + 32 (0..63) and Q3_K gives q + 4 (0..7); their sub-block sums are
 * sum (q + o) a = sum q a + o * bsum, so o * sum_sub scale * bsum is subtracted per block.
 * No int16 intermediate saturates: a maddubs pair is at most 2 * 63 * 128 = 16128.
 *
 * Lane layout: a 256-bit register is two 128-bit lanes of 16 bytes; the maddubs result of
 * 32 consecutive elements holds elements 0..15 in the low lane and 16..31 in the high one,
 * i.e. one 16-element sub-block per lane (Q2_K, Q3_K, Q6_K), or one 32-element sub-block
 * over both lanes (Q4_K, Q5_K). Weight blocks are read with unaligned loads and never past
 * their last byte.
 */
#include "kernels/kernels.h"

#include "kernels/qk_simd.h"
#include "kernels/quant.h"

#include <immintrin.h>
#include <string.h>

/* --- Helpers ------------------------------------------------------------------------------ */

/* acc + v (int32 lanes), with an empty asm that pins the result: a row's running sum is
 * then built in the order written. Without it, GCC reassociates the sums of several rows
 * into trees that start with every product of the block, which holds far more values than
 * the 16 ymm registers and spills most of them. */
INLINE __m256i acc_add(__m256i acc, __m256i v) {
    acc = _mm256_add_epi32(acc, v);
    __asm__("" : "+x"(acc));
    return acc;
}

/* With the same 8 int16 scales in both halves of v: scale `i` in the low half and scale
 * `i + 1` in the high half (the scales of two consecutive 16-element sub-blocks). */
INLINE __m256i bcast16_pair(__m256i v, int i) {
    const __m128i lo = _mm_set1_epi16((short)(0x0100 + 0x0202 * i));
    const __m128i hi = _mm_set1_epi16((short)(0x0100 + 0x0202 * (i + 1)));
    return _mm256_shuffle_epi8(v, _mm256_set_m128i(hi, lo));
}

/* Half h (0 or 1) of v, repeated in both halves. */
INLINE __m256i dup_half(__m256i v, int h) {
    return h ? _mm256_permute2x128_si256(v, v, 0x11) : _mm256_permute2x128_si256(v, v, 0x00);
}

/* sum over the 16-element sub-blocks of u * a: u unsigned quants (32 elements = 2
 * sub-blocks), a activations, sc the int16 scales of the two sub-blocks (low, high half). */
INLINE __m256i dot_scaled(__m256i u, const int8_t *a, __m256i sc) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, loadu256(a)), sc);
}

/* Bit `bit` of every byte of v moved to bit `to` (value 1 << to), all other bits clear.
 * The 16-bit shifts also move bits from one byte into its neighbour, but the bit the mask
 * keeps always comes from its own byte. */
INLINE __m256i move_bit(__m256i v, int bit, int to) {
    const __m256i m = _mm256_set1_epi8((char)(1 << to));
    if (bit < to) return _mm256_and_si256(_mm256_slli_epi16(v, to - bit), m);
    if (bit > to) return _mm256_and_si256(_mm256_srli_epi16(v, bit - to), m);
    return _mm256_and_si256(v, m);
}

/* --- Q8K activations ---------------------------------------------------------------------- */

static void quantize_q8k(const float *x, void *vy, int64_t n) {
    ar_block_q8k *y = vy;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t ib = 0; ib < n / AR_QK8K; ib++, x += AR_QK8K) {
        ar_block_q8k *b = &y[ib];

        /* amax; max_ps(v, m) keeps m when v is NaN, as the reference's `>` does */
        __m256 m0 = _mm256_setzero_ps(), m1 = m0;
        for (int i = 0; i < AR_QK8K; i += 16) {
            m0 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), absmask), m0);
            m1 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i + 8), absmask), m1);
        }
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(m0), _mm256_extractf128_ps(m0, 1));
        m = _mm_max_ps(m, _mm_max_ps(_mm256_castps256_ps128(m1), _mm256_extractf128_ps(m1, 1)));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        const float amax = _mm_cvtss_f32(m);
        if (amax == 0.0f) {
            memset(b, 0, sizeof *b);
            continue;
        }

        /* the first element of that magnitude gives the sign */
        const __m256 vamax = _mm256_set1_ps(amax);
        int first = 0;
        for (int i = 0; i < AR_QK8K; i += 8) {
            const __m256 ax = _mm256_and_ps(_mm256_loadu_ps(x + i), absmask);
            const int hit = _mm256_movemask_ps(_mm256_cmp_ps(ax, vamax, _CMP_EQ_OQ));
            if (hit) {
                first = i + __builtin_ctz((unsigned)hit);
                break;
            }
        }
        const float iscale = -127.0f / x[first];

        /* round(iscale * x) by the magic number, then saturate to int8 by two packs */
        const __m256 vs = _mm256_set1_ps(iscale), magic = _mm256_set1_ps(12582912.0f);
        const __m256i low23 = _mm256_set1_epi32(0x007fffff), bias = _mm256_set1_epi32(0x00400000);
        const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for (int i = 0; i < AR_QK8K; i += 32) {
            __m256i v[4];
            for (int k = 0; k < 4; k++) {
                const __m256 f =
                    _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * k), vs), magic);
                v[k] = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(f), low23), bias);
            }
            /* packs work per 128-bit half: the dwords come out as 0 4 1 5 2 6 3 7 */
            const __m256i p =
                _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
            _mm256_storeu_si256((__m256i *)(b->qs + i), _mm256_permutevar8x32_epi32(p, order));
        }

        /* bsums: bytes -> sums of 4 (maddubs, madd) -> sums of 16 (two hadds) */
        const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
        __m256i s16[2];
        for (int half = 0; half < 2; half++) {
            __m256i q4[4];
            for (int c = 0; c < 4; c++) {
                const __m256i q = loadu256(b->qs + 128 * half + 32 * c);
                q4[c] = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q), ones16);
            }
            /* gives bsums 0 2 4 6 | 1 3 5 7 (of this half) */
            const __m256i h =
                _mm256_hadd_epi32(_mm256_hadd_epi32(q4[0], q4[1]), _mm256_hadd_epi32(q4[2], q4[3]));
            s16[half] = _mm256_permutevar8x32_epi32(h, order);
        }
        const __m256i bs = _mm256_packs_epi32(s16[0], s16[1]); /* 0-3 8-11 | 4-7 12-15 */
        _mm256_storeu_si256((__m256i *)b->bsums, _mm256_permute4x64_epi64(bs, 0xd8));
        b->d = 1.0f / iscale;
    }
}

/* --- Dot products ------------------------------------------------------------------------- */

/* Each kernel below is a body for QK_DEFINE_DOTS (qk_simd.h): it unpacks a weight block
 * once, into unsigned quants and broadcast scales, 32 elements at a time, and multiplies
 * each such register with the activations of all nr rows before unpacking the next, into
 * per-row integer sums; then each row's sums go into that row's float accumulators with
 * the same float operations as for a single row. */

/* --- Q2_K --------------------------------------------------------------------------------- */

INLINE void dot_q2_k(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                     float *ys) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    __m256 acc[AR_MAX_NR], accm[AR_MAX_NR];
    for (int r = 0; r < nr; r++) acc[r] = accm[r] = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q2_K)) {
        const ar_block_q8k *xb[AR_MAX_NR];
        __m256i sumi[AR_MAX_NR];
        for (int r = 0; r < nr; r++) {
            xb[r] = q8k_block(x, stride, r, ib);
            sumi[r] = _mm256_setzero_si256();
        }
        const __m128i packed = loadu128(w); /* scales[16]: low nibble scale, high nibble min */
        const __m256i sc = _mm256_cvtepu8_epi16(_mm_and_si128(packed, m4));
        for (int h = 0; h < 2; h++) {
            const __m256i q = loadu256(w + 16 + 32 * h);
            const __m256i sch = dup_half(sc, h);
            for (int g = 0; g < 4; g++) {
                const __m256i u = _mm256_and_si256(_mm256_srli_epi16(q, 2 * g), m3);
                const __m256i s = bcast16_pair(sch, 2 * g);
                for (int r = 0; r < nr; r++)
                    sumi[r] = acc_add(sumi[r], dot_scaled(u, xb[r]->qs + 128 * h + 32 * g, s));
            }
        }
        const __m256i mn = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), m4));
        const float d = load_fp16(w + 80), dmin = load_fp16(w + 82);
        for (int r = 0; r < nr; r++) {
            const __m256i msum = _mm256_madd_epi16(mn, loadu256(xb[r]->bsums));
            const float dx = xb[r]->d;
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * dx), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
            accm[r] = _mm256_fmadd_ps(_mm256_set1_ps(dmin * dx), _mm256_cvtepi32_ps(msum), accm[r]);
        }
    }
    for (int r = 0; r < nr; r++) ys[r] = hsum256(acc[r]) - hsum256(accm[r]);
}

QK_DEFINE_DOTS(q2_k, dot_q2_k)

/* --- Q3_K --------------------------------------------------------------------------------- */

INLINE void dot_q3_k(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                     float *ys) {
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc[AR_MAX_NR];
    for (int r = 0; r < nr; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q3_K)) {
        const __m256i sc = _mm256_cvtepi8_epi16(unpack_scales_q3_k(w + 96));
        const ar_block_q8k *xb[AR_MAX_NR];
        __m256i sumi[AR_MAX_NR];
        for (int r = 0; r < nr; r++) {
            xb[r] = q8k_block(x, stride, r, ib);
            /* u = q + 4 = low 2 bits + 4 * (hmask bit): take back 4 * sum scale * bsum */
            sumi[r] = _mm256_sub_epi32(
                _mm256_setzero_si256(),
                _mm256_slli_epi32(_mm256_madd_epi16(sc, loadu256(xb[r]->bsums)), 2));
        }
        const __m256i hmask = loadu256(w);
        for (int h = 0; h < 2; h++) {
            const __m256i q = loadu256(w + 32 + 32 * h);
            const __m256i sch = dup_half(sc, h);
            for (int g = 0; g < 4; g++) {
                const __m256i low = _mm256_and_si256(_mm256_srli_epi16(q, 2 * g), m3);
                const __m256i u = _mm256_or_si256(low, move_bit(hmask, 4 * h + g, 2));
                const __m256i s = bcast16_pair(sch, 2 * g);
                for (int r = 0; r < nr; r++)
                    sumi[r] = acc_add(sumi[r], dot_scaled(u, xb[r]->qs + 128 * h + 32 * g, s));
            }
        }
        const float d = load_fp16(w + 108);
        for (int r = 0; r < nr; r++)
            acc[r] =
                _mm256_fmadd_ps(_mm256_set1_ps(d * xb[r]->d), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
    for (int r = 0; r < nr; r++) ys[r] = hsum256(acc[r]);
}

QK_DEFINE_DOTS(q3_k, dot_q3_k)

/* --- Q4_K and Q5_K ------------------------------------------------------------------------ */

/* Byte `i` of each 128-bit half of v, zero-extended to int16, in all lanes of the half. */
INLINE __m256i bcast8(__m256i v, int i) {
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)(0x8000 | i)));
}

/* Both types: `hbits` selects Q5_K (the fifth bits at w + 16, quants at w + 48). */
INLINE void dot_k4(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr, int hbits,
                   float *ys) {
    const size_t bsize = hbits ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const uint8_t *qs = w + (hbits ? 48 : 16);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc[AR_MAX_NR], accm[AR_MAX_NR];
    for (int r = 0; r < nr; r++) acc[r] = accm[r] = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += bsize, qs += bsize) {
        const ar_block_q8k *xb[AR_MAX_NR];
        __m256i sumi[AR_MAX_NR];
        for (int r = 0; r < nr; r++) {
            xb[r] = q8k_block(x, stride, r, ib);
            sumi[r] = _mm256_setzero_si256();
        }
        const __m256i sm = _mm256_broadcastsi128_si256(unpack_scales_k4(loadu128(w)));
        const __m256i qh = hbits ? loadu256(w + 16) : _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) { /* sub-blocks 2j (low nibbles) and 2j + 1 (high) */
            const __m256i q = loadu256(qs + 32 * j);
            __m256i lo = _mm256_and_si256(q, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (hbits) {
                lo = _mm256_or_si256(lo, move_bit(qh, 2 * j, 4));
                hi = _mm256_or_si256(hi, move_bit(qh, 2 * j + 1, 4));
            }
            const __m256i s0 = bcast8(sm, 2 * j), s1 = bcast8(sm, 2 * j + 1);
            for (int r = 0; r < nr; r++) {
                const int8_t *a = xb[r]->qs + 64 * j;
                const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, loadu256(a)), s0);
                const __m256i p1 =
                    _mm256_madd_epi16(_mm256_maddubs_epi16(hi, loadu256(a + 32)), s1);
                sumi[r] = acc_add(sumi[r], _mm256_add_epi32(p0, p1));
            }
        }
        /* [d, dmin] as floats; mins: sum_j mn[j] * (bsums[2j] + bsums[2j + 1]) */
        uint32_t d_dmin;
        memcpy(&d_dmin, w, sizeof d_dmin);
        const __m128 ddw = _mm_cvtph_ps(_mm_cvtsi32_si128((int)d_dmin));
        const __m256i mn = _mm256_shuffle_epi8(sm, mins_dup_k4());
        for (int r = 0; r < nr; r++) {
            const __m128 dd = _mm_mul_ps(ddw, _mm_set1_ps(xb[r]->d)); /* [d, dmin] * dx */
            const __m256i msum = _mm256_madd_epi16(mn, loadu256(xb[r]->bsums));
            acc[r] =
                _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
            accm[r] = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dd)),
                                      _mm256_cvtepi32_ps(msum), accm[r]);
        }
    }
    for (int r = 0; r < nr; r++) ys[r] = hsum256(acc[r]) - hsum256(accm[r]);
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

/* Element group g (0..3, 32 elements) of a half block as unsigned quants q + 32: nibble
 * g / 2 of l(g % 2), bits 2g..2g+1 of qh as bits 4..5. */
INLINE __m256i q6_group(__m256i l0, __m256i l1, __m256i qh, int g) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    const __m256i l = g & 1 ? l1 : l0;
    const __m256i low = _mm256_and_si256(g & 2 ? _mm256_srli_epi16(l, 4) : l, m4);
    const __m256i high = g == 0   ? _mm256_slli_epi16(qh, 4)
                         : g == 1 ? _mm256_slli_epi16(qh, 2)
                         : g == 2 ? qh
                                  : _mm256_srli_epi16(qh, 2);
    return _mm256_or_si256(low, _mm256_and_si256(high, m30));
}

INLINE void dot_q6_k(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,
                     float *ys) {
    __m256 acc[AR_MAX_NR];
    for (int r = 0; r < nr; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q6_K)) {
        const __m256i sc = _mm256_cvtepi8_epi16(loadu128(w + 192));
        const ar_block_q8k *xb[AR_MAX_NR];
        __m256i sumi[AR_MAX_NR];
        for (int r = 0; r < nr; r++) {
            xb[r] = q8k_block(x, stride, r, ib);
            /* u = q + 32 (0..63): take back 32 * sum scale * bsum */
            sumi[r] = _mm256_sub_epi32(
                _mm256_setzero_si256(),
                _mm256_slli_epi32(_mm256_madd_epi16(sc, loadu256(xb[r]->bsums)), 5));
        }
        for (int h = 0; h < 2; h++) {
            const __m256i l0 = loadu256(w + 64 * h), l1 = loadu256(w + 64 * h + 32);
            const __m256i qh = loadu256(w + 128 + 32 * h);
            const __m256i sch = dup_half(sc, h);
            for (int g = 0; g < 4; g++) {
                const __m256i u = q6_group(l0, l1, qh, g);
                const __m256i s = bcast16_pair(sch, 2 * g);
                for (int r = 0; r < nr; r++)
                    sumi[r] = acc_add(sumi[r], dot_scaled(u, xb[r]->qs + 128 * h + 32 * g, s));
            }
        }
        const float d = load_fp16(w + 208);
        for (int r = 0; r < nr; r++)
            acc[r] =
                _mm256_fmadd_ps(_mm256_set1_ps(d * xb[r]->d), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
    for (int r = 0; r < nr; r++) ys[r] = hsum256(acc[r]);
}

QK_DEFINE_DOTS(q6_k, dot_q6_k)

void ar_kernels_fill_qk_avx2(ar_kernels *k) {
    k->quantize_q8k = quantize_q8k;
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
