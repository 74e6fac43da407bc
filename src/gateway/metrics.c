/*
 * metrics.c - the gateway metrics (metrics.h): a mutex-guarded table of request label sets,
 * fixed-bucket histograms in seconds, and the Prometheus text writer (HELP and TYPE lines,
 * escaped label values, cumulative `le` buckets ending in +Inf, _sum and _count).
 */
#include "gateway/metrics.h"

#include <stdlib.h>
#include <string.h>

static const double bucket_s[AR_METRICS_N_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

void ar_metrics_init(ar_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
}

void ar_metrics_destroy(ar_metrics *m) {
    for (size_t i = 0; i < m->n_series; i++) {
        free(m->series[i].endpoint);
        free(m->series[i].route);
        free(m->series[i].model);
    }
    free(m->series);
    pthread_mutex_destroy(&m->mu);
}

const char *ar_fail_open_name(ar_fail_open reason) {
    switch (reason) {
    case AR_FAIL_OPEN_TIMEOUT: return "timeout";
    case AR_FAIL_OPEN_QUEUE_FULL: return "queue_full";
    case AR_FAIL_OPEN_ERROR: return "error";
    default: return "?";
    }
}

static void observe(ar_histogram *h, double ms) {
    double s = ms / 1000.0;
    int b = 0;
    while (b < AR_METRICS_N_BUCKETS && s > bucket_s[b]) b++;
    h->counts[b]++;
    h->sum += s;
    h->n++;
}

void ar_metrics_request(ar_metrics *m, const char *endpoint, const char *route, const char *model,
                        int status) {
    endpoint = endpoint ? endpoint : "";
    route = route ? route : "";
    model = model ? model : "";
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n_series; i++) {
        ar_metrics_series *s = &m->series[i];
        if (s->status == status && !strcmp(s->endpoint, endpoint) && !strcmp(s->route, route) &&
            !strcmp(s->model, model)) {
            s->count++;
            pthread_mutex_unlock(&m->mu);
            return;
        }
    }
    if (m->n_series >= AR_METRICS_MAX_SERIES) { /* keep the table bounded */
        route = "overflow";
        model = "overflow";
        for (size_t i = 0; i < m->n_series; i++)
            if (!strcmp(m->series[i].route, "overflow")) {
                m->series[i].count++;
                pthread_mutex_unlock(&m->mu);
                return;
            }
    }
    if (m->n_series == m->cap_series) {
        size_t cap = m->cap_series ? m->cap_series * 2 : 16;
        ar_metrics_series *ns = realloc(m->series, cap * sizeof *ns);
        if (!ns) {
            pthread_mutex_unlock(&m->mu);
            return;
        }
        m->series = ns;
        m->cap_series = cap;
    }
    ar_metrics_series s = {strdup(endpoint), strdup(route), strdup(model), status, 1};
    if (s.endpoint && s.route && s.model) {
        m->series[m->n_series++] = s;
    } else {
        free(s.endpoint);
        free(s.route);
        free(s.model);
    }
    pthread_mutex_unlock(&m->mu);
}

void ar_metrics_fail_open(ar_metrics *m, ar_fail_open reason) {
    pthread_mutex_lock(&m->mu);
    if (reason < AR_FAIL_OPEN_N) m->fail_open[reason]++;
    pthread_mutex_unlock(&m->mu);
}

void ar_metrics_routed(ar_metrics *m, double ms, int cached_tokens) {
    pthread_mutex_lock(&m->mu);
    observe(&m->router, ms);
    if (cached_tokens > 0)
        m->pcache_hits++;
    else
        m->pcache_misses++;
    pthread_mutex_unlock(&m->mu);
}

void ar_metrics_upstream(ar_metrics *m, double ttfb_ms, double total_ms) {
    pthread_mutex_lock(&m->mu);
    if (ttfb_ms >= 0) observe(&m->ttfb, ttfb_ms);
    observe(&m->upstream, total_ms);
    pthread_mutex_unlock(&m->mu);
}

/* A label value: backslash, double quote and newline escaped. */
static void label(ar_buf *b, const char *s) {
    for (; *s; s++) {
        if (*s == '\\')
            ar_buf_puts(b, "\\\\");
        else if (*s == '"')
            ar_buf_puts(b, "\\\"");
        else if (*s == '\n')
            ar_buf_puts(b, "\\n");
        else
            ar_buf_append(b, s, 1);
    }
}

static void head(ar_buf *b, const char *name, const char *type, const char *help) {
    ar_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(ar_buf *b, const char *name, const char *help, const ar_histogram *h) {
    head(b, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < AR_METRICS_N_BUCKETS; i++) {
        cum += h->counts[i];
        ar_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_s[i], (unsigned long long)cum);
    }
    cum += h->counts[AR_METRICS_N_BUCKETS];
    ar_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    ar_buf_printf(b, "%s_sum %.9g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->n);
}

void ar_metrics_write(ar_metrics *m, ar_buf *b) {
    pthread_mutex_lock(&m->mu);
    head(b, "archrouter_requests_total", "counter",
         "Requests answered, by endpoint, route, upstream model and HTTP status.");
    for (size_t i = 0; i < m->n_series; i++) {
        const ar_metrics_series *s = &m->series[i];
        ar_buf_puts(b, "archrouter_requests_total{endpoint=\"");
        label(b, s->endpoint);
        ar_buf_puts(b, "\",route=\"");
        label(b, s->route);
        ar_buf_puts(b, "\",model=\"");
        label(b, s->model);
        ar_buf_printf(b, "\",status=\"%d\"} %llu\n", s->status, (unsigned long long)s->count);
    }
    head(b, "archrouter_fail_open_total", "counter",
         "Requests sent to the fallback model because the router failed, by reason.");
    for (int r = 0; r < AR_FAIL_OPEN_N; r++)
        ar_buf_printf(b, "archrouter_fail_open_total{reason=\"%s\"} %llu\n",
                      ar_fail_open_name((ar_fail_open)r), (unsigned long long)m->fail_open[r]);
    head(b, "archrouter_prefix_cache_hits_total", "counter",
         "Routing decisions that reused a cached prompt prefix.");
    ar_buf_printf(b, "archrouter_prefix_cache_hits_total %llu\n",
                  (unsigned long long)m->pcache_hits);
    head(b, "archrouter_prefix_cache_misses_total", "counter",
         "Routing decisions that computed the whole prompt.");
    ar_buf_printf(b, "archrouter_prefix_cache_misses_total %llu\n",
                  (unsigned long long)m->pcache_misses);
    histogram(b, "archrouter_router_duration_seconds", "Time of one routing decision.", &m->router);
    histogram(b, "archrouter_upstream_ttfb_seconds",
              "Time from sending the upstream request to its first response byte.", &m->ttfb);
    histogram(b, "archrouter_upstream_duration_seconds", "Time of whole upstream transfers.",
              &m->upstream);
    pthread_mutex_unlock(&m->mu);
    head(b, "archrouter_active_requests", "gauge", "Requests being served.");
    ar_buf_printf(b, "archrouter_active_requests %d\n", atomic_load(&m->active_requests));
    head(b, "archrouter_active_streams", "gauge", "Streamed responses being relayed.");
    ar_buf_printf(b, "archrouter_active_streams %d\n", atomic_load(&m->active_streams));
    head(b, "archrouter_router_queue_depth", "gauge", "Requests waiting for the router.");
    ar_buf_printf(b, "archrouter_router_queue_depth %d\n", atomic_load(&m->queue_depth));
}
