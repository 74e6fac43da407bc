/*
 * gateway.h - the gateway's internal entry points: start an OpenAI-compatible routing proxy
 * on a loaded configuration with any routing function (the real router, or a test double),
 * and stop it gracefully. include/archrouter.h wraps these for the router (ar_gateway_*).
 */
#ifndef AR_GATEWAY_GATEWAY_H
#define AR_GATEWAY_GATEWAY_H

#include "base/err.h"
#include "gateway/rqueue.h"
#include "router/config.h"

typedef struct ar_gw ar_gw;

typedef struct ar_gw_params {
    const ar_config *cfg; /* borrowed; must outlive the gateway */
    ar_gw_route_fn route; /* NULL: routing off (also when cfg has no routes) */
    void *route_ctx;
    int log_fd; /* JSON-lines access log; -1: none */
} ar_gw_params;

/* Resolve providers (base URLs, keys), bind the listener and start serving. Errors (a
 * provider without a known base_url, an unset key variable, a port in use) in err. */
ar_status ar_gw_start(const ar_gw_params *p, ar_gw **out, ar_err *err);

/* The port it listens on (the real one when the config asked for 0). */
int ar_gw_port(const ar_gw *gw);

/* Stop accepting, let in-flight requests finish for up to drain_ms, cancel the rest, free
 * everything. NULL is a no-op. */
void ar_gw_stop(ar_gw *gw, int drain_ms);

/* The base URL used for a provider kind ("openai" -> "https://api.openai.com/v1"), or NULL
 * when the kind is unknown (then the config must give base_url). */
const char *ar_gw_default_base_url(const char *provider);

#endif
