/*
 * utf8.h - UTF-8 validation for names and strings read from files.
 */
#ifndef AR_BASE_UTF8_H
#define AR_BASE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF). On false, *bad_offset (if not NULL) is the offset of the first bad byte. */
bool ar_utf8_valid(const uint8_t *s, size_t n, size_t *bad_offset);

#endif
