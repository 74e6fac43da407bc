/*
 * messages.c - the OpenAI chat `messages` parser (contract in messages.h).
 *
 * jansson parses the text (validating UTF-8 and refusing "\u0000"); we then walk the array
 * once. A message's text is either its content string, copied, or the concatenation of its
 * text parts with "\n" between them, built in one allocation after a sizing pass. Every
 * error names messages[i] and the field, and the list is freed on any failure.
 */
#include "router/messages.h"

#include <stdlib.h>
#include <string.h>

static const char *const role_names[] = {
    [AR_MSG_SYSTEM] = "system", [AR_MSG_DEVELOPER] = "developer",
    [AR_MSG_USER] = "user",     [AR_MSG_ASSISTANT] = "assistant",
    [AR_MSG_TOOL] = "tool",     [AR_MSG_FUNCTION] = "function",
};

#define N_ROLES (sizeof role_names / sizeof role_names[0])

const char *ar_msg_role_name(ar_msg_role role) {
    return (unsigned)role < N_ROLES ? role_names[role] : "?";
}

void ar_msg_list_free(ar_msg_list *list) {
    if (!list) return;
    for (size_t i = 0; i < list->n; i++) free(list->msgs[i].content);
    free(list->msgs);
    list->msgs = NULL;
    list->n = 0;
}

static char *copy_text(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* A text part's string, or NULL for a part to drop; an error for a malformed part. */
static ar_status part_text(const json_t *part, size_t i, size_t j, const json_t **text,
                           ar_err *err) {
    *text = NULL;
    if (!json_is_object(part))
        return ar_errf(err, AR_ERR_FORMAT, "messages[%zu].content[%zu]: expected an object", i, j);
    const json_t *type = json_object_get(part, "type");
    if (!json_is_string(type))
        return ar_errf(err, AR_ERR_FORMAT, "messages[%zu].content[%zu].type: expected a string", i,
                       j);
    if (strcmp(json_string_value(type), "text") != 0) return AR_OK; /* image, audio, ... */
    const json_t *t = json_object_get(part, "text");
    if (!json_is_string(t))
        return ar_errf(err, AR_ERR_FORMAT, "messages[%zu].content[%zu].text: expected a string", i,
                       j);
    *text = t;
    return AR_OK;
}

/* Content as an array of parts: text parts joined with "\n". */
static ar_status join_parts(const json_t *parts, size_t i, ar_msg *m, ar_err *err) {
    size_t n = json_array_size(parts);
    if (n > AR_MSG_MAX_PARTS)
        return ar_errf(err, AR_ERR_LIMIT, "messages[%zu].content: %zu parts, more than %d", i, n,
                       AR_MSG_MAX_PARTS);
    size_t total = 0, texts = 0;
    const json_t *t;
    for (size_t j = 0; j < n; j++) {
        ar_status st = part_text(json_array_get(parts, j), i, j, &t, err);
        if (st != AR_OK) return st;
        if (t) total += json_string_length(t) + (texts++ ? 1 : 0);
    }
    char *buf = malloc(total + 1), *w = buf;
    if (!buf) return ar_errf(err, AR_ERR_NOMEM, "messages[%zu].content: out of memory", i);
    texts = 0;
    for (size_t j = 0; j < n; j++) {
        part_text(json_array_get(parts, j), i, j, &t, NULL); /* checked above */
        if (!t) continue;
        if (texts++) *w++ = '\n';
        memcpy(w, json_string_value(t), json_string_length(t));
        w += json_string_length(t);
    }
    *w = '\0';
    m->content = buf;
    m->content_len = total;
    return AR_OK;
}

static ar_status parse_message(const json_t *msg, size_t i, ar_msg *m, ar_err *err) {
    if (!json_is_object(msg))
        return ar_errf(err, AR_ERR_FORMAT, "messages[%zu]: expected an object", i);
    const json_t *role = json_object_get(msg, "role");
    if (!json_is_string(role))
        return ar_errf(err, AR_ERR_FORMAT, "messages[%zu].role: %s", i,
                       role ? "expected a string" : "missing");
    const char *r = json_string_value(role);
    size_t k = 0;
    while (k < N_ROLES && strcmp(r, role_names[k]) != 0) k++;
    if (k == N_ROLES)
        return ar_errf(err, AR_ERR_FORMAT,
                       "messages[%zu].role: unknown role '%.64s' (expected system, developer, "
                       "user, assistant, tool or function)",
                       i, r);
    m->role = (ar_msg_role)k;

    const json_t *content = json_object_get(msg, "content");
    if (!content || json_is_null(content)) {
        m->content_null = true;
        m->content = copy_text("", 0);
    } else if (json_is_string(content)) {
        m->content_len = json_string_length(content);
        m->content = copy_text(json_string_value(content), m->content_len);
    } else if (json_is_array(content)) {
        return join_parts(content, i, m, err);
    } else {
        return ar_errf(err, AR_ERR_FORMAT,
                       "messages[%zu].content: expected a string, null or an array of parts", i);
    }
    if (!m->content) return ar_errf(err, AR_ERR_NOMEM, "messages[%zu]: out of memory", i);
    return AR_OK;
}

ar_status ar_messages_from_json(const json_t *value, ar_msg_list *out, ar_err *err) {
    if (!out) return ar_errf(err, AR_ERR_INVALID_ARG, "ar_messages_from_json: out is NULL");
    out->msgs = NULL;
    out->n = 0;
    if (!value) return ar_errf(err, AR_ERR_INVALID_ARG, "ar_messages_from_json: value is NULL");
    const json_t *arr = value;
    if (json_is_object(value)) {
        arr = json_object_get(value, "messages");
        if (!arr) return ar_errf(err, AR_ERR_FORMAT, "messages: missing from the request");
        if (!json_is_array(arr)) return ar_errf(err, AR_ERR_FORMAT, "messages: expected an array");
    } else if (!json_is_array(value)) {
        return ar_errf(err, AR_ERR_FORMAT,
                       "messages: expected an array of messages or a request object");
    }
    size_t n = json_array_size(arr);
    if (n > AR_MSG_MAX_MESSAGES)
        return ar_errf(err, AR_ERR_LIMIT, "messages: %zu messages, more than %d", n,
                       AR_MSG_MAX_MESSAGES);
    if (n == 0) return AR_OK;
    out->msgs = calloc(n, sizeof *out->msgs);
    if (!out->msgs) return ar_errf(err, AR_ERR_NOMEM, "messages: out of memory");
    for (size_t i = 0; i < n; i++) {
        ar_status st = parse_message(json_array_get(arr, i), i, &out->msgs[i], err);
        out->n = i + 1; /* free whatever message i took, too */
        if (st != AR_OK) {
            ar_msg_list_free(out);
            return st;
        }
    }
    return AR_OK;
}

ar_status ar_messages_parse(const char *json, size_t len, ar_msg_list *out, ar_err *err) {
    if (!out) return ar_errf(err, AR_ERR_INVALID_ARG, "ar_messages_parse: out is NULL");
    out->msgs = NULL;
    out->n = 0;
    if (!json && len) return ar_errf(err, AR_ERR_INVALID_ARG, "ar_messages_parse: json is NULL");
    if (len > AR_MSG_MAX_INPUT_BYTES)
        return ar_errf(err, AR_ERR_LIMIT, "messages: %zu bytes of JSON, more than %u", len,
                       AR_MSG_MAX_INPUT_BYTES);
    json_error_t je;
    json_t *v = json_loadb(json ? json : "", len, 0, &je);
    if (!v)
        return ar_errf(err, AR_ERR_FORMAT, "messages: invalid JSON at line %d column %d: %s",
                       je.line, je.column, je.text);
    ar_status st = ar_messages_from_json(v, out, err);
    json_decref(v);
    return st;
}
