/*
 * q16_avx512.c - placeholder: the k-quants x Q16K kernels of the avx512 tier are being written.
 */
#include "kernels/kernels.h"

void ar_kernels_fill_q16_avx512(ar_kernels *k) {
    (void)k;
}
