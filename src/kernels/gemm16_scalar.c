/*
 * gemm16_scalar.c - the scalar reference of the k-quants' GEMM path: pack16 (one weight row
 * of Q2_K..Q6_K unpacked into ar_block_w16 blocks) and gemm16 (packed rows times many Q16K
 * activation rows). The AVX-512 tier (gemm16_avx512.c) packs the same bytes and has its own
 * gemm16, bit-identical to its own vec_dot16 (tests/unit/test_kernels_gemm16.c).
 *
 * Why: vec_dot16_n unpacks a weight block (nibbles, offsets, times the sub-block scale)
 * once per group of AR_MAX_NR tokens; for prefill the engine unpacks a block of weight rows
 * once per tile of tokens instead, into these blocks, and multiplies from there.
 *
 * Packing, per 256-element block (ar_block_w16, kernels.h): w[i] = s * q of element i (the
 * sub-block scale times the quant with its offset, q - 32 for Q6_K, q - 4 for Q3_K where
 * the high bit is clear; |s * q| <= 4096), d and dmin the block's float16 scales as floats,
 * m[j] the integer minimum of the sub-block holding elements 16j..16j+15 (Q2_K: its 4-bit
 * min; Q4_K/Q5_K: the 6-bit min of sub-block j / 2; Q3_K, Q6_K: 0, with dmin = 0).
 *
 * gemm16 here repeats q16_scalar.c's vec_dot16 per (row, token) from the packed form:
 * isum = sum w[i] * a[i] (int64, exact), msum = sum m[j] * bsums[j] (int32, < 2^28, the
 * same integer as vec_dot16's per-sub-block sum), then per block, left to right in float32,
 * sum += (d * dx) * (float)isum - (dmin * dx) * (float)msum (without a minimum: sum +=
 * (d * dx) * (float)isum), so every result equals vec_dot16 bit for bit.
 */
#include "kernels/kernels.h"

#include "kernels/fp16.h"
#include "kernels/quant.h"

#include <string.h>

/* --- Packing ------------------------------------------------------------------------------ */

/* The 8 six-bit scales and mins of Q4_K/Q5_K (quant.h). */
static void scales_k4(const uint8_t packed[12], int sc[8], int mn[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = packed[j] & 63;
        mn[j] = packed[j + 4] & 63;
        sc[j + 4] = (packed[j + 8] & 15) | (packed[j] >> 6) << 4;
        mn[j + 4] = (packed[j + 8] >> 4) | (packed[j + 4] >> 6) << 4;
    }
}

/* out->w[i] = s[i / sub] * q[i]; sub = 16 or 32 elements per scale. */
static void put_weights(ar_block_w16 *out, const int8_t *q, const int *s, int sub) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < AR_QK16K; i++) out->w[i] = (int16_t)(s[i / sub] * q[i]);
}

static void pack16_q2_k(int64_t n, const void *vw, ar_block_w16 *out) {
    const uint8_t *w = vw;
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q2_K), out++) {
        block_q2_K b;
        memcpy(&b, w, sizeof b);
        int8_t q[QK_K];
        for (int h = 0; h < 2; h++)
            for (int g = 0; g < 4; g++)
                for (int l = 0; l < 32; l++)
                    q[128 * h + 32 * g + l] = (int8_t)((b.qs[32 * h + l] >> (2 * g)) & 3);
        int sc[16];
        for (int s = 0; s < 16; s++) sc[s] = b.scales[s] & 15;
        put_weights(out, q, sc, 16);
        for (int s = 0; s < 16; s++) out->m[s] = (int16_t)(b.scales[s] >> 4);
        out->d = ar_fp16_to_fp32(b.d);
        out->dmin = ar_fp16_to_fp32(b.dmin);
    }
}

static void pack16_q3_k(int64_t n, const void *vw, ar_block_w16 *out) {
    const uint8_t *w = vw;
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q3_K), out++) {
        block_q3_K b;
        memcpy(&b, w, sizeof b);
        int8_t q[QK_K];
        for (int h = 0; h < 2; h++)
            for (int g = 0; g < 4; g++)
                for (int l = 0; l < 32; l++) {
                    const int low = (b.qs[32 * h + l] >> (2 * g)) & 3;
                    const int high = (b.hmask[l] >> (4 * h + g)) & 1;
                    q[128 * h + 32 * g + l] = (int8_t)(low - (high ? 0 : 4));
                }
        int sc[16];
        for (int s = 0; s < 16; s++) {
            const int lo = s < 8 ? b.scales[s] & 15 : b.scales[s - 8] >> 4;
            const int hi = (b.scales[8 + s % 4] >> (2 * (s / 4))) & 3;
            sc[s] = (lo | hi << 4) - 32;
        }
        put_weights(out, q, sc, 16);
        out->d = ar_fp16_to_fp32(b.d);
    }
}

/* Q4_K and Q5_K (hbits: the fifth bit from qh). */
static void pack_k4(int64_t n, const uint8_t *w, int hbits, ar_block_w16 *out) {
    const size_t bsize = hbits ? sizeof(block_q5_K) : sizeof(block_q4_K);
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += bsize, out++) {
        const uint8_t *qs = w + (hbits ? 48 : 16), *qh = w + 16;
        int8_t q[QK_K];
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) {
                int lo = qs[32 * j + l] & 15, hi = qs[32 * j + l] >> 4;
                if (hbits) {
                    lo |= ((qh[l] >> (2 * j)) & 1) << 4;
                    hi |= ((qh[l] >> (2 * j + 1)) & 1) << 4;
                }
                q[64 * j + l] = (int8_t)lo;
                q[64 * j + 32 + l] = (int8_t)hi;
            }
        int sc[8], mn[8];
        scales_k4(w + 4, sc, mn);
        put_weights(out, q, sc, 32);
        for (int j = 0; j < 16; j++) out->m[j] = (int16_t)mn[j / 2];
        uint16_t d, dmin;
        memcpy(&d, w, 2);
        memcpy(&dmin, w + 2, 2);
        out->d = ar_fp16_to_fp32(d);
        out->dmin = ar_fp16_to_fp32(dmin);
    }
}

static void pack16_q4_k(int64_t n, const void *w, ar_block_w16 *out) {
    pack_k4(n, w, 0, out);
}

static void pack16_q5_k(int64_t n, const void *w, ar_block_w16 *out) {
    pack_k4(n, w, 1, out);
}

static void pack16_q6_k(int64_t n, const void *vw, ar_block_w16 *out) {
    const uint8_t *w = vw;
    for (int64_t ib = 0; ib < n / QK_K; ib++, w += sizeof(block_q6_K), out++) {
        block_q6_K b;
        memcpy(&b, w, sizeof b);
        int8_t q[QK_K];
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b.ql + 64 * h, *qh = b.qh + 32 * h;
            int8_t *qo = q + 128 * h;
            for (int l = 0; l < 32; l++) {
                qo[l] = (int8_t)(((ql[l] & 15) | (qh[l] & 3) << 4) - 32);
                qo[l + 32] = (int8_t)(((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32);
                qo[l + 64] = (int8_t)(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
                qo[l + 96] = (int8_t)(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
            }
        }
        int sc[16];
        for (int s = 0; s < 16; s++) sc[s] = b.scales[s];
        put_weights(out, q, sc, 16);
        out->d = ar_fp16_to_fp32(b.d);
    }
}

/* --- GEMM --------------------------------------------------------------------------------- */

/* vec_dot16 of one packed row with one Q16K row (q16_scalar.c's float steps). */
static float dot_packed(int64_t n, const ar_block_w16 *w, const ar_block_q16k *x, int has_min) {
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / QK_K; ib++) {
        int64_t isum = 0;
        int32_t msum = 0;
        for (int i = 0; i < AR_QK16K; i++) isum += (int32_t)w[ib].w[i] * x[ib].qs[i];
        for (int j = 0; j < AR_QK16K / 16; j++) msum += w[ib].m[j] * x[ib].bsums[j];
        const float dd = w[ib].d * x[ib].d;
        if (has_min) {
            const float dm = w[ib].dmin * x[ib].d;
            sum += dd * (float)isum - dm * (float)msum;
        } else {
            sum += dd * (float)isum;
        }
    }
    return sum;
}

static void gemm(int64_t n, const ar_block_w16 *w, size_t w_stride, int nw, const void *x,
                 size_t x_stride, int nx, float *y, size_t ldy, int has_min) {
    for (int t = 0; t < nx; t++) {
        const ar_block_q16k *xt = (const void *)((const uint8_t *)x + (size_t)t * x_stride);
        for (int r = 0; r < nw; r++)
            y[(size_t)t * ldy + (size_t)r] = dot_packed(n, w + (size_t)r * w_stride, xt, has_min);
    }
}

static void gemm16_min(int64_t n, const ar_block_w16 *w, size_t w_stride, int nw, const void *x,
                       size_t x_stride, int nx, float *y, size_t ldy) {
    gemm(n, w, w_stride, nw, x, x_stride, nx, y, ldy, 1);
}

static void gemm16_nomin(int64_t n, const ar_block_w16 *w, size_t w_stride, int nw, const void *x,
                         size_t x_stride, int nx, float *y, size_t ldy) {
    gemm(n, w, w_stride, nw, x, x_stride, nx, y, ldy, 0);
}

/* --- Table -------------------------------------------------------------------------------- */

void ar_kernels_fill_gemm16_scalar(ar_kernels *k) {
    k->pack16[AR_TYPE_Q2_K] = pack16_q2_k;
    k->pack16[AR_TYPE_Q3_K] = pack16_q3_k;
    k->pack16[AR_TYPE_Q4_K] = pack16_q4_k;
    k->pack16[AR_TYPE_Q5_K] = pack16_q5_k;
    k->pack16[AR_TYPE_Q6_K] = pack16_q6_k;
    k->gemm16[AR_TYPE_Q2_K] = gemm16_min;
    k->gemm16[AR_TYPE_Q3_K] = gemm16_nomin;
    k->gemm16[AR_TYPE_Q4_K] = gemm16_min;
    k->gemm16[AR_TYPE_Q5_K] = gemm16_min;
    k->gemm16[AR_TYPE_Q6_K] = gemm16_nomin;
}
