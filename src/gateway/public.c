/*
 * public.c - the gateway's public API (include/archrouter.h, "Gateway"): ar_gateway wraps
 * the internal ar_gw with the router as its routing function.
 */
#include "archrouter.h"
#include "gateway/gateway.h"

#include <stdio.h>
#include <stdlib.h>

struct ar_gateway {
    ar_gw *gw;
};

/* The routing function over ar_router; only the queue's worker thread calls it, so the
 * router's last-error message is this call's. */
static ar_status route_with_router(void *ctx, const ar_message *msgs, int32_t n,
                                   ar_route_result *out, ar_err *err) {
    ar_router *router = ctx;
    ar_status st = ar_router_route(router, msgs, n, out);
    if (st != AR_OK) ar_errf(err, st, "%s", ar_router_errmsg(router));
    return st;
}

ar_status ar_gateway_start(const ar_config *cfg, ar_router *router, int access_log_fd,
                           ar_gateway **out, char *errbuf, size_t errcap) {
    ar_err err = {{0}};
    ar_status st = AR_OK;
    if (out) *out = NULL;
    if (!cfg || !out) {
        st = ar_errf(&err, AR_ERR_INVALID_ARG, "ar_gateway_start: NULL argument");
    } else if (cfg->n_routes > 0 && !router) {
        st = ar_errf(&err, AR_ERR_INVALID_ARG,
                     "%s has routes but no router was given: routing needs the router model",
                     cfg->source);
    } else {
        ar_gateway *g = calloc(1, sizeof *g);
        if (!g) {
            st = ar_errf(&err, AR_ERR_NOMEM, "out of memory");
        } else {
            ar_gw_params p = {cfg, router ? route_with_router : NULL, router, access_log_fd};
            st = ar_gw_start(&p, &g->gw, &err);
            if (st == AR_OK)
                *out = g;
            else
                free(g);
        }
    }
    if (st != AR_OK && errbuf && errcap) snprintf(errbuf, errcap, "%s", err.msg);
    return st;
}

int32_t ar_gateway_port(const ar_gateway *gw) {
    return gw ? ar_gw_port(gw->gw) : 0;
}

void ar_gateway_stop(ar_gateway *gw, int32_t drain_ms) {
    if (!gw) return;
    ar_gw_stop(gw->gw, drain_ms);
    free(gw);
}
