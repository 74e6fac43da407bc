/*
 * eval_report.c - the outputs of `archrouter eval` (eval.h): a terminal table, one JSON
 * object, and a self-contained HTML page.
 *
 * JSON: {"overall": LEVEL, "by_source": {NAME: LEVEL, ...}, "routes": {NAME: {precision,
 * recall, f1, support}}, "confusion": {"labels": [...], "matrix": [[...]]} (rows gold,
 * columns predicted, last column "no answer"), "latency_ms": {p50, p95, p99, mean, n},
 * "run": {...}}, where LEVEL = {turn, span, conversation (fractions), n_turns, n_spans,
 * n_conversations, errors, invalid, other_rate, gold_other_rate}.
 *
 * HTML: one page with inline CSS and SVG only (no scripts, fonts or images from
 * elsewhere): a summary, a bar chart with the three accuracies of each file and of the
 * pool, the per-route table, and the confusion matrix as a heat map (each cell shaded by
 * its share of the gold row, the count written in it). Every name from the data is
 * HTML-escaped.
 */
#include "cli/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void level_table_row(FILE *f, const char *name, const ev_score *s) {
    fprintf(f, "%-22.22s %6lld %6.2f%% %6lld %6.2f%% %6lld %6.2f%% %6lld %7.2f%%\n", name,
            (long long)s->n_turns, 100 * ev_frac(s->turns_ok, s->n_turns), (long long)s->n_spans,
            100 * ev_frac(s->spans_ok, s->n_spans), (long long)s->n_convs,
            100 * ev_frac(s->convs_ok, s->n_convs), (long long)(s->errors + s->invalid),
            100 * ev_frac(s->pred_other, s->n_turns));
}

static double f1_of(int64_t tp, int64_t fp, int64_t fn, double *p, double *r) {
    *p = ev_frac(tp, tp + fp);
    *r = ev_frac(tp, tp + fn);
    return *p + *r > 0 ? 2 * *p * *r / (*p + *r) : 0;
}

void ev_report_table(FILE *f, const ev_metrics *m, const ev_data *d, const ev_run_info *ri) {
    fprintf(f, "archrouter eval: %s router %s%s%s, %.1f s\n\n", ri->mode, ri->model,
            ri->base_url ? " at " : "", ri->base_url ? ri->base_url : "", ri->wall_s);
    fprintf(f, "%-22s %6s %7s %6s %7s %6s %7s %6s %8s\n", "source", "turns", "turn", "spans",
            "span", "convs", "conv", "errors", "other");
    for (int32_t s = 0; s < m->n_sources; s++) level_table_row(f, d->sources[s], &m->by_source[s]);
    level_table_row(f, "overall (micro)", &m->overall);
    fprintf(f, "\n%-30s %9s %9s %9s %7s\n", "route", "precision", "recall", "F1", "support");
    for (int32_t i = 0; i < m->n_labels; i++) {
        double p, r, f1 = f1_of(m->tp[i], m->fp[i], m->fn[i], &p, &r);
        fprintf(f, "%-30.30s %9.3f %9.3f %9.3f %7lld\n", m->labels[i], p, r, f1,
                (long long)(m->tp[i] + m->fn[i]));
    }
    fprintf(f, "\nlatency per decision: p50 %.1f ms, p95 %.1f ms, p99 %.1f ms (%lld decisions)\n",
            m->p50, m->p95, m->p99, (long long)m->n_latency);
    if (m->overall.errors || m->overall.invalid)
        fprintf(f, "errors: %lld failed decisions, %lld unparsable answers (all scored wrong)\n",
                (long long)m->overall.errors, (long long)m->overall.invalid);
}

static json_t *level_json(const ev_score *s) {
    return json_pack("{s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:f, s:f}", "turn",
                     ev_frac(s->turns_ok, s->n_turns), "span", ev_frac(s->spans_ok, s->n_spans),
                     "conversation", ev_frac(s->convs_ok, s->n_convs), "n_turns",
                     (json_int_t)s->n_turns, "n_spans", (json_int_t)s->n_spans, "n_conversations",
                     (json_int_t)s->n_convs, "errors", (json_int_t)s->errors, "invalid",
                     (json_int_t)s->invalid, "other_rate", ev_frac(s->pred_other, s->n_turns),
                     "gold_other_rate", ev_frac(s->gold_other, s->n_turns));
}

json_t *ev_report_json(const ev_metrics *m, const ev_data *d, const ev_run_info *ri) {
    json_t *j = json_object();
    json_object_set_new(j, "overall", level_json(&m->overall));
    json_t *bs = json_object();
    for (int32_t s = 0; s < m->n_sources; s++)
        json_object_set_new(bs, d->sources[s], level_json(&m->by_source[s]));
    json_object_set_new(j, "by_source", bs);
    json_t *routes = json_object();
    for (int32_t i = 0; i < m->n_labels; i++) {
        double p, r, f1 = f1_of(m->tp[i], m->fp[i], m->fn[i], &p, &r);
        json_object_set_new(routes, m->labels[i],
                            json_pack("{s:f, s:f, s:f, s:I}", "precision", p, "recall", r, "f1", f1,
                                      "support", (json_int_t)(m->tp[i] + m->fn[i])));
    }
    json_object_set_new(j, "routes", routes);
    json_t *labels = json_array(), *matrix = json_array();
    for (int32_t i = 0; i < m->n_labels; i++) {
        json_array_append_new(labels, json_string(m->labels[i]));
        json_t *row = json_array();
        for (int32_t k = 0; k <= m->n_labels; k++)
            json_array_append_new(
                row, json_integer(m->confusion[(size_t)i * (size_t)(m->n_labels + 1) + (size_t)k]));
        json_array_append_new(matrix, row);
    }
    json_object_set_new(j, "confusion",
                        json_pack("{s:o, s:o, s:s}", "labels", labels, "matrix", matrix,
                                  "last_column", "no answer"));
    json_object_set_new(j, "latency_ms",
                        json_pack("{s:f, s:f, s:f, s:f, s:I}", "p50", m->p50, "p95", m->p95, "p99",
                                  m->p99, "mean", m->mean_ms, "n", (json_int_t)m->n_latency));
    json_t *run = json_pack("{s:s, s:s, s:f, s:s}", "mode", ri->mode, "model", ri->model, "wall_s",
                            ri->wall_s, "pooling", "micro");
    if (ri->base_url) json_object_set_new(run, "base_url", json_string(ri->base_url));
    json_object_set_new(j, "run", run);
    return j;
}

/* ---- HTML ---------------------------------------------------------------------------------- */

static void esc(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

static const char *const LEVEL_COLORS[3] = {"#2b6cb0", "#38a169", "#d69e2e"};
static const char *const LEVEL_NAMES[3] = {"turn", "span", "conversation"};

/* Grouped bars: one group per source and one for the pool, three bars each. */
static void bars_svg(FILE *f, const ev_metrics *m, const ev_data *d) {
    int groups = m->n_sources + 1, gw = 150, h = 260, top = 30, base = 210;
    int w = 60 + groups * gw;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"accuracy by source\">\n",
            w, h, w, h);
    for (int t = 0; t <= 4; t++) { /* grid: 0, 25, 50, 75, 100 % */
        int y = base - t * (base - top) / 4;
        fprintf(f,
                "<line x1=\"50\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>"
                "<text x=\"44\" y=\"%d\" text-anchor=\"end\" class=\"ax\">%d%%</text>\n",
                w - 10, y, y, y + 4, t * 25);
    }
    for (int g = 0; g < groups; g++) {
        const ev_score *s = g < m->n_sources ? &m->by_source[g] : &m->overall;
        double v[3] = {ev_frac(s->turns_ok, s->n_turns), ev_frac(s->spans_ok, s->n_spans),
                       ev_frac(s->convs_ok, s->n_convs)};
        int x0 = 60 + g * gw;
        for (int k = 0; k < 3; k++) {
            int bh = (int)lround(v[k] * (base - top));
            int x = x0 + k * 40;
            fprintf(f,
                    "<rect x=\"%d\" y=\"%d\" width=\"34\" height=\"%d\" fill=\"%s\"><title>%s "
                    "accuracy %.2f%%</title></rect>"
                    "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"val\">%.1f</text>\n",
                    x, base - bh, bh, LEVEL_COLORS[k], LEVEL_NAMES[k], 100 * v[k], x + 17,
                    base - bh - 4, 100 * v[k]);
        }
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"lbl\">", x0 + 57,
                base + 18);
        esc(f, g < m->n_sources ? d->sources[g] : "overall (micro)");
        fprintf(f, "</text>\n");
    }
    for (int k = 0; k < 3; k++)
        fprintf(f,
                "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                "<text x=\"%d\" y=\"%d\" class=\"lbl\">%s</text>\n",
                60 + k * 130, h - 16, LEVEL_COLORS[k], 78 + k * 130, h - 6, LEVEL_NAMES[k]);
    fputs("</svg>\n", f);
}

/* The confusion matrix: rows gold, columns predicted (+ "no answer"), shaded by row share. */
static void heatmap_svg(FILE *f, const ev_metrics *m) {
    int n = m->n_labels, cols = n + 1, cell = n > 40 ? 14 : 24, left = 190, top = 190;
    int w = left + cols * cell + 20, h = top + n * cell + 20;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"confusion matrix\">\n",
            w, h, w, h);
    for (int c = 0; c < cols; c++) {
        int x = left + c * cell + cell / 2 + 4;
        fprintf(f, "<text transform=\"translate(%d,%d) rotate(-60)\" class=\"ax\">", x, top - 6);
        esc(f, c < n ? m->labels[c] : "(no answer)");
        fputs("</text>\n", f);
    }
    for (int r = 0; r < n; r++) {
        const int64_t *row = m->confusion + (size_t)r * (size_t)cols;
        int64_t total = 0;
        for (int c = 0; c < cols; c++) total += row[c];
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"ax\">", left - 6,
                top + r * cell + cell / 2 + 4);
        esc(f, m->labels[r]);
        fputs("</text>\n", f);
        for (int c = 0; c < cols; c++) {
            double share = total ? (double)row[c] / (double)total : 0;
            /* diagonal in blue, mistakes in red, white for none */
            int hue = c == r ? 212 : 0;
            int light = (int)lround(97 - 55 * share);
            fprintf(f,
                    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                    "fill=\"hsl(%d,70%%,%d%%)\" stroke=\"#fff\"><title>gold ",
                    left + c * cell, top + r * cell, cell, cell, hue, light);
            esc(f, m->labels[r]);
            fputs(", predicted ", f);
            esc(f, c < n ? m->labels[c] : "(no answer)");
            fprintf(f, ": %lld</title></rect>\n", (long long)row[c]);
            if (row[c] && cell >= 20)
                fprintf(f,
                        "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"cnt\"%s>%lld"
                        "</text>\n",
                        left + c * cell + cell / 2, top + r * cell + cell / 2 + 4,
                        share > 0.5 ? " fill=\"#fff\"" : "", (long long)row[c]);
        }
    }
    fputs("</svg>\n", f);
}

bool ev_report_html(FILE *f, const ev_metrics *m, const ev_data *d, const ev_run_info *ri) {
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<title>archrouter eval</title>\n<style>\n"
          "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;"
          "color:#1a202c;padding:0 1em}\n"
          "h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em}\n"
          "table{border-collapse:collapse}td,th{padding:3px 10px;text-align:right;"
          "border-bottom:1px solid #e2e8f0}th:first-child,td:first-child{text-align:left}\n"
          ".big{font-size:2.2em;font-weight:600}.card{display:inline-block;margin-right:2.5em}\n"
          ".ax{font-size:11px;fill:#4a5568}.val{font-size:11px;fill:#1a202c}"
          ".lbl{font-size:12px;fill:#1a202c}.cnt{font-size:10px;fill:#1a202c}\n"
          ".scroll{overflow-x:auto}\n</style>\n</head>\n<body>\n",
          f);
    fputs("<h1>archrouter eval</h1>\n<p>", f);
    esc(f, ri->mode);
    fputs(" router <b>", f);
    esc(f, ri->model);
    fputs("</b>", f);
    if (ri->base_url) {
        fputs(" at ", f);
        esc(f, ri->base_url);
    }
    fprintf(f, "; %.1f s. Pooled figures are micro averages over all files.</p>\n", ri->wall_s);
    const ev_score *o = &m->overall;
    const double lv[3] = {ev_frac(o->turns_ok, o->n_turns), ev_frac(o->spans_ok, o->n_spans),
                          ev_frac(o->convs_ok, o->n_convs)};
    const int64_t ln[3] = {o->n_turns, o->n_spans, o->n_convs};
    for (int k = 0; k < 3; k++)
        fprintf(f,
                "<div class=\"card\"><div class=\"big\" style=\"color:%s\">%.2f%%</div>%s "
                "accuracy (%lld)</div>\n",
                LEVEL_COLORS[k], 100 * lv[k], LEVEL_NAMES[k], (long long)ln[k]);
    fprintf(f,
            "<p>Errors: %lld failed decisions, %lld unparsable answers (scored wrong). "
            "<code>other</code> answered for %.1f%% of turns (gold: %.1f%%). Latency per "
            "decision: p50 %.1f ms, p95 %.1f ms, p99 %.1f ms.</p>\n",
            (long long)o->errors, (long long)o->invalid, 100 * ev_frac(o->pred_other, o->n_turns),
            100 * ev_frac(o->gold_other, o->n_turns), m->p50, m->p95, m->p99);
    fputs("<h2>Accuracy by source and level</h2>\n<div class=\"scroll\">\n", f);
    bars_svg(f, m, d);
    fputs("</div>\n<table>\n<tr><th>source</th><th>turns</th><th>turn</th><th>spans</th>"
          "<th>span</th><th>conversations</th><th>conversation</th><th>errors</th></tr>\n",
          f);
    for (int32_t s = 0; s <= m->n_sources; s++) {
        const ev_score *x = s < m->n_sources ? &m->by_source[s] : &m->overall;
        fputs("<tr><td>", f);
        esc(f, s < m->n_sources ? d->sources[s] : "overall (micro)");
        fprintf(f,
                "</td><td>%lld</td><td>%.2f%%</td><td>%lld</td><td>%.2f%%</td><td>%lld</td>"
                "<td>%.2f%%</td><td>%lld</td></tr>\n",
                (long long)x->n_turns, 100 * ev_frac(x->turns_ok, x->n_turns),
                (long long)x->n_spans, 100 * ev_frac(x->spans_ok, x->n_spans),
                (long long)x->n_convs, 100 * ev_frac(x->convs_ok, x->n_convs),
                (long long)(x->errors + x->invalid));
    }
    fputs("</table>\n<h2>Routes</h2>\n<table>\n<tr><th>route</th><th>precision</th>"
          "<th>recall</th><th>F1</th><th>support</th></tr>\n",
          f);
    for (int32_t i = 0; i < m->n_labels; i++) {
        double p, r, f1 = f1_of(m->tp[i], m->fp[i], m->fn[i], &p, &r);
        fputs("<tr><td>", f);
        esc(f, m->labels[i]);
        fprintf(f, "</td><td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%lld</td></tr>\n", p, r, f1,
                (long long)(m->tp[i] + m->fn[i]));
    }
    fputs("</table>\n<h2>Confusion matrix</h2>\n<p>Rows: gold route; columns: the router's "
          "answer. Blue: correct; red: mistakes; darker is a larger share of the row.</p>\n"
          "<div class=\"scroll\">\n",
          f);
    heatmap_svg(f, m);
    fputs("</div>\n</body>\n</html>\n", f);
    return !ferror(f);
}
