/*
 * engine_golden.h - running the engine on a golden file's prompts and measuring how far
 * its logits land from the reference (shared by the engine's golden tests).
 *
 * A golden file (see the reference data README) has, per prompt: the input ids, and per
 * position the log-sum-exp of the logits and the 16 largest logits; a 16-token greedy
 * continuation with the margin of each step; the full last-position logits in a side file;
 * and for routing prompts the log-probability of each route's completion.
 */
#ifndef AR_ENGINE_GOLDEN_H
#define AR_ENGINE_GOLDEN_H

#include "archrouter.h"

#include <jansson.h>
#include <stdbool.h>

typedef struct golden_errors {
    double lse;       /* max |lse - golden lse| over all positions */
    double top;       /* max |logit - golden| over the golden top-16 of every position */
    double last;      /* max |logit - golden| over the full last-position vector */
    double route;     /* max |route logprob - golden| */
    int positions;    /* positions compared */
    int top1_agree;   /* positions where our argmax is the golden top id */
    int id_mismatch;  /* top ids that differ where the golden gap exceeds the tolerance */
    int greedy_bad;   /* greedy tokens that differ before a margin below the tolerance */
    int greedy_steps; /* greedy steps compared */
} golden_errors;

/* Run every prompt of `golden` (a parsed golden JSON) on the engine and accumulate the
 * errors. `dir` is the folder the last_logits files are relative to (NULL: skip them).
 * `tol` decides which top ids and greedy steps are compared (gaps/margins above it). */
void golden_run(ar_engine *eng, json_t *golden, const char *dir, double tol, golden_errors *err);

/* Errors of another engine's recorded output (llamacpp-<TYPE>.json and its last-logit
 * files) against the golden file, measured the same way. */
void golden_compare_recorded(json_t *golden, json_t *other, const char *dir,
                             const char *other_prefix, golden_errors *err);

/* Print a one-line summary (label: lse top last route ...). */
void golden_print(const char *label, const golden_errors *err);

/* A tree of continuations (ar_seq_eval_tree) after ids[0..n_prefix) equals each path
 * evaluated on its own bit for bit, selected logits (ar_seq_eval_select) equal the full
 * vector's, bad trees are refused. Uses ids[n_prefix .. n_prefix + 27) as tokens. */
void golden_check_tree_and_select(ar_engine *e, const int32_t *ids, int n_prefix, ar_kv_type kv);

#endif
