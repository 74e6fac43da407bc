/*
 * bench_route.c - the standard routing request for `archrouter bench --route CONFIG
 * --conversation FILE`: the time of whole routing decisions through the router API.
 *
 *   cold   a new router (empty prefix cache): the whole prompt runs
 *   warm   the router has seen the routes before (the prompt's head comes from the prefix
 *          cache) but not this conversation: a different one-message conversation is
 *          routed first, so only the conversation and the prompt's tail run
 *   scores warm, with every route's probability (--scores' extra tree pass)
 *   full   for comparison, what a generic server does with the same cached head: run the
 *          rest of the prompt and decode 8 tokens greedily with the full vocabulary
 *
 * Each is the median of `runs` decisions; the decisions are checked to agree.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_route.h"

static ar_router *make_router(ar_cli_model *m, const ar_cli_engine_opts *o, const ar_config *cfg,
                              const ar_route *routes, int32_t n, bool scores) {
    ar_router_params rp = ar_config_router_params(cfg);
    rp.scores = scores;
    rp.kv_type = o->sp.kv_type;
    ar_router *r = NULL;
    if (ar_router_new(m->engine, m->tok, &rp, &r) != AR_OK ||
        ar_router_set_routes(r, routes, n) != AR_OK) {
        ar_cli_fail("%s", ar_router_errmsg(r));
        ar_router_free(r);
        return NULL;
    }
    return r;
}

/* Generic decoding of the same prompt: the head [0, cached) in place, then the rest and 8
 * greedy tokens timed. */
static int full_decode(ar_cli_model *m, ar_router *r, const ar_message *conv, int32_t n_conv,
                       int32_t cached, double *ms) {
    char *text = NULL;
    int32_t *ids = NULL, n = 0;
    if (ar_router_prompt(r, conv, n_conv, &text, &ids, &n) != AR_OK)
        return ar_cli_fail("%s", ar_router_errmsg(r));
    free(text);
    int nv = ar_engine_n_vocab(m->engine);
    float *logits = malloc((size_t)nv * sizeof *logits);
    ar_seq_params sp = ar_seq_default_params();
    sp.n_ctx = n + 16;
    ar_seq *s = NULL;
    int rc = AR_EXIT_OK;
    if (!logits || ar_seq_new(m->engine, &sp, &s) != AR_OK ||
        (cached > 0 && ar_seq_eval(s, ids, cached, AR_LOGITS_NONE, NULL) != AR_OK)) {
        rc = ar_cli_fail("cannot run the prompt: %s", s ? ar_seq_errmsg(s) : "out of memory");
    } else {
        double t0 = ar_cli_now_ms();
        ar_status st = ar_seq_eval(s, ids + cached, n - cached, AR_LOGITS_LAST, logits);
        for (int i = 0; i < 8 && st == AR_OK; i++) {
            int32_t next = ar_cli_argmax(logits, nv);
            st = ar_seq_eval(s, &next, 1, AR_LOGITS_LAST, logits);
        }
        *ms = ar_cli_now_ms() - t0;
        if (st != AR_OK) rc = ar_cli_fail("%s", ar_seq_errmsg(s));
    }
    ar_seq_free(s);
    free(logits);
    free(ids);
    return rc;
}

int ar_cli_bench_route(ar_cli_model *m, const ar_cli_engine_opts *o, const char *config,
                       const char *conv_path, int runs, route_bench *out) {
    char err[1024];
    ar_config *cfg = NULL;
    if (ar_config_load(config, &cfg, err, sizeof err) != AR_OK) return ar_cli_fail("%s", err);
    int32_t n_routes = ar_config_routes(cfg, NULL, 0);
    ar_route *routes = calloc(n_routes > 0 ? (size_t)n_routes : 1, sizeof *routes);
    ar_config_routes(cfg, routes, n_routes);
    FILE *f = fopen(conv_path, "rb");
    size_t len = 0;
    char *text = f ? ar_cli_read_stream(f, &len) : NULL;
    if (f) fclose(f);
    ar_message *conv = NULL;
    int32_t n_conv = 0;
    double *t = calloc((size_t)runs * 4, sizeof *t);
    int rc = AR_EXIT_OK;
    if (!routes || !t)
        rc = ar_cli_fail("out of memory");
    else if (!text)
        rc = ar_cli_fail("cannot read %s", conv_path);
    else if (ar_conversation_parse(text, len, &conv, &n_conv, err, sizeof err) != AR_OK)
        rc = ar_cli_fail("%s: %s", conv_path, err);
    ar_message other = {"user", "hello there"};
    bool have_answer = false;
    for (int i = 0; i < runs && rc == AR_EXIT_OK; i++) {
        for (int mode = 0; mode < 3 && rc == AR_EXIT_OK; mode++) {
            ar_router *r = make_router(m, o, cfg, routes, n_routes, mode == 2);
            if (!r) {
                rc = AR_EXIT_FAIL;
                break;
            }
            ar_route_result res = {0};
            if (mode > 0 && ar_router_route(r, &other, 1, &res) != AR_OK) /* warm the head */
                rc = ar_cli_fail("%s", ar_router_errmsg(r));
            ar_route_result_clear(&res);
            if (rc == AR_EXIT_OK && ar_router_route(r, conv, n_conv, &res) != AR_OK)
                rc = ar_cli_fail("%s", ar_router_errmsg(r));
            if (rc == AR_EXIT_OK) {
                t[mode * runs + i] = res.total_ms;
                if (!have_answer) /* res.answer lives in the router: keep a copy */
                    snprintf(out->answer, sizeof out->answer, "%s", res.answer);
                have_answer = true;
                if (mode == 1) {
                    out->prompt_tokens = res.prompt_tokens;
                    out->cached_tokens = res.cached_tokens;
                    out->decode_steps = res.decode_steps;
                }
                if (strcmp(res.answer, out->answer) != 0)
                    rc = ar_cli_fail("decisions differ between runs: %s and %s", out->answer,
                                     res.answer);
            }
            if (rc == AR_EXIT_OK && mode == 1)
                rc = full_decode(m, r, conv, n_conv, res.cached_tokens, &t[3 * runs + i]);
            ar_route_result_clear(&res);
            ar_router_free(r);
        }
    }
    if (rc == AR_EXIT_OK) {
        out->cold_ms = ar_cli_median(t, runs);
        out->warm_ms = ar_cli_median(t + runs, runs);
        out->scores_ms = ar_cli_median(t + 2 * runs, runs);
        out->full_ms = ar_cli_median(t + 3 * runs, runs);
        out->n_routes = n_routes;
    }
    free(t);
    free(conv);
    free(text);
    free(routes);
    ar_config_free(cfg);
    return rc;
}
