/*
 * fake_hub.h - a Hugging Face hub stand-in for offline tests, on libmicrohttpd.
 *
 * Two HTTP servers on 127.0.0.1, each on an ephemeral port: the "hub" answers
 * GET /OWNER/NAME/resolve/REV/FILE with a 302 to the "cdn" (another port, so another origin)
 * carrying X-Linked-Etag / X-Linked-Size / ETag, as huggingface.co does for LFS files; the cdn
 * serves the bytes with Range support. Modes make it misbehave: cut the body off, stall, lie
 * about the sha256, ignore Range, demand a token, answer directly without a redirect.
 * Every request is recorded (count, Range, Authorization, body bytes sent) for assertions.
 * Settings may be changed between transfers, not during one.
 */
#ifndef AR_FAKE_HUB_H
#define AR_FAKE_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fake_hub fake_hub;

typedef struct fake_hub_stats {
    int hub_requests, cdn_requests;
    char hub_auth[256], cdn_auth[256]; /* last Authorization header seen ("" if none) */
    char cdn_range[64];                /* last Range header at the cdn */
    uint64_t cdn_body_bytes;           /* body bytes the cdn handed out, all requests */
    uint64_t last_body_bytes;          /* body bytes of the last cdn response */
} fake_hub_stats;

typedef struct fake_hub_mode {
    int64_t cut_after; /* >0: break the connection after this many body bytes */
    bool stall;        /* send 1 byte, then nothing (until the client gives up) */
    bool wrong_sha;    /* advertise the sha256 of other bytes */
    bool ignore_range; /* always answer 200 with the whole file */
    bool direct;       /* the hub serves the bytes itself (no redirect, ETag only) */
    const char *token; /* non-NULL: answer 401 unless "Authorization: Bearer TOKEN" */
} fake_hub_mode;

/* Start both servers serving one file at /REPO/resolve/main/FILE (and at any revision).
 * data is copied. NULL on failure. */
fake_hub *fake_hub_start(const char *repo, const char *file, const void *data, size_t len);
void fake_hub_stop(fake_hub *h);

/* "http://127.0.0.1:PORT" of the hub (static inside h). */
const char *fake_hub_endpoint(const fake_hub *h);

void fake_hub_set_mode(fake_hub *h, const fake_hub_mode *m);
fake_hub_stats fake_hub_get_stats(fake_hub *h);
void fake_hub_reset_stats(fake_hub *h);

/* The sha256 of data as 64 lowercase hex digits. */
void fake_hub_sha256_hex(const void *data, size_t len, char out[65]);

/* A TCP port on 127.0.0.1 that nothing listens on (bound, then closed). */
int fake_hub_closed_port(void);

#endif
