/*
 * public.c - the public face of the configuration file and conversation parsers
 * (include/archrouter.h, "Configuration and conversations"): thin conversions from the
 * internal structures of config.c and messages.c to the API's types.
 */
#include "archrouter.h"

#include "router/config.h"
#include "router/messages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void copy_err(const ar_err *e, char *buf, size_t cap) {
    if (buf && cap) snprintf(buf, cap, "%s", e->msg);
}

ar_status ar_config_load(const char *path, ar_config **out, char *errbuf, size_t errcap) {
    ar_err e = {{0}};
    if (!out) return AR_ERR_INVALID_ARG;
    *out = NULL;
    if (!path) {
        snprintf(errbuf, errcap, "no configuration file given");
        return AR_ERR_INVALID_ARG;
    }
    ar_status st = ar_config_load_file(path, out, &e);
    if (st != AR_OK) copy_err(&e, errbuf, errcap);
    return st;
}

int32_t ar_config_routes(const ar_config *cfg, ar_route *out, int32_t cap) {
    if (!cfg) return 0;
    for (size_t i = 0; i < cfg->n_routes && (int64_t)i < cap; i++) {
        const ar_config_route *r = &cfg->routes[i];
        out[i].name = r->name;
        out[i].description = r->description;
        out[i].model = r->model;
    }
    return (int32_t)cfg->n_routes;
}

ar_router_params ar_config_router_params(const ar_config *cfg) {
    ar_router_params p = ar_router_default_params();
    if (!cfg) return p;
    const ar_config_router *r = &cfg->router;
    p.layout = r->layout == AR_CONFIG_LAYOUT_ARCHGW ? AR_LAYOUT_ARCHGW : AR_LAYOUT_CARD;
    p.system_prompt = r->system_prompt;
    p.max_conversation_tokens = r->max_conversation_tokens;
    p.min_confidence = (float)r->min_confidence;
    p.scores = r->scores;
    p.prefix_cache_bytes = (size_t)r->prefix_cache_mb << 20;
    return p;
}

bool ar_config_router_remote(const ar_config *cfg, ar_remote_params *out) {
    if (!cfg || !out || !cfg->router.remote) return false;
    const ar_config_router *r = &cfg->router;
    ar_remote_params p = ar_remote_default_params();
    p.base_url = r->base_url;
    p.model = r->remote_model;
    p.api_key = r->api_key_env && *r->api_key_env ? getenv(r->api_key_env) : NULL;
    p.timeout_ms = r->timeout_ms;
    p.layout = r->layout == AR_CONFIG_LAYOUT_ARCHGW ? AR_LAYOUT_ARCHGW : AR_LAYOUT_CARD;
    p.system_prompt = r->system_prompt;
    p.max_conversation_tokens = r->max_conversation_tokens;
    p.min_confidence = (float)r->min_confidence;
    *out = p;
    return true;
}

const char *ar_config_router_model(const ar_config *cfg) {
    return cfg ? cfg->router.model : NULL;
}

int32_t ar_config_router_threads(const ar_config *cfg) {
    return cfg ? cfg->router.threads : 0;
}

int32_t ar_config_router_precision(const ar_config *cfg) {
    return cfg ? cfg->router.precision : -1;
}

const char *ar_config_default_model(const ar_config *cfg) {
    return cfg && cfg->default_provider >= 0 ? cfg->providers[cfg->default_provider].model : NULL;
}

bool ar_config_server_open_to_network(const ar_config *cfg) {
    if (!cfg || cfg->server.n_api_keys > 0) return false;
    const char *a = cfg->server.address ? cfg->server.address : "127.0.0.1";
    bool loopback = strncmp(a, "127.", 4) == 0 || strcmp(a, "::1") == 0 ||
                    strcmp(a, "localhost") == 0 || strcmp(a, "[::1]") == 0;
    return !loopback;
}

ar_status ar_conversation_parse(const char *json, size_t len, ar_message **msgs, int32_t *n,
                                char *errbuf, size_t errcap) {
    if (!msgs || !n) return AR_ERR_INVALID_ARG;
    *msgs = NULL;
    *n = 0;
    ar_err e = {{0}};
    ar_msg_list list = {0};
    ar_status st = json ? ar_messages_parse(json, len, &list, &e)
                        : ar_errf(&e, AR_ERR_INVALID_ARG, "no conversation text");
    if (st != AR_OK) {
        copy_err(&e, errbuf, errcap);
        return st;
    }
    /* One block: the message array, then each content string. */
    size_t bytes = list.n * sizeof(ar_message) + 1;
    for (size_t i = 0; i < list.n; i++) bytes += list.msgs[i].content_len + 1;
    ar_message *m = malloc(bytes);
    if (!m) {
        ar_msg_list_free(&list);
        snprintf(errbuf, errcap, "out of memory");
        return AR_ERR_NOMEM;
    }
    char *text = (char *)(m + list.n);
    for (size_t i = 0; i < list.n; i++) {
        m[i].role = ar_msg_role_name(list.msgs[i].role);
        memcpy(text, list.msgs[i].content, list.msgs[i].content_len);
        text[list.msgs[i].content_len] = 0;
        m[i].content = text;
        text += list.msgs[i].content_len + 1;
    }
    *msgs = m;
    *n = (int32_t)list.n;
    ar_msg_list_free(&list);
    return AR_OK;
}
