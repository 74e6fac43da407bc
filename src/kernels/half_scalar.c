/*
 * half_scalar.c - the fused F16/BF16 x float32 dot products (vec_dot_f, vec_dot_f_n) of the
 * scalar tier: deliberately none.
 *
 * With vec_dot_f NULL the engine converts each weight row with to_float (the reference
 * conversions of fp16.h, exact) into its scratch and multiplies with dot_f32 (one float32
 * accumulator, in order). That two-pass path is the definition of the F16/BF16 results:
 * the SIMD tiers' fused kernels (half_avx2.c, half_avx512.c) convert the same weights to
 * the same floats in registers and differ from it only in the rounding order of the float32
 * sum. A scalar fused kernel would gain little - scalar code is compute-bound, not limited
 * by the extra pass over a row that stays in cache - and would be a second reference to
 * keep consistent with the first, so the scalar table leaves both entries NULL
 * (tests/unit/test_kernels_half.c checks this).
 */
#include "kernels/kernels.h"

void ar_kernels_fill_half_scalar(ar_kernels *k) {
    k->vec_dot_f[AR_TYPE_F16] = NULL;
    k->vec_dot_f_n[AR_TYPE_F16] = NULL;
    k->vec_dot_f[AR_TYPE_BF16] = NULL;
    k->vec_dot_f_n[AR_TYPE_BF16] = NULL;
}
