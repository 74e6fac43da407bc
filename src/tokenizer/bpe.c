/*
 * bpe.c - byte-level BPE vocabulary, merge table and merge loop (see bpe.h).
 */
#include "tokenizer/bpe.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- GPT-2 byte <-> unicode alphabet ------------------------------------------------
 * Bytes 0x21..0x7E, 0xA1..0xAC and 0xAE..0xFF stand for themselves; the other 68 bytes
 * (controls, space, DEL, 0x80..0xA0, the soft hyphen 0xAD) become U+0100 onwards, in
 * byte order. */

static uint32_t byte_to_char[256];
static int16_t char_to_byte[256 + 68];
static pthread_once_t alphabet_once = PTHREAD_ONCE_INIT;

static bool printable(int b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static void build_alphabet(void) {
    uint32_t next = 256;
    for (int i = 0; i < 256 + 68; i++) char_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        byte_to_char[b] = printable(b) ? (uint32_t)b : next++;
        char_to_byte[byte_to_char[b]] = (int16_t)b;
    }
}

uint32_t ar_bytelevel_char(uint8_t b) {
    pthread_once(&alphabet_once, build_alphabet);
    return byte_to_char[b];
}

int ar_bytelevel_byte(uint32_t cp) {
    pthread_once(&alphabet_once, build_alphabet);
    return cp < 256 + 68 ? char_to_byte[cp] : -1;
}

/* Byte-level text -> raw bytes into dst (capacity >= len: each character gives one byte).
 * Returns the raw length, or -1 when a character is outside the alphabet. */
static long bytelevel_decode(const char *text, size_t len, uint8_t *dst) {
    pthread_once(&alphabet_once, build_alphabet);
    /* The alphabet is U+0021..U+0143: one or two UTF-8 bytes per character. */
    const uint8_t *s = (const uint8_t *)text;
    long n = 0;
    for (size_t i = 0; i < len; n++) {
        uint32_t cp = s[i];
        if (cp >= 0x80) {
            if ((cp & 0xE0) != 0xC0 || i + 1 >= len || (s[i + 1] & 0xC0) != 0x80) return -1;
            cp = (cp & 0x1F) << 6 | (s[i + 1] & 0x3F);
            if (cp < 0x80) return -1; /* overlong */
            i += 2;
        } else {
            i++;
        }
        if (cp >= 256 + 68 || char_to_byte[cp] < 0) return -1;
        dst[n] = (uint8_t)char_to_byte[cp];
    }
    return n;
}

/* ---- hashing ----------------------------------------------------------------------- */

static uint32_t hash_text(const char *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    for (unsigned shift = 0; i < n; i++, shift += 8) w |= (uint64_t)(uint8_t)p[i] << shift;
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    return (uint32_t)h;
}

static uint32_t hash_pair(uint32_t a, uint32_t b) {
    uint64_t h = ((uint64_t)a << 32 | b) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32);
}

/* A power of two with the load factor at most 3/4. */
static uint32_t table_size(uint64_t n) {
    uint32_t size = 16;
    while ((uint64_t)size * 3 < n * 4) size <<= 1;
    return size;
}

static const char *token_text(const ar_bpe *b, uint32_t id, size_t *len) {
    *len = b->text_off[id + 1] - b->text_off[id] - 1; /* minus the NUL */
    return b->text + b->text_off[id];
}

int32_t ar_bpe_find_text(const ar_bpe *b, const char *text, size_t len) {
    uint32_t h = hash_text(text, len);
    for (uint32_t i = h & b->by_text_mask;; i = (i + 1) & b->by_text_mask) {
        uint64_t slot = b->by_text[i];
        if (slot == 0) return -1;
        if ((uint32_t)(slot >> 32) != h) continue;
        uint32_t id = (uint32_t)slot - 1;
        size_t tl;
        const char *t = token_text(b, id, &tl);
        if (tl == len && memcmp(t, text, len) == 0) return (int32_t)id;
    }
}

int32_t ar_bpe_find_raw(const ar_bpe *b, const uint8_t *bytes, size_t len) {
    /* Each byte is one alphabet character of at most 2 UTF-8 bytes. */
    char stack[256] = {0}, *text = len <= sizeof stack / 2 ? stack : malloc(2 * len);
    if (!text) return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += (size_t)utf8proc_encode_char((utf8proc_int32_t)ar_bytelevel_char(bytes[i]),
                                          (utf8proc_uint8_t *)text + n);
    int32_t id = ar_bpe_find_text(b, text, n);
    if (text != stack) free(text);
    return id;
}

#define FILTER_BITS (1u << 20) /* 128 KiB: stays in cache */

static uint32_t filter_bit(uint32_t left, uint32_t right) {
    uint64_t h = ((uint64_t)right << 32 | left) * 0xD6E8FEB86659FD93ull;
    return (uint32_t)(h >> 44); /* 20 bits */
}

static const ar_bpe_merge *find_merge(const ar_bpe *b, uint32_t left, uint32_t right) {
    uint32_t bit = filter_bit(left, right);
    if (!(b->pair_filter[bit >> 6] >> (bit & 63) & 1)) return NULL;
    for (uint32_t i = hash_pair(left, right) & b->merges_mask;; i = (i + 1) & b->merges_mask) {
        const ar_bpe_merge *m = &b->merges[i];
        if (m->rank == UINT32_MAX) return NULL;
        if (m->left == left && m->right == right) return m;
    }
}

/* ---- building ---------------------------------------------------------------------- */

/* Copy the vocabulary texts and derive the raw bytes. */
static ar_status copy_texts(ar_bpe *b, int32_t n, const char *const *texts, const uint32_t *lens,
                            const bool *bpe, ar_err *err) {
    uint64_t total = 0;
    for (int32_t i = 0; i < n; i++) total += (uint64_t)lens[i] + 1;
    if (total > UINT32_MAX / 2)
        return ar_errf(err, AR_ERR_LIMIT, "vocabulary texts total %llu bytes, too many",
                       (unsigned long long)total);
    b->text = malloc((size_t)total);
    b->text_off = malloc(((size_t)n + 1) * sizeof *b->text_off);
    b->raw = malloc((size_t)total);
    b->raw_off = malloc(((size_t)n + 1) * sizeof *b->raw_off);
    if (!b->text || !b->text_off || !b->raw || !b->raw_off)
        return ar_errf(err, AR_ERR_NOMEM, "out of memory for the vocabulary");
    uint32_t tpos = 0, rpos = 0;
    for (int32_t id = 0; id < n; id++) {
        b->text_off[id] = tpos;
        memcpy(b->text + tpos, texts[id], lens[id]);
        tpos += lens[id];
        b->text[tpos++] = 0;
        b->raw_off[id] = rpos;
        if (bpe[id]) {
            long r = bytelevel_decode(texts[id], lens[id], b->raw + rpos);
            if (r < 0)
                return ar_errf(err, AR_ERR_FORMAT,
                               "token %d is not byte-level BPE text (a character outside "
                               "the GPT-2 byte alphabet)",
                               id);
            if (r == 0) return ar_errf(err, AR_ERR_FORMAT, "token %d is empty", id);
            rpos += (uint32_t)r;
        } else {
            memcpy(b->raw + rpos, texts[id], lens[id]);
            rpos += lens[id];
        }
    }
    b->text_off[n] = tpos;
    b->raw_off[n] = rpos;
    return AR_OK;
}

ar_status ar_bpe_init(ar_bpe *b, int32_t n, const char *const *texts, const uint32_t *lens,
                      const bool *bpe, ar_err *err) {
    memset(b, 0, sizeof *b);
    for (int i = 0; i < 256; i++) b->byte_token[i] = -1;
    b->n_tokens = n;
    ar_status rc = copy_texts(b, n, texts, lens, bpe, err);
    if (rc != AR_OK) return rc;
    b->is_bpe = calloc((size_t)n ? (size_t)n : 1, sizeof *b->is_bpe);
    uint32_t size = table_size((uint64_t)n);
    b->by_text = calloc(size, sizeof *b->by_text);
    b->by_text_mask = size - 1;
    if (!b->is_bpe || !b->by_text)
        return ar_errf(err, AR_ERR_NOMEM, "out of memory for the vocabulary");
    for (int32_t id = 0; id < n; id++) {
        if (!bpe[id]) continue;
        size_t len;
        const char *t = token_text(b, (uint32_t)id, &len);
        uint32_t h = hash_text(t, len);
        uint32_t i = h & b->by_text_mask;
        for (; b->by_text[i]; i = (i + 1) & b->by_text_mask) {
            if ((uint32_t)(b->by_text[i] >> 32) != h) continue;
            uint32_t other = (uint32_t)b->by_text[i] - 1;
            size_t ol;
            const char *o = token_text(b, other, &ol);
            if (ol == len && memcmp(o, t, len) == 0)
                return ar_errf(err, AR_ERR_FORMAT, "tokens %u and %d have the same text", other,
                               id);
        }
        b->by_text[i] = (uint64_t)h << 32 | ((uint32_t)id + 1);
        b->is_bpe[id] = true;
        if (b->raw_off[id + 1] - b->raw_off[id] == 1) b->byte_token[b->raw[b->raw_off[id]]] = id;
    }
    return AR_OK;
}

ar_status ar_bpe_check_bytes(const ar_bpe *b, ar_err *err) {
    for (int i = 0; i < 256; i++)
        if (b->byte_token[i] < 0)
            return ar_errf(err, AR_ERR_FORMAT,
                           "the vocabulary has no token for byte 0x%02x, so some text could "
                           "not be encoded",
                           i);
    return AR_OK;
}

ar_status ar_bpe_reserve_merges(ar_bpe *b, uint32_t n, ar_err *err) {
    uint32_t size = table_size(n);
    free(b->merges);
    free(b->pair_filter);
    b->merges = malloc((size_t)size * sizeof *b->merges);
    b->pair_filter = calloc(FILTER_BITS / 64, sizeof *b->pair_filter);
    if (!b->merges || !b->pair_filter)
        return ar_errf(err, AR_ERR_NOMEM, "out of memory for the merges");
    for (uint32_t i = 0; i < size; i++) b->merges[i].rank = UINT32_MAX;
    b->merges_mask = size - 1;
    b->n_merges = 0;
    return AR_OK;
}

void ar_bpe_prefetch_merge(const ar_bpe *b, const char *merge, size_t len) {
    const char *sp = memchr(merge, ' ', len);
    if (!sp || len > 256) return;
    char both[256];
    size_t l = (size_t)(sp - merge), r = len - l - 1;
    memcpy(both, merge, l);
    memcpy(both + l, sp + 1, r);
    __builtin_prefetch(&b->by_text[hash_text(merge, l) & b->by_text_mask]);
    __builtin_prefetch(&b->by_text[hash_text(sp + 1, r) & b->by_text_mask]);
    __builtin_prefetch(&b->by_text[hash_text(both, l + r) & b->by_text_mask]);
}

ar_status ar_bpe_add_merge(ar_bpe *b, uint32_t rank, const char *left, size_t left_len,
                           const char *right, size_t right_len, ar_err *err) {
    if ((uint64_t)b->n_merges * 4 >= (uint64_t)(b->merges_mask + 1) * 3)
        return ar_errf(err, AR_ERR_INTERNAL, "merge table full");
    /* The merged token's text is the two texts side by side (the alphabet maps byte by
     * byte). */
    char stack[512],
        *both = left_len + right_len <= sizeof stack ? stack : malloc(left_len + right_len);
    if (!both) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    memcpy(both, left, left_len);
    memcpy(both + left_len, right, right_len);
    int32_t a = ar_bpe_find_text(b, left, left_len);
    int32_t c = ar_bpe_find_text(b, right, right_len);
    int32_t res = ar_bpe_find_text(b, both, left_len + right_len);
    if (both != stack) free(both);
    if (a < 0 || c < 0 || res < 0)
        return ar_errf(err, AR_ERR_FORMAT,
                       "merge %u: '%.*s %.*s' refers to a token that is not in the vocabulary",
                       rank, (int)(left_len < 64 ? left_len : 64), left,
                       (int)(right_len < 64 ? right_len : 64), right);
    uint32_t i = hash_pair((uint32_t)a, (uint32_t)c) & b->merges_mask;
    for (; b->merges[i].rank != UINT32_MAX; i = (i + 1) & b->merges_mask)
        if (b->merges[i].left == (uint32_t)a && b->merges[i].right == (uint32_t)c) break;
    if (b->merges[i].rank == UINT32_MAX) b->n_merges++;
    uint32_t bit = filter_bit((uint32_t)a, (uint32_t)c);
    b->pair_filter[bit >> 6] |= 1ull << (bit & 63);
    /* A repeated pair takes its later rank, as the reference's map construction does. */
    b->merges[i] = (ar_bpe_merge){(uint32_t)a, (uint32_t)c, rank, (uint32_t)res};
    return AR_OK;
}

void ar_bpe_free(ar_bpe *b) {
    free(b->text);
    free(b->text_off);
    free(b->raw);
    free(b->raw_off);
    free(b->is_bpe);
    free(b->by_text);
    free(b->merges);
    free(b->pair_filter);
    memset(b, 0, sizeof *b);
}

/* ---- encoding ---------------------------------------------------------------------- */

typedef struct ar_bpe_sym {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
    int32_t alive;
} ar_bpe_sym;

typedef struct ar_bpe_cand {
    uint32_t rank;
    uint32_t pos; /* index of the left symbol */
    uint32_t left, right, result;
} ar_bpe_cand;

static bool cand_less(const ar_bpe_cand *x, const ar_bpe_cand *y) {
    return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}

static void heap_push(ar_bpe_cand *h, size_t *n, ar_bpe_cand c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static ar_bpe_cand heap_pop(ar_bpe_cand *h, size_t *n) {
    ar_bpe_cand top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_less(&h[c + 1], &h[c])) c++;
        if (!cand_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

static void try_pair(const ar_bpe *b, const ar_bpe_sym *sym, int32_t pos, ar_bpe_cand *heap,
                     size_t *n) {
    int32_t next = sym[pos].next;
    if (next < 0) return;
    const ar_bpe_merge *m = find_merge(b, (uint32_t)sym[pos].id, (uint32_t)sym[next].id);
    if (m) heap_push(heap, n, (ar_bpe_cand){m->rank, (uint32_t)pos, m->left, m->right, m->result});
}

static bool reserve(ar_bpe_scratch *s, size_t len) {
    if (len <= s->cap) return true;
    size_t cap = len < 64 ? 64 : len;
    ar_bpe_sym *sym = realloc(s->sym, cap * sizeof *sym);
    if (sym) s->sym = sym;
    /* Each merge pushes at most two candidates: 3 * len bounds the heap. */
    ar_bpe_cand *heap = realloc(s->heap, 3 * cap * sizeof *heap);
    if (heap) s->heap = heap;
    if (!sym || !heap) return false;
    s->cap = cap;
    return true;
}

#define SMALL_PIECE 32

/* The pair (left, right)'s rank and result, or rank UINT32_MAX. */
static void lookup(const ar_bpe *b, int32_t left, int32_t right, uint32_t *rank, uint32_t *result) {
    const ar_bpe_merge *m = find_merge(b, (uint32_t)left, (uint32_t)right);
    *rank = m ? m->rank : UINT32_MAX;
    *result = m ? m->result : 0;
}

/* The same decisions as the heap for a short piece: merge the lowest rank, leftmost among
 * equals, found by scanning the ranks of the current adjacent pairs. */
static long encode_small(const ar_bpe *b, const uint8_t *bytes, size_t len, int32_t *out) {
    int32_t id[SMALL_PIECE];
    uint32_t rank[SMALL_PIECE], result[SMALL_PIECE];
    size_t n = len;
    for (size_t i = 0; i < n; i++) id[i] = b->byte_token[bytes[i]];
    for (size_t i = 0; i + 1 < n; i++)
        __builtin_prefetch(
            &b->merges[hash_pair((uint32_t)id[i], (uint32_t)id[i + 1]) & b->merges_mask]);
    for (size_t i = 0; i + 1 < n; i++) lookup(b, id[i], id[i + 1], &rank[i], &result[i]);
    while (n > 1) {
        size_t j = 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (rank[i] < rank[j]) j = i;
        if (rank[j] == UINT32_MAX) break;
        id[j] = (int32_t)result[j];
        n--;
        /* Drop symbol j + 1 and pair j + 1. */
        memmove(&id[j + 1], &id[j + 2], (n - j - 1) * sizeof *id);
        memmove(&rank[j + 1], &rank[j + 2], (n - j - 1) * sizeof *rank);
        memmove(&result[j + 1], &result[j + 2], (n - j - 1) * sizeof *result);
        if (j > 0) lookup(b, id[j - 1], id[j], &rank[j - 1], &result[j - 1]);
        if (j + 1 < n) lookup(b, id[j], id[j + 1], &rank[j], &result[j]);
    }
    memcpy(out, id, n * sizeof *out);
    return (long)n;
}

long ar_bpe_encode(const ar_bpe *b, const uint8_t *bytes, size_t len, ar_bpe_scratch *s,
                   int32_t *out) {
    if (len == 0) return 0;
    if (len == 1) {
        out[0] = b->byte_token[bytes[0]];
        return 1;
    }
    if (len <= SMALL_PIECE) return encode_small(b, bytes, len, out);
    if (!reserve(s, len)) return -1;
    ar_bpe_sym *sym = s->sym;
    for (size_t i = 0; i < len; i++)
        sym[i] = (ar_bpe_sym){b->byte_token[bytes[i]], (int32_t)i - 1,
                              i + 1 < len ? (int32_t)i + 1 : -1, 1};
    /* The first lookups are independent: start all their cache misses at once. */
    for (size_t i = 0; i + 1 < len; i++)
        __builtin_prefetch(
            &b->merges[hash_pair((uint32_t)sym[i].id, (uint32_t)sym[i + 1].id) & b->merges_mask]);
    size_t n_heap = 0;
    for (size_t i = 0; i + 1 < len; i++) try_pair(b, sym, (int32_t)i, s->heap, &n_heap);
    while (n_heap > 0) {
        ar_bpe_cand c = heap_pop(s->heap, &n_heap);
        ar_bpe_sym *l = &sym[c.pos];
        if (!l->alive || l->id != (int32_t)c.left || l->next < 0) continue;
        ar_bpe_sym *r = &sym[l->next];
        if (r->id != (int32_t)c.right) continue;
        l->id = (int32_t)c.result;
        r->alive = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = (int32_t)c.pos;
        if (l->prev >= 0) try_pair(b, sym, l->prev, s->heap, &n_heap);
        try_pair(b, sym, (int32_t)c.pos, s->heap, &n_heap);
    }
    long n = 0;
    for (int32_t i = 0; i >= 0; i = sym[i].next) out[n++] = sym[i].id;
    return n;
}

void ar_bpe_scratch_free(ar_bpe_scratch *s) {
    free(s->sym);
    free(s->heap);
    memset(s, 0, sizeof *s);
}
