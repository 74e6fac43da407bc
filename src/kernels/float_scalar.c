/*
 * float_scalar.c - placeholder: the float kernels of the scalar tier are being written.
 */
#include "kernels/kernels.h"

void ar_kernels_fill_float_scalar(ar_kernels *k) {
    (void)k;
}
