/*
 * cpu.c - CPU feature detection and assembly of the kernel table (see kernels.h).
 *
 * The table starts from the scalar reference of every kernel family; each SIMD tier's
 * fillers then replace the kernels they implement. Detection uses the compiler's cpuid
 * builtins, which also check that the OS saves the wider vector registers.
 */
#include "kernels/kernels.h"

#include <string.h>

ar_cpu_tier ar_cpu_best_tier(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                __builtin_cpu_supports("f16c");
    bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512vnni");
    return avx512 ? AR_CPU_AVX512 : avx2 ? AR_CPU_AVX2 : AR_CPU_SCALAR;
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
#if defined(__x86_64__)
    if (tier >= AR_CPU_AVX2) {
        ar_kernels_fill_float_avx2(k);
        ar_kernels_fill_q32_avx2(k);
        ar_kernels_fill_qk_avx2(k);
    }
    if (tier >= AR_CPU_AVX512) {
        ar_kernels_fill_float_avx512(k);
        ar_kernels_fill_q32_avx512(k);
        ar_kernels_fill_qk_avx512(k);
    }
#endif
    return AR_OK;
}
