/*
 * prompt.h - the Arch-Router prompt: text, token ids and the cacheable head.
 *
 * The prompt is one user message in the Qwen2.5 chat template (DESIGN.md, "The Arch-Router
 * prompt"): chat header, instructions, the routes as JSON, the conversation as JSON, the
 * instruction tail, the assistant header. Two layouts differ in blank lines, two trailing
 * spaces and the JSON style. Only the template's own markers become control tokens; every
 * other byte (system prompt, routes, conversation) is tokenized as ordinary text, so no
 * message can inject <|im_start|>. Everything before the conversation JSON is the same
 * for every request with the same routes: its tokens are the prefix the router caches.
 */
#ifndef AR_ROUTER_PROMPT_H
#define AR_ROUTER_PROMPT_H

#include "archrouter.h"
#include "base/buf.h"
#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct ar_prompt_spec {
    const ar_tokenizer *tok;
    ar_prompt_layout layout;
    const char *system_prompt; /* NULL: no system block */
    int32_t im_start, im_end;  /* ids of <|im_start|> and <|im_end|> */
    const ar_route *routes;
    int32_t n_routes;
    int32_t budget; /* conversation tokens kept, newest first */
    bool body_only; /* only the user message's text, without the chat template around it
                       (what a remote router sends as its user message) */
} ar_prompt_spec;

typedef struct ar_prompt {
    char *text; /* NUL-terminated */
    size_t len;
    size_t conv_begin; /* byte offset of the conversation JSON */
    int32_t *ids;
    int32_t n_ids;
    int32_t n_prefix; /* ids that lie entirely before conv_begin */
    int32_t messages_used;
    bool truncated;
} ar_prompt;

/* Build the prompt of a conversation. spec->tok may be NULL (remote routers without a
 * tokenizer): the budget then counts archgw's estimate of bytes / 4 per message and the
 * prompt has no ids. Errors (with a message in err): an unknown role, a
 * text that is not UTF-8, no user message left after the rules, out of memory. */
ar_status ar_prompt_build(const ar_prompt_spec *spec, const ar_message *msgs, int32_t n,
                          ar_prompt *out, ar_err *err);

void ar_prompt_free(ar_prompt *p);

/* The default system prompt written by a Qwen-style chat template (the literal text in
 * '<|im_start|>system\n...<|im_end|>' when no system message is given), malloc'd, or NULL
 * when the template has none. */
char *ar_prompt_default_system(const char *chat_template);

/* The answer text for a route name: {"route": "NAME"} (double quotes, name as a JSON
 * string) or {'route': 'NAME'} (single quotes, the form the model has been seen to emit;
 * the name as written). Appends to b. */
void ar_prompt_answer(ar_buf *b, const char *name, bool single_quotes);

#endif
