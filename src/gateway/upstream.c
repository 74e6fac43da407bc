/*
 * upstream.c - forwarded requests on libcurl's multi interface, driven from the client
 * connection's thread (upstream.h).
 *
 * Each step is curl_multi_perform() then curl_multi_poll() on the transfer's sockets plus
 * the client's socket (POLLIN: a hang-up reads as EOF; a peek tells EOF from pipelined
 * bytes, after which the socket is no longer watched). Callbacks: the header callback
 * records the status and Content-Type and notes the end of the final header block (1xx
 * blocks are skipped); the write callback appends to the buffer or pauses a stream whose
 * client is behind; the xferinfo callback aborts on hang-up or the cancel flag. Read
 * timeouts are measured here (time since the last byte), in milliseconds.
 */
#include "gateway/upstream.h"

#include "base/clock.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

const char *ar_up_error_name(ar_up_error e) {
    switch (e) {
    case AR_UP_OK: return "ok";
    case AR_UP_CONNECT: return "upstream unreachable";
    case AR_UP_TIMEOUT: return "upstream timeout";
    case AR_UP_TOO_LARGE: return "upstream response too large";
    case AR_UP_BROKEN: return "upstream transfer broke off";
    case AR_UP_CLIENT_GONE: return "client disconnected";
    case AR_UP_CANCELLED: return "gateway stopping";
    }
    return "?";
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
    ar_up *u = ud;
    size_t len = size * n;
    u->t_last = ar_clock_ms();
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new header block */
        u->content_type[0] = 0;
        const char *sp = memchr(p, ' ', len);
        u->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    } else if (len >= 13 && strncasecmp(p, "content-type:", 13) == 0) {
        size_t a = 13;
        while (a < len && (p[a] == ' ' || p[a] == '\t')) a++;
        size_t b = len;
        while (b > a && (p[b - 1] == '\r' || p[b - 1] == '\n' || p[b - 1] == ' ')) b--;
        size_t m = b - a < sizeof u->content_type - 1 ? b - a : sizeof u->content_type - 1;
        memcpy(u->content_type, p + a, m);
        u->content_type[m] = 0;
    } else if ((len == 2 && p[0] == '\r') || (len == 1 && p[0] == '\n')) {
        if (u->status >= 200) u->headers_done = true;
    }
    return len;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud) {
    ar_up *u = ud;
    size_t len = size * n;
    double now = ar_clock_ms();
    if (u->t_first_byte == 0) u->t_first_byte = now;
    u->t_last = now;
    u->headers_done = true;
    if (u->stream) {
        if (u->data.len - u->data_off + len > AR_UP_STREAM_BUFFER && u->data.len > u->data_off) {
            u->paused = true;
            return CURL_WRITEFUNC_PAUSE;
        }
    } else if (u->data.len + len > AR_UP_MAX_BODY) {
        u->error = AR_UP_TOO_LARGE;
        return 0;
    }
    ar_buf_append(&u->data, p, len);
    return u->data.oom ? 0 : len;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
    (void)a, (void)b, (void)c, (void)d;
    ar_up *u = ud;
    if (u->client_gone) return 1;
    if (u->cancel && atomic_load(u->cancel)) return 1;
    return 0;
}

bool ar_up_start(ar_up *u, ar_up_conn *conn, const ar_up_params *p) {
    memset(u, 0, sizeof *u);
    u->conn = conn;
    u->body = p->body;
    u->stream = p->stream;
    u->client_fd = p->client_fd;
    u->watch_client = p->client_fd >= 0;
    u->read_timeout_ms = p->read_timeout_ms;
    u->cancel = p->cancel;
    u->t_start = u->t_last = ar_clock_ms();
    if (!conn->multi && !(conn->multi = curl_multi_init())) {
        u->error = AR_UP_CONNECT;
        return false;
    }
    if (conn->spare) { /* back to curl's defaults: nothing of the last request carries over */
        u->easy = conn->spare;
        conn->spare = NULL;
        curl_easy_reset(u->easy);
    } else {
        u->easy = curl_easy_init();
    }
    if (!u->easy) {
        u->error = AR_UP_CONNECT;
        return false;
    }
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    if (p->auth_header) h = curl_slist_append(h, p->auth_header);
    for (const struct curl_slist *e = p->extra; e && h; e = e->next)
        h = curl_slist_append(h, e->data);
    u->headers = h;
    CURL *c = u->easy;
    curl_easy_setopt(c, CURLOPT_URL, p->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, u->headers);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, u->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->body_len);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, u);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, u);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, u);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, u->errbuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)p->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_PRIVATE, u);
    if (!u->headers || curl_multi_add_handle(conn->multi, c) != CURLM_OK) {
        u->error = AR_UP_CONNECT;
        return false;
    }
    u->added = true;
    return true;
}

/* The client's socket is readable: EOF or an error means it hung up. */
static void check_client(ar_up *u) {
    char c;
    ssize_t r = recv(u->client_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        u->client_gone = true;
    else if (r > 0)
        u->watch_client = false; /* pipelined bytes: MHD reads them later */
}

static void finish(ar_up *u, CURLcode rc) {
    u->done = true;
    u->t_end = ar_clock_ms();
    if (rc == CURLE_OK || u->error != AR_UP_OK) return;
    if (u->client_gone)
        u->error = AR_UP_CLIENT_GONE;
    else if (rc == CURLE_ABORTED_BY_CALLBACK)
        u->error = AR_UP_CANCELLED;
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        u->error = AR_UP_TIMEOUT;
    else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
             rc == CURLE_SEND_ERROR || rc == CURLE_SSL_CONNECT_ERROR ||
             rc == CURLE_PEER_FAILED_VERIFICATION || !u->headers_done)
        u->error = AR_UP_CONNECT;
    else
        u->error = AR_UP_BROKEN;
}

/* One turn: perform, collect completion, then wait up to wait_ms for something to do. */
static void step(ar_up *u, int wait_ms) {
    int running = 0;
    curl_multi_perform(u->conn->multi, &running);
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(u->conn->multi, &left)))
        if (m->msg == CURLMSG_DONE && m->easy_handle == u->easy) finish(u, m->data.result);
    if (u->done) return;
    double now = ar_clock_ms();
    if (u->read_timeout_ms > 0 && !u->paused && now - u->t_last > u->read_timeout_ms &&
        now - u->t_start > u->read_timeout_ms) {
        u->error = AR_UP_TIMEOUT;
        u->done = true;
        u->t_end = now;
        return;
    }
    if (u->cancel && atomic_load(u->cancel)) {
        u->error = AR_UP_CANCELLED;
        u->done = true;
        u->t_end = now;
        return;
    }
    struct curl_waitfd w = {u->client_fd, CURL_WAIT_POLLIN, 0};
    curl_multi_poll(u->conn->multi, &w, u->watch_client ? 1 : 0, wait_ms, NULL);
    if (u->watch_client && w.revents) {
        check_client(u);
        if (u->client_gone) {
            u->error = AR_UP_CLIENT_GONE;
            u->done = true;
            u->t_end = ar_clock_ms();
        }
    }
}

bool ar_up_wait_headers(ar_up *u) {
    while (!u->headers_done && !u->done) step(u, 100);
    return u->error == AR_UP_OK;
}

bool ar_up_wait_done(ar_up *u) {
    while (!u->done) step(u, 100);
    return u->error == AR_UP_OK;
}

ssize_t ar_up_read(ar_up *u, char *buf, size_t max) {
    for (;;) {
        size_t have = u->data.len - u->data_off;
        if (have > 0) {
            size_t n = have < max ? have : max;
            memcpy(buf, u->data.data + u->data_off, n);
            u->data_off += n;
            if (u->data_off == u->data.len) u->data_off = u->data.len = 0; /* reuse */
            if (u->paused && u->data.len - u->data_off < AR_UP_STREAM_BUFFER / 2) {
                u->paused = false;
                curl_easy_pause(u->easy, CURLPAUSE_CONT);
            }
            return (ssize_t)n;
        }
        if (u->paused) { /* drained: let curl deliver what it held back */
            u->paused = false;
            curl_easy_pause(u->easy, CURLPAUSE_CONT);
            continue;
        }
        if (u->done) return u->error == AR_UP_OK ? 0 : -1;
        step(u, 100);
    }
}

void ar_up_end(ar_up *u) {
    if (u->easy) {
        if (u->added) curl_multi_remove_handle(u->conn->multi, u->easy);
        /* only a transfer that ran to its end cleanly leaves a handle in a known state */
        bool clean = u->done && u->error == AR_UP_OK && !u->paused;
        if (clean && u->conn && !u->conn->spare)
            u->conn->spare = u->easy;
        else
            curl_easy_cleanup(u->easy);
    }
    curl_slist_free_all(u->headers);
    free(u->body);
    ar_buf_free(&u->data);
    u->easy = NULL;
    u->added = false;
    u->headers = NULL;
    u->body = NULL;
}

void ar_up_conn_free(ar_up_conn *conn) {
    if (conn->spare) curl_easy_cleanup(conn->spare);
    if (conn->multi) curl_multi_cleanup(conn->multi);
    conn->spare = NULL;
    conn->multi = NULL;
}
