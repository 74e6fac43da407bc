/*
 * test_cli_route.c - `archrouter route` as a user meets it: --help, usage errors, a bad
 * configuration reported with its line and column, a missing model with the way out, and
 * (with the reference data) routing messages and a conversation file with tiny-a through
 * the example configurations, in text and JSON.
 */
#include "testutil.h"

#include "cli_run.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXAMPLES AR_SOURCE_DIR "/examples"

static void test_route_help(void **state) {
    (void)state;
    run_result r = run("route --help");
    assert_int_equal(r.status, 0);
    static const char *const must[] = {"Usage: archrouter route",
                                       "--config",
                                       "--model",
                                       "--scores",
                                       "--json",
                                       "--explain",
                                       "--layout",
                                       "ARCHROUTER_MODEL",
                                       "archrouter pull",
                                       "min_confidence"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        if (!strstr(r.out, must[i])) fail_msg("route --help lacks '%s'", must[i]);
    run_free(&r);
}

static void test_route_usage_errors(void **state) {
    (void)state;
    struct {
        const char *args, *msg;
    } cases[] = {
        {"route hello", "give a configuration with -c"},
        {"route -c " EXAMPLES "/routes.yaml", "nothing to route"},
        {"route -c x.yaml --layout square hi", "--layout must be card or archgw"},
        {"route -c x.yaml --min-confidence 2 hi", "--min-confidence must be within 0..1"},
        {"route -c x.yaml --frobnicate hi", "unknown or incomplete option '--frobnicate'"},
        {"route -c x.yaml -f conv.json hi", "either MESSAGEs or -f"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_result r = run(cases[i].args);
        assert_int_equal(r.status, 2);
        if (!strstr(r.err, cases[i].msg))
            fail_msg("'%s': stderr '%s' lacks '%s'", cases[i].args, r.err, cases[i].msg);
        run_free(&r);
    }
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_route_bad_config_and_model(void **state) {
    (void)state;
    char cfg[512], cmd[2048];
    snprintf(cfg, sizeof cfg, "%s/bad.yaml", ar_test_temp_dir());
    write_file(cfg, "routes:\n  - name: a\n    description: x\n    model: m\n"
                    "  - name: a\n    description: y\n    model: m\n");
    snprintf(cmd, sizeof cmd, "route -c '%s' -m /nonexistent.gguf hi", cfg);
    run_result r = run(cmd);
    assert_int_equal(r.status, 1);
    if (!strstr(r.err, "bad.yaml:5:")) fail_msg("stderr: %s", r.err);
    run_free(&r);
    /* A model that is neither a file nor a cached hub file: say how to get one. */
    snprintf(cmd, sizeof cmd,
             "route -c '%s/routes.yaml' -m nobody/nothing.gguf --threads 1 'hi there'", EXAMPLES);
    setenv("ARCHROUTER_CACHE", ar_test_temp_dir(), 1);
    r = run(cmd);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "archrouter pull"));
    run_free(&r);
}

static void test_route_tiny_a(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    const char *model = ar_test_data_path("models/qwen2-tiny-a/gguf/F16.gguf");
    char cmd[4096];
    /* Text output, two messages on one model: the second reuses the cached head. */
    snprintf(cmd, sizeof cmd,
             "route -c %s/routes.yaml -m '%s' 'Book me a flight to Tokyo' 'Fix this segfault'",
             EXAMPLES, model);
    run_result r = run(cmd);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "\"Book me a flight to Tokyo\"\n  route        "));
    assert_non_null(strstr(r.out, "probability  "));
    assert_non_null(strstr(r.out, "from the prefix cache"));
    assert_non_null(strstr(r.err, "7 routes from"));
    run_free(&r);

    /* JSON with scores, archgw config, a conversation file. */
    char conv[512];
    snprintf(conv, sizeof conv, "%s/conv.json", ar_test_temp_dir());
    write_file(conv, "{\"model\": \"x\", \"messages\": [{\"role\": \"system\", \"content\": \"s\"},"
                     "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"I need "
                     "to fly\"}, {\"type\": \"image_url\", \"image_url\": {\"url\": \"x\"}}]}]}");
    snprintf(cmd, sizeof cmd, "route -c %s/archgw.yaml -m '%s' --json --scores -f '%s'", EXAMPLES,
             model, conv);
    r = run(cmd);
    assert_int_equal(r.status, 0);
    json_error_t jerr;
    json_t *j = json_loads(r.out, 0, &jerr);
    if (!j) fail_msg("not JSON: %s (%s)", r.out, jerr.text);
    json_t *route = json_object_get(j, "route"), *scores = json_object_get(j, "scores");
    assert_true(json_is_string(route) || json_is_null(route));
    assert_true(json_is_object(scores));
    double sum = 0;
    const char *k;
    json_t *v;
    json_object_foreach(scores, k, v) sum += json_real_value(v);
    assert_true(sum > 0.9999 && sum < 1.0001);
    assert_non_null(json_object_get(scores, "other"));
    json_t *tokens = json_object_get(j, "tokens"), *timing = json_object_get(j, "timing_ms");
    assert_int_equal(json_integer_value(json_object_get(tokens, "messages")), 1);
    assert_true(json_integer_value(json_object_get(tokens, "prompt")) > 100);
    assert_true(json_real_value(json_object_get(timing, "total")) > 0);
    json_decref(j);
    run_free(&r);

    /* A conversation file with an unknown role: the error names the message. */
    write_file(conv, "[{\"role\": \"robot\", \"content\": \"beep\"}]");
    snprintf(cmd, sizeof cmd, "route -c %s/routes.yaml -m '%s' -f '%s'", EXAMPLES, model, conv);
    r = run(cmd);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "messages[0]"));
    run_free(&r);

    /* --explain prints the prompt with the routes. */
    snprintf(cmd, sizeof cmd, "route -c %s/routes.yaml -m '%s' --explain --layout archgw hi",
             EXAMPLES, model);
    r = run(cmd);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "<routes>\n[{\"name\":\"code_generation\""));
    assert_non_null(strstr(r.out, "  scores\n"));
    run_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_help),
        cmocka_unit_test(test_route_usage_errors),
        cmocka_unit_test(test_route_bad_config_and_model),
        cmocka_unit_test(test_route_tiny_a),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
