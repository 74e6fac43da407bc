/*
 * pretok.c - the Qwen2 split regex as a matcher over code point classes (see pretok.h).
 *
 * The text is decoded once into one word per code point (class, flags, case-folded ASCII
 * letter) and its byte offset; then at each position the alternatives are tried in the
 * regex's order, each written as the loop that its greedy quantifiers and backtracking
 * amount to. Every alternative consumes at least one code point and every code point is
 * matched by some alternative, so the pieces cover the text exactly.
 */
#include "tokenizer/pretok.h"

#include <utf8proc.h>

enum { CL_LETTER, CL_NUMBER, CL_SPACE, CL_NEWLINE, CL_OTHER };

#define F_APOS   8u  /* the ASCII apostrophe */
#define F_BLANK  16u /* the ASCII space U+0020 */
#define CLASS(x) ((x)&7u)
#define FOLD(x)  ((x) >> 8) /* lowercase ASCII letter (or 's' for U+017F), else 0 */

static uint32_t classify(int32_t cp) {
    if (cp < 0x80) {
        if (cp == '\n' || cp == '\r') return CL_NEWLINE;
        if (cp == ' ') return CL_SPACE | F_BLANK;
        if (cp >= 0x09 && cp <= 0x0D) return CL_SPACE;
        int lower = cp | 0x20;
        if (lower >= 'a' && lower <= 'z') return CL_LETTER | (uint32_t)lower << 8;
        if (cp >= '0' && cp <= '9') return CL_NUMBER;
        return CL_OTHER | (cp == '\'' ? F_APOS : 0);
    }
    if (cp == 0x85) return CL_SPACE;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return CL_LETTER | (cp == 0x17F ? (uint32_t)'s' << 8 : 0);
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return CL_NUMBER;
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP: return CL_SPACE;
    default: return CL_OTHER;
    }
}

static int is_space(uint32_t c) {
    return CLASS(c) == CL_SPACE || CLASS(c) == CL_NEWLINE;
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) at i (an apostrophe): its end, or 0. */
static size_t contraction(const uint32_t *cl, size_t i, size_t n) {
    if (i + 1 >= n) return 0;
    uint32_t a = FOLD(cl[i + 1]);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (i + 2 >= n) return 0;
    uint32_t b = FOLD(cl[i + 2]);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    return 0;
}

/* The end of the piece that starts at code point i. */
static size_t match(const uint32_t *cl, size_t i, size_t n) {
    size_t j;
    if ((cl[i] & F_APOS) && (j = contraction(cl, i, n)) != 0) return j;
    uint32_t c = CLASS(cl[i]);
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (c == CL_LETTER ||
        (c != CL_NUMBER && c != CL_NEWLINE && i + 1 < n && CLASS(cl[i + 1]) == CL_LETTER)) {
        for (j = i + 1; j < n && CLASS(cl[j]) == CL_LETTER;) j++;
        return j;
    }
    /* \p{N} */
    if (c == CL_NUMBER) return i + 1;
    /* " ?[^\s\p{L}\p{N}]+[\r\n]*" */
    j = (cl[i] & F_BLANK) && i + 1 < n && CLASS(cl[i + 1]) == CL_OTHER ? i + 1 : i;
    if (CLASS(cl[j]) == CL_OTHER) {
        while (j < n && CLASS(cl[j]) == CL_OTHER) j++;
        while (j < n && CLASS(cl[j]) == CL_NEWLINE) j++;
        return j;
    }
    /* Whitespace: the run i..e. */
    size_t e = i + 1;
    while (e < n && is_space(cl[e])) e++;
    /* \s*[\r\n]+ : up to and including the last newline of the run */
    for (size_t k = e; k > i; k--)
        if (CLASS(cl[k - 1]) == CL_NEWLINE) return k;
    /* \s+(?!\S) : the whole run at the end of the text, else the run minus its last
     * space, which then starts the next piece */
    if (e == n) return e;
    if (e - i >= 2) return e - 1;
    /* \s+ */
    return e;
}

int ar_pretok_qwen2(const uint8_t *text, size_t len, uint32_t *scratch, ar_pretok_fn fn,
                    void *user) {
    uint32_t *cl = scratch, *off = scratch + len + 1;
    size_t n = 0;
    for (size_t i = 0; i < len; n++) {
        int32_t cp = text[i];
        size_t step = 1;
        if (cp >= 0x80) {
            utf8proc_ssize_t r =
                utf8proc_iterate(text + i, (utf8proc_ssize_t)(len - i < 4 ? len - i : 4), &cp);
            if (r > 0)
                step = (size_t)r;
            else
                cp = 0xFFFD; /* callers pass valid UTF-8; never loop on bad bytes */
        }
        cl[n] = classify(cp);
        off[n] = (uint32_t)i;
        i += step;
    }
    off[n] = (uint32_t)len;
    for (size_t i = 0; i < n;) {
        size_t j = match(cl, i, n);
        int rc = fn(off[i], off[j], user);
        if (rc) return rc;
        i = j;
    }
    return 0;
}
