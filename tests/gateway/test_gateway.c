/*
 * test_gateway.c - the gateway end to end against the mock upstream (mock_upstream.h), both
 * on 127.0.0.1 with ephemeral ports, through real HTTP: forwarding (model rewritten, rest of
 * the body byte-exact, auth, traceparent, request id), aliases, requests of every kind one
 * after the other on one kept-alive connection, streaming relayed chunk by
 * chunk (a slow stream's first chunk arrives before the upstream finishes), client abort
 * cancelling the upstream, upstream 4xx/5xx pass-through, routing and fail-open with a test
 * routing function (deterministic decisions, delays and errors), fail-open on a full routing
 * queue, every field of the access log, limits (413, 429, 431),
 * client keys (401), bad input (400 in OpenAI's error shape), the other endpoints, and the
 * /metrics text checked by promtool when it is installed (else by a strict line parser).
 */
#include "testutil.h"

#include "gateway/gateway.h"
#include "http_client.h"
#include "mock_upstream.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct fixture {
    mock_upstream *mock;
    ar_config *cfg;
    ar_gw *gw;
    int port;
    int route_delay_ms;
    bool route_fail;
    atomic_int route_calls; /* decisions started */
} fixture;

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Test routing: "code" in the last message -> route 0 (p 0.9), else "other" (p 0.6). */
static ar_status fake_route(void *ctx, const ar_message *msgs, int32_t n, ar_route_result *out,
                            ar_err *err) {
    fixture *f = ctx;
    memset(out, 0, sizeof *out);
    atomic_fetch_add(&f->route_calls, 1);
    if (f->route_delay_ms) sleep_ms(f->route_delay_ms);
    if (f->route_fail) return ar_errf(err, AR_ERR_INTERNAL, "the test router failed");
    bool code = n > 0 && msgs[n - 1].content && strstr(msgs[n - 1].content, "code");
    out->route_index = code ? 0 : -1;
    out->route = code ? f->cfg->routes[0].name : NULL;
    out->answer = code ? f->cfg->routes[0].name : "other";
    out->probability = code ? 0.9f : 0.6f;
    out->cached_tokens = 5;
    out->total_ms = 1;
    return AR_OK;
}

/* Start mock + gateway; yaml_tail is appended to the providers block (routes, settings);
 * log_fd: the access log, or -1. */
static void start_logged(fixture *f, const char *extra_yaml, bool routing, int log_fd) {
    memset(f, 0, sizeof *f);
    f->mock = mock_start(0);
    assert_non_null(f->mock);
    setenv("AR_TEST_MOCK_KEY", "sekret-key", 1);
    char yaml[4096];
    int mp = mock_port(f->mock);
    snprintf(yaml, sizeof yaml,
             "providers:\n"
             "  - model: mock/json\n    base_url: http://127.0.0.1:%d/v1/\n"
             "    access_key: $AR_TEST_MOCK_KEY\n    default: true\n"
             "  - model: mock/sse\n    base_url: http://127.0.0.1:%d/v1\n"
             "  - model: mock/slow-sse\n    base_url: http://127.0.0.1:%d/v1\n"
             "  - model: mock/hang\n    base_url: http://127.0.0.1:%d/v1\n"
             "  - model: mock/err400\n    base_url: http://127.0.0.1:%d/v1\n"
             "  - model: mock/err503\n    base_url: http://127.0.0.1:%d/v1\n"
             "  - name: other-one\n    model: mock/other\n    base_url: http://127.0.0.1:%d/v1\n"
             "model_aliases:\n  fast:\n    target: mock/sse\n"
             "%s",
             mp, mp, mp, mp, mp, mp, mp, extra_yaml ? extra_yaml : "");
    ar_err err = {{0}};
    if (ar_config_load_memory(yaml, strlen(yaml), "test.yaml", &f->cfg, &err) != AR_OK)
        fail_msg("config: %s", err.msg);
    f->cfg->server.port = 0;
    ar_gw_params p = {f->cfg, routing ? fake_route : NULL, f, log_fd};
    if (ar_gw_start(&p, &f->gw, &err) != AR_OK) fail_msg("start: %s", err.msg);
    f->port = ar_gw_port(f->gw);
    assert_true(f->port > 0);
}

static void start(fixture *f, const char *extra_yaml, bool routing) {
    start_logged(f, extra_yaml, routing, -1);
}

static void stop(fixture *f) {
    mock_release(f->mock);
    ar_gw_stop(f->gw, 2000);
    mock_stop(f->mock);
    ar_config_free(f->cfg);
}

static const char *const json_hdr[] = {"Content-Type: application/json", NULL};

static http_res chat(fixture *f, const char *body) {
    return http_do("POST", f->port, "/v1/chat/completions", body, json_hdr);
}

static void expect_header(const http_res *r, const char *name, const char *want) {
    char *v = http_header(r, name);
    if (!want) {
        if (v) fail_msg("header %s: unexpected '%s'", name, v);
        return;
    }
    if (!v || strcmp(v, want) != 0) fail_msg("header %s: '%s', expected '%s'", name, v, want);
    free(v);
}

/* An OpenAI-shaped error with this status and type. */
static void expect_error(const http_res *r, long status, const char *type) {
    if (r->status != status) fail_msg("status %ld, expected %ld: %s", r->status, status, r->body);
    json_t *j = json_loads(r->body, 0, NULL);
    if (!j) fail_msg("error body is not JSON: %s", r->body);
    json_t *e = json_object_get(j, "error");
    assert_true(json_is_object(e));
    assert_true(json_is_string(json_object_get(e, "message")));
    assert_true(strlen(json_string_value(json_object_get(e, "message"))) > 0);
    assert_true(json_is_string(json_object_get(e, "code")));
    assert_string_equal(json_string_value(json_object_get(e, "type")), type);
    json_decref(j);
}

static void test_forward_json(void **state) {
    (void)state;
    fixture f;
    start(&f, NULL, false);
    /* Odd formatting and number forms must reach the upstream unchanged. */
    const char *body = "{ \"temperature\": 1.50, \"model\" : \"mock/json\",\n"
                       " \"messages\": [{\"role\": \"user\", \"content\": \"hi \\u00e9\"}],"
                       " \"max_tokens\": 1e2 }";
    const char *hdrs[] = {"Content-Type: application/json",
                          "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                          NULL};
    http_res r = http_do("POST", f.port, "/v1/chat/completions", body, hdrs);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "hello from json"));
    expect_header(&r, "x-archrouter-model", "mock/json");
    expect_header(&r, "x-archrouter-route", NULL); /* routing off */
    char *sent = mock_last_body(f.mock);
    assert_string_equal(sent, "{ \"temperature\": 1.50, \"model\" : \"json\",\n"
                              " \"messages\": [{\"role\": \"user\", \"content\": \"hi \\u00e9\"}],"
                              " \"max_tokens\": 1e2 }");
    free(sent);
    char *auth = mock_last_header(f.mock, "authorization");
    assert_non_null(auth);
    assert_string_equal(auth, "Bearer sekret-key");
    free(auth);
    char *tp = mock_last_header(f.mock, "traceparent");
    assert_non_null(tp);
    assert_string_equal(tp, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    free(tp);
    char *rid = http_header(&r, "x-request-id"), *up_rid = mock_last_header(f.mock, "x-request-id");
    assert_non_null(rid);
    assert_non_null(up_rid);
    assert_string_equal(rid, up_rid);
    free(rid);
    free(up_rid);
    http_free(&r);
    /* A client's request id is kept; no model: the default provider; alias -> its target. */
    const char *hdrs2[] = {"Content-Type: application/json", "x-request-id: my-id-1", NULL};
    r = http_do("POST", f.port, "/v1/chat/completions",
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", hdrs2);
    assert_int_equal(r.status, 200);
    expect_header(&r, "x-request-id", "my-id-1");
    expect_header(&r, "x-archrouter-model", "mock/json");
    sent = mock_last_body(f.mock);
    assert_string_equal(
        sent, "{\"model\":\"json\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    free(sent);
    http_free(&r);
    r = chat(&f, "{\"model\":\"fast\",\"stream\":false,\"messages\":[{\"role\":\"user\","
                 "\"content\":\"x\"}]}");
    expect_header(&r, "x-archrouter-model", "mock/sse");
    sent = mock_last_body(f.mock);
    assert_non_null(strstr(sent, "\"model\":\"sse\""));
    free(sent);
    http_free(&r);
    /* A provider by name; an unknown model is a 404 when there is... a default: fallback. */
    r = chat(&f, "{\"model\":\"other-one\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "hello from other"));
    http_free(&r);
    stop(&f);
}

static char *metric_line(fixture *f, const char *prefix) {
    http_res r = http_do("GET", f->port, "/metrics", NULL, NULL);
    char *found = NULL;
    char *p = strstr(r.body, prefix);
    if (p) found = strndup(p, strcspn(p, "\n"));
    http_free(&r);
    return found;
}

/* One request on a kept-alive client connection (the easy handle c is reused): status and
 * body into *out; *connects gets the number of new connections curl opened for it. */
static long keepalive_post(CURL *c, int port, const char *body, const char *extra_header,
                           char **out, long *connects) {
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", port);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    if (extra_header) h = curl_slist_append(h, extra_header);
    FILE *mem;
    size_t n = 0;
    *out = NULL;
    mem = open_memstream(out, &n);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, connects);
    fclose(mem);
    curl_slist_free_all(h);
    return status;
}

/* Requests of every kind one after the other on one client connection: the gateway reuses
 * the connection's upstream handles, and nothing of one request may leak into the next
 * (model, stream mode, headers, body). */
static void test_keepalive_sequence(void **state) {
    (void)state;
    fixture f;
    start(&f, NULL, false);
    CURL *c = curl_easy_init();
    char *out;
    long connects;
    const char *tp = "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    assert_int_equal(keepalive_post(c, f.port,
                                    "{\"model\":\"mock/json\",\"messages\":[{\"role\":\"user\","
                                    "\"content\":\"x\"}]}",
                                    tp, &out, &connects),
                     200);
    assert_int_equal(connects, 1);
    assert_non_null(strstr(out, "hello from json"));
    free(out);
    char *v = mock_last_header(f.mock, "traceparent");
    assert_non_null(v);
    free(v);
    /* a stream, then an upstream error, then a plain request again: same connection */
    assert_int_equal(keepalive_post(c, f.port,
                                    "{\"model\":\"mock/sse\",\"stream\":true,\"messages\":[{"
                                    "\"role\":\"user\",\"content\":\"x\"}]}",
                                    NULL, &out, &connects),
                     200);
    assert_int_equal(connects, 0);
    assert_non_null(strstr(out, "data: [DONE]"));
    free(out);
    v = mock_last_header(f.mock, "accept");
    assert_string_equal(v, "text/event-stream");
    free(v);
    v = mock_last_header(f.mock, "traceparent"); /* not carried over */
    assert_null(v);
    /* the stream counts in requests_total once it is done, not when the client leaves */
    const char *want = "archrouter_requests_total{endpoint=\"chat\",route=\"\",model=\"mock/sse\","
                       "status=\"200\"} 1";
    char *m = NULL;
    for (int i = 0; i < 200 && !m; i++) { /* counted just after the last byte went out */
        m = metric_line(&f, want);
        if (!m) sleep_ms(10);
    }
    assert_non_null(m);
    free(m);
    assert_int_equal(keepalive_post(c, f.port,
                                    "{\"model\":\"mock/err400\",\"messages\":[{\"role\":"
                                    "\"user\",\"content\":\"x\"}]}",
                                    NULL, &out, &connects),
                     400);
    assert_int_equal(connects, 0);
    assert_non_null(strstr(out, "bad_thing"));
    free(out);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(keepalive_post(c, f.port,
                                        "{\"model\":\"other-one\",\"messages\":[{\"role\":"
                                        "\"user\",\"content\":\"y\"}]}",
                                        NULL, &out, &connects),
                         200);
        assert_int_equal(connects, 0);
        assert_non_null(strstr(out, "hello from other"));
        assert_null(strstr(out, "data:"));
        free(out);
        char *sent = mock_last_body(f.mock);
        assert_string_equal(
            sent, "{\"model\":\"other\",\"messages\":[{\"role\":\"user\",\"content\":\"y\"}]}");
        free(sent);
        v = mock_last_header(f.mock, "accept");
        assert_string_equal(v, "application/json");
        free(v);
    }
    assert_int_equal(mock_requests(f.mock), 6);
    curl_easy_cleanup(c);
    stop(&f);
}

static void test_stream(void **state) {
    (void)state;
    fixture f;
    start(&f, NULL, false);
    http_res r = chat(&f, "{\"model\":\"mock/sse\",\"stream\":true,\"messages\":[{\"role\":"
                          "\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    char *ct = http_header(&r, "content-type");
    assert_non_null(ct);
    assert_non_null(strstr(ct, "text/event-stream"));
    free(ct);
    const char *a = strstr(r.body, "\"content\":\"a\""), *b = strstr(r.body, "\"content\":\"b\""),
               *c = strstr(r.body, "\"content\":\"c\""), *d = strstr(r.body, "data: [DONE]");
    assert_true(a && b && c && d && a < b && b < c && c < d);
    char *accept = mock_last_header(f.mock, "accept");
    assert_string_equal(accept, "text/event-stream");
    free(accept);
    http_free(&r);
    stop(&f);
}

typedef struct slow_state {
    mock_upstream *mock;
    char buf[8192];
    size_t n;
    bool first_alone; /* the first chunk came without the second */
    int writes;
    bool abort_after_first;
} slow_state;

static size_t slow_write(char *d, size_t s, size_t n, void *ud) {
    slow_state *st = ud;
    size_t len = s * n;
    if (st->n + len < sizeof st->buf) {
        memcpy(st->buf + st->n, d, len);
        st->n += len;
        st->buf[st->n] = 0;
    }
    if (st->writes++ == 0) {
        st->first_alone = strstr(st->buf, "first") && !strstr(st->buf, "second");
        if (st->abort_after_first) return 0; /* hang up */
        mock_release(st->mock);              /* only now may the upstream finish */
    }
    return len;
}

static long post_stream(fixture *f, const char *model, slow_state *st) {
    char body[256], url[128];
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
             "\"x\"}]}",
             model);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", f->port);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, slow_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, st);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    return status;
}

static void test_slow_stream_first_chunk_early(void **state) {
    (void)state;
    fixture f;
    start(&f, NULL, false);
    slow_state st = {.mock = f.mock};
    assert_int_equal(post_stream(&f, "mock/slow-sse", &st), 200);
    assert_true(st.first_alone); /* relayed before the upstream sent the rest */
    assert_non_null(strstr(st.buf, "second"));
    assert_non_null(strstr(st.buf, "[DONE]"));
    stop(&f);
}

static void test_client_abort_cancels_upstream(void **state) {
    (void)state;
    fixture f;
    start(&f, NULL, false);
    slow_state st = {.mock = f.mock, .abort_after_first = true};
    post_stream(&f, "mock/hang", &st);
    assert_true(st.writes >= 1);
    int i = 0;
    while (mock_disconnects(f.mock) == 0 && i++ < 300) sleep_ms(10);
    assert_int_equal(mock_disconnects(f.mock), 1); /* the upstream saw the hang-up */
    stop(&f);
}

static void test_upstream_errors_pass_through(void **state) {
    (void)state;
    fixture f;
    start(&f, NULL, false);
    http_res r = chat(&f, "{\"model\":\"mock/err400\",\"messages\":[{\"role\":\"user\","
                          "\"content\":\"x\"}]}");
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "bad_thing"));
    http_free(&r);
    r = chat(&f, "{\"model\":\"mock/err503\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                 "\"content\":\"x\"}]}");
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "overloaded"));
    http_free(&r);
    stop(&f);
    /* An upstream that is not there: 502 in the error shape. */
    start(&f, NULL, false);
    mock_stop(f.mock);
    f.mock = mock_start(0);
    r = chat(&f, "{\"model\":\"mock/json\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    expect_error(&r, 502, "upstream_error");
    http_free(&r);
    stop(&f);
}

static const char *const routes_yaml = "routes:\n"
                                       "  - name: coding\n    description: writing code\n"
                                       "    model: mock/sse\n"
                                       "  - name: travel\n    description: trips\n"
                                       "    model: other-one\n";

static void test_routing_and_fail_open(void **state) {
    (void)state;
    char yaml[1024];
    snprintf(yaml, sizeof yaml, "%sarchrouter:\n  router:\n    timeout_ms: 100\n", routes_yaml);
    fixture f;
    start(&f, yaml, true);
    http_res r = chat(&f, "{\"model\":\"mock/json\",\"messages\":[{\"role\":\"user\","
                          "\"content\":\"write code\"}]}");
    assert_int_equal(r.status, 200);
    expect_header(&r, "x-archrouter-route", "coding");
    expect_header(&r, "x-archrouter-model", "mock/sse");
    expect_header(&r, "x-archrouter-confidence", "0.9000");
    char *ms = http_header(&r, "x-archrouter-route-ms");
    assert_non_null(ms);
    free(ms);
    http_free(&r);
    /* "other": the request's model (via alias) */
    r = chat(&f, "{\"model\":\"other-one\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    expect_header(&r, "x-archrouter-route", "other");
    expect_header(&r, "x-archrouter-model", "mock/other");
    http_free(&r);
    /* decision only */
    r = http_do("POST", f.port, "/v1/route",
                "{\"messages\":[{\"role\":\"user\",\"content\":\"code please\"}]}", json_hdr);
    assert_int_equal(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "route")), "coding");
    assert_string_equal(json_string_value(json_object_get(j, "model")), "mock/sse");
    assert_true(json_is_null(json_object_get(j, "fail_open")));
    json_decref(j);
    http_free(&r);
    int before = mock_requests(f.mock);
    r = http_do("POST", f.port, "/routing/v1/chat/completions",
                "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                json_hdr);
    assert_int_equal(r.status, 200);
    assert_int_equal(mock_requests(f.mock), before); /* no upstream call */
    http_free(&r);
    /* Deadline: the router takes 400 ms, the limit is 100 ms -> the request's model. */
    f.route_delay_ms = 400;
    r = chat(&f,
             "{\"model\":\"other-one\",\"messages\":[{\"role\":\"user\",\"content\":\"code\"}]}");
    assert_int_equal(r.status, 200);
    expect_header(&r, "x-archrouter-route", "fail-open");
    expect_header(&r, "x-archrouter-fail-open", "timeout");
    expect_header(&r, "x-archrouter-model", "mock/other");
    http_free(&r);
    char *m = metric_line(&f, "archrouter_fail_open_total{reason=\"timeout\"}");
    assert_non_null(m);
    assert_string_equal(m, "archrouter_fail_open_total{reason=\"timeout\"} 1");
    free(m);
    sleep_ms(450); /* let the slow decision finish */
    /* A router error: the default provider, never a 5xx. */
    f.route_delay_ms = 0;
    f.route_fail = true;
    r = chat(&f, "{\"messages\":[{\"role\":\"user\",\"content\":\"code\"}]}");
    assert_int_equal(r.status, 200);
    expect_header(&r, "x-archrouter-fail-open", "error");
    expect_header(&r, "x-archrouter-model", "mock/json");
    http_free(&r);
    m = metric_line(&f, "archrouter_fail_open_total{reason=\"error\"}");
    assert_string_equal(m, "archrouter_fail_open_total{reason=\"error\"} 1");
    free(m);
    stop(&f);
}

typedef struct bg {
    fixture *f;
    slow_state st;
    long status;
} bg;

static void *bg_stream(void *arg) {
    bg *b = arg;
    b->status = post_stream(b->f, "mock/slow-sse", &b->st);
    return NULL;
}

/* The lines of the access log file at path, once it has at least n (the line is written
 * after the response went out, so it may lag the client by a moment): a JSON array of the
 * parsed lines, each checked to be one object ending in a newline. */
static json_t *log_lines(const char *path, size_t n) {
    json_t *arr = NULL;
    for (int tries = 0; tries < 500; tries++) { /* 5 s at most */
        json_decref(arr);
        arr = json_array();
        char *text = ar_test_read_file(path, NULL);
        assert_non_null(text);
        for (char *l = text; *l;) {
            char *nl = strchr(l, '\n');
            if (!nl) fail_msg("access log line without a newline: %s", l);
            *nl = 0;
            json_error_t je;
            json_t *j = json_loads(l, JSON_REJECT_DUPLICATES, &je);
            if (!json_is_object(j)) fail_msg("access log line is not a JSON object: %s", l);
            json_array_append_new(arr, j);
            l = nl + 1;
        }
        free(text);
        if (json_array_size(arr) >= n) return arr;
        sleep_ms(10);
    }
    fail_msg("the access log has %zu lines, expected %zu", json_array_size(arr), n);
    return NULL;
}

static const char *jstr(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v)) fail_msg("access log: %s is not a string", key);
    return json_string_value(v);
}

/* Every field of the access log, with values that need escaping, for a routed request,
 * a health check and a router error. */
static void test_access_log(void **state) {
    (void)state;
    char path[] = "/tmp/ar_test_access_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fixture f;
    start_logged(&f, routes_yaml, true, fd);
    const char *hdrs[] = {"Content-Type: application/json", "x-request-id: a\"b\\c{}", NULL};
    http_res r = http_do("POST", f.port, "/v1/chat/completions",
                         "{\"messages\":[{\"role\":\"user\",\"content\":\"secret code\"}]}", hdrs);
    assert_int_equal(r.status, 200);
    size_t body_len = r.len;
    http_free(&r);
    const char *hdrs_h[] = {"x-request-id: health-1", NULL};
    r = http_do("GET", f.port, "/healthz", NULL, hdrs_h);
    assert_int_equal(r.status, 200);
    http_free(&r);
    f.route_fail = true;
    const char *hdrs_e[] = {"Content-Type: application/json", "x-request-id: fail-1", NULL};
    r = http_do("POST", f.port, "/v1/chat/completions",
                "{\"stream\":true,\"model\":\"mock/sse\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"x\"}]}",
                hdrs_e);
    assert_int_equal(r.status, 200);
    http_free(&r);
    /* each line is written after its response went out, from its connection's thread: the
       lines may come in any order, so they are found by request id */
    json_t *lines = log_lines(path, 3);
    assert_int_equal(json_array_size(lines), 3);
    json_t *a = NULL, *h = NULL, *e = NULL;
    for (size_t i = 0; i < 3; i++) {
        json_t *l = json_array_get(lines, i);
        const char *id = jstr(l, "request_id");
        if (!strcmp(id, "health-1"))
            h = l;
        else if (!strcmp(id, "fail-1"))
            e = l;
        else
            a = l;
    }
    assert_true(a && h && e);
    /* routed, non-streamed */
    static const char *const order[] = {
        "ts",          "request_id", "endpoint", "status",   "route",           "model",
        "confidence",  "fail_open",  "stream",   "route_ms", "upstream_status", "upstream_ttfb_ms",
        "upstream_ms", "bytes_out",  "total_ms"};
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(a, key, v) { /* jansson keeps the order of the text */
        assert_true(k < sizeof order / sizeof order[0]);
        assert_string_equal(key, order[k++]);
    }
    assert_int_equal(k, sizeof order / sizeof order[0]);
    assert_int_equal(strlen(jstr(a, "ts")), 24); /* 2025-01-01T12:00:00.000Z */
    assert_string_equal(jstr(a, "request_id"), "a\"b\\c{}");
    assert_string_equal(jstr(a, "endpoint"), "chat");
    assert_int_equal(json_integer_value(json_object_get(a, "status")), 200);
    assert_string_equal(jstr(a, "route"), "coding");
    assert_string_equal(jstr(a, "model"), "mock/sse");
    assert_true(json_is_real(json_object_get(a, "confidence")));
    assert_float_equal(json_real_value(json_object_get(a, "confidence")), 0.9, 1e-6);
    assert_true(json_is_null(json_object_get(a, "fail_open")));
    assert_true(json_is_false(json_object_get(a, "stream")));
    assert_true(json_is_real(json_object_get(a, "route_ms")));
    assert_int_equal(json_integer_value(json_object_get(a, "upstream_status")), 200);
    assert_true(json_real_value(json_object_get(a, "upstream_ttfb_ms")) >= 0);
    assert_true(json_real_value(json_object_get(a, "upstream_ms")) >=
                json_real_value(json_object_get(a, "upstream_ttfb_ms")));
    assert_int_equal(json_integer_value(json_object_get(a, "bytes_out")), body_len);
    assert_true(json_real_value(json_object_get(a, "total_ms")) >=
                json_real_value(json_object_get(a, "upstream_ms")));
    /* health check: no routing or upstream fields */
    assert_string_equal(jstr(h, "endpoint"), "healthz");
    assert_int_equal(json_integer_value(json_object_get(h, "bytes_out")), 15);
    assert_null(json_object_get(h, "route"));
    assert_null(json_object_get(h, "upstream_status"));
    assert_int_equal(json_object_size(h), 6);
    /* router error: fail-open to the request's model, streamed */
    assert_true(json_is_null(json_object_get(e, "route")));
    assert_true(json_is_null(json_object_get(e, "confidence")));
    assert_string_equal(jstr(e, "fail_open"), "error");
    assert_string_equal(jstr(e, "model"), "mock/sse");
    assert_true(json_is_true(json_object_get(e, "stream")));
    assert_null(json_object_get(e, "aborted"));
    json_decref(lines);
    char *text = ar_test_read_file(path, NULL);
    assert_null(strstr(text, "secret code")); /* no prompt text */
    free(text);
    stop(&f);
    close(fd);
    unlink(path);
}

typedef struct bg_chat {
    fixture *f;
    http_res r;
} bg_chat;

static void *bg_chat_run(void *arg) {
    bg_chat *b = arg;
    b->r = chat(b->f, "{\"messages\":[{\"role\":\"user\",\"content\":\"write code\"}]}");
    return NULL;
}

/* server.max_queue: 0 and the router busy with a slow decision: the next request finds the
 * queue full and goes to its fallback at once (header, metric, access log), while the slow
 * one still gets its decision. */
static void test_queue_full_fail_open(void **state) {
    (void)state;
    char path[] = "/tmp/ar_test_access_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "%sarchrouter:\n  router:\n    timeout_ms: 20000\n  server:\n    max_queue: 0\n",
             routes_yaml);
    fixture f;
    start_logged(&f, yaml, true, fd);
    f.route_delay_ms = 1500;
    bg_chat b = {.f = &f};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, bg_chat_run, &b), 0);
    for (int i = 0; i < 1000 && atomic_load(&f.route_calls) == 0; i++) sleep_ms(5);
    assert_int_equal(atomic_load(&f.route_calls), 1); /* the worker is busy with it now */
    const char *hdrs[] = {"Content-Type: application/json", "x-request-id: queue-full-1", NULL};
    http_res r = http_do("POST", f.port, "/v1/chat/completions",
                         "{\"model\":\"other-one\",\"messages\":[{\"role\":\"user\","
                         "\"content\":\"write code\"}]}",
                         hdrs);
    assert_int_equal(r.status, 200);
    expect_header(&r, "x-archrouter-route", "fail-open");
    expect_header(&r, "x-archrouter-fail-open", "queue_full");
    expect_header(&r, "x-archrouter-model", "mock/other");
    assert_non_null(strstr(r.body, "hello from other"));
    http_free(&r);
    assert_int_equal(atomic_load(&f.route_calls), 1); /* never reached the router */
    char *m = metric_line(&f, "archrouter_fail_open_total{reason=\"queue_full\"}");
    assert_non_null(m);
    assert_string_equal(m, "archrouter_fail_open_total{reason=\"queue_full\"} 1");
    free(m);
    m = metric_line(&f, "archrouter_requests_total{endpoint=\"chat\",route=\"fail-open\"");
    assert_non_null(m);
    assert_non_null(strstr(m, "model=\"mock/other\",status=\"200\"} 1"));
    free(m);
    pthread_join(t, NULL); /* the slow one was routed all the same */
    assert_int_equal(b.r.status, 200);
    expect_header(&b.r, "x-archrouter-route", "coding");
    http_free(&b.r);
    json_t *lines = NULL; /* both chat lines (the /metrics calls are logged too) */
    for (int tries = 0, chats = 0; chats < 2; tries++) {
        assert_true(tries < 500);
        if (tries) sleep_ms(10);
        json_decref(lines);
        lines = log_lines(path, 1);
        chats = 0;
        for (size_t i = 0; i < json_array_size(lines); i++)
            chats += !strcmp(jstr(json_array_get(lines, i), "endpoint"), "chat");
    }
    for (size_t i = 0; i < json_array_size(lines); i++) {
        json_t *l = json_array_get(lines, i);
        if (strcmp(jstr(l, "endpoint"), "chat") != 0) continue;
        bool queue_full = !strcmp(jstr(l, "request_id"), "queue-full-1");
        if (queue_full) {
            assert_string_equal(jstr(l, "fail_open"), "queue_full");
            assert_string_equal(jstr(l, "model"), "mock/other");
        } else {
            assert_true(json_is_null(json_object_get(l, "fail_open")));
            assert_string_equal(jstr(l, "route"), "coding");
        }
    }
    json_decref(lines);
    stop(&f);
    close(fd);
    unlink(path);
}

static void test_limits(void **state) {
    (void)state;
    fixture f;
    start(&f, "archrouter:\n  server:\n    max_body_bytes: 1024\n    max_concurrent: 1\n", false);
    char big[3000];
    snprintf(big, sizeof big, "{\"messages\":[{\"role\":\"user\",\"content\":\"%02000d\"}]}", 0);
    http_res r = chat(&f, big);
    expect_error(&r, 413, "invalid_request_error");
    http_free(&r);
    /* the same without Content-Length (chunked upload) */
    const char *chunked[] = {"Content-Type: application/json", "Transfer-Encoding: chunked", NULL};
    r = http_do("POST", f.port, "/v1/chat/completions", big, chunked);
    expect_error(&r, 413, "invalid_request_error");
    http_free(&r);
    /* one request in flight (a slow stream held by the mock): the next gets 429 */
    bg b = {.f = &f};
    b.st.writes = 1; /* slow_write must not release the mock: the test does, below */
    pthread_t t;
    pthread_create(&t, NULL, bg_stream, &b);
    int i = 0;
    while (mock_requests(f.mock) == 0 && i++ < 300) sleep_ms(10);
    r = chat(&f, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    expect_error(&r, 429, "rate_limit_error");
    http_free(&r);
    mock_release(f.mock);
    pthread_join(t, NULL);
    assert_int_equal(b.status, 200);
    /* headers over the limit: 431 */
    char *huge = malloc(100000);
    strcpy(huge, "X-Big: ");
    memset(huge + 7, 'a', 90000);
    huge[90007] = 0;
    const char *hh[] = {huge, NULL};
    r = http_do("GET", f.port, "/healthz", NULL, hh);
    assert_int_equal(r.status, 431);
    http_free(&r);
    free(huge);
    stop(&f);
}

static void test_auth(void **state) {
    (void)state;
    setenv("AR_TEST_CLIENT_KEY", "client-key-2", 1);
    fixture f;
    start(&f, "archrouter:\n  server:\n    api_keys: [client-key-1, $AR_TEST_CLIENT_KEY]\n", false);
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    http_res r = chat(&f, body);
    expect_error(&r, 401, "authentication_error");
    http_free(&r);
    const char *wrong[] = {"Authorization: Bearer client-key-", NULL};
    r = http_do("POST", f.port, "/v1/chat/completions", body, wrong);
    expect_error(&r, 401, "authentication_error");
    http_free(&r);
    const char *ok1[] = {"Authorization: Bearer client-key-1", NULL};
    r = http_do("POST", f.port, "/v1/chat/completions", body, ok1);
    assert_int_equal(r.status, 200);
    http_free(&r);
    const char *ok2[] = {"Authorization: Bearer client-key-2", NULL};
    r = http_do("GET", f.port, "/v1/models", NULL, ok2);
    assert_int_equal(r.status, 200);
    http_free(&r);
    r = http_do("GET", f.port, "/v1/models", NULL, NULL);
    expect_error(&r, 401, "authentication_error");
    http_free(&r);
    char *sent_auth = mock_last_header(f.mock, "authorization"); /* the provider's key */
    assert_string_equal(sent_auth, "Bearer sekret-key");
    free(sent_auth);
    stop(&f);
}

static void test_bad_input(void **state) {
    (void)state;
    fixture f;
    start(&f, NULL, false);
    const char *bad[] = {
        "{\"messages\": [",
        "",
        "[1,2]",
        "{\"model\": 5, \"messages\": [{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"stream\": \"yes\", \"messages\": [{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\": \"mock/json\"}",
        "{\"messages\": []}",
        "{\"messages\": {}}",
        "{\"messages\": [{\"role\":\"wizard\",\"content\":\"x\"}]}",
        "{\"messages\": [{\"role\":\"user\",\"content\":7}]}",
        "{\"messages\": [{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}",
        "{\"messages\": [{\"role\":\"user\",\"content\":\"x\"}], \"messages\": []}",
        "{\"messages\": [{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}",
    };
    int before = mock_requests(f.mock);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_res r = chat(&f, bad[i]);
        if (r.status != 400) fail_msg("case %zu: status %ld: %s", i, r.status, r.body);
        expect_error(&r, 400, "invalid_request_error");
        http_free(&r);
    }
    { /* a raw NUL byte inside an otherwise valid body (found by fuzz_request) */
        const char nul_body[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                                "\"n\":1\0}";
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", f.port);
        CURL *c = curl_easy_init();
        FILE *sink = fopen("/dev/null", "w");
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, nul_body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)sizeof nul_body - 1);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        assert_int_equal(status, 400);
        curl_easy_cleanup(c);
        fclose(sink);
    }
    assert_int_equal(mock_requests(f.mock), before);
    http_res r = chat(&f, "{\"model\":\"nope/none\",\"messages\":[{\"role\":\"user\","
                          "\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200); /* unknown model: the default provider */
    expect_header(&r, "x-archrouter-model", "mock/json");
    http_free(&r);
    r = http_do("GET", f.port, "/v1/nothing", NULL, NULL);
    expect_error(&r, 404, "invalid_request_error");
    http_free(&r);
    r = http_do("GET", f.port, "/v1/chat/completions", NULL, NULL);
    expect_error(&r, 405, "invalid_request_error");
    http_free(&r);
    stop(&f);
}

static void test_no_default_unknown_model(void **state) {
    (void)state;
    mock_upstream *m = mock_start(0);
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "providers:\n  - model: mock/json\n    base_url: http://127.0.0.1:%d/v1\n"
             "archrouter: {server: {port: 0}}\n",
             mock_port(m));
    ar_config *cfg = NULL;
    ar_err err = {{0}};
    assert_int_equal(ar_config_load_memory(yaml, strlen(yaml), "t.yaml", &cfg, &err), AR_OK);
    ar_gw_params p = {cfg, NULL, NULL, -1};
    ar_gw *gw = NULL;
    assert_int_equal(ar_gw_start(&p, &gw, &err), AR_OK);
    http_res r = http_do("POST", ar_gw_port(gw), "/v1/chat/completions",
                         "{\"model\":\"zzz\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                         json_hdr);
    expect_error(&r, 404, "invalid_request_error");
    assert_non_null(strstr(r.body, "model_not_found"));
    http_free(&r);
    ar_gw_stop(gw, 0);
    ar_config_free(cfg);
    /* A provider archrouter does not know the address of: a startup error. */
    const char *y2 = "providers:\n  - model: acme/model-1\n";
    assert_int_equal(ar_config_load_memory(y2, strlen(y2), "t2.yaml", &cfg, &err), AR_OK);
    p.cfg = cfg;
    assert_int_equal(ar_gw_start(&p, &gw, &err), AR_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "base_url"));
    ar_config_free(cfg);
    const char *y3 = "providers:\n  - model: openai/gpt-4o\n    access_key: $AR_TEST_UNSET_VAR\n";
    assert_int_equal(ar_config_load_memory(y3, strlen(y3), "t3.yaml", &cfg, &err), AR_OK);
    p.cfg = cfg;
    assert_int_equal(ar_gw_start(&p, &gw, &err), AR_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "AR_TEST_UNSET_VAR"));
    ar_config_free(cfg);
    mock_stop(m);
}

/* Strict exposition-format check: every line is a comment (# HELP/# TYPE NAME ...) or
 * NAME{labels} VALUE with a declared metric family, valid names and quoted labels. */
static void check_exposition(const char *text) {
    char families[64][96];
    int nf = 0;
    const char *l = text;
    int samples = 0;
    while (*l) {
        const char *e = strchr(l, '\n');
        assert_non_null(e); /* every line ends in \n */
        char line[1024];
        size_t n = (size_t)(e - l);
        assert_true(n < sizeof line && n > 0);
        memcpy(line, l, n);
        line[n] = 0;
        if (line[0] == '#') {
            char kind[8], name[96];
            assert_int_equal(sscanf(line, "# %7s %95s", kind, name), 2);
            assert_true(!strcmp(kind, "HELP") || !strcmp(kind, "TYPE"));
            if (!strcmp(kind, "TYPE")) {
                const char *t = line + 7 + strlen(name) + 1;
                assert_true(!strcmp(t, "counter") || !strcmp(t, "gauge") ||
                            !strcmp(t, "histogram"));
                assert_true(nf < 64);
                strcpy(families[nf++], name);
            }
        } else {
            size_t nl = strspn(line, "abcdefghijklmnopqrstuvwxyz_0123456789:");
            assert_true(nl > 0);
            bool known = false;
            for (int i = 0; i < nf && !known; i++) {
                size_t fl = strlen(families[i]);
                known = !strncmp(line, families[i], fl) &&
                        (nl == fl || !strncmp(line + fl, "_bucket", nl - fl) ||
                         !strncmp(line + fl, "_sum", nl - fl) ||
                         !strncmp(line + fl, "_count", nl - fl));
            }
            if (!known) fail_msg("sample of an undeclared family: %s", line);
            const char *p = line + nl;
            if (*p == '{') { /* name="value",... } with escapes */
                p++;
                while (*p != '}') {
                    size_t k = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
                    assert_true(k > 0 && p[k] == '=' && p[k + 1] == '"');
                    p += k + 2;
                    while (*p != '"') {
                        assert_true(*p != 0);
                        if (*p == '\\') p++;
                        p++;
                    }
                    p++;
                    if (*p == ',') p++;
                }
                p++;
            }
            assert_true(*p == ' ');
            char *end;
            strtod(p + 1, &end);
            assert_true(*end == 0 && end > p + 1);
            samples++;
        }
        l = e + 1;
    }
    assert_true(samples > 10);
}

static void test_endpoints_and_metrics(void **state) {
    (void)state;
    fixture f;
    start(&f, routes_yaml, true);
    http_res r = http_do("GET", f.port, "/healthz", NULL, NULL);
    assert_int_equal(r.status, 200);
    http_free(&r);
    r = http_do("GET", f.port, "/readyz", NULL, NULL);
    assert_int_equal(r.status, 200);
    http_free(&r);
    r = http_do("GET", f.port, "/v1/models", NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "list");
    json_t *data = json_object_get(j, "data");
    bool saw_alias = false, saw_model = false, saw_name = false;
    for (size_t i = 0; i < json_array_size(data); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(data, i), "id"));
        saw_alias |= !strcmp(id, "fast");
        saw_model |= !strcmp(id, "mock/json");
        saw_name |= !strcmp(id, "other-one");
    }
    assert_true(saw_alias && saw_model && saw_name);
    json_decref(j);
    http_free(&r);
    /* some traffic with a route name that needs escaping in label values */
    r = chat(&f, "{\"messages\":[{\"role\":\"user\",\"content\":\"code\"}]}");
    http_free(&r);
    r = chat(&f,
             "{\"model\":\"mock/err400\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    http_free(&r);
    /* requests are counted when their connection has sent the response: wait for that */
    for (int i = 0; i < 200; i++) {
        r = http_do("GET", f.port, "/metrics", NULL, NULL);
        if (strstr(r.body, "model=\"mock/err400\",status=\"400\"} 1") || i == 199) break;
        http_free(&r);
        sleep_ms(10);
    }
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "archrouter_requests_total{endpoint=\"chat\",route=\"coding\","
                                   "model=\"mock/sse\",status=\"200\"} 1"));
    assert_non_null(strstr(r.body, "model=\"mock/err400\",status=\"400\"} 1"));
    assert_non_null(strstr(r.body, "archrouter_prefix_cache_hits_total 2"));
    assert_non_null(strstr(r.body, "archrouter_router_duration_seconds_count 2"));
    check_exposition(r.body);
    if (access("/usr/bin/promtool", X_OK) == 0) {
        char path[512];
        snprintf(path, sizeof path, "%s/metrics.txt", ar_test_temp_dir());
        FILE *o = fopen(path, "w");
        fputs(r.body, o);
        fclose(o);
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "promtool check metrics < '%s' > '%s.out' 2>&1", path, path);
        int rc = system(cmd);
        if (rc != 0) {
            snprintf(cmd, sizeof cmd, "%s.out", path);
            char *out = ar_test_read_file(cmd, NULL);
            fail_msg("promtool check metrics failed: %s", out ? out : "?");
        }
    } else if (ar_test_in_ci()) {
        fail_msg("promtool missing under CI=true (Debian package prometheus)");
    }
    http_free(&r);
    /* shutdown: readyz turns 503 while draining; in-flight streams finish */
    stop(&f);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_json),
        cmocka_unit_test(test_keepalive_sequence),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_slow_stream_first_chunk_early),
        cmocka_unit_test(test_client_abort_cancels_upstream),
        cmocka_unit_test(test_upstream_errors_pass_through),
        cmocka_unit_test(test_routing_and_fail_open),
        cmocka_unit_test(test_access_log),
        cmocka_unit_test(test_queue_full_fail_open),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_no_default_unknown_model),
        cmocka_unit_test(test_endpoints_and_metrics),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
