/*
 * cache.c - see cache.h.
 *
 * Index: open addressing over `slots` entries of (hash, arena offset + 1); kept at most
 * half full. Arena entry: u8 piece length, u8 id count, the piece bytes, padding to 4,
 * then the ids.
 */
#include "tokenizer/cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
    uint32_t hash;
    uint32_t at; /* arena offset + 1; 0 = empty */
} slot;

struct ar_tok_cache {
    pthread_mutex_t lock;
    slot *slots;
    uint32_t mask;
    uint32_t used;
    uint8_t *arena;
    size_t arena_size, arena_used;
};

static uint32_t hash_piece(const uint8_t *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 31;
    return (uint32_t)h | 1; /* never 0 */
}

ar_tok_cache *ar_tok_cache_new(size_t bytes) {
    ar_tok_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    size_t n_slots = 1024;
    while (n_slots * 64 < bytes) n_slots *= 2; /* about one slot per 64 arena bytes */
    c->slots = calloc(n_slots, sizeof *c->slots);
    c->arena = malloc(bytes);
    if (!c->slots || !c->arena || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->slots);
        free(c->arena);
        free(c);
        return NULL;
    }
    c->mask = (uint32_t)n_slots - 1;
    c->arena_size = bytes;
    return c;
}

void ar_tok_cache_free(ar_tok_cache *c) {
    if (!c) return;
    pthread_mutex_destroy(&c->lock);
    free(c->slots);
    free(c->arena);
    free(c);
}

static size_t entry_size(size_t len, size_t n) {
    return (2 + len + 3) / 4 * 4 + 4 * n;
}

long ar_tok_cache_get(ar_tok_cache *c, const uint8_t *p, size_t len, int32_t *out) {
    if (len > AR_TOK_CACHE_MAX_PIECE) return -1;
    uint32_t h = hash_piece(p, len);
    long found = -1;
    pthread_mutex_lock(&c->lock);
    for (uint32_t i = h & c->mask; c->slots[i].at; i = (i + 1) & c->mask) {
        if (c->slots[i].hash != h) continue;
        const uint8_t *e = c->arena + c->slots[i].at - 1;
        if (e[0] != len || memcmp(e + 2, p, len) != 0) continue;
        found = e[1];
        memcpy(out, e + (2 + len + 3) / 4 * 4, (size_t)found * sizeof *out);
        break;
    }
    pthread_mutex_unlock(&c->lock);
    return found;
}

void ar_tok_cache_put(ar_tok_cache *c, const uint8_t *p, size_t len, const int32_t *ids, size_t n) {
    size_t size = entry_size(len, n);
    if (len > AR_TOK_CACHE_MAX_PIECE || n > len || size > c->arena_size) return;
    uint32_t h = hash_piece(p, len);
    pthread_mutex_lock(&c->lock);
    if (c->arena_used + size > c->arena_size || c->used + 1 > (c->mask + 1) / 2) {
        memset(c->slots, 0, ((size_t)c->mask + 1) * sizeof *c->slots); /* start over */
        c->used = 0;
        c->arena_used = 0;
    }
    uint32_t i = h & c->mask;
    while (c->slots[i].at) i = (i + 1) & c->mask; /* a duplicate is harmless */
    uint8_t *e = c->arena + c->arena_used;
    e[0] = (uint8_t)len;
    e[1] = (uint8_t)n;
    memcpy(e + 2, p, len);
    memcpy(e + (2 + len + 3) / 4 * 4, ids, n * sizeof *ids);
    c->slots[i] = (slot){h, (uint32_t)c->arena_used + 1};
    c->used++;
    c->arena_used += size;
    pthread_mutex_unlock(&c->lock);
}
