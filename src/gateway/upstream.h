/*
 * upstream.h - one forwarded request to an upstream LLM over libcurl, driven step by step
 * from the thread of the client connection that asked for it.
 *
 * The gateway runs libmicrohttpd with a thread per connection (server.c says why), so a
 * transfer needs no thread of its own: the connection's thread drives it through the
 * connection's ar_up_conn: a curl multi handle (its connection cache keeps the upstream
 * connection alive across the client's keep-alive requests) and the easy handle of the last
 * transfer that ended cleanly, reset and reused by the next one (creating and freeing an
 * easy handle per request showed in profiles: a large zeroed struct and buffers, and the
 * malloc consolidation their frees set off). ar_up_wait_headers() runs until the status line and
 * headers are in; then either ar_up_wait_done() collects a whole (non-streamed) body, or
 * ar_up_read() hands out the body bytes as they arrive, for a streamed response.
 *
 * While waiting, the client's socket is polled too: when the client hangs up (EOF or an
 * error on its socket) the transfer is cancelled through curl's xferinfo callback, which
 * also watches the gateway-wide cancel flag (shutdown after the drain timeout). A streamed
 * body is buffered up to AR_UP_STREAM_BUFFER bytes; beyond that the transfer is paused
 * until the client has taken the bytes (backpressure instead of memory growth).
 */
#ifndef AR_GATEWAY_UPSTREAM_H
#define AR_GATEWAY_UPSTREAM_H

#include "base/buf.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define AR_UP_STREAM_BUFFER (1u << 20)  /* bytes held for a slow streaming client */
#define AR_UP_MAX_BODY      (64u << 20) /* largest non-streamed upstream body */

typedef enum ar_up_error {
    AR_UP_OK = 0,
    AR_UP_CONNECT = 1,     /* could not connect or send (502) */
    AR_UP_TIMEOUT = 2,     /* connect or read timeout (504) */
    AR_UP_TOO_LARGE = 3,   /* body over AR_UP_MAX_BODY (502) */
    AR_UP_BROKEN = 4,      /* the transfer broke off after it started (502) */
    AR_UP_CLIENT_GONE = 5, /* the client hung up; the transfer was cancelled */
    AR_UP_CANCELLED = 6    /* the gateway is stopping */
} ar_up_error;

typedef struct ar_up_params {
    const char *url;          /* full URL of the chat completions endpoint */
    const char *auth_header;  /* "Authorization: Bearer ..." or NULL */
    struct curl_slist *extra; /* more request headers (borrowed, may be NULL) */
    char *body;               /* request body (ownership moves in) */
    size_t body_len;
    bool stream; /* the body is relayed with ar_up_read() */
    int connect_timeout_ms;
    int read_timeout_ms;       /* longest silence from the upstream */
    int client_fd;             /* the client's socket, watched for hang-up; -1: none */
    const atomic_bool *cancel; /* gateway-wide cancel flag (may be NULL) */
} ar_up_params;

/* What a client connection keeps between its requests. Zeroed to start; freed with
 * ar_up_conn_free() once no transfer uses it. */
typedef struct ar_up_conn {
    CURLM *multi; /* created on first use */
    CURL *spare;  /* easy handle of the last clean transfer, or NULL */
} ar_up_conn;

typedef struct ar_up {
    CURL *easy;
    ar_up_conn *conn; /* borrowed */
    struct curl_slist *headers;
    char *body;
    ar_buf data; /* received body bytes; data_off of them already handed out */
    size_t data_off;
    bool added; /* on the multi handle */
    bool stream, paused, headers_done, done, client_gone, watch_client;
    int client_fd;
    long status;
    char content_type[128];
    ar_up_error error;
    char errbuf[CURL_ERROR_SIZE];
    int read_timeout_ms;
    const atomic_bool *cancel;
    double t_start, t_first_byte, t_last, t_end; /* ms, ar_clock_ms() */
} ar_up;

/* Start the transfer on the connection's multi handle. On failure returns false with
 * u->error set (call ar_up_end() all the same). */
bool ar_up_start(ar_up *u, ar_up_conn *conn, const ar_up_params *p);

/* Run until the response headers are in (true), or the transfer failed (false, u->error). */
bool ar_up_wait_headers(ar_up *u);

/* Run until the whole body is in u->data (true), or failure (false, u->error). */
bool ar_up_wait_done(ar_up *u);

/* Up to max body bytes into buf as they arrive: > 0 bytes, 0 at the end of the body, -1 on
 * failure (u->error). */
ssize_t ar_up_read(ar_up *u, char *buf, size_t max);

/* Remove the transfer from its multi handle (the connection is kept for reuse when the
 * transfer completed) and free it; the easy handle goes back to the connection as its
 * spare when the transfer ended cleanly. Safe on a zeroed or already ended ar_up. */
void ar_up_end(ar_up *u);

/* Free what the connection kept. Safe on a zeroed ar_up_conn. */
void ar_up_conn_free(ar_up_conn *conn);

/* A short text for an error, for logs and error messages. */
const char *ar_up_error_name(ar_up_error e);

#endif
