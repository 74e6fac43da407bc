/*
 * test_kernels_qk.c - the k-quant integer path (src/kernels/qk_*.c): quantize_q8k and the
 * Q2_K..Q6_K x Q8K dot products of every CPU tier.
 *
 * - quantize_q8k of the scalar tier against hand-computed blocks (zeros, one large value,
 *   a negative maximum, ties in magnitude and in rounding, bsums).
 * - Each scalar vec_dot against a float64 dot of the dequantized weights (the reference
 *   to_float) and the dequantized activations (d * qs): they agree to 1e-6 of the sum of
 *   the magnitudes of the terms.
 * - Every SIMD tier the CPU runs (the others are skipped) against the scalar tier on random
 *   valid blocks (random bytes, sane float16 scales) at several activation magnitudes,
 *   rows of 256, 512, 1536 and 8960, weights at even and odd addresses: quantized
 *   activations identical byte for byte, dot products within 1e-5 of the sum of |terms|.
 * - vec_dot_n, the multi-row form: the scalar tier leaves it NULL (callers loop vec_dot);
 *   every SIMD tier gives, for 1..AR_MAX_NR activation rows at a stride that is not a
 *   multiple of 64 bytes and weights at an odd address, results bit-identical (memcmp) to
 *   its vec_dot on each row alone, and writes no more than nr results.
 * - The error of the whole int8 path against the float64 dot of the dequantized weights
 *   with the original float activations (numbers below, in test_int8_path_error).
 *
 * Set AR_QK_BENCH=1 to also print ns per dot and GB/s of weight bytes for each type and
 * tier, and for vec_dot_n the ns per weight row times 4 activation rows against 4
 * single-row calls (test_speed; it only prints).
 */
#include "testutil.h"

#include "archrouter.h"
#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "kernels/types.h"

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

/* A float16 of random sign and magnitude in [2^-14, 2^-4). */
static uint16_t rnd_scale(void) {
    const float mag = (float)ldexp(1.0 + rnd_unit(), -14 + (int)(rnd_u32() % 10));
    return ar_fp32_to_fp16((rnd_u32() & 1) ? -mag : mag);
}

/* nblk random valid blocks of `type`: random bytes, then sane super-scales. */
static void fill_random_blocks(ar_type type, uint8_t *p, int64_t nblk) {
    const ar_type_traits *tt = ar_type_traits_get(type);
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

static const ar_type_traits *traits(ar_type type) {
    const ar_type_traits *tt = ar_type_traits_get(type);
    assert_non_null(tt);
    return tt;
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

/* The float values a Q8K row stands for: d * qs. */
static void dequant_q8k(const ar_block_q8k *q, float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = q[i / AR_QK8K].d * (float)q[i / AR_QK8K].qs[i % AR_QK8K];
}

static ar_kernels kernels_of(ar_cpu_tier tier) {
    ar_kernels k;
    assert_int_equal(ar_kernels_get(tier, &k), AR_OK);
    return k;
}

/* --- quantize_q8k, by hand ------------------------------------------------------------- */

static void quantize_scalar(const float *x, ar_block_q8k *y, int64_t n) {
    ar_kernels k = kernels_of(AR_CPU_SCALAR);
    assert_non_null(k.quantize_q8k);
    memset(y, 0x5a, (size_t)(n / AR_QK8K) * sizeof *y); /* every field must be written */
    k.quantize_q8k(x, y, n);
}

static void check_bsums(const ar_block_q8k *b) {
    for (int j = 0; j < 16; j++) {
        int s = 0;
        for (int i = 0; i < 16; i++) s += b->qs[16 * j + i];
        assert_int_equal(b->bsums[j], s);
    }
}

static void test_q8k_zeros(void **state) {
    (void)state;
    float x[2 * AR_QK8K] = {0};
    x[AR_QK8K + 3] = -0.0f; /* negative zero is zero */
    ar_block_q8k y[2];
    quantize_scalar(x, y, 2 * AR_QK8K);
    for (int b = 0; b < 2; b++) {
        assert_true(y[b].d == 0.0f);
        for (int i = 0; i < AR_QK8K; i++) assert_int_equal(y[b].qs[i], 0);
        for (int j = 0; j < 16; j++) assert_int_equal(y[b].bsums[j], 0);
    }
}

static void test_q8k_one_large_value(void **state) {
    (void)state;
    float x[AR_QK8K] = {0};
    x[37] = 2.0f;
    x[40] = 0.5f;    /* -127/2 * 0.5 = -31.75 -> -32 */
    x[41] = 1.0e-3f; /* -0.0635 -> 0 */
    x[255] = -0.25f; /* 15.875 -> 16 */
    ar_block_q8k y;
    quantize_scalar(x, &y, AR_QK8K);
    assert_true(y.d == 1.0f / (-127.0f / 2.0f)); /* d = 1 / iscale, negative for a positive max */
    for (int i = 0; i < AR_QK8K; i++) {
        const int want = i == 37 ? -127 : i == 40 ? -32 : i == 255 ? 16 : 0;
        assert_int_equal(y.qs[i], want);
    }
    assert_int_equal(y.bsums[2], -127 - 32); /* elements 32..47 */
    assert_int_equal(y.bsums[15], 16);
    assert_int_equal(y.bsums[0], 0);
    check_bsums(&y);
}

static void test_q8k_negative_max(void **state) {
    (void)state;
    float x[AR_QK8K];
    for (int i = 0; i < AR_QK8K; i++) x[i] = 0.01f * (float)(i % 7);
    x[200] = -4.0f; /* iscale = -127 / -4 = 31.75: the max still becomes -127, d > 0 */
    ar_block_q8k y;
    quantize_scalar(x, &y, AR_QK8K);
    assert_true(y.d == 1.0f / 31.75f);
    assert_int_equal(y.qs[200], -127);
    for (int i = 0; i < AR_QK8K; i++) {
        if (i == 200) continue;
        /* 31.75 * 0.01k = 0.3175k: 0, 0.32, 0.64, 0.95, 1.27, 1.59, 1.91 */
        static const int want[7] = {0, 0, 1, 1, 1, 2, 2};
        assert_int_equal(y.qs[i], want[i % 7]);
    }
    check_bsums(&y);
}

static void test_q8k_ties(void **state) {
    (void)state;
    /* A max of -127 makes iscale exactly 1: qs = x rounded, ties to even. */
    float x[AR_QK8K] = {0};
    const float in[] = {-127.0f, 2.5f, 3.5f, -2.5f, 0.5f, 1.5f, 126.5f, -126.5f, 0.49999997f};
    const int want[] = {-127, 2, 4, -2, 0, 2, 126, -126, 0};
    memcpy(x + 16, in, sizeof in);
    ar_block_q8k y;
    quantize_scalar(x, &y, AR_QK8K);
    assert_true(y.d == 1.0f);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_int_equal(y.qs[16 + i], want[i]);
    assert_int_equal(y.bsums[1], -127 + 2 + 4 - 2 + 0 + 2 + 126 - 126 + 0);
    check_bsums(&y);

    /* Equal magnitudes of both signs: the first one sets the sign. */
    memset(x, 0, sizeof x);
    x[3] = 5.0f;
    x[10] = -5.0f;
    quantize_scalar(x, &y, AR_QK8K);
    assert_int_equal(y.qs[3], -127);
    assert_int_equal(y.qs[10], 127);
    assert_true(y.d == 1.0f / (-127.0f / 5.0f));
    x[3] = -5.0f;
    x[10] = 5.0f;
    quantize_scalar(x, &y, AR_QK8K);
    assert_int_equal(y.qs[3], -127);
    assert_int_equal(y.qs[10], 127);
    assert_true(y.d == 1.0f / (-127.0f / -5.0f));
}

static void test_q8k_blocks_independent(void **state) {
    (void)state;
    float x[3 * AR_QK8K];
    for (int i = 0; i < 3 * AR_QK8K; i++)
        x[i] = (float)((i * 37) % 101 - 50) * (i < 256 ? 1e-3f : 1e3f);
    memset(x + 2 * AR_QK8K, 0, AR_QK8K * sizeof(float));
    ar_block_q8k y[3], one;
    quantize_scalar(x, y, 3 * AR_QK8K);
    for (int b = 0; b < 3; b++) {
        quantize_scalar(x + b * AR_QK8K, &one, AR_QK8K);
        assert_memory_equal(&one, &y[b], sizeof one);
        check_bsums(&y[b]);
        for (int i = 0; i < AR_QK8K; i++) { /* |x - d q| <= |d| / 2, up to rounding of d */
            const double err = fabs((double)x[b * AR_QK8K + i] - (double)y[b].d * y[b].qs[i]);
            assert_true(err <= 0.5000001 * fabs((double)y[b].d));
        }
    }
    assert_true(y[2].d == 0.0f);
}

/* --- Scalar vec_dot against float64 ---------------------------------------------------- */

static void test_scalar_dot_exact(void **state) {
    (void)state;
    ar_kernels k = kernels_of(AR_CPU_SCALAR);
    const int64_t n = 8960;
    float *xf = malloc(n * sizeof *xf), *xq = malloc(n * sizeof *xq);
    ar_block_q8k *x8 = malloc((size_t)(n / AR_QK8K) * sizeof *x8);
    uint8_t *w = malloc((size_t)(n / QK_K) * 210);
    assert_true(xf && xq && x8 && w);
    for (size_t t = 0; t < N_QK_TYPES; t++) {
        const ar_type type = qk_types[t];
        assert_int_equal(k.act[type], AR_ACT_Q8K);
        assert_non_null(k.vec_dot[type]);
        assert_true(k.vec_dot[type](0, "", "") == 0.0f); /* empty rows read nothing */
        double worst = 0.0;
        for (int rep = 0; rep < 20; rep++) {
            fill_random_blocks(type, w, n / QK_K);
            fill_activations(xf, n, rep % ACT_STYLES, pow(10.0, rep % 5 - 2));
            k.quantize_q8k(xf, x8, n);
            dequant_q8k(x8, xq, n);
            double exact, mag;
            exact_dot(type, w, xq, n, &exact, &mag);
            const double got = k.vec_dot[type](n, w, x8);
            const double rel = fabs(got - exact) / mag;
            if (rel > worst) worst = rel;
            if (!(rel <= 1e-6))
                fail_msg("%s rep %d: scalar %.9g, float64 %.17g (error %.3g of sum |terms| %.6g)",
                         traits(type)->name, rep, got, exact, rel, mag);
        }
        printf("  %s scalar vs float64: worst error %.2e of sum |terms|\n", traits(type)->name,
               worst);
    }
    free(w);
    free(x8);
    free(xq);
    free(xf);
}

/* Extreme blocks: all quants and scales at their ends, activations at +-127 and -128 (not
 * produced by quantize_q8k, but valid Q8K), so no 16-bit intermediate of a SIMD tier may
 * saturate. Checked against float64 for the scalar tier and by test_tiers for the others. */
static void fill_extreme(ar_type type, uint8_t *w, int64_t nblk, ar_block_q8k *x, int variant) {
    const ar_type_traits *tt = traits(type);
    int off_d, off_dmin;
    scale_offsets(type, &off_d, &off_dmin);
    for (int64_t b = 0; b < nblk; b++) {
        uint8_t *p = w + b * tt->type_size;
        memset(p, (variant & 1) ? 0xff : 0x00, (size_t)tt->type_size);
        if (type == AR_TYPE_Q6_K) /* int8 scales: -128 or 127 */
            memset(p + 192, (variant & 1) ? 0x80 : 0x7f, 16);
        put_u16(p + off_d, 0x3c00);                       /* 1.0 */
        if (off_dmin >= 0) put_u16(p + off_dmin, 0x3800); /* 0.5 */
        const int a = (variant & 2) ? -128 : 127;
        x[b].d = 0.5f;
        for (int i = 0; i < AR_QK8K; i++)
            x[b].qs[i] = (int8_t)((variant & 4) && (i & 1) ? -a - 1 : a);
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += x[b].qs[16 * j + i];
            x[b].bsums[j] = (int16_t)s;
        }
    }
}

static void test_scalar_dot_extremes(void **state) {
    (void)state;
    ar_kernels k = kernels_of(AR_CPU_SCALAR);
    const int64_t n = 512;
    uint8_t w[2 * 210];
    ar_block_q8k x[2];
    float xq[512];
    for (size_t t = 0; t < N_QK_TYPES; t++) {
        for (int variant = 0; variant < 8; variant++) {
            fill_extreme(qk_types[t], w, 2, x, variant);
            dequant_q8k(x, xq, n);
            double exact, mag;
            exact_dot(qk_types[t], w, xq, n, &exact, &mag);
            const double got = k.vec_dot[qk_types[t]](n, w, x);
            if (!(fabs(got - exact) <= 1e-6 * mag))
                fail_msg("%s extreme %d: %.9g vs %.17g", traits(qk_types[t])->name, variant, got,
                         exact);
        }
    }
}

/* --- SIMD tiers against the scalar tier ------------------------------------------------ */

/* Special activation rows for the quantizer: ties, NaN/inf, subnormals, zero blocks. */
static void fill_special(float *x, int64_t n, int which) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)rnd_normal();
    switch (which) {
    case 0: /* magnitude ties of both signs, in several positions */
        for (int64_t b = 0; b < n / AR_QK8K; b++) {
            x[b * AR_QK8K + (b * 41) % 256] = 9.0f;
            x[b * AR_QK8K + (b * 97 + 13) % 256] = -9.0f;
        }
        break;
    case 1: /* iscale = 1: every value on a rounding tie */
        for (int64_t i = 0; i < n; i++) x[i] = (float)((int)(i % 253) - 126) + 0.5f;
        for (int64_t b = 0; b < n / AR_QK8K; b++) x[b * AR_QK8K + 7] = -127.0f;
        break;
    case 2: /* subnormal and tiny values, a zero block */
        for (int64_t i = 0; i < n; i++) x[i] = (float)(rnd_normal() * 1e-40);
        memset(x, 0, AR_QK8K * sizeof *x);
        break;
    case 3: /* NaN and inf: defined, identical bytes in every tier */
        x[5] = NAN;
        x[AR_QK8K + 9] = INFINITY;
        x[AR_QK8K + 10] = -INFINITY;
        if (n > 2 * AR_QK8K) x[2 * AR_QK8K + 255] = -NAN;
        break;
    default: break;
    }
}

static void compare_quantize(const ar_kernels *simd, const ar_kernels *ref, const float *x,
                             int64_t n, const char *what) {
    const size_t bytes = (size_t)(n / AR_QK8K) * sizeof(ar_block_q8k);
    ar_block_q8k *a = malloc(bytes), *b = malloc(bytes);
    assert_true(a && b);
    memset(a, 0x11, bytes);
    memset(b, 0x77, bytes);
    ref->quantize_q8k(x, a, n);
    simd->quantize_q8k(x, b, n);
    for (int64_t ib = 0; ib < n / AR_QK8K; ib++) {
        if (memcmp(&a[ib], &b[ib], sizeof a[ib]) != 0)
            fail_msg("%s quantize_q8k differs from scalar (%s, block %lld: d %.9g vs %.9g)",
                     ar_cpu_tier_name(simd->tier), what, (long long)ib, (double)a[ib].d,
                     (double)b[ib].d);
    }
    free(b);
    free(a);
}

/* vec_dot of the tier against the scalar tier, with the weights at offset `shift` of an
 * exactly-sized allocation (ASan catches a read past the row). */
static double worst_diff[AR_N_TYPES]; /* per type, for the tier being checked */

static void compare_dot(const ar_kernels *simd, const ar_kernels *ref, ar_type type,
                        const uint8_t *w, const ar_block_q8k *x, int64_t n, int shift,
                        const char *what) {
    const size_t bytes = (size_t)(n / QK_K) * (size_t)traits(type)->type_size;
    uint8_t *buf = malloc(bytes + (size_t)shift);
    float *xq = malloc((size_t)n * sizeof *xq);
    assert_true(buf && xq);
    memcpy(buf + shift, w, bytes);
    const double want = ref->vec_dot[type](n, w, x);
    const double got = simd->vec_dot[type](n, buf + shift, x);
    dequant_q8k(x, xq, n);
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

static void check_tier(ar_cpu_tier tier) {
    ar_kernels simd;
    if (ar_kernels_get(tier, &simd) != AR_OK) {
        printf("  %s: not supported by this CPU, skipped\n", ar_cpu_tier_name(tier));
        skip();
    }
    const ar_kernels ref = kernels_of(AR_CPU_SCALAR);
    assert_int_equal(simd.tier, tier);
    assert_non_null(simd.quantize_q8k);
    for (size_t t = 0; t < N_QK_TYPES; t++) {
        assert_int_equal(simd.act[qk_types[t]], AR_ACT_Q8K);
        assert_non_null(simd.vec_dot[qk_types[t]]);
        assert_true(simd.vec_dot[qk_types[t]](0, "", "") == 0.0f); /* empty rows read nothing */
    }
    simd.quantize_q8k(NULL, NULL, 0);
    static const int64_t sizes[] = {256, 512, 1536, 8960};
    const int64_t nmax = 8960;
    float *xf = malloc(nmax * sizeof *xf);
    ar_block_q8k *x8 = malloc((size_t)(nmax / AR_QK8K) * sizeof *x8);
    uint8_t *w = malloc((size_t)(nmax / QK_K) * 210);
    assert_true(xf && x8 && w);
    memset(worst_diff, 0, sizeof worst_diff);

    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int64_t n = sizes[s];
        for (int which = 0; which < 4; which++) {
            fill_special(xf, n, which);
            compare_quantize(&simd, &ref, xf, n, "special rows");
        }
        for (int rep = 0; rep < 10; rep++) {
            char what[64];
            const double mag = pow(10.0, rep % 7 - 3);
            snprintf(what, sizeof what, "style %d, magnitude %g", rep % ACT_STYLES, mag);
            fill_activations(xf, n, rep % ACT_STYLES, mag);
            compare_quantize(&simd, &ref, xf, n, what);
            ref.quantize_q8k(xf, x8, n);
            for (size_t t = 0; t < N_QK_TYPES; t++) {
                fill_random_blocks(qk_types[t], w, n / QK_K);
                compare_dot(&simd, &ref, qk_types[t], w, x8, n, rep & 1, what);
            }
        }
    }
    for (size_t t = 0; t < N_QK_TYPES; t++) {
        for (int variant = 0; variant < 8; variant++) {
            fill_extreme(qk_types[t], w, 4, x8, variant);
            compare_dot(&simd, &ref, qk_types[t], w, x8, 1024, variant & 1, "extreme blocks");
        }
        printf("  %s %s vs scalar: worst difference %.2e of sum |terms|\n", ar_cpu_tier_name(tier),
               traits(qk_types[t])->name, worst_diff[qk_types[t]]);
    }
    free(w);
    free(x8);
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

/* --- vec_dot_n: several activation rows ---------------------------------------------- */

/* Activation rows are this many bytes apart: a whole number of Q8K blocks (so every block
 * stays aligned for its float) plus 36 bytes, which is not a multiple of 64 for any n. */
static size_t act_stride(int64_t n) {
    const size_t s = (size_t)(n / AR_QK8K) * sizeof(ar_block_q8k) + 36;
    assert_true(s % 64 != 0 && s % _Alignof(ar_block_q8k) == 0);
    return s;
}

/* vec_dot_n on nr rows of x (rows `stride` bytes apart) against vec_dot on each row: the
 * weights are copied to an odd address of an exactly-sized allocation and the rows to an
 * exactly-sized buffer (ASan catches a read past either); results are compared as bytes,
 * and ys[nr..] must keep their sentinel. */
static void compare_dot_n(const ar_kernels *k, ar_type type, const uint8_t *w, const uint8_t *x,
                          size_t stride, int64_t n, int nr, const char *what) {
    const size_t wbytes = (size_t)(n / QK_K) * (size_t)traits(type)->type_size;
    const size_t xbytes = (size_t)(nr - 1) * stride + (size_t)(n / AR_QK8K) * sizeof(ar_block_q8k);
    uint8_t *wbuf = malloc(wbytes + 1), *xbuf = malloc(xbytes);
    assert_true(wbuf && xbuf);
    memcpy(wbuf + 1, w, wbytes);
    memcpy(xbuf, x, xbytes);
    float want[AR_MAX_NR + 1], got[AR_MAX_NR + 1];
    for (int r = 0; r < nr; r++) want[r] = k->vec_dot[type](n, wbuf + 1, xbuf + (size_t)r * stride);
    for (int r = 0; r <= AR_MAX_NR; r++) got[r] = -12345.0f;
    k->vec_dot_n[type](n, wbuf + 1, xbuf, stride, nr, got);
    for (int r = 0; r < nr; r++) {
        if (memcmp(&got[r], &want[r], sizeof got[r]) != 0)
            fail_msg("%s %s vec_dot_n n=%lld nr=%d (%s): row %d gives %.9g, vec_dot %.9g",
                     ar_cpu_tier_name(k->tier), traits(type)->name, (long long)n, nr, what, r,
                     (double)got[r], (double)want[r]);
    }
    for (int r = nr; r <= AR_MAX_NR; r++)
        if (got[r] != -12345.0f)
            fail_msg("%s %s vec_dot_n nr=%d wrote ys[%d]", ar_cpu_tier_name(k->tier),
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
    for (size_t t = 0; t < N_QK_TYPES; t++) {
        assert_non_null(k.vec_dot_n[qk_types[t]]);
        float y[AR_MAX_NR];
        for (int nr = 1; nr <= AR_MAX_NR; nr++) { /* empty rows read nothing, give 0 */
            for (int r = 0; r < nr; r++) y[r] = 1.0f;
            k.vec_dot_n[qk_types[t]](0, "", "", 0, nr, y);
            for (int r = 0; r < nr; r++) assert_true(y[r] == 0.0f);
        }
    }
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
                k.quantize_q8k(xf, x + (size_t)r * stride, n);
            }
            char what[64];
            snprintf(what, sizeof what, "random blocks, rep %d", rep);
            for (size_t t = 0; t < N_QK_TYPES; t++) {
                fill_random_blocks(qk_types[t], w, n / QK_K);
                for (int nr = 1; nr <= AR_MAX_NR; nr++)
                    compare_dot_n(&k, qk_types[t], w, x, stride, n, nr, what);
            }
        }
    }
    /* extreme blocks (the SIMD tiers' int16 limits), a different variant in each row */
    const int64_t n = 1024;
    const size_t stride = act_stride(n);
    for (size_t t = 0; t < N_QK_TYPES; t++) {
        for (int variant = 0; variant < 8; variant++) {
            ar_block_q8k xe[4];
            for (int r = 0; r < AR_MAX_NR; r++) {
                fill_extreme(qk_types[t], w, 4, xe, (variant + 3 * r) % 8);
                memcpy(x + (size_t)r * stride, xe, sizeof xe);
            }
            fill_extreme(qk_types[t], w, 4, xe, variant);
            for (int nr = 1; nr <= AR_MAX_NR; nr++)
                compare_dot_n(&k, qk_types[t], w, x, stride, n, nr, "extreme blocks");
        }
    }
    printf("  %s vec_dot_n: bit-identical to vec_dot for nr 1..%d, every k-quant\n",
           ar_cpu_tier_name(tier), AR_MAX_NR);
    free(w);
    free(x);
    free(xf);
}

static void test_dot_n_scalar(void **state) {
    (void)state;
    /* documented: the scalar tier has no multi-row form, callers loop vec_dot */
    ar_kernels k = kernels_of(AR_CPU_SCALAR);
    for (size_t t = 0; t < N_QK_TYPES; t++) {
        assert_non_null(k.vec_dot[qk_types[t]]);
        assert_null(k.vec_dot_n[qk_types[t]]);
    }
}

static void test_dot_n_avx2(void **state) {
    (void)state;
    check_dot_n(AR_CPU_AVX2);
}

static void test_dot_n_avx512(void **state) {
    (void)state;
    check_dot_n(AR_CPU_AVX512);
}

/* --- The int8 path against float ------------------------------------------------------ */

/* How far the int8 path (activations rounded to Q8K) lands from the float64 dot of the same
 * dequantized weights with the original float activations. Two numbers per case, over 100
 * random rows: the RMS error over the RMS of the exact dots (the noise-to-signal ratio of
 * the output), and the largest error as a fraction of sum |w x|. Measured on this data
 * (random blocks of all five types, n = 1536 and 8960; every tier gives the same to float
 * rounding):
 *   Gaussian activations:            RMS ratio 0.6 .. 0.8 %,  max 0.04 .. 0.17 % of sum |w x|
 *   Gaussian, 1 in 64 spiked 40x:    RMS ratio 2.0 .. 3.5 %,  max 0.6 .. 3.1 % of sum |w x|
 * A spike sets its block's scale, so the other 255 values of the block keep fewer bits;
 * this is the price of llama.cpp's Q8_K path, and why the engine also has the float path.
 * The bounds asserted are about twice these. */
static void test_int8_path_error(void **state) {
    (void)state;
    ar_kernels k = kernels_of(AR_CPU_AUTO);
    static const int64_t sizes[] = {1536, 8960};
    const int64_t nmax = 8960;
    float *xf = malloc(nmax * sizeof *xf), *y = malloc(nmax * sizeof *y);
    ar_block_q8k *x8 = malloc((size_t)(nmax / AR_QK8K) * sizeof *x8);
    uint8_t *w = malloc((size_t)(nmax / QK_K) * 210);
    assert_true(xf && y && x8 && w);
    for (size_t t = 0; t < N_QK_TYPES; t++) {
        const ar_type type = qk_types[t];
        for (int style = 0; style < 2; style++) {
            for (size_t s = 0; s < 2; s++) {
                const int64_t n = sizes[s];
                double err2 = 0.0, dot2 = 0.0, worst = 0.0;
                const int reps = 100;
                for (int rep = 0; rep < reps; rep++) {
                    fill_random_blocks(type, w, n / QK_K);
                    fill_activations(xf, n, style ? ACT_OUTLIERS : ACT_NORMAL, 1.0);
                    k.quantize_q8k(xf, x8, n);
                    const double got = k.vec_dot[type](n, w, x8);
                    double exact, mag;
                    exact_dot(type, w, xf, n, &exact, &mag);
                    traits(type)->to_float(w, y, n);
                    double wx = 0.0;
                    for (int64_t i = 0; i < n; i++) wx += fabs((double)y[i] * xf[i]);
                    err2 += (got - exact) * (got - exact);
                    dot2 += exact * exact;
                    if (fabs(got - exact) / wx > worst) worst = fabs(got - exact) / wx;
                }
                const double ratio = sqrt(err2 / dot2);
                printf("  %s n=%-5lld %-9s int8 path vs float64: RMS error / RMS dot %.2e, max "
                       "%.2e of sum |w x|\n",
                       traits(type)->name, (long long)n, style ? "spiked" : "Gaussian", ratio,
                       worst);
                assert_true(ratio < (style ? 0.06 : 0.015));
                assert_true(worst < (style ? 0.1 : 0.01));
            }
        }
    }
    free(w);
    free(x8);
    free(y);
    free(xf);
}

/* --- Speed (prints only, with AR_QK_BENCH=1) ------------------------------------------- */

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
    const char *env = getenv("AR_QK_BENCH");
    if (!env || strcmp(env, "1") != 0) skip();
    static const int64_t sizes[] = {1536, 8960};
    const int64_t nmax = 8960;
    const int rows = 64; /* a few rows, so the weights stay in L2 like a matmul's slice */
    const size_t smax = act_stride(nmax);
    float *xf = malloc(nmax * sizeof *xf);
    uint8_t *x = malloc(AR_MAX_NR * smax);
    uint8_t *w = malloc((size_t)rows * (size_t)(nmax / QK_K) * 210 + 1);
    assert_true(xf && x && w);
    printf("  single row:\n  %-6s %-7s %6s %10s %8s\n", "type", "tier", "n", "ns/dot", "GB/s");
    for (int tier = AR_CPU_SCALAR; tier <= AR_CPU_AVX512; tier++) {
        ar_kernels k;
        if (ar_kernels_get((ar_cpu_tier)tier, &k) != AR_OK) continue;
        for (size_t s = 0; s < 2; s++) {
            const int64_t n = sizes[s];
            fill_activations(xf, n, ACT_OUTLIERS, 1.0);
            double t0 = now_s();
            int qreps = 0;
            do {
                for (int i = 0; i < 100; i++) k.quantize_q8k(xf, x, n);
                qreps += 100;
            } while (now_s() - t0 < 0.05);
            printf("  %-6s %-7s %6lld %10.1f\n", "q8k", ar_cpu_tier_name(k.tier), (long long)n,
                   1e9 * (now_s() - t0) / qreps);
            for (size_t t = 0; t < N_QK_TYPES; t++) {
                const ar_type type = qk_types[t];
                const size_t row_bytes = (size_t)(n / QK_K) * (size_t)traits(type)->type_size;
                fill_random_blocks(type, w, rows * (n / QK_K));
                volatile float sink = 0.0f;
                double ns;
                TIME_ROWS(ns, tier == AR_CPU_SCALAR ? 0.05 : 0.2,
                          sink += k.vec_dot[type](n, w + r * row_bytes, x));
                printf("  %-6s %-7s %6lld %10.1f %8.1f\n", traits(type)->name,
                       ar_cpu_tier_name(k.tier), (long long)n, ns, (double)row_bytes / ns);
                (void)sink;
            }
        }
    }
    /* One weight row times 4 activation rows: 4 vec_dot calls against one vec_dot_n with 4
     * rows (and 2 with 2 rows, the accurate precision's pair for one token). */
    printf("  4 activation rows, ns per weight row:\n  %-6s %-7s %6s %9s %9s %9s %8s\n", "type",
           "tier", "n", "4x dot", "2x n=2", "1x n=4", "speed-up");
    for (int tier = AR_CPU_AVX2; tier <= AR_CPU_AVX512; tier++) {
        ar_kernels k;
        if (ar_kernels_get((ar_cpu_tier)tier, &k) != AR_OK) continue;
        for (size_t s = 0; s < 2; s++) {
            const int64_t n = sizes[s];
            const size_t stride = act_stride(n);
            for (int r = 0; r < AR_MAX_NR; r++) {
                fill_activations(xf, n, ACT_OUTLIERS, 1.0);
                k.quantize_q8k(xf, x + (size_t)r * stride, n);
            }
            for (size_t t = 0; t < N_QK_TYPES; t++) {
                const ar_type type = qk_types[t];
                const size_t row_bytes = (size_t)(n / QK_K) * (size_t)traits(type)->type_size;
                fill_random_blocks(type, w, rows * (n / QK_K));
                volatile float sink = 0.0f;
                float ys[AR_MAX_NR];
                double t_dot, t_n2, t_n4;
                TIME_ROWS(t_dot, 0.2, {
                    for (int i = 0; i < AR_MAX_NR; i++)
                        sink += k.vec_dot[type](n, w + r * row_bytes, x + (size_t)i * stride);
                });
                TIME_ROWS(t_n2, 0.2, {
                    for (int i = 0; i < AR_MAX_NR; i += 2) {
                        k.vec_dot_n[type](n, w + r * row_bytes, x + (size_t)i * stride, stride, 2,
                                          ys);
                        sink += ys[0] + ys[1];
                    }
                });
                TIME_ROWS(t_n4, 0.2, {
                    k.vec_dot_n[type](n, w + r * row_bytes, x, stride, AR_MAX_NR, ys);
                    sink += ys[0] + ys[3];
                });
                printf("  %-6s %-7s %6lld %9.1f %9.1f %9.1f %7.2fx\n", traits(type)->name,
                       ar_cpu_tier_name(k.tier), (long long)n, t_dot, t_n2, t_n4, t_dot / t_n4);
                (void)sink;
            }
        }
    }
    free(w);
    free(x);
    free(xf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q8k_zeros),
        cmocka_unit_test(test_q8k_one_large_value),
        cmocka_unit_test(test_q8k_negative_max),
        cmocka_unit_test(test_q8k_ties),
        cmocka_unit_test(test_q8k_blocks_independent),
        cmocka_unit_test(test_scalar_dot_exact),
        cmocka_unit_test(test_scalar_dot_extremes),
        cmocka_unit_test(test_tier_avx2),
        cmocka_unit_test(test_tier_avx512),
        cmocka_unit_test(test_dot_n_scalar),
        cmocka_unit_test(test_dot_n_avx2),
        cmocka_unit_test(test_dot_n_avx512),
        cmocka_unit_test(test_int8_path_error),
        cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
