/*
 * pcache.c - the prefix cache (pcache.h): a short list of entries, each with a use stamp.
 *
 * Few route sets are alive at once, so the list is scanned linearly; comparing token ids
 * costs microseconds next to the milliseconds a cached token saves.
 */
#include "router/pcache.h"

#include "engine/engine.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    int32_t *ids;
    int32_t n;
    ar_seq *seq;
    size_t bytes;
    uint64_t used; /* stamp of the last lookup or store */
} entry;

struct ar_pcache {
    ar_engine *e;
    ar_kv_type kv_type;
    size_t budget, bytes;
    entry *entries;
    int32_t n, cap;
    uint64_t clock;
};

ar_pcache *ar_pcache_new(ar_engine *engine, ar_kv_type kv_type, size_t budget_bytes) {
    ar_pcache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->e = engine;
    c->kv_type = kv_type;
    c->budget = budget_bytes;
    return c;
}

static void drop(ar_pcache *c, int32_t i) {
    free(c->entries[i].ids);
    ar_seq_free(c->entries[i].seq);
    c->bytes -= c->entries[i].bytes;
    c->entries[i] = c->entries[--c->n];
}

void ar_pcache_free(ar_pcache *c) {
    if (!c) return;
    while (c->n > 0) drop(c, c->n - 1);
    free(c->entries);
    free(c);
}

int32_t ar_pcache_lookup(ar_pcache *c, const int32_t *ids, int32_t n, const ar_seq **seq) {
    int32_t best = -1;
    for (int32_t i = 0; i < c->n; i++) {
        const entry *en = &c->entries[i];
        if (en->n > n || (best >= 0 && en->n <= c->entries[best].n)) continue;
        if (memcmp(en->ids, ids, (size_t)en->n * sizeof *ids) == 0) best = i;
    }
    if (best < 0) return 0;
    c->entries[best].used = ++c->clock;
    *seq = c->entries[best].seq;
    return c->entries[best].n;
}

/* Bytes an entry of n positions holds: its KV cache and the sequence's own buffers. */
static size_t entry_bytes(const ar_seq *s, int32_t n) {
    const ar_qwen2_hparams *hp = s->e->hp;
    size_t kv = (size_t)hp->n_layers * 2 * (size_t)n * s->kv_dim * s->kv_elem;
    return kv + (size_t)n * sizeof(int32_t) +
           s->scratch_stride * sizeof(float) * (size_t)s->e->params.n_threads;
}

void ar_pcache_store(ar_pcache *c, const int32_t *ids, int32_t n, const ar_seq *src) {
    if (n <= 0 || c->budget == 0) return;
    for (int32_t i = 0; i < c->n; i++) /* already there */
        if (c->entries[i].n == n && memcmp(c->entries[i].ids, ids, (size_t)n * sizeof *ids) == 0) {
            c->entries[i].used = ++c->clock;
            return;
        }
    ar_seq_params sp = ar_seq_default_params();
    sp.n_ctx = n;
    sp.n_batch = 1; /* never evaluated: only copied from */
    sp.kv_type = c->kv_type;
    ar_seq *s = NULL;
    if (ar_seq_new(c->e, &sp, &s) != AR_OK || ar_seq_copy(s, src, n) != AR_OK) {
        ar_seq_free(s);
        return;
    }
    size_t bytes = entry_bytes(s, n);
    if (bytes > c->budget) {
        ar_seq_free(s);
        return;
    }
    while (c->n > 0 && c->bytes + bytes > c->budget) { /* evict the least recently used */
        int32_t lru = 0;
        for (int32_t i = 1; i < c->n; i++)
            if (c->entries[i].used < c->entries[lru].used) lru = i;
        drop(c, lru);
    }
    if (c->n == c->cap) {
        int32_t cap = c->cap ? c->cap * 2 : 8;
        entry *p = realloc(c->entries, (size_t)cap * sizeof *p);
        if (!p) {
            ar_seq_free(s);
            return;
        }
        c->entries = p;
        c->cap = cap;
    }
    int32_t *copy = malloc((size_t)n * sizeof *copy);
    if (!copy) {
        ar_seq_free(s);
        return;
    }
    memcpy(copy, ids, (size_t)n * sizeof *copy);
    c->entries[c->n++] = (entry){.ids = copy, .n = n, .seq = s, .bytes = bytes, .used = ++c->clock};
    c->bytes += bytes;
}

int32_t ar_pcache_entries(const ar_pcache *c) {
    return c ? c->n : 0;
}

size_t ar_pcache_bytes(const ar_pcache *c) {
    return c ? c->bytes : 0;
}
