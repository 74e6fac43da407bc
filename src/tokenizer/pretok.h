/*
 * pretok.h - the Qwen2 pre-tokenizer: splits normalized text into the pieces that BPE
 * then encodes one by one, exactly as the tokenizer's split regex does
 *
 *     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}
 *     | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *
 * with leftmost-first alternation and backtracking semantics, written out as a hand-made
 * matcher over code point classes (letter, number, whitespace, newline, other). \s is
 * Unicode White_Space (U+0009..U+000D, U+0085, Zs, Zl, Zp); \p{L} and \p{N} are the general
 * categories L* and N*; the case-insensitive contractions also accept U+017F (long s),
 * which case-folds to 's'. Categories come from utf8proc.
 */
#ifndef AR_TOKENIZER_PRETOK_H
#define AR_TOKENIZER_PRETOK_H

#include <stddef.h>
#include <stdint.h>

/* Called once per piece, in order, with byte offsets into the text; return non-zero to
 * stop. */
typedef int (*ar_pretok_fn)(size_t start, size_t end, void *user);

/* Split valid UTF-8 text[0..len). Returns the first non-zero value of fn, or 0. `scratch`
 * must hold 2 * (len + 1) uint32_t (per code point: class and byte offset). */
int ar_pretok_qwen2(const uint8_t *text, size_t len, uint32_t *scratch, ar_pretok_fn fn,
                    void *user);

#endif
