/*
 * test_kernels_gemm8.c - the fast precision's lane form (src/kernels/gemm8_*.c): the
 * activation quantizer, vec_dot8, and the GEMM form (pack8, pack8x, gemm8) of every tier
 * that has them, for Q4_K, Q6_K and Q8_0.
 *
 * - The scalar vec_dot8 against the product in double of the dequantized weights (to_float)
 *   and the dequantized activations (d * qs): within float32 rounding of the sum of |terms|.
 * - quantize_a8 of every tier byte-identical to the scalar one (random rows of several
 *   magnitudes, blocks with inf/NaN, all-zero and subnormal blocks).
 * - vec_dot8, pack8 and pack8x of every tier bit- / byte-identical to the scalar tier's
 *   (random valid blocks and extreme ones that pin the int32 lane bound).
 * - gemm8 of every tier bit-identical (memcmp) to the scalar vec_dot8 for every (row,
 *   token): rows of 256, 1536 and 8960 elements, weight rows 1..9, tokens 1..9, 13 and 32
 *   (every edge tile of the 4 x 3 micro-kernel), activation rows at the engine's stride and
 *   at a larger one; no write outside y[t * ldy + r] for r < nw, t < nx.
 * - The AVX2 tier has no lane form (vec_dot8 all NULL: the engine keeps its 8-bit kernels
 *   there).
 *
 * Set AR_GEMM8_BENCH=1 to print ns per (row, token) and GOPS of vec_dot8 and gemm8 (pack
 * included, 8 rows x 128 tokens; it only prints).
 */
#include "testutil.h"

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "kernels/types.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const ar_type lane_types[] = {AR_TYPE_Q4_K, AR_TYPE_Q6_K, AR_TYPE_Q8_0};
#define N_TYPES 3

static uint64_t rng = 0x13198a2e03707344u;
static uint32_t rnd_u32(void) {
    return ar_test_rnd_u32(&rng);
}
static float rnd_sym(void) { /* (-1, 1) */
    return ar_test_rnd_sym(&rng);
}

static const ar_type_traits *traits(ar_type type) {
    const ar_type_traits *tt = ar_type_traits_get(type);
    assert_non_null(tt);
    return tt;
}

static size_t row_bytes(ar_type type, int64_t n) {
    return (size_t)(n / traits(type)->blck_size) * (size_t)traits(type)->type_size;
}

static void put_f16(uint8_t *p, float f) {
    const uint16_t h = ar_fp32_to_fp16(f);
    memcpy(p, &h, 2);
}

/* Rows of n elements of `type`, nrows of them: random bytes with sane float16 scales, or
 * (extreme) the largest products: Q4_K / Q6_K every byte 0xff (Q6_K scales +-127/-128),
 * Q8_0 quants all -128 or all 127. */
static void fill_weights(ar_type type, uint8_t *p, int64_t n, int nrows, int extreme) {
    const int size = traits(type)->type_size;
    const int64_t nblk = n / traits(type)->blck_size * nrows;
    for (int64_t b = 0; b < nblk; b++, p += size) {
        for (int i = 0; i < size; i++) p[i] = extreme ? 0xff : (uint8_t)rnd_u32();
        const float mag = ldexpf(1.0f + (rnd_sym() + 1.0f) / 2.0f, -14 + (int)(rnd_u32() % 10));
        const float d = extreme ? 1.0f : (rnd_u32() & 1) ? -mag : mag;
        switch (type) {
        case AR_TYPE_Q4_K: put_f16(p, d), put_f16(p + 2, extreme ? 0.5f : mag / 4.0f); break;
        case AR_TYPE_Q6_K:
            if (extreme) memset(p + 192, (rnd_u32() & 1) ? 0x7f : 0x80, 16);
            put_f16(p + 208, d);
            break;
        default:
            if (extreme) memset(p + 2, (rnd_u32() & 1) ? 0x7f : 0x80, 32);
            put_f16(p, d);
            break;
        }
    }
}

/* nx activation rows (ar_block_a8) of n elements, `stride` bytes apart: random floats
 * quantized by the scalar tier at magnitude mag, or (extreme) every qs at +-127. */
static void fill_acts(const ar_kernels *ref, uint8_t *x, size_t stride, int nx, int64_t n,
                      float mag, int extreme) {
    float *f = malloc((size_t)n * sizeof *f);
    assert_non_null(f);
    for (int t = 0; t < nx; t++) {
        ar_block_a8 *row = (ar_block_a8 *)(void *)(x + (size_t)t * stride);
        if (!extreme) {
            for (int64_t i = 0; i < n; i++) f[i] = mag * rnd_sym();
            ref->quantize_a8(f, row, n);
            continue;
        }
        const int a = (rnd_u32() & 1) ? -127 : 127, alt = (int)(rnd_u32() & 1);
        for (int64_t b = 0; b < n / QK_K; b++) {
            for (int i = 0; i < QK_K; i++) row[b].qs[i] = (int8_t)(alt && (i & 1) ? -a : a);
            for (int j = 0; j < 16; j++) {
                int s = 0;
                for (int i = 16 * j; i < 16 * j + 16; i++) s += row[b].qs[i];
                row[b].d[j / 2] = 0.25f;
                row[b].s16[j] = 0.25f * (float)s;
            }
            for (int j = 0; j < 8; j++) row[b].s32[j] = row[b].s16[2 * j] + row[b].s16[2 * j + 1];
        }
    }
    free(f);
}

static int same_bits(float a, float b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

/* --- Reference: the scalar form against the dequantized product --------------------------- */

static void test_scalar_vs_dequant(void **state) {
    (void)state;
    ar_kernels ref;
    assert_int_equal(ar_kernels_get(AR_CPU_SCALAR, &ref), AR_OK);
    const int64_t n = 1536;
    float *wf = malloc((size_t)n * sizeof *wf);
    uint8_t *w = malloc(row_bytes(AR_TYPE_Q8_0, n));
    ar_block_a8 *x = malloc((size_t)(n / QK_K) * sizeof *x);
    assert_true(wf && w && x);
    for (int ti = 0; ti < N_TYPES; ti++) {
        const ar_type type = lane_types[ti];
        for (int rep = 0; rep < 50; rep++) {
            fill_weights(type, w, n, 1, 0);
            fill_acts(&ref, (uint8_t *)x, (size_t)(n / QK_K) * sizeof *x, 1, n,
                      rep % 5 == 0 ? 1e3f : 1.0f, 0);
            traits(type)->to_float(w, wf, n);
            double want = 0.0, mag = 0.0;
            for (int64_t i = 0; i < n; i++) {
                const ar_block_a8 *b = &x[i / QK_K];
                const double term =
                    (double)wf[i] * (double)b->d[i % QK_K / 32] * (double)b->qs[i % QK_K];
                want += term;
                mag += fabs(term);
            }
            const float got = ref.vec_dot8[type](n, w, x);
            if (fabs((double)got - want) > 2e-6 * mag + 1e-30)
                fail_msg("%s vec_dot8 %.9g, dequantized product %.9g (sum of |terms| %.3g)",
                         traits(type)->name, (double)got, want, mag);
        }
    }
    free(x);
    free(w);
    free(wf);
}

/* --- Every tier against the scalar one ------------------------------------------------------- */

static void check_quantize(const ar_kernels *k, const ar_kernels *ref) {
    const int64_t n = 1024;
    float *f = malloc((size_t)n * sizeof *f);
    ar_block_a8 *a = malloc((size_t)(n / QK_K) * sizeof *a),
                *b = malloc((size_t)(n / QK_K) * sizeof *b);
    assert_true(f && a && b);
    for (int rep = 0; rep < 40; rep++) {
        const float mag = rep % 4 == 0 ? 1e-3f : rep % 4 == 1 ? 1e6f : 1.0f;
        for (int64_t i = 0; i < n; i++) f[i] = mag * rnd_sym();
        if (rep % 3 == 0) f[rnd_u32() % n] = (rep & 1) ? INFINITY : NAN;
        if (rep % 5 == 0) memset(f + 32 * (rnd_u32() % (n / 32)), 0, 32 * sizeof *f);
        if (rep % 7 == 0) /* a subnormal block: d below FLT_MIN */
            for (int i = 0; i < 32; i++) f[64 + i] = 1e-40f * rnd_sym();
        ref->quantize_a8(f, a, n);
        k->quantize_a8(f, b, n);
        if (memcmp(a, b, (size_t)(n / QK_K) * sizeof *a) != 0)
            fail_msg("%s quantize_a8 differs from scalar (rep %d)", ar_cpu_tier_name(k->tier), rep);
    }
    free(b);
    free(a);
    free(f);
}

#define MAX_NW 9
#define MAX_NX 32

/* gemm8 of tier k on nw packed rows x nx tokens against the scalar vec_dot8, bit for bit. */
static void compare_gemm(const ar_kernels *k, const ar_kernels *ref, ar_type type, const uint8_t *w,
                         const ar_block_w8 *packed, const uint8_t *x, size_t stride,
                         const ar_block_x8 *xp, size_t xstride, int64_t n, int nw, int nx,
                         const char *what) {
    const int lane = k->lanes8[type];
    const size_t wrow = row_bytes(type, n), ng = (size_t)ar_lane_groups(n, lane), ldy = MAX_NW + 2;
    float y[(MAX_NX + 2) * (MAX_NW + 2)];
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++) y[i] = -12345.0f;
    k->gemm8(n, packed, ng, nw, xp, xstride, nx, lane, y + ldy + 1, ldy);
    for (int t = 0; t < nx; t++)
        for (int r = 0; r < nw; r++) {
            const float want = ref->vec_dot8[type](n, w + (size_t)r * wrow, x + (size_t)t * stride);
            const float got = y[(size_t)(t + 1) * ldy + (size_t)r + 1];
            if (!same_bits(got, want))
                fail_msg("%s %s gemm8 n=%lld nw=%d nx=%d (%s): row %d token %d gives %.9g, "
                         "scalar vec_dot8 %.9g",
                         ar_cpu_tier_name(k->tier), traits(type)->name, (long long)n, nw, nx, what,
                         r, t, (double)got, (double)want);
        }
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++) {
        const size_t t = i / ldy, r = i % ldy;
        const int inside = t >= 1 && t <= (size_t)nx && r >= 1 && r <= (size_t)nw;
        if (!inside && y[i] != -12345.0f)
            fail_msg("%s %s gemm8 nw=%d nx=%d wrote outside its rows and tokens (%zu, %zu)",
                     ar_cpu_tier_name(k->tier), traits(type)->name, nw, nx, t, r);
    }
}

static void check_tier(ar_cpu_tier tier) {
    ar_kernels k, ref;
    if (ar_kernels_get(tier, &k) != AR_OK) {
        printf("# %s: not on this CPU, skipped\n", ar_cpu_tier_name(tier));
        return;
    }
    assert_int_equal(ar_kernels_get(AR_CPU_SCALAR, &ref), AR_OK);
    check_quantize(&k, &ref);
    static const int64_t sizes[] = {256, 1536, 8960};
    for (int si = 0; si < 3; si++) {
        const int64_t n = sizes[si];
        const size_t nblk = (size_t)(n / QK_K), row = nblk * sizeof(ar_block_a8);
        const size_t strides[2] = {row, row + 36};
        for (int ti = 0; ti < N_TYPES; ti++) {
            const ar_type type = lane_types[ti];
            const int lane = k.lanes8[type];
            assert_int_equal(lane, type == AR_TYPE_Q6_K ? 16 : 32);
            assert_int_equal(lane, ref.lanes8[type]);
            const size_t ng = (size_t)ar_lane_groups(n, lane);
            assert_true(k.vec_dot8[type] && k.pack8[type] && k.gemm8 && k.pack8x);
            const size_t wrow = row_bytes(type, n);
            uint8_t *w = malloc(MAX_NW * wrow), *x = malloc(MAX_NX * strides[1]);
            ar_block_w8 *pa = malloc(MAX_NW * nblk * sizeof *pa),
                        *pb = malloc(MAX_NW * nblk * sizeof *pb);
            ar_block_x8 *xa = malloc(MAX_NX * (nblk + 1) * sizeof *xa),
                        *xb = malloc(MAX_NX * (nblk + 1) * sizeof *xb);
            assert_true(w && x && pa && pb && xa && xb);
            for (int variant = 0; variant < 4; variant++) {
                const int extreme = variant == 3;
                const size_t stride = strides[variant & 1], xstride = ng + (variant & 1);
                if (n == 8960 && variant == 1) continue; /* time: the big rows once each way */
                fill_weights(type, w, n, MAX_NW, extreme);
                fill_acts(&ref, x, stride, MAX_NX, n, variant == 2 ? 1e4f : 1.0f, extreme);
                const char *what = extreme ? "extreme" : variant == 2 ? "large" : "random";
                for (int r = 0; r < MAX_NW; r++) {
                    ref.pack8[type](n, w + (size_t)r * wrow, pa + (size_t)r * ng);
                    k.pack8[type](n, w + (size_t)r * wrow, pb + (size_t)r * ng);
                }
                if (memcmp(pa, pb, MAX_NW * ng * sizeof *pa) != 0)
                    fail_msg("%s %s pack8 differs from scalar (%s)", ar_cpu_tier_name(tier),
                             traits(type)->name, what);
                for (int t = 0; t < MAX_NX; t++) {
                    const ar_block_a8 *xr =
                        (const ar_block_a8 *)(const void *)(x + (size_t)t * stride);
                    ref.pack8x(n, xr, lane, xa + (size_t)t * xstride);
                    k.pack8x(n, xr, lane, xb + (size_t)t * xstride);
                    if (memcmp(xa + (size_t)t * xstride, xb + (size_t)t * xstride,
                               ng * sizeof *xa) != 0)
                        fail_msg("%s %s pack8x differs from scalar (%s)", ar_cpu_tier_name(tier),
                                 traits(type)->name, what);
                    for (int r = 0; r < MAX_NW; r++) {
                        const float want = ref.vec_dot8[type](n, w + (size_t)r * wrow, xr);
                        const float got = k.vec_dot8[type](n, w + (size_t)r * wrow, xr);
                        if (!same_bits(got, want))
                            fail_msg("%s %s vec_dot8 n=%lld (%s) row %d token %d: %.9g, scalar "
                                     "%.9g",
                                     ar_cpu_tier_name(tier), traits(type)->name, (long long)n, what,
                                     r, t, (double)got, (double)want);
                    }
                }
                for (int nw = 1; nw <= MAX_NW; nw++) {
                    static const int nxs[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 32};
                    for (int xi = 0; xi < 11; xi++) {
                        if (n == 8960 && nw > 3 && nw < MAX_NW && nxs[xi] > 9) continue;
                        compare_gemm(&k, &ref, type, w, pb, x, stride, xb, xstride, n, nw, nxs[xi],
                                     what);
                    }
                }
            }
            free(xb);
            free(xa);
            free(pb);
            free(pa);
            free(x);
            free(w);
        }
    }
}

static void test_scalar(void **state) {
    (void)state;
    check_tier(AR_CPU_SCALAR);
}

static void test_avx512(void **state) {
    (void)state;
    check_tier(AR_CPU_AVX512);
}

static void test_avx2_none(void **state) {
    (void)state;
    ar_kernels k;
    if (ar_kernels_get(AR_CPU_AVX2, &k) != AR_OK) {
        printf("# avx2: not on this CPU, skipped\n");
        return;
    }
    for (int t = 0; t < AR_N_TYPES; t++) {
        assert_null(k.vec_dot8[t]);
        assert_int_equal(k.lanes8[t], 0);
    }
}

/* --- Speed (AR_GEMM8_BENCH=1) ----------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_speed(void **state) {
    (void)state;
    const char *env = getenv("AR_GEMM8_BENCH");
    if (!env || strcmp(env, "1") != 0) return;
    ar_kernels k, ref;
    if (ar_kernels_get(AR_CPU_AUTO, &k) != AR_OK || !k.vec_dot8[AR_TYPE_Q4_K]) return;
    assert_int_equal(ar_kernels_get(AR_CPU_SCALAR, &ref), AR_OK);
    enum { NW = 8, NX = 128 };
    static const int64_t sizes[] = {1536, 8960};
    for (int si = 0; si < 2; si++) {
        const int64_t n = sizes[si];
        const size_t nblk = (size_t)(n / QK_K), row = nblk * sizeof(ar_block_a8);
        for (int ti = 0; ti < N_TYPES; ti++) {
            const ar_type type = lane_types[ti];
            const size_t wrow = row_bytes(type, n);
            uint8_t *w = malloc(NW * wrow), *x = aligned_alloc(64, NX * row);
            const int lane = k.lanes8[type];
            const size_t ng = (size_t)ar_lane_groups(n, lane);
            ar_block_w8 *packed = aligned_alloc(64, NW * ng * sizeof *packed);
            ar_block_x8 *xp = aligned_alloc(64, NX * ng * sizeof *xp);
            float y[NX * NW];
            volatile float sink = 0.0f;
            assert_true(w && x && packed && xp);
            fill_weights(type, w, n, NW, 0);
            fill_acts(&ref, x, row, NX, n, 1.0f, 0);
            for (int t = 0; t < NX; t++)
                k.pack8x(n, (const ar_block_a8 *)(const void *)(x + (size_t)t * row), lane,
                         xp + (size_t)t * ng);
            double best_d = 1e9, best_g = 1e9, best_p = 1e9;
            for (int rep = 0; rep < 20; rep++) {
                double t0 = now_s();
                for (int t = 0; t < NX; t++)
                    for (int r = 0; r < NW; r++)
                        sink += k.vec_dot8[type](n, w + (size_t)r * wrow, x + (size_t)t * row);
                double t1 = now_s();
                for (int r = 0; r < NW; r++)
                    k.pack8[type](n, w + (size_t)r * wrow, packed + (size_t)r * ng);
                k.gemm8(n, packed, ng, NW, xp, ng, NX, lane, y, NW);
                double t2 = now_s();
                for (int r = 0; r < NW; r++)
                    k.pack8[type](n, w + (size_t)r * wrow, packed + (size_t)r * ng);
                double t3 = now_s();
                best_p = t3 - t2 < best_p ? t3 - t2 : best_p;
                best_d = t1 - t0 < best_d ? t1 - t0 : best_d;
                best_g = t2 - t1 < best_g ? t2 - t1 : best_g;
            }
            const double pairs = NW * NX, ops = 2.0 * (double)n * pairs;
            printf("# %s n=%lld %s: vec_dot8 %.1f ns (%.1f GOPS), gemm8 %.1f ns (%.1f GOPS) per "
                   "row x token; pack8 %.2f ns per weight\n",
                   ar_cpu_tier_name(k.tier), (long long)n, traits(type)->name, 1e9 * best_d / pairs,
                   ops / best_d * 1e-9, 1e9 * best_g / pairs, ops / best_g * 1e-9,
                   1e9 * best_p / (double)(NW * n));
            free(xp);
            free(packed);
            free(x);
            free(w);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_vs_dequant),
        cmocka_unit_test(test_scalar),
        cmocka_unit_test(test_avx512),
        cmocka_unit_test(test_avx2_none),
        cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
