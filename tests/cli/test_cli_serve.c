/*
 * test_cli_serve.c - `archrouter serve` run as a user runs it, with real clients: the curl
 * program and the official openai npm SDK (tests/e2e/node/client.mjs) calling it in front of
 * the mock upstream, routing with the tiny reference model (qwen2-tiny-a) through a routes
 * config; the access log (JSON lines, no prompt text, no keys); SIGTERM stopping it cleanly
 * with exit status 0; usage errors.
 *
 * The node part is skipped with a message when node or the openai package (npm ci in
 * tests/e2e/node, done by scripts/install-deps.sh) is missing, except under CI=true.
 */
#include "testutil.h"

#include "cli_run.h"
#include "mock_upstream.h"

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Run a shell command, return its stdout (malloc'd). */
static char *capture(const char *cmd, int *status) {
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    size_t k;
    while ((k = fread(out + n, 1, cap - n - 1, p)) > 0) n += k;
    out[n] = 0;
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

static pid_t server_pid; /* killed by the teardown when a test fails midway */

static int kill_server(void **state) {
    (void)state;
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
    }
    server_pid = 0;
    return 0;
}

static void test_serve_usage(void **state) {
    (void)state;
    run_result r = run("serve --help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Usage: archrouter serve"));
    assert_non_null(strstr(r.out, "--access-log"));
    run_free(&r);
    r = run("serve");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "give one with -c"));
    run_free(&r);
    r = run("serve -c x.yaml --drain-ms -4");
    assert_int_equal(r.status, 2);
    run_free(&r);
}

static void test_serve_real_clients(void **state) {
    (void)state;
    AR_REQUIRE_TESTDATA();
    mock_upstream *mock = mock_start(0);
    assert_non_null(mock);
    int port = 0; /* from the banner: the server binds port 0, so no other test can take it
                     between a free-port probe and the bind (a race under parallel ctest) */
    const char *dir = ar_test_temp_dir();
    char cfg[512], log[512], errf[512], yaml[2048];
    snprintf(cfg, sizeof cfg, "%s/serve.yaml", dir);
    snprintf(log, sizeof log, "%s/access.log", dir);
    snprintf(errf, sizeof errf, "%s/serve.err", dir);
    snprintf(yaml, sizeof yaml,
             "providers:\n"
             "  - model: mock/json\n    base_url: http://127.0.0.1:%d/v1\n"
             "    access_key: $AR_TEST_UPSTREAM_KEY\n    default: true\n"
             "  - model: mock/sse\n    base_url: http://127.0.0.1:%d/v1\n"
             "routes:\n"
             "  - name: code_generation\n    description: writing new code\n    model: mock/json\n"
             "  - name: travel_booking\n    description: booking flights\n    model: mock/json\n"
             "archrouter:\n  router: {timeout_ms: 10000, threads: 1}\n"
             "  server: {port: 0, api_keys: [$AR_TEST_CLIENT_KEY]}\n",
             mock_port(mock), mock_port(mock));
    FILE *f = fopen(cfg, "w");
    fputs(yaml, f);
    fclose(f);
    setenv("AR_TEST_UPSTREAM_KEY", "upstream-secret-9", 1);
    setenv("AR_TEST_CLIENT_KEY", "client-secret-7", 1);
    const char *bin = getenv("ARCHROUTER_BIN");
    assert_non_null(bin);
    char model[1024];
    snprintf(model, sizeof model, "%s", ar_test_data_path("models/qwen2-tiny-a/gguf/F16.gguf"));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char *argv[] = {(char *)bin,    "serve", "-c",         cfg,    "-m", model,
                    "--access-log", log,     "--drain-ms", "2000", NULL};
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, bin, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    server_pid = pid;
    bool up = false;
    for (int i = 0; i < 600 && !up; i++) { /* the model loads first: 30 s at most */
        char *e = ar_test_read_file(errf, NULL);
        const char *banner = e ? strstr(e, "serving on port ") : NULL;
        up = banner && sscanf(banner + 16, "%d", &port) == 1 && port > 0;
        free(e);
        if (!up) sleep_ms(50);
    }
    if (!up) {
        kill(pid, SIGKILL);
        char *e = ar_test_read_file(errf, NULL);
        fail_msg("serve did not start: %s", e ? e : "");
    }
    /* curl: non-streamed, with the client key */
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd,
             "curl -sS -i -H 'Authorization: Bearer client-secret-7' -H 'Content-Type: "
             "application/json' -d '{\"model\":\"mock/json\",\"messages\":[{\"role\":\"user\","
             "\"content\":\"book a flight to Rome, secret prompt text\"}]}' "
             "http://127.0.0.1:%d/v1/chat/completions",
             port);
    char *out = capture(cmd, &st);
    assert_int_equal(st, 0);
    if (!strstr(out, "HTTP/1.1 200") || !strstr(out, "hello from json") ||
        !strstr(out, "x-archrouter-route:") || !strstr(out, "x-archrouter-model: mock/json"))
        fail_msg("curl output: %s", out);
    free(out);
    /* curl: streamed (-N: no buffering), and without a key */
    snprintf(cmd, sizeof cmd,
             "curl -sS -N -H 'Authorization: Bearer client-secret-7' -d '{\"model\":"
             "\"mock/sse\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}'"
             " http://127.0.0.1:%d/v1/chat/completions",
             port);
    out = capture(cmd, &st);
    assert_int_equal(st, 0);
    if (!strstr(out, "data: [DONE]") || !strstr(out, "hello from "))
        fail_msg("curl stream output: %s", out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "curl -sS -o /dev/null -w '%%{http_code}' -d '{}' "
             "http://127.0.0.1:%d/v1/chat/completions",
             port);
    out = capture(cmd, &st);
    assert_string_equal(out, "401");
    free(out);
    /* the openai SDK */
    char node_dir[600];
    snprintf(node_dir, sizeof node_dir, "%s/tests/e2e/node", AR_SOURCE_DIR);
    snprintf(cmd, sizeof cmd, "%s/node_modules/openai/package.json", node_dir);
    bool have_sdk = access(cmd, R_OK) == 0 && system("node --version >/dev/null 2>&1") == 0;
    if (have_sdk) {
        snprintf(cmd, sizeof cmd,
                 "node '%s/client.mjs' http://127.0.0.1:%d/v1 client-secret-7 2>&1", node_dir,
                 port);
        out = capture(cmd, &st);
        if (st != 0) fail_msg("node client failed: %s", out);
        json_t *j = json_loads(out, 0, NULL);
        if (!j) fail_msg("node client output: %s", out);
        assert_string_equal(json_string_value(json_object_get(j, "content")), "hello from json");
        const char *route = json_string_value(json_object_get(j, "route"));
        assert_non_null(route);
        assert_true(!strcmp(route, "code_generation") || !strcmp(route, "travel_booking") ||
                    !strcmp(route, "other"));
        assert_string_equal(json_string_value(json_object_get(j, "model")), "mock/json");
        assert_non_null(json_string_value(json_object_get(j, "request_id")));
        /* the streamed call was routed too; mock/sse sends a, b, c (or json's reply when
           the router sent it elsewhere: both are whole answers) */
        const char *text = json_string_value(json_object_get(j, "stream_text"));
        assert_non_null(text);
        assert_non_null(strstr(text, "hello from "));
        assert_true(json_integer_value(json_object_get(j, "stream_chunks")) >= 1);
        json_decref(j);
        free(out);
    } else if (ar_test_in_ci()) {
        fail_msg("node or the openai package is missing under CI=true (scripts/install-deps.sh "
                 "runs npm ci in tests/e2e/node)");
    } else {
        fprintf(stderr,
                "test_cli_serve: skipping the openai SDK client: node or %s/node_modules "
                "missing (run scripts/install-deps.sh)\n",
                node_dir);
    }
    /* SIGTERM: a clean stop */
    kill(pid, SIGTERM);
    int ws = 0;
    waitpid(pid, &ws, 0);
    server_pid = 0;
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
    char *e = ar_test_read_file(errf, NULL);
    assert_non_null(strstr(e, "stopped"));
    free(e);
    /* the access log: JSON lines with the fields, no prompt text, no keys */
    char *text = ar_test_read_file(log, NULL);
    assert_non_null(text);
    assert_null(strstr(text, "secret prompt text"));
    assert_null(strstr(text, "upstream-secret-9"));
    assert_null(strstr(text, "client-secret-7"));
    int lines = 0;
    for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
        json_t *j = json_loads(l, 0, NULL);
        if (!j) fail_msg("access log line is not JSON: %s", l);
        assert_true(json_is_string(json_object_get(j, "request_id")));
        assert_true(json_is_integer(json_object_get(j, "status")));
        assert_true(json_is_number(json_object_get(j, "total_ms")));
        json_decref(j);
        lines++;
    }
    assert_true(lines >= 3);
    free(text);
    mock_stop(mock);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve_usage),
        cmocka_unit_test_teardown(test_serve_real_clients, kill_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
