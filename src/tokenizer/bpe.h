/*
 * bpe.h - byte-level BPE: the vocabulary as raw bytes, the merge table, and the merge loop.
 *
 * Tokens of a byte-level BPE vocabulary are written in GPT-2's byte-to-unicode alphabet
 * (every byte shown as a printable character: ' ' -> 'Ġ', '\n' -> 'Ċ'). Each token is kept
 * twice: as that vocabulary text (which merges refer to, and which is shown to people) and
 * as the raw bytes it stands for (encoding starts from the text's own bytes; decoding is a
 * copy). Lookups go through two open-addressing hash tables:
 *
 *     vocabulary text -> token id        (BPE tokens only, not added tokens)
 *     (left id, right id) -> (rank, merged id)
 *
 * Encoding one pre-token: start from one symbol per byte; repeatedly merge the adjacent
 * pair with the lowest rank, leftmost first among equal ranks (a min-heap of candidate
 * pairs with lazy invalidation), until no pair has a merge. This is the reference
 * implementation's order, so results are identical, in O(n log n) per pre-token. Short
 * pre-tokens (most of them) take the same decisions with a plain scan for the minimum over
 * a small array instead of the heap. The merge table is the hot spot (a cache miss per
 * lookup): the first lookups of a pre-token are prefetched together, and a small bit
 * filter answers most "no merge for this pair" lookups without touching the table.
 */
#ifndef AR_TOKENIZER_BPE_H
#define AR_TOKENIZER_BPE_H

#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ar_bpe_merge {
    uint32_t left, right; /* token ids */
    uint32_t rank;        /* position in the merge list: lower merges first */
    uint32_t result;      /* id of left + right */
} ar_bpe_merge;

typedef struct ar_bpe {
    int32_t n_tokens;
    char *text;         /* vocabulary text of every token, NUL-terminated, concatenated */
    uint32_t *text_off; /* n_tokens + 1 offsets into text */
    uint8_t *raw;       /* raw bytes of every token, concatenated */
    uint32_t *raw_off;  /* n_tokens + 1 offsets into raw */
    bool *is_bpe;       /* token takes part in BPE (not an added/control/unused token) */
    uint64_t *by_text;  /* hash: vocabulary text -> (hash << 32 | id + 1), 0 = empty; BPE
                           tokens only. The stored hash skips most string comparisons. */
    uint32_t by_text_mask;
    ar_bpe_merge *merges;  /* hash by (left, right); rank UINT32_MAX = empty */
    uint64_t *pair_filter; /* one bit per hash of every merge pair: a clear bit means "no
                              merge", answered from cache without touching `merges` */
    uint32_t merges_mask;
    uint32_t n_merges;
    int32_t byte_token[256]; /* the token of each single byte */
} ar_bpe;

/* Scratch space for encoding; grows as needed, reused across calls. */
typedef struct ar_bpe_scratch {
    struct ar_bpe_sym *sym;
    struct ar_bpe_cand *heap;
    size_t cap;
} ar_bpe_scratch;

/* GPT-2's byte <-> unicode alphabet. */
uint32_t ar_bytelevel_char(uint8_t b);
/* The byte a code point stands for, or -1 when it is not in the alphabet. */
int ar_bytelevel_byte(uint32_t cp);

/* Build the vocabulary from token texts. `texts[i]` (len lens[i]) is token i, in the
 * byte-level alphabet when bpe[i], else raw (added tokens). Errors name the token id. */
ar_status ar_bpe_init(ar_bpe *b, int32_t n, const char *const *texts, const uint32_t *lens,
                      const bool *bpe, ar_err *err);

/* Add merge number `rank`: the two token texts (byte-level alphabet). Errors name it. */
ar_status ar_bpe_add_merge(ar_bpe *b, uint32_t rank, const char *left, size_t left_len,
                           const char *right, size_t right_len, ar_err *err);

/* Start loading the hash slots that adding this merge will look at (left, right and the
 * two together; "left right" is the merge as written), so that loaders can work ahead. */
void ar_bpe_prefetch_merge(const ar_bpe *b, const char *merge, size_t len);

/* Size the merge table for n merges (call before adding them). */
ar_status ar_bpe_reserve_merges(ar_bpe *b, uint32_t n, ar_err *err);

/* Check that every byte has a token (after init). */
ar_status ar_bpe_check_bytes(const ar_bpe *b, ar_err *err);

/* The id of the BPE token with this vocabulary text, or -1. */
int32_t ar_bpe_find_text(const ar_bpe *b, const char *text, size_t len);

/* The id of the BPE token that stands for these raw bytes, or -1. */
int32_t ar_bpe_find_raw(const ar_bpe *b, const uint8_t *bytes, size_t len);

/* Encode one pre-token, appending ids to out (capacity must be >= len). Returns the
 * number of ids, or -1 when scratch space cannot be allocated. */
long ar_bpe_encode(const ar_bpe *b, const uint8_t *bytes, size_t len, ar_bpe_scratch *s,
                   int32_t *out);

void ar_bpe_scratch_free(ar_bpe_scratch *s);
void ar_bpe_free(ar_bpe *b);

#endif
