/*
 * test_kernels_gemm16.c - the k-quants' GEMM path (src/kernels/gemm16_*.c): pack16 and
 * gemm16 of every CPU tier that has them, against that tier's vec_dot16.
 *
 * - pack16 of every tier byte-identical to the scalar tier's (random valid blocks and
 *   extreme ones), and the scalar pack16 against the dequantized weights: d * w[i] -
 *   dmin * m[i / 16] equals the reference to_float of element i up to float rounding.
 * - gemm16 bit-identical (memcmp) to the same tier's vec_dot16 for every (row, token), for
 *   Q2_K..Q6_K, rows of 256, 1536 and 8960 elements, every count of weight rows 1..9 and of
 *   tokens 1..9 plus 13 and 32 (all edge tiles of the 2 x 4 micro-kernel), activation rows
 *   at the engine's stride and at a stride that is not a multiple of 64 bytes, random
 *   activations of several magnitudes and the extreme blocks that pin the int32 lane bound;
 *   no write outside y[t * ldy + r] for r < nw, t < nx (sentinels around, ldy > nw).
 * - The AVX2 tier has no gemm16 (NULL: the engine keeps vec_dot16_n there).
 *
 * Set AR_GEMM16_BENCH=1 to print ns per (row, token) of vec_dot16_n (4 tokens a call) and
 * gemm16 (pack included, 8 rows x 32 tokens) with GOPS (it only prints).
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

static const ar_type qk_types[] = {AR_TYPE_Q2_K, AR_TYPE_Q3_K, AR_TYPE_Q4_K, AR_TYPE_Q5_K,
                                   AR_TYPE_Q6_K};
#define N_TYPES (int)(sizeof qk_types / sizeof qk_types[0])

static uint64_t rng = 0x243f6a8885a308d3u;
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

static ar_kernels kernels_of(ar_cpu_tier tier) {
    ar_kernels k;
    assert_int_equal(ar_kernels_get(tier, &k), AR_OK);
    return k;
}

/* Byte offsets of the float16 super-scales d and dmin (-1: none). */
static void scale_offsets(ar_type type, int *off_d, int *off_dmin) {
    *off_dmin = -1;
    switch (type) {
    case AR_TYPE_Q2_K: *off_d = 80, *off_dmin = 82; return;
    case AR_TYPE_Q3_K: *off_d = 108; return;
    case AR_TYPE_Q6_K: *off_d = 208; return;
    default: *off_d = 0, *off_dmin = 2; return;
    }
}

static void put_f16(uint8_t *p, float f) {
    const uint16_t h = ar_fp32_to_fp16(f);
    memcpy(p, &h, 2);
}

/* nblk blocks of `type`: random bytes with sane super-scales, or (extreme) every byte 0xff
 * (Q6_K: scales 127 or -128) with d = 1, dmin = 0.5. */
static void fill_weights(ar_type type, uint8_t *p, int64_t nblk, int extreme) {
    const int size = traits(type)->type_size;
    int off_d, off_dmin;
    scale_offsets(type, &off_d, &off_dmin);
    for (int64_t b = 0; b < nblk; b++, p += size) {
        for (int i = 0; i < size; i++) p[i] = extreme ? 0xff : (uint8_t)rnd_u32();
        if (extreme && type == AR_TYPE_Q6_K) memset(p + 192, (rnd_u32() & 1) ? 0x7f : 0x80, 16);
        const float mag = ldexpf(1.0f + (rnd_sym() + 1.0f) / 2.0f, -14 + (int)(rnd_u32() % 10));
        put_f16(p + off_d, extreme ? 1.0f : (rnd_u32() & 1) ? -mag : mag);
        if (off_dmin >= 0) put_f16(p + off_dmin, extreme ? 0.5f : mag / 4.0f);
    }
}

/* nx Q16K rows of n elements, `stride` bytes apart: random floats quantized by the scalar
 * tier at magnitude `mag`, or (extreme) every integer at +-16383. */
static void fill_acts(const ar_kernels *ref, uint8_t *x, size_t stride, int nx, int64_t n,
                      float mag, int extreme) {
    float *f = malloc((size_t)n * sizeof *f);
    assert_non_null(f);
    for (int t = 0; t < nx; t++) {
        ar_block_q16k *row = (ar_block_q16k *)(void *)(x + (size_t)t * stride);
        if (!extreme) {
            for (int64_t i = 0; i < n; i++) f[i] = mag * rnd_sym();
            ref->quantize_q16k(f, row, n);
            continue;
        }
        const int a = (rnd_u32() & 1) ? -16383 : 16383, alt = (int)(rnd_u32() & 1);
        for (int64_t b = 0; b < n / AR_QK16K; b++) {
            memset(&row[b], 0, sizeof row[b]);
            row[b].d = 0.25f;
            for (int i = 0; i < AR_QK16K; i++) row[b].qs[i] = (int16_t)(alt && (i & 1) ? -a : a);
            for (int j = 0; j < 16; j++) {
                int32_t s = 0;
                for (int i = 16 * j; i < 16 * j + 16; i++) s += row[b].qs[i];
                row[b].bsums[j] = s;
            }
        }
    }
    free(f);
}

/* --- pack16 ------------------------------------------------------------------------------- */

static void test_pack_scalar_dequant(void **state) {
    (void)state;
    const ar_kernels ref = kernels_of(AR_CPU_SCALAR);
    const int64_t n = 1024;
    for (int ti = 0; ti < N_TYPES; ti++) {
        const ar_type type = qk_types[ti];
        uint8_t *w = malloc((size_t)(n / QK_K) * (size_t)traits(type)->type_size);
        ar_block_w16 *p = malloc((size_t)(n / QK_K) * sizeof *p);
        float *want = malloc((size_t)n * sizeof *want);
        assert_true(w && p && want);
        fill_weights(type, w, n / QK_K, 0);
        traits(type)->to_float(w, want, n);
        ref.pack16[type](n, w, p);
        for (int64_t i = 0; i < n; i++) {
            const ar_block_w16 *b = &p[i / AR_QK16K];
            const int e = (int)(i % AR_QK16K);
            const double got = (double)b->d * b->w[e] - (double)b->dmin * b->m[e / 16];
            const double tol = 1e-6 * (fabs((double)b->d * b->w[e]) + fabs((double)b->dmin * 64));
            if (fabs(got - (double)want[i]) > tol)
                fail_msg("%s pack16 element %lld: %.9g, to_float %.9g", traits(type)->name,
                         (long long)i, got, (double)want[i]);
        }
        free(want);
        free(p);
        free(w);
    }
}

static void test_pack_tiers(void **state) {
    (void)state;
    const ar_kernels ref = kernels_of(AR_CPU_SCALAR);
    const int64_t n = 1536;
    for (int tier = AR_CPU_AVX2; tier <= AR_CPU_AVX512; tier++) {
        ar_kernels k;
        if (ar_kernels_get((ar_cpu_tier)tier, &k) != AR_OK) {
            printf("# %s: not on this CPU, pack16 skipped\n", ar_cpu_tier_name(tier));
            continue;
        }
        for (int ti = 0; ti < N_TYPES; ti++) {
            const ar_type type = qk_types[ti];
            const size_t wbytes = (size_t)(n / QK_K) * (size_t)traits(type)->type_size;
            uint8_t *w = malloc(wbytes + 1);
            ar_block_w16 *a = malloc((size_t)(n / QK_K) * sizeof *a);
            ar_block_w16 *b = malloc((size_t)(n / QK_K) * sizeof *b);
            assert_true(w && a && b);
            for (int extreme = 0; extreme < 2; extreme++) {
                fill_weights(type, w + 1, n / QK_K, extreme); /* odd address */
                memset(a, 0xaa, (size_t)(n / QK_K) * sizeof *a);
                memset(b, 0x55, (size_t)(n / QK_K) * sizeof *b);
                ref.pack16[type](n, w + 1, a);
                k.pack16[type](n, w + 1, b);
                if (memcmp(a, b, (size_t)(n / QK_K) * sizeof *a) != 0)
                    fail_msg("%s %s pack16 differs from scalar (extreme %d)",
                             ar_cpu_tier_name(tier), traits(type)->name, extreme);
            }
            free(b);
            free(a);
            free(w);
        }
    }
}

/* --- gemm16 ------------------------------------------------------------------------------- */

#define MAX_NW 9
#define MAX_NX 32

/* gemm16 of tier k on nw packed rows x nx tokens against k's vec_dot16, bit for bit. */
static void compare_gemm(const ar_kernels *k, ar_type type, const uint8_t *w,
                         const ar_block_w16 *packed, const uint8_t *x, size_t stride, int64_t n,
                         int nw, int nx, const char *what) {
    const size_t wrow = (size_t)(n / QK_K) * (size_t)traits(type)->type_size;
    const size_t nblk = (size_t)(n / QK_K), ldy = MAX_NW + 2;
    float y[(MAX_NX + 2) * (MAX_NW + 2)];
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++) y[i] = -12345.0f;
    k->gemm16[type](n, packed, nblk, nw, x, stride, nx, y + ldy + 1, ldy);
    for (int t = 0; t < nx; t++)
        for (int r = 0; r < nw; r++) {
            const float want = k->vec_dot16[type](n, w + (size_t)r * wrow, x + (size_t)t * stride);
            const float got = y[(size_t)(t + 1) * ldy + (size_t)r + 1];
            if (memcmp(&got, &want, sizeof got) != 0)
                fail_msg("%s %s gemm16 n=%lld nw=%d nx=%d (%s): row %d token %d gives %.9g, "
                         "vec_dot16 %.9g",
                         ar_cpu_tier_name(k->tier), traits(type)->name, (long long)n, nw, nx, what,
                         r, t, (double)got, (double)want);
        }
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++) {
        const size_t t = i / ldy, r = i % ldy;
        const int inside = t >= 1 && t <= (size_t)nx && r >= 1 && r <= (size_t)nw;
        if (!inside && y[i] != -12345.0f)
            fail_msg("%s %s gemm16 nw=%d nx=%d wrote outside its rows and tokens (%zu, %zu)",
                     ar_cpu_tier_name(k->tier), traits(type)->name, nw, nx, t, r);
    }
}

static void check_gemm(ar_cpu_tier tier) {
    ar_kernels k;
    if (ar_kernels_get(tier, &k) != AR_OK) {
        printf("# %s: not on this CPU, skipped\n", ar_cpu_tier_name(tier));
        return;
    }
    const ar_kernels ref = kernels_of(AR_CPU_SCALAR);
    static const int64_t sizes[] = {256, 1536, 8960};
    for (int si = 0; si < 3; si++) {
        const int64_t n = sizes[si];
        const size_t nblk = (size_t)(n / QK_K), row = nblk * sizeof(ar_block_q16k);
        for (int ti = 0; ti < N_TYPES; ti++) {
            const ar_type type = qk_types[ti];
            assert_non_null(k.gemm16[type]);
            const size_t wrow = nblk * (size_t)traits(type)->type_size;
            uint8_t *w = malloc(MAX_NW * wrow);
            ar_block_w16 *packed = aligned_alloc(64, MAX_NW * nblk * sizeof *packed);
            /* strides: the engine's (whole blocks) and one that is not a multiple of 64 */
            const size_t strides[2] = {row, row + 36};
            uint8_t *x = malloc(MAX_NX * strides[1]);
            assert_true(w && packed && x);
            for (int variant = 0; variant < 4; variant++) {
                const int extreme = variant == 3;
                const size_t stride = strides[variant & 1];
                if (n == 8960 && variant == 1) continue; /* time: the big rows once each way */
                fill_weights(type, w, (int64_t)(MAX_NW * nblk), extreme);
                for (int r = 0; r < MAX_NW; r++)
                    k.pack16[type](n, w + (size_t)r * wrow, packed + (size_t)r * nblk);
                fill_acts(&ref, x, stride, MAX_NX, n, variant == 2 ? 1e4f : 1.0f, extreme);
                const char *what = extreme ? "extreme" : variant == 2 ? "large" : "random";
                for (int nw = 1; nw <= MAX_NW; nw++) {
                    static const int nxs[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 32};
                    for (int xi = 0; xi < 11; xi++) {
                        if (n == 8960 && nw > 3 && nw < MAX_NW && nxs[xi] > 9) continue;
                        compare_gemm(&k, type, w, packed, x, stride, n, nw, nxs[xi], what);
                    }
                }
            }
            free(x);
            free(packed);
            free(w);
        }
    }
}

static void test_gemm_scalar(void **state) {
    (void)state;
    check_gemm(AR_CPU_SCALAR);
}

static void test_gemm_avx512(void **state) {
    (void)state;
    check_gemm(AR_CPU_AVX512);
}

static void test_gemm_avx2_none(void **state) {
    (void)state;
    ar_kernels k;
    if (ar_kernels_get(AR_CPU_AVX2, &k) != AR_OK) {
        printf("# avx2: not on this CPU, skipped\n");
        return;
    }
    for (int ti = 0; ti < N_TYPES; ti++) assert_null(k.gemm16[qk_types[ti]]);
}

/* --- Speed (AR_GEMM16_BENCH=1) ------------------------------------------------------------ */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_speed(void **state) {
    (void)state;
    const char *env = getenv("AR_GEMM16_BENCH");
    if (!env || strcmp(env, "1") != 0) return;
    ar_kernels k;
    if (ar_kernels_get(AR_CPU_AUTO, &k) != AR_OK || !k.gemm16[AR_TYPE_Q4_K]) return;
    const ar_kernels ref = kernels_of(AR_CPU_SCALAR);
    enum { NW = 8, NX = 32 };
    static const int64_t sizes[] = {1536, 8960};
    for (int si = 0; si < 2; si++) {
        const int64_t n = sizes[si];
        const size_t nblk = (size_t)(n / QK_K), row = nblk * sizeof(ar_block_q16k);
        for (int ti = 0; ti < N_TYPES; ti++) {
            const ar_type type = qk_types[ti];
            const size_t wrow = nblk * (size_t)traits(type)->type_size;
            uint8_t *w = malloc(NW * wrow), *x = aligned_alloc(64, NX * row);
            ar_block_w16 *packed = aligned_alloc(64, NW * nblk * sizeof *packed);
            float y[NX * NW], ys[AR_MAX_NR];
            assert_true(w && x && packed);
            fill_weights(type, w, (int64_t)(NW * nblk), 0);
            fill_acts(&ref, x, row, NX, n, 1.0f, 0);
            double best_n = 1e9, best_g = 1e9;
            for (int rep = 0; rep < 20; rep++) {
                double t0 = now_s();
                for (int t = 0; t < NX; t += AR_MAX_NR)
                    for (int r = 0; r < NW; r++)
                        k.vec_dot16_n[type](n, w + (size_t)r * wrow, x + (size_t)t * row, row,
                                            AR_MAX_NR, ys);
                double t1 = now_s();
                for (int r = 0; r < NW; r++)
                    k.pack16[type](n, w + (size_t)r * wrow, packed + (size_t)r * nblk);
                k.gemm16[type](n, packed, nblk, NW, x, row, NX, y, NW);
                double t2 = now_s();
                best_n = t1 - t0 < best_n ? t1 - t0 : best_n;
                best_g = t2 - t1 < best_g ? t2 - t1 : best_g;
            }
            const double pairs = NW * NX, ops = 2.0 * (double)n * pairs;
            printf("# %s n=%lld %s: vec_dot16_n %.1f ns (%.1f GOPS), gemm16 %.1f ns (%.1f GOPS) "
                   "per row x token, %.2fx\n",
                   ar_cpu_tier_name(k.tier), (long long)n, traits(type)->name, 1e9 * best_n / pairs,
                   ops / best_n * 1e-9, 1e9 * best_g / pairs, ops / best_g * 1e-9, best_n / best_g);
            free(packed);
            free(x);
            free(w);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_scalar_dequant), cmocka_unit_test(test_pack_tiers),
        cmocka_unit_test(test_gemm_scalar),         cmocka_unit_test(test_gemm_avx512),
        cmocka_unit_test(test_gemm_avx2_none),      cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
