/*
 * dequant.c - scalar reference dequantizers: one row of any supported type to float32.
 *
 * These are the `to_float` entries of the traits table (types.c) and the yardstick every
 * SIMD kernel is tested against. They must give the same bits as ggml's dequantize_row_*
 * (and gguf-py's gguf.quants.dequantize), so each output value is computed with the same
 * float32 operations in the same order as there: the formulas in quant.h, one rounding
 * per operation. Two build settings make that hold: FLT_EVAL_METHOD 0 (no wider
 * intermediates, checked below) and -ffp-contract=off (no fused multiply-adds; set for the
 * whole project in CMakeLists.txt).
 *
 * Each function walks the row block by block, copies the block into a local struct (so the
 * source may have any alignment, see quant.h) and writes the block's outputs in element
 * order. Block layouts are documented in quant.h.
 */
#include "kernels/quant.h"

#include "kernels/fp16.h"

#include <float.h>
#include <string.h>

#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "the reference dequantizers need float arithmetic evaluated in float (FLT_EVAL_METHOD 0)"
#endif

/* --- Plain types ------------------------------------------------------------------------ */

void ar_dequant_f32(const void *src, float *dst, int64_t n) {
    if (n > 0) memcpy(dst, src, (size_t)n * sizeof(float));
}

void ar_dequant_f16(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, sizeof h);
        dst[i] = ar_fp16_to_fp32(h);
    }
}

void ar_dequant_bf16(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t b;
        memcpy(&b, p + 2 * i, sizeof b);
        dst[i] = ar_bf16_to_fp32(b);
    }
}

/* --- Blocks of 32 ----------------------------------------------------------------------- */

/* The 32 fifth bits of Q5_0/Q5_1, bit i for element i. */
static uint32_t load_qh32(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

void ar_dequant_q4_0(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t ib = 0; ib < n / QK4_0; ib++, p += sizeof(block_q4_0), dst += QK4_0) {
        block_q4_0 b;
        memcpy(&b, p, sizeof b);
        const float d = ar_fp16_to_fp32(b.d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            dst[j] = (float)((b.qs[j] & 0x0f) - 8) * d;
            dst[j + QK4_0 / 2] = (float)((b.qs[j] >> 4) - 8) * d;
        }
    }
}

void ar_dequant_q4_1(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t ib = 0; ib < n / QK4_1; ib++, p += sizeof(block_q4_1), dst += QK4_1) {
        block_q4_1 b;
        memcpy(&b, p, sizeof b);
        const float d = ar_fp16_to_fp32(b.d);
        const float m = ar_fp16_to_fp32(b.m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            dst[j] = (float)(b.qs[j] & 0x0f) * d + m;
            dst[j + QK4_1 / 2] = (float)(b.qs[j] >> 4) * d + m;
        }
    }
}

void ar_dequant_q5_0(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t ib = 0; ib < n / QK5_0; ib++, p += sizeof(block_q5_0), dst += QK5_0) {
        block_q5_0 b;
        memcpy(&b, p, sizeof b);
        const float d = ar_fp16_to_fp32(b.d);
        const uint32_t qh = load_qh32(b.qh);
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int lo = (b.qs[j] & 0x0f) | (int)((qh >> j) & 1) << 4;
            const int hi = (b.qs[j] >> 4) | (int)((qh >> (j + QK5_0 / 2)) & 1) << 4;
            dst[j] = (float)(lo - 16) * d;
            dst[j + QK5_0 / 2] = (float)(hi - 16) * d;
        }
    }
}

void ar_dequant_q5_1(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t ib = 0; ib < n / QK5_1; ib++, p += sizeof(block_q5_1), dst += QK5_1) {
        block_q5_1 b;
        memcpy(&b, p, sizeof b);
        const float d = ar_fp16_to_fp32(b.d);
        const float m = ar_fp16_to_fp32(b.m);
        const uint32_t qh = load_qh32(b.qh);
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int lo = (b.qs[j] & 0x0f) | (int)((qh >> j) & 1) << 4;
            const int hi = (b.qs[j] >> 4) | (int)((qh >> (j + QK5_1 / 2)) & 1) << 4;
            dst[j] = (float)lo * d + m;
            dst[j + QK5_1 / 2] = (float)hi * d + m;
        }
    }
}

void ar_dequant_q8_0(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t ib = 0; ib < n / QK8_0; ib++, p += sizeof(block_q8_0), dst += QK8_0) {
        block_q8_0 b;
        memcpy(&b, p, sizeof b);
        const float d = ar_fp16_to_fp32(b.d);
        for (int j = 0; j < QK8_0; j++) dst[j] = (float)b.qs[j] * d;
    }
}

/* --- Super-blocks of 256 ---------------------------------------------------------------- */

/* The 2-bit field of element i (0..255) in a 64-byte array laid out as Q2_K/Q3_K qs. */
static int get_2bit(const uint8_t qs[QK_K / 4], int i) {
    return (qs[32 * (i / 128) + i % 32] >> (2 * ((i % 128) / 32))) & 3;
}

void ar_dequant_q2_k(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t ib = 0; ib < n / QK_K; ib++, p += sizeof(block_q2_K), dst += QK_K) {
        block_q2_K b;
        memcpy(&b, p, sizeof b);
        const float d = ar_fp16_to_fp32(b.d);
        const float dmin = ar_fp16_to_fp32(b.dmin);
        for (int s = 0; s < QK_K / 16; s++) {
            const float dl = d * (float)(b.scales[s] & 0x0f);
            const float ml = dmin * (float)(b.scales[s] >> 4);
            for (int i = 16 * s; i < 16 * s + 16; i++) dst[i] = dl * (float)get_2bit(b.qs, i) - ml;
        }
    }
}

/* The 16 six-bit scales of Q3_K, still biased by 32 (layout in quant.h). */
static void unpack_scales_q3_k(const uint8_t packed[12], int scales[16]) {
    for (int j = 0; j < 16; j++) {
        const int lo = j < 8 ? packed[j] & 0x0f : packed[j - 8] >> 4;
        const int hi = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
        scales[j] = lo | hi << 4;
    }
}

void ar_dequant_q3_k(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t ib = 0; ib < n / QK_K; ib++, p += sizeof(block_q3_K), dst += QK_K) {
        block_q3_K b;
        memcpy(&b, p, sizeof b);
        const float d = ar_fp16_to_fp32(b.d);
        int scales[16];
        unpack_scales_q3_k(b.scales, scales);
        for (int s = 0; s < QK_K / 16; s++) {
            const float dl = d * (float)(scales[s] - 32);
            for (int i = 16 * s; i < 16 * s + 16; i++) {
                const int high = (b.hmask[i % 32] >> (i / 32)) & 1;
                const int q = get_2bit(b.qs, i) - (high ? 0 : 4);
                dst[i] = dl * (float)q;
            }
        }
    }
}

/* The 8 six-bit scales and mins of Q4_K/Q5_K (layout in quant.h). */
static void unpack_scales_mins_k4(const uint8_t packed[12], uint8_t sc[8], uint8_t mn[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = packed[j] & 63;
        mn[j] = packed[j + 4] & 63;
    }
    for (int j = 4; j < 8; j++) {
        sc[j] = (uint8_t)((packed[j + 4] & 0x0f) | (packed[j - 4] >> 6) << 4);
        mn[j] = (uint8_t)((packed[j + 4] >> 4) | (packed[j] >> 6) << 4);
    }
}

void ar_dequant_q4_k(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t ib = 0; ib < n / QK_K; ib++, p += sizeof(block_q4_K), dst += QK_K) {
        block_q4_K b;
        memcpy(&b, p, sizeof b);
        const float d = ar_fp16_to_fp32(b.d);
        const float dmin = ar_fp16_to_fp32(b.dmin);
        uint8_t sc[8], mn[8];
        unpack_scales_mins_k4(b.scales, sc, mn);
        for (int s = 0; s < QK_K / 32; s++) {
            const float d1 = d * (float)sc[s];
            const float m1 = dmin * (float)mn[s];
            const uint8_t *q = b.qs + 32 * (s / 2);
            const int shift = 4 * (s % 2);
            for (int l = 0; l < 32; l++)
                dst[32 * s + l] = d1 * (float)((q[l] >> shift) & 0x0f) - m1;
        }
    }
}

void ar_dequant_q5_k(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t ib = 0; ib < n / QK_K; ib++, p += sizeof(block_q5_K), dst += QK_K) {
        block_q5_K b;
        memcpy(&b, p, sizeof b);
        const float d = ar_fp16_to_fp32(b.d);
        const float dmin = ar_fp16_to_fp32(b.dmin);
        uint8_t sc[8], mn[8];
        unpack_scales_mins_k4(b.scales, sc, mn);
        for (int s = 0; s < QK_K / 32; s++) {
            const float d1 = d * (float)sc[s];
            const float m1 = dmin * (float)mn[s];
            const uint8_t *q = b.qs + 32 * (s / 2);
            const int shift = 4 * (s % 2);
            for (int l = 0; l < 32; l++) {
                const int v = ((q[l] >> shift) & 0x0f) | ((b.qh[l] >> s) & 1) << 4;
                dst[32 * s + l] = d1 * (float)v - m1;
            }
        }
    }
}

void ar_dequant_q6_k(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t ib = 0; ib < n / QK_K; ib++, p += sizeof(block_q6_K), dst += QK_K) {
        block_q6_K b;
        memcpy(&b, p, sizeof b);
        const float d = ar_fp16_to_fp32(b.d);
        for (int i = 0; i < QK_K; i++) {
            const int h = i / 128, g = (i % 128) / 32, l = i % 32;
            const int lo = (b.ql[64 * h + 32 * (g % 2) + l] >> (4 * (g / 2))) & 0x0f;
            const int hi = (b.qh[32 * h + l] >> (2 * g)) & 3;
            /* (d * sc) * q: ggml multiplies the super-scale by the scale first. */
            dst[i] = d * (float)b.scales[i / 16] * (float)((lo | hi << 4) - 32);
        }
    }
}
