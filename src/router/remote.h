/*
 * remote.h - the remote router backend: one OpenAI-compatible chat completions server
 * (vLLM, llama.cpp server, Ollama, or any hosted LLM) answers the Arch-Router prompt.
 *
 * router.c owns the routes and builds the prompt; this module only sends it and reads the
 * answer: ar_remote_complete() posts {base_url}/chat/completions with the system prompt and
 * the prompt body as two messages, temperature 0, a small max_tokens, and (while the server
 * accepts them) vLLM's guided_choice, llama.cpp's grammar and logprobs. It retries 429, 5xx
 * and failed connections with exponential backoff (honouring Retry-After), and drops an
 * optional field for good when a 400 names it. ar_remote_parse_answer() reads the model's
 * text as tolerantly as real outputs require.
 */
#ifndef AR_ROUTER_REMOTE_H
#define AR_ROUTER_REMOTE_H

#include "archrouter.h"
#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ar_remote ar_remote;

/* A backend for p (strings copied). Errors: no base_url or model (AR_ERR_INVALID_ARG). */
ar_status ar_remote_new(const ar_remote_params *p, ar_remote **out, ar_err *err);
void ar_remote_free(ar_remote *rm);

/* The settings it was made with (strings owned by rm). */
const ar_remote_params *ar_remote_params_of(const ar_remote *rm);

typedef struct ar_remote_reply {
    char *text;            /* the model's message content (malloc'd; "" when none) */
    bool has_logprob;      /* the server sent token log-probabilities */
    double logprob;        /* their sum over the answer's tokens */
    int32_t prompt_tokens; /* from the server's usage block, 0 when absent */
    int32_t completion_tokens;
    int32_t attempts; /* HTTP requests made */
} ar_remote_reply;

/* One completion. choices[0..n) are the exact answers to constrain to (e.g.
 * {"route": "travel"}; NULL/0: no constraint). system may be NULL (no system message).
 * Thread-safe: each call uses its own connection. Errors: AR_ERR_NETWORK (unreachable,
 * timed out, HTTP error after the retries), AR_ERR_AUTH (401/403), AR_ERR_FORMAT (a 2xx
 * whose body is not a chat completion), AR_ERR_NOMEM. */
ar_status ar_remote_complete(ar_remote *rm, const char *system, const char *body,
                             const char *const *choices, int32_t n_choices, ar_remote_reply *out,
                             ar_err *err);

void ar_remote_reply_free(ar_remote_reply *r);

/* The route name in a model's answer: {"route": "NAME"} as JSON, with single quotes,
 * inside ``` fences, with stray whitespace or text around it, or the bare name alone.
 * Writes the name (NUL-terminated) into name[0..cap) and returns true; false when no name
 * can be read (or it does not fit). */
bool ar_remote_parse_answer(const char *text, char *name, size_t cap);

#endif
