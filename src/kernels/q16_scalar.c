/*
 * q16_scalar.c - placeholder: the k-quants x Q16K kernels of the scalar tier are being written.
 */
#include "kernels/kernels.h"

void ar_kernels_fill_q16_scalar(ar_kernels *k) {
    (void)k;
}
