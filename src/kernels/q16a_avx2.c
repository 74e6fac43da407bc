/*
 * q16a_avx2.c - placeholder: the q16a kernels of the avx2 tier are being written.
 */
#include "kernels/kernels.h"

void ar_kernels_fill_q16a_avx2(ar_kernels *k) {
    (void)k;
}
