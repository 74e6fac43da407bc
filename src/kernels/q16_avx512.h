/*
 * q16_avx512.h - helpers shared by the AVX-512 files of the k-quants' accurate path
 * (q16_avx512.c: vec_dot16; gemm16_avx512.c: pack16 and gemm16): loads, the byte-shuffle
 * controls that spread sub-block scales over int16 lanes, and the per-block float steps
 * (flush, flush_min) whose exact sequence of operations both kernels must share so that
 * their results are bit-identical. Include only from files compiled with the AVX-512
 * flags (CMakeLists.txt).
 */
#ifndef AR_KERNELS_Q16_AVX512_H
#define AR_KERNELS_Q16_AVX512_H

#include "kernels/kernels.h"
#include "kernels/qk_simd.h"

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

INLINE __m512i loadu512(const void *p) {
    return _mm512_loadu_si512(p);
}

/* 32 bytes at p, zero-extended to 32 int16 lanes (vpmovzxbw from memory). */
INLINE __m512i zx32(const uint8_t *p) {
    return _mm512_cvtepu8_epi16(loadu256(p));
}

/* Block ib of activation row r (rows `stride` bytes apart), as bytes. */
INLINE const uint8_t *q16k_at(const uint8_t *x, size_t stride, int r, int64_t ib) {
    return x + (size_t)r * stride + (size_t)ib * sizeof(ar_block_q16k);
}

INLINE float q16k_d(const uint8_t *b) {
    float d;
    memcpy(&d, b + offsetof(ar_block_q16k, d), sizeof d);
    return d;
}

/* The 16 bsums of block b as floats (exact: |bsum| < 2^18). */
INLINE __m512 q16k_bsums_ps(const uint8_t *b) {
    return _mm512_cvtepi32_ps(loadu512(b + offsetof(ar_block_q16k, bsums)));
}

/* acc + dx * (cvt(sumi) * dv): one row's block without minimum (dv = d in every lane, dx
 * read from the row's block, broadcast straight from memory). */
INLINE __m512 flush(__m512 acc, __m512i sumi, __m512 dv, const uint8_t *xb) {
    return _mm512_fmadd_ps(_mm512_set1_ps(q16k_d(xb)), _mm512_mul_ps(_mm512_cvtepi32_ps(sumi), dv),
                           acc);
}

/* The same with the minimum: acc + dx * (cvt(sumi) * dv - mv * bsums), where mv holds
 * dmin * m of each bsum's sub-block (exact: an 11-bit float16 times a 6-bit integer). */
INLINE __m512 flush_min(__m512 acc, __m512i sumi, __m512 dv, __m512 mv, const uint8_t *xb) {
    const __m512 t =
        _mm512_fnmadd_ps(mv, q16k_bsums_ps(xb), _mm512_mul_ps(_mm512_cvtepi32_ps(sumi), dv));
    return _mm512_fmadd_ps(_mm512_set1_ps(q16k_d(xb)), t, acc);
}

/* The per-row step: sumi[r] += dpwssd(w16, elements 32k..32k+31 of row r's block). */
INLINE void dot_rows(int nr, __m512i *sumi, const uint8_t *const *xb, int k, __m512i w16) {
    for (int r = 0; r < nr; r++)
        sumi[r] = _mm512_dpwssd_epi32(sumi[r], w16,
                                      loadu512(xb[r] + offsetof(ar_block_q16k, qs) + 64 * k));
}

/* Byte-shuffle control that fills 128-bit lane L with int16 number iL of that lane. */
INLINE __m512i pick16(int i0, int i1, int i2, int i3) {
#define PICK(i) (int)(0x00010001u * (uint32_t)(0x0100 + 0x0202 * (i)))
    return _mm512_setr_epi32(PICK(i0), PICK(i0), PICK(i0), PICK(i0), PICK(i1), PICK(i1), PICK(i1),
                             PICK(i1), PICK(i2), PICK(i2), PICK(i2), PICK(i2), PICK(i3), PICK(i3),
                             PICK(i3), PICK(i3));
#undef PICK
}

/* Byte-shuffle control that fills every 16-bit lane with byte i of its 128-bit lane,
 * zero-extended. */
INLINE __m512i pick8(int i) {
    return _mm512_set1_epi16((short)(0x8000 | i));
}

/* The scales of a register of 16-element sub-blocks (Q2_K, Q3_K, Q6_K): sch holds 8 int16
 * scales broadcast to every 128-bit lane; elements 0..15 of the register take scale i,
 * 16..31 scale i + 1. */
INLINE __m512i scales_16(__m512i sch, int i) {
    return _mm512_shuffle_epi8(sch, pick16(i, i, i + 1, i + 1));
}

/* The low or high 8 int16 of v, broadcast to the four 128-bit lanes. */
INLINE __m512i bcast_half(__m256i v, int h) {
    return _mm512_broadcast_i32x4(h ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v));
}

#endif
