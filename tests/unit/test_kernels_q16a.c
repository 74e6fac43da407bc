/*
 * test_kernels_q16a.c - the 32-block types' accurate path (src/kernels/q16a_*.c):
 * quantize_q16a (15-bit activations in a Q16A row) and the one-pass Q4_0, Q4_1, Q5_0, Q5_1,
 * Q8_0 x Q16A dot products of every CPU tier.
 *
 * 1. The scalar quantizer against hand-computed rows: zeros and the FLT_MIN edge, an exact
 *    scale with halfway cases rounded away from zero, a negative maximum, inf and NaN
 *    blocks, values near FLT_MAX; the row layout (qs | d | s | zero padding: every byte
 *    written).
 * 2. Each scalar vec_dot16 against a float64 dot of the dequantized weights (the reference
 *    to_float) with the dequantized activations (d * qs): within 1e-6 of T, the sum of the
 *    magnitudes of the terms (per block |dw d| sum |q a| + |mw s|); the same on extreme
 *    blocks (every quant at its end, Q8_0's -128, activations at +-16383), which also pins
 *    the int32 bound of the SIMD tiers. A NaN activation block makes every dot NaN.
 * 3. Every SIMD tier the CPU runs against the scalar tier: quantize_q16a byte-identical
 *    over the whole row (padding included) on random and special rows; vec_dot16 within
 *    1e-5 of T on random blocks, n = 32 .. 8960 (every remainder of 4 blocks), weights at
 *    odd addresses of exactly-sized allocations, activation rows of exactly
 *    ar_q16a_row_bytes.
 * 4. vec_dot16_n: NULL in the scalar tier; in the SIMD tiers, nr = 1..AR_MAX_NR rows each
 *    bit-identical (memcmp) to vec_dot16 on its row alone, no write past ys[nr - 1], with
 *    weights at an odd address and (a) the engine's layout: rows 64-byte aligned, stride
 *    ar_q16a_row_bytes (a multiple of 64); (b) the kernels need no alignment, so also rows
 *    at an odd-of-2 address (2 mod 64) and a stride that is not a multiple of 64 (row size
 *    + 2 bytes). vec_dot16 alone is checked on unaligned rows in 3 as well.
 * 5. The error of the whole path (quantize_q16a + vec_dot16, best tier) against the float64
 *    dot of the dequantized weights with the original float activations, next to the int8
 *    path (Q8A) on the same data (numbers in test_q16a_path_error).
 *
 * Set AR_Q16A_BENCH=1 to also print ns per weight row of vec_dot16 / vec_dot16_n (4 rows)
 * against the int8 vec_dot / vec_dot_n of the same tier (test_speed; prints only).
 */
#include "testutil.h"

#include "archrouter.h"
#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "kernels/types.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- Helpers ---------------------------------------------------------------------------- */

static const ar_type q32_types[] = {AR_TYPE_Q8_0, AR_TYPE_Q4_0, AR_TYPE_Q4_1, AR_TYPE_Q5_0,
                                    AR_TYPE_Q5_1};
#define N_TYPES (sizeof q32_types / sizeof q32_types[0])

/* every remainder of 4 blocks (and of 2), small and model sizes */
static const int64_t sizes[] = {32, 64, 96, 128, 160, 224, 1536, 8960};
#define N_SIZES (sizeof sizes / sizeof sizes[0])

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd_u64(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}
static double rnd_uniform(void) { /* [0, 1) */
    return (double)(rnd_u64() >> 11) * 0x1.0p-53;
}
static double rnd_gauss(void) {
    const double u = 1.0 - rnd_uniform(), v = rnd_uniform();
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

static const ar_type_traits *traits(ar_type t) {
    const ar_type_traits *tt = ar_type_traits_get((uint32_t)t);
    assert_non_null(tt);
    return tt;
}

static size_t wrow_bytes(ar_type t, int64_t n) {
    return (size_t)(n / traits(t)->blck_size) * (size_t)traits(t)->type_size;
}

static ar_kernels tier_k[3];
static int have_tier[3];

static void load_tiers(void) {
    for (int t = AR_CPU_SCALAR; t <= AR_CPU_AVX512; t++) {
        const ar_status st = ar_kernels_get((ar_cpu_tier)t, &tier_k[t]);
        if (st == AR_ERR_UNSUPPORTED) continue;
        assert_int_equal(st, AR_OK);
        have_tier[t] = 1;
    }
    assert_true(have_tier[AR_CPU_SCALAR]);
}

/* A Q16A row, read through the documented layout. */
typedef struct q16a_view {
    int64_t n;
    const uint8_t *p;
} q16a_view;

static int qs_at(q16a_view v, int64_t i) {
    int16_t q;
    memcpy(&q, v.p + 2 * i, 2);
    return q;
}
static float d_at(q16a_view v, int64_t ib) {
    float d;
    memcpy(&d, v.p + 2 * v.n + 4 * ib, 4);
    return d;
}
static float s_at(q16a_view v, int64_t ib) {
    float s;
    memcpy(&s, v.p + 2 * v.n + 4 * (v.n / 32 + ib), 4);
    return s;
}

/* Integer quants, scale and minimum of one block, decoded from the layout in quant.h (an
 * independent decoder: q[i] is the integer the scale multiplies, offsets applied). */
static void decode_block(ar_type t, const uint8_t *b, int q[32], double *d, double *m) {
    uint16_t h;
    memcpy(&h, b, 2);
    *d = ar_fp16_to_fp32(h);
    *m = 0;
    if (t == AR_TYPE_Q4_1 || t == AR_TYPE_Q5_1) {
        memcpy(&h, b + 2, 2);
        *m = ar_fp16_to_fp32(h);
    }
    if (t == AR_TYPE_Q8_0) {
        for (int i = 0; i < 32; i++) q[i] = (int8_t)b[2 + i];
        return;
    }
    const int at = t == AR_TYPE_Q4_0 ? 2 : t == AR_TYPE_Q4_1 ? 4 : t == AR_TYPE_Q5_0 ? 6 : 8;
    uint32_t qh = 0;
    const int five = t == AR_TYPE_Q5_0 || t == AR_TYPE_Q5_1;
    if (five) {
        const uint8_t *p = b + (t == AR_TYPE_Q5_0 ? 2 : 4);
        qh = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    }
    const int off = t == AR_TYPE_Q4_0 ? 8 : t == AR_TYPE_Q5_0 ? 16 : 0;
    for (int j = 0; j < 16; j++) {
        q[j] = (b[at + j] & 15) + (five ? (int)((qh >> j) & 1) << 4 : 0) - off;
        q[j + 16] = (b[at + j] >> 4) + (five ? (int)((qh >> (j + 16)) & 1) << 4 : 0) - off;
    }
}

/* Random valid blocks: random quant bytes, float16 scales of either sign in [1e-3, 0.1),
 * minimums in [-0.2, 0.2) for the "_1" types. */
static void random_blocks(ar_type t, int64_t n, uint8_t *w) {
    const size_t bytes = wrow_bytes(t, n), bs = (size_t)traits(t)->type_size;
    for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)rnd_u64();
    for (size_t o = 0; o < bytes; o += bs) {
        const float d = (float)((rnd_uniform() * 0.099 + 0.001) * (rnd_u64() & 1 ? 1 : -1));
        const uint16_t hd = ar_fp32_to_fp16(d);
        memcpy(w + o, &hd, 2);
        if (t == AR_TYPE_Q4_1 || t == AR_TYPE_Q5_1) {
            const uint16_t hm = ar_fp32_to_fp16((float)(rnd_uniform() * 0.4 - 0.2));
            memcpy(w + o + 2, &hm, 2);
        }
    }
}

/* Random activations of magnitude `scale`: Gaussian, one in 200 30x larger when
 * `outliers`; now and then a block of zeros or of one sign only. */
static void random_acts(float *x, int64_t n, double scale, int outliers) {
    for (int64_t b = 0; b < n; b += 32) {
        const int kind = (int)(rnd_u64() % 16);
        for (int64_t i = b; i < b + 32; i++) {
            double v = rnd_gauss() * scale;
            if (outliers && rnd_u64() % 200 == 0) v *= 30;
            if (kind == 0) v = 0;
            if (kind == 1) v = fabs(v);
            x[i] = (float)v;
        }
    }
}

/* Float64 reference of a weight row with a Q16A row: *deq = sum to_float(w)[i] * (d qs[i]),
 * *mag = T = sum over blocks of |dw d| sum |q a| + |mw s|. */
static void ref_dot(ar_type t, int64_t n, const uint8_t *w, q16a_view x, double *deq, double *mag) {
    float *wf = xmalloc((size_t)n * sizeof(float));
    traits(t)->to_float(w, wf, n);
    const size_t bs = (size_t)traits(t)->type_size;
    *deq = *mag = 0;
    for (int64_t ib = 0; ib < n / 32; ib++) {
        int q[32];
        double dw, mw, abs_p = 0;
        decode_block(t, w + (size_t)ib * bs, q, &dw, &mw);
        const double d = d_at(x, ib);
        for (int i = 0; i < 32; i++) {
            const int a = qs_at(x, ib * 32 + i);
            *deq += (double)wf[ib * 32 + i] * (d * a);
            abs_p += fabs((double)q[i] * a);
        }
        *mag += fabs(dw * d) * abs_p + fabs(mw * s_at(x, ib));
    }
    free(wf);
}

/* Quantize with a tier into a fresh exactly-sized buffer pre-filled with `fill`. */
static uint8_t *quantize_with(const ar_kernels *k, const float *x, int64_t n, int fill) {
    const size_t rb = ar_q16a_row_bytes(n);
    uint8_t *row = xmalloc(rb);
    memset(row, fill, rb);
    k->quantize_q16a(x, row, n);
    return row;
}

/* --- 1. The quantizer, by hand ---------------------------------------------------------- */

static void test_row_bytes(void **state) {
    (void)state;
    assert_int_equal(ar_q16a_row_bytes(32), 128);    /* 64 + 8 -> 128 */
    assert_int_equal(ar_q16a_row_bytes(256), 576);   /* 512 + 64 */
    assert_int_equal(ar_q16a_row_bytes(1536), 3456); /* 3072 + 384 */
    assert_int_equal(ar_q16a_row_bytes(8960), 20160);
    assert_int_equal(ar_q16a_row_bytes(96), 256); /* 192 + 24 -> 256 */
}

/* Check the layout invariants of a scalar row and that every byte past s[] is zero. */
static void check_row_invariants(q16a_view v) {
    for (int64_t ib = 0; ib < v.n / 32; ib++) {
        const float d = d_at(v, ib);
        int32_t sum = 0;
        for (int i = 0; i < 32; i++) {
            const int q = qs_at(v, ib * 32 + i);
            assert_true(q >= -16383 && q <= 16383);
            if (!(d > 0.0f)) assert_int_equal(q, 0);
            sum += q;
        }
        if (isnan(d))
            assert_true(isnan(s_at(v, ib)));
        else if (d == 0.0f)
            assert_true(s_at(v, ib) == 0.0f && !signbit(s_at(v, ib)) && !signbit(d));
        else
            assert_true(s_at(v, ib) == d * (float)sum);
    }
    const size_t head = (size_t)v.n * 2 + (size_t)(v.n / 32) * 8;
    for (size_t i = head; i < ar_q16a_row_bytes(v.n); i++)
        if (v.p[i] != 0)
            fail_msg("padding byte %zu of a row of %lld is %d", i, (long long)v.n, v.p[i]);
}

static void test_quantize_zeros_and_tiny(void **state) {
    (void)state;
    float x[96] = {0};
    x[3] = -0.0f;
    /* block 1: amax = 16383 * 2^-127 gives d = 2^-127 < FLT_MIN: all zero */
    x[32 + 5] = ldexpf(16383.0f, -127);
    x[32 + 6] = -1e-40f;
    /* block 2: amax = 16383 * 2^-126 gives d = FLT_MIN exactly: quantized */
    x[64 + 7] = -ldexpf(16383.0f, -126);
    x[64 + 8] = ldexpf(2.5f, -126); /* 2.5 -> 3 */
    uint8_t *row = quantize_with(&tier_k[AR_CPU_SCALAR], x, 96, 0x5a);
    const q16a_view v = {96, row};
    for (int ib = 0; ib < 2; ib++) {
        assert_true(d_at(v, ib) == 0.0f && !signbit(d_at(v, ib)));
        assert_true(s_at(v, ib) == 0.0f && !signbit(s_at(v, ib)));
    }
    assert_true(d_at(v, 2) == FLT_MIN);
    for (int i = 0; i < 96; i++) assert_int_equal(qs_at(v, i), i == 71 ? -16383 : i == 72 ? 3 : 0);
    assert_true(s_at(v, 2) == FLT_MIN * -16380.0f);
    check_row_invariants(v);
    free(row);
}

static void test_quantize_exact_scale(void **state) {
    (void)state;
    /* amax = 16383 / 4 makes d = 0.25 exactly, so qs = roundf(4 x): halfway cases away
     * from zero */
    float x[64] = {0};
    const float in[] = {4095.75f, 1.125f, -1.125f,   0.375f,     -0.375f, 0.1f,
                        -0.12f,   0.125f, 4095.625f, -4095.625f, 2.0f,    1e-30f};
    const int want[] = {16383, 5, -5, 2, -2, 0, 0, 1, 16383, -16383, 8, 0};
    memcpy(x + 10, in, sizeof in);
    x[31] = -3.0f; /* -12 */
    x[32] = 1.0f;  /* block 1: d = 1 / 16383 (rounded), qs = 16383 */
    x[33] = -0.5f; /* about -8191.5: whatever roundf(x / d) gives */
    x[63] = 0.25f;
    uint8_t *row = quantize_with(&tier_k[AR_CPU_SCALAR], x, 64, 0xa5);
    const q16a_view v = {64, row};
    assert_true(d_at(v, 0) == 0.25f);
    int sum = 0;
    for (int i = 0; i < 32; i++) {
        int w = 0;
        if (i >= 10 && i < 10 + (int)(sizeof want / sizeof want[0])) w = want[i - 10];
        if (i == 31) w = -12;
        if (qs_at(v, i) != w) fail_msg("qs[%d] = %d, want %d", i, qs_at(v, i), w);
        sum += w;
    }
    assert_true(s_at(v, 0) == 0.25f * (float)sum);
    /* block 1: the reference definition, a true division per element */
    const float d1 = 1.0f / 16383.0f;
    assert_true(d_at(v, 1) == d1);
    assert_int_equal(qs_at(v, 32), 16383);
    assert_int_equal(qs_at(v, 33), (int)roundf(-0.5f / d1));
    assert_int_equal(qs_at(v, 63), (int)roundf(0.25f / d1));
    check_row_invariants(v);
    free(row);
}

static void test_quantize_negative_max(void **state) {
    (void)state;
    float x[32];
    for (int i = 0; i < 32; i++) x[i] = 0.01f * (float)(i % 7);
    x[20] = -8191.5f; /* d = 0.5 */
    x[21] = 0.25f;    /* 0.5 -> 1 */
    x[22] = -0.75f;   /* -1.5 -> -2 */
    uint8_t *row = quantize_with(&tier_k[AR_CPU_SCALAR], x, 32, 0x11);
    const q16a_view v = {32, row};
    assert_true(d_at(v, 0) == 0.5f && s_at(v, 0) == 0.5f * (-16383.0f + 1 - 2));
    for (int i = 0; i < 32; i++)
        assert_int_equal(qs_at(v, i), i == 20 ? -16383 : i == 21 ? 1 : i == 22 ? -2 : 0);
    free(row);
    /* a general scale: |x - d q| <= d / 2 (up to the rounding of x / d) */
    for (int i = 0; i < 32; i++) x[i] = (float)sin(0.37 * i) * 3.7f;
    row = quantize_with(&tier_k[AR_CPU_SCALAR], x, 32, 0x11);
    const q16a_view u = {32, row};
    float amax = 0.0f;
    for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
    assert_true(d_at(u, 0) == amax / 16383.0f);
    for (int i = 0; i < 32; i++) {
        assert_int_equal(qs_at(u, i), (int)roundf(x[i] / d_at(u, 0)));
        assert_true(fabs((double)x[i] - (double)d_at(u, 0) * qs_at(u, i)) <=
                    0.5000001 * d_at(u, 0));
    }
    check_row_invariants(u);
    free(row);
}

static void test_quantize_inf_nan(void **state) {
    (void)state;
    float x[128];
    for (int i = 0; i < 128; i++) x[i] = (float)(i % 17) - 8.0f;
    x[10] = NAN;
    x[32 + 31] = INFINITY;
    x[64] = -INFINITY;
    uint8_t *row = quantize_with(&tier_k[AR_CPU_SCALAR], x, 128, 0x77);
    const q16a_view v = {128, row};
    for (int ib = 0; ib < 3; ib++) {
        assert_true(isnan(d_at(v, ib)) && isnan(s_at(v, ib)));
        for (int i = 0; i < 32; i++) assert_int_equal(qs_at(v, 32 * ib + i), 0);
    }
    /* the finite block is untouched by its neighbours: amax 8 */
    assert_true(d_at(v, 3) == 8.0f / 16383.0f);
    uint8_t *one = quantize_with(&tier_k[AR_CPU_SCALAR], x + 96, 32, 0x33);
    assert_memory_equal(one, row + 192, 64);
    assert_true(d_at((q16a_view){32, one}, 0) == d_at(v, 3));
    assert_true(s_at((q16a_view){32, one}, 0) == s_at(v, 3));
    check_row_invariants(v);
    /* a NaN block makes every dot product NaN, in every tier */
    uint8_t w[4 * 34];
    for (size_t t = 0; t < N_TYPES; t++) {
        random_blocks(q32_types[t], 128, w);
        for (int k = 0; k < 3; k++)
            if (have_tier[k]) assert_true(isnan(tier_k[k].vec_dot16[q32_types[t]](128, w, row)));
    }
    free(one);
    free(row);
}

static void test_quantize_extreme_magnitudes(void **state) {
    (void)state;
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = (float)rnd_gauss() * 1e37f;
    x[3] = FLT_MAX;
    x[32 + 4] = -FLT_MAX;
    uint8_t *row = quantize_with(&tier_k[AR_CPU_SCALAR], x, 64, 0x5a);
    const q16a_view v = {64, row};
    for (int ib = 0; ib < 2; ib++) {
        assert_true(d_at(v, ib) == FLT_MAX / 16383.0f);
        for (int i = 0; i < 32; i++)
            assert_int_equal(qs_at(v, 32 * ib + i), (int)roundf(x[32 * ib + i] / d_at(v, ib)));
    }
    assert_int_equal(qs_at(v, 3), 16383);
    assert_int_equal(qs_at(v, 36), -16383);
    check_row_invariants(v); /* s = d * sum may be large but is d * (float)sum */
    free(row);
}

/* --- 2. Scalar dot products against float64 ------------------------------------------- */

static void test_scalar_dot_exact(void **state) {
    (void)state;
    const ar_kernels *k = &tier_k[AR_CPU_SCALAR];
    for (size_t t = 0; t < N_TYPES; t++) {
        const ar_type type = q32_types[t];
        assert_true(k->act16[type] == AR_ACT_Q16A);
        assert_non_null(k->vec_dot16[type]);
        for (size_t s = 0; s < N_SIZES; s++) {
            const int64_t n = sizes[s];
            uint8_t *w = xmalloc(wrow_bytes(type, n));
            float *x = xmalloc((size_t)n * sizeof *x);
            for (int rep = 0; rep < 8; rep++) {
                random_blocks(type, n, w);
                random_acts(x, n, pow(10.0, rep % 5 - 2), rep & 1);
                uint8_t *row = quantize_with(k, x, n, 0);
                double deq, mag;
                ref_dot(type, n, w, (q16a_view){n, row}, &deq, &mag);
                const double got = k->vec_dot16[type](n, w, row);
                if (!(fabs(got - deq) <= 1e-6 * mag + 1e-30))
                    fail_msg("%s n=%lld rep %d: %.9g vs %.17g (T %.3g)", traits(type)->name,
                             (long long)n, rep, got, deq, mag);
                free(row);
            }
            free(x);
            free(w);
        }
    }
}

/* Extreme blocks: every quant byte 0x00 or 0xff (Q8_0: 0x80 = -128 or 0x7f = 127), scales
 * 1.0 and minimum 0.5, activations +-16383 of one sign or alternating. Q8_0 at -128 with
 * a = 16383 puts 8 * 128 * 16383 = 16776192 < 2^24 into each folded AVX-512 lane, 16 * 128 *
 * 16383 into an AVX2 one. */
static void fill_extreme(ar_type t, uint8_t *w, int64_t nblk, uint8_t *xrow, int64_t n,
                         int variant) {
    const size_t bs = (size_t)traits(t)->type_size;
    for (int64_t b = 0; b < nblk; b++) {
        uint8_t *p = w + (size_t)b * bs;
        memset(p, (variant & 1) ? 0xff : 0x00, bs);
        if (t == AR_TYPE_Q8_0) memset(p + 2, (variant & 1) ? 0x7f : 0x80, 32);
        const uint16_t one = 0x3c00, half = 0x3800;
        memcpy(p, &one, 2);
        if (t == AR_TYPE_Q4_1 || t == AR_TYPE_Q5_1) memcpy(p + 2, &half, 2);
    }
    memset(xrow, 0, ar_q16a_row_bytes(n));
    const int a = (variant & 2) ? -16383 : 16383;
    for (int64_t i = 0; i < n; i++) {
        const int16_t q = (int16_t)((variant & 4) && (i & 1) ? -a : a);
        memcpy(xrow + 2 * i, &q, 2);
    }
    for (int64_t ib = 0; ib < n / 32; ib++) {
        const float d = 0.5f;
        int32_t sum = 0;
        for (int i = 0; i < 32; i++) sum += qs_at((q16a_view){n, xrow}, 32 * ib + i);
        const float s = d * (float)sum;
        memcpy(xrow + 2 * n + 4 * ib, &d, 4);
        memcpy(xrow + 2 * n + 4 * (n / 32 + ib), &s, 4);
    }
}

static void test_scalar_dot_extremes(void **state) {
    (void)state;
    const ar_kernels *k = &tier_k[AR_CPU_SCALAR];
    const int64_t n = 256;
    uint8_t w[8 * 34], x[1152];
    for (size_t t = 0; t < N_TYPES; t++) {
        for (int variant = 0; variant < 8; variant++) {
            fill_extreme(q32_types[t], w, n / 32, x, n, variant);
            double deq, mag;
            ref_dot(q32_types[t], n, w, (q16a_view){n, x}, &deq, &mag);
            const double got = k->vec_dot16[q32_types[t]](n, w, x);
            if (!(fabs(got - deq) <= 1e-6 * mag))
                fail_msg("%s extreme %d: %.9g vs %.17g", traits(q32_types[t])->name, variant, got,
                         deq);
        }
    }
}

/* --- 3. SIMD tiers against the scalar tier --------------------------------------------- */

/* Special activation rows for the quantizer: ties, NaN/inf, subnormals, zero blocks, huge. */
static void fill_special(float *x, int64_t n, int which) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)rnd_gauss();
    switch (which) {
    case 0: /* magnitude ties of both signs */
        for (int64_t b = 0; b < n / 32; b++) {
            x[b * 32 + (b * 7) % 32] = 9.0f;
            x[b * 32 + (b * 13 + 5) % 32] = -9.0f;
        }
        break;
    case 1: /* d = 1 / 4: every value on a rounding tie */
        for (int64_t i = 0; i < n; i++) x[i] = ((float)((int)(i % 1001) - 500) + 0.5f) * 0.25f;
        for (int64_t b = 0; b < n / 32; b++) x[b * 32 + 7] = -4095.75f;
        break;
    case 2: /* subnormal and tiny values, a zero block, a block at the FLT_MIN edge */
        for (int64_t i = 0; i < n; i++) x[i] = (float)(rnd_gauss() * 1e-36);
        memset(x, 0, 32 * sizeof *x);
        if (n >= 64) x[33] = ldexpf(16383.0f, -126);
        if (n >= 96) x[70] = ldexpf(16383.0f, -127);
        break;
    case 3: /* NaN and inf */
        x[5] = NAN;
        if (n >= 64) {
            x[32 + 9] = INFINITY;
            x[32 + 10] = -INFINITY;
        }
        if (n >= 96) x[95] = -NAN;
        break;
    case 4: /* near FLT_MAX */
        for (int64_t i = 0; i < n; i++) x[i] = (float)rnd_gauss() * 3e37f;
        x[n - 1] = -FLT_MAX;
        break;
    case 5: /* many magnitudes */
        for (int64_t i = 0; i < n; i++) x[i] = (float)(rnd_gauss() * pow(10.0, (int)(i % 61) - 30));
        break;
    default: break;
    }
}
#define N_SPECIAL 6

static void compare_quantize(const ar_kernels *k, const float *x, int64_t n, const char *what) {
    const size_t rb = ar_q16a_row_bytes(n);
    uint8_t *a = quantize_with(&tier_k[AR_CPU_SCALAR], x, n, 0x11);
    uint8_t *b = quantize_with(k, x, n, 0x77);
    if (memcmp(a, b, rb) != 0) {
        size_t i = 0;
        while (a[i] == b[i]) i++;
        fail_msg("%s quantize_q16a differs from scalar (%s, n=%lld, byte %zu of %zu)",
                 ar_cpu_tier_name(k->tier), what, (long long)n, i, rb);
    }
    check_row_invariants((q16a_view){n, a});
    free(b);
    free(a);
}

static void check_tier(ar_cpu_tier tier) {
    if (!have_tier[tier]) {
        printf("  %s: not supported by this CPU, skipped\n", ar_cpu_tier_name(tier));
        skip();
    }
    const ar_kernels *k = &tier_k[tier], *ref = &tier_k[AR_CPU_SCALAR];
    assert_true(k->quantize_q16a != ref->quantize_q16a);
    for (size_t s = 0; s < N_SIZES; s++) {
        const int64_t n = sizes[s];
        float *x = xmalloc((size_t)n * sizeof *x);
        for (int which = 0; which < N_SPECIAL; which++) {
            fill_special(x, n, which);
            compare_quantize(k, x, n, "special");
        }
        for (int rep = 0; rep < 4; rep++) {
            random_acts(x, n, pow(10.0, 3 * rep - 4), rep & 1);
            compare_quantize(k, x, n, "random");
        }
        free(x);
    }
    double worst = 0.0;
    for (size_t t = 0; t < N_TYPES; t++) {
        const ar_type type = q32_types[t];
        assert_true(k->act16[type] == AR_ACT_Q16A);
        assert_true(k->vec_dot16[type] != ref->vec_dot16[type]);
        for (size_t s = 0; s < N_SIZES; s++) {
            const int64_t n = sizes[s];
            const size_t wb = wrow_bytes(type, n), rb = ar_q16a_row_bytes(n);
            uint8_t *w = xmalloc(wb), *wodd = xmalloc(wb + 1), *xu = xmalloc(rb + 2);
            float *x = xmalloc((size_t)n * sizeof *x);
            for (int rep = 0; rep < 10; rep++) {
                random_blocks(type, n, w);
                memcpy(wodd + 1, w, wb);
                random_acts(x, n, pow(10.0, rep % 7 - 3), rep & 1);
                uint8_t *row = quantize_with(ref, x, n, 0);
                memcpy(xu + 2, row, rb); /* the activation row 2 bytes off its allocation */
                double deq, mag;
                ref_dot(type, n, w, (q16a_view){n, row}, &deq, &mag);
                const double want = ref->vec_dot16[type](n, w, row);
                const float got = k->vec_dot16[type](n, wodd + 1, row);
                const float got_u = k->vec_dot16[type](n, wodd + 1, xu + 2);
                if (memcmp(&got, &got_u, sizeof got) != 0)
                    fail_msg("%s %s n=%lld: result depends on the activation address",
                             ar_cpu_tier_name(tier), traits(type)->name, (long long)n);
                if (!(fabs(got - want) <= 1e-5 * mag + 1e-30))
                    fail_msg("%s %s n=%lld rep %d: %.9g, scalar %.9g (T %.3g)",
                             ar_cpu_tier_name(tier), traits(type)->name, (long long)n, rep,
                             (double)got, want, mag);
                if (mag > 0 && fabs(got - deq) / mag > worst) worst = fabs(got - deq) / mag;
                free(row);
            }
            /* extreme blocks */
            for (int variant = 0; variant < 8; variant++) {
                uint8_t *xe = xmalloc(rb);
                fill_extreme(type, wodd + 1, n / 32, xe, n, variant);
                double deq, mag;
                ref_dot(type, n, wodd + 1, (q16a_view){n, xe}, &deq, &mag);
                const double got = k->vec_dot16[type](n, wodd + 1, xe);
                if (!(fabs(got - deq) <= 1e-5 * mag))
                    fail_msg("%s %s extreme %d n=%lld: %.9g vs %.17g", ar_cpu_tier_name(tier),
                             traits(type)->name, variant, (long long)n, got, deq);
                free(xe);
            }
            free(x);
            free(xu);
            free(wodd);
            free(w);
        }
    }
    printf("  %s: quantize_q16a byte-identical; vec_dot16 vs float64 worst %.2e of T\n",
           ar_cpu_tier_name(tier), worst);
}

static void test_tier_avx2(void **state) {
    (void)state;
    check_tier(AR_CPU_AVX2);
}

static void test_tier_avx512(void **state) {
    (void)state;
    check_tier(AR_CPU_AVX512);
}

/* --- 4. vec_dot16_n ---------------------------------------------------------------------- */

static void test_dot_n_scalar(void **state) {
    (void)state;
    const ar_kernels *k = &tier_k[AR_CPU_SCALAR];
    for (size_t t = 0; t < N_TYPES; t++) {
        assert_non_null(k->vec_dot16[q32_types[t]]);
        assert_null(k->vec_dot16_n[q32_types[t]]);
    }
}

/* nr rows at x, `stride` bytes apart, against vec_dot16 one row at a time (weights at an
 * odd address); ys[nr..] untouched. */
static void compare_dot_n(const ar_kernels *k, ar_type type, const uint8_t *wodd, const uint8_t *x,
                          size_t stride, int64_t n, int nr, const char *what) {
    float want[AR_MAX_NR + 1], got[AR_MAX_NR + 1];
    for (int r = 0; r < nr; r++) want[r] = k->vec_dot16[type](n, wodd, x + (size_t)r * stride);
    for (int r = 0; r <= AR_MAX_NR; r++) got[r] = -12345.0f;
    k->vec_dot16_n[type](n, wodd, x, stride, nr, got);
    for (int r = 0; r < nr; r++)
        if (memcmp(&got[r], &want[r], sizeof got[r]) != 0)
            fail_msg("%s %s vec_dot16_n n=%lld nr=%d (%s): row %d gives %.9g, vec_dot16 %.9g",
                     ar_cpu_tier_name(k->tier), traits(type)->name, (long long)n, nr, what, r,
                     (double)got[r], (double)want[r]);
    for (int r = nr; r <= AR_MAX_NR; r++)
        if (got[r] != -12345.0f)
            fail_msg("%s %s vec_dot16_n nr=%d wrote ys[%d]", ar_cpu_tier_name(k->tier),
                     traits(type)->name, nr, r);
}

static void check_dot_n(ar_cpu_tier tier) {
    if (!have_tier[tier]) {
        printf("  %s: not supported by this CPU, skipped\n", ar_cpu_tier_name(tier));
        skip();
    }
    const ar_kernels *k = &tier_k[tier];
    for (size_t t = 0; t < N_TYPES; t++) {
        assert_non_null(k->vec_dot16_n[q32_types[t]]);
        float y[AR_MAX_NR];
        for (int nr = 1; nr <= AR_MAX_NR; nr++) { /* empty rows read nothing, give 0 */
            for (int r = 0; r < nr; r++) y[r] = 1.0f;
            k->vec_dot16_n[q32_types[t]](0, "", "", 0, nr, y);
            for (int r = 0; r < nr; r++) assert_true(y[r] == 0.0f);
        }
    }
    for (size_t s = 0; s < N_SIZES; s++) {
        const int64_t n = sizes[s];
        const size_t rb = ar_q16a_row_bytes(n);
        float *xf = xmalloc((size_t)n * sizeof *xf);
        /* (a) the engine's layout: 64-byte aligned rows, stride rb; (b) rows at 2 mod 64,
         * stride rb + 2 */
        uint8_t *xa = aligned_alloc(64, AR_MAX_NR * rb);
        /* C11 aligned_alloc wants a size that is a multiple of the alignment */
        uint8_t *xbuf = aligned_alloc(64, (AR_MAX_NR * (rb + 2) + 64 + 63) & ~(size_t)63),
                *xb = xbuf + 2;
        assert_true(xa && xbuf);
        uint8_t *w = xmalloc(wrow_bytes(AR_TYPE_Q8_0, n) + 1); /* the largest blocks */
        for (int rep = 0; rep < 4; rep++) {
            memset(xbuf, 0xa5, AR_MAX_NR * (rb + 2) + 64);
            for (int r = 0; r < AR_MAX_NR; r++) {
                random_acts(xf, n, pow(10.0, (rep + 2 * r) % 7 - 3), (rep + r) & 1);
                k->quantize_q16a(xf, xa + (size_t)r * rb, n);
                memcpy(xb + (size_t)r * (rb + 2), xa + (size_t)r * rb, rb);
            }
            for (size_t t = 0; t < N_TYPES; t++) {
                const ar_type type = q32_types[t];
                random_blocks(type, n, w + 1);
                for (int nr = 1; nr <= AR_MAX_NR; nr++) {
                    compare_dot_n(k, type, w + 1, xa, rb, n, nr, "aligned rows, stride 64k");
                    compare_dot_n(k, type, w + 1, xb, rb + 2, n, nr, "rows at 2 mod 64");
                }
                /* the same results at either address */
                float ya[AR_MAX_NR], yb[AR_MAX_NR];
                k->vec_dot16_n[type](n, w + 1, xa, rb, AR_MAX_NR, ya);
                k->vec_dot16_n[type](n, w + 1, xb, rb + 2, AR_MAX_NR, yb);
                assert_memory_equal(ya, yb, sizeof ya);
            }
        }
        /* extreme blocks, a different variant in each row */
        for (size_t t = 0; t < N_TYPES; t++) {
            for (int variant = 0; variant < 8; variant++) {
                for (int r = 0; r < AR_MAX_NR; r++)
                    fill_extreme(q32_types[t], w + 1, n / 32, xa + (size_t)r * rb, n,
                                 (variant + 3 * r) % 8);
                fill_extreme(q32_types[t], w + 1, n / 32, xa, n, variant);
                for (int nr = 1; nr <= AR_MAX_NR; nr++)
                    compare_dot_n(k, q32_types[t], w + 1, xa, rb, n, nr, "extreme blocks");
            }
        }
        free(w);
        free(xbuf);
        free(xa);
        free(xf);
    }
    printf("  %s vec_dot16_n: bit-identical to vec_dot16 for nr 1..%d (aligned and unaligned "
           "rows)\n",
           ar_cpu_tier_name(tier), AR_MAX_NR);
}

static void test_dot_n_avx2(void **state) {
    (void)state;
    check_dot_n(AR_CPU_AVX2);
}

static void test_dot_n_avx512(void **state) {
    (void)state;
    check_dot_n(AR_CPU_AVX512);
}

/* --- 5. The whole path against float --------------------------------------------------- */

/* How far the q16a path (activations rounded to Q16A) lands from the float64 dot of the same
 * dequantized weights with the original float activations, next to the int8 (Q8A) path.
 * Per case, over 100 random rows: the RMS error over the RMS of the exact dots, and the
 * largest error as a fraction of sum |w x|. Measured (random blocks, n = 1536 and 8960,
 * the best tier):
 *   Gaussian activations:          q16a RMS ratio 3.0e-5 .. 3.5e-5, max 2.4e-6 .. 3.3e-6
 *                                  (int8:         3.9e-3 .. 4.5e-3, max 3.2e-4 .. 4.3e-4)
 *   Gaussian, 1 in 200 spiked 30x: q16a RMS ratio 3.0e-5 .. 4.0e-5, max 2.5e-6 .. 4.2e-6
 *                                  (int8:         3.9e-3 .. 5.4e-3, max 3.3e-4 .. 5.5e-4)
 * about 125 times less than the int8 path (16383 steps instead of 127). Random weights
 * make the dot about sqrt(n) times smaller than sum |w x|, hence the larger RMS ratio. The
 * bounds asserted are a few times these, and q16a must beat int8 by 50 times. */
static void test_q16a_path_error(void **state) {
    (void)state;
    const ar_kernels *k = &tier_k[AR_CPU_SCALAR];
    for (int t = AR_CPU_AVX512; t > AR_CPU_SCALAR; t--)
        if (have_tier[t]) {
            k = &tier_k[t];
            break;
        }
    static const int64_t psizes[] = {1536, 8960};
    const int64_t nmax = 8960;
    float *xf = xmalloc(nmax * sizeof *xf), *wf = xmalloc(nmax * sizeof *wf);
    uint8_t *x16 = xmalloc(ar_q16a_row_bytes(nmax));
    ar_block_q8a *x8 = xmalloc((size_t)(nmax / 32) * sizeof *x8);
    ar_block_q8a *x8r = xmalloc((size_t)(nmax / 32) * sizeof *x8r);
    float *res = xmalloc(nmax * sizeof *res);
    uint8_t *w = xmalloc(wrow_bytes(AR_TYPE_Q8_0, nmax));
    int bad = 0;
    for (size_t t = 0; t < N_TYPES; t++) {
        const ar_type type = q32_types[t];
        for (int style = 0; style < 2; style++) {
            for (size_t s = 0; s < 2; s++) {
                const int64_t n = psizes[s];
                double err2 = 0, err2_8 = 0, err2_p = 0, dot2 = 0, worst = 0, worst8 = 0;
                for (int rep = 0; rep < 100; rep++) {
                    random_blocks(type, n, w);
                    random_acts(xf, n, 1.0, style);
                    k->quantize_q16a(xf, x16, n);
                    k->quantize_q8a(xf, x8, n);
                    const double got = k->vec_dot16[type](n, w, x16);
                    const double got8 = k->vec_dot[type](n, w, x8);
                    /* the paired int8 path: the rounding error quantized again */
                    for (int64_t i = 0; i < n; i++)
                        res[i] = xf[i] - x8[i / 32].d * (float)x8[i / 32].qs[i % 32];
                    k->quantize_q8a(res, x8r, n);
                    const double gotp = got8 + k->vec_dot[type](n, w, x8r);
                    traits(type)->to_float(w, wf, n);
                    double exact = 0, wx = 0;
                    for (int64_t i = 0; i < n; i++) {
                        exact += (double)wf[i] * xf[i];
                        wx += fabs((double)wf[i] * xf[i]);
                    }
                    err2 += (got - exact) * (got - exact);
                    err2_8 += (got8 - exact) * (got8 - exact);
                    err2_p += (gotp - exact) * (gotp - exact);
                    dot2 += exact * exact;
                    if (fabs(got - exact) / wx > worst) worst = fabs(got - exact) / wx;
                    if (fabs(got8 - exact) / wx > worst8) worst8 = fabs(got8 - exact) / wx;
                }
                const double ratio = sqrt(err2 / dot2), ratio8 = sqrt(err2_8 / dot2);
                const double ratio_p = sqrt(err2_p / dot2);
                printf("  %s %s n=%-5lld %-8s q16a vs float64: RMS error / RMS dot %.2e, max "
                       "%.2e of sum |w x|  (int8: %.2e, %.2e; paired int8: %.2e)\n",
                       ar_cpu_tier_name(k->tier), traits(type)->name, (long long)n,
                       style ? "spiked" : "Gaussian", ratio, worst, ratio8, worst8, ratio_p);
                if (!(ratio < (style ? 3e-4 : 1e-4) && worst < (style ? 1e-4 : 1.5e-5) &&
                      ratio < ratio8 / 50.0))
                    bad++;
            }
        }
    }
    free(w);
    free(res);
    free(x8r);
    free(x8);
    free(x16);
    free(wf);
    free(xf);
    assert_int_equal(bad, 0);
}

/* --- Speed (prints only, with AR_Q16A_BENCH=1) ------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ns = the time per weight row of `body` (which uses r, the row) over `rows` weight rows,
 * repeated until `secs` have passed. */
#define TIME_ROWS(ns, secs, body)                                                                  \
    do {                                                                                           \
        long reps_ = 0;                                                                            \
        const double t0_ = now_s();                                                                \
        double t1_;                                                                                \
        do {                                                                                       \
            for (int r = 0; r < rows; r++) body;                                                   \
            reps_ += rows;                                                                         \
        } while ((t1_ = now_s()) - t0_ < (secs));                                                  \
        ns = 1e9 * (t1_ - t0_) / (double)reps_;                                                    \
    } while (0)

static void test_speed(void **state) {
    (void)state;
    const char *env = getenv("AR_Q16A_BENCH");
    if (!env || strcmp(env, "1") != 0) skip();
    static const int64_t bsizes[] = {1536, 8960};
    const int64_t nmax = 8960;
    const int rows = 64; /* a few rows, so the weights stay in L2 like a matmul's slice */
    const size_t s16max = ar_q16a_row_bytes(nmax);
    const size_t s8max = (size_t)(nmax / 32) * sizeof(ar_block_q8a);
    float *xf = xmalloc(nmax * sizeof *xf);
    uint8_t *x16 = aligned_alloc(64, AR_MAX_NR * s16max), *x8 = xmalloc(AR_MAX_NR * s8max);
    uint8_t *w = xmalloc((size_t)rows * wrow_bytes(AR_TYPE_Q8_0, nmax) + 1);
    assert_true(x16 != NULL);
    printf("  ns per weight row; int8 = vec_dot / vec_dot_n with Q8A, q16a = vec_dot16 / "
           "vec_dot16_n with Q16A; x2 = the two int8 passes the accurate precision ran before\n");
    printf("  %-5s %-7s %6s %9s %9s %9s | %9s %9s %9s\n", "type", "tier", "n", "int8 1", "q16a 1",
           "int8x2 1", "int8 n=4", "q16a n=4", "int8 2x2");
    for (int tier = AR_CPU_SCALAR; tier <= AR_CPU_AVX512; tier++) {
        if (!have_tier[tier]) continue;
        const ar_kernels *k = &tier_k[tier];
        const double secs = tier == AR_CPU_SCALAR ? 0.05 : 0.2;
        for (size_t s = 0; s < 2; s++) {
            const int64_t n = bsizes[s];
            const size_t s16 = ar_q16a_row_bytes(n), s8 = (size_t)(n / 32) * sizeof(ar_block_q8a);
            for (int r = 0; r < AR_MAX_NR; r++) {
                random_acts(xf, n, 1.0, 1);
                k->quantize_q16a(xf, x16 + (size_t)r * s16, n);
                k->quantize_q8a(xf, x8 + (size_t)r * s8, n);
            }
            double tq = now_s();
            int qreps = 0;
            do {
                for (int i = 0; i < 20; i++) k->quantize_q16a(xf, x16, n);
                qreps += 20;
            } while (now_s() - tq < 0.02);
            printf("  %-5s %-7s %6lld %9.1f  (quantize_q16a, ns per activation row)\n", "q16a",
                   ar_cpu_tier_name(k->tier), (long long)n, 1e9 * (now_s() - tq) / qreps);
            for (size_t t = 0; t < N_TYPES; t++) {
                const ar_type type = q32_types[t];
                const size_t rbw = wrow_bytes(type, n);
                random_blocks(type, rows * n, w);
                volatile float sink = 0.0f;
                float ys[AR_MAX_NR];
                double t8, t16, t8x2, t8n = 0, t16n = 0, t8n2 = 0;
                TIME_ROWS(t8, secs, sink += k->vec_dot[type](n, w + r * rbw, x8));
                TIME_ROWS(t16, secs, sink += k->vec_dot16[type](n, w + r * rbw, x16));
                TIME_ROWS(t8x2, secs, {
                    sink += k->vec_dot[type](n, w + r * rbw, x8);
                    sink += k->vec_dot[type](n, w + r * rbw, x8 + s8);
                });
                if (k->vec_dot_n[type]) {
                    TIME_ROWS(t8n, secs, {
                        k->vec_dot_n[type](n, w + r * rbw, x8, s8, AR_MAX_NR, ys);
                        sink += ys[0] + ys[3];
                    });
                    /* the paired path for 4 tokens: two calls of 4 rows */
                    TIME_ROWS(t8n2, secs, {
                        k->vec_dot_n[type](n, w + r * rbw, x8, s8, AR_MAX_NR, ys);
                        sink += ys[0] + ys[3];
                        k->vec_dot_n[type](n, w + r * rbw, x8, s8, AR_MAX_NR, ys);
                        sink += ys[0] + ys[3];
                    });
                }
                if (k->vec_dot16_n[type])
                    TIME_ROWS(t16n, secs, {
                        k->vec_dot16_n[type](n, w + r * rbw, x16, s16, AR_MAX_NR, ys);
                        sink += ys[0] + ys[3];
                    });
                printf("  %-5s %-7s %6lld %9.1f %9.1f %9.1f | %9.1f %9.1f %9.1f\n",
                       traits(type)->name, ar_cpu_tier_name(k->tier), (long long)n, t8, t16, t8x2,
                       t8n, t16n, t8n2);
                (void)sink;
            }
        }
    }
    free(w);
    free(x8);
    free(x16);
    free(xf);
}

int main(void) {
    load_tiers();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row_bytes),
        cmocka_unit_test(test_quantize_zeros_and_tiny),
        cmocka_unit_test(test_quantize_exact_scale),
        cmocka_unit_test(test_quantize_negative_max),
        cmocka_unit_test(test_quantize_inf_nan),
        cmocka_unit_test(test_quantize_extreme_magnitudes),
        cmocka_unit_test(test_scalar_dot_exact),
        cmocka_unit_test(test_scalar_dot_extremes),
        cmocka_unit_test(test_tier_avx2),
        cmocka_unit_test(test_tier_avx512),
        cmocka_unit_test(test_dot_n_scalar),
        cmocka_unit_test(test_dot_n_avx2),
        cmocka_unit_test(test_dot_n_avx512),
        cmocka_unit_test(test_q16a_path_error),
        cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
