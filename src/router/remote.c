/*
 * remote.c - the remote router backend (remote.h): the Arch-Router prompt answered by an
 * OpenAI-compatible chat completions server.
 *
 * One decision is one POST {base_url}/chat/completions:
 *
 *   {"model": M, "messages": [{"role": "system", "content": S},
 *                             {"role": "user", "content": PROMPT BODY}],
 *    "temperature": 0, "max_tokens": 96,
 *    "guided_choice": [ANSWER...],            vLLM: output is one of the answers
 *    "grammar": "root ::= \"ANSWER\" | ...",  llama.cpp server: the same as a GBNF grammar
 *    "logprobs": true}                        the answer's probability
 *
 * The optional fields are feature probes: a server that rejects one with a 400 whose body
 * names it (OpenAI: "Unrecognized request argument supplied: guided_choice") gets the same
 * request again without it, and the backend remembers not to send it again (atomic flags,
 * shared by all threads). Servers that ignore unknown fields (Ollama, llama.cpp for
 * guided_choice, vLLM for grammar) just answer. 429, 5xx and failed connections are
 * retried up to max_retries times, waiting 250 ms, 500 ms, 1 s, ... (at most 8 s), or what
 * a Retry-After header in seconds asks (at most 30 s); a timeout is not retried (the caller's
 * deadline is spent). Each call has its own curl easy handle, so calls run in parallel.
 *
 * The answer parser looks for a "route" key followed by a quoted value, either quote
 * style, anywhere in the text (so ```json fences, leading prose and trailing junk do not
 * matter); failing that, a text that is a single bare word (optionally quoted) is taken
 * as the name. router.c then matches the name against the routes.
 */
#include "router/remote.h"

#include "base/buf.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_REPLY_BYTES  (1u << 20) /* a chat completion is small; cap hostile servers */
#define MAX_TOKENS       96
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS   8000
#define RETRY_AFTER_MAX  30

struct ar_remote {
    ar_remote_params p; /* strings owned */
    char *url;          /* {base_url}/chat/completions */
    atomic_bool send_guided, send_grammar, send_logprobs;
};

ar_remote_params ar_remote_default_params(void) {
    ar_remote_params p = {.timeout_ms = 10000,
                          .max_retries = 2,
                          .layout = AR_LAYOUT_CARD,
                          .max_conversation_tokens = 2048,
                          .constrained = true,
                          .logprobs = true};
    return p;
}

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

ar_status ar_remote_new(const ar_remote_params *p, ar_remote **out, ar_err *err) {
    *out = NULL;
    if (!p || !p->base_url || !*p->base_url || !p->model || !*p->model)
        return ar_errf(err, AR_ERR_INVALID_ARG, "a remote router needs a base_url and a model");
    if (strncmp(p->base_url, "http://", 7) && strncmp(p->base_url, "https://", 8))
        return ar_errf(err, AR_ERR_INVALID_ARG, "base_url '%.200s' is not an http(s) URL",
                       p->base_url);
    ar_remote *rm = calloc(1, sizeof *rm);
    if (!rm) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    rm->p = *p;
    rm->p.base_url = dup_or_null(p->base_url);
    rm->p.model = dup_or_null(p->model);
    rm->p.api_key = p->api_key && *p->api_key ? strdup(p->api_key) : NULL;
    rm->p.system_prompt = dup_or_null(p->system_prompt);
    size_t n = strlen(p->base_url);
    while (n > 0 && p->base_url[n - 1] == '/') n--; /* "http://h/v1/" works too */
    rm->url = malloc(n + sizeof "/chat/completions");
    if (!rm->p.base_url || !rm->p.model || (p->api_key && *p->api_key && !rm->p.api_key) ||
        (p->system_prompt && !rm->p.system_prompt) || !rm->url) {
        ar_remote_free(rm);
        return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    }
    memcpy(rm->url, p->base_url, n);
    memcpy(rm->url + n, "/chat/completions", sizeof "/chat/completions");
    atomic_init(&rm->send_guided, p->constrained);
    atomic_init(&rm->send_grammar, p->constrained);
    atomic_init(&rm->send_logprobs, p->logprobs);
    curl_global_init(CURL_GLOBAL_DEFAULT); /* reference counted; thread-safe in curl >= 7.84 */
    *out = rm;
    return AR_OK;
}

void ar_remote_free(ar_remote *rm) {
    if (!rm) return;
    free((char *)rm->p.base_url);
    free((char *)rm->p.model);
    free((char *)rm->p.api_key);
    free((char *)rm->p.system_prompt);
    free(rm->url);
    free(rm);
}

const ar_remote_params *ar_remote_params_of(const ar_remote *rm) {
    return &rm->p;
}

void ar_remote_reply_free(ar_remote_reply *r) {
    if (!r) return;
    free(r->text);
    *r = (ar_remote_reply){0};
}

/* ---- the request ------------------------------------------------------------------------- */

/* A GBNF string literal of s. */
static void gbnf_literal(ar_buf *b, const char *s) {
    ar_buf_puts(b, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            ar_buf_printf(b, "\\%c", *s);
        else if (*s == '\n')
            ar_buf_puts(b, "\\n");
        else
            ar_buf_append(b, s, 1);
    }
    ar_buf_puts(b, "\"");
}

static json_t *make_request(ar_remote *rm, const char *system, const char *body,
                            const char *const *choices, int32_t n_choices, bool guided,
                            bool grammar, bool logprobs) {
    json_t *msgs = json_array();
    if (system && *system)
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", system));
    json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", body));
    json_t *req = json_pack("{s:s, s:o, s:i, s:i, s:b}", "model", rm->p.model, "messages", msgs,
                            "temperature", 0, "max_tokens", MAX_TOKENS, "stream", 0);
    if (!req) return NULL;
    if (guided && n_choices > 0) {
        json_t *a = json_array();
        for (int32_t i = 0; i < n_choices; i++) json_array_append_new(a, json_string(choices[i]));
        json_object_set_new(req, "guided_choice", a);
    }
    if (grammar && n_choices > 0) {
        ar_buf g = {0};
        ar_buf_puts(&g, "root ::= ");
        for (int32_t i = 0; i < n_choices; i++) {
            if (i) ar_buf_puts(&g, " | ");
            gbnf_literal(&g, choices[i]);
        }
        if (!g.oom) json_object_set_new(req, "grammar", json_stringn(g.data, g.len));
        ar_buf_free(&g);
    }
    if (logprobs) json_object_set_new(req, "logprobs", json_true());
    return req;
}

/* ---- one HTTP exchange ------------------------------------------------------------------- */

typedef struct exchange {
    ar_buf body;
    long retry_after_s; /* -1: none */
    bool too_big;
} exchange;

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
    exchange *x = ud;
    size_t len = size * n;
    if (x->body.len + len > MAX_REPLY_BYTES) {
        x->too_big = true;
        return 0;
    }
    ar_buf_append(&x->body, data, len);
    return x->body.oom ? 0 : len;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud) {
    exchange *x = ud;
    size_t len = size * n;
    static const char key[] = "retry-after:";
    if (len > sizeof key && strncasecmp(data, key, sizeof key - 1) == 0) {
        char tmp[32];
        size_t k =
            len - (sizeof key - 1) < sizeof tmp - 1 ? len - (sizeof key - 1) : sizeof tmp - 1;
        memcpy(tmp, data + sizeof key - 1, k);
        tmp[k] = 0;
        char *end;
        long v = strtol(tmp, &end, 10);
        if (end != tmp && v >= 0) x->retry_after_s = v > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : v;
    }
    return len;
}

/* POST text; *http is the status (0 when there was no response). */
static CURLcode post(ar_remote *rm, const char *text, exchange *x, long *http, char *curlmsg) {
    CURL *h = curl_easy_init();
    if (!h) return CURLE_OUT_OF_MEMORY;
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    char auth[1024];
    if (rm->p.api_key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", rm->p.api_key);
        hdrs = curl_slist_append(hdrs, auth);
    }
    curl_easy_setopt(h, CURLOPT_URL, rm->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "archrouter");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(rm->p.timeout_ms > 0 ? rm->p.timeout_ms : 0));
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curlmsg);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curlmsg[0] = 0;
    CURLcode rc = curl_easy_perform(h);
    *http = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, http);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return rc;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* ---- the reply ----------------------------------------------------------------------------- */

static ar_status read_reply(const exchange *x, ar_remote_reply *out, ar_err *err) {
    json_error_t je;
    json_t *j = json_loadb(x->body.data ? x->body.data : "", x->body.len, 0, &je);
    json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    if (!json_is_object(msg)) {
        json_decref(j);
        return ar_errf(err, AR_ERR_FORMAT,
                       "the server's answer is not a chat completion (no choices[0].message)");
    }
    const char *content = json_string_value(json_object_get(msg, "content"));
    out->text = strdup(content ? content : "");
    json_t *lp = json_object_get(json_object_get(choice, "logprobs"), "content");
    if (json_is_array(lp) && json_array_size(lp) > 0) {
        size_t i;
        json_t *tok;
        double sum = 0;
        bool ok = true;
        json_array_foreach(lp, i, tok) {
            json_t *v = json_object_get(tok, "logprob");
            if (!json_is_number(v))
                ok = false;
            else
                sum += json_number_value(v);
        }
        out->has_logprob = ok && isfinite(sum) && sum <= 0;
        out->logprob = out->has_logprob ? sum : 0;
    }
    json_t *usage = json_object_get(j, "usage");
    out->prompt_tokens = (int32_t)json_integer_value(json_object_get(usage, "prompt_tokens"));
    out->completion_tokens =
        (int32_t)json_integer_value(json_object_get(usage, "completion_tokens"));
    json_decref(j);
    return out->text ? AR_OK : ar_errf(err, AR_ERR_NOMEM, "out of memory");
}

/* A 400 that names an optional field we sent: stop sending it. True if one was dropped. */
static bool drop_rejected(ar_remote *rm, const exchange *x, bool *guided, bool *grammar,
                          bool *logprobs) {
    const char *b = x->body.data ? x->body.data : "";
    bool dropped = false;
    if (*guided && strstr(b, "guided_choice")) {
        atomic_store(&rm->send_guided, false);
        *guided = false;
        dropped = true;
    }
    if (*grammar && strstr(b, "grammar")) {
        atomic_store(&rm->send_grammar, false);
        *grammar = false;
        dropped = true;
    }
    if (*logprobs && strstr(b, "logprobs")) {
        atomic_store(&rm->send_logprobs, false);
        *logprobs = false;
        dropped = true;
    }
    return dropped;
}

ar_status ar_remote_complete(ar_remote *rm, const char *system, const char *body,
                             const char *const *choices, int32_t n_choices, ar_remote_reply *out,
                             ar_err *err) {
    *out = (ar_remote_reply){0};
    if (!rm || !body) return ar_errf(err, AR_ERR_INVALID_ARG, "no remote backend or prompt");
    bool guided = atomic_load(&rm->send_guided), grammar = atomic_load(&rm->send_grammar);
    bool logprobs = atomic_load(&rm->send_logprobs);
    int retries = 0, probes = 0;
    long backoff = BACKOFF_FIRST_MS;
    for (;;) {
        json_t *req = make_request(rm, system, body, choices, n_choices, guided, grammar, logprobs);
        char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
        json_decref(req);
        if (!text) return ar_errf(err, AR_ERR_NOMEM, "out of memory for the request");
        exchange x = {.retry_after_s = -1};
        char curlmsg[CURL_ERROR_SIZE];
        long http = 0;
        CURLcode rc = post(rm, text, &x, &http, curlmsg);
        free(text);
        out->attempts++;
        ar_status st = AR_OK;
        bool again = false;
        if (x.too_big) {
            st = ar_errf(err, AR_ERR_LIMIT, "%s: the answer is larger than %u bytes", rm->url,
                         MAX_REPLY_BYTES);
        } else if (rc == CURLE_OPERATION_TIMEDOUT) {
            st = ar_errf(err, AR_ERR_NETWORK, "%s: no answer within %d ms", rm->url,
                         (int)rm->p.timeout_ms);
        } else if (rc != CURLE_OK) {
            st = ar_errf(err, AR_ERR_NETWORK, "%s: %s", rm->url,
                         curlmsg[0] ? curlmsg : curl_easy_strerror(rc));
            again = rc == CURLE_COULDNT_CONNECT || rc == CURLE_RECV_ERROR ||
                    rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING;
        } else if (http >= 200 && http < 300) {
            st = read_reply(&x, out, err);
        } else {
            const char *b = x.body.data ? x.body.data : "";
            st = ar_errf(err, http == 401 || http == 403 ? AR_ERR_AUTH : AR_ERR_NETWORK,
                         "%s: HTTP %ld: %.200s", rm->url, http, b);
            again = http == 429 || http >= 500;
            if (http == 400 && probes < 3 && drop_rejected(rm, &x, &guided, &grammar, &logprobs)) {
                probes++;
                ar_buf_free(&x.body);
                continue; /* at once, and not counted as a retry */
            }
        }
        long wait = x.retry_after_s >= 0 ? x.retry_after_s * 1000 : backoff;
        ar_buf_free(&x.body);
        if (st == AR_OK || !again || retries >= rm->p.max_retries) return st;
        retries++;
        sleep_ms(wait);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
}

/* ---- the answer ---------------------------------------------------------------------------- */

/* A quoted string at s (s[0] is ' or "): its contents into name; the end, or NULL. */
static const char *read_quoted(const char *s, char *name, size_t cap) {
    char q = *s++;
    size_t n = 0;
    for (; *s && *s != q; s++) {
        if (*s == '\\' && s[1]) s++; /* \" and \\ as JSON writes them */
        if (n + 1 >= cap) return NULL;
        name[n++] = *s;
    }
    if (*s != q) return NULL;
    name[n] = 0;
    return s + 1;
}

bool ar_remote_parse_answer(const char *text, char *name, size_t cap) {
    if (!text || !name || cap == 0) return false;
    /* A "route" key in either quote style, then ':' and a quoted value. */
    for (const char *p = strstr(text, "route"); p; p = strstr(p + 1, "route")) {
        if (p == text || (p[-1] != '"' && p[-1] != '\'') || p[5] != p[-1]) continue;
        const char *s = p + 6;
        while (isspace((unsigned char)*s)) s++;
        if (*s != ':') continue;
        s++;
        while (isspace((unsigned char)*s)) s++;
        if ((*s == '"' || *s == '\'') && read_quoted(s, name, cap)) return name[0] != 0;
    }
    /* The bare name: one word, perhaps quoted, perhaps inside fences. */
    const char *s = text;
    while (isspace((unsigned char)*s) || *s == '`') s++;
    const char *e = s + strlen(s);
    while (e > s && (isspace((unsigned char)e[-1]) || e[-1] == '`')) e--;
    if (e - s >= 2 && (*s == '"' || *s == '\'') && e[-1] == *s) {
        s++;
        e--;
    }
    if (e <= s || (size_t)(e - s) >= cap) return false;
    for (const char *c = s; c < e; c++)
        if (isspace((unsigned char)*c) || strchr("{}[]:,'\"`", *c)) return false;
    memcpy(name, s, (size_t)(e - s));
    name[e - s] = 0;
    return true;
}
