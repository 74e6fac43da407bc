/*
 * float_avx2.c - placeholder: the float kernels of the avx2 tier are being written.
 */
#include "kernels/kernels.h"

void ar_kernels_fill_float_avx2(ar_kernels *k) {
    (void)k;
}
