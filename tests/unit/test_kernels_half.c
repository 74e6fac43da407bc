/*
 * test_kernels_half.c - the fused F16/BF16 x float32 dot products (vec_dot_f, vec_dot_f_n,
 * vec_dot_f_mn of kernels.h; src/kernels/half_*.c) of every CPU tier.
 *
 * The scalar tier has only the reference tile vec_dot_f_mn (the engine's convert-then-
 * dot_f32 path is the definition), so its other entries must be NULL. Each SIMD tier
 * (AVX2, AVX-512; skipped when the CPU lacks it) must fill all six and is checked:
 *
 *  - against the exact dot product in float64 of the converted weights (fp16.h) and the
 *    activations: |got - exact| <= 1e-6 * sum|w*x|. Lengths 0, 1, 7, 16, 31, 64, 1536,
 *    8960 (tails of every kind, the model's hidden and FFN sizes); weights of magnitudes
 *    1e-3, 1 and 1e3 rounded to the type, and random bit patterns over every finite F16
 *    value (subnormals included) and over BF16 values of exponents 2^-40..2^40 (wider
 *    would overflow or underflow the float32 products themselves); activations of
 *    magnitudes 1e-3..1e3. Each weight row ends where its allocation ends, so that ASan
 *    builds catch a read past n.
 *  - vec_dot_f_n (nr = 1..4) against vec_dot_f on each row alone: bit-identical, nothing
 *    written past ys[nr - 1], with the weights at odd addresses (1 and 2 bytes past a
 *    64-byte boundary: the kernels need no alignment, kernels.h asks for 2 bytes) and
 *    activation rows one float off alignment with strides that are never a multiple of
 *    64 bytes; lengths of every tail width.
 *  - NaN and inf propagate: a NaN weight or activation anywhere (main loop, short steps,
 *    tail) makes the result NaN, an inf weight times a positive activation gives inf of
 *    its sign, inf times zero is NaN; in vec_dot_f_n only the row concerned.
 *  - vec_dot_f_mn, every tile shape of every tier, scalar included (check_tiles): each pair
 *    bit-identical to the tier's definition of it alone (scalar: to_float + dot_f32; SIMD:
 *    vec_dot_f), the SIMD tiers within 2e-6 * sum|w*x| of the scalar reference, nothing
 *    written past the tile, a NaN weight reaching its own row's results only.
 *
 * AR_BENCH_HALF=1 in the environment also times the kernels (nothing is checked): ns per
 * weight row with 1 and 4 activation rows, against the engine's two-pass path (to_float,
 * then dot_f32_n), with one row in cache ("hot") and with the rows of a 256 MiB matrix
 * streamed from memory, plus the weight bandwidth of the stream in GB/s.
 */
#include "testutil.h"

#include "archrouter.h"
#include "kernels/fp16.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- Helpers ---------------------------------------------------------------------------- */

static const int64_t sizes[] = {0, 1, 7, 16, 31, 64, 1536, 8960};
#define N_SIZES (sizeof sizes / sizeof sizes[0])
#define MAX_N   8960

static const float GUARD_VALUE = -12345.678f;

static const ar_type types[] = {AR_TYPE_F16, AR_TYPE_BF16};

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

static const char *type_name(ar_type t) {
    return t == AR_TYPE_F16 ? "F16" : "BF16";
}

/* The 16-bit pattern of f in type t (round to nearest even; bf16: f's top half rounded). */
static uint16_t to_half(ar_type t, float f) {
    if (t == AR_TYPE_F16) return ar_fp32_to_fp16(f);
    const uint32_t b = ar_f32_to_bits(f);
    return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

/* The float value of a 16-bit pattern of type t (exact). */
static float from_half(ar_type t, uint16_t h) {
    return t == AR_TYPE_F16 ? ar_fp16_to_fp32(h) : ar_f32_from_bits((uint32_t)h << 16);
}

/* A random finite 16-bit pattern of type t: every finite F16 (subnormals and zeros
 * included); BF16 of exponents 2^-40 .. 2^40 (or zero). */
static uint16_t random_bits(ar_type t) {
    for (;;) {
        const uint16_t h = (uint16_t)rnd64();
        if (t == AR_TYPE_F16) {
            if (((h >> 10) & 0x1f) != 0x1f) return h;
        } else {
            const int e = (h >> 7) & 0xff;
            if ((e >= 127 - 40 && e <= 127 + 40) || (h & 0x7fff) == 0) return h;
        }
    }
}

/* Writes the weights h[0..n) to p (unaligned) as 16-bit patterns. */
static void store_row(uint8_t *p, const uint16_t *h, int64_t n) {
    memcpy(p, h, (size_t)n * sizeof(uint16_t));
}

/* `bytes` (rounded up to a multiple of 64, as aligned_alloc wants) at a 64-byte boundary. */
static void *alloc64(size_t bytes) {
    void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    assert_non_null(p);
    return p;
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

/* --- The table --------------------------------------------------------------------------- */

/* The scalar tier leaves the fused kernels NULL; every SIMD tier has all four, and its
 * own (AVX-512 does not keep AVX2's). No other type gets one. */
static void test_table(void **state) {
    (void)state;
    ar_kernels ref, t[2];
    assert_int_equal(ar_kernels_get(AR_CPU_SCALAR, &ref), AR_OK);
    for (int ty = 0; ty < AR_N_TYPES; ty++) {
        assert_null(ref.vec_dot_f[ty]);
        assert_null(ref.vec_dot_f_n[ty]);
        if (ty == AR_TYPE_F16 || ty == AR_TYPE_BF16)
            assert_non_null(ref.vec_dot_f_mn[ty]);
        else
            assert_null(ref.vec_dot_f_mn[ty]);
    }
    const int nt = simd_tiers(t);
    for (int ti = 0; ti < nt; ti++) {
        for (int ty = 0; ty < AR_N_TYPES; ty++) {
            if (ty == AR_TYPE_F16 || ty == AR_TYPE_BF16) {
                assert_non_null(t[ti].vec_dot_f[ty]);
                assert_non_null(t[ti].vec_dot_f_n[ty]);
                assert_non_null(t[ti].vec_dot_f_mn[ty]);
                assert_ptr_not_equal(t[ti].vec_dot_f_mn[ty], ref.vec_dot_f_mn[ty]);
                assert_int_equal(t[ti].act[ty], AR_ACT_F32);
            } else {
                assert_null(t[ti].vec_dot_f[ty]);
                assert_null(t[ti].vec_dot_f_n[ty]);
                assert_null(t[ti].vec_dot_f_mn[ty]);
            }
        }
    }
    if (nt == 2)
        for (int i = 0; i < 2; i++) {
            assert_ptr_not_equal(t[0].vec_dot_f[types[i]], t[1].vec_dot_f[types[i]]);
            assert_ptr_not_equal(t[0].vec_dot_f_n[types[i]], t[1].vec_dot_f_n[types[i]]);
            assert_ptr_not_equal(t[0].vec_dot_f_mn[types[i]], t[1].vec_dot_f_mn[types[i]]);
        }
}

/* --- Accuracy against float64 ------------------------------------------------------------ */

/* Weight data sets: magnitudes 1e-3, 1, 1e3 rounded to the type, then random bits. */
static const double wmags[] = {1e-3, 1.0, 1e3, 0.0};
#define N_WSETS (sizeof wmags / sizeof wmags[0])
static const double xmags[] = {1e-3, 1.0, 1e3};
#define N_XMAGS (sizeof xmags / sizeof xmags[0])

static void check_accuracy(ar_type ty) {
    ar_kernels t[2];
    const int nt = simd_tiers(t);
    if (nt == 0) skip();
    uint16_t *h = malloc(MAX_N * sizeof(uint16_t));
    float *x = malloc((MAX_N + 1) * sizeof(float));
    assert_non_null(h);
    assert_non_null(x);
    double worst = 0;
    int checked = 0;
    for (size_t s = 0; s < N_SIZES; s++) {
        const int64_t n = sizes[s];
        /* the row at the very end of its allocation (ASan catches reads past it) */
        uint8_t *wbuf = malloc((size_t)n * 2 + 1);
        assert_non_null(wbuf);
        for (size_t ws = 0; ws < N_WSETS; ws++) {
            for (size_t xm = 0; xm < N_XMAGS; xm++) {
                for (int64_t i = 0; i < n; i++)
                    h[i] = wmags[ws] > 0 ? to_half(ty, frand(wmags[ws])) : random_bits(ty);
                for (int64_t i = 0; i < n; i++) x[i + 1] = frand(xmags[xm]);
                double exact = 0, mass = 0;
                for (int64_t i = 0; i < n; i++) {
                    const double p = (double)from_half(ty, h[i]) * (double)x[i + 1];
                    exact += p;
                    mass += fabs(p);
                }
                for (int off = 0; off < 2; off++) { /* row at an even and an odd address */
                    uint8_t *w = wbuf + 1 - off;
                    store_row(w, h, n);
                    for (int ti = 0; ti < nt; ti++) {
                        const float got = t[ti].vec_dot_f[ty](n, w, x + 1);
                        const double err = fabs((double)got - exact);
                        if (!(err <= 1e-6 * mass))
                            fail_msg("%s %s vec_dot_f n=%lld set %d x %g: %.9g, exact %.17g "
                                     "(sum|wx| %.9g)",
                                     ar_cpu_tier_name(t[ti].tier), type_name(ty), (long long)n,
                                     (int)ws, xmags[xm], (double)got, exact, mass);
                        if (mass > 0 && err / mass > worst) worst = err / mass;
                        checked++;
                    }
                }
            }
        }
        free(wbuf);
    }
    printf("# %s: %d cases, worst |got - exact| / sum|wx| = %.3g\n", type_name(ty), checked, worst);
    free(h);
    free(x);
}

static void test_accuracy_f16(void **state) {
    (void)state;
    check_accuracy(AR_TYPE_F16);
}

static void test_accuracy_bf16(void **state) {
    (void)state;
    check_accuracy(AR_TYPE_BF16);
}

/* --- Multi-row: bit-identical to one row at a time ---------------------------------------- */

static void check_multi_row(ar_type ty) {
    ar_kernels t[2];
    const int nt = simd_tiers(t);
    if (nt == 0) skip();
    static const int64_t nn[] = {0,  1,  7,  8,   15,  16,  17,  31,   32,   33,   63,  64,
                                 65, 97, 99, 127, 128, 129, 257, 1536, 1537, 8960, 8963};
    const int64_t max_n = 8963, max_stride = max_n + 5;
    uint8_t *wraw = alloc64((size_t)(max_n * 2 + 64));
    float *xraw = alloc64((size_t)(AR_MAX_NR * max_stride + 16) * sizeof(float));
    uint16_t *h = malloc((size_t)max_n * sizeof(uint16_t));
    assert_non_null(wraw);
    assert_non_null(xraw);
    assert_non_null(h);
    float *x = xraw + 1; /* one float off alignment */
    int checked = 0;
    for (int ti = 0; ti < nt; ti++) {
        const char *name = ar_cpu_tier_name(t[ti].tier);
        for (size_t s = 0; s < sizeof nn / sizeof nn[0]; s++) {
            const int64_t n = nn[s];
            /* n + 3 floats, or n + 5 where that would be a multiple of 64 bytes */
            const int64_t stride = (n + 3) % 16 ? n + 3 : n + 5;
            const size_t stride_b = (size_t)stride * sizeof(float);
            for (int rep = 0; rep < 8; rep++) {
                const uint8_t *w = wraw + (rep % 2 ? 1 : 2); /* odd byte; odd element */
                for (int64_t i = 0; i < n; i++)
                    h[i] = rep < 6 ? to_half(ty, frand(wmags[rep % 3])) : random_bits(ty);
                store_row(wraw + (rep % 2 ? 1 : 2), h, n);
                for (int r = 0; r < AR_MAX_NR; r++)
                    for (int64_t i = 0; i < stride; i++)
                        x[r * stride + i] = frand(xmags[(rep + r) % N_XMAGS]);
                float want[AR_MAX_NR];
                for (int r = 0; r < AR_MAX_NR; r++)
                    want[r] = t[ti].vec_dot_f[ty](n, w, (const uint8_t *)x + r * stride_b);
                for (int nr = 1; nr <= AR_MAX_NR; nr++) {
                    float ys[AR_MAX_NR + 1];
                    for (int r = 0; r <= AR_MAX_NR; r++) ys[r] = GUARD_VALUE;
                    t[ti].vec_dot_f_n[ty](n, w, x, stride_b, nr, ys);
                    for (int r = 0; r < nr; r++)
                        if (memcmp(&ys[r], &want[r], sizeof(float)) != 0)
                            fail_msg("%s %s vec_dot_f_n n=%lld nr=%d row %d: %.9g, vec_dot_f "
                                     "%.9g",
                                     name, type_name(ty), (long long)n, nr, r, (double)ys[r],
                                     (double)want[r]);
                    for (int r = nr; r <= AR_MAX_NR; r++)
                        if (ys[r] != GUARD_VALUE)
                            fail_msg("%s %s vec_dot_f_n n=%lld nr=%d: wrote ys[%d]", name,
                                     type_name(ty), (long long)n, nr, r);
                    checked++;
                }
            }
        }
    }
    printf("# %s: vec_dot_f_n bit-identical to vec_dot_f in %d cases\n", type_name(ty), checked);
    free(h);
    free(wraw);
    free(xraw);
}

static void test_multi_row_f16(void **state) {
    (void)state;
    check_multi_row(AR_TYPE_F16);
}

static void test_multi_row_bf16(void **state) {
    (void)state;
    check_multi_row(AR_TYPE_BF16);
}

/* --- NaN and inf ------------------------------------------------------------------------- */

static uint16_t nan_bits(ar_type t) {
    return t == AR_TYPE_F16 ? 0x7e00 : 0x7fc0;
}

static uint16_t inf_bits(ar_type t, int neg) {
    return (uint16_t)((t == AR_TYPE_F16 ? 0x7c00 : 0x7f80) | (neg ? 0x8000 : 0));
}

static void check_specials(ar_type ty) {
    ar_kernels t[2];
    const int nt = simd_tiers(t);
    if (nt == 0) skip();
    static const int64_t nn[] = {1, 7, 8, 16, 31, 64, 100, 1536};
    const int64_t max_n = 1536, stride = max_n + 3;
    const size_t stride_b = (size_t)stride * sizeof(float);
    uint16_t *h = malloc((size_t)max_n * sizeof(uint16_t));
    uint8_t *w = malloc((size_t)max_n * 2 + 2);
    float *x = malloc((size_t)(AR_MAX_NR * stride) * sizeof(float));
    assert_non_null(h);
    assert_non_null(w);
    assert_non_null(x);
    uint8_t *wr = w + 2;
    for (int ti = 0; ti < nt; ti++) {
        const char *name = ar_cpu_tier_name(t[ti].tier);
        ar_vec_dot_fn dot = t[ti].vec_dot_f[ty];
        ar_vec_dot_n_fn dot_n = t[ti].vec_dot_f_n[ty];
        for (size_t s = 0; s < sizeof nn / sizeof nn[0]; s++) {
            const int64_t n = nn[s];
            /* positions: first, in the main loop, last (the tail or the short steps) */
            const int64_t pos[] = {0, n / 2, n - 1};
            for (int pi = 0; pi < 3; pi++) {
                const int64_t p = pos[pi];
                for (int64_t i = 0; i < n; i++) h[i] = to_half(ty, frand(1.0));
                for (int64_t i = 0; i < AR_MAX_NR * stride; i++) x[i] = frand(1.0);
                float ys[AR_MAX_NR];
                /* NaN weight: every row NaN */
                const uint16_t keep = h[p];
                h[p] = nan_bits(ty);
                store_row(wr, h, n);
                if (!isnan(dot(n, wr, x)))
                    fail_msg("%s %s n=%lld: NaN weight at %lld lost", name, type_name(ty),
                             (long long)n, (long long)p);
                dot_n(n, wr, x, stride_b, AR_MAX_NR, ys);
                for (int r = 0; r < AR_MAX_NR; r++) assert_true(isnan(ys[r]));
                /* inf weight, positive activation: inf of the weight's sign */
                for (int neg = 0; neg < 2; neg++) {
                    h[p] = inf_bits(ty, neg);
                    store_row(wr, h, n);
                    x[p] = 0.5f;
                    const float y = dot(n, wr, x);
                    if (!(isinf(y) && (y < 0) == (neg == 1)))
                        fail_msg("%s %s n=%lld: %cinf weight at %lld gives %g", name, type_name(ty),
                                 (long long)n, neg ? '-' : '+', (long long)p, (double)y);
                }
                /* inf weight times zero: NaN */
                x[p] = 0.0f;
                if (!isnan(dot(n, wr, x)))
                    fail_msg("%s %s n=%lld: inf * 0 at %lld is not NaN", name, type_name(ty),
                             (long long)n, (long long)p);
                /* NaN activation in row 2 only: that row NaN, the others finite */
                h[p] = keep;
                store_row(wr, h, n);
                x[2 * stride + p] = NAN;
                dot_n(n, wr, x, stride_b, AR_MAX_NR, ys);
                for (int r = 0; r < AR_MAX_NR; r++)
                    if ((r == 2) != (isnan(ys[r]) != 0))
                        fail_msg("%s %s n=%lld: NaN activation of row 2 at %lld, row %d gives %g",
                                 name, type_name(ty), (long long)n, (long long)p, r, (double)ys[r]);
                assert_true(isnan(dot(n, wr, (const uint8_t *)x + 2 * stride_b)));
                /* inf activation in row 1: inf there (weight nonzero), others finite */
                x[2 * stride + p] = 0.0f;
                h[p] = to_half(ty, -2.0f);
                store_row(wr, h, n);
                x[stride + p] = INFINITY;
                dot_n(n, wr, x, stride_b, AR_MAX_NR, ys);
                for (int r = 0; r < AR_MAX_NR; r++)
                    if (r == 1 ? !(isinf(ys[r]) && ys[r] < 0) : !isfinite(ys[r]))
                        fail_msg("%s %s n=%lld: inf activation of row 1 at %lld, row %d gives %g",
                                 name, type_name(ty), (long long)n, (long long)p, r, (double)ys[r]);
            }
        }
    }
    free(h);
    free(w);
    free(x);
}

static void test_specials_f16(void **state) {
    (void)state;
    check_specials(AR_TYPE_F16);
}

static void test_specials_bf16(void **state) {
    (void)state;
    check_specials(AR_TYPE_BF16);
}

/* --- Tiles (vec_dot_f_mn) ---------------------------------------------------------------- */

/* Every tier's tile, every nw x nr (1..AR_MN_W x 1..AR_MN_R), for lengths of every tail
 * width, weight rows at odd addresses with strides that are not a multiple of 64 bytes,
 * activation rows one float off alignment:
 *
 *  - each pair bit-identical to the tier's definition of that pair alone: for the scalar
 *    reference, to_float of the weight row then the scalar dot_f32 (the engine's two-pass
 *    path); for a SIMD tier, its vec_dot_f. So results never depend on the grouping.
 *  - nothing written past ys[nw * nr - 1].
 *  - a SIMD tier against the scalar reference: |simd - ref| <= 2e-6 * sum|w*x|. Both are
 *    float32 sums of the same products in different orders, each within 1e-6 * sum|w*x|
 *    of the exact sum on these signed random data (test_accuracy checks the SIMD side
 *    against float64; the worst ratio is printed). A rigorous worst-case bound grows like
 *    n * 2^-24 and at n = 8960 would not see a lost or doubled product (about
 *    sum|w*x| / n); this one does.
 *  - a NaN weight in row `bad` makes exactly that row's nr results NaN. */
static void check_tiles(ar_type ty) {
    ar_kernels ref, t[3];
    assert_int_equal(ar_kernels_get(AR_CPU_SCALAR, &ref), AR_OK);
    t[0] = ref;
    const int nt = 1 + simd_tiers(t + 1);
    static const int64_t nn[] = {0,  1,  7,  8,  15, 16,   17,   31,  32,
                                 33, 63, 64, 65, 97, 1536, 1537, 8963};
    const int64_t max_n = 8963;
    const int64_t max_ws = max_n * 2 + 6, max_xs = max_n + 5;
    uint8_t *wraw = alloc64((size_t)(AR_MN_W * max_ws + 64));
    float *xraw = alloc64((size_t)(AR_MN_R * max_xs + 16) * sizeof(float));
    float *wf = malloc((size_t)max_n * sizeof(float));
    uint16_t *h = malloc((size_t)max_n * sizeof(uint16_t));
    assert_non_null(wf);
    assert_non_null(h);
    float *x = xraw + 1; /* one float off alignment */
    int checked = 0;
    double worst = 0;
    for (size_t s = 0; s < sizeof nn / sizeof nn[0]; s++) {
        const int64_t n = nn[s];
        /* weight rows n * 2 + 2 or + 6 bytes apart, activation rows n + 3 or n + 5 floats:
         * never a multiple of 64 bytes */
        const size_t ws = (size_t)n * 2 + ((n * 2 + 2) % 64 ? 2 : 6);
        const size_t xs = (size_t)((n + 3) % 16 ? n + 3 : n + 5) * sizeof(float);
        for (int rep = 0; rep < 4; rep++) {
            uint8_t *w = wraw + (rep % 2 ? 1 : 2); /* odd byte; odd element */
            for (int a = 0; a < AR_MN_W; a++) {
                for (int64_t i = 0; i < n; i++)
                    h[i] = rep < 3 ? to_half(ty, frand(wmags[(rep + a) % 3])) : random_bits(ty);
                store_row(w + (size_t)a * ws, h, n);
            }
            for (int r = 0; r < AR_MN_R; r++)
                for (int64_t i = 0; i < n; i++)
                    x[r * (int64_t)(xs / sizeof(float)) + i] = frand(xmags[(rep + r) % N_XMAGS]);
            /* the definitions, pair by pair, and the sums of |w*x| */
            float want[3][AR_MN_W][AR_MN_R];
            double mass[AR_MN_W][AR_MN_R];
            for (int a = 0; a < AR_MN_W; a++) {
                ref.to_float[ty](w + (size_t)a * ws, wf, n);
                for (int r = 0; r < AR_MN_R; r++) {
                    const float *xr = (const float *)(const void *)((const uint8_t *)x + r * xs);
                    want[0][a][r] = ref.dot_f32(n, wf, xr);
                    mass[a][r] = 0;
                    for (int64_t i = 0; i < n; i++) mass[a][r] += fabs((double)wf[i] * xr[i]);
                    for (int ti = 1; ti < nt; ti++)
                        want[ti][a][r] = t[ti].vec_dot_f[ty](n, w + (size_t)a * ws, xr);
                }
            }
            for (int ti = 0; ti < nt; ti++) {
                const char *name = ar_cpu_tier_name(t[ti].tier);
                for (int nw = 1; nw <= AR_MN_W; nw++) {
                    for (int nr = 1; nr <= AR_MN_R; nr++) {
                        float ys[AR_MN_W * AR_MN_R + 1];
                        for (int p = 0; p <= AR_MN_W * AR_MN_R; p++) ys[p] = GUARD_VALUE;
                        t[ti].vec_dot_f_mn[ty](n, w, ws, nw, x, xs, nr, ys);
                        for (int a = 0; a < nw; a++)
                            for (int r = 0; r < nr; r++) {
                                const float got = ys[a * nr + r];
                                if (memcmp(&got, &want[ti][a][r], sizeof got) != 0)
                                    fail_msg("%s %s vec_dot_f_mn n=%lld %dx%d pair %d,%d: %.9g, "
                                             "alone %.9g",
                                             name, type_name(ty), (long long)n, nw, nr, a, r,
                                             (double)got, (double)want[ti][a][r]);
                                const double err = fabs((double)got - (double)want[0][a][r]);
                                if (!(err <= 2e-6 * mass[a][r]))
                                    fail_msg("%s %s vec_dot_f_mn n=%lld pair %d,%d: %.9g, scalar "
                                             "%.9g (sum|wx| %.9g)",
                                             name, type_name(ty), (long long)n, a, r, (double)got,
                                             (double)want[0][a][r], mass[a][r]);
                                if (mass[a][r] > 0 && err / mass[a][r] > worst)
                                    worst = err / mass[a][r];
                            }
                        for (int p = nw * nr; p <= AR_MN_W * AR_MN_R; p++)
                            if (ys[p] != GUARD_VALUE)
                                fail_msg("%s %s vec_dot_f_mn n=%lld %dx%d: wrote ys[%d]", name,
                                         type_name(ty), (long long)n, nw, nr, p);
                        checked++;
                    }
                }
            }
            if (n == 0) continue;
            /* a NaN weight in row `bad`, at the start, middle or end */
            const int bad = rep % AR_MN_W;
            uint8_t *pos = w + (size_t)bad * ws + 2 * (size_t)(rep * (n - 1) / 3);
            uint8_t keep[2];
            memcpy(keep, pos, 2);
            const uint16_t nan = nan_bits(ty);
            memcpy(pos, &nan, 2);
            for (int ti = 0; ti < nt; ti++) {
                float ys[AR_MN_W * AR_MN_R];
                t[ti].vec_dot_f_mn[ty](n, w, ws, AR_MN_W, x, xs, AR_MN_R, ys);
                for (int a = 0; a < AR_MN_W; a++)
                    for (int r = 0; r < AR_MN_R; r++)
                        if ((a == bad) != (isnan(ys[a * AR_MN_R + r]) != 0))
                            fail_msg("%s %s vec_dot_f_mn n=%lld: NaN in weight row %d, pair "
                                     "%d,%d gives %g",
                                     ar_cpu_tier_name(t[ti].tier), type_name(ty), (long long)n, bad,
                                     a, r, (double)ys[a * AR_MN_R + r]);
            }
            memcpy(pos, keep, 2);
        }
    }
    printf("# %s: %d tiles bit-identical to their pairs alone; worst |simd - scalar| / sum|wx| "
           "= %.3g\n",
           type_name(ty), checked, worst);
    free(h);
    free(wf);
    free(wraw);
    free(xraw);
}

static void test_tiles_f16(void **state) {
    (void)state;
    check_tiles(AR_TYPE_F16);
}

static void test_tiles_bf16(void **state) {
    (void)state;
    check_tiles(AR_TYPE_BF16);
}

/* --- Micro-benchmark (AR_BENCH_HALF=1) ---------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ns per weight row times nr activation rows (best of 5): the fused vec_dot_f_n against
 * the engine's two-pass path (to_float into a buffer, then dot_f32_n), with one weight row
 * in cache ("hot") and with the rows of a 256 MiB matrix streamed from memory ("stream");
 * the activation rows (64-byte aligned, as in the engine) stay in cache. Prints only. */
static void test_bench(void **state) {
    (void)state;
    const char *env = getenv("AR_BENCH_HALF");
    if (!env || !*env || strcmp(env, "0") == 0) skip();
    ar_kernels t[2];
    const int nt = simd_tiers(t);
    static const int64_t bn[] = {1536, 8960};
    const size_t total = (size_t)256 << 20;
    uint8_t *w = alloc64(total);
    assert_non_null(w);
    for (size_t i = 0; i < total / 2; i++) {
        const uint16_t v = to_half(i % 2 ? AR_TYPE_BF16 : AR_TYPE_F16, frand(1.0));
        memcpy(w + 2 * i, &v, 2);
    }
    volatile float sink = 0;
    for (size_t si = 0; si < 2; si++) {
        const int64_t n = bn[si], stride = n; /* 64-byte aligned rows, as the engine's */
        const int64_t rows = (int64_t)(total / ((size_t)n * 2));
        float *x = alloc64((size_t)(AR_MAX_NR * stride) * sizeof(float));
        float *wf = alloc64((size_t)n * sizeof(float));
        assert_non_null(x);
        assert_non_null(wf);
        for (int64_t i = 0; i < AR_MAX_NR * stride; i++) x[i] = frand(1.0);
        for (int ti = 0; ti < nt; ti++) {
            for (int ty = 0; ty < 2; ty++) {
                const ar_type type = types[ty];
                for (int nr = 1; nr <= AR_MAX_NR; nr += 3) {
                    double best[2][2] = {{1e30, 1e30}, {1e30, 1e30}}; /* [fused][stream] */
                    const int64_t reps = 20000 * 1536 / n;
                    float ys[AR_MAX_NR];
                    for (int it = 0; it < 5; it++) {
                        for (int fused = 0; fused < 2; fused++) {
                            for (int stream = 0; stream < 2; stream++) {
                                const int64_t count = stream ? rows : reps;
                                const double t0 = now_s();
                                for (int64_t i = 0; i < count; i++) {
                                    const uint8_t *wr = w + (stream ? (size_t)i * n * 2 : 0);
                                    if (fused) {
                                        t[ti].vec_dot_f_n[type](
                                            n, wr, x, (size_t)stride * sizeof(float), nr, ys);
                                    } else {
                                        t[ti].to_float[type](wr, wf, n);
                                        t[ti].dot_f32_n(n, wf, x, (size_t)stride, nr, ys);
                                    }
                                    sink += ys[0];
                                }
                                const double dt = (now_s() - t0) / (double)count;
                                if (dt < best[fused][stream]) best[fused][stream] = dt;
                            }
                        }
                    }
                    printf("bench %-6s %-4s n=%-5d nr=%d  hot %7.1f ns (two-pass %7.1f)   "
                           "stream %7.1f ns = %5.1f GB/s (two-pass %7.1f ns = %5.1f GB/s)\n",
                           ar_cpu_tier_name(t[ti].tier), type_name(type), (int)n, nr,
                           best[1][0] * 1e9, best[0][0] * 1e9, best[1][1] * 1e9,
                           (double)n * 2 / best[1][1] * 1e-9, best[0][1] * 1e9,
                           (double)n * 2 / best[0][1] * 1e-9);
                }
            }
        }
        free(x);
        free(wf);
    }
    free(w);
    (void)sink;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),          cmocka_unit_test(test_accuracy_f16),
        cmocka_unit_test(test_accuracy_bf16),  cmocka_unit_test(test_multi_row_f16),
        cmocka_unit_test(test_multi_row_bf16), cmocka_unit_test(test_specials_f16),
        cmocka_unit_test(test_specials_bf16),  cmocka_unit_test(test_tiles_f16),
        cmocka_unit_test(test_tiles_bf16),     cmocka_unit_test(test_bench),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
