/*
 * q16a_avx2.c - the 32-block types' accurate path for AVX2 (+FMA, F16C): quantize_q16a and
 * the Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 x Q16A dot products (15-bit activations, one integer
 * pass), single- and multi-row, with the contracts of the scalar reference (q16a_scalar.c,
 * where the row layout and the math are explained). Compiled with -mavx2 -mfma -mf16c and
 * only called after cpu.c has checked the CPU.
 *
 * quantize_q16a performs the reference's float operations one for one (amax from the
 * magnitudes' bit patterns, where inf and NaN sort above every finite value; the same
 * float32 division for d; a true division x / d per element; roundf built from truncation;
 * the same clamp; s = d * (float)sum), one block of 32 in four registers, and writes the
 * same zero padding, so its bytes equal the scalar ones.
 *
 * Dot products, two blocks of 32 per step and one weight row with up to AR_MAX_NR
 * activation rows at once:
 *  - per weight block, once for all rows: the 32 weights widened to int16 in element order,
 *    16 per register, the offset already applied (Q8_0: vpmovsxbw from memory; 4/5-bit: the
 *    16 nibble bytes zero-extended to 16-bit lanes with one vpmovzxbw from memory, the low
 *    nibbles masked for elements 0..15 and the bytes shifted right by 4 for 16..31; Q5's
 *    fifth bits spread to the 16-bit lanes by a broadcast, a per-lane bit test and a
 *    compare; Q4_0 - 8, Q5_0 - 16); and the two blocks' float16 scales (and minimums),
 *    gathered in a general register and converted with one vcvtph2ps;
 *  - per activation row and block: two _mm256_madd_epi16 of the weights with the row's 32
 *    activations (two 32-byte loads) added into 8 int32 lanes of four products each. The
 *    two blocks' registers are folded with unpacklo/unpackhi_epi32 and an add into one
 *    register whose even dwords hold partial sums of block ib and odd dwords of block
 *    ib + 1 (8 products each); so per step and row there is one conversion to float, one
 *    multiply for the two scales ([dw0 dw1] repeated, times the row's d[ib], d[ib + 1]
 *    broadcast from memory as one 8-byte group) and one FMA into the row's accumulator; the
 *    "_1" types add mw * s for both blocks with one 128-bit FMA into a second accumulator.
 *    An odd last block runs the same code with the second block's products, scales and
 *    activation scale zero (never read).
 *
 * int32 bounds: |q| <= 128 (Q8_0's -128; 31 for Q5_1, 16 for Q5_0, 15 for Q4_1, 8 for
 * Q4_0) and |a| <= 16383, so a madd lane is at most 2 * 128 * 16383 < 2^22 and a folded
 * lane, 8 products, at most 8 * 128 * 16383 = 16776192 < 2^24: every lane converts to
 * float exactly, and nothing comes near INT32_MAX. Only the float steps round (products
 * with the scales and the additions, in another order than the reference's one float per
 * block), so results agree with the reference to float reassociation error.
 *
 * Several activation rows (vec_dot16_n): one always-inline body per type for 1..AR_MAX_NR
 * rows (QK_DEFINE_DOTS, qk_simd.h). Each step's widened weights meet every row; the rows'
 * accumulators are separate and see the same operations in the same order as a single
 * row, so each result is bit-identical to vec_dot16 on its row. With 4 rows: four weight
 * registers, the scales, four accumulators and the temporaries of one row fit in the 16
 * ymm registers (the "_1" types' four 128-bit accumulators spill a little).
 *
 * All loads are unaligned (the engine's rows are 64-byte aligned; the kernels need no
 * alignment of rows or strides). Weight blocks are never read past their last byte; an
 * activation row never past its s[] array.
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

/* roundf(v / d) clamped to -16383..16383, as int32. */
INLINE __m256i quant16(__m256 v, __m256 vd) {
    const __m256 q = round_away(_mm256_div_ps(v, vd));
    return _mm256_cvttps_epi32(
        _mm256_min_ps(_mm256_max_ps(q, _mm256_set1_ps(-16383.0f)), _mm256_set1_ps(16383.0f)));
}

/* Two registers of 8 int32 (each within int16) -> 16 int16 in order. */
INLINE __m256i pack16(__m256i a, __m256i b) {
    /* packs works per 128-bit half; the permute restores element order */
    return _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xd8);
}

static void quantize_q16a(const float *x, void *vy, int64_t n) {
    uint8_t *row = vy;
    const int64_t nb = n / AR_QK16A;
    const size_t off_d = (size_t)n * 2, off_s = off_d + (size_t)nb * 4,
                 head = off_s + (size_t)nb * 4;
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
    for (int64_t ib = 0; ib < nb; ib++, x += AR_QK16A) {
        __m256 v[4];
        __m256i m = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            v[j] = _mm256_loadu_ps(x + 8 * j);
            /* |x| as integers orders like the floats, inf and NaN above every finite value */
            m = _mm256_max_epi32(m, _mm256_and_si256(_mm256_castps_si256(v[j]), abs_mask));
        }
        __m128i h = _mm_max_epi32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
        h = _mm_max_epi32(h, _mm_unpackhi_epi64(h, h));
        h = _mm_max_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
        const int32_t amax_bits = _mm_cvtsi128_si32(h);
        __m256i lo = _mm256_setzero_si256(), hi = lo;
        float d = 0.0f, s = 0.0f;
        if (amax_bits >= 0x7f800000) { /* inf or NaN */
            d = s = NAN;
        } else {
            float amax;
            memcpy(&amax, &amax_bits, sizeof amax);
            if (amax / 16383.0f >= FLT_MIN) {
                d = amax / 16383.0f;
                const __m256 vd = _mm256_set1_ps(d);
                __m256i q[4];
                for (int j = 0; j < 4; j++) q[j] = quant16(v[j], vd);
                lo = pack16(q[0], q[1]);
                hi = pack16(q[2], q[3]);
                const __m256i t =
                    _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
                __m128i u =
                    _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
                u = _mm_add_epi32(u, _mm_unpackhi_epi64(u, u));
                u = _mm_add_epi32(u, _mm_shuffle_epi32(u, _MM_SHUFFLE(2, 3, 0, 1)));
                s = d * (float)_mm_cvtsi128_si32(u);
            }
        }
        _mm256_storeu_si256((__m256i *)(void *)(row + (size_t)ib * 64), lo);
        _mm256_storeu_si256((__m256i *)(void *)(row + (size_t)ib * 64 + 32), hi);
        memcpy(row + off_d + (size_t)ib * 4, &d, 4);
        memcpy(row + off_s + (size_t)ib * 4, &s, 4);
    }
    memset(row + head, 0, ar_q16a_row_bytes(n) - head);
}

/* --- Weights ------------------------------------------------------------------------------ */

/* 16 bits -> 16 int16 lanes: lane i all ones where bit i is set, else 0. */
INLINE __m256i bits16(uint32_t bits) {
    const __m256i sel = _mm256_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096,
                                          8192, 16384, (short)-32768);
    return _mm256_cmpeq_epi16(_mm256_and_si256(_mm256_set1_epi16((short)bits), sel), sel);
}

/* One weight block at w -> its 32 integer weights q (offset applied) as int16 in element
 * order: elements 0..15 in q[0], 16..31 in q[1]. */
INLINE void widen(ar_type t, const uint8_t *w, __m256i q[2]) {
    const q16a_layout l = layout_of(t);
    if (t == AR_TYPE_Q8_0) {
        q[0] = _mm256_cvtepi8_epi16(loadu128(w + l.qs));
        q[1] = _mm256_cvtepi8_epi16(loadu128(w + l.qs + 16));
        return;
    }
    const __m256i u = _mm256_cvtepu8_epi16(loadu128(w + l.qs)); /* bytes, zero-extended */
    q[0] = _mm256_and_si256(u, _mm256_set1_epi16(0x0f));
    q[1] = _mm256_srli_epi16(u, 4);
    if (l.qh >= 0) {
        const uint32_t qh = load_u32(w + l.qh);
        const __m256i b4 = _mm256_set1_epi16(16);
        for (int h = 0; h < 2; h++) {
            const __m256i set = bits16(qh >> (16 * h));
            /* Q5_0: q = u + 16 h - 16 (u where the bit is set, u - 16 where not); Q5_1:
             * u + 16 h */
            q[h] = l.off ? _mm256_sub_epi16(q[h], _mm256_andnot_si256(set, b4))
                         : _mm256_add_epi16(q[h], _mm256_and_si256(set, b4));
        }
        return;
    }
    if (l.off) {
        const __m256i off = _mm256_set1_epi16((short)l.off);
        q[0] = _mm256_sub_epi16(q[0], off);
        q[1] = _mm256_sub_epi16(q[1], off);
    }
}

/* The float16 fields at byte `field` of cnt (1, 2) blocks from w, `size` bytes apart, as
 * [f0 f1 0 0] (f1 = 0 when cnt is 1). */
INLINE __m128 scales2(const uint8_t *w, int size, int field, int cnt) {
    uint64_t h = load_u16(w + field);
    if (cnt == 2) h |= load_u16(w + size + field) << 16;
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h));
}

/* Floats 0, 1 of p as [f0 f1 0 0]; only f0 ([f0 0 0 0]) when cnt is 1. p may be unaligned:
 * memcpy, not a float or double dereference (which would assume alignment). */
INLINE __m128 load2(const uint8_t *p, int cnt) {
    if (cnt == 2) {
        double d;
        memcpy(&d, p, sizeof d);
        return _mm_castpd_ps(_mm_set_sd(d));
    }
    float f;
    memcpy(&f, p, sizeof f);
    return _mm_set_ss(f);
}

/* --- Dot products ------------------------------------------------------------------------- */

/* One step: blocks ib, ib + 1 (cnt 2; 1 for an odd last block) of the weight row (w at
 * block ib) times activation rows 0..nr-1. off_d, off_s: where a row's d[] and s[] start. */
INLINE void step(ar_type t, const uint8_t *w, const uint8_t *x, size_t stride, int nr, int64_t ib,
                 int cnt, size_t off_d, size_t off_s, __m256 *acc, __m128 *accm) {
    const q16a_layout l = layout_of(t);
    __m256i q0[2], q1[2];
    widen(t, w, q0);
    if (cnt == 2) widen(t, w + l.size, q1);
    /* [dw0 dw1] in every 64-bit lane: the lane pattern of the folded sums */
    const __m256 dwv =
        _mm256_castpd_ps(_mm256_broadcastsd_pd(_mm_castps_pd(scales2(w, l.size, 0, cnt))));
    const __m128 mv = l.has_m ? scales2(w, l.size, 2, cnt) : _mm_setzero_ps();
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        const uint8_t *xb = x + (size_t)r * stride + (size_t)ib * 64;
        const __m256i p0 = _mm256_add_epi32(_mm256_madd_epi16(q0[0], loadu256(xb)),
                                            _mm256_madd_epi16(q0[1], loadu256(xb + 32)));
        const __m256i p1 = cnt == 2 ? _mm256_add_epi32(_mm256_madd_epi16(q1[0], loadu256(xb + 64)),
                                                       _mm256_madd_epi16(q1[1], loadu256(xb + 96)))
                                    : _mm256_setzero_si256();
        /* even dwords block ib, odd dwords block ib + 1 */
        const __m256i f =
            _mm256_add_epi32(_mm256_unpacklo_epi32(p0, p1), _mm256_unpackhi_epi32(p0, p1));
        const uint8_t *xr = x + (size_t)r * stride;
        const __m256 dx = _mm256_castpd_ps(
            _mm256_broadcastsd_pd(_mm_castps_pd(load2(xr + off_d + (size_t)ib * 4, cnt))));
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(f), _mm256_mul_ps(dwv, dx), acc[r]);
        if (l.has_m) accm[r] = _mm_fmadd_ps(mv, load2(xr + off_s + (size_t)ib * 4, cnt), accm[r]);
    }
}

/* ys[r] = the dot product of the weight row w with activation row r (rows `stride` bytes
 * apart), r < nr; nr is a compile-time constant at every call (QK_DEFINE_DOTS). */
INLINE void dot_rows(ar_type t, int64_t n, const uint8_t *w, const uint8_t *x, size_t stride,
                     int nr, float *ys) {
    const q16a_layout l = layout_of(t);
    const int64_t nb = n / AR_QK16A;
    const size_t off_d = (size_t)n * 2, off_s = off_d + (size_t)nb * 4;
    __m256 acc[AR_MAX_NR];
    __m128 accm[AR_MAX_NR];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        acc[r] = _mm256_setzero_ps();
        accm[r] = _mm_setzero_ps();
    }
    int64_t ib = 0;
    for (; ib + 2 <= nb; ib += 2, w += 2 * l.size)
        step(t, w, x, stride, nr, ib, 2, off_d, off_s, acc, accm);
    if (ib < nb) step(t, w, x, stride, nr, ib, 1, off_d, off_s, acc, accm);
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        float y = hsum256(acc[r]);
        if (l.has_m) {
            const __m128 m = _mm_add_ps(accm[r], _mm_movehl_ps(accm[r], accm[r]));
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

void ar_kernels_fill_q16a_avx2(ar_kernels *k) {
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
