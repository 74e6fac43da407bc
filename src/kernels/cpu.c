/*
 * cpu.c - CPU feature detection and assembly of the kernel table (see kernels.h).
 *
 * The table starts from the scalar reference of every kernel family; each SIMD tier's
 * fillers then replace the kernels they implement. Detection reads cpuid (leaf 1: FMA,
 * F16C, AVX, OSXSAVE; leaf 7: AVX2, AVX-512 F/DQ/BW/VL, VNNI) and XGETBV, so a tier is only
 * chosen when the OS also saves its registers.
 */
#include "kernels/kernels.h"

#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>

/* The extended state the OS saves on context switches (XGETBV 0). */
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}
#endif

ar_cpu_tier ar_cpu_best_tier(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return AR_CPU_SCALAR;
    bool fma = c >> 12 & 1, osxsave = c >> 27 & 1, avx = c >> 28 & 1, f16c = c >> 29 & 1;
    if (!osxsave || !avx) return AR_CPU_SCALAR;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return AR_CPU_SCALAR; /* OS saves no YMM state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return AR_CPU_SCALAR;
    bool avx2 = b >> 5 & 1;
    bool avx512 = (b >> 16 & 1) && (b >> 17 & 1) && (b >> 30 & 1) &&
                  (b >> 31 & 1) &&       /* F DQ BW VL */
                  (c >> 11 & 1) &&       /* VNNI */
                  (xcr0 & 0xE0) == 0xE0; /* opmask and ZMM state saved */
    if (!(avx2 && fma && f16c)) return AR_CPU_SCALAR;
    return avx512 ? AR_CPU_AVX512 : AR_CPU_AVX2;
#else
    return AR_CPU_SCALAR;
#endif
}

const char *ar_cpu_tier_name(ar_cpu_tier tier) {
    switch (tier) {
    case AR_CPU_SCALAR: return "scalar";
    case AR_CPU_AVX2: return "avx2";
    case AR_CPU_AVX512: return "avx512";
    case AR_CPU_AUTO: break;
    }
    return "auto";
}

ar_status ar_kernels_get(ar_cpu_tier tier, ar_kernels *k) {
    ar_cpu_tier best = ar_cpu_best_tier();
    if (tier == AR_CPU_AUTO) tier = best;
    if (tier < AR_CPU_SCALAR || tier > best) return AR_ERR_UNSUPPORTED;
    memset(k, 0, sizeof *k);
    k->tier = tier;
    for (uint32_t t = 0; t < AR_N_TYPES; t++) {
        const ar_type_traits *tt = ar_type_traits_get(t);
        if (!tt) continue;
        k->to_float[t] = tt->to_float;
        k->act[t] = AR_ACT_F32;
    }
    ar_kernels_fill_float_scalar(k);
    ar_kernels_fill_q32_scalar(k);
    ar_kernels_fill_qk_scalar(k);
    ar_kernels_fill_q16_scalar(k);
    ar_kernels_fill_gemm16_scalar(k);
    ar_kernels_fill_gemm8_scalar(k);
    ar_kernels_fill_lane16_scalar(k);
    ar_kernels_fill_q16a_scalar(k);
    ar_kernels_fill_half_scalar(k);
#if defined(__x86_64__)
    if (tier >= AR_CPU_AVX2) {
        ar_kernels_fill_float_avx2(k);
        ar_kernels_fill_q32_avx2(k);
        ar_kernels_fill_qk_avx2(k);
        ar_kernels_fill_q16_avx2(k);
        ar_kernels_fill_q16a_avx2(k);
        ar_kernels_fill_half_avx2(k);
        if (tier == AR_CPU_AVX2) {
            /* No lane forms nor grouped attention: the tier's own 8-bit and float kernels
             * beat the scalar references by far (the engine keeps them; F16/BF16 stay float
             * rows in the fast precision too). */
            for (int t = 0; t < AR_N_TYPES; t++)
                k->vec_dot8[t] = NULL, k->lanes8[t] = 0, k->pack_l16[t] = NULL;
            k->gemm_l16 = NULL;
            k->quantize_l16 = NULL;
            k->attn_scores = NULL;
            k->attn_values = NULL;
        }
    }
    if (tier >= AR_CPU_AVX512) {
        ar_kernels_fill_float_avx512(k);
        ar_kernels_fill_q32_avx512(k);
        ar_kernels_fill_qk_avx512(k);
        ar_kernels_fill_q16_avx512(k);
        ar_kernels_fill_gemm16_avx512(k);
        ar_kernels_fill_gemm8_avx512(k);
        ar_kernels_fill_lane16_avx512(k);
        ar_kernels_fill_q16a_avx512(k);
        ar_kernels_fill_half_avx512(k);
    }
#endif
    return AR_OK;
}
