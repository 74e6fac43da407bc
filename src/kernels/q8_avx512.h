/*
 * q8_avx512.h - the 8-bit rounding of 32 activations for AVX-512, shared by the quantizers
 * that use it (q32_avx512.c: Q8A blocks; gemm8_avx512.c: the lane form's A8 blocks), so
 * that both give the scalar reference's bytes (ar_quantize32 in quant.h) the same way.
 * Include only from files compiled with the AVX-512 flags (CMakeLists.txt).
 */
#ifndef AR_KERNELS_Q8_AVX512_H
#define AR_KERNELS_Q8_AVX512_H

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* roundf() of 16 floats of magnitude below 2^23: halfway cases away from zero. */
static inline __attribute__((always_inline)) __m512i ar_round_away512(__m512 v) {
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 up =
        _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512i sign = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN));
    const __m512 one = _mm512_castsi512_ps(_mm512_or_si512(sign, _mm512_set1_epi32(0x3f800000)));
    return _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, one));
}

/* The 32 floats at x rounded to 8 bits: returns d (amax / 127; NaN when x holds inf or NaN,
 * 0 below FLT_MIN) and sets *q0, *q1 to the integers of x[0..15] and x[16..31] (all zero in
 * both special cases). */
static inline __attribute__((always_inline)) float ar_quantize32_512(const float *x, __m512i *q0,
                                                                     __m512i *q1) {
    const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    /* |x| as integers orders like the floats, with inf and NaN above all finite */
    const int32_t amax_bits = _mm512_reduce_max_epi32(
        _mm512_max_epi32(_mm512_and_si512(_mm512_castps_si512(v0), abs_mask),
                         _mm512_and_si512(_mm512_castps_si512(v1), abs_mask)));
    *q0 = *q1 = _mm512_setzero_si512();
    if (amax_bits >= 0x7f800000) return NAN;
    float amax;
    memcpy(&amax, &amax_bits, sizeof amax);
    const float d = amax / 127.0f;
    if (d < FLT_MIN) return 0.0f;
    const __m512 id = _mm512_set1_ps(1.0f / d);
    *q0 = ar_round_away512(_mm512_mul_ps(v0, id));
    *q1 = ar_round_away512(_mm512_mul_ps(v1, id));
    return d;
}

#endif
