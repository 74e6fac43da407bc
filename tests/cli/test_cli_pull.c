/*
 * test_cli_pull.c - `archrouter pull` as a user meets it: --help, usage errors, the offline
 * message (HF_ENDPOINT at a closed port), and a real download from the fake hub
 * (tests/common/fake_hub.c) where stdout is exactly the path, so `m=$(archrouter pull)` works.
 *
 * Runs the built binary (ARCHROUTER_BIN, set by CTest) through /bin/sh with stdout and
 * stderr captured; the environment is set in this process and inherited.
 */
#include "testutil.h"

#include "cli_run.h"

#include "fake_hub.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static void test_pull_help(void **state) {
    (void)state;
    run_result r = run("pull --help");
    assert_int_equal(r.status, 0);
    static const char *const must[] = {"Usage: archrouter pull",
                                       "--cache-dir",
                                       "--force",
                                       "--quiet",
                                       "HF_ENDPOINT",
                                       "HF_TOKEN",
                                       "HF_HOME",
                                       "ARCHROUTER_CACHE",
                                       "XDG_CACHE_HOME",
                                       ".part",
                                       "models/OWNER--NAME/FILE"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        if (!strstr(r.out, must[i])) fail_msg("pull --help lacks '%s'", must[i]);
    assert_string_equal(r.err, "");
    run_free(&r);

    r = run("--help");
    assert_non_null(strstr(r.out, "pull"));
    run_free(&r);
}

static void test_pull_usage_errors(void **state) {
    (void)state;
    run_result r = run("pull --bogus");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "unknown option '--bogus'"));
    assert_non_null(strstr(r.err, "Try 'archrouter pull --help'"));
    run_free(&r);

    r = run("pull a/b c/d");
    assert_int_equal(r.status, 2);
    run_free(&r);

    r = run("pull --cache-dir");
    assert_int_equal(r.status, 2);
    run_free(&r);

    r = run("pull --stall-timeout x");
    assert_int_equal(r.status, 2);
    run_free(&r);

    r = run("pull 'not a ref'");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "OWNER/NAME"));
    assert_string_equal(r.out, "");
    run_free(&r);
}

static void test_pull_offline(void **state) {
    (void)state;
    char endpoint[64], args[1024];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", fake_hub_closed_port());
    setenv("HF_ENDPOINT", endpoint, 1);
    snprintf(args, sizeof args, "pull --no-hf-cache --cache-dir '%s/offline'", ar_test_temp_dir());
    run_result r = run(args);
    unsetenv("HF_ENDPOINT");
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "archrouter: error: cannot reach"));
    assert_non_null(strstr(r.err, endpoint));
    assert_non_null(strstr(r.err, "set HF_ENDPOINT to a mirror"));
    assert_non_null(strstr(r.err, "Arch-Router-1.5B-Q4_K_M.gguf yourself"));
    assert_non_null(strstr(r.err, "ARCHROUTER_MODEL"));
    run_free(&r);
}

static void test_pull_from_fake_hub(void **state) {
    (void)state;
    static const char data[] = "GGUF pretend model bytes";
    fake_hub *h = fake_hub_start("acme/m", "m.gguf", data, sizeof data - 1);
    assert_non_null(h);
    setenv("HF_ENDPOINT", fake_hub_endpoint(h), 1);
    setenv("HF_TOKEN", "tok-should-not-print", 1);
    char cache[600], args[1024], want[1024];
    snprintf(cache, sizeof cache, "%s/clicache", ar_test_temp_dir());
    snprintf(want, sizeof want, "%s/models/acme--m/m.gguf\n", cache);
    snprintf(args, sizeof args, "pull --no-hf-cache --cache-dir '%s' acme/m:m.gguf", cache);
    run_result r = run(args);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, want); /* the path and nothing else */
    assert_non_null(strstr(r.err, "downloaded"));
    assert_null(strstr(r.err, "tok-should-not-print"));
    assert_string_equal(fake_hub_get_stats(h).hub_auth, "Bearer tok-should-not-print");
    run_free(&r);

    /* Second time: cached, --json, --quiet. */
    snprintf(args, sizeof args, "pull -q --json --no-hf-cache --cache-dir '%s' acme/m:m.gguf",
             cache);
    r = run(args);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    json_error_t jerr;
    json_t *o = json_loads(r.out, 0, &jerr);
    assert_non_null(o);
    want[strlen(want) - 1] = 0;
    assert_string_equal(json_string_value(json_object_get(o, "path")), want);
    assert_false(json_is_true(json_object_get(o, "downloaded")));
    assert_int_equal(json_integer_value(json_object_get(o, "size")), sizeof data - 1);
    char sha[65];
    fake_hub_sha256_hex(data, sizeof data - 1, sha);
    assert_string_equal(json_string_value(json_object_get(o, "sha256")), sha);
    json_decref(o);
    run_free(&r);

    snprintf(args, sizeof args, "pull --no-hf-cache --cache-dir '%s' acme/m:nope.gguf", cache);
    r = run(args);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "HTTP 404"));
    run_free(&r);

    unsetenv("HF_ENDPOINT");
    unsetenv("HF_TOKEN");
    fake_hub_stop(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pull_help),
        cmocka_unit_test(test_pull_usage_errors),
        cmocka_unit_test(test_pull_offline),
        cmocka_unit_test(test_pull_from_fake_hub),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
