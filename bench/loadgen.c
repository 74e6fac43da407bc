/*
 * loadgen.c - an open-loop HTTP/1.1 load generator for bench/gateway.sh: POST requests at a
 * fixed rate over keep-alive connections, latency measured from each request's scheduled
 * send time.
 *
 * Why not wrk: wrk is closed-loop (a connection sends its next request only after the
 * previous answer), so a stall delays the requests that would have been sent during it and
 * those are never measured ("coordinated omission"); percentiles look better than what a
 * client at a fixed rate sees. Here request i is due at start + i/rate whatever happens. A
 * due request goes out on an idle connection (idle connections are taken first in, first
 * out, so all of them carry load); when none is idle it waits in a backlog, and its latency
 * still counts from its due time. So a stall in the server shows in the latency of every
 * request it delayed.
 *
 * How: one thread, epoll over the connections plus a timerfd armed (absolute, timer slack
 * 1 ns) for the next due time. Responses are parsed just enough to find their end:
 * status line, Content-Length or chunked transfer coding. A closed connection is reopened;
 * a request in flight on it counts as an error. Requests due in the first -w seconds
 * are sent but not measured; after the run, requests already due get up to 5 s to finish
 * (unfinished ones count as errors). The loadgen's own lateness (actual send minus due
 * time) is reported as send-lag: on a busy machine it is part of every latency, for the
 * direct and the gateway run alike.
 *
 * Output: a human-readable summary on stderr and one line on stdout:
 *   RESULT <req/s> <p50> <p90> <p99> <p99.9> <max> <errors> <send-lag p99> <backlog max>
 * (times in ms; req/s: good answers per second that arrived in the measured window;
 * backlog max: most due requests waiting for a free connection at once; a growing backlog
 * means the target cannot keep up with the rate over that many connections).
 *
 * usage: loadgen -r RATE [-d SECONDS] [-w WARMUP] [-c CONNECTIONS] [-b BODY]
 *                http://IPv4:PORT/PATH
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS     1024
#define MAX_RESPONSE  (1u << 20) /* larger responses are an error */
#define DRAIN_SECONDS 5.0

typedef struct conn {
    int fd;
    bool busy;
    char *rbuf; /* response bytes so far */
    size_t rlen, rcap;
    size_t wsent;   /* bytes of the request written */
    int64_t due_ns; /* due time of the request in flight */
    int64_t seq;    /* its index in the schedule */
} conn;

typedef struct lg {
    struct sockaddr_in addr;
    char *req; /* the whole request, sent as is */
    size_t req_len;
    double rate;
    int64_t start_ns, warm_ns, end_ns;
    conn *conns;
    int n_conns;
    int *idle; /* FIFO ring of idle connection indices */
    int idle_head, idle_n;
    int ep, tfd;
    int64_t next_due;  /* index of the next request to become due */
    int64_t next_send; /* index of the next request to send; [next_send, next_due) waits */
    double *lat;       /* ms, measured requests */
    size_t n_lat, cap_lat;
    double *lag; /* ms, send lag of measured requests (cap_lag at most) */
    size_t n_lag, cap_lag;
    int64_t errors;
    int64_t answered;    /* good answers that arrived in the measured window */
    int64_t backlog_max; /* most due requests waiting for a connection at once */
} lg;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t due_ns(const lg *g, int64_t i) {
    return g->start_ns + (int64_t)((double)i * 1e9 / g->rate);
}

static void die(const char *what) {
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void idle_push(lg *g, int i) {
    g->idle[(g->idle_head + g->idle_n) % g->n_conns] = i;
    g->idle_n++;
}

static int idle_pop(lg *g) {
    int i = g->idle[g->idle_head];
    g->idle_head = (g->idle_head + 1) % g->n_conns;
    g->idle_n--;
    return i;
}

static void conn_open(lg *g, int i) {
    conn *c = &g->conns[i];
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&g->addr, sizeof g->addr) < 0 && errno != EINPROGRESS)
        die("connect");
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = (uint32_t)i};
    if (epoll_ctl(g->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
    c->busy = false;
    c->rlen = c->wsent = 0;
    idle_push(g, i);
}

static void record(lg *g, conn *c, bool ok, int64_t t) {
    if (ok && t >= g->warm_ns && t < g->end_ns) g->answered++;
    if (c->due_ns < g->warm_ns || c->due_ns >= g->end_ns) return;
    if (!ok) {
        g->errors++;
        return;
    }
    if (g->n_lat == g->cap_lat) {
        g->cap_lat = g->cap_lat ? g->cap_lat * 2 : 1 << 16;
        g->lat = realloc(g->lat, g->cap_lat * sizeof *g->lat);
        if (!g->lat) die("realloc");
    }
    g->lat[g->n_lat++] = (double)(t - c->due_ns) / 1e6;
}

/* Drop connection i (the peer closed it or broke the protocol) and open a new one. */
static void conn_reset(lg *g, int i) {
    conn *c = &g->conns[i];
    if (c->busy) record(g, c, false, now_ns());
    epoll_ctl(g->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    /* remove i from the idle ring if it is there, then reopen (which queues it again) */
    int n = g->idle_n;
    for (int k = 0; k < n; k++) {
        int j = idle_pop(g);
        if (j != i) idle_push(g, j);
    }
    conn_open(g, i);
}

/* Write what is left of the request; false when the connection broke. */
static bool conn_write(lg *g, conn *c) {
    while (c->wsent < g->req_len) {
        ssize_t w = send(c->fd, g->req + c->wsent, g->req_len - c->wsent, MSG_NOSIGNAL);
        if (w < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN;
        c->wsent += (size_t)w;
    }
    return true;
}

/* Send due requests while there are idle connections. */
static void send_due(lg *g) {
    while (g->next_send < g->next_due && g->idle_n > 0) {
        int i = idle_pop(g);
        conn *c = &g->conns[i];
        c->busy = true;
        c->seq = g->next_send++;
        c->due_ns = due_ns(g, c->seq);
        c->rlen = c->wsent = 0;
        int64_t t = now_ns();
        if (c->due_ns >= g->warm_ns && c->due_ns < g->end_ns && g->n_lag < g->cap_lag)
            g->lag[g->n_lag++] = (double)(t - c->due_ns) / 1e6;
        if (!conn_write(g, c)) conn_reset(g, i);
    }
    if (g->next_due - g->next_send > g->backlog_max) g->backlog_max = g->next_due - g->next_send;
}

/* Length of a complete chunked body at p (n bytes), or 0 if it is not all there yet;
 * -1 when it is malformed. */
static long chunked_len(const char *p, size_t n) {
    size_t off = 0;
    for (;;) {
        const char *eol = memmem(p + off, n - off, "\r\n", 2);
        if (!eol) return 0;
        char *end;
        unsigned long sz = strtoul(p + off, &end, 16);
        if (end == p + off) return -1;
        off = (size_t)(eol - p) + 2;
        if (sz == 0) { /* trailers end at an empty line */
            const char *fin = memmem(p + off - 2, n - (off - 2), "\r\n\r\n", 4);
            return fin ? (long)(fin - p) + 4 : 0;
        }
        if (sz > MAX_RESPONSE) return -1;
        if (n - off < sz + 2) return 0;
        off += sz + 2;
    }
}

/* A whole response in c->rbuf: its length (> 0), 0 when more is needed, -1 if malformed.
 * *status gets the status code. */
static long response_len(conn *c, int *status) {
    const char *p = c->rbuf;
    const char *hend = memmem(p, c->rlen, "\r\n\r\n", 4);
    if (!hend) return c->rlen > 65536 ? -1 : 0;
    size_t hlen = (size_t)(hend - p) + 4;
    if (c->rlen < 12 || memcmp(p, "HTTP/1.", 7) != 0) return -1;
    *status = atoi(p + 9);
    long clen = -1;
    bool chunked = false;
    for (const char *l = memchr(p, '\n', hlen); l && l < hend; l = memchr(l + 1, '\n', hend - l)) {
        const char *h = l + 1;
        if (!strncasecmp(h, "content-length:", 15))
            clen = atol(h + 15);
        else if (!strncasecmp(h, "transfer-encoding:", 18) && memmem(h, hend - h, "chunked", 7))
            chunked = true;
    }
    if (chunked) {
        long b = chunked_len(p + hlen, c->rlen - hlen);
        return b <= 0 ? b : (long)hlen + b;
    }
    if (clen < 0 || clen > (long)MAX_RESPONSE) return -1;
    return c->rlen >= hlen + (size_t)clen ? (long)(hlen + (size_t)clen) : 0;
}

static void conn_read(lg *g, int i) {
    conn *c = &g->conns[i];
    for (;;) {
        if (c->rcap - c->rlen < 4096) {
            c->rcap = c->rcap ? c->rcap * 2 : 16384;
            if (c->rcap > 2 * MAX_RESPONSE) {
                conn_reset(g, i);
                return;
            }
            c->rbuf = realloc(c->rbuf, c->rcap);
            if (!c->rbuf) die("realloc");
        }
        ssize_t r = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            conn_reset(g, i);
            return;
        }
        if (r < 0) return;
        c->rlen += (size_t)r;
        if (!c->busy) { /* bytes nobody asked for */
            conn_reset(g, i);
            return;
        }
        int status = 0;
        long n = response_len(c, &status);
        if (n < 0) {
            conn_reset(g, i);
            return;
        }
        if (n > 0) {
            record(g, c, status >= 200 && status < 300, now_ns());
            c->busy = false;
            c->rlen = 0;
            idle_push(g, i);
        }
    }
}

static void arm_timer(lg *g) {
    int64_t t = due_ns(g, g->next_due);
    struct itimerspec its = {.it_value = {t / 1000000000, t % 1000000000}};
    if (timerfd_settime(g->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) die("timerfd_settime");
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v. */
static double pct(const double *v, size_t n, double q) {
    if (n == 0) return 0;
    size_t k = (size_t)(q / 100.0 * (double)n + 0.999999);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return v[k - 1];
}

static void usage(FILE *f) {
    fprintf(f, "usage: loadgen -r RATE [-d SECONDS] [-w WARMUP] [-c CONNECTIONS] [-b BODY] "
               "http://IPv4:PORT/PATH\n");
}

static bool parse_url(const char *url, struct sockaddr_in *a, char *host, size_t hmax,
                      const char **path) {
    if (strncmp(url, "http://", 7) != 0) return false;
    const char *h = url + 7, *colon = strchr(h, ':'), *slash = strchr(h, '/');
    if (!colon || !slash || colon > slash || (size_t)(slash - h) >= hmax) return false;
    char ip[64];
    size_t il = (size_t)(colon - h);
    if (il >= sizeof ip) return false;
    memcpy(ip, h, il);
    ip[il] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end != slash || port <= 0 || port > 65535) return false;
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &a->sin_addr) != 1) return false;
    memcpy(host, h, (size_t)(slash - h));
    host[slash - h] = 0;
    *path = slash;
    return true;
}

int main(int argc, char **argv) {
    double rate = 0, seconds = 10, warmup = 1;
    int n_conns = 16;
    const char *body = "{}", *url = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-r") && has)
            rate = atof(argv[++i]);
        else if (!strcmp(a, "-d") && has)
            seconds = atof(argv[++i]);
        else if (!strcmp(a, "-w") && has)
            warmup = atof(argv[++i]);
        else if (!strcmp(a, "-c") && has)
            n_conns = atoi(argv[++i]);
        else if (!strcmp(a, "-b") && has)
            body = argv[++i];
        else if (a[0] != '-' && !url)
            url = a;
        else {
            usage(stderr);
            return 2;
        }
    }
    lg g = {0};
    char host[256];
    const char *path;
    if (!url || !parse_url(url, &g.addr, host, sizeof host, &path) || !(rate > 0) ||
        !(seconds > 0) || !(warmup >= 0) || n_conns < 1 || n_conns > MAX_CONNS) {
        usage(stderr);
        return 2;
    }
    size_t blen = strlen(body);
    g.req_len =
        (size_t)snprintf(NULL, 0,
                         "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n\r\n%s",
                         path, host, blen, body);
    g.req = malloc(g.req_len + 1);
    if (!g.req) die("malloc");
    snprintf(g.req, g.req_len + 1,
             "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             path, host, blen, body);
    g.rate = rate;
    g.n_conns = n_conns;
    g.conns = calloc((size_t)n_conns, sizeof *g.conns);
    g.idle = calloc((size_t)n_conns, sizeof *g.idle);
    g.cap_lat = (size_t)(rate * seconds * 1.1) + 1024;
    g.lat = malloc(g.cap_lat * sizeof *g.lat);
    g.cap_lag = g.cap_lat;
    g.lag = malloc(g.cap_lag * sizeof *g.lag);
    if (!g.conns || !g.idle || !g.lat || !g.lag) die("malloc");
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* wake at the due time, not 50 us later */
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    g.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (g.ep < 0 || g.tfd < 0) die("epoll/timerfd");
    struct epoll_event tev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (epoll_ctl(g.ep, EPOLL_CTL_ADD, g.tfd, &tev) < 0) die("epoll_ctl");
    g.start_ns = now_ns() + 200000000; /* connections are up by then */
    g.warm_ns = g.start_ns + (int64_t)(warmup * 1e9);
    g.end_ns = g.warm_ns + (int64_t)(seconds * 1e9);
    for (int i = 0; i < n_conns; i++) conn_open(&g, i);
    int64_t drain_until = g.end_ns + (int64_t)(DRAIN_SECONDS * 1e9);
    arm_timer(&g);
    struct epoll_event evs[256];
    for (;;) {
        int64_t t = now_ns();
        while (t >= due_ns(&g, g.next_due) && due_ns(&g, g.next_due) < g.end_ns) g.next_due++;
        send_due(&g);
        bool scheduling = due_ns(&g, g.next_due) < g.end_ns;
        bool busy = g.next_send < g.next_due || g.idle_n < g.n_conns;
        if (!scheduling && (!busy || t >= drain_until)) break;
        if (scheduling) arm_timer(&g);
        int n = epoll_wait(g.ep, evs, 256, scheduling ? -1 : 100);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int k = 0; k < n; k++) {
            uint32_t id = evs[k].data.u32;
            if (id == UINT32_MAX) {
                uint64_t x;
                ssize_t r = read(g.tfd, &x, sizeof x);
                (void)r;
                continue;
            }
            conn *c = &g.conns[id];
            if (evs[k].events & EPOLLOUT && c->busy && !conn_write(&g, c)) {
                conn_reset(&g, (int)id);
                continue;
            }
            if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) conn_read(&g, (int)id);
        }
    }
    /* what was due in the measured window and never answered */
    for (int i = 0; i < n_conns; i++)
        if (g.conns[i].busy) record(&g, &g.conns[i], false, now_ns());
    for (int64_t s = g.next_send; s < g.next_due; s++)
        if (due_ns(&g, s) >= g.warm_ns) g.errors++;
    qsort(g.lat, g.n_lat, sizeof *g.lat, cmp_double);
    qsort(g.lag, g.n_lag, sizeof *g.lag, cmp_double);
    double achieved = (double)g.answered / seconds;
    double p50 = pct(g.lat, g.n_lat, 50), p90 = pct(g.lat, g.n_lat, 90),
           p99 = pct(g.lat, g.n_lat, 99), p999 = pct(g.lat, g.n_lat, 99.9),
           mx = g.n_lat ? g.lat[g.n_lat - 1] : 0, lag99 = pct(g.lag, g.n_lag, 99);
    fprintf(stderr,
            "loadgen: %.0f req/s scheduled, %.0f answered/s over %.1f s, %lld errors, %d "
            "connections\n  latency from the due time (ms): p50 %.3f  p90 %.3f  p99 %.3f  "
            "p99.9 %.3f  max %.3f\n  send lag p99 %.3f ms, backlog max %lld\n",
            rate, achieved, seconds, (long long)g.errors, n_conns, p50, p90, p99, p999, mx, lag99,
            (long long)g.backlog_max);
    printf("RESULT %.0f %.3f %.3f %.3f %.3f %.3f %lld %.3f %lld\n", achieved, p50, p90, p99, p999,
           mx, (long long)g.errors, lag99, (long long)g.backlog_max);
    for (int i = 0; i < n_conns; i++) {
        close(g.conns[i].fd);
        free(g.conns[i].rbuf);
    }
    free(g.conns), free(g.idle), free(g.lat), free(g.lag), free(g.req);
    close(g.ep), close(g.tfd);
    return ferror(stdout) ? 1 : 0;
}
