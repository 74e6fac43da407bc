/*
 * trie.c - building the answer trie (trie.h).
 *
 * Each answer's token ids are inserted from the root: an existing child with the same token
 * is followed, else a node is appended. Children are kept in insertion order (a linked
 * list: answers are few, so a node has few children), which makes the decoder's ties
 * resolve toward the earlier configured route.
 */
#include "router/trie.h"

#include "base/buf.h"
#include "router/prompt.h"

#include <stdlib.h>
#include <string.h>

static int32_t add_node(ar_trie *t, int32_t parent, int32_t token) {
    if (t->n_nodes == t->cap) {
        int32_t cap = t->cap ? t->cap * 2 : 64;
        ar_trie_node *p = realloc(t->nodes, (size_t)cap * sizeof *p);
        if (!p) return -1;
        t->nodes = p;
        t->cap = cap;
    }
    int32_t id = t->n_nodes++;
    t->nodes[id] = (ar_trie_node){
        .token = token, .parent = parent, .first_child = -1, .next_sibling = -1, .answer = -1};
    if (parent >= 0) { /* append to the parent's children, keeping order */
        int32_t *link = &t->nodes[parent].first_child;
        while (*link >= 0) link = &t->nodes[*link].next_sibling;
        *link = id;
    }
    return id;
}

static ar_status insert(ar_trie *t, const int32_t *ids, size_t n, int32_t answer, bool dq,
                        ar_err *err) {
    int32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        t->nodes[node].answer =
            t->nodes[node].answer == -1 || t->nodes[node].answer == answer ? answer : AR_TRIE_MIXED;
        t->nodes[node].double_quoted |= dq;
        int32_t c = t->nodes[node].first_child;
        while (c >= 0 && t->nodes[c].token != ids[i]) c = t->nodes[c].next_sibling;
        if (c < 0) c = add_node(t, node, ids[i]);
        if (c < 0) return ar_errf(err, AR_ERR_NOMEM, "out of memory for the answer trie");
        node = c;
    }
    t->nodes[node].answer = answer;
    t->nodes[node].double_quoted |= dq;
    if (dq) t->leaf_of[answer] = node;
    return AR_OK;
}

ar_status ar_trie_build(ar_trie *t, const ar_tokenizer *tok, const char *const *names, int32_t n,
                        int32_t im_end, ar_err *err) {
    *t = (ar_trie){0};
    t->n_answers = n + 1;
    t->leaf_of = malloc((size_t)t->n_answers * sizeof *t->leaf_of);
    if (!t->leaf_of || add_node(t, -1, -1) < 0) {
        ar_trie_free(t);
        return ar_errf(err, AR_ERR_NOMEM, "out of memory for the answer trie");
    }
    ar_buf text = {0};
    int32_t *ids = NULL;
    ar_status st = AR_OK;
    for (int32_t a = 0; a <= n && st == AR_OK; a++) {
        for (int form = 0; form < 2 && st == AR_OK; form++) {
            text.len = 0;
            ar_prompt_answer(&text, a < n ? names[a] : "other", form == 1);
            if (text.oom) {
                st = ar_errf(err, AR_ERR_NOMEM, "out of memory for the answer trie");
                break;
            }
            free(ids);
            ids = malloc((text.len + 2) * sizeof *ids);
            size_t n_ids = 0;
            if (!ids) {
                st = ar_errf(err, AR_ERR_NOMEM, "out of memory for the answer trie");
                break;
            }
            st = ar_tokenize(tok, text.data, text.len, 0, ids, text.len + 1, &n_ids);
            if (st != AR_OK) {
                st = ar_errf(err, st, "cannot tokenize the answer %s: %s", text.data,
                             ar_strerror(st));
                break;
            }
            ids[n_ids++] = im_end;
            st = insert(t, ids, n_ids, a, form == 0, err);
        }
    }
    free(ids);
    ar_buf_free(&text);
    if (st != AR_OK) ar_trie_free(t);
    return st;
}

void ar_trie_free(ar_trie *t) {
    free(t->nodes);
    free(t->leaf_of);
    *t = (ar_trie){0};
}
