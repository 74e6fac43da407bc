/*
 * test_status.c - the status enum and its names: stable numbering, a distinct message for
 * every status, a fallback for unknown values, and the version string.
 */
#include "testutil.h"

#include "archrouter.h"

#include <stdio.h>
#include <string.h>

#define AR_STATUS_LAST AR_ERR_CANCELLED

static void test_values_are_stable(void **state) {
    (void)state;
    /* Published numbers: changing any of these breaks users' code. */
    assert_int_equal(AR_OK, 0);
    assert_int_equal(AR_ERR_INVALID_ARG, 1);
    assert_int_equal(AR_ERR_NOMEM, 2);
    assert_int_equal(AR_ERR_IO, 3);
    assert_int_equal(AR_ERR_FORMAT, 4);
    assert_int_equal(AR_ERR_UNSUPPORTED, 5);
    assert_int_equal(AR_ERR_MODEL, 6);
    assert_int_equal(AR_ERR_NOT_FOUND, 7);
    assert_int_equal(AR_ERR_LIMIT, 8);
    assert_int_equal(AR_ERR_INTERNAL, 9);
    assert_int_equal(AR_ERR_INVALID_INPUT, 10);
    assert_int_equal(AR_ERR_BUFFER_TOO_SMALL, 11);
    assert_int_equal(AR_ERR_NETWORK, 12);
    assert_int_equal(AR_ERR_AUTH, 13);
    assert_int_equal(AR_ERR_CHECKSUM, 14);
    assert_int_equal(AR_ERR_CANCELLED, 15);
}

static void test_messages_distinct(void **state) {
    (void)state;
    for (int a = AR_OK; a <= AR_STATUS_LAST; a++) {
        const char *ma = ar_strerror((ar_status)a);
        assert_non_null(ma);
        assert_string_not_equal(ma, "unknown status");
        for (int b = a + 1; b <= AR_STATUS_LAST; b++)
            assert_string_not_equal(ma, ar_strerror((ar_status)b));
    }
    assert_string_equal(ar_strerror((ar_status)9999), "unknown status");
    assert_string_equal(ar_strerror((ar_status)-1), "unknown status");
}

static void test_version(void **state) {
    (void)state;
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", ARCHROUTER_VERSION_MAJOR, ARCHROUTER_VERSION_MINOR,
             ARCHROUTER_VERSION_PATCH);
    assert_string_equal(ar_version(), expect);
}

static void test_type_names(void **state) {
    (void)state;
    assert_string_equal(ar_type_name(AR_TYPE_Q4_K), "Q4_K");
    assert_string_equal(ar_type_name(AR_TYPE_BF16), "BF16");
    assert_null(ar_type_name((ar_type)9)); /* Q8_1: not a storage type we load */
    assert_null(ar_type_name((ar_type)1000));
}

static void test_null_handles(void **state) {
    (void)state;
    ar_model_free(NULL); /* no-op */
    assert_string_equal(ar_model_errmsg(NULL), "out of memory");
    assert_int_equal(ar_model_open("x", NULL, NULL), AR_ERR_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_are_stable), cmocka_unit_test(test_messages_distinct),
        cmocka_unit_test(test_version),           cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_null_handles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
