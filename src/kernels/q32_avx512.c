/*
 * q32_avx512.c - AVX-512 (F, BW, VL, DQ, VNNI) versions of the q32 kernels: the activation
 * quantizer and the dot products of Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 rows with Q8A
 * activations. The scalar reference and the definition of every result are in
 * q32_scalar.c.
 *
 * Dot products take two blocks (64 elements) per 512-bit step, and one weight row with up
 * to AR_MAX_NR activation rows at once (vec_dot_n; vec_dot is the same code for one row):
 *  - the two weight blocks are unpacked once for all rows to 64 bytes in element order,
 *    block 0 in the low 256 bits: nibbles are split with one masked shift, the fifth bits
 *    of Q5 come straight from qh as a 64-bit byte mask. Every type is "unsigned u minus an
 *    offset" (Q4_0: 8, Q5_0: 16, Q8_0: 128 with u = w xor 0x80, Q4_1/Q5_1: none);
 *  - _mm512_dpbusd_epi32 (VNNI) multiplies unsigned with signed bytes and sums groups of 4
 *    into 16 int32 lanes (lanes 0..7 block 0, 8..15 block 1). The "_1" types: u times the
 *    activations a. The offset types: the signed weights q = u - off times the activations
 *    biased to a + 128 (an xor with 0x80; a is in -127..127, q8a blocks never hold -128),
 *    the dpbusd starting from c = -128 * (sums of 4 q), which is computed with the weights
 *    (one dpbusd of u with -128 bytes from 512 * off) and so costs nothing per activation
 *    row. The partial sums are exact, the same integers as the scalar reference's;
 *  - per activation row, the int32 lanes are converted to float and multiplied-added with
 *    the per-lane scale (dw * d of the lane's block) into one of two float accumulators
 *    (alternate steps, so consecutive FMAs do not wait on each other). The weight scales
 *    come from one F16C conversion per pair, the float16 fields gathered in a general
 *    register; the "_1" types multiply [dw, mw] by the row's [d, s] in one vector, the mw *
 *    s terms collecting in a separate accumulator; the others multiply dw, spread over the
 *    lanes once, by the row's d broadcast to each half. An odd last block runs the same
 *    steps at 256 bits.
 * A row's float operations are the same whatever the number of rows, so vec_dot_n gives
 * each row the bits vec_dot gives it alone. Only the order of the float additions differs
 * from the reference.
 *
 * The quantizer reproduces the reference bit for bit (the same divisions, an exact product
 * x * id, and round-half-away-from-zero built from truncation), 16 floats per step.
 *
 * All loads are unaligned: GGUF tensor data and these blocks are only 2-byte aligned.
 */
#include "kernels/kernels.h"

#include "kernels/q8_avx512.h"
#include "kernels/quant.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AR_INLINE static inline __attribute__((always_inline))

/* --- Activation quantizer ---------------------------------------------------------------- */

static void quantize_q8a(const float *x, void *vy, int64_t n) {
    ar_block_q8a *y = vy;
    for (int64_t ib = 0; ib < n / AR_QK8A; ib++, x += AR_QK8A) {
        ar_block_q8a *b = &y[ib];
        __m512i q0, q1;
        const float d = ar_quantize32_512(x, &q0, &q1);
        _mm_storeu_si128((__m128i *)b->qs, _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(b->qs + 16), _mm512_cvtepi32_epi8(q1));
        b->d = d; /* NaN or 0 in the special cases, and then s too (q is all zero) */
        b->s = d * (float)_mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    }
}

/* --- Weight unpacking -------------------------------------------------------------------- */

/* Per type: block bytes, where qs and qh start, whether there is a minimum m, and the
 * offset that turns the unpacked unsigned byte u into the weight's integer q = u - off
 * (Q8_0: 128, its bytes being q itself). */
typedef struct q32_layout {
    int size, qs, qh, has_m, off;
} q32_layout;

#define LAYOUT(B, QH, HAS_M, OFF)                                                                  \
    (q32_layout) {                                                                                 \
        sizeof(B), offsetof(B, qs), QH, HAS_M, OFF                                                 \
    }

AR_INLINE q32_layout layout_of(ar_type t) {
    switch (t) {
    case AR_TYPE_Q4_0: return LAYOUT(block_q4_0, -1, 0, 8);
    case AR_TYPE_Q4_1: return LAYOUT(block_q4_1, -1, 1, 0);
    case AR_TYPE_Q5_0: return LAYOUT(block_q5_0, offsetof(block_q5_0, qh), 0, 16);
    case AR_TYPE_Q5_1: return LAYOUT(block_q5_1, offsetof(block_q5_1, qh), 1, 0);
    case AR_TYPE_Q8_0:
    default: return LAYOUT(block_q8_0, -1, 0, 128);
    }
}

AR_INLINE uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

AR_INLINE uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Two weight blocks at w0, w1 -> 64 bytes u in element order, block 0 in the low half
 * (Q8_0: its signed bytes as they are). */
AR_INLINE __m512i unpack2(ar_type t, const uint8_t *w0, const uint8_t *w1) {
    const q32_layout l = layout_of(t);
    if (t == AR_TYPE_Q8_0) {
        const __m256i lo = _mm256_loadu_si256((const __m256i *)(w0 + l.qs));
        return _mm512_inserti64x4(_mm512_castsi256_si512(lo),
                                  _mm256_loadu_si256((const __m256i *)(w1 + l.qs)), 1);
    }
    /* 128-bit lanes [qs0, qs0, qs1, qs1], the odd lanes shifted to their high nibbles */
    __m512i b = _mm512_mask_broadcast_i32x4(
        _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(w0 + l.qs))), 0xff00,
        _mm_loadu_si128((const __m128i *)(w1 + l.qs)));
    b = _mm512_mask_srli_epi16(b, 0xff00ff00u, b, 4);
    b = _mm512_and_si512(b, _mm512_set1_epi8(0x0f));
    if (l.qh >= 0) {
        const __mmask64 h =
            _cvtu64_mask64(load_u32(w0 + l.qh) | (uint64_t)load_u32(w1 + l.qh) << 32);
        b = _mm512_mask_add_epi8(b, h, b, _mm512_set1_epi8(16));
    }
    return b;
}

/* One weight block -> 32 bytes u in element order (Q8_0: its signed bytes). */
AR_INLINE __m256i unpack1(ar_type t, const uint8_t *w) {
    const q32_layout l = layout_of(t);
    if (t == AR_TYPE_Q8_0) return _mm256_loadu_si256((const __m256i *)(w + l.qs));
    const __m128i qs = _mm_loadu_si128((const __m128i *)(w + l.qs));
    __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(qs), _mm_srli_epi16(qs, 4), 1);
    b = _mm256_and_si256(b, _mm256_set1_epi8(0x0f));
    if (l.qh >= 0) b = _mm256_mask_add_epi8(b, load_u32(w + l.qh), b, _mm256_set1_epi8(16));
    return b;
}

/* [dw0, mw0, dw1, mw1] of the weight blocks at w0, w1 (f16 d, and m for the "_1" types,
 * else 0). The f16 fields are gathered in a general register, which keeps the vector ports
 * free. */
AR_INLINE __m128 weight_scales(ar_type t, const uint8_t *w0, const uint8_t *w1) {
    const uint64_t h = layout_of(t).has_m ? load_u32(w0) | (uint64_t)load_u32(w1) << 32
                                          : load_u16(w0) | (uint64_t)load_u16(w1) << 32;
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h));
}

/* [dw0 * d0, mw0 * s0, dw1 * d1, mw1 * s1]: weight_scales times the activation blocks' (d,
 * s) at x0, x1. */
AR_INLINE __m128 pair_scales(__m128 dw, const ar_block_q8a *x0, const ar_block_q8a *x1) {
    const __m128 ds = _mm_loadh_pi(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)&x0->d)),
                                   (const __m64 *)&x1->d);
    return _mm_mul_ps(dw, ds);
}

/* --- Dot products ------------------------------------------------------------------------ */

AR_INLINE float load_f32(const void *p) {
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* A pair of weight blocks, unpacked once for all activation rows. Types with an offset:
 * q = the signed weights u - off (Q8_0's bytes as they are) and c = -128 * the sums of
 * each 4 consecutive q, the starting value of the dpbusd that multiplies q with the
 * activations biased by 128 (c itself is one dpbusd: 512 * off + u * -128 summed by 4);
 * the "_1" types: q = u (unsigned) and c = 0. dw: weight_scales; dwv: [dw0 x8, dw1 x8]
 * (used by the types without m). */
typedef struct wpair {
    __m512i q, c;
    __m128 dw;
    __m512 dwv;
} wpair;

AR_INLINE wpair unpack_pair(ar_type t, const uint8_t *w0, const uint8_t *w1) {
    const q32_layout l = layout_of(t);
    wpair p;
    const __m512i b = unpack2(t, w0, w1);
    p.q = b;
    p.c = _mm512_setzero_si512();
    if (l.off) {
        const __m512i u =
            t == AR_TYPE_Q8_0 ? _mm512_xor_si512(b, _mm512_set1_epi8((char)0x80)) : b; /* q + off */
        if (t != AR_TYPE_Q8_0) p.q = _mm512_sub_epi8(b, _mm512_set1_epi8((char)l.off));
        p.c = _mm512_dpbusd_epi32(_mm512_set1_epi32(512 * l.off), u, _mm512_set1_epi8(-128));
    }
    p.dw = weight_scales(t, w0, w1);
    const __m512i pick = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
    p.dwv = _mm512_permutexvar_ps(pick, _mm512_castps128_ps512(p.dw));
    return p;
}

/* acc += per-lane scale * (the 16 exact int32 partial sums of the weight pair wp times the
 * activation blocks x[0], x[1]); lanes 1, 3 of *acc_m += mw * s of the two blocks for the
 * "_1" types. The per-lane scale is dw * d of the lane's block: for the "_1" types the
 * product [dw0 d0, mw0 s0, dw1 d1, mw1 s1] spread over the lanes, for the others dwv times
 * [d0 x8, d1 x8] (the same products). */
AR_INLINE __m512 pair_fma(ar_type t, const wpair *wp, const ar_block_q8a *x, __m512 acc,
                          __m128 *acc_m) {
    const q32_layout l = layout_of(t);
    const __m512i a =
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[0].qs)),
                           _mm256_loadu_si256((const __m256i *)x[1].qs), 1);
    __m512i p;
    __m512 s;
    if (l.off) /* (a + 128) * q - 128 * q: a is in -127..127, so a + 128 fits a byte */
        p = _mm512_dpbusd_epi32(wp->c, _mm512_xor_si512(a, _mm512_set1_epi8((char)0x80)), wp->q);
    else
        p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wp->q, a);
    if (l.has_m) {
        const __m128 sc = pair_scales(wp->dw, &x[0], &x[1]);
        const __m512i pick = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
        s = _mm512_permutexvar_ps(pick, _mm512_castps128_ps512(sc));
        *acc_m = _mm_add_ps(*acc_m, sc);
    } else {
        const __m512 d = _mm512_mask_broadcastss_ps(_mm512_set1_ps(load_f32(&x[0].d)), 0xff00,
                                                    _mm_set_ss(load_f32(&x[1].d)));
        s = _mm512_mul_ps(wp->dwv, d);
    }
    return _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(p), acc);
}

/* One weight block (an odd last block) at 256 bits, unpacked as unpack_pair does. */
typedef struct wone {
    __m256i q, c;
    __m128 dw;
} wone;

AR_INLINE wone unpack_one(ar_type t, const uint8_t *w) {
    const q32_layout l = layout_of(t);
    wone b;
    const __m256i u0 = unpack1(t, w);
    b.q = u0;
    b.c = _mm256_setzero_si256();
    if (l.off) {
        const __m256i u =
            t == AR_TYPE_Q8_0 ? _mm256_xor_si256(u0, _mm256_set1_epi8((char)0x80)) : u0;
        if (t != AR_TYPE_Q8_0) b.q = _mm256_sub_epi8(u0, _mm256_set1_epi8((char)l.off));
        b.c = _mm256_dpbusd_epi32(_mm256_set1_epi32(512 * l.off), u, _mm256_set1_epi8(-128));
    }
    b.dw = weight_scales(t, w, w);
    return b;
}

/* The float sum of one unpacked weight block times activation block x. */
AR_INLINE float block_dot(ar_type t, const wone *b, const ar_block_q8a *x) {
    const q32_layout l = layout_of(t);
    const __m256i a = _mm256_loadu_si256((const __m256i *)x->qs);
    const __m256i p =
        l.off ? _mm256_dpbusd_epi32(b->c, _mm256_xor_si256(a, _mm256_set1_epi8((char)0x80)), b->q)
              : _mm256_dpbusd_epi32(_mm256_setzero_si256(), b->q, a);
    const __m128 sc = pair_scales(b->dw, x, x); /* lane 0 dw * d, lane 1 mw * s */
    const __m256 f = _mm256_mul_ps(_mm256_broadcastss_ps(sc), _mm256_cvtepi32_ps(p));
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(f), _mm256_extractf128_ps(f, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r) + (l.has_m ? _mm_cvtss_f32(_mm_movehdup_ps(sc)) : 0.0f);
}

/* Activation block ib of row r; the rows start at x, `stride` bytes apart. */
AR_INLINE const ar_block_q8a *q8a_block(const uint8_t *x, size_t stride, int r, int64_t ib) {
    return (const ar_block_q8a *)(const void *)(x + (size_t)r * stride) + ib;
}

/* ys[r] = the dot product of the weight row w with activation row r, for r < nr (a
 * compile-time constant at every call, so the loops over the rows unroll and the per-row
 * accumulators live in registers). Each step unpacks four weight blocks once and runs the
 * same per-row code for every row: pairs of blocks alternate between two accumulators, so
 * consecutive FMAs do not wait on each other. A row's float operations do not depend on
 * nr, so ys[r] is bit-identical to nr = 1 on that row alone.
 * (The row loops carry "#pragma GCC unroll": unrolled that early, GCC keeps the per-row
 * arrays in registers; otherwise it stores them to the stack on every step.) */
AR_INLINE void dot_rows(ar_type t, int64_t n, const uint8_t *w, const uint8_t *x, size_t stride,
                        int nr, float *ys) {
    const int size = layout_of(t).size;
    const int64_t nb = n / AR_QK8A;
    __m512 acc0[AR_MAX_NR], acc1[AR_MAX_NR];
    __m128 acc_m[AR_MAX_NR]; /* lanes 1, 3: the mw * s terms */
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        acc0[r] = acc1[r] = _mm512_setzero_ps();
        acc_m[r] = _mm_setzero_ps();
    }
    int64_t ib = 0;
    for (; ib + 3 < nb; ib += 4, w += 4 * size) {
        const wpair p0 = unpack_pair(t, w, w + size);
        const wpair p1 = unpack_pair(t, w + 2 * size, w + 3 * size);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            acc0[r] = pair_fma(t, &p0, q8a_block(x, stride, r, ib), acc0[r], &acc_m[r]);
            acc1[r] = pair_fma(t, &p1, q8a_block(x, stride, r, ib + 2), acc1[r], &acc_m[r]);
        }
    }
    if (ib + 1 < nb) {
        const wpair p = unpack_pair(t, w, w + size);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            acc0[r] = pair_fma(t, &p, q8a_block(x, stride, r, ib), acc0[r], &acc_m[r]);
        ib += 2, w += 2 * size;
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0[r], acc1[r]));
        const __m128 m = _mm_movehdup_ps(acc_m[r]);
        ys[r] = sum + _mm_cvtss_f32(_mm_add_ss(m, _mm_movehl_ps(m, m)));
    }
    if (ib < nb) {
        const wone b = unpack_one(t, w);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) ys[r] += block_dot(t, &b, q8a_block(x, stride, r, ib));
    }
}

/* vec_dot is dot_rows with nr = 1, and vec_dot_n with nr = 1 is vec_dot itself: one
 * implementation. */
#define DEFINE_DOTS(name, type)                                                                    \
    static float vec_dot_##name(int64_t n, const void *w, const void *x) {                         \
        float y;                                                                                   \
        dot_rows(type, n, w, x, 0, 1, &y);                                                         \
        return y;                                                                                  \
    }                                                                                              \
    static void vec_dot_n_##name(int64_t n, const void *w, const void *x, size_t stride, int nr,   \
                                 float *ys) {                                                      \
        switch (nr) {                                                                              \
        case 1: ys[0] = vec_dot_##name(n, w, x); return;                                           \
        case 2: dot_rows(type, n, w, x, stride, 2, ys); return;                                    \
        case 3: dot_rows(type, n, w, x, stride, 3, ys); return;                                    \
        default: dot_rows(type, n, w, x, stride, AR_MAX_NR, ys); return;                           \
        }                                                                                          \
    }

DEFINE_DOTS(q4_0, AR_TYPE_Q4_0)
DEFINE_DOTS(q4_1, AR_TYPE_Q4_1)
DEFINE_DOTS(q5_0, AR_TYPE_Q5_0)
DEFINE_DOTS(q5_1, AR_TYPE_Q5_1)
DEFINE_DOTS(q8_0, AR_TYPE_Q8_0)

/* --- Table ------------------------------------------------------------------------------- */

void ar_kernels_fill_q32_avx512(ar_kernels *k) {
    k->quantize_q8a = quantize_q8a;
    k->vec_dot[AR_TYPE_Q4_0] = vec_dot_q4_0;
    k->vec_dot[AR_TYPE_Q4_1] = vec_dot_q4_1;
    k->vec_dot[AR_TYPE_Q5_0] = vec_dot_q5_0;
    k->vec_dot[AR_TYPE_Q5_1] = vec_dot_q5_1;
    k->vec_dot[AR_TYPE_Q8_0] = vec_dot_q8_0;
    k->vec_dot_n[AR_TYPE_Q4_0] = vec_dot_n_q4_0;
    k->vec_dot_n[AR_TYPE_Q4_1] = vec_dot_n_q4_1;
    k->vec_dot_n[AR_TYPE_Q5_0] = vec_dot_n_q5_0;
    k->vec_dot_n[AR_TYPE_Q5_1] = vec_dot_n_q5_1;
    k->vec_dot_n[AR_TYPE_Q8_0] = vec_dot_n_q8_0;
}
