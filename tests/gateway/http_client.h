/*
 * http_client.h - a small blocking HTTP client over libcurl for the gateway tests: one call
 * sends a request and returns the status, the response headers (raw) and the body.
 */
#ifndef AR_TEST_HTTP_CLIENT_H
#define AR_TEST_HTTP_CLIENT_H

#include <stddef.h>

typedef struct http_res {
    long status; /* 0: the transfer failed */
    char *body;  /* NUL-terminated */
    size_t len;
    char *headers; /* raw header block(s), NUL-terminated */
} http_res;

/* method "GET"/"POST"; body NULL for none; headers: NULL-terminated "Name: value" list. */
http_res http_do(const char *method, int port, const char *path, const char *body,
                 const char *const *headers);
/* A copy of a response header's value (case-insensitive name), or NULL; free() it. */
char *http_header(const http_res *r, const char *name);
void http_free(http_res *r);

#endif
