/*
 * trie.h - the token trie of every valid router answer.
 *
 * Answers are {"route": "NAME"} for each route and for "other", also in the single-quote
 * form {'route': 'NAME'}, each tokenized canonically (as ordinary text) and followed by
 * <|im_end|>. The trie shares common prefixes: node 0 is the root (no token); every
 * other node is one token after its parent. A node knows which answer its subtree leads
 * to when that is a single one (the route is decided there), and whether it lies on a
 * double-quote answer (the form whose probabilities the router scores).
 */
#ifndef AR_ROUTER_TRIE_H
#define AR_ROUTER_TRIE_H

#include "archrouter.h"
#include "base/err.h"

#include <stdbool.h>

#define AR_TRIE_MIXED (-2) /* a node whose subtree holds several answers */

typedef struct ar_trie_node {
    int32_t token;                     /* -1 for the root */
    int32_t parent;                    /* -1 for the root */
    int32_t first_child, next_sibling; /* -1 when none */
    int32_t answer;     /* 0..n_routes-1 a route, n_routes "other", or AR_TRIE_MIXED */
    bool double_quoted; /* on the path of a double-quote answer */
} ar_trie_node;

typedef struct ar_trie {
    ar_trie_node *nodes;
    int32_t n_nodes, cap;
    int32_t n_answers; /* n_routes + 1 */
    int32_t *leaf_of;  /* per answer: the last node of its double-quote form */
} ar_trie;

/* Build the trie of the answers for `names` (n routes) plus "other". */
ar_status ar_trie_build(ar_trie *t, const ar_tokenizer *tok, const char *const *names, int32_t n,
                        int32_t im_end, ar_err *err);

void ar_trie_free(ar_trie *t);

#endif
