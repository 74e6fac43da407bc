/*
 * messages.h - the OpenAI chat `messages` array, parsed into owned {role, content} pairs.
 *
 * Input: a JSON array of messages, or a whole chat-completions request object (its
 * `messages` member is taken; everything else is ignored). Each message is an object with a
 * `role` (system, developer, user, assistant, tool, function) and a `content` that is a
 * string, null/absent, or an array of parts. Text parts ({"type": "text", "text": ...}) are
 * joined with "\n"; other parts (image_url, input_audio, file, refusal, ...) are dropped.
 * Nothing is filtered here: the router decides which messages the routing prompt sees.
 *
 * Strings: jansson rejects invalid UTF-8 and "\u0000" while parsing, so every content
 * string is valid UTF-8 without NUL bytes; the parser relies on that.
 *
 * Errors name the message index and field: "messages[3].content: expected a string, null or
 * an array of parts". Statuses: AR_ERR_FORMAT (not JSON, wrong shape), AR_ERR_LIMIT (caps
 * below), AR_ERR_NOMEM, AR_ERR_INVALID_ARG.
 */
#ifndef AR_ROUTER_MESSAGES_H
#define AR_ROUTER_MESSAGES_H

#include "archrouter.h"
#include "base/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define AR_MSG_MAX_MESSAGES    10000       /* messages in one conversation */
#define AR_MSG_MAX_PARTS       1024        /* content parts in one message */
#define AR_MSG_MAX_INPUT_BYTES (64u << 20) /* JSON text given to ar_messages_parse */

typedef enum ar_msg_role {
    AR_MSG_SYSTEM = 0,
    AR_MSG_DEVELOPER = 1,
    AR_MSG_USER = 2,
    AR_MSG_ASSISTANT = 3,
    AR_MSG_TOOL = 4,
    AR_MSG_FUNCTION = 5
} ar_msg_role;

typedef struct ar_msg {
    ar_msg_role role;
    char *content;      /* owned, NUL-terminated; "" for null/absent content or no text parts */
    size_t content_len; /* strlen(content) */
    bool content_null;  /* content was null or absent (an assistant tool-call turn) */
} ar_msg;

typedef struct ar_msg_list {
    ar_msg *msgs; /* owned; NULL when n == 0 */
    size_t n;
} ar_msg_list;

/* Parse json[0..len) (a messages array or a request object holding one) into *out.
 * On AR_OK *out owns the messages (release with ar_msg_list_free); on failure *out is empty
 * and err (may be NULL) says what and where. */
ar_status ar_messages_parse(const char *json, size_t len, ar_msg_list *out, ar_err *err);

/* The same from an already parsed JSON value (array or request object); borrowed. */
ar_status ar_messages_from_json(const json_t *value, ar_msg_list *out, ar_err *err);

/* Free the messages and empty the list. NULL is a no-op. */
void ar_msg_list_free(ar_msg_list *list);

/* "system", "developer", "user", "assistant", "tool", "function"; "?" out of range. */
const char *ar_msg_role_name(ar_msg_role role);

#endif
