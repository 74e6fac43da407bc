/*
 * cmd_serve.c - `archrouter serve`: the OpenAI-compatible routing proxy (docs/gateway.md).
 *
 * Loads the configuration; when it has routes, loads the router model (resolved like
 * `archrouter route`: -m, the config's archrouter.router.model, $ARCHROUTER_MODEL, the
 * pull cache) and makes a router with the config's settings and routes; then starts the
 * gateway and waits for SIGINT or SIGTERM. The signals are blocked in every thread (the
 * gateway's threads inherit the mask) and taken synchronously with sigwait() here, so no
 * handler and no global flag are needed. On a signal the gateway stops accepting and lets
 * in-flight requests finish for up to --drain-ms.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int usage(FILE *f) {
    fprintf(f,
            "Usage: archrouter serve -c CONFIG [-m MODEL] [OPTIONS]\n\n"
            "Runs an OpenAI-compatible HTTP gateway: every POST /v1/chat/completions is\n"
            "routed by the routes of CONFIG with the Arch-Router model and forwarded to the\n"
            "chosen provider (streaming included). Without routes in CONFIG, the request's\n"
            "`model` picks the provider and no model is loaded. Listens on the config's\n"
            "archrouter.server address and port (default 127.0.0.1:12000). Endpoints,\n"
            "headers, metrics and the access log format: docs/gateway.md.\n\n"
            "  -c, --config FILE        gateway configuration (required)\n"
            "  -m, --model MODEL        router model (default: the config's\n"
            "                           archrouter.router.model, then $ARCHROUTER_MODEL,\n"
            "                           then the default hub file cached by `archrouter pull`)\n"
            "  --access-log FILE        JSON-lines access log: a file (appended), '-' for\n"
            "                           stderr (default) or 'off'\n"
            "  --drain-ms N             on SIGTERM/SIGINT, let requests in flight finish for\n"
            "                           up to N ms (default 10000)\n"
            "  -h, --help               show this help\n\n%s",
            ar_cli_engine_help);
    return f == stdout ? ar_cli_finish_output(AR_EXIT_OK) : AR_EXIT_USAGE;
}

typedef struct serve_opts {
    const char *config, *model, *access_log;
    long drain_ms;
} serve_opts;

static int parse_args(int argc, char **argv, serve_opts *o, ar_cli_engine_opts *eo) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = ar_cli_engine_option("serve", argc, argv, &i, eo);
        if (r < 0) return AR_EXIT_USAGE;
        if (r > 0) continue;
        bool has = i + 1 < argc;
        if (ar_cli_is_help(a)) return usage(stdout);
        if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && has) {
            o->config = argv[++i];
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) {
            o->model = argv[++i];
        } else if (!strcmp(a, "--access-log") && has) {
            o->access_log = argv[++i];
        } else if (!strcmp(a, "--drain-ms") && has) {
            char *end;
            o->drain_ms = strtol(argv[++i], &end, 10);
            if (*end || o->drain_ms < 0 || o->drain_ms > 3600000)
                return ar_cli_usage_error("serve", "--drain-ms must be within 0..3600000");
        } else {
            return ar_cli_usage_error("serve", "unknown or incomplete option '%s'", a);
        }
    }
    if (!o->config) return ar_cli_usage_error("serve", "no configuration: give one with -c");
    return -1;
}

int ar_cmd_serve(int argc, char **argv) {
    serve_opts o = {.access_log = "-", .drain_ms = 10000};
    ar_cli_engine_opts eo;
    ar_cli_engine_opts_init(&eo);
    int rc = parse_args(argc, argv, &o, &eo);
    if (rc >= 0) return rc;

    char err[1024];
    ar_config *cfg = NULL;
    ar_cli_model m = {0};
    ar_router *router = NULL;
    ar_route *routes = NULL;
    ar_gateway *gw = NULL;
    int log_fd = -1;
    if (ar_config_load(o.config, &cfg, err, sizeof err) != AR_OK) return ar_cli_fail("%s", err);
    if (!strcmp(o.access_log, "-")) {
        log_fd = STDERR_FILENO;
    } else if (strcmp(o.access_log, "off") != 0) {
        log_fd = open(o.access_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (log_fd < 0) {
            rc = ar_cli_fail("cannot open the access log %s: %s", o.access_log, strerror(errno));
            goto done;
        }
    }
    int32_t n_routes = ar_config_routes(cfg, NULL, 0);
    if (n_routes > 0) {
        char path[4096];
        routes = calloc((size_t)n_routes, sizeof *routes);
        if (!routes) {
            rc = ar_cli_fail("out of memory");
            goto done;
        }
        ar_config_routes(cfg, routes, n_routes);
        ar_remote_params remote;
        if (ar_config_router_remote(cfg, &remote) && !o.model) { /* router served elsewhere */
            if (ar_router_new_remote(&remote, &router) != AR_OK ||
                ar_router_set_routes(router, routes, n_routes) != AR_OK) {
                rc = ar_cli_fail("%s", ar_router_errmsg(router));
                goto done;
            }
            fprintf(stderr, "archrouter: %d routes; remote router %s at %s\n", (int)n_routes,
                    remote.model, remote.base_url);
            goto start;
        }
        rc = ar_cli_resolve_model(o.model, o.config, cfg, path, sizeof path);
        if (rc != AR_EXIT_OK) goto done;
        if (eo.ep.n_threads == 0) eo.ep.n_threads = ar_config_router_threads(cfg);
        if (!eo.precision_given && ar_config_router_precision(cfg) >= 0)
            eo.ep.precision = (ar_precision)ar_config_router_precision(cfg);
        rc = ar_cli_open_model(path, &eo, true, &m);
        if (rc != AR_EXIT_OK) goto done;
        ar_router_params rp = ar_config_router_params(cfg);
        rp.kv_type = eo.sp.kv_type;
        if (ar_router_new(m.engine, m.tok, &rp, &router) != AR_OK ||
            ar_router_set_routes(router, routes, n_routes) != AR_OK) {
            rc = ar_cli_fail("%s", ar_router_errmsg(router));
            goto done;
        }
        fprintf(stderr, "archrouter: %d routes; router model %s loaded in %.0f ms\n", (int)n_routes,
                path, m.load_ms);
    }
start:
    if (ar_config_server_open_to_network(cfg))
        fprintf(stderr, "archrouter: warning: listening beyond loopback without client API keys: "
                        "anyone who reaches the port can use the providers' keys; set "
                        "archrouter.server.api_keys (docs/gateway.md)\n");
    /* Block the stop signals before any gateway thread exists; they inherit the mask. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (ar_gateway_start(cfg, router, log_fd, &gw, err, sizeof err) != AR_OK) {
        rc = ar_cli_fail("%s", err);
        goto done;
    }
    fprintf(stderr, "archrouter: serving on port %d (%s); stop with Ctrl-C or SIGTERM\n",
            (int)ar_gateway_port(gw), n_routes > 0 ? "routing on" : "routing off");
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "archrouter: %s: stopping (finishing requests for up to %ld ms)\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", o.drain_ms);
    ar_gateway_stop(gw, (int32_t)o.drain_ms);
    fprintf(stderr, "archrouter: stopped\n");
    rc = AR_EXIT_OK;
done:
    ar_router_free(router);
    ar_cli_close_model(&m);
    free(routes);
    ar_config_free(cfg);
    if (log_fd > STDERR_FILENO) close(log_fd);
    return ar_cli_finish_output(rc);
}
