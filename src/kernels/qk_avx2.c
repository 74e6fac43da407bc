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

#include "kernels/quant.h"

#include <immintrin.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

/* --- Helpers ------------------------------------------------------------------------------ */

INLINE float load_fp16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

INLINE __m256i loadu256(const void *p) {
    return _mm256_loadu_si256((const __m256i *)p);
}

INLINE __m128i loadu128(const void *p) {
    return _mm_loadu_si128((const __m128i *)p);
}

INLINE float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Broadcast int16 lane `i` (0..7) of each 128-bit half of v to the whole half. */
INLINE __m256i bcast16(__m256i v, int i) {
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)(0x0100 + 0x0202 * i)));
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

/* --- Q2_K --------------------------------------------------------------------------------- */

static float vec_dot_q2_k(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_q8k *x = vx;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q2_K)) {
        const int8_t *a = x[ib].qs;
        const __m128i packed = loadu128(w); /* scales[16]: low nibble scale, high nibble min */
        const __m256i sc = _mm256_cvtepu8_epi16(_mm_and_si128(packed, m4));
        const __m256i mn = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), m4));
        const __m256i msum = _mm256_madd_epi16(mn, loadu256(x[ib].bsums));

        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i q = loadu256(w + 16 + 32 * h);
            const __m256i sch = dup_half(sc, h);
            for (int g = 0; g < 4; g++) {
                const __m256i u = _mm256_and_si256(_mm256_srli_epi16(q, 2 * g), m3);
                sumi = _mm256_add_epi32(
                    sumi, dot_scaled(u, a + 128 * h + 32 * g, bcast16_pair(sch, 2 * g)));
            }
        }
        const float dx = x[ib].d;
        acc =
            _mm256_fmadd_ps(_mm256_set1_ps(load_fp16(w + 80) * dx), _mm256_cvtepi32_ps(sumi), acc);
        accm =
            _mm256_fmadd_ps(_mm256_set1_ps(load_fp16(w + 82) * dx), _mm256_cvtepi32_ps(msum), accm);
    }
    return hsum_ps(acc) - hsum_ps(accm);
}

/* --- Q3_K --------------------------------------------------------------------------------- */

/* The 16 scales of Q3_K minus their bias of 32, as int8 in sub-block order. */
INLINE __m128i unpack_scales_q3_k(const uint8_t *p) {
    uint32_t a[3];
    memcpy(a, p, sizeof a);
    const uint32_t m4 = 0x0f0f0f0f, m2 = 0x03030303;
    const __m128i s = _mm_setr_epi32((int)((a[0] & m4) | (a[2] & m2) << 4),
                                     (int)((a[1] & m4) | ((a[2] >> 2) & m2) << 4),
                                     (int)(((a[0] >> 4) & m4) | ((a[2] >> 4) & m2) << 4),
                                     (int)(((a[1] >> 4) & m4) | ((a[2] >> 6) & m2) << 4));
    return _mm_sub_epi8(s, _mm_set1_epi8(32));
}

static float vec_dot_q3_k(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_q8k *x = vx;
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q3_K)) {
        const int8_t *a = x[ib].qs;
        const __m256i sc = _mm256_cvtepi8_epi16(unpack_scales_q3_k(w + 96));
        const __m256i hmask = loadu256(w);
        /* u = q + 4 = low 2 bits + 4 * (hmask bit): take back 4 * sum scale * bsum */
        __m256i sumi = _mm256_slli_epi32(_mm256_madd_epi16(sc, loadu256(x[ib].bsums)), 2);
        sumi = _mm256_sub_epi32(_mm256_setzero_si256(), sumi);
        for (int h = 0; h < 2; h++) {
            const __m256i q = loadu256(w + 32 + 32 * h);
            const __m256i sch = dup_half(sc, h);
            for (int g = 0; g < 4; g++) {
                const __m256i low = _mm256_and_si256(_mm256_srli_epi16(q, 2 * g), m3);
                const __m256i u = _mm256_or_si256(low, move_bit(hmask, 4 * h + g, 2));
                sumi = _mm256_add_epi32(
                    sumi, dot_scaled(u, a + 128 * h + 32 * g, bcast16_pair(sch, 2 * g)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(load_fp16(w + 108) * x[ib].d),
                              _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum_ps(acc);
}

/* --- Q4_K and Q5_K ------------------------------------------------------------------------ */

/* The 6-bit scales and mins of Q4_K/Q5_K (quant.h) from the block's first 16 bytes
 * (d, dmin, scales[12]): scales in bytes 0..7, mins in bytes 8..15. */
INLINE __m128i unpack_scales_k4(__m128i head) {
    /* dwords [b0-3, b8-11, b4-7, b8-11] and [0, b0-3, 0, b4-7] of b = scales */
    const __m128i low = _mm_shuffle_epi8(
        head, _mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15));
    const __m128i top = _mm_shuffle_epi8(
        head, _mm_setr_epi8(-1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11));
    const __m128i lo =
        _mm_and_si128(_mm_srlv_epi32(low, _mm_setr_epi32(0, 0, 0, 4)),
                      _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    /* bits 6..7 of b0-3 / b4-7 become bits 4..5 of the upper scales / mins */
    return _mm_or_si128(lo, _mm_and_si128(_mm_srli_epi16(top, 2), _mm_set1_epi8(0x30)));
}

/* Byte `i` of each 128-bit half of v, zero-extended to int16, in all lanes of the half. */
INLINE __m256i bcast8(__m256i v, int i) {
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)(0x8000 | i)));
}

/* Both kernels: `hbits` selects Q5_K (the fifth bits at w + 16, quants at w + 48). */
INLINE float dot_k4(int64_t n, const uint8_t *w, const ar_block_q8k *x, int hbits) {
    const size_t bsize = hbits ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const uint8_t *qs = w + (hbits ? 48 : 16);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    /* mins as int16, each twice: m0 m0 m1 m1 .. m3 m3 | m4 m4 .. m7 m7 */
    const __m256i mins_dup = _mm256_setr_epi8(
        8, -128, 8, -128, 9, -128, 9, -128, 10, -128, 10, -128, 11, -128, 11, -128, 12, -128, 12,
        -128, 13, -128, 13, -128, 14, -128, 14, -128, 15, -128, 15, -128);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += bsize, qs += bsize) {
        const int8_t *a = x[ib].qs;
        const __m128i head = loadu128(w);
        const __m256i sm = _mm256_broadcastsi128_si256(unpack_scales_k4(head)); /* both halves */
        /* [d, dmin] * dx */
        uint32_t d_dmin;
        memcpy(&d_dmin, w, sizeof d_dmin);
        const __m128 dd =
            _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)d_dmin)), _mm_set1_ps(x[ib].d));
        /* mins: sum_j mn[j] * (bsums[2j] + bsums[2j + 1]) */
        const __m256i msum =
            _mm256_madd_epi16(_mm256_shuffle_epi8(sm, mins_dup), loadu256(x[ib].bsums));
        const __m256i qh = hbits ? loadu256(w + 16) : _mm256_setzero_si256();

        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) { /* sub-blocks 2j (low nibbles) and 2j + 1 (high) */
            const __m256i q = loadu256(qs + 32 * j);
            __m256i lo = _mm256_and_si256(q, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (hbits) {
                lo = _mm256_or_si256(lo, move_bit(qh, 2 * j, 4));
                hi = _mm256_or_si256(hi, move_bit(qh, 2 * j + 1, 4));
            }
            const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, loadu256(a + 64 * j)),
                                                 bcast8(sm, 2 * j));
            const __m256i p1 = _mm256_madd_epi16(
                _mm256_maddubs_epi16(hi, loadu256(a + 64 * j + 32)), bcast8(sm, 2 * j + 1));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
        }
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(sumi), acc);
        accm = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dd)), _mm256_cvtepi32_ps(msum),
                               accm);
    }
    return hsum_ps(acc) - hsum_ps(accm);
}

static float vec_dot_q4_k(int64_t n, const void *vw, const void *vx) {
    return dot_k4(n, vw, vx, 0);
}

static float vec_dot_q5_k(int64_t n, const void *vw, const void *vx) {
    return dot_k4(n, vw, vx, 1);
}

/* --- Q6_K --------------------------------------------------------------------------------- */

static float vec_dot_q6_k(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_q8k *x = vx;
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q6_K)) {
        const int8_t *a = x[ib].qs;
        const __m256i sc = _mm256_cvtepi8_epi16(loadu128(w + 192));
        /* u = q + 32 (0..63): take back 32 * sum scale * bsum */
        __m256i sumi = _mm256_slli_epi32(_mm256_madd_epi16(sc, loadu256(x[ib].bsums)), 5);
        sumi = _mm256_sub_epi32(_mm256_setzero_si256(), sumi);
        for (int h = 0; h < 2; h++) {
            const __m256i l0 = loadu256(w + 64 * h), l1 = loadu256(w + 64 * h + 32);
            const __m256i qh = loadu256(w + 128 + 32 * h);
            const __m256i sch = dup_half(sc, h);
            /* element group g of this half: nibble g/2 of l(g%2), bits 2g..2g+1 of qh */
            const __m256i u0 = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                               _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
            const __m256i u1 = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                               _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            const __m256i u2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                               _mm256_and_si256(qh, m30));
            const __m256i u3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            const int8_t *ah = a + 128 * h;
            const __m256i p01 = _mm256_add_epi32(dot_scaled(u0, ah, bcast16_pair(sch, 0)),
                                                 dot_scaled(u1, ah + 32, bcast16_pair(sch, 2)));
            const __m256i p23 = _mm256_add_epi32(dot_scaled(u2, ah + 64, bcast16_pair(sch, 4)),
                                                 dot_scaled(u3, ah + 96, bcast16_pair(sch, 6)));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p01, p23));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(load_fp16(w + 208) * x[ib].d),
                              _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum_ps(acc);
}

void ar_kernels_fill_qk_avx2(ar_kernels *k) {
    k->quantize_q8k = quantize_q8k;
    k->vec_dot[AR_TYPE_Q2_K] = vec_dot_q2_k;
    k->vec_dot[AR_TYPE_Q3_K] = vec_dot_q3_k;
    k->vec_dot[AR_TYPE_Q4_K] = vec_dot_q4_k;
    k->vec_dot[AR_TYPE_Q5_K] = vec_dot_q5_k;
    k->vec_dot[AR_TYPE_Q6_K] = vec_dot_q6_k;
}
