/*
 * router.c - Arch-Router routing (ar_router in include/archrouter.h).
 *
 * One decision, top to bottom:
 *
 *   prompt   = the Arch-Router prompt of the conversation (prompt.c), as token ids
 *   start    = the longest prefix of those ids whose KV is at hand: in the working
 *              sequence from the last request, or in the prefix cache (pcache.c)
 *   prefill  = run ids[start..] (and any answer tokens that are forced from the trie's
 *              root) through the engine; keep the prompt's head in the prefix cache
 *   decode   = walk the answer trie (trie.c): where a node has several children, take the
 *              logits of just those tokens (ar_seq_eval_select) and follow the largest;
 *              a child with no siblings is forced and costs nothing until the next choice;
 *              stop at the first node below which only one answer remains
 *   scores   = (optional) the exact log-probability of every answer's double-quote form:
 *              all answers' tokens in one tree evaluation (ar_seq_eval_tree) hanging off
 *              the prompt, their log-softmax summed along each path, normalized
 *
 * The decode picks the same route as unconstrained greedy decoding whenever that produces
 * a valid answer: at every step the greedy token, if it continues a valid answer, is the
 * largest logit among the allowed ones. One mutex serializes decisions on a router (the
 * engine runs one evaluation at a time anyway) and guards the route set.
 *
 * A remote router (ar_router_new_remote) has no engine: the same route set and prompt
 * rules, the prompt's body sent to a chat completions server by remote.c, and the answer
 * matched against the routes. Its lock is held only while the prompt is built and while
 * the answer is matched, so decisions run in parallel.
 */
#include "archrouter.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/utf8.h"
#include "router/pcache.h"
#include "router/prompt.h"
#include "router/remote.h"
#include "router/trie.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROUTES        1024
#define MAX_NAME_BYTES    128
#define MAX_DESC_BYTES    4096
/* Tokens of one answer: the name (at most one per byte) and the JSON around it. */
#define MAX_ANSWER_TOKENS (MAX_NAME_BYTES + 32)
#define QWEN_SYSTEM       "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

struct ar_router {
    ar_err err;
    bool failed;
    ar_engine *e;
    const ar_tokenizer *tok;
    ar_router_params p;
    char *system_prompt; /* owned; NULL: no system block */
    int32_t im_start, im_end, n_vocab;
    pthread_mutex_t lock;
    bool lock_ready;

    ar_route *routes; /* owned strings */
    const char **names;
    int32_t n_routes;
    ar_trie trie;

    ar_seq *work; /* the sequence decisions run in */
    int32_t *work_ids;
    int32_t n_work; /* ids whose KV the working sequence holds */
    ar_pcache *cache;
    ar_remote *remote; /* NULL: decisions run on the local engine */

    float *logits; /* n_vocab */
    float *tree_logits;
    int32_t *tree_tokens, *tree_parents, *tree_row; /* tree_row: per trie node, -1 if none */
    double *tree_lse; /* per tree row: the log-sum-exp of its logits */
    int32_t tree_cap;
};

ar_router_params ar_router_default_params(void) {
    ar_router_params p = {.layout = AR_LAYOUT_CARD,
                          .system_prompt = NULL,
                          .max_conversation_tokens = 2048,
                          .min_confidence = 0.0f,
                          .scores = false,
                          .prefix_cache_bytes = (size_t)256 << 20,
                          .n_ctx = 4096,
                          .kv_type = AR_KV_F32};
    return p;
}

/* ---- set-up ------------------------------------------------------------------------------ */

/* The settings both kinds of router share, checked. */
static ar_status check_params(ar_router *r) {
    if (r->p.layout != AR_LAYOUT_CARD && r->p.layout != AR_LAYOUT_ARCHGW)
        return ar_errf(&r->err, AR_ERR_INVALID_ARG, "unknown prompt layout %d", r->p.layout);
    if (r->p.max_conversation_tokens < 16)
        return ar_errf(&r->err, AR_ERR_INVALID_ARG,
                       "max_conversation_tokens %d is too small (at least 16)",
                       (int)r->p.max_conversation_tokens);
    if (!(r->p.min_confidence >= 0.0f && r->p.min_confidence <= 1.0f))
        return ar_errf(&r->err, AR_ERR_INVALID_ARG, "min_confidence must be within 0..1");
    return AR_OK;
}

ar_status ar_router_new(ar_engine *engine, const ar_tokenizer *tok, const ar_router_params *params,
                        ar_router **out) {
    if (!out) return AR_ERR_INVALID_ARG;
    ar_router *r = calloc(1, sizeof *r);
    *out = r;
    if (!r) return AR_ERR_NOMEM;
    r->failed = true;
    r->p = params ? *params : ar_router_default_params();
    r->p.system_prompt = NULL; /* owned copy below */
    if (!engine || ar_engine_n_vocab(engine) == 0 || !tok)
        return ar_errf(&r->err, AR_ERR_INVALID_ARG, "no engine or no tokenizer");
    ar_status bad = check_params(r);
    if (bad != AR_OK) return bad;
    if (r->p.n_ctx <= 0) r->p.n_ctx = 4096;
    r->e = engine;
    r->tok = tok;
    r->n_vocab = ar_engine_n_vocab(engine);
    r->im_start = ar_tokenizer_find(tok, "<|im_start|>");
    r->im_end = ar_tokenizer_find(tok, "<|im_end|>");
    if (r->im_start < 0 || r->im_end < 0)
        return ar_errf(&r->err, AR_ERR_UNSUPPORTED,
                       "the tokenizer has no <|im_start|>/<|im_end|> tokens: not a Qwen2-style "
                       "chat model");
    if (ar_tokenizer_n_tokens(tok) > r->n_vocab)
        return ar_errf(&r->err, AR_ERR_INVALID_ARG,
                       "the tokenizer has %d tokens but the model only %d",
                       (int)ar_tokenizer_n_tokens(tok), (int)r->n_vocab);
    /* The system prompt: the operator's, else the chat template's default, else (no
     * template at all) the stock Qwen2.5 one that Arch-Router was trained with. */
    const char *tpl = ar_tokenizer_chat_template(tok);
    if (params && params->system_prompt)
        r->system_prompt = strdup(params->system_prompt);
    else
        r->system_prompt = tpl ? ar_prompt_default_system(tpl) : strdup(QWEN_SYSTEM);
    if (r->system_prompt &&
        !ar_utf8_valid((const uint8_t *)r->system_prompt, strlen(r->system_prompt), NULL))
        return ar_errf(&r->err, AR_ERR_INVALID_INPUT, "the system prompt is not UTF-8");
    if (pthread_mutex_init(&r->lock, NULL) != 0)
        return ar_errf(&r->err, AR_ERR_NOMEM, "cannot create a mutex");
    r->lock_ready = true;
    ar_seq_params sp = ar_seq_default_params();
    sp.n_ctx = r->p.n_ctx;
    sp.kv_type = r->p.kv_type;
    ar_status st = ar_seq_new(engine, &sp, &r->work);
    if (st != AR_OK)
        return ar_errf(&r->err, st, "cannot create the router's sequence: %s",
                       ar_seq_errmsg(r->work));
    r->work_ids = malloc((size_t)r->p.n_ctx * sizeof *r->work_ids);
    r->logits = malloc((size_t)r->n_vocab * sizeof *r->logits);
    if (!r->work_ids || !r->logits) return ar_errf(&r->err, AR_ERR_NOMEM, "out of memory");
    if (r->p.prefix_cache_bytes > 0) {
        r->cache = ar_pcache_new(engine, r->p.kv_type, r->p.prefix_cache_bytes);
        if (!r->cache) return ar_errf(&r->err, AR_ERR_NOMEM, "out of memory");
    }
    r->failed = false;
    return AR_OK;
}

ar_status ar_router_new_remote(const ar_remote_params *params, ar_router **out) {
    if (!out) return AR_ERR_INVALID_ARG;
    ar_router *r = calloc(1, sizeof *r);
    *out = r;
    if (!r) return AR_ERR_NOMEM;
    r->failed = true;
    ar_remote_params rp = params ? *params : ar_remote_default_params();
    r->p = ar_router_default_params();
    r->p.layout = rp.layout;
    r->p.max_conversation_tokens = rp.max_conversation_tokens;
    r->p.min_confidence = rp.min_confidence;
    r->p.prefix_cache_bytes = 0;
    ar_status bad = check_params(r);
    if (bad != AR_OK) return bad;
    r->tok = rp.tok;
    r->im_start = r->im_end = -1;
    if (!rp.system_prompt)
        r->system_prompt = strdup(QWEN_SYSTEM);
    else if (*rp.system_prompt)
        r->system_prompt = strdup(rp.system_prompt);
    if (rp.system_prompt && *rp.system_prompt && !r->system_prompt)
        return ar_errf(&r->err, AR_ERR_NOMEM, "out of memory");
    if (r->system_prompt &&
        !ar_utf8_valid((const uint8_t *)r->system_prompt, strlen(r->system_prompt), NULL))
        return ar_errf(&r->err, AR_ERR_INVALID_INPUT, "the system prompt is not UTF-8");
    ar_status st = ar_remote_new(&rp, &r->remote, &r->err);
    if (st != AR_OK) return st;
    if (pthread_mutex_init(&r->lock, NULL) != 0)
        return ar_errf(&r->err, AR_ERR_NOMEM, "cannot create a mutex");
    r->lock_ready = true;
    r->failed = false;
    return AR_OK;
}

static void free_routes(ar_route *routes, const char **names, int32_t n) {
    for (int32_t i = 0; routes && i < n; i++) {
        free((char *)routes[i].name);
        free((char *)routes[i].description);
        free((char *)routes[i].model);
    }
    free(routes);
    free(names);
}

void ar_router_free(ar_router *r) {
    if (!r) return;
    free_routes(r->routes, r->names, r->n_routes);
    ar_trie_free(&r->trie);
    ar_seq_free(r->work);
    ar_pcache_free(r->cache);
    ar_remote_free(r->remote);
    free(r->system_prompt);
    free(r->work_ids);
    free(r->logits);
    free(r->tree_logits);
    free(r->tree_tokens);
    free(r->tree_parents);
    free(r->tree_lse);
    free(r->tree_row);
    if (r->lock_ready) pthread_mutex_destroy(&r->lock);
    free(r);
}

const char *ar_router_errmsg(const ar_router *r) {
    return r ? r->err.msg : "out of memory";
}

/* ---- routes ------------------------------------------------------------------------------ */

static ar_status check_text(ar_err *err, int32_t i, const char *field, const char *s, size_t max,
                            bool name) {
    if (!s || !*s)
        return ar_errf(err, AR_ERR_INVALID_INPUT, "routes[%d].%s is empty", (int)i, field);
    size_t n = strlen(s), bad = 0;
    if (n > max)
        return ar_errf(err, AR_ERR_INVALID_INPUT, "routes[%d].%s is longer than %zu bytes", (int)i,
                       field, max);
    if (!ar_utf8_valid((const uint8_t *)s, n, &bad))
        return ar_errf(err, AR_ERR_INVALID_INPUT, "routes[%d].%s is not UTF-8 at byte %zu", (int)i,
                       field, bad);
    for (size_t k = 0; name && k < n; k++)
        if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f)
            return ar_errf(err, AR_ERR_INVALID_INPUT,
                           "routes[%d].name '%.64s' holds a control character at byte %zu", (int)i,
                           s, k);
    return AR_OK;
}

static ar_status validate_routes(ar_err *err, const ar_route *routes, int32_t n) {
    if (n < 1 || !routes) return ar_errf(err, AR_ERR_INVALID_ARG, "no routes");
    if (n > MAX_ROUTES)
        return ar_errf(err, AR_ERR_LIMIT, "%d routes: at most %d are supported", (int)n,
                       MAX_ROUTES);
    for (int32_t i = 0; i < n; i++) {
        ar_status st = check_text(err, i, "name", routes[i].name, MAX_NAME_BYTES, true);
        if (st == AR_OK)
            st = check_text(err, i, "description", routes[i].description, MAX_DESC_BYTES, false);
        if (st == AR_OK && routes[i].model && *routes[i].model)
            st = check_text(err, i, "model", routes[i].model, MAX_DESC_BYTES, false);
        if (st != AR_OK) return st;
        if (strcmp(routes[i].name, "other") == 0)
            return ar_errf(err, AR_ERR_INVALID_INPUT,
                           "routes[%d]: the name 'other' is reserved (it is the router's "
                           "answer when no route matches)",
                           (int)i);
        for (int32_t j = 0; j < i; j++)
            if (strcmp(routes[i].name, routes[j].name) == 0)
                return ar_errf(err, AR_ERR_INVALID_INPUT,
                               "routes[%d]: the name '%.64s' is also routes[%d]'s", (int)i,
                               routes[i].name, (int)j);
    }
    return AR_OK;
}

ar_status ar_router_set_routes(ar_router *r, const ar_route *routes, int32_t n) {
    if (!r || r->failed) return AR_ERR_INVALID_ARG;
    ar_status st = validate_routes(&r->err, routes, n);
    if (st != AR_OK) return st;
    ar_route *copy = calloc((size_t)n, sizeof *copy);
    const char **names = calloc((size_t)n, sizeof *names);
    bool oom = !copy || !names;
    for (int32_t i = 0; !oom && i < n; i++) {
        copy[i].name = strdup(routes[i].name);
        copy[i].description = strdup(routes[i].description);
        copy[i].model = routes[i].model && *routes[i].model ? strdup(routes[i].model) : NULL;
        names[i] = copy[i].name;
        oom = !copy[i].name || !copy[i].description ||
              (routes[i].model && *routes[i].model && !copy[i].model);
    }
    if (oom) {
        free_routes(copy, names, n);
        return ar_errf(&r->err, AR_ERR_NOMEM, "out of memory for the routes");
    }
    ar_trie trie = {0}; /* a remote router needs no answer trie */
    st = r->remote ? AR_OK : ar_trie_build(&trie, r->tok, names, n, r->im_end, &r->err);
    if (st != AR_OK) {
        free_routes(copy, names, n);
        return st;
    }
    int32_t *row = r->remote ? NULL : malloc((size_t)trie.n_nodes * sizeof *row);
    if (!row && !r->remote) {
        ar_trie_free(&trie);
        free_routes(copy, names, n);
        return ar_errf(&r->err, AR_ERR_NOMEM, "out of memory for the routes");
    }
    pthread_mutex_lock(&r->lock);
    free_routes(r->routes, r->names, r->n_routes);
    ar_trie_free(&r->trie);
    free(r->tree_row);
    r->routes = copy;
    r->names = names;
    r->n_routes = n;
    r->trie = trie;
    r->tree_row = row;
    pthread_mutex_unlock(&r->lock);
    r->err.msg[0] = 0;
    return AR_OK;
}

/* ---- one decision ------------------------------------------------------------------------ */

static ar_prompt_spec spec_of(const ar_router *r) {
    ar_prompt_spec s = {.tok = r->tok,
                        .layout = r->p.layout,
                        .system_prompt = r->system_prompt,
                        .im_start = r->im_start,
                        .im_end = r->im_end,
                        .routes = r->routes,
                        .n_routes = r->n_routes,
                        .budget = r->p.max_conversation_tokens,
                        .body_only = r->remote != NULL};
    return s;
}

/* Put the longest usable prefix of ids (at most n - 1 of them: the last token must run
 * to give logits) into the working sequence; returns its length. */
static int32_t reuse_prefix(ar_router *r, const int32_t *ids, int32_t n) {
    int32_t limit = n - 1, common = 0;
    int32_t have = r->n_work < limit ? r->n_work : limit;
    while (common < have && r->work_ids[common] == ids[common]) common++;
    const ar_seq *cached = NULL;
    int32_t hit = r->cache ? ar_pcache_lookup(r->cache, ids, limit, &cached) : 0;
    if (hit > common && ar_seq_copy(r->work, cached, hit) == AR_OK) {
        memcpy(r->work_ids, ids, (size_t)hit * sizeof *ids);
        r->n_work = hit;
        return hit;
    }
    ar_seq_truncate(r->work, common);
    r->n_work = common;
    return common;
}

/* Run tokens in the working sequence: with `at` (n_at ascending token indices), the logits
 * of `sel` (n_sel ids) after each of those tokens into out[k * n_sel + i]; without, those
 * after the last token into out, or the full vector into r->logits when sel is NULL. */
static ar_status run_at(ar_router *r, const int32_t *tokens, int32_t n, const int32_t *at,
                        int32_t n_at, const int32_t *sel, int32_t n_sel, float *out) {
    if (r->n_work + n > r->p.n_ctx)
        return ar_errf(&r->err, AR_ERR_LIMIT,
                       "the prompt and answer need %d positions; the router holds %d (n_ctx)",
                       (int)(r->n_work + n), (int)r->p.n_ctx);
    ar_status st = at    ? ar_seq_eval_select_at(r->work, tokens, n, at, n_at, sel, n_sel, out)
                   : sel ? ar_seq_eval_select(r->work, tokens, n, sel, n_sel, out)
                         : ar_seq_eval(r->work, tokens, n, AR_LOGITS_LAST, r->logits);
    if (st != AR_OK) return ar_errf(&r->err, st, "evaluation failed: %s", ar_seq_errmsg(r->work));
    memcpy(r->work_ids + r->n_work, tokens, (size_t)n * sizeof *tokens);
    r->n_work += n;
    return AR_OK;
}

static ar_status run(ar_router *r, const int32_t *tokens, int32_t n, const int32_t *sel,
                     int32_t n_sel, float *out) {
    return run_at(r, tokens, n, NULL, 0, sel, n_sel, out);
}

static double log_sum_exp(const float *x, int32_t n) {
    float m = x[0];
    for (int32_t i = 1; i < n; i++)
        if (x[i] > m) m = x[i];
    double s = 0;
    for (int32_t i = 0; i < n; i++) s += exp((double)x[i] - m);
    return m + log(s);
}

static bool grow_tree(ar_router *r, int32_t n) {
    if (n <= r->tree_cap) return true;
    float *lg = realloc(r->tree_logits, (size_t)n * (size_t)r->n_vocab * sizeof *lg);
    if (lg) r->tree_logits = lg;
    int32_t *tt = realloc(r->tree_tokens, (size_t)n * sizeof *tt);
    if (tt) r->tree_tokens = tt;
    int32_t *tp = realloc(r->tree_parents, (size_t)n * sizeof *tp);
    if (tp) r->tree_parents = tp;
    double *ls = realloc(r->tree_lse, (size_t)n * sizeof *ls);
    if (ls) r->tree_lse = ls;
    if (!lg || !tt || !tp || !ls) return false;
    r->tree_cap = n;
    return true;
}

/* Log-probabilities of every answer's double-quote form after the prompt (whose full
 * logits are in r->logits). The answers' inner nodes run as trees hanging off the prompt,
 * as many answers per tree as the batch holds. */
static ar_status score_answers(ar_router *r, double *lp) {
    const ar_trie *t = &r->trie;
    const ar_trie_node *nd = t->nodes;
    int32_t batch = ar_seq_n_ctx(r->work) - ar_seq_n_past(r->work);
    if (batch > 256) batch = 256; /* the sequence's n_batch (default) */
    double root_lse = log_sum_exp(r->logits, r->n_vocab);
    int32_t a0 = 0;
    while (a0 < t->n_answers) {
        /* Gather answers a0..a1 whose inner nodes fit in one tree. */
        for (int32_t i = 0; i < t->n_nodes; i++) r->tree_row[i] = -1;
        int32_t n = 0, a1 = a0;
        for (; a1 < t->n_answers; a1++) {
            int32_t need = 0;
            for (int32_t v = nd[t->leaf_of[a1]].parent; v > 0; v = nd[v].parent)
                if (r->tree_row[v] < 0) need++;
            if (n + need > batch && a1 > a0) break;
            if (!grow_tree(r, n + need))
                return ar_errf(&r->err, AR_ERR_NOMEM, "out of memory for the scores");
            /* Rows in root-first order, so a parent always precedes its children. */
            int32_t path[MAX_ANSWER_TOKENS], depth = 0;
            for (int32_t v = nd[t->leaf_of[a1]].parent; v > 0 && depth < MAX_ANSWER_TOKENS;
                 v = nd[v].parent)
                path[depth++] = v;
            for (int32_t k = depth - 1; k >= 0; k--) {
                int32_t v = path[k];
                if (r->tree_row[v] >= 0) continue;
                r->tree_row[v] = n;
                r->tree_tokens[n] = nd[v].token;
                r->tree_parents[n] = nd[v].parent > 0 ? r->tree_row[nd[v].parent] : -1;
                n++;
            }
        }
        if (n > 0) {
            ar_status st =
                ar_seq_eval_tree(r->work, r->tree_tokens, r->tree_parents, n, r->tree_logits);
            if (st != AR_OK)
                return ar_errf(&r->err, st, "scoring failed: %s", ar_seq_errmsg(r->work));
        }
        /* Once per row: rows near the root are shared by every answer. */
        for (int32_t i = 0; i < n; i++)
            r->tree_lse[i] = log_sum_exp(r->tree_logits + (size_t)i * r->n_vocab, r->n_vocab);
        for (int32_t a = a0; a < a1; a++) {
            double sum = 0;
            for (int32_t v = t->leaf_of[a]; v > 0; v = nd[v].parent) {
                int32_t p = nd[v].parent;
                const float *row =
                    p > 0 ? r->tree_logits + (size_t)r->tree_row[p] * r->n_vocab : r->logits;
                double lse = p > 0 ? r->tree_lse[r->tree_row[p]] : root_lse;
                sum += (double)row[nd[v].token] - lse;
            }
            lp[a] = sum;
        }
        a0 = a1;
    }
    return AR_OK;
}

/* The children of node v: their tokens into ids (at most cap), their count. */
static int32_t children(const ar_trie *t, int32_t v, int32_t *ids, int32_t *nodes, int32_t cap) {
    int32_t n = 0;
    for (int32_t c = t->nodes[v].first_child; c >= 0 && n < cap; c = t->nodes[c].next_sibling) {
        ids[n] = t->nodes[c].token;
        nodes[n++] = c;
    }
    return n;
}

#define MAX_CHILDREN (2 * MAX_ROUTES + 2)

typedef struct decision {
    int32_t answer;
    float branch_prob;
    int32_t steps;
} decision;

/* The double-quoted child of node v, or -1. */
static int32_t double_quoted_child(const ar_trie *t, int32_t v) {
    for (int32_t c = t->nodes[v].first_child; c >= 0; c = t->nodes[c].next_sibling)
        if (t->nodes[c].double_quoted) return c;
    return -1;
}

/* The constrained greedy walk from the root. pending[0..n_pending) are the tokens not yet
 * run (the prompt's uncached part); when full_first, the prompt has already run with full
 * logits in r->logits.
 *
 * The first choice (the answer's first token, after the prompt) is almost always the
 * double-quote form the model was trained on, and its next tokens are forced up to the
 * route name. So that run takes the guess along: the prompt, the guessed token and its
 * forced successors in one pass, with the logits after the prompt (the choice) and after
 * the guess's last token (the next choice). A right guess saves a whole pass over the
 * weights; a wrong one is cut off the sequence again (ar_seq_truncate) and the walk goes on
 * from the choice's logits. Every logit is the one a pass of its own gives (the engine's
 * results do not depend on batching), so the decision is the same either way. */
static ar_status decode(ar_router *r, int32_t *pending, int32_t n_pending, bool full_first,
                        decision *d, double *prefill_ms, double *decode_ms) {
    const ar_trie *t = &r->trie;
    int32_t *ids = malloc(MAX_CHILDREN * 5 * sizeof *ids), *nodes = ids + MAX_CHILDREN;
    int32_t *sel = nodes + MAX_CHILDREN;          /* the choice's ids, then the next choice's */
    int32_t *next_nodes = sel + 2 * MAX_CHILDREN; /* (unused: the walk finds them again) */
    float *lg = malloc(MAX_CHILDREN * 5 * sizeof *lg), *out = lg + MAX_CHILDREN;
    if (!ids || !lg) {
        free(ids);
        free(lg);
        return ar_errf(&r->err, AR_ERR_NOMEM, "out of memory");
    }
    ar_status st = AR_OK;
    int32_t v = 0, evals = full_first ? 1 : 0;
    bool have = false;
    d->branch_prob = 1.0f;
    d->steps = 0;
    while (t->nodes[v].answer == AR_TRIE_MIXED) {
        int32_t nc = children(t, v, ids, nodes, MAX_CHILDREN);
        if (nc == 1) { /* forced: runs with the next choice */
            pending[n_pending++] = ids[0];
            v = nodes[0];
            continue;
        }
        if (full_first && v == 0) {
            for (int32_t i = 0; i < nc; i++) lg[i] = r->logits[ids[i]];
            have = true;
        }
        /* the guess: the double-quoted child, its forced successors, the node after them */
        int32_t guess = !have && evals == 0 && n_pending > 0 ? double_quoted_child(t, v) : -1;
        int32_t n_guess = 0;
        int32_t after = guess, n_next = 0;
        if (guess >= 0) {
            pending[n_pending + n_guess++] = t->nodes[guess].token;
            while (t->nodes[after].answer == AR_TRIE_MIXED) {
                int32_t c = t->nodes[after].first_child;
                if (c < 0 || t->nodes[c].next_sibling >= 0) break;
                pending[n_pending + n_guess++] = t->nodes[c].token;
                after = c;
            }
            if (t->nodes[after].answer == AR_TRIE_MIXED)
                n_next = children(t, after, sel + nc, next_nodes, MAX_CHILDREN);
        }
        if (!have) {
            double t0 = ar_clock_ms();
            if (guess >= 0) {
                int32_t at[2] = {n_pending - 1, n_pending + n_guess - 1};
                memcpy(sel, ids, (size_t)nc * sizeof *ids);
                st = run_at(r, pending, n_pending + n_guess, at, n_next ? 2 : 1, sel, nc + n_next,
                            out);
                for (int32_t i = 0; st == AR_OK && i < nc; i++) lg[i] = out[i];
            } else {
                st = run(r, pending, n_pending, ids, nc, lg);
            }
            if (st != AR_OK) break;
            *(evals == 0 ? prefill_ms : decode_ms) += ar_clock_ms() - t0;
            if (evals++ > 0) d->steps++;
            n_pending = 0;
        }
        int32_t best = 0;
        for (int32_t i = 1; i < nc; i++)
            if (lg[i] > lg[best]) best = i;
        double z = 0;
        for (int32_t i = 0; i < nc; i++) z += exp((double)lg[i] - lg[best]);
        d->branch_prob = (float)(1.0 / z);
        have = false;
        if (guess >= 0 && nodes[best] == guess) { /* the guess ran: go on after it */
            v = after;
            for (int32_t i = 0; i < n_next; i++) lg[i] = out[(nc + n_next) + nc + i];
            have = n_next > 0;
            continue;
        }
        if (guess >= 0) { /* a wrong guess: cut it off again */
            ar_seq_truncate(r->work, r->n_work - n_guess);
            r->n_work -= n_guess;
        }
        v = nodes[best];
        pending[n_pending++] = ids[best];
    }
    d->answer = t->nodes[v].answer;
    free(ids);
    free(lg);
    return st;
}

static ar_status route_locked(ar_router *r, const ar_message *msgs, int32_t n,
                              ar_route_result *res) {
    double t_start = ar_clock_ms();
    if (r->n_routes == 0)
        return ar_errf(&r->err, AR_ERR_INVALID_ARG, "no routes: set them before routing");
    ar_prompt_spec spec = spec_of(r);
    ar_prompt pr;
    ar_status st = ar_prompt_build(&spec, msgs, n, &pr, &r->err);
    if (st != AR_OK) return st;
    res->tokenize_ms = ar_clock_ms() - t_start;
    res->prompt_tokens = pr.n_ids;
    res->messages_used = pr.messages_used;
    res->truncated = pr.truncated;
    if (pr.n_ids + 64 > r->p.n_ctx) {
        st = ar_errf(&r->err, AR_ERR_LIMIT,
                     "the prompt has %d tokens; the router holds %d (raise n_ctx or lower "
                     "max_conversation_tokens)",
                     (int)pr.n_ids, (int)r->p.n_ctx);
        ar_prompt_free(&pr);
        return st;
    }
    int32_t start = reuse_prefix(r, pr.ids, pr.n_ids);
    res->cached_tokens = start;
    /* pending: the prompt's rest, then up to the trie's depth of forced answer tokens */
    int32_t *pending = malloc(((size_t)(pr.n_ids - start) + MAX_ANSWER_TOKENS) * sizeof *pending);
    double *lp = r->p.scores ? malloc((size_t)r->trie.n_answers * sizeof *lp) : NULL;
    if (!pending || (r->p.scores && !lp)) {
        free(pending);
        free(lp);
        ar_prompt_free(&pr);
        return ar_errf(&r->err, AR_ERR_NOMEM, "out of memory");
    }
    int32_t n_pending = pr.n_ids - start;
    memcpy(pending, pr.ids + start, (size_t)n_pending * sizeof *pending);
    bool full_first = false;
    if (r->p.scores) { /* the prompt alone first: its full logits start every answer */
        double t0 = ar_clock_ms();
        st = run(r, pending, n_pending, NULL, 0, NULL);
        res->prefill_ms = ar_clock_ms() - t0;
        n_pending = 0;
        full_first = true;
        if (st == AR_OK) {
            t0 = ar_clock_ms();
            st = score_answers(r, lp);
            res->scores_ms = ar_clock_ms() - t0;
        }
    }
    decision d = {0};
    if (st == AR_OK) {
        st = decode(r, pending, n_pending, full_first, &d, &res->prefill_ms, &res->decode_ms);
        /* The head of the prompt is worth keeping once it has run. */
        if (st == AR_OK && r->cache && pr.n_prefix > 0 && start < pr.n_prefix)
            ar_pcache_store(r->cache, pr.ids, pr.n_prefix, r->work);
    }
    if (st == AR_OK) {
        res->answer = d.answer < r->n_routes ? r->routes[d.answer].name : "other";
        res->decode_steps = d.steps;
        res->probability = d.branch_prob;
        if (lp) {
            res->n_scores = r->trie.n_answers;
            res->scores = malloc((size_t)res->n_scores * sizeof *res->scores);
            res->logprobs = malloc((size_t)res->n_scores * sizeof *res->logprobs);
            if (!res->scores || !res->logprobs) {
                st = ar_errf(&r->err, AR_ERR_NOMEM, "out of memory");
            } else {
                double m = lp[0], z = 0;
                for (int32_t a = 1; a < res->n_scores; a++)
                    if (lp[a] > m) m = lp[a];
                for (int32_t a = 0; a < res->n_scores; a++) z += exp(lp[a] - m);
                for (int32_t a = 0; a < res->n_scores; a++) {
                    res->scores[a] = (float)(exp(lp[a] - m) / z);
                    res->logprobs[a] = lp[a];
                }
                res->probability = res->scores[d.answer];
            }
        }
        bool matched = d.answer < r->n_routes && res->probability >= r->p.min_confidence;
        res->route_index = matched ? d.answer : -1;
        res->route = matched ? r->routes[d.answer].name : NULL;
        res->model = matched ? r->routes[d.answer].model : NULL;
    }
    free(pending);
    free(lp);
    ar_prompt_free(&pr);
    res->total_ms = ar_clock_ms() - t_start;
    return st;
}

/* The exact answers a remote server may be constrained to: each route's, then "other". */
static char **remote_choices(const ar_router *r) {
    char **c = calloc((size_t)r->n_routes + 1, sizeof *c);
    for (int32_t i = 0; c && i <= r->n_routes; i++) {
        ar_buf b = {0};
        ar_prompt_answer(&b, i < r->n_routes ? r->routes[i].name : "other", false);
        c[i] = b.data;
        if (b.oom || !b.data) {
            ar_buf_free(&b);
            for (int32_t k = 0; k < i; k++) free(c[k]);
            free(c);
            return NULL;
        }
    }
    return c;
}

/* A remote decision: prompt and choices under the lock, the HTTP exchange outside it, the
 * answer matched under the lock again. */
static ar_status route_remote(ar_router *r, const ar_message *msgs, int32_t n,
                              ar_route_result *res) {
    double t_start = ar_clock_ms();
    ar_err err = {{0}};
    ar_prompt pr = {0};
    char **choices = NULL;
    int32_t n_choices = 0;
    pthread_mutex_lock(&r->lock);
    ar_status st = r->n_routes == 0
                       ? ar_errf(&err, AR_ERR_INVALID_ARG, "no routes: set them before routing")
                       : AR_OK;
    if (st == AR_OK) {
        ar_prompt_spec spec = spec_of(r);
        st = ar_prompt_build(&spec, msgs, n, &pr, &err);
    }
    if (st == AR_OK) {
        n_choices = r->n_routes + 1;
        choices = remote_choices(r);
        if (!choices) st = ar_errf(&err, AR_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_unlock(&r->lock);
    res->tokenize_ms = ar_clock_ms() - t_start;
    res->prompt_tokens = pr.n_ids;
    res->messages_used = pr.messages_used;
    res->truncated = pr.truncated;
    ar_remote_reply rep = {0};
    if (st == AR_OK)
        st = ar_remote_complete(r->remote, r->system_prompt, pr.text, (const char *const *)choices,
                                n_choices, &rep, &err);
    for (int32_t i = 0; choices && i < n_choices; i++) free(choices[i]);
    free(choices);
    ar_prompt_free(&pr);
    pthread_mutex_lock(&r->lock);
    if (st == AR_OK) {
        char name[MAX_NAME_BYTES + 1];
        int32_t idx = -1; /* n_routes: "other" */
        if (ar_remote_parse_answer(rep.text, name, sizeof name)) {
            if (strcmp(name, "other") == 0) idx = r->n_routes;
            for (int32_t i = 0; idx < 0 && i < r->n_routes; i++)
                if (strcmp(name, r->routes[i].name) == 0) idx = i;
        }
        res->invalid_answer = idx < 0;
        res->probability = rep.has_logprob ? (float)exp(rep.logprob) : 1.0f;
        bool matched = idx >= 0 && idx < r->n_routes && res->probability >= r->p.min_confidence;
        res->answer = idx >= 0 && idx < r->n_routes ? r->routes[idx].name : "other";
        res->route_index = matched ? idx : -1;
        res->route = matched ? r->routes[idx].name : NULL;
        res->model = matched ? r->routes[idx].model : NULL;
        if (rep.prompt_tokens > 0) res->prompt_tokens = rep.prompt_tokens;
        res->decode_steps = rep.completion_tokens;
        r->err.msg[0] = 0;
    } else {
        r->err = err;
    }
    pthread_mutex_unlock(&r->lock);
    ar_remote_reply_free(&rep);
    res->total_ms = ar_clock_ms() - t_start;
    return st;
}

ar_status ar_router_route(ar_router *r, const ar_message *msgs, int32_t n, ar_route_result *res) {
    if (!res) return AR_ERR_INVALID_ARG;
    *res = (ar_route_result){.route_index = -1};
    if (!r || r->failed) return AR_ERR_INVALID_ARG;
    ar_status st;
    if (r->remote) {
        st = route_remote(r, msgs, n, res);
    } else {
        pthread_mutex_lock(&r->lock);
        st = route_locked(r, msgs, n, res);
        if (st == AR_OK) r->err.msg[0] = 0;
        pthread_mutex_unlock(&r->lock);
    }
    if (st != AR_OK) {
        ar_route_result_clear(res);
        res->route_index = -1;
    }
    return st;
}

void ar_route_result_clear(ar_route_result *res) {
    if (!res) return;
    free(res->scores);
    free(res->logprobs);
    *res = (ar_route_result){.route_index = -1};
}

ar_status ar_router_prompt(ar_router *r, const ar_message *msgs, int32_t n, char **text_out,
                           int32_t **ids_out, int32_t *n_ids) {
    if (!r || r->failed || !text_out) return AR_ERR_INVALID_ARG;
    pthread_mutex_lock(&r->lock);
    ar_prompt_spec spec = spec_of(r);
    ar_prompt pr;
    ar_status st = r->n_routes == 0 ? ar_errf(&r->err, AR_ERR_INVALID_ARG, "no routes set")
                                    : ar_prompt_build(&spec, msgs, n, &pr, &r->err);
    pthread_mutex_unlock(&r->lock);
    if (st != AR_OK) return st;
    *text_out = pr.text;
    pr.text = NULL;
    if (ids_out) { /* NULL for a remote router without a tokenizer */
        *ids_out = pr.ids;
        pr.ids = NULL;
    }
    if (n_ids) *n_ids = pr.n_ids;
    ar_prompt_free(&pr);
    return AR_OK;
}
