/*
 * kernels.h - the compute kernels of the engine, behind one dispatch table per CPU tier.
 *
 * Tiers: a scalar reference (portable C, the definition of every result), AVX2 (+FMA,
 * F16C) and AVX-512 (F, BW, VL, DQ, VNNI; BF16 when present). ar_kernels_get() fills a
 * table for the best tier the CPU supports, or for a lower one on request (tests and
 * debugging force the lower tiers). Every SIMD kernel has the same signature and contract
 * as its scalar reference and is tested against it (tests/unit/test_kernels_*.c).
 *
 * Matrix products. A weight matrix has N rows of K elements of its storage type; an
 * activation row has K floats. The product of one weight row with one activation row:
 *
 *  - F32, F16, BF16 weights: rows are converted to float32 (to_float) and multiplied with
 *    float32 activations (dot_f32): float32 arithmetic throughout.
 *  - Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 weights: activations are first quantized to Q8A blocks
 *    of 32 (quantize_q8a, once per activation row), then vec_dot works on integers block
 *    by block and scales in float (as llama.cpp's Q8_0/Q8_1 path does).
 *  - Q2_K..Q6_K weights: activations are quantized to Q8K blocks of 256 (quantize_q8k), as
 *    llama.cpp's Q8_K path.
 *
 * The 8-bit activation rounding costs accuracy (see docs/engine.md); the engine can also
 * run quantized weights the float32 way (dequantize a row with to_float, then dot_f32).
 *
 * Kernels never start threads and never allocate; the caller splits work (rows) between
 * threads.
 */
#ifndef AR_KERNELS_KERNELS_H
#define AR_KERNELS_KERNELS_H

#include "kernels/types.h"

#include <stddef.h>
#include <stdint.h>

/* ---- activation blocks ----------------------------------------------------------------- */

#define AR_QK8A 32
#define AR_QK8K 256

/* 32 activations: x[i] ~= d * qs[i]; s = d * sum(qs) (used by types with a minimum).
 * Invariants every tier keeps (the SIMD kernels rely on them): d = amax / 127 in float32,
 * qs = roundf(x / d) in -127..127 (never -128); a block with inf/NaN has d = s = NaN and
 * qs = 0; a block whose d would be below FLT_MIN is all zero. Every tier produces
 * byte-identical blocks. */
typedef struct ar_block_q8a {
    float d;
    float s;
    int8_t qs[AR_QK8A];
} ar_block_q8a;
_Static_assert(sizeof(ar_block_q8a) == 40, "ar_block_q8a size");

/* 256 activations: x[i] ~= d * qs[i]; bsums[j] = sum of qs[16j .. 16j+15]. */
typedef struct ar_block_q8k {
    float d;
    int8_t qs[AR_QK8K];
    int16_t bsums[AR_QK8K / 16];
} ar_block_q8k;
_Static_assert(sizeof(ar_block_q8k) == 292, "ar_block_q8k size");

/* 256 activations with 15-bit integers, for the k-quants' accurate path: x[i] ~= d * qs[i],
 * d = amax / 16383, qs = roundf(x / d) in -16383..16383; bsums[j] = sum of qs[16j..16j+15].
 * 15 bits (not 16) so that a 256-element block of Q6_K products (|w| <= 32 * 128) cannot
 * overflow an int32 lane. Same special cases as Q8A (inf/NaN: d = NaN, qs = 0; d below
 * FLT_MIN: all zero); byte-identical in every tier. */
#define AR_QK16K 256
typedef struct ar_block_q16k {
    int16_t qs[AR_QK16K];         /* first: 64-byte aligned when the block is */
    int32_t bsums[AR_QK16K / 16]; /* 64 bytes */
    float d;
    uint8_t pad[60]; /* 640 bytes in all, so consecutive blocks stay 64-byte aligned */
} ar_block_q16k;
_Static_assert(sizeof(ar_block_q16k) == 640, "ar_block_q16k size");

/* A row of K activations with 15-bit integers in blocks of 32, for the 32-block types'
 * accurate path (a row layout rather than an array of blocks, so the integers are
 * contiguous and 64-byte aligned when the row is):
 *
 *     int16 qs[K] | float d[K/32] | float s[K/32] | padding to a multiple of 64 bytes
 *
 * x[i] ~= d[i/32] * qs[i]; d = amax / 16383 per block of 32, qs = roundf(x / d) in
 * -16383..16383, s = d * sum(qs of the block); special cases as Q8A. Size: ar_q16a_row_bytes. */
#define AR_QK16A 32
static inline size_t ar_q16a_row_bytes(int64_t k) {
    return ((size_t)k * 2 + (size_t)k / AR_QK16A * 8 + 63) & ~(size_t)63;
}

/* One k-quant weight block unpacked for the GEMM path (gemm16, below): the 256 weights as
 * int16 s * q in element order (the sub-block scale s times the quant q, the Q3_K/Q6_K
 * offsets already applied: |s * q| <= 4096), the block's float16 scales as floats, and per
 * bsum j of the activations the integer minimum of the sub-block that holds elements
 * 16j..16j+15 (0 and dmin = 0 for the types without a minimum, Q3_K and Q6_K). The same
 * bytes in every tier (pack16). */
typedef struct ar_block_w16 {
    int16_t w[AR_QK16K]; /* first: 64-byte aligned when the block is */
    float d;
    float dmin;
    int16_t m[AR_QK16K / 16];
    uint8_t pad[88]; /* 640 bytes in all, so consecutive blocks stay 64-byte aligned */
} ar_block_w16;
_Static_assert(sizeof(ar_block_w16) == 640, "ar_block_w16 size");

/* ---- the fast precision's lane form (gemm8_*.c) --------------------------------------- *
 *
 * Q4_K, Q6_K and Q8_0 weights in the fast precision multiply with 8-bit activations in 16
 * "lanes", each a sub-block with its own scale and minimum, w = scale * u - min with u an
 * unsigned byte. Two shapes (ar_kernels.lanes8[type]):
 *
 *  - 32-element lanes (Q4_K's sub-blocks, Q8_0's blocks): a lane group is 512 elements, two
 *    256-element blocks A and B; lane L < 8 holds sub-block sigma8(L) of A, lane L >= 8
 *    sub-block sigma8(L - 8) of B, sigma8 = {0, 2, 4, 6, 1, 3, 5, 7}. When a row has an odd
 *    number of blocks, the last group has no B: its lanes 8..15 are all zero (u, q, scale,
 *    min, dx, xs) and go through the same steps.
 *  - 16-element lanes (Q6_K): a lane group is one block; lane L holds sub-block
 *    sigma16(L) = 4 (L % 4) + L / 4.
 *
 * (The orders an in-register reduction of natural-order products leaves the sums in.) Per
 * group and lane, with isum the exact integer sum of u * q over the lane's elements:
 *
 *     acc[L] = fmaf((float)isum, scale * dx, acc[L]);   acc[L] = fmaf(-min, xs, acc[L])
 *
 * where dx is the activation scale of the lane's 32 elements and xs = dx * (sum of the
 * lane's q); at the end the 16 lanes are added as L + L+8, then L + L+4, + L+2, + L+1.
 * Every tier does exactly these float operations, so every tier's results are
 * bit-identical, and the GEMM form (weights and activations repacked) equals the one-row
 * form. */

/* 256 activations in natural order: per 32 elements d = amax / 127 and qs = roundf(x / d)
 * (the Q8A rules, special cases included); s32[j] = d[j] * (float)(sum of the qs of
 * elements 32j .. 32j + 31), s16[j] = d[j / 2] * (float)(sum of the qs of 16j .. 16j + 15). */
typedef struct ar_block_a8 {
    int8_t qs[256];
    float d[8];
    float s32[8];
    float s16[16]; /* 384 bytes in all: consecutive blocks stay 64-byte aligned */
} ar_block_a8;
_Static_assert(sizeof(ar_block_a8) == 384, "ar_block_a8 size");

/* The GEMM layouts (pack8 for weights, pack8x for activations) of one lane group: chunks of
 * 64 bytes (8 for 32-element lanes, 4 for 16-element ones; the rest of the bytes zero),
 * chunk c holding bytes 4c..4c+3 of every lane in lane order, so one vpdpbusd per chunk adds
 * into each int32 lane only its own elements. A row is n / 512 groups rounded up (32-element
 * lanes) or n / 256 (16-element ones). */
typedef struct ar_block_w8 {
    uint8_t u[512];
    float scale[16]; /* per lane */
    float min[16];
} ar_block_w8;
_Static_assert(sizeof(ar_block_w8) == 640, "ar_block_w8 size");

typedef struct ar_block_x8 {
    int8_t qs[512];
    float dx[16]; /* per lane: the activation scale of the lane's elements */
    float xs[16]; /* per lane: dx * the sum of the lane's qs */
} ar_block_x8;
_Static_assert(sizeof(ar_block_x8) == 640, "ar_block_x8 size");

/* Lane groups in a row of n elements for lanes of `lane` elements (32 or 16). */
static inline int64_t ar_lane_groups(int64_t n, int lane) {
    return lane == 32 ? (n + 511) / 512 : n / 256;
}

/* ---- float weights in 16-bit lanes (F16 and BF16 in the fast precision; lane16_*.c) --- *
 *
 * F16 and BF16 weight rows are repacked once, when a fast-precision engine is created, into
 * lane groups of 512 elements: 16 lanes of 32 consecutive elements (lane L of group g holds
 * elements 512g + 32L .. 512g + 32L + 31; lanes past the end of the row are all zero). Per
 * lane, with amax = max |w| over its 32 values (as float32):
 *
 *     scale = 2^(e - 13) where amax = m * 2^e, 0.5 <= m < 1 (frexpf), so 4096 <= amax / scale
 *             < 8192; u = roundf(w / scale) clamped to -8191..8191 (int16)
 *
 * (amax = 0: scale = 0, u = 0; inf or NaN in the lane: scale = NaN, u = 0; a scale that
 * would be 0 in float32: scale = 0, u = 0). The power-of-two scale keeps every element of the
 * lane's top three octaves exact (a float16's 11 significant bits; all of a bfloat16's 8) and
 * rounds smaller ones to a 2^-14 step of amax. Activations take the same lanes with a 14-bit
 * rounding: dx = amax / 8191, q = roundf(x * (1 / dx)) in -8191..8191 (the special cases of
 * ar_quantize32: inf/NaN give dx = NaN and q = 0; dx below FLT_MIN gives dx = 0 and q = 0).
 * A lane's exact integer sum of u * q has |sum| <= 32 * 8191 * 8191 < 2^31. (14 bits on both
 * sides: on the tiny-q F16 file the error is about half of llama.cpp's, whose float16
 * activations lose 2^-11 of each value; 12-bit weights with 16-bit activations gave 2.8 times
 * llama.cpp's, as the weights' rounding dominates.) Per group and lane:
 *
 *     acc[L] = fmaf((float)isum, scale * dx, acc[L])
 *
 * and at the end the 16 lanes are added as L + L+8, then L + L+4, + L+2, + L+1 (the lane
 * form's order above). Storage is in chunks of 64 bytes: chunk c (0..15) holds elements
 * 2c and 2c + 1 of every lane in lane order (int16 u[32c + 2L + j] = element 2c + j of lane
 * L), so one vpdpwssd per chunk adds into each int32 lane only its own products. Decode and
 * prefill use the same packed rows and the same kernel (gemm_l16), so results never depend
 * on how tokens were batched. A row of n elements (a multiple of 32) is
 * ar_lane_groups(n, 32) groups. */
/* The form's constants: weight scale 2^(e - AR_L16_WSHIFT), |u| <= AR_L16_WLIM; activation
 * scale dx = amax / AR_L16_XLIM, |q| <= AR_L16_XLIM. A NaN result is NaN in every tier, its
 * sign not fixed (the reference's sums leave it to the compiler). */
#define AR_L16_WSHIFT 13
#define AR_L16_WLIM   8191
#define AR_L16_XLIM   8191
_Static_assert(32LL * AR_L16_WLIM * AR_L16_XLIM < 2147483648LL, "16-bit lanes: int32 bound");

typedef struct ar_block_wl16 {
    int16_t u[512];
    float scale[16];
} ar_block_wl16;
_Static_assert(sizeof(ar_block_wl16) == 1088, "ar_block_wl16 size");

typedef struct ar_block_xl16 {
    int16_t q[512];
    float dx[16];
} ar_block_xl16;
_Static_assert(sizeof(ar_block_xl16) == 1088, "ar_block_xl16 size");

/* The type id of weights repacked into 16-bit lanes: engine-made tensors only. It is ggml's
 * retired Q4_0_4_4 id, which the model loader refuses, so no file tensor has it. */
#define AR_TYPE_L16 31

/* The activation format a weight type multiplies with. */
typedef enum ar_act {
    AR_ACT_F32 = 0,  /* float32 rows (F32/F16/BF16 weights, or the float path) */
    AR_ACT_Q8A = 1,  /* ar_block_q8a blocks */
    AR_ACT_Q8K = 2,  /* ar_block_q8k blocks */
    AR_ACT_Q16K = 3, /* ar_block_q16k blocks (accurate path of the k-quants) */
    AR_ACT_Q16A = 4, /* Q16A rows (accurate path of the 32-block types) */
    AR_ACT_A8 = 5,   /* ar_block_a8 blocks (fast path in lanes) */
    AR_ACT_L16 = 6   /* ar_block_xl16 groups (F16/BF16 weights in the fast precision) */
} ar_act;

/* ---- function types ---------------------------------------------------------------------- */

/* sum_i w[i] * x[i] over n elements: w one weight row of the kernel's type, x the
 * activation row in that type's format (ar_act). n is a multiple of the type's block. */
typedef float (*ar_vec_dot_fn)(int64_t n, const void *w, const void *x);

/* The most query heads one attention kernel call takes. */
#define AR_ATTN_MAX_Q 8

/* The most activation rows a multi-row dot product takes at once. */
#define AR_MAX_NR 4

/* ys[r] = vec_dot(n, w, x + r * x_stride) for r < nr (1 <= nr <= AR_MAX_NR): one weight
 * row with nr activation rows x_stride bytes apart, unpacking each weight block once for
 * all of them. Each ys[r] must be bit-identical to vec_dot on that row alone (so results
 * never depend on how tokens were grouped). */
typedef void (*ar_vec_dot_n_fn)(int64_t n, const void *w, const void *x, size_t x_stride, int nr,
                                float *ys);

/* The most weight rows (AR_MN_W) and activation rows (AR_MN_R) one vec_dot_f_mn call takes. */
#define AR_MN_W 6
#define AR_MN_R 4

/* A tile of products: ys[i * nr + r] = dot(weight row i, activation row r) for i < nw,
 * r < nr (1 <= nw <= AR_MN_W, 1 <= nr <= AR_MN_R), with nw weight rows w_stride bytes apart
 * and nr float32 activation rows x_stride bytes apart, n elements each (any n). A register
 * tile: each weight vector is converted once for all nr rows and each activation vector
 * loaded once for all nw rows. Each ys[i * nr + r] is bit-identical to the tile of that
 * pair alone (nw = nr = 1), so results never depend on how rows or tokens were grouped. */
typedef void (*ar_vec_dot_mn_fn)(int64_t n, const void *w, size_t w_stride, int nw, const void *x,
                                 size_t x_stride, int nr, float *ys);

/* Unpack one weight row of n elements (a multiple of 256) of the kernel's type into n / 256
 * ar_block_w16 blocks. */
typedef void (*ar_pack16_fn)(int64_t n, const void *w, ar_block_w16 *out);

/* The GEMM form of vec_dot16: y[t * ldy + r] = vec_dot16(n, weight row r, activation row t)
 * for r < nw, t < nx, where weight row r is packed (pack16) at w + r * w_stride blocks and
 * activation row t (Q16K) is x_stride bytes after row t - 1. Every result is bit-identical
 * to the same tier's vec_dot16 on that row and token, whatever nw and nx are. */
typedef void (*ar_gemm16_fn)(int64_t n, const ar_block_w16 *w, size_t w_stride, int nw,
                             const void *x, size_t x_stride, int nx, float *y, size_t ldy);

/* Lane form: one weight row of n elements (a multiple of 256) into ar_lane_groups blocks. */
typedef void (*ar_pack8_fn)(int64_t n, const void *w, ar_block_w8 *out);

/* Lane form: one activation row (ar_block_a8) into the GEMM layout of lanes of `lane`
 * elements (32 or 16). */
typedef void (*ar_pack8x_fn)(int64_t n, const ar_block_a8 *x, int lane, ar_block_x8 *out);

/* Lane form, GEMM: y[t * ldy + r] = vec_dot8(n, weight row r, activation row t) for r < nw,
 * t < nx; weight row r packed (pack8) at w + r * w_stride blocks, activation row t packed
 * (pack8x) at x + t * x_stride blocks; lanes of `lane` elements. Bit-identical to vec_dot8
 * in every case. */
typedef void (*ar_gemm8_fn)(int64_t n, const ar_block_w8 *w, size_t w_stride, int nw,
                            const ar_block_x8 *x, size_t x_stride, int nx, int lane, float *y,
                            size_t ldy);

/* 16-bit lanes: one F16 or BF16 weight row of n elements (a multiple of 32) into
 * ar_lane_groups(n, 32) groups. */
typedef void (*ar_pack_l16_fn)(int64_t n, const void *w, ar_block_wl16 *out);

/* 16-bit lanes: y[t * ldy + r] = the product of packed weight row r (at w + r * w_stride
 * groups) and activation row t (at x + t * x_stride groups), n elements, for r < nw, t < nx
 * (any nw, nx >= 1). Every result is bit-identical to the scalar reference's for that pair,
 * whatever nw and nx are. */
typedef void (*ar_gemm_l16_fn)(int64_t n, const ar_block_wl16 *w, size_t w_stride, int nw,
                               const ar_block_xl16 *x, size_t x_stride, int nx, float *y,
                               size_t ldy);

/* Quantize n floats (a multiple of the block size) into activation blocks. */
typedef void (*ar_quantize_fn)(const float *x, void *y, int64_t n);

/* ---- CPU tiers --------------------------------------------------------------------------- */

typedef enum ar_cpu_tier {
    AR_CPU_AUTO = -1, /* the best the CPU supports */
    AR_CPU_SCALAR = 0,
    AR_CPU_AVX2 = 1,
    AR_CPU_AVX512 = 2
} ar_cpu_tier;

/* The best tier this CPU runs (cpuid + the OS saving the vector state). */
ar_cpu_tier ar_cpu_best_tier(void);

/* The name of a tier: "scalar", "avx2", "avx512". */
const char *ar_cpu_tier_name(ar_cpu_tier tier);

/* ---- the table --------------------------------------------------------------------------- */

#define AR_N_TYPES 32 /* ar_type ids (and AR_TYPE_L16) are below this */

typedef struct ar_kernels {
    ar_cpu_tier tier;

    /* Per weight type: its activation format and, for quantized types, the integer dot
     * product with that format. to_float converts weight rows (any supported type). */
    ar_act act[AR_N_TYPES];
    ar_vec_dot_fn vec_dot[AR_N_TYPES];     /* NULL for F32, F16, BF16 */
    ar_vec_dot_n_fn vec_dot_n[AR_N_TYPES]; /* multi-row form; NULL: callers loop vec_dot */
    ar_to_float_fn to_float[AR_N_TYPES];

    ar_quantize_fn quantize_q8a;
    ar_quantize_fn quantize_q8k;

    /* The accurate path: products with 15-bit activations in one pass, in the format
     * act16[type] (Q16K for the k-quants, Q16A for the 32-block types). NULL where a tier
     * has none (the engine then uses two 8-bit passes). The stride of vec_dot16_n is the
     * activation row size in bytes. */
    ar_act act16[AR_N_TYPES];
    ar_vec_dot_fn vec_dot16[AR_N_TYPES];
    ar_vec_dot_n_fn vec_dot16_n[AR_N_TYPES];
    ar_quantize_fn quantize_q16k;
    /* The GEMM path of vec_dot16 for several tokens (the k-quants): pack16 unpacks weight
     * rows once, gemm16 multiplies packed rows with many activation rows. gemm16 is NULL
     * where a tier has none (AVX2: the engine keeps vec_dot16_n). */
    ar_pack16_fn pack16[AR_N_TYPES];
    ar_gemm16_fn gemm16[AR_N_TYPES];
    ar_quantize_fn quantize_q16a; /* n floats -> one Q16A row */

    /* The fast precision in lanes (above): lanes8 is the lane size (32 or 16; 0: none);
     * vec_dot8 takes a weight row as stored and an ar_block_a8 row (NULL: the type or the
     * tier has no lane form); pack8 / pack8x / gemm8 are the GEMM form. */
    int lanes8[AR_N_TYPES];
    ar_vec_dot_fn vec_dot8[AR_N_TYPES];
    ar_pack8_fn pack8[AR_N_TYPES];
    ar_quantize_fn quantize_a8; /* n floats -> n / 256 ar_block_a8 */
    ar_pack8x_fn pack8x;
    ar_gemm8_fn gemm8;

    /* Float weights in 16-bit lanes (above): pack_l16 for F16 and BF16 (NULL for other
     * types), quantize_l16 (n floats, a multiple of 32 -> ar_lane_groups(n, 32)
     * ar_block_xl16), gemm_l16. */
    ar_pack_l16_fn pack_l16[AR_N_TYPES];
    ar_quantize_fn quantize_l16;
    ar_gemm_l16_fn gemm_l16;

    /* F16 and BF16 weights times float32 activations without converting the row first:
     * x is float32 rows (vec_dot_n stride in bytes). NULL: the engine converts the weight
     * row with to_float and uses dot_f32. */
    ar_vec_dot_fn vec_dot_f[AR_N_TYPES];
    ar_vec_dot_n_fn vec_dot_f_n[AR_N_TYPES];
    /* The same products as register tiles of weight rows x activation rows (prefill and
     * decode both use it). Every tier has it for F16 and BF16: the scalar tier's is the
     * reference, bit-identical to to_float then dot_f32 (one accumulator, in order); a SIMD
     * tier's gives each pair the bits its vec_dot_f gives. NULL for other types. */
    ar_vec_dot_mn_fn vec_dot_f_mn[AR_N_TYPES];

    /* Float vector operations (n any length). */
    float (*dot_f32)(int64_t n, const float *a, const float *b);
    /* ys[r] = dot_f32(n, w, x + r * x_stride) for r < nr (1 <= nr <= AR_MAX_NR; stride in
     * floats), each bit-identical to dot_f32 on that row alone. NULL: callers loop. */
    void (*dot_f32_n)(int64_t n, const float *w, const float *x, size_t x_stride, int nr,
                      float *ys);
    /* y[i] += a * x[i] */
    void (*axpy_f32)(int64_t n, float a, const float *x, float *y);
    /* y[i] = x[i] * s * w[i], where s = 1 / sqrt(mean(x^2) + eps) (RMSNorm); y may be x */
    void (*rmsnorm_f32)(int64_t n, const float *x, const float *w, float eps, float *y);
    /* y[i] = silu(g[i]) * u[i] = g[i] / (1 + exp(-g[i])) * u[i]; y may be g or u */
    void (*silu_mul_f32)(int64_t n, const float *g, const float *u, float *y);
    /* x[i] = exp(x[i] - max) / sum (in place); returns the sum before normalizing. A row
     * that is all -inf (or empty) becomes zeros and returns 0; a NaN makes the row NaN. */
    float (*softmax_f32)(int64_t n, float *x);

    /* Attention of up to AR_ATTN_MAX_Q query heads that share one key/value head (grouped-
     * query attention), over n cache positions given as row numbers slot[j] (rows of
     * k_stride / v_stride floats; hd floats used): the key and value rows are loaded once for
     * all the heads. NULL where a tier has none (the engine then goes head by head with
     * dot_f32 and axpy_f32).
     *   attn_scores: s[h * s_stride + j] = dot(q_h, k_slot[j]) * scale, q_h = q + h * q_stride
     *   attn_values: out[h * o_stride + d] = sum over j in order of p[h * p_stride + j] *
     *                v_slot[j][d], one fused multiply-add per term (fmaf) from 0: the same
     *                bits in every tier. */
    void (*attn_scores)(int hd, int nq, const float *q, size_t q_stride, const float *k,
                        size_t k_stride, const int32_t *slot, int n, float scale, float *s,
                        size_t s_stride);
    void (*attn_values)(int hd, int nq, const float *p, size_t p_stride, const float *v,
                        size_t v_stride, const int32_t *slot, int n, float *out, size_t o_stride);

    /* float16 storage (the F16 KV cache): conversions of n values. */
    void (*f32_to_f16)(int64_t n, const float *x, uint16_t *y);
    void (*f16_to_f32)(int64_t n, const uint16_t *x, float *y);
} ar_kernels;

/* Fill *k for `tier` (AR_CPU_AUTO = the best available). Returns AR_ERR_UNSUPPORTED when
 * the CPU cannot run the tier asked for. */
ar_status ar_kernels_get(ar_cpu_tier tier, ar_kernels *k);

/* Per-tier fillers, one per kernel family and tier (scalar first; SIMD fillers override
 * what they implement and leave the rest). Internal to src/kernels. */
void ar_kernels_fill_float_scalar(ar_kernels *k);
void ar_kernels_fill_float_avx2(ar_kernels *k);
void ar_kernels_fill_float_avx512(ar_kernels *k);
void ar_kernels_fill_q32_scalar(ar_kernels *k);
void ar_kernels_fill_q32_avx2(ar_kernels *k);
void ar_kernels_fill_q32_avx512(ar_kernels *k);
void ar_kernels_fill_qk_scalar(ar_kernels *k);
void ar_kernels_fill_qk_avx2(ar_kernels *k);
void ar_kernels_fill_qk_avx512(ar_kernels *k);
void ar_kernels_fill_q16_scalar(ar_kernels *k);
void ar_kernels_fill_q16_avx2(ar_kernels *k);
void ar_kernels_fill_q16_avx512(ar_kernels *k);
void ar_kernels_fill_gemm16_scalar(ar_kernels *k);
void ar_kernels_fill_gemm16_avx512(ar_kernels *k);
void ar_kernels_fill_q16a_scalar(ar_kernels *k);
void ar_kernels_fill_q16a_avx2(ar_kernels *k);
void ar_kernels_fill_q16a_avx512(ar_kernels *k);
void ar_kernels_fill_gemm8_scalar(ar_kernels *k);
void ar_kernels_fill_gemm8_avx512(ar_kernels *k);
void ar_kernels_fill_lane16_scalar(ar_kernels *k);
void ar_kernels_fill_lane16_avx512(ar_kernels *k);
void ar_kernels_fill_half_scalar(ar_kernels *k);
void ar_kernels_fill_half_avx2(ar_kernels *k);
void ar_kernels_fill_half_avx512(ar_kernels *k);

#endif
