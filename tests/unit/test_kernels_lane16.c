/*
 * test_kernels_lane16.c - float weights in 16-bit lanes (src/kernels/lane16_*.c): pack_l16
 * (F16, BF16 rows), quantize_l16 and gemm_l16 of every CPU tier (tiers the CPU lacks are
 * skipped). The scalar tier defines every result (kernels.h); the others must give its bytes.
 *
 * - The table: the scalar and AVX-512 tiers have pack_l16 for F16 and BF16 (NULL for every
 *   other type), quantize_l16 and gemm_l16; the AVX2 tier has none (the engine keeps float
 *   rows there).
 * - The scalar form against plain arithmetic: packed weights against the F16 / BF16 values
 *   (scale a power of two with 2^(W_SHIFT - 1) <= amax / scale < 2^W_SHIFT; elements of
 *   magnitude 1024 scale and above exact, as a float16's 11 bits fit, the others within
 *   scale / 2; lanes past the row's end all zero), quantized activations within dx / 2 of
 *   the floats, and gemm_l16 against the product in double of the dequantized packed weights
 *   (scale * u) and activations (dx * q): within float32 rounding of the sum of |terms|;
 *   halfway cases of both roundings go away from zero.
 * - quantize_l16 and pack_l16 of every tier byte-identical (memcmp over whole groups, padding
 *   lanes included) to the scalar ones: rows of several magnitudes lane by lane, lanes with
 *   inf / NaN, all-zero lanes, subnormal values, random bit patterns, halfway cases of the
 *   rounding, activation lanes at the dx >= FLT_MIN edge; n = 32, 480, 512, 1536, 8960
 *   (whole, partial and half groups); inputs unaligned and ending where their allocation ends
 *   (ASan builds catch a read past n).
 * - gemm_l16 of every tier bit-identical (memcmp; NaN results only both NaN, see
 *   same_result) to the scalar one on each (row, token) alone, for n = 32, 544, 1536, 2080, 8960,
 *   rows 1..9 and 17, tokens 1..9, 13, 32, 33 (every edge of the micro-tiles and blocks), row
 *   and token strides larger than a row, lanes with NaN scales; nothing written outside
 *   y[t * ldy + r].
 * - The int32 bound: every u = +-W_LIM and every q = +-X_LIM (blocks built directly), results
 *   equal to the exact sums of the defined float operations, in every tier.
 *
 * AR_LANE16_BENCH=1 prints ns per (row, token) and GOPS of gemm_l16 (n = 1536 and 8960, 8
 * rows x 128 tokens, and 2048 rows x 1 token with its weight bandwidth), and ns per element
 * of pack_l16 and quantize_l16. It only prints.
 */
#include "testutil.h"

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/types.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- Helpers ----------------------------------------------------------------------------- */

static uint64_t rng = 0x243f6a8885a308d3u;
static uint32_t rnd_u32(void) {
    return ar_test_rnd_u32(&rng);
}
static float rnd_sym(void) { /* (-1, 1) */
    return ar_test_rnd_sym(&rng);
}

/* The form's constants (kernels.h). */
#define W_SHIFT AR_L16_WSHIFT
#define W_LIM   AR_L16_WLIM
#define X_LIM   AR_L16_XLIM

static const ar_type half_types[] = {AR_TYPE_F16, AR_TYPE_BF16};

static const char *type_name(ar_type t) {
    return t == AR_TYPE_F16 ? "F16" : "BF16";
}

/* The 16-bit pattern of f in type t, rounded to nearest even (NaN stays NaN). */
static uint16_t to_half(ar_type t, float f) {
    if (t == AR_TYPE_F16) return ar_fp32_to_fp16(f);
    const uint32_t b = ar_f32_to_bits(f);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40u);
    return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

static float from_half(ar_type t, uint16_t h) {
    return t == AR_TYPE_F16 ? ar_fp16_to_fp32(h) : ar_bf16_to_fp32(h);
}

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    assert_non_null(p);
    return p;
}

static int same_bits(float a, float b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

/* The same result: the same bits, or both NaN. Which of two NaNs of different signs an
 * addition passes on depends on the order of its operands, which C leaves to the compiler
 * (a + b may be emitted as b + a), so the reference does not define a NaN's sign or payload:
 * a lane with a NaN scale (+NaN) beside one where (float)isum * (scale * dx) is 0 * inf (the
 * default NaN, negative on x86) may give either. */
static int same_result(float a, float b) {
    return same_bits(a, b) || (isnan(a) && isnan(b));
}

/* Where element i (0..31) of lane L sits in a group (kernels.h). */
static int chunk_index(int lane, int i) {
    return 32 * (i / 2) + 2 * lane + i % 2;
}

/* The tiers this CPU runs that have the form (AVX2 has not: the engine keeps float rows
 * there), filled into k[]; returns how many. */
static int tiers(ar_kernels k[3]) {
    static const ar_cpu_tier all[] = {AR_CPU_SCALAR, AR_CPU_AVX2, AR_CPU_AVX512};
    int n = 0;
    for (int i = 0; i < 3; i++) {
        const ar_status st = ar_kernels_get(all[i], &k[n]);
        if (st == AR_ERR_UNSUPPORTED) {
            printf("# %s: not on this CPU, skipped\n", ar_cpu_tier_name(all[i]));
            continue;
        }
        assert_int_equal(st, AR_OK);
        if (k[n].gemm_l16) n++;
    }
    return n;
}

/* Lane kinds of the generated rows. */
enum {
    K_PLAIN,   /* uniform in (-mag, mag) */
    K_WIDE,    /* random exponents over about 2^-20 .. 2^0 of mag (many tiny elements) */
    K_ZERO,    /* all zero (+0 and -0) */
    K_ONE_INF, /* plain, with one inf */
    K_ONE_NAN, /* plain, with one NaN */
    K_TINY,    /* subnormal values (floats; for F16 its own subnormals) */
    K_BITS,    /* random bit patterns of the element type (anything, NaN and inf included) */
    K_HALVES,  /* amax X_LIM (activations: dx = 1) or 2047 * 16 (weights), halfway cases */
    K_DXMIN,   /* amax X_LIM * FLT_MIN or a neighbour: dx = FLT_MIN, the smallest kept */
    N_KINDS
};

/* Rows of moderate magnitudes only (the accuracy test: products that neither overflow nor
 * underflow float32). */
static int tame;

/* A magnitude for a lane of type t (0: float activations). */
static float lane_mag(ar_type t) {
    static const float f16[] = {1e-3f, 0.05f, 1.0f, 30.0f, 6e4f};
    static const float wide[] = {1e-30f, 1e-3f, 1.0f, 1e4f, 1e30f};
    static const float moderate[] = {1e-3f, 0.05f, 1.0f, 30.0f, 1e3f};
    const uint32_t i = rnd_u32() % 5;
    return tame ? moderate[i] : t == AR_TYPE_F16 ? f16[i] : wide[i];
}

/* 32 floats of lane kind `kind` for type t (0: float activations), as the type holds them. */
static void fill_lane(ar_type t, int kind, float *v) {
    const float mag = lane_mag(t);
    for (int i = 0; i < 32; i++) {
        float f;
        switch (kind) {
        case K_WIDE: f = ldexpf(rnd_sym(), -(int)(rnd_u32() % 21)) * mag; break;
        case K_ZERO: f = (rnd_u32() & 1) ? 0.0f : -0.0f; break;
        case K_TINY:
            f = t == AR_TYPE_F16 || tame ? ldexpf(rnd_sym(), -14) /* F16 subnormals */
                                         : ldexpf(rnd_sym(), -126 - (int)(rnd_u32() % 10));
            break;
        case K_BITS: {
            const uint32_t b = rnd_u32();
            f = t ? from_half(t, (uint16_t)b) : ar_f32_from_bits(b);
            break;
        }
        case K_HALVES:
            f = t ? ldexpf((float)((int)(rnd_u32() % 4095) - 2047) / 2.0f, (int)(rnd_u32() % 5))
                  : (float)((int)(rnd_u32() % (2 * X_LIM)) - X_LIM) + 0.5f;
            break;
        default: f = mag * rnd_sym(); break;
        }
        v[i] = f;
    }
    if (kind == K_HALVES) v[rnd_u32() % 32] = t ? 2047.0f * 16.0f : (float)X_LIM; /* amax */
    if (kind == K_ONE_INF) v[rnd_u32() % 32] = (rnd_u32() & 1) ? INFINITY : -INFINITY;
    if (kind == K_ONE_NAN) v[rnd_u32() % 32] = NAN;
    if (kind == K_DXMIN && !tame) {
        const float edge = (float)X_LIM * FLT_MIN, r = rnd_sym(); /* exact: 13 bits */
        for (int i = 0; i < 32; i++) v[i] = edge * rnd_sym();
        v[rnd_u32() % 32] = r < -0.3f  ? nextafterf(edge, 0.0f)
                            : r > 0.3f ? nextafterf(edge, 1.0f)
                                       : edge;
    }
    if (t)
        for (int i = 0; i < 32; i++) v[i] = from_half(t, to_half(t, v[i]));
}

/* A row of n floats (n a multiple of 32), each lane of a random kind; `special` = 0 keeps
 * to the finite kinds. */
static void fill_row(ar_type t, float *v, int64_t n, int special) {
    static const int finite_kinds[] = {K_PLAIN, K_PLAIN, K_WIDE, K_ZERO, K_TINY, K_HALVES, K_DXMIN};
    for (int64_t l = 0; l < n / 32; l++) {
        const int kind = special ? (int)(rnd_u32() % N_KINDS) : finite_kinds[rnd_u32() % 7];
        fill_lane(t, kind, v + 32 * l);
    }
}

/* --- The table --------------------------------------------------------------------------- */

static void test_table(void **state) {
    (void)state;
    static const ar_cpu_tier all[] = {AR_CPU_SCALAR, AR_CPU_AVX2, AR_CPU_AVX512};
    for (int i = 0; i < 3; i++) {
        ar_kernels k;
        if (ar_kernels_get(all[i], &k) != AR_OK) continue;
        const bool has = all[i] != AR_CPU_AVX2; /* AVX2 keeps float rows */
        for (int ty = 0; ty < AR_N_TYPES; ty++)
            if (has && (ty == AR_TYPE_F16 || ty == AR_TYPE_BF16))
                assert_non_null(k.pack_l16[ty]);
            else
                assert_null(k.pack_l16[ty]);
        assert_true(!k.quantize_l16 == !has);
        assert_true(!k.gemm_l16 == !has);
    }
}

/* --- The scalar form against plain arithmetic ---------------------------------------------- */

/* Packed weights of one row against its values f[0..n). */
static void check_packed(const float *f, int64_t n, const ar_block_wl16 *p) {
    for (int64_t g = 0; g < ar_lane_groups(n, 32); g++)
        for (int lane = 0; lane < 16; lane++) {
            const ar_block_wl16 *b = &p[g];
            const int64_t first = 512 * g + 32 * lane;
            const float scale = b->scale[lane];
            if (first >= n) { /* past the end: all zero */
                assert_true(same_bits(scale, 0.0f));
                for (int i = 0; i < 32; i++) assert_int_equal(b->u[chunk_index(lane, i)], 0);
                continue;
            }
            float amax = 0.0f;
            for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(f[first + i]));
            if (amax == 0.0f) {
                assert_true(same_bits(scale, 0.0f));
                continue;
            }
            int e;
            (void)frexpf(scale, &e);
            if (scale != ldexpf(0.5f, e)) fail_msg("scale %g is not a power of two", (double)scale);
            if (!(amax / scale >= ldexpf(1.0f, W_SHIFT - 1) &&
                  amax / scale < ldexpf(1.0f, W_SHIFT)))
                fail_msg("lane amax %g, scale %g: amax / scale outside [2^%d, 2^%d)", (double)amax,
                         (double)scale, W_SHIFT - 1, W_SHIFT);
            for (int i = 0; i < 32; i++) {
                const int u = b->u[chunk_index(lane, i)];
                const double w = f[first + i], got = (double)scale * u;
                assert_true(u >= -W_LIM && u <= W_LIM);
                /* |w| >= 1024 scale: an integer times scale (11 significant bits of a float16,
                 * 8 of a bfloat16), exact; below: within scale / 2 */
                const int top = fabs(w) >= 1024.0 * scale;
                if (top ? got != w : fabs(got - w) > scale / 2.0)
                    fail_msg("n=%lld element %lld: %.9g packed as %d * %g", (long long)n,
                             (long long)(first + i), w, u, (double)scale);
            }
        }
}

static void test_scalar_vs_exact(void **state) {
    (void)state;
    ar_kernels ref;
    assert_int_equal(ar_kernels_get(AR_CPU_SCALAR, &ref), AR_OK);
    static const int64_t sizes[] = {1536, 8960};
    tame = 1;
    for (int si = 0; si < 2; si++) {
        const int64_t n = sizes[si], ng = ar_lane_groups(n, 32);
        float *wf = xmalloc((size_t)n * sizeof *wf), *xf = xmalloc((size_t)n * sizeof *xf);
        uint16_t *wh = xmalloc((size_t)n * sizeof *wh);
        ar_block_wl16 *wp = xmalloc((size_t)ng * sizeof *wp);
        ar_block_xl16 *xq = xmalloc((size_t)ng * sizeof *xq);
        for (int rep = 0; rep < 40; rep++) {
            const ar_type t = half_types[rep & 1];
            fill_row(t, wf, n, 0);
            for (int64_t i = 0; i < n; i++) wh[i] = to_half(t, wf[i]);
            fill_row(0, xf, n, 0);
            ref.pack_l16[t](n, wh, wp);
            ref.quantize_l16(xf, xq, n);
            check_packed(wf, n, wp);
            double want = 0.0, mag = 0.0;
            for (int64_t i = 0; i < n; i++) {
                const int64_t g = i / 512;
                const int lane = (int)(i % 512 / 32), p = chunk_index(lane, (int)(i % 32));
                const double dx = xq[g].dx[lane], xv = dx * xq[g].q[p];
                /* the activations: within dx / 2 of the floats, plus the roundings of 1 / dx
                 * and x * (1 / dx) (2^-24 each, relative, of up to X_LIM <= 32767) and of dx
                 * itself (2^-24 of |x|): below 0.006 dx in all (dx = 0: a lane below X_LIM *
                 * FLT_MIN, all zero) */
                if (dx > 0.0 ? fabs(xv - (double)xf[i]) > dx * 0.506
                             : xq[g].q[p] != 0 || fabs((double)xf[i]) > X_LIM * (double)FLT_MIN)
                    fail_msg("activation %lld: %.9g quantized as %d * %g", (long long)i,
                             (double)xf[i], xq[g].q[p], dx);
                const double term = (double)wp[g].scale[lane] * wp[g].u[p] * xv;
                want += term;
                mag += fabs(term);
            }
            float got;
            ref.gemm_l16(n, wp, (size_t)ng, 1, xq, (size_t)ng, 1, &got, 1);
            /* Each lane's integer sum is exact; (float)isum and scale * dx round once each
             * (2^-24 relative), each of the ng fused steps once (at most 2^-24 of the sum of
             * |terms|), the four levels of the final sum once each: (ng + 6) 2^-24 in all,
             * to first order; 8 for the second-order terms. */
            const double tol = (double)(ng + 8) * 0x1p-24 * mag;
            if (fabs((double)got - want) > tol)
                fail_msg("%s n=%lld rep %d: gemm_l16 %.9g, exact product %.9g (sum of |terms| "
                         "%.3g)",
                         type_name(t), (long long)n, rep, (double)got, want, mag);
        }
        free(xq);
        free(wp);
        free(wh);
        free(xf);
        free(wf);
    }
    tame = 0;
}

/* Halfway cases of both roundings go away from zero (roundf): activations with dx = 1 (amax
 * X_LIM) and float16 weights with scale 1 (amax 2^(W_SHIFT - 1)) bring x.5 to it exactly. */
static void test_scalar_halfway(void **state) {
    (void)state;
    ar_kernels ref;
    assert_int_equal(ar_kernels_get(AR_CPU_SCALAR, &ref), AR_OK);
    float x[32];
    for (int i = 0; i < 32; i++) x[i] = (float)(i - 16) + 0.5f; /* -15.5 .. 14.5 */
    x[31] = (float)X_LIM;                                       /* dx = 1, id = 1 */
    ar_block_xl16 q;
    ref.quantize_l16(x, &q, 32);
    assert_true(q.dx[0] == 1.0f);
    for (int i = 0; i < 31; i++) assert_int_equal(q.q[chunk_index(0, i)], (int)roundf(x[i]));
    assert_int_equal(q.q[chunk_index(0, 13)], -3); /* -2.5 -> -3 */
    assert_int_equal(q.q[chunk_index(0, 30)], 15); /* 14.5 -> 15 */
    uint16_t h[32];
    for (int i = 0; i < 32; i++) h[i] = ar_fp32_to_fp16(x[i]);
    h[31] = ar_fp32_to_fp16(ldexpf(1.0f, W_SHIFT - 1)); /* frexpf e = W_SHIFT: scale 1 */
    ar_block_wl16 w;
    ref.pack_l16[AR_TYPE_F16](32, h, &w);
    assert_true(w.scale[0] == 1.0f);
    for (int i = 0; i < 31; i++) assert_int_equal(w.u[chunk_index(0, i)], (int)roundf(x[i]));
    assert_int_equal(w.u[chunk_index(0, 13)], -3); /* -2.5 -> -3 */
    assert_int_equal(w.u[chunk_index(0, 30)], 15); /* 14.5 -> 15 */
}

/* --- Every tier's packing and quantizing against the scalar tier's --------------------------- */

static const int64_t pack_sizes[] = {32, 480, 512, 1536, 8960};
#define N_PACK_SIZES 5

static void test_pack_quantize(void **state) {
    (void)state;
    ar_kernels k[3];
    const int nk = tiers(k);
    for (int si = 0; si < N_PACK_SIZES; si++) {
        const int64_t n = pack_sizes[si], ng = ar_lane_groups(n, 32);
        float *f = xmalloc((size_t)n * sizeof *f);
        /* inputs one element past an aligned start, ending where the allocation ends */
        float *xbuf = xmalloc((size_t)(n + 1) * sizeof *xbuf), *x = xbuf + 1;
        uint16_t *hbuf = xmalloc((size_t)(n + 1) * sizeof *hbuf), *h = hbuf + 1;
        ar_block_wl16 *wa = xmalloc((size_t)ng * sizeof *wa),
                      *wb = xmalloc((size_t)ng * sizeof *wb);
        ar_block_xl16 *xa = xmalloc((size_t)ng * sizeof *xa),
                      *xb = xmalloc((size_t)ng * sizeof *xb);
        for (int rep = 0; rep < 30; rep++) {
            const int special = rep % 3 != 0;
            fill_row(0, f, n, special);
            memcpy(x, f, (size_t)n * sizeof *x);
            memset(xa, 0xa5, (size_t)ng * sizeof *xa);
            k[0].quantize_l16(x, xa, n);
            for (int i = 1; i < nk; i++) {
                memset(xb, 0x5a, (size_t)ng * sizeof *xb);
                k[i].quantize_l16(x, xb, n);
                if (memcmp(xa, xb, (size_t)ng * sizeof *xa) != 0)
                    fail_msg("%s quantize_l16 n=%lld rep %d differs from scalar",
                             ar_cpu_tier_name(k[i].tier), (long long)n, rep);
            }
            for (int ti = 0; ti < 2; ti++) {
                const ar_type t = half_types[ti];
                fill_row(t, f, n, special);
                for (int64_t j = 0; j < n; j++) h[j] = to_half(t, f[j]);
                if (special && rep % 5 == 1) /* a whole row of random bit patterns */
                    for (int64_t j = 0; j < n; j++) h[j] = (uint16_t)rnd_u32();
                memset(wa, 0xa5, (size_t)ng * sizeof *wa);
                k[0].pack_l16[t](n, h, wa);
                for (int i = 1; i < nk; i++) {
                    memset(wb, 0x5a, (size_t)ng * sizeof *wb);
                    k[i].pack_l16[t](n, h, wb);
                    if (memcmp(wa, wb, (size_t)ng * sizeof *wa) != 0)
                        fail_msg("%s pack_l16 %s n=%lld rep %d differs from scalar",
                                 ar_cpu_tier_name(k[i].tier), type_name(t), (long long)n, rep);
                }
            }
        }
        free(xb);
        free(xa);
        free(wb);
        free(wa);
        free(hbuf);
        free(xbuf);
        free(f);
    }
}

/* --- gemm_l16 of every tier against the scalar one ---------------------------------------- */

#define MAX_NW   17
#define MAX_NX   33
#define SENTINEL -12345.0f

/* gemm_l16 of tier k on rows r0.. r0 + nw - 1 x tokens t0 .. t0 + nx - 1 against want[t *
 * MAX_NW + r] (the scalar tier on each pair alone), bit for bit; nothing written outside. */
static void compare_gemm(const ar_kernels *k, int64_t n, const ar_block_wl16 *w, size_t ws,
                         const ar_block_xl16 *x, size_t xs, int r0, int nw, int t0, int nx,
                         const float *want, const char *what) {
    const size_t ldy = (size_t)nw + 3;
    float *y = xmalloc((size_t)(nx + 2) * ldy * sizeof *y);
    for (size_t i = 0; i < (size_t)(nx + 2) * ldy; i++) y[i] = SENTINEL;
    k->gemm_l16(n, w + (size_t)r0 * ws, ws, nw, x + (size_t)t0 * xs, xs, nx, y + ldy + 1, ldy);
    for (int t = 0; t < nx; t++)
        for (int r = 0; r < nw; r++) {
            const float got = y[(size_t)(t + 1) * ldy + (size_t)r + 1];
            const float exp = want[(size_t)(t0 + t) * MAX_NW + (size_t)(r0 + r)];
            if (!same_result(got, exp))
                fail_msg("%s gemm_l16 n=%lld nw=%d nx=%d (%s): row %d token %d gives %.9g, "
                         "scalar %.9g",
                         ar_cpu_tier_name(k->tier), (long long)n, nw, nx, what, r0 + r, t0 + t,
                         (double)got, (double)exp);
        }
    for (size_t i = 0; i < (size_t)(nx + 2) * ldy; i++) {
        const size_t t = i / ldy, r = i % ldy;
        const int inside = t >= 1 && t <= (size_t)nx && r >= 1 && r <= (size_t)nw;
        if (!inside && !same_bits(y[i], SENTINEL))
            fail_msg("%s gemm_l16 n=%lld nw=%d nx=%d wrote outside its rows and tokens (%zu, %zu)",
                     ar_cpu_tier_name(k->tier), (long long)n, nw, nx, t, r);
    }
    free(y);
}

static void test_gemm(void **state) {
    (void)state;
    ar_kernels k[3];
    const int nk = tiers(k);
    /* 1, 2, 3 groups (one pass), 5 (passes of 2, 2 and 1 with a one-lane group) and 18 */
    static const int64_t sizes[] = {32, 544, 1536, 2080, 8960};
    static const int nws[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 17};
    static const int nxs[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 32, 33};
    for (int si = 0; si < 5; si++) {
        const int64_t n = sizes[si];
        const size_t ng = (size_t)ar_lane_groups(n, 32), ws = ng + 1, xs = ng + 3;
        float *f = xmalloc((size_t)n * sizeof *f);
        uint16_t *h = xmalloc((size_t)n * sizeof *h);
        ar_block_wl16 *w = xmalloc(MAX_NW * ws * sizeof *w);
        ar_block_xl16 *x = xmalloc(MAX_NX * xs * sizeof *x);
        float *want = xmalloc(MAX_NW * MAX_NX * sizeof *want);
        for (int variant = 0; variant < 2; variant++) {
            const char *what = variant ? "inf/NaN lanes" : "finite";
            memset(w, 0xa5, MAX_NW * ws * sizeof *w); /* the gaps between rows: garbage */
            memset(x, 0x5a, MAX_NX * xs * sizeof *x);
            for (int r = 0; r < MAX_NW; r++) {
                const ar_type t = half_types[r & 1];
                /* the special kinds in a few rows only, so that most results stay finite */
                fill_row(t, f, n, variant && r % 4 == 3);
                for (int64_t i = 0; i < n; i++) h[i] = to_half(t, f[i]);
                k[0].pack_l16[t](n, h, w + (size_t)r * ws);
            }
            for (int t = 0; t < MAX_NX; t++) {
                fill_row(0, f, n, variant && t % 5 == 4);
                k[0].quantize_l16(f, x + (size_t)t * xs, n);
            }
            for (int t = 0; t < MAX_NX; t++)
                for (int r = 0; r < MAX_NW; r++)
                    k[0].gemm_l16(n, w + (size_t)r * ws, ws, 1, x + (size_t)t * xs, xs, 1,
                                  &want[(size_t)t * MAX_NW + (size_t)r], 1);
            for (int i = 0; i < nk; i++)
                for (int wi = 0; wi < 10; wi++)
                    for (int xi = 0; xi < 12; xi++) {
                        const int nw = nws[wi], nx = nxs[xi];
                        /* time: the largest rows with a subset of the shapes (every edge
                         * count still meets every other once) */
                        if (n == 8960 && wi % 3 != 0 && xi % 4 != 0) continue;
                        const int r0 = (wi + xi) % (MAX_NW - nw + 1),
                                  t0 = (3 * wi + xi) % (MAX_NX - nx + 1);
                        compare_gemm(&k[i], n, w, ws, x, xs, r0, nw, t0, nx, want, what);
                    }
        }
        free(want);
        free(x);
        free(w);
        free(h);
        free(f);
    }
}

/* --- The int32 bound ---------------------------------------------------------------------- */

/* Every u = +-W_LIM, q = +-X_LIM (lanes past n zero): each lane's sum is 32 * W_LIM * X_LIM =
 * 2146959392 < 2^31 in magnitude, (float) of it 2146959360 = 8190 * 2^18; with scale = 2^-13
 * and dx = 2^-13 every float operation after that conversion is exact (sums of at most 288
 * lanes of 8190 * 2^-8), so the result is the exact sum of the lanes' +-(float)isum * 2^-26. An
 * implementation that let an int32 sum run over two lanes or groups would overflow. */
static void test_extreme(void **state) {
    (void)state;
    ar_kernels k[3];
    const int nk = tiers(k);
    static const int64_t sizes[] = {512, 8960};
    enum { NW = 5, NX = 4 };
    /* (float) of the exact integer, as the kernels convert it */
    const float lane_sum = (float)(32.0 * W_LIM * X_LIM);
    assert_true(32.0 * W_LIM * X_LIM < 2147483648.0);
    for (int si = 0; si < 2; si++) {
        const int64_t n = sizes[si], ng = ar_lane_groups(n, 32);
        ar_block_wl16 *w = xmalloc((size_t)(NW * ng) * sizeof *w);
        ar_block_xl16 *x = xmalloc((size_t)(NX * ng) * sizeof *x);
        int sw[NW][18][16], sx[NX][18][16]; /* lane signs; 0 past n */
        assert_true(ng <= 18);
        for (int r = 0; r < NW; r++)
            for (int64_t g = 0; g < ng; g++) {
                memset(&w[r * ng + g], 0, sizeof *w);
                for (int lane = 0; lane < 16; lane++) {
                    const int in = 512 * g + 32 * lane < n;
                    /* a lane sign, and alternating element signs in half the lanes (the
                     * products keep the lane's sign when the activations alternate too) */
                    const int s = r == 0 ? 1 : r == 1 ? -1 : (rnd_u32() & 1) ? 1 : -1;
                    const int alt = lane & 1;
                    sw[r][g][lane] = in ? s : 0;
                    if (!in) continue;
                    w[r * ng + g].scale[lane] = 0x1p-13f;
                    for (int i = 0; i < 32; i++)
                        w[r * ng + g].u[chunk_index(lane, i)] =
                            (int16_t)(s * (alt && (i & 1) ? -W_LIM : W_LIM));
                }
            }
        for (int t = 0; t < NX; t++)
            for (int64_t g = 0; g < ng; g++) {
                memset(&x[t * ng + g], 0, sizeof *x);
                for (int lane = 0; lane < 16; lane++) {
                    const int in = 512 * g + 32 * lane < n;
                    const int s = t == 0 ? 1 : (rnd_u32() & 1) ? 1 : -1, alt = lane & 1;
                    sx[t][g][lane] = in ? s : 0;
                    if (!in) continue;
                    x[t * ng + g].dx[lane] = 0x1p-13f;
                    for (int i = 0; i < 32; i++)
                        x[t * ng + g].q[chunk_index(lane, i)] =
                            (int16_t)(s * (alt && (i & 1) ? -X_LIM : X_LIM));
                }
            }
        for (int i = 0; i < nk; i++) {
            float y[NX * NW];
            k[i].gemm_l16(n, w, (size_t)ng, NW, x, (size_t)ng, NX, y, NW);
            for (int t = 0; t < NX; t++)
                for (int r = 0; r < NW; r++) {
                    double want = 0.0;
                    for (int64_t g = 0; g < ng; g++)
                        for (int lane = 0; lane < 16; lane++)
                            want += sw[r][g][lane] * sx[t][g][lane] * (double)lane_sum * 0x1p-26;
                    if ((double)y[t * NW + r] != want)
                        fail_msg("%s gemm_l16 n=%lld extreme row %d token %d: %.9g, exact %.9g",
                                 ar_cpu_tier_name(k[i].tier), (long long)n, r, t,
                                 (double)y[t * NW + r], want);
                }
        }
        free(x);
        free(w);
    }
}

/* --- Speed (AR_LANE16_BENCH=1) --------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *alloc64(size_t bytes) {
    void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    assert_non_null(p);
    return p;
}

/* The best of `reps` timings of gemm_l16 on nw rows x nx tokens; returns seconds. */
static double time_gemm(const ar_kernels *k, int64_t n, const ar_block_wl16 *w, int nw,
                        const ar_block_xl16 *x, int nx, float *y, int reps) {
    const size_t ng = (size_t)ar_lane_groups(n, 32);
    double best = 1e9;
    for (int rep = 0; rep < reps; rep++) {
        const double t0 = now_s();
        k->gemm_l16(n, w, ng, nw, x, ng, nx, y, (size_t)nw);
        const double dt = now_s() - t0;
        best = dt < best ? dt : best;
    }
    return best;
}

static void test_speed(void **state) {
    (void)state;
    const char *env = getenv("AR_LANE16_BENCH");
    if (!env || strcmp(env, "1") != 0) return;
    ar_kernels k;
    assert_int_equal(ar_kernels_get(AR_CPU_AUTO, &k), AR_OK);
    enum { NW = 8, NX = 128, DW = 2048 };
    static const int64_t sizes[] = {1536, 8960};
    for (int si = 0; si < 2; si++) {
        const int64_t n = sizes[si];
        const size_t ng = (size_t)ar_lane_groups(n, 32);
        float *f = alloc64((size_t)n * sizeof *f);
        uint16_t *h = alloc64((size_t)DW * (size_t)n * sizeof *h);
        ar_block_wl16 *w = alloc64(DW * ng * sizeof *w);
        ar_block_xl16 *x = alloc64(NX * ng * sizeof *x);
        float *y = alloc64(NX * DW * sizeof *y);
        for (size_t i = 0; i < (size_t)DW * (size_t)n; i++)
            h[i] = ar_fp32_to_fp16(0.05f * rnd_sym());
        for (int t = 0; t < NX; t++) {
            for (int64_t i = 0; i < n; i++) f[i] = rnd_sym();
            k.quantize_l16(f, x + (size_t)t * ng, n);
        }
        double tp[2] = {1e9, 1e9}, tq = 1e9;
        for (int rep = 0; rep < 3; rep++)
            for (int ti = 0; ti < 2; ti++) {
                const double t0 = now_s();
                for (int r = 0; r < DW; r++)
                    k.pack_l16[half_types[ti]](n, h + (size_t)r * (size_t)n, w + (size_t)r * ng);
                const double dt = now_s() - t0;
                tp[ti] = dt < tp[ti] ? dt : tp[ti];
            }
        for (int rep = 0; rep < 20; rep++) {
            const double t0 = now_s();
            for (int t = 0; t < 16; t++) k.quantize_l16(f, x + (size_t)t * ng, n);
            const double dt = now_s() - t0;
            tq = dt < tq ? dt : tq;
        }
        const double tg = time_gemm(&k, n, w, NW, x, NX, y, 20);
        const double td = time_gemm(&k, n, w, DW, x, 1, y, 10);
        const double ops = 2.0 * (double)n * NW * NX;
        printf("# %s n=%lld: gemm_l16 %d x %d: %.2f ns per row x token (%.1f GOPS); "
               "decode %d rows x 1: %.2f ns per row (%.1f GOPS, %.1f GB/s of weights)\n",
               ar_cpu_tier_name(k.tier), (long long)n, NW, NX, 1e9 * tg / (NW * NX),
               ops / tg * 1e-9, DW, 1e9 * td / DW, 2.0 * (double)n * DW / td * 1e-9,
               (double)(DW * ng * sizeof *w) / td * 1e-9);
        printf("# %s n=%lld: pack_l16 F16 %.3f ns, BF16 %.3f ns, quantize_l16 %.3f ns per "
               "element\n",
               ar_cpu_tier_name(k.tier), (long long)n, 1e9 * tp[0] / ((double)DW * (double)n),
               1e9 * tp[1] / ((double)DW * (double)n), 1e9 * tq / (16.0 * (double)n));
        free(y);
        free(x);
        free(w);
        free(h);
        free(f);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),          cmocka_unit_test(test_scalar_vs_exact),
        cmocka_unit_test(test_scalar_halfway), cmocka_unit_test(test_pack_quantize),
        cmocka_unit_test(test_gemm),           cmocka_unit_test(test_extreme),
        cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
