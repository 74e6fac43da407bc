/*
 * q16a_scalar.c - placeholder: the q16a kernels of the scalar tier are being written.
 */
#include "kernels/kernels.h"

void ar_kernels_fill_q16a_scalar(ar_kernels *k) {
    (void)k;
}
