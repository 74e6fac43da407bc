/*
 * test_kernels_q32.c - the integer path of the 32-element block types Q4_0, Q4_1, Q5_0,
 * Q5_1 and Q8_0: the Q8A activation quantizer and the vec_dot kernels, every CPU tier.
 *
 * 1. The scalar quantizer against hand-computed blocks (exact halves, halfway cases, zeros,
 *    one huge value, a negative maximum, the FLT_MIN edge, inf and NaN).
 * 2. The scalar vec_dot of each type against a double-precision dot of the dequantized
 *    weights (to_float) and the dequantized activations (d * qs).
 * 3. Every SIMD tier this CPU runs (the others are skipped) against the scalar tier on
 *    random valid blocks: identical activation blocks, dot products within float
 *    reassociation error, results independent of the weights' address. The multi-row
 *    vec_dot_n (nr = 1..4 activation rows) bit-identical to vec_dot on each row; the scalar
 *    tier leaves it NULL.
 * 4. The error of the whole int8 path against the float dot of the dequantized weights
 *    with the original activations (the cost of rounding activations to 8 bits).
 *
 * Error scale. The kernels compute per block (dw * d) * P + mw * s with an exact integer
 * P = sum(q[i] * a[i]); only float rounding of those few terms and of their sum differs
 * between implementations. Differences are measured against
 *     T = sum over blocks of |dw * d| * sum(|q[i] * a[i]|) + |mw * s|,
 * the sum of the magnitudes of everything that was added (for types without m, simply
 * sum |w[i] * x[i]| over the dequantized values).
 *
 * Setting AR_BENCH_Q32=1 in the environment also runs a micro-benchmark that prints ns per
 * dot and GB/s of weight bytes for each type and tier, then vec_dot_n against as many
 * vec_dot calls (nothing is checked); AR_BENCH_Q32=multi runs only the latter.
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

static const ar_type q32_types[] = {AR_TYPE_Q4_0, AR_TYPE_Q4_1, AR_TYPE_Q5_0, AR_TYPE_Q5_1,
                                    AR_TYPE_Q8_0};
#define N_Q32 (sizeof q32_types / sizeof q32_types[0])

static const int64_t sizes[] = {32, 64, 96, 1536, 8960};
#define N_SIZES (sizeof sizes / sizeof sizes[0])

/* --- Helpers ----------------------------------------------------------------------------- */

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

static size_t row_bytes(ar_type t, int64_t n) {
    return (size_t)(n / traits(t)->blck_size) * (size_t)traits(t)->type_size;
}

/* The tiers this CPU runs; tier[i] valid when have[i]. */
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
    const int qs_at = t == AR_TYPE_Q4_0 ? 2 : t == AR_TYPE_Q4_1 ? 4 : t == AR_TYPE_Q5_0 ? 6 : 8;
    uint32_t qh = 0;
    if (t == AR_TYPE_Q5_0 || t == AR_TYPE_Q5_1) {
        const uint8_t *p = b + (t == AR_TYPE_Q5_0 ? 2 : 4);
        qh = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    }
    const int five = t == AR_TYPE_Q5_0 || t == AR_TYPE_Q5_1;
    const int off = t == AR_TYPE_Q4_0 ? 8 : t == AR_TYPE_Q5_0 ? 16 : 0;
    for (int j = 0; j < 16; j++) {
        q[j] = (b[qs_at + j] & 15) + (five ? (int)((qh >> j) & 1) << 4 : 0) - off;
        q[j + 16] = (b[qs_at + j] >> 4) + (five ? (int)((qh >> (j + 16)) & 1) << 4 : 0) - off;
    }
}

/* Random valid blocks: random quant bytes with float16 scales of either sign in
 * [1e-3, 0.1) and, for the "_1" types, minimums in [-0.2, 0.2). */
static void random_blocks(ar_type t, int64_t n, uint8_t *w) {
    const size_t bytes = row_bytes(t, n);
    const size_t bs = (size_t)traits(t)->type_size;
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

/* Random activations of magnitude `scale`: Gaussian, where `outliers` says whether one in
 * 200 is 30x larger (as in real hidden states); now and then a block of zeros or of one
 * sign only. */
static void random_acts_dist(float *x, int64_t n, double scale, int outliers) {
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

static void random_acts(float *x, int64_t n, double scale) {
    random_acts_dist(x, n, scale, 1);
}

/* Double-precision dots of a weight row with quantized activations:
 *   *deq: sum of to_float(w)[i] * (d * qs[i]);  *scale: T (see the file comment). */
static void ref_dot_q8a(ar_type t, int64_t n, const uint8_t *w, const ar_block_q8a *x, double *deq,
                        double *scale) {
    float *wf = xmalloc((size_t)n * sizeof(float));
    traits(t)->to_float(w, wf, n);
    const size_t bs = (size_t)traits(t)->type_size;
    *deq = *scale = 0;
    for (int64_t ib = 0; ib < n / 32; ib++) {
        int q[32];
        double dw, mw, abs_p = 0;
        decode_block(t, w + (size_t)ib * bs, q, &dw, &mw);
        for (int i = 0; i < 32; i++) {
            *deq += (double)wf[ib * 32 + i] * ((double)x[ib].d * x[ib].qs[i]);
            abs_p += fabs((double)q[i] * x[ib].qs[i]);
        }
        *scale += fabs(dw * x[ib].d) * abs_p + fabs(mw * x[ib].s);
    }
    free(wf);
}

/* --- 1. The quantizer -------------------------------------------------------------------- */

/* Quantize x (n floats) with every tier and compare each block with the expectation. */
static void check_quantize(const float *x, int64_t n, const ar_block_q8a *want) {
    ar_block_q8a *got = xmalloc((size_t)(n / 32) * sizeof *got);
    for (int t = 0; t < 3; t++) {
        if (!have_tier[t]) continue;
        memset(got, 0x5a, (size_t)(n / 32) * sizeof *got);
        tier_k[t].quantize_q8a(x, got, n);
        for (int64_t b = 0; b < n / 32; b++) {
            const char *tn = ar_cpu_tier_name((ar_cpu_tier)t);
            if (isnan(want[b].d)) {
                if (!isnan(got[b].d) || !isnan(got[b].s))
                    fail_msg("%s block %d: d %g s %g, expected NaN", tn, (int)b, (double)got[b].d,
                             (double)got[b].s);
            } else if (got[b].d != want[b].d || got[b].s != want[b].s) {
                fail_msg("%s block %d: d %.9g s %.9g, expected %.9g %.9g", tn, (int)b,
                         (double)got[b].d, (double)got[b].s, (double)want[b].d, (double)want[b].s);
            }
            for (int i = 0; i < 32; i++)
                if (got[b].qs[i] != want[b].qs[i])
                    fail_msg("%s block %d qs[%d]: %d, expected %d", tn, (int)b, i, got[b].qs[i],
                             want[b].qs[i]);
        }
    }
    free(got);
}

static void set_expect(ar_block_q8a *e, float d, const int *q) {
    int sum = 0;
    for (int i = 0; i < 32; i++) {
        e->qs[i] = (int8_t)q[i];
        sum += q[i];
    }
    e->d = d;
    e->s = d * (float)sum;
}

static void test_quantize_known(void **state) {
    (void)state;
    load_tiers();
    enum { NB = 8 };
    float x[NB * 32];
    ar_block_q8a want[NB];
    int q[32];

    /* 0: all zeros */
    for (int i = 0; i < 32; i++) x[i] = 0.0f, q[i] = 0;
    set_expect(&want[0], 0.0f, q);

    /* 1: amax 63.5 -> d = 0.5 and 1/d = 2 exactly, so x = k / 2 gives qs = k */
    for (int i = 0; i < 32; i++) {
        q[i] = (i * 37) % 255 - 127; /* spans -127..127 */
        x[32 + i] = 0.5f * (float)q[i];
    }
    x[32 + 3] = 63.5f, q[3] = 127;
    set_expect(&want[1], 0.5f, q);

    /* 2: halfway cases round away from zero (ties-to-even would give 2 and -2 for 2.5) */
    {
        static const float hx[8] = {0.25f, -0.25f, 0.75f, 1.25f, -1.25f, 0.2499999f, 63.5f, -0.75f};
        static const int hq[8] = {1, -1, 2, 3, -3, 0, 127, -2};
        for (int i = 0; i < 32; i++) x[64 + i] = hx[i % 8], q[i] = hq[i % 8];
        set_expect(&want[2], 0.5f, q);
    }

    /* 3: one huge value: it gets 127, everything else rounds to 0 */
    for (int i = 0; i < 32; i++) x[96 + i] = 1.0f, q[i] = 0;
    x[96 + 17] = 1e30f, q[17] = 127;
    set_expect(&want[3], 1e30f / 127.0f, q);

    /* 4: negative maximum: amax 254 -> d = 2, 1/d = 0.5; x = 2k gives k */
    for (int i = 0; i < 32; i++) q[i] = (i % 7) * 9 - 27, x[128 + i] = 2.0f * (float)q[i];
    x[128 + 5] = -254.0f, q[5] = -127;
    set_expect(&want[4], 2.0f, q);

    /* 5: amax 127 * FLT_MIN: d = FLT_MIN, still quantized; 6: just below, flushed to 0 */
    for (int i = 0; i < 32; i++) x[160 + i] = 0.0f, x[192 + i] = 0.0f, q[i] = 0;
    x[160 + 9] = 127.0f * FLT_MIN, q[9] = 127;
    set_expect(&want[5], FLT_MIN, q);
    q[9] = 0;
    x[192 + 9] = 126.0f * FLT_MIN;
    x[192 + 10] = -1e-40f;
    set_expect(&want[6], 0.0f, q);

    /* 7: ordinary values; the expectation computed with the documented float32 steps */
    for (int i = 0; i < 32; i++) x[224 + i] = (float)((i - 13) * 0.37 + 0.01 * i * i);
    {
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[224 + i]));
        const float d = amax / 127.0f, id = 1.0f / d;
        for (int i = 0; i < 32; i++) q[i] = (int)roundf(x[224 + i] * id);
        set_expect(&want[7], d, q);
    }
    check_quantize(x, NB * 32, want);

    /* The same from an address that is not 32-byte aligned. */
    float *shifted = xmalloc(sizeof x + sizeof(float));
    memcpy(shifted + 1, x, sizeof x);
    check_quantize(shifted + 1, NB * 32, want);
    free(shifted);
}

static void test_quantize_nonfinite(void **state) {
    (void)state;
    load_tiers();
    float x[4 * 32];
    ar_block_q8a want[4];
    int q[32];
    for (int i = 0; i < 4 * 32; i++) x[i] = 0.5f * (float)(i % 5);
    for (int i = 0; i < 32; i++) q[i] = i % 5;
    x[2] = INFINITY;
    x[32 + 31] = -INFINITY;
    x[64 + 7] = NAN;
    /* blocks 0..2 hold inf/NaN: d = s = NaN, qs = 0; block 3 is untouched by them */
    for (int b = 0; b < 3; b++) {
        memset(&want[b], 0, sizeof want[b]);
        want[b].d = want[b].s = NAN;
    }
    /* block 3: x = 0.5 * (i % 5), amax 2 -> d = 2/127; compute with the float steps */
    {
        const float d = 2.0f / 127.0f, id = 1.0f / d;
        for (int i = 0; i < 32; i++) q[i] = (int)roundf(x[96 + i] * id);
        set_expect(&want[3], d, q);
    }
    check_quantize(x, 4 * 32, want);
}

/* Random rows: every tier's blocks are identical to the scalar tier's, byte for byte. */
static void test_quantize_tiers_identical(void **state) {
    (void)state;
    load_tiers();
    const int64_t n = 8960;
    float *x = xmalloc((size_t)n * sizeof(float));
    ar_block_q8a *ref = xmalloc((size_t)(n / 32) * sizeof *ref);
    ar_block_q8a *got = xmalloc((size_t)(n / 32) * sizeof *got);
    static const double scales[] = {1e-37, 1e-30, 1e-3, 1, 37, 3e4, 1e30};
    for (size_t s = 0; s < sizeof scales / sizeof scales[0]; s++) {
        for (int rep = 0; rep < 4; rep++) {
            random_acts(x, n, scales[s]);
            /* exact halves of the quantization step hit the tie rule */
            for (int64_t i = 0; i < n; i += 7) x[i] = (float)(rnd_u64() % 64) * 0.5f - 16.0f;
            tier_k[AR_CPU_SCALAR].quantize_q8a(x, ref, n);
            for (int t = AR_CPU_AVX2; t <= AR_CPU_AVX512; t++) {
                if (!have_tier[t]) continue;
                memset(got, 0, (size_t)(n / 32) * sizeof *got);
                tier_k[t].quantize_q8a(x, got, n);
                for (int64_t b = 0; b < n / 32; b++)
                    if (memcmp(&got[b], &ref[b], sizeof ref[b]) != 0)
                        fail_msg("%s: block %d differs from scalar (d %.9g vs %.9g)",
                                 ar_cpu_tier_name((ar_cpu_tier)t), (int)b, (double)got[b].d,
                                 (double)ref[b].d);
            }
        }
    }
    free(got);
    free(ref);
    free(x);
}

/* --- 2. Scalar dot products against double precision ------------------------------------ */

static void test_scalar_dot_vs_double(void **state) {
    (void)state;
    load_tiers();
    const ar_kernels *k = &tier_k[AR_CPU_SCALAR];
    double worst = 0;
    for (size_t ti = 0; ti < N_Q32; ti++) {
        const ar_type t = q32_types[ti];
        assert_int_equal(k->act[t], AR_ACT_Q8A);
        assert_non_null(k->vec_dot[t]);
        for (size_t si = 0; si < N_SIZES; si++) {
            const int64_t n = sizes[si];
            uint8_t *w = xmalloc(row_bytes(t, n));
            float *x = xmalloc((size_t)n * sizeof(float));
            ar_block_q8a *xq = xmalloc((size_t)(n / 32) * sizeof *xq);
            for (int rep = 0; rep < 20; rep++) {
                random_blocks(t, n, w);
                random_acts(x, n, rep % 4 == 0 ? 1e-3 : rep % 4 == 1 ? 1 : rep % 4 == 2 ? 50 : 3e4);
                k->quantize_q8a(x, xq, n);
                double deq, scale;
                ref_dot_q8a(t, n, w, xq, &deq, &scale);
                const double got = k->vec_dot[t](n, w, xq);
                const double err = fabs(got - deq);
                if (scale > 0 && err / scale > worst) worst = err / scale;
                if (err > 1e-6 * scale)
                    fail_msg("%s n=%d: scalar %.9g, double %.17g (error %.3g of T %.3g)",
                             traits(t)->name, (int)n, got, deq, err / scale, scale);
            }
            free(xq);
            free(x);
            free(w);
        }
    }
    /* Measured: about 1e-7 of T at n = 8960 (float32 sums of up to 280 block terms). */
    printf("scalar vec_dot vs double: largest error %.2g of T\n", worst);
}

/* --- 3. SIMD tiers against the scalar tier ----------------------------------------------- */

static void test_tiers_vs_scalar(void **state) {
    (void)state;
    load_tiers();
    const ar_kernels *ks = &tier_k[AR_CPU_SCALAR];
    static const double scales[] = {1e-3, 1, 50, 3e4};
    for (int tier = AR_CPU_AVX2; tier <= AR_CPU_AVX512; tier++) {
        const char *tn = ar_cpu_tier_name((ar_cpu_tier)tier);
        if (!have_tier[tier]) {
            printf("tier %s: not supported by this CPU, skipped\n", tn);
            continue;
        }
        const ar_kernels *k = &tier_k[tier];
        double worst = 0;
        for (size_t ti = 0; ti < N_Q32; ti++) {
            const ar_type t = q32_types[ti];
            assert_int_equal(k->act[t], AR_ACT_Q8A);
            for (size_t si = 0; si < N_SIZES; si++) {
                const int64_t n = sizes[si];
                const size_t bytes = row_bytes(t, n);
                uint8_t *w = xmalloc(bytes);
                uint8_t *odd = xmalloc(bytes + 1); /* the same row at an odd address */
                float *x = xmalloc((size_t)n * sizeof(float));
                ar_block_q8a *xq = xmalloc((size_t)(n / 32) * sizeof *xq);
                for (int rep = 0; rep < 24; rep++) {
                    random_blocks(t, n, w);
                    memcpy(odd + 1, w, bytes);
                    random_acts(x, n, scales[rep % 4]);
                    ks->quantize_q8a(x, xq, n);
                    double deq, scale;
                    ref_dot_q8a(t, n, w, xq, &deq, &scale);
                    const float want = ks->vec_dot[t](n, w, xq);
                    const float got = k->vec_dot[t](n, w, xq);
                    const float got_odd = k->vec_dot[t](n, odd + 1, xq);
                    const double err = fabs((double)got - want);
                    if (scale > 0 && err / scale > worst) worst = err / scale;
                    if (!(err <= 1e-5 * scale))
                        fail_msg("%s %s n=%d: %.9g, scalar %.9g (error %.3g of T %.3g)", tn,
                                 traits(t)->name, (int)n, (double)got, (double)want, err / scale,
                                 scale);
                    if (memcmp(&got, &got_odd, sizeof got) != 0)
                        fail_msg("%s %s n=%d: %.9g at an odd address, %.9g aligned", tn,
                                 traits(t)->name, (int)n, (double)got_odd, (double)got);
                }
                free(xq);
                free(x);
                free(odd);
                free(w);
            }
        }
        /* Measured: at most ~2e-7 of T (reassociated float sums only). */
        printf("tier %s vs scalar: largest difference %.2g of T\n", tn, worst);
    }
}

/* vec_dot_n: one weight row (at an odd address) with nr = 1..4 activation rows (a stride
 * that is not a multiple of 64 bytes, different data in each row, now and then a row with
 * inf or NaN): every ys[r] bit-identical to vec_dot on row r alone, nothing written past
 * ys[nr - 1]. The scalar tier leaves vec_dot_n NULL (callers loop vec_dot); every SIMD
 * tier fills it for every q32 type. */
static void test_vec_dot_n(void **state) {
    (void)state;
    load_tiers();
    for (size_t ti = 0; ti < N_Q32; ti++)
        assert_null(tier_k[AR_CPU_SCALAR].vec_dot_n[q32_types[ti]]);
    static const double scales[] = {1e-3, 1, 50, 3e4};
    static const int64_t nn[] = {32, 64, 96, 160, 1536, 8960};
    for (int tier = AR_CPU_AVX2; tier <= AR_CPU_AVX512; tier++) {
        const char *tn = ar_cpu_tier_name((ar_cpu_tier)tier);
        if (!have_tier[tier]) {
            printf("tier %s: not supported by this CPU, skipped\n", tn);
            continue;
        }
        const ar_kernels *k = &tier_k[tier];
        int checked = 0;
        for (size_t ti = 0; ti < N_Q32; ti++) {
            const ar_type t = q32_types[ti];
            assert_non_null(k->vec_dot_n[t]);
            for (size_t si = 0; si < sizeof nn / sizeof nn[0]; si++) {
                const int64_t n = nn[si], nb = n / 32;
                const size_t bytes = row_bytes(t, n);
                /* 40 * nb + 12 is never a multiple of 64 (nor of 8) */
                const size_t stride = (size_t)nb * sizeof(ar_block_q8a) + 12;
                uint8_t *odd = xmalloc(bytes + 1);
                uint8_t *w = odd + 1;
                float *x = xmalloc((size_t)n * sizeof(float));
                uint8_t *xq = xmalloc(AR_MAX_NR * stride);
                for (int rep = 0; rep < 6; rep++) {
                    random_blocks(t, n, w);
                    memset(xq, 0xa5, AR_MAX_NR * stride);
                    for (int r = 0; r < AR_MAX_NR; r++) {
                        random_acts(x, n, scales[(rep + r) % 4]);
                        if (rep >= 4 && r == rep - 3) x[n / 2] = rep == 4 ? INFINITY : NAN;
                        k->quantize_q8a(x, xq + (size_t)r * stride, n);
                    }
                    float want[AR_MAX_NR];
                    for (int r = 0; r < AR_MAX_NR; r++)
                        want[r] = k->vec_dot[t](n, w, xq + (size_t)r * stride);
                    for (int nr = 1; nr <= AR_MAX_NR; nr++) {
                        float ys[AR_MAX_NR + 1];
                        for (int r = 0; r <= AR_MAX_NR; r++) ys[r] = -1234.5f;
                        k->vec_dot_n[t](n, w, xq, stride, nr, ys);
                        for (int r = 0; r < nr; r++)
                            if (memcmp(&ys[r], &want[r], sizeof(float)) != 0)
                                fail_msg("%s %s n=%d nr=%d row %d: %.9g, vec_dot %.9g", tn,
                                         traits(t)->name, (int)n, nr, r, (double)ys[r],
                                         (double)want[r]);
                        for (int r = nr; r <= AR_MAX_NR; r++)
                            if (ys[r] != -1234.5f)
                                fail_msg("%s %s n=%d nr=%d: wrote ys[%d]", tn, traits(t)->name,
                                         (int)n, nr, r);
                        checked++;
                    }
                    if (rep >= 4) assert_true(isnan(want[rep - 3]));
                }
                free(xq);
                free(x);
                free(odd);
            }
        }
        printf("tier %s: vec_dot_n bit-identical to vec_dot in %d cases\n", tn, checked);
    }
}

/* Extreme but valid weights: all quants at their largest and smallest values with the
 * largest activations; zero and non-finite activations. */
static void test_dot_edges(void **state) {
    (void)state;
    load_tiers();
    const int64_t n = 96;
    float x[96];
    ar_block_q8a xq[3];
    for (size_t ti = 0; ti < N_Q32; ti++) {
        const ar_type t = q32_types[ti];
        const size_t bytes = row_bytes(t, n);
        uint8_t *w = xmalloc(bytes);
        for (int fill = 0; fill < 2; fill++) {
            random_blocks(t, n, w);
            for (size_t o = 0; o < bytes; o += (size_t)traits(t)->type_size) {
                const int qs_at = t == AR_TYPE_Q4_0 || t == AR_TYPE_Q8_0 ? 2
                                  : t == AR_TYPE_Q4_1                    ? 4
                                  : t == AR_TYPE_Q5_0                    ? 6
                                                                         : 8;
                memset(w + o + qs_at, fill ? 0xff : 0x00, (size_t)traits(t)->type_size - qs_at);
                if (t == AR_TYPE_Q5_0 || t == AR_TYPE_Q5_1)
                    memset(w + o + (t == AR_TYPE_Q5_0 ? 2 : 4), fill ? 0xff : 0x00, 4);
                if (t == AR_TYPE_Q8_0 && !fill) memset(w + o + 2, 0x80, 32); /* -128 */
            }
            for (int i = 0; i < n; i++) x[i] = (i & 1 ? 1.0f : -1.0f) * (float)(1 + i % 3);
            for (int i = 0; i < n; i += 3) x[i] = -3.0f; /* many at -127 */
            tier_k[AR_CPU_SCALAR].quantize_q8a(x, xq, n);
            double deq, scale;
            ref_dot_q8a(t, n, w, xq, &deq, &scale);
            for (int tier = 0; tier < 3; tier++) {
                if (!have_tier[tier]) continue;
                const double got = tier_k[tier].vec_dot[t](n, w, xq);
                if (!(fabs(got - deq) <= 1e-5 * scale))
                    fail_msg("%s %s fill %d: %.9g, double %.17g", ar_cpu_tier_name(tier),
                             traits(t)->name, fill, got, deq);
            }
        }
        /* zero activations give exactly 0; inf or NaN give NaN */
        for (int i = 0; i < n; i++) x[i] = 0.0f;
        tier_k[AR_CPU_SCALAR].quantize_q8a(x, xq, n);
        for (int tier = 0; tier < 3; tier++)
            if (have_tier[tier]) assert_true(tier_k[tier].vec_dot[t](n, w, xq) == 0.0f);
        for (int special = 0; special < 2; special++) {
            x[40] = special ? NAN : INFINITY;
            tier_k[AR_CPU_SCALAR].quantize_q8a(x, xq, n);
            for (int tier = 0; tier < 3; tier++)
                if (have_tier[tier]) assert_true(isnan(tier_k[tier].vec_dot[t](n, w, xq)));
        }
        free(w);
    }
}

/* --- 4. The error of the int8 path ------------------------------------------------------- */

/* Against sum to_float(w)[i] * x[i] in double with the original float activations: the
 * error is the rounding of activations to 8 bits (a step of amax / 127 per block), so it
 * depends on the data, not on the weight type. Measured here (n = 1536 and 8960, 100 rows
 * per type; "rel" is error / sum |w[i] x[i]|, "l2" is error / (|w|_2 |x|_2)):
 *     Gaussian activations:                rel max ~8e-4, rms ~2e-4;  l2 max ~5e-4
 *     with 1 in 200 values 30x larger:     rel max ~3e-3, rms ~8e-4;  l2 max ~9e-4
 * Outliers cost precision because they raise amax, and with it the step, of their block.
 * The bounds below leave room over these numbers; a kernel bug gives errors of order 1. */
static void test_int8_path_error(void **state) {
    (void)state;
    load_tiers();
    const ar_kernels *k = &tier_k[AR_CPU_SCALAR];
    for (int outliers = 0; outliers < 2; outliers++) {
        for (size_t ti = 0; ti < N_Q32; ti++) {
            const ar_type t = q32_types[ti];
            double worst_rel = 0, worst_l2 = 0, sum_sq = 0;
            int count = 0;
            for (size_t si = 3; si < N_SIZES; si++) {
                const int64_t n = sizes[si];
                uint8_t *w = xmalloc(row_bytes(t, n));
                float *wf = xmalloc((size_t)n * sizeof(float));
                float *x = xmalloc((size_t)n * sizeof(float));
                ar_block_q8a *xq = xmalloc((size_t)(n / 32) * sizeof *xq);
                for (int rep = 0; rep < 50; rep++) {
                    random_blocks(t, n, w);
                    traits(t)->to_float(w, wf, n);
                    random_acts_dist(x, n, 1.0, outliers);
                    k->quantize_q8a(x, xq, n);
                    double exact = 0, abs_sum = 0, ww = 0, xx = 0;
                    for (int64_t i = 0; i < n; i++) {
                        exact += (double)wf[i] * x[i];
                        abs_sum += fabs((double)wf[i] * x[i]);
                        ww += (double)wf[i] * wf[i];
                        xx += (double)x[i] * x[i];
                    }
                    const double err = fabs(k->vec_dot[t](n, w, xq) - exact);
                    const double rel = err / abs_sum, l2 = err / sqrt(ww * xx);
                    if (rel > worst_rel) worst_rel = rel;
                    if (l2 > worst_l2) worst_l2 = l2;
                    sum_sq += rel * rel;
                    count++;
                }
                free(xq);
                free(x);
                free(wf);
                free(w);
            }
            printf("%s int8 path%s: rel max %.2g rms %.2g; l2 max %.2g\n", traits(t)->name,
                   outliers ? " (outliers)" : "", worst_rel, sqrt(sum_sq / count), worst_l2);
            assert_true(worst_rel < 1e-2);
            assert_true(worst_l2 < 4e-3);
        }
    }
}

/* --- Micro-benchmark (AR_BENCH_Q32=1) ---------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ns per dot of one row kept in cache, and of the rows of a matrix of ~256 MiB streamed
 * from memory (a matrix-vector product), with the weight bytes read per second. */
static void bench(void) {
    static const int64_t bn[] = {1536, 8960};
    volatile float sink = 0;
    for (size_t si = 0; si < 2; si++) {
        const int64_t n = bn[si];
        float *x = xmalloc((size_t)n * sizeof(float));
        ar_block_q8a *xq = xmalloc((size_t)(n / 32) * sizeof *xq);
        random_acts(x, n, 1.0);
        for (size_t ti = 0; ti < N_Q32; ti++) {
            const ar_type t = q32_types[ti];
            const size_t rb = row_bytes(t, n);
            const int64_t rows = (int64_t)((256u << 20) / rb);
            uint8_t *w = xmalloc(rb * (size_t)rows);
            for (int64_t r = 0; r < rows; r++) random_blocks(t, n, w + (size_t)r * rb);
            for (int tier = 0; tier < 3; tier++) {
                if (!have_tier[tier]) continue;
                const ar_kernels *k = &tier_k[tier];
                k->quantize_q8a(x, xq, n);
                /* hot: one row, repeated */
                int64_t reps = tier ? 200000 * 1536 / n : 20000 * 1536 / n;
                double t0 = now_s();
                for (int64_t r = 0; r < reps; r++) sink += k->vec_dot[t](n, w, xq);
                const double hot = (now_s() - t0) / (double)reps;
                /* streaming: every row once, best of 3 */
                double cold = 1e30;
                const int64_t srows = tier ? rows : rows / 8;
                for (int it = 0; it < 3; it++) {
                    t0 = now_s();
                    for (int64_t r = 0; r < srows; r++)
                        sink += k->vec_dot[t](n, w + (size_t)r * rb, xq);
                    const double dt = (now_s() - t0) / (double)srows;
                    if (dt < cold) cold = dt;
                }
                printf("bench %-6s %-4s n=%-5d  hot %8.1f ns %6.1f GB/s   stream %8.1f ns %6.1f "
                       "GB/s\n",
                       ar_cpu_tier_name(tier), traits(t)->name, (int)n, hot * 1e9,
                       (double)rb / hot * 1e-9, cold * 1e9, (double)rb / cold * 1e-9);
            }
            free(w);
        }
        /* the quantizer, once per activation row */
        for (int tier = 0; tier < 3; tier++) {
            if (!have_tier[tier]) continue;
            const int64_t reps = 20000;
            const double t0 = now_s();
            for (int64_t r = 0; r < reps; r++) tier_k[tier].quantize_q8a(x, xq, n);
            sink += xq[0].d;
            printf("bench %-6s quantize_q8a n=%-5d %8.1f ns\n", ar_cpu_tier_name(tier), (int)n,
                   (now_s() - t0) / (double)reps * 1e9);
        }
        free(xq);
        free(x);
    }
    (void)sink;
}

/* vec_dot_n against vec_dot: ns per weight row times nr activation rows (nr = 2: one token
 * in the accurate precision; 4: the engine's most), one vec_dot_n call against nr vec_dot
 * calls, best of 9, with one weight row kept in cache ("hot") and with the rows of a ~64 MiB
 * matrix streamed from memory ("stream"); the activation rows stay in L1 in both. */
static void bench_multi(void) {
    static const int64_t bn[] = {1536, 8960};
    volatile float sink = 0;
    for (size_t si = 0; si < 2; si++) {
        const int64_t n = bn[si];
        const size_t stride = (size_t)(n / 32) * sizeof(ar_block_q8a) + 12;
        float *x = xmalloc((size_t)n * sizeof(float));
        uint8_t *xq = xmalloc(AR_MAX_NR * stride);
        for (size_t ti = 0; ti < N_Q32; ti++) {
            const ar_type t = q32_types[ti];
            const size_t rb = row_bytes(t, n);
            const int64_t rows = (int64_t)((64u << 20) / rb);
            uint8_t *w = xmalloc(rb * (size_t)rows);
            for (int64_t r = 0; r < rows; r++) random_blocks(t, n, w + (size_t)r * rb);
            for (int tier = AR_CPU_AVX2; tier <= AR_CPU_AVX512; tier++) {
                if (!have_tier[tier]) continue;
                const ar_kernels *k = &tier_k[tier];
                for (int r = 0; r < AR_MAX_NR; r++) {
                    random_acts(x, n, 1.0);
                    k->quantize_q8a(x, xq + (size_t)r * stride, n);
                }
                for (int nr = 2; nr <= AR_MAX_NR; nr += 2) {
                    double best[2][2] = {{1e30, 1e30}, {1e30, 1e30}}; /* [multi][stream] */
                    const int64_t reps = 20000 * 1536 / n;
                    float ys[AR_MAX_NR];
                    for (int it = 0; it < 9; it++) {
                        for (int multi = 0; multi < 2; multi++) {
                            double t0 = now_s();
                            for (int64_t i = 0; i < reps; i++) {
                                if (multi)
                                    k->vec_dot_n[t](n, w, xq, stride, nr, ys);
                                else
                                    for (int r = 0; r < nr; r++)
                                        ys[r] = k->vec_dot[t](n, w, xq + (size_t)r * stride);
                                sink += ys[0];
                            }
                            double dt = (now_s() - t0) / (double)reps;
                            if (dt < best[multi][0]) best[multi][0] = dt;
                            t0 = now_s();
                            for (int64_t i = 0; i < rows; i++) {
                                const uint8_t *wr = w + (size_t)i * rb;
                                if (multi)
                                    k->vec_dot_n[t](n, wr, xq, stride, nr, ys);
                                else
                                    for (int r = 0; r < nr; r++)
                                        ys[r] = k->vec_dot[t](n, wr, xq + (size_t)r * stride);
                                sink += ys[0];
                            }
                            dt = (now_s() - t0) / (double)rows;
                            if (dt < best[multi][1]) best[multi][1] = dt;
                        }
                    }
                    printf("bench %-6s %-4s n=%-5d nr=%d  hot %7.1f ns (%d calls %7.1f, x%.2f)"
                           "   stream %7.1f ns (%d calls %7.1f, x%.2f)\n",
                           ar_cpu_tier_name(tier), traits(t)->name, (int)n, nr, best[1][0] * 1e9,
                           nr, best[0][0] * 1e9, best[0][0] / best[1][0], best[1][1] * 1e9, nr,
                           best[0][1] * 1e9, best[0][1] / best[1][1]);
                }
            }
            free(w);
        }
        free(xq);
        free(x);
    }
    (void)sink;
}

static void test_bench(void **state) {
    (void)state;
    const char *env = getenv("AR_BENCH_Q32");
    if (!env || !*env || strcmp(env, "0") == 0) skip();
    load_tiers();
    if (strcmp(env, "multi") != 0) bench();
    bench_multi();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_known),
        cmocka_unit_test(test_quantize_nonfinite),
        cmocka_unit_test(test_quantize_tiers_identical),
        cmocka_unit_test(test_scalar_dot_vs_double),
        cmocka_unit_test(test_tiers_vs_scalar),
        cmocka_unit_test(test_vec_dot_n),
        cmocka_unit_test(test_dot_edges),
        cmocka_unit_test(test_int8_path_error),
        cmocka_unit_test(test_bench),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
