/*
 * request.c - validation of chat completions request bodies and the byte-exact rewrite of
 * their `model` value (see request.h).
 *
 * The rewrite scanner only has to find value boundaries in text jansson already accepted:
 * a string ends at the first unescaped quote, an array or object at the bracket that brings
 * the nesting depth back to zero (brackets inside strings skipped), and a scalar at the
 * next ',', '}' or ']' or whitespace. Any surprise is reported, never read past the end.
 */
#include "gateway/request.h"

#include <stdlib.h>
#include <string.h>

ar_status ar_gw_request_parse(const char *body, size_t len, ar_gw_request *out, ar_err *err) {
    memset(out, 0, sizeof *out);
    if (!body) return ar_errf(err, AR_ERR_FORMAT, "empty request body");
    /* jansson stops at a raw NUL byte and may accept what comes before: refuse it here, so
       what is validated is the whole body that gets forwarded. */
    if (memchr(body, 0, len))
        return ar_errf(err, AR_ERR_FORMAT, "the request body contains a NUL byte (offset %zu)",
                       (size_t)((const char *)memchr(body, 0, len) - body));
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return ar_errf(err, AR_ERR_FORMAT, "invalid JSON at line %d, column %d: %s", je.line,
                       je.column, je.text);
    ar_status st = AR_ERR_FORMAT;
    if (!json_is_object(root)) {
        ar_errf(err, st, "the request body must be a JSON object");
        goto fail;
    }
    json_t *model = json_object_get(root, "model");
    if (model && !json_is_string(model)) {
        ar_errf(err, st, "model: expected a string");
        goto fail;
    }
    if (model && json_string_length(model) == 0) {
        ar_errf(err, st, "model: must not be empty");
        goto fail;
    }
    json_t *stream = json_object_get(root, "stream");
    if (stream && !json_is_boolean(stream) && !json_is_null(stream)) {
        ar_errf(err, st, "stream: expected a boolean");
        goto fail;
    }
    json_t *msgs = json_object_get(root, "messages");
    if (!msgs) {
        ar_errf(err, st, "messages: missing (a chat request needs a messages array)");
        goto fail;
    }
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        ar_errf(err, st, "messages: expected a non-empty array");
        goto fail;
    }
    st = ar_messages_from_json(root, &out->msgs, err);
    if (st != AR_OK) goto fail;
    out->root = root;
    out->model = model ? json_string_value(model) : NULL;
    out->stream = stream && json_is_true(stream);
    return AR_OK;
fail:
    json_decref(root);
    memset(out, 0, sizeof *out);
    return st;
}

void ar_gw_request_free(ar_gw_request *r) {
    if (!r) return;
    ar_msg_list_free(&r->msgs);
    json_decref(r->root);
    memset(r, 0, sizeof *r);
}

static size_t skip_ws(const char *s, size_t i, size_t n) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

/* s[i] == '"': the index after the closing quote, or n when unterminated. */
static size_t skip_string(const char *s, size_t i, size_t n) {
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n + 1;
}

/* The index after the value starting at s[i], or > n when it does not end. */
static size_t skip_value(const char *s, size_t i, size_t n) {
    if (i >= n) return n + 1;
    if (s[i] == '"') return skip_string(s, i, n);
    if (s[i] == '{' || s[i] == '[') {
        size_t depth = 0;
        while (i < n) {
            char c = s[i];
            if (c == '"') {
                i = skip_string(s, i, n);
                continue;
            }
            if (c == '{' || c == '[') depth++;
            if (c == '}' || c == ']') {
                if (--depth == 0) return i + 1;
            }
            i++;
        }
        return n + 1;
    }
    while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
           s[i] != '\n' && s[i] != '\r')
        i++;
    return i;
}

/* Does the JSON string literal s[a..b) (quotes included) decode to "model"? */
static bool key_is_model(const char *s, size_t a, size_t b) {
    if (b - a == 7 && memcmp(s + a, "\"model\"", 7) == 0) return true;
    if (!memchr(s + a, '\\', b - a)) return false;
    json_t *k = json_loadb(s + a, b - a, JSON_DECODE_ANY, NULL);
    bool yes = k && json_is_string(k) && strcmp(json_string_value(k), "model") == 0;
    json_decref(k);
    return yes;
}

ar_status ar_gw_request_rewrite(const char *body, size_t len, const char *model, char **out,
                                size_t *out_len, ar_err *err) {
    *out = NULL;
    *out_len = 0;
    json_t *mv = json_string(model);
    char *lit = mv ? json_dumps(mv, JSON_ENCODE_ANY) : NULL;
    json_decref(mv);
    if (!lit) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    size_t i = skip_ws(body, 0, len), cut_a = 0, cut_b = 0;
    bool found = false, empty = false;
    if (i >= len || body[i] != '{') goto bad;
    size_t open = i++;
    i = skip_ws(body, i, len);
    if (i < len && body[i] == '}') empty = true;
    while (!empty && i < len) {
        if (body[i] != '"') goto bad;
        size_t ka = i;
        i = skip_string(body, i, len);
        if (i > len) goto bad;
        size_t kb = i;
        i = skip_ws(body, i, len);
        if (i >= len || body[i] != ':') goto bad;
        i = skip_ws(body, i + 1, len);
        size_t va = i;
        i = skip_value(body, i, len);
        if (i > len || i == va) goto bad;
        if (!found && key_is_model(body, ka, kb)) {
            found = true;
            cut_a = va;
            cut_b = i;
        }
        i = skip_ws(body, i, len);
        if (i >= len) goto bad;
        if (body[i] == '}') break;
        if (body[i] != ',') goto bad;
        i = skip_ws(body, i + 1, len);
    }
    if (i >= len) goto bad;
    const char *ins = "";
    if (!found) { /* insert `"model":LIT,` after the brace */
        cut_a = cut_b = open + 1;
        ins = empty ? "" : ",";
    }
    size_t ll = strlen(lit), il = strlen(ins), pre = found ? 0 : 8;
    size_t total = cut_a + pre + ll + il + (len - cut_b);
    char *o = malloc(total + 1);
    if (!o) {
        free(lit);
        return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    }
    memcpy(o, body, cut_a);
    size_t p = cut_a;
    if (!found) memcpy(o + p, "\"model\":", pre), p += pre;
    memcpy(o + p, lit, ll), p += ll;
    memcpy(o + p, ins, il), p += il;
    memcpy(o + p, body + cut_b, len - cut_b), p += len - cut_b;
    o[p] = 0;
    free(lit);
    *out = o;
    *out_len = p;
    return AR_OK;
bad:
    free(lit);
    return ar_errf(err, AR_ERR_FORMAT, "the request body is not a JSON object");
}
