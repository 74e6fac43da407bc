/*
 * mock_upstream.c - the fake upstream of mock_upstream.h: a thread per connection, bodies
 * gathered then answered by model id; streams are callback responses that sleep between
 * chunks; a mutex guards what the tests read back.
 */
#include "mock_upstream.h"

#include <jansson.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct mock_upstream {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int requests, disconnects;
    bool released;
    char *body;
    char *headers[8][2];
    int n_headers;
};

typedef struct mreq {
    char *body;
    size_t len;
    char model[64];
    bool stream;
    int step;
    mock_upstream *m;
} mreq;

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int chunk(char *buf, size_t max, const char *text) {
    return snprintf(buf, max,
                    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                    "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},"
                    "\"finish_reason\":null}]}\n\n",
                    text);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    mreq *r = cls;
    mock_upstream *m = r->m;
    int s = r->step++;
    if (!strcmp(r->model, "sse")) {
        static const char *const parts[] = {"a", "b", "c"};
        if (s < 3) return chunk(buf, max, parts[s]);
        if (s == 3) return snprintf(buf, max, "data: [DONE]\n\n");
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (!strcmp(r->model, "slow-sse")) {
        if (s == 0) return chunk(buf, max, "first");
        if (s == 1) {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_sec += 5;
            pthread_mutex_lock(&m->mu);
            while (!m->released)
                if (pthread_cond_timedwait(&m->cv, &m->mu, &dl) != 0) break;
            pthread_mutex_unlock(&m->mu);
            return chunk(buf, max, "second");
        }
        if (s == 2) return snprintf(buf, max, "data: [DONE]\n\n");
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (strcmp(r->model, "hang") != 0) { /* any other model asked to stream */
        if (s == 0) return chunk(buf, max, "hello from ");
        if (s == 1) return chunk(buf, max, r->model);
        if (s == 2) return snprintf(buf, max, "data: [DONE]\n\n");
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (s == 0) return chunk(buf, max, "hanging");
    if (s > 500) return MHD_CONTENT_READER_END_OF_STREAM; /* 10 s at most */
    sleep_ms(20);
    return snprintf(buf, max, ": ping\n\n");
}

static enum MHD_Result record_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value) {
    (void)kind;
    mock_upstream *m = cls;
    if (m->n_headers < 8 && value) {
        m->headers[m->n_headers][0] = strdup(key);
        m->headers[m->n_headers][1] = strdup(value);
        m->n_headers++;
    }
    return MHD_YES;
}

static enum MHD_Result send_text(struct MHD_Connection *c, int status, const char *ctype,
                                 const char *text) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(resp, "Content-Type", ctype);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls) {
    (void)url, (void)version, (void)method;
    mock_upstream *m = cls;
    mreq *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        r->m = m;
        *con_cls = r;
        return MHD_YES;
    }
    if (*size) {
        r->body = realloc(r->body, r->len + *size + 1);
        memcpy(r->body + r->len, data, *size);
        r->len += *size;
        r->body[r->len] = 0;
        *size = 0;
        return MHD_YES;
    }
    json_t *j = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
    const char *model = json_string_value(json_object_get(j, "model"));
    snprintf(r->model, sizeof r->model, "%s", model ? model : "");
    r->stream = json_is_true(json_object_get(j, "stream"));
    json_decref(j);
    pthread_mutex_lock(&m->mu);
    m->requests++;
    free(m->body);
    m->body = r->body ? strdup(r->body) : NULL;
    for (int i = 0; i < m->n_headers; i++) free(m->headers[i][0]), free(m->headers[i][1]);
    m->n_headers = 0;
    static const char *const keep[] = {"authorization", "traceparent", "x-request-id",
                                       "content-type", "accept"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, keep[i]);
        if (v) record_header(m, MHD_HEADER_KIND, keep[i], v);
    }
    pthread_mutex_unlock(&m->mu);
    if (!strcmp(r->model, "err400"))
        return send_text(c, 400, "application/json",
                         "{\"error\":{\"message\":\"bad thing\",\"type\":\"invalid_request_error\","
                         "\"param\":null,\"code\":\"bad_thing\"}}");
    if (!strcmp(r->model, "err503"))
        return send_text(c, 503, "application/json",
                         "{\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\","
                         "\"param\":null,\"code\":\"overloaded\"}}");
    if (r->stream || !strcmp(r->model, "sse") || !strcmp(r->model, "slow-sse") ||
        !strcmp(r->model, "hang")) {
        struct MHD_Response *resp =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, r, NULL);
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        enum MHD_Result ret = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    char text[512];
    snprintf(text, sizeof text,
             "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":"
             "\"%s\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
             "\"hello from %s\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,"
             "\"completion_tokens\":3,\"total_tokens\":4}}",
             r->model, r->model);
    return send_text(c, 200, "application/json", text);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode tc) {
    (void)c;
    mock_upstream *m = cls;
    mreq *r = *con_cls;
    if (tc != MHD_REQUEST_TERMINATED_COMPLETED_OK && r && r->model[0]) {
        pthread_mutex_lock(&m->mu);
        m->disconnects++;
        pthread_mutex_unlock(&m->mu);
    }
    if (r) {
        free(r->body);
        free(r);
    }
    *con_cls = NULL;
}

mock_upstream *mock_start(int port) {
    mock_upstream *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(0x7f000001);
    m->d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL,
        NULL, on_request, m, MHD_OPTION_SOCK_ADDR, &a, MHD_OPTION_NOTIFY_COMPLETED, on_completed, m,
        MHD_OPTION_CONNECTION_LIMIT, 2000u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    if (!m->d) {
        free(m);
        return NULL;
    }
    m->port = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return m;
}

int mock_port(const mock_upstream *m) {
    return m->port;
}

void mock_stop(mock_upstream *m) {
    if (!m) return;
    mock_release(m);
    MHD_stop_daemon(m->d);
    free(m->body);
    for (int i = 0; i < m->n_headers; i++) free(m->headers[i][0]), free(m->headers[i][1]);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

int mock_requests(mock_upstream *m) {
    pthread_mutex_lock(&m->mu);
    int n = m->requests;
    pthread_mutex_unlock(&m->mu);
    return n;
}

int mock_disconnects(mock_upstream *m) {
    pthread_mutex_lock(&m->mu);
    int n = m->disconnects;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void mock_release(mock_upstream *m) {
    pthread_mutex_lock(&m->mu);
    m->released = true;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

char *mock_last_body(mock_upstream *m) {
    pthread_mutex_lock(&m->mu);
    char *s = m->body ? strdup(m->body) : NULL;
    pthread_mutex_unlock(&m->mu);
    return s;
}

char *mock_last_header(mock_upstream *m, const char *name) {
    char *s = NULL;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->n_headers && !s; i++)
        if (!strcasecmp(m->headers[i][0], name)) s = strdup(m->headers[i][1]);
    pthread_mutex_unlock(&m->mu);
    return s;
}
