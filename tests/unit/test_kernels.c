/*
 * test_kernels.c - element types: the traits table, the float16/bfloat16 conversions and
 * the scalar reference dequantizers.
 *
 * Dequantizer tests build blocks by hand: each test chooses scales and one quant per
 * element, packs them with its own packer written from the layout description in quant.h,
 * and computes the expected floats from the format's formula in double. The scales are
 * powers of two times small integers, so every expected value is exact in float32 and the
 * comparison is exact (bit-for-bit agreement with ggml on real files is the golden test
 * test_dequant). Every block is also decoded from an odd address to check that no aligned
 * load is assumed.
 */
#include "testutil.h"

#include "archrouter.h"
#include "kernels/fp16.h"
#include "kernels/quant.h"
#include "kernels/types.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- Helpers ---------------------------------------------------------------------------- */

/* A small deterministic generator for quants: values in [0, n). */
static uint32_t rng_state = 12345;
static int rnd(int n) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return (int)((rng_state >> 8) % (uint32_t)n);
}

static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

/* Float16 bit patterns of the scales used below (checked in test_fp16_known_values). */
#define H_ONE       0x3c00 /* 1.0 */
#define H_HALF      0x3800 /* 0.5 */
#define H_QUARTER   0x3400 /* 0.25 */
#define H_EIGHTH    0x3000 /* 0.125 */
#define H_1_16      0x2c00 /* 1/16 */
#define H_1_256     0x1c00 /* 1/256 */
#define H_MINUS_2   0xc000 /* -2.0 */
#define H_MINUS_1_5 0xbe00 /* -1.5 */
#define H_0_75      0x3a00 /* 0.75 */

/* Decode `nblk` blocks of type `type` from `blocks` (type_size bytes each) and compare with
 * `expect`, exactly; then once more from an odd address. */
static void check_decode(ar_type type, const uint8_t *blocks, int nblk, const double *expect) {
    const ar_type_traits *tt = ar_type_traits_get(type);
    assert_non_null(tt);
    const int n = tt->blck_size * nblk;
    const size_t bytes = (size_t)tt->type_size * (size_t)nblk;
    float *out = malloc((size_t)n * sizeof(float));
    uint8_t *shifted = malloc(bytes + 1);
    assert_non_null(out);
    assert_non_null(shifted);
    memcpy(shifted + 1, blocks, bytes);

    for (int pass = 0; pass < 2; pass++) {
        memset(out, 0xff, (size_t)n * sizeof(float));
        tt->to_float(pass == 0 ? blocks : shifted + 1, out, n);
        for (int i = 0; i < n; i++) {
            if (out[i] != (float)expect[i] || (double)(float)expect[i] != expect[i])
                fail_msg("%s element %d%s: got %.9g, expected %.17g", tt->name, i,
                         pass ? " (odd address)" : "", (double)out[i], expect[i]);
        }
    }
    free(shifted);
    free(out);
}

/* --- Traits ----------------------------------------------------------------------------- */

static void test_struct_sizes(void **state) {
    (void)state;
    assert_int_equal(sizeof(block_q4_0), 18);
    assert_int_equal(sizeof(block_q4_1), 20);
    assert_int_equal(sizeof(block_q5_0), 22);
    assert_int_equal(sizeof(block_q5_1), 24);
    assert_int_equal(sizeof(block_q8_0), 34);
    assert_int_equal(sizeof(block_q2_K), 84);
    assert_int_equal(sizeof(block_q3_K), 110);
    assert_int_equal(sizeof(block_q4_K), 144);
    assert_int_equal(sizeof(block_q5_K), 176);
    assert_int_equal(sizeof(block_q6_K), 210);
    /* Field offsets of the layouts documented in quant.h. */
    assert_int_equal(offsetof(block_q5_1, qs), 8);
    assert_int_equal(offsetof(block_q2_K, d), 80);
    assert_int_equal(offsetof(block_q3_K, scales), 96);
    assert_int_equal(offsetof(block_q3_K, d), 108);
    assert_int_equal(offsetof(block_q4_K, qs), 16);
    assert_int_equal(offsetof(block_q5_K, qs), 48);
    assert_int_equal(offsetof(block_q6_K, scales), 192);
    assert_int_equal(offsetof(block_q6_K, d), 208);
}

static void test_traits_table(void **state) {
    (void)state;
    static const struct {
        ar_type type;
        const char *name;
        int blck, size;
        double bits_per_weight;
    } want[] = {
        {AR_TYPE_F32, "F32", 1, 4, 32},           {AR_TYPE_F16, "F16", 1, 2, 16},
        {AR_TYPE_BF16, "BF16", 1, 2, 16},         {AR_TYPE_Q4_0, "Q4_0", 32, 18, 4.5},
        {AR_TYPE_Q4_1, "Q4_1", 32, 20, 5},        {AR_TYPE_Q5_0, "Q5_0", 32, 22, 5.5},
        {AR_TYPE_Q5_1, "Q5_1", 32, 24, 6},        {AR_TYPE_Q8_0, "Q8_0", 32, 34, 8.5},
        {AR_TYPE_Q2_K, "Q2_K", 256, 84, 2.625},   {AR_TYPE_Q3_K, "Q3_K", 256, 110, 3.4375},
        {AR_TYPE_Q4_K, "Q4_K", 256, 144, 4.5},    {AR_TYPE_Q5_K, "Q5_K", 256, 176, 5.5},
        {AR_TYPE_Q6_K, "Q6_K", 256, 210, 6.5625},
    };
    int n_supported = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const ar_type_traits *tt = ar_type_traits_get((uint32_t)want[i].type);
        assert_non_null(tt);
        assert_string_equal(tt->name, want[i].name);
        assert_int_equal(tt->blck_size, want[i].blck);
        assert_int_equal(tt->type_size, want[i].size);
        assert_true(tt->is_quantized == (want[i].blck > 1));
        assert_non_null(tt->to_float);
        assert_true(8.0 * tt->type_size / tt->blck_size == want[i].bits_per_weight);
        assert_ptr_equal(ar_type_name(want[i].type), tt->name);
    }
    /* Exactly these 13 ids are supported. */
    for (uint32_t id = 0; id < 256; id++)
        if (ar_type_traits_get(id)) n_supported++;
    assert_int_equal(n_supported, 13);
}

static void test_unknown_ids(void **state) {
    (void)state;
    static const uint32_t ids[] = {4,  5,  9,  15, 17, 24,   28,          29,          31,
                                   39, 40, 41, 42, 43, 1000, 0x7fffffffu, 0x80000000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) assert_null(ar_type_traits_get(ids[i]));
    assert_null(ar_type_name((ar_type)9));
    assert_null(ar_type_name((ar_type)-1));
    assert_null(ar_type_name((ar_type)100000));
}

static void test_known_names(void **state) {
    (void)state;
    static const struct {
        uint32_t id;
        const char *name;
    } want[] = {
        {9, "Q8_1"},   {15, "Q8_K"},   {16, "IQ2_XXS"}, {17, "IQ2_XS"},   {18, "IQ3_XXS"},
        {19, "IQ1_S"}, {20, "IQ4_NL"}, {21, "IQ3_S"},   {22, "IQ2_S"},    {23, "IQ4_XS"},
        {24, "I8"},    {25, "I16"},    {26, "I32"},     {27, "I64"},      {28, "F64"},
        {29, "IQ1_M"}, {34, "TQ1_0"},  {35, "TQ2_0"},   {39, "MXFP4"},    {40, "NVFP4"},
        {41, "Q1_0"},  {42, "Q2_0"},   {4, "Q4_2"},     {31, "Q4_0_4_4"}, {38, "IQ4_NL_8_8"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *got = ar_type_known_name(want[i].id);
        assert_non_null(got);
        assert_string_equal(got, want[i].name);
    }
    /* Supported ids are not "known but unsupported"; ids past ggml's list are unknown. */
    for (uint32_t id = 0; id < 64; id++)
        if (ar_type_traits_get(id)) assert_null(ar_type_known_name(id));
    for (uint32_t id = 43; id < 300; id++) assert_null(ar_type_known_name(id));
    assert_null(ar_type_known_name(0xffffffffu));
    /* Every id below 43 has some name. */
    for (uint32_t id = 0; id < 43; id++)
        assert_true(ar_type_traits_get(id) != NULL || ar_type_known_name(id) != NULL);
}

static void test_row_bytes(void **state) {
    (void)state;
    const ar_type_traits *q4k = ar_type_traits_get(AR_TYPE_Q4_K);
    const ar_type_traits *q80 = ar_type_traits_get(AR_TYPE_Q8_0);
    const ar_type_traits *f32 = ar_type_traits_get(AR_TYPE_F32);
    const ar_type_traits *bf16 = ar_type_traits_get(AR_TYPE_BF16);
    uint64_t b = 7;

    assert_true(ar_type_row_bytes(q4k, 256, &b));
    assert_int_equal(b, 144);
    assert_true(ar_type_row_bytes(q4k, 1536, &b));
    assert_int_equal(b, 6 * 144);
    assert_true(ar_type_row_bytes(q80, 64, &b));
    assert_int_equal(b, 68);
    assert_true(ar_type_row_bytes(f32, 3, &b));
    assert_int_equal(b, 12);
    assert_true(ar_type_row_bytes(bf16, 5, &b));
    assert_int_equal(b, 10);
    assert_true(ar_type_row_bytes(q4k, 0, &b));
    assert_int_equal(b, 0);

    /* Not a multiple of the block size: rejected, *bytes untouched. */
    b = 7;
    assert_false(ar_type_row_bytes(q4k, 255, &b));
    assert_false(ar_type_row_bytes(q4k, 257, &b));
    assert_false(ar_type_row_bytes(q80, 48, &b));
    assert_int_equal(b, 7);

    /* Overflow. */
    assert_false(ar_type_row_bytes(f32, UINT64_C(1) << 62, &b));
    assert_true(ar_type_row_bytes(f32, (UINT64_C(1) << 62) - 1, &b));
    assert_int_equal(b, UINT64_MAX - 3);
    assert_false(ar_type_row_bytes(q80, UINT64_MAX - 31, &b)); /* a multiple of 32 */
    assert_false(ar_type_row_bytes(bf16, UINT64_C(1) << 63, &b));
    /* A Q4_K row is smaller than its element count, so no element count overflows it. */
    assert_true(ar_type_row_bytes(q4k, UINT64_MAX - 255, &b));
    assert_int_equal(b, (UINT64_MAX / 256) * 144);
    /* The largest Q8_0 row that fits: floor(UINT64_MAX / 34) blocks. */
    const uint64_t max_blocks = UINT64_MAX / 34;
    assert_true(ar_type_row_bytes(q80, max_blocks * 32, &b));
    assert_int_equal(b, max_blocks * 34);
    assert_false(ar_type_row_bytes(q80, (max_blocks + 1) * 32, &b));

    assert_false(ar_type_row_bytes(NULL, 32, &b));
}

/* --- float16 / bfloat16 ----------------------------------------------------------------- */

/* The value of a finite half from its fields, in double (independent of fp16.h). */
static double half_value(uint16_t h) {
    const int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
    const double mag = exp == 0 ? ldexp(mant, -24) : ldexp(1024 + mant, exp - 25);
    return sign ? -mag : mag;
}

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void test_fp16_known_values(void **state) {
    (void)state;
    assert_int_equal(bits_of(ar_fp16_to_fp32(0x0000)), 0x00000000);
    assert_int_equal(bits_of(ar_fp16_to_fp32(0x8000)), 0x80000000); /* -0 */
    assert_true(ar_fp16_to_fp32(0x0001) == ldexpf(1.0f, -24));      /* smallest subnormal */
    assert_true(ar_fp16_to_fp32(0x8001) == -ldexpf(1.0f, -24));
    assert_true(ar_fp16_to_fp32(0x03ff) == ldexpf(1023.0f, -24)); /* largest subnormal */
    assert_true(ar_fp16_to_fp32(0x0400) == ldexpf(1.0f, -14));    /* smallest normal */
    assert_true(ar_fp16_to_fp32(0x7bff) == 65504.0f);
    assert_true(ar_fp16_to_fp32(0xfbff) == -65504.0f);
    assert_true(ar_fp16_to_fp32(0x3555) == 0x1.554p-2f);            /* 0.333251953125 */
    assert_int_equal(bits_of(ar_fp16_to_fp32(0x7c00)), 0x7f800000); /* +inf */
    assert_int_equal(bits_of(ar_fp16_to_fp32(0xfc00)), 0xff800000); /* -inf */
    assert_int_equal(bits_of(ar_fp16_to_fp32(0x7e00)), 0x7fc00000); /* quiet NaN */
    assert_int_equal(bits_of(ar_fp16_to_fp32(0xfe01)), 0xffc02000); /* sign, payload */
    assert_int_equal(bits_of(ar_fp16_to_fp32(0x7c01)), 0x7fc02000); /* signaling: quieted */
    assert_true(isnan(ar_fp16_to_fp32(0x7fff)));

    /* The scale constants the dequantizer tests use. */
    assert_true(ar_fp16_to_fp32(H_ONE) == 1.0f);
    assert_true(ar_fp16_to_fp32(H_HALF) == 0.5f);
    assert_true(ar_fp16_to_fp32(H_QUARTER) == 0.25f);
    assert_true(ar_fp16_to_fp32(H_EIGHTH) == 0.125f);
    assert_true(ar_fp16_to_fp32(H_1_16) == 0.0625f);
    assert_true(ar_fp16_to_fp32(H_1_256) == 1.0f / 256);
    assert_true(ar_fp16_to_fp32(H_MINUS_2) == -2.0f);
    assert_true(ar_fp16_to_fp32(H_MINUS_1_5) == -1.5f);
    assert_true(ar_fp16_to_fp32(H_0_75) == 0.75f);
}

/* Every finite half converts to its exact value; every non-NaN half round-trips. */
static void test_fp16_exhaustive(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 0x10000; h++) {
        const float f = ar_fp16_to_fp32((uint16_t)h);
        const int exp = (h >> 10) & 31;
        if (exp == 31) {
            assert_true((h & 0x3ff) ? isnan(f) : isinf(f));
            assert_true((signbit(f) != 0) == ((h & 0x8000) != 0));
            if (h & 0x3ff)
                assert_true(isnan(ar_fp16_to_fp32(ar_fp32_to_fp16(f))));
            else
                assert_int_equal(ar_fp32_to_fp16(f), h);
            continue;
        }
        if ((double)f != half_value((uint16_t)h) || (signbit(f) != 0) != ((h & 0x8000) != 0))
            fail_msg("half 0x%04x: got %.9g, expected %.17g", h, (double)f,
                     half_value((uint16_t)h));
        assert_int_equal(ar_fp32_to_fp16(f), h);
    }
}

/* float -> half rounds to nearest even: at every midpoint between adjacent halves, just
 * below it and just above it. */
static void test_fp16_rounding(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 0x7bff; h++) {
        const double lo = half_value((uint16_t)h), hi = half_value((uint16_t)(h + 1));
        const float mid = (float)((lo + hi) / 2); /* 12 significant bits: exact */
        assert_true((double)mid == (lo + hi) / 2);
        const uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        assert_int_equal(ar_fp32_to_fp16(mid), even);
        assert_int_equal(ar_fp32_to_fp16(nextafterf(mid, 0.0f)), h);
        assert_int_equal(ar_fp32_to_fp16(nextafterf(mid, INFINITY)), h + 1);
        assert_int_equal(ar_fp32_to_fp16(-mid), 0x8000 | even);
    }
    /* Named edge cases. */
    assert_int_equal(ar_fp32_to_fp16(0.0f), 0x0000);
    assert_int_equal(ar_fp32_to_fp16(-0.0f), 0x8000);
    assert_int_equal(ar_fp32_to_fp16(1.0f), 0x3c00);
    assert_int_equal(ar_fp32_to_fp16(1.0f + 0x1p-11f), 0x3c00);     /* tie -> even */
    assert_int_equal(ar_fp32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3c02); /* tie -> even */
    assert_int_equal(ar_fp32_to_fp16(65504.0f), 0x7bff);
    assert_int_equal(ar_fp32_to_fp16(65519.996f), 0x7bff);
    assert_int_equal(ar_fp32_to_fp16(65520.0f), 0x7c00); /* tie with 2^16 -> inf */
    assert_int_equal(ar_fp32_to_fp16(-65520.0f), 0xfc00);
    assert_int_equal(ar_fp32_to_fp16(1e9f), 0x7c00);
    assert_int_equal(ar_fp32_to_fp16(3.4e38f), 0x7c00);
    assert_int_equal(ar_fp32_to_fp16(INFINITY), 0x7c00);
    assert_int_equal(ar_fp32_to_fp16(-INFINITY), 0xfc00);
    assert_int_equal(ar_fp32_to_fp16(0x1p-24f), 0x0001);
    assert_int_equal(ar_fp32_to_fp16(0x1p-25f), 0x0000); /* tie with 0 -> 0 */
    assert_int_equal(ar_fp32_to_fp16(-0x1p-25f), 0x8000);
    assert_int_equal(ar_fp32_to_fp16(nextafterf(0x1p-25f, 1.0f)), 0x0001);
    assert_int_equal(ar_fp32_to_fp16(3 * 0x1p-25f), 0x0002); /* 1.5 units -> 2 */
    assert_int_equal(ar_fp32_to_fp16(5 * 0x1p-25f), 0x0002); /* 2.5 units -> 2 */
    assert_int_equal(ar_fp32_to_fp16(0x1p-14f), 0x0400);
    assert_int_equal(ar_fp32_to_fp16(0x1p-14f - 0x1p-25f), 0x0400); /* 1023.5 units -> 1024 */
    assert_int_equal(ar_fp32_to_fp16(1e-30f), 0x0000);
    assert_int_equal(ar_fp32_to_fp16(0x1p-149f), 0x0000); /* float subnormal */
    const uint16_t nan = ar_fp32_to_fp16(NAN);
    assert_int_equal(nan & 0x7c00, 0x7c00);
    assert_true((nan & 0x3ff) != 0);
}

static void test_bf16(void **state) {
    (void)state;
    assert_true(ar_bf16_to_fp32(0x3f80) == 1.0f);
    assert_true(ar_bf16_to_fp32(0xc000) == -2.0f);
    assert_true(ar_bf16_to_fp32(0x3eab) == 0x1.56p-2f);
    assert_int_equal(bits_of(ar_bf16_to_fp32(0x8000)), 0x80000000);
    assert_int_equal(bits_of(ar_bf16_to_fp32(0x0001)), 0x00010000); /* subnormal */
    assert_int_equal(bits_of(ar_bf16_to_fp32(0x7f80)), 0x7f800000);
    assert_int_equal(bits_of(ar_bf16_to_fp32(0xff80)), 0xff800000);
    assert_int_equal(bits_of(ar_bf16_to_fp32(0x7fc1)), 0x7fc10000); /* NaN, kept as is */
    assert_true(ar_bf16_to_fp32(0x7f7f) == 0x1.fep127f);
}

/* --- Plain types ------------------------------------------------------------------------ */

static void test_plain_rows(void **state) {
    (void)state;
    /* F32: bits copied unchanged, NaN payload included. */
    const uint32_t f32_bits[4] = {0x3f800000, 0x7fa00001, 0x80000000, 0x00000001};
    uint8_t raw[1 + sizeof f32_bits];
    memcpy(raw + 1, f32_bits, sizeof f32_bits);
    float out[8];
    ar_type_traits_get(AR_TYPE_F32)->to_float(raw + 1, out, 4);
    for (int i = 0; i < 4; i++) assert_int_equal(bits_of(out[i]), f32_bits[i]);

    /* F16 and BF16 rows, little-endian on disk, from an odd address. */
    const uint16_t f16[5] = {H_ONE, H_MINUS_1_5, 0x0001, 0x7bff, 0xfc00};
    const double f16_want[5] = {1, -1.5, 0x1p-24, 65504, -INFINITY};
    for (int i = 0; i < 5; i++) put_u16(raw + 1 + 2 * i, f16[i]);
    ar_type_traits_get(AR_TYPE_F16)->to_float(raw + 1, out, 5);
    for (int i = 0; i < 5; i++) assert_true((double)out[i] == f16_want[i]);

    const uint16_t bf16[3] = {0x3f80, 0xc040, 0x4480};
    const double bf16_want[3] = {1, -3, 1024};
    for (int i = 0; i < 3; i++) put_u16(raw + 1 + 2 * i, bf16[i]);
    ar_type_traits_get(AR_TYPE_BF16)->to_float(raw + 1, out, 3);
    for (int i = 0; i < 3; i++) assert_true((double)out[i] == bf16_want[i]);
}

/* --- Blocks of 32 ----------------------------------------------------------------------- */

/* Pack 32 quants of 4 bits: element j in the low nibble of byte j, element j+16 high. */
static void pack_nibbles32(uint8_t qs[16], const int q[32]) {
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
}

/* Bit 4 of the 32 quants, as a little-endian uint32 with element i at bit i. */
static void pack_fifth_bits(uint8_t qh[4], const int q[32]) {
    memset(qh, 0, 4);
    for (int i = 0; i < 32; i++)
        if (q[i] & 16) qh[i / 8] |= (uint8_t)(1u << (i % 8));
}

static void test_q4_0(void **state) {
    (void)state;
    const uint16_t d[2] = {H_QUARTER, H_MINUS_2};
    uint8_t blocks[2 * 18];
    double want[64];
    for (int b = 0; b < 2; b++) {
        int q[32];
        for (int i = 0; i < 32; i++) q[i] = b == 0 ? (i % 16) : rnd(16); /* every value */
        uint8_t *p = blocks + 18 * b;
        put_u16(p, d[b]);
        pack_nibbles32(p + 2, q);
        for (int i = 0; i < 32; i++) want[32 * b + i] = (q[i] - 8) * half_value(d[b]);
    }
    check_decode(AR_TYPE_Q4_0, blocks, 2, want);
}

static void test_q4_1(void **state) {
    (void)state;
    const uint16_t d[2] = {H_HALF, H_EIGHTH}, m[2] = {H_MINUS_1_5, H_0_75};
    uint8_t blocks[2 * 20];
    double want[64];
    for (int b = 0; b < 2; b++) {
        int q[32];
        for (int i = 0; i < 32; i++) q[i] = b == 0 ? 15 - (i % 16) : rnd(16);
        uint8_t *p = blocks + 20 * b;
        put_u16(p, d[b]);
        put_u16(p + 2, m[b]);
        pack_nibbles32(p + 4, q);
        for (int i = 0; i < 32; i++) want[32 * b + i] = q[i] * half_value(d[b]) + half_value(m[b]);
    }
    check_decode(AR_TYPE_Q4_1, blocks, 2, want);
}

static void test_q5_0(void **state) {
    (void)state;
    const uint16_t d[2] = {H_1_16, H_MINUS_2};
    uint8_t blocks[2 * 22];
    double want[64];
    for (int b = 0; b < 2; b++) {
        int q[32];
        for (int i = 0; i < 32; i++) q[i] = b == 0 ? i : rnd(32); /* every value */
        uint8_t *p = blocks + 22 * b;
        put_u16(p, d[b]);
        pack_fifth_bits(p + 2, q);
        pack_nibbles32(p + 6, q);
        for (int i = 0; i < 32; i++) want[32 * b + i] = (q[i] - 16) * half_value(d[b]);
    }
    check_decode(AR_TYPE_Q5_0, blocks, 2, want);
}

static void test_q5_1(void **state) {
    (void)state;
    const uint16_t d[2] = {H_QUARTER, H_ONE}, m[2] = {H_0_75, H_MINUS_2};
    uint8_t blocks[2 * 24];
    double want[64];
    for (int b = 0; b < 2; b++) {
        int q[32];
        for (int i = 0; i < 32; i++) q[i] = b == 0 ? 31 - i : rnd(32);
        uint8_t *p = blocks + 24 * b;
        put_u16(p, d[b]);
        put_u16(p + 2, m[b]);
        pack_fifth_bits(p + 4, q);
        pack_nibbles32(p + 8, q);
        for (int i = 0; i < 32; i++) want[32 * b + i] = q[i] * half_value(d[b]) + half_value(m[b]);
    }
    check_decode(AR_TYPE_Q5_1, blocks, 2, want);
}

static void test_q8_0(void **state) {
    (void)state;
    const uint16_t d[3] = {H_HALF, H_MINUS_2, 0x0001 /* subnormal scale */};
    uint8_t blocks[3 * 34];
    double want[96];
    for (int b = 0; b < 3; b++) {
        uint8_t *p = blocks + 34 * b;
        put_u16(p, d[b]);
        for (int i = 0; i < 32; i++) {
            const int q = b == 0 ? (i < 16 ? -128 + i : 127 - i) : rnd(256) - 128;
            p[2 + i] = (uint8_t)(int8_t)q;
            want[32 * b + i] = q * half_value(d[b]);
        }
    }
    check_decode(AR_TYPE_Q8_0, blocks, 3, want);
}

/* --- Super-blocks of 256 ---------------------------------------------------------------- */

/* Put a 2-bit value of element i into a 64-byte Q2_K/Q3_K quant array: within each half
 * of 128 elements, 32 bytes hold 4 groups of 32 at shifts 0, 2, 4, 6. */
static void put_2bit(uint8_t qs[64], int i, int v) {
    const int byte = 32 * (i / 128) + i % 32, shift = 2 * ((i % 128) / 32);
    qs[byte] = (uint8_t)(qs[byte] | (v & 3) << shift);
}

/* The 6-bit scale/min packing of Q4_K/Q5_K, written out per sub-block. */
static void pack_scales_k4(uint8_t packed[12], const int sc[8], const int mn[8]) {
    memset(packed, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            packed[j] |= (uint8_t)sc[j];
            packed[j + 4] |= (uint8_t)mn[j];
        } else {
            packed[j + 4] = (uint8_t)((sc[j] & 15) | (mn[j] & 15) << 4);
            packed[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            packed[j] |= (uint8_t)((mn[j] >> 4) << 6);
        }
    }
}

static void test_q2_k(void **state) {
    (void)state;
    uint8_t blocks[2 * 84];
    double want[512];
    const uint16_t d[2] = {H_EIGHTH, H_MINUS_2}, dmin[2] = {H_1_16, H_HALF};
    memset(blocks, 0, sizeof blocks);
    for (int b = 0; b < 2; b++) {
        uint8_t *p = blocks + 84 * b;
        int sc[16], mn[16];
        for (int s = 0; s < 16; s++) {
            sc[s] = b == 0 ? s : rnd(16);
            mn[s] = b == 0 ? 15 - s : rnd(16);
            p[s] = (uint8_t)(sc[s] | mn[s] << 4);
        }
        for (int i = 0; i < 256; i++) {
            const int q = b == 0 ? (i / 7) % 4 : rnd(4);
            put_2bit(p + 16, i, q);
            want[256 * b + i] =
                half_value(d[b]) * sc[i / 16] * q - half_value(dmin[b]) * mn[i / 16];
        }
        put_u16(p + 80, d[b]);
        put_u16(p + 82, dmin[b]);
    }
    check_decode(AR_TYPE_Q2_K, blocks, 2, want);
}

static void test_q3_k(void **state) {
    (void)state;
    uint8_t blocks[2 * 110];
    double want[512];
    const uint16_t d[2] = {H_1_16, H_MINUS_1_5};
    memset(blocks, 0, sizeof blocks);
    for (int b = 0; b < 2; b++) {
        uint8_t *p = blocks + 110 * b;
        uint8_t *hmask = p, *qs = p + 32, *scales = p + 96;
        int s6[16]; /* stored 6-bit scales; the scale is s6 - 32 */
        for (int j = 0; j < 16; j++) {
            s6[j] = b == 0 ? 4 * j + (j & 3) : rnd(64); /* 0..63, both ends */
            if (j < 8)
                scales[j] |= (uint8_t)(s6[j] & 15);
            else
                scales[j - 8] |= (uint8_t)((s6[j] & 15) << 4);
            scales[8 + j % 4] |= (uint8_t)((s6[j] >> 4) << (2 * (j / 4)));
        }
        for (int i = 0; i < 256; i++) {
            const int q = b == 0 ? (i % 8) - 4 : rnd(8) - 4; /* -4..3 */
            const int stored = q + 4;                        /* bit 2 set: no -4 */
            put_2bit(qs, i, stored & 3);
            if (stored & 4) hmask[i % 32] |= (uint8_t)(1u << (i / 32));
            want[256 * b + i] = half_value(d[b]) * (s6[i / 16] - 32) * q;
        }
        put_u16(p + 108, d[b]);
    }
    check_decode(AR_TYPE_Q3_K, blocks, 2, want);
}

/* Q4_K and Q5_K share scales and low nibbles; Q5_K adds a fifth bit per element. */
static void build_k4(uint8_t *p, bool five_bit, int b, double *want) {
    const uint16_t d[2] = {H_EIGHTH, H_1_256}, dmin[2] = {H_QUARTER, H_MINUS_2};
    int sc[8], mn[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = b == 0 ? 63 - 9 * j : rnd(64);
        mn[j] = b == 0 ? 9 * j : rnd(64);
    }
    put_u16(p, d[b]);
    put_u16(p + 2, dmin[b]);
    pack_scales_k4(p + 4, sc, mn);
    uint8_t *qh = five_bit ? p + 16 : NULL;
    uint8_t *qs = five_bit ? p + 48 : p + 16;
    const int qmax = five_bit ? 32 : 16;
    for (int i = 0; i < 256; i++) {
        const int q = b == 0 ? (i * 5) % qmax : rnd(qmax);
        /* 64 elements per 32 bytes: the first 32 in low nibbles, the next 32 high. */
        const int byte = 32 * (i / 64) + i % 32;
        qs[byte] = (uint8_t)(qs[byte] | (q & 15) << (4 * ((i / 32) % 2)));
        if (qh && (q & 16)) qh[i % 32] |= (uint8_t)(1u << (i / 32));
        want[i] = half_value(d[b]) * sc[i / 32] * q - half_value(dmin[b]) * mn[i / 32];
    }
}

static void test_q4_k(void **state) {
    (void)state;
    uint8_t blocks[2 * 144];
    double want[512];
    memset(blocks, 0, sizeof blocks);
    for (int b = 0; b < 2; b++) build_k4(blocks + 144 * b, false, b, want + 256 * b);
    check_decode(AR_TYPE_Q4_K, blocks, 2, want);
}

static void test_q5_k(void **state) {
    (void)state;
    uint8_t blocks[2 * 176];
    double want[512];
    memset(blocks, 0, sizeof blocks);
    for (int b = 0; b < 2; b++) build_k4(blocks + 176 * b, true, b, want + 256 * b);
    check_decode(AR_TYPE_Q5_K, blocks, 2, want);
}

static void test_q6_k(void **state) {
    (void)state;
    uint8_t blocks[2 * 210];
    double want[512];
    const uint16_t d[2] = {H_1_256, H_MINUS_1_5};
    memset(blocks, 0, sizeof blocks);
    for (int b = 0; b < 2; b++) {
        uint8_t *p = blocks + 210 * b;
        uint8_t *ql = p, *qh = p + 128;
        int sc[16];
        for (int j = 0; j < 16; j++) {
            sc[j] = b == 0 ? (j % 2 ? -128 + j : 127 - j) : rnd(256) - 128;
            p[192 + j] = (uint8_t)(int8_t)sc[j];
        }
        for (int i = 0; i < 256; i++) {
            const int q = b == 0 ? (i % 64) - 32 : rnd(64) - 32; /* -32..31 */
            const int stored = q + 32;
            /* Per half of 128: groups g = 0..3 of 32 elements; groups 0,1 take the low
             * nibbles of ql[0..31], ql[32..63], groups 2,3 the high nibbles. */
            const int h = i / 128, g = (i % 128) / 32, l = i % 32;
            ql[64 * h + 32 * (g % 2) + l] |= (uint8_t)((stored & 15) << (4 * (g / 2)));
            qh[32 * h + l] |= (uint8_t)((stored >> 4) << (2 * g));
            want[256 * b + i] = half_value(d[b]) * sc[i / 16] * q;
        }
        put_u16(p + 208, d[b]);
    }
    check_decode(AR_TYPE_Q6_K, blocks, 2, want);
}

/* n == 0 writes nothing. */
static void test_empty_rows(void **state) {
    (void)state;
    const ar_type supported[] = {AR_TYPE_F32,  AR_TYPE_F16,  AR_TYPE_BF16, AR_TYPE_Q4_0,
                                 AR_TYPE_Q4_1, AR_TYPE_Q5_0, AR_TYPE_Q5_1, AR_TYPE_Q8_0,
                                 AR_TYPE_Q2_K, AR_TYPE_Q3_K, AR_TYPE_Q4_K, AR_TYPE_Q5_K,
                                 AR_TYPE_Q6_K};
    uint8_t src[256] = {0};
    for (size_t t = 0; t < sizeof supported / sizeof supported[0]; t++) {
        float out[1] = {42.0f};
        ar_type_traits_get(supported[t])->to_float(src, out, 0);
        assert_true(out[0] == 42.0f);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_struct_sizes),
        cmocka_unit_test(test_traits_table),
        cmocka_unit_test(test_unknown_ids),
        cmocka_unit_test(test_known_names),
        cmocka_unit_test(test_row_bytes),
        cmocka_unit_test(test_fp16_known_values),
        cmocka_unit_test(test_fp16_exhaustive),
        cmocka_unit_test(test_fp16_rounding),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_plain_rows),
        cmocka_unit_test(test_q4_0),
        cmocka_unit_test(test_q4_1),
        cmocka_unit_test(test_q5_0),
        cmocka_unit_test(test_q5_1),
        cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_q2_k),
        cmocka_unit_test(test_q3_k),
        cmocka_unit_test(test_q4_k),
        cmocka_unit_test(test_q5_k),
        cmocka_unit_test(test_q6_k),
        cmocka_unit_test(test_empty_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
