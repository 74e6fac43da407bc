/*
 * q16a_avx512.c - the 32-block types' accurate path for AVX-512 (F, BW, VL, DQ, VNNI):
 * quantize_q16a and the Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 x Q16A dot products (15-bit
 * activations, one integer pass), single- and multi-row, with the contracts of the scalar
 * reference (q16a_scalar.c, where the row layout and the math are explained). Compiled with
 * the AVX-512 flags and only called after cpu.c has checked the CPU.
 *
 * quantize_q16a performs the reference's float operations one for one (amax from the
 * magnitudes' bit patterns, where inf and NaN sort above every finite value; the same
 * float32 division for d; a true division x / d per element; roundf built from truncation;
 * the same clamp; s = d * (float)sum), one block of 32 in two registers, and writes the
 * same zero padding, so its bytes equal the scalar ones.
 *
 * Dot products, four blocks of 32 per step and one weight row with up to AR_MAX_NR
 * activation rows at once:
 *  - per weight block, once for all rows: the 32 weights widened to int16 in element order
 *    in one register, the offset already applied (Q8_0: vpmovsxbw from memory; 4/5-bit: the
 *    16 nibble bytes broadcast to the four 128-bit lanes, zero-extended to 16-bit lanes by
 *    one byte shuffle (lanes 0, 1: bytes 0..15 for elements 0..15; lanes 2, 3: the same
 *    bytes for elements 16..31, shifted right by 4), masked to 4 bits; Q5's fifth bit as
 *    a 32-bit lane mask straight from qh, q = u - 16 as a masked subtraction where the bit
 *    is clear (Q5_0) or u + 16 as a masked addition where it is set (Q5_1); Q4_0: - 8);
 *    and the four blocks' float16 scales (and minimums), gathered in a general register
 *    and converted with one vcvtph2ps, [dw0 dw1 dw2 dw3] broadcast to every 128-bit lane;
 *  - per activation row and block: _mm512_madd_epi16 of the weights with the row's 32
 *    activations (one 64-byte load) gives 16 int32 lanes of two products each. The four
 *    blocks' registers are then folded inside each 128-bit lane (a qword blend and an
 *    alignr, then two shufps: the hadd pattern) into one register whose dword j of every
 *    128-bit lane holds a partial sum of block ib + j (8 products). So per step and row
 *    there is one conversion to float, one multiply for the four scales (dwv times the
 *    row's d[ib..ib+3], broadcast from memory as a 16-byte group) and one FMA into the
 *    row's accumulator, instead of one of each per block; the "_1" types add mw * s for
 *    the four blocks with one 128-bit FMA into a second accumulator.
 *    An incomplete last step (nb % 4 blocks) runs the same code with the missing blocks'
 *    products, scales and activation scales zero (masked loads, never past the row).
 *
 * int32 bounds: |q| <= 128 (Q8_0's -128; 31 for Q5_1, 16 for Q5_0, 15 for Q4_1, 8 for
 * Q4_0) and |a| <= 16383, so a madd lane is at most 2 * 128 * 16383 < 2^22 and a folded
 * lane, 8 products, at most 8 * 128 * 16383 = 16776192 < 2^24: every lane converts to
 * float exactly, and nothing comes near INT32_MAX. Only the float steps round (products
 * with the scales and the additions, in another order than the reference's one float per
 * block), so results agree with the reference to float reassociation error (about 1e-7 of
 * the sum of |terms| in the tests).
 *
 * Several activation rows (vec_dot16_n): one always-inline body per type for 1..AR_MAX_NR
 * rows (QK_DEFINE_DOTS, qk_simd.h). Each step's widened weights meet every row; the rows'
 * accumulators are separate and see the same operations in the same order as a single
 * row, so each result is bit-identical to vec_dot16 on its row. With 4 rows: four weight
 * registers, the scales, 4 + 4 accumulators and a few temporaries, inside the 32 zmm.
 *
 * All loads are unaligned (the engine's rows are 64-byte aligned, which makes the
 * activation loads aligned in fact; the kernels need no alignment of rows or strides).
 * Weight blocks are never read past their last byte; an activation row never past its
 * s[] array.
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

INLINE __m512i loadu512(const void *p) {
    return _mm512_loadu_si512(p);
}

INLINE uint64_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

INLINE uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Per type: block bytes, where qs and qh (-1: none) start, whether there is a minimum m
 * (f16 at byte 2), and the offset subtracted from the unsigned quant. */
typedef struct q16a_layout {
    int size, qs, qh, has_m, off;
} q16a_layout;

INLINE q16a_layout layout_of(ar_type t) {
    switch (t) {
    case AR_TYPE_Q4_0: return (q16a_layout){sizeof(block_q4_0), offsetof(block_q4_0, qs), -1, 0, 8};
    case AR_TYPE_Q4_1: return (q16a_layout){sizeof(block_q4_1), offsetof(block_q4_1, qs), -1, 1, 0};
    case AR_TYPE_Q5_0:
        return (q16a_layout){sizeof(block_q5_0), offsetof(block_q5_0, qs), offsetof(block_q5_0, qh),
                             0, 16};
    case AR_TYPE_Q5_1:
        return (q16a_layout){sizeof(block_q5_1), offsetof(block_q5_1, qs), offsetof(block_q5_1, qh),
                             1, 0};
    case AR_TYPE_Q8_0:
    default: return (q16a_layout){sizeof(block_q8_0), offsetof(block_q8_0, qs), -1, 0, 0};
    }
}

/* --- Q16A activations --------------------------------------------------------------------- */

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

/* roundf(v / d) clamped to -16383..16383, as int32. */
INLINE __m512i quant16(__m512 v, __m512 vd) {
    const __m512 q = round_away(_mm512_div_ps(v, vd));
    return _mm512_cvttps_epi32(
        _mm512_min_ps(_mm512_max_ps(q, _mm512_set1_ps(-16383.0f)), _mm512_set1_ps(16383.0f)));
}

static void quantize_q16a(const float *x, void *vy, int64_t n) {
    uint8_t *row = vy;
    const int64_t nb = n / AR_QK16A;
    const size_t off_d = (size_t)n * 2, off_s = off_d + (size_t)nb * 4,
                 head = off_s + (size_t)nb * 4;
    const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
    for (int64_t ib = 0; ib < nb; ib++, x += AR_QK16A) {
        const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        /* |x| as integers orders like the floats, with inf and NaN above every finite value */
        const int32_t amax_bits = _mm512_reduce_max_epi32(
            _mm512_max_epi32(_mm512_and_si512(_mm512_castps_si512(v0), abs_mask),
                             _mm512_and_si512(_mm512_castps_si512(v1), abs_mask)));
        __m512i qs = _mm512_setzero_si512();
        float d = 0.0f, s = 0.0f;
        if (amax_bits >= 0x7f800000) { /* inf or NaN */
            d = s = NAN;
        } else {
            float amax;
            memcpy(&amax, &amax_bits, sizeof amax);
            if (amax / 16383.0f >= FLT_MIN) {
                d = amax / 16383.0f;
                const __m512 vd = _mm512_set1_ps(d);
                const __m512i q0 = quant16(v0, vd), q1 = quant16(v1, vd);
                qs = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi32_epi16(q0)),
                                        _mm512_cvtepi32_epi16(q1), 1);
                s = d * (float)_mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
            }
        }
        _mm512_storeu_si512(row + (size_t)ib * 64, qs);
        memcpy(row + off_d + (size_t)ib * 4, &d, 4);
        memcpy(row + off_s + (size_t)ib * 4, &s, 4);
    }
    memset(row + head, 0, ar_q16a_row_bytes(n) - head);
}

/* --- Weights ------------------------------------------------------------------------------ */

/* One weight block at w -> its 32 integer weights q (offset applied) as int16, in element
 * order. */
INLINE __m512i widen(ar_type t, const uint8_t *w) {
    const q16a_layout l = layout_of(t);
    if (t == AR_TYPE_Q8_0) return _mm512_cvtepi8_epi16(loadu256(w + l.qs));
    /* 16-bit lane k of 128-bit lane L <- byte 8 (L & 1) + k of qs, zero-extended */
    const __m512i pick =
        _mm512_setr_epi32(0x80018000, 0x80038002, 0x80058004, 0x80078006, 0x80098008, 0x800b800a,
                          0x800d800c, 0x800f800e, 0x80018000, 0x80038002, 0x80058004, 0x80078006,
                          0x80098008, 0x800b800a, 0x800d800c, 0x800f800e);
    __m512i u = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(loadu128(w + l.qs)), pick);
    u = _mm512_mask_srli_epi16(u, 0xffff0000u, u, 4); /* elements 16..31: high nibbles */
    u = _mm512_and_si512(u, _mm512_set1_epi16(0x0f));
    if (l.qh >= 0) {
        const __mmask32 h = _cvtu32_mask32(load_u32(w + l.qh));
        const __m512i b4 = _mm512_set1_epi16(16);
        /* Q5_0: q = u + 16 h - 16 (u where the bit is set, u - 16 where not); Q5_1: u + 16 h */
        return l.off ? _mm512_mask_sub_epi16(u, _knot_mask32(h), u, b4)
                     : _mm512_mask_add_epi16(u, h, u, b4);
    }
    return l.off ? _mm512_sub_epi16(u, _mm512_set1_epi16((short)l.off)) : u;
}

/* The float16 fields at byte `field` of cnt (1..4) blocks from w, `size` bytes apart, as
 * floats [f0 f1 f2 f3] (0 for the missing blocks). */
INLINE __m128 scales4(const uint8_t *w, int size, int field, int cnt) {
    uint64_t h = 0;
    for (int j = 0; j < cnt; j++) h |= load_u16(w + j * size + field) << (16 * j);
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h));
}

/* --- Dot products ------------------------------------------------------------------------- */

/* Fold the 16 int32 lanes of the products of blocks 0..3 so that dword j of every 128-bit
 * lane holds a partial sum of block j: per 128-bit lane, [p0 p0 p1 p1] from the qwords of
 * p0 and p1 (blend + alignr), [p2 p2 p3 p3] likewise, then the hadd pattern with shufps. */
INLINE __m512i fold4(__m512i p0, __m512i p1, __m512i p2, __m512i p3) {
    const __m512i a =
        _mm512_add_epi32(_mm512_mask_blend_epi64(0xaa, p0, p1), _mm512_alignr_epi8(p1, p0, 8));
    const __m512i b =
        _mm512_add_epi32(_mm512_mask_blend_epi64(0xaa, p2, p3), _mm512_alignr_epi8(p3, p2, 8));
    const __m512 fa = _mm512_castsi512_ps(a), fb = _mm512_castsi512_ps(b);
    return _mm512_add_epi32(
        _mm512_castps_si512(_mm512_shuffle_ps(fa, fb, _MM_SHUFFLE(2, 0, 2, 0))),
        _mm512_castps_si512(_mm512_shuffle_ps(fa, fb, _MM_SHUFFLE(3, 1, 3, 1))));
}

/* Floats j < cnt of p (4 bytes each), zero above: one 16-byte load when cnt is 4, else a
 * masked one that reads nothing past element cnt - 1. */
INLINE __m128 load4(const uint8_t *p, int cnt) {
    if (cnt == 4) return _mm_loadu_ps((const float *)(const void *)p);
    return _mm_maskz_loadu_ps((__mmask8)((1u << cnt) - 1), p);
}

/* One step: blocks ib .. ib + cnt - 1 (cnt 1..4; 4 except in a row's last step) of the
 * weight row (w at block ib) times activation rows 0..nr-1. off_d, off_s: where a row's d[]
 * and s[] start. */
INLINE void step(ar_type t, const uint8_t *w, const uint8_t *x, size_t stride, int nr, int64_t ib,
                 int cnt, size_t off_d, size_t off_s, __m512 *acc, __m128 *accm) {
    const q16a_layout l = layout_of(t);
    __m512i q[4];
    for (int j = 0; j < 4; j++) q[j] = j < cnt ? widen(t, w + j * l.size) : _mm512_setzero_si512();
    const __m512 dwv = _mm512_broadcast_f32x4(scales4(w, l.size, 0, cnt));
    const __m128 mv = l.has_m ? scales4(w, l.size, 2, cnt) : _mm_setzero_ps();
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        const uint8_t *xr = x + (size_t)r * stride;
        __m512i p[4];
        for (int j = 0; j < 4; j++)
            p[j] = j < cnt ? _mm512_madd_epi16(q[j], loadu512(xr + (size_t)(ib + j) * 64))
                           : _mm512_setzero_si512();
        const __m512 sc =
            _mm512_mul_ps(dwv, _mm512_broadcast_f32x4(load4(xr + off_d + (size_t)ib * 4, cnt)));
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(fold4(p[0], p[1], p[2], p[3])), sc, acc[r]);
        if (l.has_m) accm[r] = _mm_fmadd_ps(mv, load4(xr + off_s + (size_t)ib * 4, cnt), accm[r]);
    }
}

/* ys[r] = the dot product of the weight row w with activation row r (rows `stride` bytes
 * apart), r < nr; nr is a compile-time constant at every call (QK_DEFINE_DOTS). */
INLINE void dot_rows(ar_type t, int64_t n, const uint8_t *w, const uint8_t *x, size_t stride,
                     int nr, float *ys) {
    const q16a_layout l = layout_of(t);
    const int64_t nb = n / AR_QK16A;
    const size_t off_d = (size_t)n * 2, off_s = off_d + (size_t)nb * 4;
    __m512 acc[AR_MAX_NR];
    __m128 accm[AR_MAX_NR];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        acc[r] = _mm512_setzero_ps();
        accm[r] = _mm_setzero_ps();
    }
    int64_t ib = 0;
    for (; ib + 4 <= nb; ib += 4, w += 4 * l.size)
        step(t, w, x, stride, nr, ib, 4, off_d, off_s, acc, accm);
    if (ib < nb) step(t, w, x, stride, nr, ib, (int)(nb - ib), off_d, off_s, acc, accm);
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        float y = _mm512_reduce_add_ps(acc[r]);
        if (l.has_m) {
            __m128 m = _mm_add_ps(accm[r], _mm_movehl_ps(accm[r], accm[r]));
            y += _mm_cvtss_f32(_mm_add_ss(m, _mm_movehdup_ps(m)));
        }
        ys[r] = y;
    }
}

#define DEFINE_TYPE(name, type)                                                                    \
    INLINE void dot_##name(int64_t n, const uint8_t *w, const uint8_t *x, size_t stride, int nr,   \
                           float *ys) {                                                            \
        dot_rows(type, n, w, x, stride, nr, ys);                                                   \
    }                                                                                              \
    QK_DEFINE_DOTS(name, dot_##name)

DEFINE_TYPE(q4_0, AR_TYPE_Q4_0)
DEFINE_TYPE(q4_1, AR_TYPE_Q4_1)
DEFINE_TYPE(q5_0, AR_TYPE_Q5_0)
DEFINE_TYPE(q5_1, AR_TYPE_Q5_1)
DEFINE_TYPE(q8_0, AR_TYPE_Q8_0)

/* --- Table -------------------------------------------------------------------------------- */

void ar_kernels_fill_q16a_avx512(ar_kernels *k) {
    k->quantize_q16a = quantize_q16a;
    k->vec_dot16[AR_TYPE_Q4_0] = vec_dot_q4_0;
    k->vec_dot16[AR_TYPE_Q4_1] = vec_dot_q4_1;
    k->vec_dot16[AR_TYPE_Q5_0] = vec_dot_q5_0;
    k->vec_dot16[AR_TYPE_Q5_1] = vec_dot_q5_1;
    k->vec_dot16[AR_TYPE_Q8_0] = vec_dot_q8_0;
    k->vec_dot16_n[AR_TYPE_Q4_0] = vec_dot_n_q4_0;
    k->vec_dot16_n[AR_TYPE_Q4_1] = vec_dot_n_q4_1;
    k->vec_dot16_n[AR_TYPE_Q5_0] = vec_dot_n_q5_0;
    k->vec_dot16_n[AR_TYPE_Q5_1] = vec_dot_n_q5_1;
    k->vec_dot16_n[AR_TYPE_Q8_0] = vec_dot_n_q8_0;
}
