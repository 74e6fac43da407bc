/*
 * q32_scalar.c - placeholder: the q32 kernels of the scalar tier are being written.
 */
#include "kernels/kernels.h"

void ar_kernels_fill_q32_scalar(ar_kernels *k) {
    (void)k;
}
