/*
 * half_scalar.c - placeholder: the half kernels of the scalar tier are being written.
 */
#include "kernels/kernels.h"

void ar_kernels_fill_half_scalar(ar_kernels *k) {
    (void)k;
}
