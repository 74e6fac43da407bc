/*
 * err.h - error messages that travel with a status.
 *
 * Every layer that can fail takes an `ar_err *` and fills it with a message naming what was
 * wrong and where (offset, key, tensor, field), then returns the status. The message buffer
 * is fixed-size and formatting truncates (vsnprintf), so an error path never allocates.
 * Handles copy the final message into their own last-error slot.
 */
#ifndef AR_BASE_ERR_H
#define AR_BASE_ERR_H

#include "archrouter.h"

#include <stdarg.h>

#define AR_ERRMSG_MAX 512

typedef struct ar_err {
    char msg[AR_ERRMSG_MAX];
} ar_err;

/* Format a message into e (may be NULL) and return st. */
ar_status ar_errf(ar_err *e, ar_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix the message already in e with a formatted context ("tensor 'x': " + old). */
ar_status ar_err_prefix(ar_err *e, ar_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
