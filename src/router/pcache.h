/*
 * pcache.h - the prefix cache: KV caches of prompt heads, shared by all requests.
 *
 * An entry is a token sequence and a sequence (ar_seq) holding exactly its KV positions.
 * Lookup finds the longest entry whose tokens begin the given prompt; storing copies the
 * first n positions out of a working sequence. Entries are evicted least recently used
 * first to stay within the byte budget (KV storage plus the sequence's buffers). Not
 * thread-safe: the router calls it under its lock.
 */
#ifndef AR_ROUTER_PCACHE_H
#define AR_ROUTER_PCACHE_H

#include "archrouter.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ar_pcache ar_pcache;

ar_pcache *ar_pcache_new(ar_engine *engine, ar_kv_type kv_type, size_t budget_bytes);
void ar_pcache_free(ar_pcache *c);

/* The longest cached prefix of ids[0..n): its length (0 when none) and sequence. */
int32_t ar_pcache_lookup(ar_pcache *c, const int32_t *ids, int32_t n, const ar_seq **seq);

/* Keep the first n positions of src (whose tokens are ids[0..n)). Does nothing when the
 * entry alone would exceed the budget or memory is short. */
void ar_pcache_store(ar_pcache *c, const int32_t *ids, int32_t n, const ar_seq *src);

/* Entries and bytes held (for metrics and tests). */
int32_t ar_pcache_entries(const ar_pcache *c);
size_t ar_pcache_bytes(const ar_pcache *c);

#endif
