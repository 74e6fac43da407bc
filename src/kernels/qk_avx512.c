/*
 * qk_avx512.c - placeholder: the qk kernels of the avx512 tier are being written.
 */
#include "kernels/kernels.h"

void ar_kernels_fill_qk_avx512(ar_kernels *k) {
    (void)k;
}
