/*
 * config.c - the YAML configuration reader (formats and API in config.h, docs/config.md).
 *
 * Two stages. First libyaml's event parser feeds a small tree of our own (ynode nodes: scalar,
 * list, map), built with an explicit stack so that depth, node count and scalar length are
 * capped before anything large is allocated. YAML aliases (`*name`) are refused: a document
 * of nested aliases ("billion laughs") expands exponentially when walked, and no real
 * routing config needs them; anchors alone are harmless and ignored.
 *
 * Second, the tree is interpreted: the top-level map is walked once for providers (whose
 * `routing_preferences` become routes), then for everything else. Keys of the maps we own
 * are matched against tables; archrouter's own section rejects unknown keys, archgw's top
 * level ignores them. Routes then have their model resolved to a provider, are sorted into
 * file order and validated. Every error names FILE:LINE:COL and the key.
 */
#include "router/config.h"

#include "base/utf8.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

/* ---- the YAML tree ---------------------------------------------------------------------- */

typedef enum yn_kind { YN_SCALAR, YN_SEQ, YN_MAP } yn_kind;

typedef struct ynode {
    yn_kind kind;
    int line, col; /* 1-based */
    bool plain;    /* an unquoted scalar: may be null, a bool or a number */
    char *s;       /* scalar text, NUL-terminated (may hold NULs from "\0" escapes) */
    size_t len;
    struct ynode **kids; /* list items, or map keys and values interleaved (k0 v0 k1 v1 ...) */
    size_t n, cap;
} ynode;

static void ynode_free(ynode *n) {
    if (!n) return;
    for (size_t i = 0; i < n->n; i++) ynode_free(n->kids[i]);
    free(n->kids);
    free(n->s);
    free(n);
}

static size_t yn_pairs(const ynode *m) {
    return m->n / 2;
}

static const char *kind_name(const ynode *n) {
    switch (n->kind) {
    case YN_SCALAR: return "a scalar";
    case YN_SEQ: return "a list";
    case YN_MAP: return "a mapping";
    }
    return "?";
}

/* ---- reader context and errors ---------------------------------------------------------- */

typedef struct cx {
    const char *name; /* file name for messages */
    ar_err *err;
    ar_config *cfg;
    int *model_line, *model_col; /* per route: where its model reference was written */
    size_t routes_cap, providers_cap;
} cx;

static ar_status fail_at(cx *c, int line, int col, ar_status st, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static ar_status fail_at(cx *c, int line, int col, ar_status st, const char *fmt, ...) {
    char msg[AR_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ar_errf(c->err, st, "%s:%d:%d: %s", c->name, line, col, msg);
}

/* A key path for messages ("llm_providers[2].model"); truncates quietly when long. */
static void subpath(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void subpath(char *dst, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

#define FAIL(c, node, ...) fail_at((c), (node)->line, (node)->col, AR_ERR_FORMAT, __VA_ARGS__)

static ar_status nomem(cx *c) {
    return ar_errf(c->err, AR_ERR_NOMEM, "%s: out of memory reading the configuration", c->name);
}

/* ---- stage 1: events -> tree ------------------------------------------------------------ */

/* Line and column (1-based) of a byte offset, for reader errors that carry only an offset. */
static void offset_pos(const char *text, size_t len, size_t off, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static ar_status syntax_error(cx *c, const yaml_parser_t *p, const char *text, size_t len) {
    int line, col;
    if (p->error == YAML_READER_ERROR) {
        offset_pos(text, len, p->problem_offset, &line, &col);
    } else {
        line = (int)p->problem_mark.line + 1;
        col = (int)p->problem_mark.column + 1;
    }
    const char *problem = p->problem ? p->problem : "malformed YAML";
    if (p->error == YAML_MEMORY_ERROR) return nomem(c);
    if (p->context)
        return fail_at(c, line, col, AR_ERR_FORMAT, "YAML syntax error: %s %s", problem,
                       p->context);
    return fail_at(c, line, col, AR_ERR_FORMAT, "YAML syntax error: %s", problem);
}

static ar_status add_kid(cx *c, ynode *parent, ynode *kid) {
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        ynode **k = realloc(parent->kids, cap * sizeof *k);
        if (!k) return nomem(c);
        parent->kids = k;
        parent->cap = cap;
    }
    parent->kids[parent->n++] = kid;
    return AR_OK;
}

/* Parse text into a tree. *root is NULL for an empty document. */
static ar_status build_tree(cx *c, const char *text, size_t len, ynode **root) {
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) return nomem(c);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);

    ynode *stack[AR_CONFIG_MAX_DEPTH];
    int depth = 0;
    size_t nodes = 0;
    int documents = 0;
    ar_status st = AR_OK;
    *root = NULL;
    for (bool done = false; !done && st == AR_OK;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            st = syntax_error(c, &p, text, len);
            break;
        }
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        ynode *node = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = true; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++documents > 1)
                st = fail_at(c, line, col, AR_ERR_FORMAT,
                             "the file holds more than one YAML document ('---'); "
                             "put the whole configuration in one");
            break;
        case YAML_ALIAS_EVENT:
            st = fail_at(c, line, col, AR_ERR_FORMAT,
                         "YAML aliases (*%.64s) are not supported: write the value out",
                         (const char *)ev.data.alias.anchor);
            break;
        case YAML_SCALAR_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++nodes > AR_CONFIG_MAX_NODES) {
                st = fail_at(c, line, col, AR_ERR_LIMIT, "the document has more than %d YAML nodes",
                             AR_CONFIG_MAX_NODES);
                break;
            }
            node = calloc(1, sizeof *node);
            if (!node) {
                st = nomem(c);
                break;
            }
            node->line = line;
            node->col = col;
            if (ev.type == YAML_SCALAR_EVENT) {
                node->kind = YN_SCALAR;
                node->len = ev.data.scalar.length;
                node->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                if (node->len > AR_CONFIG_MAX_STRING) {
                    st = fail_at(c, line, col, AR_ERR_LIMIT,
                                 "a value of %zu bytes is longer than the %d-byte limit", node->len,
                                 AR_CONFIG_MAX_STRING);
                    ynode_free(node);
                    break;
                }
                node->s = malloc(node->len + 1);
                if (!node->s) {
                    ynode_free(node);
                    st = nomem(c);
                    break;
                }
                memcpy(node->s, ev.data.scalar.value, node->len);
                node->s[node->len] = '\0';
            } else {
                node->kind = ev.type == YAML_SEQUENCE_START_EVENT ? YN_SEQ : YN_MAP;
            }
            if (depth == 0) {
                if (*root) { /* cannot happen: one document, one root */
                    ynode_free(node);
                    st = ar_errf(c->err, AR_ERR_INTERNAL, "%s: two YAML roots", c->name);
                    break;
                }
                *root = node;
            } else if ((st = add_kid(c, stack[depth - 1], node)) != AR_OK) {
                ynode_free(node);
                break;
            }
            if (node->kind != YN_SCALAR) {
                if (depth == AR_CONFIG_MAX_DEPTH) {
                    st = fail_at(c, line, col, AR_ERR_LIMIT,
                                 "lists and mappings are nested more than %d deep",
                                 AR_CONFIG_MAX_DEPTH);
                    break;
                }
                stack[depth++] = node;
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0) depth--;
            break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (st != AR_OK) {
        ynode_free(*root);
        *root = NULL;
    }
    return st;
}

/* ---- typed access ----------------------------------------------------------------------- */

static bool is_null(const ynode *n) {
    if (n->kind != YN_SCALAR || !n->plain) return false;
    return n->len == 0 || !strcmp(n->s, "~") || !strcmp(n->s, "null") || !strcmp(n->s, "Null") ||
           !strcmp(n->s, "NULL");
}

/* A string value (any scalar). Embedded NULs (from "\0" escapes) are refused. */
static ar_status get_str(cx *c, const ynode *n, const char *what, char **out) {
    if (n->kind != YN_SCALAR)
        return FAIL(c, n, "%s: expected a string, not %s", what, kind_name(n));
    if (strlen(n->s) != n->len) return FAIL(c, n, "%s: the value contains a NUL byte", what);
    char *s = strdup(n->s);
    if (!s) return nomem(c);
    free(*out);
    *out = s;
    return AR_OK;
}

static ar_status get_bool(cx *c, const ynode *n, const char *what, bool *out) {
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
                                      "YES",  "on",   "On",   "ON"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No",
                                     "NO",    "off",   "Off",   "OFF"};
    if (n->kind == YN_SCALAR && n->plain) {
        for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
            if (!strcmp(n->s, yes[i])) {
                *out = true;
                return AR_OK;
            }
            if (!strcmp(n->s, no[i])) {
                *out = false;
                return AR_OK;
            }
        }
    }
    return FAIL(c, n, "%s: expected true or false", what);
}

static ar_status get_int(cx *c, const ynode *n, const char *what, int64_t lo, int64_t hi,
                         int64_t *out) {
    if (n->kind != YN_SCALAR || !n->plain || n->len == 0 || n->len > 20)
        return FAIL(c, n, "%s: expected an integer from %lld to %lld", what, (long long)lo,
                    (long long)hi);
    const char *s = n->s;
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    if (i == n->len) return FAIL(c, n, "%s: expected an integer", what);
    for (size_t j = i; j < n->len; j++)
        if (s[j] < '0' || s[j] > '9')
            return FAIL(c, n, "%s: expected an integer from %lld to %lld, not '%s'", what,
                        (long long)lo, (long long)hi, s);
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE || v < lo || v > hi)
        return FAIL(c, n, "%s: %s is out of range (%lld to %lld)", what, s, (long long)lo,
                    (long long)hi);
    *out = v;
    return AR_OK;
}

static ar_status get_double(cx *c, const ynode *n, const char *what, double lo, double hi,
                            double *out) {
    bool ok = n->kind == YN_SCALAR && n->plain && n->len > 0 && n->len < 64;
    for (size_t i = 0; ok && i < n->len; i++)
        ok = n->s[i] && strchr("0123456789+-.eE", n->s[i]) != NULL;
    double v = 0;
    if (ok) {
        char *end;
        v = strtod(n->s, &end);
        ok = *end == '\0' && isfinite(v);
    }
    if (!ok) return FAIL(c, n, "%s: expected a number from %g to %g", what, lo, hi);
    if (v < lo || v > hi)
        return FAIL(c, n, "%s: %s is out of range (%g to %g)", what, n->s, lo, hi);
    *out = v;
    return AR_OK;
}

static ar_status want(cx *c, const ynode *n, yn_kind kind, const char *what) {
    if (n->kind == kind) return AR_OK;
    const char *k = kind == YN_MAP ? "a mapping" : kind == YN_SEQ ? "a list" : "a scalar";
    return FAIL(c, n, "%s: expected %s, not %s", what, k, kind_name(n));
}

/* Walk a mapping's keys against a table of known names. For each pair, *idx is the key's
 * index in `keys` (or -1 for an unknown key). A known key given twice is an error. */
typedef struct map_iter {
    const ynode *map;
    size_t pair;
    const char *const *keys;
    size_t n_keys;
    const ynode *seen[24];
} map_iter;

static void map_begin(map_iter *it, const ynode *map, const char *const *keys, size_t n_keys) {
    memset(it, 0, sizeof *it);
    it->map = map;
    it->keys = keys;
    it->n_keys = n_keys < 24 ? n_keys : 24;
}

/* Next pair: AR_OK with *k, *v set and *idx (-1 unknown); *k NULL at the end. */
static ar_status map_next(cx *c, map_iter *it, const char *what, const ynode **k, const ynode **v,
                          int *idx) {
    *k = *v = NULL;
    *idx = -1;
    if (it->pair >= yn_pairs(it->map)) return AR_OK;
    const ynode *key = it->map->kids[2 * it->pair];
    const ynode *val = it->map->kids[2 * it->pair + 1];
    it->pair++;
    if (key->kind != YN_SCALAR)
        return FAIL(c, key, "%s: a key must be plain text, not %s", what, kind_name(key));
    for (size_t i = 0; i < it->n_keys; i++) {
        if (strcmp(key->s, it->keys[i]) != 0) continue;
        if (it->seen[i])
            return FAIL(c, key, "%s: key '%s' appears twice (first at line %d)", what, key->s,
                        it->seen[i]->line);
        it->seen[i] = key;
        *idx = (int)i;
        break;
    }
    *k = key;
    *v = val;
    return AR_OK;
}

#define NKEYS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- growing the config's arrays -------------------------------------------------------- */

static ar_status new_route(cx *c, const ynode *at, ar_config_route **out) {
    ar_config *cfg = c->cfg;
    if (cfg->n_routes == AR_CONFIG_MAX_ROUTES)
        return fail_at(c, at->line, at->col, AR_ERR_LIMIT, "more than %d routes",
                       AR_CONFIG_MAX_ROUTES);
    if (cfg->n_routes == c->routes_cap) {
        size_t cap = c->routes_cap ? c->routes_cap * 2 : 8;
        ar_config_route *r = realloc(cfg->routes, cap * sizeof *r);
        if (!r) return nomem(c);
        cfg->routes = r;
        int *ml = realloc(c->model_line, cap * sizeof *ml);
        if (!ml) return nomem(c);
        c->model_line = ml;
        int *mc = realloc(c->model_col, cap * sizeof *mc);
        if (!mc) return nomem(c);
        c->model_col = mc;
        c->routes_cap = cap;
    }
    ar_config_route *r = &cfg->routes[cfg->n_routes];
    memset(r, 0, sizeof *r);
    r->provider = -1;
    r->line = at->line;
    r->col = at->col;
    c->model_line[cfg->n_routes] = 0;
    c->model_col[cfg->n_routes] = 0;
    cfg->n_routes++;
    *out = r;
    return AR_OK;
}

/* ---- routes ----------------------------------------------------------------------------- */

/* Route name rules: see config.h. Uniqueness is checked once all routes are read. */
static ar_status check_route_name(cx *c, const ynode *n, const char *what, const char *s) {
    size_t len = strlen(s);
    if (len == 0) return FAIL(c, n, "%s: a route name must not be empty", what);
    if (len > AR_CONFIG_MAX_ROUTE_NAME)
        return FAIL(c, n, "%s: route name is %zu bytes, longer than the %d-byte limit", what, len,
                    AR_CONFIG_MAX_ROUTE_NAME);
    if (!ar_utf8_valid((const uint8_t *)s, len, NULL))
        return FAIL(c, n, "%s: route name is not valid UTF-8", what);
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)s[i];
        bool c1 = b == 0xC2 && i + 1 < len && (unsigned char)s[i + 1] < 0xA0;
        if (b < 0x20 || b == 0x7F || c1)
            return FAIL(c, n, "%s: route name contains a control character at byte %zu", what, i);
    }
    if (!strcmp(s, "other"))
        return FAIL(c, n,
                    "%s: the route name 'other' is reserved (the router answers it when no "
                    "route matches)",
                    what);
    return AR_OK;
}

static ar_status check_description(cx *c, const ynode *n, const char *what, const char *s) {
    size_t len = strlen(s);
    bool blank = true;
    for (size_t i = 0; i < len && blank; i++) blank = strchr(" \t\r\n", s[i]) != NULL;
    if (blank) return FAIL(c, n, "%s: a route description must not be empty", what);
    if (len > AR_CONFIG_MAX_DESCRIPTION)
        return FAIL(c, n, "%s: description is %zu bytes, longer than the %d-byte limit", what, len,
                    AR_CONFIG_MAX_DESCRIPTION);
    return AR_OK;
}

/* One route entry. form: 0 = a provider's routing_preferences item (model = that provider),
 * 1 = top-level routing_preferences {name, description, models}, 2 = native routes
 * {name, description, model}. */
static ar_status read_route(cx *c, const ynode *e, const char *what, int form, int32_t provider) {
    static const char *const keys[] = {"name", "description", "model", "models",
                                       "selection_policy"};
    size_t n_keys = form == 0 ? 2 : NKEYS(keys);
    ar_status st = want(c, e, YN_MAP, what);
    if (st != AR_OK) return st;
    ar_config_route *r = NULL;
    if ((st = new_route(c, e, &r)) != AR_OK) return st;
    size_t ri = c->cfg->n_routes - 1;
    const ynode *name_at = NULL, *desc_at = NULL, *model_at = NULL;
    map_iter it;
    map_begin(&it, e, keys, n_keys);
    char sub[160];
    for (;;) {
        const ynode *k, *v;
        int idx;
        if ((st = map_next(c, &it, what, &k, &v, &idx)) != AR_OK) return st;
        if (!k) break;
        subpath(sub, sizeof sub, "%s.%s", what, k->s);
        if ((form == 1 && idx == 2) || (form == 2 && (idx == 3 || idx == 4))) idx = -1;
        switch (idx) {
        case 0:
            name_at = v;
            if ((st = get_str(c, v, sub, &r->name)) != AR_OK) return st;
            if ((st = check_route_name(c, v, sub, r->name)) != AR_OK) return st;
            break;
        case 1:
            desc_at = v;
            if ((st = get_str(c, v, sub, &r->description)) != AR_OK) return st;
            if ((st = check_description(c, v, sub, r->description)) != AR_OK) return st;
            break;
        case 2:
            model_at = v;
            if ((st = get_str(c, v, sub, &r->model)) != AR_OK) return st;
            break;
        case 3: /* models: [m0, m1, ...]: the first one is where the route sends */
            if ((st = want(c, v, YN_SEQ, sub)) != AR_OK) return st;
            if (v->n == 0) return FAIL(c, v, "%s: list at least one model", sub);
            for (size_t i = 0; i < v->n; i++) {
                char *m = NULL;
                if ((st = get_str(c, v->kids[i], sub, &m)) != AR_OK) return st;
                if (i == 0) {
                    r->model = m;
                    model_at = v->kids[0];
                } else {
                    free(m);
                }
            }
            break;
        case 4: break; /* archgw's selection_policy: about choosing among models; ignored */
        default: return FAIL(c, k, "%s: unknown key '%s'", what, k->s);
        }
    }
    if (!name_at) return FAIL(c, e, "%s: missing 'name'", what);
    if (!desc_at) return FAIL(c, e, "%s: route '%s' is missing 'description'", what, r->name);
    if (form == 0) {
        r->provider = provider;
        r->model = strdup(c->cfg->providers[provider].model);
        if (!r->model) return nomem(c);
    } else if (!model_at) {
        return FAIL(c, e, "%s: route '%s' is missing '%s'", what, r->name,
                    form == 1 ? "models" : "model");
    } else {
        r->provider = -2; /* resolved once all providers are read */
        c->model_line[ri] = model_at->line;
        c->model_col[ri] = model_at->col;
    }
    return AR_OK;
}

static ar_status read_route_list(cx *c, const ynode *list, const char *what, int form,
                                 int32_t provider) {
    ar_status st = want(c, list, YN_SEQ, what);
    char sub[160];
    for (size_t i = 0; st == AR_OK && i < list->n; i++) {
        subpath(sub, sizeof sub, "%s[%zu]", what, i);
        st = read_route(c, list->kids[i], sub, form, provider);
    }
    return st;
}

/* ---- providers -------------------------------------------------------------------------- */

static ar_status split_model(cx *c, const ynode *at, const char *what, ar_config_provider *p,
                             const char *interface) {
    const char *slash = strchr(p->model, '/');
    if (slash && slash != p->model && slash[1]) {
        p->provider = strndup(p->model, (size_t)(slash - p->model));
        p->model_id = strdup(slash + 1);
    } else if (!slash && interface && p->model[0]) {
        p->provider = strdup(interface);
        p->model_id = strdup(p->model);
    } else {
        return FAIL(c, at, "%s: '%s' should read PROVIDER/MODEL (e.g. openai/gpt-4o)", what,
                    p->model);
    }
    if (!p->provider || !p->model_id) return nomem(c);
    return AR_OK;
}

/* Provider keys archgw knows that do not concern routing; accepted and ignored. */
static const char *const provider_ignored[] = {
    "http_host", "passthrough_auth", "headers", "port",    "stream",
    "usage",     "rate_limits",      "limits",  "timeout", "cluster_name",
};

static ar_status read_provider(cx *c, const ynode *e, const char *what) {
    static const char *const keys[] = {"name",
                                       "model",
                                       "access_key",
                                       "default",
                                       "base_url",
                                       "endpoint",
                                       "protocol",
                                       "provider_interface",
                                       "routing_preferences"};
    ar_status st = want(c, e, YN_MAP, what);
    if (st != AR_OK) return st;
    ar_config *cfg = c->cfg;
    if (cfg->n_providers == AR_CONFIG_MAX_PROVIDERS)
        return fail_at(c, e->line, e->col, AR_ERR_LIMIT, "more than %d providers",
                       AR_CONFIG_MAX_PROVIDERS);
    if (cfg->n_providers == c->providers_cap) {
        size_t cap = c->providers_cap ? c->providers_cap * 2 : 8;
        ar_config_provider *p = realloc(cfg->providers, cap * sizeof *p);
        if (!p) return nomem(c);
        cfg->providers = p;
        c->providers_cap = cap;
    }
    int32_t pi = (int32_t)cfg->n_providers++;
    ar_config_provider *p = &cfg->providers[pi];
    memset(p, 0, sizeof *p);
    p->line = e->line;
    p->col = e->col;

    char *endpoint = NULL, *protocol = NULL, *interface = NULL;
    const ynode *model_at = NULL, *prefs = NULL, *endpoint_at = NULL, *base_at = NULL;
    char sub[160];
    map_iter it;
    map_begin(&it, e, keys, NKEYS(keys));
    for (;;) {
        const ynode *k, *v;
        int idx;
        if ((st = map_next(c, &it, what, &k, &v, &idx)) != AR_OK) goto done;
        if (!k) break;
        subpath(sub, sizeof sub, "%s.%s", what, k->s);
        if (idx >= 0 && idx != 1 && is_null(v)) continue; /* optional and empty */
        switch (idx) {
        case 0: st = get_str(c, v, sub, &p->name); break;
        case 1:
            model_at = v;
            st = get_str(c, v, sub, &p->model);
            break;
        case 2: st = get_str(c, v, sub, &p->access_key); break;
        case 3: st = get_bool(c, v, sub, &p->is_default); break;
        case 4:
            base_at = v;
            st = get_str(c, v, sub, &p->base_url);
            break;
        case 5:
            endpoint_at = v;
            st = get_str(c, v, sub, &endpoint);
            break;
        case 6:
            st = get_str(c, v, sub, &protocol);
            if (st == AR_OK && strcmp(protocol, "http") != 0 && strcmp(protocol, "https") != 0)
                st = FAIL(c, v, "%s: expected http or https, not '%s'", sub, protocol);
            break;
        case 7: st = get_str(c, v, sub, &interface); break;
        case 8: prefs = v; break;
        default: {
            bool known = false;
            for (size_t i = 0; i < NKEYS(provider_ignored) && !known; i++)
                known = !strcmp(k->s, provider_ignored[i]);
            if (!known) st = FAIL(c, k, "%s: unknown key '%s'", what, k->s);
        }
        }
        if (st != AR_OK) goto done;
    }
    if (!model_at) {
        st = FAIL(c, e, "%s: missing 'model'", what);
        goto done;
    }
    subpath(sub, sizeof sub, "%s.model", what);
    if ((st = split_model(c, model_at, sub, p, interface)) != AR_OK) goto done;
    if (!p->name && !(p->name = strdup(p->model))) {
        st = nomem(c);
        goto done;
    }
    if (!p->name[0]) {
        st = FAIL(c, e, "%s: 'name' must not be empty", what);
        goto done;
    }
    if (endpoint) {
        if (base_at) {
            st = FAIL(c, endpoint_at, "%s: give either 'base_url' or 'endpoint', not both", what);
            goto done;
        }
        const char *proto = protocol ? protocol : "http";
        size_t n = strlen(proto) + 3 + strlen(endpoint) + 1;
        if (!(p->base_url = malloc(n))) {
            st = nomem(c);
            goto done;
        }
        snprintf(p->base_url, n, "%s://%s", proto, endpoint);
    }
    if (prefs) {
        subpath(sub, sizeof sub, "%s.routing_preferences", what);
        st = read_route_list(c, prefs, sub, 0, pi);
    }
done:
    free(endpoint);
    free(protocol);
    free(interface);
    return st;
}

/* ---- model aliases ---------------------------------------------------------------------- */

static ar_status read_aliases(cx *c, const ynode *m) {
    static const char *const keys[] = {"target"};
    ar_status st = want(c, m, YN_MAP, "model_aliases");
    if (st != AR_OK) return st;
    ar_config *cfg = c->cfg;
    if (yn_pairs(m) > AR_CONFIG_MAX_ALIASES)
        return fail_at(c, m->line, m->col, AR_ERR_LIMIT, "model_aliases: more than %d aliases",
                       AR_CONFIG_MAX_ALIASES);
    if (yn_pairs(m) == 0) return AR_OK;
    cfg->aliases = calloc(yn_pairs(m), sizeof *cfg->aliases);
    if (!cfg->aliases) return nomem(c);
    char sub[200];
    for (size_t i = 0; i < yn_pairs(m); i++) {
        const ynode *k = m->kids[2 * i], *v = m->kids[2 * i + 1];
        ar_config_alias *a = &cfg->aliases[cfg->n_aliases++];
        a->line = k->line;
        a->col = k->col;
        if ((st = get_str(c, k, "model_aliases", &a->name)) != AR_OK) return st;
        for (size_t j = 0; j + 1 < cfg->n_aliases; j++)
            if (!strcmp(cfg->aliases[j].name, a->name))
                return FAIL(c, k, "model_aliases: alias '%.128s' appears twice (first at line %d)",
                            a->name, cfg->aliases[j].line);
        subpath(sub, sizeof sub, "model_aliases.%.128s", a->name);
        if ((st = want(c, v, YN_MAP, sub)) != AR_OK) return st;
        map_iter it;
        map_begin(&it, v, keys, NKEYS(keys));
        for (;;) {
            const ynode *kk, *vv;
            int idx;
            if ((st = map_next(c, &it, sub, &kk, &vv, &idx)) != AR_OK) return st;
            if (!kk) break;
            if (idx != 0) return FAIL(c, kk, "%s: unknown key '%s'", sub, kk->s);
            if ((st = get_str(c, vv, sub, &a->target)) != AR_OK) return st;
        }
        if (!a->target) return FAIL(c, v, "%s: missing 'target'", sub);
    }
    return AR_OK;
}

/* ---- settings (archrouter section and listeners) ---------------------------------------- */

typedef enum skind {
    S_STR,
    S_INT,
    S_I64,
    S_DBL,
    S_BOOL,
    S_LAYOUT,
    S_PRECISION,
    S_STRLIST,
    S_BACKEND
} skind;

typedef struct setting {
    const char *key;
    skind kind;
    size_t off;
    double lo, hi;
} setting;

#define R(f)  offsetof(ar_config_router, f)
#define SV(f) offsetof(ar_config_server, f)

static const setting router_settings[] = {
    {"model", S_STR, R(model), 0, 0},
    {"threads", S_INT, R(threads), 0, 1024},
    {"precision", S_PRECISION, R(precision), 0, 0},
    {"layout", S_LAYOUT, R(layout), 0, 0},
    {"system_prompt", S_STR, R(system_prompt), 0, 0},
    {"max_conversation_tokens", S_INT, R(max_conversation_tokens), 1, 1000000},
    {"min_confidence", S_DBL, R(min_confidence), 0, 1},
    {"timeout_ms", S_INT, R(timeout_ms), 0, 3600000},
    {"prefix_cache_mb", S_INT, R(prefix_cache_mb), 0, 65536},
    {"scores", S_BOOL, R(scores), 0, 0},
    {"backend", S_BACKEND, R(remote), 0, 0},
    {"base_url", S_STR, R(base_url), 0, 0},
    {"remote_model", S_STR, R(remote_model), 0, 0},
    {"api_key_env", S_STR, R(api_key_env), 0, 0},
};

static const setting server_settings[] = {
    {"address", S_STR, SV(address), 0, 0},
    {"port", S_INT, SV(port), 0, 65535},
    {"max_body_bytes", S_I64, SV(max_body_bytes), 1024, 1 << 30},
    {"max_concurrent", S_INT, SV(max_concurrent), 1, 65536},
    {"max_queue", S_INT, SV(max_queue), 0, 65536},
    {"connect_timeout_ms", S_INT, SV(connect_timeout_ms), 1, 600000},
    {"read_timeout_ms", S_INT, SV(read_timeout_ms), 1, 86400000},
    {"api_keys", S_STRLIST, SV(api_keys), 0, AR_CONFIG_MAX_API_KEYS},
};

#undef R
#undef SV

static ar_status read_setting(cx *c, const setting *s, const ynode *v, const char *what,
                              void *base) {
    char *field = (char *)base + s->off;
    ar_status st = AR_OK;
    int64_t i64;
    switch (s->kind) {
    case S_STR: {
        if (is_null(v)) { /* explicit null: back to the default (none) */
            free(*(char **)field);
            *(char **)field = NULL;
            return AR_OK;
        }
        return get_str(c, v, what, (char **)field);
    }
    case S_INT:
        if ((st = get_int(c, v, what, (int64_t)s->lo, (int64_t)s->hi, &i64)) == AR_OK)
            *(int *)field = (int)i64;
        return st;
    case S_I64: return get_int(c, v, what, (int64_t)s->lo, (int64_t)s->hi, (int64_t *)field);
    case S_DBL: return get_double(c, v, what, s->lo, s->hi, (double *)field);
    case S_BOOL: return get_bool(c, v, what, (bool *)field);
    case S_LAYOUT: {
        if (v->kind == YN_SCALAR && !strcmp(v->s, "card")) {
            *(ar_config_layout *)field = AR_CONFIG_LAYOUT_CARD;
        } else if (v->kind == YN_SCALAR && !strcmp(v->s, "archgw")) {
            *(ar_config_layout *)field = AR_CONFIG_LAYOUT_ARCHGW;
        } else {
            return FAIL(c, v, "%s: expected card or archgw", what);
        }
        return AR_OK;
    }
    case S_PRECISION: {
        static const char *const names[] = {"accurate", "fast", "float32"};
        for (int i = 0; i < 3 && v->kind == YN_SCALAR; i++)
            if (!strcmp(v->s, names[i])) {
                *(int *)field = i;
                return AR_OK;
            }
        return FAIL(c, v, "%s: expected accurate, fast or float32", what);
    }
    case S_BACKEND:
        if (v->kind == YN_SCALAR && (!strcmp(v->s, "local") || !strcmp(v->s, "remote"))) {
            *(bool *)field = !strcmp(v->s, "remote");
            return AR_OK;
        }
        return FAIL(c, v, "%s: expected local or remote", what);
    case S_STRLIST: {
        ar_config_server *srv = base;
        if ((st = want(c, v, YN_SEQ, what)) != AR_OK) return st;
        if (v->n > (size_t)s->hi)
            return fail_at(c, v->line, v->col, AR_ERR_LIMIT, "%s: more than %d keys", what,
                           (int)s->hi);
        for (size_t i = 0; i < srv->n_api_keys; i++) free(srv->api_keys[i]);
        free(srv->api_keys);
        srv->api_keys = NULL;
        srv->n_api_keys = 0;
        if (v->n == 0) return AR_OK;
        if (!(srv->api_keys = calloc(v->n, sizeof *srv->api_keys))) return nomem(c);
        for (size_t i = 0; i < v->n; i++) {
            if ((st = get_str(c, v->kids[i], what, &srv->api_keys[i])) != AR_OK) return st;
            srv->n_api_keys++;
            if (!srv->api_keys[i][0]) return FAIL(c, v->kids[i], "%s: an empty key", what);
        }
        return AR_OK;
    }
    }
    return AR_OK;
}

static ar_status read_settings(cx *c, const ynode *m, const char *what, const setting *table,
                               size_t n, void *base) {
    const char *keys[24];
    for (size_t i = 0; i < n; i++) keys[i] = table[i].key;
    ar_status st = want(c, m, YN_MAP, what);
    if (st != AR_OK) return st;
    map_iter it;
    map_begin(&it, m, keys, n);
    char sub[160];
    for (;;) {
        const ynode *k, *v;
        int idx;
        if ((st = map_next(c, &it, what, &k, &v, &idx)) != AR_OK) return st;
        if (!k) return AR_OK;
        if (idx < 0) return FAIL(c, k, "%s: unknown key '%s'", what, k->s);
        subpath(sub, sizeof sub, "%s.%s", what, k->s);
        if ((st = read_setting(c, &table[idx], v, sub, base)) != AR_OK) return st;
    }
}

/* backend: remote needs a server and a model name, given as http(s) URL and text. */
static ar_status check_remote(cx *c, const ynode *m, const ar_config_router *r) {
    if (!r->remote) return AR_OK;
    if (!r->base_url || !r->base_url[0])
        return FAIL(c, m, "archrouter.router: backend remote needs base_url");
    if (strncmp(r->base_url, "http://", 7) && strncmp(r->base_url, "https://", 8))
        return FAIL(c, m, "archrouter.router.base_url: '%.200s' is not an http(s) URL",
                    r->base_url);
    if (!r->remote_model || !r->remote_model[0])
        return FAIL(c, m, "archrouter.router: backend remote needs remote_model");
    return AR_OK;
}

static ar_status read_archrouter(cx *c, const ynode *m) {
    static const char *const keys[] = {"router", "server"};
    ar_status st = want(c, m, YN_MAP, "archrouter");
    if (st != AR_OK) return st;
    map_iter it;
    map_begin(&it, m, keys, NKEYS(keys));
    for (;;) {
        const ynode *k, *v;
        int idx;
        if ((st = map_next(c, &it, "archrouter", &k, &v, &idx)) != AR_OK) return st;
        if (!k) return AR_OK;
        if (is_null(v)) continue;
        if (idx == 0) {
            st = read_settings(c, v, "archrouter.router", router_settings, NKEYS(router_settings),
                               &c->cfg->router);
            if (st == AR_OK) st = check_remote(c, v, &c->cfg->router);
        } else if (idx == 1)
            st = read_settings(c, v, "archrouter.server", server_settings, NKEYS(server_settings),
                               &c->cfg->server);
        else
            st = FAIL(c, k, "archrouter: unknown key '%s' (expected router or server)", k->s);
        if (st != AR_OK) return st;
    }
}

/* archgw durations: "30s", "500ms", "0.005s", "2m"; a bare number is seconds. */
static ar_status read_duration_ms(cx *c, const ynode *v, const char *what, int *out) {
    if (v->kind != YN_SCALAR || v->len == 0 || v->len > 32)
        return FAIL(c, v, "%s: expected a duration such as 30s or 500ms", what);
    char *end;
    errno = 0;
    double x = strtod(v->s, &end);
    double scale = 1000;
    if (!strcmp(end, "ms"))
        scale = 1;
    else if (!strcmp(end, "m"))
        scale = 60000;
    else if (strcmp(end, "s") != 0 && *end != '\0')
        end = NULL;
    if (!end || end == v->s || errno || !isfinite(x) || x < 0 || x * scale > 86400000.0 ||
        !(v->s[0] >= '0' && v->s[0] <= '9'))
        return FAIL(c, v, "%s: expected a duration from 1ms to 24h such as 30s or 500ms", what);
    int ms = (int)ceil(x * scale);
    *out = ms < 1 ? 1 : ms;
    return AR_OK;
}

/* One archgw listener map: address, port, timeout; other keys belong to archgw. */
static ar_status read_listener(cx *c, const ynode *m, const char *what) {
    static const char *const keys[] = {"address", "port", "timeout"};
    ar_status st = want(c, m, YN_MAP, what);
    if (st != AR_OK) return st;
    ar_config_server *srv = &c->cfg->server;
    map_iter it;
    map_begin(&it, m, keys, NKEYS(keys));
    char sub[160];
    for (;;) {
        const ynode *k, *v;
        int idx;
        if ((st = map_next(c, &it, what, &k, &v, &idx)) != AR_OK) return st;
        if (!k) return AR_OK;
        subpath(sub, sizeof sub, "%s.%s", what, k->s);
        if (idx == 0)
            st = read_setting(c, &server_settings[0], v, sub, srv);
        else if (idx == 1)
            st = read_setting(c, &server_settings[1], v, sub, srv);
        else if (idx == 2)
            st = read_duration_ms(c, v, sub, &srv->read_timeout_ms);
        if (st != AR_OK) return st;
    }
}

/* listeners: {egress_traffic: {...}} (archgw's older map form) or
 * [{name, type: model, address, port}] (the list form); the model/egress listener is ours. */
static ar_status read_listeners(cx *c, const ynode *v) {
    char sub[64];
    if (v->kind == YN_MAP) {
        for (size_t i = 0; i < yn_pairs(v); i++) {
            const ynode *k = v->kids[2 * i];
            if (k->kind == YN_SCALAR && !strcmp(k->s, "egress_traffic"))
                return read_listener(c, v->kids[2 * i + 1], "listeners.egress_traffic");
        }
        return AR_OK;
    }
    ar_status st = want(c, v, YN_SEQ, "listeners");
    if (st != AR_OK) return st;
    for (size_t i = 0; i < v->n; i++) {
        const ynode *e = v->kids[i];
        subpath(sub, sizeof sub, "listeners[%zu]", i);
        if ((st = want(c, e, YN_MAP, sub)) != AR_OK) return st;
        for (size_t j = 0; j < yn_pairs(e); j++) {
            const ynode *k = e->kids[2 * j], *t = e->kids[2 * j + 1];
            if (k->kind != YN_SCALAR || t->kind != YN_SCALAR || strcmp(k->s, "type") != 0) continue;
            if (!strcmp(t->s, "model") || !strcmp(t->s, "model_listener"))
                return read_listener(c, e, sub);
        }
    }
    return AR_OK;
}

/* ---- whole document --------------------------------------------------------------------- */

int32_t ar_config_find_provider(const ar_config *cfg, const char *model) {
    if (!cfg || !model) return -1;
    for (size_t i = 0; i < cfg->n_providers; i++)
        if (!strcmp(cfg->providers[i].name, model)) return (int32_t)i;
    for (size_t i = 0; i < cfg->n_providers; i++)
        if (!strcmp(cfg->providers[i].model, model)) return (int32_t)i;
    for (size_t i = 0; i < cfg->n_providers; i++)
        if (!strcmp(cfg->providers[i].model_id, model)) return (int32_t)i;
    for (size_t i = 0; i < cfg->n_aliases; i++) {
        if (strcmp(cfg->aliases[i].name, model) != 0) continue;
        const char *t = cfg->aliases[i].target;
        for (size_t j = 0; j < cfg->n_providers; j++) {
            const ar_config_provider *p = &cfg->providers[j];
            if (!strcmp(p->name, t) || !strcmp(p->model, t) || !strcmp(p->model_id, t))
                return (int32_t)j;
        }
    }
    return -1;
}

static int route_pos_cmp(const void *a, const void *b) {
    const ar_config_route *x = a, *y = b;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    return (x->col > y->col) - (x->col < y->col);
}

static ar_status finish(cx *c, const ynode *root) {
    ar_config *cfg = c->cfg;
    /* The default provider. */
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const ar_config_provider *p = &cfg->providers[i];
        for (size_t j = 0; j < i; j++)
            if (!strcmp(cfg->providers[j].name, p->name))
                return fail_at(c, p->line, p->col, AR_ERR_FORMAT,
                               "provider name '%.128s' is used twice (first at line %d)", p->name,
                               cfg->providers[j].line);
        if (!p->is_default) continue;
        if (cfg->default_provider >= 0)
            return fail_at(c, p->line, p->col, AR_ERR_FORMAT,
                           "more than one provider has 'default: true' (the first is at "
                           "line %d)",
                           cfg->providers[cfg->default_provider].line);
        cfg->default_provider = (int32_t)i;
    }
    /* Route models -> providers. */
    for (size_t i = 0; i < cfg->n_routes; i++) {
        ar_config_route *r = &cfg->routes[i];
        if (r->provider != -2) continue;
        r->provider = -1;
        if (cfg->n_providers == 0) continue; /* the model name stands alone */
        r->provider = ar_config_find_provider(cfg, r->model);
        if (r->provider < 0)
            return fail_at(c, c->model_line[i], c->model_col[i], AR_ERR_FORMAT,
                           "route '%s': model '%.200s' is not a listed provider's name, "
                           "model or alias",
                           r->name, r->model);
        char *m = strdup(cfg->providers[r->provider].model);
        if (!m) return nomem(c);
        free(r->model);
        r->model = m;
    }
    /* File order, then unique names. */
    if (cfg->n_routes > 1) qsort(cfg->routes, cfg->n_routes, sizeof *cfg->routes, route_pos_cmp);
    for (size_t i = 1; i < cfg->n_routes; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(cfg->routes[i].name, cfg->routes[j].name))
                return fail_at(c, cfg->routes[i].line, cfg->routes[i].col, AR_ERR_FORMAT,
                               "route name '%s' is used twice (first at line %d)",
                               cfg->routes[i].name, cfg->routes[j].line);
    if (cfg->n_routes == 0 && cfg->n_providers == 0)
        return fail_at(c, root ? root->line : 1, root ? root->col : 1, AR_ERR_FORMAT,
                       "the configuration defines no routes and no providers");
    if (!cfg->server.address && !(cfg->server.address = strdup("127.0.0.1"))) return nomem(c);
    if (!cfg->server.address[0])
        return fail_at(c, 1, 1, AR_ERR_FORMAT, "archrouter.server.address must not be empty");
    return AR_OK;
}

static ar_status read_document(cx *c, const ynode *root) {
    static const char *const keys[] = {"llm_providers", "model_providers",     "providers",
                                       "routes",        "routing_preferences", "model_aliases",
                                       "listeners",     "archrouter"};
    if (!root) return finish(c, NULL);
    if (root->kind == YN_SCALAR && is_null(root)) return finish(c, root);
    ar_status st = want(c, root, YN_MAP, "the configuration");
    if (st != AR_OK) return st;
    /* Providers first: routes refer to them. */
    const ynode *providers_key = NULL;
    for (int pass = 0; pass < 2; pass++) {
        map_iter it;
        map_begin(&it, root, keys, NKEYS(keys));
        for (;;) {
            const ynode *k, *v;
            int idx;
            if ((st = map_next(c, &it, "the configuration", &k, &v, &idx)) != AR_OK) return st;
            if (!k) break;
            if (idx < 0 || is_null(v) || (pass == 0) != (idx <= 2)) continue;
            switch (idx) {
            case 0:
            case 1:
            case 2:
                if (providers_key)
                    return FAIL(c, k, "give providers under one key; '%s' and '%s' both list them",
                                providers_key->s, k->s);
                providers_key = k;
                if ((st = want(c, v, YN_SEQ, k->s)) != AR_OK) return st;
                for (size_t i = 0; i < v->n && st == AR_OK; i++) {
                    char sub[64];
                    subpath(sub, sizeof sub, "%s[%zu]", k->s, i);
                    st = read_provider(c, v->kids[i], sub);
                }
                break;
            case 3: st = read_route_list(c, v, "routes", 2, -1); break;
            case 4: st = read_route_list(c, v, "routing_preferences", 1, -1); break;
            case 5: st = read_aliases(c, v); break;
            case 6: st = read_listeners(c, v); break;
            case 7: break; /* after listeners, so that its server settings win */
            }
            if (st != AR_OK) return st;
        }
    }
    for (size_t i = 0; i < yn_pairs(root); i++) {
        const ynode *k = root->kids[2 * i];
        if (k->kind == YN_SCALAR && !strcmp(k->s, "archrouter") && !is_null(root->kids[2 * i + 1]))
            if ((st = read_archrouter(c, root->kids[2 * i + 1])) != AR_OK) return st;
    }
    return finish(c, root);
}

/* ---- API -------------------------------------------------------------------------------- */

void ar_config_router_defaults(ar_config_router *r) {
    memset(r, 0, sizeof *r);
    r->layout = AR_CONFIG_LAYOUT_CARD;
    r->max_conversation_tokens = 2048;
    r->min_confidence = 0.0;
    r->timeout_ms = 1000;
    r->precision = -1;
    r->prefix_cache_mb = 256;
}

static void server_defaults(ar_config_server *s) {
    memset(s, 0, sizeof *s);
    s->port = 12000;
    s->max_body_bytes = 8 << 20;
    s->max_concurrent = 64;
    s->max_queue = 64;
    s->connect_timeout_ms = 5000;
    s->read_timeout_ms = 300000;
}

void ar_config_free(ar_config *cfg) {
    if (!cfg) return;
    for (size_t i = 0; i < cfg->n_providers; i++) {
        ar_config_provider *p = &cfg->providers[i];
        free(p->name);
        free(p->model);
        free(p->provider);
        free(p->model_id);
        free(p->base_url);
        free(p->access_key);
    }
    free(cfg->providers);
    for (size_t i = 0; i < cfg->n_routes; i++) {
        free(cfg->routes[i].name);
        free(cfg->routes[i].description);
        free(cfg->routes[i].model);
    }
    free(cfg->routes);
    for (size_t i = 0; i < cfg->n_aliases; i++) {
        free(cfg->aliases[i].name);
        free(cfg->aliases[i].target);
    }
    free(cfg->aliases);
    free(cfg->router.model);
    free(cfg->router.system_prompt);
    free(cfg->router.base_url);
    free(cfg->router.remote_model);
    free(cfg->router.api_key_env);
    free(cfg->server.address);
    for (size_t i = 0; i < cfg->server.n_api_keys; i++) free(cfg->server.api_keys[i]);
    free(cfg->server.api_keys);
    free(cfg->source);
    free(cfg);
}

ar_status ar_config_load_memory(const char *text, size_t len, const char *name, ar_config **out,
                                ar_err *err) {
    if (!out) return ar_errf(err, AR_ERR_INVALID_ARG, "ar_config_load_memory: out is NULL");
    *out = NULL;
    if (!text && len)
        return ar_errf(err, AR_ERR_INVALID_ARG, "ar_config_load_memory: text is NULL");
    if (!name) name = "<memory>";
    if (len > AR_CONFIG_MAX_FILE_BYTES)
        return ar_errf(err, AR_ERR_LIMIT, "%s: %zu bytes, larger than the %u-byte limit", name, len,
                       AR_CONFIG_MAX_FILE_BYTES);
    cx c = {.name = name, .err = err};
    ar_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) return nomem(&c);
    c.cfg = cfg;
    cfg->default_provider = -1;
    ar_config_router_defaults(&cfg->router);
    server_defaults(&cfg->server);
    ar_status st = AR_OK;
    if (!(cfg->source = strdup(name))) st = nomem(&c);
    ynode *root = NULL;
    if (st == AR_OK) st = build_tree(&c, text ? text : "", len, &root);
    if (st == AR_OK) st = read_document(&c, root);
    ynode_free(root);
    free(c.model_line);
    free(c.model_col);
    if (st != AR_OK) {
        ar_config_free(cfg);
        return st;
    }
    *out = cfg;
    return AR_OK;
}

ar_status ar_config_load_file(const char *path, ar_config **out, ar_err *err) {
    if (!out) return ar_errf(err, AR_ERR_INVALID_ARG, "ar_config_load_file: out is NULL");
    *out = NULL;
    if (!path) return ar_errf(err, AR_ERR_INVALID_ARG, "ar_config_load_file: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f) return ar_errf(err, AR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(f);
        return ar_errf(err, AR_ERR_IO, "%s: is a directory, not a configuration file", path);
    }
    /* Read at most one byte past the cap, so growing or special files are caught too. */
    size_t cap = AR_CONFIG_MAX_FILE_BYTES + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return ar_errf(err, AR_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got;
    while (len < cap && (got = fread(buf + len, 1, cap - len, f)) > 0) len += got;
    bool bad = ferror(f) != 0;
    int e = errno;
    fclose(f);
    ar_status st;
    if (bad)
        st = ar_errf(err, AR_ERR_IO, "%s: read error: %s", path, strerror(e));
    else if (len > AR_CONFIG_MAX_FILE_BYTES)
        st = ar_errf(err, AR_ERR_LIMIT, "%s: larger than the %u-byte limit", path,
                     AR_CONFIG_MAX_FILE_BYTES);
    else
        st = ar_config_load_memory(buf, len, path, out, err);
    free(buf);
    return st;
}

ar_status ar_config_resolve_key(const char *written, char *out, size_t cap, ar_err *err) {
    if (!written || !out || cap == 0)
        return ar_errf(err, AR_ERR_INVALID_ARG, "ar_config_resolve_key: NULL argument");
    const char *value = written, *rest = "";
    if (written[0] == '$') {
        bool braced = written[1] == '{';
        const char *s = written + 1 + braced, *e = s;
        while ((*e >= 'A' && *e <= 'Z') || (*e >= 'a' && *e <= 'z') || *e == '_' ||
               (e > s && *e >= '0' && *e <= '9'))
            e++;
        if (e == s)
            return ar_errf(err, AR_ERR_FORMAT,
                           "key '%.64s': '$' is not followed by a variable name", written);
        if (braced && *e != '}')
            return ar_errf(err, AR_ERR_FORMAT, "key '%.64s': '${' without a closing '}'", written);
        char var[256];
        size_t n = (size_t)(e - s);
        if (n >= sizeof var)
            return ar_errf(err, AR_ERR_FORMAT, "key '%.64s...': variable name too long", written);
        memcpy(var, s, n);
        var[n] = '\0';
        value = getenv(var);
        if (!value || !value[0])
            return ar_errf(err, AR_ERR_NOT_FOUND,
                           "environment variable %s is not set (the config's key reads '%.64s')",
                           var, written);
        rest = e + braced;
    }
    size_t need = strlen(value) + strlen(rest) + 1;
    if (need > cap)
        return ar_errf(err, AR_ERR_BUFFER_TOO_SMALL, "resolved key needs %zu bytes, have %zu", need,
                       cap);
    snprintf(out, cap, "%s%s", value, rest);
    return AR_OK;
}
