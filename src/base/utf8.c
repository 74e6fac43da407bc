/*
 * utf8.c - UTF-8 validation on top of utf8proc's decoder, which rejects overlong forms,
 * surrogates and code points past U+10FFFF.
 */
#include "base/utf8.h"

#include <utf8proc.h>

bool ar_utf8_valid(const uint8_t *s, size_t n, size_t *bad_offset) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { /* ASCII fast path */
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        size_t left = n - i;
        utf8proc_ssize_t len = utf8proc_iterate(s + i, left > 4 ? 4 : (utf8proc_ssize_t)left, &cp);
        if (len <= 0) {
            if (bad_offset) *bad_offset = i;
            return false;
        }
        i += (size_t)len;
    }
    return true;
}
