/*
 * test_kernels_q16.c - the k-quants' accurate path (src/kernels/q16_*.c): quantize_q16k
 * (15-bit activations) and the one-pass Q2_K..Q6_K x Q16K dot products of every CPU tier.
 *
 * - quantize_q16k of the scalar tier against hand-computed blocks (zeros and the FLT_MIN
 *   edge, exact scales with halfway cases rounded away from zero, a negative maximum, inf
 *   and NaN blocks, bsums, every field written).
 * - Each scalar vec_dot16 against a float64 dot of the dequantized weights (the reference
 *   to_float) and the dequantized activations (d * qs): within 1e-6 of the sum of the
 *   magnitudes of the terms; the same for extreme blocks (every quant and scale at its
 *   end, activations at +-16383), which also pin the int32 lane bound of the SIMD tiers.
 * - Every SIMD tier the CPU runs against the scalar tier, for what the tier implements (a
 *   tier that still has the scalar function in a slot is reported and that slot skipped):
 *   quantize_q16k byte-identical on random and special rows (ties, inf/NaN, subnormals,
 *   zero blocks, values near FLT_MAX); vec_dot16 within 1e-5 of the sum of |terms| on
 *   random valid blocks at several activation magnitudes, rows of 256, 512, 1536 and 8960,
 *   weights at even and odd addresses of exactly-sized allocations.
 * - vec_dot16_n: NULL in the scalar tier; in a SIMD tier that has it, for 1..AR_MAX_NR
 *   activation rows at a stride that is not a multiple of 64 bytes and weights at an odd
 *   address, every row bit-identical (memcmp) to vec_dot16 on that row, and no write past
 *   ys[nr - 1].
 * - The error of the whole q16 path against the float64 dot of the dequantized weights
 *   with the original float activations, next to the int8 (Q8K) path on the same data
 *   (numbers in test_q16_path_error).
 *
 * Set AR_Q16_BENCH=1 (or AR_QK_BENCH=1) to also print ns per weight row for vec_dot16 and
 * vec_dot16_n against the int8 vec_dot and vec_dot_n (test_speed; it only prints).
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

static const ar_type qk_types[] = {AR_TYPE_Q2_K, AR_TYPE_Q3_K, AR_TYPE_Q4_K, AR_TYPE_Q5_K,
                                   AR_TYPE_Q6_K};
#define N_QK_TYPES (sizeof qk_types / sizeof qk_types[0])

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint32_t rnd_u32(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1du) >> 32);
}
static double rnd_unit(void) { /* (0, 1) */
    return ((double)rnd_u32() + 0.5) / 4294967296.0;
}
static double rnd_normal(void) {
    return sqrt(-2.0 * log(rnd_unit())) * cos(6.283185307179586 * rnd_unit());
}

static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

/* Byte offsets of the float16 super-scales: d, and dmin (-1 for types without one). */
static void scale_offsets(ar_type type, int *off_d, int *off_dmin) {
    *off_d = *off_dmin = -1;
    switch (type) {
    case AR_TYPE_Q2_K: *off_d = 80, *off_dmin = 82; return;
    case AR_TYPE_Q3_K: *off_d = 108, *off_dmin = -1; return;
    case AR_TYPE_Q4_K:
    case AR_TYPE_Q5_K: *off_d = 0, *off_dmin = 2; return;
    case AR_TYPE_Q6_K: *off_d = 208, *off_dmin = -1; return;
    default: fail_msg("not a k-quant: %d", (int)type);
    }
}

static const ar_type_traits *traits(ar_type type) {
    const ar_type_traits *tt = ar_type_traits_get(type);
    assert_non_null(tt);
    return tt;
}

/* A float16 of random sign and magnitude in [2^-14, 2^-4). */
static uint16_t rnd_scale(void) {
    const float mag = (float)ldexp(1.0 + rnd_unit(), -14 + (int)(rnd_u32() % 10));
    return ar_fp32_to_fp16((rnd_u32() & 1) ? -mag : mag);
}

/* nblk random valid blocks of `type`: random bytes, then sane super-scales. */
static void fill_random_blocks(ar_type type, uint8_t *p, int64_t nblk) {
    const ar_type_traits *tt = traits(type);
    int off_d, off_dmin;
    scale_offsets(type, &off_d, &off_dmin);
    for (int64_t b = 0; b < nblk; b++, p += tt->type_size) {
        for (int i = 0; i < tt->type_size; i++) p[i] = (uint8_t)rnd_u32();
        put_u16(p + off_d, rnd_scale());
        if (off_dmin >= 0) put_u16(p + off_dmin, rnd_scale());
    }
}

/* Activation rows of n floats in several styles. */
enum { ACT_NORMAL, ACT_OUTLIERS, ACT_UNIFORM, ACT_SPARSE, ACT_STYLES };
static void fill_activations(float *x, int64_t n, int style, double magnitude) {
    for (int64_t i = 0; i < n; i++) {
        double v = rnd_normal();
        if (style == ACT_OUTLIERS && rnd_u32() % 64 == 0) v *= 40.0; /* LLM-like spikes */
        if (style == ACT_UNIFORM) v = 2.0 * rnd_unit() - 1.0;
        if (style == ACT_SPARSE && rnd_u32() % 8 != 0) v = 0.0;
        x[i] = (float)(v * magnitude);
    }
}

/* The exact (float64) dot of the dequantized weights with activations xf, and the sum of
 * the magnitudes of its terms: |d-part| + |min-part| per element, found by dequantizing
 * copies of the row with dmin = 0 and with d = 0. */
static void exact_dot(ar_type type, const uint8_t *w, const float *xf, int64_t n, double *dot,
                      double *mag) {
    const ar_type_traits *tt = traits(type);
    const int64_t nblk = n / QK_K;
    const size_t bytes = (size_t)nblk * (size_t)tt->type_size;
    float *y = malloc((size_t)n * sizeof *y), *y2 = malloc((size_t)n * sizeof *y2);
    uint8_t *tmp = malloc(bytes);
    assert_true(y && y2 && tmp);
    int off_d, off_dmin;
    scale_offsets(type, &off_d, &off_dmin);

    tt->to_float(w, y, n);
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)y[i] * (double)xf[i];
    *dot = s;

    double m = 0.0;
    if (off_dmin < 0) {
        for (int64_t i = 0; i < n; i++) m += fabs((double)y[i] * (double)xf[i]);
    } else {
        for (int pass = 0; pass < 2; pass++) {
            memcpy(tmp, w, bytes);
            for (int64_t b = 0; b < nblk; b++)
                put_u16(tmp + b * tt->type_size + (pass ? off_d : off_dmin), 0);
            tt->to_float(tmp, y2, n);
            for (int64_t i = 0; i < n; i++) m += fabs((double)y2[i] * (double)xf[i]);
        }
    }
    *mag = m;
    free(tmp);
    free(y2);
    free(y);
}

/* The float values a Q16K row stands for: d * qs. */
static void dequant_q16k(const ar_block_q16k *q, float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        x[i] = q[i / AR_QK16K].d * (float)q[i / AR_QK16K].qs[i % AR_QK16K];
}

static ar_kernels kernels_of(ar_cpu_tier tier) {
    ar_kernels k;
    assert_int_equal(ar_kernels_get(tier, &k), AR_OK);
    return k;
}

static void set_bsums(ar_block_q16k *b) {
    for (int j = 0; j < AR_QK16K / 16; j++) {
        int32_t s = 0;
        for (int i = 0; i < 16; i++) s += b->qs[16 * j + i];
        b->bsums[j] = s;
    }
}

static void check_bsums(const ar_block_q16k *b) {
    for (int j = 0; j < AR_QK16K / 16; j++) {
        int32_t s = 0;
        for (int i = 0; i < 16; i++) s += b->qs[16 * j + i];
        assert_int_equal(b->bsums[j], s);
    }
}

/* --- quantize_q16k, by hand ------------------------------------------------------------- */

static void quantize_scalar(const float *x, ar_block_q16k *y, int64_t n) {
    ar_kernels k = kernels_of(AR_CPU_SCALAR);
    assert_non_null(k.quantize_q16k);
    memset(y, 0x5a, (size_t)(n / AR_QK16K) * sizeof *y); /* every field must be written */
    k.quantize_q16k(x, y, n);
}

static void assert_zero_block(const ar_block_q16k *b) {
    assert_true(b->d == 0.0f && !signbit(b->d));
    for (int i = 0; i < AR_QK16K; i++) assert_int_equal(b->qs[i], 0);
    for (int j = 0; j < 16; j++) assert_int_equal(b->bsums[j], 0);
}

static void test_q16k_zeros_and_tiny(void **state) {
    (void)state;
    float x[3 * AR_QK16K] = {0};
    x[3] = -0.0f; /* negative zero is zero */
    /* block 1: amax = 16383 * 2^-127 gives d = 2^-127 < FLT_MIN: all zero */
    x[AR_QK16K + 5] = ldexpf(16383.0f, -127);
    x[AR_QK16K + 6] = -1e-40f;
    /* block 2: amax = 16383 * 2^-126 gives d = FLT_MIN exactly: quantized */
    x[2 * AR_QK16K + 7] = -ldexpf(16383.0f, -126);
    x[2 * AR_QK16K + 8] = ldexpf(2.5f, -126); /* 2.5 -> 3 */
    ar_block_q16k y[3];
    quantize_scalar(x, y, 3 * AR_QK16K);
    assert_zero_block(&y[0]);
    assert_zero_block(&y[1]);
    assert_true(y[2].d == FLT_MIN);
    for (int i = 0; i < AR_QK16K; i++)
        assert_int_equal(y[2].qs[i], i == 7 ? -16383 : i == 8 ? 3 : 0);
    assert_int_equal(y[2].bsums[0], -16383 + 3);
    check_bsums(&y[2]);
}

static void test_q16k_exact_scale(void **state) {
    (void)state;
    /* amax = 16383 / 4 makes d = 0.25 exactly, so qs = roundf(4 x): halfway cases away
     * from zero */
    float x[AR_QK16K] = {0};
    const float in[] = {4095.75f, 1.125f, -1.125f,   0.375f,     -0.375f, 0.1f,
                        -0.12f,   0.125f, 4095.625f, -4095.625f, 2.0f,    1e-30f};
    const int want[] = {16383, 5, -5, 2, -2, 0, 0, 1, 16383, -16383, 8, 0};
    memcpy(x + 20, in, sizeof in);
    x[255] = -3.0f; /* -12 */
    ar_block_q16k y;
    quantize_scalar(x, &y, AR_QK16K);
    assert_true(y.d == 0.25f);
    for (int i = 0; i < AR_QK16K; i++) {
        int w = 0;
        if (i >= 20 && i < 20 + (int)(sizeof want / sizeof want[0])) w = want[i - 20];
        if (i == 255) w = -12;
        if (y.qs[i] != w) fail_msg("qs[%d] = %d, want %d", i, y.qs[i], w);
    }
    assert_int_equal(y.bsums[1], 16383 + 5 - 5 + 2 - 2 + 0 + 0 + 1 + 16383 - 16383 + 8 + 0);
    assert_int_equal(y.bsums[15], -12);
    assert_int_equal(y.bsums[0], 0);
    check_bsums(&y);
}

static void test_q16k_negative_max(void **state) {
    (void)state;
    /* unlike Q8K, d is amax / 16383 (positive) and the maximum keeps its sign */
    float x[AR_QK16K];
    for (int i = 0; i < AR_QK16K; i++) x[i] = 0.01f * (float)(i % 7);
    x[200] = -8191.5f; /* d = 0.5 */
    x[201] = 0.25f;    /* 0.5 -> 1 */
    x[202] = -0.75f;   /* -1.5 -> -2 */
    ar_block_q16k y;
    quantize_scalar(x, &y, AR_QK16K);
    assert_true(y.d == 0.5f);
    assert_int_equal(y.qs[200], -16383);
    assert_int_equal(y.qs[201], 1);
    assert_int_equal(y.qs[202], -2);
    for (int i = 0; i < AR_QK16K; i++) {
        if (i >= 200 && i <= 202) continue;
        /* 0.01k / 0.5 = 0.02k: 0, 0.02, ..., 0.12: all round to 0 */
        assert_int_equal(y.qs[i], 0);
    }
    check_bsums(&y);

    /* a general scale: every |x - d q| <= d / 2 (up to the rounding of x / d) */
    for (int i = 0; i < AR_QK16K; i++) x[i] = (float)sin(0.37 * i) * 3.7f;
    quantize_scalar(x, &y, AR_QK16K);
    float amax = 0.0f;
    for (int i = 0; i < AR_QK16K; i++) amax = fmaxf(amax, fabsf(x[i]));
    assert_true(y.d == amax / 16383.0f);
    for (int i = 0; i < AR_QK16K; i++) {
        assert_int_equal(y.qs[i], (int)roundf(x[i] / y.d));
        assert_true(fabs((double)x[i] - (double)y.d * y.qs[i]) <= 0.5000001 * y.d);
        assert_true(y.qs[i] >= -16383 && y.qs[i] <= 16383);
    }
    check_bsums(&y);
}

static void test_q16k_inf_nan(void **state) {
    (void)state;
    float x[4 * AR_QK16K];
    for (int i = 0; i < 4 * AR_QK16K; i++) x[i] = (float)(i % 17) - 8.0f;
    x[10] = NAN;
    x[AR_QK16K + 255] = INFINITY;
    x[2 * AR_QK16K] = -INFINITY;
    ar_block_q16k y[4];
    quantize_scalar(x, y, 4 * AR_QK16K);
    for (int b = 0; b < 3; b++) {
        assert_true(isnan(y[b].d));
        for (int i = 0; i < AR_QK16K; i++) assert_int_equal(y[b].qs[i], 0);
        for (int j = 0; j < 16; j++) assert_int_equal(y[b].bsums[j], 0);
    }
    /* the finite block is untouched by its neighbours: amax 8, d = 8 / 16383 */
    assert_true(y[3].d == 8.0f / 16383.0f);
    check_bsums(&y[3]);
    ar_block_q16k one;
    quantize_scalar(x + 3 * AR_QK16K, &one, AR_QK16K);
    assert_memory_equal(&one, &y[3], sizeof one);
    /* a NaN block makes every dot product NaN */
    ar_kernels k = kernels_of(AR_CPU_SCALAR);
    uint8_t w[210];
    for (size_t t = 0; t < N_QK_TYPES; t++) {
        fill_random_blocks(qk_types[t], w, 1);
        assert_true(isnan(k.vec_dot16[qk_types[t]](QK_K, w, &y[0])));
    }
}

static void test_q16k_extreme_magnitudes(void **state) {
    (void)state;
    float x[2 * AR_QK16K];
    for (int i = 0; i < 2 * AR_QK16K; i++) x[i] = (float)rnd_normal() * 1e37f;
    x[3] = FLT_MAX;
    x[AR_QK16K + 4] = -FLT_MAX;
    ar_block_q16k y[2];
    quantize_scalar(x, y, 2 * AR_QK16K);
    for (int b = 0; b < 2; b++) {
        assert_true(y[b].d == FLT_MAX / 16383.0f);
        check_bsums(&y[b]);
    }
    assert_int_equal(y[0].qs[3], 16383);
    assert_int_equal(y[1].qs[4], -16383);
}

/* --- Scalar vec_dot16 against float64 ---------------------------------------------------- */

static void test_scalar_dot_exact(void **state) {
    (void)state;
    ar_kernels k = kernels_of(AR_CPU_SCALAR);
    const int64_t n = 8960;
    float *xf = malloc(n * sizeof *xf), *xq = malloc(n * sizeof *xq);
    ar_block_q16k *x16 = malloc((size_t)(n / AR_QK16K) * sizeof *x16);
    uint8_t *w = malloc((size_t)(n / QK_K) * 210);
    assert_true(xf && xq && x16 && w);
    for (size_t t = 0; t < N_QK_TYPES; t++) {
        const ar_type type = qk_types[t];
        assert_non_null(k.vec_dot16[type]);
        assert_true(k.vec_dot16[type](0, "", "") == 0.0f); /* empty rows read nothing */
        double worst = 0.0;
        for (int rep = 0; rep < 20; rep++) {
            fill_random_blocks(type, w, n / QK_K);
            fill_activations(xf, n, rep % ACT_STYLES, pow(10.0, rep % 5 - 2));
            k.quantize_q16k(xf, x16, n);
            dequant_q16k(x16, xq, n);
            double exact, mag;
            exact_dot(type, w, xq, n, &exact, &mag);
            const double got = k.vec_dot16[type](n, w, x16);
            const double rel = fabs(got - exact) / mag;
            if (rel > worst) worst = rel;
            if (!(rel <= 1e-6))
                fail_msg("%s rep %d: scalar %.9g, float64 %.17g (error %.3g of sum |terms| %.6g)",
                         traits(type)->name, rep, got, exact, rel, mag);
        }
        printf("  %s scalar vec_dot16 vs float64: worst error %.2e of sum |terms|\n",
               traits(type)->name, worst);
    }
    free(w);
    free(x16);
    free(xq);
    free(xf);
}

/* Extreme blocks: all quants and scales at their ends (every byte 0x00 or 0xff; Q6_K's
 * int8 scales at -128 or 127), activations at +-16383 with one sign or alternating, so
 * |q * scale * a| is as large as it gets: Q6_K's all-zero block (q = -32, scale -128) with
 * a = 16383 puts 16 * 4096 * 16383 ~= 2^30 in every int32 lane of a SIMD tier. */
static void fill_extreme(ar_type type, uint8_t *w, int64_t nblk, ar_block_q16k *x, int variant) {
    const ar_type_traits *tt = traits(type);
    int off_d, off_dmin;
    scale_offsets(type, &off_d, &off_dmin);
    for (int64_t b = 0; b < nblk; b++) {
        uint8_t *p = w + b * tt->type_size;
        memset(p, (variant & 1) ? 0xff : 0x00, (size_t)tt->type_size);
        if (type == AR_TYPE_Q6_K) /* int8 scales: -128 or 127 */
            memset(p + 192, (variant & 1) ? 0x7f : 0x80, 16);
        put_u16(p + off_d, 0x3c00);                       /* 1.0 */
        if (off_dmin >= 0) put_u16(p + off_dmin, 0x3800); /* 0.5 */
        const int a = (variant & 2) ? -16383 : 16383;
        x[b].d = 0.5f;
        for (int i = 0; i < AR_QK16K; i++)
            x[b].qs[i] = (int16_t)((variant & 4) && (i & 1) ? -a : a);
        set_bsums(&x[b]);
    }
}

static void test_scalar_dot_extremes(void **state) {
    (void)state;
    ar_kernels k = kernels_of(AR_CPU_SCALAR);
    const int64_t n = 512;
    uint8_t w[2 * 210];
    ar_block_q16k x[2];
    float xq[512];
    for (size_t t = 0; t < N_QK_TYPES; t++) {
        for (int variant = 0; variant < 8; variant++) {
            fill_extreme(qk_types[t], w, 2, x, variant);
            dequant_q16k(x, xq, n);
            double exact, mag;
            exact_dot(qk_types[t], w, xq, n, &exact, &mag);
            const double got = k.vec_dot16[qk_types[t]](n, w, x);
            if (!(fabs(got - exact) <= 1e-6 * mag))
                fail_msg("%s extreme %d: %.9g vs %.17g", traits(qk_types[t])->name, variant, got,
                         exact);
        }
    }
}

/* --- SIMD tiers against the scalar tier ------------------------------------------------ */

/* Special activation rows for the quantizer: ties, NaN/inf, subnormals, zero blocks, huge. */
static void fill_special(float *x, int64_t n, int which) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)rnd_normal();
    switch (which) {
    case 0: /* magnitude ties of both signs, in several positions */
        for (int64_t b = 0; b < n / AR_QK16K; b++) {
            x[b * AR_QK16K + (b * 41) % 256] = 9.0f;
            x[b * AR_QK16K + (b * 97 + 13) % 256] = -9.0f;
        }
        break;
    case 1: /* d = 1 / 4: every value on a rounding tie */
        for (int64_t i = 0; i < n; i++) x[i] = ((float)((int)(i % 1001) - 500) + 0.5f) * 0.25f;
        for (int64_t b = 0; b < n / AR_QK16K; b++) x[b * AR_QK16K + 7] = -4095.75f;
        break;
    case 2: /* subnormal and tiny values, a zero block, a block at the FLT_MIN edge */
        for (int64_t i = 0; i < n; i++) x[i] = (float)(rnd_normal() * 1e-36);
        memset(x, 0, AR_QK16K * sizeof *x);
        if (n >= 2 * AR_QK16K) x[AR_QK16K + 1] = ldexpf(16383.0f, -126);
        break;
    case 3: /* NaN and inf: defined, identical bytes in every tier */
        x[5] = NAN;
        if (n >= 2 * AR_QK16K) {
            x[AR_QK16K + 9] = INFINITY;
            x[AR_QK16K + 10] = -INFINITY;
        }
        if (n > 2 * AR_QK16K) x[2 * AR_QK16K + 255] = -NAN;
        break;
    case 4: /* near FLT_MAX */
        for (int64_t i = 0; i < n; i++) x[i] = (float)rnd_normal() * 3e37f;
        x[n - 1] = -FLT_MAX;
        break;
    default: break;
    }
}
#define N_SPECIAL 5

static void compare_quantize(const ar_kernels *simd, const ar_kernels *ref, const float *x,
                             int64_t n, const char *what) {
    const size_t bytes = (size_t)(n / AR_QK16K) * sizeof(ar_block_q16k);
    ar_block_q16k *a = malloc(bytes), *b = malloc(bytes);
    assert_true(a && b);
    memset(a, 0x11, bytes);
    memset(b, 0x77, bytes);
    ref->quantize_q16k(x, a, n);
    simd->quantize_q16k(x, b, n);
    for (int64_t ib = 0; ib < n / AR_QK16K; ib++) {
        if (memcmp(&a[ib], &b[ib], sizeof a[ib]) != 0)
            fail_msg("%s quantize_q16k differs from scalar (%s, block %lld: d %.9g vs %.9g)",
                     ar_cpu_tier_name(simd->tier), what, (long long)ib, (double)a[ib].d,
                     (double)b[ib].d);
    }
    free(b);
    free(a);
}

/* vec_dot16 of the tier against the scalar tier, with the weights at offset `shift` of an
 * exactly-sized allocation (ASan catches a read past the row). */
static double worst_diff[AR_N_TYPES]; /* per type, for the tier being checked */

static void compare_dot(const ar_kernels *simd, const ar_kernels *ref, ar_type type,
                        const uint8_t *w, const ar_block_q16k *x, int64_t n, int shift,
                        const char *what) {
    const size_t bytes = (size_t)(n / QK_K) * (size_t)traits(type)->type_size;
    uint8_t *buf = malloc(bytes + (size_t)shift);
    float *xq = malloc((size_t)n * sizeof *xq);
    assert_true(buf && xq);
    memcpy(buf + shift, w, bytes);
    const double want = ref->vec_dot16[type](n, w, x);
    const double got = simd->vec_dot16[type](n, buf + shift, x);
    dequant_q16k(x, xq, n);
    double exact, mag;
    exact_dot(type, w, xq, n, &exact, &mag);
    if (fabs(got - want) / mag > worst_diff[type]) worst_diff[type] = fabs(got - want) / mag;
    if (!(fabs(got - want) <= 1e-5 * mag + 1e-30))
        fail_msg("%s %s n=%lld (%s, offset %d): %.9g, scalar %.9g (difference %.3g of sum |terms| "
                 "%.6g)",
                 ar_cpu_tier_name(simd->tier), traits(type)->name, (long long)n, what, shift, got,
                 want, fabs(got - want) / mag, mag);
    free(xq);
    free(buf);
}

/* Whether the tier has its own vec_dot16 for `type` (not the scalar one left in place). */
static int has_own_dot(const ar_kernels *simd, const ar_kernels *ref, ar_type type) {
    return simd->vec_dot16[type] != NULL && simd->vec_dot16[type] != ref->vec_dot16[type];
}

static void check_tier(ar_cpu_tier tier) {
    ar_kernels simd;
    if (ar_kernels_get(tier, &simd) != AR_OK) {
        printf("  %s: not supported by this CPU, skipped\n", ar_cpu_tier_name(tier));
        skip();
    }
    const ar_kernels ref = kernels_of(AR_CPU_SCALAR);
    assert_int_equal(simd.tier, tier);
    assert_non_null(simd.quantize_q16k);
    if (simd.quantize_q16k == ref.quantize_q16k)
        printf("  %s: quantize_q16k is the scalar one\n", ar_cpu_tier_name(tier));
    int own[N_QK_TYPES], n_own = 0;
    for (size_t t = 0; t < N_QK_TYPES; t++) {
        own[t] = has_own_dot(&simd, &ref, qk_types[t]);
        n_own += own[t];
        if (!own[t]) {
            printf("  %s %s: no vec_dot16 of its own yet, skipped\n", ar_cpu_tier_name(tier),
                   traits(qk_types[t])->name);
            continue;
        }
        assert_true(simd.vec_dot16[qk_types[t]](0, "", "") == 0.0f); /* empty rows read nothing */
    }
    simd.quantize_q16k(NULL, NULL, 0);
    static const int64_t sizes[] = {256, 512, 1536, 8960};
    const int64_t nmax = 8960;
    float *xf = malloc(nmax * sizeof *xf);
    ar_block_q16k *x16 = malloc((size_t)(nmax / AR_QK16K) * sizeof *x16);
    uint8_t *w = malloc((size_t)(nmax / QK_K) * 210);
    assert_true(xf && x16 && w);
    memset(worst_diff, 0, sizeof worst_diff);

    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int64_t n = sizes[s];
        for (int which = 0; which < N_SPECIAL; which++) {
            fill_special(xf, n, which);
            compare_quantize(&simd, &ref, xf, n, "special rows");
        }
        for (int rep = 0; rep < 10; rep++) {
            char what[64];
            const double mag = pow(10.0, rep % 7 - 3);
            snprintf(what, sizeof what, "style %d, magnitude %g", rep % ACT_STYLES, mag);
            fill_activations(xf, n, rep % ACT_STYLES, mag);
            compare_quantize(&simd, &ref, xf, n, what);
            ref.quantize_q16k(xf, x16, n);
            for (size_t t = 0; t < N_QK_TYPES; t++) {
                if (!own[t]) continue;
                fill_random_blocks(qk_types[t], w, n / QK_K);
                compare_dot(&simd, &ref, qk_types[t], w, x16, n, rep & 1, what);
            }
        }
    }
    for (size_t t = 0; t < N_QK_TYPES; t++) {
        if (!own[t]) continue;
        for (int variant = 0; variant < 8; variant++) {
            fill_extreme(qk_types[t], w, 4, x16, variant);
            compare_dot(&simd, &ref, qk_types[t], w, x16, 1024, variant & 1, "extreme blocks");
        }
        printf("  %s %s vec_dot16 vs scalar: worst difference %.2e of sum |terms|\n",
               ar_cpu_tier_name(tier), traits(qk_types[t])->name, worst_diff[qk_types[t]]);
    }
    if (n_own == 0)
        printf("  %s: quantize_q16k checked, no vec_dot16 yet\n", ar_cpu_tier_name(tier));
    free(w);
    free(x16);
    free(xf);
}

static void test_tier_avx2(void **state) {
    (void)state;
    check_tier(AR_CPU_AVX2);
}

static void test_tier_avx512(void **state) {
    (void)state;
    check_tier(AR_CPU_AVX512);
}

/* --- vec_dot16_n: several activation rows ---------------------------------------------- */

/* Activation rows are this many bytes apart: a whole number of Q16K blocks (so every block
 * stays aligned for its float and int32 fields) plus 36 bytes, not a multiple of 64 for the
 * sizes used. */
static size_t act_stride(int64_t n) {
    const size_t s = (size_t)(n / AR_QK16K) * sizeof(ar_block_q16k) + 36;
    assert_true(s % 64 != 0 && s % _Alignof(ar_block_q16k) == 0);
    return s;
}

/* vec_dot16_n on nr rows of x (rows `stride` bytes apart) against vec_dot16 on each row: the
 * weights are copied to an odd address of an exactly-sized allocation and the rows to an
 * exactly-sized buffer (ASan catches a read past either); results are compared as bytes,
 * and ys[nr..] must keep their sentinel. */
static void compare_dot_n(const ar_kernels *k, ar_type type, const uint8_t *w, const uint8_t *x,
                          size_t stride, int64_t n, int nr, const char *what) {
    const size_t wbytes = (size_t)(n / QK_K) * (size_t)traits(type)->type_size;
    const size_t xbytes =
        (size_t)(nr - 1) * stride + (size_t)(n / AR_QK16K) * sizeof(ar_block_q16k);
    uint8_t *wbuf = malloc(wbytes + 1), *xbuf = malloc(xbytes);
    assert_true(wbuf && xbuf);
    memcpy(wbuf + 1, w, wbytes);
    memcpy(xbuf, x, xbytes);
    float want[AR_MAX_NR + 1], got[AR_MAX_NR + 1];
    for (int r = 0; r < nr; r++)
        want[r] = k->vec_dot16[type](n, wbuf + 1, xbuf + (size_t)r * stride);
    for (int r = 0; r <= AR_MAX_NR; r++) got[r] = -12345.0f;
    k->vec_dot16_n[type](n, wbuf + 1, xbuf, stride, nr, got);
    for (int r = 0; r < nr; r++) {
        if (memcmp(&got[r], &want[r], sizeof got[r]) != 0)
            fail_msg("%s %s vec_dot16_n n=%lld nr=%d (%s): row %d gives %.9g, vec_dot16 %.9g",
                     ar_cpu_tier_name(k->tier), traits(type)->name, (long long)n, nr, what, r,
                     (double)got[r], (double)want[r]);
    }
    for (int r = nr; r <= AR_MAX_NR; r++)
        if (got[r] != -12345.0f)
            fail_msg("%s %s vec_dot16_n nr=%d wrote ys[%d]", ar_cpu_tier_name(k->tier),
                     traits(type)->name, nr, r);
    free(xbuf);
    free(wbuf);
}

static void check_dot_n(ar_cpu_tier tier) {
    ar_kernels k;
    if (ar_kernels_get(tier, &k) != AR_OK) {
        printf("  %s: not supported by this CPU, skipped\n", ar_cpu_tier_name(tier));
        skip();
    }
    int any = 0;
    for (size_t t = 0; t < N_QK_TYPES; t++) {
        if (!k.vec_dot16_n[qk_types[t]]) {
            printf("  %s %s: no vec_dot16_n yet, skipped\n", ar_cpu_tier_name(tier),
                   traits(qk_types[t])->name);
            continue;
        }
        any = 1;
        float y[AR_MAX_NR];
        for (int nr = 1; nr <= AR_MAX_NR; nr++) { /* empty rows read nothing, give 0 */
            for (int r = 0; r < nr; r++) y[r] = 1.0f;
            k.vec_dot16_n[qk_types[t]](0, "", "", 0, nr, y);
            for (int r = 0; r < nr; r++) assert_true(y[r] == 0.0f);
        }
    }
    if (!any) skip();
    static const int64_t sizes[] = {256, 1536, 8960};
    const int64_t nmax = 8960;
    const size_t smax = act_stride(nmax);
    float *xf = malloc(nmax * sizeof *xf);
    uint8_t *x = malloc(AR_MAX_NR * smax), *w = malloc((size_t)(nmax / QK_K) * 210);
    assert_true(xf && x && w);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int64_t n = sizes[s];
        const size_t stride = act_stride(n);
        for (int rep = 0; rep < 6; rep++) {
            /* each row its own style and magnitude; the padding between rows is garbage */
            memset(x, 0xa5, AR_MAX_NR * smax);
            for (int r = 0; r < AR_MAX_NR; r++) {
                fill_activations(xf, n, (rep + r) % ACT_STYLES, pow(10.0, (rep + 2 * r) % 7 - 3));
                k.quantize_q16k(xf, x + (size_t)r * stride, n);
            }
            char what[64];
            snprintf(what, sizeof what, "random blocks, rep %d", rep);
            for (size_t t = 0; t < N_QK_TYPES; t++) {
                if (!k.vec_dot16_n[qk_types[t]]) continue;
                fill_random_blocks(qk_types[t], w, n / QK_K);
                for (int nr = 1; nr <= AR_MAX_NR; nr++)
                    compare_dot_n(&k, qk_types[t], w, x, stride, n, nr, what);
            }
        }
    }
    /* extreme blocks (the int32 lane bound), a different variant in each row */
    const int64_t n = 1024;
    const size_t stride = act_stride(n);
    for (size_t t = 0; t < N_QK_TYPES; t++) {
        if (!k.vec_dot16_n[qk_types[t]]) continue;
        for (int variant = 0; variant < 8; variant++) {
            ar_block_q16k xe[4];
            for (int r = 0; r < AR_MAX_NR; r++) {
                fill_extreme(qk_types[t], w, 4, xe, (variant + 3 * r) % 8);
                memcpy(x + (size_t)r * stride, xe, sizeof xe);
            }
            fill_extreme(qk_types[t], w, 4, xe, variant);
            for (int nr = 1; nr <= AR_MAX_NR; nr++)
                compare_dot_n(&k, qk_types[t], w, x, stride, n, nr, "extreme blocks");
        }
    }
    printf("  %s vec_dot16_n: bit-identical to vec_dot16 for nr 1..%d where present\n",
           ar_cpu_tier_name(tier), AR_MAX_NR);
    free(w);
    free(x);
    free(xf);
}

static void test_dot_n_scalar(void **state) {
    (void)state;
    /* documented: the scalar tier has no multi-row form, callers loop vec_dot16 */
    ar_kernels k = kernels_of(AR_CPU_SCALAR);
    for (size_t t = 0; t < N_QK_TYPES; t++) {
        assert_non_null(k.vec_dot16[qk_types[t]]);
        assert_null(k.vec_dot16_n[qk_types[t]]);
    }
    /* the float types have no 16-bit path (the 32-block types' Q16A path is tested in
     * test_kernels_q16a.c) */
    assert_null(k.vec_dot16[AR_TYPE_F32]);
    assert_null(k.vec_dot16[AR_TYPE_F16]);
    assert_null(k.vec_dot16[AR_TYPE_BF16]);
}

static void test_dot_n_avx2(void **state) {
    (void)state;
    check_dot_n(AR_CPU_AVX2);
}

static void test_dot_n_avx512(void **state) {
    (void)state;
    check_dot_n(AR_CPU_AVX512);
}

/* --- The q16 path against float ------------------------------------------------------- */

/* How far the q16 path (activations rounded to Q16K) lands from the float64 dot of the same
 * dequantized weights with the original float activations, next to the int8 (Q8K) path on
 * the same rows. Per case, over 100 random rows: the RMS error over the RMS of the exact
 * dots, and the largest error as a fraction of sum |w x|. Measured (random blocks of all
 * five types, n = 1536 and 8960, the best tier; every tier gives the same to float
 * rounding):
 *   Gaussian activations:         q16 RMS ratio 4.4e-5 .. 7.2e-5, max 3.3e-6 .. 1.7e-5 of sum |w x|
 *                                 (int8:        5.3e-3 .. 1.0e-2, max 5.1e-4 .. 1.8e-3)
 *   Gaussian, 1 in 64 spiked 40x: q16 RMS ratio 1.6e-4 .. 2.4e-4, max 4.0e-5 .. 1.7e-4
 *                                 (int8:        1.8e-2 .. 3.5e-2, max 6.7e-3 .. 2.6e-2)
 * i.e. about 100 to 150 times less than the int8 path (16383 steps instead of 127). The
 * RMS ratio is larger than the max over sum |w x| because random weights make the dot
 * itself about sqrt(n) times smaller than sum |w x|. The bounds asserted are 2 to 5 times
 * these, and q16 must beat int8 by 30 times. */
static void test_q16_path_error(void **state) {
    (void)state;
    ar_kernels k = kernels_of(AR_CPU_AUTO);
    static const int64_t sizes[] = {1536, 8960};
    const int64_t nmax = 8960;
    float *xf = malloc(nmax * sizeof *xf), *y = malloc(nmax * sizeof *y);
    ar_block_q16k *x16 = malloc((size_t)(nmax / AR_QK16K) * sizeof *x16);
    ar_block_q8k *x8 = malloc((size_t)(nmax / AR_QK8K) * sizeof *x8);
    uint8_t *w = malloc((size_t)(nmax / QK_K) * 210);
    assert_true(xf && y && x16 && x8 && w);
    for (size_t t = 0; t < N_QK_TYPES; t++) {
        const ar_type type = qk_types[t];
        for (int style = 0; style < 2; style++) {
            for (size_t s = 0; s < 2; s++) {
                const int64_t n = sizes[s];
                double err2 = 0.0, err2_8 = 0.0, dot2 = 0.0, worst = 0.0, worst8 = 0.0;
                const int reps = 100;
                for (int rep = 0; rep < reps; rep++) {
                    fill_random_blocks(type, w, n / QK_K);
                    fill_activations(xf, n, style ? ACT_OUTLIERS : ACT_NORMAL, 1.0);
                    k.quantize_q16k(xf, x16, n);
                    k.quantize_q8k(xf, x8, n);
                    const double got = k.vec_dot16[type](n, w, x16);
                    const double got8 = k.vec_dot[type](n, w, x8);
                    double exact, mag;
                    exact_dot(type, w, xf, n, &exact, &mag);
                    traits(type)->to_float(w, y, n);
                    double wx = 0.0;
                    for (int64_t i = 0; i < n; i++) wx += fabs((double)y[i] * xf[i]);
                    err2 += (got - exact) * (got - exact);
                    err2_8 += (got8 - exact) * (got8 - exact);
                    dot2 += exact * exact;
                    if (fabs(got - exact) / wx > worst) worst = fabs(got - exact) / wx;
                    if (fabs(got8 - exact) / wx > worst8) worst8 = fabs(got8 - exact) / wx;
                }
                const double ratio = sqrt(err2 / dot2), ratio8 = sqrt(err2_8 / dot2);
                printf("  %s n=%-5lld %-9s q16 vs float64: RMS error / RMS dot %.2e, max %.2e "
                       "of sum |w x|  (int8: %.2e, %.2e)\n",
                       traits(type)->name, (long long)n, style ? "spiked" : "Gaussian", ratio,
                       worst, ratio8, worst8);
                assert_true(ratio < (style ? 8e-4 : 2e-4));
                assert_true(worst < (style ? 8e-4 : 4e-5));
                assert_true(ratio < ratio8 / 30.0);
            }
        }
    }
    free(w);
    free(x8);
    free(x16);
    free(y);
    free(xf);
}

/* --- Speed (prints only, with AR_Q16_BENCH=1 or AR_QK_BENCH=1) ----------------------------- */

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

static int bench_enabled(void) {
    const char *a = getenv("AR_Q16_BENCH"), *b = getenv("AR_QK_BENCH");
    return (a && strcmp(a, "1") == 0) || (b && strcmp(b, "1") == 0);
}

static void test_speed(void **state) {
    (void)state;
    if (!bench_enabled()) skip();
    static const int64_t sizes[] = {1536, 8960};
    const int64_t nmax = 8960;
    const int rows = 64; /* a few rows, so the weights stay in L2 like a matmul's slice */
    const size_t s16max = act_stride(nmax);
    const size_t s8max = (size_t)(nmax / AR_QK8K) * sizeof(ar_block_q8k) + 36;
    float *xf = malloc(nmax * sizeof *xf);
    uint8_t *x16 = malloc(AR_MAX_NR * s16max), *x8 = malloc(AR_MAX_NR * s8max);
    uint8_t *w = malloc((size_t)rows * (size_t)(nmax / QK_K) * 210 + 1);
    assert_true(xf && x16 && x8 && w);
    printf("  ns per weight row; int8 = vec_dot / vec_dot_n with Q8K, q16 = vec_dot16 / "
           "vec_dot16_n with Q16K\n");
    printf("  %-6s %-7s %6s %9s %9s %9s | %9s %9s %9s\n", "type", "tier", "n", "int8 1", "q16 1",
           "int8x2 1", "int8 n=4", "q16 n=4", "q16 4x1");
    for (int tier = AR_CPU_SCALAR; tier <= AR_CPU_AVX512; tier++) {
        ar_kernels k;
        if (ar_kernels_get((ar_cpu_tier)tier, &k) != AR_OK) continue;
        const double secs = tier == AR_CPU_SCALAR ? 0.05 : 0.2;
        for (size_t s = 0; s < 2; s++) {
            const int64_t n = sizes[s];
            const size_t s16 = act_stride(n);
            const size_t s8 = (size_t)(n / AR_QK8K) * sizeof(ar_block_q8k) + 36;
            for (int r = 0; r < AR_MAX_NR; r++) {
                fill_activations(xf, n, ACT_OUTLIERS, 1.0);
                k.quantize_q16k(xf, x16 + (size_t)r * s16, n);
                k.quantize_q8k(xf, x8 + (size_t)r * s8, n);
            }
            double tq = now_s();
            int qreps = 0;
            do {
                for (int i = 0; i < 20; i++) k.quantize_q16k(xf, x16, n);
                qreps += 20;
            } while (now_s() - tq < 0.02);
            printf("  %-6s %-7s %6lld %9.1f  (quantize_q16k, ns per activation row)\n", "q16k",
                   ar_cpu_tier_name(k.tier), (long long)n, 1e9 * (now_s() - tq) / qreps);
            for (size_t t = 0; t < N_QK_TYPES; t++) {
                const ar_type type = qk_types[t];
                const size_t row_bytes = (size_t)(n / QK_K) * (size_t)traits(type)->type_size;
                fill_random_blocks(type, w, rows * (n / QK_K));
                volatile float sink = 0.0f;
                float ys[AR_MAX_NR];
                double t8, t16, t8x2, t8n = 0.0, t16n = 0.0, t16x4;
                TIME_ROWS(t8, secs, sink += k.vec_dot[type](n, w + r * row_bytes, x8));
                TIME_ROWS(t16, secs, sink += k.vec_dot16[type](n, w + r * row_bytes, x16));
                TIME_ROWS(t8x2, secs, {
                    sink += k.vec_dot[type](n, w + r * row_bytes, x8);
                    sink += k.vec_dot[type](n, w + r * row_bytes, x8 + s8);
                });
                TIME_ROWS(t16x4, secs, {
                    for (int i = 0; i < AR_MAX_NR; i++)
                        sink += k.vec_dot16[type](n, w + r * row_bytes, x16 + (size_t)i * s16);
                });
                if (k.vec_dot_n[type])
                    TIME_ROWS(t8n, secs, {
                        k.vec_dot_n[type](n, w + r * row_bytes, x8, s8, AR_MAX_NR, ys);
                        sink += ys[0] + ys[3];
                    });
                if (k.vec_dot16_n[type])
                    TIME_ROWS(t16n, secs, {
                        k.vec_dot16_n[type](n, w + r * row_bytes, x16, s16, AR_MAX_NR, ys);
                        sink += ys[0] + ys[3];
                    });
                printf("  %-6s %-7s %6lld %9.1f %9.1f %9.1f | %9.1f %9.1f %9.1f\n",
                       traits(type)->name, ar_cpu_tier_name(k.tier), (long long)n, t8, t16, t8x2,
                       t8n, t16n, t16x4);
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
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q16k_zeros_and_tiny),
        cmocka_unit_test(test_q16k_exact_scale),
        cmocka_unit_test(test_q16k_negative_max),
        cmocka_unit_test(test_q16k_inf_nan),
        cmocka_unit_test(test_q16k_extreme_magnitudes),
        cmocka_unit_test(test_scalar_dot_exact),
        cmocka_unit_test(test_scalar_dot_extremes),
        cmocka_unit_test(test_tier_avx2),
        cmocka_unit_test(test_tier_avx512),
        cmocka_unit_test(test_dot_n_scalar),
        cmocka_unit_test(test_dot_n_avx2),
        cmocka_unit_test(test_dot_n_avx512),
        cmocka_unit_test(test_q16_path_error),
        cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
