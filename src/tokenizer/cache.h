/*
 * cache.h - a bounded, thread-safe cache of pre-token -> token ids.
 *
 * Natural text repeats its words, and BPE of a repeated word always gives the same ids, so
 * the encoder asks here before running the merge loop. Entries live in one arena; when the
 * arena or the index fills up, everything is dropped at once (no per-entry eviction to
 * keep track of). One mutex guards it: lookups are short, and the cache is only an
 * accelerator, so a miss is never wrong.
 */
#ifndef AR_TOKENIZER_CACHE_H
#define AR_TOKENIZER_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define AR_TOK_CACHE_MAX_PIECE 64 /* longer pieces are not cached */

typedef struct ar_tok_cache ar_tok_cache;

/* A cache using about `bytes` of memory; NULL when out of memory. */
ar_tok_cache *ar_tok_cache_new(size_t bytes);
void ar_tok_cache_free(ar_tok_cache *c);

/* The ids of piece p[0..len) copied to out (capacity >= len), and their count; or -1. */
long ar_tok_cache_get(ar_tok_cache *c, const uint8_t *p, size_t len, int32_t *out);

/* Remember the ids of a piece (ignored when the piece is too long). */
void ar_tok_cache_put(ar_tok_cache *c, const uint8_t *p, size_t len, const int32_t *ids, size_t n);

#endif
