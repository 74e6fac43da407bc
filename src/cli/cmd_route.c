/*
 * cmd_route.c - `archrouter route`: route conversations with the router model.
 *
 * The routes come from a configuration file (archgw's format or the native one); the model
 * from -m, the file's archrouter.router.model, $ARCHROUTER_MODEL, or the default hub file
 * if `archrouter pull` has cached it (a hub reference is looked up in the cache, never
 * downloaded here). Each MESSAGE argument is routed as a one-message conversation, in
 * order, on one loaded model (the prefix cache makes all but the first cheaper); -f reads
 * an OpenAI `messages` array or chat request from a file or standard input. With
 * `backend: remote` in the config's archrouter.router section no model is loaded: the
 * decisions go to the configured chat completions server (ar_router_new_remote).
 */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int usage(FILE *f) {
    fprintf(f,
            "Usage: archrouter route -c CONFIG [-m MODEL] [OPTIONS] MESSAGE...\n"
            "       archrouter route -c CONFIG [-m MODEL] [OPTIONS] -f CONVERSATION.json|-\n\n"
            "Names the route that fits the user's latest intent, as Arch-Router decides it:\n"
            "the routes and their descriptions come from CONFIG (Katanemo archgw's format or\n"
            "archrouter's native `routes:` form; see docs/config.md). Each MESSAGE is routed\n"
            "as a conversation of one user message; -f reads a conversation: an OpenAI\n"
            "`messages` array or a chat completions request (\"-\" reads standard input).\n\n"
            "Prints the route (\"(none)\" when the model answers \"other\" or the probability\n"
            "is below min_confidence), the model it maps to, the probability, the prompt's\n"
            "tokens (how many came from the prefix cache) and the time it took.\n\n"
            "  -c, --config FILE        routes configuration (required)\n"
            "  -m, --model MODEL        router model: a GGUF file, a checkpoint directory, or a\n"
            "                           hub reference cached by `archrouter pull` (default:\n"
            "                           the config's archrouter.router.model, then\n"
            "                           $ARCHROUTER_MODEL, then the default hub file)\n"
            "  -f, --file FILE          route the conversation in FILE (\"-\": stdin)\n"
            "  --scores                 every route's probability (one extra forward pass)\n"
            "  --json                   one JSON object per conversation: route, model,\n"
            "                           probability, scores (with --scores), tokens, timing_ms\n"
            "  --explain                print the prompt and every route's probability\n"
            "  --layout card|archgw     prompt layout (default: the config's, else card)\n"
            "  --min-confidence P       below P the result is no route (default: config's)\n"
            "  -h, --help               show this help\n\n%s",
            ar_cli_engine_help);
    return f == stdout ? ar_cli_finish_output(AR_EXIT_OK) : AR_EXIT_USAGE;
}

typedef struct route_opts {
    const char *config, *model, *file;
    bool scores, json, explain;
    int layout;           /* -1: the config's */
    float min_confidence; /* < 0: the config's */
} route_opts;

static void print_scores(FILE *f, const ar_route *routes, const ar_route_result *r) {
    /* largest first */
    int32_t order[1025];
    int32_t n = r->n_scores < 1025 ? r->n_scores : 1025;
    for (int32_t i = 0; i < n; i++) order[i] = i;
    for (int32_t i = 1; i < n; i++)
        for (int32_t j = i; j > 0 && r->scores[order[j]] > r->scores[order[j - 1]]; j--) {
            int32_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int32_t i = 0; i < n; i++) {
        int32_t a = order[i];
        fprintf(f, "  %-28s %8.4f  (log-prob %.3f)\n", a < n - 1 ? routes[a].name : "other",
                r->scores[a], r->logprobs[a]);
    }
}

static void print_result(const route_opts *o, const ar_route *routes, const ar_route_result *r,
                         const char *label) {
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "route", r->route ? json_string(r->route) : json_null());
        json_object_set_new(j, "answer", json_string(r->answer));
        json_object_set_new(j, "model", r->model ? json_string(r->model) : json_null());
        json_object_set_new(j, "probability", json_real(r->probability));
        if (r->n_scores > 0) {
            json_t *s = json_object();
            for (int32_t a = 0; a < r->n_scores; a++)
                json_object_set_new(s, a < r->n_scores - 1 ? routes[a].name : "other",
                                    json_real(r->scores[a]));
            json_object_set_new(j, "scores", s);
        }
        json_object_set_new(j, "tokens",
                            json_pack("{s:i, s:i, s:i, s:i, s:b}", "prompt", r->prompt_tokens,
                                      "cached", r->cached_tokens, "decode_steps", r->decode_steps,
                                      "messages", r->messages_used, "truncated", r->truncated));
        json_object_set_new(j, "timing_ms",
                            json_pack("{s:f, s:f, s:f, s:f, s:f}", "tokenize", r->tokenize_ms,
                                      "prefill", r->prefill_ms, "decode", r->decode_ms, "scores",
                                      r->scores_ms, "total", r->total_ms));
        char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
        if (s) printf("%s\n", s);
        free(s);
        json_decref(j);
        return;
    }
    if (label) printf("%s\n", label);
    printf("  route        %s%s\n", r->route ? r->route : "(none)",
           r->route                          ? ""
           : strcmp(r->answer, "other") == 0 ? "  (the model answered \"other\")"
                                             : "  (below min_confidence)");
    printf("  model        %s\n", r->model ? r->model : "(default)");
    printf("  probability  %.4f\n", r->probability);
    printf("  tokens       %d prompt (%d from the prefix cache), %d decode step%s%s\n",
           r->prompt_tokens, r->cached_tokens, r->decode_steps, r->decode_steps == 1 ? "" : "s",
           r->truncated ? ", conversation truncated" : "");
    printf("  time         %.1f ms (tokenize %.1f, prefill %.1f, decode %.1f", r->total_ms,
           r->tokenize_ms, r->prefill_ms, r->decode_ms);
    if (r->n_scores > 0) printf(", scores %.1f", r->scores_ms);
    printf(")\n");
    if (r->n_scores > 0) {
        printf("  scores\n");
        print_scores(stdout, routes, r);
    }
}

static int route_one(ar_router *router, const route_opts *o, const ar_route *routes,
                     const ar_message *msgs, int32_t n, const char *label) {
    if (o->explain) {
        char *text = NULL;
        int32_t n_ids = 0;
        if (ar_router_prompt(router, msgs, n, &text, NULL, &n_ids) != AR_OK)
            return ar_cli_fail("%s", ar_router_errmsg(router));
        printf("----- prompt (%d tokens) -----\n%s\n----- end of prompt -----\n", n_ids, text);
        free(text);
    }
    ar_route_result res;
    if (ar_router_route(router, msgs, n, &res) != AR_OK)
        return ar_cli_fail("%s", ar_router_errmsg(router));
    print_result(o, routes, &res, label);
    ar_route_result_clear(&res);
    return AR_EXIT_OK;
}

static int parse_args(int argc, char **argv, route_opts *o, ar_cli_engine_opts *eo, int *first_msg,
                      int *n_msgs) {
    *first_msg = -1;
    *n_msgs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = ar_cli_engine_option("route", argc, argv, &i, eo);
        if (r < 0) return AR_EXIT_USAGE;
        if (r > 0) continue;
        bool has = i + 1 < argc;
        if (ar_cli_is_help(a)) return usage(stdout);
        if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && has) {
            o->config = argv[++i];
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) {
            o->model = argv[++i];
        } else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && has) {
            o->file = argv[++i];
        } else if (!strcmp(a, "--scores")) {
            o->scores = true;
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--explain")) {
            o->explain = true;
        } else if (!strcmp(a, "--layout") && has) {
            const char *v = argv[++i];
            if (strcmp(v, "card") && strcmp(v, "archgw"))
                return ar_cli_usage_error("route", "--layout must be card or archgw, not '%s'", v);
            o->layout = strcmp(v, "card") ? AR_LAYOUT_ARCHGW : AR_LAYOUT_CARD;
        } else if (!strcmp(a, "--min-confidence") && has) {
            char *end;
            double v = strtod(argv[++i], &end);
            if (*end || !(v >= 0 && v <= 1))
                return ar_cli_usage_error("route", "--min-confidence must be within 0..1");
            o->min_confidence = (float)v;
        } else if (a[0] == '-' && a[1]) {
            return ar_cli_usage_error("route", "unknown or incomplete option '%s'", a);
        } else {
            if (*first_msg < 0) *first_msg = i;
            (*n_msgs)++;
            if (*first_msg + *n_msgs - 1 != i)
                return ar_cli_usage_error("route", "options must come before the messages");
        }
    }
    if (!o->config) return ar_cli_usage_error("route", "no routes: give a configuration with -c");
    if (!o->file && *n_msgs == 0)
        return ar_cli_usage_error("route", "nothing to route: give a MESSAGE or -f FILE");
    if (o->file && *n_msgs > 0)
        return ar_cli_usage_error("route", "give either MESSAGEs or -f, not both");
    return -1;
}

int ar_cmd_route(int argc, char **argv) {
    route_opts o = {.layout = -1, .min_confidence = -1};
    ar_cli_engine_opts eo;
    ar_cli_engine_opts_init(&eo);
    int first = -1, n_msgs = 0;
    int rc = parse_args(argc, argv, &o, &eo, &first, &n_msgs);
    if (rc >= 0) return rc;

    char err[1024];
    ar_config *cfg = NULL;
    if (ar_config_load(o.config, &cfg, err, sizeof err) != AR_OK) return ar_cli_fail("%s", err);
    int32_t n_routes = ar_config_routes(cfg, NULL, 0);
    ar_route *routes = calloc(n_routes > 0 ? (size_t)n_routes : 1, sizeof *routes);
    ar_cli_model m = {0};
    ar_router *router = NULL;
    char *conv_text = NULL;
    ar_message *conv = NULL;
    int32_t n_conv = 0;
    char path[4096];
    if (!routes) {
        rc = ar_cli_fail("out of memory");
        goto done;
    }
    ar_config_routes(cfg, routes, n_routes);
    if (n_routes == 0) {
        rc = ar_cli_fail("%s has no routes (routing_preferences or routes)", o.config);
        goto done;
    }
    if (o.file) { /* read the conversation before the model: a bad file fails fast */
        FILE *f = strcmp(o.file, "-") ? fopen(o.file, "rb") : stdin;
        size_t len = 0;
        if (!f) {
            rc = ar_cli_fail("cannot open %s", o.file);
            goto done;
        }
        conv_text = ar_cli_read_stream(f, &len);
        if (f != stdin) fclose(f);
        if (!conv_text) {
            rc = ar_cli_fail("cannot read %s", o.file);
            goto done;
        }
        if (ar_conversation_parse(conv_text, len, &conv, &n_conv, err, sizeof err) != AR_OK) {
            rc = ar_cli_fail("%s: %s", o.file, err);
            goto done;
        }
    }
    ar_remote_params remote;
    if (ar_config_router_remote(cfg, &remote) && !o.model) {
        if (o.layout >= 0) remote.layout = (ar_prompt_layout)o.layout;
        if (o.min_confidence >= 0) remote.min_confidence = o.min_confidence;
        if (ar_router_new_remote(&remote, &router) != AR_OK ||
            ar_router_set_routes(router, routes, n_routes) != AR_OK) {
            rc = ar_cli_fail("%s", ar_router_errmsg(router));
            goto done;
        }
        if (!o.json)
            fprintf(stderr, "archrouter: %d routes from %s; remote router %s at %s\n",
                    (int)n_routes, o.config, remote.model, remote.base_url);
        rc = AR_EXIT_OK;
        goto route;
    }
    rc = ar_cli_resolve_model(o.model, o.config, cfg, path, sizeof path);
    if (rc != AR_EXIT_OK) goto done;
    if (eo.ep.n_threads == 0) eo.ep.n_threads = ar_config_router_threads(cfg);
    if (!eo.precision_given && ar_config_router_precision(cfg) >= 0)
        eo.ep.precision = (ar_precision)ar_config_router_precision(cfg);
    rc = ar_cli_open_model(path, &eo, true, &m);
    if (rc != AR_EXIT_OK) goto done;
    ar_router_params rp = ar_config_router_params(cfg);
    if (o.layout >= 0) rp.layout = (ar_prompt_layout)o.layout;
    if (o.min_confidence >= 0) rp.min_confidence = o.min_confidence;
    rp.scores = rp.scores || o.scores || o.explain;
    rp.kv_type = eo.sp.kv_type;
    if (ar_router_new(m.engine, m.tok, &rp, &router) != AR_OK ||
        ar_router_set_routes(router, routes, n_routes) != AR_OK) {
        rc = ar_cli_fail("%s", ar_router_errmsg(router));
        goto done;
    }
    if (!o.json)
        fprintf(stderr,
                "archrouter: %d routes from %s; model %s loaded in %.0f ms (%d threads, "
                "%s kernels)\n",
                (int)n_routes, o.config, path, m.load_ms, ar_engine_n_threads(m.engine),
                ar_engine_cpu_name(m.engine));
route:
    if (o.file) {
        rc = route_one(router, &o, routes, conv, n_conv, NULL);
    } else {
        for (int i = 0; i < n_msgs && rc == AR_EXIT_OK; i++) {
            ar_message one = {"user", argv[first + i]};
            char label[128];
            snprintf(label, sizeof label, "\"%.100s%s\"", argv[first + i],
                     strlen(argv[first + i]) > 100 ? "..." : "");
            rc = route_one(router, &o, routes, &one, 1, label);
        }
    }
done:
    ar_router_free(router);
    ar_cli_close_model(&m);
    free(conv);
    free(conv_text);
    free(routes);
    ar_config_free(cfg);
    return ar_cli_finish_output(rc);
}
