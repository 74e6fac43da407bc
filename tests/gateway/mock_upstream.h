/*
 * mock_upstream.h - a fake OpenAI-compatible upstream for the gateway tests and benchmark:
 * libmicrohttpd on 127.0.0.1, an ephemeral port, POST .../chat/completions only.
 *
 * What it answers depends on the `model` the gateway forwarded (the provider's model id):
 *   json       a chat.completion whose content is "hello from json"
 *   sse        three chat.completion.chunk events ("a", "b", "c") then [DONE]
 *   slow-sse   one chunk ("first"), then waits until mock_release() (or 5 s), then the
 *              rest ("second") and [DONE]
 *   hang       one chunk, then an SSE comment every 20 ms until the reader goes away
 *   err400     HTTP 400 with an OpenAI error body (code "bad_thing")
 *   err503     HTTP 503 with an OpenAI error body (code "overloaded")
 * anything else: like json, with the model in the content; with "stream": true, any model
 * but the ones above streams "hello from " and the model as two chunks, then [DONE].
 * It records the last request's body and headers, counts requests, and counts responses
 * that ended because the reader disconnected.
 */
#ifndef AR_TEST_MOCK_UPSTREAM_H
#define AR_TEST_MOCK_UPSTREAM_H

typedef struct mock_upstream mock_upstream;

/* port 0: any free port. NULL on failure. */
mock_upstream *mock_start(int port);
int mock_port(const mock_upstream *m);
void mock_stop(mock_upstream *m);

int mock_requests(mock_upstream *m);
int mock_disconnects(mock_upstream *m); /* responses cut off by the client */
void mock_release(mock_upstream *m);    /* let slow-sse finish */
/* Copies (free them) of the last request's body and of one of its headers (NULL: none). */
char *mock_last_body(mock_upstream *m);
char *mock_last_header(mock_upstream *m, const char *name);

#endif
