/*
 * hub.c - ar_pull(): download a model file from the Hugging Face hub with libcurl, resume
 * it, verify it, and find files already downloaded (ar_model_resolve()).
 *
 * How a pull goes:
 *   1. The reference is parsed (hub.h) and mapped to CACHE/models/OWNER--NAME/FILE. If that
 *      file exists it is the answer: files only get their final name once complete and
 *      verified. Otherwise a huggingface_hub cache holding the file is the answer.
 *   2. Bytes go to FILE.part, locked with flock() so two pulls cannot interleave. An
 *      existing part is hashed first (the sha256 is computed incrementally as bytes are
 *      written) and the request asks for the rest with "Range: bytes=N-".
 *   3. GET ENDPOINT/OWNER/NAME/resolve/REV/FILE. Redirects are followed by hand, one request
 *      per hop, so the Authorization header goes only to the endpoint's own origin (scheme,
 *      host, port) and never to the CDN the hub redirects to. The hub's answer (the 302)
 *      carries X-Linked-Etag / X-Linked-Size: the sha256 and size of the LFS file; a plain
 *      file has them as ETag / Content-Length.
 *   4. The body is appended to the part. A 200 to a ranged request means the server ignored
 *      the range: the part is emptied and the download starts over. A 416 means there was
 *      nothing left to send: the part is checked as it is, and restarted if it is wrong.
 *   5. When the size is reached the digest is compared with the published sha256 (when the
 *      ETag is one); a mismatch deletes the part. Then fsync, rename(part, final) and a
 *      FILE.sha256 sidecar ("HEX  FILE") are written.
 * Failures keep the part (except a checksum mismatch), so running again resumes.
 */
#include "hub/hub.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_CAP AR_PULL_PATH_MAX
#define URL_CAP  (AR_PULL_PATH_MAX + 512)

/* ---- references ------------------------------------------------------------------------ */

static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

/* A '/'-separated path of name characters (plus '+', '=' and ',' when `wide`): no empty,
 * "." or ".." component, so it can be joined to a folder and to a URL as it is. */
static bool valid_path(const char *s, size_t len, bool wide) {
    if (len == 0) return false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '/') {
            size_t n = i - start;
            if (n == 0 || (n == 1 && s[start] == '.') ||
                (n == 2 && s[start] == '.' && s[start + 1] == '.'))
                return false;
            start = i + 1;
        } else if (!is_name_char(s[i]) && !(wide && (s[i] == '+' || s[i] == '=' || s[i] == ','))) {
            return false;
        }
    }
    return true;
}

static bool copy_part(char *dst, size_t cap, const char *s, size_t len) {
    if (len >= cap) return false;
    memcpy(dst, s, len);
    dst[len] = 0;
    return true;
}

ar_status ar_hub_parse_ref(const char *ref, ar_hub_ref *out, ar_err *e) {
    memset(out, 0, sizeof *out);
    if (!ref || !*ref) ref = AR_PULL_DEFAULT_REPO ":" AR_PULL_DEFAULT_FILE;
    const char *colon = strchr(ref, ':');
    const char *repo_end = colon ? colon : ref + strlen(ref);
    const char *at = memchr(ref, '@', (size_t)(repo_end - ref));
    const char *name_end = at ? at : repo_end;
    const char *slash = memchr(ref, '/', (size_t)(name_end - ref));
    if (!slash)
        return ar_errf(e, AR_ERR_INVALID_ARG,
                       "'%s' is not a model reference: expected OWNER/NAME[@REVISION][:FILE]", ref);
    size_t owner_len = (size_t)(slash - ref), name_len = (size_t)(name_end - slash - 1);
    if (!valid_path(ref, owner_len, false) || !valid_path(slash + 1, name_len, false) ||
        memchr(slash + 1, '/', name_len) ||
        !copy_part(out->owner, sizeof out->owner, ref, owner_len) ||
        !copy_part(out->name, sizeof out->name, slash + 1, name_len))
        return ar_errf(e, AR_ERR_INVALID_ARG,
                       "'%s': bad repository name (OWNER/NAME, letters, digits, '-', '_', '.')",
                       ref);
    if (at) {
        size_t len = (size_t)(repo_end - at - 1);
        if (!valid_path(at + 1, len, false) ||
            !copy_part(out->revision, sizeof out->revision, at + 1, len))
            return ar_errf(e, AR_ERR_INVALID_ARG, "'%s': bad revision after '@'", ref);
    } else {
        strcpy(out->revision, "main");
    }
    if (colon) {
        size_t len = strlen(colon + 1);
        if (!valid_path(colon + 1, len, true) ||
            !copy_part(out->file, sizeof out->file, colon + 1, len))
            return ar_errf(e, AR_ERR_INVALID_ARG,
                           "'%s': bad file name after ':' (a relative path of letters, digits, "
                           "'-', '_', '.', '+')",
                           ref);
    } else {
        strcpy(out->file, AR_PULL_DEFAULT_FILE);
    }
    return AR_OK;
}

/* ---- cache locations ------------------------------------------------------------------- */

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static ar_status fmt_path(char *out, size_t cap, ar_err *e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static ar_status fmt_path(char *out, size_t cap, ar_err *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        if (cap) out[0] = 0;
        return ar_errf(e, AR_ERR_BUFFER_TOO_SMALL, "path too long (%d bytes)", n);
    }
    return AR_OK;
}

/* $XDG_CACHE_HOME/sub, else $HOME/.cache/sub. */
static ar_status user_cache(const char *sub, char *out, size_t cap, ar_err *e) {
    if (env("XDG_CACHE_HOME")) return fmt_path(out, cap, e, "%s/%s", env("XDG_CACHE_HOME"), sub);
    if (env("HOME")) return fmt_path(out, cap, e, "%s/.cache/%s", env("HOME"), sub);
    return ar_errf(e, AR_ERR_NOT_FOUND,
                   "no cache folder: set ARCHROUTER_CACHE (or XDG_CACHE_HOME or HOME)");
}

ar_status ar_hub_cache_dir(const char *dir, char *out, size_t cap, ar_err *e) {
    if (dir && *dir) return fmt_path(out, cap, e, "%s", dir);
    if (env("ARCHROUTER_CACHE")) return fmt_path(out, cap, e, "%s", env("ARCHROUTER_CACHE"));
    return user_cache("archrouter", out, cap, e);
}

ar_status ar_hub_hf_cache_dir(const char *dir, char *out, size_t cap, ar_err *e) {
    if (dir && *dir) return fmt_path(out, cap, e, "%s", dir);
    if (env("HF_HUB_CACHE")) return fmt_path(out, cap, e, "%s", env("HF_HUB_CACHE"));
    if (env("HF_HOME")) return fmt_path(out, cap, e, "%s/hub", env("HF_HOME"));
    return user_cache("huggingface/hub", out, cap, e);
}

ar_status ar_hub_cache_path(const char *cache, const ar_hub_ref *r, char *out, size_t cap,
                            ar_err *e) {
    if (strcmp(r->revision, "main") == 0)
        return fmt_path(out, cap, e, "%s/models/%s--%s/%s", cache, r->owner, r->name, r->file);
    char rev[sizeof r->revision * 2];
    size_t n = 0;
    for (const char *s = r->revision; *s; s++) {
        if (*s == '/') {
            rev[n++] = '-';
            rev[n++] = '-';
        } else {
            rev[n++] = *s;
        }
    }
    rev[n] = 0;
    return fmt_path(out, cap, e, "%s/models/%s--%s@%s/%s", cache, r->owner, r->name, rev, r->file);
}

static bool is_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

static bool is_regular_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

ar_status ar_hub_find_hf_cached(const char *hub_cache, const ar_hub_ref *r, char *out, size_t cap) {
    char commit[64] = "";
    if (strlen(r->revision) == 40 && is_hex(r->revision, 40)) {
        strcpy(commit, r->revision);
    } else {
        char refpath[PATH_CAP];
        if (fmt_path(refpath, sizeof refpath, NULL, "%s/models--%s--%s/refs/%s", hub_cache,
                     r->owner, r->name, r->revision) != AR_OK)
            return AR_ERR_NOT_FOUND;
        FILE *f = fopen(refpath, "r");
        if (!f) return AR_ERR_NOT_FOUND;
        size_t n = fread(commit, 1, sizeof commit - 1, f);
        fclose(f);
        commit[n] = 0;
        while (n && (commit[n - 1] == '\n' || commit[n - 1] == '\r' || commit[n - 1] == ' '))
            commit[--n] = 0;
        if (n == 0 || !valid_path(commit, n, false) || strchr(commit, '/')) return AR_ERR_NOT_FOUND;
    }
    if (fmt_path(out, cap, NULL, "%s/models--%s--%s/snapshots/%s/%s", hub_cache, r->owner, r->name,
                 commit, r->file) != AR_OK ||
        !is_regular_file(out) || access(out, R_OK) != 0) {
        if (cap) out[0] = 0;
        return AR_ERR_NOT_FOUND;
    }
    return AR_OK;
}

bool ar_hub_etag_sha256(const char *etag, char out[65]) {
    if (!etag) return false;
    if (strncmp(etag, "W/", 2) == 0) etag += 2;
    size_t n = strlen(etag);
    if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
        etag++;
        n -= 2;
    }
    if (n != 64 || !is_hex(etag, 64)) return false;
    for (int i = 0; i < 64; i++)
        out[i] = (char)(etag[i] >= 'A' && etag[i] <= 'F' ? etag[i] + 32 : etag[i]);
    out[64] = 0;
    return true;
}

/* ---- files ----------------------------------------------------------------------------- */

/* mkdir -p of the folder holding `path`. */
static ar_status make_parent_dirs(const char *path, ar_err *e) {
    char dir[PATH_CAP];
    if (fmt_path(dir, sizeof dir, e, "%s", path) != AR_OK) return AR_ERR_INVALID_ARG;
    char *last = strrchr(dir, '/');
    if (!last || last == dir) return AR_OK;
    *last = 0;
    for (char *p = dir + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(dir, 0777) != 0 && errno != EEXIST)
                return ar_errf(e, AR_ERR_IO, "cannot create folder %s: %s", dir, strerror(errno));
            *p = c;
            if (c == 0) break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ar_errf(e, AR_ERR_IO, "%s is not a folder", dir);
    return AR_OK;
}

static void hex_digest(const unsigned char *d, char out[65]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[64] = 0;
}

/* The hex digest of what ctx has seen so far, leaving ctx untouched. */
static bool digest_so_far(EVP_MD_CTX *ctx, char out[65]) {
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    unsigned char d[32];
    unsigned int n = 0;
    bool ok = copy && EVP_MD_CTX_copy_ex(copy, ctx) && EVP_DigestFinal_ex(copy, d, &n) && n == 32;
    EVP_MD_CTX_free(copy);
    if (ok) hex_digest(d, out);
    return ok;
}

/* The sha256 recorded in the sidecar next to `path`, or "" if none. */
static void read_sidecar(const char *path, char out[65]) {
    out[0] = 0;
    char side[PATH_CAP];
    if (fmt_path(side, sizeof side, NULL, "%s.sha256", path) != AR_OK) return;
    FILE *f = fopen(side, "r");
    if (!f) return;
    char buf[65] = "";
    size_t n = fread(buf, 1, 64, f);
    fclose(f);
    buf[n] = 0;
    if (n == 64 && is_hex(buf, 64)) memcpy(out, buf, 65);
}

static ar_status write_sidecar(const char *path, const char *file, const char *hex, ar_err *e) {
    char side[PATH_CAP];
    if (fmt_path(side, sizeof side, e, "%s.sha256", path) != AR_OK) return AR_ERR_IO;
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    FILE *f = fopen(side, "w");
    if (!f) return ar_errf(e, AR_ERR_IO, "cannot write %s: %s", side, strerror(errno));
    int ok = fprintf(f, "%s  %s\n", hex, base) > 0;
    if (fclose(f) != 0) ok = 0;
    return ok ? AR_OK : ar_errf(e, AR_ERR_IO, "cannot write %s: %s", side, strerror(errno));
}

/* ---- the transfer ---------------------------------------------------------------------- */

typedef struct dl {
    const ar_pull_params *p;
    ar_err *e;
    const char *part_path;
    FILE *f;
    EVP_MD_CTX *md;
    uint64_t written;  /* bytes in the part file now */
    uint64_t resumed;  /* bytes in the part when the current request started */
    uint64_t received; /* body bytes received in this call, every request */
    int64_t expected_size;
    char expected_sha[65];
    /* per response */
    long status;
    int64_t content_length, range_start, range_total;
    bool body_started;
    char error_code[64];
    char body[256]; /* start of an error response's body, for messages */
    size_t body_len;
    /* why a callback stopped the transfer */
    ar_status stop;
} dl;

static void trim(const char **s, size_t *n) {
    while (*n && (**s == ' ' || **s == '\t')) (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == '\r' || (*s)[*n - 1] == '\n' || (*s)[*n - 1] == ' ')) (*n)--;
}

static int64_t parse_u63(const char *s, size_t n) {
    if (n == 0 || n > 18) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static bool header_is(const char *line, size_t n, const char *name, const char **val,
                      size_t *vlen) {
    size_t k = strlen(name);
    if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0) return false;
    *val = line + k + 1;
    *vlen = n - k - 1;
    trim(val, vlen);
    return true;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *user) {
    dl *d = user;
    size_t n = size * nitems;
    const char *v;
    size_t vn;
    char tmp[160];
    if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        const char *sp = memchr(buf, ' ', n);
        d->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        d->content_length = d->range_start = d->range_total = -1;
        d->body_started = false;
        d->body_len = 0;
        d->error_code[0] = 0;
    } else if (header_is(buf, n, "X-Linked-Etag", &v, &vn) || header_is(buf, n, "ETag", &v, &vn)) {
        /* X-Linked-Etag wins: it is the LFS file's sha256 where ETag may be the pointer's. */
        bool linked = tolower((unsigned char)buf[0]) == 'x';
        if ((linked || !d->expected_sha[0]) && copy_part(tmp, sizeof tmp, v, vn)) {
            char sha[65];
            if (ar_hub_etag_sha256(tmp, sha)) memcpy(d->expected_sha, sha, sizeof sha);
        }
    } else if (header_is(buf, n, "X-Linked-Size", &v, &vn)) {
        int64_t s = parse_u63(v, vn);
        if (s >= 0) d->expected_size = s;
    } else if (header_is(buf, n, "Content-Length", &v, &vn)) {
        d->content_length = parse_u63(v, vn);
    } else if (header_is(buf, n, "Content-Range", &v, &vn)) {
        /* "bytes START-END/TOTAL", or "bytes (star)/TOTAL" on a 416 */
        if (vn > 6 && strncmp(v, "bytes ", 6) == 0) {
            const char *r = v + 6, *end = v + vn;
            const char *dash = memchr(r, '-', (size_t)(end - r));
            const char *sl = memchr(r, '/', (size_t)(end - r));
            if (dash && sl && dash < sl) d->range_start = parse_u63(r, (size_t)(dash - r));
            if (sl) d->range_total = parse_u63(sl + 1, (size_t)(end - sl - 1));
        }
    } else if (header_is(buf, n, "X-Error-Code", &v, &vn)) {
        copy_part(d->error_code, sizeof d->error_code, v, vn < 63 ? vn : 63);
    }
    return n;
}

static ar_status reset_part(dl *d) {
    if (fflush(d->f) != 0 || ftruncate(fileno(d->f), 0) != 0 || fseeko(d->f, 0, SEEK_SET) != 0)
        return ar_errf(d->e, AR_ERR_IO, "cannot truncate %s: %s", d->part_path, strerror(errno));
    if (!EVP_DigestInit_ex(d->md, EVP_sha256(), NULL))
        return ar_errf(d->e, AR_ERR_INTERNAL, "sha256 init failed");
    d->written = d->resumed = 0;
    return AR_OK;
}

/* The whole file's size, once some response has told it. */
static int64_t total_size(const dl *d) {
    if (d->expected_size >= 0) return d->expected_size;
    if (d->status == 206 && d->range_total >= 0) return d->range_total;
    if (d->status == 200 && d->content_length >= 0) return d->content_length;
    return -1;
}

static size_t on_body(char *buf, size_t size, size_t nmemb, void *user) {
    dl *d = user;
    size_t n = size * nmemb;
    if (d->status != 200 && d->status != 206) {
        size_t room = sizeof d->body - 1 - d->body_len, k = n < room ? n : room;
        memcpy(d->body + d->body_len, buf, k);
        d->body_len += k;
        d->body[d->body_len] = 0;
        return n;
    }
    if (!d->body_started) {
        d->body_started = true;
        if (d->status == 200 && d->written > 0) {
            /* The server ignored our Range header: start over. */
            if ((d->stop = reset_part(d)) != AR_OK) return 0;
        } else if (d->status == 206 && d->range_start != (int64_t)d->written) {
            d->stop = ar_errf(d->e, AR_ERR_NETWORK,
                              "server resumed at byte %" PRId64 ", not %" PRIu64
                              " as asked; delete %s and run again",
                              d->range_start, d->written, d->part_path);
            return 0;
        }
    }
    int64_t total = total_size(d);
    if (total >= 0 && d->written + n > (uint64_t)total) {
        d->stop = ar_errf(d->e, AR_ERR_NETWORK,
                          "server sent more than the %" PRId64 " bytes it announced", total);
        return 0;
    }
    if (fwrite(buf, 1, n, d->f) != n) {
        d->stop = ar_errf(d->e, AR_ERR_IO, "writing %s: %s", d->part_path, strerror(errno));
        return 0;
    }
    EVP_DigestUpdate(d->md, buf, n);
    d->written += n;
    d->received += n;
    return n;
}

static int report(dl *d, ar_pull_phase phase) {
    if (!d->p->progress) return 0;
    int64_t total = total_size(d);
    ar_pull_progress pr = {.phase = phase,
                           .done = d->written,
                           .total = total > 0 ? (uint64_t)total : 0,
                           .resumed = d->resumed};
    return d->p->progress(d->p->user, &pr);
}

static int on_xfer(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                   curl_off_t ulnow) {
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    dl *d = user;
    if (d->status != 200 && d->status != 206) return 0;
    if (report(d, AR_PULL_DOWNLOADING)) {
        d->stop = ar_errf(d->e, AR_ERR_CANCELLED, "download cancelled; %s is kept for resuming",
                          d->part_path);
        return 1;
    }
    return 0;
}

/* Same scheme, host and port. */
static bool same_origin(const char *a, const char *b) {
    CURLU *ua = curl_url(), *ub = curl_url();
    bool same = false;
    if (ua && ub && curl_url_set(ua, CURLUPART_URL, a, 0) == CURLUE_OK &&
        curl_url_set(ub, CURLUPART_URL, b, 0) == CURLUE_OK) {
        same = true;
        static const CURLUPart parts[] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT};
        for (int i = 0; i < 3 && same; i++) {
            char *x = NULL, *y = NULL;
            curl_url_get(ua, parts[i], &x, CURLU_DEFAULT_PORT);
            curl_url_get(ub, parts[i], &y, CURLU_DEFAULT_PORT);
            same = x && y && strcasecmp(x, y) == 0;
            curl_free(x);
            curl_free(y);
        }
    }
    curl_url_cleanup(ua);
    curl_url_cleanup(ub);
    return same;
}

/* "https://host:port" of url, for messages. */
static void origin_of(const char *url, char *out, size_t cap) {
    snprintf(out, cap, "%s", url);
    char *p = strstr(out, "://");
    if (p && (p = strchr(p + 3, '/'))) *p = 0;
}

typedef struct request {
    const char *endpoint;
    const char *token;
    const char *file;
    const char *url;
} request;

static ar_status curl_failure(dl *d, const request *rq, CURLcode rc, const char *url,
                              const char *curlmsg) {
    char origin[URL_CAP];
    origin_of(url, origin, sizeof origin);
    const char *why = curlmsg[0] ? curlmsg : curl_easy_strerror(rc);
    if (d->stop != AR_OK) return d->stop;
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return ar_errf(d->e, AR_ERR_NETWORK,
                       "cannot reach %s (%s): check your network or set HF_ENDPOINT to a "
                       "mirror; or download %s yourself and pass its path with -m / set "
                       "ARCHROUTER_MODEL",
                       origin, why, rq->file);
    case CURLE_OPERATION_TIMEDOUT:
        if (!d->body_started)
            return ar_errf(d->e, AR_ERR_NETWORK,
                           "cannot reach %s (%s): check your network or set HF_ENDPOINT to a "
                           "mirror",
                           origin, why);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
        return ar_errf(d->e, AR_ERR_NETWORK,
                       "TLS error talking to %s (%s): check the system's CA certificates and "
                       "clock, or any proxy in between",
                       origin, why);
    default: break;
    }
    int64_t total = total_size(d);
    char of[48] = "";
    if (total >= 0) snprintf(of, sizeof of, " of %" PRId64, total);
    return ar_errf(d->e, AR_ERR_NETWORK,
                   "download from %s broke off after %" PRIu64 "%s bytes (%s); run the same "
                   "command again to resume (%s is kept)",
                   origin, d->written, of, why, d->part_path);
}

/* One GET, following redirects by hand. On AR_OK d->status holds the final status (which
 * may be an HTTP error for the caller to explain). */
static ar_status fetch(dl *d, CURL *h, const request *rq) {
    char url[URL_CAP];
    snprintf(url, sizeof url, "%s", rq->url);
    char range[64], auth[1024], agent[64];
    snprintf(agent, sizeof agent, "archrouter/%s", ar_version());
    snprintf(range, sizeof range, "Range: bytes=%" PRIu64 "-", d->written);
    bool send_token =
        rq->token && *rq->token &&
        (size_t)snprintf(auth, sizeof auth, "Authorization: Bearer %s", rq->token) < sizeof auth;
    for (int hop = 0;; hop++) {
        struct curl_slist *hdrs = NULL, *t;
        bool ok = (t = curl_slist_append(hdrs, "Accept-Encoding: identity")) && (hdrs = t);
        if (ok && d->written > 0) ok = (t = curl_slist_append(hdrs, range)) && (hdrs = t);
        if (ok && send_token && same_origin(url, rq->endpoint))
            ok = (t = curl_slist_append(hdrs, auth)) && (hdrs = t);
        if (!ok) {
            curl_slist_free_all(hdrs);
            return ar_errf(d->e, AR_ERR_NOMEM, "out of memory building a request");
        }
        char curlmsg[CURL_ERROR_SIZE] = "";
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_USERAGENT, agent);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, d->p->connect_timeout_s);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, d->p->low_speed_bytes);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, d->p->low_speed_time_s);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curlmsg);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, d);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, d);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xfer);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, d);
        d->status = 0;
        d->resumed = d->written;
        d->body_started = false;
        CURLcode rc = curl_easy_perform(h);
        curl_slist_free_all(hdrs);
        if (rc != CURLE_OK) return curl_failure(d, rq, rc, url, curlmsg);
        if (d->status < 300 || d->status >= 400 || d->status == 304) return AR_OK;
        char *next = NULL;
        if (curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &next) != CURLE_OK || !next)
            return ar_errf(d->e, AR_ERR_NETWORK, "HTTP %ld redirect without a Location from %s",
                           d->status, url);
        if (hop >= d->p->max_redirects)
            return ar_errf(d->e, AR_ERR_NETWORK, "more than %d redirects from %s",
                           d->p->max_redirects, rq->url);
        if ((size_t)snprintf(url, sizeof url, "%s", next) >= sizeof url)
            return ar_errf(d->e, AR_ERR_NETWORK, "redirect URL too long");
    }
}

/* An HTTP error status as a message that says what to do. */
static ar_status http_failure(dl *d, const request *rq, const ar_hub_ref *r) {
    long st = d->status;
    char what[1600];
    snprintf(what, sizeof what, "repository '%s/%s', revision '%s', file '%s'", r->owner, r->name,
             r->revision, r->file);
    if (st == 401 || st == 403) {
        if (rq->token && *rq->token)
            return ar_errf(d->e, AR_ERR_AUTH,
                           "access denied (HTTP %ld) to %s with the token in HF_TOKEN: check "
                           "that it is valid and that your account accepted the model's terms",
                           st, what);
        return ar_errf(d->e, AR_ERR_AUTH,
                       "access denied (HTTP %ld) to %s: the model is gated or private, or the "
                       "name is wrong; accept its terms on the hub and set HF_TOKEN to an "
                       "access token",
                       st, what);
    }
    if (st == 404) {
        const char *c = d->error_code;
        const char *hint = strcmp(c, "RepoNotFound") == 0       ? "the repository does not exist"
                           : strcmp(c, "RevisionNotFound") == 0 ? "the revision does not exist"
                           : strcmp(c, "EntryNotFound") == 0
                               ? "the file is not in the repository"
                               : "the repository or file does not exist";
        return ar_errf(d->e, AR_ERR_NOT_FOUND, "not found (HTTP 404: %s): %s at %s", hint, what,
                       rq->url);
    }
    for (size_t i = 0; i < d->body_len; i++)
        if ((unsigned char)d->body[i] < 32) d->body[i] = ' ';
    return ar_errf(d->e, AR_ERR_NETWORK, "%s answered HTTP %ld for %s%s%s", rq->url, st, what,
                   d->body_len ? ": " : "", d->body_len ? d->body : "");
}

/* Hash the bytes already in the part file (resuming). */
static ar_status hash_existing(dl *d) {
    static const size_t chunk = 1 << 20;
    unsigned char *buf = malloc(chunk);
    if (!buf) return ar_errf(d->e, AR_ERR_NOMEM, "out of memory");
    ar_status st = AR_OK;
    d->written = 0;
    if (fseeko(d->f, 0, SEEK_SET) != 0) st = AR_ERR_IO;
    size_t n;
    int k = 0;
    while (st == AR_OK && (n = fread(buf, 1, chunk, d->f)) > 0) {
        EVP_DigestUpdate(d->md, buf, n);
        d->written += n;
        d->resumed = d->written;
        if ((++k & 63) == 0 && report(d, AR_PULL_CHECKING)) {
            st = ar_errf(d->e, AR_ERR_CANCELLED, "cancelled");
            break;
        }
    }
    if (st == AR_OK && ferror(d->f))
        st = ar_errf(d->e, AR_ERR_IO, "reading %s: %s", d->part_path, strerror(errno));
    else if (st == AR_ERR_IO)
        st = ar_errf(d->e, AR_ERR_IO, "seeking in %s: %s", d->part_path, strerror(errno));
    free(buf);
    if (st == AR_OK && fseeko(d->f, 0, SEEK_END) != 0)
        st = ar_errf(d->e, AR_ERR_IO, "seeking in %s: %s", d->part_path, strerror(errno));
    return st;
}

/* Check the part (size, sha256) and move it to its final name. */
static ar_status finish(dl *d, const char *final_path, const ar_hub_ref *r, ar_pull_result *res) {
    char got[65];
    if (!digest_so_far(d->md, got)) return ar_errf(d->e, AR_ERR_INTERNAL, "sha256 failed");
    if (d->expected_sha[0] && strcmp(got, d->expected_sha) != 0) {
        unlink(d->part_path);
        return ar_errf(d->e, AR_ERR_CHECKSUM,
                       "checksum mismatch for %s: expected sha256 %s, got %s; the partial "
                       "download was deleted, run the same command again to retry",
                       final_path, d->expected_sha, got);
    }
    if (fflush(d->f) != 0 || fsync(fileno(d->f)) != 0)
        return ar_errf(d->e, AR_ERR_IO, "writing %s: %s", d->part_path, strerror(errno));
    if (rename(d->part_path, final_path) != 0)
        return ar_errf(d->e, AR_ERR_IO, "cannot rename %s to %s: %s", d->part_path, final_path,
                       strerror(errno));
    ar_status st = write_sidecar(final_path, r->file, got, d->e);
    if (st != AR_OK) return st;
    snprintf(res->path, sizeof res->path, "%s", final_path);
    memcpy(res->sha256, d->expected_sha[0] ? d->expected_sha : got, 65);
    res->size = d->written;
    res->downloaded = true;
    return AR_OK;
}

static ar_status download(dl *d, const request *rq, const ar_hub_ref *r, const char *final_path,
                          ar_pull_result *res) {
    CURL *h = curl_easy_init();
    if (!h) return ar_errf(d->e, AR_ERR_NOMEM, "cannot start libcurl");
    ar_status st = AR_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        st = fetch(d, h, rq);
        if (st != AR_OK) break;
        if (d->status == 416 && d->resumed > 0) {
            /* Nothing left to send: the part may be whole already. */
            if (d->range_total >= 0 && d->expected_size < 0) d->expected_size = d->range_total;
            if (d->expected_size == (int64_t)d->written) break;
            if ((st = reset_part(d)) != AR_OK) break;
            continue;
        }
        if (d->status != 200 && d->status != 206) {
            st = http_failure(d, rq, r);
            break;
        }
        if (!d->body_started && d->status == 200 && d->written > 0 && (st = reset_part(d)) != AR_OK)
            break; /* an empty 200 to a ranged request: the file is empty */
        break;
    }
    curl_easy_cleanup(h);
    if (st != AR_OK) return st;
    if (d->status == 416 && d->expected_size != (int64_t)d->written)
        return ar_errf(d->e, AR_ERR_NETWORK, "server refuses the range request (HTTP 416)");
    int64_t total = total_size(d);
    if (total >= 0 && (uint64_t)total != d->written)
        return ar_errf(d->e, AR_ERR_NETWORK,
                       "download ended after %" PRIu64 " of %" PRId64
                       " bytes; run the same command again to resume (%s is kept)",
                       d->written, total, d->part_path);
    report(d, AR_PULL_DOWNLOADING);
    return finish(d, final_path, r, res);
}

/* ---- public API ------------------------------------------------------------------------ */

ar_pull_params ar_pull_default_params(void) {
    ar_pull_params p;
    memset(&p, 0, sizeof p);
    p.use_hf_cache = true;
    p.connect_timeout_s = 30;
    p.low_speed_bytes = 1024;
    p.low_speed_time_s = 60;
    p.max_redirects = 10;
    return p;
}

static void set_errbuf(char *errbuf, size_t errcap, const ar_err *e) {
    if (errbuf && errcap) snprintf(errbuf, errcap, "%s", e->msg);
}

static ar_status cached_result(const char *path, bool hf, ar_pull_result *res) {
    struct stat st;
    if (stat(path, &st) != 0) return AR_ERR_NOT_FOUND;
    snprintf(res->path, sizeof res->path, "%s", path);
    res->size = (uint64_t)st.st_size;
    res->from_hf_cache = hf;
    if (!hf) read_sidecar(path, res->sha256);
    return AR_OK;
}

static ar_status pull(const char *ref, const ar_pull_params *p, ar_pull_result *res, ar_err *e) {
    ar_hub_ref r;
    ar_status st = ar_hub_parse_ref(ref, &r, e);
    if (st != AR_OK) return st;
    char cache[PATH_CAP], final_path[PATH_CAP], part[PATH_CAP + 8];
    if ((st = ar_hub_cache_dir(p->cache_dir, cache, sizeof cache, e)) != AR_OK ||
        (st = ar_hub_cache_path(cache, &r, final_path, sizeof final_path, e)) != AR_OK)
        return st;
    if (!p->force) {
        if (is_regular_file(final_path)) return cached_result(final_path, false, res);
        char hub[PATH_CAP], found[PATH_CAP];
        if (p->use_hf_cache &&
            ar_hub_hf_cache_dir(p->hf_hub_cache, hub, sizeof hub, NULL) == AR_OK &&
            ar_hub_find_hf_cached(hub, &r, found, sizeof found) == AR_OK)
            return cached_result(found, true, res);
    }
    snprintf(part, sizeof part, "%s.part", final_path);
    if ((st = make_parent_dirs(final_path, e)) != AR_OK) return st;

    const char *endpoint = p->endpoint && *p->endpoint ? p->endpoint
                           : env("HF_ENDPOINT")        ? env("HF_ENDPOINT")
                                                       : AR_PULL_DEFAULT_ENDPOINT;
    size_t elen = strlen(endpoint);
    while (elen && endpoint[elen - 1] == '/') elen--;
    char url[URL_CAP];
    if ((size_t)snprintf(url, sizeof url, "%.*s/%s/%s/resolve/%s/%s", (int)elen, endpoint, r.owner,
                         r.name, r.revision, r.file) >= sizeof url)
        return ar_errf(e, AR_ERR_INVALID_ARG, "HF_ENDPOINT too long");
    request rq = {.endpoint = url,
                  .token = p->token ? p->token : env("HF_TOKEN"),
                  .file = r.file,
                  .url = url};

    int fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ar_errf(e, AR_ERR_IO, "cannot open %s: %s", part, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return ar_errf(e, AR_ERR_IO, "%s is being downloaded by another process", part);
    }
    dl d = {.p = p, .e = e, .part_path = part, .expected_size = -1};
    d.f = fdopen(fd, "r+b");
    d.md = EVP_MD_CTX_new();
    if (!d.f || !d.md || !EVP_DigestInit_ex(d.md, EVP_sha256(), NULL)) {
        st = ar_errf(e, AR_ERR_NOMEM, "out of memory");
    } else if (p->force) {
        st = reset_part(&d);
    } else {
        st = hash_existing(&d);
    }
    if (st == AR_OK) st = download(&d, &rq, &r, final_path, res);
    res->bytes_received = d.received;
    res->resumed_from = d.resumed;
    EVP_MD_CTX_free(d.md);
    if (st != AR_OK && d.written == 0) unlink(part); /* nothing worth resuming */
    if (d.f) {
        if (fclose(d.f) != 0 && st == AR_OK)
            st = ar_errf(e, AR_ERR_IO, "closing %s: %s", part, strerror(errno));
    } else {
        close(fd);
    }
    return st;
}

ar_status ar_pull(const char *ref, const ar_pull_params *params, ar_pull_result *result,
                  char *errbuf, size_t errcap) {
    ar_err e = {{0}};
    if (errbuf && errcap) errbuf[0] = 0;
    if (!result) {
        ar_errf(&e, AR_ERR_INVALID_ARG, "ar_pull: result is NULL");
        set_errbuf(errbuf, errcap, &e);
        return AR_ERR_INVALID_ARG;
    }
    memset(result, 0, sizeof *result);
    ar_pull_params defaults = ar_pull_default_params();
    ar_status st = pull(ref, params ? params : &defaults, result, &e);
    if (st != AR_OK) {
        uint64_t received = result->bytes_received, resumed = result->resumed_from;
        memset(result, 0, sizeof *result);
        result->bytes_received = received;
        result->resumed_from = resumed;
        set_errbuf(errbuf, errcap, &e);
    }
    return st;
}

ar_status ar_model_resolve(const char *ref_or_path, const ar_pull_params *params, char *path_out,
                           size_t cap, char *errbuf, size_t errcap) {
    ar_err e = {{0}};
    ar_status st = AR_OK;
    if (errbuf && errcap) errbuf[0] = 0;
    if (path_out && cap) path_out[0] = 0;
    ar_pull_params defaults = ar_pull_default_params();
    const ar_pull_params *p = params ? params : &defaults;
    struct stat sb;
    char found[PATH_CAP] = "";
    ar_hub_ref r;
    if (!path_out) {
        st = ar_errf(&e, AR_ERR_INVALID_ARG, "ar_model_resolve: path_out is NULL");
    } else if (ref_or_path && *ref_or_path && stat(ref_or_path, &sb) == 0) {
        snprintf(found, sizeof found, "%s", ref_or_path);
    } else if (ar_hub_parse_ref(ref_or_path, &r, &e) != AR_OK) {
        st = ar_errf(&e, AR_ERR_NOT_FOUND,
                     "%s: no such file or folder (nor a hub reference OWNER/NAME[:FILE])",
                     ref_or_path);
    } else {
        char cache[PATH_CAP], hub[PATH_CAP];
        if (ar_hub_cache_dir(p->cache_dir, cache, sizeof cache, NULL) == AR_OK &&
            ar_hub_cache_path(cache, &r, found, sizeof found, NULL) == AR_OK &&
            is_regular_file(found)) {
            /* found */
        } else if (!(p->use_hf_cache &&
                     ar_hub_hf_cache_dir(p->hf_hub_cache, hub, sizeof hub, NULL) == AR_OK &&
                     ar_hub_find_hf_cached(hub, &r, found, sizeof found) == AR_OK)) {
            const char *shown = ref_or_path && *ref_or_path ? ref_or_path : "";
            st = ar_errf(&e, AR_ERR_NOT_FOUND,
                         "model %s/%s:%s is not downloaded: run 'archrouter pull%s%s' or pass "
                         "the path of a model file",
                         r.owner, r.name, r.file, *shown ? " " : "", shown);
        }
    }
    if (st == AR_OK && strlen(found) >= cap)
        st = ar_errf(&e, AR_ERR_BUFFER_TOO_SMALL, "path needs %zu bytes", strlen(found) + 1);
    if (st == AR_OK)
        memcpy(path_out, found, strlen(found) + 1);
    else
        set_errbuf(errbuf, errcap, &e);
    return st;
}
