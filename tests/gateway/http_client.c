/*
 * http_client.c - the test HTTP client (http_client.h): curl easy, body and headers
 * gathered into growing buffers.
 */
#include "http_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct grow {
    char *p;
    size_t n;
} grow;

static size_t append(char *d, size_t s, size_t n, void *ud) {
    grow *g = ud;
    char *q = realloc(g->p, g->n + s * n + 1);
    if (!q) return 0;
    memcpy(q + g->n, d, s * n);
    g->n += s * n;
    q[g->n] = 0;
    g->p = q;
    return s * n;
}

http_res http_do(const char *method, int port, const char *path, const char *body,
                 const char *const *headers) {
    http_res r = {0};
    grow b = {0}, h = {0};
    CURL *c = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *hl = NULL;
    for (const char *const *p = headers; p && *p; p++) hl = curl_slist_append(hl, *p);
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, append);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hl);
    r.body = b.p ? b.p : strdup("");
    r.len = b.n;
    r.headers = h.p ? h.p : strdup("");
    return r;
}

char *http_header(const http_res *r, const char *name) {
    size_t nl = strlen(name);
    for (const char *l = r->headers; l && *l;) {
        const char *e = strstr(l, "\r\n");
        size_t len = e ? (size_t)(e - l) : strlen(l);
        if (len > nl && l[nl] == ':' && !strncasecmp(l, name, nl)) {
            const char *v = l + nl + 1;
            while (*v == ' ') v++;
            return strndup(v, len - (size_t)(v - l));
        }
        l += len + (e ? 2 : 0);
    }
    return NULL;
}

void http_free(http_res *r) {
    free(r->body);
    free(r->headers);
    r->body = r->headers = NULL;
}
