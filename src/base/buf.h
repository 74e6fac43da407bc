/*
 * buf.h - a growable byte buffer for building text (prompts, JSON, HTTP bodies).
 *
 * The buffer doubles its capacity as needed and keeps a NUL after the data, so `data` is
 * always a C string once anything was appended. An allocation failure is sticky: later
 * appends do nothing and `oom` stays true, so a builder checks once at the end.
 */
#ifndef AR_BASE_BUF_H
#define AR_BASE_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ar_buf {
    char *data;
    size_t len, cap;
    bool oom;
} ar_buf;

void ar_buf_append(ar_buf *b, const void *p, size_t n);
void ar_buf_puts(ar_buf *b, const char *s);
void ar_buf_printf(ar_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ar_buf_free(ar_buf *b);

/* Append s (n bytes of valid UTF-8) as the inside of a JSON string. ascii: escape every
 * non-ASCII character as \uXXXX (surrogate pairs above U+FFFF), as Python's json.dumps
 * does by default; otherwise write UTF-8 as is (serde_json, JavaScript). Both escape `"`,
 * `\`, and control characters (\b \f \n \r \t, others \u00XX, lowercase hex). */
void ar_buf_json_string(ar_buf *b, const char *s, size_t n, bool ascii);

#endif
