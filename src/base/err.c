/*
 * err.c - status names and bounded error-message formatting (see err.h).
 */
#include "base/err.h"

#include <stdio.h>
#include <string.h>

const char *ar_strerror(ar_status status) {
    switch (status) {
    case AR_OK: return "success";
    case AR_ERR_INVALID_ARG: return "invalid argument";
    case AR_ERR_NOMEM: return "out of memory";
    case AR_ERR_IO: return "input/output error";
    case AR_ERR_FORMAT: return "malformed file";
    case AR_ERR_UNSUPPORTED: return "unsupported";
    case AR_ERR_MODEL: return "invalid model";
    case AR_ERR_NOT_FOUND: return "not found";
    case AR_ERR_LIMIT: return "size limit exceeded";
    case AR_ERR_INTERNAL: return "internal error";
    case AR_ERR_INVALID_INPUT: return "invalid input text";
    case AR_ERR_BUFFER_TOO_SMALL: return "output buffer too small";
    case AR_ERR_NETWORK: return "network error";
    case AR_ERR_AUTH: return "access denied";
    case AR_ERR_CHECKSUM: return "checksum mismatch";
    case AR_ERR_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

const char *ar_version(void) {
#define AR_STR2(x) #x
#define AR_STR(x)  AR_STR2(x)
    return AR_STR(ARCHROUTER_VERSION_MAJOR) "." AR_STR(ARCHROUTER_VERSION_MINOR) "." AR_STR(
        ARCHROUTER_VERSION_PATCH);
#undef AR_STR
#undef AR_STR2
}

ar_status ar_errf(ar_err *e, ar_status st, const char *fmt, ...) {
    if (!e) return st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return st;
}

ar_status ar_err_prefix(ar_err *e, ar_status st, const char *fmt, ...) {
    if (!e) return st;
    char old[AR_ERRMSG_MAX];
    memcpy(old, e->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof e->msg)
        snprintf(e->msg + n, sizeof e->msg - (size_t)n, "%s", old);
    return st;
}
