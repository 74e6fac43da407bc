/*
 * metrics.h - the gateway's counters, gauges and histograms, written in the Prometheus text
 * exposition format (version 0.0.4) for GET /metrics.
 *
 * Series (docs/gateway.md lists them with their meaning):
 *   archrouter_requests_total{endpoint,route,model,status}   counter
 *   archrouter_fail_open_total{reason}                       counter (timeout, queue_full,
 *                                                            error)
 *   archrouter_prefix_cache_hits_total / _misses_total       counter
 *   archrouter_router_duration_seconds                       histogram
 *   archrouter_upstream_ttfb_seconds / _duration_seconds     histogram
 *   archrouter_active_requests, archrouter_active_streams    gauge
 *   archrouter_router_queue_depth                            gauge
 *
 * One mutex guards the request table and the histograms (an observation is a few adds);
 * gauges are atomics. The request table holds at most AR_METRICS_MAX_SERIES label sets;
 * later new combinations are counted under route="overflow".
 */
#ifndef AR_GATEWAY_METRICS_H
#define AR_GATEWAY_METRICS_H

#include "base/buf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define AR_METRICS_MAX_SERIES 4096
#define AR_METRICS_N_BUCKETS  16

typedef struct ar_histogram {
    uint64_t counts[AR_METRICS_N_BUCKETS + 1]; /* per bucket, the last is +Inf */
    double sum;
    uint64_t n;
} ar_histogram;

typedef struct ar_metrics_series {
    char *endpoint, *route, *model;
    int status;
    uint64_t count;
} ar_metrics_series;

typedef enum ar_fail_open {
    AR_FAIL_OPEN_TIMEOUT = 0,
    AR_FAIL_OPEN_QUEUE_FULL = 1,
    AR_FAIL_OPEN_ERROR = 2,
    AR_FAIL_OPEN_N = 3
} ar_fail_open;

typedef struct ar_metrics {
    pthread_mutex_t mu;
    ar_metrics_series *series;
    size_t n_series, cap_series;
    uint64_t fail_open[AR_FAIL_OPEN_N];
    uint64_t pcache_hits, pcache_misses;
    ar_histogram router, ttfb, upstream;
    atomic_int active_requests, active_streams, queue_depth;
} ar_metrics;

void ar_metrics_init(ar_metrics *m);
void ar_metrics_destroy(ar_metrics *m);

/* Count one finished request (route/model may be NULL: written as ""). */
void ar_metrics_request(ar_metrics *m, const char *endpoint, const char *route, const char *model,
                        int status);
void ar_metrics_fail_open(ar_metrics *m, ar_fail_open reason);
void ar_metrics_routed(ar_metrics *m, double ms, int cached_tokens);
void ar_metrics_upstream(ar_metrics *m, double ttfb_ms, double total_ms);

/* The whole exposition text appended to b. */
void ar_metrics_write(ar_metrics *m, ar_buf *b);

const char *ar_fail_open_name(ar_fail_open reason);

#endif
