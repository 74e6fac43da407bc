/*
 * test_kernels_float.c - the float vector kernels of every CPU tier (src/kernels/float_*.c).
 *
 * Two layers. The scalar tier is checked against computations in double written from the
 * contracts in kernels.h and float_scalar.c, with error bounds derived from the float
 * operations each kernel does. Each SIMD tier (AVX2, AVX-512; skipped when the CPU lacks
 * it) is then checked against the scalar tier on the same inputs: conversions and axpy bit
 * for bit, the others within these tolerances:
 *
 *   dot_f32       |simd - ref| <= 1e-6 * sum|a*b|   (signed random data)
 *   rmsnorm_f32   |simd - ref| <= 1e-6 * |ref|
 *   silu_mul_f32  |simd - ref| <= 1e-6 * |ref| + 1e-30
 *   softmax_f32   |simd - ref| <= 1e-6 * |ref| + 1e-37 per element; the sum within 1e-6
 *
 * Lengths 0, 1, 7, 16, 31, 64, 100, 1536, 8960 (tails of every width, the model's hidden
 * and FFN sizes), data of magnitudes 1e-3 to 1e3, pointers one element (or, for byte
 * rows, one byte) off alignment, and guard values after each output to catch writes past n.
 *
 * The multi-row dot_f32_n (1..4 activation rows) must give each row the bits dot_f32 gives
 * it alone; the scalar tier leaves it NULL.
 *
 * The grouped attention kernels (attn_scores, attn_values): the scalar tier against double
 * (scores within dot_f32's bound times the scale; values within n * 2^-23 * sum|p*v|), the
 * AVX-512 tier's scores within 1e-6 * sum|q*k| * scale of the scalar ones and its values bit
 * for bit; head dims 64, 128 and 72 (a tail), 1..8 heads, positions given out of order and
 * repeated, no write outside the outputs. The AVX2 tier has none (the engine then goes head
 * by head). AR_BENCH_FLOAT=1 in the environment also times
 * dot_f32_n against as many dot_f32 calls (nothing is checked).
 */
#include "testutil.h"

#include "archrouter.h"
#include "kernels/fp16.h"
#include "kernels/kernels.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- Helpers ---------------------------------------------------------------------------- */

static const int64_t sizes[] = {0, 1, 7, 16, 31, 64, 100, 1536, 8960};
#define N_SIZES (sizeof sizes / sizeof sizes[0])
#define MAX_N   8960
#define GUARD   16 /* floats after each output that must stay untouched */

static const double mags[] = {1e-3, 1.0, 1e3};
#define N_MAGS (sizeof mags / sizeof mags[0])

static const float GUARD_VALUE = -12345.678f;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd64(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

/* Uniform in [-mag, mag). */
static float frand(double mag) {
    return (float)(mag * ((double)(rnd64() >> 11) * 0x1p-52 - 1.0));
}

static void fill(float *x, int64_t n, double mag) {
    for (int64_t i = 0; i < n; i++) x[i] = frand(mag);
}

/* A float buffer of n + GUARD elements, one float past a 64-byte boundary (misaligned for
 * every vector width); the guard is set. Free with free_buf. */
static float *new_buf(int64_t n) {
    /* aligned_alloc wants a size that is a multiple of the alignment */
    float *base = aligned_alloc(64, ((size_t)(n + GUARD + 16) * sizeof(float) + 63) & ~(size_t)63);
    assert_non_null(base);
    float *p = base + 1;
    for (int64_t i = 0; i < n + GUARD; i++) p[i] = GUARD_VALUE;
    return p;
}

static void free_buf(float *p) {
    free(p - 1);
}

/* Sets the guard after p[0..n) before a kernel writes p. */
static void set_guard(float *p, int64_t n) {
    for (int64_t i = n; i < n + GUARD; i++) p[i] = GUARD_VALUE;
}

static void check_guard(const float *p, int64_t n, const char *what) {
    for (int64_t i = n; i < n + GUARD; i++)
        if (p[i] != GUARD_VALUE)
            fail_msg("%s: wrote past n = %lld (index %lld)", what, (long long)n, (long long)i);
}

static uint32_t bits(float f) {
    return ar_f32_to_bits(f);
}

/* The SIMD tiers this CPU runs, filled into k[]; returns how many (0..2). */
static int simd_tiers(ar_kernels k[2]) {
    int n = 0;
    const ar_cpu_tier tiers[] = {AR_CPU_AVX2, AR_CPU_AVX512};
    for (int i = 0; i < 2; i++) {
        ar_status st = ar_kernels_get(tiers[i], &k[n]);
        if (st == AR_ERR_UNSUPPORTED) {
            printf("# tier %s not supported by this CPU: skipped\n", ar_cpu_tier_name(tiers[i]));
            continue;
        }
        assert_int_equal(st, AR_OK);
        n++;
    }
    return n;
}

static void scalar_kernels(ar_kernels *k) {
    assert_int_equal(ar_kernels_get(AR_CPU_SCALAR, k), AR_OK);
    assert_non_null(k->dot_f32);
    assert_non_null(k->axpy_f32);
    assert_non_null(k->rmsnorm_f32);
    assert_non_null(k->silu_mul_f32);
    assert_non_null(k->softmax_f32);
    assert_non_null(k->f32_to_f16);
    assert_non_null(k->f16_to_f32);
}

/* Signed random data with some exact zeros, -inf entries and large values for softmax. */
static void fill_scores(float *x, int64_t n, double mag) {
    fill(x, n, mag);
    for (int64_t i = 0; i < n; i++) {
        const uint64_t r = rnd64() % 16;
        if (r == 0) x[i] = -INFINITY;
        if (r == 1) x[i] = (float)(mag * 30.0);
    }
}

/* --- Scalar tier against double --------------------------------------------------------- */

static void test_scalar_dot(void **state) {
    (void)state;
    ar_kernels k;
    scalar_kernels(&k);
    float *a = new_buf(MAX_N), *b = new_buf(MAX_N);
    for (size_t s = 0; s < N_SIZES; s++) {
        for (size_t m = 0; m < N_MAGS; m++) {
            const int64_t n = sizes[s];
            fill(a, n, mags[m]);
            fill(b, n, 1.0);
            double exact = 0, mass = 0;
            for (int64_t i = 0; i < n; i++) {
                exact += (double)a[i] * b[i];
                mass += fabs((double)a[i] * b[i]);
            }
            const double got = k.dot_f32(n, a, b);
            /* n roundings of the products and the running sum, each <= 2^-24 relative. */
            const double bound = (double)(n + 1) * 0x1p-24 * mass;
            if (fabs(got - exact) > bound)
                fail_msg("dot n=%lld: %.9g vs %.17g (bound %.3g)", (long long)n, got, exact, bound);
        }
    }
    /* Exact cases. */
    a[0] = 3;
    b[0] = 4;
    a[1] = -0.5f;
    b[1] = 2;
    assert_true(k.dot_f32(2, a, b) == 11.0f);
    assert_true(k.dot_f32(0, a, b) == 0.0f);
    free_buf(a);
    free_buf(b);
}

static void test_scalar_axpy(void **state) {
    (void)state;
    ar_kernels k;
    scalar_kernels(&k);
    float *x = new_buf(MAX_N), *y = new_buf(MAX_N), *y0 = new_buf(MAX_N);
    for (size_t s = 0; s < N_SIZES; s++) {
        const int64_t n = sizes[s];
        for (size_t m = 0; m < N_MAGS; m++) {
            fill(x, n, mags[m]);
            fill(y0, n, 1.0);
            memcpy(y, y0, (size_t)n * sizeof(float));
            const float a = frand(2.0);
            set_guard(y, n);
            k.axpy_f32(n, a, x, y);
            check_guard(y, n, "axpy");
            for (int64_t i = 0; i < n; i++) {
                const double exact = (double)y0[i] + (double)a * x[i];
                const double bound = 0x1p-23 * (fabs((double)y0[i]) + fabs((double)a * x[i]));
                if (fabs((double)y[i] - exact) > bound)
                    fail_msg("axpy n=%lld i=%lld: %.9g vs %.17g", (long long)n, (long long)i,
                             (double)y[i], exact);
            }
        }
    }
    free_buf(x);
    free_buf(y);
    free_buf(y0);
}

/* y = x * s * w in double, s = 1 / sqrt(mean(x^2) + eps). */
static void rmsnorm_double(int64_t n, const float *x, const float *w, float eps, double *y) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)x[i] * x[i];
    const double s = 1.0 / sqrt(sum / (double)n + eps);
    for (int64_t i = 0; i < n; i++) y[i] = (double)x[i] * s * w[i];
}

static void test_scalar_rmsnorm(void **state) {
    (void)state;
    ar_kernels k;
    scalar_kernels(&k);
    float *x = new_buf(MAX_N), *w = new_buf(MAX_N), *y = new_buf(MAX_N);
    double *ref = malloc(MAX_N * sizeof(double));
    assert_non_null(ref);
    const float eps = 1e-6f;
    for (size_t s = 0; s < N_SIZES; s++) {
        const int64_t n = sizes[s];
        for (size_t m = 0; m < N_MAGS; m++) {
            fill(x, n, mags[m]);
            fill(w, n, 2.0);
            set_guard(y, n);
            k.rmsnorm_f32(n, x, w, eps, y);
            check_guard(y, n, "rmsnorm");
            rmsnorm_double(n, x, w, eps, ref);
            for (int64_t i = 0; i < n; i++)
                if (fabs(y[i] - ref[i]) > 1e-6 * fabs(ref[i]))
                    fail_msg("rmsnorm n=%lld i=%lld: %.9g vs %.17g", (long long)n, (long long)i,
                             (double)y[i], ref[i]);
        }
    }
    /* In place. */
    fill(x, 100, 1.0);
    fill(w, 100, 1.0);
    rmsnorm_double(100, x, w, eps, ref);
    k.rmsnorm_f32(100, x, w, eps, x);
    for (int i = 0; i < 100; i++) assert_true(fabs(x[i] - ref[i]) <= 1e-6 * fabs(ref[i]));
    /* All-zero input: zeros, no NaN. */
    for (int i = 0; i < 1536; i++) x[i] = 0.0f;
    k.rmsnorm_f32(1536, x, w, eps, y);
    for (int i = 0; i < 1536; i++) assert_true(y[i] == 0.0f);
    free(ref);
    free_buf(x);
    free_buf(w);
    free_buf(y);
}

static void test_scalar_silu_mul(void **state) {
    (void)state;
    ar_kernels k;
    scalar_kernels(&k);
    float *g = new_buf(MAX_N), *u = new_buf(MAX_N), *y = new_buf(MAX_N);
    const double gmags[] = {1e-3, 1.0, 10.0, 100.0};
    for (size_t s = 0; s < N_SIZES; s++) {
        const int64_t n = sizes[s];
        for (size_t m = 0; m < 4; m++) {
            fill(g, n, gmags[m]);
            fill(u, n, mags[m % N_MAGS]);
            set_guard(y, n);
            k.silu_mul_f32(n, g, u, y);
            check_guard(y, n, "silu_mul");
            for (int64_t i = 0; i < n; i++) {
                const double ref = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
                if (fabs(y[i] - ref) > 1e-6 * fabs(ref) + 1e-30)
                    fail_msg("silu_mul g=%.9g u=%.9g: %.9g vs %.17g", (double)g[i], (double)u[i],
                             (double)y[i], ref);
            }
        }
    }
    /* Saturation: exp(-g) overflows to inf for g < -88.7 and the result is -0. */
    g[0] = -100.0f;
    g[1] = 100.0f;
    g[2] = 0.0f;
    u[0] = u[1] = u[2] = 1.0f;
    k.silu_mul_f32(3, g, u, y);
    assert_true(y[0] == 0.0f && signbit(y[0]));
    assert_true(y[1] == 100.0f);
    assert_true(y[2] == 0.0f);
    free_buf(g);
    free_buf(u);
    free_buf(y);
}

static void test_scalar_softmax(void **state) {
    (void)state;
    ar_kernels k;
    scalar_kernels(&k);
    float *x = new_buf(MAX_N), *x0 = new_buf(MAX_N);
    double *ref = malloc(MAX_N * sizeof(double));
    assert_non_null(ref);
    const double smags[] = {1e-3, 1.0, 10.0, 100.0};
    for (size_t s = 1; s < N_SIZES; s++) {
        const int64_t n = sizes[s];
        for (size_t m = 0; m < 4; m++) {
            fill_scores(x0, n, smags[m]);
            x0[rnd64() % (uint64_t)n] = 0.5f; /* at least one finite entry */
            memcpy(x, x0, (size_t)n * sizeof(float));
            set_guard(x, n);
            const float got_sum = k.softmax_f32(n, x);
            check_guard(x, n, "softmax");
            /* exp(x - max) in double of the float difference (the kernel's contract). */
            float max = -INFINITY;
            for (int64_t i = 0; i < n; i++) max = x0[i] > max ? x0[i] : max;
            double sum = 0;
            for (int64_t i = 0; i < n; i++) sum += ref[i] = exp((double)(x0[i] - max));
            if (fabs(got_sum - sum) > 1e-6 * sum)
                fail_msg("softmax sum %.9g vs %.17g", (double)got_sum, sum);
            double total = 0;
            for (int64_t i = 0; i < n; i++) {
                const double r = ref[i] / sum;
                if (fabs(x[i] - r) > 1e-6 * r + 1e-37)
                    fail_msg("softmax n=%lld i=%lld (x=%.9g): %.9g vs %.17g", (long long)n,
                             (long long)i, (double)x0[i], (double)x[i], r);
                if (x0[i] == -INFINITY) assert_true(x[i] == 0.0f);
                total += x[i];
            }
            assert_true(fabs(total - 1.0) < 1e-5);
        }
    }
    /* Large values: only the largest survive. */
    x[0] = 1e30f;
    x[1] = -1e30f;
    x[2] = 1e30f;
    x[3] = FLT_MAX;
    assert_true(k.softmax_f32(4, x) == 1.0f);
    assert_true(x[0] == 0.0f && x[1] == 0.0f && x[2] == 0.0f && x[3] == 1.0f);
    /* Every entry -inf, or none: zeros and 0. */
    for (int i = 0; i < 5; i++) x[i] = -INFINITY;
    assert_true(k.softmax_f32(5, x) == 0.0f);
    for (int i = 0; i < 5; i++) assert_true(x[i] == 0.0f);
    assert_true(k.softmax_f32(0, x) == 0.0f);
    /* NaN anywhere: a NaN row. */
    x[0] = -INFINITY;
    x[1] = NAN;
    x[2] = -INFINITY;
    assert_true(isnan(k.softmax_f32(3, x)));
    for (int i = 0; i < 3; i++) assert_true(isnan(x[i]));
    free(ref);
    free_buf(x);
    free_buf(x0);
}

/* The value of a half from its fields, in double (independent of fp16.h). */
static double half_value(uint16_t h) {
    const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    const double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

static void test_scalar_f16_to_f32(void **state) {
    (void)state;
    ar_kernels k;
    scalar_kernels(&k);
    uint16_t *h = malloc(65536 * sizeof(uint16_t));
    float *y = malloc(65536 * sizeof(float));
    assert_non_null(h);
    assert_non_null(y);
    for (uint32_t i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    k.f16_to_f32(65536, h, y);
    for (uint32_t i = 0; i < 65536; i++) {
        const uint32_t sign = (i & 0x8000u) << 16, m = i & 0x3ff;
        if (((i >> 10) & 0x1f) == 0x1f) { /* inf, or NaN made quiet with its payload */
            const uint32_t want = sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0);
            if (bits(y[i]) != want) fail_msg("half %04x: %08x, want %08x", i, bits(y[i]), want);
        } else if ((double)y[i] != half_value((uint16_t)i) || (bits(y[i]) & 0x80000000u) != sign) {
            fail_msg("half %04x: %.9g, want %.17g", i, (double)y[i], half_value((uint16_t)i));
        }
    }
    free(h);
    free(y);
}

/* Converts one float with the table's f32_to_f16. */
static uint16_t to_half(const ar_kernels *k, float f) {
    uint16_t h;
    k->f32_to_f16(1, &f, &h);
    return h;
}

static void test_scalar_f32_to_f16(void **state) {
    (void)state;
    ar_kernels k;
    scalar_kernels(&k);
    /* Every finite half converts back to itself; the midpoint between two neighbours rounds
     * to the even one, and the floats next to it to the nearer one. */
    for (uint32_t h = 0; h < 0x7c00; h++) {
        for (uint32_t s = 0; s <= 0x8000; s += 0x8000) {
            const float v = (float)half_value((uint16_t)(h | s));
            assert_int_equal(to_half(&k, v), h | s);
            const double next =
                h + 1 < 0x7c00 ? half_value((uint16_t)((h + 1) | s)) : (s ? -65536.0 : 65536.0);
            const float mid = (float)((half_value((uint16_t)(h | s)) + next) / 2);
            assert_true((double)mid * 2 == half_value((uint16_t)(h | s)) + next); /* exact */
            const uint32_t even = (h & 1) ? h + 1 : h;
            assert_int_equal(to_half(&k, mid), even | s);
            assert_int_equal(to_half(&k, nextafterf(mid, 0.0f)), h | s);
            assert_int_equal(to_half(&k, nextafterf(mid, s ? -INFINITY : INFINITY)), (h + 1) | s);
        }
    }
    assert_int_equal(to_half(&k, 65520.0f), 0x7c00); /* the midpoint to 2^16 rounds to inf */
    assert_int_equal(to_half(&k, nextafterf(65520.0f, 0)), 0x7bff);
    assert_int_equal(to_half(&k, FLT_MAX), 0x7c00);
    assert_int_equal(to_half(&k, -INFINITY), 0xfc00);
    assert_int_equal(to_half(&k, INFINITY), 0x7c00);
    assert_int_equal(to_half(&k, 0x1p-25f), 0x0000); /* half the smallest subnormal: even */
    assert_int_equal(to_half(&k, nextafterf(0x1p-25f, 1)), 0x0001);
    assert_int_equal(to_half(&k, -0x1p-149f), 0x8000); /* float subnormals vanish */
    assert_int_equal(to_half(&k, ar_f32_from_bits(0x7f800001u)), 0x7e00); /* sNaN, quieted */
    assert_int_equal(to_half(&k, ar_f32_from_bits(0xffc00000u)), 0xfe00);
    assert_int_equal(to_half(&k, ar_f32_from_bits(0x7fffe000u)), 0x7fff); /* payload kept */
}

/* --- SIMD tiers against the scalar tier -------------------------------------------------- */

static void test_simd_dot(void **state) {
    (void)state;
    ar_kernels ref, t[2];
    scalar_kernels(&ref);
    const int nt = simd_tiers(t);
    if (nt == 0) skip();
    float *a = new_buf(MAX_N), *b = new_buf(MAX_N);
    for (int ti = 0; ti < nt; ti++) {
        for (size_t s = 0; s < N_SIZES; s++) {
            for (size_t m = 0; m < N_MAGS; m++) {
                const int64_t n = sizes[s];
                fill(a, n, mags[m]);
                fill(b, n, mags[N_MAGS - 1 - m]);
                double mass = 0;
                for (int64_t i = 0; i < n; i++) mass += fabs((double)a[i] * b[i]);
                const float want = ref.dot_f32(n, a, b), got = t[ti].dot_f32(n, a, b);
                if (fabs((double)got - want) > 1e-6 * mass)
                    fail_msg("%s dot n=%lld: %.9g vs %.9g (sum|ab| %.9g)",
                             ar_cpu_tier_name(t[ti].tier), (long long)n, (double)got, (double)want,
                             mass);
            }
        }
    }
    free_buf(a);
    free_buf(b);
}

/* dot_f32_n: one weight row with nr = 1..4 activation rows `stride` floats apart (never a
 * multiple of 64 bytes), the weights at an odd byte address: every ys[r] bit-identical to
 * dot_f32 on row r alone, nothing written past ys[nr - 1], inf and NaN confined to their
 * row. Lengths of every tail width. The scalar tier leaves dot_f32_n NULL (callers loop
 * dot_f32). */
static void test_simd_dot_n(void **state) {
    (void)state;
    ar_kernels ref, t[2];
    scalar_kernels(&ref);
    assert_null(ref.dot_f32_n);
    const int nt = simd_tiers(t);
    if (nt == 0) skip();
    static const int64_t nn[] = {0,  1,  7,  8,   15,  16,  17,  31,   32,   33,   63,  64,
                                 65, 97, 99, 127, 128, 129, 257, 1536, 1537, 8960, 8963};
    const int64_t max_stride = 8963 + 5;
    uint8_t *wraw = malloc((size_t)max_stride * sizeof(float) + 1);
    float *xbuf = new_buf(AR_MAX_NR * max_stride);
    assert_non_null(wraw);
    float *wtmp = malloc((size_t)max_stride * sizeof(float));
    assert_non_null(wtmp);
    /* the weights at an odd address: the SIMD kernels need no alignment (kernels.h) */
    const float *w = (const float *)(const void *)(wraw + 1);
    int checked = 0;
    for (int ti = 0; ti < nt; ti++) {
        const char *name = ar_cpu_tier_name(t[ti].tier);
        assert_non_null(t[ti].dot_f32_n);
        for (size_t s = 0; s < sizeof nn / sizeof nn[0]; s++) {
            const int64_t n = nn[s];
            /* n + 3 floats, or n + 5 where that would be a multiple of 64 bytes */
            const int64_t stride = (n + 3) % 16 ? n + 3 : n + 5;
            for (int rep = 0; rep < 3 * (int)N_MAGS; rep++) {
                fill(wtmp, n, mags[rep % N_MAGS]);
                memcpy(wraw + 1, wtmp, (size_t)n * sizeof(float));
                for (int r = 0; r < AR_MAX_NR; r++) {
                    fill(xbuf + r * stride, stride, mags[(rep + r) % N_MAGS]);
                    if (n > 0 && rep == 3 && r == 1) xbuf[r * stride + n / 2] = INFINITY;
                    if (n > 0 && rep == 4 && r == 3) xbuf[r * stride + n - 1] = NAN;
                }
                float want[AR_MAX_NR];
                for (int r = 0; r < AR_MAX_NR; r++)
                    want[r] = t[ti].dot_f32(n, w, xbuf + r * stride);
                for (int nr = 1; nr <= AR_MAX_NR; nr++) {
                    float ys[AR_MAX_NR + 1];
                    for (int r = 0; r <= AR_MAX_NR; r++) ys[r] = GUARD_VALUE;
                    t[ti].dot_f32_n(n, w, xbuf, (size_t)stride, nr, ys);
                    for (int r = 0; r < nr; r++)
                        if (memcmp(&ys[r], &want[r], sizeof(float)) != 0)
                            fail_msg("%s dot_f32_n n=%lld nr=%d row %d: %.9g, dot_f32 %.9g", name,
                                     (long long)n, nr, r, (double)ys[r], (double)want[r]);
                    for (int r = nr; r <= AR_MAX_NR; r++)
                        if (ys[r] != GUARD_VALUE)
                            fail_msg("%s dot_f32_n n=%lld nr=%d: wrote ys[%d]", name, (long long)n,
                                     nr, r);
                    checked++;
                }
                if (n > 0 && rep == 4) assert_true(isnan(want[3]));
                if (n > 0 && (rep == 3 || rep == 4)) assert_false(isnan(want[0]) || isnan(want[2]));
            }
        }
    }
    printf("# dot_f32_n bit-identical to dot_f32 in %d cases\n", checked);
    free(wtmp);
    free(wraw);
    free_buf(xbuf);
}

static void test_simd_axpy(void **state) {
    (void)state;
    ar_kernels ref, t[2];
    scalar_kernels(&ref);
    const int nt = simd_tiers(t);
    if (nt == 0) skip();
    float *x = new_buf(MAX_N), *y = new_buf(MAX_N), *y0 = new_buf(MAX_N), *yr = new_buf(MAX_N);
    for (int ti = 0; ti < nt; ti++) {
        for (size_t s = 0; s < N_SIZES; s++) {
            const int64_t n = sizes[s];
            for (size_t m = 0; m < N_MAGS; m++) {
                fill(x, n, mags[m]);
                fill(y0, n, 1.0);
                const float a = frand(3.0);
                memcpy(y, y0, (size_t)n * sizeof(float));
                memcpy(yr, y0, (size_t)n * sizeof(float));
                ref.axpy_f32(n, a, x, yr);
                set_guard(y, n);
                t[ti].axpy_f32(n, a, x, y);
                check_guard(y, n, "axpy");
                for (int64_t i = 0; i < n; i++)
                    if (bits(y[i]) != bits(yr[i]))
                        fail_msg("%s axpy n=%lld i=%lld: %.9g vs %.9g",
                                 ar_cpu_tier_name(t[ti].tier), (long long)n, (long long)i,
                                 (double)y[i], (double)yr[i]);
            }
        }
    }
    free_buf(x);
    free_buf(y);
    free_buf(y0);
    free_buf(yr);
}

static void test_simd_rmsnorm(void **state) {
    (void)state;
    ar_kernels ref, t[2];
    scalar_kernels(&ref);
    const int nt = simd_tiers(t);
    if (nt == 0) skip();
    float *x = new_buf(MAX_N), *w = new_buf(MAX_N), *y = new_buf(MAX_N), *yr = new_buf(MAX_N);
    for (int ti = 0; ti < nt; ti++) {
        for (size_t s = 0; s < N_SIZES; s++) {
            const int64_t n = sizes[s];
            for (size_t m = 0; m < N_MAGS; m++) {
                fill(x, n, mags[m]);
                fill(w, n, 2.0);
                ref.rmsnorm_f32(n, x, w, 1e-6f, yr);
                set_guard(y, n);
                t[ti].rmsnorm_f32(n, x, w, 1e-6f, y);
                check_guard(y, n, "rmsnorm");
                for (int64_t i = 0; i < n; i++)
                    if (fabs((double)y[i] - yr[i]) > 1e-6 * fabs((double)yr[i]))
                        fail_msg("%s rmsnorm n=%lld i=%lld: %.9g vs %.9g",
                                 ar_cpu_tier_name(t[ti].tier), (long long)n, (long long)i,
                                 (double)y[i], (double)yr[i]);
            }
        }
        /* All-zero input: zeros, no NaN; and in place. */
        for (int i = 0; i < 1536; i++) x[i] = 0.0f;
        t[ti].rmsnorm_f32(1536, x, w, 1e-6f, y);
        for (int i = 0; i < 1536; i++) assert_true(y[i] == 0.0f);
        fill(x, 100, 1.0);
        ref.rmsnorm_f32(100, x, w, 1e-6f, yr);
        t[ti].rmsnorm_f32(100, x, w, 1e-6f, x);
        for (int i = 0; i < 100; i++)
            assert_true(fabs((double)x[i] - yr[i]) <= 1e-6 * fabs((double)yr[i]));
    }
    free_buf(x);
    free_buf(w);
    free_buf(y);
    free_buf(yr);
}

static void test_simd_silu_mul(void **state) {
    (void)state;
    ar_kernels ref, t[2];
    scalar_kernels(&ref);
    const int nt = simd_tiers(t);
    if (nt == 0) skip();
    float *g = new_buf(MAX_N), *u = new_buf(MAX_N), *y = new_buf(MAX_N), *yr = new_buf(MAX_N);
    const double gmags[] = {1e-3, 1.0, 10.0, 100.0, 1e3};
    for (int ti = 0; ti < nt; ti++) {
        for (size_t s = 0; s < N_SIZES; s++) {
            const int64_t n = sizes[s];
            for (size_t m = 0; m < 5; m++) {
                fill(g, n, gmags[m]);
                fill(u, n, mags[m % N_MAGS]);
                ref.silu_mul_f32(n, g, u, yr);
                set_guard(y, n);
                t[ti].silu_mul_f32(n, g, u, y);
                check_guard(y, n, "silu_mul");
                for (int64_t i = 0; i < n; i++)
                    if (fabs((double)y[i] - yr[i]) > 1e-6 * fabs((double)yr[i]) + 1e-30)
                        fail_msg("%s silu_mul g=%.9g u=%.9g: %.9g vs %.9g",
                                 ar_cpu_tier_name(t[ti].tier), (double)g[i], (double)u[i],
                                 (double)y[i], (double)yr[i]);
            }
        }
        /* In place (y == g), and the edges of exp. */
        const float edge[] = {-88.72f, -88.73f, -100.0f, 88.8f, 104.0f, -0.0f, INFINITY, -INFINITY};
        for (int i = 0; i < 8; i++) {
            g[i] = edge[i];
            u[i] = 1.5f;
        }
        ref.silu_mul_f32(8, g, u, yr);
        t[ti].silu_mul_f32(8, g, u, g);
        for (int i = 0; i < 6; i++)
            assert_true(fabs((double)g[i] - yr[i]) <= 1e-6 * fabs((double)yr[i]) + 1e-30);
        assert_true(g[6] == INFINITY && yr[6] == INFINITY);
        assert_true(isnan(g[7]) && isnan(yr[7])); /* -inf / (1 + inf) */
    }
    free_buf(g);
    free_buf(u);
    free_buf(y);
    free_buf(yr);
}

static void test_simd_softmax(void **state) {
    (void)state;
    ar_kernels ref, t[2];
    scalar_kernels(&ref);
    const int nt = simd_tiers(t);
    if (nt == 0) skip();
    float *x = new_buf(MAX_N), *xr = new_buf(MAX_N);
    const double smags[] = {1e-3, 1.0, 10.0, 100.0, 1e30};
    for (int ti = 0; ti < nt; ti++) {
        const char *name = ar_cpu_tier_name(t[ti].tier);
        for (size_t s = 0; s < N_SIZES; s++) {
            const int64_t n = sizes[s];
            for (size_t m = 0; m < 5; m++) {
                fill_scores(xr, n, smags[m]);
                memcpy(x, xr, (size_t)n * sizeof(float));
                set_guard(x, n);
                const float want = ref.softmax_f32(n, xr), got = t[ti].softmax_f32(n, x);
                check_guard(x, n, "softmax");
                if (fabs((double)got - want) > 1e-6 * want)
                    fail_msg("%s softmax n=%lld sum %.9g vs %.9g", name, (long long)n, (double)got,
                             (double)want);
                for (int64_t i = 0; i < n; i++)
                    if (fabs((double)x[i] - xr[i]) > 1e-6 * xr[i] + 1e-37)
                        fail_msg("%s softmax n=%lld i=%lld: %.9g vs %.9g", name, (long long)n,
                                 (long long)i, (double)x[i], (double)xr[i]);
            }
        }
        /* All -inf: zeros and 0; NaN: NaN row; large values. */
        for (int i = 0; i < 37; i++) x[i] = -INFINITY;
        assert_true(t[ti].softmax_f32(37, x) == 0.0f);
        for (int i = 0; i < 37; i++) assert_true(bits(x[i]) == 0);
        for (int i = 0; i < 37; i++) x[i] = -INFINITY;
        x[20] = NAN;
        assert_true(isnan(t[ti].softmax_f32(37, x)));
        for (int i = 0; i < 37; i++) assert_true(isnan(x[i]));
        for (int i = 0; i < 37; i++) x[i] = i == 30 ? FLT_MAX : -FLT_MAX;
        assert_true(t[ti].softmax_f32(37, x) == 1.0f);
        for (int i = 0; i < 37; i++) assert_true(x[i] == (i == 30 ? 1.0f : 0.0f));
    }
    free_buf(x);
    free_buf(xr);
}

/* Floats whose conversion to half is delicate: zeros, infinities, NaNs (quiet, signalling,
 * payloads), float subnormals, the half subnormal and overflow boundaries. */
static const uint32_t special_floats[] = {
    0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001,
    0x7fbfffff, 0x7fffffff, 0xffffffff, 0x7fa00000, 0x7f802000, 0x7f801fff, 0x00000001, 0x807fffff,
    0x00800000, 0x33000000, 0x33000001, 0x32ffffff, 0xb3000000, 0x33800000, 0x33c00000, 0x33c00001,
    0x387fc000, 0x387fe000, 0x387fffff, 0x38800000, 0x38800fff, 0x38801000, 0x38803000, 0x477fe000,
    0x477fefff, 0x477ff000, 0x477fffff, 0x47800000, 0xc77ff000, 0x7f7fffff, 0xff7fffff, 0x3f800000,
    0x3f801000, 0x3f803000, 0x3f800fff, 0x3f801001, 0x3eaaaaab, 0x3dcccccd, 0x42c80000, 0x4b800000,
};

static void test_simd_f32_to_f16(void **state) {
    (void)state;
    ar_kernels ref, t[2];
    scalar_kernels(&ref);
    const int nt = simd_tiers(t);
    if (nt == 0) skip();
    const size_t n_special = sizeof special_floats / sizeof special_floats[0];
    const int64_t n_all = 1 << 20;
    float *x = malloc((size_t)(n_all + 1) * sizeof(float)) /* one float off alignment */;
    uint16_t *h = malloc((size_t)(n_all + GUARD + 1) * sizeof(uint16_t));
    uint16_t *hr = malloc((size_t)n_all * sizeof(uint16_t));
    assert_non_null(x);
    assert_non_null(h);
    assert_non_null(hr);
    float *xs = x + 1;
    uint16_t *hs = h + 1;
    /* The special values, every half's value, each midpoint and its neighbours, then random
     * bit patterns (every class of float). */
    int64_t n = 0;
    for (size_t i = 0; i < n_special; i++) xs[n++] = ar_f32_from_bits(special_floats[i]);
    for (uint32_t i = 0; i < 0x7c00; i++) {
        const double v = half_value((uint16_t)i),
                     next = i + 1 < 0x7c00 ? half_value((uint16_t)(i + 1)) : 65536.0;
        const float mid = (float)((v + next) / 2);
        const float cands[] = {(float)v, mid, nextafterf(mid, 0), nextafterf(mid, INFINITY)};
        for (int c = 0; c < 4; c++) {
            xs[n++] = cands[c];
            xs[n++] = -cands[c];
        }
    }
    while (n < n_all) xs[n++] = ar_f32_from_bits((uint32_t)rnd64());
    ref.f32_to_f16(n_all, xs, hr);
    for (int ti = 0; ti < nt; ti++) {
        for (int64_t i = 0; i < n_all + GUARD; i++) hs[i] = 0xabcd;
        t[ti].f32_to_f16(n_all, xs, hs);
        for (int64_t i = 0; i < n_all; i++)
            if (hs[i] != hr[i])
                fail_msg("%s f32_to_f16(%08x): %04x, want %04x", ar_cpu_tier_name(t[ti].tier),
                         bits(xs[i]), hs[i], hr[i]);
        for (int64_t i = n_all; i < n_all + GUARD; i++) assert_int_equal(hs[i], 0xabcd);
        /* Every length, starting from the special values. */
        for (size_t s = 0; s < N_SIZES; s++) {
            const int64_t len = sizes[s];
            for (int64_t i = 0; i < len + GUARD; i++) hs[i] = 0xabcd;
            t[ti].f32_to_f16(len, xs, hs);
            for (int64_t i = 0; i < len; i++) assert_int_equal(hs[i], hr[i]);
            for (int64_t i = len; i < len + GUARD; i++) assert_int_equal(hs[i], 0xabcd);
        }
    }
    free(x);
    free(h);
    free(hr);
}

/* Runs a 16-bit row conversion (f16_to_f32, or to_float of F16 / BF16) on all 65536 inputs
 * and on every test length, comparing bits with the reference. `src` is any address. */
typedef void (*row_fn)(const ar_kernels *k, const void *src, float *dst, int64_t n);

static void row_f16_to_f32(const ar_kernels *k, const void *src, float *dst, int64_t n) {
    k->f16_to_f32(n, src, dst);
}
static void row_to_float_f16(const ar_kernels *k, const void *src, float *dst, int64_t n) {
    k->to_float[AR_TYPE_F16](src, dst, n);
}
static void row_to_float_bf16(const ar_kernels *k, const void *src, float *dst, int64_t n) {
    k->to_float[AR_TYPE_BF16](src, dst, n);
}

static void check_row16(row_fn fn, const char *what, size_t byte_offset) {
    ar_kernels ref, t[2];
    scalar_kernels(&ref);
    const int nt = simd_tiers(t);
    if (nt == 0) skip();
    uint8_t *raw = malloc(2 * 65536 + 8);
    float *yr = malloc(65536 * sizeof(float));
    float *y = new_buf(65536);
    assert_non_null(raw);
    assert_non_null(yr);
    uint8_t *src = raw + byte_offset;
    for (uint32_t i = 0; i < 65536; i++) {
        src[2 * i] = (uint8_t)(i & 0xff);
        src[2 * i + 1] = (uint8_t)(i >> 8);
    }
    fn(&ref, src, yr, 65536);
    for (int ti = 0; ti < nt; ti++) {
        set_guard(y, 65536);
        fn(&t[ti], src, y, 65536);
        check_guard(y, 65536, what);
        for (uint32_t i = 0; i < 65536; i++)
            if (bits(y[i]) != bits(yr[i]))
                fail_msg("%s %s(%04x): %08x, want %08x", ar_cpu_tier_name(t[ti].tier), what, i,
                         bits(y[i]), bits(yr[i]));
        /* Every length, from an offset into the table (varied bit patterns). */
        for (size_t s = 0; s < N_SIZES; s++) {
            const int64_t n = sizes[s], start = 0x7bf0 - (n > 0x7bf0 ? 0x7bf0 : n / 2);
            for (int64_t i = 0; i < n + GUARD; i++) y[i] = GUARD_VALUE;
            fn(&t[ti], src + 2 * start, y, n);
            check_guard(y, n, what);
            for (int64_t i = 0; i < n; i++) assert_int_equal(bits(y[i]), bits(yr[start + i]));
        }
    }
    free(raw);
    free(yr);
    free_buf(y);
}

static void test_simd_f16_to_f32(void **state) {
    (void)state;
    check_row16(row_f16_to_f32, "f16_to_f32", 2); /* one half off alignment */
}

static void test_simd_to_float_f16(void **state) {
    (void)state;
    check_row16(row_to_float_f16, "to_float F16", 1); /* odd address */
}

static void test_simd_to_float_bf16(void **state) {
    (void)state;
    check_row16(row_to_float_bf16, "to_float BF16", 1);
}

static void test_simd_to_float_f32(void **state) {
    (void)state;
    ar_kernels ref, t[2];
    scalar_kernels(&ref);
    const int nt = simd_tiers(t);
    if (nt == 0) skip();
    uint8_t *raw = malloc(4 * MAX_N + 8);
    float *y = new_buf(MAX_N), *yr = new_buf(MAX_N);
    assert_non_null(raw);
    for (size_t i = 0; i < 4 * MAX_N + 8; i++) raw[i] = (uint8_t)rnd64(); /* NaN payloads too */
    for (int ti = 0; ti < nt; ti++) {
        for (size_t s = 0; s < N_SIZES; s++) {
            const int64_t n = sizes[s];
            ref.to_float[AR_TYPE_F32](raw + 3, yr, n);
            set_guard(y, n);
            t[ti].to_float[AR_TYPE_F32](raw + 3, y, n);
            check_guard(y, n, "to_float F32");
            assert_memory_equal(y, yr, (size_t)n * sizeof(float));
        }
    }
    free(raw);
    free_buf(y);
    free_buf(yr);
}

/* The reference to_float of F32/F16/BF16 are the traits' (dequant.c) in every table, and a
 * SIMD table keeps the scalar ones of the quantized types it does not override. */
/* --- Grouped attention ------------------------------------------------------------------- */

/* Inputs for attn_* with nq heads, hd dims, n positions over a cache of rows of `stride`
 * floats: slots out of order and repeated. */
enum { ATT_ROWS = 40, ATT_STRIDE = 300, ATT_N = 37 };

static void attn_inputs(int hd, int nq, float *q, float *kv, int32_t *slot, float *p) {
    fill(q, (int64_t)nq * hd, 1.0);
    fill(kv, (int64_t)ATT_ROWS * ATT_STRIDE, 1.0);
    for (int j = 0; j < ATT_N; j++) slot[j] = (int32_t)((7 * j + 3) % ATT_ROWS);
    for (int i = 0; i < nq * ATT_N; i++) p[i] = (float)fabs(frand(1.0));
}

static void test_attention(void **state) {
    (void)state;
    ar_kernels ref, t[2];
    scalar_kernels(&ref);
    assert_non_null(ref.attn_scores);
    assert_non_null(ref.attn_values);
    const int nt = simd_tiers(t);
    static const int hds[] = {64, 128, 72};
    float *q = new_buf(AR_ATTN_MAX_Q * 128), *kv = new_buf(ATT_ROWS * ATT_STRIDE);
    float *p = new_buf(AR_ATTN_MAX_Q * ATT_N), *a = new_buf(AR_ATTN_MAX_Q * 160),
          *b = new_buf(AR_ATTN_MAX_Q * 160);
    int32_t slot[ATT_N];
    const float scale = 0.125f;
    for (int hi = 0; hi < 3; hi++)
        for (int nq = 1; nq <= AR_ATTN_MAX_Q; nq++) {
            const int hd = hds[hi];
            attn_inputs(hd, nq, q, kv, slot, p);
            /* scores: rows of ATT_N + 3 floats (the gap must stay untouched) */
            const size_t ss = ATT_N + 3, n_out = (size_t)nq * ss;
            for (size_t i = 0; i < n_out; i++) a[i] = b[i] = GUARD_VALUE;
            ref.attn_scores(hd, nq, q, (size_t)hd, kv, ATT_STRIDE, slot, ATT_N, scale, a, ss);
            for (int h = 0; h < nq; h++)
                for (int j = 0; j < ATT_N; j++) {
                    double want = 0, mass = 0;
                    for (int d = 0; d < hd; d++) {
                        const double x = (double)q[h * hd + d] * kv[slot[j] * ATT_STRIDE + d];
                        want += x;
                        mass += fabs(x);
                    }
                    const double got = a[(size_t)h * ss + (size_t)j];
                    if (fabs(got - want * scale) > ((double)hd * 0x1p-24 * mass + 1e-30) * scale)
                        fail_msg("scalar attn_scores hd=%d h=%d j=%d: %.9g vs %.9g", hd, h, j, got,
                                 want * scale);
                }
            for (int ti = 0; ti < nt; ti++) {
                if (!t[ti].attn_scores) continue;
                t[ti].attn_scores(hd, nq, q, (size_t)hd, kv, ATT_STRIDE, slot, ATT_N, scale, b, ss);
                for (int h = 0; h < nq; h++)
                    for (int j = 0; j < (int)ss; j++) {
                        const size_t i = (size_t)h * ss + (size_t)j;
                        if (j >= ATT_N) {
                            if (b[i] != GUARD_VALUE) fail_msg("attn_scores wrote past n");
                            continue;
                        }
                        double mass = 0;
                        for (int d = 0; d < hd; d++)
                            mass += fabs((double)q[h * hd + d] * kv[slot[j] * ATT_STRIDE + d]);
                        if (fabs((double)b[i] - a[i]) > 1e-6 * mass * scale)
                            fail_msg("%s attn_scores hd=%d nq=%d h=%d j=%d: %.9g vs %.9g",
                                     ar_cpu_tier_name(t[ti].tier), hd, nq, h, j, (double)b[i],
                                     (double)a[i]);
                    }
            }
            /* values: rows of hd + 5 floats */
            const size_t os = (size_t)hd + 5, n_val = (size_t)nq * os;
            for (size_t i = 0; i < n_val; i++) a[i] = b[i] = GUARD_VALUE;
            ref.attn_values(hd, nq, p, ATT_N, kv, ATT_STRIDE, slot, ATT_N, a, os);
            for (int h = 0; h < nq; h++)
                for (int d = 0; d < hd; d++) {
                    double want = 0, mass = 0;
                    for (int j = 0; j < ATT_N; j++) {
                        const double x = (double)p[h * ATT_N + j] * kv[slot[j] * ATT_STRIDE + d];
                        want += x;
                        mass += fabs(x);
                    }
                    const double got = a[(size_t)h * os + (size_t)d];
                    if (fabs(got - want) > ATT_N * 0x1p-23 * mass + 1e-30)
                        fail_msg("scalar attn_values hd=%d h=%d d=%d: %.9g vs %.9g", hd, h, d, got,
                                 want);
                }
            for (int ti = 0; ti < nt; ti++) {
                if (!t[ti].attn_values) continue;
                t[ti].attn_values(hd, nq, p, ATT_N, kv, ATT_STRIDE, slot, ATT_N, b, os);
                for (size_t i = 0; i < n_val; i++)
                    if (bits(a[i]) != bits(b[i]))
                        fail_msg("%s attn_values hd=%d nq=%d: element %zu %.9g, scalar %.9g",
                                 ar_cpu_tier_name(t[ti].tier), hd, nq, i, (double)b[i],
                                 (double)a[i]);
            }
        }
    for (int ti = 0; ti < nt; ti++)
        if (t[ti].tier == AR_CPU_AVX2) {
            assert_null(t[ti].attn_scores);
            assert_null(t[ti].attn_values);
        } else {
            assert_non_null(t[ti].attn_scores);
            assert_non_null(t[ti].attn_values);
        }
    free_buf(q);
    free_buf(kv);
    free_buf(p);
    free_buf(a);
    free_buf(b);
}

static void test_table_entries(void **state) {
    (void)state;
    ar_kernels ref;
    scalar_kernels(&ref);
    const ar_type types[] = {AR_TYPE_F32, AR_TYPE_F16, AR_TYPE_BF16};
    for (int i = 0; i < 3; i++) {
        const ar_type_traits *tt = ar_type_traits_get((uint32_t)types[i]);
        assert_non_null(tt);
        assert_ptr_equal(ref.to_float[types[i]], tt->to_float);
    }
    ar_kernels t[2];
    const int nt = simd_tiers(t);
    for (int ti = 0; ti < nt; ti++) {
        assert_non_null(t[ti].dot_f32);
        assert_ptr_not_equal(t[ti].dot_f32, ref.dot_f32);
        assert_ptr_not_equal(t[ti].to_float[AR_TYPE_F16], ref.to_float[AR_TYPE_F16]);
    }
}

/* --- Micro-benchmark (AR_BENCH_FLOAT=1) -------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* dot_f32_n against dot_f32: ns per weight row times nr activation rows, one dot_f32_n
 * call against nr dot_f32 calls, best of 9, with one weight row kept in cache ("hot") and
 * with the rows of a 64 MiB matrix streamed from memory ("stream"); the activation rows
 * stay in cache in both. Prints only; nothing is checked. */
static void test_bench(void **state) {
    (void)state;
    const char *env = getenv("AR_BENCH_FLOAT");
    if (!env || !*env || strcmp(env, "0") == 0) skip();
    ar_kernels t[2];
    const int nt = simd_tiers(t);
    static const int64_t bn[] = {1536, 8960};
    volatile float sink = 0;
    for (size_t si = 0; si < 2; si++) {
        const int64_t n = bn[si], stride = n + 3, rows = (64 << 20) / (n * 4);
        float *x = new_buf(AR_MAX_NR * stride);
        float *w = malloc((size_t)(rows * n) * sizeof(float));
        assert_non_null(w);
        fill(x, AR_MAX_NR * stride, 1.0);
        fill(w, rows * n, 1.0);
        for (int ti = 0; ti < nt; ti++) {
            for (int nr = 2; nr <= AR_MAX_NR; nr += 2) {
                double best[2][2] = {{1e30, 1e30}, {1e30, 1e30}}; /* [multi][stream] */
                const int64_t reps = 20000 * 1536 / n;
                float ys[AR_MAX_NR];
                for (int it = 0; it < 9; it++) {
                    for (int multi = 0; multi < 2; multi++) {
                        for (int stream = 0; stream < 2; stream++) {
                            const int64_t count = stream ? rows : reps;
                            const double t0 = now_s();
                            for (int64_t i = 0; i < count; i++) {
                                const float *wr = w + (stream ? i * n : 0);
                                if (multi)
                                    t[ti].dot_f32_n(n, wr, x, (size_t)stride, nr, ys);
                                else
                                    for (int r = 0; r < nr; r++)
                                        ys[r] = t[ti].dot_f32(n, wr, x + r * stride);
                                sink += ys[0];
                            }
                            const double dt = (now_s() - t0) / (double)count;
                            if (dt < best[multi][stream]) best[multi][stream] = dt;
                        }
                    }
                }
                printf("bench %-6s dot_f32 n=%-5d nr=%d  hot %7.1f ns (%d calls %7.1f, x%.2f)   "
                       "stream %7.1f ns (%d calls %7.1f, x%.2f)\n",
                       ar_cpu_tier_name(t[ti].tier), (int)n, nr, best[1][0] * 1e9, nr,
                       best[0][0] * 1e9, best[0][0] / best[1][0], best[1][1] * 1e9, nr,
                       best[0][1] * 1e9, best[0][1] / best[1][1]);
            }
        }
        free(w);
        free_buf(x);
    }
    (void)sink;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_scalar_dot),
        cmocka_unit_test(test_scalar_axpy),
        cmocka_unit_test(test_scalar_rmsnorm),
        cmocka_unit_test(test_scalar_silu_mul),
        cmocka_unit_test(test_scalar_softmax),
        cmocka_unit_test(test_scalar_f16_to_f32),
        cmocka_unit_test(test_scalar_f32_to_f16),
        cmocka_unit_test(test_simd_dot),
        cmocka_unit_test(test_simd_dot_n),
        cmocka_unit_test(test_simd_axpy),
        cmocka_unit_test(test_simd_rmsnorm),
        cmocka_unit_test(test_simd_silu_mul),
        cmocka_unit_test(test_simd_softmax),
        cmocka_unit_test(test_simd_f32_to_f16),
        cmocka_unit_test(test_simd_f16_to_f32),
        cmocka_unit_test(test_simd_to_float_f16),
        cmocka_unit_test(test_simd_to_float_bf16),
        cmocka_unit_test(test_simd_to_float_f32),
        cmocka_unit_test(test_table_entries),
        cmocka_unit_test(test_bench),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
