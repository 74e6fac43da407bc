/*
 * q32_avx512.c - AVX-512 (F, BW, VL, DQ, VNNI) versions of the q32 kernels: the activation
 * quantizer and the dot products of Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 rows with Q8A
 * activations. The scalar reference and the definition of every result are in
 * q32_scalar.c.
 *
 * Dot products take two blocks (64 elements) per 512-bit step:
 *  - the two weight blocks are unpacked to 64 unsigned bytes u in element order, block 0 in
 *    the low 256 bits: nibbles are split with one masked shift, the fifth bits of Q5 come
 *    straight from qh as a 64-bit byte mask, and Q8_0's signed bytes are biased to
 *    u = w + 128 (an xor with 0x80);
 *  - _mm512_dpbusd_epi32 (VNNI) multiplies u with the signed activations and sums groups of
 *    4 into 16 int32 lanes (lanes 0..7 block 0, 8..15 block 1). Every type is "u minus an
 *    offset" (Q4_0: 8, Q5_0: 16, Q8_0: 128, Q4_1/Q5_1: none), and the offset's share,
 *    offset * sum(a), is a second dpbusd of the offset bytes with the activations,
 *    subtracted in int32, so the partial sums stay exact;
 *  - the int32 lanes are converted to float and multiplied-added with the per-lane scale
 *    (dw * d of the lane's block) into one of two float accumulators (alternate steps, so
 *    consecutive FMAs do not wait on each other). Both blocks' scales come from one F16C
 *    conversion and one multiply, the float16 fields gathered in a general register; the
 *    "_1" types' mw * s terms ride along in the same vector and collect in a separate
 *    accumulator. An odd last block runs the same steps at 256 bits.
 * Only the order of the float additions differs from the reference.
 *
 * The quantizer reproduces the reference bit for bit (the same divisions, an exact product
 * x * id, and round-half-away-from-zero built from truncation), 16 floats per step.
 *
 * All loads are unaligned: GGUF tensor data and these blocks are only 2-byte aligned.
 */
#include "kernels/kernels.h"

#include "kernels/quant.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AR_INLINE static inline __attribute__((always_inline))

/* --- Activation quantizer ---------------------------------------------------------------- */

/* roundf() of 16 floats of magnitude below 2^23: halfway cases away from zero. */
AR_INLINE __m512i round_away(__m512 v) {
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 up =
        _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512i sign = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN));
    const __m512 one = _mm512_castsi512_ps(_mm512_or_si512(sign, _mm512_set1_epi32(0x3f800000)));
    return _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, one));
}

static void quantize_q8a(const float *x, void *vy, int64_t n) {
    ar_block_q8a *y = vy;
    const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
    for (int64_t ib = 0; ib < n / AR_QK8A; ib++, x += AR_QK8A) {
        const __m512 v0 = _mm512_loadu_ps(x);
        const __m512 v1 = _mm512_loadu_ps(x + 16);
        /* |x| as integers orders like the floats, with inf and NaN above all finite */
        const int32_t amax_bits = _mm512_reduce_max_epi32(
            _mm512_max_epi32(_mm512_and_si512(_mm512_castps_si512(v0), abs_mask),
                             _mm512_and_si512(_mm512_castps_si512(v1), abs_mask)));
        ar_block_q8a *b = &y[ib];
        if (amax_bits >= 0x7f800000) { /* inf or NaN */
            memset(b, 0, sizeof *b);
            b->d = b->s = NAN;
            continue;
        }
        float amax;
        memcpy(&amax, &amax_bits, sizeof amax);
        const float d = amax / 127.0f;
        if (d < FLT_MIN) {
            memset(b, 0, sizeof *b);
            continue;
        }
        const __m512 id = _mm512_set1_ps(1.0f / d);
        const __m512i q0 = round_away(_mm512_mul_ps(v0, id));
        const __m512i q1 = round_away(_mm512_mul_ps(v1, id));
        _mm_storeu_si128((__m128i *)b->qs, _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(b->qs + 16), _mm512_cvtepi32_epi8(q1));
        b->d = d;
        b->s = d * (float)_mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    }
}

/* --- Weight unpacking -------------------------------------------------------------------- */

/* Per type: block bytes, where qs and qh start, whether there is a minimum m, and the
 * offset that turns the unpacked unsigned byte u into the weight's integer q = u - off. */
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

/* Two weight blocks at w0, w1 -> 64 bytes u in element order, block 0 in the low half. */
AR_INLINE __m512i unpack2(ar_type t, const uint8_t *w0, const uint8_t *w1) {
    const q32_layout l = layout_of(t);
    if (t == AR_TYPE_Q8_0) {
        const __m256i lo = _mm256_loadu_si256((const __m256i *)(w0 + l.qs));
        const __m512i b = _mm512_inserti64x4(_mm512_castsi256_si512(lo),
                                             _mm256_loadu_si256((const __m256i *)(w1 + l.qs)), 1);
        return _mm512_xor_si512(b, _mm512_set1_epi8((char)0x80));
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

/* One weight block -> 32 bytes u in element order. */
AR_INLINE __m256i unpack1(ar_type t, const uint8_t *w) {
    const q32_layout l = layout_of(t);
    if (t == AR_TYPE_Q8_0)
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(w + l.qs)),
                                _mm256_set1_epi8((char)0x80));
    const __m128i qs = _mm_loadu_si128((const __m128i *)(w + l.qs));
    __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(qs), _mm_srli_epi16(qs, 4), 1);
    b = _mm256_and_si256(b, _mm256_set1_epi8(0x0f));
    if (l.qh >= 0) b = _mm256_mask_add_epi8(b, load_u32(w + l.qh), b, _mm256_set1_epi8(16));
    return b;
}

/* [dw0 * d0, mw0 * s0, dw1 * d1, mw1 * s1] for the weight blocks at w0, w1 (f16 d, and m
 * for the "_1" types, else 0) and the activation blocks x0, x1 (float d, s). The f16
 * fields are gathered in a general register, which keeps the vector ports free. */
AR_INLINE __m128 pair_scales(ar_type t, const uint8_t *w0, const uint8_t *w1,
                             const ar_block_q8a *x0, const ar_block_q8a *x1) {
    const uint64_t h = layout_of(t).has_m ? load_u32(w0) | (uint64_t)load_u32(w1) << 32
                                          : load_u16(w0) | (uint64_t)load_u16(w1) << 32;
    const __m128 dw = _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h));
    const __m128 ds = _mm_loadh_pi(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)&x0->d)),
                                   (const __m64 *)&x1->d);
    return _mm_mul_ps(dw, ds);
}

/* --- Dot products ------------------------------------------------------------------------ */

/* acc += per-lane scale * (the 16 int32 partial sums of blocks w, w + size with x[0], x[1]);
 * lanes 1, 3 of *acc_m += mw * s of the two blocks for the "_1" types. */
AR_INLINE __m512 pair_fma(ar_type t, const uint8_t *w, const ar_block_q8a *x, __m512 acc,
                          __m128 *acc_m) {
    const q32_layout l = layout_of(t);
    const __m512i u = unpack2(t, w, w + l.size);
    const __m512i a =
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[0].qs)),
                           _mm256_loadu_si256((const __m256i *)x[1].qs), 1);
    __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, a);
    if (l.off)
        p = _mm512_sub_epi32(
            p, _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)l.off), a));
    const __m128 sc = pair_scales(t, w, w + l.size, &x[0], &x[1]);
    const __m512i pick = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
    const __m512 s = _mm512_permutexvar_ps(pick, _mm512_castps128_ps512(sc));
    if (l.has_m) *acc_m = _mm_add_ps(*acc_m, sc);
    return _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(p), acc);
}

/* The same for one block at 256 bits, for an odd last block: returns its float sum. */
AR_INLINE float block_dot(ar_type t, const uint8_t *w, const ar_block_q8a *x) {
    const q32_layout l = layout_of(t);
    const __m256i a = _mm256_loadu_si256((const __m256i *)x->qs);
    __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), unpack1(t, w), a);
    if (l.off)
        p = _mm256_sub_epi32(
            p, _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8((char)l.off), a));
    const __m128 sc = pair_scales(t, w, w, x, x); /* lane 0 dw * d, lane 1 mw * s */
    const __m256 f = _mm256_mul_ps(_mm256_broadcastss_ps(sc), _mm256_cvtepi32_ps(p));
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(f), _mm256_extractf128_ps(f, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r) + (l.has_m ? _mm_cvtss_f32(_mm_movehdup_ps(sc)) : 0.0f);
}

/* Pairs of blocks alternate between two accumulators, so consecutive FMAs do not wait on
 * each other. */
AR_INLINE float vec_dot(ar_type t, int64_t n, const void *vw, const void *vx) {
    const int size = layout_of(t).size;
    const uint8_t *w = vw;
    const ar_block_q8a *x = vx;
    const int64_t nb = n / AR_QK8A;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    __m128 acc_m = _mm_setzero_ps(); /* lanes 1, 3: the mw * s terms */
    int64_t ib = 0;
    for (; ib + 3 < nb; ib += 4, w += 4 * size) {
        acc0 = pair_fma(t, w, &x[ib], acc0, &acc_m);
        acc1 = pair_fma(t, w + 2 * size, &x[ib + 2], acc1, &acc_m);
    }
    if (ib + 1 < nb) {
        acc0 = pair_fma(t, w, &x[ib], acc0, &acc_m);
        ib += 2, w += 2 * size;
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    const __m128 m = _mm_movehdup_ps(acc_m);
    sum += _mm_cvtss_f32(_mm_add_ss(m, _mm_movehl_ps(m, m)));
    if (ib < nb) sum += block_dot(t, w, &x[ib]);
    return sum;
}

static float vec_dot_q4_0(int64_t n, const void *w, const void *x) {
    return vec_dot(AR_TYPE_Q4_0, n, w, x);
}
static float vec_dot_q4_1(int64_t n, const void *w, const void *x) {
    return vec_dot(AR_TYPE_Q4_1, n, w, x);
}
static float vec_dot_q5_0(int64_t n, const void *w, const void *x) {
    return vec_dot(AR_TYPE_Q5_0, n, w, x);
}
static float vec_dot_q5_1(int64_t n, const void *w, const void *x) {
    return vec_dot(AR_TYPE_Q5_1, n, w, x);
}
static float vec_dot_q8_0(int64_t n, const void *w, const void *x) {
    return vec_dot(AR_TYPE_Q8_0, n, w, x);
}

/* --- Table ------------------------------------------------------------------------------- */

void ar_kernels_fill_q32_avx512(ar_kernels *k) {
    k->quantize_q8a = quantize_q8a;
    k->vec_dot[AR_TYPE_Q4_0] = vec_dot_q4_0;
    k->vec_dot[AR_TYPE_Q4_1] = vec_dot_q4_1;
    k->vec_dot[AR_TYPE_Q5_0] = vec_dot_q5_0;
    k->vec_dot[AR_TYPE_Q5_1] = vec_dot_q5_1;
    k->vec_dot[AR_TYPE_Q8_0] = vec_dot_q8_0;
}
