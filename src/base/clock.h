/*
 * clock.h - a monotonic clock in milliseconds, for load times and benchmarks.
 */
#ifndef AR_BASE_CLOCK_H
#define AR_BASE_CLOCK_H

#include <time.h>

static inline double ar_clock_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#endif
