/*
 * qk_simd.h - helpers shared by the SIMD k-quant kernels (qk_avx2.c, qk_avx512.c); private
 * to those two files.
 *
 * Everything here is static inline and uses only intrinsics that qk_avx2.c's flags allow
 * (AVX2, FMA, F16C), so both files can include it: small loads, the float16 super-scale,
 * the sum of a 256-bit float register, the Q8K block of an activation row, the unpacking
 * of the packed Q3_K and Q4_K/Q5_K sub-block scales, and QK_DEFINE_DOTS, which makes a
 * type's vec_dot and vec_dot_n out of one kernel body.
 */
#ifndef AR_KERNELS_QK_SIMD_H
#define AR_KERNELS_QK_SIMD_H

#include "kernels/kernels.h"

#include <immintrin.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

INLINE float load_fp16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

INLINE __m128i loadu128(const void *p) {
    return _mm_loadu_si128((const __m128i *)p);
}

INLINE __m256i loadu256(const void *p) {
    return _mm256_loadu_si256((const __m256i *)p);
}

/* The sum of the 8 floats of v: halves added, then pairs, then the last two. */
INLINE float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Block `ib` of activation row `r`; the rows start at x, `stride` bytes apart. */
INLINE const ar_block_q8k *q8k_block(const uint8_t *x, size_t stride, int r, int64_t ib) {
    return (const ar_block_q8k *)(const void *)(x + (size_t)r * stride) + ib;
}

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

/* Byte-shuffle control for a 256-bit register with unpack_scales_k4's result in both
 * halves: gives the 8 mins as int16, each twice (m0 m0 m1 m1 .. m3 m3 | m4 m4 .. m7 m7),
 * to multiply with the 16 bsums. */
INLINE __m256i mins_dup_k4(void) {
    return _mm256_setr_epi8(8, -128, 8, -128, 9, -128, 9, -128, 10, -128, 10, -128, 11, -128, 11,
                            -128, 12, -128, 12, -128, 13, -128, 13, -128, 14, -128, 14, -128, 15,
                            -128, 15, -128);
}

/*
 * One kernel body, two entry points. BODY(n, w, x, stride, nr, ys) is an always-inline
 * function that takes one weight row and nr activation rows; it unpacks each weight block
 * once and then runs the same per-row code nr times, with nr a compile-time constant at
 * each call below (so its loops over the rows unroll and its per-row arrays live in
 * registers). vec_dot is BODY with nr = 1, and vec_dot_n with nr = 1 is vec_dot itself,
 * so no second implementation exists: a row's float operations are the same sequence
 * whatever nr is, and ys[r] is bit-identical to vec_dot on row r alone. nr is 1..AR_MAX_NR
 * by contract; the default case is AR_MAX_NR.
 */
#define QK_DEFINE_DOTS(name, BODY)                                                                 \
    static float vec_dot_##name(int64_t n, const void *w, const void *x) {                         \
        float y;                                                                                   \
        BODY(n, (const uint8_t *)w, (const uint8_t *)x, 0, 1, &y);                                 \
        return y;                                                                                  \
    }                                                                                              \
    static void vec_dot_n_##name(int64_t n, const void *w, const void *x, size_t stride, int nr,   \
                                 float *ys) {                                                      \
        switch (nr) {                                                                              \
        case 1: ys[0] = vec_dot_##name(n, w, x); return;                                           \
        case 2: BODY(n, (const uint8_t *)w, (const uint8_t *)x, stride, 2, ys); return;            \
        case 3: BODY(n, (const uint8_t *)w, (const uint8_t *)x, stride, 3, ys); return;            \
        default: BODY(n, (const uint8_t *)w, (const uint8_t *)x, stride, AR_MAX_NR, ys); return;   \
        }                                                                                          \
    }

#endif
