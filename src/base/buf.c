/*
 * buf.c - the growable byte buffer of buf.h and JSON string escaping.
 */
#include "base/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(ar_buf *b, size_t extra) {
    if (b->oom) return false;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void ar_buf_append(ar_buf *b, const void *p, size_t n) {
    if (!reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void ar_buf_puts(ar_buf *b, const char *s) {
    ar_buf_append(b, s, strlen(s));
}

void ar_buf_printf(ar_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void ar_buf_free(ar_buf *b) {
    free(b->data);
    *b = (ar_buf){0};
}

/* The code point of the UTF-8 sequence at s (valid input), and its length in *len. */
static uint32_t decode(const unsigned char *s, size_t *len) {
    if (s[0] < 0x80) {
        *len = 1;
        return s[0];
    }
    if (s[0] < 0xE0) {
        *len = 2;
        return (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
    }
    if (s[0] < 0xF0) {
        *len = 3;
        return (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    }
    *len = 4;
    return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
           (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
}

void ar_buf_json_string(ar_buf *b, const char *s, size_t n, bool ascii) {
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        const unsigned char *run = p; /* bytes written as they are */
        while (p < end && *p >= 0x20 && *p != '"' && *p != '\\' && !(ascii && *p >= 0x80)) p++;
        ar_buf_append(b, run, (size_t)(p - run));
        if (p == end) break;
        unsigned char c = *p;
        switch (c) {
        case '"': ar_buf_puts(b, "\\\""); break;
        case '\\': ar_buf_puts(b, "\\\\"); break;
        case '\b': ar_buf_puts(b, "\\b"); break;
        case '\f': ar_buf_puts(b, "\\f"); break;
        case '\n': ar_buf_puts(b, "\\n"); break;
        case '\r': ar_buf_puts(b, "\\r"); break;
        case '\t': ar_buf_puts(b, "\\t"); break;
        default:
            if (c < 0x20) {
                ar_buf_printf(b, "\\u%04x", c);
            } else { /* non-ASCII in ascii mode */
                size_t len;
                uint32_t cp = decode(p, &len);
                if (len > (size_t)(end - p)) len = (size_t)(end - p);
                if (cp >= 0x10000) {
                    cp -= 0x10000;
                    ar_buf_printf(b, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
                } else {
                    ar_buf_printf(b, "\\u%04x", cp);
                }
                p += len;
                continue;
            }
        }
        p++;
    }
}
