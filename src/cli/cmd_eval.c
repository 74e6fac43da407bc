/*
 * cmd_eval.c - `archrouter eval`: routing accuracy on labelled conversations.
 *
 * The data (docs/eval.md) is read and checked first (eval_data.c); --limit/--sample cut it
 * per file. Every labelled user turn becomes one decision: the conversation's own routes
 * (ar_router_set_routes) and its messages up to and including that turn. With -m the
 * decisions run on one local router in order (the prefix cache keeps each route set's
 * prompt head, so a conversation's later turns only run their own text); with --remote
 * every worker thread (--concurrency) has its own remote router and takes whole
 * conversations from a shared counter. Outcomes land in a per-turn array in data order,
 * so the output never depends on thread timing. A failed decision is an error: scored
 * wrong, counted, shown in the predictions file and summarized on stderr.
 *
 * A progress bar (turns done, rate, ETA) is drawn on stderr when it is a terminal.
 */
#include "cli.h"
#include "cli/eval.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int usage(FILE *f) {
    fprintf(f,
            "Usage: archrouter eval -m MODEL [OPTIONS] DATA.jsonl...\n"
            "       archrouter eval --remote BASE_URL --remote-model NAME [OPTIONS] "
            "DATA.jsonl...\n\n"
            "Measures routing accuracy on conversations with a gold route for each user\n"
            "turn (the format is in docs/eval.md): turn, span and conversation accuracy per\n"
            "file and pooled (micro average), per-route precision/recall/F1, a confusion\n"
            "matrix, the rate of \"other\" answers and the latency per decision. Each\n"
            "labelled turn is routed with the conversation up to and including it, with the\n"
            "conversation's own routes. A failed decision is counted as an error and scored\n"
            "wrong.\n\n"
            "  -m, --model MODEL        local router model (GGUF file, checkpoint directory,\n"
            "                           or a hub reference cached by `archrouter pull`)\n"
            "  --remote BASE_URL        an OpenAI-compatible API root (http://host:8000/v1):\n"
            "                           the router model, or any LLM, served elsewhere\n"
            "  --remote-model NAME      the model name to ask the server for\n"
            "  --api-key-env VAR        send the key in $VAR as a bearer token\n"
            "  --concurrency N          remote requests in flight (default 4)\n"
            "  --timeout-ms MS          per remote request (default 30000)\n"
            "  --retries N              retries after 429/5xx/failed connections (default 2)\n"
            "  --layout card|archgw     prompt layout (default card)\n"
            "  --limit N                at most N conversations from each file\n"
            "  --sample                 with --limit: a random choice, not the first N\n"
            "  --seed S                 the --sample seed (default 0)\n"
            "  --skip-invalid           skip (and count) lines that break the format instead\n"
            "                           of stopping at the first one\n"
            "  --json                   print one JSON object instead of the table\n"
            "  --predictions FILE       one JSON line per labelled turn: id, source,\n"
            "                           message_index, gold, predicted, probability,\n"
            "                           latency_ms, correct (and error or invalid)\n"
            "  --report FILE.html       a self-contained HTML report (charts, heat map)\n"
            "  --no-progress            no progress bar\n"
            "  -h, --help               show this help\n\n"
            "Exit status: 0 when the evaluation ran (errors are reported in the results),\n"
            "1 when it could not run, every decision failed or an output could not be\n"
            "written, 2 for usage errors.\n\n%s",
            ar_cli_engine_help);
    return f == stdout ? ar_cli_finish_output(AR_EXIT_OK) : AR_EXIT_USAGE;
}

typedef struct eval_opts {
    const char *model, *remote, *remote_model, *api_key_env;
    const char *predictions, *report;
    int concurrency, timeout_ms, retries, limit, layout;
    uint64_t seed;
    bool sample, skip_invalid, json, progress;
} eval_opts;

/* ---- running ------------------------------------------------------------------------------- */

typedef struct runner {
    const ev_data *d;
    ev_turn *turns;
    int32_t *first; /* per conversation: its first turn */
    atomic_int next;
    pthread_mutex_t mu; /* progress */
    int64_t done, total;
    double t0, last_draw;
    bool progress;
    const ar_remote_params *rp; /* remote mode */
    ar_router *local;           /* local mode */
    ar_status setup_status;
    char setup_err[512];
} runner;

static void draw_progress(runner *r, bool final) {
    double t = ar_cli_now_ms();
    if (!final && t - r->last_draw < 100) return;
    r->last_draw = t;
    double el = (t - r->t0) / 1000, rate = el > 0 ? (double)r->done / el : 0;
    double eta = rate > 0 ? (double)(r->total - r->done) / rate : 0;
    int width = 30, fill = r->total ? (int)(width * r->done / r->total) : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r[%s] %lld/%lld turns  %.1f/s  ETA %d:%02d ", bar, (long long)r->done,
            (long long)r->total, rate, (int)eta / 60, (int)eta % 60);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

static void one_done(runner *r) {
    pthread_mutex_lock(&r->mu);
    r->done++;
    if (r->progress) draw_progress(r, false);
    pthread_mutex_unlock(&r->mu);
}

/* The conversation's own string for a route name the router returned. */
static const char *own_name(const ev_conv *c, const char *answer) {
    if (!strcmp(answer, "other")) return "other";
    for (int32_t i = 0; i < c->n_routes; i++)
        if (!strcmp(c->routes[i].name, answer)) return c->routes[i].name;
    return NULL;
}

static void fail_turn(ev_turn *t, const char *msg) {
    t->outcome = EV_ERROR;
    t->pred = NULL;
    t->error = strdup(msg && *msg ? msg : "unknown error");
}

static void run_conv(runner *rn, ar_router *router, int32_t ci) {
    const ev_conv *c = &rn->d->convs[ci];
    ev_turn *t = rn->turns + rn->first[ci];
    ar_status st = ar_router_set_routes(router, c->routes, c->n_routes);
    for (int32_t k = 0; k < c->n_labels; k++) {
        if (st != AR_OK) {
            char msg[600];
            snprintf(msg, sizeof msg, "routes: %s", ar_router_errmsg(router));
            fail_turn(&t[k], msg);
            one_done(rn);
            continue;
        }
        ar_route_result res;
        double t0 = ar_cli_now_ms();
        ar_status rs = ar_router_route(router, c->msgs, c->labels[k].message_index + 1, &res);
        t[k].latency_ms = rs == AR_OK ? res.total_ms : ar_cli_now_ms() - t0;
        if (rs != AR_OK) {
            fail_turn(&t[k], ar_router_errmsg(router));
        } else if (res.invalid_answer || !own_name(c, res.answer)) {
            t[k].outcome = EV_INVALID;
            t[k].probability = res.probability;
        } else {
            t[k].outcome = EV_ANSWERED;
            t[k].pred = own_name(c, res.answer);
            t[k].probability = res.probability;
        }
        ar_route_result_clear(&res);
        one_done(rn);
    }
}

static void *worker(void *arg) {
    runner *rn = arg;
    ar_router *router = rn->local;
    if (!router && ar_router_new_remote(rn->rp, &router) != AR_OK) {
        pthread_mutex_lock(&rn->mu);
        rn->setup_status = AR_ERR_INVALID_ARG;
        snprintf(rn->setup_err, sizeof rn->setup_err, "%s", ar_router_errmsg(router));
        pthread_mutex_unlock(&rn->mu);
        ar_router_free(router);
        return NULL;
    }
    for (;;) {
        int ci = atomic_fetch_add(&rn->next, 1);
        if (ci >= rn->d->n_convs) break;
        run_conv(rn, router, ci);
    }
    if (!rn->local) ar_router_free(router);
    return NULL;
}

/* Run every turn; returns false (after a message) when the router could not be made. */
static bool run_all(runner *rn, int threads) {
    rn->t0 = ar_cli_now_ms();
    if (threads <= 1) {
        worker(rn);
    } else {
        pthread_t *th = calloc((size_t)threads, sizeof *th);
        int started = 0;
        for (int i = 0; th && i < threads; i++)
            if (pthread_create(&th[i], NULL, worker, rn) == 0)
                started++;
            else
                break;
        if (started == 0) worker(rn);
        for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
        free(th);
    }
    if (rn->progress) draw_progress(rn, true);
    if (rn->setup_status != AR_OK) {
        ar_cli_fail("cannot make the remote router: %s", rn->setup_err);
        return false;
    }
    return true;
}

/* ---- outputs ------------------------------------------------------------------------------- */

static bool write_predictions(const char *path, const ev_data *d, const runner *rn) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    for (int32_t ci = 0; ci < d->n_convs; ci++) {
        const ev_conv *c = &d->convs[ci];
        for (int32_t k = 0; k < c->n_labels; k++) {
            const ev_turn *t = &rn->turns[rn->first[ci] + k];
            json_t *j = json_pack(
                "{s:s, s:s, s:i, s:s, s:o, s:f, s:f, s:b}", "id", c->id, "source",
                d->sources[c->source], "message_index", c->labels[k].message_index, "gold", t->gold,
                "predicted", t->pred ? json_string(t->pred) : json_null(), "probability",
                (double)t->probability, "latency_ms", t->latency_ms, "correct", ev_turn_correct(t));
            if (t->outcome == EV_ERROR) json_object_set_new(j, "error", json_string(t->error));
            if (t->outcome == EV_INVALID) json_object_set_new(j, "invalid", json_true());
            char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6))
                        : NULL;
            if (s) fprintf(f, "%s\n", s);
            free(s);
            json_decref(j);
        }
    }
    bool ok = !ferror(f);
    return fclose(f) == 0 && ok;
}

static void report_errors(const ev_data *d, const runner *rn, int64_t n) {
    int shown = 0;
    int64_t errors = 0;
    for (int32_t ci = 0; ci < d->n_convs; ci++)
        for (int32_t k = 0; k < d->convs[ci].n_labels; k++) {
            const ev_turn *t = &rn->turns[rn->first[ci] + k];
            if (t->outcome != EV_ERROR) continue;
            errors++;
            if (shown++ < 5)
                fprintf(stderr, "archrouter: error: %s, message %d: %s\n", d->convs[ci].id,
                        (int)d->convs[ci].labels[k].message_index, t->error);
        }
    if (errors > 5)
        fprintf(stderr, "archrouter: ... %lld failed decisions in all\n", (long long)errors);
    (void)n;
}

/* ---- arguments ----------------------------------------------------------------------------- */

static bool int_arg(const char *s, long lo, long hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

static int parse_args(int argc, char **argv, eval_opts *o, ar_cli_engine_opts *eo, int *first) {
    *first = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = ar_cli_engine_option("eval", argc, argv, &i, eo);
        if (r < 0) return AR_EXIT_USAGE;
        if (r > 0) continue;
        bool has = i + 1 < argc;
        const char *v = has ? argv[i + 1] : NULL;
        if (ar_cli_is_help(a)) return usage(stdout);
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has)
            o->model = argv[++i];
        else if (!strcmp(a, "--remote") && has)
            o->remote = argv[++i];
        else if (!strcmp(a, "--remote-model") && has)
            o->remote_model = argv[++i];
        else if (!strcmp(a, "--api-key-env") && has)
            o->api_key_env = argv[++i];
        else if (!strcmp(a, "--predictions") && has)
            o->predictions = argv[++i];
        else if (!strcmp(a, "--report") && has)
            o->report = argv[++i];
        else if (!strcmp(a, "--json"))
            o->json = true;
        else if (!strcmp(a, "--sample"))
            o->sample = true;
        else if (!strcmp(a, "--skip-invalid"))
            o->skip_invalid = true;
        else if (!strcmp(a, "--no-progress"))
            o->progress = false;
        else if (!strcmp(a, "--concurrency") && has) {
            if (!int_arg(argv[++i], 1, 256, &o->concurrency))
                return ar_cli_usage_error("eval", "--concurrency must be 1..256, not '%s'", v);
        } else if (!strcmp(a, "--timeout-ms") && has) {
            if (!int_arg(argv[++i], 0, 3600000, &o->timeout_ms))
                return ar_cli_usage_error("eval", "--timeout-ms must be 0..3600000, not '%s'", v);
        } else if (!strcmp(a, "--retries") && has) {
            if (!int_arg(argv[++i], 0, 20, &o->retries))
                return ar_cli_usage_error("eval", "--retries must be 0..20, not '%s'", v);
        } else if (!strcmp(a, "--limit") && has) {
            if (!int_arg(argv[++i], 1, 1 << 30, &o->limit))
                return ar_cli_usage_error("eval", "--limit must be a positive number, not '%s'", v);
        } else if (!strcmp(a, "--seed") && has) {
            char *end;
            o->seed = strtoull(argv[++i], &end, 10);
            if (*end || !*v) return ar_cli_usage_error("eval", "--seed must be a number");
        } else if (!strcmp(a, "--layout") && has) {
            i++;
            if (strcmp(v, "card") && strcmp(v, "archgw"))
                return ar_cli_usage_error("eval", "--layout must be card or archgw, not '%s'", v);
            o->layout = strcmp(v, "card") ? AR_LAYOUT_ARCHGW : AR_LAYOUT_CARD;
        } else if (a[0] == '-' && a[1]) {
            return ar_cli_usage_error("eval", "unknown or incomplete option '%s'", a);
        } else {
            *first = i;
            break;
        }
    }
    for (int i = *first; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1])
            return ar_cli_usage_error("eval", "options must come before the data files ('%s')",
                                      argv[i]);
    if (*first >= argc) return ar_cli_usage_error("eval", "no data: give one or more DATA.jsonl");
    if (!o->model == !o->remote)
        return ar_cli_usage_error("eval", "give either -m MODEL or --remote BASE_URL");
    if (o->remote && !o->remote_model)
        return ar_cli_usage_error("eval", "--remote needs --remote-model NAME");
    if (!o->remote && (o->remote_model || o->api_key_env))
        return ar_cli_usage_error("eval", "--remote-model and --api-key-env need --remote");
    if (o->sample && o->limit <= 0) return ar_cli_usage_error("eval", "--sample needs --limit N");
    return -1;
}

static int open_local(const eval_opts *o, ar_cli_engine_opts *eo, ar_cli_model *m,
                      ar_router **router, char *path, size_t cap) {
    struct stat sb;
    if (stat(o->model, &sb) == 0) {
        snprintf(path, cap, "%s", o->model);
    } else {
        char err[1024];
        ar_pull_params pp = ar_pull_default_params();
        if (ar_model_resolve(o->model, &pp, path, cap, err, sizeof err) != AR_OK)
            return ar_cli_fail("no router model: %s", err);
    }
    int rc = ar_cli_open_model(path, eo, true, m);
    if (rc != AR_EXIT_OK) return rc;
    ar_router_params rp = ar_router_default_params();
    rp.layout = (ar_prompt_layout)o->layout;
    rp.kv_type = eo->sp.kv_type;
    if (ar_router_new(m->engine, m->tok, &rp, router) != AR_OK)
        return ar_cli_fail("%s", ar_router_errmsg(*router));
    return AR_EXIT_OK;
}

int ar_cmd_eval(int argc, char **argv) {
    eval_opts o = {.concurrency = 4, .timeout_ms = 30000, .retries = 2, .progress = true};
    ar_cli_engine_opts eo;
    ar_cli_engine_opts_init(&eo);
    int first = 0;
    int rc = parse_args(argc, argv, &o, &eo, &first);
    if (rc >= 0) return rc;

    ev_data d = {0};
    runner rn = {.setup_status = AR_OK};
    ar_cli_model m = {0};
    ev_metrics *met = NULL;
    char err[1024], path[4096];
    pthread_mutex_init(&rn.mu, NULL);
    rc = AR_EXIT_OK;
    for (int i = first; i < argc && rc == AR_EXIT_OK; i++)
        if (!ev_data_load(&d, argv[i], o.skip_invalid, err, sizeof err))
            rc = ar_cli_fail("%s", err);
    if (rc != AR_EXIT_OK) goto done;
    if (d.skipped)
        fprintf(stderr, "archrouter: skipped %lld invalid line%s (first: %s)\n",
                (long long)d.skipped, d.skipped == 1 ? "" : "s", d.first_skip);
    ev_data_limit(&d, o.limit, o.sample, o.seed);
    if (d.n_convs == 0) {
        rc = ar_cli_fail("no conversations to evaluate");
        goto done;
    }
    /* One turn per label, in data order. */
    rn.d = &d;
    rn.first = calloc((size_t)d.n_convs, sizeof *rn.first);
    for (int32_t ci = 0; ci < d.n_convs; ci++) {
        if (rn.first) rn.first[ci] = (int32_t)rn.total;
        rn.total += d.convs[ci].n_labels;
    }
    rn.turns = calloc((size_t)rn.total, sizeof *rn.turns);
    if (!rn.first || !rn.turns) {
        rc = ar_cli_fail("out of memory");
        goto done;
    }
    for (int32_t ci = 0; ci < d.n_convs; ci++)
        for (int32_t k = 0; k < d.convs[ci].n_labels; k++) {
            ev_turn *t = &rn.turns[rn.first[ci] + k];
            t->conv = ci;
            t->source = d.convs[ci].source;
            t->gold = d.convs[ci].labels[k].gold;
            t->outcome = EV_ERROR; /* until decided */
        }
    rn.progress = o.progress && isatty(STDERR_FILENO);
    ar_remote_params rp = ar_remote_default_params();
    int threads = 1;
    if (o.remote) {
        rp.base_url = o.remote;
        rp.model = o.remote_model;
        rp.timeout_ms = o.timeout_ms;
        rp.max_retries = o.retries;
        rp.layout = (ar_prompt_layout)o.layout;
        if (o.api_key_env) {
            rp.api_key = getenv(o.api_key_env);
            if (!rp.api_key || !*rp.api_key) {
                rc = ar_cli_fail("$%s is not set (--api-key-env)", o.api_key_env);
                goto done;
            }
        }
        rn.rp = &rp;
        threads = o.concurrency;
        snprintf(path, sizeof path, "%s", o.remote_model);
    } else {
        rc = open_local(&o, &eo, &m, &rn.local, path, sizeof path);
        if (rc != AR_EXIT_OK) goto done;
    }
    if (!o.json)
        fprintf(stderr, "archrouter: %d conversations, %lld labelled turns from %d file%s\n",
                (int)d.n_convs, (long long)rn.total, (int)d.n_sources, d.n_sources == 1 ? "" : "s");
    double t0 = ar_cli_now_ms();
    if (!run_all(&rn, threads)) {
        rc = AR_EXIT_FAIL;
        goto done;
    }
    ev_run_info ri = {.mode = o.remote ? "remote" : "local",
                      .model = path,
                      .base_url = o.remote,
                      .wall_s = (ar_cli_now_ms() - t0) / 1000};
    met = ev_metrics_compute(rn.turns, (size_t)rn.total, d.n_sources);
    if (!met) {
        rc = ar_cli_fail("out of memory");
        goto done;
    }
    report_errors(&d, &rn, rn.total);
    if (o.json) {
        json_t *j = ev_report_json(met, &d, &ri);
        char *s =
            j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
        if (s) printf("%s\n", s);
        free(s);
        json_decref(j);
    } else {
        ev_report_table(stdout, met, &d, &ri);
    }
    if (o.predictions && !write_predictions(o.predictions, &d, &rn))
        rc = ar_cli_fail("cannot write %s", o.predictions);
    if (o.report) {
        FILE *f = fopen(o.report, "wb");
        bool ok = f && ev_report_html(f, met, &d, &ri);
        if (f && fclose(f) != 0) ok = false;
        if (!ok) rc = ar_cli_fail("cannot write %s", o.report);
    }
    if (rc == AR_EXIT_OK && met->overall.errors == met->overall.n_turns)
        rc = ar_cli_fail("every decision failed (%lld)", (long long)met->overall.errors);
done:
    ev_metrics_free(met);
    for (int64_t i = 0; rn.turns && i < rn.total; i++) free(rn.turns[i].error);
    free(rn.turns);
    free(rn.first);
    ar_router_free(rn.local);
    ar_cli_close_model(&m);
    ev_data_free(&d);
    pthread_mutex_destroy(&rn.mu);
    return ar_cli_finish_output(rc);
}
