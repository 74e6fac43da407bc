/*
 * testutil.h - shared helpers for archrouter's cmocka tests.
 *
 * Reference data lives in ../shared/testdata (the build records its path; the environment
 * variable ARCHROUTER_TESTDATA overrides it). When it is missing a golden test is skipped
 * with a message, except under CI=true where a missing folder fails the test.
 */
#ifndef AR_TESTUTIL_H
#define AR_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* The test data folder, or NULL when it does not exist (after printing why). */
const char *ar_test_data_dir(void);

/* Join the test data folder and a relative path into a static buffer (one at a time). */
const char *ar_test_data_path(const char *rel);

/* Skip the current test (or fail it under CI=true) when the test data is missing.
 * Must be used as a statement inside a cmocka test. */
#define AR_REQUIRE_TESTDATA()                                                                      \
    do {                                                                                           \
        if (!ar_test_data_dir()) {                                                                 \
            if (ar_test_in_ci()) fail_msg("test data missing under CI=true");                      \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

int ar_test_in_ci(void);

/* Read a whole file into a malloc'd buffer (NUL-terminated); NULL on failure. */
char *ar_test_read_file(const char *path, size_t *len);

/* Write bytes to a file in a fresh temporary directory; returns the path (static buffer
 * per call index `slot`, 0..7). */
const char *ar_test_write_temp(int slot, const char *name, const void *data, size_t len);

/* A fresh temporary directory (static buffer); removed at exit. */
const char *ar_test_temp_dir(void);

/* Reproducible pseudo-random numbers for the kernel tests (xorshift64*), from a state the
 * caller seeds: 32 random bits, and a float in (-1, 1). */
static inline uint32_t ar_test_rnd_u32(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545f4914f6cdd1du) >> 32);
}
static inline float ar_test_rnd_sym(uint64_t *state) {
    return (float)(((double)ar_test_rnd_u32(state) + 0.5) / 2147483648.0 - 1.0);
}

#endif
