/*
 * eval_metrics.c - the scores of `archrouter eval` (eval.h), as the data README defines
 * them (docs/eval.md repeats the definitions):
 *
 *   turn          correct labelled turns / labelled turns
 *   span          a maximal run of consecutive labels of one conversation (label order;
 *                 unlabelled user turns are not in the list, so they never break a run)
 *                 with the same gold route, "other" included; correct when all its turns
 *                 are; correct spans / spans
 *   conversation  conversations whose labelled turns are all correct / conversations
 *
 * A turn is correct when the router answered and its answer equals the gold name. A
 * failed decision (EV_ERROR) or an answer that names no route (EV_INVALID) is wrong: it
 * stays in every denominator and is counted apart as well. Pooled figures are micro
 * averages (the turns, spans and conversations of all files together).
 *
 * Per label (each gold or predicted name, "other" included): true positives, false
 * positives and false negatives, for precision, recall and F1; the confusion matrix has a
 * row per gold label and a column per predicted label plus one for "no answer". Latency
 * percentiles use the nearest-rank method over the decisions that returned.
 */
#include "cli/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double ev_frac(int64_t ok, int64_t n) {
    return n > 0 ? (double)ok / (double)n : 0.0;
}

bool ev_turn_correct(const ev_turn *t) {
    return t->outcome == EV_ANSWERED && t->pred && t->gold && strcmp(t->pred, t->gold) == 0;
}

static int cmp_label(const void *a, const void *b) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    bool xo = strcmp(x, "other") == 0, yo = strcmp(y, "other") == 0;
    if (xo != yo) return xo ? 1 : -1;
    return strcmp(x, y);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int32_t find_label(const ev_metrics *m, const char *name) {
    int32_t lo = 0, hi = m->n_labels - 1;
    const char *key = name;
    while (lo <= hi) {
        int32_t mid = (lo + hi) / 2;
        int c = cmp_label(&key, &m->labels[mid]);
        if (c == 0) return mid;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return -1;
}

/* The sorted, distinct gold and predicted names. */
static bool collect_labels(ev_metrics *m, const ev_turn *t, size_t n) {
    const char **all = malloc((2 * n + 1) * sizeof *all);
    if (!all) return false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        all[k++] = t[i].gold;
        if (t[i].outcome == EV_ANSWERED && t[i].pred) all[k++] = t[i].pred;
    }
    qsort(all, k, sizeof *all, cmp_label);
    m->labels = calloc(k + 1, sizeof *m->labels);
    if (!m->labels) {
        free(all);
        return false;
    }
    for (size_t i = 0; i < k; i++) {
        if (i > 0 && strcmp(all[i], all[i - 1]) == 0) continue;
        if (!(m->labels[m->n_labels] = strdup(all[i]))) {
            free(all);
            return false;
        }
        m->n_labels++;
    }
    free(all);
    return true;
}

static void percentiles(ev_metrics *m, const ev_turn *t, size_t n) {
    double *lat = malloc((n + 1) * sizeof *lat);
    if (!lat) return;
    size_t k = 0;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i].outcome != EV_ERROR) {
            lat[k++] = t[i].latency_ms;
            sum += t[i].latency_ms;
        }
    qsort(lat, k, sizeof *lat, cmp_double);
    m->n_latency = (int64_t)k;
    if (k > 0) {
        /* nearest rank: the smallest value with at least p% of the values at or below it */
        const double ps[3] = {0.50, 0.95, 0.99};
        double *out[3] = {&m->p50, &m->p95, &m->p99};
        for (int j = 0; j < 3; j++) {
            size_t r = (size_t)ceil(ps[j] * (double)k);
            *out[j] = lat[r > 0 ? r - 1 : 0];
        }
        m->mean_ms = sum / (double)k;
    }
    free(lat);
}

static void count_turn(ev_score *s, const ev_turn *t, bool ok) {
    s->n_turns++;
    s->turns_ok += ok;
    s->errors += t->outcome == EV_ERROR;
    s->invalid += t->outcome == EV_INVALID;
    s->pred_other += t->outcome == EV_ANSWERED && t->pred && strcmp(t->pred, "other") == 0;
    s->gold_other += strcmp(t->gold, "other") == 0;
}

ev_metrics *ev_metrics_compute(const ev_turn *t, size_t n, int32_t n_sources) {
    ev_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->n_sources = n_sources;
    m->by_source = calloc(n_sources > 0 ? (size_t)n_sources : 1, sizeof *m->by_source);
    if (!m->by_source || !collect_labels(m, t, n)) goto fail;
    size_t nl = (size_t)m->n_labels;
    m->confusion = calloc(nl * (nl + 1) + 1, sizeof *m->confusion);
    m->tp = calloc(nl + 1, sizeof *m->tp);
    m->fp = calloc(nl + 1, sizeof *m->fp);
    m->fn = calloc(nl + 1, sizeof *m->fn);
    if (!m->confusion || !m->tp || !m->fp || !m->fn) goto fail;

    /* Walk conversation by conversation; within one, span by span. */
    size_t i = 0;
    while (i < n) {
        size_t end = i;
        while (end < n && t[end].conv == t[i].conv) end++;
        int32_t src = t[i].source;
        ev_score *ss = src >= 0 && src < n_sources ? &m->by_source[src] : NULL;
        bool conv_ok = true;
        size_t s = i;
        while (s < end) {
            size_t e = s;
            bool span_ok = true;
            while (e < end && strcmp(t[e].gold, t[s].gold) == 0) {
                bool ok = ev_turn_correct(&t[e]);
                span_ok &= ok;
                count_turn(&m->overall, &t[e], ok);
                if (ss) count_turn(ss, &t[e], ok);
                int32_t g = find_label(m, t[e].gold);
                int32_t p =
                    t[e].outcome == EV_ANSWERED && t[e].pred ? find_label(m, t[e].pred) : -1;
                m->confusion[(size_t)g * (nl + 1) + (p >= 0 ? (size_t)p : nl)]++;
                if (ok) {
                    m->tp[g]++;
                } else {
                    m->fn[g]++;
                    if (p >= 0) m->fp[p]++;
                }
                e++;
            }
            m->overall.n_spans++;
            m->overall.spans_ok += span_ok;
            if (ss) {
                ss->n_spans++;
                ss->spans_ok += span_ok;
            }
            conv_ok &= span_ok;
            s = e;
        }
        m->overall.n_convs++;
        m->overall.convs_ok += conv_ok;
        if (ss) {
            ss->n_convs++;
            ss->convs_ok += conv_ok;
        }
        i = end;
    }
    percentiles(m, t, n);
    return m;
fail:
    ev_metrics_free(m);
    return NULL;
}

void ev_metrics_free(ev_metrics *m) {
    if (!m) return;
    for (int32_t i = 0; m->labels && i < m->n_labels; i++) free(m->labels[i]);
    free(m->labels);
    free(m->by_source);
    free(m->confusion);
    free(m->tp);
    free(m->fp);
    free(m->fn);
    free(m);
}
