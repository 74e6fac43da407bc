/*
 * server.c - the HTTP side of the gateway: libmicrohttpd, endpoints, routing decisions,
 * forwarding, access log.
 *
 * Threading. libmicrohttpd runs one thread per client connection (MHD_USE_THREAD_PER_
 * CONNECTION). A request's work may block for long: waiting on the routing queue (up to
 * router.timeout_ms) and on the upstream (a whole stream). Blocking the connection's own
 * thread costs nothing to other clients, and keeps each request a linear story: read the
 * body, decide, forward, relay. The event-loop alternative (suspend/resume plus a shared
 * curl multi thread) saves threads for idle keep-alive connections but needs a hand-off for
 * every chunk in both directions. Threads are bounded by the connection limit, and
 * max_concurrent bounds requests in flight (429 over it). At benchmark rates a keep-alive
 * client connection costs one thread and one reused upstream connection (each connection
 * keeps its own curl multi handle and a spare easy handle, created on first use, freed when
 * the client leaves).
 *
 * Measured (bench/gateway.sh, perf, strace, callgrind; 2-core VM): a forwarded request is 8
 * system calls on its thread (recv, send and recv upstream, send, and polls, 2 of them
 * blocking) and about 2.3 context switches, and the kernel side (wake-ups, switches,
 * loopback TCP) is about 60% of its CPU time. An event loop would block the same 2 times
 * per request at these rates (few requests in flight at once), so thread per connection is
 * not where the time goes. Of the user-space part, libcurl is the largest share (request
 * building and URL parsing per transfer), then libmicrohttpd zeroing its per-connection
 * memory pool for each request, then jansson's parse of the body.
 *
 * Request flow for POST /v1/chat/completions: auth (Bearer key when server.api_keys is
 * set), concurrency and Content-Length checks on the first call; body gathered up to
 * max_body_bytes (413 past it); parse and validate (400); fallback provider from the
 * request's model (aliases applied) or the default one (404/400 when none); routing through
 * the queue when routes exist (fail-open to the fallback on timeout, full queue or router
 * error); the body's `model` rewritten to the provider's model id; upstream headers; then a
 * buffered response (non-streamed, or an upstream error) or a callback response that
 * relays the stream as it arrives. The request-completed callback writes the access-log
 * line, counts metrics and ends the transfer: a client that disconnects mid-stream ends
 * its upstream transfer there (and sooner, through the socket watch in upstream.c).
 */
#include "gateway/gateway.h"

#include "base/buf.h"
#include "base/clock.h"
#include "gateway/metrics.h"
#include "gateway/request.h"
#include "gateway/upstream.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEADER_MEMORY_LIMIT (64u << 10) /* per connection: request line + headers (431) */
#define IDLE_TIMEOUT_S      30          /* a client silent this long is dropped */

typedef struct gw_provider {
    char *url;  /* base_url + "/chat/completions" */
    char *auth; /* "Authorization: Bearer KEY" or NULL */
} gw_provider;

struct ar_gw {
    const ar_config *cfg;
    gw_provider *prov;
    ar_rq *rq; /* NULL: routing off */
    struct MHD_Daemon *mhd;
    int port, log_fd;
    char **keys; /* resolved client keys */
    size_t n_keys;
    ar_metrics metrics;
    atomic_bool draining, cancel;
    atomic_uint_fast64_t next_id;
};

typedef enum endpoint {
    EP_CHAT = 0,
    EP_ROUTE = 1, /* /v1/route and /routing/v1/chat/completions */
    EP_MODELS = 2,
    EP_HEALTH = 3,
    EP_READY = 4,
    EP_METRICS = 5,
    EP_OTHER = 6
} endpoint;

static const char *const ep_names[] = {"chat",   "route",   "models", "healthz",
                                       "readyz", "metrics", "other"};

/* Per client connection (MHD socket context). */
typedef struct gw_conn {
    ar_up_conn up;
} gw_conn;

/* Per request (MHD con_cls). */
typedef struct gw_req {
    ar_gw *gw;
    endpoint ep;
    bool counted; /* in active_requests */
    bool too_large, stream, streaming, aborted;
    ar_buf body;
    double t0, route_ms;
    char id[80];
    int status;
    /* decision */
    const char *route;     /* route name, "other", or NULL (routing off / fail-open) */
    const char *fail_open; /* reason, or NULL */
    int provider;
    float confidence;
    bool routed;
    /* upstream */
    ar_up up;
    bool up_started;
    size_t bytes_out;
} gw_req;

const char *ar_gw_default_base_url(const char *provider) {
    static const char *const table[][2] = {
        {"openai", "https://api.openai.com/v1"},
        {"anthropic", "https://api.anthropic.com/v1"},
        {"claude", "https://api.anthropic.com/v1"},
        {"deepseek", "https://api.deepseek.com/v1"},
        {"mistral", "https://api.mistral.ai/v1"},
        {"groq", "https://api.groq.com/openai/v1"},
        {"together_ai", "https://api.together.xyz/v1"},
        {"together", "https://api.together.xyz/v1"},
        {"xai", "https://api.x.ai/v1"},
        {"gemini", "https://generativelanguage.googleapis.com/v1beta/openai"},
        {"openrouter", "https://openrouter.ai/api/v1"},
        {"ollama", "http://127.0.0.1:11434/v1"},
        {"vllm", "http://127.0.0.1:8000/v1"},
        {"llamacpp", "http://127.0.0.1:8080/v1"},
    };
    if (!provider) return NULL;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcasecmp(provider, table[i][0])) return table[i][1];
    return NULL;
}

/* ---- responses ------------------------------------------------------------------------ */

static void add_common_headers(gw_req *r, struct MHD_Response *resp) {
    MHD_add_response_header(resp, "x-request-id", r->id);
    if (r->provider >= 0 && r->ep <= EP_ROUTE)
        MHD_add_response_header(resp, "x-archrouter-model",
                                r->gw->cfg->providers[r->provider].model);
    if (r->routed || r->fail_open) {
        MHD_add_response_header(resp, "x-archrouter-route",
                                r->fail_open ? "fail-open"
                                : r->route   ? r->route
                                             : "other");
        char v[32];
        if (r->fail_open) {
            MHD_add_response_header(resp, "x-archrouter-fail-open", r->fail_open);
        } else {
            snprintf(v, sizeof v, "%.4f", r->confidence);
            MHD_add_response_header(resp, "x-archrouter-confidence", v);
        }
        snprintf(v, sizeof v, "%.1f", r->route_ms);
        MHD_add_response_header(resp, "x-archrouter-route-ms", v);
    }
}

static enum MHD_Result send_buf(struct MHD_Connection *c, gw_req *r, int status, const char *ctype,
                                const char *data, size_t len) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", ctype);
    add_common_headers(r, resp);
    r->status = status;
    r->bytes_out = len;
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, gw_req *r, int status, json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(j);
    if (!s) return MHD_NO;
    enum MHD_Result ret = send_buf(c, r, status, "application/json", s, strlen(s));
    free(s);
    return ret;
}

/* OpenAI's error shape: {"error": {"message", "type", "param", "code"}}. */
static enum MHD_Result send_error(struct MHD_Connection *c, gw_req *r, int status, const char *type,
                                  const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static enum MHD_Result send_error(struct MHD_Connection *c, gw_req *r, int status, const char *type,
                                  const char *code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *e = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", msg, "type", type,
                          "param", "code", code);
    if (!e) return MHD_NO;
    return send_json(c, r, status, e);
}

/* ---- access log ----------------------------------------------------------------------- */

/* The access log line is written by hand, not through jansson: a json_t object per request
 * (a malloc per field, then json_dumps) cost 54k instructions a line (callgrind; a whole
 * forwarded request is about 230k without the log), this about 19k, most of it in the
 * printing of the five numbers. Same text as jansson wrote (tests/gateway: test_access_log). */

/* Plain appends where they do: ar_buf_printf formats twice (size, then text). */
static void log_key(ar_buf *b, const char *key) {
    ar_buf_puts(b, ",\"");
    ar_buf_puts(b, key);
    ar_buf_puts(b, "\":");
}

static void log_int(ar_buf *b, const char *key, long long v) {
    char t[24];
    snprintf(t, sizeof t, "%lld", v);
    log_key(b, key);
    ar_buf_puts(b, t);
}

/* ,"key":"value" with value escaped, or ,"key":null. */
static void log_str(ar_buf *b, const char *key, const char *v) {
    log_key(b, key);
    if (!v) {
        ar_buf_puts(b, "null");
        return;
    }
    ar_buf_puts(b, "\"");
    ar_buf_json_string(b, v, strlen(v), false);
    ar_buf_puts(b, "\"");
}

/* ,"key":number as jansson writes a real with JSON_REAL_PRECISION(6): %.6g, and ".0" when
 * that reads as an integer. Not finite: null (JSON has no such numbers). */
static void log_real(ar_buf *b, const char *key, double v) {
    log_key(b, key);
    if (!isfinite(v)) {
        ar_buf_puts(b, "null");
        return;
    }
    char t[40];
    snprintf(t, sizeof t, "%.6g", v);
    ar_buf_puts(b, t);
    if (!strpbrk(t, ".eE")) ar_buf_puts(b, ".0");
}

static void access_log(gw_req *r, struct MHD_Connection *c, enum MHD_RequestTerminationCode tc) {
    ar_gw *gw = r->gw;
    if (gw->log_fd < 0) return;
    (void)c;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    snprintf(when, sizeof when, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             ts.tv_nsec / 1000000);
    ar_buf b = {0};
    ar_buf_puts(&b, when);
    log_str(&b, "request_id", r->id);
    log_str(&b, "endpoint", ep_names[r->ep]);
    log_int(&b, "status", r->status);
    if (r->ep <= EP_ROUTE) {
        log_str(&b, "route", r->route);
        log_str(&b, "model", r->provider >= 0 ? gw->cfg->providers[r->provider].model : NULL);
        if (r->routed)
            log_real(&b, "confidence", (double)r->confidence);
        else
            log_str(&b, "confidence", NULL);
        log_str(&b, "fail_open", r->fail_open);
        log_key(&b, "stream");
        ar_buf_puts(&b, r->stream ? "true" : "false");
        log_real(&b, "route_ms", r->route_ms);
    }
    if (r->up_started) {
        const ar_up *u = &r->up;
        double end = u->t_end > 0 ? u->t_end : ar_clock_ms();
        log_int(&b, "upstream_status", u->status);
        if (u->t_first_byte > 0)
            log_real(&b, "upstream_ttfb_ms", u->t_first_byte - u->t_start);
        else
            log_str(&b, "upstream_ttfb_ms", NULL);
        log_real(&b, "upstream_ms", end - u->t_start);
        if (u->error != AR_UP_OK) log_str(&b, "upstream_error", ar_up_error_name(u->error));
    }
    log_int(&b, "bytes_out", (long long)r->bytes_out);
    log_real(&b, "total_ms", ar_clock_ms() - r->t0);
    if (tc != MHD_REQUEST_TERMINATED_COMPLETED_OK || r->aborted)
        ar_buf_puts(&b, ",\"aborted\":true");
    ar_buf_puts(&b, "}\n");
    if (!b.oom) { /* one write(2) per line */
        ssize_t w = write(gw->log_fd, b.data, b.len);
        (void)w;
    }
    ar_buf_free(&b);
}

/* ---- decisions ------------------------------------------------------------------------ */

/* The fallback provider for a request: its model (aliases applied), else the default. */
static int fallback_provider(const ar_gw *gw, const char *model) {
    int p = model ? ar_config_find_provider(gw->cfg, model) : -1;
    return p >= 0 ? p : gw->cfg->default_provider;
}

/* Decide the provider for req; sets r->provider, r->route, r->routed/fail_open. Returns
 * false after queueing an error response. */
static bool decide(struct MHD_Connection *c, gw_req *r, ar_gw_request *req, enum MHD_Result *ret,
                   json_t **scores_out) {
    ar_gw *gw = r->gw;
    int fb = fallback_provider(gw, req->model);
    if (fb < 0) {
        if (req->model)
            *ret = send_error(c, r, 404, "invalid_request_error", "model_not_found",
                              "The model '%.200s' is not configured (see GET /v1/models), and "
                              "there is no default provider",
                              req->model);
        else
            *ret = send_error(c, r, 400, "invalid_request_error", "missing_model",
                              "model: missing, and no provider is marked default: true");
        return false;
    }
    r->provider = fb;
    if (!gw->rq) return true;
    ar_route_result res;
    ar_err err = {{0}};
    double t = ar_clock_ms();
    ar_rq_outcome oc = ar_rq_route(gw->rq, &req->msgs, gw->cfg->router.timeout_ms, &res, &err);
    r->route_ms = ar_clock_ms() - t;
    if (oc != AR_RQ_OK) {
        ar_fail_open why = oc == AR_RQ_TIMEOUT ? AR_FAIL_OPEN_TIMEOUT
                           : oc == AR_RQ_FULL  ? AR_FAIL_OPEN_QUEUE_FULL
                                               : AR_FAIL_OPEN_ERROR;
        r->fail_open = ar_fail_open_name(why);
        ar_metrics_fail_open(&gw->metrics, why);
        return true;
    }
    r->routed = true;
    r->confidence = res.probability;
    ar_metrics_routed(&gw->metrics, res.total_ms, res.cached_tokens);
    if (res.route && res.route_index >= 0 && (size_t)res.route_index < gw->cfg->n_routes) {
        const ar_config_route *cr = &gw->cfg->routes[res.route_index];
        r->route = cr->name;
        int p = cr->provider >= 0 ? cr->provider : ar_config_find_provider(gw->cfg, cr->model);
        if (p >= 0) r->provider = p;
    } else {
        r->route = "other";
    }
    if (scores_out && res.n_scores > 0) {
        json_t *s = json_object();
        for (int32_t a = 0; a < res.n_scores; a++)
            json_object_set_new(s,
                                (size_t)a < gw->cfg->n_routes ? gw->cfg->routes[a].name : "other",
                                json_real(res.scores[a]));
        *scores_out = s;
    }
    ar_route_result_clear(&res);
    return true;
}

/* ---- endpoints ------------------------------------------------------------------------ */

static enum MHD_Result handle_models(struct MHD_Connection *c, gw_req *r) {
    const ar_config *cfg = r->gw->cfg;
    json_t *data = json_array();
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const ar_config_provider *p = &cfg->providers[i];
        json_array_append_new(data, json_pack("{s:s, s:s, s:i, s:s}", "id", p->model, "object",
                                              "model", "created", 0, "owned_by", p->provider));
        if (strcmp(p->name, p->model) != 0)
            json_array_append_new(data, json_pack("{s:s, s:s, s:i, s:s}", "id", p->name, "object",
                                                  "model", "created", 0, "owned_by", p->provider));
    }
    for (size_t i = 0; i < cfg->n_aliases; i++)
        json_array_append_new(data,
                              json_pack("{s:s, s:s, s:i, s:s, s:s}", "id", cfg->aliases[i].name,
                                        "object", "model", "created", 0, "owned_by", "alias",
                                        "target", cfg->aliases[i].target));
    return send_json(c, r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

static enum MHD_Result handle_metrics(struct MHD_Connection *c, gw_req *r) {
    ar_buf b = {0};
    ar_metrics_write(&r->gw->metrics, &b);
    if (b.oom) {
        ar_buf_free(&b);
        return MHD_NO;
    }
    enum MHD_Result ret =
        send_buf(c, r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    ar_buf_free(&b);
    return ret;
}

static enum MHD_Result handle_route(struct MHD_Connection *c, gw_req *r, ar_gw_request *req) {
    enum MHD_Result ret = MHD_NO;
    json_t *scores = NULL;
    if (!decide(c, r, req, &ret, &scores)) return ret;
    const ar_config_provider *p = &r->gw->cfg->providers[r->provider];
    json_t *j =
        json_pack("{s:o, s:s, s:s, s:s, s:b, s:o, s:o, s:f}", "route",
                  r->route ? json_string(r->route) : json_null(), "model", p->model, "provider",
                  p->name, "model_id", p->model_id, "routing", r->gw->rq != NULL, "probability",
                  r->routed ? json_real((double)r->confidence) : json_null(), "fail_open",
                  r->fail_open ? json_string(r->fail_open) : json_null(), "route_ms", r->route_ms);
    if (j && scores)
        json_object_set_new(j, "scores", scores);
    else
        json_decref(scores);
    if (!j) return MHD_NO;
    return send_json(c, r, 200, j);
}

static ssize_t relay(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    gw_req *r = cls;
    ssize_t n = ar_up_read(&r->up, buf, max);
    if (n > 0) {
        r->bytes_out += (size_t)n;
        return n;
    }
    if (n == 0) return MHD_CONTENT_READER_END_OF_STREAM;
    r->aborted = true;
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* Request headers passed on to the upstream. */
static struct curl_slist *forward_headers(struct MHD_Connection *c, gw_req *r, bool stream) {
    struct curl_slist *h = NULL;
    char line[1024];
    static const char *const pass[] = {"traceparent", "tracestate"};
    for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++) {
        const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, pass[i]);
        if (v && strlen(v) < 512 && !strpbrk(v, "\r\n")) {
            snprintf(line, sizeof line, "%s: %s", pass[i], v);
            h = curl_slist_append(h, line);
        }
    }
    snprintf(line, sizeof line, "x-request-id: %s", r->id);
    h = curl_slist_append(h, line);
    h = curl_slist_append(h, stream ? "Accept: text/event-stream" : "Accept: application/json");
    return h;
}

static enum MHD_Result upstream_failed(struct MHD_Connection *c, gw_req *r) {
    ar_up_error e = r->up.error;
    if (e == AR_UP_CLIENT_GONE || e == AR_UP_CANCELLED) {
        r->aborted = true;
        r->status = 499;
        return MHD_NO;
    }
    const ar_config_provider *p = &r->gw->cfg->providers[r->provider];
    return send_error(c, r, e == AR_UP_TIMEOUT ? 504 : 502, "upstream_error",
                      e == AR_UP_TIMEOUT ? "upstream_timeout" : "upstream_unavailable",
                      "%s (%s): %s", ar_up_error_name(e), p->model,
                      r->up.errbuf[0] ? r->up.errbuf : "no details");
}

static enum MHD_Result handle_chat(struct MHD_Connection *c, gw_req *r, ar_gw_request *req,
                                   gw_conn *conn) {
    ar_gw *gw = r->gw;
    enum MHD_Result ret = MHD_NO;
    if (!decide(c, r, req, &ret, NULL)) return ret;
    const ar_config_provider *p = &gw->cfg->providers[r->provider];
    char *body = NULL;
    size_t body_len = 0;
    ar_err err = {{0}};
    if (ar_gw_request_rewrite(r->body.data, r->body.len, p->model_id, &body, &body_len, &err) !=
        AR_OK)
        return send_error(c, r, 400, "invalid_request_error", "invalid_body", "%s", err.msg);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct curl_slist *extra = forward_headers(c, r, req->stream);
    ar_up_params up = {
        .url = gw->prov[r->provider].url,
        .auth_header = gw->prov[r->provider].auth,
        .extra = extra,
        .body = body,
        .body_len = body_len,
        .stream = req->stream,
        .connect_timeout_ms = gw->cfg->server.connect_timeout_ms,
        .read_timeout_ms = gw->cfg->server.read_timeout_ms,
        .client_fd = ci ? ci->connect_fd : -1,
        .cancel = &gw->cancel,
    };
    r->up_started = true;
    bool ok = ar_up_start(&r->up, &conn->up, &up) && ar_up_wait_headers(&r->up);
    curl_slist_free_all(extra);
    if (!ok) return upstream_failed(c, r);
    const char *ctype = r->up.content_type[0] ? r->up.content_type : "application/json";
    if (!req->stream || r->up.status != 200) { /* whole body, upstream errors too */
        if (!ar_up_wait_done(&r->up)) return upstream_failed(c, r);
        ar_metrics_upstream(&gw->metrics,
                            r->up.t_first_byte > 0 ? r->up.t_first_byte - r->up.t_start : -1,
                            r->up.t_end - r->up.t_start);
        return send_buf(c, r, (int)r->up.status, ctype, r->up.data.data ? r->up.data.data : "",
                        r->up.data.len);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 << 10, relay, r, NULL);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", ctype);
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    add_common_headers(r, resp);
    r->status = 200;
    r->streaming = true;
    atomic_fetch_add(&gw->metrics.active_streams, 1);
    ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- libmicrohttpd callbacks ---------------------------------------------------------- */

static bool bearer_ok(const ar_gw *gw, struct MHD_Connection *c) {
    if (gw->n_keys == 0) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return false;
    const char *k = h + 7;
    size_t kl = strlen(k);
    bool ok = false;
    for (size_t i = 0; i < gw->n_keys; i++) { /* compare every byte: no timing hint */
        size_t n = strlen(gw->keys[i]);
        unsigned char d = (unsigned char)(n != kl);
        for (size_t j = 0; j < n; j++) d |= (unsigned char)(gw->keys[i][j] ^ (j < kl ? k[j] : 0));
        ok |= d == 0;
    }
    return ok;
}

static endpoint classify(const char *method, const char *url, bool *method_ok) {
    struct {
        const char *path, *method;
        endpoint ep;
    } t[] = {
        {"/v1/chat/completions", "POST", EP_CHAT},
        {"/chat/completions", "POST", EP_CHAT},
        {"/v1/route", "POST", EP_ROUTE},
        {"/routing/v1/chat/completions", "POST", EP_ROUTE},
        {"/v1/models", "GET", EP_MODELS},
        {"/healthz", "GET", EP_HEALTH},
        {"/readyz", "GET", EP_READY},
        {"/metrics", "GET", EP_METRICS},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(url, t[i].path)) {
            *method_ok = !strcmp(method, t[i].method) ||
                         (!strcmp(t[i].method, "GET") && !strcmp(method, "HEAD"));
            return t[i].ep;
        }
    *method_ok = true;
    return EP_OTHER;
}

static void set_request_id(ar_gw *gw, struct MHD_Connection *c, gw_req *r) {
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-request-id");
    bool ok = v && *v && strlen(v) < sizeof r->id;
    for (const char *p = v; ok && *p; p++)
        ok = (*p >= 0x21 && *p <= 0x7e); /* printable ASCII, no spaces */
    if (ok) {
        snprintf(r->id, sizeof r->id, "%s", v);
        return;
    }
    uint64_t n = atomic_fetch_add(&gw->next_id, 1);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(r->id, sizeof r->id, "ar-%08llx-%06llx-%08llx", (unsigned long long)ts.tv_sec,
             (unsigned long long)(ts.tv_nsec / 1000), (unsigned long long)n);
}

static enum MHD_Result first_call(ar_gw *gw, struct MHD_Connection *c, gw_req *r,
                                  const char *method, const char *url) {
    bool method_ok;
    r->ep = classify(method, url, &method_ok);
    if (r->ep == EP_OTHER)
        return send_error(c, r, 404, "invalid_request_error", "not_found", "Unknown path %.200s",
                          url);
    if (!method_ok)
        return send_error(c, r, 405, "invalid_request_error", "method_not_allowed",
                          "%.16s is not allowed on %.200s", method, url);
    if (r->ep == EP_HEALTH)
        return send_buf(c, r, 200, "application/json", "{\"status\":\"ok\"}", 15);
    if (r->ep == EP_READY) {
        bool draining = atomic_load(&gw->draining);
        return draining ? send_buf(c, r, 503, "application/json", "{\"status\":\"stopping\"}", 21)
                        : send_buf(c, r, 200, "application/json", "{\"status\":\"ready\"}", 18);
    }
    if (r->ep == EP_METRICS) return handle_metrics(c, r);
    if (!bearer_ok(gw, c))
        return send_error(c, r, 401, "authentication_error", "invalid_api_key",
                          "Missing or wrong API key: send 'Authorization: Bearer KEY' with a "
                          "key from the gateway's server.api_keys");
    if (r->ep == EP_MODELS) return handle_models(c, r);
    if (atomic_load(&gw->draining))
        return send_error(c, r, 503, "server_error", "shutting_down",
                          "The gateway is shutting down");
    r->counted = true;
    int active = atomic_fetch_add(&gw->metrics.active_requests, 1) + 1;
    if (active > gw->cfg->server.max_concurrent)
        return send_error(c, r, 429, "rate_limit_error", "too_many_requests",
                          "Too many concurrent requests (server.max_concurrent = %d); retry "
                          "later",
                          gw->cfg->server.max_concurrent);
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoll(cl, NULL, 10) > gw->cfg->server.max_body_bytes)
        return send_error(c, r, 413, "invalid_request_error", "request_too_large",
                          "The request body is larger than server.max_body_bytes (%lld bytes)",
                          (long long)gw->cfg->server.max_body_bytes);
    return MHD_YES; /* now the body */
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)version;
    ar_gw *gw = cls;
    gw_req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->gw = gw;
        r->t0 = ar_clock_ms();
        r->provider = -1;
        set_request_id(gw, c, r);
        *con_cls = r;
        return first_call(gw, c, r, method, url);
    }
    if (r->status) { /* a response is queued already: drop the rest of the body */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!r->too_large &&
            r->body.len + *upload_data_size > (size_t)gw->cfg->server.max_body_bytes) {
            r->too_large = true;
            ar_buf_free(&r->body);
        }
        if (!r->too_large) ar_buf_append(&r->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->too_large)
        return send_error(c, r, 413, "invalid_request_error", "request_too_large",
                          "The request body is larger than server.max_body_bytes (%lld bytes)",
                          (long long)gw->cfg->server.max_body_bytes);
    if (r->body.oom) return MHD_NO;
    ar_gw_request req;
    ar_err err = {{0}};
    if (ar_gw_request_parse(r->body.data, r->body.len, &req, &err) != AR_OK)
        return send_error(c, r, 400, "invalid_request_error", "invalid_request", "%s", err.msg);
    r->stream = req.stream;
    gw_conn *conn = NULL;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci) conn = ci->socket_context;
    enum MHD_Result ret = MHD_NO;
    if (r->ep == EP_ROUTE)
        ret = handle_route(c, r, &req);
    else if (conn)
        ret = handle_chat(c, r, &req, conn);
    ar_gw_request_free(&req);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode tc) {
    ar_gw *gw = cls;
    gw_req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    if (r->streaming) {
        if (r->up.error != AR_UP_OK || !r->up.done) r->aborted = true;
        if (!r->up.done) r->up.t_end = ar_clock_ms();
        ar_metrics_upstream(&gw->metrics,
                            r->up.t_first_byte > 0 ? r->up.t_first_byte - r->up.t_start : -1,
                            r->up.t_end - r->up.t_start);
        atomic_fetch_sub(&gw->metrics.active_streams, 1);
    }
    if (r->status == 0) r->status = 499; /* nothing was sent: the client went away */
    access_log(r, c, tc);
    const char *model =
        r->provider >= 0 && r->ep <= EP_ROUTE ? gw->cfg->providers[r->provider].model : NULL;
    ar_metrics_request(&gw->metrics, ep_names[r->ep],
                       r->fail_open ? "fail-open"
                       : r->route   ? r->route
                                    : "",
                       model, r->status);
    ar_up_end(&r->up); /* a transfer still running is cut off here */
    if (r->counted) atomic_fetch_sub(&gw->metrics.active_requests, 1);
    ar_buf_free(&r->body);
    free(r);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    (void)cls, (void)c;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = calloc(1, sizeof(gw_conn));
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        gw_conn *conn = *socket_context;
        if (conn) {
            ar_up_conn_free(&conn->up);
            free(conn);
        }
        *socket_context = NULL;
    }
}

/* ---- start and stop ------------------------------------------------------------------- */

static ar_status resolve_providers(ar_gw *gw, ar_err *err) {
    const ar_config *cfg = gw->cfg;
    gw->prov = calloc(cfg->n_providers ? cfg->n_providers : 1, sizeof *gw->prov);
    if (!gw->prov) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const ar_config_provider *p = &cfg->providers[i];
        const char *base = p->base_url ? p->base_url : ar_gw_default_base_url(p->provider);
        if (!base)
            return ar_errf(err, AR_ERR_FORMAT,
                           "%s:%d:%d: provider '%s': no base_url, and '%s' is not a provider "
                           "archrouter knows the address of; add base_url: "
                           "https://HOST/v1",
                           cfg->source, p->line, p->col, p->name, p->provider);
        ar_buf u = {0};
        size_t bl = strlen(base);
        while (bl > 0 && base[bl - 1] == '/') bl--;
        ar_buf_append(&u, base, bl);
        ar_buf_puts(&u, "/chat/completions");
        if (u.oom) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
        gw->prov[i].url = u.data;
        if (p->access_key) {
            char key[4096];
            ar_err ke = {{0}};
            if (ar_config_resolve_key(p->access_key, key, sizeof key, &ke) != AR_OK)
                return ar_errf(err, AR_ERR_FORMAT, "%s:%d:%d: provider '%s': access_key: %s",
                               cfg->source, p->line, p->col, p->name, ke.msg);
            ar_buf a = {0};
            ar_buf_printf(&a, "Authorization: Bearer %s", key);
            memset(key, 0, sizeof key);
            if (a.oom) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
            gw->prov[i].auth = a.data;
        }
    }
    const ar_config_server *s = &cfg->server;
    if (s->n_api_keys) {
        gw->keys = calloc(s->n_api_keys, sizeof *gw->keys);
        if (!gw->keys) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < s->n_api_keys; i++) {
            char key[4096];
            ar_err ke = {{0}};
            if (ar_config_resolve_key(s->api_keys[i], key, sizeof key, &ke) != AR_OK)
                return ar_errf(err, AR_ERR_FORMAT, "%s: archrouter.server.api_keys[%zu]: %s",
                               cfg->source, i, ke.msg);
            gw->keys[i] = strdup(key);
            memset(key, 0, sizeof key);
            if (!gw->keys[i]) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
            gw->n_keys = i + 1;
        }
    }
    return AR_OK;
}

static void free_gw(ar_gw *gw) {
    if (gw->prov)
        for (size_t i = 0; i < gw->cfg->n_providers; i++) {
            free(gw->prov[i].url);
            free(gw->prov[i].auth);
        }
    free(gw->prov);
    for (size_t i = 0; i < gw->n_keys; i++) free(gw->keys[i]);
    free(gw->keys);
    ar_metrics_destroy(&gw->metrics);
    free(gw);
}

ar_status ar_gw_start(const ar_gw_params *p, ar_gw **out, ar_err *err) {
    *out = NULL;
    if (!p || !p->cfg) return ar_errf(err, AR_ERR_INVALID_ARG, "no configuration");
    const ar_config *cfg = p->cfg;
    if (cfg->n_providers == 0)
        return ar_errf(err, AR_ERR_FORMAT,
                       "%s: no providers: the gateway needs llm_providers (or providers) to "
                       "forward to",
                       cfg->source);
    ar_gw *gw = calloc(1, sizeof *gw);
    if (!gw) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    gw->cfg = cfg;
    gw->log_fd = p->log_fd;
    ar_metrics_init(&gw->metrics);
    ar_status st = resolve_providers(gw, err);
    if (st != AR_OK) goto fail;
    if (cfg->n_routes > 0 && p->route) {
        st = ar_rq_start(p->route, p->route_ctx, cfg->server.max_queue, &gw->metrics.queue_depth,
                         &gw->rq, err);
        if (st != AR_OK) goto fail;
    }
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->server.port);
    int gai = getaddrinfo(cfg->server.address, port, &hints, &ai);
    if (gai != 0) {
        st = ar_errf(err, AR_ERR_FORMAT, "%s: server address '%s': %s", cfg->source,
                     cfg->server.address, gai_strerror(gai));
        goto fail;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ITC;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    unsigned limit = (unsigned)cfg->server.max_concurrent * 4u + 64u;
    if (limit > 60000) limit = 60000;
    gw->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, gw, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, gw, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        gw, MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HEADER_MEMORY_LIMIT,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!gw->mhd) {
        st = ar_errf(err, AR_ERR_IO,
                     "cannot listen on %s:%d (in use, or not an address of "
                     "this machine?)",
                     cfg->server.address, cfg->server.port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(gw->mhd, MHD_DAEMON_INFO_BIND_PORT);
    gw->port = di ? di->port : cfg->server.port;
    *out = gw;
    return AR_OK;
fail:
    ar_rq_free(gw->rq);
    free_gw(gw);
    return st;
}

int ar_gw_port(const ar_gw *gw) {
    return gw ? gw->port : 0;
}

void ar_gw_stop(ar_gw *gw, int drain_ms) {
    if (!gw) return;
    atomic_store(&gw->draining, true);
    MHD_socket ls = MHD_quiesce_daemon(gw->mhd);
    if (ls != MHD_INVALID_SOCKET) close(ls);
    double until = ar_clock_ms() + drain_ms;
    while (atomic_load(&gw->metrics.active_requests) > 0 && ar_clock_ms() < until) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    atomic_store(&gw->cancel, true); /* what is left is cut off */
    ar_rq_stop(gw->rq);              /* waiters fail open and end quickly */
    MHD_stop_daemon(gw->mhd);
    ar_rq_free(gw->rq);
    free_gw(gw);
}
