/*
 * fake_hub.c - see fake_hub.h.
 *
 * Both servers run libmicrohttpd with a thread per connection, so a response's content
 * callback may sleep (the stall mode). State shared with the test thread (mode, stats) sits
 * behind one mutex. Bodies are produced by a content callback that counts the bytes it hands
 * out and ends the connection with an error when the cut-off is reached.
 */
#include "fake_hub.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct fake_hub {
    struct MHD_Daemon *hub, *cdn;
    int hub_port, cdn_port;
    char endpoint[64];
    char resolve_prefix[512]; /* "/OWNER/NAME/resolve/" */
    char file[512];
    unsigned char *data;
    size_t len;
    char sha[65], bad_sha[65];
    pthread_mutex_t mu;       /* mode, token, stats */
    pthread_mutex_t bytes_mu; /* stats.*body_bytes (content callbacks run without mu) */
    fake_hub_mode mode;
    char token[256];
    fake_hub_stats stats;
    volatile int stopping;
};

typedef struct body {
    fake_hub *h;
    size_t start; /* file offset of the first byte */
    int64_t cut;  /* body bytes after which to break off (0: never) */
    bool stall;
    uint64_t sent;
} body;

void fake_hub_sha256_hex(const void *data, size_t len, char out[65]) {
    unsigned char d[32];
    unsigned int n = 0;
    EVP_Digest(data, len, d, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static ssize_t read_body(void *cls, uint64_t pos, char *buf, size_t max) {
    body *b = cls;
    fake_hub *h = b->h;
    if (b->stall && pos >= 1) {
        /* Hold the connection open without sending until the client gives up. */
        for (int i = 0; i < 100 && !h->stopping; i++) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (b->cut > 0 && (int64_t)pos >= b->cut) return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = h->len - b->start - (size_t)pos;
    if (n > max) n = max;
    if (b->cut > 0 && (int64_t)(pos + n) > b->cut) n = (size_t)(b->cut - (int64_t)pos);
    if (b->stall) n = 1;
    memcpy(buf, h->data + b->start + pos, n);
    b->sent += n;
    pthread_mutex_lock(&h->bytes_mu);
    h->stats.cdn_body_bytes += n;
    h->stats.last_body_bytes = b->sent;
    pthread_mutex_unlock(&h->bytes_mu);
    return (ssize_t)n;
}

static void free_body(void *cls) {
    free(cls);
}

static enum MHD_Result send_simple(struct MHD_Connection *c, unsigned status, const char *text,
                                   const char *error_code) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    if (error_code) MHD_add_response_header(r, "X-Error-Code", error_code);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void add_sha_headers(fake_hub *h, struct MHD_Response *r, bool linked) {
    char etag[80], size[32];
    snprintf(etag, sizeof etag, "\"%s\"", h->mode.wrong_sha ? h->bad_sha : h->sha);
    snprintf(size, sizeof size, "%zu", h->len);
    MHD_add_response_header(r, "ETag", etag);
    if (linked) {
        MHD_add_response_header(r, "X-Linked-Etag", etag);
        MHD_add_response_header(r, "X-Linked-Size", size);
    }
}

/* The bytes, honouring "Range: bytes=N-" unless told to ignore it. Called with mu held. */
static enum MHD_Result send_file(fake_hub *h, struct MHD_Connection *c) {
    const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
    snprintf(h->stats.cdn_range, sizeof h->stats.cdn_range, "%s", range ? range : "");
    size_t start = 0;
    unsigned status = MHD_HTTP_OK;
    if (range && !h->mode.ignore_range) {
        unsigned long long n;
        if (sscanf(range, "bytes=%llu-", &n) != 1) return send_simple(c, 400, "bad range", NULL);
        if (n >= h->len) {
            struct MHD_Response *r =
                MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
            char cr[64];
            snprintf(cr, sizeof cr, "bytes */%zu", h->len);
            MHD_add_response_header(r, "Content-Range", cr);
            enum MHD_Result ret = MHD_queue_response(c, 416, r);
            MHD_destroy_response(r);
            return ret;
        }
        start = (size_t)n;
        status = MHD_HTTP_PARTIAL_CONTENT;
    }
    body *b = calloc(1, sizeof *b);
    if (!b) return MHD_NO;
    *b = (body){.h = h, .start = start, .cut = h->mode.cut_after, .stall = h->mode.stall};
    pthread_mutex_lock(&h->bytes_mu);
    h->stats.last_body_bytes = 0;
    pthread_mutex_unlock(&h->bytes_mu);
    struct MHD_Response *r =
        MHD_create_response_from_callback(h->len - start, 4096, read_body, b, free_body);
    if (!r) {
        free(b);
        return MHD_NO;
    }
    if (status == MHD_HTTP_PARTIAL_CONTENT) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %zu-%zu/%zu", start, h->len - 1, h->len);
        MHD_add_response_header(r, "Content-Range", cr);
    }
    if (h->mode.direct) add_sha_headers(h, r, false);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void record_auth(struct MHD_Connection *c, char *dst, size_t cap) {
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    snprintf(dst, cap, "%s", a ? a : "");
}

static enum MHD_Result on_hub(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req) {
    (void)version, (void)upload, (void)upload_size, (void)req;
    fake_hub *h = cls;
    if (strcmp(method, "GET") != 0) return send_simple(c, 405, "GET only", NULL);
    pthread_mutex_lock(&h->mu);
    h->stats.hub_requests++;
    record_auth(c, h->stats.hub_auth, sizeof h->stats.hub_auth);
    enum MHD_Result ret;
    size_t plen = strlen(h->resolve_prefix);
    const char *rest = strncmp(url, h->resolve_prefix, plen) == 0 ? url + plen : NULL;
    const char *file = rest ? strchr(rest, '/') : NULL; /* after the revision */
    char want[300];
    snprintf(want, sizeof want, "Bearer %s", h->token);
    if (h->mode.token && strcmp(h->stats.hub_auth, want) != 0) {
        ret = send_simple(c, 401, "Invalid credentials", NULL);
    } else if (!rest) {
        ret = send_simple(c, 404, "Repository not found", "RepoNotFound");
    } else if (!file || strcmp(file + 1, h->file) != 0) {
        ret = send_simple(c, 404, "Entry not found", "EntryNotFound");
    } else if (h->mode.direct) {
        h->stats.cdn_requests++;
        ret = send_file(h, c);
    } else {
        struct MHD_Response *r =
            MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        char loc[700];
        snprintf(loc, sizeof loc, "http://127.0.0.1:%d/cdn/blob/%s", h->cdn_port, h->file);
        MHD_add_response_header(r, "Location", loc);
        add_sha_headers(h, r, true);
        ret = MHD_queue_response(c, MHD_HTTP_FOUND, r);
        MHD_destroy_response(r);
    }
    pthread_mutex_unlock(&h->mu);
    return ret;
}

static enum MHD_Result on_cdn(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req) {
    (void)version, (void)upload, (void)upload_size, (void)req, (void)method;
    fake_hub *h = cls;
    pthread_mutex_lock(&h->mu);
    h->stats.cdn_requests++;
    record_auth(c, h->stats.cdn_auth, sizeof h->stats.cdn_auth);
    enum MHD_Result ret =
        strncmp(url, "/cdn/blob/", 10) == 0 ? send_file(h, c) : send_simple(c, 404, "no", NULL);
    pthread_mutex_unlock(&h->mu);
    return ret;
}

static struct MHD_Daemon *listen_local(MHD_AccessHandlerCallback cb, fake_hub *h, int *port) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                         NULL, cb, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
    if (!d) return NULL;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *port = info ? info->port : 0;
    if (!*port) {
        MHD_stop_daemon(d);
        return NULL;
    }
    return d;
}

fake_hub *fake_hub_start(const char *repo, const char *file, const void *data, size_t len) {
    fake_hub *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->bytes_mu, NULL);
    h->data = malloc(len ? len : 1);
    if (!h->data) goto fail;
    memcpy(h->data, data, len);
    h->len = len;
    snprintf(h->resolve_prefix, sizeof h->resolve_prefix, "/%s/resolve/", repo);
    snprintf(h->file, sizeof h->file, "%s", file);
    fake_hub_sha256_hex(data, len, h->sha);
    fake_hub_sha256_hex("other bytes", 11, h->bad_sha);
    h->hub = listen_local(on_hub, h, &h->hub_port);
    h->cdn = listen_local(on_cdn, h, &h->cdn_port);
    if (!h->hub || !h->cdn) goto fail;
    snprintf(h->endpoint, sizeof h->endpoint, "http://127.0.0.1:%d", h->hub_port);
    return h;
fail:
    fake_hub_stop(h);
    return NULL;
}

void fake_hub_stop(fake_hub *h) {
    if (!h) return;
    h->stopping = 1;
    if (h->hub) MHD_stop_daemon(h->hub);
    if (h->cdn) MHD_stop_daemon(h->cdn);
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->bytes_mu);
    free(h->data);
    free(h);
}

const char *fake_hub_endpoint(const fake_hub *h) {
    return h->endpoint;
}

void fake_hub_set_mode(fake_hub *h, const fake_hub_mode *m) {
    pthread_mutex_lock(&h->mu);
    h->mode = *m;
    snprintf(h->token, sizeof h->token, "%s", m->token ? m->token : "");
    h->mode.token = m->token ? h->token : NULL;
    pthread_mutex_unlock(&h->mu);
}

fake_hub_stats fake_hub_get_stats(fake_hub *h) {
    pthread_mutex_lock(&h->mu);
    pthread_mutex_lock(&h->bytes_mu);
    fake_hub_stats s = h->stats;
    pthread_mutex_unlock(&h->bytes_mu);
    pthread_mutex_unlock(&h->mu);
    return s;
}

void fake_hub_reset_stats(fake_hub *h) {
    pthread_mutex_lock(&h->mu);
    pthread_mutex_lock(&h->bytes_mu);
    memset(&h->stats, 0, sizeof h->stats);
    pthread_mutex_unlock(&h->bytes_mu);
    pthread_mutex_unlock(&h->mu);
}

int fake_hub_closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 9;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    int port = 9;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}
