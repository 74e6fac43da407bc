/*
 * eval.h - `archrouter eval`: the evaluation data, the metrics and the reports.
 *
 * eval_data.c reads the JSON-lines input (docs/eval.md) into conversations and checks
 * every line; eval_metrics.c turns per-turn outcomes into the turn, span and conversation
 * accuracies of the data README, per file and pooled, with per-route precision / recall /
 * F1, a confusion matrix, the `other` rate and latency percentiles; eval_report.c writes
 * them as a terminal table, JSON and a self-contained HTML page; cmd_eval.c runs the
 * router over the data. The metric code is pure (no I/O) so tests can feed it by hand.
 */
#ifndef AR_CLI_EVAL_H
#define AR_CLI_EVAL_H

#include "archrouter.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* ---- data ---------------------------------------------------------------------------------- */

typedef struct ev_label {
    int32_t message_index; /* a user message */
    const char *gold;      /* a route name or "other" */
} ev_label;

typedef struct ev_conv {
    json_t *doc; /* owns every string below */
    const char *id;
    int32_t source; /* index into ev_data.sources (the input file) */
    int line;       /* line in that file */
    ar_route *routes;
    int32_t n_routes;
    ar_message *msgs;
    int32_t n_msgs;
    ev_label *labels;
    int32_t n_labels;
} ev_conv;

typedef struct ev_data {
    ev_conv *convs;
    int32_t n_convs, cap;
    char **sources; /* per input file: its name without directory and ".jsonl" */
    char **paths;
    int32_t n_sources;
    int64_t skipped;      /* invalid lines skipped (skip_invalid) */
    char first_skip[512]; /* the first skipped line's message */
} ev_data;

/* Read one JSON-lines file and append its conversations (and the file as a source).
 * A line that breaks the format is an error "FILE:LINE: what" in err (returns false), or,
 * with skip_invalid, counted in data->skipped. Blank lines are ignored. */
bool ev_data_load(ev_data *data, const char *path, bool skip_invalid, char *err, size_t cap);

/* Check one parsed line; on failure a message naming the field in err. Exposed for tests. */
bool ev_conv_from_json(json_t *doc, ev_conv *out, char *err, size_t cap);

/* Keep at most `limit` conversations of each source: the first ones, or with `sample` a
 * pseudo-random choice fixed by `seed` (in data order). limit <= 0: all. */
void ev_data_limit(ev_data *data, int32_t limit, bool sample, uint64_t seed);

void ev_data_free(ev_data *data);

/* ---- outcomes and metrics ------------------------------------------------------------------ */

typedef enum ev_outcome {
    EV_ANSWERED = 0, /* the router named a route or "other" */
    EV_INVALID = 1,  /* the answer named no route (remote; counts as wrong) */
    EV_ERROR = 2     /* the decision failed (counts as wrong; reported) */
} ev_outcome;

/* One labelled user turn, in data order (a conversation's turns together, label order). */
typedef struct ev_turn {
    int32_t conv;     /* conversation index */
    int32_t source;   /* source index */
    const char *gold; /* route name or "other" */
    const char *pred; /* route name or "other" when answered, else NULL */
    ev_outcome outcome;
    float probability;
    double latency_ms;
    char *error; /* EV_ERROR: the message (owned) */
} ev_turn;

typedef struct ev_score {
    int64_t n_turns, turns_ok;
    int64_t n_spans, spans_ok;
    int64_t n_convs, convs_ok;
    int64_t errors, invalid;
    int64_t pred_other; /* turns answered "other" */
    int64_t gold_other; /* turns whose gold is "other" */
} ev_score;

typedef struct ev_metrics {
    ev_score overall;
    ev_score *by_source; /* n_sources */
    int32_t n_sources;
    char **labels; /* every gold or predicted name, sorted, "other" last */
    int32_t n_labels;
    int64_t *confusion;            /* n_labels rows (gold) x (n_labels + 1) columns (predicted; the
                                      last column: no answer, errors and invalid answers) */
    int64_t *tp, *fp, *fn;         /* per label */
    double p50, p95, p99, mean_ms; /* latency of the decisions that returned */
    int64_t n_latency;
} ev_metrics;

/* The metrics of turns[0..n) (conversations identified by .conv, contiguous). NULL when
 * out of memory. */
ev_metrics *ev_metrics_compute(const ev_turn *turns, size_t n, int32_t n_sources);
void ev_metrics_free(ev_metrics *m);

/* ok / n, 0 when n is 0. */
double ev_frac(int64_t ok, int64_t n);

/* Is the turn correct: answered and equal to gold. */
bool ev_turn_correct(const ev_turn *t);

/* ---- reports -------------------------------------------------------------------------------- */

typedef struct ev_run_info {
    const char *mode;  /* "local" or "remote" */
    const char *model; /* model path or remote model name */
    const char *base_url;
    double wall_s;
} ev_run_info;

void ev_report_table(FILE *f, const ev_metrics *m, const ev_data *d, const ev_run_info *ri);
json_t *ev_report_json(const ev_metrics *m, const ev_data *d, const ev_run_info *ri);
bool ev_report_html(FILE *f, const ev_metrics *m, const ev_data *d, const ev_run_info *ri);

#endif
