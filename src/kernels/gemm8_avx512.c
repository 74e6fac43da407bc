/*
 * gemm8_avx512.c - the fast precision's lane form for AVX-512 (F, BW, VL, DQ, VNNI): the
 * activation quantizer, vec_dot8 on Q4_K / Q6_K / Q8_0 rows as stored (decode and few
 * tokens), and the GEMM form (pack8, pack8x, gemm8) for prefill. Every result is
 * bit-identical to the scalar reference (gemm8_scalar.c, which defines the form).
 *
 * vec_dot8. A 256-element block is unpacked into four registers of unsigned bytes in element
 * order, z[g] = elements 64g..64g+63, and each is multiplied with the natural-order
 * activations by one vpdpbusd (u8 x s8, four products per int32 lane). Every int32 lane then
 * holds part of one sub-block's sum; reduce16() adds the four registers' lanes: unpack/add
 * of 32-bit then 64-bit pairs leaves in every 128-bit quarter q the sums of [z0, z1, z2, z3]
 * over that quarter, i.e. of 16-element sub-blocks q, 4 + q, 8 + q, 12 + q (sigma16); for
 * 32-element sub-blocks (two quarters each) reduce8() adds neighbouring quarters, leaving
 * sub-blocks 0, 2, 4, 6, 1, 3, 5, 7 (sigma8) in 8 lanes, and two blocks make the 16 lanes of
 * a group. Integer sums are exact in any order, so these are the reference's isum. The
 * per-lane floats (scale, min from the weights; dx, xs from the activations) are put in the
 * same lane order by byte or dword permutes, and the two fused steps and the final sum are
 * the reference's operations.
 *
 * The GEMM form. pack8 / pack8x store the same natural registers in chunk layout (to_chunks:
 * each output register takes its dwords from all four inputs, two vpermt2d and a blend; for
 * 32-element lanes the two blocks' chunks are then interleaved by 256-bit halves). gemm8
 * then needs no reduction: per chunk, one load per weight row and per token and one vpdpbusd
 * per (row, token) into that pair's 16 int32 lanes, and per lane group the two fused steps
 * into the pair's float lanes: 8 vpdpbusd per 4 float operations with 32-element lanes, 4
 * with 16-element ones. Micro-tiles of GEMM_NW rows x GEMM_NX tokens keep their int32 and
 * float accumulators in registers; passes of GEMM_KC groups over GEMM_GW rows x GEMM_GX
 * tokens keep the pass's packed rows and activations in L1 (the float accumulators wait in
 * a buffer between passes: storing and reloading them is exact).
 */
#include "kernels/kernels.h"

#include "kernels/q8_avx512.h"
#include "kernels/qk_simd.h"
#include "kernels/quant.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

INLINE __m512i load512(const void *p) {
    return _mm512_loadu_si512(p);
}

/* --- Activations ----------------------------------------------------------------------------- */

static void quantize_a8(const float *x, void *vy, int64_t n) {
    ar_block_a8 *y = vy;
    for (int64_t ib = 0; ib < n / QK_K; ib++, x += QK_K) {
        ar_block_a8 *b = &y[ib];
        int32_t sum16[16];
        for (int j = 0; j < 8; j++) {
            __m512i q0, q1;
            b->d[j] = ar_quantize32_512(x + 32 * j, &q0, &q1);
            _mm_storeu_si128((__m128i *)(void *)(b->qs + 32 * j), _mm512_cvtepi32_epi8(q0));
            _mm_storeu_si128((__m128i *)(void *)(b->qs + 32 * j + 16), _mm512_cvtepi32_epi8(q1));
            sum16[2 * j] = _mm512_reduce_add_epi32(q0);
            sum16[2 * j + 1] = _mm512_reduce_add_epi32(q1);
        }
        for (int j = 0; j < 8; j++) b->s32[j] = b->d[j] * (float)(sum16[2 * j] + sum16[2 * j + 1]);
        for (int j = 0; j < 16; j++) b->s16[j] = b->d[j / 2] * (float)sum16[j];
    }
}

/* --- Natural-order registers of a weight block ----------------------------------------------- */

/* Q4_K: z[g] = nibbles of qs[32g .. 32g + 31], low ones then high ones. */
INLINE void natural_q4_k(const uint8_t *w, __m512i z[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int g = 0; g < 4; g++) {
        const __m256i q = loadu256(w + 16 + 32 * g);
        z[g] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(q, m4)),
                                  _mm256_and_si256(_mm256_srli_epi16(q, 4), m4), 1);
    }
}

/* Q6_K: per half h, elements 128h + 0..63 from the low nibbles of ql and qh bits 0..3,
 * elements 128h + 64..127 from the high nibbles and qh bits 4..7. */
INLINE void natural_q6_k(const uint8_t *w, __m512i z[4]) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), m3 = _mm512_set1_epi8(3);
    for (int h = 0; h < 2; h++) {
        const __m512i ql = load512(w + 64 * h);
        const __m256i qh = loadu256(w + 128 + 32 * h);
        const __m512i qa =
            _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
        const __m512i qb = _mm512_srli_epi16(qa, 4);
        z[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, m4),
                                   _mm512_slli_epi16(_mm512_and_si512(qa, m3), 4));
        z[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                       _mm512_slli_epi16(_mm512_and_si512(qb, m3), 4));
    }
}

/* Q8_0: eight blocks of 34 bytes; u = q + 128. */
INLINE void natural_q8_0(const uint8_t *w, __m512i z[4]) {
    const __m512i bias = _mm512_set1_epi8(-128);
    for (int g = 0; g < 4; g++) {
        const uint8_t *b = w + 2 * g * sizeof(block_q8_0);
        const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(loadu256(b + 2)),
                                             loadu256(b + sizeof(block_q8_0) + 2), 1);
        z[g] = _mm512_xor_si512(q, bias);
    }
}

/* Per-lane scales and minimums of one block: 32-element sub-blocks in sigma8's order (8
 * lanes), or Q6_K's 16 in sigma16's. */
INLINE void scales_q4_k(const uint8_t *w, __m256 *scale, __m256 *min) {
    const __m128i sm =
        _mm_shuffle_epi8(unpack_scales_k4(loadu128(w)),
                         _mm_setr_epi8(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15));
    *scale =
        _mm256_mul_ps(_mm256_set1_ps(load_fp16(w)), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sm)));
    *min = _mm256_mul_ps(_mm256_set1_ps(load_fp16(w + 2)),
                         _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8))));
}

INLINE int ld16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

INLINE void scales_q8_0(const uint8_t *w, __m256 *scale, __m256 *min) {
    /* the blocks' float16 d in sigma8's order (blocks 0, 2, 4, 6, 1, 3, 5, 7), inserted
     * straight from memory */
    __m128i h = _mm_setzero_si128();
#define D_AT(j) ld16(w + (j) * sizeof(block_q8_0))
    h = _mm_insert_epi16(h, D_AT(0), 0);
    h = _mm_insert_epi16(h, D_AT(2), 1);
    h = _mm_insert_epi16(h, D_AT(4), 2);
    h = _mm_insert_epi16(h, D_AT(6), 3);
    h = _mm_insert_epi16(h, D_AT(1), 4);
    h = _mm_insert_epi16(h, D_AT(3), 5);
    h = _mm_insert_epi16(h, D_AT(5), 6);
    h = _mm_insert_epi16(h, D_AT(7), 7);
#undef D_AT
    *scale = _mm256_cvtph_ps(h);
    *min = _mm256_mul_ps(*scale, _mm256_set1_ps(128.0f));
}

INLINE void scales_q6_k(const uint8_t *w, __m512 *scale, __m512 *min) {
    const __m128i sc = _mm_shuffle_epi8(
        loadu128(w + 192), _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    *scale = _mm512_mul_ps(_mm512_set1_ps(load_fp16(w + 208)),
                           _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc)));
    *min = _mm512_mul_ps(*scale, _mm512_set1_ps(32.0f));
}

/* --- vec_dot8 --------------------------------------------------------------------------------- */

/* Lane sums of four registers of products: quarter q of the result is [z0, z1, z2, z3] each
 * summed over its quarter q (sigma16's order). */
INLINE __m512i reduce16(const __m512i z[4]) {
    const __m512i x =
        _mm512_add_epi32(_mm512_unpacklo_epi32(z[0], z[1]), _mm512_unpackhi_epi32(z[0], z[1]));
    const __m512i y =
        _mm512_add_epi32(_mm512_unpacklo_epi32(z[2], z[3]), _mm512_unpackhi_epi32(z[2], z[3]));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(x, y), _mm512_unpackhi_epi64(x, y));
}

/* 32-element sub-blocks (two quarters each): neighbouring quarters added, sigma8's order. */
INLINE __m256i reduce8(const __m512i z[4]) {
    const __m512i v = reduce16(z);
    const __m512i w = _mm512_add_epi32(v, _mm512_shuffle_i32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm512_castsi512_si256(_mm512_shuffle_i32x4(w, w, _MM_SHUFFLE(3, 1, 2, 0)));
}

INLINE __m512 step16(__m512 acc, __m512i isum, __m512 scale, __m512 min, __m512 dx, __m512 xs) {
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(scale, dx), acc);
    return _mm512_fnmadd_ps(min, xs, acc);
}

INLINE float hsum512(__m512 v) {
    return hsum256(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}

INLINE __m512i sigma16(void) {
    return _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
}

INLINE __m256 sigma8_ps(const float *v) {
    return _mm256_permutexvar_ps(_mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7), _mm256_loadu_ps(v));
}

INLINE __m512 join(__m256 a, __m256 b) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(a), b, 1);
}

enum { T_Q4_K, T_Q6_K, T_Q8_0 };

INLINE size_t block_bytes(int t) {
    return t == T_Q4_K   ? sizeof(block_q4_K)
           : t == T_Q6_K ? sizeof(block_q6_K)
                         : 8 * sizeof(block_q8_0);
}

INLINE void natural(int t, const uint8_t *w, __m512i z[4]) {
    if (t == T_Q4_K)
        natural_q4_k(w, z);
    else if (t == T_Q6_K)
        natural_q6_k(w, z);
    else
        natural_q8_0(w, z);
}

INLINE void scales8(int t, const uint8_t *w, __m256 *scale, __m256 *min) {
    if (t == T_Q4_K)
        scales_q4_k(w, scale, min);
    else
        scales_q8_0(w, scale, min);
}

/* 32-element lanes, one block: its 8 lane sums with activation block x. */
INLINE __m256i sums8(int t, const uint8_t *w, const ar_block_a8 *x) {
    __m512i u[4], z[4];
    natural(t, w, u);
    for (int g = 0; g < 4; g++)
        z[g] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[g], load512(x->qs + 64 * g));
    return reduce8(z);
}

INLINE float dot8_l32(int t, int64_t n, const uint8_t *w, const ar_block_a8 *x) {
    const int64_t nblk = n / QK_K;
    const size_t bytes = block_bytes(t);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t ib = 0; ib < nblk; ib += 2) {
        const uint8_t *wa = w + (size_t)ib * bytes;
        const ar_block_a8 *xa = x + ib;
        __m256 sa, ma, sb = _mm256_setzero_ps(), mb = sb, db = sb, xb = sb;
        __m256i ia = sums8(t, wa, xa), ib_sums = _mm256_setzero_si256();
        scales8(t, wa, &sa, &ma);
        if (ib + 1 < nblk) {
            ib_sums = sums8(t, wa + bytes, xa + 1);
            scales8(t, wa + bytes, &sb, &mb);
            db = sigma8_ps(xa[1].d);
            xb = sigma8_ps(xa[1].s32);
        }
        const __m512i isum = _mm512_inserti64x4(_mm512_castsi256_si512(ia), ib_sums, 1);
        acc = step16(acc, isum, join(sa, sb), join(ma, mb), join(sigma8_ps(xa->d), db),
                     join(sigma8_ps(xa->s32), xb));
    }
    return hsum512(acc);
}

static float vec_dot8_q4_k(int64_t n, const void *w, const void *x) {
    return dot8_l32(T_Q4_K, n, w, x);
}

static float vec_dot8_q8_0(int64_t n, const void *w, const void *x) {
    return dot8_l32(T_Q8_0, n, w, x);
}

/* The activations' dx and xs of a natural block in sigma16's lane order. */
INLINE __m512 lane_dx16(const ar_block_a8 *a) {
    return _mm512_permutexvar_ps(_mm512_srli_epi32(sigma16(), 1),
                                 _mm512_castps256_ps512(_mm256_loadu_ps(a->d)));
}
INLINE __m512 lane_xs16(const ar_block_a8 *a) {
    return _mm512_permutexvar_ps(sigma16(), _mm512_loadu_ps(a->s16));
}

static float vec_dot8_q6_k(int64_t n, const void *vw, const void *vx) {
    const uint8_t *w = vw;
    const ar_block_a8 *x = vx;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q6_K), x++) {
        __m512i u[4], z[4];
        natural_q6_k(w, u);
        for (int g = 0; g < 4; g++)
            z[g] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[g], load512(x->qs + 64 * g));
        __m512 scale, min;
        scales_q6_k(w, &scale, &min);
        acc = step16(acc, reduce16(z), scale, min, lane_dx16(x), lane_xs16(x));
    }
    return hsum512(acc);
}

/* --- GEMM form: packing ------------------------------------------------------------------------
 */

/* Natural registers z[0..3] of one block into chunk layout, out[k] = 64 bytes. 16-element
 * lanes: chunk k's lane L is dword 4 (L / 4) + k of z[L % 4]. 32-element lanes (8 lanes of
 * 32 bytes per chunk): out[k] holds chunks 2k and 2k + 1, lane L (< 8) of chunk c being
 * dword 8 (L / 4) + c of z[L % 4]. */
INLINE void to_chunks(int len, const __m512i z[4], __m512i out[4]) {
    __m512i idx = len == 16
                      ? _mm512_setr_epi32(0, 16, 0, 16, 4, 20, 4, 20, 8, 24, 8, 24, 12, 28, 12, 28)
                      : _mm512_setr_epi32(0, 16, 0, 16, 8, 24, 8, 24, 1, 17, 1, 17, 9, 25, 9, 25);
    const __m512i step = _mm512_set1_epi32(len == 16 ? 1 : 2);
    for (int k = 0; k < 4; k++, idx = _mm512_add_epi32(idx, step)) {
        const __m512i lo = _mm512_permutex2var_epi32(z[0], idx, z[1]);
        const __m512i hi = _mm512_permutex2var_epi32(z[2], idx, z[3]);
        out[k] = _mm512_mask_blend_epi32(0xcccc, lo, hi);
    }
}

/* 32-element lanes: blocks A and B in chunk layout (a[k], b[k] from to_chunks) into the
 * group's 8 chunks: chunk c = A's chunk c in lanes 0..7, B's in lanes 8..15. */
INLINE void store_pairs(const __m512i a[4], const __m512i b[4], void *out) {
    for (int k = 0; k < 4; k++) {
        _mm512_storeu_si512((uint8_t *)out + 128 * k,
                            _mm512_shuffle_i64x2(a[k], b[k], _MM_SHUFFLE(1, 0, 1, 0)));
        _mm512_storeu_si512((uint8_t *)out + 128 * k + 64,
                            _mm512_shuffle_i64x2(a[k], b[k], _MM_SHUFFLE(3, 2, 3, 2)));
    }
}

INLINE void pack_l32(int t, int64_t n, const uint8_t *w, ar_block_w8 *out) {
    const int64_t nblk = n / QK_K;
    const size_t bytes = block_bytes(t);
    for (int64_t ib = 0; ib < nblk; ib += 2, out++) {
        __m512i z[4], a[4], b[4];
        __m256 sa, ma, sb = _mm256_setzero_ps(), mb = sb;
        natural(t, w + (size_t)ib * bytes, z);
        to_chunks(32, z, a);
        scales8(t, w + (size_t)ib * bytes, &sa, &ma);
        for (int k = 0; k < 4; k++) b[k] = _mm512_setzero_si512();
        if (ib + 1 < nblk) {
            natural(t, w + (size_t)(ib + 1) * bytes, z);
            to_chunks(32, z, b);
            scales8(t, w + (size_t)(ib + 1) * bytes, &sb, &mb);
        }
        store_pairs(a, b, out->u);
        _mm512_storeu_ps(out->scale, join(sa, sb));
        _mm512_storeu_ps(out->min, join(ma, mb));
    }
}

static void pack8_q4_k(int64_t n, const void *w, ar_block_w8 *out) {
    pack_l32(T_Q4_K, n, w, out);
}

static void pack8_q8_0(int64_t n, const void *w, ar_block_w8 *out) {
    pack_l32(T_Q8_0, n, w, out);
}

static void pack8_q6_k(int64_t n, const void *vw, ar_block_w8 *out) {
    const uint8_t *w = vw;
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q6_K), out++) {
        __m512i z[4], c[4];
        __m512 scale, min;
        natural_q6_k(w, z);
        to_chunks(16, z, c);
        for (int k = 0; k < 4; k++) {
            _mm512_storeu_si512(out->u + 64 * k, c[k]);
            _mm512_storeu_si512(out->u + 256 + 64 * k, _mm512_setzero_si512());
        }
        scales_q6_k(w, &scale, &min);
        _mm512_storeu_ps(out->scale, scale);
        _mm512_storeu_ps(out->min, min);
    }
}

static void pack8x(int64_t n, const ar_block_a8 *x, int len, ar_block_x8 *out) {
    const int64_t nblk = n / QK_K;
    for (int64_t ib = 0; ib < nblk; ib += len == 32 ? 2 : 1, out++) {
        __m512i z[4], a[4], b[4];
        for (int g = 0; g < 4; g++) z[g] = load512(x[ib].qs + 64 * g);
        to_chunks(len, z, a);
        if (len == 16) {
            for (int k = 0; k < 4; k++) {
                _mm512_storeu_si512(out->qs + 64 * k, a[k]);
                _mm512_storeu_si512(out->qs + 256 + 64 * k, _mm512_setzero_si512());
            }
            _mm512_storeu_ps(out->dx, lane_dx16(&x[ib]));
            _mm512_storeu_ps(out->xs, lane_xs16(&x[ib]));
            continue;
        }
        __m256 db = _mm256_setzero_ps(), xb = db;
        for (int k = 0; k < 4; k++) b[k] = _mm512_setzero_si512();
        if (ib + 1 < nblk) {
            for (int g = 0; g < 4; g++) z[g] = load512(x[ib + 1].qs + 64 * g);
            to_chunks(32, z, b);
            db = sigma8_ps(x[ib + 1].d);
            xb = sigma8_ps(x[ib + 1].s32);
        }
        store_pairs(a, b, out->qs);
        _mm512_storeu_ps(out->dx, join(sigma8_ps(x[ib].d), db));
        _mm512_storeu_ps(out->xs, join(sigma8_ps(x[ib].s32), xb));
    }
}

/* --- GEMM form: products -----------------------------------------------------------------------
 */

#define GEMM_NW 4  /* weight rows per micro-tile */
#define GEMM_NX 3  /* tokens per micro-tile */
#define GEMM_KC 4  /* lane groups per pass over a group of rows and tokens */
#define GEMM_GW 8  /* weight rows per group */
#define GEMM_GX 32 /* tokens per group */

/* Lane groups [ib0, ib1) of rows w + r * ws x tokens x + t * xs (r < nw, t < nx, nc chunks
 * per group: compile-time constants at every call). Accumulators from / to
 * accbuf[t * GEMM_GW + r] (zero when ib0 is 0), or reduced into y when ib1 is the last. */
INLINE void tile(int nc, const ar_block_w8 *w, size_t ws, int nw, const ar_block_x8 *x, size_t xs,
                 int nx, int64_t ib0, int64_t ib1, int64_t nblk, __m512 *accbuf, float *y,
                 size_t ldy) {
    __m512 acc[GEMM_NW][GEMM_NX];
    for (int r = 0; r < nw; r++)
        for (int t = 0; t < nx; t++)
            acc[r][t] = ib0 ? accbuf[t * GEMM_GW + r] : _mm512_setzero_ps();
    for (int64_t ib = ib0; ib < ib1; ib++) {
        const ar_block_w8 *wb[GEMM_NW];
        const ar_block_x8 *xb[GEMM_NX];
        __m512i s[GEMM_NW][GEMM_NX];
        for (int r = 0; r < nw; r++) wb[r] = w + (size_t)r * ws + ib;
        for (int t = 0; t < nx; t++) xb[t] = x + (size_t)t * xs + ib;
        for (int r = 0; r < nw; r++)
            for (int t = 0; t < nx; t++) s[r][t] = _mm512_setzero_si512();
        for (int c = 0; c < nc; c++) {
            __m512i wv[GEMM_NW];
            for (int r = 0; r < nw; r++) {
                wv[r] = load512(wb[r]->u + 64 * c);
                __asm__("" : "+v"(wv[r])); /* one load per row and chunk, not per pair */
            }
            for (int t = 0; t < nx; t++) {
                const __m512i xv = load512(xb[t]->qs + 64 * c);
                for (int r = 0; r < nw; r++) s[r][t] = _mm512_dpbusd_epi32(s[r][t], wv[r], xv);
            }
        }
        for (int t = 0; t < nx; t++) {
            const __m512 dx = _mm512_loadu_ps(xb[t]->dx), xsum = _mm512_loadu_ps(xb[t]->xs);
            for (int r = 0; r < nw; r++)
                acc[r][t] = step16(acc[r][t], s[r][t], _mm512_loadu_ps(wb[r]->scale),
                                   _mm512_loadu_ps(wb[r]->min), dx, xsum);
        }
    }
    for (int r = 0; r < nw; r++)
        for (int t = 0; t < nx; t++) {
            if (ib1 == nblk)
                y[(size_t)t * ldy + (size_t)r] = hsum512(acc[r][t]);
            else
                accbuf[t * GEMM_GW + r] = acc[r][t];
        }
}

/* Every (row, token): groups of GEMM_GW rows x GEMM_GX tokens, passes of GEMM_KC lane groups,
 * each over all the group's micro-tiles (tokens outer). Edge tiles get their own constant
 * counts. */
INLINE void gemm(int nc, int64_t nblk, const ar_block_w8 *w, size_t ws, int nw,
                 const ar_block_x8 *x, size_t xs, int nx, float *y, size_t ldy) {
    __m512 accbuf[GEMM_GW * GEMM_GX];
    for (int gx = 0; gx < nx; gx += GEMM_GX) {
        const int ex = nx - gx < GEMM_GX ? nx - gx : GEMM_GX;
        for (int gw = 0; gw < nw; gw += GEMM_GW) {
            const int ew = nw - gw < GEMM_GW ? nw - gw : GEMM_GW;
            for (int64_t ib0 = 0; ib0 < nblk; ib0 += GEMM_KC) {
                const int64_t ib1 = nblk - ib0 < GEMM_KC ? nblk : ib0 + GEMM_KC;
                for (int t = 0; t < ex; t += GEMM_NX) {
                    const int mx = ex - t < GEMM_NX ? ex - t : GEMM_NX;
                    for (int r = 0; r < ew; r += GEMM_NW) {
                        const int mw = ew - r < GEMM_NW ? ew - r : GEMM_NW;
                        const ar_block_w8 *wr = w + (size_t)(gw + r) * ws;
                        const ar_block_x8 *xt = x + (size_t)(gx + t) * xs;
                        float *yt = y + (size_t)(gx + t) * ldy + (size_t)(gw + r);
                        __m512 *ab = accbuf + t * GEMM_GW + r;
#define TILE(a, b) tile(nc, wr, ws, a, xt, xs, b, ib0, ib1, nblk, ab, yt, ldy)
                        switch ((mw - 1) * GEMM_NX + (mx - 1)) {
                        case 0: TILE(1, 1); break;
                        case 1: TILE(1, 2); break;
                        case 2: TILE(1, 3); break;
                        case 3: TILE(2, 1); break;
                        case 4: TILE(2, 2); break;
                        case 5: TILE(2, 3); break;
                        case 6: TILE(3, 1); break;
                        case 7: TILE(3, 2); break;
                        case 8: TILE(3, 3); break;
                        case 9: TILE(4, 1); break;
                        case 10: TILE(4, 2); break;
                        default: TILE(4, 3); break;
                        }
#undef TILE
                    }
                }
            }
        }
    }
}

static void gemm8_l32(int64_t n, const ar_block_w8 *w, size_t ws, int nw, const ar_block_x8 *x,
                      size_t xs, int nx, float *y, size_t ldy) {
    gemm(8, ar_lane_groups(n, 32), w, ws, nw, x, xs, nx, y, ldy);
}

static void gemm8_l16(int64_t n, const ar_block_w8 *w, size_t ws, int nw, const ar_block_x8 *x,
                      size_t xs, int nx, float *y, size_t ldy) {
    gemm(4, ar_lane_groups(n, 16), w, ws, nw, x, xs, nx, y, ldy);
}

static void gemm8(int64_t n, const ar_block_w8 *w, size_t ws, int nw, const ar_block_x8 *x,
                  size_t xs, int nx, int len, float *y, size_t ldy) {
    if (len == 32)
        gemm8_l32(n, w, ws, nw, x, xs, nx, y, ldy);
    else
        gemm8_l16(n, w, ws, nw, x, xs, nx, y, ldy);
}

/* --- Table --------------------------------------------------------------------------------------
 */

void ar_kernels_fill_gemm8_avx512(ar_kernels *k) {
    k->vec_dot8[AR_TYPE_Q4_K] = vec_dot8_q4_k;
    k->vec_dot8[AR_TYPE_Q6_K] = vec_dot8_q6_k;
    k->vec_dot8[AR_TYPE_Q8_0] = vec_dot8_q8_0;
    k->pack8[AR_TYPE_Q4_K] = pack8_q4_k;
    k->pack8[AR_TYPE_Q6_K] = pack8_q6_k;
    k->pack8[AR_TYPE_Q8_0] = pack8_q8_0;
    k->quantize_a8 = quantize_a8;
    k->pack8x = pack8x;
    k->gemm8 = gemm8;
}
