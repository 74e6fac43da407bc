/*
 * lane16_scalar.c - float weights (F16, BF16) in 16-bit lanes, scalar reference: the
 * definition of every result of this form (kernels.h describes it). pack_l16 repacks a weight
 * row, quantize_l16 rounds an activation row to 14-bit integers in the same lanes, gemm_l16
 * multiplies packed rows with activation rows.
 *
 * Each lane of 32 elements gets a power-of-two weight scale (so the elements of the lane's top
 * three octaves keep all 11 significant bits of a float16) and an activation scale
 * amax / 8191, both sides 14-bit integers; the lane's integer sum of products is exact in
 * int32, and one fused multiply-add per lane and group takes it into float. The SIMD tiers keep the
 * same bytes and do the same float operations in the same order, so they give the same bits.
 */
#include "kernels/kernels.h"

#include "kernels/quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* Where element i (0..31) of lane L sits in a group's chunk layout. */
static int chunk_index(int lane, int i) {
    return 32 * (i / 2) + 2 * lane + i % 2;
}

/* round-half-away of v clamped to -lim..lim (v finite). */
static int16_t round_clamp(float v, int lim) {
    float r = roundf(v);
    if (r > (float)lim) r = (float)lim;
    if (r < (float)-lim) r = (float)-lim;
    return (int16_t)r;
}

/* The weight scale of a lane from its amax (kernels.h). */
static float weight_scale(float amax, int finite) {
    if (!finite) return NAN;
    if (amax == 0.0f) return 0.0f;
    int e;
    (void)frexpf(amax, &e);
    return ldexpf(1.0f, e - AR_L16_WSHIFT);
}

/* One lane of 32 floats into u (chunk layout of a group) with its scale. */
static float pack_lane(const float *w, int lane, int16_t *u) {
    int finite;
    const float amax = ar_amax32(w, &finite);
    const float scale = weight_scale(amax, finite);
    if (!(scale > 0.0f)) return scale; /* 0 or NaN: u stays zero */
    for (int i = 0; i < 32; i++) u[chunk_index(lane, i)] = round_clamp(w[i] / scale, AR_L16_WLIM);
    return scale;
}

/* One row of float weights (converted by to_float, 32 at a time) into groups. */
static void pack_rows(int64_t n, const void *w, ar_to_float_fn to_float, size_t elem,
                      ar_block_wl16 *out) {
    const uint8_t *src = w;
    for (int64_t g = 0; g < ar_lane_groups(n, 32); g++, out++) {
        memset(out, 0, sizeof *out);
        for (int lane = 0; lane < 16; lane++) {
            const int64_t first = 512 * g + 32 * lane;
            if (first >= n) break;
            float f[32];
            to_float(src + (size_t)first * elem, f, 32);
            out->scale[lane] = pack_lane(f, lane, out->u);
        }
    }
}

static void pack_l16_f16(int64_t n, const void *w, ar_block_wl16 *out) {
    pack_rows(n, w, ar_dequant_f16, 2, out);
}

static void pack_l16_bf16(int64_t n, const void *w, ar_block_wl16 *out) {
    pack_rows(n, w, ar_dequant_bf16, 2, out);
}

static void quantize_l16(const float *x, void *vy, int64_t n) {
    ar_block_xl16 *y = vy;
    for (int64_t g = 0; g < ar_lane_groups(n, 32); g++, y++) {
        memset(y, 0, sizeof *y);
        for (int lane = 0; lane < 16; lane++) {
            const int64_t first = 512 * g + 32 * lane;
            if (first >= n) break;
            const float *v = x + first;
            int finite;
            const float amax = ar_amax32(v, &finite);
            if (!finite) {
                y->dx[lane] = NAN;
                continue;
            }
            const float d = amax / (float)AR_L16_XLIM;
            if (d < FLT_MIN) continue;
            const float id = 1.0f / d;
            y->dx[lane] = d;
            for (int i = 0; i < 32; i++)
                y->q[chunk_index(lane, i)] = round_clamp(v[i] * id, AR_L16_XLIM);
        }
    }
}

static float hsum_lanes(const float acc[16]) {
    float a[8], b[4], c[2];
    for (int i = 0; i < 8; i++) a[i] = acc[i] + acc[i + 8];
    for (int i = 0; i < 4; i++) b[i] = a[i] + a[i + 4];
    for (int i = 0; i < 2; i++) c[i] = b[i] + b[i + 2];
    return c[0] + c[1];
}

static void gemm_l16(int64_t n, const ar_block_wl16 *w, size_t w_stride, int nw,
                     const ar_block_xl16 *x, size_t x_stride, int nx, float *y, size_t ldy) {
    const int64_t ng = ar_lane_groups(n, 32);
    for (int t = 0; t < nx; t++)
        for (int r = 0; r < nw; r++) {
            float acc[16] = {0};
            for (int64_t g = 0; g < ng; g++) {
                const ar_block_wl16 *wb = w + (size_t)r * w_stride + g;
                const ar_block_xl16 *xb = x + (size_t)t * x_stride + g;
                for (int lane = 0; lane < 16; lane++) {
                    int32_t isum = 0;
                    for (int i = 0; i < 32; i++) {
                        const int p = chunk_index(lane, i);
                        isum += (int32_t)wb->u[p] * xb->q[p];
                    }
                    acc[lane] = fmaf((float)isum, wb->scale[lane] * xb->dx[lane], acc[lane]);
                }
            }
            y[(size_t)t * ldy + (size_t)r] = hsum_lanes(acc);
        }
}

void ar_kernels_fill_lane16_scalar(ar_kernels *k) {
    k->pack_l16[AR_TYPE_F16] = pack_l16_f16;
    k->pack_l16[AR_TYPE_BF16] = pack_l16_bf16;
    k->quantize_l16 = quantize_l16;
    k->gemm_l16 = gemm_l16;
}
