/*
 * prompt.c - building the Arch-Router prompt (prompt.h).
 *
 * (1) Conversation rules: system, developer, tool and function messages and messages
 *     without text are left out; user and assistant messages stay in order. The newest
 *     messages whose content fits the token budget are kept; when even the newest one is
 *     longer, it keeps the head and the tail of its tokens (half the budget each), joined
 *     by "\n...\n" at UTF-8 character boundaries. Without a tokenizer (a remote router
 *     given none) a message counts bytes / 4 tokens, as archgw estimates, and a cut keeps
 *     budget * 2 bytes at each end.
 * (2) Text: the chat header, the instruction head, the routes JSON, the conversation JSON,
 *     the instruction tail and the assistant header, in the chosen layout. The template's
 *     control tokens are recorded as markers while the text is written.
 * (3) Tokens: the text between markers is tokenized as ordinary text (no added-token
 *     matching), the markers become their ids, as the reference tokenizer splits at added
 *     tokens before the pre-tokenizer. Then the head: the ids whose bytes end before the
 *     conversation JSON.
 * A body-only prompt (spec.body_only) is the user message's text alone, from the
 * instruction head to the end of the instructions, for servers that apply the chat
 * template themselves; the local prompt's bytes between the user header and <|im_end|>.
 */
#include "router/prompt.h"

#include "base/utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MARKERS 8

typedef struct marker {
    size_t offset;
    int32_t id;
} marker;

typedef struct builder {
    ar_buf text;
    marker markers[MAX_MARKERS];
    int n_markers;
} builder;

static void put_marker(builder *b, int32_t id, const char *text) {
    b->markers[b->n_markers].offset = b->text.len;
    b->markers[b->n_markers].id = id;
    b->n_markers++;
    ar_buf_puts(&b->text, text);
}

/* ---- (1) conversation rules ------------------------------------------------------------ */

typedef struct kept {
    const char *role;
    const char *text;
    size_t len;
    char *owned; /* a shortened copy, or NULL */
} kept;

static bool role_is(const char *role, const char *name) {
    return strcmp(role, name) == 0;
}

/* Tokens of text as ordinary characters, malloc'd into *ids. */
static ar_status tokenize_plain(const ar_tokenizer *tok, const char *text, size_t len,
                                int32_t **ids, size_t *n, ar_err *err) {
    *ids = malloc((len + 1) * sizeof **ids); /* a byte-level token has at least one byte */
    if (!*ids) return ar_errf(err, AR_ERR_NOMEM, "out of memory tokenizing the conversation");
    ar_status st = ar_tokenize(tok, text, len, 0, *ids, len + 1, n);
    if (st != AR_OK) {
        free(*ids);
        *ids = NULL;
        return ar_errf(err, st, "cannot tokenize the conversation: %s", ar_strerror(st));
    }
    return AR_OK;
}

/* Bytes of the UTF-8 text t[0..n) that form whole characters at the start (head) or end
 * (tail) of a cut. */
static size_t whole_head(const char *t, size_t n) {
    size_t i = n;
    while (i > 0 && ((unsigned char)t[i - 1] & 0xC0) == 0x80) i--; /* continuation bytes */
    if (i == 0) return 0;
    unsigned char lead = (unsigned char)t[i - 1];
    size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return n - (i - 1) >= need ? n : i - 1;
}

static size_t skip_partial(const char *t, size_t n) {
    size_t i = 0;
    while (i < n && ((unsigned char)t[i] & 0xC0) == 0x80) i++;
    return i;
}

/* The newest message is longer than the budget: keep its first and last tokens. */
static ar_status shorten(const ar_tokenizer *tok, kept *m, const int32_t *ids, size_t n_ids,
                         int32_t budget, ar_err *err) {
    size_t head = (size_t)budget / 2, tail = (size_t)budget - head;
    size_t cap = m->len + 8, hl = 0, tl = 0;
    char *out = malloc(cap), *tbuf = malloc(m->len + 1);
    if (!out || !tbuf) {
        free(out);
        free(tbuf);
        return ar_errf(err, AR_ERR_NOMEM, "out of memory shortening a message");
    }
    /* The pieces of the original's ids decode to at most the original's bytes. */
    ar_detokenize(tok, ids, head, out, m->len, &hl);
    ar_detokenize(tok, ids + n_ids - tail, tail, tbuf, m->len, &tl);
    hl = whole_head(out, hl);
    size_t skip = skip_partial(tbuf, tl);
    memcpy(out + hl, "\n...\n", 5);
    memmove(out + hl + 5, tbuf + skip, tl - skip);
    out[hl + 5 + tl - skip] = 0;
    free(tbuf);
    m->owned = out;
    m->text = out;
    m->len = hl + 5 + tl - skip;
    return AR_OK;
}

/* The same without a tokenizer: keep budget * 2 bytes of the head and of the tail. */
static ar_status shorten_bytes(kept *m, int32_t budget, ar_err *err) {
    size_t keep = (size_t)budget * 2;
    char *out = malloc(2 * keep + 6);
    if (!out) return ar_errf(err, AR_ERR_NOMEM, "out of memory shortening a message");
    size_t hl = whole_head(m->text, keep);
    const char *tail = m->text + m->len - keep;
    size_t skip = skip_partial(tail, keep);
    memcpy(out, m->text, hl);
    memcpy(out + hl, "\n...\n", 5);
    memcpy(out + hl + 5, tail + skip, keep - skip);
    out[hl + 5 + keep - skip] = 0;
    m->owned = out;
    m->text = out;
    m->len = hl + 5 + keep - skip;
    return AR_OK;
}

/* Apply the rules: *kept_out holds the messages to write (oldest first), *n_kept many. */
static ar_status select_messages(const ar_prompt_spec *spec, const ar_message *msgs, int32_t n,
                                 kept **kept_out, int32_t *n_kept, bool *truncated, ar_err *err) {
    kept *k = calloc(n > 0 ? (size_t)n : 1, sizeof *k);
    if (!k) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    int32_t m = 0;
    bool any_user = false;
    for (int32_t i = 0; i < n; i++) {
        const char *role = msgs[i].role;
        if (!role) {
            free(k);
            return ar_errf(err, AR_ERR_INVALID_INPUT, "messages[%d]: no role", (int)i);
        }
        bool keep = role_is(role, "user") || role_is(role, "assistant");
        if (!keep && !role_is(role, "system") && !role_is(role, "developer") &&
            !role_is(role, "tool") && !role_is(role, "function")) {
            free(k);
            return ar_errf(err, AR_ERR_INVALID_INPUT,
                           "messages[%d]: unknown role '%.40s' (expected user, assistant, "
                           "system, developer, tool or function)",
                           (int)i, role);
        }
        const char *c = msgs[i].content ? msgs[i].content : "";
        size_t len = strlen(c), bad = 0;
        if (!ar_utf8_valid((const uint8_t *)c, len, &bad)) {
            free(k);
            return ar_errf(err, AR_ERR_INVALID_INPUT, "messages[%d].content: not UTF-8 at byte %zu",
                           (int)i, bad);
        }
        if (!keep || len == 0) continue;
        any_user |= role_is(role, "user");
        k[m++] = (kept){.role = role, .text = c, .len = len};
    }
    if (!any_user) {
        free(k);
        return ar_errf(err, AR_ERR_INVALID_INPUT,
                       n == 0 ? "the conversation is empty"
                              : "the conversation has no user message with text");
    }
    /* Newest first, while the budget lasts. */
    int32_t first = m;
    int64_t used = 0;
    for (int32_t i = m - 1; i >= 0; i--) {
        int32_t *ids = NULL;
        size_t n_ids = k[i].len / 4; /* archgw's estimate when there is no tokenizer */
        ar_status st = AR_OK;
        if (spec->tok) st = tokenize_plain(spec->tok, k[i].text, k[i].len, &ids, &n_ids, err);
        if (st != AR_OK) {
            free(k);
            return st;
        }
        if (i == m - 1 && (int64_t)n_ids > spec->budget) {
            st = spec->tok ? shorten(spec->tok, &k[i], ids, n_ids, spec->budget, err)
                           : shorten_bytes(&k[i], spec->budget, err);
            free(ids);
            if (st != AR_OK) {
                free(k);
                return st;
            }
            first = i;
            *truncated = true;
            break;
        }
        free(ids);
        if (used + (int64_t)n_ids > spec->budget) {
            *truncated = true;
            break;
        }
        used += (int64_t)n_ids;
        first = i;
    }
    memmove(k, k + first, (size_t)(m - first) * sizeof *k);
    *kept_out = k;
    *n_kept = m - first;
    return AR_OK;
}

/* ---- (2) text ---------------------------------------------------------------------------- */

static const char INTRO[] =
    "\nYou are a helpful assistant designed to find the best suited route.\n"
    "You are provided with route description within <routes></routes> XML tags:\n"
    "<routes>\n";
static const char TASK[] =
    "Your task is to decide which route is best suit with user intent on the conversation in "
    "<conversation></conversation> XML tags.  Follow the instruction:\n"
    "1. If the latest intent from user is irrelevant or user intent is full filled, response "
    "with other route {\"route\": \"other\"}.\n"
    "2. You must analyze the route descriptions and find the best match route for user latest "
    "intent.";
static const char RULE3[] =
    "\n3. You only response the name of the route that best matches the user's request, use "
    "the exact name in the <routes></routes>.\n\n"
    "Based on your analysis, provide your response in the following JSON formats if you "
    "decide to match any route:\n"
    "{\"route\": \"route_name\"}";

static void json_field(ar_buf *b, const char *key, const char *value, bool card, bool first) {
    if (!first) ar_buf_puts(b, card ? ", " : ",");
    ar_buf_printf(b, "\"%s\"%s\"", key, card ? ": " : ":");
    ar_buf_json_string(b, value, strlen(value), card);
    ar_buf_puts(b, "\"");
}

static void write_text(builder *b, const ar_prompt_spec *spec, const kept *k, int32_t n_kept,
                       size_t *conv_begin) {
    bool card = spec->layout == AR_LAYOUT_CARD;
    const char *gap = card ? "\n\n" : "\n"; /* around each JSON block */
    ar_buf *t = &b->text;
    bool wrap = !spec->body_only;
    if (wrap && spec->system_prompt) {
        put_marker(b, spec->im_start, "<|im_start|>");
        ar_buf_puts(t, "system\n");
        ar_buf_puts(t, spec->system_prompt);
        put_marker(b, spec->im_end, "<|im_end|>");
        ar_buf_puts(t, "\n");
    }
    if (wrap) {
        put_marker(b, spec->im_start, "<|im_start|>");
        ar_buf_puts(t, "user\n");
    }
    ar_buf_puts(t, INTRO);
    if (card) ar_buf_puts(t, "\n");
    ar_buf_puts(t, "[");
    for (int32_t i = 0; i < spec->n_routes; i++) {
        if (i) ar_buf_puts(t, card ? ", " : ",");
        ar_buf_puts(t, "{");
        json_field(t, "name", spec->routes[i].name, card, true);
        json_field(t, "description", spec->routes[i].description, card, false);
        ar_buf_puts(t, "}");
    }
    ar_buf_puts(t, "]");
    ar_buf_puts(t, gap);
    ar_buf_puts(t, "</routes>\n\n<conversation>");
    ar_buf_puts(t, gap);
    *conv_begin = t->len;
    ar_buf_puts(t, "[");
    for (int32_t i = 0; i < n_kept; i++) {
        if (i) ar_buf_puts(t, card ? ", " : ",");
        ar_buf_puts(t, "{");
        json_field(t, "role", k[i].role, card, true);
        if (!t->oom) { /* the content may hold NULs after shortening: write it by length */
            ar_buf_puts(t, card ? ", \"content\": \"" : ",\"content\":\"");
            ar_buf_json_string(t, k[i].text, k[i].len, card);
            ar_buf_puts(t, "\"");
        }
        ar_buf_puts(t, "}");
    }
    ar_buf_puts(t, "]");
    ar_buf_puts(t, gap);
    ar_buf_puts(t, "</conversation>\n\n");
    ar_buf_puts(t, TASK);
    if (card) ar_buf_puts(t, " ");
    ar_buf_puts(t, RULE3);
    ar_buf_puts(t, card ? " \n" : "\n");
    if (!wrap) return;
    put_marker(b, spec->im_end, "<|im_end|>");
    ar_buf_puts(t, "\n");
    put_marker(b, spec->im_start, "<|im_start|>");
    ar_buf_puts(t, "assistant\n");
}

/* ---- (3) tokens ---------------------------------------------------------------------------- */

static ar_status tokenize_prompt(const builder *b, const ar_tokenizer *tok, ar_prompt *p,
                                 ar_err *err) {
    size_t cap = b->text.len + (size_t)b->n_markers + 1;
    p->ids = malloc(cap * sizeof *p->ids);
    if (!p->ids) return ar_errf(err, AR_ERR_NOMEM, "out of memory for the prompt's tokens");
    size_t at = 0, n = 0;
    for (int i = 0; i <= b->n_markers; i++) {
        size_t end = i < b->n_markers ? b->markers[i].offset : b->text.len;
        if (end > at) {
            size_t got = 0;
            ar_status st =
                ar_tokenize(tok, b->text.data + at, end - at, 0, p->ids + n, cap - n, &got);
            if (st != AR_OK)
                return ar_errf(err, st, "cannot tokenize the prompt: %s", ar_strerror(st));
            n += got;
        }
        if (i == b->n_markers) break;
        p->ids[n++] = b->markers[i].id;
        size_t mlen = 0;
        ar_token_bytes(tok, b->markers[i].id, &mlen);
        at = b->markers[i].offset + mlen;
    }
    p->n_ids = (int32_t)n;
    /* The head: ids whose bytes end at or before the conversation. */
    size_t bytes = 0;
    p->n_prefix = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        ar_token_bytes(tok, p->ids[i], &len);
        bytes += len;
        if (bytes > p->conv_begin) break;
        p->n_prefix = (int32_t)i + 1;
    }
    return AR_OK;
}

ar_status ar_prompt_build(const ar_prompt_spec *spec, const ar_message *msgs, int32_t n,
                          ar_prompt *out, ar_err *err) {
    *out = (ar_prompt){0};
    if (n < 0 || (n > 0 && !msgs))
        return ar_errf(err, AR_ERR_INVALID_ARG, "no messages (n = %d)", (int)n);
    kept *k = NULL;
    int32_t n_kept = 0;
    ar_status st = select_messages(spec, msgs, n, &k, &n_kept, &out->truncated, err);
    if (st != AR_OK) return st;
    builder b = {0};
    write_text(&b, spec, k, n_kept, &out->conv_begin);
    for (int32_t i = 0; i < n_kept; i++) free(k[i].owned);
    free(k);
    if (b.text.oom) {
        ar_buf_free(&b.text);
        return ar_errf(err, AR_ERR_NOMEM, "out of memory building the prompt");
    }
    out->text = b.text.data;
    out->len = b.text.len;
    out->messages_used = n_kept;
    if (!spec->tok) return AR_OK; /* text only */
    st = tokenize_prompt(&b, spec->tok, out, err);
    if (st != AR_OK) ar_prompt_free(out);
    return st;
}

void ar_prompt_free(ar_prompt *p) {
    free(p->text);
    free(p->ids);
    *p = (ar_prompt){0};
}

/* ---- the template's default system prompt ------------------------------------------------ */

char *ar_prompt_default_system(const char *tpl) {
    static const char open[] = "<|im_start|>system\\n", close[] = "<|im_end|>";
    if (!tpl) return NULL;
    for (const char *p = strstr(tpl, open); p; p = strstr(p + 1, open)) {
        const char *s = p + sizeof open - 1, *e = strstr(s, close);
        if (!e || e == s) continue;
        /* A literal: no quote or template syntax between the markers. */
        if (memchr(s, '\'', (size_t)(e - s)) || memchr(s, '"', (size_t)(e - s)) ||
            memchr(s, '{', (size_t)(e - s)))
            continue;
        char *out = malloc((size_t)(e - s) + 1);
        if (!out) return NULL;
        size_t n = 0;
        for (const char *c = s; c < e; c++) {
            if (*c == '\\' && c + 1 < e) {
                c++;
                out[n++] = *c == 'n' ? '\n' : *c == 't' ? '\t' : *c;
            } else {
                out[n++] = *c;
            }
        }
        out[n] = 0;
        return out;
    }
    return NULL;
}

void ar_prompt_answer(ar_buf *b, const char *name, bool single_quotes) {
    if (single_quotes) {
        ar_buf_puts(b, "{'route': '");
        ar_buf_puts(b, name);
        ar_buf_puts(b, "'}");
        return;
    }
    ar_buf_puts(b, "{\"route\": \"");
    ar_buf_json_string(b, name, strlen(name), false);
    ar_buf_puts(b, "\"}");
}
