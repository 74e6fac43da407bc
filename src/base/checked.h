/*
 * checked.h - overflow-checked size arithmetic for sizes derived from untrusted input.
 *
 * Each helper returns false when the exact result does not fit; callers turn that into an
 * error naming the field. Use these for every product or sum of counts read from a file.
 */
#ifndef AR_BASE_CHECKED_H
#define AR_BASE_CHECKED_H

#include <stdbool.h>
#include <stdint.h>

static inline bool ar_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}

static inline bool ar_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* Round x up to a multiple of the power of two `align`. */
static inline bool ar_align_u64(uint64_t x, uint64_t align, uint64_t *out) {
    uint64_t t;
    if (!ar_add_u64(x, align - 1, &t)) return false;
    *out = t & ~(align - 1);
    return true;
}

#endif
