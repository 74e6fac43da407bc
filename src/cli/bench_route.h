/*
 * bench_route.h - the standard routing request of `archrouter bench` (bench_route.c).
 */
#ifndef AR_CLI_BENCH_ROUTE_H
#define AR_CLI_BENCH_ROUTE_H

#include "cli.h"

typedef struct route_bench {
    double cold_ms, warm_ms, scores_ms, full_ms; /* medians */
    int32_t prompt_tokens, cached_tokens, decode_steps, n_routes;
    char answer[160]; /* the decision (the same in every run) */
} route_bench;

/* Route the conversation in conv_path with the routes of `config`, runs times each way. */
int ar_cli_bench_route(ar_cli_model *m, const ar_cli_engine_opts *o, const char *config,
                       const char *conv_path, int runs, route_bench *out);

#endif
