/*
 * request.h - an OpenAI chat completions request as the gateway receives it: validation and
 * the one edit the gateway makes before forwarding (the `model` value).
 *
 * ar_gw_request_parse() checks the body: no raw NUL byte, JSON (jansson rejects invalid UTF-8
 * and "\u0000"), one top-level object without duplicate keys, `messages` a non-empty array of valid
 * messages (router/messages.h), `model` a string when present, `stream` a boolean when
 * present. Every error is a client error, reported as "FIELD: what is wrong".
 *
 * ar_gw_request_rewrite() replaces the top-level `model` value in the body's bytes and
 * leaves every other byte as the client sent it (number formats, key order, whitespace);
 * when the body has no `model`, one is inserted right after the opening brace. It works on
 * a body that ar_gw_request_parse() accepted: a scanner walks the top-level object, skipping
 * strings and nested values, and finds the member whose key decodes to "model".
 */
#ifndef AR_GATEWAY_REQUEST_H
#define AR_GATEWAY_REQUEST_H

#include "base/err.h"
#include "router/messages.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct ar_gw_request {
    json_t *root;      /* the parsed body (owned) */
    const char *model; /* `model`, borrowed from root; NULL when absent */
    bool stream;       /* `stream` (false when absent) */
    ar_msg_list msgs;  /* the messages (owned) */
} ar_gw_request;

/* Validate body[0..len) and fill *out (zeroed on failure; release with
 * ar_gw_request_free). AR_ERR_FORMAT with a message naming the field, AR_ERR_NOMEM. */
ar_status ar_gw_request_parse(const char *body, size_t len, ar_gw_request *out, ar_err *err);

void ar_gw_request_free(ar_gw_request *r);

/* The body with the top-level `model` set to `model`: a malloc'd, NUL-terminated copy in
 * *out (length *out_len). body must have passed ar_gw_request_parse(); AR_ERR_FORMAT if the
 * scanner finds it is not a JSON object after all, AR_ERR_NOMEM. */
ar_status ar_gw_request_rewrite(const char *body, size_t len, const char *model, char **out,
                                size_t *out_len, ar_err *err);

#endif
