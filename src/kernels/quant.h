/*
 * quant.h - the block formats of ggml's quantized tensor types, and the scalar reference
 * dequantizers that read them (dequant.c).
 *
 * A quantized row is a run of equal-size blocks; each block encodes a fixed number of
 * weights (32, or QK_K = 256 for the "k-quants") with one or two float16 scales and small
 * integers. All multi-byte fields are little-endian; float16 fields are held here as their
 * IEEE binary16 bit patterns (uint16_t, see fp16.h). Byte offsets below are from the start
 * of the block; "element i" is the i-th float of the block's output, 0-based.
 *
 * Blocks of 32 (plain: one scale per block)
 * -----------------------------------------
 * Q4_0, 18 bytes:  [0] d f16 | [2] qs[16]
 *     element j and j+16 share qs[j]: low nibble is element j, high nibble element j+16.
 *     y = (q - 8) * d                                              q in 0..15
 * Q4_1, 20 bytes:  [0] d f16 | [2] m f16 | [4] qs[16]   (nibbles as Q4_0)
 *     y = q * d + m
 * Q5_0, 22 bytes:  [0] d f16 | [2] qh[4] | [6] qs[16]
 *     low 4 bits as Q4_0; qh read as a little-endian uint32 holds bit 4 of element i at
 *     bit i.                                                       q in 0..31
 *     y = (q - 16) * d
 * Q5_1, 24 bytes:  [0] d f16 | [2] m f16 | [4] qh[4] | [8] qs[16]   (bits as Q5_0)
 *     y = q * d + m
 * Q8_0, 34 bytes:  [0] d f16 | [2] qs[32] int8, element i in qs[i]
 *     y = q * d
 *
 * Super-blocks of 256 (k-quants: a float16 super-scale times small per-sub-block scales)
 * -------------------------------------------------------------------------------------
 * Several k-quants spread 2-bit fields over 32-byte groups: within each half of the block
 * (h = i / 128), element i sits in byte [32*h + i % 32] of the field at bit shift
 * 2 * ((i % 128) / 32). "Bit i / 32 of byte i % 32" is the 1-bit analogue.
 *
 * Q2_K, 84 bytes:  [0] scales[16] | [16] qs[64] | [80] d f16 | [82] dmin f16
 *     16 sub-blocks of 16; scales[i/16]: low nibble sc, high nibble m.
 *     q (2 bits, 0..3): qs at the 2-bit position above.
 *     y = (d * sc) * q - dmin * m
 * Q3_K, 110 bytes: [0] hmask[32] | [32] qs[64] | [96] scales[12] | [108] d f16
 *     16 sub-blocks of 16 with 6-bit scales s[0..15]: the low 4 bits of s[j] are the low
 *     nibble of scales[j] for j < 8 and the high nibble of scales[j-8] for j >= 8; the high
 *     2 bits are bits 2*(j/4)..2*(j/4)+1 of scales[8 + j%4].
 *     Low 2 bits of q at the 2-bit position in qs; the third bit is bit i/32 of
 *     hmask[i%32], and a CLEAR bit means "subtract 4":  q = low - (bit ? 0 : 4), in -4..3.
 *     y = (d * (s - 32)) * q
 * Q4_K, 144 bytes: [0] d f16 | [2] dmin f16 | [4] scales[12] | [16] qs[128]
 *     8 sub-blocks of 32, each with a 6-bit scale sc[j] and a 6-bit min m[j], packed as
 *       j < 4:  sc[j] = scales[j] & 63,   m[j] = scales[j+4] & 63
 *       j >= 4: sc[j] = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4
 *               m[j]  = (scales[j+4] >> 4) | (scales[j]   >> 6) << 4
 *     q (0..15): byte qs[32*(i/64) + i%32], low nibble when (i/32) is even, else high.
 *     y = (d * sc) * q - dmin * m
 * Q5_K, 176 bytes: [0] d f16 | [2] dmin f16 | [4] scales[12] | [16] qh[32] | [48] qs[128]
 *     scales and the low 4 bits as Q4_K; bit 4 of q is bit i/32 of qh[i%32].  q in 0..31.
 *     y = (d * sc) * q - dmin * m
 * Q6_K, 210 bytes: [0] ql[128] | [128] qh[64] | [192] scales[16] int8 | [208] d f16
 *     16 sub-blocks of 16 with int8 scales sc[i/16]. With h = i/128, g = (i%128)/32,
 *     l = i%32: the low 4 bits of q are nibble (g/2) of ql[64*h + 32*(g%2) + l] (low nibble
 *     first); the high 2 bits are bits 2g..2g+1 of qh[32*h + l].  q = that 6-bit value - 32.
 *     y = (d * sc) * q
 *
 * In every formula each operation is one float32 operation, evaluated left to right
 * (integers converted to float first): the dequantizers reproduce ggml's rounding exactly.
 *
 * Alignment: the structs are 2-byte aligned (uint16_t fields) and packed without padding.
 * GGUF only promises that tensor data starts at a multiple of general.alignment (32 by
 * default, but any power of two is allowed), so the dequantizers never dereference a block
 * in place: they copy each block into a local struct with memcpy, which is correct at any
 * address and which compilers turn into plain loads.
 */
#ifndef AR_KERNELS_QUANT_H
#define AR_KERNELS_QUANT_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the block structs mirror little-endian file bytes; big-endian hosts are unsupported"
#endif

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK_K  256 /* elements of a k-quant super-block */

typedef struct block_q4_0 {
    uint16_t d;            /* scale, f16 */
    uint8_t qs[QK4_0 / 2]; /* nibbles */
} block_q4_0;
_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0 size");

typedef struct block_q4_1 {
    uint16_t d;            /* scale, f16 */
    uint16_t m;            /* offset (min), f16 */
    uint8_t qs[QK4_1 / 2]; /* nibbles */
} block_q4_1;
_Static_assert(sizeof(block_q4_1) == 20, "block_q4_1 size");

typedef struct block_q5_0 {
    uint16_t d;            /* scale, f16 */
    uint8_t qh[4];         /* bit 4 of each element, little-endian uint32 */
    uint8_t qs[QK5_0 / 2]; /* low nibbles */
} block_q5_0;
_Static_assert(sizeof(block_q5_0) == 22, "block_q5_0 size");

typedef struct block_q5_1 {
    uint16_t d;            /* scale, f16 */
    uint16_t m;            /* offset (min), f16 */
    uint8_t qh[4];         /* bit 4 of each element, little-endian uint32 */
    uint8_t qs[QK5_1 / 2]; /* low nibbles */
} block_q5_1;
_Static_assert(sizeof(block_q5_1) == 24, "block_q5_1 size");

typedef struct block_q8_0 {
    uint16_t d;       /* scale, f16 */
    int8_t qs[QK8_0]; /* quants */
} block_q8_0;
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 size");

typedef struct block_q2_K {
    uint8_t scales[QK_K / 16]; /* per 16: low nibble scale, high nibble min */
    uint8_t qs[QK_K / 4];      /* 2-bit quants */
    uint16_t d;                /* super-scale of the scales, f16 */
    uint16_t dmin;             /* super-scale of the mins, f16 */
} block_q2_K;
_Static_assert(sizeof(block_q2_K) == 84, "block_q2_K size");

typedef struct block_q3_K {
    uint8_t hmask[QK_K / 8]; /* third bit of each quant (clear = minus 4) */
    uint8_t qs[QK_K / 4];    /* low 2 bits of each quant */
    uint8_t scales[12];      /* 16 six-bit scales, biased by 32 */
    uint16_t d;              /* super-scale, f16 */
} block_q3_K;
_Static_assert(sizeof(block_q3_K) == 110, "block_q3_K size");

typedef struct block_q4_K {
    uint16_t d;         /* super-scale of the scales, f16 */
    uint16_t dmin;      /* super-scale of the mins, f16 */
    uint8_t scales[12]; /* 8 six-bit scales and 8 six-bit mins */
    uint8_t qs[QK_K / 2];
} block_q4_K;
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K size");

typedef struct block_q5_K {
    uint16_t d;         /* super-scale of the scales, f16 */
    uint16_t dmin;      /* super-scale of the mins, f16 */
    uint8_t scales[12]; /* as block_q4_K */
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;
_Static_assert(sizeof(block_q5_K) == 176, "block_q5_K size");

typedef struct block_q6_K {
    uint8_t ql[QK_K / 2];     /* low 4 bits */
    uint8_t qh[QK_K / 4];     /* high 2 bits */
    int8_t scales[QK_K / 16]; /* per 16 elements */
    uint16_t d;               /* super-scale, f16 */
} block_q6_K;
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K size");

/* The 8-bit rounding of 32 activations (the reference of every tier's quantizers: Q8A and
 * the lane form's A8): returns d = amax / 127 and sets qs = roundf(x / d) (as x * (1 / d));
 * a block with inf or NaN gives d = NaN and qs = 0, one whose d would be below FLT_MIN
 * gives d = 0 and qs = 0. */
/* The largest |x[i]| of 32 floats; *finite = 0 when one of them is inf or NaN (the
 * quantizers' first step). */
static inline float ar_amax32(const float *x, int *finite) {
    float amax = 0.0f;
    *finite = 1;
    for (int i = 0; i < 32; i++) {
        if (!isfinite(x[i]))
            *finite = 0;
        else if (fabsf(x[i]) > amax)
            amax = fabsf(x[i]);
    }
    return amax;
}

static inline float ar_quantize32(const float *x, int8_t qs[32]) {
    int finite;
    const float amax = ar_amax32(x, &finite);
    memset(qs, 0, 32);
    if (!finite) return NAN;
    const float d = amax / 127.0f;
    if (d < FLT_MIN) return 0.0f;
    const float id = 1.0f / d;
    for (int i = 0; i < 32; i++) qs[i] = (int8_t)roundf(x[i] * id);
    return d;
}

/* The 8 six-bit scales and mins of Q4_K/Q5_K (block_q4_K.scales). */
static inline void ar_unpack_scales_k4(const uint8_t packed[12], int sc[8], int mn[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = packed[j] & 63;
        mn[j] = packed[j + 4] & 63;
        sc[j + 4] = (packed[j + 8] & 15) | (packed[j] >> 6) << 4;
        mn[j + 4] = (packed[j + 8] >> 4) | (packed[j + 4] >> 6) << 4;
    }
}

/* Scalar reference row converters (dequant.c), the `to_float` of the traits table.
 * Each converts n elements (a multiple of the type's block size) starting at src, which
 * may have any alignment, to float32 at dst. They are bit-identical to ggml's
 * dequantize_row_* / to_float for the same type. */
void ar_dequant_f32(const void *src, float *dst, int64_t n);
void ar_dequant_f16(const void *src, float *dst, int64_t n);
void ar_dequant_bf16(const void *src, float *dst, int64_t n);
void ar_dequant_q4_0(const void *src, float *dst, int64_t n);
void ar_dequant_q4_1(const void *src, float *dst, int64_t n);
void ar_dequant_q5_0(const void *src, float *dst, int64_t n);
void ar_dequant_q5_1(const void *src, float *dst, int64_t n);
void ar_dequant_q8_0(const void *src, float *dst, int64_t n);
void ar_dequant_q2_k(const void *src, float *dst, int64_t n);
void ar_dequant_q3_k(const void *src, float *dst, int64_t n);
void ar_dequant_q4_k(const void *src, float *dst, int64_t n);
void ar_dequant_q5_k(const void *src, float *dst, int64_t n);
void ar_dequant_q6_k(const void *src, float *dst, int64_t n);

#endif
