/*
 * eval_data.c - reading `archrouter eval` input (eval.h; the format is in docs/eval.md).
 *
 * One conversation per line: {"id", "source", "routes": [{name, description}],
 * "messages": [{role, content}], "labels": [{message_index, route}]}. Each line is parsed
 * with jansson and checked before anything runs, so a bad file fails at once with
 * "FILE:LINE: what": not JSON, a missing or mistyped field, no routes, an empty, duplicate
 * or reserved route name, a label pointing outside the messages or at a non-user message,
 * labels out of message order, a gold route that is neither a route nor "other", no
 * labels at all. Lines are read with getline(), so no line length is assumed; a line over
 * 16 MiB is refused. The JSON document stays alive with the conversation and owns its
 * strings.
 */
#include "cli/eval.h"

#include <stdlib.h>
#include <string.h>

#define MAX_LINE_BYTES (16u << 20)

#define BAD(...) (snprintf(err, cap, __VA_ARGS__), false)

static const char *str_field(json_t *o, const char *key) {
    return json_string_value(json_object_get(o, key));
}

bool ev_conv_from_json(json_t *doc, ev_conv *c, char *err, size_t cap) {
    *c = (ev_conv){0};
    if (!json_is_object(doc)) return BAD("not a JSON object");
    c->id = str_field(doc, "id");
    if (!c->id || !*c->id) return BAD("no \"id\" string");
    json_t *routes = json_object_get(doc, "routes"), *msgs = json_object_get(doc, "messages");
    json_t *labels = json_object_get(doc, "labels");
    if (!json_is_array(routes)) return BAD("%s: no \"routes\" array", c->id);
    if (json_array_size(routes) == 0) return BAD("%s: the route list is empty", c->id);
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return BAD("%s: no \"messages\" (a non-empty array)", c->id);
    if (!json_is_array(labels) || json_array_size(labels) == 0)
        return BAD("%s: no \"labels\" (a non-empty array)", c->id);
    if (json_array_size(routes) > 1024 || json_array_size(msgs) > 100000 ||
        json_array_size(labels) > json_array_size(msgs))
        return BAD("%s: too many routes, messages or labels", c->id);
    c->n_routes = (int32_t)json_array_size(routes);
    c->n_msgs = (int32_t)json_array_size(msgs);
    c->n_labels = (int32_t)json_array_size(labels);
    c->routes = calloc((size_t)c->n_routes, sizeof *c->routes);
    c->msgs = calloc((size_t)c->n_msgs, sizeof *c->msgs);
    c->labels = calloc((size_t)c->n_labels, sizeof *c->labels);
    if (!c->routes || !c->msgs || !c->labels) return BAD("out of memory");
    for (int32_t i = 0; i < c->n_routes; i++) {
        json_t *r = json_array_get(routes, (size_t)i);
        const char *name = str_field(r, "name"), *desc = str_field(r, "description");
        if (!name || !*name) return BAD("%s: routes[%d] has no name", c->id, (int)i);
        if (!desc || !*desc) return BAD("%s: routes[%d] has no description", c->id, (int)i);
        if (!strcmp(name, "other"))
            return BAD("%s: routes[%d] is named 'other', which is reserved", c->id, (int)i);
        for (int32_t j = 0; j < i; j++)
            if (!strcmp(c->routes[j].name, name))
                return BAD("%s: routes[%d] '%.64s' repeats routes[%d]", c->id, (int)i, name,
                           (int)j);
        c->routes[i] = (ar_route){name, desc, NULL};
    }
    for (int32_t i = 0; i < c->n_msgs; i++) {
        json_t *m = json_array_get(msgs, (size_t)i);
        c->msgs[i].role = str_field(m, "role");
        c->msgs[i].content = str_field(m, "content");
        if (!c->msgs[i].role || !c->msgs[i].content)
            return BAD("%s: messages[%d] needs a \"role\" and a \"content\" string", c->id, (int)i);
    }
    int32_t last = -1;
    for (int32_t i = 0; i < c->n_labels; i++) {
        json_t *l = json_array_get(labels, (size_t)i);
        json_t *mi = json_object_get(l, "message_index");
        const char *gold = str_field(l, "route");
        if (!json_is_integer(mi) || !gold)
            return BAD("%s: labels[%d] needs \"message_index\" (integer) and \"route\" (string)",
                       c->id, (int)i);
        json_int_t k = json_integer_value(mi);
        if (k < 0 || k >= c->n_msgs)
            return BAD("%s: labels[%d].message_index %lld is outside the %d messages", c->id,
                       (int)i, (long long)k, (int)c->n_msgs);
        if (strcmp(c->msgs[k].role, "user"))
            return BAD("%s: labels[%d] points at messages[%lld], a '%.20s' message (labels "
                       "must point at user messages)",
                       c->id, (int)i, (long long)k, c->msgs[k].role);
        if (k <= last)
            return BAD("%s: labels[%d].message_index %lld is not after the previous label's", c->id,
                       (int)i, (long long)k);
        bool known = !strcmp(gold, "other");
        for (int32_t j = 0; !known && j < c->n_routes; j++)
            known = !strcmp(gold, c->routes[j].name);
        if (!known)
            return BAD("%s: labels[%d].route '%.64s' is not one of the conversation's routes "
                       "nor \"other\"",
                       c->id, (int)i, gold);
        c->labels[i] = (ev_label){(int32_t)k, gold};
        last = (int32_t)k;
    }
    return true;
}

static void conv_free(ev_conv *c) {
    free(c->routes);
    free(c->msgs);
    free(c->labels);
    json_decref(c->doc);
    *c = (ev_conv){0};
}

static char *stem(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 6 && !strcmp(base + n - 6, ".jsonl")) n -= 6;
    return strndup(base, n);
}

bool ev_data_load(ev_data *d, const char *path, bool skip_invalid, char *err, size_t cap) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return BAD("cannot open %s", path);
    char **s = realloc(d->sources, ((size_t)d->n_sources + 1) * sizeof *s);
    if (s) d->sources = s;
    char **p = realloc(d->paths, ((size_t)d->n_sources + 1) * sizeof *p);
    if (p) d->paths = p;
    if (!s || !p || !(d->sources[d->n_sources] = stem(path))) {
        if (f != stdin) fclose(f);
        return BAD("out of memory");
    }
    d->paths[d->n_sources] = strdup(path);
    int32_t src = d->n_sources++;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int lineno = 0;
    bool ok = true;
    while (ok && (len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        size_t k = 0;
        while (k < (size_t)len &&
               (line[k] == ' ' || line[k] == '\t' || line[k] == '\r' || line[k] == '\n'))
            k++;
        if (k == (size_t)len) continue; /* blank */
        char msg[400];
        ev_conv c = {0};
        json_error_t je;
        bool good = false;
        if ((size_t)len > MAX_LINE_BYTES) {
            snprintf(msg, sizeof msg, "the line is longer than %u bytes", MAX_LINE_BYTES);
        } else if (!(c.doc = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &je))) {
            snprintf(msg, sizeof msg, "not JSON: %s (column %d)", je.text, je.column);
        } else {
            json_t *doc = c.doc;
            good = ev_conv_from_json(doc, &c, msg, sizeof msg);
            c.doc = doc;
        }
        if (good && d->n_convs == d->cap) {
            int32_t nc = d->cap ? 2 * d->cap : 256;
            ev_conv *g = realloc(d->convs, (size_t)nc * sizeof *g);
            if (!g) {
                snprintf(msg, sizeof msg, "out of memory");
                good = false;
                skip_invalid = false;
            } else {
                d->convs = g;
                d->cap = nc;
            }
        }
        if (good) {
            c.source = src;
            c.line = lineno;
            d->convs[d->n_convs++] = c;
            continue;
        }
        conv_free(&c);
        if (!skip_invalid) {
            ok = BAD("%s:%d: %s", path, lineno, msg);
        } else {
            if (d->skipped++ == 0)
                snprintf(d->first_skip, sizeof d->first_skip, "%s:%d: %s", path, lineno, msg);
        }
    }
    if (ok && ferror(f)) ok = BAD("%s: read error", path);
    free(line);
    if (f != stdin) fclose(f);
    return ok;
}

/* splitmix64: a small, fixed generator, so a seed means the same sample everywhere. */
static uint64_t next_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void ev_data_limit(ev_data *d, int32_t limit, bool sample, uint64_t seed) {
    if (limit <= 0) return;
    bool *keep = calloc((size_t)d->n_convs + 1, sizeof *keep);
    int32_t *idx = malloc(((size_t)d->n_convs + 1) * sizeof *idx);
    if (!keep || !idx) { /* keep everything rather than a wrong subset */
        free(keep);
        free(idx);
        return;
    }
    for (int32_t s = 0; s < d->n_sources; s++) {
        int32_t n = 0;
        for (int32_t i = 0; i < d->n_convs; i++)
            if (d->convs[i].source == s) idx[n++] = i;
        uint64_t st = seed ^ ((uint64_t)s * 0xD6E8FEB86659FD93ull);
        for (int32_t k = 0; sample && k < n && k < limit; k++) { /* partial Fisher-Yates */
            int32_t j = k + (int32_t)(next_rand(&st) % (uint64_t)(n - k));
            int32_t t = idx[k];
            idx[k] = idx[j];
            idx[j] = t;
        }
        for (int32_t k = 0; k < n && k < limit; k++) keep[idx[k]] = true;
    }
    int32_t w = 0;
    for (int32_t i = 0; i < d->n_convs; i++) {
        if (keep[i])
            d->convs[w++] = d->convs[i];
        else
            conv_free(&d->convs[i]);
    }
    d->n_convs = w;
    free(keep);
    free(idx);
}

void ev_data_free(ev_data *d) {
    for (int32_t i = 0; i < d->n_convs; i++) conv_free(&d->convs[i]);
    free(d->convs);
    for (int32_t i = 0; i < d->n_sources; i++) {
        free(d->sources[i]);
        free(d->paths[i]);
    }
    free(d->sources);
    free(d->paths);
    *d = (ev_data){0};
}
