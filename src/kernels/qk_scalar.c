/*
 * qk_scalar.c - placeholder: the qk kernels of the scalar tier are being written.
 */
#include "kernels/kernels.h"

void ar_kernels_fill_qk_scalar(ar_kernels *k) {
    (void)k;
}
