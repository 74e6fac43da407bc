/*
 * test_config.c - the YAML configuration reader (src/router/config.c): both example files,
 * archgw's forms (map and list listeners, top-level routing_preferences, endpoint/protocol),
 * the native form and its settings, defaults, every validation error with its line:column,
 * $ENV key expansion, and hostile documents (aliases, depth, counts, binary, size).
 */
#include "testutil.h"

#include "router/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef AR_SOURCE_DIR
#error "AR_SOURCE_DIR must name the source tree (tests/CMakeLists.txt sets it)"
#endif

static ar_config *load_ok(const char *yaml) {
    ar_err e = {{0}};
    ar_config *cfg = NULL;
    ar_status st = ar_config_load_memory(yaml, strlen(yaml), "t.yaml", &cfg, &e);
    if (st != AR_OK) fail_msg("unexpected error %d: %s", st, e.msg);
    assert_non_null(cfg);
    return cfg;
}

/* Loading fails with `want` and a message that starts with `where` ("t.yaml:L:C: ") and
 * contains `what`. */
static void expect_err_n(const char *yaml, size_t len, ar_status want, const char *where,
                         const char *what) {
    ar_err e = {{0}};
    ar_config *cfg = (ar_config *)&e; /* must be reset to NULL */
    ar_status st = ar_config_load_memory(yaml, len, "t.yaml", &cfg, &e);
    if (st != want || strncmp(e.msg, where, strlen(where)) != 0 || !strstr(e.msg, what))
        fail_msg("status %d (want %d), message '%s' (want '%s...%s')", st, want, e.msg, where,
                 what);
    assert_null(cfg);
}

static void expect_err(const char *yaml, ar_status want, const char *where, const char *what) {
    expect_err_n(yaml, strlen(yaml), want, where, what);
}

static const ar_config_route *route(const ar_config *cfg, const char *name) {
    for (size_t i = 0; i < cfg->n_routes; i++)
        if (!strcmp(cfg->routes[i].name, name)) return &cfg->routes[i];
    fail_msg("no route '%s'", name);
    return NULL;
}

/* ---- the example files ------------------------------------------------------------------ */

/* A gateway reachable from the network without client keys is flagged (cmd_serve warns). */
static void test_open_to_network(void **state) {
    (void)state;
    static const struct {
        const char *yaml;
        bool open;
    } cases[] = {
        {"routes: [{name: a, description: d, model: m}]\n", false}, /* default 127.0.0.1 */
        {"routes: [{name: a, description: d, model: m}]\n"
         "archrouter: {server: {address: 0.0.0.0}}\n",
         true},
        {"routes: [{name: a, description: d, model: m}]\n"
         "archrouter: {server: {address: 0.0.0.0, api_keys: [k1]}}\n",
         false},
        {"routes: [{name: a, description: d, model: m}]\n"
         "archrouter: {server: {address: 127.0.0.2}}\n",
         false},
        {"routes: [{name: a, description: d, model: m}]\n"
         "archrouter: {server: {address: 10.1.2.3}}\n",
         true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ar_config *cfg = load_ok(cases[i].yaml);
        assert_int_equal(ar_config_server_open_to_network(cfg), cases[i].open);
        ar_config_free(cfg);
    }
}

static void test_example_archgw(void **state) {
    (void)state;
    ar_err e = {{0}};
    ar_config *cfg = NULL;
    ar_status st = ar_config_load_file(AR_SOURCE_DIR "/examples/archgw.yaml", &cfg, &e);
    if (st != AR_OK) fail_msg("%s", e.msg);
    assert_int_equal(cfg->n_providers, 4);
    const ar_config_provider *p = &cfg->providers[0];
    assert_string_equal(p->name, "gpt-4o");
    assert_string_equal(p->model, "openai/gpt-4o");
    assert_string_equal(p->provider, "openai");
    assert_string_equal(p->model_id, "gpt-4o");
    assert_string_equal(p->access_key, "$OPENAI_API_KEY");
    assert_true(p->is_default);
    assert_null(p->base_url);
    /* No `name`: the model as written. */
    assert_string_equal(cfg->providers[1].name, "anthropic/claude-sonnet-4-0");
    assert_string_equal(cfg->providers[1].provider, "anthropic");
    assert_false(cfg->providers[1].is_default);
    assert_int_equal(cfg->default_provider, 0);

    const char *order[] = {"image editing", "travel booking", "code generation",
                           "legal summary", "math tutoring",  "bug fixing"};
    const int prov[] = {0, 0, 1, 1, 2, 3};
    assert_int_equal(cfg->n_routes, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(cfg->routes[i].name, order[i]);
        assert_int_equal(cfg->routes[i].provider, prov[i]);
        assert_string_equal(cfg->routes[i].model, cfg->providers[prov[i]].model);
        assert_true(cfg->routes[i].description[0] != '\0');
    }
    assert_int_equal(cfg->n_aliases, 2);
    assert_string_equal(cfg->aliases[1].name, "reasoning");
    assert_string_equal(cfg->aliases[1].target, "deepseek-reasoner");
    assert_int_equal(ar_config_find_provider(cfg, "reasoning"), 2);
    assert_int_equal(ar_config_find_provider(cfg, "fast"), 0);
    assert_int_equal(ar_config_find_provider(cfg, "nope"), -1);
    /* listeners.egress_traffic */
    assert_string_equal(cfg->server.address, "0.0.0.0");
    assert_int_equal(cfg->server.port, 12000);
    assert_int_equal(cfg->server.read_timeout_ms, 30000);
    assert_string_equal(cfg->source, AR_SOURCE_DIR "/examples/archgw.yaml");
    ar_config_free(cfg);
}

static void test_example_native(void **state) {
    (void)state;
    ar_err e = {{0}};
    ar_config *cfg = NULL;
    ar_status st = ar_config_load_file(AR_SOURCE_DIR "/examples/routes.yaml", &cfg, &e);
    if (st != AR_OK) fail_msg("%s", e.msg);
    assert_int_equal(cfg->n_providers, 5);
    assert_int_equal(cfg->n_routes, 7);
    assert_string_equal(cfg->routes[0].name, "code_generation");
    assert_string_equal(cfg->routes[6].name, "small_talk");
    const ar_config_route *r = route(cfg, "bug_fixing");
    assert_int_equal(r->provider, 4); /* by provider name */
    assert_string_equal(r->model, "ollama/qwen2.5-coder:7b");
    assert_string_equal(cfg->providers[4].base_url, "http://127.0.0.1:11434/v1");
    assert_string_equal(cfg->providers[4].model_id, "qwen2.5-coder:7b");
    r = route(cfg, "small_talk"); /* by model id */
    assert_int_equal(r->provider, 1);
    assert_string_equal(r->model, "openai/gpt-4o-mini");
    assert_int_equal(route(cfg, "math_tutoring")->provider, 3); /* by model as written */
    assert_string_equal(cfg->router.model, "models/Arch-Router-1.5B.Q4_K_M.gguf");
    assert_int_equal(cfg->router.layout, AR_CONFIG_LAYOUT_CARD);
    assert_int_equal(ar_config_router_precision(cfg), -1); /* not set: the engine's default */
    assert_int_equal(cfg->server.port, 12000);
    ar_config_free(cfg);
}

/* ---- forms and settings ----------------------------------------------------------------- */

static void test_defaults(void **state) {
    (void)state;
    ar_config *cfg = load_ok("routes:\n  - {name: a, description: first, model: gpt-x}\n");
    assert_int_equal(cfg->n_providers, 0);
    assert_int_equal(cfg->default_provider, -1);
    assert_int_equal(cfg->n_routes, 1);
    assert_int_equal(cfg->routes[0].provider, -1); /* stands alone as a model name */
    assert_string_equal(cfg->routes[0].model, "gpt-x");
    assert_int_equal(cfg->routes[0].line, 2);
    assert_int_equal(cfg->routes[0].col, 5);
    assert_null(cfg->router.model);
    assert_int_equal(cfg->router.threads, 0);
    assert_int_equal(cfg->router.layout, AR_CONFIG_LAYOUT_CARD);
    assert_null(cfg->router.system_prompt);
    assert_int_equal(cfg->router.max_conversation_tokens, 2048);
    assert_true(cfg->router.min_confidence == 0.0);
    assert_int_equal(cfg->router.timeout_ms, 1000);
    assert_int_equal(cfg->router.prefix_cache_mb, 256);
    assert_false(cfg->router.scores);
    assert_string_equal(cfg->server.address, "127.0.0.1");
    assert_int_equal(cfg->server.port, 12000);
    assert_int_equal(cfg->server.max_body_bytes, 8 << 20);
    assert_int_equal(cfg->server.max_concurrent, 64);
    assert_int_equal(cfg->server.max_queue, 64);
    assert_int_equal(cfg->server.connect_timeout_ms, 5000);
    assert_int_equal(cfg->server.read_timeout_ms, 300000);
    assert_int_equal(cfg->server.n_api_keys, 0);
    assert_null(cfg->server.api_keys);
    ar_config_free(cfg);
}

static void test_all_settings(void **state) {
    (void)state;
    ar_config *cfg = load_ok("routes: [{name: a, description: d, model: m}]\n"
                             "archrouter:\n"
                             "  router:\n"
                             "    model: katanemo/Arch-Router-1.5B.gguf:Q4_K_M\n"
                             "    threads: 6\n"
                             "    precision: fast\n"
                             "    layout: archgw\n"
                             "    system_prompt: \"You route.\"\n"
                             "    max_conversation_tokens: 4096\n"
                             "    min_confidence: 0.35\n"
                             "    timeout_ms: 250\n"
                             "    prefix_cache_mb: 0\n"
                             "    scores: true\n"
                             "  server:\n"
                             "    address: 0.0.0.0\n"
                             "    port: 8080\n"
                             "    max_body_bytes: 1048576\n"
                             "    max_concurrent: 8\n"
                             "    max_queue: 0\n"
                             "    connect_timeout_ms: 2000\n"
                             "    read_timeout_ms: 60000\n"
                             "    api_keys: [sk-local-1, $GATEWAY_KEY]\n");
    assert_string_equal(cfg->router.model, "katanemo/Arch-Router-1.5B.gguf:Q4_K_M");
    assert_int_equal(cfg->router.threads, 6);
    assert_int_equal(cfg->router.precision, AR_PRECISION_FAST);
    assert_int_equal(ar_config_router_precision(cfg), AR_PRECISION_FAST);
    assert_int_equal(cfg->router.layout, AR_CONFIG_LAYOUT_ARCHGW);
    assert_string_equal(cfg->router.system_prompt, "You route.");
    assert_int_equal(cfg->router.max_conversation_tokens, 4096);
    assert_true(cfg->router.min_confidence > 0.3499 && cfg->router.min_confidence < 0.3501);
    assert_int_equal(cfg->router.timeout_ms, 250);
    assert_int_equal(cfg->router.prefix_cache_mb, 0);
    assert_true(cfg->router.scores);
    assert_string_equal(cfg->server.address, "0.0.0.0");
    assert_int_equal(cfg->server.port, 8080);
    assert_int_equal(cfg->server.max_body_bytes, 1048576);
    assert_int_equal(cfg->server.max_concurrent, 8);
    assert_int_equal(cfg->server.max_queue, 0);
    assert_int_equal(cfg->server.connect_timeout_ms, 2000);
    assert_int_equal(cfg->server.read_timeout_ms, 60000);
    assert_int_equal(cfg->server.n_api_keys, 2);
    assert_string_equal(cfg->server.api_keys[0], "sk-local-1");
    assert_string_equal(cfg->server.api_keys[1], "$GATEWAY_KEY");
    ar_config_free(cfg);
}

/* archgw's full reference style: everything archrouter does not use is ignored. */
static void test_archgw_ignored_keys(void **state) {
    (void)state;
    ar_config *cfg =
        load_ok("version: v0.1\n"
                "listeners:\n"
                "  ingress_traffic: {address: 0.0.0.0, port: 10000, message_format: openai}\n"
                "endpoints:\n"
                "  app_server: {endpoint: 127.0.0.1:80, connect_timeout: 0.005s}\n"
                "model_providers:\n"
                "  - model: openai/gpt-4o-mini\n"
                "    http_host: api.example.com\n"
                "    passthrough_auth: false\n"
                "    headers: {X-Team: routing}\n"
                "  - model: local/llama\n"
                "    endpoint: llama.internal:8000\n"
                "    protocol: https\n"
                "overrides: {prompt_target_intent_matching_threshold: 0.6}\n"
                "system_prompt: You are a network assistant.\n"
                "prompt_targets:\n"
                "  - name: reboot\n"
                "    description: Reboot a device\n"
                "    parameters: [{name: id, type: str, description: device, required: true}]\n"
                "tracing: {random_sampling: 100}\n"
                "routing: {model: Arch-Router, llm_provider: arch-router}\n"
                "ratelimits: []\n"
                "mode: llm\n");
    assert_int_equal(cfg->n_providers, 2);
    assert_int_equal(cfg->n_routes, 0);
    assert_string_equal(cfg->providers[1].base_url, "https://llama.internal:8000");
    assert_int_equal(cfg->server.port, 12000); /* ingress is not ours */
    assert_null(cfg->router.system_prompt);    /* archgw's system_prompt is for its LLMs */
    ar_config_free(cfg);
}

static void test_listener_list_form(void **state) {
    (void)state;
    ar_config *cfg = load_ok("listeners:\n"
                             "  - {type: prompt, name: p, port: 10000}\n"
                             "  - type: model_listener\n"
                             "    name: model_1\n"
                             "    address: 10.0.0.5\n"
                             "    port: 10500\n"
                             "    timeout: 500ms\n"
                             "llm_providers:\n"
                             "  - {model: openai/gpt-4o, default: true}\n");
    assert_string_equal(cfg->server.address, "10.0.0.5");
    assert_int_equal(cfg->server.port, 10500);
    assert_int_equal(cfg->server.read_timeout_ms, 500);
    ar_config_free(cfg);
    /* archrouter.server wins over listeners, whatever the order in the file. */
    cfg = load_ok("archrouter: {server: {port: 9000}}\n"
                  "listeners: [{type: model, name: m, port: 10500, timeout: 2m}]\n"
                  "llm_providers: [{model: openai/gpt-4o}]\n");
    assert_int_equal(cfg->server.port, 9000);
    assert_int_equal(cfg->server.read_timeout_ms, 120000);
    ar_config_free(cfg);
}

static void test_top_level_routing_preferences(void **state) {
    (void)state;
    ar_config *cfg = load_ok("model_providers:\n"
                             "  - model: openai/gpt-4o\n"
                             "  - model: anthropic/claude-sonnet-4-0\n"
                             "routing_preferences:\n"
                             "  - name: code\n"
                             "    description: writing code\n"
                             "    models: [anthropic/claude-sonnet-4-0, openai/gpt-4o]\n"
                             "    selection_policy: {prefer: cheapest}\n"
                             "  - name: chat\n"
                             "    description: small talk\n"
                             "    models: [gpt-4o]\n");
    assert_int_equal(cfg->n_routes, 2);
    assert_int_equal(cfg->routes[0].provider, 1);
    assert_string_equal(cfg->routes[0].model, "anthropic/claude-sonnet-4-0");
    assert_int_equal(cfg->routes[1].provider, 0);
    ar_config_free(cfg);
}

/* Routes from several places come out in file order. */
static void test_route_order(void **state) {
    (void)state;
    ar_config *cfg = load_ok("routes:\n"
                             "  - {name: r1, description: d, model: a/x}\n"
                             "providers:\n"
                             "  - model: a/x\n"
                             "    routing_preferences: [{name: r2, description: d}]\n"
                             "  - model: b/y\n"
                             "    routing_preferences: [{name: r3, description: d}, "
                             "{name: r4, description: d}]\n"
                             "routing_preferences: [{name: r5, description: d, models: [y]}]\n");
    assert_int_equal(cfg->n_routes, 5);
    const char *want[] = {"r1", "r2", "r3", "r4", "r5"};
    const int prov[] = {0, 0, 1, 1, 1};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(cfg->routes[i].name, want[i]);
        assert_int_equal(cfg->routes[i].provider, prov[i]);
    }
    ar_config_free(cfg);
}

static void test_unicode_names(void **state) {
    (void)state;
    ar_config *cfg = load_ok("routes:\n"
                             "  - {name: \"réservation de voyage\", description: \"旅行の予約\", "
                             "model: m}\n"
                             "  - {name: Other, description: not the reserved word, model: m}\n");
    assert_string_equal(cfg->routes[0].name, "r\xc3\xa9servation de voyage");
    assert_string_equal(cfg->routes[1].name, "Other");
    ar_config_free(cfg);
}

/* ---- validation errors ------------------------------------------------------------------ */

static void test_route_errors(void **state) {
    (void)state;
    expect_err("routes:\n  - {name: a, description: x, model: m}\n"
               "  - {name: a, description: y, model: m}\n",
               AR_ERR_FORMAT, "t.yaml:3:5: ", "route name 'a' is used twice (first at line 2)");
    /* Duplicates across providers' routing_preferences. */
    expect_err("llm_providers:\n"
               "  - model: a/x\n"
               "    routing_preferences: [{name: code, description: d}]\n"
               "  - model: b/y\n"
               "    routing_preferences:\n"
               "      - name: code\n"
               "        description: d\n",
               AR_ERR_FORMAT, "t.yaml:6:9: ", "'code' is used twice");
    expect_err("routes:\n  - name: other\n    description: d\n    model: m\n", AR_ERR_FORMAT,
               "t.yaml:2:11: ", "'other' is reserved");
    expect_err("routes:\n  - name: \"\"\n    description: d\n    model: m\n", AR_ERR_FORMAT,
               "t.yaml:2:11: ", "routes[0].name: a route name must not be empty");
    expect_err("routes:\n  - name:\n    description: d\n    model: m\n", AR_ERR_FORMAT,
               "t.yaml:2:10: ", "must not be empty"); /* an empty value sits after the ':' */
    char longname[400];
    snprintf(longname, sizeof longname,
             "routes:\n  - name: %0129d\n    description: d\n    model: m\n", 7);
    expect_err(longname, AR_ERR_FORMAT, "t.yaml:2:11: ", "129 bytes, longer than the 128");
    snprintf(longname, sizeof longname,
             "routes:\n  - name: %0128d\n    description: d\n    model: m\n", 7);
    ar_config_free(load_ok(longname));
    expect_err("routes:\n  - name: \"a\\tb\"\n    description: d\n    model: m\n", AR_ERR_FORMAT,
               "t.yaml:2:11: ", "control character at byte 1");
    expect_err("routes:\n  - name: \"a\\x85b\"\n    description: d\n    model: m\n", AR_ERR_FORMAT,
               "t.yaml:2:11: ", "control character");
    expect_err("routes:\n  - name: a\n    description: \"  \"\n    model: m\n", AR_ERR_FORMAT,
               "t.yaml:3:18: ", "routes[0].description: a route description must not be empty");
    expect_err("routes:\n  - name: a\n    model: m\n", AR_ERR_FORMAT,
               "t.yaml:2:5: ", "route 'a' is missing 'description'");
    expect_err("routes:\n  - description: d\n    model: m\n", AR_ERR_FORMAT,
               "t.yaml:2:5: ", "routes[0]: missing 'name'");
    expect_err("routes:\n  - name: a\n    description: d\n", AR_ERR_FORMAT,
               "t.yaml:2:5: ", "is missing 'model'");
    expect_err("routes:\n  - name: a\n    description: d\n    model: m\n    modle: x\n",
               AR_ERR_FORMAT, "t.yaml:5:5: ", "routes[0]: unknown key 'modle'");
    expect_err("routes:\n  - name: a\n    name: b\n    description: d\n    model: m\n",
               AR_ERR_FORMAT, "t.yaml:3:5: ", "key 'name' appears twice (first at line 2)");
    expect_err("providers:\n  - model: a/x\n"
               "routes:\n  - {name: a, description: d, model: a/z}\n",
               AR_ERR_FORMAT, "t.yaml:4:38: ", "model 'a/z' is not a listed provider");
    expect_err("routing_preferences:\n  - {name: a, description: d, models: []}\n", AR_ERR_FORMAT,
               "t.yaml:2:39: ", "list at least one model");
    char big_desc[5000 + 100];
    int n = snprintf(big_desc, sizeof big_desc,
                     "routes:\n  - name: a\n    model: m\n"
                     "    description: ");
    memset(big_desc + n, 'x', 4097);
    big_desc[n + 4097] = '\0';
    expect_err(big_desc, AR_ERR_FORMAT, "t.yaml:4:18: ", "4097 bytes, longer than the 4096");
}

static void test_provider_errors(void **state) {
    (void)state;
    expect_err("llm_providers:\n  - model: a/x\n    default: true\n"
               "  - model: b/y\n    default: true\n",
               AR_ERR_FORMAT, "t.yaml:4:5: ", "more than one provider has 'default: true'");
    expect_err("llm_providers:\n  - access_key: $K\n", AR_ERR_FORMAT,
               "t.yaml:2:5: ", "llm_providers[0]: missing 'model'");
    expect_err("llm_providers:\n  - model: gpt-4o\n", AR_ERR_FORMAT,
               "t.yaml:2:12: ", "llm_providers[0].model: 'gpt-4o' should read PROVIDER/MODEL");
    expect_err("llm_providers:\n  - model: openai/\n", AR_ERR_FORMAT,
               "t.yaml:2:12: ", "should read PROVIDER/MODEL");
    expect_err("llm_providers:\n  - model: a/x\n    acess_key: $K\n", AR_ERR_FORMAT,
               "t.yaml:3:5: ", "llm_providers[0]: unknown key 'acess_key'");
    expect_err("llm_providers:\n  - model: a/x\n    default: maybe\n", AR_ERR_FORMAT,
               "t.yaml:3:14: ", "llm_providers[0].default: expected true or false");
    expect_err("llm_providers:\n  - model: a/x\n    protocol: ftp\n    endpoint: h:1\n",
               AR_ERR_FORMAT, "t.yaml:3:15: ", "expected http or https, not 'ftp'");
    expect_err("llm_providers:\n  - model: a/x\n    base_url: http://h\n    endpoint: h:1\n",
               AR_ERR_FORMAT, "t.yaml:4:15: ", "either 'base_url' or 'endpoint'");
    expect_err("llm_providers:\n  - model: a/x\n  - model: a/x\n", AR_ERR_FORMAT,
               "t.yaml:3:5: ", "provider name 'a/x' is used twice (first at line 2)");
    expect_err("llm_providers:\n  - model: a/x\nproviders:\n  - model: b/y\n", AR_ERR_FORMAT,
               "t.yaml:3:1: ", "'llm_providers' and 'providers' both list them");
    expect_err("llm_providers:\n  - model: a/x\n    routing_preferences:\n"
               "      - {name: a, description: d, model: a/x}\n",
               AR_ERR_FORMAT, "t.yaml:4:35: ", "unknown key 'model'");
    expect_err("model_aliases:\n  fast: {target: a}\n  fast: {target: b}\n"
               "llm_providers: [{model: a/x}]\n",
               AR_ERR_FORMAT, "t.yaml:3:3: ", "alias 'fast' appears twice");
    expect_err("model_aliases:\n  fast: {targte: a}\nllm_providers: [{model: a/x}]\n",
               AR_ERR_FORMAT, "t.yaml:2:10: ", "model_aliases.fast: unknown key 'targte'");
    expect_err("model_aliases:\n  fast: a/x\nllm_providers: [{model: a/x}]\n", AR_ERR_FORMAT,
               "t.yaml:2:9: ", "model_aliases.fast: expected a mapping, not a scalar");
}

static void test_type_errors(void **state) {
    (void)state;
    expect_err("routes:\n  name: a\n", AR_ERR_FORMAT,
               "t.yaml:2:3: ", "routes: expected a list, not a mapping");
    expect_err("llm_providers:\n  - [model, a/x]\n", AR_ERR_FORMAT,
               "t.yaml:2:5: ", "llm_providers[0]: expected a mapping, not a list");
    expect_err("routes:\n  - {name: {x: 1}, description: d, model: m}\n", AR_ERR_FORMAT,
               "t.yaml:2:12: ", "routes[0].name: expected a string, not a mapping");
    expect_err("- a\n- b\n", AR_ERR_FORMAT,
               "t.yaml:1:1: ", "the configuration: expected a mapping, not a list");
    expect_err("? [a, b]\n: c\n", AR_ERR_FORMAT, "t.yaml:1:3: ", "a key must be plain text");
    expect_err("archrouter: [router]\n", AR_ERR_FORMAT,
               "t.yaml:1:13: ", "archrouter: expected a mapping, not a list");
    expect_err("routes:\n  - {name: \"a\\0b\", description: d, model: m}\n", AR_ERR_FORMAT,
               "t.yaml:2:12: ", "contains a NUL byte");
    expect_err("listeners: [{type: model, name: m, timeout: soon}]\n"
               "routes: [{name: a, description: d, model: m}]\n",
               AR_ERR_FORMAT, "t.yaml:1:45: ", "listeners[0].timeout: expected a duration");
}

static void test_settings_errors(void **state) {
    (void)state;
    const char *r = "routes: [{name: a, description: d, model: m}]\n";
    char buf[512];
#define SETTING(text, where, what)                                                                 \
    do {                                                                                           \
        snprintf(buf, sizeof buf, "%s%s", r, text);                                                \
        expect_err(buf, AR_ERR_FORMAT, where, what);                                               \
    } while (0)
    SETTING("archrouter:\n  router:\n    thread: 4\n",
            "t.yaml:4:5: ", "archrouter.router: unknown key 'thread'");
    SETTING("archrouter:\n  routr: {}\n", "t.yaml:3:3: ", "archrouter: unknown key 'routr'");
    SETTING("archrouter:\n  server:\n    port: 70000\n",
            "t.yaml:4:11: ", "archrouter.server.port: 70000 is out of range (0 to 65535)");
    SETTING("archrouter:\n  server:\n    port: \"80\"\n",
            "t.yaml:4:11: ", "archrouter.server.port: expected an integer");
    SETTING("archrouter:\n  server:\n    port: 8e3\n", "t.yaml:4:11: ", "not '8e3'");
    SETTING("archrouter:\n  router:\n    threads: -1\n", "t.yaml:4:14: ", "out of range");
    SETTING("archrouter:\n  router:\n    threads: 99999999999999999999\n",
            "t.yaml:4:14: ", "out of range");
    SETTING("archrouter:\n  router:\n    min_confidence: 1.5\n",
            "t.yaml:4:21: ", "archrouter.router.min_confidence: 1.5 is out of range (0 to 1)");
    SETTING("archrouter:\n  router:\n    min_confidence: nan\n",
            "t.yaml:4:21: ", "expected a number");
    SETTING("archrouter:\n  router:\n    layout: compact\n",
            "t.yaml:4:13: ", "expected card or archgw");
    SETTING("archrouter:\n  router:\n    scores: 1\n", "t.yaml:4:13: ", "expected true or false");
    SETTING("archrouter:\n  router:\n    precision: quick\n",
            "t.yaml:4:16: ", "archrouter.router.precision: expected accurate, fast or float32");
    SETTING("archrouter:\n  server:\n    max_body_bytes: 10\n", "t.yaml:4:21: ", "out of range");
    SETTING("archrouter:\n  server:\n    api_keys: sk-1\n",
            "t.yaml:4:15: ", "archrouter.server.api_keys: expected a list, not a scalar");
    SETTING("archrouter:\n  server:\n    api_keys: [\"\"]\n", "t.yaml:4:16: ", "an empty key");
    SETTING("archrouter:\n  server:\n    port: 1\n    port: 2\n",
            "t.yaml:5:5: ", "key 'port' appears twice");
    SETTING("archrouter:\n  server:\n    address: \"\"\n",
            "t.yaml:1:1: ", "address must not be empty");
#undef SETTING
}

static void test_yaml_errors(void **state) {
    (void)state;
    /* libyaml's own position and words. */
    expect_err("routes: [a, b\n", AR_ERR_FORMAT, "t.yaml:2:1: ", "YAML syntax error:");
    expect_err("routes:\n  - name: a\n   description: b\n", AR_ERR_FORMAT,
               "t.yaml:3:4: ", "YAML syntax error: did not find expected '-' indicator");
    expect_err("a: 1\n---\nb: 2\n", AR_ERR_FORMAT, "t.yaml:2:1: ", "more than one YAML document");
    expect_err("", AR_ERR_FORMAT, "t.yaml:1:1: ", "defines no routes and no providers");
    expect_err("# just a comment\n", AR_ERR_FORMAT, "t.yaml:1:1: ", "no routes and no providers");
    expect_err("version: v0.1\n", AR_ERR_FORMAT, "t.yaml:1:1: ", "no routes and no providers");
}

/* ---- hostile documents ------------------------------------------------------------------ */

static void test_aliases_refused(void **state) {
    (void)state;
    expect_err("a: &x foo\nroutes: [{name: *x, description: d, model: m}]\n", AR_ERR_FORMAT,
               "t.yaml:2:17: ", "YAML aliases (*x) are not supported");
    /* A billion laughs stops at the first alias, without expanding anything. */
    const char *laughs = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
                         "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                         "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                         "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                         "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n";
    expect_err(laughs, AR_ERR_FORMAT, "t.yaml:2:8: ", "aliases (*a)");
    /* Anchors alone are harmless. */
    ar_config_free(load_ok("routes: [&r {name: a, description: d, model: m}]\n"));
}

static void test_hostile_sizes(void **state) {
    (void)state;
    /* Deep nesting: stopped at the cap, not by the stack. */
    size_t depth = 100000;
    char *deep = malloc(depth + 1);
    assert_non_null(deep);
    memset(deep, '[', depth);
    deep[depth] = '\0';
    expect_err(deep, AR_ERR_LIMIT, "t.yaml:1:33: ", "nested more than 32 deep");
    free(deep);

    /* More routes than the cap. */
    size_t cap = 64 + (AR_CONFIG_MAX_ROUTES + 1) * 48;
    char *many = malloc(cap), *w = many;
    assert_non_null(many);
    w += sprintf(w, "routes:\n");
    for (int i = 0; i <= AR_CONFIG_MAX_ROUTES; i++)
        w += sprintf(w, "- {name: r%d, description: d, model: m}\n", i);
    expect_err(many, AR_ERR_LIMIT, "t.yaml:1026:3: ", "more than 1024 routes");
    /* Exactly the cap loads. */
    *strstr(many, "- {name: r1024") = '\0';
    ar_config *cfg = load_ok(many);
    assert_int_equal(cfg->n_routes, AR_CONFIG_MAX_ROUTES);
    assert_string_equal(cfg->routes[1023].name, "r1023");
    ar_config_free(cfg);
    free(many);

    /* Node count: a flat list of 200,000 scalars in an ignored key. */
    size_t n = 200000;
    char *flat = malloc(16 + 2 * n);
    assert_non_null(flat);
    w = flat + sprintf(flat, "x: [");
    for (size_t i = 0; i < n; i++) {
        *w++ = '1';
        *w++ = ',';
    }
    w[-1] = ']';
    *w = '\0';
    expect_err(flat, AR_ERR_LIMIT, "t.yaml:1:", "more than 100000 YAML nodes");
    free(flat);

    /* One scalar longer than the string cap. */
    size_t slen = AR_CONFIG_MAX_STRING + 10;
    char *lng = malloc(slen + 16);
    assert_non_null(lng);
    w = lng + sprintf(lng, "x: ");
    memset(w, 'a', slen);
    w[slen] = '\0';
    expect_err(lng, AR_ERR_LIMIT, "t.yaml:1:4: ", "longer than the 65536-byte limit");
    free(lng);

    /* The whole file. */
    size_t big = AR_CONFIG_MAX_FILE_BYTES + 1;
    char *huge = calloc(1, big);
    assert_non_null(huge);
    memset(huge, '#', big);
    expect_err_n(huge, big, AR_ERR_LIMIT, "t.yaml: ", "larger than the 4194304-byte limit");
    const char *path = ar_test_write_temp(0, "huge.yaml", huge, big);
    assert_non_null(path);
    ar_err e = {{0}};
    ar_config *c2 = NULL;
    assert_int_equal(ar_config_load_file(path, &c2, &e), AR_ERR_LIMIT);
    assert_null(c2);
    assert_non_null(strstr(e.msg, "4194304"));
    free(huge);
}

static void test_binary_junk(void **state) {
    (void)state;
    /* Invalid UTF-8 is a reader error with the position of the bad byte. */
    const char bad_utf8[] = "routes:\n  - name: ab\xff\n";
    expect_err_n(bad_utf8, sizeof bad_utf8 - 1, AR_ERR_FORMAT, "t.yaml:2:13: ", "YAML syntax");
    const char nul[] = "a: 1\n\0\x01\x02";
    expect_err_n(nul, sizeof nul - 1, AR_ERR_FORMAT, "t.yaml:2:1: ", "YAML syntax");
    /* Pseudo-random bytes never crash and always say something. */
    uint32_t x = 12345;
    char junk[512];
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof junk; i++) {
            x = x * 1664525u + 1013904223u;
            junk[i] = (char)(x >> 24);
        }
        ar_err e = {{0}};
        ar_config *cfg = NULL;
        ar_status st = ar_config_load_memory(junk, sizeof junk, "j", &cfg, &e);
        if (st == AR_OK) {
            ar_config_free(cfg);
        } else {
            assert_null(cfg);
            assert_true(strncmp(e.msg, "j:", 2) == 0);
        }
    }
}

static void test_files_and_args(void **state) {
    (void)state;
    ar_err e = {{0}};
    ar_config *cfg = NULL;
    assert_int_equal(ar_config_load_file("/nonexistent/routes.yaml", &cfg, &e), AR_ERR_IO);
    assert_non_null(strstr(e.msg, "/nonexistent/routes.yaml: cannot open"));
    assert_int_equal(ar_config_load_file(ar_test_temp_dir(), &cfg, &e), AR_ERR_IO);
    assert_int_equal(ar_config_load_file(NULL, &cfg, &e), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_config_load_memory("a", 1, NULL, NULL, &e), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_config_load_memory(NULL, 3, NULL, &cfg, &e), AR_ERR_INVALID_ARG);
    /* Errors in a file name the file. */
    const char *text = "routes:\n  - {name: other, description: d, model: m}\n";
    const char *path = ar_test_write_temp(1, "bad.yaml", text, strlen(text));
    assert_int_equal(ar_config_load_file(path, &cfg, &e), AR_ERR_FORMAT);
    char want[600];
    snprintf(want, sizeof want, "%s:2:12: ", path);
    assert_true(strncmp(e.msg, want, strlen(want)) == 0);
    /* Memory without a name. */
    assert_int_equal(ar_config_load_memory(text, strlen(text), NULL, &cfg, &e), AR_ERR_FORMAT);
    assert_true(strncmp(e.msg, "<memory>:2:12: ", 15) == 0);
    /* Text that is not NUL-terminated: only len bytes are read. */
    const char part[] = "routes: [{name: a, description: d, model: m}]\nXXXX: [";
    assert_int_equal(ar_config_load_memory(part, strlen(part) - 7, "p", &cfg, NULL), AR_OK);
    ar_config_free(cfg);
    ar_config_free(NULL);
}

/* ---- $ENV keys -------------------------------------------------------------------------- */

static void test_resolve_key(void **state) {
    (void)state;
    char out[64];
    ar_err e = {{0}};
    setenv("AR_TEST_KEY_1", "sk-secret", 1);
    assert_int_equal(ar_config_resolve_key("$AR_TEST_KEY_1", out, sizeof out, &e), AR_OK);
    assert_string_equal(out, "sk-secret");
    assert_int_equal(ar_config_resolve_key("${AR_TEST_KEY_1}-x", out, sizeof out, &e), AR_OK);
    assert_string_equal(out, "sk-secret-x");
    assert_int_equal(ar_config_resolve_key("$AR_TEST_KEY_1/v", out, sizeof out, &e), AR_OK);
    assert_string_equal(out, "sk-secret/v");
    assert_int_equal(ar_config_resolve_key("sk-literal$", out, sizeof out, &e), AR_OK);
    assert_string_equal(out, "sk-literal$");

    unsetenv("AR_TEST_KEY_UNSET");
    assert_int_equal(ar_config_resolve_key("$AR_TEST_KEY_UNSET", out, sizeof out, &e),
                     AR_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "environment variable AR_TEST_KEY_UNSET is not set"));
    setenv("AR_TEST_KEY_EMPTY", "", 1);
    assert_int_equal(ar_config_resolve_key("$AR_TEST_KEY_EMPTY", out, sizeof out, &e),
                     AR_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "AR_TEST_KEY_EMPTY"));
    assert_int_equal(ar_config_resolve_key("${AR_TEST_KEY_1", out, sizeof out, &e), AR_ERR_FORMAT);
    assert_int_equal(ar_config_resolve_key("$1abc", out, sizeof out, &e), AR_ERR_FORMAT);
    assert_int_equal(ar_config_resolve_key("$", out, sizeof out, &e), AR_ERR_FORMAT);
    /* "sk-secret" needs 10 bytes with its NUL. */
    assert_int_equal(ar_config_resolve_key("$AR_TEST_KEY_1", out, 9, &e), AR_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(ar_config_resolve_key("$AR_TEST_KEY_1", out, 10, &e), AR_OK);
    assert_int_equal(ar_config_resolve_key(NULL, out, 10, &e), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_config_resolve_key("x", out, 0, &e), AR_ERR_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_archgw),
        cmocka_unit_test(test_open_to_network),
        cmocka_unit_test(test_example_native),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_all_settings),
        cmocka_unit_test(test_archgw_ignored_keys),
        cmocka_unit_test(test_listener_list_form),
        cmocka_unit_test(test_top_level_routing_preferences),
        cmocka_unit_test(test_route_order),
        cmocka_unit_test(test_unicode_names),
        cmocka_unit_test(test_route_errors),
        cmocka_unit_test(test_provider_errors),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_settings_errors),
        cmocka_unit_test(test_yaml_errors),
        cmocka_unit_test(test_aliases_refused),
        cmocka_unit_test(test_hostile_sizes),
        cmocka_unit_test(test_binary_junk),
        cmocka_unit_test(test_files_and_args),
        cmocka_unit_test(test_resolve_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
