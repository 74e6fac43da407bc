/*
 * fp16.h - scalar conversions between float32 and the 16-bit float formats of model files.
 *
 * IEEE binary16 ("half"): 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits.
 * Exponent 0 is zero/subnormal (value m * 2^-24), exponent 31 is inf (m == 0) or NaN.
 * bfloat16: the top 16 bits of a float32 (1 sign, 8 exponent, 7 mantissa bits).
 *
 * These are the reference conversions, done with integer operations only (no F16C or other
 * intrinsics) so they give the same bits on every host:
 * - half -> float is exact for every input. NaNs keep their sign and payload and come out
 *   quiet (the quiet bit set), as hardware converters (x86 F16C, Arm FCVT) deliver them.
 * - float -> half rounds to nearest, ties to even; overflow gives inf; NaN stays NaN.
 * - bf16 -> float is exact: the bits shifted up by 16.
 */
#ifndef AR_KERNELS_FP16_H
#define AR_KERNELS_FP16_H

#include <stdint.h>
#include <string.h>

static inline float ar_f32_from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint32_t ar_f32_to_bits(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

/* IEEE half (bit pattern) to float, exactly. */
static inline float ar_fp16_to_fp32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;

    if (exp == 0x1f) /* inf, or NaN made quiet */
        return ar_f32_from_bits(sign | 0x7f800000u | (mant << 13) | (mant ? 0x400000u : 0));
    if (exp != 0) /* normal: rebias the exponent from 15 to 127 */
        return ar_f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
    if (mant == 0) return ar_f32_from_bits(sign); /* +-0 */

    /* Subnormal half m * 2^-24 is a normal float: shift the leading 1 up to bit 10. */
    uint32_t e = 113; /* float exponent of 2^-14, minus one per shift below */
    while (!(mant & 0x400u)) {
        mant <<= 1;
        e--;
    }
    return ar_f32_from_bits(sign | (e << 23) | ((mant & 0x3ffu) << 13));
}

/* Float to IEEE half (bit pattern), rounding to nearest even. */
static inline uint16_t ar_fp32_to_fp16(float f) {
    const uint32_t x = ar_f32_to_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7fffffffu;

    if (ax > 0x7f800000u) /* NaN: quiet, keep the top payload bits */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u) /* >= 65520, halfway between 65504 and 2^16: inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax >= 0x38800000u) { /* >= 2^-14: a normal half */
        /* Round the 13 dropped mantissa bits to even; a carry moves into the exponent. */
        const uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u);
        return (uint16_t)(sign | ((r - 0x38000000u) >> 13)); /* rebias 127 -> 15 */
    }
    if (ax < 0x33000000u) /* below 2^-25, half the smallest subnormal */
        return sign;

    /* Subnormal result: value = m * 2^(e - 150) with the implicit bit in m; the half
     * mantissa counts units of 2^-24, so shift right by 126 - e (14..24) and round. */
    const uint32_t e = ax >> 23;
    const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++; /* 1024 is the smallest normal */
    return (uint16_t)(sign | q);
}

/* bfloat16 (bit pattern) to float, exactly. */
static inline float ar_bf16_to_fp32(uint16_t b) {
    return ar_f32_from_bits((uint32_t)b << 16);
}

#endif
