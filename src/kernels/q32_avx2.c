/*
 * q32_avx2.c - AVX2 (+FMA, F16C) versions of the q32 kernels: the activation quantizer
 * and the dot products of Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 rows with Q8A activations.
 * The scalar reference and the definition of every result are in q32_scalar.c.
 *
 * Dot products, in the manner of llama.cpp's x86 kernels, two blocks of 32 per loop step,
 * and one weight row with up to AR_MAX_NR activation rows at once (vec_dot_n; vec_dot is
 * the same code for one row):
 *  - the weights are unpacked once for all rows to 32 bytes in element order (bytes 0..15
 *    the low nibbles, 16..31 the high nibbles, bit 4 of Q5 from qh spread with a byte
 *    shuffle and compare), with their scales (one F16C conversion for both blocks);
 *  - per activation row, _mm256_maddubs_epi16 multiplies unsigned weight bytes with the
 *    signed activations and adds pairs to int16, _mm256_madd_epi16 adds pairs of those to
 *    8 int32 lanes. Offset types (Q4_0 q - 8, Q5_0 q - 16) subtract maddubs(offset, a) in
 *    int16 first; Q8_0 weights are signed, so they go in as |w| with the activations' signs
 *    flipped where w is negative. No int16 sum can saturate: activations are in -127..127
 *    (q32_scalar.c), so the largest pair is 2 * 128 * 127 = 32512;
 *  - the 8 exact int32 partial sums are converted to float and multiplied-added with the
 *    block's scale dw * d into one of two float accumulators (one per block of the step,
 *    so consecutive FMAs do not wait on each other). Both blocks' scales dw * d come from
 *    one multiply per row; the "_1" types' mw * s terms ride along in the same vector and
 *    collect in a separate accumulator.
 * A row's float operations are the same whatever the number of rows, so vec_dot_n gives
 * each row the bits vec_dot gives it alone. Only the order of the float additions differs
 * from the reference.
 *
 * The quantizer reproduces the reference bit for bit: the same float32 divisions for d and
 * 1 / d, an exact product x * id, and round-half-away-from-zero built from truncation
 * (t = trunc(v); v - t is exact; add sign(v) when |v - t| >= 0.5) rather than the rounding
 * mode's ties-to-even.
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

/* --- Helpers ----------------------------------------------------------------------------- */

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

static inline int32_t hmax_epi32(__m256i v) {
    __m128i s = _mm_max_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_max_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_max_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* 16 bytes of nibbles at p -> 32 bytes 0..15 in element order (low nibbles first). */
static inline __m256i unpack_nibbles(const uint8_t *p) {
    const __m128i t = _mm_loadu_si128((const __m128i *)p);
    const __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0f));
}

/* The 32 bits of qh at p -> 32 bytes, 0x10 where the element's bit is set, else 0. */
static inline __m256i spread_bit4(const uint8_t *p) {
    uint32_t qh;
    memcpy(&qh, p, sizeof qh);
    /* byte j <- byte j / 8 of qh, then test bit j % 8 */
    const __m256i which = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                           2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201);
    const __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), which);
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(b, bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

/* 8 int32 partial sums of q[i] * a[i] for unsigned q (0..31) and activations a. */
static inline __m256i dot_u8(__m256i q, __m256i a) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), _mm256_set1_epi16(1));
}

/* The same for (q[i] - off) * a[i]: the offset comes off in int16 before the pair sums. */
static inline __m256i dot_u8_off(__m256i q, __m256i a, __m256i off) {
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, a), _mm256_maddubs_epi16(off, a));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

static inline uint64_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint64_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* [dw0, mw0, dw1, mw1] of the weight blocks at w0, w1 (f16 d, and m when has_m, else 0).
 * The f16 fields are gathered in a general register, which keeps the vector ports free. */
static inline __m128 weight_scales(int has_m, const uint8_t *w0, const uint8_t *w1) {
    const uint64_t h =
        has_m ? load_u32(w0) | load_u32(w1) << 32 : load_u16(w0) | load_u16(w1) << 32;
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h));
}

/* [dw0 * d0, mw0 * s0, dw1 * d1, mw1 * s1]: weight_scales times the activation blocks' (d,
 * s) at x0, x1. */
static inline __m128 pair_scales(__m128 dw, const ar_block_q8a *x0, const ar_block_q8a *x1) {
    const __m128 ds = _mm_loadh_pi(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)&x0->d)),
                                   (const __m64 *)&x1->d);
    return _mm_mul_ps(dw, ds);
}

/* --- Activation quantizer ---------------------------------------------------------------- */

/* roundf() of 8 floats of magnitude below 2^23: halfway cases away from zero. */
static inline __m256i round_away(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 f = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    const __m256 up = _mm256_cmp_ps(f, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 one = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
    return _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, one)));
}

static void quantize_q8a(const float *x, void *vy, int64_t n) {
    ar_block_q8a *y = vy;
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
    for (int64_t ib = 0; ib < n / AR_QK8A; ib++, x += AR_QK8A) {
        __m256 v[4];
        __m256i m = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            v[j] = _mm256_loadu_ps(x + 8 * j);
            /* |x| as integers orders like the floats, with inf and NaN above all finite */
            m = _mm256_max_epi32(m, _mm256_and_si256(_mm256_castps_si256(v[j]), abs_mask));
        }
        const int32_t amax_bits = hmax_epi32(m);
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
        const __m256 id = _mm256_set1_ps(1.0f / d);
        __m256i q[4];
        for (int j = 0; j < 4; j++) q[j] = round_away(_mm256_mul_ps(v[j], id));
        const __m256i sum =
            _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        /* int32 -> int8; the packs interleave 128-bit lanes, the permute restores order */
        const __m256i q16a = _mm256_packs_epi32(q[0], q[1]);
        const __m256i q16b = _mm256_packs_epi32(q[2], q[3]);
        const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16a, q16b),
                                                       _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)b->qs, q8);
        b->d = d;
        b->s = d * (float)hsum_epi32(sum);
    }
}

/* --- Dot products ------------------------------------------------------------------------ */

/* One weight block unpacked: u, the unsigned bytes that multiply the activations (Q4_0 and
 * Q5_0 before their offsets), and for Q8_0 also q, its signed bytes, whose signs go onto
 * the activations (u = |q|). Called with a constant type, so each kernel gets its own
 * copy. */
typedef struct wblock {
    __m256i u, q;
} wblock;

AR_INLINE wblock unpack(ar_type t, const uint8_t *w) {
    wblock b;
    switch (t) {
    case AR_TYPE_Q4_0: b.u = unpack_nibbles(w + offsetof(block_q4_0, qs)); break;
    case AR_TYPE_Q4_1: b.u = unpack_nibbles(w + offsetof(block_q4_1, qs)); break;
    case AR_TYPE_Q5_0:
        b.u = _mm256_or_si256(unpack_nibbles(w + offsetof(block_q5_0, qs)),
                              spread_bit4(w + offsetof(block_q5_0, qh)));
        break;
    case AR_TYPE_Q5_1:
        b.u = _mm256_or_si256(unpack_nibbles(w + offsetof(block_q5_1, qs)),
                              spread_bit4(w + offsetof(block_q5_1, qh)));
        break;
    default: /* Q8_0 */
        b.q = _mm256_loadu_si256((const __m256i *)(w + offsetof(block_q8_0, qs)));
        b.u = _mm256_sign_epi8(b.q, b.q); /* |q|; -128 becomes 0x80 = 128 unsigned */
        return b;
    }
    b.q = b.u;
    return b;
}

/* The 8 exact int32 partial sums of unpacked weight block b times activation block x. */
AR_INLINE __m256i block_dot(ar_type t, wblock b, const ar_block_q8a *x) {
    const __m256i a = _mm256_loadu_si256((const __m256i *)x->qs);
    switch (t) {
    case AR_TYPE_Q4_0: return dot_u8_off(b.u, a, _mm256_set1_epi8(8));
    case AR_TYPE_Q5_0: return dot_u8_off(b.u, a, _mm256_set1_epi8(16));
    case AR_TYPE_Q4_1:
    case AR_TYPE_Q5_1: return dot_u8(b.u, a);
    default: return dot_u8(b.u, _mm256_sign_epi8(a, b.q)); /* Q8_0 */
    }
}

/* Activation block ib of row r; the rows start at x, `stride` bytes apart. */
AR_INLINE const ar_block_q8a *q8a_block(const uint8_t *x, size_t stride, int r, int64_t ib) {
    return (const ar_block_q8a *)(const void *)(x + (size_t)r * stride) + ib;
}

/* ys[r] = the dot product of the weight row w (blocks of bs bytes) with activation row r,
 * for r < nr (a compile-time constant at every call, so the loops over the rows unroll and
 * the per-row accumulators live in registers). Each step unpacks two weight blocks and
 * their scales once, then runs the same per-row code for every row: the two blocks go into
 * two accumulators, so consecutive FMAs do not wait on each other, and the mw * s terms of
 * the "_1" types collect in lanes 1 and 3 of acc_m. A row's float operations do not depend
 * on nr, so ys[r] is bit-identical to nr = 1 on that row alone.
 * (The row loops carry "#pragma GCC unroll": unrolled that early, GCC keeps the per-row
 * arrays in registers; otherwise it stores them to the stack on every step.) */
AR_INLINE void dot_rows(ar_type t, size_t bs, int64_t n, const uint8_t *w, const uint8_t *x,
                        size_t stride, int nr, float *ys) {
    const int has_m = t == AR_TYPE_Q4_1 || t == AR_TYPE_Q5_1;
    const int64_t nb = n / AR_QK8A;
    __m256 acc0[AR_MAX_NR], acc1[AR_MAX_NR];
    __m128 acc_m[AR_MAX_NR];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        acc0[r] = acc1[r] = _mm256_setzero_ps();
        acc_m[r] = _mm_setzero_ps();
    }
    int64_t ib = 0;
    for (; ib + 1 < nb; ib += 2, w += 2 * bs) {
        const __m128 dw = weight_scales(has_m, w, w + bs);
        const wblock b0 = unpack(t, w), b1 = unpack(t, w + bs);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const ar_block_q8a *xr = q8a_block(x, stride, r, ib);
            const __m128 sc = pair_scales(dw, &xr[0], &xr[1]);
            const __m256i p0 = block_dot(t, b0, &xr[0]);
            const __m256i p1 = block_dot(t, b1, &xr[1]);
            acc0[r] = _mm256_fmadd_ps(_mm256_broadcastss_ps(sc), _mm256_cvtepi32_ps(p0), acc0[r]);
            acc1[r] = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehl_ps(sc, sc)),
                                      _mm256_cvtepi32_ps(p1), acc1[r]);
            if (has_m) acc_m[r] = _mm_add_ps(acc_m[r], sc);
        }
    }
    if (ib < nb) { /* an odd last block: scales [dw d, mw s, 0, 0] */
        const __m128 dw = weight_scales(has_m, w, w);
        const wblock b = unpack(t, w);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const ar_block_q8a *xr = q8a_block(x, stride, r, ib);
            const __m128 sc = _mm_movelh_ps(pair_scales(dw, xr, xr), _mm_setzero_ps());
            acc0[r] = _mm256_fmadd_ps(_mm256_broadcastss_ps(sc),
                                      _mm256_cvtepi32_ps(block_dot(t, b, xr)), acc0[r]);
            if (has_m) acc_m[r] = _mm_add_ps(acc_m[r], sc);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        const __m128 m = _mm_movehdup_ps(acc_m[r]); /* lanes 1 and 3 to 0 and 2 */
        ys[r] = hsum_ps(_mm256_add_ps(acc0[r], acc1[r])) +
                _mm_cvtss_f32(_mm_add_ss(m, _mm_movehl_ps(m, m)));
    }
}

/* vec_dot is dot_rows with nr = 1, and vec_dot_n with nr = 1 is vec_dot itself: one
 * implementation. */
#define DEFINE_DOTS(name, type, block)                                                             \
    static float vec_dot_##name(int64_t n, const void *w, const void *x) {                         \
        float y;                                                                                   \
        dot_rows(type, sizeof(block), n, w, x, 0, 1, &y);                                          \
        return y;                                                                                  \
    }                                                                                              \
    static void vec_dot_n_##name(int64_t n, const void *w, const void *x, size_t stride, int nr,   \
                                 float *ys) {                                                      \
        switch (nr) {                                                                              \
        case 1: ys[0] = vec_dot_##name(n, w, x); return;                                           \
        case 2: dot_rows(type, sizeof(block), n, w, x, stride, 2, ys); return;                     \
        case 3: dot_rows(type, sizeof(block), n, w, x, stride, 3, ys); return;                     \
        default: dot_rows(type, sizeof(block), n, w, x, stride, AR_MAX_NR, ys); return;            \
        }                                                                                          \
    }

DEFINE_DOTS(q4_0, AR_TYPE_Q4_0, block_q4_0)
DEFINE_DOTS(q4_1, AR_TYPE_Q4_1, block_q4_1)
DEFINE_DOTS(q5_0, AR_TYPE_Q5_0, block_q5_0)
DEFINE_DOTS(q5_1, AR_TYPE_Q5_1, block_q5_1)
DEFINE_DOTS(q8_0, AR_TYPE_Q8_0, block_q8_0)

/* --- Table ------------------------------------------------------------------------------- */

void ar_kernels_fill_q32_avx2(ar_kernels *k) {
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
